//! Microsoft Defender for Endpoint alerts API (`GET /api/alerts`, `$expand=evidence`): each
//! alert becomes an alert, bare or in the API's `{"@odata.context", "value": [...]}` response
//! (one output per element; an empty `value` holds none). `evidence` may be the API's array
//! or one evidence object (collectors that split alerts per evidence, as the corpus does).
//!
//! Time: `alertCreationTime` (when Defender raised the alert), else `firstEventTime` (the first
//! activity it is about); ISO 8601 in UTC with up to seven fractional digits.
//! Severity: `severity` is a label, mapped Informational → 10, Low → 30, Medium → 50,
//! High → 75; `UnSpecified` (and absent) → unknown (0). Other values are errors. The label is
//! kept as written.
//! Ids: the alert `id` (`da637291085411733957_-1043898914`) is the source id.
//! Rule: `detectorId` with the alert `title`.
//! ATT&CK: `mitreTechniques` (technique ids); `category` is kept as the tactic when it is an
//! ATT&CK tactic (`DefenseEvasion`, `CredentialAccess`; not `Malware`).
//! Entities: the device `computerDnsName` (target); `relatedUser` (actor, `DOMAIN\user`);
//! `loggedOnUsers[]` and evidence users (related, `DOMAIN\account` and the UPN); evidence
//! addresses, URLs, file hashes and process images (related).

use riposte_domain::{Alert, Decoded, EntityKind, Role, Rule, Severity, TechniqueId};
use serde_json::Value;

use crate::fields::{self, Entities, first_time, get, req_str, str_at};
use crate::{DecodeError, Decoder};

pub struct Defender;

const PRODUCT: &str = "Microsoft Defender for Endpoint";

impl Decoder for Defender {
    fn name(&self) -> &'static str {
        "defender"
    }

    fn recognises(&self, r: &Value) -> bool {
        if let Some(Value::Array(items)) = get(r, "value") {
            return str_at(r, "@odata.context").is_some_and(|c| c.ends_with("#Alerts"))
                || items.first().is_some_and(is_alert);
        }
        is_alert(r)
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        if let Some(value) = get(&record, "value")
            && get(&record, "id").is_none()
        {
            let Value::Array(items) = value else {
                return Err(DecodeError::new(
                    "value",
                    format!("expected an array, found {}", fields::type_name(value)),
                ));
            };
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                fields::require_object(item)
                    .map_err(|e| DecodeError::new(format!("value[{i}]"), e.reason))?;
                let a = alert(item.clone()).map_err(|e| within(&format!("value[{i}]."), e))?;
                out.push(a);
            }
            return Ok(out);
        }
        Ok(vec![alert(record)?])
    }
}

fn is_alert(r: &Value) -> bool {
    str_at(r, "id").is_some()
        && str_at(r, "alertCreationTime").is_some()
        && (get(r, "computerDnsName").is_some() || get(r, "machineId").is_some())
        && get(r, "detectionSource").is_some()
}

fn within(prefix: &str, e: DecodeError) -> DecodeError {
    if e.field == "$" {
        DecodeError::new(prefix.trim_end_matches('.'), e.reason)
    } else {
        DecodeError::new(format!("{prefix}{}", e.field), e.reason)
    }
}

