//! ServiceNow: open an incident for a case through the Table API, and resolve it.
//!
//! ```yaml
//! name: snow
//! kind: servicenow
//! base_url: https://corp.service-now.com         # your instance
//! username: svc_riposte                          # Basic auth: the user …
//! password: snow_password                        # … and the name of the secret with its password
//! # or OAuth2 client credentials (token from <base_url>/oauth_token.do):
//! # client_id: 3f9c0e…
//! # client_secret: snow_client_secret           # the name of a stored secret
//! caller_id: 6816f79cc0a8016401c5a33be04be441     # sys_id of the caller (sys_user); optional
//! assignment_group: 287ebd7da9fe198100f92cc8d1d2154e   # sys_id of a group; optional
//! fields: {category: network, contact_type: integration}   # set on every incident; optional
//! close_code: Solution provided                  # default; your instance's resolution code
//! public_url: https://riposte.corp.example       # links into riposte; optional
//! timeout: 15s                                   # default 30s
//! ```
//!
//! The user (or the OAuth client's user) needs the **itil** role, which creates, reads and
//! updates incidents through the Table API; where the instance limits REST access by role,
//! also **snc_platform_rest_api_access**.
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `open_incident` | auto | `resolve_incident` | `POST /api/now/table/incident` |
//! | `resolve_incident` | auto | — | `PATCH /api/now/table/incident/{sys_id}` |
//!
//! `open_incident` sends `short_description` (at most 160 characters), `description`,
//! `urgency` and `impact` from the severity (urgency/impact: critical → 1/1, high → 2/1,
//! medium → 2/2, low → 3/2, info → 3/3, which ServiceNow's priority lookup makes P1 … P5),
//! `caller_id`,
//! `assignment_group`, the configured `fields`, and `correlation_id` = the call's
//! idempotency key with `correlation_display: riposte`. Parameters: see [`crate::ticket`].
//! The undo record keeps `sys_id` and `number`.
//!
//! `resolve_incident` sets `state: 6` (Resolved) with the two fields ServiceNow requires to
//! resolve, `close_code` and `close_notes` (the parameter `close_notes`, else a line naming
//! the case and playbook). It acts on the undo record's or the parameters' `sys_id`, or the
//! parameter `number` (`INC0010042`, looked up first). Resolving twice changes nothing:
//! idempotent.
//!
//! `open_incident` is not idempotent, but after a restart between send and answer the engine
//! asks `GET /api/now/table/incident?sysparm_query=correlation_id=<key>` whether the
//! incident exists, and keeps it instead of opening a second one. ServiceNow's errors
//! (`{"error": {"message", "detail"}, "status": "failure"}`) are quoted in the failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::ACCEPT;
use riposte_domain::SeverityLabel;
use riposte_respond::connector::{CallFuture, CheckFuture};
use riposte_respond::duration::HumanDuration;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, Auth, ClientCredentials, Request};
use crate::common::{at, check_name, opt_param, parse, unexpected};
use crate::ticket::{brief, clip};

pub const KIND: &str = "servicenow";

const OPEN: &str = "open_incident";
const RESOLVE: &str = "resolve_incident";
const TABLE: &str = "/api/now/table/incident";
/// The incident table's limits on `short_description` and `correlation_id`.
const SHORT_MAX: usize = 160;
const CORRELATION_MAX: usize = 100;
/// `state` for Resolved in the incident table.
const RESOLVED: &str = "6";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    base_url: String,
    #[serde(default)]
    username: Option<String>,
    /// The name of the secret holding the password.
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    /// The name of the secret holding the OAuth client secret.
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    caller_id: Option<String>,
    #[serde(default)]
    assignment_group: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    close_code: Option<String>,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured ServiceNow instance.
#[derive(Debug)]
pub struct ServiceNow {
    name: String,
    api: Api,
    caller_id: Option<String>,
    assignment_group: Option<String>,
    fields: BTreeMap<String, String>,
    close_code: String,
    public_url: Option<String>,
    ops: Vec<OperationSpec>,
}

