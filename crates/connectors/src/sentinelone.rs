//! SentinelOne: disconnecting an agent's host from the network (network quarantine), and
//! reconnecting it.
//!
//! ```yaml
//! name: s1
//! kind: sentinelone
//! base_url: https://usea1-corp.sentinelone.net   # your management console; required
//! api_token: s1_api_token                        # the name of a stored secret
//! timeout: 10s                                   # default 30s
//! ```
//!
//! The API token is a service user's (Settings → Users → Service Users), scoped to the
//! account or site whose agents riposte may act on, with a role that allows **Endpoints:
//! View**, **Disconnect From Network** and **Reconnect To Network**. It is sent as
//! `Authorization: ApiToken <token>`. Service-user tokens expire: a `401` says so, naming the
//! secret to renew (never its value).
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `disconnect_host` | approve | `connect_host` | `POST /web/api/v2.1/agents/actions/disconnect` `{"filter": {"ids": [agent_id]}}` |
//! | `connect_host` | approve | `disconnect_host` | `POST /web/api/v2.1/agents/actions/connect`, same body |
//!
//! Parameters: `agent_id`, or `host` (a computer name, looked up with
//! `GET /web/api/v2.1/agents?computerName=<host>`; no match or more than one is a failure,
//! never a guess). The action itself is always sent with the agent's id, never with a
//! name filter: a name can match two agents, and the undo record needs the id.
//!
//! SentinelOne answers `200 {"data": {"affected": N}}` whatever the filter matched, so
//! `affected: 0` — the agent is outside the token's scope, decommissioned or unknown — is a
//! failure, not a success; `affected: 1` is the success.
//!
//! Undo record: `agent_id`. Both operations leave the agent in the same state when
//! repeated, so the engine may retry them. After a restart between send and answer, the
//! engine asks `GET /web/api/v2.1/agents?ids=<agent_id>` whether the agent's
//! `networkStatus` is already `disconnected` / `disconnecting` (or `connected` /
//! `connecting`).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use riposte_respond::connector::{CallFuture, CheckFuture};
use riposte_respond::duration::HumanDuration;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, Auth, Reply, Request};
use crate::common::{at, check_name, opt_param, parse, unexpected};

pub const KIND: &str = "sentinelone";

const DISCONNECT: &str = "disconnect_host";
const CONNECT: &str = "connect_host";
const AGENTS: &str = "/web/api/v2.1/agents";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    base_url: String,
    /// The name of the secret holding the API token.
    api_token: String,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured SentinelOne management console.
#[derive(Debug)]
pub struct SentinelOne {
    name: String,
    api: Api,
    secret: String,
    ops: Vec<OperationSpec>,
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

/// Loads a `kind: sentinelone` definition.
pub fn load(
    file: &str,
    text: &str,
    secrets: Arc<dyn SecretSource>,
) -> Result<SentinelOne, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    if raw.api_token.trim().is_empty() {
        return Err(at(
            file,
            text,
            "api_token:",
            "`api_token` must name a stored secret",
        ));
    }
    let auth = Auth::Header {
        name: AUTHORIZATION,
        prefix: "ApiToken ".into(),
        secret: raw.api_token.clone(),
    };
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let api = Api::new(&raw.name, &raw.base_url, timeout, auth, secrets)
        .map_err(|m| at(file, text, "base_url:", m))?;
    Ok(SentinelOne {
        name: raw.name,
        api,
        secret: raw.api_token,
        ops: vec![spec(DISCONNECT, CONNECT), spec(CONNECT, DISCONNECT)],
    })
}

/// The first entry of SentinelOne's `{"errors": [{"code", "title", "detail"}]}`.
fn s1_error(body: &Value) -> Option<String> {
    let e = body.get("errors")?.as_array()?.first()?;
    let title = e.get("title").and_then(|t| t.as_str()).unwrap_or("error");
    let code = e.get("code").map(|c| c.to_string()).unwrap_or_default();
    Some(match e.get("detail").and_then(|d| d.as_str()) {
        Some(detail) => format!("{title} ({code}): {detail}"),
        None => format!("{title} ({code})"),
    })
}

impl SentinelOne {
    /// Sends `r`; a `401` becomes a rejection that names the token's secret (a static token
    /// cannot be refreshed: a person must renew it).
    async fn send(&self, r: &Request, deadline: Duration) -> Result<Reply, ConnectorError> {
        let r = r.clone().also_ok(401);
        let reply = self.api.send(&r, deadline).await?;
        if reply.status == 401 {
            let why = s1_error(&reply.body).unwrap_or_else(|| "Unauthorized".into());
            return Err(ConnectorError::Rejected {
                status: Some(401),
                message: format!(
                    "{}: SentinelOne refused the API token in secret `{}` ({why}): it is wrong, \
                     expired or revoked; store a new one with `riposte secret set {}`",
                    self.name, self.secret, self.secret
                ),
            });
        }
        Ok(reply)
    }

