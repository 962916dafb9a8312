//! The response engine in the server: what feeds it (case changes from [`LiveCases`], new
//! alerts, a periodic tick) and the `/api/v1/actions` and `/api/v1/runs` routes that let
//! people approve, reject, undo and confirm.
//!
//! The engine ([`riposte_respond::Engine`]) does the work; this module only hands it events
//! and answers, with the clock. Handlers reach it through [`Responder`], an object-safe face
//! of the engine, so that [`AppState`](crate::AppState) stays generic over the store alone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use riposte_domain::{Alert, Timestamp};
use riposte_respond::policy::{ApprovalError, ApprovalStatus};
use riposte_respond::{
    ActionRecord, Engine, RespondError, Run, RunStore, TriggerEvent, TriggerKind,
};
use riposte_store::Store;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::auth::{Permission, Principal};
use crate::http::{Answer, internal};
use crate::live::CaseUpdate;
use crate::{ApiError, AppState};

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, RespondError>> + Send + 'a>>;

/// What the API and the ingest path need of the engine.
pub trait Responder: Send + Sync {
    /// Whether some active playbook starts on `kind` (so the ingest path skips the work
    /// when none does).
    fn wants(&self, kind: TriggerKind) -> bool;
    fn on_event<'a>(&'a self, ev: TriggerEvent, now: Timestamp) -> BoxFut<'a, Vec<String>>;
    fn answer<'a>(
        &'a self,
        action: &'a str,
        principal: &'a str,
        approve: bool,
        reason: Option<&'a str>,
        now: Timestamp,
    ) -> BoxFut<'a, ApprovalStatus>;
    fn undo<'a>(
        &'a self,
        action: &'a str,
        principal: &'a str,
        reason: Option<&'a str>,
        now: Timestamp,
    ) -> BoxFut<'a, ActionRecord>;
    fn confirm<'a>(
        &'a self,
        action: &'a str,
        principal: &'a str,
        now: Timestamp,
    ) -> BoxFut<'a, ActionRecord>;
    fn action<'a>(&'a self, id: &'a str) -> BoxFut<'a, Option<ActionRecord>>;
    fn run<'a>(&'a self, id: &'a str) -> BoxFut<'a, Option<Run>>;
    fn actions_of_run<'a>(&'a self, id: &'a str) -> BoxFut<'a, Vec<ActionRecord>>;
    fn open_actions(&self) -> BoxFut<'_, Vec<ActionRecord>>;
}

/// The engine and the trigger kinds its active playbooks start on.
pub struct EngineHandle<S: RunStore> {
    pub engine: Arc<Engine<S>>,
    pub triggers: Vec<TriggerKind>,
}

impl<S: RunStore> Responder for EngineHandle<S> {
    fn wants(&self, kind: TriggerKind) -> bool {
        self.triggers.contains(&kind)
    }
    fn on_event<'a>(&'a self, ev: TriggerEvent, now: Timestamp) -> BoxFut<'a, Vec<String>> {
        Box::pin(async move { self.engine.on_event(&ev, now).await })
    }
    fn answer<'a>(
        &'a self,
        action: &'a str,
        principal: &'a str,
        approve: bool,
        reason: Option<&'a str>,
        now: Timestamp,
    ) -> BoxFut<'a, ApprovalStatus> {
        Box::pin(self.engine.answer(action, principal, approve, reason, now))
    }
    fn undo<'a>(
        &'a self,
        action: &'a str,
        principal: &'a str,
        reason: Option<&'a str>,
        now: Timestamp,
    ) -> BoxFut<'a, ActionRecord> {
        Box::pin(self.engine.undo(action, principal, reason, now))
    }
    fn confirm<'a>(
        &'a self,
        action: &'a str,
        principal: &'a str,
        now: Timestamp,
    ) -> BoxFut<'a, ActionRecord> {
        Box::pin(self.engine.confirm(action, principal, now))
    }
    fn action<'a>(&'a self, id: &'a str) -> BoxFut<'a, Option<ActionRecord>> {
        Box::pin(self.engine.store().action(id))
    }
    fn run<'a>(&'a self, id: &'a str) -> BoxFut<'a, Option<Run>> {
        Box::pin(self.engine.store().run(id))
    }
    fn actions_of_run<'a>(&'a self, id: &'a str) -> BoxFut<'a, Vec<ActionRecord>> {
        Box::pin(self.engine.store().actions_of_run(id))
    }
    fn open_actions(&self) -> BoxFut<'_, Vec<ActionRecord>> {
        Box::pin(self.engine.store().open_actions())
    }
}

