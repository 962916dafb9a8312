use super::*;

const REGISTRY: &str = r#"
expected_touchers:
  - { ip: 10.0.0.5, reason: vulnerability scanner }
decoys:
  - { name: svc-backup-old, kind: account, value: 'CORP\svc-backup-old' }
  - { name: sql-trap, kind: spn, value: 'MSSQLSvc/sql-old.corp.example:1433', account: svc-sql-old }
  - { name: asrep-trap, kind: asrep_account, value: svc-nopreauth }
  - { name: fake-dc, kind: ip, value: 10.0.7.7 }
  - { name: payroll-bait, kind: file, value: 'payroll_2024_final.xlsx' }
  - { name: canary-dns, kind: dns, value: files.canary.corp.example }
  - { name: build-key, kind: aws_key, value: AKIAQ4EXAMPLE7CANARY }
  - { name: ssh-canary, kind: honeypot, value: canary-fileserver-1 }
"#;

fn registry() -> Registry {
    Registry::from_yaml(REGISTRY, "decoys.yaml", &Canonicaliser::default()).expect("loads")
}

/// Decodes with the real decoder and canonicalises as the pipeline does.
fn decoded(decoder: &str, v: Value) -> Decoded {
    let d = riposte_decode::builtin(decoder).expect("decoder");
    let mut out = d.decode(v).expect("decodes");
    let mut one = out.remove(0);
    Canonicaliser::default().apply_all(one.entities_mut());
    one
}

// Windows records in Winlogbeat's shape, as the `windows` decoder reads them; field names as
// Microsoft documents them for each event id.
fn windows(id: u32, data: Value) -> Decoded {
    decoded(
        "windows",
        json!({
            "@timestamp": "2024-05-01T10:00:00.000Z",
            "winlog": {
                "event_id": id, "channel": "Security", "computer_name": "DC01.corp.example",
                "provider_name": "Microsoft-Windows-Security-Auditing",
                "time_created": "2024-05-01T10:00:00.000Z",
                "event_data": data
            }
        }),
    )
}

fn values(es: &[Entity]) -> Vec<String> {
    es.iter()
        .map(|e| format!("{}:{}", e.kind.as_str(), e.value))
        .collect()
}

#[test]
fn a_service_ticket_for_the_decoy_spn_names_the_requester_not_the_decoy() {
    let r = registry();
    let d = windows(
        4769,
        json!({"TargetUserName": "alice@CORP.EXAMPLE", "TargetDomainName": "CORP.EXAMPLE",
               "ServiceName": "svc-sql-old", "ServiceSid": "S-1-5-21-1-2-3-1111",
               "TicketEncryptionType": "0x17", "IpAddress": "::ffff:10.0.3.42", "Status": "0x0"}),
    );
    let hits = r.check(&d);
    assert_eq!(hits.len(), 1, "{hits:?}");
    let h = &hits[0];
    assert_eq!(
        (h.decoy.as_str(), h.kind, h.usage),
        ("sql-trap", DecoyKind::Spn, "service ticket request")
    );
    assert_eq!(h.ignored, None);
    let actor = values(&h.actor);
    assert!(actor.contains(&"ip:10.0.3.42".to_string()), "{actor:?}");
    assert!(
        actor.iter().any(|a| a.starts_with("user:alice")),
        "{actor:?}"
    );
    assert!(
        !actor.iter().any(|a| a.contains("svc-sql-old")),
        "{actor:?}"
    );
    let alert = h.to_alert(&d);
    assert_eq!(alert.severity.score, 95);
    assert_eq!(
        alert.techniques,
        vec![TechniqueId::parse("T1558.003").unwrap()]
    );
    assert!(
        h.reason(&d.time())
            .starts_with("decoy sql-trap (spn) used by ")
    );
    // A ticket for another service is nothing.
    let other = windows(
        4769,
        json!({"TargetUserName": "alice", "ServiceName": "svc-web", "IpAddress": "10.0.3.42"}),
    );
    assert!(r.check(&other).is_empty());
}

#[test]
fn logon_as_the_decoy_account_is_a_hit_and_other_events_are_not() {
    let r = registry();
    let d = windows(
        4625,
        json!({"TargetUserName": "svc-backup-old", "TargetDomainName": "CORP",
               "IpAddress": "10.0.3.99", "WorkstationName": "WS-042", "LogonType": "3"}),
    );
    let hits = r.check(&d);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].decoy, "svc-backup-old");
    let actor = values(&hits[0].actor);
    assert!(actor.contains(&"ip:10.0.3.99".to_string()), "{actor:?}");
    assert!(
        !actor.iter().any(|a| a.contains("svc-backup-old")),
        "{actor:?}"
    );
    // A group change naming the account is not a use of it.
    let d = windows(
        4738,
        json!({"TargetUserName": "svc-backup-old", "SubjectUserName": "admin"}),
    );
    assert!(r.check(&d).is_empty());
}

