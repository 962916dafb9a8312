//! OPNsense: blocking an IP address by adding it to a firewall alias that a block rule
//! uses, and removing it again.
//!
//! ```yaml
//! name: opnsense
//! kind: opnsense
//! base_url: https://opnsense.corp.example   # the web GUI's address
//! api_key: w86XNZob8Oq8aC5r0kbNarNtdpoQU781   # the API key (the user half; not secret)
//! api_secret: opnsense_api_secret            # the name of a stored secret: the API secret
//! alias: riposte_block                       # default alias; a call may name another
//! timeout: 10s                               # default 30s
//! ```
//!
//! On OPNsense: an alias of type *Host(s)* or *Network(s)* (kept in the configuration, so
//! it survives a reboot) or *External (advanced)* (the live table only), used as source of a
//! block rule; an API key of a user whose only privilege is **Firewall: Alias: Edit** (it
//! covers `api/firewall/alias_util/*`). Authentication is HTTP Basic: the key as user, the
//! secret as password.
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `block_ip` | approve | `unblock_ip` | `POST /api/firewall/alias_util/add/{alias}` `{"address": ip}` |
//! | `unblock_ip` | approve | `block_ip` | `POST /api/firewall/alias_util/delete/{alias}` `{"address": ip}` |
//!
//! Parameters: `ip` (an IPv4 or IPv6 address, or a network in CIDR notation) and,
//! optionally, `alias` (letters, digits and `_`, at most 32; default the configured one).
//! The undo record keeps `ip` and `alias`, so the inverse takes the address out of the
//! alias it was put in.
//!
//! OPNsense answers `{"status": "done"}`; anything else is a failure: `{"status": "failed",
//! "status_msg": "non existing alias …"}`, `{"status": "failed"}`, `{"status":
//! "not_an_address"}`. Adding an address the alias holds, or deleting one it does not, is
//! `done` (pf tables are sets), so both operations are idempotent and may be retried.
//! A 401 (`Authentication Failed`) or 403 (`Forbidden`) names the secret, never its value.
//!
//! After a restart between send and answer, the engine asks
//! `GET /api/firewall/alias_util/list/{alias}` whether the address is in the alias.

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

use crate::api::{Api, Auth, Request};
use crate::common::{at, check_name, opt_param, param, parse, unexpected};
use crate::netaddr::Address;

pub const KIND: &str = "opnsense";

const BLOCK: &str = "block_ip";
const UNBLOCK: &str = "unblock_ip";
const DEFAULT_ALIAS: &str = "riposte_block";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    base_url: String,
    api_key: String,
    /// The name of the secret holding the API secret.
    api_secret: String,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured OPNsense firewall.
#[derive(Debug)]
pub struct OpnSense {
    name: String,
    api: Api,
    ops: Vec<OperationSpec>,
    secret: String,
    alias: String,
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

/// OPNsense's alias names: letters, digits and `_`, at most 32. They go into a URL path.
fn check_alias(alias: &str) -> Result<(), String> {
    let ok = !alias.is_empty()
        && alias.len() <= 32
        && alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "alias `{alias}` is not an OPNsense alias name (letters, digits and _, at most 32)"
        ))
    }
}

/// Loads a `kind: opnsense` definition.
pub fn load(file: &str, text: &str, secrets: Arc<dyn SecretSource>) -> Result<OpnSense, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    if raw.api_key.trim().is_empty() || raw.api_key.contains(':') {
        return Err(at(
            file,
            text,
            "api_key:",
            "`api_key` must be the OPNsense API key (non-empty, without `:`)",
        ));
    }
    if raw.api_secret.trim().is_empty() {
        return Err(at(
            file,
            text,
            "api_secret:",
            "`api_secret` is empty: name the secret holding the API secret",
        ));
    }
    let alias = raw.alias.unwrap_or_else(|| DEFAULT_ALIAS.to_string());
    check_alias(&alias).map_err(|m| at(file, text, "alias:", m))?;
    let auth = Auth::Basic {
        username: raw.api_key,
        secret: raw.api_secret.clone(),
    };
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let api = Api::new(&raw.name, &raw.base_url, timeout, auth, secrets)
        .map_err(|m| at(file, text, "base_url:", m))?;
    Ok(OpnSense {
        name: raw.name,
        api,
        ops: vec![spec(BLOCK, UNBLOCK), spec(UNBLOCK, BLOCK)],
        secret: raw.api_secret,
        alias,
    })
}

impl OpnSense {
    /// The address and the alias: the undo record's, then the parameters, then the default.
    fn target(&self, req: &CallRequest) -> Result<(Address, String), ConnectorError> {
        let addr = Address::parse(param(req, "ip")?, &req.operation, "ip")?;
        let alias = opt_param(req, "alias").unwrap_or(&self.alias).to_string();
        check_alias(&alias).map_err(|m| ConnectorError::Config {
            message: format!("operation `{}`: {m}", req.operation),
        })?;
        Ok((addr, alias))
    }

