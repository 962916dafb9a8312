//! The generic HTTP connector, defined in YAML, and the webhook notifier built on it.
//!
//! ```yaml
//! name: edr
//! base_url: https://edr.corp.example/api      # or base_url_secret: a secret holding it
//! timeout: 10s
//! auth: { bearer: edr_token }                  # a secret name; or header/basic, below
//! idempotency_header: Idempotency-Key          # send each call's key; makes retries safe
//! operations:
//!   isolate_host:
//!     class: approve
//!     method: POST
//!     path: "/hosts/{{ params.host | urlencode }}/isolate"
//!     body: { host: "{{ params.host }}", comment: "riposte case {{ case.id }}" }
//!     expect_status: [200, 202]
//!     keep: { containment_id: /id }              # JSON pointers into the answer
//!     inverse: release_host
//!     check:                                     # after a restart between send and result:
//!       path: "/hosts/{{ params.host | urlencode }}"   # GET by default
//!       done_when: { /state: isolated }          # JSON pointer → the value that means done
//! ```
//!
//! `check` is how riposte learns whether a call took effect when the process stopped after
//! sending it and before its answer: the far side is asked, and the call is sent again only
//! when the answer says it did not happen (and the call is safe to repeat).
//!
//! Every string in `path`, `headers` and `body` is a template over `params` (the rendered
//! step parameters), `undo` (the forward call's kept fields, for an inverse), `action`
//! (`id`, `idempotency_key`) and the run's `case`, `alert`, `playbook` and `run`. A body that
//! is a mapping is sent as JSON; a body that is a string is sent as text.
//!
//! Secrets are read at the moment a request is built and go into headers marked sensitive;
//! no error or log line carries them (errors name the secret, never its value).

use std::collections::BTreeMap;
use std::sync::{Arc, Once};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::connector::{
    CallFuture, CallOutcome, CallRequest, CheckFuture, Connector, ConnectorError, OperationSpec,
};
use crate::duration::HumanDuration;
use crate::error::LoadError;
use crate::policy::Class;
use crate::secrets::SecretSource;
use crate::template::Templates;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    base_url_secret: Option<String>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
    #[serde(default)]
    auth: Option<RawAuth>,
    #[serde(default)]
    idempotency_header: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    operations: BTreeMap<String, RawOperation>,
    /// Webhook notifier only: the JSON body, default `{"text": "{{ params.message }}"}`.
    #[serde(default)]
    body: Option<serde_json::Value>,
}

/// One of `bearer: <secret>`, `header: {name, secret}`, `basic: {username, secret}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(default)]
    bearer: Option<String>,
    #[serde(default)]
    header: Option<RawHeaderAuth>,
    #[serde(default)]
    basic: Option<RawBasicAuth>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderAuth {
    name: String,
    secret: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    username: String,
    secret: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    class: Class,
    #[serde(default = "post")]
    method: String,
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<serde_json::Value>,
    #[serde(default)]
    expect_status: Option<Vec<u16>>,
    #[serde(default)]
    keep: BTreeMap<String, String>,
    #[serde(default)]
    inverse: Option<String>,
    #[serde(default)]
    irreversible: bool,
    #[serde(default)]
    idempotent: Option<bool>,
    #[serde(default)]
    check: Option<RawCheck>,
}

/// A read that says whether an operation's call took effect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    #[serde(default = "get")]
    method: String,
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    expect_status: Option<Vec<u16>>,
    /// JSON pointer → the value it holds once the call took effect; all must hold.
    done_when: BTreeMap<String, serde_json::Value>,
    /// Fields to keep from the check's answer when it says done (as the call's `keep`).
    #[serde(default)]
    keep: BTreeMap<String, String>,
}

fn post() -> String {
    "POST".into()
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Clone)]
enum Auth {
    Bearer(String),
    Header { name: HeaderName, secret: String },
    Basic { username: String, secret: String },
}

#[derive(Debug, Clone)]
struct Operation {
    spec: OperationSpec,
    request: Request,
    check: Option<Check>,
}

