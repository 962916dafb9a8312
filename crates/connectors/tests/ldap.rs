//! The Active Directory connector against a real OpenLDAP `slapd` that each test starts on
//! 127.0.0.1: a throwaway configuration in a temporary folder, the mdb backend, a small
//! schema that gives entries AD's `sAMAccountName`, `userPrincipalName` and
//! `userAccountControl`, access rules that let the service account write
//! `userAccountControl` under `ou=Staff` only, and TLS (LDAPS and StartTLS) with a CA made
//! for the test.
//!
//! Needs `/usr/sbin/slapd` and `/usr/sbin/slapadd` (Debian's `slapd` package; `.ci/run`
//! installs it). Without them the tests fail saying so: they never pass without a server.

mod common;
#[path = "common/tls.rs"]
mod tls;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, Mod, Scope, SearchEntry};
use riposte_connectors::ldap;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{CallRequest, Connector, ConnectorError, Templates};
use serde_json::json;

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const SUFFIX: &str = "dc=corp,dc=example";
const ADMIN: &str = "cn=admin,dc=corp,dc=example";
const ADMIN_PW: &str = "admin-pw";
const SVC: &str = "cn=svc-riposte,ou=Service,dc=corp,dc=example";
const SVC_PW: &str = "Bind-Pw-7f3a";
const ALICE: &str = "cn=Alice Example,ou=Staff,dc=corp,dc=example";
const BOB: &str = "cn=Bob Example,ou=Staff,dc=corp,dc=example";
const CAROL: &str = "cn=Carol Example,ou=Staff,dc=corp,dc=example";
const EVE: &str = "cn=Eve Admin,ou=Admins,dc=corp,dc=example";

/// AD's `userAccountControl` and `sAMAccountName` (and `userPrincipalName`), with OIDs under
/// the example enterprise number of RFC 5612; an equality rule on the integer, as AD has,
/// so that a modify can delete one exact value.
const SCHEMA: &str = r#"
attributetype ( 1.3.6.1.4.1.32473.1.1.1 NAME 'sAMAccountName'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.1.1.2 NAME 'userAccountControl'
	EQUALITY integerMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.32473.1.1.3 NAME 'userPrincipalName'
	EQUALITY caseIgnoreMatch
	SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.32473.1.2.1 NAME 'user'
	SUP organizationalPerson STRUCTURAL
	MAY ( sAMAccountName $ userAccountControl $ userPrincipalName ) )
"#;

/// The accounts every test starts from. `userAccountControl` values are AD's:
/// 0x200 NORMAL_ACCOUNT, 0x2 ACCOUNTDISABLE, 0x10000 DONT_EXPIRE_PASSWORD,
/// 0x20 PASSWD_NOTREQD, 0x40000 SMARTCARD_REQUIRED.
fn seed() -> String {
    let user = |dn: &str, cn: &str, sam: &str, uac: u32, extra: &str| {
        format!(
            "dn: {dn}\nobjectClass: user\ncn: {cn}\nsn: Example\nsAMAccountName: {sam}\nuserAccountControl: {uac}\n{extra}\n"
        )
    };
    [
        format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n"
        ),
        "dn: ou=Staff,dc=corp,dc=example\nobjectClass: organizationalUnit\nou: Staff\n".into(),
        "dn: ou=Admins,dc=corp,dc=example\nobjectClass: organizationalUnit\nou: Admins\n".into(),
        "dn: ou=Service,dc=corp,dc=example\nobjectClass: organizationalUnit\nou: Service\n".into(),
        format!(
            "dn: {SVC}\nobjectClass: person\ncn: svc-riposte\nsn: riposte\nuserPassword: {SVC_PW}\n"
        ),
        user(ALICE, "Alice Example", "alice", 0x10200, ""),
        user(BOB, "Bob Example", "bob", 0x202, ""),
        user(
            CAROL,
            "Carol Example",
            "carol",
            0x40220,
            "userPrincipalName: carol@corp.example",
        ),
        user(EVE, "Eve Admin", "eve", 0x200, ""),
        user(
            "cn=Twin One,ou=Staff,dc=corp,dc=example",
            "Twin One",
            "twin",
            0x200,
            "",
        ),
        user(
            "cn=Twin Two,ou=Staff,dc=corp,dc=example",
            "Twin Two",
            "twin",
            0x200,
            "",
        ),
        user(
            "cn=Odd Name,ou=Staff,dc=corp,dc=example",
            "Odd Name",
            "o*brien(x)",
            0x200,
            "",
        ),
    ]
    .join("\n")
}

