//! The asset inventory: which host or address is what, how much it matters, who owns it.
//!
//! Loaded from CSV (header row; columns `hostname` or `hostnames`, `ip` or `ips` — several
//! values separated by `;`, `|` or `,` inside a quoted cell — `criticality`, `confidentiality`,
//! `integrity`, `availability`, `owner`, `tags`) or YAML (a list of mappings with the same
//! keys, lists as YAML lists). `criticality` (1–5) is required: scoring depends on it and a
//! silent default would hide a typo. C/I/A ratings are `low`, `medium` (or `moderate`),
//! `high` (or 1–3), after FIPS 199.
//!
//! Host names are canonicalised by the pipeline's canonicaliser (so `DC01.corp.example` is
//! the host `dc01`), addresses by `canonical_ip`. A name or address listed for two assets is
//! refused: which one an alert is about would depend on file order.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::net::IpAddr;
use std::path::Path;

use riposte_domain::{
    Canonicaliser, Entity, EntityKind, ShortKey, Timestamp, entity::canonical_ip,
};
use serde::{Deserialize, Serialize};

use crate::error::read_text;
use crate::tabular::{self, split_list};
use crate::{Context, LoadError, Source};

/// A confidentiality, integrity or availability rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    Low,
    Medium,
    High,
}

impl Rating {
    pub fn parse(s: &str) -> Option<Rating> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" | "l" | "1" => Some(Rating::Low),
            "medium" | "moderate" | "m" | "2" => Some(Rating::Medium),
            "high" | "h" | "3" => Some(Rating::High),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Rating {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Rating;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("low, medium or high")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Rating, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Rating, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Rating, E> {
                Rating::parse(s)
                    .ok_or_else(|| E::custom(format!("rating `{s}` is not low, medium or high")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Criticality 1 (lab box) to 5 (crown jewels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Criticality(u8);

impl Criticality {
    pub fn new(n: u8) -> Option<Criticality> {
        (1..=5).contains(&n).then_some(Criticality(n))
    }
    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Criticality {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor rather than a detour through a JSON value: the YAML reader then reports
        // the error at the value's own line.
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Criticality;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a criticality from 1 to 5")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Criticality, E> {
                u8::try_from(n)
                    .ok()
                    .and_then(Criticality::new)
                    .ok_or_else(|| E::custom(format!("criticality {n} is not 1–5")))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Criticality, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom(format!("criticality {n} is not 1–5")))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Criticality, E> {
                s.trim()
                    .parse::<u64>()
                    .map_err(|_| E::custom(format!("criticality `{s}` is not 1–5")))
                    .and_then(|n| self.visit_u64(n))
            }
        }
        d.deserialize_any(V)
    }
}

/// One asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// Canonical host names.
    pub hostnames: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub criticality: Criticality,
    pub confidentiality: Option<Rating>,
    pub integrity: Option<Rating>,
    pub availability: Option<Rating>,
    pub owner: Option<String>,
    /// Lower-case, e.g. `domain-controller`, `internet-facing`.
    pub tags: Vec<String>,
}

impl Asset {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }
}

/// The YAML form of one asset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssetEntry {
    #[serde(default, alias = "hostname")]
    hostnames: OneOrMany,
    #[serde(default, alias = "ip")]
    ips: OneOrMany,
    criticality: Criticality,
    #[serde(default)]
    confidentiality: Option<Rating>,
    #[serde(default)]
    integrity: Option<Rating>,
    #[serde(default)]
    availability: Option<Rating>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    tags: OneOrMany,
}

/// A YAML value that may be one string or a list of them.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// All assets with their indexes.
#[derive(Debug, Clone, Default)]
pub struct AssetInventory {
    assets: Vec<Asset>,
    /// Short names held in the slot itself: the look-up compares without a pointer to chase.
    by_host: HashMap<ShortKey, u32, RandomState>,
    by_ip: HashMap<IpAddr, u32, RandomState>,
    /// Where each asset was defined, for duplicate errors.
    origin: Vec<String>,
}

impl AssetInventory {
    pub fn len(&self) -> usize {
        self.assets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }

    pub fn assets(&self) -> &[Asset] {
        &self.assets
    }

    /// The asset with this canonical host name or address.
    pub fn by_host(&self, canonical: &str) -> Option<&Asset> {
        if let Ok(ip) = canonical.parse::<IpAddr>() {
            return self.by_ip(ip);
        }
        self.by_name(canonical)
    }

    /// The asset with this canonical host name, not an address (the caller has tried that).
    pub(crate) fn by_name(&self, canonical: &str) -> Option<&Asset> {
        let &i = self.by_host.get(canonical.as_bytes())?;
        self.assets.get(i as usize)
    }

    pub fn by_ip(&self, ip: IpAddr) -> Option<&Asset> {
        let &i = self.by_ip.get(&ip)?;
        self.assets.get(i as usize)
    }

    /// Adds the assets of one CSV or YAML file (by extension: `.csv`, else YAML).
    pub(crate) fn load_file(
        &mut self,
        file: &Path,
        canon: &Canonicaliser,
    ) -> Result<(), LoadError> {
        let text = read_text(file)?;
        if is_csv(file) {
            self.load_csv(file, &text, canon)
        } else {
            self.load_yaml(file, &text, canon)
        }
    }

