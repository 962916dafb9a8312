//! IBM QRadar Log Event Extended Format (LEEF) 1.0 and 2.0 lines, bare or inside a syslog
//! header. Every record is an alert: LEEF is what devices send QRadar about security events.
//!
//! `LEEF:1.0|Vendor|Product|Version|EventID|` then `key=value` attributes separated by tabs.
//! `LEEF:2.0|Vendor|Product|Version|EventID|Delimiter|` names the attribute separator: one
//! character (`^`) or its code in hex (`x09`, `0x5E`, 1–4 digits); empty or absent means tab.
//! A value may hold `=`; a piece without `=` (the separator inside a value) is joined back to
//! the value before it.
//!
//! Time: `devTime`, read with `devTimeFormat` (a Java date pattern) when given, else as epoch
//! milliseconds or LEEF's default `MMM dd yyyy HH:mm:ss` (with optional `.SSS` and zone; no
//! zone means UTC), or ISO 8601; else the syslog header's time ([`syslog::header_time`]).
//! A record sent over HTTP or replayed with neither is rejected with field `devTime` missing.
//! Severity: `sev`, 1 (lowest) to 10, mapped 1 → 10, 2 → 20, … 10 → 100 (so 1 info, 2–3 low,
//! 4–6 medium, 7–8 high, 9–10 critical); the original text is kept; absent → unknown (0).
//! Title and rule: the header's EventID with the `cat` attribute, `EventID (cat)`, as QRadar
//! maps events by that pair (rule id = EventID, rule name = cat).
//! Ids: LEEF defines no event id attribute; records are told apart by content.
//! ATT&CK: LEEF defines no field for it; none are read.
//! Entities: `src`, `identSrc` (ip) and `identHostName` (host) source; `dst` target; `usrName`
//! actor; `accountName` related user; `url` target; the syslog hostname related host.

use riposte_domain::{Alert, Decoded, EntityKind, Role, Rule, Severity, Timestamp, time};
use serde_json::Value;

use crate::fields::{self, Entities};
use crate::syslog::{self, Header};
use crate::{DecodeError, Decoder, InputKind};

pub struct Leef;

/// Header fields after `LEEF:`, named as errors name them.
const HEADER: [&str; 5] = [
    "version",
    "vendor",
    "product",
    "product_version",
    "event_id",
];

impl Decoder for Leef {
    fn name(&self) -> &'static str {
        "leef"
    }

    fn input(&self) -> InputKind {
        InputKind::Text
    }

    fn recognises(&self, r: &Value) -> bool {
        fields::text_of(r)
            .map(|t| syslog::strip(t).1.trim_start().starts_with("LEEF:"))
            .unwrap_or(false)
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        let line = fields::text_of(&record)?;
        let (header, message) = syslog::strip(line);
        let leef = parse(message)?;
        let (time, time_original) =
            event_time(&leef, header.as_ref(), syslog::received_at(&record))?;
        let severity = severity(&leef)?;
        let vendor = leef.header[1].trim();
        let product = format!("{vendor} {}", leef.header[2].trim())
            .trim()
            .to_string();
        let event_id = leef.header[4].trim();
        let cat = leef.get("cat");
        let title = match (event_id.is_empty(), cat) {
            (false, Some(c)) => format!("{event_id} ({c})"),
            (false, None) => event_id.to_string(),
            (true, Some(c)) => c.to_string(),
            (true, None) => format!("{product} event"),
        };
        let syslog_host = header.as_ref().and_then(|h| h.hostname.as_deref());
        let mut e = Entities::new();
        e.add(EntityKind::Ip, Role::Source, leef.get("src"))
            .add(EntityKind::Ip, Role::Source, leef.get("identSrc"))
            .add(EntityKind::Host, Role::Source, leef.get("identHostName"))
            .add(EntityKind::Ip, Role::Target, leef.get("dst"))
            .add(EntityKind::User, Role::Actor, leef.get("usrName"))
            .add(EntityKind::User, Role::Related, leef.get("accountName"))
            .add(EntityKind::Url, Role::Target, leef.get("url"))
            .add(EntityKind::Host, Role::Related, syslog_host);
        Ok(vec![Decoded::Alert(Alert {
            id: String::new(),
            decoder: self.name().into(),
            product,
            source_id: None,
            time,
            time_original,
            title,
            description: leef.get("msg").map(str::to_string),
            severity,
            rule: Rule::new(
                (!event_id.is_empty()).then(|| event_id.to_string()),
                cat.map(str::to_string),
            ),
            entities: e.into_vec(),
            techniques: Vec::new(),
            tactics: Vec::new(),
            original: record,
            origin: None,
        })])
    }
}

