//! The one error type of this crate: a file that could not be loaded, where, and why.
//!
//! Every load failure names the file and, whenever the format lets us know it, the line (and
//! column), so an operator can fix a feed without guessing. Loading never panics on input.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why an enrichment file was refused. Displayed as `path:line:column: reason`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct LoadError {
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.reason)
    }
}

impl LoadError {
    pub(crate) fn new(file: &Path, reason: impl Into<String>) -> LoadError {
        LoadError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn at(file: &Path, line: u64, reason: impl Into<String>) -> LoadError {
        LoadError {
            line: Some(line),
            ..LoadError::new(file, reason)
        }
    }

    pub(crate) fn io(file: &Path, e: std::io::Error) -> LoadError {
        LoadError::new(file, format!("cannot read: {e}"))
    }

    pub(crate) fn json(file: &Path, e: &serde_json::Error) -> LoadError {
        LoadError {
            file: file.to_path_buf(),
            line: (e.line() > 0).then_some(e.line() as u64),
            column: (e.column() > 0).then_some(e.column() as u64),
            reason: format!("not valid JSON for this format: {e}"),
        }
    }

    pub(crate) fn yaml(file: &Path, e: &yaml_serde::Error) -> LoadError {
        let loc = e.location();
        // yaml_serde repeats the location inside its message; keep only the reason.
        let msg = e.to_string();
        let reason = match msg.rsplit_once(" at line ") {
            Some((head, _)) if loc.is_some() => head.to_string(),
            _ => msg,
        };
        LoadError {
            file: file.to_path_buf(),
            line: loc.as_ref().map(|l| l.line() as u64),
            column: loc.as_ref().map(|l| l.column() as u64),
            reason,
        }
    }
}

/// The 1-based line of the first occurrence of `needle` in `text`, used to point at a JSON
/// object (by its unique id) when the error is found after parsing.
pub(crate) fn line_of(text: &str, needle: &str) -> Option<u64> {
    if needle.is_empty() {
        return None;
    }
    let at = text.find(needle)?;
    Some(
        text.as_bytes()[..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1,
    )
}

/// Reads a whole file as UTF-8, naming the file on failure.
pub(crate) fn read_text(file: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(file).map_err(|e| LoadError::io(file, e))
}
