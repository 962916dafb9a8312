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
