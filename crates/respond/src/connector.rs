//! The one trait every connector implements, and the registry the engine looks them up in.
//!
//! A connector offers named operations, each with its policy [`Class`], its inverse (the
//! operation that undoes it) or a declaration that it cannot be undone, and whether calling
//! it twice is harmless. A call carries an idempotency key derived from the run, the step
//! and the item, so a retried or resumed call is recognised as the same call; the result
//! keeps the fields the playbook needs and an *undo record* (what the inverse needs: a
//! returned id, a previous value).
//!
//! Connectors do not retry, back off or record anything themselves: they make one attempt
//! and classify its failure ([`ConnectorError::retryable`], `429` with `Retry-After`); the
//! engine owns retries, so a back-off survives a restart.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::policy::Class;
use crate::secrets::SecretError;

/// One operation a connector offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationSpec {
    pub name: String,
    pub class: Class,
    /// The operation that undoes this one (isolate ↔ release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverse: Option<String>,
    /// Cannot be undone (revoking sessions): policy treats it as at least `approve`.
    #[serde(default)]
    pub irreversible: bool,
    /// Calling it twice has the effect of calling it once, so it may be retried freely.
    #[serde(default)]
    pub idempotent: bool,
}

impl OperationSpec {
    /// The lowest class this operation may ever run under.
    pub fn floor_class(&self) -> Class {
        if self.irreversible {
            self.class.max(Class::Approve)
        } else {
            self.class
        }
    }
}

/// One call of an operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallRequest {
    pub action_id: String,
    /// Stable across retries and restarts: the far side can use it to do the work once.
    pub idempotency_key: String,
    pub operation: String,
    /// The rendered parameters.
    pub params: serde_json::Value,
    /// For an inverse call: the forward call's undo record.
    #[serde(default)]
    pub undo: serde_json::Value,
    /// What templates in the connector's definition may read besides `params` and `undo`:
    /// `case`, `alert`, `playbook`, `run`.
    #[serde(default)]
    pub context: serde_json::Value,
    pub timeout: Duration,
}

/// What a successful call leaves behind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallOutcome {
    /// The response fields the operation keeps (for later steps and for the record).
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// What the inverse needs; the kept fields unless the connector says otherwise.
    pub undo: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ConnectorError {
    #[error("no answer within {secs} s")]
    Timeout { secs: u64 },
    #[error("rate limited (429){}", retry_after_secs.map(|s| format!(", retry after {s} s")).unwrap_or_default())]
    RateLimited { retry_after_secs: Option<u64> },
    /// A failure worth trying again: a 5xx, a refused or reset connection.
    #[error("{message}")]
    Transient { message: String },
    /// The far side said no, or answered something unexpected: trying again will not help.
    #[error("{message}")]
    Rejected {
        status: Option<u16>,
        message: String,
    },
    #[error("configuration: {message}")]
    Config { message: String },
    #[error("secret: {message}")]
    Secret { message: String },
    #[error("connector `{connector}` has no operation `{operation}`")]
    UnknownOperation {
        connector: String,
        operation: String,
    },
}

impl ConnectorError {
    /// Whether another attempt may succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ConnectorError::Timeout { .. }
                | ConnectorError::RateLimited { .. }
                | ConnectorError::Transient { .. }
        )
    }

    /// The far side's requested wait, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectorError::RateLimited {
                retry_after_secs: Some(s),
            } => Some(Duration::from_secs(*s)),
            _ => None,
        }
    }
}

impl From<SecretError> for ConnectorError {
    fn from(e: SecretError) -> Self {
        // SecretError never holds a secret value, only names.
        ConnectorError::Secret {
            message: e.to_string(),
        }
    }
}

pub type CallFuture<'a> =
    Pin<Box<dyn Future<Output = Result<CallOutcome, ConnectorError>> + Send + 'a>>;

/// The far side's answer to "did this call take effect?": `Some` (what the call would have
/// left behind) when it did, `None` when it did not.
pub type CheckFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<CallOutcome>, ConnectorError>> + Send + 'a>>;

/// A product riposte can act on.
pub trait Connector: Send + Sync {
    /// The name playbooks use: `edr` in `action: edr.isolate_host`.
    fn name(&self) -> &str;
    fn operations(&self) -> &[OperationSpec];
    /// Whether a call of `operation` sends its idempotency key to the far side, so that
    /// repeating a non-idempotent call is still safe.
    fn sends_idempotency_key(&self, operation: &str) -> bool;
    /// Makes one attempt.
    fn call<'a>(&'a self, req: &'a CallRequest) -> CallFuture<'a>;
    /// Asks whether `req`, sent before the process stopped and never answered, took effect;
    /// `None` when the operation offers no such check. Reads only: never acts.
    fn check<'a>(&'a self, _req: &'a CallRequest) -> Option<CheckFuture<'a>> {
        None
    }

    fn operation(&self, name: &str) -> Option<&OperationSpec> {
        self.operations().iter().find(|o| o.name == name)
    }
}

/// The configured connectors, by name.
#[derive(Clone, Default)]
pub struct Connectors {
    by_name: BTreeMap<String, Arc<dyn Connector>>,
}

impl std::fmt::Debug for Connectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Connectors {
    pub fn new() -> Connectors {
        Connectors::default()
    }

    pub fn add(&mut self, c: Arc<dyn Connector>) {
        self.by_name.insert(c.name().to_string(), c);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Connector>> {
        self.by_name.get(name)
    }

    /// `(connector, operation)` for every operation, for policy checks.
    pub fn catalogue(&self) -> impl Iterator<Item = (&str, &OperationSpec)> {
        self.by_name
            .iter()
            .flat_map(|(n, c)| c.operations().iter().map(move |o| (n.as_str(), o)))
    }

    /// The operation named `connector.operation`, when it exists.
    pub fn spec(&self, connector: &str, operation: &str) -> Option<&OperationSpec> {
        self.by_name.get(connector)?.operation(operation)
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
