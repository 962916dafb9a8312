//! SentinelOne against a stand-in that checks requests as the management API documents
//! them: `ApiToken` authentication, agent look-up by computer name, disconnect / connect
//! with their filter bodies, `affected: 0` as the failure it is, the check after a restart,
//! and SentinelOne's error shapes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Answer, Seen, StandIn};
use riposte_connectors::sentinelone;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError};
use serde_json::{Value, json};

const AID: &str = "1463872839562178543";
const TOKEN: &str = "eyJraWQiOiJ1cy1lYXN0LTEtcHJvZC0wIiwiYWxnIjoiRVMyNTYifQ.s1-token";

fn s1(url: &str) -> Arc<dyn Connector> {
    let text = format!(
        "name: s1\nkind: sentinelone\nbase_url: {url}\napi_token: s1_api_token\ntimeout: 5s\n"
    );
    Arc::new(
        sentinelone::load(
            "s1.yaml",
            &text,
            common::secrets(&[("s1_api_token", TOKEN)]),
        )
        .expect("loads"),
    )
}

fn call(op: &str, params: Value, undo: Value) -> CallRequest {
    CallRequest {
        action_id: "act-3".into(),
        idempotency_key: "key-3".into(),
        operation: op.into(),
        params,
        undo,
        context: json!({}),
        timeout: Duration::from_secs(5),
    }
}

fn errors(status: u16, code: u64, title: &str, detail: Value) -> Answer {
    Answer::json(
        status,
        json!({"errors": [{"code": code, "detail": detail, "title": title}]}),
    )
}

fn agent(id: &str, name: &str, network: &str) -> Value {
    json!({"id": id, "uuid": "ff819e70af13be381993075eb0ce5f2f", "computerName": name,
           "networkStatus": network, "isActive": true, "isDecommissioned": false,
           "osType": "windows", "siteName": "Default site"})
}

/// Answers like the SentinelOne management API, and refuses anything not shaped as
/// documented. `network` is the agent's `networkStatus`.
fn vendor(network: Arc<Mutex<&'static str>>) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        if req.header("authorization") != Some(format!("ApiToken {TOKEN}").as_str()) {
            return errors(401, 4010010, "Authentication Failed", Value::Null);
        }
        let pagination = json!({"totalItems": 1, "nextCursor": null});
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/web/api/v2.1/agents") => {
                let q = req.query_pairs();
                let data = match (
                    q.get("computerName").map(String::as_str),
                    q.get("ids").map(String::as_str),
                ) {
                    (Some("WS-FIN-042"), None) => {
                        json!([agent(AID, "WS-FIN-042", &network.lock().expect("n"))])
                    }
                    (Some("TWIN"), None) => json!([
                        agent("1", "TWIN", "connected"),
                        agent("2", "TWIN", "connected")
                    ]),
                    (None, Some(AID)) => {
                        json!([agent(AID, "WS-FIN-042", &network.lock().expect("n"))])
                    }
                    _ => json!([]),
                };
                Answer::json(200, json!({"data": data, "pagination": pagination}))
            }
            ("POST", p) if p.starts_with("/web/api/v2.1/agents/actions/") => {
                if req.header("content-type") != Some("application/json") {
                    return errors(
                        400,
                        4000010,
                        "Validation Error",
                        json!("Content-Type must be application/json"),
                    );
                }
                let body = req.json();
                let Some(ids) = body.pointer("/filter/ids").and_then(|i| i.as_array()) else {
                    return errors(
                        400,
                        4000010,
                        "Validation Error",
                        json!("filter: Missing data for required field."),
                    );
                };
                if body.as_object().map(|o| o.len()) != Some(1)
                    || body["filter"].as_object().map(|o| o.len()) != Some(1)
                {
                    return errors(400, 4000010, "Validation Error", json!("unexpected fields"));
                }
                let affected = ids.iter().filter(|i| i.as_str() == Some(AID)).count();
                if affected == 1 {
                    *network.lock().expect("n") = match &p["/web/api/v2.1/agents/actions/".len()..]
                    {
                        "disconnect" => "disconnecting",
                        "connect" => "connecting",
                        _ => return errors(404, 4040010, "Not Found", Value::Null),
                    };
                }
                Answer::json(200, json!({"data": {"affected": affected}}))
            }
            _ => errors(404, 4040010, "Not Found", Value::Null),
        }
    }
}

