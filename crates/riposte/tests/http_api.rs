//! The HTTP API against the real server: authentication, roles, bad input, durability.

mod common;

use common::{Server, run};
use serde_json::json;

fn suricata_alert(n: u64) -> String {
    json!({
        "timestamp": "2024-05-01T10:00:00.000000+0000",
        "flow_id": n,
        "event_type": "alert",
        "src_ip": "10.0.0.5",
        "src_port": 40000,
        "dest_ip": "192.0.2.10",
        "dest_port": 443,
        "proto": "TCP",
        "alert": { "signature_id": 2_000_000 + n, "signature": format!("test signature {n}"), "severity": 2 }
    })
    .to_string()
}

#[test]
fn tokens_and_roles_guard_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), &[]);
    let d = dir.path().to_str().unwrap();

    assert_eq!(srv.get("/healthz", None).0, 200);
    // No token, wrong token: 401 whether or not the route exists.
    for path in [
        "/api/v1/alerts",
        "/api/v1/nothing-here",
        "/api/v1/alerts/abc",
    ] {
        assert_eq!(srv.get(path, None).0, 401, "{path}");
        assert_eq!(srv.get(path, Some("rpt_wrong")).0, 401, "{path}");
    }
    assert_eq!(srv.post("/api/v1/ingest/suricata", None, b"{}").0, 401);

    let (code, out, _) = run(&[
        "token",
        "create",
        "--data-dir",
        d,
        "--name",
        "sensor-1",
        "--role",
        "ingest",
    ]);
    assert_eq!(code, 0);
    let ingest = out.trim().to_string();
    assert!(
        ingest.starts_with("rpt_") && !ingest.contains('\n'),
        "the token alone on stdout: {out:?}"
    );
    let (code, out, _) = run(&[
        "token",
        "create",
        "--data-dir",
        d,
        "--name",
        "eve",
        "--role",
        "viewer",
    ]);
    assert_eq!(code, 0);
    let viewer = out.trim().to_string();
    let (code, _, err) = run(&[
        "token",
        "create",
        "--data-dir",
        d,
        "--name",
        "eve",
        "--role",
        "viewer",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = run(&[
        "token",
        "create",
        "--data-dir",
        d,
        "--name",
        "x",
        "--role",
        "root",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown role"), "{err}");

    // The ingest token may send but not read; the viewer may read but not send.
    let (code, v) = srv.post(
        "/api/v1/ingest/suricata",
        Some(&ingest),
        suricata_alert(1).as_bytes(),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["accepted"], 1);
    assert_eq!(srv.get("/api/v1/alerts", Some(&ingest)).0, 403);
    assert_eq!(
        srv.post("/api/v1/ingest/suricata", Some(&viewer), b"{}").0,
        403
    );
    let (code, v) = srv.get("/api/v1/alerts", Some(&viewer));
    assert_eq!(code, 200);
    let item = &v["items"][0];
    assert_eq!(item["origin"]["via"], "http");
    assert_eq!(item["origin"]["token"], "sensor-1");
    assert!(
        item["origin"]["peer"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let id = item["id"].as_str().unwrap();
    let (code, one) = srv.get(&format!("/api/v1/alerts/{id}"), Some(&viewer));
    assert_eq!(code, 200);
    assert_eq!(one["title"], "test signature 1");
    assert_eq!(srv.get("/api/v1/alerts/0000", Some(&viewer)).0, 404);
    // The audit log is for admins.
    assert_eq!(srv.get("/api/v1/audit", Some(&viewer)).0, 403);
    let (code, audit) = srv.get("/api/v1/audit", Some(&srv.token));
    assert_eq!(code, 200);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["body"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "token.create",
            "token.create",
            "token.create",
            "ingest.batch"
        ]
    );

    // A revoked token stops working (after the short cache lifetime at most).
    let (code, _, _) = run(&["token", "revoke", "--data-dir", d, "--name", "eve"]);
    assert_eq!(code, 0);
    let srv2 = {
        drop(srv);
        Server::start(dir.path(), &[])
    };
    assert_eq!(srv2.get("/api/v1/alerts", Some(&viewer)).0, 401);
}

#[test]
fn bad_input_gets_a_clear_4xx_and_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), &["--max-body", "1048576"]);
    let t = srv.token.clone();
    let ingest = |body: &[u8]| srv.post("/api/v1/ingest/suricata", Some(&t), body);

    let (code, v) = ingest(b"");
    assert_eq!(code, 400);
    assert!(v["error"].as_str().unwrap().contains("empty"), "{v}");

    let (code, v) = ingest(b"{\"timestamp\": ");
    assert_eq!(code, 400);
    assert!(
        v["error"].as_str().unwrap().contains("not valid JSON"),
        "{v}"
    );

    let (code, v) = srv.post("/api/v1/ingest/notaproduct", Some(&t), b"{}");
    assert_eq!(code, 404);
    assert!(
        v["error"].as_str().unwrap().contains("unknown decoder"),
        "{v}"
    );

    // A record missing its time: refused, named, kept as a dead letter.
    let (code, v) = ingest(br#"{"event_type":"alert","alert":{"signature":"x","severity":1}}"#);
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["rejected"][0]["index"], 0);
    assert_eq!(v["rejected"][0]["field"], "timestamp");
    let dl = v["rejected"][0]["dead_letter"].as_i64().unwrap();
    let (code, d) = srv.get(&format!("/api/v1/deadletters/{dl}"), Some(&t));
    assert_eq!(code, 200);
    assert!(d["raw"].as_str().unwrap().contains("\"signature\":\"x\""));

    // NDJSON with one bad line: the others are stored, the bad one named by index.
    let body = format!(
        "{}\nnot json at all\n{}\n",
        suricata_alert(1),
        suricata_alert(2)
    );
    let (code, v) = ingest(body.as_bytes());
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["rejected"][0]["index"], 1);

    // Sent again: recognised as duplicates, not stored twice.
    let (_, v) = ingest(body.as_bytes());
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(2))
    );

    // A body over the limit (here 1 MiB; the default is 32 MiB) and a 100 MB one.
    let big = vec![b' '; 2 << 20];
    let (code, v) = ingest(&big);
    assert_eq!(code, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("limit"), "{v}");
    let huge = vec![b'x'; 100 << 20];
    let (code, _) = ingest(&huge);
    assert_eq!(code, 413);

    // Deeply nested JSON.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (code, v) = ingest(&deep.as_bytes()[..deep.len().min(1 << 19)]);
    assert_eq!(code, 400, "{v}");
    let deep_obj = format!("{{\"a\":{}1{}}}", "{\"b\":".repeat(5000), "}".repeat(5000));
    let (code, v) = ingest(deep_obj.as_bytes());
    assert!(code == 400 || code == 422, "{code} {v}");

    // Invalid UTF-8.
    let (code, v) = ingest(b"{\"timestamp\": \"\xff\xfe\"}");
    assert_eq!(code, 400);
    assert!(v["error"].as_str().unwrap().contains("UTF-8"), "{v}");

    // The server is still up, exactly the two good records are stored, and the audit
    // trail is intact.
    assert_eq!(srv.all_alerts().len(), 2);
    let (_, stats) = srv.get("/api/v1/stats", Some(&t));
    assert_eq!(stats["alerts"], 2);
    drop(srv);
    let (code, out, _) = run(&[
        "audit",
        "verify",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"));
}

#[test]
fn kill_9_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(dir.path(), &[]);
    let token = srv.token.clone();
    let addr = srv.http.clone();

    // A first batch, then a stream of requests from another thread while we kill the server.
    let first: String = (0..500).map(|n| suricata_alert(n) + "\n").collect();
    let (code, v) = srv.post("/api/v1/ingest/suricata", Some(&token), first.as_bytes());
    assert_eq!((code, v["accepted"].as_u64()), (200, Some(500)));

    let sender = std::thread::spawn(move || {
        let mut acked: Vec<u64> = (0..500).collect();
        for b in 1..200u64 {
            let ns: Vec<u64> = (b * 100..b * 100 + 100).map(|i| i + 1000).collect();
            let body: String = ns.iter().map(|n| suricata_alert(*n) + "\n").collect();
            match common::try_request(
                &addr,
                "POST",
                "/api/v1/ingest/suricata",
                Some(&token),
                body.as_bytes(),
            ) {
                Ok((200, v)) if v["accepted"].as_u64() == Some(100) => acked.extend(ns),
                _ => break,
            }
        }
        acked
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    srv.kill9();
    let acked = sender.join().unwrap();
    assert!(
        acked.len() > 500,
        "some requests were acknowledged before the kill"
    );

    let srv = Server::start(dir.path(), &[]);
    let alerts = srv.all_alerts();
    let mut seen = std::collections::HashMap::new();
    for a in &alerts {
        *seen
            .entry(a["original"]["flow_id"].as_u64().unwrap())
            .or_insert(0) += 1;
    }
    for n in &acked {
        assert_eq!(
            seen.get(n),
            Some(&1),
            "acknowledged record {n} must be stored exactly once"
        );
    }
    // Whatever was stored is whole: the audit chain verifies after the crash.
    drop(srv);
    let (code, out, _) = run(&[
        "audit",
        "verify",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
}
