//! OCSF 1.x events (Open Cybersecurity Schema Framework), as JSON objects. Detection Finding
//! (`class_uid` 2004) and its predecessor Security Finding (2001, OCSF 1.0 and the 1.0
//! release candidates) become alerts; every other class (Authentication 3002, Process
//! Activity 1007, …) becomes an event whose action is the event type (`type_name`, e.g.
//! `Authentication: Logon`, or `class_name: activity_name`, or the numbers when a mapper left
//! the names out) and whose outcome is `status_id` 1 → success, 2 → failure.
//!
//! Time: `time`, milliseconds since the epoch (OCSF `timestamp_t`); `time_dt` (RFC 3339) when
//! `time` is absent.
//! Severity: `severity_id` 0 Unknown → 0, 1 Informational → 10, 2 Low → 30, 3 Medium → 50,
//! 4 High → 75, 5 Critical → 95, 6 Fatal → 100, 99 Other → the `severity` text read as a
//! label (or 0). The original is the `severity` caption when given, else the id.
//! Ids: the finding's `finding_info.uid` (`finding.uid` in 1.0), else `metadata.uid`; else
//! content.
//! ATT&CK: `attacks[]` at the top (Security Control profile) and in `finding_info`:
//! `technique.uid`, `sub_technique.uid`, `tactic.name` and the older `tactics[].name`.
//! Rule: `finding_info.analytic` (uid, name), else the first `finding_info.types` entry.

use riposte_domain::{
    Alert, Decoded, EntityKind, Event, Role, Rule, Severity, SeverityLabel, TechniqueId,
};
use serde_json::Value;

use crate::fields::{self, Entities, first_time, get, int_at, str_at, text_at};
use crate::{DecodeError, Decoder};

pub struct Ocsf;

/// Classes whose records are detections.
const FINDING_CLASSES: [i64; 2] = [2001, 2004];

