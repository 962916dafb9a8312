//! The engine against a real HTTP server on 127.0.0.1 standing in for an EDR: exact
//! requests, approvals, undo, retries with Retry-After, restarts, expiry, budgets, secrets.
//!
//! Time is passed in, never waited for: no test sleeps or measures time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use riposte_domain::Timestamp;
use riposte_respond::connector::{CallRequest, Connector};
use riposte_respond::http::HttpConnector;
use riposte_respond::playbook;
use riposte_respond::policy::{ApprovalError, ApprovalStatus, Decision};
use riposte_respond::run::ActionKind;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{
    ActionState, Connectors, Engine, MemoryRunStore, Policy, RespondError, RunStatus, RunStore,
    Secret, Templates, TriggerEvent, TriggerKind,
};
use serde_json::{Value, json};

const TOKEN: &str = "edr-token-5f2b9c-do-not-log";

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

#[derive(Default)]
struct EdrState {
    seen: Vec<Seen>,
    /// Idempotency key → the answer given, so a repeated key does the work once.
    done: BTreeMap<String, Value>,
    isolations: u32,
    /// Contained host → its containment id, for the state read.
    contained: BTreeMap<String, String>,
    /// Answers to give first, before behaving normally: (status, Retry-After).
    scripted: Vec<(u16, Option<&'static str>)>,
}

#[derive(Clone, Default)]
struct Edr(Arc<Mutex<EdrState>>);

impl Edr {
    fn lock(&self) -> std::sync::MutexGuard<'_, EdrState> {
        self.0.lock().unwrap()
    }
    fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }
    fn isolations(&self) -> u32 {
        self.lock().isolations
    }
}

async fn edr_handler(
    axum::extract::State(edr): axum::extract::State<Edr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut st = edr.lock();
    st.seen.push(Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.clone(),
    });
    if !st.scripted.is_empty() {
        let (status, retry_after) = st.scripted.remove(0);
        let mut r = (StatusCode::from_u16(status).unwrap(), "slow down").into_response();
        if let Some(ra) = retry_after {
            r.headers_mut().insert("retry-after", ra.parse().unwrap());
        }
        return r;
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(k) = &key
        && let Some(prev) = st.done.get(k)
    {
        return axum::Json(prev.clone()).into_response();
    }
    let path = uri.path().to_string();
    // `/api/v1/hosts/{host}[/{verb}]`
    let host = path
        .strip_prefix("/api/v1/hosts/")
        .map(|rest| rest.split('/').next().unwrap_or_default().to_string());
    if method == Method::GET {
        return match host.filter(|h| path.ends_with(h.as_str())) {
            Some(h) => {
                let id = st.contained.get(&h).cloned();
                axum::Json(json!({"host": h, "containment_id": id,
                                  "state": if id.is_some() { "contained" } else { "normal" }}))
                .into_response()
            }
            None => (StatusCode::NOT_FOUND, "no such endpoint").into_response(),
        };
    }
    let answer = if path.ends_with("/isolate") {
        st.isolations += 1;
        let id = format!("iso-{}", st.isolations);
        st.contained.insert(host.unwrap_or_default(), id.clone());
        json!({"id": id, "state": "pending"})
    } else if path.ends_with("/release") {
        st.contained.remove(&host.unwrap_or_default());
        json!({"state": "released"})
    } else if path == "/hook" {
        json!({"ok": true})
    } else {
        return (StatusCode::NOT_FOUND, "no such endpoint").into_response();
    };
    if let Some(k) = key {
        st.done.insert(k, answer.clone());
    }
    axum::Json(answer).into_response()
}

async fn start_edr(edr: Edr) -> String {
    let app = axum::Router::new().fallback(edr_handler).with_state(edr);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    format!("http://{addr}")
}

fn secrets() -> Arc<StaticSecrets> {
    let mut m = BTreeMap::new();
    m.insert("edr_token".to_string(), Secret::new(TOKEN));
    Arc::new(StaticSecrets(m))
}

fn edr_yaml(base: &str, idempotency: bool, isolate_class: &str) -> String {
    format!(
        r#"name: edr
base_url: {base}
timeout: 5s
auth: {{ bearer: edr_token }}
{idem}
headers:
  X-Client: riposte
operations:
  isolate_host:
    class: {isolate_class}
    method: POST
    path: "/api/v1/hosts/{{{{ params.host | urlencode }}}}/isolate"
    headers:
      X-Case: "{{{{ case.id }}}}"
    body:
      host: "{{{{ params.host }}}}"
      comment: "riposte case {{{{ case.id }}}}"
      ttl: 3600
    expect_status: [200, 202]
    keep:
      containment_id: /id
    inverse: release_host
  release_host:
    class: auto
    method: POST
    path: "/api/v1/hosts/{{{{ params.host | urlencode }}}}/release"
    body:
      containment_id: "{{{{ undo.containment_id }}}}"
  lookup:
    class: auto
    method: GET
    path: "/api/v1/hosts/{{{{ params.host }}}}"
  wipe:
    class: review
    method: POST
    path: "/api/v1/hosts/{{{{ params.host }}}}/wipe"
"#,
        idem = if idempotency {
            "idempotency_header: Idempotency-Key"
        } else {
            ""
        }
    )
}

fn connector(base: &str, idempotency: bool, isolate_class: &str) -> Arc<HttpConnector> {
    load_connector(&edr_yaml(base, idempotency, isolate_class))
}

fn load_connector(yaml: &str) -> Arc<HttpConnector> {
    Arc::new(
        HttpConnector::load("edr.yaml", yaml, Arc::new(Templates::default()), secrets()).unwrap(),
    )
}

