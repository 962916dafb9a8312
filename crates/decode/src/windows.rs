//! Windows event log records (Security, Sysmon and other channels) as JSON, in the two shapes
//! they arrive in: Winlogbeat documents (`winlog.event_id`, `winlog.event_data`,
//! `winlog.channel`, `winlog.computer_name`, `@timestamp`) and the `evtx` crate's rendering of
//! an EVTX record (`{"Event": {"System": {…}, "EventData": {…}}}`, with XML attributes under
//! `#attributes`, or beside the element as `X_attributes` when the crate is told to separate
//! them). Every record is an event; detection over them is Sigma's job.
//!
//! Time: the record's creation time — `winlog.time_created` (falling back to `@timestamp`,
//! which Winlogbeat sets to the same instant in the field) or
//! `Event.System.TimeCreated.#attributes.SystemTime`; ISO 8601 UTC with up to 7 fractional
//! digits.
//! Severity: none; these are events.
//! Action: the event id as text (`"4624"`). Outcome: `success`/`failure` from the audit keywords
//! (`Audit Success`/`Audit Failure`, or bits 53/52 of the hex `Keywords` mask), from
//! Winlogbeat's `winlog.outcome`, and 4624 → success, 4625 → failure; none otherwise.
//! Ids: `Channel:Computer:EventRecordID` when the record id is present (unique per log), else
//! the content hash.
//! ATT&CK: none in the records.
//!
//! Entities are read from the event data (`EventData`, or the single element under
//! `UserData`, or Winlogbeat's `event_data`/`user_data`), which stays intact in `original`.

use riposte_domain::entity::canonical_ip;
use riposte_domain::{Decoded, EntityKind, Event, Role};
use serde_json::Value;

use crate::fields::{self, Entities, first_time, get, str_at, text_at};
use crate::{DecodeError, Decoder};

pub struct Windows;

/// Security events whose `TargetUserName` is a group, not a user; the member is in `MemberName`.
const GROUP_EVENTS: &[u64] = &[
    4727, 4728, 4729, 4730, 4731, 4732, 4733, 4734, 4735, 4737, 4744, 4745, 4746, 4747, 4748, 4749,
    4750, 4751, 4752, 4753, 4754, 4755, 4756, 4757, 4758, 4759, 4760, 4761, 4762, 4763, 4764, 4799,
];

/// Bits of the System/Keywords mask that Security auditing sets.
const AUDIT_FAILURE: u64 = 0x0010_0000_0000_0000;
const AUDIT_SUCCESS: u64 = 0x0020_0000_0000_0000;

/// The fields of one record, whichever shape it came in.
struct Record<'a> {
    event_id: u64,
    time_paths: &'static [&'static str],
    channel: Option<String>,
    computer: Option<String>,
    record_id: Option<String>,
    provider: Option<String>,
    data: Option<&'a Value>,
    keywords: Keywords<'a>,
    /// Winlogbeat's own `winlog.outcome`.
    outcome: Option<&'a str>,
}

enum Keywords<'a> {
    None,
    /// Winlogbeat: `["Audit Success"]`.
    Names(&'a [Value]),
    /// EVTX: `"0x8020000000000000"`.
    Mask(&'a str),
}

impl Decoder for Windows {
    fn name(&self) -> &'static str {
        "windows"
    }

    fn recognises(&self, r: &Value) -> bool {
        (get(r, "winlog.event_id").is_some()
            && (get(r, "winlog.channel").is_some()
                || get(r, "winlog.provider_name").is_some()
                || get(r, "winlog.computer_name").is_some()))
            || get(r, "Event.System.EventID").is_some()
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        let rec = if get(&record, "Event").is_some() {
            read_evtx(&record)?
        } else {
            read_winlogbeat(&record)?
        };
        let (time, time_original) = first_time(&record, rec.time_paths)?;
        let entities = entities(&rec).into_vec();
        let source_id = match (&rec.channel, &rec.computer, &rec.record_id) {
            (Some(ch), Some(host), Some(id)) => Some(format!("{ch}:{host}:{id}")),
            _ => None,
        };
        let sysmon = rec
            .provider
            .as_deref()
            .or(rec.channel.as_deref())
            .is_some_and(|p| p.contains("Sysmon"));
        Ok(vec![Decoded::Event(Event {
            id: String::new(),
            decoder: self.name().into(),
            product: if sysmon { "Sysmon" } else { "Windows" }.into(),
            source_id,
            time,
            time_original,
            action: rec.event_id.to_string(),
            outcome: outcome(&rec).map(str::to_string),
            entities,
            original: record,
            origin: None,
        })])
    }
}

