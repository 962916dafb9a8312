//! Microsoft Sentinel alerts and incidents, in the two shapes a SOC receives them: the Azure
//! REST (ARM) resources — an alert `{"kind": "SecurityAlert", "properties": {…}}` and an
//! incident `{"type": "Microsoft.SecurityInsights/incidents", "properties": {…}}` — and the
//! Log Analytics table rows `SecurityAlert` and `SecurityIncident` (as exported through
//! diagnostic settings, Event Hubs or a query). Each becomes one alert; an ARM list page
//! `{"value": [...]}` gives one per item.
//!
//! Time: ARM alert `properties.timeGenerated` (else `startTimeUtc`), ARM incident
//! `properties.createdTimeUtc`; rows `TimeGenerated` (incident rows `CreatedTime` first). ISO
//! 8601 UTC.
//! Severity: Sentinel's `AlertSeverity`/`IncidentSeverity` labels, case-insensitive:
//! Informational → 10, Low → 30, Medium → 50, High → 75. The original text is kept; any other
//! value is an error.
//! Ids: the alert's `systemAlertId` (`SystemAlertId`), the incident's GUID `name`
//! (`IncidentName`); both shapes of one record therefore share a source id.
//! ATT&CK: `tactics` as Sentinel names them (`InitialAccess`), `techniques`/`subTechniques`
//! where given (ARM incidents: `additionalData.tactics`/`techniques`; rows: `Tactics` is a
//! comma-separated string, `Techniques` and `SubTechniques` JSON arrays held in strings).
//! Rule: the alert's `alertType` with its display name; the incident's first
//! `relatedAnalyticRuleIds` entry.
//! Entities: a row's `Entities` (a JSON string of Sentinel entity objects, `$ref`s resolved):
//! hosts and Azure resources as targets, mailboxes and message recipients as targets, message
//! senders as sources, process images as actors, accounts, addresses, URLs, file hashes and
//! DNS names as related (Sentinel does not say which side they were on). An ARM alert has no
//! entity list; its `resourceIdentifiers` of type `AzureResource` are targets. The
//! `compromisedEntity` text is used only when its kind is certain (an address, `user@domain`,
//! `DOMAIN\user`, an ARM resource id). An incident's `owner` is the analyst assigned to it and
//! is not an entity.

use std::collections::HashMap;

use riposte_domain::{Alert, Decoded, EntityKind, Role, Rule, Severity, TechniqueId};
use serde_json::Value;

use crate::fields::{self, Entities, first_str, first_time, get, req_str, str_at, text_at};
use crate::{DecodeError, Decoder};

pub struct Sentinel;

const PRODUCT: &str = "Microsoft Sentinel";

/// The four shapes this decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    ArmAlert,
    ArmIncident,
    RowAlert,
    RowIncident,
}

fn shape(r: &Value) -> Option<Shape> {
    if get(r, "properties").is_some_and(Value::is_object) {
        if str_at(r, "kind") == Some("SecurityAlert") {
            return Some(Shape::ArmAlert);
        }
        if str_at(r, "type")
            .is_some_and(|t| t.eq_ignore_ascii_case("Microsoft.SecurityInsights/incidents"))
        {
            return Some(Shape::ArmIncident);
        }
        return None;
    }
    match str_at(r, "Type") {
        Some("SecurityAlert") => Some(Shape::RowAlert),
        Some("SecurityIncident") => Some(Shape::RowIncident),
        Some(_) => None,
        None if get(r, "SystemAlertId").is_some() && get(r, "AlertName").is_some() => {
            Some(Shape::RowAlert)
        }
        None if get(r, "IncidentName").is_some() && get(r, "IncidentNumber").is_some() => {
            Some(Shape::RowIncident)
        }
        None => None,
    }
}

impl Decoder for Sentinel {
    fn name(&self) -> &'static str {
        "sentinel"
    }

    fn recognises(&self, r: &Value) -> bool {
        if shape(r).is_some() {
            return true;
        }
        match get(r, "value") {
            Some(Value::Array(items)) => items.first().is_some_and(|i| shape(i).is_some()),
            _ => false,
        }
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        if shape(&record).is_none()
            && let Some(Value::Array(items)) = get(&record, "value")
        {
            return items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    fields::require_object(item)
                        .and_then(|()| decode_one(item.clone()))
                        .map_err(|e| within(&format!("value[{i}]"), e))
                })
                .collect();
        }
        Ok(vec![decode_one(record)?])
    }
}