#[test]
fn an_opencanary_ssh_login_is_a_hit_for_its_source_and_health_records_are_not() {
    let r = registry();
    let line = json!({
        "dst_host": "10.0.5.20", "dst_port": 22, "local_time": "2024-05-01 10:00:07.123456",
        "local_time_adjusted": "2024-05-01 10:00:07.123456",
        "logdata": {"USERNAME": "root", "PASSWORD": "x", "REMOTEVERSION": "SSH-2.0-OpenSSH_8.9"},
        "logtype": 4002, "node_id": "canary-fileserver-1", "src_host": "10.0.9.77",
        "src_port": 51512, "utc_time": "2024-05-01 10:00:07.123456"
    });
    let hits = r.check(&decoded("opencanary", line.clone()));
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].decoy, "ssh-canary");
    assert_eq!(values(&hits[0].actor), vec!["ip:10.0.9.77"]);
    let mut health = line;
    health["logtype"] = json!(1001);
    assert!(r.check(&decoded("opencanary", health)).is_empty());
}

#[test]
fn a_canarytokens_trigger_is_a_hit() {
    let r = registry();
    let d = decoded(
        "canarytokens",
        json!({"manage_url": "https://canarytokens.org/manage?token=tok123&auth=a",
               "memo": "bait doc", "channel": "HTTP", "time": "2024-05-01 10:05:00",
               "additional_data": {"src_ip": "198.51.100.23", "useragent": "curl/8"}}),
    );
    let hits = r.check(&d);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].decoy, "canarytoken tok123");
    assert_eq!(values(&hits[0].actor), vec!["ip:198.51.100.23"]);
}

#[test]
fn the_expected_scanner_touching_a_decoy_validates_nothing() {
    let r = registry();
    let d = decoded(
        "suricata",
        json!({"timestamp": "2024-05-01T10:00:00.000000+0000", "flow_id": 1,
               "event_type": "flow", "src_ip": "10.0.0.5", "dest_ip": "10.0.7.7", "proto": "TCP"}),
    );
    let hits = r.check(&d);
    assert_eq!(hits.len(), 1);
    let why = hits[0].ignored.as_deref().expect("ignored");
    assert!(
        why.contains("10.0.0.5") && why.contains("vulnerability scanner"),
        "{why}"
    );
    let alert = hits[0].to_alert(&d);
    assert!(
        alert.severity.score < 20 && alert.title.contains("ignored"),
        "{}",
        alert.title
    );
}

#[test]
fn two_sources_touching_one_decoy_are_two_actors_without_the_decoy() {
    let r = registry();
    let flow = |src: &str| {
        decoded(
            "suricata",
            json!({"timestamp": "2024-05-01T10:00:00.000000+0000", "flow_id": 1,
                   "event_type": "flow", "src_ip": src, "dest_ip": "10.0.7.7", "proto": "TCP"}),
        )
    };
    let a = r.check(&flow("10.0.3.1"));
    let b = r.check(&flow("10.0.3.2"));
    assert_eq!(values(&a[0].actor), vec!["ip:10.0.3.1"]);
    assert_eq!(values(&b[0].actor), vec!["ip:10.0.3.2"]);
    assert!(
        a[0].to_alert(&flow("10.0.3.1"))
            .entities
            .iter()
            .all(|e| e.value != "10.0.7.7")
    );
}

#[test]
fn objects_dns_names_and_keys_are_matched_where_they_mean_use() {
    let r = registry();
    let read = windows(
        4663,
        json!({"SubjectUserName": "bob", "SubjectDomainName": "CORP",
               "ObjectName": "D:\\Shares\\HR\\Payroll_2024_Final.xlsx", "AccessMask": "0x1"}),
    );
    let hits = r.check(&read);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].decoy, "payroll-bait");
    assert!(
        values(&hits[0].actor)
            .iter()
            .any(|a| a.starts_with("user:") && a.ends_with("bob")),
        "{:?}",
        hits[0]
    );

    let dns = decoded(
        "windows",
        json!({"Event": {"System": {"EventID": 22, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
            "Computer": "WS-042.corp.example",
            "TimeCreated": {"#attributes": {"SystemTime": "2024-05-01T10:00:00.000Z"}}},
            "EventData": {"QueryName": "x1.files.canary.corp.example", "Image": "C:\\Windows\\System32\\curl.exe",
                          "User": "CORP\\carol"}}}),
    );
    let hits = r.check(&dns);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].decoy, "canary-dns");

    let gd = json!({"resource": {"accessKeyDetails": {"accessKeyId": "AKIAQ4EXAMPLE7CANARY"}}});
    let d = Decoded::Alert(Alert {
        id: "x".into(),
        decoder: "guardduty".into(),
        product: "GuardDuty".into(),
        source_id: None,
        time: riposte_domain::time::parse("2024-05-01T10:00:00Z").unwrap(),
        time_original: String::new(),
        title: "t".into(),
        description: None,
        severity: Severity::unknown(),
        rule: None,
        entities: vec![],
        techniques: vec![],
        tactics: vec![],
        original: gd,
        origin: None,
    });
    assert_eq!(r.check(&d)[0].decoy, "build-key");
}

#[test]
fn a_bad_registry_is_refused_with_file_line_and_reason() {
    let c = Canonicaliser::default();
    let e = Registry::from_yaml(
        "decoys:\n  - { name: x, kind: unicorn, value: y }\n",
        "d.yaml",
        &c,
    )
    .unwrap_err();
    assert_eq!(e.file, "d.yaml");
    assert_eq!(e.line, Some(2));
    assert!(e.reason.contains("unicorn"), "{}", e.reason);
    let e = Registry::from_yaml(
        "decoys:\n  - { name: x, kind: ip, value: not-an-ip }\n",
        "d.yaml",
        &c,
    )
    .unwrap_err();
    assert!(e.reason.contains("not a valid ip value"), "{}", e.reason);
}