/// A Windows record's event data (its named values), in either shape this decoder reads.
pub fn event_data(r: &Value) -> Option<&Value> {
    // Only a record with a top-level `winlog…` key can hold Winlogbeat's data (EVTX renderings
    // have one key, `Event`): the four look-ups that would miss are skipped.
    let winlog = r
        .as_object()
        .is_some_and(|o| o.keys().any(|k| k.starts_with("winlog")));
    winlog
        .then(|| winlogbeat_data(r))
        .flatten()
        .or_else(|| evtx_data(r))
}

fn winlogbeat_data(r: &Value) -> Option<&Value> {
    [get(r, "winlog.event_data"), get(r, "winlog.user_data")]
        .into_iter()
        .flatten()
        .find(|v| v.is_object())
}

/// `EventData` holds named values; `UserData` wraps them in one element named after the event
/// (`LogFileCleared`, `Operation_ClientFailure`).
fn evtx_data(r: &Value) -> Option<&Value> {
    match get(r, "Event.EventData") {
        Some(d @ Value::Object(_)) => Some(d),
        _ => match get(r, "Event.UserData") {
            Some(Value::Object(u)) => u.values().find(|v| v.is_object()),
            _ => None,
        },
    }
}

fn read_winlogbeat(r: &Value) -> Result<Record<'_>, DecodeError> {
    let event_id = event_id(r, "winlog.event_id")?;
    let data = winlogbeat_data(r);
    let keywords = match get(r, "winlog.keywords") {
        Some(Value::Array(k)) => Keywords::Names(k),
        _ => Keywords::None,
    };
    Ok(Record {
        event_id,
        time_paths: &["winlog.time_created", "@timestamp"],
        channel: text_at(r, "winlog.channel"),
        computer: text_at(r, "winlog.computer_name").or_else(|| text_at(r, "host.name")),
        record_id: text_at(r, "winlog.record_id"),
        provider: text_at(r, "winlog.provider_name"),
        data,
        keywords,
        outcome: str_at(r, "winlog.outcome"),
    })
}

fn read_evtx(r: &Value) -> Result<Record<'_>, DecodeError> {
    let sys = match get(r, "Event.System") {
        Some(s @ Value::Object(_)) => s,
        None | Some(Value::Null) => return Err(DecodeError::missing("Event.System")),
        Some(other) => {
            return Err(DecodeError::new(
                "Event.System",
                format!("expected an object, found {}", fields::type_name(other)),
            ));
        }
    };
    let event_id = event_id(r, "Event.System.EventID")?;
    let data = evtx_data(r);
    let keywords = match str_at(sys, "Keywords") {
        Some(k) => Keywords::Mask(k),
        None => Keywords::None,
    };
    Ok(Record {
        event_id,
        time_paths: &[
            "Event.System.TimeCreated.#attributes.SystemTime",
            "Event.System.TimeCreated_attributes.SystemTime",
        ],
        channel: text_at(sys, "Channel"),
        computer: text_at(sys, "Computer"),
        record_id: text_at(sys, "EventRecordID"),
        provider: text_at(sys, "Provider.#attributes.Name")
            .or_else(|| text_at(sys, "Provider_attributes.Name")),
        data,
        keywords,
        outcome: None,
    })
}

