//! Email over SMTP: a notification about a case (its summary and a link to it) to the SOC's
//! mailboxes.
//!
//! ```yaml
//! name: mail
//! kind: smtp
//! host: smtp.corp.example
//! port: 587                          # default: 587 (starttls), 465 (implicit), 25 (none)
//! tls: starttls                      # starttls | implicit | none (none: 127.0.0.1/localhost only)
//! ca_file: /etc/riposte/corp-root-ca.pem   # optional; default: the system's trust store
//! username: riposte@corp.example     # optional: AUTH PLAIN/LOGIN, only over TLS or to this machine
//! password: smtp_password            # the name of a stored secret; with username
//! from: "riposte <riposte@corp.example>"
//! to: [soc@corp.example]             # default recipients; a call's `to` replaces them
//! public_url: https://riposte.corp.example   # where analysts reach riposte: the case link
//! timeout: 30s                       # default 30s
//! ```
//!
//! The account needs the right to submit mail as `from` (on Exchange Online: SMTP AUTH
//! enabled for the mailbox, *Send As* when `from` is another mailbox).
//!
//! | operation | class | inverse | does |
//! |---|---|---|---|
//! | `notify` | auto | — | sends one plain-text message |
//!
//! Parameters (all optional): `to` (an address or a list; replaces the configured ones),
//! `subject` (default `[riposte] Case <id>: <tier>, risk <risk>`), `message` (text put
//! before the case summary). The body holds the case's id, tier, risk, tactics and entities
//! from the run's context and the link `<public_url>/api/v1/cases/<id>` (the case as the
//! API shows it).
//!
//! A message cannot be unsent, so `notify` has no inverse; it is not declared irreversible
//! either (that would raise it to `approve`), as for the generic webhook. Its `Message-ID`
//! is derived from the call's idempotency key, so a repeated call produces the same message
//! and mail stores that collapse duplicates by `Message-ID` (Exchange, Gmail) show it once;
//! this is why the connector tells the engine it sends the key, and a send that failed on
//! the way may be tried again.
//!
//! `tls: none` sends the password and the case in clear, so it is refused unless the host is
//! this machine (a local relay that does TLS onwards).

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use riposte_respond::connector::CallFuture;
use riposte_respond::duration::HumanDuration;
use riposte_respond::http::install_tls_provider;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::{at, check_name, is_loopback, parse};

pub const KIND: &str = "smtp";

