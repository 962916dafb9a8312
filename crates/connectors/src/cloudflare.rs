//! Cloudflare IP Access rules: blocking an address at Cloudflare's edge for one zone or a
//! whole account, and deleting that rule again.
//!
//! ```yaml
//! name: cloudflare
//! kind: cloudflare
//! base_url: https://api.cloudflare.com    # default
//! api_token: cloudflare_api_token         # the name of a stored secret: an API token
//! zone_id: 023e105f4ecef8ad9ca31a8372d0c353     # or account_id: (exactly one of them)
//! timeout: 10s                            # default 30s
//! ```
//!
//! API token permissions: **Zone → Firewall Services → Edit** for a zone, or **Account →
//! Account Firewall Access Rules → Edit** for an account; nothing else.
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `block_ip` | approve | `unblock_ip` | `POST /client/v4/zones/{zone_id}/firewall/access_rules/rules` |
//! | `unblock_ip` | approve | `block_ip` | `DELETE /client/v4/zones/{zone_id}/firewall/access_rules/rules/{rule_id}` |
//!
//! (`accounts/{account_id}` instead of `zones/{zone_id}` for an account.) Parameters of
//! `block_ip`: `ip` — an IPv4 address (target `ip`), an IPv6 address (`ip6`), or a range
//! Cloudflare accepts (`ip_range`: IPv4 /16 or /24, IPv6 /32, /48 or /64); `notes`
//! (optional) is appended to the rule's notes, which always start with
//! `riposte case <case id>: action <action id>`. The body is
//! `{"mode": "block", "configuration": {"target": …, "value": …}, "notes": …}`.
//!
//! Undo record: `rule_id` (the answer's `result.id`), `ip`, and `created` — whether this
//! action made the rule. `unblock_ip` deletes the rule by its id; a rule that is already
//! gone (404) counts as deleted.
//!
//! Cloudflare refuses a second rule for the same address (HTTP 400, error code 10009,
//! `firewallaccessrules.api.duplicate_of_existing`). Then riposte lists the rules for the
//! address: a `block` rule whose notes name this very action was made by an earlier
//! attempt whose answer was lost — it is adopted (`created: true`); a `block` rule made by
//! someone else means the address is already blocked — the call succeeds with
//! `created: false`, and its inverse leaves that rule in place (undo restores what was
//! there before); a rule with another mode (`whitelist`, `challenge`, …) is a refusal:
//! riposte does not change rules it did not make. So `block_ip` may be retried, and so may
//! `unblock_ip`.
//!
//! Every answer is Cloudflare's envelope: `"success": false` is a failure whatever the HTTP
//! status, reported with its `errors[].code` and `message`; 401/403 (code 10000,
//! `Authentication error`) name the token's secret, never its value.
//!
//! After a restart between send and answer, the engine lists
//! `GET …/firewall/access_rules/rules?configuration.target=…&configuration.value=…` to see
//! whether the rule exists (block) or is gone (unblock).

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
use serde_json::{Value, json};

use crate::api::{Api, Auth, Request};
use crate::common::{at, check_name, opt_param, param, parse, unexpected};
use crate::netaddr::Address;

pub const KIND: &str = "cloudflare";

const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com";
const BLOCK: &str = "block_ip";
const UNBLOCK: &str = "unblock_ip";
/// `firewallaccessrules.api.duplicate_of_existing`.
const DUPLICATE: u64 = 10009;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    base_url: Option<String>,
    /// The name of the secret holding the API token.
    api_token: String,
    #[serde(default)]
    zone_id: Option<String>,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured Cloudflare zone or account.
