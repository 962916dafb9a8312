//! PagerDuty Events API v2 against a stand-in that checks events as PagerDuty documents
//! them: `POST /v2/enqueue`, the routing key in the body, trigger and resolve by the same
//! dedup key, `202 {"status": "success"}`, and its error shapes; the routing key never
//! appears in an error.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Answer, Seen, StandIn};
use riposte_connectors::pagerduty;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError, Templates};
use serde_json::{Value, json};

/// 32 characters, as PagerDuty's integration keys are.
const ROUTING_KEY: &str = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey32";

fn pd(url: &str, key: &str) -> Arc<dyn Connector> {
    let text = format!(
        "name: pd\nkind: pagerduty\nrouting_key: pd_key\nbase_url: {url}\npublic_url: https://riposte.corp.example\ntimeout: 5s\n"
    );
    Arc::new(pagerduty::load("pd.yaml", &text, common::secrets(&[("pd_key", key)])).expect("loads"))
}

fn call(op: &str, params: Value, undo: Value) -> CallRequest {
    CallRequest {
        action_id: "act-9".into(),
        idempotency_key: "act-9".into(),
        operation: op.into(),
        params,
        undo,
        context: json!({
            "case": {"id": "case-0c41e2", "status": "open", "tier": "validated", "risk": 95,
                     "entities": [{"type": "user", "role": "actor", "value": "CORP\\alice"},
                                  {"type": "host", "role": "target", "value": "ws-042.corp.example"}]},
            "alert": null,
            "playbook": {"id": "page", "name": "Page on-call", "version": 1},
            "run": {"id": "run-3"}
        }),
        timeout: Duration::from_secs(5),
    }
}

/// Answers like the Events API, and refuses events not shaped as documented.
fn vendor(req: &Seen, _n: usize) -> Answer {
    if (req.method.as_str(), req.path.as_str()) != ("POST", "/v2/enqueue") {
        return Answer::text(404, "text/plain", "Not Found");
    }
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), None, "no auth header");
    let ev = req.json();
    if ev["routing_key"] != ROUTING_KEY {
        return Answer::json(
            400,
            json!({"status": "invalid event", "message": "Event object is invalid",
                   "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"]}),
        );
    }
    let action = ev["event_action"].as_str().unwrap_or_default();
    let ok = match action {
        "trigger" => ["summary", "source", "severity"]
            .iter()
            .all(|f| ev["payload"][f].is_string()),
        "resolve" => ev.get("payload").is_none(),
        _ => false,
    };
    if !ok || !ev["dedup_key"].is_string() {
        return Answer::json(
            400,
            json!({"status": "invalid event", "message": "Event object is invalid",
                   "errors": ["'payload' is missing or incorrect"]}),
        );
    }
    Answer::json(
        202,
        json!({"status": "success", "message": "Event processed", "dedup_key": ev["dedup_key"]}),
    )
}

#[tokio::test]
async fn trigger_then_resolve_with_the_stored_dedup_key() {
    let s = StandIn::start(vendor).await;
    let c = pd(&s.url, ROUTING_KEY);
    let spec = c.operation("trigger").expect("trigger");
    assert_eq!(spec.inverse.as_deref(), Some("resolve"));
    assert!(spec.idempotent);

    let out = c
        .call(&call("trigger", json!({}), json!(null)))
        .await
        .expect("triggered");
    assert_eq!(out.status, Some(202));
    assert_eq!(out.undo, json!({"dedup_key": "riposte-case-0c41e2"}));
    let undone = c
        .call(&call("resolve", json!({}), out.undo))
        .await
        .expect("resolved");
    assert_eq!(undone.fields["dedup_key"], "riposte-case-0c41e2");

    let seen = s.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].json(),
        json!({
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "dedup_key": "riposte-case-0c41e2",
            "payload": {
                "summary": "riposte case-0c41e2 (validated, risk 95): CORP\\alice, ws-042.corp.example",
                "source": "ws-042.corp.example",
                "severity": "critical",
                "component": "riposte",
                "class": "validated",
                "custom_details": {
                    "case": "case-0c41e2", "tier": "validated", "status": "open", "risk": "95/100",
                    "severity": "critical", "playbook": "Page on-call", "run": "run-3",
                    "entities": ["user CORP\\alice", "host ws-042.corp.example"],
                    "description": "case: case-0c41e2; tier: validated; status: open; risk: 95/100; severity: critical; playbook: Page on-call; run: run-3\n\nEntities: user CORP\\alice (actor); host ws-042.corp.example (target)"
                }
            },
            "client": "riposte",
            "client_url": "https://riposte.corp.example",
            "links": [{"href": "https://riposte.corp.example/api/v1/cases/case-0c41e2", "text": "riposte case case-0c41e2"}]
        })
    );
    assert_eq!(
        seen[1].json(),
        json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "riposte-case-0c41e2"})
    );
}

