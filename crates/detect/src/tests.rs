//! Routing, renames, refusals and alerts on small hand-written rules and events.

use riposte_domain::{EntityKind, Event, Role, SeverityLabel, TechniqueId};
use serde_json::{Value, json};

use crate::{Detector, LoadOptions, Mapping, RuleText};

const PROC_WHOAMI: &str = r#"
title: Whoami Run
id: 11111111-0000-0000-0000-000000000001
logsource: {product: windows, category: process_creation}
detection:
  sel:
    Image|endswith: '\whoami.exe'
  condition: sel
level: high
tags: [attack.discovery, attack.t1033, attack.g0016]
"#;

const SYSMON_ANY_1: &str = r#"
title: Any Sysmon Event 1
id: 11111111-0000-0000-0000-000000000002
logsource: {product: windows, service: sysmon}
detection:
  sel: {EventID: 1}
  condition: sel
level: informational
"#;

const SECURITY_4625: &str = r#"
title: Logon Failure
id: 11111111-0000-0000-0000-000000000003
logsource: {product: windows, service: security}
detection:
  sel: {EventID: 4625}
  condition: sel
"#;

const BROKEN_CONDITION: &str = r#"
title: Broken
logsource: {product: windows, service: security}
detection:
  sel: {EventID: 1}
  condition: sel and and nope
"#;

const UNKNOWN_IDENTIFIER: &str = r#"
title: Unknown Identifier
logsource: {product: windows, service: security}
detection:
  sel: {EventID: 1}
  condition: sel and missing
"#;

fn detector(lazy: bool) -> Detector {
    let texts: Vec<RuleText> = [
        ("proc.yml", PROC_WHOAMI),
        ("sysmon.yml", SYSMON_ANY_1),
        ("sec.yml", SECURITY_4625),
        ("broken.yml", BROKEN_CONDITION),
        ("unknown.yml", UNKNOWN_IDENTIFIER),
    ]
    .into_iter()
    .map(|(n, t)| RuleText {
        name: n.into(),
        text: t.into(),
    })
    .collect();
    Detector::load(
        &texts,
        Mapping::builtin(),
        &LoadOptions { threads: 2, lazy },
    )
}

fn event(channel: &str, id: u64, data: Value) -> Event {
    let original = json!({"Event": {"System": {"EventID": id, "Channel": channel,
        "Computer": "WS-042.corp.example", "EventRecordID": 7,
        "TimeCreated": {"#attributes": {"SystemTime": "2026-11-23T10:00:00Z"}}},
        "EventData": data}});
    Event {
        id: "ev1".into(),
        decoder: "windows".into(),
        product: "Windows".into(),
        source_id: Some(format!("{channel}:WS-042:7")),
        time: riposte_domain::time::parse("2026-11-23T10:00:00Z").unwrap(),
        time_original: "2026-11-23T10:00:00Z".into(),
        action: id.to_string(),
        outcome: None,
        entities: vec![],
        original,
        origin: None,
    }
}

fn titles(d: &Detector, e: &Event) -> Vec<String> {
    d.detect(e).into_iter().map(|a| a.title).collect()
}

const SYSMON: &str = "Microsoft-Windows-Sysmon/Operational";

#[test]
fn rules_see_only_their_logsource() {
    let d = detector(true);
    let sysmon1 = event(
        SYSMON,
        1,
        json!({"Image": "C:\\Windows\\System32\\whoami.exe"}),
    );
    assert_eq!(titles(&d, &sysmon1), ["Whoami Run", "Any Sysmon Event 1"]);
    // Security 4688 is process creation under other names: the category rule reads
    // NewProcessName as Image; the Sysmon service rule never sees it.
    let sec4688 = event(
        "Security",
        4688,
        json!({"NewProcessName": "C:\\Windows\\System32\\whoami.exe"}),
    );
    assert_eq!(titles(&d, &sec4688), ["Whoami Run"]);
    // EventID 1 in the Security channel is not Sysmon's.
    let sec1 = event("Security", 1, json!({}));
    assert!(titles(&d, &sec1).is_empty());
    // A Sysmon event with EventID 4625 is not a Security logon failure.
    let sysmon4625 = event(SYSMON, 4625, json!({}));
    assert!(titles(&d, &sysmon4625).is_empty());
    assert_eq!(
        titles(&d, &event("Security", 4625, json!({}))),
        ["Logon Failure"]
    );
}

