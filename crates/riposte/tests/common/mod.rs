//! A test kit that runs the real `riposte` binary on 127.0.0.1:0 and talks to it over HTTP.
#![allow(dead_code)]

pub mod story;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_riposte")
}

pub fn corpus(rel: &str) -> PathBuf {
    let base = std::env::var_os("RIPOSTE_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        });
    base.join(rel)
}

/// Runs `riposte ARGS…` to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env("RIPOSTE_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub struct Server {
    pub child: Child,
    pub http: String,
    pub syslog_tcp: Option<String>,
    pub syslog_udp: Option<String>,
    pub token: String,
    pub data: PathBuf,
}

impl Server {
    /// Starts `riposte serve` on 127.0.0.1:0 with `extra` arguments and waits until it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Server::start_logging(data, extra, "warn", None)
    }

    /// Like [`Server::start`], logging at `level` (`RIPOSTE_LOG`) into `log` when given.
    pub fn start_logging(data: &Path, extra: &[&str], level: &str, log: Option<&Path>) -> Server {
        let stderr = match log {
            Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
            None => Stdio::null(),
        };
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .env("RIPOSTE_LOG", level)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut http, mut tcp, mut udp) = (None, None, None);
        let want_tcp = extra.contains(&"--syslog-tcp");
        let want_udp = extra.contains(&"--syslog-udp");
        while let Some(Ok(l)) = lines.next() {
            if let Some(a) = l.strip_prefix("riposte listening on http://") {
                http = Some(a.to_string());
            } else if let Some(a) = l.strip_prefix("riposte syslog tcp on ") {
                tcp = Some(a.to_string());
            } else if let Some(a) = l.strip_prefix("riposte syslog udp on ") {
                udp = Some(a.to_string());
            }
            if http.is_some() && (tcp.is_some() || !want_tcp) && (udp.is_some() || !want_udp) {
                break;
            }
        }
        let http = http.expect("the server did not say where it listens");
        let token = std::fs::read_to_string(data.join("admin.token"))
            .unwrap()
            .trim()
            .to_string();
        Server {
            child,
            http,
            syslog_tcp: tcp,
            syslog_udp: udp,
            token,
            data: data.to_path_buf(),
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        request(&self.http, "GET", path, token, b"")
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &[u8]) -> (u16, serde_json::Value) {
        request(&self.http, "POST", path, token, body)
    }

    /// Every alert, following the cursor.
    pub fn all_alerts(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut cursor: Option<i64> = None;
        loop {
            let path = match cursor {
                Some(c) => format!("/api/v1/alerts?limit=1000&cursor={c}"),
                None => "/api/v1/alerts?limit=1000".to_string(),
            };
            let (code, v) = self.get(&path, Some(&self.token));
            assert_eq!(code, 200, "{v}");
            out.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next_cursor"].as_i64() {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`; the answer's status and JSON body
/// (`Null` when the body is not JSON). Errors are returned as status 0.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, serde_json::Value) {
    match try_request(addr, method, path, token, body) {
        Ok(x) => x,
        Err(e) => (0, serde_json::Value::String(e.to_string())),
    }
}

pub fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, serde_json::Value)> {
    let auth: Vec<(&str, String)> = token
        .map(|t| vec![("Authorization", format!("Bearer {t}"))])
        .unwrap_or_default();
    request_with(addr, method, path, &auth, body)
}

/// One request with the given headers (besides Host, Content-Length and Connection).
pub fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<(u16, serde_json::Value)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    // The server may answer (413) before reading a large body; a failed write is then fine.
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP answer: {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    ))
}

/// Polls until `f` gives `Some`; fails after 60 s naming what it waited for.
pub fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waited 60 s for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Records as an NDJSON body.
pub fn ndjson(records: &[serde_json::Value]) -> Vec<u8> {
    records
        .iter()
        .map(|r| r.to_string() + "\n")
        .collect::<String>()
        .into_bytes()
}
