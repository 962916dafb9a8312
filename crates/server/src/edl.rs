//! `GET /edl/{list}.txt`: the External Dynamic Lists riposte keeps (`kind: edl`
//! connectors write them), served as firewalls poll them — plain text, one entry per line.
//!
//! Firewalls cannot send riposte's bearer tokens the way people do, so each served list
//! says who may read it: sources in an allow-list of networks, and/or holders of an API
//! token whose role may read lists (`feed`, or any reading role), sent as `Authorization:
//! Bearer <token>` or as the password of HTTP Basic (PAN-OS, FortiGate and Check Point poll
//! with a user name and password). The source address is the TCP peer's; riposte does not
//! read `X-Forwarded-For`, so behind a proxy allow the proxy, or use a token. A list that
//! is not configured here is 404, whatever the store holds.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use riposte_store::Store;

use crate::auth::Permission;
use crate::{AppState, error_response};

/// An IP network (`10.0.0.0/8`, `192.0.2.10` = one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    len: u8,
}

impl Network {
    pub fn parse(text: &str) -> Result<Network, String> {
        let t = text.trim();
        let (addr, len) = match t.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (t, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{t}` is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("`{t}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Network { addr, len })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.len),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.len),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], len: u8) -> bool {
    let full = usize::from(len / 8);
    let rest = len % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// Who may read one list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListAccess {
    /// A token whose role may read lists is enough.
    pub token: bool,
    /// Sources that need no token.
    pub allow: Vec<Network>,
}

/// The lists `GET /edl/{list}.txt` serves, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdlAccess {
    pub lists: BTreeMap<String, ListAccess>,
}

/// The token in `Authorization`: a bearer token, or the password of HTTP Basic.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    let token = match scheme.to_ascii_lowercase().as_str() {
        "bearer" => rest.trim().to_string(),
        "basic" => {
            let decoded = base64_decode(rest.trim())?;
            let text = String::from_utf8(decoded).ok()?;
            text.split_once(':')?.1.to_string()
        }
        _ => return None,
    };
    (!token.is_empty() && token.len() <= 256).then_some(token)
}

/// Standard base64 with padding, strictly (HTTP Basic credentials).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (i, chunk) in b.chunks(4).enumerate() {
        let last = i == b.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

pub(crate) async fn serve_list<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let not_found = || error_response(StatusCode::NOT_FOUND, "not found");
    let Some(name) = file.strip_suffix(".txt") else {
        return not_found();
    };
    let Some(access) = state.edl.lists.get(name) else {
        return not_found();
    };
    let allowed_source = access.allow.iter().any(|n| n.contains(peer.ip()));
    let mut allowed = allowed_source;
    if !allowed
        && access.token
        && let Some(token) = presented_token(&headers)
    {
        allowed = state
            .tokens
            .principal(&*state.store, &token)
            .await
            .is_some_and(|p| p.role.allows(Permission::ReadLists));
    }
    if !allowed {
        if access.token {
            let mut r = error_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized: a token whose role may read lists is required",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"riposte edl\""),
            );
            return r;
        }
        return error_response(
            StatusCode::FORBIDDEN,
            "forbidden: this address may not read this list",
        );
    }
    match state.store.edl_entries(name).await {
        Ok(entries) => {
            let mut body = entries.join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, list = name, "reading an external dynamic list failed");
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "the list cannot be read now",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_what_they_should() {
        let n = |t: &str| Network::parse(t).expect(t);
        let ip = |t: &str| t.parse::<IpAddr>().expect(t);
        assert!(n("10.0.0.0/8").contains(ip("10.200.1.1")));
        assert!(!n("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(n("192.0.2.10").contains(ip("192.0.2.10")));
        assert!(!n("192.0.2.10").contains(ip("192.0.2.11")));
        assert!(n("198.51.100.128/25").contains(ip("198.51.100.200")));
        assert!(!n("198.51.100.128/25").contains(ip("198.51.100.127")));
        assert!(n("0.0.0.0/0").contains(ip("203.0.113.1")));
        assert!(n("192.0.2.0/24").contains(ip("::ffff:192.0.2.5")));
        assert!(n("2001:db8::/32").contains(ip("2001:db8:1::1")));
        assert!(!n("2001:db8::/32").contains(ip("192.0.2.5")));
        for bad in ["", "10.0.0.0/33", "2001:db8::/129", "x/8", "10.0.0.0/"] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_come_as_bearer_or_as_the_basic_password() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::AUTHORIZATION, HeaderValue::from_str(v).expect(v));
            presented_token(&m)
        };
        assert_eq!(h("Bearer rpt_abc").as_deref(), Some("rpt_abc"));
        // base64("paloalto:rpt_abc")
        assert_eq!(
            h("Basic cGFsb2FsdG86cnB0X2FiYw==").as_deref(),
            Some("rpt_abc")
        );
        assert_eq!(h("Basic !!!!"), None);
        assert_eq!(h("Basic cGFsb2FsdG8="), None, "no password");
        assert_eq!(h("Digest x"), None);
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode("YWJj").as_deref(), Some(&b"abc"[..]));
        assert_eq!(base64_decode("YQ==YWJj"), None);
        assert_eq!(base64_decode("YQ"), None);
    }
}
