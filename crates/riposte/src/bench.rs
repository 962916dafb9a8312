//! `riposte bench`: throughput measurements anyone can run.
//!
//! Records are made from real product payloads in `../shared/corpus` (every record there that
//! a built-in decoder recognises), each copy given a distinct id, so the benchmark stores
//! realistic sizes from mixed decoders and never counts duplicates as work.
//!
//! - `bench replay`: writes N records as NDJSON, then replays them (decode + store) and
//!   reports the rate and the peak RSS.
//! - `bench respond`: alert arrival → action request of an `auto` step on SQLite
//!   (see `bench_respond`).
//! - `bench http`: starts `riposte serve` as a separate process on 127.0.0.1, sends batches
//!   over keep-alive connections, and reports the rate, latency percentiles and the
//!   server's peak RSS.
//! - `bench detect`: Sigma detection. A cold scan of SigmaHQ's regression EVTX files with all
//!   rules (rule loading included, as the peers are timed), then events/s over a generated
//!   stream of Sysmon and Security events with the full rule set, one thread and all cores,
//!   against the bare parse + decode rate of the same stream.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use riposte_decode::{Decoder, framing};
use riposte_ingest::Pipeline;
use riposte_ingest::replay::{self, ReplayOptions};
use riposte_store::{Durability, SqliteStore};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Replay N generated records through decode + store.
    Replay {
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
        /// The corpus the records are made from.
        #[arg(long, default_value = "../shared/corpus")]
        corpus: PathBuf,
        /// Where the NDJSON file and the data directory go (default: a fresh temporary folder).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Decode (single thread, no store) copies of every template; per-decoder cost.
    Decode {
        /// Copies of each template.
        #[arg(long, default_value_t = 2_000)]
        copies: u64,
        #[arg(long, default_value = "../shared/corpus")]
        corpus: PathBuf,
    },
    /// Case formation and enrichment on one core: alerts/s and memory per open case.
    Cases {
        #[arg(long, default_value_t = 1_000_000)]
        alerts: usize,
        /// Distinct hosts, each one open case.
        #[arg(long, default_value_t = 100_000)]
        cases: usize,
        #[arg(long, default_value_t = 100_000)]
        indicators: usize,
        #[arg(long, default_value_t = 50_000)]
        assets: usize,
        /// Only these passes: correlate, enrich, live (all by default).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Sigma detection: cold scan of the regression EVTX files, then events/s on a stream.
    Detect {
        #[arg(long, default_value = "../shared/corpus")]
        corpus: PathBuf,
        /// Rule folders (default: SigmaHQ's rules, rules-emerging-threats and
        /// rules-threat-hunting from the corpus).
        #[arg(long, num_args = 1..)]
        rules: Vec<PathBuf>,
        /// Events in the generated stream (0: cold scan only).
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Compile every rule at load instead of per logsource seen.
        #[arg(long)]
        eager: bool,
        /// Only the cold scan (no load breakdown, no stream), so the process's own wall
        /// time and peak RSS are the scan's.
        #[arg(long)]
        scan_only: bool,
        /// Keep parsed rules in this file between runs (keyed by each rule text's hash): the
        /// first run writes it (cold), later runs with unchanged rules skip YAML (warm).
        #[arg(long)]
        rule_cache: Option<PathBuf>,
        /// Only the stream: no cold scan, no load breakdown; every group is compiled before
        /// it, so the stream's passes are matching alone (for `valgrind --tool=callgrind`).
        #[arg(long, conflicts_with = "scan_only")]
        stream_only: bool,
        /// The stream's passes run on 1 thread and on this many (default: all cores; 1: one
        /// thread only).
        #[arg(long)]
        threads: Option<usize>,
        /// Rounds of the stream's passes after one warm-up pass (the passes of a round back to
        /// back); rates are medians over the rounds, shares of the floor medians of each
        /// round's own share.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Alert arrival → action request of an `auto` step, in process on SQLite (p50/p99).
    Respond {
        #[arg(long, default_value_t = 10_000)]
        alerts: usize,
        /// Alerts per second (open loop).
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        /// `normal` (survives a crash of riposte, not of the machine) instead of `full`.
        #[arg(long)]
        normal: bool,
        /// The in-memory run store instead of SQLite: the engine's own cost.
        #[arg(long, conflicts_with = "normal")]
        memory: bool,
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Send N generated records to a separate `riposte serve` process over HTTP.
    Http {
        #[arg(long, default_value_t = 200_000)]
        count: u64,
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Offered load in records/s (open loop: batch k is due at k·batch/rate and its
        /// latency counts from then, so a server that falls behind is not hidden). Without
        /// it, each connection sends its next batch as soon as the last is answered.
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long, default_value = "../shared/corpus")]
        corpus: PathBuf,
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// An extra argument for `riposte serve` (repeat for more), e.g. `--server-arg=--no-cases`.
        #[arg(long, allow_hyphen_values = true)]
        server_arg: Vec<String>,
    },
}

pub async fn run(cmd: BenchCommand) -> Result<std::process::ExitCode> {
    match cmd {
        BenchCommand::Replay {
            count,
            corpus,
            work_dir,
        } => bench_replay(count, &corpus, work_dir).await?,
        BenchCommand::Decode { copies, corpus } => bench_decode(copies, &corpus)?,
        BenchCommand::Respond {
            alerts,
            rate,
            normal,
            memory,
            work_dir,
        } => {
            use crate::bench_respond::Backend;
            let backend = match (memory, normal) {
                (true, _) => Backend::Memory,
                (false, true) => Backend::Sqlite(Durability::Normal),
                (false, false) => Backend::Sqlite(Durability::Full),
            };
            crate::bench_respond::bench_respond(alerts, rate, backend, work_dir).await?
        }
        BenchCommand::Cases {
            alerts,
            cases,
            indicators,
            assets,
            only,
        } => crate::bench_cases::run(crate::bench_cases::CasesBench {
            alerts,
            cases,
            indicators,
            assets,
            passes: only,
        })?,
        BenchCommand::Detect {
            corpus,
            rules,
            events,
            eager,
            scan_only,
            rule_cache,
            stream_only,
            threads,
            rounds,
        } => crate::bench_detect::run(
            &corpus,
            rules,
            crate::bench_detect::Options {
                events,
                eager,
                scan_only,
                rule_cache,
                stream_only,
                threads,
                rounds,
            },
        )?,
        BenchCommand::Http {
            count,
            batch,
            connections,
            rate,
            corpus,
            work_dir,
            server_arg,
        } => {
            bench_http(
                count,
                batch,
                connections,
                rate,
                &corpus,
                work_dir,
                &server_arg,
            )
            .await?
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Corpus files whose records are alerts or events riposte decodes.
const SOURCES: &[&str] = &[
    "alerts/suricata/eve/test-eve-small.log",
    "alerts/crowdstrike/falcon/test-falcon-epp-detection-summary.log",
    "alerts/crowdstrike/alert/test-alert.log",
    "alerts/defender/endpoint/test-defenderatp.log",
    "alerts/m365_defender/alert/test-alert.log",
    "alerts/sentinel/alert/test-alert.log",
    "alerts/okta/system/test-okta-system-events.log",
    "alerts/entra/signinlogs/test-signinlogs.log",
    "alerts/guardduty/test-guardduty.log",
    "alerts/sentinelone/alert/test-pipeline-alert.log",
    "alerts/zeek/notice/test-notice.log",
    "alerts/cef/test-cef.log",
    "alerts/panos/test-panw-panos-inc-threat-sample.log",
];

/// One real record and how to make the n-th distinct copy of it.
struct Template {
    raw: String,
    source_id: Option<String>,
    json: bool,
}

impl Template {
    fn copy(&self, n: u64) -> String {
        if let Some(sid) = &self.source_id
            && self.raw.contains(sid.as_str())
        {
            return self.raw.replace(sid.as_str(), &format!("{sid}-b{n}"));
        }
        if self.json {
            // Content-identified records: a distinct extra field gives a distinct copy.
            let body = self.raw.trim_start().trim_start_matches('{');
            format!("{{\"riposte_bench_copy\":{n},{body}")
        } else {
            format!("{} cs6Label=riposteBenchCopy cs6={n}", self.raw.trim_end())
        }
    }
}

fn identify(p: &Pipeline, line: &str) -> Option<(String, Option<String>)> {
    let t = line.trim_start();
    let (decoder, input): (&dyn Decoder, serde_json::Value) = if t.starts_with('{') {
        let v = framing::parse(line, riposte_decode::InputKind::Json).ok()?;
        (riposte_decode::detect(&v)?, v)
    } else {
        let (_, msg) = riposte_decode::syslog::strip(line);
        let d = riposte_decode::syslog::route(msg).and_then(riposte_decode::builtin)?;
        (d, serde_json::Value::String(line.to_string()))
    };
    let o = riposte_domain::Origin::Replay {
        file: String::new(),
        record: 0,
    };
    let out = p
        .decode_one(decoder, riposte_ingest::Input::Json(input), &o)
        .ok()?;
    let first = out.first()?;
    Some((
        first.id().to_string(),
        first.source_id().map(str::to_string),
    ))
}

fn templates(corpus: &Path) -> Result<Vec<Template>> {
    let p = Pipeline::default();
    let mut out = Vec::new();
    for rel in SOURCES {
        let path = corpus.join(rel);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Some((_, source_id)) = identify(&p, line) else {
                continue;
            };
            let t = Template {
                raw: line.to_string(),
                source_id,
                json: line.trim_start().starts_with('{'),
            };
            // Keep only templates whose copies really are distinct records.
            let a = identify(&p, &t.copy(1)).map(|x| x.0);
            let b = identify(&p, &t.copy(2)).map(|x| x.0);
            if a.is_some() && a != b {
                out.push(t);
            }
        }
    }
    if out.is_empty() {
        bail!("no usable records under {}", corpus.display());
    }
    Ok(out)
}

/// Where one record's decoding time goes, per decoder: parsing and decoding, serialising
/// the stored document, compressing it.
fn bench_decode(copies: u64, corpus: &Path) -> Result<()> {
    use std::collections::BTreeMap;
    let ts = templates(corpus)?;
    let p = Pipeline::default();
    let origin = riposte_domain::Origin::Replay {
        file: "bench".into(),
        record: 0,
    };
    // decoder -> (records, bytes in, decode ns, serialise ns, compress ns, stored bytes)
    let mut by: BTreeMap<String, [u64; 6]> = BTreeMap::new();
    for t in &ts {
        let lines: Vec<String> = (0..copies).map(|n| t.copy(n)).collect();
        for line in &lines {
            let t0 = Instant::now();
            let Ok(ds) = p.decode_one(
                &riposte_ingest::Auto,
                riposte_ingest::Input::Text(line),
                &origin,
            ) else {
                continue;
            };
            let t1 = Instant::now();
            for d in &ds {
                let json = serde_json::to_vec(d)?;
                let t2 = Instant::now();
                let packed = riposte_store::compress_doc(&json);
                let t3 = Instant::now();
                let e = by.entry(d.decoder().to_string()).or_default();
                e[0] += 1;
                e[1] += line.len() as u64;
                e[2] += (t1 - t0).as_nanos() as u64 / ds.len() as u64;
                e[3] += (t2 - t1).as_nanos() as u64;
                e[4] += (t3 - t2).as_nanos() as u64;
                e[5] += packed.len() as u64;
            }
        }
    }
    println!(
        "bench decode: {}  ({copies} copies of {} templates, one thread)",
        machine(),
        ts.len()
    );
    println!(
        "  {:<12} {:>8} {:>8} {:>10} {:>10} {:>10} {:>8}",
        "decoder", "records", "in B", "decode µs", "json µs", "pack µs", "stored B"
    );
    let mut all = [0u64; 6];
    for (name, e) in &by {
        let n = e[0].max(1) as f64;
        println!(
            "  {:<12} {:>8} {:>8.0} {:>10.2} {:>10.2} {:>10.2} {:>8.0}",
            name,
            e[0],
            e[1] as f64 / n,
            e[2] as f64 / n / 1000.0,
            e[3] as f64 / n / 1000.0,
            e[4] as f64 / n / 1000.0,
            e[5] as f64 / n
        );
        for i in 0..6 {
            all[i] += e[i];
        }
    }
    let n = all[0].max(1) as f64;
    println!(
        "  {:<12} {:>8} {:>8.0} {:>10.2} {:>10.2} {:>10.2} {:>8.0}",
        "all",
        all[0],
        all[1] as f64 / n,
        all[2] as f64 / n / 1000.0,
        all[3] as f64 / n / 1000.0,
        all[4] as f64 / n / 1000.0,
        all[5] as f64 / n
    );
    Ok(())
}

pub(crate) fn work_dir(given: Option<PathBuf>) -> Result<(PathBuf, bool)> {
    match given {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            Ok((d, false))
        }
        None => {
            let d = std::env::temp_dir().join(format!("riposte-bench-{}", std::process::id()));
            std::fs::create_dir_all(&d)?;
            Ok((d, true))
        }
    }
}

/// Peak resident set size of a process, from /proc (Linux).
pub(crate) fn peak_rss_kib(pid: &str) -> Option<u64> {
    proc_status_kib(pid, "VmHWM:")
}

/// A size field (`VmHWM:`, `VmRSS:`) of `/proc/{pid}/status`, in KiB.
pub(crate) fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

async fn bench_replay(count: u64, corpus: &Path, given: Option<PathBuf>) -> Result<()> {
    let ts = templates(corpus)?;
    let (dir, temporary) = work_dir(given)?;
    let file = dir.join("bench-records.ndjson");
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    eprintln!(
        "writing {count} records from {} real templates to {}",
        ts.len(),
        file.display()
    );
    let mut bytes = 0u64;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&file)?);
        for n in 0..count {
            let line = ts[(n % ts.len() as u64) as usize].copy(n);
            bytes += line.len() as u64 + 1;
            w.write_all(line.as_bytes())?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
    }
    eprintln!("replaying (decode + store) …");
    // As `riposte replay` opens it: a new database with bulk pages.
    let store =
        SqliteStore::open_with_page_size(&data, Durability::Full, riposte_store::BULK_PAGE_SIZE)
            .await?;
    let mut opts = ReplayOptions::new(vec![file.clone()]);
    opts.progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let s = replay::run(&store, Arc::new(Pipeline::default()), opts).await?;
    store.close().await;
    let rss = peak_rss_kib("self").unwrap_or(0);
    println!("bench replay: {}", machine());
    println!(
        "  records {}  ({} alerts, {} events)  avg size {} B  stored {}  duplicates {}  refused {}",
        s.records,
        s.alerts,
        s.events,
        bytes / count.max(1),
        s.stored,
        s.duplicates,
        s.rejected
    );
    println!(
        "  elapsed {:.2} s  rate {:.0} records/s  peak RSS {} MiB",
        s.elapsed.as_secs_f64(),
        s.records_per_second(),
        rss / 1024
    );
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

struct Server {
    child: std::process::Child,
    addr: String,
    token: String,
}

fn start_server(data: &Path, extra: &[String]) -> Result<Server> {
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .env("RIPOSTE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout from the server")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(a) = l.strip_prefix("riposte listening on http://") {
                    break a.to_string();
                }
            }
            _ => bail!("the server did not start"),
        }
    };
    let token = std::fs::read_to_string(data.join("admin.token"))?
        .trim()
        .to_string();
    Ok(Server { child, addr, token })
}

