//! Where runs, actions, playbook versions and case changes are kept: the [`RunStore`] trait,
//! which the server implements on its database, and [`MemoryRunStore`] for tests, dry runs
//! and benchmarks.
//!
//! Every write that changes a run or an action carries the [`AuditEntry`] that describes it,
//! so a backend writes both in one transaction: the record of an action is on the audit
//! trail before it is sent and after its result. Updates are compare-and-set on `version`
//! (the stored version must be one less than the written one): two nodes, or an approval
//! racing a tick, cannot both move an action from `ready` to `sending`, and an approval is
//! applied exactly once.
//!
//! Durability is split: each write survives a crash of the process when it returns, and
//! [`RunStore::flush`] makes everything so far survive power loss. The engine flushes
//! where the outside world sees the result: before a call leaves, and before a person's
//! answer is acknowledged. One flush covers many writes, so concurrent runs share a sync.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::error::RespondError;
use crate::playbook::Playbook;
use crate::run::{ActionRecord, AuditEntry, CaseChange, Run};

pub trait RunStore: Send + Sync + 'static {
    /// Keeps a playbook version (by `hash`) for as long as runs may follow it. Storing the
    /// same hash twice is not an error.
    fn put_playbook(
        &self,
        playbook: &Playbook,
    ) -> impl Future<Output = Result<(), RespondError>> + Send;
    fn playbook(
        &self,
        hash: &str,
    ) -> impl Future<Output = Result<Option<Playbook>, RespondError>> + Send;

    /// Inserts a new run; `false` when a run with this id exists (the event was seen).
    fn insert_run(
        &self,
        run: &Run,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<bool, RespondError>> + Send;
    /// Writes `run` if the stored version is `run.version - 1`; `false` otherwise.
    fn update_run(
        &self,
        run: &Run,
        audit: Option<AuditEntry>,
    ) -> impl Future<Output = Result<bool, RespondError>> + Send;
    fn run(&self, id: &str) -> impl Future<Output = Result<Option<Run>, RespondError>> + Send;
    /// Runs that are running or waiting.
    fn open_runs(&self) -> impl Future<Output = Result<Vec<Run>, RespondError>> + Send;
    /// Open runs about one case (to hand them its changes).
    fn open_runs_for_case(
        &self,
        case_id: &str,
    ) -> impl Future<Output = Result<Vec<Run>, RespondError>> + Send;

    /// Inserts a new action; `false` when one with this id exists.
    fn insert_action(
        &self,
        action: &ActionRecord,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<bool, RespondError>> + Send;
    /// Writes `action` if the stored version is `action.version - 1`; `false` otherwise.
    fn update_action(
        &self,
        action: &ActionRecord,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<bool, RespondError>> + Send;
    fn action(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ActionRecord>, RespondError>> + Send;
    /// Actions of one run, in creation order.
    fn actions_of_run(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Vec<ActionRecord>, RespondError>> + Send;
    /// Actions for which [`ActionRecord::is_open`] holds.
    fn open_actions(&self) -> impl Future<Output = Result<Vec<ActionRecord>, RespondError>> + Send;

    /// Makes every write so far survive power loss. The engine calls it once before it
    /// sends calls (the `sending` records and everything before them) and before it
    /// acknowledges a person's answer; a backend whose every write is already that durable
    /// does nothing. Writes between two flushes survive a crash or kill of the process; the
    /// records a power loss could take are the ones a restart recovers from the last
    /// `sending` record (the operation's check, or a resend with the same key).
    fn flush(&self) -> impl Future<Output = Result<(), RespondError>> + Send {
        async { Ok(()) }
    }

    /// Appends an audit record that goes with no other write (a refused approval).
    fn record(&self, audit: AuditEntry) -> impl Future<Output = Result<(), RespondError>> + Send;

    /// Applies a playbook's change to its case; `false` when `change.key` was applied before.
    fn apply_case_change(
        &self,
        change: &CaseChange,
        audit: AuditEntry,
    ) -> impl Future<Output = Result<bool, RespondError>> + Send;

    /// Applies `writes` in order, all or none, in one transaction: `false` (and nothing
    /// written) when any of them is refused as its single-write method would refuse it (a
    /// run or action that exists, a stale version). A case change applied before is skipped,
    /// not refused. The engine's straight-through path uses it to record a new run with its
    /// first action, and an action's result with the run's next step, in one write each.
    fn commit(
        &self,
        writes: Vec<RunWrite>,
    ) -> impl Future<Output = Result<bool, RespondError>> + Send;
}

/// One write of [`RunStore::commit`], with the audit records that describe it, in order.
#[derive(Debug, Clone)]
pub enum RunWrite {
    InsertRun {
        run: Run,
        audits: Vec<AuditEntry>,
    },
    UpdateRun {
        run: Run,
        audits: Vec<AuditEntry>,
    },
    InsertAction {
        action: ActionRecord,
        audits: Vec<AuditEntry>,
    },
    UpdateAction {
        action: ActionRecord,
        audits: Vec<AuditEntry>,
    },
    CaseChange {
        change: CaseChange,
        audits: Vec<AuditEntry>,
    },
}

#[derive(Debug, Clone, Default)]
struct Inner {
    playbooks: BTreeMap<String, Playbook>,
    runs: BTreeMap<String, Run>,
    actions: BTreeMap<String, ActionRecord>,
    action_order: Vec<String>,
    applied: BTreeSet<String>,
    changes: Vec<CaseChange>,
    audit: Vec<AuditEntry>,
}

type FailHook = Arc<dyn Fn(&ActionRecord) -> bool + Send + Sync>;

/// Everything in memory. [`MemoryRunStore::restart`] gives a new store with the same data,
/// as a restart of a process over a durable store would.
#[derive(Clone, Default)]
pub struct MemoryRunStore {
    inner: Arc<Mutex<Inner>>,
    fail_update: Option<FailHook>,
    journal: Option<Journal>,
}

/// The order of writes and flushes, shared with whatever else a test wants in that order
/// (a connector's calls): `write <action id> <state>`, `flush`.
pub type Journal = Arc<Mutex<Vec<String>>>;

impl std::fmt::Debug for MemoryRunStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRunStore").finish_non_exhaustive()
    }
}

impl MemoryRunStore {
    pub fn new() -> MemoryRunStore {
        MemoryRunStore::default()
    }

    /// Makes `update_action` fail (as a crash would) for the actions `hook` picks: for tests
    /// of what a restart finds.
    pub fn failing_when(
        mut self,
        hook: impl Fn(&ActionRecord) -> bool + Send + Sync + 'static,
    ) -> MemoryRunStore {
        self.fail_update = Some(Arc::new(hook));
        self
    }

    /// A separate store holding a copy of everything written so far.
    pub fn restart(&self) -> MemoryRunStore {
        let copy = self.lock().clone();
        MemoryRunStore {
            inner: Arc::new(Mutex::new(copy)),
            fail_update: None,
            journal: None,
        }
    }

    /// Notes every action write and every flush in `journal`, in order.
    pub fn journaling(mut self, journal: Journal) -> MemoryRunStore {
        self.journal = Some(journal);
        self
    }

    fn note(&self, line: impl FnOnce() -> String) {
        if let Some(j) = &self.journal {
            j.lock().unwrap_or_else(|p| p.into_inner()).push(line());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; use it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn audit_trail(&self) -> Vec<AuditEntry> {
        self.lock().audit.clone()
    }

    pub fn case_changes(&self) -> Vec<CaseChange> {
        self.lock().changes.clone()
    }

    pub fn all_actions(&self) -> Vec<ActionRecord> {
        let g = self.lock();
        g.action_order
            .iter()
            .filter_map(|id| g.actions.get(id).cloned())
            .collect()
    }
}

impl RunStore for MemoryRunStore {
    async fn put_playbook(&self, playbook: &Playbook) -> Result<(), RespondError> {
        self.lock()
            .playbooks
            .entry(playbook.hash.clone())
            .or_insert_with(|| playbook.clone());
        Ok(())
    }

    async fn playbook(&self, hash: &str) -> Result<Option<Playbook>, RespondError> {
        Ok(self.lock().playbooks.get(hash).cloned())
    }

    async fn insert_run(&self, run: &Run, audit: AuditEntry) -> Result<bool, RespondError> {
        let mut g = self.lock();
        if g.runs.contains_key(&run.id) {
            return Ok(false);
        }
        g.runs.insert(run.id.clone(), run.clone());
        g.audit.push(audit);
        Ok(true)
    }

    async fn update_run(&self, run: &Run, audit: Option<AuditEntry>) -> Result<bool, RespondError> {
        let mut g = self.lock();
        match g.runs.get(&run.id) {
            Some(old) if old.version + 1 == run.version => {}
            _ => return Ok(false),
        }
        g.runs.insert(run.id.clone(), run.clone());
        if let Some(a) = audit {
            g.audit.push(a);
        }
        Ok(true)
    }

    async fn run(&self, id: &str) -> Result<Option<Run>, RespondError> {
        Ok(self.lock().runs.get(id).cloned())
    }

    async fn open_runs(&self) -> Result<Vec<Run>, RespondError> {
        Ok(self
            .lock()
            .runs
            .values()
            .filter(|r| r.status.is_open())
            .cloned()
            .collect())
    }

    async fn open_runs_for_case(&self, case_id: &str) -> Result<Vec<Run>, RespondError> {
        Ok(self
            .lock()
            .runs
            .values()
            .filter(|r| r.status.is_open() && r.case_id.as_deref() == Some(case_id))
            .cloned()
            .collect())
    }

    async fn insert_action(
        &self,
        action: &ActionRecord,
        audit: AuditEntry,
    ) -> Result<bool, RespondError> {
        let mut g = self.lock();
        if g.actions.contains_key(&action.id) {
            return Ok(false);
        }
        g.actions.insert(action.id.clone(), action.clone());
        g.action_order.push(action.id.clone());
        g.audit.push(audit);
        drop(g);
        self.note(|| format!("write {} {}", action.id, action.state.name()));
        Ok(true)
    }

    async fn update_action(
        &self,
        action: &ActionRecord,
        audit: AuditEntry,
    ) -> Result<bool, RespondError> {
        if let Some(hook) = &self.fail_update
            && hook(action)
        {
            return Err(RespondError::Store(
                "simulated crash: the write did not happen".into(),
            ));
        }
        let mut g = self.lock();
        match g.actions.get(&action.id) {
            Some(old) if old.version + 1 == action.version => {}
            _ => return Ok(false),
        }
        g.actions.insert(action.id.clone(), action.clone());
        g.audit.push(audit);
        drop(g);
        self.note(|| format!("write {} {}", action.id, action.state.name()));
        Ok(true)
    }

    async fn flush(&self) -> Result<(), RespondError> {
        self.note(|| "flush".to_string());
        Ok(())
    }

    async fn action(&self, id: &str) -> Result<Option<ActionRecord>, RespondError> {
        Ok(self.lock().actions.get(id).cloned())
    }

    async fn actions_of_run(&self, run_id: &str) -> Result<Vec<ActionRecord>, RespondError> {
        let g = self.lock();
        Ok(g.action_order
            .iter()
            .filter_map(|id| g.actions.get(id))
            .filter(|a| a.run_id.as_deref() == Some(run_id))
            .cloned()
            .collect())
    }

    async fn open_actions(&self) -> Result<Vec<ActionRecord>, RespondError> {
        let g = self.lock();
        Ok(g.action_order
            .iter()
            .filter_map(|id| g.actions.get(id))
            .filter(|a| a.is_open())
            .cloned()
            .collect())
    }

    async fn record(&self, audit: AuditEntry) -> Result<(), RespondError> {
        self.lock().audit.push(audit);
        Ok(())
    }

    async fn apply_case_change(
        &self,
        change: &CaseChange,
        audit: AuditEntry,
    ) -> Result<bool, RespondError> {
        let mut g = self.lock();
        if !g.applied.insert(change.key.clone()) {
            return Ok(false);
        }
        g.changes.push(change.clone());
        g.audit.push(audit);
        Ok(true)
    }

    async fn commit(&self, writes: Vec<RunWrite>) -> Result<bool, RespondError> {
        if let Some(hook) = &self.fail_update {
            for w in &writes {
                if let RunWrite::UpdateAction { action, .. } = w
                    && hook(action)
                {
                    return Err(RespondError::Store(
                        "simulated crash: the write did not happen".into(),
                    ));
                }
            }
        }
        let mut g = self.lock();
        // Judged against the state as each earlier write of the same commit leaves it.
        let mut runs: BTreeMap<&str, u64> = BTreeMap::new();
        let mut actions: BTreeMap<&str, u64> = BTreeMap::new();
        for w in &writes {
            let ok = match w {
                RunWrite::InsertRun { run, .. } => {
                    let seen = runs.contains_key(run.id.as_str()) || g.runs.contains_key(&run.id);
                    runs.insert(&run.id, run.version);
                    !seen
                }
                RunWrite::UpdateRun { run, .. } => {
                    let stored = runs
                        .get(run.id.as_str())
                        .copied()
                        .or_else(|| g.runs.get(&run.id).map(|r| r.version));
                    runs.insert(&run.id, run.version);
                    stored.is_some_and(|v| v + 1 == run.version)
                }
                RunWrite::InsertAction { action, .. } => {
                    let seen = actions.contains_key(action.id.as_str())
                        || g.actions.contains_key(&action.id);
                    actions.insert(&action.id, action.version);
                    !seen
                }
                RunWrite::UpdateAction { action, .. } => {
                    let stored = actions
                        .get(action.id.as_str())
                        .copied()
                        .or_else(|| g.actions.get(&action.id).map(|a| a.version));
                    actions.insert(&action.id, action.version);
                    stored.is_some_and(|v| v + 1 == action.version)
                }
                RunWrite::CaseChange { .. } => true,
            };
            if !ok {
                return Ok(false);
            }
        }
        let mut notes = Vec::new();
        for w in writes {
            match w {
                RunWrite::InsertRun { run, audits } | RunWrite::UpdateRun { run, audits } => {
                    g.runs.insert(run.id.clone(), run);
                    g.audit.extend(audits);
                }
                RunWrite::InsertAction { action, audits }
                | RunWrite::UpdateAction { action, audits } => {
                    notes.push(format!("write {} {}", action.id, action.state.name()));
                    if !g.actions.contains_key(&action.id) {
                        g.action_order.push(action.id.clone());
                    }
                    g.actions.insert(action.id.clone(), action);
                    g.audit.extend(audits);
                }
                RunWrite::CaseChange { change, audits } => {
                    if g.applied.insert(change.key.clone()) {
                        g.changes.push(change);
                        g.audit.extend(audits);
                    }
                }
            }
        }
        drop(g);
        for n in notes {
            self.note(|| n);
        }
        Ok(true)
    }
}
