//! The SMTP connector against a real SMTP server each test starts on 127.0.0.1: aiosmtpd
//! (`tests/smtp_sink.py`), with STARTTLS or implicit TLS on a certificate from a CA made for
//! the test, and AUTH that answers 535 to a wrong password. The server writes every message
//! it accepts to a file, so the tests check what really arrived.
//!
//! Needs Python 3 with `aiosmtpd` (`.ci/run` installs it); `RIPOSTE_TEST_PYTHON` picks the
//! interpreter. Without it the tests fail saying so: they never pass without a server.

mod common;
#[path = "common/tls.rs"]
mod tls;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use riposte_connectors::smtp;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError, Templates};
use serde_json::{Value, json};

const USER: &str = "riposte@corp.example";
const PASSWORD: &str = "Smtp-Pw-4d8e";

/// The first interpreter that has aiosmtpd.
fn python() -> String {
    let candidates: Vec<String> = match std::env::var("RIPOSTE_TEST_PYTHON") {
        Ok(p) => vec![p],
        Err(_) => vec!["python3".into(), "/usr/bin/python3".into()],
    };
    for p in &candidates {
        let ok = Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p.clone();
        }
    }
    panic!(
        "none of {candidates:?} can import aiosmtpd: these tests run a real SMTP server; \
         install it (`python3 -m pip install aiosmtpd`; .ci/run does)"
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A running aiosmtpd, stopped when dropped.
struct Sink {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    ca: PathBuf,
}

impl Sink {
    /// `tls`: starttls, implicit or none; with AUTH required when `auth`.
    fn start(tls_mode: &str, auth: bool) -> Sink {
        let python = python();
        let dir = tempfile::tempdir().expect("tempdir");
        let files = tls::issue(dir.path());
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .args(["--port", &port.to_string(), "--tls", tls_mode])
            .arg("--cert")
            .arg(&files.cert)
            .arg("--key")
            .arg(&files.key)
            .arg("--out")
            .arg(dir.path().join("received.jsonl"));
        if auth {
            cmd.args(["--user", USER, "--password", PASSWORD]);
        }
        let log = std::fs::File::create(dir.path().join("sink.log")).expect("log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the SMTP sink");
        let mut s = Sink {
            child,
            dir,
            port,
            ca: files.ca,
        };
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("the SMTP sink exited ({status}): {}", s.log());
            }
            assert!(
                Instant::now() < until,
                "the SMTP sink did not listen: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sink.log")).unwrap_or_default()
    }

    /// Every message the server accepted, in order.
    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("received.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn secrets(password: &str) -> Arc<StaticSecrets> {
    common::secrets(&[("smtp_pw", password)])
}

fn mail(port: u16, tls_mode: &str, extra: &str, password: &str) -> Arc<dyn Connector> {
    let text = format!(
        "name: mail\nkind: smtp\nhost: 127.0.0.1\nport: {port}\ntls: {tls_mode}\nfrom: \"riposte <riposte@corp.example>\"\nto: [soc@corp.example, oncall@corp.example]\npublic_url: https://riposte.corp.example/\ntimeout: 10s\n{extra}"
    );
    Arc::new(
        smtp::load("mail.yaml", &text, secrets(password)).unwrap_or_else(|e| panic!("{text}: {e}")),
    )
}

fn with_login(ca: &std::path::Path) -> String {
    format!(
        "ca_file: {}\nusername: {USER}\npassword: smtp_pw\n",
        ca.display()
    )
}

