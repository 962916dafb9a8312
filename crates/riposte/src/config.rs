//! The configuration file (YAML). Everything has a safe default, so it is optional.
//!
//! ```yaml
//! entities:
//!   user_domains: [CORP, corp.example]   # CORP\alice, alice@corp.example and alice are one user
//!   host_domains: [corp.example]         # ws-042.corp.example is ws-042 (empty: any suffix)
//! mappings: ./mappings                   # generic-decoder mappings, one YAML file each
//! decoys: ./decoys.yaml                  # the decoy registry (riposte_deception)
//! enrichment: ./enrichment.yaml          # intel feeds, assets, identities (riposte_enrich)
//! cases: { max_gap: 1h, max_span: 24h }  # case formation (riposte_correlate::CaseConfig)
//! scoring: { thresholds: { high: 70, medium: 40 } }   # riposte_score::ScoringConfig
//! detection:                             # Sigma rules and correlations over every decoded event
//!   rules: [./sigma/rules, ./my-rules]   # files or folders; reloaded with decoys and enrichment
//!   logsources: ./logsources.yaml        # extra logsource mapping (optional)
//!   reorder_delay: 2s                    # serve: hold events this long to correlate in order
//!   rule_cache: ./rules.cache            # parsed rules kept between starts (optional)
//! respond:                               # the response engine (absent: none)
//!   playbooks: ./playbooks               # *.yaml, one playbook each
//!   connectors: ./connectors             # *.yaml, one connector each
//!   policy: ./policy.yaml                # optional; default policy without it
//!   secret_key_file: /etc/riposte/secret.key   # RIPOSTE_SECRET_KEY wins when set
//!   approvals: { notify: [slack] }       # connectors told of every action awaiting approval
//!   slack:                               # Approve / Reject clicks at POST /slack/interactions
//!     signing_secret: slack_signing      # a stored secret: the Slack app's signing secret
//!     users: { U024BE7LH: alice }        # Slack user id → riposte token name (approver role)
//! edl:                                   # external dynamic lists served at /edl/{list}.txt
//!   bad-ips: { allow: [10.20.0.0/16] }   # firewalls at these addresses poll without a token
//!   bad-domains: { token: true }         # a `feed` (or reading) token: Bearer or Basic password
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use riposte_deception::Registry;
use riposte_deception::SharedRegistry;
use riposte_decode::Decoder;
use riposte_decode::generic::Generic;
use riposte_detect::{Detector, SharedDetector};
use riposte_domain::{Canonicaliser, CanonicaliserConfig};
use riposte_enrich::{EnrichmentSet, SharedEnrichment};
use riposte_ingest::replay::CaseSetup;
use riposte_ingest::{DecoderSet, Pipeline};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub entities: CanonicaliserConfig,
    /// A folder of generic mappings; each `NAME.yaml` is the mapping `NAME`.
    #[serde(default)]
    pub mappings: Option<PathBuf>,
    /// The decoy registry file.
    #[serde(default)]
    pub decoys: Option<PathBuf>,
    /// The enrichment configuration file (feeds, assets, identities).
    #[serde(default)]
    pub enrichment: Option<PathBuf>,
    #[serde(default)]
    pub cases: riposte_correlate::CaseConfig,
    #[serde(default)]
    pub scoring: riposte_score::ScoringConfig,
    #[serde(default)]
    pub detection: Option<DetectionConfig>,
    /// The response engine: playbooks, connectors, policy, secrets.
    #[serde(default)]
    pub respond: Option<RespondConfig>,
    /// The external dynamic lists `riposte serve` serves, and who may read each.
    #[serde(default)]
    pub edl: std::collections::BTreeMap<String, EdlListConfig>,
    #[serde(skip)]
    base: PathBuf,
}

/// Sigma rules the pipeline runs over every decoded event (HTTP, syslog and replay alike).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionConfig {
    /// Rule files or folders, relative to the configuration file.
    pub rules: Vec<PathBuf>,
    /// An extra logsource mapping (YAML); its entries win over the shipped ones.
    #[serde(default)]
    pub logsources: Option<PathBuf>,
    /// `riposte serve`: how long live correlation holds each event after it arrives so that
    /// events from concurrent senders are correlated in event-time order (the correlation
    /// alerts come that much later). Read at start-up.
    #[serde(default = "default_reorder_delay")]
    pub reorder_delay: jiff::SignedDuration,
    /// A file that keeps the parsed rules between starts and reloads (keyed by each rule
    /// text's hash), relative to the configuration file; without it every rule is parsed.
    #[serde(default)]
    pub rule_cache: Option<PathBuf>,
}

fn default_reorder_delay() -> jiff::SignedDuration {
    jiff::SignedDuration::from_secs(2)
}