fn within(prefix: &str, e: DecodeError) -> DecodeError {
    let field = if e.field == "$" {
        prefix.to_string()
    } else {
        format!("{prefix}.{}", e.field)
    };
    DecodeError::new(field, e.reason)
}

fn decode_one(record: Value) -> Result<Decoded, DecodeError> {
    match shape(&record) {
        Some(Shape::ArmAlert) => arm_alert(record),
        Some(Shape::ArmIncident) => arm_incident(record),
        Some(Shape::RowAlert) => row_alert(record),
        Some(Shape::RowIncident) => row_incident(record),
        None => Err(DecodeError::record(
            "not a Sentinel alert or incident: expected `kind: SecurityAlert` or \
             `type: Microsoft.SecurityInsights/incidents` with `properties`, or a \
             SecurityAlert/SecurityIncident row",
        )),
    }
}

struct Parts {
    source_id: Option<String>,
    time: (riposte_domain::Timestamp, String),
    title: String,
    description: Option<String>,
    severity: Severity,
    rule: Option<Rule>,
    product: String,
    entities: Entities,
    techniques: Vec<TechniqueId>,
    tactics: Vec<String>,
}

fn finish(p: Parts, record: Value) -> Decoded {
    Decoded::Alert(Alert {
        id: String::new(),
        decoder: "sentinel".into(),
        product: p.product,
        source_id: p.source_id,
        time: p.time.0,
        time_original: p.time.1,
        title: p.title,
        description: p.description,
        severity: p.severity,
        rule: p.rule,
        entities: p.entities.into_vec(),
        techniques: p.techniques,
        tactics: p.tactics,
        original: record,
        origin: None,
    })
}

fn arm_alert(record: Value) -> Result<Decoded, DecodeError> {
    let title = match first_str(
        &record,
        &["properties.alertDisplayName", "properties.friendlyName"],
    ) {
        Some(t) => t.to_string(),
        None => req_str(&record, "properties.alertDisplayName")?.to_string(),
    };
    let time = first_time(
        &record,
        &["properties.timeGenerated", "properties.startTimeUtc"],
    )?;
    let severity = severity(&record, "properties.severity")?;
    let mut techniques = Vec::new();
    techniques_from_array(&record, "properties.techniques", &mut techniques)?;
    techniques_from_array(&record, "properties.subTechniques", &mut techniques)?;
    let tactics = tactics_from_array(&record, "properties.tactics")?;
    let mut entities = Entities::new();
    compromised(
        &mut entities,
        str_at(&record, "properties.compromisedEntity"),
    );
    if let Some(Value::Array(ids)) = get(&record, "properties.resourceIdentifiers") {
        for id in ids {
            if str_at(id, "type") == Some("AzureResource") {
                entities.add(
                    EntityKind::CloudResource,
                    Role::Target,
                    str_at(id, "resourceId"),
                );
            }
        }
    }
    let parts = Parts {
        source_id: first_str(&record, &["properties.systemAlertId", "name"]).map(str::to_string),
        time,
        description: str_at(&record, "properties.description").map(str::to_string),
        severity,
        rule: Rule::new(
            str_at(&record, "properties.alertType").map(str::to_string),
            Some(title.clone()),
        ),
        title,
        product: str_at(&record, "properties.productName")
            .unwrap_or(PRODUCT)
            .to_string(),
        entities,
        techniques,
        tactics,
    };
    Ok(finish(parts, record))
}

