//! What a ticket, a page or a chat card says about the case it is raised for, read once from
//! a call's context (`case`, `alert`, `playbook`, `run`) and parameters, so that Jira,
//! ServiceNow, TheHive, PagerDuty and Teams tell the same story in their own shapes.
//!
//! Parameters win over the context: `summary`, `description` (paragraphs split at blank
//! lines), `severity` (`info`, `low`, `medium`, `high`, `critical`) and `tags` (a list).
//! Without them the text is built from the case (or, on `alert.received`, the alert): its id,
//! tier, risk, tactics and entities, and the playbook and run that raised it. Links into
//! riposte use the connector's `public_url`; without one there are no links.

use riposte_domain::SeverityLabel;
use riposte_respond::{CallRequest, ConnectorError};
use serde_json::Value;

/// The most entities a text lists; the rest are counted.
const MAX_ENTITIES: usize = 20;

/// One entity of the case, as the context holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observable {
    /// riposte's kind: `host`, `user`, `ip`, `domain`, `url`, `file_hash`, …
    pub kind: String,
    pub value: String,
    pub role: Option<String>,
}

/// The text and facts every ticket-like connector sends.
#[derive(Debug, Clone)]
pub struct Brief {
    /// The riposte case id, when the run is about a case.
    pub case_id: Option<String>,
    pub title: String,
    pub paragraphs: Vec<String>,
    pub severity: SeverityLabel,
    pub tags: Vec<String>,
    pub entities: Vec<Observable>,
    /// `<public_url>/api/v1/cases/<id>`.
    pub case_url: Option<String>,
    /// Tier, risk, status, tactics, playbook and run, for vendors that take structured
    /// details (PagerDuty's `custom_details`, a Teams fact set).
    pub facts: Vec<(String, String)>,
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn number(v: &Value, pointer: &str) -> Option<u64> {
    v.pointer(pointer).and_then(Value::as_u64)
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The public URL of a riposte server, from a connector definition: http(s), no trailing
/// slash.
pub fn public_url(raw: Option<&str>) -> Result<Option<String>, String> {
    let Some(u) = raw else { return Ok(None) };
    if !(u.starts_with("https://") || u.starts_with("http://")) {
        return Err(format!(
            "public_url `{u}` must start with https:// (the address analysts open riposte at)"
        ));
    }
    Ok(Some(u.trim_end_matches('/').to_string()))
}

fn entities(list: Option<&Value>) -> Vec<Observable> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    Some(Observable {
                        kind: text(e, "/type")?.to_string(),
                        value: text(e, "/value")?.to_string(),
                        role: text(e, "/role").map(str::to_string),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn severity_param(req: &CallRequest) -> Result<Option<SeverityLabel>, ConnectorError> {
    let Some(v) = req.params.get("severity").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    serde_json::from_value(v.clone())
        .map(Some)
        .map_err(|_| ConnectorError::Config {
            message: format!(
                "operation `{}`: parameter `severity` is {v}; use info, low, medium, high or critical",
                req.operation
            ),
        })
}

fn tags_param(req: &CallRequest) -> Result<Vec<String>, ConnectorError> {
    match req.params.get("tags") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ConnectorError::Config {
                        message: format!(
                            "operation `{}`: parameter `tags` holds {t}; tags are strings",
                            req.operation
                        ),
                    })
            })
            .collect(),
        Some(other) => Err(ConnectorError::Config {
            message: format!(
                "operation `{}`: parameter `tags` is {other}; give a list of strings",
                req.operation
            ),
        }),
    }
}

