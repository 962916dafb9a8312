//! The generic decoder: a product added without code, by a YAML field mapping that says where
//! each part of an alert or event is in the product's JSON. Field paths are dotted and match
//! nested objects and dotted keys alike (see [`crate::fields`]).
//!
//! A mapping is checked when it is loaded ([`Generic::from_yaml`]): unknown keys, entity
//! types, roles and time formats, severity scores above 100 and a missing `title` (for
//! alerts) or `action` (for events) are refused there, with the line and column. At decode
//! time, an error names the mapped field path that was missing or wrong.
//!
//! ```yaml
//! name: Acme EDR            # product name shown on records (required)
//! kind: alert               # alert (default) | event: what every record becomes …
//! alert_when:               # … or: alerts where the field's value is listed, events otherwise
//!   field: category
//!   values: [detection]
//! id: detection.uuid        # the product's record id (optional; else records are told
//!                           # apart by content)
//! time:                     # required; `time: ts` alone means format auto
//!   field: ts
//!   format: rfc3339         # auto | rfc3339 | unix_s | unix_ms | a strftime pattern
//!                           # ("%d/%m/%Y %H:%M:%S %z"; no zone in it means UTC)
//! title: detection.name     # alerts: required
//! description: detection.details
//! action: event.type        # events: what happened (required when events are possible;
//!                           # defaults to the alert_when field)
//! outcome: event.outcome    # events: optional
//! severity:                 # optional; without it, the severity is unknown (0)
//!   field: sev
//!   map: { low: 30, medium: 50, high: 75, critical: 95 }   # value → 0–100
//!   # or  scale: { from: [0, 10] }   a number on that range, mapped linearly to 0–100
//!   # or  neither: a number 0–100 as it is, or a word (low, high, …)
//! rule: { id: rule.id, name: rule.name }
//! techniques: [mitre.techniques]   # fields holding ATT&CK ids (strings, arrays, or text)
//! tactics: [mitre.tactics]
//! entities:                 # type: host user ip domain url file_hash process email
//!   - { type: host, role: target, field: device.hostname }   #       cloud_resource
//!   - { type: ip, role: source, field: net.src }   # role: source target actor related
//! ```
//!
//! `docs/mappings/example.yaml` in the repository is a complete, tested mapping (Suricata EVE).
//! The generic decoder never claims records by itself (`recognises` is false): it runs only
//! when a mapping is named.

use std::collections::BTreeMap;
use std::fmt;

use riposte_domain::{
    Alert, Decoded, EntityKind, Event, Role, Rule, Severity, SeverityLabel, TechniqueId, Timestamp,
    time,
};
use serde::Deserialize;
use serde_json::Value;

use crate::fields::{self, Entities, get, text_at};
use crate::{DecodeError, Decoder};

/// A decoder built from a mapping.
#[derive(Debug, Clone)]
pub struct Generic {
    mapping: Mapping,
}

/// Why a mapping was refused, with where in the YAML when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MappingError {
    pub message: String,
    /// 1-based.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "mapping line {l} column {c}: {}", self.message),
            (Some(l), None) => write!(f, "mapping line {l}: {}", self.message),
            _ => write!(f, "mapping: {}", self.message),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Mapping {
    name: String,
    #[serde(default)]
    kind: Option<Kind>,
    #[serde(default)]
    alert_when: Option<AlertWhen>,
    #[serde(default)]
    id: Option<String>,
    #[serde(deserialize_with = "time_spec")]
    time: TimeSpec,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    severity: Option<SeveritySpec>,
    #[serde(default)]
    rule: Option<RuleSpec>,
    #[serde(default)]
    techniques: Vec<String>,
    #[serde(default)]
    tactics: Vec<String>,
    #[serde(default)]
    entities: Vec<EntitySpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Alert,
    Event,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertWhen {
    field: String,
    values: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeSpec {
    field: String,
    #[serde(default)]
    format: TimeFormat,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum TimeFormat {
    /// ISO 8601 text or an epoch number read by magnitude ([`fields::req_time`]).
    #[default]
    Auto,
    Rfc3339,
    UnixSeconds,
    UnixMillis,
    /// A strftime pattern, read with jiff's strptime.
    Pattern(String),
}

impl<'de> Deserialize<'de> for TimeFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "auto" => TimeFormat::Auto,
            "rfc3339" | "iso8601" => TimeFormat::Rfc3339,
            "unix_s" => TimeFormat::UnixSeconds,
            "unix_ms" => TimeFormat::UnixMillis,
            p if valid_pattern(p) => TimeFormat::Pattern(p.to_string()),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown time format {other:?}: use auto, rfc3339, unix_s, unix_ms or a \
                     strftime pattern such as \"%Y-%m-%d %H:%M:%S\""
                )));
            }
        })
    }
}

