//! riposte's online face: the HTTP API under `/api/v1` (bearer tokens, roles), the syslog
//! listeners, live case formation ([`live`]) and live Sigma correlation ([`correlation`]), and
//! the feeds of the response engine (case changes, new alerts, ticks). Handlers parse
//! requests, call the ingest pipeline and the store, and shape answers; they hold no business
//! logic of their own.
//!
//! Invariant: an ingest request is answered only after its records, dead letters and audit
//! record are committed ([`riposte_store::Store::ingest`] returns after the commit).

pub mod auth;
mod cases;
pub mod correlation;
pub mod edl;
mod http;
pub mod live;
pub mod respond;
pub mod slack;
pub mod syslog;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use riposte_ingest::{DecoderSet, Pipeline};
use riposte_store::Store;
use serde_json::json;

pub use auth::{Permission, Principal, Role, TokenCache, hash_secret, new_secret};
pub use http::router;
pub use syslog::{SyslogConfig, SyslogStats};

/// Limits that protect the server from oversized input.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes (413 beyond).
    pub max_body: usize,
    /// Most records in one request (413 beyond).
    pub max_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 32 << 20,
            max_records: 100_000,
        }
    }
}

/// Everything a handler needs.
pub struct AppState<S: Store> {
    pub store: Arc<S>,
    pub pipeline: Arc<Pipeline>,
    pub decoders: DecoderSet,
    pub tokens: TokenCache,
    pub limits: Limits,
    pub syslog: Arc<SyslogStats>,
    /// Live case formation; `None` when cases are off.
    pub cases: Option<live::LiveCases>,
    /// Live Sigma correlation; `None` when not started.
    pub correlation: Option<correlation::LiveCorrelation>,
    /// Reloads decoys and enrichment (`POST /api/v1/admin/reload`, SIGHUP).
    pub reload: Option<Arc<dyn Reload>>,
    /// The response engine; `None` when the configuration has no `respond:`.
    pub respond: Option<Arc<dyn respond::Responder>>,
    /// Approve / Reject clicks from Slack; `None` without `respond: slack:`.
    pub slack: Option<Arc<slack::SlackApprovals>>,
    /// Which external dynamic lists `GET /edl/{list}.txt` serves, and to whom.
    pub edl: edl::EdlAccess,
}

/// Reloads the reloadable configuration: all or nothing per part, the parts that fail keep
/// what they had. Returns what was loaded (counts per part) or why a part was refused.
pub trait Reload: Send + Sync {
    fn reload(&self) -> Result<serde_json::Value, String>;
}

impl<S: Store> AppState<S> {
    pub fn new(
        store: Arc<S>,
        pipeline: Arc<Pipeline>,
        decoders: DecoderSet,
        limits: Limits,
    ) -> AppState<S> {
        AppState {
            store,
            pipeline,
            decoders,
            tokens: TokenCache::default(),
            limits,
            syslog: Arc::new(SyslogStats::default()),
            cases: None,
            correlation: None,
            reload: None,
            respond: None,
            slack: None,
            edl: edl::EdlAccess::default(),
        }
    }

    /// Hands the alerts a commit stored now to live case formation.
    /// Starts `alert.received` playbooks for them too (off the request path).
    pub async fn place_alerts(&self, alerts: Vec<riposte_domain::Alert>, new_ids: &[String]) {
        if let Some(r) = &self.respond {
            respond::alerts_received(r.clone(), &alerts, new_ids);
        }
        if let Some(c) = &self.cases {
            c.place(live::stored_now(alerts, new_ids)).await;
        }
    }

    /// Hands the events a commit stored, those Sigma correlations need, to live correlation.
    pub async fn correlate_events(&self, events: Vec<riposte_domain::Event>) {
        if let Some(c) = &self.correlation {
            c.feed(events).await;
        }
    }
}

/// A JSON error answer: `{"error": "..."}`.
pub fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// An error a handler answers with: a status and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status, self.message)
    }
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve_http<S: Store>(
    state: Arc<AppState<S>>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
