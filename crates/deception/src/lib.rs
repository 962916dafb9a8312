//! Deception: the validation step. A decoy is something nobody has a reason to touch — a
//! honeytoken account, a Kerberoasting trap SPN, an account without pre-authentication, a
//! decoy host or address, a decoy file or share, a canary DNS name or URL, a canary AWS key,
//! a canarytoken, a honeypot. When a record shows one being *used*, that is deterministic
//! evidence of an intruder, whatever any score says.
//!
//! [`Registry`] is the decoy list (YAML, see [`Registry::from_yaml`]); [`Registry::check`]
//! matches one decoded record against it, only in the roles that mean use:
//!
//! | decoy kind | use | records |
//! |---|---|---|
//! | `account` | authentication as it | Windows 4624, 4625, 4648, 4768, 4771, 4776; Okta and Entra sign-ins; an alert whose actor it is |
//! | `spn` | a service ticket for it | Windows 4769 with `ServiceName` = the SPN or its account |
//! | `asrep_account` | a TGT request for it | Windows 4768 |
//! | `host`, `ip` | a connection to it | any record with it as the target address or host (Windows: Sysmon 3 and logon events only) |
//! | `file`, `share`, `directory_object` | a read of it | Windows 4662, 4663, 5140, 5145 |
//! | `dns`, `url` | a look-up of it | a domain (or subdomain) / URL entity as target: Zeek dns, Sysmon 22, Suricata |
//! | `aws_key` | a call with it | GuardDuty `accessKeyDetails.accessKeyId`, CloudTrail `userIdentity.accessKeyId` |
//! | `canarytoken` | a trigger | the `canarytokens` decoder's alerts (token id) |
//! | (implicit) honeypot | any interaction | `opencanary` alerts (not its health records 1000–1006), `cowrie` alerts |
//!
//! A hit names the decoy, the kind of use and the **actor**: the record's source and actor
//! entities (address, user, host), never the decoy itself, so the actor joins cases and the
//! decoy does not (two intruders touching one decoy stay two cases). Expected touchers (a
//! vulnerability scanner's address), globally or per decoy, never count: the hit is returned
//! marked ignored with the reason, so the alert can say so.

use std::collections::HashMap;

use riposte_decode::fields::str_at;
use riposte_domain::{
    Alert, Canonicaliser, Decoded, Entity, EntityKind, Role, Rule, Severity, TechniqueId,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// What kind of thing a decoy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoyKind {
    Account,
    Spn,
    AsrepAccount,
    Host,
    Ip,
    File,
    Share,
    DirectoryObject,
    Dns,
    Url,
    AwsKey,
    Canarytoken,
    Honeypot,
}

impl DecoyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecoyKind::Account => "account",
            DecoyKind::Spn => "spn",
            DecoyKind::AsrepAccount => "asrep_account",
            DecoyKind::Host => "host",
            DecoyKind::Ip => "ip",
            DecoyKind::File => "file",
            DecoyKind::Share => "share",
            DecoyKind::DirectoryObject => "directory_object",
            DecoyKind::Dns => "dns",
            DecoyKind::Url => "url",
            DecoyKind::AwsKey => "aws_key",
            DecoyKind::Canarytoken => "canarytoken",
            DecoyKind::Honeypot => "honeypot",
        }
    }

    /// The ATT&CK technique a use of this kind of decoy shows.
    fn technique(self) -> Option<&'static str> {
        match self {
            DecoyKind::Account => Some("T1078"),
            DecoyKind::Spn => Some("T1558.003"),
            DecoyKind::AsrepAccount => Some("T1558.004"),
            DecoyKind::AwsKey => Some("T1552.001"),
            DecoyKind::File | DecoyKind::Share => Some("T1039"),
            DecoyKind::DirectoryObject => Some("T1087.002"),
            _ => None,
        }
    }
}

/// Someone expected to touch decoys (a scanner): matched by address, user or host.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Toucher {
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    /// Why they touch decoys ("vulnerability scanner").
    #[serde(default)]
    pub reason: Option<String>,
}

/// One decoy as written in the registry file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoySpec {
    pub name: String,
    pub kind: DecoyKind,
    /// The account, SPN, host, address, path, DNS name, URL, key id or token id.
    pub value: String,
    /// For an `spn`: the account the SPN is registered on (4769 `ServiceName` may name it).
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub expected_touchers: Vec<Toucher>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    expected_touchers: Vec<Toucher>,
    #[serde(default)]
    decoys: Vec<DecoySpec>,
}

/// A registry file that cannot be used: which file, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct RegistryError {
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub reason: String,
}

