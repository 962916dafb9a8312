//! Reading fields out of product JSON, the same way in every decoder.
//!
//! Paths are dotted (`alert.signature_id`). Products mix nested objects and keys that contain
//! dots (`{"kibana.alert.rule": {"name": …}}`), so a path matches either spelling. JSON `null`
//! and empty strings count as absent. Errors name the path.

use riposte_domain::{Entity, EntityKind, Role, Timestamp, time};
use serde_json::Value;

use crate::DecodeError;

/// The value at a dotted path, whether the record nests objects or uses dotted keys.
pub fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    if let Some(x) = obj.get(path) {
        return Some(x);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(inner) = obj.get(&path[..i])
            && let Some(found) = get(inner, &path[i + 1..])
        {
            return Some(found);
        }
    }
    None
}

/// A non-empty string at `path`; numbers and booleans are not strings.
pub fn str_at<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    match get(v, path)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.as_str()),
        _ => None,
    }
}

/// The first non-empty string among several paths.
pub fn first_str<'a>(v: &'a Value, paths: &[&str]) -> Option<&'a str> {
    paths.iter().find_map(|p| str_at(v, p))
}

/// A string or number at `path`, as text (ids are sometimes numbers).
pub fn text_at(v: &Value, path: &str) -> Option<String> {
    match get(v, path)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A required string at `path`.
pub fn req_str<'a>(v: &'a Value, path: &str) -> Result<&'a str, DecodeError> {
    match get(v, path) {
        None | Some(Value::Null) => Err(DecodeError::missing(path)),
        Some(Value::String(s)) if s.trim().is_empty() => Err(DecodeError::new(path, "empty")),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(DecodeError::new(
            path,
            format!("expected a string, found {}", type_name(other)),
        )),
    }
}

/// A number at `path`, also when written as a string (`"8"`, `"8.5"`).
pub fn num_at(v: &Value, path: &str) -> Option<f64> {
    match get(v, path)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An integer at `path`, also when written as a string.
pub fn int_at(v: &Value, path: &str) -> Option<i64> {
    match get(v, path)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A required time at `path`, parsed with the one time parser; returns the instant and the
/// text as the product wrote it. Numbers are read as epoch seconds/ms/µs/ns by magnitude.
pub fn req_time(v: &Value, path: &str) -> Result<(Timestamp, String), DecodeError> {
    match get(v, path) {
        None | Some(Value::Null) => Err(DecodeError::missing(path)),
        Some(Value::String(s)) => time::parse(s)
            .map(|t| (t, s.clone()))
            .map_err(|e| DecodeError::new(path, e.to_string())),
        Some(Value::Number(n)) => {
            let t = match n.as_i64() {
                Some(i) => time::from_unix_guess(i),
                None => time::from_unix_seconds(n.as_f64().unwrap_or(f64::NAN)),
            };
            t.map(|t| (t, n.to_string()))
                .map_err(|e| DecodeError::new(path, e.to_string()))
        }
        Some(other) => Err(DecodeError::new(
            path,
            format!("expected a time, found {}", type_name(other)),
        )),
    }
}

/// The first of several time fields that is present; an error names the first path when none
/// is, or the first present one that does not parse.
pub fn first_time(v: &Value, paths: &[&str]) -> Result<(Timestamp, String), DecodeError> {
    for p in paths {
        match get(v, p) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if s.trim().is_empty() => continue,
            Some(_) => return req_time(v, p),
        }
    }
    Err(DecodeError::missing(paths.first().copied().unwrap_or("$")))
}

/// The record must be a JSON object.
pub fn require_object(v: &Value) -> Result<(), DecodeError> {
    if v.is_object() {
        Ok(())
    } else {
        Err(DecodeError::record(format!(
            "expected a JSON object, found {}",
            type_name(v)
        )))
    }
}

/// The text of a text-format record: the line itself, or the `message` field of an object
/// (the shape log shippers forward).
pub fn text_of(v: &Value) -> Result<&str, DecodeError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Object(_) => req_str(v, "message"),
        other => Err(DecodeError::record(format!(
            "expected a text line, found {}",
            type_name(other)
        ))),
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Collects entities without repeating the `Option` dance in every decoder.
#[derive(Debug, Default)]
pub struct Entities(pub Vec<Entity>);

impl Entities {
    pub fn new() -> Entities {
        Entities(Vec::new())
    }

    /// Adds the entity when the value is present and not empty.
    pub fn add(&mut self, kind: EntityKind, role: Role, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            let v = v.trim();
            if !v.is_empty() && v != "-" {
                self.0.push(Entity::new(kind, role, v));
            }
        }
        self
    }

    /// Adds the value at `path` of `record`.
    pub fn add_at(
        &mut self,
        kind: EntityKind,
        role: Role,
        record: &Value,
        path: &str,
    ) -> &mut Self {
        let text = text_at(record, path);
        self.add(kind, role, text.as_deref())
    }

    /// Adds every string of an array (or the single string) at `path`.
    pub fn add_all_at(
        &mut self,
        kind: EntityKind,
        role: Role,
        record: &Value,
        path: &str,
    ) -> &mut Self {
        match get(record, path) {
            Some(Value::Array(items)) => {
                for i in items {
                    self.add(kind, role, i.as_str());
                }
            }
            Some(Value::String(s)) => {
                self.add(kind, role, Some(s));
            }
            _ => {}
        }
        self
    }

    pub fn into_vec(self) -> Vec<Entity> {
        self.0
    }
}

