//! Rule texts in, parsed Sigma documents out, on all cores; every document that cannot be used
//! becomes a [`Refusal`] naming its file and the reason.

use std::sync::atomic::{AtomicUsize, Ordering};

use rsigma_parser::{CorrelationRule, SigmaRule, parse_sigma_yaml};
use serde::Serialize;

use crate::cache::RuleCache;

/// One rule file's text, named as the caller wants it reported (usually its path).
#[derive(Debug, Clone)]
pub struct RuleText {
    pub name: String,
    pub text: String,
}

/// A rule (or a whole file) that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub file: String,
    /// The rule's title, when the document got that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            Some(r) => write!(f, "{}: rule {r:?}: {}", self.file, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

/// What the texts held.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Detection rules with the index of the text they came from.
    pub rules: Vec<(usize, SigmaRule)>,
    /// Correlation rules with the index of their text.
    pub correlations: Vec<(usize, CorrelationRule)>,
    pub refusals: Vec<Refusal>,
}

/// Parses every text on up to `threads` threads; the result is in input order.
pub fn parse_all(texts: &[RuleText], threads: usize) -> Parsed {
    parse_all_cached(texts, threads, None)
}

/// [`parse_all`], taking a text's rules from `cache` when it holds them and adding to it the
/// texts parsed afresh.
pub fn parse_all_cached(texts: &[RuleText], threads: usize, cache: Option<&RuleCache>) -> Parsed {
    let per_text = parallel_map(texts, threads, |i, t| match cache {
        None => parse_one(i, t),
        Some(c) => match c.get(&t.text) {
            Some(rules) if !rules.is_empty() => Parsed {
                rules: rules.into_iter().map(|r| (i, r)).collect(),
                ..Parsed::default()
            },
            _ => {
                let p = parse_one(i, t);
                if p.correlations.is_empty() && p.refusals.is_empty() && !p.rules.is_empty() {
                    let rules: Vec<SigmaRule> = p.rules.iter().map(|(_, r)| r.clone()).collect();
                    c.put(&t.text, &rules);
                }
                p
            }
        },
    });
    let mut out = Parsed::default();
    for p in per_text {
        out.rules.extend(p.rules);
        out.correlations.extend(p.correlations);
        out.refusals.extend(p.refusals);
    }
    out
}

fn parse_one(index: usize, t: &RuleText) -> Parsed {
    let mut out = Parsed::default();
    match parse_sigma_yaml(&t.text) {
        Ok(c) => {
            for e in c.errors {
                out.refusals.push(Refusal {
                    file: t.name.clone(),
                    rule: None,
                    reason: e,
                });
            }
            for f in c.filters {
                out.refusals.push(Refusal {
                    file: t.name.clone(),
                    rule: Some(f.title),
                    reason: "Sigma filter documents are not supported".into(),
                });
            }
            out.rules.extend(c.rules.into_iter().map(|r| (index, r)));
            out.correlations
                .extend(c.correlations.into_iter().map(|r| (index, r)));
        }
        Err(e) => out.refusals.push(Refusal {
            file: t.name.clone(),
            rule: None,
            reason: e.to_string(),
        }),
    }
    if out.rules.is_empty() && out.correlations.is_empty() && out.refusals.is_empty() {
        out.refusals.push(Refusal {
            file: t.name.clone(),
            rule: None,
            reason: "no Sigma rule in this file".into(),
        });
    }
    out
}

/// `f` over every item on up to `threads` scoped threads (work taken one item at a time, so
/// uneven items balance), results in input order. A panic in `f` is a bug and goes on up.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut parts: Vec<Vec<(usize, R)>> = std::thread::scope(|s| {
        let work = || {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(t) = items.get(i) else { break };
                mine.push((i, f(i, t)));
            }
            mine
        };
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut parts = vec![work()];
        for h in handles {
            match h.join() {
                Ok(p) => parts.push(p),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        parts
    });
    let mut all: Vec<(usize, R)> = parts.drain(..).flatten().collect();
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str, text: &str) -> RuleText {
        RuleText {
            name: name.into(),
            text: text.into(),
        }
    }

    #[test]
    fn refusals_name_the_file() {
        let good = "title: A\nlogsource: {product: windows}\ndetection:\n  sel: {EventID: 1}\n  condition: sel\n";
        let texts = [
            text("good.yml", good),
            text("broken.yml", "title: [unclosed"),
            text("empty.yml", ""),
        ];
        let p = parse_all(&texts, 2);
        assert_eq!(p.rules.len(), 1);
        assert_eq!(p.rules[0].0, 0);
        let files: Vec<&str> = p.refusals.iter().map(|r| r.file.as_str()).collect();
        assert_eq!(files, ["broken.yml", "empty.yml"], "{:?}", p.refusals);
    }

    #[test]
    fn parallel_map_keeps_order() {
        let v: Vec<u32> = (0..1000).collect();
        let out = parallel_map(&v, 4, |i, x| (i as u32) * 1000 + x);
        assert!(out.iter().enumerate().all(|(i, x)| *x == i as u32 * 1001));
    }
}