fn arm_incident(record: Value) -> Result<Decoded, DecodeError> {
    let title = req_str(&record, "properties.title")?.to_string();
    let time = fields::req_time(&record, "properties.createdTimeUtc")?;
    let severity = severity(&record, "properties.severity")?;
    let mut techniques = Vec::new();
    techniques_from_array(
        &record,
        "properties.additionalData.techniques",
        &mut techniques,
    )?;
    let tactics = tactics_from_array(&record, "properties.additionalData.tactics")?;
    let rule_id = match get(&record, "properties.relatedAnalyticRuleIds") {
        Some(Value::Array(ids)) => ids.iter().find_map(Value::as_str).map(str::to_string),
        _ => None,
    };
    let parts = Parts {
        source_id: text_at(&record, "name"),
        time,
        title,
        description: str_at(&record, "properties.description").map(str::to_string),
        severity,
        rule: Rule::new(rule_id, None),
        product: PRODUCT.into(),
        entities: Entities::new(),
        techniques,
        tactics,
    };
    Ok(finish(parts, record))
}

fn row_alert(record: Value) -> Result<Decoded, DecodeError> {
    let title = match first_str(&record, &["AlertName", "DisplayName"]) {
        Some(t) => t.to_string(),
        None => req_str(&record, "AlertName")?.to_string(),
    };
    let time = first_time(&record, &["TimeGenerated", "StartTime"])?;
    let severity = severity(&record, "AlertSeverity")?;
    let mut techniques = Vec::new();
    techniques_from_json_text(&record, "Techniques", &mut techniques)?;
    techniques_from_json_text(&record, "SubTechniques", &mut techniques)?;
    let tactics = tactics_from_text(&record, "Tactics")?;
    let mut entities = Entities::new();
    row_entities(&record, &mut entities)?;
    compromised(&mut entities, str_at(&record, "CompromisedEntity"));
    let parts = Parts {
        source_id: text_at(&record, "SystemAlertId"),
        time,
        description: str_at(&record, "Description").map(str::to_string),
        severity,
        rule: Rule::new(
            str_at(&record, "AlertType").map(str::to_string),
            Some(title.clone()),
        ),
        title,
        product: str_at(&record, "ProductName")
            .unwrap_or(PRODUCT)
            .to_string(),
        entities,
        techniques,
        tactics,
    };
    Ok(finish(parts, record))
}

fn row_incident(record: Value) -> Result<Decoded, DecodeError> {
    let title = req_str(&record, "Title")?.to_string();
    let time = first_time(&record, &["CreatedTime", "TimeGenerated"])?;
    let severity = severity(&record, "Severity")?;
    // `AdditionalData` is an object in the table; exports sometimes hold it as JSON text.
    let additional = match get(&record, "AdditionalData") {
        Some(Value::String(s)) => serde_json::from_str(s)
            .map_err(|e| DecodeError::new("AdditionalData", format!("not a JSON object: {e}")))?,
        Some(v) => v.clone(),
        None => Value::Null,
    };
    let mut techniques = Vec::new();
    techniques_from_array(&additional, "techniques", &mut techniques)
        .map_err(|e| within("AdditionalData", e))?;
    let tactics =
        tactics_from_array(&additional, "tactics").map_err(|e| within("AdditionalData", e))?;
    let rule_id = match get(&record, "RelatedAnalyticRuleIds") {
        Some(Value::Array(ids)) => ids.iter().find_map(Value::as_str).map(str::to_string),
        Some(Value::String(s)) => serde_json::from_str::<Vec<String>>(s)
            .ok()
            .and_then(|v| v.into_iter().next()),
        _ => None,
    };
    let parts = Parts {
        source_id: text_at(&record, "IncidentName"),
        time,
        title,
        description: str_at(&record, "Description").map(str::to_string),
        severity,
        rule: Rule::new(rule_id, None),
        product: PRODUCT.into(),
        entities: Entities::new(),
        techniques,
        tactics,
    };
    Ok(finish(parts, record))
}

/// Sentinel's severity labels, mapped as the module doc says.
fn severity(r: &Value, path: &str) -> Result<Severity, DecodeError> {
    let text = match get(r, path) {
        None | Some(Value::Null) => return Ok(Severity::unknown()),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(DecodeError::new(
                path,
                format!("expected a string, found {}", fields::type_name(other)),
            ));
        }
    };
    let score = match text.trim().to_ascii_lowercase().as_str() {
        "informational" => 10,
        "low" => 30,
        "medium" => 50,
        "high" => 75,
        _ => {
            return Err(DecodeError::new(
                path,
                format!("unknown severity {text:?} (Informational, Low, Medium, High)"),
            ));
        }
    };
    Ok(Severity::from_score(score, text.as_str()))
}

