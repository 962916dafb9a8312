//! The one path from a raw record to a stored record.

use riposte_decode::{DecodeError, Decoder, framing};
use riposte_domain::{Canonicaliser, Decoded, Origin, id};
use riposte_store::{NewDeadLetter, StoredRecord};
use serde_json::Value;
use std::sync::Arc;

use riposte_deception::{Registry, SharedRegistry};
use riposte_detect::{Detector, SharedDetector};

/// Parses, decodes, canonicalises and identifies records. Pure CPU work, no I/O: callers run
/// it on blocking threads and hand the result to the store.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    canon: Canonicaliser,
    /// Decoys: a record that shows one used is followed by a `deception` alert. Empty by
    /// default, which still finds honeypot interactions and canarytoken triggers. Shared, so
    /// a reload reaches every clone of the pipeline.
    decoys: Arc<SharedRegistry>,
    /// Hand decoded alerts (without their original payload) to the caller too, for the case
    /// stage.
    keep_alerts: bool,
    /// Sigma rules: every decoded event they match is followed by a `sigma` alert. Shared,
    /// so a reload reaches every clone of the pipeline; taken once per chunk.
    detector: Arc<SharedDetector>,
    /// Hand the events Sigma correlations need to the caller (replay's correlation stage).
    keep_correlation_events: bool,
}

/// What one chunk of input became.
#[derive(Debug, Default)]
pub struct Decoding {
    pub records: Vec<StoredRecord>,
    pub rejects: Vec<NewDeadLetter>,
    /// How many input records the chunk held.
    pub received: u64,
    /// The alerts decoded, without their original payload (a deception alert keeps its
    /// small one), when the pipeline keeps alerts.
    pub alerts: Vec<riposte_domain::Alert>,
    /// The events a Sigma correlation's base rules match, when the pipeline keeps them:
    /// correlation is stateful, so the caller feeds them in time order.
    pub correlation_events: Vec<riposte_domain::Event>,
}

impl Decoding {
    pub fn absorb(&mut self, other: Decoding) {
        self.records.extend(other.records);
        self.rejects.extend(other.rejects);
        self.received += other.received;
        self.alerts.extend(other.alerts);
        self.correlation_events.extend(other.correlation_events);
    }
}

