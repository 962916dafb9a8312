//! Microsoft 365 Defender (Defender XDR) through the Microsoft Graph security API: alerts
//! (`alerts_v2`, `@odata.type` `#microsoft.graph.security.alert`) and incidents
//! (`#microsoft.graph.security.incident`, possibly with `$expand=alerts`). Each alert and each
//! incident becomes one alert; a Graph list page `{"value": [...]}` gives one per item.
//!
//! Time: `createdDateTime` (when Defender raised the alert or opened the incident), ISO 8601
//! UTC with seven fractional digits.
//! Severity: Graph's `alertSeverity` enum, case-insensitive (the older Defender APIs wrote
//! `Medium`): informational → 10, low → 30, medium → 50, high → 75; `unknown` and
//! `unknownFutureValue` → 0. The original text is kept; any other value is an error.
//! Ids: the alert's or incident's `id` is the source id.
//! ATT&CK: an alert's `mitreTechniques` (ids that do not parse are skipped) and its
//! `category` when that names an ATT&CK tactic (`Execution`, `DefenseEvasion`); an incident
//! takes the union of its nested alerts'.
//! Entities: from each alert's `evidence[]`, by `@odata.type`: devices (host), users and the
//! users of processes, addresses, URLs, file hashes, process images (full path), mailboxes and
//! analysed messages (email, sender address), DNS names, cloud resources. The evidence `roles`
//! decide source (`attacker`, `source`, `commandAndControl`) or target (`compromised`,
//! `attacked`, `destination`); otherwise each type has a default role. An incident's
//! `assignedTo` is the analyst who owns it, not an observable, and is not an entity.

use riposte_domain::{Alert, Decoded, EntityKind, Role, Rule, Severity, TechniqueId};
use serde_json::Value;

use crate::fields::{self, Entities, first_str, get, req_str, req_time, str_at, text_at};
use crate::{DecodeError, Decoder};

pub struct M365;

const PRODUCT: &str = "Microsoft 365 Defender";
const ALERT_TYPE: &str = "#microsoft.graph.security.alert";
const INCIDENT_TYPE: &str = "#microsoft.graph.security.incident";

/// ATT&CK tactics as Graph's alert `category` spells them; other categories (`Malware`,
/// `SuspiciousActivity`, …) are not tactics.
const TACTICS: [&str; 14] = [
    "Reconnaissance",
    "ResourceDevelopment",
    "InitialAccess",
    "Execution",
    "Persistence",
    "PrivilegeEscalation",
    "DefenseEvasion",
    "CredentialAccess",
    "Discovery",
    "LateralMovement",
    "Collection",
    "CommandAndControl",
    "Exfiltration",
    "Impact",
];

impl Decoder for M365 {
    fn name(&self) -> &'static str {
        "m365"
    }

    fn recognises(&self, r: &Value) -> bool {
        if let Some(Value::Array(items)) = get(r, "value")
            && r.as_object().is_some_and(|o| o.len() <= 3)
        {
            // A page may be empty; its `@odata.context` still says what it lists.
            let listed = str_at(r, "@odata.context").is_some_and(|c| {
                c.contains("security/alerts_v2") || c.contains("security/incidents")
            });
            return listed || items.first().is_some_and(|i| is_alert(i) || is_incident(i));
        }
        is_alert(r) || is_incident(r)
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        match get(&record, "value") {
            Some(Value::Array(items)) if !is_alert(&record) && !is_incident(&record) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    fields::require_object(item)
                        .and_then(|()| decode_one(item.clone()))
                        .map_err(|e| within(&format!("value[{i}]"), e))
                })
                .collect(),
            _ => Ok(vec![decode_one(record)?]),
        }
    }
}

fn is_alert(r: &Value) -> bool {
    match str_at(r, "@odata.type") {
        Some(t) => t == ALERT_TYPE,
        None => {
            str_at(r, "createdDateTime").is_some()
                && str_at(r, "title").is_some()
                && (get(r, "providerAlertId").is_some() || get(r, "serviceSource").is_some())
        }
    }
}

