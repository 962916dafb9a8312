//! Syslog headers (RFC 5424 and RFC 3164) and routing a message to its text decoder.
//!
//! Firewalls and appliances send CEF, LEEF and PAN-OS CSV inside syslog. [`strip`] separates
//! the header from the message; [`route`] names the decoder for a message by its content.
//! Framing on the wire (octet counting, newlines) belongs to the listener, not here.

use riposte_domain::{Timestamp, time};

use crate::DecodeError;

/// The parts of a syslog header riposte keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// `<PRI>` split into facility and severity, when present.
    pub facility: Option<u8>,
    pub severity: Option<u8>,
    /// The timestamp as written (RFC 3339 in 5424, `Mmm dd hh:mm:ss` in 3164).
    pub timestamp: Option<String>,
    pub hostname: Option<String>,
    pub app_name: Option<String>,
}

/// Splits a syslog line into its header (if it has one) and the message.
pub fn strip(line: &str) -> (Option<Header>, &str) {
    let line = line.trim_end_matches(['\r', '\n', '\0']);
    let (pri, rest) = parse_pri(line);
    let mut header = Header {
        facility: pri.map(|p| (p / 8) as u8),
        severity: pri.map(|p| (p % 8) as u8),
        ..Header::default()
    };
    if let Some(after_version) = rest.strip_prefix("1 ")
        && let Some(msg) = parse_5424(after_version, &mut header)
    {
        return (Some(header), msg);
    }
    if let Some((ts, after_ts)) = parse_3164_timestamp(rest) {
        header.timestamp = Some(ts.to_string());
        let after_ts = after_ts.trim_start();
        // Hostname, unless the message starts right away (some senders omit it).
        let (host, after_host) = match after_ts.split_once(' ') {
            Some((h, r)) if !is_message_start(after_ts) => (Some(h), r),
            _ => (None, after_ts),
        };
        header.hostname = host.map(str::to_string);
        let (app, msg) = split_tag(after_host);
        header.app_name = app.map(str::to_string);
        return (Some(header), msg);
    }
    if pri.is_some() {
        let (app, msg) = split_tag(rest);
        header.app_name = app.map(str::to_string);
        return (Some(header), msg);
    }
    (None, line)
}

/// The text decoder for a syslog message, by its content: `CEF:` → `cef`, `LEEF:` → `leef`,
/// PAN-OS CSV (`FUTURE_USE,receive time,serial,TYPE,…`) → `panos`.
pub fn route(message: &str) -> Option<&'static str> {
    let m = message.trim_start();
    if m.starts_with("CEF:") {
        return Some("cef");
    }
    if m.starts_with("LEEF:") {
        return Some("leef");
    }
    let mut fields = m.splitn(5, ',');
    let _future = fields.next()?;
    let _receive = fields.next()?;
    let serial = fields.next()?;
    let kind = fields.next()?;
    let pan_types = [
        "TRAFFIC",
        "THREAT",
        "SYSTEM",
        "CONFIG",
        "HIPMATCH",
        "CORRELATION",
        "USERID",
        "AUTHENTICATION",
        "GLOBALPROTECT",
        "DECRYPTION",
        "TUNNEL",
        "IPTAG",
    ];
    (pan_types.contains(&kind) && serial.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some("panos")
}

fn is_message_start(s: &str) -> bool {
    s.starts_with("CEF:") || s.starts_with("LEEF:") || is_pan_csv_start(s)
}

/// PAN-OS CSV begins `FUTURE_USE,YYYY/MM/DD …` (`1,2012/10/30 09:46:12,…`); senders often put
/// it right after a 3164 timestamp with no hostname, which must not be taken for one.
fn is_pan_csv_start(s: &str) -> bool {
    let Some((first, rest)) = s.split_once(',') else {
        return false;
    };
    let b = rest.as_bytes();
    !first.is_empty()
        && first.bytes().all(|c| c.is_ascii_digit())
        && b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'/'
        && b[7] == b'/'
}

fn parse_pri(line: &str) -> (Option<u16>, &str) {
    let Some(rest) = line.strip_prefix('<') else {
        return (None, line);
    };
    let Some(end) = rest.find('>') else {
        return (None, line);
    };
    match rest[..end].parse::<u16>() {
        Ok(p) if end <= 3 && p <= 191 => (Some(p), &rest[end + 1..]),
        _ => (None, line),
    }
}

