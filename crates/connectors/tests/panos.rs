//! PAN-OS against a stand-in that checks requests as the XML API documents them: `POST /api/`
//! with the key in `X-PAN-KEY`, a form of `type`, `cmd` (a User-ID `uid-message` or an
//! operational command) and `vsys`; and answers as PAN-OS does, in XML, error shapes
//! included.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Answer, Seen, StandIn};
use riposte_connectors::panos;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError};
use serde_json::json;

const KEY: &str = "LUFRPT1pan-k3y-value==";

fn secrets() -> Arc<StaticSecrets> {
    common::secrets(&[("panos_key", KEY)])
}

fn firewall(url: &str, extra: &str) -> Arc<dyn Connector> {
    let text =
        format!("name: fw\nkind: panos\nbase_url: {url}\napi_key: panos_key\ntimeout: 5s\n{extra}");
    Arc::new(panos::load("fw.yaml", &text, secrets()).expect("loads"))
}

fn call(op: &str, params: serde_json::Value, undo: serde_json::Value) -> CallRequest {
    CallRequest {
        action_id: "act-1".into(),
        idempotency_key: "key-1".into(),
        operation: op.into(),
        params,
        undo,
        context: json!({"case": {"id": "case-7"}}),
        timeout: Duration::from_secs(5),
    }
}

type Tags = Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>;

fn el<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn xml(status: u16, body: &str) -> Answer {
    Answer::text(status, "application/xml; charset=UTF-8", body)
}

/// A PAN-OS firewall's registered-ip table behind the XML API; anything not shaped as
/// documented is refused the way PAN-OS refuses it.
fn pan_os(tags: Tags) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        if req.header("x-pan-key") != Some(KEY) {
            return xml(
                403,
                "<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>",
            );
        }
        assert!(
            req.query.is_empty(),
            "nothing goes in the URL: {}",
            req.query
        );
        if (req.method.as_str(), req.path.as_str()) != ("POST", "/api/") {
            return Answer::text(404, "text/html", "<html><body>404 Not Found</body></html>");
        }
        assert_eq!(
            req.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let form = req.form();
        let keys: Vec<&str> = form.keys().map(String::as_str).collect();
        assert!(
            keys == ["cmd", "type"] || keys == ["cmd", "type", "vsys"],
            "{keys:?}"
        );
        let cmd = form["cmd"].as_str();
        let Ok(doc) = roxmltree::Document::parse(cmd) else {
            return xml(
                200,
                "<response status=\"error\" code=\"18\"><msg><line>Malformed Request</line></msg></response>",
            );
        };
        let root = doc.root_element();
        match form["type"].as_str() {
            "user-id" => {
                assert_eq!(root.tag_name().name(), "uid-message");
                assert_eq!(el(root, "version").and_then(|v| v.text()), Some("2.0"));
                assert_eq!(el(root, "type").and_then(|v| v.text()), Some("update"));
                let payload = el(root, "payload").expect("payload");
                let verb = payload.first_element_child().expect("a verb");
                let entry = el(verb, "entry").expect("entry");
                let ip = entry.attribute("ip").expect("ip").to_string();
                let member = el(el(entry, "tag").expect("tag"), "member").expect("member");
                let tag = member.text().expect("tag name").to_string();
                let mut t = tags.lock().expect("tags");
                let set = t.entry(ip.clone()).or_default();
                let (done, refusal, name) = match verb.tag_name().name() {
                    "register" => {
                        let timeout: u64 = member
                            .attribute("timeout")
                            .and_then(|s| s.parse().ok())
                            .expect("a timeout");
                        assert!(timeout <= 2_592_000);
                        (
                            set.insert(tag.clone()),
                            "already exists, ignore",
                            "register",
                        )
                    }
                    "unregister" => (
                        set.remove(&tag),
                        "does not exist, ignore unreg",
                        "unregister",
                    ),
                    other => panic!("unexpected verb {other}"),
                };
                if done {
                    xml(
                        200,
                        &format!(
                            "<response status=\"success\"><result><uid-response><version>2.0</version><payload><{name}/></payload></uid-response></result></response>"
                        ),
                    )
                } else {
                    xml(
                        200,
                        &format!(
                            "<response status=\"error\"><msg><line><uid-response><version>2.0</version><payload><{name}><entry ip=\"{ip}\" message=\"{tag} {refusal}\"/></{name}></payload></uid-response></line></msg></response>"
                        ),
                    )
                }
            }
            "op" => {
                let ip = root
                    .descendants()
                    .find(|n| n.has_tag_name("ip"))
                    .and_then(|n| n.text())
                    .unwrap_or_default()
                    .to_string();
                assert_eq!(
                    cmd,
                    format!(
                        "<show><object><registered-ip><ip>{ip}</ip></registered-ip></object></show>"
                    )
                );
                let t = tags.lock().expect("tags");
                let entries: String = t
                    .get(&ip)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        let members: String =
                            s.iter().map(|m| format!("<member>{m}</member>")).collect();
                        format!("<entry ip=\"{ip}\" from_agent=\"0\" persistent=\"1\"><tag>{members}</tag></entry>")
                    })
                    .unwrap_or_default();
                let count = usize::from(!entries.is_empty());
                xml(
                    200,
                    &format!(
                        "<response status=\"success\"><result>{entries}<count>{count}</count></result></response>"
                    ),
                )
            }
            other => xml(
                200,
                &format!(
                    "<response status=\"error\" code=\"17\"><msg><line>Invalid type {other}</line></msg></response>"
                ),
            ),
        }
    }
}

