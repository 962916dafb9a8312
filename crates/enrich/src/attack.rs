//! ATT&CK: technique id → name and tactics, and the tactics in kill-chain order.
//!
//! The table is generated from MITRE's enterprise bundle
//! (`../shared/corpus/attack/enterprise-attack-techniques.json`) by [`generate_table`]
//! (`cargo run -p riposte-enrich --example gen_attack`), committed as `data/attack.tsv` next to
//! MITRE's notice (`data/ATTACK-NOTICE.txt`), and embedded with `include_str!`: the binary
//! needs no file at run time, and a test regenerates the table from the corpus and compares, so
//! it cannot silently go stale.
//!
//! Table format, one record a line, tab-separated:
//! `tactic <TA id> <shortname> <name>` in kill-chain order (the matrix's `tactic_refs`), then
//! `technique <T id> <name> <shortname,shortname…>` sorted by id. Revoked and deprecated
//! techniques are left out.

use std::collections::HashMap;
use std::sync::LazyLock;

use riposte_domain::TechniqueId;
use serde_json::Value;

/// The embedded table.
pub const TABLE: &str = include_str!("../data/attack.tsv");

/// An ATT&CK tactic, with its position in the kill chain (0 = reconnaissance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tactic {
    /// `TA0006`
    pub id: &'static str,
    /// `credential-access`, the name kill-chain phases use.
    pub shortname: &'static str,
    /// `Credential Access`
    pub name: &'static str,
    /// Position in the enterprise matrix, 0-based.
    pub order: u8,
}

/// An ATT&CK technique or sub-technique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Technique {
    /// `T1003.001`
    pub id: &'static str,
    /// `LSASS Memory`
    pub name: &'static str,
    /// Indices into [`tactics`], in kill-chain order.
    tactic_idx: Vec<u8>,
}

impl Technique {
    /// The technique's tactics in kill-chain order.
    pub fn tactics(&self) -> impl Iterator<Item = &'static Tactic> + '_ {
        self.tactic_idx
            .iter()
            .filter_map(|&i| TABLE_PARSED.tactics.get(usize::from(i)))
    }
}

struct Parsed {
    tactics: Vec<Tactic>,
    techniques: HashMap<&'static str, Technique>,
}

static TABLE_PARSED: LazyLock<Parsed> = LazyLock::new(|| parse(TABLE));

/// Parses the embedded table. It is our own generated file, checked by tests; a line that does
/// not fit is skipped rather than trusted.
fn parse(table: &'static str) -> Parsed {
    let mut tactics = Vec::new();
    let mut techniques = HashMap::new();
    for line in table.lines() {
        let mut f = line.split('\t');
        match (f.next(), f.next(), f.next(), f.next()) {
            (Some("tactic"), Some(id), Some(shortname), Some(name)) => {
                let order = u8::try_from(tactics.len()).unwrap_or(u8::MAX);
                tactics.push(Tactic {
                    id,
                    shortname,
                    name,
                    order,
                });
            }
            (Some("technique"), Some(id), Some(name), Some(list)) => {
                let tactic_idx = list
                    .split(',')
                    .filter_map(|s| tactics.iter().position(|t: &Tactic| t.shortname == s))
                    .filter_map(|i| u8::try_from(i).ok())
                    .collect();
                techniques.insert(
                    id,
                    Technique {
                        id,
                        name,
                        tactic_idx,
                    },
                );
            }
            _ => {}
        }
    }
    Parsed {
        tactics,
        techniques,
    }
}

/// The technique with this id, if ATT&CK (the embedded version) knows it.
pub fn technique(id: &TechniqueId) -> Option<&'static Technique> {
    TABLE_PARSED.techniques.get(id.as_str())
}

/// All tactics in kill-chain order.
pub fn tactics() -> &'static [Tactic] {
    &TABLE_PARSED.tactics
}

/// A tactic by id (`TA0006`), shortname (`credential-access`) or name (`Credential Access`,
/// any case) — products spell tactics all three ways.
pub fn tactic(s: &str) -> Option<&'static Tactic> {
    let s = s.trim();
    TABLE_PARSED.tactics.iter().find(|t| {
        t.id.eq_ignore_ascii_case(s)
            || t.shortname.eq_ignore_ascii_case(s)
            || t.name.eq_ignore_ascii_case(s)
    })
}

