//! Elastic Security detection alerts (the documents of `.alerts-security.alerts-*`): ECS
//! fields copied from the source event plus the `kibana.alert.*` fields the detection engine
//! adds. Every record is an alert. Documents arrive with dotted keys (`"kibana.alert.rule.name"`),
//! nested objects, or both mixed, and also as a search hit (`_id` + `_source`, or `_id` +
//! `fields`, where every value is an array); all read the same.
//!
//! Time: `kibana.alert.original_time` (when the source event happened), else `@timestamp`
//! (when the alert was written); ISO 8601 in UTC.
//! Severity: `kibana.alert.risk_score` is already 0–100 and is preferred (the number as
//! written is kept). Without it, `kibana.alert.severity` maps with Elastic's own default risk
//! scores: low → 21, medium → 47, high → 73, critical → 99.
//! Ids: `kibana.alert.uuid`, else the hit's `_id`.
//! ATT&CK: `kibana.alert.rule.threat[]`: `tactic.name`, `technique[].id` and
//! `technique[].subtechnique[].id`.
//! Legacy 7.x `signal.*` documents are read through the same paths' `signal.rule.*` forms.

use riposte_domain::{Alert, Decoded, EntityKind, Role, Rule, Severity, TechniqueId};
use serde_json::Value;

use crate::fields::{self, Entities, get};
use crate::{DecodeError, Decoder};

pub struct Elastic;

const PRODUCT: &str = "Elastic Security";

impl Decoder for Elastic {
    fn name(&self) -> &'static str {
        "elastic"
    }

    fn recognises(&self, r: &Value) -> bool {
        let (doc, _) = unwrap_hit(r);
        one_text(doc, "kibana.alert.rule.name").is_some()
            || one_text(doc, "kibana.alert.rule.uuid").is_some()
            || one_text(doc, "signal.rule.name").is_some()
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        let (doc, hit_id) = unwrap_hit(&record);
        let prefix = if std::ptr::eq(doc, &record) {
            ""
        } else if record.get("_source").is_some() {
            "_source."
        } else {
            "fields."
        };
        let named = |e: DecodeError| DecodeError::new(format!("{prefix}{}", e.field), e.reason);

        let title = req_one(doc, &["kibana.alert.rule.name", "signal.rule.name"]).map_err(named)?;
        let (time, time_original) = time_of(doc).map_err(named)?;
        let severity = severity_of(doc).map_err(named)?;
        let rule = Rule::new(
            first_one(
                doc,
                &[
                    "kibana.alert.rule.rule_id",
                    "kibana.alert.rule.uuid",
                    "signal.rule.rule_id",
                    "signal.rule.id",
                ],
            ),
            Some(title.clone()),
        );
        let (techniques, tactics) = attack_of(doc);
        let source_id = one_text(doc, "kibana.alert.uuid").or(hit_id);
        let description = first_one(
            doc,
            &[
                "kibana.alert.reason",
                "kibana.alert.rule.description",
                "signal.reason",
                "signal.rule.description",
            ],
        );
        Ok(vec![Decoded::Alert(Alert {
            id: String::new(),
            decoder: self.name().into(),
            product: PRODUCT.into(),
            source_id,
            time,
            time_original,
            title,
            description,
            severity,
            rule,
            entities: entities(doc).into_vec(),
            techniques,
            tactics,
            original: record.clone(),
            origin: None,
        })])
    }
}

/// The alert document inside a search hit, and the hit's `_id`.
fn unwrap_hit(r: &Value) -> (&Value, Option<String>) {
    let id = r.get("_id").and_then(Value::as_str).map(str::to_string);
    for key in ["_source", "fields"] {
        if let Some(inner) = r.get(key)
            && inner.is_object()
        {
            return (inner, id);
        }
    }
    (r, id)
}

