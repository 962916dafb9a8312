//! Cases: alerts joined because they share entities within a time window. Case formation
//! itself lives in the correlate stage; this is the shape every stage agrees on.

use serde::{Deserialize, Serialize};

use crate::{Entity, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfidenceTier {
    Low,
    Medium,
    High,
    /// Deterministic evidence, such as a decoy touched.
    Validated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Acknowledged,
    Contained,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub status: CaseStatus,
    pub tier: ConfidenceTier,
    /// 0–100.
    pub risk: u8,
    pub alert_ids: Vec<String>,
    pub entities: Vec<Entity>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
}
