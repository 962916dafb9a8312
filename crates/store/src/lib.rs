//! riposte's storage: the [`Store`] trait every backend implements, and the embedded SQLite
//! backend ([`SqliteStore`]) that is the default.
//!
//! The store owns durability: [`Store::ingest`] returns only after the batch, its dead letters
//! and its audit record are committed in one transaction, so an acknowledged record survives a
//! crash and a failed write leaves nothing half-written. It also owns the audit chain's head,
//! so that audit records are appended by exactly one writer.
//!
//! It also keeps the response stage's runs and actions: [`SqliteStore`] implements
//! [`riposte_respond::RunStore`] (module `runs`), each write with its audit record in one
//! transaction.
//!
//! It does not decode, judge or correlate anything: it stores what the pipeline hands it.

mod response_writer;
mod runs;
mod sqlite;

use std::future::Future;

use riposte_domain::{AuditRecord, Decoded, Origin, RecordKind, Timestamp};
use serde::Serialize;

pub use sqlite::{BULK_PAGE_SIZE, Durability, SERVER_PAGE_SIZE, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot open the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} already exists")]
    Conflict(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// A decoded record ready to store: serialised once, outside the writer's lock.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub kind: RecordKind,
    pub id: String,
    pub decoder: String,
    pub time_ms: i64,
    pub severity: i64,
    /// The record as JSON (the `Decoded`, tagged with `kind`, original payload and origin
    /// included), compressed with [`compress_doc`].
    pub doc: Vec<u8>,
}

impl StoredRecord {
    pub fn from_decoded(d: &Decoded) -> StoredRecord {
        let (kind, severity) = match d {
            Decoded::Alert(a) => (RecordKind::Alert, a.severity.score as i64),
            Decoded::Event(_) => (RecordKind::Event, 0),
        };
        // Domain types hold only strings, numbers and JSON values: serialising cannot fail.
        let doc = serde_json::to_vec(d).unwrap_or_default();
        StoredRecord {
            kind,
            id: d.id().to_string(),
            decoder: d.decoder().to_string(),
            time_ms: d.time().as_millisecond(),
            severity,
            doc: compress_doc(&doc),
        }
    }
}

/// Documents are stored LZ4-compressed: record JSON repeats its key names and shrinks about
/// twofold, which halves what the disk writes, for a few microseconds of CPU per record
/// (zstd shrinks more but cost a third of all ingest CPU; see BENCHMARKS.md).
///
/// Layout: one tag byte [`LZ4_TAG`], the uncompressed length (u32, little endian), the LZ4
/// block. JSON text never starts with that byte, so uncompressed documents read back too.
pub fn compress_doc(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + lz4_flex::block::get_maximum_output_size(json.len()) + 4);
    out.push(LZ4_TAG);
    out.extend_from_slice(&lz4_flex::block::compress_prepend_size(json));
    out
}

/// The tag byte of an LZ4-compressed document.
pub const LZ4_TAG: u8 = 0x04;

/// The JSON text of a stored document.
pub fn decompress_doc(stored: &[u8]) -> Result<String, StoreError> {
    let bytes = match stored.split_first() {
        Some((&LZ4_TAG, block)) => {
            lz4_flex::block::decompress_size_prepended(block).map_err(|e| {
                StoreError::Corrupt(format!("a stored document does not decompress: {e}"))
            })?
        }
        _ => stored.to_vec(),
    };
    String::from_utf8(bytes)
        .map_err(|_| StoreError::Corrupt("a stored document is not UTF-8".into()))
}

/// A record a decoder refused, kept for inspection and re-ingestion.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    pub decoder: String,
    pub index: u64,
    pub field: String,
    pub reason: String,
    pub raw: Vec<u8>,
    pub origin: Origin,
}

/// One unit of ingestion: what arrived together (an HTTP request, a replay chunk, a syslog
/// flush). Stored in one transaction with one audit record.
#[derive(Debug, Clone)]
pub struct IngestBatch {
    pub batch_id: String,
    /// Who sent it: a token name, `replay`, `syslog`.
    pub actor: String,
    pub decoder: String,
    /// Where it came from, for the audit record (peer address, file, listener).
    pub source: serde_json::Value,
    /// How many records the input held.
    pub received: u64,
    pub records: Vec<StoredRecord>,
    pub rejects: Vec<NewDeadLetter>,
    pub received_at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// Records stored now.
    pub accepted: u64,
    /// Records already stored before (same id).
    pub duplicates: u64,
    /// Records refused and kept as dead letters.
    pub rejected: u64,
    pub dead_letter_ids: Vec<i64>,
    pub audit_seq: u64,
    /// The ids of the alerts stored now (not the duplicates), for the case stage.
    pub new_alerts: Vec<String>,
}

/// A page of stored documents, newest first. `cursor` continues after the last item.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<String>,
    pub next_cursor: Option<i64>,
}

/// A case as the case stage hands it to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCase {
    pub id: String,
    /// `low`, `medium`, `high` or `validated`.
    pub tier: String,
    pub status: String,
    pub risk: f64,
    pub first_ms: i64,
    pub last_ms: i64,
    /// (kind, canonical value) of each entity, for filtering.
    pub entities: Vec<(String, String)>,
    /// The case as a JSON object. `status`, `assignee` and `verdict` keys in it are kept in
    /// step with the columns by [`Store::update_case`].
    pub doc: serde_json::Value,
}

