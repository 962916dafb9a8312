//! Palo Alto Networks PAN-OS (firewall or Panorama): blocking an IP address by tagging it
//! through the User-ID XML API, so that it joins a dynamic address group your security
//! policy denies, with a timeout after which the firewall drops the tag by itself.
//!
//! ```yaml
//! name: paloalto
//! kind: panos
//! base_url: https://fw1.corp.example   # the firewall or Panorama management address
//! api_key: panos_api_key               # the name of a stored secret holding the API key
//! vsys: vsys1                          # optional; the firewall's default when absent
//! tag: riposte-block                   # default riposte-block
//! tag_timeout: 1h                      # default 1h; 0 = never expires; at most 30d
//! timeout: 10s                         # default 30s
//! ```
//!
//! On the firewall: a dynamic address group whose match criteria is the tag
//! (`'riposte-block'`), used as source (and destination) of a deny rule above the allow
//! rules. The API key belongs to an administrator whose role allows the XML API's
//! **User-ID Agent** and **Operational Requests** (for the check), and nothing else.
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `block_ip` | approve | `unblock_ip` | `POST /api/` `type=user-id`, `cmd=<uid-message>…<register>…` |
//! | `unblock_ip` | approve | `block_ip` | same, `<unregister>` |
//!
//! Parameters: `ip` — an IPv4 or IPv6 address, or a network in CIDR notation (PAN-OS 10.0
//! and later register networks). The registration is
//! `<entry ip="…"><tag><member timeout="3600">riposte-block</member></tag></entry>`; every
//! value put into `cmd` is XML-escaped, and the address is parsed before it is sent. The
//! undo record keeps `ip` and `tag`, so the inverse removes exactly the tag that was
//! registered even after the configured tag changed.
//!
//! The key goes in the `X-PAN-KEY` header, never in the URL or the form. PAN-OS answers
//! XML: `<response status="success">` is done; `<response status="error">` carries its
//! reason in `<msg><line>` (for User-ID updates, one `<entry ip message>` per refused
//! entry). Registering a tag the address already has (`… already exists, ignore`) and
//! unregistering one it no longer has (`… does not exist, ignore unreg`) count as done, so
//! both operations are idempotent and the engine may retry them. Error codes 2–5, 11 and 21
//! (PAN-OS internal errors) are worth another try; 403 is a refused key.
//!
//! After a restart between send and answer, the engine asks
//! `type=op`, `cmd=<show><object><registered-ip><ip>…</ip></registered-ip></object></show>`
//! whether the address carries the tag.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderName;
use riposte_respond::connector::{CallFuture, CheckFuture};
use riposte_respond::duration::HumanDuration;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use serde::Deserialize;
use serde_json::json;

use crate::api::{Api, Auth, Body, Request};
use crate::common::{at, check_name, param, parse};
use crate::netaddr::Address;

pub const KIND: &str = "panos";

const BLOCK: &str = "block_ip";
const UNBLOCK: &str = "unblock_ip";
const DEFAULT_TAG: &str = "riposte-block";
const DEFAULT_TAG_TIMEOUT: Duration = Duration::from_secs(3600);
/// PAN-OS refuses a longer tag timeout (30 days).
const MAX_TAG_TIMEOUT_SECS: u64 = 2_592_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    base_url: String,
    /// The name of the secret holding the API key.
    api_key: String,
    #[serde(default)]
    vsys: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    tag_timeout: Option<HumanDuration>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured PAN-OS firewall or Panorama.
#[derive(Debug)]
pub struct PanOs {
    name: String,
    api: Api,
    ops: Vec<OperationSpec>,
    key_secret: String,
    vsys: Option<String>,
    tag: String,
    tag_timeout_secs: u64,
}

fn spec(name: &str, inverse: &str) -> OperationSpec {
    OperationSpec {
        name: name.into(),
        class: Class::Approve,
        inverse: Some(inverse.into()),
        irreversible: false,
        idempotent: true,
    }
}

/// PAN-OS's rules for a tag name (the same for registered IPs and users).
fn check_tag(tag: &str) -> Result<(), String> {
    if tag.trim().is_empty() {
        return Err("the tag is empty".into());
    }
    if tag.chars().count() > 127 {
        return Err(format!("tag `{tag}` is longer than PAN-OS allows (127)"));
    }
    if tag.contains(['\'', '"']) || tag.contains("  ") || tag.chars().any(char::is_control) {
        return Err(format!(
            "tag `{tag}` holds a quote, a control character or two spaces in a row; PAN-OS refuses those"
        ));
    }
    if ["and", "or", "not"].contains(&tag.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "tag `{tag}` is an operator of dynamic group filters; PAN-OS refuses it"
        ));
    }
    Ok(())
}