/// A decoy ready for matching: its value canonicalised as the pipeline canonicalises
/// entities.
#[derive(Debug, Clone)]
struct Decoy {
    name: String,
    kind: DecoyKind,
    value: String,
    account: Option<String>,
    touchers: Vec<Toucher>,
}

/// The decoy registry.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    decoys: Vec<Decoy>,
    /// Kind of value → canonical value → decoys (nested so a look-up borrows, never allocates).
    by_value: HashMap<DecoyKind, HashMap<String, Vec<usize>>>,
    touchers: Vec<Toucher>,
    canon: Canonicaliser,
}

/// One decoy used in one record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DecoyHit {
    pub decoy: String,
    pub kind: DecoyKind,
    /// "authentication", "service ticket request", "connection", "object access",
    /// "DNS look-up", "key use", "token trigger", "honeypot interaction".
    pub usage: &'static str,
    /// The entities of whoever used it (never the decoy itself).
    pub actor: Vec<Entity>,
    /// Set when the actor is an expected toucher: the hit does not count.
    pub ignored: Option<String>,
}

impl Registry {
    /// Reads a registry:
    ///
    /// ```yaml
    /// expected_touchers:
    ///   - { ip: 10.0.0.5, reason: vulnerability scanner }
    /// decoys:
    ///   - { name: svc-backup-old, kind: account, value: svc-backup-old }
    ///   - { name: sql-trap, kind: spn, value: MSSQLSvc/sql-old.corp.example:1433, account: svc-sql-old }
    ///   - { name: finance-share, kind: share, value: '\\*\FinanceArchive' }
    /// ```
    ///
    /// `file` names the source in errors. Every value is canonicalised with `canon`, so a
    /// decoy written `CORP\svc-backup-old` matches the record that says `svc-backup-old`.
    pub fn from_yaml(
        text: &str,
        file: &str,
        canon: &Canonicaliser,
    ) -> Result<Registry, RegistryError> {
        let parsed: RegistryFile = yaml_serde::from_str(text).map_err(|e| RegistryError {
            file: file.to_string(),
            line: e.location().map(|l| l.line()),
            reason: e.to_string(),
        })?;
        let mut r = Registry {
            touchers: canon_touchers(&parsed.expected_touchers, canon),
            canon: canon.clone(),
            ..Registry::default()
        };
        for (i, spec) in parsed.decoys.iter().enumerate() {
            let bad = |reason: String| RegistryError {
                file: file.to_string(),
                line: None,
                reason: format!("decoy {} ({:?}): {reason}", i + 1, spec.name),
            };
            if spec.name.trim().is_empty() {
                return Err(bad("`name` is empty".into()));
            }
            let value = canonical_value(spec.kind, &spec.value, canon).ok_or_else(|| {
                bad(format!(
                    "{:?} is not a valid {} value",
                    spec.value,
                    spec.kind.as_str()
                ))
            })?;
            let account = spec
                .account
                .as_deref()
                .and_then(|a| canon.canonical(EntityKind::User, a));
            let idx = r.decoys.len();
            let by_kind = r.by_value.entry(spec.kind).or_default();
            by_kind.entry(value.clone()).or_default().push(idx);
            if let (DecoyKind::Spn, Some(a)) = (spec.kind, &account) {
                by_kind.entry(a.clone()).or_default().push(idx);
            }
            r.decoys.push(Decoy {
                name: spec.name.clone(),
                kind: spec.kind,
                value,
                account,
                touchers: canon_touchers(&spec.expected_touchers, canon),
            });
        }
        Ok(r)
    }

    pub fn len(&self) -> usize {
        self.decoys.len()
    }

    /// Whether this (canonical) entity is a decoy. The case stage leaves decoys out of case
    /// joining: two intruders touching one decoy are two cases, not one.
    pub fn is_decoy(&self, kind: EntityKind, value: &str) -> bool {
        let kinds: &[DecoyKind] = match kind {
            EntityKind::User => &[DecoyKind::Account, DecoyKind::AsrepAccount, DecoyKind::Spn],
            EntityKind::Host => &[DecoyKind::Host, DecoyKind::Honeypot],
            EntityKind::Ip => &[DecoyKind::Ip],
            EntityKind::Domain => &[DecoyKind::Dns],
            EntityKind::Url => &[DecoyKind::Url],
            _ => &[],
        };
        kinds
            .iter()
            .any(|&k| self.by_value.get(&k).is_some_and(|m| m.contains_key(value)))
    }

    pub fn is_empty(&self) -> bool {
        self.decoys.is_empty()
    }

