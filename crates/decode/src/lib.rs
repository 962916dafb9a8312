//! Decoders: one module per product format, all behind the [`Decoder`] trait.
//!
//! A decoder takes one record as received (a JSON object, or for text formats a line held in a
//! JSON string) and returns the [`Decoded`] events and alerts it holds, or a [`DecodeError`]
//! naming the field that was wrong. Decoders map each product's time format and severity scale
//! explicitly and keep the original payload. They do no I/O, hold no state, and do not
//! canonicalise entities (the pipeline does that once, with [`riposte_domain::Canonicaliser`]).
//!
//! [`framing`] splits request bodies and files into records; [`syslog`] reads syslog headers
//! and routes messages to a text decoder.

pub mod fields;
pub mod framing;
pub mod syslog;

pub mod canarytokens;
pub mod cef;
pub mod cowrie;
pub mod crowdstrike;
pub mod defender;
pub mod elastic;
pub mod entra;
pub mod generic;
pub mod guardduty;
pub mod leef;
pub mod m365;
pub mod ocsf;
pub mod okta;
pub mod opencanary;
pub mod panos;
pub mod sentinel;
pub mod sentinelone;
pub mod suricata;
pub mod wazuh;
pub mod windows;
pub mod zeek;

#[cfg(test)]
pub(crate) mod testkit;

use std::fmt;

pub use riposte_domain::Decoded;
use serde_json::Value;

/// What a decoder reads: JSON objects, or text lines (CEF, LEEF, PAN-OS CSV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Json,
    Text,
}

/// One product format.
pub trait Decoder: Send + Sync {
    /// The name used in URLs and on the command line (`suricata`, `cef`, …).
    fn name(&self) -> &'static str;

    /// Whether records are JSON objects or text lines.
    fn input(&self) -> InputKind {
        InputKind::Json
    }

    /// Decodes one record. It may hold none (a GuardDuty `{"findings":[]}` wrapper), one, or
    /// several (a Security Hub event with many findings) events and alerts.
    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError>;

    /// A cheap check whether a record looks like this product's, used by `riposte replay`
    /// without `--decoder`. Must not claim records of other products.
    fn recognises(&self, _record: &Value) -> bool {
        false
    }
}

/// Why a record could not be decoded: which field, and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    /// The field's path in the record (`alert.signature_id`), or `$` for the record itself.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field == "$" {
            write!(f, "record: {}", self.reason)
        } else {
            write!(f, "field `{}`: {}", self.field, self.reason)
        }
    }
}

impl DecodeError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            field: field.into(),
            reason: reason.into(),
        }
    }
    pub fn missing(field: impl Into<String>) -> DecodeError {
        DecodeError::new(field, "missing")
    }
    pub fn record(reason: impl Into<String>) -> DecodeError {
        DecodeError::new("$", reason)
    }
}

/// Every built-in decoder name, in the order `riposte replay` tries them when detecting.
pub const NAMES: [&str; 21] = [
    "suricata",
    "crowdstrike",
    "defender",
    "m365",
    "sentinel",
    "okta",
    "entra",
    "guardduty",
    "sentinelone",
    "windows",
    "zeek",
    "cef",
    "leef",
    "panos",
    "ocsf",
    "elastic",
    "wazuh",
    "canarytokens",
    "opencanary",
    "cowrie",
    "generic",
];

static SURICATA: suricata::Suricata = suricata::Suricata;
static CROWDSTRIKE: crowdstrike::CrowdStrike = crowdstrike::CrowdStrike;
static DEFENDER: defender::Defender = defender::Defender;
static M365: m365::M365 = m365::M365;
static SENTINEL: sentinel::Sentinel = sentinel::Sentinel;
static OKTA: okta::Okta = okta::Okta;
static ENTRA: entra::Entra = entra::Entra;
static GUARDDUTY: guardduty::GuardDuty = guardduty::GuardDuty;
static SENTINELONE: sentinelone::SentinelOne = sentinelone::SentinelOne;
static WINDOWS: windows::Windows = windows::Windows;
static ZEEK: zeek::Zeek = zeek::Zeek;
static CEF: cef::Cef = cef::Cef;
static LEEF: leef::Leef = leef::Leef;
static PANOS: panos::PanOs = panos::PanOs;
static OCSF: ocsf::Ocsf = ocsf::Ocsf;
static ELASTIC: elastic::Elastic = elastic::Elastic;
static WAZUH: wazuh::Wazuh = wazuh::Wazuh;
static CANARYTOKENS: canarytokens::Canarytokens = canarytokens::Canarytokens;
static OPENCANARY: opencanary::OpenCanary = opencanary::OpenCanary;
static COWRIE: cowrie::Cowrie = cowrie::Cowrie;