/// The EDR connector whose isolation can be checked: a read of the host's state.
fn checked_connector(base: &str) -> Arc<HttpConnector> {
    let yaml = edr_yaml(base, true, "auto").replace(
        "    inverse: release_host\n",
        "    inverse: release_host\n    check:\n      path: \"/api/v1/hosts/{{ params.host | urlencode }}\"\n      done_when: { /state: contained }\n      keep: { containment_id: /containment_id }\n",
    );
    assert!(yaml.contains("check:"));
    load_connector(&yaml)
}

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn case(tier: &str) -> Value {
    json!({"id": "case-42", "tier": tier, "asset_tags": ["workstation"],
           "entities": [{"type": "host", "value": "WS-042"}, {"type": "user", "value": "CORP\\alice"}]})
}

fn event(kind: TriggerKind, tier: &str, rev: u32, by: Option<&str>) -> TriggerEvent {
    TriggerEvent {
        kind,
        event_id: format!("case-42@{rev}"),
        case: Some(case(tier)),
        alert: None,
        at: t(0),
        requested_by: by.map(str::to_string),
    }
}

const ISOLATE: &str = r#"id: contain
name: Isolate hosts of a high case
on: [case.created, case.tier_changed]
if: case.tier in ["validated", "high"] and "domain-controller" not in case.asset_tags
steps:
  - id: tag
    tag: containment
  - id: isolate
    action: edr.isolate_host
    for_each:
      items: case.entities | selectattr("type", "eq", "host") | map(attribute="value") | list
      max_items: 5
    params:
      host: "{{ item }}"
    retry: { attempts: 3, backoff: 2s }
  - id: note
    note: "isolated as {{ steps.isolate['items'][0].containment_id }}"
"#;

async fn engine_with(
    store: MemoryRunStore,
    conn: Arc<HttpConnector>,
    policy: Policy,
    playbook_text: &str,
) -> Engine<MemoryRunStore> {
    let mut cs = Connectors::new();
    cs.add(conn);
    let templates = Arc::new(Templates::default());
    let pb = playbook::load("contain.yaml", playbook_text, &templates, Some(&cs)).unwrap();
    let e = Engine::new(Arc::new(store), policy, cs, templates);
    e.activate(pb).await.unwrap();
    e
}

async fn only_action(e: &Engine<MemoryRunStore>) -> riposte_respond::ActionRecord {
    let all: Vec<_> = e
        .store()
        .all_actions()
        .into_iter()
        .filter(|a| a.kind == ActionKind::Call)
        .collect();
    assert_eq!(all.len(), 1, "{all:#?}");
    all.into_iter().next().unwrap()
}

#[tokio::test]
async fn the_connector_sends_exactly_what_its_definition_says_and_the_inverse_too() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let c = connector(&base, true, "approve");
    let req = CallRequest {
        action_id: "act-1".into(),
        idempotency_key: "act-1".into(),
        operation: "isolate_host".into(),
        params: json!({"host": "WS 042/x"}),
        undo: Value::Null,
        context: json!({"case": {"id": "case-9"}}),
        timeout: std::time::Duration::from_secs(5),
    };
    let out = c.call(&req).await.unwrap();
    assert_eq!(out.fields["containment_id"], json!("iso-1"));
    let inv = CallRequest {
        action_id: "act-2".into(),
        idempotency_key: "act-2".into(),
        operation: "release_host".into(),
        params: req.params.clone(),
        undo: out.undo.clone(),
        context: req.context.clone(),
        timeout: req.timeout,
    };
    c.call(&inv).await.unwrap();

    let seen = edr.seen();
    assert_eq!(seen.len(), 2);
    let s = &seen[0];
    assert_eq!(s.method, "POST");
    assert_eq!(s.path, "/api/v1/hosts/WS%20042%2Fx/isolate");
    assert_eq!(s.headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(s.headers["idempotency-key"], "act-1");
    assert_eq!(s.headers["x-client"], "riposte");
    assert_eq!(s.headers["x-case"], "case-9");
    assert_eq!(s.headers["content-type"], "application/json");
    assert_eq!(
        s.body,
        json!({"host": "WS 042/x", "comment": "riposte case case-9", "ttl": 3600})
    );
    let r = &seen[1];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/api/v1/hosts/WS%20042%2Fx/release");
    assert_eq!(r.body, json!({"containment_id": "iso-1"}));

    // Unexpected status: a clear, permanent failure naming the call, and no secret.
    let bad = CallRequest {
        action_id: "act-3".into(),
        idempotency_key: "act-3".into(),
        operation: "lookup".into(),
        ..req.clone()
    };
    let e = c.call(&bad).await.unwrap_err();
    assert!(!e.retryable(), "{e}");
    let text = e.to_string();
    assert!(text.contains("answered 404"), "{text}");
    assert!(!text.contains(TOKEN));
    assert!(!format!("{c:?}").contains(TOKEN));
}

