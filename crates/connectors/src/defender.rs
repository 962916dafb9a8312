//! Microsoft Defender for Endpoint: isolating a machine from the network and releasing it,
//! waiting until Defender's machine action has actually finished.
//!
//! ```yaml
//! name: defender
//! kind: defender
//! tenant_id: 8f2c1a7e-3b4d-4e5f-9a6b-7c8d9e0f1a2b   # the Entra tenant of the app registration
//! client_id: 0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e
//! client_secret: defender_client_secret             # the name of a stored secret
//! base_url: https://eu.api.security.microsoft.com   # default https://api.security.microsoft.com
//! authority: https://login.microsoftonline.com      # the default; login.microsoftonline.us for US Gov
//! scope: https://api.securitycenter.microsoft.com/.default   # the default
//! isolation_type: Full                              # default Full; Selective, UnManagedDevice
//! poll_interval: 5s                                 # default 5s
//! timeout: 30s                                      # per request; default 30s
//! ```
//!
//! App registration, application permissions of the *WindowsDefenderATP* API (admin
//! consent): **Machine.Isolate** (isolate, release) and **Machine.Read.All** (find a machine
//! by name, read machine actions).
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `isolate_host` | approve | `release_host` | `POST /api/machines/{id}/isolate` `{"Comment": …, "IsolationType": "Full"}` |
//! | `release_host` | approve | `isolate_host` | `POST /api/machines/{id}/unisolate` `{"Comment": …}` |
//!
//! Parameters: `machine_id` (Defender's machine id), or `host` (looked up with
//! `GET /api/machines?$filter=computerDnsName eq '<host>'`, lower-cased: Defender keeps the
//! fully qualified name, so give that; no match or more than one is a failure, never a
//! guess); `comment` (default `riposte action <action id>: <operation>`); `isolation_type`
//! (for `isolate_host`, overrides the definition's).
//!
//! Both calls create a *machine action* that Defender carries out when the device next
//! checks in. The call waits for it: `GET /api/machineactions/{id}` every `poll_interval`
//! until its `status` is `Succeeded` (success) or `Failed`, `Cancelled` or `TimeOut`
//! (failure, not retried). The wait is bounded by the call's timeout; an action still
//! `Pending` or `InProgress` then is a retryable failure, and the retry waits on the same
//! action (next paragraph) rather than creating another. Give a step a timeout of minutes.
//!
//! Defender answers `400 ActiveRequestAlreadyExists` when the machine already has an
//! unfinished action of that kind (a retry, or an analyst who clicked in the portal). That
//! is not a failure: the connector finds the machine's latest isolation action
//! (`GET /api/machineactions?$filter=machineId eq '<id>'`) and, when it is of the same kind
//! and pending, in progress or succeeded, waits on it as if it had created it. If the
//! latest one is of the other kind (a release still pending while we isolate), the call
//! fails with that said: acting on top of it would race it.
//!
//! Undo record: `machine_id` and `machine_action_id`, so the inverse acts on the very
//! machine. Both operations are idempotent (see above), so the engine may retry them.
//! After a restart between send and answer, the engine asks for the machine's latest
//! isolation action: one of the same kind that is not failed means the call took effect.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use riposte_respond::connector::{CallFuture, CheckFuture};
use riposte_respond::duration::HumanDuration;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, Reply, Request};
use crate::common::{at, check_name, microsoft_app, opt_param, parse, path_segment, unexpected};

pub const KIND: &str = "defender";