/// Calls `tick` and `on_schedule` every `every`, for as long as the process runs: resumes
/// runs a restart interrupted, sends what a back-off held, denies approvals whose time is up
/// and reverts expired actions.
pub fn start_ticker<S: RunStore>(
    engine: Arc<Engine<S>>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            let now = Timestamp::now();
            if let Err(e) = engine.tick(now).await {
                tracing::warn!(error = %e, "response tick failed; the next one tries again");
            }
            if let Err(e) = engine.on_schedule(now).await {
                tracing::warn!(error = %e, "scheduled playbooks failed to start");
            }
        }
    })
}

/// The events one case update stands for: `case.created` or `case.updated` (`{case}@{seq}`),
/// and `case.tier_changed` (`{case}@{seq}:tier`) when the tier moved. Merges and
/// withdrawals start nothing.
pub fn case_events(u: &CaseUpdate) -> Vec<(TriggerKind, String)> {
    let key = format!("{}@{}", u.case, u.seq);
    let mut out = match u.change {
        "created" => vec![(TriggerKind::CaseCreated, key.clone())],
        "updated" => vec![(TriggerKind::CaseUpdated, key.clone())],
        _ => return Vec::new(),
    };
    if u.previous_tier.is_some() {
        out.push((TriggerKind::CaseTierChanged, format!("{key}:tier")));
    }
    out
}

/// Hands every case change to the engine, with the case document as the store has it now.
/// When it falls behind the broadcast (`Lagged`), it says so and goes on: runs waiting on a
/// case are resumed by the tick, and the skipped changes start no new runs.
pub fn follow_cases<S: Store + RunStore>(
    engine: Arc<Engine<S>>,
    store: Arc<S>,
    mut updates: broadcast::Receiver<CaseUpdate>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let u = match updates.recv().await {
                Ok(u) => u,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(
                        skipped = n,
                        "the response engine fell behind case changes; skipped ones start no runs"
                    );
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let events = case_events(&u);
            if events.is_empty() {
                continue;
            }
            let doc = match store.case(&u.case).await {
                Ok(Some(text)) => match serde_json::from_str::<Value>(&text) {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::error!(case = %u.case, error = %e, "stored case does not read back");
                        continue;
                    }
                },
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(case = %u.case, error = %e, "cannot read the case for playbooks");
                    continue;
                }
            };
            let now = Timestamp::now();
            for (kind, event_id) in events {
                let ev = TriggerEvent {
                    kind,
                    event_id,
                    case: Some(doc.clone()),
                    alert: None,
                    at: now,
                    requested_by: None,
                };
                if let Err(e) = engine.on_event(&ev, now).await {
                    tracing::warn!(case = %u.case, event = %ev.event_id, error = %e, "playbooks failed on a case change");
                }
            }
        }
    })
}

/// Starts the `alert.received` playbooks for alerts just stored, off the ingest path.
pub fn alerts_received(responder: Arc<dyn Responder>, alerts: &[Alert], new_ids: &[String]) {
    if !responder.wants(TriggerKind::AlertReceived) {
        return;
    }
    let new: std::collections::HashSet<&str> = new_ids.iter().map(String::as_str).collect();
    let docs: Vec<(String, Value)> = alerts
        .iter()
        .filter(|a| new.contains(a.id.as_str()))
        .filter_map(|a| Some((a.id.clone(), serde_json::to_value(a).ok()?)))
        .collect();
    if docs.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for (id, doc) in docs {
            let now = Timestamp::now();
            let ev = TriggerEvent {
                kind: TriggerKind::AlertReceived,
                event_id: id.clone(),
                case: None,
                alert: Some(doc),
                at: now,
                requested_by: None,
            };
            if let Err(e) = responder.on_event(ev, now).await {
                tracing::warn!(alert = %id, error = %e, "playbooks failed on a new alert");
            }
        }
    });
}

