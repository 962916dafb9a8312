//! Microsoft Entra ID (Azure AD) sign-in logs, in the Azure diagnostic-settings form that
//! reaches a SOC through Event Hubs or storage (`time`, `category`, `operationName`,
//! `properties` holding the Graph `signIn` resource), and the bare Graph `signIn` resource
//! (`/auditLogs/signIns`). Every record becomes an event; sign-ins are telemetry, and risky
//! ones are for detection rules to raise.
//!
//! Categories: `SignInLogs` and `NonInteractiveUserSignInLogs` → action `sign-in`,
//! `ServicePrincipalSignInLogs` → `service-principal-sign-in`, `ManagedIdentitySignInLogs` →
//! `managed-identity-sign-in`. Other categories (audit logs, provisioning, …) are refused
//! with an error naming `category`.
//! Time: `time` (diagnostic form, ISO 8601 UTC), else `properties.createdDateTime` (written
//! with an offset, e.g. `2019-10-18T04:45:48.0729893-05:00`); Graph form `createdDateTime`.
//! Outcome: `status.errorCode` 0 → `success`, any other code → `failure` (interrupts such as
//! 50140 "keep me signed in" included, as Entra counts them); without a status, the
//! diagnostic `resultType` (`"0"` is success).
//! Severity: none (events). `riskLevelDuringSignIn`, `appDisplayName`, `deviceDetail`, the
//! user agent and location stay in the original for rules.
//! Ids: the sign-in's `id` (request id) is the source id.
//! Entities: the signing-in user (`userPrincipalName`; a service principal's name) as actor,
//! the client address (`ipAddress`, else `callerIpAddress`) as source, the device
//! (`deviceDetail.displayName`, present for registered devices) as source host.

use riposte_domain::{Decoded, EntityKind, Event, Role};
use serde_json::Value;

use crate::fields::{self, Entities, first_time, get, int_at, str_at, text_at};
use crate::{DecodeError, Decoder};

pub struct Entra;

const PRODUCT: &str = "Microsoft Entra ID";

/// Sign-in categories and the action each becomes.
const CATEGORIES: [(&str, &str); 4] = [
    ("SignInLogs", "sign-in"),
    ("NonInteractiveUserSignInLogs", "sign-in"),
    ("ServicePrincipalSignInLogs", "service-principal-sign-in"),
    ("ManagedIdentitySignInLogs", "managed-identity-sign-in"),
];

fn action_of(category: &str) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(category))
        .map(|(_, a)| *a)
}

/// The Graph `signIn` resource without the diagnostic envelope.
fn is_graph_sign_in(r: &Value) -> bool {
    str_at(r, "createdDateTime").is_some()
        && get(r, "status").is_some_and(Value::is_object)
        && (get(r, "userPrincipalName").is_some() || get(r, "servicePrincipalId").is_some())
        && get(r, "appDisplayName").is_some()
}

impl Decoder for Entra {
    fn name(&self) -> &'static str {
        "entra"
    }

    fn recognises(&self, r: &Value) -> bool {
        match str_at(r, "category") {
            Some(c) => action_of(c).is_some() && get(r, "properties").is_some_and(Value::is_object),
            None => is_graph_sign_in(r),
        }
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        // Diagnostic form: the sign-in is under `properties`; Graph form: the record itself.
        let (action, prefix) = match get(&record, "category") {
            Some(Value::String(c)) => match action_of(c) {
                Some(a) => (a, "properties."),
                None => {
                    return Err(DecodeError::new(
                        "category",
                        format!(
                            "{c:?} is not a sign-in log (SignInLogs, NonInteractiveUserSignInLogs, \
                             ServicePrincipalSignInLogs, ManagedIdentitySignInLogs)"
                        ),
                    ));
                }
            },
            Some(other) if !other.is_null() => {
                return Err(DecodeError::new(
                    "category",
                    format!("expected a string, found {}", fields::type_name(other)),
                ));
            }
            _ if is_graph_sign_in(&record) => ("sign-in", ""),
            _ => return Err(DecodeError::missing("category")),
        };
        if !prefix.is_empty() {
            match get(&record, "properties") {
                Some(Value::Object(_)) => {}
                None | Some(Value::Null) => return Err(DecodeError::missing("properties")),
                Some(other) => {
                    return Err(DecodeError::new(
                        "properties",
                        format!("expected an object, found {}", fields::type_name(other)),
                    ));
                }
            }
        }
        let p = |f: &str| format!("{prefix}{f}");

        let (time, time_original) = if prefix.is_empty() {
            first_time(&record, &["createdDateTime"])?
        } else {
            first_time(&record, &["time", &p("createdDateTime")])?
        };
        let outcome = outcome(&record, &p("status.errorCode"))?;

        let mut e = Entities::new();
        e.add_at(
            EntityKind::User,
            Role::Actor,
            &record,
            &p("userPrincipalName"),
        );
        if action == "service-principal-sign-in" || action == "managed-identity-sign-in" {
            e.add_at(
                EntityKind::User,
                Role::Actor,
                &record,
                &p("servicePrincipalName"),
            );
        }
        let ip = str_at(&record, &p("ipAddress")).or_else(|| str_at(&record, "callerIpAddress"));
        e.add(EntityKind::Ip, Role::Source, ip);
        e.add_at(
            EntityKind::Host,
            Role::Source,
            &record,
            &p("deviceDetail.displayName"),
        );

        Ok(vec![Decoded::Event(Event {
            id: String::new(),
            decoder: self.name().into(),
            product: PRODUCT.into(),
            source_id: text_at(&record, &p("id")),
            time,
            time_original,
            action: action.into(),
            outcome,
            entities: e.into_vec(),
            original: record,
            origin: None,
        })])
    }
}

