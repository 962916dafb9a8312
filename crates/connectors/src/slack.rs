//! Slack: messages to a channel, and approval requests with Approve / Reject buttons whose
//! clicks come back to riposte (`POST /slack/interactions`, checked by the server against
//! Slack's request signature).
//!
//! ```yaml
//! name: slack
//! kind: slack
//! token: slack_bot_token          # the name of a stored secret holding the bot token (xoxb-…)
//! channel: C0123456789            # where messages go unless a step names another
//! public_url: https://riposte.corp.example   # optional: links to actions in messages
//! base_url: https://slack.com/api # default
//! timeout: 10s                    # default 30s
//! ```
//!
//! The Slack app needs the bot scope **`chat:write`** (and the bot invited to the channel),
//! and **Interactivity** turned on with the request URL `https://<riposte>/slack/interactions`;
//! riposte checks each click with the app's **signing secret** (see `respond: slack:` in the
//! configuration and docs/connectors.md).
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `notify` | auto | `delete_message` | `POST /chat.postMessage` `{channel, text}` |
//! | `request_approval` | auto | `delete_message` | `POST /chat.postMessage` with blocks: what waits, the buttons |
//! | `delete_message` | auto | — | `POST /chat.delete` `{channel, ts}` |
//!
//! The undo record keeps `channel` and `ts`, so a message can be taken back. Slack answers
//! `200` with `{"ok": false, "error": "…"}` for most failures: `ratelimited` is a rate limit,
//! `internal_error`, `fatal_error`, `service_unavailable` and `request_timeout` are worth
//! another try, anything else (`invalid_auth`, `channel_not_found`, …) is a refusal.
//! `chat.postMessage` has no idempotency key, so a failed post is not retried; deleting a
//! message that is already gone succeeds.
//!
//! An approval for a `review` operation needs a written reason, which a button cannot give:
//! its message has only Reject, and says how to approve with a reason.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use riposte_respond::connector::CallFuture;
use riposte_respond::duration::HumanDuration;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, Auth, Request};
use crate::common::{at, check_name, opt_param, parse};

pub const KIND: &str = "slack";

/// The `action_id`s of the buttons; the server's interaction route knows them.
pub const APPROVE_BUTTON: &str = "riposte_approve";
pub const REJECT_BUTTON: &str = "riposte_reject";

const DEFAULT_BASE_URL: &str = "https://slack.com/api";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    /// The name of the secret holding the bot token.
    token: String,
    channel: String,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured Slack workspace and channel.
#[derive(Debug)]
pub struct Slack {
    name: String,
    api: Api,
    channel: String,
    public_url: Option<String>,
    ops: Vec<OperationSpec>,
}

fn spec(name: &str, inverse: Option<&str>, idempotent: bool) -> OperationSpec {
    OperationSpec {
        name: name.into(),
        class: Class::Auto,
        inverse: inverse.map(Into::into),
        irreversible: false,
        idempotent,
    }
}

/// Loads a `kind: slack` definition.
pub fn load(file: &str, text: &str, secrets: Arc<dyn SecretSource>) -> Result<Slack, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    if raw.channel.trim().is_empty() {
        return Err(at(file, text, "channel:", "`channel` is empty"));
    }
    if let Some(u) = &raw.public_url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(at(
            file,
            text,
            "public_url:",
            format!("public_url `{u}` must start with https://"),
        ));
    }
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let api = Api::new(
        &raw.name,
        raw.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
        timeout,
        Auth::Bearer { secret: raw.token },
        secrets,
    )
    .map_err(|m| at(file, text, "base_url:", m))?;
    Ok(Slack {
        name: raw.name,
        api,
        channel: raw.channel,
        public_url: raw.public_url.map(|u| u.trim_end_matches('/').to_string()),
        ops: vec![
            spec("notify", Some("delete_message"), false),
            spec("request_approval", Some("delete_message"), false),
            spec("delete_message", None, true),
        ],
    })
}

