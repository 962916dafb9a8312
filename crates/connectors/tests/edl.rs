//! riposte's External Dynamic Lists connector over an in-memory list store: add and remove
//! with the undo record, values checked and written as firewalls read them, entries someone
//! else listed left alone by an undo, and the check.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use riposte_connectors::edl::{self, EdlLists, ListFuture};
use riposte_respond::{CallRequest, Connector, ConnectorError};
use serde_json::json;

/// Lists in memory, and who changed what.
#[derive(Default)]
struct Memory {
    lists: Mutex<BTreeMap<String, BTreeSet<String>>>,
    log: Mutex<Vec<String>>,
    broken: bool,
}

impl EdlLists for Memory {
    fn add<'a>(&'a self, list: &'a str, value: &'a str, actor: &'a str) -> ListFuture<'a, bool> {
        Box::pin(async move {
            if self.broken {
                return Err("database is locked".into());
            }
            let added = self
                .lists
                .lock()
                .expect("lists")
                .entry(list.into())
                .or_default()
                .insert(value.into());
            if added {
                self.log
                    .lock()
                    .expect("log")
                    .push(format!("{actor} add {list} {value}"));
            }
            Ok(added)
        })
    }

    fn remove<'a>(&'a self, list: &'a str, value: &'a str, actor: &'a str) -> ListFuture<'a, bool> {
        Box::pin(async move {
            let removed = self
                .lists
                .lock()
                .expect("lists")
                .entry(list.into())
                .or_default()
                .remove(value);
            if removed {
                self.log
                    .lock()
                    .expect("log")
                    .push(format!("{actor} remove {list} {value}"));
            }
            Ok(removed)
        })
    }

    fn entries<'a>(&'a self, list: &'a str) -> ListFuture<'a, Vec<String>> {
        Box::pin(async move {
            Ok(self
                .lists
                .lock()
                .expect("lists")
                .get(list)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default())
        })
    }
}

const DEFINITION: &str =
    "name: blocklists\nkind: edl\nlists:\n  bad-ips: ip\n  bad-domains: domain\n  bad-urls: url\n";

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

#[tokio::test]
async fn add_then_remove_with_the_undo_record() {
    let store = Arc::new(Memory::default());
    let c = edl::load("edl.yaml", DEFINITION, store.clone()).expect("loads");
    let spec = c.operation("add").expect("add");
    assert_eq!(spec.inverse.as_deref(), Some("remove"));
    assert!(spec.idempotent);

    let out = c
        .call(&call(
            "add",
            json!({"list": "bad-urls", "value": "HTTPS://Login.Evil.Example/Path"}),
            json!(null),
        ))
        .await
        .expect("added");
    assert_eq!(
        out.undo,
        json!({"list": "bad-urls", "value": "login.evil.example/Path", "changed": true})
    );
    // A repeat changes nothing.
    let again = c
        .call(&call(
            "add",
            json!({"list": "bad-urls", "value": "login.evil.example/Path"}),
            json!(null),
        ))
        .await
        .expect("again");
    assert_eq!(again.fields["changed"], false);

    c.call(&call("remove", json!({}), out.undo))
        .await
        .expect("removed");
    assert!(store.lists.lock().expect("lists")["bad-urls"].is_empty());
    assert_eq!(
        *store.log.lock().expect("log"),
        [
            "connector blocklists: action act-1 add bad-urls login.evil.example/Path",
            "connector blocklists: action act-1 remove bad-urls login.evil.example/Path",
        ]
    );
}

#[tokio::test]
async fn undoing_an_add_that_found_the_entry_listed_leaves_it() {
    let store = Arc::new(Memory::default());
    store
        .lists
        .lock()
        .expect("lists")
        .entry("bad-ips".into())
        .or_default()
        .insert("192.0.2.7".into());
    let c = edl::load("edl.yaml", DEFINITION, store.clone()).expect("loads");
    let out = c
        .call(&call(
            "add",
            json!({"list": "bad-ips", "value": "192.0.2.7"}),
            json!(null),
        ))
        .await
        .expect("already listed");
    assert_eq!(out.undo["changed"], false);
    let undo = c
        .call(&call("remove", json!({}), out.undo))
        .await
        .expect("left");
    assert_eq!(undo.fields["left_in_place"], true);
    assert!(store.lists.lock().expect("lists")["bad-ips"].contains("192.0.2.7"));
}

