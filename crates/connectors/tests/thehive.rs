//! TheHive 5 against a stand-in that checks requests as TheHive's v1 API documents them:
//! bearer API key, `X-Organisation`, alerts unique by type, source and sourceRef (a second
//! one answers `400 CreateError … already exist`), the query API, cases closed with a status
//! and a summary, and TheHive's error shape.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Answer, Seen, StandIn};
use riposte_connectors::thehive;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError, Templates};
use serde_json::{Value, json};

const KEY: &str = "hive-ApiK3y-0123456789";

fn secrets() -> Arc<StaticSecrets> {
    common::secrets(&[("hive_key", KEY)])
}

fn hive(url: &str) -> Arc<dyn Connector> {
    let text = format!(
        "name: hive\nkind: thehive\nbase_url: {url}\napi_key: hive_key\norganisation: SOC\npublic_url: https://riposte.corp.example\ntimeout: 5s\n"
    );
    Arc::new(thehive::load("hive.yaml", &text, secrets()).expect("loads"))
}

fn call(op: &str, params: Value, undo: Value) -> CallRequest {
    CallRequest {
        action_id: "act-4".into(),
        idempotency_key: "act-4".into(),
        operation: op.into(),
        params,
        undo,
        context: json!({
            "case": {"id": "case-0c41e2", "status": "resolved", "tier": "high", "risk": 75,
                     "verdict": "true_positive",
                     "entities": [{"type": "host", "role": "target", "value": "ws-042.corp.example"},
                                  {"type": "user", "role": "actor", "value": "CORP\\alice"},
                                  {"type": "file_hash", "role": "related", "value": "44d88612fea8a8f36de82e1278abb02f"}]},
            "alert": null,
            "playbook": {"id": "hive", "name": "Raise in TheHive", "version": 1},
            "run": {"id": "run-4"}
        }),
        timeout: Duration::from_secs(5),
    }
}

fn hive_error(status: u16, kind: &str, message: &str) -> Answer {
    Answer::json(status, json!({"type": kind, "message": message}))
}

/// A TheHive organisation "SOC" holding alerts by (type, source, sourceRef).
#[derive(Default)]
struct Hive {
    alerts: Mutex<Vec<Value>>,
    closed: AtomicUsize,
}

fn vendor(h: Arc<Hive>) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        if req.header("authorization") != Some(&format!("Bearer {KEY}")) {
            return hive_error(401, "AuthenticationError", "Authentication failure");
        }
        if req.header("x-organisation") != Some("SOC") {
            return hive_error(
                403,
                "AuthorizationError",
                "Your are not authorized to access organisation",
            );
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/api/v1/alert") => {
                assert_eq!(req.header("content-type"), Some("application/json"));
                let a = req.json();
                let key = (
                    a["type"].clone(),
                    a["source"].clone(),
                    a["sourceRef"].clone(),
                );
                let mut alerts = h.alerts.lock().expect("lock");
                if alerts.iter().any(|x| {
                    (
                        x["type"].clone(),
                        x["source"].clone(),
                        x["sourceRef"].clone(),
                    ) == key
                }) {
                    return hive_error(
                        400,
                        "CreateError",
                        &format!(
                            "Alert {}:{}:{} already exist in organisation SOC",
                            a["type"].as_str().unwrap_or_default(),
                            a["source"].as_str().unwrap_or_default(),
                            a["sourceRef"].as_str().unwrap_or_default()
                        ),
                    );
                }
                let mut out = a.clone();
                out["_id"] = json!(format!("~{}", 4096 + alerts.len()));
                out["_type"] = json!("Alert");
                out["status"] = json!("New");
                alerts.push(out.clone());
                Answer::json(201, out)
            }
            ("POST", "/api/v1/query") => {
                let q = req.json();
                assert_eq!(q["query"][0], json!({"_name": "listAlert"}));
                let filters = q["query"][1]["_and"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let want = |f: &str| {
                    filters
                        .iter()
                        .find(|x| x["_eq"]["_field"] == f)
                        .map(|x| x["_eq"]["_value"].clone())
                };
                let found: Vec<Value> = h
                    .alerts
                    .lock()
                    .expect("lock")
                    .iter()
                    .filter(|a| {
                        Some(a["type"].clone()) == want("type")
                            && Some(a["source"].clone()) == want("source")
                            && Some(a["sourceRef"].clone()) == want("sourceRef")
                    })
                    .cloned()
                    .collect();
                Answer::json(200, json!(found))
            }
            ("DELETE", p) if p.starts_with("/api/v1/alert/") => {
                let id = &p["/api/v1/alert/".len()..];
                let mut alerts = h.alerts.lock().expect("lock");
                let before = alerts.len();
                alerts.retain(|a| a["_id"] != id);
                if alerts.len() == before {
                    return hive_error(404, "NotFoundError", &format!("Alert {id} not found"));
                }
                Answer::empty(204)
            }
            ("POST", "/api/v1/case") => {
                let c = req.json();
                if !c["title"].is_string() || !c["description"].is_string() {
                    return hive_error(400, "BadRequest", "Invalid json");
                }
                let mut out = c.clone();
                out["_id"] = json!("~8256");
                out["number"] = json!(42);
                out["status"] = json!("New");
                Answer::json(201, out)
            }
            ("PATCH", "/api/v1/case/~8256") => {
                let b = req.json();
                if !b["summary"].is_string() {
                    return hive_error(400, "BadRequest", "summary is required to close a case");
                }
                h.closed.fetch_add(1, Ordering::SeqCst);
                Answer::empty(204)
            }
            ("PATCH", p) => hive_error(
                404,
                "NotFoundError",
                &format!("Case {} not found", &p["/api/v1/case/".len()..]),
            ),
            _ => hive_error(404, "NotFoundError", "no route"),
        }
    }
}

