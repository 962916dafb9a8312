//! TODO
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity;
#[derive(Debug, Clone, Default)]
pub struct IdentityDirectory;