    /// Sends `r`; a refused key is said with the secret's name.
    async fn send(
        &self,
        r: &Request,
        deadline: Duration,
    ) -> Result<(u16, serde_json::Value), ConnectorError> {
        match self.api.send(r, deadline).await {
            Ok(reply) => Ok((reply.status, reply.body)),
            Err(ConnectorError::Rejected {
                status: Some(s @ (401 | 403)),
                ..
            }) => Err(ConnectorError::Rejected {
                status: Some(s),
                message: format!(
                    "{}: OPNsense refused the API key and the secret `{}` ({}); check the key pair and the user's privileges",
                    self.name,
                    self.secret,
                    if s == 401 {
                        "Authentication Failed"
                    } else {
                        "Forbidden"
                    }
                ),
            }),
            Err(e) => Err(e),
        }
    }

    fn outcome(addr: &Address, alias: &str, status: u16) -> CallOutcome {
        let fields = serde_json::Map::from_iter([
            ("ip".to_string(), json!(addr.to_string())),
            ("alias".to_string(), json!(alias)),
        ]);
        CallOutcome {
            undo: serde_json::Value::Object(fields.clone()),
            fields,
            status: Some(status),
        }
    }

    async fn act(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let verb = match req.operation.as_str() {
            BLOCK => "add",
            UNBLOCK => "delete",
            other => {
                return Err(ConnectorError::UnknownOperation {
                    connector: self.name.clone(),
                    operation: other.into(),
                });
            }
        };
        let (addr, alias) = self.target(req)?;
        let r = Request::new(
            Method::POST,
            format!("/api/firewall/alias_util/{verb}/{alias}"),
        )
        .json(json!({ "address": addr.to_string() }));
        let (status, body) = self.send(&r, req.timeout).await?;
        match body.get("status").and_then(|s| s.as_str()) {
            Some("done") => Ok(Self::outcome(&addr, &alias, status)),
            Some(other) => {
                let detail = body
                    .get("status_msg")
                    .and_then(|m| m.as_str())
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                Err(ConnectorError::Rejected {
                    status: Some(status),
                    message: format!(
                        "{}: OPNsense did not {verb} {addr} in alias `{alias}`: `{other}`{detail}",
                        self.name
                    ),
                })
            }
            None => Err(unexpected(
                &self.name,
                "OPNsense's answer has no `status`",
                &body,
            )),
        }
    }

    /// Whether the alias's live table holds (block) or no longer holds (unblock) the address.
    async fn took_effect(&self, req: &CallRequest) -> Result<Option<CallOutcome>, ConnectorError> {
        let (addr, alias) = self.target(req)?;
        let r = Request::new(
            Method::GET,
            format!("/api/firewall/alias_util/list/{alias}"),
        );
        let (status, body) = self.send(&r, req.timeout).await?;
        // Current OPNsense pages rows (`{total, rowCount, current, rows: [{ip}]}`); older
        // releases answered a plain array of addresses.
        let (rows, total): (Vec<&str>, usize) = match &body {
            serde_json::Value::Array(a) => {
                let rows: Vec<&str> = a.iter().filter_map(|v| v.as_str()).collect();
                let n = rows.len();
                (rows, n)
            }
            serde_json::Value::Object(o) => {
                let rows: Vec<&str> = o
                    .get("rows")
                    .and_then(|r| r.as_array())
                    .ok_or_else(|| unexpected(&self.name, "the alias list has no `rows`", &body))?
                    .iter()
                    .filter_map(|r| r.get("ip").and_then(|v| v.as_str()))
                    .collect();
                let total = o
                    .get("total")
                    .and_then(|t| t.as_u64())
                    .and_then(|t| usize::try_from(t).ok())
                    .unwrap_or(rows.len());
                (rows, total)
            }
            _ => {
                return Err(unexpected(
                    &self.name,
                    "the alias list is not a list",
                    &body,
                ));
            }
        };
        let wanted = addr.to_string();
        let host_form = match addr {
            Address::Host(ip) if ip.is_ipv4() => format!("{ip}/32"),
            Address::Host(ip) => format!("{ip}/128"),
            Address::Network(..) => wanted.clone(),
        };
        let present = rows.iter().any(|r| *r == wanted || *r == host_form);
        if !present && total > rows.len() {
            return Err(ConnectorError::Rejected {
                status: Some(status),
                message: format!(
                    "{}: alias `{alias}` holds {total} entries, more than one page; cannot tell whether {addr} is among them",
                    self.name
                ),
            });
        }
        let done = if req.operation == BLOCK {
            present
        } else {
            !present
        };
        Ok(done.then(|| Self::outcome(&addr, &alias, status)))
    }
}

impl Connector for OpnSense {
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