/// The technique, or for a sub-technique this table does not know (newer than the embedded
/// ATT&CK version), its parent technique — products report ids from their own ATT&CK version.
pub fn technique_or_parent(id: &TechniqueId) -> Option<&'static Technique> {
    technique(id).or_else(|| technique(&id.parent()))
}

/// The distinct tactics of some techniques plus tactics a product named directly (by id,
/// shortname or name), in kill-chain order: what scoring counts as "how far along the chain".
/// Unknown ids and names are ignored.
pub fn kill_chain<'a>(
    techniques: impl IntoIterator<Item = &'a TechniqueId>,
    named_tactics: impl IntoIterator<Item = &'a str>,
) -> Vec<&'static Tactic> {
    let mut seen = [false; 64];
    let mut mark = |t: &'static Tactic| {
        if let Some(slot) = seen.get_mut(usize::from(t.order)) {
            *slot = true;
        }
    };
    for id in techniques {
        if let Some(t) = technique_or_parent(id) {
            t.tactics().for_each(&mut mark);
        }
    }
    for name in named_tactics {
        if let Some(t) = tactic(name) {
            mark(t);
        }
    }
    tactics()
        .iter()
        .filter(|t| seen.get(usize::from(t.order)).copied().unwrap_or(false))
        .collect()
}

/// Number of techniques in the embedded table.
pub fn technique_count() -> usize {
    TABLE_PARSED.techniques.len()
}