#[tokio::test]
async fn create_an_alert_then_delete_it_with_the_undo_record() {
    let h = Arc::new(Hive::default());
    let s = StandIn::start(vendor(h.clone())).await;
    let c = hive(&s.url);
    let spec = c.operation("create_alert").expect("create_alert");
    assert_eq!(spec.inverse.as_deref(), Some("delete_alert"));
    assert!(spec.idempotent);

    let out = c
        .call(&call(
            "create_alert",
            json!({"tags": ["lateral-movement"]}),
            json!(null),
        ))
        .await
        .expect("created");
    assert_eq!(out.status, Some(201));
    assert_eq!(out.undo, json!({"alert_id": "~4096"}));
    assert_eq!(out.fields["source_ref"], "case-0c41e2");
    assert_eq!(
        s.seen()[0].json(),
        json!({
            "type": "riposte",
            "source": "riposte",
            "sourceRef": "case-0c41e2",
            "title": "riposte case-0c41e2 (high, risk 75): ws-042.corp.example, CORP\\alice",
            "description": "case: case-0c41e2; tier: high; status: resolved; risk: 75/100; severity: high; playbook: Raise in TheHive; run: run-4\n\nEntities: host ws-042.corp.example (target); user CORP\\alice (actor); file_hash 44d88612fea8a8f36de82e1278abb02f (related)\n\nIn riposte: https://riposte.corp.example/api/v1/cases/case-0c41e2",
            "severity": 3,
            "tags": ["riposte", "lateral-movement"],
            "tlp": 2,
            "pap": 2,
            "observables": [
                {"dataType": "hostname", "data": "ws-042.corp.example", "tags": ["riposte:host", "role:target"]},
                {"dataType": "other", "data": "CORP\\alice", "tags": ["riposte:user", "role:actor"]},
                {"dataType": "hash", "data": "44d88612fea8a8f36de82e1278abb02f", "tags": ["riposte:file_hash", "role:related"]}
            ],
            "externalLink": "https://riposte.corp.example/api/v1/cases/case-0c41e2"
        })
    );

    let undone = c
        .call(&call("delete_alert", json!({}), out.undo.clone()))
        .await
        .expect("deleted");
    assert_eq!(undone.status, Some(204));
    assert!(h.alerts.lock().expect("lock").is_empty());
    // Deleting again: TheHive says 404, which means the alert is gone.
    let again = c
        .call(&call("delete_alert", json!({}), out.undo))
        .await
        .expect("already gone");
    assert_eq!(again.fields["already_gone"], true);
    let lines: Vec<String> = s
        .seen()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        lines,
        [
            "POST /api/v1/alert",
            "DELETE /api/v1/alert/~4096",
            "DELETE /api/v1/alert/~4096"
        ]
    );
}

#[tokio::test]
async fn a_retry_that_finds_the_alert_already_there_returns_it() {
    let h = Arc::new(Hive::default());
    let s = StandIn::start(vendor(h.clone())).await;
    let c = hive(&s.url);
    let first = c
        .call(&call("create_alert", json!({}), json!(null)))
        .await
        .expect("created");
    let second = c
        .call(&call("create_alert", json!({}), json!(null)))
        .await
        .expect("found");
    assert_eq!(second.undo, first.undo);
    assert_eq!(h.alerts.lock().expect("lock").len(), 1);
    let seen = s.seen();
    assert_eq!(seen[2].path, "/api/v1/query");
    assert_eq!(
        seen[2].json(),
        json!({"query": [
            {"_name": "listAlert"},
            {"_name": "filter", "_and": [
                {"_eq": {"_field": "type", "_value": "riposte"}},
                {"_eq": {"_field": "source", "_value": "riposte"}},
                {"_eq": {"_field": "sourceRef", "_value": "case-0c41e2"}}
            ]}
        ]})
    );
    // The check after a restart asks the same question.
    let req = call("create_alert", json!({}), json!(null));
    let done = c
        .check(&req)
        .expect("a check")
        .await
        .expect("asked")
        .expect("there");
    assert_eq!(done.undo, first.undo);
    let none = c
        .check(&call(
            "create_alert",
            json!({"source_ref": "other"}),
            json!(null),
        ))
        .expect("a check")
        .await
        .expect("asked");
    assert_eq!(none, None);
}

