//! `riposte secret` through the real binary: values go in on stdin, are sealed at rest, are
//! never printed, and one key serves the whole file.

use std::io::Write;
use std::process::{Command, Stdio};

fn riposte(args: &[&str], env: &[(&str, &str)], stdin: &str) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_riposte"));
    cmd.args(args)
        .env_remove("RIPOSTE_SECRET_KEY")
        .env_remove("RIPOSTE_SECRET_KEY_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn secrets_are_sealed_listed_by_name_and_bound_to_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let key = dir.path().join("secret.key");
    let key = key.to_str().unwrap();
    let value = "tok-8d1e77-never-shown";

    let (code, _, err) = riposte(&["secret", "keygen", "--out", key], &[], "");
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = riposte(
        &[
            "secret",
            "set",
            "edr_token",
            "--data-dir",
            data,
            "--key-file",
            key,
        ],
        &[],
        &format!("{value}\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(value) && !err.contains(value));
    let at_rest = std::fs::read_to_string(dir.path().join("data/secrets.json")).unwrap();
    assert!(
        at_rest.contains("edr_token") && !at_rest.contains(value),
        "{at_rest}"
    );

    // It opens with the key, to the exact value.
    let vault = riposte_respond::SecretVault::from_json(&at_rest).unwrap();
    let k = riposte_respond::SecretKey::load(Some(std::path::Path::new(key))).unwrap();
    assert_eq!(vault.get(&k, "edr_token").unwrap().expose(), value);

    let (code, out, _) = riposte(&["secret", "list", "--data-dir", data], &[], "");
    assert_eq!((code, out.trim()), (0, "edr_token"));

    // Another key may not add to this file.
    let other = riposte_respond::SecretKey::generate().unwrap().to_hex();
    let (code, _, err) = riposte(
        &["secret", "set", "other", "--data-dir", data],
        &[("RIPOSTE_SECRET_KEY", &other)],
        "x\n",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not open the secrets already"), "{err}");

    let (code, _, err) = riposte(
        &["secret", "remove", "edr_token", "--data-dir", data],
        &[],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = riposte(&["secret", "list", "--data-dir", data], &[], "");
    assert!(out.trim().is_empty(), "{out}");
}
