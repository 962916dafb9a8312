//! The case stage: alerts → cases (`riposte_correlate`), each case enriched
//! (`riposte_enrich`), scored and tiered (`riposte_score`), and shaped into the document the
//! store keeps and the API shows. Pure CPU work; the caller stores what it returns.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;
use riposte_correlate::{CaseConfig, CaseEngine, ConfigError, FormedCase, Note};
use riposte_domain::{Alert, TechniqueId, Timestamp};
use riposte_enrich::{Context, EnrichmentSet, Source, attack};
use riposte_score::{CaseFacts, ScoringConfig};
use riposte_store::StoredCase;
use serde_json::{Value, json};

/// What the case stage keeps of each alert while its case is open: enough to explain and
/// score it. Kept small (16 bytes, a map entry of 32 with its key): what the alerts of one
/// rule have in common is one shared [`Profile`] (the id is the engine's own `Arc`, the time
/// is in the formed case).
#[derive(Debug, Clone)]
struct AlertInfo {
    profile: Arc<Profile>,
    severity: u8,
}

/// The part of an alert that repeats across the alerts of one rule or product.
#[derive(Debug)]
struct Profile {
    title: Box<str>,
    decoder: Box<str>,
    product: Box<str>,
    techniques: Box<[TechniqueId]>,
    tactics: Box<[Box<str>]>,
    /// For a `deception` alert that counts: "decoy X (kind) used by Y at T". Such an alert
    /// has a profile of its own (rare, and it keeps every other alert's entry small).
    decoy_use: Option<Box<str>>,
}

impl Profile {
    fn of(a: &Alert, decoy_use: Option<Box<str>>) -> Profile {
        Profile {
            title: a.title.as_str().into(),
            decoder: a.decoder.as_str().into(),
            product: a.product.as_str().into(),
            techniques: a.techniques.clone().into_boxed_slice(),
            tactics: a.tactics.iter().map(|t| t.as_str().into()).collect(),
            decoy_use,
        }
    }

    fn matches(&self, a: &Alert) -> bool {
        *self.title == *a.title
            && *self.decoder == *a.decoder
            && *self.product == *a.product
            && *self.techniques == *a.techniques
            && self.tactics.len() == a.tactics.len()
            && self.tactics.iter().zip(&a.tactics).all(|(x, y)| **x == **y)
    }
}

/// Shares profiles among the alerts that have the same one, found without allocating.
/// Bounded: past `MAX_INTERNED` distinct profiles, new ones are not kept.
#[derive(Debug, Default)]
struct Profiles {
    by_hash: HashMap<u64, Vec<Arc<Profile>>, RandomState>,
    count: usize,
    hasher: RandomState,
}

const MAX_INTERNED: usize = 100_000;

impl Profiles {
    fn get(&mut self, a: &Alert) -> Arc<Profile> {
        let h = self
            .hasher
            .hash_one((&a.title, &a.decoder, &a.product, &a.techniques, &a.tactics));
        if let Some(p) = self
            .by_hash
            .get(&h)
            .and_then(|v| v.iter().find(|p| p.matches(a)))
        {
            return p.clone();
        }
        let p = Arc::new(Profile::of(a, None));
        if self.count < MAX_INTERNED {
            self.by_hash.entry(h).or_default().push(p.clone());
            self.count += 1;
        }
        p
    }
}

/// Most alerts, links and entities a case document lists (and entities it enriches and
/// indexes for look-up by entity).
pub const MAX_LISTED: usize = 1_000;

pub struct CaseStage {
    engine: CaseEngine,
    enrichment: Arc<EnrichmentSet>,
    scoring: ScoringConfig,
    /// Keyed by the engine's own `Arc` of the alert id.
    alerts: HashMap<Arc<str>, AlertInfo, RandomState>,
    profiles: Profiles,
    /// What placing one alert changed (reused, so placing allocates no list).
    changes: Vec<riposte_correlate::CaseChange>,
}

impl CaseStage {
    pub fn new(
        config: &CaseConfig,
        enrichment: Arc<EnrichmentSet>,
        scoring: ScoringConfig,
    ) -> Result<CaseStage, ConfigError> {
        Ok(CaseStage {
            engine: CaseEngine::new(config)?,
            enrichment,
            scoring,
            alerts: HashMap::default(),
            profiles: Profiles::default(),
            changes: Vec::new(),
        })
    }

    /// Places one alert; returns the ids of the cases it changed. An alert already placed
    /// (same id) changes nothing.
    pub fn add(&mut self, a: &Alert) -> Vec<String> {
        let mut t = Touched::default();
        self.place(a, &mut t);
        t.cases.iter().map(|c| c.to_string()).collect()
    }