#[tokio::test]
async fn create_a_case_then_close_it_with_the_verdict_and_a_summary() {
    let h = Arc::new(Hive::default());
    let s = StandIn::start(vendor(h.clone())).await;
    let c = hive(&s.url);
    assert!(!c.operation("create_case").expect("create_case").idempotent);
    let out = c
        .call(&call(
            "create_case",
            json!({"summary": "Credential theft on ws-042", "severity": "critical"}),
            json!(null),
        ))
        .await
        .expect("created");
    assert_eq!(out.undo, json!({"case_id": "~8256", "number": 42}));
    let body = s.seen()[0].json();
    assert_eq!(body["title"], "Credential theft on ws-042");
    assert_eq!(body["severity"], 4);
    assert_eq!(body["tags"], json!(["riposte"]));
    assert!(body.get("observables").is_none());

    c.call(&call("close_case", json!({}), out.undo))
        .await
        .expect("closed");
    assert_eq!(
        s.seen()[1].json(),
        json!({"status": "TruePositive", "impactStatus": "NotApplicable",
               "summary": "Closed by riposte: the action that opened this case was undone; case case-0c41e2."})
    );
    c.call(&call("close_case", json!({"case_id": "~8256", "status": "FalsePositive", "impact_status": "NoImpact", "summary": "Scanner"}), json!(null)))
        .await
        .expect("closed");
    assert_eq!(
        s.seen()[2].json(),
        json!({"status": "FalsePositive", "impactStatus": "NoImpact", "summary": "Scanner"})
    );
    assert_eq!(h.closed.load(Ordering::SeqCst), 2);
    let e = c
        .call(&call(
            "close_case",
            json!({"case_id": "~8256", "status": "Resolved"}),
            json!(null),
        ))
        .await
        .expect_err("not a closed status");
    assert!(e.to_string().contains("TruePositive"), "{e}");
}

#[tokio::test]
async fn thehive_errors_are_read_and_classified_without_the_key() {
    let h = Arc::new(Hive::default());
    let s = StandIn::start(vendor(h)).await;
    let c = hive(&s.url);
    let mut errors = Vec::new();
    let e = c
        .call(&call("close_case", json!({"case_id": "~1"}), json!(null)))
        .await
        .expect_err("404");
    assert_eq!(
        e.to_string(),
        "hive: PATCH /api/v1/case/~1 answered 404: TheHive says: NotFoundError: Case ~1 not found"
    );
    errors.push(e);
    let text = format!(
        "name: hive\nkind: thehive\nbase_url: {}\napi_key: nope\n",
        s.url
    );
    let e = thehive::load("h.yaml", &text, secrets())
        .expect("loads")
        .call(&call("create_alert", json!({}), json!(null)))
        .await
        .expect_err("no such secret");
    assert!(matches!(e, ConnectorError::Secret { .. }), "{e:?}");
    let lone = common::secrets(&[("nope", "wrong-key")]);
    let e = thehive::load("h.yaml", &text, lone)
        .expect("loads")
        .call(&call("create_alert", json!({}), json!(null)))
        .await
        .expect_err("401");
    assert!(
        matches!(
            e,
            ConnectorError::Rejected {
                status: Some(401),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("AuthenticationError"), "{e}");
    assert!(!e.to_string().contains("wrong-key"), "{e}");
    errors.push(e);
    let e = c
        .call(&call(
            "delete_alert",
            json!({"alert_id": "~1/../../case"}),
            json!(null),
        ))
        .await
        .expect_err("not an id");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");

    let busy = StandIn::start(|req, _| match req.method.as_str() {
        "POST" => hive_error(429, "TooManyRequests", "slow down").with_header("Retry-After", "9"),
        _ => Answer::text(500, "text/plain", "Internal server error"),
    })
    .await;
    let c = hive(&busy.url);
    let e = c
        .call(&call("create_alert", json!({}), json!(null)))
        .await
        .expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(9)
        }
    );
    let e = c
        .call(&call(
            "delete_alert",
            json!({"alert_id": "~4096"}),
            json!(null),
        ))
        .await
        .expect_err("500");
    assert!(e.retryable(), "{e:?}");
    errors.push(e);
    for e in &errors {
        let m = format!("{e} {e:?}");
        assert!(!m.contains(KEY), "the API key leaked: {m}");
    }
}

#[test]
fn bad_definitions_name_the_field() {
    let load = |t: &str| thehive::load("h.yaml", t, secrets()).expect_err(t);
    let base = "name: hive\nkind: thehive\nbase_url: https://thehive.corp.example\napi_key: k\n";
    let e = load(&format!("{base}tlp: 5\n"));
    assert_eq!(e.line, 5, "{e}");
    assert!(e.to_string().contains("tlp"), "{e}");
    let e = load(&format!("{base}source: \"\"\n"));
    assert!(e.to_string().contains("`source` is empty"), "{e}");
    let e = load("name: hive\nkind: thehive\nbase_url: https://h\n");
    assert!(e.to_string().contains("api_key"), "{e}");
}

#[test]
fn the_documented_example_loads() {
    let path = "../../docs/playbooks/config/connectors/thehive.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(Templates::default()),
        Arc::new(StaticSecrets::default()),
    )
    .expect(path);
    assert!(c.operation("create_alert").is_some());
    assert!(c.operation("close_case").is_some());
}
