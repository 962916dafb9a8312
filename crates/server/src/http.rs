//! The `/api/v1` routes, `/healthz` and `/edl/{list}.txt`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use riposte_decode::framing::{self, FramingError};
use riposte_domain::{Origin, Timestamp};
use riposte_ingest::{Decoding, Input, new_batch_id};
use riposte_store::{IngestBatch, ListQuery, Page, Store};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::auth::{Permission, Principal, authenticate};
use crate::{ApiError, AppState};

pub fn router<S: Store>(state: Arc<AppState<S>>) -> Router {
    let api = Router::new()
        .route("/ingest/{decoder}", post(ingest::<S>))
        .route("/alerts", get(list_alerts::<S>))
        .route("/alerts/{id}", get(get_alert::<S>))
        .route("/events", get(list_events::<S>))
        .route("/events/{id}", get(get_event::<S>))
        .route("/deadletters", get(list_dead_letters::<S>))
        .route("/deadletters/{id}", get(get_dead_letter::<S>))
        .route("/deadletters/{id}/reingest", post(reingest::<S>))
        .route("/cases", get(crate::cases::list::<S>))
        .route(
            "/cases/{id}",
            get(crate::cases::get_one::<S>).patch(crate::cases::patch::<S>),
        )
        .route("/actions", get(crate::respond::list::<S>))
        .route("/actions/{id}", get(crate::respond::get_action::<S>))
        .route("/actions/{id}/approve", post(crate::respond::approve::<S>))
        .route("/actions/{id}/reject", post(crate::respond::reject::<S>))
        .route("/actions/{id}/undo", post(crate::respond::undo::<S>))
        .route("/actions/{id}/confirm", post(crate::respond::confirm::<S>))
        .route("/runs/{id}", get(crate::respond::get_run::<S>))
        .route("/admin/reload", post(reload::<S>))
        .route("/stats", get(stats::<S>))
        .route("/audit", get(audit::<S>))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authenticate::<S>,
        ))
        // The body limit is enforced by the handler's own check too, with a JSON answer.
        .layer(DefaultBodyLimit::max(state.limits.max_body));
    Router::new()
        .route("/healthz", get(healthz))
        // Outside `/api/v1`: Slack signs its requests instead of sending a token.
        .route(
            "/slack/interactions",
            post(crate::slack::interactions::<S>).layer(DefaultBodyLimit::max(64 * 1024)),
        )
        // Polled by firewalls, outside `/api/v1`: access is per list (crate::edl).
        .route("/edl/{file}", get(crate::edl::serve_list::<S>))
        .nest("/api/v1", api)
        .fallback(not_found)
        .with_state(state)
}

pub(crate) type Answer = Result<Response, ApiError>;

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not found")
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "request failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage unavailable; nothing was stored, try again",
    )
}

#[derive(Debug, Deserialize)]
struct IngestParams {
    mapping: Option<String>,
}

/// Threads one request's records are decoded on: the cores there are.
fn decode_threads() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

