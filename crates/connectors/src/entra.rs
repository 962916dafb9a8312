//! Microsoft Entra ID, through Microsoft Graph: disabling and enabling a user's account,
//! revoking a user's sign-in sessions, and taking a user out of a group (privilege in Entra
//! is mostly group membership: privileged and role-assignable groups) and back in.
//!
//! ```yaml
//! name: entra
//! kind: entra
//! tenant_id: 8f2c1a7e-3b4d-4e5f-9a6b-7c8d9e0f1a2b   # the tenant of the app registration
//! client_id: 0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e
//! client_secret: entra_client_secret                # the name of a stored secret
//! base_url: https://graph.microsoft.com             # the default; graph.microsoft.us for US Gov
//! authority: https://login.microsoftonline.com      # the default
//! scope: https://graph.microsoft.com/.default       # the default
//! timeout: 30s                                      # per request; default 30s
//! ```
//!
//! App registration, Microsoft Graph application permissions (admin consent):
//! **User.Read.All** and **User.EnableDisableAccount.All** (read and change
//! `accountEnabled`), **User.RevokeSessions.All** (revoke sessions); `User.ReadWrite.All`
//! covers all three. **GroupMember.ReadWrite.All** for the group operations (it also reads
//! memberships); a role-assignable group's members change only with
//! **RoleManagement.ReadWrite.Directory** as well. To disable an administrator, Entra also wants the app to hold an admin
//! role at least as privileged as the target's (Privileged Authentication Administrator for
//! a Global Administrator): without it Graph answers `403 Authorization_RequestDenied`.
//!
//! | operation | class | inverse | request |
//! |---|---|---|---|
//! | `disable_account` | approve | `enable_account` | `PATCH /v1.0/users/{id}` `{"accountEnabled": false}` |
//! | `enable_account` | approve | `disable_account` | `PATCH /v1.0/users/{id}` `{"accountEnabled": true}` |
//! | `revoke_sessions` | approve, irreversible | — | `POST /v1.0/users/{id}/revokeSignInSessions` |
//! | `remove_from_group` | approve | `add_to_group` | `DELETE /v1.0/groups/{group-id}/members/{id}/$ref` |
//! | `add_to_group` | approve | `remove_from_group` | `POST /v1.0/groups/{group-id}/members/$ref` `{"@odata.id": ".../v1.0/directoryObjects/{id}"}` |
//!
//! Parameters: `user_id` (the user's object id) or `user_principal_name`
//! (`alice@corp.example`; Graph addresses a user by either).
//!
//! Before changing `accountEnabled` the connector reads it
//! (`GET /v1.0/users/{id}?$select=id,accountEnabled`). Undo record: `user_id` and
//! `previous_account_enabled`, the value before riposte acted (from the first attempt when
//! the engine retried), so the inverse restores only what riposte changed: an account that
//! was already disabled stays disabled when the disable is undone. A value already as asked
//! is not written again. `previous_account_enabled: null` — after a restart between send
//! and answer, when only the check could tell that the change took effect — makes the
//! inverse refuse with a clear message rather than guess.
//!
//! The group operations also take `group_id` (the group's object id). They read the group
//! (`GET /v1.0/groups/{group-id}?$select=id,displayName,groupTypes,isAssignableToRole`: an
//! unknown group is a `404`, a dynamic group is refused, since its rule decides its members)
//! and the user's direct memberships (`GET /v1.0/users/{id}/memberOf?$select=id`, following
//! `@odata.nextLink` only under `base_url`, at most `MAX_PAGES` pages; not transitive, as a
//! membership through a nested group is not one the `DELETE` can remove). Undo record:
//! `user_id`, `group_id` and `was_member` (the first attempt's reading), so undoing a
//! removal never adds someone who was not a member, and undoing an add never removes an
//! earlier member; `was_member: null` (from the check) is refused rather than guessed.
//! Graph's `404 Request_ResourceNotFound` to the `DELETE` and `400 One or more added object
//! references already exist` to the `POST` mean the membership is already as asked: success,
//! `changed: false`.
//!
//! Setting `accountEnabled` to a value is idempotent and revoking sessions twice revokes
//! them once, and the membership reads make the group operations so: the engine may retry
//! all five. Graph answers `204` to the `PATCH` and `{"value": true}` to the revocation
//! (anything else is a failure). After a restart, the engine asks for the account's
//! `accountEnabled` or the user's memberships; revocation offers no check.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use riposte_respond::connector::{CallFuture, CheckFuture};
use riposte_respond::duration::HumanDuration;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, Reply, Request};
use crate::common::{
    FirstSeen, MAX_PAGES, at, check_name, membership, membership_inverse_is_noop, microsoft_app,
    opt_param, param, parse, path_segment, path_under, unexpected,
};

