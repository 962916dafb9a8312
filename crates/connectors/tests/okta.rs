//! Okta against a stand-in that checks requests as Okta's Users API documents them: `SSWS`
//! authentication, users by id or login, the suspend / unsuspend lifecycle with Okta's own
//! preconditions, clearing sessions, the undo record that remembers the status from before,
//! and Okta's error and rate-limit shapes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Answer, Seen, StandIn};
use riposte_connectors::okta;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Class, Connector, ConnectorError, Secret};
use serde_json::{Value, json};

const UID: &str = "00ub0oNGTSWTBKOLGLNR";
const LOGIN: &str = "alice@corp.example";
const TOKEN: &str = "00QCjAl4MlV-WPXM-ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn okta_at(url: &str) -> Arc<dyn Connector> {
    let text =
        format!("name: okta\nkind: okta\nbase_url: {url}\napi_token: okta_token\ntimeout: 5s\n");
    let secrets = StaticSecrets(
        [("okta_token".to_string(), Secret::new(TOKEN))]
            .into_iter()
            .collect(),
    );
    Arc::new(okta::load("okta.yaml", &text, Arc::new(secrets)).expect("loads"))
}

fn call(op: &str, params: Value, undo: Value, key: &str) -> CallRequest {
    CallRequest {
        action_id: "act-9".into(),
        idempotency_key: key.into(),
        operation: op.into(),
        params,
        undo,
        context: json!({}),
        timeout: Duration::from_secs(5),
    }
}

fn okta_error(status: u16, code: &str, summary: &str, causes: &[&str]) -> Answer {
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    Answer::json(
        status,
        json!({"errorCode": code, "errorSummary": summary, "errorLink": code,
               "errorId": "oaeJHqeV3rMR0yO4XaDiZ2v0w", "errorCauses": causes}),
    )
}

fn user(status: &str) -> Value {
    json!({"id": UID, "status": status, "created": "2024-01-10T09:00:00.000Z",
           "statusChanged": "2024-02-01T09:00:00.000Z", "type": {"id": "oty1"},
           "profile": {"login": LOGIN, "email": LOGIN, "firstName": "Alice", "lastName": "Doe"},
           "_links": {"self": {"href": format!("https://corp.okta.com/api/v1/users/{UID}")}}})
}

/// Answers like Okta's Users API, with its lifecycle preconditions.
fn vendor(status: Arc<Mutex<&'static str>>) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        if req.header("authorization") != Some(format!("SSWS {TOKEN}").as_str()) {
            return okta_error(401, "E0000011", "Invalid token provided", &[]);
        }
        if req.header("accept") != Some("application/json") {
            return okta_error(406, "E0000031", "Invalid Accept header", &[]);
        }
        let mut st = status.lock().expect("status");
        let rest = req.path.strip_prefix("/api/v1/users/").unwrap_or("");
        let parts: Vec<&str> = rest.split('/').collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["busy@corp.example"]) => {
                let reset = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .expect("now")
                    .as_secs()
                    + 30;
                okta_error(
                    429,
                    "E0000047",
                    "API call exceeded rate limit due to too many requests.",
                    &[],
                )
                .with_header("X-Rate-Limit-Limit", "600")
                .with_header("X-Rate-Limit-Remaining", "0")
                .with_header("X-Rate-Limit-Reset", &reset.to_string())
            }
            ("GET", ["down@corp.example"]) => {
                Answer::text(503, "text/html", "<html>Service Unavailable</html>")
            }
            ("GET", [key]) if *key == UID || *key == LOGIN => Answer::json(200, user(&st)),
            ("GET", [key]) => okta_error(
                404,
                "E0000007",
                &format!("Not found: Resource not found: {key} (User)"),
                &[],
            ),
            // Lifecycle operations by id, as riposte sends them once it has read the user.
            ("POST", [UID, "lifecycle", op]) => {
                if !req.body.is_empty() {
                    return okta_error(
                        400,
                        "E0000003",
                        "The request body was not well-formed.",
                        &[],
                    );
                }
                match (*op, *st) {
                    ("suspend", "ACTIVE") => *st = "SUSPENDED",
                    ("unsuspend", "SUSPENDED") => *st = "ACTIVE",
                    ("suspend", _) => {
                        return okta_error(
                            400,
                            "E0000001",
                            "Api validation failed: suspendUser",
                            &["Cannot suspend a user that is not active"],
                        );
                    }
                    ("unsuspend", _) => {
                        return okta_error(
                            400,
                            "E0000001",
                            "Api validation failed: unsuspendUser",
                            &["Cannot unsuspend a user that is not suspended"],
                        );
                    }
                    _ => {
                        return okta_error(
                            404,
                            "E0000022",
                            "The endpoint does not support the provided HTTP method",
                            &[],
                        );
                    }
                }
                Answer::json(200, json!({}))
            }
            ("DELETE", [UID, "sessions"]) => Answer::empty(204),
            ("POST" | "DELETE", [other, ..]) => okta_error(
                404,
                "E0000007",
                &format!("Not found: Resource not found: {other} (User)"),
                &[],
            ),
            _ => okta_error(
                404,
                "E0000022",
                "The endpoint does not support the provided HTTP method",
                &[],
            ),
        }
    }
}