/// Loads a `kind: panos` definition.
pub fn load(file: &str, text: &str, secrets: Arc<dyn SecretSource>) -> Result<PanOs, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    if raw.api_key.trim().is_empty() {
        return Err(at(
            file,
            text,
            "api_key:",
            "`api_key` is empty: name the secret holding the PAN-OS API key",
        ));
    }
    let tag = raw.tag.unwrap_or_else(|| DEFAULT_TAG.to_string());
    check_tag(&tag).map_err(|m| at(file, text, "tag:", m))?;
    let tag_timeout_secs = raw.tag_timeout.map(|d| d.0).unwrap_or(DEFAULT_TAG_TIMEOUT);
    let tag_timeout_secs = tag_timeout_secs.as_secs();
    if tag_timeout_secs > MAX_TAG_TIMEOUT_SECS {
        return Err(at(
            file,
            text,
            "tag_timeout:",
            format!(
                "`tag_timeout` is {tag_timeout_secs} s; PAN-OS allows at most 30d (2592000 s), or 0 for never"
            ),
        ));
    }
    if let Some(v) = &raw.vsys
        && (v.trim().is_empty() || v.contains(char::is_whitespace))
    {
        return Err(at(
            file,
            text,
            "vsys:",
            format!("`vsys` `{v}` must be a virtual system name such as vsys1"),
        ));
    }
    let auth = Auth::Header {
        name: HeaderName::from_static("x-pan-key"),
        prefix: String::new(),
        secret: raw.api_key.clone(),
    };
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let api = Api::new(&raw.name, &raw.base_url, timeout, auth, secrets)
        .map_err(|m| at(file, text, "base_url:", m))?;
    Ok(PanOs {
        name: raw.name,
        api,
        ops: vec![spec(BLOCK, UNBLOCK), spec(UNBLOCK, BLOCK)],
        key_secret: raw.api_key,
        vsys: raw.vsys,
        tag,
        tag_timeout_secs,
    })
}

/// Escapes text for an XML attribute or element.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The User-ID message registering (with `timeout`) or unregistering `tag` on `addr`.
fn uid_message(register: bool, addr: &Address, tag: &str, timeout: u64) -> String {
    let ip = xml_escape(&addr.to_string());
    let tag = xml_escape(tag);
    let (verb, member) = if register {
        (
            "register",
            format!("<member timeout=\"{timeout}\">{tag}</member>"),
        )
    } else {
        ("unregister", format!("<member>{tag}</member>"))
    };
    format!(
        "<uid-message><version>2.0</version><type>update</type><payload><{verb}><entry ip=\"{ip}\"><tag>{member}</tag></entry></{verb}></payload></uid-message>"
    )
}

/// What a PAN-OS `<response>` said, read once.
#[derive(Debug, Default)]
struct Answer {
    success: bool,
    code: Option<String>,
    /// `<msg><line>` texts (and the other places PAN-OS puts its message).
    lines: Vec<String>,
    /// User-ID update refusals: (ip, message) per `<entry>`.
    refused: Vec<(String, String)>,
    /// `show object registered-ip`: (ip, tags) per `<result><entry>`.
    registered: Vec<(String, Vec<String>)>,
}

impl Answer {
    fn message(&self) -> String {
        if !self.refused.is_empty() {
            return self
                .refused
                .iter()
                .map(|(ip, m)| format!("{ip}: {m}"))
                .collect::<Vec<_>>()
                .join("; ");
        }
        if self.lines.is_empty() {
            "no message".into()
        } else {
            self.lines.join("; ")
        }
    }
}

fn text_of(n: roxmltree::Node) -> Option<String> {
    n.text()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
}

fn children<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    n.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The texts of `parent`'s `<msg>`: its `<line>`s (or `<line><line>`s), else its own text.
fn read_lines(parent: roxmltree::Node, out: &mut Vec<String>) {
    for m in children(parent, "msg") {
        let before = out.len();
        for line in children(m, "line") {
            if let Some(t) = text_of(line).or_else(|| children(line, "line").find_map(text_of)) {
                out.push(t);
            }
        }
        if out.len() == before
            && let Some(t) = text_of(m)
        {
            out.push(t);
        }
    }
}

