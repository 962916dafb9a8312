//! ServiceNow against a stand-in that checks requests as the Table API documents them:
//! Basic auth or an OAuth2 token from `/oauth_token.do`, the incident's fields, resolving with
//! `state: 6`, `close_code` and `close_notes`, the look-up by correlation id after a
//! restart, and ServiceNow's error shape.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Answer, Seen, StandIn};
use riposte_connectors::servicenow;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError, Templates};
use serde_json::{Value, json};

const PASSWORD: &str = "Sn0wP4ss!word";
/// base64("svc_riposte:Sn0wP4ss!word")
const BASIC: &str = "Basic c3ZjX3JpcG9zdGU6U24wd1A0c3Mhd29yZA==";
const SYS_ID: &str = "9d385017c611228701d22104cc95c371";
const CALLER: &str = "6816f79cc0a8016401c5a33be04be441";
const GROUP: &str = "287ebd7da9fe198100f92cc8d1d2154e";

fn secrets() -> Arc<StaticSecrets> {
    common::secrets(&[
        ("snow_password", PASSWORD),
        ("snow_client", "cl13nt-s3cret"),
    ])
}

fn snow(url: &str) -> Arc<dyn Connector> {
    let text = format!(
        "name: snow\nkind: servicenow\nbase_url: {url}\nusername: svc_riposte\npassword: snow_password\ncaller_id: {CALLER}\nassignment_group: {GROUP}\nfields: {{category: network, contact_type: integration}}\npublic_url: https://riposte.corp.example\ntimeout: 5s\n"
    );
    Arc::new(servicenow::load("snow.yaml", &text, secrets()).expect("loads"))
}

fn call(op: &str, params: Value, undo: Value) -> CallRequest {
    CallRequest {
        action_id: "act-3f2a".into(),
        idempotency_key: "act-3f2a".into(),
        operation: op.into(),
        params,
        undo,
        context: json!({
            "case": {"id": "case-0c41e2", "status": "open", "tier": "medium", "risk": 45,
                     "entities": [{"type": "ip", "role": "source", "value": "10.20.30.40"}]},
            "alert": null,
            "playbook": {"id": "snow-ticket", "name": "Open an incident", "version": 1},
            "run": {"id": "run-2"}
        }),
        timeout: Duration::from_secs(5),
    }
}

fn snow_error(status: u16, message: &str, detail: &str) -> Answer {
    Answer::json(
        status,
        json!({"error": {"message": message, "detail": detail}, "status": "failure"}),
    )
}

/// Answers like the Table API for one incident, INC0010042.
fn vendor(opened: Arc<AtomicUsize>) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        if req.header("authorization") != Some(BASIC) {
            return snow_error(
                401,
                "User Not Authenticated",
                "Required to provide Auth information",
            );
        }
        if req.header("accept") != Some("application/json") {
            return snow_error(
                406,
                "Not Acceptable",
                "the Accept header names no format the Table API writes",
            );
        }
        let path = req.path.as_str();
        match (req.method.as_str(), path) {
            ("POST", "/api/now/table/incident") => {
                assert_eq!(req.header("content-type"), Some("application/json"));
                assert_eq!(
                    req.query_pairs().get("sysparm_fields").map(String::as_str),
                    Some("sys_id,number")
                );
                opened.store(1, Ordering::SeqCst);
                Answer::json(
                    201,
                    json!({"result": {"sys_id": SYS_ID, "number": "INC0010042"}}),
                )
            }
            ("GET", "/api/now/table/incident") => {
                let q = req.query_pairs();
                assert_eq!(q.get("sysparm_limit").map(String::as_str), Some("1"));
                let hit = match q.get("sysparm_query").map(String::as_str) {
                    Some("correlation_id=act-3f2a") => opened.load(Ordering::SeqCst) == 1,
                    Some("number=INC0010042") => true,
                    _ => false,
                };
                let result = if hit {
                    json!([{"sys_id": SYS_ID, "number": "INC0010042"}])
                } else {
                    json!([])
                };
                Answer::json(200, json!({"result": result}))
            }
            ("PATCH", p) if p == format!("/api/now/table/incident/{SYS_ID}") => {
                let b = req.json();
                if b["state"] != "6"
                    || !b["close_code"].is_string()
                    || !b["close_notes"].is_string()
                {
                    return snow_error(
                        403,
                        "Operation Failed",
                        "Data Policy Exception: The following fields are mandatory: Resolution code, Resolution notes",
                    );
                }
                Answer::json(
                    200,
                    json!({"result": {"sys_id": SYS_ID, "number": "INC0010042", "state": "6"}}),
                )
            }
            ("PATCH", _) => snow_error(
                404,
                "No Record found",
                "Record doesn't exist or ACL restricts the record retrieval",
            ),
            _ => snow_error(400, "Requested URI does not represent any resource", ""),
        }
    }
}

