//! The response stage's durable state on SQLite: [`RunStore`] for [`SqliteStore`].
//!
//! Runs, actions and playbook versions are JSON documents (LZ4) with the columns ticks and
//! inboxes filter on. Every write that carries an [`AuditEntry`] appends it to the audit
//! chain in the same transaction, and updates are compare-and-set on `version` inside
//! `BEGIN IMMEDIATE`: the stored version must be one less than the written one, so an
//! approval racing a tick (or a second process) is applied once.
//!
//! Case changes a playbook makes go through the same columns and document fields as an
//! analyst's (`status`, `assignee`, `verdict`); tags and notes have their own columns, which
//! the case stage's rewrites keep (see `merge_annotations`).

use riposte_domain::Timestamp;
use riposte_respond::run::{AuditEntry, Change};
use riposte_respond::{ActionRecord, CaseChange, Playbook, RespondError, Run, RunStore, RunWrite};
use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::HashMap;

use crate::response_writer::{Job, Wrote, rs_err};
use crate::sqlite::{merge_annotations, now};
use crate::{SqliteStore, StoreError, compress_doc, decompress_doc};

fn err(e: impl Into<StoreError>) -> RespondError {
    RespondError::Store(e.into().to_string())
}

fn pack<T: Serialize>(what: &str, id: &str, v: &T) -> Result<Vec<u8>, RespondError> {
    let bytes = serde_json::to_vec(v)
        .map_err(|e| RespondError::Store(format!("{what} {id}: cannot serialise: {e}")))?;
    Ok(compress_doc(&bytes))
}