/// Reads a PAN-OS answer. roxmltree refuses DTDs, so no entity can expand.
fn read_answer(text: &str) -> Result<Answer, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not XML ({e})"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "response" {
        return Err(format!(
            "the root element is <{}>, not <response>",
            root.tag_name().name()
        ));
    }
    let mut a = Answer {
        success: match root.attribute("status") {
            Some("success") => true,
            Some(_) => false,
            None => return Err("<response> has no status".into()),
        },
        code: root.attribute("code").map(String::from),
        ..Answer::default()
    };
    // User-ID refusals sit in <msg><line><uid-response><payload><register|unregister><entry>.
    for uid in root
        .descendants()
        .filter(|n| n.has_tag_name("uid-response"))
    {
        for payload in children(uid, "payload") {
            for verb in payload.children().filter(|c| c.is_element()) {
                for e in children(verb, "entry") {
                    a.refused.push((
                        e.attribute("ip").unwrap_or("?").to_string(),
                        e.attribute("message").unwrap_or("refused").to_string(),
                    ));
                }
            }
        }
    }
    read_lines(root, &mut a.lines);
    for result in children(root, "result") {
        read_lines(result, &mut a.lines);
        for e in children(result, "entry") {
            let tags = children(e, "tag")
                .flat_map(|t| children(t, "member"))
                .filter_map(text_of)
                .collect();
            if let Some(ip) = e.attribute("ip") {
                a.registered.push((ip.to_string(), tags));
            }
        }
    }
    Ok(a)
}

impl PanOs {
    /// Posts one XML API request and reads its answer; `status="error"` is a failure except
    /// for the User-ID refusals `tolerated` accepts.
    async fn post(
        &self,
        form: &[(&str, String)],
        tolerated: fn(&str) -> bool,
        deadline: Duration,
    ) -> Result<(u16, Answer), ConnectorError> {
        let mut pairs: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        if let Some(v) = &self.vsys {
            pairs.push(("vsys".into(), v.clone()));
        }
        let mut r = Request::new(Method::POST, "/api/");
        r.body = Body::Form(pairs);
        // PAN-OS explains 400 and 403 in XML: read it rather than quote it raw.
        let r = r.also_ok(400).also_ok(401).also_ok(403);
        let reply = self.api.send(&r, deadline).await?;
        let text = match &reply.body {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let answer = read_answer(&text);
        let refused_key = matches!(reply.status, 401 | 403)
            || answer
                .as_ref()
                .is_ok_and(|a| a.code.as_deref() == Some("403"));
        if refused_key {
            let why = match &answer {
                Ok(a) => a.message(),
                Err(_) => format!("HTTP {}", reply.status),
            };
            return Err(ConnectorError::Rejected {
                status: Some(403),
                message: format!(
                    "{}: PAN-OS refused the API key in secret `{}` ({why}); check the key and the admin role's XML API rights",
                    self.name, self.key_secret
                ),
            });
        }
        let answer = answer.map_err(|why| ConnectorError::Rejected {
            status: Some(reply.status),
            message: format!(
                "{}: the PAN-OS answer is {why}: {}",
                self.name,
                text.chars().take(200).collect::<String>()
            ),
        })?;
        if answer.success && reply.status < 300 {
            return Ok((reply.status, answer));
        }
        if !answer.success
            && !answer.refused.is_empty()
            && answer.refused.iter().all(|(_, m)| tolerated(m))
        {
            return Ok((reply.status, answer));
        }
        let message = format!(
            "{}: PAN-OS answered an error: {}",
            self.name,
            answer.message()
        );
        // Codes 2–5, 11 and 21 are PAN-OS internal errors: another try may do.
        let internal = matches!(
            answer.code.as_deref(),
            Some("2" | "3" | "4" | "5" | "11" | "21")
        );
        Err(if internal {
            ConnectorError::Transient { message }
        } else {
            ConnectorError::Rejected {
                status: Some(reply.status),
                message,
            }
        })
    }

    /// The address, and for an inverse the undo record's tag (else the configured one).
    fn target(&self, req: &CallRequest) -> Result<(Address, String), ConnectorError> {
        let addr = Address::parse(param(req, "ip")?, &req.operation, "ip")?;
        let tag = req
            .undo
            .get("tag")
            .and_then(|v| v.as_str())
            .unwrap_or(&self.tag)
            .to_string();
        check_tag(&tag).map_err(|m| ConnectorError::Config {
            message: format!("operation `{}`: {m}", req.operation),
        })?;
        Ok((addr, tag))
    }

    fn outcome(&self, addr: &Address, tag: &str, status: u16, register: bool) -> CallOutcome {
        let undo = serde_json::Map::from_iter([
            ("ip".to_string(), json!(addr.to_string())),
            ("tag".to_string(), json!(tag)),
        ]);
        let mut fields = undo.clone();
        if register {
            fields.insert("tag_timeout_secs".into(), json!(self.tag_timeout_secs));
        }
        CallOutcome {
            fields,
            undo: serde_json::Value::Object(undo),
            status: Some(status),
        }
    }

    async fn act(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let register = match req.operation.as_str() {
            BLOCK => true,
            UNBLOCK => false,
            other => {
                return Err(ConnectorError::UnknownOperation {
                    connector: self.name.clone(),
                    operation: other.into(),
                });
            }
        };
        let (addr, tag) = self.target(req)?;
        let cmd = uid_message(register, &addr, &tag, self.tag_timeout_secs);
        let tolerated: fn(&str) -> bool = if register {
            |m| m.contains("already exists")
        } else {
            |m| m.contains("does not exist")
        };
        let (status, _) = self
            .post(
                &[("type", "user-id".into()), ("cmd", cmd)],
                tolerated,
                req.timeout,
            )
            .await?;
        Ok(self.outcome(&addr, &tag, status, register))
    }

    /// Whether the address carries (block) or no longer carries (unblock) the tag.
    async fn took_effect(&self, req: &CallRequest) -> Result<Option<CallOutcome>, ConnectorError> {
        let register = req.operation == BLOCK;
        let (addr, tag) = self.target(req)?;
        let ip = addr.to_string();
        let cmd = format!(
            "<show><object><registered-ip><ip>{}</ip></registered-ip></object></show>",
            xml_escape(&ip)
        );
        let (status, answer) = self
            .post(
                &[("type", "op".into()), ("cmd", cmd)],
                |_| false,
                req.timeout,
            )
            .await?;
        let tagged = answer
            .registered
            .iter()
            .any(|(i, tags)| *i == ip && tags.contains(&tag));
        Ok((tagged == register).then(|| self.outcome(&addr, &tag, status, register)))
    }
}

impl Connector for PanOs {
    fn name(&self) -> &str {
        &self.name
    }

