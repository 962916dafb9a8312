//! Palo Alto Networks PAN-OS syslog CSV (`FUTURE_USE,Receive Time,Serial Number,Type,…`), bare
//! or inside a syslog header. `THREAT` lines (url, virus, spyware, vulnerability, file, data,
//! wildfire, …) become alerts; `TRAFFIC` and `AUTHENTICATION` lines become events. Other log
//! types (SYSTEM, CONFIG, GLOBALPROTECT, USERID, …) are refused with a reason naming the `type`
//! column: their columns differ per type and hold nothing this pipeline joins on yet.
//!
//! Columns follow the PAN-OS syslog field descriptions (8.1–11.x share the leading columns;
//! older lines simply stop earlier, newer ones append columns, and missing trailing columns
//! are absent values). Fields are split as CSV: `"a,b"` is one field and `""` inside quotes is
//! a quote. Errors name the column as `receive_time (column 2)`, 1-based as in the docs.
//!
//! Time: `Generated Time` (column 7, when the dataplane saw it), else `Receive Time` (column 2);
//! `YYYY/MM/DD HH:MM:SS` with no zone, read as UTC (the firewall's zone is not in the line;
//! the original text is kept).
//! Severity (THREAT column 35): informational → 10, low → 30, medium → 50, high → 75,
//! critical → 95; the original word is kept. Events carry no severity.
//! Ids: serial number + sequence number (`012801096514:7726`), the firewall's own log id;
//! none when the sequence number is absent or `0` (old PAN-OS writes 0 on every line).
//! Threat: `Threat/Content Name` (column 33) is `Name(id)` or `(id)`; the id becomes the rule
//! id, the name the title (URL filtering lines, id 9999 with no name, are titled by their URL
//! category). ATT&CK: PAN-OS logs carry none.

use riposte_domain::{Alert, Decoded, EntityKind, Event, Role, Rule, Severity, Timestamp, time};
use serde_json::Value;

use crate::fields::{self, Entities};
use crate::syslog;
use crate::{DecodeError, Decoder, InputKind};

pub struct PanOs;

const PRODUCT: &str = "Palo Alto Networks PAN-OS";

/// 0-based positions of the columns read, with the names PAN-OS documents for them.
mod col {
    pub const RECEIVE_TIME: (usize, &str) = (1, "receive_time");
    pub const SERIAL: (usize, &str) = (2, "serial");
    pub const TYPE: (usize, &str) = (3, "type");
    pub const SUBTYPE: (usize, &str) = (4, "subtype");
    pub const GENERATED_TIME: (usize, &str) = (6, "time_generated");
    // THREAT and TRAFFIC share columns 7–30.
    pub const SRC: (usize, &str) = (7, "src");
    pub const DST: (usize, &str) = (8, "dst");
    pub const RULE: (usize, &str) = (11, "rule");
    pub const SRCUSER: (usize, &str) = (12, "srcuser");
    pub const DSTUSER: (usize, &str) = (13, "dstuser");
    pub const ACTION: (usize, &str) = (30, "action");
    // THREAT.
    pub const MISC: (usize, &str) = (31, "misc");
    pub const THREATID: (usize, &str) = (32, "threatid");
    pub const CATEGORY: (usize, &str) = (33, "category");
    pub const SEVERITY: (usize, &str) = (34, "severity");
    pub const THREAT_SEQNO: (usize, &str) = (36, "seqno");
    pub const FILEDIGEST: (usize, &str) = (43, "filedigest");
    pub const THREAT_DEVICE: (usize, &str) = (59, "device_name");
    // TRAFFIC.
    pub const TRAFFIC_SEQNO: (usize, &str) = (39, "seqno");
    pub const TRAFFIC_DEVICE: (usize, &str) = (52, "device_name");
    // AUTHENTICATION.
    pub const AUTH_IP: (usize, &str) = (8, "ip");
    pub const AUTH_USER: (usize, &str) = (9, "user");
    pub const AUTH_NORMALIZE_USER: (usize, &str) = (10, "normalize_user");
    pub const AUTH_EVENT: (usize, &str) = (20, "event");
    pub const AUTH_SEQNO: (usize, &str) = (22, "seqno");
    pub const AUTH_DEVICE: (usize, &str) = (29, "device_name");
    pub const AUTH_SRC_HOST: (usize, &str) = (40, "src_host");
}

