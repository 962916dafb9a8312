//! Live Sigma correlation: the configured correlation rules over the events the server
//! ingests (HTTP and syslog), the way replay runs them over files.
//!
//! After a commit, the ingest paths hand the events a correlation's base rules match
//! ([`riposte_ingest::Decoding::correlation_events`]) to one task, which owns the
//! [`Correlator`] (its windows are state, so one writer). The task holds each event for the
//! reorder delay ([`DEFAULT_HOLD`] unless configured) after it arrives and feeds what is due, with every held event older than it, in (event time, id) order, so events sent
//! at about the same time by several senders, or in one request out of order, are counted as
//! replay counts them. An event that arrives later than that, older than events already fed,
//! is still fed at its own time and counted in [`CorrelationStats::late`]; its group's window
//! may then reach back by its lateness (the engine keeps each group's entries in the order
//! fed). Groups are separate, so a backlog that only holds its own groups (a forwarder
//! catching up) correlates exactly.
//!
//! What fires becomes `sigma` alerts with deterministic ids (rule, group, time of the event
//! that fired it), stored through the store like any record (a repeat is a duplicate, never
//! a second alert), then handed to live case formation and the response engine like every
//! new alert. An event already fed (a sender's retry) is not fed again.
//!
//! Rules: the task reads the pipeline's current rule set before each feed; after a reload it
//! builds a new [`Correlator`] and carries the open windows of the correlations that kept
//! their id over ([`Correlator::carry_over_from`]). A correlation a reload adds counts the
//! events fed from then on, those still held included: no event is lost to a reload.
//!
//! Restart: the windows are memory. At start the task feeds again the stored events received
//! in the last (longest correlation timespan + reorder delay), in (time, id) order; what they fire
//! again has the ids already stored, so only a correlation whose alert was lost to a crash is
//! stored (and placed) now.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use riposte_detect::Correlator;
use riposte_domain::{Decoded, Event, Origin, Timestamp};
use riposte_ingest::{Decoding, Pipeline, new_batch_id};
use riposte_store::{IngestBatch, Store};
use serde_json::json;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::AppState;

/// How long an event waits after it arrives before it is fed, unless configured: events from
/// concurrent requests and senders are fed in event-time order. Correlation alerts come this
/// much later.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(2);
/// How often held events are checked for being due.
const TICK: Duration = Duration::from_millis(250);
/// Events waiting for the task before ingest waits for it (after its commit).
const MAX_QUEUED: usize = 200_000;
/// Event ids remembered to recognise a retry are kept at least this long...
const MIN_RETAIN: Duration = Duration::from_secs(300);
/// ...and at most this many.
const MAX_SEEN: usize = 1_000_000;
/// Stored events read per page when rebuilding.
const PAGE: u32 = 5_000;

/// What the correlation task did, for `GET /api/v1/stats`.
#[derive(Debug, Default)]
pub struct CorrelationStats {
    /// Events fed to the correlations.
    pub fed: AtomicU64,
    /// Events received again (a retry) and not fed twice.
    pub duplicates: AtomicU64,
    /// Events fed after a newer one had been (arrived later than the reorder delay).
    pub late: AtomicU64,
    /// Correlation alerts fired.
    pub fired: AtomicU64,
    /// Of those, stored now (the rest were already stored: a rebuild firing them again).
    pub stored: AtomicU64,
    /// Writes of correlation alerts that failed after retries.
    pub store_errors: AtomicU64,
}

impl CorrelationStats {
    pub fn snapshot(&self) -> serde_json::Value {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "fed": get(&self.fed),
            "duplicates": get(&self.duplicates),
            "late": get(&self.late),
            "fired": get(&self.fired),
            "stored": get(&self.stored),
            "store_errors": get(&self.store_errors),
        })
    }
}

/// The handle the ingest paths hold.
pub struct LiveCorrelation {
    tx: mpsc::UnboundedSender<Vec<Event>>,
    queued: Arc<AtomicUsize>,
    taken: Arc<Notify>,
    stop: watch::Sender<bool>,
    stats: Arc<CorrelationStats>,
}

/// The task's end of [`LiveCorrelation::channel`], started once the state exists.
pub struct CorrelationInbox {
    rx: mpsc::UnboundedReceiver<Vec<Event>>,
    stop: watch::Receiver<bool>,
    queued: Arc<AtomicUsize>,
    taken: Arc<Notify>,
    stats: Arc<CorrelationStats>,
}

