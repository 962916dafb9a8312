//! Deterministic record ids: the same record always gets the same id, so replays compare
//! exactly and a record sent twice is recognised as a duplicate.
//!
//! The id is 32 hex digits: the record's time in milliseconds (12 digits), then the first 80
//! bits of SHA-256 over the decoder, the record kind and either the product's own id or, when
//! it has none, the canonical form of the original payload (object keys sorted, so key order
//! and whitespace do not matter).
//!
//! The time prefix is for the store: ids of records arriving in time order sort together, so
//! the unique index that recognises duplicates grows at its end instead of being rewritten
//! all over on every commit (a random key dirties one index page per record). Decoders take
//! a record's time from when the product raised it, which does not change when the product
//! sends the record again, so the same record keeps the same id.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{RecordKind, Timestamp};

const DOMAIN_TAG: &[u8] = b"riposte/record/v1\0";

pub fn record_id(
    decoder: &str,
    kind: RecordKind,
    time: Timestamp,
    source_id: Option<&str>,
    original: &Value,
) -> String {
    let mut h = Sha256::new();
    h.update(DOMAIN_TAG);
    h.update(decoder.as_bytes());
    h.update([0]);
    h.update(kind.as_str().as_bytes());
    h.update([0]);
    match source_id {
        Some(id) => {
            h.update(b"id\0");
            h.update(id.as_bytes());
        }
        None => {
            h.update(b"content\0");
            hash_canonical(&mut h, original);
        }
    }
    let digest = h.finalize();
    let ms = time.as_millisecond().clamp(0, 0xffff_ffff_ffff);
    format!("{ms:012x}{}", hex::encode(&digest[..10]))
}

/// Feeds the canonical form of a JSON value to a hasher: type-tagged, length-prefixed, object
/// keys in byte order. Independent of how serde_json orders maps in this build.
pub fn hash_canonical(h: &mut Sha256, v: &Value) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.update(b"#");
            let s = n.to_string();
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        Value::String(s) => {
            h.update(b"s");
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        Value::Array(a) => {
            h.update(b"[");
            h.update((a.len() as u64).to_le_bytes());
            for x in a {
                hash_canonical(h, x);
            }
        }
        Value::Object(o) => {
            h.update(b"{");
            h.update((o.len() as u64).to_le_bytes());
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_unstable();
            for k in keys {
                h.update((k.len() as u64).to_le_bytes());
                h.update(k.as_bytes());
                hash_canonical(h, &o[k.as_str()]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_whitespace_do_not_change_the_id() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":{"x":[1,2],"y":"z"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{ "b": {"y":"z", "x":[1, 2]}, "a": 1 }"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"a":1,"b":{"x":[2,1],"y":"z"}}"#).unwrap();
        let t = Timestamp::from_second(1_700_000_000).unwrap();
        let id = |v| record_id("suricata", RecordKind::Alert, t, None, v);
        assert_eq!(id(&a), id(&b));
        assert_ne!(id(&a), id(&c));
        assert_eq!(id(&a).len(), 32);
        // The product's id wins over content, and decoders do not share ids.
        let s1 = record_id("okta", RecordKind::Event, t, Some("x1"), &a);
        assert_eq!(s1, record_id("okta", RecordKind::Event, t, Some("x1"), &c));
        assert_ne!(s1, record_id("entra", RecordKind::Event, t, Some("x1"), &a));
        // Ids sort by time.
        let later = Timestamp::from_second(1_700_000_001).unwrap();
        assert!(record_id("okta", RecordKind::Event, later, Some("x0"), &a) > s1);
        assert!(s1.starts_with("018bcfe56800"));
    }
}
