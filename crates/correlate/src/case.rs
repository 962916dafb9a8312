//! What case formation hands out: the cases it formed ([`FormedCase`]), why each alert is in
//! its case ([`Link`]), what the case should warn about ([`Note`]), and what one alert changed
//! ([`CaseChange`]).
//!
//! Strings are `Arc<str>`: an alert id or an entity value is shared by the case, the entity
//! index and the replay log instead of being copied into each.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use riposte_domain::{Case, CaseStatus, ConfidenceTier, Entity, EntityKind, Role};

/// One alert of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseAlert {
    pub id: Arc<str>,
    pub time: Timestamp,
}

/// One entity of a case, with the role it had on the first alert that brought it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseEntity {
    pub kind: EntityKind,
    pub role: Role,
    pub value: Arc<str>,
    /// [`entity_hash`] of kind and value, cut to 32 bits: a case's entities are searched
    /// linearly, and this settles almost every comparison without looking at the strings.
    /// 32 bits keep the entity at 24 bytes (the replay log holds one per alert entity).
    pub(crate) hash: u32,
}

impl CaseEntity {
    pub(crate) fn new(kind: EntityKind, role: Role, value: Arc<str>) -> CaseEntity {
        CaseEntity {
            kind,
            role,
            hash: entity_hash(kind, &value) as u32,
            value,
        }
    }
}

/// FNV-1a over the kind and the value. Only a filter before the real comparison, so it need
/// not resist crafted collisions.
pub(crate) fn entity_hash(kind: EntityKind, value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(kind as u8).chain(value.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Why an alert is in its case: it shares `kind`/`value` with the case's alert `with` (the
/// latest one carrying that entity when `alert` arrived), `gap` later than it.
///
/// An alert that shares several entities with the case, or bridges two cases, has one link
/// per entity and case; the first alert of a case has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub alert: Arc<str>,
    pub time: Timestamp,
    pub with: Arc<str>,
    pub kind: EntityKind,
    pub value: Arc<str>,
    pub gap: SignedDuration,
}

/// Why an entity stopped joining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapReason {
    /// Seen with `seen` distinct cases within the span (more than `limit`).
    Cases { seen: usize, limit: usize },
    /// On `seen` alerts within the span (more than `limit`).
    Alerts { seen: usize, limit: usize },
}

/// What an analyst should know about how the case was formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The case carries an entity that no longer joins alerts, so alerts sharing only it were
    /// left in other cases.
    EntityCapped {
        kind: EntityKind,
        value: Arc<str>,
        reason: CapReason,
        /// When it stopped joining.
        at: Timestamp,
    },
    /// The alert arrived more than `max_lateness` behind the newest alert, after the cases it
    /// might have joined were closed; it was not correlated.
    ArrivedTooLate {
        alert: Arc<str>,
        behind: SignedDuration,
    },
}

/// A case as formed: its alerts in time order, its entities, the links that explain it.
///
/// This is the case as handed out (by [`CaseEngine::case`](crate::CaseEngine::case),
/// [`CaseEngine::open_cases`](crate::CaseEngine::open_cases) and
/// [`CaseEngine::expire`](crate::CaseEngine::expire)): built from the engine's compact form,
/// each link spelled out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormedCase {
    /// `c` + the id of its earliest alert (by time, then id), so replays give the same ids.
    pub id: Arc<str>,
    /// In (time, id) order; never empty.
    pub alerts: Vec<CaseAlert>,
    /// In the order first seen.
    pub entities: Vec<CaseEntity>,
    /// In the order of their alerts.
    pub links: Vec<Link>,
    pub notes: Vec<Note>,
}

impl FormedCase {
    pub fn first_seen(&self) -> Timestamp {
        self.alerts.first().map_or(Timestamp::MIN, |a| a.time)
    }

    pub fn last_seen(&self) -> Timestamp {
        self.alerts.last().map_or(Timestamp::MIN, |a| a.time)
    }

    /// The domain [`Case`] for storage and later stages: open, not yet scored.
    pub fn to_case(&self) -> Case {
        Case {
            id: self.id.to_string(),
            status: CaseStatus::Open,
            tier: ConfidenceTier::Low,
            risk: 0,
            alert_ids: self.alerts.iter().map(|a| a.id.to_string()).collect(),
            entities: self
                .entities
                .iter()
                .map(|e| Entity {
                    kind: e.kind,
                    role: e.role,
                    value: e.value.to_string(),
                    raw: None,
                })
                .collect(),
            first_seen: self.first_seen(),
            last_seen: self.last_seen(),
            assignee: None,
            verdict: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn has_cap_note(&self, kind: EntityKind, value: &Arc<str>) -> bool {
        has_cap_note(&self.notes, kind, value)
    }
}

/// A [`Link`] as an open case keeps it: the positions of the two alerts in the case's
/// `alerts` and of the entity in its `entities`. The time and the gap follow from the alerts'
/// times, and the ids and value from the lists, so a link costs 12 bytes instead of 88; the
/// positions are renumbered when a merge or a late alert moves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkRef {
    pub(crate) alert: u32,
    pub(crate) with: u32,
    pub(crate) entity: u32,
}

/// A case while it is open, as the engine keeps it (see [`LinkRef`]); [`OpenCase::to_formed`]
/// spells it out.
#[derive(Debug, Clone)]
pub(crate) struct OpenCase {
    pub(crate) id: Arc<str>,
    /// In (time, id) order; never empty.
    pub(crate) alerts: Vec<CaseAlert>,
    /// In the order first seen.
    pub(crate) entities: Vec<CaseEntity>,
    /// In the order of their alerts.
    pub(crate) links: Vec<LinkRef>,
    pub(crate) notes: Vec<Note>,
    /// Creation order of the (surviving) case; decides which id a merged case keeps.
    pub(crate) serial: u64,
    /// The last instant an alert can join it; kept because every candidate lookup asks.
    pub(crate) deadline: Timestamp,
}

impl OpenCase {
    pub(crate) fn first_seen(&self) -> Timestamp {
        self.alerts.first().map_or(Timestamp::MIN, |a| a.time)
    }

