//! Cowrie (SSH/Telnet honeypot): its JSON log (`cowrie.json`), one object per line.
//!
//! Every record has `eventid` (`cowrie.session.connect`, `cowrie.login.failed`, …),
//! `timestamp`, `src_ip`, `session` and `sensor`; the rest depends on the event
//! (`username`/`password`, `input`, `url`/`shasum`/`outfile`, `dst_ip`/`dst_port`).
//!
//! What an attacker *does* on the honeypot becomes an alert: a login (failed or successful),
//! a command, a file downloaded or uploaded, a tunnelled connection. Session bookkeeping
//! (connect, closed, client version, key exchange, terminal size, log closed) becomes an
//! event.
//!
//! Time: `timestamp`, ISO 8601 UTC with microseconds. Severity: a successful login, a command
//! or a file transfer → 80 (high); a failed login or a tunnel request → 60 (medium). The
//! `eventid` is kept as the original. Ids: the product has none per record; content.
//! ATT&CK: logins → T1110 (Brute Force), a successful one also T1078 (Valid Accounts);
//! commands → T1059 (Command and Scripting Interpreter); downloads → T1105 (Ingress Tool
//! Transfer); tunnels → T1090 (Proxy).

use riposte_domain::{Alert, Decoded, EntityKind, Event, Role, Rule, Severity, TechniqueId};
use serde_json::Value;

use crate::fields::{self, Entities, req_str, req_time, str_at};
use crate::{DecodeError, Decoder};

pub struct Cowrie;

const PRODUCT: &str = "Cowrie";

/// (score, title, techniques) of the events that are attacker activity.
fn activity(eventid: &str) -> Option<(u32, &'static str, &'static [&'static str])> {
    Some(match eventid {
        "cowrie.login.success" => (80, "login succeeded", &["T1110", "T1078"]),
        "cowrie.login.failed" => (60, "login failed", &["T1110"]),
        "cowrie.command.input" => (80, "command run", &["T1059"]),
        "cowrie.command.failed" => (80, "unknown command run", &["T1059"]),
        "cowrie.session.file_download" => (80, "file downloaded", &["T1105"]),
        "cowrie.session.file_upload" => (80, "file uploaded", &["T1105"]),
        "cowrie.direct-tcpip.request" => (60, "tunnel requested", &["T1090"]),
        "cowrie.direct-tcpip.data" => (60, "data sent through a tunnel", &["T1090"]),
        _ => return None,
    })
}

impl Decoder for Cowrie {
    fn name(&self) -> &'static str {
        "cowrie"
    }

    fn recognises(&self, r: &Value) -> bool {
        str_at(r, "eventid").is_some_and(|e| e.starts_with("cowrie."))
            && str_at(r, "timestamp").is_some()
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        let eventid = req_str(&record, "eventid")?.to_string();
        if !eventid.starts_with("cowrie.") {
            return Err(DecodeError::new(
                "eventid",
                format!("{eventid:?} is not a Cowrie event id (cowrie.…)"),
            ));
        }
        let (time, time_original) = req_time(&record, "timestamp")?;
        let entities = entities(&record).into_vec();
        let Some((score, what, techniques)) = activity(&eventid) else {
            return Ok(vec![Decoded::Event(Event {
                id: String::new(),
                decoder: self.name().into(),
                product: PRODUCT.into(),
                source_id: None,
                time,
                time_original,
                action: eventid.trim_start_matches("cowrie.").to_string(),
                outcome: None,
                entities,
                original: record,
                origin: None,
            })]);
        };
        let sensor = str_at(&record, "sensor").unwrap_or("cowrie");
        let mut title = format!("Cowrie {what} on {sensor}");
        if let Some(src) = str_at(&record, "src_ip") {
            title.push_str(&format!(" from {src}"));
        }
        let description = str_at(&record, "input")
            .map(|i| format!("command: {i}"))
            .or_else(|| str_at(&record, "username").map(|u| format!("username: {u}")))
            .or_else(|| str_at(&record, "url").map(|u| format!("url: {u}")))
            .or_else(|| str_at(&record, "message").map(str::to_string));
        Ok(vec![Decoded::Alert(Alert {
            id: String::new(),
            decoder: self.name().into(),
            product: PRODUCT.into(),
            source_id: None,
            time,
            time_original,
            title,
            description,
            severity: Severity::from_score(score, eventid.clone()),
            rule: Rule::new(Some(eventid), Some(what.to_string())),
            entities,
            techniques: techniques
                .iter()
                .filter_map(|t| TechniqueId::parse(t))
                .collect(),
            tactics: Vec::new(),
            original: record,
            origin: None,
        })])
    }
}