/// A pattern has at least one conversion and no `%` left dangling at its end.
fn valid_pattern(p: &str) -> bool {
    let mut conversions = 0;
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some(_) => conversions += 1,
                None => return false,
            }
        }
    }
    conversions > 0
}

/// `time: ts` or `time: { field: ts, format: … }`.
fn time_spec<'de, D: serde::Deserializer<'de>>(d: D) -> Result<TimeSpec, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = TimeSpec;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a field path, or { field, format }")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TimeSpec, E> {
            Ok(TimeSpec {
                field: s.to_string(),
                format: TimeFormat::Auto,
            })
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<TimeSpec, A::Error> {
            TimeSpec::deserialize(serde::de::value::MapAccessDeserializer::new(m))
        }
    }
    d.deserialize_any(V)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeveritySpec {
    field: String,
    #[serde(default)]
    map: Option<BTreeMap<String, u32>>,
    #[serde(default)]
    scale: Option<Scale>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scale {
    from: [f64; 2],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntitySpec {
    #[serde(rename = "type")]
    kind: EntityKind,
    role: Role,
    field: String,
}

impl Generic {
    /// Loads and checks a mapping.
    pub fn from_yaml(text: &str) -> Result<Generic, MappingError> {
        let mapping: Mapping = yaml_serde::from_str(text).map_err(|e| {
            let loc = e.location();
            let mut message = e.to_string();
            // The position is kept apart; drop yaml_serde's copy of it from the text.
            if let Some(l) = &loc {
                let suffix = format!(" at line {} column {}", l.line(), l.column());
                if let Some(stripped) = message.strip_suffix(&suffix) {
                    message = stripped.to_string();
                }
            }
            MappingError {
                message,
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
            }
        })?;
        check(&mapping, text)?;
        Ok(Generic { mapping })
    }

    /// The product name records carry.
    pub fn product(&self) -> &str {
        &self.mapping.name
    }
}

/// Checks serde cannot express; errors point at the line of the top-level key involved.
fn check(m: &Mapping, text: &str) -> Result<(), MappingError> {
    let err = |key: &str, message: String| MappingError {
        message: format!("{key}: {message}"),
        line: line_of_key(text, key),
        column: line_of_key(text, key).map(|_| 1),
    };
    if m.name.trim().is_empty() {
        return Err(err("name", "must not be empty".into()));
    }
    if m.kind.is_some() && m.alert_when.is_some() {
        return Err(err(
            "alert_when",
            "give either `kind` or `alert_when`, not both".into(),
        ));
    }
    if let Some(w) = &m.alert_when
        && w.values.is_empty()
    {
        return Err(err(
            "alert_when",
            "`values` must list at least one value".into(),
        ));
    }
    let may_alert = m.alert_when.is_some() || m.kind != Some(Kind::Event);
    let may_event = m.alert_when.is_some() || m.kind == Some(Kind::Event);
    if may_alert && m.title.is_none() {
        return Err(err("title", "required when records can be alerts".into()));
    }
    if may_event && m.action.is_none() && m.alert_when.is_none() {
        return Err(err("action", "required when records are events".into()));
    }
    if let Some(s) = &m.severity {
        if s.map.is_some() && s.scale.is_some() {
            return Err(err(
                "severity",
                "give either `map` or `scale`, not both".into(),
            ));
        }
        if let Some(map) = &s.map
            && let Some((k, v)) = map.iter().find(|(_, v)| **v > 100)
        {
            return Err(err("severity", format!("score {v} for {k:?} is above 100")));
        }
        if let Some(Scale { from: [lo, hi] }) = s.scale
            && !(lo.is_finite() && hi.is_finite() && lo < hi)
        {
            return Err(err(
                "severity",
                format!("scale.from must be [low, high] with low < high, got [{lo}, {hi}]"),
            ));
        }
    }
    let paths = [
        Some(&m.time.field),
        m.id.as_ref(),
        m.title.as_ref(),
        m.description.as_ref(),
        m.action.as_ref(),
        m.outcome.as_ref(),
    ];
    if paths.iter().flatten().any(|p| p.trim().is_empty())
        || m.entities.iter().any(|e| e.field.trim().is_empty())
    {
        return Err(MappingError {
            message: "a field path is empty".into(),
            line: None,
            column: None,
        });
    }
    Ok(())
}

/// The 1-based line where a top-level key is written, for errors found after parsing.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

impl Decoder for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        let m = &self.mapping;
        let (time, time_original) = read_time(&record, &m.time)?;
        let is_alert = match (&m.alert_when, m.kind) {
            (Some(w), _) => text_at(&record, &w.field).is_some_and(|v| w.values.contains(&v)),
            (None, kind) => kind != Some(Kind::Event),
        };
        let source_id = m.id.as_deref().and_then(|p| text_at(&record, p));
        let entities = entities(&record, &m.entities).into_vec();
        let product = m.name.clone();

        if !is_alert {
            let action_path = m
                .action
                .as_deref()
                .or(m.alert_when.as_ref().map(|w| w.field.as_str()))
                .unwrap_or("action");
            let action =
                text_at(&record, action_path).ok_or_else(|| required(&record, action_path))?;
            return Ok(vec![Decoded::Event(Event {
                id: String::new(),
                decoder: self.name().into(),
                product,
                source_id,
                time,
                time_original,
                action,
                outcome: m.outcome.as_deref().and_then(|p| text_at(&record, p)),
                entities,
                original: record,
                origin: None,
            })]);
        }

        let title_path = m.title.as_deref().unwrap_or("title");
        let title = text_at(&record, title_path).ok_or_else(|| required(&record, title_path))?;
        let severity = match &m.severity {
            Some(spec) => read_severity(&record, spec)?,
            None => Severity::unknown(),
        };
        let rule = m.rule.as_ref().and_then(|r| {
            Rule::new(
                r.id.as_deref().and_then(|p| text_at(&record, p)),
                r.name.as_deref().and_then(|p| text_at(&record, p)),
            )
        });
        let mut techniques: Vec<TechniqueId> = Vec::new();
        for p in &m.techniques {
            for s in strings_at(&record, p) {
                let found = TechniqueId::parse(&s)
                    .map(|t| vec![t])
                    .unwrap_or_else(|| TechniqueId::find_all(&s));
                for t in found {
                    if !techniques.contains(&t) {
                        techniques.push(t);
                    }
                }
            }
        }
        let mut tactics: Vec<String> = Vec::new();
        for p in &m.tactics {
            for s in strings_at(&record, p) {
                if !tactics.contains(&s) {
                    tactics.push(s);
                }
            }
        }
        Ok(vec![Decoded::Alert(Alert {
            id: String::new(),
            decoder: self.name().into(),
            product,
            source_id,
            time,
            time_original,
            title,
            description: m.description.as_deref().and_then(|p| text_at(&record, p)),
            severity,
            rule,
            entities,
            techniques,
            tactics,
            original: record,
            origin: None,
        })])
    }
}

