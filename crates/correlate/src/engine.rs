//! The case former: [`CaseEngine`] takes alerts one at a time and keeps the open cases, an
//! index from entity to the cases it joins, and what it needs to re-form the window when an
//! alert arrives late.
//!
//! Everything that decides where an alert lands lives in `State::place`, which sees alerts
//! strictly in (time, id) order. The engine's job around it is to keep that promise: an alert
//! that arrives out of order puts the state back to a snapshot taken before its time and
//! places everything from there again, in order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use foldhash::fast::RandomState;
use jiff::{SignedDuration, Timestamp};
use riposte_domain::{Alert, EntityKind, ShortKey};

use crate::case::{
    CapReason, CaseAlert, CaseChange, CaseEntity, FormedCase, LinkRef, Note, OpenCase, entity_hash,
    same,
};
use crate::config::{CaseConfig, ConfigError, Rules, kind_index};

/// Forms cases from alerts. See the crate documentation for the rules.
#[derive(Debug)]
pub struct CaseEngine {
    rules: Rules,
    state: State,
    /// State before the first alert at or after each time, oldest first; the first is never
    /// after the lateness horizon, so any alert still accepted can be re-placed from one.
    snapshots: VecDeque<(Timestamp, State)>,
    /// The alerts placed since the oldest snapshot, in (time, id) order.
    log: VecDeque<Logged>,
    /// How far apart snapshots are (half the lateness: replay never covers more than 1.5×).
    snapshot_every: SignedDuration,
    /// The newest alert time seen, or the `now` of the last [`CaseEngine::expire`] if later.
    watermark: Option<Timestamp>,
    /// The (time, id) of the newest alert placed.
    last_key: Option<(Timestamp, Arc<str>)>,
    /// Cases with a deadline before this were closed and handed out by `expire`.
    closed_through: Option<Timestamp>,
    /// Cases of alerts that came too late to be correlated, until `expire` hands them out.
    stragglers: Vec<OpenCase>,
    /// Alerts held back for `reorder_delay`, in (time, id, arrival) order.
    held: BTreeMap<(Timestamp, Arc<str>, u64), Logged>,
    arrivals: u64,
    scratch: Scratch,
}

/// What [`CaseEngine::expire`] did.
#[derive(Debug, Default)]
pub struct Expiry {
    /// Changes from alerts released from the reorder buffer on the way.
    pub changes: Vec<CaseChange>,
    /// Cases nothing can join any more, in (first seen, id) order, with too-late alerts'
    /// cases. The engine has forgotten them.
    pub closed: Vec<FormedCase>,
}

/// An alert as case formation needs it.
#[derive(Debug, Clone)]
struct Logged {
    time: Timestamp,
    id: Arc<str>,
    entities: Box<[CaseEntity]>,
}

/// Everything placement decides from; cloned whole for a snapshot. Cases and entity states
/// are behind `Arc`s and copied on write (`Arc::make_mut`), so a snapshot costs a reference
/// per case and entity, and afterwards only what changes is copied.
#[derive(Debug, Clone)]
struct State {
    /// Open cases by slot; `None` slots are on `free`.
    cases: Vec<Option<Arc<OpenCase>>>,
    /// Each open case's deadline by slot (`Timestamp::MAX` for a free slot): the joinable
    /// check and `close_before` read this dense copy instead of every case.
    deadlines: Vec<Timestamp>,
    free: Vec<u32>,
    by_id: HashMap<Arc<str>, u32, RandomState>,
    /// Joining entities by kind (see `kind_index`) and canonical value. Short values are
    /// held in the map's slot ([`ShortKey`]), so finding one reads no string elsewhere; the
    /// shared `Arc` of the value is in its state.
    entities: [HashMap<ShortKey, Arc<EntityState>, RandomState>; EntityKind::ALL.len()],
    /// No entity's `last_seen` is before this (a bound, not the minimum): `expire` looks for
    /// quiet entities only once the quiet line has passed it.
    seen_floor: Timestamp,
    next_serial: u64,
}

impl Default for State {
    fn default() -> State {
        State {
            cases: Vec::new(),
            deadlines: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::default(),
            entities: Default::default(),
            seen_floor: Timestamp::MAX,
            next_serial: 0,
        }
    }
}

#[derive(Debug, Clone)]
struct EntityState {
    /// The value, shared by every case entity and log entry that carries it.
    value: Arc<str>,
    last_seen: Option<Timestamp>,
    /// Set once the entity stops joining; cleared after it has been quiet for `max_span`.
    capped: Option<CapReason>,
    /// Times of its latest alerts within the span, at most `max_alerts + 1`.
    recent: VecDeque<Timestamp>,
    /// Distinct cases it was seen with within the span: (case serial, last time).
    anchors: Few<(u64, Timestamp)>,
    /// The open cases it can join, with its latest alert in each.
    members: Few<Member>,
}

#[derive(Debug, Clone)]
struct Member {
    slot: u32,
    alert: Arc<str>,
    time: Timestamp,
}

/// Buffers reused across alerts so placing one allocates only what the case keeps.
#[derive(Debug, Default)]
struct Scratch {
    joiners: Vec<Joiner>,
    cands: Vec<Cand>,
    slots: Vec<u32>,
}

#[derive(Debug)]
struct Joiner {
    kind: EntityKind,
    value: Arc<str>,
    capped: bool,
    /// Set when this alert capped it.
    newly: Option<CapReason>,
}

#[derive(Debug)]
struct Cand {
    slot: u32,
    joiner: usize,
    with: Arc<str>,
    with_time: Timestamp,
}

fn plus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

fn minus(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_sub(d).unwrap_or(Timestamp::MIN)
}

/// The last instant an alert can join the case: `max_gap` after its last alert, but never
/// beyond `max_span` after its first.
fn compute_deadline(rules: &Rules, c: &OpenCase) -> Timestamp {
    plus(c.last_seen(), rules.max_gap).min(plus(c.first_seen(), rules.max_span))
}

impl CaseEngine {
    pub fn new(config: &CaseConfig) -> Result<CaseEngine, ConfigError> {
        let rules = Rules::new(config)?;
        let half = rules.max_lateness / 2;
        let snapshot_every = half.max(SignedDuration::from_secs(1));
        let mut snapshots = VecDeque::new();
        if rules.max_lateness.is_positive() {
            snapshots.push_back((Timestamp::MIN, State::default()));
        }
        Ok(CaseEngine {
            rules,
            state: State::default(),
            snapshots,
            log: VecDeque::new(),
            snapshot_every,
            watermark: None,
            last_key: None,
            closed_through: None,
            stragglers: Vec::new(),
            held: BTreeMap::new(),
            arrivals: 0,
            scratch: Scratch::default(),
        })
    }

    /// Takes one alert and says what changed: where it landed, or, with a reorder delay,
    /// where the alerts it released landed.
    ///
    /// Alert ids are taken to be unique (the store de-duplicates before this stage).
    pub fn add(&mut self, alert: &Alert) -> Vec<CaseChange> {
        self.add_with_id(alert, Arc::from(alert.id.as_str()))
    }

