//! CrowdStrike Falcon: network containment of a host, and lifting it.
//!
//! ```yaml
//! name: falcon
//! kind: crowdstrike
//! base_url: https://api.us-2.crowdstrike.com   # your cloud; default https://api.crowdstrike.com
//! client_id: 0123456789abcdef0123456789abcdef
//! client_secret: falcon_client_secret          # the name of a stored secret
//! timeout: 10s                                  # default 30s
//! ```
//!
//! API client scope: **Hosts: Read and Write**.
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `contain_host` | approve | `lift_containment` | `POST /devices/entities/devices-actions/v2?action_name=contain` `{"ids": [device_id]}` |
//! | `lift_containment` | approve | `contain_host` | same, `action_name=lift_containment` |
//!
//! Parameters: `device_id` (the Falcon agent id, AID), or `host` (a hostname, looked up with
//! `GET /devices/queries/devices/v1?filter=hostname:'<host>'`; no match or more than one
//! is a failure, never a guess). The undo record keeps `device_id`, so the inverse acts on
//! the very host that was contained.
//!
//! Authentication is OAuth2 client credentials (`POST /oauth2/token`); the token is cached
//! and fetched again once when Falcon answers 401. Both operations are idempotent in Falcon
//! (containing a contained host changes nothing), so the engine may retry them. After a
//! restart between send and answer, the engine asks `GET /devices/entities/devices/v2`
//! whether the host's `status` already says `contained` (or `containment_pending`).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use riposte_respond::connector::{CallFuture, CheckFuture};
use riposte_respond::duration::HumanDuration;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use serde::Deserialize;
use serde_json::json;

use crate::api::{Api, Auth, ClientCredentials, Request};
use crate::common::{at, check_name, opt_param, parse, unexpected};

pub const KIND: &str = "crowdstrike";

const DEFAULT_BASE_URL: &str = "https://api.crowdstrike.com";
const CONTAIN: &str = "contain_host";
const LIFT: &str = "lift_containment";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    base_url: Option<String>,
    client_id: String,
    /// The name of the secret holding the client secret.
    client_secret: String,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured Falcon tenant.
#[derive(Debug)]
pub struct Falcon {
    name: String,
    api: Api,
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

/// Loads a `kind: crowdstrike` definition.
pub fn load(file: &str, text: &str, secrets: Arc<dyn SecretSource>) -> Result<Falcon, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    if raw.client_id.trim().is_empty() {
        return Err(at(file, text, "client_id:", "`client_id` is empty"));
    }
    let base = raw.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
    let base = base.trim_end_matches('/');
    let auth = Auth::ClientCredentials(ClientCredentials {
        token_url: format!("{base}/oauth2/token"),
        client_id: raw.client_id,
        secret: raw.client_secret,
        scope: None,
    });
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let api = Api::new(&raw.name, base, timeout, auth, secrets)
        .map_err(|m| at(file, text, "base_url:", m))?;
    Ok(Falcon {
        name: raw.name,
        api,
        ops: vec![spec(CONTAIN, LIFT), spec(LIFT, CONTAIN)],
    })
}

impl Falcon {
    /// The AID the call acts on: the undo record's or the parameter's `device_id`, else
    /// the one host whose hostname is `host`.
    async fn device_id(&self, req: &CallRequest) -> Result<String, ConnectorError> {
        if let Some(id) = opt_param(req, "device_id") {
            return Ok(id.to_string());
        }
        let Some(host) = opt_param(req, "host") else {
            return Err(ConnectorError::Config {
                message: format!(
                    "operation `{}` needs `device_id` (the Falcon AID) or `host` (a hostname)",
                    req.operation
                ),
            });
        };
        if host.contains('\'') {
            return Err(ConnectorError::Config {
                message: format!("hostname `{host}` holds a quote; refusing to build the filter"),
            });
        }
        let q = Request::new(Method::GET, "/devices/queries/devices/v1")
            .query("filter", format!("hostname:'{host}'"));
        let reply = self.api.send(&q, req.timeout).await?;
        let ids: Vec<&str> = reply
            .body
            .get("resources")
            .and_then(|r| r.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .ok_or_else(|| {
                unexpected(&self.name, "the host query has no `resources`", &reply.body)
            })?;
        match ids.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(ConnectorError::Rejected {
                status: Some(reply.status),
                message: format!("{}: no Falcon host is named `{host}`", self.name),
            }),
            many => Err(ConnectorError::Rejected {
                status: Some(reply.status),
                message: format!(
                    "{}: {} Falcon hosts are named `{host}`; give `device_id` instead",
                    self.name,
                    many.len()
                ),
            }),
        }
    }

    async fn act(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let action = match req.operation.as_str() {
            CONTAIN => "contain",
            LIFT => "lift_containment",
            other => {
                return Err(ConnectorError::UnknownOperation {
                    connector: self.name.clone(),
                    operation: other.into(),
                });
            }
        };
        let id = self.device_id(req).await?;
        let r = Request::new(Method::POST, "/devices/entities/devices-actions/v2")
            .query("action_name", action)
            .json(json!({ "ids": [id] }));
        let reply = self.api.send(&r, req.timeout).await?;
        falcon_errors(&self.name, &reply.body)?;
        let acted = reply
            .body
            .get("resources")
            .and_then(|r| r.as_array())
            .is_some_and(|a| {
                a.iter()
                    .any(|r| r.get("id").and_then(|v| v.as_str()) == Some(&id))
            });
        if !acted {
            return Err(unexpected(
                &self.name,
                &format!("Falcon did not confirm `{action}` for device {id}"),
                &reply.body,
            ));
        }
        let fields = serde_json::Map::from_iter([("device_id".to_string(), json!(id))]);
        Ok(CallOutcome {
            undo: serde_json::Value::Object(fields.clone()),
            fields,
            status: Some(reply.status),
        })
    }

    /// Whether the host's containment status already shows the call took effect.
    async fn took_effect(&self, req: &CallRequest) -> Result<Option<CallOutcome>, ConnectorError> {
        let id = self.device_id(req).await?;
        let r = Request::new(Method::GET, "/devices/entities/devices/v2").query("ids", id.clone());
        let reply = self.api.send(&r, req.timeout).await?;
        let status = reply
            .body
            .pointer("/resources/0/status")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                unexpected(&self.name, "the host details have no `status`", &reply.body)
            })?;
        let done = match req.operation.as_str() {
            CONTAIN => matches!(status, "contained" | "containment_pending"),
            _ => matches!(status, "normal" | "lift_containment_pending"),
        };
        Ok(done.then(|| {
            let fields = serde_json::Map::from_iter([("device_id".to_string(), json!(id))]);
            CallOutcome {
                undo: serde_json::Value::Object(fields.clone()),
                fields,
                status: Some(reply.status),
            }
        }))
    }
}

/// Falcon can answer 2xx with entries in `errors`; those are failures.
fn falcon_errors(connector: &str, body: &serde_json::Value) -> Result<(), ConnectorError> {
    let Some(errors) = body.get("errors").and_then(|e| e.as_array()) else {
        return Ok(());
    };
    if errors.is_empty() {
        return Ok(());
    }
    let first = &errors[0];
    let code = first.get("code").and_then(|c| c.as_u64());
    let message = first
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("no message");
    Err(ConnectorError::Rejected {
        status: code.and_then(|c| u16::try_from(c).ok()),
        message: format!("{connector}: Falcon refused: {message}"),
    })
}

impl Connector for Falcon {
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
