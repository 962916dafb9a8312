//! `/api/v1/cases` on the real server, over cases stored in its real database.

mod common;

use common::{Server, run};
use riposte_store::{Durability, SqliteStore, Store, StoredCase};
use serde_json::json;

fn case(id: &str, tier: &str, risk: f64, user: &str) -> StoredCase {
    StoredCase {
        id: id.into(),
        tier: tier.into(),
        status: "open".into(),
        risk,
        first_ms: 1_714_557_600_000,
        last_ms: 1_714_558_140_000,
        entities: vec![
            ("user".into(), user.into()),
            ("host".into(), "ws-042".into()),
        ],
        doc: json!({ "id": id, "tier": tier, "risk": risk, "reasons": [{"factor": "severity"}] }),
    }
}

fn seed(data: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = SqliteStore::open(data, Durability::Full).await.unwrap();
        s.upsert_cases(
            &[
                case("c-low", "low", 20.0, "bob"),
                case("c-high", "high", 80.0, "alice"),
                case("c-val", "validated", 35.0, "alice"),
            ],
            vec![],
            "test",
        )
        .await
        .unwrap();
        s.close().await;
    });
}

fn ids(v: &serde_json::Value) -> Vec<&str> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

#[test]
fn cases_are_listed_by_risk_filtered_and_changed_by_analysts_only() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let srv = Server::start(dir.path(), &[]);
    let admin = srv.token.clone();
    let token = |name: &str, role: &str| {
        let (code, out, err) = run(&[
            "token",
            "create",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--name",
            name,
            "--role",
            role,
        ]);
        assert_eq!(code, 0, "{err}");
        out.trim().to_string()
    };
    let viewer = token("vera", "viewer");
    let analyst = token("ana", "analyst");

    let (code, v) = srv.get("/api/v1/cases", Some(&viewer));
    assert_eq!(code, 200, "{v}");
    assert_eq!(ids(&v), vec!["c-val", "c-high", "c-low"]);
    let (_, v) = srv.get("/api/v1/cases?entity=user:ALICE", Some(&viewer));
    assert_eq!(ids(&v), vec!["c-val", "c-high"]);
    let (_, v) = srv.get("/api/v1/cases?tier=validated", Some(&viewer));
    assert_eq!(ids(&v), vec!["c-val"]);
    let (code, v) = srv.get("/api/v1/cases?tier=urgent", Some(&viewer));
    assert_eq!(code, 400, "{v}");
    let (code, v) = srv.get("/api/v1/cases?entity=alice", Some(&viewer));
    assert_eq!(code, 400, "{v}");
    let (code, v) = srv.get("/api/v1/cases/c-val", Some(&viewer));
    assert_eq!((code, v["tier"].as_str()), (200, Some("validated")), "{v}");
    let (code, _) = srv.get("/api/v1/cases/nope", Some(&viewer));
    assert_eq!(code, 404);

    // Changes: analysts only, valid values only, on the record with the analyst's name.
    let patch = |tok: &str, body: serde_json::Value| {
        common::request(
            &srv.http,
            "PATCH",
            "/api/v1/cases/c-high",
            Some(tok),
            body.to_string().as_bytes(),
        )
    };
    let (code, _) = patch(&viewer, json!({"status": "closed"}));
    assert_eq!(code, 403);
    let (code, v) = patch(&analyst, json!({"verdict": "maybe"}));
    assert_eq!(code, 400, "{v}");
    let (code, v) = patch(&analyst, json!({}));
    assert_eq!(code, 400, "{v}");
    let (code, v) = patch(&analyst, json!({"colour": "red"}));
    assert_eq!(code, 400, "{v}");
    let (code, v) = patch(
        &analyst,
        json!({"status": "closed", "assignee": "ana", "verdict": "true_positive"}),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["verdict"], "true_positive");
    let (_, v) = srv.get("/api/v1/cases?status=closed", Some(&viewer));
    assert_eq!(ids(&v), vec!["c-high"]);

    let (code, v) = srv.get("/api/v1/audit?limit=100", Some(&admin));
    assert_eq!(code, 200, "{v}");
    let text = v.to_string();
    assert!(
        text.contains("case.update") && text.contains("\"ana\""),
        "{text}"
    );
}
