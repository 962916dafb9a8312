//! Parsed rules kept between runs, keyed by a hash of each rule text, so a restart with
//! unchanged rule files skips YAML.
//!
//! Reading SigmaHQ's 5.6 MB of YAML is most of a cold start (`rsigma-parser`'s YAML loading
//! alone was half of a cold scan's instructions); its parsed form (`SigmaRule`) has no
//! `Deserialize`, so this module mirrors it in plain types and stores one JSON line per
//! text: `{"h":<hash>,"r":[rules]}`. A text is cached only when it held detection rules and
//! nothing else (no correlation, filter or error: those are parsed every time), and only when
//! the stored form reads back equal to what `rsigma-parser` made: the cache can only ever
//! save time, never change a rule. The bytes are the caller's to keep (this crate does no
//! I/O); a cache of another format version, or any line that does not read, counts as absent.

use std::collections::HashMap;
use std::sync::Mutex;

use rsigma_parser::{
    ConditionExpr, Detection, DetectionItem, Detections, FieldSpec, Level, LogSource, Modifier,
    Related, SigmaRule, SigmaString, SigmaValue, SpecialChar, Status, StringPart,
};
use serde::{Deserialize, Serialize};

/// The first line of a cache; a cache made by another version of the mirror (or of
/// `rsigma-parser`, whose parse it stores) is not read.
const HEADER: &str = "riposte parsed Sigma rules v1 (rsigma-parser 0.23)";

/// The rules cached from earlier runs and those parsed in this one.
#[derive(Default)]
pub struct RuleCache {
    /// Text hash → its line (JSON), from the bytes given.
    stored: HashMap<u64, String>,
    /// Hashes of the stored lines this run used.
    used: Mutex<Vec<u64>>,
    /// Lines made in this run.
    made: Mutex<Vec<(u64, String)>>,
    /// Texts parsed afresh (a miss) in this run.
    misses: std::sync::atomic::AtomicUsize,
}

impl RuleCache {
    /// An empty cache (every text is parsed; [`RuleCache::to_bytes`] then holds them all).
    pub fn new() -> RuleCache {
        RuleCache::default()
    }

    /// A cache from bytes an earlier run wrote; anything unreadable reads as empty.
    pub fn from_bytes(bytes: &[u8]) -> RuleCache {
        let mut c = RuleCache::new();
        let Ok(text) = std::str::from_utf8(bytes) else {
            return c;
        };
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return c;
        }
        for line in lines {
            // `{"h":"<16 hex digits>",…`
            if let Some(h) = line
                .get(6..22)
                .and_then(|h| u64::from_str_radix(h, 16).ok())
            {
                c.stored.insert(h, line.to_string());
            }
        }
        c
    }

    /// The cache to keep: the entries this run used or made (entries for texts no longer
    /// loaded are dropped).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::from(HEADER);
        out.push('\n');
        let mut seen = std::collections::HashSet::new();
        let mut add = |h: u64, line: &str| {
            if seen.insert(h) {
                out.push_str(line);
                out.push('\n');
            }
        };
        if let Ok(used) = self.used.lock() {
            for h in used.iter() {
                if let Some(line) = self.stored.get(h) {
                    add(*h, line);
                }
            }
        }
        if let Ok(made) = self.made.lock() {
            for (h, line) in made.iter() {
                add(*h, line);
            }
        }
        out.into_bytes()
    }

    /// How many texts this run parsed afresh.
    pub fn misses(&self) -> usize {
        self.misses.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The rules of `text`, if cached.
    pub(crate) fn get(&self, text: &str) -> Option<Vec<SigmaRule>> {
        let h = hash(text);
        let line = self.stored.get(&h)?;
        let entry: Entry = serde_json::from_str(line).ok()?;
        let rules: Option<Vec<SigmaRule>> = entry.r.into_iter().map(CRule::into_rule).collect();
        let rules = rules?;
        if let Ok(mut u) = self.used.lock() {
            u.push(h);
        }
        Some(rules)
    }

    /// Remembers what `text` parsed to (detection rules only), if it reads back the same.
    pub(crate) fn put(&self, text: &str, rules: &[SigmaRule]) {
        self.misses
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(r) = rules
            .iter()
            .map(CRule::from_rule)
            .collect::<Option<Vec<_>>>()
        else {
            return;
        };
        let h = hash(text);
        let Ok(line) = serde_json::to_string(&Entry {
            h: format!("{h:016x}"),
            r,
        }) else {
            return;
        };
        let back: Option<Vec<SigmaRule>> = serde_json::from_str::<Entry>(&line)
            .ok()
            .and_then(|e| e.r.into_iter().map(CRule::into_rule).collect());
        if back.as_deref() == Some(rules)
            && let Ok(mut m) = self.made.lock()
        {
            m.push((h, line));
        }
    }
}

