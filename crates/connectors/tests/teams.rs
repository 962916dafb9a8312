//! Microsoft Teams workflow webhook against a stand-in that checks the post as the Teams
//! "Workflows" webhook trigger expects it: a `message` with one Adaptive Card attachment,
//! answered `202 Accepted`; Power Automate's error shapes; the URL (the credential) never
//! in an error.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Answer, Seen, StandIn};
use riposte_connectors::teams;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError, Templates};
use serde_json::{Value, json};

const PATH: &str = "/workflows/5f1c0a7e/triggers/manual/paths/invoke";
const SIG: &str = "Zm9vYmFyc2lnbmF0dXJlc2VjcmV0";

fn webhook(base: &str) -> String {
    format!("{base}{PATH}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}")
}

fn teams_to(url: &str, public: bool) -> Arc<dyn Connector> {
    let mut text = "name: teams\nkind: teams\nwebhook_url: soc_teams\ntimeout: 5s\n".to_string();
    if public {
        text.push_str("public_url: https://riposte.corp.example\n");
    }
    Arc::new(
        teams::load("teams.yaml", &text, common::secrets(&[("soc_teams", url)])).expect("loads"),
    )
}

fn call(params: Value) -> CallRequest {
    CallRequest {
        action_id: "act-5".into(),
        idempotency_key: "act-5".into(),
        operation: "notify".into(),
        params,
        undo: Value::Null,
        context: json!({
            "case": {"id": "case-0c41e2", "status": "open", "tier": "high", "risk": 82,
                     "entities": [{"type": "host", "role": "target", "value": "ws-042.corp.example"}]},
            "alert": null,
            "playbook": {"id": "contain-host", "name": "Isolate hosts", "version": 1},
            "run": {"id": "run-1"}
        }),
        timeout: Duration::from_secs(5),
    }
}

/// Answers like a Power Automate webhook trigger.
fn vendor(req: &Seen, _n: usize) -> Answer {
    if req.path != PATH {
        return Answer::json(
            404,
            json!({"error": {"code": "WorkflowNotFound", "message": format!("The workflow at '{}' could not be found.", req.path)}}),
        );
    }
    if req.query_pairs().get("sig").map(String::as_str) != Some(SIG) {
        return Answer::json(
            401,
            json!({"error": {"code": "DirectApiAuthorizationRequired", "message": format!("The request must be authenticated; sig={} is invalid", req.query_pairs().get("sig").cloned().unwrap_or_default())}}),
        );
    }
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let body = req.json();
    let card = &body["attachments"][0];
    let shaped = body["type"] == "message"
        && body["attachments"].as_array().map(Vec::len) == Some(1)
        && card["contentType"] == "application/vnd.microsoft.card.adaptive"
        && card["contentUrl"].is_null()
        && card["content"]["type"] == "AdaptiveCard"
        && card["content"]["version"] == "1.4";
    if !shaped {
        return Answer::json(
            400,
            json!({"error": {"code": "TriggerInputSchemaMismatch", "message": "The input body for trigger 'manual' of type 'Request' did not match its schema definition."}}),
        );
    }
    Answer::empty(202)
}

#[tokio::test]
async fn a_card_with_review_and_case_buttons_is_accepted() {
    let s = StandIn::start(vendor).await;
    let c = teams_to(&webhook(&s.url), true);
    let spec = c.operation("notify").expect("notify");
    assert_eq!(spec.inverse, None);
    assert!(!spec.idempotent);
    let out = c
        .call(&call(
            json!({"message": "Isolating ws-042 waits for an approver.", "action_id": "act 7/x"}),
        ))
        .await
        .expect("posted");
    assert_eq!(out.status, Some(202));
    let seen = s.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].json(),
        json!({"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": "riposte case-0c41e2 (high, risk 82): ws-042.corp.example", "weight": "Bolder", "size": "Medium", "wrap": true},
                    {"type": "TextBlock", "text": "Isolating ws-042 waits for an approver.", "wrap": true},
                    {"type": "FactSet", "facts": [
                        {"title": "case", "value": "case-0c41e2"},
                        {"title": "tier", "value": "high"},
                        {"title": "status", "value": "open"},
                        {"title": "risk", "value": "82/100"},
                        {"title": "severity", "value": "high"},
                        {"title": "playbook", "value": "Isolate hosts"},
                        {"title": "run", "value": "run-1"}
                    ]}
                ],
                "actions": [
                    {"type": "Action.OpenUrl", "title": "Review the action", "url": "https://riposte.corp.example/api/v1/actions/act%207%2Fx"},
                    {"type": "Action.OpenUrl", "title": "Open the case", "url": "https://riposte.corp.example/api/v1/cases/case-0c41e2"}
                ]
            }
        }]})
    );
}