#[tokio::test]
async fn parameters_choose_severity_source_and_dedup_key() {
    let s = StandIn::start(vendor).await;
    let c = pd(&s.url, ROUTING_KEY);
    c.call(&call(
        "trigger",
        json!({"summary": "Decoy touched", "severity": "medium", "source": "dc-01", "dedup_key": "mine"}),
        json!(null),
    ))
    .await
    .expect("triggered");
    let ev = s.seen()[0].json();
    assert_eq!(ev["dedup_key"], "mine");
    assert_eq!(ev["payload"]["summary"], "Decoy touched");
    assert_eq!(ev["payload"]["severity"], "warning");
    assert_eq!(ev["payload"]["source"], "dc-01");
}

#[tokio::test]
async fn a_wrong_routing_key_is_refused_without_showing_it() {
    let s = StandIn::start(vendor).await;
    let wrong = "WrongKeyWrongKeyWrongKey";
    let c = pd(&s.url, wrong);
    let e = c
        .call(&call("trigger", json!({}), json!(null)))
        .await
        .expect_err("400");
    assert!(
        matches!(
            e,
            ConnectorError::Rejected {
                status: Some(400),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "pd: POST /v2/enqueue answered 400: PagerDuty says: Event object is invalid: Length of 'routing_key' is incorrect (should be 32 characters)"
    );
    assert!(!format!("{e} {e:?}").contains(wrong));
}

#[tokio::test]
async fn rate_limits_outages_and_echoes_never_carry_the_key() {
    let s = StandIn::start(|req, _| {
        let ev: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
        match ev["dedup_key"].as_str() {
            Some("rate") => Answer::text(429, "text/plain", "Too Many Requests")
                .with_header("Retry-After", "30"),
            Some("down") => Answer::text(502, "text/html", "<html>Bad Gateway</html>"),
            // A vendor that quotes the event back in its error must not leak the key.
            Some("echo") => Answer::json(
                400,
                json!({"status": "invalid event", "message": format!("bad event for {}", ev["routing_key"])}),
            ),
            _ => Answer::json(404, json!({"status": "not found", "message": "Not Found"})),
        }
    })
    .await;
    let c = pd(&s.url, ROUTING_KEY);
    let e = c
        .call(&call("trigger", json!({"dedup_key": "rate"}), json!(null)))
        .await
        .expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(30)
        }
    );
    let e = c
        .call(&call("trigger", json!({"dedup_key": "down"}), json!(null)))
        .await
        .expect_err("502");
    assert!(e.retryable(), "{e:?}");
    let e = c
        .call(&call("resolve", json!({"dedup_key": "nope"}), json!(null)))
        .await
        .expect_err("404");
    assert!(
        matches!(
            e,
            ConnectorError::Rejected {
                status: Some(404),
                ..
            }
        ),
        "{e:?}"
    );
    let e = c
        .call(&call("trigger", json!({"dedup_key": "echo"}), json!(null)))
        .await
        .expect_err("echo");
    let m = format!("{e} {e:?}");
    assert!(m.contains("bad event for \"***\""), "{m}");
    assert!(!m.contains(ROUTING_KEY), "the routing key leaked: {m}");
}

#[test]
fn bad_definitions_name_the_field() {
    let load = |t: &str| pagerduty::load("pd.yaml", t, Arc::new(StaticSecrets::default()));
    let e = load("name: pd\nkind: pagerduty\n").expect_err("no key");
    assert!(e.to_string().contains("routing_key"), "{e}");
    let e = load("name: pd\nkind: pagerduty\nrouting_key: k\nbase_url: events.pagerduty.com\n")
        .expect_err("bad url");
    assert_eq!(e.line, 4, "{e}");
    let e = load("name: pd\nkind: pagerduty\nrouting_key: k\nservice: x\n").expect_err("unknown");
    assert!(e.to_string().contains("service"), "{e}");
}

#[test]
fn the_documented_example_loads() {
    let path = "../../docs/playbooks/config/connectors/pagerduty.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(Templates::default()),
        Arc::new(StaticSecrets::default()),
    )
    .expect(path);
    assert!(c.operation("trigger").is_some());
}
