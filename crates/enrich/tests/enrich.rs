//! End-to-end tests of loading and looking up, over the hand-written fixtures in
//! `tests/data` (see its README: the corpus has no intel, assets or identities).

use std::path::{Path, PathBuf};

use riposte_domain::{Canonicaliser, CanonicaliserConfig, Entity, EntityKind, Role, Timestamp};
use riposte_enrich::{
    Context, EnrichmentSet, IndicatorKind, LoadError, Rating, SharedEnrichment, Source,
};

fn data(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

fn corp() -> Canonicaliser {
    Canonicaliser::new(&CanonicaliserConfig {
        user_domains: vec!["CORP".into(), "corp.example".into()],
        host_domains: vec!["corp.example".into()],
    })
}

fn good() -> EnrichmentSet {
    EnrichmentSet::load_file(&data("good/enrichment.yaml"), &corp())
        .unwrap_or_else(|e| panic!("good fixtures load: {e}"))
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Canonicalises `raw` as the pipeline would, then enriches it.
fn lookup<'s>(set: &'s EnrichmentSet, kind: EntityKind, raw: &str, at: &str) -> Vec<Context<'s>> {
    let mut e = Entity::new(kind, Role::Related, raw);
    assert!(corp().apply(&mut e), "{raw} is a valid {kind:?}");
    let mut out = Vec::new();
    set.enrich(&e, t(at), &mut out);
    out
}