    /// [`CaseEngine::add`] with the alert's id already shared: `id` must equal `alert.id`.
    /// The engine keeps this `Arc` wherever it keeps the id, so a caller that also keeps the
    /// id (to find the alert's details later) stores it once.
    pub fn add_with_id(&mut self, alert: &Alert, id: Arc<str>) -> Vec<CaseChange> {
        let mut out = Vec::new();
        self.add_into(alert, id, &mut out);
        out
    }

    /// [`CaseEngine::add_with_id`], appending the changes to `out` (a caller placing many
    /// alerts reuses one buffer).
    pub fn add_into(&mut self, alert: &Alert, id: Arc<str>, out: &mut Vec<CaseChange>) {
        let logged = self.logged(alert, id);
        let t = logged.time;
        if self.too_late(t) {
            out.extend(self.straggle(logged));
            return;
        }
        let wm = self.watermark.map_or(t, |w| w.max(t));
        self.watermark = Some(wm);
        if self.rules.reorder_delay.is_zero() {
            self.release(logged, out);
        } else {
            self.held
                .insert((t, logged.id.clone(), self.arrivals), logged);
            self.arrivals += 1;
            self.release_until(minus(wm, self.rules.reorder_delay), out);
        }
    }

    /// Places every alert still held back by the reorder delay (at the end of a replay,
    /// before shutting down).
    pub fn flush(&mut self) -> Vec<CaseChange> {
        let mut out = Vec::new();
        self.release_until(Timestamp::MAX, &mut out);
        out
    }

    /// Alerts held back by the reorder delay, not yet in any case.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    /// Closes every case nothing can join any more, given that alerts up to `now` have been
    /// seen (or are given up on): its deadline is more than `max_lateness` before `now`.
    /// Held alerts due by `now` are placed first.
    pub fn expire(&mut self, now: Timestamp) -> Expiry {
        let mut changes = Vec::new();
        self.release_until(minus(now, self.rules.reorder_delay), &mut changes);
        let wm = self.watermark.map_or(now, |w| w.max(now));
        self.watermark = Some(wm);
        let horizon = minus(wm, self.rules.max_lateness);
        self.closed_through = Some(horizon);
        let mut closed = self.state.close_before(horizon);
        closed.extend(self.stragglers.drain(..).map(OpenCase::into_formed));
        closed.sort_by(|a, b| (a.first_seen(), &a.id).cmp(&(b.first_seen(), &b.id)));
        // Forget entities that have been quiet for a whole span and join no open case: they
        // would start from nothing on their next alert anyway.
        let quiet = minus(horizon, self.rules.max_span);
        self.state.forget_quiet(quiet);
        while self.snapshots.len() >= 2 && self.snapshots[1].0 <= horizon {
            self.snapshots.pop_front();
        }
        if let Some((oldest, _)) = self.snapshots.front() {
            while self.log.front().is_some_and(|l| l.time < *oldest) {
                self.log.pop_front();
            }
        }
        Expiry { changes, closed }
    }

    fn too_late(&self, t: Timestamp) -> bool {
        self.watermark
            .is_some_and(|wm| t < minus(wm, self.rules.max_lateness))
    }

    fn release_until(&mut self, until: Timestamp, out: &mut Vec<CaseChange>) {
        while let Some(entry) = self.held.first_entry() {
            if entry.key().0 > until {
                break;
            }
            // It was in time when it came; the cases it can join are still open, because
            // `expire` places what is due before it closes anything.
            let logged = entry.remove();
            self.release(logged, out);
        }
    }

    /// Places an alert that is not too late: in order when it is, else by re-forming.
    fn release(&mut self, logged: Logged, out: &mut Vec<CaseChange>) {
        let t = logged.time;
        let in_order = self
            .last_key
            .as_ref()
            .is_none_or(|(lt, lid)| (t, &*logged.id) >= (*lt, &**lid));
        if in_order || self.snapshots.is_empty() {
            self.maybe_snapshot(t);
            self.state
                .place(&self.rules, &mut self.scratch, &logged, out);
            if in_order {
                self.last_key = Some((t, logged.id.clone()));
            }
            if !self.snapshots.is_empty() {
                self.log.push_back(logged);
            }
        } else {
            self.replay_with(logged, out);
        }
    }

    /// An open case (or a too-late alert's case not yet handed out) by id, spelled out.
    pub fn case(&self, id: &str) -> Option<FormedCase> {
        self.open_case(id).map(OpenCase::to_formed)
    }

    fn open_case(&self, id: &str) -> Option<&OpenCase> {
        match self.state.by_id.get(id) {
            Some(slot) => self.state.cases.get(*slot as usize)?.as_deref(),
            None => self.stragglers.iter().find(|c| &*c.id == id),
        }
    }

    /// The open cases in (first seen, id) order, then too-late alerts' cases, spelled out.
    /// To go through many without holding them all at once, take
    /// [`CaseEngine::open_case_ids`] and [`CaseEngine::case`].
    pub fn open_cases(&self) -> Vec<FormedCase> {
        self.sorted_open().map(OpenCase::to_formed).collect()
    }

    /// The ids of [`CaseEngine::open_cases`], in the same order.
    pub fn open_case_ids(&self) -> Vec<Arc<str>> {
        self.sorted_open().map(|c| c.id.clone()).collect()
    }

    fn sorted_open(&self) -> impl Iterator<Item = &OpenCase> {
        let mut v: Vec<&OpenCase> = self.state.cases.iter().flatten().map(|c| &**c).collect();
        v.sort_by(|a, b| (a.first_seen(), &a.id).cmp(&(b.first_seen(), &b.id)));
        v.into_iter().chain(self.stragglers.iter())
    }

    pub fn open_case_count(&self) -> usize {
        self.state.by_id.len() + self.stragglers.len()
    }

