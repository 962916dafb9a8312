//! What every vendor module shares besides the HTTP client: reading its YAML definition
//! (errors positioned at the offending key), the connector name rule, and reading call
//! parameters and undo records with errors a playbook author can act on.

use riposte_respond::{CallOutcome, CallRequest, ConnectorError, LoadError};
use serde::de::DeserializeOwned;
use serde_json::json;

/// Parses a definition into the module's own `deny_unknown_fields` struct.
pub fn parse<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, LoadError> {
    yaml_serde::from_str(text).map_err(|e| LoadError::yaml(file, &e))
}

/// The 1-based line where `key:` first starts a line, 0 when absent.
pub fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with(key))
        .map(|i| i + 1)
        .unwrap_or(0)
}

/// A load error at the line of `key`.
pub fn at(file: &str, text: &str, key: &str, message: impl Into<String>) -> LoadError {
    LoadError::new(file, line_of(text, key), 1, message)
}

/// Playbooks call `name.operation`: a name must be non-empty, without dots or spaces.
pub fn check_name(file: &str, text: &str, name: &str) -> Result<(), LoadError> {
    if name.is_empty() || name.contains('.') || name.contains(char::is_whitespace) {
        return Err(at(
            file,
            text,
            "name:",
            format!("connector name `{name}` must be non-empty, without dots or spaces"),
        ));
    }
    Ok(())
}

/// A required string parameter of the call (or of its undo record, for an inverse).
pub fn param<'a>(req: &'a CallRequest, name: &str) -> Result<&'a str, ConnectorError> {
    opt_param(req, name).ok_or_else(|| ConnectorError::Config {
        message: format!(
            "operation `{}` needs the parameter `{name}` (a non-empty string)",
            req.operation
        ),
    })
}

/// A string parameter: the undo record's value first (an inverse acts on what the forward
/// call touched), then the step's parameters.
pub fn opt_param<'a>(req: &'a CallRequest, name: &str) -> Option<&'a str> {
    req.undo
        .get(name)
        .and_then(|v| v.as_str())
        .or_else(|| req.params.get(name).and_then(|v| v.as_str()))
        .filter(|s| !s.is_empty())
}

/// The error for an answer that is a success by status but not the shape the vendor
/// documents.
pub fn unexpected(connector: &str, what: &str, body: &serde_json::Value) -> ConnectorError {
    let text: String = body.to_string().chars().take(300).collect();
    ConnectorError::Rejected {
        status: None,
        message: format!("{connector}: {what}; the answer was {text}"),
    }
}

/// `s` as one URL path segment: RFC 3986 `pchar`s stay as they are (so `alice@corp.example`
/// reads as vendors document it), anything else — `/`, `?`, `#`, `%`, spaces — is
/// percent-encoded, so a value can never reach another path.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How many pages of a vendor's list a connector reads before giving up: a membership
/// read that has not found its answer by then says so instead of guessing.
pub const MAX_PAGES: usize = 50;

/// The path (with its query) of a vendor's next-page link, when the link points into
/// `base_url`: a link to any other host is refused, so the credentials sent with every
/// request never leave for a place the definition did not name.
pub fn path_under(base_url: &str, link: &str) -> Option<String> {
    let rest = link.strip_prefix(base_url)?;
    rest.starts_with('/').then(|| rest.to_string())
}

/// What a forward call read before it acted (an account's previous state), kept by
/// idempotency key: a retried call reads the state its own first attempt already changed,
/// and must still record the state from before riposte acted. Bounded; after a restart it
/// is empty, which the modules that use it account for.
#[derive(Debug, Default)]
pub struct FirstSeen(std::sync::Mutex<std::collections::HashMap<String, serde_json::Value>>);

impl FirstSeen {
    const MAX: usize = 4096;

    /// The value first seen under `key`: `seen` when this is the first attempt.
    pub fn keep(&self, key: &str, seen: serde_json::Value) -> serde_json::Value {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX && !map.contains_key(key) {
            map.clear();
        }
        map.entry(key.to_string()).or_insert(seen).clone()
    }
}

