//! Okta: suspending a user and lifting the suspension, clearing a user's sessions, and
//! taking a user out of a group and back in (privilege in Okta is group membership: admin
//! roles are commonly assigned to groups).
//!
//! ```yaml
//! name: okta
//! kind: okta
//! base_url: https://corp.okta.com   # your Okta org; required
//! api_token: okta_api_token         # the name of a stored secret
//! timeout: 10s                      # default 30s
//! ```
//!
//! The API token (Security → API → Tokens) acts with the permissions of the admin who
//! created it; give that admin a custom role limited to the users riposte may act on, with
//! **View users and their details**, **Suspend and unsuspend users** and **Clear user
//! sessions** (`okta.users.read`, `okta.users.lifecycle.suspend`,
//! `okta.users.lifecycle.unsuspend`, `okta.users.lifecycle.clearSessions`), and for the
//! group operations **View groups and their details** and **Manage group membership**
//! (`okta.groups.read`, `okta.groups.members.manage`) over the groups riposte may change —
//! or the standard Group Membership Administrator role. Taking someone out of a group that
//! grants an admin role needs an admin at least as privileged (Okta answers `403
//! E0000006` otherwise). It is sent as
//! `Authorization: SSWS <token>`. Okta revokes tokens unused for 30 days: a `401` says so,
//! naming the secret to renew (never its value).
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `suspend_user` | approve | `unsuspend_user` | `POST /api/v1/users/{id}/lifecycle/suspend` |
//! | `unsuspend_user` | approve | `suspend_user` | `POST /api/v1/users/{id}/lifecycle/unsuspend` |
//! | `clear_sessions` | approve, irreversible | — | `DELETE /api/v1/users/{id}/sessions` |
//! | `remove_from_group` | approve | `add_to_group` | `DELETE /api/v1/groups/{groupId}/users/{id}` |
//! | `add_to_group` | approve | `remove_from_group` | `PUT /api/v1/groups/{groupId}/users/{id}` |
//!
//! Parameters: `user_id` (Okta's user id) or `login` (`alice@corp.example`; Okta's
//! `GET /api/v1/users/{login}` finds the user by it). `clear_sessions` takes `oauth_tokens:
//! true` to revoke the user's OAuth and OpenID Connect tokens as well
//! (`?oauthTokens=true`).
//!
//! Suspending first reads the user (`GET /api/v1/users/{id}`): a user who is already
//! `SUSPENDED` is left alone, and the undo record remembers that, so the inverse does not
//! lift a suspension riposte did not make. Undo record: `user_id` and `previous_status`
//! (the user's `status` before the call; the value from the first attempt when the engine
//! retried). `previous_status: null` — after a restart between send and answer, when only
//! the check could tell that the suspension took effect — makes the inverse refuse with a
//! clear message rather than guess.
//!
//! The group operations also take `group_id`. They read the group (`GET
//! /api/v1/groups/{groupId}`: an unknown group is a `404 E0000007`; a group whose `type` is
//! not `OKTA_GROUP` is refused, as its members come from its directory) and the user's
//! groups (`GET /api/v1/users/{id}/groups`, following `Link: <…>; rel="next"` only under
//! `base_url`, at most `MAX_PAGES` pages). Okta answers `204` to both changes. Undo record:
//! `user_id`, `group_id` and `was_member` (the first attempt's reading), so undoing a
//! removal never adds someone who was not a member and undoing an add never removes an
//! earlier member; `was_member: null` (from the check) is refused rather than guessed.
//!
//! Okta's lifecycle calls are not idempotent by themselves (suspending a suspended user is
//! an `E0000001` error), but the read before each one makes them so, and clearing sessions
//! twice clears them once, and group membership is read before it is changed: the engine
//! may retry all five. Rate limits: `429` with
//! `X-Rate-Limit-Reset` (epoch seconds) when Okta gives no `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, LINK};
use riposte_respond::connector::{CallFuture, CheckFuture};
use riposte_respond::duration::HumanDuration;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, Auth, Reply, Request};
use crate::common::{
    FirstSeen, MAX_PAGES, at, check_name, membership, membership_inverse_is_noop, opt_param, param,
    parse, path_segment, path_under, unexpected,
};

