//! SigmaHQ's own regression data: every rule of `rules/`, `rules-emerging-threats/` and
//! `rules-threat-hunting/` loaded together; for each regression case, the rule its `info.yml`
//! names fires exactly `match_count` times (1 when the file does not say) on the case's
//! `.evtx` and on its `.json`. Prints the pass rate and every failure with its reason.
//!
//! A case whose `info.yml` states no `match_count` passes when the rule fires at least once:
//! that is what SigmaHQ's own runner (`tests/regression_tests_runner.py`) checks. Four cases
//! state `match_count: 1` over files that hold several events meeting the rule as written
//! (each checked by hand against the rule's selection; see [`INFO_COUNT_TOO_LOW`]); they are
//! reported as such on every run and expected at the verified count, so a change in what
//! fires on them still fails the test.

use std::path::{Path, PathBuf};

use riposte_decode::Decoder;
use riposte_decode::windows::Windows;
use riposte_detect::{Detector, LoadOptions, Mapping, RuleText};
use riposte_domain::Decoded;
use serde_json::Value;

fn sigma_dir() -> PathBuf {
    let corpus = std::env::var_os("RIPOSTE_CORPUS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
        PathBuf::from,
    );
    corpus.join("sigma")
}

fn files_named(dir: &Path, pred: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_named(&p, pred, out);
        } else if pred(&p) {
            out.push(p);
        }
    }
}

fn load_all_rules() -> Detector {
    let root = sigma_dir();
    let mut files = Vec::new();
    for d in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        files_named(
            &root.join(d),
            &|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"),
            &mut files,
        );
    }
    let texts: Vec<RuleText> = files
        .iter()
        .map(|p| RuleText {
            name: p.strip_prefix(&root).unwrap_or(p).display().to_string(),
            text: std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        })
        .collect();
    let d = Detector::load(&texts, Mapping::builtin(), &LoadOptions::default());
    let s = d.stats();
    println!(
        "loaded {} files: {} detection rules, {} correlation rules, {} refused, {} with a logsource no mapping covers",
        s.files, s.rules, s.correlations, s.refused, s.unmapped
    );
    assert!(s.files >= 3_700, "expected SigmaHQ's ~3,754 rule files");
    d
}

/// Cases whose `info.yml` says `match_count: 1` while their file holds more events that meet
/// the rule: (case folder, events that meet it, which ones).
const INFO_COUNT_TOO_LOW: &[(&str, usize, &str)] = &[
    (
        "file_event_win_anydesk_artefact",
        3,
        "TargetFilename contains \\AppData\\Roaming\\AnyDesk\\user.conf in records 3, 4 and 5 (user.conf.new twice, user.conf~RF….TMP)",
    ),
    (
        "file_event_win_cred_dump_tools_dropped_files",
        3,
        "TargetFilename ends with \\procdump64.exe, \\procdump64a.exe and \\procdump.exe (records 1, 3, 5)",
    ),
    (
        "registry_set_change_security_zones",
        3,
        "three ZoneMap\\Domains values set to DWORD (0x00000002), none in the filter",
    ),
    (
        "registry_set_disable_administrative_share",
        2,
        "AutoShareServer and AutoShareWks both set to DWORD (0x00000000)",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Exactly(usize),
    AtLeastOne,
}

struct Case {
    dir: PathBuf,
    rule_id: String,
    title: String,
    expect: Expect,
    evtx: PathBuf,
}

fn cases() -> Vec<Case> {
    let root = sigma_dir();
    let mut infos = Vec::new();
    files_named(
        &root.join("regression_data"),
        &|p| p.file_name().is_some_and(|n| n == "info.yml"),
        &mut infos,
    );
    let mut out = Vec::new();
    for info in infos {
        let text = std::fs::read_to_string(&info).unwrap();
        let v: yaml_serde::Value =
            yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", info.display()));
        let Some(tests) = v.get("regression_tests_info").and_then(|t| t.as_sequence()) else {
            // A case whose tests are commented out (the Cisco `.raw` one) has nothing to run.
            continue;
        };
        let meta = &v["rule_metadata"][0];
        for t in tests {
            if t.get("type").and_then(|x| x.as_str()) != Some("evtx") {
                continue;
            }
            let rel = t["path"].as_str().unwrap();
            let evtx = root.join(rel);
            out.push(Case {
                dir: info.parent().unwrap().to_path_buf(),
                rule_id: meta["id"].as_str().unwrap().to_string(),
                title: meta["title"].as_str().unwrap_or("").to_string(),
                expect: t
                    .get("match_count")
                    .and_then(|c| c.as_u64())
                    .map_or(Expect::AtLeastOne, |c| Expect::Exactly(c as usize)),
                evtx,
            });
        }
    }
    out
}

/// How many times the rule fires over these records (each decoded as the replay does).
fn fires(
    d: &Detector,
    rule_id: &str,
    records: impl Iterator<Item = Result<Value, String>>,
) -> Result<usize, String> {
    let mut n = 0;
    for (i, r) in records.enumerate() {
        let v = r.map_err(|e| format!("record {}: {e}", i + 1))?;
        let decoded = Windows
            .decode(v)
            .map_err(|e| format!("record {}: {e}", i + 1))?;
        for dec in decoded {
            if let Decoded::Event(ev) = dec {
                n += d
                    .detect(&ev)
                    .iter()
                    .filter(|a| a.rule.as_ref().and_then(|r| r.id.as_deref()) == Some(rule_id))
                    .count();
            }
        }
    }
    Ok(n)
}

fn evtx_records(path: &Path) -> Result<Vec<Result<Value, String>>, String> {
    let mut p = evtx::EvtxParser::from_path(path).map_err(|e| e.to_string())?;
    Ok(p.records_json_value()
        .map(|r| r.map(|r| r.data).map_err(|e| e.to_string()))
        .collect())
}

fn json_records(path: &Path) -> Result<Vec<Result<Value, String>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    // One document, or several written one after the other.
    Ok(serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect())
}

