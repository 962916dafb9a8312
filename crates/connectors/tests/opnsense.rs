//! OPNsense against a stand-in that checks requests as its API documents them: HTTP Basic
//! with the API key and secret, `POST /api/firewall/alias_util/{add,delete}/{alias}` with
//! `{"address": …}`, `GET /api/firewall/alias_util/list/{alias}`; and answers as OPNsense
//! does (`{"status": "done"}`, its failure shapes, 401/403/404).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Answer, Seen, StandIn};
use riposte_connectors::opnsense;
use riposte_respond::http::base64;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError};
use serde_json::json;

const KEY: &str = "w86XNZob8Oq8aC5r0kbNarNtdpoQU781";
const SECRET: &str = "XeD26XVrJ5ilAc/EmglCRC+0j2e57tRsjHwFepOseySWLM53pJASeTA3";

fn secrets() -> Arc<StaticSecrets> {
    common::secrets(&[("opn_secret", SECRET)])
}

fn definition(url: &str) -> String {
    format!(
        "name: opn\nkind: opnsense\nbase_url: {url}\napi_key: {KEY}\napi_secret: opn_secret\ntimeout: 5s\n"
    )
}

fn firewall(url: &str) -> Arc<dyn Connector> {
    Arc::new(opnsense::load("opn.yaml", &definition(url), secrets()).expect("loads"))
}

fn call(op: &str, params: serde_json::Value, undo: serde_json::Value) -> CallRequest {
    CallRequest {
        action_id: "act-1".into(),
        idempotency_key: "key-1".into(),
        operation: op.into(),
        params,
        undo,
        context: json!({}),
        timeout: Duration::from_secs(5),
    }
}

type Tables = Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>;

/// OPNsense's alias tables behind its API; only `riposte_block` and `scanners` exist.
fn opnsense_api(tables: Tables) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        let basic = format!("Basic {}", base64(format!("{KEY}:{SECRET}").as_bytes()));
        if req.header("authorization") != Some(basic.as_str()) {
            return Answer::json(
                401,
                json!({"status": 401, "message": "Authentication Failed"}),
            );
        }
        let parts: Vec<&str> = req.path.split('/').collect();
        let (verb, alias) = match parts.as_slice() {
            ["", "api", "firewall", "alias_util", verb, alias] => (*verb, *alias),
            _ => {
                return Answer::json(
                    404,
                    json!({"errorMessage": "Endpoint not found", "errorTitle": "An error occurred"}),
                );
            }
        };
        let mut t = tables.lock().expect("tables");
        let known = ["riposte_block", "scanners"].contains(&alias);
        match (req.method.as_str(), verb) {
            ("POST", "add" | "delete") => {
                assert_eq!(req.header("content-type"), Some("application/json"));
                let body = req.json();
                let keys: Vec<&String> = body.as_object().expect("an object").keys().collect();
                assert_eq!(keys, ["address"], "{body}");
                let address = body["address"].as_str().expect("a string").to_string();
                if address
                    .chars()
                    .any(|c| !matches!(c, '0'..='9' | 'a'..='f' | ':' | '.' | '/' | '_'))
                {
                    return Answer::json(200, json!({"status": "not_an_address"}));
                }
                if !known {
                    return Answer::json(
                        200,
                        json!({"status": "failed", "status_msg": format!("non existing alias {alias}")}),
                    );
                }
                let set = t.entry(alias.to_string()).or_default();
                if verb == "add" {
                    set.insert(address);
                } else {
                    set.remove(&address);
                }
                Answer::json(200, json!({"status": "done"}))
            }
            ("GET", "list") => {
                let rows: Vec<serde_json::Value> = t
                    .get(alias)
                    .map(|s| s.iter().map(|ip| json!({"ip": ip})).collect())
                    .unwrap_or_default();
                Answer::json(
                    200,
                    json!({"total": rows.len(), "rowCount": 9999, "current": 1, "rows": rows}),
                )
            }
            _ => Answer::json(200, json!({"status": "failed"})),
        }
    }
}