const NOTIFY: &str = "notify";
/// Entities listed in the body; a case can hold hundreds.
const MAX_ENTITIES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TlsMode {
    Starttls,
    Implicit,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    host: String,
    #[serde(default)]
    port: Option<u16>,
    tls: TlsMode,
    #[serde(default)]
    ca_file: Option<std::path::PathBuf>,
    #[serde(default)]
    username: Option<String>,
    /// The name of the secret holding the password.
    #[serde(default)]
    password: Option<String>,
    from: String,
    #[serde(default)]
    to: Vec<String>,
    public_url: String,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured mail submission server.
pub struct Mail {
    name: String,
    host: String,
    port: u16,
    tls: Tls,
    /// `(username, secret name)`.
    login: Option<(String, String)>,
    from: Mailbox,
    to: Vec<Mailbox>,
    public_url: String,
    timeout: Duration,
    secrets: Arc<dyn SecretSource>,
    ops: Vec<OperationSpec>,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Loads a `kind: smtp` definition.
pub fn load(file: &str, text: &str, secrets: Arc<dyn SecretSource>) -> Result<Mail, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    let host = raw.host.trim().to_string();
    if host.is_empty() || host.contains(['/', ':', ' ']) && !host.starts_with('[') {
        return Err(at(
            file,
            text,
            "host:",
            format!("`host` `{host}` must be a host name or address, without scheme or port"),
        ));
    }
    install_tls_provider();
    let params = || -> Result<TlsParameters, LoadError> {
        let mut b = TlsParameters::builder(host.trim_matches(['[', ']']).to_string());
        if let Some(path) = &raw.ca_file {
            let shown = path.display();
            let pem = std::fs::read(path)
                .map_err(|e| at(file, text, "ca_file:", format!("`ca_file` {shown}: {e}")))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                at(
                    file,
                    text,
                    "ca_file:",
                    format!("`ca_file` {shown}: not a PEM certificate: {e}"),
                )
            })?;
            // Exactly this CA: a private relay's certificate, nothing else.
            b = b
                .certificate_store(CertificateStore::None)
                .add_root_certificate(cert);
        }
        b.build_rustls()
            .map_err(|e| at(file, text, "tls:", format!("TLS settings: {e}")))
    };
    let (tls, default_port) = match raw.tls {
        TlsMode::Starttls => (Tls::Required(params()?), 587),
        TlsMode::Implicit => (Tls::Wrapper(params()?), 465),
        TlsMode::None if is_loopback(&host) => (Tls::None, 25),
        TlsMode::None => {
            return Err(at(
                file,
                text,
                "tls:",
                format!(
                    "`tls: none` to `{host}` would send the password and the case in clear \
                     across the network; use starttls (port 587) or implicit (465), or a relay \
                     on 127.0.0.1"
                ),
            ));
        }
    };
    let login = match (raw.username, raw.password) {
        (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Some((u, p)),
        (None, None) => None,
        (Some(_), _) => {
            return Err(at(
                file,
                text,
                "username:",
                "`username` needs `password` (the name of a stored secret)",
            ));
        }
        (None, Some(_)) => {
            return Err(at(file, text, "password:", "`password` needs `username`"));
        }
    };
    let from = raw.from.parse::<Mailbox>().map_err(|e| {
        at(
            file,
            text,
            "from:",
            format!("`from` `{}` is not an address: {e}", raw.from),
        )
    })?;
    let to = raw
        .to
        .iter()
        .map(|t| {
            t.parse::<Mailbox>().map_err(|e| {
                at(
                    file,
                    text,
                    "to:",
                    format!("`to` `{t}` is not an address: {e}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let public_url = raw.public_url.trim_end_matches('/').to_string();
    if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
        return Err(at(
            file,
            text,
            "public_url:",
            format!(
                "`public_url` `{public_url}` must be the http(s) address analysts open riposte at"
            ),
        ));
    }
    Ok(Mail {
        name: raw.name,
        port: raw.port.unwrap_or(default_port),
        host,
        tls,
        login,
        from,
        to,
        public_url,
        timeout: raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30)),
        secrets,
        ops: vec![OperationSpec {
            name: NOTIFY.into(),
            class: Class::Auto,
            inverse: None,
            irreversible: false,
            idempotent: false,
        }],
    })
}

impl Mail {
    fn recipients(&self, req: &CallRequest) -> Result<Vec<Mailbox>, ConnectorError> {
        let given: Vec<&str> = match req.params.get("to") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().ok_or_else(|| ConnectorError::Config {
                        message: format!("`to`: `{v}` is not an address"),
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(ConnectorError::Config {
                    message: format!("`to` must be an address or a list of them, not `{other}`"),
                });
            }
        };
        if given.is_empty() {
            if self.to.is_empty() {
                return Err(ConnectorError::Config {
                    message: format!(
                        "{}: no recipients: give `to` in the step or in the connector",
                        self.name
                    ),
                });
            }
            return Ok(self.to.clone());
        }
        given
            .iter()
            .map(|t| {
                t.parse::<Mailbox>().map_err(|e| ConnectorError::Config {
                    message: format!("`to` `{t}` is not an address: {e}"),
                })
            })
            .collect()
    }

    fn message(&self, req: &CallRequest, to: &[Mailbox]) -> Result<Message, ConnectorError> {
        let case = req.context.get("case").filter(|c| c.is_object());
        let case_id = case.and_then(|c| c.get("id")).and_then(|v| v.as_str());
        let subject = match req.params.get("subject").and_then(|v| v.as_str()) {
            Some(s) if !s.trim().is_empty() => s.to_string(),
            _ => match (case, case_id) {
                (Some(c), Some(id)) => format!(
                    "[riposte] Case {id}: {}, risk {}",
                    text_of(c.get("tier")),
                    text_of(c.get("risk"))
                ),
                _ => format!(
                    "[riposte] {}",
                    req.context
                        .pointer("/playbook/name")
                        .and_then(|v| v.as_str())
                        .unwrap_or("notification")
                ),
            },
        };
        // A subject is one header line, whatever a template rendered into it.
        let subject: String = subject
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let link = case_id.map(|id| format!("{}/api/v1/cases/{}", self.public_url, id));
        let mut body = String::new();
        if let Some(m) = req.params.get("message").and_then(|v| v.as_str()) {
            body.push_str(m.trim_end());
            body.push_str("\n\n");
        }
        if let Some(c) = case {
            body.push_str(&summary(c));
        }
        if let Some(name) = req
            .context
            .pointer("/playbook/name")
            .and_then(|v| v.as_str())
        {
            body.push_str(&format!("Playbook: {name}\n"));
        }
        if let Some(link) = &link {
            body.push_str(&format!("\nOpen the case: {link}\n"));
        }
        let mut m = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(message_id(&req.idempotency_key, &self.from)))
            .header(ContentType::TEXT_PLAIN);
        for r in to {
            m = m.to(r.clone());
        }
        m.body(body).map_err(|e| ConnectorError::Config {
            message: format!("{}: cannot build the message: {e}", self.name),
        })
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, ConnectorError> {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.as_str())
            .port(self.port)
            .tls(self.tls.clone())
            .timeout(Some(self.timeout));
        if let Some((user, secret)) = &self.login {
            let password = self.secrets.secret(secret)?;
            b = b.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(b.build())
    }

    fn error(&self, e: lettre::transport::smtp::Error) -> ConnectorError {
        let name = &self.name;
        let at = format!("{}:{}", self.host, self.port);
        let code = e.status().map(|c| c.to_string());
        let status = code.as_deref().and_then(|c| c.parse::<u16>().ok());
        if status == Some(535) || status == Some(534) {
            let (user, secret) = self
                .login
                .as_ref()
                .map(|(u, s)| (u.as_str(), s.as_str()))
                .unwrap_or(("", ""));
            return ConnectorError::Rejected {
                status,
                message: format!(
                    "{name}: {at} refused the login as `{user}` ({e}); check the secret `{secret}`"
                ),
            };
        }
        if e.is_permanent() {
            return ConnectorError::Rejected {
                status,
                message: format!("{name}: {at} refused the message: {e}"),
            };
        }
        if e.is_transient() {
            return ConnectorError::Transient {
                message: format!("{name}: {at} deferred the message: {e}"),
            };
        }
        if e.is_timeout() {
            return ConnectorError::Timeout {
                secs: self.timeout.as_secs(),
            };
        }
        if e.is_tls() || caused_by_tls(&e) {
            return ConnectorError::Rejected {
                status: None,
                message: format!(
                    "{name}: {at}: TLS: {e}; if the server's certificate comes from a private CA, \
                     name it in `ca_file`"
                ),
            };
        }
        if e.is_client() {
            return ConnectorError::Rejected {
                status: None,
                message: format!("{name}: {at}: {e}"),
            };
        }
        // Refused, reset or unreadable connections: another attempt may get through.
        ConnectorError::Transient {
            message: format!("{name}: {at}: {e}"),
        }
    }

    async fn notify(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        if req.operation != NOTIFY {
            return Err(ConnectorError::UnknownOperation {
                connector: self.name.clone(),
                operation: req.operation.clone(),
            });
        }
        let to = self.recipients(req)?;
        let message = self.message(req, &to)?;
        let message_id = message
            .headers()
            .get_raw("Message-ID")
            .unwrap_or_default()
            .to_string();
        let transport = self.transport()?;
        let deadline = req.timeout.min(self.timeout);
        let answer = tokio::time::timeout(deadline, transport.send(message))
            .await
            .map_err(|_| ConnectorError::Timeout {
                secs: deadline.as_secs(),
            })?
            .map_err(|e| self.error(e))?;
        let mut fields = serde_json::Map::new();
        fields.insert("message_id".into(), json!(message_id));
        fields.insert(
            "to".into(),
            json!(to.iter().map(|m| m.email.to_string()).collect::<Vec<_>>()),
        );
        fields.insert(
            "response".into(),
            json!(format!(
                "{} {}",
                answer.code(),
                answer.message().collect::<Vec<_>>().join(" ")
            )),
        );
        Ok(CallOutcome {
            fields,
            undo: Value::Null,
            status: answer.code().to_string().parse().ok(),
        })
    }
}

/// Whether a rustls error (a certificate the trust store rejects) is behind `e`.
fn caused_by_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// `<key.riposte@domain-of-from>`: the same call always makes the same Message-ID.
fn message_id(key: &str, from: &Mailbox) -> String {
    let key: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("<{key}.riposte@{}>", from.email.domain())
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "?".into(),
        Some(other) => other.to_string(),
    }
}

/// The case as a few plain-text lines.
fn summary(case: &Value) -> String {
    let mut s = format!(
        "Case: {}\nTier: {}\nRisk: {}\n",
        text_of(case.get("id")),
        text_of(case.get("tier")),
        text_of(case.get("risk"))
    );
    if let Some(t) = case.get("tactics").and_then(|v| v.as_array())
        && !t.is_empty()
    {
        let names: Vec<String> = t.iter().map(|v| text_of(Some(v))).collect();
        s.push_str(&format!("Tactics: {}\n", names.join(", ")));
    }
    if let Some(es) = case.get("entities").and_then(|v| v.as_array())
        && !es.is_empty()
    {
        s.push_str("Entities:\n");
        for e in es.iter().take(MAX_ENTITIES) {
            let role = e
                .get("role")
                .and_then(|v| v.as_str())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            s.push_str(&format!(
                "  {} {}{role}\n",
                text_of(e.get("type")),
                text_of(e.get("value"))
            ));
        }
        if es.len() > MAX_ENTITIES {
            s.push_str(&format!("  … and {} more\n", es.len() - MAX_ENTITIES));
        }
    }
    s
}

impl Connector for Mail {
    fn name(&self) -> &str {
        &self.name
    }

    fn operations(&self) -> &[OperationSpec] {
        &self.ops
    }

    /// The key is the message's `Message-ID`: a repeat is the same message.
    fn sends_idempotency_key(&self, _operation: &str) -> bool {
        true
    }

    fn call<'a>(&'a self, req: &'a CallRequest) -> CallFuture<'a> {
        Box::pin(self.notify(req))
    }
}
