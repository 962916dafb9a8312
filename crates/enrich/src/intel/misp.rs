//! MISP feeds, in the format `misp-feed` / MISP's "feed" export writes: a directory with
//! `manifest.json` (an object keyed by event uuid) and one `<uuid>.json` per event, each
//! `{"Event": {..., "Attribute": [...], "Object": [{"Attribute": [...]}, ...]}}`.
//!
//! Only attributes flagged `to_ids` are indexed: MISP's own meaning of "usable for
//! detection"; the rest is context. Types mapped:
//! `ip-src`, `ip-dst` (address or CIDR), `ip-src|port`, `ip-dst|port`, `domain`, `hostname`,
//! `domain|ip` (both halves), `hostname|port`, `url`, `md5`, `sha1`, `sha256`, `sha512`,
//! `filename|md5`, `filename|sha1`, `filename|sha256`, `filename|sha512`. Other types are
//! listed as skipped. Deleted attributes (`deleted: true`) are left out.
//!
//! MISP has no per-attribute confidence or expiry in the feed format; every attribute gets the
//! feed's configured confidence and validity. An attribute with a value that is not what its
//! type says (an `ip-dst` of `evil.example`) refuses the feed, naming the event file, the
//! attribute's line and uuid.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{DeclaredType, IntelBuilder, Meta};
use crate::LoadError;
use crate::error::{line_of, read_text};

#[derive(Deserialize)]
struct EventFile {
    #[serde(rename = "Event")]
    event: Event,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default, rename = "Attribute")]
    attributes: Vec<Attribute>,
    #[serde(default, rename = "Object")]
    objects: Vec<Object>,
}

#[derive(Deserialize)]
struct Object {
    #[serde(default, rename = "Attribute")]
    attributes: Vec<Attribute>,
}

#[derive(Deserialize)]
struct Attribute {
    #[serde(rename = "type")]
    kind: String,
    value: String,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default, deserialize_with = "loose_bool")]
    to_ids: bool,
    #[serde(default, deserialize_with = "loose_bool")]
    deleted: bool,
}

/// MISP writes booleans as `true`, `"1"` or `1` depending on version.
fn loose_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::Number(n) => n.as_u64() == Some(1),
        Value::String(s) => s == "1" || s.eq_ignore_ascii_case("true"),
        _ => false,
    })
}

/// `path` is the feed directory or its `manifest.json`.
pub(crate) fn load(
    b: &mut IntelBuilder<'_>,
    feed: u16,
    path: &Path,
    meta: &Meta,
) -> Result<(), LoadError> {
    let (dir, manifest_path) = if path.is_dir() {
        (path.to_path_buf(), path.join("manifest.json"))
    } else {
        (
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
            path.to_path_buf(),
        )
    };
    let text = read_text(&manifest_path)?;
    let manifest: serde_json::Map<String, Value> =
        serde_json::from_str(&text).map_err(|e| LoadError::json(&manifest_path, &e))?;
    // Sorted, so a feed always loads in the same order (indicator numbering, reports).
    let mut uuids: Vec<&String> = manifest.keys().collect();
    uuids.sort();
    for uuid in uuids {
        // The uuid names a file: refuse anything that could walk out of the feed directory.
        if uuid.is_empty() || !uuid.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-') {
            return Err(LoadError {
                file: manifest_path.clone(),
                line: line_of(&text, &format!("\"{uuid}\"")),
                column: None,
                reason: format!("event key `{uuid}` is not a uuid"),
            });
        }
        let file = dir.join(format!("{uuid}.json"));
        let text = read_text(&file)?;
        let ev: EventFile = serde_json::from_str(&text).map_err(|e| LoadError::json(&file, &e))?;
        let all = ev
            .event
            .attributes
            .iter()
            .chain(ev.event.objects.iter().flat_map(|o| o.attributes.iter()));
        for a in all {
            if a.deleted {
                continue;
            }
            // Found only when needed: searching for every attribute would be quadratic.
            let line = || {
                a.uuid
                    .as_deref()
                    .and_then(|u| line_of(&text, &format!("\"{u}\"")))
                    .or_else(|| line_of(&text, &format!("\"{}\"", a.value)))
            };
            let parts = match split_attribute(&a.kind, &a.value) {
                Split::Indexed(parts) => parts,
                Split::NotIndexed => {
                    b.skip(
                        feed,
                        line(),
                        format!(
                            "{}: attribute type `{}` is not indexed",
                            file.display(),
                            a.kind
                        ),
                    );
                    continue;
                }
                Split::Malformed if a.to_ids => {
                    return Err(LoadError {
                        file: file.clone(),
                        line: line(),
                        column: None,
                        reason: format!(
                            "attribute {} ({}): value `{}` has no `|` between its parts",
                            a.uuid.as_deref().unwrap_or("without uuid"),
                            a.kind,
                            a.value
                        ),
                    });
                }
                Split::Malformed => continue,
            };
            if !a.to_ids {
                continue;
            }
            let meta = Meta {
                id: a.uuid.clone(),
                ..meta.clone()
            };
            for (ty, value) in parts.into_iter().flatten() {
                b.add(feed, ty, value, &meta).map_err(|e| LoadError {
                    file: file.clone(),
                    line: line(),
                    column: None,
                    reason: format!(
                        "attribute {} ({}): {e}",
                        a.uuid.as_deref().unwrap_or("without uuid"),
                        a.kind
                    ),
                })?;
            }
        }
    }
    Ok(())
}

