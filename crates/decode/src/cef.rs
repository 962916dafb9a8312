//! ArcSight Common Event Format (CEF) lines, bare or inside a syslog header:
//! `CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension`.
//! Every record is an alert: CEF is what security devices send when they detect something.
//!
//! Escaping follows the spec: `\|` and `\\` in header fields; `\=`, `\\`, `\n`, `\r` in extension
//! values. An extension value may contain spaces and runs until the next ` key=`; an `=` whose
//! left-hand word cannot be a key (`https://x/?a=b`) is kept in the value. Trailing whitespace
//! is trimmed. Keys are read in their short form (`src`) or full form (`sourceAddress`).
//!
//! Time: `rt` (`deviceReceiptTime`), else `end`, else `start`: epoch milliseconds or
//! `MMM dd yyyy HH:mm:ss[.SSS][ zzz]` (no zone: UTC); else the syslog header's time
//! ([`syslog::header_time`]: an RFC 5424 time as written; a year-less RFC 3164 time placed by
//! the time riposte's listener received it; else that time of receipt). A record sent over
//! HTTP or replayed with none of these is rejected with field `rt` missing.
//! Severity (header): 0–10 on CEF's bands, mapped 0→20, 1→25, 2→30, 3→35 (low), 4→45, 5→55,
//! 6→65 (medium), 7→75, 8→85 (high), 9→95, 10→100 (critical); or the words `Low`→30,
//! `Medium`→55, `High`→80, `Very-High`→95, `Unknown`→0. Check Point writes `Unknown` in the
//! header and its real severity in `cp_severity` (`Informational`→10, `Low`, `Medium`, `High`,
//! `Very-High`, `Critical`→95), which is used then. The original text is kept.
//! Ids: `externalId` (the device's own event id), or Check Point's `loguid`, scoped by vendor,
//! product and reporting device; otherwise none (told apart by content). ArcSight's `eventId`
//! is not used: it is a connector counter that repeats across connectors.
//! ATT&CK: CEF has no standard field for it; none are read.
//! Entities: `src`/`shost`/`suser`/`sproc` source; `dst`/`dhost`/`duser`/`dproc` target;
//! `dvchost` (else the syslog hostname) and `dvc` related; `fileHash`, `oldFileHash`, custom
//! strings labelled md5/sha1/sha256 and Trend Micro's `TrendMicroDsFile*` hashes related;
//! `request` URL target; custom IPv6 `c6a2`/`c6a3` as source/target (their documented labels);
//! Check Point's `origin` (the reporting gateway) related. Placeholders such as `(no user)` and
//! `N/A` are not entities.

use riposte_domain::{Alert, Decoded, EntityKind, Role, Rule, Severity, Timestamp, time};
use serde_json::Value;

use crate::fields::{self, Entities};
use crate::syslog::{self, Header};
use crate::{DecodeError, Decoder, InputKind};

pub struct Cef;

/// The header fields after `CEF:`, named as errors name them.
const HEADER: [&str; 7] = [
    "version",
    "device_vendor",
    "device_product",
    "device_version",
    "signature_id",
    "name",
    "severity",
];

impl Decoder for Cef {
    fn name(&self) -> &'static str {
        "cef"
    }

    fn input(&self) -> InputKind {
        InputKind::Text
    }

    fn recognises(&self, r: &Value) -> bool {
        fields::text_of(r)
            .map(|t| syslog::strip(t).1.trim_start().starts_with("CEF:"))
            .unwrap_or(false)
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        let line = fields::text_of(&record)?;
        let (header, message) = syslog::strip(line);
        let cef = parse(message)?;
        let (time, time_original) =
            event_time(&cef.ext, header.as_ref(), syslog::received_at(&record))?;
        let severity = severity(&cef)?;
        let vendor = cef.header[1].trim();
        let product_name = cef.header[2].trim();
        let product = format!("{vendor} {product_name}").trim().to_string();
        let signature = cef.header[4].trim();
        let name = cef.header[5].trim();
        let title = if name.is_empty() {
            format!("{product} event {signature}").trim().to_string()
        } else {
            name.to_string()
        };
        let syslog_host = header.as_ref().and_then(|h| h.hostname.as_deref());
        let device = cef
            .ext
            .get(&[
                "dvchost",
                "deviceHostName",
                "dvc",
                "deviceAddress",
                "origin",
            ])
            .or(syslog_host)
            .unwrap_or("");
        let source_id = cef
            .ext
            .get(&["externalId", "loguid"])
            .map(|id| format!("{vendor}|{product_name}|{device}|{id}"));
        let entities = entities(&cef.ext, syslog_host).into_vec();
        Ok(vec![Decoded::Alert(Alert {
            id: String::new(),
            decoder: self.name().into(),
            product,
            source_id,
            time,
            time_original,
            title: title.clone(),
            description: cef.ext.get(&["msg", "message"]).map(str::to_string),
            severity,
            rule: Rule::new(
                (!signature.is_empty()).then(|| signature.to_string()),
                Some(title),
            ),
            entities,
            techniques: Vec::new(),
            tactics: Vec::new(),
            original: record,
            origin: None,
        })])
    }
}