/// One input record: raw text to parse, a value parsed from that text, or a value with no
/// text (an EVTX record).
pub enum Input<'a> {
    Text(&'a str),
    Parsed(Value, &'a str),
    Json(Value),
}

impl Pipeline {
    pub fn new(canon: Canonicaliser) -> Pipeline {
        Pipeline {
            canon,
            decoys: Arc::default(),
            keep_alerts: false,
            detector: Arc::default(),
            keep_correlation_events: false,
        }
    }

    /// How entity values are made canonical (for look-ups by value).
    pub fn canonicaliser(&self) -> &Canonicaliser {
        &self.canon
    }

    /// Adds finished records to a decoding: serialised for the store and, when the pipeline
    /// keeps alerts, the alerts themselves.
    pub fn collect(&self, out: &mut Decoding, ds: Vec<Decoded>) {
        self.collect_with(self.detector.current().as_deref(), out, ds)
    }

    /// [`Pipeline::collect`] with the rule set the records were detected with.
    fn collect_with(&self, detector: Option<&Detector>, out: &mut Decoding, ds: Vec<Decoded>) {
        out.records
            .extend(ds.iter().map(StoredRecord::from_decoded));
        if self.keep_correlation_events
            && let Some(d) = detector
        {
            for x in &ds {
                if let Decoded::Event(e) = x
                    && d.feeds_correlations(&e.decoder, &e.action, &e.original)
                {
                    out.correlation_events.push(e.clone());
                }
            }
        }
        if self.keep_alerts {
            let decoys = self.decoys.current();
            out.alerts.extend(ds.into_iter().filter_map(|d| match d {
                Decoded::Alert(a) => Some(for_cases(a, &decoys)),
                Decoded::Event(_) => None,
            }));
        }
    }

    /// An alert as the case stage takes it: see [`for_cases`]. For alerts read back from the
    /// store (rebuilding the open cases after a restart).
    pub fn alert_for_cases(&self, a: riposte_domain::Alert) -> riposte_domain::Alert {
        for_cases(a, &self.decoys.current())
    }

    /// The decoy registry in use; [`SharedRegistry::replace`] on it reloads the decoys.
    pub fn decoys(&self) -> &Arc<SharedRegistry> {
        &self.decoys
    }

    /// Also returns each decoded alert in [`Decoding::alerts`].
    pub fn keeping_alerts(mut self, keep: bool) -> Pipeline {
        self.keep_alerts = keep;
        self
    }

    /// Checks every record against this decoy registry.
    pub fn with_decoys(mut self, decoys: Registry) -> Pipeline {
        self.decoys = Arc::new(SharedRegistry::new(decoys));
        self
    }

    /// Also returns the events Sigma correlations need in [`Decoding::correlation_events`].
    pub fn keeping_correlation_events(mut self, keep: bool) -> Pipeline {
        self.keep_correlation_events = keep;
        self
    }

    /// The Sigma rules this pipeline runs now, if any.
    pub fn detector(&self) -> Option<Arc<Detector>> {
        self.detector.current()
    }

    /// The rule set in use; [`SharedDetector::replace`] on it reloads the rules.
    pub fn detectors(&self) -> &Arc<SharedDetector> {
        &self.detector
    }

    /// Runs these Sigma rules over every decoded event.
    pub fn with_detector(mut self, detector: Arc<Detector>) -> Pipeline {
        self.detector = Arc::new(SharedDetector::new(Some(detector)));
        self
    }

    /// Finishes one decoded record: canonical entities, deterministic id, origin.
    pub fn finish(&self, mut d: Decoded, origin: Origin) -> Decoded {
        self.canon.apply_all(d.entities_mut());
        let record_id = id::record_id(d.decoder(), d.kind(), d.time(), d.source_id(), d.original());
        d.set_id(record_id);
        d.set_origin(origin);
        d
    }

    /// Decodes one record, returning the finished records or the error and the raw text.
    pub fn decode_one(
        &self,
        decoder: &dyn Decoder,
        input: Input<'_>,
        origin: &Origin,
    ) -> Result<Vec<Decoded>, (DecodeError, Vec<u8>)> {
        self.decode_with(
            &self.decoys.current(),
            self.detector.current().as_deref(),
            decoder,
            input,
            origin,
        )
    }

    fn decode_with(
        &self,
        decoys: &Registry,
        detector: Option<&Detector>,
        decoder: &dyn Decoder,
        input: Input<'_>,
        origin: &Origin,
    ) -> Result<Vec<Decoded>, (DecodeError, Vec<u8>)> {
        let (value, raw) = match input {
            Input::Text(raw) => match framing::parse(raw, decoder.input()) {
                Ok(v) => (v, Some(raw)),
                Err(e) => return Err((e, raw.as_bytes().to_vec())),
            },
            Input::Parsed(v, raw) => (v, Some(raw)),
            Input::Json(v) => (v, None),
        };
        // The raw text is only needed when the record is refused; for parsed input it is
        // rebuilt from the value then.
        let backup = if raw.is_none() {
            Some(value.clone())
        } else {
            None
        };
        match decoder.decode(value) {
            Ok(out) => {
                let mut done: Vec<Decoded> = out
                    .into_iter()
                    .map(|d| self.finish(d, origin.clone()))
                    .collect();
                let mut hits = Vec::new();
                for d in &done {
                    for hit in decoys.check(d) {
                        let alert = Decoded::Alert(hit.to_alert(d));
                        hits.push(self.finish(alert, origin.clone()));
                    }
                    if let (Some(detector), Decoded::Event(e)) = (detector, d) {
                        for a in detector.detect(e) {
                            hits.push(self.finish(Decoded::Alert(a), origin.clone()));
                        }
                    }
                }
                done.extend(hits);
                Ok(done)
            }
            Err(e) => {
                let bytes = match (raw, backup) {
                    (Some(r), _) => r.as_bytes().to_vec(),
                    (None, Some(v)) => serde_json::to_vec(&v).unwrap_or_default(),
                    (None, None) => Vec::new(),
                };
                Err((e, bytes))
            }
        }
    }

    /// Decodes a chunk of records; `origin(i)` names where record `i` (0-based within the
    /// chunk) came from, `index(i)` its number as reported to the sender.
    pub fn decode_chunk<'a>(
        &self,
        decoder: &dyn Decoder,
        inputs: impl IntoIterator<Item = Input<'a>>,
        origin: impl Fn(u64) -> Origin,
        index: impl Fn(u64) -> u64,
    ) -> Decoding {
        let mut out = Decoding::default();
        // One registry and one rule set for the whole chunk, whatever a reload does meanwhile.
        let decoys = self.decoys.current();
        let detector = self.detector.current();
        for (i, input) in inputs.into_iter().enumerate() {
            let i = i as u64;
            out.received += 1;
            let o = origin(i);
            match self.decode_with(&decoys, detector.as_deref(), decoder, input, &o) {
                Ok(ds) => self.collect_with(detector.as_deref(), &mut out, ds),
                Err((e, raw)) => out.rejects.push(NewDeadLetter {
                    decoder: decoder.name().to_string(),
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

impl Pipeline {
    /// [`Pipeline::decode_chunk`] over text records, split across up to `threads` scoped
    /// threads (each part at least [`MIN_PART`] records) and merged back in input order: a
    /// request's latency is its decode time, and one request should not wait for one core.
    pub fn decode_texts(
        &self,
        decoder: &dyn Decoder,
        raws: &[&str],
        origin: impl Fn(u64) -> Origin + Sync,
        threads: usize,
    ) -> Decoding {
        let parts = threads.clamp(1, raws.len().div_ceil(MIN_PART).max(1));
        let part_len = raws.len().div_ceil(parts).max(1);
        let run = |first: usize, part: &[&str]| {
            self.decode_chunk(
                decoder,
                part.iter().map(|r| Input::Text(r)),
                |i| origin(first as u64 + i),
                |i| first as u64 + i,
            )
        };
        if parts == 1 {
            return run(0, raws);
        }
        let mut out = Decoding::default();
        std::thread::scope(|scope| {
            let mut chunks = raws.chunks(part_len).enumerate();
            let first = chunks.next();
            let handles: Vec<_> = chunks
                .map(|(n, part)| scope.spawn(move || run(n * part_len, part)))
                .collect();
            if let Some((_, part)) = first {
                out = run(0, part);
            }
            for h in handles {
                match h.join() {
                    Ok(d) => out.absorb(d),
                    // A decoder that panicked is a bug; its panic goes on up.
                    Err(p) => std::panic::resume_unwind(p),
                }
            }
        });
        out
    }
}

/// An alert as the case stage takes it: without its original payload (a deception alert
/// keeps its small one), and without decoy entities, which never join cases (two intruders
/// on one decoy are two cases): registry decoys, and a honeypot's own name and address.
fn for_cases(mut a: riposte_domain::Alert, decoys: &Registry) -> riposte_domain::Alert {
    if a.decoder != "deception" {
        a.original = Value::Null;
    }
    let honeypot = matches!(a.decoder.as_str(), "opencanary" | "cowrie");
    a.entities.retain(|e| {
        let own = honeypot && e.role == riposte_domain::Role::Target;
        !own && !decoys.is_decoy(e.kind, &e.value)
    });
    a
}

/// The fewest records worth a thread of their own in [`Pipeline::decode_texts`].
pub const MIN_PART: usize = 64;

/// A fresh batch id: time-ordered and unique enough to find a batch in the audit log.
pub fn new_batch_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let now = riposte_domain::Timestamp::now().as_microsecond();
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("b{now:x}-{:x}-{n:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u64) -> String {
        format!(
            r#"{{"timestamp":"2024-05-01T10:00:{:02}.000000+0000","flow_id":{n},"event_type":"alert","src_ip":"10.0.0.{}","dest_ip":"192.0.2.1","alert":{{"signature_id":{n},"signature":"test {n}","severity":2}}}}"#,
            n % 60,
            n % 250
        )
    }

    /// Split across threads, records and refusals come back in input order with the index
    /// and origin of the input record, exactly as decoding on one thread gives them.
    #[test]
    fn parallel_decoding_keeps_order_and_indices() {
        let p = Pipeline::default();
        let d = riposte_decode::builtin("suricata").expect("suricata decoder");
        let mut lines: Vec<String> = (0..300).map(line).collect();
        lines[5] = "{not json".into();
        lines[250] = r#"{"event_type":"alert"}"#.into();
        let raws: Vec<&str> = lines.iter().map(String::as_str).collect();
        let origin = |i: u64| Origin::Http {
            batch: "b".into(),
            token: "t".into(),
            peer: "p".into(),
            index: i,
        };
        let one = p.decode_texts(d, &raws, origin, 1);
        let four = p.decode_texts(d, &raws, origin, 4);
        assert_eq!(four.received, 300);
        assert_eq!(four.records.len(), 298);
        let ids = |x: &Decoding| x.records.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&one), ids(&four));
        let rejects = |x: &Decoding| {
            x.rejects
                .iter()
                .map(|r| (r.index, r.origin.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(rejects(&four), vec![(5, origin(5)), (250, origin(250))]);
        assert_eq!(rejects(&one), rejects(&four));
    }
}
