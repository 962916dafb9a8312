//! Wazuh alerts (`/var/ossec/logs/alerts/alerts.json`, one JSON object per line; the same
//! documents Wazuh's indexer stores under `wazuh-alerts-*`). Every record is an alert: Wazuh
//! writes only what one of its rules matched.
//!
//! Time: `timestamp`, ISO 8601 with a `+0000`-style offset (`2024-01-02T03:04:05.678+0000`).
//! Severity: `rule.level`, 0–15 (Wazuh's rule classification: 0 ignored, 2–4 system
//! notices and low-priority errors, 5–9 user errors, first-time and bad-source events, 10–11
//! repeated errors and integrity warnings, 12–14 high-importance events, 15 severe attack).
//! Mapped explicitly, level → score: 0→0, 1→5, 2→10, 3→15, 4→20, 5→25, 6→30, 7→40, 8→45,
//! 9→50, 10→55, 11→65, 12→70, 13→78, 14→85, 15→95 (the dashboard's bands: ≤6 low,
//! 7–11 medium, 12–14 high, 15 critical). The level as written is kept.
//! Ids: `id` (`1571166477.30198`: epoch seconds and the alerts-file offset) is the source id.
//! ATT&CK: `rule.mitre.id[]` (techniques) and `rule.mitre.tactic[]`.
//! Entities: the agent (`agent.name`, `agent.ip`) is the host the alert is about; `data.*`
//! holds what the decoder extracted: `srcip`/`dstip`, `srcuser`/`dstuser`, and for Windows
//! event channel alerts `data.win.eventdata.*` and `data.win.system.computer`; file integrity
//! alerts name the file's hashes under `syscheck`.

use riposte_domain::{Alert, Decoded, EntityKind, Role, Rule, Severity, TechniqueId};
use serde_json::Value;

use crate::fields::{self, Entities, get, req_time, str_at, text_at};
use crate::{DecodeError, Decoder};

pub struct Wazuh;

const PRODUCT: &str = "Wazuh";

/// `rule.level` 0–15 → riposte's 0–100 (see the module doc).
const LEVEL_SCORE: [u8; 16] = [0, 5, 10, 15, 20, 25, 30, 40, 45, 50, 55, 65, 70, 78, 85, 95];

impl Decoder for Wazuh {
    fn name(&self) -> &'static str {
        "wazuh"
    }

    fn recognises(&self, r: &Value) -> bool {
        str_at(r, "timestamp").is_some()
            && get(r, "rule.level").is_some_and(Value::is_number)
            && get(r, "rule.id").is_some()
            && (get(r, "agent").is_some() || get(r, "manager").is_some())
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        let (time, time_original) = req_time(&record, "timestamp")?;
        let severity = severity_of(&record)?;
        let rule_id = match get(&record, "rule.id") {
            None | Some(Value::Null) => return Err(DecodeError::missing("rule.id")),
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(DecodeError::new(
                    "rule.id",
                    format!("expected a rule number, found {}", fields::type_name(other)),
                ));
            }
        };
        let title = fields::req_str(&record, "rule.description")?.to_string();
        let techniques: Vec<TechniqueId> = strings(get(&record, "rule.mitre.id"))
            .into_iter()
            .filter_map(TechniqueId::parse)
            .collect();
        let tactics: Vec<String> = strings(get(&record, "rule.mitre.tactic"))
            .into_iter()
            .map(str::to_string)
            .collect();
        Ok(vec![Decoded::Alert(Alert {
            id: String::new(),
            decoder: self.name().into(),
            product: PRODUCT.into(),
            source_id: text_at(&record, "id"),
            time,
            time_original,
            rule: Rule::new(Some(rule_id), Some(title.clone())),
            title,
            description: str_at(&record, "full_log").map(str::to_string),
            severity,
            entities: entities(&record).into_vec(),
            techniques,
            tactics,
            original: record,
            origin: None,
        })])
    }
}

fn severity_of(r: &Value) -> Result<Severity, DecodeError> {
    let level = match get(r, "rule.level") {
        None | Some(Value::Null) => return Err(DecodeError::missing("rule.level")),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| DecodeError::new("rule.level", format!("{n} is not a level 0–15")))?,
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| DecodeError::new("rule.level", format!("{s:?} is not a level 0–15")))?,
        Some(other) => {
            return Err(DecodeError::new(
                "rule.level",
                format!("expected a number, found {}", fields::type_name(other)),
            ));
        }
    };
    // Wazuh's own tooling accepts 16 as the top level in places; it is read as 15.
    let score = match level {
        0..=15 => LEVEL_SCORE[level as usize],
        16 => LEVEL_SCORE[15],
        _ => {
            return Err(DecodeError::new(
                "rule.level",
                format!("{level} is not a level 0–15"),
            ));
        }
    };
    Ok(Severity::from_score(u32::from(score), level.to_string()))
}

