//! The crate's errors: [`LoadError`] for files a person wrote (playbooks, policies, connector
//! definitions), positioned at file, line and column; [`RespondError`] for everything that
//! happens while running.

use std::fmt;

use crate::connector::ConnectorError;
use crate::policy::ApprovalError;
use crate::template::TemplateError;

/// A refused file: where, and what to change. Displays as `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl LoadError {
    pub fn new(file: &str, line: usize, column: usize, message: impl Into<String>) -> LoadError {
        LoadError {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    /// From a YAML parse error, with its position when it has one.
    pub fn yaml(file: &str, e: &yaml_serde::Error) -> LoadError {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        // yaml_serde repeats the position at the end of its message; we show it in front.
        let mut message = e.to_string();
        if let Some(cut) = message.find(" at line ") {
            message.truncate(cut);
        }
        LoadError::new(file, line, column, message)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for LoadError {}

/// Several refusals from one load, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    #[error("storage: {0}")]
    Store(String),
    #[error("playbook `{playbook}` step `{step}`: {source}")]
    Template {
        playbook: String,
        step: String,
        source: TemplateError,
    },
    #[error("no playbook version {hash} (playbook `{id}`) is known")]
    UnknownPlaybook { id: String, hash: String },
    #[error("no run `{0}`")]
    UnknownRun(String),
    #[error("no action `{0}`")]
    UnknownAction(String),
    #[error("no connector `{0}` is configured")]
    UnknownConnector(String),
    #[error("action `{action}`: {source}")]
    Approval {
        action: String,
        source: ApprovalError,
    },
    #[error("action `{action}` cannot be undone: {reason}")]
    NotUndoable { action: String, reason: String },
    #[error("action `{action}`: {source}")]
    Connector {
        action: String,
        source: ConnectorError,
    },
    #[error("the record changed under us ({what}); try again")]
    Conflict { what: String },
}