impl Decoder for PanOs {
    fn name(&self) -> &'static str {
        "panos"
    }

    fn input(&self) -> InputKind {
        InputKind::Text
    }

    fn recognises(&self, r: &Value) -> bool {
        fields::text_of(r)
            .map(|t| syslog::route(syslog::strip(t).1) == Some("panos"))
            .unwrap_or(false)
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        let line = fields::text_of(&record)?;
        let (header, message) = syslog::strip(line);
        let row = Row(split_csv(message)?);
        let syslog_host = header.as_ref().and_then(|h| h.hostname.clone());
        let kind = row.req(col::TYPE)?.to_string();
        let subtype = row.req(col::SUBTYPE)?.to_string();
        let serial = row.req(col::SERIAL)?.to_string();
        let (time, time_original) = match row.get(col::GENERATED_TIME) {
            Some(_) => row.time(col::GENERATED_TIME)?,
            None => row.time(col::RECEIVE_TIME)?,
        };
        let source_id = |seqno: (usize, &str)| {
            row.get(seqno)
                .filter(|s| s.trim() != "0")
                .map(|s| format!("{serial}:{}", s.trim()))
        };
        let device = |c: (usize, &str)| row.get(c).map(str::to_string).or(syslog_host.clone());

        match kind.as_str() {
            "THREAT" => {
                let severity = threat_severity(&row)?;
                let threat = row.req(col::THREATID)?;
                let (threat_name, threat_id) = split_threat(threat);
                let category = row.get(col::CATEGORY);
                let title = match (threat_name, category) {
                    (Some(n), _) => n.to_string(),
                    (None, Some(c)) if subtype == "url" || threat_id == Some("9999") => {
                        format!("URL filtering: {c}")
                    }
                    _ => format!("PAN-OS {subtype} threat {}", threat.trim()),
                };
                let mut description = format!(
                    "{} by policy rule {}",
                    row.get(col::ACTION).unwrap_or("-"),
                    row.get(col::RULE).unwrap_or("-")
                );
                if let Some(misc) = row.get(col::MISC) {
                    description.push_str(": ");
                    description.push_str(misc);
                }
                let mut e = flow_entities(&row);
                if subtype == "url" {
                    url_entities(&mut e, row.get(col::MISC));
                }
                e.add(
                    EntityKind::FileHash,
                    Role::Related,
                    row.get(col::FILEDIGEST),
                )
                .add(
                    EntityKind::Host,
                    Role::Related,
                    device(col::THREAT_DEVICE).as_deref(),
                );
                Ok(vec![Decoded::Alert(Alert {
                    id: String::new(),
                    decoder: self.name().into(),
                    product: PRODUCT.into(),
                    source_id: source_id(col::THREAT_SEQNO),
                    time,
                    time_original,
                    title: title.clone(),
                    description: Some(description),
                    severity,
                    rule: Rule::new(
                        threat_id.map(str::to_string),
                        Some(threat_name.map_or(title, str::to_string)),
                    ),
                    entities: e.into_vec(),
                    techniques: Vec::new(),
                    tactics: Vec::new(),
                    original: record,
                    origin: None,
                })])
            }
            "TRAFFIC" => {
                let mut e = flow_entities(&row);
                e.add(
                    EntityKind::Host,
                    Role::Related,
                    device(col::TRAFFIC_DEVICE).as_deref(),
                );
                let outcome = row.get(col::ACTION).and_then(|a| match a {
                    "allow" => Some("success"),
                    "deny" | "drop" | "drop-icmp" | "reset-client" | "reset-server"
                    | "reset-both" => Some("failure"),
                    a if a.starts_with("block") => Some("failure"),
                    _ => None,
                });
                Ok(vec![self.event(
                    (kind, subtype),
                    source_id(col::TRAFFIC_SEQNO),
                    (time, time_original),
                    outcome,
                    e,
                    record.clone(),
                )])
            }
            "AUTHENTICATION" => {
                let mut e = Entities::new();
                e.add(EntityKind::Ip, Role::Source, row.get(col::AUTH_IP))
                    .add(EntityKind::User, Role::Actor, row.get(col::AUTH_USER))
                    .add(
                        EntityKind::User,
                        Role::Actor,
                        row.get(col::AUTH_NORMALIZE_USER),
                    )
                    .add(EntityKind::Host, Role::Source, row.get(col::AUTH_SRC_HOST))
                    .add(
                        EntityKind::Host,
                        Role::Related,
                        device(col::AUTH_DEVICE).as_deref(),
                    );
                let outcome = row.get(col::AUTH_EVENT).and_then(|ev| match ev {
                    "auth-success" => Some("success"),
                    "auth-fail" => Some("failure"),
                    _ => None,
                });
                Ok(vec![self.event(
                    (kind, subtype),
                    source_id(col::AUTH_SEQNO),
                    (time, time_original),
                    outcome,
                    e,
                    record.clone(),
                )])
            }
            other => Err(DecodeError::new(
                Row::name(col::TYPE),
                format!(
                    "PAN-OS {other:?} logs are not decoded; this decoder reads THREAT, TRAFFIC \
                     and AUTHENTICATION"
                ),
            )),
        }
    }
}