#[test]
fn lazy_and_eager_agree_and_refusals_name_file_and_reason() {
    let eager = detector(false);
    let refused = eager.refusals();
    let files: Vec<&str> = refused.iter().map(|r| r.file.as_str()).collect();
    assert!(files.contains(&"broken.yml"), "{refused:?}");
    assert!(files.contains(&"unknown.yml"), "{refused:?}");
    assert!(refused.iter().all(|r| !r.reason.is_empty()));
    let lazy = detector(true);
    let e = event(SYSMON, 1, json!({"Image": "C:\\x\\whoami.exe"}));
    assert_eq!(titles(&lazy, &e), titles(&eager, &e));
    // The good rules still run beside the refused ones.
    assert_eq!(
        titles(&eager, &event("Security", 4625, json!({}))),
        ["Logon Failure"]
    );
}

#[test]
fn alert_carries_rule_severity_attack_entities_and_event() {
    let d = detector(true);
    let e = event(
        SYSMON,
        1,
        json!({"Image": "C:\\Windows\\System32\\whoami.exe", "User": "CORP\\alice",
               "Hashes": "SHA1=AA11,MD5=BB22,SHA256=CC33,IMPHASH=DD44"}),
    );
    let alerts = d.detect(&e);
    let a = alerts.iter().find(|a| a.title == "Whoami Run").unwrap();
    assert_eq!(a.decoder, "sigma");
    let rule = a.rule.as_ref().unwrap();
    assert_eq!(
        rule.id.as_deref(),
        Some("11111111-0000-0000-0000-000000000001")
    );
    assert_eq!(a.severity.label, SeverityLabel::High);
    assert_eq!(a.severity.original, "high");
    assert_eq!(a.techniques, [TechniqueId::parse("T1033").unwrap()]);
    assert_eq!(a.tactics, ["discovery"]);
    assert_eq!(a.original, e.original);
    assert_eq!(
        a.source_id.as_deref(),
        Some(
            "sigma:11111111-0000-0000-0000-000000000001@Microsoft-Windows-Sysmon/Operational:WS-042:7"
        )
    );
    let has = |k: EntityKind, r: Role, v: &str| {
        a.entities
            .iter()
            .any(|x| x.kind == k && x.role == r && x.value == v)
    };
    assert!(
        has(EntityKind::Host, Role::Related, "WS-042.corp.example"),
        "{:?}",
        a.entities
    );
    assert!(has(EntityKind::User, Role::Actor, "CORP\\alice"));
    assert!(has(
        EntityKind::Process,
        Role::Actor,
        "C:\\Windows\\System32\\whoami.exe"
    ));
    for h in ["AA11", "BB22", "CC33"] {
        assert!(has(EntityKind::FileHash, Role::Related, h));
    }
    assert!(
        !a.entities.iter().any(|x| x.value == "DD44"),
        "IMPHASH is not a file hash"
    );
    let info = alerts
        .iter()
        .find(|a| a.title == "Any Sysmon Event 1")
        .unwrap();
    assert_eq!(info.severity.label, SeverityLabel::Info);
}