/// The error for a required mapped field: missing, or of a type that has no text.
fn required(record: &Value, path: &str) -> DecodeError {
    match get(record, path) {
        None | Some(Value::Null) => DecodeError::missing(path),
        Some(Value::String(_)) => DecodeError::new(path, "empty"),
        Some(other) => DecodeError::new(
            path,
            format!(
                "expected a string or number, found {}",
                fields::type_name(other)
            ),
        ),
    }
}

fn read_time(record: &Value, spec: &TimeSpec) -> Result<(Timestamp, String), DecodeError> {
    let path = spec.field.as_str();
    let v = match get(record, path) {
        None | Some(Value::Null) => return Err(DecodeError::missing(path)),
        Some(v) => v,
    };
    let bad = |why: String| DecodeError::new(path, why);
    match &spec.format {
        TimeFormat::Auto => fields::req_time(record, path),
        TimeFormat::Rfc3339 => {
            let s = v.as_str().ok_or_else(|| {
                bad(format!(
                    "expected an RFC 3339 time, found {}",
                    fields::type_name(v)
                ))
            })?;
            time::parse(s)
                .map(|t| (t, s.to_string()))
                .map_err(|e| bad(e.to_string()))
        }
        TimeFormat::UnixSeconds | TimeFormat::UnixMillis => {
            let (n, original) = match v {
                Value::Number(n) => (n.as_f64(), n.to_string()),
                Value::String(s) => (s.trim().parse::<f64>().ok(), s.clone()),
                _ => (None, String::new()),
            };
            let n = n.ok_or_else(|| {
                bad(format!(
                    "expected an epoch number, found {}",
                    fields::type_name(v)
                ))
            })?;
            let t = if spec.format == TimeFormat::UnixSeconds {
                time::from_unix_seconds(n)
            } else if n.is_finite() && n.abs() < 9.0e15 {
                time::from_unix_millis(n.round() as i64)
            } else {
                return Err(bad(format!("{original} is not a time in milliseconds")));
            };
            t.map(|t| (t, original)).map_err(|e| bad(e.to_string()))
        }
        TimeFormat::Pattern(p) => {
            let s = v.as_str().ok_or_else(|| {
                bad(format!(
                    "expected a time as text, found {}",
                    fields::type_name(v)
                ))
            })?;
            parse_pattern(p, s)
                .map(|t| (t, s.to_string()))
                .map_err(|e| bad(format!("does not match {p:?}: {e}")))
        }
    }
}