#[tokio::test]
async fn approve_gate_four_eyes_one_request_then_undo_sends_the_inverse() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let policy = Policy::load("policy.yaml", "four_eyes: true\n").unwrap();
    let e = engine_with(
        MemoryRunStore::new(),
        connector(&base, true, "approve"),
        policy,
        ISOLATE,
    )
    .await;

    // Not high yet: the playbook's `if` keeps it from starting.
    let started = e
        .on_event(&event(TriggerKind::CaseCreated, "medium", 1, None), t(0))
        .await
        .unwrap();
    assert!(started.is_empty());

    // Alice starts it by hand on a high case: it waits for approval, nothing is sent.
    let started = e
        .on_event(
            &event(TriggerKind::CaseTierChanged, "high", 2, Some("alice")),
            t(1),
        )
        .await
        .unwrap();
    assert_eq!(started.len(), 1);
    let run = e.store().run(&started[0]).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Waiting);
    let action = only_action(&e).await;
    assert_eq!(action.state, ActionState::AwaitingApproval);
    assert!(edr.seen().is_empty());
    // The tag step ran before the gate.
    assert_eq!(e.store().case_changes().len(), 1);

    // The same event again starts nothing new.
    let again = e
        .on_event(
            &event(TriggerKind::CaseTierChanged, "high", 2, Some("alice")),
            t(2),
        )
        .await
        .unwrap();
    assert!(again.is_empty());

    // Four eyes: Alice may not approve her own request.
    let err = e
        .answer(&action.id, "alice", true, None, t(3))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RespondError::Approval {
                source: ApprovalError::SelfApproval { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(edr.seen().is_empty());

    // Bob approves: exactly one request reaches the EDR and the run finishes.
    let status = e.answer(&action.id, "bob", true, None, t(4)).await.unwrap();
    assert_eq!(status, ApprovalStatus::Decided(Decision::Approved));
    assert_eq!(edr.seen().len(), 1);
    assert_eq!(edr.seen()[0].headers["idempotency-key"], action.id);
    let run = e.store().run(&started[0]).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let changes = e.store().case_changes();
    assert_eq!(changes.len(), 2);
    assert_eq!(
        serde_json::to_value(&changes[1].change).unwrap()["text"],
        json!("isolated as iso-1")
    );

    // A second answer finds it decided; nothing more is sent.
    let err = e
        .answer(&action.id, "carol", true, None, t(5))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already answered"), "{err}");
    e.tick(t(6)).await.unwrap();
    assert_eq!(edr.seen().len(), 1);

    // Undo: the inverse with the kept id; a second undo click sends nothing more.
    let inv = e.undo(&action.id, "carol", None, t(10)).await.unwrap();
    assert!(
        matches!(inv.state, ActionState::Succeeded { .. }),
        "{inv:?}"
    );
    let again = e.undo(&action.id, "carol", None, t(11)).await.unwrap();
    assert_eq!(again.id, inv.id);
    let seen = edr.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].path, "/api/v1/hosts/WS-042/release");
    assert_eq!(seen[1].body, json!({"containment_id": "iso-1"}));
    let orig = e.store().action(&action.id).await.unwrap().unwrap();
    assert!(matches!(orig.state, ActionState::Undone { .. }), "{orig:?}");

    // The record: each step in order, before and after the call, and no secret anywhere.
    let trail = e.store().audit_trail();
    let verbs: Vec<&str> = trail.iter().map(|a| a.action.as_str()).collect();
    let pos = |v: &str| verbs.iter().position(|x| *x == v).unwrap_or(usize::MAX);
    assert!(pos("run.start") < pos("action.request"), "{verbs:?}");
    assert!(pos("action.request") < pos("approval.refused"), "{verbs:?}");
    assert!(
        pos("approval.refused") < pos("approval.answer"),
        "{verbs:?}"
    );
    assert!(pos("approval.answer") < pos("action.send"), "{verbs:?}");
    assert!(pos("action.send") < pos("action.result"), "{verbs:?}");
    assert!(pos("action.result") < pos("action.undo"), "{verbs:?}");
    assert!(pos("action.undo") < pos("action.undone"), "{verbs:?}");
    let all = serde_json::to_string(&trail).unwrap();
    assert!(!all.contains(TOKEN));
    let answer = trail
        .iter()
        .find(|a| a.action == "approval.answer")
        .unwrap();
    assert_eq!(answer.actor, "bob");
}

#[tokio::test]
async fn a_429_with_retry_after_backs_off_and_the_retry_carries_the_same_key() {
    let edr = Edr::default();
    edr.lock().scripted = vec![(429, Some("7"))];
    let base = start_edr(edr.clone()).await;
    let e = engine_with(
        MemoryRunStore::new(),
        connector(&base, true, "auto"),
        Policy::default(),
        ISOLATE,
    )
    .await;
    let started = e
        .on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
        .await
        .unwrap();
    assert_eq!(edr.seen().len(), 1);
    let a = only_action(&e).await;
    match &a.state {
        ActionState::Backoff { until, .. } => {
            assert_eq!(*until, t(7), "Retry-After wins over the 2 s back-off")
        }
        other => panic!("expected a back-off, got {other:?}"),
    }
    // Not yet due: nothing is sent.
    e.tick(t(6)).await.unwrap();
    assert_eq!(edr.seen().len(), 1);
    e.tick(t(7)).await.unwrap();
    let seen = edr.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].headers["idempotency-key"],
        seen[1].headers["idempotency-key"]
    );
    let run = e.store().run(&started[0]).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(edr.isolations(), 1);
}

#[tokio::test]
async fn a_non_idempotent_call_without_a_key_is_not_retried() {
    let edr = Edr::default();
    edr.lock().scripted = vec![(503, None)];
    let base = start_edr(edr.clone()).await;
    let e = engine_with(
        MemoryRunStore::new(),
        connector(&base, false, "auto"),
        Policy::default(),
        ISOLATE,
    )
    .await;
    let started = e
        .on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
        .await
        .unwrap();
    let run = e.store().run(&started[0]).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.error.as_deref().unwrap_or("").contains("503"),
        "{run:?}"
    );
    e.tick(t(100)).await.unwrap();
    assert_eq!(edr.seen().len(), 1);
}

