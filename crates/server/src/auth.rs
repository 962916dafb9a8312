//! Bearer tokens and roles. A token is a named principal; only the SHA-256 of its secret is
//! stored. Every `/api/v1` route needs one; a missing or wrong token is 401 and a token whose
//! role lacks the permission is 403, and neither says whether the thing asked for exists.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use riposte_store::Store;
use sha2::{Digest, Sha256};

use crate::{ApiError, AppState, error_response};

/// What a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Send records.
    Ingest,
    /// Read alerts, events, dead letters and stats.
    Read,
    /// Change stored state: re-ingest dead letters (later: cases).
    Triage,
    /// Approve actions.
    Approve,
    /// Tokens, audit log, configuration.
    Admin,
    /// Read the external dynamic lists (`GET /edl/{list}.txt`).
    ReadLists,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Viewer,
    Analyst,
    Approver,
    Admin,
    /// A firewall polling external dynamic lists, and nothing else.
    Feed,
}

impl Role {
    pub const NAMES: [&'static str; 6] =
        ["ingest", "viewer", "analyst", "approver", "admin", "feed"];

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "ingest" => Role::Ingest,
            "viewer" => Role::Viewer,
            "analyst" => Role::Analyst,
            "approver" => Role::Approver,
            "admin" => Role::Admin,
            "feed" => Role::Feed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Approver => "approver",
            Role::Admin => "admin",
            Role::Feed => "feed",
        }
    }

    pub fn allows(self, p: Permission) -> bool {
        use Permission as P;
        match self {
            Role::Ingest => p == P::Ingest,
            Role::Viewer => matches!(p, P::Read | P::ReadLists),
            Role::Analyst => matches!(p, P::Read | P::Triage | P::ReadLists),
            Role::Approver => matches!(p, P::Read | P::Triage | P::Approve | P::ReadLists),
            Role::Admin => true,
            Role::Feed => p == P::ReadLists,
        }
    }
}

/// The caller, as established by its token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// 403 unless the principal's role allows `p`.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden: this token's role may not do that",
            ))
        }
    }
}

/// A new random token secret: `rpt_` and 64 hex digits (256 bits).
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("rpt_{}", hex::encode(bytes)))
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Token look-ups, cached briefly so a busy ingest path does not query the store per request;
/// a revoked token stops working within the cache's lifetime.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], (Principal, Instant)>>,
}

const CACHE_TTL: Duration = Duration::from_secs(10);

impl TokenCache {
    pub async fn principal<S: Store>(&self, store: &S, secret: &str) -> Option<Principal> {
        let hash = hash_secret(secret);
        if let Ok(map) = self.entries.read()
            && let Some((p, at)) = map.get(&hash)
            && at.elapsed() < CACHE_TTL
        {
            return Some(p.clone());
        }
        let found = match store.token_by_hash(hash).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "token look-up failed");
                None
            }
        };
        let (name, role) = found?;
        let role = Role::parse(&role)?;
        let p = Principal { name, role };
        if let Ok(mut map) = self.entries.write() {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(hash, (p.clone(), Instant::now()));
        }
        Some(p)
    }
}

/// Middleware on `/api/v1`: establishes the [`Principal`] or answers 401.
pub async fn authenticate<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    mut req: Request,
    next: Next,
) -> Response {
    let secret = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|s| s.trim().to_string());
    let principal = match secret {
        Some(s) if !s.is_empty() && s.len() <= 256 => {
            state.tokens.principal(&*state.store, &s).await
        }
        _ => None,
    };
    match principal {
        Some(p) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        None => {
            let mut r = error_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized: a valid bearer token is required",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"riposte\""),
            );
            r.into_response()
        }
    }
}
