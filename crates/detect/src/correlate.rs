//! Sigma correlation rules (spec v2: `event_count`, `value_count`, `temporal`,
//! `temporal_ordered`, and `value_sum`/`value_avg`/`value_percentile` as `rsigma-eval`
//! supports them), fed with the [`Detector`]'s matches in event-time order.
//!
//! The state (windows per correlation and group) is `rsigma-eval`'s `CorrelationEngine`; this
//! module chooses what it is fed: only matches of the detection rules some correlation names
//! (by id or name), with the event's own time, and the event as the rule group saw it (field
//! renames included, so `group-by: [IPAddress]` reads an Entra sign-in's `ipAddress`).
//!
//! Semantics riposte fixes: windows slide (`[t - timespan, t]`, both ends in); after a
//! correlation fires for a group, that group's window starts over, so one burst is one alert,
//! not one per event past the threshold; a detection rule that only correlations use
//! (`generate: false`, the default) raises no alert of its own.

use std::collections::HashSet;
use std::sync::Arc;

use riposte_domain::{Alert, Entity, EntityKind, Event, Rule, Severity, SeverityLabel};
use rsigma_eval::{
    CorrelationAction, CorrelationConfig, CorrelationEngine, EvaluationResult, TimestampFallback,
};
use serde_json::{Value, json};

use crate::alert::DECODER;
use crate::detector::{Detector, attack_tags};
use crate::rules::Refusal;
use crate::view::View;

/// riposte's own correlations (password spray, brute force, spray then success) for Windows,
/// Okta and Entra ID, as (name, text).
pub const DEFAULTS: &[(&str, &str)] = &[
    (
        "builtin:correlations/windows.yml",
        include_str!("../data/correlations/windows.yml"),
    ),
    (
        "builtin:correlations/okta.yml",
        include_str!("../data/correlations/okta.yml"),
    ),
    (
        "builtin:correlations/entra.yml",
        include_str!("../data/correlations/entra.yml"),
    ),
];

/// Correlation state over one ordered stream of events.
pub struct Correlator {
    detector: Arc<Detector>,
    engine: CorrelationEngine,
    /// Detection rules (indices into [`Detector::rules`]) some correlation uses.
    fed: HashSet<usize>,
    refusals: Vec<Refusal>,
}

impl Correlator {
    /// The correlations the detector's texts held, over its rules.
    pub fn new(detector: Arc<Detector>) -> Correlator {
        let config = CorrelationConfig {
            timestamp_fallback: TimestampFallback::Skip,
            action_on_match: CorrelationAction::Reset,
            max_state_entries: 1_000_000,
            ..CorrelationConfig::default()
        };
        let mut engine = CorrelationEngine::new(config);
        let mut refusals = Vec::new();
        let mut fed = HashSet::new();
        // The engine learns the referenced rules' ids and names from the rules themselves.
        for (index, rule) in detector.correlated_rules() {
            match engine.add_rule(rule) {
                Ok(()) => {
                    fed.insert(*index);
                }
                Err(e) => refusals.push(Refusal {
                    file: detector.rules()[*index].file.to_string(),
                    rule: Some(rule.title.clone()),
                    reason: format!("as a correlation's base rule: {e}"),
                }),
            }
        }
        for (file, c) in detector.correlations() {
            if let Err(e) = engine.add_correlation(c) {
                refusals.push(Refusal {
                    file: file.to_string(),
                    rule: Some(c.title.clone()),
                    reason: e.to_string(),
                });
            }
        }
        Correlator {
            detector,
            engine,
            fed,
            refusals,
        }
    }

    /// Correlations that could not be loaded, with the reason.
    pub fn refusals(&self) -> &[Refusal] {
        &self.refusals
    }

    /// Whether any correlation is loaded (nothing to feed otherwise).
    pub fn is_empty(&self) -> bool {
        self.engine.correlation_rule_count() == 0
    }

    /// The rule set this correlator reads (its correlations and their base rules).
    pub fn detector(&self) -> &Arc<Detector> {
        &self.detector
    }