/// A sys_id: 32 hexadecimal characters.
fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Loads a `kind: servicenow` definition.
pub fn load(
    file: &str,
    text: &str,
    secrets: Arc<dyn SecretSource>,
) -> Result<ServiceNow, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    let base = raw.base_url.trim_end_matches('/').to_string();
    let auth = match (raw.username, raw.password, raw.client_id, raw.client_secret) {
        (Some(username), Some(secret), None, None) if !username.trim().is_empty() => {
            Auth::Basic { username, secret }
        }
        (None, None, Some(client_id), Some(secret)) if !client_id.trim().is_empty() => {
            Auth::ClientCredentials(ClientCredentials {
                token_url: format!("{base}/oauth_token.do"),
                client_id,
                secret,
                scope: None,
            })
        }
        _ => {
            return Err(at(
                file,
                text,
                "base_url:",
                "give either `username` and `password` (Basic) or `client_id` and `client_secret` (OAuth2), not both and not one half",
            ));
        }
    };
    for (key, v) in [
        ("caller_id:", &raw.caller_id),
        ("assignment_group:", &raw.assignment_group),
    ] {
        if let Some(v) = v
            && !is_sys_id(v)
        {
            return Err(at(
                file,
                text,
                key,
                format!(
                    "`{}` `{v}` is not a sys_id (32 hexadecimal characters)",
                    key.trim_end_matches(':')
                ),
            ));
        }
    }
    if let Some(k) = raw.fields.keys().find(|k| {
        k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }) {
        return Err(at(
            file,
            text,
            "fields:",
            format!("`fields`: `{k}` is not a column name (lower case, digits, _)"),
        ));
    }
    let public_url = crate::ticket::public_url(raw.public_url.as_deref())
        .map_err(|m| at(file, text, "public_url:", m))?;
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let api = Api::new(&raw.name, &base, timeout, auth, secrets)
        .map_err(|m| at(file, text, "base_url:", m))?
        .with_error_reader(snow_error);
    Ok(ServiceNow {
        name: raw.name,
        api,
        caller_id: raw.caller_id,
        assignment_group: raw.assignment_group,
        fields: raw.fields,
        close_code: raw.close_code.unwrap_or_else(|| "Solution provided".into()),
        public_url,
        ops: vec![
            OperationSpec {
                name: OPEN.into(),
                class: Class::Auto,
                inverse: Some(RESOLVE.into()),
                irreversible: false,
                idempotent: false,
            },
            OperationSpec {
                name: RESOLVE.into(),
                class: Class::Auto,
                inverse: None,
                irreversible: false,
                idempotent: true,
            },
        ],
    })
}

/// ServiceNow's error body: `error.message` and `error.detail`.
fn snow_error(body: &Value) -> Option<String> {
    let message = body.pointer("/error/message").and_then(Value::as_str)?;
    Some(
        match body
            .pointer("/error/detail")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        {
            Some(d) => format!("ServiceNow says: {message} ({d})"),
            None => format!("ServiceNow says: {message}"),
        },
    )
}

/// A Table API request, answered in JSON.
fn table(method: Method, path: impl Into<String>) -> Request {
    Request::new(method, path).header(ACCEPT, "application/json")
}

/// `(urgency, impact)` for a severity.
fn urgency_impact(s: SeverityLabel) -> (&'static str, &'static str) {
    match s {
        SeverityLabel::Critical => ("1", "1"),
        SeverityLabel::High => ("2", "1"),
        SeverityLabel::Medium => ("2", "2"),
        SeverityLabel::Low => ("3", "2"),
        SeverityLabel::Info => ("3", "3"),
    }
}

/// The correlation id of a call: the idempotency key, cut to the column's size.
fn correlation(req: &CallRequest) -> String {
    req.idempotency_key.chars().take(CORRELATION_MAX).collect()
}

impl ServiceNow {
    fn outcome(&self, record: &Value, status: u16) -> Result<CallOutcome, ConnectorError> {
        let (Some(sys_id), Some(number)) = (
            record.get("sys_id").and_then(Value::as_str),
            record.get("number").and_then(Value::as_str),
        ) else {
            return Err(unexpected(
                &self.name,
                "the incident has no `sys_id` and `number`",
                record,
            ));
        };
        let undo = json!({"sys_id": sys_id, "number": number});
        let mut fields = serde_json::Map::new();
        fields.insert("sys_id".into(), json!(sys_id));
        fields.insert("number".into(), json!(number));
        fields.insert(
            "url".into(),
            json!(format!(
                "{}/nav_to.do?uri=incident.do?sys_id={sys_id}",
                self.api.base_url()
            )),
        );
        Ok(CallOutcome {
            fields,
            undo,
            status: Some(status),
        })
    }

