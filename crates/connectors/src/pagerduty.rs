//! PagerDuty Events API v2: page the on-call responder for a case, and resolve the page.
//!
//! ```yaml
//! name: pagerduty
//! kind: pagerduty
//! routing_key: pagerduty_routing_key          # the name of a stored secret
//! base_url: https://events.pagerduty.com       # default; EU accounts: https://events.eu.pagerduty.com
//! public_url: https://riposte.corp.example     # links into riposte; optional
//! timeout: 10s                                 # default 30s
//! ```
//!
//! The routing key is the **Integration Key** of an "Events API V2" integration on the
//! service to page; nothing else is needed. It travels in the request body (the Events API
//! has no auth header), so it is read only when a call is made and scrubbed from every
//! error.
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `trigger` | auto | `resolve` | `POST /v2/enqueue` `event_action: trigger` |
//! | `resolve` | auto | — | `POST /v2/enqueue` `event_action: resolve` |
//!
//! `trigger` sends `payload: {summary, source, severity, component, class, custom_details}`
//! and, with `public_url`, `links: [{href: <case link>, text}]`, `client` and `client_url`.
//! `severity` is PagerDuty's: riposte's critical → `critical`, high → `error`, medium →
//! `warning`, low and info → `info`. `source` is the first host of the case (else
//! `riposte`); parameters `summary`, `description`, `severity`, `source` replace what the
//! case says. The `dedup_key` is `riposte-<case id>` (the alert id on `alert.received`, the
//! call's idempotency key otherwise) unless the parameter `dedup_key` names one: a second
//! trigger for the same case joins the open PagerDuty alert, so both operations are
//! idempotent and the engine may retry them. The undo record keeps `dedup_key`.
//!
//! PagerDuty answers `202 {"status": "success", "dedup_key": ...}`; a refused event is
//! `400 {"status": "invalid event", "message": ..., "errors": [...]}` (quoted in the
//! failure), `429` waits, `5xx` is retried.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use riposte_domain::SeverityLabel;
use riposte_respond::connector::CallFuture;
use riposte_respond::duration::HumanDuration;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, Auth, Request};
use crate::common::{at, check_name, opt_param, parse, unexpected};
use crate::ticket::{brief, clip, scrub};

pub const KIND: &str = "pagerduty";

const DEFAULT_BASE_URL: &str = "https://events.pagerduty.com";
const TRIGGER: &str = "trigger";
const RESOLVE: &str = "resolve";
/// PagerDuty's limits on `summary` and `dedup_key`.
const SUMMARY_MAX: usize = 1024;
const DEDUP_MAX: usize = 255;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    /// The name of the secret holding the integration's routing key.
    routing_key: String,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured PagerDuty service integration.
pub struct PagerDuty {
    name: String,
    api: Api,
    routing_key: String,
    secrets: Arc<dyn SecretSource>,
    public_url: Option<String>,
    ops: Vec<OperationSpec>,
}

impl std::fmt::Debug for PagerDuty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerDuty")
            .field("name", &self.name)
            .field("routing_key", &self.routing_key)
            .finish_non_exhaustive()
    }
}

/// Loads a `kind: pagerduty` definition.
pub fn load(
    file: &str,
    text: &str,
    secrets: Arc<dyn SecretSource>,
) -> Result<PagerDuty, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    if raw.routing_key.trim().is_empty() {
        return Err(at(
            file,
            text,
            "routing_key:",
            "`routing_key` is empty: name the secret holding the integration key",
        ));
    }
    let public_url = crate::ticket::public_url(raw.public_url.as_deref())
        .map_err(|m| at(file, text, "public_url:", m))?;
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let base = raw.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
    let api = Api::new(&raw.name, base, timeout, Auth::None, secrets.clone())
        .map_err(|m| at(file, text, "base_url:", m))?
        .with_error_reader(events_error);
    let spec = |name: &str, inverse: Option<&str>| OperationSpec {
        name: name.into(),
        class: Class::Auto,
        inverse: inverse.map(str::to_string),
        irreversible: false,
        idempotent: true,
    };
    Ok(PagerDuty {
        name: raw.name,
        api,
        routing_key: raw.routing_key,
        secrets,
        public_url,
        ops: vec![spec(TRIGGER, Some(RESOLVE)), spec(RESOLVE, None)],
    })
}

/// The Events API's error body: `message` and `errors`.
fn events_error(body: &Value) -> Option<String> {
    let message = body.get("message").and_then(Value::as_str)?;
    let errors: Vec<&str> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Some(if errors.is_empty() {
        format!("PagerDuty says: {message}")
    } else {
        format!("PagerDuty says: {message}: {}", errors.join("; "))
    })
}

