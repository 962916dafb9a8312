//! Jira Cloud against a stand-in that checks requests as Jira's REST API v3 documents them:
//! Basic auth with email and API token, the issue's fields with an Atlassian Document Format
//! description, the search by the case's label, transitions, and Jira's error shapes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Answer, Seen, StandIn};
use riposte_connectors::jira;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError, Templates};
use serde_json::{Value, json};

const TOKEN: &str = "ATATT3xJiraT0ken";
/// base64("soc-bot@corp.example:ATATT3xJiraT0ken")
const BASIC: &str = "Basic c29jLWJvdEBjb3JwLmV4YW1wbGU6QVRBVFQzeEppcmFUMGtlbg==";

fn secrets() -> Arc<StaticSecrets> {
    common::secrets(&[("jira_token", TOKEN)])
}

fn jira_at(url: &str) -> Arc<dyn Connector> {
    let text = format!(
        "name: jira\nkind: jira\nbase_url: {url}\nemail: soc-bot@corp.example\napi_token: jira_token\nproject: SOC\nlabels: [riposte]\npublic_url: https://riposte.corp.example/\ntimeout: 5s\n"
    );
    Arc::new(jira::load("jira.yaml", &text, secrets()).expect("loads"))
}

fn context() -> Value {
    json!({
        "case": {"id": "case-0c41e2", "status": "open", "tier": "high", "risk": 82,
                 "tactics": ["credential-access"],
                 "entities": [{"type": "host", "role": "target", "value": "ws-042.corp.example"}]},
        "alert": null,
        "playbook": {"id": "ticket", "name": "Open a ticket", "version": 1},
        "run": {"id": "run-7"}
    })
}

fn call(op: &str, params: Value, undo: Value) -> CallRequest {
    CallRequest {
        action_id: "act-1".into(),
        idempotency_key: "act-1".into(),
        operation: op.into(),
        params,
        undo,
        context: context(),
        timeout: Duration::from_secs(5),
    }
}

fn jira_error(status: u16, messages: Value, errors: Value) -> Answer {
    Answer::json(status, json!({"errorMessages": messages, "errors": errors}))
}

/// Answers like Jira Cloud for issues SOC-42 (open, "Done" reachable) and SOC-43 (already
/// done), and refuses anything not shaped as documented.
fn vendor(req: &Seen, _n: usize) -> Answer {
    if req.header("authorization") != Some(BASIC) {
        return Answer::text(
            401,
            "text/plain;charset=UTF-8",
            "Client must be authenticated to access this resource.",
        );
    }
    assert_eq!(
        req.header("accept"),
        Some("application/json"),
        "{} {}",
        req.method,
        req.path
    );
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/rest/api/3/issue") => {
            assert_eq!(req.header("content-type"), Some("application/json"));
            let body = req.json();
            if body.pointer("/fields/summary").is_none() {
                return jira_error(
                    400,
                    json!([]),
                    json!({"summary": "You must specify a summary of the issue."}),
                );
            }
            Answer::json(
                201,
                json!({"id": "10042", "key": "SOC-42", "self": "https://corp.atlassian.net/rest/api/3/issue/10042"}),
            )
        }
        ("GET", "/rest/api/3/search/jql") => {
            let q = req.query_pairs();
            assert_eq!(q.get("fields").map(String::as_str), Some("key"));
            let issues = if q.get("jql").map(String::as_str)
                == Some("labels = \"riposte-case-0c41e2\" AND statusCategory != Done")
            {
                json!([{"id": "10042", "key": "SOC-42"}, {"id": "10043", "key": "SOC-43"}])
            } else {
                json!([])
            };
            Answer::json(200, json!({"issues": issues, "isLast": true}))
        }
        ("GET", "/rest/api/3/issue/SOC-42/transitions") => Answer::json(
            200,
            json!({"transitions": [
                {"id": "21", "name": "Start work", "to": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}}},
                {"id": "31", "name": "Resolve", "to": {"name": "Done", "statusCategory": {"key": "done"}}}
            ]}),
        ),
        ("GET", "/rest/api/3/issue/SOC-43/transitions") => Answer::json(
            200,
            json!({"transitions": [{"id": "11", "name": "Reopen", "to": {"name": "To Do"}}]}),
        ),
        ("GET", "/rest/api/3/issue/SOC-43") => {
            assert_eq!(req.query, "fields=status");
            Answer::json(
                200,
                json!({"id": "10043", "key": "SOC-43", "fields": {"status": {"name": "Done", "statusCategory": {"key": "done"}}}}),
            )
        }
        ("GET", "/rest/api/3/issue/SOC-44/transitions") => Answer::json(
            200,
            json!({"transitions": [{"id": "11", "name": "Send back", "to": {"name": "To Do"}}]}),
        ),
        ("GET", "/rest/api/3/issue/SOC-44") => Answer::json(
            200,
            json!({"id": "10044", "key": "SOC-44", "fields": {"status": {"name": "In Review", "statusCategory": {"key": "indeterminate"}}}}),
        ),
        ("POST", "/rest/api/3/issue/SOC-42/transitions") => {
            if req.json() != json!({"transition": {"id": "31"}}) {
                return jira_error(400, json!(["Transition id is not valid."]), json!({}));
            }
            Answer::empty(204)
        }
        ("GET", "/rest/api/3/issue/SOC-999/transitions") => jira_error(
            404,
            json!(["Issue does not exist or you do not have permission to see it."]),
            json!({}),
        ),
        _ => jira_error(404, json!(["no such resource"]), json!({})),
    }
}

