//! The embedded default: one SQLite database in WAL mode under the data directory.
//!
//! One writer connection behind a mutex (SQLite has one writer at a time anyway) holds the
//! audit chain's head; a small pool of read-only connections serves the API concurrently.
//! A checkpointer task on its own connection copies the WAL into the database in the
//! background, so no commit (and no acknowledgement) waits for a checkpoint.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use riposte_domain::audit::{AuditBody, AuditRecord, GENESIS};
use riposte_domain::{RecordKind, Timestamp};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection, Row};
use std::collections::HashMap;
use tokio::sync::Mutex;

use crate::response_writer::ResponseWriter;
use crate::{
    CasePatch, CaseQuery, DeadLetter, IngestBatch, IngestOutcome, ListQuery, Page, Store,
    StoreError, StoredCase, StoredRecord, TokenInfo, compress_doc, decompress_doc,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a commit survives power loss. The default.
    Full,
    /// `synchronous=NORMAL`: a commit survives a crash or kill of riposte, not of the machine.
    Normal,
}

/// Rows per multi-row INSERT: fewer round trips to SQLite, within its variable limit.
const CHUNK: usize = 256;

/// SQLite's page size for a database `riposte serve` (and every command but replay) creates;
/// fixed at creation, an existing database keeps its own. Small pages, because every commit
/// writes each page it touches whole into the WAL: with 32 KiB pages a response-stage alert
/// (two small commits) wrote 216 KB, and at 1,000 alerts/s the copying and checksumming of
/// those pages set the response tail (p99 23 – 63 ms against 4.8 – 8.1 ms with 4 KiB pages,
/// same build, BENCHMARKS.md "Response").
pub const SERVER_PAGE_SIZE: u32 = 4 * 1024;

/// The page size for a database created by a bulk load (`riposte replay`): large pages keep
/// the id index shallow and cut write calls, 56,800 records/s against 42,300 with 4 KiB
/// pages (BENCHMARKS.md "Replay"). A server started on such a database says so at start.
pub const BULK_PAGE_SIZE: u32 = 32 * 1024;

/// The writing connection. The audit head is read inside each write transaction (begun
/// IMMEDIATE, so it holds SQLite's write lock), because `riposte token …` and other commands
/// may append to the same chain from another process while the server runs.
pub(crate) struct Writer {
    pub(crate) conn: SqliteConnection,
}

pub struct SqliteStore {
    /// Shared with the response writer's thread, which holds it for each of its groups.
    pub(crate) writer: Arc<Mutex<Writer>>,
    /// The response stage's group commits on a thread of their own (`response_writer.rs`),
    /// `synchronous=NORMAL` for good: they are synced by `flush`.
    pub(crate) response: ResponseWriter,
    pub(crate) readers: SqlitePool,
    path: PathBuf,
    checkpointer: Option<tokio::task::JoinHandle<()>>,
    base: SqliteConnectOptions,
    pub(crate) durability: Durability,
    pub(crate) wal_sync: WalSync,
}

/// Group sync of the WAL for writes committed without one (the response stage's, see
/// `runs.rs`): a flush syncs the WAL file once for every commit counted before it, and
/// flushes that arrive while a sync runs share the next one.
#[derive(Default)]
pub(crate) struct WalSync {
    /// Commits made without a sync of their own, counted as they return.
    pub(crate) committed: Arc<std::sync::atomic::AtomicU64>,
    /// The count the last completed sync covered.
    synced: Mutex<u64>,
}

#[cfg(test)]
impl WalSync {
    pub(crate) async fn synced(&self) -> u64 {
        *self.synced.lock().await
    }
}