#[tokio::test]
async fn a_crash_between_send_and_result_does_the_work_once() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    // The write of the result fails as a crash would: the request went out, its result is
    // lost.
    let store =
        MemoryRunStore::new().failing_when(|a| matches!(a.state, ActionState::Succeeded { .. }));
    let e = engine_with(
        store,
        connector(&base, true, "auto"),
        Policy::default(),
        ISOLATE,
    )
    .await;
    let r = e
        .on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
        .await;
    assert!(r.is_err(), "the simulated crash surfaces");
    assert_eq!(edr.isolations(), 1);
    let durable = e.store().restart();
    drop(e);

    // After the restart the action is found `sending`; the call carries its idempotency key,
    // so it is sent again with the same key and the EDR does the work once.
    let e = engine_with(
        durable,
        connector(&base, true, "auto"),
        Policy::default(),
        ISOLATE,
    )
    .await;
    let a = only_action(&e).await;
    assert!(matches!(a.state, ActionState::Sending { .. }), "{a:?}");
    e.tick(t(1)).await.unwrap();
    let seen = edr.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].headers["idempotency-key"],
        seen[1].headers["idempotency-key"]
    );
    assert_eq!(edr.isolations(), 1, "exactly one isolation at the EDR");
    let a = only_action(&e).await;
    assert!(matches!(a.state, ActionState::Succeeded { .. }), "{a:?}");
    e.tick(t(2)).await.unwrap();
    assert_eq!(edr.seen().len(), 2);
}

/// The operation offers a check: after the restart the EDR is asked for the host's state,
/// which says contained, so the action is recorded as succeeded without a second request.
#[tokio::test]
async fn a_crash_between_send_and_result_is_settled_by_the_check_without_a_second_call() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let store =
        MemoryRunStore::new().failing_when(|a| matches!(a.state, ActionState::Succeeded { .. }));
    let e = engine_with(store, checked_connector(&base), Policy::default(), ISOLATE).await;
    assert!(
        e.on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
            .await
            .is_err()
    );
    let durable = e.store().restart();
    drop(e);
    let e = engine_with(
        durable,
        checked_connector(&base),
        Policy::default(),
        ISOLATE,
    )
    .await;
    e.tick(t(1)).await.unwrap();
    let seen = edr.seen();
    let methods: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(
        methods,
        [
            ("POST", "/api/v1/hosts/WS-042/isolate"),
            ("GET", "/api/v1/hosts/WS-042")
        ]
    );
    assert!(
        !seen[1].headers.contains_key("idempotency-key"),
        "a read carries no key"
    );
    let a = only_action(&e).await;
    let ActionState::Succeeded { outcome, .. } = &a.state else {
        panic!("{a:?}")
    };
    assert_eq!(outcome.fields["containment_id"], "iso-1");
    assert_eq!(a.attempts, 1);
    assert!(
        e.store()
            .audit_trail()
            .iter()
            .any(|r| r.action == "action.reconciled"),
        "the reconciliation is on the record"
    );
    // The run goes on with the kept field, and nothing more reaches the EDR.
    e.tick(t(2)).await.unwrap();
    assert!(e.store().open_runs().await.unwrap().is_empty());
    let notes: Vec<_> = e.store().case_changes();
    assert!(
        format!("{notes:?}").contains("isolated as iso-1"),
        "{notes:?}"
    );
    assert_eq!(edr.seen().len(), 2);
}

/// The check says the call did not take effect (the EDR refused it with a 503 and the
/// process stopped before recording that): the call is sent again, with its key.
#[tokio::test]
async fn a_check_that_says_not_done_sends_the_call_again() {
    let edr = Edr::default();
    edr.lock().scripted.push((503, None));
    let base = start_edr(edr.clone()).await;
    let store =
        MemoryRunStore::new().failing_when(|a| matches!(a.state, ActionState::Backoff { .. }));
    let e = engine_with(store, checked_connector(&base), Policy::default(), ISOLATE).await;
    assert!(
        e.on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
            .await
            .is_err()
    );
    let durable = e.store().restart();
    drop(e);
    let e = engine_with(
        durable,
        checked_connector(&base),
        Policy::default(),
        ISOLATE,
    )
    .await;
    e.tick(t(1)).await.unwrap();
    let methods: Vec<String> = edr
        .seen()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(
        methods,
        [
            "POST /api/v1/hosts/WS-042/isolate",
            "GET /api/v1/hosts/WS-042",
            "POST /api/v1/hosts/WS-042/isolate"
        ]
    );
    assert_eq!(edr.isolations(), 1);
    let a = only_action(&e).await;
    assert!(matches!(a.state, ActionState::Succeeded { .. }), "{a:?}");
    assert!(
        e.store()
            .audit_trail()
            .iter()
            .any(|r| r.action == "action.check" && r.detail["done"] == false)
    );
}

#[tokio::test]
async fn a_crash_between_send_and_result_without_a_key_is_never_repeated() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let store =
        MemoryRunStore::new().failing_when(|a| matches!(a.state, ActionState::Succeeded { .. }));
    let e = engine_with(
        store,
        connector(&base, false, "auto"),
        Policy::default(),
        ISOLATE,
    )
    .await;
    assert!(
        e.on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
            .await
            .is_err()
    );
    let durable = e.store().restart();
    drop(e);
    let e = engine_with(
        durable,
        connector(&base, false, "auto"),
        Policy::default(),
        ISOLATE,
    )
    .await;
    e.tick(t(1)).await.unwrap();
    e.tick(t(2)).await.unwrap();
    assert_eq!(edr.seen().len(), 1, "the EDR sees exactly one request");
    let a = only_action(&e).await;
    assert!(matches!(a.state, ActionState::Uncertain { .. }), "{a:?}");
    let run = e.store().open_runs().await.unwrap();
    assert!(
        run.is_empty(),
        "the run ended, asking for a person: {run:?}"
    );
}