pub const KIND: &str = "entra";

const DEFAULT_BASE_URL: &str = "https://graph.microsoft.com";
const DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
const DISABLE: &str = "disable_account";
const ENABLE: &str = "enable_account";
const REVOKE: &str = "revoke_sessions";
const REMOVE_FROM_GROUP: &str = "remove_from_group";
const ADD_TO_GROUP: &str = "add_to_group";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    tenant_id: String,
    client_id: String,
    /// The name of the secret holding the client secret.
    client_secret: String,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured Entra tenant.
#[derive(Debug)]
pub struct Entra {
    name: String,
    api: Api,
    ops: Vec<OperationSpec>,
    before: FirstSeen,
}

/// Loads a `kind: entra` definition.
pub fn load(file: &str, text: &str, secrets: Arc<dyn SecretSource>) -> Result<Entra, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    let auth = microsoft_app(
        file,
        text,
        &raw.tenant_id,
        raw.client_id,
        raw.client_secret,
        raw.authority.as_deref(),
        raw.scope.unwrap_or_else(|| DEFAULT_SCOPE.into()),
    )?;
    let timeout = raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30));
    let base = raw.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
    let api = Api::new(&raw.name, base, timeout, auth, secrets)
        .map_err(|m| at(file, text, "base_url:", m))?;
    let op = |name: &str, inverse: Option<&str>| OperationSpec {
        name: name.into(),
        class: Class::Approve,
        inverse: inverse.map(Into::into),
        irreversible: inverse.is_none(),
        idempotent: true,
    };
    Ok(Entra {
        name: raw.name,
        api,
        ops: vec![
            op(DISABLE, Some(ENABLE)),
            op(ENABLE, Some(DISABLE)),
            op(REVOKE, None),
            op(REMOVE_FROM_GROUP, Some(ADD_TO_GROUP)),
            op(ADD_TO_GROUP, Some(REMOVE_FROM_GROUP)),
        ],
        before: FirstSeen::default(),
    })
}

/// Graph's `{"error": {"code": …, "message": …}}`, as one line.
fn graph_error(body: &Value) -> Option<String> {
    let code = body.pointer("/error/code")?.as_str()?;
    let message = body
        .pointer("/error/message")
        .and_then(|m| m.as_str())
        .unwrap_or("");
    Some(format!("{code}: {message}"))
}

impl Entra {
    /// Sends `r`; Graph's refusals become rejections carrying its error code and message.
    /// A `401` is left to the shared client, which refreshes the token once.
    async fn send(&self, r: &Request, deadline: Duration) -> Result<Reply, ConnectorError> {
        let r = r.clone().also_ok(400).also_ok(403).also_ok(404);
        let reply = self.api.send(&r, deadline).await?;
        if reply.status < 400 {
            return Ok(reply);
        }
        Err(self.refusal(&r, &reply))
    }

    fn refusal(&self, r: &Request, reply: &Reply) -> ConnectorError {
        let why = graph_error(&reply.body)
            .unwrap_or_else(|| reply.body.to_string().chars().take(300).collect());
        ConnectorError::Rejected {
            status: Some(reply.status),
            message: format!(
                "{}: Graph refused {} {} ({}): {why}",
                self.name, r.method, r.path, reply.status
            ),
        }
    }

