//! What a Sigma match becomes: an [`Alert`] with the rule's id, title, level and ATT&CK tags,
//! the entities Sigma's field names point at, and the matching event as its original.
//!
//! Severity: Sigma's `level` read by [`SeverityLabel::parse`] with its conventional score
//! (informational 10, low 30, medium 50, high 75, critical 95); a rule without a level is
//! medium. Ids: the source id is `sigma:<rule id or title>@<event id>`, so one rule on one
//! event is one alert, replayed or not. Entities: the event's own (as its decoder found them)
//! and, from the Sigma view, `Computer` → host, `User`/`SubjectUserName`/`TargetUserName` →
//! user, `IpAddress`/`SourceIp` → source ip, `DestinationIp` → target ip, `Image` → process,
//! `Hashes` (`SHA256=…,MD5=…`) → file hashes.

use riposte_domain::{Alert, Entity, EntityKind, Event, Role, Rule, Severity};

use crate::detector::{Detector, RuleInfo};
use crate::view::View;

/// The decoder name riposte's own Sigma alerts carry.
pub const DECODER: &str = "sigma";

impl Detector {
    /// Runs the rules over one decoded event; one alert per matching rule.
    pub fn detect(&self, event: &Event) -> Vec<Alert> {
        let ev = self.evaluate(&event.decoder, &event.action, &event.original, false, false);
        let mut hits: Vec<usize> = ev
            .results
            .iter()
            .map(|(i, _)| *i)
            .filter(|&i| !self.rules()[i].correlation_only)
            .collect();
        if hits.is_empty() {
            return Vec::new();
        }
        hits.sort_unstable();
        let view = View::new(&ev.fields, None);
        let entities = entities(event, &view);
        hits.into_iter()
            .map(|i| to_alert(&self.rules()[i], event, entities.clone()))
            .collect()
    }
}

fn to_alert(rule: &RuleInfo, event: &Event, entities: Vec<Entity>) -> Alert {
    let rule_key = rule.id.as_deref().unwrap_or(&rule.title);
    let event_key = event
        .source_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(&event.id);
    let description = Some(match &rule.description {
        Some(d) => format!("{} (Sigma rule from {})", d.trim(), rule.file),
        None => format!("Sigma rule from {}", rule.file),
    });
    Alert {
        id: String::new(),
        decoder: DECODER.into(),
        product: format!("Sigma on {}", event.product),
        source_id: Some(format!("sigma:{rule_key}@{event_key}")),
        time: event.time,
        time_original: event.time_original.clone(),
        title: rule.title.clone(),
        description,
        severity: Severity::from_label(rule.severity, rule.level.clone().unwrap_or_default()),
        rule: Rule::new(rule.id.clone(), Some(rule.title.clone())),
        entities,
        techniques: rule.techniques.clone(),
        tactics: rule.tactics.clone(),
        original: event.original.clone(),
        origin: None,
    }
}

fn entities(event: &Event, view: &View<'_>) -> Vec<Entity> {
    let mut out: Vec<Entity> = event.entities.clone();
    let mut add = |kind: EntityKind, role: Role, raw: String| {
        let raw = raw.trim();
        if raw.is_empty() || raw == "-" {
            return;
        }
        let seen = out.iter().any(|e| {
            e.kind == kind
                && (e.value.eq_ignore_ascii_case(raw)
                    || e.raw
                        .as_deref()
                        .is_some_and(|r| r.eq_ignore_ascii_case(raw)))
        });
        if !seen {
            out.push(Entity::new(kind, role, raw));
        }
    };
    let fields: [(&str, EntityKind, Role); 8] = [
        ("Computer", EntityKind::Host, Role::Related),
        ("User", EntityKind::User, Role::Actor),
        ("SubjectUserName", EntityKind::User, Role::Actor),
        ("TargetUserName", EntityKind::User, Role::Target),
        ("IpAddress", EntityKind::Ip, Role::Source),
        ("SourceIp", EntityKind::Ip, Role::Source),
        ("DestinationIp", EntityKind::Ip, Role::Target),
        ("Image", EntityKind::Process, Role::Actor),
    ];
    for (field, kind, role) in fields {
        if let Some(v) = view.text(field) {
            add(kind, role, v);
        }
    }
    if let Some(h) = view.text("Hashes") {
        for part in h.split(',') {
            let Some((algo, value)) = part.split_once('=') else {
                continue;
            };
            // IMPHASH hashes a file's import table, not the file.
            if matches!(
                algo.trim().to_ascii_uppercase().as_str(),
                "MD5" | "SHA1" | "SHA256"
            ) {
                add(
                    EntityKind::FileHash,
                    Role::Related,
                    value.trim().to_string(),
                );
            }
        }
    }
    out
}