impl SqliteStore {
    /// Makes every commit counted in `wal_sync` survive power loss: an fsync of the WAL file,
    /// shared by every flush waiting at the same time. SQLite appends each commit to the WAL
    /// before it returns, and an fsync of the file covers every write made to it, so this is
    /// the sync `synchronous=FULL` would have made at each of those commits.
    pub(crate) async fn sync_wal(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.durability == Durability::Normal {
            return Ok(());
        }
        let want = self.wal_sync.committed.load(Ordering::Acquire);
        let mut synced = self.wal_sync.synced.lock().await;
        if *synced >= want {
            return Ok(());
        }
        let upto = self.wal_sync.committed.load(Ordering::Acquire);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let shown = wal.display().to_string();
        tokio::task::spawn_blocking(move || match std::fs::File::open(&wal) {
            Ok(f) => f.sync_data(),
            // No WAL: everything was checkpointed into the database, which was synced.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        })
        .await
        .map_err(|e| StoreError::Io {
            what: format!("syncing {shown}"),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(|source| StoreError::Io {
            what: format!("syncing {shown}"),
            source,
        })?;
        *synced = upto;
        Ok(())
    }
}

/// A case's analyst-set columns, tags and notes, as the case stage's upsert keeps them.
type KeptRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Puts a case's tags and notes (JSON arrays from their columns) into its document.
pub(crate) fn merge_annotations(
    doc: &mut serde_json::Value,
    tags: Option<&str>,
    notes: Option<&str>,
) {
    let Some(o) = doc.as_object_mut() else {
        return;
    };
    for (key, text) in [("tags", tags), ("notes", notes)] {
        let v = text
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .unwrap_or_else(|| json!([]));
        o.insert(key.into(), v);
    }
}

/// A case's analyst-set columns and its document.
type CaseRow = (String, Option<String>, Option<String>, Vec<u8>);

/// How often the checkpointer copies committed WAL frames into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Copies the WAL into the database, PASSIVE (never blocking the writer or readers), on a
/// timer. The writer's own automatic checkpoints are off: done inside a commit they held the
/// acknowledgement of the batch that happened to cross the threshold for tens of ms.
async fn checkpoint_loop(mut conn: SqliteConnection) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
        }
    }
}

pub(crate) fn now() -> Timestamp {
    Timestamp::now()
}

impl SqliteStore {
    /// Opens (creating if needed) `DIR/riposte.db` and brings its schema up to date.
    pub async fn open(data_dir: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with_page_size(data_dir, durability, SERVER_PAGE_SIZE).await
    }

    /// [`SqliteStore::open`], creating a new database with `page_size` pages (a power of two
    /// from 512 to 65,536; see [`SERVER_PAGE_SIZE`] and [`BULK_PAGE_SIZE`]). An existing
    /// database keeps the page size it was created with.
    pub async fn open_with_page_size(
        data_dir: &Path,
        durability: Durability,
        page_size: u32,
    ) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let path = data_dir.join("riposte.db");
        let sync = match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let base = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&path)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let mut conn = SqliteConnection::connect_with(
            &base
                .clone()
                .create_if_missing(true)
                .synchronous(sync)
                .page_size(page_size)
                .pragma("cache_size", "-65536")
                .pragma("temp_store", "memory"),
        )
        .await?;
        MIGRATOR.run(&mut conn).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.clone().read_only(true))
            .await?;
        let writer = Arc::new(Mutex::new(Writer { conn }));
        let wal_sync = WalSync::default();
        let response = ResponseWriter::start(&path, writer.clone(), wal_sync.committed.clone())?;
        Ok(SqliteStore {
            writer,
            response,
            readers,
            path,
            checkpointer: None,
            base: base.synchronous(sync),
            durability,
            wal_sync,
        })
    }

    /// Moves WAL checkpoints off the commit path onto a background task (see
    /// [`checkpoint_loop`]): for the server, where a commit is an acknowledgement someone
    /// waits for. Bulk work (replay) keeps SQLite's inline checkpoints, which cost less CPU.
    pub async fn checkpoint_in_background(&mut self) -> Result<(), StoreError> {
        if self.checkpointer.is_some() {
            return Ok(());
        }
        let conn = SqliteConnection::connect_with(&self.base).await?;
        {
            let mut w = self.writer.lock().await;
            sqlx::query("PRAGMA wal_autocheckpoint = 0")
                .execute(&mut w.conn)
                .await?;
        }
        self.response
            .no_auto_checkpoint()
            .await
            .map_err(|e| StoreError::Io {
                what: "turning off the response writer's inline checkpoints".into(),
                source: std::io::Error::other(e.to_string()),
            })?;
        self.checkpointer = Some(tokio::spawn(checkpoint_loop(conn)));
        Ok(())
    }

    /// The database's page size, as it was created.
    pub async fn page_size(&self) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&self.readers)
            .await?;
        Ok(n as u32)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the connections, checkpointing the WAL.
    pub async fn close(self) {
        if let Some(c) = self.checkpointer {
            c.abort();
            let _ = c.await;
        }
        self.readers.close().await;
        // The response writer first: it answers what it holds, then lets go of the writer.
        self.response.stop().await;
        let Ok(w) = Arc::try_unwrap(self.writer) else {
            tracing::warn!("the writer is still shared at close; the next open replays the WAL");
            return;
        };
        let mut w = w.into_inner();
        // Closing checkpoints anyway; a failure here only leaves the WAL for the next open.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut w.conn)
            .await
        {
            tracing::warn!(error = %e, "final WAL checkpoint failed; the next open replays it");
        }
        if let Err(e) = w.conn.close().await {
            tracing::warn!(error = %e, "closing the database");
        }
    }
}