impl PanOs {
    fn event(
        &self,
        (kind, subtype): (String, String),
        source_id: Option<String>,
        (time, time_original): (Timestamp, String),
        outcome: Option<&str>,
        entities: Entities,
        original: Value,
    ) -> Decoded {
        Decoded::Event(Event {
            id: String::new(),
            decoder: self.name().into(),
            product: PRODUCT.into(),
            source_id,
            time,
            time_original,
            action: format!("{kind}/{subtype}"),
            outcome: outcome.map(str::to_string),
            entities: entities.into_vec(),
            original,
            origin: None,
        })
    }
}

/// The CSV fields of one line.
struct Row(Vec<String>);

impl Row {
    /// `receive_time (column 2)`: the documented name and the 1-based column.
    fn name((i, n): (usize, &str)) -> String {
        format!("{n} (column {})", i + 1)
    }

    /// A non-empty value; absent when the line stops earlier.
    fn get(&self, (i, _): (usize, &str)) -> Option<&str> {
        self.0.get(i).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    fn req(&self, c: (usize, &str)) -> Result<&str, DecodeError> {
        match self.0.get(c.0) {
            None => Err(DecodeError::new(
                Row::name(c),
                format!("missing: the line has only {} columns", self.0.len()),
            )),
            Some(s) if s.trim().is_empty() => Err(DecodeError::new(Row::name(c), "empty")),
            Some(s) => Ok(s.trim()),
        }
    }

    fn time(&self, c: (usize, &str)) -> Result<(Timestamp, String), DecodeError> {
        let text = self.req(c)?;
        time::parse(text)
            .map(|t| (t, text.to_string()))
            .map_err(|e| DecodeError::new(Row::name(c), e.to_string()))
    }
}

/// Splits one CSV line: commas separate fields; a field that starts with `"` runs to the
/// closing `"` (a doubled `""` inside is one quote). A stray quote inside an unquoted field
/// is kept as text, as PAN-OS writes it.
fn split_csv(line: &str) -> Result<Vec<String>, DecodeError> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        field.push('"');
                        chars.next();
                    } else {
                        closed = true;
                        break;
                    }
                } else {
                    field.push(c);
                }
            }
            if !closed {
                return Err(DecodeError::new(
                    format!("column {}", out.len() + 1),
                    "unterminated quoted field",
                ));
            }
            // Text between the closing quote and the next comma belongs to the field.
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        out.push(field);
        match chars.next() {
            Some(',') => continue,
            _ => break,
        }
    }
    Ok(out)
}

fn threat_severity(row: &Row) -> Result<Severity, DecodeError> {
    let original = row.req(col::SEVERITY)?;
    let score = match original.to_ascii_lowercase().as_str() {
        "informational" => 10,
        "low" => 30,
        "medium" => 50,
        "high" => 75,
        "critical" => 95,
        _ => {
            return Err(DecodeError::new(
                Row::name(col::SEVERITY),
                format!(
                    "{original:?} is not a PAN-OS severity \
                     (informational, low, medium, high, critical)"
                ),
            ));
        }
    };
    Ok(Severity::from_score(score, original))
}

/// `Name(1234)` → (`Name`, `1234`); `(9999)` → (none, `9999`); `Name` → (`Name`, none).
fn split_threat(text: &str) -> (Option<&str>, Option<&str>) {
    let t = text.trim();
    if let Some(inner) = t.strip_suffix(')')
        && let Some(open) = inner.rfind('(')
    {
        let id = &inner[open + 1..];
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
            let name = inner[..open].trim();
            return ((!name.is_empty()).then_some(name), Some(id));
        }
    }
    ((!t.is_empty()).then_some(t), None)
}