    /// The newest alert time seen (or `now` of the last `expire`, if later).
    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermark
    }

    fn logged(&self, a: &Alert, id: Arc<str>) -> Logged {
        let entities = a
            .entities
            .iter()
            .map(|e| {
                // Reuse the index's copy of a value it already knows.
                let value = self.state.entities[kind_index(e.kind)]
                    .get(e.value.as_bytes())
                    .map_or_else(|| Arc::from(e.value.as_str()), |s| s.value.clone());
                CaseEntity::new(e.kind, e.role, value)
            })
            .collect();
        Logged {
            time: a.time,
            id,
            entities,
        }
    }

    fn maybe_snapshot(&mut self, t: Timestamp) {
        let Some((last, _)) = self.snapshots.back() else {
            return;
        };
        if t >= plus(*last, self.snapshot_every) {
            self.snapshots.push_back((t, self.state.clone()));
        }
    }

    fn straggle(&mut self, a: Logged) -> Vec<CaseChange> {
        let behind = self
            .watermark
            .map_or(SignedDuration::ZERO, |wm| wm.duration_since(a.time));
        let id: Arc<str> = Arc::from(format!("c{}", a.id));
        let mut case = OpenCase {
            id: id.clone(),
            alerts: vec![CaseAlert {
                id: a.id.clone(),
                time: a.time,
            }],
            entities: Vec::new(),
            links: Vec::new(),
            notes: vec![Note::ArrivedTooLate {
                alert: a.id.clone(),
                behind,
            }],
            serial: u64::MAX,
            deadline: a.time,
        };
        add_entities(&mut case, &a);
        self.stragglers.push(case);
        vec![CaseChange::Created { case: id }]
    }

    /// Re-forms the window with a late alert: back to the newest snapshot before it, then
    /// every logged alert from there in order. Reports the difference as revised and
    /// withdrawn cases.
    fn replay_with(&mut self, late: Logged, out: &mut Vec<CaseChange>) {
        let key = (late.time, late.id.clone());
        let Some(k) = self.snapshots.iter().rposition(|(t, _)| *t <= late.time) else {
            // Cannot happen while the oldest snapshot is kept at or before the lateness
            // horizon; if it did, the alert is still kept, uncorrelated.
            out.extend(self.straggle(late));
            return;
        };
        let before: HashMap<Arc<str>, Summary> = self
            .state
            .cases
            .iter()
            .flatten()
            .map(|c| (c.id.clone(), Summary::of(c)))
            .collect();
        let at = self
            .log
            .partition_point(|l| (l.time, &*l.id) <= (key.0, &*key.1));
        self.log.insert(at, late);
        self.snapshots.truncate(k + 1);
        let Some((from, snap)) = self.snapshots.back() else {
            return;
        };
        let from = *from;
        self.state = snap.clone();
        let start = self.log.partition_point(|l| l.time < from);
        let mut discard = Vec::new();
        for i in start..self.log.len() {
            let t = self.log[i].time;
            self.maybe_snapshot(t);
            self.state
                .place(&self.rules, &mut self.scratch, &self.log[i], &mut discard);
            discard.clear();
        }
        if let Some(h) = self.closed_through {
            // Already handed out by `expire`; a later alert cannot have changed them.
            self.state.close_before(h);
        }
        let mut after: Vec<(&Arc<str>, Summary)> = self
            .state
            .cases
            .iter()
            .flatten()
            .map(|c| (&c.id, Summary::of(c)))
            .collect();
        after.sort_by(|a, b| a.0.cmp(b.0));
        let mut withdrawn: Vec<&Arc<str>> = before
            .keys()
            .filter(|id| !self.state.by_id.contains_key(&***id))
            .collect();
        withdrawn.sort();
        for id in withdrawn {
            out.push(CaseChange::Withdrawn { case: id.clone() });
        }
        for (id, s) in after {
            if before.get(id) != Some(&s) {
                out.push(CaseChange::Revised { case: id.clone() });
            }
        }
    }
}

/// Enough of a case to tell whether a replay changed it: which alerts it holds (as a sum of
/// their ids' hashes, so two cases that swapped alerts differ) and how many links and notes.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    alerts: usize,
    fingerprint: u64,
    links: usize,
    notes: usize,
}

impl Summary {
    fn of(c: &OpenCase) -> Summary {
        Summary {
            alerts: c.alerts.len(),
            fingerprint: c.alerts.iter().fold(0u64, |acc, a| {
                acc.wrapping_add(entity_hash(EntityKind::Host, &a.id))
            }),
            links: c.links.len(),
            notes: c.notes.len(),
        }
    }
}

fn add_entities(case: &mut OpenCase, a: &Logged) {
    for e in a.entities.iter() {
        if case.entity_index(e).is_none() {
            case.entities.push(e.clone());
        }
    }
}

/// Merges two lists already in key order, keeping `a`'s element first on equal keys, and
/// says where each element of `a` and of `b` went.
fn merge_sorted<T, K: Ord>(
    a: Vec<T>,
    b: Vec<T>,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, Vec<u32>, Vec<u32>) {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut from_a = Vec::with_capacity(a.len());
    let mut from_b = Vec::with_capacity(b.len());
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => key(x) <= key(y),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let (next, to) = if take_a {
            (a.next(), &mut from_a)
        } else {
            (b.next(), &mut from_b)
        };
        to.push(out.len() as u32);
        out.extend(next);
    }
    (out, from_a, from_b)
}