    fn operations(&self) -> &[OperationSpec] {
        &self.ops
    }

    fn sends_idempotency_key(&self, _operation: &str) -> bool {
        false
    }

    fn call<'a>(&'a self, req: &'a CallRequest) -> CallFuture<'a> {
        Box::pin(self.act(req))
    }

    fn check<'a>(&'a self, req: &'a CallRequest) -> Option<CheckFuture<'a>> {
        Some(Box::pin(self.took_effect(req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_in_the_message_is_escaped() {
        let a = Address::parse("2001:db8::7", "block_ip", "ip").expect("v6");
        assert_eq!(
            uid_message(true, &a, "a&b<c>", 60),
            "<uid-message><version>2.0</version><type>update</type><payload><register><entry ip=\"2001:db8::7\"><tag><member timeout=\"60\">a&amp;b&lt;c&gt;</member></tag></entry></register></payload></uid-message>"
        );
    }

    #[test]
    fn answers_are_read_from_their_documented_places() {
        let a = read_answer(
            "<response status=\"error\"><msg><line><uid-response><version>2.0</version><payload><register><entry ip=\"10.0.0.1\" message=\"tag01 already exists, ignore\"/></register></payload></uid-response></line></msg></response>",
        )
        .expect("uid refusal");
        assert!(!a.success);
        assert_eq!(
            a.refused,
            [(
                "10.0.0.1".to_string(),
                "tag01 already exists, ignore".to_string()
            )]
        );
        let a = read_answer("<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>")
            .expect("403");
        assert_eq!(
            (a.code.as_deref(), a.message().as_str()),
            (Some("403"), "Invalid Credential")
        );
        let a = read_answer("<response status=\"error\" code=\"17\"><msg><line><line>cmd is invalid</line></line></msg></response>")
            .expect("nested line");
        assert_eq!(a.message(), "cmd is invalid");
        for bad in [
            "",
            "<html>Bad Gateway</html>",
            "<response>",
            "<response/>",
            "<!DOCTYPE r [<!ENTITY a \"aaaa\">]><response status=\"success\">&a;</response>",
        ] {
            assert!(read_answer(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn tags_follow_pan_os_rules() {
        for good in ["riposte-block", "block list", "x"] {
            assert!(check_tag(good).is_ok(), "{good}");
        }
        for bad in ["", "it's", "a  b", "AND", &"x".repeat(128)] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
    }
}
