//! Splitting a request body or a file into records: one JSON document, a JSON array,
//! newline-delimited JSON (NDJSON), or, for text decoders, plain lines.
//!
//! A body that is not JSON at all is refused whole ([`FramingError`]); inside NDJSON a bad line
//! is one rejected record and the others go on.

use serde_json::Value;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::{DecodeError, InputKind};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error("the body is empty")]
    Empty,
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
}

/// One record of a body: the JSON value, or why it could not be read.
pub type Framed = Result<Value, DecodeError>;

/// Splits `body` into the raw text of each record, without parsing records yet (the caller
/// parses them, in parallel if it likes, with [`parse`], and keeps the raw text of a record
/// that fails for the dead-letter table).
///
/// JSON: an array gives its elements; one document or concatenated documents (NDJSON
/// included) give each document; when that fails, each non-empty line is a record. A body of
/// one line that is not JSON is refused whole. Text: each non-empty line is a record, unless
/// the body is JSON (objects carrying a `message`).
pub fn split_raw(body: &str, input: InputKind) -> Result<Vec<&str>, FramingError> {
    let trimmed = body.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    if trimmed.trim_end().is_empty() {
        return Err(FramingError::Empty);
    }
    let looks_json = trimmed.starts_with(['{', '[']);
    if input == InputKind::Text && !looks_json {
        return Ok(lines(trimmed));
    }
    if trimmed.starts_with('[') {
        return serde_json::from_str::<Vec<&RawValue>>(trimmed)
            .map(|items| items.into_iter().map(RawValue::get).collect())
            .map_err(|e| FramingError::InvalidJson(e.to_string()));
    }
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(trimmed).into_iter::<&RawValue>();
    let whole = loop {
        match stream.next() {
            None => break Ok(()),
            Some(Ok(v)) => out.push(v.get()),
            Some(Err(e)) => break Err(e),
        }
    };
    match whole {
        Ok(()) => Ok(out),
        Err(e) => {
            let lines = lines(trimmed);
            if lines.len() < 2 {
                return Err(FramingError::InvalidJson(e.to_string()));
            }
            Ok(lines)
        }
    }
}

fn lines(s: &str) -> Vec<&str> {
    s.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Parses one record's raw text for a decoder reading `input`.
pub fn parse(raw: &str, input: InputKind) -> Framed {
    let t = raw.trim_start();
    if input == InputKind::Text && !t.starts_with('{') {
        return Ok(Value::String(raw.to_string()));
    }
    serde_json::from_str(raw).map_err(|e| DecodeError::record(format!("not valid JSON: {e}")))
}

/// Splits and parses a whole body (see [`split_raw`] and [`parse`]).
pub fn split(body: &str, input: InputKind) -> Result<Vec<Framed>, FramingError> {
    let raw = split_raw(body, input)?;
    let framed: Vec<Framed> = raw.iter().map(|r| parse(r, input)).collect();
    // Lines that are all bad mean the body was not JSON at all.
    if raw.len() > 1
        && input == InputKind::Json
        && framed.iter().all(Result::is_err)
        && let Some(Err(e)) = framed.first()
    {
        return Err(FramingError::InvalidJson(e.reason.clone()));
    }
    Ok(framed)
}

/// Parses one NDJSON line.
pub fn parse_line(line: &str) -> Framed {
    parse(line, InputKind::Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Vec<Value> {
        split(body, InputKind::Json)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn object_array_ndjson_and_pretty() {
        assert_eq!(ok(r#"{"a":1}"#).len(), 1);
        assert_eq!(ok(r#"[{"a":1},{"a":2}]"#).len(), 2);
        assert_eq!(ok("{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}\n").len(), 3);
        assert_eq!(ok("{\n  \"a\": 1\n}\n").len(), 1);
        assert_eq!(ok("\u{feff}{\"a\":1}").len(), 1);
    }

    #[test]
    fn bad_lines_are_records_and_bad_bodies_are_refused() {
        let r = split("{\"a\":1}\n{nope\n{\"a\":3}", InputKind::Json).unwrap();
        assert_eq!(r.len(), 3);
        assert!(r[1].is_err());
        assert_eq!(split("", InputKind::Json), Err(FramingError::Empty));
        assert_eq!(split(" \n ", InputKind::Json), Err(FramingError::Empty));
        assert!(matches!(
            split("{nope", InputKind::Json),
            Err(FramingError::InvalidJson(_))
        ));
        assert!(matches!(
            split("hello", InputKind::Json),
            Err(FramingError::InvalidJson(_))
        ));
        assert!(matches!(
            split("a\nb", InputKind::Json),
            Err(FramingError::InvalidJson(_))
        ));
        let deep = "[".repeat(10_000);
        assert!(matches!(
            split(&deep, InputKind::Json),
            Err(FramingError::InvalidJson(_))
        ));
    }

    #[test]
    fn text_lines() {
        let r = split("CEF:0|a\r\n\nCEF:0|b\n", InputKind::Text).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].as_ref().unwrap(), &Value::String("CEF:0|a".into()));
        // Text decoders also take JSON objects carrying a `message`.
        assert_eq!(
            split(r#"[{"message":"CEF:0|a"}]"#, InputKind::Text)
                .unwrap()
                .len(),
            1
        );
    }
}
