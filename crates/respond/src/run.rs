//! The durable state of playbook runs and their actions: plain, serialisable data that the
//! [`RunStore`](crate::store::RunStore) keeps, so that a run waiting for an approval, a
//! back-off or an expiry survives a restart and goes on where it stopped.
//!
//! Ids are derived, never random: a run's id from the playbook and the event that started
//! it (the same event never starts a playbook twice), an action's id — which is also its
//! idempotency key — from the run, the step and the item (a resumed run finds the action it
//! already requested instead of requesting another).

use riposte_domain::{ConfidenceTier, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::connector::{CallOutcome, ConnectorError};
use crate::playbook::TriggerKind;
use crate::policy::{ApprovalState, Class, Decision};

/// 32 hex digits of SHA-256 over the parts, each followed by a zero byte.
pub fn derive_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(prefix.as_bytes());
    h.update([0]);
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    format!("{prefix}-{}", hex::encode(&d[..16]))
}

/// The run a playbook gets for one event.
pub fn run_id(playbook_id: &str, event_id: &str) -> String {
    derive_id("run", &[playbook_id, event_id])
}

/// The action (and idempotency key) for one item of one step of one run.
pub fn action_id(run_id: &str, step_id: &str, item: u32) -> String {
    derive_id("act", &[run_id, step_id, &item.to_string()])
}

/// The inverse of an action: one per action, so a second undo click finds the first.
pub fn inverse_id(action_id: &str) -> String {
    derive_id("act", &[action_id, "undo"])
}

/// Something that happened that playbooks may answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TriggerEvent {
    pub kind: TriggerKind,
    /// Stable and unique per event (`case-17@rev3`, an alert id, `schedule@2026-11-23T12:00Z`).
    pub event_id: String,
    /// The case document as the store keeps it (with `id`, `tier`, `entities`, …).
    #[serde(default)]
    pub case: Option<serde_json::Value>,
    #[serde(default)]
    pub alert: Option<serde_json::Value>,
    pub at: Timestamp,
    /// The person who started it by hand; `None` when riposte did.
    #[serde(default)]
    pub requested_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Being driven, or interrupted by a crash while driven (a tick resumes it).
    Running,
    /// Waiting for an approval, a back-off, a wait step or the case to change.
    Waiting,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn is_open(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::Waiting)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub playbook_id: String,
    pub playbook_version: String,
    /// The exact version this run follows, whatever is active now.
    pub playbook_hash: String,
    pub trigger: TriggerKind,
    pub event_id: String,
    #[serde(default)]
    pub case_id: Option<String>,
    /// A person, or `playbook:<id>`.
    pub requested_by: String,
    /// The latest case document the run has seen.
    #[serde(default)]
    pub case: serde_json::Value,
    #[serde(default)]
    pub alert: serde_json::Value,
    /// Index of the current step.
    pub pointer: usize,
    pub status: RunStatus,
    /// When a tick should look at this run again.
    #[serde(default)]
    pub wake_at: Option<Timestamp>,
    /// When the current step began (for `wait` deadlines).
    #[serde(default)]
    pub step_started_at: Option<Timestamp>,
    /// Each finished step's result, for later templates (`steps.lookup.fields.score`).
    #[serde(default)]
    pub outputs: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub error: Option<String>,
    /// Bumped on every write; the store refuses a write whose version is not the next one.
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Run {
    pub fn tier(&self) -> Option<ConfidenceTier> {
        self.case
            .get("tier")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionKind {
    /// A connector call a step asked for.
    Call,
    /// An explicit approval step: no call, only the gate.
    Gate,
    /// The inverse of another action (undo or expiry).
    Inverse { of: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ActionState {
    /// Held at its gate; see `approval`.
    AwaitingApproval,
    /// Free to be sent.
    Ready,
    /// Recorded as sent (attempt `attempt`); no result recorded yet.
    Sending {
        attempt: u32,
        at: Timestamp,
    },
    /// Failed with a retryable error; sent again at `until`.
    Backoff {
        attempt: u32,
        until: Timestamp,
        error: ConnectorError,
    },
    Succeeded {
        outcome: CallOutcome,
        at: Timestamp,
    },
    Failed {
        error: String,
        at: Timestamp,
    },
    /// Its approval was rejected or timed out.
    Denied {
        decision: Decision,
        at: Timestamp,
    },
    /// Sent before a restart, result unknown, and not safe to repeat: a person checks.
    Uncertain {
        at: Timestamp,
    },
    /// Reverted by its inverse.
    Undone {
        by: String,
        at: Timestamp,
        inverse: String,
    },
}

impl ActionState {
    pub fn name(&self) -> &'static str {
        match self {
            ActionState::AwaitingApproval => "awaiting_approval",
            ActionState::Ready => "ready",
            ActionState::Sending { .. } => "sending",
            ActionState::Backoff { .. } => "backoff",
            ActionState::Succeeded { .. } => "succeeded",
            ActionState::Failed { .. } => "failed",
            ActionState::Denied { .. } => "denied",
            ActionState::Uncertain { .. } => "uncertain",
            ActionState::Undone { .. } => "undone",
        }
    }
}

/// One action: what was asked, under which class and approval, and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Also the idempotency key sent with the call.
    pub id: String,
    #[serde(default)]
    pub run_id: Option<String>,
    pub step_id: String,
    pub item: u32,
    pub kind: ActionKind,
    pub connector: String,
    pub operation: String,
    pub class: Class,
    pub params: serde_json::Value,
    /// For an inverse: the forward call's undo record.
    #[serde(default)]
    pub undo: serde_json::Value,
    /// The playbook's written reason, when it gives one.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub approval: Option<ApprovalState>,
    pub state: ActionState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub backoff_secs: u64,
    pub timeout_secs: u64,
    /// After this, the action reverts itself unless confirmed.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub expires_secs: Option<u64>,
    #[serde(default)]
    pub case_id: Option<String>,
    pub requested_by: String,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ActionRecord {
    /// Whether the store should list it among open actions (for ticks and inboxes).
    pub fn is_open(&self) -> bool {
        match &self.state {
            ActionState::AwaitingApproval
            | ActionState::Ready
            | ActionState::Sending { .. }
            | ActionState::Backoff { .. } => true,
            ActionState::Succeeded { .. } => self.expires_at.is_some(),
            _ => false,
        }
    }
}

/// A change a playbook makes to its case. Applied by the server's store; `key` makes it
/// idempotent (a resumed run applies each change once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseChange {
    pub key: String,
    pub case_id: String,
    pub run_id: String,
    pub step_id: String,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// `status`, `verdict`, `assignee`.
    Set {
        fields: std::collections::BTreeMap<String, String>,
    },
    Tag {
        tags: Vec<String>,
    },
    Note {
        text: String,
    },
    Assign {
        to: String,
    },
}

/// One line for the audit trail: who, which dotted verb, what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let r = run_id("contain", "case-1@3");
        assert_eq!(r, run_id("contain", "case-1@3"));
        assert_ne!(r, run_id("contain", "case-1@4"));
        assert_eq!(action_id(&r, "isolate", 0), action_id(&r, "isolate", 0));
        assert_ne!(action_id(&r, "isolate", 0), action_id(&r, "isolate", 1));
        // Parts are separated, so shifting characters between them changes the id.
        assert_ne!(derive_id("x", &["ab", "c"]), derive_id("x", &["a", "bc"]));
        assert!(r.starts_with("run-") && r.len() == 4 + 32);
    }
}
