//! Microsoft Entra ID against a stand-in that checks requests as Microsoft Graph documents
//! them: the identity platform token, reading `accountEnabled` before changing it, the
//! `PATCH` that changes it, `revokeSignInSessions`, the undo record that restores only what
//! riposte changed, and Graph's error shapes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Answer, Seen, StandIn};
use riposte_connectors::entra;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Class, Connector, ConnectorError, Secret};
use serde_json::{Value, json};

const TENANT: &str = "contoso.onmicrosoft.com";
const UID: &str = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
const UPN: &str = "alice@corp.example";
const SECRET: &str = "Xy8Q~entra.S3cret-value_0001";

fn entra_at(url: &str, secret: &str) -> Arc<dyn Connector> {
    let text = format!(
        "name: entra\nkind: entra\ntenant_id: {TENANT}\nclient_id: app-2\nclient_secret: entra_secret\n\
         base_url: {url}\nauthority: {url}/\ntimeout: 5s\n"
    );
    let secrets = StaticSecrets(
        [("entra_secret".to_string(), Secret::new(secret))]
            .into_iter()
            .collect(),
    );
    Arc::new(entra::load("entra.yaml", &text, Arc::new(secrets)).expect("loads"))
}

fn call(op: &str, params: Value, undo: Value, key: &str) -> CallRequest {
    CallRequest {
        action_id: "act-5".into(),
        idempotency_key: key.into(),
        operation: op.into(),
        params,
        undo,
        context: json!({}),
        timeout: Duration::from_secs(5),
    }
}

fn graph_error(status: u16, code: &str, message: &str) -> Answer {
    Answer::json(
        status,
        json!({"error": {"code": code, "message": message, "innerError": {
            "date": "2025-03-12T10:00:00", "request-id": "b2f1c0de-0000-4000-8000-000000000001",
            "client-request-id": "b2f1c0de-0000-4000-8000-000000000001"}}}),
    )
}

struct Tenant {
    enabled: bool,
    tokens: usize,
    expire_next: bool,
    revoke_answers: Value,
}

fn tenant(enabled: bool) -> Arc<Mutex<Tenant>> {
    Arc::new(Mutex::new(Tenant {
        enabled,
        tokens: 0,
        expire_next: false,
        revoke_answers: json!(true),
    }))
}

/// Answers like Microsoft Graph and the identity platform.
fn vendor(t: Arc<Mutex<Tenant>>) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        let mut t = t.lock().expect("tenant");
        if req.path == format!("/{TENANT}/oauth2/v2.0/token") {
            let form = req.form();
            let get = |k: &str| form.get(k).map(String::as_str);
            assert_eq!(get("grant_type"), Some("client_credentials"));
            assert_eq!(get("scope"), Some("https://graph.microsoft.com/.default"));
            if get("client_id") != Some("app-2") || get("client_secret") != Some(SECRET) {
                return Answer::json(
                    401,
                    json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215]}),
                );
            }
            t.tokens += 1;
            return Answer::json(
                200,
                json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": format!("eyJ0eXAiOiJKV1Qi.graph{}", t.tokens)}),
            );
        }
        let current = format!("Bearer eyJ0eXAiOiJKV1Qi.graph{}", t.tokens);
        if req.header("authorization") != Some(current.as_str()) || t.expire_next {
            t.expire_next = false;
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
            );
        }
        let rest = req.path.strip_prefix("/v1.0/users/").unwrap_or("");
        let (key, tail) = rest.split_once('/').unwrap_or((rest, ""));
        match key {
            "busy@corp.example" => {
                return graph_error(429, "TooManyRequests", "Too many requests.")
                    .with_header("Retry-After", "12");
            }
            "down@corp.example" => {
                return Answer::text(503, "text/html", "<html>Service Unavailable</html>");
            }
            "ceo@corp.example" if req.method == "GET" => {
                return Answer::json(200, json!({"id": "ceo-id", "accountEnabled": true}));
            }
            "ceo-id" => {
                return graph_error(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                );
            }
            k if k == UID || k == UPN => {}
            other => {
                return graph_error(
                    404,
                    "Request_ResourceNotFound",
                    &format!(
                        "Resource '{other}' does not exist or one of its queried reference-property objects are not present."
                    ),
                );
            }
        }
        match (req.method.as_str(), tail) {
            ("GET", "") => {
                assert_eq!(
                    req.query_pairs().get("$select").map(String::as_str),
                    Some("id,accountEnabled")
                );
                Answer::json(
                    200,
                    json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id,accountEnabled)/$entity", "id": UID, "accountEnabled": t.enabled}),
                )
            }
            ("PATCH", "") => {
                assert_eq!(key, UID, "the change goes to the object id read before");
                if req.header("content-type") != Some("application/json") {
                    return graph_error(
                        415,
                        "UnsupportedMediaType",
                        "Content-Type must be application/json",
                    );
                }
                let body = req.json();
                match (
                    body.as_object().map(|o| o.len()),
                    body["accountEnabled"].as_bool(),
                ) {
                    (Some(1), Some(v)) => t.enabled = v,
                    _ => return graph_error(400, "Request_BadRequest", "Invalid property values."),
                }
                Answer::empty(204)
            }
            ("POST", "revokeSignInSessions") => Answer::json(
                200,
                json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": t.revoke_answers}),
            ),
            _ => graph_error(400, "BadRequest", "Unsupported request"),
        }
    }
}

