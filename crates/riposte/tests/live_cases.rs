//! Cases formed live by `riposte serve` as alerts arrive, the same as a replay forms them;
//! rebuilt after kill -9; decoys and enrichment reloaded without a restart.

mod common;

use common::story::{config, falcon, one_am_story, replay_cases};
use common::{Server, ndjson, run, wait};
use serde_json::{Value, json};

/// Polls `GET path` until `done` holds for the answer (the case task writes shortly after
/// the ingest answer); fails after 60 s with the path.
fn wait_for(srv: &Server, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait(path, || {
        let (code, v) = srv.get(path, Some(&srv.token));
        assert_eq!(code, 200, "{v}");
        done(&v).then_some(v)
    })
}

fn alert_ids(c: &Value) -> Vec<String> {
    let mut v: Vec<String> = c["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// The 1 AM story sent over HTTP in three requests becomes the one case a replay of the same
/// records forms (same id, tier, risk and alerts). After kill -9 the server rebuilds the open
/// window from the stored alerts, so a seventh alert joins that case instead of starting one.
#[test]
fn alerts_over_http_form_the_replayed_case_and_keep_joining_it_after_kill9() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let story = one_am_story();
    let input = dir.path().join("story.ndjson");
    std::fs::write(&input, ndjson(&story)).unwrap();
    let replayed = replay_cases(dir.path(), &cfg, &input);
    assert_eq!(replayed.len(), 1);
    let want = &replayed[0];

    let data = dir.path().join("live");
    let mut srv = Server::start(&data, &["--config", cfg.to_str().unwrap()]);
    for pair in story.chunks(2) {
        let (code, v) = srv.post("/api/v1/ingest/auto", Some(&srv.token), &ndjson(pair));
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["accepted"], 2, "{v}");
    }
    let list = wait_for(&srv, "/api/v1/cases", |v| {
        v["items"]
            .as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["alerts"].as_array().unwrap().len() == 6)
    });
    let live = &list["items"][0];
    assert_eq!(live["id"], want["id"], "{live:#}");
    assert_eq!(live["tier"], "high", "{live:#}");
    assert_eq!(live["tier"], want["tier"]);
    assert_eq!(live["risk"], want["risk"]);
    assert_eq!(alert_ids(live), alert_ids(want));
    assert_eq!(live["status"], "open");

    // A duplicate changes nothing.
    let (code, v) = srv.post(
        "/api/v1/ingest/auto",
        Some(&srv.token),
        &ndjson(&story[..1]),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["duplicates"], 1, "{v}");

    srv.kill9();
    let srv = Server::start(&data, &["--config", cfg.to_str().unwrap()]);
    let seventh = falcon(
        7,
        "WS-042",
        "alice",
        common::story::T0 + 15 * 60_000,
        4,
        "T1041",
    );
    let (code, v) = srv.post("/api/v1/ingest/auto", Some(&srv.token), &ndjson(&[seventh]));
    assert_eq!(code, 200, "{v}");
    let list = wait_for(&srv, "/api/v1/cases", |v| {
        v["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["alerts"].as_array().unwrap().len() == 7))
    });
    let items = list["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        1,
        "the seventh alert joined the rebuilt case: {list:#}"
    );
    assert_eq!(items[0]["id"], want["id"]);

    // Every case write is on the audit trail, which stays intact.
    let (code, out, err) = run(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

/// mallory asks for a service ticket for svc-sql-old, twice before it is a decoy and once
/// after: only the last use is a decoy hit.
fn ticket_request(minute: u32) -> Value {
    let t = format!("2024-05-01T02:{minute:02}:00.000Z");
    json!({
        "@timestamp": t,
        "winlog": {"event_id": 4769, "channel": "Security", "computer_name": "DC01.corp.example",
                   "provider_name": "Microsoft-Windows-Security-Auditing", "time_created": t,
                   "event_data": {"TargetUserName": "mallory@CORP.EXAMPLE", "ServiceName": "svc-sql-old",
                                  "IpAddress": "::ffff:10.0.9.13", "TicketEncryptionType": "0x17"}}
    })
}

fn deception_alerts(srv: &Server) -> usize {
    srv.all_alerts()
        .iter()
        .filter(|a| a["decoder"] == "deception")
        .count()
}

/// Decoys reload through the API (admin only, audited) and on SIGHUP; a registry that does
/// not load is refused with its file and line, and the previous one stays in use.
#[test]
fn decoys_reload_without_a_restart_and_a_bad_registry_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let decoys = dir.path().join("decoys.yaml");
    std::fs::write(&decoys, "decoys: []\n").unwrap();
    let data = dir.path().join("data");
    let srv = Server::start(&data, &["--config", cfg.to_str().unwrap()]);
    let post = |minute| {
        let (code, v) = srv.post(
            "/api/v1/ingest/auto",
            Some(&srv.token),
            &ndjson(&[ticket_request(minute)]),
        );
        assert_eq!(code, 200, "{v}");
    };
    post(0);
    assert_eq!(deception_alerts(&srv), 0);

    // Reloading is for admins.
    let (code, out, err) = run(&[
        "token",
        "create",
        "--data-dir",
        data.to_str().unwrap(),
        "--name",
        "ana",
        "--role",
        "analyst",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _) = srv.post("/api/v1/admin/reload", Some(out.trim()), b"");
    assert_eq!(code, 403);

    std::fs::write(
        &decoys,
        "decoys:\n  - { name: sql-trap, kind: spn, value: 'MSSQLSvc/sql-old.corp.example:1433', account: svc-sql-old }\n",
    )
    .unwrap();
    let (code, v) = srv.post("/api/v1/admin/reload", Some(&srv.token), b"");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["reloaded"]["decoys"], 1, "{v}");
    assert_eq!(v["reloaded"]["assets"], 1, "{v}");
    post(1);
    assert_eq!(deception_alerts(&srv), 1);
    let validated = wait_for(&srv, "/api/v1/cases?tier=validated", |v| {
        v["items"].as_array().is_some_and(|a| a.len() == 1)
    });
    assert!(
        validated["items"][0]["tier_reason"]
            .as_str()
            .unwrap()
            .starts_with("decoy sql-trap (spn) used by "),
        "{validated:#}"
    );

    // A broken registry is refused with where and why; the trap stays armed.
    std::fs::write(
        &decoys,
        "decoys:\n  - { name: x, kind: nonsense, value: y }\n",
    )
    .unwrap();
    let (code, v) = srv.post("/api/v1/admin/reload", Some(&srv.token), b"");
    assert_eq!(code, 422, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("decoys.yaml") && msg.contains("line 2"),
        "{msg}"
    );
    assert!(msg.contains("nothing was reloaded"), "{msg}");
    post(2);
    assert_eq!(deception_alerts(&srv), 2);

    // SIGHUP does the same: the trap is removed, and the reload is on the audit trail.
    std::fs::write(&decoys, "decoys: []\n").unwrap();
    let pid = srv.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(&srv, "/api/v1/audit?limit=1000", |v| {
        v["items"].as_array().is_some_and(|a| {
            a.iter().any(|r| {
                r["body"]["action"] == "admin.reload" && r["body"]["detail"]["via"] == "signal"
            })
        })
    });
    post(3);
    assert_eq!(deception_alerts(&srv), 2);
}

/// A Falcon alert sent to the wrong decoder is kept as a dead letter; re-ingested with the
/// right one, it is stored and forms its case like any ingested alert.
#[test]
fn a_reingested_dead_letter_forms_its_case() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let srv = Server::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let alert = falcon(1, "WS-777", "carol", common::story::T0, 4, "T1059");
    let (code, v) = srv.post(
        "/api/v1/ingest/suricata",
        Some(&srv.token),
        &ndjson(&[alert]),
    );
    assert_eq!(code, 422, "{v}");
    let dl = v["rejected"][0]["dead_letter"].as_i64().unwrap();
    assert!(srv.all_alerts().is_empty());

    // The same decoder again: refused again, naming the record and field.
    let (code, v) = srv.post(
        &format!("/api/v1/deadletters/{dl}/reingest"),
        Some(&srv.token),
        b"",
    );
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("field"), "{v}");

    let (code, v) = srv.post(
        &format!("/api/v1/deadletters/{dl}/reingest?decoder=crowdstrike"),
        Some(&srv.token),
        b"",
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["accepted"], 1, "{v}");
    let record = v["record"].as_str().unwrap().to_string();
    let list = wait_for(&srv, "/api/v1/cases", |v| {
        v["items"].as_array().is_some_and(|a| a.len() == 1)
    });
    assert_eq!(alert_ids(&list["items"][0]), vec![record], "{list:#}");

    // Re-ingesting twice is refused.
    let (code, _) = srv.post(
        &format!("/api/v1/deadletters/{dl}/reingest?decoder=crowdstrike"),
        Some(&srv.token),
        b"",
    );
    assert_eq!(code, 409);
}