fn is_incident(r: &Value) -> bool {
    match str_at(r, "@odata.type") {
        Some(t) => t == INCIDENT_TYPE,
        None => {
            str_at(r, "createdDateTime").is_some()
                && str_at(r, "displayName").is_some()
                && str_at(r, "incidentWebUrl").is_some()
                && get(r, "providerAlertId").is_none()
        }
    }
}

/// Puts an error's field under the path of the part of the record it came from.
fn within(prefix: &str, e: DecodeError) -> DecodeError {
    let field = if e.field == "$" {
        prefix.to_string()
    } else {
        format!("{prefix}.{}", e.field)
    };
    DecodeError::new(field, e.reason)
}

fn decode_one(record: Value) -> Result<Decoded, DecodeError> {
    if is_incident(&record) {
        graph_incident(record)
    } else {
        graph_alert(record)
    }
}

fn graph_alert(record: Value) -> Result<Decoded, DecodeError> {
    let title = req_str(&record, "title")?.to_string();
    let (time, time_original) = req_time(&record, "createdDateTime")?;
    let severity = severity(&record, "severity")?;
    let mut techniques = Vec::new();
    let mut tactics = Vec::new();
    attack_of(&record, &mut techniques, &mut tactics)?;
    let mut entities = Entities::new();
    evidence_entities(&record, &mut entities)?;
    let rule = Rule::new(
        first_str(&record, &["detectorId", "alertPolicyId"]).map(str::to_string),
        Some(title.clone()),
    );
    Ok(Decoded::Alert(Alert {
        id: String::new(),
        decoder: "m365".into(),
        product: str_at(&record, "productName")
            .unwrap_or(PRODUCT)
            .to_string(),
        source_id: text_at(&record, "id"),
        time,
        time_original,
        title,
        description: str_at(&record, "description").map(str::to_string),
        severity,
        rule,
        entities: entities.into_vec(),
        techniques,
        tactics,
        original: record,
        origin: None,
    }))
}

fn graph_incident(record: Value) -> Result<Decoded, DecodeError> {
    let title = req_str(&record, "displayName")?.to_string();
    let (time, time_original) = req_time(&record, "createdDateTime")?;
    let severity = severity(&record, "severity")?;
    // `$expand=alerts` gives an array; some exports hold a single alert object.
    let nested: Vec<&Value> = match get(&record, "alerts") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        Some(other) => {
            return Err(DecodeError::new(
                "alerts",
                format!(
                    "expected an array of alerts, found {}",
                    fields::type_name(other)
                ),
            ));
        }
    };
    let mut techniques = Vec::new();
    let mut tactics = Vec::new();
    let mut entities = Entities::new();
    for (i, a) in nested.iter().enumerate() {
        let prefix = if matches!(get(&record, "alerts"), Some(Value::Array(_))) {
            format!("alerts[{i}]")
        } else {
            "alerts".to_string()
        };
        fields::require_object(a).map_err(|e| within(&prefix, e))?;
        attack_of(a, &mut techniques, &mut tactics).map_err(|e| within(&prefix, e))?;
        evidence_entities(a, &mut entities).map_err(|e| within(&prefix, e))?;
    }
    Ok(Decoded::Alert(Alert {
        id: String::new(),
        decoder: "m365".into(),
        product: PRODUCT.into(),
        source_id: text_at(&record, "id"),
        time,
        time_original,
        title,
        description: first_str(&record, &["description", "summary"]).map(str::to_string),
        severity,
        rule: None,
        entities: entities.into_vec(),
        techniques,
        tactics,
        original: record,
        origin: None,
    }))
}

/// Graph's `alertSeverity`, mapped as the module doc says.
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
        "unknown" | "unknownfuturevalue" | "unspecified" => 0,
        _ => {
            return Err(DecodeError::new(
                path,
                format!("unknown severity {text:?} (informational, low, medium, high, unknown)"),
            ));
        }
    };
    Ok(Severity::from_score(score, text.as_str()))
}

