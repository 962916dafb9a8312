//! The response stage's writer: a thread of its own that owns one SQLite connection and
//! commits the writes queued while it was busy as one transaction (a group commit).
//!
//! Why a thread and not sqlx: sqlx runs a connection's statements on a worker thread and
//! answers each over a channel, so a transaction of eight statements is eight round trips
//! between threads, each needing the waiting task to be scheduled again before the next
//! statement starts. On two busy cores those hand-offs, not SQLite, set the response stage's
//! tail latency (BENCHMARKS.md, "Response"). Here a group is one hand-off in and one answer
//! out; everything between runs on this thread without waiting on anyone.
//!
//! The connection is rusqlite's over the same `libsqlite3-sys` as sqlx's (one SQLite in the
//! process, so POSIX file locks and the WAL index are shared correctly). The thread takes the
//! store's writer mutex for each group, so it never contends with the sqlx writer on
//! SQLite's own lock (whose busy handler sleeps); the audit head is read inside the group's
//! `BEGIN IMMEDIATE`, as every other appender does.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use riposte_domain::audit::{AuditBody, AuditRecord, GENESIS};
use riposte_respond::RespondError;
use riposte_respond::run::AuditEntry;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::Mutex;

use crate::StoreError;
use crate::runs::Prepared;
use crate::sqlite::{Writer, now};

/// Most jobs in one group: bounds a transaction's size and the wait of its first job.
const MAX_GROUP: usize = 512;

/// One unit of work for the writer.
pub(crate) enum Job {
    /// One write: it applies, or it is refused and writes nothing.
    One(Box<Prepared>),
    /// Several writes: all or none ([`riposte_respond::RunStore::commit`]).
    All(Vec<Prepared>),
    /// An audit record on its own.
    Audit(AuditEntry),
}

/// What the writer's thread receives: a write for the next group, or an order done at once.
pub(crate) enum Msg {
    Write(Job),
    /// Stop SQLite's automatic checkpoints on this connection (a background checkpointer
    /// copies the WAL instead).
    NoAutoCheckpoint,
}

/// What one job did inside its group: nothing (refused, wrote nothing), or its change with
/// the audit records that go with it.
pub(crate) enum Wrote {
    Nothing,
    Applied(Vec<AuditEntry>),
}

type Reply = tokio::sync::oneshot::Sender<Result<bool, RespondError>>;

