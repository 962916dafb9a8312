//! The run engine: starts runs on events, drives them step by step, holds actions at their
//! gates, sends them through connectors, retries and backs off, answers approvals, undoes
//! and expires actions.
//!
//! Everything it knows is in the [`RunStore`]: driving a run re-reads the run and its
//! actions and continues from there, so a crash at any point leaves a state a later
//! [`Engine::tick`] resumes. It keeps no clock of its own: callers pass `now` (the server
//! passes the wall clock and calls `tick` every few seconds; tests pass whatever they need).
//!
//! Exactly once: an action's id is its idempotency key and is derived from run, step and
//! item; the write that makes an action `sending` (a compare-and-set from `ready`, or the
//! insert of a new action already `sending`) is recorded before the call and applies for
//! one driver only, so only one driver sends it; an action found `sending` after a restart is sent
//! again only when that is safe (the operation is idempotent or the connector sends the key),
//! otherwise it becomes `uncertain` and waits for a person.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use riposte_domain::Timestamp;
use serde_json::{Value, json};

use crate::connector::{CallOutcome, CallRequest, ConnectorError, Connectors, OperationSpec};
use crate::duration::add;
use crate::error::RespondError;
use crate::playbook::{OnFailure, Playbook, Step, StepKind, TriggerKind};
use crate::policy::{ApprovalError, ApprovalState, ApprovalStatus, Class, Decision, Gate, Policy};
use crate::run::{
    ActionKind, ActionRecord, ActionState, AuditEntry, CaseChange, Change, Run, RunStatus,
    TriggerEvent, action_id, inverse_id, run_id,
};
use crate::store::{RunStore, RunWrite};
use crate::template::Templates;

/// How long telling approvers may take before the run goes on without it.
const APPROVAL_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Built-in pseudo-connector name for approval steps.
pub const GATE_CONNECTOR: &str = "riposte";

/// Writes a drive keeps back to make with the run's next write: a new run's insert (made
/// with its first action or change), an action's result (made with the run's next step).
/// A crash before they are made loses nothing the world saw: a run not yet stored was never
/// acted on, and an action left `sending` is settled on restart (`resume_sent`).
#[derive(Default)]
struct Held {
    writes: Vec<RunWrite>,
    /// The run's own insert is among `writes`.
    new_run: bool,
    /// This drive created the run, so none of its actions existed before it.
    fresh: bool,
    /// The run's insert was refused: it was there before.
    seen: bool,
}

enum StepResult {
    Next,
    Goto(usize),
    Wait(Option<Timestamp>),
    Failed(String),
}

pub struct Engine<S: RunStore> {
    store: Arc<S>,
    templates: Arc<Templates>,
    policy: Policy,
    connectors: Connectors,
    active: RwLock<BTreeMap<String, Arc<Playbook>>>,
    versions: RwLock<HashMap<String, Arc<Playbook>>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Connectors told about every action that starts waiting for approval.
    approval_notifiers: Vec<String>,
}

impl<S: RunStore> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("connectors", &self.connectors)
            .finish_non_exhaustive()
    }
}

fn audit(actor: &str, action: &str, detail: Value) -> AuditEntry {
    AuditEntry {
        actor: actor.to_string(),
        action: action.to_string(),
        detail,
    }
}

fn conflict(what: &str) -> RespondError {
    RespondError::Conflict { what: what.into() }
}

impl<S: RunStore> Engine<S> {
    pub fn new(
        store: Arc<S>,
        policy: Policy,
        connectors: Connectors,
        templates: Arc<Templates>,
    ) -> Engine<S> {
        Engine {
            store,
            templates,
            policy,
            connectors,
            active: RwLock::new(BTreeMap::new()),
            versions: RwLock::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            approval_notifiers: Vec::new(),
        }
    }