#[tokio::test]
async fn block_registers_the_tag_and_unblock_removes_the_tag_in_the_undo_record() {
    let tags: Tags = Arc::default();
    let s = StandIn::start(pan_os(tags.clone())).await;
    let fw = firewall(&s.url, "vsys: vsys2\ntag: riposte-block\ntag_timeout: 2h\n");
    let spec = fw.operation("block_ip").expect("block_ip");
    assert_eq!(spec.inverse.as_deref(), Some("unblock_ip"));
    assert!(spec.idempotent);

    let out = fw
        .call(&call("block_ip", json!({"ip": "203.0.113.9"}), json!(null)))
        .await
        .expect("blocked");
    assert_eq!(
        out.undo,
        json!({"ip": "203.0.113.9", "tag": "riposte-block"})
    );
    assert_eq!(out.fields["tag_timeout_secs"], 7200);
    let seen = s.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].form(),
        BTreeMap::from([
            ("type".to_string(), "user-id".to_string()),
            (
                "cmd".to_string(),
                "<uid-message><version>2.0</version><type>update</type><payload><register><entry ip=\"203.0.113.9\"><tag><member timeout=\"7200\">riposte-block</member></tag></entry></register></payload></uid-message>".to_string()
            ),
            ("vsys".to_string(), "vsys2".to_string()),
        ])
    );

    // The tag configured later is not the one the block used: the undo record's wins.
    let later = firewall(&s.url, "vsys: vsys2\ntag: another-tag\n");
    later
        .call(&call("unblock_ip", json!({"ip": "203.0.113.9"}), out.undo))
        .await
        .expect("unblocked");
    let seen = s.seen();
    assert_eq!(
        seen[1].form()["cmd"],
        "<uid-message><version>2.0</version><type>update</type><payload><unregister><entry ip=\"203.0.113.9\"><tag><member>riposte-block</member></tag></entry></unregister></payload></uid-message>"
    );
    assert!(tags.lock().expect("tags")["203.0.113.9"].is_empty());
}

#[tokio::test]
async fn repeating_a_block_or_an_unblock_is_done_not_an_error() {
    let tags: Tags = Arc::default();
    let s = StandIn::start(pan_os(tags.clone())).await;
    let fw = firewall(&s.url, "");
    let block = call("block_ip", json!({"ip": "2001:db8::66"}), json!(null));
    fw.call(&block).await.expect("first");
    fw.call(&block).await.expect("again: already exists");
    let unblock = call(
        "unblock_ip",
        json!({}),
        json!({"ip": "2001:db8::66", "tag": "riposte-block"}),
    );
    fw.call(&unblock).await.expect("first");
    fw.call(&unblock).await.expect("again: does not exist");
    // The default tag timeout is an hour; no vsys unless configured.
    let seen = s.seen();
    assert!(
        seen[0].form()["cmd"].contains("<member timeout=\"3600\">riposte-block</member>"),
        "{}",
        seen[0].body
    );
    assert!(!seen[0].form().contains_key("vsys"));
}

#[tokio::test]
async fn the_check_reads_the_registered_ip_table() {
    let tags: Tags = Arc::default();
    let s = StandIn::start(pan_os(tags.clone())).await;
    let fw = firewall(&s.url, "");
    let block = call("block_ip", json!({"ip": "198.51.100.0/24"}), json!(null));
    assert_eq!(
        fw.check(&block).expect("a check").await.expect("asked"),
        None
    );
    tags.lock()
        .expect("tags")
        .entry("198.51.100.0/24".into())
        .or_default()
        .insert("riposte-block".into());
    let done = fw
        .check(&block)
        .expect("a check")
        .await
        .expect("asked")
        .expect("tagged");
    assert_eq!(
        done.undo,
        json!({"ip": "198.51.100.0/24", "tag": "riposte-block"})
    );
    let unblock = call("unblock_ip", json!({}), done.undo.clone());
    assert_eq!(
        fw.check(&unblock).expect("check").await.expect("asked"),
        None
    );
    // Reads only.
    assert!(s.seen().iter().all(|r| r.form()["type"] == "op"));
}

