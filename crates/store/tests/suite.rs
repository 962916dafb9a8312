//! The store test-suite. Every backend runs the same checks; the SQLite backend here.

use riposte_domain::{Alert, Decoded, Entity, EntityKind, Origin, Role, Severity, Timestamp, id};
use riposte_store::{
    AuditVerdict, CasePatch, CaseQuery, Durability, IngestBatch, ListQuery, NewDeadLetter,
    SqliteStore, Store, StoredCase, StoredRecord, verify_audit,
};
use serde_json::json;

fn alert(n: u64) -> StoredRecord {
    let original = json!({ "n": n, "sig": "test" });
    let mut a = Alert {
        id: String::new(),
        decoder: "suricata".into(),
        product: "Suricata".into(),
        source_id: None,
        time: Timestamp::from_second(1_700_000_000 + n as i64).unwrap(),
        time_original: "t".into(),
        title: format!("alert {n}"),
        description: None,
        severity: Severity::from_score(50, "2"),
        rule: None,
        entities: vec![Entity::new(EntityKind::Ip, Role::Source, "10.0.0.1")],
        techniques: vec![],
        tactics: vec![],
        original,
        origin: Some(Origin::Replay {
            file: "f".into(),
            record: n,
        }),
    };
    a.id = id::record_id(
        "suricata",
        riposte_domain::RecordKind::Alert,
        a.time,
        None,
        &a.original,
    );
    StoredRecord::from_decoded(&Decoded::Alert(a))
}

fn batch(records: Vec<StoredRecord>, rejects: Vec<NewDeadLetter>) -> IngestBatch {
    IngestBatch {
        batch_id: "b1".into(),
        actor: "test".into(),
        decoder: "suricata".into(),
        source: json!({ "via": "test" }),
        received: (records.len() + rejects.len()) as u64,
        records,
        rejects,
        received_at: Timestamp::now(),
    }
}

async fn open(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::open(dir, Durability::Full).await.unwrap()
}

#[tokio::test]
async fn ingest_dedups_lists_and_keeps_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    let bad = NewDeadLetter {
        decoder: "suricata".into(),
        index: 2,
        field: "timestamp".into(),
        reason: "missing".into(),
        raw: b"{\"no\":\"time\"}".to_vec(),
        origin: Origin::Replay {
            file: "f".into(),
            record: 3,
        },
    };
    let o = s
        .ingest(batch(vec![alert(1), alert(2), alert(1)], vec![bad]))
        .await
        .unwrap();
    assert_eq!((o.accepted, o.duplicates, o.rejected), (2, 1, 1));
    let o = s
        .ingest(batch(vec![alert(2), alert(3)], vec![]))
        .await
        .unwrap();
    assert_eq!((o.accepted, o.duplicates), (1, 1));
    assert_eq!(s.counts().await.unwrap(), (3, 0));

    let page = s
        .alerts(&ListQuery {
            limit: 2,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.items[0].contains("alert 3"), "newest first");
    let rest = s
        .alerts(&ListQuery {
            limit: 2,
            cursor: page.next_cursor,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.items[0].contains("alert 1"));
    assert_eq!(rest.next_cursor, None);

    let id = alert(2).id;
    let doc = s.alert(&id).await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["kind"], "alert");
    assert_eq!(v["origin"]["via"], "replay");
    assert!(s.alert("nope").await.unwrap().is_none());

    let dls = s
        .dead_letters(&ListQuery {
            limit: 10,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(dls.len(), 1);
    assert_eq!(dls[0].field, "timestamp");
    assert_eq!(dls[0].raw, "{\"no\":\"time\"}");
    s.mark_reingested(dls[0].id, "abc", "test").await.unwrap();
    assert_eq!(
        s.dead_letter(dls[0].id)
            .await
            .unwrap()
            .unwrap()
            .reingested_as
            .as_deref(),
        Some("abc")
    );

    match verify_audit(&s).await.unwrap() {
        AuditVerdict::Intact { records, .. } => assert_eq!(records, 3),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn data_survives_reopen_and_the_chain_continues() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path()).await;
        s.ingest(batch(vec![alert(1)], vec![])).await.unwrap();
        s.close().await;
    }
    let s = open(dir.path()).await;
    s.ingest(batch(vec![alert(2)], vec![])).await.unwrap();
    assert_eq!(s.counts().await.unwrap().0, 2);
    assert!(matches!(
        verify_audit(&s).await.unwrap(),
        AuditVerdict::Intact { records: 2, .. }
    ));
}

#[tokio::test]
async fn tokens_are_unique_by_name_and_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.create_token("ci", "ingest", [1; 32], "test")
        .await
        .unwrap();
    assert!(matches!(
        s.create_token("ci", "viewer", [2; 32], "test").await,
        Err(riposte_store::StoreError::Conflict(_))
    ));
    assert_eq!(
        s.token_by_hash([1; 32]).await.unwrap(),
        Some(("ci".into(), "ingest".into()))
    );
    assert!(s.revoke_token("ci", "test").await.unwrap());
    assert_eq!(s.token_by_hash([1; 32]).await.unwrap(), None);
    assert!(!s.revoke_token("ci", "test").await.unwrap());
}

