//! riposte's own External Dynamic Lists: named lists of IP addresses, domains or URLs that
//! playbooks add to and remove from, kept in riposte's store (so they survive restarts) and
//! served one entry per line at `GET /edl/{list}.txt`, the way PAN-OS, FortiGate (external
//! threat feeds) and Check Point poll such lists.
//!
//! ```yaml
//! name: blocklists
//! kind: edl
//! lists:                # list name → what it holds: ip, domain or url
//!   bad-ips: ip
//!   bad-domains: domain
//!   bad-urls: url
//! ```
//!
//! | operation | class | inverse |
//! |---|---|---|
//! | `add` | approve | `remove` |
//! | `remove` | approve | `add` |
//!
//! Parameters: `list` (optional when only one list is configured) and `value`. A value is
//! checked and written in the form firewalls read: `ip` — an address or CIDR network
//! (`192.0.2.7`, `2001:db8::/48`); `domain` — lower case, ASCII (punycode), an optional
//! leading `*.`; `url` — without its scheme (`evil.example/login`), host in lower case. A
//! value that could break the one-entry-per-line format (a line break, a space, a control
//! character) is refused.
//!
//! Both operations are idempotent (a list is a set). The undo record keeps `list`, `value`
//! and `changed`: an `add` that found the value already listed (put there by someone else)
//! has nothing to undo, so its inverse leaves the entry; the same for a `remove` that found
//! nothing. Every change is one store transaction with its audit record. The check (after a
//! restart between call and answer) reads the list; it cannot tell who added an entry, so a
//! present entry counts as this action's.
//!
//! Who may read a list is the server's `edl:` configuration (an API token, or an
//! allow-list of source addresses): see docs/connectors.md.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use riposte_respond::connector::{CallFuture, CheckFuture};
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
};
use serde::Deserialize;
use serde_json::json;

use crate::common::{at, check_name, opt_param, parse};
use crate::netaddr::Address;

pub const KIND: &str = "edl";

const ADD: &str = "add";
const REMOVE: &str = "remove";

pub type ListFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Where the lists live: riposte's store in `riposte serve`. Errors are messages a person
/// can act on (they never hold a secret: lists hold none).
pub trait EdlLists: Send + Sync {
    /// Adds `value`; `false` when the list held it already.
    fn add<'a>(&'a self, list: &'a str, value: &'a str, actor: &'a str) -> ListFuture<'a, bool>;
    /// Removes `value`; `false` when the list did not hold it.
    fn remove<'a>(&'a self, list: &'a str, value: &'a str, actor: &'a str) -> ListFuture<'a, bool>;
    fn entries<'a>(&'a self, list: &'a str) -> ListFuture<'a, Vec<String>>;
}

/// The store `riposte serve` binds once it is open. Connector definitions are loaded before
/// the store (and by `riposte playbook check|test`, which never call), so a definition holds
/// [`Bound`], which looks here at call time.
static BOUND: OnceLock<Arc<dyn EdlLists>> = OnceLock::new();

/// Binds the process's list store; `false` when one was bound already (it stays).
pub fn bind(lists: Arc<dyn EdlLists>) -> bool {
    BOUND.set(lists).is_ok()
}

/// The process's list store, looked up at each call.
pub struct Bound;

impl Bound {
    fn get(&self) -> Result<&Arc<dyn EdlLists>, String> {
        BOUND.get().ok_or_else(|| {
            "no list store: external dynamic lists are kept by `riposte serve`".to_string()
        })
    }
}

impl EdlLists for Bound {
    fn add<'a>(&'a self, list: &'a str, value: &'a str, actor: &'a str) -> ListFuture<'a, bool> {
        Box::pin(async move { self.get()?.add(list, value, actor).await })
    }

    fn remove<'a>(&'a self, list: &'a str, value: &'a str, actor: &'a str) -> ListFuture<'a, bool> {
        Box::pin(async move { self.get()?.remove(list, value, actor).await })
    }

    fn entries<'a>(&'a self, list: &'a str) -> ListFuture<'a, Vec<String>> {
        Box::pin(async move { self.get()?.entries(list).await })
    }
}

