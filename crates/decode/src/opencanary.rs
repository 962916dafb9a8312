//! OpenCanary (Thinkst's open-source honeypot daemon): its JSON log lines, and its webhook
//! handler's default body `{"message": "<the same JSON, as text>"}`.
//!
//! Every record carries `logtype`, `node_id`, `src_host`/`src_port`, `dst_host`/`dst_port`,
//! `utc_time`, `local_time`, `local_time_adjusted` and a `logdata` object whose keys depend on
//! the module (`USERNAME`, `PASSWORD`, `PATH`, `FILENAME`, …).
//!
//! Logtypes 1000–1006 are OpenCanary's own health records (boot, message, debug, error, ping,
//! config save, example): they become events, never alerts. Every other logtype means
//! something touched the honeypot, which nobody has a reason to do: an alert.
//!
//! Time: `utc_time` (`2024-05-01 10:00:00.123456`, UTC, as `logger.py` writes it), else
//! `local_time`. Severity: a login attempt or a file opened on a share → 80 (high); a port
//! scan or any other touch → 60 (medium). The logtype number is kept as the original.
//! Ids: none in the product; records are told apart by content.
//! ATT&CK: login attempts → T1110 (Brute Force); port scans → T1046 (Network Service
//! Discovery); SMB file opens → T1039 (Data from Network Shared Drive).

use riposte_domain::{Alert, Decoded, EntityKind, Event, Role, Rule, Severity, TechniqueId};
use serde_json::Value;

use crate::fields::{self, Entities, first_time, get, str_at};
use crate::{DecodeError, Decoder};

pub struct OpenCanary;

const PRODUCT: &str = "OpenCanary";

/// What a logtype is, by OpenCanary's own constants (`opencanary/logger.py`).
fn logtype_name(t: i64) -> Option<&'static str> {
    Some(match t {
        1000 => "boot",
        1001 => "message",
        1002 => "debug",
        1003 => "error",
        1004 => "ping",
        1005 => "config save",
        1006 => "example",
        2000 => "FTP login attempt",
        3000 => "HTTP GET",
        3001 => "HTTP login attempt",
        4000 => "SSH new connection",
        4001 => "SSH remote version sent",
        4002 => "SSH login attempt",
        5000 => "SMB file open",
        5001 => "port scan (SYN)",
        5002 => "port scan (nmap OS detection)",
        5003 => "port scan (nmap NULL)",
        5004 => "port scan (nmap XMAS)",
        5005 => "port scan (nmap FIN)",
        6001 => "Telnet login attempt",
        7001 => "HTTP proxy login attempt",
        8001 => "MySQL login attempt",
        9001 => "MSSQL login (SQL auth)",
        9002 => "MSSQL login (Windows auth)",
        10001 => "TFTP request",
        11001 => "NTP monlist request",
        12001 => "VNC login attempt",
        13001 => "SNMP command",
        14001 => "RDP login attempt",
        15001 => "SIP request",
        16001 => "Git clone request",
        17001 => "Redis command",
        18001..=18005 => "TCP banner connection",
        99000..=99009 => "user module",
        _ => return None,
    })
}

/// OpenCanary's own health records, not hits.
pub fn is_health(logtype: i64) -> bool {
    (1000..=1006).contains(&logtype)
}

fn is_login(t: i64) -> bool {
    matches!(
        t,
        2000 | 3001 | 4002 | 6001 | 7001 | 8001 | 9001 | 9002 | 12001 | 14001
    )
}

/// The record itself, unwrapping the webhook's `{"message": "…"}`.
fn unwrap(record: Value) -> Result<Value, DecodeError> {
    if get(&record, "logtype").is_none()
        && let Some(msg) = str_at(&record, "message")
    {
        let inner: Value = serde_json::from_str(msg).map_err(|e| {
            DecodeError::new("message", format!("not an OpenCanary JSON record: {e}"))
        })?;
        fields::require_object(&inner).map_err(|_| {
            DecodeError::new("message", "expected an OpenCanary JSON object in the text")
        })?;
        return Ok(inner);
    }
    Ok(record)
}

