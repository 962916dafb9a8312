//! Approve / Reject clicks coming back from Slack: `POST /slack/interactions`.
//!
//! Slack cannot send riposte's bearer token, so this route sits outside `/api/v1` and is
//! authenticated the way Slack documents instead: `X-Slack-Signature` must be
//! `v0=` + hex(HMAC-SHA256(signing secret, `v0:{X-Slack-Request-Timestamp}:{raw body}`)),
//! compared in constant time; the timestamp must be within five minutes of now; and a
//! signature already accepted is refused (a replay within the window).
//!
//! A signed click still approves nothing by itself: the Slack user must be mapped
//! (`respond: slack: users:`) to a riposte principal that holds a live token with the
//! `approver` (or `admin`) role, and the engine then applies every rule an API approval
//! meets (four eyes, quorum, deadline, a written reason for `review`). Every click,
//! accepted or refused, is on the audit trail; refusals of unsigned requests are recorded
//! at most [`REFUSALS_RECORDED_PER_MINUTE`] a minute (then only counted in the log), so
//! anyone who can reach the route cannot flood the trail.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use riposte_domain::Timestamp;
use riposte_respond::Secret;
use riposte_store::Store;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::auth::Role;
use crate::respond::api_error;
use crate::{AppState, error_response};

/// How far a request's timestamp may be from now, as Slack recommends.
pub const MAX_SKEW_SECS: i64 = 300;
pub const REFUSALS_RECORDED_PER_MINUTE: u32 = 60;

/// The `action_id`s of the buttons riposte's Slack connector posts.
const APPROVE_BUTTON: &str = "riposte_approve";
const REJECT_BUTTON: &str = "riposte_reject";

/// What the route needs: the signing secret and who is who.
pub struct SlackApprovals {
    signing_secret: Secret,
    /// Slack user id (`U…`) → riposte principal (a token name).
    users: BTreeMap<String, String>,
    seen: Mutex<Seen>,
    refusals: Mutex<(i64, u32)>,
}

#[derive(Default)]
struct Seen {
    order: VecDeque<(i64, String)>,
    set: HashSet<String>,
}

impl SlackApprovals {
    pub fn new(signing_secret: Secret, users: BTreeMap<String, String>) -> SlackApprovals {
        SlackApprovals {
            signing_secret,
            users,
            seen: Mutex::new(Seen::default()),
            refusals: Mutex::new((0, 0)),
        }
    }

    /// Checks the signature and the timestamp; `Err` names what is wrong.
    fn verify(&self, headers: &HeaderMap, body: &[u8], now_secs: i64) -> Result<String, String> {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        let ts = h("x-slack-request-timestamp").ok_or("no X-Slack-Request-Timestamp")?;
        let sig = h("x-slack-signature").ok_or("no X-Slack-Signature")?;
        let ts_num: i64 = ts.parse().map_err(|_| "the timestamp is not a number")?;
        if (now_secs - ts_num).abs() > MAX_SKEW_SECS {
            return Err(format!(
                "the timestamp is {} s away from now (more than {MAX_SKEW_SECS} s): stale or replayed",
                now_secs - ts_num
            ));
        }
        let given = sig
            .strip_prefix("v0=")
            .and_then(|x| hex::decode(x).ok())
            .ok_or("the signature is not `v0=<hex>`")?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.signing_secret.expose().as_bytes())
            .map_err(|_| "the signing secret cannot key an HMAC")?;
        mac.update(b"v0:");
        mac.update(ts.as_bytes());
        mac.update(b":");
        mac.update(body);
        mac.verify_slice(&given)
            .map_err(|_| "the signature does not match".to_string())?;
        // Accepted once only: the same signed request again is a replay.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        while seen
            .order
            .front()
            .is_some_and(|(t, _)| *t < now_secs - 2 * MAX_SKEW_SECS)
        {
            if let Some((_, s)) = seen.order.pop_front() {
                seen.set.remove(&s);
            }
        }
        if !seen.set.insert(sig.to_string()) {
            return Err("this signed request was already received: a replay".into());
        }
        seen.order.push_back((ts_num, sig.to_string()));
        Ok(sig.to_string())
    }

    /// Whether a refusal of an unauthenticated request may go on the trail now.
    fn may_record_refusal(&self, now_secs: i64) -> bool {
        let mut r = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        let minute = now_secs / 60;
        if r.0 != minute {
            *r = (minute, 0);
        }
        r.1 += 1;
        r.1 <= REFUSALS_RECORDED_PER_MINUTE
    }
}