/// One HTTP request of an operation (its call, or its check).
#[derive(Debug, Clone)]
struct Request {
    method: reqwest::Method,
    path: String,
    headers: Vec<(HeaderName, String)>,
    body: Option<serde_json::Value>,
    expect: Vec<u16>,
    keep: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Check {
    request: Request,
    done_when: Vec<(String, serde_json::Value)>,
}

/// A connector whose operations are HTTP requests described in YAML.
pub struct HttpConnector {
    name: String,
    base_url: Option<String>,
    base_url_secret: Option<String>,
    auth: Option<Auth>,
    idempotency_header: Option<HeaderName>,
    headers: Vec<(HeaderName, String)>,
    ops: Vec<Operation>,
    specs: Vec<OperationSpec>,
    timeout: Duration,
    client: reqwest::Client,
    templates: Arc<Templates>,
    secrets: Arc<dyn SecretSource>,
}

impl std::fmt::Debug for HttpConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnector")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("operations", &self.specs)
            .finish_non_exhaustive()
    }
}

/// Makes ring the process's TLS provider: reqwest is built without one (aws-lc-rs, its
/// default, is a long C build). A second call, or a provider installed first by the host
/// program, leaves things as they are.
pub fn install_tls_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err only means another provider is already installed, which is what we need.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or(0)
}