#[derive(Debug)]
pub struct Cloudflare {
    name: String,
    api: Api,
    ops: Vec<OperationSpec>,
    secret: String,
    /// `/client/v4/zones/{id}/firewall/access_rules/rules` or the account's.
    rules_path: String,
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

/// Cloudflare identifiers (zones, accounts, rules) are 32 lowercase hex digits; they go
/// into URL paths.
fn is_cloudflare_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Loads a `kind: cloudflare` definition.
pub fn load(
    file: &str,
    text: &str,
    secrets: Arc<dyn SecretSource>,
) -> Result<Cloudflare, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    if raw.api_token.trim().is_empty() {
        return Err(at(
            file,
            text,
            "api_token:",
            "`api_token` is empty: name the secret holding the Cloudflare API token",
        ));
    }
    let (scope, id, key) = match (&raw.zone_id, &raw.account_id) {
        (Some(z), None) => ("zones", z, "zone_id:"),
        (None, Some(a)) => ("accounts", a, "account_id:"),
        _ => {
            return Err(at(
                file,
                text,
                "name:",
                "give exactly one of `zone_id` (rules for one zone) and `account_id` (rules for every zone of the account)",
            ));
        }
    };
    if !is_cloudflare_id(id) {
        return Err(at(
            file,
            text,
            key,
            format!(
                "`{}` `{id}` is not a Cloudflare id (32 lowercase hex digits)",
                key.trim_end_matches(':')
            ),
        ));
    }
    let base = raw.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
    let auth = Auth::Bearer {
        secret: raw.api_token.clone(),
    };
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let api = Api::new(&raw.name, base, timeout, auth, secrets)
        .map_err(|m| at(file, text, "base_url:", m))?;
    Ok(Cloudflare {
        name: raw.name,
        api,
        ops: vec![spec(BLOCK, UNBLOCK), spec(UNBLOCK, BLOCK)],
        secret: raw.api_token,
        rules_path: format!("/client/v4/{scope}/{id}/firewall/access_rules/rules"),
    })
}

/// The access rule configuration for an address, or why Cloudflare would refuse it.
fn configuration(addr: &Address) -> Result<(&'static str, String), String> {
    match addr {
        Address::Host(ip) if ip.is_ipv4() => Ok(("ip", ip.to_string())),
        Address::Host(ip) => Ok(("ip6", ip.to_string())),
        Address::Network(ip, len) => {
            let allowed: &[u8] = if ip.is_ipv4() {
                &[16, 24]
            } else {
                &[32, 48, 64]
            };
            if allowed.contains(len) {
                Ok(("ip_range", addr.to_string()))
            } else {
                Err(format!(
                    "Cloudflare blocks IPv4 ranges of /16 or /24 and IPv6 ranges of /32, /48 or /64, not {addr}"
                ))
            }
        }
    }
}

/// The first entry of the envelope's `errors`: (code, message).
fn first_error(body: &Value) -> (Option<u64>, String) {
    let e = body.pointer("/errors/0");
    (
        e.and_then(|e| e.get("code")).and_then(|c| c.as_u64()),
        e.and_then(|e| e.get("message"))
            .and_then(|m| m.as_str())
            .unwrap_or("no message")
            .to_string(),
    )
}

/// What one call of the API came to.
enum Envelope {
    Ok(u16, Value),
    Failed {
        status: u16,
        code: Option<u64>,
        message: String,
    },
}

impl Cloudflare {
    /// Sends `r` and reads Cloudflare's envelope; 4xx answers are read too (they carry
    /// `errors`), except 429, which the client reports as rate limited.
    async fn send(&self, r: Request, deadline: Duration) -> Result<Envelope, ConnectorError> {
        let r = r.also_ok(400).also_ok(401).also_ok(403).also_ok(404);
        let reply = self.api.send(&r, deadline).await?;
        let success = reply.body.get("success").and_then(|s| s.as_bool());
        if (200..300).contains(&reply.status) && success == Some(true) {
            return Ok(Envelope::Ok(reply.status, reply.body));
        }
        let (code, message) = first_error(&reply.body);
        if matches!(reply.status, 401 | 403) || code == Some(10000) {
            return Err(ConnectorError::Rejected {
                status: Some(reply.status),
                message: format!(
                    "{}: Cloudflare refused the API token in secret `{}` ({}); check the token and its permissions",
                    self.name,
                    self.secret,
                    if success.is_some() {
                        message
                    } else {
                        format!("HTTP {}", reply.status)
                    }
                ),
            });
        }
        if success.is_none() {
            return Err(unexpected(
                &self.name,
                &format!(
                    "{} {} did not answer Cloudflare's envelope",
                    r.method, r.path
                ),
                &reply.body,
            ));
        }
        Ok(Envelope::Failed {
            status: reply.status,
            code,
            message,
        })
    }

