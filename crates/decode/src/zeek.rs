//! Zeek logs written as JSON (`LogAscii::use_json=T`, one record per line): `notice.log`
//! records become alerts, every other log (conn, dns, ssh, http, ssl, kerberos, files, …)
//! becomes an event. Zeek's default TSV form (`#fields` header) is not read here; ship JSON.
//!
//! Time: `ts`, epoch seconds with a fraction (`1320435875.879278`), or ISO 8601 when Zeek is
//! set to `JSON::TS_ISO8601`.
//! Severity: Zeek notices carry none, so every notice is [`Severity::unknown`]; scoring
//! weighs them by rule precision and context instead.
//! Which log: a record does not say, unless a shipper added `_path`; otherwise it is told by
//! the fields only that log has (`note` → notice, `conn_state`/`history` → conn, `query`/
//! `qtype_name` → dns, `auth_attempts`/`kex_alg` → ssh, …). The log's name is the action;
//! a record of no known log is action `zeek`.
//! Ids: a conn record's `uid` is its connection's own id. Other logs reuse the `uid` of the
//! connection they were seen on (several DNS queries share one), so they are told apart by
//! content; a notice tied to a connection is `uid:note`.
//! ATT&CK: none in the records. Rule: the notice type (`note`), e.g. `SSH::Password_Guessing`.

use riposte_domain::entity::canonical_ip;
use riposte_domain::{Alert, Decoded, EntityKind, Event, Role, Rule, Severity};
use serde_json::Value;

use crate::fields::{self, Entities, get, req_epoch_seconds, str_at};
use crate::{DecodeError, Decoder};

pub struct Zeek;

const PRODUCT: &str = "Zeek";

impl Decoder for Zeek {
    fn name(&self) -> &'static str {
        "zeek"
    }

    fn recognises(&self, r: &Value) -> bool {
        get(r, "ts").is_some()
            && (str_at(r, "note").is_some()
                || (str_at(r, "uid").is_some() && get(r, "id.orig_h").is_some()))
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        let (time, time_original) = req_epoch_seconds(&record, "ts")?;
        let log = which_log(&record)?;
        let entities = entities(&record).into_vec();
        let uid = str_at(&record, "uid").map(str::to_string);

        if log != "notice" {
            let outcome = match (
                log.as_str(),
                get(&record, "auth_success"),
                get(&record, "success"),
            ) {
                ("ssh", Some(Value::Bool(b)), _) | ("kerberos", _, Some(Value::Bool(b))) => {
                    Some(if *b { "success" } else { "failure" }.to_string())
                }
                _ => None,
            };
            return Ok(vec![Decoded::Event(Event {
                id: String::new(),
                decoder: self.name().into(),
                product: PRODUCT.into(),
                source_id: if log == "conn" { uid } else { None },
                time,
                time_original,
                action: log,
                outcome,
                entities,
                original: record,
                origin: None,
            })]);
        }

        let note = fields::req_str(&record, "note")?.to_string();
        let description = match get(&record, "msg") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.trim().is_empty()),
            Some(other) => {
                return Err(DecodeError::new(
                    "msg",
                    format!("expected a string, found {}", fields::type_name(other)),
                ));
            }
        };
        Ok(vec![Decoded::Alert(Alert {
            id: String::new(),
            decoder: self.name().into(),
            product: PRODUCT.into(),
            source_id: uid.map(|u| format!("{u}:{note}")),
            time,
            time_original,
            title: note.clone(),
            description,
            severity: Severity::unknown(),
            rule: Rule::new(Some(note.clone()), Some(note)),
            entities,
            techniques: Vec::new(),
            tactics: Vec::new(),
            original: record,
            origin: None,
        })])
    }
}