#[tokio::test]
async fn a_restart_while_waiting_for_approval_resumes_and_sends_once() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let e = engine_with(
        MemoryRunStore::new(),
        connector(&base, true, "approve"),
        Policy::default(),
        ISOLATE,
    )
    .await;
    e.on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
        .await
        .unwrap();
    let durable = e.store().restart();
    drop(e);
    let e = engine_with(
        durable,
        connector(&base, true, "approve"),
        Policy::default(),
        ISOLATE,
    )
    .await;
    e.tick(t(1)).await.unwrap();
    assert!(edr.seen().is_empty());
    let a = only_action(&e).await;
    e.answer(&a.id, "bob", true, None, t(2)).await.unwrap();
    e.tick(t(3)).await.unwrap();
    assert_eq!(edr.seen().len(), 1);
    assert_eq!(edr.isolations(), 1);
}

/// The approval's answer drives the send; the process stops before the result. The run
/// waits with its wake time at the approval's deadline (hours away), yet the next tick
/// finds the action `sending` with nobody at it and resumes the run at once.
#[tokio::test]
async fn a_crash_after_approval_between_send_and_result_resumes_at_the_next_tick() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let store =
        MemoryRunStore::new().failing_when(|a| matches!(a.state, ActionState::Succeeded { .. }));
    let e = engine_with(
        store,
        connector(&base, true, "approve"),
        Policy::default(),
        ISOLATE,
    )
    .await;
    e.on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
        .await
        .unwrap();
    let a = only_action(&e).await;
    assert!(e.answer(&a.id, "bob", true, None, t(1)).await.is_err());
    assert_eq!(edr.isolations(), 1);
    let durable = e.store().restart();
    drop(e);
    let e = engine_with(
        durable,
        connector(&base, true, "approve"),
        Policy::default(),
        ISOLATE,
    )
    .await;
    e.tick(t(2)).await.unwrap();
    let a = only_action(&e).await;
    assert!(matches!(a.state, ActionState::Succeeded { .. }), "{a:?}");
    assert_eq!(edr.seen().len(), 2, "sent again, with the same key");
    assert_eq!(edr.isolations(), 1, "exactly one isolation at the EDR");
}

#[tokio::test]
async fn an_unanswered_approval_times_out_to_deny() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let policy = Policy::load("p.yaml", "approval_timeout: 1h\n").unwrap();
    let e = engine_with(
        MemoryRunStore::new(),
        connector(&base, true, "approve"),
        policy,
        ISOLATE,
    )
    .await;
    let started = e
        .on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
        .await
        .unwrap();
    e.tick(t(3599)).await.unwrap();
    let run = e.store().run(&started[0]).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Waiting);
    e.tick(t(3600)).await.unwrap();
    let run = e.store().run(&started[0]).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.error.as_deref().unwrap_or("").contains("timed out"),
        "{run:?}"
    );
    let a = only_action(&e).await;
    let err = e
        .answer(&a.id, "bob", true, None, t(3700))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already answered"), "{err}");
    assert!(edr.seen().is_empty());
}

const WIPE: &str = r#"id: wipe
name: Wipe
on: case.created
steps:
  - id: wipe
    action: edr.wipe
    params: { host: "{{ case.entities[0].value }}" }
"#;

#[tokio::test]
async fn a_review_operation_never_runs_without_a_written_reason() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let e = engine_with(
        MemoryRunStore::new(),
        connector(&base, true, "approve"),
        Policy::default(),
        WIPE,
    )
    .await;
    e.on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
        .await
        .unwrap();
    let a = only_action(&e).await;
    assert_eq!(a.class, riposte_respond::Class::Review);
    let err = e.answer(&a.id, "bob", true, None, t(1)).await.unwrap_err();
    assert!(err.to_string().contains("written reason"), "{err}");
    let err = e
        .answer(&a.id, "bob", true, Some("  "), t(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("written reason"), "{err}");
    assert!(edr.seen().is_empty());
    e.answer(
        &a.id,
        "bob",
        true,
        Some("confirmed ransomware staging"),
        t(2),
    )
    .await
    .unwrap();
    assert_eq!(edr.seen().len(), 1);
    assert_eq!(edr.seen()[0].path, "/api/v1/hosts/WS-042/wipe");
}

#[tokio::test]
async fn an_auto_step_below_the_minimum_tier_waits_until_the_tier_rises() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let policy = Policy::load("p.yaml", "min_tier_for_auto: high\n").unwrap();
    let text = ISOLATE.replace(
        "case.tier in [\"validated\", \"high\"] and ",
        "case.tier != \"none\" and ",
    );
    let e = engine_with(
        MemoryRunStore::new(),
        connector(&base, true, "auto"),
        policy,
        &text,
    )
    .await;
    let started = e
        .on_event(&event(TriggerKind::CaseCreated, "medium", 1, None), t(0))
        .await
        .unwrap();
    assert_eq!(started.len(), 1);
    e.tick(t(10)).await.unwrap();
    assert!(
        edr.seen().is_empty(),
        "an auto step below the minimum tier waits"
    );
    // The case rises to high: the waiting run sees it and the step runs, once.
    e.on_event(&event(TriggerKind::CaseUpdated, "high", 2, None), t(20))
        .await
        .unwrap();
    assert_eq!(edr.seen().len(), 1);
    let run = e.store().run(&started[0]).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
}