/// Reads a time written with a Java `SimpleDateFormat` pattern (`MMM dd yyyy HH:mm:ss.SSS zzz`),
/// the way CEF (`rt`) and LEEF (`devTime` + `devTimeFormat`) devices write them. It only picks the
/// text apart by the pattern and hands an ISO 8601 string to the one time parser, [`time::parse`].
///
/// Letters understood: `y` (`yy` is 20yy), `M` (numbers, or English month names from `MMM` on),
/// `d`, `H`/`k`, `h`/`K` with `a`, `m`, `s`, `S` (any number of fraction digits), `E` (day names,
/// skipped), `z`/`Z`/`X` (`UTC`, `GMT`, `Z`, `GMT+02:00`, `+0200`, `+02:00`, and the US/central
/// European abbreviations Java itself reads: `EST`, `EDT`, `CST`, `CDT`, `MST`, `MDT`, `PST`,
/// `PDT`, `CET`, `CEST`). `'text'` is a literal; a space matches one or more spaces. No zone
/// means UTC. A pattern without a year is refused: the year cannot be guessed deterministically.
pub fn java_time(text: &str, pattern: &str) -> Result<Timestamp, String> {
    let fail = |why: &str| format!("{text:?} does not match `{pattern}`: {why}");
    let pat: Vec<char> = pattern.chars().collect();
    let txt: Vec<char> = text.trim().chars().collect();
    let (mut year, mut month, mut day) = (None::<i64>, None::<i64>, None::<i64>);
    let (mut hour, mut minute, mut second) = (0i64, 0i64, 0i64);
    let mut fraction = String::new();
    let mut zone = String::new();
    let mut pm: Option<bool> = None;
    let (mut p, mut t) = (0usize, 0usize);
    while p < pat.len() {
        let c = pat[p];
        if c == '\'' {
            // Quoted literal; `''` is a single quote.
            let mut q = p + 1;
            let mut lit = String::new();
            while q < pat.len() && pat[q] != '\'' {
                lit.push(pat[q]);
                q += 1;
            }
            if lit.is_empty() {
                lit.push('\'');
            }
            for lc in lit.chars() {
                if txt.get(t) != Some(&lc) {
                    return Err(fail(&format!("expected `{lc}`")));
                }
                t += 1;
            }
            p = q + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            if c == ' ' {
                if txt.get(t) != Some(&' ') {
                    return Err(fail("expected a space"));
                }
                while txt.get(t) == Some(&' ') {
                    t += 1;
                }
            } else {
                if txt.get(t) != Some(&c) {
                    return Err(fail(&format!("expected `{c}`")));
                }
                t += 1;
            }
            p += 1;
            continue;
        }
        let mut n = 1;
        while p + n < pat.len() && pat[p + n] == c {
            n += 1;
        }
        p += n;
        // A number directly followed by another number field (`yyyyMMdd`) has a fixed width.
        let fixed = pat
            .get(p)
            .is_some_and(|nc| "yMdHkhKmsS".contains(*nc) && !(*nc == 'M' && n >= 3));
        let limit = |max: usize| if fixed { n } else { max };
        let field = format!("expected digits for `{}`", c.to_string().repeat(n));
        let num = |t: &mut usize, max: usize| {
            take_digits(&txt, t, limit(max))
                .map(|d| d.0)
                .ok_or_else(|| fail(&field))
        };
        match c {
            'y' => {
                let (v, s) = take_digits(&txt, &mut t, limit(4)).ok_or_else(|| fail(&field))?;
                year = Some(if s.len() <= 2 { 2000 + v } else { v });
            }
            'M' if n >= 3 => {
                let name = take_letters(&txt, &mut t).to_ascii_lowercase();
                const MONTHS: [&str; 12] = [
                    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                    "dec",
                ];
                let i = MONTHS
                    .iter()
                    .position(|m| name.len() >= 3 && name.starts_with(m))
                    .ok_or_else(|| fail(&format!("`{name}` is not a month")))?;
                month = Some(i as i64 + 1);
            }
            'M' => month = Some(num(&mut t, 2)?),
            'd' => day = Some(num(&mut t, 2)?),
            'H' | 'k' => hour = num(&mut t, 2)? % 24,
            'h' | 'K' => hour = num(&mut t, 2)? % 12,
            'm' => minute = num(&mut t, 2)?,
            's' => second = num(&mut t, 2)?,
            'S' => {
                fraction = take_digits(&txt, &mut t, limit(9))
                    .ok_or_else(|| fail(&field))?
                    .1
            }
            'E' => {
                take_letters(&txt, &mut t);
            }
            'a' => {
                let ampm = take_letters(&txt, &mut t).to_ascii_uppercase();
                pm = match ampm.as_str() {
                    "AM" => Some(false),
                    "PM" => Some(true),
                    _ => return Err(fail(&format!("`{ampm}` is not AM or PM"))),
                };
            }
            'z' | 'Z' | 'X' => {
                let start = t;
                while t < txt.len() && !txt[t].is_whitespace() {
                    t += 1;
                }
                let raw: String = txt[start..t].iter().collect();
                zone = java_zone(&raw).ok_or_else(|| fail(&format!("unknown zone `{raw}`")))?;
            }
            other => return Err(fail(&format!("pattern letter `{other}` is not supported"))),
        }
    }
    if t < txt.len() {
        let rest: String = txt[t..].iter().collect();
        return Err(fail(&format!("unexpected `{rest}` at the end")));
    }
    if pm == Some(true) {
        hour += 12;
    }
    let year = year.ok_or_else(|| fail("the pattern has no year"))?;
    let month = month.ok_or_else(|| fail("the pattern has no month"))?;
    let day = day.ok_or_else(|| fail("the pattern has no day"))?;
    let frac = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    let iso =
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{frac}{zone}");
    time::parse(&iso).map_err(|e| fail(&e.why))
}

