//! `riposte bench cases`: the case stage on one core at scale.
//!
//! Synthetic enrichment (100,000 indicators, 50,000 assets, 20,000 identities by default) is
//! written as ordinary feed files and loaded through the real loaders. Alerts are generated
//! for `cases` distinct hosts (each with its own user and internal address, half of the hosts
//! known assets), arriving in time order over 50 minutes so that every case stays open, and
//! half of them carrying an outside address, domain, URL or hash from the intel pool's mix
//! (about a fifth of those listed). Three passes over the same alerts, each on one thread:
//!
//! 1. **correlate**: [`CaseStage::place`] alone (case formation);
//! 2. **correlate + enrich**: and every entity of every alert looked up in the enrichment
//!    (intel, assets, identities), as an alert-level enrichment stage would;
//! 3. **live**: correlate, then every 1,000 alerts the cases they touched built (enriched,
//!    scored, explained as the stored document), as the server's case task does.
//!
//! Memory: the process's resident set before and after placing (pass 1), per open case and
//! per alert, and how much of the process is in huge pages; the intel index's own size per
//! indicator. Rates are given per wall-clock second and per second of the thread's CPU time.

use std::time::Instant;

use anyhow::{Context, Result};

use riposte_domain::{Alert, Canonicaliser, Entity, EntityKind, Role, Severity, Timestamp};
use riposte_enrich::{EnrichmentSet, Source, synthetic};
use riposte_ingest::cases::{CaseStage, Touched};

pub struct CasesBench {
    pub alerts: usize,
    pub cases: usize,
    pub indicators: usize,
    pub assets: usize,
    /// Run only these passes (`correlate`, `enrich`, `live`); all when empty.
    pub passes: Vec<String>,
}

