//! Live case formation: the case stage fed with every alert the server stores.
//!
//! After a commit, the HTTP and syslog paths hand the alerts stored by it (never duplicates:
//! [`riposte_store::IngestOutcome::new_alerts`]) to one task, which places them
//! ([`riposte_ingest::cases::CaseStage`]) as they come and, every 250 ms, writes the cases
//! they changed (absorbed and withdrawn cases retired) in one transaction, then announces
//! each change on one broadcast channel ([`CaseUpdate`]) for whatever reacts to cases
//! (playbooks, live views). Every second it also
//! closes the cases nothing can join any more, so memory holds only the open window.
//!
//! Cases are derived data: the alerts are the record. A restart rebuilds the open window by
//! placing again the alerts received in the last `max_span + max_lateness`, in (time, id)
//! order; case ids are deterministic, so the rebuilt cases are the stored ones, and a case
//! whose write was lost to a crash is written then.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use riposte_domain::{Alert, Timestamp};
use riposte_enrich::SharedEnrichment;
use riposte_ingest::Pipeline;
use riposte_ingest::cases::{CaseStage, Touched};
use riposte_store::{Store, StoredCase};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, broadcast, mpsc, watch};

/// Alerts waiting for the case task before ingest waits for it (after its commit: nothing
/// acknowledged is at risk). Ingest does not wait on case formation for bursts below this;
/// a sustained overload slows ingest to what case formation keeps up with.
const MAX_QUEUED: usize = 100_000;
/// How often open cases are closed when nothing can join them any more.
const TICK: Duration = Duration::from_secs(1);
/// How often changed cases are written and announced: a case touched by many alerts in
/// that time is built and written once, and the store's writer is taken a few times a
/// second, not once per ingest request.
const FLUSH: Duration = Duration::from_millis(250);
/// How far ahead of this clock an alert's time is believed, for case formation.
const MAX_AHEAD: jiff::SignedDuration = jiff::SignedDuration::from_mins(15);
/// Cases per write transaction.
const WRITE_CHUNK: usize = 500;
/// Most alerts taken from the queue and placed at once.
const MAX_PLACE: usize = 20_000;

/// One case change, as announced on [`LiveCases::subscribe`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseUpdate {
    /// Increases with every update, across restarts too (it starts from the clock):
    /// `{case}@{seq}` names one change (an idempotency key for whatever reacts to it).
    pub seq: u64,
    pub case: String,
    /// `created`, `updated`, `merged` (into `merged_into`) or `withdrawn`.
    pub change: &'static str,
    pub tier: String,
    /// Set when the tier changed with this update (`case.tier_changed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_tier: Option<String>,
    pub risk: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    pub alerts: usize,
}

/// What the case task needs.
pub struct CaseSettings {
    pub config: riposte_correlate::CaseConfig,
    pub enrichment: Arc<SharedEnrichment>,
    pub scoring: riposte_score::ScoringConfig,
}

/// The handle the ingest paths and subscribers hold.
pub struct LiveCases {
    tx: mpsc::UnboundedSender<Vec<Alert>>,
    /// Alerts sent and not yet taken by the task, and a signal when it takes some.
    queued: Arc<AtomicUsize>,
    taken: Arc<Notify>,
    updates: broadcast::Sender<CaseUpdate>,
    stop: watch::Sender<bool>,
}

impl LiveCases {
    /// Starts the case task: it rebuilds the open window from the store, then places what
    /// arrives. Fails only on a bad case configuration.
    pub fn start<S: Store>(
        store: Arc<S>,
        pipeline: Arc<Pipeline>,
        settings: CaseSettings,
    ) -> Result<(LiveCases, tokio::task::JoinHandle<()>), riposte_correlate::ConfigError> {
        let stage = CaseStage::new(
            &settings.config,
            settings.enrichment.current(),
            settings.scoring.clone(),
        )?;
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = Arc::new(Notify::new());
        let (updates, _) = broadcast::channel(4096);
        let (stop, stop_rx) = watch::channel(false);
        let task = CaseTask {
            store,
            pipeline,
            lookback: settings.config.max_span + settings.config.max_lateness,
            settings,
            stage: Some(Box::new(stage)),
            broken: false,
            recoveries: 0,
            tiers: HashMap::new(),
            pending: Touched::default(),
            queued: queued.clone(),
            taken: taken.clone(),
            // Above every number an earlier run of the process announced (unless the clock
            // went back), so `{case}@{seq}` never repeats across restarts.
            seq: (Timestamp::now().as_millisecond().max(0) as u64).saturating_mul(1000),
            updates: updates.clone(),
        };
        let handle = tokio::spawn(task.run(rx, stop_rx));
        Ok((
            LiveCases {
                tx,
                queued,
                taken,
                updates,
                stop,
            },
            handle,
        ))
    }