const DEFAULT_BASE_URL: &str = "https://api.security.microsoft.com";
const DEFAULT_SCOPE: &str = "https://api.securitycenter.microsoft.com/.default";
const ISOLATE: &str = "isolate_host";
const RELEASE: &str = "release_host";
const ISOLATION_TYPES: &[&str] = &["Full", "Selective", "UnManagedDevice"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    tenant_id: String,
    client_id: String,
    /// The name of the secret holding the client secret.
    client_secret: String,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    isolation_type: Option<String>,
    #[serde(default)]
    poll_interval: Option<HumanDuration>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured Defender for Endpoint tenant.
#[derive(Debug)]
pub struct Defender {
    name: String,
    api: Api,
    ops: Vec<OperationSpec>,
    isolation_type: String,
    poll: Duration,
}

fn spec(name: &str, inverse: &str) -> OperationSpec {
    OperationSpec {
        name: name.into(),
        class: Class::Approve,
        inverse: Some(inverse.into()),
        irreversible: false,
        idempotent: true,
    }
}

/// Loads a `kind: defender` definition.
pub fn load(file: &str, text: &str, secrets: Arc<dyn SecretSource>) -> Result<Defender, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    let auth = microsoft_app(
        file,
        text,
        &raw.tenant_id,
        raw.client_id,
        raw.client_secret,
        raw.authority.as_deref(),
        raw.scope.unwrap_or_else(|| DEFAULT_SCOPE.into()),
    )?;
    let isolation_type = raw.isolation_type.unwrap_or_else(|| "Full".into());
    if !ISOLATION_TYPES.contains(&isolation_type.as_str()) {
        return Err(at(
            file,
            text,
            "isolation_type:",
            format!(
                "`isolation_type` `{isolation_type}` is not one of {}",
                ISOLATION_TYPES.join(", ")
            ),
        ));
    }
    let poll = raw
        .poll_interval
        .map(|d| d.0)
        .unwrap_or(Duration::from_secs(5));
    if poll.is_zero() {
        return Err(at(
            file,
            text,
            "poll_interval:",
            "`poll_interval` must be at least 1s",
        ));
    }
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let base = raw.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
    let api = Api::new(&raw.name, base, timeout, auth, secrets)
        .map_err(|m| at(file, text, "base_url:", m))?;
    Ok(Defender {
        name: raw.name,
        api,
        ops: vec![spec(ISOLATE, RELEASE), spec(RELEASE, ISOLATE)],
        isolation_type,
        poll,
    })
}

/// What is left of the call's budget; none left is a timeout.
fn left(started: Instant, budget: Duration) -> Result<Duration, ConnectorError> {
    let left = budget.saturating_sub(started.elapsed());
    if left.is_zero() {
        Err(ConnectorError::Timeout {
            secs: budget.as_secs(),
        })
    } else {
        Ok(left)
    }
}

/// Defender's error shape: `{"error": {"code": …, "message": …, "target": …}}`.
fn defender_error(body: &Value) -> Option<(&str, &str)> {
    let code = body.pointer("/error/code")?.as_str()?;
    let message = body
        .pointer("/error/message")
        .and_then(|m| m.as_str())
        .unwrap_or("");
    Some((code, message))
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(|s| s.as_str())
}

/// OData string literals are quoted with `'`; a value holding one is refused rather than
/// escaped, since no machine name or id holds one.
fn odata_literal(what: &str, v: &str) -> Result<String, ConnectorError> {
    if v.contains('\'') {
        return Err(ConnectorError::Config {
            message: format!("{what} `{v}` holds a quote; refusing to build the filter"),
        });
    }
    Ok(format!("'{v}'"))
}

impl Defender {
    /// The Defender action type an operation creates, and the URL verb that creates it.
    fn kind_of(&self, req: &CallRequest) -> Result<(&'static str, &'static str), ConnectorError> {
        match req.operation.as_str() {
            ISOLATE => Ok(("Isolate", "isolate")),
            RELEASE => Ok(("Unisolate", "unisolate")),
            other => Err(ConnectorError::UnknownOperation {
                connector: self.name.clone(),
                operation: other.into(),
            }),
        }
    }

    /// The error for an answer the connector accepted only to read Defender's reason.
    fn refused(&self, req: &Request, reply: &Reply) -> ConnectorError {
        let reason = match defender_error(&reply.body) {
            Some((code, message)) => format!("{code}: {message}"),
            None => reply.body.to_string().chars().take(300).collect(),
        };
        ConnectorError::Rejected {
            status: Some(reply.status),
            message: format!(
                "{}: Defender refused {} {} ({}): {reason}",
                self.name, req.method, req.path, reply.status
            ),
        }
    }