impl State {
    /// Places one alert, given that every alert before it in (time, id) order has been
    /// placed and none after it. This is the whole of the formation rule.
    fn place(&mut self, rules: &Rules, sc: &mut Scratch, a: &Logged, out: &mut Vec<CaseChange>) {
        let t = a.time;
        let span_start = minus(t, rules.max_span);
        sc.joiners.clear();
        sc.cands.clear();
        for CaseEntity { kind, value, .. } in a.entities.iter() {
            if rules.joins(*kind, value)
                && !sc
                    .joiners
                    .iter()
                    .any(|j| j.kind == *kind && same(&j.value, value))
            {
                sc.joiners.push(Joiner {
                    kind: *kind,
                    value: value.clone(),
                    capped: false,
                    newly: None,
                });
            }
        }

        // Each joining entity: count it, cap it if too common, find the cases it can join.
        for (ji, j) in sc.joiners.iter_mut().enumerate() {
            let es = Arc::make_mut(
                self.entities[kind_index(j.kind)]
                    .entry(ShortKey::shared(&j.value))
                    .or_insert_with(|| Arc::new(EntityState::new(j.value.clone()))),
            );
            self.seen_floor = self.seen_floor.min(t);
            if es.last_seen.is_some_and(|l| l < span_start) {
                es.capped = None;
                es.recent.clear();
                es.anchors.clear();
            }
            es.last_seen = Some(es.last_seen.map_or(t, |l| l.max(t)));
            let deadlines = &self.deadlines;
            es.members
                .retain(|m| deadlines.get(m.slot as usize).is_some_and(|d| *d >= t));
            if es.capped.is_some() {
                j.capped = true;
                continue;
            }
            es.recent.push_back(t);
            while es.recent.front().is_some_and(|f| *f < span_start)
                || es.recent.len() > rules.max_alerts + 1
            {
                es.recent.pop_front();
            }
            if es.recent.len() > rules.max_alerts {
                let reason = CapReason::Alerts {
                    seen: es.recent.len(),
                    limit: rules.max_alerts,
                };
                cap(es, reason);
                j.capped = true;
                j.newly = Some(reason);
                continue;
            }
            for m in &es.members {
                sc.cands.push(Cand {
                    slot: m.slot,
                    joiner: ji,
                    with: m.alert.clone(),
                    with_time: m.time,
                });
            }
        }

        // How many distinct cases each entity has been seen with: the case the alert would
        // be in without that entity. An entity that keeps pulling otherwise separate cases
        // together is infrastructure, not evidence.
        let uncapped = sc.joiners.iter().filter(|j| !j.capped).count();
        for ji in 0..sc.joiners.len() {
            if sc.joiners[ji].capped {
                continue;
            }
            let serial = |c: &Cand| {
                self.cases
                    .get(c.slot as usize)
                    .and_then(Option::as_ref)
                    .map_or(u64::MAX, |c| c.serial)
            };
            let others = sc.cands.iter().filter(|c| c.joiner != ji).map(serial).min();
            let own = sc.cands.iter().filter(|c| c.joiner == ji).map(serial).min();
            let anchor = match (others, own) {
                (Some(s), _) => s,
                // Without this entity the alert would have started a case of its own.
                (None, Some(_)) if uncapped > 1 => {
                    self.next_serial += 1;
                    self.next_serial - 1
                }
                (None, Some(s)) => s,
                // No case at all: the alert starts the one that gets the next serial.
                (None, None) => self.next_serial,
            };
            let j = &mut sc.joiners[ji];
            let Some(es) = self.entities[kind_index(j.kind)]
                .get_mut(j.value.as_bytes())
                .map(Arc::make_mut)
            else {
                continue;
            };
            es.anchors.retain(|(_, at)| *at >= span_start);
            match es
                .anchors
                .as_mut_slice()
                .iter_mut()
                .find(|(s, _)| *s == anchor)
            {
                Some(x) => x.1 = t,
                None => es.anchors.push((anchor, t)),
            }
            if es.anchors.len() > rules.max_cases {
                let reason = CapReason::Cases {
                    seen: es.anchors.len(),
                    limit: rules.max_cases,
                };
                cap(es, reason);
                j.capped = true;
                j.newly = Some(reason);
                sc.cands.retain(|c| c.joiner != ji);
            }
        }

        // Land: a new case, the one case found, or the merge of all of them.
        sc.slots.clear();
        for c in &sc.cands {
            if !sc.slots.contains(&c.slot) {
                sc.slots.push(c.slot);
            }
        }
        let created = sc.slots.is_empty();
        let (slot, change) = match sc.slots.len() {
            0 => {
                let slot = self.create(rules, a);
                let id = self.case_id(slot);
                (slot, CaseChange::Created { case: id })
            }
            1 => {
                let slot = sc.slots[0];
                (
                    slot,
                    CaseChange::Joined {
                        case: self.case_id(slot),
                    },
                )
            }
            _ => {
                let (slot, absorbed) = self.merge(rules, &sc.slots);
                (
                    slot,
                    CaseChange::Merged {
                        case: self.case_id(slot),
                        absorbed,
                    },
                )
            }
        };
        out.push(change);

        let Some(case) = case_mut(&mut self.cases, slot) else {
            return;
        };
        if !created {
            // In order, the alert is the newest; only a fallback without snapshots is not.
            let at = match case.alerts.last() {
                Some(x) if (x.time, &*x.id) > (t, &*a.id) => case
                    .alerts
                    .partition_point(|x| (x.time, &*x.id) <= (t, &*a.id)),
                _ => case.alerts.len(),
            };
            case.alerts.insert(
                at,
                CaseAlert {
                    id: a.id.clone(),
                    time: t,
                },
            );
            if at + 1 < case.alerts.len() {
                // Not the newest (no snapshots to re-form from): later positions move up.
                let at = at as u32;
                for l in &mut case.links {
                    l.alert += u32::from(l.alert >= at);
                    l.with += u32::from(l.with >= at);
                }
            }
            add_entities(case, a);
            for c in &sc.cands {
                let Some(j) = sc.joiners.get(c.joiner) else {
                    continue;
                };
                let (Some(with), Some(entity)) = (
                    case.alert_index(c.with_time, &c.with),
                    case.find_entity(j.kind, &j.value),
                ) else {
                    continue;
                };
                case.links.push(LinkRef {
                    alert: at as u32,
                    with: with as u32,
                    entity: entity as u32,
                });
            }
            case.deadline = compute_deadline(rules, case);
            if let Some(d) = self.deadlines.get_mut(slot as usize) {
                *d = case.deadline;
            }
        }
        let case_id = case.id.clone();

        for j in &sc.joiners {
            let Some(es) = self.entities[kind_index(j.kind)]
                .get_mut(j.value.as_bytes())
                .map(Arc::make_mut)
            else {
                continue;
            };
            if !j.capped {
                match es
                    .members
                    .as_mut_slice()
                    .iter_mut()
                    .find(|m| m.slot == slot)
                {
                    Some(m) => {
                        m.alert = a.id.clone();
                        m.time = t;
                    }
                    None => es.members.push(Member {
                        slot,
                        alert: a.id.clone(),
                        time: t,
                    }),
                }
                continue;
            }
            let Some(reason) = es.capped else { continue };
            // The case this alert landed in says so, and, when it was capped just now, so
            // does every open case it had joined.
            let mut noted: Vec<u32> = vec![slot];
            if j.newly.is_some() {
                noted.extend(es.members.iter().map(|m| m.slot).filter(|s| *s != slot));
            }
            for s in noted {
                let Some(c) = case_mut(&mut self.cases, s) else {
                    continue;
                };
                if c.has_cap_note(j.kind, &j.value) {
                    continue;
                }
                c.notes.push(Note::EntityCapped {
                    kind: j.kind,
                    value: j.value.clone(),
                    reason,
                    at: t,
                });
                out.push(CaseChange::EntityCapped {
                    case: if s == slot {
                        case_id.clone()
                    } else {
                        c.id.clone()
                    },
                    kind: j.kind,
                    value: j.value.clone(),
                    reason,
                });
            }
        }
    }

    fn case_id(&self, slot: u32) -> Arc<str> {
        self.cases
            .get(slot as usize)
            .and_then(Option::as_ref)
            .map_or_else(|| Arc::from(""), |c| c.id.clone())
    }

    fn create(&mut self, rules: &Rules, a: &Logged) -> u32 {
        let serial = self.next_serial;
        self.next_serial += 1;
        let mut id: Arc<str> = Arc::from(format!("c{}", a.id));
        if self.by_id.contains_key(&*id) {
            // Only a repeated alert id gets here; keep ids unique all the same.
            id = Arc::from(format!("c{}~{serial}", a.id));
        }
        let mut case = OpenCase {
            id: id.clone(),
            alerts: vec![CaseAlert {
                id: a.id.clone(),
                time: a.time,
            }],
            entities: Vec::with_capacity(a.entities.len()),
            links: Vec::new(),
            notes: Vec::new(),
            serial,
            deadline: a.time,
        };
        case.deadline = compute_deadline(rules, &case);
        add_entities(&mut case, a);
        let deadline = case.deadline;
        let slot = match self.free.pop() {
            Some(s) => {
                if let Some(x) = self.cases.get_mut(s as usize) {
                    *x = Some(Arc::new(case));
                }
                if let Some(d) = self.deadlines.get_mut(s as usize) {
                    *d = deadline;
                }
                s
            }
            None => {
                self.cases.push(Some(Arc::new(case)));
                self.deadlines.push(deadline);
                (self.cases.len() - 1) as u32
            }
        };
        self.by_id.insert(id, slot);
        slot
    }

