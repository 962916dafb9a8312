//! CSV with a header row, the one way this crate reads tables (feeds, assets, identities).
//!
//! Columns are found by header name (trimmed, case-insensitive), so column order does not
//! matter; a required column that is missing is an error on the header's line. `#` starts a
//! comment line, as in most published feeds. Every row is handed over with its 1-based line.

use std::collections::HashMap;
use std::path::Path;

use crate::LoadError;

/// One data row with access by column name.
pub(crate) struct Row<'a> {
    columns: &'a HashMap<String, usize>,
    record: &'a csv::StringRecord,
}

impl Row<'_> {
    /// The trimmed cell of column `name`; `None` when the table has no such column or the cell
    /// is empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        let i = *self.columns.get(name)?;
        self.record.get(i).map(str::trim).filter(|s| !s.is_empty())
    }
}

/// Calls `f` for every data row of `text` (the contents of `file`). `required` columns must be
/// in the header. An error from `f` is reported at that row's line.
pub(crate) fn for_each_row(
    file: &Path,
    text: &str,
    required: &[&str],
    mut f: impl FnMut(u64, &Row<'_>) -> Result<(), String>,
) -> Result<(), LoadError> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .flexible(false)
        .from_reader(text.as_bytes());
    let csv_err = |e: csv::Error| {
        let line = e.position().map(|p| p.line());
        LoadError {
            file: file.to_path_buf(),
            line,
            column: None,
            reason: match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!("row has {len} fields, the header has {expected_len}"),
                _ => e.to_string(),
            },
        }
    };
    let headers = reader.headers().map_err(csv_err)?.clone();
    let header_line = headers.position().map_or(1, |p| p.line());
    let columns: HashMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_ascii_lowercase(), i))
        .collect();
    for name in required {
        if !columns.contains_key(*name) {
            let have: Vec<&str> = headers.iter().map(str::trim).collect();
            return Err(LoadError::at(
                file,
                header_line,
                format!(
                    "missing column `{name}` (the header has: {})",
                    have.join(", ")
                ),
            ));
        }
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                let row = Row {
                    columns: &columns,
                    record: &record,
                };
                f(line, &row).map_err(|reason| LoadError::at(file, line, reason))?;
            }
            Err(e) => return Err(csv_err(e)),
        }
    }
}

/// Splits a multi-valued cell (`a;b`, `a|b`, `a, b`) into its non-empty parts.
pub(crate) fn split_list(cell: &str) -> impl Iterator<Item = &str> {
    cell.split([';', '|', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Reads a yes/no cell.
pub(crate) fn parse_bool(cell: &str) -> Option<bool> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Some(true),
        "false" | "no" | "n" | "0" | "" => Some(false),
        _ => None,
    }
}