#[tokio::test]
async fn edl_entries_are_sets_per_list_audited_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    assert!(s.edl_add("bad-ips", "192.0.2.7", "act-1").await.unwrap());
    assert!(
        s.edl_add("bad-ips", "198.51.100.0/24", "act-2")
            .await
            .unwrap()
    );
    assert!(
        s.edl_add("bad-domains", "evil.example", "act-3")
            .await
            .unwrap()
    );
    // A repeat changes nothing and writes no audit record.
    let head = s.audit_head().await.unwrap();
    assert!(!s.edl_add("bad-ips", "192.0.2.7", "act-1").await.unwrap());
    assert_eq!(s.audit_head().await.unwrap(), head);
    assert_eq!(
        s.edl_entries("bad-ips").await.unwrap(),
        ["192.0.2.7", "198.51.100.0/24"]
    );
    assert!(
        s.edl_remove("bad-ips", "192.0.2.7", "act-1:undo")
            .await
            .unwrap()
    );
    assert!(
        !s.edl_remove("bad-ips", "192.0.2.7", "act-1:undo")
            .await
            .unwrap()
    );
    assert!(s.edl_entries("nothing-here").await.unwrap().is_empty());
    let records = s.audit_records(0, 100).await.unwrap();
    let actions: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap())
        .filter(|b| b["action"].as_str().is_some_and(|a| a.starts_with("edl.")))
        .map(|b| {
            json!([
                b["actor"],
                b["action"],
                b["detail"]["list"],
                b["detail"]["value"]
            ])
        })
        .collect();
    assert_eq!(
        actions,
        [
            json!(["act-1", "edl.add", "bad-ips", "192.0.2.7"]),
            json!(["act-2", "edl.add", "bad-ips", "198.51.100.0/24"]),
            json!(["act-3", "edl.add", "bad-domains", "evil.example"]),
            json!(["act-1:undo", "edl.remove", "bad-ips", "192.0.2.7"]),
        ]
    );
    s.close().await;
    let s = open(dir.path()).await;
    assert_eq!(s.edl_entries("bad-ips").await.unwrap(), ["198.51.100.0/24"]);
    assert_eq!(
        verify_audit(&s).await.unwrap(),
        AuditVerdict::Intact {
            records: 4,
            head: s.audit_head().await.unwrap().unwrap().1
        }
    );
}

/// Tampering with the stored audit log, the way someone with the database file would.
async fn tamper(dir: &std::path::Path, sql: &str) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("riposte.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
}

async fn chain_of(n: u64) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    for i in 0..n {
        s.ingest(batch(vec![alert(i)], vec![])).await.unwrap();
    }
    (dir, s)
}

