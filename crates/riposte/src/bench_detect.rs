//! `riposte bench detect`: what Sigma detection costs.
//!
//! 1. Cold scan, as the peers (Hayabusa, Chainsaw) are timed: read every rule file, load
//!    (parse on all cores, group by logsource), then read each regression `.evtx` (files
//!    spread over the cores), decode its records as `windows` and run the rules; matchers are
//!    compiled per logsource the first time one of its events arrives. Reports each phase,
//!    the detections and the peak RSS. Run it under `/usr/bin/time -v` for the process's
//!    own wall time.
//! 2. Where loading goes: parsing on one thread and on all, compiling every group eagerly.
//! 3. A stream of generated Sysmon and Security events (real records from the corpus' EVTX
//!    files, each copy with its own record id), as JSON text: parse + decode alone (the
//!    floor), then parse + decode + detect, on one thread and on all cores.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use riposte_decode::Decoder;
use riposte_decode::windows::Windows;
use riposte_detect::{Detector, LoadOptions, Mapping, RuleCache};
use riposte_domain::Decoded;
use serde_json::Value;

use crate::bench::{machine, peak_rss_kib};

/// What `bench detect` runs.
pub struct Options {
    /// Events in the generated stream (0: none).
    pub events: usize,
    /// Compile every rule at load.
    pub eager: bool,
    /// The cold scan alone.
    pub scan_only: bool,
    /// Where parsed rules are kept between runs, if anywhere.
    pub rule_cache: Option<PathBuf>,
    /// The stream alone, every group compiled before it.
    pub stream_only: bool,
    /// Threads of the stream's second run (default: all cores; 1: one run only).
    pub threads: Option<usize>,
    /// Rounds of the stream's passes (medians reported), after one warm-up pass.
    pub rounds: usize,
}