    /// Merges the cases in `slots` into one. The result keeps the id of the oldest case (the
    /// lowest serial); physically the case with most entities absorbs the others, so fewer
    /// index entries move. Returns its slot and the ids that are gone.
    fn merge(&mut self, rules: &Rules, slots: &[u32]) -> (u32, Vec<Arc<str>>) {
        let info = |s: &u32| {
            self.cases
                .get(*s as usize)
                .and_then(Option::as_ref)
                .map(|c| (*s, c.serial, c.entities.len()))
        };
        let mut order: Vec<(u32, u64, usize)> = slots.iter().filter_map(info).collect();
        order.sort_by_key(|x| x.1);
        let Some(dst) = order
            .iter()
            .max_by_key(|x| (x.2, std::cmp::Reverse(x.1)))
            .map(|x| x.0)
        else {
            return (slots[0], Vec::new());
        };
        let mut absorbed = Vec::new();
        let dst_id = self.case_id(dst);
        for &(src, _, _) in &order {
            if src == dst {
                continue;
            }
            let Some(other) = self
                .cases
                .get_mut(src as usize)
                .and_then(Option::take)
                .map(Arc::unwrap_or_clone)
            else {
                continue;
            };
            self.free.push(src);
            if let Some(d) = self.deadlines.get_mut(src as usize) {
                *d = Timestamp::MAX;
            }
            self.by_id.remove(&*other.id);
            for e in &other.entities {
                if !rules.joins(e.kind, &e.value) {
                    continue;
                }
                let Some(es) = self.entities[kind_index(e.kind)]
                    .get_mut(e.value.as_bytes())
                    .map(Arc::make_mut)
                else {
                    continue;
                };
                move_member(&mut es.members, src, dst);
            }
            let Some(into) = case_mut(&mut self.cases, dst) else {
                continue;
            };
            let (gone, kept) = if other.serial < into.serial {
                (into.id.clone(), other.id.clone())
            } else {
                (other.id.clone(), into.id.clone())
            };
            absorbed.push(gone);
            combine(into, other);
            into.id = kept;
        }
        if let Some(c) = self.cases.get(dst as usize).and_then(Option::as_ref) {
            if !same(&dst_id, &c.id) {
                self.by_id.remove(&*dst_id);
            }
            self.by_id.insert(c.id.clone(), dst);
            absorbed.retain(|id| !same(id, &c.id));
        }
        absorbed.sort();
        (dst, absorbed)
    }

    /// Removes the cases whose deadline is before `horizon` and returns them, spelled out.
    fn close_before(&mut self, horizon: Timestamp) -> Vec<FormedCase> {
        let mut closed = Vec::new();
        for slot in 0..self.cases.len() {
            // Free slots hold `Timestamp::MAX`, never due.
            if self.deadlines.get(slot).is_none_or(|d| *d >= horizon) {
                continue;
            }
            let Some(case) = self.cases[slot].take().map(Arc::unwrap_or_clone) else {
                continue;
            };
            self.deadlines[slot] = Timestamp::MAX;
            self.free.push(slot as u32);
            self.by_id.remove(&*case.id);
            for e in &case.entities {
                if let Some(es) = self.entities[kind_index(e.kind)].get_mut(e.value.as_bytes()) {
                    Arc::make_mut(es).members.retain(|m| m.slot != slot as u32);
                }
            }
            closed.push(case.into_formed());
        }
        closed
    }

    /// Forgets the entities quiet since before `quiet` that join no open case: they would
    /// start from nothing on their next alert anyway (their counts reset after a quiet span).
    /// Forgetting changes no case, so the look is skipped while no entity can be that quiet.
    fn forget_quiet(&mut self, quiet: Timestamp) {
        if quiet <= self.seen_floor {
            return;
        }
        let mut floor = Timestamp::MAX;
        for map in &mut self.entities {
            map.retain(|_, e| {
                let keep = !e.members.is_empty() || e.last_seen.is_some_and(|t| t >= quiet);
                if keep && let Some(t) = e.last_seen {
                    floor = floor.min(t);
                }
                keep
            });
        }
        self.seen_floor = floor;
    }
}

/// The case in `slot`, copied first if a snapshot shares it.
fn case_mut(cases: &mut [Option<Arc<OpenCase>>], slot: u32) -> Option<&mut OpenCase> {
    cases
        .get_mut(slot as usize)
        .and_then(Option::as_mut)
        .map(Arc::make_mut)
}

/// A list that usually holds one element (an entity's cases and anchors): one is kept in
/// place, more in a `Vec`, so the common case costs no allocation of its own and no second
/// cache line to read. Order is kept as a `Vec` keeps it.
#[derive(Debug, Clone, Default)]
enum Few<T> {
    #[default]
    Empty,
    One(T),
    Many(Vec<T>),
}

impl<T> Few<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Few::Empty => &[],
            Few::One(x) => std::slice::from_ref(x),
            Few::Many(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            Few::Empty => &mut [],
            Few::One(x) => std::slice::from_mut(x),
            Few::Many(v) => v,
        }
    }

    fn iter(&self) -> std::slice::Iter<'_, T> {
        self.as_slice().iter()
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    fn clear(&mut self) {
        *self = Few::Empty;
    }

    fn push(&mut self, x: T) {
        *self = match std::mem::take(self) {
            Few::Empty => Few::One(x),
            Few::One(a) => Few::Many(vec![a, x]),
            Few::Many(mut v) => {
                v.push(x);
                Few::Many(v)
            }
        };
    }

    fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        match self {
            Few::Empty => {}
            Few::One(x) => {
                if !keep(x) {
                    *self = Few::Empty;
                }
            }
            Few::Many(v) => v.retain(|x| keep(x)),
        }
    }

    /// Removes and returns the element at `i` (which must exist), keeping the others' order.
    fn remove(&mut self, i: usize) -> Option<T> {
        match std::mem::take(self) {
            Few::Empty => None,
            Few::One(x) if i == 0 => Some(x),
            Few::One(x) => {
                *self = Few::One(x);
                None
            }
            Few::Many(mut v) => {
                let x = (i < v.len()).then(|| v.remove(i));
                *self = Few::Many(v);
                x
            }
        }
    }
}

impl<'a, T> IntoIterator for &'a Few<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl EntityState {
    fn new(value: Arc<str>) -> EntityState {
        EntityState {
            value,
            last_seen: None,
            capped: None,
            recent: VecDeque::new(),
            anchors: Few::Empty,
            members: Few::Empty,
        }
    }
}

fn cap(es: &mut EntityState, reason: CapReason) {
    es.capped = Some(reason);
    // Counting stops with joining; free what counting held.
    es.recent = VecDeque::new();
    es.anchors = Few::Empty;
}

