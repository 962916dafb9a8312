//! Durations as people write them in playbooks and policies: `30s`, `5m`, `4h`, `1d`,
//! `1h30m`, or a bare number of seconds.

use std::time::Duration;

use riposte_domain::Timestamp;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("an empty duration".into());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "`{t}` is not a duration: use a number with s, m, h or d (e.g. 30s, 5m, 4h, 1h30m)"
                ));
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{t}` is not a duration: a unit without a number"))?;
        num.clear();
        total = total.saturating_add(n.saturating_mul(unit));
    }
    if !num.is_empty() {
        return Err(format!(
            "`{t}` is not a duration: `{num}` has no unit (s, m, h or d)"
        ));
    }
    Ok(Duration::from_secs(total))
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(HumanDuration(Duration::from_secs(n))),
            Raw::S(s) => parse(&s)
                .map(HumanDuration)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// `at + d`, saturating at the largest time jiff knows.
pub fn add(at: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|sd| at.checked_add(sd).ok())
        .unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse("45"), Ok(Duration::from_secs(45)));
        assert!(parse("5 minutes").is_err());
        assert!(parse("10").is_ok());
        assert!(parse("1h5").unwrap_err().contains("no unit"));
    }
}