impl Decoder for Ocsf {
    fn name(&self) -> &'static str {
        "ocsf"
    }

    fn recognises(&self, r: &Value) -> bool {
        matches!(get(r, "class_uid"), Some(Value::Number(_)))
            && (get(r, "metadata.product").is_some() || get(r, "metadata.version").is_some())
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        let class_uid = match get(&record, "class_uid") {
            None | Some(Value::Null) => return Err(DecodeError::missing("class_uid")),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| DecodeError::new("class_uid", "expected a whole number"))?,
            Some(other) => {
                return Err(DecodeError::new(
                    "class_uid",
                    format!("expected a number, found {}", fields::type_name(other)),
                ));
            }
        };
        let (time, time_original) = first_time(&record, &["time", "time_dt"])?;
        let severity = severity(&record)?;
        let finding = FINDING_CLASSES.contains(&class_uid);
        let entities = entities(&record).into_vec();
        let product = str_at(&record, "metadata.product.name")
            .unwrap_or("OCSF")
            .to_string();

        if !finding {
            let outcome = match int_at(&record, "status_id") {
                Some(1) => Some("success".to_string()),
                Some(2) => Some("failure".to_string()),
                _ => None,
            };
            return Ok(vec![Decoded::Event(Event {
                id: String::new(),
                decoder: self.name().into(),
                product,
                source_id: text_at(&record, "metadata.uid"),
                time,
                time_original,
                action: action(&record, class_uid),
                outcome,
                entities,
                original: record,
                origin: None,
            })]);
        }

        // OCSF 1.1+ names the finding object `finding_info`; 1.0 named it `finding`.
        let info_path = if get(&record, "finding_info").is_some() {
            "finding_info"
        } else {
            "finding"
        };
        let at = |field: &str| format!("{info_path}.{field}");
        let title = str_at(&record, &at("title"))
            .or_else(|| str_at(&record, "message"))
            .or_else(|| str_at(&record, "type_name"))
            .ok_or_else(|| DecodeError::missing(at("title")))?
            .to_string();
        let description = str_at(&record, &at("desc"))
            .or_else(|| str_at(&record, "message"))
            .filter(|d| *d != title)
            .map(str::to_string);
        let rule = Rule::new(
            text_at(&record, &at("analytic.uid")),
            str_at(&record, &at("analytic.name")).map(str::to_string),
        )
        .or_else(|| {
            let first_type = match get(&record, &at("types")) {
                Some(Value::Array(t)) => t.iter().find_map(Value::as_str),
                _ => None,
            };
            Rule::new(None, first_type.map(str::to_string))
        });
        let mut techniques: Vec<TechniqueId> = Vec::new();
        let mut tactics: Vec<String> = Vec::new();
        for path in ["attacks".to_string(), at("attacks")] {
            if let Some(Value::Array(attacks)) = get(&record, &path) {
                for a in attacks {
                    attack(a, &mut techniques, &mut tactics);
                }
            }
        }
        Ok(vec![Decoded::Alert(Alert {
            id: String::new(),
            decoder: self.name().into(),
            product,
            source_id: text_at(&record, &at("uid")).or_else(|| text_at(&record, "metadata.uid")),
            time,
            time_original,
            title,
            description,
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

fn action(r: &Value, class_uid: i64) -> String {
    if let Some(t) = str_at(r, "type_name") {
        return t.to_string();
    }
    let class = str_at(r, "class_name")
        .map(str::to_string)
        .unwrap_or_else(|| class_uid.to_string());
    match str_at(r, "activity_name")
        .map(str::to_string)
        .or_else(|| text_at(r, "activity_id"))
    {
        Some(activity) => format!("{class}: {activity}"),
        None => class,
    }
}

fn severity(r: &Value) -> Result<Severity, DecodeError> {
    let text = str_at(r, "severity");
    let id = match get(r, "severity_id") {
        None | Some(Value::Null) => {
            return Ok(match text.and_then(SeverityLabel::parse) {
                Some(label) => Severity::from_label(label, text.unwrap_or_default()),
                None => Severity::unknown(),
            });
        }
        Some(Value::Number(n)) => n.as_i64(),
        Some(other) => {
            return Err(DecodeError::new(
                "severity_id",
                format!("expected a number, found {}", fields::type_name(other)),
            ));
        }
    };
    let original = text
        .map(str::to_string)
        .or_else(|| id.map(|i| i.to_string()))
        .unwrap_or_default();
    let score = match id {
        Some(0) => 0,
        Some(1) => 10,
        Some(2) => 30,
        Some(3) => 50,
        Some(4) => 75,
        Some(5) => 95,
        Some(6) => 100,
        Some(99) => {
            return Ok(match text.and_then(SeverityLabel::parse) {
                Some(label) => Severity::from_label(label, original),
                None => Severity::from_score(0, original),
            });
        }
        _ => {
            return Err(DecodeError::new(
                "severity_id",
                "not an OCSF severity (0–6 or 99)",
            ));
        }
    };
    Ok(Severity::from_score(score, original))
}

fn attack(a: &Value, techniques: &mut Vec<TechniqueId>, tactics: &mut Vec<String>) {
    for path in ["sub_technique.uid", "technique.uid"] {
        if let Some(t) = str_at(a, path).and_then(TechniqueId::parse)
            && !techniques.contains(&t)
        {
            techniques.push(t);
        }
    }
    let mut names: Vec<&str> = str_at(a, "tactic.name").into_iter().collect();
    if let Some(Value::Array(ts)) = get(a, "tactics") {
        names.extend(ts.iter().filter_map(|t| str_at(t, "name")));
    }
    for n in names {
        if !tactics.iter().any(|t| t == n) {
            tactics.push(n.to_string());
        }
    }
}

/// An OCSF user object as `DOMAIN\name` when the domain is given (Windows), else the name,
/// else the e-mail address.
fn user(u: &Value) -> Option<String> {
    let name = str_at(u, "name").map(str::trim).filter(|n| *n != "-");
    match (name, str_at(u, "domain").map(str::trim)) {
        (Some(n), Some(d)) if d != "-" && !n.contains('\\') && !n.contains('@') => {
            Some(format!("{d}\\{n}"))
        }
        (Some(n), _) => Some(n.to_string()),
        (None, _) => str_at(u, "email_addr").map(str::to_string),
    }
}

/// A process's executable path, or its name when the path is not given.
fn process(p: &Value) -> Option<&str> {
    str_at(p, "file.path")
        .filter(|s| s.trim() != "-")
        .or_else(|| str_at(p, "name"))
}

fn hashes(e: &mut Entities, file: Option<&Value>) {
    if let Some(Value::Array(hs)) = file.and_then(|f| get(f, "hashes")) {
        for h in hs {
            e.add_at(EntityKind::FileHash, Role::Related, h, "value");
        }
    }
}

/// Where an object is about: the endpoints, users, processes and files it names.
fn common(e: &mut Entities, r: &Value, device_role: Role, endpoint_name: EntityKind) {
    if let Some(u) = get(r, "actor.user") {
        e.add(EntityKind::User, Role::Actor, user(u).as_deref());
    }
    if let Some(p) = get(r, "actor.process") {
        e.add(EntityKind::Process, Role::Actor, process(p));
        hashes(e, get(p, "file"));
    }
    if let Some(u) = get(r, "user") {
        e.add(EntityKind::User, Role::Target, user(u).as_deref());
    }
    if let Some(p) = get(r, "process") {
        e.add(EntityKind::Process, Role::Target, process(p));
        hashes(e, get(p, "file"));
    }
    hashes(e, get(r, "file"));
    e.add_at(EntityKind::Host, device_role, r, "device.hostname")
        .add_at(EntityKind::Ip, device_role, r, "device.ip")
        .add_at(EntityKind::Ip, Role::Source, r, "src_endpoint.ip")
        .add_at(endpoint_name, Role::Source, r, "src_endpoint.hostname")
        .add_at(EntityKind::Ip, Role::Target, r, "dst_endpoint.ip")
        .add_at(endpoint_name, Role::Target, r, "dst_endpoint.hostname")
        .add_at(EntityKind::Domain, Role::Target, r, "query.hostname")
        .add_at(EntityKind::Url, Role::Target, r, "url.url_string")
        .add_at(EntityKind::Email, Role::Target, r, "email.to.0")
        .add_at(EntityKind::Email, Role::Source, r, "email.from");
    if get(r, "device.hostname").is_none() {
        e.add_at(EntityKind::Host, device_role, r, "device.name");
    }
    if get(r, "src_endpoint.hostname").is_none() {
        e.add_at(endpoint_name, Role::Source, r, "src_endpoint.name");
    }
}

fn entities(r: &Value) -> Entities {
    let mut e = Entities::new();
    // A finding's device is the one it is about; an activity's device is where it happened,
    // which for Windows and endpoint classes is also the machine acted upon.
    common(&mut e, r, Role::Target, EntityKind::Host);
    if let Some(Value::Array(evidences)) = get(r, "evidences") {
        for ev in evidences {
            // Evidence endpoints are the far ends of the activity (a C2 server, a download
            // site): their names are DNS names, not machines of ours.
            common(&mut e, ev, Role::Related, EntityKind::Domain);
        }
    }
    if let Some(Value::Array(resources)) = get(r, "resources") {
        for res in resources {
            e.add_at(EntityKind::CloudResource, Role::Target, res, "uid");
        }
    }
    // Observables point at values found elsewhere in the record; their `type_id` says what
    // they are (OCSF dictionary, `types`: 1 Hostname, 2 IP Address, 4 User Name, 5 Email
    // Address, 6 URL String, 8 Hash, 9 Process Name, 10 Resource UID).
    if let Some(Value::Array(obs)) = get(r, "observables") {
        for o in obs {
            let kind = match int_at(o, "type_id") {
                Some(1) => EntityKind::Host,
                Some(2) => EntityKind::Ip,
                Some(4) => EntityKind::User,
                Some(5) => EntityKind::Email,
                Some(6) => EntityKind::Url,
                Some(8) => EntityKind::FileHash,
                Some(9) => EntityKind::Process,
                Some(10) => EntityKind::CloudResource,
                _ => continue,
            };
            e.add_at(kind, Role::Related, o, "value");
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use serde_json::json;

    const GUARDDUTY: &str = "ocsf-examples/encodings/ilf/example_logs/sechub-guardduty.ocsf";
    const SECURITY_HUB: &str =
        "ocsf-examples/mappings/markdown/AWS/v1.0.0-rc.2/Security Hub/samples/Security Hub.ocsf";
    const WINDOWS: &str = "ocsf-examples/mappings/markdown/Microsoft/Windows Events";

    fn one(rel: &str) -> Decoded {
        let mut out = decode_file(&Ocsf, rel);
        assert_eq!(out.len(), 1, "{rel}");
        out.remove(0)
    }

    #[test]
    fn guardduty_detection_finding() {
        let d = one(GUARDDUTY);
        let a = alert(&d);
        assert_eq!(a.product, "GuardDuty");
        assert_eq!(
            a.title,
            "AWS CloudTrail trail arn:aws:cloudtrail:us-east-2:111111111111:trail/delete-me was disabled."
        );
        assert!(
            a.description
                .as_deref()
                .unwrap()
                .starts_with("AWS CloudTrail trail")
        );
        assert_eq!(a.severity.score, 30);
        assert_eq!(a.severity.label, SeverityLabel::Low);
        assert_eq!(a.severity.original, "Low");
        assert_eq!(a.time.to_string(), "2023-09-19T15:05:22.487Z");
        assert_eq!(a.time_original, "1695135922487");
        assert_eq!(
            a.source_id.as_deref(),
            Some(
                "arn:aws:guardduty:us-east-2:111111111111:detector/1ac1bfceda6679698215d5d0EXAMPLE/finding/a6c556fcbc9bea427a19f8b787099a0b"
            )
        );
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(rule.id, None);
        assert_eq!(
            rule.name.as_deref(),
            Some("TTPs/Defense Evasion/Stealth:IAMUser-CloudTrailLoggingDisabled")
        );
        assert!(a.techniques.is_empty() && a.tactics.is_empty());
        assert_eq!(ents(&d, EntityKind::Ip, Role::Source), ["52.94.133.131"]);
        assert_eq!(ents(&d, EntityKind::Ip, Role::Related), ["52.94.133.131"]);
        assert_eq!(
            ents(&d, EntityKind::CloudResource, Role::Target),
            ["AWS::IAM::AccessKey:ASIATMJPC7EXAMPLE"]
        );
        assert!(ents_any(&d, EntityKind::User).is_empty());
        assert!(ents_any(&d, EntityKind::Host).is_empty());
    }

    #[test]
    fn security_hub_security_finding_rc2() {
        let d = one(SECURITY_HUB);
        let a = alert(&d);
        assert_eq!(a.product, "Security Hub");
        assert_eq!(
            a.title,
            "EC2.19 Security groups should not allow unrestricted access to ports with high risk"
        );
        assert_eq!(a.source_id.as_deref(), Some("test"));
        assert_eq!(a.severity.score, 10);
        assert_eq!(a.severity.original, "Informational");
        assert_eq!(a.time.to_string(), "2022-08-04T18:09:19.1Z");
        assert_eq!(
            a.rule.as_ref().unwrap().name.as_deref(),
            Some(
                "Software and Configuration Checks/Industry and Regulatory Standards/AWS-Foundational-Security-Best-Practices"
            )
        );
        assert_eq!(
            ents(&d, EntityKind::Process, Role::Target),
            ["/usr/sbin/syslogd"]
        );
        assert_eq!(
            ents(&d, EntityKind::CloudResource, Role::Target),
            ["arn:aws:ec2:us-east-1:522536594833:security-group/sg-0daf160f08dfed499"]
        );
    }

    fn windows(id: &str) -> Decoded {
        let dir = corpus_dir().join(WINDOWS).join(id);
        let mut json: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        json.sort();
        one(&format!("{WINDOWS}/{id}/{}", json[0]))
    }

    #[test]
    fn windows_mappings_are_events() {
        let d = windows("4624");
        let ev = event(&d);
        assert_eq!(ev.action, "Authentication: Logon");
        assert_eq!(ev.outcome.as_deref(), Some("success"));
        assert_eq!(ev.product, "Microsoft Windows");
        assert_eq!(ev.time.to_string(), "2021-03-12T15:48:14Z");
        assert_eq!(
            ev.source_id.as_deref(),
            Some("ce139867-ced1-4742-9bb0-ad1926b8bbe1")
        );
        assert_eq!(
            ents(&d, EntityKind::User, Role::Actor),
            ["attackrange\\win-dc-725$"]
        );
        assert_eq!(
            ents(&d, EntityKind::User, Role::Target),
            ["nt authority\\system"]
        );
        assert_eq!(ents(&d, EntityKind::Host, Role::Target), ["win-dc-725"]);
        assert_eq!(
            ents(&d, EntityKind::Process, Role::Actor),
            ["c:\\windows\\system32\\services.exe"]
        );
        assert!(ents_any(&d, EntityKind::Ip).is_empty(), "`-` is no address");

        let d = windows("4625");
        let ev = event(&d);
        assert_eq!(ev.action, "Authentication: Logon");
        assert_eq!(ev.outcome.as_deref(), Some("failure"));
        assert_eq!(ev.time.to_string(), "2020-10-08T16:41:47Z");
        assert_eq!(
            ents(&d, EntityKind::User, Role::Target),
            ["ec2amaz-6kj2bpp\\administrator"]
        );
        assert!(ents(&d, EntityKind::User, Role::Actor).is_empty());
        assert_eq!(
            ents(&d, EntityKind::Host, Role::Source),
            ["ec2amaz-6kj2bpp"]
        );

        let d = windows("4688");
        let ev = event(&d);
        assert_eq!(ev.action, "Process Activity: Launch");
        assert_eq!(
            ents(&d, EntityKind::Process, Role::Actor),
            ["c:\\windows\\system32\\cmd.exe"]
        );
        assert_eq!(
            ents(&d, EntityKind::Process, Role::Target),
            ["c:\\windows\\system32\\reg.exe"]
        );
        assert_eq!(
            ents(&d, EntityKind::User, Role::Actor),
            ["attackrange\\administrator"]
        );

        // A mapping without class and activity names: the numbers stand in.
        let d = windows("4661");
        assert_eq!(event(&d).action, "1010: 99");
        assert_eq!(ents(&d, EntityKind::Host, Role::Target), ["stldirdc1"]);
        assert_eq!(event(&windows("4673")).action, "1010: 1");
        assert_eq!(event(&windows("4673")).outcome.as_deref(), Some("failure"));
        assert_eq!(
            event(&windows("4663")).action,
            "Windows Resource Activity: Access"
        );
        assert_eq!(
            event(&windows("4689")).action,
            "Process Activity: Terminate"
        );
    }

    /// A Detection Finding built from the OCSF 1.x schema (events/findings/detection_finding,
    /// objects finding_info, analytic, attack, evidences): the corpus's only 2004 record
    /// (GuardDuty via Security Hub) has no analytic, ATT&CK, device or user.
    fn edr_finding() -> Value {
        json!({
            "activity_id": 1, "activity_name": "Create", "category_uid": 2,
            "category_name": "Findings", "class_uid": 2004, "class_name": "Detection Finding",
            "type_uid": 200401, "type_name": "Detection Finding: Create",
            "severity_id": 4, "severity": "High", "status_id": 1, "status": "New",
            "is_alert": true, "time": 1714557600123i64,
            "metadata": {"version": "1.3.0", "uid": "evt-9",
                "product": {"name": "Example EDR", "vendor_name": "Example"}},
            "finding_info": {
                "uid": "det-4c1f", "title": "Encoded PowerShell launched by Word",
                "desc": "winword.exe started powershell.exe -enc …",
                "analytic": {"uid": "R-1042", "name": "Office spawns encoded PowerShell",
                    "type_id": 1, "type": "Rule"},
                "attacks": [
                    {"technique": {"uid": "T1059", "name": "Command and Scripting Interpreter"},
                     "sub_technique": {"uid": "T1059.001", "name": "PowerShell"},
                     "tactic": {"uid": "TA0002", "name": "Execution"}, "version": "14"},
                    {"technique": {"uid": "T1566", "name": "Phishing"},
                     "tactics": [{"uid": "TA0001", "name": "Initial Access"}]}
                ]
            },
            "device": {"hostname": "ws-042.corp.example", "ip": "10.1.2.42", "type_id": 2},
            "actor": {"user": {"name": "alice", "domain": "CORP"},
                "process": {"pid": 4120, "file": {"path": "C:\\Program Files\\Microsoft Office\\WINWORD.EXE",
                    "hashes": [{"algorithm_id": 3, "value": "A3B1C9F3D2E4A5B6C7D8E9F0A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6E7F8A9B0"}]}}},
            "evidences": [{
                "process": {"pid": 5120, "file": {"path": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"}},
                "dst_endpoint": {"ip": "203.0.113.50", "hostname": "cdn.bad.example"},
                "query": {"hostname": "cdn.bad.example"},
                "url": {"url_string": "https://cdn.bad.example/a.ps1"}
            }],
            "src_endpoint": {"ip": "10.1.2.42"}
        })
    }

    #[test]
    fn detection_finding_from_the_schema() {
        let rec = edr_finding();
        assert!(Ocsf.recognises(&rec));
        let mut d = Ocsf.decode(rec).unwrap().remove(0);
        riposte_domain::Canonicaliser::default().apply_all(d.entities_mut());
        let a = alert(&d);
        assert_eq!(a.product, "Example EDR");
        assert_eq!(a.title, "Encoded PowerShell launched by Word");
        assert_eq!(
            a.description.as_deref(),
            Some("winword.exe started powershell.exe -enc …")
        );
        assert_eq!(a.source_id.as_deref(), Some("det-4c1f"));
        assert_eq!(a.severity.score, 75);
        assert_eq!(a.severity.label, SeverityLabel::High);
        assert_eq!(a.severity.original, "High");
        assert_eq!(a.time.to_string(), "2024-05-01T10:00:00.123Z");
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(rule.id.as_deref(), Some("R-1042"));
        assert_eq!(
            rule.name.as_deref(),
            Some("Office spawns encoded PowerShell")
        );
        let techs: Vec<&str> = a.techniques.iter().map(TechniqueId::as_str).collect();
        assert_eq!(techs, ["T1059.001", "T1059", "T1566"]);
        assert_eq!(a.tactics, ["Execution", "Initial Access"]);
        assert_eq!(ents(&d, EntityKind::Host, Role::Target), ["ws-042"]);
        // The device's address, then the evidence's destination.
        assert_eq!(
            ents(&d, EntityKind::Ip, Role::Target),
            ["10.1.2.42", "203.0.113.50"]
        );
        assert_eq!(ents(&d, EntityKind::Ip, Role::Source), ["10.1.2.42"]);
        assert_eq!(ents(&d, EntityKind::User, Role::Actor), ["corp\\alice"]);
        assert_eq!(
            ents(&d, EntityKind::Process, Role::Actor),
            ["c:\\program files\\microsoft office\\winword.exe"]
        );
        assert_eq!(
            ents(&d, EntityKind::FileHash, Role::Related),
            ["a3b1c9f3d2e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0"]
        );
        // Evidence: the child process, its C2 address and name.
        assert_eq!(
            ents(&d, EntityKind::Process, Role::Target),
            ["c:\\windows\\system32\\windowspowershell\\v1.0\\powershell.exe"]
        );
        assert_eq!(
            ents(&d, EntityKind::Domain, Role::Target),
            ["cdn.bad.example"]
        );
        assert_eq!(
            ents(&d, EntityKind::Url, Role::Target),
            ["https://cdn.bad.example/a.ps1"]
        );
    }

    #[test]
    fn severity_table() {
        let cases = [
            (json!({"severity_id": 0}), 0, "0"),
            (
                json!({"severity_id": 1, "severity": "Informational"}),
                10,
                "Informational",
            ),
            (json!({"severity_id": 2}), 30, "2"),
            (
                json!({"severity_id": 3, "severity": "Medium"}),
                50,
                "Medium",
            ),
            (json!({"severity_id": 4}), 75, "4"),
            (
                json!({"severity_id": 5, "severity": "Critical"}),
                95,
                "Critical",
            ),
            (json!({"severity_id": 6, "severity": "Fatal"}), 100, "Fatal"),
            (json!({"severity_id": 99, "severity": "Major"}), 75, "Major"),
            (json!({"severity_id": 99, "severity": "P2"}), 0, "P2"),
            (json!({"severity": "Low"}), 30, "Low"),
            (json!({}), 0, ""),
        ];
        for (v, score, original) in cases {
            let s = severity(&v).unwrap();
            assert_eq!((s.score, s.original.as_str()), (score, original), "{v}");
        }
        assert_eq!(
            severity(&json!({"severity_id": 7})).unwrap_err().field,
            "severity_id"
        );
        assert_eq!(
            severity(&json!({"severity_id": "High"})).unwrap_err().field,
            "severity_id"
        );
    }

    #[test]
    fn recognises_ocsf_only() {
        assert!(Ocsf.recognises(&corpus_records(GUARDDUTY, crate::InputKind::Json)[0]));
        assert!(Ocsf.recognises(&corpus_records(SECURITY_HUB, crate::InputKind::Json)[0]));
        for id in ["4624", "4688"] {
            assert!(Ocsf.recognises(windows(id).original()));
        }
        for rel in [
            "alerts/suricata/eve/test-eve-small.log",
            "alerts/zeek/notice/test-notice.log",
            "alerts/guardduty/test-guard_duty.first12.log",
            "alerts/windows/security/test-4738.json",
            "ocsf-examples/mappings/markdown/AWS/v1.0.0-rc.2/Security Hub/samples/Security Hub.raw",
        ] {
            for r in corpus_records(rel, crate::InputKind::Json) {
                assert!(!Ocsf.recognises(&r), "{rel} is not OCSF");
            }
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        assert_eq!(Ocsf.decode(json!(null)).unwrap_err().field, "$");
        let e = Ocsf.decode(json!({"time": 1714557600123i64})).unwrap_err();
        assert_eq!(e.to_string(), "field `class_uid`: missing");
        let e = Ocsf
            .decode(json!({"class_uid": "2004", "time": 1}))
            .unwrap_err();
        assert_eq!(e.field, "class_uid");
        let e = Ocsf
            .decode(json!({"class_uid": 2004, "finding_info": {"title": "x"}}))
            .unwrap_err();
        assert_eq!(e.to_string(), "field `time`: missing");
        let e = Ocsf
            .decode(json!({"class_uid": 3002, "time": "soon"}))
            .unwrap_err();
        assert_eq!(e.field, "time");
        let e = Ocsf
            .decode(
                json!({"class_uid": 2004, "time": 1714557600123i64, "severity_id": 12,
                "finding_info": {"title": "x", "uid": "1"}}),
            )
            .unwrap_err();
        assert_eq!(e.field, "severity_id");
        let e = Ocsf
            .decode(
                json!({"class_uid": 2004, "time": 1714557600123i64, "finding_info": {"uid": "1"}}),
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "field `finding_info.title`: missing");
        // `time_dt` stands in for a missing `time`.
        let d = Ocsf
            .decode(
                json!({"class_uid": 2004, "time_dt": "2023-09-19T11:05:22.487-04:00",
                "finding_info": {"uid": "1", "title": "t"}}),
            )
            .unwrap()
            .remove(0);
        assert_eq!(d.time().to_string(), "2023-09-19T15:05:22.487Z");
    }
}
