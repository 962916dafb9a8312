//! riposte's response stage: playbooks that act on cases, bounded by policy, through
//! connectors, with approvals, undo and a record of every step.
//!
//! - [`playbook`]: the YAML format and its loader (positions on every refusal);
//!   [`template`]: MiniJinja conditions and parameters with a step budget and no I/O.
//! - [`policy`]: operation classes (`auto`/`approve`/`review`), raise-never-lower, minimum
//!   tier, four eyes, quorum, approval timeout → deny.
//! - [`connector`]: the one trait for all connectors; [`http`]: the generic HTTP connector
//!   and webhook notifier defined in YAML; [`secrets`]: secrets sealed with
//!   XChaCha20-Poly1305.
//!
//! What it deliberately is not: a scheduler with its own threads or clock (callers pass
//! `now` and call `tick`), or a database (storage is the [`store::RunStore`] trait that the
//! server implements on its store).

pub mod connector;
pub mod duration;
pub mod engine;
pub mod error;
pub mod http;
pub mod plan;
pub mod playbook;
pub mod policy;
pub mod run;
pub mod secrets;
pub mod store;
pub mod template;

pub use connector::{
    CallOutcome, CallRequest, Connector, ConnectorError, Connectors, OperationSpec,
};
pub use engine::Engine;
pub use error::{LoadError, LoadErrors, RespondError};
pub use playbook::{Playbook, Step, StepKind, TriggerKind};
pub use policy::{ApprovalState, Class, Decision, Policy};
pub use run::{ActionRecord, ActionState, CaseChange, Run, RunStatus, TriggerEvent};
pub use secrets::{Secret, SecretKey, SecretSource, SecretVault};
pub use store::{MemoryRunStore, RunStore, RunWrite};
pub use template::Templates;