impl std::fmt::Debug for RuleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleCache")
            .field("stored", &self.stored.len())
            .field("misses", &self.misses())
            .finish_non_exhaustive()
    }
}

/// FNV-1a over the text, with its length folded in: stable across runs and builds.
fn hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ (text.len() as u64).rotate_left(32)
}

#[derive(Serialize, Deserialize)]
struct Entry {
    h: String,
    r: Vec<CRule>,
}

/// `SigmaRule`, field for field.
#[derive(Serialize, Deserialize)]
struct CRule {
    title: String,
    logsource: LogSource,
    named: Vec<(String, CDetection)>,
    conditions: Vec<ConditionExpr>,
    condition_strings: Vec<String>,
    timeframe: Option<String>,
    sigma_version: Option<u32>,
    id: Option<String>,
    name: Option<String>,
    related: Vec<Related>,
    taxonomy: Option<String>,
    status: Option<Status>,
    description: Option<String>,
    license: Option<String>,
    author: Option<String>,
    references: Vec<String>,
    date: Option<String>,
    modified: Option<String>,
    fields: Vec<String>,
    falsepositives: Vec<String>,
    level: Option<Level>,
    tags: Vec<String>,
    scope: Vec<String>,
    custom_attributes: Vec<(String, yaml_serde::Value)>,
}

#[derive(Serialize, Deserialize)]
enum CDetection {
    AllOf(Vec<CItem>),
    AnyOf(Vec<CDetection>),
    Keywords(Vec<CValue>),
    And(Vec<CDetection>),
}

#[derive(Serialize, Deserialize)]
struct CItem {
    field: Option<String>,
    modifiers: Vec<String>,
    values: Vec<CValue>,
}

#[derive(Serialize, Deserialize)]
enum CValue {
    S(Vec<CPart>, String),
    I(i64),
    F(f64),
    B(bool),
    N,
}

#[derive(Serialize, Deserialize)]
enum CPart {
    P(String),
    Many,
    One,
}

