//! Sigma correlation semantics that are easy to get wrong, pinned on small streams, on a
//! generated stream of 1,000,000 Security 4625 events against an independently computed
//! reference, and riposte's shipped spray rules on Okta and Entra streams built from the
//! corpus' real records.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use riposte_detect::correlate::DEFAULTS;
use riposte_detect::{Correlator, Detector, LoadOptions, Mapping, RuleText};
use riposte_domain::{Alert, Decoded, Event, SeverityLabel};
use serde_json::{Value, json};

fn correlator(texts: &[(&str, &str)]) -> (Arc<Detector>, Correlator) {
    let texts: Vec<RuleText> = texts
        .iter()
        .map(|(n, t)| RuleText {
            name: n.to_string(),
            text: t.to_string(),
        })
        .collect();
    let d = Arc::new(Detector::load(
        &texts,
        Mapping::builtin(),
        &LoadOptions::default(),
    ));
    assert!(d.refusals().is_empty(), "{:?}", d.refusals());
    let c = Correlator::new(d.clone());
    assert!(c.refusals().is_empty(), "{:?}", c.refusals());
    (d, c)
}

/// A Security-channel event in Winlogbeat's shape (small: the 1M stream builds many).
fn security(t: i64, id: u64, data: Value) -> Event {
    let time = riposte_domain::time::from_unix_seconds(t as f64).unwrap();
    Event {
        id: format!("e{t}"),
        decoder: "windows".into(),
        product: "Windows".into(),
        source_id: None,
        time,
        time_original: t.to_string(),
        action: id.to_string(),
        outcome: None,
        entities: vec![],
        original: json!({"winlog": {"event_id": id, "channel": "Security", "event_data": data}}),
        origin: None,
    }
}

fn titles(alerts: &[Alert]) -> Vec<&str> {
    alerts.iter().map(|a| a.title.as_str()).collect()
}

const BASE_A: &str = "title: A\nname: rule_a\nlogsource: {product: windows, service: security}\ndetection:\n  sel: {EventID: 1001}\n  condition: sel\n";
const BASE_B: &str = "title: B\nname: rule_b\nlogsource: {product: windows, service: security}\ndetection:\n  sel: {EventID: 1002}\n  condition: sel\n";
const BASE_C: &str = "title: C\nname: rule_c\nlogsource: {product: windows, service: security}\ndetection:\n  sel: {EventID: 1003}\n  condition: sel\n";

#[test]
fn group_by_isolates_groups() {
    let corr = "title: Three A On One Host\ncorrelation:\n  type: event_count\n  rules: [rule_a]\n  group-by: [Host]\n  timespan: 1m\n  condition: {gte: 3}\n";
    let (_, mut c) = correlator(&[("a.yml", BASE_A), ("c.yml", corr)]);
    let ev = |t, host: &str| security(t, 1001, json!({"Host": host}));
    // Two events on each of two hosts: four in the window, never three of one host.
    for (t, h) in [(100, "ws-1"), (101, "ws-2"), (102, "ws-1"), (103, "ws-2")] {
        assert!(c.process(&ev(t, h)).is_empty(), "fired at {t} on {h}");
    }
    let fired = c.process(&ev(104, "ws-2"));
    assert_eq!(titles(&fired), ["Three A On One Host"]);
    assert!(
        fired[0]
            .description
            .as_deref()
            .unwrap()
            .contains("Host=ws-2")
    );
    // The base rule is used only by the correlation: it raises no alert of its own.
    let (d, _) = correlator(&[("a.yml", BASE_A), ("c.yml", corr)]);
    assert!(d.detect(&ev(1, "ws-1")).is_empty());
}

#[test]
fn temporal_ordered_enforces_order_across_all_rules() {
    let corr = "title: A Then B Then C\ncorrelation:\n  type: temporal_ordered\n  rules: [rule_a, rule_b, rule_c]\n  group-by: [User]\n  timespan: 10m\n";
    let texts = [
        ("a.yml", BASE_A),
        ("b.yml", BASE_B),
        ("c.yml", BASE_C),
        ("corr.yml", corr),
    ];
    let ev = |t, id, user: &str| security(t, id, json!({"User": user}));

    // All three rules, wrong order: C, B, A, then A, C, B.
    let (_, mut c) = correlator(&texts);
    for (t, id) in [(10, 1003), (11, 1002), (12, 1001), (13, 1003), (14, 1002)] {
        assert!(c.process(&ev(t, id, "bob")).is_empty(), "fired at {t}");
    }
    // In order, on another user: fires on the last.
    let (_, mut c) = correlator(&texts);
    assert!(c.process(&ev(20, 1001, "ann")).is_empty());
    assert!(c.process(&ev(21, 1002, "ann")).is_empty());
    assert_eq!(
        titles(&c.process(&ev(22, 1003, "ann"))),
        ["A Then B Then C"]
    );
    // The right order split across two users is not a sequence.
    let (_, mut c) = correlator(&texts);
    assert!(c.process(&ev(30, 1001, "ann")).is_empty());
    assert!(c.process(&ev(31, 1002, "bob")).is_empty());
    assert!(c.process(&ev(32, 1003, "ann")).is_empty());
}

