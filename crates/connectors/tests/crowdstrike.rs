//! CrowdStrike Falcon against a stand-in that checks requests as Falcon's API documents
//! them: OAuth2 token, host look-up by hostname, contain / lift_containment, the check after
//! a restart, and Falcon's error shapes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Answer, Seen, StandIn};
use riposte_connectors::crowdstrike;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError};
use serde_json::json;

const AID: &str = "4c1f7e2a9b8d4e6f8a0b1c2d3e4f5a6b";

fn falcon(url: &str) -> Arc<dyn Connector> {
    let text = format!(
        "name: falcon\nkind: crowdstrike\nbase_url: {url}\nclient_id: client-1\nclient_secret: falcon_secret\ntimeout: 5s\n"
    );
    Arc::new(
        crowdstrike::load(
            "falcon.yaml",
            &text,
            common::secrets(&[("falcon_secret", "falcon-s3cr3t")]),
        )
        .expect("loads"),
    )
}

fn call(op: &str, params: serde_json::Value, undo: serde_json::Value) -> CallRequest {
    CallRequest {
        action_id: "act-1".into(),
        idempotency_key: "key-1".into(),
        operation: op.into(),
        params,
        undo,
        context: json!({}),
        timeout: Duration::from_secs(5),
    }
}

/// Answers like Falcon, and refuses anything not shaped as documented.
fn vendor(
    tokens: Arc<AtomicUsize>,
    contained: Arc<AtomicUsize>,
) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        let meta = json!({"query_time": 0.01, "powered_by": "device-api", "trace_id": "t-1"});
        if req.path == "/oauth2/token" {
            assert_eq!(req.method, "POST");
            let form = req.form();
            if form.get("client_id").map(String::as_str) != Some("client-1")
                || form.get("client_secret").map(String::as_str) != Some("falcon-s3cr3t")
            {
                return Answer::json(
                    403,
                    json!({"meta": meta, "errors": [{"code": 403, "message": "access denied, authorization failed"}]}),
                );
            }
            tokens.fetch_add(1, Ordering::SeqCst);
            return Answer::json(
                201,
                json!({"access_token": "tok-a", "token_type": "bearer", "expires_in": 1799}),
            );
        }
        if req.header("authorization") != Some("Bearer tok-a") {
            return Answer::json(
                401,
                json!({"meta": meta, "errors": [{"code": 401, "message": "access denied, invalid bearer token"}]}),
            );
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/devices/queries/devices/v1") => {
                let filter = req.query_pairs().get("filter").cloned().unwrap_or_default();
                let resources = match filter.as_str() {
                    "hostname:'WS-FIN-042'" => json!([AID]),
                    "hostname:'TWIN'" => json!(["a1", "a2"]),
                    _ => json!([]),
                };
                Answer::json(
                    200,
                    json!({"meta": meta, "resources": resources, "errors": []}),
                )
            }
            ("POST", "/devices/entities/devices-actions/v2") => {
                assert_eq!(req.header("content-type"), Some("application/json"));
                let action = req
                    .query_pairs()
                    .get("action_name")
                    .cloned()
                    .unwrap_or_default();
                let ids = req.json()["ids"].clone();
                if ids != json!([AID]) {
                    return Answer::json(
                        404,
                        json!({"meta": meta, "resources": [], "errors": [{"code": 404, "message": "Device not found"}]}),
                    );
                }
                match action.as_str() {
                    "contain" => contained.store(1, Ordering::SeqCst),
                    "lift_containment" => contained.store(0, Ordering::SeqCst),
                    _ => {
                        return Answer::json(
                            400,
                            json!({"meta": meta, "errors": [{"code": 400, "message": "invalid action_name"}]}),
                        );
                    }
                }
                Answer::json(
                    202,
                    json!({"meta": meta, "resources": [{"id": AID, "path": ""}], "errors": []}),
                )
            }
            ("GET", "/devices/entities/devices/v2") => {
                let status = if contained.load(Ordering::SeqCst) == 1 {
                    "contained"
                } else {
                    "normal"
                };
                Answer::json(
                    200,
                    json!({"meta": meta, "resources": [{"device_id": AID, "hostname": "WS-FIN-042", "status": status}], "errors": []}),
                )
            }
            _ => Answer::json(
                404,
                json!({"meta": meta, "errors": [{"code": 404, "message": "no route"}]}),
            ),
        }
    }
}