/// Reads the call's context and parameters. Fails only on a parameter of the wrong shape,
/// or when there is neither a `summary` nor a case or alert to describe.
pub fn brief(req: &CallRequest, public_url: Option<&str>) -> Result<Brief, ConnectorError> {
    let ctx = &req.context;
    let case = ctx.get("case").filter(|c| c.is_object());
    let alert = ctx.get("alert").filter(|a| a.is_object());
    let case_id = case.and_then(|c| text(c, "/id")).map(str::to_string);
    let mut list = case
        .map(|c| entities(c.get("entities")))
        .unwrap_or_default();
    if list.is_empty() {
        list = alert
            .map(|a| entities(a.get("entities")))
            .unwrap_or_default();
    }
    let score = case
        .and_then(|c| number(c, "/risk"))
        .or_else(|| alert.and_then(|a| number(a, "/severity/score")))
        .unwrap_or(50);
    let severity = severity_param(req)?
        .unwrap_or_else(|| SeverityLabel::from_score(u8::try_from(score.min(100)).unwrap_or(100)));
    let case_url = match (public_url, &case_id) {
        (Some(base), Some(id)) => Some(format!("{base}/api/v1/cases/{id}")),
        _ => None,
    };

    let mut facts = Vec::new();
    if let Some(c) = case {
        if let Some(id) = &case_id {
            facts.push(("case".to_string(), id.clone()));
        }
        for (k, p) in [("tier", "/tier"), ("status", "/status")] {
            if let Some(v) = text(c, p) {
                facts.push((k.to_string(), v.to_string()));
            }
        }
        if let Some(r) = number(c, "/risk") {
            facts.push(("risk".to_string(), format!("{r}/100")));
        }
        let tactics: Vec<&str> = c
            .get("tactics")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !tactics.is_empty() {
            facts.push(("tactics".to_string(), tactics.join(", ")));
        }
    } else if let Some(a) = alert {
        for (k, p) in [
            ("alert", "/id"),
            ("product", "/product"),
            ("rule", "/rule/name"),
        ] {
            if let Some(v) = text(a, p) {
                facts.push((k.to_string(), v.to_string()));
            }
        }
    }
    facts.push(("severity".to_string(), label(severity).to_string()));
    if let Some(name) = text(ctx, "/playbook/name").or_else(|| text(ctx, "/playbook/id")) {
        facts.push(("playbook".to_string(), name.to_string()));
    }
    if let Some(run) = text(ctx, "/run/id") {
        facts.push(("run".to_string(), run.to_string()));
    }

    let title = match req.params.get("summary").and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => s.trim().to_string(),
        _ => default_title(case, alert, &case_id, &list).ok_or_else(|| ConnectorError::Config {
            message: format!(
                "operation `{}` needs the parameter `summary`: the run has no case or alert to describe",
                req.operation
            ),
        })?,
    };
    let paragraphs = match req.params.get("description").and_then(Value::as_str) {
        Some(d) if !d.trim().is_empty() => d
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        _ => default_paragraphs(alert, &facts, &list),
    };
    Ok(Brief {
        case_id,
        title,
        paragraphs,
        severity,
        tags: tags_param(req)?,
        entities: list,
        case_url,
        facts,
    })
}

/// The lower-case name of a severity.
pub fn label(s: SeverityLabel) -> &'static str {
    match s {
        SeverityLabel::Info => "info",
        SeverityLabel::Low => "low",
        SeverityLabel::Medium => "medium",
        SeverityLabel::High => "high",
        SeverityLabel::Critical => "critical",
    }
}

fn default_title(
    case: Option<&Value>,
    alert: Option<&Value>,
    case_id: &Option<String>,
    list: &[Observable],
) -> Option<String> {
    if let (Some(c), Some(id)) = (case, case_id) {
        let mut t = format!("riposte {id}");
        let tier = text(c, "/tier");
        let risk = number(c, "/risk");
        match (tier, risk) {
            (Some(t1), Some(r)) => t.push_str(&format!(" ({t1}, risk {r})")),
            (Some(t1), None) => t.push_str(&format!(" ({t1})")),
            (None, Some(r)) => t.push_str(&format!(" (risk {r})")),
            (None, None) => {}
        }
        let named: Vec<&str> = list
            .iter()
            .filter(|e| matches!(e.kind.as_str(), "host" | "user"))
            .map(|e| e.value.as_str())
            .take(3)
            .collect();
        if !named.is_empty() {
            t.push_str(": ");
            t.push_str(&named.join(", "));
        }
        return Some(t);
    }
    alert
        .and_then(|a| text(a, "/title"))
        .map(|t| format!("riposte: {t}"))
}

fn default_paragraphs(
    alert: Option<&Value>,
    facts: &[(String, String)],
    list: &[Observable],
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(a) = alert
        && let Some(t) = text(a, "/title")
    {
        let mut p = format!("Alert: {t}");
        if let Some(d) = text(a, "/description") {
            p.push_str(&format!(". {d}"));
        }
        out.push(p);
    }
    let facts: Vec<String> = facts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    if !facts.is_empty() {
        out.push(facts.join("; "));
    }
    if !list.is_empty() {
        let mut names: Vec<String> = list
            .iter()
            .take(MAX_ENTITIES)
            .map(|e| match &e.role {
                Some(r) => format!("{} {} ({r})", e.kind, e.value),
                None => format!("{} {}", e.kind, e.value),
            })
            .collect();
        if list.len() > MAX_ENTITIES {
            names.push(format!("and {} more", list.len() - MAX_ENTITIES));
        }
        out.push(format!("Entities: {}", names.join("; ")));
    }
    out
}

