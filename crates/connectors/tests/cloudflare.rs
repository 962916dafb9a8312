//! Cloudflare IP Access rules against a stand-in that checks requests as Cloudflare's API
//! documents them (bearer token, `POST …/firewall/access_rules/rules` with mode,
//! configuration and notes, the list filters, `DELETE …/rules/{id}`) and answers with
//! Cloudflare's envelope, error shapes included (10000 authentication, 10009 duplicate,
//! 7003 unknown zone, `success: false` under a 200).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Answer, Seen, StandIn};
use riposte_connectors::cloudflare;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError};
use serde_json::{Value, json};

const TOKEN: &str = "Sn3lZJTBX6kkg7OdcBUAxOO963GEIyGQqnFTOFYY";
const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const ACCOUNT: &str = "01a7362d577a6c3019a474fd6f485823";

fn secrets() -> Arc<StaticSecrets> {
    common::secrets(&[("cf_token", TOKEN)])
}

fn definition(url: &str, scope: &str) -> String {
    format!(
        "name: cf\nkind: cloudflare\nbase_url: {url}\napi_token: cf_token\n{scope}\ntimeout: 5s\n"
    )
}

fn edge(url: &str) -> Arc<dyn Connector> {
    Arc::new(
        cloudflare::load(
            "cf.yaml",
            &definition(url, &format!("zone_id: {ZONE}")),
            secrets(),
        )
        .expect("loads"),
    )
}

fn call(op: &str, params: Value, undo: Value) -> CallRequest {
    CallRequest {
        action_id: "act-1".into(),
        idempotency_key: "key-1".into(),
        operation: op.into(),
        params,
        undo,
        context: json!({"case": {"id": "case-7"}}),
        timeout: Duration::from_secs(5),
    }
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    mode: String,
    target: String,
    value: String,
    notes: String,
}

type Rules = Arc<Mutex<Vec<Rule>>>;

fn envelope_error(status: u16, code: u64, message: &str) -> Answer {
    Answer::json(
        status,
        json!({"result": null, "success": false, "errors": [{"code": code, "message": message}], "messages": []}),
    )
}

fn rule_json(r: &Rule, scope: &str) -> Value {
    json!({
        "id": r.id,
        "paused": false,
        "created_on": "2026-03-01T10:00:00.000000Z",
        "modified_on": "2026-03-01T10:00:00.000000Z",
        "allowed_modes": ["whitelist", "block", "challenge", "js_challenge", "managed_challenge"],
        "mode": r.mode,
        "notes": r.notes,
        "configuration": {"target": r.target, "value": r.value},
        "scope": {"id": scope, "type": if scope == ZONE { "zone" } else { "account" }},
    })
}

