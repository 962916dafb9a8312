//! The response stage end to end, with the real binary and a local HTTP server standing in
//! for an EDR: alerts in → case `high` → a playbook asks to isolate the host → it waits for
//! an approver → one request reaches the EDR → undo sends the inverse → all on the audit
//! trail. Also: restarts while waiting and between send and result, `review` needs a reason,
//! an `auto` step below the policy's tier waits, four eyes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use common::story::{config, one_am_story};
use common::{Server, bin, ndjson, run, wait};
use serde_json::{Value, json};

const EDR_SECRET: &str = "s3cret-edr-token-value";

/// One request the stand-in EDR received.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    key: Option<String>,
    auth: Option<String>,
    body: Value,
}

/// A stand-in EDR: records every request; does each idempotency key's work once (a repeat
/// of a key gets the first answer, as a real EDR honouring `Idempotency-Key` would); answers
/// a host's containment state (`GET /api/hosts/{host}`); can hold the first answer to an
/// isolation for a while after doing its work, as a slow or lost answer would.
struct Edr {
    addr: String,
    log: Arc<Mutex<Vec<Req>>>,
    /// Keys whose work was done, and the containment id each got.
    done: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Edr {
    fn start(hold_first_isolate_ms: u64) -> Edr {
        let log = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(Mutex::new(BTreeMap::new()));
        let hold = Arc::new(AtomicU64::new(hold_first_isolate_ms));
        let (tx, rx) = std::sync::mpsc::channel();
        let (l, d) = (log.clone(), done.clone());
        // Host → containment id, for the status read (`GET /api/hosts/{host}`).
        let c: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap().to_string()).unwrap();
                let app = axum::Router::new().fallback(
                    move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                        let (log, done, hold, contained) =
                            (l.clone(), d.clone(), hold.clone(), c.clone());
                        async move {
                            let h = |n: &str| {
                                headers
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string)
                            };
                            let req = Req {
                                method: method.to_string(),
                                path: uri.path().to_string(),
                                key: h("idempotency-key"),
                                auth: h("authorization"),
                                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                            };
                            log.lock().unwrap().push(req.clone());
                            // /api/hosts/{host}[/{verb}]
                            let parts: Vec<&str> = req.path.split('/').collect();
                            let host = parts.get(3).copied().unwrap_or_default().to_string();
                            let verb = parts.get(4).copied().unwrap_or_default();
                            if method == Method::GET {
                                let id = contained.lock().unwrap().get(&host).cloned();
                                return axum::Json(json!({
                                    "host": host,
                                    "state": if id.is_some() { "contained" } else { "normal" },
                                    "containment_id": id,
                                }));
                            }
                            let key = req.key.clone().unwrap_or_default();
                            let seen = done.lock().unwrap().get(&key).cloned();
                            if let Some(id) = seen {
                                return axum::Json(json!({ "id": id, "repeat": true }));
                            }
                            let id = {
                                let mut done = done.lock().unwrap();
                                let n = done.len();
                                done.entry(key).or_insert(format!("cont-{n}")).clone()
                            };
                            match verb {
                                "isolate" => {
                                    contained.lock().unwrap().insert(host, id.clone());
                                }
                                "release" => {
                                    contained.lock().unwrap().remove(&host);
                                }
                                _ => {}
                            }
                            // The work is done; the answer may be slow to come back.
                            if verb == "isolate" {
                                let ms = hold.swap(0, Ordering::SeqCst);
                                if ms > 0 {
                                    tokio::time::sleep(Duration::from_millis(ms)).await;
                                }
                            }
                            axum::Json(json!({ "id": id }))
                        }
                    },
                );
                axum::serve(listener, app).await.unwrap();
            });
        });
        Edr {
            addr: rx.recv().unwrap(),
            log,
            done,
        }
    }

    fn requests(&self, suffix: &str) -> Vec<Req> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.ends_with(suffix))
            .cloned()
            .collect()
    }

    /// Work done for requests whose path ends with `suffix`.
    fn work(&self, suffix: &str) -> usize {
        let keys: BTreeSet<String> = self
            .requests(suffix)
            .into_iter()
            .filter_map(|r| r.key)
            .collect();
        let done = self.done.lock().unwrap();
        keys.iter().filter(|k| done.contains_key(*k)).count()
    }
}

const CONTAIN: &str = r#"id: contain-host
name: Isolate the host of a high-confidence case
on: [case.created, case.tier_changed]
if: case.tier in ["validated", "high"]
steps:
  - id: isolate
    action: edr.isolate_host
    for_each:
      items: case.entities | selectattr("type", "eq", "host") | map(attribute="value") | list
      max_items: 5
    params: { host: "{{ item }}" }
  - id: mark
    tag: contained