/// `(feed, indicator value)` of every intel hit.
fn intel(ctx: &[Context<'_>]) -> Vec<(String, String)> {
    ctx.iter()
        .filter_map(|c| match c {
            Context::Intel(h) => Some((h.feed.to_string(), h.indicator.value.to_string())),
            _ => None,
        })
        .collect()
}

const NOW: &str = "2025-06-01T12:00:00Z";

#[test]
fn stix_ip_hit_carries_feed_indicator_confidence_and_validity() {
    let set = good();
    let hits = lookup(&set, EntityKind::Ip, "198.51.100.7", NOW);
    let [Context::Intel(h)] = hits.as_slice() else {
        panic!("one hit expected: {hits:?}")
    };
    assert_eq!(h.feed, "partner-stix");
    assert_eq!(h.indicator.kind, IndicatorKind::Ip);
    assert_eq!(
        h.indicator.id.as_deref(),
        Some("indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f")
    );
    assert_eq!(h.indicator.confidence, 85);
    assert_eq!(h.indicator.valid_from, Some(t("2025-01-01T00:00:00Z")));
    assert_eq!(h.indicator.valid_until, None);
    // Before valid_from it does not hit yet.
    assert!(lookup(&set, EntityKind::Ip, "198.51.100.7", "2024-12-31T23:59:59Z").is_empty());
}

#[test]
fn stix_or_indexes_every_value_canonically_with_the_feed_default_confidence() {
    let set = good();
    // `Login-Portal.example.` in the pattern; subdomains match too.
    let d = lookup(&set, EntityKind::Domain, "mail.LOGIN-PORTAL.example", NOW);
    assert_eq!(
        intel(&d),
        [("partner-stix".into(), "login-portal.example".into())]
    );
    let Context::Intel(h) = d[0] else { panic!() };
    assert_eq!(
        h.indicator.confidence, 40,
        "no confidence in STIX: feed default"
    );
    let u = lookup(
        &set,
        EntityKind::Url,
        "https://files.example/Drop/Invoice.EXE",
        NOW,
    );
    assert_eq!(
        intel(&u),
        [(
            "partner-stix".into(),
            "https://files.example/Drop/Invoice.EXE".into()
        )]
    );
    let f = lookup(
        &set,
        EntityKind::FileHash,
        "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f",
        NOW,
    );
    let [Context::Intel(h)] = f.as_slice() else {
        panic!("{f:?}")
    };
    assert_eq!(h.indicator.kind, IndicatorKind::Sha256);
    // valid_until is exclusive.
    assert!(
        lookup(
            &set,
            EntityKind::Domain,
            "login-portal.example",
            "2027-01-01T00:00:00Z"
        )
        .is_empty()
    );
}

#[test]
fn cidrs_match_through_the_trie_for_both_families() {
    let set = good();
    let v4 = lookup(&set, EntityKind::Ip, "203.0.113.201", NOW);
    assert_eq!(
        intel(&v4),
        [("partner-stix".into(), "203.0.113.0/24".into())]
    );
    let v6 = lookup(&set, EntityKind::Ip, "2001:db8:bad:1::7", NOW);
    assert_eq!(
        intel(&v6),
        [("partner-stix".into(), "2001:db8:bad::/48".into())]
    );
    assert!(lookup(&set, EntityKind::Ip, "2001:db8:bae::1", NOW).is_empty());
    let pool = lookup(&set, EntityKind::Ip, "10.66.200.3", NOW);
    assert_eq!(intel(&pool), [("bad-ips".into(), "10.66.0.0/16".into())]);
    assert!(lookup(&set, EntityKind::Ip, "10.67.0.1", NOW).is_empty());
}

#[test]
fn mapped_ipv6_and_plain_ipv4_are_one_address() {
    let set = good();
    // Written as ::ffff:192.0.2.11 in the feed, seen as plain IPv4 …
    assert_eq!(
        intel(&lookup(&set, EntityKind::Ip, "192.0.2.11", NOW)),
        [("bad-ips".into(), "192.0.2.11".into())]
    );
    // … and written plain in the feed, seen mapped (the canonicaliser folds it).
    assert_eq!(
        intel(&lookup(&set, EntityKind::Ip, "::ffff:192.0.2.10", NOW)),
        [("bad-ips".into(), "192.0.2.10".into())]
    );
    // IPv6 spellings fold too.
    assert_eq!(
        intel(&lookup(&set, EntityKind::Ip, "2001:db8::0:1", NOW)).len(),
        1
    );
    // An address used as a host name is looked up as an address.
    assert_eq!(
        intel(&lookup(&set, EntityKind::Host, "192.0.2.10", NOW)).len(),
        1
    );
}

#[test]
fn expired_and_revoked_indicators_do_not_hit() {
    let set = good();
    assert!(lookup(&set, EntityKind::Ip, "198.51.100.99", NOW).is_empty());
    assert_eq!(
        intel(&lookup(
            &set,
            EntityKind::Ip,
            "198.51.100.99",
            "2024-03-01T00:00:00Z"
        ))
        .len(),
        1,
        "inside its validity it hits"
    );
    assert!(
        lookup(&set, EntityKind::Ip, "192.0.2.201", NOW).is_empty(),
        "revoked"
    );
    // A feed-level valid_until applies to list entries.
    assert!(
        lookup(
            &set,
            EntityKind::Domain,
            "evil.example",
            "2031-01-01T00:00:00Z"
        )
        .is_empty()
    );
}

#[test]
fn unindexable_stix_indicators_are_skipped_and_reported() {
    let set = good();
    assert!(lookup(&set, EntityKind::Ip, "192.0.2.200", NOW).is_empty());
    let feed = &set.intel().feeds()[0];
    assert_eq!(feed.name, "partner-stix");
    let reasons: Vec<&str> = feed.skipped.iter().map(|(_, r)| r.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("AND")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("sigma")), "{reasons:?}");
    assert!(
        feed.skipped.iter().all(|(line, _)| line.is_some()),
        "{:?}",
        feed.skipped
    );
    // 1 + 3 (OR) + 2 (CIDRs) + 1 (expired, still loaded)
    assert_eq!(feed.indicators, 7);
}