/// The built-in decoder of that name. `generic` is not here: it needs a mapping
/// ([`generic::Generic::from_yaml`]).
pub fn builtin(name: &str) -> Option<&'static dyn Decoder> {
    Some(match name {
        "suricata" => &SURICATA,
        "crowdstrike" => &CROWDSTRIKE,
        "defender" => &DEFENDER,
        "m365" => &M365,
        "sentinel" => &SENTINEL,
        "okta" => &OKTA,
        "entra" => &ENTRA,
        "guardduty" => &GUARDDUTY,
        "sentinelone" => &SENTINELONE,
        "windows" => &WINDOWS,
        "zeek" => &ZEEK,
        "cef" => &CEF,
        "leef" => &LEEF,
        "panos" => &PANOS,
        "ocsf" => &OCSF,
        "elastic" => &ELASTIC,
        "wazuh" => &WAZUH,
        "canarytokens" => &CANARYTOKENS,
        "opencanary" => &OPENCANARY,
        "cowrie" => &COWRIE,
        _ => return None,
    })
}

/// The built-in decoder whose [`Decoder::recognises`] claims this record, if any.
pub fn detect(record: &Value) -> Option<&'static dyn Decoder> {
    NAMES
        .iter()
        .filter_map(|n| builtin(n))
        .find(|d| d.recognises(record))
}

#[cfg(test)]
mod tests {
    use crate::testkit::corpus_records;

    /// Every record of every product's corpus files is claimed by its own decoder and by no
    /// other one earlier in the detection order (what `auto` and replay rely on).
    #[test]
    fn detect_claims_each_corpus_record_for_its_own_decoder() {
        let files: &[(&str, &str)] = &[
            ("suricata", "alerts/suricata/eve/test-eve-small.log"),
            (
                "crowdstrike",
                "alerts/crowdstrike/falcon/test-falcon-epp-detection-summary.log",
            ),
            (
                "crowdstrike",
                "alerts/crowdstrike/falcon/test-falcon-detection-summary.log",
            ),
            (
                "crowdstrike",
                "alerts/crowdstrike/falcon/test-falcon-identity-protection-incident.log",
            ),
            ("crowdstrike", "alerts/crowdstrike/alert/test-alert.log"),
            (
                "crowdstrike",
                "alerts/crowdstrike/alert/test-automated-lead.log",
            ),
            (
                "crowdstrike",
                "alerts/crowdstrike/alert/test-correlation-detection.log",
            ),
            ("defender", "alerts/defender/endpoint/test-defenderatp.log"),
            ("m365", "alerts/m365_defender/alert/test-alert.log"),
            ("m365", "alerts/m365_defender/incident/test-incident.log"),
            (
                "m365",
                "alerts/m365_defender/incident/test-incident-no-alerts.log",
            ),
            ("sentinel", "alerts/sentinel/alert/test-alert.log"),
            ("sentinel", "alerts/sentinel/incident/test-incident.log"),
            ("okta", "alerts/okta/system/test-okta-system-events.log"),
            ("entra", "alerts/entra/signinlogs/test-signinlogs.log"),
            ("entra", "alerts/entra/signinlogs/test-signinlogs-raw.log"),
            (
                "entra",
                "alerts/entra/signinlogs/test-signinlogs-sample.log",
            ),
            ("guardduty", "alerts/guardduty/test-guardduty.log"),
            ("guardduty", "alerts/guardduty/test-guard_duty.first12.log"),
            (
                "sentinelone",
                "alerts/sentinelone/alert/test-pipeline-alert.log",
            ),
            (
                "sentinelone",
                "alerts/sentinelone/threat/test-pipeline-threat.log",
            ),
            ("zeek", "alerts/zeek/notice/test-notice.log"),
            ("windows", "alerts/windows/security/test-4738.json"),
            (
                "windows",
                "alerts/windows/sysmon/test-image-loaded-failed-signature.json",
            ),
        ];
        let mut failures = Vec::new();
        for (want, rel) in files {
            for (i, r) in corpus_records(rel, crate::InputKind::Json)
                .iter()
                .enumerate()
            {
                let got = crate::detect(r).map(|d| d.name());
                // An empty list page (`{"value": []}`) holds nothing for anyone to claim.
                let empty = crate::builtin(want)
                    .and_then(|d| d.decode(r.clone()).ok())
                    .is_some_and(|v| v.is_empty());
                if got != Some(*want) && !(got.is_none() && empty) {
                    failures.push(format!(
                        "{rel} record {i}: detected as {got:?}, want {want}"
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