/// One button click, as Slack's `block_actions` payload carries it.
struct Click {
    user_id: String,
    user_name: String,
    team: String,
    approve: bool,
    action: String,
}

fn click(body: &[u8]) -> Result<Click, String> {
    let payload = form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or("the body has no `payload` field")?;
    let p: Value =
        serde_json::from_str(&payload).map_err(|e| format!("`payload` is not JSON: {e}"))?;
    if p.get("type").and_then(Value::as_str) != Some("block_actions") {
        return Err(format!(
            "payload type {} is not a button click (block_actions)",
            p.get("type").unwrap_or(&Value::Null)
        ));
    }
    let s = |ptr: &str| p.pointer(ptr).and_then(Value::as_str).map(str::to_string);
    let user_id = s("/user/id").ok_or("the payload has no `user.id`")?;
    let button = s("/actions/0/action_id").ok_or("the payload has no `actions[0].action_id`")?;
    let approve = match button.as_str() {
        APPROVE_BUTTON => true,
        REJECT_BUTTON => false,
        other => return Err(format!("button `{other}` is not riposte's")),
    };
    let action = s("/actions/0/value").ok_or("the button carries no action id")?;
    Ok(Click {
        user_name: s("/user/username")
            .or_else(|| s("/user/name"))
            .unwrap_or_default(),
        team: s("/user/team_id")
            .or_else(|| s("/team/id"))
            .unwrap_or_default(),
        user_id,
        approve,
        action,
    })
}

fn refused(status: StatusCode, message: &str) -> Response {
    error_response(status, message)
}

/// `POST /slack/interactions`.
pub(crate) async fn interactions<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(slack) = state.slack.clone() else {
        return refused(
            StatusCode::NOT_FOUND,
            "Slack approvals are off: the configuration has no `respond: slack:`",
        );
    };
    let now = Timestamp::now();
    let now_secs = now.as_second();
    if let Err(why) = slack.verify(&headers, &body, now_secs) {
        if slack.may_record_refusal(now_secs) {
            let _ = state
                .store
                .audit("slack", "slack.refused", json!({"reason": why}))
                .await;
        }
        tracing::warn!(reason = %why, "refused a Slack interaction");
        return refused(StatusCode::UNAUTHORIZED, &format!("refused: {why}"));
    }
    let c = match click(&body) {
        Ok(c) => c,
        Err(why) => {
            let _ = state
                .store
                .audit("slack", "slack.refused", json!({"reason": why}))
                .await;
            return refused(StatusCode::BAD_REQUEST, &why);
        }
    };
    let who = json!({"slack_user": c.user_id, "slack_name": c.user_name, "team": c.team,
                     "action": c.action, "approve": c.approve});
    let principal = match approver(&state, &slack, &c.user_id).await {
        Ok(p) => p,
        Err(why) => {
            let mut d = who.clone();
            d["reason"] = json!(why);
            let _ = state
                .store
                .audit(&format!("slack:{}", c.user_id), "slack.refused", d)
                .await;
            return refused(StatusCode::FORBIDDEN, &why);
        }
    };
    let Some(r) = state.respond.clone() else {
        return refused(StatusCode::NOT_FOUND, "no response engine");
    };
    let mut d = who.clone();
    d["principal"] = json!(principal);
    let _ = state.store.audit(&principal, "slack.click", d).await;
    // No reason: a click cannot carry one, so a `review` action stays unapproved here.
    match r.answer(&c.action, &principal, c.approve, None, now).await {
        Ok(status) => {
            let word = if c.approve { "Approved" } else { "Rejected" };
            (
                StatusCode::OK,
                axum::Json(json!({"text": format!("{word} by {principal} in riposte"), "status": format!("{status:?}")})),
            )
                .into_response()
        }
        Err(e) => api_error(e).into_response(),
    }
}