/// A running slapd, stopped when dropped.
struct Slapd {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    tls_port: u16,
    ca: PathBuf,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl Slapd {
    fn start() -> Slapd {
        for tool in [SLAPD, SLAPADD] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: these tests run a real OpenLDAP server; install Debian's \
                 `slapd` package (`apt-get install slapd`; .ci/run does)"
            );
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("db")).expect("db dir");
        let files = tls::issue(d);
        std::fs::write(d.join("ad.schema"), SCHEMA).expect("schema");
        let conf = format!(
            r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include {dir}/ad.schema
pidfile {dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 10485760
suffix "{SUFFIX}"
rootdn "{ADMIN}"
rootpw {ADMIN_PW}
directory {dir}/db
access to attrs=userPassword
	by anonymous auth
	by * none
access to dn.subtree="ou=Staff,{SUFFIX}" attrs=userAccountControl
	by dn.exact="{SVC}" write
	by users read
	by * none
access to *
	by users read
	by * none
"#,
            dir = d.display(),
            ca = files.ca.display(),
            cert = files.cert.display(),
            key = files.key.display(),
        );
        let conf_path = d.join("slapd.conf");
        std::fs::write(&conf_path, conf).expect("slapd.conf");
        std::fs::write(d.join("seed.ldif"), seed()).expect("seed.ldif");
        let out = Command::new(SLAPADD)
            .arg("-f")
            .arg(&conf_path)
            .arg("-l")
            .arg(d.join("seed.ldif"))
            .output()
            .expect("run slapadd");
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (port, tls_port) = (free_port(), free_port());
        let log = std::fs::File::create(d.join("slapd.log")).expect("log");
        // -d keeps slapd in the foreground, so the test owns the process and kills it.
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(&conf_path)
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/"
            ))
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start slapd");
        let mut s = Slapd {
            child,
            ca: files.ca,
            dir,
            port,
            tls_port,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&mut self) {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let up = [self.port, self.tls_port]
                .iter()
                .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if up {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log =
                    std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default();
                panic!("slapd exited ({status}) before listening: {log}");
            }
            assert!(Instant::now() < until, "slapd did not listen within 15 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// `userAccountControl` of `dn`, read as the directory's administrator.
    async fn uac(&self, dn: &str) -> String {
        let (conn, mut l) = LdapConnAsync::new(&self.url()).await.expect("connect");
        ldap3::drive!(conn);
        l.simple_bind(ADMIN, ADMIN_PW)
            .await
            .and_then(|r| r.success())
            .expect("admin bind");
        let (entries, _) = l
            .search(
                dn,
                Scope::Base,
                "(objectClass=*)",
                vec!["userAccountControl"],
            )
            .await
            .and_then(|r| r.success())
            .expect("read");
        let e = SearchEntry::construct(entries.into_iter().next().expect("entry"));
        e.attrs["userAccountControl"][0].clone()
    }

    /// Sets `userAccountControl` as the administrator: another person's change.
    async fn set_uac(&self, dn: &str, value: &str) {
        let (conn, mut l) = LdapConnAsync::new(&self.url()).await.expect("connect");
        ldap3::drive!(conn);
        l.simple_bind(ADMIN, ADMIN_PW)
            .await
            .and_then(|r| r.success())
            .expect("admin bind");
        l.modify(
            dn,
            vec![Mod::Replace(
                "userAccountControl",
                std::collections::HashSet::from([value]),
            )],
        )
        .await
        .and_then(|r| r.success())
        .expect("modify");
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn secrets(password: &str) -> Arc<StaticSecrets> {
    common::secrets(&[("ad_bind", password)])
}

fn definition(url: &str, extra: &str) -> String {
    format!(
        "name: ad\nkind: ldap\nurl: {url}\nbind_dn: {SVC}\nbind_password: ad_bind\nbase_dn: {SUFFIX}\ntimeout: 5s\n{extra}"
    )
}

fn directory(url: &str, extra: &str, password: &str) -> Arc<dyn Connector> {
    Arc::new(
        ldap::load("ad.yaml", &definition(url, extra), secrets(password))
            .unwrap_or_else(|e| panic!("{url} {extra}: {e}")),
    )
}

/// Plain LDAP on loopback: allowed, and the quickest.
fn plain(s: &Slapd) -> Arc<dyn Connector> {
    directory(&s.url(), "", SVC_PW)
}

fn call(op: &str, params: serde_json::Value, undo: serde_json::Value) -> CallRequest {
    CallRequest {
        action_id: "act-1".into(),
        idempotency_key: "key-1".into(),
        operation: op.into(),
        params,
        undo,
        context: json!({}),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn disable_over_starttls_keeps_every_other_bit_and_undo_restores_the_value() {
    let s = Slapd::start();
    let ca = format!("starttls: true\nca_file: {}\n", s.ca.display());
    let c = directory(&s.url(), &ca, SVC_PW);
    let spec = c.operation("disable_account").expect("disable_account");
    assert_eq!(spec.inverse.as_deref(), Some("enable_account"));
    assert_eq!(spec.class, riposte_respond::Class::Approve);

    // CORP\alice: the NetBIOS domain is dropped; sAMAccountName matches without case.
    let out = c
        .call(&call(
            "disable_account",
            json!({"user": "CORP\\ALICE"}),
            json!(null),
        ))
        .await
        .expect("disabled");
    assert_eq!(out.undo, json!({"dn": ALICE, "previous": 0x10200}));
    assert_eq!(out.fields["userAccountControl"], json!(0x10202));
    assert_eq!(out.fields["already_disabled"], json!(false));
    assert_eq!(s.uac(ALICE).await, "66050", "0x10200 | 0x2");

    let back = c
        .call(&call("enable_account", json!({}), out.undo))
        .await
        .expect("undone");
    assert_eq!(back.fields["changed"], json!(true));
    assert_eq!(s.uac(ALICE).await, "66048", "back to 0x10200");

    // By userPrincipalName, with other bits set: 0x40220 → 0x40222 → 0x40220.
    let out = c
        .call(&call(
            "disable_account",
            json!({"user": "carol@corp.example"}),
            json!(null),
        ))
        .await
        .expect("carol disabled");
    assert_eq!(s.uac(CAROL).await, (0x40222).to_string());
    c.call(&call("enable_account", json!({}), out.undo))
        .await
        .expect("carol undone");
    assert_eq!(s.uac(CAROL).await, (0x40220).to_string());
}

#[tokio::test]
async fn ldaps_with_the_ca_file_works_and_an_unknown_ca_is_refused() {
    let s = Slapd::start();
    let url = format!("ldaps://127.0.0.1:{}", s.tls_port);
    let c = directory(&url, &format!("ca_file: {}\n", s.ca.display()), SVC_PW);
    let out = c
        .call(&call("disable_account", json!({"dn": BOB}), json!(null)))
        .await
        .expect("over ldaps");
    assert_eq!(out.fields["dn"], json!(BOB));

    // Without the CA: the system's trust store does not know the test CA.
    let c = directory(&url, "", SVC_PW);
    let e = c
        .call(&call("disable_account", json!({"dn": ALICE}), json!(null)))
        .await
        .expect_err("untrusted certificate");
    assert!(e.to_string().contains("TLS"), "{e}");
    assert!(!e.retryable(), "{e:?}");
    assert_eq!(s.uac(ALICE).await, "66048");
}

#[tokio::test]
async fn an_account_disabled_before_stays_disabled_after_undo() {
    let s = Slapd::start();
    let c = plain(&s);
    let out = c
        .call(&call(
            "disable_account",
            json!({"user": "bob"}),
            json!(null),
        ))
        .await
        .expect("bob");
    assert_eq!(out.fields["already_disabled"], json!(true));
    assert_eq!(out.fields["changed"], json!(false));
    assert_eq!(out.undo, json!({"dn": BOB, "previous": 0x202}));
    let back = c
        .call(&call("enable_account", json!({}), out.undo))
        .await
        .expect("undo");
    assert_eq!(back.fields["changed"], json!(false));
    assert_eq!(
        s.uac(BOB).await,
        "514",
        "still 0x202: disabled before riposte"
    );
}

#[tokio::test]
async fn undo_keeps_a_change_another_administrator_made_in_between() {
    let s = Slapd::start();
    let c = plain(&s);
    let out = c
        .call(&call("disable_account", json!({"dn": ALICE}), json!(null)))
        .await
        .expect("disabled");
    // Someone adds PASSWORD_EXPIRED (0x800000) while the account is disabled.
    s.set_uac(ALICE, &(0x10202 | 0x80_0000).to_string()).await;
    c.call(&call("enable_account", json!({}), out.undo))
        .await
        .expect("undone");
    assert_eq!(s.uac(ALICE).await, (0x10200 | 0x80_0000).to_string());
}

/// A TCP relay to slapd that holds back the first LDAP ModifyRequest it sees, runs `meddle`
/// (another administrator's change, made straight to slapd), and only then forwards it: the
/// change lands between the connector's read and its write, every time.
async fn relay_meddling_before_the_first_modify<F, Fut>(upstream: u16, meddle: F) -> u16
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind relay");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.expect("accept");
        let server = tokio::net::TcpStream::connect(("127.0.0.1", upstream))
            .await
            .expect("connect slapd");
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
        });
        let mut meddle = Some(meddle);
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            // Forward whole LDAPMessages only, looking at each one's protocolOp tag.
            while let Some((len, op)) = ldap_message(&pending) {
                if op == 0x66
                    && let Some(m) = meddle.take()
                {
                    m().await;
                }
                let msg: Vec<u8> = pending.drain(..len).collect();
                if sw.write_all(&msg).await.is_err() {
                    return;
                }
            }
        }
    });
    port
}