async fn ingest<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(decoder_name): Path<String>,
    Query(params): Query<IngestParams>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    principal.require(Permission::Ingest)?;
    let decoder = state
        .decoders
        .resolve(&decoder_name, params.mapping.as_deref())
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
    let body = body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                format!(
                    "the body is larger than the {} byte limit; split it into smaller batches",
                    state.limits.max_body
                ),
            )
        } else {
            ApiError::new(status, format!("the body could not be read: {e}"))
        }
    })?;
    let batch = new_batch_id();
    let token = principal.name.clone();
    let peer_s = peer.to_string();
    let pipeline = state.pipeline.clone();
    let max_records = state.limits.max_records;
    let decoded = {
        let batch = batch.clone();
        let decoder = decoder.clone();
        tokio::task::spawn_blocking(move || -> Result<Decoding, ApiError> {
            let text = std::str::from_utf8(&body).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the body is not UTF-8: invalid byte at offset {}",
                        e.valid_up_to()
                    ),
                )
            })?;
            let raws = framing::split_raw(text, decoder.input()).map_err(|e| match e {
                FramingError::Empty => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "the body is empty: send a JSON object, a JSON array or NDJSON",
                ),
                FramingError::InvalidJson(_) => {
                    ApiError::new(StatusCode::BAD_REQUEST, e.to_string())
                }
            })?;
            if raws.len() > max_records {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "{} records in one request; at most {max_records}",
                        raws.len()
                    ),
                ));
            }
            let decoded = pipeline.decode_texts(
                &*decoder,
                &raws,
                |i| Origin::Http {
                    batch: batch.clone(),
                    token: token.clone(),
                    peer: peer_s.clone(),
                    index: i,
                },
                decode_threads(),
            );
            // A body that is one document which is not JSON is a bad request, not a record.
            if let [only] = decoded.rejects.as_slice()
                && decoded.received == 1
                && only.field == "$"
                && only.reason.starts_with("not valid JSON")
            {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the body is {}", only.reason),
                ));
            }
            Ok(decoded)
        })
        .await
        .map_err(internal)??
    };
    let rejected: Vec<Value> = decoded
        .rejects
        .iter()
        .map(|d| json!({ "index": d.index, "field": d.field, "reason": d.reason }))
        .collect();
    let received = decoded.received;
    let stored = decoded.records.len();
    let alerts = decoded.alerts;
    let correlation_events = decoded.correlation_events;
    let outcome = state
        .store
        .ingest(IngestBatch {
            batch_id: batch.clone(),
            actor: principal.name.clone(),
            decoder: decoder.name().to_string(),
            source: json!({ "via": "http", "peer": peer.to_string() }),
            received,
            records: decoded.records,
            rejects: decoded.rejects,
            received_at: Timestamp::now(),
        })
        .await
        .map_err(internal)?;
    state.place_alerts(alerts, &outcome.new_alerts).await;
    state.correlate_events(correlation_events).await;
    let rejected: Vec<Value> = rejected
        .into_iter()
        .zip(outcome.dead_letter_ids.iter())
        .map(|(mut r, id)| {
            r["dead_letter"] = json!(id);
            r
        })
        .collect();
    // All records refused: the request as a whole failed (the records are kept as dead letters).
    let status = if stored == 0 && !rejected.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let answer = json!({
        "batch": batch,
        "received": received,
        "accepted": outcome.accepted,
        "duplicates": outcome.duplicates,
        "rejected": rejected,
    });
    Ok((status, Json(answer)).into_response())
}

/// Reloads decoys, enrichment and Sigma rules without a restart; a part that fails keeps its old set and
/// the answer (422) says which file, line and why.
async fn reload<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
) -> Answer {
    principal.require(Permission::Admin)?;
    let Some(r) = state.reload.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "nothing to reload: the server runs without a configuration file",
        ));
    };
    let result = tokio::task::spawn_blocking(move || r.reload())
        .await
        .map_err(internal)?;
    let detail = match &result {
        Ok(loaded) => json!({ "via": "api", "loaded": loaded }),
        Err(e) => json!({ "via": "api", "refused": e }),
    };
    state
        .store
        .audit(&principal.name, "admin.reload", detail)
        .await
        .map_err(internal)?;
    match result {
        Ok(loaded) => Ok(Json(json!({ "reloaded": loaded })).into_response()),
        Err(e) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ListParams {
    limit: Option<u32>,
    cursor: Option<i64>,
    decoder: Option<String>,
    since: Option<String>,
    until: Option<String>,
    min_severity: Option<i64>,
}

/// A time query parameter as epoch milliseconds; a bad one is a 400 naming the parameter.
pub(crate) fn time(name: &str, v: Option<String>) -> Result<Option<i64>, ApiError> {
    v.map(|s| {
        riposte_domain::time::parse(&s)
            .map(|t| t.as_millisecond())
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("query parameter `{name}`: {e}"),
                )
            })
    })
    .transpose()
}

fn list_query(p: ListParams) -> Result<ListQuery, ApiError> {
    Ok(ListQuery {
        limit: p.limit.unwrap_or(100),
        cursor: p.cursor,
        decoder: p.decoder,
        since_ms: time("since", p.since)?,
        until_ms: time("until", p.until)?,
        min_severity: p.min_severity,
    })
}

fn page_response(page: Page) -> Response {
    let items: Vec<Box<RawValue>> = page
        .items
        .into_iter()
        .filter_map(|d| RawValue::from_string(d).ok())
        .collect();
    Json(json!({ "items": items, "next_cursor": page.next_cursor })).into_response()
}

pub(crate) fn doc_response(doc: Option<String>, what: &str) -> Answer {
    match doc.map(RawValue::from_string) {
        Some(Ok(raw)) => Ok(Json(raw).into_response()),
        Some(Err(e)) => Err(internal(e)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no {what} with that id"),
        )),
    }
}

async fn list_alerts<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Query(p): Query<ListParams>,
) -> Answer {
    principal.require(Permission::Read)?;
    let q = list_query(p)?;
    Ok(page_response(
        state.store.alerts(&q).await.map_err(internal)?,
    ))
}

