//! Whether a compiled rule matches an event: `rsigma-eval`'s semantics, answered as a yes or
//! no, with each field's case-folded text made once per event instead of once per matcher.
//!
//! `rsigma_eval::evaluate_rule` folds the field's text anew in every case-insensitive matcher
//! (`str::to_lowercase`, an allocation each time), and on a match builds the whole result
//! (title, tags, matched fields), for every candidate rule reading `Image` or `CommandLine`
//! on a `process_creation` event (measured: ~7 % of an event's instructions). Here a
//! flattened Windows record's entries are folded at most once ([`View::folded`]), matchers
//! that compare folded text get it from there, and every other matcher, every value that is
//! not a string, keywords, and rules with array or conditional detections go to
//! `rsigma-eval` itself. A result is built (by `evaluate_rule`) only where one is needed: for
//! the correlation engine. `tests::agrees_with_rsigma` and the corpus test
//! `every_rule_agrees_with_rsigma_eval` hold the two to the same answers.

use std::borrow::Cow;
use std::collections::HashMap;

use regex::RegexSet;
use rsigma_eval::matcher::{CompiledMatcher, GroupMode, ascii_lowercase_cow};
use rsigma_eval::{CompiledDetection, CompiledDetectionItem, CompiledRule, Event, EventValue};
use rsigma_parser::{ConditionExpr, Quantifier};

use crate::view::View;

/// Whether this module can judge the rule alone (no array or conditional detection, whose
/// evaluation `rsigma-eval` keeps to itself).
pub(crate) fn judged_here(rule: &CompiledRule) -> bool {
    fn plain(d: &CompiledDetection) -> bool {
        match d {
            CompiledDetection::AllOf(_) | CompiledDetection::Keywords(_) => true,
            CompiledDetection::AnyOf(ds) | CompiledDetection::And(ds) => ds.iter().all(plain),
            CompiledDetection::ArrayMatch { .. } | CompiledDetection::Conditional { .. } => false,
        }
    }
    rule.detections.values().all(plain)
}

/// Does `rule` match? The same answer as `rsigma_eval::evaluate_rule(rule, view).is_some()`
/// for a rule [`judged_here`].
pub(crate) fn rule_matches(rule: &CompiledRule, view: &View<'_>) -> bool {
    rule.conditions
        .iter()
        .any(|c| condition(c, &rule.detections, view))
}

fn condition(
    expr: &ConditionExpr,
    detections: &HashMap<String, CompiledDetection>,
    view: &View<'_>,
) -> bool {
    match expr {
        ConditionExpr::Identifier(name) => detections.get(name).is_some_and(|d| detection(d, view)),
        ConditionExpr::And(es) => es.iter().all(|e| condition(e, detections, view)),
        ConditionExpr::Or(es) => es.iter().any(|e| condition(e, detections, view)),
        ConditionExpr::Not(e) => !condition(e, detections, view),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let mut selected = detections
                .iter()
                .filter(|(name, _)| pattern.matches_detection_name(name));
            match quantifier {
                Quantifier::Any => selected.any(|(_, d)| detection(d, view)),
                Quantifier::All => selected.all(|(_, d)| detection(d, view)),
                Quantifier::Count(required) => {
                    if *required == 0 {
                        return true;
                    }
                    let mut matched = 0u64;
                    selected.any(|(_, d)| {
                        if detection(d, view) {
                            matched += 1;
                        }
                        matched >= *required
                    })
                }
            }
        }
    }
}

fn detection(d: &CompiledDetection, view: &View<'_>) -> bool {
    match d {
        CompiledDetection::AllOf(items) => items.iter().all(|i| item(i, view)),
        CompiledDetection::AnyOf(ds) => ds.iter().any(|d| detection(d, view)),
        CompiledDetection::And(ds) => ds.iter().all(|d| detection(d, view)),
        CompiledDetection::Keywords(m) => m.matches_keyword(view),
        // Not judged here (see `judged_here`); never reached for such rules.
        CompiledDetection::ArrayMatch { .. } | CompiledDetection::Conditional { .. } => false,
    }
}