#[test]
fn okta_entra_and_zeek_events_reach_their_rules() {
    let texts = [
        ("okta.yml", "title: Okta Fail\nlogsource: {product: okta, service: okta}\ndetection:\n  sel: {eventType: user.session.start, outcome.result: FAILURE}\n  condition: sel\n"),
        ("entra.yml", "title: Entra Bad Password\nlogsource: {product: azure, service: signinlogs}\ndetection:\n  sel: {ResultType: 50126}\n  condition: sel\n"),
        ("zeek.yml", "title: Zeek DNS\nlogsource: {product: zeek, service: dns}\ndetection:\n  sel: {query|endswith: .evil.example}\n  condition: sel\n"),
    ]
    .map(|(n, t)| RuleText { name: n.into(), text: t.into() });
    let d = Detector::load(&texts, Mapping::builtin(), &LoadOptions::default());
    let okta = json!({"eventType": "user.session.start", "outcome": {"result": "FAILURE"}});
    assert_eq!(d.matches("okta", "user.session.start", &okta).len(), 1);
    // The same fields under another decoder are not Okta's.
    assert!(d.matches("zeek", "dns", &okta).is_empty());
    let entra = json!({"category": "SignInLogs", "resultType": "50126", "properties": {"status": {"errorCode": 50126}}});
    assert_eq!(d.matches("entra", "sign-in", &entra).len(), 1);
    let graph = json!({"status": {"errorCode": 50126}});
    assert_eq!(d.matches("entra", "sign-in", &graph).len(), 1);
    let dns = json!({"query": "c2.evil.example"});
    assert_eq!(d.matches("zeek", "dns", &dns).len(), 1);
    assert!(d.matches("zeek", "conn", &dns).is_empty());
}

/// Riposte's candidate index and evaluator against `rsigma-eval` alone, over real events:
/// every SigmaHQ rule loaded, every record of the corpus' EVTX files (the regression data and
/// the OCSF samples) as it is and with its event data upper-cased, and each event's matches
/// must be exactly the rules `rsigma_eval::evaluate_rule` matches in the groups it routes to.
mod agreement {
    use std::path::{Path, PathBuf};

    use riposte_decode::Decoder;
    use riposte_decode::windows::Windows;
    use riposte_domain::Decoded;
    use serde_json::Value;

    use crate::{Detector, LoadOptions, Mapping, RuleText};

