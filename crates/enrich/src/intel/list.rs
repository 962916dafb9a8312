//! CSV feeds (one declared column of one declared type) and plain lists (one value a line).
//!
//! A CSV feed names its column by header; other columns are ignored. A plain list takes the
//! first whitespace-separated token of each line; blank lines and `#` comments are skipped.
//! Every value gets the feed's default confidence and no validity bounds. A value that is not
//! of the declared type refuses the whole file (with its line): a list of IPs with a domain in
//! it is a mis-declared feed, and guessing would index garbage.

use std::path::Path;

use super::{DeclaredType, IntelBuilder, Meta};
use crate::LoadError;
use crate::tabular;

pub(crate) fn load_csv(
    b: &mut IntelBuilder<'_>,
    feed: u16,
    file: &Path,
    text: &str,
    column: &str,
    ty: DeclaredType,
    meta: &Meta,
) -> Result<(), LoadError> {
    let column = column.trim().to_ascii_lowercase();
    tabular::for_each_row(file, text, &[column.as_str()], |_, row| {
        match row.get(&column) {
            Some(value) => b
                .add(feed, ty, value, meta)
                .map_err(|e| format!("column `{column}`: {e}")),
            None => Ok(()),
        }
    })
}

pub(crate) fn load_list(
    b: &mut IntelBuilder<'_>,
    feed: u16,
    file: &Path,
    text: &str,
    ty: DeclaredType,
    meta: &Meta,
) -> Result<(), LoadError> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("//") {
            continue;
        }
        let value = line.split_whitespace().next().unwrap_or(line);
        b.add(feed, ty, value, meta)
            .map_err(|e| LoadError::at(file, i as u64 + 1, e))?;
    }
    Ok(())
}