#[test]
fn sigmahq_regression_data() {
    let d = load_all_rules();
    let cases = cases();
    assert_eq!(cases.len(), 202, "SigmaHQ's regression cases");
    let mut failures = Vec::new();
    let mut info_too_low = Vec::new();
    // Read to the letter: a missing match_count means 1, every stated count is exact.
    let mut strict_pass = 0;
    for c in &cases {
        let folder = c
            .dir
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let known = INFO_COUNT_TOO_LOW.iter().find(|(f, _, _)| *f == folder);
        let expect = match known {
            Some((_, n, _)) => Expect::Exactly(*n),
            None => c.expect,
        };
        let json = c.evtx.with_extension("json");
        for (kind, records) in [
            ("evtx", evtx_records(&c.evtx)),
            ("json", json_records(&json)),
        ] {
            let got = records.and_then(|r| fires(&d, &c.rule_id, r.into_iter()));
            let strict = match c.expect {
                Expect::Exactly(n) => n,
                Expect::AtLeastOne => 1,
            };
            if got.as_ref().is_ok_and(|n| *n == strict) {
                strict_pass += 1;
            }
            let ok = match (got.as_ref(), expect) {
                (Ok(n), Expect::Exactly(want)) => *n == want,
                (Ok(n), Expect::AtLeastOne) => *n >= 1,
                (Err(_), _) => false,
            };
            if ok {
                if let Some((_, n, why)) = known {
                    info_too_low.push(format!(
                        "{folder} [{kind}]: fired {n} times; info.yml says {:?}: {why}",
                        c.expect
                    ));
                }
                continue;
            }
            failures.push(match got {
                Ok(n) => format!(
                    "{} [{kind}] {} ({}): fired {n} times, expected {expect:?}",
                    c.dir.display(),
                    c.title,
                    c.rule_id,
                ),
                Err(e) => format!("{} [{kind}]: {e}", c.dir.display()),
            });
        }
    }
    let refused = d.refusals();
    println!("refused rules ({}):", refused.len());
    for r in &refused {
        println!("  {r}");
    }
    let passed = cases.len() * 2 - failures.len();
    println!(
        "SigmaHQ regression: {passed}/{} checks pass ({} cases × evtx and json)",
        cases.len() * 2,
        cases.len()
    );
    println!(
        "read to the letter (no match_count = exactly 1): {strict_pass}/{}",
        cases.len() * 2
    );
    println!(
        "of those, {} pass at the count verified by hand, above the match_count their info.yml states:",
        info_too_low.len()
    );
    for f in &info_too_low {
        println!("  {f}");
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(
        failures.is_empty(),
        "{} failures, listed above",
        failures.len()
    );
}
