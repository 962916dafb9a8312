//! Syslog listeners: TCP (newline framing and RFC 6587 octet counting, detected per message)
//! and UDP. Messages are routed to the `cef`, `leef` or `panos` decoder by content (or one
//! decoder named in config), batched for up to 100 ms, and stored through the same pipeline
//! as HTTP ingest. Syslog has no acknowledgement, so what the listener counts is exposed in
//! `/api/v1/stats`: received, stored, refused, and UDP datagrams lost — dropped by riposte
//! when its queue was full, and dropped by the kernel when the socket buffer overflowed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use riposte_decode::{DecodeError, syslog};
use riposte_domain::{Origin, Timestamp};
use riposte_ingest::{Decoding, Input, new_batch_id};
use riposte_store::{IngestBatch, NewDeadLetter, Store};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

use crate::AppState;

#[derive(Debug, Clone, Default)]
pub struct SyslogConfig {
    pub tcp: Option<SocketAddr>,
    pub udp: Option<SocketAddr>,
    /// Decode every message with this decoder instead of routing by content.
    pub decoder: Option<String>,
}

/// Largest syslog message accepted (bigger ones are counted and skipped).
pub const MAX_MESSAGE: usize = 256 * 1024;
const QUEUE: usize = 50_000;
const BATCH: usize = 2_000;
const FLUSH: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
pub struct SyslogStats {
    pub tcp_messages: AtomicU64,
    pub udp_messages: AtomicU64,
    /// UDP messages riposte dropped because its queue was full.
    pub udp_dropped_queue_full: AtomicU64,
    pub oversized: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub refused: AtomicU64,
    pub store_errors: AtomicU64,
    udp_port: AtomicU64,
}

impl SyslogStats {
    pub fn snapshot(&self) -> Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let port = g(&self.udp_port) as u16;
        json!({
            "tcp_messages": g(&self.tcp_messages),
            "udp_messages": g(&self.udp_messages),
            "udp_dropped_queue_full": g(&self.udp_dropped_queue_full),
            "udp_dropped_kernel": if port == 0 { None } else { kernel_udp_drops(port) },
            "oversized": g(&self.oversized),
            "stored": g(&self.stored),
            "duplicates": g(&self.duplicates),
            "refused": g(&self.refused),
            "store_errors": g(&self.store_errors),
        })
    }
}

/// Drops the kernel counted for UDP sockets bound to `port` (Linux `/proc/net/udp*`).
fn kernel_udp_drops(port: u16) -> Option<u64> {
    let mut total = None;
    for f in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let Some(local) = cols.get(1) else { continue };
            let Some((_, p)) = local.rsplit_once(':') else {
                continue;
            };
            if u16::from_str_radix(p, 16).ok() == Some(port)
                && let Some(d) = cols.last().and_then(|d| d.parse::<u64>().ok())
            {
                total = Some(total.unwrap_or(0) + d);
            }
        }
    }
    total
}

struct Message {
    line: String,
    received_at: Timestamp,
    listener: Arc<str>,
    peer: SocketAddr,
}

/// Binds the configured listeners and starts serving them; returns the bound addresses
/// (TCP, UDP), useful when the configured port is 0.
pub async fn start<S: Store>(
    state: Arc<AppState<S>>,
    cfg: SyslogConfig,
) -> std::io::Result<(Option<SocketAddr>, Option<SocketAddr>)> {
    if cfg.tcp.is_none() && cfg.udp.is_none() {
        return Ok((None, None));
    }
    let (tx, rx) = mpsc::channel::<Message>(QUEUE);
    let mut bound = (None, None);
    if let Some(addr) = cfg.tcp {
        let l = TcpListener::bind(addr).await?;
        let local = l.local_addr()?;
        bound.0 = Some(local);
        tracing::info!(%local, "syslog TCP listening");
        tokio::spawn(tcp_accept(
            l,
            Arc::from(format!("tcp://{local}")),
            tx.clone(),
            state.syslog.clone(),
        ));
    }
    if let Some(addr) = cfg.udp {
        let s = UdpSocket::bind(addr).await?;
        let local = s.local_addr()?;
        bound.1 = Some(local);
        state
            .syslog
            .udp_port
            .store(local.port() as u64, Ordering::Relaxed);
        tracing::info!(%local, "syslog UDP listening");
        tokio::spawn(udp_loop(
            s,
            Arc::from(format!("udp://{local}")),
            tx.clone(),
            state.syslog.clone(),
        ));
    }
    drop(tx);
    tokio::spawn(batcher(state, cfg.decoder, rx));
    Ok(bound)
}

