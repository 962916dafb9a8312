//! SentinelOne Singularity: threats (`GET /web/api/v2.1/threats`) and alerts (`GET
//! /web/api/v2.1/cloud-detection/alerts`, STAR custom-rule hits), bare or in the API's
//! `{"data": [...], "pagination": {...}}` response (one output per element). Both become alerts.
//!
//! Time: when SentinelOne detected it. Threats: `threatInfo.identifiedAt` (the agent's
//! detection), else `threatInfo.createdAt`; alerts: `alertInfo.createdAt`, else
//! `alertInfo.reportedAt`. ISO 8601, UTC, microseconds.
//! Severity, mapped explicitly with the product's value kept:
//! - alerts: `ruleInfo.severity` Info → 10, Low → 30, Medium → 50, High → 75, Critical → 95.
//! - threats: SentinelOne rates a threat by the engine's `threatInfo.confidenceLevel`:
//!   `malicious` → 75, `suspicious` → 50, `n/a` (or absent) → 30; then the `classification`
//!   adjusts it: `Ransomware` raises a malicious threat to 95, and potentially unwanted
//!   software (`PUA`, `Adware`) is capped at 30 (low). When the threat states its own
//!   `threatInfo.severity` (newer consoles), that label wins. The original kept is the
//!   confidence level (or the severity label) as written.
//!   Unknown values are errors naming the field.
//!
//! Ids: threats `threatInfo.threatId` (else the top-level `id`); alerts `alertInfo.alertId`.
//! ATT&CK: threats list `indicators[].tactics[]` with `name` and `techniques[].name` (ids
//! such as `T1059`); alerts give none.
//! Rule: alerts `ruleInfo.id`/`name`; threats have no rule, their `classification` (Trojan,
//! Ransomware, …) is used as the rule name.
//! Entities: the agent's host (target) and its addresses (target; the external address
//! related), the process user (actor), the last logged-in user (related), the source process
//! (actor), its parent (related) and target process (target), file hashes (related; all-zero
//! placeholders dropped), and for alerts the network source/destination addresses, the login
//! account (target) and the DNS request (target domain).

use riposte_domain::{Alert, Decoded, EntityKind, Role, Rule, Severity, TechniqueId};
use serde_json::Value;

use crate::fields::{self, Entities, first_str, first_time, get, req_str, str_at, text_at};
use crate::{DecodeError, Decoder};

pub struct SentinelOne;

const PRODUCT: &str = "SentinelOne";

impl Decoder for SentinelOne {
    fn name(&self) -> &'static str {
        "sentinelone"
    }

    fn recognises(&self, r: &Value) -> bool {
        if let Some(Value::Array(items)) = get(r, "data")
            && get(r, "pagination").is_some()
        {
            return items.first().is_some_and(|i| is_threat(i) || is_alert(i));
        }
        is_threat(r) || is_alert(r)
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        if let Some(data) = get(&record, "data")
            && get(&record, "pagination").is_some()
        {
            let Value::Array(items) = data else {
                return Err(DecodeError::new(
                    "data",
                    format!("expected an array, found {}", fields::type_name(data)),
                ));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                fields::require_object(item)
                    .map_err(|e| DecodeError::new(format!("data[{i}]"), e.reason))?;
                let d = one(item.clone()).map_err(|e| within(&format!("data[{i}]."), e))?;
                out.push(d);
            }
            return Ok(out);
        }
        Ok(vec![one(record)?])
    }
}

fn is_threat(r: &Value) -> bool {
    get(r, "threatInfo").is_some_and(Value::is_object)
        && (get(r, "agentRealtimeInfo").is_some() || get(r, "agentDetectionInfo").is_some())
}

fn is_alert(r: &Value) -> bool {
    get(r, "alertInfo").is_some_and(Value::is_object)
        && get(r, "ruleInfo").is_some_and(Value::is_object)
}

