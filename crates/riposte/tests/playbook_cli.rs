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
