//! Scoring: a case's risk (0–100) and confidence tier, each with its reasons as data.
//!
//! The facts a case carries ([`CaseFacts`]) are turned into factors, each a value in 0..=1
//! times a weight; the risk is their sum. The weights (configurable, [`Weights`]) sum to 100
//! by default, so a risk reads as "points out of 100":
//!
//! | factor | value | default weight |
//! |---|---|---|
//! | `severity` | highest alert severity / 100 | 40 |
//! | `tactics` | distinct ATT&CK tactics, in kill-chain order, (n − 1) / 4, at most 1 | 15 |
//! | `asset` | highest asset criticality, (c − 1) / 4 | 15 |
//! | `sources` | distinct products that alerted, (n − 1) / 2, at most 1 | 10 |
//! | `identity` | 1 when a privileged identity is involved | 10 |
//! | `intel` | highest threat-intel confidence / 100 | 5 |
//! | `volume` | alerts, (n − 1) / 5, at most 1 | 5 |
//!
//! So one high-severity alert on an important host alone scores about 43 (medium), and the
//! same alert joined by others from a second tool, across several tactics, by a privileged
//! user, climbs to high: correlation, not a single tool's opinion, is what raises a tier.
//!
//! Tiers: a decoy used (not by an expected toucher) makes the case `validated`, whatever the
//! score, with the reason "decoy X (kind) used by Y at T": a decoy has no legitimate use,
//! so this is evidence, not likelihood. Otherwise `high`, `medium` and `low` by thresholds
//! ([`Thresholds`], default 70 and 40).

use riposte_domain::ConfidenceTier;
use serde::{Deserialize, Serialize};

/// What scoring looks at. Built by the case stage from the case's alerts and enrichment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseFacts {
    /// Severity score (0–100) of each alert.
    pub severities: Vec<u8>,
    /// Distinct products whose alerts are in the case.
    pub products: Vec<String>,
    /// Distinct ATT&CK tactics (names such as `credential-access`).
    pub tactics: Vec<String>,
    /// Highest criticality (1–5) of an asset in the case, if any is known.
    pub asset_criticality: Option<u8>,
    /// Privileged identities involved (by name).
    pub privileged_identities: Vec<String>,
    /// Threat-intel hits: (feed, indicator, confidence 0–100).
    pub intel_hits: Vec<(String, String, u8)>,
    /// Decoys used, each with its reason ("decoy X (kind) used by Y at T"); expected
    /// touchers are not here.
    pub decoy_uses: Vec<String>,
}

/// One factor's part of a risk: its value (0–1), weight, and points (value × weight).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Factor {
    pub factor: String,
    pub value: f64,
    pub weight: f64,
    pub points: f64,
    /// What the value came from, for a person ("max severity 75 of 6 alerts").
    pub detail: String,
}

/// A case's score: risk, tier, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// 0–100, rounded to one decimal.
    pub risk: f64,
    pub tier: ConfidenceTier,
    /// Why the tier: the decoy reasons, or the threshold crossed.
    pub tier_reason: String,
    pub factors: Vec<Factor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    pub severity: f64,
    pub tactics: f64,
    pub asset: f64,
    pub sources: f64,
    pub identity: f64,
    pub intel: f64,
    pub volume: f64,
}

