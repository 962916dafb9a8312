//! Enrichment look-up throughput and memory per indicator at benchmark scale:
//!
//! `cargo run --release -p riposte-enrich --example bench_lookup [INDICATORS [ASSETS]]`
//!
//! Writes synthetic feeds to a temporary directory, loads them through the real loaders,
//! reports load time and memory per indicator, then enriches a fixed mix of alert entities on
//! one thread and reports entities/s.

use std::process::ExitCode;
use std::time::Instant;

use riposte_domain::Canonicaliser;
use riposte_enrich::{EnrichmentSet, Source, synthetic};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut sizes = synthetic::Sizes::default();
    if let Some(n) = args.next().and_then(|a| a.parse().ok()) {
        sizes.indicators = n;
    }
    if let Some(n) = args.next().and_then(|a| a.parse().ok()) {
        sizes.assets = n;
    }
    let dir = std::env::temp_dir().join(format!("riposte-bench-enrich-{}", std::process::id()));
    let result = run(&dir, sizes);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_lookup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &std::path::Path, sizes: synthetic::Sizes) -> Result<(), String> {
    let config = synthetic::write(dir, sizes).map_err(|e| e.to_string())?;
    let canon = Canonicaliser::default();
    let t = Instant::now();
    let set = EnrichmentSet::load_file(&config, &canon).map_err(|e| e.to_string())?;
    let load = t.elapsed();
    let fp = set.intel().footprint();
    println!(
        "loaded {} indicators, {} assets, {} identities in {:.2?}",
        set.intel().len(),
        set.assets().len(),
        set.identities().len(),
        load
    );
    println!(
        "intel index: {} bytes ({:.1} MiB), {} bytes per indicator, {} trie nodes",
        fp.bytes,
        fp.bytes as f64 / 1048576.0,
        fp.bytes / fp.indicators.max(1),
        fp.trie_nodes
    );
    let mut entities = synthetic::entities(sizes, 400_000);
    entities.retain_mut(|e| canon.apply(e));
    let at = "2026-01-01T00:00:00Z"
        .parse()
        .map_err(|e: jiff::Error| e.to_string())?;
    let mut out = Vec::with_capacity(64);
    let mut hits = 0usize;
    let rounds = 5;
    let t = Instant::now();
    for _ in 0..rounds {
        for e in &entities {
            out.clear();
            set.enrich(e, at, &mut out);
            hits += out.len();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let n = entities.len() * rounds;
    println!(
        "{n} entity look-ups in {secs:.3}s: {:.0} entities/s on one thread ({hits} contexts)",
        n as f64 / secs
    );
    Ok(())
}