/// An analyst's change to a case: only the fields given change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasePatch {
    pub status: Option<String>,
    pub assignee: Option<String>,
    pub verdict: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    pub limit: u32,
    pub tier: Option<String>,
    pub status: Option<String>,
    /// `(kind, canonical value)`.
    pub entity: Option<(String, String)>,
    /// Cases whose last alert is at or after this time.
    pub since_ms: Option<i64>,
    /// Cases whose first alert is before this time.
    pub until_ms: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub limit: u32,
    /// Only items older (in storage order) than this cursor.
    pub cursor: Option<i64>,
    pub decoder: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub min_severity: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub decoder: String,
    pub index: u64,
    pub field: String,
    pub reason: String,
    /// The raw record, as text when it is UTF-8.
    pub raw: String,
    pub origin: serde_json::Value,
    pub received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reingested_as: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub created_ms: i64,
    pub revoked: bool,
}

/// The storage every backend provides. The SQLite backend is the embedded default; a
/// PostgreSQL backend implements the same trait and passes the same tests.
pub trait Store: Send + Sync + 'static {
    /// Stores a batch, its dead letters and its audit record in one transaction.
    fn ingest(
        &self,
        batch: IngestBatch,
    ) -> impl Future<Output = Result<IngestOutcome, StoreError>> + Send;

    fn alert(&self, id: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn alerts(&self, q: &ListQuery) -> impl Future<Output = Result<Page, StoreError>> + Send;
    fn event(&self, id: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn events(&self, q: &ListQuery) -> impl Future<Output = Result<Page, StoreError>> + Send;
    /// Alerts in storage order, newest first, received at or after `received_ms`: a page of
    /// at most `limit`, continuing before `cursor`. In storage order, not by the alerts' own
    /// time, so the look-back costs what it returns (rebuilding open cases after a restart).
    fn alerts_received_since(
        &self,
        received_ms: i64,
        cursor: Option<i64>,
        limit: u32,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;
    /// Events in storage order, newest first, received at or after `received_ms`, paged as
    /// [`Store::alerts_received_since`] (rebuilding live correlation windows after a restart).
    fn events_received_since(
        &self,
        received_ms: i64,
        cursor: Option<i64>,
        limit: u32,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;
    /// How many alerts and events are stored.
    fn counts(&self) -> impl Future<Output = Result<(u64, u64), StoreError>> + Send;

    fn dead_letters(
        &self,
        q: &ListQuery,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;
    fn dead_letter(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<DeadLetter>, StoreError>> + Send;
    /// Marks a dead letter as re-ingested as the record `record_id`, with an audit record.
    fn mark_reingested(
        &self,
        id: i64,
        record_id: &str,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a new token's hash; fails with [`StoreError::Conflict`] if the name is taken.
    fn create_token(
        &self,
        name: &str,
        role: &str,
        hash: [u8; 32],
        actor: &str,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
    /// The live (not revoked) token with this secret hash: its name and role.
    fn token_by_hash(
        &self,
        hash: [u8; 32],
    ) -> impl Future<Output = Result<Option<(String, String)>, StoreError>> + Send;
    fn tokens(&self) -> impl Future<Output = Result<Vec<TokenInfo>, StoreError>> + Send;
    fn revoke_token(
        &self,
        name: &str,
        actor: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Writes cases (new or changed) and their entities, with one audit record naming them.
    /// Cases in `retired` (absorbed by a merge) are marked `merged` and keep their document.
    fn upsert_cases(
        &self,
        cases: &[StoredCase],
        retired: Vec<(String, String)>,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Cases, validated ones first, then by risk (highest first), filtered.
    fn cases(&self, q: &CaseQuery) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    fn case(&self, id: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Applies an analyst's change with an audit record holding the values before and after;
    /// `None` when there is no such case.
    fn update_case(
        &self,
        id: &str,
        patch: &CasePatch,
        actor: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Adds `value` to the external dynamic list `list` with an audit record; `false` (and
    /// nothing written) when the list holds it already.
    fn edl_add(
        &self,
        list: &str,
        value: &str,
        actor: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Removes `value` from `list` with an audit record; `false` when it was not there.
    fn edl_remove(
        &self,
        list: &str,
        value: &str,
        actor: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The entries of `list`, sorted; empty for a list that holds none.
    fn edl_entries(
        &self,
        list: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Appends one audit record; returns its sequence number.
    fn audit(
        &self,
        actor: &str,
        action: &str,
        detail: serde_json::Value,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Audit records with `seq > after`, in order, at most `limit`.
    fn audit_records(
        &self,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;
    /// The head the store recorded: last sequence number and hash.
    fn audit_head(
        &self,
    ) -> impl Future<Output = Result<Option<(u64, [u8; 32])>, StoreError>> + Send;
}

/// The result of checking the whole audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerdict {
    Intact { records: u64, head: [u8; 32] },
    Broken { error: String, checked: u64 },
}

/// Walks the audit chain from the first record and checks every link, then the stored head.
pub async fn verify_audit<S: Store>(store: &S) -> Result<AuditVerdict, StoreError> {
    let mut v = riposte_domain::audit::ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = store.audit_records(after, 5_000).await?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            if let Err(e) = v.check(r) {
                return Ok(AuditVerdict::Broken {
                    error: e.to_string(),
                    checked: v.checked(),
                });
            }
            after = r.seq;
        }
    }
    let head = store.audit_head().await?;
    let checked = v.checked();
    match head {
        None if checked == 0 => {}
        Some((seq, hash)) if seq == checked && hash == v.head() => {}
        Some((seq, _)) if seq > checked => {
            return Ok(AuditVerdict::Broken {
                error: format!(
                    "audit record {}: missing (the log ends at record {checked} but its head says {seq}: records were removed from the end)",
                    checked + 1
                ),
                checked,
            });
        }
        _ => {
            return Ok(AuditVerdict::Broken {
                error: format!(
                    "audit record {checked}: does not match the recorded head of the chain"
                ),
                checked,
            });
        }
    }
    Ok(AuditVerdict::Intact {
        records: checked,
        head: v.head(),
    })
}
