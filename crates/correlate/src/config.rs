//! What case formation can be told: which entity kinds join, which addresses count as
//! internal, how wide the window is and when an entity is too common to join anything.
//!
//! [`CaseConfig`] is what the configuration file holds (every field has a default);
//! `Rules` is the checked form the engine runs on, so a bad range is refused once, at start,
//! with the range named, and never looked at again per alert.

use std::net::IpAddr;

use jiff::SignedDuration;
use riposte_domain::EntityKind;
use serde::Deserialize;
use thiserror::Error;

/// Case formation settings. Durations are written `"1h"`, `"24h"`, `"90m"` or ISO 8601.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaseConfig {
    /// Entity kinds through which an alert joins a case. Kinds not listed are still kept on
    /// the case (they are evidence) but never join two alerts.
    pub join_kinds: Vec<EntityKind>,
    /// When `ip` is a joining kind, only addresses inside `internal_ranges` join: an outside
    /// address (a CDN, a cloud provider, a scanner on the internet) says little about which of
    /// our machines or people two alerts are about.
    pub ip_internal_only: bool,
    /// CIDR ranges that count as internal (`10.0.0.0/8`, `fc00::/7`).
    pub internal_ranges: Vec<String>,
    /// An alert joins a case only if at most this long after the case's last alert.
    pub max_gap: SignedDuration,
    /// A case never covers more than this from its first to its last alert.
    pub max_span: SignedDuration,
    /// How late (behind the newest alert seen) an alert may arrive and still land where it
    /// would have landed in order. Later ones get a case of their own, with a note saying why.
    pub max_lateness: SignedDuration,
    /// How long alerts are held back, in time order, before they are placed. Sources that
    /// deliver slightly out of order (batching agents, several collectors) then cost nothing
    /// extra; an alert later than this but within `max_lateness` makes the engine re-form
    /// the window from a snapshot, which costs about as much as the open state. Zero (the
    /// default) places every alert as it comes, so `add` reports where that alert landed.
    pub reorder_delay: SignedDuration,
    /// An entity seen with more than this many distinct cases within `max_span` stops joining
    /// (a domain controller, a proxy, a scanner would otherwise glue unrelated cases).
    pub max_cases_per_entity: usize,
    /// An entity on more than this many alerts within `max_span` stops joining.
    pub max_alerts_per_entity: usize,
}

/// Private, shared, loopback and link-local space: RFC 1918, CGNAT (RFC 6598), loopback,
/// IPv4 link-local, IPv6 unique-local (`fc00::/7`), IPv6 link-local and loopback.
pub const DEFAULT_INTERNAL_RANGES: [&str; 9] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "fc00::/7",
    "fe80::/10",
    "::1/128",
];

impl Default for CaseConfig {
    fn default() -> Self {
        CaseConfig {
            join_kinds: vec![EntityKind::Host, EntityKind::User, EntityKind::Ip],
            ip_internal_only: true,
            internal_ranges: DEFAULT_INTERNAL_RANGES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            max_gap: SignedDuration::from_hours(1),
            max_span: SignedDuration::from_hours(24),
            max_lateness: SignedDuration::from_hours(1),
            reorder_delay: SignedDuration::ZERO,
            max_cases_per_entity: 25,
            max_alerts_per_entity: 500,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("correlate.internal_ranges: {0:?} is not a CIDR range like 10.0.0.0/8")]
    BadRange(String),
    #[error("correlate.{field}: must be positive, not {value}")]
    NotPositive { field: &'static str, value: String },
    #[error("correlate.max_gap ({gap}) is longer than correlate.max_span ({span})")]
    GapOverSpan { gap: String, span: String },
    #[error("correlate.max_lateness: must not be negative, not {0}")]
    NegativeLateness(String),
    #[error(
        "correlate.reorder_delay ({delay}) must be between zero and correlate.max_lateness ({lateness})"
    )]
    BadReorderDelay { delay: String, lateness: String },
}