fn item(i: &CompiledDetectionItem, view: &View<'_>) -> bool {
    if let Some(expected) = i.exists {
        return match &i.field {
            Some(f) => view.get_field(f).is_some_and(|v| !v.is_null()) == expected,
            None => !expected,
        };
    }
    match &i.field {
        Some(f) => match view.get_field_at(f) {
            Some((value, at)) => matcher(&i.matcher, &value, at, view),
            None => matches!(i.matcher, CompiledMatcher::Null),
        },
        None => i.matcher.matches_keyword(view),
    }
}

/// `m.matches(value, view)`, with the folded text of a string value taken from the view.
fn matcher(
    m: &CompiledMatcher,
    value: &EventValue<'_>,
    at: Option<usize>,
    view: &View<'_>,
) -> bool {
    let EventValue::Str(s) = value else {
        return m.matches(value, view);
    };
    let fold = || -> Cow<'_, str> {
        match at.and_then(|i| view.folded(i)) {
            Some(f) => Cow::Borrowed(f),
            None => ascii_lowercase_cow(s),
        }
    };
    match m {
        CompiledMatcher::Exact {
            value,
            case_insensitive: true,
        } => fold() == value.as_str(),
        CompiledMatcher::Contains {
            value,
            case_insensitive: true,
        } => fold().contains(value.as_str()),
        CompiledMatcher::StartsWith {
            value,
            case_insensitive: true,
        } => fold().starts_with(value.as_str()),
        CompiledMatcher::EndsWith {
            value,
            case_insensitive: true,
        } => fold().ends_with(value.as_str()),
        CompiledMatcher::AhoCorasickSet {
            automaton,
            case_insensitive: true,
            ..
        } => automaton.is_match(fold().as_ref()),
        CompiledMatcher::CaseInsensitiveGroup { children, mode } => {
            let folded = fold();
            match mode {
                GroupMode::Any => children.iter().any(|c| pre_folded(c, &folded)),
                GroupMode::All => children.iter().all(|c| pre_folded(c, &folded)),
            }
        }
        CompiledMatcher::AnyOf(ms) => ms.iter().any(|m| matcher(m, value, at, view)),
        CompiledMatcher::AllOf(ms) => ms.iter().all(|m| matcher(m, value, at, view)),
        CompiledMatcher::Not(inner) => !matcher(inner, value, at, view),
        other => other.matches(value, view),
    }
}

/// `rsigma-eval`'s matching of a group member on text folded already (its
/// `matches_pre_lowered`, which it keeps to itself).
fn pre_folded(m: &CompiledMatcher, folded: &str) -> bool {
    match m {
        CompiledMatcher::Contains {
            value,
            case_insensitive: true,
        } => folded.contains(value.as_str()),
        CompiledMatcher::StartsWith {
            value,
            case_insensitive: true,
        } => folded.starts_with(value.as_str()),
        CompiledMatcher::EndsWith {
            value,
            case_insensitive: true,
        } => folded.ends_with(value.as_str()),
        CompiledMatcher::Exact {
            value,
            case_insensitive: true,
        } => folded == value,
        CompiledMatcher::Regex(re) => re.is_match(folded),
        CompiledMatcher::AhoCorasickSet {
            automaton,
            case_insensitive: true,
            ..
        } => automaton.is_match(folded),
        CompiledMatcher::RegexSetMatch { set, mode } => regex_set(set, *mode, folded),
        CompiledMatcher::Not(inner) => !pre_folded(inner, folded),
        CompiledMatcher::AnyOf(ms) => ms.iter().any(|m| pre_folded(m, folded)),
        CompiledMatcher::AllOf(ms) => ms.iter().all(|m| pre_folded(m, folded)),
        CompiledMatcher::CaseInsensitiveGroup { children, mode } => match mode {
            GroupMode::Any => children.iter().any(|c| pre_folded(c, folded)),
            GroupMode::All => children.iter().all(|c| pre_folded(c, folded)),
        },
        // `rsigma-eval` answers no for anything else in a group (its optimiser never puts
        // anything else there).
        _ => false,
    }
}

fn regex_set(set: &RegexSet, mode: GroupMode, s: &str) -> bool {
    match mode {
        GroupMode::Any => set.is_match(s),
        GroupMode::All => set.matches(s).iter().count() == set.len(),
    }
}