    /// Hands alerts just stored to the case task. Waits only while the task is more than
    /// [`MAX_QUEUED`] alerts behind.
    pub async fn place(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        while self.queued.load(Ordering::Acquire) > MAX_QUEUED && !self.tx.is_closed() {
            let taken = self.taken.notified();
            if self.queued.load(Ordering::Acquire) <= MAX_QUEUED {
                break;
            }
            // Bounded, in case a notification is missed.
            let _ = tokio::time::timeout(Duration::from_millis(50), taken).await;
        }
        self.queued.fetch_add(alerts.len(), Ordering::AcqRel);
        if self.tx.send(alerts).is_err() {
            tracing::error!("the case task has stopped; alerts are stored but form no cases");
        }
    }

    /// Case changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CaseUpdate> {
        self.updates.subscribe()
    }

    /// Asks the task to write what it has and stop.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Keeps only the alerts a commit stored now.
pub fn stored_now(mut alerts: Vec<Alert>, new_ids: &[String]) -> Vec<Alert> {
    if alerts.is_empty() || new_ids.is_empty() {
        return Vec::new();
    }
    if new_ids.len() < alerts.len() {
        let new: std::collections::HashSet<&str> = new_ids.iter().map(String::as_str).collect();
        alerts.retain(|a| new.contains(a.id.as_str()));
    }
    alerts
}

struct CaseTask<S: Store> {
    store: Arc<S>,
    pipeline: Arc<Pipeline>,
    settings: CaseSettings,
    lookback: jiff::SignedDuration,
    /// Moved onto a blocking thread for each piece of CPU work.
    stage: Option<Box<CaseStage>>,
    /// The stage was lost to a panic: rebuild it.
    broken: bool,
    recoveries: u32,
    /// Tier of each case announced, to tell a tier change.
    tiers: HashMap<String, String>,
    /// Changes not yet written (a failed write is tried again on the next tick).
    pending: Touched,
    queued: Arc<AtomicUsize>,
    taken: Arc<Notify>,
    /// The last [`CaseUpdate::seq`] announced.
    seq: u64,
    updates: broadcast::Sender<CaseUpdate>,
}