#[tokio::test]
async fn contain_by_hostname_then_lift_with_the_undo_record() {
    let (tokens, contained) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let s = StandIn::start(vendor(tokens.clone(), contained.clone())).await;
    let c = falcon(&s.url);
    let spec = c.operation("contain_host").expect("contain_host");
    assert_eq!(spec.inverse.as_deref(), Some("lift_containment"));
    assert!(spec.idempotent);

    let out = c
        .call(&call(
            "contain_host",
            json!({"host": "WS-FIN-042"}),
            json!(null),
        ))
        .await
        .expect("contained");
    assert_eq!(out.undo, json!({"device_id": AID}));
    assert_eq!(out.status, Some(202));
    assert_eq!(contained.load(Ordering::SeqCst), 1);

    let undo = c
        .call(&call(
            "lift_containment",
            json!({"host": "WS-FIN-042"}),
            out.undo,
        ))
        .await
        .expect("lifted");
    assert_eq!(undo.fields["device_id"], AID);
    assert_eq!(contained.load(Ordering::SeqCst), 0);

    let seen = s.seen();
    let lines: Vec<String> = seen
        .iter()
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert_eq!(
        lines,
        [
            "POST /oauth2/token?",
            "GET /devices/queries/devices/v1?filter=hostname%3A%27WS-FIN-042%27",
            "POST /devices/entities/devices-actions/v2?action_name=contain",
            // The inverse acts on the stored device id: no second look-up, no second token.
            "POST /devices/entities/devices-actions/v2?action_name=lift_containment",
        ]
    );
    assert_eq!(seen[2].json(), json!({"ids": [AID]}));
    assert_eq!(tokens.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_check_says_whether_a_containment_took_effect() {
    let (tokens, contained) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let s = StandIn::start(vendor(tokens, contained.clone())).await;
    let c = falcon(&s.url);
    let req = call("contain_host", json!({"device_id": AID}), json!(null));
    let check = c.check(&req).expect("falcon offers a check");
    assert_eq!(check.await.expect("asked"), None);
    contained.store(1, Ordering::SeqCst);
    let done = c
        .check(&req)
        .expect("check")
        .await
        .expect("asked")
        .expect("done");
    assert_eq!(done.undo, json!({"device_id": AID}));
    // Reads only: nothing was contained by asking.
    assert!(
        s.seen()
            .iter()
            .all(|r| r.method == "GET" || r.path == "/oauth2/token")
    );
}

#[tokio::test]
async fn unknown_ambiguous_and_missing_hosts_are_clear_failures() {
    let (tokens, contained) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let s = StandIn::start(vendor(tokens, contained.clone())).await;
    let c = falcon(&s.url);
    let e = c
        .call(&call("contain_host", json!({"host": "NOPE"}), json!(null)))
        .await
        .expect_err("no host");
    assert!(
        e.to_string().contains("no Falcon host is named `NOPE`"),
        "{e}"
    );
    let e = c
        .call(&call("contain_host", json!({"host": "TWIN"}), json!(null)))
        .await
        .expect_err("two hosts");
    assert!(e.to_string().contains("2 Falcon hosts"), "{e}");
    let e = c
        .call(&call(
            "contain_host",
            json!({"device_id": "deadbeef"}),
            json!(null),
        ))
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
    assert!(e.to_string().contains("Device not found"), "{e}");
    assert!(!e.retryable());
    let e = c
        .call(&call("contain_host", json!({}), json!(null)))
        .await
        .expect_err("no params");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");
    assert_eq!(contained.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_rate_limits_and_outages_are_retryable() {
    let expire_next = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(AtomicUsize::new(0));
    let (e2, t2) = (expire_next.clone(), tokens.clone());
    let s = StandIn::start(move |req, n| {
        if req.path == "/oauth2/token" {
            let k = t2.fetch_add(1, Ordering::SeqCst);
            return Answer::json(201, json!({"access_token": format!("tok-{k}"), "expires_in": 1799}));
        }
        let current = format!("Bearer tok-{}", t2.load(Ordering::SeqCst) - 1);
        if req.header("authorization") != Some(current.as_str()) || e2.swap(0, Ordering::SeqCst) == 1 {
            return Answer::json(401, json!({"errors": [{"code": 401, "message": "access denied, invalid bearer token"}]}));
        }
        match n % 100 {
            _ if req.query.contains("RATE") => Answer::json(429, json!({"errors": [{"code": 429, "message": "API rate limit exceeded."}]}))
                .with_header("Retry-After", "3")
                .with_header("X-RateLimit-Remaining", "0"),
            _ if req.query.contains("DOWN") => Answer::text(502, "text/html", "<html>Bad Gateway</html>"),
            _ => Answer::json(200, json!({"resources": [AID], "errors": []})),
        }
    })
    .await;
    let c = falcon(&s.url);
    let lookup = |h: &str| call("contain_host", json!({"host": h}), json!(null));
    // First call: token 0. Then the vendor expires it: the next call gets a 401, a new token, one retry.
    c.check(&lookup("A")).expect("check").await.err();
    expire_next.store(1, Ordering::SeqCst);
    c.check(&lookup("B")).expect("check").await.err();
    let paths: Vec<String> = s.seen().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths.iter().filter(|p| *p == "/oauth2/token").count(),
        2,
        "{paths:?}"
    );
    let e = c.call(&lookup("RATE")).await.expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(3)
        }
    );
    let e = c.call(&lookup("DOWN")).await.expect_err("502");
    assert!(e.retryable(), "{e:?}");
}

#[test]
fn a_definition_missing_its_client_id_names_the_field() {
    let e = crowdstrike::load(
        "f.yaml",
        "name: falcon\nkind: crowdstrike\nclient_secret: s\n",
        Arc::new(StaticSecrets::default()),
    )
    .expect_err("refused");
    assert!(e.to_string().contains("client_id"), "{e}");
    let e = crowdstrike::load(
        "f.yaml",
        "name: falcon\nkind: crowdstrike\nclient_id: x\nclient_secret: s\nbase_url: ftp://x\n",
        Arc::new(StaticSecrets::default()),
    )
    .expect_err("refused");
    assert_eq!(e.line, 5, "{e}");
}