fn unpack<T: DeserializeOwned>(what: &str, doc: &[u8]) -> Result<T, RespondError> {
    let text = decompress_doc(doc).map_err(err)?;
    serde_json::from_str(&text)
        .map_err(|e| RespondError::Store(format!("a stored {what} does not read back: {e}")))
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// The `status` column's word for a run (its serde name).
fn run_status(run: &Run) -> String {
    serde_json::to_value(run.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn docs<T: DeserializeOwned>(
    store: &SqliteStore,
    what: &str,
    sql: &'static str,
    bind: Option<&str>,
) -> Result<Vec<T>, RespondError> {
    let mut q = sqlx::query(sql);
    if let Some(b) = bind {
        q = q.bind(b.to_string());
    }
    let rows = q.fetch_all(&store.readers).await.map_err(err)?;
    rows.iter()
        .map(|r| {
            let doc: Vec<u8> = r.try_get(0).map_err(err)?;
            unpack(what, &doc)
        })
        .collect()
}

impl RunStore for SqliteStore {
    async fn put_playbook(&self, playbook: &Playbook) -> Result<(), RespondError> {
        let doc = pack("playbook", &playbook.id, playbook)?;
        let mut w = self.writer.lock().await;
        sqlx::query(
            "INSERT OR IGNORE INTO playbook_versions (hash, id, version, created_ms, doc) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(playbook.hash.as_str())
        .bind(playbook.id.as_str())
        .bind(playbook.version.as_str())
        .bind(ms(now()))
        .bind(doc)
        .execute(&mut w.conn)
        .await
        .map_err(err)?;
        Ok(())
    }

    async fn playbook(&self, hash: &str) -> Result<Option<Playbook>, RespondError> {
        let doc: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT doc FROM playbook_versions WHERE hash = ?")
                .bind(hash.to_string())
                .fetch_optional(&self.readers)
                .await
                .map_err(err)?;
        doc.map(|d| unpack("playbook", &d)).transpose()
    }

    async fn insert_run(&self, run: &Run, audit: AuditEntry) -> Result<bool, RespondError> {
        let w = Prepared::new(RunWrite::InsertRun {
            run: run.clone(),
            audits: vec![audit],
        })?;
        self.response.submit(Job::One(Box::new(w))).await
    }

    async fn update_run(&self, run: &Run, audit: Option<AuditEntry>) -> Result<bool, RespondError> {
        let w = Prepared::new(RunWrite::UpdateRun {
            run: run.clone(),
            audits: audit.into_iter().collect(),
        })?;
        self.response.submit(Job::One(Box::new(w))).await
    }

    async fn run(&self, id: &str) -> Result<Option<Run>, RespondError> {
        let doc: Option<Vec<u8>> = sqlx::query_scalar("SELECT doc FROM runs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.readers)
            .await
            .map_err(err)?;
        doc.map(|d| unpack("run", &d)).transpose()
    }

    async fn open_runs(&self) -> Result<Vec<Run>, RespondError> {
        docs(
            self,
            "run",
            "SELECT doc FROM runs WHERE status IN ('running', 'waiting') ORDER BY created_ms, id",
            None,
        )
        .await
    }

    async fn open_runs_for_case(&self, case_id: &str) -> Result<Vec<Run>, RespondError> {
        docs(
            self,
            "run",
            "SELECT doc FROM runs WHERE case_id = ? AND status IN ('running', 'waiting') \
             ORDER BY created_ms, id",
            Some(case_id),
        )
        .await
    }

    async fn insert_action(
        &self,
        action: &ActionRecord,
        audit: AuditEntry,
    ) -> Result<bool, RespondError> {
        let w = Prepared::new(RunWrite::InsertAction {
            action: action.clone(),
            audits: vec![audit],
        })?;
        self.response.submit(Job::One(Box::new(w))).await
    }

    async fn update_action(
        &self,
        action: &ActionRecord,
        audit: AuditEntry,
    ) -> Result<bool, RespondError> {
        let w = Prepared::new(RunWrite::UpdateAction {
            action: action.clone(),
            audits: vec![audit],
        })?;
        self.response.submit(Job::One(Box::new(w))).await
    }

    async fn action(&self, id: &str) -> Result<Option<ActionRecord>, RespondError> {
        let doc: Option<Vec<u8>> = sqlx::query_scalar("SELECT doc FROM actions WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.readers)
            .await
            .map_err(err)?;
        doc.map(|d| unpack("action", &d)).transpose()
    }

    async fn actions_of_run(&self, run_id: &str) -> Result<Vec<ActionRecord>, RespondError> {
        docs(
            self,
            "action",
            "SELECT doc FROM actions WHERE run_id = ? ORDER BY created_ms, rowid",
            Some(run_id),
        )
        .await
    }

    async fn open_actions(&self) -> Result<Vec<ActionRecord>, RespondError> {
        docs(
            self,
            "action",
            "SELECT doc FROM actions WHERE open = 1 ORDER BY created_ms, rowid",
            None,
        )
        .await
    }

    async fn flush(&self) -> Result<(), RespondError> {
        self.sync_wal().await.map_err(err)
    }

    async fn record(&self, audit: AuditEntry) -> Result<(), RespondError> {
        self.response.submit(Job::Audit(audit)).await?;
        Ok(())
    }

    async fn apply_case_change(
        &self,
        change: &CaseChange,
        audit: AuditEntry,
    ) -> Result<bool, RespondError> {
        let w = Prepared::new(RunWrite::CaseChange {
            change: change.clone(),
            audits: vec![audit],
        })?;
        self.response.submit(Job::One(Box::new(w))).await
    }

    async fn commit(&self, writes: Vec<RunWrite>) -> Result<bool, RespondError> {
        let mut ws = writes
            .into_iter()
            .map(Prepared::new)
            .collect::<Result<Vec<_>, _>>()?;
        match ws.len() {
            0 => Ok(true),
            1 => match ws.pop() {
                Some(w) => self.response.submit(Job::One(Box::new(w))).await,
                None => Ok(true),
            },
            _ => self.response.submit(Job::All(ws)).await,
        }
    }
}

/// Applies `ws` all or none inside the writer's group transaction.
///
/// Without a savepoint: one makes SQLite copy every page the writes touch (32 KiB each) into
/// its journal, which a profile found to be a fifth of the process's instructions. The
/// writes after the first are judged before any is made (against the stored rows, and the
/// versions the writes before them leave), so the first one's own refusal is the only one
/// left, and it comes before anything is written.
pub(crate) fn apply_all(c: &Connection, ws: Vec<Prepared>) -> Result<Wrote, RespondError> {
    let mut versions: HashMap<(&'static str, String), u64> = HashMap::new();
    if let Some((table, id, v)) = ws.first().and_then(Prepared::row) {
        versions.insert((table, id), v);
    }
    for w in ws.iter().skip(1) {
        if !w.allowed(c, &mut versions)? {
            return Ok(Wrote::Nothing);
        }
    }
    let mut audits = Vec::new();
    for (i, w) in ws.into_iter().enumerate() {
        let skippable = matches!(w.write, RunWrite::CaseChange { .. });
        match w.apply(c)? {
            Wrote::Applied(a) => audits.extend(a),
            Wrote::Nothing if skippable => {}
            Wrote::Nothing if i == 0 => return Ok(Wrote::Nothing),
            Wrote::Nothing => {
                // Judged allowed under the write lock a moment ago: failing the group is
                // the only way left to keep this commit all or none.
                return Err(RespondError::Store(
                    "a write judged allowed was refused".into(),
                ));
            }
        }
    }
    Ok(Wrote::Applied(audits))
}

/// A [`RunWrite`] with its document packed (off the writer, on the caller's thread).
pub(crate) struct Prepared {
    write: RunWrite,
    doc: Vec<u8>,
}

impl Prepared {
    fn new(write: RunWrite) -> Result<Prepared, RespondError> {
        let doc = match &write {
            RunWrite::InsertRun { run, .. } | RunWrite::UpdateRun { run, .. } => {
                pack("run", &run.id, run)?
            }
            RunWrite::InsertAction { action, .. } | RunWrite::UpdateAction { action, .. } => {
                pack("action", &action.id, action)?
            }
            RunWrite::CaseChange { .. } => Vec::new(),
        };
        Ok(Prepared { write, doc })
    }

    /// The row this write leaves, with its version.
    fn row(&self) -> Option<(&'static str, String, u64)> {
        match &self.write {
            RunWrite::InsertRun { run, .. } | RunWrite::UpdateRun { run, .. } => {
                Some(("runs", run.id.clone(), run.version))
            }
            RunWrite::InsertAction { action, .. } | RunWrite::UpdateAction { action, .. } => {
                Some(("actions", action.id.clone(), action.version))
            }
            RunWrite::CaseChange { .. } => None,
        }
    }

    /// Whether this write would apply after the ones `versions` records (the rows they
    /// leave), then records its own. A case change always applies (or is skipped).
    fn allowed(
        &self,
        c: &Connection,
        versions: &mut HashMap<(&'static str, String), u64>,
    ) -> Result<bool, RespondError> {
        let Some((table, id, version)) = self.row() else {
            return Ok(true);
        };
        let key = (table, id);
        let stored = match versions.get(&key) {
            Some(v) => Some(*v),
            None => {
                let sql = if table == "runs" {
                    "SELECT version FROM runs WHERE id = ?1"
                } else {
                    "SELECT version FROM actions WHERE id = ?1"
                };
                let v: Option<i64> = c
                    .prepare_cached(sql)
                    .map_err(rs_err)?
                    .query_row([key.1.as_str()], |r| r.get(0))
                    .optional()
                    .map_err(rs_err)?;
                v.map(|v| v as u64)
            }
        };
        let insert = matches!(
            self.write,
            RunWrite::InsertRun { .. } | RunWrite::InsertAction { .. }
        );
        let ok = if insert {
            stored.is_none()
        } else {
            stored.is_some_and(|v| v + 1 == version)
        };
        versions.insert(key, version);
        Ok(ok)
    }

    /// Runs the write on the group's transaction; [`Wrote::Nothing`] when it is refused
    /// (and then it wrote nothing).
    pub(crate) fn apply(self, c: &Connection) -> Result<Wrote, RespondError> {
        let doc = self.doc;
        let exec = |sql: &str, params: &[&dyn ToSql]| -> Result<usize, RespondError> {
            c.prepare_cached(sql)
                .map_err(rs_err)?
                .execute(params)
                .map_err(rs_err)
        };
        let (n, audits) = match self.write {
            RunWrite::InsertRun { run, audits } => {
                let n = exec(
                    "INSERT OR IGNORE INTO runs (id, playbook_id, playbook_hash, case_id, status, \
                     wake_ms, version, created_ms, updated_ms, doc) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    rusqlite::params![
                        run.id,
                        run.playbook_id,
                        run.playbook_hash,
                        run.case_id,
                        run_status(&run),
                        run.wake_at.map(ms),
                        run.version as i64,
                        ms(run.created_at),
                        ms(run.updated_at),
                        doc,
                    ],
                )?;
                (n, audits)
            }
            RunWrite::UpdateRun { run, audits } => {
                let n = exec(
                    "UPDATE runs SET status = ?, case_id = ?, wake_ms = ?, version = ?, \
                     updated_ms = ?, doc = ? WHERE id = ? AND version = ?",
                    rusqlite::params![
                        run_status(&run),
                        run.case_id,
                        run.wake_at.map(ms),
                        run.version as i64,
                        ms(run.updated_at),
                        doc,
                        run.id,
                        run.version as i64 - 1,
                    ],
                )?;
                (n, audits)
            }
            RunWrite::InsertAction { action: a, audits } => {
                let n = exec(
                    "INSERT OR IGNORE INTO actions (id, run_id, case_id, connector, operation, \
                     class, state, open, expires_ms, version, created_ms, updated_ms, doc) \
                     VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    rusqlite::params![
                        a.id,
                        a.run_id,
                        a.case_id,
                        a.connector,
                        a.operation,
                        a.class.as_str(),
                        a.state.name(),
                        a.is_open(),
                        a.expires_at.map(ms),
                        a.version as i64,
                        ms(a.created_at),
                        ms(a.updated_at),
                        doc,
                    ],
                )?;
                (n, audits)
            }
            RunWrite::UpdateAction { action: a, audits } => {
                let n = exec(
                    "UPDATE actions SET class = ?, state = ?, open = ?, expires_ms = ?, \
                     version = ?, updated_ms = ?, doc = ? WHERE id = ? AND version = ?",
                    rusqlite::params![
                        a.class.as_str(),
                        a.state.name(),
                        a.is_open(),
                        a.expires_at.map(ms),
                        a.version as i64,
                        ms(a.updated_at),
                        doc,
                        a.id,
                        a.version as i64 - 1,
                    ],
                )?;
                (n, audits)
            }
            RunWrite::CaseChange { change, audits } => {
                let n = exec(
                    "INSERT OR IGNORE INTO case_changes_applied (key, case_id, applied_ms) \
                     VALUES (?, ?, ?)",
                    rusqlite::params![change.key, change.case_id, ms(now())],
                )?;
                if n == 0 {
                    return Ok(Wrote::Nothing);
                }
                let found = change_case(c, &change)?;
                let mut audits = audits;
                if !found {
                    for a in &mut audits {
                        if let Some(o) = a.detail.as_object_mut() {
                            o.insert("case_missing".into(), json!(true));
                        }
                    }
                }
                (n, audits)
            }
        };
        Ok(if n == 0 {
            Wrote::Nothing
        } else {
            Wrote::Applied(audits)
        })
    }
}

type ChangeRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<u8>,
);

/// Applies one change to the case row and its document; `false` when there is no such case.
fn change_case(c: &Connection, change: &CaseChange) -> Result<bool, RespondError> {
    let id = change.case_id.as_str();
    let row: Option<ChangeRow> = c
        .prepare_cached(
            "SELECT status, assignee, verdict, tags, notes, doc FROM cases WHERE id = ?1",
        )
        .map_err(rs_err)?
        .query_row([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()
        .map_err(rs_err)?;
    let Some((status, assignee, verdict, tags, notes, doc)) = row else {
        return Ok(false);
    };
    let mut doc: Value = unpack("case", &doc)?;
    let (mut status, mut assignee, mut verdict) = (status, assignee, verdict);
    let mut tags: Vec<String> = tags
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let mut notes: Vec<Value> = notes
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    match &change.change {
        Change::Set { fields } => {
            for (k, v) in fields {
                match k.as_str() {
                    "status" => status = v.clone(),
                    "assignee" => assignee = Some(v.clone()),
                    "verdict" => verdict = Some(v.clone()),
                    // The playbook loader allows only these three.
                    other => {
                        return Err(RespondError::Store(format!(
                            "case {id}: a playbook cannot set `{other}`"
                        )));
                    }
                }
            }
        }
        Change::Assign { to } => assignee = Some(to.clone()),
        Change::Tag { tags: new } => {
            for t in new {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
        }
        Change::Note { text } => notes.push(json!({
            "text": text,
            "by": format!("run:{}", change.run_id),
            "step": change.step_id,
            "at": now(),
        })),
    }
    let tags_text = serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into());
    let notes_text = serde_json::to_string(&notes).unwrap_or_else(|_| "[]".into());
    if let Some(o) = doc.as_object_mut() {
        o.insert("status".into(), json!(status));
        o.insert("assignee".into(), json!(assignee));
        o.insert("verdict".into(), json!(verdict));
    }
    merge_annotations(&mut doc, Some(&tags_text), Some(&notes_text));
    let packed = compress_doc(&serde_json::to_vec(&doc).unwrap_or_default());
    c.prepare_cached(
        "UPDATE cases SET status = ?, assignee = ?, verdict = ?, tags = ?, notes = ?, \
         updated_ms = ?, doc = ? WHERE id = ?",
    )
    .map_err(rs_err)?
    .execute(rusqlite::params![
        status,
        assignee,
        verdict,
        tags_text,
        notes_text,
        ms(now()),
        packed,
        id
    ])
    .map_err(rs_err)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Durability;
    use riposte_respond::RunStatus;
    use riposte_respond::playbook::TriggerKind;
    use std::sync::atomic::Ordering;

    fn run(id: &str) -> Run {
        let t = Timestamp::from_second(1_700_000_000).unwrap_or_default();
        Run {
            id: id.into(),
            playbook_id: "p".into(),
            playbook_version: "1".into(),
            playbook_hash: "h".into(),
            trigger: TriggerKind::AlertReceived,
            event_id: id.into(),
            case_id: None,
            requested_by: "playbook:p".into(),
            case: Value::Null,
            alert: Value::Null,
            pointer: 0,
            status: RunStatus::Running,
            wake_at: None,
            step_started_at: None,
            outputs: Default::default(),
            error: None,
            version: 1,
            created_at: t,
            updated_at: t,
        }
    }

    fn entry() -> AuditEntry {
        AuditEntry {
            actor: "t".into(),
            action: "run.start".into(),
            detail: json!({}),
        }
    }

    async fn synchronous(s: &SqliteStore) -> i64 {
        let mut w = s.writer.lock().await;
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut w.conn)
            .await
            .unwrap()
    }

    /// Response writes commit without a sync of their own and leave the writer as durable
    /// as before for everyone else; a flush syncs them all at once, and only when there is
    /// something new to sync.
    #[tokio::test]
    async fn response_writes_are_synced_by_flush_and_leave_the_writer_full() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path(), Durability::Full)
            .await
            .unwrap();
        assert_eq!(synchronous(&s).await, 2, "FULL");
        for i in 0..3 {
            assert!(s.insert_run(&run(&format!("r{i}")), entry()).await.unwrap());
        }
        assert!(!s.insert_run(&run("r0"), entry()).await.unwrap(), "seen");
        assert_eq!(
            synchronous(&s).await,
            2,
            "FULL again after the response writes"
        );
        assert_eq!(
            s.wal_sync.committed.load(Ordering::Acquire),
            3,
            "a refused insert commits nothing"
        );
        assert_eq!(s.wal_sync.synced().await, 0);
        s.flush().await.unwrap();
        assert_eq!(s.wal_sync.synced().await, 3);
        s.flush().await.unwrap();
        assert_eq!(s.wal_sync.synced().await, 3);
        assert!(s.run("r2").await.unwrap().is_some());

        // NORMAL: nothing is synced by hand, the writer stays NORMAL.
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path(), Durability::Normal)
            .await
            .unwrap();
        assert!(s.insert_run(&run("r0"), entry()).await.unwrap());
        s.flush().await.unwrap();
        assert_eq!(s.wal_sync.synced().await, 0);
        assert_eq!(synchronous(&s).await, 1, "NORMAL");
    }

    /// A new database gets the page size it is opened with; an existing one keeps its own.
    #[tokio::test]
    async fn page_size_is_chosen_at_creation_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path(), Durability::Full)
            .await
            .unwrap();
        assert_eq!(s.page_size().await.unwrap(), crate::SERVER_PAGE_SIZE);
        s.close().await;
        let bulk = tempfile::tempdir().unwrap();
        let s =
            SqliteStore::open_with_page_size(bulk.path(), Durability::Full, crate::BULK_PAGE_SIZE)
                .await
                .unwrap();
        assert_eq!(s.page_size().await.unwrap(), crate::BULK_PAGE_SIZE);
        assert!(s.insert_run(&run("r0"), entry()).await.unwrap());
        s.close().await;
        let s = SqliteStore::open(bulk.path(), Durability::Full)
            .await
            .unwrap();
        assert_eq!(s.page_size().await.unwrap(), crate::BULK_PAGE_SIZE, "kept");
        assert!(s.run("r0").await.unwrap().is_some());
    }

    /// The response writer's thread and the sqlx writer append to one audit chain at the
    /// same time: every record lands once, in one unbroken chain.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_writers_append_to_one_unbroken_chain() {
        use crate::Store;
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(
            SqliteStore::open(dir.path(), Durability::Full)
                .await
                .unwrap(),
        );
        let mut set = tokio::task::JoinSet::new();
        for i in 0..150 {
            let s = s.clone();
            set.spawn(async move {
                if i % 3 == 0 {
                    s.audit("t", "token.create", json!({"n": i}))
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                } else {
                    s.insert_run(&run(&format!("r{i}")), entry())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            });
        }
        while let Some(j) = set.join_next().await {
            j.unwrap().unwrap();
        }
        let verdict = crate::verify_audit(&*s).await.unwrap();
        assert!(
            matches!(verdict, crate::AuditVerdict::Intact { records: 150, .. }),
            "{verdict:?}"
        );
        let s = std::sync::Arc::into_inner(s).unwrap();
        s.close().await;
        // Everything the writer thread committed is there after a reopen.
        let s = SqliteStore::open(dir.path(), Durability::Full)
            .await
            .unwrap();
        assert!(s.run("r149").await.unwrap().is_some());
        assert!(s.run("r1").await.unwrap().is_some());
    }

    /// Concurrent writes share commits; each is applied or refused on its own, and the audit
    /// chain stays whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_committed_together_each_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(
            SqliteStore::open(dir.path(), Durability::Full)
                .await
                .unwrap(),
        );
        let mut set = tokio::task::JoinSet::new();
        for i in 0..200 {
            let s = s.clone();
            // Every id twice: one insert applies, the other is refused.
            set.spawn(async move {
                (
                    i % 100,
                    s.insert_run(&run(&format!("r{}", i % 100)), entry()).await,
                )
            });
        }
        let mut applied = std::collections::BTreeMap::new();
        while let Some(j) = set.join_next().await {
            let (id, r) = j.unwrap();
            *applied.entry(id).or_insert(0) += u32::from(r.unwrap());
        }
        assert_eq!(applied.len(), 100);
        assert!(applied.values().all(|n| *n == 1), "{applied:?}");
        assert_eq!(s.wal_sync.committed.load(Ordering::Acquire), 100);
        s.flush().await.unwrap();
        let verdict = crate::verify_audit(&*s).await.unwrap();
        assert!(
            matches!(verdict, crate::AuditVerdict::Intact { records: 100, .. }),
            "{verdict:?}"
        );
    }
}
