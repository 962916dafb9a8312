//! The loaded enrichment sources as one immutable set, its configuration, and the reload
//! contract.
//!
//! A set is built whole, from files, by [`EnrichmentSet::load`]; it is never changed after.
//! Reloading means building a new set and swapping it in ([`SharedEnrichment::reload`]). If
//! any file is bad the load fails with a [`LoadError`] (file, line, reason) and the running set
//! stays active, untouched: a broken feed update must not blind enrichment.
//!
//! Configuration (YAML; relative paths are relative to the config file):
//!
//! ```yaml
//! intel:
//!   - name: partner-stix
//!     path: intel/partner.json
//!     format: stix            # stix | misp | csv | list
//!     confidence: 60          # default when the source gives none (default 50)
//!   - name: blocklist
//!     path: intel/bad-ips.csv
//!     format: csv
//!     column: ip              # csv: header of the column holding the values
//!     type: ip                # csv, list: ip | cidr | domain | url | md5 | sha1 | sha256 | sha512 | hash
//!     valid_until: 2027-01-01T00:00:00Z   # optional bounds for sources without their own
//! assets: [assets/inventory.csv]
//! identities: [identities/people.yaml]
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use riposte_domain::{Canonicaliser, Entity, EntityKind, TechniqueId, Timestamp};
use serde::Deserialize;

use crate::attack::{self, Technique};
use crate::error::read_text;
use crate::intel::{self, DeclaredType, IntelBuilder, Meta};
use crate::{AssetInventory, Context, IdentityDirectory, LoadError, Source, ThreatIntel};

/// The format of an intel feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedFormat {
    Stix,
    Misp,
    Csv,
    List,
}

/// One intel feed as configured. Checked when the configuration is read, so a `csv` without a
/// `column` is refused at its line in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawFeed")]
pub struct FeedConfig {
    pub name: String,
    pub path: PathBuf,
    pub format: FeedFormat,
    pub column: Option<String>,
    pub kind: Option<DeclaredType>,
    pub confidence: u8,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    name: String,
    path: PathBuf,
    format: FeedFormat,
    #[serde(default)]
    column: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<DeclaredType>,
    #[serde(default)]
    confidence: Option<u8>,
    #[serde(default)]
    valid_from: Option<Timestamp>,
    #[serde(default)]
    valid_until: Option<Timestamp>,
}

impl TryFrom<RawFeed> for FeedConfig {
    type Error = String;

    fn try_from(r: RawFeed) -> Result<FeedConfig, String> {
        let name = r.name.trim().to_string();
        if name.is_empty() {
            return Err("feed `name` is empty".into());
        }
        match r.format {
            FeedFormat::Csv if r.column.is_none() || r.kind.is_none() => {
                return Err(format!(
                    "feed `{name}`: a csv feed needs `column` and `type`"
                ));
            }
            FeedFormat::List if r.kind.is_none() => {
                return Err(format!("feed `{name}`: a list feed needs `type`"));
            }
            FeedFormat::List if r.column.is_some() => {
                return Err(format!("feed `{name}`: `column` is for csv feeds"));
            }
            FeedFormat::Stix | FeedFormat::Misp if r.column.is_some() || r.kind.is_some() => {
                return Err(format!(
                    "feed `{name}`: `column` and `type` are for csv and list feeds; \
                     stix and misp feeds say what each value is"
                ));
            }
            _ => {}
        }
        let confidence = r.confidence.unwrap_or(50);
        if confidence > 100 {
            return Err(format!(
                "feed `{name}`: confidence {confidence} is not 0–100"
            ));
        }
        Ok(FeedConfig {
            name,
            path: r.path,
            format: r.format,
            column: r.column,
            kind: r.kind,
            confidence,
            valid_from: r.valid_from,
            valid_until: r.valid_until,
        })
    }
}

/// What to load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichmentConfig {
    #[serde(default)]
    pub intel: Vec<FeedConfig>,
    #[serde(default)]
    pub assets: Vec<PathBuf>,
    #[serde(default)]
    pub identities: Vec<PathBuf>,
}

impl EnrichmentConfig {
    /// Parses a configuration; `file` is only used to name errors.
    pub fn from_yaml(file: &Path, text: &str) -> Result<EnrichmentConfig, LoadError> {
        if text.trim().is_empty() {
            return Ok(EnrichmentConfig::default());
        }
        let config: EnrichmentConfig =
            yaml_serde::from_str(text).map_err(|e| LoadError::yaml(file, &e))?;
        let mut names: Vec<&str> = config.intel.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(LoadError {
                line: crate::error::line_of(text, &format!("name: {}", w[0])),
                ..LoadError::new(file, format!("feed name `{}` is used twice", w[0]))
            });
        }
        Ok(config)
    }
}

/// Every loaded source. Immutable; share it behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct EnrichmentSet {
    intel: ThreatIntel,
    assets: AssetInventory,
    identities: IdentityDirectory,
}

impl EnrichmentSet {
    /// A set that knows nothing (before the first successful load).
    pub fn empty() -> EnrichmentSet {
        EnrichmentSet::default()
    }

