//! TODO
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rating { Low }
#[derive(Debug, Clone, Default)]
pub struct AssetInventory;