pub fn run(corpus: &Path, rules: Vec<PathBuf>, o: Options) -> Result<()> {
    let Options {
        events,
        eager,
        scan_only,
        rule_cache,
        stream_only,
        threads: stream_threads,
        rounds,
    } = o;
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stream_threads = stream_threads.unwrap_or(threads).max(1);
    let rules = if rules.is_empty() {
        ["rules", "rules-emerging-threats", "rules-threat-hunting"]
            .iter()
            .map(|d| corpus.join("sigma").join(d))
            .collect()
    } else {
        rules
    };
    // 1. Cold scan.
    let texts = crate::rules::read_rule_texts(&rules)?;
    let t_read = started.elapsed();
    let opts = LoadOptions {
        threads,
        lazy: !eager,
    };
    let cache = rule_cache.as_ref().map(|p| match std::fs::read(p) {
        Ok(bytes) => RuleCache::from_bytes(&bytes),
        Err(_) => RuleCache::new(),
    });
    let detector = match &cache {
        Some(c) => Detector::load_cached(&texts, Mapping::builtin(), &opts, c),
        None => Detector::load(&texts, Mapping::builtin(), &opts),
    };
    let t_load = started.elapsed();
    if stream_only {
        let t = Instant::now();
        detector.compile_all();
        println!(
            "bench detect: {}\nloaded {} rules in {:.3} s, compiled every group in {:.3} s",
            machine(),
            detector.stats().rules,
            t_load.as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
        return if events > 0 {
            stream(corpus, &detector, events, stream_threads, rounds)
        } else {
            Ok(())
        };
    }
    // Written (when anything was parsed afresh) and dropped before the scan, as a server
    // would after loading.
    let cache_note = match (cache, &rule_cache) {
        (Some(c), Some(p)) => {
            let parsed = c.misses();
            if parsed > 0 {
                std::fs::write(p, c.to_bytes())
                    .with_context(|| format!("cannot write rule cache {}", p.display()))?;
            }
            Some(format!(
                "  rule cache {}: {parsed} of {} rule files parsed afresh ({}; written after the timed load)",
                p.display(),
                texts.len(),
                if parsed == 0 { "warm" } else { "cold or stale" }
            ))
        }
        _ => None,
    };
    let t_after_cache = started.elapsed();
    let rss_load = peak_rss_kib("self").unwrap_or(0);
    let mut files = Vec::new();
    evtx_files(&corpus.join("sigma/regression_data"), &mut files)?;
    if files.is_empty() {
        bail!("no .evtx files under {}", corpus.display());
    }
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let next = AtomicUsize::new(0);
    let totals: Vec<(usize, usize)> = std::thread::scope(|s| {
        let work = || {
            let (mut records, mut detections) = (0, 0);
            while let Some(f) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                let Ok(mut p) = evtx::EvtxParser::from_path(f) else {
                    continue;
                };
                for rec in p.records_json_value().flatten() {
                    records += 1;
                    if let Ok(ds) = Windows.decode(rec.data) {
                        for d in ds {
                            if let Decoded::Event(e) = d {
                                detections += detector.detect(&e).len();
                            }
                        }
                    }
                }
            }
            (records, detections)
        };
        let hs: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = vec![work()];
        all.extend(hs.into_iter().filter_map(|h| h.join().ok()));
        all
    });
    let t_scan = started.elapsed();
    let records: usize = totals.iter().map(|t| t.0).sum();
    let detections: usize = totals.iter().map(|t| t.1).sum();
    let rss = peak_rss_kib("self").unwrap_or(0);
    let st = detector.stats();
    println!("bench detect: {}", machine());
    println!(
        "cold scan of {} EVTX files ({:.1} MB, {records} records) with {} rule files ({} rules, {} refused), compiling {}:",
        files.len(),
        bytes as f64 / 1e6,
        st.files,
        st.rules,
        st.refused,
        if eager {
            "all at load"
        } else {
            "per logsource seen"
        }
    );
    println!(
        "  read rules {:.3} s  load {:.3} s  scan {:.3} s  total {:.3} s  detections {detections}  peak RSS {} MiB ({} MiB after load)",
        t_read.as_secs_f64(),
        (t_load - t_read).as_secs_f64(),
        (t_scan - t_after_cache).as_secs_f64(),
        t_scan.as_secs_f64(),
        rss / 1024,
        rss_load / 1024
    );
    if let Some(n) = cache_note {
        println!("{n}");
    }
    if scan_only {
        return Ok(());
    }

    // 2. Where loading goes.
    let t = Instant::now();
    let one = Detector::load(
        &texts,
        Mapping::builtin(),
        &LoadOptions {
            threads: 1,
            lazy: true,
        },
    );
    let parse_one = t.elapsed();
    drop(one);
    let t = Instant::now();
    let all = Detector::load(&texts, Mapping::builtin(), &opts);
    let parse_all = t.elapsed();
    let t = Instant::now();
    all.compile_all();
    let compile_all = t.elapsed();
    println!(
        "loading, apart: parse + group {:.3} s on 1 thread, {:.3} s on {threads}; compile every group {:.3} s on {threads}",
        parse_one.as_secs_f64(),
        parse_all.as_secs_f64(),
        compile_all.as_secs_f64()
    );
    drop(all);

    // 3. Events/s on a stream.
    if events > 0 {
        stream(corpus, &detector, events, stream_threads, rounds)?;
    }
    Ok(())
}

fn evtx_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            evtx_files(&e, out)?;
        } else if e.extension().is_some_and(|x| x == "evtx") {
            out.push(e);
        }
    }
    Ok(())
}

/// Real Sysmon and Security records, as JSON values.
fn templates(corpus: &Path) -> Result<Vec<Value>> {
    let mut files = vec![
        corpus.join(
            "ocsf-examples/raw_sample_log_dataset/Microsoft/WinEventLog/Security/xml/security.evtx",
        ),
        corpus.join(
            "ocsf-examples/raw_sample_log_dataset/Microsoft/WinEventLog/Sysmon/xml/sysmon.evtx",
        ),
    ];
    evtx_files(&corpus.join("sigma/regression_data"), &mut files)?;
    let mut out = Vec::new();
    for f in &files {
        let mut p = evtx::EvtxParser::from_path(f)
            .with_context(|| format!("{}: not a readable EVTX file", f.display()))?;
        out.extend(p.records_json_value().flatten().map(|r| r.data));
    }
    Ok(out)
}

