//! Entities (the observables that tie alerts together) and the one place that decides when two
//! spellings are the same entity.
//!
//! Decoders report what the product wrote (`raw`); [`Canonicaliser::apply`] turns it into the
//! canonical `value` every later stage compares. Nothing else in riposte normalises entities.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What kind of thing an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Host,
    User,
    Ip,
    Domain,
    Url,
    FileHash,
    Process,
    Email,
    CloudResource,
}

impl EntityKind {
    pub const ALL: [EntityKind; 9] = [
        EntityKind::Host,
        EntityKind::User,
        EntityKind::Ip,
        EntityKind::Domain,
        EntityKind::Url,
        EntityKind::FileHash,
        EntityKind::Process,
        EntityKind::Email,
        EntityKind::CloudResource,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Host => "host",
            EntityKind::User => "user",
            EntityKind::Ip => "ip",
            EntityKind::Domain => "domain",
            EntityKind::Url => "url",
            EntityKind::FileHash => "file_hash",
            EntityKind::Process => "process",
            EntityKind::Email => "email",
            EntityKind::CloudResource => "cloud_resource",
        }
    }

    pub fn parse(s: &str) -> Option<EntityKind> {
        EntityKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The part an entity plays in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Where the activity came from (source address, attacking host).
    Source,
    /// What the activity was aimed at (destination address, targeted account).
    Target,
    /// Who or what performed it (the logged-on user, the process).
    Actor,
    /// Mentioned without a clear direction (the device that reported, an indicator).
    Related,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Target => "target",
            Role::Actor => "actor",
            Role::Related => "related",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Source, Role::Target, Role::Actor, Role::Related]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A typed observable with its role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entity {
    #[serde(rename = "type")]
    pub kind: EntityKind,
    pub role: Role,
    /// The canonical form, the one stages compare.
    pub value: String,
    /// What the product wrote, when it differs from `value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

impl Entity {
    /// An entity as the product wrote it; [`Canonicaliser::apply`] fills in the canonical value.
    pub fn new(kind: EntityKind, role: Role, raw: impl Into<String>) -> Entity {
        Entity {
            kind,
            role,
            value: raw.into(),
            raw: None,
        }
    }
}

/// How users and hosts are folded together. Loaded from config; the default folds nothing that
/// is not certainly the same (case, trailing dots, IPv4-mapped IPv6) plus host DNS suffixes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanonicaliserConfig {
    /// Windows domains (NetBIOS names such as `CORP`) and UPN suffixes (`corp.example`) whose
    /// users are the same people: `CORP\alice`, `alice@corp.example` and `alice` become `alice`.
    #[serde(default)]
    pub user_domains: Vec<String>,
    /// DNS suffixes stripped from host names. Empty means: any suffix, so `ws-042.corp.example`
    /// is the host `ws-042`.
    #[serde(default)]
    pub host_domains: Vec<String>,
}

/// The one entity canonicaliser.
#[derive(Debug, Clone, Default)]
pub struct Canonicaliser {
    user_domains: Vec<String>,
    host_domains: Vec<String>,
}

impl Canonicaliser {
    pub fn new(config: &CanonicaliserConfig) -> Canonicaliser {
        let norm = |v: &Vec<String>| {
            v.iter()
                .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect()
        };
        Canonicaliser {
            user_domains: norm(&config.user_domains),
            host_domains: norm(&config.host_domains),
        }
    }

    /// Canonicalises one entity in place: sets `value` and keeps the product's spelling in
    /// `raw` when it differs. Returns `false` when the value is not a valid entity of its kind
    /// (an "ip" that is not an address, an empty user); callers drop such entities.
    pub fn apply(&self, entity: &mut Entity) -> bool {
        let raw = entity.raw.take().unwrap_or_else(|| entity.value.clone());
        match self.canonical(entity.kind, &raw) {
            Some(value) => {
                if value != raw {
                    entity.raw = Some(raw);
                }
                entity.value = value;
                true
            }
            None => {
                entity.value = raw;
                false
            }
        }
    }