    /// Places one alert, noting in `touched` what changed. An alert already placed (same id)
    /// changes nothing.
    pub fn place(&mut self, a: &Alert, touched: &mut Touched) {
        // One probe of the (large) map for both the duplicate check and the insert.
        let id: Arc<str> = Arc::from(a.id.as_str());
        let std::collections::hash_map::Entry::Vacant(slot) = self.alerts.entry(id.clone()) else {
            return;
        };
        let decoy_use = (a.decoder == "deception"
            && a.original.get("ignored").is_none_or(Value::is_null))
        .then_some(a.description.as_deref())
        .flatten();
        let profile = match decoy_use {
            Some(u) => Arc::new(Profile::of(a, Some(u.into()))),
            None => self.profiles.get(a),
        };
        slot.insert(AlertInfo {
            profile,
            severity: a.severity.score,
        });
        self.engine.add_into(a, id, &mut self.changes);
        for c in self.changes.drain(..) {
            touched.note(&c);
        }
    }

    /// Places alerts still held back for ordering.
    pub fn flush(&mut self) -> Vec<String> {
        let mut t = Touched::default();
        for c in self.engine.flush() {
            t.note(&c);
        }
        t.cases.iter().map(|c| c.to_string()).collect()
    }

    /// Uses this enrichment for the cases built from now on (a reload).
    pub fn set_enrichment(&mut self, enrichment: Arc<EnrichmentSet>) {
        self.enrichment = enrichment;
    }

    /// How many cases are open and how many alerts they hold.
    pub fn open_counts(&self) -> (usize, usize) {
        (self.engine.open_case_count(), self.alerts.len())
    }

    /// The newest alert time placed.
    pub fn watermark(&self) -> Option<Timestamp> {
        self.engine.watermark()
    }

    /// Closes the cases nothing can join any more as of `now` (alert time) and forgets their
    /// alerts; places held alerts that are due on the way, noting what changed in `touched`.
    /// Returns, built, the cases that changed and closed in this same call (they are no longer
    /// open, so [`CaseStage::settle`] cannot find them).
    pub fn expire(&mut self, now: Timestamp, touched: &mut Touched) -> Vec<StoredCase> {
        let expiry = self.engine.expire(now);
        for c in &expiry.changes {
            touched.note(c);
        }
        let mut built = Vec::new();
        for c in &expiry.closed {
            if touched.cases.remove(&*c.id) {
                built.push(self.build(c));
            }
        }
        for c in &expiry.closed {
            for a in &c.alerts {
                self.alerts.remove(&*a.id);
            }
        }
        built
    }

    /// What `touched` means for the store: the open cases that changed, built, and the cases
    /// that are gone (merged into another, or withdrawn with an empty `into`).
    pub fn settle(&self, touched: Touched) -> (Vec<StoredCase>, Vec<(String, String)>) {
        let mut cases = Vec::with_capacity(touched.cases.len());
        for id in &touched.cases {
            if let Some(c) = self.engine.case(id) {
                cases.push(self.build(&c));
            }
        }
        let retired = touched
            .retired
            .into_iter()
            .filter(|(id, _)| self.engine.case(id).is_none())
            .collect();
        (cases, retired)
    }

    /// The open cases, oldest first.
    pub fn open_cases(&self) -> Vec<FormedCase> {
        self.engine.open_cases()
    }

