//! The one HTTP client every vendor connector sends through: base URL, authentication
//! (bearer, a vendor header such as Okta's `SSWS`, Basic, or OAuth2 client credentials with
//! the token cached until shortly before it expires), one attempt per call with a deadline,
//! and the vendor's answer classified the same way for all: `429` → rate limited with its
//! `Retry-After`, `5xx` and broken connections → transient, anything else unexpected →
//! rejected with the status and the start of the vendor's message.
//!
//! An expired OAuth2 token (`401` on a call made with a cached token) is refreshed once and
//! the call made again; a second `401` is a rejection. Secret values go only into headers
//! and form bodies marked sensitive; no error carries them (errors name the secret).

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use riposte_respond::ConnectorError;
use riposte_respond::SecretSource;
use riposte_respond::http::{base64, install_tls_provider, parse_retry_after, sensitive};
use serde::Deserialize;

/// How a connector proves who it is.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// `Authorization: Bearer <secret>`.
    Bearer {
        secret: String,
    },
    /// `<name>: <prefix><secret>`, e.g. Okta's `Authorization: SSWS <token>` or
    /// SentinelOne's `Authorization: ApiToken <token>`.
    Header {
        name: HeaderName,
        prefix: String,
        secret: String,
    },
    /// `Authorization: Basic base64(username:secret)`.
    Basic {
        username: String,
        secret: String,
    },
    /// OAuth2 client credentials (RFC 6749 §4.4): the token is fetched from `token_url`
    /// with the client id and the secret, cached, and sent as a bearer token.
    ClientCredentials(ClientCredentials),
}

/// OAuth2 client-credentials settings.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    /// The secret holding the client secret.
    pub secret: String,
    /// `scope`, when the vendor wants one (Microsoft: `https://graph.microsoft.com/.default`).
    pub scope: Option<String>,
}

/// A request body.
#[derive(Debug, Clone, Default)]
pub enum Body {
    #[default]
    None,
    Json(serde_json::Value),
    /// `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
    /// Text with its content type (PAN-OS XML, for instance).
    Text {
        content_type: &'static str,
        text: String,
    },
}

/// A successful answer: a 2xx, or a status the caller listed as expected.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as JSON; a body that is not JSON becomes a JSON string; empty → null.
    pub body: serde_json::Value,
}

/// One request, as a connector module describes it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Appended to the base URL; starts with `/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Body,
    /// Statuses outside 2xx that are answers rather than failures (a 404 that means
    /// "already gone" for an inverse, say).
    pub also_ok: Vec<u16>,
    /// The whole URL, replacing base URL + path: a webhook URL that is itself a secret
    /// (read only when the call is made). No error carries it; errors name `path`.
    pub full_url: Option<String>,
}

impl Request {
    pub fn new(method: Method, path: impl Into<String>) -> Request {
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::None,
            also_ok: Vec::new(),
            full_url: None,
        }
    }

    pub fn json(mut self, body: serde_json::Value) -> Request {
        self.body = Body::Json(body);
        self
    }

    pub fn query(mut self, name: &str, value: impl Into<String>) -> Request {
        self.query.push((name.to_string(), value.into()));
        self
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }

    pub fn also_ok(mut self, status: u16) -> Request {
        self.also_ok.push(status);
        self
    }
}

struct CachedToken {
    /// Sent only in a sensitive header.
    value: String,
    /// When to stop using it (the vendor's expiry minus a margin).
    until: Instant,
}