fn push_technique(out: &mut Vec<TechniqueId>, s: &str) {
    if let Some(t) = TechniqueId::parse(s)
        && !out.contains(&t)
    {
        out.push(t);
    }
}

fn strings_of<'a>(r: &'a Value, path: &str) -> Result<Vec<&'a str>, DecodeError> {
    match get(r, path) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().ok_or_else(|| {
                    DecodeError::new(
                        format!("{path}[{i}]"),
                        format!("expected a string, found {}", fields::type_name(v)),
                    )
                })
            })
            .collect(),
        Some(other) => Err(DecodeError::new(
            path,
            format!("expected an array, found {}", fields::type_name(other)),
        )),
    }
}

/// Technique ids from an array of strings; ids that do not parse are skipped.
fn techniques_from_array(
    r: &Value,
    path: &str,
    out: &mut Vec<TechniqueId>,
) -> Result<(), DecodeError> {
    for s in strings_of(r, path)? {
        push_technique(out, s);
    }
    Ok(())
}

fn tactics_from_array(r: &Value, path: &str) -> Result<Vec<String>, DecodeError> {
    let mut out: Vec<String> = Vec::new();
    for s in strings_of(r, path)? {
        let s = s.trim();
        if !s.is_empty() && !out.iter().any(|t| t == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

/// A row's `Techniques`: a JSON array written as a string (`["T1078"]`), or a real array.
fn techniques_from_json_text(
    r: &Value,
    path: &str,
    out: &mut Vec<TechniqueId>,
) -> Result<(), DecodeError> {
    match get(r, path) {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            let ids: Vec<String> = serde_json::from_str(s)
                .map_err(|e| DecodeError::new(path, format!("not a JSON array of strings: {e}")))?;
            for id in &ids {
                push_technique(out, id);
            }
            Ok(())
        }
        Some(Value::String(_)) => Ok(()),
        _ => techniques_from_array(r, path, out),
    }
}

/// A row's `Tactics`: comma-separated (`InitialAccess, Persistence`), or an array.
fn tactics_from_text(r: &Value, path: &str) -> Result<Vec<String>, DecodeError> {
    match get(r, path) {
        Some(Value::String(s)) => {
            let mut out: Vec<String> = Vec::new();
            for t in s.split(',').map(str::trim) {
                if !t.is_empty()
                    && !t.eq_ignore_ascii_case("unknown")
                    && !out.iter().any(|x| x == t)
                {
                    out.push(t.to_string());
                }
            }
            Ok(out)
        }
        _ => tactics_from_array(r, path),
    }
}

/// `compromisedEntity` only when its kind is certain.
fn compromised(e: &mut Entities, text: Option<&str>) {
    let Some(s) = text.map(str::trim) else {
        return;
    };
    if riposte_domain::entity::canonical_ip(s).is_some() {
        e.add(EntityKind::Ip, Role::Target, Some(s));
    } else if s.to_ascii_lowercase().starts_with("/subscriptions/") {
        e.add(EntityKind::CloudResource, Role::Target, Some(s));
    } else if !s.contains(char::is_whitespace) && (s.contains('@') || s.contains('\\')) {
        e.add(EntityKind::User, Role::Target, Some(s));
    }
}

/// Every Sentinel entity object in the tree, in document order, and the `$id` index.
fn collect<'a>(v: &'a Value, all: &mut Vec<&'a Value>, ids: &mut HashMap<&'a str, &'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect(i, all, ids)),
        Value::Object(o) => {
            if let Some(Value::String(id)) = o.get("$id") {
                ids.insert(id.as_str(), v);
            }
            if o.get("Type").is_some_and(Value::is_string) {
                all.push(v);
            }
            o.values().for_each(|i| collect(i, all, ids));
        }
        _ => {}
    }
}