    /// The undo record's or the parameters' `user_id`, else `user_principal_name`.
    fn user_key<'a>(&self, req: &'a CallRequest) -> Result<&'a str, ConnectorError> {
        opt_param(req, "user_id")
            .or_else(|| opt_param(req, "user_principal_name"))
            .ok_or_else(|| ConnectorError::Config {
                message: format!(
                    "operation `{}` needs `user_id` (the user's object id) or `user_principal_name`",
                    req.operation
                ),
            })
    }

    /// Turns Graph's 404 into a message that names the user as the playbook gave it.
    fn not_found(&self, key: &str, e: ConnectorError) -> ConnectorError {
        match e {
            ConnectorError::Rejected {
                status: Some(404),
                message,
            } => ConnectorError::Rejected {
                status: Some(404),
                message: format!("{}: no Entra user `{key}` — {message}", self.name),
            },
            other => other,
        }
    }

    /// The user's object id and `accountEnabled`.
    async fn account(&self, req: &CallRequest) -> Result<(String, bool), ConnectorError> {
        let key = self.user_key(req)?;
        let r = Request::new(Method::GET, format!("/v1.0/users/{}", path_segment(key)))
            .query("$select", "id,accountEnabled");
        let reply = self
            .send(&r, req.timeout)
            .await
            .map_err(|e| self.not_found(key, e))?;
        let id = reply.body.get("id").and_then(|v| v.as_str());
        let enabled = reply.body.get("accountEnabled").and_then(|v| v.as_bool());
        match (id, enabled) {
            (Some(id), Some(enabled)) => Ok((id.to_string(), enabled)),
            _ => Err(unexpected(
                &self.name,
                "the user has no `id` and `accountEnabled`",
                &reply.body,
            )),
        }
    }

    async fn act(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        match req.operation.as_str() {
            DISABLE => self.set_enabled(req, false).await,
            ENABLE => self.set_enabled(req, true).await,
            REVOKE => self.revoke(req).await,
            REMOVE_FROM_GROUP => self.set_member(req, false).await,
            ADD_TO_GROUP => self.set_member(req, true).await,
            other => Err(ConnectorError::UnknownOperation {
                connector: self.name.clone(),
                operation: other.into(),
            }),
        }
    }

    async fn set_enabled(
        &self,
        req: &CallRequest,
        target: bool,
    ) -> Result<CallOutcome, ConnectorError> {
        // Called as the inverse: act only if the forward call changed something.
        if let Some(previous) = req.undo.get("previous_account_enabled") {
            let user_id = opt_param(req, "user_id").ok_or_else(|| ConnectorError::Config {
                message: "the undo record has no `user_id`".into(),
            })?;
            let Some(previous) = previous.as_bool() else {
                return Err(ConnectorError::Rejected {
                    status: None,
                    message: format!(
                        "{}: whether Entra user {user_id}'s account was enabled before riposte \
                         acted is unknown (riposte stopped between sending the change and its \
                         answer); check the account in Entra and change it by hand if needed",
                        self.name
                    ),
                });
            };
            // The forward call set the opposite of `target`; it changed the account only
            // if the account then held `target`.
            if previous != target {
                return Ok(outcome(user_id, previous, Some(previous), false, None));
            }
        }
        let (id, current) = self.account(req).await?;
        let previous = self
            .before
            .keep(&req.idempotency_key, json!(current))
            .as_bool()
            .unwrap_or(current);
        if current == target {
            return Ok(outcome(&id, current, Some(previous), false, None));
        }
        let r = Request::new(Method::PATCH, format!("/v1.0/users/{}", path_segment(&id)))
            .json(json!({"accountEnabled": target}));
        let reply = self
            .send(&r, req.timeout)
            .await
            .map_err(|e| self.not_found(&id, e))?;
        Ok(outcome(
            &id,
            target,
            Some(previous),
            true,
            Some(reply.status),
        ))
    }

    async fn revoke(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let key = self.user_key(req)?;
        let r = Request::new(
            Method::POST,
            format!("/v1.0/users/{}/revokeSignInSessions", path_segment(key)),
        );
        let reply = self
            .send(&r, req.timeout)
            .await
            .map_err(|e| self.not_found(key, e))?;
        if reply.body.get("value").and_then(|v| v.as_bool()) != Some(true) {
            return Err(unexpected(
                &self.name,
                &format!("Graph did not confirm revoking the sessions of `{key}`"),
                &reply.body,
            ));
        }
        let fields = serde_json::Map::from_iter([
            ("user".to_string(), json!(key)),
            ("revoked".to_string(), json!(true)),
        ]);
        Ok(CallOutcome {
            fields,
            undo: Value::Null,
            status: Some(reply.status),
        })
    }

    /// The user's object id: `user_id` as given, else looked up by `user_principal_name`
    /// (a membership reference names the object id).
    async fn object_id(&self, req: &CallRequest) -> Result<String, ConnectorError> {
        if let Some(id) = opt_param(req, "user_id") {
            return Ok(id.to_string());
        }
        let key = self.user_key(req)?;
        let r = Request::new(Method::GET, format!("/v1.0/users/{}", path_segment(key)))
            .query("$select", "id");
        let reply = self
            .send(&r, req.timeout)
            .await
            .map_err(|e| self.not_found(key, e))?;
        match reply.body.get("id").and_then(|v| v.as_str()) {
            Some(id) => Ok(id.to_string()),
            None => Err(unexpected(&self.name, "the user has no `id`", &reply.body)),
        }
    }

    /// The group's display name and whether Entra roles can be assigned to it, after making
    /// sure the group exists and its members are assigned (a dynamic group's rule decides
    /// them; Graph would refuse any change).
    async fn group(&self, gid: &str, deadline: Duration) -> Result<(String, bool), ConnectorError> {
        let r = Request::new(Method::GET, format!("/v1.0/groups/{}", path_segment(gid)))
            .query("$select", "id,displayName,groupTypes,isAssignableToRole");
        let reply = match self.send(&r, deadline).await {
            Err(ConnectorError::Rejected {
                status: Some(404),
                message,
            }) => {
                return Err(ConnectorError::Rejected {
                    status: Some(404),
                    message: format!("{}: no Entra group `{gid}` — {message}", self.name),
                });
            }
            other => other?,
        };
        let dynamic = reply
            .body
            .get("groupTypes")
            .and_then(|t| t.as_array())
            .is_some_and(|t| t.iter().any(|t| t == "DynamicMembership"));
        if dynamic {
            return Err(ConnectorError::Rejected {
                status: None,
                message: format!(
                    "{}: Entra group `{gid}` has dynamic membership: its rule decides who is a \
                     member, so riposte cannot add or remove one; change the rule or the user's \
                     attributes instead",
                    self.name
                ),
            });
        }
        let name = reply
            .body
            .get("displayName")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let role_assignable = reply.body.get("isAssignableToRole") == Some(&json!(true));
        Ok((name, role_assignable))
    }

    /// Whether the user is a direct member of the group, from the user's direct memberships
    /// (`memberOf` is not transitive: a membership through a nested group is not one riposte
    /// can remove). Read page by page along `@odata.nextLink`, at most `MAX_PAGES` pages.
    async fn is_member(
        &self,
        uid: &str,
        gid: &str,
        deadline: Duration,
    ) -> Result<bool, ConnectorError> {
        let mut r = Request::new(
            Method::GET,
            format!("/v1.0/users/{}/memberOf", path_segment(uid)),
        )
        .query("$select", "id");
        for _ in 0..MAX_PAGES {
            let reply = self
                .send(&r, deadline)
                .await
                .map_err(|e| self.not_found(uid, e))?;
            let Some(page) = reply.body.get("value").and_then(|v| v.as_array()) else {
                return Err(unexpected(
                    &self.name,
                    "the user's memberships have no `value` list",
                    &reply.body,
                ));
            };
            if page
                .iter()
                .any(|o| o.get("id").and_then(|v| v.as_str()) == Some(gid))
            {
                return Ok(true);
            }
            let Some(next) = reply.body.get("@odata.nextLink").and_then(|v| v.as_str()) else {
                return Ok(false);
            };
            let Some(path) = path_under(self.api.base_url(), next) else {
                return Err(ConnectorError::Rejected {
                    status: None,
                    message: format!(
                        "{}: Graph's next page of memberships is not under the configured \
                         base_url ({}); not following it",
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
                "{}: Entra user {uid} has more than {MAX_PAGES} pages of memberships; riposte \
                 stopped reading before finding whether they include group `{gid}`",
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
        if let Some(noop) = membership_inverse_is_noop(req, gid, target, "Entra", &self.name)? {
            return Ok(noop);
        }
        let uid = self.object_id(req).await?;
        let (name, role_assignable) = self.group(gid, req.timeout).await?;
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
        let r = if target {
            // The reference names the object in the same cloud as the API riposte calls.
            let reference = format!("{}/v1.0/directoryObjects/{uid}", self.api.base_url());
            Request::new(
                Method::POST,
                format!("/v1.0/groups/{}/members/$ref", path_segment(gid)),
            )
            .json(json!({ "@odata.id": reference }))
        } else {
            Request::new(
                Method::DELETE,
                format!(
                    "/v1.0/groups/{}/members/{}/$ref",
                    path_segment(gid),
                    path_segment(&uid)
                ),
            )
        };
        let r = r.also_ok(400).also_ok(403).also_ok(404);
        let reply = self.api.send(&r, req.timeout).await?;
        let message = graph_error(&reply.body).unwrap_or_default();
        // Someone else (or this call's own lost first attempt) got there first: the
        // membership is as asked, which is what the call is for.
        let already = match reply.status {
            400 => target && message.contains("added object references already exist"),
            404 => !target && message.starts_with("Request_ResourceNotFound"),
            _ => false,
        };
        if reply.status >= 400 && !already {
            return Err(match self.refusal(&r, &reply) {
                ConnectorError::Rejected {
                    status: Some(403),
                    message,
                } if role_assignable => ConnectorError::Rejected {
                    status: Some(403),
                    message: format!(
                        "{message} (group `{gid}` is role-assignable: changing its members also \
                         needs RoleManagement.ReadWrite.Directory)"
                    ),
                },
                other => other,
            });
        }
        Ok(membership(
            &uid,
            gid,
            Some(&name),
            target,
            Some(was),
            !already,
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
        let uid = self.object_id(req).await?;
        let (name, _) = self.group(gid, req.timeout).await?;
        let member = self.is_member(&uid, gid, req.timeout).await?;
        let target = req.operation == ADD_TO_GROUP;
        Ok((member == target)
            .then(|| membership(&uid, gid, Some(&name), member, None, true, Some(200))))
    }

    /// Whether `accountEnabled` already shows the call took effect. The value before the
    /// call is unknown by then: the undo record says so.
    async fn took_effect(&self, req: &CallRequest) -> Result<Option<CallOutcome>, ConnectorError> {
        let (id, current) = self.account(req).await?;
        let target = req.operation == ENABLE;
        Ok((current == target).then(|| outcome(&id, current, None, true, Some(200))))
    }
}

fn outcome(
    user: &str,
    enabled: bool,
    previous: Option<bool>,
    changed: bool,
    status: Option<u16>,
) -> CallOutcome {
    let mut fields = serde_json::Map::new();
    fields.insert("user_id".into(), json!(user));
    fields.insert("account_enabled".into(), json!(enabled));
    fields.insert("previous_account_enabled".into(), json!(previous));
    fields.insert("changed".into(), json!(changed));
    CallOutcome {
        undo: json!({"user_id": user, "previous_account_enabled": previous}),
        fields,
        status,
    }
}

impl Connector for Entra {
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
            DISABLE | ENABLE => Some(Box::pin(self.took_effect(req))),
            REMOVE_FROM_GROUP | ADD_TO_GROUP => Some(Box::pin(self.membership_took_effect(req))),
            _ => None,
        }
    }
}