    pub(crate) fn last_seen(&self) -> Timestamp {
        self.alerts.last().map_or(Timestamp::MIN, |a| a.time)
    }

    /// Where `e` is in the case's entities.
    pub(crate) fn entity_index(&self, e: &CaseEntity) -> Option<usize> {
        self.entities
            .iter()
            .position(|x| x.hash == e.hash && x.kind == e.kind && same(&x.value, &e.value))
    }

    /// Where the entity `kind`/`value` is in the case's entities.
    pub(crate) fn find_entity(&self, kind: EntityKind, value: &Arc<str>) -> Option<usize> {
        let hash = entity_hash(kind, value) as u32;
        self.entities
            .iter()
            .position(|x| x.hash == hash && x.kind == kind && same(&x.value, value))
    }

    /// Where the alert (`time`, `id`) is in the case's alerts.
    pub(crate) fn alert_index(&self, time: Timestamp, id: &Arc<str>) -> Option<usize> {
        let i = self
            .alerts
            .partition_point(|x| (x.time, &*x.id) < (time, &**id));
        match self.alerts.get(i) {
            Some(x) if same(&x.id, id) => Some(i),
            // Only a repeated alert id gets here (ids are taken to be unique).
            _ => self.alerts.iter().position(|x| same(&x.id, id)),
        }
    }

    pub(crate) fn has_cap_note(&self, kind: EntityKind, value: &Arc<str>) -> bool {
        has_cap_note(&self.notes, kind, value)
    }

    /// The link as handed out; `None` only if its positions were broken (never, by
    /// construction).
    fn link(&self, l: LinkRef) -> Option<Link> {
        let a = self.alerts.get(l.alert as usize)?;
        let w = self.alerts.get(l.with as usize)?;
        let e = self.entities.get(l.entity as usize)?;
        Some(Link {
            alert: a.id.clone(),
            time: a.time,
            with: w.id.clone(),
            kind: e.kind,
            value: e.value.clone(),
            gap: a.time.duration_since(w.time),
        })
    }

    /// The case as handed out, every link spelled out.
    pub(crate) fn to_formed(&self) -> FormedCase {
        FormedCase {
            id: self.id.clone(),
            alerts: self.alerts.clone(),
            entities: self.entities.clone(),
            links: self.links.iter().filter_map(|l| self.link(*l)).collect(),
            notes: self.notes.clone(),
        }
    }

    /// As [`OpenCase::to_formed`], for a case the engine lets go of.
    pub(crate) fn into_formed(self) -> FormedCase {
        let links = self.links.iter().filter_map(|l| self.link(*l)).collect();
        FormedCase {
            id: self.id,
            alerts: self.alerts,
            entities: self.entities,
            links,
            notes: self.notes,
        }
    }
}

fn has_cap_note(notes: &[Note], kind: EntityKind, value: &Arc<str>) -> bool {
    notes.iter().any(|n| {
        matches!(n, Note::EntityCapped { kind: k, value: v, .. } if *k == kind && same(v, value))
    })
}

/// Equal strings; most values are interned, so the pointer check usually decides.
pub(crate) fn same(a: &Arc<str>, b: &Arc<str>) -> bool {
    Arc::ptr_eq(a, b) || **a == **b
}

/// What one call changed. Case ids are those of [`FormedCase::id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseChange {
    /// A new case, holding the alert alone.
    Created { case: Arc<str> },
    /// The alert joined this existing case.
    Joined { case: Arc<str> },
    /// The alert bridged cases: `absorbed` are gone, their alerts are in `case` with it.
    Merged {
        case: Arc<str>,
        absorbed: Vec<Arc<str>>,
    },
    /// `case` carries an entity that stopped joining (its notes say why).
    EntityCapped {
        case: Arc<str>,
        kind: EntityKind,
        value: Arc<str>,
        reason: CapReason,
    },
    /// A late alert re-formed the window: this case is new or its content changed.
    Revised { case: Arc<str> },
    /// A late alert re-formed the window: this case no longer exists (its alerts are in
    /// revised ones).
    Withdrawn { case: Arc<str> },
}