/// One LEEF message: the five header fields and the attributes in the order written.
struct Parsed {
    header: Vec<String>,
    attrs: Vec<(String, String)>,
}

impl Parsed {
    /// The first non-empty value of `key`.
    fn get(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, v)| k == key && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }
}

fn parse(message: &str) -> Result<Parsed, DecodeError> {
    let Some(rest) = message.trim_start().strip_prefix("LEEF:") else {
        return Err(DecodeError::record(
            "not a LEEF message: it does not start with `LEEF:`",
        ));
    };
    let mut header: Vec<String> = Vec::with_capacity(HEADER.len());
    let mut after = rest;
    while header.len() < HEADER.len() {
        match after.split_once('|') {
            Some((field, r)) => {
                header.push(field.to_string());
                after = r;
            }
            // An event id without its closing `|`: a message with no attributes.
            None if header.len() == HEADER.len() - 1 && !after.trim().is_empty() => {
                header.push(after.to_string());
                after = "";
            }
            None => {
                let present = header.len() + usize::from(!after.trim().is_empty());
                return Err(DecodeError::new(
                    HEADER[present],
                    format!(
                        "missing: the LEEF header needs 5 `|`-terminated fields before the \
                         attributes, found {}",
                        header.len()
                    ),
                ));
            }
        }
    }
    let version = header[0].trim();
    let delimiter = match version {
        "1.0" | "1" => '\t',
        "2.0" | "2" => {
            let (delimiter, attrs) = delimiter_field(after)?;
            after = attrs;
            delimiter
        }
        other => {
            return Err(DecodeError::new(
                "version",
                format!("LEEF version {other:?} is not 1.0 or 2.0"),
            ));
        }
    };
    Ok(Parsed {
        header,
        attrs: attributes(after, delimiter)?,
    })
}

/// LEEF 2.0's optional delimiter field: returns the separator and the text after the field.
fn delimiter_field(text: &str) -> Result<(char, &str), DecodeError> {
    let Some((candidate, rest)) = text.split_once('|') else {
        return Ok(('\t', text));
    };
    if candidate.is_empty() {
        return Ok(('\t', rest));
    }
    // Attribute text, not a delimiter field (LEEF 2.0 lets the field be left out).
    if candidate.contains('=') {
        return Ok(('\t', text));
    }
    let mut chars = candidate.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return Ok((c, rest));
    }
    let hex = candidate
        .strip_prefix("0x")
        .or_else(|| candidate.strip_prefix("0X"))
        .or_else(|| candidate.strip_prefix('x'))
        .or_else(|| candidate.strip_prefix('X'));
    hex.filter(|h| (1..=4).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .and_then(char::from_u32)
        .map(|c| (c, rest))
        .ok_or_else(|| {
            DecodeError::new(
                "delimiter",
                format!("{candidate:?} is neither one character nor its hex code (`x09`, `0x5E`)"),
            )
        })
}

fn attributes(text: &str, delimiter: char) -> Result<Vec<(String, String)>, DecodeError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for piece in text.trim_end_matches(['\r', '\n']).split(delimiter) {
        match piece.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() && !k.trim().contains(' ') => {
                out.push((k.trim().to_string(), v.to_string()));
            }
            _ if piece.trim().is_empty() => {}
            _ => match out.last_mut() {
                // The separator was part of the previous value.
                Some((_, v)) => {
                    v.push(delimiter);
                    v.push_str(piece);
                }
                None => {
                    return Err(DecodeError::new(
                        "attributes",
                        format!(
                            "{:?} is not key=value",
                            piece.chars().take(64).collect::<String>()
                        ),
                    ));
                }
            },
        }
    }
    Ok(out)
}