#[test]
fn misp_feed_indexes_to_ids_attributes_of_events_and_objects() {
    let set = good();
    let hit = |kind, v: &str| intel(&lookup(&set, kind, v, NOW));
    let misp = |v: &str| vec![("circl-misp".to_string(), v.to_string())];
    assert_eq!(
        hit(EntityKind::Ip, "192.0.2.50"),
        misp("192.0.2.50"),
        "ip-dst|port"
    );
    assert_eq!(
        hit(EntityKind::Ip, "192.0.2.51"),
        misp("192.0.2.51"),
        "domain|ip"
    );
    assert_eq!(
        hit(EntityKind::Domain, "relay.ransom.example"),
        misp("relay.ransom.example")
    );
    assert!(hit(EntityKind::Ip, "192.0.2.52").is_empty(), "to_ids false");
    assert_eq!(
        hit(EntityKind::FileHash, "44d88612fea8a8f36de82e1278abb02f"),
        misp("44d88612fea8a8f36de82e1278abb02f")
    );
    assert_eq!(
        hit(
            EntityKind::FileHash,
            "3395856CE81F2B7382DEE72602F798B642F14140"
        )
        .len(),
        1,
        "object attribute"
    );
    assert_eq!(
        hit(
            EntityKind::FileHash,
            "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
        )
        .len(),
        1,
        "filename|sha256"
    );
    assert!(
        hit(EntityKind::Ip, "2001:db8:feed::1").is_empty(),
        "deleted"
    );
    // The URL hits as a URL and, through its host, as the hostname attribute.
    let url = hit(EntityKind::Url, "HTTP://SSO.phish.example/o365/login.php");
    assert_eq!(url.len(), 2, "{url:?}");
    let feed = &set.intel().feeds()[1];
    assert!(
        feed.skipped.iter().any(|(_, r)| r.contains("`text`")),
        "{:?}",
        feed.skipped
    );
    let Context::Intel(h) = lookup(&set, EntityKind::Ip, "192.0.2.50", NOW)[0] else {
        panic!()
    };
    assert_eq!(h.indicator.confidence, 70);
    assert_eq!(
        h.indicator.id.as_deref(),
        Some("b1a2c3d4-0001-4000-8000-000000000001")
    );
}

#[test]
fn domains_match_their_subdomains_but_not_lookalikes() {
    let set = good();
    let d = |v: &str| intel(&lookup(&set, EntityKind::Domain, v, NOW));
    assert_eq!(d("evil.example").len(), 1);
    assert_eq!(d("a.b.EVIL.example.").len(), 1);
    assert!(d("notevil.example").is_empty());
    assert!(d("evil.example.org").is_empty());
    assert_eq!(
        d("x.tracker.example"),
        [("bad-domains".into(), "tracker.example".into())]
    );
    assert_eq!(d("bad-cdn.example").len(), 1);
    // E-mail addresses are matched by their domain.
    assert_eq!(
        intel(&lookup(
            &set,
            EntityKind::Email,
            "ceo@mail.evil.example",
            NOW
        ))
        .len(),
        1
    );
}

#[test]
fn assets_by_short_name_fqdn_and_address() {
    let set = good();
    let asset = |kind, v: &str| {
        lookup(&set, kind, v, NOW)
            .into_iter()
            .find_map(|c| match c {
                Context::Asset(a) => Some(a),
                _ => None,
            })
    };
    let dc = asset(EntityKind::Host, "dc01.corp.example").expect("dc01 by fqdn");
    assert_eq!(dc.criticality.get(), 5);
    assert!(dc.has_tag("domain-controller"));
    assert_eq!(dc.confidentiality, Some(Rating::High));
    assert_eq!(dc.owner.as_deref(), Some("it-infra"));
    assert_eq!(asset(EntityKind::Host, "DC01"), Some(dc));
    assert_eq!(asset(EntityKind::Ip, "10.0.0.10"), Some(dc));
    let web = asset(EntityKind::Ip, "2001:db8::80").expect("web01 by v6");
    assert!(web.has_tag("internet-facing"));
    assert_eq!(web.confidentiality, Some(Rating::Medium));
    let db = asset(EntityKind::Host, "billing-db-replica").expect("yaml asset");
    assert_eq!(db.tags, ["database", "pci"]);
    assert_eq!(asset(EntityKind::Ip, "10.1.0.5"), Some(db));
    assert!(asset(EntityKind::Host, "unknown-host").is_none());
    // web01's address is in a STIX CIDR too: both sources answer.
    let both = lookup(&set, EntityKind::Ip, "203.0.113.80", NOW);
    assert_eq!(both.len(), 2, "{both:?}");
}

