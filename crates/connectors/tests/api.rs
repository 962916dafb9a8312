//! The shared vendor client against a stand-in: OAuth2 client credentials (token fetched
//! once, cached, refreshed once on a 401), and the error classes every connector inherits.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Answer, StandIn};
use reqwest::Method;
use riposte_connectors::api::{Api, Auth, ClientCredentials, Request};
use riposte_respond::ConnectorError;
use riposte_respond::secrets::StaticSecrets;

fn secrets() -> Arc<StaticSecrets> {
    common::secrets(&[("cs", "s3cr3t-value")])
}

fn oauth(url: &str) -> Auth {
    Auth::ClientCredentials(ClientCredentials {
        token_url: format!("{url}/oauth2/token"),
        client_id: "client-1".into(),
        secret: "cs".into(),
        scope: None,
    })
}

#[tokio::test]
async fn a_token_is_fetched_once_and_refreshed_once_when_the_vendor_says_it_expired() {
    // Tokens are numbered; the API accepts only the latest one.
    let issued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let i = issued.clone();
    let vendor = StandIn::start(move |req, _| {
        if req.path == "/oauth2/token" {
            let n = i.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            return Answer::json(201, serde_json::json!({"access_token": format!("tok{n}"), "expires_in": 1799, "token_type": "bearer"}));
        }
        let latest = format!("Bearer tok{}", i.load(std::sync::atomic::Ordering::SeqCst));
        // The vendor revokes token 1 after two calls.
        if req.header("authorization") == Some(latest.as_str()) && !(latest == "Bearer tok1" && req.path == "/c3") {
            Answer::json(200, serde_json::json!({"ok": req.path}))
        } else {
            Answer::json(401, serde_json::json!({"errors": [{"code": 401, "message": "access denied, invalid bearer token"}]}))
        }
    })
    .await;
    let api = Api::new(
        "falcon",
        &vendor.url,
        Duration::from_secs(5),
        oauth(&vendor.url),
        secrets(),
    )
    .expect("api");
    for p in ["/c1", "/c2", "/c3"] {
        let r = api
            .send(&Request::new(Method::GET, p), Duration::from_secs(5))
            .await
            .expect(p);
        assert_eq!(r.body["ok"], p);
    }
    let seen = vendor.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/oauth2/token", "/c1", "/c2", "/c3", "/oauth2/token", "/c3"]
    );
    let form = seen[0].form();
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    assert_eq!(form.get("client_id").map(String::as_str), Some("client-1"));
    assert_eq!(
        form.get("client_secret").map(String::as_str),
        Some("s3cr3t-value")
    );
    assert_eq!(
        seen[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn a_second_401_is_a_rejection_that_does_not_carry_the_secret() {
    let vendor = StandIn::start(|req, _| {
        if req.path == "/oauth2/token" {
            Answer::json(
                201,
                serde_json::json!({"access_token": "tok", "expires_in": 1799}),
            )
        } else {
            Answer::json(
                401,
                serde_json::json!({"errors": [{"message": "access denied"}]}),
            )
        }
    })
    .await;
    let api = Api::new(
        "falcon",
        &vendor.url,
        Duration::from_secs(5),
        oauth(&vendor.url),
        secrets(),
    )
    .expect("api");
    api.send(&Request::new(Method::GET, "/warm"), Duration::from_secs(5))
        .await
        .err();
    let e = api
        .send(&Request::new(Method::GET, "/x"), Duration::from_secs(5))
        .await
        .expect_err("refused");
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
    assert!(!e.to_string().contains("s3cr3t"), "{e}");
    assert!(!e.retryable());
    // warm: token + call; x: call (401) → new token → call (401) → stop.
    let paths: Vec<String> = vendor.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        ["/oauth2/token", "/warm", "/x", "/oauth2/token", "/x"]
    );
}

#[tokio::test]
async fn a_bad_client_secret_is_a_clear_rejection() {
    let vendor = StandIn::start(|_, _| {
        Answer::json(401, serde_json::json!({"error": "invalid_client", "error_description": "client authentication failed"}))
    })
    .await;
    let api = Api::new(
        "falcon",
        &vendor.url,
        Duration::from_secs(5),
        oauth(&vendor.url),
        secrets(),
    )
    .expect("api");
    let e = api
        .send(&Request::new(Method::GET, "/x"), Duration::from_secs(5))
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("cannot get an OAuth2 token"), "{e}");
    assert!(e.to_string().contains("invalid_client"), "{e}");
    assert!(!e.to_string().contains("s3cr3t"), "{e}");
}

#[tokio::test]
async fn rate_limits_server_errors_and_timeouts_are_classified() {
    let vendor = StandIn::start(|req, _| match req.path.as_str() {
        "/busy" => Answer::json(429, serde_json::json!({"message": "slow down"}))
            .with_header("retry-after", "7"),
        "/broken" => Answer::text(503, "text/html", "<h1>maintenance</h1>"),
        "/missing" => Answer::json(404, serde_json::json!({"message": "no such host"})),
        "/gone-ok" => Answer::empty(404),
        _ => {
            std::thread::sleep(Duration::from_millis(1500));
            Answer::empty(200)
        }
    })
    .await;
    let api = Api::new(
        "edr",
        &vendor.url,
        Duration::from_secs(5),
        Auth::None,
        secrets(),
    )
    .expect("api");
    let t = Duration::from_secs(5);
    let e = api
        .send(&Request::new(Method::POST, "/busy"), t)
        .await
        .expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(7)
        }
    );
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    let e = api
        .send(&Request::new(Method::POST, "/broken"), t)
        .await
        .expect_err("503");
    assert!(
        matches!(e, ConnectorError::Transient { .. }) && e.to_string().contains("503"),
        "{e}"
    );
    let e = api
        .send(&Request::new(Method::POST, "/missing"), t)
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
    assert!(e.to_string().contains("no such host"), "{e}");
    let r = api
        .send(&Request::new(Method::DELETE, "/gone-ok").also_ok(404), t)
        .await
        .expect("404 allowed");
    assert_eq!(r.status, 404);
    let e = api
        .send(
            &Request::new(Method::GET, "/slow"),
            Duration::from_millis(300),
        )
        .await
        .expect_err("timeout");
    assert!(matches!(e, ConnectorError::Timeout { .. }), "{e:?}");
}

#[tokio::test]
async fn header_and_basic_auth_are_sent_as_vendors_expect() {
    let vendor = StandIn::start(|_, _| Answer::json(200, serde_json::json!({}))).await;
    let t = Duration::from_secs(5);
    let okta = Api::new(
        "okta",
        &vendor.url,
        t,
        Auth::Header {
            name: reqwest::header::AUTHORIZATION,
            prefix: "SSWS ".into(),
            secret: "cs".into(),
        },
        secrets(),
    )
    .expect("api");
    okta.send(&Request::new(Method::GET, "/a"), t)
        .await
        .expect("a");
    let basic = Api::new(
        "snow",
        &vendor.url,
        t,
        Auth::Basic {
            username: "svc".into(),
            secret: "cs".into(),
        },
        secrets(),
    )
    .expect("api");
    basic
        .send(&Request::new(Method::GET, "/b"), t)
        .await
        .expect("b");
    let seen = vendor.seen();
    assert_eq!(seen[0].header("authorization"), Some("SSWS s3cr3t-value"));
    // base64("svc:s3cr3t-value")
    assert_eq!(
        seen[1].header("authorization"),
        Some("Basic c3ZjOnMzY3IzdC12YWx1ZQ==")
    );
}
