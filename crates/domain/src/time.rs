//! The one time parser. Decoders hand it what the product wrote; it returns a UTC instant.
//! Decoders keep the original text next to the parsed value, so nothing is lost when a
//! product's clock or format is odd.

use thiserror::Error;

pub use jiff::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not a time riposte can read: {text:?} ({why})")]
pub struct TimeError {
    pub text: String,
    pub why: String,
}

fn err(text: &str, why: impl Into<String>) -> TimeError {
    TimeError {
        text: text.chars().take(64).collect(),
        why: why.into(),
    }
}

/// Parses an ISO 8601 / RFC 3339 time as products write it:
/// `2018-07-05T15:01:09.820360-0400`, `2021-11-11T17:14:52.001Z`, `2024-01-02 03:04:05+00:00`,
/// `2018/11/30 16:44:36`. A time without a zone is taken as UTC (products that log local time
/// without saying so cannot be fixed here; the original text is kept).
pub fn parse(text: &str) -> Result<Timestamp, TimeError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(err(text, "empty"));
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Ok(ts);
    }
    // Normalise the spellings jiff's strict parser refuses: `/` in dates, a space before the
    // zone, more than nine fractional digits.
    let mut norm = String::with_capacity(s.len() + 6);
    for (i, c) in s.chars().enumerate() {
        norm.push(if c == '/' && i < 10 { '-' } else { c });
    }
    let norm = trim_fraction(
        &norm
            .replace(" +", "+")
            .replace(" -", "-")
            .replace(" Z", "Z"),
    );
    if let Ok(ts) = norm.parse::<Timestamp>() {
        return Ok(ts);
    }
    match norm.parse::<jiff::civil::DateTime>() {
        Ok(dt) => dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| err(text, e.to_string())),
        Err(e) => Err(err(text, e.to_string())),
    }
}

/// Keeps at most nine fractional-second digits (some products write ten or more).
fn trim_fraction(s: &str) -> String {
    let Some(dot) = s.find('.') else {
        return s.to_string();
    };
    let digits = s[dot + 1..].bytes().take_while(u8::is_ascii_digit).count();
    if digits <= 9 {
        return s.to_string();
    }
    format!("{}{}", &s[..dot + 10], &s[dot + 1 + digits..])
}

/// Seconds since the Unix epoch, possibly fractional (`1530817269.82`).
pub fn from_unix_seconds(secs: f64) -> Result<Timestamp, TimeError> {
    if !secs.is_finite() {
        return Err(err(&secs.to_string(), "not a finite number"));
    }
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round() as i32;
    Timestamp::new(whole as i64, nanos.min(999_999_999))
        .map_err(|e| err(&secs.to_string(), e.to_string()))
}

/// Milliseconds since the Unix epoch.
pub fn from_unix_millis(ms: i64) -> Result<Timestamp, TimeError> {
    Timestamp::from_millisecond(ms).map_err(|e| err(&ms.to_string(), e.to_string()))
}

/// Nanoseconds since the Unix epoch (CrowdStrike's streaming API uses these in places).
pub fn from_unix_nanos(ns: i128) -> Result<Timestamp, TimeError> {
    Timestamp::from_nanosecond(ns).map_err(|e| err(&ns.to_string(), e.to_string()))
}

/// Reads an epoch number whose unit is not stated, by magnitude: seconds up to year 5138,
/// then milliseconds, microseconds, nanoseconds.
pub fn from_unix_guess(n: i64) -> Result<Timestamp, TimeError> {
    let a = n.unsigned_abs();
    if a < 100_000_000_000 {
        Timestamp::from_second(n).map_err(|e| err(&n.to_string(), e.to_string()))
    } else if a < 100_000_000_000_000 {
        from_unix_millis(n)
    } else if a < 100_000_000_000_000_000 {
        Timestamp::from_microsecond(n).map_err(|e| err(&n.to_string(), e.to_string()))
    } else {
        from_unix_nanos(n as i128)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(s: &str) -> String {
        parse(s).unwrap().to_string()
    }

    #[test]
    fn product_spellings() {
        assert_eq!(
            iso("2018-07-05T15:01:09.820360-0400"),
            "2018-07-05T19:01:09.82036Z"
        );
        assert_eq!(iso("2021-11-11T17:14:52.001Z"), "2021-11-11T17:14:52.001Z");
        assert_eq!(iso("2024-01-02 03:04:05+00:00"), "2024-01-02T03:04:05Z");
        assert_eq!(iso("2018/11/30 16:44:36"), "2018-11-30T16:44:36Z");
        assert_eq!(iso("2020-08-27T02:15:55"), "2020-08-27T02:15:55Z");
        assert_eq!(
            iso("2023-03-01T10:00:00.1234567890Z"),
            "2023-03-01T10:00:00.123456789Z"
        );
        assert!(parse("").is_err());
        assert!(parse("yesterday").is_err());
    }

    #[test]
    fn epochs() {
        assert_eq!(
            from_unix_guess(1_530_817_269).unwrap().to_string(),
            "2018-07-05T19:01:09Z"
        );
        assert_eq!(
            from_unix_guess(1_530_817_269_820).unwrap().to_string(),
            "2018-07-05T19:01:09.82Z"
        );
        assert_eq!(
            from_unix_guess(1_530_817_269_820_000_000)
                .unwrap()
                .to_string(),
            "2018-07-05T19:01:09.82Z"
        );
        assert_eq!(
            from_unix_seconds(1.5).unwrap().to_string(),
            "1970-01-01T00:00:01.5Z"
        );
    }
}