/// A string or number at `path`, or the first of a one-or-more element array there (the
/// search API's `fields` form).
fn one_text(v: &Value, path: &str) -> Option<String> {
    match get(v, path)? {
        Value::Array(items) => items.iter().find_map(scalar_text),
        other => scalar_text(other),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn first_one(v: &Value, paths: &[&str]) -> Option<String> {
    paths.iter().find_map(|p| one_text(v, p))
}

fn req_one(v: &Value, paths: &[&str]) -> Result<String, DecodeError> {
    for p in paths {
        match get(v, p) {
            None | Some(Value::Null) => continue,
            Some(x) => {
                return one_text(v, p).ok_or_else(|| {
                    DecodeError::new(
                        *p,
                        format!("expected a string, found {}", fields::type_name(x)),
                    )
                });
            }
        }
    }
    Err(DecodeError::missing(paths[0]))
}

fn time_of(doc: &Value) -> Result<(riposte_domain::Timestamp, String), DecodeError> {
    for p in [
        "kibana.alert.original_time",
        "signal.original_time",
        "@timestamp",
    ] {
        match get(doc, p) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(items)) => {
                let Some(first) = items.first() else { continue };
                let one = serde_json::json!({ "t": first });
                return fields::req_time(&one, "t").map_err(|e| DecodeError::new(p, e.reason));
            }
            Some(_) => return fields::req_time(doc, p),
        }
    }
    Err(DecodeError::missing("@timestamp"))
}

fn severity_of(doc: &Value) -> Result<Severity, DecodeError> {
    for p in ["kibana.alert.risk_score", "signal.rule.risk_score"] {
        let Some(text) = one_text(doc, p) else {
            if let Some(v) = get(doc, p).filter(|v| !v.is_null()) {
                return Err(DecodeError::new(
                    p,
                    format!("expected a number, found {}", fields::type_name(v)),
                ));
            }
            continue;
        };
        let score: f64 = text
            .trim()
            .parse()
            .map_err(|_| DecodeError::new(p, format!("not a number: {text:?}")))?;
        if !(0.0..=100.0).contains(&score) {
            return Err(DecodeError::new(p, format!("{text} is outside 0–100")));
        }
        return Ok(Severity::from_score(score.round() as u32, text));
    }
    for p in ["kibana.alert.severity", "signal.rule.severity"] {
        if let Some(text) = one_text(doc, p) {
            let score = match text.trim().to_ascii_lowercase().as_str() {
                "low" => 21,
                "medium" => 47,
                "high" => 73,
                "critical" => 99,
                _ => {
                    return Err(DecodeError::new(
                        p,
                        format!("unknown severity {text:?} (low, medium, high, critical)"),
                    ));
                }
            };
            return Ok(Severity::from_score(score, text));
        }
    }
    Ok(Severity::unknown())
}

/// Techniques and tactics from `threat[]`, whether nested objects or the flattened
/// `kibana.alert.rule.threat.technique.id` arrays of the `fields` form.
fn attack_of(doc: &Value) -> (Vec<TechniqueId>, Vec<String>) {
    let mut techniques: Vec<TechniqueId> = Vec::new();
    let mut tactics: Vec<String> = Vec::new();
    let mut technique = |s: &str| {
        if let Some(t) = TechniqueId::parse(s)
            && !techniques.contains(&t)
        {
            techniques.push(t);
        }
    };
    let mut tactic = |s: &str| {
        if !s.trim().is_empty() && !tactics.iter().any(|t| t == s) {
            tactics.push(s.to_string());
        }
    };
    for base in ["kibana.alert.rule.threat", "signal.rule.threat"] {
        match get(doc, base) {
            Some(Value::Array(threats)) => {
                for t in threats {
                    for name in strings(get(t, "tactic.name")) {
                        tactic(name);
                    }
                    for tech in items(get(t, "technique")) {
                        for id in strings(get(tech, "id")) {
                            technique(id);
                        }
                        for sub in items(get(tech, "subtechnique")) {
                            for id in strings(get(sub, "id")) {
                                technique(id);
                            }
                        }
                    }
                }
            }
            _ => {
                for id in strings(get(doc, &format!("{base}.technique.id"))) {
                    technique(id);
                }
                for id in strings(get(doc, &format!("{base}.technique.subtechnique.id"))) {
                    technique(id);
                }
                for name in strings(get(doc, &format!("{base}.tactic.name"))) {
                    tactic(name);
                }
            }
        }
    }
    (techniques, tactics)
}

/// The strings at a value: one string, or those of an array.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The objects at a value: one object, or those of an array.
fn items(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => Vec::new(),
    }
}