#[tokio::test]
async fn disconnect_by_computer_name_then_connect_with_the_undo_record() {
    let network = Arc::new(Mutex::new("connected"));
    let s = StandIn::start(vendor(network.clone())).await;
    let c = s1(&s.url);
    let spec = c.operation("disconnect_host").expect("disconnect_host");
    assert_eq!(spec.inverse.as_deref(), Some("connect_host"));
    assert!(spec.idempotent);

    let out = c
        .call(&call(
            "disconnect_host",
            json!({"host": "WS-FIN-042"}),
            json!(null),
        ))
        .await
        .expect("disconnected");
    assert_eq!(out.undo, json!({"agent_id": AID}));
    assert_eq!(*network.lock().expect("n"), "disconnecting");

    let undo = c
        .call(&call(
            "connect_host",
            json!({"host": "WS-FIN-042"}),
            out.undo,
        ))
        .await
        .expect("connected");
    assert_eq!(undo.fields["agent_id"], AID);
    assert_eq!(*network.lock().expect("n"), "connecting");

    let seen = s.seen();
    let lines: Vec<String> = seen
        .iter()
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert_eq!(
        lines,
        [
            "GET /web/api/v2.1/agents?computerName=WS-FIN-042",
            "POST /web/api/v2.1/agents/actions/disconnect?",
            // The inverse acts on the stored agent id, never on the name again.
            "POST /web/api/v2.1/agents/actions/connect?",
        ]
    );
    assert_eq!(seen[1].json(), json!({"filter": {"ids": [AID]}}));
    assert_eq!(seen[2].json(), json!({"filter": {"ids": [AID]}}));
    assert_eq!(
        seen[1].header("authorization"),
        Some(format!("ApiToken {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn affected_zero_is_a_failure_with_a_clear_message() {
    let network = Arc::new(Mutex::new("connected"));
    let s = StandIn::start(vendor(network.clone())).await;
    let c = s1(&s.url);
    let e = c
        .call(&call(
            "disconnect_host",
            json!({"agent_id": "999"}),
            json!(null),
        ))
        .await
        .expect_err("affected 0");
    assert!(!e.retryable(), "{e:?}");
    assert!(e.to_string().contains("affected: 0"), "{e}");
    assert!(e.to_string().contains("agent 999"), "{e}");
    assert_eq!(*network.lock().expect("n"), "connected");
}

#[tokio::test]
async fn the_check_reads_the_agents_network_status() {
    let network = Arc::new(Mutex::new("connected"));
    let s = StandIn::start(vendor(network.clone())).await;
    let c = s1(&s.url);
    let req = call("disconnect_host", json!({"agent_id": AID}), json!(null));
    assert_eq!(c.check(&req).expect("check").await.expect("asked"), None);
    for state in ["disconnecting", "disconnected"] {
        *network.lock().expect("n") = state;
        let done = c.check(&req).expect("check").await.expect("asked");
        assert_eq!(
            done.map(|d| d.undo),
            Some(json!({"agent_id": AID})),
            "{state}"
        );
    }
    let back = call("connect_host", json!({"agent_id": AID}), json!(null));
    assert_eq!(c.check(&back).expect("check").await.expect("asked"), None);
    assert!(
        s.seen().iter().all(|r| r.method == "GET"),
        "a check only reads"
    );
    assert_eq!(s.seen()[0].query, format!("ids={AID}"));
}

#[tokio::test]
async fn unknown_ambiguous_and_missing_hosts_are_clear_failures() {
    let network = Arc::new(Mutex::new("connected"));
    let s = StandIn::start(vendor(network.clone())).await;
    let c = s1(&s.url);
    let e = c
        .call(&call(
            "disconnect_host",
            json!({"host": "NOPE"}),
            json!(null),
        ))
        .await
        .expect_err("unknown");
    assert!(e.to_string().contains("computer name `NOPE`"), "{e}");
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
        .call(&call(
            "disconnect_host",
            json!({"host": "TWIN"}),
            json!(null),
        ))
        .await
        .expect_err("two");
    assert!(e.to_string().contains("2 SentinelOne agents"), "{e}");
    let e = c
        .call(&call("disconnect_host", json!({}), json!(null)))
        .await
        .expect_err("nothing");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");
    assert!(
        s.seen().iter().all(|r| r.method == "GET"),
        "nothing was disconnected"
    );
}

#[tokio::test]
async fn a_refused_token_names_its_secret_and_is_not_retried() {
    let s = StandIn::start(|_, _| errors(401, 4010010, "Authentication Failed", Value::Null)).await;
    let c = s1(&s.url);
    let e = c
        .call(&call(
            "disconnect_host",
            json!({"agent_id": AID}),
            json!(null),
        ))
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
    assert!(!e.retryable());
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("secret `s1_api_token`"), "{shown}");
    assert!(shown.contains("Authentication Failed"), "{shown}");
    assert!(
        !shown.contains(TOKEN) && !shown.contains("eyJraWQ"),
        "{shown}"
    );
    assert_eq!(s.seen().len(), 1, "a static token is not refreshed");
}

#[tokio::test]
async fn rate_limits_outages_and_validation_errors_are_classified() {
    let s = StandIn::start(|req, _| match req.query.as_str() {
        "computerName=RATE" => {
            errors(429, 4290010, "Too Many Requests", Value::Null).with_header("Retry-After", "7")
        }
        "computerName=DOWN" => Answer::text(502, "text/html", "<html>502 Bad Gateway</html>"),
        _ => errors(
            400,
            4000010,
            "Validation Error",
            json!("filter.ids: Not a valid list."),
        ),
    })
    .await;
    let c = s1(&s.url);
    let e = c
        .call(&call(
            "disconnect_host",
            json!({"host": "RATE"}),
            json!(null),
        ))
        .await
        .expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(7)
        }
    );
    let e = c
        .call(&call(
            "disconnect_host",
            json!({"host": "DOWN"}),
            json!(null),
        ))
        .await
        .expect_err("502");
    assert!(e.retryable(), "{e:?}");
    let e = c
        .call(&call(
            "disconnect_host",
            json!({"agent_id": AID}),
            json!(null),
        ))
        .await
        .expect_err("400");
    assert!(!e.retryable());
    assert!(
        e.to_string()
            .contains("Validation Error (4000010): filter.ids: Not a valid list."),
        "{e}"
    );
    let mut all = vec![e];
    all.push(
        c.call(&call("connect_host", json!({"host": "DOWN"}), json!(null)))
            .await
            .expect_err("502"),
    );
    for e in all {
        assert!(!format!("{e} {e:?}").contains(TOKEN), "{e:?}");
    }
}

#[test]
fn a_bad_definition_names_the_field() {
    let load = |text: &str| {
        sentinelone::load("s.yaml", text, Arc::new(StaticSecrets::default())).expect_err(text)
    };
    let e = load("name: s1\nkind: sentinelone\napi_token: t\n");
    assert!(e.to_string().contains("base_url"), "{e}");
    let e = load("name: s1\nkind: sentinelone\nbase_url: https://x.sentinelone.net\n");
    assert!(e.to_string().contains("api_token"), "{e}");
    let e = load("name: s1\nkind: sentinelone\napi_token: t\nbase_url: usea1.sentinelone.net\n");
    assert_eq!(e.line, 4, "{e}");
}

#[test]
fn the_example_definition_loads() {
    let path = "../../docs/playbooks/config/connectors/sentinelone.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(riposte_respond::Templates::default()),
        Arc::new(StaticSecrets::default()),
    )
    .expect(path);
    assert!(c.operation("disconnect_host").is_some() && c.operation("connect_host").is_some());
}