async fn tcp_accept(
    l: TcpListener,
    name: Arc<str>,
    tx: mpsc::Sender<Message>,
    stats: Arc<SyslogStats>,
) {
    loop {
        match l.accept().await {
            Ok((sock, peer)) => {
                tokio::spawn(tcp_conn(
                    sock,
                    peer,
                    name.clone(),
                    tx.clone(),
                    stats.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "syslog TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Splits a TCP byte stream into syslog messages: `LEN SP MSG` (RFC 6587 octet counting) when
/// a frame starts with a length and a space, else a line ending in LF. Decides only once
/// enough bytes are there, so a frame split across reads is never misread.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
    /// Bytes still to skip of an oversized frame, or `usize::MAX` for "until the next LF".
    skipping: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    Oversized,
}

impl Framer {
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            let data = &self.buf[self.start..];
            if self.skipping == usize::MAX {
                match memchr_lf(data) {
                    Some(i) => {
                        self.start += i + 1;
                        self.skipping = 0;
                        continue;
                    }
                    None => {
                        self.start = self.buf.len();
                        return None;
                    }
                }
            }
            if self.skipping > 0 {
                let n = self.skipping.min(data.len());
                self.start += n;
                self.skipping -= n;
                if self.skipping > 0 {
                    return None;
                }
                continue;
            }
            if data.is_empty() {
                return None;
            }
            let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == data.len() && digits <= 9 {
                return None; // a length or a line: cannot tell yet
            }
            if (1..=9).contains(&digits) && data[digits] == b' ' && data[0] != b'0' {
                let len: usize = std::str::from_utf8(&data[..digits]).ok()?.parse().ok()?;
                if len > MAX_MESSAGE {
                    self.start += digits + 1;
                    self.skipping = len;
                    return Some(Frame::Oversized);
                }
                if data.len() < digits + 1 + len {
                    return None;
                }
                let msg = data[digits + 1..digits + 1 + len].to_vec();
                self.start += digits + 1 + len;
                return Some(Frame::Message(msg));
            }
            match memchr_lf(data) {
                Some(i) if i <= MAX_MESSAGE => {
                    let msg = data[..i].to_vec();
                    self.start += i + 1;
                    return Some(Frame::Message(msg));
                }
                Some(i) => {
                    self.start += i + 1;
                    return Some(Frame::Oversized);
                }
                None if data.len() > MAX_MESSAGE => {
                    self.start = self.buf.len();
                    self.skipping = usize::MAX;
                    return Some(Frame::Oversized);
                }
                None => return None,
            }
        }
    }

    /// At end of stream: a last line without its LF is still a message.
    pub fn finish(&mut self) -> Option<Frame> {
        let data = &self.buf[self.start..];
        self.start = self.buf.len();
        (self.skipping == 0 && !data.iter().all(u8::is_ascii_whitespace))
            .then(|| Frame::Message(data.to_vec()))
    }
}

fn memchr_lf(d: &[u8]) -> Option<usize> {
    d.iter().position(|b| *b == b'\n')
}

async fn tcp_conn(
    mut sock: tokio::net::TcpStream,
    peer: SocketAddr,
    listener: Arc<str>,
    tx: mpsc::Sender<Message>,
    stats: Arc<SyslogStats>,
) {
    let mut framer = Framer::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // A read error ends the connection like end of stream does.
        let n = sock.read(&mut chunk).await.unwrap_or_default();
        let eof = n == 0;
        framer.push(&chunk[..n]);
        loop {
            let frame = match framer.next_frame() {
                Some(f) => f,
                None if eof => match framer.finish() {
                    Some(f) => f,
                    None => return,
                },
                None => break,
            };
            let bytes = match frame {
                Frame::Oversized => {
                    stats.oversized.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Frame::Message(b) => b,
            };
            let line = String::from_utf8_lossy(&bytes);
            let line = line.trim_end_matches(['\r', '\n', '\0']);
            if line.trim().is_empty() {
                continue;
            }
            stats.tcp_messages.fetch_add(1, Ordering::Relaxed);
            // TCP pushes back: when the queue is full the sender waits.
            let m = Message {
                line: line.to_string(),
                received_at: Timestamp::now(),
                listener: listener.clone(),
                peer,
            };
            if tx.send(m).await.is_err() {
                return;
            }
        }
    }
}

async fn udp_loop(
    s: UdpSocket,
    listener: Arc<str>,
    tx: mpsc::Sender<Message>,
    stats: Arc<SyslogStats>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, peer) = match s.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "syslog UDP receive failed");
                continue;
            }
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        for line in text.split('\n') {
            let line = line.trim_end_matches(['\r', '\0']);
            if line.trim().is_empty() {
                continue;
            }
            stats.udp_messages.fetch_add(1, Ordering::Relaxed);
            let m = Message {
                line: line.to_string(),
                received_at: Timestamp::now(),
                listener: listener.clone(),
                peer,
            };
            if tx.try_send(m).is_err() {
                stats.udp_dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn batcher<S: Store>(
    state: Arc<AppState<S>>,
    forced: Option<String>,
    mut rx: mpsc::Receiver<Message>,
) {
    let forced = forced.and_then(|n| riposte_decode::builtin(&n));
    loop {
        let Some(first) = rx.recv().await else { return };
        let mut msgs = vec![first];
        let deadline = tokio::time::Instant::now() + FLUSH;
        while msgs.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => msgs.push(m),
                Ok(None) | Err(_) => break,
            }
        }
        let pipeline = state.pipeline.clone();
        let decoding =
            tokio::task::spawn_blocking(move || decode_messages(&pipeline, forced, msgs)).await;
        let Ok(decoding) = decoding else {
            state.syslog.store_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let refused = decoding.rejects.len() as u64;
        let mut alerts = decoding.alerts;
        let mut correlation_events = decoding.correlation_events;
        let batch = IngestBatch {
            batch_id: new_batch_id(),
            actor: "syslog".into(),
            decoder: "syslog".into(),
            source: json!({ "via": "syslog" }),
            received: decoding.received,
            records: decoding.records,
            rejects: decoding.rejects,
            received_at: Timestamp::now(),
        };
        // Syslog cannot be re-sent on request, so a failed write is retried before giving up.
        let mut attempt = 0;
        loop {
            match state.store.ingest(batch.clone()).await {
                Ok(o) => {
                    state.syslog.stored.fetch_add(o.accepted, Ordering::Relaxed);
                    state
                        .syslog
                        .duplicates
                        .fetch_add(o.duplicates, Ordering::Relaxed);
                    state.syslog.refused.fetch_add(refused, Ordering::Relaxed);
                    state
                        .place_alerts(std::mem::take(&mut alerts), &o.new_alerts)
                        .await;
                    state
                        .correlate_events(std::mem::take(&mut correlation_events))
                        .await;
                    break;
                }
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "storing syslog batch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, messages = batch.received, "storing syslog batch failed; messages lost");
                    state.syslog.store_errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

fn decode_messages(
    p: &riposte_ingest::Pipeline,
    forced: Option<&'static dyn riposte_decode::Decoder>,
    msgs: Vec<Message>,
) -> Decoding {
    let mut out = Decoding::default();
    for (i, m) in msgs.iter().enumerate() {
        out.received += 1;
        let origin = Origin::Syslog {
            listener: m.listener.to_string(),
            peer: m.peer.to_string(),
        };
        let decoder = forced
            .or_else(|| syslog::route(syslog::strip(&m.line).1).and_then(riposte_decode::builtin));
        // Decoders get the line with the time it arrived: syslog headers often carry no year,
        // and some messages no time at all.
        let record = json!({ "message": m.line, "received_at": m.received_at.to_string() });
        let res = match decoder {
            Some(d) => p
                .decode_one(d, Input::Json(record), &origin)
                .map_err(|(e, _)| (e, d.name())),
            None => Err((
                DecodeError::record(
                    "not CEF, LEEF or PAN-OS; set --syslog-decoder to decode this sender's messages",
                ),
                "syslog",
            )),
        };
        match res {
            // Through `collect`, so the alerts reach cases and the events correlation.
            Ok(ds) => p.collect(&mut out, ds),
            Err((e, decoder)) => out.rejects.push(NewDeadLetter {
                decoder: decoder.to_string(),
                index: i as u64,
                field: e.field,
                reason: e.reason,
                raw: m.line.as_bytes().to_vec(),
                origin,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut f = Framer::default();
        let mut out = Vec::new();
        for c in chunks {
            f.push(c);
            while let Some(x) = f.next_frame() {
                out.push(x);
            }
        }
        out.extend(f.finish());
        out
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(s.as_bytes().to_vec())
    }

    #[test]
    fn both_framings_whatever_the_read_boundaries() {
        let stream = b"<1>a b\n10 <1>octet\nx<2>c\n5 hello";
        let want = vec![msg("<1>a b"), msg("<1>octet\nx"), msg("<2>c"), msg("hello")];
        // Every split of the stream into two reads gives the same messages.
        for cut in 0..stream.len() {
            assert_eq!(
                frames(&[&stream[..cut], &stream[cut..]]),
                want,
                "cut at {cut}"
            );
        }
        // Byte by byte too.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(frames(&bytes), want);
    }

    #[test]
    fn a_line_that_starts_with_digits_is_still_a_line() {
        assert_eq!(
            frames(&[b"1,2018/11/30 16:44:36,0128,THREAT\n"]),
            vec![msg("1,2018/11/30 16:44:36,0128,THREAT")]
        );
        assert_eq!(frames(&[b"123\n"]), vec![msg("123")]);
    }

    #[test]
    fn oversized_frames_are_skipped_and_counted() {
        let big = format!("{} {}", MAX_MESSAGE + 1, "x".repeat(MAX_MESSAGE + 1));
        let stream = format!("{big}<1>after\n");
        assert_eq!(
            frames(&[stream.as_bytes()]),
            vec![Frame::Oversized, msg("<1>after")]
        );
        let long_line = format!("{}\n<1>next\n", "y".repeat(MAX_MESSAGE + 10));
        let chunks: Vec<&[u8]> = long_line.as_bytes().chunks(4096).collect();
        assert_eq!(frames(&chunks), vec![Frame::Oversized, msg("<1>next")]);
    }
}