/// The chain's head as stored, read inside the write transaction.
pub(crate) async fn read_head(conn: &mut SqliteConnection) -> Result<(u64, [u8; 32]), StoreError> {
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE one = 1")
        .fetch_optional(&mut *conn)
        .await?;
    match head {
        Some(row) => {
            let seq: i64 = row.try_get(0)?;
            let hash: Vec<u8> = row.try_get(1)?;
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt("the audit head hash is not 32 bytes".into()))?;
            Ok((seq as u64, hash))
        }
        None => Ok((0, GENESIS)),
    }
}

pub(crate) const BEGIN: &str = "BEGIN IMMEDIATE";

/// Seals and inserts one audit record inside `tx`; returns the new head.
pub(crate) async fn append_audit(
    conn: &mut SqliteConnection,
    head: (u64, [u8; 32]),
    actor: &str,
    action: &str,
    detail: serde_json::Value,
) -> Result<(u64, [u8; 32]), StoreError> {
    let seq = head.0 + 1;
    let record = AuditRecord::seal(
        &AuditBody {
            seq,
            at: now(),
            actor: actor.to_string(),
            action: action.to_string(),
            detail,
        },
        head.1,
    );
    sqlx::query("INSERT INTO audit (seq, prev, hash, body) VALUES (?, ?, ?, ?)")
        .bind(seq as i64)
        .bind(record.prev.to_vec())
        .bind(record.hash.to_vec())
        .bind(record.body)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO audit_head (one, seq, hash) VALUES (1, ?, ?) \
         ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .bind(seq as i64)
    .bind(record.hash.to_vec())
    .execute(&mut *conn)
    .await?;
    Ok((seq, record.hash))
}

async fn insert_records(
    conn: &mut SqliteConnection,
    kind: RecordKind,
    records: Vec<&StoredRecord>,
    received_ms: i64,
    new_ids: &mut Vec<String>,
) -> Result<u64, StoreError> {
    let mut inserted = 0;
    for chunk in records.chunks(CHUNK) {
        let (head, row) = match kind {
            RecordKind::Alert => (
                "INSERT OR IGNORE INTO alerts (id, decoder, time_ms, severity, received_ms, doc) VALUES ",
                "(?,?,?,?,?,?)",
            ),
            RecordKind::Event => (
                "INSERT OR IGNORE INTO events (id, decoder, time_ms, received_ms, doc) VALUES ",
                "(?,?,?,?,?)",
            ),
        };
        let mut sql = String::with_capacity(head.len() + chunk.len() * (row.len() + 1) + 14);
        sql.push_str(head);
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(row);
        }
        // The alerts stored now (not duplicates) go on to the case stage: it must see each
        // alert once.
        if kind == RecordKind::Alert {
            sql.push_str(" RETURNING id");
        }
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(record_key(&r.id))
                .bind(r.decoder.as_str())
                .bind(r.time_ms);
            if kind == RecordKind::Alert {
                q = q.bind(r.severity);
            }
            q = q.bind(received_ms).bind(r.doc.as_slice());
        }
        if kind == RecordKind::Alert {
            let keys: Vec<Vec<u8>> = q
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?;
            inserted += keys.len() as u64;
            new_ids.extend(keys.iter().map(hex::encode));
        } else {
            inserted += q.execute(&mut *conn).await?.rows_affected();
        }
    }
    Ok(inserted)
}

/// A record id as the key the tables hold: its 16 bytes rather than its 32 hex digits, which
/// halves the id index and, with it, what each commit rewrites. Text that is not an id
/// (a look-up of something else) is kept as it is and finds nothing.
fn record_key(id: &str) -> Vec<u8> {
    hex::decode(id).unwrap_or_else(|_| id.as_bytes().to_vec())
}

/// One stored document by its key, decompressed.
async fn doc_by_id<K>(
    pool: &SqlitePool,
    sql: &'static str,
    key: K,
) -> Result<Option<String>, StoreError>
where
    K: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + 'static,
{
    let doc: Option<Vec<u8>> = sqlx::query_scalar(sql)
        .bind(key)
        .fetch_optional(pool)
        .await?;
    doc.map(|d| decompress_doc(&d)).transpose()
}

/// Cases per statement in `upsert_cases` (10 parameters each, under SQLite's 32,766).
const CASE_CHUNK: usize = 1_000;
/// Case entities per statement (3 parameters each).
const ENTITY_CHUNK: usize = 10_000;

/// Appends `n` copies of `one`, comma-separated.
fn push_params(sql: &mut String, n: usize, one: &str) {
    sql.reserve(n * (one.len() + 1));
    for i in 0..n {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(one);
    }
}

