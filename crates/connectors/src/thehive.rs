//! TheHive 5: raise an alert or open a case for a riposte case, and take it back.
//!
//! ```yaml
//! name: hive
//! kind: thehive
//! base_url: https://thehive.corp.example
//! api_key: thehive_api_key              # the name of a stored secret
//! organisation: SOC                     # sent as X-Organisation; optional
//! alert_type: riposte                   # alert `type`; default riposte
//! source: riposte                       # alert `source`; default riposte
//! tlp: 2                                # 0 clear … 4 red; default 2 (amber)
//! pap: 2                                # same scale; default 2
//! public_url: https://riposte.corp.example   # links into riposte; optional
//! timeout: 15s                          # default 30s
//! ```
//!
//! The API key's user needs, in the organisation, the permissions **manageAlert/create**,
//! **manageAlert/delete**, **manageCase/create** and **manageCase/update** (TheHive's
//! *analyst* profile has them, except deleting alerts, which takes *org-admin* or a custom
//! profile). Authentication is `Authorization: Bearer <api key>`.
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `create_alert` | auto | `delete_alert` | `POST /api/v1/alert` |
//! | `delete_alert` | auto | — | `DELETE /api/v1/alert/{id}` |
//! | `create_case` | auto | `close_case` | `POST /api/v1/case` |
//! | `close_case` | auto | — | `PATCH /api/v1/case/{id}` |
//!
//! `create_alert` sends `type`, `source`, `sourceRef`, `title`, `description`,
//! `severity` (1 low … 4 critical: riposte's info and low → 1, medium → 2, high → 3,
//! critical → 4), `tags` (`riposte` and the parameter `tags`), `tlp`, `pap`, `externalLink`
//! (the case in riposte) and `observables` from the case's entities (host → `hostname`,
//! ip, domain, url, file hash → `hash`, email → `mail`, the rest `other`, each tagged with
//! its kind and role). `sourceRef` is the riposte case id (the alert id on
//! `alert.received`; the parameter `source_ref` wins). TheHive keeps one alert per
//! `type`, `source` and `sourceRef` and answers a second one `400 CreateError … already
//! exist`: that answer means the alert is there (a retry, or another playbook, made it),
//! and the connector finds it with `POST /api/v1/query` and returns it. So `create_alert` is
//! idempotent, and after a restart the same query tells whether it took effect.
//!
//! The inverse **deletes** the alert rather than marking it ignored: TheHive 5's alert
//! statuses are per organisation (an `Ignored` status may not exist), and an ignored alert
//! keeps its `sourceRef`, so the alert could never be raised again for that case. riposte's
//! audit trail keeps what was sent. An alert already gone (`404`) counts as deleted.
//!
//! `create_case` sends `title`, `description`, `severity`, `tags`, `tlp`, `pap`; it is not
//! idempotent (cases have no external reference). The undo record keeps `case_id` (TheHive's
//! `_id`) and `number`. `close_case` sets a closed `status` with the `summary` TheHive
//! requires to close: the parameter `status` (`TruePositive`, `FalsePositive`,
//! `Indeterminate`, `Other`, `Duplicated`), else from the riposte case's verdict
//! (`true_positive` → TruePositive, `false_positive` → FalsePositive, otherwise
//! Indeterminate), `impactStatus` (`NotApplicable` unless the parameter `impact_status`
//! says `WithImpact` or `NoImpact`) and `summary` (the parameter, else a line naming the
//! case). Closing twice changes nothing.
//!
//! TheHive's errors (`{"type": "AuthenticationError", "message": ...}`) are quoted.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderName;
use riposte_domain::SeverityLabel;
use riposte_respond::connector::{CallFuture, CheckFuture};
use riposte_respond::duration::HumanDuration;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, Auth, Request};
use crate::common::{at, check_name, opt_param, parse, unexpected};
use crate::ticket::{Brief, brief, clip};

pub const KIND: &str = "thehive";