#[tokio::test]
async fn block_adds_to_the_alias_and_unblock_deletes_from_the_alias_in_the_undo_record() {
    let tables: Tables = Arc::default();
    let s = StandIn::start(opnsense_api(tables.clone())).await;
    let fw = firewall(&s.url);
    let spec = fw.operation("block_ip").expect("block_ip");
    assert_eq!(spec.inverse.as_deref(), Some("unblock_ip"));
    assert!(spec.idempotent);

    let out = fw
        .call(&call(
            "block_ip",
            json!({"ip": "2001:DB8::9", "alias": "scanners"}),
            json!(null),
        ))
        .await
        .expect("blocked");
    // OPNsense accepts lower-case hex only: the address goes out in its canonical form.
    assert_eq!(out.undo, json!({"ip": "2001:db8::9", "alias": "scanners"}));
    assert!(tables.lock().expect("t")["scanners"].contains("2001:db8::9"));

    fw.call(&call("unblock_ip", json!({"ip": "ignored"}), out.undo))
        .await
        .expect("unblocked");
    assert!(tables.lock().expect("t")["scanners"].is_empty());

    let seen = s.seen();
    let lines: Vec<String> = seen
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.body))
        .collect();
    assert_eq!(
        lines,
        [
            "POST /api/firewall/alias_util/add/scanners {\"address\":\"2001:db8::9\"}",
            "POST /api/firewall/alias_util/delete/scanners {\"address\":\"2001:db8::9\"}",
        ]
    );
}

#[tokio::test]
async fn the_default_alias_is_used_and_repeats_are_done() {
    let tables: Tables = Arc::default();
    let s = StandIn::start(opnsense_api(tables.clone())).await;
    let fw = firewall(&s.url);
    let block = call("block_ip", json!({"ip": "198.51.100.23"}), json!(null));
    let out = fw.call(&block).await.expect("first");
    assert_eq!(out.fields["alias"], "riposte_block");
    fw.call(&block).await.expect("again");
    let unblock = call("unblock_ip", json!({}), out.undo);
    fw.call(&unblock).await.expect("first");
    fw.call(&unblock).await.expect("again");
    assert_eq!(s.seen().len(), 4);
}

#[tokio::test]
async fn the_check_reads_the_alias_table() {
    let tables: Tables = Arc::default();
    let s = StandIn::start(opnsense_api(tables.clone())).await;
    let fw = firewall(&s.url);
    let block = call("block_ip", json!({"ip": "198.51.100.23"}), json!(null));
    assert_eq!(fw.check(&block).expect("check").await.expect("asked"), None);
    // pf lists a host of a network alias with its mask.
    tables
        .lock()
        .expect("t")
        .entry("riposte_block".into())
        .or_default()
        .insert("198.51.100.23/32".into());
    let done = fw
        .check(&block)
        .expect("check")
        .await
        .expect("asked")
        .expect("present");
    assert_eq!(
        done.undo,
        json!({"ip": "198.51.100.23", "alias": "riposte_block"})
    );
    let unblock = call("unblock_ip", json!({}), done.undo);
    assert_eq!(
        fw.check(&unblock).expect("check").await.expect("asked"),
        None
    );
    assert!(
        s.seen()
            .iter()
            .all(|r| r.method == "GET" && r.path == "/api/firewall/alias_util/list/riposte_block")
    );
}

#[tokio::test]
async fn older_list_answers_and_tables_larger_than_a_page() {
    let s = StandIn::start(|req: &Seen, _| {
        if req.path.ends_with("/old") {
            Answer::json(200, json!(["192.0.2.1", "192.0.2.2"]))
        } else {
            Answer::json(
                200,
                json!({"total": 12000, "rowCount": 9999, "current": 1, "rows": [{"ip": "192.0.2.1"}]}),
            )
        }
    })
    .await;
    let fw = firewall(&s.url);
    let q =
        |alias: &str, ip: &str| call("block_ip", json!({"ip": ip, "alias": alias}), json!(null));
    let done = fw
        .check(&q("old", "192.0.2.2"))
        .expect("check")
        .await
        .expect("asked");
    assert!(done.is_some());
    // In the page: known. Not in it, with more entries than the page: unknown, said so.
    let done = fw
        .check(&q("big", "192.0.2.1"))
        .expect("check")
        .await
        .expect("asked");
    assert!(done.is_some());
    let e = fw
        .check(&q("big", "192.0.2.9"))
        .expect("check")
        .await
        .expect_err("cannot tell");
    assert!(e.to_string().contains("12000 entries"), "{e}");
}

