//! CrowdStrike Falcon, in its two API shapes. Every detection and incident becomes an alert.
//!
//! **Streaming API** (Event Streams; `{"metadata": {"eventType", "eventCreationTime", …},
//! "event": {…}}`):
//! - `DetectionSummaryEvent` (legacy endpoint detections) and `EppDetectionSummaryEvent`
//!   (its successor, also spelled `EPPDetectionSummaryEvent`; the event type is compared
//!   case-insensitively) → alert.
//! - `IdentityProtectionEvent` (an Identity Protection incident; also accepted as
//!   `IdentityProtectionIncident`) → alert.
//! - Every other event type (`AuthActivityAuditEvent`, `UserActivityAuditEvent`, …) → an event
//!   whose action is `OperationName` (else the event type), so a whole stream can be ingested.
//!
//! **Alerts API** (`GET /alerts/entities/alerts/v2`; snake_case, `composite_id`): endpoint
//! alerts, automated leads and Next-Gen SIEM correlation detections → alert, bare or in the
//! API's `{"meta", "resources": [...]}` response (one output per resource).
//!
//! Time: the moment Falcon raised the detection. Streaming: `metadata.eventCreationTime`, epoch
//! milliseconds (the `event` fields mix seconds — EPP `ProcessStartTime` — and milliseconds —
//! legacy `ProcessStartTime`, identity `StartTime` — and describe the activity, not the
//! detection). Alerts API: `timestamp` (ISO 8601, UTC), else `created_timestamp`.
//! Severity, mapped explicitly with the original number kept:
//! - legacy `DetectionSummaryEvent` and identity incidents: Falcon's 1–5 scale
//!   (`SeverityName` Informational/INFO, Low, Medium, High, Critical):
//!   1 → 10, 2 → 30, 3 → 50, 4 → 75, 5 → 95; anything else is an error.
//! - `EppDetectionSummaryEvent` and the Alerts API `severity`: already 0–100 in Falcon's
//!   bands (Informational 10, Low 30, Medium 50, High 70, Critical 90), used as the score.
//! - automated leads carry no `severity` but a 0–100 lead `score`, used the same way.
//! - without a number, `SeverityName` / `severity_name` is read as a label; without either,
//!   unknown.
//!
//! Ids: legacy `DetectId`; EPP `CompositeId`; identity `IdentityProtectionIncidentId`; Alerts
//! API `composite_id` (else `id`). Other streaming events have none (content hash).
//! ATT&CK: streaming `TechniqueId`/`TacticId` with `Technique`/`Tactic`; Alerts API
//! `technique_id`/`tactic_id` and `mitre_attack[]`. Falcon mixes in its own framework
//! (`CST0000`, `CSTA0004`, tactic `Malware`, `Machine Learning`); only ATT&CK ids (`T…`) and
//! ATT&CK tactic names are kept.
//! Entities: the detected host (target) with its local address (target) and external address
//! (related); the user who ran the process (actor, `DOMAIN\user` when a logon domain is given);
//! the process (actor) and its parent (related); file hashes and the IOC (related; all-zero
//! placeholder hashes dropped); remote addresses of network accesses (related). Identity
//! incidents: the account (target) and the endpoint it came from (source host and IP).
//! Correlation detections: `source_ips` (source), `destination_ips` (target), `source_hosts` /
//! `destination_hosts` as domains (they are names seen in network logs, often external),
//! `host_names` (related hosts), user names (related).

use riposte_domain::{
    Alert, Decoded, EntityKind, Event, Role, Rule, Severity, SeverityLabel, TechniqueId,
};
use serde_json::Value;

use crate::fields::{self, Entities, first_str, get, req_str, req_time, str_at, text_at};
use crate::{DecodeError, Decoder};

pub struct CrowdStrike;

const PRODUCT: &str = "CrowdStrike Falcon";

impl Decoder for CrowdStrike {
    fn name(&self) -> &'static str {
        "crowdstrike"
    }

    fn recognises(&self, r: &Value) -> bool {
        if str_at(r, "metadata.eventType").is_some() {
            return str_at(r, "metadata.customerIDString").is_some()
                && get(r, "event").is_some_and(Value::is_object);
        }
        if let Some(Value::Array(items)) = get(r, "resources")
            && get(r, "meta").is_some()
        {
            return items.first().is_some_and(is_api_alert);
        }
        is_api_alert(r)
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        if get(&record, "metadata").is_some() {
            return Ok(vec![streaming(record)?]);
        }
        if let Some(resources) = get(&record, "resources")
            && get(&record, "meta").is_some()
        {
            let Value::Array(items) = resources else {
                return Err(DecodeError::new(
                    "resources",
                    format!("expected an array, found {}", fields::type_name(resources)),
                ));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let prefix = format!("resources[{i}].");
                fields::require_object(item)
                    .map_err(|e| DecodeError::new(format!("resources[{i}]"), e.reason))?;
                out.push(api_alert(item.clone()).map_err(|e| within(&prefix, e))?);
            }
            return Ok(out);
        }
        if get(&record, "composite_id").is_some() || get(&record, "cid").is_some() {
            return Ok(vec![api_alert(record)?]);
        }
        Err(DecodeError::record(
            "neither a Falcon streaming event (`metadata`, `event`) nor an Alerts API alert \
             (`composite_id`)",
        ))
    }
}

