//! Microsoft Defender for Endpoint against a stand-in that checks requests as Defender's API
//! documents them: the Microsoft identity platform token, machine look-up by DNS name,
//! isolate / unisolate with their bodies, polling the machine action to its end,
//! `ActiveRequestAlreadyExists`, the check after a restart, and Defender's error shapes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Answer, Seen, StandIn};
use riposte_connectors::defender;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError};
use serde_json::{Value, json};

const TENANT: &str = "8f2c1a7e-3b4d-4e5f-9a6b-7c8d9e0f1a2b";
const MID: &str = "1e5bc9d7e413ddd7902c2932e418702b84d0cc07";
const HOST: &str = "ws-fin-042.corp.example";
const SECRET: &str = "dfnd~S3cr3t.value_42";

fn defender_at(url: &str, secret: &str, timeout: &str) -> Arc<dyn Connector> {
    let text = format!(
        "name: mde\nkind: defender\ntenant_id: {TENANT}\nclient_id: app-1\nclient_secret: mde_secret\n\
         base_url: {url}\nauthority: {url}\npoll_interval: 1s\ntimeout: {timeout}\n"
    );
    Arc::new(
        defender::load(
            "mde.yaml",
            &text,
            common::secrets(&[("mde_secret", secret)]),
        )
        .expect("loads"),
    )
}

fn defender(url: &str) -> Arc<dyn Connector> {
    defender_at(url, SECRET, "5s")
}

fn call(op: &str, params: Value, undo: Value, timeout: u64) -> CallRequest {
    CallRequest {
        action_id: "act-7".into(),
        idempotency_key: "key-7".into(),
        operation: op.into(),
        params,
        undo,
        context: json!({}),
        timeout: Duration::from_secs(timeout),
    }
}

/// The stand-in's state: machine actions, how many polls each takes, how it ends.
struct Tenant {
    actions: Vec<Value>,
    /// Polls answered `InProgress` before the action reaches `ends_as`.
    polls_before_end: usize,
    ends_as: &'static str,
    tokens: usize,
    /// The next API call answers 401 as if the token had expired.
    expire_next: bool,
}

impl Tenant {
    fn new(ends_as: &'static str) -> Arc<Mutex<Tenant>> {
        Arc::new(Mutex::new(Tenant {
            actions: Vec::new(),
            polls_before_end: 0,
            ends_as,
            tokens: 0,
            expire_next: false,
        }))
    }
}

fn error(status: u16, code: &str, message: &str) -> Answer {
    Answer::json(
        status,
        json!({"error": {"code": code, "message": message, "target": "43f4cb08-8fac-4b65-9db1-745c2ae65f3a"}}),
    )
}

fn machine_action(n: usize, kind: &str, scope: Value, comment: &str, status: &str) -> Value {
    json!({
        "@odata.context": "https://api.security.microsoft.com/api/$metadata#MachineActions/$entity",
        "id": format!("5382f7ea-7557-4ab7-9782-d50480024a{n:02}"),
        "type": kind,
        "scope": scope,
        "requestor": "app-1",
        "requestorComment": comment,
        "status": status,
        "machineId": MID,
        "computerDnsName": HOST,
        "creationDateTimeUtc": format!("2025-03-12T10:{n:02}:00.0000000Z"),
        "lastUpdateDateTimeUtc": format!("2025-03-12T10:{n:02}:00.0000000Z"),
        "relatedFileInfo": null
    })
}