    fn lookup(&self, kind: DecoyKind, value: &str) -> impl Iterator<Item = &Decoy> {
        self.by_value
            .get(&kind)
            .and_then(|m| m.get(value))
            .into_iter()
            .flatten()
            .filter_map(|&i| self.decoys.get(i))
    }

    /// The decoys this record shows being used (usually none).
    pub fn check(&self, d: &Decoded) -> Vec<DecoyHit> {
        let mut hits = Vec::new();
        let decoder = d.decoder();
        let entities = d.entities();
        let original = d.original();
        let (is_alert, action) = match d {
            Decoded::Alert(_) => (true, ""),
            Decoded::Event(e) => (false, e.action.as_str()),
        };
        let windows_id: Option<u32> = (decoder == "windows")
            .then(|| action.parse().ok())
            .flatten();

        // Honeypots: every alert of theirs is an interaction (health records are events).
        if is_alert && matches!(decoder, "opencanary" | "cowrie") {
            let node = str_at(original, "node_id")
                .or_else(|| str_at(original, "sensor"))
                .unwrap_or(decoder)
                .to_string();
            let name = self
                .lookup(DecoyKind::Honeypot, &node.to_ascii_lowercase())
                .next()
                .map_or(node.clone(), |x| x.name.clone());
            hits.push(self.hit(
                &name,
                DecoyKind::Honeypot,
                "honeypot interaction",
                entities,
                &[],
                &[],
            ));
        }
        if is_alert
            && decoder == "canarytokens"
            && let Some(token) = riposte_decode::canarytokens::token_id(original)
        {
            let name = self
                .lookup(DecoyKind::Canarytoken, &token)
                .next()
                .map_or(format!("canarytoken {token}"), |x| x.name.clone());
            hits.push(self.hit(
                &name,
                DecoyKind::Canarytoken,
                "token trigger",
                entities,
                &[],
                &[],
            ));
        }

        // Everything below needs a registered decoy; most deployments' records pass here.
        if self.decoys.is_empty() {
            return hits;
        }
        // Accounts: authentication as the decoy.
        let auth = match windows_id {
            Some(id) => matches!(id, 4624 | 4625 | 4648 | 4768 | 4771 | 4776),
            None => {
                (decoder == "okta"
                    && (action.starts_with("user.session.start")
                        || action.starts_with("user.authentication")))
                    || decoder == "entra"
            }
        };
        for e in entities.iter().filter(|e| e.kind == EntityKind::User) {
            let as_auth = auth && matches!(e.role, Role::Target | Role::Actor);
            let as_alert_actor = is_alert && e.role == Role::Actor;
            if as_auth || as_alert_actor {
                for decoy in self.lookup(DecoyKind::Account, &e.value) {
                    hits.push(self.decoy_hit(decoy, "authentication", entities, &[e]));
                }
            }
            if windows_id == Some(4768) && e.role == Role::Target {
                for decoy in self.lookup(DecoyKind::AsrepAccount, &e.value) {
                    hits.push(self.decoy_hit(decoy, "TGT request", entities, &[e]));
                }
            }
        }
        // SPN trap: 4769 names the service in `ServiceName`; its requester is TargetUserName.
        if windows_id == Some(4769)
            && let Some(service) = event_data_str(original, "ServiceName")
        {
            let key = service.trim().to_ascii_lowercase();
            let as_user = self
                .canon
                .canonical(EntityKind::User, &key)
                .unwrap_or_default();
            let mut seen = Vec::new();
            for decoy in self
                .lookup(DecoyKind::Spn, &key)
                .chain(self.lookup(DecoyKind::Spn, &as_user))
            {
                if !seen.contains(&decoy.name) {
                    seen.push(decoy.name.clone());
                    hits.push(self.decoy_hit(decoy, "service ticket request", entities, &[]));
                }
            }
        }
        // Hosts and addresses as the target of a connection.
        let network_ok = match windows_id {
            Some(id) => matches!(id, 3 | 22 | 4624 | 4625 | 4648 | 4776 | 5140 | 5145),
            None => true,
        };
        if network_ok {
            for e in entities.iter().filter(|e| e.role == Role::Target) {
                let kind = match e.kind {
                    EntityKind::Ip => DecoyKind::Ip,
                    EntityKind::Host => DecoyKind::Host,
                    EntityKind::Domain => DecoyKind::Dns,
                    EntityKind::Url => DecoyKind::Url,
                    _ => continue,
                };
                if kind == DecoyKind::Dns {
                    for name in suffixes(&e.value) {
                        for decoy in self.lookup(DecoyKind::Dns, name) {
                            hits.push(self.decoy_hit(decoy, "DNS look-up", entities, &[e]));
                        }
                    }
                    continue;
                }
                let usage = if kind == DecoyKind::Url {
                    "request"
                } else {
                    "connection"
                };
                for decoy in self.lookup(kind, &e.value) {
                    hits.push(self.decoy_hit(decoy, usage, entities, &[e]));
                }
            }
        }
        // Objects: files, shares, directory objects read.
        if let Some(id) = windows_id
            && matches!(id, 4662 | 4663 | 5140 | 5145)
        {
            let names: Vec<String> = ["ObjectName", "ShareName", "RelativeTargetName", "ObjectDN"]
                .iter()
                .filter_map(|k| event_data_str(original, k))
                .map(|s| s.to_ascii_lowercase())
                .collect();
            for decoy in &self.decoys {
                let kinds = [
                    DecoyKind::File,
                    DecoyKind::Share,
                    DecoyKind::DirectoryObject,
                ];
                if kinds.contains(&decoy.kind) && names.iter().any(|n| n.contains(&decoy.value)) {
                    hits.push(self.decoy_hit(decoy, "object access", entities, &[]));
                }
            }
        }
        // Canary AWS keys.
        for path in [
            "resource.accessKeyDetails.accessKeyId",
            "detail.resource.accessKeyDetails.accessKeyId",
            "userIdentity.accessKeyId",
            "detail.userIdentity.accessKeyId",
        ] {
            if let Some(key) = str_at(original, path) {
                for decoy in self.lookup(DecoyKind::AwsKey, key.trim()) {
                    hits.push(self.decoy_hit(decoy, "key use", entities, &[]));
                }
            }
        }
        hits
    }