fn take_digits(txt: &[char], t: &mut usize, max: usize) -> Option<(i64, String)> {
    let start = *t;
    while *t < txt.len() && *t - start < max && txt[*t].is_ascii_digit() {
        *t += 1;
    }
    let s: String = txt[start..*t].iter().collect();
    s.parse::<i64>().ok().map(|v| (v, s))
}

fn take_letters(txt: &[char], t: &mut usize) -> String {
    let start = *t;
    while *t < txt.len() && txt[*t].is_ascii_alphabetic() {
        *t += 1;
    }
    txt[start..*t].iter().collect()
}

/// A Java zone as an ISO 8601 offset (`Z`, `+02:00`).
fn java_zone(raw: &str) -> Option<String> {
    let fixed = match raw.to_ascii_uppercase().as_str() {
        "Z" | "UTC" | "GMT" | "UT" => "Z",
        "EST" => "-05:00",
        "EDT" => "-04:00",
        "CST" => "-06:00",
        "CDT" => "-05:00",
        "MST" => "-07:00",
        "MDT" => "-06:00",
        "PST" => "-08:00",
        "PDT" => "-07:00",
        "CET" => "+01:00",
        "CEST" => "+02:00",
        _ => "",
    };
    if !fixed.is_empty() {
        return Some(fixed.to_string());
    }
    let off = raw
        .strip_prefix("GMT")
        .or_else(|| raw.strip_prefix("UTC"))
        .unwrap_or(raw);
    let (sign, rest) = match off.chars().next()? {
        s @ ('+' | '-') => (s, &off[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.as_str(), "00"),
        3 => (&digits[..1], &digits[1..]),
        4 => (&digits[..2], &digits[2..]),
        _ => return None,
    };
    Some(format!("{sign}{h:0>2}:{m}"))
}

/// Whether a hash is the all-zero placeholder products write when they have none (EDRs
/// fill `SHA1String` with 40 zeros); such a value would join unrelated alerts.
pub fn is_placeholder_hash(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty() && t.bytes().all(|b| b == b'0')
}

/// Whether a name is one of the ATT&CK Enterprise tactics, however the product spells it
/// (`Defense Evasion`, `DefenseEvasion`, `defense-evasion`). Products mix their own
/// categories (`Malware`, `Machine Learning`) into tactic fields; those are not tactics.
pub fn is_attack_tactic(name: &str) -> bool {
    const TACTICS: [&str; 14] = [
        "reconnaissance",
        "resourcedevelopment",
        "initialaccess",
        "execution",
        "persistence",
        "privilegeescalation",
        "defenseevasion",
        "credentialaccess",
        "discovery",
        "lateralmovement",
        "collection",
        "commandandcontrol",
        "exfiltration",
        "impact",
    ];
    let squashed: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    TACTICS.contains(&squashed.as_str())
}

/// A required time at `path` that the product writes as epoch seconds with a decimal fraction
/// (Zeek's `ts`: `1320435875.879278`). The number's decimal digits are read exactly, so the
/// microseconds survive (going through an `f64` rounds them); whole numbers are seconds, not
/// guessed by magnitude. Strings that are not such a number go to [`req_time`].
pub fn req_epoch_seconds(v: &Value, path: &str) -> Result<(Timestamp, String), DecodeError> {
    let text = match get(v, path) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if decimal_seconds_nanos(s.trim()).is_some() => s.clone(),
        _ => return req_time(v, path),
    };
    match decimal_seconds_nanos(text.trim()) {
        Some(ns) => time::from_unix_nanos(ns)
            .map(|t| (t, text))
            .map_err(|e| DecodeError::new(path, e.to_string())),
        // Exponent notation (`1.6e9`): let the one time parser's number path have it.
        None => req_time(v, path),
    }
}