    fn refused(&self, what: &str, status: u16, code: Option<u64>, message: &str) -> ConnectorError {
        ConnectorError::Rejected {
            status: Some(status),
            message: format!(
                "{}: Cloudflare refused to {what}: {message}{}",
                self.name,
                code.map(|c| format!(" (code {c})")).unwrap_or_default()
            ),
        }
    }

    fn marker(req: &CallRequest) -> String {
        format!("action {}", req.action_id)
    }

    fn notes(req: &CallRequest) -> String {
        let mut n = match req.context.pointer("/case/id").and_then(|v| v.as_str()) {
            Some(case) => format!("riposte case {case}: {}", Self::marker(req)),
            None => format!("riposte {}", Self::marker(req)),
        };
        if let Some(extra) = req.params.get("notes").and_then(|v| v.as_str()) {
            n.push_str(" — ");
            n.push_str(extra);
        }
        n
    }

    fn outcome(rule_id: &str, value: &str, created: bool, status: u16) -> CallOutcome {
        let fields = serde_json::Map::from_iter([
            ("rule_id".to_string(), json!(rule_id)),
            ("ip".to_string(), json!(value)),
            ("created".to_string(), json!(created)),
        ]);
        CallOutcome {
            undo: Value::Object(fields.clone()),
            fields,
            status: Some(status),
        }
    }

    /// The rules for exactly this address (Cloudflare filters by target and value).
    async fn rules_for(
        &self,
        target: &str,
        value: &str,
        deadline: Duration,
    ) -> Result<(u16, Vec<Value>), ConnectorError> {
        let r = Request::new(Method::GET, self.rules_path.clone())
            .query("configuration.target", target)
            .query("configuration.value", value)
            .query("per_page", "50");
        match self.send(r, deadline).await? {
            Envelope::Ok(status, body) => {
                let rules = body
                    .get("result")
                    .and_then(|r| r.as_array())
                    .ok_or_else(|| unexpected(&self.name, "the rule list has no `result`", &body))?
                    .iter()
                    .filter(|r| {
                        r.pointer("/configuration/value").and_then(|v| v.as_str()) == Some(value)
                    })
                    .cloned()
                    .collect();
                Ok((status, rules))
            }
            Envelope::Failed {
                status,
                code,
                message,
            } => Err(self.refused("list access rules", status, code, &message)),
        }
    }

    /// What an existing rule for the address means for a block (see the module doc).
    fn adopt(
        &self,
        req: &CallRequest,
        rule: &Value,
        value: &str,
        status: u16,
    ) -> Result<CallOutcome, ConnectorError> {
        let id = rule.get("id").and_then(|v| v.as_str()).unwrap_or_default();
        let mode = rule.get("mode").and_then(|v| v.as_str()).unwrap_or("?");
        if mode != "block" {
            return Err(ConnectorError::Rejected {
                status: Some(status),
                message: format!(
                    "{}: an access rule for {value} already exists with mode `{mode}` (rule {id}); riposte does not change rules it did not make",
                    self.name
                ),
            });
        }
        if !is_cloudflare_id(id) {
            return Err(unexpected(
                &self.name,
                "an access rule has no usable `id`",
                rule,
            ));
        }
        let ours = rule
            .get("notes")
            .and_then(|n| n.as_str())
            .is_some_and(|n| n.contains(&Self::marker(req)));
        Ok(Self::outcome(id, value, ours, status))
    }

    async fn block(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let addr = Address::parse(param(req, "ip")?, &req.operation, "ip")?;
        let (target, value) = configuration(&addr).map_err(|m| ConnectorError::Config {
            message: format!("operation `{}`: {m}", req.operation),
        })?;
        let r = Request::new(Method::POST, self.rules_path.clone()).json(json!({
            "mode": "block",
            "configuration": {"target": target, "value": value},
            "notes": Self::notes(req),
        }));
        match self.send(r, req.timeout).await? {
            Envelope::Ok(status, body) => {
                let id = body
                    .pointer("/result/id")
                    .and_then(|v| v.as_str())
                    .filter(|id| is_cloudflare_id(id))
                    .ok_or_else(|| {
                        unexpected(&self.name, "the new rule has no `result.id`", &body)
                    })?;
                Ok(Self::outcome(id, &value, true, status))
            }
            Envelope::Failed {
                code: Some(DUPLICATE),
                ..
            } => {
                let (status, rules) = self.rules_for(target, &value, req.timeout).await?;
                match rules.first() {
                    Some(rule) => self.adopt(req, rule, &value, status),
                    None => Err(ConnectorError::Transient {
                        message: format!(
                            "{}: Cloudflare says a rule for {value} exists but lists none; it may have just been deleted",
                            self.name
                        ),
                    }),
                }
            }
            Envelope::Failed {
                status,
                code,
                message,
            } => Err(self.refused(&format!("block {value}"), status, code, &message)),
        }
    }