type Part<'a> = Option<(DeclaredType, &'a str)>;

enum Split<'a> {
    /// Up to two typed values to index.
    Indexed([Part<'a>; 2]),
    /// A type riposte does not match on (`text`, `regkey`, …).
    NotIndexed,
    /// A composite type (`ip-dst|port`) whose value lacks the `|`.
    Malformed,
}

/// What an attribute of MISP type `kind` indexes.
fn split_attribute<'a>(kind: &str, value: &'a str) -> Split<'a> {
    let one = |t| Split::Indexed([Some((t, value)), None]);
    let pipe = |first: Option<DeclaredType>, second: Option<DeclaredType>, from_right: bool| {
        // `ip|port`: an IPv6 address has colons, so split on the pipe only. A file name may
        // contain `|`; the hash is after the last one.
        let split = if from_right {
            value.rsplit_once('|')
        } else {
            value.split_once('|')
        };
        match split {
            Some((a, b)) => Split::Indexed([first.map(|t| (t, a)), second.map(|t| (t, b))]),
            None => Split::Malformed,
        }
    };
    match kind {
        "ip-src" | "ip-dst" => one(DeclaredType::Ip),
        "domain" | "hostname" => one(DeclaredType::Domain),
        "url" => one(DeclaredType::Url),
        "md5" => one(DeclaredType::Md5),
        "sha1" => one(DeclaredType::Sha1),
        "sha256" => one(DeclaredType::Sha256),
        "sha512" => one(DeclaredType::Sha512),
        "ip-src|port" | "ip-dst|port" => pipe(Some(DeclaredType::Ip), None, false),
        "hostname|port" => pipe(Some(DeclaredType::Domain), None, false),
        "domain|ip" => pipe(Some(DeclaredType::Domain), Some(DeclaredType::Ip), false),
        "filename|md5" => pipe(None, Some(DeclaredType::Md5), true),
        "filename|sha1" => pipe(None, Some(DeclaredType::Sha1), true),
        "filename|sha256" => pipe(None, Some(DeclaredType::Sha256), true),
        "filename|sha512" => pipe(None, Some(DeclaredType::Sha512), true),
        _ => Split::NotIndexed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_types_split_on_the_right_pipe() {
        let Split::Indexed([Some((DeclaredType::Ip, ip)), None]) =
            split_attribute("ip-dst|port", "2001:db8::1|443")
        else {
            panic!("ip-dst|port")
        };
        assert_eq!(ip, "2001:db8::1");
        let Split::Indexed([None, Some((DeclaredType::Sha1, h))]) = split_attribute(
            "filename|sha1",
            "a|b.exe|3395856ce81f2b7382dee72602f798b642f14140",
        ) else {
            panic!("filename|sha1")
        };
        assert_eq!(h, "3395856ce81f2b7382dee72602f798b642f14140");
        assert!(matches!(
            split_attribute("domain|ip", "x.example"),
            Split::Malformed
        ));
        assert!(matches!(
            split_attribute("regkey", "HKLM\\x"),
            Split::NotIndexed
        ));
    }
}
