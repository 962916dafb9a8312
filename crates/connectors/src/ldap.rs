//! Active Directory over LDAP: disabling an account (the `ACCOUNTDISABLE` bit of
//! `userAccountControl`) and enabling it again.
//!
//! ```yaml
//! name: ad
//! kind: ldap
//! url: ldaps://dc01.corp.example            # or ldap://dc01.corp.example with starttls: true
//! starttls: false                           # StartTLS on an ldap:// URL (default false)
//! ca_file: /etc/riposte/corp-root-ca.pem    # optional; default: the system's trust store
//! bind_dn: CN=svc-riposte,OU=Service Accounts,DC=corp,DC=example
//! bind_password: ad_bind_password           # the name of a stored secret
//! base_dn: OU=Staff,DC=corp,DC=example      # accounts are looked up, and acted on, only here
//! timeout: 10s                              # default 30s
//! ```
//!
//! The bind account needs read access to `sAMAccountName`, `userPrincipalName` and
//! `userAccountControl` under `base_dn`, and **write access to `userAccountControl`** on the
//! OUs whose accounts riposte may disable (in AD: delegate "Read/Write userAccountControl"
//! on those OUs; never Domain Admins). Ports: 636 (LDAPS) or 389 with StartTLS. A plain
//! `ldap://` URL without StartTLS would send the bind password in clear, so it is refused
//! unless the host is this machine.
//!
//! | operation | class | inverse | change |
//! |---|---|---|---|
//! | `disable_account` | approve | `enable_account` | sets bit `0x2` of `userAccountControl`, keeps every other bit |
//! | `enable_account` | approve | `disable_account` | clears bit `0x2`, keeps every other bit |
//!
//! Called as an undo (with the other operation's undo record), either operation puts the
//! bit back as it was in the record's `previous`.
//!
//! Parameters: `dn` (the account's distinguished name), or `user`: a `sAMAccountName`
//! (`alice`, or `CORP\alice`, whose domain part is dropped) or a `userPrincipalName`
//! (`alice@corp.example`), searched under `base_dn` with the value escaped as RFC 4515
//! requires. No match, more than one match, or a `dn` outside `base_dn` is a failure, never
//! a guess.
//!
//! Undo record: `{"dn": ..., "previous": <userAccountControl before the call>}`. Undoing a
//! disable sets the bit back to what `previous` had: an account that was already disabled
//! before riposte touched it stays disabled. Only that bit is restored, not the whole old
//! value, so a change another administrator made to other bits in between is kept; with no
//! such change the value is exactly the original.
//!
//! Lost updates: the change is one LDAP modify that deletes the exact value read and adds
//! the new one (RFC 4511 §4.6 applies a modify's changes atomically, all or none). If
//! someone changed `userAccountControl` between our read and our write, the delete finds
//! no such value, the directory answers `noSuchAttribute` (16) and nothing is written,
//! where a plain `replace` would overwrite the other change with a value computed from a
//! stale read. The call fails as transient ("changed between our read and our write"), and
//! the engine's next attempt reads afresh.
//!
//! Idempotency: setting a bit that is set changes nothing, so the engine may retry
//! `disable_account` after a failure that happened before the modify was sent (connect,
//! bind, search) or that the directory answered with "nothing written" (the stale read
//! above). A modify with no answer is reported as not retryable: a second
//! attempt would read the already-disabled value and record it as `previous`, and undo
//! would then leave the account disabled. For the same reason the check (asked after a
//! restart between send and answer) can only report the value it finds: an account found
//! disabled is recorded with that value as `previous`, so undo fails closed and leaves it
//! disabled; re-enable it by hand if it was enabled before.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::asn1::StructureTag;
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, ldap_escape};
use riposte_respond::connector::{CallFuture, CheckFuture};
use riposte_respond::duration::HumanDuration;
use riposte_respond::http::install_tls_provider;
use riposte_respond::{
    CallOutcome, CallRequest, Class, Connector, ConnectorError, LoadError, OperationSpec,
    SecretSource,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::{at, check_name, is_loopback, opt_param, parse};

pub const KIND: &str = "ldap";

const DISABLE: &str = "disable_account";
const ENABLE: &str = "enable_account";
const UAC: &str = "userAccountControl";
/// `ADS_UF_ACCOUNTDISABLE`.
const ACCOUNTDISABLE: i64 = 0x2;

/// LDAP result codes (RFC 4511 appendix A) the connector explains.
mod rc {
    pub const NO_SUCH_ATTRIBUTE: u32 = 16;
    pub const NO_SUCH_OBJECT: u32 = 32;
    pub const INVALID_CREDENTIALS: u32 = 49;
    pub const INSUFFICIENT_ACCESS: u32 = 50;
    pub const BUSY: u32 = 51;
    pub const UNAVAILABLE: u32 = 52;
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[allow(dead_code)]
    kind: String,
    url: String,
    #[serde(default)]
    starttls: bool,
    #[serde(default)]
    ca_file: Option<std::path::PathBuf>,
    bind_dn: String,
    /// The name of the secret holding the bind password.
    bind_password: String,
    base_dn: String,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

/// A configured directory.
pub struct Directory {
    name: String,
    url: String,
    starttls: bool,
    /// Set when `ca_file` names the CA to trust; else the system's trust store.
    tls: Option<Arc<rustls::ClientConfig>>,
    bind_dn: String,
    bind_password: String,
    base_dn: String,
    timeout: Duration,
    secrets: Arc<dyn SecretSource>,
    ops: Vec<OperationSpec>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .finish_non_exhaustive()
    }
}

fn spec(name: &str, inverse: &str) -> OperationSpec {
    OperationSpec {
        name: name.into(),
        class: Class::Approve,
        inverse: Some(inverse.into()),
        irreversible: false,
        idempotent: true,
    }
}

/// Loads a `kind: ldap` definition.
pub fn load(
    file: &str,
    text: &str,
    secrets: Arc<dyn SecretSource>,
) -> Result<Directory, LoadError> {
    let raw: Raw = parse(file, text)?;
    check_name(file, text, &raw.name)?;
    let url =
        reqwest::Url::parse(&raw.url).map_err(|e| at(file, text, "url:", format!("`url`: {e}")))?;
    let host = url.host_str().unwrap_or_default().to_string();
    if host.is_empty() {
        return Err(at(file, text, "url:", "`url` names no host"));
    }
    match (url.scheme(), raw.starttls) {
        ("ldaps", false) | ("ldap", true) => {}
        ("ldap", false) if is_loopback(&host) => {}
        ("ldap", false) => {
            return Err(at(
                file,
                text,
                "url:",
                format!(
                    "`url` is ldap://{host} without `starttls: true`: the bind password would \
                     cross the network in clear; use ldaps:// or set `starttls: true`"
                ),
            ));
        }
        ("ldaps", true) => {
            return Err(at(
                file,
                text,
                "starttls:",
                "`starttls: true` goes with an ldap:// URL; an ldaps:// URL is TLS from the start",
            ));
        }
        (other, _) => {
            return Err(at(
                file,
                text,
                "url:",
                format!("`url` scheme `{other}`: use ldaps:// or ldap://"),
            ));
        }
    }
    for (key, value) in [("bind_dn:", &raw.bind_dn), ("base_dn:", &raw.base_dn)] {
        if value.trim().is_empty() {
            return Err(at(
                file,
                text,
                key,
                format!("`{}` is empty", key.trim_end_matches(':')),
            ));
        }
    }
    install_tls_provider();
    let tls = match &raw.ca_file {
        None => None,
        Some(path) => Some(
            trusting(path).map_err(|m| at(file, text, "ca_file:", format!("`ca_file`: {m}")))?,
        ),
    };
    Ok(Directory {
        name: raw.name,
        url: raw.url,
        starttls: raw.starttls,
        tls,
        bind_dn: raw.bind_dn,
        bind_password: raw.bind_password,
        base_dn: raw.base_dn,
        timeout: raw.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30)),
        secrets,
        ops: vec![spec(DISABLE, ENABLE), spec(ENABLE, DISABLE)],
    })
}