#[tokio::test]
async fn open_an_issue_then_close_it_with_the_undo_record() {
    let s = StandIn::start(vendor).await;
    let c = jira_at(&s.url);
    let spec = c.operation("open_issue").expect("open_issue");
    assert_eq!(spec.inverse.as_deref(), Some("close_issue"));
    assert_eq!(spec.class, riposte_respond::Class::Auto);
    assert!(!spec.idempotent);
    assert!(c.operation("close_issue").expect("close").idempotent);

    let out = c
        .call(&call(
            "open_issue",
            json!({"tags": ["phishing"]}),
            json!(null),
        ))
        .await
        .expect("opened");
    assert_eq!(out.status, Some(201));
    assert_eq!(out.undo, json!({"key": "SOC-42", "id": "10042"}));
    assert_eq!(out.fields["url"], format!("{}/browse/SOC-42", s.url));

    let seen = s.seen();
    assert_eq!(
        seen[0].json(),
        json!({"fields": {
            "project": {"key": "SOC"},
            "issuetype": {"name": "Task"},
            "summary": "riposte case-0c41e2 (high, risk 82): ws-042.corp.example",
            "description": {"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [{"type": "text", "text":
                    "case: case-0c41e2; tier: high; status: open; risk: 82/100; tactics: credential-access; severity: high; playbook: Open a ticket; run: run-7"}]},
                {"type": "paragraph", "content": [{"type": "text", "text": "Entities: host ws-042.corp.example (target)"}]},
                {"type": "paragraph", "content": [
                    {"type": "text", "text": "In riposte: "},
                    {"type": "text", "text": "https://riposte.corp.example/api/v1/cases/case-0c41e2",
                     "marks": [{"type": "link", "attrs": {"href": "https://riposte.corp.example/api/v1/cases/case-0c41e2"}}]}
                ]}
            ]},
            "labels": ["riposte", "phishing", "riposte-case-0c41e2"]
        }})
    );

    let undone = c
        .call(&call("close_issue", json!({}), out.undo))
        .await
        .expect("closed");
    assert_eq!(undone.fields["closed"], json!(["SOC-42"]));
    let lines: Vec<String> = s
        .seen()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        lines,
        [
            "POST /rest/api/3/issue",
            // The inverse acts on the stored key: no search.
            "GET /rest/api/3/issue/SOC-42/transitions",
            "POST /rest/api/3/issue/SOC-42/transitions",
        ]
    );
}

#[tokio::test]
async fn closing_a_case_closes_its_open_issues_found_by_label() {
    let s = StandIn::start(vendor).await;
    let c = jira_at(&s.url);
    let out = c
        .call(&call("close_issue", json!({}), json!(null)))
        .await
        .expect("closed");
    // SOC-43 offers no way to Done because it is already there: closed all the same.
    assert_eq!(out.fields["closed"], json!(["SOC-42", "SOC-43"]));
    let lines: Vec<String> = s
        .seen()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        lines,
        [
            "GET /rest/api/3/search/jql",
            "GET /rest/api/3/issue/SOC-42/transitions",
            "POST /rest/api/3/issue/SOC-42/transitions",
            "GET /rest/api/3/issue/SOC-43/transitions",
            "GET /rest/api/3/issue/SOC-43",
        ]
    );
}

#[tokio::test]
async fn an_issue_with_no_way_to_done_is_a_clear_failure() {
    let s = StandIn::start(vendor).await;
    let c = jira_at(&s.url);
    let e = c
        .call(&call("close_issue", json!({"key": "SOC-44"}), json!(null)))
        .await
        .expect_err("stuck");
    let m = e.to_string();
    assert!(m.contains("SOC-44 is `In Review`"), "{m}");
    assert!(m.contains("it offers: Send back"), "{m}");
    assert!(!e.retryable());
    let e = c
        .call(&call(
            "close_issue",
            json!({"key": "SOC-1/../x"}),
            json!(null),
        ))
        .await
        .expect_err("not a key");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");
}