#[tokio::test]
async fn open_an_incident_then_resolve_it_with_the_undo_record() {
    let opened = Arc::new(AtomicUsize::new(0));
    let s = StandIn::start(vendor(opened.clone())).await;
    let c = snow(&s.url);
    let spec = c.operation("open_incident").expect("open_incident");
    assert_eq!(spec.inverse.as_deref(), Some("resolve_incident"));
    assert!(!spec.idempotent);
    assert!(c.operation("resolve_incident").expect("resolve").idempotent);

    let out = c
        .call(&call("open_incident", json!({}), json!(null)))
        .await
        .expect("opened");
    assert_eq!(out.status, Some(201));
    assert_eq!(out.undo, json!({"sys_id": SYS_ID, "number": "INC0010042"}));
    let seen = s.seen();
    assert_eq!(
        seen[0].json(),
        json!({
            "category": "network",
            "contact_type": "integration",
            "short_description": "riposte case-0c41e2 (medium, risk 45)",
            "description": "case: case-0c41e2; tier: medium; status: open; risk: 45/100; severity: medium; playbook: Open an incident; run: run-2\n\nEntities: ip 10.20.30.40 (source)\n\nIn riposte: https://riposte.corp.example/api/v1/cases/case-0c41e2",
            "urgency": "2",
            "impact": "2",
            "caller_id": CALLER,
            "assignment_group": GROUP,
            "correlation_id": "act-3f2a",
            "correlation_display": "riposte"
        })
    );

    let undone = c
        .call(&call("resolve_incident", json!({}), out.undo))
        .await
        .expect("resolved");
    assert_eq!(undone.fields["number"], "INC0010042");
    let seen = s.seen();
    assert_eq!(seen.len(), 2, "no look-up: the undo record has the sys_id");
    assert_eq!(seen[1].method, "PATCH");
    assert_eq!(seen[1].path, format!("/api/now/table/incident/{SYS_ID}"));
    assert_eq!(
        seen[1].json(),
        json!({
            "state": "6",
            "close_code": "Solution provided",
            "close_notes": "Resolved by riposte: the action that opened this incident was undone; case case-0c41e2; playbook snow-ticket."
        })
    );
}

#[tokio::test]
async fn resolve_by_number_and_severity_maps_to_urgency_and_impact() {
    let s = StandIn::start(vendor(Arc::new(AtomicUsize::new(0)))).await;
    let c = snow(&s.url);
    c.call(&call(
        "resolve_incident",
        json!({"number": "INC0010042", "close_notes": "False positive: scanner."}),
        json!(null),
    ))
    .await
    .expect("resolved");
    let seen = s.seen();
    assert_eq!(
        seen[0]
            .query_pairs()
            .get("sysparm_query")
            .map(String::as_str),
        Some("number=INC0010042")
    );
    assert_eq!(seen[1].json()["close_notes"], "False positive: scanner.");

    for (sev, urgency, impact) in [
        ("critical", "1", "1"),
        ("high", "2", "1"),
        ("low", "3", "2"),
        ("info", "3", "3"),
    ] {
        c.call(&call(
            "open_incident",
            json!({"severity": sev}),
            json!(null),
        ))
        .await
        .expect("opened");
        let body = s.seen().last().expect("seen").json();
        assert_eq!(
            (body["urgency"].as_str(), body["impact"].as_str()),
            (Some(urgency), Some(impact)),
            "{sev}"
        );
    }
}

#[tokio::test]
async fn the_check_finds_an_incident_by_its_correlation_id() {
    let opened = Arc::new(AtomicUsize::new(0));
    let s = StandIn::start(vendor(opened.clone())).await;
    let c = snow(&s.url);
    let req = call("open_incident", json!({}), json!(null));
    assert_eq!(c.check(&req).expect("a check").await.expect("asked"), None);
    opened.store(1, Ordering::SeqCst);
    let done = c
        .check(&req)
        .expect("a check")
        .await
        .expect("asked")
        .expect("found");
    assert_eq!(done.undo, json!({"sys_id": SYS_ID, "number": "INC0010042"}));
    assert!(s.seen().iter().all(|r| r.method == "GET"), "reads only");
    assert!(
        c.check(&call("resolve_incident", json!({}), json!(null)))
            .is_none()
    );
}