    async fn open(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let b = brief(req, self.public_url.as_deref())?;
        let (urgency, impact) = urgency_impact(b.severity);
        let mut body = serde_json::Map::new();
        for (k, v) in &self.fields {
            body.insert(k.clone(), json!(v));
        }
        body.insert("short_description".into(), json!(clip(&b.title, SHORT_MAX)));
        body.insert("description".into(), json!(b.text()));
        body.insert("urgency".into(), json!(urgency));
        body.insert("impact".into(), json!(impact));
        if let Some(c) = &self.caller_id {
            body.insert("caller_id".into(), json!(c));
        }
        if let Some(g) = &self.assignment_group {
            body.insert("assignment_group".into(), json!(g));
        }
        body.insert("correlation_id".into(), json!(correlation(req)));
        body.insert("correlation_display".into(), json!("riposte"));
        let r = table(Method::POST, TABLE)
            .query("sysparm_fields", "sys_id,number")
            .json(Value::Object(body));
        let reply = self.api.send(&r, req.timeout).await?;
        let record = reply.body.get("result").cloned().unwrap_or(Value::Null);
        self.outcome(&record, reply.status)
    }

    /// The one incident whose `column` is `value`, if any.
    async fn find(
        &self,
        column: &str,
        value: &str,
        deadline: Duration,
    ) -> Result<Option<(Value, u16)>, ConnectorError> {
        // `^` joins conditions in an encoded query: a value holding one would change it.
        if value.contains('^') || value.contains('=') {
            return Err(ConnectorError::Config {
                message: format!("`{value}` cannot be searched for in ServiceNow (holds ^ or =)"),
            });
        }
        let r = table(Method::GET, TABLE)
            .query("sysparm_query", format!("{column}={value}"))
            .query("sysparm_fields", "sys_id,number")
            .query("sysparm_limit", "1");
        let reply = self.api.send(&r, deadline).await?;
        let list = reply
            .body
            .get("result")
            .and_then(Value::as_array)
            .ok_or_else(|| unexpected(&self.name, "the query has no `result` list", &reply.body))?;
        Ok(list.first().cloned().map(|v| (v, reply.status)))
    }

    async fn resolve(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let sys_id = match (opt_param(req, "sys_id"), opt_param(req, "number")) {
            (Some(id), _) => id.to_string(),
            (None, Some(number)) => {
                let Some((rec, _)) = self.find("number", number, req.timeout).await? else {
                    return Err(ConnectorError::Rejected {
                        status: None,
                        message: format!("{}: no incident is numbered `{number}`", self.name),
                    });
                };
                rec.get("sys_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| unexpected(&self.name, "the incident has no `sys_id`", &rec))?
                    .to_string()
            }
            (None, None) => {
                return Err(ConnectorError::Config {
                    message: format!(
                        "operation `{}` needs `sys_id` or `number` (the incident)",
                        req.operation
                    ),
                });
            }
        };
        if !is_sys_id(&sys_id) {
            return Err(ConnectorError::Config {
                message: format!("`{sys_id}` is not a sys_id (32 hexadecimal characters)"),
            });
        }
        let notes = match req.params.get("close_notes").and_then(Value::as_str) {
            Some(n) if !n.trim().is_empty() => n.to_string(),
            _ => default_notes(req),
        };
        let r = table(Method::PATCH, format!("{TABLE}/{sys_id}"))
            .query("sysparm_fields", "sys_id,number,state")
            .json(json!({
                "state": RESOLVED,
                "close_code": self.close_code,
                "close_notes": notes,
            }));
        let reply = self.api.send(&r, req.timeout).await?;
        let record = reply.body.get("result").cloned().unwrap_or(Value::Null);
        self.outcome(&record, reply.status)
    }

    async fn act(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        match req.operation.as_str() {
            OPEN => self.open(req).await,
            RESOLVE => self.resolve(req).await,
            other => Err(ConnectorError::UnknownOperation {
                connector: self.name.clone(),
                operation: other.into(),
            }),
        }
    }

    /// Whether an `open_incident` call left an incident with its correlation id.
    async fn opened(&self, req: &CallRequest) -> Result<Option<CallOutcome>, ConnectorError> {
        match self
            .find("correlation_id", &correlation(req), req.timeout)
            .await?
        {
            Some((rec, status)) => self.outcome(&rec, status).map(Some),
            None => Ok(None),
        }
    }
}

fn default_notes(req: &CallRequest) -> String {
    let ctx = &req.context;
    let mut n = String::from("Resolved by riposte");
    if !req.undo.is_null() {
        n = String::from("Resolved by riposte: the action that opened this incident was undone");
    }
    if let Some(c) = ctx.pointer("/case/id").and_then(Value::as_str) {
        n.push_str(&format!("; case {c}"));
    }
    if let Some(p) = ctx.pointer("/playbook/id").and_then(Value::as_str) {
        n.push_str(&format!("; playbook {p}"));
    }
    n.push('.');
    n
}

impl Connector for ServiceNow {
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
        (req.operation == OPEN).then(|| Box::pin(self.opened(req)) as CheckFuture<'a>)
    }
}