/// What a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    Ip,
    Domain,
    Url,
}

/// A list name goes into `/edl/{name}.txt`: lower-case letters, digits, `-` and `_`.
pub fn check_list_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "list name `{name}` must be 1 to 64 lower-case letters, digits, `-` or `_`"
        ))
    }
}

fn check_host(host: &str) -> Result<(), String> {
    let labels: Vec<&str> = host.split('.').collect();
    if host.len() > 253 || labels.len() < 2 {
        return Err("not a domain name (at least two labels, at most 253 characters)".into());
    }
    for l in labels {
        let ok = !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!(
                "label `{l}` is not a DNS label (letters, digits, `-`; IDNs in punycode)"
            ));
        }
    }
    Ok(())
}

/// `value` in the form the list holds it, or why it cannot be listed.
pub fn canonical(kind: EntryType, value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() || v.len() > 2048 || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(
            "an entry must be one line: non-empty, at most 2048 characters, no spaces or control characters"
                .into(),
        );
    }
    match kind {
        EntryType::Ip => Address::parse(v, "add", "value")
            .map(|a| a.to_string())
            .map_err(|_| "not an IP address or a CIDR network".to_string()),
        EntryType::Domain => {
            let d = v.trim_end_matches('.').to_ascii_lowercase();
            let bare = d.strip_prefix("*.").unwrap_or(&d);
            check_host(bare)?;
            Ok(d)
        }
        EntryType::Url => {
            let lower = v.to_ascii_lowercase();
            let rest = if lower.starts_with("https://") {
                &v[8..]
            } else if lower.starts_with("http://") {
                &v[7..]
            } else if v.contains("://") {
                return Err("only http and https URLs can be listed".into());
            } else {
                v
            };
            let (host, path) = match rest.find(['/', '?']) {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = host.to_ascii_lowercase();
            let bare = host.split(':').next().unwrap_or_default();
            let bare = bare.strip_prefix("*.").unwrap_or(bare);
            if bare.parse::<std::net::IpAddr>().is_err() {
                check_host(bare)?;
            }
            Ok(format!("{host}{path}"))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    lists: BTreeMap<String, EntryType>,
}

/// A configured set of riposte-served lists.
pub struct Edl {
    name: String,
    lists: BTreeMap<String, EntryType>,
    store: Arc<dyn EdlLists>,
    ops: Vec<OperationSpec>,
}

impl std::fmt::Debug for Edl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edl")
            .field("name", &self.name)
            .field("lists", &self.lists)
            .finish_non_exhaustive()
    }
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

/// Loads a `kind: edl` definition whose lists live in `store`.
pub fn load(file: &str, text: &str, store: Arc<dyn EdlLists>) -> Result<Edl, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    if raw.lists.is_empty() {
        return Err(at(
            file,
            text,
            "lists:",
            "`lists` is empty: name at least one list and what it holds (ip, domain or url)",
        ));
    }
    for name in raw.lists.keys() {
        check_list_name(name).map_err(|m| at(file, text, &format!("{name}:"), m))?;
    }
    Ok(Edl {
        name: raw.name,
        lists: raw.lists,
        store,
        ops: vec![spec(ADD, REMOVE), spec(REMOVE, ADD)],
    })
}

impl Edl {
    /// The lists this definition names, with what each holds (for the server's checks).
    pub fn lists(&self) -> &BTreeMap<String, EntryType> {
        &self.lists
    }