#[test]
fn sliding_window_edges_are_inclusive() {
    let corr = "title: Two A\ncorrelation:\n  type: event_count\n  rules: [rule_a]\n  group-by: [User]\n  timespan: 60s\n  condition: {gte: 2}\n";
    let texts = [("a.yml", BASE_A), ("corr.yml", corr)];
    let ev = |t| security(t, 1001, json!({"User": "u"}));
    // 60 s apart: both ends of [t - 60, t] are in the window.
    let (_, mut c) = correlator(&texts);
    assert!(c.process(&ev(1000)).is_empty());
    assert_eq!(c.process(&ev(1060)).len(), 1);
    // 61 s apart: the first has left the window.
    let (_, mut c) = correlator(&texts);
    assert!(c.process(&ev(1000)).is_empty());
    assert!(c.process(&ev(1061)).is_empty());
    // The window slides: 1061 and 1100 are in one.
    assert_eq!(c.process(&ev(1100)).len(), 1);
    // After firing the window starts over: the next single event does not fire.
    assert!(c.process(&ev(1101)).is_empty());
    assert_eq!(c.process(&ev(1102)).len(), 1);
}

/// xorshift64*: a fixed, dependency-free generator so the stream is the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Independent reference for `event_count ≥ n within span, reset after firing`, per key.
fn count_reference(
    stream: &[(i64, String, String)],
    key: impl Fn(&(i64, String, String)) -> String,
    n: usize,
    span: i64,
) -> BTreeSet<(String, i64)> {
    let mut windows: HashMap<String, VecDeque<i64>> = HashMap::new();
    let mut fired = BTreeSet::new();
    for e in stream {
        let k = key(e);
        let w = windows.entry(k.clone()).or_default();
        while w.front().is_some_and(|&t0| t0 < e.0 - span) {
            w.pop_front();
        }
        w.push_back(e.0);
        if w.len() >= n {
            fired.insert((k, e.0));
            w.clear();
        }
    }
    fired
}

/// Independent reference for `value_count of user ≥ n per ip within span, reset after firing`.
fn distinct_reference(
    stream: &[(i64, String, String)],
    n: usize,
    span: i64,
) -> BTreeSet<(String, i64)> {
    let mut windows: HashMap<&str, VecDeque<(i64, &str)>> = HashMap::new();
    let mut fired = BTreeSet::new();
    for (t, user, ip) in stream {
        let w = windows.entry(ip).or_default();
        while w.front().is_some_and(|&(t0, _)| t0 < t - span) {
            w.pop_front();
        }
        w.push_back((*t, user));
        let distinct: BTreeSet<&str> = w.iter().map(|(_, u)| *u).collect();
        if distinct.len() >= n {
            fired.insert((format!("IpAddress={ip}"), *t));
            w.clear();
        }
    }
    fired
}

#[test]
fn one_million_4625_events_match_an_independent_reference() {
    let windows = DEFAULTS
        .iter()
        .find(|(n, _)| n.contains("windows"))
        .map(|(n, t)| (*n, *t))
        .unwrap();
    let (_, mut c) = correlator(&[windows]);
    // 1,000,000 failed logons over ~2.8 h (100 per second): 100,000 users and 10,000
    // addresses at random, plus 50 hot (user, address) pairs guessing a password (5 % of the
    // stream, brute force) and 3 addresses walking through users (1 %, password spray).
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let n = 1_000_000;
    let mut stream: Vec<(i64, String, String)> = Vec::with_capacity(n);
    for i in 0..n {
        let t = 1_700_000_000 + (i / 100) as i64;
        let r = rng.next() % 100;
        let (user, ip) = if r < 5 {
            let k = rng.next() % 50;
            (format!("hot{k}"), format!("10.66.0.{k}"))
        } else if r < 6 {
            let k = rng.next() % 3;
            (
                format!("user{}", rng.next() % 100_000),
                format!("10.99.0.{k}"),
            )
        } else {
            let ip = rng.next() % 10_000;
            (
                format!("user{}", rng.next() % 100_000),
                format!("10.{}.{}.{}", ip / 65_536, (ip / 256) % 256, ip % 256),
            )
        };
        stream.push((t, user, ip));
    }
    let brute_ref = count_reference(
        &stream,
        |e| format!("IpAddress={},TargetUserName={}", e.2, e.1),
        20,
        300,
    );
    let spray_ref = distinct_reference(&stream, 10, 300);
    assert!(
        brute_ref.len() > 1_000,
        "the stream must exercise the rule: {}",
        brute_ref.len()
    );
    assert!(spray_ref.len() > 100, "{}", spray_ref.len());

    let mut brute = BTreeSet::new();
    let mut spray = BTreeSet::new();
    for (t, user, ip) in &stream {
        let e = security(*t, 4625, json!({"TargetUserName": user, "IpAddress": ip}));
        for a in c.process(&e) {
            let key = a.original["group_key"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect::<Vec<_>>()
                .join(",");
            match a.title.as_str() {
                "Brute Force Against One Account (Windows)" => brute.insert((key, *t)),
                "Password Spray From One Source (Windows)" => spray.insert((key, *t)),
                other => panic!("unexpected {other}"),
            };
        }
    }
    let diff = |a: &BTreeSet<(String, i64)>, b: &BTreeSet<(String, i64)>| {
        a.difference(b).take(5).cloned().collect::<Vec<_>>()
    };
    assert_eq!(
        brute.len(),
        brute_ref.len(),
        "brute force: engine-only {:?}, reference-only {:?}",
        diff(&brute, &brute_ref),
        diff(&brute_ref, &brute)
    );
    assert_eq!(brute, brute_ref);
    assert_eq!(
        spray.len(),
        spray_ref.len(),
        "spray: engine-only {:?}, reference-only {:?}",
        diff(&spray, &spray_ref),
        diff(&spray_ref, &spray)
    );
    assert_eq!(spray, spray_ref);
}

fn corpus() -> PathBuf {
    std::env::var_os("RIPOSTE_CORPUS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
        PathBuf::from,
    )
}

fn first_record(rel: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let text = std::fs::read_to_string(corpus().join(rel)).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| pred(v))
        .unwrap_or_else(|| panic!("no matching record in {rel}"))
}