#[tokio::test]
async fn without_an_action_id_the_button_lists_the_case_s_waiting_actions() {
    let s = StandIn::start(vendor).await;
    let c = teams_to(&webhook(&s.url), true);
    c.call(&call(json!({}))).await.expect("posted");
    let card = s.seen()[0].json();
    assert_eq!(
        card["attachments"][0]["content"]["actions"][0]["url"],
        "https://riposte.corp.example/api/v1/actions?case=case-0c41e2&state=awaiting_approval"
    );
    // Without `public_url` there are no buttons at all.
    let c = teams_to(&webhook(&s.url), false);
    c.call(&call(json!({}))).await.expect("posted");
    assert!(
        s.seen()[1].json()["attachments"][0]["content"]
            .get("actions")
            .is_none()
    );
}

#[tokio::test]
async fn flow_errors_keep_the_code_and_never_the_url() {
    let s = StandIn::start(vendor).await;
    let mut errors = Vec::new();
    // A revoked signature: 401 whose message quotes it.
    let bad_sig = format!(
        "{}{PATH}?api-version=2016-06-01&sig=NotTheSig0123456789",
        s.url
    );
    let e = teams_to(&bad_sig, true)
        .call(&call(json!({})))
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
    assert_eq!(
        e.to_string(),
        "teams: POST (webhook) answered 401: the workflow says: DirectApiAuthorizationRequired"
    );
    errors.push((e, bad_sig));
    // A deleted flow: 404.
    let gone = format!(
        "{}/workflows/deleted/triggers/manual/paths/invoke?sig={SIG}",
        s.url
    );
    let e = teams_to(&gone, true)
        .call(&call(json!({})))
        .await
        .expect_err("404");
    assert!(e.to_string().ends_with("WorkflowNotFound"), "{e}");
    errors.push((e, gone));

    let busy = StandIn::start(
        |req, _| match req.query_pairs().get("sig").map(String::as_str) {
            Some("busy") => Answer::json(
                429,
                json!({"error": {"code": "WorkflowTriggerThrottled", "message": "throttled"}}),
            )
            .with_header("Retry-After", "12"),
            _ => Answer::text(
                500,
                "text/plain",
                "internal error at /paths/invoke?sig=down",
            ),
        },
    )
    .await;
    let url = format!("{}{PATH}?sig=busy", busy.url);
    let e = teams_to(&url, true)
        .call(&call(json!({})))
        .await
        .expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(12)
        }
    );
    let url = format!("{}{PATH}?sig=down", busy.url);
    let e = teams_to(&url, true)
        .call(&call(json!({})))
        .await
        .expect_err("500");
    assert!(e.retryable(), "{e:?}");
    errors.push((e, url));

    for (e, url) in &errors {
        let m = format!("{e} {e:?}");
        assert!(!m.contains(url.as_str()), "the URL leaked: {m}");
        let sig = url.rsplit("sig=").next().unwrap_or_default();
        assert!(!m.contains(sig), "the signature leaked: {m}");
    }
}

#[tokio::test]
async fn a_secret_that_is_not_a_url_is_a_clear_failure_without_its_value() {
    let c = teams_to("not-a-url-but-secret-text", true);
    let e = c.call(&call(json!({}))).await.expect_err("not a URL");
    assert!(matches!(e, ConnectorError::Secret { .. }), "{e:?}");
    assert!(e.to_string().contains("soc_teams"), "{e}");
    assert!(!e.to_string().contains("secret-text"), "{e}");
}

#[test]
fn a_url_written_in_the_definition_is_refused() {
    let e = teams::load(
        "t.yaml",
        "name: teams\nkind: teams\nwebhook_url: https://prod-01.westeurope.logic.azure.com/workflows/x?sig=y\n",
        Arc::new(StaticSecrets::default()),
    )
    .expect_err("a URL, not a secret name");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.to_string().contains("riposte secret set"), "{e}");
    assert!(!e.to_string().contains("sig=y"), "{e}");
}

#[test]
fn the_documented_example_loads() {
    let path = "../../docs/playbooks/config/connectors/teams.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(Templates::default()),
        Arc::new(StaticSecrets::default()),
    )
    .expect(path);
    assert!(c.operation("notify").is_some());
}
