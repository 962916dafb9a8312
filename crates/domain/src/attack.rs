//! MITRE ATT&CK technique ids (`T1059`, `T1059.001`), validated and found inside product text.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A technique or sub-technique id, always upper-case `T` + 4 digits (+ `.` + 3 digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TechniqueId(String);

impl TechniqueId {
    /// Accepts `T1059`, `t1059.001`, `attack.t1059.001` (Sigma tags); nothing else.
    pub fn parse(s: &str) -> Option<TechniqueId> {
        let s = s.trim();
        let s = s.strip_prefix("attack.").unwrap_or(s);
        let b = s.as_bytes();
        let ok_main = b.len() >= 5
            && (b[0] == b'T' || b[0] == b't')
            && b[1..5].iter().all(u8::is_ascii_digit);
        let ok = ok_main
            && (b.len() == 5
                || (b.len() == 9 && b[5] == b'.' && b[6..9].iter().all(u8::is_ascii_digit)));
        ok.then(|| TechniqueId(s.to_ascii_uppercase()))
    }

    /// Every technique id mentioned in free text (`"... (T1003.001) ..."`), in order, once each.
    pub fn find_all(text: &str) -> Vec<TechniqueId> {
        let b = text.as_bytes();
        let mut out: Vec<TechniqueId> = Vec::new();
        let mut i = 0;
        while i + 5 <= b.len() {
            let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
            if boundary
                && (b[i] == b'T' || b[i] == b't')
                && b[i + 1..i + 5].iter().all(u8::is_ascii_digit)
            {
                let mut end = i + 5;
                if end + 4 <= b.len()
                    && b[end] == b'.'
                    && b[end + 1..end + 4].iter().all(u8::is_ascii_digit)
                {
                    end += 4;
                }
                let after_ok = end == b.len() || !b[end].is_ascii_alphanumeric();
                if after_ok
                    && let Some(t) = TechniqueId::parse(&text[i..end])
                    && !out.contains(&t)
                {
                    out.push(t);
                }
                i = end;
            } else {
                i += 1;
            }
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parent technique of a sub-technique (`T1059.001` → `T1059`).
    pub fn parent(&self) -> TechniqueId {
        TechniqueId(self.0[..5].to_string())
    }
}

impl fmt::Display for TechniqueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for TechniqueId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TechniqueId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TechniqueId::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an ATT&CK technique id: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_find() {
        assert_eq!(
            TechniqueId::parse("t1059.001").unwrap().as_str(),
            "T1059.001"
        );
        assert_eq!(
            TechniqueId::parse("attack.t1003").unwrap().as_str(),
            "T1003"
        );
        assert!(TechniqueId::parse("T105").is_none());
        assert!(TechniqueId::parse("T1059.01").is_none());
        assert!(TechniqueId::parse("TA0001").is_none());
        let found =
            TechniqueId::find_all("OS Credential Dumping (T1003.001), T1059; xT1111 T1003.001");
        let ids: Vec<&str> = found.iter().map(|t| t.as_str()).collect();
        assert_eq!(ids, ["T1003.001", "T1059"]);
        assert_eq!(
            TechniqueId::parse("T1059.001").unwrap().parent().as_str(),
            "T1059"
        );
    }
}