impl HttpConnector {
    /// Loads a connector definition (`kind: http`, the default, or `kind: webhook`).
    pub fn load(
        file: &str,
        text: &str,
        templates: Arc<Templates>,
        secrets: Arc<dyn SecretSource>,
    ) -> Result<HttpConnector, LoadError> {
        let mut raw: RawHttp = yaml_serde::from_str(text).map_err(|e| LoadError::yaml(file, &e))?;
        let err = |needle: &str, msg: String| LoadError::new(file, line_of(text, needle), 1, msg);
        match raw.kind.as_deref() {
            None | Some("http") => {
                if raw.body.is_some() {
                    return Err(err(
                        "body:",
                        "a top-level `body` belongs to `kind: webhook`; put it under an operation"
                            .into(),
                    ));
                }
            }
            Some("webhook") => {
                if !raw.operations.is_empty() {
                    return Err(err(
                        "operations:",
                        "a webhook has one operation, `notify`; give its `body` at the top level"
                            .into(),
                    ));
                }
                let body = raw
                    .body
                    .take()
                    .unwrap_or_else(|| serde_json::json!({"text": "{{ params.message }}"}));
                raw.operations.insert(
                    "notify".into(),
                    RawOperation {
                        class: Class::Auto,
                        method: "POST".into(),
                        path: String::new(),
                        headers: BTreeMap::new(),
                        body: Some(body),
                        expect_status: None,
                        keep: BTreeMap::new(),
                        inverse: None,
                        irreversible: false,
                        idempotent: Some(false),
                        check: None,
                    },
                );
            }
            Some(other) => {
                return Err(err(
                    "kind:",
                    format!("unknown connector kind `{other}`: use `http` or `webhook`"),
                ));
            }
        }
        if raw.name.is_empty() || raw.name.contains('.') {
            return Err(err(
                "name:",
                format!(
                    "connector name `{}` must be non-empty and without dots",
                    raw.name
                ),
            ));
        }
        match (&raw.base_url, &raw.base_url_secret) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(err(
                    "base_url",
                    "give exactly one of `base_url` and `base_url_secret`".into(),
                ));
            }
            (Some(u), None) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                return Err(err(
                    "base_url",
                    format!("`base_url` `{u}` must start with http:// or https://"),
                ));
            }
            _ => {}
        }
        let header_name = |n: &str| {
            HeaderName::try_from(n)
                .map_err(|_| err(n, format!("`{n}` is not a valid HTTP header name")))
        };
        let headers = raw
            .headers
            .iter()
            .map(|(k, v)| Ok((header_name(k)?, v.clone())))
            .collect::<Result<Vec<_>, LoadError>>()?;
        for (_, v) in &headers {
            templates
                .check_template(v)
                .map_err(|e| err(v, format!("header template: {e}")))?;
        }
        let auth = match raw.auth {
            None => None,
            Some(RawAuth {
                bearer: Some(s),
                header: None,
                basic: None,
            }) => Some(Auth::Bearer(s)),
            Some(RawAuth {
                bearer: None,
                header: Some(h),
                basic: None,
            }) => Some(Auth::Header {
                name: header_name(&h.name)?,
                secret: h.secret,
            }),
            Some(RawAuth {
                bearer: None,
                header: None,
                basic: Some(b),
            }) => Some(Auth::Basic {
                username: b.username,
                secret: b.secret,
            }),
            Some(_) => {
                return Err(err(
                    "auth:",
                    "`auth` takes exactly one of `bearer`, `header` and `basic`".into(),
                ));
            }
        };
        let idempotency_header = raw
            .idempotency_header
            .as_deref()
            .map(header_name)
            .transpose()?;
        if raw.operations.is_empty() {
            return Err(err("operations", "a connector needs `operations`".into()));
        }
        let mut ops = Vec::new();
        for (name, o) in &raw.operations {
            let at = |m: String| err(&format!("{name}:"), format!("operation `{name}`: {m}"));
            // The call and its check are requests of the same shape, checked alike.
            let request = |what: &str,
                           method: &str,
                           path: &str,
                           hdrs: &BTreeMap<String, String>,
                           body: &Option<serde_json::Value>,
                           expect: &Option<Vec<u16>>,
                           keep: &BTreeMap<String, String>|
             -> Result<Request, LoadError> {
                let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    .map_err(|_| at(format!("{what}`{method}` is not an HTTP method")))?;
                templates
                    .check_template(path)
                    .map_err(|e| at(format!("{what}path template: {e}")))?;
                let mut headers = Vec::new();
                for (k, v) in hdrs {
                    templates
                        .check_template(v)
                        .map_err(|e| at(format!("{what}header `{k}`: {e}")))?;
                    headers.push((header_name(k)?, v.clone()));
                }
                if let Some(b) = body {
                    templates
                        .check_value(b)
                        .map_err(|(s, e)| at(format!("{what}body template `{s}`: {e}")))?;
                }
                for (field, ptr) in keep {
                    if !ptr.is_empty() && !ptr.starts_with('/') {
                        return Err(at(format!(
                            "{what}`keep.{field}: {ptr}` must be a JSON pointer such as `/data/id`"
                        )));
                    }
                }
                Ok(Request {
                    method,
                    path: path.to_string(),
                    headers,
                    body: body.clone(),
                    expect: expect.clone().unwrap_or_default(),
                    keep: keep.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                })
            };
            let call = request(
                "",
                &o.method,
                &o.path,
                &o.headers,
                &o.body,
                &o.expect_status,
                &o.keep,
            )?;
            let check = match &o.check {
                None => None,
                Some(c) => {
                    let request = request(
                        "check: ",
                        &c.method,
                        &c.path,
                        &c.headers,
                        &None,
                        &c.expect_status,
                        &c.keep,
                    )?;
                    if c.done_when.is_empty() {
                        return Err(at(
                            "check: `done_when` needs at least one `/pointer: value`".into(),
                        ));
                    }
                    if let Some(p) = c.done_when.keys().find(|p| !p.starts_with('/')) {
                        return Err(at(format!(
                            "check: `done_when` key `{p}` must be a JSON pointer such as `/state`"
                        )));
                    }
                    Some(Check {
                        request,
                        done_when: c.done_when.clone().into_iter().collect(),
                    })
                }
            };
            if let Some(inv) = &o.inverse {
                if !raw.operations.contains_key(inv) {
                    return Err(at(format!(
                        "its inverse `{inv}` is not an operation of this connector"
                    )));
                }
                if o.irreversible {
                    return Err(at("is declared irreversible but names an inverse".into()));
                }
            }
            let idempotent = o.idempotent.unwrap_or(matches!(
                call.method,
                reqwest::Method::GET
                    | reqwest::Method::HEAD
                    | reqwest::Method::PUT
                    | reqwest::Method::DELETE
            ));
            ops.push(Operation {
                spec: OperationSpec {
                    name: name.clone(),
                    class: o.class,
                    inverse: o.inverse.clone(),
                    irreversible: o.irreversible,
                    idempotent,
                },
                request: call,
                check,
            });
        }
        install_tls_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| LoadError::new(file, 0, 0, format!("cannot build an HTTP client: {e}")))?;
        let specs = ops.iter().map(|o| o.spec.clone()).collect();
        Ok(HttpConnector {
            name: raw.name,
            base_url: raw.base_url.map(|u| u.trim_end_matches('/').to_string()),
            base_url_secret: raw.base_url_secret,
            auth,
            idempotency_header,
            headers,
            ops,
            specs,
            timeout: raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30)),
            client,
            templates,
            secrets,
        })
    }

    /// The default call timeout of this connector.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn op(&self, name: &str) -> Result<&Operation, ConnectorError> {
        self.ops
            .iter()
            .find(|o| o.spec.name == name)
            .ok_or_else(|| ConnectorError::UnknownOperation {
                connector: self.name.clone(),
                operation: name.to_string(),
            })
    }

    async fn attempt(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let op = self.op(&req.operation)?;
        let (status, answer) = self.send(op, &op.request, req, true).await?;
        let fields = kept(&op.request, status, &answer)?;
        Ok(CallOutcome {
            undo: serde_json::Value::Object(fields.clone()),
            fields,
            status: Some(status),
        })
    }

    /// Asks whether the call `req` took effect: `Some` (with the check's kept fields) when
    /// every `done_when` pointer holds its value, `None` when not.
    async fn confirm(
        &self,
        op: &Operation,
        check: &Check,
        req: &CallRequest,
    ) -> Result<Option<CallOutcome>, ConnectorError> {
        let (status, answer) = self.send(op, &check.request, req, false).await?;
        if !check
            .done_when
            .iter()
            .all(|(ptr, want)| answer.pointer(ptr) == Some(want))
        {
            return Ok(None);
        }
        let fields = kept(&check.request, status, &answer)?;
        Ok(Some(CallOutcome {
            undo: serde_json::Value::Object(fields.clone()),
            fields,
            status: Some(status),
        }))
    }

    /// Sends one request of `op` and returns the status and the answer (JSON, or the text
    /// as a string) when the status is the expected one.
    async fn send(
        &self,
        op: &Operation,
        r: &Request,
        req: &CallRequest,
        with_idempotency_key: bool,
    ) -> Result<(u16, serde_json::Value), ConnectorError> {
        let mut ctx = match &req.context {
            serde_json::Value::Object(m) => m.clone(),
            _ => serde_json::Map::new(),
        };
        ctx.insert("params".into(), req.params.clone());
        ctx.insert("undo".into(), req.undo.clone());
        ctx.insert(
            "action".into(),
            serde_json::json!({"id": req.action_id, "idempotency_key": req.idempotency_key}),
        );
        let ctx = serde_json::Value::Object(ctx);
        let render_err = |what: &str, e: crate::template::TemplateError| ConnectorError::Config {
            message: format!("operation `{}`: {what}: {e}", op.spec.name),
        };
        let path = self
            .templates
            .render(&r.path, &ctx)
            .map_err(|e| render_err("path", e))?;
        let base = match (&self.base_url, &self.base_url_secret) {
            (Some(b), _) => b.clone(),
            (None, Some(s)) => self
                .secrets
                .secret(s)?
                .expose()
                .trim_end_matches('/')
                .to_string(),
            (None, None) => String::new(),
        };
        let url = format!("{base}{path}");
        let mut headers = HeaderMap::new();
        for (k, v) in self.headers.iter().chain(r.headers.iter()) {
            let v = self
                .templates
                .render(v, &ctx)
                .map_err(|e| render_err(k.as_str(), e))?;
            let v = HeaderValue::from_str(&v).map_err(|_| ConnectorError::Config {
                message: format!("header `{k}`: its value is not valid in a header"),
            })?;
            headers.insert(k.clone(), v);
        }
        if let Some(h) = self
            .idempotency_header
            .as_ref()
            .filter(|_| with_idempotency_key)
        {
            let v = HeaderValue::from_str(&req.idempotency_key).map_err(|_| {
                ConnectorError::Config {
                    message: "the idempotency key is not valid in a header".into(),
                }
            })?;
            headers.insert(h.clone(), v);
        }
        match &self.auth {
            None => {}
            Some(Auth::Bearer(s)) => {
                let secret = self.secrets.secret(s)?;
                headers.insert(
                    reqwest::header::AUTHORIZATION,
                    sensitive(&format!("Bearer {}", secret.expose()), s)?,
                );
            }
            Some(Auth::Header { name, secret }) => {
                let value = self.secrets.secret(secret)?;
                headers.insert(name.clone(), sensitive(value.expose(), secret)?);
            }
            Some(Auth::Basic { username, secret }) => {
                let value = self.secrets.secret(secret)?;
                let token = base64(format!("{username}:{}", value.expose()).as_bytes());
                headers.insert(
                    reqwest::header::AUTHORIZATION,
                    sensitive(&format!("Basic {token}"), secret)?,
                );
            }
        }
        let mut rb = self
            .client
            .request(r.method.clone(), &url)
            .timeout(req.timeout.min(self.timeout));
        match &r.body {
            None => {}
            Some(serde_json::Value::String(s)) => {
                let text = self
                    .templates
                    .render(s, &ctx)
                    .map_err(|e| render_err("body", e))?;
                if !headers.contains_key(reqwest::header::CONTENT_TYPE) {
                    headers.insert(
                        reqwest::header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                }
                rb = rb.body(text);
            }
            Some(b) => {
                let v = self
                    .templates
                    .render_value(b, &ctx)
                    .map_err(|e| render_err("body", e))?;
                rb = rb.json(&v);
            }
        }
        let resp = rb
            .headers(headers)
            .send()
            .await
            .map_err(|e| classify(&e, req))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = resp.bytes().await.map_err(|e| classify(&e, req))?;
        if status == 429 {
            return Err(ConnectorError::RateLimited {
                retry_after_secs: retry_after,
            });
        }
        let expected = if r.expect.is_empty() {
            (200..300).contains(&status)
        } else {
            r.expect.contains(&status)
        };
        if !expected {
            let snippet: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            let message = format!(
                "{} {} answered {status}: {snippet}",
                r.method,
                redact_url(&url, self.base_url_secret.is_some())
            );
            return Err(if status >= 500 {
                ConnectorError::Transient { message }
            } else {
                ConnectorError::Rejected {
                    status: Some(status),
                    message,
                }
            });
        }
        let answer: serde_json::Value = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into())
            })
        };
        Ok((status, answer))
    }
}