/// The event id: a number, a numeric string, or the evtx crate's `{"#text": 4111,
/// "#attributes": {"Qualifiers": …}}` for events from classic sources.
fn event_id(r: &Value, path: &str) -> Result<u64, DecodeError> {
    let v = match get(r, path) {
        None | Some(Value::Null) => return Err(DecodeError::missing(path)),
        Some(Value::Object(o)) => match o.get("#text") {
            Some(t) => t,
            None => return Err(DecodeError::new(path, "an object without `#text`")),
        },
        Some(v) => v,
    };
    let id = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    id.filter(|id| *id <= u64::from(u16::MAX)).ok_or_else(|| {
        DecodeError::new(
            path,
            format!("expected an event id (0–65535), found {}", short(v)),
        )
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn outcome(rec: &Record<'_>) -> Option<&'static str> {
    match rec.event_id {
        4624 => return Some("success"),
        4625 => return Some("failure"),
        _ => {}
    }
    match rec.keywords {
        Keywords::Names(names) => {
            for n in names.iter().filter_map(Value::as_str) {
                if n.eq_ignore_ascii_case("Audit Failure") {
                    return Some("failure");
                }
                if n.eq_ignore_ascii_case("Audit Success") {
                    return Some("success");
                }
            }
        }
        Keywords::Mask(m) => {
            let hex = m.trim().trim_start_matches("0x").trim_start_matches("0X");
            if let Ok(bits) = u64::from_str_radix(hex, 16) {
                if bits & AUDIT_FAILURE != 0 {
                    return Some("failure");
                }
                if bits & AUDIT_SUCCESS != 0 {
                    return Some("success");
                }
            }
        }
        Keywords::None => {}
    }
    match rec.outcome {
        Some(o) if o.eq_ignore_ascii_case("success") => Some("success"),
        Some(o) if o.eq_ignore_ascii_case("failure") => Some("failure"),
        _ => None,
    }
}

/// `DOMAIN\user` when the domain is given and not `-`, else the bare name.
fn qualified_user(data: &Value, user: &str, domain: &str) -> Option<String> {
    let name = str_at(data, user)?.trim();
    if name == "-" {
        return None;
    }
    match str_at(data, domain).map(str::trim) {
        Some(d) if d != "-" && !name.contains('\\') && !name.contains('@') => {
            Some(format!("{d}\\{name}"))
        }
        _ => Some(name.to_string()),
    }
}

/// The common name of an LDAP distinguished name (`CN=Administrator,CN=Users,DC=…`).
fn dn_common_name(dn: &str) -> Option<&str> {
    let first = dn.split(',').next()?.trim();
    let (key, value) = first.split_once('=')?;
    key.trim()
        .eq_ignore_ascii_case("CN")
        .then_some(value.trim())
        .filter(|v| !v.is_empty())
}

fn entities(rec: &Record<'_>) -> Entities {
    let mut e = Entities::new();
    e.add(EntityKind::Host, Role::Target, rec.computer.as_deref());
    let Some(d) = rec.data else {
        return e;
    };
    let id = rec.event_id;
    let sysmon = rec
        .provider
        .as_deref()
        .or(rec.channel.as_deref())
        .is_some_and(|p| p.contains("Sysmon"));

    // Users.
    e.add(
        EntityKind::User,
        Role::Actor,
        qualified_user(d, "SubjectUserName", "SubjectDomainName").as_deref(),
    );
    if GROUP_EVENTS.contains(&id) {
        if let Some(member) = str_at(d, "MemberName").and_then(dn_common_name) {
            e.add(EntityKind::User, Role::Target, Some(member));
        }
    } else {
        e.add(
            EntityKind::User,
            Role::Target,
            qualified_user(d, "TargetUserName", "TargetDomainName").as_deref(),
        );
    }
    // Sysmon and WMI write `DOMAIN\user` whole.
    e.add_at(EntityKind::User, Role::Actor, d, "User")
        .add_at(EntityKind::User, Role::Actor, d, "SourceUser")
        .add_at(EntityKind::User, Role::Target, d, "TargetUser")
        .add_at(EntityKind::User, Role::Related, d, "ParentUser")
        .add_at(EntityKind::User, Role::Related, d, "Detection User");

    // Hosts and addresses.
    e.add_at(EntityKind::Host, Role::Source, d, "WorkstationName")
        .add_at(EntityKind::Host, Role::Source, d, "Workstation")
        .add_at(EntityKind::Host, Role::Source, d, "SourceHostname")
        .add_at(EntityKind::Host, Role::Source, d, "ClientMachine")
        .add_at(EntityKind::Ip, Role::Source, d, "IpAddress")
        .add_at(EntityKind::Ip, Role::Source, d, "SourceIp")
        .add_at(EntityKind::Ip, Role::Source, d, "SourceAddress")
        .add_at(EntityKind::Ip, Role::Target, d, "DestinationIp")
        .add_at(EntityKind::Ip, Role::Target, d, "DestAddress")
        .add_at(EntityKind::Domain, Role::Target, d, "DestinationHostname")
        .add_at(EntityKind::Domain, Role::Target, d, "QueryName");
    // Sysmon 22 `QueryResults`: `type:  5 edge.example;::ffff:13.107.21.200;`.
    if let Some(results) = str_at(d, "QueryResults") {
        for part in results.split(';') {
            if canonical_ip(part.trim()).is_some() {
                e.add(EntityKind::Ip, Role::Related, Some(part.trim()));
            }
        }
    }

    // Processes: a process creation's new image is the target and its parent the actor; in
    // every other event the image is the process that acted.
    let creation = (sysmon && id == 1) || id == 4688;
    if creation {
        e.add_at(EntityKind::Process, Role::Actor, d, "ParentImage")
            .add_at(EntityKind::Process, Role::Actor, d, "ParentProcessName")
            .add_at(EntityKind::Process, Role::Target, d, "Image")
            .add_at(EntityKind::Process, Role::Target, d, "NewProcessName");
    } else {
        e.add_at(EntityKind::Process, Role::Actor, d, "Image")
            .add_at(EntityKind::Process, Role::Actor, d, "SourceImage")
            .add_at(EntityKind::Process, Role::Actor, d, "ProcessName")
            .add_at(EntityKind::Process, Role::Actor, d, "Process Name")
            .add_at(EntityKind::Process, Role::Target, d, "TargetImage")
            .add_at(EntityKind::Process, Role::Target, d, "NewProcessName");
    }

    // Hashes: `SHA1=…,MD5=…,SHA256=…,IMPHASH=…` (IMPHASH hashes the import table, not a file).
    for field in ["Hashes", "Hash"] {
        if let Some(h) = str_at(d, field) {
            for part in h.split(',') {
                if let Some((algo, value)) = part.split_once('=')
                    && !algo.trim().eq_ignore_ascii_case("IMPHASH")
                {
                    e.add(EntityKind::FileHash, Role::Related, Some(value));
                }
            }
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use serde_json::json;

    const SECURITY: [&str; 3] = [
        "alerts/windows/security/test-1102.json",
        "alerts/windows/security/test-4738.json",
        "alerts/windows/security/test-4761.json",
    ];
    const SYSMON: &str = "alerts/windows/sysmon/test-image-loaded-failed-signature.json";
    const SIGMA: &str = "sigma/regression_data";

    fn one(rel: &str) -> Decoded {
        let mut out = decode_file(&Windows, rel);
        assert_eq!(out.len(), 1, "{rel}: one event per record");
        out.remove(0)
    }

    #[test]
    fn winlogbeat_security_records_decode_field_by_field() {
        // 1102: the data is under `user_data`.
        let d = one(SECURITY[0]);
        let ev = event(&d);
        assert_eq!(ev.action, "1102");
        assert_eq!(ev.outcome.as_deref(), Some("success"));
        assert_eq!(ev.product, "Windows");
        assert_eq!(ev.time.to_string(), "2019-11-07T10:34:29.055Z");
        assert_eq!(ev.time_original, "2019-11-07T10:34:29.055Z");
        assert_eq!(
            ev.source_id.as_deref(),
            Some("Security:WIN-41OB2LO92CR.wlbeat.local:14224")
        );
        assert_eq!(
            ents(&d, EntityKind::Host, Role::Target),
            ["win-41ob2lo92cr"]
        );
        assert_eq!(
            ents(&d, EntityKind::User, Role::Actor),
            ["wlbeat\\administrator"]
        );
        assert!(ents(&d, EntityKind::User, Role::Target).is_empty());

        // 4738: time from `winlog.time_created` (7 fractional digits), not the ingest time.
        let d = one(SECURITY[1]);
        let ev = event(&d);
        assert_eq!(ev.action, "4738");
        assert_eq!(ev.outcome.as_deref(), Some("success"));
        assert_eq!(ev.time.to_string(), "2022-08-01T08:49:58.8259888Z");
        assert_eq!(ev.time_original, "2022-08-01T08:49:58.8259888Z");
        assert_eq!(
            ev.source_id.as_deref(),
            Some("Security:DC_TEST2k12:18232108")
        );
        assert_eq!(ents(&d, EntityKind::Host, Role::Target), ["dc_test2k12"]);
        assert_eq!(ents(&d, EntityKind::User, Role::Actor), ["test\\at_adm"]);
        assert_eq!(ents(&d, EntityKind::User, Role::Target), ["test\\anatest1"]);
        assert!(ents_any(&d, EntityKind::Ip).is_empty());
        assert_eq!(
            d.original()["winlog"]["event_data"]["UserPrincipalName"],
            "anatest12@TEST"
        );

        // 4761: `TargetUserName` is the group; the member comes from `MemberName`.
        let d = one(SECURITY[2]);
        let ev = event(&d);
        assert_eq!(ev.action, "4761");
        assert_eq!(ev.time.to_string(), "2019-12-19T08:29:38.448Z");
        assert_eq!(ents(&d, EntityKind::Host, Role::Target), ["dc_test2k12"]);
        assert_eq!(ents(&d, EntityKind::User, Role::Actor), ["test\\at_adm"]);
        assert_eq!(ents(&d, EntityKind::User, Role::Target), ["administrator"]);
    }

    #[test]
    fn winlogbeat_sysmon_image_load() {
        let d = one(SYSMON);
        let ev = event(&d);
        assert_eq!(ev.action, "7");
        assert_eq!(ev.product, "Sysmon");
        assert_eq!(ev.outcome, None, "Sysmon sets no audit keyword");
        assert_eq!(ev.time.to_string(), "2020-10-28T02:39:26.388Z");
        assert_eq!(
            ev.source_id.as_deref(),
            Some("Microsoft-Windows-Sysmon/Operational:vagrant:10685")
        );
        assert_eq!(ents(&d, EntityKind::Host, Role::Target), ["vagrant"]);
        assert_eq!(
            ents(&d, EntityKind::User, Role::Actor),
            ["domain\\username"]
        );
        assert_eq!(
            ents(&d, EntityKind::Process, Role::Actor),
            ["c:\\windows\\system32\\dllhost.exe"]
        );
        assert_eq!(
            ents(&d, EntityKind::FileHash, Role::Related),
            [
                "9955a1c071c44a7ceecc0d928a9cfb7f64cc3f93",
                "c7c45610f644906e6f7d664ef2e45b08",
                "4808f1101f4e42387d8ddb7a355668bae3bf6f781c42d3bcd82e23446b1deb3e"
            ],
            "SHA1, MD5, SHA256; not IMPHASH"
        );
        // Non-ASCII (U+00AB) passes through untouched.
        assert_eq!(
            d.original()["winlog"]["event_data"]["Product"],
            "Microsoft\u{ab} Windows\u{ab} Operating System"
        );
    }

    /// Every `.json` under sigma/regression_data: the evtx crate's rendering, some files
    /// holding several pretty-printed records one after the other.
    fn sigma_files() -> Vec<String> {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in rd.flatten() {
                let p = entry.path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else if p.extension().is_some_and(|x| x == "json") {
                    let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                    out.push(rel);
                }
            }
        }
        let base = corpus_dir();
        let mut out = Vec::new();
        walk(&base.join(SIGMA), &base, &mut out);
        out.sort();
        out
    }

    #[test]
    fn every_sigma_regression_record_decodes() {
        let files = sigma_files();
        assert_eq!(files.len(), 202);
        let mut records = 0;
        let mut by_action = std::collections::BTreeMap::<String, usize>::new();
        for f in &files {
            for d in decode_file(&Windows, f) {
                let ev = event(&d);
                assert!(ev.source_id.is_some(), "{f}: EventRecordID gives an id");
                assert!(
                    !ents(&d, EntityKind::Host, Role::Target).is_empty(),
                    "{f}: Computer is a host"
                );
                *by_action.entry(ev.action.clone()).or_default() += 1;
                records += 1;
            }
        }
        assert_eq!(records, 238);
        assert_eq!(by_action["1"], 151, "Sysmon process creations");
        assert_eq!(by_action["11"], 35);
        assert_eq!(by_action["4648"], 1);
    }

    #[test]
    fn evtx_sysmon_records_decode_field_by_field() {
        // Sysmon 7, EDR-Freeze hunting rule.
        let rel = "sigma/regression_data/rules-threat-hunting/windows/image_load/image_load_win_werfaultsecure_dbgcore_dbghelp_load/8a2f4b1c-3d5e-4f7a-9b2c-1e4f6d8a9c2b.json";
        let d = one(rel);
        let ev = event(&d);
        assert_eq!(ev.action, "7");
        assert_eq!(ev.product, "Sysmon");
        assert_eq!(ev.time.to_string(), "2025-11-27T07:40:10.165324Z");
        assert_eq!(ev.time_original, "2025-11-27T07:40:10.165324Z");
        assert_eq!(
            ev.source_id.as_deref(),
            Some("Microsoft-Windows-Sysmon/Operational:swachchhanda:571146")
        );
        assert_eq!(ents(&d, EntityKind::Host, Role::Target), ["swachchhanda"]);
        assert_eq!(
            ents(&d, EntityKind::User, Role::Actor),
            ["swachchhanda\\xodih"]
        );
        assert_eq!(
            ents(&d, EntityKind::Process, Role::Actor),
            ["c:\\windows\\system32\\werfaultsecure.exe"]
        );
        assert_eq!(
            ents(&d, EntityKind::FileHash, Role::Related),
            [
                "5e4f2c531c549bb72a658ed9dd16d491eddbb286",
                "fab4b30c1c4f0a9202a7b42dcf1729dc",
                "1b48a4f8d20026e6c56e3ab4cc4788fa6425c8a75f8d91c2869fa533de6b209e"
            ]
        );
        // Non-ASCII (®) in EventData is kept.
        assert_eq!(
            d.original()["Event"]["EventData"]["Product"],
            "Microsoft® Windows® Operating System"
        );
    }

    #[test]
    fn evtx_sysmon_process_creation_roles() {
        let rel = "sigma/regression_data/rules-emerging-threats/2026/Exploits/CVE-2026-33829/proc_creation_win_exploit_cve_2026_33829/7c3a5b1d-9e2f-4a8c-b5d7-1e0f3c6a9b2d.json";
        let recs = corpus_records(rel, crate::InputKind::Json);
        let out = decode_file(&Windows, rel);
        assert_eq!(out.len(), recs.len());
        for (d, r) in out.iter().zip(&recs) {
            let data = &r["Event"]["EventData"];
            assert_eq!(event(d).action, "1");
            let image = data["Image"].as_str().unwrap().to_lowercase();
            let parent = data["ParentImage"].as_str().unwrap().to_lowercase();
            assert_eq!(ents(d, EntityKind::Process, Role::Target), [image]);
            assert_eq!(ents(d, EntityKind::Process, Role::Actor), [parent]);
            assert_eq!(
                ents(d, EntityKind::User, Role::Actor),
                [data["User"].as_str().unwrap().to_lowercase()]
            );
        }
    }

    #[test]
    fn evtx_security_and_userdata_records() {
        // 4648, explicit credentials: subject acts, target account is aimed at; the
        // `IpAddress` is `-` and yields nothing.
        let rel = "sigma/regression_data/rules/windows/builtin/security/win_security_explicit_credential_local_logon/e3c6d245-7b8f-4e2a-c17f-a9d0e5b38f62.json";
        let d = one(rel);
        let ev = event(&d);
        assert_eq!(ev.action, "4648");
        assert_eq!(ev.outcome.as_deref(), Some("success"), "Keywords 0x8020…");
        assert_eq!(ev.time.to_string(), "2026-07-17T14:18:34.072213Z");
        assert_eq!(ev.source_id.as_deref(), Some("Security:swachchhanda:34382"));
        assert_eq!(
            ents(&d, EntityKind::User, Role::Actor),
            ["swachchhanda\\xodih"]
        );
        assert_eq!(
            ents(&d, EntityKind::User, Role::Target),
            ["swachchhanda\\testuser"]
        );
        assert_eq!(
            ents(&d, EntityKind::Process, Role::Actor),
            ["c:\\users\\xodih\\onedrive\\desktop\\legacyhive.exe"]
        );
        assert!(ents_any(&d, EntityKind::Ip).is_empty());

        // WMI 5858: the data is one element under `UserData`.
        let rel = "sigma/regression_data/rules/windows/builtin/wmi/win_wmi_activity_nteventlogfile_cleareventlog/d4f1a2b3-7c8e-4d5f-b6a9-1e0c2d3f4e5b.json";
        let d = one(rel);
        let ev = event(&d);
        assert_eq!(ev.action, "5858");
        assert_eq!(ev.outcome, None);
        assert_eq!(
            ents(&d, EntityKind::User, Role::Actor),
            ["swachchhanda\\xodih"]
        );
        assert_eq!(ents(&d, EntityKind::Host, Role::Source), ["swachchhanda"]);
        assert_eq!(
            d.original()["Event"]["UserData"]["Operation_ClientFailure"]["ResultCode"],
            "0x80041003"
        );
    }

    /// A 4624 and a 4625 in the evtx crate's shape. The corpus has them only as EVTX
    /// (ocsf-examples/raw_sample_log_dataset/Microsoft/WinEventLog/Security/xml/security.evtx)
    /// and as Splunk's classic text rendering (ocsf-examples/mappings/markdown/Microsoft/
    /// Windows Events/462x/*.event: `LogName=Security` / `EventCode=4624` key=value lines and
    /// the message text, not JSON). The 4624 below is record 2 of security.evtx as the evtx
    /// crate 0.15 renders it, with a network logon's fields filled in from
    /// mappings/…/4625/4625_0.event; the 4625 carries the values of that `.event` file.
    fn logon(event_id: Value, keywords: &str, data: Value) -> Value {
        json!({"Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing",
                    "Guid": "{54849625-5478-4994-a5ba-3e3b0328c30d}"}},
                "EventID": event_id, "Version": 0, "Level": 0, "Task": 12544, "Opcode": 0,
                "Keywords": keywords,
                "TimeCreated": {"#attributes": {"SystemTime": "2020-10-08T12:41:47.1234567Z"}},
                "EventRecordID": 223742, "Correlation": null,
                "Execution": {"#attributes": {"ProcessID": 456, "ThreadID": 460}},
                "Channel": "Security", "Computer": "EC2AMAZ-6KJ2BPP", "Security": null
            },
            "EventData": data
        }})
    }

    #[test]
    fn logon_success_and_failure() {
        let ok = logon(
            json!(4624),
            "0x8020000000000000",
            json!({
                "SubjectUserSid": "S-1-0-0", "SubjectUserName": "-", "SubjectDomainName": "-",
                "SubjectLogonId": "0x0", "TargetUserSid": "S-1-5-21-1-2-3-500",
                "TargetUserName": "Administrator", "TargetDomainName": "EC2AMAZ-6KJ2BPP",
                "TargetLogonId": "0x3e7", "LogonType": 3, "LogonProcessName": "NtLmSsp ",
                "AuthenticationPackageName": "NTLM", "WorkstationName": "KALI",
                "ProcessId": "0x0", "ProcessName": "-", "IpAddress": "::ffff:185.202.1.7",
                "IpPort": "0"
            }),
        );
        let d = Windows.decode(ok).unwrap().remove(0);
        let ev = event(&d);
        assert_eq!(ev.action, "4624");
        assert_eq!(ev.outcome.as_deref(), Some("success"));
        assert_eq!(ev.time.to_string(), "2020-10-08T12:41:47.1234567Z");
        assert_eq!(
            ev.source_id.as_deref(),
            Some("Security:EC2AMAZ-6KJ2BPP:223742")
        );
        let raw = |kind, role| -> Vec<String> {
            d.entities()
                .iter()
                .filter(|e| e.kind == kind && e.role == role)
                .map(|e| e.value.clone())
                .collect()
        };
        assert_eq!(
            raw(EntityKind::User, Role::Target),
            ["EC2AMAZ-6KJ2BPP\\Administrator"]
        );
        assert!(
            raw(EntityKind::User, Role::Actor).is_empty(),
            "`-` is no user"
        );
        assert_eq!(raw(EntityKind::Ip, Role::Source), ["::ffff:185.202.1.7"]);
        assert_eq!(raw(EntityKind::Host, Role::Source), ["KALI"]);
        assert_eq!(raw(EntityKind::Host, Role::Target), ["EC2AMAZ-6KJ2BPP"]);

        // 4625 with the classic-source EventID shape and the Audit Failure keyword.
        let failed = logon(
            json!({"#attributes": {"Qualifiers": 0}, "#text": 4625}),
            "0x8010000000000000",
            json!({
                "SubjectUserSid": "S-1-0-0", "SubjectUserName": "-", "SubjectDomainName": "-",
                "TargetUserName": "Administrator", "TargetDomainName": "EC2AMAZ-6KJ2BPP",
                "Status": "0xc000006d", "SubStatus": "0xc000006a", "LogonType": 3,
                "WorkstationName": "EC2AMAZ-6KJ2BPP", "IpAddress": "-", "IpPort": "-"
            }),
        );
        let d = Windows.decode(failed).unwrap().remove(0);
        assert_eq!(event(&d).action, "4625");
        assert_eq!(event(&d).outcome.as_deref(), Some("failure"));
        // Audit Failure on another event id.
        let other = logon(json!("4771"), "0x8010000000000000", json!({}));
        let d = Windows.decode(other).unwrap().remove(0);
        assert_eq!(event(&d).action, "4771");
        assert_eq!(event(&d).outcome.as_deref(), Some("failure"));
    }

    #[test]
    fn evtx_separated_attributes_and_sysmon_network_and_dns() {
        // The evtx crate with `separate_json_attributes`; Sysmon 3 values from
        // ocsf-examples/…/Sysmon/xml/sysmon.evtx.
        let net = json!({"Event": {
            "System": {
                "Provider": null, "Provider_attributes": {"Name": "Microsoft-Windows-Sysmon"},
                "EventID": 3, "TimeCreated": null,
                "TimeCreated_attributes": {"SystemTime": "2017-12-18T14:51:31.011224Z"},
                "EventRecordID": 1133, "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Computer": "DESKTOP-2KGM189"
            },
            "EventData": {
                "UtcTime": "2017-12-18 14:51:29.706", "ProcessId": 4280,
                "Image": "C:\\Windows\\Temp\\opera autoupdate\\installer.exe",
                "User": "NT AUTHORITY\\SYSTEM", "Protocol": "tcp", "Initiated": true,
                "SourceIp": "192.168.2.128", "SourceHostname": "DESKTOP-2KGM189.localdomain",
                "SourcePort": 59344, "DestinationIp": "185.26.182.117",
                "DestinationHostname": "", "DestinationPort": 443
            }
        }});
        assert!(Windows.recognises(&net));
        let d = Windows.decode(net).unwrap().remove(0);
        let ev = event(&d);
        assert_eq!(ev.action, "3");
        assert_eq!(ev.product, "Sysmon");
        assert_eq!(ev.time.to_string(), "2017-12-18T14:51:31.011224Z");
        let raw = |kind, role| -> Vec<String> {
            d.entities()
                .iter()
                .filter(|e| e.kind == kind && e.role == role)
                .map(|e| e.value.clone())
                .collect()
        };
        assert_eq!(raw(EntityKind::Ip, Role::Source), ["192.168.2.128"]);
        assert_eq!(raw(EntityKind::Ip, Role::Target), ["185.26.182.117"]);
        assert_eq!(
            raw(EntityKind::Host, Role::Source),
            ["DESKTOP-2KGM189.localdomain"]
        );
        assert_eq!(raw(EntityKind::User, Role::Actor), ["NT AUTHORITY\\SYSTEM"]);
        assert!(raw(EntityKind::Domain, Role::Target).is_empty());

        // Sysmon 22 DNS query (field names from the Sysmon schema).
        let dns = json!({"Event": {"System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}}, "EventID": 22,
                "TimeCreated": {"#attributes": {"SystemTime": "2021-03-01T10:00:00.5Z"}},
                "EventRecordID": 77, "Channel": "Microsoft-Windows-Sysmon/Operational",
                "Computer": "ws-042.corp.example"},
            "EventData": {"QueryName": "evil.example.com", "QueryStatus": "0",
                "QueryResults": "type:  5 cdn.example.net;::ffff:203.0.113.9;198.51.100.4;",
                "Image": "C:\\Windows\\System32\\svchost.exe", "User": "CORP\\alice"}}});
        let d = Windows.decode(dns).unwrap().remove(0);
        assert_eq!(
            ents(&d, EntityKind::Domain, Role::Target),
            ["evil.example.com"]
        );
        let mut canon = d.entities().to_vec();
        riposte_domain::Canonicaliser::default().apply_all(&mut canon);
        let related: Vec<_> = canon
            .iter()
            .filter(|e| e.kind == EntityKind::Ip)
            .map(|e| e.value.as_str())
            .collect();
        assert_eq!(related, ["203.0.113.9", "198.51.100.4"]);
    }

    #[test]
    fn recognises_windows_records_only() {
        for rel in SECURITY.iter().chain([&SYSMON]) {
            for r in corpus_records(rel, crate::InputKind::Json) {
                assert!(Windows.recognises(&r), "{rel}");
            }
        }
        for f in sigma_files().iter().take(20) {
            for r in corpus_records(f, crate::InputKind::Json) {
                assert!(Windows.recognises(&r), "{f}");
            }
        }
        for rel in [
            "alerts/suricata/eve/test-eve-small.log",
            "alerts/zeek/notice/test-notice.log",
            "alerts/okta/system/test-okta-system-events.log",
            "ocsf-examples/encodings/ilf/example_logs/sechub-guardduty.ocsf",
        ] {
            for r in corpus_records(rel, crate::InputKind::Json) {
                assert!(!Windows.recognises(&r), "{rel} is not Windows");
            }
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        assert_eq!(Windows.decode(json!([1])).unwrap_err().field, "$");
        assert_eq!(Windows.decode(json!("4624")).unwrap_err().field, "$");
        let e = Windows
            .decode(
                json!({"winlog": {"channel": "Security"}, "@timestamp": "2020-01-01T00:00:00Z"}),
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "field `winlog.event_id`: missing");
        let e = Windows
            .decode(json!({"winlog": {"event_id": "logon"}, "@timestamp": "2020-01-01T00:00:00Z"}))
            .unwrap_err();
        assert_eq!(e.field, "winlog.event_id");
        let e = Windows
            .decode(json!({"winlog": {"event_id": 4624}}))
            .unwrap_err();
        assert_eq!(e.field, "winlog.time_created");
        let e = Windows
            .decode(json!({"winlog": {"event_id": 4624, "time_created": "yesterday"}}))
            .unwrap_err();
        assert_eq!(e.field, "winlog.time_created");
        let e = Windows
            .decode(json!({"Event": {"EventData": {}}}))
            .unwrap_err();
        assert_eq!(e.to_string(), "field `Event.System`: missing");
        let e = Windows
            .decode(json!({"Event": {"System": {"EventID": {"#attributes": {}}}}}))
            .unwrap_err();
        assert_eq!(e.field, "Event.System.EventID");
        let e = Windows
            .decode(json!({"Event": {"System": {"EventID": 99999999}}}))
            .unwrap_err();
        assert_eq!(e.field, "Event.System.EventID");
        let e = Windows
            .decode(json!({"Event": {"System": {"EventID": 1, "TimeCreated": {"#attributes": {"SystemTime": true}}}}}))
            .unwrap_err();
        assert_eq!(e.field, "Event.System.TimeCreated.#attributes.SystemTime");
        let e = Windows
            .decode(json!({"Event": {"System": {"EventID": 1}}}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "field `Event.System.TimeCreated.#attributes.SystemTime`: missing"
        );
        let e = Windows
            .decode(json!({"Event": {"System": "x"}}))
            .unwrap_err();
        assert_eq!(e.field, "Event.System");
    }
}