#[tokio::test]
async fn vendor_errors_are_classified_and_never_carry_the_key() {
    let s = StandIn::start(|req: &Seen, _| {
        let cmd = req.form().get("cmd").cloned().unwrap_or_default();
        if cmd.contains("203.0.113.1\"") {
            xml(403, "<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>")
        } else if cmd.contains("203.0.113.2\"") {
            xml(200, "<response status=\"error\"><msg><line><uid-response><version>2.0</version><payload><register><entry ip=\"203.0.113.2\" message=\"vsys3 not found\"/></register></payload></uid-response></line></msg></response>")
        } else if cmd.contains("203.0.113.3\"") {
            xml(200, "<response status=\"error\" code=\"5\"><msg><line>Timed out while getting config lock</line></msg></response>")
        } else if cmd.contains("203.0.113.4\"") {
            Answer::text(404, "text/html", "<html><body>404 Not Found</body></html>")
        } else if cmd.contains("203.0.113.5\"") {
            xml(429, "<response status=\"error\"><msg>Too many requests</msg></response>").with_header("Retry-After", "7")
        } else if cmd.contains("203.0.113.6\"") {
            Answer::text(502, "text/html", "<html>Bad Gateway</html>")
        } else {
            Answer::text(200, "text/html", "<html>login page</html>")
        }
    })
    .await;
    let fw = firewall(&s.url, "");
    let block = |ip: &str| call("block_ip", json!({"ip": ip}), json!(null));
    let mut messages = Vec::new();

    let e = fw.call(&block("203.0.113.1")).await.expect_err("bad key");
    assert!(
        matches!(
            e,
            ConnectorError::Rejected {
                status: Some(403),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("secret `panos_key`"), "{e}");
    assert!(e.to_string().contains("Invalid Credential"), "{e}");
    assert!(!e.retryable());
    messages.push(format!("{e} {e:?}"));

    let e = fw.call(&block("203.0.113.2")).await.expect_err("refused");
    assert!(e.to_string().contains("vsys3 not found"), "{e}");
    assert!(!e.retryable());
    messages.push(format!("{e} {e:?}"));

    let e = fw.call(&block("203.0.113.3")).await.expect_err("internal");
    assert!(e.retryable(), "code 5 is worth another try: {e:?}");
    messages.push(format!("{e} {e:?}"));

    let e = fw.call(&block("203.0.113.4")).await.expect_err("404");
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
    messages.push(format!("{e} {e:?}"));

    let e = fw.call(&block("203.0.113.5")).await.expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(7)
        }
    );

    let e = fw.call(&block("203.0.113.6")).await.expect_err("502");
    assert!(e.retryable(), "{e:?}");
    messages.push(format!("{e} {e:?}"));

    let e = fw
        .call(&block("203.0.113.7"))
        .await
        .expect_err("not PAN-OS");
    assert!(e.to_string().contains("not <response>"), "{e}");
    messages.push(format!("{e} {e:?}"));

    // An address that is not one is refused before anything is sent.
    let before = s.seen().len();
    let e = fw
        .call(&block("203.0.113.1\"/><x a=\""))
        .await
        .expect_err("not an address");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");
    assert_eq!(s.seen().len(), before);

    let loaded = panos::load(
        "fw.yaml",
        &format!(
            "name: fw\nkind: panos\nbase_url: {}\napi_key: panos_key\n",
            s.url
        ),
        secrets(),
    )
    .expect("loads");
    messages.push(format!("{loaded:?}"));
    for m in &messages {
        assert!(!m.contains(KEY), "the key leaked into: {m}");
    }
}

#[test]
fn definitions_are_checked_field_by_field() {
    let load = |t: &str| panos::load("fw.yaml", t, secrets());
    let base = "name: fw\nkind: panos\nbase_url: https://fw.example\napi_key: k\n";
    let e = load("name: fw\nkind: panos\nbase_url: https://fw.example\n").expect_err("no key");
    assert!(e.to_string().contains("api_key"), "{e}");
    let e = load(&format!("{base}tag_timeout: 31d\n")).expect_err("too long");
    assert_eq!(e.line, 5, "{e}");
    assert!(e.to_string().contains("30d"), "{e}");
    let e = load(&format!("{base}tag: \"it's\"\n")).expect_err("quote");
    assert_eq!(e.line, 5, "{e}");
    let e = load(&format!("{base}vsys: \"\"\n")).expect_err("empty vsys");
    assert!(e.to_string().contains("vsys"), "{e}");
    let e = load(&format!("{base}colour: red\n")).expect_err("unknown field");
    assert!(e.to_string().contains("colour"), "{e}");
    load(&format!("{base}tag_timeout: 0\n")).expect("0 = never expires");
}

#[test]
fn the_documented_example_loads() {
    let path = "../../docs/playbooks/config/connectors/panos.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(riposte_respond::Templates::default()),
        secrets(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.name(), "paloalto");
    assert!(c.operation("unblock_ip").is_some());
}
