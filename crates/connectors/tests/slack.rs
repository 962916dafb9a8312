//! Slack's Web API as a stand-in: chat.postMessage for notices and approval requests (with
//! the buttons the interaction route knows), chat.delete as the inverse, and Slack's
//! `{"ok": false}` error shapes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Answer, StandIn};
use riposte_connectors::slack;
use riposte_respond::{CallRequest, Connector, ConnectorError};
use serde_json::json;

const TOKEN: &str = "xoxb-1111-2222-s3cr3tbottoken";

fn connector(url: &str) -> Arc<dyn Connector> {
    let text = format!(
        "name: chat\nkind: slack\ntoken: bot\nchannel: C0SOC\nbase_url: {url}/api\npublic_url: https://riposte.example/\n"
    );
    Arc::new(slack::load("slack.yaml", &text, common::secrets(&[("bot", TOKEN)])).expect("loads"))
}

fn call(op: &str, params: serde_json::Value, undo: serde_json::Value) -> CallRequest {
    CallRequest {
        action_id: "a1".into(),
        idempotency_key: "k1".into(),
        operation: op.into(),
        params,
        undo,
        context: json!({}),
        timeout: Duration::from_secs(5),
    }
}

fn slack_like() -> impl Fn(&common::Seen, usize) -> Answer {
    |req, _| {
        if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Answer::json(200, json!({"ok": false, "error": "invalid_auth"}));
        }
        assert_eq!(req.method, "POST");
        assert!(
            req.header("content-type")
                .is_some_and(|c| c.starts_with("application/json"))
        );
        let b = req.json();
        match req.path.as_str() {
            "/api/chat.postMessage" if b["channel"] == "C0GONE" => {
                Answer::json(200, json!({"ok": false, "error": "channel_not_found"}))
            }
            "/api/chat.postMessage" if b["channel"] == "C0BUSY" => {
                Answer::json(429, json!({"ok": false, "error": "ratelimited"}))
                    .with_header("Retry-After", "30")
            }
            "/api/chat.postMessage" if b["channel"] == "C0DOWN" => {
                Answer::json(200, json!({"ok": false, "error": "service_unavailable"}))
            }
            "/api/chat.postMessage" => Answer::json(
                200,
                json!({"ok": true, "channel": b["channel"], "ts": "1503435956.000247", "message": {"text": b["text"]}}),
            ),
            "/api/chat.delete" if b["ts"] == "1.0" => {
                Answer::json(200, json!({"ok": false, "error": "message_not_found"}))
            }
            "/api/chat.delete" => Answer::json(
                200,
                json!({"ok": true, "channel": b["channel"], "ts": b["ts"]}),
            ),
            _ => Answer::json(404, json!({"ok": false, "error": "unknown_method"})),
        }
    }
}

#[tokio::test]
async fn a_notice_is_posted_and_taken_back_by_its_undo_record() {
    let s = StandIn::start(slack_like()).await;
    let c = connector(&s.url);
    let out = c
        .call(&call(
            "notify",
            json!({"message": "case c-1 is high"}),
            json!(null),
        ))
        .await
        .expect("posted");
    assert_eq!(
        out.undo,
        json!({"channel": "C0SOC", "ts": "1503435956.000247"})
    );
    c.call(&call("delete_message", json!({}), out.undo))
        .await
        .expect("deleted");
    // Already gone counts as deleted.
    c.call(&call(
        "delete_message",
        json!({}),
        json!({"channel": "C0SOC", "ts": "1.0"}),
    ))
    .await
    .expect("gone");
    let seen = s.seen();
    assert_eq!(
        seen[0].json(),
        json!({"channel": "C0SOC", "text": "case c-1 is high", "unfurl_links": false})
    );
    assert_eq!(seen[1].path, "/api/chat.delete");
    assert_eq!(
        seen[1].json(),
        json!({"channel": "C0SOC", "ts": "1503435956.000247"})
    );
    assert_eq!(
        c.operation("notify")
            .and_then(|o| o.inverse.clone())
            .as_deref(),
        Some("delete_message")
    );
}

#[tokio::test]
async fn an_approval_request_carries_both_buttons_unless_a_reason_is_required() {
    let s = StandIn::start(slack_like()).await;
    let c = connector(&s.url);
    let action = json!({"id": "act-7", "what": "edr.isolate_host", "case_id": "c-1",
                        "params": {"host": "ws-042 <b>"}, "requested_by": "playbook:contain",
                        "deadline": "2026-11-23T22:00:00Z", "quorum": 1, "reason_required": false});
    c.call(&call(
        "request_approval",
        json!({"action": action, "message": "m"}),
        json!(null),
    ))
    .await
    .expect("posted");
    let mut review = action.clone();
    review["reason_required"] = json!(true);
    c.call(&call(
        "request_approval",
        json!({"action": review, "message": "m"}),
        json!(null),
    ))
    .await
    .expect("posted");
    let seen = s.seen();
    let blocks = seen[0].json()["blocks"].clone();
    let text = blocks[0]["text"]["text"].as_str().expect("text");
    assert!(
        text.contains("`edr.isolate_host`") && text.contains("c-1"),
        "{text}"
    );
    assert!(text.contains("&lt;b&gt;"), "mrkdwn is escaped: {text}");
    assert!(
        text.contains("<https://riposte.example/api/v1/actions/act-7|Open in riposte>"),
        "{text}"
    );
    let buttons = blocks[2]["elements"].as_array().expect("buttons").clone();
    assert_eq!(buttons.len(), 2);
    assert_eq!(buttons[0]["action_id"], slack::APPROVE_BUTTON);
    assert_eq!(buttons[1]["action_id"], slack::REJECT_BUTTON);
    assert!(buttons.iter().all(|b| b["value"] == "act-7"));
    let buttons = seen[1].json()["blocks"][2]["elements"]
        .as_array()
        .expect("buttons")
        .clone();
    assert_eq!(
        buttons.len(),
        1,
        "a click cannot carry the written reason review needs"
    );
    assert_eq!(buttons[0]["action_id"], slack::REJECT_BUTTON);
}

#[tokio::test]
async fn slack_errors_are_classified_and_never_show_the_token() {
    let s = StandIn::start(slack_like()).await;
    let c = connector(&s.url);
    let post = |ch: &str| {
        call(
            "notify",
            json!({"message": "x", "channel": ch}),
            json!(null),
        )
    };
    let e = c.call(&post("C0GONE")).await.expect_err("no channel");
    assert!(
        !e.retryable() && e.to_string().contains("channel_not_found"),
        "{e}"
    );
    let e = c.call(&post("C0BUSY")).await.expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(30)
        }
    );
    let e = c.call(&post("C0DOWN")).await.expect_err("down");
    assert!(e.retryable(), "{e:?}");
    let wrong = common::secrets(&[("bot", "xoxb-wrong")]);
    let text = format!(
        "name: chat\nkind: slack\ntoken: bot\nchannel: C0SOC\nbase_url: {}/api\n",
        s.url
    );
    let bad = slack::load("slack.yaml", &text, wrong).expect("loads");
    let e = bad.call(&post("C0SOC")).await.expect_err("invalid_auth");
    assert!(e.to_string().contains("invalid_auth"), "{e}");
    assert!(!e.to_string().contains("xoxb"), "{e}");
    let e = c
        .call(&call("notify", json!({}), json!(null)))
        .await
        .expect_err("no message");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");
}