/// The longest reorder delay accepted: correlation alerts come this much later.
const MAX_REORDER_DELAY: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// `respond:` in the configuration file. Relative paths are from the configuration file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondConfig {
    /// A folder of playbooks (`*.yaml`, `*.yml`).
    #[serde(default)]
    pub playbooks: Option<PathBuf>,
    /// A folder of connector definitions (`*.yaml`, `*.yml`).
    #[serde(default)]
    pub connectors: Option<PathBuf>,
    /// The policy file; the default policy without one.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// The key that opens `<data dir>/secrets.json`; `RIPOSTE_SECRET_KEY` wins when set.
    #[serde(default)]
    pub secret_key_file: Option<PathBuf>,
    /// Who is told when an action starts waiting for approval.
    #[serde(default)]
    pub approvals: ApprovalsConfig,
    /// Approvals by button click in Slack.
    #[serde(default)]
    pub slack: Option<SlackConfig>,
}

/// `respond: approvals:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// Connector names: each gets `request_approval` (or `notify`) for every waiting action.
    #[serde(default)]
    pub notify: Vec<String>,
}

/// `respond: slack:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The name of the stored secret holding the Slack app's signing secret.
    pub signing_secret: String,
    /// Slack user id → the riposte principal (token name) a click by them answers as.
    #[serde(default)]
    pub users: std::collections::BTreeMap<String, String>,
}

/// One served list under `edl:`: a token, source networks, or both (either is enough).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdlListConfig {
    #[serde(default)]
    pub token: bool,
    #[serde(default)]
    pub allow: Vec<String>,
}

impl Config {
    /// Who may read which list at `GET /edl/{list}.txt`; every problem named with its list.
    pub fn edl_access(&self) -> Result<riposte_server::edl::EdlAccess> {
        let mut access = riposte_server::edl::EdlAccess::default();
        for (name, l) in &self.edl {
            riposte_connectors::edl::check_list_name(name)
                .map_err(|m| anyhow::anyhow!("edl: {m}"))?;
            if !l.token && l.allow.is_empty() {
                bail!(
                    "edl: list `{name}`: nobody could read it; give `token: true`, an `allow` list of source networks, or both"
                );
            }
            let allow = l
                .allow
                .iter()
                .map(|n| riposte_server::edl::Network::parse(n))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| anyhow::anyhow!("edl: list `{name}`: allow: {m}"))?;
            access.lists.insert(
                name.clone(),
                riposte_server::edl::ListAccess {
                    token: l.token,
                    allow,
                },
            );
        }
        Ok(access)
    }

    pub fn load(path: Option<&Path>) -> Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut c: Config =
            yaml_serde::from_str(&text).with_context(|| format!("{}", path.display()))?;
        c.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(c)
    }

    /// A path from the configuration, relative to the configuration file.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        self.base.join(p)
    }

    pub fn canonicaliser(&self) -> Canonicaliser {
        Canonicaliser::new(&self.entities)
    }

    /// The pipeline: the canonicaliser and, when configured, the decoy registry. A registry
    /// that cannot be read is an error naming the file, line and reason.
    pub fn pipeline(&self) -> Result<Pipeline> {
        let canon = self.canonicaliser();
        let mut p = Pipeline::new(canon.clone()).with_decoys(self.decoy_registry(&canon)?);
        if let Some(detector) = self.detector()? {
            crate::rules::report_loaded(&detector);
            crate::rules::report_refusals(&detector);
            p = p.with_detector(Arc::new(detector));
        }
        Ok(p)
    }

    /// Live correlation's reorder delay (`detection.reorder_delay`); a value outside 0–10 min
    /// is an error naming the key.
    pub fn correlation_hold(&self) -> Result<std::time::Duration> {
        let d = self
            .detection
            .as_ref()
            .map_or_else(default_reorder_delay, |d| d.reorder_delay);
        if d.is_negative() || d > MAX_REORDER_DELAY {
            bail!("detection.reorder_delay: must be between 0s and 10m, not {d:#}");
        }
        Ok(d.unsigned_abs())
    }

    /// The `detection:` rules (with riposte's shipped correlations), compiled now so every
    /// refusal is known; `None` without `detection:`. A rule that does not load is a refusal
    /// in the detector, not an error; a rules path that cannot be read is an error.
    pub fn detector(&self) -> Result<Option<Detector>> {
        let Some(d) = &self.detection else {
            return Ok(None);
        };
        let rules: Vec<PathBuf> = d.rules.iter().map(|r| self.base.join(r)).collect();
        let logsources = d.logsources.as_ref().map(|l| self.base.join(l));
        let cache = d.rule_cache.as_ref().map(|c| self.base.join(c));
        Ok(Some(crate::rules::load(
            &rules,
            logsources.as_deref(),
            false,
            true,
            cache.as_deref(),
        )?))
    }

    /// The decoy registry (empty when none is configured).
    pub fn decoy_registry(&self, canon: &Canonicaliser) -> Result<Registry> {
        let Some(file) = &self.decoys else {
            return Ok(Registry::default());
        };
        let path = self.base.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the decoy registry {}", path.display()))?;
        Registry::from_yaml(&text, &path.display().to_string(), canon).map_err(|e| match e.line {
            Some(l) => anyhow::anyhow!("{} line {l}: {}", e.file, e.reason),
            None => anyhow::anyhow!("{e}"),
        })
    }

    /// The enrichment set (empty when none is configured); an error names file, line and
    /// reason.
    pub fn enrichment_set(&self, canon: &Canonicaliser) -> Result<EnrichmentSet> {
        match &self.enrichment {
            None => Ok(EnrichmentSet::empty()),
            Some(file) => EnrichmentSet::load_file(&self.base.join(file), canon)
                .map_err(|e| anyhow::anyhow!("{e}")),
        }
    }

    /// Case formation, enrichment (loaded now; an error names file, line and reason) and
    /// scoring.
    pub fn case_setup(&self) -> Result<CaseSetup> {
        let enrichment = self.enrichment_set(&self.canonicaliser())?;
        // Refuse a bad case configuration now, not half-way through a replay.
        riposte_correlate::CaseEngine::new(&self.cases)
            .map_err(|e| anyhow::anyhow!("cases: {e}"))?;
        Ok(CaseSetup {
            config: self.cases.clone(),
            enrichment: Arc::new(enrichment),
            scoring: self.scoring.clone(),
        })
    }

    /// The built-in decoders plus every mapping in the mappings folder.
    pub fn decoders(&self) -> Result<DecoderSet> {
        let mut set = DecoderSet::builtin();
        let Some(dir) = &self.mappings else {
            return Ok(set);
        };
        let dir = self.base.join(dir);
        for f in yaml_files(&dir, "mappings folder")? {
            let name = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            set.add_generic(name, load_mapping(&f)?);
        }
        Ok(set)
    }
}

