//! Shared helpers for decoder tests: reading ../shared/corpus and looking at results.
//! Every decoder's tests use these, so they read the same way.

use std::path::PathBuf;

use riposte_domain::{Canonicaliser, Decoded, EntityKind, Role};
use serde_json::Value;

use crate::{Decoder, InputKind, framing};

/// `../shared/corpus` relative to the project root (or `$RIPOSTE_CORPUS`).
pub fn corpus_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RIPOSTE_CORPUS") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}

/// The text of a corpus file; panics with the path when it is missing.
pub fn corpus_text(rel: &str) -> String {
    let path = corpus_dir().join(rel);
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("corpus file {} unreadable: {e}", path.display()));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The records of a corpus file: JSON lines, one document, an array, or Elastic's pipeline
/// test wrapper `{"events": [...]}` (unwrapped here, in the tests only).
pub fn corpus_records(rel: &str, input: InputKind) -> Vec<Value> {
    let text = corpus_text(rel);
    let framed = framing::split(&text, input).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut out = Vec::new();
    for (i, r) in framed.into_iter().enumerate() {
        let v = r.unwrap_or_else(|e| panic!("{rel} record {i}: {e}"));
        match v {
            Value::Object(mut o)
                if o.len() == 1 && o.get("events").is_some_and(Value::is_array) =>
            {
                if let Some(Value::Array(items)) = o.remove("events") {
                    out.extend(items);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Decodes every record of a corpus file and canonicalises entities as the pipeline does;
/// panics naming the record that failed.
pub fn decode_file(d: &dyn Decoder, rel: &str) -> Vec<Decoded> {
    let canon = Canonicaliser::default();
    let mut out = Vec::new();
    for (i, rec) in corpus_records(rel, d.input()).into_iter().enumerate() {
        let decoded = d
            .decode(rec)
            .unwrap_or_else(|e| panic!("{rel} record {i}: {e}"));
        for mut x in decoded {
            canon.apply_all(x.entities_mut());
            out.push(x);
        }
    }
    out
}

/// Canonical values of the entities of one kind and role, in order.
pub fn ents(d: &Decoded, kind: EntityKind, role: Role) -> Vec<String> {
    d.entities()
        .iter()
        .filter(|e| e.kind == kind && e.role == role)
        .map(|e| e.value.clone())
        .collect()
}

/// Canonical values of the entities of one kind, any role.
pub fn ents_any(d: &Decoded, kind: EntityKind) -> Vec<String> {
    d.entities()
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.value.clone())
        .collect()
}

pub fn alert(d: &Decoded) -> &riposte_domain::Alert {
    match d {
        Decoded::Alert(a) => a,
        Decoded::Event(e) => panic!("expected an alert, got event {:?}", e.action),
    }
}

pub fn event(d: &Decoded) -> &riposte_domain::Event {
    match d {
        Decoded::Event(e) => e,
        Decoded::Alert(a) => panic!("expected an event, got alert {:?}", a.title),
    }
}