async fn get_alert<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer {
    principal.require(Permission::Read)?;
    doc_response(state.store.alert(&id).await.map_err(internal)?, "alert")
}

async fn list_events<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Query(p): Query<ListParams>,
) -> Answer {
    principal.require(Permission::Read)?;
    let q = list_query(p)?;
    Ok(page_response(
        state.store.events(&q).await.map_err(internal)?,
    ))
}

async fn get_event<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer {
    principal.require(Permission::Read)?;
    doc_response(state.store.event(&id).await.map_err(internal)?, "event")
}

async fn list_dead_letters<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Query(p): Query<ListParams>,
) -> Answer {
    principal.require(Permission::Read)?;
    let q = list_query(p)?;
    let items = state.store.dead_letters(&q).await.map_err(internal)?;
    let next = if items.len() as u32 >= q.limit.clamp(1, 1000) {
        items.last().map(|d| d.id)
    } else {
        None
    };
    Ok(Json(json!({ "items": items, "next_cursor": next })).into_response())
}

async fn get_dead_letter<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<i64>,
) -> Answer {
    principal.require(Permission::Read)?;
    match state.store.dead_letter(id).await.map_err(internal)? {
        Some(d) => Ok(Json(d).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no dead letter with that id",
        )),
    }
}

#[derive(Debug, Deserialize)]
struct ReingestParams {
    decoder: Option<String>,
    mapping: Option<String>,
}

/// Decodes a dead letter again (after a decoder fix, or with another decoder) and stores it.
async fn reingest<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<i64>,
    Query(p): Query<ReingestParams>,
) -> Answer {
    principal.require(Permission::Triage)?;
    let dl = state
        .store
        .dead_letter(id)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no dead letter with that id"))?;
    if let Some(done) = &dl.reingested_as {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("dead letter {id} was already re-ingested as {done}"),
        ));
    }
    let name = p.decoder.unwrap_or_else(|| dl.decoder.clone());
    let decoder = state
        .decoders
        .resolve(&name, p.mapping.as_deref())
        .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
    let origin: Origin = serde_json::from_value(dl.origin.clone()).unwrap_or(Origin::Http {
        batch: format!("deadletter-{id}"),
        token: principal.name.clone(),
        peer: String::new(),
        index: dl.index,
    });
    // Decoded as a one-record chunk, the same as an ingest request: the alerts it yields go
    // on to cases and playbooks, and its events to Sigma correlation.
    let decoded = state.pipeline.decode_chunk(
        &*decoder,
        [Input::Text(&dl.raw)],
        |_| origin.clone(),
        |_| dl.index,
    );
    if let Some(e) = decoded.rejects.first() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("record {}: field {}: {}", dl.index, e.field, e.reason),
        ));
    }
    let first_id = decoded
        .records
        .first()
        .map(|r| r.id.clone())
        .unwrap_or_default();
    let outcome = state
        .store
        .ingest(IngestBatch {
            batch_id: new_batch_id(),
            actor: principal.name.clone(),
            decoder: decoder.name().to_string(),
            source: json!({ "via": "deadletter", "dead_letter": id }),
            received: 1,
            records: decoded.records,
            rejects: Vec::new(),
            received_at: Timestamp::now(),
        })
        .await
        .map_err(internal)?;
    state
        .place_alerts(decoded.alerts, &outcome.new_alerts)
        .await;
    state.correlate_events(decoded.correlation_events).await;
    state
        .store
        .mark_reingested(id, &first_id, &principal.name)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "dead_letter": id, "record": first_id, "accepted": outcome.accepted, "duplicates": outcome.duplicates })).into_response())
}

async fn stats<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
) -> Answer {
    principal.require(Permission::Read)?;
    let (alerts, events) = state.store.counts().await.map_err(internal)?;
    Ok(Json(json!({
        "alerts": alerts,
        "events": events,
        "syslog": state.syslog.snapshot(),
        "correlation": state.correlation.as_ref().map(|c| c.stats().snapshot()),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
struct AuditParams {
    after: Option<u64>,
    limit: Option<u32>,
}

async fn audit<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Query(p): Query<AuditParams>,
) -> Answer {
    principal.require(Permission::Admin)?;
    let records = state
        .store
        .audit_records(p.after.unwrap_or(0), p.limit.unwrap_or(100).clamp(1, 1000))
        .await
        .map_err(internal)?;
    let items: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "prev": hex::encode(r.prev),
                "hash": hex::encode(r.hash),
                "body": serde_json::from_slice::<Value>(&r.body).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}
