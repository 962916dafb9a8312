//! `riposte replay`: the pipeline, offline, over files and folders.
//!
//! Files are read in a fixed order (folders sorted by name) on a reader thread, cut into
//! chunks, decoded on blocking threads, gathered in input order into batches, and each batch
//! stored in one transaction while the next is decoded, so the same input always gives the
//! same stored records and the same `--out` lines.
//!
//! Formats: EVTX (by its `ElfFile` signature, through the `evtx` crate, decoded as `windows`),
//! NDJSON and text lines (streamed), and whole JSON documents or arrays.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use riposte_decode::{DecodeError, Decoder, framing};
use riposte_domain::{Origin, Timestamp};
use riposte_store::{IngestBatch, NewDeadLetter, Store, StoreError, StoredRecord};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Auto;
use crate::pipeline::{Decoding, Input, Pipeline, new_batch_id};

/// Largest whole-document JSON file read into memory (NDJSON and text are streamed).
const MAX_DOCUMENT_FILE: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Input { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a decoding thread failed: {0}")]
    Worker(String),
}

pub struct ReplayOptions {
    pub paths: Vec<PathBuf>,
    /// Decode every record with this decoder; `None` recognises each record's product.
    pub decoder: Option<Arc<dyn Decoder>>,
    /// Write each stored record as a JSON line here.
    pub out: Option<PathBuf>,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// Records per decoding chunk (the unit handed to a decoding thread).
    pub chunk_records: usize,
    /// Records per store transaction (and audit record). Large transactions matter: each
    /// commit rewrites the pages of the id index it touched, and record ids are spread
    /// across that index.
    pub batch_records: usize,
    /// Form cases from the replayed alerts (enriched and scored), store them, and report
    /// them in the summary.
    pub cases: Option<CaseSetup>,
    /// Chunks decoded at once.
    pub workers: usize,
}

