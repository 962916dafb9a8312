//! `riposte replay` over real corpus files: deterministic output, origins, EVTX, audit verify.

mod common;

use common::{corpus, run};

#[test]
fn replay_is_deterministic_and_names_origins() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let input = corpus("alerts/suricata/eve/test-eve-small.log");
    let input = input.to_str().unwrap();
    let out_a = a.path().join("out.jsonl");
    let out_b = b.path().join("out.jsonl");
    for (dir, out) in [(&a, &out_a), (&b, &out_b)] {
        let (code, _, err) = run(&[
            "replay",
            input,
            "--decoder",
            "suricata",
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("replayed 12 records from 1 files"), "{err}");
    }
    let ta = std::fs::read_to_string(&out_a).unwrap();
    assert_eq!(
        ta,
        std::fs::read_to_string(&out_b).unwrap(),
        "same input, same output"
    );
    let lines: Vec<serde_json::Value> = ta
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12);
    assert_eq!(lines[1]["kind"], "alert");
    assert_eq!(lines[1]["origin"]["via"], "replay");
    assert_eq!(lines[1]["origin"]["record"], 2);
    assert!(
        lines[1]["origin"]["file"]
            .as_str()
            .unwrap()
            .ends_with("test-eve-small.log")
    );

    // Replaying again into the same store stores nothing twice.
    let (code, _, err) = run(&[
        "replay",
        input,
        "--data-dir",
        a.path().join("data").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 stored, 12 duplicates"), "{err}");
}

#[test]
fn replay_reads_evtx_files() {
    let dir = tempfile::tempdir().unwrap();
    let evtx = corpus("ocsf-examples/raw_sample_log_dataset/Microsoft/WinEventLog/Sysmon/xml");
    let out = dir.path().join("out.jsonl");
    let (code, _, err) = run(&[
        "replay",
        evtx.to_str().unwrap(),
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "event");
    assert_eq!(first["decoder"], "windows");
    assert!(first["origin"]["file"].as_str().unwrap().ends_with(".evtx"));
    assert!(text.lines().count() > 100, "{err}");
}

#[test]
fn audit_verify_fails_on_a_flipped_byte_and_export_writes_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let (code, _, err) = run(&[
        "replay",
        corpus("alerts/suricata/eve/test-eve-small.log")
            .to_str()
            .unwrap(),
        "--data-dir",
        d,
    ]);
    assert_eq!(code, 0, "{err}");
    for name in ["a", "b", "c"] {
        assert_eq!(
            run(&[
                "token",
                "create",
                "--data-dir",
                d,
                "--name",
                name,
                "--role",
                "viewer"
            ])
            .0,
            0
        );
    }
    let (code, out, _) = run(&["audit", "verify", "--data-dir", d]);
    assert_eq!(code, 0, "{out}");
    // The batch, the cases it formed, three tokens.
    assert!(out.contains("intact: 5 records"), "{out}");

    let export = dir.path().join("audit.jsonl");
    assert_eq!(
        run(&[
            "audit",
            "export",
            "--data-dir",
            d,
            "--out",
            export.to_str().unwrap()
        ])
        .0,
        0
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["body"]["action"], "ingest.batch");
    assert_eq!(lines[1]["body"]["action"], "case.upsert");
    assert_eq!(lines[1]["prev"], lines[0]["hash"]);

    // Flip one byte of record 3 as it is stored in the database file.
    let db = data.join("riposte.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = br#""name":"a""#;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("record 3's body is in the database file");
    bytes[at + 8] ^= 0x01; // "a" becomes "`"
    std::fs::write(&db, &bytes).unwrap();
    let (code, out, err) = run(&["audit", "verify", "--data-dir", d]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("audit record 3:"), "{out}");
}