/// A case document with the analyst's fields (status, assignee, verdict) and the tags and
/// notes playbooks added, as stored,
/// serialised without copying the document.
struct WithAnalyst<'a> {
    doc: &'a serde_json::Value,
    status: &'a str,
    assignee: Option<&'a str>,
    verdict: Option<&'a str>,
    tags: serde_json::Value,
    notes: serde_json::Value,
}

/// A tags or notes column (a JSON array) as a value; `[]` when empty or unreadable.
fn annotation(text: Option<&str>) -> serde_json::Value {
    text.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .unwrap_or_else(|| json!([]))
}

impl serde::Serialize for WithAnalyst<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fields = self.doc.as_object();
        let mut m = s.serialize_map(None)?;
        for (k, v) in fields.into_iter().flatten() {
            if !matches!(
                k.as_str(),
                "status" | "assignee" | "verdict" | "tags" | "notes"
            ) {
                m.serialize_entry(k, v)?;
            }
        }
        m.serialize_entry("status", self.status)?;
        m.serialize_entry("assignee", &self.assignee)?;
        m.serialize_entry("verdict", &self.verdict)?;
        m.serialize_entry("tags", &self.tags)?;
        m.serialize_entry("notes", &self.notes)?;
        m.end()
    }
}

/// SHA-256 over the ids of a batch's records, in order: ties the audit record to the data.
fn ids_digest(records: &[StoredRecord]) -> String {
    let mut h = Sha256::new();
    for r in records {
        h.update(r.id.as_bytes());
        h.update([b'\n']);
    }
    hex::encode(h.finalize())
}

impl Store for SqliteStore {
    async fn ingest(&self, batch: IngestBatch) -> Result<IngestOutcome, StoreError> {
        let received_ms = batch.received_at.as_millisecond();
        let digest = ids_digest(&batch.records);
        let mut w = self.writer.lock().await;
        let mut tx = w.conn.begin_with(BEGIN).await?;
        let head = read_head(&mut tx).await?;
        let alerts: Vec<&StoredRecord> = batch
            .records
            .iter()
            .filter(|r| r.kind == RecordKind::Alert)
            .collect();
        let events: Vec<&StoredRecord> = batch
            .records
            .iter()
            .filter(|r| r.kind == RecordKind::Event)
            .collect();
        let mut new_alerts = Vec::new();
        let mut accepted = insert_records(
            &mut tx,
            RecordKind::Alert,
            alerts,
            received_ms,
            &mut new_alerts,
        )
        .await?;
        accepted += insert_records(
            &mut tx,
            RecordKind::Event,
            events,
            received_ms,
            &mut new_alerts,
        )
        .await?;
        let mut dead_letter_ids = Vec::with_capacity(batch.rejects.len());
        for d in &batch.rejects {
            let res = sqlx::query(
                "INSERT INTO dead_letters (decoder, record_index, field, reason, raw, origin, received_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(d.decoder.clone())
            .bind(d.index as i64)
            .bind(d.field.clone())
            .bind(d.reason.clone())
            .bind(d.raw.clone())
            .bind(serde_json::to_string(&d.origin).unwrap_or_default())
            .bind(received_ms)
            .execute(&mut *tx)
            .await?;
            dead_letter_ids.push(res.last_insert_rowid());
        }
        let duplicates = batch.records.len() as u64 - accepted;
        let rejected = batch.rejects.len() as u64;
        let detail = json!({
            "batch": batch.batch_id,
            "decoder": batch.decoder,
            "source": batch.source,
            "received": batch.received,
            "accepted": accepted,
            "duplicates": duplicates,
            "rejected": rejected,
            "dead_letters": dead_letter_ids,
            "records_sha256": digest,
        });
        let new_head = append_audit(&mut tx, head, &batch.actor, "ingest.batch", detail).await?;
        tx.commit().await?;
        Ok(IngestOutcome {
            accepted,
            duplicates,
            rejected,
            dead_letter_ids,
            audit_seq: new_head.0,
            new_alerts,
        })
    }

    async fn alerts_received_since(
        &self,
        received_ms: i64,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        received_since(&self.readers, "alerts", received_ms, cursor, limit).await
    }

    async fn events_received_since(
        &self,
        received_ms: i64,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        received_since(&self.readers, "events", received_ms, cursor, limit).await
    }

    async fn alert(&self, id: &str) -> Result<Option<String>, StoreError> {
        doc_by_id(
            &self.readers,
            "SELECT doc FROM alerts WHERE id = ?",
            record_key(id),
        )
        .await
    }

    async fn alerts(&self, q: &ListQuery) -> Result<Page, StoreError> {
        list(&self.readers, "alerts", q).await
    }

    async fn event(&self, id: &str) -> Result<Option<String>, StoreError> {
        doc_by_id(
            &self.readers,
            "SELECT doc FROM events WHERE id = ?",
            record_key(id),
        )
        .await
    }

    async fn events(&self, q: &ListQuery) -> Result<Page, StoreError> {
        list(&self.readers, "events", q).await
    }

    async fn counts(&self) -> Result<(u64, u64), StoreError> {
        let a: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts")
            .fetch_one(&self.readers)
            .await?;
        let e: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.readers)
            .await?;
        Ok((a as u64, e as u64))
    }