fn lines(s: &StandIn) -> Vec<String> {
    s.seen()
        .iter()
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect()
}

#[tokio::test]
async fn suspend_by_login_then_unsuspend_with_the_undo_record() {
    let status = Arc::new(Mutex::new("ACTIVE"));
    let s = StandIn::start(vendor(status.clone())).await;
    let c = okta_at(&s.url);
    let spec = c.operation("suspend_user").expect("suspend_user");
    assert_eq!(spec.inverse.as_deref(), Some("unsuspend_user"));
    assert_eq!(spec.class, Class::Approve);

    let out = c
        .call(&call(
            "suspend_user",
            json!({"login": LOGIN}),
            json!(null),
            "k1",
        ))
        .await
        .expect("suspended");
    assert_eq!(
        out.undo,
        json!({"user_id": UID, "previous_status": "ACTIVE"})
    );
    assert_eq!(out.fields["changed"], true);
    assert_eq!(*status.lock().expect("s"), "SUSPENDED");

    let back = c
        .call(&call(
            "unsuspend_user",
            json!({"login": LOGIN}),
            out.undo,
            "k2",
        ))
        .await
        .expect("unsuspended");
    assert_eq!(back.fields["changed"], true);
    assert_eq!(*status.lock().expect("s"), "ACTIVE");

    assert_eq!(
        lines(&s),
        [
            format!("GET /api/v1/users/{LOGIN}?"),
            format!("POST /api/v1/users/{UID}/lifecycle/suspend?"),
            // The inverse reads the user by the stored id, then lifts the suspension.
            format!("GET /api/v1/users/{UID}?"),
            format!("POST /api/v1/users/{UID}/lifecycle/unsuspend?"),
        ]
    );
    let seen = s.seen();
    assert_eq!(
        seen[1].header("authorization"),
        Some(format!("SSWS {TOKEN}").as_str())
    );
    assert_eq!(seen[1].body, "");
}

#[tokio::test]
async fn a_user_suspended_before_riposte_acted_stays_suspended_on_undo() {
    let status = Arc::new(Mutex::new("SUSPENDED"));
    let s = StandIn::start(vendor(status.clone())).await;
    let c = okta_at(&s.url);
    let out = c
        .call(&call(
            "suspend_user",
            json!({"user_id": UID}),
            json!(null),
            "k1",
        ))
        .await
        .expect("nothing to do");
    assert_eq!(
        out.undo,
        json!({"user_id": UID, "previous_status": "SUSPENDED"})
    );
    assert_eq!(out.fields["changed"], false);
    let back = c
        .call(&call("unsuspend_user", json!({}), out.undo, "k2"))
        .await
        .expect("nothing to restore");
    assert_eq!(back.fields["changed"], false);
    assert_eq!(*status.lock().expect("s"), "SUSPENDED");
    assert_eq!(
        lines(&s),
        [format!("GET /api/v1/users/{UID}?")],
        "only the first read"
    );
}