/// Adds an alert's techniques and tactic to the lists, once each, in order.
fn attack_of(
    a: &Value,
    techniques: &mut Vec<TechniqueId>,
    tactics: &mut Vec<String>,
) -> Result<(), DecodeError> {
    match get(a, "mitreTechniques") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ids)) => {
            for (i, id) in ids.iter().enumerate() {
                let s = id.as_str().ok_or_else(|| {
                    DecodeError::new(
                        format!("mitreTechniques[{i}]"),
                        format!("expected a string, found {}", fields::type_name(id)),
                    )
                })?;
                if let Some(t) = TechniqueId::parse(s)
                    && !techniques.contains(&t)
                {
                    techniques.push(t);
                }
            }
        }
        Some(other) => {
            return Err(DecodeError::new(
                "mitreTechniques",
                format!("expected an array, found {}", fields::type_name(other)),
            ));
        }
    }
    if let Some(c) = str_at(a, "category")
        && TACTICS.contains(&c)
        && !tactics.iter().any(|t| t == c)
    {
        tactics.push(c.to_string());
    }
    Ok(())
}

/// The role an evidence item's `roles` give it, if they say.
fn evidence_role(ev: &Value) -> Option<Role> {
    let Some(Value::Array(roles)) = get(ev, "roles") else {
        return None;
    };
    roles
        .iter()
        .filter_map(Value::as_str)
        .find_map(|r| match r {
            "attacker" | "source" | "commandAndControl" => Some(Role::Source),
            "compromised" | "attacked" | "destination" => Some(Role::Target),
            _ => None,
        })
}

/// `user@domain` when Graph gives the UPN, else `DOMAIN\name`, else the bare name.
fn account_name(acc: &Value) -> Option<String> {
    if let Some(upn) = str_at(acc, "userPrincipalName") {
        return Some(upn.to_string());
    }
    let name = str_at(acc, "accountName")?;
    Some(match str_at(acc, "domainName") {
        Some(d) => format!("{d}\\{name}"),
        None => name.to_string(),
    })
}

/// The full path of an image file: `filePath` joined with `fileName`.
fn image_path(file: &Value) -> Option<String> {
    let name = str_at(file, "fileName")?;
    Some(match str_at(file, "filePath") {
        Some(dir) if dir.ends_with(['\\', '/']) => format!("{dir}{name}"),
        Some(dir) if dir.contains('/') && !dir.contains('\\') => format!("{dir}/{name}"),
        Some(dir) => format!("{dir}\\{name}"),
        None => name.to_string(),
    })
}

fn hashes(e: &mut Entities, file: &Value) {
    for algo in ["md5", "sha1", "sha256"] {
        e.add(EntityKind::FileHash, Role::Related, str_at(file, algo));
    }
}