#[test]
fn identities_by_every_alias_the_canonicaliser_folds() {
    let set = good();
    let who = |kind, v: &str| {
        lookup(&set, kind, v, NOW)
            .into_iter()
            .find_map(|c| match c {
                Context::Identity(i) => Some(i.user.clone()),
                _ => None,
            })
    };
    for raw in [
        "CORP\\alice",
        "alice@corp.example",
        "ALICE",
        "alice.smith@corp.example",
    ] {
        assert_eq!(
            who(EntityKind::User, raw).as_deref(),
            Some("alice"),
            "{raw}"
        );
    }
    assert_eq!(
        who(EntityKind::Email, "Alice.Smith@corp.example").as_deref(),
        Some("alice")
    );
    assert_eq!(
        who(EntityKind::User, "corp\\bob-adm").as_deref(),
        Some("bob.admin")
    );
    let bob = set.identities().get("bob.admin").expect("bob");
    assert!(bob.privileged);
    assert_eq!(bob.groups, ["Domain Admins", "Tier0"]);
    let svc = set.identities().get("svc-backup").expect("yaml identity");
    assert!(svc.privileged);
    assert_eq!(svc.department.as_deref(), Some("IT"));
    assert!(who(EntityKind::User, "OTHER\\alice").is_none());
}

#[test]
fn attack_techniques_are_reachable_from_the_set() {
    let set = good();
    let id = riposte_domain::TechniqueId::parse("T1003.001").expect("id");
    let t = set.technique(&id).expect("known");
    assert_eq!(t.name, "LSASS Memory");
    assert_eq!(
        t.tactics().next().map(|t| t.shortname),
        Some("credential-access")
    );
}

// ---- bad input: rejected at load with file, line and reason ----

/// Loads `config` (YAML text) written next to the good fixtures' config.
fn load_config(dir: &Path, yaml: &str) -> Result<EnrichmentSet, LoadError> {
    let path = dir.join("enrichment.yaml");
    std::fs::write(&path, yaml).expect("write config");
    EnrichmentSet::load_file(&path, &corp())
}

#[test]
fn malformed_stix_pattern_names_file_line_and_reason() {
    let dir = data("bad");
    let err = load_config(
        &tempdir_with_config(),
        &format!(
            "intel:\n  - name: x\n    path: {}\n    format: stix\n",
            dir.join("stix-malformed.json").display()
        ),
    )
    .expect_err("malformed pattern refused");
    assert!(err.file.ends_with("stix-malformed.json"), "{err}");
    assert_eq!(err.line, Some(18), "{err}");
    assert!(err.reason.contains("malformed STIX pattern"), "{err}");
    assert!(err.reason.contains("expected `]`"), "{err}");
    assert!(
        err.reason
            .contains("indicator--aaaaaaaa-0000-4000-8000-000000000002"),
        "{err}"
    );
}

#[test]
fn csv_with_a_missing_column_names_the_header_line() {
    let dir = tempdir_with_config();
    let err = load_config(
        &dir,
        &format!(
            "assets: [{}]\n",
            data("bad/assets-missing-column.csv").display()
        ),
    )
    .expect_err("missing criticality refused");
    assert!(err.file.ends_with("assets-missing-column.csv"), "{err}");
    assert_eq!(err.line, Some(1));
    assert!(err.reason.contains("missing column `criticality`"), "{err}");
    // A feed column that is not in the header, too.
    let err = load_config(
        &dir,
        &format!(
            "intel:\n  - name: x\n    path: {}\n    format: csv\n    column: address\n    type: ip\n",
            data("good/intel/bad-ips.csv").display()
        ),
    )
    .expect_err("missing feed column refused");
    assert_eq!(err.line, Some(2), "{err}");
    assert!(err.reason.contains("missing column `address`"), "{err}");
    assert!(err.reason.contains("first_seen, ip, note"), "{err}");
}

