//! The `riposte` binary: wires the crates together behind one command line.
//! It owns configuration, start-up and output for people; the work happens in the crates.

mod actions_cmd;
mod bench;
mod bench_cases;
mod bench_detect;
mod bench_respond;
mod config;
mod huge_pages;
mod playbook_cmd;
mod respond_setup;
mod rules;
mod secret_cmd;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use riposte_enrich::SharedEnrichment;
use riposte_ingest::replay::{self, ReplayOptions};
use riposte_server::correlation::LiveCorrelation;
use riposte_server::live::{CaseSettings, LiveCases};
use riposte_server::{AppState, Limits, Role, SyslogConfig};
use riposte_store::{AuditVerdict, Durability, SqliteStore, Store, StoreError};

use crate::config::Config;

// Decoding allocates many small strings and maps on several threads at once; mimalloc handles
// that markedly faster than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "riposte",
    version,
    about = "SOC automation engine: ingest, correlate, respond, record"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct DataDir {
    /// Where riposte keeps its database and first admin token.
    #[arg(long, env = "RIPOSTE_DATA_DIR", default_value = "./riposte-data")]
    data_dir: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: HTTP API, and syslog listeners when asked.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        data: DataDir,
        /// Configuration file (YAML): entity folding, generic mappings, decoys, enrichment,
        /// Sigma rules, case formation and scoring. Decoys, enrichment and Sigma rules reload
        /// on SIGHUP and `POST /api/v1/admin/reload`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Do not form cases from the alerts received.
        #[arg(long)]
        no_cases: bool,
        /// Syslog over TCP (newline or octet-counted framing), e.g. 0.0.0.0:6514.
        #[arg(long)]
        syslog_tcp: Option<SocketAddr>,
        /// Syslog over UDP, e.g. 0.0.0.0:514.
        #[arg(long)]
        syslog_udp: Option<SocketAddr>,
        /// Decode every syslog message with this decoder instead of routing by content.
        #[arg(long)]
        syslog_decoder: Option<String>,
        /// Largest request body in bytes.
        #[arg(long, default_value_t = 32 << 20)]
        max_body: usize,
    },
    /// Run the pipeline offline over files and folders (NDJSON, JSON, EVTX).
    Replay {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Decoder for every record; without it each record's product is recognised.
        #[arg(long)]
        decoder: Option<String>,
        /// With `--decoder generic`: the mapping's name (from the config) or a mapping file.
        #[arg(long)]
        mapping: Option<String>,
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also write every stored record as a JSON line to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write every case formed as a JSON line to this file.
        #[arg(long)]
        cases_out: Option<PathBuf>,
        /// Do not form cases.
        #[arg(long)]
        no_cases: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Run these Sigma rules (files or folders) over the replayed events, with riposte's
        /// shipped correlations (password spray, brute force, spray then success); matches
        /// are stored as `sigma` alerts and join cases like any other alert.
        #[arg(long, num_args = 1..)]
        rules: Vec<PathBuf>,
        /// Extra Sigma logsource mapping for `--rules` (YAML); its entries win.
        #[arg(long, requires = "rules")]
        logsources: Option<PathBuf>,
        /// Keep the parsed rules in this file, keyed by each rule text's hash: the next run
        /// skips parsing the rules that did not change (written when any rule was parsed).
        #[arg(long, requires = "rules")]
        rule_cache: Option<PathBuf>,
    },
    /// Check Sigma rules.
    Rules {
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Check or export the tamper-evident audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check playbooks, or dry-run one over a case.
    Playbook {
        #[command(subcommand)]
        command: playbook_cmd::PlaybookCommand,
    },
    /// List, approve, reject and undo response actions on a running server.
    Actions {
        #[command(subcommand)]
        command: actions_cmd::ActionsCommand,
    },
    /// Manage the sealed secrets connectors use (values read from stdin, never shown).
    Secret {
        #[command(subcommand)]
        command: secret_cmd::SecretCommand,
    },
    /// Measure throughput: replay or HTTP ingest of generated alerts.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

impl Command {
    /// Long-lived holders of large, randomly touched state (see `huge_pages`); the one-shot
    /// Sigma scan (`replay`, `bench detect`) and short commands are not.
    fn wants_huge_pages(&self) -> bool {
        matches!(
            self,
            Command::Serve { .. }
                | Command::Bench {
                    command: bench::BenchCommand::Cases { .. }
                }
        )
    }
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it, alone, on stdout. It is shown only this once.
    Create {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        name: String,
        /// ingest, viewer, analyst, approver or admin.
        #[arg(long)]
        role: String,
    },
    /// List tokens (names and roles; secrets are never stored).
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke a token by name.
    Revoke {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every link of the chain; exits non-zero naming the first bad record.
    Verify {
        #[command(flatten)]
        data: DataDir,
    },
    /// Write the audit trail as JSON lines (stdout, or --out).
    Export {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    // Before anything sizeable is touched: off unless the command is one that wants them.
    huge_pages::allow(false);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RIPOSTE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,evtx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    huge_pages::allow(cli.command.wants_huge_pages());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn open_store(dir: &Path, durability: Durability) -> Result<SqliteStore> {
    SqliteStore::open(dir, durability)
        .await
        .with_context(|| format!("opening the store in {}", dir.display()))
}

async fn run(cli: Cli) -> Result<std::process::ExitCode> {
    use std::process::ExitCode;
    match cli.command {
        Command::Serve {
            listen,
            data,
            config,
            syslog_tcp,
            syslog_udp,
            syslog_decoder,
            max_body,
            no_cases,
        } => {
            let config_path = config;
            let config = Config::load(config_path.as_deref())?;
            if let Some(d) = &syslog_decoder
                && riposte_decode::builtin(d).is_none()
            {
                bail!(
                    "--syslog-decoder: unknown decoder {d:?}; known: {}",
                    riposte_decode::NAMES.join(", ")
                );
            }
            // Refused before anything starts: a bad playbook leaves nothing behind.
            let respond = respond_setup::load_configured(&config, &data.data_dir)?;
            let correlation_hold = config.correlation_hold()?;
            let edl = config.edl_access()?;
            let mut store = open_store(&data.data_dir, Durability::Full).await?;
            store.checkpoint_in_background().await?;
            if let Ok(n) = store.page_size().await
                && n > riposte_store::SERVER_PAGE_SIZE
            {
                tracing::warn!(
                    page_size = n,
                    "this database was created with {n}-byte pages (by `riposte replay`): \
                     every response-stage commit writes whole pages, so playbook actions \
                     start slower than on a database `serve` created ({} bytes)",
                    riposte_store::SERVER_PAGE_SIZE
                );
            }
            let store = Arc::new(store);
            riposte_connectors::edl::bind(Arc::new(respond_setup::StoreLists(store.clone())));
            first_admin_token(&store, &data.data_dir).await?;
            let limits = Limits {
                max_body,
                ..Limits::default()
            };
            let canon = config.canonicaliser();
            // The events Sigma correlations need go to live correlation (kept only while a
            // rule set with correlations is loaded, which a reload can change).
            let pipeline = Arc::new(
                config
                    .pipeline()?
                    .keeping_alerts(!no_cases)
                    .keeping_correlation_events(true),
            );
            let enrichment = Arc::new(SharedEnrichment::new(config.enrichment_set(&canon)?));
            let mut state =
                AppState::new(store.clone(), pipeline.clone(), config.decoders()?, limits);
            state.edl = edl;
            let mut case_task = None;
            if !no_cases {
                let (live, task) = LiveCases::start(
                    store.clone(),
                    pipeline.clone(),
                    CaseSettings {
                        config: config.cases.clone(),
                        enrichment: enrichment.clone(),
                        scoring: config.scoring.clone(),
                    },
                )
                .map_err(|e| anyhow::anyhow!("cases: {e}"))?;
                state.cases = Some(live);
                case_task = Some(task);
            }
            if let Some(mut loaded) = respond {
                state.slack = loaded.slack.take();
                state.respond =
                    Some(respond_setup::start(loaded, store.clone(), state.cases.as_ref()).await?);
            }
            if let Some(path) = &config_path {
                state.reload = Some(Arc::new(config::Reloader {
                    path: path.clone(),
                    canon,
                    decoys: pipeline.decoys().clone(),
                    enrichment,
                    detector: pipeline.detectors().clone(),
                }));
            }
            let (correlation, inbox) = LiveCorrelation::channel();
            state.correlation = Some(correlation);
            let state = Arc::new(state);
            let correlation_task = inbox.start(&state, correlation_hold);
            reload_on_sighup(state.clone());
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let local = listener.local_addr()?;
            let (tcp, udp) = riposte_server::syslog::start(
                state.clone(),
                SyslogConfig {
                    tcp: syslog_tcp,
                    udp: syslog_udp,
                    decoder: syslog_decoder,
                },
            )
            .await
            .context("cannot start the syslog listeners")?;
            // Machine-readable lines on stdout (tests and scripts read the bound ports).
            let mut so = std::io::stdout();
            writeln!(so, "riposte listening on http://{local}")?;
            if let Some(a) = tcp {
                writeln!(so, "riposte syslog tcp on {a}")?;
            }
            if let Some(a) = udp {
                writeln!(so, "riposte syslog udp on {a}")?;
            }
            so.flush()?;
            tracing::info!(%local, data_dir = %data.data_dir.display(), "riposte serving");
            riposte_server::serve_http(state.clone(), listener, shutdown_signal()).await?;
            // Correlate what is held (its alerts go to the case task), then write the cases.
            if let Some(c) = &state.correlation {
                c.stop();
                if tokio::time::timeout(std::time::Duration::from_secs(10), correlation_task)
                    .await
                    .is_err()
                {
                    tracing::warn!("the correlation task did not finish in 10 s");
                }
            }
            // Write what the case task has before leaving (a crash loses nothing either: the
            // cases are rebuilt from the stored alerts at the next start).
            if let (Some(live), Some(task)) = (&state.cases, case_task) {
                live.stop();
                if tokio::time::timeout(std::time::Duration::from_secs(10), task)
                    .await
                    .is_err()
                {
                    tracing::warn!("the case task did not finish in 10 s");
                }
            }
            tracing::info!("riposte stopped");
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            paths,
            decoder,
            mapping,
            data,
            config,
            out,
            cases_out,
            no_cases,
            quiet,
            rules,
            logsources,
            rule_cache,
        } => {
            let config = Config::load(config.as_deref())?;
            let decoders = config.decoders()?;
            let fixed = match decoder.as_deref() {
                None => None,
                Some("generic") => Some(config::generic_decoder(&decoders, mapping.as_deref())?),
                Some(name) => Some(decoders.resolve(name, None)?),
            };
            // A bulk load: a database it creates gets large pages (riposte_store::BULK_PAGE_SIZE).
            let store = SqliteStore::open_with_page_size(
                &data.data_dir,
                Durability::Full,
                riposte_store::BULK_PAGE_SIZE,
            )
            .await
            .with_context(|| format!("opening the store in {}", data.data_dir.display()))?;
            let mut opts = ReplayOptions::new(paths);
            opts.decoder = fixed;
            opts.out = out;
            opts.progress = !quiet && std::io::stderr().is_terminal();
            if !no_cases {
                opts.cases = Some(config.case_setup()?);
            }
            let mut pipeline = config
                .pipeline()?
                .keeping_alerts(!no_cases)
                .keeping_correlation_events(true);
            let detector = if rules.is_empty() {
                None
            } else {
                let d = Arc::new(rules::load(
                    &rules,
                    logsources.as_deref(),
                    true,
                    true,
                    rule_cache.as_deref(),
                )?);
                rules::report_loaded(&d);
                pipeline = pipeline.with_detector(d.clone());
                Some(d)
            };
            let s = replay::run(&store, Arc::new(pipeline), opts).await?;
            store.close().await;
            if let Some(d) = &detector {
                // Compiling is lazy, so compile refusals are known only now.
                rules::report_refusals(d);
            }
            eprintln!(
                "replayed {} records from {} files in {:.2}s ({:.0}/s): {} alerts, {} events; {} stored, {} duplicates, {} refused",
                s.records,
                s.files,
                s.elapsed.as_secs_f64(),
                s.records_per_second(),
                s.alerts,
                s.events,
                s.stored,
                s.duplicates,
                s.rejected
            );
            for p in &s.file_problems {
                eprintln!("  {}: {}", p.file, p.reason);
            }
            for r in &s.refusals {
                eprintln!(
                    "  refused {} record {}: field `{}`: {}",
                    r.file, r.record, r.field, r.reason
                );
            }
            if s.rejected > s.refusals.len() as u64 {
                eprintln!(
                    "  … and {} more (GET /api/v1/deadletters lists them all)",
                    s.rejected - s.refusals.len() as u64
                );
            }
            if !no_cases {
                print_cases(&s.cases);
            }
            if let Some(path) = cases_out {
                let mut w = std::io::BufWriter::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                );
                for c in &s.cases {
                    serde_json::to_writer(&mut w, c)?;
                    w.write_all(b"\n")?;
                }
                w.flush()?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules { command } => rules::run(command),
        Command::Token { command } => token(command).await,
        Command::Audit { command } => audit(command).await,
        Command::Playbook { command } => playbook_cmd::run(command),
        Command::Secret { command } => secret_cmd::run(command),
        Command::Actions { command } => actions_cmd::run(command).await,
        Command::Bench { command } => bench::run(command).await,
    }
}

async fn token(command: TokenCommand) -> Result<std::process::ExitCode> {
    match command {
        TokenCommand::Create { data, name, role } => {
            let Some(role) = Role::parse(&role) else {
                bail!("unknown role {role:?}; roles: {}", Role::NAMES.join(", "));
            };
            let name = name.trim();
            if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
                bail!("a token name is 1 to 128 printable characters");
            }
            let store = open_store(&data.data_dir, Durability::Full).await?;
            let secret = riposte_server::new_secret().context("no randomness available")?;
            match store
                .create_token(
                    name,
                    role.as_str(),
                    riposte_server::hash_secret(&secret),
                    "cli",
                )
                .await
            {
                Ok(_) => {}
                Err(StoreError::Conflict(what)) => {
                    bail!("{what} already exists; revoke it or choose another name")
                }
                Err(e) => return Err(e.into()),
            }
            store.close().await;
            println!("{secret}");
            Ok(std::process::ExitCode::SUCCESS)
        }
        TokenCommand::List { data } => {
            let store = open_store(&data.data_dir, Durability::Full).await?;
            for t in store.tokens().await? {
                println!(
                    "{}\t{}\t{}",
                    t.name,
                    t.role,
                    if t.revoked { "revoked" } else { "active" }
                );
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { data, name } => {
            let store = open_store(&data.data_dir, Durability::Full).await?;
            if !store.revoke_token(&name, "cli").await? {
                bail!("no active token named {name:?}");
            }
            eprintln!("revoked {name}");
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

async fn audit(command: AuditCommand) -> Result<std::process::ExitCode> {
    match command {
        AuditCommand::Verify { data } => {
            let store = open_store(&data.data_dir, Durability::Full).await?;
            match riposte_store::verify_audit(&store).await? {
                AuditVerdict::Intact { records, head } => {
                    println!(
                        "audit trail intact: {records} records, head {}",
                        hex::encode(head)
                    );
                    Ok(std::process::ExitCode::SUCCESS)
                }
                AuditVerdict::Broken { error, checked } => {
                    println!(
                        "audit trail BROKEN: {error} ({checked} records before it are intact)"
                    );
                    Ok(std::process::ExitCode::from(1))
                }
            }
        }
        AuditCommand::Export { data, out } => {
            let store = open_store(&data.data_dir, Durability::Full).await?;
            let mut w: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot create {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            let mut after = 0;
            loop {
                let page = store.audit_records(after, 5_000).await?;
                if page.is_empty() {
                    break;
                }
                for r in &page {
                    let body: serde_json::Value =
                        serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
                    let line = serde_json::json!({
                        "seq": r.seq,
                        "prev": hex::encode(r.prev),
                        "hash": hex::encode(r.hash),
                        "body": body,
                    });
                    writeln!(w, "{line}")?;
                    after = r.seq;
                }
            }
            w.flush()?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// The cases a replay formed, highest risk first: tier, risk, size and why.
fn print_cases(cases: &[serde_json::Value]) {
    eprintln!("formed {} cases", cases.len());
    for c in cases.iter().take(20) {
        let alerts = c["alerts"].as_array().map_or(0, Vec::len);
        let title = c["alerts"][0]["title"].as_str().unwrap_or("");
        eprintln!(
            "  {:<9} risk {:>5.1}  {} alerts  {}  {}",
            c["tier"].as_str().unwrap_or("?"),
            c["risk"].as_f64().unwrap_or(0.0),
            alerts,
            c["id"].as_str().unwrap_or("?"),
            title
        );
        eprintln!("            {}", c["tier_reason"].as_str().unwrap_or(""));
    }
    if cases.len() > 20 {
        eprintln!(
            "  … and {} more (GET /api/v1/cases lists them all)",
            cases.len() - 20
        );
    }
}

/// With no token at all, creates an `admin` token and writes it to `DIR/admin.token` (0600).
async fn first_admin_token(store: &SqliteStore, dir: &Path) -> Result<()> {
    if !store.tokens().await?.is_empty() {
        return Ok(());
    }
    let secret = riposte_server::new_secret().context("no randomness available")?;
    let path = dir.join("admin.token");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(f, "{secret}")?;
        f.sync_all()?;
    }
    store
        .create_token(
            "admin",
            "admin",
            riposte_server::hash_secret(&secret),
            "system",
        )
        .await?;
    tracing::warn!(path = %path.display(), "created the first admin token; keep it secret and make more with `riposte token create`");
    eprintln!("first admin token written to {}", path.display());
    Ok(())
}

/// SIGHUP reloads decoys, enrichment and Sigma rules, as `POST /api/v1/admin/reload` does (audited).
fn reload_on_sighup<S: Store>(state: Arc<AppState<S>>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload through the API");
            return;
        };
        while hup.recv().await.is_some() {
            let Some(r) = state.reload.clone() else {
                tracing::warn!("SIGHUP: nothing to reload without --config");
                continue;
            };
            let detail = match tokio::task::spawn_blocking(move || r.reload()).await {
                Ok(Ok(loaded)) => serde_json::json!({ "via": "signal", "loaded": loaded }),
                Ok(Err(e)) => serde_json::json!({ "via": "signal", "refused": e }),
                Err(e) => serde_json::json!({ "via": "signal", "refused": e.to_string() }),
            };
            if let Err(e) = state.store.audit("signal", "admin.reload", detail).await {
                tracing::error!(error = %e, "could not record the reload in the audit trail");
            }
        }
    });
    #[cfg(not(unix))]
    let _ = state;
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
