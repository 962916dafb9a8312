//! Jira Cloud: open an issue for a case, and move it to the done status when the case is
//! closed (or the action is undone).
//!
//! ```yaml
//! name: jira
//! kind: jira
//! base_url: https://corp.atlassian.net          # your site
//! email: soc-bot@corp.example                   # the account the API token belongs to
//! api_token: jira_api_token                     # the name of a stored secret
//! project: SOC                                  # project key
//! issue_type: Task                              # default Task
//! done_status: Done                             # transition or status name; default Done
//! labels: [riposte]                             # added to every issue; optional
//! public_url: https://riposte.corp.example      # links into riposte; optional
//! timeout: 15s                                  # default 30s
//! ```
//!
//! The account needs, in the project: **Browse projects**, **Create issues** and
//! **Transition issues**. Authentication is Basic with the account's email and an API token
//! (id.atlassian.com → Security → API tokens).
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `open_issue` | auto | `close_issue` | `POST /rest/api/3/issue` |
//! | `close_issue` | auto | — | `GET` then `POST /rest/api/3/issue/{key}/transitions` |
//!
//! `open_issue` sends `fields: {project: {key}, issuetype: {name}, summary, description,
//! labels}`; the description is an Atlassian Document Format document (one paragraph per
//! paragraph of text, the link into riposte as a link). Parameters (all optional, see
//! [`crate::ticket`]): `summary`, `description`, `severity`, `tags` (become labels). Every
//! issue opened for a case carries the label `riposte-<case id>`. The undo record keeps
//! the issue's `key` and `id`.
//!
//! `close_issue` closes the issue named by the undo record's or the parameters' `key`; with
//! neither it closes every issue of the run's case that is not done yet, found with
//! `GET /rest/api/3/search/jql?jql=labels = "riposte-<case id>" AND statusCategory != Done`.
//! That makes it a playbook step for a closed case:
//!
//! ```yaml
//! id: close-tickets
//! name: Close the Jira issues of a resolved case
//! on: case.updated
//! if: case.status == "resolved"
//! steps:
//!   - id: close
//!     action: jira.close_issue
//! ```
//!
//! It asks for the issue's transitions and takes the one whose name, or whose target
//! status, is `done_status` (case-insensitive). An issue already in that status, or in the
//! done category, counts as closed, so `close_issue` is idempotent; `open_issue` is not
//! (Jira has no idempotency key for issues), so after a restart between send and answer
//! the engine marks it uncertain rather than opening a second issue. Jira's errors
//! (`{"errorMessages": [...], "errors": {"field": "message"}}`) are quoted in the failure.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::ACCEPT;
use riposte_respond::connector::CallFuture;
use riposte_respond::duration::HumanDuration;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, Auth, Request};
use crate::common::{at, check_name, opt_param, parse, unexpected};
use crate::ticket::{Brief, brief, clip, public_url};

pub const KIND: &str = "jira";

const OPEN: &str = "open_issue";
const CLOSE: &str = "close_issue";
/// Jira's limit on `summary`.
const SUMMARY_MAX: usize = 255;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    base_url: String,
    email: String,
    /// The name of the secret holding the API token.
    api_token: String,
    project: String,
    #[serde(default)]
    issue_type: Option<String>,
    #[serde(default)]
    done_status: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured Jira Cloud project.
#[derive(Debug)]
pub struct Jira {
    name: String,
    api: Api,
    project: String,
    issue_type: String,
    done_status: String,
    labels: Vec<String>,
    public_url: Option<String>,
    ops: Vec<OperationSpec>,
}

/// Jira labels cannot hold spaces.
fn label_ok(l: &str) -> bool {
    !l.is_empty() && !l.contains(char::is_whitespace)
}

/// The label every issue opened for `case_id` carries.
pub fn case_label(case_id: &str) -> String {
    format!("riposte-{}", case_id.replace(char::is_whitespace, "-"))
}

