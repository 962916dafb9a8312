//! Resolving decoder names: the built-in decoders, plus generic mappings the user adds as
//! YAML files (`generic` with a mapping name).

use std::collections::BTreeMap;
use std::sync::Arc;

use riposte_decode::Decoder;

/// The decoders this instance knows.
#[derive(Clone, Default)]
pub struct DecoderSet {
    generic: BTreeMap<String, Arc<dyn Decoder>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownDecoder {
    #[error("unknown decoder {0:?}; known decoders: auto, {known}", known = riposte_decode::NAMES.join(", "))]
    Name(String),
    #[error(
        "the generic decoder needs a mapping name (`?mapping=NAME` or `--mapping NAME`); loaded mappings: {0}"
    )]
    NoMapping(String),
    #[error("no generic mapping named {0:?}; loaded mappings: {1}")]
    Mapping(String, String),
}

impl DecoderSet {
    pub fn builtin() -> DecoderSet {
        DecoderSet::default()
    }

    /// Adds a generic mapping under `name`.
    pub fn add_generic(&mut self, name: impl Into<String>, decoder: Arc<dyn Decoder>) {
        self.generic.insert(name.into(), decoder);
    }

    pub fn mapping_names(&self) -> String {
        if self.generic.is_empty() {
            "(none)".into()
        } else {
            self.generic.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }

    /// The decoder for `name` (and, for `generic`, the mapping name).
    pub fn resolve(
        &self,
        name: &str,
        mapping: Option<&str>,
    ) -> Result<Arc<dyn Decoder>, UnknownDecoder> {
        if name == "generic" {
            let Some(m) = mapping else {
                return Err(UnknownDecoder::NoMapping(self.mapping_names()));
            };
            return self
                .generic
                .get(m)
                .cloned()
                .ok_or_else(|| UnknownDecoder::Mapping(m.to_string(), self.mapping_names()));
        }
        if name == "auto" {
            return Ok(Arc::new(Auto));
        }
        riposte_decode::builtin(name)
            .map(|d| Arc::new(Static(d)) as Arc<dyn Decoder>)
            .ok_or_else(|| UnknownDecoder::Name(name.chars().take(64).collect()))
    }
}

/// A built-in decoder seen through an `Arc`, so built-in and generic decoders are handled alike.
struct Static(&'static dyn Decoder);

impl Decoder for Static {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn input(&self) -> riposte_decode::InputKind {
        self.0.input()
    }
    fn decode(
        &self,
        record: serde_json::Value,
    ) -> Result<Vec<riposte_decode::Decoded>, riposte_decode::DecodeError> {
        self.0.decode(record)
    }
    fn recognises(&self, record: &serde_json::Value) -> bool {
        self.0.recognises(record)
    }
}

/// `auto`: recognises each record's product. JSON objects go to the built-in decoder whose
/// [`Decoder::recognises`] claims them; text lines to the decoder their syslog content routes
/// to (CEF, LEEF, PAN-OS). Records keep the name of the decoder that read them.
pub struct Auto;

impl Decoder for Auto {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn input(&self) -> riposte_decode::InputKind {
        riposte_decode::InputKind::Text
    }

    fn decode(
        &self,
        record: serde_json::Value,
    ) -> Result<Vec<riposte_decode::Decoded>, riposte_decode::DecodeError> {
        let decoder = match &record {
            serde_json::Value::String(line) => {
                let (_, msg) = riposte_decode::syslog::strip(line);
                riposte_decode::syslog::route(msg).and_then(riposte_decode::builtin).ok_or_else(|| {
                    riposte_decode::DecodeError::record(
                        "not JSON and not CEF, LEEF or PAN-OS; name the decoder instead of `auto`",
                    )
                })?
            }
            other => riposte_decode::detect(other).ok_or_else(|| {
                riposte_decode::DecodeError::record(
                    "no decoder recognises this record; name the decoder instead of `auto`",
                )
            })?,
        };
        decoder.decode(record)
    }
}