#[tokio::test]
async fn servicenow_errors_are_read_and_classified_without_the_password() {
    let s = StandIn::start(vendor(Arc::new(AtomicUsize::new(0)))).await;
    let c = snow(&s.url);
    let mut errors = Vec::new();
    let e = c
        .call(&call(
            "resolve_incident",
            json!({"sys_id": "0123456789abcdef0123456789abcdef"}),
            json!(null),
        ))
        .await
        .expect_err("404");
    assert_eq!(
        e.to_string(),
        "snow: PATCH /api/now/table/incident/0123456789abcdef0123456789abcdef answered 404: ServiceNow says: No Record found (Record doesn't exist or ACL restricts the record retrieval)"
    );
    assert!(!e.retryable());
    errors.push(e);
    let e = c
        .call(&call(
            "resolve_incident",
            json!({"number": "INC9999999"}),
            json!(null),
        ))
        .await
        .expect_err("unknown number");
    assert!(
        e.to_string()
            .contains("no incident is numbered `INC9999999`"),
        "{e}"
    );
    let e = c
        .call(&call(
            "resolve_incident",
            json!({"sys_id": "../../sys_user"}),
            json!(null),
        ))
        .await
        .expect_err("not a sys_id");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");

    let text = format!(
        "name: snow\nkind: servicenow\nbase_url: {}\nusername: someone\npassword: snow_password\n",
        s.url
    );
    let wrong = servicenow::load("snow.yaml", &text, secrets()).expect("loads");
    let e = wrong
        .call(&call("open_incident", json!({}), json!(null)))
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
    assert!(e.to_string().contains("User Not Authenticated"), "{e}");
    errors.push(e);

    let busy = StandIn::start(|req, _| match req.method.as_str() {
        "POST" => snow_error(429, "Rate limit exceeded", "").with_header("Retry-After", "4"),
        _ => Answer::text(503, "text/html", "<html>Instance hibernating</html>"),
    })
    .await;
    let c = snow(&busy.url);
    let e = c
        .call(&call("open_incident", json!({}), json!(null)))
        .await
        .expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(4)
        }
    );
    let e = c
        .call(&call(
            "resolve_incident",
            json!({"sys_id": SYS_ID}),
            json!(null),
        ))
        .await
        .expect_err("503");
    assert!(e.retryable(), "{e:?}");
    errors.push(e);

    for e in &errors {
        let m = format!("{e} {e:?}");
        assert!(!m.contains(PASSWORD), "the password leaked: {m}");
        assert!(!m.contains(&BASIC[6..]), "the credentials leaked: {m}");
    }
}

#[tokio::test]
async fn oauth_client_credentials_come_from_oauth_token_do() {
    let s = StandIn::start(|req, _| {
        if req.path == "/oauth_token.do" {
            let f = req.form();
            let ok = f.get("grant_type").map(String::as_str) == Some("client_credentials")
                && f.get("client_id").map(String::as_str) == Some("riposte-client")
                && f.get("client_secret").map(String::as_str) == Some("cl13nt-s3cret");
            return if ok {
                Answer::json(200, json!({"access_token": "snow-tok", "token_type": "Bearer", "expires_in": 1799, "scope": "useraccount"}))
            } else {
                Answer::json(401, json!({"error_description": "access_denied", "error": "server_error"}))
            };
        }
        if req.header("authorization") != Some("Bearer snow-tok") {
            return snow_error(401, "User Not Authenticated", "Required to provide Auth information");
        }
        Answer::json(201, json!({"result": {"sys_id": SYS_ID, "number": "INC0010043"}}))
    })
    .await;
    let text = format!(
        "name: snow\nkind: servicenow\nbase_url: {}\nclient_id: riposte-client\nclient_secret: snow_client\n",
        s.url
    );
    let c = servicenow::load("snow.yaml", &text, secrets()).expect("loads");
    let out = c
        .call(&call("open_incident", json!({}), json!(null)))
        .await
        .expect("opened");
    assert_eq!(out.fields["number"], "INC0010043");
    let paths: Vec<String> = s.seen().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/oauth_token.do", "/api/now/table/incident"]);
}

#[test]
fn bad_definitions_name_the_field() {
    let load = |t: &str| servicenow::load("s.yaml", t, secrets()).expect_err(t);
    let base = "name: snow\nkind: servicenow\nbase_url: https://corp.service-now.com\n";
    let e = load(&format!("{base}username: u\n"));
    assert!(e.to_string().contains("`password`"), "{e}");
    let e = load(&format!(
        "{base}username: u\npassword: p\nclient_id: c\nclient_secret: s\n"
    ));
    assert!(e.to_string().contains("not both"), "{e}");
    let e = load(&format!(
        "{base}username: u\npassword: p\ncaller_id: alice\n"
    ));
    assert_eq!(e.line, 6, "{e}");
    assert!(e.to_string().contains("sys_id"), "{e}");
    let e = load(&format!(
        "{base}username: u\npassword: p\nfields: {{\"Bad Column\": x}}\n"
    ));
    assert!(e.to_string().contains("Bad Column"), "{e}");
}

#[test]
fn the_documented_example_loads() {
    let path = "../../docs/playbooks/config/connectors/servicenow.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(Templates::default()),
        Arc::new(StaticSecrets::default()),
    )
    .expect(path);
    assert!(c.operation("open_incident").is_some());
}