pub const KIND: &str = "okta";

const SUSPEND: &str = "suspend_user";
const UNSUSPEND: &str = "unsuspend_user";
const CLEAR: &str = "clear_sessions";
const REMOVE_FROM_GROUP: &str = "remove_from_group";
const ADD_TO_GROUP: &str = "add_to_group";
const SUSPENDED: &str = "SUSPENDED";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    base_url: String,
    /// The name of the secret holding the API token.
    api_token: String,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured Okta org.
#[derive(Debug)]
pub struct Okta {
    name: String,
    api: Api,
    secret: String,
    ops: Vec<OperationSpec>,
    before: FirstSeen,
}

/// Loads a `kind: okta` definition.
pub fn load(file: &str, text: &str, secrets: Arc<dyn SecretSource>) -> Result<Okta, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    if raw.api_token.trim().is_empty() {
        return Err(at(
            file,
            text,
            "api_token:",
            "`api_token` must name a stored secret",
        ));
    }
    let auth = Auth::Header {
        name: AUTHORIZATION,
        prefix: "SSWS ".into(),
        secret: raw.api_token.clone(),
    };
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let api = Api::new(&raw.name, &raw.base_url, timeout, auth, secrets)
        .map_err(|m| at(file, text, "base_url:", m))?
        .with_rate_limit_reset(HeaderName::from_static("x-rate-limit-reset"));
    let op = |name: &str, inverse: Option<&str>| OperationSpec {
        name: name.into(),
        class: Class::Approve,
        inverse: inverse.map(Into::into),
        irreversible: inverse.is_none(),
        idempotent: true,
    };
    Ok(Okta {
        name: raw.name,
        api,
        secret: raw.api_token,
        ops: vec![
            op(SUSPEND, Some(UNSUSPEND)),
            op(UNSUSPEND, Some(SUSPEND)),
            op(CLEAR, None),
            op(REMOVE_FROM_GROUP, Some(ADD_TO_GROUP)),
            op(ADD_TO_GROUP, Some(REMOVE_FROM_GROUP)),
        ],
        before: FirstSeen::default(),
    })
}

/// Okta's `{"errorCode", "errorSummary", "errorCauses": [{"errorSummary"}]}`, as one line.
fn okta_error(body: &Value) -> Option<String> {
    let code = body.get("errorCode")?.as_str()?;
    let summary = body
        .get("errorSummary")
        .and_then(|s| s.as_str())
        .unwrap_or("");
    let causes: Vec<&str> = body
        .get("errorCauses")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("errorSummary").and_then(|s| s.as_str()))
                .collect()
        })
        .unwrap_or_default();
    Some(if causes.is_empty() {
        format!("{code} {summary}")
    } else {
        format!("{code} {summary} ({})", causes.join("; "))
    })
}

/// One user as Okta returned it.
struct User {
    id: String,
    status: String,
}

impl Okta {
    /// Sends `r`; Okta's refusals become rejections carrying its error code and summary,
    /// and a `401` names the token's secret (a static token cannot be refreshed).
    async fn send(&self, r: &Request, deadline: Duration) -> Result<Reply, ConnectorError> {
        let mut r = r.clone().header(ACCEPT, "application/json");
        for s in [400, 401, 403, 404] {
            r = r.also_ok(s);
        }
        let reply = self.api.send(&r, deadline).await?;
        if reply.status < 400 {
            return Ok(reply);
        }
        let why = okta_error(&reply.body)
            .unwrap_or_else(|| reply.body.to_string().chars().take(300).collect());
        let message = if reply.status == 401 {
            format!(
                "{}: Okta refused the API token in secret `{}` ({why}): it is wrong, revoked or \
                 expired (Okta revokes tokens unused for 30 days); store a new one with \
                 `riposte secret set {}`",
                self.name, self.secret, self.secret
            )
        } else {
            format!(
                "{}: Okta refused {} {} ({}): {why}",
                self.name, r.method, r.path, reply.status
            )
        };
        Err(ConnectorError::Rejected {
            status: Some(reply.status),
            message,
        })
    }