/// `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`
fn parse_5424<'a>(s: &'a str, h: &mut Header) -> Option<&'a str> {
    let mut rest = s;
    let mut next = || -> Option<&'a str> {
        let (tok, r) = rest.split_once(' ').unwrap_or((rest, ""));
        rest = r;
        (!tok.is_empty()).then_some(tok)
    };
    let ts = next()?;
    let host = next()?;
    let app = next()?;
    let _procid = next()?;
    let _msgid = next()?;
    let nil = |t: &str| (t != "-").then(|| t.to_string());
    h.timestamp = nil(ts);
    h.hostname = nil(host);
    h.app_name = nil(app);
    let msg = skip_structured_data(rest)?;
    Some(msg.strip_prefix('\u{feff}').unwrap_or(msg))
}

fn skip_structured_data(s: &str) -> Option<&str> {
    if let Some(r) = s.strip_prefix('-') {
        return Some(r.strip_prefix(' ').unwrap_or(r));
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b'[' {
        let mut in_quotes = false;
        i += 1;
        loop {
            let c = *b.get(i)?;
            match c {
                b'\\' if in_quotes => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let r = &s[i..];
    Some(r.strip_prefix(' ').unwrap_or(r))
}

/// `Mmm dd hh:mm:ss` (the day may be space-padded), optionally preceded by a year-less ISO
/// time some senders use instead.
fn parse_3164_timestamp(s: &str) -> Option<(&str, &str)> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    if s.len() >= 15 && MONTHS.iter().any(|m| s.starts_with(m)) {
        let b = s.as_bytes();
        let ok = b[3] == b' '
            && (b[4] == b' ' || b[4].is_ascii_digit())
            && b[5].is_ascii_digit()
            && b[6] == b' '
            && b[7..9].iter().all(u8::is_ascii_digit)
            && b[9] == b':'
            && b[10..12].iter().all(u8::is_ascii_digit)
            && b[12] == b':'
            && b[13..15].iter().all(u8::is_ascii_digit);
        if ok {
            return Some((&s[..15], &s[15..]));
        }
    }
    // RFC 3339 in a 3164-style header (rsyslog's high-precision template).
    let first = s.split(' ').next()?;
    if first.len() >= 19 && first.as_bytes()[4] == b'-' && first.as_bytes()[10] == b'T' {
        return Some((first, &s[first.len()..]));
    }
    None
}

/// `tag: msg` or `tag[pid]: msg`; a message without a tag is returned whole.
fn split_tag(s: &str) -> (Option<&str>, &str) {
    if is_message_start(s) {
        return (None, s);
    }
    if let Some(colon) = s.find(": ") {
        let tag = &s[..colon];
        let name = tag.split('[').next().unwrap_or(tag);
        let is_tag = !name.is_empty()
            && name.len() <= 48
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b))
            && (tag.len() == name.len() || tag.ends_with(']'));
        if is_tag {
            return (Some(name), &s[colon + 2..]);
        }
    }
    (None, s)
}

/// The time a syslog listener received a message, when it passed one along
/// (`{"message": "…", "received_at": "…"}`, the shape riposte's listeners hand decoders).
pub fn received_at(record: &serde_json::Value) -> Option<Timestamp> {
    record.get("received_at")?.as_str()?.parse().ok()
}

/// A record's time from its syslog header when the message itself has none: an RFC 5424 (or
/// other dated) header time as written; an RFC 3164 `Mmm dd hh:mm:ss`, which has no year and
/// no zone, placed in the year that puts it nearest the time the listener received it (UTC);
/// with no header time, the time of receipt. Without a time of receipt (a record sent over
/// HTTP or replayed) a year-less or absent header time is an error naming `field`.
pub fn header_time(
    header: Option<&Header>,
    received: Option<Timestamp>,
    field: &str,
) -> Result<(Timestamp, String), DecodeError> {
    let ts = header.and_then(|h| h.timestamp.as_deref());
    match (ts, received) {
        (Some(ts), received) => {
            if let Ok(t) = time::parse(ts) {
                return Ok((t, ts.to_string()));
            }
            match received.and_then(|r| place_3164(ts, r)) {
                Some(t) => Ok((t, ts.to_string())),
                None => Err(DecodeError::new(
                    field,
                    format!("missing, and the syslog header time {ts:?} has no year"),
                )),
            }
        }
        (None, Some(r)) => Ok((r, format!("received {r}"))),
        (None, None) => Err(DecodeError::new(
            field,
            "missing (no time in the record and no syslog header time)",
        )),
    }
}

/// Places an RFC 3164 timestamp in the year nearest `received`.
pub fn place_3164(ts: &str, received: Timestamp) -> Option<Timestamp> {
    let year = received.to_zoned(jiff::tz::TimeZone::UTC).year();
    [year - 1, year, year + 1]
        .into_iter()
        .filter_map(|y| {
            let text = format!(
                "{y} {}",
                ts.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            jiff::civil::DateTime::strptime("%Y %b %d %H:%M:%S", &text)
                .ok()?
                .to_zoned(jiff::tz::TimeZone::UTC)
                .ok()
                .map(|z| z.timestamp())
        })
        .min_by_key(|t| t.duration_since(received).abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_less_times_are_placed_near_receipt() {
        let r: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        assert_eq!(
            place_3164("Dec 31 23:00:00", r).unwrap().to_string(),
            "2025-12-31T23:00:00Z"
        );
        assert_eq!(
            place_3164("Jan  1 10:00:00", r).unwrap().to_string(),
            "2026-01-01T10:00:00Z"
        );
        let h = strip("<134>Nov 23 10:00:00 fw CEF:0|a|b|c|d|e|f|").0;
        let (t, orig) = header_time(h.as_ref(), Some(r), "rt").unwrap();
        assert_eq!(
            (t.to_string().as_str(), orig.as_str()),
            ("2025-11-23T10:00:00Z", "Nov 23 10:00:00")
        );
        assert_eq!(header_time(h.as_ref(), None, "rt").unwrap_err().field, "rt");
        assert_eq!(header_time(None, Some(r), "rt").unwrap().0, r);
        assert!(header_time(None, None, "rt").is_err());
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let (h, m) = strip(
            r#"<165>1 2003-10-11T22:14:15.003Z fw1.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App\]lication"] CEF:0|a|b|1|2|n|5|src=10.0.0.1"#,
        );
        let h = h.unwrap();
        assert_eq!(h.facility, Some(20));
        assert_eq!(h.severity, Some(5));
        assert_eq!(h.hostname.as_deref(), Some("fw1.example.com"));
        assert_eq!(h.timestamp.as_deref(), Some("2003-10-11T22:14:15.003Z"));
        assert_eq!(m, "CEF:0|a|b|1|2|n|5|src=10.0.0.1");
        assert_eq!(route(m), Some("cef"));
        let (_, m) = strip("<34>1 2003-10-11T22:14:15.003Z host app - - - LEEF:1.0|a|b|c|d|");
        assert_eq!(m, "LEEF:1.0|a|b|c|d|");
    }

    #[test]
    fn rfc3164_with_and_without_pri_and_tag() {
        let (h, m) =
            strip("Nov 30 16:44:36 PA-220 1,2018/11/30 16:44:36,012801096514,THREAT,url,2049");
        let h = h.unwrap();
        assert_eq!(h.hostname.as_deref(), Some("PA-220"));
        assert_eq!(h.facility, None);
        assert!(m.starts_with("1,2018/11/30"));
        assert_eq!(route(m), Some("panos"));
        let (h, m) = strip("<134>Feb  5 01:02:03 host CEF:0|x|y|1|2|n|3|");
        assert_eq!(h.unwrap().timestamp.as_deref(), Some("Feb  5 01:02:03"));
        assert_eq!(m, "CEF:0|x|y|1|2|n|3|");
        let (h, m) = strip("<13>Feb  5 01:02:03 host sshd[42]: Accepted password");
        assert_eq!(h.unwrap().app_name.as_deref(), Some("sshd"));
        assert_eq!(m, "Accepted password");
        let (h, m) = strip("Oct 30 09:46:12 1,2012/10/30 09:46:12,01606001116,THREAT,url,1");
        let h = h.unwrap();
        assert_eq!(h.hostname, None);
        assert_eq!(m, "1,2012/10/30 09:46:12,01606001116,THREAT,url,1");
        let (h, m) = strip("CEF:0|x|y|1|2|n|3|");
        assert!(h.is_none());
        assert_eq!(m, "CEF:0|x|y|1|2|n|3|");
        assert_eq!(route("hello, world"), None);
    }
}