fn event_time(
    leef: &Parsed,
    header: Option<&Header>,
    received: Option<Timestamp>,
) -> Result<(Timestamp, String), DecodeError> {
    if let Some(dev_time) = leef.get("devTime") {
        let t = match leef.get("devTimeFormat") {
            Some(format) => fields::java_time(dev_time, format),
            None => default_time(dev_time),
        };
        return t
            .map(|t| (t, dev_time.to_string()))
            .map_err(|why| DecodeError::new("devTime", why));
    }
    syslog::header_time(header, received, "devTime")
}

/// `devTime` without `devTimeFormat`: epoch milliseconds, LEEF's default pattern, or ISO 8601.
fn default_time(value: &str) -> Result<Timestamp, String> {
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = value
            .parse()
            .map_err(|_| format!("{value:?} is too large for epoch milliseconds"))?;
        return time::from_unix_guess(n).map_err(|e| e.to_string());
    }
    for pattern in [
        "MMM dd yyyy HH:mm:ss",
        "MMM dd yyyy HH:mm:ss.SSS",
        "MMM dd yyyy HH:mm:ss zzz",
        "MMM dd yyyy HH:mm:ss.SSS zzz",
    ] {
        if let Ok(t) = fields::java_time(value, pattern) {
            return Ok(t);
        }
    }
    time::parse(value).map_err(|_| {
        format!(
            "{value:?} does not match LEEF's default `MMM dd yyyy HH:mm:ss` (and no \
             devTimeFormat says otherwise)"
        )
    })
}