fn within(prefix: &str, e: DecodeError) -> DecodeError {
    if e.field == "$" {
        DecodeError::new(prefix.trim_end_matches('.'), e.reason)
    } else {
        DecodeError::new(format!("{prefix}{}", e.field), e.reason)
    }
}

fn one(record: Value) -> Result<Decoded, DecodeError> {
    for key in ["threatInfo", "alertInfo", "ruleInfo"] {
        if let Some(v) = get(&record, key)
            && !v.is_object()
            && !v.is_null()
        {
            return Err(DecodeError::new(
                key,
                format!("expected an object, found {}", fields::type_name(v)),
            ));
        }
    }
    if get(&record, "threatInfo").is_some_and(Value::is_object) {
        threat(record)
    } else if get(&record, "alertInfo").is_some_and(Value::is_object) {
        alert(record)
    } else {
        Err(DecodeError::record(
            "neither a SentinelOne threat (`threatInfo`) nor an alert (`alertInfo`)",
        ))
    }
}

fn threat(record: Value) -> Result<Decoded, DecodeError> {
    let r = &record;
    let (time, time_original) =
        first_time(r, &["threatInfo.identifiedAt", "threatInfo.createdAt"])?;
    let title = req_str(r, "threatInfo.threatName")?.to_string();
    let classification = str_at(r, "threatInfo.classification");
    let severity = threat_severity(r)?;

    let mut techniques: Vec<TechniqueId> = Vec::new();
    let mut tactics: Vec<String> = Vec::new();
    if let Some(Value::Array(indicators)) = get(r, "indicators") {
        for ind in indicators {
            let Some(Value::Array(ts)) = get(ind, "tactics") else {
                continue;
            };
            for t in ts {
                if let Some(name) = str_at(t, "name")
                    && !tactics.iter().any(|x| x == name)
                {
                    tactics.push(name.to_string());
                }
                if let Some(Value::Array(techs)) = get(t, "techniques") {
                    for tech in techs {
                        if let Some(id) = str_at(tech, "name").and_then(TechniqueId::parse)
                            && !techniques.contains(&id)
                        {
                            techniques.push(id);
                        }
                    }
                }
            }
        }
    }

    let mut e = Entities::new();
    e.add_at(
        EntityKind::Host,
        Role::Target,
        r,
        "agentRealtimeInfo.agentComputerName",
    )
    .add_at(
        EntityKind::Ip,
        Role::Target,
        r,
        "agentDetectionInfo.agentIpV4",
    )
    .add_at(
        EntityKind::Ip,
        Role::Target,
        r,
        "agentDetectionInfo.agentIpV6",
    )
    .add_at(
        EntityKind::Ip,
        Role::Related,
        r,
        "agentDetectionInfo.externalIp",
    )
    .add_at(EntityKind::User, Role::Actor, r, "threatInfo.processUser")
    .add_at(
        EntityKind::User,
        Role::Related,
        r,
        "agentDetectionInfo.agentLastLoggedInUserName",
    )
    .add_at(
        EntityKind::User,
        Role::Related,
        r,
        "agentDetectionInfo.agentLastLoggedInUpn",
    )
    .add_at(
        EntityKind::Process,
        Role::Actor,
        r,
        "threatInfo.originatorProcess",
    );
    for path in ["threatInfo.sha256", "threatInfo.sha1", "threatInfo.md5"] {
        add_hash(&mut e, str_at(r, path));
    }

    Ok(Decoded::Alert(Alert {
        id: String::new(),
        decoder: "sentinelone".into(),
        product: PRODUCT.into(),
        source_id: first_str(r, &["threatInfo.threatId"])
            .map(str::to_string)
            .or_else(|| text_at(r, "id")),
        time,
        time_original,
        title,
        description: classification.map(str::to_string),
        severity,
        rule: Rule::new(None, classification.map(str::to_string)),
        entities: e.into_vec(),
        techniques,
        tactics,
        original: record,
        origin: None,
    }))
}

