//! Threat intel: indicators from STIX 2.1 bundles ([`stix`]), MISP feeds ([`misp`]) and CSV or
//! plain lists ([`list`]), indexed for allocation-free look-up.
//!
//! Index layout, chosen for the hot path (every entity of every alert):
//! - exact addresses in a hash map keyed by [`IpAddr`] (IPv4-mapped IPv6 folded to IPv4, as the
//!   canonicaliser does); CIDRs in a binary prefix trie per family (the `trie` module), every containing
//!   prefix reported, most specific first;
//! - domains in a hash map keyed by the canonical name; a look-up walks the entity's labels
//!   (`a.b.evil.example` → `b.evil.example` → `evil.example` → `example`), so an indicator
//!   matches its subdomains. URL and e-mail entities are matched by their host / domain too;
//! - URLs by their canonical form (scheme and host lower-cased);
//! - hashes in one map per type (MD5, SHA-1, SHA-256, SHA-512), chosen by length.
//!
//! Several feeds may list the same value: each key holds the head of a linked list threaded
//! through [`Indicator`]s (`next`), so a key costs one `u32`, not a `Vec`.
//!
//! An indicator hits only inside its validity period (`valid_from` ≤ record time <
//! `valid_until`, STIX's semantics); expired ones stay loaded but silent.

pub mod list;
pub mod misp;
pub mod stix;
mod trie;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use foldhash::fast::RandomState;
use riposte_domain::{Canonicaliser, Entity, EntityKind, Timestamp, entity::canonical_ip};
use serde::{Deserialize, Serialize};

use crate::{Context, Source};
use trie::{NONE, Trie};

/// What an indicator's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKind {
    Ip,
    Cidr,
    Domain,
    Url,
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl IndicatorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorKind::Ip => "ip",
            IndicatorKind::Cidr => "cidr",
            IndicatorKind::Domain => "domain",
            IndicatorKind::Url => "url",
            IndicatorKind::Md5 => "md5",
            IndicatorKind::Sha1 => "sha1",
            IndicatorKind::Sha256 => "sha256",
            IndicatorKind::Sha512 => "sha512",
        }
    }

    fn hash_len(self) -> Option<usize> {
        match self {
            IndicatorKind::Md5 => Some(32),
            IndicatorKind::Sha1 => Some(40),
            IndicatorKind::Sha256 => Some(64),
            IndicatorKind::Sha512 => Some(128),
            _ => None,
        }
    }

    fn hash_slot(self) -> Option<usize> {
        match self {
            IndicatorKind::Md5 => Some(0),
            IndicatorKind::Sha1 => Some(1),
            IndicatorKind::Sha256 => Some(2),
            IndicatorKind::Sha512 => Some(3),
            _ => None,
        }
    }
}

/// The type a CSV column or plain list declares. `ip` accepts addresses and CIDRs; `hash`
/// takes the hash type from the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclaredType {
    Ip,
    Cidr,
    Domain,
    Url,
    Md5,
    Sha1,
    Sha256,
    Sha512,
    Hash,
}

/// One loaded indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indicator {
    pub kind: IndicatorKind,
    /// The canonical value as indexed (`10.0.0.0/8`, `evil.example`, lower-case hex).
    pub value: Box<str>,
    /// The source's id for it (STIX indicator id, MISP attribute uuid), when it has one.
    pub id: Option<Box<str>>,
    /// 0–100.
    pub confidence: u8,
    pub valid_from: Option<Timestamp>,
    /// Exclusive.
    pub valid_until: Option<Timestamp>,
    feed: u16,
    next: u32,
}

impl Indicator {
    /// Whether the indicator applies to a record of time `at`.
    pub fn is_valid_at(&self, at: Timestamp) -> bool {
        self.valid_from.is_none_or(|f| f <= at) && self.valid_until.is_none_or(|u| at < u)
    }
}

/// One indicator that matched an entity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntelHit<'s> {
    /// The feed's configured name.
    pub feed: &'s str,
    pub indicator: &'s Indicator,
}

/// A loaded feed, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    pub name: String,
    pub path: PathBuf,
    pub indicators: usize,
    /// Well-formed entries riposte cannot index (a STIX pattern with AND, a MISP attribute of
    /// another type), with the line and reason, so an operator can see what was left out.
    pub skipped: Vec<(Option<u64>, String)>,
}

/// What a loader hands the builder for one indicator.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meta {
    pub id: Option<String>,
    pub confidence: u8,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
}

/// All loaded indicators and their indexes.
#[derive(Debug, Clone, Default)]
pub struct ThreatIntel {
    feeds: Vec<Feed>,
    indicators: Vec<Indicator>,
    ips: HashMap<IpAddr, u32, RandomState>,
    v4: Trie,
    v6: Trie,
    domains: HashMap<Box<str>, u32, RandomState>,
    urls: HashMap<Box<str>, u32, RandomState>,
    hashes: [HashMap<Box<str>, u32, RandomState>; 4],
}

