//! Suricata EVE JSON (`eve.json`): `alert` records become alerts, every other `event_type`
//! (dns, http, tls, flow, fileinfo, ssh, …) becomes an event.
//!
//! Time: `timestamp`, ISO 8601 with a `-0400`-style offset.
//! Severity: Suricata's `alert.severity` is a priority, 1 highest: 1 → 75 (high),
//! 2 → 50 (medium), 3 → 30 (low), 4 and above → 10 (info). The original number is kept.
//! Ids: EVE has no record id (`flow_id` is shared by every record of a flow), so records are
//! told apart by content.
//! ATT&CK: ET Open rules carry `alert.metadata.mitre_technique_id` and `mitre_tactic_name`.

use riposte_domain::{Alert, Decoded, EntityKind, Event, Role, Rule, Severity, TechniqueId};
use serde_json::Value;

use crate::fields::{self, Entities, get, req_str, req_time, str_at, text_at};
use crate::{DecodeError, Decoder};

pub struct Suricata;

const PRODUCT: &str = "Suricata";

impl Decoder for Suricata {
    fn name(&self) -> &'static str {
        "suricata"
    }

    fn recognises(&self, r: &Value) -> bool {
        str_at(r, "event_type").is_some()
            && str_at(r, "timestamp").is_some()
            && (get(r, "flow_id").is_some()
                || get(r, "src_ip").is_some()
                || get(r, "stats").is_some())
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        let event_type = req_str(&record, "event_type")?.to_string();
        let (time, time_original) = req_time(&record, "timestamp")?;
        let entities = entities(&record).into_vec();

        if event_type != "alert" {
            return Ok(vec![Decoded::Event(Event {
                id: String::new(),
                decoder: self.name().into(),
                product: PRODUCT.into(),
                source_id: None,
                time,
                time_original,
                action: event_type,
                outcome: None,
                entities,
                original: record,
                origin: None,
            })]);
        }

        let title = req_str(&record, "alert.signature")?.to_string();
        let severity = match get(&record, "alert.severity") {
            Some(Value::Number(n)) => {
                let p = n
                    .as_u64()
                    .ok_or_else(|| DecodeError::new("alert.severity", "expected a whole number"))?;
                let score = match p {
                    0 | 1 => 75,
                    2 => 50,
                    3 => 30,
                    _ => 10,
                };
                Severity::from_score(score, p.to_string())
            }
            None | Some(Value::Null) => Severity::unknown(),
            Some(other) => {
                return Err(DecodeError::new(
                    "alert.severity",
                    format!("expected a number, found {}", fields::type_name(other)),
                ));
            }
        };
        let rule = Rule::new(text_at(&record, "alert.signature_id"), Some(title.clone()));
        let mut techniques: Vec<TechniqueId> = Vec::new();
        if let Some(Value::Array(ids)) = get(&record, "alert.metadata.mitre_technique_id") {
            techniques.extend(
                ids.iter()
                    .filter_map(Value::as_str)
                    .filter_map(TechniqueId::parse),
            );
        }
        let mut tactics: Vec<String> = Vec::new();
        if let Some(Value::Array(names)) = get(&record, "alert.metadata.mitre_tactic_name") {
            tactics.extend(names.iter().filter_map(Value::as_str).map(str::to_string));
        }
        Ok(vec![Decoded::Alert(Alert {
            id: String::new(),
            decoder: self.name().into(),
            product: PRODUCT.into(),
            source_id: None,
            time,
            time_original,
            title,
            description: str_at(&record, "alert.category").map(str::to_string),
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

fn entities(r: &Value) -> Entities {
    let mut e = Entities::new();
    e.add_at(EntityKind::Ip, Role::Source, r, "src_ip")
        .add_at(EntityKind::Ip, Role::Target, r, "dest_ip")
        .add_at(EntityKind::Host, Role::Related, r, "host")
        .add_at(EntityKind::Domain, Role::Target, r, "tls.sni")
        .add_at(EntityKind::Domain, Role::Target, r, "dns.rrname")
        .add_at(EntityKind::Domain, Role::Target, r, "dns.query.0.rrname");
    if let Some(host) = str_at(r, "http.hostname") {
        if riposte_domain::entity::canonical_ip(host).is_none() {
            e.add(EntityKind::Domain, Role::Target, Some(host));
        }
        if let Some(path) = str_at(r, "http.url") {
            let url = if path.starts_with('/') {
                format!("http://{host}{path}")
            } else {
                path.to_string()
            };
            e.add(EntityKind::Url, Role::Target, Some(&url));
        }
    }
    for algo in ["md5", "sha1", "sha256"] {
        e.add_at(
            EntityKind::FileHash,
            Role::Related,
            r,
            &format!("fileinfo.{algo}"),
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    const FILE: &str = "alerts/suricata/eve/test-eve-small.log";

    #[test]
    fn corpus_records_decode_field_by_field() {
        let out = decode_file(&Suricata, FILE);
        assert_eq!(out.len(), 12, "one output per EVE line");
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

        let a = alert(&out[1]);
        assert_eq!(
            a.title,
            "ET POLICY Observed IP Lookup Domain (l2 .io in TLS SNI)"
        );
        assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("2024833"));
        assert_eq!(a.severity.score, 75);
        assert_eq!(a.severity.original, "1");
        assert_eq!(a.time.to_string(), "2018-07-05T19:07:20.910626Z");
        assert_eq!(a.time_original, "2018-07-05T15:07:20.910626-0400");
        assert_eq!(
            ents(&out[1], EntityKind::Ip, Role::Source),
            ["192.168.86.85"]
        );
        assert_eq!(
            ents(&out[1], EntityKind::Ip, Role::Target),
            ["192.168.156.70"]
        );
        assert_eq!(ents(&out[1], EntityKind::Domain, Role::Target), ["l2.io"]);
        assert_eq!(
            a.description.as_deref(),
            Some("Potential Corporate Privacy Violation")
        );
        assert!(a.techniques.is_empty());

        let ssh = event(&out[0]);
        assert_eq!(ssh.time.to_string(), "2018-07-05T19:01:09.82036Z");
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Target),
            ["192.168.253.112"]
        );

        let http = &out[2];
        assert_eq!(
            ents(http, EntityKind::Url, Role::Target),
            ["http://192.168.86.28/dd.xml"]
        );
        // IPv6 written in full form is canonicalised.
        assert_eq!(
            ents(&out[7], EntityKind::Ip, Role::Source),
            ["fe80::fada:cff:fedc:87f1"]
        );
        assert_eq!(ents(&out[4], EntityKind::Domain, Role::Target).len(), 1);
        // Original kept verbatim.
        assert_eq!(out[1].original()["alert"]["gid"], 1);
    }

    #[test]
    fn recognises_eve_only() {
        for r in corpus_records(FILE, crate::InputKind::Json) {
            assert!(Suricata.recognises(&r));
        }
        assert!(!Suricata.recognises(&serde_json::json!({"eventType": "x"})));
    }

    #[test]
    fn bad_records_name_the_field() {
        let e = Suricata
            .decode(serde_json::json!({"event_type": "alert", "alert": {"signature": "x"}}))
            .unwrap_err();
        assert_eq!(e.field, "timestamp");
        let e = Suricata
            .decode(serde_json::json!({"event_type": "alert", "timestamp": "2020-01-01T00:00:00Z", "alert": {}}))
            .unwrap_err();
        assert_eq!(e.to_string(), "field `alert.signature`: missing");
        let e = Suricata
            .decode(serde_json::json!({"event_type": "alert", "timestamp": "2020-01-01T00:00:00Z", "alert": {"signature": "x", "severity": "hi"}}))
            .unwrap_err();
        assert_eq!(e.field, "alert.severity");
        assert_eq!(
            Suricata.decode(serde_json::json!([1])).unwrap_err().field,
            "$"
        );
        let e = Suricata
            .decode(serde_json::json!({"event_type": "dns", "timestamp": "last tuesday"}))
            .unwrap_err();
        assert_eq!(e.field, "timestamp");
    }
}