    /// The machine the call acts on: the undo record's or the parameter's `machine_id`,
    /// else the one machine whose `computerDnsName` is `host`.
    async fn machine_id(
        &self,
        req: &CallRequest,
        started: Instant,
    ) -> Result<String, ConnectorError> {
        if let Some(id) = opt_param(req, "machine_id") {
            return Ok(id.to_string());
        }
        let Some(host) = opt_param(req, "host") else {
            return Err(ConnectorError::Config {
                message: format!(
                    "operation `{}` needs `machine_id` (Defender's machine id) or `host` (its DNS name)",
                    req.operation
                ),
            });
        };
        let host = host.to_ascii_lowercase();
        let q = Request::new(Method::GET, "/api/machines")
            .query(
                "$filter",
                format!("computerDnsName eq {}", odata_literal("host", &host)?),
            )
            .also_ok(404);
        let reply = self.api.send(&q, left(started, req.timeout)?).await?;
        // Defender answers 404 rather than an empty list when nothing matches.
        let ids: Vec<&str> = if reply.status == 404 {
            Vec::new()
        } else {
            reply
                .body
                .get("value")
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|m| text(m, "id")).collect())
                .ok_or_else(|| {
                    unexpected(&self.name, "the machine list has no `value`", &reply.body)
                })?
        };
        match ids.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(ConnectorError::Rejected {
                status: Some(404),
                message: format!("{}: no Defender machine is named `{host}`", self.name),
            }),
            many => Err(ConnectorError::Rejected {
                status: Some(reply.status),
                message: format!(
                    "{}: {} Defender machines are named `{host}`; give `machine_id` instead",
                    self.name,
                    many.len()
                ),
            }),
        }
    }

    /// The machine's most recent isolation action (`Isolate` or `Unisolate`), if any.
    async fn latest_isolation_action(
        &self,
        machine: &str,
        started: Instant,
        budget: Duration,
    ) -> Result<Option<Value>, ConnectorError> {
        let q = Request::new(Method::GET, "/api/machineactions").query(
            "$filter",
            format!("machineId eq {}", odata_literal("machine id", machine)?),
        );
        let reply = self.api.send(&q, left(started, budget)?).await?;
        let actions = reply
            .body
            .get("value")
            .and_then(|v| v.as_array())
            .ok_or_else(|| {
                unexpected(
                    &self.name,
                    "the machine action list has no `value`",
                    &reply.body,
                )
            })?;
        // ISO 8601 timestamps in one format order as text.
        Ok(actions
            .iter()
            .filter(|a| matches!(text(a, "type"), Some("Isolate" | "Unisolate")))
            .max_by(|a, b| text(a, "creationDateTimeUtc").cmp(&text(b, "creationDateTimeUtc")))
            .cloned())
    }

    async fn act(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let started = Instant::now();
        let (kind, verb) = self.kind_of(req)?;
        let id = self.machine_id(req, started).await?;
        let comment = opt_param(req, "comment")
            .map(str::to_string)
            .unwrap_or_else(|| format!("riposte action {}: {}", req.action_id, req.operation));
        let body = if kind == "Isolate" {
            let isolation = opt_param(req, "isolation_type").unwrap_or(&self.isolation_type);
            if !ISOLATION_TYPES.contains(&isolation) {
                return Err(ConnectorError::Config {
                    message: format!(
                        "`isolation_type` `{isolation}` is not one of {}",
                        ISOLATION_TYPES.join(", ")
                    ),
                });
            }
            json!({"Comment": comment, "IsolationType": isolation})
        } else {
            json!({"Comment": comment})
        };
        let r = Request::new(
            Method::POST,
            format!("/api/machines/{}/{verb}", path_segment(&id)),
        )
        .json(body)
        .also_ok(400)
        .also_ok(404);
        let reply = self.api.send(&r, left(started, req.timeout)?).await?;
        let (action, status) = match reply.status {
            400 if defender_error(&reply.body).map(|e| e.0)
                == Some("ActiveRequestAlreadyExists") =>
            {
                (self.adopt(&id, kind, started, req.timeout).await?, None)
            }
            400 | 404 => return Err(self.refused(&r, &reply)),
            s => (reply.body, Some(s)),
        };
        self.wait(&id, kind, action, status, started, req.timeout)
            .await
    }

    /// The unfinished action Defender says already exists, when it is ours to wait on.
    async fn adopt(
        &self,
        machine: &str,
        kind: &str,
        started: Instant,
        budget: Duration,
    ) -> Result<Value, ConnectorError> {
        let latest = self
            .latest_isolation_action(machine, started, budget)
            .await?;
        let busy = |what: String| ConnectorError::Rejected {
            status: Some(400),
            message: format!(
                "{}: Defender says machine {machine} already has an active request \
                 (ActiveRequestAlreadyExists), and {what}; try again when it has finished",
                self.name
            ),
        };
        let Some(action) = latest else {
            return Err(busy("it has no isolation action to wait on".into()));
        };
        let (t, s) = (
            text(&action, "type").unwrap_or(""),
            text(&action, "status").unwrap_or(""),
        );
        if t == kind && matches!(s, "Pending" | "InProgress" | "Succeeded") {
            Ok(action)
        } else {
            Err(busy(format!(
                "its latest isolation action is {t} {} ({s})",
                text(&action, "id").unwrap_or("?")
            )))
        }
    }

    /// Polls the machine action until it finishes or the call's budget runs out.
    async fn wait(
        &self,
        machine: &str,
        kind: &str,
        mut action: Value,
        status: Option<u16>,
        started: Instant,
        budget: Duration,
    ) -> Result<CallOutcome, ConnectorError> {
        loop {
            let aid = text(&action, "id")
                .ok_or_else(|| unexpected(&self.name, "the machine action has no `id`", &action))?
                .to_string();
            let state = text(&action, "status").ok_or_else(|| {
                unexpected(&self.name, "the machine action has no `status`", &action)
            })?;
            match state {
                "Succeeded" => return Ok(outcome(machine, &aid, state, status)),
                "Failed" | "Cancelled" | "TimeOut" => {
                    return Err(ConnectorError::Rejected {
                        status: None,
                        message: format!(
                            "{}: Defender's {kind} action {aid} on machine {machine} ended `{state}`",
                            self.name
                        ),
                    });
                }
                "Pending" | "InProgress" => {}
                other => {
                    return Err(unexpected(
                        &self.name,
                        &format!("machine action {aid} has the unknown status `{other}`"),
                        &action,
                    ));
                }
            }
            if budget.saturating_sub(started.elapsed()) <= self.poll {
                return Err(ConnectorError::Transient {
                    message: format!(
                        "{}: Defender's {kind} action {aid} on machine {machine} is still `{state}` \
                         at the end of the call's {} s (the device may be offline); \
                         a retry waits on the same action",
                        self.name,
                        budget.as_secs()
                    ),
                });
            }
            tokio::time::sleep(self.poll).await;
            let r = Request::new(
                Method::GET,
                format!("/api/machineactions/{}", path_segment(&aid)),
            );
            action = self.api.send(&r, left(started, budget)?).await?.body;
        }
    }

    /// Whether the machine's latest isolation action shows the call took effect.
    async fn took_effect(&self, req: &CallRequest) -> Result<Option<CallOutcome>, ConnectorError> {
        let started = Instant::now();
        let (kind, _) = self.kind_of(req)?;
        let id = self.machine_id(req, started).await?;
        let latest = self
            .latest_isolation_action(&id, started, req.timeout)
            .await?;
        Ok(latest.and_then(|a| {
            let (t, s) = (text(&a, "type")?, text(&a, "status")?);
            let done = t == kind && matches!(s, "Pending" | "InProgress" | "Succeeded");
            done.then(|| outcome(&id, text(&a, "id").unwrap_or_default(), s, Some(200)))
        }))
    }
}

fn outcome(machine: &str, action: &str, state: &str, status: Option<u16>) -> CallOutcome {
    let undo = json!({"machine_id": machine, "machine_action_id": action});
    let mut fields = serde_json::Map::new();
    fields.insert("machine_id".into(), json!(machine));
    fields.insert("machine_action_id".into(), json!(action));
    fields.insert("status".into(), json!(state));
    CallOutcome {
        fields,
        undo,
        status,
    }
}

impl Connector for Defender {
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
        Some(Box::pin(self.took_effect(req)))
    }
}
