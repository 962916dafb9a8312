//! Microsoft Entra ID against a stand-in that checks requests as Microsoft Graph documents
//! them: the identity platform token, reading `accountEnabled` before changing it, the
//! `PATCH` that changes it, `revokeSignInSessions`, the undo record that restores only what
//! riposte changed, and Graph's error shapes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Answer, Seen, StandIn};
use riposte_connectors::entra;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Class, Connector, ConnectorError};
use serde_json::{Value, json};

const TENANT: &str = "contoso.onmicrosoft.com";
const UID: &str = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
const UPN: &str = "alice@corp.example";
const SECRET: &str = "Xy8Q~entra.S3cret-value_0001";

fn entra_at(url: &str, secret: &str) -> Arc<dyn Connector> {
    let text = format!(
        "name: entra\nkind: entra\ntenant_id: {TENANT}\nclient_id: app-2\nclient_secret: entra_secret\n\
         base_url: {url}\nauthority: {url}/\ntimeout: 5s\n"
    );
    Arc::new(
        entra::load(
            "entra.yaml",
            &text,
            common::secrets(&[("entra_secret", secret)]),
        )
        .expect("loads"),
    )
}

fn call(op: &str, params: Value, undo: Value, key: &str) -> CallRequest {
    CallRequest {
        action_id: "act-5".into(),
        idempotency_key: key.into(),
        operation: op.into(),
        params,
        undo,
        context: json!({}),
        timeout: Duration::from_secs(5),
    }
}

fn graph_error(status: u16, code: &str, message: &str) -> Answer {
    Answer::json(
        status,
        json!({"error": {"code": code, "message": message, "innerError": {
            "date": "2025-03-12T10:00:00", "request-id": "b2f1c0de-0000-4000-8000-000000000001",
            "client-request-id": "b2f1c0de-0000-4000-8000-000000000001"}}}),
    )
}

const ADMINS: &str = "5e8a1f3c-0b2d-4c6e-8f9a-1b2c3d4e5f60";
const HELPDESK: &str = "9d0c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a";
const ROLE_GROUP: &str = "3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d";
const DYNAMIC: &str = "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910";

struct Group {
    name: &'static str,
    dynamic: bool,
    role_assignable: bool,
    members: BTreeSet<String>,
}

struct Tenant {
    enabled: bool,
    tokens: usize,
    expire_next: bool,
    revoke_answers: Value,
    groups: BTreeMap<&'static str, Group>,
    /// Other direct memberships of the user, listed before the groups above so that
    /// finding one of those takes more than one page.
    other_memberships: usize,
    /// Points `@odata.nextLink` at another host.
    foreign_next_link: bool,
    /// When set, `memberOf` lists these groups rather than the live ones: someone else
    /// changed the membership between riposte's read and its change.
    stale_member_of: Option<Vec<&'static str>>,
}

fn tenant(enabled: bool) -> Arc<Mutex<Tenant>> {
    let group = |name, dynamic, role_assignable, member: bool| Group {
        name,
        dynamic,
        role_assignable,
        members: if member {
            [UID.to_string()].into()
        } else {
            BTreeSet::new()
        },
    };
    Arc::new(Mutex::new(Tenant {
        enabled,
        tokens: 0,
        expire_next: false,
        revoke_answers: json!(true),
        groups: [
            (ADMINS, group("Tier 0 Admins", false, false, true)),
            (HELPDESK, group("Helpdesk", false, false, false)),
            (ROLE_GROUP, group("Global Admins (PIM)", false, true, true)),
            (DYNAMIC, group("All Finance", true, false, true)),
        ]
        .into_iter()
        .collect(),
        other_memberships: 5,
        foreign_next_link: false,
        stale_member_of: None,
    }))
}

const PAGE: usize = 2;