/// `[-]digits[.digits]` as nanoseconds; `None` for anything else.
fn decimal_seconds_nanos(s: &str) -> Option<i128> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || whole.len() > 12
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i128 = whole.parse().ok()?;
    let mut nanos: i128 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += i128::from(b - b'0') * 10i128.pow(8 - i as u32);
    }
    let total = secs * 1_000_000_000 + nanos;
    Some(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_and_nested_keys_both_resolve() {
        let v = json!({
            "kibana.alert.rule": {"name": "A"},
            "kibana": {"alert": {"severity": "high"}},
            "host.name": "ws-1",
            "x": {"y.z": 3}
        });
        assert_eq!(str_at(&v, "kibana.alert.rule.name"), Some("A"));
        assert_eq!(str_at(&v, "kibana.alert.severity"), Some("high"));
        assert_eq!(str_at(&v, "host.name"), Some("ws-1"));
        assert_eq!(int_at(&v, "x.y.z"), Some(3));
        assert_eq!(get(&v, "nope.nothing"), None);
    }

    #[test]
    fn errors_name_the_field() {
        let v = json!({"a": {"t": 5, "s": "", "time": "not a time"}});
        assert_eq!(
            req_str(&v, "a.b").unwrap_err().to_string(),
            "field `a.b`: missing"
        );
        assert_eq!(
            req_str(&v, "a.s").unwrap_err().to_string(),
            "field `a.s`: empty"
        );
        assert!(
            req_str(&v, "a.t")
                .unwrap_err()
                .to_string()
                .contains("expected a string, found a number")
        );
        let e = req_time(&v, "a.time").unwrap_err();
        assert_eq!(e.field, "a.time");
        assert!(
            first_time(&v, &["x", "y"])
                .unwrap_err()
                .to_string()
                .contains("`x`: missing")
        );
    }

    #[test]
    fn java_patterns_become_instants() {
        let t = |text: &str, pat: &str| java_time(text, pat).map(|t| t.to_string());
        assert_eq!(
            t("Apr 11 2020 10:42:13", "MMM dd yyyy HH:mm:ss").unwrap(),
            "2020-04-11T10:42:13Z"
        );
        assert_eq!(
            t(
                "Aug 15 2015 10:20:05.123 EST",
                "MMM dd yyyy HH:mm:ss.SSS zzz"
            )
            .unwrap(),
            "2015-08-15T15:20:05.123Z"
        );
        assert_eq!(
            t(
                "2019-01-18T11:07:53.520+07:00",
                "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"
            )
            .unwrap(),
            "2019-01-18T04:07:53.52Z"
        );
        assert_eq!(
            t("20150423 11:42:35", "yyyyMMdd HH:mm:ss").unwrap(),
            "2015-04-23T11:42:35Z"
        );
        assert_eq!(
            t(
                "Dec 2, 2010 2:39:58 PM GMT+01:00",
                "MMM d, yyyy h:mm:ss a z"
            )
            .unwrap(),
            "2010-12-02T13:39:58Z"
        );
        assert!(
            t("Apr 11 10:42:13", "MMM dd HH:mm:ss")
                .unwrap_err()
                .contains("no year")
        );
        assert!(t("Apr 11 2020 10:42:13 XYZ", "MMM dd yyyy HH:mm:ss zzz").is_err());
        assert!(t("Foo 11 2020 10:42:13", "MMM dd yyyy HH:mm:ss").is_err());
        assert!(t("Apr 11 2020 10:42:13 extra", "MMM dd yyyy HH:mm:ss").is_err());
    }
}