    /// The longest `timespan` of the loaded correlations, in seconds (0 without any): how far
    /// back in event time a window can reach, so how much of the stream rebuilds the state.
    pub fn max_timespan_secs(&self) -> u64 {
        self.detector
            .correlations()
            .iter()
            .map(|(_, c)| c.timespan.seconds)
            .max()
            .unwrap_or(0)
    }

    /// Takes over the open windows of `old` (a correlator over the rule set a reload
    /// replaced): a correlation with the same id (else name, else title) keeps its groups'
    /// windows; a new one starts empty; a removed one's windows are dropped. `false` when the
    /// state could not be carried (the engine refused its own snapshot's version): every
    /// window then starts empty.
    pub fn carry_over_from(&mut self, old: &Correlator) -> bool {
        self.engine.import_state(old.engine.export_state())
    }

    /// Feeds one event (events must come in time order); returns the correlations it fires,
    /// as alerts.
    pub fn process(&mut self, event: &Event) -> Vec<Alert> {
        if self.is_empty() {
            return Vec::new();
        }
        let ev = self
            .detector
            .evaluate(&event.decoder, &event.action, &event.original, true, true);
        let detections: Vec<EvaluationResult> = ev
            .results
            .into_iter()
            .filter(|(i, _)| self.fed.contains(i))
            .filter_map(|(_, r)| r)
            .collect();
        if detections.is_empty() {
            return Vec::new();
        }
        let renames = ev
            .service
            .map(|s| &self.detector.mapping().services()[s].fields);
        let view = View::new(&ev.fields, renames);
        let out = self
            .engine
            .process_with_detections(&view, detections, event.time.as_second());
        out.iter()
            .filter(|r| r.is_correlation())
            .map(|r| correlation_alert(r, event))
            .collect()
    }
}

fn correlation_alert(r: &EvaluationResult, event: &Event) -> Alert {
    let h = &r.header;
    let level = h.level.as_ref().map(|l| l.as_str().to_string());
    let label = level
        .as_deref()
        .and_then(SeverityLabel::parse)
        .unwrap_or(SeverityLabel::Medium);
    let (techniques, tactics) = attack_tags(&h.tags);
    let (kind, group_key, value, span) = match r.as_correlation() {
        Some(c) => (
            format!("{:?}", c.correlation_type),
            c.group_key.clone(),
            c.aggregated_value,
            c.timespan_secs,
        ),
        None => (String::new(), Vec::new(), 0.0, 0),
    };
    let mut entities = Vec::new();
    for (field, v) in &group_key {
        let lower = field.to_ascii_lowercase();
        let e = if v.parse::<std::net::IpAddr>().is_ok() {
            Entity::new(EntityKind::Ip, riposte_domain::Role::Source, v.clone())
        } else if lower.contains("user") || lower.contains("alternateid") {
            Entity::new(EntityKind::User, riposte_domain::Role::Target, v.clone())
        } else if lower.contains("computer") || lower.contains("host") {
            Entity::new(EntityKind::Host, riposte_domain::Role::Related, v.clone())
        } else {
            continue;
        };
        entities.push(e);
    }
    let key_text: Vec<String> = group_key.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let rule_key = h.rule_id.clone().unwrap_or_else(|| h.rule_title.clone());
    Alert {
        id: String::new(),
        decoder: DECODER.into(),
        product: format!("Sigma correlation on {}", event.product),
        source_id: Some(format!(
            "sigma-correlation:{rule_key}@{}@{}",
            key_text.join(","),
            event.time.as_second()
        )),
        time: event.time,
        time_original: event.time_original.clone(),
        title: h.rule_title.clone(),
        description: Some(format!(
            "{kind} {value} within {span} s for {}",
            key_text.join(", ")
        )),
        severity: Severity::from_label(label, level.unwrap_or_default()),
        rule: Rule::new(h.rule_id.clone(), Some(h.rule_title.clone())),
        entities,
        techniques,
        tactics,
        original: json!({
            "correlation": kind,
            "group_key": group_key.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
            "aggregated_value": value,
            "timespan_secs": span,
            "last_event": event.original,
        }),
        origin: None,
    }
}
