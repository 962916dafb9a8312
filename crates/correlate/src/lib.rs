//! riposte's correlate stage: alerts become cases.
//!
//! (Skeleton; case formation follows.)

pub mod config;

pub use config::{CaseConfig, ConfigError, IpRange};