#[test]
fn unknown_entity_type_is_refused_at_its_config_line() {
    let err = EnrichmentSet::load_file(&data("bad/unknown-type.yaml"), &corp())
        .expect_err("unknown type refused");
    assert!(err.file.ends_with("unknown-type.yaml"), "{err}");
    assert_eq!(err.line, Some(6), "{err}");
    assert!(err.reason.contains("ipaddress"), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:6:", err.file.display())),
        "{err}"
    );
}

#[test]
fn a_value_of_the_wrong_type_names_its_line() {
    let err = load_config(
        &tempdir_with_config(),
        &format!(
            "intel:\n  - name: x\n    path: {}\n    format: list\n    type: ip\n",
            data("bad/list-wrong-type.txt").display()
        ),
    )
    .expect_err("a domain in an IP list is refused");
    assert_eq!(err.line, Some(3), "{err}");
    assert!(
        err.reason.contains("`evil.example` is not an IP address"),
        "{err}"
    );
}

#[test]
fn config_shape_errors_are_refused() {
    let dir = tempdir_with_config();
    for (yaml, want) in [
        (
            "intel:\n  - name: x\n    path: a.csv\n    format: csv\n",
            "needs `column` and `type`",
        ),
        ("intel:\n  - name: x\n    path: a\n    format: rss\n", "rss"),
        (
            "intel:\n  - name: x\n    path: a.json\n    format: stix\n    type: ip\n",
            "stix and misp",
        ),
        ("asets: []\n", "asets"),
        (
            "intel:\n  - {name: a, path: x.txt, format: list, type: ip}\n  - {name: a, path: y.txt, format: list, type: ip}\n",
            "used twice",
        ),
        (
            "intel:\n  - {name: a, path: x.txt, format: list, type: ip, confidence: 101}\n",
            "0–100",
        ),
        ("assets: [does-not-exist.csv]\n", "cannot read"),
    ] {
        let err = load_config(&dir, yaml).expect_err(yaml);
        assert!(err.to_string().contains(want), "{yaml}: {err}");
    }
}

fn tempdir_with_config() -> PathBuf {
    let dir = tempfile::tempdir().expect("tempdir");
    // Kept for the test's lifetime; the OS temp dir is cleaned by the OS.
    dir.keep()
}

// ---- the reload contract ----

#[test]
fn a_failed_reload_keeps_the_previous_set_active() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("ips.txt");
    let config = dir.path().join("enrichment.yaml");
    std::fs::write(
        &config,
        "intel:\n  - name: ips\n    path: ips.txt\n    format: list\n    type: ip\n",
    )
    .expect("write");
    std::fs::write(&list, "192.0.2.1\n").expect("write");
    let canon = corp();
    let shared = SharedEnrichment::new(EnrichmentSet::empty());
    shared.reload(&config, &canon).expect("first load");
    let before = shared.current();
    assert_eq!(before.intel().len(), 1);

    // A broken update: the reload fails, names the file and line, and the old set stays.
    std::fs::write(&list, "192.0.2.1\n192.0.2.2\nnot-an-ip\n").expect("write");
    let err = shared
        .reload(&config, &canon)
        .expect_err("broken list refused");
    assert!(
        err.file.ends_with("ips.txt") && err.line == Some(3),
        "{err}"
    );
    let after = shared.current();
    assert!(std::sync::Arc::ptr_eq(&before, &after), "set was replaced");
    let mut out = Vec::new();
    let e = Entity {
        kind: EntityKind::Ip,
        role: Role::Source,
        value: "192.0.2.1".into(),
        raw: None,
    };
    after.enrich(&e, t(NOW), &mut out);
    assert_eq!(out.len(), 1, "old indicators still hit");

    // The fixed file loads and replaces the set; holders of the old one keep it.
    std::fs::write(&list, "192.0.2.1\n192.0.2.2\n").expect("write");
    shared.reload(&config, &canon).expect("fixed list loads");
    assert_eq!(shared.current().intel().len(), 2);
    assert_eq!(before.intel().len(), 1);
}