/// The length of the complete BER LDAPMessage at the start of `b` and its protocolOp tag
/// (0x66 is ModifyRequest, [APPLICATION 6]), or None while it is incomplete.
fn ldap_message(b: &[u8]) -> Option<(usize, u8)> {
    fn length(b: &[u8]) -> Option<(usize, usize)> {
        let first = *b.first()?;
        if first < 0x80 {
            return Some((1, first as usize));
        }
        let n = (first & 0x7f) as usize;
        let bytes = b.get(1..1 + n)?;
        Some((
            1 + n,
            bytes.iter().fold(0usize, |a, x| a << 8 | *x as usize),
        ))
    }
    assert_eq!(*b.first()?, 0x30, "an LDAPMessage starts with SEQUENCE");
    let (h, body) = length(&b[1..])?;
    let total = 1 + h + body;
    if b.len() < total {
        return None;
    }
    let id_at = 1 + h;
    let (ih, id_len) = length(&b[id_at + 1..])?;
    let op = b[id_at + 1 + ih + id_len];
    Some((total, op))
}

#[tokio::test]
async fn a_change_made_between_read_and_write_is_kept_not_overwritten() {
    let s = Arc::new(Slapd::start());
    let s2 = s.clone();
    let relay = relay_meddling_before_the_first_modify(s.port, move || async move {
        // PASSWORD_EXPIRED, set by someone else after riposte read 0x10200.
        s2.set_uac(ALICE, &(0x10200 | 0x80_0000).to_string()).await;
    })
    .await;
    let c = directory(&format!("ldap://127.0.0.1:{relay}"), "", SVC_PW);
    let disable = call("disable_account", json!({"dn": ALICE}), json!(null));
    let e = c.call(&disable).await.expect_err("a stale read");
    // The modify deleted 66048, which was gone: nothing was written, and the other change
    // stands.
    assert!(e.retryable(), "{e:?}");
    assert!(e.to_string().contains("nothing was written"), "{e}");
    assert_eq!(s.uac(ALICE).await, (0x10200 | 0x80_0000).to_string());
    // The engine's next attempt reads the new value and sets the bit on it.
    let out = plain(&s).call(&disable).await.expect("disabled");
    assert_eq!(s.uac(ALICE).await, (0x10202 | 0x80_0000).to_string());
    assert_eq!(
        out.undo,
        json!({"dn": ALICE, "previous": 0x10200 | 0x80_0000})
    );
}