/// Graph's answers for `/v1.0/groups/...`.
fn groups_api(t: &mut Tenant, req: &Seen) -> Answer {
    let rest = req.path.strip_prefix("/v1.0/groups/").unwrap_or("");
    let parts: Vec<&str> = rest.split('/').collect();
    let not_found = |what: &str| {
        graph_error(
            404,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{what}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    };
    match parts.first().copied() {
        Some("busy-group") => {
            return graph_error(429, "TooManyRequests", "Too many requests.")
                .with_header("Retry-After", "7");
        }
        Some("down-group") => {
            return graph_error(
                503,
                "serviceNotAvailable",
                "The service is temporarily unavailable.",
            );
        }
        _ => {}
    }
    let Some(gid) = parts.first() else {
        return graph_error(400, "BadRequest", "Unsupported request");
    };
    let Some(g) = t.groups.get_mut(*gid) else {
        return not_found(gid);
    };
    match (req.method.as_str(), &parts[1..]) {
        ("GET", []) => {
            assert_eq!(
                req.query_pairs().get("$select").map(String::as_str),
                Some("id,displayName,groupTypes,isAssignableToRole")
            );
            let types: Vec<&str> = if g.dynamic {
                vec!["DynamicMembership"]
            } else {
                vec![]
            };
            Answer::json(
                200,
                json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups(id,displayName,groupTypes,isAssignableToRole)/$entity",
                       "id": gid, "displayName": g.name, "groupTypes": types,
                       "isAssignableToRole": g.role_assignable}),
            )
        }
        ("DELETE", ["members", uid, "$ref"]) => {
            assert!(req.body.is_empty(), "no body on the DELETE");
            if g.role_assignable {
                return graph_error(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                );
            }
            if g.members.remove(*uid) {
                Answer::empty(204)
            } else {
                not_found(uid)
            }
        }
        ("POST", ["members", "$ref"]) => {
            if req.header("content-type") != Some("application/json") {
                return graph_error(
                    415,
                    "UnsupportedMediaType",
                    "Content-Type must be application/json",
                );
            }
            let body = req.json();
            let host = req.header("host").expect("host");
            let prefix = format!("http://{host}/v1.0/directoryObjects/");
            let id = match (
                body.as_object().map(|o| o.len()),
                body["@odata.id"]
                    .as_str()
                    .and_then(|r| r.strip_prefix(&prefix)),
            ) {
                (Some(1), Some(id)) => id.to_string(),
                _ => {
                    return graph_error(
                        400,
                        "Request_BadRequest",
                        "Invalid URL format specified in @odata.id",
                    );
                }
            };
            if id != UID {
                return not_found(&id);
            }
            if !g.members.insert(id) {
                return graph_error(
                    400,
                    "Request_BadRequest",
                    "One or more added object references already exist for the following modified properties: 'members'.",
                );
            }
            Answer::empty(204)
        }
        _ => graph_error(400, "BadRequest", "Unsupported request"),
    }
}

/// The user's direct memberships, `PAGE` at a time, as `GET /users/{id}/memberOf` pages.
fn member_of(t: &Tenant, req: &Seen) -> Answer {
    let q = req.query_pairs();
    assert_eq!(
        q.get("$select").map(String::as_str),
        Some("id"),
        "{}",
        req.query
    );
    let from: usize = q
        .get("$skiptoken")
        .map(|s| s.parse().expect("skiptoken"))
        .unwrap_or(0);
    let mut all: Vec<Value> = (0..t.other_memberships)
        .map(|i| json!({"@odata.type": "#microsoft.graph.group", "id": format!("00000000-0000-4000-8000-{i:012}")}))
        .collect();
    all.push(json!({"@odata.type": "#microsoft.graph.directoryRole", "id": "role-1"}));
    let listed: Vec<&str> = match &t.stale_member_of {
        Some(s) => s.clone(),
        None => t
            .groups
            .iter()
            .filter(|(_, g)| g.members.contains(UID))
            .map(|(gid, _)| *gid)
            .collect(),
    };
    for gid in listed {
        all.push(json!({"@odata.type": "#microsoft.graph.group", "id": gid}));
    }
    let page: Vec<Value> = all.iter().skip(from).take(PAGE).cloned().collect();
    let mut body = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects(id)", "value": page});
    if from + PAGE < all.len() {
        let host = if t.foreign_next_link {
            "graph.evil.example".to_string()
        } else {
            req.header("host").expect("host").to_string()
        };
        body["@odata.nextLink"] = json!(format!(
            "http://{host}/v1.0/users/{UID}/memberOf?$select=id&$skiptoken={}",
            from + PAGE
        ));
    }
    Answer::json(200, body)
}