/// One CEF message: the seven header fields (unescaped) and the extension's key/value pairs.
struct Parsed {
    header: Vec<String>,
    ext: Ext,
}

/// Extension pairs in the order written; look-ups take the first non-empty value.
struct Ext(Vec<(String, String)>);

impl Ext {
    fn get(&self, keys: &[&str]) -> Option<&str> {
        self.get_kv(keys).map(|(_, v)| v)
    }

    /// The first of `keys` present with a non-empty value, with the key as written.
    fn get_kv(&self, keys: &[&str]) -> Option<(&str, &str)> {
        keys.iter().find_map(|k| {
            self.0
                .iter()
                .find(|(key, v)| key == k && !v.trim().is_empty())
                .map(|(key, v)| (key.as_str(), v.as_str()))
        })
    }

    /// Values of custom fields (`cs1`..`cs6`, `c6a1`..`c6a4`) whose label is one of `labels`
    /// (compared without case).
    fn labelled(&self, prefix: &str, count: u8, labels: &[&str]) -> Vec<&str> {
        (1..=count)
            .filter_map(|n| {
                let key = format!("{prefix}{n}");
                let label = self.get(&[&format!("{key}Label")])?;
                labels
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(label.trim()))
                    .then(|| self.get(&[&key]))
                    .flatten()
            })
            .collect()
    }
}

fn parse(message: &str) -> Result<Parsed, DecodeError> {
    let Some(rest) = message.trim_start().strip_prefix("CEF:") else {
        return Err(DecodeError::record(
            "not a CEF message: it does not start with `CEF:`",
        ));
    };
    // Header: split on unescaped `|`, unescaping `\|` and `\\`.
    let mut header: Vec<String> = Vec::with_capacity(7);
    let mut current = String::new();
    let mut chars = rest.char_indices();
    let mut ext_start = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.clone().next() {
                Some((_, n @ ('|' | '\\'))) => {
                    current.push(n);
                    chars.next();
                }
                _ => current.push('\\'),
            },
            '|' => {
                header.push(std::mem::take(&mut current));
                if header.len() == HEADER.len() {
                    ext_start = Some(i + 1);
                    break;
                }
            }
            _ => current.push(c),
        }
    }
    // The last header field written without its closing `|` still counts (a header that ends
    // at the severity has an empty extension).
    if ext_start.is_none() && !current.trim().is_empty() {
        header.push(current.trim_end().to_string());
    }
    if header.len() < HEADER.len() {
        return Err(DecodeError::new(
            HEADER[header.len()],
            format!(
                "missing: the CEF header has only {} of its 7 `|`-separated fields",
                header.len()
            ),
        ));
    }
    let ext = match ext_start {
        Some(i) => parse_extension(&rest[i..])?,
        None => Ext(Vec::new()),
    };
    Ok(Parsed { header, ext })
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'[' | b']')
}

