//! `riposte bench respond`: from an alert's arrival to the action request of an `auto`
//! step, in process, on the SQLite store the server uses.
//!
//! Alerts arrive at a fixed rate (open loop: alert k is due at k/rate and its latency counts
//! from its arrival); each is handed to the engine as an `alert.received` event on its own
//! task, as the server does; a playbook whose `if` holds starts, renders its parameters,
//! passes the policy gate, records the run with its action (already `sending`: the gate is
//! open) and their audit records in SQLite in one write, as the server does (it survives a
//! crash of the process when it returns; the step is `auto`, so its call leaves without
//! waiting for a WAL sync, which the engine's tick does every second — an `approve` or
//! `review` call would wait for one), then calls the connector. The result and the run's
//! finish are the alert's second write.
//! The connector only notes when it was called, so connector latency is excluded.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use riposte_respond::connector::{CallFuture, CallOutcome, CallRequest, Connector, OperationSpec};
use riposte_respond::{
    Class, Connectors, Engine, MemoryRunStore, Policy, RunStore, Templates, TriggerEvent,
    TriggerKind, playbook,
};
use riposte_store::{Durability, SqliteStore};
use serde_json::json;

/// A connector that notes when each alert's call was made and answers at once.
struct Recorder {
    ops: Vec<OperationSpec>,
    called: Arc<Vec<Mutex<Option<Instant>>>>,
}

impl Connector for Recorder {
    fn name(&self) -> &str {
        "intel"
    }
    fn operations(&self) -> &[OperationSpec] {
        &self.ops
    }
    fn sends_idempotency_key(&self, _: &str) -> bool {
        true
    }
    fn call<'a>(&'a self, req: &'a CallRequest) -> CallFuture<'a> {
        let at = Instant::now();
        let i = req.params["n"].as_u64().unwrap_or(u64::MAX) as usize;
        if let Some(slot) = self.called.get(i) {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(at);
        }
        Box::pin(async {
            Ok(CallOutcome {
                fields: Default::default(),
                undo: serde_json::Value::Null,
                status: Some(200),
            })
        })
    }
}

const PLAYBOOK: &str = r#"id: enrich-on-alert
name: Look up the source address of every serious alert
on: alert.received
if: alert.severity.score >= 50 and alert.entities | selectattr("type", "eq", "ip") | list | length > 0
steps:
  - id: lookup
    action: intel.lookup_ip
    params:
      n: "{{ alert.n }}"
      ip: "{{ (alert.entities | selectattr('type', 'eq', 'ip') | first).value }}"
      rule: "{{ alert.rule.name }}"
    timeout: 5s
"#;

fn alert(n: usize) -> serde_json::Value {
    json!({
        "n": n,
        "id": format!("alert-{n:08}"),
        "decoder": "suricata",
        "product": "Suricata",
        "time": "2026-11-23T12:00:00Z",
        "title": "ET SCAN Suspicious inbound to MSSQL port 1433",
        "severity": {"score": 73, "label": "high"},
        "rule": {"id": "2010935", "name": "ET SCAN Suspicious inbound to MSSQL port 1433"},
        "entities": [
            {"type": "ip", "role": "source", "value": format!("203.0.113.{}", n % 250)},
            {"type": "ip", "role": "destination", "value": "10.1.2.3"},
            {"type": "host", "role": "target", "value": "db-01.corp.example"}
        ],
        "techniques": ["T1046"],
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The store the engine runs on.
pub enum Backend {
    /// SQLite as the server runs it, with this durability.
    Sqlite(Durability),
    /// The in-memory store: the engine's own cost, no writes.
    Memory,
}

pub async fn bench_respond(
    n: usize,
    rate: u64,
    backend: Backend,
    work_dir: Option<PathBuf>,
) -> Result<()> {
    let (lat, wall, what) = match backend {
        Backend::Memory => {
            let (lat, wall) = drive(Arc::new(MemoryRunStore::new()), n, rate).await?;
            (lat, wall, "in memory".to_string())
        }
        Backend::Sqlite(durability) => {
            let (dir, temp) = crate::bench::work_dir(work_dir)?;
            let mut store = SqliteStore::open(&dir.join("data"), durability)
                .await
                .with_context(|| format!("opening the store in {}", dir.display()))?;
            store.checkpoint_in_background().await?;
            let store = Arc::new(store);
            let (lat, wall) = drive(store.clone(), n, rate).await?;
            if let Some(s) = Arc::into_inner(store) {
                s.close().await;
            }
            if temp {
                let _ = std::fs::remove_dir_all(&dir);
            }
            (lat, wall, format!("on SQLite ({durability:?})"))
        }
    };
    println!(
        "{n} alerts at {rate}/s in {:.2} s {what}: alert → auto action request p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        wall.as_secs_f64(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or_default(),
    );
    println!("machine: {}", crate::bench::machine());
    Ok(())
}

/// Offers `n` alerts at `rate` to an engine on `store`; the sorted latencies and the wall
/// time.
async fn drive<S: RunStore + 'static>(
    store: Arc<S>,
    n: usize,
    rate: u64,
) -> Result<(Vec<Duration>, Duration)> {
    let called: Arc<Vec<Mutex<Option<Instant>>>> =
        Arc::new((0..n).map(|_| Mutex::new(None)).collect());
    let mut cs = Connectors::new();
    cs.add(Arc::new(Recorder {
        ops: vec![OperationSpec {
            name: "lookup_ip".into(),
            class: Class::Auto,
            inverse: None,
            irreversible: false,
            idempotent: true,
        }],
        called: called.clone(),
    }));
    let templates = Arc::new(Templates::default());
    let pb = playbook::load("enrich-on-alert.yaml", PLAYBOOK, &templates, Some(&cs))
        .map_err(|e| anyhow!("{e}"))?;
    let engine = Arc::new(Engine::new(store, Policy::default(), cs, templates));
    engine.activate(pb).await?;

    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = Instant::now();
    let mut arrived = Vec::with_capacity(n);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        tokio::time::sleep_until((start + interval * i as u32).into()).await;
        let ev = TriggerEvent {
            kind: TriggerKind::AlertReceived,
            event_id: format!("alert-{i:08}"),
            case: None,
            alert: Some(alert(i)),
            at: riposte_domain::Timestamp::now(),
            requested_by: None,
        };
        arrived.push(Instant::now());
        let e = engine.clone();
        tasks.spawn(async move {
            let now = riposte_domain::Timestamp::now();
            e.on_event(&ev, now).await.map(|_| ())
        });
        while let Some(r) = tasks.try_join_next() {
            r??;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let wall = start.elapsed();
    let mut lat: Vec<Duration> = Vec::with_capacity(n);
    for (i, a) in arrived.iter().enumerate() {
        match *called[i].lock().unwrap_or_else(|p| p.into_inner()) {
            Some(c) => lat.push(c.saturating_duration_since(*a)),
            None => return Err(anyhow!("alert {i} never reached the connector")),
        }
    }
    lat.sort();
    Ok((lat, wall))
}
