//! Okta against a stand-in that checks requests as Okta's Users API documents them: `SSWS`
//! authentication, users by id or login, the suspend / unsuspend lifecycle with Okta's own
//! preconditions, clearing sessions, the undo record that remembers the status from before,
//! and Okta's error and rate-limit shapes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Answer, Seen, StandIn};
use riposte_connectors::okta;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Class, Connector, ConnectorError};
use serde_json::{Value, json};

const UID: &str = "00ub0oNGTSWTBKOLGLNR";
const LOGIN: &str = "alice@corp.example";
const TOKEN: &str = "00QCjAl4MlV-WPXM-ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn okta_at(url: &str) -> Arc<dyn Connector> {
    let text =
        format!("name: okta\nkind: okta\nbase_url: {url}\napi_token: okta_token\ntimeout: 5s\n");
    Arc::new(
        okta::load(
            "okta.yaml",
            &text,
            common::secrets(&[("okta_token", TOKEN)]),
        )
        .expect("loads"),
    )
}

fn call(op: &str, params: Value, undo: Value, key: &str) -> CallRequest {
    CallRequest {
        action_id: "act-9".into(),
        idempotency_key: key.into(),
        operation: op.into(),
        params,
        undo,
        context: json!({}),
        timeout: Duration::from_secs(5),
    }
}

fn okta_error(status: u16, code: &str, summary: &str, causes: &[&str]) -> Answer {
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    Answer::json(
        status,
        json!({"errorCode": code, "errorSummary": summary, "errorLink": code,
               "errorId": "oaeJHqeV3rMR0yO4XaDiZ2v0w", "errorCauses": causes}),
    )
}

fn user(status: &str) -> Value {
    json!({"id": UID, "status": status, "created": "2024-01-10T09:00:00.000Z",
           "statusChanged": "2024-02-01T09:00:00.000Z", "type": {"id": "oty1"},
           "profile": {"login": LOGIN, "email": LOGIN, "firstName": "Alice", "lastName": "Doe"},
           "_links": {"self": {"href": format!("https://corp.okta.com/api/v1/users/{UID}")}}})
}

/// Answers like Okta's Users API, with its lifecycle preconditions.
fn vendor(status: Arc<Mutex<&'static str>>) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        if req.header("authorization") != Some(format!("SSWS {TOKEN}").as_str()) {
            return okta_error(401, "E0000011", "Invalid token provided", &[]);
        }
        if req.header("accept") != Some("application/json") {
            return okta_error(406, "E0000031", "Invalid Accept header", &[]);
        }
        let mut st = status.lock().expect("status");
        let rest = req.path.strip_prefix("/api/v1/users/").unwrap_or("");
        let parts: Vec<&str> = rest.split('/').collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["busy@corp.example"]) => {
                let reset = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .expect("now")
                    .as_secs()
                    + 30;
                okta_error(
                    429,
                    "E0000047",
                    "API call exceeded rate limit due to too many requests.",
                    &[],
                )
                .with_header("X-Rate-Limit-Limit", "600")
                .with_header("X-Rate-Limit-Remaining", "0")
                .with_header("X-Rate-Limit-Reset", &reset.to_string())
            }
            ("GET", ["down@corp.example"]) => {
                Answer::text(503, "text/html", "<html>Service Unavailable</html>")
            }
            ("GET", [key]) if *key == UID || *key == LOGIN => Answer::json(200, user(&st)),
            ("GET", [key]) => okta_error(
                404,
                "E0000007",
                &format!("Not found: Resource not found: {key} (User)"),
                &[],
            ),
            // Lifecycle operations by id, as riposte sends them once it has read the user.
            ("POST", [UID, "lifecycle", op]) => {
                if !req.body.is_empty() {
                    return okta_error(
                        400,
                        "E0000003",
                        "The request body was not well-formed.",
                        &[],
                    );
                }
                match (*op, *st) {
                    ("suspend", "ACTIVE") => *st = "SUSPENDED",
                    ("unsuspend", "SUSPENDED") => *st = "ACTIVE",
                    ("suspend", _) => {
                        return okta_error(
                            400,
                            "E0000001",
                            "Api validation failed: suspendUser",
                            &["Cannot suspend a user that is not active"],
                        );
                    }
                    ("unsuspend", _) => {
                        return okta_error(
                            400,
                            "E0000001",
                            "Api validation failed: unsuspendUser",
                            &["Cannot unsuspend a user that is not suspended"],
                        );
                    }
                    _ => {
                        return okta_error(
                            404,
                            "E0000022",
                            "The endpoint does not support the provided HTTP method",
                            &[],
                        );
                    }
                }
                Answer::json(200, json!({}))
            }
            ("DELETE", [UID, "sessions"]) => Answer::empty(204),
            ("POST" | "DELETE", [other, ..]) => okta_error(
                404,
                "E0000007",
                &format!("Not found: Resource not found: {other} (User)"),
                &[],
            ),
            _ => okta_error(
                404,
                "E0000022",
                "The endpoint does not support the provided HTTP method",
                &[],
            ),
        }
    }
}

