//! `riposte playbook check|test` through the real binary, over the examples in
//! `docs/playbooks` (so the documentation cannot drift from what loads).

use std::path::PathBuf;
use std::process::Command;

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/playbooks")
}

fn riposte(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_riposte"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config_args() -> Vec<String> {
    let c = docs().join("config");
    vec![
        "--connector".into(),
        c.join("edr.yaml").display().to_string(),
        "--connector".into(),
        c.join("idp.yaml").display().to_string(),
        "--connector".into(),
        c.join("chat.yaml").display().to_string(),
        "--policy".into(),
        c.join("policy.yaml").display().to_string(),
    ]
}

#[test]
fn the_documented_playbooks_pass_check() {
    let mut files: Vec<String> = std::fs::read_dir(docs())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let mut args = vec!["playbook".to_string(), "check".to_string()];
    args.extend(files);
    args.extend(config_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = riposte(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("`contain-host` version 1"), "{out}");
}

#[test]
fn check_reports_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "id: bad\nname: Bad\non: case.created\nsteps:\n  - id: a\n    note: \"{{ case.id + }}\"\n  - id: b\n    action: edr.explode\n",
    )
    .unwrap();
    let name = bad.display().to_string();
    let mut args = vec!["playbook".to_string(), "check".to_string(), name.clone()];
    args.extend(config_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _out, err) = riposte(&args);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("{name}:6:")), "{err}");
    assert!(
        err.contains(&format!("{name}:8:"))
            && err.contains("connector `edr` has no operation `explode`"),
        "{err}"
    );
}

#[test]
fn test_prints_the_steps_the_rendered_parameters_and_the_gates() {
    let mut args: Vec<String> = vec![
        "playbook".into(),
        "test".into(),
        docs().join("contain-host.yaml").display().to_string(),
        "--case".into(),
        docs().join("case.json").display().to_string(),
    ];
    args.extend(config_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = riposte(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("edr.isolate_host, class approve"), "{out}");
    assert!(out.contains(r#"{"host":"ws-042.corp.example"}"#), "{out}");
    assert!(out.contains("GATE: stops for approval"), "{out}");
    assert!(out.contains("nothing was called"), "{out}");
}

/// The containment paths (isolate host, disable account, revoke privilege, block IP, block
/// domain) as documented playbooks over the built-in connectors' documented definitions.
fn containment() -> PathBuf {
    docs().join("containment")
}

fn connector_example_args() -> Vec<String> {
    let dir = docs().join("config/connectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut args = Vec::new();
    for f in files {
        args.push("--connector".to_string());
        args.push(f.display().to_string());
    }
    args.push("--policy".into());
    args.push(docs().join("config/policy.yaml").display().to_string());
    args
}

const CONTAINMENT: &[(&str, &str, &str)] = &[
    (
        "isolate-host.yaml",
        "falcon.contain_host",
        r#"{"host":"ws-fin-042"}"#,
    ),
    (
        "disable-account.yaml",
        "entra.disable_account",
        r#"{"user_principal_name":"alice@corp.example"}"#,
    ),
    (
        "revoke-privilege.yaml",
        "entra.remove_from_group",
        r#""user_principal_name":"alice@corp.example""#,
    ),
    (
        "block-ip.yaml",
        "paloalto.block_ip",
        r#"{"ip":"203.0.113.77"}"#,
    ),
    (
        "block-domain.yaml",
        "blocklists.add",
        r#"{"list":"bad-domains","value":"login-corp-example.top"}"#,
    ),
];

#[test]
fn every_containment_path_passes_check_and_a_dry_run() {
    let mut args = vec!["playbook".to_string(), "check".to_string()];
    args.extend(
        CONTAINMENT
            .iter()
            .map(|(f, _, _)| containment().join(f).display().to_string()),
    );
    args.extend(connector_example_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = riposte(&args);
    assert_eq!(code, 0, "{out}\n{err}");

    for (file, operation, params) in CONTAINMENT {
        let mut args: Vec<String> = vec![
            "playbook".into(),
            "test".into(),
            containment().join(file).display().to_string(),
            "--case".into(),
            containment().join("case.json").display().to_string(),
        ];
        args.extend(connector_example_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = riposte(&args);
        assert_eq!(code, 0, "{file}: {out}\n{err}");
        assert!(
            out.contains(&format!("{operation}, class approve")),
            "{file}: {out}"
        );
        assert!(out.contains(params), "{file}: {out}");
        assert!(out.contains("GATE: stops for approval"), "{file}: {out}");
        assert!(out.contains("nothing was called"), "{file}: {out}");
        // The private address of the case is never blocked.
        assert!(!out.contains("10.20.30.40"), "{file}: {out}");
    }
}