/// Answers like Microsoft Graph and the identity platform.
fn vendor(t: Arc<Mutex<Tenant>>) -> impl Fn(&Seen, usize) -> Answer {
    move |req, _| {
        let mut t = t.lock().expect("tenant");
        if req.path == format!("/{TENANT}/oauth2/v2.0/token") {
            let form = req.form();
            let get = |k: &str| form.get(k).map(String::as_str);
            assert_eq!(get("grant_type"), Some("client_credentials"));
            assert_eq!(get("scope"), Some("https://graph.microsoft.com/.default"));
            if get("client_id") != Some("app-2") || get("client_secret") != Some(SECRET) {
                return Answer::json(
                    401,
                    json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215]}),
                );
            }
            t.tokens += 1;
            return Answer::json(
                200,
                json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": format!("eyJ0eXAiOiJKV1Qi.graph{}", t.tokens)}),
            );
        }
        let current = format!("Bearer eyJ0eXAiOiJKV1Qi.graph{}", t.tokens);
        if req.header("authorization") != Some(current.as_str()) || t.expire_next {
            t.expire_next = false;
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
            );
        }
        if req.path.starts_with("/v1.0/groups/") {
            return groups_api(&mut t, req);
        }
        let rest = req.path.strip_prefix("/v1.0/users/").unwrap_or("");
        let (key, tail) = rest.split_once('/').unwrap_or((rest, ""));
        match key {
            "busy@corp.example" => {
                return graph_error(429, "TooManyRequests", "Too many requests.")
                    .with_header("Retry-After", "12");
            }
            "down@corp.example" => {
                return Answer::text(503, "text/html", "<html>Service Unavailable</html>");
            }
            "ceo@corp.example" if req.method == "GET" => {
                return Answer::json(200, json!({"id": "ceo-id", "accountEnabled": true}));
            }
            "ceo-id" => {
                return graph_error(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                );
            }
            k if k == UID || k == UPN => {}
            other => {
                return graph_error(
                    404,
                    "Request_ResourceNotFound",
                    &format!(
                        "Resource '{other}' does not exist or one of its queried reference-property objects are not present."
                    ),
                );
            }
        }
        match (req.method.as_str(), tail) {
            ("GET", "") if req.query_pairs().get("$select").map(String::as_str) == Some("id") => {
                Answer::json(
                    200,
                    json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id)/$entity", "id": UID}),
                )
            }
            ("GET", "memberOf") => {
                assert_eq!(key, UID, "memberships are read by object id");
                member_of(&t, req)
            }
            ("GET", "") => {
                assert_eq!(
                    req.query_pairs().get("$select").map(String::as_str),
                    Some("id,accountEnabled")
                );
                Answer::json(
                    200,
                    json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id,accountEnabled)/$entity", "id": UID, "accountEnabled": t.enabled}),
                )
            }
            ("PATCH", "") => {
                assert_eq!(key, UID, "the change goes to the object id read before");
                if req.header("content-type") != Some("application/json") {
                    return graph_error(
                        415,
                        "UnsupportedMediaType",
                        "Content-Type must be application/json",
                    );
                }
                let body = req.json();
                match (
                    body.as_object().map(|o| o.len()),
                    body["accountEnabled"].as_bool(),
                ) {
                    (Some(1), Some(v)) => t.enabled = v,
                    _ => return graph_error(400, "Request_BadRequest", "Invalid property values."),
                }
                Answer::empty(204)
            }
            ("POST", "revokeSignInSessions") => Answer::json(
                200,
                json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean", "value": t.revoke_answers}),
            ),
            _ => graph_error(400, "BadRequest", "Unsupported request"),
        }
    }
}