/// One string or the strings of an array.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn entities(r: &Value) -> Entities {
    use EntityKind::*;
    let mut e = Entities::new();
    e.add_at(Host, Role::Target, r, "agent.name");
    // Agent 000 is the manager itself and has no `agent.ip`; `any` means DHCP-registered.
    if str_at(r, "agent.ip") != Some("any") {
        e.add_at(Ip, Role::Target, r, "agent.ip");
    }
    for (kind, role, path) in [
        (Ip, Role::Source, "data.srcip"),
        (Ip, Role::Target, "data.dstip"),
        (User, Role::Actor, "data.srcuser"),
        (User, Role::Target, "data.dstuser"),
        (Url, Role::Target, "data.url"),
        // Windows event channel: eventdata keys as Wazuh writes them (camelCase).
        (Host, Role::Target, "data.win.system.computer"),
        (User, Role::Actor, "data.win.eventdata.subjectUserName"),
        (User, Role::Target, "data.win.eventdata.targetUserName"),
        (Ip, Role::Source, "data.win.eventdata.ipAddress"),
        (Host, Role::Source, "data.win.eventdata.workstationName"),
        (User, Role::Actor, "data.win.eventdata.user"),
        (Process, Role::Actor, "data.win.eventdata.image"),
        (Process, Role::Related, "data.win.eventdata.parentImage"),
        (Ip, Role::Source, "data.win.eventdata.sourceIp"),
        (Ip, Role::Target, "data.win.eventdata.destinationIp"),
        (Domain, Role::Target, "data.win.eventdata.queryName"),
        // File integrity monitoring.
        (FileHash, Role::Related, "syscheck.md5_after"),
        (FileHash, Role::Related, "syscheck.sha1_after"),
        (FileHash, Role::Related, "syscheck.sha256_after"),
    ] {
        e.add_at(kind, role, r, path);
    }
    // Sysmon's `hashes`: `SHA1=…,MD5=…,SHA256=…,IMPHASH=…`; the import hash is not a file hash.
    if let Some(hashes) = str_at(r, "data.win.eventdata.hashes") {
        for part in hashes.split(',') {
            if let Some((algo, h)) = part.split_once('=')
                && matches!(algo.trim(), "MD5" | "SHA1" | "SHA256")
            {
                e.add(FileHash, Role::Related, Some(h));
            }
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use riposte_domain::EntityKind::*;
    use riposte_domain::Role::*;
    use riposte_domain::{Canonicaliser, SeverityLabel};
    use serde_json::json;

    // The corpus holds no Wazuh alerts. These lines follow Wazuh's documented alerts.json
    // format (Wazuh documentation: "Detect an SSH brute-force attack" shows an alerts.json
    // record; "Windows event channel" and "File integrity monitoring" show the `data.win`
    // and `syscheck` parts), with values of our own.

    fn ssh() -> Value {
        json!({
            "timestamp": "2024-01-02T03:04:05.678+0000",
            "rule": {"level": 10, "description": "sshd: brute force trying to get access to the system. Non existent user.",
                "id": "5712", "mitre": {"id": ["T1110"], "tactic": ["Credential Access"], "technique": ["Brute Force"]},
                "frequency": 8, "firedtimes": 1, "mail": false,
                "groups": ["syslog", "sshd", "authentication_failures"], "pci_dss": ["11.4", "10.2.4", "10.2.5"]},
            "agent": {"id": "001", "name": "linux-agent", "ip": "10.0.0.12"},
            "manager": {"name": "wazuh-manager"},
            "id": "1704164645.30198",
            "previous_output": "Jan  2 03:04:03 linux-agent sshd[29205]: Invalid user blimey from 192.0.2.40 port 48926",
            "full_log": "Jan  2 03:04:05 linux-agent sshd[29207]: Invalid user blimey from 192.0.2.40 port 48928",
            "predecoder": {"program_name": "sshd", "timestamp": "Jan  2 03:04:05", "hostname": "linux-agent"},
            "decoder": {"parent": "sshd", "name": "sshd"},
            "data": {"srcip": "192.0.2.40", "srcport": "48928", "srcuser": "blimey"},
            "location": "/var/log/secure"
        })
    }

    fn windows_logon_failure() -> Value {
        json!({
            "timestamp": "2024-01-03T10:20:30.001+0100",
            "rule": {"level": 5, "description": "Logon Failure - Unknown user or bad password", "id": "60122",
                "mitre": {"id": ["T1078", "T1531"], "tactic": ["Defense Evasion", "Persistence", "Privilege Escalation", "Initial Access", "Impact"]},
                "firedtimes": 3, "mail": false, "groups": ["windows", "windows_security", "authentication_failed"]},
            "agent": {"id": "004", "name": "WIN-SRV01", "ip": "10.0.0.30"},
            "manager": {"name": "wazuh-manager"},
            "id": "1704273630.884123",
            "decoder": {"name": "windows_eventchannel"},
            "data": {"win": {
                "system": {"providerName": "Microsoft-Windows-Security-Auditing", "eventID": "4625",
                    "computer": "WIN-SRV01.corp.example", "channel": "Security", "severityValue": "AUDIT_FAILURE"},
                "eventdata": {"subjectUserName": "WIN-SRV01$", "targetUserName": "administrator",
                    "targetDomainName": "CORP", "logonType": "3", "ipAddress": "198.51.100.23",
                    "workstationName": "KALI", "status": "0xc000006d"}
            }},
            "location": "EventChannel"
        })
    }

    fn sysmon_process() -> Value {
        json!({
            "timestamp": "2024-01-04T11:00:00.000+0000",
            "rule": {"level": 12, "description": "Suspicious Windows cmd shell execution", "id": 92052,
                "mitre": {"id": "T1059.003", "tactic": "Execution"}, "groups": ["sysmon", "sysmon_eid1_detections"]},
            "agent": {"id": "005", "name": "ws-042", "ip": "any"},
            "manager": {"name": "wazuh-manager"},
            "id": "1704366000.1000",
            "data": {"win": {
                "system": {"eventID": "1", "computer": "ws-042.corp.example"},
                "eventdata": {"image": "C:\\Windows\\System32\\cmd.exe", "parentImage": "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
                    "user": "CORP\\alice",
                    "hashes": "SHA1=F1EFB0FDDC156E4C61C5F78A54700E4E7A8D9C3E,MD5=911D039E71583A07320B32BDE22F8E22,SHA256=B99D61D874728EDC0918CA0EB10EAB93D381E7367E377406E65963366C874450,IMPHASH=392B4D61B1D00DADAE9EC67C0D8C6D1B"}
            }},
            "location": "EventChannel"
        })
    }

    fn syscheck() -> Value {
        json!({
            "timestamp": "2024-01-05T00:00:01.000+0000",
            "rule": {"level": 7, "description": "Integrity checksum changed.", "id": "550",
                "mitre": {"id": ["T1565.001"], "tactic": ["Impact"]}},
            "agent": {"id": "000", "name": "wazuh-manager"},
            "manager": {"name": "wazuh-manager"},
            "id": "1704412801.5555",
            "full_log": "File '/etc/passwd' modified\nMode: realtime\n",
            "syscheck": {"path": "/etc/passwd", "mode": "realtime", "event": "modified",
                "md5_after": "0123456789abcdef0123456789abcdef",
                "sha256_after": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
            "location": "syscheck"
        })
    }

    fn decode(v: Value) -> Decoded {
        let mut out = Wazuh.decode(v).unwrap();
        assert_eq!(out.len(), 1);
        let mut d = out.remove(0);
        Canonicaliser::default().apply_all(d.entities_mut());
        d
    }

    fn ids(a: &riposte_domain::Alert) -> Vec<&str> {
        a.techniques.iter().map(|t| t.as_str()).collect()
    }

    #[test]
    fn ssh_alert_decodes() {
        let d = decode(ssh());
        let a = alert(&d);
        assert_eq!(a.product, "Wazuh");
        assert_eq!(a.source_id.as_deref(), Some("1704164645.30198"));
        assert_eq!(a.time.to_string(), "2024-01-02T03:04:05.678Z");
        assert_eq!(a.time_original, "2024-01-02T03:04:05.678+0000");
        assert_eq!(
            a.title,
            "sshd: brute force trying to get access to the system. Non existent user."
        );
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(rule.id.as_deref(), Some("5712"));
        assert_eq!((a.severity.score, a.severity.original.as_str()), (55, "10"));
        assert_eq!(a.severity.label, SeverityLabel::Medium);
        assert_eq!(ids(a), ["T1110"]);
        assert_eq!(a.tactics, ["Credential Access"]);
        assert!(
            a.description
                .as_deref()
                .unwrap()
                .ends_with("from 192.0.2.40 port 48928")
        );
        assert_eq!(ents(&d, Host, Target), ["linux-agent"]);
        assert_eq!(ents(&d, Ip, Target), ["10.0.0.12"]);
        assert_eq!(ents(&d, Ip, Source), ["192.0.2.40"]);
        assert_eq!(ents(&d, User, Actor), ["blimey"]);
    }

    #[test]
    fn windows_eventchannel_alert_decodes() {
        let d = decode(windows_logon_failure());
        let a = alert(&d);
        assert_eq!(a.time.to_string(), "2024-01-03T09:20:30.001Z");
        assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("60122"));
        assert_eq!(
            (a.severity.score, a.severity.label),
            (25, SeverityLabel::Low)
        );
        assert_eq!(ids(a), ["T1078", "T1531"]);
        assert_eq!(a.tactics.len(), 5);
        assert_eq!(a.description, None);
        // The agent name and the event's computer are one host once canonicalised.
        assert_eq!(ents(&d, Host, Target), ["win-srv01"]);
        assert_eq!(ents(&d, Host, Source), ["kali"]);
        assert_eq!(ents(&d, User, Target), ["administrator"]);
        assert_eq!(ents(&d, User, Actor), ["win-srv01$"]);
        assert_eq!(ents(&d, Ip, Source), ["198.51.100.23"]);
        assert_eq!(ents(&d, Ip, Target), ["10.0.0.30"]);
    }

    #[test]
    fn sysmon_alert_decodes() {
        let d = decode(sysmon_process());
        let a = alert(&d);
        // A numeric rule id and single-string mitre fields are accepted.
        assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("92052"));
        assert_eq!(
            (a.severity.score, a.severity.label),
            (70, SeverityLabel::High)
        );
        assert_eq!(ids(a), ["T1059.003"]);
        assert_eq!(a.tactics, ["Execution"]);
        assert_eq!(ents(&d, Host, Target), ["ws-042"]);
        assert!(ents_any(&d, Ip).is_empty(), "agent.ip `any` is no address");
        assert_eq!(ents(&d, User, Actor), ["corp\\alice"]);
        assert_eq!(ents(&d, Process, Actor), ["c:\\windows\\system32\\cmd.exe"]);
        assert_eq!(
            ents(&d, FileHash, Related),
            [
                "f1efb0fddc156e4c61c5f78a54700e4e7a8d9c3e",
                "911d039e71583a07320b32bde22f8e22",
                "b99d61d874728edc0918ca0eb10eab93d381e7367e377406e65963366c874450"
            ]
        );
    }

    #[test]
    fn syscheck_alert_decodes() {
        let d = decode(syscheck());
        let a = alert(&d);
        assert_eq!((a.severity.score, a.severity.original.as_str()), (40, "7"));
        assert_eq!(ids(a), ["T1565.001"]);
        assert_eq!(ents(&d, Host, Target), ["wazuh-manager"]);
        assert_eq!(
            ents(&d, FileHash, Related),
            [
                "0123456789abcdef0123456789abcdef",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            ]
        );
    }

    #[test]
    fn level_table_is_monotonic_and_banded() {
        assert!(LEVEL_SCORE.windows(2).all(|w| w[0] < w[1]));
        let label = |l: usize| SeverityLabel::from_score(LEVEL_SCORE[l]);
        assert_eq!(label(3), SeverityLabel::Info);
        assert_eq!(label(6), SeverityLabel::Low);
        assert_eq!(label(7), SeverityLabel::Medium);
        assert_eq!(label(11), SeverityLabel::Medium);
        assert_eq!(label(12), SeverityLabel::High);
        assert_eq!(label(14), SeverityLabel::High);
        assert_eq!(label(15), SeverityLabel::Critical);
    }

    #[test]
    fn recognises_wazuh_only() {
        for v in [ssh(), windows_logon_failure(), sysmon_process(), syscheck()] {
            assert!(Wazuh.recognises(&v));
        }
        for f in [
            "alerts/suricata/eve/test-eve-small.log",
            "alerts/guardduty/test-guardduty.log",
            "alerts/okta/system/test-okta-system-events.log",
            "alerts/crowdstrike/alert/test-alert.log",
        ] {
            for r in corpus_records(f, crate::InputKind::Json) {
                assert!(!Wazuh.recognises(&r), "{f}");
            }
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        let mut v = ssh();
        v.as_object_mut().unwrap().remove("timestamp");
        assert_eq!(Wazuh.decode(v).unwrap_err().field, "timestamp");
        let mut v = ssh();
        v["timestamp"] = json!("Jan  2 03:04:05");
        assert_eq!(Wazuh.decode(v).unwrap_err().field, "timestamp");
        let mut v = ssh();
        v["rule"]["level"] = json!(20);
        assert_eq!(Wazuh.decode(v).unwrap_err().field, "rule.level");
        let mut v = ssh();
        v["rule"]["level"] = json!([1]);
        assert_eq!(Wazuh.decode(v).unwrap_err().field, "rule.level");
        let mut v = ssh();
        v["rule"]["id"] = json!({"x": 1});
        assert_eq!(Wazuh.decode(v).unwrap_err().field, "rule.id");
        let mut v = ssh();
        v["rule"].as_object_mut().unwrap().remove("description");
        assert_eq!(
            Wazuh.decode(v).unwrap_err().to_string(),
            "field `rule.description`: missing"
        );
        assert_eq!(Wazuh.decode(json!("line")).unwrap_err().field, "$");
    }
}