/// `key=value key=value …` where values may hold spaces and escaped `=`.
fn parse_extension(text: &str) -> Result<Ext, DecodeError> {
    let text = text.trim_end();
    let b = text.as_bytes();
    // (key start, `=` position) of every real key.
    let mut keys: Vec<(usize, usize)> = Vec::new();
    let mut backslashes = 0usize;
    for (i, &c) in b.iter().enumerate() {
        if c == b'=' && backslashes.is_multiple_of(2) {
            let start = text[..i].rfind(' ').map_or(0, |s| s + 1);
            let after_previous = keys.last().is_none_or(|&(_, eq)| start > eq);
            if start < i && after_previous && b[start..i].iter().all(|&k| is_key_char(k)) {
                keys.push((start, i));
            }
        }
        backslashes = if c == b'\\' { backslashes + 1 } else { 0 };
    }
    let lead = keys.first().map_or(text.len(), |&(s, _)| s);
    if !text[..lead].trim().is_empty() {
        return Err(DecodeError::new(
            "extension",
            format!(
                "text before the first key=value pair: {:?}",
                text[..lead].chars().take(64).collect::<String>()
            ),
        ));
    }
    let mut pairs = Vec::with_capacity(keys.len());
    for (n, &(start, eq)) in keys.iter().enumerate() {
        let end = keys.get(n + 1).map_or(text.len(), |&(next, _)| next);
        let raw = text[eq + 1..end].trim_end_matches([' ', '\t']);
        pairs.push((text[start..eq].to_string(), unescape_value(raw)));
    }
    Ok(Ext(pairs))
}

fn unescape_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('=') => out.push('='),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            _ => {
                // Not an escape CEF defines: keep the backslash as written.
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    out
}

/// `rt`, else `end`, else `start`, else a syslog header time that has a year.
fn event_time(
    ext: &Ext,
    header: Option<&Header>,
    received: Option<Timestamp>,
) -> Result<(Timestamp, String), DecodeError> {
    for keys in [
        ["rt", "deviceReceiptTime"],
        ["end", "endTime"],
        ["start", "startTime"],
    ] {
        if let Some((key, value)) = ext.get_kv(&keys) {
            return cef_time(value)
                .map(|t| (t, value.to_string()))
                .map_err(|why| DecodeError::new(key, why));
        }
    }
    syslog::header_time(header, received, "rt")
}

/// The time formats the CEF spec allows, plus ISO 8601 which some devices send.
fn cef_time(value: &str) -> Result<Timestamp, String> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = v
            .parse()
            .map_err(|_| format!("{v:?} is too large for epoch milliseconds"))?;
        return time::from_unix_guess(n).map_err(|e| e.to_string());
    }
    for pattern in [
        "MMM dd yyyy HH:mm:ss.SSS zzz",
        "MMM dd yyyy HH:mm:ss.SSS",
        "MMM dd yyyy HH:mm:ss zzz",
        "MMM dd yyyy HH:mm:ss",
    ] {
        if let Ok(t) = fields::java_time(v, pattern) {
            return Ok(t);
        }
    }
    for pattern in [
        "MMM dd HH:mm:ss.SSS zzz",
        "MMM dd HH:mm:ss.SSS",
        "MMM dd HH:mm:ss zzz",
        "MMM dd HH:mm:ss",
    ] {
        if let Err(e) = fields::java_time(v, pattern)
            && e.contains("has no year")
        {
            return Err(format!("{v:?} has no year, so it cannot be placed in time"));
        }
    }
    time::parse(v).map_err(|_| {
        format!(
            "{v:?} is neither epoch milliseconds nor `MMM dd yyyy HH:mm:ss[.SSS][ zzz]` \
             nor ISO 8601"
        )
    })
}

fn severity(cef: &Parsed) -> Result<Severity, DecodeError> {
    let original = cef.header[6].trim();
    let word = |w: &str| -> Option<u8> {
        Some(match w.to_ascii_lowercase().as_str() {
            "unknown" => 0,
            "informational" | "info" => 10,
            "low" => 30,
            "medium" => 55,
            "high" => 80,
            "very-high" | "very high" | "critical" => 95,
            _ => return None,
        })
    };
    if original.eq_ignore_ascii_case("unknown")
        && let Some(cp) = cef.ext.get(&["cp_severity"])
    {
        return word(cp.trim())
            .map(|s| Severity::from_score(s.into(), cp.trim()))
            .ok_or_else(|| {
                DecodeError::new(
                    "cp_severity",
                    format!("{cp:?} is not a Check Point severity"),
                )
            });
    }
    if let Some(score) = word(original) {
        return Ok(Severity::from_score(score.into(), original));
    }
    const TABLE: [u8; 11] = [20, 25, 30, 35, 45, 55, 65, 75, 85, 95, 100];
    match original.parse::<f64>() {
        Ok(n) if n.fract() == 0.0 && (0.0..=10.0).contains(&n) => {
            Ok(Severity::from_score(TABLE[n as usize].into(), original))
        }
        _ => Err(DecodeError::new(
            "severity",
            format!(
                "{original:?} is not a CEF severity (0–10 or Low/Medium/High/Very-High/Unknown)"
            ),
        )),
    }
}