/// Cloudflare's access rules for one zone and one account.
fn cloudflare_api(rules: Rules) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        if req.header("authorization") != Some(format!("Bearer {TOKEN}").as_str()) {
            return envelope_error(403, 10000, "Authentication error");
        }
        let scope = [ZONE, ACCOUNT].into_iter().find(|id| {
            req.path.starts_with(&format!("/client/v4/zones/{id}/"))
                || req.path.starts_with(&format!("/client/v4/accounts/{id}/"))
        });
        let Some(scope) = scope else {
            return envelope_error(
                400,
                7003,
                &format!(
                    "Could not route to {}, perhaps your object identifier is invalid?",
                    req.path
                ),
            );
        };
        let kind = if req.path.starts_with("/client/v4/zones/") {
            "zones"
        } else {
            "accounts"
        };
        let base = format!("/client/v4/{kind}/{scope}/firewall/access_rules/rules");
        let mut rules = rules.lock().expect("rules");
        match req.method.as_str() {
            "POST" if req.path == base => {
                assert_eq!(req.header("content-type"), Some("application/json"));
                let body = req.json();
                let mut keys: Vec<&String> = body.as_object().expect("object").keys().collect();
                keys.sort();
                assert_eq!(keys, ["configuration", "mode", "notes"], "{body}");
                assert_eq!(body["mode"], "block");
                let target = body["configuration"]["target"].as_str().expect("target");
                let value = body["configuration"]["value"].as_str().expect("value");
                let fits = match target {
                    "ip" => value.parse::<std::net::Ipv4Addr>().is_ok(),
                    "ip6" => value.parse::<std::net::Ipv6Addr>().is_ok(),
                    "ip_range" => ["/16", "/24", "/32", "/48", "/64"]
                        .iter()
                        .any(|s| value.ends_with(s)),
                    _ => false,
                };
                if !fits {
                    return envelope_error(400, 10014, "firewallaccessrules.api.validation_error");
                }
                if rules.iter().any(|r| r.value == value) {
                    return envelope_error(
                        400,
                        10009,
                        "firewallaccessrules.api.duplicate_of_existing",
                    );
                }
                let rule = Rule {
                    id: format!("92f17202ed8bd63d69a66b86a49a{:04x}", rules.len()),
                    mode: "block".into(),
                    target: target.into(),
                    value: value.into(),
                    notes: body["notes"].as_str().expect("notes").into(),
                };
                let answer = json!({"result": rule_json(&rule, scope), "success": true, "errors": [], "messages": []});
                rules.push(rule);
                Answer::json(200, answer)
            }
            "GET" if req.path == base => {
                let q = req.query_pairs();
                let found: Vec<Value> = rules
                    .iter()
                    .filter(|r| {
                        q.get("configuration.target").is_none_or(|t| *t == r.target)
                            && q.get("configuration.value").is_none_or(|v| *v == r.value)
                    })
                    .map(|r| rule_json(r, scope))
                    .collect();
                Answer::json(
                    200,
                    json!({"result": found, "result_info": {"page": 1, "per_page": 50, "count": found.len(), "total_count": found.len()}, "success": true, "errors": [], "messages": []}),
                )
            }
            "DELETE" => {
                let id = req
                    .path
                    .strip_prefix(&format!("{base}/"))
                    .unwrap_or_default();
                match rules.iter().position(|r| r.id == id) {
                    Some(i) => {
                        rules.remove(i);
                        Answer::json(
                            200,
                            json!({"result": {"id": id}, "success": true, "errors": [], "messages": []}),
                        )
                    }
                    None => envelope_error(404, 10001, "Access rule not found"),
                }
            }
            _ => envelope_error(400, 7000, "No route for that URI"),
        }
    }
}

#[tokio::test]
async fn block_creates_a_rule_and_unblock_deletes_it_by_the_stored_id() {
    let rules: Rules = Arc::default();
    let s = StandIn::start(cloudflare_api(rules.clone())).await;
    let cf = edge(&s.url);
    let spec = cf.operation("block_ip").expect("block_ip");
    assert_eq!(spec.inverse.as_deref(), Some("unblock_ip"));
    assert!(spec.idempotent);

    let out = cf
        .call(&call(
            "block_ip",
            json!({"ip": "203.0.113.50", "notes": "password spray"}),
            json!(null),
        ))
        .await
        .expect("blocked");
    let id = rules.lock().expect("rules")[0].id.clone();
    assert_eq!(
        out.undo,
        json!({"rule_id": id, "ip": "203.0.113.50", "created": true})
    );

    cf.call(&call("unblock_ip", json!({}), out.undo))
        .await
        .expect("unblocked");
    assert!(rules.lock().expect("rules").is_empty());

    let seen = s.seen();
    let lines: Vec<String> = seen
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        lines,
        [
            format!("POST /client/v4/zones/{ZONE}/firewall/access_rules/rules"),
            format!("DELETE /client/v4/zones/{ZONE}/firewall/access_rules/rules/{id}"),
        ]
    );
    assert_eq!(
        seen[0].json(),
        json!({
            "mode": "block",
            "configuration": {"target": "ip", "value": "203.0.113.50"},
            "notes": "riposte case case-7: action act-1 — password spray",
        })
    );
    assert_eq!(seen[1].body, "");
}

