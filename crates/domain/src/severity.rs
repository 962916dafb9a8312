//! Severity on one 0–100 scale with a label, keeping what the product said.
//!
//! Every decoder maps its product's scale explicitly (see each decoder's module doc); this
//! module only fixes the common scale and the label bands.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeverityLabel {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl SeverityLabel {
    /// The band a 0–100 score falls in: info < 20 ≤ low < 40 ≤ medium < 70 ≤ high < 90 ≤ critical.
    pub fn from_score(score: u8) -> SeverityLabel {
        match score {
            0..=19 => SeverityLabel::Info,
            20..=39 => SeverityLabel::Low,
            40..=69 => SeverityLabel::Medium,
            70..=89 => SeverityLabel::High,
            _ => SeverityLabel::Critical,
        }
    }

    /// The score given to a record whose product only states a label.
    pub fn default_score(self) -> u8 {
        match self {
            SeverityLabel::Info => 10,
            SeverityLabel::Low => 30,
            SeverityLabel::Medium => 50,
            SeverityLabel::High => 75,
            SeverityLabel::Critical => 95,
        }
    }

    /// Reads the common English labels products use (`informational`, `Medium`, `HIGH`, `crit`).
    pub fn parse(s: &str) -> Option<SeverityLabel> {
        let l = s.trim().to_ascii_lowercase();
        Some(match l.as_str() {
            "info" | "informational" | "information" | "unknown" | "none" | "notice" | "debug" => {
                SeverityLabel::Info
            }
            "low" | "minor" => SeverityLabel::Low,
            "medium" | "moderate" | "med" | "warning" | "suspicious" => SeverityLabel::Medium,
            "high" | "major" | "error" | "malicious" => SeverityLabel::High,
            "critical" | "crit" | "severe" | "very-high" | "very high" | "emergency" | "alert" => {
                SeverityLabel::Critical
            }
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SeverityLabel::Info => "info",
            SeverityLabel::Low => "low",
            SeverityLabel::Medium => "medium",
            SeverityLabel::High => "high",
            SeverityLabel::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Severity {
    /// 0–100.
    pub score: u8,
    pub label: SeverityLabel,
    /// The product's own value, verbatim (`"1"`, `"High"`, `"8.0"`).
    pub original: String,
}

impl Severity {
    /// From a score already on riposte's 0–100 scale; larger values are clamped to 100.
    pub fn from_score(score: u32, original: impl Into<String>) -> Severity {
        let score = score.min(100) as u8;
        Severity {
            score,
            label: SeverityLabel::from_score(score),
            original: original.into(),
        }
    }

    /// From a label with its conventional score.
    pub fn from_label(label: SeverityLabel, original: impl Into<String>) -> Severity {
        Severity {
            score: label.default_score(),
            label,
            original: original.into(),
        }
    }

    /// Used when a product states no severity at all.
    pub fn unknown() -> Severity {
        Severity {
            score: 0,
            label: SeverityLabel::Info,
            original: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands() {
        assert_eq!(SeverityLabel::from_score(0), SeverityLabel::Info);
        assert_eq!(SeverityLabel::from_score(20), SeverityLabel::Low);
        assert_eq!(SeverityLabel::from_score(69), SeverityLabel::Medium);
        assert_eq!(SeverityLabel::from_score(70), SeverityLabel::High);
        assert_eq!(SeverityLabel::from_score(100), SeverityLabel::Critical);
        assert_eq!(Severity::from_score(250, "250").score, 100);
        for l in [
            SeverityLabel::Info,
            SeverityLabel::Low,
            SeverityLabel::Medium,
            SeverityLabel::High,
            SeverityLabel::Critical,
        ] {
            assert_eq!(SeverityLabel::from_score(l.default_score()), l);
            assert_eq!(SeverityLabel::parse(l.as_str()), Some(l));
        }
    }
}