#[tokio::test]
async fn enable_on_its_own_clears_the_bit_and_the_check_reads_it() {
    let s = Slapd::start();
    let c = plain(&s);
    let enable = call("enable_account", json!({"user": "bob"}), json!(null));
    assert_eq!(c.check(&enable).expect("check").await.expect("read"), None);
    let out = c.call(&enable).await.expect("enabled");
    assert_eq!(out.undo, json!({"dn": BOB, "previous": 0x202}));
    assert_eq!(s.uac(BOB).await, "512");
    let done = c.check(&enable).expect("check").await.expect("read");
    assert_eq!(done.map(|o| o.fields["dn"].clone()), Some(json!(BOB)));
    // Undoing the enable disables again, because it was disabled before.
    c.call(&call("disable_account", json!({}), out.undo))
        .await
        .expect("undo of enable");
    assert_eq!(s.uac(BOB).await, "514");

    let disable = call("disable_account", json!({"user": "alice"}), json!(null));
    assert_eq!(c.check(&disable).expect("check").await.expect("read"), None);
    // Reads only: asking changed nothing.
    assert_eq!(s.uac(ALICE).await, "66048");
}

#[tokio::test]
async fn a_wrong_bind_password_is_rejected_naming_the_bind_dn_not_the_password() {
    let s = Slapd::start();
    let c = directory(&s.url(), "", "Wrong-Pw-91c2");
    let e = c
        .call(&call(
            "disable_account",
            json!({"user": "alice"}),
            json!(null),
        ))
        .await
        .expect_err("invalid credentials");
    let text = e.to_string();
    assert!(matches!(e, ConnectorError::Rejected { .. }), "{e:?}");
    assert!(text.contains(SVC), "{text}");
    assert!(text.contains("invalid credentials (49)"), "{text}");
    assert!(text.contains("`ad_bind`"), "names the secret: {text}");
    assert!(!text.contains("Wrong-Pw-91c2"), "{text}");
    assert!(!format!("{e:?}").contains("Wrong-Pw-91c2"));
    assert_eq!(s.uac(ALICE).await, "66048");
}