/// Escapes text for Slack's mrkdwn (`&`, `<`, `>` are its control characters).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Slack {
    /// The blocks of an approval request: what waits and why, then the buttons.
    fn approval_blocks(&self, action: &Value, message: &str) -> Value {
        let s = |k: &str| action.get(k).and_then(Value::as_str).unwrap_or_default();
        let id = s("id");
        let mut lines = vec![format!("*Approval needed:* `{}`", escape(s("what")))];
        if let Some(case) = action.get("case_id").and_then(Value::as_str) {
            lines.push(format!("Case: `{}`", escape(case)));
        }
        if let Some(p) = action.get("params").filter(|p| !p.is_null()) {
            let mut text = p.to_string();
            if text.len() > 1500 {
                text = text.chars().take(1500).collect::<String>() + "…";
            }
            lines.push(format!("Parameters: `{}`", escape(&text)));
        }
        lines.push(format!("Requested by: {}", escape(s("requested_by"))));
        if let Some(d) = action.get("deadline").and_then(Value::as_str) {
            lines.push(format!("Denied unless answered by {}", escape(d)));
        }
        if let Some(q) = action
            .get("quorum")
            .and_then(Value::as_u64)
            .filter(|q| *q > 1)
        {
            lines.push(format!("Needs {q} approvers"));
        }
        let reason_required = action
            .get("reason_required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if reason_required {
            lines.push(format!(
                "This needs a written reason: approve with `riposte actions approve {} --reason \"…\"`",
                escape(id)
            ));
        }
        if let Some(u) = &self.public_url {
            lines.push(format!(
                "<{u}/api/v1/actions/{}|Open in riposte>",
                escape(id)
            ));
        }
        let mut buttons = Vec::new();
        if !reason_required {
            buttons.push(json!({
                "type": "button", "action_id": APPROVE_BUTTON, "style": "primary",
                "text": {"type": "plain_text", "text": "Approve"}, "value": id,
            }));
        }
        buttons.push(json!({
            "type": "button", "action_id": REJECT_BUTTON, "style": "danger",
            "text": {"type": "plain_text", "text": "Reject"}, "value": id,
        }));
        json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}},
            {"type": "context", "elements": [{"type": "plain_text", "text": message}]},
            {"type": "actions", "block_id": format!("riposte:{id}"), "elements": buttons},
        ])
    }

    async fn post(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let channel = opt_param(req, "channel")
            .unwrap_or(&self.channel)
            .to_string();
        let message = req
            .params
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut body = json!({"channel": channel, "text": message, "unfurl_links": false});
        if req.operation == "request_approval" {
            let action = req.params.get("action").cloned().unwrap_or(Value::Null);
            if action.get("id").and_then(Value::as_str).is_none() {
                return Err(ConnectorError::Config {
                    message: "request_approval needs `action.id`".into(),
                });
            }
            body["blocks"] = self.approval_blocks(&action, message);
        } else if message.is_empty() {
            return Err(ConnectorError::Config {
                message: "notify needs a non-empty `message`".into(),
            });
        }
        let answer = self.slack("/chat.postMessage", body, req.timeout).await?;
        let ts = answer.get("ts").and_then(Value::as_str).unwrap_or_default();
        let channel = answer
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or(&channel);
        let fields = serde_json::Map::from_iter([
            ("channel".to_string(), json!(channel)),
            ("ts".to_string(), json!(ts)),
        ]);
        Ok(CallOutcome {
            undo: Value::Object(fields.clone()),
            fields,
            status: Some(200),
        })
    }

    async fn delete(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let (Some(channel), Some(ts)) = (opt_param(req, "channel"), opt_param(req, "ts")) else {
            return Err(ConnectorError::Config {
                message: "delete_message needs `channel` and `ts` (the message's undo record)"
                    .into(),
            });
        };
        let body = json!({"channel": channel, "ts": ts});
        match self.slack("/chat.delete", body, req.timeout).await {
            Ok(_) => {}
            // Already gone is what we wanted.
            Err(ConnectorError::Rejected { message, .. })
                if message.ends_with("message_not_found") => {}
            Err(e) => return Err(e),
        }
        Ok(CallOutcome {
            fields: serde_json::Map::from_iter([
                ("channel".to_string(), json!(channel)),
                ("ts".to_string(), json!(ts)),
            ]),
            undo: Value::Null,
            status: Some(200),
        })
    }

    /// One Web API call; `{"ok": false}` becomes the error its `error` code means.
    async fn slack(
        &self,
        method: &str,
        body: Value,
        deadline: Duration,
    ) -> Result<Value, ConnectorError> {
        let r = Request::new(Method::POST, method).json(body);
        let reply = self.api.send(&r, deadline).await?;
        if reply.body.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(reply.body);
        }
        let code = reply
            .body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no error code");
        let message = format!("{}: Slack {method} refused: {code}", self.name);
        Err(match code {
            "ratelimited" => ConnectorError::RateLimited {
                retry_after_secs: None,
            },
            "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
                ConnectorError::Transient { message }
            }
            _ => ConnectorError::Rejected {
                status: Some(reply.status),
                message,
            },
        })
    }
}

impl Connector for Slack {
    fn name(&self) -> &str {
        &self.name
    }

    fn operations(&self) -> &[OperationSpec] {
        &self.ops
    }

    fn sends_idempotency_key(&self, _operation: &str) -> bool {
        false
    }

    fn call<'a>(&'a self, req: &'a CallRequest) -> CallFuture<'a> {
        Box::pin(async move {
            match req.operation.as_str() {
                "notify" | "request_approval" => self.post(req).await,
                "delete_message" => self.delete(req).await,
                other => Err(ConnectorError::UnknownOperation {
                    connector: self.name.clone(),
                    operation: other.into(),
                }),
            }
        })
    }
}