/// The threat's severity from its confidence level and classification (see the module doc).
fn threat_severity(r: &Value) -> Result<Severity, DecodeError> {
    if let Some(label) = str_at(r, "threatInfo.severity") {
        return label_severity(label, "threatInfo.severity");
    }
    let (score, original) = match get(r, "threatInfo.confidenceLevel") {
        None | Some(Value::Null) => (30, String::new()),
        Some(Value::String(c)) => {
            let score = match c.trim().to_ascii_lowercase().as_str() {
                "malicious" => 75,
                "suspicious" => 50,
                "n/a" | "" => 30,
                _ => {
                    return Err(DecodeError::new(
                        "threatInfo.confidenceLevel",
                        format!("unknown confidence level {c:?}"),
                    ));
                }
            };
            (score, c.clone())
        }
        Some(other) => {
            return Err(DecodeError::new(
                "threatInfo.confidenceLevel",
                format!("expected a string, found {}", fields::type_name(other)),
            ));
        }
    };
    let class = str_at(r, "threatInfo.classification")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let score = match class.as_str() {
        "ransomware" if score == 75 => 95,
        "pua" | "adware" | "potentially unwanted application" => score.min(30),
        _ => score,
    };
    Ok(Severity::from_score(score, original))
}

fn label_severity(label: &str, field: &str) -> Result<Severity, DecodeError> {
    let score = match label.trim().to_ascii_lowercase().as_str() {
        "info" | "informational" => 10,
        "low" => 30,
        "medium" => 50,
        "high" => 75,
        "critical" => 95,
        _ => {
            return Err(DecodeError::new(
                field,
                format!("unknown severity {label:?}"),
            ));
        }
    };
    Ok(Severity::from_score(score, label))
}

fn alert(record: Value) -> Result<Decoded, DecodeError> {
    let r = &record;
    let (time, time_original) = first_time(r, &["alertInfo.createdAt", "alertInfo.reportedAt"])?;
    let title = req_str(r, "ruleInfo.name")?.to_string();
    let severity = match get(r, "ruleInfo.severity") {
        None | Some(Value::Null) => Severity::unknown(),
        Some(Value::String(s)) => label_severity(s, "ruleInfo.severity")?,
        Some(other) => {
            return Err(DecodeError::new(
                "ruleInfo.severity",
                format!("expected a string, found {}", fields::type_name(other)),
            ));
        }
    };

    let mut e = Entities::new();
    e.add_at(EntityKind::Host, Role::Target, r, "agentDetectionInfo.name")
        .add_at(EntityKind::Host, Role::Target, r, "agentRealtimeInfo.name")
        .add_at(EntityKind::Ip, Role::Target, r, "alertInfo.srcMachineIp")
        .add_at(EntityKind::Ip, Role::Source, r, "alertInfo.srcIp")
        .add_at(EntityKind::Ip, Role::Target, r, "alertInfo.dstIp")
        .add_at(EntityKind::User, Role::Actor, r, "sourceProcessInfo.user");
    let login = match (
        str_at(r, "alertInfo.loginsUserName"),
        str_at(r, "alertInfo.loginAccountDomain"),
    ) {
        (Some(u), Some(d)) if !u.contains('\\') && !u.contains('@') => Some(format!("{d}\\{u}")),
        (u, _) => u.map(str::to_string),
    };
    e.add(EntityKind::User, Role::Target, login.as_deref())
        .add_at(
            EntityKind::Process,
            Role::Actor,
            r,
            "sourceProcessInfo.filePath",
        )
        .add_at(
            EntityKind::Process,
            Role::Related,
            r,
            "sourceParentProcessInfo.filePath",
        )
        .add_at(
            EntityKind::Process,
            Role::Target,
            r,
            "targetProcessInfo.tgtProcImagePath",
        )
        .add_at(EntityKind::Domain, Role::Target, r, "alertInfo.dnsRequest");
    for path in [
        "sourceProcessInfo.fileHashSha256",
        "sourceProcessInfo.fileHashSha1",
        "sourceProcessInfo.fileHashMd5",
        "targetProcessInfo.tgtFileHashSha256",
        "targetProcessInfo.tgtFileHashSha1",
        "alertInfo.moduleSha1",
    ] {
        add_hash(&mut e, str_at(r, path));
    }

    Ok(Decoded::Alert(Alert {
        id: String::new(),
        decoder: "sentinelone".into(),
        product: PRODUCT.into(),
        source_id: text_at(r, "alertInfo.alertId"),
        time,
        time_original,
        title,
        description: str_at(r, "ruleInfo.description").map(str::to_string),
        severity,
        rule: Rule::new(
            text_at(r, "ruleInfo.id"),
            str_at(r, "ruleInfo.name").map(str::to_string),
        ),
        entities: e.into_vec(),
        techniques: Vec::new(),
        tactics: Vec::new(),
        original: record,
        origin: None,
    }))
}