fn stream(
    corpus: &Path,
    detector: &Detector,
    n: usize,
    threads: usize,
    rounds: usize,
) -> Result<()> {
    let ts = templates(corpus)?;
    if ts.is_empty() {
        bail!("no template records");
    }
    let mut lines = Vec::with_capacity(n);
    let mut bytes = 0;
    for i in 0..n {
        let mut v = ts[i % ts.len()].clone();
        if let Some(sys) = v.pointer_mut("/Event/System")
            && let Some(o) = sys.as_object_mut()
        {
            o.insert("EventRecordID".into(), Value::from(i as u64 + 1));
        }
        let line = serde_json::to_string(&v)?;
        bytes += line.len();
        lines.push(line);
    }
    let sysmon = ts
        .iter()
        .filter(|v| {
            v.pointer("/Event/System/Channel")
                .and_then(Value::as_str)
                .is_some_and(|c| c.contains("Sysmon"))
        })
        .count();
    println!(
        "stream: {n} events ({} templates: {sysmon} Sysmon, {} Security), avg {} B of JSON",
        ts.len(),
        ts.len() - sysmon,
        bytes / n
    );
    // 0: parse + decode; 1: + rule evaluation (which rules match); 2: + the alerts.
    let pass = |stage: u8, threads: usize| -> (f64, usize) {
        let t = Instant::now();
        let part = n.div_ceil(threads);
        let hits: usize = std::thread::scope(|s| {
            let hs: Vec<_> = lines
                .chunks(part)
                .map(|chunk| {
                    s.spawn(move || {
                        let mut hits = 0;
                        for l in chunk {
                            let Ok(v) = serde_json::from_str::<Value>(l) else {
                                continue;
                            };
                            let Ok(ds) = Windows.decode(v) else { continue };
                            for d in ds {
                                if let Decoded::Event(e) = d {
                                    hits += match stage {
                                        0 => 0,
                                        1 => detector
                                            .matches(&e.decoder, &e.action, &e.original)
                                            .len(),
                                        _ => detector.detect(&e).len(),
                                    };
                                }
                            }
                        }
                        hits
                    })
                })
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).sum()
        });
        (n as f64 / t.elapsed().as_secs_f64(), hits)
    };
    let runs: &[usize] = if threads == 1 { &[1] } else { &[1, threads] };
    // One untimed pass first: the allocator's arenas, the page cache and the CPU's clocks
    // settle, so the first timed pass is not charged for them.
    pass(2, threads);
    let rounds = rounds.max(1);
    println!(
        "  (after one warm-up pass; {rounds} round(s) of the three passes back to back; each rate the median of its rounds, each share the median of the rounds' own shares, so a drift in the machine's speed between rounds cancels out)"
    );
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for &th in runs {
        let mut got: [Vec<f64>; 5] = Default::default();
        let (mut matched, mut alerts) = (0, 0);
        for _ in 0..rounds {
            let (floor, _) = pass(0, th);
            let (eval, m) = pass(1, th);
            let (rate, a) = pass(2, th);
            (matched, alerts) = (m, a);
            for (v, x) in got
                .iter_mut()
                .zip([floor, eval, rate, eval / floor, rate / floor])
            {
                v.push(x);
            }
        }
        let [floor, eval, rate, eval_share, rate_share] = got.map(median);
        println!(
            "  {th} thread(s): parse + decode {floor:.0} events/s; + rules {eval:.0} events/s ({:.0} % of the floor, {matched} matches); + alerts {rate:.0} events/s ({:.0} %, {alerts} alerts)",
            100.0 * eval_share,
            100.0 * rate_share
        );
    }
    Ok(())
}