/// Memory the index uses, for the benchmark's "memory per indicator".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntelFootprint {
    pub indicators: usize,
    pub trie_nodes: usize,
    /// Approximate heap bytes: indicator records, their strings, map slots and trie nodes.
    pub bytes: usize,
}

impl ThreatIntel {
    pub fn feeds(&self) -> &[Feed] {
        &self.feeds
    }

    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    pub fn indicators(&self) -> &[Indicator] {
        &self.indicators
    }

    /// Approximate memory, counted from capacities (no allocator hooks needed).
    pub fn footprint(&self) -> IntelFootprint {
        fn map_bytes<K>(m: &HashMap<K, u32, RandomState>) -> usize {
            // hashbrown: one control byte plus the (key, value) slot per bucket.
            m.capacity() * (std::mem::size_of::<(K, u32)>() + 1)
        }
        let strings: usize = self
            .indicators
            .iter()
            .map(|i| i.value.len() + i.id.as_ref().map_or(0, |s| s.len()))
            .sum();
        // Map keys are copies of the indicator values.
        let keys: usize = self.domains.keys().map(|k| k.len()).sum::<usize>()
            + self.urls.keys().map(|k| k.len()).sum::<usize>()
            + self
                .hashes
                .iter()
                .map(|m| m.keys().map(|k| k.len()).sum::<usize>())
                .sum::<usize>();
        let bytes = self.indicators.capacity() * std::mem::size_of::<Indicator>()
            + strings
            + keys
            + map_bytes(&self.ips)
            + map_bytes(&self.domains)
            + map_bytes(&self.urls)
            + self.hashes.iter().map(map_bytes).sum::<usize>()
            + self.v4.bytes()
            + self.v6.bytes();
        IntelFootprint {
            indicators: self.indicators.len(),
            trie_nodes: self.v4.node_count() + self.v6.node_count(),
            bytes,
        }
    }

    fn push_chain<'s>(&'s self, mut head: u32, at: Timestamp, out: &mut Vec<Context<'s>>) {
        while let Some(ind) = self.indicators.get(head as usize) {
            if ind.is_valid_at(at) {
                let feed = self
                    .feeds
                    .get(usize::from(ind.feed))
                    .map_or("", |f| &f.name);
                out.push(Context::Intel(IntelHit {
                    feed,
                    indicator: ind,
                }));
            }
            head = ind.next;
        }
    }

    pub(crate) fn match_ip<'s>(&'s self, ip: IpAddr, at: Timestamp, out: &mut Vec<Context<'s>>) {
        let ip = fold_mapped(ip);
        if let Some(&h) = self.ips.get(&ip) {
            self.push_chain(h, at, out);
        }
        let (trie, key, width) = match ip {
            IpAddr::V4(v4) => (&self.v4, u128::from(u32::from(v4)) << 96, 32),
            IpAddr::V6(v6) => (&self.v6, u128::from(v6), 128),
        };
        trie.matches(key, width, |h| self.push_chain(h, at, out));
    }

    fn match_domain<'s>(&'s self, domain: &str, at: Timestamp, out: &mut Vec<Context<'s>>) {
        if self.domains.is_empty() {
            return;
        }
        let mut d = domain.trim_end_matches('.');
        loop {
            if let Some(&h) = self.domains.get(d) {
                self.push_chain(h, at, out);
            }
            match d.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => d = parent,
                _ => break,
            }
        }
    }

    fn match_host<'s>(&'s self, host: &str, at: Timestamp, out: &mut Vec<Context<'s>>) {
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            self.match_ip(ip, at, out);
        } else {
            self.match_domain(host, at, out);
        }
    }
}

impl Source for ThreatIntel {
    fn name(&self) -> &str {
        "intel"
    }

    fn enrich<'s>(&'s self, entity: &Entity, at: Timestamp, out: &mut Vec<Context<'s>>) {
        let v = entity.value.as_str();
        match entity.kind {
            EntityKind::Ip => {
                if let Ok(ip) = v.parse::<IpAddr>() {
                    self.match_ip(ip, at, out);
                }
            }
            // Host entities are short names; only an address given as a host is looked up.
            EntityKind::Host => {
                if let Ok(ip) = v.parse::<IpAddr>() {
                    self.match_ip(ip, at, out);
                }
            }
            EntityKind::Domain => self.match_domain(v, at, out),
            EntityKind::Url => {
                if let Some(&h) = self.urls.get(v) {
                    self.push_chain(h, at, out);
                }
                if let Some(host) = url_host(v) {
                    self.match_host(host, at, out);
                }
            }
            EntityKind::Email => {
                if let Some((_, domain)) = v.rsplit_once('@') {
                    self.match_domain(domain, at, out);
                }
            }
            EntityKind::FileHash => {
                let slot = match v.len() {
                    32 => 0,
                    40 => 1,
                    64 => 2,
                    128 => 3,
                    _ => return,
                };
                if let Some(&h) = self.hashes[slot].get(v) {
                    self.push_chain(h, at, out);
                }
            }
            EntityKind::User | EntityKind::Process | EntityKind::CloudResource => {}
        }
    }
}