const CREATE_ALERT: &str = "create_alert";
const DELETE_ALERT: &str = "delete_alert";
const CREATE_CASE: &str = "create_case";
const CLOSE_CASE: &str = "close_case";
const CLOSED: &[&str] = &[
    "TruePositive",
    "FalsePositive",
    "Indeterminate",
    "Other",
    "Duplicated",
];
const IMPACT: &[&str] = &["NotApplicable", "WithImpact", "NoImpact"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    base_url: String,
    /// The name of the secret holding the API key.
    api_key: String,
    #[serde(default)]
    organisation: Option<String>,
    #[serde(default)]
    alert_type: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    tlp: Option<u8>,
    #[serde(default)]
    pap: Option<u8>,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured TheHive organisation.
#[derive(Debug)]
pub struct TheHive {
    name: String,
    api: Api,
    organisation: Option<String>,
    alert_type: String,
    source: String,
    tlp: u8,
    pap: u8,
    public_url: Option<String>,
    ops: Vec<OperationSpec>,
}

fn spec(name: &str, inverse: Option<&str>, idempotent: bool) -> OperationSpec {
    OperationSpec {
        name: name.into(),
        class: Class::Auto,
        inverse: inverse.map(str::to_string),
        irreversible: false,
        idempotent,
    }
}

/// Loads a `kind: thehive` definition.
pub fn load(file: &str, text: &str, secrets: Arc<dyn SecretSource>) -> Result<TheHive, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    for (key, v) in [("tlp:", raw.tlp), ("pap:", raw.pap)] {
        if v.is_some_and(|v| v > 4) {
            return Err(at(
                file,
                text,
                key,
                format!("`{}` is 0 (clear) to 4 (red)", key.trim_end_matches(':')),
            ));
        }
    }
    for (key, v) in [("alert_type:", &raw.alert_type), ("source:", &raw.source)] {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(at(
                file,
                text,
                key,
                format!("`{}` is empty", key.trim_end_matches(':')),
            ));
        }
    }
    let public_url = crate::ticket::public_url(raw.public_url.as_deref())
        .map_err(|m| at(file, text, "public_url:", m))?;
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let auth = Auth::Bearer {
        secret: raw.api_key,
    };
    let api = Api::new(&raw.name, &raw.base_url, timeout, auth, secrets)
        .map_err(|m| at(file, text, "base_url:", m))?
        .with_error_reader(hive_error);
    Ok(TheHive {
        name: raw.name,
        api,
        organisation: raw.organisation,
        alert_type: raw.alert_type.unwrap_or_else(|| "riposte".into()),
        source: raw.source.unwrap_or_else(|| "riposte".into()),
        tlp: raw.tlp.unwrap_or(2),
        pap: raw.pap.unwrap_or(2),
        public_url,
        ops: vec![
            spec(CREATE_ALERT, Some(DELETE_ALERT), true),
            spec(DELETE_ALERT, None, true),
            spec(CREATE_CASE, Some(CLOSE_CASE), false),
            spec(CLOSE_CASE, None, true),
        ],
    })
}

/// TheHive's error body: `type` and `message`.
fn hive_error(body: &Value) -> Option<String> {
    let message = body.get("message").and_then(Value::as_str)?;
    Some(match body.get("type").and_then(Value::as_str) {
        Some(t) => format!("TheHive says: {t}: {message}"),
        None => format!("TheHive says: {message}"),
    })
}

fn hive_severity(s: SeverityLabel) -> u8 {
    match s {
        SeverityLabel::Info | SeverityLabel::Low => 1,
        SeverityLabel::Medium => 2,
        SeverityLabel::High => 3,
        SeverityLabel::Critical => 4,
    }
}

/// TheHive's observable data type for a riposte entity kind.
fn data_type(kind: &str) -> &'static str {
    match kind {
        "host" => "hostname",
        "ip" => "ip",
        "domain" => "domain",
        "url" => "url",
        "file_hash" => "hash",
        "email" => "mail",
        _ => "other",
    }
}

/// An id fit for a path: TheHive's `~123456` or letters, digits, `-`, `_`.
fn check_id(id: &str) -> Result<&str, ConnectorError> {
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '~' | '-' | '_'));
    if ok {
        Ok(id)
    } else {
        Err(ConnectorError::Config {
            message: format!("`{id}` is not a TheHive id"),
        })
    }
}

impl TheHive {
    fn request(&self, method: Method, path: impl Into<String>) -> Request {
        let r = Request::new(method, path);
        match &self.organisation {
            Some(o) => r.header(HeaderName::from_static("x-organisation"), o.clone()),
            None => r,
        }
    }

    fn tags(&self, b: &Brief) -> Vec<String> {
        let mut tags = vec!["riposte".to_string()];
        tags.extend(b.tags.iter().cloned());
        tags.dedup();
        tags
    }