/// The fields a request keeps from its answer (JSON pointers; `""` keeps the whole answer).
fn kept(
    r: &Request,
    status: u16,
    answer: &serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, ConnectorError> {
    let mut fields = serde_json::Map::new();
    for (name, ptr) in &r.keep {
        let v = if ptr.is_empty() {
            Some(answer)
        } else {
            answer.pointer(ptr)
        };
        match v {
            Some(v) => {
                fields.insert(name.clone(), v.clone());
            }
            None => {
                return Err(ConnectorError::Rejected {
                    status: Some(status),
                    message: format!(
                        "the answer has no `{ptr}` to keep as `{name}` (the vendor's answer changed?)"
                    ),
                });
            }
        }
    }
    Ok(fields)
}

/// A header value carrying a secret, marked sensitive so no debug output shows it.
pub fn sensitive(v: &str, secret_name: &str) -> Result<HeaderValue, ConnectorError> {
    let mut h = HeaderValue::from_str(v).map_err(|_| ConnectorError::Secret {
        message: format!("secret `{secret_name}` holds characters not allowed in a header"),
    })?;
    h.set_sensitive(true);
    Ok(h)
}

/// A URL whose base is a secret (a webhook URL) is shown by its path only.
fn redact_url(url: &str, base_is_secret: bool) -> String {
    if base_is_secret {
        "<secret URL>".into()
    } else {
        url.to_string()
    }
}

fn classify(e: &reqwest::Error, req: &CallRequest) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::Timeout {
            secs: req.timeout.as_secs(),
        }
    } else if e.is_connect() || e.is_request() || e.is_body() {
        // The URL can hold a secret (webhooks): say what failed without it.
        ConnectorError::Transient {
            message: format!(
                "the request did not complete ({})",
                if e.is_connect() {
                    "connection failed"
                } else {
                    "transport error"
                }
            ),
        }
    } else {
        ConnectorError::Rejected {
            status: e.status().map(|s| s.as_u16()),
            message: "the request failed".into(),
        }
    }
}