impl Brief {
    /// The paragraphs and the link into riposte as plain text, paragraphs apart.
    pub fn text(&self) -> String {
        let mut t = self.paragraphs.join("\n\n");
        if let Some(u) = &self.case_url {
            t.push_str(&format!("\n\nIn riposte: {u}"));
        }
        t
    }
}

/// `e` with every occurrence of `secret` replaced: for secrets that travel outside headers
/// (a routing key in a body, a webhook URL), in case a vendor's error ever echoes them.
pub fn scrub(e: ConnectorError, secret: &str) -> ConnectorError {
    if secret.is_empty() {
        return e;
    }
    let clean = |m: String| m.replace(secret, "***");
    match e {
        ConnectorError::Transient { message } => ConnectorError::Transient {
            message: clean(message),
        },
        ConnectorError::Rejected { status, message } => ConnectorError::Rejected {
            status,
            message: clean(message),
        },
        ConnectorError::Config { message } => ConnectorError::Config {
            message: clean(message),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn req(params: Value, context: Value) -> CallRequest {
        CallRequest {
            action_id: "a".into(),
            idempotency_key: "k".into(),
            operation: "open".into(),
            params,
            undo: Value::Null,
            context,
            timeout: Duration::from_secs(1),
        }
    }

    fn case() -> Value {
        json!({"case": {"id": "case-0c41e2", "status": "open", "tier": "high", "risk": 82,
            "tactics": ["credential-access", "lateral-movement"],
            "entities": [
                {"type": "host", "role": "target", "value": "ws-042.corp.example"},
                {"type": "user", "role": "actor", "value": "CORP\\alice"},
                {"type": "ip", "role": "source", "value": "10.20.30.40"}]},
            "playbook": {"id": "ticket", "name": "Open a ticket"}, "run": {"id": "run-1"}})
    }

    #[test]
    fn a_case_becomes_a_title_paragraphs_and_a_link() {
        let b = brief(
            &req(json!({}), case()),
            Some("https://riposte.corp.example"),
        )
        .unwrap();
        assert_eq!(
            b.title,
            "riposte case-0c41e2 (high, risk 82): ws-042.corp.example, CORP\\alice"
        );
        assert_eq!(b.severity, SeverityLabel::High);
        assert_eq!(
            b.case_url.as_deref(),
            Some("https://riposte.corp.example/api/v1/cases/case-0c41e2")
        );
        assert_eq!(
            b.paragraphs,
            [
                "case: case-0c41e2; tier: high; status: open; risk: 82/100; tactics: credential-access, lateral-movement; severity: high; playbook: Open a ticket; run: run-1",
                "Entities: host ws-042.corp.example (target); user CORP\\alice (actor); ip 10.20.30.40 (source)",
            ]
        );
        assert!(
            b.text().ends_with(
                "(source)\n\nIn riposte: https://riposte.corp.example/api/v1/cases/case-0c41e2"
            ),
            "{}",
            b.text()
        );
    }

    #[test]
    fn parameters_win_and_bad_ones_name_themselves() {
        let b = brief(
            &req(
                json!({"summary": "Phish", "description": "one\n\ntwo", "severity": "critical", "tags": ["a"]}),
                case(),
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            (b.title.as_str(), b.paragraphs.len(), b.severity),
            ("Phish", 2, SeverityLabel::Critical)
        );
        assert_eq!(b.tags, ["a"]);
        assert!(b.case_url.is_none());
        let e = brief(&req(json!({"severity": "urgent"}), case()), None).unwrap_err();
        assert!(e.to_string().contains("`severity`"), "{e}");
        let e = brief(&req(json!({"tags": "a"}), case()), None).unwrap_err();
        assert!(e.to_string().contains("`tags`"), "{e}");
        let e = brief(&req(json!({}), json!({})), None).unwrap_err();
        assert!(e.to_string().contains("`summary`"), "{e}");
    }

    #[test]
    fn an_alert_run_is_described_by_its_alert() {
        let ctx = json!({"case": null, "alert": {"id": "al-1", "title": "Mimikatz", "product": "Sysmon",
            "severity": {"score": 95, "label": "critical"},
            "entities": [{"type": "host", "role": "target", "value": "ws-1"}]}});
        let b = brief(&req(json!({}), ctx), Some("https://r.example")).unwrap();
        assert_eq!(b.title, "riposte: Mimikatz");
        assert_eq!(b.severity, SeverityLabel::Critical);
        assert!(b.case_url.is_none());
        assert_eq!(b.entities.len(), 1);
    }

    #[test]
    fn clip_and_scrub() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
        let e = scrub(
            ConnectorError::Rejected {
                status: Some(400),
                message: "key R0UT1NG bad".into(),
            },
            "R0UT1NG",
        );
        assert_eq!(e.to_string(), "key *** bad");
    }
}