fn decode(decoder: &str, v: Value) -> Event {
    let d = riposte_decode::builtin(decoder).unwrap();
    match d.decode(v).unwrap().into_iter().next().unwrap() {
        Decoded::Event(e) => e,
        Decoded::Alert(_) => panic!("expected an event"),
    }
}

/// Runs the shipped correlations over a stream; returns the titles that fired.
fn run_defaults(stream: Vec<Event>) -> Vec<(String, SeverityLabel)> {
    let (_, mut c) = correlator(&DEFAULTS.iter().map(|(n, t)| (*n, *t)).collect::<Vec<_>>());
    stream
        .iter()
        .flat_map(|e| c.process(e))
        .map(|a| (a.title, a.severity.label))
        .collect()
}

/// 15 users failing within 2.5 minutes, then one success: from one address, or spread over
/// 15 addresses.
fn okta_stream(one_source: bool) -> Vec<Event> {
    let template = first_record("alerts/okta/system/test-okta-system-events.log", |v| {
        v["eventType"] == "user.session.start"
    });
    let mut out = Vec::new();
    for i in 0..16 {
        let mut v = template.clone();
        let ip = if one_source {
            "203.0.113.7".to_string()
        } else {
            format!("203.0.113.{}", 10 + i)
        };
        v["uuid"] = json!(format!("spray-{i}"));
        v["published"] = json!(format!(
            "2026-11-23T10:{:02}:{:02}.000Z",
            i * 10 / 60,
            i * 10 % 60
        ));
        v["client"]["ipAddress"] = json!(ip);
        v["actor"]["alternateId"] = json!(format!("user{i}@corp.example"));
        v["outcome"]["result"] = json!(if i < 15 { "FAILURE" } else { "SUCCESS" });
        out.push(decode("okta", v));
    }
    out
}

fn entra_stream(one_source: bool) -> Vec<Event> {
    let template = first_record("alerts/entra/signinlogs/test-signinlogs-raw.log", |v| {
        v["category"] == "SignInLogs"
    });
    let mut out = Vec::new();
    for i in 0..16 {
        let mut v = template.clone();
        let ip = if one_source {
            "198.51.100.9".to_string()
        } else {
            format!("198.51.100.{}", 20 + i)
        };
        let code = if i < 15 {
            if i % 5 == 4 { 50053 } else { 50126 }
        } else {
            0
        };
        v["time"] = json!(format!(
            "2026-11-23T10:{:02}:{:02}.0000000Z",
            i * 10 / 60,
            i * 10 % 60
        ));
        v["callerIpAddress"] = json!(ip);
        v["resultType"] = json!(code.to_string());
        v["properties"]["ipAddress"] = json!(ip);
        v["properties"]["id"] = json!(format!("spray-{i}"));
        v["properties"]["userPrincipalName"] = json!(format!("user{i}@corp.example"));
        v["properties"]["status"]["errorCode"] = json!(code);
        out.push(decode("entra", v));
    }
    out
}

#[test]
fn shipped_spray_rules_fire_on_okta_and_entra_and_stay_silent_when_spread() {
    for (name, fired, quiet) in [
        (
            "okta",
            run_defaults(okta_stream(true)),
            run_defaults(okta_stream(false)),
        ),
        (
            "entra",
            run_defaults(entra_stream(true)),
            run_defaults(entra_stream(false)),
        ),
    ] {
        let titles: Vec<&str> = fired.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(titles.len(), 2, "{name}: {fired:?}");
        assert!(
            titles[0].starts_with("Password Spray From One Source"),
            "{name}: {fired:?}"
        );
        assert_eq!(fired[0].1, SeverityLabel::High);
        assert!(
            titles[1].starts_with("Password Spray Followed By A Successful"),
            "{name}: {fired:?}"
        );
        assert_eq!(
            fired[1].1,
            SeverityLabel::Critical,
            "spray then success is higher"
        );
        assert!(quiet.is_empty(), "{name} spread over addresses: {quiet:?}");
    }
}