impl LiveCorrelation {
    /// The handle for [`AppState::correlation`] and the inbox to start the task with once
    /// the state is shared ([`CorrelationInbox::start`]).
    pub fn channel() -> (LiveCorrelation, CorrelationInbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = Arc::new(Notify::new());
        let stats = Arc::new(CorrelationStats::default());
        (
            LiveCorrelation {
                tx,
                queued: queued.clone(),
                taken: taken.clone(),
                stop,
                stats: stats.clone(),
            },
            CorrelationInbox {
                rx,
                stop: stop_rx,
                queued,
                taken,
                stats,
            },
        )
    }

    /// Hands events just stored to the task. Waits only while it is more than
    /// [`MAX_QUEUED`] events behind.
    pub async fn feed(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        while self.queued.load(Ordering::Acquire) > MAX_QUEUED && !self.tx.is_closed() {
            let taken = self.taken.notified();
            if self.queued.load(Ordering::Acquire) <= MAX_QUEUED {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), taken).await;
        }
        self.queued.fetch_add(events.len(), Ordering::AcqRel);
        if self.tx.send(events).is_err() {
            tracing::error!(
                "the correlation task has stopped; events are stored but not correlated"
            );
        }
    }

    pub fn stats(&self) -> &CorrelationStats {
        &self.stats
    }

    /// Asks the task to feed what it holds, store what fires, and stop.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl CorrelationInbox {
    /// Starts the task: it rebuilds the windows from the store, then feeds what arrives.
    /// It holds the state weakly (the state holds its handle). Each event waits `hold` after
    /// it arrives so events are fed in event-time order.
    pub fn start<S: Store>(
        self,
        state: &Arc<AppState<S>>,
        hold: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let task = CorrelationTask {
            hold,
            store: state.store.clone(),
            pipeline: state.pipeline.clone(),
            state: Arc::downgrade(state),
            correlator: None,
            broken: false,
            recoveries: 0,
            held: Vec::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            latest: None,
            queued: self.queued,
            taken: self.taken,
            stats: self.stats,
        };
        tokio::spawn(task.run(self.rx, self.stop))
    }
}

struct CorrelationTask<S: Store> {
    hold: Duration,
    store: Arc<S>,
    pipeline: Arc<Pipeline>,
    state: Weak<AppState<S>>,
    /// Moved onto a blocking thread for each feed; `None` without correlation rules.
    correlator: Option<Box<Correlator>>,
    /// The correlator was lost to a panic: build it again from the store.
    broken: bool,
    recoveries: u32,
    /// Events waiting for their hold to pass, with when they arrived.
    held: Vec<(Instant, Event)>,
    /// Ids of the events taken (to recognise a retry), and when, oldest first.
    seen: HashSet<String>,
    seen_order: VecDeque<(Instant, String)>,
    /// The newest event time fed so far.
    latest: Option<Timestamp>,
    queued: Arc<AtomicUsize>,
    taken: Arc<Notify>,
    stats: Arc<CorrelationStats>,
}

