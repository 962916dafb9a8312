//! Enrichment (stage 3): what riposte knows locally about an entity.
//!
//! Every source is a module behind the one [`Source`] trait:
//!
//! - [`intel`] — threat-intel indicators from STIX 2.1 bundles, MISP feeds and CSV or plain
//!   lists: addresses and CIDRs in a prefix trie, domains matching their subdomains, URLs, and
//!   hashes by type. A hit names the feed, the indicator, its confidence and validity.
//! - [`assets`] — the asset inventory: criticality, C/I/A ratings, owner, tags.
//! - [`identities`] — who a user is: aliases, privileged flag, groups, department.
//! - [`attack`] — ATT&CK technique → name and tactics, from a table embedded in the binary.
//!
//! [`EnrichmentSet`] holds all loaded sources. [`EnrichmentSet::load`] builds a whole new set
//! from an [`EnrichmentConfig`] or fails with a [`LoadError`] naming file, line and reason;
//! the caller keeps serving the previous set (behind an `Arc`) until a load succeeds, which is
//! how enrichment reloads without a restart and how a bad feed never empties it.
//!
//! Look-ups are the hot path (every entity of every alert), so they allocate nothing: hash
//! maps keyed by the canonical value, a binary trie for CIDRs, and results that borrow from
//! the set ([`Context`]). Values are canonicalised at load time by the pipeline's own
//! [`riposte_domain::Canonicaliser`], so an indicator matches exactly the entities the
//! pipeline would call the same.
//!
//! What this crate is not: it does no network look-ups (those are playbook actions, cached),
//! and it never changes an entity. Its only I/O is reading the configured files at load (and
//! [`synthetic`], which writes benchmark data).
//!
//! Choices worth knowing:
//! - Bad input refuses the whole load (a malformed STIX pattern, a CSV without its column, a
//!   value not of the declared type, an unknown `type` in the config, a name claimed by two
//!   assets). Well-formed input riposte cannot index (a STIX pattern with `AND`, a MISP `text`
//!   attribute) is skipped and listed in [`Feed::skipped`] with its line.
//! - Contexts are reported assets, then identities, then intel; within intel, exact matches
//!   before CIDRs, longer prefixes first, parent domains after the exact name.
//! - Memory per indicator is reported by [`ThreatIntel::footprint`]; at 100,000 indicators it
//!   is about 170 bytes (`cargo run --release -p riposte-enrich --example bench_lookup`).
//!
//! Not yet:
//! - wiring into the pipeline and the binary (`riposte config check`, reload on SIGHUP or a
//!   file watcher, `riposte bench` with case formation); [`SharedEnrichment::reload`] is the
//!   hook;
//! - STIX: `AND`, `FOLLOWEDBY` and qualifiers are skipped, not evaluated; object types other
//!   than addresses, domains, URLs and file hashes (`email-addr`, `network-traffic`, …) are not
//!   indexed; `indicator` relationships and `marking-definition`s are ignored;
//! - MISP: no decay model, sightings, warning lists or tag/TLP filtering; the feed's
//!   `hashes.csv` shortcut is not used; expiry only via the feed's configured `valid_until`;
//! - CSV feeds: one value column; no per-row confidence or validity columns; a header row is
//!   required (feeds whose header is a `#` comment need it uncommented);
//! - URLs match only in their exact canonical form (no path-prefix matching); domain
//!   indicators do not match host entities, which the canonicaliser shortens;
//! - indicator values are stored twice (record and map key); interning would save ~30%.

pub mod assets;
pub mod attack;
mod error;
pub mod identities;
pub mod intel;
pub mod set;
pub mod synthetic;
mod tabular;

use riposte_domain::{Entity, Timestamp};

pub use assets::{Asset, AssetInventory, Criticality, Rating};
pub use error::LoadError;
pub use identities::{Identity, IdentityDirectory};
pub use intel::{
    DeclaredType, Feed, Indicator, IndicatorKind, IntelFootprint, IntelHit, ThreatIntel,
};
pub use set::{EnrichmentConfig, EnrichmentSet, FeedConfig, FeedFormat, SharedEnrichment};

/// One thing a source knows about an entity. Borrows from the source, so producing it costs
/// no allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Context<'s> {
    Intel(IntelHit<'s>),
    Asset(&'s Asset),
    Identity(&'s Identity),
}

/// An enrichment source: given one canonical entity and the time of the record it came from,
/// append what it knows. Entities must already be canonical (the pipeline's `Canonicaliser`
/// ran); a source never canonicalises on the hot path.
pub trait Source: Send + Sync {
    /// A short name for logs and reports (`intel`, `assets`, `identities`).
    fn name(&self) -> &str;

    /// Appends every context this source has for `entity` as of `at` to `out`.
    fn enrich<'s>(&'s self, entity: &Entity, at: Timestamp, out: &mut Vec<Context<'s>>);
}