#[tokio::test]
async fn jira_errors_are_read_and_classified_without_the_token() {
    let s = StandIn::start(|req, _| match req.path.as_str() {
        "/rest/api/3/issue" => jira_error(
            400,
            json!([]),
            json!({"issuetype": "Specify a valid issue type"}),
        ),
        "/rest/api/3/issue/SOC-999/transitions" => jira_error(
            404,
            json!(["Issue does not exist or you do not have permission to see it."]),
            json!({}),
        ),
        "/rest/api/3/issue/SOC-RATE/transitions" => {
            Answer::text(429, "text/plain", "Rate limit exceeded").with_header("Retry-After", "7")
        }
        _ => Answer::text(503, "text/html", "<html>Service Unavailable</html>"),
    })
    .await;
    let c = jira_at(&s.url);
    let mut errors = Vec::new();

    let e = c
        .call(&call("open_issue", json!({}), json!(null)))
        .await
        .expect_err("400");
    assert_eq!(
        e.to_string(),
        "jira: POST /rest/api/3/issue answered 400: Jira says: issuetype: Specify a valid issue type"
    );
    errors.push(e);
    let e = c
        .call(&call("close_issue", json!({"key": "SOC-999"}), json!(null)))
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
    assert!(e.to_string().contains("Issue does not exist"), "{e}");
    errors.push(e);
    let e = c
        .call(&call(
            "close_issue",
            json!({"key": "SOC-RATE"}),
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
        .call(&call("close_issue", json!({"key": "SOC-1"}), json!(null)))
        .await
        .expect_err("503");
    assert!(e.retryable(), "{e:?}");
    errors.push(e);

    // A wrong token: Jira's 401 is plain text.
    let s2 = StandIn::start(vendor).await;
    let text = format!(
        "name: jira\nkind: jira\nbase_url: {}\nemail: someone-else@corp.example\napi_token: jira_token\nproject: SOC\n",
        s2.url
    );
    let wrong = jira::load("jira.yaml", &text, secrets()).expect("loads");
    let e = wrong
        .call(&call("open_issue", json!({}), json!(null)))
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
    assert!(e.to_string().contains("must be authenticated"), "{e}");
    errors.push(e);

    for e in &errors {
        let m = format!("{e} {e:?}");
        assert!(!m.contains(TOKEN), "the token leaked: {m}");
        assert!(!m.contains(&BASIC[6..]), "the credentials leaked: {m}");
    }
}

#[test]
fn bad_definitions_name_the_field() {
    let load = |t: &str| jira::load("j.yaml", t, secrets()).expect_err(t);
    let base = "name: jira\nkind: jira\nbase_url: https://corp.atlassian.net\napi_token: t\n";
    let e = load(&format!("{base}project: SOC\n"));
    assert!(e.to_string().contains("email"), "{e}");
    let e = load(&format!("{base}email: a@b\nproject: \"SO C\"\n"));
    assert!(e.to_string().contains("project"), "{e}");
    assert_eq!(e.line, 6, "{e}");
    let e = load(&format!(
        "{base}email: a@b\nproject: SOC\nlabels: [\"two words\"]\n"
    ));
    assert!(e.to_string().contains("two words"), "{e}");
    let e = load(&format!(
        "{base}email: a@b\nproject: SOC\npublic_url: riposte.corp\n"
    ));
    assert_eq!(e.line, 7, "{e}");
}

#[test]
fn the_documented_example_loads() {
    let path = "../../docs/playbooks/config/connectors/jira.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(Templates::default()),
        Arc::new(StaticSecrets::default()),
    )
    .expect(path);
    assert!(c.operation("open_issue").is_some());
}

#[tokio::test]
async fn the_documented_close_on_case_close_playbook_loads_and_fires_only_when_resolved() {
    // The example in docs/connectors.md and in jira.rs's module documentation.
    let text = "id: close-tickets\nname: Close the Jira issues of a resolved case\non: case.updated\nif: case.status == \"resolved\"\nsteps:\n  - id: close\n    action: jira.close_issue\n";
    let s = StandIn::start(vendor).await;
    let mut cs = riposte_respond::Connectors::new();
    cs.add(jira_at(&s.url));
    let templates = Templates::default();
    let pb = riposte_respond::playbook::load("close.yaml", text, &templates, Some(&cs))
        .expect("the example loads");
    let cond = "case.status == \"resolved\"";
    let mut ctx = context();
    assert!(!templates.truthy(cond, &ctx).expect("evaluates"));
    ctx["case"]["status"] = json!("resolved");
    assert!(templates.truthy(cond, &ctx).expect("evaluates"));
    assert_eq!(pb.steps.len(), 1);
}
