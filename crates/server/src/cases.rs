//! `/api/v1/cases`: list (by risk, filtered), one case, and an analyst's change (status,
//! assignee, verdict), each change on the audit record with the principal's name.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use riposte_domain::EntityKind;
use riposte_store::{CasePatch, CaseQuery, Store};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use crate::auth::{Permission, Principal};
use crate::http::{Answer, doc_response, internal, time};
use crate::{ApiError, AppState};

const TIERS: [&str; 4] = ["low", "medium", "high", "validated"];
const STATUSES: [&str; 4] = ["open", "in_progress", "closed", "merged"];
const VERDICTS: [&str; 3] = ["true_positive", "false_positive", "benign"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaseParams {
    limit: Option<u32>,
    tier: Option<String>,
    status: Option<String>,
    /// `kind:value`, e.g. `user:alice` or `ip:10.0.0.5`.
    entity: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

fn bad(msg: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, msg)
}

fn one_of(name: &str, v: Option<String>, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    match v {
        Some(x) if !allowed.contains(&x.as_str()) => Err(bad(format!(
            "`{name}` must be one of {}; got {x:?}",
            allowed.join(", ")
        ))),
        other => Ok(other),
    }
}

pub(crate) async fn list<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Query(p): Query<CaseParams>,
) -> Answer {
    principal.require(Permission::Read)?;
    let entity = match p.entity {
        None => None,
        Some(e) => {
            let (kind, value) = e
                .split_once(':')
                .ok_or_else(|| bad(format!("`entity` must be kind:value; got {e:?}")))?;
            let Some(k) = EntityKind::parse(kind) else {
                let kinds: Vec<&str> = EntityKind::ALL.iter().map(|k| k.as_str()).collect();
                return Err(bad(format!(
                    "`entity` kind must be one of {}; got {kind:?}",
                    kinds.join(", ")
                )));
            };
            // Entities are stored canonical: look the value up the same way.
            let canonical = state
                .pipeline
                .canonicaliser()
                .canonical(k, value)
                .unwrap_or_else(|| value.to_string());
            Some((kind.to_string(), canonical))
        }
    };
    let q = CaseQuery {
        limit: p.limit.unwrap_or(100),
        tier: one_of("tier", p.tier, &TIERS)?,
        status: one_of("status", p.status, &STATUSES)?,
        entity,
        since_ms: time("since", p.since)?,
        until_ms: time("until", p.until)?,
    };
    let items: Vec<Box<RawValue>> = state
        .store
        .cases(&q)
        .await
        .map_err(internal)?
        .into_iter()
        .filter_map(|d| RawValue::from_string(d).ok())
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

pub(crate) async fn get_one<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Answer {
    principal.require(Permission::Read)?;
    doc_response(state.store.case(&id).await.map_err(internal)?, "case")
}

pub(crate) async fn patch<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    principal.require(Permission::Triage)?;
    let p: CasePatch = serde_json::from_slice(&body).map_err(|e| {
        bad(format!(
            "the body must be a JSON object with `status`, `assignee` and/or `verdict`: {e}"
        ))
    })?;
    if p == CasePatch::default() {
        return Err(bad(
            "nothing to change: give `status`, `assignee` or `verdict`".into(),
        ));
    }
    one_of("status", p.status.clone(), &STATUSES[..3])?;
    one_of("verdict", p.verdict.clone(), &VERDICTS)?;
    if p.assignee
        .as_deref()
        .is_some_and(|a| a.trim().is_empty() || a.len() > 200)
    {
        return Err(bad("`assignee` must be 1–200 characters".into()));
    }
    doc_response(
        state
            .store
            .update_case(&id, &p, &principal.name)
            .await
            .map_err(internal)?,
        "case",
    )
}
