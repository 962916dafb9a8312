//! What decoders produce: [`Event`]s (raw telemetry) and [`Alert`]s (detections), each with the
//! product's original payload and, once stored, where it came from ([`Origin`]).

use serde::{Deserialize, Serialize};

use crate::{Entity, Severity, TechniqueId, Timestamp};

/// The rule or signature that raised an alert, as the product names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Rule {
    pub fn new(id: Option<String>, name: Option<String>) -> Option<Rule> {
        (id.is_some() || name.is_some()).then_some(Rule { id, name })
    }
}

/// One detection, from an outside tool or from riposte's own detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic: derived from the decoder and the product's id or the content
    /// (see [`crate::id`]). Empty until the pipeline assigns it.
    #[serde(default)]
    pub id: String,
    pub decoder: String,
    /// The product that raised it, e.g. `Suricata`, `CrowdStrike Falcon`.
    pub product: String,
    /// The product's own id of the record, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    pub time: Timestamp,
    /// The time exactly as the product wrote it.
    pub time_original: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    #[serde(default)]
    pub entities: Vec<Entity>,
    #[serde(default)]
    pub techniques: Vec<TechniqueId>,
    /// ATT&CK tactics as the product names them (`Credential Access`, `credential-access`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tactics: Vec<String>,
    /// The record as received: the JSON object, or the text line as a JSON string.
    pub original: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// One raw telemetry record (a Windows event, a sign-in, a connection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(default)]
    pub id: String,
    pub decoder: String,
    pub product: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    pub time: Timestamp,
    pub time_original: String,
    /// What happened, in the product's own terms: `4624`, `dns`, `user.session.start`.
    pub action: String,
    /// `success` or `failure` where the product says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default)]
    pub entities: Vec<Entity>,
    pub original: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Alert,
    Event,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Alert => "alert",
            RecordKind::Event => "event",
        }
    }
}

/// A decoder's output for one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decoded {
    Alert(Alert),
    Event(Event),
}

impl Decoded {
    pub fn kind(&self) -> RecordKind {
        match self {
            Decoded::Alert(_) => RecordKind::Alert,
            Decoded::Event(_) => RecordKind::Event,
        }
    }
    pub fn id(&self) -> &str {
        match self {
            Decoded::Alert(a) => &a.id,
            Decoded::Event(e) => &e.id,
        }
    }
    pub fn decoder(&self) -> &str {
        match self {
            Decoded::Alert(a) => &a.decoder,
            Decoded::Event(e) => &e.decoder,
        }
    }
    pub fn time(&self) -> Timestamp {
        match self {
            Decoded::Alert(a) => a.time,
            Decoded::Event(e) => e.time,
        }
    }
    pub fn source_id(&self) -> Option<&str> {
        match self {
            Decoded::Alert(a) => a.source_id.as_deref(),
            Decoded::Event(e) => e.source_id.as_deref(),
        }
    }
    pub fn original(&self) -> &serde_json::Value {
        match self {
            Decoded::Alert(a) => &a.original,
            Decoded::Event(e) => &e.original,
        }
    }
    pub fn entities(&self) -> &[Entity] {
        match self {
            Decoded::Alert(a) => &a.entities,
            Decoded::Event(e) => &e.entities,
        }
    }
    pub fn entities_mut(&mut self) -> &mut Vec<Entity> {
        match self {
            Decoded::Alert(a) => &mut a.entities,
            Decoded::Event(e) => &mut e.entities,
        }
    }
    pub fn set_id(&mut self, id: String) {
        match self {
            Decoded::Alert(a) => a.id = id,
            Decoded::Event(e) => e.id = id,
        }
    }
    pub fn set_origin(&mut self, origin: Origin) {
        match self {
            Decoded::Alert(a) => a.origin = Some(origin),
            Decoded::Event(e) => e.origin = Some(origin),
        }
    }
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Decoded::Alert(a) => a.origin.as_ref(),
            Decoded::Event(e) => e.origin.as_ref(),
        }
    }
}

/// Where a stored record came from, so an analyst can find the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Origin {
    /// `riposte replay`: the file and the record's 1-based number in it.
    Replay { file: String, record: u64 },
    /// `POST /api/v1/ingest/{decoder}`: the batch, the token's name, the peer address, and the
    /// record's 0-based index in the request body.
    Http {
        batch: String,
        token: String,
        peer: String,
        index: u64,
    },
    /// A syslog listener (`tcp://127.0.0.1:6514`) and the sender's address.
    Syslog { listener: String, peer: String },
}