fn severity(leef: &Parsed) -> Result<Severity, DecodeError> {
    let Some(original) = leef.get("sev") else {
        return Ok(Severity::unknown());
    };
    const TABLE: [u8; 10] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
    match original.parse::<usize>() {
        Ok(n @ 1..=10) => Ok(Severity::from_score(TABLE[n - 1].into(), original)),
        _ => Err(DecodeError::new(
            "sev",
            format!("{original:?} is not a LEEF severity (1–10)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    //! The corpus has no LEEF. These lines are built from IBM's published LEEF format guide
    //! ("LEEF event components" and "Predefined LEEF event attributes", ibm.com/docs/en/dsm):
    //! header layouts for 1.0 and 2.0, tab and `^`/hex delimiters, the predefined keys
    //! (devTime, devTimeFormat, src, dst, srcPort, dstPort, usrName, sev, cat, identSrc,
    //! identHostName, proto), and the RFC 3164/5424 headers the guide allows in front.
    //! The values are made up.

    use super::*;
    use crate::testkit::*;
    use riposte_domain::Canonicaliser;
    use serde_json::json;

    fn decode_one(line: &str) -> Decoded {
        let mut out = Leef
            .decode(Value::String(line.to_string()))
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(out.len(), 1);
        let mut d = out.remove(0);
        Canonicaliser::default().apply_all(d.entities_mut());
        d
    }

    #[test]
    fn leef_1_with_tabs_and_default_time_format() {
        let line = "<13>Jan 18 11:07:53 192.0.2.50 LEEF:1.0|Contoso|MailGuard|2013 SP1|15345|\
                    cat=Failed\tdevTime=Jan 18 2019 11:07:53\tsrc=192.0.2.10\tdst=198.51.100.20\t\
                    srcPort=51234\tdstPort=25\tusrName=joe.black\tsev=7\tproto=TCP\tmsg=login failed, bad password";
        let d = decode_one(line);
        let a = alert(&d);
        assert_eq!(a.product, "Contoso MailGuard");
        assert_eq!(a.title, "15345 (Failed)");
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(rule.id.as_deref(), Some("15345"));
        assert_eq!(rule.name.as_deref(), Some("Failed"));
        assert_eq!(a.time.to_string(), "2019-01-18T11:07:53Z");
        assert_eq!(a.time_original, "Jan 18 2019 11:07:53");
        assert_eq!(a.severity.score, 70);
        assert_eq!(a.severity.original, "7");
        assert_eq!(a.description.as_deref(), Some("login failed, bad password"));
        assert!(a.source_id.is_none());
        assert_eq!(ents(&d, EntityKind::Ip, Role::Source), ["192.0.2.10"]);
        assert_eq!(ents(&d, EntityKind::Ip, Role::Target), ["198.51.100.20"]);
        assert_eq!(ents(&d, EntityKind::User, Role::Actor), ["joe.black"]);
        // The syslog header's host (an address here) is the reporting device.
        assert_eq!(ents(&d, EntityKind::Host, Role::Related), ["192.0.2.50"]);
        assert_eq!(d.original(), &json!(line));
    }

    #[test]
    fn leef_2_delimiters_char_and_hex() {
        // `^` as the delimiter, epoch milliseconds.
        let d = decode_one(
            "LEEF:2.0|Lancope|StealthWatch|6.5|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5^\
             srcPort=81^dstPort=21^devTime=1547809673520^cat=anomaly",
        );
        let a = alert(&d);
        assert_eq!(a.title, "41 (anomaly)");
        assert_eq!(a.time.to_string(), "2019-01-18T11:07:53.52Z");
        assert_eq!(a.severity.score, 50);
        assert_eq!(ents(&d, EntityKind::Ip, Role::Source), ["10.0.1.8"]);
        assert_eq!(ents(&d, EntityKind::Ip, Role::Target), ["10.0.0.5"]);

        // Hex codes, with and without `0`, and a devTimeFormat.
        for delim in ["x5E", "0x5e", "0x005E"] {
            let d = decode_one(&format!(
                "LEEF:2.0|V|P|1|Login|{delim}|devTime=2019-01-18T11:07:53.520+07:00^\
                 devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSXXX^identSrc=192.0.2.7^\
                 identHostName=ws-042.corp.example^usrName=CORP\\alice^sev=2"
            ));
            let a = alert(&d);
            assert_eq!(a.time.to_string(), "2019-01-18T04:07:53.52Z", "{delim}");
            assert_eq!(a.severity.score, 20);
            assert_eq!(a.title, "Login");
            assert_eq!(ents(&d, EntityKind::Ip, Role::Source), ["192.0.2.7"]);
            assert_eq!(ents(&d, EntityKind::Host, Role::Source), ["ws-042"]);
            assert_eq!(ents(&d, EntityKind::User, Role::Actor), [r"corp\alice"]);
        }

        // x09 is a tab; the delimiter field may also be empty or left out (tab either way).
        for line in [
            "LEEF:2.0|V|P|1|7|x09|src=10.1.1.1\tdevTime=Mar 04 2021 08:00:00.250 GMT\tsev=10",
            "LEEF:2.0|V|P|1|7||src=10.1.1.1\tdevTime=Mar 04 2021 08:00:00.250 GMT\tsev=10",
            "LEEF:2.0|V|P|1|7|src=10.1.1.1\tdevTime=Mar 04 2021 08:00:00.250 GMT\tsev=10",
        ] {
            let d = decode_one(line);
            let a = alert(&d);
            assert_eq!(a.time.to_string(), "2021-03-04T08:00:00.25Z", "{line}");
            assert_eq!(a.severity.score, 100);
            assert_eq!(ents(&d, EntityKind::Ip, Role::Source), ["10.1.1.1"]);
        }
    }

    #[test]
    fn syslog_header_time_object_form_and_text_passthrough() {
        // No devTime: the RFC 5424 header's time; no sev: unknown severity.
        let d = decode_one(
            "<133>1 2019-01-18T11:07:53.520+07:00 myhostname app - - - \
             LEEF:1.0|V|P|1|Zugriff \u{FFFD}|usrName=jörg\turl=https://x.example/a?b=c",
        );
        let a = alert(&d);
        assert_eq!(a.time.to_string(), "2019-01-18T04:07:53.52Z");
        assert_eq!(a.time_original, "2019-01-18T11:07:53.520+07:00");
        assert_eq!(a.title, "Zugriff \u{FFFD}");
        assert_eq!(a.severity, Severity::unknown());
        assert_eq!(ents(&d, EntityKind::User, Role::Actor), ["jörg"]);
        assert_eq!(
            ents(&d, EntityKind::Url, Role::Target),
            ["https://x.example/a?b=c"]
        );
        assert_eq!(ents(&d, EntityKind::Host, Role::Related), ["myhostname"]);
        // A tab inside a value is joined back.
        let d = decode_one("LEEF:1.0|V|P|1|9|devTime=1547809673520\tmsg=a\tb c\tsev=3");
        assert_eq!(alert(&d).description.as_deref(), Some("a\tb c"));
        // The object form shippers forward.
        let out = Leef
            .decode(json!({"message": "LEEF:1.0|V|P|1|9|devTime=1547809673520"}))
            .unwrap();
        assert_eq!(out[0].time().to_string(), "2019-01-18T11:07:53.52Z");
    }

    #[test]
    fn bad_records_name_the_field() {
        let d = |l: &str| Leef.decode(Value::String(l.to_string())).unwrap_err();
        assert_eq!(
            d("LEEF:1.0|V|P|1|9|devTime=1547809673520\tsev=11").field,
            "sev"
        );
        assert_eq!(
            d("LEEF:1.0|V|P|1|9|devTime=1547809673520\tsev=high").field,
            "sev"
        );
        assert_eq!(d("LEEF:1.0|V|P|1|9|devTime=yesterday").field, "devTime");
        assert_eq!(
            d("LEEF:1.0|V|P|1|9|devTime=2019-01-18\tdevTimeFormat=dd/MM/yyyy").field,
            "devTime"
        );
        let e = d("LEEF:1.0|V|P|1|9|src=10.0.0.1");
        assert_eq!(
            e.to_string(),
            "field `devTime`: missing (no time in the record and no syslog header time)"
        );
        let e = d("<13>Jan 18 11:07:53 host LEEF:1.0|V|P|1|9|src=10.0.0.1");
        assert_eq!(e.field, "devTime");
        assert!(e.reason.contains("no year"), "{e}");
        assert_eq!(d("LEEF:3.0|V|P|1|9|src=1").field, "version");
        assert_eq!(d("LEEF:1.0|V|P|1").field, "event_id");
        assert_eq!(d("LEEF:1.0|V|P").field, "product_version");
        // The event id without its closing `|` is still read (then the time is missing).
        assert_eq!(d("LEEF:1.0|V|P|1|9").field, "devTime");
        assert_eq!(d("LEEF:2.0|V|P|1|9|0xZZ|src=1").field, "delimiter");
        assert_eq!(d("LEEF:1.0|V|P|1|9|junk\tsrc=1").field, "attributes");
        assert_eq!(d("CEF:0|V|P|1|9|n|5|").field, "$");
        assert_eq!(Leef.decode(json!([1])).unwrap_err().field, "$");
        assert_eq!(Leef.decode(json!({"m": "x"})).unwrap_err().field, "message");
    }

    #[test]
    fn recognises_leef_only() {
        assert!(Leef.recognises(&json!("LEEF:1.0|V|P|1|9|src=1")));
        assert!(Leef.recognises(&json!("<13>Jan 18 11:07:53 h LEEF:2.0|V|P|1|9|^|src=1")));
        assert!(Leef.recognises(&json!({"message": "LEEF:1.0|V|P|1|9|src=1"})));
        for r in corpus_records("alerts/cef/test-cef.log", InputKind::Text) {
            assert!(!Leef.recognises(&r));
        }
        for r in corpus_records(
            "alerts/panos/test-panw-panos-inc-threat-sample.log",
            InputKind::Text,
        ) {
            assert!(!Leef.recognises(&r));
        }
        for r in corpus_records("alerts/suricata/eve/test-eve-small.log", InputKind::Json) {
            assert!(!Leef.recognises(&r));
        }
    }
}