    /// Tells these connectors about every action that starts waiting for an approval: their
    /// `request_approval` operation when they have one (Slack's message with Approve and
    /// Reject buttons), else their `notify` operation with a message saying what waits and
    /// how to answer it.
    pub fn with_approval_notifiers(mut self, names: Vec<String>) -> Engine<S> {
        self.approval_notifiers = names;
        self
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn connectors(&self) -> &Connectors {
        &self.connectors
    }

    /// Makes `playbook` the active version of its id. Runs already started keep theirs.
    pub async fn activate(&self, playbook: Playbook) -> Result<(), RespondError> {
        self.store.put_playbook(&playbook).await?;
        let p = Arc::new(playbook);
        write(&self.versions).insert(p.hash.clone(), p.clone());
        write(&self.active).insert(p.id.clone(), p);
        Ok(())
    }

    /// Stops starting runs of a playbook; runs in flight go on.
    pub fn deactivate(&self, id: &str) -> bool {
        write(&self.active).remove(id).is_some()
    }

    async fn version(&self, id: &str, hash: &str) -> Result<Arc<Playbook>, RespondError> {
        if let Some(p) = read(&self.versions).get(hash) {
            return Ok(p.clone());
        }
        let p = self
            .store
            .playbook(hash)
            .await?
            .ok_or_else(|| RespondError::UnknownPlaybook {
                id: id.into(),
                hash: hash.into(),
            })?;
        let p = Arc::new(p);
        write(&self.versions).insert(hash.to_string(), p.clone());
        Ok(p)
    }

    fn lock_for(&self, run_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut g = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if g.len() > 10_000 {
            g.retain(|_, l| Arc::strong_count(l) > 1);
        }
        g.entry(run_id.to_string()).or_default().clone()
    }

    /// An event: hands case changes to the runs waiting on that case, then starts every
    /// active playbook it triggers whose `if` holds. Returns the runs started.
    pub async fn on_event(
        &self,
        ev: &TriggerEvent,
        now: Timestamp,
    ) -> Result<Vec<String>, RespondError> {
        if let Some(case) = &ev.case
            && let Some(case_id) = case.get("id").and_then(Value::as_str)
        {
            for mut run in self.store.open_runs_for_case(case_id).await? {
                run.case = case.clone();
                run.version += 1;
                run.updated_at = now;
                if self.store.update_run(&run, None).await? {
                    self.drive(&run.id, now).await?;
                }
            }
        }
        let candidates: Vec<Arc<Playbook>> = read(&self.active)
            .values()
            .filter(|p| p.triggered_by(ev.kind))
            .cloned()
            .collect();
        let mut started = Vec::new();
        for pb in candidates {
            if let Some(id) = self.start(&pb, ev, now).await? {
                started.push(id);
            }
        }
        Ok(started)
    }

    /// Starts `pb` for `ev` when its `if` holds and the event has not started it before.
    async fn start(
        &self,
        pb: &Playbook,
        ev: &TriggerEvent,
        now: Timestamp,
    ) -> Result<Option<String>, RespondError> {
        let mut ctx = json!({
            "case": ev.case.clone().unwrap_or(Value::Null),
            "alert": ev.alert.clone().unwrap_or(Value::Null),
            "trigger": {"kind": ev.kind.as_str(), "at": ev.at, "event_id": ev.event_id},
            "playbook": {"id": pb.id, "name": pb.name, "version": pb.version},
            "now": now,
        });
        if let Some(cond) = &pb.condition {
            match self.templates.truthy(cond, &ctx) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => {
                    tracing::warn!(playbook = %pb.id, error = %e, "playbook condition failed; not started");
                    return Ok(None);
                }
            }
        }
        let id = run_id(&pb.id, &ev.event_id);
        let requested_by = ev
            .requested_by
            .clone()
            .unwrap_or_else(|| format!("playbook:{}", pb.id));
        let run = Run {
            id: id.clone(),
            playbook_id: pb.id.clone(),
            playbook_version: pb.version.clone(),
            playbook_hash: pb.hash.clone(),
            trigger: ev.kind,
            event_id: ev.event_id.clone(),
            case_id: ev
                .case
                .as_ref()
                .and_then(|c| c.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string),
            requested_by: requested_by.clone(),
            case: ctx["case"].take(),
            alert: ctx["alert"].take(),
            pointer: 0,
            status: RunStatus::Running,
            wake_at: None,
            step_started_at: None,
            outputs: Default::default(),
            error: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let entry = audit(
            &requested_by,
            "run.start",
            json!({"run": id, "playbook": pb.id, "version": pb.version, "hash": pb.hash,
                   "trigger": ev.kind.as_str(), "event": ev.event_id, "case": run.case_id}),
        );
        // The run's insert waits to be made with its first write (its first action, most
        // often): one write instead of two before the first call leaves. The lock is taken
        // first, so a tick that finds the run once it is stored waits for this drive.
        let lock = self.lock_for(&id);
        let _guard = lock.lock().await;
        let pb = self.version(&run.playbook_id, &run.playbook_hash).await?;
        let mut held = Held {
            writes: vec![RunWrite::InsertRun {
                run: run.clone(),
                audits: vec![entry],
            }],
            new_run: true,
            fresh: true,
            seen: false,
        };
        match self.drive_held(run, &pb, &mut held, now).await {
            Ok(_) => Ok(Some(id)),
            // Another driver (or an earlier delivery of the same event) started it.
            Err(_) if held.seen => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Starts the playbooks triggered by `schedule` whose period has begun anew since they
    /// last ran: one run per playbook per period (the event id names the period), however
    /// often this is called. Call it from the same loop as [`Engine::tick`].
    pub async fn on_schedule(&self, now: Timestamp) -> Result<Vec<String>, RespondError> {
        let scheduled: Vec<(Arc<Playbook>, u64)> = read(&self.active)
            .values()
            .flat_map(|p| {
                p.on.iter()
                    .filter(|t| t.kind == TriggerKind::Schedule)
                    .filter_map(|t| t.every_secs)
                    .map(|e| (p.clone(), e))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut started = Vec::new();
        for (pb, every) in scheduled {
            let every = every.max(1) as i64;
            let slot = now.as_second().div_euclid(every) * every;
            let ev = TriggerEvent {
                kind: TriggerKind::Schedule,
                event_id: format!("schedule@{slot}"),
                case: None,
                alert: None,
                at: now,
                requested_by: None,
            };
            if let Some(id) = self.start(&pb, &ev, now).await? {
                started.push(id);
            }
        }
        Ok(started)
    }

    fn context(&self, run: &Run, pb: &Playbook, now: Timestamp) -> Value {
        json!({
            "case": run.case,
            "alert": run.alert,
            "trigger": {"kind": run.trigger.as_str(), "event_id": run.event_id},
            "steps": run.outputs,
            "playbook": {"id": pb.id, "name": pb.name, "version": pb.version},
            "run": {"id": run.id, "requested_by": run.requested_by},
            "now": now,
        })
    }

    /// Drives one run as far as it goes now. Safe to call at any time, any number of times.
    pub async fn drive(&self, run_id: &str, now: Timestamp) -> Result<Run, RespondError> {
        let lock = self.lock_for(run_id);
        let _guard = lock.lock().await;
        let run = self
            .store
            .run(run_id)
            .await?
            .ok_or_else(|| RespondError::UnknownRun(run_id.into()))?;
        if !run.status.is_open() {
            return Ok(run);
        }
        let pb = self.version(&run.playbook_id, &run.playbook_hash).await?;
        self.drive_held(run, &pb, &mut Held::default(), now).await
    }

    /// Drives `run` (its lock held by the caller) from the state given, making the writes
    /// `held` keeps with the next write of the run.
    async fn drive_held(
        &self,
        mut run: Run,
        pb: &Playbook,
        held: &mut Held,
        now: Timestamp,
    ) -> Result<Run, RespondError> {
        if !run.status.is_open() {
            return Ok(run);
        }
        // A guard against branch loops: a run takes at most this many steps per drive.
        let mut budget = pb.steps.len() * 4 + 16;
        loop {
            if run.pointer >= pb.steps.len() {
                run.status = RunStatus::Succeeded;
                run.wake_at = None;
                let entry = self.run_audit(&run, "run.finish", json!({"status": "succeeded"}));
                self.save_run(&mut run, now, vec![entry], held).await?;
                return Ok(run);
            }
            if budget == 0 {
                run.status = RunStatus::Failed;
                let error = "the run went round its branches too often in one go";
                run.error = Some(error.into());
                let entry = self.run_audit(
                    &run,
                    "run.finish",
                    json!({"status": "failed", "error": error}),
                );
                self.save_run(&mut run, now, vec![entry], held).await?;
                return Ok(run);
            }
            budget -= 1;
            let step = &pb.steps[run.pointer];
            if run.step_started_at.is_none() {
                run.step_started_at = Some(now);
            }
            let result = self.step(&mut run, pb, step, held, now).await?;
            let (next, outcome) = match result {
                StepResult::Next => (Some(run.pointer + 1), json!("done")),
                StepResult::Goto(i) => (Some(i), json!("goto")),
                StepResult::Wait(wake) => {
                    let changed = run.status != RunStatus::Waiting || run.wake_at != wake;
                    run.status = RunStatus::Waiting;
                    run.wake_at = wake;
                    let entries = if changed {
                        vec![self.run_audit(
                            &run,
                            "run.wait",
                            json!({"step": step.id, "until": wake}),
                        )]
                    } else {
                        Vec::new()
                    };
                    self.save_run(&mut run, now, entries, held).await?;
                    return Ok(run);
                }
                StepResult::Failed(error) => match &step.on_failure {
                    OnFailure::Stop => {
                        run.status = RunStatus::Failed;
                        run.error = Some(format!("step `{}`: {error}", step.id));
                        run.wake_at = None;
                        let entry = self.run_audit(
                            &run,
                            "run.finish",
                            json!({"status": "failed", "step": step.id, "error": error}),
                        );
                        self.save_run(&mut run, now, vec![entry], held).await?;
                        return Ok(run);
                    }
                    OnFailure::Continue => (Some(run.pointer + 1), json!({"failed": error})),
                    OnFailure::Goto(t) => (
                        Some(pb.step_index(t).unwrap_or(pb.steps.len())),
                        json!({"failed": error}),
                    ),
                },
            };
            if let Some(n) = next {
                let from = step.id.clone();
                run.pointer = n;
                run.step_started_at = None;
                run.status = RunStatus::Running;
                run.wake_at = None;
                let mut entries = vec![self.run_audit(
                    &run,
                    "run.step",
                    json!({"step": from, "outcome": outcome}),
                )];
                if run.pointer >= pb.steps.len() {
                    // The last step: the run's finish goes in the same write.
                    run.status = RunStatus::Succeeded;
                    entries.push(self.run_audit(
                        &run,
                        "run.finish",
                        json!({"status": "succeeded"}),
                    ));
                    self.save_run(&mut run, now, entries, held).await?;
                    return Ok(run);
                }
                self.save_run(&mut run, now, entries, held).await?;
            }
        }
    }

    fn run_audit(&self, run: &Run, verb: &str, mut detail: Value) -> AuditEntry {
        if let Value::Object(m) = &mut detail {
            m.insert("run".into(), json!(run.id));
        }
        audit(&run.requested_by, verb, detail)
    }

    /// Writes the run's next version with `entries`, together with what `held` keeps.
    async fn save_run(
        &self,
        run: &mut Run,
        now: Timestamp,
        entries: Vec<AuditEntry>,
        held: &mut Held,
    ) -> Result<(), RespondError> {
        if held.new_run {
            // Not stored yet: its insert is made in this state.
            run.updated_at = now;
            if let Some(RunWrite::InsertRun { run: r, .. }) = held.writes.first_mut() {
                *r = run.clone();
            }
            if let Some(RunWrite::InsertRun { audits, .. }) = held.writes.first_mut() {
                audits.extend(entries);
            }
            if self.commit(held, Vec::new()).await? {
                return Ok(());
            }
            return Err(conflict(&format!("run {}", run.id)));
        }
        run.version += 1;
        run.updated_at = now;
        let write = RunWrite::UpdateRun {
            run: run.clone(),
            audits: entries,
        };
        if self.commit(held, vec![write]).await? {
            Ok(())
        } else {
            Err(conflict(&format!("run {}", run.id)))
        }
    }

    /// Makes `more` together with the writes `held` keeps, all or none. A refusal while the
    /// run's own insert is held means the run was there before (`held.seen`); otherwise
    /// the held writes (an action's result) are made on their own, so they are not lost
    /// with the write that was refused.
    async fn commit(&self, held: &mut Held, more: Vec<RunWrite>) -> Result<bool, RespondError> {
        let kept = std::mem::take(&mut held.writes);
        if kept.is_empty() {
            return self.store.commit(more).await;
        }
        let again = (!held.new_run).then(|| kept.clone());
        let mut writes = kept;
        writes.extend(more);
        if self.store.commit(writes).await? {
            held.new_run = false;
            return Ok(true);
        }
        if held.new_run {
            held.seen = true;
            return Err(RespondError::Conflict {
                what: "the run was started before".into(),
            });
        }
        if let Some(kept) = again
            && !self.store.commit(kept).await?
        {
            return Err(conflict("an action's result"));
        }
        Ok(false)
    }

    fn tmpl_err(&self, pb: &Playbook, step: &Step, e: crate::template::TemplateError) -> String {
        RespondError::Template {
            playbook: pb.id.clone(),
            step: step.id.clone(),
            source: e,
        }
        .to_string()
    }

    /// The items of a step: `[null]` without `for_each`.
    fn items(&self, pb: &Playbook, step: &Step, ctx: &Value) -> Result<Vec<Value>, String> {
        let Some(fe) = &step.for_each else {
            return Ok(vec![Value::Null]);
        };
        let v = self
            .templates
            .eval(&fe.expr, ctx)
            .map_err(|e| self.tmpl_err(pb, step, e))?;
        let items = match v {
            Value::Array(a) => a,
            Value::Null => Vec::new(),
            other => {
                return Err(format!(
                    "`for_each` gave {} instead of a list",
                    json_kind(&other)
                ));
            }
        };
        if items.len() > fe.max_items as usize {
            return Err(format!(
                "`for_each` gave {} items; its bound `max_items` is {}",
                items.len(),
                fe.max_items
            ));
        }
        Ok(items)
    }

    async fn step(
        &self,
        run: &mut Run,
        pb: &Playbook,
        step: &Step,
        held: &mut Held,
        now: Timestamp,
    ) -> Result<StepResult, RespondError> {
        let ctx = self.context(run, pb, now);
        if let Some(cond) = &step.condition {
            match self.templates.truthy(cond, &ctx) {
                Ok(true) => {}
                Ok(false) => {
                    run.outputs
                        .insert(step.id.clone(), json!({"skipped": true}));
                    return Ok(StepResult::Next);
                }
                Err(e) => return Ok(StepResult::Failed(self.tmpl_err(pb, step, e))),
            }
        }
        match &step.kind {
            StepKind::Branch { arms } => {
                for arm in arms {
                    let take = match &arm.condition {
                        None => true,
                        Some(c) => match self.templates.truthy(c, &ctx) {
                            Ok(b) => b,
                            Err(e) => return Ok(StepResult::Failed(self.tmpl_err(pb, step, e))),
                        },
                    };
                    if take {
                        return Ok(StepResult::Goto(
                            pb.step_index(&arm.goto).unwrap_or(pb.steps.len()),
                        ));
                    }
                }
                Ok(StepResult::Next)
            }
            StepKind::Wait {
                until,
                timeout_secs,
                fail_on_timeout,
            } => {
                let started = run.step_started_at.unwrap_or(now);
                let deadline = add(started, Duration::from_secs(*timeout_secs));
                if let Some(c) = until {
                    match self.templates.truthy(c, &ctx) {
                        Ok(true) => return Ok(StepResult::Next),
                        Ok(false) => {}
                        Err(e) => return Ok(StepResult::Failed(self.tmpl_err(pb, step, e))),
                    }
                }
                if now >= deadline {
                    if until.is_some() && *fail_on_timeout {
                        return Ok(StepResult::Failed(format!(
                            "waited {timeout_secs} s and the condition did not hold"
                        )));
                    }
                    return Ok(StepResult::Next);
                }
                Ok(StepResult::Wait(Some(deadline)))
            }
            StepKind::Set { .. }
            | StepKind::Tag { .. }
            | StepKind::Note { .. }
            | StepKind::Assign { .. } => self.case_step(run, pb, step, &ctx, held).await,
            StepKind::Approval {
                message,
                quorum,
                timeout_secs,
            } => {
                let id = action_id(&run.id, &step.id, 0);
                let found = if held.fresh {
                    None
                } else {
                    self.store.action(&id).await?
                };
                let rec = match found {
                    Some(r) => r,
                    None => {
                        let text = match message {
                            Some(m) => match self.templates.render(m, &ctx) {
                                Ok(t) => Some(t),
                                Err(e) => {
                                    return Ok(StepResult::Failed(self.tmpl_err(pb, step, e)));
                                }
                            },
                            None => None,
                        };
                        let rule = self
                            .policy
                            .gate_for_step(*quorum, timeout_secs.map(Duration::from_secs));
                        let rec = ActionRecord {
                            id: id.clone(),
                            run_id: Some(run.id.clone()),
                            step_id: step.id.clone(),
                            item: 0,
                            kind: ActionKind::Gate,
                            connector: GATE_CONNECTOR.into(),
                            operation: "approval".into(),
                            class: Class::Approve,
                            params: json!({"message": text}),
                            undo: Value::Null,
                            reason: None,
                            approval: Some(ApprovalState::new(rule, &run.requested_by, now)),
                            state: ActionState::AwaitingApproval,
                            attempts: 0,
                            max_attempts: 0,
                            backoff_secs: 0,
                            timeout_secs: 0,
                            expires_at: None,
                            expires_secs: None,
                            case_id: run.case_id.clone(),
                            requested_by: run.requested_by.clone(),
                            version: 1,
                            created_at: now,
                            updated_at: now,
                        };
                        let entry = audit(
                            &run.requested_by,
                            "approval.request",
                            json!({"action": id, "run": run.id, "step": step.id, "message": text}),
                        );
                        let write = RunWrite::InsertAction {
                            action: rec.clone(),
                            audits: vec![entry],
                        };
                        if self.commit(held, vec![write]).await? {
                            self.notify_approvers(&rec, run, pb, now).await;
                            rec
                        } else {
                            self.store
                                .action(&id)
                                .await?
                                .ok_or_else(|| conflict(&format!("action {id}")))?
                        }
                    }
                };
                let rec = self.settle_gate(rec, run, now).await?;
                match &rec.state {
                    ActionState::AwaitingApproval => {
                        Ok(StepResult::Wait(rec.approval.as_ref().map(|a| a.deadline)))
                    }
                    ActionState::Denied { decision, .. } => Ok(StepResult::Failed(format!(
                        "approval {}",
                        decision_word(*decision)
                    ))),
                    _ => {
                        run.outputs.insert(
                            step.id.clone(),
                            json!({"approved_by": rec.approval.as_ref().map(|a| a.votes.iter().filter(|v| v.approve).map(|v| v.principal.clone()).collect::<Vec<_>>())}),
                        );
                        Ok(StepResult::Next)
                    }
                }
            }
            StepKind::Action { .. } | StepKind::Notify { .. } => {
                self.action_step(run, pb, step, &ctx, held, now).await
            }
        }
    }

    async fn case_step(
        &self,
        run: &mut Run,
        pb: &Playbook,
        step: &Step,
        ctx: &Value,
        held: &mut Held,
    ) -> Result<StepResult, RespondError> {
        let Some(case_id) = run.case_id.clone() else {
            return Ok(StepResult::Failed(format!(
                "a `{}` step needs a case, and this run has none",
                step.kind.name()
            )));
        };
        let items = match self.items(pb, step, ctx) {
            Ok(i) => i,
            Err(e) => return Ok(StepResult::Failed(e)),
        };
        for (i, item) in items.into_iter().enumerate() {
            let mut ictx = ctx.clone();
            ictx["item"] = item;
            let r = |s: &str| self.templates.render(s, &ictx);
            let change = match &step.kind {
                StepKind::Set { fields } => {
                    let mut out = BTreeMap::new();
                    for (k, v) in fields {
                        match r(v) {
                            Ok(t) => {
                                out.insert(k.clone(), t);
                            }
                            Err(e) => return Ok(StepResult::Failed(self.tmpl_err(pb, step, e))),
                        }
                    }
                    Change::Set { fields: out }
                }
                StepKind::Tag { tags } => {
                    let mut out = Vec::new();
                    for t in tags {
                        match r(t) {
                            Ok(t) if !t.trim().is_empty() => out.push(t.trim().to_string()),
                            Ok(_) => {}
                            Err(e) => return Ok(StepResult::Failed(self.tmpl_err(pb, step, e))),
                        }
                    }
                    Change::Tag { tags: out }
                }
                StepKind::Note { text } => match r(text) {
                    Ok(t) => Change::Note { text: t },
                    Err(e) => return Ok(StepResult::Failed(self.tmpl_err(pb, step, e))),
                },
                StepKind::Assign { to } => match r(to) {
                    Ok(t) => Change::Assign { to: t },
                    Err(e) => return Ok(StepResult::Failed(self.tmpl_err(pb, step, e))),
                },
                _ => return Ok(StepResult::Next),
            };
            let key = action_id(&run.id, &step.id, i as u32);
            let cc = CaseChange {
                key: key.clone(),
                case_id: case_id.clone(),
                run_id: run.id.clone(),
                step_id: step.id.clone(),
                change,
            };
            let entry = audit(
                &format!("playbook:{}", pb.id),
                "case.change",
                json!({"case": case_id, "run": run.id, "step": step.id, "key": key, "change": cc.change}),
            );
            // A change applied before is skipped, never refused.
            self.commit(
                held,
                vec![RunWrite::CaseChange {
                    change: cc,
                    audits: vec![entry],
                }],
            )
            .await?;
        }
        run.outputs.insert(step.id.clone(), json!({"done": true}));
        Ok(StepResult::Next)
    }

    /// Expires or opens (by tier) a waiting gate; returns the record as it now stands.
    /// Tells the approval notifiers that `rec` waits. Best effort and bounded: a notifier
    /// that fails or is slow is on the record (`approval.notify_failed`) and changes nothing
    /// else; the approval stays answerable through the API and the CLI, and times out to
    /// deny as always.
    async fn notify_approvers(&self, rec: &ActionRecord, run: &Run, pb: &Playbook, now: Timestamp) {
        for name in &self.approval_notifiers {
            let Some(c) = self.connectors.get(name) else {
                continue;
            };
            let approval = rec.approval.as_ref();
            let what = if rec.kind == ActionKind::Gate {
                format!("approval step `{}` of playbook `{}`", rec.step_id, pb.id)
            } else {
                format!("{}.{}", rec.connector, rec.operation)
            };
            let action = json!({
                "id": rec.id, "connector": rec.connector, "operation": rec.operation,
                "what": what, "class": rec.class, "params": rec.params, "reason": rec.reason,
                "case_id": rec.case_id, "requested_by": rec.requested_by,
                "deadline": approval.map(|a| a.deadline),
                "quorum": approval.map(|a| a.rule.quorum),
                "reason_required": approval.map(|a| a.rule.reason_required),
                "until_tier": approval.and_then(|a| a.rule.until_tier),
            });
            let case = rec
                .case_id
                .as_deref()
                .map(|c| format!(" (case {c})"))
                .unwrap_or_default();
            let message = format!(
                "riposte: {what}{case} awaits approval; answer with `riposte actions approve {}` or `reject`",
                rec.id
            );
            let operation = if c.operation("request_approval").is_some() {
                "request_approval"
            } else {
                "notify"
            };
            let req = CallRequest {
                action_id: rec.id.clone(),
                idempotency_key: format!("{}:approval:{name}", rec.id),
                operation: operation.into(),
                params: json!({"action": action, "message": message}),
                undo: Value::Null,
                context: json!({
                    "case": run.case, "alert": run.alert,
                    "playbook": {"id": pb.id, "name": pb.name, "version": pb.version},
                    "run": {"id": run.id},
                }),
                timeout: APPROVAL_NOTIFY_TIMEOUT,
            };
            let result = tokio::time::timeout(APPROVAL_NOTIFY_TIMEOUT, c.call(&req)).await;
            let entry = match result {
                Ok(Ok(out)) => audit(
                    "system",
                    "approval.notified",
                    json!({"action": rec.id, "via": name, "fields": out.fields, "at": now}),
                ),
                Ok(Err(e)) => {
                    tracing::warn!(action = %rec.id, notifier = %name, error = %e, "cannot tell approvers");
                    audit(
                        "system",
                        "approval.notify_failed",
                        json!({"action": rec.id, "via": name, "error": e.to_string()}),
                    )
                }
                Err(_) => {
                    tracing::warn!(action = %rec.id, notifier = %name, "telling approvers timed out");
                    audit(
                        "system",
                        "approval.notify_failed",
                        json!({"action": rec.id, "via": name, "error": "no answer in time"}),
                    )
                }
            };
            if let Err(e) = self.store.record(entry).await {
                tracing::warn!(action = %rec.id, error = %e, "cannot record the approval notice");
            }
        }
    }

    async fn settle_gate(
        &self,
        mut rec: ActionRecord,
        run: &Run,
        now: Timestamp,
    ) -> Result<ActionRecord, RespondError> {
        if rec.state != ActionState::AwaitingApproval {
            return Ok(rec);
        }
        let Some(appr) = rec.approval.as_mut() else {
            return Ok(rec);
        };
        let (verb, detail) = if appr.expire(now) {
            rec.state = ActionState::Denied {
                decision: Decision::Expired,
                at: now,
            };
            ("approval.expired", json!({"deadline": appr.deadline}))
        } else if let Some(t) = run.tier()
            && appr.tier_reached(t)
        {
            rec.state = ActionState::Ready;
            ("approval.tier_reached", json!({"tier": t}))
        } else if appr.decision == Some(Decision::Approved) {
            rec.state = ActionState::Ready;
            ("approval.approved", json!({}))
        } else {
            return Ok(rec);
        };
        if rec.kind == ActionKind::Gate && rec.state == ActionState::Ready {
            rec.state = ActionState::Succeeded {
                outcome: CallOutcome::default(),
                at: now,
            };
        }
        let mut detail = detail;
        detail["action"] = json!(rec.id);
        self.write_action(&mut rec, now, "system", verb, detail)
            .await?;
        Ok(rec)
    }

    async fn write_action(
        &self,
        rec: &mut ActionRecord,
        now: Timestamp,
        actor: &str,
        verb: &str,
        detail: Value,
    ) -> Result<(), RespondError> {
        rec.version += 1;
        rec.updated_at = now;
        if self
            .store
            .update_action(rec, audit(actor, verb, detail))
            .await?
        {
            Ok(())
        } else {
            Err(conflict(&format!("action {}", rec.id)))
        }
    }

    fn safe_to_repeat(&self, rec: &ActionRecord) -> bool {
        let Some(c) = self.connectors.get(&rec.connector) else {
            return false;
        };
        c.sends_idempotency_key(&rec.operation)
            || c.operation(&rec.operation).is_some_and(|o| o.idempotent)
    }

    #[allow(clippy::too_many_arguments)]
    fn new_action(
        &self,
        run: &Run,
        step: &Step,
        item: u32,
        connector: &str,
        spec: &OperationSpec,
        params: Value,
        reason: Option<String>,
        now: Timestamp,
    ) -> ActionRecord {
        let class = self.policy.class_of(connector, spec);
        let gate = self.policy.gate(connector, &spec.name, class, run.tier());
        let (state, approval) = match gate {
            Gate::Open => (ActionState::Ready, None),
            Gate::Approval(rule) => (
                ActionState::AwaitingApproval,
                Some(ApprovalState::new(rule, &run.requested_by, now)),
            ),
        };
        ActionRecord {
            id: action_id(&run.id, &step.id, item),
            run_id: Some(run.id.clone()),
            step_id: step.id.clone(),
            item,
            kind: ActionKind::Call,
            connector: connector.to_string(),
            operation: spec.name.clone(),
            class,
            params,
            undo: Value::Null,
            reason,
            approval,
            state,
            attempts: 0,
            max_attempts: step.retry.attempts,
            backoff_secs: step.retry.backoff_secs,
            timeout_secs: step.timeout_secs,
            expires_at: None,
            expires_secs: step.expires_secs,
            case_id: run.case_id.clone(),
            requested_by: run.requested_by.clone(),
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    async fn action_step(
        &self,
        run: &mut Run,
        pb: &Playbook,
        step: &Step,
        ctx: &Value,
        held: &mut Held,
        now: Timestamp,
    ) -> Result<StepResult, RespondError> {
        let (connector, operation) = match &step.kind {
            StepKind::Action {
                connector,
                operation,
                ..
            } => (connector.as_str(), operation.as_str()),
            StepKind::Notify { via, .. } => (via.as_str(), "notify"),
            _ => return Ok(StepResult::Next),
        };
        let Some(spec) = self.connectors.spec(connector, operation).cloned() else {
            return Ok(StepResult::Failed(format!(
                "no connector operation `{connector}.{operation}` is configured"
            )));
        };
        let items = match self.items(pb, step, ctx) {
            Ok(i) => i,
            Err(e) => return Ok(StepResult::Failed(e)),
        };
        let concurrency = step
            .for_each
            .as_ref()
            .map(|f| f.concurrency as usize)
            .unwrap_or(1)
            .max(1);
        // When every item is sent at once, an action whose gate is open is inserted already
        // `sending`: the insert is as exclusive as the compare-and-set it replaces (one
        // driver's insert applies), and it saves a write before the call. Items sent in
        // several rounds are claimed round by round, so none is `sending` before its turn.
        let send_at_once = items.len() <= concurrency;
        let mut records = Vec::with_capacity(items.len());
        let mut claimed = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let id = action_id(&run.id, &step.id, i as u32);
            // A run this drive created has no actions but the ones it inserts; were one there
            // (a branch back to this step), its insert is refused and it is read below.
            if !held.fresh
                && let Some(rec) = self.store.action(&id).await?
            {
                records.push(rec);
                continue;
            }
            let mut ictx = ctx.clone();
            ictx["item"] = item.clone();
            let rendered = match &step.kind {
                StepKind::Action { params, reason, .. } => {
                    self.templates.render_value(params, &ictx).and_then(|p| {
                        let r = reason
                            .as_ref()
                            .map(|r| self.templates.render(r, &ictx))
                            .transpose()?;
                        Ok((p, r))
                    })
                }
                StepKind::Notify { message, .. } => self
                    .templates
                    .render(message, &ictx)
                    .map(|m| (json!({"message": m}), None)),
                _ => Ok((Value::Null, None)),
            };
            let (params, reason) = match rendered {
                Ok(x) => x,
                Err(e) => return Ok(StepResult::Failed(self.tmpl_err(pb, step, e))),
            };
            let mut rec =
                self.new_action(run, step, i as u32, connector, &spec, params, reason, now);
            let mut audits = vec![audit(
                &run.requested_by,
                "action.request",
                json!({"action": rec.id, "run": run.id, "step": step.id, "item": i,
                       "operation": format!("{connector}.{operation}"), "class": rec.class,
                       "params": rec.params, "gate": rec.state.name(), "case": run.case_id}),
            )];
            let sending = send_at_once && rec.state == ActionState::Ready;
            if sending {
                audits.push(claim(&mut rec, now));
            }
            let write = RunWrite::InsertAction {
                action: rec.clone(),
                audits,
            };
            if !self.commit(held, vec![write]).await? {
                // Someone else created it between our read and write: use theirs.
                match self.store.action(&id).await? {
                    Some(r) => records.push(r),
                    None => return Err(conflict(&format!("action {id}"))),
                }
                continue;
            }
            if rec.state == ActionState::AwaitingApproval {
                self.notify_approvers(&rec, run, pb, now).await;
            }
            if sending {
                claimed.push(rec);
            } else {
                records.push(rec);
            }
        }

        let call_ctx = json!({
            "case": run.case, "alert": run.alert,
            "playbook": {"id": pb.id, "name": pb.name, "version": pb.version},
            "run": {"id": run.id},
        });
        let mut wake: Option<Timestamp> = None;
        let mut waiting = false;
        let mut failures = Vec::new();
        let mut ready = Vec::new();
        let mut outputs: Vec<Value> = vec![Value::Null; items.len()];
        for rec in records {
            let rec = self.settle_gate(rec, run, now).await?;
            match &rec.state {
                ActionState::AwaitingApproval => {
                    waiting = true;
                    if let Some(a) = &rec.approval {
                        wake = earliest(wake, a.deadline);
                    }
                }
                ActionState::Ready => ready.push(rec),
                ActionState::Backoff { until, .. } => {
                    if now >= *until {
                        ready.push(rec);
                    } else {
                        waiting = true;
                        wake = earliest(wake, *until);
                    }
                }
                ActionState::Sending { .. } => {
                    // Found sending: the process stopped between the send and its result.
                    match self.resume_sent(rec, &call_ctx, now).await? {
                        Resumed::Done(rec) => {
                            if let ActionState::Succeeded { outcome, .. } = &rec.state {
                                outputs[rec.item as usize] = Value::Object(outcome.fields.clone());
                            }
                        }
                        Resumed::Resend(rec) => ready.push(rec),
                        Resumed::Uncertain(rec) => failures.push(format!(
                            "action {} was sent before a restart and its result is unknown; check `{}.{}` by hand",
                            rec.id, rec.connector, rec.operation
                        )),
                    }
                }
                ActionState::Succeeded { outcome, .. } => {
                    outputs[rec.item as usize] = Value::Object(outcome.fields.clone());
                }
                ActionState::Undone { .. } => {
                    outputs[rec.item as usize] = json!({"undone": true});
                }
                ActionState::Failed { error, .. } => failures.push(error.clone()),
                ActionState::Denied { decision, .. } => failures.push(format!(
                    "`{}.{}` was not approved: approval {}",
                    rec.connector,
                    rec.operation,
                    decision_word(*decision)
                )),
                ActionState::Uncertain { .. } => failures.push(format!(
                    "action {} has an unknown outcome; check `{}.{}` by hand",
                    rec.id, rec.connector, rec.operation
                )),
            }
        }

        let mut rounds: Vec<(Vec<ActionRecord>, Vec<ActionRecord>)> = Vec::new();
        if !claimed.is_empty() {
            rounds.push((Vec::new(), claimed));
        }
        rounds.extend(ready.chunks(concurrency).map(|c| (c.to_vec(), Vec::new())));
        let last = rounds.len();
        for (round, (to_claim, claimed)) in rounds.into_iter().enumerate() {
            let (done, results) = self.send_all(to_claim, claimed, &call_ctx, now).await?;
            if round + 1 == last {
                // Made with the run's next write (the step's end, or the run's).
                held.writes.extend(results);
            } else if !self.commit(held, results).await? {
                return Err(conflict("an action's result"));
            }
            for rec in done {
                match &rec.state {
                    ActionState::Succeeded { outcome, .. } => {
                        outputs[rec.item as usize] = Value::Object(outcome.fields.clone());
                    }
                    ActionState::Backoff { until, .. } => {
                        waiting = true;
                        wake = earliest(wake, *until);
                    }
                    ActionState::Failed { error, .. } => failures.push(error.clone()),
                    // Another driver took it: it will record the result; look again later.
                    _ => waiting = true,
                }
            }
        }
        if waiting {
            return Ok(StepResult::Wait(wake));
        }
        if !failures.is_empty() {
            return Ok(StepResult::Failed(failures.join("; ")));
        }
        let out = if step.for_each.is_some() {
            json!({"items": outputs})
        } else {
            json!({"fields": outputs.into_iter().next().unwrap_or(Value::Null)})
        };
        run.outputs.insert(step.id.clone(), out);
        Ok(StepResult::Next)
    }

    /// An action found `sending`: the process stopped between its send and its result. When
    /// the operation offers a check, the far side is asked whether the call took effect, and
    /// a call that did is recorded as succeeded without being sent again. Otherwise the call
    /// is sent again when that is safe (idempotent, or carrying its idempotency key), and
    /// marked uncertain when it is not.
    async fn resume_sent(
        &self,
        mut rec: ActionRecord,
        ctx: &Value,
        now: Timestamp,
    ) -> Result<Resumed, RespondError> {
        if let Some(conn) = self.connectors.get(&rec.connector).cloned() {
            let req = call_request(&rec, ctx);
            if let Some(check) = conn.check(&req) {
                let limit = req.timeout + Duration::from_secs(5);
                let answer = tokio::time::timeout(limit, check).await.unwrap_or(Err(
                    ConnectorError::Timeout {
                        secs: limit.as_secs(),
                    },
                ));
                let detail = match answer {
                    Ok(Some(outcome)) => {
                        let detail = succeed(&mut rec, outcome, now);
                        self.write_action(&mut rec, now, "system", "action.reconciled", detail)
                            .await?;
                        return Ok(Resumed::Done(rec));
                    }
                    Ok(None) => json!({"action": rec.id, "done": false}),
                    Err(e) => json!({"action": rec.id, "error": e.to_string()}),
                };
                self.store
                    .record(audit("system", "action.check", detail))
                    .await?;
            }
        }
        if self.safe_to_repeat(&rec) {
            return Ok(Resumed::Resend(rec));
        }
        rec.state = ActionState::Uncertain { at: now };
        let detail = json!({"action": rec.id, "why": "sent before a restart, result unknown; not repeated: the operation is not idempotent, carries no idempotency key and offers no check"});
        self.write_action(&mut rec, now, "system", "action.uncertain", detail)
            .await?;
        Ok(Resumed::Uncertain(rec))
    }

    /// Records each action of `recs` as sent (those of `claimed` are recorded so already),
    /// calls them together and gives back the records as they stand after with the writes
    /// that record the results, for the caller to make. One another driver had already
    /// taken comes back as it was.
    async fn send_all(
        &self,
        recs: Vec<ActionRecord>,
        mut claimed: Vec<ActionRecord>,
        ctx: &Value,
        now: Timestamp,
    ) -> Result<(Vec<ActionRecord>, Vec<RunWrite>), RespondError> {
        let mut out = Vec::new();
        for mut rec in recs {
            let before = rec.version;
            let entry = claim(&mut rec, now);
            rec.version = before + 1;
            if self.store.update_action(&rec, entry).await? {
                claimed.push(rec);
            } else {
                out.push(rec);
            }
        }
        if claimed.iter().any(|r| r.class > Class::Auto) {
            // Recorded before it is sent. A call that acts on the world (`approve`, `review`)
            // waits until its `sending` record would outlive a power loss. An `auto` call
            // (a look-up, a tag, a note) leaves on the write alone, which outlives a crash
            // of the process; the next tick's flush, within a second, covers power loss.
            self.store.flush().await?;
        }
        let mut set = tokio::task::JoinSet::new();
        for (i, rec) in claimed.iter().enumerate() {
            let Some(conn) = self.connectors.get(&rec.connector).cloned() else {
                let e = ConnectorError::Config {
                    message: format!("no connector `{}` is configured", rec.connector),
                };
                set.spawn(async move { (i, Err(e)) });
                continue;
            };
            let req = call_request(rec, ctx);
            set.spawn(async move {
                // The connector times out its own call; this is the backstop.
                let limit = req.timeout + Duration::from_secs(5);
                let r = match tokio::time::timeout(limit, conn.call(&req)).await {
                    Ok(r) => r,
                    Err(_) => Err(ConnectorError::Timeout {
                        secs: limit.as_secs(),
                    }),
                };
                (i, r)
            });
        }
        let mut results: Vec<Option<Result<CallOutcome, ConnectorError>>> =
            (0..claimed.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, r)) => results[i] = Some(r),
                Err(e) => {
                    tracing::error!(error = %e, "a connector call panicked");
                }
            }
        }
        let calls = results;
        let mut results = Vec::with_capacity(calls.len());
        for (mut rec, result) in claimed.into_iter().zip(calls) {
            let result = result.unwrap_or_else(|| {
                Err(ConnectorError::Transient {
                    message: "the connector call panicked".into(),
                })
            });
            let (verb, detail) = match result {
                Ok(outcome) => ("action.result", succeed(&mut rec, outcome, now)),
                Err(e) => {
                    if e.retryable() && rec.attempts < rec.max_attempts && self.safe_to_repeat(&rec)
                    {
                        let backoff = Duration::from_secs(
                            rec.backoff_secs
                                .saturating_mul(1u64 << (rec.attempts - 1).min(10)),
                        );
                        let wait = e.retry_after().unwrap_or_default().max(backoff);
                        let until = add(now, wait);
                        let d = json!({"action": rec.id, "attempt": rec.attempts, "error": e.to_string(),
                                       "retry_at": until});
                        rec.state = ActionState::Backoff {
                            attempt: rec.attempts,
                            until,
                            error: e,
                        };
                        ("action.retry", d)
                    } else {
                        let msg = format!(
                            "`{}.{}` failed after {} attempt(s): {e}",
                            rec.connector, rec.operation, rec.attempts
                        );
                        let d = json!({"action": rec.id, "attempt": rec.attempts, "error": e.to_string()});
                        rec.state = ActionState::Failed {
                            error: msg,
                            at: now,
                        };
                        ("action.failed", d)
                    }
                }
            };
            rec.version += 1;
            rec.updated_at = now;
            let entry = audit(&rec.requested_by, verb, detail);
            results.push(RunWrite::UpdateAction {
                action: rec.clone(),
                audits: vec![entry],
            });
            out.push(rec);
        }
        Ok((out, results))
    }

    /// An approver's answer. Applied exactly once: the write is compare-and-set, and the
    /// answer that decides the approval resumes the run.
    pub async fn answer(
        &self,
        action: &str,
        principal: &str,
        approve: bool,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<ApprovalStatus, RespondError> {
        for _ in 0..5 {
            let mut rec = self
                .store
                .action(action)
                .await?
                .ok_or_else(|| RespondError::UnknownAction(action.into()))?;
            let approval_err = |source| RespondError::Approval {
                action: action.into(),
                source,
            };
            let Some(appr) = rec.approval.as_mut() else {
                return Err(approval_err(ApprovalError::NotWaiting));
            };
            if rec.state != ActionState::AwaitingApproval {
                return Err(approval_err(match appr.decision {
                    Some(d) => ApprovalError::AlreadyDecided(d),
                    None => ApprovalError::NotWaiting,
                }));
            }
            let status = match appr.answer(principal, approve, reason, now) {
                Ok(s) => s,
                Err(ApprovalError::Expired { deadline }) => {
                    rec.state = ActionState::Denied {
                        decision: Decision::Expired,
                        at: now,
                    };
                    let detail = json!({"action": rec.id, "deadline": deadline, "late_answer_by": principal});
                    rec.version += 1;
                    rec.updated_at = now;
                    if self
                        .store
                        .update_action(&rec, audit("system", "approval.expired", detail))
                        .await?
                        && let Some(run) = &rec.run_id
                    {
                        self.drive(run, now).await?;
                    }
                    return Err(approval_err(ApprovalError::Expired { deadline }));
                }
                Err(e) => {
                    // Refusals are on the record too (who tried what).
                    let detail = json!({"action": rec.id, "principal": principal, "approve": approve, "refused": e.to_string()});
                    self.store
                        .record(audit(principal, "approval.refused", detail))
                        .await?;
                    self.store.flush().await?;
                    return Err(approval_err(e));
                }
            };
            match status {
                ApprovalStatus::Decided(Decision::Approved) => {
                    rec.state = if rec.kind == ActionKind::Gate {
                        ActionState::Succeeded {
                            outcome: CallOutcome::default(),
                            at: now,
                        }
                    } else {
                        ActionState::Ready
                    }
                }
                ApprovalStatus::Decided(d) => {
                    rec.state = ActionState::Denied {
                        decision: d,
                        at: now,
                    }
                }
                ApprovalStatus::Pending { .. } => {}
            }
            rec.version += 1;
            rec.updated_at = now;
            let detail = json!({"action": rec.id, "approve": approve, "reason": reason,
                                "status": match status { ApprovalStatus::Pending { approvals, needed } => json!({"pending": {"approvals": approvals, "needed": needed}}),
                                                         ApprovalStatus::Decided(d) => json!(d) }});
            if !self
                .store
                .update_action(&rec, audit(principal, "approval.answer", detail))
                .await?
            {
                continue;
            }
            // A person's answer is acknowledged only once it is durable.
            self.store.flush().await?;
            if let (ApprovalStatus::Decided(_), Some(run)) = (status, &rec.run_id) {
                self.drive(run, now).await?;
            }
            return Ok(status);
        }
        Err(conflict(&format!("action {action}")))
    }

    /// Runs the inverse of a succeeded action. A second call returns the first inverse.
    pub async fn undo(
        &self,
        action: &str,
        principal: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<ActionRecord, RespondError> {
        let inverse = self.start_undo(action, principal, reason, now).await?;
        self.store.flush().await?;
        Ok(inverse)
    }

    async fn start_undo(
        &self,
        action: &str,
        principal: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<ActionRecord, RespondError> {
        let rec = self
            .store
            .action(action)
            .await?
            .ok_or_else(|| RespondError::UnknownAction(action.into()))?;
        let not = |reason: &str| RespondError::NotUndoable {
            action: action.into(),
            reason: reason.into(),
        };
        let inv_id = inverse_id(&rec.id);
        if let Some(existing) = self.store.action(&inv_id).await? {
            return self.finish_inverse(existing, now).await;
        }
        let outcome = match &rec.state {
            ActionState::Succeeded { outcome, .. } => outcome.clone(),
            ActionState::Undone { .. } => return Err(not("it is already undone")),
            other => {
                return Err(not(&format!(
                    "it is `{}`, and only a succeeded action can be undone",
                    other.name()
                )));
            }
        };
        let spec = self
            .connectors
            .spec(&rec.connector, &rec.operation)
            .ok_or_else(|| RespondError::UnknownConnector(rec.connector.clone()))?;
        let Some(inverse) = spec.inverse.clone() else {
            return Err(not(&format!(
                "`{}.{}` declares no inverse",
                rec.connector, rec.operation
            )));
        };
        let inv_spec = self
            .connectors
            .spec(&rec.connector, &inverse)
            .ok_or_else(|| not(&format!("its inverse `{inverse}` is not configured")))?;
        let class = self.policy.class_of(&rec.connector, inv_spec);
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if class == Class::Review && reason.is_none() {
            return Err(RespondError::Approval {
                action: action.into(),
                source: ApprovalError::ReasonRequired,
            });
        }
        let inv = ActionRecord {
            id: inv_id.clone(),
            run_id: None,
            step_id: rec.step_id.clone(),
            item: rec.item,
            kind: ActionKind::Inverse { of: rec.id.clone() },
            connector: rec.connector.clone(),
            operation: inverse.clone(),
            class,
            params: rec.params.clone(),
            undo: outcome.undo.clone(),
            reason: reason.map(str::to_string),
            // The undo click is itself a person's decision: no second gate.
            approval: None,
            state: ActionState::Ready,
            attempts: 0,
            max_attempts: 3,
            backoff_secs: 5,
            timeout_secs: rec.timeout_secs,
            expires_at: None,
            expires_secs: None,
            case_id: rec.case_id.clone(),
            requested_by: principal.to_string(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let entry = audit(
            principal,
            "action.undo",
            json!({"action": rec.id, "inverse": inv_id, "operation": format!("{}.{inverse}", rec.connector),
                   "reason": reason}),
        );
        if !self.store.insert_action(&inv, entry).await? {
            let existing = self
                .store
                .action(&inv_id)
                .await?
                .ok_or_else(|| conflict(&format!("action {inv_id}")))?;
            return self.finish_inverse(existing, now).await;
        }
        self.finish_inverse(inv, now).await
    }

    /// Sends an inverse that is ready (or due after a back-off) and marks its original undone
    /// once it succeeded.
    async fn finish_inverse(
        &self,
        inv: ActionRecord,
        now: Timestamp,
    ) -> Result<ActionRecord, RespondError> {
        let ActionKind::Inverse { of } = inv.kind.clone() else {
            return Ok(inv);
        };
        let ctx = json!({"case": {"id": inv.case_id}});
        let due = match &inv.state {
            ActionState::Ready => true,
            ActionState::Backoff { until, .. } => now >= *until,
            ActionState::Sending { .. } => {
                return match self.resume_sent(inv, &ctx, now).await? {
                    Resumed::Done(inv) => self.mark_undone(&of, inv, now).await,
                    Resumed::Resend(inv) => self.send_inverse(&of, inv, &ctx, now).await,
                    Resumed::Uncertain(inv) => Ok(inv),
                };
            }
            _ => false,
        };
        if due {
            self.send_inverse(&of, inv, &ctx, now).await
        } else {
            self.mark_undone(&of, inv, now).await
        }
    }

    async fn send_inverse(
        &self,
        of: &str,
        inv: ActionRecord,
        ctx: &Value,
        now: Timestamp,
    ) -> Result<ActionRecord, RespondError> {
        let (done, results) = self.send_all(vec![inv], Vec::new(), ctx, now).await?;
        if !self.store.commit(results).await? {
            return Err(conflict("inverse action"));
        }
        let inv = done
            .into_iter()
            .next()
            .ok_or_else(|| conflict("inverse action"))?;
        self.mark_undone(of, inv, now).await
    }

    /// Once an inverse succeeded, its original is `undone`.
    async fn mark_undone(
        &self,
        of: &str,
        inv: ActionRecord,
        now: Timestamp,
    ) -> Result<ActionRecord, RespondError> {
        if matches!(inv.state, ActionState::Succeeded { .. })
            && let Some(mut orig) = self.store.action(of).await?
            && matches!(orig.state, ActionState::Succeeded { .. })
        {
            orig.state = ActionState::Undone {
                by: inv.requested_by.clone(),
                at: now,
                inverse: inv.id.clone(),
            };
            orig.expires_at = None;
            let detail = json!({"action": orig.id, "inverse": inv.id});
            let actor = inv.requested_by.clone();
            self.write_action(&mut orig, now, &actor, "action.undone", detail)
                .await?;
        }
        Ok(inv)
    }

    /// Keeps an expiring action: it will not revert itself.
    pub async fn confirm(
        &self,
        action: &str,
        principal: &str,
        now: Timestamp,
    ) -> Result<ActionRecord, RespondError> {
        let mut rec = self
            .store
            .action(action)
            .await?
            .ok_or_else(|| RespondError::UnknownAction(action.into()))?;
        if rec.expires_at.is_none() {
            return Ok(rec);
        }
        rec.expires_at = None;
        let detail = json!({"action": rec.id});
        self.write_action(&mut rec, now, principal, "action.confirm", detail)
            .await?;
        self.store.flush().await?;
        Ok(rec)
    }

    /// The periodic pass: denies approvals whose time is up, sends what a back-off held,
    /// reverts expired actions, and resumes runs that are due — including runs a crash
    /// interrupted. Returns how many runs it drove.
    pub async fn tick(&self, now: Timestamp) -> Result<usize, RespondError> {
        for rec in self.store.open_actions().await? {
            match (&rec.kind, &rec.state) {
                (ActionKind::Inverse { .. }, _) => {
                    self.finish_inverse(rec, now).await?;
                }
                (_, ActionState::Succeeded { .. }) if rec.expires_at.is_some_and(|t| now >= t) => {
                    match self
                        .undo(&rec.id, "system:expiry", Some("expired"), now)
                        .await
                    {
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(action = %rec.id, error = %e, "expiry revert failed")
                        }
                    }
                }
                _ => {}
            }
        }
        // Runs with an action free to send, or found `sending` with no driver at it (the
        // process stopped between an approval, or a send, and the result): due now, whatever
        // their wake time says. A run some driver holds is left to it.
        let mut pending = std::collections::BTreeSet::new();
        for rec in self.store.open_actions().await? {
            if let (ActionKind::Call | ActionKind::Gate, Some(run)) = (&rec.kind, &rec.run_id)
                && matches!(rec.state, ActionState::Ready | ActionState::Sending { .. })
                && self.lock_for(run).try_lock().is_ok()
            {
                pending.insert(run.clone());
            }
        }
        let mut driven = 0;
        for run in self.store.open_runs().await? {
            let due = run.status == RunStatus::Running
                || run.wake_at.is_some_and(|t| now >= t)
                || pending.contains(&run.id);
            if due {
                self.drive(&run.id, now).await?;
                driven += 1;
            }
        }
        // Whatever `auto` calls left unsynced since the last tick.
        self.store.flush().await?;
        Ok(driven)
    }
}

/// What became of an action found `sending` after a restart.
enum Resumed {
    /// The far side says it took effect: recorded as succeeded.
    Done(ActionRecord),
    /// Safe to send again.
    Resend(ActionRecord),
    /// Recorded as uncertain: a person must look.
    Uncertain(ActionRecord),
}

/// Marks `rec` as being sent (its next attempt) and gives the audit record that says so.
/// The caller sets the version its write needs.
fn claim(rec: &mut ActionRecord, now: Timestamp) -> AuditEntry {
    let attempt = rec.attempts + 1;
    rec.attempts = attempt;
    rec.state = ActionState::Sending { attempt, at: now };
    rec.updated_at = now;
    audit(
        &rec.requested_by,
        "action.send",
        json!({"action": rec.id, "operation": format!("{}.{}", rec.connector, rec.operation),
               "attempt": attempt, "idempotency_key": rec.id}),
    )
}

/// The call of `rec`, its idempotency key the action's id.
fn call_request(rec: &ActionRecord, ctx: &Value) -> CallRequest {
    CallRequest {
        action_id: rec.id.clone(),
        idempotency_key: rec.id.clone(),
        operation: rec.operation.clone(),
        params: rec.params.clone(),
        undo: rec.undo.clone(),
        context: ctx.clone(),
        timeout: Duration::from_secs(rec.timeout_secs.max(1)),
    }
}

/// Marks `rec` succeeded with `outcome` (starting its expiry, if it has one); returns the
/// audit detail of the result.
fn succeed(rec: &mut ActionRecord, outcome: CallOutcome, now: Timestamp) -> Value {
    rec.expires_at = rec.expires_secs.map(|s| add(now, Duration::from_secs(s)));
    let detail = json!({"action": rec.id, "status": outcome.status, "fields": outcome.fields,
                        "expires_at": rec.expires_at});
    rec.state = ActionState::Succeeded { outcome, at: now };
    detail
}

fn earliest(a: Option<Timestamp>, b: Timestamp) -> Option<Timestamp> {
    Some(a.map_or(b, |a| a.min(b)))
}

fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Approved => "approved",
        Decision::Rejected => "rejected",
        Decision::Expired => "timed out (denied)",
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