fn pd_severity(s: SeverityLabel) -> &'static str {
    match s {
        SeverityLabel::Critical => "critical",
        SeverityLabel::High => "error",
        SeverityLabel::Medium => "warning",
        SeverityLabel::Low | SeverityLabel::Info => "info",
    }
}

impl PagerDuty {
    /// The key that ties a trigger to its resolve.
    fn dedup_key(req: &CallRequest) -> String {
        if let Some(k) = opt_param(req, "dedup_key") {
            return clip(k, DEDUP_MAX);
        }
        let case = req.context.pointer("/case/id").and_then(Value::as_str);
        let alert = req.context.pointer("/alert/id").and_then(Value::as_str);
        let key = match case.or(alert).filter(|s| !s.is_empty()) {
            Some(id) => format!("riposte-{id}"),
            None => req.idempotency_key.clone(),
        };
        // Cut, not clipped: the key must stay the same text on every call.
        key.chars().take(DEDUP_MAX).collect()
    }

    fn event(&self, req: &CallRequest, routing_key: &str) -> Result<Value, ConnectorError> {
        let dedup_key = Self::dedup_key(req);
        if req.operation == RESOLVE {
            return Ok(json!({
                "routing_key": routing_key,
                "event_action": "resolve",
                "dedup_key": dedup_key,
            }));
        }
        let b = brief(req, self.public_url.as_deref())?;
        let source = opt_param(req, "source")
            .map(str::to_string)
            .or_else(|| {
                b.entities
                    .iter()
                    .find(|e| e.kind == "host")
                    .map(|e| e.value.clone())
            })
            .unwrap_or_else(|| "riposte".into());
        let mut details = serde_json::Map::new();
        for (k, v) in &b.facts {
            details.insert(k.clone(), json!(v));
        }
        if !b.entities.is_empty() {
            let list: Vec<String> = b
                .entities
                .iter()
                .take(50)
                .map(|e| format!("{} {}", e.kind, e.value))
                .collect();
            details.insert("entities".into(), json!(list));
        }
        details.insert("description".into(), json!(b.paragraphs.join("\n\n")));
        let mut event = json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": {
                "summary": clip(&b.title, SUMMARY_MAX),
                "source": source,
                "severity": pd_severity(b.severity),
                "component": "riposte",
                "class": req.context.pointer("/case/tier").and_then(Value::as_str).unwrap_or("alert"),
                "custom_details": details,
            },
        });
        if let Some(base) = &self.public_url {
            event["client"] = json!("riposte");
            event["client_url"] = json!(base);
        }
        if let (Some(href), Some(id)) = (&b.case_url, &b.case_id) {
            event["links"] = json!([{"href": href, "text": format!("riposte case {id}")}]);
        }
        Ok(event)
    }

    async fn send(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        if req.operation != TRIGGER && req.operation != RESOLVE {
            return Err(ConnectorError::UnknownOperation {
                connector: self.name.clone(),
                operation: req.operation.clone(),
            });
        }
        let key = self.secrets.secret(&self.routing_key)?;
        let key = key.expose();
        let event = self.event(req, key)?;
        let r = Request::new(Method::POST, "/v2/enqueue").json(event);
        let reply = self
            .api
            .send(&r, req.timeout)
            .await
            .map_err(|e| scrub(e, key))?;
        if reply.body.get("status").and_then(Value::as_str) != Some("success") {
            return Err(scrub(
                unexpected(
                    &self.name,
                    "PagerDuty did not answer `success`",
                    &reply.body,
                ),
                key,
            ));
        }
        let dedup_key = reply
            .body
            .get("dedup_key")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| Self::dedup_key(req));
        let fields = serde_json::Map::from_iter([("dedup_key".to_string(), json!(dedup_key))]);
        Ok(CallOutcome {
            undo: Value::Object(fields.clone()),
            fields,
            status: Some(reply.status),
        })
    }
}

impl Connector for PagerDuty {
    fn name(&self) -> &str {
        &self.name
    }

    fn operations(&self) -> &[OperationSpec] {
        &self.ops
    }

    fn sends_idempotency_key(&self, _operation: &str) -> bool {
        // The dedup key plays that part, and both operations are idempotent by it.
        false
    }

    fn call<'a>(&'a self, req: &'a CallRequest) -> CallFuture<'a> {
        Box::pin(self.send(req))
    }
}
