//! riposte's domain model: the types every stage of the pipeline speaks.
//!
//! This crate owns [`Event`], [`Alert`], [`Entity`] (and the one [`Canonicaliser`] that decides
//! when two spellings are one entity), [`Severity`], ATT&CK [`TechniqueId`]s, [`Case`],
//! [`AuditRecord`] with its hash chain, and the one time parser every decoder uses.
//!
//! It deliberately does no I/O: no files, no network, no database, no clock except where a
//! caller passes a time in. Every other crate depends on it; it depends on none of them.

pub mod attack;
pub mod audit;
pub mod case;
pub mod entity;
pub mod id;
pub mod record;
pub mod severity;
pub mod short_key;
pub mod time;

pub use attack::TechniqueId;
pub use audit::{AuditBody, AuditRecord, ChainError};
pub use case::{Case, CaseStatus, ConfidenceTier};
pub use entity::{Canonicaliser, CanonicaliserConfig, Entity, EntityKind, Role};
pub use record::{Alert, Decoded, Event, Origin, RecordKind, Rule};
pub use severity::{Severity, SeverityLabel};
pub use short_key::ShortKey;
pub use time::{TimeError, Timestamp};