    /// The user named by the undo record's or the parameters' `user_id`, else `login`.
    async fn user(&self, req: &CallRequest) -> Result<User, ConnectorError> {
        let key = opt_param(req, "user_id")
            .or_else(|| opt_param(req, "login"))
            .ok_or_else(|| ConnectorError::Config {
                message: format!(
                    "operation `{}` needs `user_id` (Okta's user id) or `login`",
                    req.operation
                ),
            })?;
        let r = Request::new(Method::GET, format!("/api/v1/users/{}", path_segment(key)));
        let reply = match self.send(&r, req.timeout).await {
            Err(ConnectorError::Rejected {
                status: Some(404),
                message,
            }) => {
                return Err(ConnectorError::Rejected {
                    status: Some(404),
                    message: format!("{}: no Okta user `{key}` — {message}", self.name),
                });
            }
            other => other?,
        };
        let field = |k: &str| {
            reply
                .body
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    unexpected(&self.name, &format!("the user has no `{k}`"), &reply.body)
                })
        };
        Ok(User {
            id: field("id")?,
            status: field("status")?,
        })
    }

    async fn act(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        match req.operation.as_str() {
            SUSPEND | UNSUSPEND => self.lifecycle(req).await,
            CLEAR => self.clear_sessions(req).await,
            REMOVE_FROM_GROUP => self.set_member(req, false).await,
            ADD_TO_GROUP => self.set_member(req, true).await,
            other => Err(ConnectorError::UnknownOperation {
                connector: self.name.clone(),
                operation: other.into(),
            }),
        }
    }

    async fn lifecycle(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let suspend = req.operation == SUSPEND;
        // Called as the inverse: act only if the forward call changed something.
        if let Some(previous) = req.undo.get("previous_status") {
            let user_id = opt_param(req, "user_id").ok_or_else(|| ConnectorError::Config {
                message: "the undo record has no `user_id`".into(),
            })?;
            let Some(previous) = previous.as_str() else {
                return Err(ConnectorError::Rejected {
                    status: None,
                    message: format!(
                        "{}: the status of Okta user {user_id} before riposte acted is unknown \
                         (riposte stopped between sending the call and its answer); check the \
                         user in Okta and change it by hand if needed",
                        self.name
                    ),
                });
            };
            // The forward call (the opposite of this one) changed the user only when the
            // user was then in the state this call restores.
            let forward_changed = (previous == SUSPENDED) == suspend;
            if !forward_changed {
                return Ok(outcome(user_id, previous, previous, false, None));
            }
        }
        let user = self.user(req).await?;
        let previous = self.before.keep(&req.idempotency_key, json!(user.status));
        let previous = previous.as_str().unwrap_or(&user.status).to_string();
        let already = (user.status == SUSPENDED) == suspend;
        if already {
            return Ok(outcome(&user.id, &user.status, &previous, false, None));
        }
        let verb = if suspend { "suspend" } else { "unsuspend" };
        let r = Request::new(
            Method::POST,
            format!("/api/v1/users/{}/lifecycle/{verb}", path_segment(&user.id)),
        );
        let reply = self.send(&r, req.timeout).await?;
        let now = if suspend { SUSPENDED } else { "ACTIVE" };
        Ok(outcome(&user.id, now, &previous, true, Some(reply.status)))
    }

    async fn clear_sessions(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let id = match opt_param(req, "user_id") {
            Some(id) => id.to_string(),
            None => self.user(req).await?.id,
        };
        let mut r = Request::new(
            Method::DELETE,
            format!("/api/v1/users/{}/sessions", path_segment(&id)),
        );
        let oauth = match req.params.get("oauth_tokens") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
            Some(other) => {
                return Err(ConnectorError::Config {
                    message: format!("`oauth_tokens` must be true or false, not {other}"),
                });
            }
        };
        if oauth {
            r = r.query("oauthTokens", "true");
        }
        let reply = match self.send(&r, req.timeout).await {
            Err(ConnectorError::Rejected {
                status: Some(404),
                message,
            }) => {
                return Err(ConnectorError::Rejected {
                    status: Some(404),
                    message: format!("{}: no Okta user `{id}` — {message}", self.name),
                });
            }
            other => other?,
        };
        let fields = serde_json::Map::from_iter([
            ("user_id".to_string(), json!(id)),
            ("oauth_tokens_revoked".to_string(), json!(oauth)),
        ]);
        Ok(CallOutcome {
            fields,
            undo: Value::Null,
            status: Some(reply.status),
        })
    }

    /// Okta's user id: `user_id` as given, else read by `login`.
    async fn user_id(&self, req: &CallRequest) -> Result<String, ConnectorError> {
        match opt_param(req, "user_id") {
            Some(id) => Ok(id.to_string()),
            None => Ok(self.user(req).await?.id),
        }
    }

    /// The group's name, after making sure it exists and its members are Okta's to change:
    /// Okta changes memberships only of `OKTA_GROUP`s; an `APP_GROUP`'s come from its
    /// directory (Active Directory, say) and `BUILT_IN` Everyone's from Okta itself.
    async fn group(&self, gid: &str, deadline: Duration) -> Result<String, ConnectorError> {
        let r = Request::new(Method::GET, format!("/api/v1/groups/{}", path_segment(gid)));
        let reply = match self.send(&r, deadline).await {
            Err(ConnectorError::Rejected {
                status: Some(404),
                message,
            }) => {
                return Err(ConnectorError::Rejected {
                    status: Some(404),
                    message: format!("{}: no Okta group `{gid}` — {message}", self.name),
                });
            }
            other => other?,
        };
        let kind = reply.body.get("type").and_then(|v| v.as_str());
        if kind != Some("OKTA_GROUP") {
            return Err(ConnectorError::Rejected {
                status: None,
                message: format!(
                    "{}: Okta group `{gid}` is of type {}: Okta changes the members only of \
                     OKTA_GROUP groups (an APP_GROUP's come from its directory, such as Active \
                     Directory; change the membership there)",
                    self.name,
                    kind.unwrap_or("(none)")
                ),
            });
        }
        Ok(reply
            .body
            .pointer("/profile/name")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string())
    }

    /// Whether the user is a member of the group, from the user's groups
    /// (`GET /api/v1/users/{id}/groups`), following the `Link: <…>; rel="next"` pages only
    /// under `base_url`, at most `MAX_PAGES` of them.
    async fn is_member(
        &self,
        uid: &str,
        gid: &str,
        deadline: Duration,
    ) -> Result<bool, ConnectorError> {
        let mut r = Request::new(
            Method::GET,
            format!("/api/v1/users/{}/groups", path_segment(uid)),
        );
        for _ in 0..MAX_PAGES {
            let reply = match self.send(&r, deadline).await {
                Err(ConnectorError::Rejected {
                    status: Some(404),
                    message,
                }) => {
                    return Err(ConnectorError::Rejected {
                        status: Some(404),
                        message: format!("{}: no Okta user `{uid}` — {message}", self.name),
                    });
                }
                other => other?,
            };
            let Some(page) = reply.body.as_array() else {
                return Err(unexpected(
                    &self.name,
                    "the user's groups are not a list",
                    &reply.body,
                ));
            };
            if page
                .iter()
                .any(|g| g.get("id").and_then(|v| v.as_str()) == Some(gid))
            {
                return Ok(true);
            }
            let Some(next) = next_link(&reply.headers) else {
                return Ok(false);
            };
            let Some(path) = path_under(self.api.base_url(), &next) else {
                return Err(ConnectorError::Rejected {
                    status: None,
                    message: format!(
                        "{}: Okta's next page of groups is not under the configured base_url \
                         ({}); not following it",
                        self.name,
                        self.api.base_url()
                    ),
                });
            };
            r = Request::new(Method::GET, path);
        }
        Err(ConnectorError::Rejected {
            status: None,
            message: format!(
                "{}: Okta user {uid} has more than {MAX_PAGES} pages of groups; riposte stopped \
                 reading before finding whether they include group `{gid}`",
                self.name
            ),
        })
    }

    /// `remove_from_group` (`target` false) and `add_to_group` (`target` true).
    async fn set_member(
        &self,
        req: &CallRequest,
        target: bool,
    ) -> Result<CallOutcome, ConnectorError> {
        let gid = param(req, "group_id")?;
        // Called as the inverse: act only if the forward call changed the membership.
        if let Some(noop) = membership_inverse_is_noop(req, gid, target, "Okta", &self.name)? {
            return Ok(noop);
        }
        let uid = self.user_id(req).await?;
        let name = self.group(gid, req.timeout).await?;
        let current = self.is_member(&uid, gid, req.timeout).await?;
        let was = self
            .before
            .keep(&req.idempotency_key, json!(current))
            .as_bool()
            .unwrap_or(current);
        if current == target {
            return Ok(membership(
                &uid,
                gid,
                Some(&name),
                current,
                Some(was),
                false,
                None,
            ));
        }
        let method = if target { Method::PUT } else { Method::DELETE };
        let r = Request::new(
            method,
            format!(
                "/api/v1/groups/{}/users/{}",
                path_segment(gid),
                path_segment(&uid)
            ),
        );
        let reply = self.send(&r, req.timeout).await?;
        Ok(membership(
            &uid,
            gid,
            Some(&name),
            target,
            Some(was),
            true,
            Some(reply.status),
        ))
    }

    /// Whether the membership already shows the call took effect; the membership before
    /// the call is unknown by then, and the undo record says so.
    async fn membership_took_effect(
        &self,
        req: &CallRequest,
    ) -> Result<Option<CallOutcome>, ConnectorError> {
        let gid = param(req, "group_id")?;
        let uid = self.user_id(req).await?;
        let name = self.group(gid, req.timeout).await?;
        let member = self.is_member(&uid, gid, req.timeout).await?;
        let target = req.operation == ADD_TO_GROUP;
        Ok((member == target)
            .then(|| membership(&uid, gid, Some(&name), member, None, true, Some(200))))
    }

    /// Whether the user's `status` already shows the call took effect. The state before
    /// the call is unknown by then: the undo record says so.
    async fn took_effect(&self, req: &CallRequest) -> Result<Option<CallOutcome>, ConnectorError> {
        let user = self.user(req).await?;
        let done = (user.status == SUSPENDED) == (req.operation == SUSPEND);
        Ok(done.then(|| {
            let mut o = outcome(&user.id, &user.status, "", true, Some(200));
            o.undo["previous_status"] = Value::Null;
            o.fields.insert("previous_status".into(), Value::Null);
            o
        }))
    }
}