fn entities(r: &Value) -> Entities {
    let mut e = Entities::new();
    e.add_at(EntityKind::Ip, Role::Source, r, "src_ip")
        .add_at(EntityKind::Ip, Role::Target, r, "dst_ip")
        .add_at(EntityKind::Host, Role::Target, r, "sensor")
        .add_at(EntityKind::User, Role::Target, r, "username")
        .add_at(EntityKind::Url, Role::Related, r, "url")
        .add_at(EntityKind::FileHash, Role::Related, r, "shasum");
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // No Cowrie logs in ../shared/corpus: these records follow the event ids and keys Cowrie
    // documents for its JSON output (docs/OUTPUT.rst and the `cowrie.json` lines its output
    // plugin writes: eventid, timestamp, src_ip, session, sensor, message, plus per event).
    fn rec(eventid: &str, extra: Value) -> Value {
        let mut v = json!({
            "eventid": eventid, "timestamp": "2024-05-01T10:02:03.456789Z",
            "src_ip": "203.0.113.50", "session": "a1b2c3d4e5f6", "sensor": "hp-ssh-1",
            "message": "x"
        });
        for (k, x) in extra.as_object().cloned().unwrap_or_default() {
            v[k] = x;
        }
        v
    }

    #[test]
    fn attacker_activity_is_alerts_with_entities_and_techniques() {
        let v = rec(
            "cowrie.login.success",
            json!({"username": "root", "password": "123456"}),
        );
        assert!(Cowrie.recognises(&v));
        let Ok(mut out) = Cowrie.decode(v) else {
            panic!("decodes")
        };
        let Decoded::Alert(a) = out.remove(0) else {
            panic!("expected an alert")
        };
        assert_eq!(
            a.title,
            "Cowrie login succeeded on hp-ssh-1 from 203.0.113.50"
        );
        assert_eq!(a.severity.score, 80);
        assert_eq!(a.severity.original, "cowrie.login.success");
        assert_eq!(a.time.to_string(), "2024-05-01T10:02:03.456789Z");
        let t: Vec<String> = a.techniques.iter().map(|t| t.to_string()).collect();
        assert_eq!(t, vec!["T1110", "T1078"]);
        assert!(
            a.entities
                .iter()
                .any(|e| e.kind == EntityKind::User && e.value == "root")
        );

        let v = rec(
            "cowrie.session.file_download",
            json!({"url": "http://198.51.100.9/x.sh", "shasum": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "outfile": "var/lib/cowrie/downloads/9f86"}),
        );
        let Ok(mut out) = Cowrie.decode(v) else {
            panic!("decodes")
        };
        let Decoded::Alert(a) = out.remove(0) else {
            panic!("expected an alert")
        };
        assert!(a.entities.iter().any(|e| e.kind == EntityKind::FileHash));
        assert!(a.entities.iter().any(|e| e.kind == EntityKind::Url));
    }

    #[test]
    fn session_bookkeeping_is_events() {
        for id in [
            "cowrie.session.connect",
            "cowrie.session.closed",
            "cowrie.client.version",
            "cowrie.log.closed",
        ] {
            let Ok(mut out) = Cowrie.decode(rec(id, json!({}))) else {
                panic!("decodes {id}")
            };
            assert!(matches!(out.remove(0), Decoded::Event(_)), "{id}");
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        let mut v = rec("cowrie.login.failed", json!({}));
        v["timestamp"] = json!("yesterday");
        assert_eq!(Cowrie.decode(v).unwrap_err().field, "timestamp");
        let v = rec("ssh.login", json!({}));
        assert_eq!(Cowrie.decode(v).unwrap_err().field, "eventid");
        assert!(!Cowrie.recognises(&json!({"eventid": "x", "timestamp": "t"})));
    }
}