impl<S: Store> CorrelationTask<S> {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Vec<Event>>,
        mut stop: watch::Receiver<bool>,
    ) {
        self.sync_rules().await;
        if let Err(e) = self.rebuild().await {
            tracing::error!(error = %e, "could not rebuild the correlation windows; starting empty");
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                got = rx.recv() => {
                    let Some(mut events) = got else { break };
                    while let Ok(more) = rx.try_recv() {
                        events.extend(more);
                    }
                    self.queued.fetch_sub(events.len(), Ordering::AcqRel);
                    self.taken.notify_waiters();
                    self.hold(events);
                }
                _ = tick.tick() => {
                    self.release(false).await;
                }
                _ = stop.changed() => {
                    let mut rest = Vec::new();
                    while let Ok(more) = rx.try_recv() {
                        rest.extend(more);
                    }
                    self.queued.fetch_sub(rest.len(), Ordering::AcqRel);
                    self.taken.notify_waiters();
                    self.hold(rest);
                    self.release(true).await;
                    break;
                }
            }
            if self.broken {
                self.recover().await;
            }
        }
    }

    /// Takes arriving events into the hold, leaving out those already taken.
    fn hold(&mut self, events: Vec<Event>) {
        let now = Instant::now();
        for e in events {
            if !self.remember(now, &e.id) {
                self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.held.push((now, e));
        }
    }

    /// Records an event id as taken; `false` when it already was.
    fn remember(&mut self, now: Instant, id: &str) -> bool {
        if !self.seen.insert(id.to_string()) {
            return false;
        }
        self.seen_order.push_back((now, id.to_string()));
        true
    }

    /// Forgets ids taken longer ago than a window can reach (and beyond [`MAX_SEEN`]).
    fn forget_old(&mut self) {
        let span = self
            .correlator
            .as_ref()
            .map_or(0, |c| c.max_timespan_secs());
        let retain = Duration::from_secs(span).max(MIN_RETAIN) + self.hold;
        let now = Instant::now();
        while let Some((at, _)) = self.seen_order.front() {
            if now.duration_since(*at) <= retain && self.seen_order.len() <= MAX_SEEN {
                break;
            }
            if let Some((_, id)) = self.seen_order.pop_front() {
                self.seen.remove(&id);
            }
        }
    }

    /// Feeds the held events that are due (all with `all`) in (time, id) order, then stores
    /// and places what they fire.
    async fn release(&mut self, all: bool) {
        self.forget_old();
        if self.held.is_empty() {
            return;
        }
        let now = Instant::now();
        let (mut due, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(at, _)| all || now.duration_since(*at) >= self.hold);
        if due.is_empty() {
            self.held = wait;
            return;
        }
        // A held event older than the newest one due goes now too: held until its own delay
        // ran out, it would be fed after a newer one (two requests a tick apart, the newer
        // events first, would otherwise be fed out of order).
        let newest = due.iter().map(|(_, e)| e.time).max();
        let (older, wait): (Vec<_>, Vec<_>) =
            wait.into_iter().partition(|(_, e)| Some(e.time) <= newest);
        due.extend(older);
        self.held = wait;
        due.sort_by(|(_, a), (_, b)| (a.time, &a.id).cmp(&(b.time, &b.id)));
        let events: Vec<Event> = due.into_iter().map(|(_, e)| e).collect();
        self.sync_rules().await;
        self.feed(events).await;
    }

    /// Follows the pipeline's rule set: a new correlator after a reload, carrying the open
    /// windows over; none when detection was switched off.
    async fn sync_rules(&mut self) {
        let current = self.pipeline.detector();
        let same = match (&current, &self.correlator) {
            (Some(d), Some(c)) => Arc::ptr_eq(d, c.detector()),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        let Some(detector) = current else {
            self.correlator = None;
            return;
        };
        let old = self.correlator.take();
        let built = tokio::task::spawn_blocking(move || {
            let mut new = Correlator::new(detector);
            let carried = old.as_ref().map(|o| new.carry_over_from(o));
            (new, carried)
        })
        .await;
        match built {
            Ok((new, carried)) => {
                for r in new.refusals() {
                    tracing::warn!(refusal = %r, "correlation rule not loaded");
                }
                if carried == Some(false) {
                    tracing::warn!(
                        "the correlation windows could not be carried over the reload; they start empty"
                    );
                }
                self.correlator = Some(Box::new(new));
            }
            Err(e) => {
                tracing::error!(error = %e, "could not build the correlator; correlations are off until the next reload");
            }
        }
    }

    /// Feeds events (in order) through the correlator, then stores and places what fires.
    async fn feed(&mut self, events: Vec<Event>) {
        let Some(mut correlator) = self.correlator.take() else {
            return;
        };
        let mut late = 0u64;
        for e in &events {
            match self.latest {
                Some(t) if e.time < t => late += 1,
                _ => self.latest = Some(e.time),
            }
        }
        let fed = events.len() as u64;
        let pipeline = self.pipeline.clone();
        let out = tokio::task::spawn_blocking(move || {
            let mut decoding = Decoding::default();
            for e in &events {
                let origin = e.origin.clone().unwrap_or(Origin::Replay {
                    file: String::new(),
                    record: 0,
                });
                let fired: Vec<Decoded> = correlator
                    .process(e)
                    .into_iter()
                    .map(|a| pipeline.finish(Decoded::Alert(a), origin.clone()))
                    .collect();
                if !fired.is_empty() {
                    pipeline.collect(&mut decoding, fired);
                }
            }
            (correlator, decoding)
        })
        .await;
        let decoding = match out {
            Ok((correlator, decoding)) => {
                self.correlator = Some(correlator);
                decoding
            }
            Err(e) => {
                tracing::error!(error = %e, "the correlator failed; rebuilding it from the store");
                self.broken = true;
                return;
            }
        };
        self.stats.fed.fetch_add(fed, Ordering::Relaxed);
        self.stats.late.fetch_add(late, Ordering::Relaxed);
        if late > 0 {
            tracing::debug!(
                late,
                "events arrived after newer ones were correlated; fed at their own time"
            );
        }
        self.store_fired(decoding).await;
    }

    /// Stores correlation alerts (retrying a failed write) and places the new ones.
    async fn store_fired(&mut self, decoding: Decoding) {
        if decoding.records.is_empty() {
            return;
        }
        let fired = decoding.records.len() as u64;
        self.stats.fired.fetch_add(fired, Ordering::Relaxed);
        let batch = IngestBatch {
            batch_id: new_batch_id(),
            actor: "correlation".into(),
            decoder: "sigma".into(),
            source: json!({ "via": "correlation" }),
            received: fired,
            records: decoding.records,
            rejects: Vec::new(),
            received_at: Timestamp::now(),
        };
        let mut attempt = 0u64;
        let outcome = loop {
            match self.store.ingest(batch.clone()).await {
                Ok(o) => break o,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "storing correlation alerts failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => {
                    // The events are stored: the next start feeds them again and fires these.
                    tracing::error!(error = %e, alerts = fired, "storing correlation alerts failed; they are made again at the next start");
                    self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        };
        self.stats
            .stored
            .fetch_add(outcome.accepted, Ordering::Relaxed);
        if let Some(state) = self.state.upgrade() {
            state
                .place_alerts(decoding.alerts, &outcome.new_alerts)
                .await;
        }
    }

    /// Feeds again the stored events received in the look-back (the longest correlation
    /// timespan and the hold), in (time, id) order.
    async fn rebuild(&mut self) -> Result<(), riposte_store::StoreError> {
        let Some(detector) = self.correlator.as_ref().map(|c| c.detector().clone()) else {
            return Ok(());
        };
        let span = self
            .correlator
            .as_ref()
            .map_or(0, |c| c.max_timespan_secs());
        if span == 0 {
            return Ok(());
        }
        let lookback = Duration::from_secs(span) + self.hold;
        let since = Timestamp::now().as_millisecond() - lookback.as_millis() as i64;
        let mut events: Vec<Event> = Vec::new();
        let mut unreadable = 0u64;
        let mut cursor = None;
        loop {
            let page = self
                .store
                .events_received_since(since, cursor, PAGE)
                .await?;
            cursor = page.next_cursor;
            let d = detector.clone();
            // Reading and matching a page is CPU work: off the runtime's threads.
            let (kept, bad) = tokio::task::spawn_blocking(move || {
                let mut kept = Vec::new();
                let mut bad = 0u64;
                for doc in &page.items {
                    match serde_json::from_str::<Event>(doc) {
                        Ok(e) if d.feeds_correlations(&e.decoder, &e.action, &e.original) => {
                            kept.push(e)
                        }
                        Ok(_) => {}
                        Err(_) => bad += 1,
                    }
                }
                (kept, bad)
            })
            .await
            .unwrap_or_default();
            events.extend(kept);
            unreadable += bad;
            if cursor.is_none() {
                break;
            }
        }
        if unreadable > 0 {
            tracing::warn!(
                unreadable,
                "stored events that could not be read back were left out of correlation"
            );
        }
        events.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        events.dedup_by(|a, b| a.id == b.id);
        let now = Instant::now();
        events.retain(|e| self.seen.insert(e.id.clone()));
        for e in &events {
            self.seen_order.push_back((now, e.id.clone()));
        }
        let count = events.len();
        self.feed(events).await;
        if count > 0 {
            tracing::info!(events = count, "correlation windows rebuilt");
        }
        Ok(())
    }

    /// After the correlator was lost: a new one, fed again from the store (a few times; one
    /// that keeps failing is a bug, and correlation goes on from empty windows).
    async fn recover(&mut self) {
        self.broken = false;
        self.recoveries += 1;
        self.seen.clear();
        self.seen_order.clear();
        self.latest = None;
        self.sync_rules().await;
        if self.recoveries > 3 {
            tracing::error!(
                "the correlator failed repeatedly; going on with empty windows, not rebuilt"
            );
            return;
        }
        if let Err(e) = self.rebuild().await {
            tracing::error!(error = %e, "could not rebuild the correlation windows");
        }
    }
}
