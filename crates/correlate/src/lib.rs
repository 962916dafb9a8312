//! riposte's correlate stage: alerts become cases.
//!
//! [`CaseEngine`] takes alerts one at a time ([`CaseEngine::add`]) and keeps the open cases:
//! alerts joined because they share an entity within a time window. It is pure: no I/O, no
//! clock (time is the alerts' own, and `now` is passed to [`CaseEngine::expire`]), no
//! threads, no async. It does not score, enrich or store cases; later stages and the store
//! do that with what it hands out ([`FormedCase`], [`FormedCase::to_case`]).
//!
//! # The rule
//!
//! Alerts are placed in (time, id) order. An alert joins every open case with which it
//! shares a *joining entity*; when that is more than one case, they merge into one (the
//! alert bridges them). When it shares none, it starts a case of its own.
//!
//! - **Joining entities** are those of the kinds in [`CaseConfig::join_kinds`] (host, user,
//!   ip by default); an ip joins only when internal ([`DEFAULT_INTERNAL_RANGES`]: RFC 1918,
//!   CGNAT, loopback, link-local, IPv6 ULA and link-local; configurable). Other entities stay
//!   on the case as evidence. Values are compared as the pipeline canonicalised them.
//! - **The window**: a case can be joined up to `max_gap` (1 h) after its last alert, and never
//!   beyond `max_span` (24 h) after its first. Both edges are inclusive. A merge never breaks
//!   this: every case it merges was joinable at the bridging alert's time, which is the
//!   newest, so the merged case spans at most `max_span` and no gap between its consecutive
//!   alerts exceeds `max_gap`.
//! - **Prevalence caps**: an entity on more than `max_alerts_per_entity` (500) alerts within
//!   the span, or seen with more than `max_cases_per_entity` (25) distinct cases within the
//!   span, stops joining. "Seen with a case" means: the case the alert would be in *without*
//!   that entity. A user on their own laptop keeps meeting the same case; a domain controller,
//!   a proxy or a scanner meets a new one with every host it touches, and would otherwise glue
//!   all of them into one. A capped entity stays capped until it has been quiet for a whole
//!   span. Every case it is on gets a [`Note::EntityCapped`] saying why, and a
//!   [`CaseChange::EntityCapped`] reports it.
//! - **Links**: each alert that joins records one [`Link`] per case and shared entity: which
//!   entity, which earlier alert of the case carried it last, and the gap between the two. The
//!   links of a case connect all its alerts.
//! - **Ids**: a case is `c` + the id of its earliest alert, so a replay gives the same ids. A
//!   merged case keeps the id of the case created first (which has the earliest alert).
//!
//! # Order, lateness, determinism
//!
//! The formed cases are a function of the *set* of alerts in the lateness window, not of the
//! order they arrived in: [`CaseEngine::add`] with an alert older than the newest one placed
//! re-forms the window as if it had arrived in order. The engine keeps snapshots of its state
//! every `max_lateness / 2` of alert time and the alerts placed since the oldest; a late alert
//! puts the state back to the newest snapshot before it and places every alert from there
//! again, in order, then reports the difference as [`CaseChange::Revised`] and
//! [`CaseChange::Withdrawn`]. An alert more than `max_lateness` (1 h) behind the newest one
//! gets a case of its own with [`Note::ArrivedTooLate`]: the cases it might have joined may
//! already be closed and handed out.
//!
//! A replay is costly (about the open state plus the alerts since the snapshot), so sources
//! that are routinely a little out of order should set `reorder_delay`: alerts are then held
//! back that long in a sorted buffer and placed in order at no extra cost ([`CaseEngine::flush`]
//! places what is still held).
//!
//! Nothing depends on hash-map iteration order or on when [`CaseEngine::expire`] is called:
//! the same alerts give the same cases, link for link (the property tests check it against
//! shuffled arrival and interleaved expiry).
//!
//! # Speed and memory
//!
//! Per alert: one hash look-up per joining entity in an index from (kind, canonical value) to
//! the open cases it can join (short lists: an uncapped entity is in at most one joinable
//! case). It allocates its id, its entry in the replay log, entity values the index does not
//! know yet and the returned changes; entity values are shared `Arc<str>`s and scratch buffers
//! are reused. Cases live in a slab; a merge moves the index entries of the case with fewer
//! entities to the other's slot at once, so no stale slot is ever left behind and no
//! union-find is needed. [`CaseEngine::expire`] closes cases whose deadline plus
//! `max_lateness` has passed and forgets entities quiet for a span.
//!
//! Measured on the development machine (release build, one core, alerts with a host, often a
//! user and an internal ip, and a domain; a throw-away harness, not yet a bench command):
//!
//! - 1,000,000 alerts over 120,000 open cases (about 8 alerts each): about 210,000 alerts/s
//!   in order; about 160,000 alerts/s with 5 % of alerts up to 60 s late and
//!   `reorder_delay` 90 s.
//! - 3,000,000 alerts over 100,000 open cases (30 alerts and some 30 entities each, `expire`
//!   every 10,000 alerts): about 180,000 alerts/s.
//! - Memory is what each alert leaves behind while its case is open: its id (shared by the
//!   case, the replay log and the entity index), its place in the case, its links and its
//!   entry in the replay log. An open case keeps each link as three positions (alert, earlier
//!   alert, entity: 12 bytes) and spells links out only when it is handed out
//!   ([`CaseEngine::case`], [`CaseEngine::open_cases`], [`CaseEngine::expire`]).
//! - Inside the case stage (`riposte bench cases`, which also keeps each alert's details for
//!   scoring and counts allocator slack and the copies the snapshots hold), the resident set
//!   grows by about 830 bytes per alert: 8.4 KB per open case of 10 alerts (see
//!   `BENCHMARKS.md`).
//!
//! # Limits, and what is not done yet
//!
//! - Snapshots are copy-on-write (cases and entity states behind `Arc`s): taking one costs a
//!   reference per open case and entity, and restoring one for a late alert is as cheap;
//!   the first change of a case after a snapshot copies that case.
//! - Times and ids could be packed further; entity values other than joining ones are not
//!   interned; the replay log repeats each alert's entities; an entity's recent alert times
//!   are kept whole (16 bytes each).
//! - A case's entities are deduplicated by a linear search (over precomputed hashes); a
//!   per-case set would keep cases with thousands of entities as fast as small ones.
//! - `expire` scans a dense array of every open case's deadline (no case is read unless it
//!   closes) and looks for quiet entities only once one can be quiet; a queue ordered by
//!   deadline would make it proportional to what closes.
//! - `riposte bench cases` measures this engine inside the case stage (see `BENCHMARKS.md`).
//! - Serialisation of [`FormedCase`] for the store (today: [`FormedCase::to_case`]).

pub mod case;
pub mod config;
pub mod engine;

pub use case::{CapReason, CaseAlert, CaseChange, CaseEntity, FormedCase, Link, Note};
pub use config::{CaseConfig, ConfigError, DEFAULT_INTERNAL_RANGES, IpRange};
pub use engine::{CaseEngine, Expiry};