/// The handle the store keeps: where jobs go, and the thread to join at close.
pub(crate) struct ResponseWriter {
    jobs: Option<mpsc::Sender<(Msg, Reply)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub(crate) fn rs_err(e: rusqlite::Error) -> RespondError {
    RespondError::Store(format!("database error: {e}"))
}

impl ResponseWriter {
    /// Opens the writer's connection to `path` (the database exists: the store created it)
    /// and starts its thread. `lock` is the store's writer mutex; `committed` counts the
    /// changes committed without a sync of their own (for [`crate::SqliteStore`]'s flush).
    pub(crate) fn start(
        path: &Path,
        lock: Arc<Mutex<Writer>>,
        committed: Arc<AtomicU64>,
    ) -> Result<ResponseWriter, StoreError> {
        let io = |e: rusqlite::Error| StoreError::Io {
            what: format!("opening {} for the response writer", path.display()),
            source: std::io::Error::other(e.to_string()),
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(io)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(io)?;
        // NORMAL for good: these commits are synced by the store's flush (runs.rs).
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
        )
        .map_err(io)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("riposte-response-writer".into())
            .spawn(move || serve(conn, rx, lock, committed))
            .map_err(|source| StoreError::Io {
                what: "starting the response writer thread".into(),
                source,
            })?;
        Ok(ResponseWriter {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues `job` for the next group and waits for its commit: `true` when it applied,
    /// `false` when it was refused (and wrote nothing).
    pub(crate) async fn submit(&self, job: Job) -> Result<bool, RespondError> {
        self.send(Msg::Write(job)).await
    }

    /// Turns SQLite's automatic checkpoints off on the writer's connection.
    pub(crate) async fn no_auto_checkpoint(&self) -> Result<bool, RespondError> {
        self.send(Msg::NoAutoCheckpoint).await
    }

    async fn send(&self, msg: Msg) -> Result<bool, RespondError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gone = || RespondError::Store("the response writer has stopped".into());
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send((msg, tx))
            .map_err(|_| gone())?;
        rx.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Lets the thread finish the jobs it has and waits for it to end.
    pub(crate) async fn stop(mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// The thread: waits for a job, takes every job queued behind it (again once it holds the
/// writer mutex, as more arrive while it waits), commits them as one group and answers each.
fn serve(
    mut conn: Connection,
    jobs: mpsc::Receiver<(Msg, Reply)>,
    lock: Arc<Mutex<Writer>>,
    committed: Arc<AtomicU64>,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = Vec::with_capacity(16);
        take(&mut conn, first, &mut group);
        drain(&mut conn, &jobs, &mut group);
        if group.is_empty() {
            continue;
        }
        let guard = lock.blocking_lock();
        drain(&mut conn, &jobs, &mut group);
        let (writes, replies): (Vec<Job>, Vec<Reply>) = group.into_iter().unzip();
        let result = commit_group(&mut conn, writes);
        drop(guard);
        match result {
            Ok(applied) => {
                let n = applied.iter().filter(|a| **a).count();
                committed.fetch_add(n as u64, Ordering::AcqRel);
                for (reply, a) in replies.into_iter().zip(applied) {
                    let _ = reply.send(Ok(a));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(RespondError::Store(format!(
                        "a group commit of response records failed: {e}"
                    ))));
                }
            }
        }
    }
}

/// Adds the jobs queued now to `group`, up to [`MAX_GROUP`].
fn drain(
    conn: &mut Connection,
    jobs: &mpsc::Receiver<(Msg, Reply)>,
    group: &mut Vec<(Job, Reply)>,
) {
    while group.len() < MAX_GROUP {
        match jobs.try_recv() {
            Ok(j) => take(conn, j, group),
            Err(_) => break,
        }
    }
}

/// Puts a write into `group`; a control job is done at once.
fn take(conn: &mut Connection, (msg, reply): (Msg, Reply), group: &mut Vec<(Job, Reply)>) {
    match msg {
        Msg::NoAutoCheckpoint => {
            let r = conn
                .execute_batch("PRAGMA wal_autocheckpoint = 0;")
                .map(|_| true)
                .map_err(rs_err);
            let _ = reply.send(r);
        }
        Msg::Write(job) => group.push((job, reply)),
    }
}

/// Runs `jobs` in one `BEGIN IMMEDIATE` transaction, appends their audit records to the
/// chain in order, and commits: whether each applied. A job that fails fails the group
/// (nothing of it is kept).
fn commit_group(conn: &mut Connection, jobs: Vec<Job>) -> Result<Vec<bool>, RespondError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(rs_err)?;
    let mut applied = Vec::with_capacity(jobs.len());
    let mut audits = Vec::new();
    for job in jobs {
        let wrote = match job {
            Job::One(w) => w.apply(&tx)?,
            Job::All(ws) => crate::runs::apply_all(&tx, ws)?,
            Job::Audit(a) => Wrote::Applied(vec![a]),
        };
        match wrote {
            Wrote::Nothing => applied.push(false),
            Wrote::Applied(a) => {
                applied.push(true);
                audits.extend(a);
            }
        }
    }
    if !audits.is_empty() {
        let head = read_head(&tx)?;
        append_audits(&tx, head, audits)?;
    }
    tx.commit().map_err(rs_err)?;
    Ok(applied)
}

/// The chain's head as stored (read inside the group's transaction).
fn read_head(c: &Connection) -> Result<(u64, [u8; 32]), RespondError> {
    let mut st = c
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE one = 1")
        .map_err(rs_err)?;
    let mut rows = st.query([]).map_err(rs_err)?;
    match rows.next().map_err(rs_err)? {
        Some(row) => {
            let seq: i64 = row.get(0).map_err(rs_err)?;
            let hash: Vec<u8> = row.get(1).map_err(rs_err)?;
            let hash: [u8; 32] = hash.try_into().map_err(|_| {
                RespondError::Store(
                    "stored data is corrupt: the audit head hash is not 32 bytes".into(),
                )
            })?;
            Ok((seq as u64, hash))
        }
        None => Ok((0, GENESIS)),
    }
}

/// Seals `entries` onto the chain after `head`, inserts them and moves the head.
fn append_audits(
    c: &Connection,
    mut head: (u64, [u8; 32]),
    entries: Vec<AuditEntry>,
) -> Result<(), RespondError> {
    let at = now();
    let mut insert = c
        .prepare_cached("INSERT INTO audit (seq, prev, hash, body) VALUES (?1, ?2, ?3, ?4)")
        .map_err(rs_err)?;
    for e in entries {
        let seq = head.0 + 1;
        let record = AuditRecord::seal(
            &AuditBody {
                seq,
                at,
                actor: e.actor,
                action: e.action,
                detail: e.detail,
            },
            head.1,
        );
        insert
            .execute(rusqlite::params![
                seq as i64,
                &record.prev[..],
                &record.hash[..],
                record.body
            ])
            .map_err(rs_err)?;
        head = (seq, record.hash);
    }
    c.prepare_cached(
        "INSERT INTO audit_head (one, seq, hash) VALUES (1, ?1, ?2) \
         ON CONFLICT (one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .map_err(rs_err)?
    .execute(rusqlite::params![head.0 as i64, &head.1[..]])
    .map_err(rs_err)?;
    Ok(())
}