/// Answers like Defender and the Microsoft identity platform, and refuses anything not
/// shaped as documented.
fn vendor(t: Arc<Mutex<Tenant>>) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        let mut t = t.lock().expect("tenant");
        if req.path == format!("/{TENANT}/oauth2/v2.0/token") {
            assert_eq!(req.method, "POST");
            let form = req.form();
            let get = |k: &str| form.get(k).map(String::as_str);
            assert_eq!(get("grant_type"), Some("client_credentials"));
            assert_eq!(
                get("scope"),
                Some("https://api.securitycenter.microsoft.com/.default")
            );
            if get("client_id") != Some("app-1") || get("client_secret") != Some(SECRET) {
                return Answer::json(
                    401,
                    json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.", "error_codes": [7000215], "timestamp": "2025-03-12 10:00:00Z", "trace_id": "t", "correlation_id": "c"}),
                );
            }
            t.tokens += 1;
            return Answer::json(
                200,
                json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": format!("eyJ0eXAi.tok{}", t.tokens)}),
            );
        }
        let current = format!("Bearer eyJ0eXAi.tok{}", t.tokens);
        if req.header("authorization") != Some(current.as_str()) || t.expire_next {
            t.expire_next = false;
            return error(401, "Unauthorized", "Unauthorized");
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/api/machines") => {
                let filter = req
                    .query_pairs()
                    .get("$filter")
                    .cloned()
                    .unwrap_or_default();
                match filter.as_str() {
                    "computerDnsName eq 'ws-fin-042.corp.example'" => Answer::json(
                        200,
                        json!({"@odata.context": "https://api.security.microsoft.com/api/$metadata#Machines", "value": [{"id": MID, "computerDnsName": HOST, "healthStatus": "Active", "osPlatform": "Windows11"}]}),
                    ),
                    "computerDnsName eq 'twin.corp.example'" => Answer::json(
                        200,
                        json!({"value": [{"id": "a1", "computerDnsName": "twin.corp.example"}, {"id": "a2", "computerDnsName": "twin.corp.example"}]}),
                    ),
                    _ => error(404, "ResourceNotFound", "No machines found"),
                }
            }
            ("POST", p) if p.starts_with("/api/machines/") => {
                let rest = &p["/api/machines/".len()..];
                let (id, verb) = rest.split_once('/').unwrap_or((rest, ""));
                if req.header("content-type") != Some("application/json") {
                    return error(
                        415,
                        "UnsupportedMediaType",
                        "Content-Type must be application/json",
                    );
                }
                if id != MID {
                    return error(
                        404,
                        "ResourceNotFound",
                        &format!("Machine {id} was not found"),
                    );
                }
                let body = req.json();
                let comment = body["Comment"].as_str().unwrap_or_default().to_string();
                let (kind, scope, keys) = match verb {
                    "isolate" => ("Isolate", body["IsolationType"].clone(), 2),
                    "unisolate" => ("Unisolate", Value::Null, 1),
                    _ => return error(404, "NotFound", "no route"),
                };
                let obj = body.as_object().cloned().unwrap_or_default();
                if comment.is_empty()
                    || obj.len() != keys
                    || (keys == 2 && !matches!(scope.as_str(), Some("Full" | "Selective")))
                {
                    return error(400, "InvalidRequestBody", "Request body is incorrect");
                }
                // One unfinished isolation action per machine at a time.
                let busy = t
                    .actions
                    .iter()
                    .any(|a| matches!(a["status"].as_str(), Some("Pending" | "InProgress")));
                if busy {
                    return error(
                        400,
                        "ActiveRequestAlreadyExists",
                        "Action is already in progress",
                    );
                }
                let n = t.actions.len();
                let a = machine_action(n, kind, scope, &comment, "Pending");
                t.actions.push(a.clone());
                Answer::json(201, a)
            }
            ("GET", "/api/machineactions") => {
                let filter = req
                    .query_pairs()
                    .get("$filter")
                    .cloned()
                    .unwrap_or_default();
                assert_eq!(filter, format!("machineId eq '{MID}'"));
                Answer::json(
                    200,
                    json!({"@odata.context": "https://api.security.microsoft.com/api/$metadata#MachineActions", "value": t.actions}),
                )
            }
            ("GET", p) if p.starts_with("/api/machineactions/") => {
                let id = &p["/api/machineactions/".len()..];
                let (ends_as, before) = (t.ends_as, t.polls_before_end);
                let Some(a) = t.actions.iter_mut().find(|a| a["id"] == id) else {
                    return error(
                        404,
                        "ResourceNotFound",
                        &format!("Machine action {id} was not found"),
                    );
                };
                let polls = a["polls"].as_u64().unwrap_or(0) as usize + 1;
                a["polls"] = json!(polls);
                if a["status"] == "Pending" || a["status"] == "InProgress" {
                    a["status"] = json!(if polls > before {
                        ends_as
                    } else {
                        "InProgress"
                    });
                }
                let mut shown = a.clone();
                if let Some(o) = shown.as_object_mut() {
                    o.remove("polls");
                }
                Answer::json(200, shown)
            }
            _ => error(404, "NotFound", "no route"),
        }
    }
}