/// An Alerts API alert: `composite_id` with the customer id and a Falcon link or product.
fn is_api_alert(r: &Value) -> bool {
    str_at(r, "composite_id").is_some()
        && str_at(r, "cid").is_some()
        && (str_at(r, "falcon_host_link").is_some() || str_at(r, "product").is_some())
}

/// Puts the path of the enclosing array element in front of an error's field.
fn within(prefix: &str, e: DecodeError) -> DecodeError {
    if e.field == "$" {
        DecodeError::new(prefix.trim_end_matches('.'), e.reason)
    } else {
        DecodeError::new(format!("{prefix}{}", e.field), e.reason)
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming API

#[derive(Clone, Copy, PartialEq, Eq)]
enum Detection {
    /// `DetectionSummaryEvent`: severity 1–5, `DetectName`, `ComputerName`, `DetectId`.
    Legacy,
    /// `EppDetectionSummaryEvent`: severity 0–100, `Name`, `Hostname`, `CompositeId`.
    Epp,
}

fn streaming(record: Value) -> Result<Decoded, DecodeError> {
    let event_type = req_str(&record, "metadata.eventType")?.to_string();
    match get(&record, "event") {
        Some(Value::Object(_)) => {}
        None | Some(Value::Null) => return Err(DecodeError::missing("event")),
        Some(other) => {
            return Err(DecodeError::new(
                "event",
                format!("expected an object, found {}", fields::type_name(other)),
            ));
        }
    }
    let (time, time_original) = req_time(&record, "metadata.eventCreationTime")?;
    match event_type.to_ascii_lowercase().as_str() {
        "detectionsummaryevent" => detection(record, Detection::Legacy, time, time_original),
        "eppdetectionsummaryevent" => detection(record, Detection::Epp, time, time_original),
        "identityprotectionevent" | "identityprotectionincident" => {
            identity(record, time, time_original)
        }
        _ => {
            let mut e = Entities::new();
            e.add_at(EntityKind::User, Role::Actor, &record, "event.UserId")
                .add_at(EntityKind::Ip, Role::Source, &record, "event.UserIp")
                .add_at(
                    EntityKind::Host,
                    Role::Target,
                    &record,
                    "event.ComputerName",
                )
                .add_at(EntityKind::Host, Role::Target, &record, "event.Hostname");
            let outcome = match get(&record, "event.Success") {
                Some(Value::Bool(true)) => Some("success".to_string()),
                Some(Value::Bool(false)) => Some("failure".to_string()),
                _ => None,
            };
            let action = str_at(&record, "event.OperationName")
                .map(str::to_string)
                .unwrap_or(event_type);
            Ok(Decoded::Event(Event {
                id: String::new(),
                decoder: "crowdstrike".into(),
                product: PRODUCT.into(),
                source_id: None,
                time,
                time_original,
                action,
                outcome,
                entities: e.into_vec(),
                original: record,
                origin: None,
            }))
        }
    }
}

fn detection(
    record: Value,
    kind: Detection,
    time: riposte_domain::Timestamp,
    time_original: String,
) -> Result<Decoded, DecodeError> {
    let r = &record;
    let title = match kind {
        Detection::Legacy => first_str(r, &["event.DetectName", "event.Name"])
            .ok_or_else(|| DecodeError::missing("event.DetectName"))?,
        Detection::Epp => first_str(r, &["event.Name", "event.DetectName"])
            .ok_or_else(|| DecodeError::missing("event.Name"))?,
    }
    .to_string();
    let description =
        first_str(r, &["event.Description", "event.DetectDescription"]).map(str::to_string);
    let severity = match kind {
        Detection::Legacy => severity_1_to_5(r, "event.Severity", "event.SeverityName")?,
        Detection::Epp => severity_0_to_100(r, "event.Severity", "event.SeverityName")?,
    };
    let rule = match str_at(r, "event.IOARuleName") {
        // A custom IOA rule names itself; Falcon's own detections are told apart by pattern.
        Some(name) => Rule::new(
            text_at(r, "event.IOARuleInstanceID"),
            Some(name.to_string()),
        ),
        None => Rule::new(text_at(r, "event.PatternId"), Some(title.clone())),
    };
    let source_id = match kind {
        Detection::Legacy => first_str(r, &["event.DetectId", "event.CompositeId"]),
        Detection::Epp => first_str(r, &["event.CompositeId", "event.DetectId"]),
    }
    .map(str::to_string);
    let mut techniques = Vec::new();
    let mut tactics = Vec::new();
    push_technique(&mut techniques, str_at(r, "event.TechniqueId"));
    push_tactic(
        &mut tactics,
        str_at(r, "event.TacticId"),
        str_at(r, "event.Tactic"),
    );

    let mut e = Entities::new();
    e.add_at(EntityKind::Host, Role::Target, r, "event.ComputerName")
        .add_at(EntityKind::Host, Role::Target, r, "event.Hostname")
        .add_at(EntityKind::Ip, Role::Target, r, "event.LocalIP")
        .add_at(EntityKind::Ip, Role::Target, r, "event.LocalIPv6");
    let user = with_domain(str_at(r, "event.UserName"), str_at(r, "event.LogonDomain"));
    e.add(EntityKind::User, Role::Actor, user.as_deref());
    let process = process_path(str_at(r, "event.FilePath"), str_at(r, "event.FileName"));
    e.add(EntityKind::Process, Role::Actor, process.as_deref());
    let parent = first_str(
        r,
        &["event.ParentImageFilePath", "event.ParentImageFileName"],
    );
    e.add(EntityKind::Process, Role::Related, parent);
    for path in ["event.SHA256String", "event.SHA1String", "event.MD5String"] {
        add_hash(&mut e, str_at(r, path));
    }
    add_ioc(
        &mut e,
        str_at(r, "event.IOCType"),
        str_at(r, "event.IOCValue"),
    );
    if let Some(Value::Array(accesses)) = get(r, "event.NetworkAccesses") {
        for a in accesses {
            e.add_at(EntityKind::Ip, Role::Related, a, "RemoteAddress");
        }
    }

    Ok(Decoded::Alert(Alert {
        id: String::new(),
        decoder: "crowdstrike".into(),
        product: PRODUCT.into(),
        source_id,
        time,
        time_original,
        title,
        description,
        severity,
        rule,
        entities: e.into_vec(),
        techniques,
        tactics,
        original: record,
        origin: None,
    }))
}

fn identity(
    record: Value,
    time: riposte_domain::Timestamp,
    time_original: String,
) -> Result<Decoded, DecodeError> {
    let r = &record;
    let title = req_str(r, "event.IncidentType")?.to_string();
    let severity = severity_1_to_5(r, "event.Severity", "event.SeverityName")?;
    let mut e = Entities::new();
    e.add_at(EntityKind::User, Role::Target, r, "event.UserName")
        .add_at(EntityKind::Host, Role::Source, r, "event.EndpointName")
        .add_at(EntityKind::Ip, Role::Source, r, "event.EndpointIp");
    Ok(Decoded::Alert(Alert {
        id: String::new(),
        decoder: "crowdstrike".into(),
        product: PRODUCT.into(),
        source_id: text_at(r, "event.IdentityProtectionIncidentId"),
        time,
        time_original,
        description: str_at(r, "event.IncidentDescription").map(str::to_string),
        rule: Rule::new(None, Some(title.clone())),
        title,
        severity,
        entities: e.into_vec(),
        techniques: Vec::new(),
        tactics: Vec::new(),
        original: record,
        origin: None,
    }))
}

// ---------------------------------------------------------------------------------------------
// Alerts API

fn api_alert(record: Value) -> Result<Decoded, DecodeError> {
    let r = &record;
    let (time, time_original) = fields::first_time(r, &["timestamp", "created_timestamp"])?;
    let title = match first_str(r, &["display_name", "name"]) {
        Some(t) => t.to_string(),
        None => req_str(r, "name")?.to_string(),
    };
    let severity = if get(r, "severity").is_some_and(|v| !v.is_null()) {
        severity_0_to_100(r, "severity", "severity_name")?
    } else if get(r, "score").is_some_and(|v| !v.is_null()) {
        severity_0_to_100(r, "score", "severity_name")?
    } else {
        severity_0_to_100(r, "severity", "severity_name")?
    };
    let rule_id = text_at(r, "correlation_rule_id").or_else(|| text_at(r, "pattern_id"));
    let rule = Rule::new(rule_id, str_at(r, "name").map(str::to_string));
    let source_id = first_str(r, &["composite_id", "id"]).map(str::to_string);

    let mut techniques = Vec::new();
    let mut tactics = Vec::new();
    push_technique(&mut techniques, str_at(r, "technique_id"));
    push_tactic(&mut tactics, str_at(r, "tactic_id"), str_at(r, "tactic"));
    if let Some(Value::Array(items)) = get(r, "mitre_attack") {
        for m in items {
            push_technique(&mut techniques, str_at(m, "technique_id"));
            push_tactic(&mut tactics, str_at(m, "tactic_id"), str_at(m, "tactic"));
        }
    }

    let mut e = Entities::new();
    e.add_at(EntityKind::Host, Role::Target, r, "device.hostname")
        .add_at(EntityKind::Ip, Role::Target, r, "device.local_ip")
        .add_at(EntityKind::Ip, Role::Related, r, "device.external_ip");
    if let Some(Value::Array(items)) = get(r, "threatgraph_indicators") {
        for i in items {
            e.add_at(EntityKind::Host, Role::Target, i, "hostname");
        }
    }
    let user = with_domain(str_at(r, "user_name"), str_at(r, "logon_domain"));
    e.add(EntityKind::User, Role::Actor, user.as_deref());
    for path in ["user_names", "usernames"] {
        if let Some(Value::Array(names)) = get(r, path) {
            for n in names.iter().filter_map(Value::as_str) {
                if Some(n) != str_at(r, "user_name") {
                    e.add(EntityKind::User, Role::Related, Some(n));
                }
            }
        }
    }
    if let Some(Value::Array(users)) = get(r, "users") {
        for u in users {
            if str_at(u, "user_name") != str_at(r, "user_name") {
                e.add_at(EntityKind::User, Role::Related, u, "user_name");
            }
        }
    }
    e.add_at(EntityKind::Process, Role::Actor, r, "filepath")
        .add_at(
            EntityKind::Process,
            Role::Related,
            r,
            "parent_details.filepath",
        );
    for path in ["sha256", "sha1", "md5"] {
        add_hash(&mut e, str_at(r, path));
    }
    if let Some(Value::Array(iocs)) = get(r, "ioc_context") {
        for i in iocs {
            add_ioc(&mut e, str_at(i, "ioc_type"), str_at(i, "ioc_value"));
        }
    }
    e.add_all_at(EntityKind::Ip, Role::Source, r, "source_ips")
        .add_all_at(EntityKind::Ip, Role::Target, r, "destination_ips")
        .add_all_at(EntityKind::Domain, Role::Source, r, "source_hosts")
        .add_all_at(EntityKind::Domain, Role::Target, r, "destination_hosts")
        .add_all_at(EntityKind::Host, Role::Related, r, "host_names");

    Ok(Decoded::Alert(Alert {
        id: String::new(),
        decoder: "crowdstrike".into(),
        product: PRODUCT.into(),
        source_id,
        time,
        time_original,
        title,
        description: str_at(r, "description").map(str::to_string),
        severity,
        rule,
        entities: e.into_vec(),
        techniques,
        tactics,
        original: record,
        origin: None,
    }))
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

/// A whole number at `path` (also written as a string), `None` when absent.
fn whole_number(r: &Value, path: &str) -> Result<Option<u64>, DecodeError> {
    match get(r, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| DecodeError::new(path, format!("expected a whole number, found {n}"))),
        Some(Value::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| {
                DecodeError::new(path, format!("expected a whole number, found {s:?}"))
            })
        }
        Some(other) => Err(DecodeError::new(
            path,
            format!("expected a number, found {}", fields::type_name(other)),
        )),
    }
}

/// Falcon's legacy 1–5 scale (see the module doc).
fn severity_1_to_5(r: &Value, path: &str, name_path: &str) -> Result<Severity, DecodeError> {
    match whole_number(r, path)? {
        Some(n) => {
            let score = match n {
                1 => 10,
                2 => 30,
                3 => 50,
                4 => 75,
                5 => 95,
                _ => {
                    return Err(DecodeError::new(
                        path,
                        format!("expected a severity from 1 to 5, found {n}"),
                    ));
                }
            };
            Ok(Severity::from_score(score, n.to_string()))
        }
        None => severity_name(r, name_path),
    }
}

/// Falcon's 0–100 scale, used as the score (see the module doc).
fn severity_0_to_100(r: &Value, path: &str, name_path: &str) -> Result<Severity, DecodeError> {
    match whole_number(r, path)? {
        Some(n) if n <= 100 => Ok(Severity::from_score(n as u32, n.to_string())),
        Some(n) => Err(DecodeError::new(
            path,
            format!("expected a severity from 0 to 100, found {n}"),
        )),
        None => severity_name(r, name_path),
    }
}

fn severity_name(r: &Value, path: &str) -> Result<Severity, DecodeError> {
    match str_at(r, path) {
        None => Ok(Severity::unknown()),
        Some(name) => SeverityLabel::parse(name)
            .map(|l| Severity::from_label(l, name))
            .ok_or_else(|| DecodeError::new(path, format!("unknown severity {name:?}"))),
    }
}

fn push_technique(out: &mut Vec<TechniqueId>, id: Option<&str>) {
    if let Some(t) = id.and_then(TechniqueId::parse)
        && !out.contains(&t)
    {
        out.push(t);
    }
}

/// Keeps a tactic when its id is an ATT&CK one (`TA0004`) or, without an id, its name is an
/// ATT&CK tactic; Falcon's own framework (`CSTA0004`, `Malware`) is dropped.
fn push_tactic(out: &mut Vec<String>, id: Option<&str>, name: Option<&str>) {
    let Some(name) = name else { return };
    let keep = match id {
        Some(id) => id.starts_with("TA") && id[2..].bytes().all(|b| b.is_ascii_digit()),
        None => fields::is_attack_tactic(name),
    };
    if keep && !out.iter().any(|t| t == name) {
        out.push(name.to_string());
    }
}

/// `DOMAIN\user` when a logon domain is given, else the user as written.
fn with_domain(user: Option<&str>, domain: Option<&str>) -> Option<String> {
    let user = user?;
    match domain {
        Some(d) if !user.contains('\\') && !user.contains('@') => Some(format!("{d}\\{user}")),
        _ => Some(user.to_string()),
    }
}

/// The image path: legacy events give the directory in `FilePath` and the name apart, EPP
/// events the full path in `FilePath`.
fn process_path(path: Option<&str>, name: Option<&str>) -> Option<String> {
    match (path, name) {
        (Some(p), Some(n)) if p.ends_with(n) => Some(p.to_string()),
        (Some(p), Some(n)) => {
            let sep = if p.contains('\\') { '\\' } else { '/' };
            Some(format!("{}{sep}{n}", p.trim_end_matches(['\\', '/'])))
        }
        (Some(p), None) => Some(p.to_string()),
        (None, n) => n.map(str::to_string),
    }
}

fn add_hash(e: &mut Entities, hash: Option<&str>) {
    if let Some(h) = hash
        && !fields::is_placeholder_hash(h)
    {
        e.add(EntityKind::FileHash, Role::Related, Some(h));
    }
}

/// An indicator of compromise by its Falcon type (`hash_sha256`, `domain`, `ipv4`, …).
fn add_ioc(e: &mut Entities, kind: Option<&str>, value: Option<&str>) {
    let (Some(kind), Some(value)) = (kind, value) else {
        return;
    };
    match kind.to_ascii_lowercase().as_str() {
        "hash_sha256" | "hash_sha1" | "hash_md5" | "sha256" | "sha1" | "md5" => {
            add_hash(e, Some(value));
        }
        "domain" => {
            e.add(EntityKind::Domain, Role::Related, Some(value));
        }
        "ipv4" | "ipv6" => {
            e.add(EntityKind::Ip, Role::Related, Some(value));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputKind;
    use crate::testkit::*;
    use serde_json::json;

    const LEGACY: &str = "alerts/crowdstrike/falcon/test-falcon-detection-summary.log";
    const EPP: &str = "alerts/crowdstrike/falcon/test-falcon-epp-detection-summary.log";
    const IDENTITY: &str = "alerts/crowdstrike/falcon/test-falcon-identity-protection-incident.log";
    const ALERT: &str = "alerts/crowdstrike/alert/test-alert.log";
    const LEAD: &str = "alerts/crowdstrike/alert/test-automated-lead.log";
    const CORRELATION: &str = "alerts/crowdstrike/alert/test-correlation-detection.log";

    fn techniques(a: &Alert) -> Vec<&str> {
        a.techniques.iter().map(TechniqueId::as_str).collect()
    }

    #[test]
    fn legacy_detection_summary() {
        let out = decode_file(&CrowdStrike, LEGACY);
        assert_eq!(out.len(), 1, "one pretty-printed document");
        let a = alert(&out[0]);
        assert_eq!(a.product, "CrowdStrike Falcon");
        assert_eq!(a.title, "NGAV");
        assert_eq!(
            a.description.as_deref(),
            Some("This file is classified as Adware/PUP based on its SHA256 hash.")
        );
        assert_eq!(a.source_id.as_deref(), Some("detect::id::test"));
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(rule.id.as_deref(), Some("5728"));
        assert_eq!(rule.name.as_deref(), Some("NGAV"));
        assert_eq!((a.severity.score, a.severity.original.as_str()), (30, "2"));
        assert_eq!(a.severity.label, SeverityLabel::Low);
        assert_eq!(a.time.to_string(), "2023-06-15T16:06:52.4Z");
        assert_eq!(a.time_original, "1686845212400");
        // `Malware` / `PUP` are Falcon's own framework, not ATT&CK.
        assert!(a.techniques.is_empty() && a.tactics.is_empty());
        assert_eq!(
            ents(&out[0], EntityKind::Host, Role::Target),
            ["elastichost"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Target),
            ["89.160.20.112"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::User, Role::Actor),
            ["elasticuser"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Process, Role::Actor),
            ["\\device\\harddiskvolume3\\users\\elasticuser\\software\\testsoftware\\testfile.exe"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::FileHash, Role::Related),
            [
                "0b2cde5b355bda69aeb15159fa98b5554053f0936259a53c6dfb0934389238a2",
                "7e54a24d4df5b7fe4a75d7ce1c027705c368666b",
                "49f30e09200e7b59edc5ef32fbd0442c"
            ]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Related),
            ["67.43.156.1"]
        );
        assert_eq!(ents_any(&out[0], EntityKind::Ip).len(), 2);
    }

    #[test]
    fn epp_detection_summaries_record_by_record() {
        let out = decode_file(&CrowdStrike, EPP);
        assert_eq!(out.len(), 6);
        let sev: Vec<(u8, &str)> = out
            .iter()
            .map(|d| {
                let a = alert(d);
                (a.severity.score, a.severity.original.as_str())
            })
            .collect();
        assert_eq!(
            sev,
            [
                (30, "30"),
                (70, "70"),
                (70, "70"),
                (70, "70"),
                (30, "30"),
                (70, "70")
            ]
        );
        let titles: Vec<&str> = out.iter().map(|d| alert(d).title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "NGAV",
                "Known Malware",
                "OnDemandScanfiletest",
                "Known Malware",
                "Suspicious Activity",
                "Suspicious Activity"
            ]
        );

        let a = alert(&out[0]);
        assert_eq!(
            a.source_id.as_deref(),
            Some(
                "44be50f58ccfcfcfcfcfcfcfcffc:ind:c8d1292a8a904216aa25ab728f4b45fd:11111111111-2222-3333333"
            )
        );
        assert_eq!(a.time.to_string(), "2023-06-15T16:06:52.4Z");
        assert_eq!(
            ents(&out[0], EntityKind::Host, Role::Target),
            ["desktop1111"]
        );
        assert_eq!(ents(&out[0], EntityKind::Ip, Role::Target), ["81.2.69.144"]);
        assert_eq!(
            ents(&out[0], EntityKind::User, Role::Actor),
            ["ovac\\user11111"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Process, Role::Actor),
            [
                "\\device\\harddiskvolume2\\program files (x86)\\remote utilities - host\\rfusclient.exe"
            ]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Process, Role::Related),
            [
                "\\device\\harddiskvolume2\\program files (x86)\\remote utilities - host\\rutserv.exe"
            ]
        );
        // The all-zero SHA1 placeholder is not an entity; the IOC repeats the SHA256.
        assert_eq!(
            ents(&out[0], EntityKind::FileHash, Role::Related),
            [
                "faf0c5e4ef7dbcfd863377c55a4d1d87a3f6a58c13a8a9882e11012066f31976",
                "848a53dc549be0386e5da0f49700c389"
            ]
        );

        // Linux, no logon domain.
        assert_eq!(ents(&out[1], EntityKind::User, Role::Actor), ["azureuser"]);
        assert_eq!(
            ents(&out[1], EntityKind::Process, Role::Actor),
            ["/usr/bin/git"]
        );
        assert_eq!(ents(&out[1], EntityKind::Ip, Role::Target), ["172.17.0.1"]);
        // On-demand scan: no user, no process start.
        assert!(ents_any(&out[2], EntityKind::User).is_empty());
        assert_eq!(
            ents(&out[2], EntityKind::Host, Role::Target),
            ["frhostname"]
        );
        assert_eq!(
            alert(&out[2]).source_id.as_deref(),
            Some("7da61e27e34f4b8394081896af72e2c7")
        );
        // IPv6 next to IPv4.
        assert_eq!(
            ents(&out[3], EntityKind::Ip, Role::Target),
            ["172.17.0.1", "2a02:cf40::"]
        );
        let a = alert(&out[4]);
        assert_eq!(a.time.to_string(), "2025-03-21T19:07:20Z");
        assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("10197"));
        assert_eq!(
            ents(&out[4], EntityKind::User, Role::Actor),
            ["ciso-dummy-csdev\\administrator"]
        );
        assert!(
            ents_any(&out[4], EntityKind::FileHash).is_empty(),
            "all hashes are zeros"
        );
        // A custom IOA rule names the rule.
        let a = alert(&out[5]);
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(rule.id.as_deref(), Some("167"));
        assert_eq!(
            rule.name.as_deref(),
            Some("Initial Access via Remote Service (Atera) Block")
        );
        assert_eq!(
            a.description.as_deref(),
            Some("A process triggered a high severity custom rule.")
        );
        assert!(
            a.tactics.is_empty(),
            "`Custom Intelligence` is not an ATT&CK tactic"
        );
    }

    #[test]
    fn identity_protection_incident() {
        let out = decode_file(&CrowdStrike, IDENTITY);
        assert_eq!(out.len(), 1);
        let a = alert(&out[0]);
        assert_eq!(a.title, "UNUSUAL_ENDPOINT_USE");
        assert_eq!(
            a.description.as_deref(),
            Some("User seen coming from a location that deviates from their baseline.")
        );
        assert_eq!(a.source_id.as_deref(), Some("INC-123"));
        assert_eq!((a.severity.score, a.severity.original.as_str()), (10, "1"));
        assert_eq!(a.time.to_string(), "2023-06-16T05:03:56.581Z");
        assert_eq!(ents(&out[0], EntityKind::User, Role::Target), ["testuser"]);
        assert_eq!(
            ents(&out[0], EntityKind::Host, Role::Source),
            ["testhostname"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Source),
            ["89.160.20.112"]
        );
    }

    #[test]
    fn event_type_spellings_are_accepted() {
        for (spelling, score) in [
            ("EPPDetectionSummaryEvent", 50),
            ("EppDetectionSummaryEvent", 50),
            ("eppdetectionsummaryevent", 50),
        ] {
            let r = json!({
                "metadata": {"customerIDString": "c", "eventType": spelling, "eventCreationTime": 1700000000000u64},
                "event": {"Name": "X", "Severity": 50, "CompositeId": "c:ind:a:1"}
            });
            assert!(CrowdStrike.recognises(&r));
            let out = CrowdStrike.decode(r).unwrap();
            assert_eq!(alert(&out[0]).severity.score, score, "{spelling}");
        }
        let r = json!({
            "metadata": {"customerIDString": "c", "eventType": "IdentityProtectionIncident", "eventCreationTime": 1700000000000u64},
            "event": {"IncidentType": "LATERAL_MOVEMENT", "Severity": 4, "SeverityName": "HIGH", "UserName": "CORP\\bob"}
        });
        let out = CrowdStrike.decode(r).unwrap();
        assert_eq!(alert(&out[0]).severity.score, 75);
    }

    #[test]
    fn attack_ids_in_streaming_detections() {
        // Built from the documented DetectionSummaryEvent fields (TacticId/TechniqueId), which
        // the corpus samples (Falcon's own framework) do not carry.
        let r = json!({
            "metadata": {"customerIDString": "c", "eventType": "DetectionSummaryEvent", "eventCreationTime": 1700000000000u64},
            "event": {"DetectName": "Credential Dumping", "Severity": 5, "SeverityName": "Critical",
                      "Tactic": "Credential Access", "TacticId": "TA0006",
                      "Technique": "OS Credential Dumping", "TechniqueId": "T1003",
                      "ComputerName": "WS-042", "UserName": "alice", "DetectId": "ldt:1:2"}
        });
        let out = CrowdStrike.decode(r).unwrap();
        let a = alert(&out[0]);
        assert_eq!(techniques(a), ["T1003"]);
        assert_eq!(a.tactics, ["Credential Access"]);
        assert_eq!(
            (a.severity.score, a.severity.label),
            (95, SeverityLabel::Critical)
        );
    }

    #[test]
    fn other_streaming_events_become_events() {
        // Shape of an AuthActivityAuditEvent as documented for the Event Streams API.
        let r = json!({
            "metadata": {"customerIDString": "c", "offset": 7, "eventType": "AuthActivityAuditEvent",
                         "eventCreationTime": 1581542137000u64, "version": "1.0"},
            "event": {"UserId": "alice@corp.example", "UserIp": "192.0.2.7",
                      "OperationName": "twoFactorAuthenticate", "ServiceName": "CrowdStrike Authentication",
                      "Success": true, "UTCTimestamp": 1581542137}
        });
        assert!(CrowdStrike.recognises(&r));
        let out = CrowdStrike.decode(r).unwrap();
        let e = event(&out[0]);
        assert_eq!(e.action, "twoFactorAuthenticate");
        assert_eq!(e.outcome.as_deref(), Some("success"));
        assert_eq!(e.time.to_string(), "2020-02-12T21:15:37Z");
        assert_eq!(ents(&out[0], EntityKind::Ip, Role::Source), ["192.0.2.7"]);
    }

    #[test]
    fn alerts_api_endpoint_alert() {
        let out = decode_file(&CrowdStrike, ALERT);
        assert_eq!(out.len(), 1);
        let a = alert(&out[0]);
        assert_eq!(a.title, "PrewittPupAdwareSensorDetect-Lowest");
        assert_eq!(
            a.source_id.as_deref(),
            Some(
                "92012896127c4a8236ba7601b886b0:ind:2ce412d17b334ad4adc8c1c54dbfec4b:399748687993-5761-42627600"
            )
        );
        assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("5761"));
        assert_eq!((a.severity.score, a.severity.original.as_str()), (30, "30"));
        assert_eq!(a.time.to_string(), "2023-11-03T18:00:22.328Z");
        assert_eq!(a.time_original, "2023-11-03T18:00:22.328Z");
        // CST0000 / CSTA0004 are Falcon's framework.
        assert!(a.techniques.is_empty() && a.tactics.is_empty());
        assert_eq!(
            ents(&out[0], EntityKind::Host, Role::Target),
            ["abc709-1175"]
        );
        assert_eq!(ents(&out[0], EntityKind::Ip, Role::Target), ["81.2.69.142"]);
        assert_eq!(
            ents(&out[0], EntityKind::User, Role::Actor),
            ["absys\\mohit.jha"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Process, Role::Related),
            ["\\device\\harddiskvolume3\\windows\\explorer.exe"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::FileHash, Role::Related),
            [
                "b26a6791b72753d2317efd5e1363d93fdd33e611c8b9e08a3b24ea4d755b81fd",
                "cdf9cfebb400ce89d5b6032bfcdc693b"
            ]
        );
    }

    #[test]
    fn alerts_api_automated_leads() {
        let out = decode_file(&CrowdStrike, LEAD);
        assert_eq!(out.len(), 2);
        let lead = alert(&out[0]);
        assert_eq!(lead.title, "host-1.example.local at 2026-05-11T05:11:47Z");
        assert_eq!(
            (lead.severity.score, lead.severity.original.as_str()),
            (21, "21")
        );
        assert_eq!(lead.time.to_string(), "2026-05-11T23:51:55Z");
        assert_eq!(techniques(lead), ["T1203"]);
        assert_eq!(lead.tactics, ["Execution"]);
        assert_eq!(lead.rule.as_ref().unwrap().id.as_deref(), Some("185000"));
        assert_eq!(ents(&out[0], EntityKind::Host, Role::Target), ["host-1"]);

        let ctx = alert(&out[1]);
        assert_eq!(ctx.title, "WebServiceExecutesSuspiciousCommands");
        assert_eq!(
            ctx.severity,
            Severity::unknown(),
            "a lead's context signal has no severity"
        );
        assert_eq!(ctx.time.to_string(), "2026-05-11T05:13:20.244Z");
        assert_eq!(techniques(ctx), ["T1068"]);
        assert_eq!(ctx.tactics, ["Privilege Escalation"]);
        assert_eq!(ents(&out[1], EntityKind::Host, Role::Target), ["host-1"]);
        assert_eq!(ents(&out[1], EntityKind::Ip, Role::Target), ["192.0.2.30"]);
        assert_eq!(
            ents(&out[1], EntityKind::Ip, Role::Related),
            ["198.51.100.10"]
        );
        assert_eq!(ents(&out[1], EntityKind::User, Role::Actor), ["root"]);
        assert!(ents(&out[1], EntityKind::User, Role::Related).is_empty());
        assert_eq!(
            ents(&out[1], EntityKind::Process, Role::Actor),
            ["/usr/bin/ps"]
        );
        assert_eq!(
            ents(&out[1], EntityKind::Ip, Role::Source),
            ["192.0.2.30"],
            "source_ips"
        );
    }

    #[test]
    fn alerts_api_correlation_detections() {
        let out = decode_file(&CrowdStrike, CORRELATION);
        assert_eq!(out.len(), 2);
        let a = alert(&out[0]);
        assert_eq!(a.title, "UC1-InboundThreatDetection(GreyNoiseEnriched)");
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(rule.id.as_deref(), Some("019a06bf00e67be489340eca8c435140"));
        assert_eq!((a.severity.score, a.severity.original.as_str()), (30, "30"));
        assert_eq!(a.time.to_string(), "2026-05-26T12:14:34Z");
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Source),
            ["198.51.100.10"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Domain, Role::Source),
            ["censys.io"]
        );
        assert!(ents_any(&out[0], EntityKind::User).is_empty());

        let b = alert(&out[1]);
        assert_eq!(b.title, "POCdomainparsingforcase");
        assert_eq!(
            (b.severity.score, b.severity.label),
            (50, SeverityLabel::Medium)
        );
        assert_eq!(
            ents(&out[1], EntityKind::Ip, Role::Source),
            ["198.51.100.11"]
        );
        assert_eq!(
            ents(&out[1], EntityKind::Domain, Role::Source),
            ["slack.com", "host-desktop-01.example.local"]
        );
        assert_eq!(
            ents(&out[1], EntityKind::Domain, Role::Target),
            ["host-nas-01.example.local"]
        );
        assert_eq!(
            ents(&out[1], EntityKind::Host, Role::Related),
            ["host-desktop-01"]
        );
        assert_eq!(
            ents(&out[1], EntityKind::User, Role::Related),
            ["example-user"]
        );
        assert!(b.techniques.is_empty());
    }

    #[test]
    fn alerts_api_response_wrapper() {
        // `GET /alerts/entities/alerts/v2` answers `{"meta", "resources", "errors"}`.
        let r = json!({
            "meta": {"query_time": 0.01, "trace_id": "t"},
            "resources": [
                {"cid": "c", "composite_id": "c:ind:a:1", "product": "epp", "name": "A",
                 "severity": 90, "timestamp": "2024-01-02T03:04:05Z"},
                {"cid": "c", "composite_id": "c:ind:a:2", "product": "epp", "name": "B",
                 "severity": 10, "timestamp": "2024-01-02T03:04:06Z"}
            ],
            "errors": []
        });
        assert!(CrowdStrike.recognises(&r));
        let out = CrowdStrike.decode(r).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(alert(&out[0]).severity.label, SeverityLabel::Critical);
        assert_eq!(alert(&out[1]).source_id.as_deref(), Some("c:ind:a:2"));
        let e = CrowdStrike
            .decode(
                json!({"meta": {}, "resources": [{"cid": "c", "composite_id": "x", "name": "A"}]}),
            )
            .unwrap_err();
        assert_eq!(e.field, "resources[0].timestamp");
    }

    #[test]
    fn recognises_falcon_only() {
        for f in [LEGACY, EPP, IDENTITY, ALERT, LEAD, CORRELATION] {
            for r in corpus_records(f, InputKind::Json) {
                assert!(CrowdStrike.recognises(&r), "{f}");
            }
        }
        for f in [
            "alerts/defender/endpoint/test-defenderatp.log",
            "alerts/sentinelone/threat/test-pipeline-threat.log",
            "alerts/sentinelone/alert/test-pipeline-alert.log",
            "alerts/suricata/eve/test-eve-small.log",
            "alerts/guardduty/test-guard_duty.first12.log",
        ] {
            for r in corpus_records(f, InputKind::Json) {
                assert!(!CrowdStrike.recognises(&r), "{f}");
            }
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        let stream = |event: Value| {
            json!({"metadata": {"customerIDString": "c", "eventType": "DetectionSummaryEvent",
                                "eventCreationTime": 1700000000000u64}, "event": event})
        };
        assert_eq!(CrowdStrike.decode(json!("x")).unwrap_err().field, "$");
        assert_eq!(CrowdStrike.decode(json!({"a": 1})).unwrap_err().field, "$");
        let e = CrowdStrike
            .decode(json!({"metadata": {"eventType": "DetectionSummaryEvent"}, "event": {"DetectName": "x"}}))
            .unwrap_err();
        assert_eq!(e.to_string(), "field `metadata.eventCreationTime`: missing");
        let e = CrowdStrike
            .decode(json!({"metadata": {"eventType": "DetectionSummaryEvent", "eventCreationTime": "soon"}, "event": {}}))
            .unwrap_err();
        assert_eq!(e.field, "metadata.eventCreationTime");
        let e = CrowdStrike
            .decode(json!({"metadata": {"eventType": 3}, "event": {}}))
            .unwrap_err();
        assert_eq!(e.field, "metadata.eventType");
        let e = CrowdStrike
            .decode(json!({"metadata": {"eventType": "DetectionSummaryEvent", "eventCreationTime": 1}, "event": "x"}))
            .unwrap_err();
        assert_eq!(e.field, "event");
        let e = CrowdStrike
            .decode(
                json!({"metadata": {"eventType": "DetectionSummaryEvent", "eventCreationTime": 1}}),
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "field `event`: missing");
        assert_eq!(
            CrowdStrike
                .decode(stream(json!({"Severity": 2})))
                .unwrap_err()
                .field,
            "event.DetectName"
        );
        let e = CrowdStrike
            .decode(stream(json!({"DetectName": "x", "Severity": 9})))
            .unwrap_err();
        assert_eq!(e.field, "event.Severity");
        let e = CrowdStrike
            .decode(stream(json!({"DetectName": "x", "Severity": [2]})))
            .unwrap_err();
        assert_eq!(e.field, "event.Severity");
        let e = CrowdStrike
            .decode(stream(json!({"DetectName": "x", "SeverityName": "bogus"})))
            .unwrap_err();
        assert_eq!(e.field, "event.SeverityName");
        let e = CrowdStrike
            .decode(json!({"cid": "c", "composite_id": "x", "name": "A", "timestamp": "2024-01-01T00:00:00Z", "severity": 101}))
            .unwrap_err();
        assert_eq!(e.field, "severity");
        let e = CrowdStrike
            .decode(json!({"cid": "c", "composite_id": "x", "timestamp": "2024-01-01T00:00:00Z"}))
            .unwrap_err();
        assert_eq!(e.to_string(), "field `name`: missing");
        // Non-ASCII and U+FFFD pass through.
        let out = CrowdStrike
            .decode(stream(
                json!({"DetectName": "Détection \u{FFFD}", "Severity": 3, "UserName": "jürgen"}),
            ))
            .unwrap();
        assert_eq!(alert(&out[0]).title, "Détection \u{FFFD}");
    }
}