/// The `*.yaml` and `*.yml` files of a folder, sorted.
pub fn yaml_files(dir: &Path, what: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{what} {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

fn load_mapping(path: &Path) -> Result<Arc<dyn Decoder>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let g = Generic::from_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(Arc::new(g))
}

/// `--decoder generic --mapping X`: X is a loaded mapping's name or a mapping file.
pub fn generic_decoder(set: &DecoderSet, mapping: Option<&str>) -> Result<Arc<dyn Decoder>> {
    let Some(m) = mapping else {
        bail!("--decoder generic needs --mapping NAME_OR_FILE");
    };
    let p = Path::new(m);
    if p.is_file() {
        return load_mapping(p);
    }
    Ok(set.resolve("generic", Some(m))?)
}

/// Reloads the decoy registry, the enrichment and the Sigma rules (`detection:`) named by
/// the configuration file (read again, so a changed path is followed). All or nothing:
/// unless all three load, all keep what they had. A rule file that does not load is a
/// refusal listed in the answer, as at start-up, and the rest are used; a rules path that
/// cannot be read refuses the reload. Entities keep the canonicaliser the server started
/// with; other settings (`entities`, `cases`, `scoring`, `mappings`) need a restart.
///
/// The new rule set replaces the old one whole: a request being decoded keeps the set it
/// started with, the next one takes the new; live correlation carries its open windows over
/// (see `riposte_server::correlation`).
pub struct Reloader {
    pub path: PathBuf,
    pub canon: Canonicaliser,
    pub decoys: Arc<SharedRegistry>,
    pub enrichment: Arc<SharedEnrichment>,
    pub detector: Arc<SharedDetector>,
}

impl riposte_server::Reload for Reloader {
    fn reload(&self) -> std::result::Result<serde_json::Value, String> {
        let load = || -> Result<(Registry, EnrichmentSet, Option<Detector>)> {
            let config = Config::load(Some(&self.path))?;
            Ok((
                config.decoy_registry(&self.canon)?,
                config.enrichment_set(&self.canon)?,
                config.detector()?,
            ))
        };
        match load() {
            Ok((registry, set, detector)) => {
                let rules = detector.as_ref().map(rules_summary);
                let summary = serde_json::json!({
                    "decoys": registry.len(),
                    "indicators": set.intel().len(),
                    "feeds": set.intel().feeds().len(),
                    "assets": set.assets().len(),
                    "identities": set.identities().len(),
                    "rules": rules,
                });
                if let Some(d) = &detector {
                    for r in d.refusals() {
                        tracing::warn!(refusal = %r, "rule not loaded");
                    }
                }
                self.decoys.replace(registry);
                self.enrichment.replace(set);
                self.detector.replace(detector.map(Arc::new));
                tracing::info!(%summary, "configuration reloaded");
                Ok(summary)
            }
            Err(e) => {
                let reason = format!(
                    "{e:#}; nothing was reloaded, the previous decoys, enrichment and rules stay in use"
                );
                tracing::warn!(%reason, "reload refused");
                Err(reason)
            }
        }
    }
}

/// Most refusals listed in a reload's answer (all are counted and logged).
const MAX_LISTED_REFUSALS: usize = 100;

/// What a reload loaded of the rules: counts, and each refused rule with its file and reason.
fn rules_summary(d: &Detector) -> serde_json::Value {
    let s = d.stats();
    let refusals = d.refusals();
    serde_json::json!({
        "files": s.files,
        "detection_rules": s.rules - s.failed_compile,
        "correlations": s.correlations,
        "refused": s.refused,
        "unmapped": s.unmapped,
        "refusals": refusals.iter().take(MAX_LISTED_REFUSALS).collect::<Vec<_>>(),
    })
}