/// The riposte principal a Slack user approves as, if it may approve.
async fn approver<S: Store>(
    state: &AppState<S>,
    slack: &SlackApprovals,
    user: &str,
) -> Result<String, String> {
    let Some(name) = slack.users.get(user) else {
        return Err(format!(
            "Slack user {user} is not mapped to a riposte approver (respond: slack: users:)"
        ));
    };
    let tokens = state
        .store
        .tokens()
        .await
        .map_err(|e| format!("cannot read tokens: {e}"))?;
    let may = tokens.iter().any(|t| {
        t.name == *name
            && !t.revoked
            && matches!(Role::parse(&t.role), Some(Role::Approver | Role::Admin))
    });
    if may {
        Ok(name.clone())
    } else {
        Err(format!(
            "Slack user {user} maps to `{name}`, which holds no live token with the approver role"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, ts: i64, body: &str) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
        let mut h = HeaderMap::new();
        h.insert(
            "x-slack-request-timestamp",
            ts.to_string().parse().expect("ts"),
        );
        h.insert("x-slack-signature", sig.parse().expect("sig"));
        h
    }

    #[test]
    fn signatures_timestamps_and_replays() {
        let s = SlackApprovals::new(
            Secret::new("8f742231b10e8888abcd99yyyzzz85a5"),
            BTreeMap::new(),
        );
        let now = 1_700_000_000;
        let body = "payload=%7B%7D";
        let h = signed("8f742231b10e8888abcd99yyyzzz85a5", now - 10, body);
        assert!(s.verify(&h, body.as_bytes(), now).is_ok());
        let e = s.verify(&h, body.as_bytes(), now).expect_err("replay");
        assert!(e.contains("replay"), "{e}");
        let e = s
            .verify(
                &signed("8f742231b10e8888abcd99yyyzzz85a5", now - 301, body),
                body.as_bytes(),
                now,
            )
            .expect_err("stale");
        assert!(e.contains("stale"), "{e}");
        let e = s
            .verify(&signed("another-secret", now, body), body.as_bytes(), now)
            .expect_err("bad signature");
        assert!(e.contains("does not match"), "{e}");
        // The body is signed: changing it breaks the signature.
        let h = signed("8f742231b10e8888abcd99yyyzzz85a5", now - 5, body);
        assert!(s.verify(&h, b"payload=%7B%22x%22%7D", now).is_err());
        assert!(s.verify(&HeaderMap::new(), body.as_bytes(), now).is_err());
    }

    #[test]
    fn a_click_payload_is_read_and_foreign_buttons_refused() {
        let p = json!({"type": "block_actions", "user": {"id": "U1", "username": "bob", "team_id": "T1"},
                       "actions": [{"action_id": "riposte_approve", "value": "act-9", "type": "button"}]});
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &p.to_string())
            .finish();
        let c = click(body.as_bytes()).expect("a click");
        assert!(c.approve && c.action == "act-9" && c.user_id == "U1" && c.user_name == "bob");
        let p = json!({"type": "block_actions", "user": {"id": "U1"},
                       "actions": [{"action_id": "someone_elses", "value": "x"}]});
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &p.to_string())
            .finish();
        assert!(click(body.as_bytes()).is_err());
        assert!(click(b"nothing=here").is_err());
    }

    #[test]
    fn refusals_on_the_trail_are_bounded_per_minute() {
        let s = SlackApprovals::new(Secret::new("k"), BTreeMap::new());
        let n = (0..200).filter(|_| s.may_record_refusal(120)).count();
        assert_eq!(n, REFUSALS_RECORDED_PER_MINUTE as usize);
        assert!(s.may_record_refusal(180));
    }
}