impl Decoder for OpenCanary {
    fn name(&self) -> &'static str {
        "opencanary"
    }

    fn recognises(&self, r: &Value) -> bool {
        let direct = |r: &Value| {
            get(r, "logtype").is_some_and(Value::is_i64)
                && get(r, "node_id").is_some()
                && get(r, "logdata").is_some()
        };
        if direct(r) {
            return true;
        }
        // The webhook body: a JSON text that is an OpenCanary record.
        str_at(r, "message").is_some_and(|m| {
            m.trim_start().starts_with('{')
                && m.contains("\"logtype\"")
                && m.contains("\"node_id\"")
                && serde_json::from_str::<Value>(m).is_ok_and(|v| direct(&v))
        })
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        let record = unwrap(record)?;
        let logtype = match get(&record, "logtype") {
            Some(v) => v
                .as_i64()
                .ok_or_else(|| DecodeError::new("logtype", "expected a whole number"))?,
            None => return Err(DecodeError::missing("logtype")),
        };
        let (time, time_original) = first_time(&record, &["utc_time", "local_time"])?;
        let name = logtype_name(logtype).unwrap_or("unknown logtype");
        let node = str_at(&record, "node_id")
            .unwrap_or("opencanary")
            .to_string();
        let entities = entities(&record).into_vec();

        if is_health(logtype) {
            return Ok(vec![Decoded::Event(Event {
                id: String::new(),
                decoder: self.name().into(),
                product: PRODUCT.into(),
                source_id: None,
                time,
                time_original,
                action: format!("health.{}", name.replace(' ', "_")),
                outcome: None,
                entities,
                original: record,
                origin: None,
            })]);
        }

        let score = if is_login(logtype) || logtype == 5000 {
            80
        } else {
            60
        };
        let technique = if is_login(logtype) {
            Some("T1110")
        } else if (5001..=5005).contains(&logtype) {
            Some("T1046")
        } else if logtype == 5000 {
            Some("T1039")
        } else {
            None
        };
        let mut title = format!("OpenCanary {name} on {node}");
        if let Some(src) = str_at(&record, "src_host").filter(|s| !s.is_empty()) {
            title.push_str(&format!(" from {src}"));
        }
        let description = str_at(&record, "logdata.USERNAME")
            .map(|u| format!("username tried: {u}"))
            .or_else(|| str_at(&record, "logdata.PATH").map(|p| format!("path: {p}")))
            .or_else(|| str_at(&record, "logdata.FILENAME").map(|p| format!("file: {p}")));
        Ok(vec![Decoded::Alert(Alert {
            id: String::new(),
            decoder: self.name().into(),
            product: PRODUCT.into(),
            source_id: None,
            time,
            time_original,
            title,
            description,
            severity: Severity::from_score(score, logtype.to_string()),
            rule: Rule::new(Some(logtype.to_string()), Some(name.to_string())),
            entities,
            techniques: technique.and_then(TechniqueId::parse).into_iter().collect(),
            tactics: Vec::new(),
            original: record,
            origin: None,
        })])
    }
}