    /// Canonicalises every entity of a list, drops invalid ones and duplicates (same kind,
    /// role and canonical value), keeping first-seen order.
    pub fn apply_all(&self, entities: &mut Vec<Entity>) {
        let mut kept: Vec<Entity> = Vec::with_capacity(entities.len());
        for mut e in entities.drain(..) {
            if self.apply(&mut e)
                && !kept
                    .iter()
                    .any(|k| k.kind == e.kind && k.role == e.role && k.value == e.value)
            {
                kept.push(e);
            }
        }
        *entities = kept;
    }

    /// The canonical form of `raw` as an entity of `kind`, or `None` when it is not one.
    pub fn canonical(&self, kind: EntityKind, raw: &str) -> Option<String> {
        let s = raw.trim();
        if s.is_empty() || s == "-" {
            return None;
        }
        match kind {
            EntityKind::Ip => canonical_ip(s),
            EntityKind::User => self.canonical_user(s),
            EntityKind::Host => self.canonical_host(s),
            EntityKind::Domain => {
                let d = s.trim_end_matches('.').to_ascii_lowercase();
                (!d.is_empty() && !d.contains(char::is_whitespace)).then_some(d)
            }
            EntityKind::Email => {
                let e = s.to_lowercase();
                (e.contains('@') && !e.starts_with('@') && !e.ends_with('@')).then_some(e)
            }
            EntityKind::FileHash => {
                let h = s.to_ascii_lowercase();
                (matches!(h.len(), 32 | 40 | 64 | 128) && h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then_some(h)
            }
            EntityKind::Url => Some(canonical_url(s)),
            // Windows paths are case-insensitive; a process is compared by its lower-cased path.
            EntityKind::Process => Some(s.to_lowercase()),
            EntityKind::CloudResource => Some(s.to_string()),
        }
    }

    fn canonical_user(&self, s: &str) -> Option<String> {
        let lower = s.to_lowercase();
        // `DOMAIN\user`
        if let Some((domain, user)) = lower.split_once('\\') {
            if user.is_empty() {
                return None;
            }
            return Some(if self.is_user_domain(domain) {
                user.to_string()
            } else {
                lower.clone()
            });
        }
        // `user@domain`
        if let Some((user, domain)) = lower.rsplit_once('@') {
            if user.is_empty() {
                return None;
            }
            return Some(if self.is_user_domain(domain) {
                user.to_string()
            } else {
                lower.clone()
            });
        }
        Some(lower)
    }

    fn is_user_domain(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.');
        self.user_domains.iter().any(|d| d == domain)
    }

    fn canonical_host(&self, s: &str) -> Option<String> {
        if let Some(ip) = canonical_ip(s) {
            return Some(ip);
        }
        let lower = s.trim_end_matches('.').to_lowercase();
        if lower.is_empty() {
            return None;
        }
        // A display name ("John's MacBook Pro") is a host, but not a DNS name to shorten.
        if lower.contains(char::is_whitespace) {
            return Some(lower);
        }
        if self.host_domains.is_empty() {
            return Some(match lower.split_once('.') {
                Some((short, _)) if !short.is_empty() => short.to_string(),
                _ => lower,
            });
        }
        for suffix in &self.host_domains {
            if let Some(short) = lower.strip_suffix(suffix.as_str())
                && let Some(short) = short.strip_suffix('.')
                && !short.is_empty()
            {
                return Some(short.to_string());
            }
        }
        Some(lower)
    }
}

/// Parses an address as products write it (`::ffff:10.0.0.1`, `[2001:db8::1]`, with a zone
/// suffix) and prints it in one form; IPv4-mapped IPv6 becomes plain IPv4.
pub fn canonical_ip(s: &str) -> Option<String> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    let s = s.split_once('%').map_or(s, |(a, _)| a);
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    })
}