#[tokio::test]
async fn a_retried_suspend_records_the_status_from_before_its_first_attempt() {
    let status = Arc::new(Mutex::new("ACTIVE"));
    let s = StandIn::start(vendor(status.clone())).await;
    let c = okta_at(&s.url);
    c.call(&call(
        "suspend_user",
        json!({"login": LOGIN}),
        json!(null),
        "same",
    ))
    .await
    .expect("first attempt");
    // Its answer was lost; the engine retries with the same key and finds the user suspended.
    let retry = c
        .call(&call(
            "suspend_user",
            json!({"login": LOGIN}),
            json!(null),
            "same",
        ))
        .await
        .expect("retry");
    assert_eq!(retry.undo["previous_status"], "ACTIVE");
    // So the undo still lifts the suspension riposte made.
    c.call(&call("unsuspend_user", json!({}), retry.undo, "undo"))
        .await
        .expect("undone");
    assert_eq!(*status.lock().expect("s"), "ACTIVE");
}

#[tokio::test]
async fn the_check_finds_a_suspension_and_its_undo_refuses_to_guess_the_status_before() {
    let status = Arc::new(Mutex::new("ACTIVE"));
    let s = StandIn::start(vendor(status.clone())).await;
    let c = okta_at(&s.url);
    let req = call("suspend_user", json!({"login": LOGIN}), json!(null), "k1");
    assert_eq!(c.check(&req).expect("check").await.expect("asked"), None);
    *status.lock().expect("s") = "SUSPENDED";
    let done = c
        .check(&req)
        .expect("check")
        .await
        .expect("asked")
        .expect("done");
    assert_eq!(done.undo, json!({"user_id": UID, "previous_status": null}));
    assert!(
        s.seen().iter().all(|r| r.method == "GET"),
        "a check only reads"
    );
    let e = c
        .call(&call("unsuspend_user", json!({}), done.undo, "k2"))
        .await
        .expect_err("unknown before");
    assert!(
        e.to_string().contains("before riposte acted is unknown"),
        "{e}"
    );
    assert_eq!(*status.lock().expect("s"), "SUSPENDED");
    assert!(
        c.check(&call(
            "clear_sessions",
            json!({"user_id": UID}),
            json!(null),
            "k"
        ))
        .is_none()
    );
}

#[tokio::test]
async fn clear_sessions_is_irreversible_and_can_revoke_oauth_tokens() {
    let status = Arc::new(Mutex::new("ACTIVE"));
    let s = StandIn::start(vendor(status.clone())).await;
    let c = okta_at(&s.url);
    let spec = c.operation("clear_sessions").expect("clear_sessions");
    assert!(spec.irreversible && spec.inverse.is_none());
    assert_eq!(spec.floor_class(), Class::Approve);
    let out = c
        .call(&call(
            "clear_sessions",
            json!({"login": LOGIN, "oauth_tokens": true}),
            json!(null),
            "k",
        ))
        .await
        .expect("cleared");
    assert_eq!(out.status, Some(204));
    assert_eq!(out.fields["oauth_tokens_revoked"], true);
    c.call(&call(
        "clear_sessions",
        json!({"user_id": UID}),
        json!(null),
        "k2",
    ))
    .await
    .expect("cleared");
    assert_eq!(
        lines(&s),
        [
            format!("GET /api/v1/users/{LOGIN}?"),
            format!("DELETE /api/v1/users/{UID}/sessions?oauthTokens=true"),
            format!("DELETE /api/v1/users/{UID}/sessions?"),
        ]
    );
    let e = c
        .call(&call(
            "clear_sessions",
            json!({"user_id": "00unope"}),
            json!(null),
            "k3",
        ))
        .await
        .expect_err("404");
    assert!(e.to_string().contains("no Okta user `00unope`"), "{e}");
    let e = c
        .call(&call(
            "clear_sessions",
            json!({"user_id": UID, "oauth_tokens": "yes"}),
            json!(null),
            "k4",
        ))
        .await
        .expect_err("bad flag");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");
}