#[tokio::test]
async fn vendor_errors_are_classified_and_never_carry_the_secret() {
    let tables: Tables = Arc::default();
    let real = opnsense_api(tables);
    let s = StandIn::start(move |req: &Seen, n| {
        let body = req.body.as_str();
        if body.contains("192.0.2.3\"") {
            Answer::json(403, json!({"status": 403, "message": "Forbidden"}))
        } else if body.contains("192.0.2.4\"") {
            Answer::json(429, json!({"status": 429, "message": "Too Many Requests"}))
                .with_header("Retry-After", "30")
        } else if body.contains("192.0.2.5\"") {
            Answer::text(500, "text/html", "<html>Internal Server Error</html>")
        } else {
            real(req, n)
        }
    })
    .await;
    let fw = firewall(&s.url);
    let mut messages = Vec::new();
    let block =
        |ip: &str, alias: &str| call("block_ip", json!({"ip": ip, "alias": alias}), json!(null));

    // A wrong secret: 401, named by its secret's name.
    let wrong = opnsense::load(
        "opn.yaml",
        &definition(&s.url),
        common::secrets(&[("opn_secret", "not-the-secret")]),
    )
    .expect("loads");
    let e = wrong
        .call(&block("192.0.2.1", "riposte_block"))
        .await
        .expect_err("401");
    assert!(
        matches!(
            e,
            ConnectorError::Rejected {
                status: Some(401),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("secret `opn_secret`"), "{e}");
    assert!(e.to_string().contains("Authentication Failed"), "{e}");
    assert!(!e.retryable());
    messages.push(format!("{e} {e:?} {wrong:?}"));

    let e = fw
        .call(&block("192.0.2.3", "riposte_block"))
        .await
        .expect_err("403");
    assert!(e.to_string().contains("Forbidden"), "{e}");
    messages.push(format!("{e} {e:?}"));

    let e = fw
        .call(&block("192.0.2.1", "nosuch"))
        .await
        .expect_err("unknown alias");
    assert!(e.to_string().contains("non existing alias nosuch"), "{e}");
    assert!(!e.retryable());
    messages.push(format!("{e} {e:?}"));

    let e = fw
        .call(&call(
            "block_ip",
            json!({"ip": "192.0.2.1", "alias": "../../core/firmware/poweroff"}),
            json!(null),
        ))
        .await
        .expect_err("not an alias name");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");

    let e = fw
        .call(&block("192.0.2.4", "riposte_block"))
        .await
        .expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(30)
        }
    );

    let e = fw
        .call(&block("192.0.2.5", "riposte_block"))
        .await
        .expect_err("500");
    assert!(e.retryable(), "{e:?}");
    messages.push(format!("{e} {e:?}"));

    // A base URL that is not OPNsense's API root: 404 with OPNsense's error shape.
    let off = opnsense::load("opn.yaml", &definition(&format!("{}/ui", s.url)), secrets())
        .expect("loads");
    let e = off
        .call(&block("192.0.2.1", "riposte_block"))
        .await
        .expect_err("404");
    assert!(
        matches!(
            e,
            ConnectorError::Rejected {
                status: Some(404),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("Endpoint not found"), "{e}");
    messages.push(format!("{e} {e:?}"));

    for m in &messages {
        assert!(!m.contains(SECRET), "the secret leaked into: {m}");
        assert!(
            !m.contains(&base64(format!("{KEY}:{SECRET}").as_bytes())),
            "{m}"
        );
    }
}

#[test]
fn definitions_are_checked_field_by_field() {
    let load = |t: &str| opnsense::load("o.yaml", t, secrets());
    let base =
        "name: opn\nkind: opnsense\nbase_url: https://opn.example\napi_key: k\napi_secret: s\n";
    load(base).expect("loads");
    let e = load("name: opn\nkind: opnsense\nbase_url: https://opn.example\napi_key: k\n")
        .expect_err("no secret");
    assert!(e.to_string().contains("api_secret"), "{e}");
    let e = load(&format!("{base}alias: \"bad alias\"\n")).expect_err("alias");
    assert_eq!(e.line, 6, "{e}");
    let e = load(&base.replace("api_key: k", "api_key: \"a:b\"")).expect_err("colon");
    assert_eq!(e.line, 4, "{e}");
    let e = load(&base.replace("https://opn.example", "opn.example")).expect_err("scheme");
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn the_documented_example_loads() {
    let path = "../../docs/playbooks/config/connectors/opnsense.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(riposte_respond::Templates::default()),
        secrets(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.name(), "opnsense");
    assert!(c.operation("unblock_ip").is_some());
}