/// `Retry-After` as seconds, or as an HTTP date (seconds from now, at least 0).
pub fn parse_retry_after(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Ok(n) = v.parse::<u64>() {
        return Some(n);
    }
    let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let secs = at.as_second() - jiff::Timestamp::now().as_second();
    Some(secs.max(0) as u64)
}

/// Standard base64 with padding (HTTP Basic credentials).
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

impl Connector for HttpConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn operations(&self) -> &[OperationSpec] {
        &self.specs
    }

    fn sends_idempotency_key(&self, _operation: &str) -> bool {
        self.idempotency_header.is_some()
    }

    fn call<'a>(&'a self, req: &'a CallRequest) -> CallFuture<'a> {
        Box::pin(self.attempt(req))
    }

    fn check<'a>(&'a self, req: &'a CallRequest) -> Option<CheckFuture<'a>> {
        let op = self.op(&req.operation).ok()?;
        let check = op.check.as_ref()?;
        Some(Box::pin(self.confirm(op, check, req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(7));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(0));
        assert_eq!(parse_retry_after("soon"), None);
    }

    fn load(text: &str) -> Result<HttpConnector, LoadError> {
        HttpConnector::load(
            "edr.yaml",
            text,
            Arc::new(Templates::default()),
            Arc::new(crate::secrets::StaticSecrets::default()),
        )
    }

    #[test]
    fn definitions_are_checked_at_load() {
        let e = load("name: edr\nbase_url: http://x\noperations:\n  isolate:\n    class: approve\n    path: /h/{{ params.host }\n").unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("path template"), "{e}");
        let e = load("name: edr\nbase_url: http://x\noperations:\n  isolate:\n    class: approve\n    path: /i\n    inverse: release\n").unwrap_err();
        assert!(e.message.contains("inverse `release`"), "{e}");
        let e = load("name: edr\nbase_url: http://x\noperations:\n  isolate:\n    clas: approve\n    path: /i\n").unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        let c = load("name: edr\nbase_url: http://x\noperations:\n  get_host:\n    class: auto\n    method: get\n    path: /h\n").unwrap();
        assert!(c.operation("get_host").unwrap().idempotent);
        let iso = "name: edr\nbase_url: http://x\noperations:\n  isolate:\n    class: approve\n    path: /i\n    check:\n      path: /h\n";
        let e = load(&format!("{iso}      done_when: {{}}\n")).unwrap_err();
        assert!(e.message.contains("check: `done_when` needs"), "{e}");
        let e = load(&format!("{iso}      done_when: {{ state: x }}\n")).unwrap_err();
        assert!(e.message.contains("`state` must be a JSON pointer"), "{e}");
        let e = load(&format!(
            "{iso}      method: FE TCH\n      done_when: {{ /s: x }}\n"
        ))
        .unwrap_err();
        assert!(
            e.message.contains("check: `FE TCH` is not an HTTP method"),
            "{e}"
        );
        let c = load(&format!("{iso}      done_when: {{ /state: contained }}\n")).unwrap();
        assert!(!c.operation("isolate").unwrap().idempotent);
    }
}
