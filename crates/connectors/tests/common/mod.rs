//! A stand-in for a vendor's API on 127.0.0.1: it records every request exactly as it
//! arrived (method, path, query, headers, body) and answers with whatever the test's
//! handler says, so a test can check the request against the vendor's documentation and
//! play the vendor's answers, error shapes included.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {}: body is not JSON ({e}): {}",
                self.method, self.path, self.body
            )
        })
    }

    /// The body as `application/x-www-form-urlencoded` pairs.
    pub fn form(&self) -> BTreeMap<String, String> {
        url_decode_pairs(&self.body)
    }

    pub fn query_pairs(&self) -> BTreeMap<String, String> {
        url_decode_pairs(&self.query)
    }
}

fn url_decode_pairs(s: &str) -> BTreeMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let h = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match h.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the stand-in answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(status: u16, body: serde_json::Value) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    pub fn text(status: u16, content_type: &str, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.to_string(),
        }
    }

    pub fn empty(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Seen, usize) -> Answer + Send + Sync;

/// A running stand-in; it stops when dropped with the test's runtime.
#[derive(Clone)]
pub struct StandIn {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StandIn {
    /// Starts a stand-in whose `handler` gets each request and how many came before it.
    pub async fn start(
        handler: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static,
    ) -> StandIn {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let app = {
            let seen = seen.clone();
            axum::Router::new().fallback(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let seen = seen.clone();
                    let handler = handler.clone();
                    async move {
                        let req = Seen {
                            method: method.to_string(),
                            path: uri.path().to_string(),
                            query: uri.query().unwrap_or_default().to_string(),
                            headers: headers
                                .iter()
                                .map(|(k, v)| {
                                    (
                                        k.as_str().to_string(),
                                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                    )
                                })
                                .collect(),
                            body: String::from_utf8_lossy(&body).into_owned(),
                        };
                        let n = {
                            let mut s = seen.lock().expect("stand-in lock");
                            s.push(req.clone());
                            s.len() - 1
                        };
                        let a = handler(&req, n);
                        let mut resp: Response = (
                            StatusCode::from_u16(a.status).expect("a valid status"),
                            a.body,
                        )
                            .into_response();
                        for (k, v) in a.headers {
                            resp.headers_mut().insert(
                                axum::http::HeaderName::from_bytes(k.as_bytes())
                                    .expect("header name"),
                                axum::http::HeaderValue::from_str(&v).expect("header value"),
                            );
                        }
                        resp
                    }
                },
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandIn { url, seen }
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("stand-in lock").clone()
    }
}

/// A secret store holding `(name, value)` pairs, as a connector's definition names them.
pub fn secrets(pairs: &[(&str, &str)]) -> Arc<riposte_respond::secrets::StaticSecrets> {
    Arc::new(riposte_respond::secrets::StaticSecrets(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), riposte_respond::Secret::new(*v)))
            .collect(),
    ))
}