fn account(a: &Value) -> Option<String> {
    if let Some(upn) = str_at(a, "UserPrincipalName") {
        return Some(upn.to_string());
    }
    let name = str_at(a, "Name")?;
    Some(match (str_at(a, "UPNSuffix"), str_at(a, "NTDomain")) {
        (Some(suffix), _) => format!("{name}@{suffix}"),
        (None, Some(domain)) => format!("{domain}\\{name}"),
        (None, None) => name.to_string(),
    })
}

fn row_entities(r: &Value, e: &mut Entities) -> Result<(), DecodeError> {
    let parsed;
    let tree = match get(r, "Entities") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(()),
        Some(Value::String(s)) => {
            parsed = serde_json::from_str::<Value>(s)
                .map_err(|err| DecodeError::new("Entities", format!("not JSON: {err}")))?;
            &parsed
        }
        Some(v @ Value::Array(_)) => v,
        Some(other) => {
            return Err(DecodeError::new(
                "Entities",
                format!("expected an array, found {}", fields::type_name(other)),
            ));
        }
    };
    if !tree.is_array() {
        return Err(DecodeError::new(
            "Entities",
            format!("expected an array, found {}", fields::type_name(tree)),
        ));
    }
    let mut all = Vec::new();
    let mut ids = HashMap::new();
    collect(tree, &mut all, &mut ids);
    for ent in all {
        match str_at(ent, "Type")
            .unwrap_or("")
            .to_ascii_lowercase()
            .as_str()
        {
            "host" => {
                e.add(
                    EntityKind::Host,
                    Role::Target,
                    first_str(ent, &["HostName", "NetBiosName"]),
                );
            }
            "account" => {
                e.add(EntityKind::User, Role::Related, account(ent).as_deref());
            }
            "ip" => {
                e.add_at(EntityKind::Ip, Role::Related, ent, "Address");
            }
            "url" => {
                e.add_at(EntityKind::Url, Role::Related, ent, "Url");
            }
            "filehash" => {
                e.add_at(EntityKind::FileHash, Role::Related, ent, "Value");
            }
            "dns" => {
                e.add_at(EntityKind::Domain, Role::Related, ent, "DomainName");
            }
            "mailbox" => {
                e.add_at(
                    EntityKind::Email,
                    Role::Target,
                    ent,
                    "MailboxPrimaryAddress",
                );
            }
            "mailmessage" => {
                e.add_at(EntityKind::Email, Role::Source, ent, "Sender")
                    .add_at(EntityKind::Ip, Role::Source, ent, "SenderIP")
                    .add_at(EntityKind::Email, Role::Target, ent, "Recipient");
            }
            "azure-resource" => {
                e.add_at(EntityKind::CloudResource, Role::Target, ent, "ResourceId");
            }
            "process" => {
                let image = match get(ent, "ImageFile") {
                    Some(f) => match str_at(f, "$ref") {
                        Some(id) => ids.get(id).copied(),
                        None => Some(f),
                    },
                    None => None,
                };
                let path = image.and_then(|f| {
                    let name = str_at(f, "Name")?;
                    Some(match str_at(f, "Directory") {
                        Some(d) if d.ends_with(['\\', '/']) => format!("{d}{name}"),
                        Some(d) => format!("{d}\\{name}"),
                        None => name.to_string(),
                    })
                });
                e.add(EntityKind::Process, Role::Actor, path.as_deref());
            }
            // Files (their hashes come as `filehash`), registry keys, cloud apps, …: original only.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use riposte_domain::{Canonicaliser, SeverityLabel};
    use serde_json::json;

    const ALERT: &str = "alerts/sentinel/alert/test-alert.log";
    const INCIDENT: &str = "alerts/sentinel/incident/test-incident.log";

    #[test]
    fn corpus_alert_decodes_field_by_field() {
        let out = decode_file(&Sentinel, ALERT);
        assert_eq!(out.len(), 1);
        let a = alert(&out[0]);
        assert_eq!(a.title, "myAlert");
        assert_eq!(a.product, "AzureSecurityCenter");
        assert_eq!(
            a.source_id.as_deref(),
            Some("abcdef-6fde-4ab7-a093-d09f7b75c58c")
        );
        assert_eq!(a.time.to_string(), "2020-07-20T18:21:53.6158361Z");
        assert_eq!(a.time_original, "2020-07-20T18:21:53.6158361Z");
        assert_eq!(a.severity.score, 30);
        assert_eq!(a.severity.label, SeverityLabel::Low);
        assert_eq!(a.severity.original, "Low");
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(rule.id.as_deref(), Some("myAlert"));
        assert_eq!(rule.name.as_deref(), Some("myAlert"));
        assert_eq!(a.tactics, ["abc"]);
        assert!(a.techniques.is_empty());
        // The only resource identifier is the Log Analytics workspace, and `systemData.createdBy`
        // is who wrote the resource: neither is an observable.
        assert!(a.entities.is_empty());
        assert_eq!(out[0].original()["systemData"]["createdBy"], "admin");
    }

    #[test]
    fn corpus_incident_decodes_field_by_field() {
        let out = decode_file(&Sentinel, INCIDENT);
        assert_eq!(out.len(), 1);
        let a = alert(&out[0]);
        assert_eq!(a.title, "Myincident");
        assert_eq!(a.product, "Microsoft Sentinel");
        assert_eq!(
            a.source_id.as_deref(),
            Some("aaaaaaa-5cd7-4139-a149-9f2736ff2ab5")
        );
        assert_eq!(a.time.to_string(), "2019-01-01T13:15:30Z");
        assert_eq!(a.time_original, "2019-01-01T13:15:30Z");
        assert_eq!(a.severity.score, 75);
        assert_eq!(a.severity.original, "High");
        assert_eq!(a.description.as_deref(), Some("Thisisademoincident"));
        assert_eq!(
            a.rule.as_ref().unwrap().id.as_deref(),
            Some(
                "/subscriptions/abc12345678-9ac0-4464-9919-dccaee2e48c0/resourceGroups/myRg/providers/Microsoft.OperationalInsights/workspaces/myWorkspace/providers/Microsoft.SecurityInsights/alertRules/fab3d2d4-747f-46a7-8ef0-9c0be8112bf7"
            )
        );
        assert_eq!(a.tactics, ["InitialAccess", "Persistence"]);
        // The owner (john@example.com) is the analyst, not an entity.
        assert!(a.entities.is_empty());
    }

    /// A SecurityAlert row as the Log Analytics table documents it (columns from the Azure
    /// Monitor table reference; `Entities` in Sentinel's entity schema); the corpus has none.
    fn security_alert_row() -> Value {
        let entities = json!([
            {"$id": "2", "HostName": "WIN10-VM", "DnsDomain": "contoso.local", "OSFamily": "Windows", "Type": "host"},
            {"$id": "3", "Name": "alice", "NTDomain": "CONTOSO", "Sid": "S-1-5-21-1-2-3-1104", "Type": "account"},
            {"$id": "4", "Address": "198.51.100.7", "Type": "ip"},
            {"$id": "5", "ProcessId": "4242", "CommandLine": "cmd.exe /c whoami",
             "ImageFile": {"$ref": "6"}, "Host": {"$ref": "2"}, "Type": "process"},
            {"$id": "6", "Directory": "C:\\Windows\\System32", "Name": "cmd.exe",
             "FileHashes": [{"$ref": "7"}], "Type": "file"},
            {"$id": "7", "Algorithm": "SHA256",
             "Value": "0f5ad2c1d3e5e2b6a0b7b5a1c4f2f1d3e5e2b6a0b7b5a1c4f2f1d3e5e2b6a0b7", "Type": "filehash"},
            {"$id": "8", "Url": "http://bad.example/x", "Type": "url"},
            {"$id": "9", "DomainName": "bad.example", "Type": "dns"}
        ]);
        json!({
            "TenantId": "f1e2d3c4-0000-0000-0000-000000000000",
            "TimeGenerated": "2024-03-05T08:09:10.123Z",
            "DisplayName": "Suspicious whoami",
            "AlertName": "Suspicious whoami",
            "AlertSeverity": "Medium",
            "Description": "whoami run by cmd",
            "ProviderName": "ASI Scheduled Alerts",
            "VendorName": "Microsoft",
            "SystemAlertId": "0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5",
            "AlertType": "ws_11111111-2222-3333-4444-555555555555",
            "ProductName": "Azure Sentinel",
            "CompromisedEntity": "WIN10-VM",
            "Entities": entities.to_string(),
            "Tactics": "Discovery, Execution",
            "Techniques": "[\"T1033\",\"T1059\"]",
            "SubTechniques": "[\"T1059.003\"]",
            "Type": "SecurityAlert"
        })
    }

    #[test]
    fn security_alert_row_with_entities() {
        let row = security_alert_row();
        assert!(Sentinel.recognises(&row));
        let mut out = Sentinel.decode(row).unwrap();
        Canonicaliser::default().apply_all(out[0].entities_mut());
        let d = &out[0];
        let a = alert(d);
        assert_eq!(a.title, "Suspicious whoami");
        assert_eq!(a.product, "Azure Sentinel");
        assert_eq!(
            a.source_id.as_deref(),
            Some("0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5")
        );
        assert_eq!(a.time.to_string(), "2024-03-05T08:09:10.123Z");
        assert_eq!(a.severity.score, 50);
        assert_eq!(a.severity.original, "Medium");
        assert_eq!(
            a.rule.as_ref().unwrap().id.as_deref(),
            Some("ws_11111111-2222-3333-4444-555555555555")
        );
        assert_eq!(
            a.techniques.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            ["T1033", "T1059", "T1059.003"]
        );
        assert_eq!(a.tactics, ["Discovery", "Execution"]);
        assert_eq!(ents(d, EntityKind::Host, Role::Target), ["win10-vm"]);
        assert_eq!(ents(d, EntityKind::User, Role::Related), ["contoso\\alice"]);
        assert_eq!(ents(d, EntityKind::Ip, Role::Related), ["198.51.100.7"]);
        assert_eq!(
            ents(d, EntityKind::Process, Role::Actor),
            ["c:\\windows\\system32\\cmd.exe"]
        );
        assert_eq!(ents_any(d, EntityKind::FileHash).len(), 1);
        assert_eq!(
            ents(d, EntityKind::Url, Role::Related),
            ["http://bad.example/x"]
        );
        assert_eq!(ents(d, EntityKind::Domain, Role::Related), ["bad.example"]);
        // A plain host name as `CompromisedEntity` is ambiguous and left to `Entities`.
        assert_eq!(ents_any(d, EntityKind::Host).len(), 1);
    }

    /// A SecurityIncident row and an ARM list page, built from the table reference and the
    /// Incidents - List REST response.
    #[test]
    fn security_incident_row_and_list_page() {
        let row = json!({
            "TimeGenerated": "2024-03-05T09:00:00Z",
            "CreatedTime": "2024-03-05T08:59:00Z",
            "IncidentName": "9a8b7c6d-0000-4000-8000-000000000001",
            "IncidentNumber": 77,
            "Title": "Suspicious whoami",
            "Severity": "Informational",
            "Status": "New",
            "Owner": {"assignedTo": "Analyst One"},
            "AdditionalData": {"alertsCount": 1, "tactics": ["Discovery"], "techniques": ["T1033"]},
            "RelatedAnalyticRuleIds": ["11111111-2222-3333-4444-555555555555"],
            "Type": "SecurityIncident"
        });
        let out = Sentinel.decode(row).unwrap();
        let a = alert(&out[0]);
        assert_eq!(a.time_original, "2024-03-05T08:59:00Z");
        assert_eq!(a.severity.score, 10);
        assert_eq!(
            a.source_id.as_deref(),
            Some("9a8b7c6d-0000-4000-8000-000000000001")
        );
        assert_eq!(a.tactics, ["Discovery"]);
        assert_eq!(a.techniques[0].as_str(), "T1033");
        assert!(a.entities.is_empty());

        let alert_rec = corpus_records(ALERT, crate::InputKind::Json).remove(0);
        let incident_rec = corpus_records(INCIDENT, crate::InputKind::Json).remove(0);
        let page = json!({"value": [alert_rec, incident_rec]});
        assert!(Sentinel.recognises(&page));
        let out = Sentinel.decode(page).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(alert(&out[0]).title, "myAlert");
        assert_eq!(alert(&out[1]).title, "Myincident");
    }

    #[test]
    fn compromised_entity_only_when_certain() {
        let mut alert_rec = corpus_records(ALERT, crate::InputKind::Json).remove(0);
        for (text, kind) in [
            ("203.0.113.5", Some(EntityKind::Ip)),
            ("alice@contoso.com", Some(EntityKind::User)),
            ("CONTOSO\\alice", Some(EntityKind::User)),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x",
                Some(EntityKind::CloudResource),
            ),
            ("vm-01", None),
        ] {
            alert_rec["properties"]["compromisedEntity"] = json!(text);
            let out = Sentinel.decode(alert_rec.clone()).unwrap();
            let kinds: Vec<EntityKind> = out[0].entities().iter().map(|e| e.kind).collect();
            assert_eq!(kinds, kind.into_iter().collect::<Vec<_>>(), "{text}");
        }
    }

    #[test]
    fn recognises_sentinel_records_only() {
        for f in [ALERT, INCIDENT] {
            for r in corpus_records(f, crate::InputKind::Json) {
                assert!(Sentinel.recognises(&r), "{f}");
            }
        }
        assert!(Sentinel.recognises(&security_alert_row()));
        for f in [
            "alerts/m365_defender/alert/test-alert.log",
            "alerts/m365_defender/incident/test-incident.log",
            "alerts/defender/endpoint/test-defenderatp.log",
            "alerts/entra/signinlogs/test-signinlogs-raw.log",
            "alerts/okta/system/test-okta-system-events.log",
            "alerts/guardduty/test-guard_duty.first12.log",
        ] {
            for r in corpus_records(f, crate::InputKind::Json) {
                assert!(!Sentinel.recognises(&r), "{f}");
            }
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        let good = corpus_records(ALERT, crate::InputKind::Json).remove(0);

        let mut r = good.clone();
        let p = r["properties"].as_object_mut().unwrap();
        p.remove("timeGenerated");
        p.remove("startTimeUtc");
        assert_eq!(
            Sentinel.decode(r).unwrap_err().field,
            "properties.timeGenerated"
        );

        let mut r = good.clone();
        r["properties"]["timeGenerated"] = json!(true);
        assert_eq!(
            Sentinel.decode(r).unwrap_err().field,
            "properties.timeGenerated"
        );

        let mut r = good.clone();
        r["properties"]["severity"] = json!("Critical-ish");
        assert_eq!(Sentinel.decode(r).unwrap_err().field, "properties.severity");

        let mut r = good.clone();
        r["properties"]["tactics"] = json!("InitialAccess");
        assert_eq!(Sentinel.decode(r).unwrap_err().field, "properties.tactics");

        let mut r = good.clone();
        r["properties"]["tactics"] = json!([1]);
        assert_eq!(
            Sentinel.decode(r).unwrap_err().field,
            "properties.tactics[0]"
        );

        let mut inc = corpus_records(INCIDENT, crate::InputKind::Json).remove(0);
        inc["properties"].as_object_mut().unwrap().remove("title");
        assert_eq!(
            Sentinel.decode(inc).unwrap_err().to_string(),
            "field `properties.title`: missing"
        );

        let mut row = security_alert_row();
        row["Entities"] = json!("[{not json");
        assert_eq!(Sentinel.decode(row).unwrap_err().field, "Entities");
        let mut row = security_alert_row();
        row["Techniques"] = json!("T1033");
        assert_eq!(Sentinel.decode(row).unwrap_err().field, "Techniques");
        let mut row = security_alert_row();
        row["AlertSeverity"] = json!(2);
        assert_eq!(Sentinel.decode(row).unwrap_err().field, "AlertSeverity");

        let page = json!({"value": [good, {"kind": "SecurityAlert", "properties": {"alertDisplayName": "x"}}]});
        assert_eq!(
            Sentinel.decode(page).unwrap_err().field,
            "value[1].properties.timeGenerated"
        );
        assert_eq!(
            Sentinel.decode(json!({"kind": "Other"})).unwrap_err().field,
            "$"
        );
        assert_eq!(Sentinel.decode(json!(null)).unwrap_err().field, "$");
    }
}
