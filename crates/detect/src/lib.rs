//! riposte's detection stage: Sigma rules over decoded events, matches turned into
//! [`riposte_domain::Alert`]s.
//!
//! Everything Sigma-specific lives here: loading rule texts ([`rules`]: parsed in parallel,
//! every refusal reported with its file and reason), the logsource mapping as data
//! ([`mapping`]: which events a `product`/`category`/`service` covers, and field renames such
//! as Security 4688's `NewProcessName` → Sigma's `Image`), the Sigma view of an event
//! ([`view`]), routing each event to only the rules whose logsource covers it and evaluating
//! them ([`detector`]: each logsource's rules compiled lazily by `rsigma-eval`, behind
//! riposte's own candidate index, `index`), the alert a match becomes ([`alert`]), Sigma
//! correlations over a time-ordered stream ([`correlate`]), and the rule set a server swaps
//! on reload ([`shared`]).
//!
//! It deliberately does no I/O: callers read rule files and hand over their texts, and feed
//! decoded events. Parsing and evaluation are `rsigma-parser`/`rsigma-eval`'s.

pub mod alert;
pub mod cache;
pub mod correlate;
pub mod detector;
mod eval;
mod index;
pub mod mapping;
pub mod rules;
pub mod shared;
pub mod view;

pub use cache::RuleCache;
pub use correlate::Correlator;
pub use detector::{Detector, LoadOptions, RuleStats};
pub use mapping::Mapping;
pub use rules::{Refusal, RuleText};
pub use shared::SharedDetector;

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A logsource mapping file that cannot be read.
    #[error("logsource mapping {file}: {reason}")]
    Mapping { file: String, reason: String },
}

#[cfg(test)]
mod tests;