async fn post(
    conn: &mut BufReader<tokio::net::TcpStream>,
    path: &str,
    token: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>)> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.get_mut().write_all(head.as_bytes()).await?;
    conn.get_mut().write_all(body).await?;
    let mut status = String::new();
    conn.read_line(&mut status).await?;
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("bad status line")?;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).await?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse()?;
        }
    }
    let mut buf = vec![0; len];
    conn.read_exact(&mut buf).await?;
    Ok((code, buf))
}

async fn bench_http(
    count: u64,
    batch: usize,
    connections: usize,
    rate: Option<f64>,
    corpus: &Path,
    given: Option<PathBuf>,
    server_args: &[String],
) -> Result<()> {
    let ts = Arc::new(templates(corpus)?);
    let (dir, temporary) = work_dir(given)?;
    let data = dir.join("http-data");
    let _ = std::fs::remove_dir_all(&data);
    let mut server = start_server(&data, server_args)?;
    let batches = count.div_ceil(batch as u64);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (ts, next, addr, token) = (
            ts.clone(),
            next.clone(),
            server.addr.clone(),
            server.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut conn = BufReader::new(tokio::net::TcpStream::connect(&addr).await?);
            let mut lat = Vec::new();
            let mut accepted = 0u64;
            loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let mut body = String::with_capacity(batch * 1500);
                for i in 0..batch as u64 {
                    let n = b * batch as u64 + i;
                    body.push_str(&ts[(n % ts.len() as u64) as usize].copy(n));
                    body.push('\n');
                }
                let t = match rate {
                    Some(r) if r > 0.0 => {
                        let due = started + Duration::from_secs_f64(b as f64 * batch as f64 / r);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    _ => Instant::now(),
                };
                let (code, resp) =
                    post(&mut conn, "/api/v1/ingest/auto", &token, body.as_bytes()).await?;
                lat.push(t.elapsed());
                if code != 200 {
                    bail!("HTTP {code}: {}", String::from_utf8_lossy(&resp));
                }
                let v: serde_json::Value = serde_json::from_slice(&resp)?;
                accepted += v["accepted"].as_u64().unwrap_or(0);
            }
            Ok::<_, anyhow::Error>((lat, accepted))
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    let mut accepted = 0;
    for t in tasks {
        let (l, a) = t.await??;
        lat.extend(l);
        accepted += a;
    }
    let elapsed = started.elapsed();
    let rss = peak_rss_kib(&server.child.id().to_string()).unwrap_or(0);
    let _ = server.child.kill();
    let _ = server.child.wait();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    println!("bench http: {}", machine());
    println!(
        "  records {}  in {} batches of {batch} over {connections} connections  offered {}  accepted {accepted}",
        batches * batch as u64,
        lat.len(),
        rate.map_or("as fast as answered".to_string(), |r| format!(
            "{r:.0} records/s"
        )),
    );
    println!(
        "  elapsed {:.2} s  rate {:.0} records/s  ack latency p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  server peak RSS {} MiB",
        elapsed.as_secs_f64(),
        (batches * batch as u64) as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        rss / 1024
    );
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