/// Addresses and users of the session (THREAT and TRAFFIC share these columns).
fn flow_entities(row: &Row) -> Entities {
    let mut e = Entities::new();
    e.add(EntityKind::Ip, Role::Source, row.get(col::SRC))
        .add(EntityKind::Ip, Role::Target, row.get(col::DST))
        .add(EntityKind::User, Role::Source, row.get(col::SRCUSER))
        .add(EntityKind::User, Role::Target, row.get(col::DSTUSER));
    e
}

/// A URL log's `misc` is `host/path` without a scheme: the URL, and its host as a domain.
fn url_entities(e: &mut Entities, misc: Option<&str>) {
    let Some(url) = misc else { return };
    e.add(EntityKind::Url, Role::Target, Some(url));
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next().unwrap_or("");
    if riposte_domain::entity::canonical_ip(host).is_none() && host.contains('.') {
        e.add(EntityKind::Domain, Role::Target, Some(host));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use serde_json::json;

    const URL: &str = "alerts/panos/test-panw-panos-threat-url-no-xff-sample.log";
    const THREATS: &str = "alerts/panos/test-panw-panos-inc-threat-sample.log";
    const AUTH: &str = "alerts/panos/test-panw-panos-authentication-sample.log";

    #[test]
    fn url_threat_decodes_field_by_field() {
        let out = decode_file(&PanOs, URL);
        assert_eq!(out.len(), 1);
        let a = alert(&out[0]);
        assert_eq!(a.product, PRODUCT);
        assert_eq!(a.title, "URL filtering: Web-URL-Allowlist");
        assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("9999"));
        assert_eq!(a.severity.score, 10);
        assert_eq!(a.severity.original, "informational");
        assert_eq!(a.time.to_string(), "2018-11-30T16:44:36Z");
        assert_eq!(a.time_original, "2018/11/30 16:44:36");
        assert_eq!(a.source_id.as_deref(), Some("012801096514:7726"));
        assert_eq!(
            a.description.as_deref(),
            Some("alert by policy rule new_outbound_from_trust: consent.cmp.oath.com/")
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Source),
            ["192.168.15.224"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Target),
            ["175.16.199.1"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Url, Role::Target),
            ["consent.cmp.oath.com/"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Domain, Role::Target),
            ["consent.cmp.oath.com"]
        );
        // Device name column (and the same in the syslog header).
        assert_eq!(ents(&out[0], EntityKind::Host, Role::Related), ["pa-220"]);
        assert!(ents_any(&out[0], EntityKind::User).is_empty());
    }

    #[test]
    fn threat_sample_decodes_record_by_record() {
        let out = decode_file(&PanOs, THREATS);
        assert_eq!(out.len(), 103, "one alert per line");
        let mut by_sev = std::collections::BTreeMap::new();
        for d in &out {
            let a = alert(d);
            *by_sev.entry(a.severity.original.clone()).or_insert(0) += 1;
            assert_eq!(a.product, PRODUCT);
            // Every line of this sample has sequence number 0: no line has a source id.
            assert!(a.source_id.is_none());
            assert!(!ents(d, EntityKind::Ip, Role::Source).is_empty());
            assert!(!ents(d, EntityKind::Ip, Role::Target).is_empty());
        }
        assert_eq!(
            by_sev.into_iter().collect::<Vec<_>>(),
            [
                ("critical".to_string(), 1),
                ("informational".to_string(), 93),
                ("low".to_string(), 9)
            ]
        );

        // First line: URL log, syslog header without a hostname, old 42-column format.
        let a = alert(&out[0]);
        assert_eq!(a.title, "URL filtering: not-resolved");
        assert_eq!(a.time.to_string(), "2012-04-10T04:39:56Z");
        assert_eq!(a.time_original, "2012/04/10 04:39:56");
        assert!(a.source_id.is_none(), "sequence number 0 is not an id");
        assert_eq!(ents(&out[0], EntityKind::Ip, Role::Source), ["192.168.0.2"]);
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Target),
            ["175.16.199.1"]
        );
        assert_eq!(ents(&out[0], EntityKind::User, Role::Source), ["crusher"]);
        assert_eq!(
            ents(&out[0], EntityKind::Url, Role::Target),
            ["lorexx.cn/loader.exe"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Domain, Role::Target),
            ["lorexx.cn"]
        );
        assert!(ents_any(&out[0], EntityKind::Host).is_empty());

        // Spyware, server-to-client: the server is the source, the victim's user the target.
        let a = alert(&out[43]);
        assert_eq!(a.title, "Bredolab.Gen Command and Control Traffic");
        assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("13024"));
        assert_eq!(
            a.rule.as_ref().unwrap().name.as_deref(),
            Some("Bredolab.Gen Command and Control Traffic")
        );
        assert_eq!(a.severity.score, 95);
        assert_eq!(a.severity.original, "critical");
        assert_eq!(a.time.to_string(), "2012-04-10T04:37:28Z");
        assert_eq!(
            a.description.as_deref(),
            Some("drop-all-packets by policy rule rule1: controller.php")
        );
        assert_eq!(
            ents(&out[43], EntityKind::Ip, Role::Source),
            ["175.16.199.1"]
        );
        assert_eq!(
            ents(&out[43], EntityKind::Ip, Role::Target),
            ["192.168.0.2"]
        );
        assert_eq!(ents(&out[43], EntityKind::User, Role::Target), ["crusher"]);
        assert!(ents_any(&out[43], EntityKind::Url).is_empty());

        // File: a name with its own parentheses before the id.
        let a = alert(&out[53]);
        assert_eq!(a.title, "Windows Executable (EXE)");
        assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("52020"));
        assert_eq!(a.severity.score, 30);
        assert_eq!(a.severity.original, "low");

        // Data filtering.
        let a = alert(&out[65]);
        assert_eq!(a.title, "PII");
        assert_eq!(a.rule.as_ref().unwrap().id.as_deref(), Some("60000"));
        assert_eq!(ents(&out[65], EntityKind::User, Role::Source), ["jordy"]);
        assert_eq!(
            ents(&out[65], EntityKind::Ip, Role::Source),
            ["192.168.0.6"]
        );

        // The last line is the 120-column PAN-OS 10 format with a device name.
        let a = alert(&out[102]);
        assert_eq!(a.title, "URL filtering: computer-and-internet-info");
        assert_eq!(a.time.to_string(), "2012-04-09T04:03:55Z");
        assert_eq!(
            ents(&out[102], EntityKind::Host, Role::Related),
            ["de-fwpm1-spelle"]
        );
        assert_eq!(
            ents(&out[102], EntityKind::User, Role::Source),
            [r"intranet\\schmidtdo"]
        );
        assert_eq!(
            ents(&out[102], EntityKind::Domain, Role::Target),
            ["portal.azure.com"]
        );
    }

    #[test]
    fn authentication_is_an_event() {
        let out = decode_file(&PanOs, AUTH);
        assert_eq!(out.len(), 1);
        let e = event(&out[0]);
        assert_eq!(e.action, "AUTHENTICATION/login");
        assert_eq!(e.time.to_string(), "2019-11-23T00:44:44Z");
        assert_eq!(e.source_id.as_deref(), Some("01234567890:20"));
        assert_eq!(
            e.outcome, None,
            "the sample's event column is a placeholder"
        );
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Source),
            ["fe80::4e7:1ab2:f6aa:82fa"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::User, Role::Actor),
            ["user", "normalize-user"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Host, Role::Source),
            ["src-hostname"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Host, Role::Related),
            ["device-name"]
        );
        // The quoted user agent with commas is one column: column 46 is the session id.
        let row = Row(split_csv(out[0].original().as_str().unwrap()).unwrap());
        assert_eq!(row.0.len(), 46);
        assert_eq!(row.0[45], "session-id");
        assert!(row.0[44].contains("(KHTML, like Gecko)"));
    }

    /// The corpus has no TRAFFIC line. These follow the PAN-OS 10.x "Traffic Log Fields" order
    /// (docs.paloaltonetworks.com …/syslog-field-descriptions/traffic-log-fields): Bytes at
    /// column 32, Sequence Number at 40, Device Name at 53. Values are made up.
    #[test]
    fn traffic_is_an_event_built_from_the_documented_layout() {
        let mut cols: Vec<String> = vec![String::new(); 60];
        let set = |cols: &mut Vec<String>, i: usize, v: &str| cols[i] = v.to_string();
        for (i, v) in [
            (0, "1"),
            (1, "2023/10/04 18:54:26"),
            (2, "013201001234"),
            (3, "TRAFFIC"),
            (4, "end"),
            (5, "2561"),
            (6, "2023/10/04 18:54:24"),
            (7, "10.20.30.40"),
            (8, "198.51.100.7"),
            (9, "203.0.113.9"),
            (10, "198.51.100.7"),
            (11, "outbound-web"),
            (12, r"corp\alice"),
            (14, "ssl"),
            (15, "vsys1"),
            (29, "tcp"),
            (30, "deny"),
            (31, "7312"),
            (35, "2023/10/04 18:53:52"),
            (37, "business-and-economy"),
            (39, "7253419119627122716"),
            (46, "policy-deny"),
            (52, "fw-edge-01"),
        ] {
            set(&mut cols, i, v);
        }
        let line = format!("<14>Oct  4 18:54:26 panmgt01 {}", cols.join(","));
        let out = PanOs.decode(Value::String(line.clone())).unwrap();
        let e = event(&out[0]);
        assert_eq!(e.action, "TRAFFIC/end");
        assert_eq!(e.outcome.as_deref(), Some("failure"));
        assert_eq!(e.time.to_string(), "2023-10-04T18:54:24Z");
        assert_eq!(
            e.source_id.as_deref(),
            Some("013201001234:7253419119627122716")
        );
        assert_eq!(ents(&out[0], EntityKind::Ip, Role::Source), ["10.20.30.40"]);
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Target),
            ["198.51.100.7"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::User, Role::Source),
            [r"corp\alice"]
        );
        assert_eq!(
            ents(&out[0], EntityKind::Host, Role::Related),
            ["fw-edge-01"]
        );
        assert!(PanOs.recognises(&Value::String(line)));

        // Without a device name column the syslog hostname is the device.
        let short = format!("Oct  4 18:54:26 panmgt01 {}", cols[..40].join(","));
        let out = PanOs.decode(Value::String(short)).unwrap();
        assert_eq!(ents(&out[0], EntityKind::Host, Role::Related), ["panmgt01"]);
        assert_eq!(event(&out[0]).action, "TRAFFIC/end");
    }

    #[test]
    fn bad_values_are_refused_with_their_column() {
        let good = corpus_text(URL).trim_end().to_string();
        let (_, msg) = syslog::strip(&good);
        let cols: Vec<String> = split_csv(msg).unwrap();
        let with = |i: usize, v: &str| {
            let mut c = cols.clone();
            c[i] = v.to_string();
            Value::String(c.join(","))
        };
        assert!(
            PanOs.decode(with(6, "")).is_ok(),
            "falls back to receive_time"
        );
        let e = PanOs.decode(with(6, "yesterday")).unwrap_err();
        assert_eq!(e.field, "time_generated (column 7)");
        let mut no_times = cols.clone();
        no_times[1] = String::new();
        no_times[6] = String::new();
        let e = PanOs.decode(Value::String(no_times.join(","))).unwrap_err();
        assert_eq!(e.to_string(), "field `receive_time (column 2)`: empty");
        let e = PanOs.decode(with(34, "severe")).unwrap_err();
        assert_eq!(e.field, "severity (column 35)");
        let e = PanOs.decode(with(3, "SYSTEM")).unwrap_err();
        assert_eq!(e.field, "type (column 4)");
        assert!(e.reason.contains("not decoded"), "{e}");
        let e = PanOs
            .decode(Value::String(cols[..20].join(",")))
            .unwrap_err();
        assert_eq!(e.field, "severity (column 35)");
        assert!(e.reason.contains("only 20 columns"), "{e}");
        let e = PanOs
            .decode(json!(
                "1,2018/11/30 16:44:36,0128,THREAT,url,1,2018/11/30 16:44:36,\"open"
            ))
            .unwrap_err();
        assert_eq!(e.field, "column 8");
        assert_eq!(PanOs.decode(json!(null)).unwrap_err().field, "$");
        assert_eq!(
            PanOs.decode(json!({"msg": 1})).unwrap_err().field,
            "message"
        );
        // Non-ASCII passes through; the object form with `message` works.
        let out = PanOs
            .decode(json!({ "message": with(33, "Überwachung").as_str().unwrap() }))
            .unwrap();
        assert_eq!(alert(&out[0]).title, "URL filtering: Überwachung");
    }

    #[test]
    fn recognises_panos_only() {
        for rel in [URL, THREATS, AUTH] {
            for r in corpus_records(rel, InputKind::Text) {
                assert!(PanOs.recognises(&r), "{r}");
            }
        }
        for r in corpus_records("alerts/cef/test-cef.log", InputKind::Text) {
            assert!(!PanOs.recognises(&r));
        }
        for r in corpus_records("alerts/suricata/eve/test-eve-small.log", InputKind::Json) {
            assert!(!PanOs.recognises(&r));
        }
        assert!(!PanOs.recognises(&json!("hello, world, foo, bar")));
    }
}