    fn decoy_hit(
        &self,
        decoy: &Decoy,
        usage: &'static str,
        entities: &[Entity],
        exclude: &[&Entity],
    ) -> DecoyHit {
        let mut h = self.hit(
            &decoy.name,
            decoy.kind,
            usage,
            entities,
            exclude,
            &decoy.touchers,
        );
        // The decoy's own value is never part of the actor.
        h.actor
            .retain(|e| e.value != decoy.value && Some(&e.value) != decoy.account.as_ref());
        h
    }

    fn hit(
        &self,
        name: &str,
        kind: DecoyKind,
        usage: &'static str,
        entities: &[Entity],
        exclude: &[&Entity],
        own_touchers: &[Toucher],
    ) -> DecoyHit {
        let requester_is_actor = kind == DecoyKind::Spn;
        let actor: Vec<Entity> = entities
            .iter()
            .filter(|e| !exclude.contains(e))
            .filter(|e| {
                matches!(e.role, Role::Source | Role::Actor)
                    || (requester_is_actor && e.role == Role::Target && e.kind == EntityKind::User)
            })
            .filter(|e| matches!(e.kind, EntityKind::Ip | EntityKind::User | EntityKind::Host))
            .cloned()
            .collect();
        let ignored = self
            .touchers
            .iter()
            .chain(own_touchers)
            .find(|t| toucher_matches(t, &actor))
            .map(|t| {
                format!(
                    "expected toucher {}{}",
                    toucher_label(t),
                    t.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                )
            });
        DecoyHit {
            decoy: name.to_string(),
            kind,
            usage,
            actor,
            ignored,
        }
    }
}

impl DecoyHit {
    /// "decoy X (kind) used by Y at T", the reason a case is validated.
    pub fn reason(&self, at: &riposte_domain::Timestamp) -> String {
        format!(
            "decoy {} ({}) used by {} at {at}",
            self.decoy,
            self.kind.as_str(),
            actor_label(&self.actor)
        )
    }

    /// The alert a hit becomes: decoder `deception`, its entities the actor's only.
    /// `record` is the record that showed the use; its id and time are kept.
    pub fn to_alert(&self, record: &Decoded) -> Alert {
        let time = record.time();
        let (score, title) = match &self.ignored {
            None => (
                95,
                format!(
                    "Decoy {} ({}) used: {} by {}",
                    self.decoy,
                    self.kind.as_str(),
                    self.usage,
                    actor_label(&self.actor)
                ),
            ),
            Some(why) => (
                10,
                format!(
                    "Decoy {} ({}) touched by {}: ignored, {why}",
                    self.decoy,
                    self.kind.as_str(),
                    actor_label(&self.actor)
                ),
            ),
        };
        Alert {
            id: String::new(),
            decoder: "deception".into(),
            product: "riposte deception".into(),
            source_id: Some(format!("{}:{}", record.id(), self.decoy)),
            time,
            time_original: time.to_string(),
            title,
            description: Some(self.reason(&time)),
            severity: Severity::from_score(
                score,
                self.ignored
                    .as_ref()
                    .map_or("decoy used", |_| "expected toucher"),
            ),
            rule: Rule::new(
                Some(format!("decoy:{}", self.decoy)),
                Some(format!("{} decoy used", self.kind.as_str())),
            ),
            entities: self.actor.clone(),
            techniques: self
                .kind
                .technique()
                .and_then(TechniqueId::parse)
                .into_iter()
                .collect(),
            tactics: Vec::new(),
            original: json!({
                "decoy": self.decoy,
                "kind": self.kind,
                "usage": self.usage,
                "ignored": self.ignored,
                "record": { "id": record.id(), "decoder": record.decoder() },
            }),
            origin: None,
        }
    }
}