/// Writes `files` (name, contents) and a config naming them into a fresh directory, and loads.
fn load_files(config: &str, files: &[(&str, &str)]) -> Result<EnrichmentSet, LoadError> {
    let dir = tempdir_with_config();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write");
    }
    load_config(&dir, config)
}

#[test]
fn yaml_asset_errors_carry_the_yaml_line() {
    let err = load_files(
        "assets: [a.yaml]\n",
        &[(
            "a.yaml",
            "- hostnames: [ok-1]\n  criticality: 3\n- hostnames: [bad]\n  criticality: 7\n",
        )],
    )
    .expect_err("criticality 7 refused");
    assert!(err.file.ends_with("a.yaml"), "{err}");
    assert_eq!(err.line, Some(4), "{err}");
    assert!(err.reason.contains("criticality 7 is not 1–5"), "{err}");

    let err = load_files(
        "assets: [a.yaml]\n",
        &[(
            "a.yaml",
            "- hostnames: [x]\n  criticality: 2\n  colour: red\n",
        )],
    )
    .expect_err("unknown key refused");
    assert_eq!(err.line, Some(3), "{err}");
    assert!(err.reason.contains("colour"), "{err}");
}

#[test]
fn one_name_for_two_assets_or_identities_is_refused() {
    let err = load_files(
        "assets: [a.csv, b.yaml]\n",
        &[
            (
                "a.csv",
                "hostname,ip,criticality\nweb01.corp.example,10.0.0.1,3\n",
            ),
            ("b.yaml", "- hostnames: [WEB01]\n  criticality: 4\n"),
        ],
    )
    .expect_err("web01 twice");
    assert!(err.file.ends_with("b.yaml"), "{err}");
    assert!(
        err.reason
            .contains("host `web01` is already the asset of line 2"),
        "{err}"
    );

    let err = load_files(
        "identities: [p.csv]\n",
        &[(
            "p.csv",
            "user,aliases\nalice,CORP\\alice\nmallory,\"alice@corp.example\"\n",
        )],
    )
    .expect_err("alias of two people");
    assert_eq!(err.line, Some(3), "{err}");
    assert!(
        err.reason
            .contains("`alice` already names the identity of line 2"),
        "{err}"
    );
}

#[test]
fn bad_misp_and_stix_values_name_the_object() {
    let manifest = r#"{"11111111-2222-4333-8444-555555555555": {"info": "x"}}"#;
    let event = "{\"Event\": {\"Attribute\": [\n  {\"uuid\": \"a-1\", \"type\": \"ip-dst\", \"to_ids\": true, \"value\": \"1.2.3.4\"},\n  {\"uuid\": \"a-2\", \"type\": \"ip-dst\", \"to_ids\": true, \"value\": \"evil.example\"}\n]}}";
    let err = load_files(
        "intel:\n  - {name: m, path: manifest.json, format: misp}\n",
        &[
            ("manifest.json", manifest),
            ("11111111-2222-4333-8444-555555555555.json", event),
        ],
    )
    .expect_err("domain in ip-dst refused");
    assert!(
        err.file
            .ends_with("11111111-2222-4333-8444-555555555555.json"),
        "{err}"
    );
    assert_eq!(err.line, Some(3), "{err}");
    assert!(
        err.reason.contains("a-2") && err.reason.contains("not an IP address"),
        "{err}"
    );

    let err = load_files(
        "intel:\n  - {name: m, path: manifest.json, format: misp}\n",
        &[("manifest.json", r#"{"../../etc/passwd": {}}"#)],
    )
    .expect_err("path-like event key refused");
    assert!(err.reason.contains("not a uuid"), "{err}");

    let err = load_files(
        "intel:\n  - {name: s, path: s.json, format: stix}\n",
        &[(
            "s.json",
            r#"{"type": "bundle", "objects": [{"type": "indicator", "id": "indicator--1", "pattern": "[file:hashes.MD5 = 'abc']", "pattern_type": "stix", "valid_from": "2025-01-01T00:00:00Z"}]}"#,
        )],
    )
    .expect_err("short MD5 refused");
    assert!(err.reason.contains("not a hex hash"), "{err}");
}