fn lines(s: &StandIn) -> Vec<String> {
    s.seen()
        .iter()
        .map(|r| {
            let q = r.query_pairs().get("$filter").cloned().unwrap_or_default();
            format!("{} {} {q}", r.method, r.path)
                .trim_end()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn isolate_by_hostname_waits_for_the_machine_action_then_release_with_the_undo_record() {
    let t = Tenant::new("Succeeded");
    t.lock().expect("t").polls_before_end = 1;
    let s = StandIn::start(vendor(t.clone())).await;
    let c = defender(&s.url);
    let spec = c.operation("isolate_host").expect("isolate_host");
    assert_eq!(spec.inverse.as_deref(), Some("release_host"));
    assert!(spec.idempotent && !spec.irreversible);

    let out = c
        .call(&call(
            "isolate_host",
            json!({"host": "WS-FIN-042.corp.example"}),
            json!(null),
            10,
        ))
        .await
        .expect("isolated");
    let first = "5382f7ea-7557-4ab7-9782-d50480024a00";
    assert_eq!(
        out.undo,
        json!({"machine_id": MID, "machine_action_id": first})
    );
    assert_eq!(out.fields["status"], "Succeeded");
    assert_eq!(out.status, Some(201));

    let undo = c
        .call(&call("release_host", json!({}), out.undo, 10))
        .await
        .expect("released");
    assert_eq!(undo.fields["machine_id"], MID);
    assert_eq!(
        undo.fields["machine_action_id"],
        "5382f7ea-7557-4ab7-9782-d50480024a01"
    );

    let seen = s.seen();
    assert_eq!(
        lines(&s),
        [
            format!("POST /{TENANT}/oauth2/v2.0/token"),
            "GET /api/machines computerDnsName eq 'ws-fin-042.corp.example'".into(),
            format!("POST /api/machines/{MID}/isolate"),
            // One poll answers InProgress, the next Succeeded.
            format!("GET /api/machineactions/{first}"),
            format!("GET /api/machineactions/{first}"),
            // The inverse acts on the stored machine id: no look-up, no second token.
            format!("POST /api/machines/{MID}/unisolate"),
            "GET /api/machineactions/5382f7ea-7557-4ab7-9782-d50480024a01".into(),
            "GET /api/machineactions/5382f7ea-7557-4ab7-9782-d50480024a01".into(),
        ]
    );
    assert_eq!(
        seen[2].json(),
        json!({"Comment": "riposte action act-7: isolate_host", "IsolationType": "Full"})
    );
    assert_eq!(
        seen[5].json(),
        json!({"Comment": "riposte action act-7: release_host"})
    );
    assert_eq!(
        seen[2].header("authorization"),
        Some("Bearer eyJ0eXAi.tok1")
    );
}

#[tokio::test]
async fn a_failed_cancelled_or_timed_out_machine_action_is_a_failure_not_retried() {
    for end in ["Failed", "Cancelled", "TimeOut"] {
        let s = StandIn::start(vendor(Tenant::new(end))).await;
        let c = defender(&s.url);
        let e = c
            .call(&call(
                "isolate_host",
                json!({"machine_id": MID, "isolation_type": "Selective", "comment": "case 12"}),
                json!(null),
                10,
            ))
            .await
            .expect_err(end);
        assert!(!e.retryable(), "{end}: {e:?}");
        assert!(
            e.to_string().contains(&format!("ended `{end}`")),
            "{end}: {e}"
        );
        assert!(
            e.to_string()
                .contains("5382f7ea-7557-4ab7-9782-d50480024a00"),
            "{e}"
        );
        assert_eq!(
            s.seen()[1].json(),
            json!({"Comment": "case 12", "IsolationType": "Selective"})
        );
    }
}

#[tokio::test]
async fn an_action_still_pending_at_the_call_timeout_is_retryable_and_the_retry_waits_on_it() {
    let t = Tenant::new("Succeeded");
    t.lock().expect("t").polls_before_end = usize::MAX;
    let s = StandIn::start(vendor(t.clone())).await;
    let c = defender(&s.url);
    let started = Instant::now();
    let e = c
        .call(&call(
            "isolate_host",
            json!({"machine_id": MID}),
            json!(null),
            3,
        ))
        .await
        .expect_err("still pending");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "bounded by the call's timeout"
    );
    assert!(e.retryable(), "{e:?}");
    assert!(e.to_string().contains("still `InProgress`"), "{e}");

    // The retry: Defender refuses a second isolation; the connector waits on the first.
    t.lock().expect("t").polls_before_end = 0;
    let out = c
        .call(&call(
            "isolate_host",
            json!({"machine_id": MID}),
            json!(null),
            5,
        ))
        .await
        .expect("adopted");
    assert_eq!(
        out.undo["machine_action_id"],
        "5382f7ea-7557-4ab7-9782-d50480024a00"
    );
    assert_eq!(out.status, None);
    assert_eq!(t.lock().expect("t").actions.len(), 1, "no second action");
    let l = lines(&s);
    let n = l.len();
    assert_eq!(
        &l[n - 3..],
        [
            format!("POST /api/machines/{MID}/isolate"),
            format!("GET /api/machineactions machineId eq '{MID}'"),
            "GET /api/machineactions/5382f7ea-7557-4ab7-9782-d50480024a00".into(),
        ]
    );
}

#[tokio::test]
async fn an_active_request_is_waited_on_when_it_is_ours_and_refused_when_it_is_the_other_kind() {
    let t = Tenant::new("Succeeded");
    {
        let mut t = t.lock().expect("t");
        t.actions.push(machine_action(
            0,
            "Isolate",
            json!("Full"),
            "portal",
            "Succeeded",
        ));
        t.actions.push(machine_action(
            1,
            "Unisolate",
            Value::Null,
            "portal",
            "Pending",
        ));
    }
    let s = StandIn::start(vendor(t.clone())).await;
    let c = defender(&s.url);
    // An analyst already asked for the release in the portal: the call waits on that one.
    let out = c
        .call(&call(
            "release_host",
            json!({"machine_id": MID}),
            json!(null),
            5,
        ))
        .await
        .expect("the pending release is ours to wait on");
    assert_eq!(
        out.fields["machine_action_id"],
        "5382f7ea-7557-4ab7-9782-d50480024a01"
    );
    assert_eq!(t.lock().expect("t").actions.len(), 2, "no second release");

    // A release still pending while riposte isolates: acting on top of it would race it.
    t.lock().expect("t").actions[1]["status"] = json!("Pending");
    let e = c
        .call(&call(
            "isolate_host",
            json!({"machine_id": MID}),
            json!(null),
            5,
        ))
        .await
        .expect_err("busy with a release");
    assert!(!e.retryable(), "{e:?}");
    assert!(e.to_string().contains("ActiveRequestAlreadyExists"), "{e}");
    assert!(e.to_string().contains("Unisolate"), "{e}");
}

#[tokio::test]
async fn the_check_says_whether_an_isolation_took_effect() {
    let t = Tenant::new("Succeeded");
    let s = StandIn::start(vendor(t.clone())).await;
    let c = defender(&s.url);
    let req = call("isolate_host", json!({"host": HOST}), json!(null), 5);
    let check = c.check(&req).expect("defender offers a check");
    assert_eq!(check.await.expect("asked"), None);
    t.lock().expect("t").actions.push(machine_action(
        0,
        "Isolate",
        json!("Full"),
        "riposte",
        "Pending",
    ));
    let done = c
        .check(&req)
        .expect("check")
        .await
        .expect("asked")
        .expect("done");
    assert_eq!(
        done.undo,
        json!({"machine_id": MID, "machine_action_id": "5382f7ea-7557-4ab7-9782-d50480024a00"})
    );
    // A later release makes the isolation no longer in effect.
    t.lock().expect("t").actions.push(machine_action(
        1,
        "Unisolate",
        Value::Null,
        "portal",
        "Succeeded",
    ));
    assert_eq!(c.check(&req).expect("check").await.expect("asked"), None);
    assert!(
        s.seen()
            .iter()
            .all(|r| r.method == "GET" || r.path.ends_with("/token")),
        "a check only reads"
    );
}

#[tokio::test]
async fn unknown_ambiguous_and_missing_machines_are_clear_failures() {
    let t = Tenant::new("Succeeded");
    let s = StandIn::start(vendor(t.clone())).await;
    let c = defender(&s.url);
    let e = c
        .call(&call(
            "isolate_host",
            json!({"host": "nope.corp.example"}),
            json!(null),
            5,
        ))
        .await
        .expect_err("no machine");
    assert!(
        e.to_string()
            .contains("no Defender machine is named `nope.corp.example`"),
        "{e}"
    );
    let e = c
        .call(&call(
            "isolate_host",
            json!({"host": "twin.corp.example"}),
            json!(null),
            5,
        ))
        .await
        .expect_err("two machines");
    assert!(e.to_string().contains("2 Defender machines"), "{e}");
    let e = c
        .call(&call(
            "isolate_host",
            json!({"machine_id": "deadbeef"}),
            json!(null),
            5,
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
            .contains("ResourceNotFound: Machine deadbeef was not found"),
        "{e}"
    );
    let e = c
        .call(&call("isolate_host", json!({}), json!(null), 5))
        .await
        .expect_err("no params");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");
    let e = c
        .call(&call(
            "isolate_host",
            json!({"machine_id": MID, "isolation_type": "Partial"}),
            json!(null),
            5,
        ))
        .await
        .expect_err("bad isolation type");
    assert!(e.to_string().contains("Partial"), "{e}");
    assert!(t.lock().expect("t").actions.is_empty());
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_rate_limits_and_outages_are_retryable() {
    let t = Tenant::new("Succeeded");
    let s = StandIn::start(vendor(t.clone())).await;
    let c = defender(&s.url);
    let req = call("isolate_host", json!({"host": HOST}), json!(null), 5);
    c.check(&req).expect("check").await.expect("first token");
    t.lock().expect("t").expire_next = true;
    c.check(&req).expect("check").await.expect("refreshed once");
    assert_eq!(t.lock().expect("t").tokens, 2);

    let limited = StandIn::start(|req, _| {
        if req.path.ends_with("/token") {
            return Answer::json(
                200,
                json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "tok"}),
            );
        }
        if req.path.ends_with("/isolate") {
            return error(
                429,
                "TooManyRequests",
                "API calls quota exceeded! Maximum allowed 100 per 00:01:00.",
            )
            .with_header("Retry-After", "41");
        }
        Answer::text(503, "text/html", "<html>Service Unavailable</html>")
    })
    .await;
    let c = defender(&limited.url);
    let e = c
        .call(&call(
            "isolate_host",
            json!({"machine_id": MID}),
            json!(null),
            5,
        ))
        .await
        .expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(41)
        }
    );
    let e = c
        .call(&call("isolate_host", json!({"host": HOST}), json!(null), 5))
        .await
        .expect_err("503");
    assert!(matches!(e, ConnectorError::Transient { .. }), "{e:?}");
}

