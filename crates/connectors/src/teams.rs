//! Microsoft Teams through a workflow webhook: post an Adaptive Card about the case to a
//! channel or chat, with buttons that open riposte where the waiting action is.
//!
//! ```yaml
//! name: teams
//! kind: teams
//! webhook_url: teams_soc_webhook              # the name of a stored secret holding the URL
//! public_url: https://riposte.corp.example    # for the buttons; optional
//! timeout: 10s                                # default 30s
//! ```
//!
//! The URL comes from a Power Automate flow started by **"When a Teams webhook request is
//! received"** and followed by **"Post card in a chat or channel"** (the Teams "Workflows"
//! app's template *Post to a channel when a webhook request is received*); whoever holds the
//! URL can post, so the URL itself is the secret, read only when a call is made and never
//! put in an error. No other permission is needed.
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `notify` | auto | — | `POST <webhook URL>` |
//!
//! The body is `{"type": "message", "attachments": [{"contentType":
//! "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <card>}]}` with
//! an Adaptive Card 1.4: a title, the message (the `notify:` step's `message`, or the
//! parameter `description`, else the text built from the case), a fact set (case, tier,
//! risk, status, tactics, severity, playbook, run) and, with `public_url`, two
//! `Action.OpenUrl` buttons: **Review the action** (`<public_url>/api/v1/actions/<id>` for
//! the parameter `action_id`, else the case's actions awaiting approval,
//! `<public_url>/api/v1/actions?case=<case id>&state=awaiting_approval`) and **Open the
//! case**. Approving takes an approver's token (`POST /api/v1/actions/{id}/approve` or
//! `riposte actions approve`): a card is a way in, never a way around policy.
//!
//! The flow answers `202 Accepted`. A message cannot be unsent: `notify` has no inverse and
//! is not repeated by the engine after an unanswered call. Errors keep only the flow's error
//! `code` (`WorkflowNotFound`, `DirectApiAuthorizationRequired`, …), never its message,
//! which may quote the URL.

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
use crate::ticket::{brief, clip, scrub};

pub const KIND: &str = "teams";

const NOTIFY: &str = "notify";
/// What errors show instead of the webhook URL.
const PLACEHOLDER: &str = "(webhook)";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    /// The name of the secret holding the workflow's URL.
    webhook_url: String,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured Teams workflow webhook.
pub struct Teams {
    name: String,
    api: Api,
    webhook_url: String,
    secrets: Arc<dyn SecretSource>,
    public_url: Option<String>,
    ops: Vec<OperationSpec>,
}

impl std::fmt::Debug for Teams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teams")
            .field("name", &self.name)
            .field("webhook_url", &self.webhook_url)
            .finish_non_exhaustive()
    }
}

/// Loads a `kind: teams` definition.
pub fn load(file: &str, text: &str, secrets: Arc<dyn SecretSource>) -> Result<Teams, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    if raw.webhook_url.contains("://") {
        return Err(at(
            file,
            text,
            "webhook_url:",
            "`webhook_url` names a secret; store the URL with `riposte secret set` and give its name here",
        ));
    }
    if raw.webhook_url.trim().is_empty() {
        return Err(at(file, text, "webhook_url:", "`webhook_url` is empty"));
    }
    let public_url = crate::ticket::public_url(raw.public_url.as_deref())
        .map_err(|m| at(file, text, "public_url:", m))?;
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    // The base URL is never used: every request carries the secret URL whole.
    let api = Api::new(
        &raw.name,
        "https://invalid",
        timeout,
        Auth::None,
        secrets.clone(),
    )
    .map_err(|m| at(file, text, "webhook_url:", m))?
    .with_error_reader(flow_error);
    Ok(Teams {
        name: raw.name,
        api,
        webhook_url: raw.webhook_url,
        secrets,
        public_url,
        ops: vec![OperationSpec {
            name: NOTIFY.into(),
            class: Class::Auto,
            inverse: None,
            irreversible: false,
            idempotent: false,
        }],
    })
}

/// A Power Automate error: `{"error": {"code": ..., "message": ...}}`; only the code.
fn flow_error(body: &Value) -> Option<String> {
    body.pointer("/error/code")
        .and_then(Value::as_str)
        .map(|c| format!("the workflow says: {c}"))
        .or(Some("the workflow refused the card".into()))
}

/// The Adaptive Card for `req`.
pub fn card(req: &CallRequest, public_url: Option<&str>) -> Result<Value, ConnectorError> {
    let b = brief(req, public_url)?;
    let message = opt_param(req, "message")
        .map(str::to_string)
        .unwrap_or_else(|| b.paragraphs.join("\n\n"));
    let facts: Vec<Value> = b
        .facts
        .iter()
        .map(|(k, v)| json!({"title": k, "value": v}))
        .collect();
    let mut body = vec![
        json!({"type": "TextBlock", "text": clip(&b.title, 300), "weight": "Bolder", "size": "Medium", "wrap": true}),
        json!({"type": "TextBlock", "text": clip(&message, 4000), "wrap": true}),
    ];
    if !facts.is_empty() {
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    let mut actions = Vec::new();
    if let Some(base) = public_url {
        let review = match (opt_param(req, "action_id"), &b.case_id) {
            (Some(a), _) => Some(format!("{base}/api/v1/actions/{}", url_path(a))),
            (None, Some(c)) => Some(format!(
                "{base}/api/v1/actions?case={}&state=awaiting_approval",
                url_path(c)
            )),
            (None, None) => None,
        };
        if let Some(u) = review {
            actions.push(json!({"type": "Action.OpenUrl", "title": "Review the action", "url": u}));
        }
        if let Some(u) = &b.case_url {
            actions.push(json!({"type": "Action.OpenUrl", "title": "Open the case", "url": u}));
        }
    }
    let mut content = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if !actions.is_empty() {
        content["actions"] = json!(actions);
    }
    Ok(json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": content,
        }]
    }))
}

/// Percent-encodes what is not safe in a path segment or query value.
fn url_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The `sig` of a workflow URL: the part that grants the right to post.
fn signature(url: &str) -> &str {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix("sig="))
        .unwrap_or_default()
}

impl Teams {
    async fn notify(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        if req.operation != NOTIFY {
            return Err(ConnectorError::UnknownOperation {
                connector: self.name.clone(),
                operation: req.operation.clone(),
            });
        }
        let body = card(req, self.public_url.as_deref())?;
        let url = self.secrets.secret(&self.webhook_url)?;
        let url = url.expose().trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConnectorError::Secret {
                message: format!("secret `{}` does not hold an http(s) URL", self.webhook_url),
            });
        }
        let mut r = Request::new(Method::POST, PLACEHOLDER).json(body);
        r.full_url = Some(url.to_string());
        let reply = self
            .api
            .send(&r, req.timeout)
            .await
            .map_err(|e| scrub(scrub(e, url), signature(url)))?;
        let fields = serde_json::Map::from_iter([("posted".to_string(), json!(true))]);
        Ok(CallOutcome {
            undo: Value::Null,
            fields,
            status: Some(reply.status),
        })
    }
}

impl Connector for Teams {
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
        Box::pin(self.notify(req))
    }
}
