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
            let line = a
                .uuid
                .as_deref()
                .and_then(|u| line_of(&text, &format!("\"{u}\"")))
                .or_else(|| line_of(&text, &format!("\"{}\"", a.value)));
            let Some(parts) = split_attribute(&a.kind, &a.value) else {
                b.skip(
                    feed,
                    line,
                    format!(
                        "{}: attribute type `{}` is not indexed",
                        file.display(),
                        a.kind
                    ),
                );
                continue;
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
                    line,
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

/// What an attribute of MISP type `kind` indexes: up to two typed values.
fn split_attribute<'a>(kind: &str, value: &'a str) -> Option<[Part<'a>; 2]> {
    let pipe = |v: &'a str| v.split_once('|');
    let one = |t| Some([Some((t, value)), None]);
    match kind {
        "ip-src" | "ip-dst" => one(DeclaredType::Ip),
        "domain" | "hostname" => one(DeclaredType::Domain),
        "url" => one(DeclaredType::Url),
        "md5" => one(DeclaredType::Md5),
        "sha1" => one(DeclaredType::Sha1),
        "sha256" => one(DeclaredType::Sha256),
        "sha512" => one(DeclaredType::Sha512),
        "ip-src|port" | "ip-dst|port" => {
            // `1.2.3.4|443`; an IPv6 address has colons, so split on the pipe only.
            let (ip, _) = pipe(value)?;
            Some([Some((DeclaredType::Ip, ip)), None])
        }
        "hostname|port" => {
            let (h, _) = pipe(value)?;
            Some([Some((DeclaredType::Domain, h)), None])
        }
        "domain|ip" => {
            let (d, ip) = pipe(value)?;
            Some([
                Some((DeclaredType::Domain, d)),
                Some((DeclaredType::Ip, ip)),
            ])
        }
        "filename|md5" | "filename|sha1" | "filename|sha256" | "filename|sha512" => {
            let (_, h) = value.rsplit_once('|')?;
            let t = match kind {
                "filename|md5" => DeclaredType::Md5,
                "filename|sha1" => DeclaredType::Sha1,
                "filename|sha256" => DeclaredType::Sha256,
                _ => DeclaredType::Sha512,
            };
            Some([Some((t, h)), None])
        }
        _ => None,
    }
}