#[tokio::test]
async fn missing_ambiguous_and_wildcard_names_are_clear_failures() {
    let s = Slapd::start();
    let c = plain(&s);
    let disable = |p| call("disable_account", p, json!(null));
    let e = c
        .call(&disable(json!({"user": "nobody"})))
        .await
        .expect_err("nobody");
    assert!(e.to_string().contains("no account named `nobody`"), "{e}");
    let e = c
        .call(&disable(json!({"user": "twin"})))
        .await
        .expect_err("twin");
    assert!(e.to_string().contains("2 accounts are named `twin`"), "{e}");
    // RFC 4515 escaping: `*` is a literal star, not "every account".
    let e = c
        .call(&disable(json!({"user": "*"})))
        .await
        .expect_err("star");
    assert!(e.to_string().contains("no account named `*`"), "{e}");
    let e = c
        .call(&disable(json!({"user": "al*)(sAMAccountName=*"})))
        .await
        .expect_err("injection");
    assert!(e.to_string().contains("no account"), "{e}");
    let out = c
        .call(&disable(json!({"user": "o*brien(x)"})))
        .await
        .expect("the odd name, exactly");
    assert_eq!(
        out.fields["dn"],
        json!("cn=Odd Name,ou=Staff,dc=corp,dc=example")
    );
    let e = c
        .call(&disable(
            json!({"dn": "cn=Ghost,ou=Staff,dc=corp,dc=example"}),
        ))
        .await
        .expect_err("ghost");
    assert!(e.to_string().contains("no account"), "{e}");
    let e = c.call(&disable(json!({}))).await.expect_err("no params");
    assert!(matches!(e, ConnectorError::Config { .. }), "{e:?}");
    for dn in [ALICE, BOB] {
        assert!(["66048", "514"].contains(&s.uac(dn).await.as_str()), "{dn}");
    }
}

