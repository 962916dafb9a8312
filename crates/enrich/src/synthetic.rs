//! Synthetic enrichment data at benchmark scale (100,000 indicators, 50,000 assets, …),
//! written as ordinary feed, asset and identity files so a benchmark measures the real loaders
//! and look-ups. Deterministic: the same sizes give the same files and the same entities.
//!
//! Used by `examples/bench_lookup.rs`, the allocation test, and meant for `riposte bench`.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use riposte_domain::{Entity, EntityKind, Role};

/// How much to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Intel indicators in all: 60% IPv4, 5% CIDRs, 20% domains, 10% SHA-256, 5% STIX URLs.
    pub indicators: usize,
    pub assets: usize,
    pub identities: usize,
}

impl Default for Sizes {
    fn default() -> Sizes {
        Sizes {
            indicators: 100_000,
            assets: 50_000,
            identities: 20_000,
        }
    }
}

/// splitmix64: a tiny deterministic generator, so no dependency is needed for test data.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn ip(n: u64) -> String {
    // Public-looking addresses spread over the space, away from 10/8 (assets live there).
    let a = 11 + (n >> 24) % 200;
    format!("{a}.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
}

fn domain(n: u64) -> String {
    format!("d{n:x}.bad{}.example", n % 97)
}

fn sha256(n: u64) -> String {
    let mut m = Mix(n);
    (0..4).fold(String::new(), |mut s, _| {
        let _ = write!(s, "{:016x}", m.next());
        s
    })
}

/// Writes the files under `dir` and returns the path of the `enrichment.yaml` that names them.
pub fn write(dir: &Path, sizes: Sizes) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("intel"))?;
    let n = sizes.indicators as u64;
    let part = |pct: u64| n * pct / 100;
    let mut m = Mix(1);

    let mut ips = String::new();
    for _ in 0..part(60) {
        ips.push_str(&ip(m.next() & 0xffff_ffff));
        ips.push('\n');
    }
    std::fs::write(dir.join("intel/ips.txt"), ips)?;

    let mut cidrs = String::from("range,comment\n");
    for i in 0..part(5) {
        let len = 16 + (i % 13);
        let _ = writeln!(cidrs, "{}/{len},synthetic", ip(m.next() & 0xffff_ffff));
    }
    std::fs::write(dir.join("intel/cidrs.csv"), cidrs)?;

    let mut domains = String::new();
    for i in 0..part(20) {
        domains.push_str(&domain(i));
        domains.push('\n');
    }
    std::fs::write(dir.join("intel/domains.txt"), domains)?;

    let mut hashes = String::new();
    for i in 0..part(10) {
        hashes.push_str(&sha256(i));
        hashes.push('\n');
    }
    std::fs::write(dir.join("intel/hashes.txt"), hashes)?;

    let mut objects = Vec::new();
    for i in 0..part(5) {
        objects.push(serde_json::json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": format!("indicator--00000000-0000-4000-8000-{i:012}"),
            "created": "2025-01-01T00:00:00Z",
            "modified": "2025-01-01T00:00:00Z",
            "pattern": format!("[url:value = 'https://u{i}.example/p/{i}']"),
            "pattern_type": "stix",
            "valid_from": "2025-01-01T00:00:00Z",
            "valid_until": "2035-01-01T00:00:00Z",
            "confidence": 70
        }));
    }
    let bundle = serde_json::json!({
        "type": "bundle",
        "id": "bundle--00000000-0000-4000-8000-000000000000",
        "objects": objects
    });
    std::fs::write(dir.join("intel/urls.json"), bundle.to_string())?;

    let mut assets = String::from("hostname,ip,criticality,owner,tags\n");
    for i in 0..sizes.assets as u64 {
        let tags = if i % 1000 == 0 {
            "domain-controller"
        } else if i % 10 == 0 {
            "internet-facing"
        } else {
            "workstation"
        };
        let _ = writeln!(
            assets,
            "host-{i}.corp.example,10.{}.{}.{},{},team-{},{tags}",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            1 + i % 5,
            i % 40
        );
    }
    std::fs::write(dir.join("assets.csv"), assets)?;

    let mut ids = String::from("user,aliases,privileged,groups,department\n");
    for i in 0..sizes.identities as u64 {
        let _ = writeln!(
            ids,
            "user{i},\"CORP\\user{i};user{i}@corp.example\",{},Staff,dept-{}",
            if i % 50 == 0 { "yes" } else { "no" },
            i % 12
        );
    }
    std::fs::write(dir.join("identities.csv"), ids)?;

    let config = dir.join("enrichment.yaml");
    std::fs::write(
        &config,
        "intel:\n\
         \x20 - {name: ips, path: intel/ips.txt, format: list, type: ip}\n\
         \x20 - {name: cidrs, path: intel/cidrs.csv, format: csv, column: range, type: cidr}\n\
         \x20 - {name: domains, path: intel/domains.txt, format: list, type: domain}\n\
         \x20 - {name: hashes, path: intel/hashes.txt, format: list, type: sha256}\n\
         \x20 - {name: urls, path: intel/urls.json, format: stix}\n\
         assets: [assets.csv]\n\
         identities: [identities.csv]\n",
    )?;
    Ok(config)
}

/// `count` canonical entities as alerts carry them (a host, a user, source and destination
/// addresses, now and then a domain, URL or hash), about a fifth of the intel ones hitting.
pub fn entities(sizes: Sizes, count: usize) -> Vec<Entity> {
    let mut m = Mix(7);
    let mut out = Vec::with_capacity(count);
    let pick = |m: &mut Mix, n: usize| m.next() % n.max(1) as u64;
    let mut hit_ips = Mix(1);
    for i in 0..count {
        let e = match i % 8 {
            0 => Entity::new(
                EntityKind::Host,
                Role::Target,
                format!("host-{}", pick(&mut m, sizes.assets)),
            ),
            1 => Entity::new(
                EntityKind::User,
                Role::Actor,
                format!("user{}", pick(&mut m, sizes.identities * 2)),
            ),
            2 => {
                let a = pick(&mut m, sizes.assets);
                Entity::new(
                    EntityKind::Ip,
                    Role::Source,
                    format!("10.{}.{}.{}", (a >> 16) & 255, (a >> 8) & 255, a & 255),
                )
            }
            3 | 4 => {
                // Every fifth external address is a listed one.
                let v = if m.next().is_multiple_of(5) {
                    ip(hit_ips.next() & 0xffff_ffff)
                } else {
                    ip(m.next() & 0xffff_ffff)
                };
                Entity::new(EntityKind::Ip, Role::Target, v)
            }
            5 => Entity::new(
                EntityKind::Domain,
                Role::Related,
                format!("www.{}", domain(pick(&mut m, sizes.indicators / 2))),
            ),
            6 => Entity::new(
                EntityKind::FileHash,
                Role::Related,
                sha256(pick(&mut m, sizes.indicators / 5)),
            ),
            _ => {
                let u = pick(&mut m, sizes.indicators / 10);
                Entity::new(
                    EntityKind::Url,
                    Role::Related,
                    format!("https://u{u}.example/p/{u}"),
                )
            }
        };
        out.push(e);
    }
    out
}