fn canonical_url(s: &str) -> String {
    // Scheme and host are case-insensitive; path and query are not.
    match s.split_once("://") {
        Some((scheme, rest)) => {
            let (host, tail) = match rest.find(['/', '?', '#']) {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            format!(
                "{}://{}{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase(),
                tail
            )
        }
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corp() -> Canonicaliser {
        Canonicaliser::new(&CanonicaliserConfig {
            user_domains: vec!["CORP".into(), "corp.example".into()],
            host_domains: vec!["corp.example".into()],
        })
    }

    #[test]
    fn users_fold_when_their_domain_is_configured() {
        let c = corp();
        for raw in [
            "CORP\\alice",
            "alice@corp.example",
            "ALICE",
            "Alice@CORP.EXAMPLE",
        ] {
            assert_eq!(
                c.canonical(EntityKind::User, raw).as_deref(),
                Some("alice"),
                "{raw}"
            );
        }
        assert_eq!(
            c.canonical(EntityKind::User, "OTHER\\alice").as_deref(),
            Some("other\\alice")
        );
        assert_eq!(
            c.canonical(EntityKind::User, "alice@evil.example")
                .as_deref(),
            Some("alice@evil.example")
        );
    }

    #[test]
    fn users_do_not_fold_by_default() {
        let c = Canonicaliser::default();
        assert_eq!(
            c.canonical(EntityKind::User, "CORP\\Alice").as_deref(),
            Some("corp\\alice")
        );
        assert_eq!(c.canonical(EntityKind::User, "").as_deref(), None);
        assert_eq!(c.canonical(EntityKind::User, "-").as_deref(), None);
    }

    #[test]
    fn hosts_fold_short_and_fqdn() {
        let c = corp();
        assert_eq!(
            c.canonical(EntityKind::Host, "WS-042").as_deref(),
            Some("ws-042")
        );
        assert_eq!(
            c.canonical(EntityKind::Host, "ws-042.corp.example.")
                .as_deref(),
            Some("ws-042")
        );
        assert_eq!(
            c.canonical(EntityKind::Host, "ws-042.other.example")
                .as_deref(),
            Some("ws-042.other.example")
        );
        let any = Canonicaliser::default();
        assert_eq!(
            any.canonical(EntityKind::Host, "WS-042.corp.example")
                .as_deref(),
            Some("ws-042")
        );
        assert_eq!(
            any.canonical(EntityKind::Host, "John's MacBook Pro.")
                .as_deref(),
            Some("john's macbook pro")
        );
        // An address given as a host name is not cut at its dots.
        assert_eq!(
            any.canonical(EntityKind::Host, "10.1.2.3").as_deref(),
            Some("10.1.2.3")
        );
    }

    #[test]
    fn ipv4_mapped_ipv6_is_ipv4() {
        let c = Canonicaliser::default();
        assert_eq!(
            c.canonical(EntityKind::Ip, "::ffff:192.0.2.7").as_deref(),
            Some("192.0.2.7")
        );
        assert_eq!(
            c.canonical(EntityKind::Ip, "192.0.2.7").as_deref(),
            Some("192.0.2.7")
        );
        assert_eq!(
            c.canonical(EntityKind::Ip, "2001:DB8:0::1").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(c.canonical(EntityKind::Ip, "not-an-ip"), None);
    }

    #[test]
    fn apply_keeps_raw_and_drops_invalid_and_duplicates() {
        let c = corp();
        let mut list = vec![
            Entity::new(EntityKind::User, Role::Actor, "CORP\\alice"),
            Entity::new(EntityKind::User, Role::Actor, "alice@corp.example"),
            Entity::new(EntityKind::Ip, Role::Source, "garbage"),
            Entity::new(EntityKind::Ip, Role::Source, "::ffff:10.0.0.1"),
        ];
        c.apply_all(&mut list);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].value, "alice");
        assert_eq!(list[0].raw.as_deref(), Some("CORP\\alice"));
        assert_eq!(list[1].value, "10.0.0.1");
    }

    #[test]
    fn hashes_and_urls() {
        let c = Canonicaliser::default();
        assert_eq!(
            c.canonical(EntityKind::FileHash, "BC8BBE52F041FD17318F08A0F73762CE")
                .as_deref(),
            Some("bc8bbe52f041fd17318f08a0f73762ce")
        );
        assert_eq!(c.canonical(EntityKind::FileHash, "xyz"), None);
        assert_eq!(
            c.canonical(EntityKind::Url, "HTTPS://WWW.Example.com/Cart?A=1")
                .as_deref(),
            Some("https://www.example.com/Cart?A=1")
        );
    }
}