/// An engine error as an API answer.
pub(crate) fn api_error(e: RespondError) -> ApiError {
    let status = match &e {
        RespondError::UnknownAction(_) | RespondError::UnknownRun(_) => StatusCode::NOT_FOUND,
        RespondError::Approval { source, .. } => match source {
            ApprovalError::SelfApproval { .. } => StatusCode::FORBIDDEN,
            ApprovalError::ReasonRequired => StatusCode::UNPROCESSABLE_ENTITY,
            ApprovalError::AlreadyDecided(_)
            | ApprovalError::AlreadyVoted { .. }
            | ApprovalError::Expired { .. }
            | ApprovalError::NotWaiting => StatusCode::CONFLICT,
        },
        RespondError::NotUndoable { .. } | RespondError::Conflict { .. } => StatusCode::CONFLICT,
        RespondError::Store(_) => return internal(e),
        RespondError::Connector { .. } => StatusCode::BAD_GATEWAY,
        RespondError::UnknownConnector(_)
        | RespondError::UnknownPlaybook { .. }
        | RespondError::Template { .. } => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, e.to_string())
}

fn engine<S: Store>(state: &AppState<S>) -> Result<Arc<dyn Responder>, ApiError> {
    state.respond.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no response engine: the server runs without `respond:` in its configuration",
        )
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionsParams {
    state: Option<String>,
    case: Option<String>,
}

/// Open actions (waiting, ready, sending, backing off, or expiring), optionally one state's
/// or one case's.
pub(crate) async fn list<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Query(p): Query<ActionsParams>,
) -> Answer {
    principal.require(Permission::Read)?;
    let r = engine(&state)?;
    let items: Vec<ActionRecord> = r
        .open_actions()
        .await
        .map_err(api_error)?
        .into_iter()
        .filter(|a| p.state.as_deref().is_none_or(|s| a.state.name() == s))
        .filter(|a| {
            p.case
                .as_deref()
                .is_none_or(|c| a.case_id.as_deref() == Some(c))
        })
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

pub(crate) async fn get_action<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer {
    principal.require(Permission::Read)?;
    match engine(&state)?.action(&id).await.map_err(api_error)? {
        Some(a) => Ok(Json(a).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no action with that id",
        )),
    }
}

pub(crate) async fn get_run<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer {
    principal.require(Permission::Read)?;
    let r = engine(&state)?;
    let Some(run) = r.run(&id).await.map_err(api_error)? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no run with that id"));
    };
    let actions = r.actions_of_run(&id).await.map_err(api_error)?;
    Ok(Json(json!({ "run": run, "actions": actions })).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `{"reason": "…"}`, or an empty body.
fn reason(body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let b: ReasonBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body must be {{\"reason\": \"…\"}}: {e}"),
        )
    })?;
    Ok(b.reason)
}

fn status_json(s: ApprovalStatus) -> Value {
    match s {
        ApprovalStatus::Pending { approvals, needed } => {
            json!({"pending": {"approvals": approvals, "needed": needed}})
        }
        ApprovalStatus::Decided(d) => json!(d),
    }
}

async fn decide<S: Store>(
    state: &AppState<S>,
    principal: &Principal,
    id: &str,
    approve: bool,
    body: &Bytes,
) -> Answer {
    principal.require(Permission::Approve)?;
    let r = engine(state)?;
    let reason = reason(body)?;
    let status = r
        .answer(
            id,
            &principal.name,
            approve,
            reason.as_deref(),
            Timestamp::now(),
        )
        .await
        .map_err(api_error)?;
    let action = r.action(id).await.map_err(api_error)?;
    Ok(Json(json!({ "status": status_json(status), "action": action })).into_response())
}

pub(crate) async fn approve<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    decide(&state, &principal, &id, true, &body).await
}

pub(crate) async fn reject<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    decide(&state, &principal, &id, false, &body).await
}

pub(crate) async fn undo<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    principal.require(Permission::Approve)?;
    let r = engine(&state)?;
    let reason = reason(&body)?;
    let inverse = r
        .undo(&id, &principal.name, reason.as_deref(), Timestamp::now())
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "inverse": inverse })).into_response())
}

pub(crate) async fn confirm<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer {
    principal.require(Permission::Approve)?;
    let r = engine(&state)?;
    let rec = r
        .confirm(&id, &principal.name, Timestamp::now())
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "action": rec })).into_response())
}
