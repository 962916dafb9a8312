//! Benchmark: from an alert's arrival to the action request of an `auto` step, in process.
//!
//! Alerts arrive at a fixed rate (default 1,000/s); each is handed to the engine as an
//! `alert.received` event on its own task; a playbook whose `if` holds for it starts, renders
//! its parameters, passes the policy gate and records the action (run and action writes,
//! audit entries) in the in-memory run store, then calls the connector. The connector only
//! notes the time it was called and answers at once, so connector latency is excluded.
//! Latency = connector called − alert arrived. Prints p50, p90, p99 and max.
//!
//! ```
//! cargo run --release -p riposte-respond --example alert_to_action -- [ALERTS] [RATE]
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use riposte_respond::connector::{CallFuture, CallOutcome, CallRequest, Connector, OperationSpec};
use riposte_respond::{
    Class, Connectors, Engine, MemoryRunStore, Policy, Templates, TriggerEvent, TriggerKind,
    playbook,
};
use serde_json::json;

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
        "original": {"event_type": "alert", "src_ip": "203.0.113.7", "dest_port": 1433,
                     "alert": {"signature_id": 2010935, "severity": 2}}
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let rate: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
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
            .map_err(|e| e.to_string())?;
        let engine = Arc::new(Engine::new(
            Arc::new(MemoryRunStore::new()),
            Policy::default(),
            cs,
            templates,
        ));
        engine.activate(pb).await.map_err(|e| e.to_string())?;

        let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
        let start = Instant::now();
        let mut arrived = Vec::with_capacity(n);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let due = start + interval * i as u32;
            tokio::time::sleep_until(due.into()).await;
            let ev = TriggerEvent {
                kind: TriggerKind::AlertReceived,
                event_id: format!("alert-{i:08}"),
                case: None,
                alert: Some(alert(i)),
                at: riposte_domain::Timestamp::now(),
                requested_by: None,
            };
            let arrival = Instant::now();
            arrived.push(arrival);
            let e = engine.clone();
            tasks.spawn(async move {
                let now = riposte_domain::Timestamp::now();
                e.on_event(&ev, now).await.map(|_| ())
            });
            // Reap finished tasks as we go so the set stays small.
            while let Some(r) = tasks.try_join_next() {
                r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
            }
        }
        while let Some(r) = tasks.join_next().await {
            r.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        }
        let wall = start.elapsed();
        let mut lat: Vec<Duration> = Vec::with_capacity(n);
        for (i, a) in arrived.iter().enumerate() {
            let c = *called[i].lock().unwrap_or_else(|p| p.into_inner());
            match c {
                Some(c) => lat.push(c.saturating_duration_since(*a)),
                None => return Err(format!("alert {i} never reached the connector")),
            }
        }
        lat.sort();
        println!(
            "{n} alerts at {rate}/s in {:.2} s: alert → auto action request p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            wall.as_secs_f64(),
            percentile(&lat, 0.50),
            percentile(&lat, 0.90),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or_default(),
        );
        Ok::<(), String>(())
    })?;
    Ok(())
}
