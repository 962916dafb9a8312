//! TODO
pub struct EnrichmentConfig;
pub struct EnrichmentSet;