#[tokio::test]
async fn no_write_access_and_a_dn_outside_the_base_are_clear_failures() {
    let s = Slapd::start();
    let c = plain(&s);
    let e = c
        .call(&call(
            "disable_account",
            json!({"user": "eve"}),
            json!(null),
        ))
        .await
        .expect_err("no write access under ou=Admins");
    assert!(
        e.to_string().contains("insufficient access rights (50)"),
        "{e}"
    );
    assert!(e.to_string().contains("write access"), "{e}");
    assert!(!e.retryable());
    assert_eq!(s.uac(EVE).await, "512");

    let text = definition(&s.url(), "").replace(
        &format!("base_dn: {SUFFIX}"),
        "base_dn: OU=Staff,DC=corp,DC=example",
    );
    let c = ldap::load("ad.yaml", &text, secrets(SVC_PW)).expect("loads");
    let e = c
        .call(&call("disable_account", json!({"dn": EVE}), json!(null)))
        .await
        .expect_err("outside the base");
    assert!(e.to_string().contains("not under the base DN"), "{e}");
    // The base DN compares as AD does: case and spaces do not matter.
    c.call(&call(
        "disable_account",
        json!({"dn": "CN=Alice Example, OU=Staff, DC=corp, DC=example"}),
        json!(null),
    ))
    .await
    .expect("alice is under OU=Staff");
    assert_eq!(s.uac(ALICE).await, "66050");
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let port = free_port();
    let c = directory(&format!("ldap://127.0.0.1:{port}"), "", SVC_PW);
    let e = c
        .call(&call(
            "disable_account",
            json!({"user": "alice"}),
            json!(null),
        ))
        .await
        .expect_err("nobody listens");
    assert!(e.retryable(), "{e:?}");
    assert!(!e.to_string().contains(SVC_PW));
}

#[test]
fn definitions_that_would_leak_or_cannot_work_name_the_field() {
    let load = |text: &str| ldap::load("ad.yaml", text, secrets("x")).expect_err(text);
    let base = |url: &str| {
        format!(
            "name: ad\nkind: ldap\nurl: {url}\nbind_dn: cn=x\nbind_password: s\nbase_dn: dc=x\n"
        )
    };
    let e = load(&base("ldap://dc01.corp.example"));
    assert!(e.message.contains("in clear"), "{e}");
    assert_eq!(e.line, 3, "{e}");
    let e = load(&format!(
        "{}starttls: true\n",
        base("ldaps://dc01.corp.example")
    ));
    assert!(e.message.contains("starttls"), "{e}");
    let e = load(&base("https://dc01.corp.example"));
    assert!(e.message.contains("ldaps://"), "{e}");
    let e = load(&format!(
        "{}ca_file: /nonexistent/ca.pem\n",
        base("ldaps://dc01.corp.example")
    ));
    assert!(e.message.contains("ca_file"), "{e}");
    assert_eq!(e.line, 7, "{e}");
    let e = load("name: ad\nkind: ldap\nurl: ldaps://dc\nbind_password: s\nbase_dn: dc=x\n");
    assert!(e.message.contains("bind_dn"), "{e}");
    let e = load(
        "name: ad\nkind: ldap\nurl: ldaps://dc\nbind_dn: cn=x\nbind_password: s\nbase_dn: ''\n",
    );
    assert!(e.message.contains("base_dn"), "{e}");
    // Plain LDAP to this machine is allowed (a local test directory, a local proxy).
    ldap::load("ad.yaml", &base("ldap://127.0.0.1:3890"), secrets("x")).expect("loopback");
}

#[test]
fn the_example_definition_loads() {
    let path = "../../docs/playbooks/config/connectors/ldap.yaml";
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // The example points at the system's trust store (no ca_file) so it loads anywhere.
    let c = riposte_connectors::load(path, &text, Arc::new(Templates::default()), secrets("x"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.operation("disable_account").is_some());
    assert!(c.operation("enable_account").is_some());
}
