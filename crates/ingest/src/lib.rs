//! Sources and the pipeline that every source shares.
//!
//! [`Pipeline`] is the one path from raw record text to stored record: parse, decode,
//! canonicalise entities, assign the deterministic id and the origin. HTTP ingest, syslog and
//! [`replay`] all call it, so the same input gives the same stored records whichever way it
//! arrived. [`DecoderSet`] resolves decoder names, including user-defined generic mappings.
//!
//! This crate does no networking: the server crate owns listeners and hands bodies and
//! messages here.

pub mod cases;
mod decoders;
mod pipeline;
pub mod replay;

pub use decoders::{Auto, DecoderSet, UnknownDecoder};
pub use pipeline::{Decoding, Input, Pipeline, new_batch_id};