/// Loads a `kind: jira` definition.
pub fn load(file: &str, text: &str, secrets: Arc<dyn SecretSource>) -> Result<Jira, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    if raw.email.trim().is_empty() {
        return Err(at(file, text, "email:", "`email` is empty"));
    }
    let project_ok = !raw.project.is_empty()
        && raw
            .project
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !project_ok {
        return Err(at(
            file,
            text,
            "project:",
            format!(
                "`project` `{}` is not a project key (letters, digits, _)",
                raw.project
            ),
        ));
    }
    if let Some(bad) = raw.labels.iter().find(|l| !label_ok(l)) {
        return Err(at(
            file,
            text,
            "labels:",
            format!("label `{bad}`: Jira labels are non-empty and without spaces"),
        ));
    }
    let public_url =
        public_url(raw.public_url.as_deref()).map_err(|m| at(file, text, "public_url:", m))?;
    let auth = Auth::Basic {
        username: raw.email,
        secret: raw.api_token,
    };
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let api = Api::new(&raw.name, &raw.base_url, timeout, auth, secrets)
        .map_err(|m| at(file, text, "base_url:", m))?
        .with_error_reader(jira_error);
    Ok(Jira {
        name: raw.name,
        api,
        project: raw.project,
        issue_type: raw.issue_type.unwrap_or_else(|| "Task".into()),
        done_status: raw.done_status.unwrap_or_else(|| "Done".into()),
        labels: raw.labels,
        public_url,
        ops: vec![
            OperationSpec {
                name: OPEN.into(),
                class: Class::Auto,
                inverse: Some(CLOSE.into()),
                irreversible: false,
                idempotent: false,
            },
            OperationSpec {
                name: CLOSE.into(),
                class: Class::Auto,
                inverse: None,
                irreversible: false,
                idempotent: true,
            },
        ],
    })
}

/// Jira's error body: `errorMessages` and the per-field `errors`, as one line.
fn jira_error(body: &Value) -> Option<String> {
    let mut parts: Vec<String> = body
        .get("errorMessages")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(fields) = body.get("errors").and_then(Value::as_object) {
        for (k, v) in fields {
            parts.push(format!("{k}: {}", v.as_str().unwrap_or(&v.to_string())));
        }
    }
    (!parts.is_empty()).then(|| format!("Jira says: {}", parts.join("; ")))
}

/// An Atlassian Document Format document: one paragraph per paragraph, then the link.
fn adf(b: &Brief) -> Value {
    let mut content: Vec<Value> = b
        .paragraphs
        .iter()
        .map(|p| json!({"type": "paragraph", "content": [{"type": "text", "text": p}]}))
        .collect();
    if let Some(u) = &b.case_url {
        content.push(json!({"type": "paragraph", "content": [
            {"type": "text", "text": "In riposte: "},
            {"type": "text", "text": u, "marks": [{"type": "link", "attrs": {"href": u}}]}
        ]}));
    }
    json!({"type": "doc", "version": 1, "content": content})
}

/// A REST v3 request, answered in JSON.
fn rest(method: Method, path: impl Into<String>) -> Request {
    Request::new(method, path).header(ACCEPT, "application/json")
}

/// An issue key or id fit for a path: `SOC-42` or `10042`.
fn check_key(key: &str) -> Result<&str, ConnectorError> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(key)
    } else {
        Err(ConnectorError::Config {
            message: format!("`{key}` is not a Jira issue key"),
        })
    }
}

impl Jira {
    async fn open(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let b = brief(req, self.public_url.as_deref())?;
        let mut labels = self.labels.clone();
        for t in &b.tags {
            labels.push(t.replace(char::is_whitespace, "-"));
        }
        if let Some(id) = &b.case_id {
            labels.push(case_label(id));
        }
        labels.retain(|l| !l.is_empty());
        labels.dedup();
        let body = json!({"fields": {
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": clip(&b.title, SUMMARY_MAX),
            "description": adf(&b),
            "labels": labels,
        }});
        let r = rest(Method::POST, "/rest/api/3/issue").json(body);
        let reply = self.api.send(&r, req.timeout).await?;
        let (Some(key), Some(id)) = (
            reply.body.get("key").and_then(Value::as_str),
            reply.body.get("id").and_then(Value::as_str),
        ) else {
            return Err(unexpected(
                &self.name,
                "Jira's answer to the new issue has no `key` and `id`",
                &reply.body,
            ));
        };
        let undo = json!({"key": key, "id": id});
        let mut fields = serde_json::Map::new();
        fields.insert("key".into(), json!(key));
        fields.insert("id".into(), json!(id));
        fields.insert(
            "url".into(),
            json!(format!("{}/browse/{key}", self.api.base_url())),
        );
        Ok(CallOutcome {
            fields,
            undo,
            status: Some(reply.status),
        })
    }