    fn corpus() -> PathBuf {
        std::env::var_os("RIPOSTE_CORPUS").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
            PathBuf::from,
        )
    }

    fn files(dir: &Path, ext: &[&str], out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                files(&p, ext, out);
            } else if p.extension().is_some_and(|x| ext.iter().any(|e| x == *e)) {
                out.push(p);
            }
        }
    }

    fn upper_case_data(v: &mut Value) {
        match v {
            Value::String(s) => *s = s.to_uppercase(),
            Value::Array(a) => a.iter_mut().for_each(upper_case_data),
            Value::Object(o) => o.values_mut().for_each(upper_case_data),
            _ => {}
        }
    }

    /// Every rule file of the three SigmaHQ folders of the corpus, read.
    fn corpus_rule_texts(root: &std::path::Path) -> Vec<RuleText> {
        let mut rule_files = Vec::new();
        for d in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
            files(
                &root.join("sigma").join(d),
                &["yml", "yaml"],
                &mut rule_files,
            );
        }
        rule_files
            .iter()
            .map(|p| RuleText {
                name: p.display().to_string(),
                text: std::fs::read_to_string(p).unwrap(),
            })
            .collect()
    }

    #[test]
    fn every_rule_agrees_with_rsigma_eval() {
        let root = corpus();
        let texts = corpus_rule_texts(&root);
        // Through the parsed-rule cache, warm: every file must come back from it, and the
        // matches below must still agree with rsigma-eval.
        let cold = crate::RuleCache::new();
        Detector::load_cached(&texts, Mapping::builtin(), &LoadOptions::default(), &cold);
        assert_eq!(cold.misses(), texts.len());
        let warm = crate::RuleCache::from_bytes(&cold.to_bytes());
        let d = Detector::load_cached(&texts, Mapping::builtin(), &LoadOptions::default(), &warm);
        assert_eq!(
            warm.misses(),
            0,
            "every SigmaHQ rule file should come from the cache"
        );
        let mut evtx_files = vec![
            root.join("ocsf-examples/raw_sample_log_dataset/Microsoft/WinEventLog/Security/xml/security.evtx"),
            root.join("ocsf-examples/raw_sample_log_dataset/Microsoft/WinEventLog/Sysmon/xml/sysmon.evtx"),
        ];
        files(
            &root.join("sigma/regression_data"),
            &["evtx"],
            &mut evtx_files,
        );
        let (mut events, mut matched) = (0, 0);
        for f in &evtx_files {
            let mut p = evtx::EvtxParser::from_path(f).unwrap();
            for rec in p.records_json_value().flatten() {
                let mut upper = rec.data.clone();
                if let Some(data) = upper.pointer_mut("/Event/EventData") {
                    upper_case_data(data);
                }
                for v in [rec.data, upper] {
                    let Ok(ds) = Windows.decode(v) else { continue };
                    for x in ds {
                        let Decoded::Event(e) = x else { continue };
                        let ours = d.matches(&e.decoder, &e.action, &e.original);
                        let theirs = d.matches_by_rsigma(&e.decoder, &e.action, &e.original);
                        assert_eq!(
                            ours,
                            theirs,
                            "{}: record {}: ours vs rsigma-eval",
                            f.display(),
                            e.source_id.as_deref().unwrap_or("?")
                        );
                        events += 1;
                        matched += ours.len();
                    }
                }
            }
        }
        println!("{events} events, {matched} matches, all agreeing");
        assert!(
            events > 5_000 && matched > 500,
            "{events} events, {matched} matches"
        );
    }

    /// Where an event's candidates come from (`cargo test -p riposte-detect --release --
    /// --ignored candidate_sources --nocapture`): per gate kind, candidates per event and the
    /// rules let through most often.
    #[test]
    #[ignore]
    fn candidate_sources() {
        let root = corpus();
        let texts = corpus_rule_texts(&root);
        let d = Detector::load(&texts, Mapping::builtin(), &LoadOptions::default());
        let mut evtx_files = vec![
            root.join("ocsf-examples/raw_sample_log_dataset/Microsoft/WinEventLog/Security/xml/security.evtx"),
            root.join("ocsf-examples/raw_sample_log_dataset/Microsoft/WinEventLog/Sysmon/xml/sysmon.evtx"),
        ];
        files(
            &root.join("sigma/regression_data"),
            &["evtx"],
            &mut evtx_files,
        );
        let mut events = 0usize;
        let mut totals = [0usize; 5];
        let mut union = 0usize;
        let mut judged = 0usize;
        let mut judged_by_rule: std::collections::HashMap<usize, usize> = Default::default();
        let mut by_rule: [std::collections::HashMap<usize, usize>; 5] = Default::default();
        for f in &evtx_files {
            let mut p = evtx::EvtxParser::from_path(f).unwrap();
            for rec in p.records_json_value().flatten() {
                let Ok(ds) = Windows.decode(rec.data) else {
                    continue;
                };
                for x in ds {
                    let Decoded::Event(e) = x else { continue };
                    let s = d.candidate_sources(&e.decoder, &e.action, &e.original);
                    events += 1;
                    judged += s[5].len();
                    for r in &s[5] {
                        *judged_by_rule.entry(*r).or_default() += 1;
                    }
                    let mut all: Vec<usize> = s[..5].iter().flatten().copied().collect();
                    all.sort_unstable();
                    all.dedup();
                    union += all.len();
                    for (k, rs) in s[..5].iter().enumerate() {
                        totals[k] += rs.len();
                        for r in rs {
                            *by_rule[k].entry(*r).or_default() += 1;
                        }
                    }
                }
            }
        }
        let mut top: Vec<(usize, usize)> = judged_by_rule.into_iter().collect();
        top.sort_unstable_by_key(|t| std::cmp::Reverse(t.1));
        println!("judged most:");
        for (r, n) in top.iter().take(15) {
            println!("  {n:>8} {}", d.rules()[*r].file);
        }
        println!(
            "{events} events, {:.1} rules per event let through by a gate in either slot, {:.1} candidates judged (a gate met in each slot)",
            union as f64 / events as f64,
            judged as f64 / events as f64
        );
        for (k, name) in ["always", "present", "equals", "contains", "keyword"]
            .iter()
            .enumerate()
        {
            println!("{name}: {:.1} per event", totals[k] as f64 / events as f64);
            let mut top: Vec<(usize, usize)> = by_rule[k].iter().map(|(r, n)| (*n, *r)).collect();
            top.sort_unstable_by(|a, b| b.cmp(a));
            for (n, r) in top.into_iter().take(12) {
                println!("    {:>6} {}", n, d.rules()[r].file);
            }
        }
    }
}