#[tokio::test]
async fn targets_follow_the_address_and_unblockable_ranges_are_refused_before_sending() {
    let rules: Rules = Arc::default();
    let s = StandIn::start(cloudflare_api(rules.clone())).await;
    let cf = edge(&s.url);
    for (ip, target) in [
        ("2001:db8::1", "ip6"),
        ("198.51.100.0/24", "ip_range"),
        ("2001:db8:1::/48", "ip_range"),
    ] {
        cf.call(&call("block_ip", json!({"ip": ip}), json!(null)))
            .await
            .expect(ip);
        let last = rules
            .lock()
            .expect("rules")
            .last()
            .cloned()
            .expect("a rule");
        assert_eq!((last.target.as_str(), last.value.as_str()), (target, ip));
    }
    let before = s.seen().len();
    for bad in ["198.51.100.0/20", "2001:db8::/56", "not-an-ip"] {
        let e = cf
            .call(&call("block_ip", json!({"ip": bad}), json!(null)))
            .await
            .expect_err(bad);
        assert!(matches!(e, ConnectorError::Config { .. }), "{bad}: {e:?}");
    }
    assert_eq!(s.seen().len(), before);
}

#[tokio::test]
async fn a_duplicate_rule_is_adopted_when_ours_left_alone_when_not_and_refused_when_not_a_block() {
    let rules: Rules = Arc::default();
    let existing = |id: &str, mode: &str, value: &str, notes: &str| Rule {
        id: id.into(),
        mode: mode.into(),
        target: "ip".into(),
        value: value.into(),
        notes: notes.into(),
    };
    rules.lock().expect("rules").extend([
        existing(
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "block",
            "192.0.2.10",
            "riposte case case-7: action act-1",
        ),
        existing(
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "block",
            "192.0.2.11",
            "blocked by hand, ticket 4411",
        ),
        existing(
            "cccccccccccccccccccccccccccccccc",
            "whitelist",
            "192.0.2.12",
            "office",
        ),
    ]);
    let s = StandIn::start(cloudflare_api(rules.clone())).await;
    let cf = edge(&s.url);
    let block = |ip: &str| call("block_ip", json!({"ip": ip}), json!(null));

    // An earlier attempt of this very action made it (its answer was lost): ours to undo.
    let out = cf.call(&block("192.0.2.10")).await.expect("adopted");
    assert_eq!(
        out.undo,
        json!({"rule_id": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ip": "192.0.2.10", "created": true})
    );
    let seen = s.seen();
    assert_eq!(seen[1].method, "GET");
    assert_eq!(
        seen[1].query_pairs().into_iter().collect::<Vec<_>>(),
        [
            ("configuration.target".to_string(), "ip".to_string()),
            ("configuration.value".to_string(), "192.0.2.10".to_string()),
            ("per_page".to_string(), "50".to_string()),
        ]
    );

    // Someone else's block: the address is blocked; undoing this action leaves their rule.
    let out = cf
        .call(&block("192.0.2.11"))
        .await
        .expect("already blocked");
    assert_eq!(out.undo["created"], false);
    let sent = s.seen().len();
    let undo = cf
        .call(&call("unblock_ip", json!({}), out.undo))
        .await
        .expect("left alone");
    assert_eq!(undo.fields["left_in_place"], true);
    assert_eq!(s.seen().len(), sent, "nothing is deleted");
    assert_eq!(rules.lock().expect("rules").len(), 3);

    let e = cf
        .call(&block("192.0.2.12"))
        .await
        .expect_err("a whitelist rule");
    assert!(e.to_string().contains("mode `whitelist`"), "{e}");
    assert!(!e.retryable());
}

#[tokio::test]
async fn a_rule_already_gone_is_deleted_and_success_false_is_a_failure_whatever_the_status() {
    let rules: Rules = Arc::default();
    let real = cloudflare_api(rules.clone());
    let s = StandIn::start(move |req: &Seen, n| {
        if req.method == "POST" && req.body.contains("192.0.2.99") {
            // Cloudflare's envelope can say no under a 200.
            return Answer::json(200, json!({"result": null, "success": false, "errors": [{"code": 10013, "message": "firewallaccessrules.api.internal_limit_exceeded"}], "messages": []}));
        }
        real(req, n)
    })
    .await;
    let cf = edge(&s.url);
    let gone =
        json!({"rule_id": "dddddddddddddddddddddddddddddddd", "ip": "192.0.2.1", "created": true});
    let out = cf
        .call(&call("unblock_ip", json!({}), gone))
        .await
        .expect("gone is deleted");
    assert_eq!(out.status, Some(404));

    let e = cf
        .call(&call("block_ip", json!({"ip": "192.0.2.99"}), json!(null)))
        .await
        .expect_err("success false");
    assert!(e.to_string().contains("internal_limit_exceeded"), "{e}");
    assert!(e.to_string().contains("10013"), "{e}");

    let e = cf
        .call(&call("unblock_ip", json!({"ip": "192.0.2.1"}), json!(null)))
        .await
        .expect_err("no rule id");
    assert!(e.to_string().contains("rule_id"), "{e}");
}

#[tokio::test]
async fn the_check_lists_the_rules_for_the_address() {
    let rules: Rules = Arc::default();
    let s = StandIn::start(cloudflare_api(rules.clone())).await;
    let cf = edge(&s.url);
    let block = call("block_ip", json!({"ip": "192.0.2.20"}), json!(null));
    assert_eq!(cf.check(&block).expect("check").await.expect("asked"), None);
    rules.lock().expect("rules").push(Rule {
        id: "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee".into(),
        mode: "block".into(),
        target: "ip".into(),
        value: "192.0.2.20".into(),
        notes: "riposte case case-7: action act-1".into(),
    });
    let done = cf
        .check(&block)
        .expect("check")
        .await
        .expect("asked")
        .expect("exists");
    assert_eq!(done.undo["rule_id"], "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
    assert_eq!(done.undo["created"], true);
    let unblock = call("unblock_ip", json!({}), done.undo);
    assert_eq!(
        cf.check(&unblock).expect("check").await.expect("asked"),
        None
    );
    rules.lock().expect("rules").clear();
    assert!(
        cf.check(&unblock)
            .expect("check")
            .await
            .expect("asked")
            .is_some()
    );
    assert!(s.seen().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn an_account_scope_uses_the_account_path() {
    let rules: Rules = Arc::default();
    let s = StandIn::start(cloudflare_api(rules)).await;
    let cf = cloudflare::load(
        "cf.yaml",
        &definition(&s.url, &format!("account_id: {ACCOUNT}")),
        secrets(),
    )
    .expect("loads");
    let out = cf
        .call(&call("block_ip", json!({"ip": "192.0.2.30"}), json!(null)))
        .await
        .expect("blocked");
    cf.call(&call("unblock_ip", json!({}), out.undo))
        .await
        .expect("unblocked");
    assert!(
        s.seen().iter().all(|r| r.path.starts_with(&format!(
            "/client/v4/accounts/{ACCOUNT}/firewall/access_rules/rules"
        ))),
        "{:?}",
        s.seen()
    );
}

#[tokio::test]
async fn vendor_errors_are_classified_and_never_carry_the_token() {
    let rules: Rules = Arc::default();
    let real = cloudflare_api(rules);
    let s = StandIn::start(move |req: &Seen, n| {
        if req.body.contains("192.0.2.41\"") {
            envelope_error(401, 10000, "Authentication error")
        } else if req.body.contains("192.0.2.42\"") {
            envelope_error(
                429,
                971,
                "Please wait and consider throttling your request speed",
            )
            .with_header("Retry-After", "12")
        } else if req.body.contains("192.0.2.43\"") {
            Answer::text(502, "text/html", "<html>502 Bad Gateway</html>")
        } else if req.body.contains("192.0.2.44\"") {
            Answer::text(200, "text/html", "<html>a captive portal</html>")
        } else {
            real(req, n)
        }
    })
    .await;
    let cf = edge(&s.url);
    let block = |ip: &str| call("block_ip", json!({"ip": ip}), json!(null));
    let mut messages = Vec::new();

    let wrong = cloudflare::load(
        "cf.yaml",
        &definition(&s.url, &format!("zone_id: {ZONE}")),
        common::secrets(&[("cf_token", "revoked-token")]),
    )
    .expect("loads");
    let e = wrong.call(&block("192.0.2.40")).await.expect_err("403");
    assert!(
        matches!(
            e,
            ConnectorError::Rejected {
                status: Some(403),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("secret `cf_token`"), "{e}");
    assert!(e.to_string().contains("Authentication error"), "{e}");
    assert!(!e.retryable());
    messages.push(format!("{e} {e:?} {wrong:?}"));

    let e = cf.call(&block("192.0.2.41")).await.expect_err("401");
    assert!(
        matches!(
            e,
            ConnectorError::Rejected {
                status: Some(401),
                ..
            }
        ),
        "{e:?}"
    );
    messages.push(format!("{e} {e:?}"));

    let e = cf.call(&block("192.0.2.42")).await.expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(12)
        }
    );

    let e = cf.call(&block("192.0.2.43")).await.expect_err("502");
    assert!(e.retryable(), "{e:?}");
    messages.push(format!("{e} {e:?}"));

    let e = cf
        .call(&block("192.0.2.44"))
        .await
        .expect_err("not the API");
    assert!(e.to_string().contains("envelope"), "{e}");
    messages.push(format!("{e} {e:?}"));

    // A zone id Cloudflare does not know: 7003, not worth retrying.
    let unknown = cloudflare::load(
        "cf.yaml",
        &definition(&s.url, "zone_id: ffffffffffffffffffffffffffffffff"),
        secrets(),
    )
    .expect("loads");
    let e = unknown
        .call(&block("192.0.2.45"))
        .await
        .expect_err("unknown zone");
    assert!(
        e.to_string()
            .contains("perhaps your object identifier is invalid"),
        "{e}"
    );
    assert!(e.to_string().contains("7003"), "{e}");
    assert!(!e.retryable());
    messages.push(format!("{e} {e:?}"));

    for m in &messages {
        assert!(!m.contains(TOKEN), "the token leaked into: {m}");
    }
}

#[test]
fn definitions_are_checked_field_by_field() {
    let load = |t: &str| cloudflare::load("cf.yaml", t, secrets());
    let base = "name: cf\nkind: cloudflare\napi_token: t\n";
    load(&format!("{base}zone_id: {ZONE}\n")).expect("loads");
    let e = load(base).expect_err("no scope");
    assert!(e.to_string().contains("zone_id"), "{e}");
    let e = load(&format!("{base}zone_id: {ZONE}\naccount_id: {ACCOUNT}\n")).expect_err("both");
    assert!(e.to_string().contains("exactly one"), "{e}");
    let e = load(&format!("{base}zone_id: example.com\n")).expect_err("not an id");
    assert_eq!(e.line, 4, "{e}");
    let e = load(&format!("name: cf\nkind: cloudflare\nzone_id: {ZONE}\n")).expect_err("no token");
    assert!(e.to_string().contains("api_token"), "{e}");
}

#[test]
fn the_documented_example_loads() {
    let path = "../../docs/playbooks/config/connectors/cloudflare.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(riposte_respond::Templates::default()),
        secrets(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.name(), "cloudflare");
    assert!(c.operation("unblock_ip").is_some());
}