fn evidence_entities(a: &Value, e: &mut Entities) -> Result<(), DecodeError> {
    let items = match get(a, "evidence") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(DecodeError::new(
                "evidence",
                format!("expected an array, found {}", fields::type_name(other)),
            ));
        }
    };
    for (i, ev) in items.iter().enumerate() {
        if !ev.is_object() {
            return Err(DecodeError::new(
                format!("evidence[{i}]"),
                format!("expected an object, found {}", fields::type_name(ev)),
            ));
        }
        let kind = str_at(ev, "@odata.type")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("");
        let role = evidence_role(ev);
        match kind {
            "deviceEvidence" => {
                e.add(
                    EntityKind::Host,
                    role.unwrap_or(Role::Target),
                    first_str(ev, &["deviceDnsName", "hostName"]),
                );
                if let Some(Value::Array(users)) = get(ev, "loggedOnUsers") {
                    for u in users {
                        e.add(EntityKind::User, Role::Related, account_name(u).as_deref());
                    }
                }
            }
            "userEvidence" => {
                let user = get(ev, "userAccount").and_then(account_name);
                e.add(
                    EntityKind::User,
                    role.unwrap_or(Role::Actor),
                    user.as_deref(),
                );
            }
            "ipEvidence" => {
                e.add(
                    EntityKind::Ip,
                    role.unwrap_or(Role::Related),
                    str_at(ev, "ipAddress"),
                );
            }
            "urlEvidence" => {
                e.add(
                    EntityKind::Url,
                    role.unwrap_or(Role::Related),
                    str_at(ev, "url"),
                );
            }
            "dnsEvidence" => {
                e.add(
                    EntityKind::Domain,
                    role.unwrap_or(Role::Related),
                    str_at(ev, "domainName"),
                );
            }
            "fileEvidence" => {
                if let Some(f) = get(ev, "fileDetails") {
                    hashes(e, f);
                }
            }
            "fileHashEvidence" => {
                e.add(EntityKind::FileHash, Role::Related, str_at(ev, "value"));
            }
            "processEvidence" => {
                if let Some(f) = get(ev, "imageFile") {
                    let path = image_path(f);
                    e.add(
                        EntityKind::Process,
                        role.unwrap_or(Role::Actor),
                        path.as_deref(),
                    );
                    hashes(e, f);
                }
                let user = get(ev, "userAccount").and_then(account_name);
                e.add(EntityKind::User, Role::Actor, user.as_deref());
            }
            "mailboxEvidence" => {
                e.add(
                    EntityKind::Email,
                    role.unwrap_or(Role::Target),
                    str_at(ev, "primaryAddress"),
                );
                let user = get(ev, "userAccount").and_then(account_name);
                e.add(
                    EntityKind::User,
                    role.unwrap_or(Role::Target),
                    user.as_deref(),
                );
            }
            "analyzedMessageEvidence" => {
                e.add_at(EntityKind::Email, Role::Source, ev, "p1Sender.emailAddress")
                    .add_at(EntityKind::Email, Role::Source, ev, "p2Sender.emailAddress")
                    .add_at(EntityKind::Ip, Role::Source, ev, "senderIp")
                    .add_at(EntityKind::Email, Role::Target, ev, "recipientEmailAddress")
                    .add_all_at(EntityKind::Url, Role::Related, ev, "urls");
            }
            "networkConnectionEvidence" => {
                e.add_at(EntityKind::Ip, Role::Source, ev, "sourceAddress.ipAddress")
                    .add_at(
                        EntityKind::Ip,
                        Role::Target,
                        ev,
                        "destinationAddress.ipAddress",
                    );
            }
            "azureResourceEvidence" => {
                e.add(
                    EntityKind::CloudResource,
                    role.unwrap_or(Role::Target),
                    str_at(ev, "resourceId"),
                );
            }
            "amazonResourceEvidence" => {
                e.add(
                    EntityKind::CloudResource,
                    role.unwrap_or(Role::Target),
                    str_at(ev, "amazonResourceId"),
                );
            }
            "googleCloudResourceEvidence" => {
                e.add(
                    EntityKind::CloudResource,
                    role.unwrap_or(Role::Target),
                    str_at(ev, "fullResourceName"),
                );
            }
            // Registry keys, mail clusters, OAuth apps, containers…: kept in the original only.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use riposte_domain::SeverityLabel;
    use serde_json::json;

    const ALERTS: &str = "alerts/m365_defender/alert/test-alert.log";
    const INCIDENTS: &str = "alerts/m365_defender/incident/test-incident.log";
    const BARE_INCIDENTS: &str = "alerts/m365_defender/incident/test-incident-no-alerts.log";

    #[test]
    fn corpus_alert_decodes_field_by_field() {
        // The second record is an empty Graph page (`"value": []`): no output.
        assert_eq!(corpus_records(ALERTS, crate::InputKind::Json).len(), 2);
        let out = decode_file(&M365, ALERTS);
        assert_eq!(out.len(), 1);
        let d = &out[0];
        let a = alert(d);
        assert_eq!(a.title, "Suspicious PowerShell command line");
        assert_eq!(a.product, "Microsoft Defender for Endpoint");
        assert_eq!(
            a.source_id.as_deref(),
            Some("daefa1828b-dd4e-405c-8a3b-aa28596830dd_1")
        );
        assert_eq!(a.time.to_string(), "2023-10-20T09:53:09.8839373Z");
        assert_eq!(a.time_original, "2023-10-20T09:53:09.8839373Z");
        assert_eq!(a.severity.score, 50);
        assert_eq!(a.severity.label, SeverityLabel::Medium);
        assert_eq!(a.severity.original, "medium");
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(
            rule.id.as_deref(),
            Some("7f1c3609-a3ff-40e2-995b-c01770161d68")
        );
        assert_eq!(
            rule.name.as_deref(),
            Some("Suspicious PowerShell command line")
        );
        assert_eq!(
            a.techniques.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            ["T1059.001"]
        );
        assert_eq!(a.tactics, ["Execution"]);
        assert!(
            a.description
                .as_deref()
                .unwrap()
                .starts_with("A suspicious PowerShell")
        );

        assert_eq!(ents(d, EntityKind::Host, Role::Target), ["clw555test"]);
        assert_eq!(
            ents(d, EntityKind::User, Role::Actor),
            ["azuread\\cdpuseris-38411"]
        );
        assert_eq!(
            ents(d, EntityKind::User, Role::Related),
            ["azuread\\cdpuseris-38411"]
        );
        assert_eq!(ents(d, EntityKind::Ip, Role::Related), ["127.0.0.1"]);
        assert_eq!(
            ents_any(d, EntityKind::Ip).len(),
            1,
            "device interfaces are not entities"
        );
        assert_eq!(
            ents(d, EntityKind::Url, Role::Related),
            ["http://127.0.0.1/1.exe"]
        );
        assert_eq!(
            ents(d, EntityKind::Process, Role::Actor),
            ["c:\\windows\\system32\\windowspowershell\\v1.0\\powershell.exe"]
        );
        assert_eq!(
            ents(d, EntityKind::FileHash, Role::Related),
            [
                "a72c41316307889e43fe8605a0dca4a72e72a011",
                "d783ba6567faf10fdff2d0ea3864f6756862d6c733c7f4467283da81aedc3a80"
            ]
        );
        assert_eq!(d.original()["incidentId"], "23");
    }

    #[test]
    fn corpus_incident_with_nested_alert() {
        let out = decode_file(&M365, INCIDENTS);
        assert_eq!(
            out.len(),
            1,
            "an incident is one alert, nested alerts included"
        );
        let d = &out[0];
        let a = alert(d);
        assert_eq!(
            a.title,
            "Multi-stage incident involving Initial access & Command and control on multiple endpoints reported by multiple sources"
        );
        assert_eq!(a.product, "Microsoft 365 Defender");
        assert_eq!(a.source_id.as_deref(), Some("2972395"));
        assert_eq!(a.time.to_string(), "2021-08-13T08:43:35.5533333Z");
        assert_eq!(a.time_original, "2021-08-13T08:43:35.5533333Z");
        assert_eq!(a.severity.score, 50);
        assert_eq!(a.severity.original, "medium");
        assert!(a.rule.is_none());
        // From the nested alert.
        assert_eq!(
            a.techniques.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            ["T1564.001"]
        );
        assert_eq!(a.tactics, ["DefenseEvasion"]);
        assert_eq!(ents(d, EntityKind::Host, Role::Target), ["tempdns"]);
        assert_eq!(
            ents(d, EntityKind::User, Role::Actor),
            ["nt authority\\system"]
        );
        assert_eq!(
            ents(d, EntityKind::Process, Role::Actor),
            ["c:\\program files\\temp\\mssense.exe"]
        );
        // The file and the process image have the same hashes: kept once.
        assert_eq!(
            ents(d, EntityKind::FileHash, Role::Related),
            [
                "5f1e8acedc065031aad553b710838eb366cfee9a",
                "8963a19fb992ad9a76576c5638fd68292cffb9aaac29eb8285f9abf6196a7dec"
            ]
        );
        // The owner of the incident is an analyst, not an entity.
        assert!(
            ents_any(d, EntityKind::User)
                .iter()
                .all(|u| !u.contains("kaic"))
        );
        // U+FFFD in the nested alert's text passes through untouched.
        let rec = d.original()["alerts"]["recommendedActions"]
            .as_str()
            .unwrap();
        assert_eq!(rec.matches('\u{FFFD}').count(), 10);
    }

    #[test]
    fn corpus_incidents_without_alerts() {
        let out = decode_file(&M365, BARE_INCIDENTS);
        assert_eq!(out.len(), 2);
        let a = alert(&out[0]);
        assert_eq!(
            a.title,
            "Multi-stage incident involving Execution & Command and control on one endpoint"
        );
        assert_eq!(a.source_id.as_deref(), Some("29"));
        assert_eq!(a.severity.score, 75);
        assert_eq!(a.severity.original, "high");
        assert_eq!(a.time.to_string(), "2026-01-22T12:09:23.1433333Z");
        assert!(a.entities.is_empty());
        assert!(a.techniques.is_empty());
        let b = alert(&out[1]);
        assert_eq!(b.title, "Suspicious credential theft activity");
        assert_eq!(b.source_id.as_deref(), Some("42"));
        assert_eq!(b.severity.score, 50);
        assert_eq!(b.time_original, "2026-01-10T08:15:00.5533333Z");
    }

    /// Built from the Graph `alert` resource documentation (evidence types not in the corpus)
    /// and a Graph list page.
    #[test]
    fn documented_evidence_types_and_list_page() {
        let page = json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#security/alerts_v2",
            "value": [{
                "@odata.type": "#microsoft.graph.security.alert",
                "id": "fa1",
                "title": "Email messages containing malicious URL removed after delivery",
                "severity": "Informational",
                "category": "InitialAccess",
                "mitreTechniques": ["T1566.002", "not-an-id", "T1566.002"],
                "createdDateTime": "2024-02-01T10:00:00Z",
                "alertPolicyId": "policy-1",
                "evidence": [
                    {"@odata.type": "#microsoft.graph.security.analyzedMessageEvidence",
                     "roles": [], "senderIp": "203.0.113.9",
                     "recipientEmailAddress": "Alice@Contoso.com",
                     "p1Sender": {"emailAddress": "bad@evil.example"},
                     "urls": ["https://evil.example/login"]},
                    {"@odata.type": "#microsoft.graph.security.mailboxEvidence",
                     "primaryAddress": "alice@contoso.com",
                     "userAccount": {"accountName": "alice", "userPrincipalName": "alice@contoso.com"}},
                    {"@odata.type": "#microsoft.graph.security.ipEvidence",
                     "roles": ["attacker"], "ipAddress": "203.0.113.9"},
                    {"@odata.type": "#microsoft.graph.security.fileHashEvidence",
                     "algorithm": "sha256",
                     "value": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"},
                    {"@odata.type": "#microsoft.graph.security.azureResourceEvidence",
                     "resourceId": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"},
                    {"@odata.type": "#microsoft.graph.security.registryKeyEvidence",
                     "registryKey": "SOFTWARE\\Run"}
                ]
            }]
        });
        assert!(M365.recognises(&page));
        let out = M365.decode(page).unwrap();
        assert_eq!(out.len(), 1);
        let a = alert(&out[0]);
        assert_eq!(a.severity.score, 10);
        assert_eq!(a.severity.original, "Informational");
        assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("policy-1"));
        assert_eq!(a.product, "Microsoft 365 Defender");
        assert_eq!(
            a.techniques.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            ["T1566.002"]
        );
        assert_eq!(a.tactics, ["InitialAccess"]);
        assert_eq!(out[0].original()["id"], "fa1");
        let mut out = out;
        riposte_domain::Canonicaliser::default().apply_all(out[0].entities_mut());
        let d = &out[0];
        assert_eq!(
            ents(d, EntityKind::Email, Role::Source),
            ["bad@evil.example"]
        );
        assert_eq!(
            ents(d, EntityKind::Email, Role::Target),
            ["alice@contoso.com"]
        );
        assert_eq!(ents(d, EntityKind::Ip, Role::Source), ["203.0.113.9"]);
        assert_eq!(
            ents(d, EntityKind::User, Role::Target),
            ["alice@contoso.com"]
        );
        assert_eq!(
            ents(d, EntityKind::Url, Role::Related),
            ["https://evil.example/login"]
        );
        assert_eq!(
            ents(d, EntityKind::FileHash, Role::Related),
            ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]
        );
        assert_eq!(ents(d, EntityKind::CloudResource, Role::Target).len(), 1);
    }

    #[test]
    fn recognises_graph_records_only() {
        for f in [ALERTS, INCIDENTS, BARE_INCIDENTS] {
            for r in corpus_records(f, crate::InputKind::Json) {
                assert!(M365.recognises(&r), "{f}");
            }
        }
        for f in [
            "alerts/defender/endpoint/test-defenderatp.log",
            "alerts/sentinel/alert/test-alert.log",
            "alerts/sentinel/incident/test-incident.log",
            "alerts/okta/system/test-okta-system-events.log",
            "alerts/entra/signinlogs/test-signinlogs-sample.log",
            "alerts/suricata/eve/test-eve-small.log",
        ] {
            for r in corpus_records(f, crate::InputKind::Json) {
                assert!(!M365.recognises(&r), "{f}");
            }
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        let good = corpus_records(ALERTS, crate::InputKind::Json).remove(0);

        let mut r = good.clone();
        r.as_object_mut().unwrap().remove("createdDateTime");
        assert_eq!(M365.decode(r).unwrap_err().field, "createdDateTime");

        let mut r = good.clone();
        r["createdDateTime"] = json!("yesterday");
        assert_eq!(M365.decode(r).unwrap_err().field, "createdDateTime");

        let mut r = good.clone();
        r["severity"] = json!("severe-ish");
        let e = M365.decode(r).unwrap_err();
        assert_eq!(e.field, "severity");
        assert!(e.reason.contains("severe-ish"));

        let mut r = good.clone();
        r["severity"] = json!(3);
        assert_eq!(M365.decode(r).unwrap_err().field, "severity");

        let mut r = good.clone();
        r["title"] = json!(7);
        assert_eq!(
            M365.decode(r).unwrap_err().to_string(),
            "field `title`: expected a string, found a number"
        );

        let mut r = good.clone();
        r["mitreTechniques"] = json!("T1059");
        assert_eq!(M365.decode(r).unwrap_err().field, "mitreTechniques");

        let mut r = good.clone();
        r["evidence"][2] = json!("url");
        assert_eq!(M365.decode(r).unwrap_err().field, "evidence[2]");

        let mut inc = corpus_records(INCIDENTS, crate::InputKind::Json).remove(0);
        inc["alerts"]["evidence"] = json!({});
        assert_eq!(
            M365.decode(inc.clone()).unwrap_err().field,
            "alerts.evidence"
        );
        inc["alerts"] = json!("none");
        assert_eq!(M365.decode(inc).unwrap_err().field, "alerts");

        let page = json!({"value": [good, {"@odata.type": ALERT_TYPE, "title": "x"}]});
        assert_eq!(
            M365.decode(page).unwrap_err().field,
            "value[1].createdDateTime"
        );
        assert_eq!(M365.decode(json!("alert")).unwrap_err().field, "$");
    }
}