/// The log a record came from; see the module doc.
fn which_log(r: &Value) -> Result<String, DecodeError> {
    match get(r, "_path") {
        None | Some(Value::Null) => {}
        Some(Value::String(p)) if !p.trim().is_empty() => return Ok(p.trim().to_string()),
        Some(other) => {
            return Err(DecodeError::new(
                "_path",
                format!("expected a log name, found {}", fields::type_name(other)),
            ));
        }
    }
    if get(r, "note").is_some() {
        return Ok("notice".into());
    }
    let has = |keys: &[&str]| keys.iter().any(|k| get(r, k).is_some());
    let log = if has(&["conn_state", "history", "orig_ip_bytes", "missed_bytes"]) {
        "conn"
    } else if has(&["query", "qtype_name", "trans_id", "rcode_name"]) {
        "dns"
    } else if has(&["auth_attempts", "kex_alg", "host_key", "auth_success"]) {
        "ssh"
    } else if has(&["request_type"]) && has(&["service", "client"]) {
        "kerberos"
    } else if has(&["method", "status_code", "trans_depth"]) {
        "http"
    } else if has(&["server_name", "ssl_history", "established"]) {
        "ssl"
    } else if has(&["fuid"]) && has(&["mime_type", "seen_bytes", "tx_hosts"]) {
        "files"
    } else {
        "zeek"
    };
    Ok(log.into())
}