impl<S: Store> CaseTask<S> {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Vec<Alert>>,
        mut stop: watch::Receiver<bool>,
    ) {
        if let Err(e) = self.rebuild().await {
            tracing::error!(error = %e, "could not rebuild the open cases; starting empty");
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut flush = tokio::time::interval(FLUSH);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                got = rx.recv() => {
                    let Some(mut alerts) = got else { break };
                    while alerts.len() < MAX_PLACE {
                        match rx.try_recv() {
                            Ok(more) => alerts.extend(more),
                            Err(_) => break,
                        }
                    }
                    self.queued.fetch_sub(alerts.len(), Ordering::AcqRel);
                    self.taken.notify_waiters();
                    self.place(alerts).await;
                }
                _ = flush.tick() => {
                    self.write(Vec::new(), true).await;
                }
                _ = tick.tick() => {
                    self.expire().await;
                }
                _ = stop.changed() => {
                    let mut rest = Vec::new();
                    while let Ok(more) = rx.try_recv() {
                        rest.extend(more);
                    }
                    self.queued.fetch_sub(rest.len(), Ordering::AcqRel);
                    self.taken.notify_waiters();
                    self.place(rest).await;
                    self.write(Vec::new(), true).await;
                    break;
                }
            }
            if self.broken {
                self.recover().await;
            }
        }
    }

    /// Runs `f` on the stage on a blocking thread.
    async fn with_stage<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut CaseStage) -> T + Send + 'static,
    ) -> Option<T> {
        let mut stage = self.stage.take()?;
        match tokio::task::spawn_blocking(move || {
            let out = f(&mut stage);
            (stage, out)
        })
        .await
        {
            Ok((stage, out)) => {
                self.stage = Some(stage);
                Some(out)
            }
            Err(e) => {
                // The stage is lost with the thread: start over from the stored alerts.
                tracing::error!(error = %e, "the case stage failed; rebuilding it");
                self.broken = true;
                None
            }
        }
    }

    async fn place(&mut self, mut alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        // A clock far ahead (or a forged time) must not drag every case's window with it:
        // the engine takes alert time as its clock, so one alert from 2099 would make every
        // later one "too late". Such alerts are placed at the present instead.
        let limit = Timestamp::now() + MAX_AHEAD;
        let mut ahead = 0usize;
        for a in &mut alerts {
            if a.time > limit {
                a.time = Timestamp::now();
                ahead += 1;
            }
        }
        if ahead > 0 {
            tracing::warn!(
                alerts = ahead,
                "alerts dated more than 15 minutes ahead of this clock were placed in cases at the present"
            );
        }
        alerts.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        let enrichment = self.settings.enrichment.current();
        let mut pending = std::mem::take(&mut self.pending);
        let out = self
            .with_stage(move |stage| {
                stage.set_enrichment(enrichment);
                for a in &alerts {
                    stage.place(a, &mut pending);
                }
                pending
            })
            .await;
        if let Some(p) = out {
            self.pending = p;
        }
    }

    async fn expire(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        let out = self
            .with_stage(move |stage| {
                // Alert time, not the wall clock: a feed of older records (a backlog, a
                // replay over HTTP) forms the same cases it would have formed live.
                let built = match stage.watermark() {
                    Some(wm) => stage.expire(wm, &mut pending),
                    None => Vec::new(),
                };
                (pending, built)
            })
            .await;
        if let Some((p, built)) = out {
            self.pending = p;
            if !built.is_empty() || !self.pending.is_empty() {
                self.write(built, true).await;
            }
        }
    }

    /// Writes the pending changes (and `closing`, cases that changed as they closed), then
    /// announces them when `announce`.
    async fn write(&mut self, closing: Vec<StoredCase>, announce: bool) {
        if self.pending.is_empty() && closing.is_empty() {
            return;
        }
        let touched = std::mem::take(&mut self.pending);
        let Some((mut cases, retired)) = self.with_stage(move |s| s.settle(touched)).await else {
            return;
        };
        let closed_ids: Vec<String> = closing.iter().map(|c| c.id.clone()).collect();
        cases.extend(closing);
        // A transaction per WRITE_CHUNK cases, so ingest commits are not held up behind
        // one large case write; the retirements go with the first (or alone).
        let mut retired = Some(retired);
        for chunk in cases.chunks(WRITE_CHUNK) {
            let r = retired.take().unwrap_or_default();
            self.write_chunk(chunk, r, announce).await;
        }
        if let Some(r) = retired.filter(|r| !r.is_empty()) {
            self.write_chunk(&[], r, announce).await;
        }
        for id in closed_ids {
            self.tiers.remove(&id);
        }
    }

    async fn write_chunk(
        &mut self,
        cases: &[StoredCase],
        retired: Vec<(String, String)>,
        announce: bool,
    ) {
        let updates = if announce {
            self.updates_for(cases, &retired)
        } else {
            for c in cases {
                self.tiers.insert(c.id.clone(), c.tier.clone());
            }
            Vec::new()
        };
        match self
            .store
            .upsert_cases(cases, retired.clone(), "cases")
            .await
        {
            Ok(()) => {
                for u in updates {
                    // No subscriber is not an error.
                    let _ = self.updates.send(u);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not write cases; trying again");
                // The tiers were recorded as announced; forget them so the retry announces.
                for c in cases {
                    self.tiers.remove(&c.id);
                    self.pending.cases.insert(c.id.as_str().into());
                }
                self.pending.retired.extend(retired);
            }
        }
    }

    fn updates_for(
        &mut self,
        cases: &[StoredCase],
        retired: &[(String, String)],
    ) -> Vec<CaseUpdate> {
        let mut out = Vec::with_capacity(cases.len() + retired.len());
        for c in cases {
            let alerts = c.doc["alert_count"].as_u64().unwrap_or(0) as usize;
            let before = self.tiers.insert(c.id.clone(), c.tier.clone());
            self.seq += 1;
            out.push(CaseUpdate {
                seq: self.seq,
                case: c.id.clone(),
                change: if before.is_some() {
                    "updated"
                } else {
                    "created"
                },
                tier: c.tier.clone(),
                previous_tier: before.filter(|t| *t != c.tier),
                risk: c.risk,
                merged_into: None,
                alerts,
            });
        }
        for (id, into) in retired {
            let tier = self.tiers.remove(id).unwrap_or_default();
            self.seq += 1;
            out.push(CaseUpdate {
                seq: self.seq,
                case: id.clone(),
                change: if into.is_empty() {
                    "withdrawn"
                } else {
                    "merged"
                },
                tier,
                previous_tier: None,
                risk: 0.0,
                merged_into: (!into.is_empty()).then(|| into.clone()),
                alerts: 0,
            });
        }
        out
    }

    /// Places again the alerts received in the look-back window and writes every case they
    /// form, without announcing them (they were announced when they formed).
    async fn rebuild(&mut self) -> Result<(), riposte_store::StoreError> {
        let since = Timestamp::now()
            .checked_sub(self.lookback)
            .map_or(0, |t| t.as_millisecond());
        let mut alerts = Vec::new();
        let mut cursor = None;
        let mut unreadable = 0u64;
        loop {
            let page = self
                .store
                .alerts_received_since(since, cursor, 5_000)
                .await?;
            for doc in &page.items {
                match serde_json::from_str::<Alert>(doc) {
                    Ok(a) => alerts.push(self.pipeline.alert_for_cases(a)),
                    Err(_) => unreadable += 1,
                }
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        if unreadable > 0 {
            tracing::warn!(
                unreadable,
                "stored alerts that could not be read back were left out of cases"
            );
        }
        let count = alerts.len();
        self.place(alerts).await;
        // Record the tiers of the cases known again, so the next change is an update.
        let ids: Vec<String> = self.pending.cases.iter().map(|c| c.to_string()).collect();
        self.write(Vec::new(), false).await;
        if count > 0 {
            tracing::info!(alerts = count, cases = ids.len(), "open cases rebuilt");
        }
        Ok(())
    }

    /// After the stage was lost: a fresh one, rebuilt from the store (a few times; a stage
    /// that keeps failing is a bug, and ingest goes on without cases).
    async fn recover(&mut self) {
        self.broken = false;
        self.recoveries += 1;
        if self.recoveries > 3 {
            tracing::error!("case formation stopped after repeated internal errors");
            return;
        }
        match CaseStage::new(
            &self.settings.config,
            self.settings.enrichment.current(),
            self.settings.scoring.clone(),
        ) {
            Ok(stage) => self.stage = Some(Box::new(stage)),
            Err(e) => {
                tracing::error!(error = %e, "case formation stopped");
                return;
            }
        }
        self.pending = Touched::default();
        if let Err(e) = self.rebuild().await {
            tracing::error!(error = %e, "could not rebuild the open cases");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riposte_store::{CaseQuery, Durability, SqliteStore};
    use serde_json::json;

    fn alert(id: &str, minute: i64, hosts: &[&str], score: u32) -> Alert {
        let time = Timestamp::from_second(1_714_525_200 + minute * 60).unwrap();
        let entities: Vec<_> = hosts
            .iter()
            .map(|h| json!({"type": "host", "role": "related", "value": h}))
            .collect();
        serde_json::from_value(json!({
            "id": id, "decoder": "test", "product": "Test", "time": time,
            "time_original": time.to_string(), "title": format!("alert {id}"),
            "severity": {"score": score, "label": "high", "original": score.to_string()},
            "entities": entities, "original": null,
        }))
        .unwrap()
    }

    /// A store in `dir` and the case task on it, with default settings.
    async fn start(
        dir: &std::path::Path,
    ) -> (Arc<SqliteStore>, LiveCases, tokio::task::JoinHandle<()>) {
        let store = Arc::new(SqliteStore::open(dir, Durability::Full).await.unwrap());
        let settings = CaseSettings {
            config: riposte_correlate::CaseConfig::default(),
            enrichment: Arc::new(SharedEnrichment::new(riposte_enrich::EnrichmentSet::empty())),
            scoring: riposte_score::ScoringConfig::default(),
        };
        let (live, task) =
            LiveCases::start(store.clone(), Arc::new(Pipeline::default()), settings).unwrap();
        (store, live, task)
    }

    fn alert_at(id: &str, time: Timestamp, host: &str) -> Alert {
        let mut a = alert(id, 0, &[host], 50);
        a.time = time;
        a
    }

    /// One alert dated 2099 does not make every later alert "too late": it is placed at the
    /// present, and the alerts around it still form one case.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_alert_from_the_future_does_not_drag_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let (store, live, task) = start(dir.path()).await;
        let now = Timestamp::now();
        let future: Timestamp = "2099-01-01T00:00:00Z".parse().unwrap();
        live.place(vec![alert_at(
            "f1",
            now - jiff::SignedDuration::from_mins(1),
            "h9",
        )])
        .await;
        live.place(vec![alert_at("f2", future, "h9")]).await;
        live.place(vec![alert_at("f3", now, "h9")]).await;
        live.stop();
        task.await.unwrap();
        let all = store
            .cases(&CaseQuery {
                limit: 10,
                ..CaseQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        let c: serde_json::Value = serde_json::from_str(&all[0]).unwrap();
        assert_eq!(c["alert_count"], 3, "{c:#}");
    }

    async fn next(rx: &mut broadcast::Receiver<CaseUpdate>) -> CaseUpdate {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a case update within 10 s")
            .expect("the channel is open")
    }

    /// Each change is written, then announced once: created, updated (with the previous
    /// tier when it changed), and a merge retires the absorbed case in the store too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changes_are_written_then_announced() {
        let dir = tempfile::tempdir().unwrap();
        let (store, live, task) = start(dir.path()).await;
        let mut rx = live.subscribe();

        live.place(vec![alert("a1", 0, &["h1"], 20)]).await;
        let u = next(&mut rx).await;
        assert_eq!((u.case.as_str(), u.change, u.alerts), ("ca1", "created", 1));
        assert_eq!(u.previous_tier, None);
        let first_tier = u.tier.clone();
        // Announced after the write: the case is there to read.
        assert!(store.case("ca1").await.unwrap().is_some());

        live.place(vec![alert("a2", 1, &["h1"], 100)]).await;
        let u = next(&mut rx).await;
        assert_eq!((u.case.as_str(), u.change, u.alerts), ("ca1", "updated", 2));
        assert_eq!(u.previous_tier.is_some(), u.tier != first_tier, "{u:?}");

        live.place(vec![alert("a3", 2, &["h2"], 20)]).await;
        let u = next(&mut rx).await;
        assert_eq!((u.case.as_str(), u.change), ("ca3", "created"));

        // a4 bridges h1's case and h2's: one case, the other retired as merged.
        live.place(vec![alert("a4", 3, &["h1", "h2"], 20)]).await;
        let mut got = [next(&mut rx).await, next(&mut rx).await];
        got.sort_by(|a, b| a.case.cmp(&b.case));
        assert_eq!(
            (got[0].case.as_str(), got[0].change, got[0].alerts),
            ("ca1", "updated", 4)
        );
        assert_eq!((got[1].case.as_str(), got[1].change), ("ca3", "merged"));
        assert_eq!(got[1].merged_into.as_deref(), Some("ca1"));
        let merged: serde_json::Value =
            serde_json::from_str(&store.case("ca3").await.unwrap().unwrap()).unwrap();
        assert_eq!(merged["status"], "merged");
        let open = store
            .cases(&CaseQuery {
                limit: 10,
                status: Some("open".into()),
                ..CaseQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(open.len(), 1);

        // A duplicate (an alert already placed) changes nothing.
        live.place(vec![alert("a2", 1, &["h1"], 100)]).await;
        live.stop();
        task.await.unwrap();
        assert!(rx.try_recv().is_err(), "nothing more was announced");
    }
}