fn notify(params: Value) -> CallRequest {
    CallRequest {
        action_id: "act-1".into(),
        idempotency_key: "run-7:step-2:0".into(),
        operation: "notify".into(),
        params,
        undo: Value::Null,
        context: json!({
            "case": {
                "id": "case-0c41e2", "tier": "high", "risk": 82,
                "tactics": ["credential-access", "lateral-movement"],
                "entities": [
                    {"type": "host", "role": "target", "value": "ws-042.corp.example"},
                    {"type": "user", "role": "actor", "value": "CORP\\alice"}
                ]
            },
            "playbook": {"id": "pb-1", "name": "contain-host", "version": 1},
            "run": {"id": "run-7"}
        }),
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn notify_over_starttls_delivers_the_summary_and_the_case_link() {
    let s = Sink::start("starttls", true);
    let c = mail(s.port, "starttls", &with_login(&s.ca), PASSWORD);
    let spec = c.operation("notify").expect("notify");
    assert_eq!(spec.class, riposte_respond::Class::Auto);
    assert_eq!(spec.inverse, None);

    let out = c
        .call(&notify(
            json!({"message": "Host contained; please review."}),
        ))
        .await
        .expect("sent");
    assert_eq!(
        out.fields["message_id"],
        json!("<run-7-step-2-0.riposte@corp.example>")
    );
    assert!(
        out.fields["response"]
            .as_str()
            .unwrap_or("")
            .starts_with("250"),
        "{out:?}"
    );

    let got = s.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(m["tls"], json!(true), "STARTTLS was used");
    assert_eq!(m["login"], json!(USER));
    assert_eq!(m["mail_from"], json!("riposte@corp.example"));
    assert_eq!(
        m["rcpt_tos"],
        json!(["soc@corp.example", "oncall@corp.example"])
    );
    let data = m["data"].as_str().expect("data");
    for want in [
        "Subject: [riposte] Case case-0c41e2: high, risk 82\r\n",
        "From: riposte <riposte@corp.example>\r\n",
        "Message-ID: <run-7-step-2-0.riposte@corp.example>\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Host contained; please review.\r\n",
        "Tactics: credential-access, lateral-movement\r\n",
        "  user CORP\\alice (actor)\r\n",
        "Playbook: contain-host\r\n",
        "Open the case: https://riposte.corp.example/api/v1/cases/case-0c41e2\r\n",
    ] {
        assert!(data.contains(want), "missing {want:?} in:\n{data}");
    }
    assert!(!data.contains(PASSWORD));
}

#[tokio::test]
async fn implicit_tls_a_step_s_recipients_and_a_subject_that_cannot_inject_headers() {
    let s = Sink::start("implicit", true);
    let c = mail(s.port, "implicit", &with_login(&s.ca), PASSWORD);
    c.call(&notify(json!({
        "to": ["ir-lead@corp.example"],
        "subject": "Urgent\r\nBcc: attacker@evil.example",
    })))
    .await
    .expect("sent");
    let got = s.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["tls"], json!(true));
    assert_eq!(got[0]["rcpt_tos"], json!(["ir-lead@corp.example"]));
    let data = got[0]["data"].as_str().expect("data");
    assert!(!data.contains("\r\nBcc:"), "{data}");
    assert!(
        data.contains("Subject: Urgent  Bcc: attacker@evil.example\r\n"),
        "{data}"
    );

    let e = c
        .call(&notify(json!({"to": "not an address"})))
        .await
        .expect_err("bad address");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");
    assert!(e.to_string().contains("not an address"), "{e}");
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_rejection_without_the_password() {
    let s = Sink::start("starttls", true);
    let c = mail(s.port, "starttls", &with_login(&s.ca), "Wrong-Pw-55aa");
    let e = c.call(&notify(json!({}))).await.expect_err("535");
    let text = e.to_string();
    assert!(
        matches!(
            e,
            ConnectorError::Rejected {
                status: Some(535),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(text.contains(USER), "{text}");
    assert!(text.contains("`smtp_pw`"), "names the secret: {text}");
    assert!(!text.contains("Wrong-Pw-55aa"), "{text}");
    assert!(!format!("{e:?}").contains("Wrong-Pw-55aa"));
    assert!(!e.retryable());
    assert!(s.received().is_empty());
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_before_anything_is_sent() {
    let s = Sink::start("starttls", true);
    // No ca_file: the system's trust store does not know the test CA.
    let c = mail(
        s.port,
        "starttls",
        &format!("username: {USER}\npassword: smtp_pw\n"),
        PASSWORD,
    );
    let e = c.call(&notify(json!({}))).await.expect_err("untrusted");
    assert!(e.to_string().contains("TLS"), "{e}");
    assert!(e.to_string().contains("ca_file"), "{e}");
    assert!(!e.retryable(), "{e:?}");
    assert!(s.received().is_empty());
}

#[tokio::test]
async fn plain_smtp_to_this_machine_works_starttls_is_required_when_asked_and_a_refused_connection_is_retryable()
 {
    let s = Sink::start("none", false);
    let c = mail(s.port, "none", "", "unused");
    c.call(&notify(json!({}))).await.expect("sent");
    let got = s.received();
    assert_eq!(got[0]["tls"], json!(false));
    assert_eq!(got[0]["login"], Value::Null);

    // A server that offers no STARTTLS gets nothing from a `tls: starttls` connector.
    let c = mail(s.port, "starttls", &with_login(&s.ca), PASSWORD);
    let e = c.call(&notify(json!({}))).await.expect_err("no STARTTLS");
    assert!(e.to_string().contains("STARTTLS"), "{e}");
    assert!(!e.retryable(), "{e:?}");
    assert_eq!(s.received().len(), 1);

    let c = mail(free_port(), "none", "", "unused");
    let e = c.call(&notify(json!({}))).await.expect_err("refused");
    assert!(e.retryable(), "{e:?}");
}

#[test]
fn definitions_that_would_leak_or_cannot_work_name_the_field() {
    let base =
        "name: mail\nkind: smtp\nfrom: riposte@corp.example\npublic_url: https://r.example\n";
    let load = |extra: &str| {
        let text = format!("{base}{extra}");
        smtp::load("mail.yaml", &text, secrets("x")).expect_err(&text)
    };
    let e = load("host: smtp.corp.example\ntls: none\n");
    assert!(e.message.contains("in clear"), "{e}");
    assert_eq!(e.line, 6, "{e}");
    let e = load("host: smtp.corp.example\ntls: sometimes\n");
    assert!(e.to_string().contains("starttls"), "{e}");
    let e = load("host: smtp.corp.example\ntls: starttls\nusername: u\n");
    assert!(e.message.contains("password"), "{e}");
    let e = load("host: smtp.corp.example:587\ntls: starttls\n");
    assert!(e.message.contains("without scheme or port"), "{e}");
    let e = load("host: h\ntls: starttls\nca_file: /nonexistent.pem\n");
    assert!(e.message.contains("ca_file"), "{e}");
    let e = load("host: h\ntls: starttls\nto: [\"not an address\"]\n");
    assert!(e.message.contains("`to`"), "{e}");
    let e = smtp::load(
        "mail.yaml",
        "name: mail\nkind: smtp\nhost: h\ntls: starttls\nfrom: nobody\npublic_url: https://r\n",
        secrets("x"),
    )
    .expect_err("bad from");
    assert!(e.message.contains("`from`"), "{e}");
    let e = smtp::load(
        "mail.yaml",
        "name: mail\nkind: smtp\nhost: h\ntls: starttls\nfrom: a@b.example\npublic_url: riposte.corp\n",
        secrets("x"),
    )
    .expect_err("bad public_url");
    assert!(e.message.contains("public_url"), "{e}");
    smtp::load(
        "mail.yaml",
        &format!("{base}host: localhost\ntls: none\n"),
        secrets("x"),
    )
    .expect("plain SMTP to this machine");
}

#[tokio::test]
async fn no_recipients_anywhere_is_a_configuration_error() {
    let c = smtp::load(
        "mail.yaml",
        "name: mail\nkind: smtp\nhost: 127.0.0.1\nport: 9\ntls: none\nfrom: a@b.example\npublic_url: https://r.example\n",
        secrets("x"),
    )
    .expect("loads");
    let e = c.call(&notify(json!({}))).await.expect_err("no recipients");
    assert!(e.to_string().contains("no recipients"), "{e}");
}

#[test]
fn the_example_definition_loads() {
    let path = "../../docs/playbooks/config/connectors/smtp.yaml";
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let c = riposte_connectors::load(path, &text, Arc::new(Templates::default()), secrets("x"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.operation("notify").is_some());
}