fn lines(s: &StandIn) -> Vec<String> {
    s.seen()
        .iter()
        .map(|r| {
            let q = r.query_pairs().get("$select").cloned().unwrap_or_default();
            format!("{} {} {q}", r.method, r.path)
                .trim_end()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn disable_by_principal_name_then_enable_with_the_undo_record() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let spec = c.operation("disable_account").expect("disable_account");
    assert_eq!(spec.inverse.as_deref(), Some("enable_account"));
    assert!(spec.idempotent && !spec.irreversible);

    let out = c
        .call(&call(
            "disable_account",
            json!({"user_principal_name": UPN}),
            json!(null),
            "k1",
        ))
        .await
        .expect("disabled");
    assert_eq!(
        out.undo,
        json!({"user_id": UID, "previous_account_enabled": true})
    );
    assert_eq!(out.status, Some(204));
    assert!(!t.lock().expect("t").enabled);

    let back = c
        .call(&call(
            "enable_account",
            json!({"user_principal_name": UPN}),
            out.undo,
            "k2",
        ))
        .await
        .expect("enabled");
    assert_eq!(back.fields["changed"], true);
    assert!(t.lock().expect("t").enabled);

    assert_eq!(
        lines(&s),
        [
            format!("POST /{TENANT}/oauth2/v2.0/token"),
            format!("GET /v1.0/users/{UPN} id,accountEnabled"),
            format!("PATCH /v1.0/users/{UID}"),
            // The inverse reads the account by the stored id, then restores it.
            format!("GET /v1.0/users/{UID} id,accountEnabled"),
            format!("PATCH /v1.0/users/{UID}"),
        ]
    );
    let seen = s.seen();
    assert_eq!(seen[2].json(), json!({"accountEnabled": false}));
    assert_eq!(seen[4].json(), json!({"accountEnabled": true}));
    assert_eq!(
        seen[2].header("authorization"),
        Some("Bearer eyJ0eXAiOiJKV1Qi.graph1")
    );
}

#[tokio::test]
async fn an_account_disabled_before_riposte_acted_stays_disabled_on_undo() {
    let t = tenant(false);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let out = c
        .call(&call(
            "disable_account",
            json!({"user_id": UID}),
            json!(null),
            "k1",
        ))
        .await
        .expect("nothing to change");
    assert_eq!(
        out.undo,
        json!({"user_id": UID, "previous_account_enabled": false})
    );
    assert_eq!(out.fields["changed"], false);
    let back = c
        .call(&call("enable_account", json!({}), out.undo, "k2"))
        .await
        .expect("nothing to restore");
    assert_eq!(back.fields["changed"], false);
    assert!(!t.lock().expect("t").enabled, "undo must not enable it");
    assert!(
        s.seen().iter().all(|r| r.method != "PATCH"),
        "{:?}",
        lines(&s)
    );
}

#[tokio::test]
async fn a_retried_disable_records_the_value_from_before_its_first_attempt() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    c.call(&call(
        "disable_account",
        json!({"user_id": UID}),
        json!(null),
        "same",
    ))
    .await
    .expect("first attempt");
    let retry = c
        .call(&call(
            "disable_account",
            json!({"user_id": UID}),
            json!(null),
            "same",
        ))
        .await
        .expect("retry");
    assert_eq!(retry.undo["previous_account_enabled"], true);
    c.call(&call("enable_account", json!({}), retry.undo, "undo"))
        .await
        .expect("undone");
    assert!(t.lock().expect("t").enabled);
}

#[tokio::test]
async fn the_check_reads_account_enabled_and_its_undo_refuses_to_guess() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let req = call(
        "disable_account",
        json!({"user_principal_name": UPN}),
        json!(null),
        "k",
    );
    assert_eq!(c.check(&req).expect("check").await.expect("asked"), None);
    t.lock().expect("t").enabled = false;
    let done = c
        .check(&req)
        .expect("check")
        .await
        .expect("asked")
        .expect("done");
    assert_eq!(
        done.undo,
        json!({"user_id": UID, "previous_account_enabled": null})
    );
    assert!(
        s.seen().iter().all(|r| r.method != "PATCH"),
        "a check only reads"
    );
    let e = c
        .call(&call("enable_account", json!({}), done.undo, "k2"))
        .await
        .expect_err("unknown before");
    assert!(e.to_string().contains("is unknown"), "{e}");
    assert!(!t.lock().expect("t").enabled);
    assert!(
        c.check(&call(
            "revoke_sessions",
            json!({"user_id": UID}),
            json!(null),
            "k"
        ))
        .is_none()
    );
}