    /// The alert's `sourceRef`: the parameter, else the case (or alert) id, else the key.
    fn source_ref(req: &CallRequest) -> String {
        opt_param(req, "source_ref")
            .or_else(|| req.context.pointer("/case/id").and_then(Value::as_str))
            .or_else(|| req.context.pointer("/alert/id").and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .unwrap_or(&req.idempotency_key)
            .to_string()
    }

    fn alert_outcome(&self, alert: &Value, status: u16) -> Result<CallOutcome, ConnectorError> {
        let id = alert
            .get("_id")
            .and_then(Value::as_str)
            .ok_or_else(|| unexpected(&self.name, "the alert has no `_id`", alert))?;
        let mut fields = serde_json::Map::new();
        fields.insert("alert_id".into(), json!(id));
        if let Some(r) = alert.get("sourceRef") {
            fields.insert("source_ref".into(), r.clone());
        }
        Ok(CallOutcome {
            undo: json!({"alert_id": id}),
            fields,
            status: Some(status),
        })
    }

    async fn create_alert(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let b = brief(req, self.public_url.as_deref())?;
        let source_ref = Self::source_ref(req);
        let observables: Vec<Value> = b
            .entities
            .iter()
            .take(200)
            .map(|e| {
                let mut tags = vec![format!("riposte:{}", e.kind)];
                if let Some(r) = &e.role {
                    tags.push(format!("role:{r}"));
                }
                json!({"dataType": data_type(&e.kind), "data": e.value, "tags": tags})
            })
            .collect();
        let mut body = json!({
            "type": self.alert_type,
            "source": self.source,
            "sourceRef": source_ref,
            "title": clip(&b.title, 512),
            "description": b.text(),
            "severity": hive_severity(b.severity),
            "tags": self.tags(&b),
            "tlp": self.tlp,
            "pap": self.pap,
            "observables": observables,
        });
        if let Some(u) = &b.case_url {
            body["externalLink"] = json!(u);
        }
        let r = self.request(Method::POST, "/api/v1/alert").json(body);
        match self.api.send(&r, req.timeout).await {
            Ok(reply) => self.alert_outcome(&reply.body, reply.status),
            Err(ConnectorError::Rejected {
                status: Some(400),
                message,
            }) if message.contains("CreateError") && message.contains("already exist") => {
                // One alert per type, source and sourceRef: this one is already there.
                match self.find_alert(&source_ref, req.timeout).await? {
                    Some(out) => Ok(out),
                    None => Err(ConnectorError::Rejected {
                        status: Some(400),
                        message: format!(
                            "{message} (and no alert with sourceRef `{source_ref}` is visible to this key)"
                        ),
                    }),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The alert with this connector's type and source and `source_ref`, if any.
    async fn find_alert(
        &self,
        source_ref: &str,
        deadline: Duration,
    ) -> Result<Option<CallOutcome>, ConnectorError> {
        let q = json!({"query": [
            {"_name": "listAlert"},
            {"_name": "filter", "_and": [
                {"_eq": {"_field": "type", "_value": self.alert_type}},
                {"_eq": {"_field": "source", "_value": self.source}},
                {"_eq": {"_field": "sourceRef", "_value": source_ref}}
            ]}
        ]});
        let r = self
            .request(Method::POST, "/api/v1/query")
            .query("name", "riposte-find-alert")
            .json(q);
        let reply = self.api.send(&r, deadline).await?;
        let list = reply
            .body
            .as_array()
            .ok_or_else(|| unexpected(&self.name, "the query answer is not a list", &reply.body))?;
        match list.first() {
            Some(a) => self.alert_outcome(a, reply.status).map(Some),
            None => Ok(None),
        }
    }

    async fn delete_alert(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let id = opt_param(req, "alert_id").ok_or_else(|| ConnectorError::Config {
            message: format!("operation `{}` needs `alert_id`", req.operation),
        })?;
        let id = check_id(id)?;
        let r = self
            .request(Method::DELETE, format!("/api/v1/alert/{id}"))
            .also_ok(404);
        let reply = self.api.send(&r, req.timeout).await?;
        let fields = serde_json::Map::from_iter([
            ("alert_id".to_string(), json!(id)),
            ("already_gone".to_string(), json!(reply.status == 404)),
        ]);
        Ok(CallOutcome {
            undo: Value::Null,
            fields,
            status: Some(reply.status),
        })
    }

    async fn create_case(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let b = brief(req, self.public_url.as_deref())?;
        let body = json!({
            "title": clip(&b.title, 512),
            "description": b.text(),
            "severity": hive_severity(b.severity),
            "tags": self.tags(&b),
            "tlp": self.tlp,
            "pap": self.pap,
        });
        let r = self.request(Method::POST, "/api/v1/case").json(body);
        let reply = self.api.send(&r, req.timeout).await?;
        let id = reply
            .body
            .get("_id")
            .and_then(Value::as_str)
            .ok_or_else(|| unexpected(&self.name, "the case has no `_id`", &reply.body))?;
        let mut fields = serde_json::Map::new();
        fields.insert("case_id".into(), json!(id));
        if let Some(n) = reply.body.get("number") {
            fields.insert("number".into(), n.clone());
        }
        Ok(CallOutcome {
            undo: Value::Object(fields.clone()),
            fields,
            status: Some(reply.status),
        })
    }

    async fn close_case(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let id = opt_param(req, "case_id").ok_or_else(|| ConnectorError::Config {
            message: format!(
                "operation `{}` needs `case_id` (TheHive's case id)",
                req.operation
            ),
        })?;
        let id = check_id(id)?;
        let status = match req.params.get("status").and_then(Value::as_str) {
            Some(s) if CLOSED.contains(&s) => s,
            Some(s) => {
                return Err(ConnectorError::Config {
                    message: format!(
                        "operation `{}`: `status` `{s}` is not a closed status ({})",
                        req.operation,
                        CLOSED.join(", ")
                    ),
                });
            }
            None => match req.context.pointer("/case/verdict").and_then(Value::as_str) {
                Some("true_positive") => "TruePositive",
                Some("false_positive") => "FalsePositive",
                _ => "Indeterminate",
            },
        };
        let impact = match req.params.get("impact_status").and_then(Value::as_str) {
            Some(s) if IMPACT.contains(&s) => s,
            Some(s) => {
                return Err(ConnectorError::Config {
                    message: format!(
                        "operation `{}`: `impact_status` `{s}` is not one of {}",
                        req.operation,
                        IMPACT.join(", ")
                    ),
                });
            }
            None => "NotApplicable",
        };
        let summary = match req.params.get("summary").and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() => s.to_string(),
            _ => {
                let mut s = if req.undo.is_null() {
                    "Closed by riposte".to_string()
                } else {
                    "Closed by riposte: the action that opened this case was undone".to_string()
                };
                if let Some(c) = req.context.pointer("/case/id").and_then(Value::as_str) {
                    s.push_str(&format!("; case {c}"));
                }
                s.push('.');
                s
            }
        };
        let r = self
            .request(Method::PATCH, format!("/api/v1/case/{id}"))
            .json(json!({"status": status, "impactStatus": impact, "summary": summary}));
        let reply = self.api.send(&r, req.timeout).await?;
        let fields = serde_json::Map::from_iter([
            ("case_id".to_string(), json!(id)),
            ("status".to_string(), json!(status)),
        ]);
        Ok(CallOutcome {
            undo: Value::Null,
            fields,
            status: Some(reply.status),
        })
    }

    async fn act(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        match req.operation.as_str() {
            CREATE_ALERT => self.create_alert(req).await,
            DELETE_ALERT => self.delete_alert(req).await,
            CREATE_CASE => self.create_case(req).await,
            CLOSE_CASE => self.close_case(req).await,
            other => Err(ConnectorError::UnknownOperation {
                connector: self.name.clone(),
                operation: other.into(),
            }),
        }
    }
}

impl Connector for TheHive {
    fn name(&self) -> &str {
        &self.name
    }

    fn operations(&self) -> &[OperationSpec] {
        &self.ops
    }

    fn sends_idempotency_key(&self, _operation: &str) -> bool {
        false
    }

    fn call<'a>(&'a self, req: &'a CallRequest) -> CallFuture<'a> {
        Box::pin(self.act(req))
    }

    fn check<'a>(&'a self, req: &'a CallRequest) -> Option<CheckFuture<'a>> {
        (req.operation == CREATE_ALERT).then(|| {
            Box::pin(async move { self.find_alert(&Self::source_ref(req), req.timeout).await })
                as CheckFuture<'a>
        })
    }
}