impl CRule {
    /// `None` for what the mirror does not hold (array and conditional detections).
    fn from_rule(r: &SigmaRule) -> Option<CRule> {
        Some(CRule {
            title: r.title.clone(),
            logsource: r.logsource.clone(),
            named: r
                .detection
                .named
                .iter()
                .map(|(k, d)| Some((k.clone(), CDetection::from(d)?)))
                .collect::<Option<_>>()?,
            conditions: r.detection.conditions.clone(),
            condition_strings: r.detection.condition_strings.clone(),
            timeframe: r.detection.timeframe.clone(),
            sigma_version: r.sigma_version,
            id: r.id.clone(),
            name: r.name.clone(),
            related: r.related.clone(),
            taxonomy: r.taxonomy.clone(),
            status: r.status,
            description: r.description.clone(),
            license: r.license.clone(),
            author: r.author.clone(),
            references: r.references.clone(),
            date: r.date.clone(),
            modified: r.modified.clone(),
            fields: r.fields.clone(),
            falsepositives: r.falsepositives.clone(),
            level: r.level,
            tags: r.tags.clone(),
            scope: r.scope.clone(),
            custom_attributes: r
                .custom_attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    fn into_rule(self) -> Option<SigmaRule> {
        Some(SigmaRule {
            title: self.title,
            logsource: self.logsource,
            detection: Detections {
                named: self
                    .named
                    .into_iter()
                    .map(|(k, d)| Some((k, d.into_detection()?)))
                    .collect::<Option<_>>()?,
                conditions: self.conditions,
                condition_strings: self.condition_strings,
                timeframe: self.timeframe,
            },
            sigma_version: self.sigma_version,
            id: self.id,
            name: self.name,
            related: self.related,
            taxonomy: self.taxonomy,
            status: self.status,
            description: self.description,
            license: self.license,
            author: self.author,
            references: self.references,
            date: self.date,
            modified: self.modified,
            fields: self.fields,
            falsepositives: self.falsepositives,
            level: self.level,
            tags: self.tags,
            scope: self.scope,
            custom_attributes: self.custom_attributes.into_iter().collect(),
        })
    }
}

impl CDetection {
    fn from(d: &Detection) -> Option<CDetection> {
        Some(match d {
            Detection::AllOf(items) => {
                CDetection::AllOf(items.iter().map(CItem::from).collect::<Option<_>>()?)
            }
            Detection::AnyOf(ds) => {
                CDetection::AnyOf(ds.iter().map(CDetection::from).collect::<Option<_>>()?)
            }
            Detection::And(ds) => {
                CDetection::And(ds.iter().map(CDetection::from).collect::<Option<_>>()?)
            }
            Detection::Keywords(vs) => CDetection::Keywords(vs.iter().map(CValue::from).collect()),
            Detection::ArrayMatch { .. } | Detection::Conditional { .. } => return None,
        })
    }

    fn into_detection(self) -> Option<Detection> {
        Some(match self {
            CDetection::AllOf(items) => Detection::AllOf(
                items
                    .into_iter()
                    .map(CItem::into_item)
                    .collect::<Option<_>>()?,
            ),
            CDetection::AnyOf(ds) => Detection::AnyOf(
                ds.into_iter()
                    .map(CDetection::into_detection)
                    .collect::<Option<_>>()?,
            ),
            CDetection::And(ds) => Detection::And(
                ds.into_iter()
                    .map(CDetection::into_detection)
                    .collect::<Option<_>>()?,
            ),
            CDetection::Keywords(vs) => {
                Detection::Keywords(vs.into_iter().map(CValue::into_value).collect())
            }
        })
    }
}

impl CItem {
    fn from(i: &DetectionItem) -> Option<CItem> {
        Some(CItem {
            field: i.field.name.clone(),
            modifiers: i
                .field
                .modifiers
                .iter()
                .map(|m| match serde_json::to_value(m) {
                    Ok(serde_json::Value::String(s)) => Some(s),
                    _ => None,
                })
                .collect::<Option<_>>()?,
            values: i.values.iter().map(CValue::from).collect(),
        })
    }

    fn into_item(self) -> Option<DetectionItem> {
        Some(DetectionItem {
            field: FieldSpec::new(
                self.field,
                self.modifiers
                    .iter()
                    .map(|m| m.parse::<Modifier>().ok())
                    .collect::<Option<_>>()?,
            ),
            values: self.values.into_iter().map(CValue::into_value).collect(),
        })
    }
}

impl CValue {
    fn from(v: &SigmaValue) -> CValue {
        match v {
            SigmaValue::String(s) => CValue::S(
                s.parts
                    .iter()
                    .map(|p| match p {
                        StringPart::Plain(t) => CPart::P(t.clone()),
                        StringPart::Special(SpecialChar::WildcardMulti) => CPart::Many,
                        StringPart::Special(SpecialChar::WildcardSingle) => CPart::One,
                    })
                    .collect(),
                s.original.clone(),
            ),
            SigmaValue::Integer(i) => CValue::I(*i),
            SigmaValue::Float(f) => CValue::F(*f),
            SigmaValue::Bool(b) => CValue::B(*b),
            SigmaValue::Null => CValue::N,
        }
    }

    fn into_value(self) -> SigmaValue {
        match self {
            CValue::S(parts, original) => SigmaValue::String(SigmaString {
                parts: parts
                    .into_iter()
                    .map(|p| match p {
                        CPart::P(t) => StringPart::Plain(t),
                        CPart::Many => StringPart::Special(SpecialChar::WildcardMulti),
                        CPart::One => StringPart::Special(SpecialChar::WildcardSingle),
                    })
                    .collect(),
                original,
            }),
            CValue::I(i) => SigmaValue::Integer(i),
            CValue::F(f) => SigmaValue::Float(f),
            CValue::B(b) => SigmaValue::Bool(b),
            CValue::N => SigmaValue::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RuleText, parse_all, parse_all_cached};

    const RULE: &str = r#"
title: Many Shapes
id: 5c1e0000-0000-0000-0000-000000000001
status: test
description: modifiers, wildcards, numbers, keywords and a custom attribute
references: [https://example.org]
author: riposte
date: 2026-12-07
tags: [attack.execution, attack.t1059.001]
logsource: {product: windows, category: process_creation}
detection:
  sel_img:
    Image|endswith: ['\powershell.exe', '\pwsh.exe']
    CommandLine|windash|contains: ' -enc '
  sel_b64:
    CommandLine|base64offset|contains: 'IEX'
  sel_re:
    ParentImage|re: '(?i)\\w+\.exe$'
    User|cased: SYSTEM
  sel_num:
    EventID: [1, 4688]
    IntegrityLevel: null
    Wild: 'a*b?c\*'
  keywords: [mimikatz, 'sekurlsa::*']
  condition: 1 of sel_* or keywords
falsepositives: [none]
level: high
x-custom:
  nested: [1, 2.5, true]
"#;

    #[test]
    fn a_cached_rule_reads_back_as_parsed_and_a_changed_text_misses() {
        let texts = [RuleText {
            name: "many.yml".into(),
            text: RULE.into(),
        }];
        let parsed = parse_all(&texts, 1);
        assert_eq!(parsed.rules.len(), 1, "{:?}", parsed.refusals);
        let cold = RuleCache::new();
        let first = parse_all_cached(&texts, 1, Some(&cold));
        assert_eq!(cold.misses(), 1);
        let warm = RuleCache::from_bytes(&cold.to_bytes());
        let second = parse_all_cached(&texts, 1, Some(&warm));
        assert_eq!(warm.misses(), 0, "the rule should come from the cache");
        assert_eq!(first.rules[0].1, parsed.rules[0].1);
        assert_eq!(second.rules[0].1, parsed.rules[0].1);
        let changed = [RuleText {
            name: "many.yml".into(),
            text: RULE.replace("level: high", "level: low"),
        }];
        let third = parse_all_cached(&changed, 1, Some(&warm));
        assert_eq!(warm.misses(), 1);
        assert_eq!(third.rules[0].1.level, Some(Level::Low));
    }

    #[test]
    fn other_formats_and_garbage_read_as_empty() {
        assert!(
            RuleCache::from_bytes(b"something else\n{}")
                .stored
                .is_empty()
        );
        let c = RuleCache::from_bytes(format!("{HEADER}\n{{\"h\":\"zz\"}}\nnot json\n").as_bytes());
        assert!(c.stored.is_empty());
        let texts = [RuleText {
            name: "many.yml".into(),
            text: RULE.into(),
        }];
        // A line with the right hash but a body that does not read is a miss, not an error.
        let h = hash(RULE);
        let c =
            RuleCache::from_bytes(format!("{HEADER}\n{{\"h\":\"{h:016x}\",\"r\":7}}\n").as_bytes());
        assert_eq!(parse_all_cached(&texts, 1, Some(&c)).rules.len(), 1);
        assert_eq!(c.misses(), 1);
    }
}