    fn load_yaml(
        &mut self,
        file: &Path,
        text: &str,
        canon: &Canonicaliser,
    ) -> Result<(), LoadError> {
        let entries: Vec<AssetEntry> = if text.trim().is_empty() {
            Vec::new()
        } else {
            yaml_serde::from_str(text).map_err(|e| LoadError::yaml(file, &e))?
        };
        for (i, e) in entries.into_iter().enumerate() {
            let hosts = e.hostnames.into_vec();
            let line = hosts.first().and_then(|h| crate::error::line_of(text, h));
            let place = format!("entry {}", i + 1);
            let ips = e.ips.into_vec();
            self.add(
                canon,
                &hosts,
                &ips,
                Asset {
                    hostnames: Vec::new(),
                    ips: Vec::new(),
                    criticality: e.criticality,
                    confidentiality: e.confidentiality,
                    integrity: e.integrity,
                    availability: e.availability,
                    owner: e.owner.filter(|o| !o.trim().is_empty()),
                    tags: e.tags.into_vec(),
                },
                place,
            )
            .map_err(|reason| LoadError {
                file: file.to_path_buf(),
                line,
                column: None,
                reason: format!("entry {}: {reason}", i + 1),
            })?;
        }
        Ok(())
    }

    fn load_csv(
        &mut self,
        file: &Path,
        text: &str,
        canon: &Canonicaliser,
    ) -> Result<(), LoadError> {
        tabular::for_each_row(file, text, &["criticality"], |line, row| {
            let hosts: Vec<String> = row
                .get("hostname")
                .or_else(|| row.get("hostnames"))
                .map(|c| split_list(c).map(str::to_string).collect())
                .unwrap_or_default();
            let ips: Vec<String> = row
                .get("ip")
                .or_else(|| row.get("ips"))
                .map(|c| split_list(c).map(str::to_string).collect())
                .unwrap_or_default();
            let crit = row.get("criticality").unwrap_or("");
            let criticality = crit
                .parse::<u8>()
                .ok()
                .and_then(Criticality::new)
                .ok_or_else(|| format!("column `criticality`: `{crit}` is not 1–5"))?;
            let rating = |col: &str| -> Result<Option<Rating>, String> {
                row.get(col)
                    .map(|v| {
                        Rating::parse(v).ok_or_else(|| {
                            format!("column `{col}`: `{v}` is not low, medium or high")
                        })
                    })
                    .transpose()
            };
            let asset = Asset {
                hostnames: Vec::new(),
                ips: Vec::new(),
                criticality,
                confidentiality: rating("confidentiality")?,
                integrity: rating("integrity")?,
                availability: rating("availability")?,
                owner: row.get("owner").map(str::to_string),
                tags: row
                    .get("tags")
                    .map(|c| split_list(c).map(str::to_string).collect())
                    .unwrap_or_default(),
            };
            self.add(canon, &hosts, &ips, asset, format!("line {line}"))
        })
    }

    fn add(
        &mut self,
        canon: &Canonicaliser,
        hosts: &[String],
        ips: &[String],
        mut asset: Asset,
        place: String,
    ) -> Result<(), String> {
        if hosts.is_empty() && ips.is_empty() {
            return Err("an asset needs a hostname or an ip".into());
        }
        let n = u32::try_from(self.assets.len()).map_err(|_| "too many assets")?;
        for h in hosts {
            // An address written as a host name is indexed as the address.
            if let Some(ip) = canonical_ip(h).and_then(|s| s.parse::<IpAddr>().ok()) {
                asset.ips.push(ip);
                continue;
            }
            let c = canon
                .canonical(EntityKind::Host, h)
                .ok_or_else(|| format!("`{h}` is not a host name"))?;
            if let Some(&other) = self.by_host.get(c.as_bytes())
                && other != n
            {
                return Err(format!(
                    "host `{c}` is already the asset of {}",
                    self.origin[other as usize]
                ));
            }
            self.by_host.insert(ShortKey::new(&c), n);
            if !asset.hostnames.contains(&c) {
                asset.hostnames.push(c);
            }
        }
        for raw in ips {
            let ip = canonical_ip(raw)
                .and_then(|s| s.parse::<IpAddr>().ok())
                .ok_or_else(|| format!("`{raw}` is not an IP address"))?;
            asset.ips.push(ip);
        }
        asset.ips.dedup();
        for &ip in &asset.ips {
            if let Some(&other) = self.by_ip.get(&ip)
                && other != n
            {
                return Err(format!(
                    "address {ip} is already the asset of {}",
                    self.origin[other as usize]
                ));
            }
            self.by_ip.insert(ip, n);
        }
        for t in &mut asset.tags {
            *t = t.trim().to_ascii_lowercase();
        }
        asset.tags.retain(|t| !t.is_empty());
        self.assets.push(asset);
        self.origin.push(place);
        Ok(())
    }
}

pub(crate) fn is_csv(file: &Path) -> bool {
    file.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

impl Source for AssetInventory {
    fn name(&self) -> &str {
        "assets"
    }

    fn enrich<'s>(&'s self, entity: &Entity, _at: Timestamp, out: &mut Vec<Context<'s>>) {
        let found = match entity.kind {
            EntityKind::Host => self.by_host(&entity.value),
            EntityKind::Ip => entity
                .value
                .parse::<IpAddr>()
                .ok()
                .and_then(|ip| self.by_ip(ip)),
            _ => None,
        };
        if let Some(a) = found {
            out.push(Context::Asset(a));
        }
    }
}