impl Default for Weights {
    fn default() -> Weights {
        Weights {
            severity: 40.0,
            tactics: 15.0,
            asset: 15.0,
            sources: 10.0,
            identity: 10.0,
            intel: 5.0,
            volume: 5.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Risk at or above which a case is `high`.
    pub high: f64,
    /// Risk at or above which a case is `medium`.
    pub medium: f64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            high: 70.0,
            medium: 40.0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringConfig {
    pub weights: Weights,
    pub thresholds: Thresholds,
}

fn ratio(n: usize, full_at: usize) -> f64 {
    if n <= 1 {
        0.0
    } else {
        ((n - 1) as f64 / (full_at - 1) as f64).min(1.0)
    }
}

impl ScoringConfig {
    /// The score of a case with these facts.
    pub fn score(&self, f: &CaseFacts) -> Score {
        let w = &self.weights;
        let mut factors = Vec::with_capacity(7);
        let mut add = |factor: &str, value: f64, weight: f64, detail: String| {
            let value = value.clamp(0.0, 1.0);
            factors.push(Factor {
                factor: factor.to_string(),
                value,
                weight,
                points: value * weight,
                detail,
            });
        };
        let max_sev = f.severities.iter().copied().max().unwrap_or(0);
        add(
            "severity",
            f64::from(max_sev) / 100.0,
            w.severity,
            format!(
                "highest severity {max_sev} of {} alerts",
                f.severities.len()
            ),
        );
        add(
            "tactics",
            ratio(f.tactics.len(), 5),
            w.tactics,
            if f.tactics.is_empty() {
                "no ATT&CK tactics".into()
            } else {
                format!("{} tactics: {}", f.tactics.len(), f.tactics.join(" → "))
            },
        );
        add(
            "asset",
            f.asset_criticality
                .map_or(0.0, |c| f64::from(c.clamp(1, 5) - 1) / 4.0),
            w.asset,
            f.asset_criticality.map_or("no known asset".into(), |c| {
                format!("asset criticality {c} of 5")
            }),
        );
        add(
            "sources",
            ratio(f.products.len(), 3),
            w.sources,
            format!("{} products: {}", f.products.len(), f.products.join(", ")),
        );
        add(
            "identity",
            if f.privileged_identities.is_empty() {
                0.0
            } else {
                1.0
            },
            w.identity,
            if f.privileged_identities.is_empty() {
                "no privileged identity".into()
            } else {
                format!("privileged: {}", f.privileged_identities.join(", "))
            },
        );
        let best_intel = f.intel_hits.iter().max_by_key(|h| h.2);
        add(
            "intel",
            best_intel.map_or(0.0, |h| f64::from(h.2.min(100)) / 100.0),
            w.intel,
            best_intel.map_or("no threat-intel hit".into(), |h| {
                format!(
                    "{} hits; best {} from {} (confidence {})",
                    f.intel_hits.len(),
                    h.1,
                    h.0,
                    h.2
                )
            }),
        );
        add(
            "volume",
            ratio(f.severities.len(), 6),
            w.volume,
            format!("{} alerts", f.severities.len()),
        );
        let risk = (factors.iter().map(|x| x.points).sum::<f64>() * 10.0).round() / 10.0;
        let t = &self.thresholds;
        let (tier, tier_reason) = if let Some(first) = f.decoy_uses.first() {
            let more = f.decoy_uses.len() - 1;
            let reason = if more == 0 {
                first.clone()
            } else {
                format!("{first} (and {more} more decoy uses)")
            };
            (ConfidenceTier::Validated, reason)
        } else if risk >= t.high {
            (
                ConfidenceTier::High,
                format!("risk {risk} ≥ high threshold {}", t.high),
            )
        } else if risk >= t.medium {
            (
                ConfidenceTier::Medium,
                format!("risk {risk} ≥ medium threshold {}", t.medium),
            )
        } else {
            (
                ConfidenceTier::Low,
                format!("risk {risk} < medium threshold {}", t.medium),
            )
        };
        Score {
            risk,
            tier,
            tier_reason,
            factors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_alert(sev: u8, product: &str, tactic: &str) -> CaseFacts {
        CaseFacts {
            severities: vec![sev],
            products: vec![product.into()],
            tactics: vec![tactic.into()],
            asset_criticality: Some(4),
            ..CaseFacts::default()
        }
    }

    #[test]
    fn a_single_alert_stays_below_the_case_it_joins() {
        let c = ScoringConfig::default();
        let alone = c.score(&one_alert(80, "CrowdStrike", "execution"));
        assert_eq!(alone.tier, ConfidenceTier::Medium, "{alone:#?}");
        // Six alerts from two tools over four tactics on the same critical asset.
        let case = CaseFacts {
            severities: vec![50, 80, 70, 60, 75, 80],
            products: vec!["CrowdStrike".into(), "Okta".into()],
            tactics: vec![
                "initial-access".into(),
                "execution".into(),
                "credential-access".into(),
                "lateral-movement".into(),
            ],
            asset_criticality: Some(4),
            privileged_identities: vec!["alice".into()],
            ..CaseFacts::default()
        };
        let s = c.score(&case);
        assert_eq!(s.tier, ConfidenceTier::High, "{s:#?}");
        assert!(s.risk > alone.risk);
        // Reasons are data: every factor, its value, weight and points.
        assert_eq!(s.factors.len(), 7);
        let sum: f64 = s.factors.iter().map(|f| f.points).sum();
        assert!((sum - s.risk).abs() < 0.05);
        let tactics = s.factors.iter().find(|f| f.factor == "tactics").unwrap();
        assert_eq!(tactics.weight, 15.0);
        assert!(tactics.detail.contains("initial-access → execution"));
    }

    #[test]
    fn a_decoy_use_validates_whatever_the_score() {
        let c = ScoringConfig::default();
        let f = CaseFacts {
            severities: vec![10],
            decoy_uses: vec![
                "decoy sql-trap (spn) used by ip 10.0.3.42 at 2024-05-01T10:03:00Z".into(),
            ],
            ..CaseFacts::default()
        };
        let s = c.score(&f);
        assert_eq!(s.tier, ConfidenceTier::Validated);
        assert!(s.risk < 40.0);
        assert_eq!(
            s.tier_reason,
            "decoy sql-trap (spn) used by ip 10.0.3.42 at 2024-05-01T10:03:00Z"
        );
    }

    #[test]
    fn thresholds_and_weights_come_from_config() {
        let c: ScoringConfig = serde_json::from_value(serde_json::json!({
            "thresholds": {"high": 20, "medium": 10}
        }))
        .unwrap();
        let s = c.score(&one_alert(80, "CrowdStrike", "execution"));
        assert_eq!(s.tier, ConfidenceTier::High);
        assert!(s.tier_reason.contains("high threshold 20"));
        let bad = serde_json::from_value::<ScoringConfig>(serde_json::json!({"weight": {}}));
        assert!(bad.is_err());
    }

    #[test]
    fn edges_are_bounded() {
        let c = ScoringConfig::default();
        let empty = c.score(&CaseFacts::default());
        assert_eq!((empty.risk, empty.tier), (0.0, ConfidenceTier::Low));
        let max = c.score(&CaseFacts {
            severities: vec![100; 50],
            products: (0..9).map(|i| format!("p{i}")).collect(),
            tactics: (0..14).map(|i| format!("t{i}")).collect(),
            asset_criticality: Some(9),
            privileged_identities: vec!["x".into()],
            intel_hits: vec![("f".into(), "1.2.3.4".into(), 250)],
            decoy_uses: vec![],
        });
        assert_eq!(max.risk, 100.0);
    }
}