pub fn run(b: CasesBench) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("riposte-bench-cases-{}", std::process::id()));
    let result = measure(&b, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(b: &CasesBench, dir: &std::path::Path) -> Result<()> {
    let sizes = synthetic::Sizes {
        indicators: b.indicators,
        assets: b.assets,
        identities: synthetic::Sizes::default().identities,
    };
    let config = synthetic::write(dir, sizes).context("writing synthetic feeds")?;
    let canon = Canonicaliser::default();
    let rss0 = rss_kib();
    let t = Instant::now();
    let set = EnrichmentSet::load_file(&config, &canon).map_err(|e| anyhow::anyhow!("{e}"))?;
    let load = t.elapsed();
    let rss_set = rss_kib();
    let fp = set.intel().footprint();
    let set = std::sync::Arc::new(set);

    let alerts = generate(b, sizes, &canon);
    println!("bench cases: {}", crate::bench::machine());
    println!(
        "  enrichment: {} indicators, {} assets, {} identities loaded in {:.0} ms; intel index {} B per indicator; process grew {} MiB",
        set.intel().len(),
        set.assets().len(),
        set.identities().len(),
        load.as_secs_f64() * 1e3,
        fp.bytes / fp.indicators.max(1),
        (rss_set.saturating_sub(rss0)) / 1024,
    );
    println!(
        "  alerts: {} over {} hosts (one case each), 50 minutes of alert time, one thread",
        alerts.len(),
        b.cases
    );

    let run_pass = |p: &str| b.passes.is_empty() || b.passes.iter().any(|x| x == p);
    let config = riposte_correlate::CaseConfig::default();
    let scoring = riposte_score::ScoringConfig::default();
    // One pass of case formation over every alert (expiring every 10,000 as the server's
    // tick does), optionally enriching every entity first. Returns (seconds, seconds of
    // this thread's CPU time, open cases, alerts in them, contexts found, resident-set growth
    // in bytes).
    let pass = |enrich: bool| -> Result<(f64, f64, usize, usize, usize, u64)> {
        let mut stage = CaseStage::new(&config, set.clone(), scoring.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut out = Vec::with_capacity(16);
        let mut contexts = 0usize;
        let before = rss_kib();
        let cpu0 = thread_cpu_secs();
        let t = Instant::now();
        let mut touched = Touched::default();
        for (i, a) in alerts.iter().enumerate() {
            if enrich {
                for e in &a.entities {
                    out.clear();
                    set.enrich(e, a.time, &mut out);
                    contexts += out.len();
                }
            }
            stage.place(a, &mut touched);
            if i % 1_000 == 999 {
                touched = Touched::default();
            }
            if i % 10_000 == 9_999
                && let Some(wm) = stage.watermark()
            {
                stage.expire(wm, &mut touched);
            }
        }
        let secs = t.elapsed().as_secs_f64();
        let cpu = thread_cpu_secs() - cpu0;
        let grown = rss_kib().saturating_sub(before) * 1024;
        let (open, held) = stage.open_counts();
        Ok((secs, cpu, open, held, contexts, grown))
    };
    // Wall-clock rate, and the rate per second this thread was on a core (user + kernel,
    // page faults included): on a shared machine the second is the one to compare.
    let rate = |secs: f64, cpu: f64| {
        format!(
            "{:>9.0} alerts/s  ({:.0} per CPU-second)",
            alerts.len() as f64 / secs,
            alerts.len() as f64 / cpu.max(1e-9)
        )
    };

    // 1. Correlate, on memory the process has never touched: every page is a fault the
    //    kernel zeroes (on this virtual machine, a large share of the time).
    if run_pass("correlate") {
        let (secs, cpu, open, held, _, grown) = pass(false)?;
        println!(
            "  correlate (cold memory):  {}  ({open} open cases, {held} alerts in them)",
            rate(secs, cpu)
        );
        println!(
            "  memory: {} MiB for the open cases: {} B per open case, {} B per alert; {} MiB of the process in huge pages",
            grown / (1 << 20),
            grown / open.max(1) as u64,
            grown / held.max(1) as u64,
            crate::huge_pages::anon_huge_kib().unwrap_or(0) / 1024,
        );
        // 1b. The same on memory the allocator already has: a server's steady state, where
        //     closed cases give back what new ones take.
        let (secs, cpu, ..) = pass(false)?;
        println!("  correlate (warm memory):  {}", rate(secs, cpu));
    }

    // 2. Correlate + enrich every alert's entities.
    if run_pass("enrich") {
        let (secs, cpu, _, _, contexts, _) = pass(true)?;
        println!(
            "  correlate + enrich:       {}  ({contexts} contexts found)",
            rate(secs, cpu)
        );
    }

    // 3. Live: correlate, and build the touched cases every 1,000 alerts.
    if run_pass("live") {
        let mut stage = CaseStage::new(&config, set.clone(), scoring.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let t = Instant::now();
        let mut touched = Touched::default();
        let mut built = 0usize;
        for (i, a) in alerts.iter().enumerate() {
            stage.place(a, &mut touched);
            if i % 1_000 == 999 {
                let (cases, _) = stage.settle(std::mem::take(&mut touched));
                built += cases.len();
            }
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  live (build every 1,000 alerts): {:>9.0} alerts/s  ({built} case documents built)",
            alerts.len() as f64 / secs
        );
    }
    Ok(())
}

/// The alerts, in time order: alert `i` is on host `i·k mod cases` (k coprime with the count,
/// so each host recurs every `cases` alerts), with its user and address, every second one with
/// an outside entity from the enrichment mix.
fn generate(b: &CasesBench, sizes: synthetic::Sizes, canon: &Canonicaliser) -> Vec<Alert> {
    let t0_ms: i64 = 1_767_225_600_000; // 2026-01-01
    let span_ms = 50 * 60 * 1000;
    let mut outside = synthetic::entities(sizes, b.alerts / 2 + 8);
    outside.retain(|e| {
        !matches!(e.kind, EntityKind::Host | EntityKind::User) && e.role != Role::Source
    });
    outside.retain_mut(|e| canon.apply(e));
    let cases = b.cases.max(1);
    let step = coprime_step(cases);
    (0..b.alerts)
        .map(|i| {
            let h = (i * step) % cases;
            let ms = (i as i64) * span_ms / b.alerts.max(1) as i64;
            let time = Timestamp::from_millisecond(t0_ms + ms).unwrap_or(Timestamp::UNIX_EPOCH);
            let mut entities = vec![
                canonical(canon, EntityKind::Host, Role::Target, format!("host-{h}")),
                canonical(canon, EntityKind::User, Role::Actor, format!("user{h}")),
                canonical(
                    canon,
                    EntityKind::Ip,
                    Role::Source,
                    format!("10.{}.{}.{}", (h >> 16) & 255, (h >> 8) & 255, h & 255),
                ),
            ];
            if i % 2 == 0 && !outside.is_empty() {
                entities.push(outside[(i / 2) % outside.len()].clone());
            }
            Alert {
                id: format!("{:032x}", i as u128 * 0x9e37_79b9_7f4a_7c15),
                decoder: "bench".into(),
                product: if i % 3 == 0 { "EDR" } else { "NDR" }.into(),
                source_id: None,
                time,
                time_original: String::new(),
                title: format!("bench alert {}", i % 97),
                description: None,
                severity: Severity::from_score(20 + (i % 7) as u32 * 10, ""),
                rule: None,
                entities,
                techniques: Vec::new(),
                tactics: Vec::new(),
                original: serde_json::Value::Null,
                origin: None,
            }
        })
        .collect()
}

fn canonical(canon: &Canonicaliser, kind: EntityKind, role: Role, v: String) -> Entity {
    let mut e = Entity::new(kind, role, v);
    canon.apply(&mut e);
    e
}

/// A step near 0.618·n that shares no factor with n, so `i·step mod n` visits every host.
fn coprime_step(n: usize) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut s = (n as f64 * 0.618) as usize | 1;
    while s > 1 && gcd(s, n) != 1 {
        s += 2;
    }
    s.max(1)
}

/// CPU time of the calling thread so far, user and kernel, in seconds (0 where the clock is
/// not there).
fn thread_cpu_secs() -> f64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call's duration.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
        }
    }
    0.0
}

/// This process's resident set, in KiB (0 where /proc is not there).
fn rss_kib() -> u64 {
    crate::bench::proc_status_kib("self", "VmRSS:").unwrap_or(0)
}