/// The HTTP side of one configured connector.
pub struct Api {
    connector: String,
    base_url: String,
    client: reqwest::Client,
    timeout: Duration,
    auth: Auth,
    secrets: Arc<dyn SecretSource>,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    /// A vendor header holding the epoch second its rate limit resets (Okta's
    /// `X-Rate-Limit-Reset`), read on a `429` that carries no `Retry-After`.
    reset_header: Option<HeaderName>,
    error_reader: Option<ErrorReader>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("connector", &self.connector)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Reads a vendor's error body (already parsed as JSON) into a short message, e.g. Jira's
/// `errorMessages` and `errors`; `None` leaves the start of the raw body in the error.
pub type ErrorReader = fn(&serde_json::Value) -> Option<String>;

/// Refresh a cached token this long before the vendor says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

impl Api {
    /// `base_url` without a trailing slash is the prefix of every request path.
    pub fn new(
        connector: &str,
        base_url: &str,
        timeout: Duration,
        auth: Auth,
        secrets: Arc<dyn SecretSource>,
    ) -> Result<Api, String> {
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(format!(
                "base_url `{base_url}` must start with https:// (or http:// for a local test)"
            ));
        }
        install_tls_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Api {
            connector: connector.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            client,
            timeout,
            auth,
            secrets,
            token: tokio::sync::Mutex::new(None),
            reset_header: None,
            error_reader: None,
        })
    }

    /// Reads `header` (epoch seconds at which the vendor's rate-limit window resets) for
    /// the wait on a `429` without `Retry-After`.
    pub fn with_rate_limit_reset(mut self, header: HeaderName) -> Api {
        self.reset_header = Some(header);
        self
    }

    /// Errors carry what `reader` makes of the vendor's error body.
    pub fn with_error_reader(mut self, reader: ErrorReader) -> Api {
        self.error_reader = Some(reader);
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The connector's own deadline for one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `req` once (twice when a cached OAuth2 token turned out to be expired) and
    /// classifies the answer. `deadline` is the caller's budget; the connector's own
    /// timeout caps it.
    pub async fn send(&self, req: &Request, deadline: Duration) -> Result<Reply, ConnectorError> {
        let deadline = deadline.min(self.timeout);
        let cached =
            matches!(self.auth, Auth::ClientCredentials(_)) && self.token.lock().await.is_some();
        match self.send_once(req, deadline).await {
            Err(ConnectorError::Rejected {
                status: Some(401), ..
            }) if cached => {
                // The token we cached was revoked or expired early: fetch a new one, once.
                *self.token.lock().await = None;
                self.send_once(req, deadline).await
            }
            other => other,
        }
    }

    async fn send_once(&self, req: &Request, deadline: Duration) -> Result<Reply, ConnectorError> {
        let url = match &req.full_url {
            Some(u) => u.clone(),
            None => format!("{}{}", self.base_url, req.path),
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &req.headers {
            let v = HeaderValue::from_str(v).map_err(|_| ConnectorError::Config {
                message: format!("header `{k}`: its value is not valid in a header"),
            })?;
            headers.insert(k.clone(), v);
        }
        if let Some((name, value)) = self.auth_header(deadline).await? {
            headers.insert(name, value);
        }
        let mut rb = self
            .client
            .request(req.method.clone(), &url)
            .timeout(deadline);
        if !req.query.is_empty() {
            rb = rb.query(&req.query);
        }
        rb = match &req.body {
            Body::None => rb,
            Body::Json(v) => rb.json(v),
            Body::Form(pairs) => rb.form(pairs),
            Body::Text { content_type, text } => {
                headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type),
                );
                rb.body(text.clone())
            }
        };
        let resp = rb
            .headers(headers)
            .send()
            .await
            .map_err(|e| transport(&e, deadline))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| transport(&e, deadline))?;
        let ok = (200..300).contains(&status) || req.also_ok.contains(&status);
        if !ok {
            return Err(self.refusal(req, status, &headers, &bytes));
        }
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into())
            })
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// The error for an answer outside the expected statuses.
    fn refusal(
        &self,
        req: &Request,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> ConnectorError {
        if status == 429 {
            let reset = self.reset_header.as_ref().and_then(|h| {
                let at: i64 = headers.get(h)?.to_str().ok()?.trim().parse().ok()?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_secs();
                Some(u64::try_from(at).ok()?.saturating_sub(now))
            });
            return ConnectorError::RateLimited {
                retry_after_secs: headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after)
                    .or(reset),
            };
        }
        let read = self.error_reader.and_then(|read| {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| read(&v))
        });
        let snippet: String = match read {
            Some(m) => m.chars().take(300).collect(),
            None => String::from_utf8_lossy(body).chars().take(300).collect(),
        };
        let message = format!(
            "{}: {} {} answered {status}: {}",
            self.connector,
            req.method,
            req.path,
            snippet.trim()
        );
        if status >= 500 {
            ConnectorError::Transient { message }
        } else {
            ConnectorError::Rejected {
                status: Some(status),
                message,
            }
        }
    }

    async fn auth_header(
        &self,
        deadline: Duration,
    ) -> Result<Option<(HeaderName, HeaderValue)>, ConnectorError> {
        Ok(match &self.auth {
            Auth::None => None,
            Auth::Bearer { secret } => {
                let s = self.secrets.secret(secret)?;
                Some((
                    AUTHORIZATION,
                    sensitive(&format!("Bearer {}", s.expose()), secret)?,
                ))
            }
            Auth::Header {
                name,
                prefix,
                secret,
            } => {
                let s = self.secrets.secret(secret)?;
                Some((
                    name.clone(),
                    sensitive(&format!("{prefix}{}", s.expose()), secret)?,
                ))
            }
            Auth::Basic { username, secret } => {
                let s = self.secrets.secret(secret)?;
                let token = base64(format!("{username}:{}", s.expose()).as_bytes());
                Some((AUTHORIZATION, sensitive(&format!("Basic {token}"), secret)?))
            }
            Auth::ClientCredentials(cc) => {
                let mut cached = self.token.lock().await;
                let fresh = cached.as_ref().is_some_and(|t| t.until > Instant::now());
                if !fresh {
                    *cached = Some(self.fetch_token(cc, deadline).await?);
                }
                let value = cached
                    .as_ref()
                    .map(|t| t.value.as_str())
                    .unwrap_or_default();
                Some((
                    AUTHORIZATION,
                    sensitive(&format!("Bearer {value}"), &cc.secret)?,
                ))
            }
        })
    }

    async fn fetch_token(
        &self,
        cc: &ClientCredentials,
        deadline: Duration,
    ) -> Result<CachedToken, ConnectorError> {
        let secret = self.secrets.secret(&cc.secret)?;
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", cc.client_id.as_str()),
            ("client_secret", secret.expose()),
        ];
        if let Some(scope) = &cc.scope {
            form.push(("scope", scope.as_str()));
        }
        let resp = self
            .client
            .post(&cc.token_url)
            .timeout(deadline)
            .form(&form)
            .send()
            .await
            .map_err(|e| transport(&e, deadline))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| transport(&e, deadline))?;
        if !(200..300).contains(&status) {
            // The token endpoint's message names the problem (invalid_client, …); it never
            // echoes the secret we sent.
            let req = Request::new(Method::POST, "(token endpoint)");
            return Err(match self.refusal(&req, status, &headers, &bytes) {
                ConnectorError::Rejected { status, message } => ConnectorError::Rejected {
                    status,
                    message: format!("cannot get an OAuth2 token: {message}"),
                },
                other => other,
            });
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&bytes).map_err(|e| ConnectorError::Rejected {
                status: Some(status),
                message: format!(
                    "{}: the token endpoint's answer has no access_token: {e}",
                    self.connector
                ),
            })?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(300));
        Ok(CachedToken {
            value: answer.access_token,
            until: Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN),
        })
    }
}

/// A request that got no answer: the URL is left out (a webhook URL can be a secret).
fn transport(e: &reqwest::Error, deadline: Duration) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::Timeout {
            secs: deadline.as_secs(),
        }
    } else if e.is_connect() {
        ConnectorError::Transient {
            message: "the request did not complete (connection failed)".into(),
        }
    } else {
        ConnectorError::Transient {
            message: "the request did not complete (transport error)".into(),
        }
    }
}