    fn target(&self, req: &CallRequest) -> Result<(String, String), ConnectorError> {
        let list = match opt_param(req, "list") {
            Some(l) => l.to_string(),
            None if self.lists.len() == 1 => self.lists.keys().next().cloned().unwrap_or_default(),
            None => {
                return Err(ConnectorError::Config {
                    message: format!(
                        "operation `{}` needs `list`: one of {}",
                        req.operation,
                        self.lists.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        };
        let Some(kind) = self.lists.get(&list) else {
            return Err(ConnectorError::Config {
                message: format!(
                    "connector `{}` has no list `{list}`: use one of {}",
                    self.name,
                    self.lists.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        };
        let value = opt_param(req, "value").ok_or_else(|| ConnectorError::Config {
            message: format!(
                "operation `{}` needs the parameter `value` (a non-empty string)",
                req.operation
            ),
        })?;
        let value = canonical(*kind, value).map_err(|why| ConnectorError::Config {
            message: format!(
                "operation `{}`: `{}` cannot go on list `{list}` ({kind:?}): {why}",
                req.operation,
                value.chars().take(100).collect::<String>()
            ),
        })?;
        Ok((list, value))
    }

    fn outcome(list: &str, value: &str, changed: bool) -> CallOutcome {
        let fields = serde_json::Map::from_iter([
            ("list".to_string(), json!(list)),
            ("value".to_string(), json!(value)),
            ("changed".to_string(), json!(changed)),
        ]);
        CallOutcome {
            undo: serde_json::Value::Object(fields.clone()),
            fields,
            status: None,
        }
    }

    fn failed(&self, why: String) -> ConnectorError {
        // The store is local: a failure to write is worth another try (a busy database).
        ConnectorError::Transient {
            message: format!("{}: {why}", self.name),
        }
    }

    async fn act(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let add = match req.operation.as_str() {
            ADD => true,
            REMOVE => false,
            other => {
                return Err(ConnectorError::UnknownOperation {
                    connector: self.name.clone(),
                    operation: other.into(),
                });
            }
        };
        let (list, value) = self.target(req)?;
        // An inverse of a call that changed nothing has nothing to undo.
        if req.undo.get("changed").and_then(|c| c.as_bool()) == Some(false) {
            let mut out = Self::outcome(&list, &value, false);
            out.fields.insert("left_in_place".into(), json!(true));
            return Ok(out);
        }
        let actor = format!("connector {}: action {}", self.name, req.action_id);
        let changed = if add {
            self.store.add(&list, &value, &actor).await
        } else {
            self.store.remove(&list, &value, &actor).await
        }
        .map_err(|e| self.failed(e))?;
        Ok(Self::outcome(&list, &value, changed))
    }

    async fn took_effect(&self, req: &CallRequest) -> Result<Option<CallOutcome>, ConnectorError> {
        let (list, value) = self.target(req)?;
        let present = self
            .store
            .entries(&list)
            .await
            .map_err(|e| self.failed(e))?
            .contains(&value);
        let done = present == (req.operation == ADD);
        Ok(done.then(|| Self::outcome(&list, &value, true)))
    }
}

impl Connector for Edl {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_written_as_firewalls_read_them() {
        let ok = |k, v: &str, want: &str| assert_eq!(canonical(k, v).as_deref(), Ok(want), "{v}");
        ok(EntryType::Ip, " 192.0.2.7 ", "192.0.2.7");
        ok(EntryType::Ip, "2001:DB8::/48", "2001:db8::/48");
        ok(EntryType::Domain, "Evil.Example.", "evil.example");
        ok(EntryType::Domain, "*.evil.example", "*.evil.example");
        ok(
            EntryType::Domain,
            "xn--bcher-kva.example",
            "xn--bcher-kva.example",
        );
        ok(
            EntryType::Url,
            "HTTPS://Login.Evil.Example/Path?q=1",
            "login.evil.example/Path?q=1",
        );
        ok(EntryType::Url, "evil.example:8443/x", "evil.example:8443/x");
        ok(
            EntryType::Url,
            "http://192.0.2.7/payload",
            "192.0.2.7/payload",
        );
        for (k, bad) in [
            (EntryType::Ip, "192.0.2"),
            (EntryType::Domain, "localhost"),
            (EntryType::Domain, "bücher.example"),
            (EntryType::Domain, "evil.example\n0.0.0.0/0"),
            (EntryType::Url, "ftp://evil.example/x"),
            (EntryType::Url, "evil.example/a b"),
            (EntryType::Url, ""),
        ] {
            assert!(canonical(k, bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn list_names_fit_a_url_path() {
        assert!(check_list_name("bad-ips_2").is_ok());
        for bad in ["", "Bad", "a/b", "a.txt", &"x".repeat(65)] {
            assert!(check_list_name(bad).is_err(), "{bad}");
        }
    }
}
