//! Okta System Log events (the `LogEvent` objects of `/api/v1/logs`), one per record, and Okta
//! event hook deliveries (`eventType: com.okta.event_hook`, the log events in `data.events`),
//! one event per log event. Every log event becomes an event: Okta states what happened, not
//! a detection.
//!
//! Action: `eventType` (`user.session.start`, `user.authentication.auth_via_mfa`, …).
//! Time: `published`, ISO 8601 UTC with milliseconds.
//! Outcome: `outcome.result`: SUCCESS and ALLOW → `success`, FAILURE and DENY → `failure`;
//! CHALLENGE, SKIPPED and UNKNOWN say neither (no outcome). Any other value is an error.
//! Severity: none (events). Okta's own `severity` (DEBUG/INFO/WARN/ERROR) is log level and
//! stays in the original.
//! Ids: `uuid` is the source id.
//! Entities: the actor when it is a person (`actor.type` `User`: its `alternateId`, the
//! login, as actor; system principals and API clients are not people to correlate on), the
//! client address (`client.ipAddress`, else the first of `request.ipChain`) as source and any
//! other addresses of the chain as related, targets of type `User`/`AppUser` as target users
//! and `UDDevice`/`Device` targets (by display name) as target hosts. The user agent,
//! geolocation and `debugContext` stay in the original.

use riposte_domain::{Decoded, EntityKind, Event, Role};
use serde_json::Value;

use crate::fields::{self, Entities, get, req_str, req_time, str_at, text_at};
use crate::{DecodeError, Decoder};

pub struct Okta;

const PRODUCT: &str = "Okta";
const EVENT_HOOK: &str = "com.okta.event_hook";

fn is_log_event(r: &Value) -> bool {
    str_at(r, "eventType").is_some()
        && str_at(r, "published").is_some()
        && (get(r, "uuid").is_some() || get(r, "actor").is_some_and(Value::is_object))
}

impl Decoder for Okta {
    fn name(&self) -> &'static str {
        "okta"
    }

    fn recognises(&self, r: &Value) -> bool {
        if str_at(r, "eventType") == Some(EVENT_HOOK) {
            return get(r, "data.events").is_some_and(Value::is_array);
        }
        is_log_event(r)
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        if str_at(&record, "eventType") != Some(EVENT_HOOK) {
            return Ok(vec![log_event(record)?]);
        }
        let events = match get(&record, "data.events") {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => return Err(DecodeError::missing("data.events")),
            Some(other) => {
                return Err(DecodeError::new(
                    "data.events",
                    format!("expected an array, found {}", fields::type_name(other)),
                ));
            }
        };
        events
            .iter()
            .enumerate()
            .map(|(i, ev)| {
                fields::require_object(ev)
                    .and_then(|()| log_event(ev.clone()))
                    .map_err(|e| {
                        let field = if e.field == "$" {
                            format!("data.events[{i}]")
                        } else {
                            format!("data.events[{i}].{}", e.field)
                        };
                        DecodeError::new(field, e.reason)
                    })
            })
            .collect()
    }
}

fn log_event(record: Value) -> Result<Decoded, DecodeError> {
    let action = req_str(&record, "eventType")?.to_string();
    let (time, time_original) = req_time(&record, "published")?;
    let outcome = outcome(&record)?;
    let entities = entities(&record)?.into_vec();
    Ok(Decoded::Event(Event {
        id: String::new(),
        decoder: "okta".into(),
        product: PRODUCT.into(),
        source_id: text_at(&record, "uuid"),
        time,
        time_original,
        action,
        outcome,
        entities,
        original: record,
        origin: None,
    }))
}

fn outcome(r: &Value) -> Result<Option<String>, DecodeError> {
    const PATH: &str = "outcome.result";
    let text = match get(r, PATH) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(DecodeError::new(
                PATH,
                format!("expected a string, found {}", fields::type_name(other)),
            ));
        }
    };
    match text.trim().to_ascii_uppercase().as_str() {
        "SUCCESS" | "ALLOW" => Ok(Some("success".into())),
        "FAILURE" | "DENY" => Ok(Some("failure".into())),
        "CHALLENGE" | "SKIPPED" | "UNKNOWN" | "" => Ok(None),
        _ => Err(DecodeError::new(
            PATH,
            format!(
                "unknown result {text:?} (SUCCESS, FAILURE, SKIPPED, ALLOW, DENY, CHALLENGE, UNKNOWN)"
            ),
        )),
    }
}