/// `success` when the error code is 0, `failure` otherwise; the diagnostic `resultType` when
/// there is no status.
fn outcome(r: &Value, code_path: &str) -> Result<Option<String>, DecodeError> {
    let code = match get(r, code_path) {
        None | Some(Value::Null) => None,
        Some(v @ (Value::Number(_) | Value::String(_))) => {
            Some(int_at(r, code_path).ok_or_else(|| {
                DecodeError::new(code_path, format!("expected an error code, found {v}"))
            })?)
        }
        Some(other) => {
            return Err(DecodeError::new(
                code_path,
                format!("expected a number, found {}", fields::type_name(other)),
            ));
        }
    };
    let code = match code {
        Some(c) => Some(c),
        None => match text_at(r, "resultType") {
            Some(t) => Some(t.trim().parse::<i64>().map_err(|_| {
                DecodeError::new("resultType", format!("expected an error code, found {t:?}"))
            })?),
            None => None,
        },
    };
    Ok(code.map(|c| if c == 0 { "success" } else { "failure" }.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use riposte_domain::Canonicaliser;
    use serde_json::json;

    const RAW: &str = "alerts/entra/signinlogs/test-signinlogs-raw.log";
    const SAMPLE: &str = "alerts/entra/signinlogs/test-signinlogs-sample.log";
    const PLAIN: &str = "alerts/entra/signinlogs/test-signinlogs.log";

    #[test]
    fn corpus_failed_sign_ins() {
        // `raw` writes `Level` as a string, the other as a number; both decode alike. The
        // second record of each names the user by object id where the UPN would be, as Entra
        // does for some failed sign-ins; it is kept as written.
        for (file, ip) in [(RAW, "81.2.69.144"), (PLAIN, "81.171.241.231")] {
            let out = decode_file(&Entra, file);
            assert_eq!(out.len(), 2, "{file}");
            let users = ["test@elastic.co", "c3813493-bf92-5123-2717-8a8b2979c38b"];
            for (d, user) in out.iter().zip(users) {
                let e = event(d);
                assert_eq!(e.action, "sign-in");
                assert_eq!(e.outcome.as_deref(), Some("failure"), "errorCode 50140");
                assert_eq!(e.product, "Microsoft Entra ID");
                assert_eq!(
                    e.source_id.as_deref(),
                    Some("8a4de8b5-095c-47d0-a96f-a75130c61d53")
                );
                assert_eq!(e.time.to_string(), "2019-10-18T09:45:48.0729893Z");
                assert_eq!(e.time_original, "2019-10-18T09:45:48.0729893Z");
                assert_eq!(ents(d, EntityKind::User, Role::Actor), [user]);
                assert_eq!(ents(d, EntityKind::Ip, Role::Source), [ip]);
                assert!(ents_any(d, EntityKind::Host).is_empty(), "no device name");
                assert_eq!(d.original()["properties"]["appDisplayName"], "Office 365");
            }
        }
    }

    #[test]
    fn corpus_successful_sign_ins() {
        let out = decode_file(&Entra, SAMPLE);
        assert_eq!(out.len(), 2);
        let expected = [
            (
                "933f20c0-efdf-477f-9586-e5cc566d2e00",
                "2022-01-24T05:10:08.6816663Z",
            ),
            (
                "933f20c0-efdf-477f-9586-e5cc676f2e00",
                "2022-01-24T05:10:12.2444226Z",
            ),
        ];
        for (d, (id, time)) in out.iter().zip(expected) {
            let e = event(d);
            assert_eq!(e.action, "sign-in");
            assert_eq!(e.outcome.as_deref(), Some("success"));
            assert_eq!(e.source_id.as_deref(), Some(id));
            assert_eq!(e.time.to_string(), time);
            assert_eq!(e.time_original, time);
            assert_eq!(
                ents(d, EntityKind::User, Role::Actor),
                ["mpliftrelastic20210901@outlook.com"]
            );
            assert_eq!(ents(d, EntityKind::Ip, Role::Source), ["1.128.3.4"]);
            assert_eq!(e.entities.len(), 2);
        }
    }

    /// The Graph `signIn` resource and a service-principal sign-in, built from the Graph and
    /// Azure Monitor documentation (the corpus has neither).
    #[test]
    fn graph_form_and_service_principal() {
        let graph = json!({
            "id": "66ea54eb-6301-4ee5-be62-ff5a759b0100",
            "createdDateTime": "2024-05-02T07:45:16Z",
            "userDisplayName": "Alice",
            "userPrincipalName": "alice@contoso.com",
            "appDisplayName": "Graph Explorer",
            "ipAddress": "131.107.159.37",
            "status": {"errorCode": 50126, "failureReason": "Invalid username or password."},
            "deviceDetail": {"deviceId": "d1", "displayName": "LAPTOP-7.contoso.com", "operatingSystem": "Windows 10"},
            "riskLevelDuringSignIn": "high"
        });
        assert!(Entra.recognises(&graph));
        let mut out = Entra.decode(graph).unwrap();
        Canonicaliser::default().apply_all(out[0].entities_mut());
        let d = &out[0];
        let e = event(d);
        assert_eq!(e.action, "sign-in");
        assert_eq!(e.outcome.as_deref(), Some("failure"));
        assert_eq!(e.time_original, "2024-05-02T07:45:16Z");
        assert_eq!(
            ents(d, EntityKind::User, Role::Actor),
            ["alice@contoso.com"]
        );
        assert_eq!(ents(d, EntityKind::Ip, Role::Source), ["131.107.159.37"]);
        assert_eq!(ents(d, EntityKind::Host, Role::Source), ["laptop-7"]);

        let sp = json!({
            "time": "2024-05-02T08:00:00.0000000Z",
            "category": "ServicePrincipalSignInLogs",
            "operationName": "Sign-in activity",
            "resultType": "0",
            "callerIpAddress": "20.190.1.2",
            "properties": {
                "id": "sp-1",
                "createdDateTime": "2024-05-02T08:00:00Z",
                "servicePrincipalName": "backup-automation",
                "servicePrincipalId": "0b1c",
                "appDisplayName": "backup-automation",
                "ipAddress": "",
                "status": {}
            }
        });
        let out = Entra.decode(sp).unwrap();
        let e = event(&out[0]);
        assert_eq!(e.action, "service-principal-sign-in");
        assert_eq!(e.outcome.as_deref(), Some("success"), "from resultType");
        assert_eq!(
            ents(&out[0], EntityKind::User, Role::Actor),
            ["backup-automation"]
        );
        assert_eq!(ents(&out[0], EntityKind::Ip, Role::Source), ["20.190.1.2"]);
    }

    #[test]
    fn recognises_sign_ins_only() {
        for f in [RAW, SAMPLE, PLAIN] {
            for r in corpus_records(f, crate::InputKind::Json) {
                assert!(Entra.recognises(&r), "{f}");
            }
        }
        for f in [
            "alerts/sentinel/alert/test-alert.log",
            "alerts/sentinel/incident/test-incident.log",
            "alerts/m365_defender/alert/test-alert.log",
            "alerts/okta/system/test-okta-system-events.log",
            "alerts/suricata/eve/test-eve-small.log",
        ] {
            for r in corpus_records(f, crate::InputKind::Json) {
                assert!(!Entra.recognises(&r), "{f}");
            }
        }
        assert!(!Entra.recognises(&json!({"category": "AuditLogs", "properties": {}})));
    }

    #[test]
    fn bad_records_name_the_field() {
        let good = corpus_records(SAMPLE, crate::InputKind::Json).remove(0);

        let mut r = good.clone();
        r.as_object_mut().unwrap().remove("time");
        // Falls back to the sign-in's own time.
        assert_eq!(
            event(&Entra.decode(r.clone()).unwrap()[0]).time_original,
            "2022-01-24T05:10:08.6816663+00:00"
        );
        r["properties"]
            .as_object_mut()
            .unwrap()
            .remove("createdDateTime");
        assert_eq!(Entra.decode(r).unwrap_err().field, "time");

        let mut r = good.clone();
        r["time"] = json!("24/01/2022 5am");
        assert_eq!(Entra.decode(r).unwrap_err().field, "time");

        let mut r = good.clone();
        r["properties"]["status"]["errorCode"] = json!({"code": 0});
        assert_eq!(
            Entra.decode(r).unwrap_err().field,
            "properties.status.errorCode"
        );

        let mut r = good.clone();
        r["properties"]["status"]["errorCode"] = json!("none");
        assert_eq!(
            Entra.decode(r).unwrap_err().field,
            "properties.status.errorCode"
        );

        let mut r = good.clone();
        r["category"] = json!("AuditLogs");
        let e = Entra.decode(r).unwrap_err();
        assert_eq!(e.field, "category");
        assert!(e.reason.contains("AuditLogs"));

        let mut r = good.clone();
        r["properties"] = json!("{}");
        assert_eq!(Entra.decode(r).unwrap_err().field, "properties");

        let mut r = good.clone();
        r.as_object_mut().unwrap().remove("category");
        assert_eq!(Entra.decode(r).unwrap_err().field, "category");

        assert_eq!(Entra.decode(json!([good])).unwrap_err().field, "$");
    }
}