/// Values that stand for "nobody"/"nothing" rather than naming an entity.
fn placeholder(v: &str) -> bool {
    let v = v.trim();
    v.eq_ignore_ascii_case("n/a")
        || v.eq_ignore_ascii_case("(no user)")
        || v.eq_ignore_ascii_case("(none)")
}

fn entities(ext: &Ext, syslog_host: Option<&str>) -> Entities {
    let mut e = Entities::new();
    let mut add = |kind: EntityKind, role: Role, keys: &[&str]| {
        let v = ext.get(keys).filter(|v| !placeholder(v));
        e.add(kind, role, v);
    };
    add(EntityKind::Ip, Role::Source, &["src", "sourceAddress"]);
    add(EntityKind::Host, Role::Source, &["shost", "sourceHostName"]);
    add(EntityKind::User, Role::Source, &["suser", "sourceUserName"]);
    add(
        EntityKind::Process,
        Role::Source,
        &["sproc", "sourceProcessName"],
    );
    add(EntityKind::Ip, Role::Target, &["dst", "destinationAddress"]);
    add(
        EntityKind::Host,
        Role::Target,
        &["dhost", "destinationHostName"],
    );
    add(
        EntityKind::User,
        Role::Target,
        &["duser", "destinationUserName"],
    );
    add(
        EntityKind::Process,
        Role::Target,
        &["dproc", "destinationProcessName"],
    );
    add(EntityKind::Url, Role::Target, &["request", "requestUrl"]);
    add(EntityKind::Ip, Role::Related, &["dvc", "deviceAddress"]);
    add(EntityKind::Ip, Role::Related, &["origin"]);
    for key in [
        "fileHash",
        "oldFileHash",
        "TrendMicroDsFileMD5",
        "TrendMicroDsFileSHA1",
        "TrendMicroDsFileSHA256",
    ] {
        add(EntityKind::FileHash, Role::Related, &[key]);
    }
    let device = ext
        .get(&["dvchost", "deviceHostName"])
        .or(syslog_host)
        .filter(|v| !placeholder(v));
    e.add(EntityKind::Host, Role::Related, device);
    for h in ext.labelled("cs", 6, &["md5", "sha1", "sha256"]) {
        e.add(EntityKind::FileHash, Role::Related, Some(h));
    }
    for ip in ext.labelled("c6a", 4, &["Source IPv6 Address"]) {
        e.add(EntityKind::Ip, Role::Source, Some(ip));
    }
    for ip in ext.labelled("c6a", 4, &["Destination IPv6 Address"]) {
        e.add(EntityKind::Ip, Role::Target, Some(ip));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use riposte_domain::Canonicaliser;
    use serde_json::json;

    const PLAIN: &str = "alerts/cef/test-cef.log";
    const CHECKPOINT: &str = "alerts/cef/test-checkpoint.json";
    const TREND: &str = "alerts/cef/test-trend-micro.json";

    /// The raw CEF lines of a corpus file: plain lines, or for Elastic's pipeline tests each
    /// event's `event.original` (its `message` is already Elastic's parse, not the line).
    fn raw_lines(rel: &str) -> Vec<String> {
        corpus_records(rel, InputKind::Text)
            .into_iter()
            .map(|r| match r {
                Value::String(s) => s,
                other => other["event"]["original"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{rel}: no event.original in {other}"))
                    .to_string(),
            })
            .collect()
    }

    /// Decodes lines as the pipeline does (one output each, entities canonicalised).
    fn decode_lines(rel: &str, lines: &[String]) -> Vec<Decoded> {
        let canon = Canonicaliser::default();
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut out = Cef
                    .decode(Value::String(l.clone()))
                    .unwrap_or_else(|e| panic!("{rel} record {i}: {e}"));
                assert_eq!(out.len(), 1, "{rel} record {i}");
                let mut d = out.remove(0);
                canon.apply_all(d.entities_mut());
                d
            })
            .collect()
    }

    /// As a syslog sender delivers them: an RFC 5424 header with a full time and a host.
    fn with_header(lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .map(|l| format!("<134>1 2021-06-09T09:54:51.717Z sensor-7.corp.example cef - - - {l}"))
            .collect()
    }

    #[test]
    fn corpus_lines_without_any_time_are_refused_naming_rt() {
        // test-cef.log, Trend Micro and the third Check Point event carry no rt/end/start.
        for rel in [PLAIN, TREND] {
            for (i, l) in raw_lines(rel).into_iter().enumerate() {
                let e = Cef.decode(Value::String(l)).unwrap_err();
                assert_eq!(e.field, "rt", "{rel} record {i}");
                assert!(e.reason.starts_with("missing"), "{rel} record {i}: {e}");
            }
        }
        let cp = raw_lines(CHECKPOINT);
        assert_eq!(
            Cef.decode(Value::String(cp[2].clone())).unwrap_err().field,
            "rt"
        );
        // A year-less RFC 3164 header does not help.
        let e = Cef
            .decode(Value::String(format!("<134>Nov 26 22:17:32 fw1 {}", cp[2])))
            .unwrap_err();
        assert_eq!(e.field, "rt");
        assert!(e.reason.contains("has no year"), "{e}");
    }

    #[test]
    fn plain_cef_lines_decode_field_by_field() {
        let out = decode_lines(PLAIN, &with_header(&raw_lines(PLAIN)));
        assert_eq!(out.len(), 4);
        for d in &out {
            let a = alert(d);
            assert_eq!(a.product, "Elastic Vaporware");
            assert_eq!(a.severity.score, 30);
            assert_eq!(a.severity.original, "low");
            assert_eq!(a.time.to_string(), "2021-06-09T09:54:51.717Z");
            assert_eq!(a.time_original, "2021-06-09T09:54:51.717Z");
            assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("18"));
            assert!(a.source_id.is_none(), "eventId is not a record id");
            // The syslog hostname stands in for the reporting device.
            assert_eq!(ents(d, EntityKind::Host, Role::Related), ["sensor-7"]);
        }
        let a = alert(&out[0]);
        assert_eq!(a.title, "Web request");
        assert_eq!(
            a.rule.as_ref().unwrap().name.as_deref(),
            Some("Web request")
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Source),
            ["89.160.20.156"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Target),
            ["192.168.10.1"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Url, Role::Target),
            ["https://www.example.com/cart"]
        );

        assert_eq!(alert(&out[1]).title, "Authentication");
        assert_eq!(ents(&out[1], EntityKind::User, Role::Source), ["bob"]);
        assert_eq!(ents(&out[1], EntityKind::User, Role::Target), ["alice"]);
        assert_eq!(
            ents(&out[1], EntityKind::Ip, Role::Source),
            ["89.160.20.156"]
        );
        assert_eq!(
            ents(&out[1], EntityKind::Ip, Role::Target),
            ["89.160.20.156"]
        );
        assert_eq!(
            ents(&out[1], EntityKind::FileHash, Role::Related),
            [
                "bc8bbe52f041fd17318f08a0f73762ce",
                "a9796280592f86b74b27e370662d41eb"
            ]
        );
        // NAT addresses are not entities.
        assert!(!ents_any(&out[1], EntityKind::Ip).contains(&"10.10.10.10".to_string()));

        // Only privileges: no address, user or host besides the device.
        assert_eq!(out[2].entities().len(), 1);

        // Line 4: a value with spaces, then trailing spaces trimmed off the last value.
        let a = alert(&out[3]);
        assert_eq!(
            a.description.as_deref(),
            Some("This event is padded with whitespace")
        );
        assert_eq!(ents(&out[3], EntityKind::Ip, Role::Target), ["192.168.1.2"]);
        assert_eq!(ents(&out[3], EntityKind::Ip, Role::Source), ["192.168.3.4"]);
        // The original is the line as received, header and trailing spaces included.
        assert!(
            out[3]
                .original()
                .as_str()
                .unwrap()
                .ends_with("192.168.3.4     ")
        );
    }

    #[test]
    fn check_point_lines_decode_field_by_field() {
        let out = decode_lines(CHECKPOINT, &with_header(&raw_lines(CHECKPOINT)));
        assert_eq!(out.len(), 3);
        for d in &out {
            let a = alert(d);
            assert_eq!(a.product, "Check Point VPN-1 & FireWall-1");
            assert_eq!(a.title, "https");
            assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("Log"));
        }

        let a = alert(&out[0]);
        // rt wins over the syslog header time (Elastic: deviceReceiptTime 2018-11-26T22:17:32Z).
        assert_eq!(a.time.to_string(), "2018-11-26T22:17:32Z");
        assert_eq!(a.time_original, "1543270652000");
        assert_eq!(a.severity.score, 0);
        assert_eq!(a.severity.original, "Unknown");
        assert_eq!(
            a.source_id.as_deref(),
            Some(
                "Check Point|VPN-1 & FireWall-1|192.168.101.254|{0x5bfc70fc,0x1,0xfe65a8c0,0xc0000001}"
            )
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Source),
            ["192.168.101.100"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Target),
            ["89.160.20.156"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Related),
            ["192.168.101.254"]
        );
        // `originsicname=CN\=R80,O\=R80_M..6u6bdo` unescapes.
        let original = out[0].original().as_str().unwrap().to_string();
        let cef = parse(syslog::strip(&original).1).unwrap();
        assert_eq!(
            cef.ext.get(&["originsicname"]),
            Some("CN=R80,O=R80_M..6u6bdo")
        );
        assert_eq!(cef.ext.get(&["cs5"]), Some("Business / Economy"));

        let a = alert(&out[1]);
        assert_eq!(a.time.to_string(), "2018-12-19T09:22:10Z");
        assert_eq!(a.description.as_deref(), Some("Encrypted session"));
        assert_eq!(
            ents(&out[1], EntityKind::FileHash, Role::Related),
            ["55f4a511e6f630a6b1319505414f114e7bcaf13d"]
        );

        // No rt: the syslog header's time. Check Point's own severity replaces `Unknown`;
        // the IPv6 custom addresses are source and destination (as Elastic reads them).
        let a = alert(&out[2]);
        assert_eq!(a.time.to_string(), "2021-06-09T09:54:51.717Z");
        assert_eq!(a.severity.score, 95);
        assert_eq!(a.severity.original, "Very-High");
        assert_eq!(ents(&out[2], EntityKind::Ip, Role::Source), ["fd00::555"]);
        assert_eq!(ents(&out[2], EntityKind::Ip, Role::Target), ["::1"]);
        assert_eq!(
            ents(&out[2], EntityKind::FileHash, Role::Related),
            ["580a783c1cb2b20613323f715d231a69"]
        );
    }

    #[test]
    fn trend_micro_lines_decode_field_by_field() {
        let out = decode_lines(TREND, &with_header(&raw_lines(TREND)));
        assert_eq!(out.len(), 8);
        let titles: Vec<&str> = out.iter().map(|d| alert(d).title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "User Signed In",
                "Eicar_test_file",
                "AppControl detectOnly",
                "Log for TCP Port 80",
                "New Integrity Monitoring Rule",
                "Test Intrusion Prevention Rule",
                "Microsoft Windows Events",
                "WebReputation"
            ]
        );
        let sev: Vec<(u8, &str)> = out
            .iter()
            .map(|d| (alert(d).severity.score, alert(d).severity.original.as_str()))
            .collect();
        assert_eq!(
            sev,
            [
                (35, "3"),
                (65, "6"),
                (65, "6"),
                (20, "0"),
                (65, "6"),
                (35, "3"),
                (85, "8"),
                (55, "5")
            ]
        );
        assert_eq!(alert(&out[0]).product, "Trend Micro Deep Security Manager");
        assert_eq!(alert(&out[1]).product, "Trend Micro Deep Security Agent");
        assert_eq!(
            alert(&out[1]).rule.as_ref().unwrap().id.as_deref(),
            Some("4000000")
        );

        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Source),
            ["10.52.116.160"]
        );
        assert_eq!(ents(&out[0], EntityKind::User, Role::Source), ["admin"]);
        assert_eq!(
            alert(&out[0]).description.as_deref(),
            Some("User signed in from 2001:db8::5")
        );

        // Malware: the agent's host and the three hashes of the file.
        assert_eq!(ents(&out[1], EntityKind::Host, Role::Related), ["hostname"]);
        assert_eq!(
            ents(&out[1], EntityKind::FileHash, Role::Related),
            [
                "44d88612fea8a8f36de82e1278abb02f",
                "3395856ce81f2b7382dee72602f798b642f14140",
                "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
            ]
        );
        // `filePath=C:\\Users\\…` unescapes to single backslashes.
        let original = out[1].original().as_str().unwrap().to_string();
        let cef = parse(syslog::strip(&original).1).unwrap();
        assert_eq!(
            cef.ext.get(&["filePath"]),
            Some(r"C:\Users\trend\Desktop\eicar.exe")
        );
        assert_eq!(
            cef.ext.get(&["cs6"]),
            Some("ContainerImageName | ContainerName | ContainerID")
        );

        // App control: dvc is the device address; sha1/md5 come from labelled custom strings.
        assert_eq!(
            ents(&out[2], EntityKind::Ip, Role::Related),
            ["192.168.33.128"]
        );
        assert_eq!(ents(&out[2], EntityKind::User, Role::Source), ["root"]);
        assert_eq!(
            ents(&out[2], EntityKind::FileHash, Role::Related),
            [
                "80d4ac182f97d2ab48ee4310ac51da5974167c596d133d64a83107b9069745e0",
                "0cc9713ba896193a527213d9c94892d41797eb7c",
                "7ea8ef10beb2e9876d4d7f7e5a46cf8d"
            ]
        );

        assert_eq!(
            ents(&out[3], EntityKind::Ip, Role::Source),
            ["192.168.126.150"]
        );
        assert_eq!(ents(&out[3], EntityKind::Ip, Role::Target), ["81.2.69.192"]);
        assert_eq!(ents(&out[4], EntityKind::User, Role::Source), ["admin"]);
        assert_eq!(ents(&out[5], EntityKind::Ip, Role::Target), ["81.2.69.144"]);

        // Windows 4625 via Deep Security: `duser=(no user)` is a placeholder, not a user.
        assert_eq!(
            ents(&out[6], EntityKind::Host, Role::Source),
            ["win-rm6hm42g65v"]
        );
        assert_eq!(ents(&out[6], EntityKind::Ip, Role::Source), ["127.0.0.1"]);
        assert!(ents_any(&out[6], EntityKind::User).is_empty());
        assert!(
            alert(&out[6])
                .description
                .as_deref()
                .unwrap()
                .contains("AUDIT_FAILURE(4625)")
        );

        assert_eq!(
            ents(&out[7], EntityKind::Url, Role::Target),
            ["example.com"]
        );
    }

    #[test]
    fn time_forms_and_message_objects() {
        let d = |l: &str| Cef.decode(Value::String(l.to_string()));
        let a = d("CEF:0|V|P|1|9|n|7|rt=Apr 11 2020 10:42:13 src=10.0.0.1").unwrap();
        assert_eq!(a[0].time().to_string(), "2020-04-11T10:42:13Z");
        let a = d("CEF:0|V|P|1|9|n|7|rt=Apr 11 2020 10:42:13.250 CEST").unwrap();
        assert_eq!(a[0].time().to_string(), "2020-04-11T08:42:13.25Z");
        let a = d("CEF:0|V|P|1|9|n|Very-High|end=1545211330000").unwrap();
        assert_eq!(a[0].time().to_string(), "2018-12-19T09:22:10Z");
        assert_eq!(alert(&a[0]).severity.score, 95);
        // Year-less rt is refused, naming rt.
        let e = d("CEF:0|V|P|1|9|n|7|rt=Apr 11 10:42:13").unwrap_err();
        assert_eq!(e.field, "rt");
        assert!(e.reason.contains("no year"), "{e}");
        // The object form log shippers forward, with non-ASCII text passed through.
        let v = json!({"message": "CEF:0|V|P|1|9|Zugriff verweigert – \u{FFFD}|2|rt=1545211330000 msg=Zürich\\=ok duser=jörg"});
        let a = Cef.decode(v.clone()).unwrap();
        let a = alert(&a[0]);
        assert_eq!(a.title, "Zugriff verweigert – \u{FFFD}");
        assert_eq!(a.description.as_deref(), Some("Zürich=ok"));
        assert_eq!(a.severity.score, 30);
        assert_eq!(a.original, v);
        // Escaped pipes in the header; `=` inside a URL value stays in the value.
        let a = d(r"CEF:0|V\|X|P\\Q|1|9|n|1|rt=1545211330000 request=https://x.example/?a=b&c=d dst=10.0.0.2").unwrap();
        assert_eq!(alert(&a[0]).product, r"V|X P\Q");
        assert_eq!(
            ents(&a[0], EntityKind::Url, Role::Target),
            ["https://x.example/?a=b&c=d"]
        );
        assert_eq!(ents(&a[0], EntityKind::Ip, Role::Target), ["10.0.0.2"]);
        // externalId scoped by vendor, product and device.
        let a = d("CEF:0|V|P|1|9|n|1|rt=1545211330000 externalId=42 dvchost=fw1").unwrap();
        assert_eq!(a[0].source_id(), Some("V|P|fw1|42"));
    }

    #[test]
    fn bad_records_name_the_field() {
        let d = |l: &str| Cef.decode(Value::String(l.to_string())).unwrap_err();
        let e = d("CEF:0|V|P|1|9|n|11|rt=1545211330000");
        assert_eq!(e.field, "severity");
        let e = d("CEF:0|V|P|1|9|n|bad|rt=1545211330000");
        assert_eq!(e.field, "severity");
        let e = d("CEF:0|Check Point|P|1|9|n|Unknown|rt=1545211330000 cp_severity=Dire");
        assert_eq!(e.field, "cp_severity");
        let e = d("CEF:0|V|P|1|9|n|5|rt=last tuesday");
        assert_eq!(e.field, "rt");
        let e = d("CEF:0|V|P|1|9|n|5|end=yesterday");
        assert_eq!(e.field, "end");
        let e = d("CEF:0|V|P|1|9|n|5|src=10.0.0.1");
        assert_eq!(
            e.to_string(),
            "field `rt`: missing (no time in the record and no syslog header time)"
        );
        let e = d("CEF:0|V|P|1");
        assert_eq!(e.field, "signature_id");
        let e = d("CEF:0|V|P|1|9|n|5|free text rt=1545211330000");
        assert_eq!(e.field, "extension");
        let e = d("LEEF:1.0|V|P|1|9|");
        assert_eq!(e.field, "$");
        assert_eq!(Cef.decode(json!(42)).unwrap_err().field, "$");
        assert_eq!(
            Cef.decode(json!({"msg": "x"})).unwrap_err().field,
            "message"
        );
        assert_eq!(
            Cef.decode(json!({"message": 7})).unwrap_err().field,
            "message"
        );
    }

    #[test]
    fn recognises_cef_only() {
        for rel in [PLAIN, CHECKPOINT, TREND] {
            for l in raw_lines(rel) {
                assert!(Cef.recognises(&Value::String(l.clone())), "{l}");
                assert!(Cef.recognises(&json!({ "message": l })));
            }
            for l in with_header(&raw_lines(rel)) {
                assert!(Cef.recognises(&Value::String(l)));
            }
        }
        // Elastic's already-parsed CEF documents are Elastic's, not raw CEF.
        for r in corpus_records(CHECKPOINT, InputKind::Json) {
            assert!(!Cef.recognises(&r));
        }
        for r in corpus_records("alerts/suricata/eve/test-eve-small.log", InputKind::Json) {
            assert!(!Cef.recognises(&r));
        }
        for r in corpus_records(
            "alerts/panos/test-panw-panos-inc-threat-sample.log",
            InputKind::Text,
        ) {
            assert!(!Cef.recognises(&r));
        }
        assert!(!Cef.recognises(&json!("LEEF:1.0|V|P|1|9|src=10.0.0.1")));
    }
}