#[tokio::test]
async fn an_expiring_action_reverts_itself_unless_confirmed() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let text = ISOLATE.replace(
        "    retry: { attempts: 3, backoff: 2s }\n",
        "    retry: { attempts: 3, backoff: 2s }\n    expires: 1h\n",
    );
    let e = engine_with(
        MemoryRunStore::new(),
        connector(&base, true, "auto"),
        Policy::default(),
        &text,
    )
    .await;
    e.on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
        .await
        .unwrap();
    assert_eq!(edr.seen().len(), 1);
    e.tick(t(3599)).await.unwrap();
    assert_eq!(edr.seen().len(), 1);
    e.tick(t(3600)).await.unwrap();
    let seen = edr.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].path.ends_with("/release"), "{seen:?}");
    e.tick(t(7200)).await.unwrap();
    assert_eq!(edr.seen().len(), 2);

    // Confirmed: it stays.
    let edr2 = Edr::default();
    let base2 = start_edr(edr2.clone()).await;
    let e = engine_with(
        MemoryRunStore::new(),
        connector(&base2, true, "auto"),
        Policy::default(),
        &text,
    )
    .await;
    e.on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
        .await
        .unwrap();
    let a = only_action(&e).await;
    e.confirm(&a.id, "bob", t(10)).await.unwrap();
    e.tick(t(7200)).await.unwrap();
    assert_eq!(edr2.seen().len(), 1);
}

#[tokio::test]
async fn a_template_that_loops_for_ever_is_stopped_by_its_budget() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let text = r#"id: loop
name: Loop
on: case.created
steps:
  - id: spin
    note: "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
  - id: never
    action: edr.isolate_host
    params: { host: x }
"#;
    let e = engine_with(
        MemoryRunStore::new(),
        connector(&base, true, "auto"),
        Policy::default(),
        text,
    )
    .await;
    let started = e
        .on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
        .await
        .unwrap();
    let run = e.store().run(&started[0]).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap_or_default();
    assert!(err.contains("step `spin`"), "{err}");
    assert!(err.contains("step budget"), "{err}");
    assert!(edr.seen().is_empty());
}

#[tokio::test]
async fn the_webhook_notifier_posts_the_message_to_a_secret_url() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let mut m = BTreeMap::new();
    m.insert("soc_hook".to_string(), Secret::new(format!("{base}/hook")));
    let hook = HttpConnector::load(
        "chat.yaml",
        "name: chat\nkind: webhook\nbase_url_secret: soc_hook\nbody:\n  text: \"{{ params.message }}\"\n  case: \"{{ case.id }}\"\n",
        Arc::new(Templates::default()),
        Arc::new(StaticSecrets(m)),
    )
    .unwrap();
    let mut cs = Connectors::new();
    cs.add(Arc::new(hook));
    let templates = Arc::new(Templates::default());
    let pb = playbook::load(
        "n.yaml",
        "id: n\nname: n\non: case.created\nsteps:\n  - id: tell\n    notify: { via: chat, message: \"Case {{ case.id }} is {{ case.tier }}\" }\n",
        &templates,
        Some(&cs),
    )
    .unwrap();
    let e = Engine::new(
        Arc::new(MemoryRunStore::new()),
        Policy::default(),
        cs,
        templates,
    );
    e.activate(pb).await.unwrap();
    e.on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
        .await
        .unwrap();
    let seen = edr.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/hook");
    assert_eq!(
        seen[0].body,
        json!({"text": "Case case-42 is high", "case": "case-42"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_approvals_are_applied_once_and_send_once() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let e = Arc::new(
        engine_with(
            MemoryRunStore::new(),
            connector(&base, true, "approve"),
            Policy::default(),
            ISOLATE,
        )
        .await,
    );
    for round in 0..20u32 {
        let started = e
            .on_event(&event(TriggerKind::CaseCreated, "high", round, None), t(0))
            .await
            .unwrap();
        let run = started[0].clone();
        let actions = e.store().actions_of_run(&run).await.unwrap();
        let id = actions[0].id.clone();
        let (e1, e2, id1, id2) = (e.clone(), e.clone(), id.clone(), id.clone());
        let a = tokio::spawn(async move { e1.answer(&id1, "bob", true, None, t(1)).await });
        let b = tokio::spawn(async move { e2.answer(&id2, "carol", true, None, t(1)).await });
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let decided = [&a, &b]
            .iter()
            .filter(|r| matches!(r, Ok(ApprovalStatus::Decided(Decision::Approved))))
            .count();
        assert_eq!(decided, 1, "round {round}: {a:?} {b:?}");
        assert_eq!(edr.seen().len() as u32, round + 1, "round {round}");
        let run = e.store().run(&run).await.unwrap().unwrap();
        assert_eq!(
            run.status,
            RunStatus::Succeeded,
            "round {round}: {:?}",
            run.error
        );
    }
}

#[tokio::test]
async fn a_scheduled_playbook_runs_once_per_period() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let text = r#"id: sweep
name: Sweep
on: { schedule: 15m }
steps:
  - id: poke
    action: edr.isolate_host
    params: { host: "canary-{{ trigger.event_id }}" }
"#;
    let e = engine_with(
        MemoryRunStore::new(),
        connector(&base, true, "auto"),
        Policy::default(),
        text,
    )
    .await;
    assert_eq!(e.on_schedule(t(0)).await.unwrap().len(), 1);
    assert!(e.on_schedule(t(10)).await.unwrap().is_empty());
    assert!(e.on_schedule(t(899)).await.unwrap().is_empty());
    assert_eq!(e.on_schedule(t(900)).await.unwrap().len(), 1);
    let seen = edr.seen();
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0].path, seen[1].path);
}

