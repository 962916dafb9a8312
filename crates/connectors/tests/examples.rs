//! Every example connector definition in docs/ loads: the documentation cannot drift from
//! what the loader accepts.

use std::sync::Arc;

use riposte_respond::Templates;
use riposte_respond::secrets::StaticSecrets;

#[test]
fn every_documented_example_definition_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/playbooks/config/connectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "examples in {}", dir.display());
    let mut kinds = std::collections::BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let c = riposte_connectors::load(
            &f.display().to_string(),
            &text,
            Arc::new(Templates::default()),
            Arc::new(StaticSecrets::default()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!c.operations().is_empty(), "{}", f.display());
        let kind = text
            .lines()
            .find_map(|l| l.strip_prefix("kind: "))
            .unwrap_or("http");
        kinds.insert(kind.trim().to_string());
    }
    // Every built-in kind has an example (http and webhook are documented in playbooks.md).
    for k in riposte_connectors::KINDS
        .iter()
        .filter(|k| !matches!(**k, "http" | "webhook"))
    {
        assert!(
            kinds.contains(*k),
            "no example definition for kind `{k}` in {}",
            dir.display()
        );
    }
}