/// A TLS client configuration that trusts exactly the certificates in `path` (PEM).
fn trusting(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let shown = path.display();
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| format!("{shown}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{shown}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("{shown}: not a usable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{shown} holds no PEM certificate"));
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// One account as read: its DN and `userAccountControl` as the directory wrote it.
struct Account {
    dn: String,
    uac: String,
}

impl Account {
    fn value(&self, connector: &str) -> Result<i64, ConnectorError> {
        self.uac
            .trim()
            .parse::<i64>()
            .map_err(|_| ConnectorError::Rejected {
                status: None,
                message: format!(
                    "{connector}: `{UAC}` of {} is `{}`, not an integer",
                    self.dn, self.uac
                ),
            })
    }
}

/// One bound connection, with the call's deadline.
struct Session {
    ldap: ldap3::Ldap,
    until: Instant,
}

impl Session {
    /// What is left of the deadline; never zero, so the operation still gets to fail on
    /// its own timeout with a clear error.
    fn left(&self) -> Duration {
        self.until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    }
}

impl Directory {
    fn error(&self, doing: &str, e: LdapError) -> ConnectorError {
        let name = &self.name;
        match e {
            LdapError::LdapResult { result } => {
                let detail = if result.text.is_empty() {
                    String::new()
                } else {
                    format!(": {}", result.text)
                };
                match result.rc {
                    rc::INVALID_CREDENTIALS => ConnectorError::Rejected {
                        status: None,
                        message: format!(
                            "{name}: the directory refused the bind as `{}`: invalid credentials \
                             ({}); check the secret `{}`",
                            self.bind_dn, result.rc, self.bind_password
                        ),
                    },
                    rc::INSUFFICIENT_ACCESS => ConnectorError::Rejected {
                        status: None,
                        message: format!(
                            "{name}: {doing}: insufficient access rights ({}){detail}; `{}` needs \
                             write access to `{UAC}` there",
                            result.rc, self.bind_dn
                        ),
                    },
                    rc::BUSY | rc::UNAVAILABLE => ConnectorError::Transient {
                        message: format!(
                            "{name}: {doing}: the directory is busy or unavailable ({}){detail}",
                            result.rc
                        ),
                    },
                    code => ConnectorError::Rejected {
                        status: None,
                        message: format!("{name}: {doing}: LDAP result {code}{detail}"),
                    },
                }
            }
            LdapError::Timeout { .. } => ConnectorError::Timeout {
                secs: self.timeout.as_secs(),
            },
            // tokio-rustls reports a failed handshake as an I/O error wrapping rustls's own:
            // a certificate the trust store does not accept will not be accepted next time.
            LdapError::Io { source }
                if source
                    .get_ref()
                    .is_some_and(|e| e.downcast_ref::<rustls::Error>().is_some()) =>
            {
                ConnectorError::Rejected {
                    status: None,
                    message: format!(
                        "{name}: {doing}: TLS: {source}; if the directory's certificate comes \
                         from a private CA, name it in `ca_file`"
                    ),
                }
            }
            LdapError::Rustls { source } => ConnectorError::Rejected {
                status: None,
                message: format!("{name}: {doing}: TLS: {source}"),
            },
            LdapError::DNSName { source } => ConnectorError::Rejected {
                status: None,
                message: format!("{name}: {doing}: TLS server name: {source}"),
            },
            LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) => ConnectorError::Config {
                message: format!("{name}: {doing}: {e}"),
            },
            // A refused or dropped connection: another attempt may find the server back.
            other => ConnectorError::Transient {
                message: format!("{name}: {doing}: {other}"),
            },
        }
    }

    /// Connects, secures and binds; the password goes only into the bind request.
    async fn session(&self, deadline: Duration) -> Result<Session, ConnectorError> {
        let deadline = deadline.min(self.timeout);
        let until = Instant::now() + deadline;
        let password = self.secrets.secret(&self.bind_password)?;
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(deadline)
            .set_starttls(self.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let connecting = LdapConnAsync::with_settings(settings, &self.url);
        let (conn, ldap) = tokio::time::timeout(deadline, connecting)
            .await
            .map_err(|_| ConnectorError::Timeout {
                secs: deadline.as_secs(),
            })?
            .map_err(|e| self.error(&format!("connecting to {}", self.url), e))?;
        ldap3::drive!(conn);
        let mut s = Session { ldap, until };
        let left = s.left();
        s.ldap
            .with_timeout(left)
            .simple_bind(&self.bind_dn, password.expose())
            .await
            .and_then(|r| r.success())
            .map_err(|e| self.error(&format!("binding as `{}`", self.bind_dn), e))?;
        Ok(s)
    }

    /// The one account the call names, with its current `userAccountControl`.
    async fn account(&self, s: &mut Session, req: &CallRequest) -> Result<Account, ConnectorError> {
        let (base, scope, filter, shown) = if let Some(dn) = opt_param(req, "dn") {
            if !within(dn, &self.base_dn) {
                return Err(ConnectorError::Rejected {
                    status: None,
                    message: format!(
                        "{}: `{dn}` is not under the base DN `{}`; this connector acts only there",
                        self.name, self.base_dn
                    ),
                });
            }
            (
                dn.to_string(),
                Scope::Base,
                "(objectClass=*)".to_string(),
                format!("`{dn}`"),
            )
        } else if let Some(user) = opt_param(req, "user") {
            let filter = if user.contains('@') {
                format!(
                    "(&(objectClass=user)(userPrincipalName={}))",
                    ldap_escape(user)
                )
            } else {
                // CORP\alice → alice: the NetBIOS domain is not part of sAMAccountName.
                let sam = user.rsplit('\\').next().unwrap_or(user);
                format!("(&(objectClass=user)(sAMAccountName={}))", ldap_escape(sam))
            };
            (
                self.base_dn.clone(),
                Scope::Subtree,
                filter,
                format!("named `{user}`"),
            )
        } else {
            return Err(ConnectorError::Config {
                message: format!(
                    "operation `{}` needs `dn` (a distinguished name) or `user` (a sAMAccountName \
                     or userPrincipalName)",
                    req.operation
                ),
            });
        };
        let left = s.left();
        let answer = s
            .ldap
            .with_timeout(left)
            .search(&base, scope, &filter, vec![UAC])
            .await
            .and_then(|r| r.success());
        let entries = match answer {
            Ok((entries, _)) => entries,
            Err(LdapError::LdapResult { result }) if result.rc == rc::NO_SUCH_OBJECT => {
                return Err(ConnectorError::Rejected {
                    status: None,
                    message: format!(
                        "{}: no account {shown}: the directory has no entry `{base}`",
                        self.name
                    ),
                });
            }
            Err(e) => return Err(self.error(&format!("looking up the account {shown}"), e)),
        };
        let mut found: Vec<Account> = Vec::new();
        for e in entries {
            // Continuation references (AD answers them for a search at a domain's root) are
            // other naming contexts, not accounts.
            if e.is_ref() || e.is_intermediate() {
                continue;
            }
            let Some((dn, uac)) = read_entry(e.0) else {
                return Err(ConnectorError::Rejected {
                    status: None,
                    message: format!(
                        "{}: the directory answered the search for {shown} with an entry that \
                         is not a valid LDAP SearchResultEntry",
                        self.name
                    ),
                });
            };
            let Some(uac) = uac else {
                return Err(ConnectorError::Rejected {
                    status: None,
                    message: format!(
                        "{}: `{dn}` has no `{UAC}` (not an Active Directory account, or the bind \
                         account may not read it)",
                        self.name
                    ),
                });
            };
            found.push(Account { dn, uac });
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(ConnectorError::Rejected {
                status: None,
                message: format!("{}: no account {shown} under `{}`", self.name, self.base_dn),
            }),
            n => Err(ConnectorError::Rejected {
                status: None,
                message: format!(
                    "{}: {n} accounts are {shown} under `{}` ({}); give `dn` instead",
                    self.name,
                    self.base_dn,
                    found
                        .iter()
                        .map(|a| a.dn.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            }),
        }
    }

    /// Writes `new` in place of exactly `old`; `Ok(false)` when the value is no longer
    /// `old` (someone else changed it since it was read).
    async fn swap(
        &self,
        s: &mut Session,
        dn: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, ConnectorError> {
        let mods = vec![
            Mod::Delete(UAC.to_string(), HashSet::from([old.to_string()])),
            Mod::Add(UAC.to_string(), HashSet::from([new.to_string()])),
        ];
        let left = s.left();
        match s.ldap.with_timeout(left).modify(dn, mods).await {
            Ok(r) if r.rc == rc::NO_SUCH_ATTRIBUTE => Ok(false),
            Ok(r) => r
                .success()
                .map(|_| true)
                .map_err(|e| self.error(&format!("changing `{UAC}` of `{dn}`"), e)),
            Err(e) => Err(self.error(&format!("changing `{UAC}` of `{dn}`"), e)),
        }
    }

    async fn act(&self, req: &CallRequest) -> Result<CallOutcome, ConnectorError> {
        let disable = match req.operation.as_str() {
            DISABLE => true,
            ENABLE => false,
            other => {
                return Err(ConnectorError::UnknownOperation {
                    connector: self.name.clone(),
                    operation: other.into(),
                });
            }
        };
        let wanted = wanted_bit(req, disable)?;
        let mut s = self.session(req.timeout).await?;
        let result = self.change(&mut s, req, disable, wanted).await;
        let _ = s.ldap.unbind().await;
        result
    }

    async fn change(
        &self,
        s: &mut Session,
        req: &CallRequest,
        disable: bool,
        wanted: i64,
    ) -> Result<CallOutcome, ConnectorError> {
        let account = self.account(s, req).await?;
        let before = account.value(&self.name)?;
        let after = (before & !ACCOUNTDISABLE) | wanted;
        let changed = after != before;
        if changed {
            match self
                .swap(s, &account.dn, &account.uac, &after.to_string())
                .await
            {
                Ok(true) => {}
                // Nothing was written, so another attempt (the engine's) reads afresh and
                // records the right value before.
                Ok(false) => {
                    return Err(ConnectorError::Transient {
                        message: format!(
                            "{}: `{UAC}` of `{}` changed between our read ({}) and our write; \
                             nothing was written",
                            self.name, account.dn, account.uac
                        ),
                    });
                }
                Err(e) if disable && e.retryable() => {
                    return Err(ConnectorError::Rejected {
                        status: None,
                        message: format!(
                            "{e}; the account may or may not be disabled now: check `{UAC}` of \
                             `{}` (riposte does not repeat a disable whose answer was lost, as \
                             it would lose the value before)",
                            account.dn
                        ),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(outcome(&account.dn, before, after, changed, disable))
    }

    /// Whether the account's bit already is as the call would leave it.
    async fn took_effect(&self, req: &CallRequest) -> Result<Option<CallOutcome>, ConnectorError> {
        let disable = match req.operation.as_str() {
            DISABLE => true,
            ENABLE => false,
            other => {
                return Err(ConnectorError::UnknownOperation {
                    connector: self.name.clone(),
                    operation: other.into(),
                });
            }
        };
        let wanted = wanted_bit(req, disable)?;
        let mut s = self.session(req.timeout).await?;
        let account = self.account(&mut s, req).await;
        let _ = s.ldap.unbind().await;
        let account = account?;
        let now = account.value(&self.name)?;
        Ok(((now & ACCOUNTDISABLE) == wanted)
            .then(|| outcome(&account.dn, now, now, false, disable)))
    }
}

/// The value the `ACCOUNTDISABLE` bit should end with: as an undo, the bit as it was in
/// the undo record's `previous` (so an account disabled before stays disabled); otherwise
/// set for a disable, clear for an enable.
fn wanted_bit(req: &CallRequest, disable: bool) -> Result<i64, ConnectorError> {
    let previous = match req.undo.get("previous") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| ConnectorError::Config {
                    message: format!("`previous` in the undo record is `{v}`, not an integer"),
                })?,
        ),
    };
    Ok(match previous {
        Some(p) => p & ACCOUNTDISABLE,
        None if disable => ACCOUNTDISABLE,
        None => 0,
    })
}

fn outcome(dn: &str, before: i64, after: i64, changed: bool, disable: bool) -> CallOutcome {
    let mut fields = serde_json::Map::new();
    fields.insert("dn".into(), json!(dn));
    fields.insert("previous".into(), json!(before));
    fields.insert(UAC.into(), json!(after));
    fields.insert("changed".into(), json!(changed));
    if disable {
        fields.insert(
            "already_disabled".into(),
            json!(before & ACCOUNTDISABLE != 0),
        );
    }
    CallOutcome {
        undo: json!({"dn": dn, "previous": before}),
        fields,
        status: None,
    }
}

/// Reads a SearchResultEntry (RFC 4511 §4.5.2) without trusting its shape: the DN and the
/// first value of `userAccountControl`, whatever case the server spelled it in.
fn read_entry(tag: StructureTag) -> Option<(String, Option<String>)> {
    let mut parts = tag.match_id(4)?.expect_constructed()?.into_iter();
    let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
    let mut uac = None;
    for attribute in parts.next()?.expect_constructed()? {
        let mut a = attribute.expect_constructed()?.into_iter();
        let name = String::from_utf8(a.next()?.expect_primitive()?).ok()?;
        if !name.eq_ignore_ascii_case(UAC) {
            continue;
        }
        let first = a.next()?.expect_constructed()?.into_iter().next();
        if let Some(v) = first {
            uac = Some(String::from_utf8(v.expect_primitive()?).ok()?);
        }
    }
    Some((dn, uac))
}

/// Whether `dn` is `base` or lies under it, compared as AD compares DNs: without regard to
/// case or to spaces around `,` and `=`.
fn within(dn: &str, base: &str) -> bool {
    fn norm(s: &str) -> String {
        s.split(',')
            .map(|rdn| {
                rdn.split('=')
                    .map(|p| p.trim().to_lowercase())
                    .collect::<Vec<_>>()
                    .join("=")
            })
            .collect::<Vec<_>>()
            .join(",")
    }
    let (dn, base) = (norm(dn), norm(base));
    dn == base || dn.ends_with(&format!(",{base}"))
}

impl Connector for Directory {
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
        Some(Box::pin(self.took_effect(req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dn_is_within_its_base_whatever_the_case_and_spacing() {
        let base = "OU=Staff,DC=corp,DC=example";
        assert!(within("CN=Alice,OU=Staff,DC=corp,DC=example", base));
        assert!(within("cn=Alice, ou=staff, dc=Corp, dc=example", base));
        assert!(within("OU=Staff,DC=corp,DC=example", base));
        assert!(!within("CN=Admin,OU=Admins,DC=corp,DC=example", base));
        // A suffix that is not a whole RDN boundary is not "under".
        assert!(!within("CN=x,OU=NotStaff,DC=corp,DC=example", base));
    }

    #[test]
    fn a_malformed_entry_is_none_not_a_panic() {
        use ldap3::asn1::{PL, TagClass};
        let bogus = StructureTag {
            class: TagClass::Application,
            id: 4,
            payload: PL::P(vec![1, 2, 3]),
        };
        assert!(read_entry(bogus).is_none());
    }
}
