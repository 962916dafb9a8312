//! Cases formed by `riposte replay` from real product payloads (templates from
//! ../shared/corpus/alerts with the host, user, time and id of each copy set by the test).

mod common;

use common::story::{T0, config, falcon, one_am_story, replay_cases, write_lines};
use serde_json::json;

/// The "1 AM" story: six alerts from two tools within nine minutes on one endpoint and one
/// identity are one case, explained, whose tier is above what any one alert would get alone.
#[test]
fn six_alerts_from_two_tools_in_nine_minutes_are_one_case_above_any_single_alert() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let records = one_am_story();
    let input = dir.path().join("one-am.ndjson");
    write_lines(&input, &records);
    let cases = replay_cases(dir.path(), &cfg, &input);
    assert_eq!(cases.len(), 1, "{cases:#?}");
    let c = &cases[0];
    assert_eq!(c["alerts"].as_array().unwrap().len(), 6, "{c:#}");
    assert_eq!(c["products"].as_array().unwrap().len(), 2, "{c:#}");
    assert_eq!(c["tier"], "high", "{c:#}");
    // Every link says which entity and which gap; six alerts need at least five links.
    let links = c["links"].as_array().unwrap();
    assert!(links.len() >= 5, "{c:#}");
    assert!(
        links
            .iter()
            .all(|l| l["entity"]["value"].is_string()
                && l["gap_seconds"].as_i64().unwrap() <= 9 * 60)
    );
    // Context with its reasons: the asset's criticality, the privileged identity.
    let ents = c["entities"].as_array().unwrap();
    let host = ents.iter().find(|e| e["type"] == "host").unwrap();
    assert_eq!(host["value"], "ws-042");
    assert_eq!(host["context"][0]["criticality"], 4, "{host:#}");
    let user = ents.iter().find(|e| e["type"] == "user").unwrap();
    assert_eq!(user["context"][0]["privileged"], true, "{user:#}");
    let url = ents.iter().find(|e| e["type"] == "url").unwrap();
    assert_eq!(url["context"][0]["source"], "intel", "{url:#}");
    assert_eq!(url["context"][0]["feed"], "test-domains");
    assert_eq!(url["context"][0]["indicator"], "evil.example");
    let factors = c["factors"].as_array().unwrap();
    assert!(
        factors
            .iter()
            .any(|f| f["factor"] == "intel" && f["value"].as_f64().unwrap() == 0.9)
    );
    assert!(
        factors
            .iter()
            .any(|f| f["factor"] == "tactics" && f["value"].as_f64().unwrap() > 0.5)
    );
    // Each alert alone, in its own replay, is a lower tier.
    let rank = |t: &str| {
        ["low", "medium", "high", "validated"]
            .iter()
            .position(|x| *x == t)
            .unwrap()
    };
    for (i, r) in records.iter().enumerate() {
        let d = tempfile::tempdir().unwrap();
        let cfg = config(d.path());
        let one = d.path().join(format!("one-{i}.ndjson"));
        write_lines(&one, std::slice::from_ref(r));
        let alone = replay_cases(d.path(), &cfg, &one);
        assert_eq!(alone.len(), 1);
        assert!(
            rank(alone[0]["tier"].as_str().unwrap()) < rank("high"),
            "alert {i} alone is {}",
            alone[0]["tier"]
        );
    }
}

/// Real payloads: the alerts of one host and user in a short span are one case; unrelated
/// hosts are separate cases; a decoy used validates the case of whoever used it.
#[test]
fn hosts_form_separate_cases_and_a_decoy_validates_its_users_case() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let min = 60_000;
    let tgs = json!({
        "@timestamp": "2024-05-01T01:20:00.000Z",
        "winlog": {"event_id": 4769, "channel": "Security", "computer_name": "DC01.corp.example",
                   "provider_name": "Microsoft-Windows-Security-Auditing",
                   "time_created": "2024-05-01T01:20:00.000Z",
                   "event_data": {"TargetUserName": "mallory@CORP.EXAMPLE", "ServiceName": "svc-sql-old",
                                  "IpAddress": "::ffff:10.0.9.13", "TicketEncryptionType": "0x17"}}
    });
    let records = vec![
        falcon(11, "WS-042", "alice", T0, 3, "T1566.001"),
        falcon(12, "WS-042", "alice", T0 + 4 * min, 4, "T1059.001"),
        falcon(13, "WS-777", "bob", T0 + 5 * min, 3, "T1059.001"),
        falcon(14, "WS-900", "mallory", T0 + 10 * min, 2, "T1087.002"),
        tgs,
    ];
    let input = dir.path().join("mixed.ndjson");
    write_lines(&input, &records);
    let cases = replay_cases(dir.path(), &cfg, &input);
    let by_host = |h: &str| {
        cases.iter().find(|c| {
            c["entities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "host" && e["value"] == h)
        })
    };
    let ws42 = by_host("ws-042").expect("ws-042's case");
    assert_eq!(ws42["alerts"].as_array().unwrap().len(), 2);
    let ws777 = by_host("ws-777").expect("ws-777's case");
    assert_ne!(ws42["id"], ws777["id"]);
    // mallory's EDR alert and her use of the trap SPN (same user) are one validated case.
    let m = by_host("ws-900").expect("ws-900's case");
    assert_eq!(m["tier"], "validated", "{m:#}");
    assert!(
        m["tier_reason"]
            .as_str()
            .unwrap()
            .starts_with("decoy sql-trap (spn) used by "),
        "{m:#}"
    );
    assert_eq!(m["alerts"].as_array().unwrap().len(), 2, "{m:#}");
    assert_eq!(cases[0]["id"], m["id"], "validated cases come first");
}

/// Two intruders touching one decoy stay two cases: the decoy (here an OpenCanary node and its
/// address) never joins cases, only the actors do.
#[test]
fn two_sources_touching_one_decoy_form_two_validated_cases() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let login = |src: &str, t: &str| {
        json!({
            "dst_host": "10.0.5.20", "dst_port": 22, "local_time": t, "local_time_adjusted": t,
            "logdata": {"USERNAME": "root", "PASSWORD": "x"}, "logtype": 4002,
            "node_id": "canary-fileserver-1", "src_host": src, "src_port": 51512, "utc_time": t
        })
    };
    let input = dir.path().join("canary.ndjson");
    write_lines(
        &input,
        &[
            login("10.0.9.77", "2024-05-01 01:00:00.000000"),
            login("10.0.9.78", "2024-05-01 01:02:00.000000"),
        ],
    );
    let cases = replay_cases(dir.path(), &cfg, &input);
    assert_eq!(cases.len(), 2, "{cases:#?}");
    for c in &cases {
        assert_eq!(c["tier"], "validated", "{c:#}");
        let ips: Vec<&str> = c["entities"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "ip")
            .map(|e| e["value"].as_str().unwrap())
            .collect();
        assert_eq!(ips.len(), 1, "{c:#}");
        assert!(ips[0] == "10.0.9.77" || ips[0] == "10.0.9.78");
    }
}