    /// Reads the configuration file and loads everything it names.
    pub fn load_file(config: &Path, canon: &Canonicaliser) -> Result<EnrichmentSet, LoadError> {
        let text = read_text(config)?;
        let cfg = EnrichmentConfig::from_yaml(config, &text)?;
        let base = config.parent().unwrap_or(Path::new("."));
        EnrichmentSet::load(&cfg, base, canon)
    }

    /// Loads every source of `config`, resolving relative paths against `base`. All or
    /// nothing: the first bad file ends the load with its error.
    pub fn load(
        config: &EnrichmentConfig,
        base: &Path,
        canon: &Canonicaliser,
    ) -> Result<EnrichmentSet, LoadError> {
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut b = IntelBuilder::new(canon);
        for feed in &config.intel {
            let path = resolve(&feed.path);
            let idx = b
                .begin_feed(&feed.name, path.clone())
                .map_err(|e| LoadError::new(&path, e))?;
            let meta = Meta {
                id: None,
                confidence: feed.confidence,
                valid_from: feed.valid_from,
                valid_until: feed.valid_until,
            };
            match feed.format {
                FeedFormat::Stix => {
                    intel::stix::load(&mut b, idx, &path, &read_text(&path)?, &meta)?
                }
                FeedFormat::Misp => intel::misp::load(&mut b, idx, &path, &meta)?,
                FeedFormat::Csv => intel::list::load_csv(
                    &mut b,
                    idx,
                    &path,
                    &read_text(&path)?,
                    feed.column.as_deref().unwrap_or(""),
                    feed.kind.unwrap_or(DeclaredType::Ip),
                    &meta,
                )?,
                FeedFormat::List => intel::list::load_list(
                    &mut b,
                    idx,
                    &path,
                    &read_text(&path)?,
                    feed.kind.unwrap_or(DeclaredType::Ip),
                    &meta,
                )?,
            }
        }
        let mut assets = AssetInventory::default();
        for p in &config.assets {
            assets.load_file(&resolve(p), canon)?;
        }
        let mut identities = IdentityDirectory::default();
        for p in &config.identities {
            identities.load_file(&resolve(p), canon)?;
        }
        Ok(EnrichmentSet {
            intel: b.finish(),
            assets,
            identities,
        })
    }

    pub fn intel(&self) -> &ThreatIntel {
        &self.intel
    }

    pub fn assets(&self) -> &AssetInventory {
        &self.assets
    }

    pub fn identities(&self) -> &IdentityDirectory {
        &self.identities
    }

    /// The entity-keyed sources, in the order their contexts are reported.
    pub fn sources(&self) -> [&dyn Source; 3] {
        [&self.assets, &self.identities, &self.intel]
    }

    /// ATT&CK name and tactics of a technique (embedded table; the same for every set).
    pub fn technique(&self, id: &TechniqueId) -> Option<&'static Technique> {
        attack::technique(id)
    }
}

impl Source for EnrichmentSet {
    fn name(&self) -> &str {
        "enrichment"
    }

    fn enrich<'s>(&'s self, entity: &Entity, at: Timestamp, out: &mut Vec<Context<'s>>) {
        // An address (or a host given as one) is parsed once for the inventory and the
        // intel, each of which would parse it again; the contexts come in the same order.
        if matches!(entity.kind, EntityKind::Ip | EntityKind::Host)
            && let Ok(ip) = entity.value.parse::<IpAddr>()
        {
            if let Some(a) = self.assets.by_ip(ip) {
                out.push(Context::Asset(a));
            }
            self.intel.match_ip(ip, at, out);
            return;
        }
        match entity.kind {
            // Not an address: only the inventory knows host names (the intel looks a host
            // up only as an address), and an ip that does not parse matches nothing.
            EntityKind::Host => {
                if let Some(a) = self.assets.by_name(&entity.value) {
                    out.push(Context::Asset(a));
                }
                return;
            }
            EntityKind::Ip => return,
            // Only the directory knows users.
            EntityKind::User => {
                self.identities.enrich(entity, at, out);
                return;
            }
            _ => {}
        }
        self.assets.enrich(entity, at, out);
        self.identities.enrich(entity, at, out);
        self.intel.enrich(entity, at, out);
    }
}

/// The active set, swapped whole on reload. Readers take an `Arc` and keep using the set they
/// got even while a reload happens.
#[derive(Debug)]
pub struct SharedEnrichment {
    current: RwLock<Arc<EnrichmentSet>>,
}

impl SharedEnrichment {
    pub fn new(set: EnrichmentSet) -> SharedEnrichment {
        SharedEnrichment {
            current: RwLock::new(Arc::new(set)),
        }
    }

    /// The active set.
    pub fn current(&self) -> Arc<EnrichmentSet> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Makes `set` the active one (loaded by the caller, e.g. together with other parts of a
    /// reload that must all succeed).
    pub fn replace(&self, set: EnrichmentSet) {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *g = Arc::new(set);
    }

    /// Loads `config` into a new set and makes it active. On error the active set is left as
    /// it was and the error says which file, line and why.
    pub fn reload(
        &self,
        config: &Path,
        canon: &Canonicaliser,
    ) -> Result<Arc<EnrichmentSet>, LoadError> {
        let new = Arc::new(EnrichmentSet::load_file(config, canon)?);
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *g = Arc::clone(&new);
        Ok(new)
    }
}
