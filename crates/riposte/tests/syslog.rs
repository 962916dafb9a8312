//! Syslog listeners against the real server: CEF and PAN-OS over TCP in both framings
//! (newline and RFC 6587 octet counting) and over UDP, decoded and stored.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{Server, corpus};

/// Real lines from the corpus: ArcSight CEF and PAN-OS THREAT CSV.
fn lines(rel: &str, n: usize) -> Vec<String> {
    std::fs::read_to_string(corpus(rel))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .map(|l| l.trim_end().to_string())
        .collect()
}

fn wait_for_alerts(srv: &Server, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let alerts = srv.all_alerts();
        if alerts.len() >= n || Instant::now() > deadline {
            return alerts;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cef_and_panos_over_tcp_both_framings_and_udp_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        &["--syslog-tcp", "127.0.0.1:0", "--syslog-udp", "127.0.0.1:0"],
    );
    let cef = lines("alerts/cef/test-cef.log", 4);
    let pan = lines("alerts/panos/test-panw-panos-inc-threat-sample.log", 6);
    assert_eq!(cef.len(), 4);

    // TCP, newline framing, with RFC 3164 headers: two CEF and two PAN-OS.
    let mut tcp = std::net::TcpStream::connect(srv.syslog_tcp.as_ref().unwrap()).unwrap();
    for l in [&cef[0], &cef[1]] {
        writeln!(tcp, "<134>Nov 23 10:00:00 fw01 {l}").unwrap();
    }
    for l in [&pan[0], &pan[1]] {
        writeln!(tcp, "<14>{l}").unwrap();
    }
    // TCP, octet counting, with RFC 5424 headers: one CEF and two PAN-OS.
    for l in [&cef[2], &pan[2], &pan[3]] {
        let msg = format!("<134>1 2024-11-23T10:00:00Z fw02 app - - - {l}");
        write!(tcp, "{} {msg}", msg.len()).unwrap();
    }
    tcp.flush().unwrap();
    drop(tcp);

    // UDP: one CEF and two PAN-OS datagrams.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for l in [&cef[3], &pan[4], &pan[5]] {
        udp.send_to(
            format!("<134>Nov 23 10:00:01 fw03 {l}").as_bytes(),
            srv.syslog_udp.as_ref().unwrap(),
        )
        .unwrap();
    }

    let alerts = wait_for_alerts(&srv, 10);
    let by = |decoder: &str, via: &str| {
        alerts
            .iter()
            .filter(|a| {
                a["decoder"] == decoder
                    && a["origin"]["listener"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with(via)
            })
            .count()
    };
    let seen: Vec<String> = alerts
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a["decoder"], a["origin"]["listener"], a["title"]
            )
        })
        .collect();
    assert_eq!(by("cef", "tcp://"), 3, "CEF over TCP: {seen:#?}");
    assert_eq!(by("panos", "tcp://"), 4, "PAN-OS over TCP");
    assert_eq!(by("cef", "udp://"), 1, "CEF over UDP");
    assert_eq!(by("panos", "udp://"), 2, "PAN-OS over UDP");
    // Decoded, not just stored: the CEF source address of the corpus's second line.
    assert!(alerts.iter().any(|a| {
        a["decoder"] == "cef"
            && a["entities"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["value"] == "89.160.20.156")
    }));

    let (_, stats) = srv.get("/api/v1/stats", Some(&srv.token));
    let s = &stats["syslog"];
    assert_eq!(s["tcp_messages"], 7);
    assert_eq!(s["udp_messages"], 3);
    assert_eq!(s["udp_dropped_queue_full"], 0);
    assert!(
        s["udp_dropped_kernel"].is_u64(),
        "kernel drops are exposed: {s}"
    );
    assert_eq!(s["refused"], 0);
}

#[test]
fn unroutable_messages_are_dead_letters_not_losses() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), &["--syslog-tcp", "127.0.0.1:0"]);
    let mut tcp = std::net::TcpStream::connect(srv.syslog_tcp.as_ref().unwrap()).unwrap();
    writeln!(
        tcp,
        "<13>Nov 23 10:00:00 host sshd[1]: Accepted password for alice"
    )
    .unwrap();
    drop(tcp);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = srv.get("/api/v1/deadletters", Some(&srv.token));
        if let Some(d) = v["items"].as_array().and_then(|a| a.first()) {
            assert!(d["raw"].as_str().unwrap().contains("Accepted password"));
            assert!(d["reason"].as_str().unwrap().contains("--syslog-decoder"));
            assert_eq!(d["origin"]["via"], "syslog");
            break;
        }
        assert!(Instant::now() < deadline, "no dead letter");
        std::thread::sleep(Duration::from_millis(100));
    }
}