#[tokio::test]
async fn the_client_secret_never_appears_in_an_error() {
    let t = Tenant::new("Failed");
    let s = StandIn::start(vendor(t.clone())).await;
    // A secret the identity platform refuses: the error names the problem, not the value.
    let wrong = "wr0ng-Secret-Value~xyz";
    let c = defender_at(&s.url, wrong, "5s");
    let e = c
        .call(&call(
            "isolate_host",
            json!({"machine_id": MID}),
            json!(null),
            5,
        ))
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("invalid_client"), "{e}");
    let mut errors = vec![e];
    let c = defender(&s.url);
    for params in [
        json!({"machine_id": MID}),
        json!({"host": "nope"}),
        json!({"machine_id": "x"}),
        json!({}),
    ] {
        errors.push(
            c.call(&call("isolate_host", params, json!(null), 5))
                .await
                .expect_err("fails"),
        );
    }
    for e in &errors {
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(wrong) && !shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("eyJ0eXAi"), "no token in {shown}");
    }
}

#[test]
fn a_bad_definition_names_the_field() {
    let load = |text: &str| {
        defender::load("d.yaml", text, Arc::new(StaticSecrets::default())).expect_err(text)
    };
    let e = load("name: mde\nkind: defender\nclient_id: a\nclient_secret: s\n");
    assert!(e.to_string().contains("tenant_id"), "{e}");
    let e = load("name: mde\nkind: defender\ntenant_id: a/b\nclient_id: a\nclient_secret: s\n");
    assert_eq!(e.line, 3, "{e}");
    let e = load(
        "name: mde\nkind: defender\ntenant_id: t\nclient_id: a\nclient_secret: s\nisolation_type: Partial\n",
    );
    assert_eq!(e.line, 6, "{e}");
    assert!(e.to_string().contains("Selective"), "{e}");
    let e = load(
        "name: mde\nkind: defender\ntenant_id: t\nclient_id: a\nclient_secret: s\npoll_interval: 0s\n",
    );
    assert!(e.to_string().contains("poll_interval"), "{e}");
    let e = load(
        "name: mde\nkind: defender\ntenant_id: t\nclient_id: a\nclient_secret: s\nauthority: login.example\n",
    );
    assert!(e.to_string().contains("authority"), "{e}");
    let e = load(
        "name: mde\nkind: defender\ntenant_id: t\nclient_id: a\nclient_secret: s\nisolate: yes\n",
    );
    assert!(e.to_string().contains("isolate"), "{e}");
}

#[test]
fn the_example_definition_loads() {
    let path = "../../docs/playbooks/config/connectors/defender.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(riposte_respond::Templates::default()),
        Arc::new(StaticSecrets::default()),
    )
    .expect(path);
    assert!(c.operation("isolate_host").is_some() && c.operation("release_host").is_some());
}