    /// A case, enriched, scored and explained, ready to store.
    pub fn build(&self, c: &FormedCase) -> StoredCase {
        let mut facts = CaseFacts::default();
        let mut products = BTreeSet::new();
        let mut alerts_json = Vec::with_capacity(c.alerts.len().min(MAX_LISTED));
        // The document lists the latest alerts and links and the first entities, at most
        // MAX_LISTED each (with their counts), so writing a huge case stays cheap; the
        // score counts every alert.
        let listed_from = c.alerts.len().saturating_sub(MAX_LISTED);
        let mut techniques = Vec::new();
        let mut named_tactics: Vec<&str> = Vec::new();
        for (i, ca) in c.alerts.iter().enumerate() {
            let Some(info) = self.alerts.get(&*ca.id) else {
                continue;
            };
            let p = &*info.profile;
            facts.severities.push(info.severity);
            products.insert(p.product.to_string());
            techniques.extend(p.techniques.iter().cloned());
            named_tactics.extend(p.tactics.iter().map(|t| &**t));
            if let Some(u) = &p.decoy_use {
                facts.decoy_uses.push(u.to_string());
            }
            if i < listed_from {
                continue;
            }
            alerts_json.push(json!({
                "id": &*ca.id, "time": ca.time, "title": &*p.title,
                "decoder": &*p.decoder, "severity": info.severity,
                "techniques": p.techniques,
            }));
        }
        facts.products = products.into_iter().collect();
        let chain = attack::kill_chain(techniques.iter(), named_tactics.iter().copied());
        facts.tactics = chain.iter().map(|t| t.shortname.to_string()).collect();

        // Context of every entity: assets, identities, intel, each hit with why.
        let at = c.last_seen();
        let mut contexts: Vec<Context<'_>> = Vec::new();
        let mut entities_json = Vec::with_capacity(c.entities.len().min(MAX_LISTED));
        let mut asset_tags = BTreeSet::new();
        for e in c.entities.iter().take(MAX_LISTED) {
            contexts.clear();
            let entity = riposte_domain::Entity {
                kind: e.kind,
                role: e.role,
                value: e.value.to_string(),
                raw: None,
            };
            self.enrichment.enrich(&entity, at, &mut contexts);
            let mut ctx = Vec::new();
            for x in &contexts {
                match x {
                    Context::Asset(a) => {
                        let crit = a.criticality.get();
                        facts.asset_criticality =
                            Some(facts.asset_criticality.map_or(crit, |m| m.max(crit)));
                        asset_tags.extend(a.tags.iter().cloned());
                        ctx.push(json!({
                            "source": "asset", "criticality": crit, "tags": a.tags,
                            "owner": a.owner, "hostnames": a.hostnames,
                        }));
                    }
                    Context::Identity(i) => {
                        if i.privileged && !facts.privileged_identities.contains(&i.user) {
                            facts.privileged_identities.push(i.user.clone());
                        }
                        ctx.push(json!({
                            "source": "identity", "user": i.user, "privileged": i.privileged,
                            "groups": i.groups, "department": i.department,
                        }));
                    }
                    Context::Intel(h) => {
                        facts.intel_hits.push((
                            h.feed.to_string(),
                            h.indicator.value.to_string(),
                            h.indicator.confidence,
                        ));
                        ctx.push(json!({
                            "source": "intel", "feed": h.feed, "indicator": &*h.indicator.value,
                            "indicator_id": h.indicator.id.as_deref(),
                            "confidence": h.indicator.confidence,
                            "valid_from": h.indicator.valid_from, "valid_until": h.indicator.valid_until,
                        }));
                    }
                }
            }
            entities_json.push(json!({
                "type": e.kind.as_str(), "role": e.role.as_str(), "value": &*e.value,
                "context": ctx,
            }));
        }
        let score = self.scoring.score(&facts);
        let tier = match score.tier {
            riposte_domain::ConfidenceTier::Low => "low",
            riposte_domain::ConfidenceTier::Medium => "medium",
            riposte_domain::ConfidenceTier::High => "high",
            riposte_domain::ConfidenceTier::Validated => "validated",
        };
        let links: Vec<Value> = c.links[c.links.len().saturating_sub(MAX_LISTED)..]
            .iter()
            .map(|l| {
                json!({
                    "alert": &*l.alert, "with": &*l.with, "entity": {"type": l.kind.as_str(), "value": &*l.value},
                    "gap_seconds": l.gap.as_secs(),
                })
            })
            .collect();
        let notes: Vec<Value> = c
            .notes
            .iter()
            .map(|n| match n {
                Note::EntityCapped { kind, value, reason, at } => json!({
                    "note": "entity_capped", "entity": {"type": kind.as_str(), "value": &**value},
                    "reason": format!("{reason:?}"), "at": at,
                }),
                Note::ArrivedTooLate { alert, behind } => json!({
                    "note": "arrived_too_late", "alert": &**alert, "behind_seconds": behind.as_secs(),
                }),
            })
            .collect();
        let doc = json!({
            "id": &*c.id,
            "status": "open",
            "tier": tier,
            "tier_reason": score.tier_reason,
            "risk": score.risk,
            "factors": score.factors,
            "first_seen": c.first_seen(),
            "last_seen": c.last_seen(),
            "tactics": facts.tactics,
            "products": facts.products,
            "asset_tags": asset_tags,
            "decoy_uses": facts.decoy_uses,
            "alert_count": c.alerts.len(),
            "entity_count": c.entities.len(),
            "link_count": c.links.len(),
            "alerts": alerts_json,
            "entities": entities_json,
            "links": links,
            "notes": notes,
        });
        StoredCase {
            id: c.id.to_string(),
            tier: tier.to_string(),
            status: "open".into(),
            risk: score.risk,
            first_ms: c.first_seen().as_millisecond(),
            last_ms: c.last_seen().as_millisecond(),
            entities: c
                .entities
                .iter()
                .take(MAX_LISTED)
                .map(|e| (e.kind.as_str().to_string(), e.value.to_string()))
                .collect(),
            doc,
        }
    }
}

/// What placing alerts changed: cases to write again, cases that are gone.
#[derive(Debug, Default)]
pub struct Touched {
    /// The engine's own ids (`Arc`s): noting a case copies no string, and a case touched
    /// again costs one search of the set.
    pub cases: BTreeSet<Arc<str>>,
    /// (case, the case it merged into, or empty when withdrawn).
    pub retired: Vec<(String, String)>,
}

impl Touched {
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty() && self.retired.is_empty()
    }

    fn note(&mut self, c: &riposte_correlate::CaseChange) {
        use riposte_correlate::CaseChange as C;
        match c {
            C::Created { case }
            | C::Joined { case }
            | C::Revised { case }
            | C::EntityCapped { case, .. } => {
                self.cases.insert(case.clone());
            }
            C::Merged { case, absorbed } => {
                self.cases.insert(case.clone());
                for a in absorbed {
                    self.cases.remove(&**a);
                    self.retired.push((a.to_string(), case.to_string()));
                }
            }
            C::Withdrawn { case } => {
                self.cases.remove(&**case);
                self.retired.push((case.to_string(), String::new()));
            }
        }
    }
}
