//! The response stage's store on SQLite: compare-and-set writes, the audit record in the
//! same transaction, idempotent case changes that survive the case stage's rewrites.

use riposte_domain::Timestamp;
use riposte_respond::run::{ActionKind, AuditEntry, Change};
use riposte_respond::{
    ActionRecord, ActionState, CaseChange, Class, Run, RunStatus, RunStore, TriggerKind,
};
use riposte_store::{AuditVerdict, Durability, SqliteStore, Store, StoredCase, verify_audit};
use serde_json::{Value, json};

async fn open(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::open(dir, Durability::Full).await.unwrap()
}

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).unwrap()
}

fn audit(action: &str) -> AuditEntry {
    AuditEntry {
        actor: "playbook:contain".into(),
        action: action.into(),
        detail: json!({ "test": action }),
    }
}

fn run(id: &str, case: &str) -> Run {
    Run {
        id: id.into(),
        playbook_id: "contain".into(),
        playbook_version: "1".into(),
        playbook_hash: "abc".into(),
        trigger: TriggerKind::CaseCreated,
        event_id: format!("{case}@1"),
        case_id: Some(case.into()),
        requested_by: "playbook:contain".into(),
        case: json!({ "id": case }),
        alert: Value::Null,
        pointer: 0,
        status: RunStatus::Running,
        wake_at: None,
        step_started_at: None,
        outputs: Default::default(),
        error: None,
        version: 1,
        created_at: t(0),
        updated_at: t(0),
    }
}

fn action(id: &str, run: &str) -> ActionRecord {
    ActionRecord {
        id: id.into(),
        run_id: Some(run.into()),
        step_id: "isolate".into(),
        item: 0,
        kind: ActionKind::Call,
        connector: "edr".into(),
        operation: "isolate_host".into(),
        class: Class::Approve,
        params: json!({ "host": "ws-042" }),
        undo: Value::Null,
        reason: None,
        approval: None,
        state: ActionState::AwaitingApproval,
        attempts: 0,
        max_attempts: 3,
        backoff_secs: 5,
        timeout_secs: 30,
        expires_at: None,
        expires_secs: None,
        case_id: Some("case-1".into()),
        requested_by: "playbook:contain".into(),
        version: 1,
        created_at: t(0),
        updated_at: t(0),
    }
}