fn fold_mapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The host part of a URL: after `scheme://` and any `user@`, before the port, path, query or
/// fragment. `[v6]` keeps its brackets off.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split_once(']').map_or(v6, |(h, _)| h)
    } else {
        hostport.split_once(':').map_or(hostport, |(h, _)| h)
    };
    (!host.is_empty()).then_some(host)
}

/// Builds a [`ThreatIntel`], canonicalising every value exactly as the pipeline canonicalises
/// entities, so both sides of a look-up agree.
pub(crate) struct IntelBuilder<'c> {
    canon: &'c Canonicaliser,
    intel: ThreatIntel,
}

impl<'c> IntelBuilder<'c> {
    pub(crate) fn new(canon: &'c Canonicaliser) -> IntelBuilder<'c> {
        IntelBuilder {
            canon,
            intel: ThreatIntel::default(),
        }
    }

    /// Starts a feed; indicators added next belong to it. Returns its index.
    pub(crate) fn begin_feed(&mut self, name: &str, path: PathBuf) -> Result<u16, String> {
        let idx = u16::try_from(self.intel.feeds.len()).map_err(|_| "too many feeds")?;
        self.intel.feeds.push(Feed {
            name: name.to_string(),
            path,
            indicators: 0,
            skipped: Vec::new(),
        });
        Ok(idx)
    }

    pub(crate) fn skip(&mut self, feed: u16, line: Option<u64>, reason: String) {
        if let Some(f) = self.intel.feeds.get_mut(usize::from(feed)) {
            f.skipped.push((line, reason));
        }
    }

    /// Adds one indicator of a declared type. The error is the reason the value is refused.
    pub(crate) fn add(
        &mut self,
        feed: u16,
        ty: DeclaredType,
        raw: &str,
        meta: &Meta,
    ) -> Result<(), String> {
        let raw = raw.trim();
        let intel = &mut self.intel;
        match ty {
            DeclaredType::Ip | DeclaredType::Cidr => {
                if let Some((addr, len)) = raw.split_once('/') {
                    let (ip, len) = parse_cidr(addr, len)
                        .ok_or_else(|| format!("`{raw}` is not an address or CIDR"))?;
                    let full = if ip.is_ipv4() { 32 } else { 128 };
                    if len < full {
                        let (trie, key) = match ip {
                            IpAddr::V4(v4) => (&mut intel.v4, u128::from(u32::from(v4)) << 96),
                            IpAddr::V6(v6) => (&mut intel.v6, u128::from(v6)),
                        };
                        let n = new_indicator(
                            &mut intel.indicators,
                            &mut intel.feeds,
                            feed,
                            IndicatorKind::Cidr,
                            format!("{ip}/{len}"),
                            meta,
                        )?;
                        link(&mut intel.indicators, trie.head_mut(key, len), n);
                        return Ok(());
                    }
                    // A /32 or /128 is one address.
                    return add_ip(intel, feed, ip, meta);
                }
                if ty == DeclaredType::Cidr {
                    return Err(format!("`{raw}` is not a CIDR (no /length)"));
                }
                let ip = canonical_ip(raw)
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    .ok_or_else(|| format!("`{raw}` is not an IP address"))?;
                add_ip(intel, feed, ip, meta)
            }
            DeclaredType::Domain => {
                // Lists often write `*.evil.example`; a domain matches its subdomains anyway.
                let raw = raw.strip_prefix("*.").unwrap_or(raw);
                let d = self
                    .canon
                    .canonical(EntityKind::Domain, raw)
                    .filter(|d| !d.contains(['/', ':', '@']) && !d.starts_with('.'))
                    .ok_or_else(|| format!("`{raw}` is not a domain name"))?;
                let n = new_indicator(
                    &mut intel.indicators,
                    &mut intel.feeds,
                    feed,
                    IndicatorKind::Domain,
                    d.clone(),
                    meta,
                )?;
                let head = intel.domains.entry(d.into()).or_insert(NONE);
                link(&mut intel.indicators, head, n);
                Ok(())
            }
            DeclaredType::Url => {
                if !raw.contains("://") {
                    return Err(format!("`{raw}` is not a URL (no scheme)"));
                }
                let u = self
                    .canon
                    .canonical(EntityKind::Url, raw)
                    .ok_or_else(|| format!("`{raw}` is not a URL"))?;
                let n = new_indicator(
                    &mut intel.indicators,
                    &mut intel.feeds,
                    feed,
                    IndicatorKind::Url,
                    u.clone(),
                    meta,
                )?;
                let head = intel.urls.entry(u.into()).or_insert(NONE);
                link(&mut intel.indicators, head, n);
                Ok(())
            }
            DeclaredType::Md5
            | DeclaredType::Sha1
            | DeclaredType::Sha256
            | DeclaredType::Sha512
            | DeclaredType::Hash => {
                let h = self
                    .canon
                    .canonical(EntityKind::FileHash, raw)
                    .ok_or_else(|| format!("`{raw}` is not a hex hash"))?;
                let by_len = match h.len() {
                    32 => IndicatorKind::Md5,
                    40 => IndicatorKind::Sha1,
                    64 => IndicatorKind::Sha256,
                    _ => IndicatorKind::Sha512,
                };
                let kind = match ty {
                    DeclaredType::Md5 => IndicatorKind::Md5,
                    DeclaredType::Sha1 => IndicatorKind::Sha1,
                    DeclaredType::Sha256 => IndicatorKind::Sha256,
                    DeclaredType::Sha512 => IndicatorKind::Sha512,
                    _ => by_len,
                };
                if kind.hash_len() != Some(h.len()) {
                    return Err(format!(
                        "`{raw}` has {} hex digits, not a {} hash",
                        h.len(),
                        kind.as_str()
                    ));
                }
                let slot = kind.hash_slot().unwrap_or(0);
                let n = new_indicator(
                    &mut intel.indicators,
                    &mut intel.feeds,
                    feed,
                    kind,
                    h.clone(),
                    meta,
                )?;
                let head = intel.hashes[slot].entry(h.into()).or_insert(NONE);
                link(&mut intel.indicators, head, n);
                Ok(())
            }
        }
    }

    pub(crate) fn finish(mut self) -> ThreatIntel {
        self.intel.indicators.shrink_to_fit();
        self.intel.ips.shrink_to_fit();
        self.intel.domains.shrink_to_fit();
        self.intel.urls.shrink_to_fit();
        for m in &mut self.intel.hashes {
            m.shrink_to_fit();
        }
        self.intel
    }
}

fn add_ip(intel: &mut ThreatIntel, feed: u16, ip: IpAddr, meta: &Meta) -> Result<(), String> {
    let ip = fold_mapped(ip);
    let n = new_indicator(
        &mut intel.indicators,
        &mut intel.feeds,
        feed,
        IndicatorKind::Ip,
        ip.to_string(),
        meta,
    )?;
    let head = intel.ips.entry(ip).or_insert(NONE);
    link(&mut intel.indicators, head, n);
    Ok(())
}

/// `addr/len` with host bits cleared; IPv4-mapped IPv6 prefixes become IPv4 prefixes.
fn parse_cidr(addr: &str, len: &str) -> Option<(IpAddr, u8)> {
    let ip: IpAddr = addr.trim().parse().ok()?;
    let len: u8 = len.trim().parse().ok()?;
    match ip {
        IpAddr::V4(v4) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Some((IpAddr::V4((u32::from(v4) & mask).into()), len))
        }
        IpAddr::V6(v6) if len <= 128 => {
            if let Some(v4) = v6.to_ipv4_mapped()
                && len >= 96
            {
                return parse_cidr(&v4.to_string(), &(len - 96).to_string());
            }
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            Some((IpAddr::V6((u128::from(v6) & mask).into()), len))
        }
        _ => None,
    }
}

fn new_indicator(
    indicators: &mut Vec<Indicator>,
    feeds: &mut [Feed],
    feed: u16,
    kind: IndicatorKind,
    value: String,
    meta: &Meta,
) -> Result<u32, String> {
    let n = u32::try_from(indicators.len())
        .ok()
        .filter(|&n| n != NONE)
        .ok_or("too many indicators")?;
    indicators.push(Indicator {
        kind,
        value: value.into(),
        id: meta.id.as_deref().map(Into::into),
        confidence: meta.confidence.min(100),
        valid_from: meta.valid_from,
        valid_until: meta.valid_until,
        feed,
        next: NONE,
    });
    if let Some(f) = feeds.get_mut(usize::from(feed)) {
        f.indicators += 1;
    }
    Ok(n)
}

/// Pushes indicator `n` onto the list whose head is `head`.
fn link(indicators: &mut [Indicator], head: &mut u32, n: u32) {
    if let Some(ind) = indicators.get_mut(n as usize) {
        ind.next = *head;
        *head = n;
    }
}
