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
    // csv's own line numbers skip comment lines; count newlines up to the byte offset instead
    // (incrementally, so the whole file is scanned once).
    let mut counted = (0usize, 1u64);
    let mut line_at = |byte: u64| -> u64 {
        let mut byte = usize::try_from(byte).unwrap_or(usize::MAX).min(text.len());
        // A record's position is where reading it began: before the comment and blank lines
        // csv skipped. Step over those to the record's first line.
        while let Some(rest) = text.get(byte..)
            && (rest.starts_with('#') || rest.starts_with('\n') || rest.starts_with("\r\n"))
        {
            byte += rest.find('\n').map_or(rest.len(), |i| i + 1);
        }
        let (from, line) = counted;
        let line = if byte >= from {
            line + memchr_count(&text.as_bytes()[from..byte])
        } else {
            1 + memchr_count(&text.as_bytes()[..byte])
        };
        counted = (byte, line);
        line
    };
    let csv_err = |e: csv::Error, line_at: &mut dyn FnMut(u64) -> u64| {
        let line = e.position().map(|p| line_at(p.byte()));
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
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(csv_err(e, &mut line_at)),
    };
    // The header's recorded position is where reading began, before any comment lines.
    let header_line = text
        .lines()
        .position(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map_or(1, |i| i as u64 + 1);
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
                let line = record.position().map_or(0, |p| line_at(p.byte()));
                let row = Row {
                    columns: &columns,
                    record: &record,
                };
                f(line, &row).map_err(|reason| LoadError::at(file, line, reason))?;
            }
            Err(e) => return Err(csv_err(e, &mut line_at)),
        }
    }
}

fn memchr_count(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_errors_carry_their_file_line_across_comments() {
        let text =
            "# exported 2025-01-01\n# by hand\nip,criticality\na,1\n# note\n\"b\nc\",2\nd,x\n";
        let mut seen = Vec::new();
        let err = for_each_row(Path::new("t.csv"), text, &["ip"], |line, row| {
            seen.push((line, row.get("ip").unwrap_or("").to_string()));
            match row.get("criticality") {
                Some("x") => Err("criticality `x` is not 1–5".into()),
                _ => Ok(()),
            }
        })
        .expect_err("row d refused");
        assert_eq!(seen[0], (4, "a".to_string()));
        assert_eq!(seen[1], (6, "b\nc".to_string()));
        assert_eq!(err.line, Some(8), "{err}");
        assert_eq!(err.to_string(), "t.csv:8: criticality `x` is not 1–5");

        let ragged = for_each_row(Path::new("t.csv"), "a,b\n1,2\n3\n", &[], |_, _| Ok(()))
            .expect_err("ragged row refused");
        assert_eq!(ragged.line, Some(3), "{ragged}");
        assert!(ragged.reason.contains("1 fields"), "{ragged}");
    }
}
