//! Decoys through the real server: a record showing a decoy used is stored, and followed by a
//! `deception` alert that names the decoy and whose entities are the actor's only.

mod common;

use common::{Server, run};

const DECOYS: &str = r#"
expected_touchers:
  - { ip: 10.0.0.5, reason: vulnerability scanner }
decoys:
  - { name: sql-trap, kind: spn, value: 'MSSQLSvc/sql-old.corp.example:1433', account: svc-sql-old }
  - { name: ssh-canary, kind: honeypot, value: canary-fileserver-1 }
"#;

fn opencanary(logtype: u32, src: &str) -> String {
    serde_json::json!({
        "dst_host": "10.0.5.20", "dst_port": 22, "local_time": "2024-05-01 10:00:07.123456",
        "local_time_adjusted": "2024-05-01 10:00:07.123456",
        "logdata": {"USERNAME": "root", "PASSWORD": "x"},
        "logtype": logtype, "node_id": "canary-fileserver-1", "src_host": src,
        "src_port": 51512, "utc_time": "2024-05-01 10:00:07.123456"
    })
    .to_string()
}

#[test]
fn decoy_use_becomes_a_deception_alert_naming_the_decoy_and_the_actor() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("riposte.yaml");
    std::fs::write(dir.path().join("decoys.yaml"), DECOYS).unwrap();
    std::fs::write(&cfg, "decoys: decoys.yaml\n").unwrap();
    let data = dir.path().join("data");
    let srv = Server::start(&data, &["--config", cfg.to_str().unwrap()]);
    let t = srv.token.clone();

    // OpenCanary: a login from one source, a health record (not a hit), and the scanner.
    let body = [
        opencanary(4002, "10.0.9.77"),
        opencanary(1001, ""),
        opencanary(4002, "10.0.0.5"),
    ]
    .join("\n");
    let (code, v) = srv.post("/api/v1/ingest/auto", Some(&t), body.as_bytes());
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["received"], 3, "{v}");

    // A Kerberos service ticket for the trap SPN's account (Windows 4769, Winlogbeat shape).
    let tgs = serde_json::json!({
        "@timestamp": "2024-05-01T10:03:00.000Z",
        "winlog": {"event_id": 4769, "channel": "Security", "computer_name": "DC01.corp.example",
                   "provider_name": "Microsoft-Windows-Security-Auditing",
                   "time_created": "2024-05-01T10:03:00.000Z",
                   "event_data": {"TargetUserName": "mallory@CORP.EXAMPLE", "ServiceName": "svc-sql-old",
                                  "IpAddress": "::ffff:10.0.3.42", "TicketEncryptionType": "0x17"}}
    });
    let (code, v) = srv.post(
        "/api/v1/ingest/windows",
        Some(&t),
        tgs.to_string().as_bytes(),
    );
    assert_eq!(code, 200, "{v}");

    let alerts = srv.all_alerts();
    let deception: Vec<&serde_json::Value> = alerts
        .iter()
        .filter(|a| a["decoder"] == "deception")
        .collect();
    assert_eq!(deception.len(), 3, "{deception:#?}");
    let find = |decoy: &str, actor: &str| {
        deception.iter().copied().find(|a| {
            a["original"]["decoy"] == decoy
                && a["entities"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["value"] == actor)
        })
    };
    let ssh = find("ssh-canary", "10.0.9.77").expect("the SSH login's alert");
    assert_eq!(ssh["severity"]["score"], 95);
    assert!(ssh["original"]["ignored"].is_null());
    // The decoy itself is not an entity of the alert: two intruders stay two cases.
    assert!(
        ssh["entities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["value"] != "canary-fileserver-1")
    );
    let scanner = find("ssh-canary", "10.0.0.5").expect("the scanner's alert");
    assert!(
        scanner["original"]["ignored"]
            .as_str()
            .unwrap()
            .contains("vulnerability scanner")
    );
    assert!(scanner["severity"]["score"].as_u64().unwrap() < 20);
    let spn = find("sql-trap", "10.0.3.42").expect("the 4769's alert");
    assert!(
        spn["entities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "user" && e["value"].as_str().unwrap().contains("mallory"))
    );
    assert_eq!(spn["techniques"][0], "T1558.003");
}

#[test]
fn a_bad_decoy_registry_stops_start_up_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("riposte.yaml");
    std::fs::write(
        dir.path().join("decoys.yaml"),
        "decoys:\n  - { name: x, kind: unicorn, value: y }\n",
    )
    .unwrap();
    std::fs::write(&cfg, "decoys: decoys.yaml\n").unwrap();
    let data = dir.path().join("data");
    let (code, _out, err) = run(&[
        "replay",
        "--config",
        cfg.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        cfg.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("decoys.yaml line 2"), "{err}");
    assert!(err.contains("unicorn"), "{err}");
}