fn outcome(
    user: &str,
    status: &str,
    previous: &str,
    changed: bool,
    http: Option<u16>,
) -> CallOutcome {
    let mut fields = serde_json::Map::new();
    fields.insert("user_id".into(), json!(user));
    fields.insert("status".into(), json!(status));
    fields.insert("previous_status".into(), json!(previous));
    fields.insert("changed".into(), json!(changed));
    CallOutcome {
        undo: json!({"user_id": user, "previous_status": previous}),
        fields,
        status: http,
    }
}

/// The `rel="next"` target of Okta's `Link` headers (one header per link, or several links
/// in one header separated by commas).
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.split_once(';')?;
            let next = params
                .split(';')
                .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            next.then(|| target.to_string())
        })
}

impl Connector for Okta {
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
        match req.operation.as_str() {
            SUSPEND | UNSUSPEND => Some(Box::pin(self.took_effect(req))),
            REMOVE_FROM_GROUP | ADD_TO_GROUP => Some(Box::pin(self.membership_took_effect(req))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn the_next_link_is_found_in_either_of_okta_s_link_layouts() {
        let mut h = HeaderMap::new();
        h.append(
            LINK,
            HeaderValue::from_static("<https://corp.okta.com/api/v1/users/u/groups>; rel=\"self\""),
        );
        h.append(
            LINK,
            HeaderValue::from_static(
                "<https://corp.okta.com/api/v1/users/u/groups?after=00g2>; rel=\"next\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://corp.okta.com/api/v1/users/u/groups?after=00g2")
        );
        let mut one = HeaderMap::new();
        one.insert(
            LINK,
            HeaderValue::from_static(
                "<https://a/x>; rel=\"self\", <https://a/y?after=2>; rel=\"next\"",
            ),
        );
        assert_eq!(next_link(&one).as_deref(), Some("https://a/y?after=2"));
        let mut last = HeaderMap::new();
        last.insert(
            LINK,
            HeaderValue::from_static("<https://a/x>; rel=\"self\""),
        );
        assert_eq!(next_link(&last), None);
    }
}
