//! riposte's correlate stage: alerts become cases.
//!
//! (Docs follow.)

pub mod case;
pub mod config;
pub mod engine;

pub use case::{CapReason, CaseAlert, CaseChange, CaseEntity, FormedCase, Link, Note};
pub use config::{CaseConfig, ConfigError, DEFAULT_INTERNAL_RANGES, IpRange};
pub use engine::{CaseEngine, Expiry};