"#;

const WIPE: &str = r#"id: wipe-host
name: Wipe the host (full review)
on: [case.created, case.tier_changed]
if: case.tier in ["validated", "high"]
steps:
  - id: wipe
    action: edr.wipe_host
    params: { host: "ws-042" }
"#;

const TAG: &str = r#"id: tag-host
name: Tag the host in the EDR (auto, but the policy wants a validated case)
on: [case.created, case.tier_changed]
if: case.tier in ["validated", "high"]
steps:
  - id: tag
    action: edr.tag_host
    params: { host: "ws-042" }
"#;

/// A data dir, a configuration with `respond:` pointing at the stand-in EDR, the EDR's
/// token sealed in the vault, and the playbooks given.
struct Setup {
    _dir: tempfile::TempDir,
    cfg: PathBuf,
    data: PathBuf,
    edr: Edr,
}

const POLICY: &str = "four_eyes: true\nmin_tier_for_auto: validated\napproval_timeout: 4h\n";

fn setup(hold_first_isolate_ms: u64, playbooks: &[(&str, &str)]) -> Setup {
    setup_with(POLICY, hold_first_isolate_ms, playbooks)
}

fn setup_with(policy: &str, hold_first_isolate_ms: u64, playbooks: &[(&str, &str)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let cfg = config(base);
    let edr = Edr::start(hold_first_isolate_ms);
    std::fs::create_dir_all(base.join("connectors")).unwrap();
    std::fs::create_dir_all(base.join("playbooks")).unwrap();
    std::fs::write(
        base.join("connectors/edr.yaml"),
        format!(
            r#"name: edr
base_url: http://{}/api
timeout: 60s
auth: {{ bearer: edr_token }}
idempotency_header: Idempotency-Key
operations:
  isolate_host:
    class: approve
    method: POST
    path: "/hosts/{{{{ params.host | urlencode }}}}/isolate"
    body: {{ host: "{{{{ params.host }}}}", case: "{{{{ case.id }}}}" }}
    keep: {{ containment_id: /id }}
    inverse: release_host
    check:
      path: "/hosts/{{{{ params.host | urlencode }}}}"
      done_when: {{ /state: contained }}
      keep: {{ containment_id: /containment_id }}
  release_host:
    class: auto
    method: POST
    path: "/hosts/{{{{ params.host | urlencode }}}}/release"
    body: {{ containment_id: "{{{{ undo.containment_id }}}}" }}
  wipe_host:
    class: review
    method: POST
    path: "/hosts/{{{{ params.host | urlencode }}}}/wipe"
  tag_host:
    class: auto
    method: POST
    path: "/hosts/{{{{ params.host | urlencode }}}}/tag"
"#,
            edr.addr
        ),
    )
    .unwrap();
    std::fs::write(base.join("policy.yaml"), policy).unwrap();
    for (name, text) in playbooks {
        std::fs::write(base.join("playbooks").join(name), text).unwrap();
    }
    let mut c = std::fs::read_to_string(&cfg).unwrap();
    c.push_str(
        "respond:\n  playbooks: playbooks\n  connectors: connectors\n  policy: policy.yaml\n  secret_key_file: secret.key\n",
    );
    std::fs::write(&cfg, c).unwrap();
    let key = base.join("secret.key");
    let (code, _, err) = run(&["secret", "keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let data = base.join("data");
    set_secret(&data, &key, "edr_token", EDR_SECRET);
    Setup {
        _dir: dir,
        cfg,
        data,
        edr,
    }
}

/// Seals `value` as the secret `name` in the data dir's vault, through the CLI.
fn set_secret(data: &Path, key: &Path, name: &str, value: &str) {
    let mut child = Command::new(bin())
        .args(["secret", "set", name, "--data-dir"])
        .arg(data)
        .arg("--key-file")
        .arg(key)
        .env_remove("RIPOSTE_SECRET_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Setup {
    fn base(&self) -> &Path {
        self.cfg.parent().unwrap()
    }

    fn serve(&self) -> Server {
        Server::start(&self.data, &["--config", self.cfg.to_str().unwrap()])
    }
}

fn token(data: &Path, name: &str, role: &str) -> String {
    let (code, out, err) = run(&[
        "token",
        "create",
        "--data-dir",
        data.to_str().unwrap(),
        "--name",
        name,
        "--role",
        role,
    ]);
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

/// Sends the 1 AM story (the case ends `high`) and waits for the action the playbook
/// `playbook` asks for to wait at its gate; returns it.
fn story_until_waiting(srv: &Server, operation: &str) -> Value {
    for pair in one_am_story().chunks(2) {
        let (code, v) = srv.post("/api/v1/ingest/auto", Some(&srv.token), &ndjson(pair));
        assert_eq!(code, 200, "{v}");
    }
    waiting_action(srv, operation)
}

fn waiting_action(srv: &Server, operation: &str) -> Value {
    wait(&format!("`{operation}` to await approval"), || {
        let (code, v) = srv.get("/api/v1/actions?state=awaiting_approval", Some(&srv.token));
        assert_eq!(code, 200, "{v}");
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["operation"] == operation)
            .cloned()
    })
}

fn action_in_state(srv: &Server, id: &str, state: &str) -> Value {
    wait(&format!("action {id} to be {state}"), || {
        let (code, v) = srv.get(&format!("/api/v1/actions/{id}"), Some(&srv.token));
        assert_eq!(code, 200, "{v}");
        (v["state"]["state"] == state).then_some(v)
    })
}

/// Every audit record's body, in order.
fn audit_bodies(srv: &Server) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (code, v) = srv.get(
            &format!("/api/v1/audit?after={after}&limit=1000"),
            Some(&srv.token),
        );
        assert_eq!(code, 200, "{v}");
        let items = v["items"].as_array().unwrap();
        if items.is_empty() {
            return out;
        }
        for i in items {
            after = i["seq"].as_u64().unwrap();
            out.push(i["body"].clone());
        }
    }
}

#[test]
fn alerts_to_approved_isolation_to_undo_with_review_auto_tier_and_four_eyes() {
    let s = setup(
        0,
        &[
            ("contain.yaml", CONTAIN),
            ("wipe.yaml", WIPE),
            ("tag.yaml", TAG),
        ],
    );
    let srv = s.serve();
    let bob = token(&s.data, "bob", "approver");
    let analyst = token(&s.data, "carol", "analyst");
    // A principal with the requester's name: four eyes refuses it whatever its role.
    let requester = token(&s.data, "playbook:wipe-host", "approver");

    let isolate = story_until_waiting(&srv, "isolate_host");
    let id = isolate["id"].as_str().unwrap().to_string();
    assert_eq!(isolate["class"], "approve", "{isolate:#}");
    assert_eq!(isolate["params"]["host"], "ws-042", "{isolate:#}");
    let wipe = waiting_action(&srv, "wipe_host");
    let wipe_id = wipe["id"].as_str().unwrap().to_string();
    let tag = waiting_action(&srv, "tag_host");
    // The auto step waits: the case is `high`, the policy wants `validated` for auto.
    assert_eq!(tag["class"], "auto", "{tag:#}");
    assert_eq!(
        tag["approval"]["rule"]["until_tier"], "validated",
        "{tag:#}"
    );
    assert!(srv.get("/api/v1/cases", Some(&srv.token)).1["items"][0]["tier"] == "high");
    assert!(
        s.edr.requests("").is_empty(),
        "nothing is sent before approval"
    );

    // Roles: an analyst may look but not approve.
    let (code, v) = srv.post(
        &format!("/api/v1/actions/{id}/approve"),
        Some(&analyst),
        b"",
    );
    assert_eq!(code, 403, "{v}");
    let (code, v) = srv.get("/api/v1/actions?state=awaiting_approval", Some(&analyst));
    assert_eq!(code, 200, "{v}");

    // A second person approves, through the CLI (bound to the token's principal).
    let (code, out, err) = run(&[
        "actions",
        "approve",
        &id,
        "--reason",
        "confirmed compromise",
        "--url",
        &format!("http://{}", srv.http),
        "--token",
        &bob,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("approved"), "{out}");
    let done = action_in_state(&srv, &id, "succeeded");
    assert_eq!(done["approval"]["votes"][0]["principal"], "bob", "{done:#}");
    let sent = s.edr.requests("/isolate");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].path, "/api/hosts/ws-042/isolate");
    assert_eq!(
        sent[0].key.as_deref(),
        Some(id.as_str()),
        "the action id is the key"
    );
    assert_eq!(
        sent[0].auth.as_deref(),
        Some(format!("Bearer {EDR_SECRET}").as_str())
    );
    assert_eq!(sent[0].body["host"], "ws-042");
    // A second answer finds it decided.
    let (code, v) = srv.post(&format!("/api/v1/actions/{id}/approve"), Some(&bob), b"");
    assert_eq!(code, 409, "{v}");
    // The run goes on: the case is tagged.
    let run_id = done["run_id"].as_str().unwrap();
    wait("the run to finish", || {
        let (_, v) = srv.get(&format!("/api/v1/runs/{run_id}"), Some(&srv.token));
        (v["run"]["status"] == "succeeded").then_some(())
    });
    let case_id = done["case_id"].as_str().unwrap();
    let (_, case) = srv.get(&format!("/api/v1/cases/{case_id}"), Some(&srv.token));
    assert_eq!(case["tags"], json!(["contained"]), "{case:#}");

    // `review`: no reason, no run; the requester may not approve; a reason opens it.
    let (code, v) = srv.post(
        &format!("/api/v1/actions/{wipe_id}/approve"),
        Some(&bob),
        b"",
    );
    assert_eq!(code, 422, "{v}");
    let (code, v) = srv.post(
        &format!("/api/v1/actions/{wipe_id}/approve"),
        Some(&bob),
        br#"{"reason": "  "}"#,
    );
    assert_eq!(code, 422, "{v}");
    let (code, v) = srv.post(
        &format!("/api/v1/actions/{wipe_id}/approve"),
        Some(&requester),
        br#"{"reason": "mine"}"#,
    );
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("four eyes"), "{v}");
    assert!(s.edr.requests("/wipe").is_empty());
    let (code, v) = srv.post(
        &format!("/api/v1/actions/{wipe_id}/approve"),
        Some(&bob),
        br#"{"reason": "ransomware staging host; image taken"}"#,
    );
    assert_eq!(code, 200, "{v}");
    action_in_state(&srv, &wipe_id, "succeeded");
    assert_eq!(s.edr.requests("/wipe").len(), 1);
    // The auto step below the tier still waits and sent nothing.
    let tag_id = tag["id"].as_str().unwrap();
    action_in_state(&srv, tag_id, "awaiting_approval");
    assert!(s.edr.requests("/tag").is_empty());
    // Rejected instead: denied, never sent, the run ends failed.
    let (code, v) = srv.post(
        &format!("/api/v1/actions/{tag_id}/reject"),
        Some(&bob),
        br#"{"reason": "not without a validated case"}"#,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "rejected", "{v}");
    action_in_state(&srv, tag_id, "denied");
    let tag_run = tag["run_id"].as_str().unwrap();
    wait("the rejected run to fail", || {
        let (_, v) = srv.get(&format!("/api/v1/runs/{tag_run}"), Some(&srv.token));
        (v["run"]["status"] == "failed").then_some(())
    });
    assert!(s.edr.requests("/tag").is_empty());
    let (code, _) = srv.get("/api/v1/runs/run-nope", Some(&srv.token));
    assert_eq!(code, 404);

    // Undo: the inverse, with what the isolation kept.
    let (code, v) = srv.post(
        &format!("/api/v1/actions/{id}/undo"),
        Some(&bob),
        br#"{"reason": "false alarm after all"}"#,
    );
    assert_eq!(code, 200, "{v}");
    let undone = action_in_state(&srv, &id, "undone");
    assert_eq!(undone["state"]["by"], "bob", "{undone:#}");
    let released = s.edr.requests("/release");
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(released[0].path, "/api/hosts/ws-042/release");
    assert_eq!(released[0].body["containment_id"], "cont-0");
    assert_eq!(s.edr.requests("/isolate").len(), 1);
    let (code, v) = srv.post(&format!("/api/v1/actions/{id}/undo"), Some(&bob), b"");
    assert_eq!(code, 200, "a second undo returns the first: {v}");
    assert_eq!(s.edr.requests("/release").len(), 1);
    let (code, v) = srv.post("/api/v1/actions/act-nope/undo", Some(&bob), b"");
    assert_eq!(code, 404, "{v}");

    // The trail: each step, who and what; the secret nowhere.
    let trail = audit_bodies(&srv);
    let about = |verb: &str, action: &str| {
        trail.iter().any(|b| {
            b["action"] == verb
                && (b["detail"]["action"] == action || b["detail"]["inverse"] == action)
        })
    };
    for verb in [
        "action.request",
        "approval.answer",
        "action.send",
        "action.result",
        "action.undo",
        "action.undone",
    ] {
        assert!(
            about(verb, &id),
            "no `{verb}` about {id} in the audit trail"
        );
    }
    assert!(trail.iter().any(|b| b["action"] == "run.start"));
    assert!(trail.iter().any(|b| b["action"] == "case.change"));
    assert!(
        trail
            .iter()
            .any(|b| b["action"] == "approval.answer" && b["actor"] == "bob")
    );
    assert!(
        trail
            .iter()
            .any(|b| b["action"] == "approval.refused" && b["actor"] == "playbook:wipe-host")
    );
    let text = serde_json::to_string(&trail).unwrap();
    assert!(
        !text.contains(EDR_SECRET),
        "the secret is in the audit trail"
    );
    let (_, all) = srv.get(&format!("/api/v1/runs/{run_id}"), Some(&srv.token));
    assert!(!all.to_string().contains(EDR_SECRET));
    drop(srv);
    let (code, out, err) = run(&["audit", "verify", "--data-dir", s.data.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("intact"), "{out}");
}

/// kill -9 while the isolation waits for its approver: after the restart the approval
/// resumes the run and the EDR sees one request.
#[test]
fn a_restart_while_waiting_for_approval_then_approval_sends_once() {
    let s = setup(0, &[("contain.yaml", CONTAIN)]);
    let mut srv = s.serve();
    let bob = token(&s.data, "bob", "approver");
    let isolate = story_until_waiting(&srv, "isolate_host");
    let id = isolate["id"].as_str().unwrap().to_string();
    srv.kill9();
    let srv = s.serve();
    // Still waiting after the restart, nothing sent.
    assert_eq!(waiting_action(&srv, "isolate_host")["id"], id.as_str());
    assert!(s.edr.requests("").is_empty());
    let (code, v) = srv.post(
        &format!("/api/v1/actions/{id}/approve"),
        Some(&bob),
        br#"{"reason": "go"}"#,
    );
    assert_eq!(code, 200, "{v}");
    action_in_state(&srv, &id, "succeeded");
    let run_id = isolate["run_id"].as_str().unwrap();
    wait("the run to finish", || {
        let (_, v) = srv.get(&format!("/api/v1/runs/{run_id}"), Some(&srv.token));
        (v["run"]["status"] == "succeeded").then_some(())
    });
    assert_eq!(s.edr.requests("/isolate").len(), 1);
    drop(srv);
    let (code, out, err) = run(&["audit", "verify", "--data-dir", s.data.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

/// kill -9 after the isolation was sent and before its answer (the EDR isolates the host,
/// then holds its answer): after the restart the tick finds the action `sending`, asks the
/// EDR for the host's state (the operation's `check`), sees it contained, and records the
/// action as succeeded without sending it again: the EDR sees exactly one isolate request.
#[test]
fn a_restart_between_send_and_result_resumes_and_the_edr_sees_one_request() {
    let s = setup(600_000, &[("contain.yaml", CONTAIN)]);
    let mut srv = s.serve();
    let bob = token(&s.data, "bob", "approver");
    let isolate = story_until_waiting(&srv, "isolate_host");
    let id = isolate["id"].as_str().unwrap().to_string();
    // The approval drives the send; its answer never comes back (the server dies).
    let (addr, path, tok) = (
        srv.http.clone(),
        format!("/api/v1/actions/{id}/approve"),
        bob.clone(),
    );
    let pending = std::thread::spawn(move || {
        common::request(&addr, "POST", &path, Some(&tok), br#"{"reason": "go"}"#)
    });
    wait("the EDR to receive the isolation", || {
        (!s.edr.requests("/isolate").is_empty()).then_some(())
    });
    srv.kill9();
    let _ = pending.join();
    assert_eq!(s.edr.work("/isolate"), 1, "the EDR did the work");

    let srv = s.serve();
    let done = action_in_state(&srv, &id, "succeeded");
    let sent = s.edr.requests("/isolate");
    assert_eq!(
        sent.len(),
        1,
        "one isolate request, before the restart: {sent:?}"
    );
    assert_eq!(sent[0].key.as_deref(), Some(id.as_str()), "{sent:?}");
    let checks: Vec<Req> = s
        .edr
        .requests("/hosts/ws-042")
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(
        checks.len(),
        1,
        "one state read after the restart: {checks:?}"
    );
    assert_eq!(done["attempts"], 1, "{done:#}");
    assert_eq!(
        done["state"]["outcome"]["fields"]["containment_id"], "cont-0",
        "the check's answer kept: {done:#}"
    );
    let run_id = isolate["run_id"].as_str().unwrap();
    wait("the run to finish", || {
        let (_, v) = srv.get(&format!("/api/v1/runs/{run_id}"), Some(&srv.token));
        (v["run"]["status"] == "succeeded").then_some(())
    });
    let trail = audit_bodies(&srv);
    assert!(
        trail
            .iter()
            .any(|b| b["action"] == "action.reconciled" && b["detail"]["action"] == id.as_str()),
        "the reconciliation is on the record"
    );
    drop(srv);
    let (code, out, err) = run(&["audit", "verify", "--data-dir", s.data.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

/// A playbook with a mistake stops start-up, naming the file, line and column.
#[test]
fn a_bad_playbook_stops_start_up_naming_file_line_and_column() {
    let bad = CONTAIN.replace("action: edr.isolate_host", "action: edr.isolate");
    let s = setup(0, &[("contain.yaml", &bad)]);
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&s.data)
        .arg("--config")
        .arg(&s.cfg)
        .env("RIPOSTE_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("contain.yaml:7:5: step `isolate`")
            && err.contains("has no operation `isolate`"),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "it never listened"
    );
    assert!(
        !s.data.join("admin.token").exists(),
        "refused before anything was made"
    );
}

/// `alert.received`: each new alert (never a duplicate) starts the playbook, and an `auto`
/// operation runs at once.
#[test]
fn a_new_alert_starts_an_alert_playbook_whose_auto_step_runs_at_once() {
    let pb = r#"id: tag-on-alert
name: Tag the host of every serious alert
on: alert.received
if: alert.severity.score >= 50
steps:
  - id: tag
    action: edr.tag_host
    params: { host: "{{ (alert.entities | selectattr('type', 'eq', 'host') | first).value }}" }
"#;
    let s = setup_with("four_eyes: true\n", 0, &[("tag.yaml", pb)]);
    let srv = s.serve();
    let story = one_am_story();
    let (code, v) = srv.post("/api/v1/ingest/auto", Some(&srv.token), &ndjson(&story));
    assert_eq!(code, 200, "{v}");
    let alerts = srv.all_alerts();
    let serious = alerts
        .iter()
        .filter(|a| a["severity"]["score"].as_u64().unwrap() >= 50)
        .count();
    assert!(serious > 0, "{alerts:#?}");
    wait("one tag per serious alert", || {
        (s.edr.requests("/tag").len() >= serious).then_some(())
    });
    // The same alerts again are duplicates: nothing new starts.
    let (code, v) = srv.post("/api/v1/ingest/auto", Some(&srv.token), &ndjson(&story));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["duplicates"], story.len(), "{v}");
    let sent = s.edr.requests("/tag");
    assert_eq!(sent.len(), serious, "{sent:?}");
    assert!(
        sent.iter().all(|r| r.path == "/api/hosts/ws-042/tag"),
        "{sent:?}"
    );
}

const SLACK_BOT_TOKEN: &str = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";
const SLACK_SIGNING: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// One Web API call: path, Authorization header, JSON body.
type SlackCall = (String, Option<String>, Value);

/// A stand-in for Slack's Web API: records each call (path, Authorization, JSON body) and
/// answers as `chat.postMessage` does.
struct SlackApi {
    addr: String,
    log: Arc<Mutex<Vec<SlackCall>>>,
}

impl SlackApi {
    fn start() -> SlackApi {
        let log: Arc<Mutex<Vec<SlackCall>>> = Arc::default();
        let l = log.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap().to_string()).unwrap();
                let app = axum::Router::new().fallback(
                    move |uri: Uri, headers: HeaderMap, body: Bytes| {
                        let log = l.clone();
                        async move {
                            let auth = headers
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string);
                            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let channel = body["channel"].clone();
                            log.lock().unwrap().push((uri.path().to_string(), auth, body));
                            axum::Json(json!({"ok": true, "channel": channel, "ts": "1700000000.000100",
                                              "message": {"type": "message", "subtype": "bot_message"}}))
                        }
                    },
                );
                axum::serve(listener, app).await.unwrap();
            });
        });
        SlackApi {
            addr: rx.recv().unwrap(),
            log,
        }
    }

    fn posts(&self) -> Vec<SlackCall> {
        self.log.lock().unwrap().clone()
    }
}

/// A Slack `block_actions` click on one of riposte's buttons, form-encoded as Slack sends it.
fn slack_click(user: &str, button: &str, action: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase(), "team_id": "T0SOC"},
        "team": {"id": "T0SOC", "domain": "soc"},
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0SOC"},
        "trigger_id": "123.456.abc",
        "response_url": "https://hooks.slack.com/actions/T0SOC/1/xyz",
        "actions": [{"type": "button", "action_id": button, "block_id": format!("riposte:{action}"),
                     "value": action, "action_ts": "1700000001.000200"}],
    });
    let enc: String = payload
        .to_string()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("payload={enc}")
}