fn lines(s: &StandIn) -> Vec<String> {
    s.seen()
        .iter()
        .map(|r| {
            let q = r.query_pairs().get("$select").cloned().unwrap_or_default();
            format!("{} {} {q}", r.method, r.path)
                .trim_end()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn disable_by_principal_name_then_enable_with_the_undo_record() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let spec = c.operation("disable_account").expect("disable_account");
    assert_eq!(spec.inverse.as_deref(), Some("enable_account"));
    assert!(spec.idempotent && !spec.irreversible);

    let out = c
        .call(&call(
            "disable_account",
            json!({"user_principal_name": UPN}),
            json!(null),
            "k1",
        ))
        .await
        .expect("disabled");
    assert_eq!(
        out.undo,
        json!({"user_id": UID, "previous_account_enabled": true})
    );
    assert_eq!(out.status, Some(204));
    assert!(!t.lock().expect("t").enabled);

    let back = c
        .call(&call(
            "enable_account",
            json!({"user_principal_name": UPN}),
            out.undo,
            "k2",
        ))
        .await
        .expect("enabled");
    assert_eq!(back.fields["changed"], true);
    assert!(t.lock().expect("t").enabled);

    assert_eq!(
        lines(&s),
        [
            format!("POST /{TENANT}/oauth2/v2.0/token"),
            format!("GET /v1.0/users/{UPN} id,accountEnabled"),
            format!("PATCH /v1.0/users/{UID}"),
            // The inverse reads the account by the stored id, then restores it.
            format!("GET /v1.0/users/{UID} id,accountEnabled"),
            format!("PATCH /v1.0/users/{UID}"),
        ]
    );
    let seen = s.seen();
    assert_eq!(seen[2].json(), json!({"accountEnabled": false}));
    assert_eq!(seen[4].json(), json!({"accountEnabled": true}));
    assert_eq!(
        seen[2].header("authorization"),
        Some("Bearer eyJ0eXAiOiJKV1Qi.graph1")
    );
}

#[tokio::test]
async fn an_account_disabled_before_riposte_acted_stays_disabled_on_undo() {
    let t = tenant(false);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let out = c
        .call(&call(
            "disable_account",
            json!({"user_id": UID}),
            json!(null),
            "k1",
        ))
        .await
        .expect("nothing to change");
    assert_eq!(
        out.undo,
        json!({"user_id": UID, "previous_account_enabled": false})
    );
    assert_eq!(out.fields["changed"], false);
    let back = c
        .call(&call("enable_account", json!({}), out.undo, "k2"))
        .await
        .expect("nothing to restore");
    assert_eq!(back.fields["changed"], false);
    assert!(!t.lock().expect("t").enabled, "undo must not enable it");
    assert!(
        s.seen().iter().all(|r| r.method != "PATCH"),
        "{:?}",
        lines(&s)
    );
}

#[tokio::test]
async fn a_retried_disable_records_the_value_from_before_its_first_attempt() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    c.call(&call(
        "disable_account",
        json!({"user_id": UID}),
        json!(null),
        "same",
    ))
    .await
    .expect("first attempt");
    let retry = c
        .call(&call(
            "disable_account",
            json!({"user_id": UID}),
            json!(null),
            "same",
        ))
        .await
        .expect("retry");
    assert_eq!(retry.undo["previous_account_enabled"], true);
    c.call(&call("enable_account", json!({}), retry.undo, "undo"))
        .await
        .expect("undone");
    assert!(t.lock().expect("t").enabled);
}

#[tokio::test]
async fn the_check_reads_account_enabled_and_its_undo_refuses_to_guess() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let req = call(
        "disable_account",
        json!({"user_principal_name": UPN}),
        json!(null),
        "k",
    );
    assert_eq!(c.check(&req).expect("check").await.expect("asked"), None);
    t.lock().expect("t").enabled = false;
    let done = c
        .check(&req)
        .expect("check")
        .await
        .expect("asked")
        .expect("done");
    assert_eq!(
        done.undo,
        json!({"user_id": UID, "previous_account_enabled": null})
    );
    assert!(
        s.seen().iter().all(|r| r.method != "PATCH"),
        "a check only reads"
    );
    let e = c
        .call(&call("enable_account", json!({}), done.undo, "k2"))
        .await
        .expect_err("unknown before");
    assert!(e.to_string().contains("is unknown"), "{e}");
    assert!(!t.lock().expect("t").enabled);
    assert!(
        c.check(&call(
            "revoke_sessions",
            json!({"user_id": UID}),
            json!(null),
            "k"
        ))
        .is_none()
    );
}