fn lines(s: &StandIn) -> Vec<String> {
    s.seen()
        .iter()
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect()
}

#[tokio::test]
async fn suspend_by_login_then_unsuspend_with_the_undo_record() {
    let status = Arc::new(Mutex::new("ACTIVE"));
    let s = StandIn::start(vendor(status.clone())).await;
    let c = okta_at(&s.url);
    let spec = c.operation("suspend_user").expect("suspend_user");
    assert_eq!(spec.inverse.as_deref(), Some("unsuspend_user"));
    assert_eq!(spec.class, Class::Approve);

    let out = c
        .call(&call(
            "suspend_user",
            json!({"login": LOGIN}),
            json!(null),
            "k1",
        ))
        .await
        .expect("suspended");
    assert_eq!(
        out.undo,
        json!({"user_id": UID, "previous_status": "ACTIVE"})
    );
    assert_eq!(out.fields["changed"], true);
    assert_eq!(*status.lock().expect("s"), "SUSPENDED");

    let back = c
        .call(&call(
            "unsuspend_user",
            json!({"login": LOGIN}),
            out.undo,
            "k2",
        ))
        .await
        .expect("unsuspended");
    assert_eq!(back.fields["changed"], true);
    assert_eq!(*status.lock().expect("s"), "ACTIVE");

    assert_eq!(
        lines(&s),
        [
            format!("GET /api/v1/users/{LOGIN}?"),
            format!("POST /api/v1/users/{UID}/lifecycle/suspend?"),
            // The inverse reads the user by the stored id, then lifts the suspension.
            format!("GET /api/v1/users/{UID}?"),
            format!("POST /api/v1/users/{UID}/lifecycle/unsuspend?"),
        ]
    );
    let seen = s.seen();
    assert_eq!(
        seen[1].header("authorization"),
        Some(format!("SSWS {TOKEN}").as_str())
    );
    assert_eq!(seen[1].body, "");
}

#[tokio::test]
async fn a_user_suspended_before_riposte_acted_stays_suspended_on_undo() {
    let status = Arc::new(Mutex::new("SUSPENDED"));
    let s = StandIn::start(vendor(status.clone())).await;
    let c = okta_at(&s.url);
    let out = c
        .call(&call(
            "suspend_user",
            json!({"user_id": UID}),
            json!(null),
            "k1",
        ))
        .await
        .expect("nothing to do");
    assert_eq!(
        out.undo,
        json!({"user_id": UID, "previous_status": "SUSPENDED"})
    );
    assert_eq!(out.fields["changed"], false);
    let back = c
        .call(&call("unsuspend_user", json!({}), out.undo, "k2"))
        .await
        .expect("nothing to restore");
    assert_eq!(back.fields["changed"], false);
    assert_eq!(*status.lock().expect("s"), "SUSPENDED");
    assert_eq!(
        lines(&s),
        [format!("GET /api/v1/users/{UID}?")],
        "only the first read"
    );
}