/// Points an entity's membership in case `src` at case `dst`, keeping the later alert.
fn move_member(members: &mut Few<Member>, src: u32, dst: u32) {
    let Some(i) = members.iter().position(|m| m.slot == src) else {
        return;
    };
    match members.iter().position(|m| m.slot == dst) {
        Some(d) => {
            let Some(m) = members.remove(i) else {
                return;
            };
            let d = if d > i { d - 1 } else { d };
            if let Some(x) = members.as_mut_slice().get_mut(d)
                && m.time > x.time
            {
                *x = Member { slot: dst, ..m };
            }
        }
        None => {
            if let Some(m) = members.as_mut_slice().get_mut(i) {
                m.slot = dst;
            }
        }
    }
}

/// Moves `other`'s content into `into`; the older case's entities and notes come first.
fn combine(into: &mut OpenCase, other: OpenCase) {
    let older_first = other.serial < into.serial;
    let (mut a, b) = if older_first {
        (other, std::mem::take(into))
    } else {
        (std::mem::take(into), other)
    };
    let (alerts, a_at, b_at) = merge_sorted(std::mem::take(&mut a.alerts), b.alerts, |x| {
        (x.time, x.id.clone())
    });
    a.alerts = alerts;
    let mut b_entity = Vec::with_capacity(b.entities.len());
    for e in b.entities {
        match a.entity_index(&e) {
            Some(i) => b_entity.push(i as u32),
            None => {
                b_entity.push(a.entities.len() as u32);
                a.entities.push(e);
            }
        }
    }
    // Renumber both sides' links into the merged lists, then merge them in alert order
    // (positions in the merged alerts are that order).
    let at = |map: &[u32], i: u32| map.get(i as usize).copied().unwrap_or(u32::MAX);
    let a_links: Vec<LinkRef> = std::mem::take(&mut a.links)
        .into_iter()
        .map(|l| LinkRef {
            alert: at(&a_at, l.alert),
            with: at(&a_at, l.with),
            entity: l.entity,
        })
        .collect();
    let b_links: Vec<LinkRef> = b
        .links
        .into_iter()
        .map(|l| LinkRef {
            alert: at(&b_at, l.alert),
            with: at(&b_at, l.with),
            entity: at(&b_entity, l.entity),
        })
        .collect();
    a.links = merge_sorted(a_links, b_links, |l| l.alert).0;
    for n in b.notes {
        let dup = match &n {
            Note::EntityCapped { kind, value, .. } => a.has_cap_note(*kind, value),
            other => a.notes.contains(other),
        };
        if !dup {
            a.notes.push(n);
        }
    }
    a.serial = a.serial.min(b.serial);
    *into = a;
}