/// An address range, `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    net: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Reads `10.0.0.0/8` or `fc00::/7`; a bare address is a range of one.
    pub fn parse(s: &str) -> Option<IpRange> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(IpRange { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The checked configuration the engine runs on.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// Indexed by [`kind_index`].
    pub join: [bool; EntityKind::ALL.len()],
    pub ip_internal_only: bool,
    pub internal: Vec<IpRange>,
    pub max_gap: SignedDuration,
    pub max_span: SignedDuration,
    pub max_lateness: SignedDuration,
    pub reorder_delay: SignedDuration,
    pub max_cases: usize,
    pub max_alerts: usize,
}

impl Rules {
    pub fn new(c: &CaseConfig) -> Result<Rules, ConfigError> {
        let mut join = [false; EntityKind::ALL.len()];
        for k in &c.join_kinds {
            join[kind_index(*k)] = true;
        }
        let internal = c
            .internal_ranges
            .iter()
            .map(|s| IpRange::parse(s).ok_or_else(|| ConfigError::BadRange(s.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        for (field, d) in [("max_gap", c.max_gap), ("max_span", c.max_span)] {
            if !d.is_positive() {
                return Err(ConfigError::NotPositive {
                    field,
                    value: format!("{d:#}"),
                });
            }
        }
        if c.max_gap > c.max_span {
            return Err(ConfigError::GapOverSpan {
                gap: format!("{:#}", c.max_gap),
                span: format!("{:#}", c.max_span),
            });
        }
        if c.max_lateness.is_negative() {
            return Err(ConfigError::NegativeLateness(format!(
                "{:#}",
                c.max_lateness
            )));
        }
        if c.reorder_delay.is_negative() || c.reorder_delay > c.max_lateness {
            return Err(ConfigError::BadReorderDelay {
                delay: format!("{:#}", c.reorder_delay),
                lateness: format!("{:#}", c.max_lateness),
            });
        }
        for (field, n) in [
            ("max_cases_per_entity", c.max_cases_per_entity),
            ("max_alerts_per_entity", c.max_alerts_per_entity),
        ] {
            if n == 0 {
                return Err(ConfigError::NotPositive {
                    field,
                    value: "0".into(),
                });
            }
        }
        Ok(Rules {
            join,
            ip_internal_only: c.ip_internal_only,
            internal,
            max_gap: c.max_gap,
            max_span: c.max_span,
            max_lateness: c.max_lateness,
            reorder_delay: c.reorder_delay,
            max_cases: c.max_cases_per_entity,
            max_alerts: c.max_alerts_per_entity,
        })
    }

    /// Whether an entity of this kind and canonical value may join alerts at all.
    pub fn joins(&self, kind: EntityKind, value: &str) -> bool {
        if !self.join[kind_index(kind)] {
            return false;
        }
        if kind != EntityKind::Ip || !self.ip_internal_only {
            return true;
        }
        // Values are canonical already; one that is not an address is not internal.
        value
            .parse::<IpAddr>()
            .is_ok_and(|ip| self.internal.iter().any(|r| r.contains(ip)))
    }
}

pub(crate) fn kind_index(k: EntityKind) -> usize {
    match k {
        EntityKind::Host => 0,
        EntityKind::User => 1,
        EntityKind::Ip => 2,
        EntityKind::Domain => 3,
        EntityKind::Url => 4,
        EntityKind::FileHash => 5,
        EntityKind::Process => 6,
        EntityKind::Email => 7,
        EntityKind::CloudResource => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_internal_ranges() {
        let r = Rules::new(&CaseConfig::default()).expect("defaults are valid");
        for ip in [
            "10.1.2.3",
            "172.31.255.255",
            "192.168.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "169.254.1.1",
            "fd12::1",
            "fe80::1",
            "::1",
        ] {
            assert!(r.joins(EntityKind::Ip, ip), "{ip} should be internal");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.2.7",
            "2001:db8::1",
            "not-an-ip",
        ] {
            assert!(!r.joins(EntityKind::Ip, ip), "{ip} should be external");
        }
        assert!(r.joins(EntityKind::Host, "ws-042"));
        assert!(r.joins(EntityKind::User, "alice"));
        assert!(!r.joins(EntityKind::Domain, "example.com"));
    }

    #[test]
    fn config_reads_with_defaults_and_refuses_bad_values() {
        let c: CaseConfig =
            serde_json::from_str(r#"{"max_gap": "30m", "join_kinds": ["host", "ip"]}"#)
                .expect("valid config");
        assert_eq!(c.max_gap, SignedDuration::from_mins(30));
        assert_eq!(c.max_span, SignedDuration::from_hours(24));
        let r = Rules::new(&c).expect("valid");
        assert!(!r.joins(EntityKind::User, "alice"));

        let bad = CaseConfig {
            internal_ranges: vec!["10.0.0.0/33".into()],
            ..CaseConfig::default()
        };
        assert_eq!(
            Rules::new(&bad).unwrap_err(),
            ConfigError::BadRange("10.0.0.0/33".into())
        );
        let bad = CaseConfig {
            max_gap: SignedDuration::from_hours(25),
            ..CaseConfig::default()
        };
        assert!(matches!(
            Rules::new(&bad),
            Err(ConfigError::GapOverSpan { .. })
        ));
        assert!(serde_json::from_str::<CaseConfig>(r#"{"max_gapp": "1h"}"#).is_err());
    }

    #[test]
    fn ranges() {
        let r = IpRange::parse("0.0.0.0/0").expect("valid");
        assert!(r.contains("1.2.3.4".parse().expect("ip")));
        assert!(!r.contains("::1".parse().expect("ip")));
        let one = IpRange::parse("192.0.2.7").expect("valid");
        assert!(one.contains("192.0.2.7".parse().expect("ip")));
        assert!(!one.contains("192.0.2.8".parse().expect("ip")));
        assert!(IpRange::parse("10.0.0.0/x").is_none());
    }
}