fn add_hash(e: &mut Entities, hash: Option<&str>) {
    if let Some(h) = hash
        && !fields::is_placeholder_hash(h)
    {
        e.add(EntityKind::FileHash, Role::Related, Some(h));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputKind;
    use crate::testkit::{alert as as_alert, *};
    use riposte_domain::SeverityLabel;
    use serde_json::json;

    const THREATS: &str = "alerts/sentinelone/threat/test-pipeline-threat.log";
    const ALERTS: &str = "alerts/sentinelone/alert/test-pipeline-alert.log";

    #[test]
    fn threats_record_by_record() {
        let out = decode_file(&SentinelOne, THREATS);
        assert_eq!(out.len(), 5);
        let rows: Vec<(&str, &str, u8, &str, &str)> = out
            .iter()
            .map(|d| {
                let a = as_alert(d);
                (
                    a.title.as_str(),
                    a.rule.as_ref().unwrap().name.as_deref().unwrap(),
                    a.severity.score,
                    a.severity.original.as_str(),
                    a.source_id.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "default.exe",
                    "Trojan",
                    75,
                    "malicious",
                    "1234567890123456789"
                ),
                ("Threats", "Malware", 75, "malicious", "123456789"),
                ("Threats", "Exploit", 75, "malicious", "123456789"),
                // Potentially unwanted: capped at low whatever the confidence.
                ("Threats", "PUA", 30, "malicious", "123456789"),
                ("Threats", "Downloader", 75, "malicious", "123456789"),
            ]
        );
        let a = as_alert(&out[0]);
        assert_eq!(a.time.to_string(), "2022-04-06T08:45:53.968Z");
        assert_eq!(a.time_original, "2022-04-06T08:45:53.968000Z");
        assert!(a.techniques.is_empty() && a.tactics.is_empty());
        assert_eq!(
            ents(&out[0], EntityKind::Host, Role::Target),
            ["test-linux"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Target),
            ["10.0.0.1", "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Related),
            ["81.2.69.143"]
        );
        assert_eq!(ents(&out[0], EntityKind::User, Role::Actor), ["test user"]);
        assert!(ents(&out[0], EntityKind::User, Role::Related).is_empty());
        assert_eq!(
            ents(&out[0], EntityKind::Process, Role::Actor),
            ["default.exe"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::FileHash, Role::Related),
            ["aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"]
        );

        let b = as_alert(&out[1]);
        assert_eq!(b.time.to_string(), "2022-04-06T08:57:34.444Z");
        assert_eq!(
            b.tactics,
            ["Execution", "Initial Access", "Defense Evasion"]
        );
        let t: Vec<&str> = b.techniques.iter().map(TechniqueId::as_str).collect();
        assert_eq!(t, ["T1234"]);
        assert_eq!(ents(&out[1], EntityKind::User, Role::Actor), ["test_user"]);
        assert_eq!(b.severity.label, SeverityLabel::High);
    }

    #[test]
    fn threat_severity_table() {
        let threat = |info: Value| {
            json!({"id": "1", "agentRealtimeInfo": {"agentComputerName": "h"},
                   "threatInfo": info})
        };
        let cases = [
            (
                json!({"confidenceLevel": "suspicious", "classification": "Malware"}),
                50,
            ),
            (
                json!({"confidenceLevel": "n/a", "classification": "Malware"}),
                30,
            ),
            (json!({"classification": "Malware"}), 30),
            (
                json!({"confidenceLevel": "malicious", "classification": "Ransomware"}),
                95,
            ),
            (
                json!({"confidenceLevel": "suspicious", "classification": "Ransomware"}),
                50,
            ),
            (
                json!({"confidenceLevel": "malicious", "classification": "Adware"}),
                30,
            ),
            (
                json!({"confidenceLevel": "malicious", "severity": "Critical"}),
                95,
            ),
        ];
        for (mut info, score) in cases {
            info["threatName"] = json!("x");
            info["identifiedAt"] = json!("2024-01-01T00:00:00Z");
            let out = SentinelOne.decode(threat(info.clone())).unwrap();
            assert_eq!(as_alert(&out[0]).severity.score, score, "{info}");
        }
    }

    #[test]
    fn alerts_record_by_record() {
        let out = decode_file(&SentinelOne, ALERTS);
        assert_eq!(out.len(), 3);

        // The first is the API's schema example: every string field says "string".
        let a = as_alert(&out[0]);
        assert_eq!(a.source_id.as_deref(), Some("123456789123456789"));
        assert_eq!(
            (a.severity.score, a.severity.original.as_str()),
            (30, "Low")
        );
        assert_eq!(a.time.to_string(), "2018-02-27T04:49:26.257525Z");
        assert_eq!(ents(&out[0], EntityKind::Ip, Role::Source), ["81.2.69.142"]);
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Target),
            ["81.2.69.192", "81.2.69.144"]
        );
        assert_eq!(ents(&out[0], EntityKind::Host, Role::Target), ["string"]);
        assert_eq!(
            ents(&out[0], EntityKind::FileHash, Role::Related),
            [
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
                "5d41402abc4b2a76b9719d911017c592"
            ]
        );
        assert_eq!(
            ents(&out[0], EntityKind::User, Role::Target),
            ["string\\string"]
        );

        for (i, (id, pid_path)) in [
            ("1985998272619999973", "2024-07-03T03:44:03.003Z"),
            ("1985998274037674753", "2024-07-03T03:44:03.004Z"),
        ]
        .into_iter()
        .enumerate()
        {
            let d = &out[i + 1];
            let a = as_alert(d);
            assert_eq!(a.source_id.as_deref(), Some(id));
            assert_eq!(a.time.to_string(), pid_path);
            assert_eq!(a.title, "test5");
            let rule = a.rule.as_ref().unwrap();
            assert_eq!(rule.id.as_deref(), Some("1412136126226508571"));
            assert_eq!(rule.name.as_deref(), Some("test5"));
            assert_eq!(
                (
                    a.severity.score,
                    a.severity.label,
                    a.severity.original.as_str()
                ),
                (95, SeverityLabel::Critical, "Critical")
            );
            assert!(a.techniques.is_empty());
            assert_eq!(ents(d, EntityKind::Host, Role::Target), ["srv-win1"]);
            assert_eq!(
                ents(d, EntityKind::User, Role::Actor),
                ["nt authority\\system"]
            );
            assert!(ents_any(d, EntityKind::Ip).is_empty());
            assert_eq!(
                ents(d, EntityKind::Process, Role::Actor),
                ["c:\\windows\\system32\\windowspowershell\\v1.0\\powershell.exe"]
            );
            assert_eq!(
                ents(d, EntityKind::Process, Role::Related),
                ["c:\\windows\\system32\\compattelrunner.exe"]
            );
            assert_eq!(
                ents(d, EntityKind::Process, Role::Target),
                ["c:\\windows\\system32\\conhost.exe"]
            );
            assert_eq!(ents(d, EntityKind::FileHash, Role::Related).len(), 3);
        }
    }

    #[test]
    fn api_response_wrapper() {
        // `GET /web/api/v2.1/threats` answers `{"data": [...], "pagination": {...}}`.
        let r = json!({
            "data": [{"id": "9", "agentRealtimeInfo": {"agentComputerName": "ws-1"},
                      "threatInfo": {"threatId": "9", "threatName": "evil.exe",
                                     "confidenceLevel": "suspicious",
                                     "identifiedAt": "2024-05-01T10:00:00.000000Z"}}],
            "pagination": {"nextCursor": null, "totalItems": 1}
        });
        assert!(SentinelOne.recognises(&r));
        let out = SentinelOne.decode(r).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(as_alert(&out[0]).severity.score, 50);
        let e = SentinelOne
            .decode(json!({"data": [{"threatInfo": {"threatName": "x"}}], "pagination": {}}))
            .unwrap_err();
        assert_eq!(e.field, "data[0].threatInfo.identifiedAt");
    }

    #[test]
    fn recognises_sentinelone_only() {
        for f in [THREATS, ALERTS] {
            for r in corpus_records(f, InputKind::Json) {
                assert!(SentinelOne.recognises(&r), "{f}");
            }
        }
        for f in [
            "alerts/crowdstrike/alert/test-alert.log",
            "alerts/crowdstrike/falcon/test-falcon-epp-detection-summary.log",
            "alerts/defender/endpoint/test-defenderatp.log",
            "alerts/suricata/eve/test-eve-small.log",
        ] {
            for r in corpus_records(f, InputKind::Json) {
                assert!(!SentinelOne.recognises(&r), "{f}");
            }
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        assert_eq!(SentinelOne.decode(json!(42)).unwrap_err().field, "$");
        assert_eq!(SentinelOne.decode(json!({"x": 1})).unwrap_err().field, "$");
        let e = SentinelOne
            .decode(json!({"threatInfo": {"threatName": "x", "identifiedAt": "yesterday"}}))
            .unwrap_err();
        assert_eq!(e.field, "threatInfo.identifiedAt");
        let e = SentinelOne
            .decode(json!({"threatInfo": {"identifiedAt": "2024-01-01T00:00:00Z"}}))
            .unwrap_err();
        assert_eq!(e.to_string(), "field `threatInfo.threatName`: missing");
        let e = SentinelOne
            .decode(json!({"threatInfo": {"threatName": "x", "identifiedAt": "2024-01-01T00:00:00Z", "confidenceLevel": "very"}}))
            .unwrap_err();
        assert_eq!(e.field, "threatInfo.confidenceLevel");
        let e = SentinelOne
            .decode(json!({"threatInfo": {"threatName": "x", "identifiedAt": "2024-01-01T00:00:00Z", "confidenceLevel": 3}}))
            .unwrap_err();
        assert_eq!(e.field, "threatInfo.confidenceLevel");
        let e = SentinelOne
            .decode(json!({"alertInfo": {"createdAt": "2024-01-01T00:00:00Z"}, "ruleInfo": {"name": "r", "severity": "Severe-ish"}}))
            .unwrap_err();
        assert_eq!(e.field, "ruleInfo.severity");
        let e = SentinelOne
            .decode(json!({"alertInfo": {}, "ruleInfo": {"name": "r"}}))
            .unwrap_err();
        assert_eq!(e.field, "alertInfo.createdAt");
        let e = SentinelOne
            .decode(json!({"alertInfo": {"createdAt": "2024-01-01T00:00:00Z"}, "ruleInfo": "r"}))
            .unwrap_err();
        assert_eq!(e.field, "ruleInfo");
        let out = SentinelOne
            .decode(json!({"alertInfo": {"createdAt": "2024-01-01T00:00:00Z"}, "ruleInfo": {"name": "Règle \u{FFFD}"}}))
            .unwrap();
        assert_eq!(as_alert(&out[0]).title, "Règle \u{FFFD}");
    }
}