impl Default for OpenCase {
    fn default() -> Self {
        OpenCase {
            id: Arc::from(""),
            alerts: Vec::new(),
            entities: Vec::new(),
            links: Vec::new(),
            notes: Vec::new(),
            serial: u64::MAX,
            deadline: Timestamp::MIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use riposte_domain::{Entity, Role, Severity};

    use super::*;

    const T0: i64 = 1_700_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(T0 + secs).expect("in range")
    }

    fn alert(id: &str, secs: i64, entities: &[(EntityKind, &str)]) -> Alert {
        Alert {
            id: id.into(),
            decoder: "test".into(),
            product: "test".into(),
            source_id: None,
            time: at(secs),
            time_original: String::new(),
            title: id.into(),
            description: None,
            severity: Severity::unknown(),
            rule: None,
            entities: entities
                .iter()
                .map(|(k, v)| Entity::new(*k, Role::Related, *v))
                .collect(),
            techniques: Vec::new(),
            tactics: Vec::new(),
            original: serde_json::Value::Null,
            origin: None,
        }
    }

    fn engine() -> CaseEngine {
        CaseEngine::new(&CaseConfig::default()).expect("defaults are valid")
    }

    /// Every open alert's entities are in the replay log and its case: their size is
    /// memory per alert (BENCHMARKS.md, "Cases").
    #[test]
    fn per_alert_records_stay_small() {
        assert_eq!(std::mem::size_of::<CaseEntity>(), 24);
        assert_eq!(std::mem::size_of::<LinkRef>(), 12);
    }

    /// `Few` keeps a `Vec`'s order through push, retain and remove, whichever form it is in.
    #[test]
    fn few_behaves_as_a_vec() {
        let mut f: Few<u32> = Few::default();
        let mut v: Vec<u32> = Vec::new();
        let same = |f: &Few<u32>, v: &Vec<u32>| {
            assert_eq!(f.as_slice(), &v[..]);
            assert_eq!((f.len(), f.is_empty()), (v.len(), v.is_empty()));
        };
        for x in [5, 1, 7, 3] {
            f.push(x);
            v.push(x);
            same(&f, &v);
        }
        assert_eq!(f.remove(1), Some(v.remove(1)));
        same(&f, &v);
        f.retain(|x| *x != 7);
        v.retain(|x| *x != 7);
        same(&f, &v);
        assert_eq!(f.remove(9), None);
        f.clear();
        v.clear();
        same(&f, &v);
        f.push(2);
        assert_eq!(f.remove(1), None);
        assert_eq!(f.as_slice(), [2]);
        f.retain(|_| false);
        same(&f, &Vec::new());
        f.push(4);
        assert_eq!(f.remove(0), Some(4));
        assert!(f.is_empty());
    }

    /// The open cases as `id: alert ids`, for readable assertions.
    fn shape(e: &CaseEngine) -> Vec<String> {
        e.open_cases()
            .iter()
            .map(|c| {
                let ids: Vec<&str> = c.alerts.iter().map(|a| &*a.id).collect();
                format!("{}: {}", c.id, ids.join(" "))
            })
            .collect()
    }

    use EntityKind::{Domain, Host, Ip, User};
    const H: i64 = 3600;

    #[test]
    fn shared_host_joins_and_the_link_says_why() {
        let mut e = engine();
        let ch = e.add(&alert("a1", 0, &[(Host, "ws-1"), (Domain, "evil.example")]));
        assert_eq!(ch, [CaseChange::Created { case: "ca1".into() }]);
        let ch = e.add(&alert("a2", 600, &[(Host, "ws-1"), (User, "bob")]));
        assert_eq!(ch, [CaseChange::Joined { case: "ca1".into() }]);
        let c = e.case("ca1").expect("open");
        assert_eq!(c.links.len(), 1);
        let l = &c.links[0];
        assert_eq!(
            (&*l.alert, &*l.with, l.kind, &*l.value),
            ("a2", "a1", Host, "ws-1")
        );
        assert_eq!(l.gap, SignedDuration::from_mins(10));
        let kinds: Vec<EntityKind> = c.entities.iter().map(|x| x.kind).collect();
        assert_eq!(kinds, [Host, Domain, User]);
        let case = c.to_case();
        assert_eq!(case.alert_ids, ["a1", "a2"]);
        assert_eq!(case.first_seen, at(0));
        assert_eq!(case.last_seen, at(600));
    }

    #[test]
    fn only_joining_kinds_and_internal_addresses_join() {
        let mut e = engine();
        e.add(&alert(
            "a1",
            0,
            &[(Domain, "evil.example"), (Ip, "8.8.8.8")],
        ));
        e.add(&alert(
            "a2",
            1,
            &[(Domain, "evil.example"), (Ip, "8.8.8.8")],
        ));
        e.add(&alert("a3", 2, &[(Ip, "10.0.0.5")]));
        e.add(&alert("a4", 3, &[(Ip, "10.0.0.5")]));
        assert_eq!(shape(&e), ["ca1: a1", "ca2: a2", "ca3: a3 a4"]);
    }

    #[test]
    fn gap_edge_is_inclusive() {
        let mut e = engine();
        e.add(&alert("a1", 0, &[(Host, "h")]));
        e.add(&alert("a2", H, &[(Host, "h")]));
        e.add(&alert("a3", 2 * H + 1, &[(Host, "h")]));
        assert_eq!(shape(&e), ["ca1: a1 a2", "ca3: a3"]);
    }

    #[test]
    fn span_edge_is_inclusive_and_a_long_chain_splits() {
        let mut e = engine();
        // Every 50 minutes for 30 hours: gaps all fit, the span does not.
        for i in 0..=36 {
            e.add(&alert(&format!("a{i:02}"), i * 50 * 60, &[(User, "alice")]));
        }
        let cases = e.open_cases();
        assert_eq!(cases.len(), 2);
        // 24 h = 28.8 × 50 min: alerts 0..=28 fit (28 × 50 min = 23 h 20 min).
        assert_eq!(cases[0].alerts.len(), 29);
        assert_eq!(&*cases[1].id, "ca29");

        let mut e = engine();
        for i in 0..=24 {
            e.add(&alert(&format!("b{i:02}"), i * H, &[(User, "alice")]));
        }
        // Exactly 24 h from first to last still fits.
        assert_eq!(e.open_cases().len(), 1);
        e.add(&alert("b25", 25 * H, &[(User, "alice")]));
        assert_eq!(e.open_cases().len(), 2);
    }

    #[test]
    fn bridging_alert_merges_and_keeps_the_oldest_id() {
        let mut e = engine();
        e.add(&alert("x1", 0, &[(Host, "ws-1")]));
        e.add(&alert("y1", 60, &[(User, "bob")]));
        e.add(&alert("y2", 120, &[(User, "bob"), (Host, "srv-9")]));
        assert_eq!(shape(&e), ["cx1: x1", "cy1: y1 y2"]);
        let ch = e.add(&alert("z", 180, &[(User, "bob"), (Host, "ws-1")]));
        assert_eq!(
            ch,
            [CaseChange::Merged {
                case: "cx1".into(),
                absorbed: vec!["cy1".into()],
            }]
        );
        assert_eq!(shape(&e), ["cx1: x1 y1 y2 z"]);
        let c = e.case("cx1").expect("open");
        assert!(e.case("cy1").is_none());
        let why: Vec<(&str, &str, &str)> = c
            .links
            .iter()
            .map(|l| (&*l.alert, &*l.with, &*l.value))
            .collect();
        assert_eq!(
            why,
            [("y2", "y1", "bob"), ("z", "y2", "bob"), ("z", "x1", "ws-1")]
        );
        // The merged case joins through entities of both halves.
        e.add(&alert("w", 240, &[(Host, "srv-9")]));
        assert_eq!(shape(&e), ["cx1: x1 y1 y2 z w"]);
    }

    #[test]
    fn merge_never_exceeds_the_span() {
        let mut e = engine();
        // Case A spans 23 h on ws-1; case B starts at 23 h on bob.
        e.add(&alert("a0", 0, &[(Host, "ws-1")]));
        for i in 1..=23 {
            e.add(&alert(&format!("a{i:02}"), i * H, &[(Host, "ws-1")]));
        }
        e.add(&alert("b0", 23 * H + 1800, &[(User, "bob")]));
        // Bridging at 24 h + 2 min: A's span would exceed 24 h, so it joins only B.
        e.add(&alert("z", 24 * H + 120, &[(User, "bob"), (Host, "ws-1")]));
        let cases = e.open_cases();
        assert_eq!(cases.len(), 2, "{:?}", shape(&e));
        assert!(cases.iter().all(
            |c| c.last_seen().duration_since(c.first_seen()) <= SignedDuration::from_hours(24)
        ));
        assert_eq!(shape(&e)[1], "cb0: b0 z");
    }

    #[test]
    fn an_entity_on_too_many_cases_stops_joining_and_cases_say_so() {
        let config = CaseConfig {
            max_cases_per_entity: 3,
            ..CaseConfig::default()
        };
        let mut e = CaseEngine::new(&config).expect("valid");
        // dc-1 authenticates five different hosts, each with activity of its own.
        let mut capped = Vec::new();
        for i in 0..5 {
            let host = format!("ws-{i}");
            e.add(&alert(&format!("h{i}"), i * 60, &[(Host, &host)]));
            let ch = e.add(&alert(
                &format!("d{i}"),
                i * 60 + 1,
                &[(Host, &host), (Host, "dc-1")],
            ));
            capped.extend(
                ch.into_iter()
                    .filter(|c| matches!(c, CaseChange::EntityCapped { .. })),
            );
        }
        // The first three pull ws-0..2 together, the fourth capped dc-1: ws-3, ws-4 stay apart.
        assert_eq!(
            shape(&e),
            ["ch0: h0 d0 h1 d1 h2 d2", "ch3: h3 d3", "ch4: h4 d4"]
        );
        let reason = CapReason::Cases { seen: 4, limit: 3 };
        assert_eq!(
            capped,
            [
                CaseChange::EntityCapped {
                    case: "ch3".into(),
                    kind: Host,
                    value: "dc-1".into(),
                    reason,
                },
                CaseChange::EntityCapped {
                    case: "ch0".into(),
                    kind: Host,
                    value: "dc-1".into(),
                    reason,
                },
                CaseChange::EntityCapped {
                    case: "ch4".into(),
                    kind: Host,
                    value: "dc-1".into(),
                    reason,
                },
            ]
        );
        for c in e.open_cases() {
            assert!(c.has_cap_note(Host, &Arc::from("dc-1")), "{}", c.id);
        }
        // Still capped later in the span; free again after a quiet span.
        e.add(&alert("late", 3 * H, &[(Host, "dc-1")]));
        e.add(&alert("late2", 3 * H + 1, &[(Host, "dc-1")]));
        assert!(e.case("clate2").is_some());
        e.add(&alert("fresh", 30 * H, &[(Host, "dc-1")]));
        e.add(&alert("fresh2", 30 * H + 1, &[(Host, "dc-1")]));
        assert!(e.case("cfresh2").is_none());
        assert_eq!(e.case("cfresh").map(|c| c.alerts.len()), Some(2));
    }

    #[test]
    fn a_user_on_their_own_laptop_is_never_capped() {
        let config = CaseConfig {
            max_cases_per_entity: 2,
            ..CaseConfig::default()
        };
        let mut e = CaseEngine::new(&config).expect("valid");
        for i in 0..100 {
            let ch = e.add(&alert(
                &format!("a{i:03}"),
                i * 60,
                &[(User, "alice"), (Host, "lap-1")],
            ));
            assert!(
                !ch.iter()
                    .any(|c| matches!(c, CaseChange::EntityCapped { .. })),
                "capped at alert {i}"
            );
        }
        assert_eq!(e.open_cases().len(), 1);
    }

    #[test]
    fn one_alert_can_bridge_three_cases() {
        let mut e = engine();
        e.add(&alert("p", 0, &[(Host, "ws-1")]));
        e.add(&alert("q", 10, &[(User, "bob")]));
        e.add(&alert("r", 20, &[(Ip, "10.0.0.9")]));
        let ch = e.add(&alert(
            "s",
            30,
            &[(Ip, "10.0.0.9"), (User, "bob"), (Host, "ws-1")],
        ));
        assert_eq!(
            ch,
            [CaseChange::Merged {
                case: "cp".into(),
                absorbed: vec!["cq".into(), "cr".into()],
            }]
        );
        assert_eq!(shape(&e), ["cp: p q r s"]);
        assert_eq!(e.case("cp").map(|c| c.links.len()), Some(3));
    }

    #[test]
    fn an_entity_on_too_many_alerts_stops_joining() {
        let config = CaseConfig {
            max_alerts_per_entity: 4,
            ..CaseConfig::default()
        };
        let mut e = CaseEngine::new(&config).expect("valid");
        for i in 0..6 {
            e.add(&alert(&format!("s{i}"), i, &[(Ip, "10.9.9.9")]));
        }
        assert_eq!(shape(&e), ["cs0: s0 s1 s2 s3", "cs4: s4", "cs5: s5"]);
        let c = e.case("cs0").expect("open");
        assert!(matches!(
            c.notes[..],
            [Note::EntityCapped {
                reason: CapReason::Alerts { seen: 5, limit: 4 },
                ..
            }]
        ));
    }

    #[test]
    fn a_late_alert_lands_where_it_would_have_in_order() {
        let alerts = [
            alert("a", 0, &[(Host, "ws-1")]),
            alert("b", 30 * 60, &[(User, "bob")]),
            alert("c", 40 * 60, &[(User, "bob"), (Host, "ws-1")]),
            alert("d", 50 * 60, &[(Host, "ws-1")]),
        ];
        let mut in_order = engine();
        for a in &alerts {
            in_order.add(a);
        }
        let mut late = engine();
        late.add(&alerts[0]);
        late.add(&alerts[1]);
        late.add(&alerts[3]);
        assert_eq!(shape(&late), ["ca: a d", "cb: b"]);
        let ch = late.add(&alerts[2]);
        assert_eq!(
            ch,
            [
                CaseChange::Withdrawn { case: "cb".into() },
                CaseChange::Revised { case: "ca".into() },
            ]
        );
        assert_eq!(shape(&late), shape(&in_order));
        assert_eq!(late.open_cases(), in_order.open_cases());
        // An alert earlier than a case's first takes over its id.
        let ch = late.add(&alert("_early", -60, &[(Host, "ws-1")]));
        assert_eq!(
            ch,
            [
                CaseChange::Withdrawn { case: "ca".into() },
                CaseChange::Revised {
                    case: "c_early".into()
                },
            ]
        );
    }

    #[test]
    fn the_reorder_delay_holds_alerts_back_and_places_them_in_order() {
        let config = CaseConfig {
            reorder_delay: SignedDuration::from_mins(5),
            ..CaseConfig::default()
        };
        let mut e = CaseEngine::new(&config).expect("valid");
        assert!(e.add(&alert("b", 120, &[(Host, "ws-1")])).is_empty());
        assert!(e.add(&alert("a", 60, &[(Host, "ws-1")])).is_empty());
        assert_eq!(e.held_count(), 2);
        // Six minutes on, both are due and land in time order: "a" first.
        let ch = e.add(&alert("c", 60 + 6 * 60, &[(Host, "ws-1")]));
        assert_eq!(
            ch,
            [
                CaseChange::Created { case: "ca".into() },
                CaseChange::Joined { case: "ca".into() },
            ]
        );
        assert_eq!(e.flush(), [CaseChange::Joined { case: "ca".into() }]);
        assert_eq!(shape(&e), ["ca: a b c"]);
        assert_eq!(e.held_count(), 0);

        let bad = CaseConfig {
            reorder_delay: SignedDuration::from_hours(2),
            ..CaseConfig::default()
        };
        assert!(matches!(
            CaseEngine::new(&bad),
            Err(ConfigError::BadReorderDelay { .. })
        ));
    }

    #[test]
    fn too_late_alerts_get_a_case_of_their_own() {
        let mut e = engine();
        e.add(&alert("a", 0, &[(Host, "ws-1")]));
        e.add(&alert("b", 3 * H, &[(Host, "ws-1")]));
        let ch = e.add(&alert("old", 10, &[(Host, "ws-1")]));
        assert_eq!(
            ch,
            [CaseChange::Created {
                case: "cold".into()
            }]
        );
        let c = e.case("cold").expect("held until expire");
        assert!(matches!(c.notes[..], [Note::ArrivedTooLate { .. }]));
        let closed = e.expire(at(3 * H)).closed;
        let ids: Vec<&str> = closed.iter().map(|c| &*c.id).collect();
        assert_eq!(ids, ["ca", "cold"]);
        assert_eq!(shape(&e), ["cb: b"]);
    }

    #[test]
    fn expire_closes_after_deadline_plus_lateness() {
        let mut e = engine();
        e.add(&alert("a", 0, &[(Host, "ws-1")]));
        // Deadline is 1 h; lateness 1 h more: still open at exactly 2 h.
        assert!(e.expire(at(2 * H)).closed.is_empty());
        assert_eq!(e.open_case_count(), 1);
        let closed = e.expire(at(2 * H + 1)).closed;
        assert_eq!(closed.len(), 1);
        assert_eq!(e.open_case_count(), 0);
        // Nothing joins a closed case: the same host starts a new one.
        e.add(&alert("b", 2 * H + 2, &[(Host, "ws-1")]));
        assert_eq!(shape(&e), ["cb: b"]);
    }

    #[test]
    fn same_input_twice_gives_identical_cases() {
        let run = || {
            let mut e = engine();
            for i in 0..50i64 {
                let host = format!("h{}", i % 7);
                let user = format!("u{}", (i * 3) % 5);
                e.add(&alert(
                    &format!("a{i}"),
                    i * 400,
                    &[(Host, &host), (User, &user)],
                ));
            }
            e.open_cases()
        };
        assert_eq!(run(), run());
    }
}