/// strptime; a time without offset or zone is UTC, as [`time::parse`] takes it.
fn parse_pattern(pattern: &str, text: &str) -> Result<Timestamp, jiff::Error> {
    let bdt = jiff::fmt::strtime::parse(pattern, text.trim())?;
    bdt.to_timestamp()
        .or_else(|_| bdt.to_zoned().map(|z| z.timestamp()))
        .or_else(|_| {
            bdt.to_datetime()?
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| z.timestamp())
        })
}

fn read_severity(record: &Value, spec: &SeveritySpec) -> Result<Severity, DecodeError> {
    let path = spec.field.as_str();
    let v = match get(record, path) {
        None | Some(Value::Null) => return Ok(Severity::unknown()),
        Some(v) => v,
    };
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(DecodeError::new(
                path,
                format!("expected a severity, found {}", fields::type_name(other)),
            ));
        }
    };
    if text.is_empty() {
        return Ok(Severity::unknown());
    }
    if let Some(map) = &spec.map {
        let score = map.get(&text).or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&text))
                .map(|(_, v)| v)
        });
        return match score {
            Some(s) => Ok(Severity::from_score(*s, text)),
            None => Err(DecodeError::new(
                path,
                format!("{text:?} is not in the mapping's severity map"),
            )),
        };
    }
    let number: Option<f64> = text.parse().ok();
    if let Some(Scale { from: [lo, hi] }) = spec.scale {
        let n = number.ok_or_else(|| DecodeError::new(path, format!("not a number: {text:?}")))?;
        if !(lo..=hi).contains(&n) {
            return Err(DecodeError::new(
                path,
                format!("{text} is outside the mapped range {lo}–{hi}"),
            ));
        }
        let score = ((n - lo) / (hi - lo) * 100.0).round() as u32;
        return Ok(Severity::from_score(score, text));
    }
    match number {
        Some(n) if (0.0..=100.0).contains(&n) => Ok(Severity::from_score(n.round() as u32, text)),
        Some(_) => Err(DecodeError::new(
            path,
            format!("{text} is outside 0–100 (add a `map` or `scale` to the mapping)"),
        )),
        None => match SeverityLabel::parse(&text) {
            Some(l) => Ok(Severity::from_label(l, text)),
            None => Err(DecodeError::new(
                path,
                format!("unknown severity {text:?} (add a `map` to the mapping)"),
            )),
        },
    }
}

/// The texts at a path: one string or number, or those of an array.
fn strings_at(record: &Value, path: &str) -> Vec<String> {
    match get(record, path) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(_) => text_at(record, path).into_iter().collect(),
        None => Vec::new(),
    }
}