#[tokio::test]
async fn a_run_keeps_the_playbook_version_it_started_with() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let conn = connector(&base, true, "approve");
    let e = engine_with(
        MemoryRunStore::new(),
        conn.clone(),
        Policy::default(),
        ISOLATE,
    )
    .await;
    let first = e
        .on_event(&event(TriggerKind::CaseCreated, "high", 1, None), t(0))
        .await
        .unwrap();
    // Edit the live playbook while the run waits for approval.
    let edited = ISOLATE.replace("isolated as", "EDITED");
    let mut cs = Connectors::new();
    cs.add(conn);
    let pb = playbook::load("contain.yaml", &edited, &Templates::default(), Some(&cs)).unwrap();
    e.activate(pb).await.unwrap();
    let a = only_action(&e).await;
    e.answer(&a.id, "bob", true, None, t(1)).await.unwrap();
    let notes: Vec<String> = e
        .store()
        .case_changes()
        .iter()
        .filter_map(|c| {
            serde_json::to_value(&c.change).ok()?["text"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(notes, vec!["isolated as iso-1".to_string()]);
    // A new run follows the new version.
    let second = e
        .on_event(&event(TriggerKind::CaseCreated, "high", 2, None), t(2))
        .await
        .unwrap();
    assert_ne!(first, second);
    let run = e.store().run(&second[0]).await.unwrap().unwrap();
    let old = e.store().run(&first[0]).await.unwrap().unwrap();
    assert_ne!(run.playbook_hash, old.playbook_hash);
}

#[tokio::test]
async fn for_each_calls_once_per_item_and_refuses_more_than_its_bound() {
    let edr = Edr::default();
    let base = start_edr(edr.clone()).await;
    let text = ISOLATE.replace(
        "      max_items: 5\n",
        "      max_items: 3\n      concurrency: 2\n",
    );
    let e = engine_with(
        MemoryRunStore::new(),
        connector(&base, true, "auto"),
        Policy::default(),
        &text,
    )
    .await;
    let hosts = |n: usize| -> Value {
        let mut c = case("high");
        c["entities"] = (0..n)
            .map(|i| json!({"type": "host", "value": format!("ws-{i}")}))
            .collect();
        c
    };
    let mut ev = event(TriggerKind::CaseCreated, "high", 1, None);
    ev.case = Some(hosts(3));
    let started = e.on_event(&ev, t(0)).await.unwrap();
    let run = e.store().run(&started[0]).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let seen = edr.seen();
    let mut paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/api/v1/hosts/ws-0/isolate",
            "/api/v1/hosts/ws-1/isolate",
            "/api/v1/hosts/ws-2/isolate"
        ]
    );
    let keys: std::collections::BTreeSet<&str> = seen
        .iter()
        .map(|s| s.headers["idempotency-key"].as_str())
        .collect();
    assert_eq!(keys.len(), 3);

    let mut ev = event(TriggerKind::CaseCreated, "high", 2, None);
    ev.case = Some(hosts(4));
    let started = e.on_event(&ev, t(1)).await.unwrap();
    let run = e.store().run(&started[0]).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.error
            .as_deref()
            .unwrap_or("")
            .contains("bound `max_items` is 3"),
        "{:?}",
        run.error
    );
    assert_eq!(edr.seen().len(), 3);
}

/// A connector that writes each call into the store's journal, so the test sees calls and
/// store writes and flushes in one order.
struct Journaled {
    journal: riposte_respond::store::Journal,
    ops: Vec<riposte_respond::OperationSpec>,
}

impl Connector for Journaled {
    fn name(&self) -> &str {
        "edr"
    }
    fn operations(&self) -> &[riposte_respond::OperationSpec] {
        &self.ops
    }
    fn sends_idempotency_key(&self, _: &str) -> bool {
        true
    }
    fn call<'a>(&'a self, req: &'a CallRequest) -> riposte_respond::connector::CallFuture<'a> {
        self.journal
            .lock()
            .unwrap()
            .push(format!("call {} {}", req.action_id, req.operation));
        Box::pin(async { Ok(riposte_respond::CallOutcome::default()) })
    }
}

/// Every call of an `approve` operation comes after a flush that follows the call's
/// `sending` write; nothing a person was told is done (an approval, an undo) is left
/// unflushed when the answer returns.
fn assert_flushed_before_calls(journal: &[String]) {
    for (i, line) in journal.iter().enumerate() {
        let Some(rest) = line.strip_prefix("call ") else {
            continue;
        };
        let (id, operation) = rest.split_once(' ').unwrap();
        // Every call is recorded `sending` before it leaves (whether inserted so or moved
        // there from `ready`).
        let sending = journal[..i]
            .iter()
            .rposition(|l| *l == format!("write {id} sending"))
            .unwrap_or_else(|| {
                panic!("call of {id} with no `sending` write before it: {journal:#?}")
            });
        if operation == "tag_host" || operation == "release_host" {
            // `auto`: leaves on the write alone; the tick's flush covers power loss.
            continue;
        }
        assert!(
            journal[sending..i].iter().any(|l| l == "flush"),
            "call of {id} at {i} without a flush after its `sending` write at {sending}: {journal:#?}"
        );
    }
}