#[tokio::test]
async fn bad_values_lists_and_stores_are_clear_failures() {
    let store = Arc::new(Memory::default());
    let c = edl::load("edl.yaml", DEFINITION, store.clone()).expect("loads");
    for (params, want) in [
        (
            json!({"list": "bad-ips", "value": "evil.example"}),
            "not an IP address",
        ),
        (
            json!({"list": "bad-domains", "value": "evil.example\n0.0.0.0"}),
            "one line",
        ),
        (
            json!({"list": "nope", "value": "192.0.2.7"}),
            "no list `nope`",
        ),
        (json!({"value": "192.0.2.7"}), "needs `list`"),
        (json!({"list": "bad-ips"}), "`value`"),
    ] {
        let e = c
            .call(&call("add", params.clone(), json!(null)))
            .await
            .expect_err("refused");
        assert!(
            matches!(e, ConnectorError::Config { .. }),
            "{params}: {e:?}"
        );
        assert!(e.to_string().contains(want), "{params}: {e}");
    }
    assert!(store.lists.lock().expect("lists").is_empty());

    let broken = edl::load(
        "edl.yaml",
        DEFINITION,
        Arc::new(Memory {
            broken: true,
            ..Memory::default()
        }),
    )
    .expect("loads");
    let e = broken
        .call(&call(
            "add",
            json!({"list": "bad-ips", "value": "192.0.2.7"}),
            json!(null),
        ))
        .await
        .expect_err("store down");
    assert!(e.retryable(), "{e:?}");

    // One list: `list` may be left out.
    let one = edl::load(
        "edl.yaml",
        "name: ips\nkind: edl\nlists: {bad-ips: ip}\n",
        store.clone(),
    )
    .expect("loads");
    one.call(&call(
        "add",
        json!({"value": "198.51.100.0/24"}),
        json!(null),
    ))
    .await
    .expect("the only list");
}

#[tokio::test]
async fn the_check_reads_the_list() {
    let store = Arc::new(Memory::default());
    let c = edl::load("edl.yaml", DEFINITION, store.clone()).expect("loads");
    let add = call(
        "add",
        json!({"list": "bad-domains", "value": "Evil.Example"}),
        json!(null),
    );
    assert_eq!(c.check(&add).expect("check").await.expect("asked"), None);
    store
        .lists
        .lock()
        .expect("lists")
        .entry("bad-domains".into())
        .or_default()
        .insert("evil.example".into());
    let done = c
        .check(&add)
        .expect("check")
        .await
        .expect("asked")
        .expect("listed");
    assert_eq!(done.undo["value"], "evil.example");
    let remove = call("remove", json!({}), done.undo);
    assert_eq!(c.check(&remove).expect("check").await.expect("asked"), None);
}

#[test]
fn definitions_are_checked_and_the_documented_example_loads() {
    let e = edl::load(
        "e.yaml",
        "name: l\nkind: edl\nlists: {}\n",
        Arc::new(Memory::default()),
    )
    .expect_err("empty");
    assert!(e.to_string().contains("lists"), "{e}");
    let e = edl::load(
        "e.yaml",
        "name: l\nkind: edl\nlists:\n  Bad/Name: ip\n",
        Arc::new(Memory::default()),
    )
    .expect_err("name");
    assert_eq!(e.line, 4, "{e}");
    let e = edl::load(
        "e.yaml",
        "name: l\nkind: edl\nlists:\n  x: hashes\n",
        Arc::new(Memory::default()),
    )
    .expect_err("type");
    assert!(e.to_string().contains("hashes"), "{e}");

    let path = "../../docs/playbooks/config/connectors/edl.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(riposte_respond::Templates::default()),
        Arc::new(riposte_respond::secrets::StaticSecrets::default()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.name(), "blocklists");
}

#[tokio::test]
async fn a_definition_loaded_before_any_store_is_bound_says_so_when_called() {
    // This test binary never binds a store.
    let c = riposte_connectors::load(
        "edl.yaml",
        DEFINITION,
        Arc::new(riposte_respond::Templates::default()),
        Arc::new(riposte_respond::secrets::StaticSecrets::default()),
    )
    .expect("loads");
    let e = c
        .call(&call(
            "add",
            json!({"list": "bad-ips", "value": "192.0.2.7"}),
            json!(null),
        ))
        .await
        .expect_err("no store");
    assert!(e.to_string().contains("riposte serve"), "{e}");
}