fn entities(r: &Value) -> Entities {
    let mut e = Entities::new();
    e.add_at(EntityKind::Ip, Role::Source, r, "id.orig_h")
        .add_at(EntityKind::Ip, Role::Target, r, "id.resp_h")
        // notice.log
        .add_at(EntityKind::Ip, Role::Source, r, "src")
        .add_at(EntityKind::Ip, Role::Target, r, "dst")
        // dns.log
        .add_at(EntityKind::Domain, Role::Target, r, "query")
        // ssl.log
        .add_at(EntityKind::Domain, Role::Target, r, "server_name")
        // http.log
        .add_at(EntityKind::User, Role::Actor, r, "username")
        // files.log
        .add_all_at(EntityKind::Ip, Role::Source, r, "tx_hosts")
        .add_all_at(EntityKind::Ip, Role::Target, r, "rx_hosts");
    if let Some(Value::Array(answers)) = get(r, "answers") {
        for a in answers.iter().filter_map(Value::as_str) {
            if canonical_ip(a).is_some() {
                e.add(EntityKind::Ip, Role::Related, Some(a));
            }
        }
    }
    if let Some(host) = str_at(r, "host") {
        if canonical_ip(host).is_none() {
            e.add(EntityKind::Domain, Role::Target, Some(host));
        }
        if let Some(uri) = str_at(r, "uri") {
            let url = if uri.starts_with('/') {
                format!("http://{host}{uri}")
            } else {
                uri.to_string()
            };
            e.add(EntityKind::Url, Role::Target, Some(&url));
        }
    }
    // kerberos.log: `client` is `principal/REALM`, `service` an SPN (`cifs/win7.test.local`).
    if let Some((user, realm)) = str_at(r, "client").and_then(|c| c.split_once('/'))
        && !user.trim().is_empty()
        && get(r, "request_type").is_some()
    {
        let upn = if realm.trim().is_empty() {
            user.to_string()
        } else {
            format!("{user}@{realm}")
        };
        e.add(EntityKind::User, Role::Actor, Some(&upn));
    }
    if get(r, "request_type").is_some()
        && let Some((class, host)) = str_at(r, "service").and_then(|s| s.split_once('/'))
        && !class.eq_ignore_ascii_case("krbtgt")
    {
        let host = host.split([':', '/']).next().unwrap_or(host);
        e.add(EntityKind::Host, Role::Target, Some(host));
    }
    for algo in ["md5", "sha1", "sha256"] {
        e.add_at(EntityKind::FileHash, Role::Related, r, algo);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use serde_json::json;

    const NOTICE: &str = "alerts/zeek/notice/test-notice.log";
    const CONN: &str = "ocsf-examples/raw_sample_log_dataset/Zeek/conn.log";
    const DNS: &str = "ocsf-examples/raw_sample_log_dataset/Zeek/dns.log";
    const SSH: &str = "ocsf-examples/raw_sample_log_dataset/Zeek/ssh.log";
    const KERBEROS: &str = "ocsf-examples/raw_sample_log_dataset/Zeek/kerberos.log";

    #[test]
    fn notices_decode_field_by_field() {
        let out = decode_file(&Zeek, NOTICE);
        assert_eq!(out.len(), 4);

        let a = alert(&out[0]);
        assert_eq!(a.title, "SSH::Password_Guessing");
        let rule = a.rule.as_ref().unwrap();
        assert_eq!(rule.id.as_deref(), Some("SSH::Password_Guessing"));
        assert_eq!(rule.name.as_deref(), Some("SSH::Password_Guessing"));
        assert_eq!(
            a.description.as_deref(),
            Some("172.16.238.1 appears to be guessing SSH passwords (seen in 30 connections).")
        );
        assert_eq!(a.severity, Severity::unknown());
        assert_eq!(a.time.to_string(), "2011-11-04T19:44:35.879278Z");
        assert_eq!(a.time_original, "1320435875.879278");
        assert_eq!(a.source_id, None, "no uid");
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Source),
            ["172.16.238.1"]
        );
        assert!(ents(&out[0], EntityKind::Ip, Role::Target).is_empty());
        assert!(a.techniques.is_empty());

        let a = alert(&out[1]);
        assert_eq!(a.title, "Scan::Port_Scan");
        assert_eq!(a.time.to_string(), "2019-02-28T22:36:28.426472Z");
        assert_eq!(
            ents(&out[1], EntityKind::Ip, Role::Source),
            ["89.160.20.156"]
        );
        assert_eq!(
            ents(&out[1], EntityKind::Ip, Role::Target),
            ["89.160.20.156"]
        );

        let a = alert(&out[2]);
        assert_eq!(a.title, "CaptureLoss::Too_Much_Loss");
        assert_eq!(a.time.to_string(), "2021-03-30T09:49:00.958466Z");
        assert!(out[2].entities().is_empty());

        let a = alert(&out[3]);
        assert_eq!(a.title, "SSL::Invalid_Server_Cert");
        assert_eq!(
            a.description.as_deref(),
            Some("SSL certificate validation failed with (self signed certificate)")
        );
        assert_eq!(a.time.to_string(), "2021-03-30T09:52:09.601155Z");
        assert_eq!(
            a.source_id.as_deref(),
            Some("CmvrSS1wIiuOGYCbfi:SSL::Invalid_Server_Cert")
        );
        assert_eq!(ents(&out[3], EntityKind::Ip, Role::Source), ["10.156.0.2"]);
        assert_eq!(
            ents(&out[3], EntityKind::Ip, Role::Target),
            ["89.160.20.156"]
        );
        assert_eq!(out[3].original()["fuid"], "F39b0Bdfm3FW1rNS5");
    }

    // The ocsf-examples Zeek logs are Zeek's JSON form (one object per line), not TSV.
    #[test]
    fn conn_log_decodes_every_record() {
        let out = decode_file(&Zeek, CONN);
        assert_eq!(out.len(), 1250);
        for d in &out {
            let ev = event(d);
            assert_eq!(ev.action, "conn");
            assert_eq!(ev.source_id.as_deref(), d.original()["uid"].as_str());
        }
        let ev = event(&out[0]);
        assert_eq!(ev.source_id.as_deref(), Some("CPNkcu1aY5i3SzaKt1"));
        assert_eq!(ev.time.to_string(), "1989-12-12T22:00:00Z");
        assert_eq!(ev.time_original, "629503200.0");
        assert_eq!(ev.outcome, None);
        assert_eq!(ents(&out[0], EntityKind::Ip, Role::Source), ["10.0.0.1"]);
        assert_eq!(ents(&out[0], EntityKind::Ip, Role::Target), ["8.8.8.8"]);
    }

    #[test]
    fn dns_log_decodes_every_record() {
        let out = decode_file(&Zeek, DNS);
        assert_eq!(out.len(), 167);
        assert!(out.iter().all(|d| event(d).action == "dns"));
        assert!(
            out.iter().all(|d| d.source_id().is_none()),
            "dns records share their connection's uid"
        );
        assert_eq!(
            ents(&out[0], EntityKind::Domain, Role::Target),
            ["qfhhbbmvrk.de"]
        );
        assert_eq!(ents(&out[0], EntityKind::Ip, Role::Source), ["10.0.0.1"]);
        assert_eq!(ents(&out[0], EntityKind::Ip, Role::Target), ["8.8.8.8"]);
        assert_eq!(event(&out[0]).time.to_string(), "1989-12-12T22:00:00Z");
        // Some record carries answers: IP answers become related addresses.
        let with_answers = out
            .iter()
            .find(|d| d.original()["answers"].is_array())
            .expect("a dns answer in the corpus");
        let answers: Vec<String> = with_answers.original()["answers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .filter_map(canonical_ip)
            .collect();
        assert_eq!(ents(with_answers, EntityKind::Ip, Role::Related), answers);
    }

    #[test]
    fn ssh_and_kerberos_logs() {
        let out = decode_file(&Zeek, SSH);
        assert_eq!(out.len(), 40);
        assert!(out.iter().all(|d| event(d).action == "ssh"));
        let first = event(&out[0]);
        assert_eq!(first.time.to_string(), "2003-06-11T00:06:18.855137Z");
        assert_eq!(first.outcome, None, "no auth_success in the record");
        assert_eq!(
            ents(&out[0], EntityKind::Ip, Role::Source),
            ["66.59.111.190"]
        );
        assert_eq!(ents(&out[0], EntityKind::Ip, Role::Target), ["172.28.2.3"]);
        assert_eq!(event(&out[1]).outcome.as_deref(), Some("success"));

        let out = decode_file(&Zeek, KERBEROS);
        assert_eq!(out.len(), 13);
        let ev = event(&out[0]);
        assert_eq!(ev.action, "kerberos");
        assert_eq!(ev.outcome.as_deref(), Some("failure"));
        assert!(
            ents(&out[0], EntityKind::User, Role::Actor).is_empty(),
            "`/kerberos_realm_time.nasl` names no principal"
        );
        // A record with nothing but the connection id fields is of no known log.
        assert_eq!(event(&out[1]).action, "zeek");
        assert_eq!(event(&out[2]).outcome.as_deref(), Some("failure"));
        assert_eq!(
            ents(&out[2], EntityKind::User, Role::Actor),
            ["administrator@test.local"]
        );
        assert!(
            ents(&out[2], EntityKind::Host, Role::Target).is_empty(),
            "krbtgt"
        );
        assert_eq!(event(&out[3]).outcome.as_deref(), Some("success"));
        assert_eq!(ents(&out[4], EntityKind::Host, Role::Target), ["win7"]);
        assert_eq!(
            ents(&out[4], EntityKind::Ip, Role::Source),
            ["172.16.0.211"]
        );
        assert_eq!(
            ents(&out[4], EntityKind::Ip, Role::Target),
            ["172.16.0.100"]
        );
    }

    /// http and files records built from the field lists of Zeek's `base/protocols/http` and
    /// `base/frameworks/files` log documentation (no such logs in the corpus), with ISO times
    /// (`JSON::TS_ISO8601`) and a shipper's `_path`.
    #[test]
    fn http_and_files_from_the_zeek_docs() {
        let http = json!({"ts": "2021-03-30T09:52:09.601155Z", "uid": "CHhAvVGS1DHFjwGM9",
            "id.orig_h": "10.0.0.5", "id.orig_p": 49324, "id.resp_h": "93.184.216.34",
            "id.resp_p": 80, "trans_depth": 1, "method": "GET", "host": "www.example.com",
            "uri": "/payload.exe", "user_agent": "curl/8.0", "status_code": 200,
            "username": "bob", "resp_fuids": ["FakIhE3XhZ1bE0w6Yd"]});
        assert!(Zeek.recognises(&http));
        let d = Zeek.decode(http).unwrap().remove(0);
        let ev = event(&d);
        assert_eq!(ev.action, "http");
        assert_eq!(ev.source_id, None);
        assert_eq!(ev.time.to_string(), "2021-03-30T09:52:09.601155Z");
        let raw: Vec<(EntityKind, Role, &str)> = d
            .entities()
            .iter()
            .map(|e| (e.kind, e.role, e.value.as_str()))
            .collect();
        assert_eq!(
            raw,
            [
                (EntityKind::Ip, Role::Source, "10.0.0.5"),
                (EntityKind::Ip, Role::Target, "93.184.216.34"),
                (EntityKind::User, Role::Actor, "bob"),
                (EntityKind::Domain, Role::Target, "www.example.com"),
                (
                    EntityKind::Url,
                    Role::Target,
                    "http://www.example.com/payload.exe"
                ),
            ]
        );

        let files = json!({"_path": "files", "ts": 1617097929.7,
            "fuid": "FakIhE3XhZ1bE0w6Yd", "tx_hosts": ["93.184.216.34"],
            "rx_hosts": ["10.0.0.5"], "source": "HTTP", "mime_type": "application/x-dosexec",
            "md5": "44d88612fea8a8f36de82e1278abb02f",
            "sha1": "3395856ce81f2b7382dee72602f798b642f14140"});
        let d = Zeek.decode(files).unwrap().remove(0);
        assert_eq!(event(&d).action, "files");
        assert_eq!(event(&d).time.to_string(), "2021-03-30T09:52:09.7Z");
        assert_eq!(event(&d).time_original, "1617097929.7");
        let raw: Vec<(EntityKind, Role, &str)> = d
            .entities()
            .iter()
            .map(|e| (e.kind, e.role, e.value.as_str()))
            .collect();
        assert_eq!(
            raw,
            [
                (EntityKind::Ip, Role::Source, "93.184.216.34"),
                (EntityKind::Ip, Role::Target, "10.0.0.5"),
                (
                    EntityKind::FileHash,
                    Role::Related,
                    "44d88612fea8a8f36de82e1278abb02f"
                ),
                (
                    EntityKind::FileHash,
                    Role::Related,
                    "3395856ce81f2b7382dee72602f798b642f14140"
                ),
            ]
        );
    }

    #[test]
    fn ts_spellings() {
        let t = |ts: Value| {
            let r = json!({"ts": ts, "uid": "C1", "id.orig_h": "10.0.0.1", "history": "S"});
            Zeek.decode(r).unwrap()[0].time().to_string()
        };
        // Exact to the microsecond (an f64 would give …35.879277945).
        assert_eq!(t(json!(1320435875.879278)), "2011-11-04T19:44:35.879278Z");
        assert_eq!(t(json!("1320435875.879278")), "2011-11-04T19:44:35.879278Z");
        // A whole number is seconds.
        assert_eq!(t(json!(1320435875)), "2011-11-04T19:44:35Z");
        assert_eq!(
            t(json!("2011-11-04T19:44:35.879278Z")),
            "2011-11-04T19:44:35.879278Z"
        );
    }

    #[test]
    fn recognises_zeek_only() {
        for rel in [NOTICE, CONN, DNS, SSH, KERBEROS] {
            for r in corpus_records(rel, crate::InputKind::Json) {
                assert!(Zeek.recognises(&r), "{rel}");
            }
        }
        for rel in [
            "alerts/suricata/eve/test-eve-small.log",
            "alerts/okta/system/test-okta-system-events.log",
            "alerts/windows/security/test-4738.json",
            "ocsf-examples/encodings/ilf/example_logs/sechub-guardduty.ocsf",
        ] {
            for r in corpus_records(rel, crate::InputKind::Json) {
                assert!(!Zeek.recognises(&r), "{rel} is not Zeek");
            }
        }
    }

    #[test]
    fn bad_records_name_the_field() {
        assert_eq!(Zeek.decode(json!(["x"])).unwrap_err().field, "$");
        let e = Zeek.decode(json!({"note": "Scan::Port_Scan"})).unwrap_err();
        assert_eq!(e.to_string(), "field `ts`: missing");
        let e = Zeek
            .decode(json!({"ts": "not a time", "uid": "C1", "id.orig_h": "10.0.0.1"}))
            .unwrap_err();
        assert_eq!(e.field, "ts");
        let e = Zeek.decode(json!({"ts": [1], "note": "X"})).unwrap_err();
        assert_eq!(e.field, "ts");
        let e = Zeek
            .decode(json!({"ts": 1617097929.6, "note": 7}))
            .unwrap_err();
        assert_eq!(e.field, "note");
        let e = Zeek
            .decode(json!({"ts": 1617097929.6, "note": "X", "msg": {"a": 1}}))
            .unwrap_err();
        assert_eq!(e.field, "msg");
        let e = Zeek
            .decode(json!({"ts": 1617097929.6, "_path": 3}))
            .unwrap_err();
        assert_eq!(e.field, "_path");
    }
}