#[tokio::test]
async fn revoke_sessions_is_irreversible_and_needs_graphs_confirmation() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let spec = c.operation("revoke_sessions").expect("revoke_sessions");
    assert!(spec.irreversible && spec.inverse.is_none());
    assert_eq!(spec.floor_class(), Class::Approve);
    let out = c
        .call(&call(
            "revoke_sessions",
            json!({"user_principal_name": UPN}),
            json!(null),
            "k",
        ))
        .await
        .expect("revoked");
    assert_eq!(out.fields["revoked"], true);
    assert_eq!(out.status, Some(200));
    let last = s.seen().pop().expect("seen");
    assert_eq!(
        (last.method.as_str(), last.path.as_str(), last.body.as_str()),
        (
            "POST",
            "/v1.0/users/alice@corp.example/revokeSignInSessions",
            ""
        )
    );
    t.lock().expect("t").revoke_answers = json!(false);
    let e = c
        .call(&call(
            "revoke_sessions",
            json!({"user_id": UID}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("value false");
    assert!(e.to_string().contains("did not confirm"), "{e}");
}

#[tokio::test]
async fn graph_refusals_are_clear_and_an_expired_token_is_refreshed_once() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let e = c
        .call(&call(
            "disable_account",
            json!({"user_principal_name": "nobody@corp.example"}),
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
        e.to_string()
            .contains("no Entra user `nobody@corp.example`"),
        "{e}"
    );
    assert!(e.to_string().contains("Request_ResourceNotFound"), "{e}");
    let e = c
        .call(&call(
            "disable_account",
            json!({"user_principal_name": "ceo@corp.example"}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("403");
    assert!(
        e.to_string()
            .contains("Authorization_RequestDenied: Insufficient privileges"),
        "{e}"
    );
    assert!(!e.retryable());
    let e = c
        .call(&call("disable_account", json!({}), json!(null), "k"))
        .await
        .expect_err("no user");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");

    t.lock().expect("t").expire_next = true;
    c.call(&call(
        "revoke_sessions",
        json!({"user_id": UID}),
        json!(null),
        "k",
    ))
    .await
    .expect("refreshed once, then revoked");
    assert_eq!(t.lock().expect("t").tokens, 2);

    let e = c
        .call(&call(
            "revoke_sessions",
            json!({"user_principal_name": "busy@corp.example"}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(12)
        }
    );
    let e = c
        .call(&call(
            "revoke_sessions",
            json!({"user_principal_name": "down@corp.example"}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("503");
    assert!(matches!(e, ConnectorError::Transient { .. }), "{e:?}");
}

#[tokio::test]
async fn the_client_secret_never_appears_in_an_error() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let wrong = "Wr0ng~entra-secret-value";
    let mut errors = vec![
        entra_at(&s.url, wrong)
            .call(&call(
                "disable_account",
                json!({"user_id": UID}),
                json!(null),
                "k",
            ))
            .await
            .expect_err("invalid_client"),
    ];
    assert!(
        errors[0].to_string().contains("invalid_client"),
        "{}",
        errors[0]
    );
    let c = entra_at(&s.url, SECRET);
    for p in [
        json!({"user_id": "x"}),
        json!({"user_principal_name": "ceo@corp.example"}),
        json!({}),
    ] {
        errors.push(
            c.call(&call("disable_account", p, json!(null), "k"))
                .await
                .expect_err("fails"),
        );
    }
    for e in errors {
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(wrong) && !shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("eyJ0eXAiOiJKV1Qi"), "no token in {shown}");
    }
}

#[test]
fn a_bad_definition_names_the_field() {
    let load = |text: &str| {
        entra::load("e.yaml", text, Arc::new(StaticSecrets::default())).expect_err(text)
    };
    let e = load("name: entra\nkind: entra\nclient_id: a\nclient_secret: s\n");
    assert!(e.to_string().contains("tenant_id"), "{e}");
    let e = load("name: entra\nkind: entra\ntenant_id: 'a b'\nclient_id: a\nclient_secret: s\n");
    assert_eq!(e.line, 3, "{e}");
    let e = load("name: entra\nkind: entra\ntenant_id: t\nclient_id: ' '\nclient_secret: s\n");
    assert!(e.to_string().contains("client_id"), "{e}");
    let e = load(
        "name: entra\nkind: entra\ntenant_id: t\nclient_id: a\nclient_secret: s\nbase_url: graph.microsoft.com\n",
    );
    assert_eq!(e.line, 6, "{e}");
}

#[test]
fn the_example_definition_loads() {
    let path = "../../docs/playbooks/config/connectors/entra.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(riposte_respond::Templates::default()),
        Arc::new(StaticSecrets::default()),
    )
    .expect(path);
    assert!(c.operation("disable_account").is_some() && c.operation("revoke_sessions").is_some());
}