#[tokio::test]
async fn a_flipped_byte_in_the_stored_audit_log_is_found() {
    let (dir, s) = chain_of(5).await;
    // Flip one bit of one byte in the middle of record 3's stored body.
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.path().join("riposte.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let mut body: Vec<u8> = sqlx::query_scalar("SELECT body FROM audit WHERE seq = 3")
            .fetch_one(&mut c)
            .await
            .unwrap();
        let i = body.len() / 2;
        body[i] ^= 0x01;
        sqlx::query("UPDATE audit SET body = ? WHERE seq = 3")
            .bind(body)
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    match verify_audit(&s).await.unwrap() {
        AuditVerdict::Broken { error, checked } => {
            assert_eq!(checked, 2);
            assert!(error.starts_with("audit record 3:"), "{error}");
        }
        other => panic!("tampering not found: {other:?}"),
    }
}

#[tokio::test]
async fn removed_and_reordered_audit_records_are_found() {
    let (dir, s) = chain_of(5).await;
    tamper(dir.path(), "DELETE FROM audit WHERE seq = 2").await;
    let AuditVerdict::Broken { error, .. } = verify_audit(&s).await.unwrap() else {
        panic!("removal not found")
    };
    assert!(error.starts_with("audit record 3:"), "{error}");

    let (dir, s) = chain_of(5).await;
    tamper(
        dir.path(),
        "UPDATE audit SET seq = 100 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 100;",
    )
    .await;
    let AuditVerdict::Broken { error, .. } = verify_audit(&s).await.unwrap() else {
        panic!("reordering not found")
    };
    assert!(error.starts_with("audit record 2:"), "{error}");

    let (dir, s) = chain_of(5).await;
    tamper(dir.path(), "DELETE FROM audit WHERE seq = 5").await;
    let AuditVerdict::Broken { error, .. } = verify_audit(&s).await.unwrap() else {
        panic!("truncation not found")
    };
    assert!(error.starts_with("audit record 5:"), "{error}");
}

fn case(id: &str, tier: &str, risk: f64, user: &str) -> StoredCase {
    StoredCase {
        id: id.into(),
        tier: tier.into(),
        status: "open".into(),
        risk,
        first_ms: 1_700_000_000_000,
        last_ms: 1_700_000_600_000,
        entities: vec![
            ("user".into(), user.into()),
            ("host".into(), "ws-042".into()),
        ],
        doc: json!({ "id": id, "tier": tier, "risk": risk }),
    }
}

#[tokio::test]
async fn cases_are_listed_by_risk_filtered_changed_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.upsert_cases(
        &[
            case("c1", "medium", 45.0, "alice"),
            case("c2", "validated", 30.0, "bob"),
            case("c3", "high", 80.0, "alice"),
        ],
        vec![],
        "cases",
    )
    .await
    .unwrap();
    let ids = |docs: Vec<String>| -> Vec<String> {
        docs.iter()
            .map(|d| {
                serde_json::from_str::<serde_json::Value>(d).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let all = CaseQuery {
        limit: 100,
        ..CaseQuery::default()
    };
    assert_eq!(ids(s.cases(&all).await.unwrap()), vec!["c2", "c3", "c1"]);
    let alice = CaseQuery {
        entity: Some(("user".into(), "alice".into())),
        ..all.clone()
    };
    assert_eq!(ids(s.cases(&alice).await.unwrap()), vec!["c3", "c1"]);
    let validated = CaseQuery {
        tier: Some("validated".into()),
        ..all.clone()
    };
    assert_eq!(ids(s.cases(&validated).await.unwrap()), vec!["c2"]);

    // An analyst's change is kept, and the next upsert from the case stage keeps it too.
    let patch = CasePatch {
        status: Some("closed".into()),
        assignee: Some("carol".into()),
        verdict: Some("true_positive".into()),
    };
    let doc = s.update_case("c3", &patch, "carol").await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["verdict"].as_str()),
        (Some("closed"), Some("true_positive"))
    );
    s.upsert_cases(
        &[case("c3", "high", 85.0, "alice")],
        vec![("c1".into(), "c3".into())],
        "cases",
    )
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&s.case("c3").await.unwrap().unwrap()).unwrap();
    assert_eq!(
        (
            v["status"].as_str(),
            v["assignee"].as_str(),
            v["risk"].as_f64()
        ),
        (Some("closed"), Some("carol"), Some(85.0))
    );
    let merged = CaseQuery {
        status: Some("merged".into()),
        ..all.clone()
    };
    assert_eq!(ids(s.cases(&merged).await.unwrap()), vec!["c1"]);
    assert!(
        s.update_case("nope", &patch, "carol")
            .await
            .unwrap()
            .is_none()
    );

    // Every change is on the record, and the chain holds.
    let recs = s.audit_records(0, 100).await.unwrap();
    let actions: Vec<String> = recs
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(actions, vec!["case.upsert", "case.update", "case.upsert"]);
    let update: serde_json::Value = serde_json::from_slice(&recs[1].body).unwrap();
    assert_eq!(update["detail"]["before"]["status"], "open");
    assert_eq!(update["detail"]["after"]["assignee"], "carol");
    assert!(matches!(
        verify_audit(&s).await.unwrap(),
        AuditVerdict::Intact { records: 3, .. }
    ));
}

fn event(n: u64) -> StoredRecord {
    let mut e = riposte_domain::Event {
        id: String::new(),
        decoder: "windows".into(),
        product: "Windows".into(),
        source_id: None,
        time: Timestamp::from_second(1_700_000_000 + n as i64).unwrap(),
        time_original: "t".into(),
        action: "4625".into(),
        outcome: None,
        entities: vec![],
        original: json!({ "n": n }),
        origin: None,
    };
    e.id = id::record_id(
        "windows",
        riposte_domain::RecordKind::Event,
        e.time,
        None,
        &e.original,
    );
    StoredRecord::from_decoded(&Decoded::Event(e))
}

/// The look-backs that rebuild live state after a restart: alerts and events received at or
/// after a time, newest first, paged, stopping at the first older record; a duplicate keeps
/// the time it was first received.
#[tokio::test]
async fn records_received_since_a_time_are_paged_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    let mut old = batch(vec![alert(1), event(1), event(2)], vec![]);
    old.received_at = Timestamp::from_second(1_700_000_000).unwrap();
    s.ingest(old).await.unwrap();
    s.ingest(batch(
        vec![alert(2), alert(3), event(3), event(4), event(5), event(1)],
        vec![],
    ))
    .await
    .unwrap();
    let since = Timestamp::now().as_millisecond() - 60_000;
    let walk = |events: bool| {
        let s = &s;
        async move {
            let mut docs = Vec::new();
            let mut cursor = None;
            loop {
                let page = if events {
                    s.events_received_since(since, cursor, 2).await.unwrap()
                } else {
                    s.alerts_received_since(since, cursor, 2).await.unwrap()
                };
                assert!(page.items.len() <= 2);
                docs.extend(page.items.into_iter().map(|d| {
                    serde_json::from_str::<serde_json::Value>(&d).unwrap()["original"]["n"]
                        .as_u64()
                        .unwrap()
                }));
                cursor = page.next_cursor;
                if cursor.is_none() {
                    return docs;
                }
            }
        }
    };
    assert_eq!(walk(true).await, vec![5, 4, 3]);
    assert_eq!(walk(false).await, vec![3, 2]);
}