    async fn dead_letters(&self, q: &ListQuery) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, decoder, record_index, field, reason, raw, origin, received_ms, reingested_as \
             FROM dead_letters WHERE id < ? AND (? IS NULL OR decoder = ?) ORDER BY id DESC LIMIT ?",
        )
        .bind(q.cursor.unwrap_or(i64::MAX))
        .bind(q.decoder.clone())
        .bind(q.decoder.clone())
        .bind(q.limit.clamp(1, 1000) as i64)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(dead_letter_row).collect()
    }

    async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError> {
        let row = sqlx::query(
            "SELECT id, decoder, record_index, field, reason, raw, origin, received_ms, reingested_as \
             FROM dead_letters WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.readers)
        .await?;
        row.as_ref().map(dead_letter_row).transpose()
    }

    async fn upsert_cases(
        &self,
        cases: &[StoredCase],
        retired: Vec<(String, String)>,
        actor: &str,
    ) -> Result<(), StoreError> {
        if cases.is_empty() && retired.is_empty() {
            return Ok(());
        }
        let now_ms = now().as_millisecond();
        let mut w = self.writer.lock().await;
        let mut tx = w.conn.begin_with(BEGIN).await?;
        let head = read_head(&mut tx).await?;
        let mut written = Vec::with_capacity(cases.len());
        // In chunks, each a few statements (one round trip to SQLite's thread each), not a
        // few statements per case.
        for chunk in cases.chunks(CASE_CHUNK) {
            // What an analyst set is kept: the case stage does not know it.
            let mut sql = String::from(
                "SELECT id, status, assignee, verdict, tags, notes FROM cases WHERE id IN (",
            );
            push_params(&mut sql, chunk.len(), "?");
            sql.push(')');
            let mut q = sqlx::query_as::<
                _,
                (
                    String,
                    String,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                ),
            >(AssertSqlSafe(sql));
            for c in chunk {
                q = q.bind(c.id.as_str());
            }
            let kept: HashMap<String, KeptRow> = q
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(id, s, a, v, t, n)| (id, (s, a, v, t, n)))
                .collect();
            let mut rows = Vec::with_capacity(chunk.len());
            for c in chunk {
                let (status, assignee, verdict) = match kept.get(&c.id) {
                    // A case the stage retired and formed again (a late alert re-formed the
                    // window) is open again; what an analyst set stays.
                    Some((status, assignee, verdict, _, _))
                        if status == "merged" || status == "withdrawn" =>
                    {
                        (c.status.clone(), assignee.clone(), verdict.clone())
                    }
                    Some((status, assignee, verdict, _, _)) => {
                        (status.clone(), assignee.clone(), verdict.clone())
                    }
                    None => (c.status.clone(), None, None),
                };
                // Tags and notes live in their own columns (playbooks add them); the stage's
                // document does not carry them, so they are merged in on every write.
                let (tags, notes) = kept
                    .get(&c.id)
                    .map_or((None, None), |k| (k.3.as_deref(), k.4.as_deref()));
                let doc = serde_json::to_vec(&WithAnalyst {
                    doc: &c.doc,
                    status: &status,
                    assignee: assignee.as_deref(),
                    verdict: verdict.as_deref(),
                    tags: annotation(tags),
                    notes: annotation(notes),
                })
                .map_err(|e| StoreError::Corrupt(format!("case {}: {e}", c.id)))?;
                rows.push((status, assignee, verdict, compress_doc(&doc)));
                written.push(json!({ "case": c.id, "tier": c.tier, "risk": c.risk }));
            }
            let mut sql = String::from(
                "INSERT INTO cases (id, tier, status, risk, first_ms, last_ms, assignee, verdict, updated_ms, doc) VALUES ",
            );
            push_params(&mut sql, chunk.len(), "(?,?,?,?,?,?,?,?,?,?)");
            sql.push_str(
                " ON CONFLICT (id) DO UPDATE SET tier = excluded.tier, status = excluded.status, \
                 risk = excluded.risk, first_ms = excluded.first_ms, last_ms = excluded.last_ms, \
                 assignee = excluded.assignee, verdict = excluded.verdict, \
                 updated_ms = excluded.updated_ms, doc = excluded.doc",
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (c, (status, assignee, verdict, packed)) in chunk.iter().zip(rows) {
                q = q
                    .bind(c.id.as_str())
                    .bind(c.tier.as_str())
                    .bind(status)
                    .bind(c.risk)
                    .bind(c.first_ms)
                    .bind(c.last_ms)
                    .bind(assignee)
                    .bind(verdict)
                    .bind(now_ms)
                    .bind(packed);
            }
            q.execute(&mut *tx).await?;
            let entities: Vec<(&str, &str, &str)> = chunk
                .iter()
                .flat_map(|c| {
                    c.entities
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str(), c.id.as_str()))
                })
                .collect();
            for part in entities.chunks(ENTITY_CHUNK) {
                let mut sql = String::from(
                    "INSERT OR IGNORE INTO case_entities (kind, value, case_id) VALUES ",
                );
                push_params(&mut sql, part.len(), "(?,?,?)");
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for (k, v, id) in part {
                    q = q.bind(*k).bind(*v).bind(*id);
                }
                q.execute(&mut *tx).await?;
            }
        }
        for (id, into) in &retired {
            // Absorbed by a merge, or withdrawn (`into` empty) when a late alert re-formed
            // the window and its alerts are in other cases now.
            let status = if into.is_empty() {
                "withdrawn"
            } else {
                "merged"
            };
            // The document says so too: it is what the API shows.
            let doc: Option<Vec<u8>> = sqlx::query_scalar("SELECT doc FROM cases WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let Some(doc) = doc else { continue };
            let mut doc: serde_json::Value = serde_json::from_str(&decompress_doc(&doc)?)
                .map_err(|e| StoreError::Corrupt(format!("case {id}: {e}")))?;
            if let Some(o) = doc.as_object_mut() {
                o.insert("status".into(), json!(status));
                if !into.is_empty() {
                    o.insert("merged_into".into(), json!(into));
                }
            }
            let packed = compress_doc(&serde_json::to_vec(&doc).unwrap_or_default());
            sqlx::query("UPDATE cases SET status = ?, updated_ms = ?, doc = ? WHERE id = ?")
                .bind(status)
                .bind(now_ms)
                .bind(packed)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            if into.is_empty() {
                written.push(json!({ "case": id, "withdrawn": true }));
            } else {
                written.push(json!({ "case": id, "merged_into": into }));
            }
        }
        append_audit(
            &mut tx,
            head,
            actor,
            "case.upsert",
            json!({ "cases": written }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn cases(&self, q: &CaseQuery) -> Result<Vec<String>, StoreError> {
        let (ek, ev) = q.entity.clone().unzip();
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT doc FROM cases WHERE (? IS NULL OR tier = ?) AND (? IS NULL OR status = ?) \
             AND (? IS NULL OR last_ms >= ?) AND (? IS NULL OR first_ms < ?) \
             AND (? IS NULL OR id IN (SELECT case_id FROM case_entities WHERE kind = ? AND value = ?)) \
             ORDER BY tier = 'validated' DESC, risk DESC, id LIMIT ?",
        )
        .bind(q.tier.as_deref())
        .bind(q.tier.as_deref())
        .bind(q.status.as_deref())
        .bind(q.status.as_deref())
        .bind(q.since_ms)
        .bind(q.since_ms)
        .bind(q.until_ms)
        .bind(q.until_ms)
        .bind(ek.as_deref())
        .bind(ek.as_deref())
        .bind(ev.as_deref())
        .bind(i64::from(q.limit.clamp(1, 1000)))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(|d| decompress_doc(d)).collect()
    }

    async fn case(&self, id: &str) -> Result<Option<String>, StoreError> {
        doc_by_id(
            &self.readers,
            "SELECT doc FROM cases WHERE id = ?",
            id.to_string(),
        )
        .await
    }

    async fn update_case(
        &self,
        id: &str,
        patch: &CasePatch,
        actor: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut w = self.writer.lock().await;
        let mut tx = w.conn.begin_with(BEGIN).await?;
        let head = read_head(&mut tx).await?;
        let row: Option<CaseRow> =
            sqlx::query_as("SELECT status, assignee, verdict, doc FROM cases WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((status, assignee, verdict, doc)) = row else {
            return Ok(None);
        };
        let before = json!({ "status": status, "assignee": assignee, "verdict": verdict });
        let status = patch.status.clone().unwrap_or(status);
        let assignee = patch.assignee.clone().or(assignee);
        let verdict = patch.verdict.clone().or(verdict);
        let after = json!({ "status": status, "assignee": assignee, "verdict": verdict });
        let mut doc: serde_json::Value = serde_json::from_str(&decompress_doc(&doc)?)
            .map_err(|e| StoreError::Corrupt(format!("case {id}: {e}")))?;
        if let (Some(o), Some(a)) = (doc.as_object_mut(), after.as_object()) {
            for (k, v) in a {
                o.insert(k.clone(), v.clone());
            }
        }
        let text = serde_json::to_string(&doc).unwrap_or_default();
        sqlx::query(
            "UPDATE cases SET status = ?, assignee = ?, verdict = ?, updated_ms = ?, doc = ? WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(assignee.as_deref())
        .bind(verdict.as_deref())
        .bind(now().as_millisecond())
        .bind(compress_doc(text.as_bytes()))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        append_audit(
            &mut tx,
            head,
            actor,
            "case.update",
            json!({ "case": id, "before": before, "after": after }),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(text))
    }

    async fn mark_reingested(
        &self,
        id: i64,
        record_id: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut w = self.writer.lock().await;
        let mut tx = w.conn.begin_with(BEGIN).await?;
        let head = read_head(&mut tx).await?;
        sqlx::query("UPDATE dead_letters SET reingested_ms = ?, reingested_as = ? WHERE id = ?")
            .bind(now().as_millisecond())
            .bind(record_id.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        append_audit(
            &mut tx,
            head,
            actor,
            "deadletter.reingest",
            json!({ "dead_letter": id, "record": record_id }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_token(
        &self,
        name: &str,
        role: &str,
        hash: [u8; 32],
        actor: &str,
    ) -> Result<i64, StoreError> {
        let mut w = self.writer.lock().await;
        let mut tx = w.conn.begin_with(BEGIN).await?;
        let head = read_head(&mut tx).await?;
        let res =
            sqlx::query("INSERT INTO tokens (name, role, hash, created_ms) VALUES (?, ?, ?, ?)")
                .bind(name.to_string())
                .bind(role.to_string())
                .bind(hash.to_vec())
                .bind(now().as_millisecond())
                .execute(&mut *tx)
                .await;
        let id = match res {
            Ok(r) => r.last_insert_rowid(),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(format!("a token named {name:?}")));
            }
            Err(e) => return Err(e.into()),
        };
        append_audit(
            &mut tx,
            head,
            actor,
            "token.create",
            json!({ "name": name, "role": role }),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn token_by_hash(&self, hash: [u8; 32]) -> Result<Option<(String, String)>, StoreError> {
        let row =
            sqlx::query("SELECT name, role FROM tokens WHERE hash = ? AND revoked_ms IS NULL")
                .bind(hash.to_vec())
                .fetch_optional(&self.readers)
                .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows =
            sqlx::query("SELECT id, name, role, created_ms, revoked_ms FROM tokens ORDER BY id")
                .fetch_all(&self.readers)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    role: r.try_get(2)?,
                    created_ms: r.try_get(3)?,
                    revoked: r.try_get::<Option<i64>, _>(4)?.is_some(),
                })
            })
            .collect()
    }

    async fn revoke_token(&self, name: &str, actor: &str) -> Result<bool, StoreError> {
        let mut w = self.writer.lock().await;
        let mut tx = w.conn.begin_with(BEGIN).await?;
        let head = read_head(&mut tx).await?;
        let n =
            sqlx::query("UPDATE tokens SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL")
                .bind(now().as_millisecond())
                .bind(name.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        append_audit(
            &mut tx,
            head,
            actor,
            "token.revoke",
            json!({ "name": name }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn edl_add(&self, list: &str, value: &str, actor: &str) -> Result<bool, StoreError> {
        let mut w = self.writer.lock().await;
        let mut tx = w.conn.begin_with(BEGIN).await?;
        let head = read_head(&mut tx).await?;
        let n = sqlx::query(
            "INSERT INTO edl_entries (list, value, added_ms) VALUES (?, ?, ?) \
             ON CONFLICT (list, value) DO NOTHING",
        )
        .bind(list.to_string())
        .bind(value.to_string())
        .bind(now().as_millisecond())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        append_audit(
            &mut tx,
            head,
            actor,
            "edl.add",
            json!({ "list": list, "value": value }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn edl_remove(&self, list: &str, value: &str, actor: &str) -> Result<bool, StoreError> {
        let mut w = self.writer.lock().await;
        let mut tx = w.conn.begin_with(BEGIN).await?;
        let head = read_head(&mut tx).await?;
        let n = sqlx::query("DELETE FROM edl_entries WHERE list = ? AND value = ?")
            .bind(list.to_string())
            .bind(value.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        append_audit(
            &mut tx,
            head,
            actor,
            "edl.remove",
            json!({ "list": list, "value": value }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn edl_entries(&self, list: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT value FROM edl_entries WHERE list = ? ORDER BY value")
            .bind(list.to_string())
            .fetch_all(&self.readers)
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    async fn audit(
        &self,
        actor: &str,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<u64, StoreError> {
        let mut w = self.writer.lock().await;
        let mut tx = w.conn.begin_with(BEGIN).await?;
        let head = read_head(&mut tx).await?;
        let new_head = append_audit(&mut tx, head, actor, action, detail).await?;
        tx.commit().await?;
        Ok(new_head.0)
    }

    async fn audit_records(&self, after: u64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, prev, hash, body FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.try_get(0)?;
                Ok(AuditRecord {
                    seq: seq as u64,
                    prev: hash32(r.try_get(1)?),
                    hash: hash32(r.try_get(2)?),
                    body: r.try_get(3)?,
                })
            })
            .collect()
    }

    async fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE one = 1")
            .fetch_optional(&self.readers)
            .await?;
        row.map(|r| {
            let seq: i64 = r.try_get(0)?;
            Ok((seq as u64, hash32(r.try_get(1)?)))
        })
        .transpose()
    }
}

/// A stored hash of the wrong length compares unequal to every real hash (all bytes 0xff
/// is not a SHA-256 anyone can produce on purpose), so verification reports the record.
fn hash32(v: Vec<u8>) -> [u8; 32] {
    v.try_into().unwrap_or([0xff; 32])
}

/// Records of `table` received at or after `received_ms`, newest first by rowid: the walk
/// stops at the first older row, so it costs what it returns (no index on `received_ms`).
async fn received_since(
    pool: &SqlitePool,
    table: &'static str,
    received_ms: i64,
    cursor: Option<i64>,
    limit: u32,
) -> Result<Page, StoreError> {
    let limit = limit.clamp(1, 10_000) as usize;
    let sql = format!(
        "SELECT rowid, received_ms, doc FROM {table} WHERE rowid < ? ORDER BY rowid DESC LIMIT ?"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(cursor.unwrap_or(i64::MAX))
        .bind(limit as i64)
        .fetch_all(pool)
        .await?;
    let mut page = Page::default();
    for r in &rows {
        let received: i64 = r.try_get(1)?;
        if received < received_ms {
            page.next_cursor = None;
            return Ok(page);
        }
        let doc: Vec<u8> = r.try_get(2)?;
        page.items.push(decompress_doc(&doc)?);
        page.next_cursor = Some(r.try_get(0)?);
    }
    if rows.len() < limit {
        page.next_cursor = None;
    }
    Ok(page)
}

async fn list(pool: &SqlitePool, table: &str, q: &ListQuery) -> Result<Page, StoreError> {
    let severity = if table == "alerts" {
        " AND (? IS NULL OR severity >= ?)"
    } else {
        " AND (? IS NULL OR ? IS NULL)"
    };
    let sql = format!(
        "SELECT rowid, doc FROM {table} WHERE rowid < ? AND (? IS NULL OR decoder = ?) \
         AND (? IS NULL OR time_ms >= ?) AND (? IS NULL OR time_ms < ?){severity} \
         ORDER BY rowid DESC LIMIT ?"
    );
    let limit = q.limit.clamp(1, 1000) as usize;
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(q.cursor.unwrap_or(i64::MAX))
        .bind(q.decoder.clone())
        .bind(q.decoder.clone())
        .bind(q.since_ms)
        .bind(q.since_ms)
        .bind(q.until_ms)
        .bind(q.until_ms)
        .bind(q.min_severity)
        .bind(q.min_severity)
        .bind(limit as i64 + 1)
        .fetch_all(pool)
        .await?;
    let mut page = Page::default();
    for (i, r) in rows.iter().enumerate() {
        if i == limit {
            break;
        }
        let rowid: i64 = r.try_get(0)?;
        let doc: Vec<u8> = r.try_get(1)?;
        page.items.push(decompress_doc(&doc)?);
        page.next_cursor = Some(rowid);
    }
    if rows.len() <= limit {
        page.next_cursor = None;
    }
    Ok(page)
}

fn dead_letter_row(r: &sqlx::sqlite::SqliteRow) -> Result<DeadLetter, StoreError> {
    let raw: Vec<u8> = r.try_get(5)?;
    let origin: String = r.try_get(6)?;
    let received_ms: i64 = r.try_get(7)?;
    Ok(DeadLetter {
        id: r.try_get(0)?,
        decoder: r.try_get(1)?,
        index: r.try_get::<i64, _>(2)? as u64,
        field: r.try_get(3)?,
        reason: r.try_get(4)?,
        raw: String::from_utf8_lossy(&raw).into_owned(),
        origin: serde_json::from_str(&origin).unwrap_or(serde_json::Value::Null),
        received_at: Timestamp::from_millisecond(received_ms)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        reingested_as: r.try_get(8)?,
    })
}