#[tokio::test]
async fn a_retried_suspend_records_the_status_from_before_its_first_attempt() {
    let status = Arc::new(Mutex::new("ACTIVE"));
    let s = StandIn::start(vendor(status.clone())).await;
    let c = okta_at(&s.url);
    c.call(&call(
        "suspend_user",
        json!({"login": LOGIN}),
        json!(null),
        "same",
    ))
    .await
    .expect("first attempt");
    // Its answer was lost; the engine retries with the same key and finds the user suspended.
    let retry = c
        .call(&call(
            "suspend_user",
            json!({"login": LOGIN}),
            json!(null),
            "same",
        ))
        .await
        .expect("retry");
    assert_eq!(retry.undo["previous_status"], "ACTIVE");
    // So the undo still lifts the suspension riposte made.
    c.call(&call("unsuspend_user", json!({}), retry.undo, "undo"))
        .await
        .expect("undone");
    assert_eq!(*status.lock().expect("s"), "ACTIVE");
}

#[tokio::test]
async fn the_check_finds_a_suspension_and_its_undo_refuses_to_guess_the_status_before() {
    let status = Arc::new(Mutex::new("ACTIVE"));
    let s = StandIn::start(vendor(status.clone())).await;
    let c = okta_at(&s.url);
    let req = call("suspend_user", json!({"login": LOGIN}), json!(null), "k1");
    assert_eq!(c.check(&req).expect("check").await.expect("asked"), None);
    *status.lock().expect("s") = "SUSPENDED";
    let done = c
        .check(&req)
        .expect("check")
        .await
        .expect("asked")
        .expect("done");
    assert_eq!(done.undo, json!({"user_id": UID, "previous_status": null}));
    assert!(
        s.seen().iter().all(|r| r.method == "GET"),
        "a check only reads"
    );
    let e = c
        .call(&call("unsuspend_user", json!({}), done.undo, "k2"))
        .await
        .expect_err("unknown before");
    assert!(
        e.to_string().contains("before riposte acted is unknown"),
        "{e}"
    );
    assert_eq!(*status.lock().expect("s"), "SUSPENDED");
    assert!(
        c.check(&call(
            "clear_sessions",
            json!({"user_id": UID}),
            json!(null),
            "k"
        ))
        .is_none()
    );
}

#[tokio::test]
async fn clear_sessions_is_irreversible_and_can_revoke_oauth_tokens() {
    let status = Arc::new(Mutex::new("ACTIVE"));
    let s = StandIn::start(vendor(status.clone())).await;
    let c = okta_at(&s.url);
    let spec = c.operation("clear_sessions").expect("clear_sessions");
    assert!(spec.irreversible && spec.inverse.is_none());
    assert_eq!(spec.floor_class(), Class::Approve);
    let out = c
        .call(&call(
            "clear_sessions",
            json!({"login": LOGIN, "oauth_tokens": true}),
            json!(null),
            "k",
        ))
        .await
        .expect("cleared");
    assert_eq!(out.status, Some(204));
    assert_eq!(out.fields["oauth_tokens_revoked"], true);
    c.call(&call(
        "clear_sessions",
        json!({"user_id": UID}),
        json!(null),
        "k2",
    ))
    .await
    .expect("cleared");
    assert_eq!(
        lines(&s),
        [
            format!("GET /api/v1/users/{LOGIN}?"),
            format!("DELETE /api/v1/users/{UID}/sessions?oauthTokens=true"),
            format!("DELETE /api/v1/users/{UID}/sessions?"),
        ]
    );
    let e = c
        .call(&call(
            "clear_sessions",
            json!({"user_id": "00unope"}),
            json!(null),
            "k3",
        ))
        .await
        .expect_err("404");
    assert!(e.to_string().contains("no Okta user `00unope`"), "{e}");
    let e = c
        .call(&call(
            "clear_sessions",
            json!({"user_id": UID, "oauth_tokens": "yes"}),
            json!(null),
            "k4",
        ))
        .await
        .expect_err("bad flag");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");
}

