//! Property tests of case formation over random alert streams from a small seeded generator:
//! the invariants every formed case keeps, determinism, that arrival order within the
//! lateness window does not matter, and (in every run) that the changes `add` and `expire`
//! report describe exactly the engine's open cases. A failure names the seed.

use std::collections::{BTreeSet, HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use riposte_correlate::{CaseChange, CaseConfig, CaseEngine, FormedCase, Note};
use riposte_domain::{Alert, Entity, EntityKind, Role, Severity};

const SEEDS: u64 = 150;
/// Late arrivals replay part of the window each, so fewer seeds keep `cargo test` quick.
const LATE_SEEDS: u64 = 60;
const ALERTS: usize = 150;

/// xorshift64*: small, seeded, good enough to pick hosts and gaps.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn alert(id: String, time: Timestamp, entities: Vec<Entity>) -> Alert {
    Alert {
        id,
        decoder: "test".into(),
        product: "test".into(),
        source_id: None,
        time,
        time_original: String::new(),
        title: String::new(),
        description: None,
        severity: Severity::unknown(),
        rule: None,
        entities,
        techniques: Vec::new(),
        tactics: Vec::new(),
        original: serde_json::Value::Null,
        origin: None,
    }
}

/// A stream in time order: gaps of 0–25 minutes (ties included), one to three entities from
/// a few hosts, users, internal and external addresses and domains, and a busy `dc` host.
fn stream(seed: u64) -> Vec<Alert> {
    let mut r = Rng::new(seed);
    let mut t = Timestamp::from_second(1_700_000_000).expect("in range");
    let mut out = Vec::with_capacity(ALERTS);
    for i in 0..ALERTS {
        let gap = match r.below(10) {
            0 => 0,
            _ => r.below(25 * 60) as i64,
        };
        t = t
            .checked_add(SignedDuration::from_secs(gap))
            .expect("in range");
        let n = 1 + r.below(3);
        let mut entities = Vec::new();
        for _ in 0..n {
            let (kind, value) = match r.below(9) {
                0 | 1 => (EntityKind::Host, format!("h{}", r.below(10))),
                2 => (EntityKind::Host, "dc".to_string()),
                3 | 4 => (EntityKind::User, format!("u{}", r.below(6))),
                5 => (EntityKind::Ip, format!("10.0.0.{}", r.below(8))),
                6 => (EntityKind::Ip, format!("203.0.113.{}", r.below(4))),
                _ => (EntityKind::Domain, format!("d{}.example", r.below(5))),
            };
            entities.push(Entity::new(kind, Role::Related, value));
        }
        // Ids do not follow time, so ties are broken by something else than arrival.
        out.push(alert(format!("{:04x}-{i}", r.below(0x10000)), t, entities));
    }
    out
}

