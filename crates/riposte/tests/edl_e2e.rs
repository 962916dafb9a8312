//! External Dynamic Lists end to end, with the real binary: a playbook adds an address to
//! riposte's own list (`kind: edl`) once approved, `GET /edl/bad-ips.txt` serves it as a
//! firewall polls it (allow-listed source; a token as Bearer or as the Basic password for
//! another list), the list survives a restart, and undo takes the entry out.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::story::{config, one_am_story};
use common::{Server, ndjson, run, wait};
use riposte_respond::http::base64;
use serde_json::Value;

const BLOCK: &str = r#"id: block-ip
name: Put the attacker's address on riposte's block list
on: [case.created]
steps:
  - id: block
    action: blocklists.add
    params: { list: bad-ips, value: "203.0.113.66" }
"#;

/// `GET path` as a firewall sends it: (status, body as text, content type).
fn poll(addr: &str, path: &str, authorization: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: PAN-OS\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    // Short bodies come in one chunk or with a length; undo chunking when present.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    (status, body, content_type)
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

fn action_in_state(srv: &Server, id: &str, state: &str) -> Value {
    wait(&format!("action {id} to be {state}"), || {
        let (code, v) = srv.get(&format!("/api/v1/actions/{id}"), Some(&srv.token));
        assert_eq!(code, 200, "{v}");
        (v["state"]["state"] == state).then_some(v)
    })
}

#[test]
fn a_playbook_fills_a_list_firewalls_poll_and_undo_empties_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let cfg = config(base);
    std::fs::create_dir_all(base.join("connectors")).unwrap();
    std::fs::create_dir_all(base.join("playbooks")).unwrap();
    std::fs::write(
        base.join("connectors/edl.yaml"),
        "name: blocklists\nkind: edl\nlists:\n  bad-ips: ip\n  bad-domains: domain\n",
    )
    .unwrap();
    std::fs::write(base.join("playbooks/block.yaml"), BLOCK).unwrap();
    let mut c = std::fs::read_to_string(&cfg).unwrap();
    c.push_str(
        "respond:\n  playbooks: playbooks\n  connectors: connectors\n\
         edl:\n  bad-ips: { allow: [127.0.0.0/8] }\n  bad-domains: { token: true }\n",
    );
    std::fs::write(&cfg, c).unwrap();
    let data = base.join("data");
    let args = ["--config", cfg.to_str().unwrap()];
    let mut srv = Server::start(&data, &args);

    // Nothing listed yet: an empty list, not an error.
    let (code, body, ct) = poll(&srv.http, "/edl/bad-ips.txt", None);
    assert_eq!((code, body.as_str()), (200, ""), "{ct}");
    assert_eq!(ct, "text/plain; charset=utf-8");

    for pair in one_am_story().chunks(2) {
        let (code, v) = srv.post("/api/v1/ingest/auto", Some(&srv.token), &ndjson(pair));
        assert_eq!(code, 200, "{v}");
    }
    let add = wait("the add to await approval", || {
        let (_, v) = srv.get("/api/v1/actions?state=awaiting_approval", Some(&srv.token));
        v["items"]
            .as_array()?
            .iter()
            .find(|a| a["operation"] == "add")
            .cloned()
    });
    let id = add["id"].as_str().unwrap().to_string();
    assert_eq!(add["class"], "approve", "{add:#}");
    // Nothing is listed before approval.
    assert_eq!(poll(&srv.http, "/edl/bad-ips.txt", None).1, "");
    let (code, v) = srv.post(
        &format!("/api/v1/actions/{id}/approve"),
        Some(&srv.token),
        b"",
    );
    assert_eq!(code, 200, "{v}");
    let done = action_in_state(&srv, &id, "succeeded");
    assert_eq!(
        done["state"]["outcome"]["undo"]["value"], "203.0.113.66",
        "{done:#}"
    );
    assert_eq!(
        poll(&srv.http, "/edl/bad-ips.txt", None).1,
        "203.0.113.66\n"
    );

    // A token-only list: a firewall's `feed` token as the Basic password, or as Bearer.
    let feed = token(&data, "pa-fw1", "feed");
    let ingest = token(&data, "shipper", "ingest");
    let (code, _, _) = poll(&srv.http, "/edl/bad-domains.txt", None);
    assert_eq!(code, 401);
    let basic = format!("Basic {}", base64(format!("paloalto:{feed}").as_bytes()));
    let (code, body, _) = poll(&srv.http, "/edl/bad-domains.txt", Some(&basic));
    assert_eq!((code, body.as_str()), (200, ""));
    let (code, _, _) = poll(
        &srv.http,
        "/edl/bad-domains.txt",
        Some(&format!("Bearer {feed}")),
    );
    assert_eq!(code, 200);
    let (code, _, _) = poll(
        &srv.http,
        "/edl/bad-domains.txt",
        Some(&format!("Bearer {ingest}")),
    );
    assert_eq!(code, 401, "an ingest token may not read lists");
    // A feed token opens the lists and nothing else.
    let (code, _) = srv.get("/api/v1/alerts", Some(&feed));
    assert_eq!(code, 403);
    // Lists not configured for serving do not exist, whatever the store holds.
    assert_eq!(poll(&srv.http, "/edl/other.txt", None).0, 404);
    assert_eq!(poll(&srv.http, "/edl/bad-ips", None).0, 404);

    // The list is in the store: a restart keeps it.
    srv.kill9();
    let srv = Server::start(&data, &args);
    assert_eq!(
        poll(&srv.http, "/edl/bad-ips.txt", None).1,
        "203.0.113.66\n"
    );

    let (code, v) = srv.post(
        &format!("/api/v1/actions/{id}/undo"),
        Some(&srv.token),
        br#"{"reason": "false positive"}"#,
    );
    assert_eq!(code, 200, "{v}");
    let inverse = v["id"].as_str().unwrap_or_default().to_string();
    if v["state"]["state"] == "awaiting_approval" {
        let (code, v) = srv.post(
            &format!("/api/v1/actions/{inverse}/approve"),
            Some(&srv.token),
            b"",
        );
        assert_eq!(code, 200, "{v}");
    }
    action_in_state(&srv, &id, "undone");
    assert_eq!(poll(&srv.http, "/edl/bad-ips.txt", None).1, "");

    // Both changes are on the audit trail, by the action that made them.
    let (code, v) = srv.get("/api/v1/audit?after=0&limit=1000", Some(&srv.token));
    assert_eq!(code, 200, "{v}");
    let edl: Vec<(String, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            i["body"]["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("edl."))
        })
        .map(|i| {
            (
                i["body"]["action"].as_str().unwrap().to_string(),
                i["body"]["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(edl.len(), 2, "{edl:?}");
    assert_eq!(edl[0].0, "edl.add");
    assert!(edl[0].1.contains(&id), "{edl:?}");
    assert_eq!(edl[1].0, "edl.remove");
}

#[test]
fn a_served_list_nobody_could_read_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("riposte.yaml");
    std::fs::write(&cfg, "edl:\n  bad-ips: {}\n").unwrap();
    let data = dir.path().join("data");
    let (code, _, err) = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("bad-ips") && err.contains("nobody"), "{err}");
    std::fs::write(&cfg, "edl:\n  bad-ips: { allow: [10.0.0.0/33] }\n").unwrap();
    let (code, _, err) = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("10.0.0.0/33"), "{err}");
}