    /// The issues `close_issue` acts on: the named one, else the open ones of the case.
    async fn targets(&self, req: &CallRequest) -> Result<Vec<String>, ConnectorError> {
        if let Some(k) = opt_param(req, "key") {
            return Ok(vec![check_key(k)?.to_string()]);
        }
        let Some(case) = req.context.pointer("/case/id").and_then(Value::as_str) else {
            return Err(ConnectorError::Config {
                message: format!(
                    "operation `{}` needs `key` (the issue key) when the run has no case",
                    req.operation
                ),
            });
        };
        let label = case_label(case).replace('\\', "\\\\").replace('"', "\\\"");
        let q = rest(Method::GET, "/rest/api/3/search/jql")
            .query(
                "jql",
                format!("labels = \"{label}\" AND statusCategory != Done"),
            )
            .query("fields", "key")
            .query("maxResults", "50");
        let reply = self.api.send(&q, req.timeout).await?;
        let issues = reply
            .body
            .get("issues")
            .and_then(Value::as_array)
            .ok_or_else(|| unexpected(&self.name, "the search has no `issues`", &reply.body))?;
        issues
            .iter()
            .map(|i| {
                i.get("key")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| unexpected(&self.name, "an issue found has no `key`", i))
            })
            .collect()
    }

    async fn close(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let keys = self.targets(req).await?;
        let mut status = None;
        for key in &keys {
            status = Some(self.transition(key, req.timeout).await?);
        }
        let fields = serde_json::Map::from_iter([("closed".to_string(), json!(keys))]);
        Ok(CallOutcome {
            undo: Value::Object(fields.clone()),
            fields,
            status,
        })
    }

    /// Moves `key` to the done status; an issue already there is left alone.
    async fn transition(&self, key: &str, deadline: Duration) -> Result<u16, ConnectorError> {
        let path = format!("/rest/api/3/issue/{key}/transitions");
        let reply = self
            .api
            .send(&rest(Method::GET, path.clone()), deadline)
            .await?;
        let list = reply
            .body
            .get("transitions")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                unexpected(
                    &self.name,
                    "the transitions answer has no `transitions`",
                    &reply.body,
                )
            })?;
        let done = &self.done_status;
        let matches = |t: &&Value| {
            let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
            let to = t
                .pointer("/to/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            name.eq_ignore_ascii_case(done) || to.eq_ignore_ascii_case(done)
        };
        if let Some(id) = list
            .iter()
            .find(matches)
            .and_then(|t| t.get("id"))
            .and_then(Value::as_str)
        {
            let post = rest(Method::POST, path).json(json!({"transition": {"id": id}}));
            return Ok(self.api.send(&post, deadline).await?.status);
        }
        // No way to `done` from here: fine when the issue is already done.
        let r = rest(Method::GET, format!("/rest/api/3/issue/{key}")).query("fields", "status");
        let issue = self.api.send(&r, deadline).await?;
        let status = issue
            .body
            .pointer("/fields/status/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let category = issue
            .body
            .pointer("/fields/status/statusCategory/key")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if status.eq_ignore_ascii_case(done) || category == "done" {
            return Ok(issue.status);
        }
        let names: Vec<&str> = list
            .iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .collect();
        Err(ConnectorError::Rejected {
            status: Some(reply.status),
            message: format!(
                "{}: issue {key} is `{status}` and no transition leads to `{done}` (it offers: {}); set `done_status`",
                self.name,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        })
    }

    async fn act(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        match req.operation.as_str() {
            OPEN => self.open(req).await,
            CLOSE => self.close(req).await,
            other => Err(ConnectorError::UnknownOperation {
                connector: self.name.clone(),
                operation: other.into(),
            }),
        }
    }
}

impl Connector for Jira {
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
        Box::pin(self.act(req))
    }
}