/// Whether `host` (from a URL or a setting) names this machine: the only place a password
/// may travel without TLS.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The OAuth2 client credentials of a Microsoft Entra app registration (Defender for
/// Endpoint, Microsoft Graph): the tenant id checked, the authority (default
/// `https://login.microsoftonline.com`) checked, the token URL built as Microsoft documents
/// it (`{authority}/{tenant}/oauth2/v2.0/token`) with the API's `.default` scope.
#[allow(clippy::too_many_arguments)]
pub fn microsoft_app(
    file: &str,
    text: &str,
    tenant_id: &str,
    client_id: String,
    client_secret: String,
    authority: Option<&str>,
    scope: String,
) -> Result<crate::api::Auth, LoadError> {
    let tenant_ok = !tenant_id.is_empty()
        && tenant_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !tenant_ok {
        return Err(at(
            file,
            text,
            "tenant_id:",
            format!(
                "`tenant_id` `{tenant_id}` is not a tenant id (a GUID or a domain such as contoso.onmicrosoft.com)"
            ),
        ));
    }
    if client_id.trim().is_empty() {
        return Err(at(file, text, "client_id:", "`client_id` is empty"));
    }
    let authority = authority.unwrap_or("https://login.microsoftonline.com");
    if !(authority.starts_with("https://") || authority.starts_with("http://")) {
        return Err(at(
            file,
            text,
            "authority:",
            format!("`authority` `{authority}` must start with https://"),
        ));
    }
    Ok(crate::api::Auth::ClientCredentials(
        crate::api::ClientCredentials {
            token_url: format!(
                "{}/{tenant_id}/oauth2/v2.0/token",
                authority.trim_end_matches('/')
            ),
            client_id,
            secret: client_secret,
            scope: Some(scope),
        },
    ))
}

/// The result of a group-membership change (Okta, Entra): what the group holds now, what it
/// held before (`was`, unknown after a restart between send and answer), and the undo record.
pub(crate) fn membership(
    user: &str,
    group: &str,
    group_name: Option<&str>,
    member: bool,
    was: Option<bool>,
    changed: bool,
    status: Option<u16>,
) -> CallOutcome {
    let mut fields = serde_json::Map::new();
    fields.insert("user_id".into(), json!(user));
    fields.insert("group_id".into(), json!(group));
    if let Some(n) = group_name {
        fields.insert("group_name".into(), json!(n));
    }
    fields.insert("member".into(), json!(member));
    fields.insert("was_member".into(), json!(was));
    fields.insert("changed".into(), json!(changed));
    CallOutcome {
        undo: json!({"user_id": user, "group_id": group, "was_member": was}),
        fields,
        status,
    }
}

/// A membership change called as the inverse of an earlier one: `Some` when the forward call
/// changed nothing (the membership was already what the forward call made it, `!target`), so
/// the inverse must not act either;
/// an error when the undo record cannot tell (riposte stopped between the call and its answer).
pub(crate) fn membership_inverse_is_noop(
    req: &CallRequest,
    group: &str,
    target: bool,
    product: &str,
    connector: &str,
) -> Result<Option<CallOutcome>, ConnectorError> {
    let Some(was) = req.undo.get("was_member") else {
        return Ok(None);
    };
    let user = opt_param(req, "user_id").ok_or_else(|| ConnectorError::Config {
        message: "the undo record has no `user_id`".into(),
    })?;
    let Some(was) = was.as_bool() else {
        return Err(ConnectorError::Rejected {
            status: None,
            message: format!(
                "{connector}: whether {product} user {user} was a member of group `{group}` \
                 before riposte acted is unknown (riposte stopped between sending the call and \
                 its answer); check the group in {product} and change it by hand if needed"
            ),
        });
    };
    // The forward call made the membership `!target`; it changed something only if the
    // membership was then `target`.
    Ok((was != target).then(|| membership(user, group, None, was, Some(was), false, None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_segment_cannot_leave_its_segment() {
        assert_eq!(path_segment("alice@corp.example"), "alice@corp.example");
        assert_eq!(path_segment("../admin?x=1#f"), "..%2Fadmin%3Fx=1%23f");
        assert_eq!(path_segment("a b%"), "a%20b%25");
    }

    #[test]
    fn a_next_page_link_must_stay_under_the_base_url() {
        let base = "https://graph.microsoft.com";
        assert_eq!(
            path_under(base, "https://graph.microsoft.com/v1.0/x?$skiptoken=a").as_deref(),
            Some("/v1.0/x?$skiptoken=a")
        );
        assert_eq!(
            path_under(base, "https://graph.microsoft.com.evil.example/v1.0"),
            None
        );
        assert_eq!(path_under(base, "https://evil.example/v1.0"), None);
    }

    #[test]
    fn the_first_value_seen_under_a_key_wins() {
        let m = FirstSeen::default();
        assert_eq!(
            m.keep("k", serde_json::json!(true)),
            serde_json::json!(true)
        );
        assert_eq!(
            m.keep("k", serde_json::json!(false)),
            serde_json::json!(true)
        );
        assert_eq!(
            m.keep("j", serde_json::json!(false)),
            serde_json::json!(false)
        );
    }
}