/// Slack's request signature: `v0=` hex(HMAC-SHA256(secret, `v0:{ts}:{body}`)).
fn slack_headers(secret: &str, ts: i64, body: &str) -> Vec<(&'static str, String)> {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    vec![
        ("Content-Type", "application/x-www-form-urlencoded".into()),
        ("X-Slack-Request-Timestamp", ts.to_string()),
        ("X-Slack-Signature", format!("v0={sig}")),
    ]
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Adds the Slack connector (on a stand-in), approval notices to it, and Slack approvals
/// with bob and carol mapped, to a setup.
fn with_slack(s: &Setup) -> SlackApi {
    let slack = SlackApi::start();
    let base = s.base().to_path_buf();
    std::fs::write(
        base.join("connectors/slack.yaml"),
        format!(
            "name: slack\nkind: slack\ntoken: slack_bot\nchannel: C0SOC\nbase_url: http://{}/api\npublic_url: https://riposte.corp.example\ntimeout: 5s\n",
            slack.addr
        ),
    )
    .unwrap();
    let mut c = std::fs::read_to_string(&s.cfg).unwrap();
    c.push_str("  approvals: { notify: [slack] }\n  slack:\n    signing_secret: slack_signing\n    users: { U0BOB: bob, U0CAROL: carol }\n");
    std::fs::write(&s.cfg, c).unwrap();
    let key = base.join("secret.key");
    set_secret(&s.data, &key, "slack_bot", SLACK_BOT_TOKEN);
    set_secret(&s.data, &key, "slack_signing", SLACK_SIGNING);
    slack
}