/// Builds the table text from MITRE's enterprise STIX bundle. Pure (no I/O), so the example
/// that writes `data/attack.tsv` and the test that checks it run the same code.
pub fn generate_table(bundle_json: &str) -> Result<String, String> {
    let bundle: Value =
        serde_json::from_str(bundle_json).map_err(|e| format!("not a JSON bundle: {e}"))?;
    let objects = bundle
        .get("objects")
        .and_then(Value::as_array)
        .ok_or("bundle has no `objects` array")?;
    let live = |o: &&Value| {
        o.get("revoked").and_then(Value::as_bool) != Some(true)
            && o.get("x_mitre_deprecated").and_then(Value::as_bool) != Some(true)
    };
    let of_type = |t: &'static str| {
        objects
            .iter()
            .filter(move |o| o.get("type").and_then(Value::as_str) == Some(t))
            .filter(live)
    };
    let attack_id = |o: &Value| -> Option<String> {
        o.get("external_references")?
            .as_array()?
            .iter()
            .find(|r| r.get("source_name").and_then(Value::as_str) == Some("mitre-attack"))?
            .get("external_id")?
            .as_str()
            .map(str::to_string)
    };
    let str_field = |o: &Value, k: &str| -> Result<String, String> {
        o.get(k)
            .and_then(Value::as_str)
            .map(|s| s.replace(['\t', '\n', '\r'], " "))
            .ok_or_else(|| format!("object {:?} has no `{k}`", o.get("id")))
    };

    let matrix = of_type("x-mitre-matrix")
        .next()
        .ok_or("bundle has no x-mitre-matrix")?;
    let refs = matrix
        .get("tactic_refs")
        .and_then(Value::as_array)
        .ok_or("matrix has no tactic_refs")?;
    let mut out = String::from(
        "# MITRE ATT&CK Enterprise techniques for riposte; see ATTACK-NOTICE.txt. Generated by\n\
         # `cargo run -p riposte-enrich --example gen_attack`; do not edit.\n",
    );
    let mut shortnames = Vec::new();
    for r in refs {
        let r = r.as_str().ok_or("tactic_ref is not a string")?;
        let t = of_type("x-mitre-tactic")
            .find(|o| o.get("id").and_then(Value::as_str) == Some(r))
            .ok_or_else(|| format!("tactic {r} not in bundle"))?;
        let id = attack_id(t).ok_or_else(|| format!("tactic {r} has no ATT&CK id"))?;
        let short = str_field(t, "x_mitre_shortname")?;
        out.push_str(&format!(
            "tactic\t{id}\t{short}\t{}\n",
            str_field(t, "name")?
        ));
        shortnames.push(short);
    }

    let mut techniques = Vec::new();
    for o in of_type("attack-pattern") {
        let Some(id) = attack_id(o) else { continue };
        let name = str_field(o, "name")?;
        let mut tactic_idx: Vec<usize> = o
            .get("kill_chain_phases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("kill_chain_name").and_then(Value::as_str) == Some("mitre-attack"))
            .filter_map(|p| p.get("phase_name").and_then(Value::as_str))
            .filter_map(|p| shortnames.iter().position(|s| s == p))
            .collect();
        tactic_idx.sort_unstable();
        tactic_idx.dedup();
        let list: Vec<&str> = tactic_idx.iter().map(|&i| shortnames[i].as_str()).collect();
        techniques.push((id, name, list.join(",")));
    }
    techniques.sort();
    for (id, name, list) in techniques {
        out.push_str(&format!("technique\t{id}\t{name}\t{list}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(path: &str) -> std::path::PathBuf {
        std::env::var_os("RIPOSTE_CORPUS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
            })
            .join(path)
    }

    #[test]
    fn embedded_table_matches_the_corpus_bundle() {
        let path = corpus("attack/enterprise-attack-techniques.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let generated = generate_table(&text).expect("corpus bundle generates");
        assert!(
            generated == TABLE,
            "data/attack.tsv is stale: run `cargo run -p riposte-enrich --example gen_attack`"
        );
    }

    #[test]
    fn notice_is_shipped_with_the_table() {
        let notice = include_str!("../data/ATTACK-NOTICE.txt");
        assert!(notice.contains("The MITRE Corporation"), "{notice}");
    }

    #[test]
    fn lsass_memory_is_credential_access() {
        let t = technique(&TechniqueId::parse("T1003.001").expect("id")).expect("T1003.001");
        assert_eq!(t.name, "LSASS Memory");
        let tactics: Vec<&str> = t.tactics().map(|t| t.shortname).collect();
        assert_eq!(tactics, ["credential-access"]);
        assert!(technique(&TechniqueId::parse("T9999").expect("id")).is_none());
        assert!(technique_count() > 500, "{}", technique_count());
    }

    #[test]
    fn kill_chain_collects_distinct_tactics_in_order() {
        let ids: Vec<TechniqueId> = ["T1003.001", "T1566.001", "T1059", "T1003", "T1055.999"]
            .iter()
            .filter_map(|s| TechniqueId::parse(s))
            .collect();
        let chain: Vec<&str> = kill_chain(&ids, ["Exfiltration", "no such tactic"])
            .iter()
            .map(|t| t.shortname)
            .collect();
        // T1055.999 is unknown; its parent T1055 (Process Injection) adds its two tactics.
        assert_eq!(
            chain,
            [
                "initial-access",
                "execution",
                "privilege-escalation",
                "defense-evasion",
                "credential-access",
                "exfiltration"
            ]
        );
    }

    #[test]
    fn tactics_are_in_kill_chain_order() {
        let order: Vec<&str> = tactics().iter().map(|t| t.shortname).collect();
        assert_eq!(order.first(), Some(&"reconnaissance"));
        assert_eq!(order.last(), Some(&"impact"));
        let pos = |s| order.iter().position(|o| *o == s).expect(s);
        assert!(pos("initial-access") < pos("execution"));
        assert!(pos("credential-access") < pos("lateral-movement"));
        assert!(pos("lateral-movement") < pos("exfiltration"));
        assert_eq!(tactic("Credential Access").map(|t| t.id), Some("TA0006"));
        assert_eq!(
            tactic("ta0006").map(|t| t.shortname),
            Some("credential-access")
        );
        // A technique with several tactics lists them in kill-chain order.
        let valid = technique(&TechniqueId::parse("T1078").expect("id")).expect("T1078");
        let orders: Vec<u8> = valid.tactics().map(|t| t.order).collect();
        assert!(
            orders.len() > 1 && orders.windows(2).all(|w| w[0] < w[1]),
            "{orders:?}"
        );
    }
}