fn configs() -> [(&'static str, CaseConfig); 3] {
    [
        ("default", CaseConfig::default()),
        (
            "small caps",
            CaseConfig {
                max_cases_per_entity: 3,
                max_alerts_per_entity: 12,
                ..CaseConfig::default()
            },
        ),
        (
            "reorder 10 min",
            CaseConfig {
                reorder_delay: SignedDuration::from_mins(10),
                max_cases_per_entity: 4,
                ..CaseConfig::default()
            },
        ),
    ]
}

/// Every case ever formed, by id: those closed along the way and the rest at the end.
fn run(config: &CaseConfig, alerts: &[&Alert], expire_every: usize) -> Vec<FormedCase> {
    let mut e = CaseEngine::new(config).expect("valid config");
    let mut all = Vec::new();
    // The case ids the reported changes describe; they must be the engine's open cases.
    let mut known: BTreeSet<String> = BTreeSet::new();
    for (i, a) in alerts.iter().enumerate() {
        follow(&mut known, &e.add(a));
        if expire_every > 0
            && i % expire_every == 0
            && let Some(wm) = e.watermark()
        {
            let x = e.expire(wm);
            follow(&mut known, &x.changes);
            for c in &x.closed {
                known.remove(&*c.id);
            }
            all.extend(x.closed);
        }
        let open: BTreeSet<String> = e.open_case_ids().iter().map(|id| id.to_string()).collect();
        assert_eq!(known, open, "after alert {}", a.id);
    }
    all.extend(e.expire(Timestamp::MAX).closed);
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all
}

fn follow(known: &mut BTreeSet<String>, changes: &[CaseChange]) {
    for c in changes {
        match c {
            CaseChange::Created { case }
            | CaseChange::Joined { case }
            | CaseChange::Revised { case }
            | CaseChange::EntityCapped { case, .. } => {
                known.insert(case.to_string());
            }
            CaseChange::Merged { case, absorbed } => {
                for a in absorbed {
                    known.remove(&**a);
                }
                known.insert(case.to_string());
            }
            CaseChange::Withdrawn { case } => {
                known.remove(&**case);
            }
        }
    }
}

fn check(config: &CaseConfig, alerts: &[Alert], cases: &[FormedCase]) -> Result<(), String> {
    let by_id: HashMap<&str, &Alert> = alerts.iter().map(|a| (a.id.as_str(), a)).collect();
    let mut seen = HashSet::new();
    for c in cases {
        let first = c.alerts.first().ok_or(format!("{}: no alerts", c.id))?;
        if *c.id != format!("c{}", first.id) {
            return Err(format!("{}: first alert is {}", c.id, first.id));
        }
        for w in c.alerts.windows(2) {
            if (w[0].time, &w[0].id) > (w[1].time, &w[1].id) {
                return Err(format!("{}: alerts out of order", c.id));
            }
            if w[1].time.duration_since(w[0].time) > config.max_gap {
                return Err(format!("{}: gap {} → {} too long", c.id, w[0].id, w[1].id));
            }
        }
        if c.last_seen().duration_since(c.first_seen()) > config.max_span {
            return Err(format!("{}: spans more than max_span", c.id));
        }
        for a in &c.alerts {
            if !seen.insert(a.id.clone()) {
                return Err(format!("alert {} is in two cases", a.id));
            }
        }
        // Links: both ends in the case, sharing the entity, with the right gap; and they
        // connect every alert of the case.
        let members: HashMap<&str, usize> = c
            .alerts
            .iter()
            .enumerate()
            .map(|(i, a)| (&*a.id, i))
            .collect();
        let mut parent: Vec<usize> = (0..c.alerts.len()).collect();
        fn root(p: &mut [usize], mut i: usize) -> usize {
            while p[i] != i {
                i = p[i];
            }
            i
        }
        for l in &c.links {
            let (Some(&x), Some(&y)) = (members.get(&*l.alert), members.get(&*l.with)) else {
                return Err(format!(
                    "{}: link {}–{} leaves the case",
                    c.id, l.alert, l.with
                ));
            };
            let has = |id: &str| {
                by_id.get(id).is_some_and(|a| {
                    a.entities
                        .iter()
                        .any(|e| e.kind == l.kind && e.value == *l.value)
                })
            };
            if !has(&l.alert) || !has(&l.with) {
                return Err(format!(
                    "{}: link {}–{} on {} not shared",
                    c.id, l.alert, l.with, l.value
                ));
            }
            if l.gap != c.alerts[x].time.duration_since(c.alerts[y].time) || l.gap.is_negative() {
                return Err(format!(
                    "{}: link {}–{} has a wrong gap",
                    c.id, l.alert, l.with
                ));
            }
            let (rx, ry) = (root(&mut parent, x), root(&mut parent, y));
            parent[rx] = ry;
        }
        let r0 = root(&mut parent, 0);
        if (0..c.alerts.len()).any(|i| root(&mut parent, i) != r0) {
            return Err(format!("{}: links do not connect its alerts", c.id));
        }
        // Its entities are exactly its alerts' entities.
        let want: HashSet<(EntityKind, &str)> = c
            .alerts
            .iter()
            .filter_map(|a| by_id.get(&*a.id))
            .flat_map(|a| a.entities.iter().map(|e| (e.kind, e.value.as_str())))
            .collect();
        let got: HashSet<(EntityKind, &str)> =
            c.entities.iter().map(|e| (e.kind, &*e.value)).collect();
        if want != got || got.len() != c.entities.len() {
            return Err(format!("{}: entities differ from its alerts'", c.id));
        }
        if c.notes
            .iter()
            .any(|n| matches!(n, Note::ArrivedTooLate { .. }))
        {
            return Err(format!("{}: an alert arrived too late", c.id));
        }
    }
    if seen.len() != alerts.len() {
        return Err(format!(
            "{} alerts in cases, {} given",
            seen.len(),
            alerts.len()
        ));
    }
    Ok(())
}

#[test]
fn formed_cases_keep_their_invariants() {
    for (name, config) in configs() {
        let mut merged = 0;
        let mut capped = 0;
        for seed in 0..SEEDS {
            let alerts = stream(seed);
            let refs: Vec<&Alert> = alerts.iter().collect();
            let cases = run(&config, &refs, 0);
            if let Err(e) = check(&config, &alerts, &cases) {
                panic!("{name}, seed {seed}: {e}");
            }
            merged += cases.iter().filter(|c| c.alerts.len() > 1).count();
            capped += cases
                .iter()
                .filter(|c| {
                    c.notes
                        .iter()
                        .any(|n| matches!(n, Note::EntityCapped { .. }))
                })
                .count();
        }
        // The streams exercise joining, and the small caps exercise capping.
        assert!(merged > 0, "{name}: nothing ever joined");
        if name == "small caps" {
            assert!(capped > 0, "{name}: nothing was ever capped");
        }
    }
}

#[test]
fn the_same_stream_twice_gives_identical_cases() {
    for (name, config) in configs() {
        for seed in 0..SEEDS / 10 {
            let alerts = stream(seed);
            let refs: Vec<&Alert> = alerts.iter().collect();
            assert_eq!(
                run(&config, &refs, 0),
                run(&config, &refs, 0),
                "{name}, seed {seed}"
            );
        }
    }
}

#[test]
fn expiring_along_the_way_changes_nothing() {
    for (name, config) in configs() {
        for seed in 0..SEEDS / 3 {
            let alerts = stream(seed);
            let refs: Vec<&Alert> = alerts.iter().collect();
            assert_eq!(
                run(&config, &refs, 0),
                run(&config, &refs, 7),
                "{name}, seed {seed}"
            );
        }
    }
}

/// Each alert is delayed by up to just under `max_lateness` and they arrive in delayed order;
/// the cases must be those of the in-order run, also with cases expired along the way.
#[test]
fn late_arrivals_within_the_window_give_the_in_order_cases() {
    for (name, config) in configs() {
        let lateness = config.max_lateness.as_secs();
        for seed in 0..LATE_SEEDS {
            let alerts = stream(seed);
            let in_order: Vec<&Alert> = alerts.iter().collect();
            let mut r = Rng::new(seed ^ 0xA5A5);
            let mut delayed: Vec<(Timestamp, usize, &Alert)> = alerts
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let d = SignedDuration::from_secs(r.below(lateness as u64) as i64);
                    (a.time.checked_add(d).expect("in range"), i, a)
                })
                .collect();
            delayed.sort_by_key(|x| (x.0, x.1));
            let shuffled: Vec<&Alert> = delayed.iter().map(|x| x.2).collect();
            assert_ne!(shuffled, in_order, "seed {seed}: nothing arrived late");
            let want = run(&config, &in_order, 0);
            for expire_every in [0, 5] {
                let got = run(&config, &shuffled, expire_every);
                if let Err(e) = check(&config, &alerts, &got) {
                    panic!("{name}, seed {seed}, expire every {expire_every}: {e}");
                }
                assert_eq!(
                    got, want,
                    "{name}, seed {seed}, expire every {expire_every}"
                );
            }
        }
    }
}