#[tokio::test]
async fn okta_refusals_are_clear_and_a_refused_token_names_its_secret() {
    let status = Arc::new(Mutex::new("DEPROVISIONED"));
    let s = StandIn::start(vendor(status.clone())).await;
    let c = okta_at(&s.url);
    let e = c
        .call(&call(
            "suspend_user",
            json!({"login": "nobody@corp.example"}),
            json!(null),
            "k",
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
    assert!(
        e.to_string().contains("no Okta user `nobody@corp.example`"),
        "{e}"
    );
    assert!(e.to_string().contains("E0000007"), "{e}");
    let e = c
        .call(&call(
            "suspend_user",
            json!({"login": LOGIN}),
            json!(null),
            "k2",
        ))
        .await
        .expect_err("not active");
    assert!(
        e.to_string().contains(
            "E0000001 Api validation failed: suspendUser (Cannot suspend a user that is not active)"
        ),
        "{e}"
    );
    assert!(!e.retryable());
    let e = c
        .call(&call("suspend_user", json!({}), json!(null), "k3"))
        .await
        .expect_err("no user");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");

    let refused =
        StandIn::start(|_, _| okta_error(401, "E0000011", "Invalid token provided", &[])).await;
    let c = okta_at(&refused.url);
    let e = c
        .call(&call(
            "suspend_user",
            json!({"user_id": UID}),
            json!(null),
            "k",
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
    let shown = format!("{e} {e:?}");
    assert!(
        shown.contains("secret `okta_token`") && shown.contains("E0000011"),
        "{shown}"
    );
    assert!(!shown.contains(TOKEN), "{shown}");
    assert_eq!(refused.seen().len(), 1, "a static token is not refreshed");
}

#[tokio::test]
async fn rate_limits_honour_the_reset_header_and_outages_are_retryable() {
    let status = Arc::new(Mutex::new("ACTIVE"));
    let s = StandIn::start(vendor(status)).await;
    let c = okta_at(&s.url);
    let e = c
        .call(&call(
            "suspend_user",
            json!({"login": "busy@corp.example"}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("429");
    match e {
        ConnectorError::RateLimited {
            retry_after_secs: Some(s),
        } => {
            assert!((29..=30).contains(&s), "X-Rate-Limit-Reset gives {s}")
        }
        other => panic!("busy@corp.example: {other:?}"),
    }
    let e = c
        .call(&call(
            "suspend_user",
            json!({"login": "down@corp.example"}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("503");
    assert!(e.retryable(), "{e:?}");
    assert!(!format!("{e:?}").contains(TOKEN));

    // Retry-After, when Okta sends it, wins over the reset time.
    let both = StandIn::start(|_, _| {
        okta_error(
            429,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
            &[],
        )
        .with_header("Retry-After", "4")
        .with_header("X-Rate-Limit-Reset", "4102444800")
    })
    .await;
    let e = okta_at(&both.url)
        .call(&call(
            "clear_sessions",
            json!({"user_id": UID}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(4)
        }
    );
}

#[test]
fn a_bad_definition_names_the_field() {
    let load = |text: &str| {
        okta::load("o.yaml", text, Arc::new(StaticSecrets::default())).expect_err(text)
    };
    let e = load("name: okta\nkind: okta\napi_token: t\n");
    assert!(e.to_string().contains("base_url"), "{e}");
    let e = load("name: okta\nkind: okta\nbase_url: https://corp.okta.com\napi_token: ''\n");
    assert!(e.to_string().contains("api_token"), "{e}");
    let e =
        load("name: okta\nkind: okta\nbase_url: https://corp.okta.com\napi_token: t\nscope: x\n");
    assert!(e.to_string().contains("scope"), "{e}");
}

#[test]
fn the_example_definition_loads() {
    let path = "../../docs/playbooks/config/connectors/okta.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(riposte_respond::Templates::default()),
        Arc::new(StaticSecrets::default()),
    )
    .expect(path);
    assert!(c.operation("suspend_user").is_some() && c.operation("clear_sessions").is_some());
}