/// Okta writes absent values as JSON null, and sometimes as the text `null`/`unknown`.
fn present(s: Option<&str>) -> Option<&str> {
    s.filter(|v| !v.eq_ignore_ascii_case("null") && !v.eq_ignore_ascii_case("unknown"))
}

fn entities(r: &Value) -> Result<Entities, DecodeError> {
    let mut e = Entities::new();
    if str_at(r, "actor.type") == Some("User") {
        e.add(
            EntityKind::User,
            Role::Actor,
            present(str_at(r, "actor.alternateId")),
        );
    }

    let chain: Vec<&str> = match get(r, "request.ipChain") {
        Some(Value::Array(hops)) => hops
            .iter()
            .filter_map(|h| present(str_at(h, "ip")))
            .collect(),
        _ => Vec::new(),
    };
    let client = present(str_at(r, "client.ipAddress")).or_else(|| chain.first().copied());
    e.add(EntityKind::Ip, Role::Source, client);
    for ip in chain {
        if Some(ip) != client {
            e.add(EntityKind::Ip, Role::Related, Some(ip));
        }
    }

    match get(r, "target") {
        None | Some(Value::Null) => {}
        Some(Value::Array(targets)) => {
            for t in targets {
                match str_at(t, "type") {
                    Some("User" | "AppUser") => {
                        e.add(
                            EntityKind::User,
                            Role::Target,
                            present(str_at(t, "alternateId")),
                        );
                    }
                    Some("UDDevice" | "Device") => {
                        e.add(
                            EntityKind::Host,
                            Role::Target,
                            present(str_at(t, "displayName")),
                        );
                    }
                    _ => {}
                }
            }
        }
        Some(other) => {
            return Err(DecodeError::new(
                "target",
                format!("expected an array, found {}", fields::type_name(other)),
            ));
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use serde_json::json;

    const FILE: &str = "alerts/okta/system/test-okta-system-events.log";

    /// (action, outcome, actor user, source ip, target users) for each of the 24 events, read
    /// off the file.
    #[test]
    fn corpus_events_decode_record_by_record() {
        let out = decode_file(&Okta, FILE);
        assert_eq!(out.len(), 24);
        type Row = (
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            &'static [&'static str],
        );
        let none: &[&str] = &[];
        let rows: [Row; 24] = [
            (
                "user.session.end",
                "success",
                "username@elastic.co",
                "175.16.199.1",
                none,
            ),
            (
                "user.session.start",
                "success",
                "xxxxxx@elastic.co",
                "175.16.199.1",
                none,
            ),
            (
                "policy.evaluate_sign_on",
                "success",
                "xxxxxx@elastic.co",
                "175.16.199.1",
                none,
            ),
            (
                "user.session.end",
                "success",
                "someusername@elastic.co",
                "175.16.199.1",
                none,
            ),
            (
                "user.session.start",
                "success",
                "xxxxxx@elastic.co",
                "175.16.199.1",
                none,
            ),
            (
                "policy.evaluate_sign_on",
                "success",
                "xxxxxx@elastic.co",
                "175.16.199.1",
                none,
            ),
            (
                "user.session.end",
                "success",
                "xxxxxx@elastic.co",
                "175.16.199.1",
                none,
            ),
            (
                "user.session.start",
                "success",
                "xxxxxx@elastic.co",
                "175.16.199.1",
                none,
            ),
            (
                "policy.evaluate_sign_on",
                "success",
                "xxxxxx@elastic.co",
                "175.16.199.1",
                none,
            ),
            (
                "user.session.end",
                "success",
                "xxxxxx@elastic.co",
                "175.16.199.1",
                none,
            ),
            (
                "user.session.start",
                "success",
                "xxxxxx@elastic.co",
                "175.16.199.1",
                none,
            ),
            (
                "policy.evaluate_sign_on",
                "success",
                "xxxxxx@elastic.co",
                "175.16.199.1",
                none,
            ),
            (
                "user.session.start",
                "success",
                "test@test.com",
                "81.2.69.144",
                none,
            ),
            (
                "user.authentication.verify",
                "success",
                "test1@test.com",
                "67.43.156.14",
                none,
            ),
            (
                "user.authentication.verify",
                "success",
                "snipped_user@domain.com",
                "81.2.69.144",
                none,
            ),
            (
                "user.authentication.auth_via_mfa",
                "success",
                "user@domain.com",
                "127.0.0.1",
                &["user@domain.com"],
            ),
            (
                "user.authentication.auth_via_mfa",
                "success",
                "name@domain.com",
                "127.0.0.1",
                &["name@domain.com"],
            ),
            (
                "user.authentication.auth_via_mfa",
                "success",
                "name@domain.com",
                "127.0.0.1",
                &["target_user@blah.co"],
            ),
            (
                "group.user_membership.add",
                "success",
                "actor.user@test.com",
                "192.168.7.19",
                &["target.user@test.com"],
            ),
            (
                "app.user_management",
                "success",
                "",
                "",
                &["domain.user@test.com"],
            ),
            (
                "user.authentication.sso",
                "success",
                "test.user@test.com",
                "192.168.1.10",
                &["test.user@test.com"],
            ),
            (
                "user.authentication.sso",
                "success",
                "test.user@test.com",
                "192.168.1.10",
                &["test.user@test.com"],
            ),
            (
                "user.authentication.auth_via_mfa",
                "success",
                "test.user@domain.com",
                "192.168.1.10",
                &["test.user@domain.com"],
            ),
            (
                "device.user.add",
                "success",
                "john.doe@elastic.co",
                "192.168.1.10",
                none,
            ),
        ];
        for (i, (d, (action, outcome, actor, ip, targets))) in out.iter().zip(rows).enumerate() {
            let e = event(d);
            assert_eq!(e.action, action, "record {i}");
            assert_eq!(e.outcome.as_deref(), Some(outcome), "record {i}");
            assert_eq!(e.product, "Okta");
            let want: Vec<&str> = [actor].into_iter().filter(|s| !s.is_empty()).collect();
            assert_eq!(ents(d, EntityKind::User, Role::Actor), want, "record {i}");
            let want: Vec<&str> = [ip].into_iter().filter(|s| !s.is_empty()).collect();
            assert_eq!(ents(d, EntityKind::Ip, Role::Source), want, "record {i}");
            assert_eq!(
                ents(d, EntityKind::User, Role::Target),
                targets,
                "record {i}"
            );
            assert_eq!(e.time_original, d.original()["published"].as_str().unwrap());
        }

        let first = event(&out[0]);
        assert_eq!(
            first.source_id.as_deref(),
            Some("faf7398a-4f77-11ea-97fb-5925e98228bd")
        );
        assert_eq!(first.time.to_string(), "2020-02-14T22:18:51.843Z");
        // `policy.evaluate_sign_on` says ALLOW.
        assert_eq!(out[2].original()["outcome"]["result"], "ALLOW");
        // The client address is the text "null": the request chain's first address stands in.
        assert_eq!(out[9].original()["client"]["ipAddress"], "null");
        assert_eq!(ents_any(&out[9], EntityKind::Ip), ["175.16.199.1"]);
        // No client address, but the request's chain has one.
        assert_eq!(
            ents(&out[20], EntityKind::Ip, Role::Source),
            ["192.168.1.10"]
        );
        // The client and the chain differ: the chain's address is related.
        assert_eq!(
            ents(&out[23], EntityKind::Ip, Role::Related),
            ["175.16.199.18"]
        );
        // The device target is named "John's MacBook Pro": a display name, kept as a host.
        assert_eq!(
            ents(&out[23], EntityKind::Host, Role::Target),
            ["john's macbook pro"]
        );
        assert_eq!(
            event(&out[19]).source_id.as_deref(),
            Some("23A8F6AA-0E52-45F7-A2FB-FEF6E0B38FC7")
        );
        // The Okta system principal is not a user to correlate on.
        assert!(ents(&out[19], EntityKind::User, Role::Actor).is_empty());
    }

    /// Outcomes other than the corpus's, and an event hook delivery, built from Okta's System
    /// Log (`LogEvent.outcome.result`) and event hook documentation.
    #[test]
    fn documented_outcomes_and_event_hook() {
        let event_with = |result: &str| {
            json!({
                "uuid": "u-1", "published": "2024-01-01T00:00:00.000Z",
                "eventType": "user.session.start",
                "actor": {"type": "User", "alternateId": "bob@corp.example"},
                "outcome": {"result": result, "reason": "INVALID_CREDENTIALS"},
                "client": {"ipAddress": "198.51.100.20"},
                "target": [{"type": "UDDevice", "displayName": "BOB-MBP", "alternateId": "unknown"}]
            })
        };
        for (result, want) in [
            ("FAILURE", Some("failure")),
            ("DENY", Some("failure")),
            ("CHALLENGE", None),
            ("SKIPPED", None),
            ("UNKNOWN", None),
        ] {
            let out = Okta.decode(event_with(result)).unwrap();
            assert_eq!(event(&out[0]).outcome.as_deref(), want, "{result}");
            assert_eq!(ents(&out[0], EntityKind::Host, Role::Target), ["BOB-MBP"]);
        }

        let hook = json!({
            "eventType": "com.okta.event_hook",
            "eventTypeVersion": "1.0",
            "cloudEventsVersion": "0.1",
            "source": "https://corp.okta.com/api/v1/eventHooks/who8tsqyrhCdmetzx135",
            "eventId": "b5f2a6b1-3c5d-4d7e-8f90-1a2b3c4d5e6f",
            "eventTime": "2024-01-01T00:00:01.000Z",
            "contentType": "application/json",
            "data": {"events": [event_with("SUCCESS"), event_with("FAILURE")]}
        });
        assert!(Okta.recognises(&hook));
        let out = Okta.decode(hook).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(event(&out[1]).outcome.as_deref(), Some("failure"));
        assert_eq!(out[1].original()["outcome"]["result"], "FAILURE");
    }

    #[test]
    fn recognises_okta_only() {
        for r in corpus_records(FILE, crate::InputKind::Json) {
            assert!(Okta.recognises(&r));
        }
        for f in [
            "alerts/entra/signinlogs/test-signinlogs-sample.log",
            "alerts/m365_defender/alert/test-alert.log",
            "alerts/sentinel/incident/test-incident.log",
            "alerts/suricata/eve/test-eve-small.log",
            "alerts/crowdstrike/alert/test-alert.log",
        ] {
            for r in corpus_records(f, crate::InputKind::Json) {
                assert!(!Okta.recognises(&r), "{f}");
            }
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        let good = corpus_records(FILE, crate::InputKind::Json).remove(0);

        let mut r = good.clone();
        r.as_object_mut().unwrap().remove("published");
        assert_eq!(Okta.decode(r).unwrap_err().field, "published");

        let mut r = good.clone();
        r["published"] = json!("Feb 14");
        assert_eq!(Okta.decode(r).unwrap_err().field, "published");

        let mut r = good.clone();
        r["eventType"] = json!(["user.session.end"]);
        assert_eq!(Okta.decode(r).unwrap_err().field, "eventType");

        let mut r = good.clone();
        r["outcome"]["result"] = json!("MAYBE");
        let e = Okta.decode(r).unwrap_err();
        assert_eq!(e.field, "outcome.result");
        assert!(e.reason.contains("MAYBE"));

        let mut r = good.clone();
        r["outcome"]["result"] = json!(true);
        assert_eq!(Okta.decode(r).unwrap_err().field, "outcome.result");

        let mut r = good.clone();
        r["target"] = json!({"type": "User"});
        assert_eq!(Okta.decode(r).unwrap_err().field, "target");

        let hook = json!({"eventType": "com.okta.event_hook", "data": {"events": [good, 3]}});
        assert_eq!(Okta.decode(hook).unwrap_err().field, "data.events[1]");
        let hook = json!({"eventType": "com.okta.event_hook", "data": {}});
        assert_eq!(Okta.decode(hook).unwrap_err().field, "data.events");

        assert_eq!(
            Okta.decode(json!("user.session.start")).unwrap_err().field,
            "$"
        );
    }
}