fn entities(d: &Value) -> Entities {
    use EntityKind::*;
    let mut e = Entities::new();
    for (kind, role, path) in [
        (Host, Role::Target, "host.name"),
        (Ip, Role::Target, "host.ip"),
        (User, Role::Actor, "user.name"),
        (Email, Role::Actor, "user.email"),
        (User, Role::Target, "user.target.name"),
        (Ip, Role::Source, "source.ip"),
        (Domain, Role::Source, "source.domain"),
        (Ip, Role::Target, "destination.ip"),
        (Domain, Role::Target, "destination.domain"),
        (Domain, Role::Target, "dns.question.name"),
        (Url, Role::Target, "url.full"),
        (Process, Role::Actor, "process.executable"),
        (Process, Role::Related, "process.parent.executable"),
        (FileHash, Role::Related, "process.hash.md5"),
        (FileHash, Role::Related, "process.hash.sha1"),
        (FileHash, Role::Related, "process.hash.sha256"),
        (FileHash, Role::Related, "file.hash.md5"),
        (FileHash, Role::Related, "file.hash.sha1"),
        (FileHash, Role::Related, "file.hash.sha256"),
        (CloudResource, Role::Target, "cloud.instance.id"),
    ] {
        e.add_all_at(kind, role, d, path);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use riposte_domain::Canonicaliser;
    use riposte_domain::EntityKind::*;
    use riposte_domain::Role::*;
    use serde_json::json;

    // The corpus holds no Elastic Security alert document. These are built from Elastic's
    // published alert schema ("Alert schema", Elastic Security docs: `kibana.alert.*` fields,
    // `@timestamp`, `kibana.alert.original_time`, `kibana.alert.rule.threat` as ECS threat
    // objects with `technique[].subtechnique[]`) and ECS field names.

    /// Dotted keys throughout, as the alerts index's `_source` stores `kibana.alert.*`.
    fn dotted() -> Value {
        json!({
            "@timestamp": "2024-03-05T10:15:30.123Z",
            "kibana.alert.uuid": "2f1c3b7e1a9c4f05a0d5bd1a5b1e0c11",
            "kibana.alert.original_time": "2024-03-05T10:14:58.000Z",
            "kibana.alert.rule.name": "Suspicious PowerShell Encoded Command",
            "kibana.alert.rule.uuid": "b0e6a7d2-3c44-11ee-be56-0242ac120002",
            "kibana.alert.rule.rule_id": "9fbf0e9c-7d9e-4d83-a3b4-4d8f1e0f6b5a",
            "kibana.alert.rule.description": "Identifies encoded PowerShell command lines.",
            "kibana.alert.reason": "process event with process powershell.exe, by alice on WS-042 created high alert Suspicious PowerShell Encoded Command.",
            "kibana.alert.severity": "high",
            "kibana.alert.risk_score": 73,
            "kibana.alert.workflow_status": "open",
            "kibana.alert.rule.threat": [{
                "framework": "MITRE ATT&CK",
                "tactic": {"id": "TA0002", "name": "Execution", "reference": "https://attack.mitre.org/tactics/TA0002/"},
                "technique": [{
                    "id": "T1059", "name": "Command and Scripting Interpreter",
                    "reference": "https://attack.mitre.org/techniques/T1059/",
                    "subtechnique": [{"id": "T1059.001", "name": "PowerShell", "reference": "https://attack.mitre.org/techniques/T1059/001/"}]
                }]
            }],
            "event.kind": "signal",
            "host.name": "WS-042.corp.example",
            "host.ip": ["10.1.2.42", "fe80::1"],
            "user.name": "CORP\\alice",
            "process.executable": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            "process.hash.sha256": "DE96A6E69944335375DC1AC238336066889D9FFC7D73628EF4FE1B1B160AB32C"
        })
    }

    /// Nested objects throughout; severity label only.
    fn nested() -> Value {
        json!({
            "@timestamp": "2024-03-06T08:00:01.500Z",
            "kibana": {"alert": {
                "uuid": "7d1e0c2b9a8f4e3d2c1b0a9f8e7d6c5b",
                "rule": {
                    "name": "Potential SSH Brute Force",
                    "uuid": "c1a2b3c4-0000-4000-8000-000000000001",
                    "rule_id": "1c27fa22-7727-4dd3-81c0-de6da5555feb",
                    "threat": [{
                        "framework": "MITRE ATT&CK",
                        "tactic": {"id": "TA0006", "name": "Credential Access"},
                        "technique": [{"id": "T1110", "name": "Brute Force",
                            "subtechnique": [{"id": "T1110.001", "name": "Password Guessing"}]}]
                    }]
                },
                "severity": "medium"
            }},
            "event": {"kind": "signal"},
            "host": {"name": "bastion-1"},
            "source": {"ip": "203.0.113.77"},
            "destination": {"ip": "10.0.0.5"},
            "user": {"name": "root"}
        })
    }

    /// Mixed, as Kibana writes it: `kibana.alert.*` dotted at the top, ECS nested, wrapped in
    /// a search hit, with no `kibana.alert.uuid` (so `_id` is the id) and no original time.
    fn mixed_hit() -> Value {
        json!({
            "_index": ".internal.alerts-security.alerts-default-000001",
            "_id": "a8b1f0e0c7d64b0fb6c0d2e1f3a4b5c6",
            "_source": {
                "@timestamp": "2024-03-07T12:00:00Z",
                "kibana.alert.rule.name": "Malware Detected",
                "kibana": {"alert": {"rule": {"uuid": "d4e5f6a7-1111-4222-8333-444455556666"}, "risk_score": 99}},
                "kibana.alert.severity": "critical",
                "kibana.alert.rule.threat": [],
                "host": {"name": "srv-db-01", "ip": "10.9.8.7"},
                "file": {"hash": {"md5": "44D88612FEA8A8F36DE82E1278ABB02F", "sha256": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"}},
                "url": {"full": "http://Evil.Example/payload.exe"}
            }
        })
    }

    fn decode(v: Value) -> Decoded {
        let mut out = Elastic.decode(v).unwrap();
        assert_eq!(out.len(), 1);
        let mut d = out.remove(0);
        Canonicaliser::default().apply_all(d.entities_mut());
        d
    }

    #[test]
    fn dotted_alert_decodes() {
        let d = decode(dotted());
        let a = alert(&d);
        assert_eq!(a.product, "Elastic Security");
        assert_eq!(a.title, "Suspicious PowerShell Encoded Command");
        assert_eq!(
            a.source_id.as_deref(),
            Some("2f1c3b7e1a9c4f05a0d5bd1a5b1e0c11")
        );
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(
            rule.id.as_deref(),
            Some("9fbf0e9c-7d9e-4d83-a3b4-4d8f1e0f6b5a")
        );
        assert_eq!(
            rule.name.as_deref(),
            Some("Suspicious PowerShell Encoded Command")
        );
        assert_eq!((a.severity.score, a.severity.original.as_str()), (73, "73"));
        assert_eq!(a.time.to_string(), "2024-03-05T10:14:58Z");
        assert_eq!(a.time_original, "2024-03-05T10:14:58.000Z");
        let ids: Vec<&str> = a.techniques.iter().map(|t| t.as_str()).collect();
        assert_eq!(ids, ["T1059", "T1059.001"]);
        assert_eq!(a.tactics, ["Execution"]);
        assert!(
            a.description
                .as_deref()
                .unwrap()
                .starts_with("process event with process powershell.exe")
        );
        assert_eq!(ents(&d, Host, Target), ["ws-042"]);
        assert_eq!(ents(&d, Ip, Target), ["10.1.2.42", "fe80::1"]);
        assert_eq!(ents(&d, User, Actor), ["corp\\alice"]);
        assert_eq!(
            ents(&d, Process, Actor),
            ["c:\\windows\\system32\\windowspowershell\\v1.0\\powershell.exe"]
        );
        assert_eq!(
            ents(&d, FileHash, Related),
            ["de96a6e69944335375dc1ac238336066889d9ffc7d73628ef4fe1b1b160ab32c"]
        );
    }

    #[test]
    fn nested_alert_decodes() {
        let d = decode(nested());
        let a = alert(&d);
        assert_eq!(a.title, "Potential SSH Brute Force");
        assert_eq!(
            a.source_id.as_deref(),
            Some("7d1e0c2b9a8f4e3d2c1b0a9f8e7d6c5b")
        );
        assert_eq!(
            a.rule.as_ref().unwrap().id.as_deref(),
            Some("1c27fa22-7727-4dd3-81c0-de6da5555feb")
        );
        // No risk score: Elastic's default for "medium".
        assert_eq!(
            (a.severity.score, a.severity.original.as_str()),
            (47, "medium")
        );
        assert_eq!(a.time.to_string(), "2024-03-06T08:00:01.5Z");
        let ids: Vec<&str> = a.techniques.iter().map(|t| t.as_str()).collect();
        assert_eq!(ids, ["T1110", "T1110.001"]);
        assert_eq!(a.tactics, ["Credential Access"]);
        assert_eq!(ents(&d, Host, Target), ["bastion-1"]);
        assert_eq!(ents(&d, Ip, Source), ["203.0.113.77"]);
        assert_eq!(ents(&d, Ip, Target), ["10.0.0.5"]);
        assert_eq!(ents(&d, User, Actor), ["root"]);
    }

    #[test]
    fn mixed_search_hit_decodes() {
        let hit = mixed_hit();
        assert!(Elastic.recognises(&hit));
        let d = decode(hit);
        let a = alert(&d);
        assert_eq!(a.title, "Malware Detected");
        assert_eq!(
            a.source_id.as_deref(),
            Some("a8b1f0e0c7d64b0fb6c0d2e1f3a4b5c6")
        );
        assert_eq!(
            a.rule.as_ref().unwrap().id.as_deref(),
            Some("d4e5f6a7-1111-4222-8333-444455556666")
        );
        assert_eq!(
            (a.severity.score, a.severity.label),
            (99, riposte_domain::SeverityLabel::Critical)
        );
        assert_eq!(a.time_original, "2024-03-07T12:00:00Z");
        assert!(a.techniques.is_empty() && a.tactics.is_empty());
        assert_eq!(ents(&d, Host, Target), ["srv-db-01"]);
        assert_eq!(ents(&d, Ip, Target), ["10.9.8.7"]);
        assert_eq!(
            ents(&d, FileHash, Related),
            [
                "44d88612fea8a8f36de82e1278abb02f",
                "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
            ]
        );
        assert_eq!(ents(&d, Url, Target), ["http://evil.example/payload.exe"]);
        // The original is the whole hit.
        assert_eq!(
            a.original["_index"],
            ".internal.alerts-security.alerts-default-000001"
        );
    }

    #[test]
    fn fields_api_form_decodes() {
        // The search API's `fields` option returns every value as an array, keys dotted.
        let hit = json!({
            "_id": "hit-1",
            "fields": {
                "@timestamp": ["2024-03-08T00:00:00.000Z"],
                "kibana.alert.rule.name": ["Port Scan"],
                "kibana.alert.risk_score": [21],
                "kibana.alert.rule.threat.tactic.name": ["Discovery"],
                "kibana.alert.rule.threat.technique.id": ["T1046"],
                "source.ip": ["198.51.100.9"]
            }
        });
        assert!(Elastic.recognises(&hit));
        let d = decode(hit);
        let a = alert(&d);
        assert_eq!(a.title, "Port Scan");
        assert_eq!(a.severity.score, 21);
        assert_eq!(a.time.to_string(), "2024-03-08T00:00:00Z");
        assert_eq!(a.techniques[0].as_str(), "T1046");
        assert_eq!(a.tactics, ["Discovery"]);
        assert_eq!(ents(&d, Ip, Source), ["198.51.100.9"]);
        assert_eq!(a.source_id.as_deref(), Some("hit-1"));
    }

    #[test]
    fn recognises_elastic_alerts_only() {
        for v in [dotted(), nested(), mixed_hit()] {
            assert!(Elastic.recognises(&v));
        }
        for f in [
            "alerts/suricata/eve/test-eve-small.log",
            "alerts/guardduty/test-guardduty.log",
            "alerts/okta/system/test-okta-system-events.log",
            "alerts/windows/security/test-1102.json",
            "alerts/crowdstrike/alert/test-alert.log",
        ] {
            for r in corpus_records(f, crate::InputKind::Json) {
                assert!(!Elastic.recognises(&r), "{f}");
            }
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        let mut v = dotted();
        let o = v.as_object_mut().unwrap();
        o.remove("@timestamp");
        o.remove("kibana.alert.original_time");
        assert_eq!(Elastic.decode(v).unwrap_err().field, "@timestamp");

        let mut v = dotted();
        v["kibana.alert.original_time"] = json!("yesterday");
        assert_eq!(
            Elastic.decode(v).unwrap_err().field,
            "kibana.alert.original_time"
        );

        let mut v = dotted();
        v["kibana.alert.risk_score"] = json!(150);
        assert_eq!(
            Elastic.decode(v).unwrap_err().field,
            "kibana.alert.risk_score"
        );

        let mut v = nested();
        v["kibana"]["alert"]["severity"] = json!("urgent");
        assert_eq!(
            Elastic.decode(v).unwrap_err().field,
            "kibana.alert.severity"
        );

        let mut v = dotted();
        v["kibana.alert.rule.name"] = json!({"x": 1});
        assert_eq!(
            Elastic.decode(v).unwrap_err().field,
            "kibana.alert.rule.name"
        );

        let mut hit = mixed_hit();
        hit["_source"]
            .as_object_mut()
            .unwrap()
            .remove("kibana.alert.rule.name");
        assert_eq!(
            Elastic.decode(hit).unwrap_err().field,
            "_source.kibana.alert.rule.name"
        );
        assert_eq!(Elastic.decode(json!([1, 2])).unwrap_err().field, "$");
    }
}