#[test]
fn a_signed_slack_click_approves_and_forged_replayed_or_unentitled_clicks_are_refused() {
    let s = setup(0, &[("contain.yaml", CONTAIN)]);
    let slack = with_slack(&s);
    let srv = s.serve();
    token(&s.data, "bob", "approver");
    token(&s.data, "carol", "analyst");

    let isolate = story_until_waiting(&srv, "isolate_host");
    let id = isolate["id"].as_str().unwrap().to_string();

    // The approval request reached Slack, with the bot token and both buttons for this action.
    let (path, auth, msg) = wait("the approval message in Slack", || {
        slack.posts().first().cloned()
    });
    assert_eq!(path, "/api/chat.postMessage");
    assert_eq!(
        auth.as_deref(),
        Some(format!("Bearer {SLACK_BOT_TOKEN}").as_str())
    );
    assert_eq!(msg["channel"], "C0SOC");
    let buttons = msg["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("an actions block")["elements"]
        .clone();
    let ids: Vec<&str> = buttons
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["action_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["riposte_approve", "riposte_reject"], "{msg:#}");
    assert!(
        buttons
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["value"] == id.as_str()),
        "{msg:#}"
    );
    let text = msg["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        text.contains("edr.isolate_host") && text.contains(&format!("/api/v1/actions/{id}")),
        "{text}"
    );

    let post = |headers: &[(&str, String)], body: &str| {
        common::request_with(
            &srv.http,
            "POST",
            "/slack/interactions",
            headers,
            body.as_bytes(),
        )
        .unwrap()
    };
    let approve_by = |user: &str| slack_click(user, "riposte_approve", &id);
    // Forged: signed with another secret.
    let body = approve_by("U0BOB");
    let (code, v) = post(&slack_headers("not-the-secret", now_secs(), &body), &body);
    assert_eq!(code, 401, "{v}");
    // Replayed from long ago: correctly signed, but the timestamp is 10 minutes old.
    let (code, v) = post(
        &slack_headers(SLACK_SIGNING, now_secs() - 600, &body),
        &body,
    );
    assert_eq!(code, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("stale"), "{v}");
    // Signed, but carol is an analyst, and eve is nobody riposte knows.
    let body = approve_by("U0CAROL");
    let (code, v) = post(&slack_headers(SLACK_SIGNING, now_secs(), &body), &body);
    assert_eq!(code, 403, "{v}");
    let body = approve_by("U0EVE");
    let (code, v) = post(&slack_headers(SLACK_SIGNING, now_secs(), &body), &body);
    assert_eq!(code, 403, "{v}");
    assert!(
        s.edr.requests("/isolate").is_empty(),
        "no refused click sent anything"
    );
    assert_eq!(
        srv.get(&format!("/api/v1/actions/{id}"), Some(&srv.token))
            .1["state"]["state"],
        "awaiting_approval"
    );

    // Bob's signed click approves; the EDR gets exactly one request.
    let body = approve_by("U0BOB");
    let headers = slack_headers(SLACK_SIGNING, now_secs(), &body);
    let (code, v) = post(&headers, &body);
    assert_eq!(code, 200, "{v}");
    let done = action_in_state(&srv, &id, "succeeded");
    assert_eq!(done["approval"]["votes"][0]["principal"], "bob", "{done:#}");
    // The same signed request again is a replay.
    let (code, v) = post(&headers, &body);
    assert_eq!(code, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("replay"), "{v}");
    assert_eq!(s.edr.requests("/isolate").len(), 1);

    // All of it is on the record, and the record holds.
    let audit = audit_bodies(&srv);
    let of = |verb: &str| {
        audit
            .iter()
            .filter(|a| a["action"] == verb)
            .cloned()
            .collect::<Vec<_>>()
    };
    let refused = of("slack.refused");
    assert_eq!(refused.len(), 5, "{refused:#?}");
    let reasons: Vec<String> = refused
        .iter()
        .map(|r| r["detail"]["reason"].to_string())
        .collect();
    for want in [
        "does not match",
        "stale",
        "approver role",
        "not mapped",
        "replay",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "no refusal for {want}: {reasons:#?}"
        );
    }
    let clicks = of("slack.click");
    assert_eq!(clicks.len(), 1, "{clicks:#?}");
    assert_eq!(clicks[0]["actor"], "bob");
    assert_eq!(clicks[0]["detail"]["slack_user"], "U0BOB");
    assert_eq!(of("approval.notified").len(), 1);
    let (code, out, err) = run(&["audit", "verify", "--data-dir", s.data.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    // The bot token and the signing secret are nowhere in the trail.
    let trail = serde_json::to_string(&audit).unwrap();
    assert!(!trail.contains(SLACK_BOT_TOKEN) && !trail.contains(SLACK_SIGNING));
}

#[test]
fn no_secret_reaches_a_log_line_an_api_answer_or_the_audit_trail() {
    let s = setup(0, &[("contain.yaml", CONTAIN)]);
    let slack = with_slack(&s);
    let log = s.base().join("serve.log");
    // Everything riposte and its libraries log, at the most detailed level.
    let srv = Server::start_logging(
        &s.data,
        &["--config", s.cfg.to_str().unwrap()],
        "trace",
        Some(&log),
    );
    let bob = token(&s.data, "bob", "approver");
    let isolate = story_until_waiting(&srv, "isolate_host");
    let id = isolate["id"].as_str().unwrap().to_string();
    wait("the approval message in Slack", || {
        slack.posts().first().cloned()
    });
    let body = slack_click("U0BOB", "riposte_approve", &id);
    let (code, v) = common::request_with(
        &srv.http,
        "POST",
        "/slack/interactions",
        &slack_headers(SLACK_SIGNING, now_secs(), &body),
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{v}");
    action_in_state(&srv, &id, "succeeded");
    let (code, v) = srv.post(&format!("/api/v1/actions/{id}/undo"), Some(&bob), b"");
    assert_eq!(code, 200, "{v}");
    wait("the EDR to get the release", || {
        (!s.edr.requests("/release").is_empty()).then_some(())
    });
    // The secrets did go out, where they belong.
    assert_eq!(
        s.edr.requests("/isolate")[0].auth.as_deref(),
        Some(format!("Bearer {EDR_SECRET}").as_str())
    );

    let mut answers = String::new();
    for path in [
        "/api/v1/actions".to_string(),
        format!("/api/v1/actions/{id}"),
        format!("/api/v1/runs/{}", isolate["run_id"].as_str().unwrap()),
        "/api/v1/stats".to_string(),
        "/api/v1/cases".to_string(),
    ] {
        let (code, v) = srv.get(&path, Some(&srv.token));
        assert_eq!(code, 200, "{path}: {v}");
        answers.push_str(&v.to_string());
    }
    answers.push_str(&serde_json::to_string(&audit_bodies(&srv)).unwrap());
    drop(srv);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.lines().count() > 100 && logged.contains("TRACE"),
        "the log holds the run at trace level ({} lines)",
        logged.lines().count()
    );
    for (name, secret) in [
        ("the EDR token", EDR_SECRET),
        ("the Slack bot token", SLACK_BOT_TOKEN),
        ("the Slack signing secret", SLACK_SIGNING),
    ] {
        assert!(!logged.contains(secret), "{name} is in the log");
        assert!(
            !answers.contains(secret),
            "{name} is in an API answer or the audit trail"
        );
    }
}