    /// The rule to delete: the undo record's (or a parameter's) `rule_id`.
    fn rule_id<'a>(&self, req: &'a CallRequest) -> Result<&'a str, ConnectorError> {
        let id = opt_param(req, "rule_id").ok_or_else(|| ConnectorError::Config {
            message: format!(
                "operation `{}` needs `rule_id`, the id `block_ip` kept in its undo record",
                req.operation
            ),
        })?;
        if !is_cloudflare_id(id) {
            return Err(ConnectorError::Config {
                message: format!(
                    "operation `{}`: `{id}` is not a Cloudflare rule id",
                    req.operation
                ),
            });
        }
        Ok(id)
    }

    /// `false` when the block found a rule someone else made: the inverse leaves it.
    fn created(req: &CallRequest) -> bool {
        req.undo.get("created").and_then(|c| c.as_bool()) != Some(false)
    }

    /// The inverse of a block that found someone else's rule: nothing to do.
    fn left_in_place(id: &str, value: &str) -> CallOutcome {
        let mut out = Self::outcome(id, value, false, 0);
        out.status = None;
        out.fields.insert("left_in_place".into(), json!(true));
        out
    }

    async fn unblock(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let id = self.rule_id(req)?;
        let value = opt_param(req, "ip").unwrap_or_default();
        if !Self::created(req) {
            return Ok(Self::left_in_place(id, value));
        }
        let r = Request::new(Method::DELETE, format!("{}/{id}", self.rules_path));
        match self.send(r, req.timeout).await? {
            Envelope::Ok(status, _) => Ok(Self::outcome(id, value, true, status)),
            // Already gone: deleted by hand, or by an earlier attempt whose answer was lost.
            Envelope::Failed { status: 404, .. } => Ok(Self::outcome(id, value, true, 404)),
            Envelope::Failed {
                status,
                code,
                message,
            } => Err(self.refused(&format!("delete rule {id}"), status, code, &message)),
        }
    }

    async fn took_effect(&self, req: &CallRequest) -> Result<Option<CallOutcome>, ConnectorError> {
        if req.operation == UNBLOCK && !Self::created(req) {
            return Ok(Some(Self::left_in_place(
                self.rule_id(req)?,
                opt_param(req, "ip").unwrap_or_default(),
            )));
        }
        let addr = Address::parse(param(req, "ip")?, &req.operation, "ip")?;
        let (target, value) = configuration(&addr).map_err(|m| ConnectorError::Config {
            message: format!("operation `{}`: {m}", req.operation),
        })?;
        let (status, rules) = self.rules_for(target, &value, req.timeout).await?;
        if req.operation == BLOCK {
            return Ok(match rules.first() {
                Some(rule) if rule.get("mode").and_then(|m| m.as_str()) == Some("block") => {
                    Some(self.adopt(req, rule, &value, status)?)
                }
                _ => None,
            });
        }
        let id = self.rule_id(req)?;
        let present = rules
            .iter()
            .any(|r| r.get("id").and_then(|v| v.as_str()) == Some(id));
        Ok((!present).then(|| Self::outcome(id, &value, true, status)))
    }
}

impl Connector for Cloudflare {
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
        Box::pin(async move {
            match req.operation.as_str() {
                BLOCK => self.block(req).await,
                UNBLOCK => self.unblock(req).await,
                other => Err(ConnectorError::UnknownOperation {
                    connector: self.name.clone(),
                    operation: other.into(),
                }),
            }
        })
    }

    fn check<'a>(&'a self, req: &'a CallRequest) -> Option<CheckFuture<'a>> {
        Some(Box::pin(self.took_effect(req)))
    }
}