#[tokio::test]
async fn revoke_sessions_is_irreversible_and_needs_graphs_confirmation() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let spec = c.operation("revoke_sessions").expect("revoke_sessions");
    assert!(spec.irreversible && spec.inverse.is_none());
    assert_eq!(spec.floor_class(), Class::Approve);
    let out = c
        .call(&call(
            "revoke_sessions",
            json!({"user_principal_name": UPN}),
            json!(null),
            "k",
        ))
        .await
        .expect("revoked");
    assert_eq!(out.fields["revoked"], true);
    assert_eq!(out.status, Some(200));
    let last = s.seen().pop().expect("seen");
    assert_eq!(
        (last.method.as_str(), last.path.as_str(), last.body.as_str()),
        (
            "POST",
            "/v1.0/users/alice@corp.example/revokeSignInSessions",
            ""
        )
    );
    t.lock().expect("t").revoke_answers = json!(false);
    let e = c
        .call(&call(
            "revoke_sessions",
            json!({"user_id": UID}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("value false");
    assert!(e.to_string().contains("did not confirm"), "{e}");
}

#[tokio::test]
async fn graph_refusals_are_clear_and_an_expired_token_is_refreshed_once() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let e = c
        .call(&call(
            "disable_account",
            json!({"user_principal_name": "nobody@corp.example"}),
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
        e.to_string()
            .contains("no Entra user `nobody@corp.example`"),
        "{e}"
    );
    assert!(e.to_string().contains("Request_ResourceNotFound"), "{e}");
    let e = c
        .call(&call(
            "disable_account",
            json!({"user_principal_name": "ceo@corp.example"}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("403");
    assert!(
        e.to_string()
            .contains("Authorization_RequestDenied: Insufficient privileges"),
        "{e}"
    );
    assert!(!e.retryable());
    let e = c
        .call(&call("disable_account", json!({}), json!(null), "k"))
        .await
        .expect_err("no user");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");

    t.lock().expect("t").expire_next = true;
    c.call(&call(
        "revoke_sessions",
        json!({"user_id": UID}),
        json!(null),
        "k",
    ))
    .await
    .expect("refreshed once, then revoked");
    assert_eq!(t.lock().expect("t").tokens, 2);

    let e = c
        .call(&call(
            "revoke_sessions",
            json!({"user_principal_name": "busy@corp.example"}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(12)
        }
    );
    let e = c
        .call(&call(
            "revoke_sessions",
            json!({"user_principal_name": "down@corp.example"}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("503");
    assert!(matches!(e, ConnectorError::Transient { .. }), "{e:?}");
}

fn is_member(t: &Arc<Mutex<Tenant>>, gid: &str) -> bool {
    t.lock().expect("t").groups[gid].members.contains(UID)
}

/// Every request after the token, as `METHOD path?query`.
fn requests(s: &StandIn) -> Vec<String> {
    s.seen()
        .iter()
        .filter(|r| !r.path.ends_with("/oauth2/v2.0/token"))
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect()
}

fn group_call(op: &str, params: Value, undo: Value, key: &str) -> CallRequest {
    call(op, params, undo, key)
}

#[tokio::test]
async fn remove_from_a_group_by_principal_name_then_add_back_with_the_undo_record() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let spec = c.operation("remove_from_group").expect("remove_from_group");
    assert_eq!(spec.inverse.as_deref(), Some("add_to_group"));
    assert_eq!(spec.class, Class::Approve);
    assert!(spec.idempotent && !spec.irreversible);
    let inverse = c.operation("add_to_group").expect("add_to_group");
    assert_eq!(inverse.inverse.as_deref(), Some("remove_from_group"));

    let out = c
        .call(&group_call(
            "remove_from_group",
            json!({"user_principal_name": UPN, "group_id": ADMINS}),
            json!(null),
            "k1",
        ))
        .await
        .expect("removed");
    assert_eq!(
        out.undo,
        json!({"user_id": UID, "group_id": ADMINS, "was_member": true})
    );
    assert_eq!(out.fields["group_name"], "Tier 0 Admins");
    assert_eq!(out.fields["changed"], true);
    assert_eq!(out.status, Some(204));
    assert!(!is_member(&t, ADMINS));

    let back = c
        .call(&group_call("add_to_group", json!({}), out.undo, "k2"))
        .await
        .expect("added back");
    assert_eq!(back.fields["changed"], true);
    assert_eq!(back.status, Some(204));
    assert!(is_member(&t, ADMINS));

    let select = "%24select=id";
    // Next pages are read from `@odata.nextLink` exactly as Graph wrote it.
    let page = |n: usize| format!("GET /v1.0/users/{UID}/memberOf?$select=id&$skiptoken={n}");
    let group_read = format!(
        "GET /v1.0/groups/{ADMINS}?%24select=id%2CdisplayName%2CgroupTypes%2CisAssignableToRole"
    );
    assert_eq!(
        requests(&s),
        [
            format!("GET /v1.0/users/{UPN}?{select}"),
            group_read.clone(),
            format!("GET /v1.0/users/{UID}/memberOf?{select}"),
            page(2),
            page(4),
            page(6),
            format!("DELETE /v1.0/groups/{ADMINS}/members/{UID}/$ref?"),
            // The inverse names the user by the object id it stored.
            group_read,
            format!("GET /v1.0/users/{UID}/memberOf?{select}"),
            page(2),
            page(4),
            page(6),
            format!("POST /v1.0/groups/{ADMINS}/members/$ref?"),
        ]
    );
    let seen = s.seen();
    let delete = seen.iter().find(|r| r.method == "DELETE").expect("DELETE");
    assert_eq!(
        delete.header("authorization"),
        Some("Bearer eyJ0eXAiOiJKV1Qi.graph1")
    );
    let post = seen
        .iter()
        .find(|r| r.method == "POST" && r.path.contains("/groups/"));
    let post = post.expect("POST");
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert_eq!(
        post.json(),
        json!({"@odata.id": format!("{}/v1.0/directoryObjects/{UID}", s.url)})
    );
}

#[tokio::test]
async fn a_user_who_was_not_a_member_stays_out_when_the_removal_is_undone() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let out = c
        .call(&group_call(
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
        .call(&group_call("add_to_group", json!({}), out.undo, "k2"))
        .await
        .expect("nothing to restore");
    assert_eq!(back.fields["changed"], false);
    assert!(!is_member(&t, HELPDESK), "undo must not add a non-member");
    assert!(
        s.seen()
            .iter()
            .all(|r| r.method == "GET" || r.path.ends_with("/token")),
        "{:?}",
        requests(&s)
    );

    // The same for an add: a user who was already a member stays one when it is undone.
    let out = c
        .call(&group_call(
            "add_to_group",
            json!({"user_id": UID, "group_id": ADMINS}),
            json!(null),
            "k3",
        ))
        .await
        .expect("already a member");
    assert_eq!(out.undo["was_member"], true);
    c.call(&group_call("remove_from_group", json!({}), out.undo, "k4"))
        .await
        .expect("nothing to undo");
    assert!(
        is_member(&t, ADMINS),
        "undo must not remove an earlier member"
    );
}

#[tokio::test]
async fn graphs_already_a_member_and_not_a_member_answers_are_successes() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    // The read says Helpdesk; by the time of the DELETE someone else removed it.
    t.lock().expect("t").stale_member_of = Some(vec![HELPDESK]);
    let out = c
        .call(&group_call(
            "remove_from_group",
            json!({"user_id": UID, "group_id": HELPDESK}),
            json!(null),
            "k1",
        ))
        .await
        .expect("404 Request_ResourceNotFound is already removed");
    assert_eq!(out.status, Some(404));
    assert_eq!(out.fields["changed"], false);
    assert_eq!(out.fields["member"], false);
    // The read misses Tier 0 Admins; the POST finds the reference already there.
    t.lock().expect("t").stale_member_of = Some(vec![]);
    let out = c
        .call(&group_call(
            "add_to_group",
            json!({"user_id": UID, "group_id": ADMINS}),
            json!(null),
            "k2",
        ))
        .await
        .expect("400 already exist is already added");
    assert_eq!(out.status, Some(400));
    assert_eq!(out.fields["changed"], false);
    assert!(is_member(&t, ADMINS));
}

#[tokio::test]
async fn a_retried_removal_records_the_membership_from_before_its_first_attempt() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let req = group_call(
        "remove_from_group",
        json!({"user_id": UID, "group_id": ADMINS}),
        json!(null),
        "same",
    );
    c.call(&req).await.expect("first attempt");
    // Its answer was lost; the retry finds the user already out of the group.
    let retry = c.call(&req).await.expect("retry");
    assert_eq!(retry.undo["was_member"], true);
    assert_eq!(retry.fields["changed"], false);
    c.call(&group_call("add_to_group", json!({}), retry.undo, "undo"))
        .await
        .expect("undone");
    assert!(
        is_member(&t, ADMINS),
        "the undo restores what the first attempt removed"
    );
}

#[tokio::test]
async fn the_membership_check_only_reads_and_its_undo_refuses_to_guess() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let req = group_call(
        "remove_from_group",
        json!({"user_principal_name": UPN, "group_id": ADMINS}),
        json!(null),
        "k",
    );
    assert_eq!(c.check(&req).expect("check").await.expect("asked"), None);
    t.lock()
        .expect("t")
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
        s.seen()
            .iter()
            .all(|r| r.method == "GET" || r.path.ends_with("/token"))
    );
    let e = c
        .call(&group_call("add_to_group", json!({}), done.undo, "k2"))
        .await
        .expect_err("unknown before");
    assert!(e.to_string().contains("is unknown"), "{e}");
    assert!(!is_member(&t, ADMINS));
}

#[tokio::test]
async fn group_refusals_are_clear_and_an_expired_token_is_refreshed_once() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let remove = |gid: &str| {
        group_call(
            "remove_from_group",
            json!({"user_id": UID, "group_id": gid}),
            json!(null),
            "k",
        )
    };
    let e = c.call(&remove("nope-group")).await.expect_err("404");
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
    assert!(e.to_string().contains("no Entra group `nope-group`"), "{e}");
    assert!(e.to_string().contains("Request_ResourceNotFound"), "{e}");

    let e = c.call(&remove(DYNAMIC)).await.expect_err("dynamic");
    assert!(e.to_string().contains("dynamic membership"), "{e}");
    assert!(is_member(&t, DYNAMIC));

    let e = c.call(&remove(ROLE_GROUP)).await.expect_err("403");
    assert!(
        e.to_string().contains("Authorization_RequestDenied")
            && e.to_string().contains("RoleManagement.ReadWrite.Directory"),
        "{e}"
    );
    assert!(!e.retryable());

    let e = c
        .call(&group_call(
            "remove_from_group",
            json!({"user_principal_name": "nobody@corp.example", "group_id": ADMINS}),
            json!(null),
            "k",
        ))
        .await
        .expect_err("unknown user");
    assert!(
        e.to_string()
            .contains("no Entra user `nobody@corp.example`"),
        "{e}"
    );
    let e = c
        .call(&group_call(
            "remove_from_group",
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

    let e = c.call(&remove("busy-group")).await.expect_err("429");
    assert_eq!(
        e,
        ConnectorError::RateLimited {
            retry_after_secs: Some(7)
        }
    );
    let e = c.call(&remove("down-group")).await.expect_err("503");
    assert!(matches!(e, ConnectorError::Transient { .. }), "{e:?}");

    t.lock().expect("t").expire_next = true;
    let tokens = t.lock().expect("t").tokens;
    c.call(&remove(ADMINS))
        .await
        .expect("refreshed once, then removed");
    assert_eq!(t.lock().expect("t").tokens, tokens + 1);
    assert!(!is_member(&t, ADMINS));
}

#[tokio::test]
async fn membership_pages_are_followed_only_under_the_base_url_and_only_so_far() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let c = entra_at(&s.url, SECRET);
    let req = group_call(
        "remove_from_group",
        json!({"user_id": UID, "group_id": ADMINS}),
        json!(null),
        "k",
    );
    t.lock().expect("t").foreign_next_link = true;
    let e = c.call(&req).await.expect_err("foreign next link");
    assert!(
        e.to_string().contains("not under the configured base_url"),
        "{e}"
    );
    assert!(is_member(&t, ADMINS));

    {
        let mut t = t.lock().expect("t");
        t.foreign_next_link = false;
        t.other_memberships = 500;
    }
    let e = c.call(&req).await.expect_err("too many pages");
    assert!(e.to_string().contains("more than 50 pages"), "{e}");
    let reads = s
        .seen()
        .iter()
        .filter(|r| r.path.ends_with("/memberOf"))
        .count();
    assert_eq!(reads, 1 + 50, "one page before, then 50");
    assert!(is_member(&t, ADMINS));
}

#[tokio::test]
async fn the_client_secret_never_appears_in_an_error() {
    let t = tenant(true);
    let s = StandIn::start(vendor(t.clone())).await;
    let wrong = "Wr0ng~entra-secret-value";
    let mut errors = vec![
        entra_at(&s.url, wrong)
            .call(&call(
                "disable_account",
                json!({"user_id": UID}),
                json!(null),
                "k",
            ))
            .await
            .expect_err("invalid_client"),
    ];
    assert!(
        errors[0].to_string().contains("invalid_client"),
        "{}",
        errors[0]
    );
    let c = entra_at(&s.url, SECRET);
    for p in [
        json!({"user_id": "x"}),
        json!({"user_principal_name": "ceo@corp.example"}),
        json!({}),
    ] {
        errors.push(
            c.call(&call("disable_account", p, json!(null), "k"))
                .await
                .expect_err("fails"),
        );
    }
    for e in errors {
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(wrong) && !shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("eyJ0eXAiOiJKV1Qi"), "no token in {shown}");
    }
}

#[test]
fn a_bad_definition_names_the_field() {
    let load = |text: &str| {
        entra::load("e.yaml", text, Arc::new(StaticSecrets::default())).expect_err(text)
    };
    let e = load("name: entra\nkind: entra\nclient_id: a\nclient_secret: s\n");
    assert!(e.to_string().contains("tenant_id"), "{e}");
    let e = load("name: entra\nkind: entra\ntenant_id: 'a b'\nclient_id: a\nclient_secret: s\n");
    assert_eq!(e.line, 3, "{e}");
    let e = load("name: entra\nkind: entra\ntenant_id: t\nclient_id: ' '\nclient_secret: s\n");
    assert!(e.to_string().contains("client_id"), "{e}");
    let e = load(
        "name: entra\nkind: entra\ntenant_id: t\nclient_id: a\nclient_secret: s\nbase_url: graph.microsoft.com\n",
    );
    assert_eq!(e.line, 6, "{e}");
}

#[test]
fn the_example_definition_loads() {
    let path = "../../docs/playbooks/config/connectors/entra.yaml";
    let text = std::fs::read_to_string(path).expect(path);
    let c = riposte_connectors::load(
        path,
        &text,
        Arc::new(riposte_respond::Templates::default()),
        Arc::new(StaticSecrets::default()),
    )
    .expect(path);
    assert!(c.operation("disable_account").is_some() && c.operation("revoke_sessions").is_some());
    assert!(c.operation("remove_from_group").is_some() && c.operation("add_to_group").is_some());
}
