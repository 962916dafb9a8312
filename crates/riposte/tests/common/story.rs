//! Shared test data: real product payloads (templates from ../shared/corpus/alerts with the
//! host, user, time and id of each copy set by the test) and a configuration with
//! enrichment and decoys.

use std::path::Path;

use serde_json::{Value, json};

use super::{corpus, run};

pub const T0: i64 = 1_714_525_200_000; // 2024-05-01T01:00:00Z

/// The first JSON document of a corpus file (pretty-printed or one per line).
pub fn template(rel: &str) -> Value {
    let text = std::fs::read_to_string(corpus(rel)).unwrap();
    serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .next()
        .unwrap()
        .unwrap()
}

/// A CrowdStrike Falcon detection (streaming API) on `host` for `user` at `ms`.
pub fn falcon(n: u32, host: &str, user: &str, ms: i64, severity: u8, technique: &str) -> Value {
    let mut v = template("alerts/crowdstrike/falcon/test-falcon-detection-summary.log");
    v["metadata"]["eventCreationTime"] = json!(ms);
    v["event"]["ProcessStartTime"] = json!(ms / 1000);
    v["event"]["ComputerName"] = json!(host);
    v["event"]["UserName"] = json!(user);
    v["event"]["Severity"] = json!(severity);
    v["event"]["DetectId"] = json!(format!("ldt:test:{n}"));
    v["event"]["Technique"] = json!(technique);
    v["event"]["TechniqueId"] = json!(technique);
    v["event"]["NetworkAccesses"] = json!([]);
    v
}

/// A Microsoft Defender for Endpoint alert on `host` for `user` at `time`.
pub fn defender(
    n: u32,
    host: &str,
    user: &str,
    time: &str,
    severity: &str,
    technique: &str,
) -> Value {
    let text =
        std::fs::read_to_string(corpus("alerts/defender/endpoint/test-defenderatp.log")).unwrap();
    let mut v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    v["id"] = json!(format!("da-test-{n}"));
    v["computerDnsName"] = json!(host);
    v["relatedUser"] = json!({"userName": user, "domainName": "CORP"});
    v["alertCreationTime"] = json!(time);
    v["firstEventTime"] = json!(time);
    v["severity"] = json!(severity);
    v["mitreTechniques"] = json!([technique]);
    v["evidence"] = json!([]);
    v
}

pub fn write_lines(path: &Path, records: &[Value]) {
    let text: Vec<String> = records.iter().map(Value::to_string).collect();
    std::fs::write(path, text.join("\n") + "\n").unwrap();
}

/// Config with entity folding, enrichment (assets, identities, one intel list) and decoys.
pub fn config(dir: &Path) -> std::path::PathBuf {
    std::fs::write(
        dir.join("assets.csv"),
        "hostname,ip,criticality,confidentiality,integrity,availability,owner,tags\n\
         ws-042.corp.example,10.0.5.42,4,high,high,medium,finance-it,\"workstation;finance\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("identities.csv"),
        "user,aliases,privileged,groups,department\n\
         alice,\"CORP\\alice;alice@corp.example\",yes,\"Finance Admins\",Finance\n",
    )
    .unwrap();
    std::fs::write(dir.join("bad-hosts.txt"), "# test feed\nevil.example\n").unwrap();
    std::fs::write(
        dir.join("enrichment.yaml"),
        "intel:\n  - { name: test-domains, path: bad-hosts.txt, format: list, type: domain, confidence: 90 }\n\
         assets: [assets.csv]\nidentities: [identities.csv]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("decoys.yaml"),
        "decoys:\n  - { name: sql-trap, kind: spn, value: 'MSSQLSvc/sql-old.corp.example:1433', account: svc-sql-old }\n",
    )
    .unwrap();
    let cfg = dir.join("riposte.yaml");
    std::fs::write(
        &cfg,
        "entities:\n  user_domains: [CORP, corp.example]\n  host_domains: [corp.example]\n\
         enrichment: enrichment.yaml\ndecoys: decoys.yaml\n",
    )
    .unwrap();
    cfg
}

/// The "1 AM" story: six alerts from two tools within nine minutes on one endpoint
/// (`WS-042` / `ws-042.corp.example`) and one identity (`alice`, `CORP\\alice`); the last one's
/// evidence names a URL on a domain the test intel feed lists.
pub fn one_am_story() -> Vec<Value> {
    let min = 60_000;
    let records = vec![
        falcon(1, "WS-042", "alice", T0, 3, "T1566.001"),
        defender(
            2,
            "ws-042.corp.example",
            "alice",
            "2024-05-01T01:02:00Z",
            "Medium",
            "T1059.001",
        ),
        falcon(3, "WS-042", "CORP\\alice", T0 + 3 * min, 4, "T1003.001"),
        defender(
            4,
            "ws-042.corp.example",
            "alice",
            "2024-05-01T01:05:00Z",
            "High",
            "T1055",
        ),
        falcon(5, "WS-042", "alice", T0 + 7 * min, 4, "T1021.002"),
        defender(
            6,
            "ws-042.corp.example",
            "alice",
            "2024-05-01T01:09:00Z",
            "High",
            "T1486",
        ),
    ];
    // The last alert's evidence names a URL on a domain the intel feed lists.
    let mut records = records;
    records[5]["evidence"] =
        json!([{"entityType": "Url", "url": "http://dl.evil.example/payload.bin"}]);
    records
}

/// `riposte replay --cases-out` over `input`: the cases formed.
pub fn replay_cases(dir: &Path, cfg: &Path, input: &Path) -> Vec<Value> {
    let out = dir.join("cases.jsonl");
    let data = dir.join("data");
    let (code, _o, err) = run(&[
        "replay",
        "--quiet",
        "--config",
        cfg.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--cases-out",
        out.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