fn alert(record: Value) -> Result<Decoded, DecodeError> {
    let r = &record;
    let (time, time_original) = first_time(r, &["alertCreationTime", "firstEventTime"])?;
    let title = req_str(r, "title")?.to_string();
    let severity = match get(r, "severity") {
        None | Some(Value::Null) => Severity::unknown(),
        Some(Value::String(s)) => {
            let score = match s.trim().to_ascii_lowercase().as_str() {
                "informational" => 10,
                "low" => 30,
                "medium" => 50,
                "high" => 75,
                "unspecified" => 0,
                _ => {
                    return Err(DecodeError::new(
                        "severity",
                        format!("unknown severity {s:?}"),
                    ));
                }
            };
            Severity::from_score(score, s.clone())
        }
        Some(other) => {
            return Err(DecodeError::new(
                "severity",
                format!("expected a string, found {}", fields::type_name(other)),
            ));
        }
    };

    let mut techniques: Vec<TechniqueId> = Vec::new();
    match get(r, "mitreTechniques") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ids)) => {
            for t in ids.iter().filter_map(Value::as_str) {
                if let Some(t) = TechniqueId::parse(t)
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
    let tactics: Vec<String> = str_at(r, "category")
        .filter(|c| fields::is_attack_tactic(c))
        .map(str::to_string)
        .into_iter()
        .collect();

    let mut e = Entities::new();
    e.add_at(EntityKind::Host, Role::Target, r, "computerDnsName");
    if let Some(u) = get(r, "relatedUser") {
        let name = user(str_at(u, "userName"), str_at(u, "domainName"));
        e.add(EntityKind::User, Role::Actor, name.as_deref());
    }
    if let Some(Value::Array(users)) = get(r, "loggedOnUsers") {
        for u in users {
            let name = user(str_at(u, "accountName"), str_at(u, "domainName"));
            e.add(EntityKind::User, Role::Related, name.as_deref());
        }
    }
    match get(r, "evidence") {
        Some(Value::Array(items)) => {
            for ev in items {
                evidence(&mut e, ev);
            }
        }
        Some(ev @ Value::Object(_)) => evidence(&mut e, ev),
        _ => {}
    }

    Ok(Decoded::Alert(Alert {
        id: String::new(),
        decoder: "defender".into(),
        product: PRODUCT.into(),
        source_id: str_at(r, "id").map(str::to_string),
        time,
        time_original,
        description: str_at(r, "description").map(str::to_string),
        rule: Rule::new(
            str_at(r, "detectorId").map(str::to_string),
            Some(title.clone()),
        ),
        title,
        severity,
        entities: e.into_vec(),
        techniques,
        tactics,
        original: record,
        origin: None,
    }))
}

/// One evidence entity; every field is read whatever the `entityType`, since only the fields
/// of that type are filled.
fn evidence(e: &mut Entities, ev: &Value) {
    let account = user(str_at(ev, "accountName"), str_at(ev, "domainName"));
    e.add(EntityKind::User, Role::Related, account.as_deref())
        .add_at(EntityKind::User, Role::Related, ev, "userPrincipalName")
        .add_at(EntityKind::Ip, Role::Related, ev, "ipAddress")
        .add_at(EntityKind::Url, Role::Related, ev, "url");
    for path in ["sha256", "sha1"] {
        if let Some(h) = str_at(ev, path)
            && !fields::is_placeholder_hash(h)
        {
            e.add(EntityKind::FileHash, Role::Related, Some(h));
        }
    }
    if str_at(ev, "entityType").is_some_and(|t| t.eq_ignore_ascii_case("process"))
        && let Some(name) = str_at(ev, "fileName")
    {
        let image = match str_at(ev, "filePath") {
            Some(dir) => format!("{}\\{name}", dir.trim_end_matches('\\')),
            None => name.to_string(),
        };
        e.add(EntityKind::Process, Role::Related, Some(&image));
    }
}

/// `DOMAIN\user` when the domain is given.
fn user(name: Option<&str>, domain: Option<&str>) -> Option<String> {
    let name = name?;
    Some(match domain {
        Some(d) if !name.contains('\\') && !name.contains('@') => format!("{d}\\{name}"),
        _ => name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputKind;
    use crate::testkit::{alert as as_alert, *};
    use riposte_domain::SeverityLabel;
    use serde_json::json;

    const FILE: &str = "alerts/defender/endpoint/test-defenderatp.log";

    #[test]
    fn corpus_alerts_record_by_record() {
        let out = decode_file(&Defender, FILE);
        assert_eq!(
            out.len(),
            5,
            "five alerts; the empty `value` page holds none"
        );
        let rows: Vec<(&str, u8, &str, &str)> = out
            .iter()
            .map(|d| {
                let a = as_alert(d);
                (
                    a.source_id.as_deref().unwrap(),
                    a.severity.score,
                    a.severity.original.as_str(),
                    a.title.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "da637291085411733957_-1043898914",
                    30,
                    "Low",
                    "An active 'Exeselrun' malware was detected"
                ),
                (
                    "da637291048912199236_1126926584",
                    50,
                    "Medium",
                    "Suspicious process injection observed"
                ),
                (
                    "da637291048912199236_1126926584",
                    50,
                    "Medium",
                    "Suspicious process injection observed"
                ),
                (
                    "da637291063515066999_-2102938302",
                    10,
                    "Informational",
                    "'Mountsi' malware was detected"
                ),
                (
                    "da637291063515066999_-2102938302",
                    10,
                    "Informational",
                    "'Mountsi' malware was detected"
                ),
            ]
        );
        for d in &out {
            assert_eq!(ents(d, EntityKind::Host, Role::Target), ["testserver4"]);
            let a = as_alert(d);
            assert!(a.techniques.is_empty());
            assert_eq!(
                a.rule.as_ref().unwrap().name.as_deref(),
                Some(a.title.as_str())
            );
        }

        let a = as_alert(&out[0]);
        assert_eq!(a.time.to_string(), "2020-06-30T10:09:01.1569718Z");
        assert_eq!(a.time_original, "2020-06-30T10:09:01.1569718Z");
        assert!(a.tactics.is_empty(), "`Malware` is not an ATT&CK tactic");
        assert!(
            a.description
                .as_deref()
                .unwrap()
                .starts_with("Malware and unwanted software")
        );
        assert!(ents_any(&out[0], EntityKind::User).is_empty());
        assert!(ents_any(&out[0], EntityKind::FileHash).is_empty());

        let b = as_alert(&out[1]);
        assert_eq!(b.tactics, ["DefenseEvasion"]);
        assert_eq!(b.time.to_string(), "2020-06-30T09:08:11.1084877Z");
        assert_eq!(b.severity.label, SeverityLabel::Medium);
        assert_eq!(
            ents(&out[1], EntityKind::User, Role::Actor),
            ["testserver4\\administrator1"]
        );
        assert_eq!(
            ents(&out[1], EntityKind::FileHash, Role::Related),
            [
                "a92056d772260b39a876d01552496b2f8b4610a0b1e084952fe1176784e2ce77",
                "b6d237154f2e528f0b503b58b025862d66b02b73"
            ]
        );
        assert_eq!(
            ents(&out[1], EntityKind::Process, Role::Related),
            ["c:\\windows\\system32\\notepad.exe"]
        );
        // User evidence.
        assert_eq!(
            ents(&out[2], EntityKind::User, Role::Actor),
            ["testserver4\\administrator1"]
        );
        assert_eq!(
            ents(&out[2], EntityKind::User, Role::Related),
            ["testserver4\\administrator1"]
        );
        // File evidence with hashes; the same alert again without evidence.
        assert_eq!(
            ents(&out[3], EntityKind::FileHash, Role::Related),
            [
                "fd46705c4f67a8ef16e76259ca6d6253241e51a1f8952223145f92aa1907d356",
                "ffb1670c6c6a9c5b4c5cea8b6b8e68d62e7ff281"
            ]
        );
        assert!(ents_any(&out[4], EntityKind::FileHash).is_empty());
        assert_eq!(
            as_alert(&out[4]).time.to_string(),
            "2020-06-30T09:32:31.4579225Z"
        );
    }

    /// An alert as the List alerts API documents it (learn.microsoft.com, "Get alert
    /// information by ID API" example), shortened: evidence as an array, `mitreTechniques`,
    /// `detectorId`, inside the API's `value` response.
    fn documented_response() -> Value {
        json!({
            "@odata.context": "https://api.securitycenter.microsoft.com/api/$metadata#Alerts",
            "value": [{
                "id": "da637472900382838869_1364969609",
                "incidentId": 1126093,
                "severity": "Low",
                "status": "New",
                "detectionSource": "WindowsDefenderAtp",
                "detectorId": "17e10bbc-3a68-474a-8aad-faef14d43952",
                "category": "Execution",
                "title": "Low-reputation arbitrary code executed by signed executable",
                "description": "Binaries signed by Microsoft can be used to run low-reputation arbitrary code.",
                "alertCreationTime": "2021-01-26T20:33:57.7220239Z",
                "firstEventTime": "2021-01-26T20:31:32.9562661Z",
                "lastEventTime": "2021-01-26T20:31:33.0577322Z",
                "machineId": "111e6dd8c833c8a052ea231ec1b19adaf497b625",
                "computerDnsName": "temp123.middleeast.corp.microsoft.com",
                "mitreTechniques": ["T1064", "T1085", "T1220"],
                "relatedUser": {"userName": "temp123", "domainName": "MIDDLEEAST"},
                "evidence": [
                    {"entityType": "User", "accountName": "eranb", "domainName": "MIDDLEEAST",
                     "userSid": "S-1-5-21-11111607-1111760036-109187956-75141",
                     "userPrincipalName": "temp123@microsoft.com"},
                    {"entityType": "Process",
                     "sha1": "ff836cfb1af40252bd2a2ea843032e99a5b262ed",
                     "sha256": "a4752c71d81afd3d5865d24ddb11a6b0c615062fcc448d24050c2172d2cbccd6",
                     "fileName": "rundll32.exe", "filePath": "C:\\Windows\\SysWOW64",
                     "processId": 3276,
                     "processCommandLine": "rundll32.exe  c:\\temp\\suspicious.dll,RepeatAfterMe"},
                    {"entityType": "Ip", "ipAddress": "203.0.113.9"},
                    {"entityType": "Url", "url": "http://malicious.example/payload"}
                ]
            }]
        })
    }

    #[test]
    fn documented_api_alert() {
        let r = documented_response();
        assert!(Defender.recognises(&r));
        let mut out = Defender.decode(r).unwrap();
        assert_eq!(out.len(), 1);
        riposte_domain::Canonicaliser::default().apply_all(out[0].entities_mut());
        let a = as_alert(&out[0]);
        let t: Vec<&str> = a.techniques.iter().map(TechniqueId::as_str).collect();
        assert_eq!(t, ["T1064", "T1085", "T1220"]);
        assert_eq!(a.tactics, ["Execution"]);
        assert_eq!(
            a.rule.as_ref().unwrap().id.as_deref(),
            Some("17e10bbc-3a68-474a-8aad-faef14d43952")
        );
        assert_eq!(a.time.to_string(), "2021-01-26T20:33:57.7220239Z");
        assert_eq!(ents(&out[0], EntityKind::Host, Role::Target), ["temp123"]);
        assert_eq!(
            ents(&out[0], EntityKind::User, Role::Actor),
            ["middleeast\\temp123"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::User, Role::Related),
            ["middleeast\\eranb", "temp123@microsoft.com"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Related),
            ["203.0.113.9"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Url, Role::Related),
            ["http://malicious.example/payload"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Process, Role::Related),
            ["c:\\windows\\syswow64\\rundll32.exe"]
        );
        assert_eq!(ents(&out[0], EntityKind::FileHash, Role::Related).len(), 2);
    }

    #[test]
    fn recognises_defender_only() {
        for r in corpus_records(FILE, InputKind::Json) {
            if r.get("value").is_some_and(|v| v == &json!([])) {
                continue; // an empty page without its @odata.context says nothing of its origin
            }
            assert!(Defender.recognises(&r));
        }
        for f in [
            "alerts/crowdstrike/alert/test-alert.log",
            "alerts/sentinelone/threat/test-pipeline-threat.log",
            "alerts/m365_defender/alert/test-alert.log",
            "alerts/sentinel/alert/test-alert.log",
            "alerts/suricata/eve/test-eve-small.log",
        ] {
            for r in corpus_records(f, InputKind::Json) {
                assert!(!Defender.recognises(&r), "{f}");
            }
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        let base = || {
            json!({"id": "da1", "title": "t", "alertCreationTime": "2021-01-26T20:33:57Z",
                   "computerDnsName": "h", "detectionSource": "x"})
        };
        assert_eq!(Defender.decode(json!(null)).unwrap_err().field, "$");
        let mut r = base();
        r.as_object_mut().unwrap().remove("alertCreationTime");
        assert_eq!(
            Defender.decode(r).unwrap_err().to_string(),
            "field `alertCreationTime`: missing"
        );
        let mut r = base();
        r["alertCreationTime"] = json!("not a time");
        assert_eq!(Defender.decode(r).unwrap_err().field, "alertCreationTime");
        let mut r = base();
        r["severity"] = json!("Catastrophic");
        assert_eq!(Defender.decode(r).unwrap_err().field, "severity");
        let mut r = base();
        r["severity"] = json!(3);
        assert_eq!(Defender.decode(r).unwrap_err().field, "severity");
        let mut r = base();
        r["mitreTechniques"] = json!("T1059");
        assert_eq!(Defender.decode(r).unwrap_err().field, "mitreTechniques");
        let mut r = base();
        r.as_object_mut().unwrap().remove("title");
        assert_eq!(Defender.decode(r).unwrap_err().field, "title");
        let e = Defender
            .decode(json!({"value": [base(), {"id": "x", "alertCreationTime": "2021-01-26T20:33:57Z"}]}))
            .unwrap_err();
        assert_eq!(e.field, "value[1].title");
        assert_eq!(
            Defender.decode(json!({"value": 3})).unwrap_err().field,
            "value"
        );
        let mut r = base();
        r["severity"] = json!("UnSpecified");
        r["title"] = json!("Activité suspecte \u{FFFD}");
        let out = Defender.decode(r).unwrap();
        let a = as_alert(&out[0]);
        assert_eq!(
            (a.severity.score, a.severity.original.as_str()),
            (0, "UnSpecified")
        );
        assert_eq!(a.title, "Activité suspecte \u{FFFD}");
    }
}