impl ReplayOptions {
    pub fn new(paths: Vec<PathBuf>) -> ReplayOptions {
        ReplayOptions {
            paths,
            decoder: None,
            out: None,
            progress: false,
            chunk_records: 2_000,
            batch_records: 25_000,
            cases: None,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// A file that could not be read (whole), for the summary.
#[derive(Debug, Clone, Serialize)]
pub struct FileProblem {
    pub file: String,
    pub reason: String,
}

/// One refused record, for the summary.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub file: String,
    pub record: u64,
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplaySummary {
    pub files: u64,
    pub records: u64,
    pub alerts: u64,
    pub events: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub bytes: u64,
    /// The first refusals (at most 20), each naming the file, record and field.
    pub refusals: Vec<Refusal>,
    /// Files read in part or not at all (empty, not EVTX after all, truncated), each with the
    /// reason; the replay goes on with the rest.
    pub file_problems: Vec<FileProblem>,
    /// The cases formed (with `cases`), validated first, then by risk: their documents.
    #[serde(skip)]
    pub cases: Vec<serde_json::Value>,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl ReplaySummary {
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

enum Items {
    Lines(Vec<String>),
    Values(Vec<Result<Value, DecodeError>>),
}

struct Chunk {
    file: Arc<str>,
    /// 1-based number of the first record in its file.
    first: u64,
    items: Items,
}

enum Feed {
    Chunk(Chunk),
    FileDone,
    Problem(FileProblem),
}

/// Runs the replay and returns its summary.
pub async fn run<S: Store>(
    store: &S,
    pipeline: Arc<Pipeline>,
    opts: ReplayOptions,
) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let files = collect_files(&opts.paths)?;
    let total_bytes: u64 = files.iter().map(|(_, len)| len).sum();
    let bar = if opts.progress {
        let b = ProgressBar::new(total_bytes);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut out = match &opts.out {
        Some(p) => Some(std::io::BufWriter::new(File::create(p).map_err(
            |source| ReplayError::Io {
                path: p.display().to_string(),
                source,
            },
        )?)),
        None => None,
    };

    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<Result<Feed, ReplayError>>(opts.workers * 2 + 2);
    let chunk_records = opts.chunk_records.max(1);
    let evtx_needed = opts.decoder.as_ref().map(|d| d.name().to_string());
    let reader_bar = bar.clone();
    let reader = std::thread::spawn(move || {
        for (path, _) in files {
            let r = read_file(
                &path,
                chunk_records,
                &tx,
                &reader_bar,
                evtx_needed.as_deref(),
            );
            if let Err(e) = r {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            if tx.blocking_send(Ok(Feed::FileDone)).is_err() {
                return;
            }
        }
    });

    let (batch_tx, mut batch_rx) = tokio::sync::mpsc::channel::<Batch>(1);
    let batch_records = opts.batch_records.max(1);
    let workers = opts.workers.max(1);
    let decoder = opts.decoder.clone();
    // Alerts for the case stage (when the pipeline keeps them).
    let mut alerts: Vec<riposte_domain::Alert> = Vec::new();
    // Events for the Sigma correlation stage (when the pipeline keeps them).
    let mut correlation_events: Vec<riposte_domain::Event> = Vec::new();
    // Decoding, in input order, into batches...
    let produce = async {
        let mut summary = ReplaySummary::default();
        let mut inflight: VecDeque<tokio::task::JoinHandle<(Arc<str>, Decoding)>> = VecDeque::new();
        let mut pending = Batch::default();
        let mut take = |file: Arc<str>,
                        mut decoding: Decoding,
                        summary: &mut ReplaySummary,
                        pending: &mut Batch|
         -> Result<bool, ReplayError> {
            tally(&file, &decoding, summary, out.as_mut())?;
            alerts.append(&mut decoding.alerts);
            correlation_events.append(&mut decoding.correlation_events);
            pending.add(file, decoding);
            bar.set_message(format!("{} records", summary.records));
            Ok(pending.records.len() >= batch_records)
        };
        while let Some(feed) = rx.recv().await {
            match feed? {
                Feed::FileDone => summary.files += 1,
                Feed::Problem(p) => summary.file_problems.push(p),
                Feed::Chunk(chunk) => {
                    let p = pipeline.clone();
                    let d = decoder.clone();
                    inflight.push_back(tokio::task::spawn_blocking(move || {
                        let file = chunk.file.clone();
                        (file, decode_chunk(&p, d.as_deref(), chunk))
                    }));
                    if inflight.len() > workers
                        && let Some(h) = inflight.pop_front()
                    {
                        let (file, decoding) =
                            h.await.map_err(|e| ReplayError::Worker(e.to_string()))?;
                        if take(file, decoding, &mut summary, &mut pending)? {
                            let full = std::mem::take(&mut pending);
                            if batch_tx.send(full).await.is_err() {
                                // The store stage stopped; its error is the one reported.
                                return Ok((summary, out));
                            }
                        }
                    }
                }
            }
        }
        while let Some(h) = inflight.pop_front() {
            let (file, decoding) = h.await.map_err(|e| ReplayError::Worker(e.to_string()))?;
            take(file, decoding, &mut summary, &mut pending)?;
        }
        if pending.received > 0 || !pending.rejects.is_empty() {
            let _ = batch_tx.send(pending).await;
        }
        drop(batch_tx);
        Ok::<_, ReplayError>((summary, out))
    };
    // ...stored one transaction at a time, while the next batch is decoded.
    let consume = async {
        let mut stored = ReplaySummary::default();
        while let Some(b) = batch_rx.recv().await {
            let outcome = store.ingest(b.into_ingest()).await?;
            stored.stored += outcome.accepted;
            stored.duplicates += outcome.duplicates;
            stored.rejected += outcome.rejected;
        }
        Ok::<_, ReplayError>(stored)
    };
    let ((mut summary, mut out), stored) = tokio::try_join!(produce, consume)?;
    summary.stored = stored.stored;
    summary.duplicates = stored.duplicates;
    summary.rejected = stored.rejected;
    correlate(
        store,
        &pipeline,
        std::mem::take(&mut correlation_events),
        &mut summary,
        out.as_mut(),
        &mut alerts,
    )
    .await?;
    if let Some(setup) = &opts.cases {
        summary.cases = form_cases(store, setup, std::mem::take(&mut alerts)).await?;
    }
    let _ = reader.join();
    if let Some(mut w) = out {
        w.flush().map_err(|source| ReplayError::Io {
            path: opts
                .out
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            source,
        })?;
    }
    bar.finish_and_clear();
    summary.bytes = total_bytes;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Sigma correlations over the events their base rules matched, in (time, id) order so the
/// result does not depend on file order; their alerts are stored as one more batch and join
/// the case stage.
async fn correlate<S: Store>(
    store: &S,
    pipeline: &Pipeline,
    mut events: Vec<riposte_domain::Event>,
    summary: &mut ReplaySummary,
    out: Option<&mut std::io::BufWriter<File>>,
    alerts: &mut Vec<riposte_domain::Alert>,
) -> Result<(), ReplayError> {
    let Some(detector) = pipeline.detector() else {
        return Ok(());
    };
    if events.is_empty() {
        return Ok(());
    }
    events.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    events.dedup_by(|a, b| a.id == b.id);
    let mut correlator = riposte_detect::Correlator::new(detector);
    let mut decoding = Decoding::default();
    for e in &events {
        let origin = e.origin.clone().unwrap_or(Origin::Replay {
            file: String::new(),
            record: 0,
        });
        let fired: Vec<riposte_domain::Decoded> = correlator
            .process(e)
            .into_iter()
            .map(|a| pipeline.finish(riposte_domain::Decoded::Alert(a), origin.clone()))
            .collect();
        pipeline.collect(&mut decoding, fired);
    }
    if decoding.records.is_empty() {
        return Ok(());
    }
    let received = summary.records;
    tally("correlations", &decoding, summary, out)?;
    summary.records = received;
    alerts.append(&mut decoding.alerts);
    let mut batch = Batch::default();
    batch.add(Arc::from("sigma correlations"), decoding);
    let outcome = store.ingest(batch.into_ingest()).await?;
    summary.stored += outcome.accepted;
    summary.duplicates += outcome.duplicates;
    Ok(())
}

/// What the case stage needs: case formation, enrichment and scoring settings.
#[derive(Clone)]
pub struct CaseSetup {
    pub config: riposte_correlate::CaseConfig,
    pub enrichment: Arc<riposte_enrich::EnrichmentSet>,
    pub scoring: riposte_score::ScoringConfig,
}

/// Forms cases from every replayed alert, placed in (time, id) order so the result does not
/// depend on file order, and stores them. Returns their documents, highest risk first.
async fn form_cases<S: Store>(
    store: &S,
    setup: &CaseSetup,
    mut alerts: Vec<riposte_domain::Alert>,
) -> Result<Vec<serde_json::Value>, ReplayError> {
    alerts.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    alerts.dedup_by(|a, b| a.id == b.id);
    let mut stage = crate::cases::CaseStage::new(
        &setup.config,
        setup.enrichment.clone(),
        setup.scoring.clone(),
    )
    .map_err(|e| ReplayError::Input {
        path: "cases".into(),
        reason: e.to_string(),
    })?;
    for a in &alerts {
        stage.add(a);
    }
    stage.flush();
    drop(alerts);
    // Built and stored in chunks: a chunk's documents are written from where they are.
    let open = stage.open_cases();
    let mut cases: Vec<riposte_store::StoredCase> = Vec::with_capacity(open.len());
    for chunk in open.chunks(5_000) {
        let start = cases.len();
        cases.extend(chunk.iter().map(|c| stage.build(c)));
        store
            .upsert_cases(&cases[start..], Vec::new(), "replay")
            .await?;
    }
    // Validated first (evidence, not likelihood), then by risk.
    cases.sort_by(|a, b| {
        (b.tier == "validated")
            .cmp(&(a.tier == "validated"))
            .then(b.risk.total_cmp(&a.risk))
            .then_with(|| a.id.cmp(&b.id))
    });
    let docs = cases.into_iter().map(|c| c.doc).collect();
    Ok(docs)
}

/// Records decoded and not yet stored: one store transaction.
#[derive(Default)]
struct Batch {
    files: Vec<Arc<str>>,
    decoders: std::collections::BTreeSet<String>,
    received: u64,
    records: Vec<StoredRecord>,
    rejects: Vec<NewDeadLetter>,
}

impl Batch {
    fn add(&mut self, file: Arc<str>, decoding: Decoding) {
        if self.files.last() != Some(&file) {
            self.files.push(file);
        }
        for r in &decoding.records {
            if !self.decoders.contains(&r.decoder) {
                self.decoders.insert(r.decoder.clone());
            }
        }
        self.received += decoding.received;
        self.records.extend(decoding.records);
        self.rejects.extend(decoding.rejects);
    }

    fn into_ingest(self) -> IngestBatch {
        let files: Vec<&str> = self.files.iter().map(|f| &**f).collect();
        IngestBatch {
            batch_id: new_batch_id(),
            actor: "replay".into(),
            decoder: self.decoders.into_iter().collect::<Vec<_>>().join(","),
            source: json!({ "via": "replay", "files": files }),
            received: self.received,
            records: self.records,
            rejects: self.rejects,
            received_at: Timestamp::now(),
        }
    }
}

/// Counts a decoded chunk into the summary and writes its records to `--out`.
fn tally(
    file: &str,
    decoding: &Decoding,
    summary: &mut ReplaySummary,
    out: Option<&mut std::io::BufWriter<File>>,
) -> Result<(), ReplayError> {
    summary.records += decoding.received;
    for r in &decoding.records {
        match r.kind {
            riposte_domain::RecordKind::Alert => summary.alerts += 1,
            riposte_domain::RecordKind::Event => summary.events += 1,
        }
    }
    for d in decoding.rejects.iter() {
        if summary.refusals.len() < 20 {
            let record = match &d.origin {
                Origin::Replay { record, .. } => *record,
                _ => d.index,
            };
            summary.refusals.push(Refusal {
                file: file.to_string(),
                record,
                field: d.field.clone(),
                reason: d.reason.clone(),
            });
        }
    }
    if let Some(w) = out {
        for r in &decoding.records {
            let json = riposte_store::decompress_doc(&r.doc)?;
            let res = w
                .write_all(json.as_bytes())
                .and_then(|_| w.write_all(b"\n"));
            res.map_err(|source| ReplayError::Io {
                path: "--out".into(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Decodes one chunk with the chosen decoder (`auto` by default; EVTX records as `windows`).
fn decode_chunk(p: &Pipeline, chosen: Option<&dyn Decoder>, chunk: Chunk) -> Decoding {
    let origin = |i: u64| Origin::Replay {
        file: chunk.file.to_string(),
        record: chunk.first + i,
    };
    let index = |i: u64| chunk.first + i;
    match chunk.items {
        Items::Lines(lines) => {
            let d = chosen.unwrap_or(&Auto);
            p.decode_chunk(d, lines.iter().map(|l| Input::Text(l)), origin, index)
        }
        Items::Values(values) => {
            let windows = riposte_decode::builtin("windows");
            let Some(d) = chosen.or(windows) else {
                return Decoding::default();
            };
            let mut out = Decoding::default();
            for (i, v) in values.into_iter().enumerate() {
                let i = i as u64;
                out.received += 1;
                let o = origin(i);
                let res = match v {
                    Ok(v) => p.decode_one(d, Input::Json(v), &o),
                    Err(e) => Err((e, Vec::new())),
                };
                match res {
                    Ok(ds) => p.collect(&mut out, ds),
                    Err((e, raw)) => out.rejects.push(NewDeadLetter {
                        decoder: d.name().to_string(),
                        index: index(i),
                        field: e.field,
                        reason: e.reason,
                        raw,
                        origin: o,
                    }),
                }
            }
            out
        }
    }
}

/// Every file under the paths, folders walked in name order; with their sizes.
fn collect_files(paths: &[PathBuf]) -> Result<Vec<(PathBuf, u64)>, ReplayError> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out)?;
    }
    Ok(out)
}

/// The entries of a folder in name order, hidden ones (`.name`) left out: a walk over the
/// same folder always visits the same files in the same order.
pub fn list_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|e| {
            !e.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    Ok(entries)
}

fn walk(p: &Path, out: &mut Vec<(PathBuf, u64)>) -> Result<(), ReplayError> {
    let io = |source| ReplayError::Io {
        path: p.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(p).map_err(io)?;
    if meta.is_dir() {
        for e in list_dir(p).map_err(io)? {
            walk(&e, out)?;
        }
    } else {
        out.push((p.to_path_buf(), meta.len()));
    }
    Ok(())
}

const EVTX_HEADER: u64 = 4096;
const EVTX_CHUNK: u64 = 65536;

fn problem(tx: &tokio::sync::mpsc::Sender<Result<Feed, ReplayError>>, file: &str, reason: String) {
    let _ = tx.blocking_send(Ok(Feed::Problem(FileProblem {
        file: file.to_string(),
        reason,
    })));
}

fn send(tx: &tokio::sync::mpsc::Sender<Result<Feed, ReplayError>>, c: Chunk) -> bool {
    tx.blocking_send(Ok(Feed::Chunk(c))).is_ok()
}

fn read_file(
    path: &Path,
    chunk: usize,
    tx: &tokio::sync::mpsc::Sender<Result<Feed, ReplayError>>,
    bar: &ProgressBar,
    fixed: Option<&str>,
) -> Result<(), ReplayError> {
    let name: Arc<str> = Arc::from(path.display().to_string());
    let io = |source| ReplayError::Io {
        path: name.to_string(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let mut magic = [0u8; 8];
    let n = f.read(&mut magic).map_err(io)?;
    if n == 0 {
        problem(tx, &name, "empty file: no records".into());
        return Ok(());
    }
    if n == 8 && &magic == b"ElfFile\0" {
        if let Some(d) = fixed
            && d != "windows"
        {
            return Err(ReplayError::Input {
                path: name.to_string(),
                reason: format!(
                    "an EVTX file holds Windows events; it cannot be read with the {d} decoder"
                ),
            });
        }
        return read_evtx(path, &name, chunk, tx, bar);
    }
    drop(f);
    let f = File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut reader = BufReader::with_capacity(1 << 20, f);
    // A file that starts with `[`, or whose first line is not a whole JSON value, is one
    // document (pretty-printed JSON, an array): read whole. Everything else is streamed.
    let first = reader.fill_buf().map_err(io)?;
    let first_text = String::from_utf8_lossy(&first[..first.len().min(1 << 20)]);
    let start = first_text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let first_line = start.lines().next().unwrap_or("");
    let whole_document = start.starts_with('[')
        || (start.starts_with('{')
            && serde_json::from_str::<&serde_json::value::RawValue>(first_line).is_err());
    if whole_document {
        if len > MAX_DOCUMENT_FILE {
            return Err(ReplayError::Input {
                path: name.to_string(),
                reason: format!(
                    "a single JSON document of {len} bytes is larger than the 1 GiB riposte reads whole; write it as NDJSON"
                ),
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        reader.read_to_end(&mut bytes).map_err(io)?;
        let text = String::from_utf8(bytes).map_err(|e| ReplayError::Input {
            path: name.to_string(),
            reason: format!("not UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        })?;
        let raws = framing::split_raw(&text, riposte_decode::InputKind::Json).map_err(|e| {
            ReplayError::Input {
                path: name.to_string(),
                reason: e.to_string(),
            }
        })?;
        bar.inc(len);
        let mut first = 1;
        for part in raws.chunks(chunk) {
            let c = Chunk {
                file: name.clone(),
                first,
                items: Items::Lines(part.iter().map(|s| s.to_string()).collect()),
            };
            first += part.len() as u64;
            if !send(tx, c) {
                return Ok(());
            }
        }
        return Ok(());
    }
    let mut first_no = 1u64;
    let mut lines = Vec::with_capacity(chunk);
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        bar.inc(n as u64);
        // Invalid UTF-8 is kept (replaced) so the record is refused with its raw text, not lost.
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            continue;
        }
        lines.push(line.to_string());
        if lines.len() == chunk {
            let c = Chunk {
                file: name.clone(),
                first: first_no,
                items: Items::Lines(std::mem::replace(&mut lines, Vec::with_capacity(chunk))),
            };
            first_no += chunk as u64;
            if !send(tx, c) {
                return Ok(());
            }
        }
    }
    if !lines.is_empty() {
        send(
            tx,
            Chunk {
                file: name,
                first: first_no,
                items: Items::Lines(lines),
            },
        );
    }
    Ok(())
}

fn read_evtx(
    path: &Path,
    name: &Arc<str>,
    chunk: usize,
    tx: &tokio::sync::mpsc::Sender<Result<Feed, ReplayError>>,
    bar: &ProgressBar,
) -> Result<(), ReplayError> {
    let mut parser = match evtx::EvtxParser::from_path(path) {
        Ok(p) => p,
        Err(e) => {
            problem(tx, name, format!("not a readable EVTX file, skipped: {e}"));
            return Ok(());
        }
    };
    // An EVTX file is a 4 KiB header and whole 64 KiB chunks; a shorter tail was cut off
    // (a copy made while the log was written, a download that stopped).
    if let Ok(m) = std::fs::metadata(path) {
        let len = m.len();
        let tail = len.saturating_sub(EVTX_HEADER) % EVTX_CHUNK;
        if len < EVTX_HEADER + EVTX_CHUNK {
            problem(
                tx,
                name,
                format!(
                    "truncated EVTX file ({len} bytes, less than its 4 KiB header and one 64 KiB chunk): no record can be read"
                ),
            );
        } else if tail != 0 {
            problem(
                tx,
                name,
                format!(
                    "truncated EVTX file ({len} bytes, {tail} past the last whole 64 KiB chunk): the records of the whole chunks are read, the rest is lost"
                ),
            );
        }
    }
    let mut first = 1u64;
    let mut values = Vec::with_capacity(chunk);
    for r in parser.records_json_value() {
        values.push(
            r.map(|rec| rec.data)
                .map_err(|e| DecodeError::record(format!("EVTX record unreadable: {e}"))),
        );
        if values.len() == chunk {
            let c = Chunk {
                file: name.clone(),
                first,
                items: Items::Values(std::mem::replace(&mut values, Vec::with_capacity(chunk))),
            };
            first += chunk as u64;
            if !send(tx, c) {
                return Ok(());
            }
        }
    }
    if let Ok(m) = std::fs::metadata(path) {
        bar.inc(m.len());
    }
    if !values.is_empty() {
        send(
            tx,
            Chunk {
                file: name.clone(),
                first,
                items: Items::Values(values),
            },
        );
    }
    Ok(())
}