#[tokio::test]
async fn okta_refusals_are_clear_and_a_refused_token_names_its_secret() {
    let status = Arc::new(Mutex::new("DEPROVISIONED"));
    let s = StandIn::start(vendor(status.clone())).await;
    let c = okta_at(&s.url);
    let e = c
        .call(&call(
            "suspend_user",
            json!({"login": "nobody@corp.example"}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("404");
    assert!(
        matches!(
            e,
            ConnectorError::Rejected {
                status: Some(404),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("no Okta user `nobody@corp.example`"),
        "{e}"
    );
    assert!(e.to_string().contains("E0000007"), "{e}");
    let e = c
        .call(&call(
            "suspend_user",
            json!({"login": LOGIN}),
            json!(null),
            "k2",
        ))
        .await
        .expect_err("not active");
    assert!(
        e.to_string().contains(
            "E0000001 Api validation failed: suspendUser (Cannot suspend a user that is not active)"
        ),
        "{e}"
    );
    assert!(!e.retryable());
    let e = c
        .call(&call("suspend_user", json!({}), json!(null), "k3"))
        .await
        .expect_err("no user");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");

    let refused =
        StandIn::start(|_, _| okta_error(401, "E0000011", "Invalid token provided", &[])).await;
    let c = okta_at(&refused.url);
    let e = c
        .call(&call(
            "suspend_user",
            json!({"user_id": UID}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("401");
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
    let shown = format!("{e} {e:?}");
    assert!(
        shown.contains("secret `okta_token`") && shown.contains("E0000011"),
        "{shown}"
    );
    assert!(!shown.contains(TOKEN), "{shown}");
    assert_eq!(refused.seen().len(), 1, "a static token is not refreshed");
}

#[tokio::test]
async fn rate_limits_honour_the_reset_header_and_outages_are_retryable() {
    let status = Arc::new(Mutex::new("ACTIVE"));
    let s = StandIn::start(vendor(status)).await;
    let c = okta_at(&s.url);
    let e = c
        .call(&call(
            "suspend_user",
            json!({"login": "busy@corp.example"}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("429");
    match e {
        ConnectorError::RateLimited {
            retry_after_secs: Some(s),
        } => {
            assert!((29..=30).contains(&s), "X-Rate-Limit-Reset gives {s}")
        }
        other => panic!("busy@corp.example: {other:?}"),
    }
    let e = c
        .call(&call(
            "suspend_user",
            json!({"login": "down@corp.example"}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("503");
    assert!(e.retryable(), "{e:?}");
    assert!(!format!("{e:?}").contains(TOKEN));

    // Retry-After, when Okta sends it, wins over the reset time.
    let both = StandIn::start(|_, _| {
        okta_error(
            429,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
            &[],
        )
        .with_header("Retry-After", "4")
        .with_header("X-Rate-Limit-Reset", "4102444800")
    })
    .await;
    let e = okta_at(&both.url)
        .call(&call(
            "clear_sessions",
            json!({"user_id": UID}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(4)
        }
    );
}

const ADMINS: &str = "00g1emaKYZTWRYYRRTSK";
const HELPDESK: &str = "00g2xyzHELPDESK00001";
const AD_ADMINS: &str = "00g3appAD0DomainAdm1";
const SCOPED_OUT: &str = "00g4outsideAdminRole";

struct OktaGroup {
    name: &'static str,
    kind: &'static str,
    members: BTreeSet<String>,
}

struct Org {
    groups: BTreeMap<&'static str, OktaGroup>,
    /// Groups of the user listed before the ones above, so that finding those takes pages.
    other_groups: usize,
    foreign_next_link: bool,
}

fn org() -> Arc<Mutex<Org>> {
    let g = |name, kind, member: bool| OktaGroup {
        name,
        kind,
        members: if member {
            [UID.to_string()].into()
        } else {
            BTreeSet::new()
        },
    };
    Arc::new(Mutex::new(Org {
        groups: [
            (ADMINS, g("Okta Super Admins", "OKTA_GROUP", true)),
            (HELPDESK, g("Helpdesk", "OKTA_GROUP", false)),
            (AD_ADMINS, g("Domain Admins", "APP_GROUP", true)),
            (SCOPED_OUT, g("Finance Approvers", "OKTA_GROUP", true)),
        ]
        .into_iter()
        .collect(),
        other_groups: 5,
        foreign_next_link: false,
    }))
}

fn okta_group(id: &str, g: &OktaGroup) -> Value {
    json!({"id": id, "created": "2024-02-06T10:11:28.000Z", "lastUpdated": "2024-10-05T19:16:43.000Z",
           "lastMembershipUpdated": "2025-03-01T09:00:00.000Z", "objectClass": ["okta:user_group"],
           "type": g.kind, "profile": {"name": g.name, "description": null},
           "_links": {"self": {"href": format!("https://corp.okta.com/api/v1/groups/{id}")}}})
}

const GROUPS_PAGE: usize = 2;

/// Answers like Okta's Users and Groups APIs for group memberships.
fn groups_vendor(o: Arc<Mutex<Org>>) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        if req.header("authorization") != Some(format!("SSWS {TOKEN}").as_str()) {
            return okta_error(401, "E0000011", "Invalid token provided", &[]);
        }
        if req.header("accept") != Some("application/json") {
            return okta_error(406, "E0000031", "Invalid Accept header", &[]);
        }
        let mut o = o.lock().expect("org");
        let host = req.header("host").expect("host").to_string();
        let parts: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let not_found = |id: &str, kind: &str| {
            okta_error(
                404,
                "E0000007",
                &format!("Not found: Resource not found: {id} ({kind})"),
                &[],
            )
        };
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["api", "v1", "users", key]) if *key == UID || *key == LOGIN => {
                Answer::json(200, user("ACTIVE"))
            }
            ("GET", ["api", "v1", "users", UID, "groups"]) => {
                let from: usize = req
                    .query_pairs()
                    .get("after")
                    .map(|a| a.parse().expect("after"))
                    .unwrap_or(0);
                let mut all: Vec<Value> = (0..o.other_groups)
                    .map(|i| {
                        let id = format!("00gother{i:012}");
                        okta_group(
                            &id,
                            &OktaGroup {
                                name: "Other",
                                kind: "OKTA_GROUP",
                                members: BTreeSet::new(),
                            },
                        )
                    })
                    .collect();
                for (id, g) in &o.groups {
                    if g.members.contains(UID) {
                        all.push(okta_group(id, g));
                    }
                }
                let page: Vec<Value> = all.iter().skip(from).take(GROUPS_PAGE).cloned().collect();
                let me = format!("http://{host}/api/v1/users/{UID}/groups");
                let mut links = format!("<{me}>; rel=\"self\"");
                if from + GROUPS_PAGE < all.len() {
                    let next_host = if o.foreign_next_link {
                        "okta.evil.example"
                    } else {
                        host.as_str()
                    };
                    links.push_str(&format!(
                        ", <http://{next_host}/api/v1/users/{UID}/groups?after={}>; rel=\"next\"",
                        from + GROUPS_PAGE
                    ));
                }
                Answer::json(200, json!(page)).with_header("Link", &links)
            }
            ("GET", ["api", "v1", "users", other, ..]) => not_found(other, "User"),
            ("GET", ["api", "v1", "groups", "busy-group"]) => okta_error(
                429,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
                &[],
            )
            .with_header("X-Rate-Limit-Reset", &(now() + 20).to_string()),
            ("GET", ["api", "v1", "groups", "down-group"]) => {
                Answer::text(502, "text/html", "<html>Bad Gateway</html>")
            }
            ("GET", ["api", "v1", "groups", gid]) => match o.groups.get(*gid) {
                Some(g) => Answer::json(200, okta_group(gid, g)),
                None => not_found(gid, "UserGroup"),
            },
            (m @ ("PUT" | "DELETE"), ["api", "v1", "groups", gid, "users", uid]) => {
                if !req.body.is_empty() {
                    return okta_error(
                        400,
                        "E0000003",
                        "The request body was not well-formed.",
                        &[],
                    );
                }
                if *uid != UID {
                    return not_found(uid, "User");
                }
                let Some(g) = o.groups.get_mut(*gid) else {
                    return not_found(gid, "UserGroup");
                };
                if *gid == SCOPED_OUT {
                    return okta_error(
                        403,
                        "E0000006",
                        "You do not have permission to perform the requested action",
                        &[],
                    );
                }
                if g.kind != "OKTA_GROUP" {
                    return okta_error(
                        400,
                        "E0000001",
                        "Api validation failed: members",
                        &["Cannot modify members of an APP_GROUP"],
                    );
                }
                if m == "PUT" {
                    g.members.insert(UID.to_string());
                } else {
                    g.members.remove(UID);
                }
                Answer::empty(204)
            }
            _ => okta_error(
                404,
                "E0000022",
                "The endpoint does not support the provided HTTP method",
                &[],
            ),
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("now")
        .as_secs()
}

fn in_group(o: &Arc<Mutex<Org>>, gid: &str) -> bool {
    o.lock().expect("org").groups[gid].members.contains(UID)
}

#[tokio::test]
async fn remove_from_a_group_by_login_then_add_back_with_the_undo_record() {
    let o = org();
    let s = StandIn::start(groups_vendor(o.clone())).await;
    let c = okta_at(&s.url);
    let spec = c.operation("remove_from_group").expect("remove_from_group");
    assert_eq!(spec.inverse.as_deref(), Some("add_to_group"));
    assert_eq!(spec.class, Class::Approve);
    assert!(spec.idempotent && !spec.irreversible);
    assert_eq!(
        c.operation("add_to_group")
            .and_then(|o| o.inverse.clone())
            .as_deref(),
        Some("remove_from_group")
    );

    let out = c
        .call(&call(
            "remove_from_group",
            json!({"login": LOGIN, "group_id": ADMINS}),
            json!(null),
            "k1",
        ))
        .await
        .expect("removed");
    assert_eq!(
        out.undo,
        json!({"user_id": UID, "group_id": ADMINS, "was_member": true})
    );
    assert_eq!(out.fields["group_name"], "Okta Super Admins");
    assert_eq!(out.fields["changed"], true);
    assert_eq!(out.status, Some(204));
    assert!(!in_group(&o, ADMINS));

    let back = c
        .call(&call("add_to_group", json!({}), out.undo, "k2"))
        .await
        .expect("added back");
    assert_eq!(back.fields["changed"], true);
    assert!(in_group(&o, ADMINS));

    let groups = format!("GET /api/v1/users/{UID}/groups?");
    let after = |n: usize| format!("GET /api/v1/users/{UID}/groups?after={n}");
    assert_eq!(
        lines(&s),
        [
            format!("GET /api/v1/users/{LOGIN}?"),
            format!("GET /api/v1/groups/{ADMINS}?"),
            groups.clone(),
            after(2),
            after(4),
            format!("DELETE /api/v1/groups/{ADMINS}/users/{UID}?"),
            // The inverse names the user by the id it stored.
            format!("GET /api/v1/groups/{ADMINS}?"),
            groups,
            after(2),
            after(4),
            after(6),
            format!("PUT /api/v1/groups/{ADMINS}/users/{UID}?"),
        ]
    );
    for r in s.seen().iter().filter(|r| r.method != "GET") {
        assert_eq!(
            r.header("authorization"),
            Some(format!("SSWS {TOKEN}").as_str())
        );
        assert_eq!(r.body, "", "{} {}", r.method, r.path);
    }
}

#[tokio::test]
async fn a_user_who_was_not_a_member_stays_out_when_the_removal_is_undone() {
    let o = org();
    let s = StandIn::start(groups_vendor(o.clone())).await;
    let c = okta_at(&s.url);
    let out = c
        .call(&call(
            "remove_from_group",
            json!({"user_id": UID, "group_id": HELPDESK}),
            json!(null),
            "k1",
        ))
        .await
        .expect("nothing to remove");
    assert_eq!(
        out.undo,
        json!({"user_id": UID, "group_id": HELPDESK, "was_member": false})
    );
    assert_eq!(out.fields["changed"], false);
    let back = c
        .call(&call("add_to_group", json!({}), out.undo, "k2"))
        .await
        .expect("nothing to restore");
    assert_eq!(back.fields["changed"], false);
    assert!(!in_group(&o, HELPDESK), "undo must not add a non-member");

    let out = c
        .call(&call(
            "add_to_group",
            json!({"user_id": UID, "group_id": ADMINS}),
            json!(null),
            "k3",
        ))
        .await
        .expect("already a member");
    assert_eq!(out.undo["was_member"], true);
    c.call(&call("remove_from_group", json!({}), out.undo, "k4"))
        .await
        .expect("nothing to undo");
    assert!(
        in_group(&o, ADMINS),
        "undo must not remove an earlier member"
    );
    assert!(
        s.seen().iter().all(|r| r.method == "GET"),
        "{:?}",
        lines(&s)
    );
}

#[tokio::test]
async fn a_retried_removal_records_the_membership_from_before_its_first_attempt() {
    let o = org();
    let s = StandIn::start(groups_vendor(o.clone())).await;
    let c = okta_at(&s.url);
    let req = call(
        "remove_from_group",
        json!({"user_id": UID, "group_id": ADMINS}),
        json!(null),
        "same",
    );
    c.call(&req).await.expect("first attempt");
    let retry = c.call(&req).await.expect("retry");
    assert_eq!(retry.undo["was_member"], true);
    assert_eq!(retry.fields["changed"], false);
    c.call(&call("add_to_group", json!({}), retry.undo, "undo"))
        .await
        .expect("undone");
    assert!(in_group(&o, ADMINS));
}

#[tokio::test]
async fn the_membership_check_only_reads_and_its_undo_refuses_to_guess() {
    let o = org();
    let s = StandIn::start(groups_vendor(o.clone())).await;
    let c = okta_at(&s.url);
    let req = call(
        "remove_from_group",
        json!({"login": LOGIN, "group_id": ADMINS}),
        json!(null),
        "k",
    );
    assert_eq!(c.check(&req).expect("check").await.expect("asked"), None);
    o.lock()
        .expect("org")
        .groups
        .get_mut(ADMINS)
        .expect("g")
        .members
        .clear();
    let done = c
        .check(&req)
        .expect("check")
        .await
        .expect("asked")
        .expect("took effect");
    assert_eq!(
        done.undo,
        json!({"user_id": UID, "group_id": ADMINS, "was_member": null})
    );
    assert!(
        s.seen().iter().all(|r| r.method == "GET"),
        "a check only reads"
    );
    let e = c
        .call(&call("add_to_group", json!({}), done.undo, "k2"))
        .await
        .expect_err("unknown before");
    assert!(
        e.to_string().contains("before riposte acted is unknown"),
        "{e}"
    );
    assert!(!in_group(&o, ADMINS));
}

#[tokio::test]
async fn group_refusals_are_clear_and_rate_limits_and_outages_are_retryable() {
    let o = org();
    let s = StandIn::start(groups_vendor(o.clone())).await;
    let c = okta_at(&s.url);
    let remove = |gid: &str| {
        call(
            "remove_from_group",
            json!({"user_id": UID, "group_id": gid}),
            json!(null),
            "k",
        )
    };
    let e = c.call(&remove("00gnope")).await.expect_err("404");
    assert!(
        matches!(
            e,
            ConnectorError::Rejected {
                status: Some(404),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("no Okta group `00gnope`") && e.to_string().contains("E0000007"),
        "{e}"
    );
    let e = c.call(&remove(AD_ADMINS)).await.expect_err("APP_GROUP");
    assert!(e.to_string().contains("type APP_GROUP"), "{e}");
    assert!(in_group(&o, AD_ADMINS));
    let e = c.call(&remove(SCOPED_OUT)).await.expect_err("403");
    assert!(
        e.to_string()
            .contains("E0000006 You do not have permission to perform the requested action"),
        "{e}"
    );
    assert!(!e.retryable());
    let e = c
        .call(&call(
            "remove_from_group",
            json!({"user_id": "00unope", "group_id": ADMINS}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("unknown user");
    assert!(e.to_string().contains("no Okta user `00unope`"), "{e}");
    let e = c
        .call(&call(
            "add_to_group",
            json!({"user_id": UID}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("no group");
    assert!(
        matches!(e, ConnectorError::Config { .. }) && e.to_string().contains("group_id"),
        "{e:?}"
    );

    match c.call(&remove("busy-group")).await.expect_err("429") {
        ConnectorError::RateLimited {
            retry_after_secs: Some(s),
        } => assert!((19..=20).contains(&s), "X-Rate-Limit-Reset gives {s}"),
        other => panic!("busy-group: {other:?}"),
    }
    let e = c.call(&remove("down-group")).await.expect_err("502");
    assert!(e.retryable(), "{e:?}");

    let refused =
        StandIn::start(|_, _| okta_error(401, "E0000011", "Invalid token provided", &[])).await;
    let e = okta_at(&refused.url)
        .call(&remove(ADMINS))
        .await
        .expect_err("401");
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("secret `okta_token`"), "{shown}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert_eq!(refused.seen().len(), 1, "a static token is not refreshed");
}

#[tokio::test]
async fn group_pages_are_followed_only_under_the_base_url_and_only_so_far() {
    let o = org();
    let s = StandIn::start(groups_vendor(o.clone())).await;
    let c = okta_at(&s.url);
    let req = call(
        "remove_from_group",
        json!({"user_id": UID, "group_id": ADMINS}),
        json!(null),
        "k",
    );
    o.lock().expect("org").foreign_next_link = true;
    let e = c.call(&req).await.expect_err("foreign next link");
    assert!(
        e.to_string().contains("not under the configured base_url"),
        "{e}"
    );
    {
        let mut o = o.lock().expect("org");
        o.foreign_next_link = false;
        o.other_groups = 500;
    }
    let e = c.call(&req).await.expect_err("too many pages");
    assert!(e.to_string().contains("more than 50 pages"), "{e}");
    let reads = s
        .seen()
        .iter()
        .filter(|r| r.path.ends_with("/groups"))
        .count();
    assert_eq!(reads, 1 + 50);
    assert!(in_group(&o, ADMINS));
}

#[test]
fn a_bad_definition_names_the_field() {
    let load = |text: &str| {
        okta::load("o.yaml", text, Arc::new(StaticSecrets::default())).expect_err(text)
    };
    let e = load("name: okta\nkind: okta\napi_token: t\n");
    assert!(e.to_string().contains("base_url"), "{e}");
    let e = load("name: okta\nkind: okta\nbase_url: https://corp.okta.com\napi_token: ''\n");
    assert!(e.to_string().contains("api_token"), "{e}");
    let e =
        load("name: okta\nkind: okta\nbase_url: https://corp.okta.com\napi_token: t\nscope: x\n");
    assert!(e.to_string().contains("scope"), "{e}");
}

#[test]
fn the_example_definition_loads() {
    let path = "../../docs/playbooks/config/connectors/okta.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(riposte_respond::Templates::default()),
        Arc::new(StaticSecrets::default()),
    )
    .expect(path);
    assert!(c.operation("suspend_user").is_some() && c.operation("clear_sessions").is_some());
    assert!(c.operation("remove_from_group").is_some() && c.operation("add_to_group").is_some());
}
