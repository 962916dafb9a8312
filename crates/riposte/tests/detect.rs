//! Sigma detection through the binary: `rules check` and `replay --rules`, with broken rules
//! and damaged EVTX files beside good ones.

mod common;

use common::{Server, corpus, run};

const GOOD: &str = "title: Good\nid: 22222222-0000-0000-0000-000000000001\nlogsource: {product: windows, service: security}\ndetection:\n  sel: {EventID: 4625}\n  condition: sel\n";
const BROKEN_CONDITION: &str = "title: Broken Condition\nlogsource: {product: windows, service: security}\ndetection:\n  sel: {EventID: 4625}\n  condition: sel and and\n";

const HH_RULE: &str = "sigma/rules/windows/process_creation/proc_creation_win_hh_chm_execution.yml";
const HH_CASE: &str = "sigma/regression_data/rules/windows/process_creation/proc_creation_win_hh_chm_execution/68c8acb4-1b60-4890-8e82-3ddf7a6dba84.evtx";
const HH_RULE_ID: &str = "68c8acb4-1b60-4890-8e82-3ddf7a6dba84";

#[test]
fn rules_check_reports_every_refusal_and_fails_only_when_nothing_loads() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("good.yml"), GOOD).unwrap();
    std::fs::write(rules.join("broken.yml"), BROKEN_CONDITION).unwrap();
    std::fs::write(rules.join("notes.txt"), "not a rule").unwrap();
    let r = rules.to_str().unwrap();

    let (code, out, err) = run(&["rules", "check", r]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 files: 1 detection rules loaded"), "{out}");
    assert!(out.contains("1 refused"), "{out}");
    let line = out.lines().find(|l| l.starts_with("refused")).unwrap();
    assert!(line.contains("broken.yml"), "{line}");

    let (code, _, _) = run(&["rules", "check", "--strict", r]);
    assert_eq!(code, 1, "--strict fails on a refusal");

    let missing = dir.path().join("nope");
    let (code, _, err) = run(&["rules", "check", r, missing.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("nope"), "{err}");

    std::fs::remove_file(rules.join("good.yml")).unwrap();
    let (code, _, err) = run(&["rules", "check", r]);
    assert_ne!(code, 0, "nothing loads");
    assert!(err.contains("no Sigma rule loaded"), "{err}");
}

#[test]
fn replay_with_rules_stores_sigma_alerts_and_goes_on_past_damaged_input() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("broken.yml"), BROKEN_CONDITION).unwrap();

    // Damaged copies of a real EVTX file beside the intact one.
    let input = dir.path().join("input");
    std::fs::create_dir(&input).unwrap();
    let good = std::fs::read(corpus(HH_CASE)).unwrap();
    std::fs::write(input.join("a_empty.evtx"), b"").unwrap();
    std::fs::write(input.join("b_truncated.evtx"), &good[..good.len() - 1000]).unwrap();
    let mut corrupt = good.clone();
    corrupt[4096..4600].fill(0x41);
    std::fs::write(input.join("c_corrupt_chunk.evtx"), &corrupt).unwrap();
    std::fs::write(input.join("d_good.evtx"), &good).unwrap();

    let out = dir.path().join("out.jsonl");
    let (code, _, err) = run(&[
        "replay",
        input.to_str().unwrap(),
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--rules",
        corpus(HH_RULE).to_str().unwrap(),
        rules.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("a_empty.evtx: empty file"), "{err}");
    assert!(
        err.contains("b_truncated.evtx: truncated EVTX file"),
        "{err}"
    );
    assert!(
        err.contains("c_corrupt_chunk.evtx record 1") && err.contains("EVTX record unreadable"),
        "{err}"
    );
    assert!(
        err.contains("refused") && err.contains("broken.yml"),
        "{err}"
    );

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sigma: Vec<&serde_json::Value> = lines.iter().filter(|l| l["decoder"] == "sigma").collect();
    assert!(!sigma.is_empty(), "{err}");
    for a in &sigma {
        assert_eq!(a["kind"], "alert");
        assert_eq!(a["rule"]["id"], HH_RULE_ID);
        assert_eq!(a["title"], "HH.EXE Execution");
        assert!(
            a["techniques"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "T1218.001"),
            "{a}"
        );
        assert!(
            a["entities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "host"),
            "{a}"
        );
        assert!(
            a["original"]["Event"]["EventData"]["Image"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase()
                .ends_with("hh.exe")
        );
        assert!(a["origin"]["file"].as_str().unwrap().ends_with(".evtx"));
    }
}

/// `--rule-cache`: the first run writes the parsed rules, the second takes them from the file
/// and gives the same alerts; a damaged cache only costs the parse.
#[test]
fn replay_with_a_rule_cache_gives_the_same_alerts_as_without() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("rules.cache");
    let replay = |n: u32| {
        let out = dir.path().join(format!("out{n}.jsonl"));
        let (code, _, err) = run(&[
            "replay",
            corpus(HH_CASE).to_str().unwrap(),
            "--data-dir",
            dir.path().join(format!("data{n}")).to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--rules",
            corpus(HH_RULE).to_str().unwrap(),
            "--rule-cache",
            cache.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        let mut ids: Vec<String> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|l| l["decoder"] == "sigma")
            .map(|l| l["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let first = replay(1);
    assert!(!first.is_empty());
    let written = std::fs::read(&cache).unwrap();
    assert!(!written.is_empty());
    assert_eq!(replay(2), first);
    // Unchanged rules: the cache was not rewritten.
    assert_eq!(std::fs::read(&cache).unwrap(), written);
    std::fs::write(&cache, b"\x00 not a cache").unwrap();
    assert_eq!(replay(3), first);
    // Rewritten whole after damage (the order of a rule's selections in it may differ).
    let rewritten = std::fs::read(&cache).unwrap();
    let header = written.iter().position(|&b| b == b'\n').unwrap();
    assert_eq!(
        rewritten[..header],
        written[..header],
        "rewritten after damage"
    );
    assert_eq!(rewritten.len(), written.len());
}

#[test]
fn replay_runs_the_shipped_spray_correlations_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("good.yml"), GOOD).unwrap();
    // Twelve accounts failing from one address, then a success from it; written newest
    // first, so only time order makes the sequence.
    let mut lines = Vec::new();
    for i in 0..13 {
        let (id, user) = if i < 12 {
            (4625, format!("user{i}"))
        } else {
            (4624, "user3".to_string())
        };
        let v = serde_json::json!({"Event": {"System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
            "EventID": id, "Channel": "Security", "Computer": "dc-1.corp.example",
            "EventRecordID": 1000 + i,
            "TimeCreated": {"#attributes": {"SystemTime": format!("2026-11-23T10:00:{:02}Z", i * 3)}}},
            "EventData": {"TargetUserName": user, "IpAddress": "192.0.2.44", "LogonType": 3}}});
        lines.push(v.to_string());
    }
    lines.reverse();
    let input = dir.path().join("security.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = dir.path().join("out.jsonl");
    let (code, _, err) = run(&[
        "replay",
        input.to_str().unwrap(),
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let alerts: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["decoder"] == "sigma")
        .collect();
    let titles: Vec<&str> = alerts.iter().filter_map(|a| a["title"].as_str()).collect();
    // 12 × the user's own 4625 rule (GOOD), the spray, then the spray followed by success.
    assert_eq!(
        titles.iter().filter(|t| **t == "Good").count(),
        12,
        "{titles:?}"
    );
    assert!(
        titles.contains(&"Password Spray From One Source (Windows)"),
        "{titles:?}"
    );
    let both = alerts
        .iter()
        .find(|a| a["title"] == "Password Spray Followed By A Successful Logon (Windows)")
        .unwrap_or_else(|| panic!("{titles:?}\n{err}"));
    assert_eq!(both["severity"]["label"], "critical");
    assert!(
        both["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "ip" && e["value"] == "192.0.2.44"),
        "{both}"
    );
    // The base rules of the shipped correlations raise no alert of their own.
    assert!(!titles.contains(&"Windows Logon Failure"), "{titles:?}");
}

#[test]
fn serve_runs_configured_rules_on_events_ingested_over_http() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/good.yml"), GOOD).unwrap();
    let cfg = dir.path().join("riposte.yaml");
    std::fs::write(&cfg, "detection:\n  rules: [rules]\n").unwrap();
    let srv = Server::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let t = srv.token.clone();
    let failed = serde_json::json!({
        "@timestamp": "2026-11-23T10:00:00.000Z",
        "winlog": {"event_id": 4625, "channel": "Security", "computer_name": "DC01.corp.example",
                   "record_id": 77, "time_created": "2026-11-23T10:00:00.000Z",
                   "event_data": {"TargetUserName": "bob", "IpAddress": "192.0.2.8"}}
    });
    let (code, v) = srv.post(
        "/api/v1/ingest/windows",
        Some(&t),
        failed.to_string().as_bytes(),
    );
    assert_eq!(code, 200, "{v}");
    let alerts = srv.all_alerts();
    let sigma: Vec<&serde_json::Value> =
        alerts.iter().filter(|a| a["decoder"] == "sigma").collect();
    assert_eq!(sigma.len(), 1, "{alerts:#?}");
    assert_eq!(sigma[0]["title"], "Good");
    assert!(
        sigma[0]["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "ip" && e["value"] == "192.0.2.8"),
        "{}",
        sigma[0]
    );
}

/// A Security event in the `Event.System` shape, for `POST /api/v1/ingest/windows`.
fn security_event(
    event_id: u32,
    record: u64,
    second: u64,
    user: &str,
    ip: &str,
) -> serde_json::Value {
    serde_json::json!({"Event": {"System": {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
        "EventID": event_id, "Channel": "Security", "Computer": "dc-1.corp.example",
        "EventRecordID": record,
        "TimeCreated": {"#attributes": {"SystemTime": format!("2026-11-23T10:{:02}:{:02}Z", second / 60, second % 60)}}},
        "EventData": {"TargetUserName": user, "IpAddress": ip, "LogonType": 3}}})
}

fn sigma_alerts(srv: &Server, title: &str) -> Vec<serde_json::Value> {
    srv.all_alerts()
        .into_iter()
        .filter(|a| a["decoder"] == "sigma" && a["title"] == title)
        .collect()
}

/// Waits until exactly `n` sigma alerts titled `title` are stored.
fn wait_for_alerts(srv: &Server, title: &str, n: usize) -> Vec<serde_json::Value> {
    common::wait(&format!("{n} × {title}"), || {
        let got = sigma_alerts(srv, title);
        assert!(got.len() <= n, "more than {n} × {title}: {got:#?}");
        (got.len() == n).then_some(got)
    })
}

const SPRAY: &str = "Password Spray From One Source (Windows)";
const SPRAY_THEN_SUCCESS: &str = "Password Spray Followed By A Successful Logon (Windows)";

/// A password spray sent over HTTP in three requests, the last one first and each out of
/// order inside, fires the shipped spray correlation once; the alert is stored, lands in a
/// case, and a retried request neither feeds the window twice nor fires again. After kill -9
/// the server rebuilds the windows from the stored events: the spray is not fired a second
/// time, and a success from the same address completes the spray-then-success correlation.
#[test]
fn serve_correlates_a_password_spray_over_http_into_a_case_and_after_kill9() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/good.yml"), GOOD).unwrap();
    let cfg = dir.path().join("riposte.yaml");
    // The three requests must arrive within the reorder delay to be put back in order; 8 s
    // rather than the default 2 s keeps that true on a loaded test machine.
    std::fs::write(&cfg, "detection:\n  rules: [rules]\n  reorder_delay: 8s\n").unwrap();
    let data = dir.path().join("data");
    let mut srv = Server::start(&data, &["--config", cfg.to_str().unwrap()]);
    let t = srv.token.clone();
    // Twelve accounts fail from one address within 36 s; a thirteenth, later, from another.
    let mut failures: Vec<serde_json::Value> = (0..12)
        .map(|i| security_event(4625, 100 + i, i * 3, &format!("user{i}"), "192.0.2.44"))
        .collect();
    failures.push(security_event(4625, 200, 50, "user0", "198.51.100.7"));
    let mut requests: Vec<Vec<serde_json::Value>> = failures
        .chunks(5)
        .map(|c| c.iter().rev().cloned().collect())
        .collect();
    requests.reverse();
    for body in &requests {
        let (code, v) = srv.post("/api/v1/ingest/windows", Some(&t), &common::ndjson(body));
        assert_eq!(code, 200, "{v}");
        // Each event and its `Good` alert.
        assert_eq!(v["accepted"].as_u64(), Some(2 * body.len() as u64), "{v}");
    }
    let spray = wait_for_alerts(&srv, SPRAY, 1).remove(0);
    assert_eq!(spray["severity"]["label"], "high", "{spray}");
    assert!(
        spray["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "ip" && e["value"] == "192.0.2.44"),
        "{spray}"
    );
    assert!(
        spray["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "T1110.003"),
        "{spray}"
    );
    // In time order, the tenth distinct account (user9, at 10:00:27) completes the window.
    assert_eq!(spray["time"], "2026-11-23T10:00:27Z", "{spray}");
    let spray_id = spray["id"].as_str().unwrap().to_string();
    // The alert joins live case formation like any other.
    common::wait("a case holding the spray alert", || {
        let (code, v) = srv.get("/api/v1/cases", Some(&t));
        assert_eq!(code, 200, "{v}");
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["id"] == spray_id.as_str())
            })
            .cloned()
    });
    // A retried request is recognised: not fed again, nothing fires again.
    let (code, v) = srv.post(
        "/api/v1/ingest/windows",
        Some(&t),
        &common::ndjson(&requests[1]),
    );
    assert_eq!(code, 200, "{v}");
    let stats = common::wait("the retry counted as duplicates", || {
        let (_, v) = srv.get("/api/v1/stats", Some(&t));
        (v["correlation"]["duplicates"] == 5).then_some(v)
    });
    assert_eq!(stats["correlation"]["fed"], 13, "{stats}");
    assert_eq!(stats["correlation"]["fired"], 1, "{stats}");
    assert_eq!(sigma_alerts(&srv, SPRAY).len(), 1);

    srv.kill9();
    let srv = Server::start(&data, &["--config", cfg.to_str().unwrap()]);
    let t = srv.token.clone();
    common::wait("the windows rebuilt from the stored events", || {
        let (_, v) = srv.get("/api/v1/stats", Some(&t));
        (v["correlation"]["fed"] == 13).then_some(())
    });
    let (code, v) = srv.post(
        "/api/v1/ingest/windows",
        Some(&t),
        security_event(4624, 300, 60, "user3", "192.0.2.44")
            .to_string()
            .as_bytes(),
    );
    assert_eq!(code, 200, "{v}");
    let both = wait_for_alerts(&srv, SPRAY_THEN_SUCCESS, 1).remove(0);
    assert_eq!(both["severity"]["label"], "critical", "{both}");
    assert_eq!(
        sigma_alerts(&srv, SPRAY).len(),
        1,
        "the rebuild fired no second spray"
    );
}

const EVE_RULE: &str = "title: Eve Fails\nname: eve_fails\nid: 22222222-0000-0000-0000-000000000002\nlogsource: {product: windows, service: security}\ndetection:\n  sel: {EventID: 4625, TargetUserName: eve}\n  condition: sel\nlevel: high\n---\ntitle: Eve Fails Twice\nid: 22222222-0000-0000-0000-000000000003\ncorrelation:\n  type: event_count\n  rules: [eve_fails]\n  group-by: [IpAddress]\n  timespan: 10m\n  generate: true\n  condition: {gte: 2}\nlevel: critical\n";

/// Sigma rules reload through `POST /api/v1/admin/reload`: a new rules folder's rule fires on
/// the next event, and its correlation counts from the reload on; a broken rule beside it is
/// listed with its reason and the rest load. A reload naming a folder that cannot be read is
/// refused (422, naming it) and the rules loaded before keep working.
#[test]
fn rules_reload_without_a_restart_and_an_unreadable_folder_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    for d in ["rules", "more"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    std::fs::write(dir.path().join("rules/good.yml"), GOOD).unwrap();
    let cfg = dir.path().join("riposte.yaml");
    std::fs::write(&cfg, "detection:\n  rules: [rules]\n").unwrap();
    let srv = Server::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let t = srv.token.clone();
    let mut record = 0;
    let mut eve_fails = || {
        record += 1;
        let (code, v) = srv.post(
            "/api/v1/ingest/windows",
            Some(&t),
            security_event(4625, record, record, "eve", "203.0.113.9")
                .to_string()
                .as_bytes(),
        );
        assert_eq!(code, 200, "{v}");
    };
    eve_fails();
    assert_eq!(sigma_alerts(&srv, "Good").len(), 1);
    assert_eq!(sigma_alerts(&srv, "Eve Fails").len(), 0);
    // Past the reorder delay, so the live correlator has taken it under the old rules.
    common::wait("the first event correlated", || {
        let (_, v) = srv.get("/api/v1/stats", Some(&srv.token));
        (v["correlation"]["fed"] == 1).then_some(())
    });

    std::fs::write(dir.path().join("more/eve.yml"), EVE_RULE).unwrap();
    std::fs::write(dir.path().join("more/broken.yml"), BROKEN_CONDITION).unwrap();
    std::fs::write(&cfg, "detection:\n  rules: [rules, more]\n").unwrap();
    let (code, v) = srv.post("/api/v1/admin/reload", Some(&t), b"");
    assert_eq!(code, 200, "{v}");
    let rules = &v["reloaded"]["rules"];
    assert_eq!(
        rules["files"], 6,
        "three files of ours and three shipped: {v}"
    );
    assert_eq!(rules["refused"], 1, "{v}");
    assert!(
        rules["refusals"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("broken.yml"),
        "{v}"
    );
    assert!(
        !rules["refusals"][0]["reason"].as_str().unwrap().is_empty(),
        "{v}"
    );

    eve_fails();
    assert_eq!(
        sigma_alerts(&srv, "Eve Fails").len(),
        1,
        "the new rule fires at once"
    );
    assert_eq!(
        sigma_alerts(&srv, "Good").len(),
        2,
        "the old rule still does"
    );
    // The new correlation counts what is fed from the reload on: the failure fed before it
    // is not in its window, so it takes a third failure to make two.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(sigma_alerts(&srv, "Eve Fails Twice").len(), 0);
    eve_fails();
    let twice = wait_for_alerts(&srv, "Eve Fails Twice", 1).remove(0);
    assert_eq!(twice["severity"]["label"], "critical", "{twice}");

    // A folder that cannot be read refuses the whole reload; the rules stay as they were.
    std::fs::write(&cfg, "detection:\n  rules: [more, missing]\n").unwrap();
    let (code, v) = srv.post("/api/v1/admin/reload", Some(&t), b"");
    assert_eq!(code, 422, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains("missing"), "{msg}");
    assert!(msg.contains("nothing was reloaded"), "{msg}");
    eve_fails();
    assert_eq!(sigma_alerts(&srv, "Eve Fails").len(), 3);
    assert_eq!(
        sigma_alerts(&srv, "Good").len(),
        4,
        "rules/ is still loaded"
    );
    let (_, audit) = srv.get("/api/v1/audit?limit=1000", Some(&t));
    let reloads: Vec<&serde_json::Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["body"]["action"] == "admin.reload")
        .collect();
    assert_eq!(reloads.len(), 2, "{audit}");
}