fn actor_label(actor: &[Entity]) -> String {
    if actor.is_empty() {
        return "an unknown actor".into();
    }
    actor
        .iter()
        .map(|e| format!("{} {}", e.kind.as_str(), e.value))
        .collect::<Vec<_>>()
        .join(", ")
}

fn toucher_label(t: &Toucher) -> String {
    t.ip.as_deref()
        .or(t.user.as_deref())
        .or(t.host.as_deref())
        .unwrap_or("?")
        .to_string()
}

fn toucher_matches(t: &Toucher, actor: &[Entity]) -> bool {
    actor.iter().any(|e| match e.kind {
        EntityKind::Ip => t.ip.as_deref() == Some(e.value.as_str()),
        EntityKind::User => t.user.as_deref() == Some(e.value.as_str()),
        EntityKind::Host => t.host.as_deref() == Some(e.value.as_str()),
        _ => false,
    })
}

fn canon_touchers(ts: &[Toucher], canon: &Canonicaliser) -> Vec<Toucher> {
    ts.iter()
        .map(|t| Toucher {
            ip: t
                .ip
                .as_deref()
                .and_then(|v| canon.canonical(EntityKind::Ip, v)),
            user: t
                .user
                .as_deref()
                .and_then(|v| canon.canonical(EntityKind::User, v)),
            host: t
                .host
                .as_deref()
                .and_then(|v| canon.canonical(EntityKind::Host, v)),
            reason: t.reason.clone(),
        })
        .collect()
}

fn canonical_value(kind: DecoyKind, raw: &str, canon: &Canonicaliser) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    match kind {
        DecoyKind::Account | DecoyKind::AsrepAccount => canon.canonical(EntityKind::User, raw),
        DecoyKind::Host => canon.canonical(EntityKind::Host, raw),
        DecoyKind::Ip => canon.canonical(EntityKind::Ip, raw),
        DecoyKind::Dns => canon.canonical(EntityKind::Domain, raw),
        DecoyKind::Url => canon.canonical(EntityKind::Url, raw),
        DecoyKind::Spn | DecoyKind::File | DecoyKind::Share | DecoyKind::DirectoryObject => {
            Some(raw.to_ascii_lowercase())
        }
        DecoyKind::Honeypot => Some(raw.to_ascii_lowercase()),
        DecoyKind::AwsKey | DecoyKind::Canarytoken => Some(raw.to_string()),
    }
}

/// `a.b.example`, `b.example`, `example`: a canary name matches its subdomains.
fn suffixes(name: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(name), |n| n.split_once('.').map(|(_, rest)| rest))
}

/// A field of a Windows record's event data, read as the `windows` decoder reads it.
fn event_data_str<'a>(original: &'a Value, key: &str) -> Option<&'a str> {
    riposte_decode::windows::event_data(original)?
        .get(key)?
        .as_str()
}

#[cfg(test)]
mod tests;

/// The active registry, replaceable while records are being checked (reload without a
/// restart). Readers take the current `Arc` and keep using it; a replacement never changes a
/// registry in use.
#[derive(Debug, Default)]
pub struct SharedRegistry {
    current: std::sync::RwLock<std::sync::Arc<Registry>>,
}

impl SharedRegistry {
    pub fn new(registry: Registry) -> SharedRegistry {
        SharedRegistry {
            current: std::sync::RwLock::new(std::sync::Arc::new(registry)),
        }
    }

    /// The active registry.
    pub fn current(&self) -> std::sync::Arc<Registry> {
        match self.current.read() {
            Ok(g) => std::sync::Arc::clone(&g),
            Err(poisoned) => std::sync::Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Makes `registry` the active one.
    pub fn replace(&self, registry: Registry) {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *g = std::sync::Arc::new(registry);
    }
}