/// Whether the first write from `from` on (the person's answer being recorded) is flushed
/// by the time the answer returns. Later writes (a call's result) may wait for the next
/// flush: a restart recovers them from the flushed `sending` record.
fn answer_flushed(journal: &[String], from: usize) -> bool {
    let Some(w) = journal[from..].iter().position(|l| l.starts_with("write ")) else {
        return false;
    };
    journal[from + w..].iter().any(|l| l == "flush")
}

#[tokio::test]
async fn every_call_leaves_after_a_flush_and_answers_are_flushed_before_they_return() {
    use riposte_respond::{Class, OperationSpec};
    let journal: riposte_respond::store::Journal = Arc::default();
    let spec = |name: &str, class: Class, inverse: Option<&str>| OperationSpec {
        name: name.into(),
        class,
        inverse: inverse.map(Into::into),
        irreversible: false,
        idempotent: false,
    };
    let mut cs = Connectors::new();
    cs.add(Arc::new(Journaled {
        journal: journal.clone(),
        ops: vec![
            spec("tag_host", Class::Auto, None),
            spec("isolate_host", Class::Approve, Some("release_host")),
            spec("release_host", Class::Auto, None),
        ],
    }));
    let templates = Arc::new(Templates::default());
    let text = "id: contain\nname: c\non: [case.created]\nsteps:\n  - id: tag\n    action: edr.tag_host\n    params: { host: WS-042 }\n  - id: isolate\n    action: edr.isolate_host\n    params: { host: WS-042 }\n";
    let pb = playbook::load("c.yaml", text, &templates, Some(&cs)).unwrap();
    let store = MemoryRunStore::new().journaling(journal.clone());
    let e = Engine::new(Arc::new(store), Policy::default(), cs, templates);
    e.activate(pb).await.unwrap();

    e.on_event(
        &event(TriggerKind::CaseCreated, "high", 1, Some("alice")),
        t(0),
    )
    .await
    .unwrap();
    let isolate = e
        .store()
        .all_actions()
        .into_iter()
        .find(|a| a.operation == "isolate_host")
        .unwrap();
    assert_eq!(isolate.state, ActionState::AwaitingApproval);
    let j = journal.lock().unwrap().clone();
    assert!(j.iter().any(|l| l.ends_with("tag_host")), "{j:#?}");
    assert_flushed_before_calls(&j);
    // The `auto` call's records are synced by the next tick.
    e.tick(t(1)).await.unwrap();
    assert_eq!(
        journal.lock().unwrap().last().map(String::as_str),
        Some("flush")
    );

    let from = journal.lock().unwrap().len();
    e.answer(&isolate.id, "bob", true, None, t(5))
        .await
        .unwrap();
    let j = journal.lock().unwrap().clone();
    assert!(j.iter().any(|l| l.ends_with("isolate_host")), "{j:#?}");
    assert_flushed_before_calls(&j);
    assert!(
        answer_flushed(&j, from),
        "approval acknowledged before its flush: {j:#?}"
    );

    let from = journal.lock().unwrap().len();
    e.undo(&isolate.id, "bob", None, t(9)).await.unwrap();
    let j = journal.lock().unwrap().clone();
    assert!(j.iter().any(|l| l.ends_with("release_host")), "{j:#?}");
    assert_flushed_before_calls(&j);
    assert!(
        answer_flushed(&j, from),
        "undo acknowledged before its flush: {j:#?}"
    );
}

/// The straight-through path of an `auto` step: the run and its action (inserted already
/// `sending`) in one write before the call, the result and the run's finish in one write
/// after it; the audit trail still tells every step. The same event again starts nothing.
#[tokio::test]
async fn an_auto_call_takes_one_write_before_it_and_one_after_it() {
    use riposte_respond::{Class, OperationSpec, RunStore};
    let journal: riposte_respond::store::Journal = Arc::default();
    let mut cs = Connectors::new();
    cs.add(Arc::new(Journaled {
        journal: journal.clone(),
        ops: vec![OperationSpec {
            name: "tag_host".into(),
            class: Class::Auto,
            inverse: None,
            irreversible: false,
            idempotent: false,
        }],
    }));
    let templates = Arc::new(Templates::default());
    let text = "id: tag\nname: t\non: [case.created]\nsteps:\n  - id: tag\n    action: edr.tag_host\n    params: { host: WS-042 }\n";
    let pb = playbook::load("t.yaml", text, &templates, Some(&cs)).unwrap();
    let store = MemoryRunStore::new().journaling(journal.clone());
    let e = Engine::new(Arc::new(store), Policy::default(), cs, templates);
    e.activate(pb).await.unwrap();

    let ev = event(TriggerKind::CaseCreated, "high", 1, None);
    let started = e.on_event(&ev, t(0)).await.unwrap();
    assert_eq!(started.len(), 1);
    let act = e.store().all_actions().pop().unwrap();
    assert_eq!(
        *journal.lock().unwrap(),
        [
            format!("write {} sending", act.id),
            format!("call {} tag_host", act.id),
            format!("write {} succeeded", act.id),
        ]
    );
    assert_eq!(act.attempts, 1);
    let run = e.store().run(&started[0]).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    let trail: Vec<String> = e
        .store()
        .audit_trail()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        trail,
        [
            "run.start",
            "action.request",
            "action.send",
            "action.result",
            "run.step",
            "run.finish"
        ]
    );

    assert!(e.on_event(&ev, t(1)).await.unwrap().is_empty(), "seen");
    assert_eq!(journal.lock().unwrap().len(), 3, "no second call");
    assert_eq!(e.store().audit_trail().len(), 6, "nothing more recorded");
}