/// The `action` of every audit record, in order.
async fn audit_actions(s: &SqliteStore) -> Vec<String> {
    s.audit_records(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let b: Value = serde_json::from_slice(&r.body).unwrap();
            b["action"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn runs_and_actions_are_compare_and_set_with_their_audit_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    let r = run("run-1", "case-1");
    assert!(s.insert_run(&r, audit("run.start")).await.unwrap());
    assert!(
        !s.insert_run(&r, audit("run.start")).await.unwrap(),
        "a second insert is refused"
    );

    // The next version is written; a stale or repeated one is not (and leaves no audit).
    let mut r2 = r.clone();
    r2.version = 2;
    r2.status = RunStatus::Waiting;
    r2.wake_at = Some(t(60));
    assert!(s.update_run(&r2, Some(audit("run.wait"))).await.unwrap());
    assert!(!s.update_run(&r2, Some(audit("run.wait"))).await.unwrap());
    let mut stale = r.clone();
    stale.version = 2;
    stale.pointer = 9;
    assert!(!s.update_run(&stale, None).await.unwrap());
    let mut ghost = run("run-none", "case-1");
    ghost.version = 2;
    assert!(!s.update_run(&ghost, None).await.unwrap(), "no row: false");
    assert_eq!(s.run("run-1").await.unwrap().unwrap(), r2);
    assert_eq!(s.open_runs().await.unwrap().len(), 1);
    assert_eq!(s.open_runs_for_case("case-1").await.unwrap().len(), 1);
    assert!(s.open_runs_for_case("case-2").await.unwrap().is_empty());

    let a = action("act-1", "run-1");
    assert!(s.insert_action(&a, audit("action.request")).await.unwrap());
    assert!(!s.insert_action(&a, audit("action.request")).await.unwrap());
    assert_eq!(s.open_actions().await.unwrap(), vec![a.clone()]);
    // Two writers both read version 1; only the first moves it on.
    let mut approved = a.clone();
    approved.version = 2;
    approved.state = ActionState::Ready;
    let mut rejected = a.clone();
    rejected.version = 2;
    rejected.state = ActionState::Failed {
        error: "no".into(),
        at: t(1),
    };
    assert!(
        s.update_action(&approved, audit("approval.answer"))
            .await
            .unwrap()
    );
    assert!(
        !s.update_action(&rejected, audit("approval.answer"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.action("act-1").await.unwrap().unwrap().state,
        ActionState::Ready
    );
    assert_eq!(s.actions_of_run("run-1").await.unwrap().len(), 1);

    // Closed runs and actions leave the open lists.
    let mut done = r2.clone();
    done.version = 3;
    done.status = RunStatus::Succeeded;
    assert!(s.update_run(&done, None).await.unwrap());
    assert!(s.open_runs().await.unwrap().is_empty());
    let mut failed = approved.clone();
    failed.version = 3;
    failed.state = rejected.state.clone();
    assert!(
        s.update_action(&failed, audit("action.failed"))
            .await
            .unwrap()
    );
    assert!(s.open_actions().await.unwrap().is_empty());

    s.record(audit("approval.refused")).await.unwrap();
    assert_eq!(
        audit_actions(&s).await,
        [
            "run.start",
            "run.wait",
            "action.request",
            "approval.answer",
            "action.failed",
            "approval.refused"
        ]
    );
    assert!(matches!(
        verify_audit(&s).await.unwrap(),
        AuditVerdict::Intact { records: 6, .. }
    ));

    // Everything is still there after a reopen.
    s.close().await;
    let s = open(dir.path()).await;
    assert_eq!(s.run("run-1").await.unwrap().unwrap(), done);
    assert_eq!(s.action("act-1").await.unwrap().unwrap(), failed);
}

fn case(id: &str, tier: &str) -> StoredCase {
    StoredCase {
        id: id.into(),
        tier: tier.into(),
        status: "open".into(),
        risk: 50.0,
        first_ms: 1_700_000_000_000,
        last_ms: 1_700_000_600_000,
        entities: vec![("host".into(), "ws-042".into())],
        doc: json!({ "id": id, "tier": tier, "analyst_field": 1 }),
    }
}

fn change(key: &str, c: Change) -> CaseChange {
    CaseChange {
        key: key.into(),
        case_id: "case-1".into(),
        run_id: "run-1".into(),
        step_id: "s".into(),
        change: c,
    }
}

#[tokio::test]
async fn case_changes_apply_once_and_survive_the_case_stage_rewriting_the_case() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;
    s.upsert_cases(&[case("case-1", "medium")], vec![], "cases")
        .await
        .unwrap();
    let tag = change(
        "k-tag",
        Change::Tag {
            tags: vec!["contained".into(), "edr".into()],
        },
    );
    assert!(
        s.apply_case_change(&tag, audit("case.change"))
            .await
            .unwrap()
    );
    assert!(
        !s.apply_case_change(&tag, audit("case.change"))
            .await
            .unwrap(),
        "same key: once"
    );
    let note = change(
        "k-note",
        Change::Note {
            text: "isolated ws-042".into(),
        },
    );
    assert!(
        s.apply_case_change(&note, audit("case.change"))
            .await
            .unwrap()
    );
    let set = change(
        "k-set",
        Change::Set {
            fields: [("status".to_string(), "contained".to_string())].into(),
        },
    );
    assert!(
        s.apply_case_change(&set, audit("case.change"))
            .await
            .unwrap()
    );
    let assign = change("k-assign", Change::Assign { to: "bob".into() });
    assert!(
        s.apply_case_change(&assign, audit("case.change"))
            .await
            .unwrap()
    );
    let tag2 = change(
        "k-tag2",
        Change::Tag {
            tags: vec!["edr".into(), "p1".into()],
        },
    );
    assert!(
        s.apply_case_change(&tag2, audit("case.change"))
            .await
            .unwrap()
    );

    let check = |doc: &Value, tier: &str| {
        assert_eq!(doc["tier"], tier, "{doc}");
        assert_eq!(doc["tags"], json!(["contained", "edr", "p1"]), "{doc}");
        assert_eq!(doc["notes"][0]["text"], "isolated ws-042", "{doc}");
        assert_eq!(doc["notes"].as_array().unwrap().len(), 1, "{doc}");
        assert_eq!(doc["status"], "contained", "{doc}");
        assert_eq!(doc["assignee"], "bob", "{doc}");
        assert_eq!(doc["analyst_field"], 1, "{doc}");
    };
    let doc: Value = serde_json::from_str(&s.case("case-1").await.unwrap().unwrap()).unwrap();
    check(&doc, "medium");
    // The case stage writes the case again, knowing nothing of tags or notes: they stay.
    s.upsert_cases(&[case("case-1", "high")], vec![], "cases")
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(&s.case("case-1").await.unwrap().unwrap()).unwrap();
    check(&doc, "high");

    // A change to a case that is gone is recorded as such, once.
    let mut lost = change("k-lost", Change::Assign { to: "eve".into() });
    lost.case_id = "case-404".into();
    assert!(
        s.apply_case_change(&lost, audit("case.change"))
            .await
            .unwrap()
    );
    assert!(
        !s.apply_case_change(&lost, audit("case.change"))
            .await
            .unwrap()
    );
    let last = s.audit_records(0, 1000).await.unwrap().pop().unwrap();
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body["detail"]["case_missing"], true, "{body}");
    assert!(matches!(
        verify_audit(&s).await.unwrap(),
        AuditVerdict::Intact { .. }
    ));
}

/// `commit` makes several writes all or none, inside the group commit: a refusal anywhere
/// leaves no row and no audit record of the commit behind, while the writes of other
/// commits in the same group stand.
#[tokio::test]
async fn a_commit_of_several_writes_applies_all_or_none() {
    use riposte_respond::RunWrite;
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path()).await;

    // A new run with its first action, already `sending`, in one write.
    let r = run("run-1", "case-1");
    let mut a = action("act-1", "run-1");
    a.state = ActionState::Sending {
        attempt: 1,
        at: t(0),
    };
    a.attempts = 1;
    let first = vec![
        RunWrite::InsertRun {
            run: r.clone(),
            audits: vec![audit("run.start")],
        },
        RunWrite::InsertAction {
            action: a.clone(),
            audits: vec![audit("action.request"), audit("action.send")],
        },
    ];
    assert!(s.commit(first.clone()).await.unwrap());
    assert_eq!(s.action("act-1").await.unwrap().unwrap(), a);
    assert_eq!(
        audit_actions(&s).await,
        ["run.start", "action.request", "action.send"]
    );

    // The same event again: the run is there, so its action is not inserted either.
    let mut again = first;
    if let RunWrite::InsertAction { action, .. } = &mut again[1] {
        action.id = "act-2".into();
    }
    assert!(!s.commit(again).await.unwrap());
    assert!(s.action("act-2").await.unwrap().is_none());

    // The result with the run's finish; a stale run version refuses both.
    let mut done = a.clone();
    done.state = ActionState::Failed {
        error: "x".into(),
        at: t(1),
    };
    done.version = 2;
    let mut stale = r.clone();
    stale.version = 5;
    assert!(
        !s.commit(vec![
            RunWrite::UpdateAction {
                action: done.clone(),
                audits: vec![audit("action.failed")],
            },
            RunWrite::UpdateRun {
                run: stale,
                audits: vec![audit("run.finish")],
            },
        ])
        .await
        .unwrap()
    );
    assert_eq!(s.action("act-1").await.unwrap().unwrap(), a, "taken back");
    let mut finished = r.clone();
    finished.version = 2;
    finished.status = RunStatus::Failed;
    // A case change applied before is skipped, not refused.
    let tag = change(
        "k-tag",
        Change::Tag {
            tags: vec!["x".into()],
        },
    );
    assert!(
        s.apply_case_change(&tag, audit("case.change"))
            .await
            .unwrap()
    );
    assert!(
        s.commit(vec![
            RunWrite::CaseChange {
                change: tag,
                audits: vec![audit("case.change")],
            },
            RunWrite::UpdateAction {
                action: done.clone(),
                audits: vec![audit("action.failed")],
            },
            RunWrite::UpdateRun {
                run: finished.clone(),
                audits: vec![audit("run.step"), audit("run.finish")],
            },
        ])
        .await
        .unwrap()
    );
    assert_eq!(s.action("act-1").await.unwrap().unwrap(), done);
    assert_eq!(s.run("run-1").await.unwrap().unwrap(), finished);
    assert_eq!(
        audit_actions(&s).await,
        [
            "run.start",
            "action.request",
            "action.send",
            "case.change",
            "action.failed",
            "run.step",
            "run.finish"
        ]
    );
    s.flush().await.unwrap();
    assert!(matches!(
        verify_audit(&s).await.unwrap(),
        AuditVerdict::Intact { records: 7, .. }
    ));
}