fn entities(r: &Value) -> Entities {
    let mut e = Entities::new();
    // OpenCanary writes '' and -1 for what a record does not have.
    let non_empty = |p: &str| str_at(r, p).filter(|s| !s.trim().is_empty());
    e.add(EntityKind::Ip, Role::Source, non_empty("src_host"))
        .add(EntityKind::Ip, Role::Target, non_empty("dst_host"))
        .add(EntityKind::Host, Role::Target, non_empty("node_id"))
        .add(
            EntityKind::User,
            Role::Target,
            non_empty("logdata.USERNAME"),
        );
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use riposte_domain::SeverityLabel;
    use serde_json::json;

    // No OpenCanary records in ../shared/corpus: these are built from OpenCanary's published
    // source — the keys `logger.py` (`sanitizeLog`) writes on every record, the logtype
    // constants there, and the `logdata` keys of its SSH module — and the default webhook body
    // documented in `docs/alerts/webhook.md`.
    fn ssh_login() -> Value {
        json!({
            "dst_host": "10.0.5.20", "dst_port": 22,
            "local_time": "2024-05-01 10:00:07.123456",
            "local_time_adjusted": "2024-05-01 12:00:07.123456",
            "logdata": {"LOCALVERSION": "SSH-2.0-OpenSSH_5.1p1 Debian-4", "PASSWORD": "hunter2",
                        "REMOTEVERSION": "SSH-2.0-OpenSSH_8.9", "USERNAME": "root"},
            "logtype": 4002, "node_id": "canary-fileserver-1",
            "src_host": "10.0.9.77", "src_port": 51512,
            "utc_time": "2024-05-01 10:00:07.123456"
        })
    }

    fn one(v: Value) -> Decoded {
        let mut out = OpenCanary.decode(v).expect("decodes");
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    #[test]
    fn ssh_login_attempt_is_an_alert_naming_source_node_and_username() {
        assert!(OpenCanary.recognises(&ssh_login()));
        let Decoded::Alert(a) = one(ssh_login()) else {
            panic!("expected an alert")
        };
        assert_eq!(
            a.title,
            "OpenCanary SSH login attempt on canary-fileserver-1 from 10.0.9.77"
        );
        assert_eq!(a.time.to_string(), "2024-05-01T10:00:07.123456Z");
        assert_eq!(a.time_original, "2024-05-01 10:00:07.123456");
        assert_eq!(a.severity.score, 80);
        assert_eq!(a.severity.label, SeverityLabel::High);
        assert_eq!(a.severity.original, "4002");
        assert_eq!(a.techniques, vec![TechniqueId::parse("T1110").unwrap()]);
        let got: Vec<(EntityKind, Role, &str)> = a
            .entities
            .iter()
            .map(|e| (e.kind, e.role, e.value.as_str()))
            .collect();
        assert!(got.contains(&(EntityKind::Ip, Role::Source, "10.0.9.77")));
        assert!(got.contains(&(EntityKind::Ip, Role::Target, "10.0.5.20")));
        assert!(got.contains(&(EntityKind::Host, Role::Target, "canary-fileserver-1")));
        assert!(got.contains(&(EntityKind::User, Role::Target, "root")));
    }

    #[test]
    fn the_webhook_body_is_unwrapped() {
        let body = json!({ "message": ssh_login().to_string() });
        assert!(OpenCanary.recognises(&body));
        let Decoded::Alert(a) = one(body) else {
            panic!("expected an alert")
        };
        assert_eq!(a.rule.as_ref().and_then(|r| r.id.as_deref()), Some("4002"));
        assert_eq!(a.original["logtype"], 4002);
    }

    #[test]
    fn health_records_are_events_not_alerts() {
        for t in 1000..=1006 {
            let v = json!({
                "dst_host": "", "dst_port": -1, "logdata": {"msg": "Canary running!!!"},
                "logtype": t, "node_id": "canary-fileserver-1", "src_host": "", "src_port": -1,
                "utc_time": "2024-05-01 09:59:00.000001", "local_time": "2024-05-01 09:59:00.000001"
            });
            let Decoded::Event(e) = one(v) else {
                panic!("logtype {t} must not be an alert")
            };
            assert!(e.action.starts_with("health."), "{}", e.action);
            // '' and -1 placeholders are not entities.
            assert!(e.entities.iter().all(|x| x.kind != EntityKind::Ip));
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        let mut v = ssh_login();
        v["logtype"] = json!("ssh");
        assert_eq!(OpenCanary.decode(v).unwrap_err().field, "logtype");
        let mut v = ssh_login();
        v.as_object_mut().unwrap().remove("utc_time");
        v.as_object_mut().unwrap().remove("local_time");
        assert_eq!(OpenCanary.decode(v).unwrap_err().field, "utc_time");
        let e = OpenCanary
            .decode(json!({"message": "{not json"}))
            .unwrap_err();
        assert_eq!(e.field, "message");
    }
}