fn entities(record: &Value, specs: &[EntitySpec]) -> Entities {
    let mut e = Entities::new();
    for spec in specs {
        for v in strings_at(record, &spec.field) {
            e.add(spec.kind, spec.role, Some(&v));
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suricata::Suricata;
    use crate::testkit::*;
    use riposte_domain::EntityKind::{Domain, Host, Ip, User};
    use riposte_domain::Role::{Actor, Related, Source, Target};
    use serde_json::json;

    const EXAMPLE: &str = include_str!("../../../docs/mappings/example.yaml");
    const EVE: &str = "alerts/suricata/eve/test-eve-small.log";
    const OKTA: &str = "alerts/okta/system/test-okta-system-events.log";

    #[test]
    fn example_mapping_reads_suricata_eve_record_by_record() {
        let g = Generic::from_yaml(EXAMPLE).unwrap();
        assert_eq!(g.product(), "Suricata (mapped)");
        let out = decode_file(&g, EVE);
        let reference = decode_file(&Suricata, EVE);
        assert_eq!(out.len(), 12);
        let kinds: Vec<String> = out
            .iter()
            .map(|d| match d {
                Decoded::Alert(_) => "ALERT".to_string(),
                Decoded::Event(e) => e.action.clone(),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "ssh", "ALERT", "http", "fileinfo", "dns", "stats", "tls", "flow", "http", "tls",
                "http", "tls"
            ]
        );
        // Record by record, the mapping agrees with the hand-written Suricata decoder on
        // time, kind, addresses and domains.
        for (i, (g, s)) in out.iter().zip(&reference).enumerate() {
            assert_eq!(g.time(), s.time(), "record {i}");
            assert_eq!(g.kind(), s.kind(), "record {i}");
            assert_eq!(g.decoder(), "generic");
            for (kind, role) in [(Ip, Source), (Ip, Target), (Host, Related)] {
                assert_eq!(
                    ents(g, kind, role),
                    ents(s, kind, role),
                    "record {i} {kind:?}"
                );
            }
            assert_eq!(g.original(), s.original(), "record {i}");
        }
        let a = alert(&out[1]);
        assert_eq!(a.product, "Suricata (mapped)");
        assert_eq!(
            a.title,
            "ET POLICY Observed IP Lookup Domain (l2 .io in TLS SNI)"
        );
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(rule.id.as_deref(), Some("2024833"));
        assert_eq!((a.severity.score, a.severity.original.as_str()), (75, "1"));
        assert_eq!(a.time.to_string(), "2018-07-05T19:07:20.910626Z");
        assert_eq!(a.time_original, "2018-07-05T15:07:20.910626-0400");
        assert_eq!(
            a.description.as_deref(),
            Some("Potential Corporate Privacy Violation")
        );
        assert_eq!(ents(&out[1], Ip, Source), ["192.168.86.85"]);
        assert_eq!(ents(&out[1], Ip, Target), ["192.168.156.70"]);
        assert_eq!(ents(&out[1], Domain, Target), ["l2.io"]);
        assert_eq!(
            event(&out[0]).time.to_string(),
            "2018-07-05T19:01:09.82036Z"
        );
        assert_eq!(ents(&out[4], Domain, Target).len(), 1);
        assert!(out.iter().all(|d| d.source_id().is_none()));
    }

    #[test]
    fn okta_events_through_an_inline_mapping() {
        let g = Generic::from_yaml(
            "name: Okta (mapped)\n\
             kind: event\n\
             id: uuid\n\
             time: published\n\
             action: eventType\n\
             outcome: outcome.result\n\
             entities:\n  \
               - { type: user, role: actor, field: actor.alternateId }\n  \
               - { type: ip, role: source, field: client.ipAddress }\n",
        )
        .unwrap();
        let out = decode_file(&g, OKTA);
        let records = corpus_records(OKTA, crate::InputKind::Json);
        assert_eq!(out.len(), records.len());
        for (i, (d, r)) in out.iter().zip(&records).enumerate() {
            let e = event(d);
            assert_eq!(e.action, r["eventType"].as_str().unwrap(), "record {i}");
            assert_eq!(
                e.time_original,
                r["published"].as_str().unwrap(),
                "record {i}"
            );
            assert_eq!(e.source_id.as_deref(), r["uuid"].as_str(), "record {i}");
            assert_eq!(
                e.outcome.as_deref(),
                r["outcome"]["result"].as_str(),
                "record {i}"
            );
        }
        let e = event(&out[0]);
        assert_eq!(e.action, "user.session.end");
        assert_eq!(e.outcome.as_deref(), Some("SUCCESS"));
        assert_eq!(e.time.to_string(), "2020-02-14T22:18:51.843Z");
        assert_eq!(ents(&out[0], User, Actor), ["username@elastic.co"]);
        assert_eq!(ents(&out[0], Ip, Source), ["175.16.199.1"]);
    }

    #[test]
    fn acme_example_from_the_doc_comment() {
        let g = Generic::from_yaml(
            r#"
name: Acme EDR
alert_when: { field: category, values: [detection] }
id: detection.uuid
time: { field: ts, format: unix_ms }
title: detection.name
action: category
severity: { field: sev, scale: { from: [0, 10] } }
rule: { id: rule.id, name: rule.name }
techniques: [mitre.techniques]
tactics: [mitre.tactics]
entities:
  - { type: host, role: target, field: device.hostname }
  - { type: ip, role: source, field: net.src }
  - { type: file_hash, role: related, field: file.sha256 }
"#,
        )
        .unwrap();
        let rec = json!({
            "category": "detection", "ts": 1704164645678_i64,
            "detection": {"uuid": "d-1", "name": "Credential dumping"},
            "sev": 8.5, "rule": {"id": 42, "name": "LSASS access"},
            "mitre": {"techniques": ["T1003.001", "attack.t1003"], "tactics": "Credential Access"},
            "device.hostname": "WS-042.corp.example", "net": {"src": "10.0.0.9"},
            "file": {"sha256": ["AB".repeat(32)]}
        });
        let mut d = g.decode(rec.clone()).unwrap().remove(0);
        riposte_domain::Canonicaliser::default().apply_all(d.entities_mut());
        let a = alert(&d);
        assert_eq!(a.product, "Acme EDR");
        assert_eq!(a.source_id.as_deref(), Some("d-1"));
        assert_eq!(a.time.to_string(), "2024-01-02T03:04:05.678Z");
        assert_eq!(a.time_original, "1704164645678");
        assert_eq!(
            (a.severity.score, a.severity.original.as_str()),
            (85, "8.5")
        );
        assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("42"));
        let ids: Vec<&str> = a.techniques.iter().map(|t| t.as_str()).collect();
        assert_eq!(ids, ["T1003.001", "T1003"]);
        assert_eq!(a.tactics, ["Credential Access"]);
        assert_eq!(ents(&d, Host, Target), ["ws-042"]);
        assert_eq!(ents(&d, Ip, Source), ["10.0.0.9"]);
        assert_eq!(
            ents_any(&d, riposte_domain::EntityKind::FileHash),
            ["ab".repeat(32)]
        );

        // Another category is an event whose action is that category.
        let mut ev = rec;
        ev["category"] = json!("telemetry");
        let d = g.decode(ev).unwrap().remove(0);
        assert_eq!(event(&d).action, "telemetry");
    }

    #[test]
    fn time_formats() {
        let with = |fmt: &str, v: Value| {
            let g = Generic::from_yaml(&format!(
                "name: x\nkind: event\naction: a\ntime: {{ field: t, format: {fmt} }}\n"
            ))
            .unwrap();
            g.decode(json!({"a": "x", "t": v}))
                .map(|d| d[0].time().to_string())
        };
        assert_eq!(
            with("rfc3339", json!("2024-01-02T03:04:05+01:00")).unwrap(),
            "2024-01-02T02:04:05Z"
        );
        assert_eq!(
            with("unix_s", json!(1704164645.5)).unwrap(),
            "2024-01-02T03:04:05.5Z"
        );
        assert_eq!(
            with("unix_s", json!("1704164645")).unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            with("unix_ms", json!(1704164645678_i64)).unwrap(),
            "2024-01-02T03:04:05.678Z"
        );
        assert_eq!(
            with("'%d/%m/%Y %H:%M:%S'", json!("02/01/2024 03:04:05")).unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            with(
                "'%d/%b/%Y:%H:%M:%S %z'",
                json!("02/Jan/2024:03:04:05 -0500")
            )
            .unwrap(),
            "2024-01-02T08:04:05Z"
        );
        assert_eq!(
            with("auto", json!(1704164645)).unwrap(),
            "2024-01-02T03:04:05Z"
        );
        let e = with("'%d/%m/%Y'", json!("2024-01-02")).unwrap_err();
        assert_eq!(e.field, "t");
        assert_eq!(with("rfc3339", json!(5)).unwrap_err().field, "t");
        assert_eq!(with("unix_ms", json!("soon")).unwrap_err().field, "t");
    }

    #[test]
    fn bad_mappings_are_refused_with_position() {
        let base = "name: x\ntime: ts\ntitle: t\n";
        let e = Generic::from_yaml(&format!(
            "{base}entities:\n  - {{ type: hostname, role: target, field: h }}\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("hostname"), "{e}");
        let e = Generic::from_yaml(&format!(
            "{base}entities:\n  - {{ type: host, role: victim, field: h }}\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("victim"), "{e}");
        let e = Generic::from_yaml("name: x\ntitle: t\ntime: { field: ts, format: julian }\n")
            .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("unknown time format \"julian\""), "{e}");
        assert!(!e.message.contains("at line"), "{e}");
        let e = Generic::from_yaml(&format!("{base}colour: blue\n")).unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("colour"), "{e}");
        let e = Generic::from_yaml("time: ts\ntitle: t\n").unwrap_err();
        assert!(e.message.contains("name"), "{e}");
        let e = Generic::from_yaml("name: x\ntime: ts\n").unwrap_err();
        assert!(e.message.starts_with("title:"), "{e}");
        let e = Generic::from_yaml("name: x\nkind: event\ntime: ts\n").unwrap_err();
        assert!(e.message.starts_with("action:"), "{e}");
        let e = Generic::from_yaml(&format!(
            "{base}severity: {{ field: s, map: {{ low: 30, high: 300 }} }}\n"
        ))
        .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().starts_with("mapping line 4"), "{e}");
        let e = Generic::from_yaml(&format!(
            "{base}severity: {{ field: s, scale: {{ from: [10, 0] }} }}\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("low < high"), "{e}");
        let e = Generic::from_yaml(
            "name: x\nkind: alert\nalert_when: { field: k, values: [a] }\ntime: ts\ntitle: t\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(Generic::from_yaml(": : :\n- [").is_err());
    }

    #[test]
    fn bad_records_name_the_mapped_field() {
        let g = Generic::from_yaml(EXAMPLE).unwrap();
        let e = g
            .decode(json!({"event_type": "alert", "alert": {"signature": "x"}}))
            .unwrap_err();
        assert_eq!(e.to_string(), "field `timestamp`: missing");
        let e = g
            .decode(json!({"event_type": "alert", "timestamp": "2020-01-01", "alert": {"signature": "x"}}))
            .unwrap_err();
        assert_eq!(e.field, "timestamp");
        let ok_time = "2018-07-05T15:07:20.910626-0400";
        let e = g
            .decode(json!({"event_type": "alert", "timestamp": ok_time, "alert": {}}))
            .unwrap_err();
        assert_eq!(e.to_string(), "field `alert.signature`: missing");
        let e = g
            .decode(json!({"event_type": "alert", "timestamp": ok_time, "alert": {"signature": {"a": 1}}}))
            .unwrap_err();
        assert_eq!(e.field, "alert.signature");
        let e = g
            .decode(json!({"event_type": "alert", "timestamp": ok_time, "alert": {"signature": "x", "severity": 9}}))
            .unwrap_err();
        assert_eq!(e.field, "alert.severity");
        assert!(
            e.reason
                .contains("\"9\" is not in the mapping's severity map")
        );
        let e = g
            .decode(json!({"event_type": "alert", "timestamp": ok_time, "alert": {"signature": "x", "severity": [1]}}))
            .unwrap_err();
        assert_eq!(e.field, "alert.severity");
        assert_eq!(g.decode(json!([1])).unwrap_err().field, "$");
        assert!(!g.recognises(&json!({"event_type": "alert"})));
    }
}