    /// The agent the call acts on: the undo record's or the parameter's `agent_id`, else
    /// the one agent whose computer name is `host`.
    async fn agent_id(&self, req: &CallRequest) -> Result<String, ConnectorError> {
        if let Some(id) = opt_param(req, "agent_id") {
            return Ok(id.to_string());
        }
        let Some(host) = opt_param(req, "host") else {
            return Err(ConnectorError::Config {
                message: format!(
                    "operation `{}` needs `agent_id` (the SentinelOne agent id) or `host` (its computer name)",
                    req.operation
                ),
            });
        };
        let q = Request::new(Method::GET, AGENTS).query("computerName", host);
        let reply = self.send(&q, req.timeout).await?;
        let ids: Vec<&str> = reply
            .body
            .get("data")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.get("id").and_then(|i| i.as_str()))
                    .collect()
            })
            .ok_or_else(|| unexpected(&self.name, "the agent list has no `data`", &reply.body))?;
        match ids.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(ConnectorError::Rejected {
                status: Some(404),
                message: format!(
                    "{}: no SentinelOne agent in the token's scope has the computer name `{host}`",
                    self.name
                ),
            }),
            many => Err(ConnectorError::Rejected {
                status: Some(reply.status),
                message: format!(
                    "{}: {} SentinelOne agents have the computer name `{host}`; give `agent_id` instead",
                    self.name,
                    many.len()
                ),
            }),
        }
    }

    async fn act(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let action = self.action_of(req)?;
        let id = self.agent_id(req).await?;
        let r = Request::new(Method::POST, format!("{AGENTS}/actions/{action}"))
            .json(json!({"filter": {"ids": [id]}}))
            .also_ok(400);
        let reply = self.send(&r, req.timeout).await?;
        if reply.status == 400 {
            let why = s1_error(&reply.body).unwrap_or_else(|| reply.body.to_string());
            return Err(ConnectorError::Rejected {
                status: Some(400),
                message: format!("{}: SentinelOne refused `{action}`: {why}", self.name),
            });
        }
        let affected = reply
            .body
            .pointer("/data/affected")
            .and_then(|a| a.as_u64())
            .ok_or_else(|| {
                unexpected(
                    &self.name,
                    &format!("the `{action}` answer has no `data.affected`"),
                    &reply.body,
                )
            })?;
        match affected {
            1 => Ok(outcome(&id, reply.status)),
            0 => Err(ConnectorError::Rejected {
                status: Some(reply.status),
                message: format!(
                    "{}: SentinelOne applied `{action}` to no agent (affected: 0): agent {id} is \
                     not in the API token's scope, is decommissioned, or does not exist",
                    self.name
                ),
            }),
            n => Err(unexpected(
                &self.name,
                &format!("`{action}` for the one agent {id} affected {n} agents"),
                &reply.body,
            )),
        }
    }

    fn action_of(&self, req: &CallRequest) -> Result<&'static str, ConnectorError> {
        match req.operation.as_str() {
            DISCONNECT => Ok("disconnect"),
            CONNECT => Ok("connect"),
            other => Err(ConnectorError::UnknownOperation {
                connector: self.name.clone(),
                operation: other.into(),
            }),
        }
    }

    /// Whether the agent's `networkStatus` already shows the call took effect.
    async fn took_effect(&self, req: &CallRequest) -> Result<Option<CallOutcome>, ConnectorError> {
        let action = self.action_of(req)?;
        let id = self.agent_id(req).await?;
        let q = Request::new(Method::GET, AGENTS).query("ids", id.clone());
        let reply = self.send(&q, req.timeout).await?;
        let status = reply
            .body
            .pointer("/data/0/networkStatus")
            .and_then(|s| s.as_str())
            .ok_or_else(|| {
                unexpected(
                    &self.name,
                    &format!("agent {id} has no `networkStatus`"),
                    &reply.body,
                )
            })?;
        let done = match action {
            "disconnect" => matches!(status, "disconnected" | "disconnecting"),
            _ => matches!(status, "connected" | "connecting"),
        };
        Ok(done.then(|| outcome(&id, reply.status)))
    }
}

fn outcome(agent: &str, status: u16) -> CallOutcome {
    let fields = serde_json::Map::from_iter([("agent_id".to_string(), json!(agent))]);
    CallOutcome {
        undo: Value::Object(fields.clone()),
        fields,
        status: Some(status),
    }
}

impl Connector for SentinelOne {
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
