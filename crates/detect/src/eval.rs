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

use memchr::memmem::Finder;
use regex::RegexSet;
use rsigma_eval::matcher::{CompiledMatcher, GroupMode, ascii_lowercase_cow};
use rsigma_eval::{CompiledDetection, CompiledDetectionItem, CompiledRule, Event, EventValue};
use rsigma_parser::{ConditionExpr, Quantifier};

use crate::view::View;

/// A rule as this module judges it: its detections in a vector and its conditions with every
/// detection name resolved to a position once, at load (judging hashed each name per event
/// with `rsigma-eval`'s SipHash map, and matched each `1 of selection_*` pattern against every
/// detection name per event).
pub(crate) struct Judge {
    detections: Vec<Det>,
    conditions: Vec<Cond>,
}

/// A detection as judged here: `rsigma-eval`'s, with each item's matching of string values
/// prepared ([`Prepared`]).
enum Det {
    AllOf(Vec<Item>),
    AnyOf(Vec<Det>),
    And(Vec<Det>),
    Keywords(CompiledMatcher),
}

struct Item {
    field: Option<String>,
    exists: Option<bool>,
    /// For values that are not strings, and keyword items.
    matcher: CompiledMatcher,
    /// For string values.
    text: Prepared,
}

/// A matcher prepared for string values: every case-insensitive substring test given a
/// searcher built once at load (`str::contains` sets up its Two-Way searcher on every call:
/// ~8 % of judging's instructions). Read on a field's value ([`text`], as [`matcher`] reads
/// it) or, inside a case-insensitive group, on the folded text ([`Prepared::on_folded`], as
/// [`pre_folded`] reads it).
enum Prepared {
    Contains(Box<Finder<'static>>),
    AnyOf(Vec<Prepared>),
    AllOf(Vec<Prepared>),
    Not(Box<Prepared>),
    /// A case-insensitive group: its members on the folded text.
    Group(Vec<Prepared>, GroupMode),
    Plain(CompiledMatcher),
}

impl Det {
    fn new(d: &CompiledDetection) -> Option<Det> {
        Some(match d {
            CompiledDetection::AllOf(items) => {
                // All must hold, so the order is free: the items likeliest to fail cheaply
                // first (a substring of a path or command line before the `EventID` every
                // candidate shares).
                let mut items: Vec<&CompiledDetectionItem> = items.iter().collect();
                items.sort_by_key(|i| rank(i));
                Det::AllOf(
                    items
                        .into_iter()
                        .map(|i| Item {
                            field: i.field.clone(),
                            exists: i.exists,
                            matcher: i.matcher.clone(),
                            text: Prepared::new(&i.matcher),
                        })
                        .collect(),
                )
            }
            CompiledDetection::AnyOf(ds) => {
                Det::AnyOf(ds.iter().map(Det::new).collect::<Option<_>>()?)
            }
            CompiledDetection::And(ds) => Det::And(ds.iter().map(Det::new).collect::<Option<_>>()?),
            CompiledDetection::Keywords(m) => Det::Keywords(m.clone()),
            CompiledDetection::ArrayMatch { .. } | CompiledDetection::Conditional { .. } => {
                return None;
            }
        })
    }
}

/// Where an item goes in its detection's order (lower first): literal substring tests, then
/// exact text, then numbers and booleans (`EventID`: what the candidates have in common),
/// then regexes and everything else, then whole-event keywords and existence tests.
fn rank(i: &CompiledDetectionItem) -> u8 {
    fn matcher(m: &CompiledMatcher) -> u8 {
        match m {
            CompiledMatcher::Contains { .. }
            | CompiledMatcher::StartsWith { .. }
            | CompiledMatcher::EndsWith { .. }
            | CompiledMatcher::AhoCorasickSet { .. }
            | CompiledMatcher::CaseInsensitiveGroup { .. } => 0,
            CompiledMatcher::Exact { .. } => 1,
            CompiledMatcher::NumericEq(_) | CompiledMatcher::BoolEq(_) | CompiledMatcher::Null => 2,
            CompiledMatcher::AnyOf(ms) => ms.iter().map(matcher).max().unwrap_or(3),
            _ => 3,
        }
    }
    match (&i.field, i.exists) {
        (_, Some(_)) => 5,
        (None, None) => 4,
        (Some(_), None) => matcher(&i.matcher),
    }
}

impl Prepared {
    fn new(m: &CompiledMatcher) -> Prepared {
        match m {
            CompiledMatcher::Contains {
                value,
                case_insensitive: true,
            } => Prepared::Contains(Box::new(Finder::new(value.as_bytes()).into_owned())),
            CompiledMatcher::AnyOf(ms) => Prepared::AnyOf(ms.iter().map(Prepared::new).collect()),
            CompiledMatcher::AllOf(ms) => Prepared::AllOf(ms.iter().map(Prepared::new).collect()),
            CompiledMatcher::Not(inner) => Prepared::Not(Box::new(Prepared::new(inner))),
            CompiledMatcher::CaseInsensitiveGroup { children, mode } => {
                Prepared::Group(children.iter().map(Prepared::new).collect(), *mode)
            }
            other => Prepared::Plain(other.clone()),
        }
    }

    /// On folded text, as [`pre_folded`] matches a group member.
    fn on_folded(&self, folded: &str) -> bool {
        match self {
            Prepared::Contains(f) => f.find(folded.as_bytes()).is_some(),
            Prepared::AnyOf(ms) => ms.iter().any(|m| m.on_folded(folded)),
            Prepared::AllOf(ms) => ms.iter().all(|m| m.on_folded(folded)),
            Prepared::Not(inner) => !inner.on_folded(folded),
            Prepared::Group(children, mode) => match mode {
                GroupMode::Any => children.iter().any(|c| c.on_folded(folded)),
                GroupMode::All => children.iter().all(|c| c.on_folded(folded)),
            },
            Prepared::Plain(m) => pre_folded(m, folded),
        }
    }
}

/// A condition with its detections as positions in [`Judge::detections`].
enum Cond {
    Detection(usize),
    /// An identifier naming no detection: never true (as in `rsigma-eval`).
    Missing,
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// `1 of …` / `any of …`: the selected detections, any of them.
    Any(Vec<usize>),
    /// `all of …` (vacuously true when nothing is selected).
    All(Vec<usize>),
    /// `N of …` with N ≥ 1.
    AtLeast(Vec<usize>, u64),
}

impl Judge {
    /// The rule as judged here, or `None` when it has an array or conditional detection,
    /// whose evaluation `rsigma-eval` keeps to itself.
    pub(crate) fn new(rule: &CompiledRule) -> Option<Judge> {
        let names: Vec<&String> = rule.detections.keys().collect();
        let detections = names
            .iter()
            .map(|n| rule.detections.get(*n).and_then(Det::new))
            .collect::<Option<Vec<Det>>>()?;
        let conditions = rule.conditions.iter().map(|c| resolve(c, &names)).collect();
        Some(Judge {
            detections,
            conditions,
        })
    }

    /// Does the rule match? The same answer as
    /// `rsigma_eval::evaluate_rule(rule, view).is_some()`.
    pub(crate) fn matches(&self, view: &View<'_>) -> bool {
        self.conditions.iter().any(|c| self.holds(c, view))
    }

    fn holds(&self, c: &Cond, view: &View<'_>) -> bool {
        let det = |i: &usize| self.detections.get(*i).is_some_and(|d| detection(d, view));
        match c {
            Cond::Detection(i) => det(i),
            Cond::Missing => false,
            Cond::And(cs) => cs.iter().all(|c| self.holds(c, view)),
            Cond::Or(cs) => cs.iter().any(|c| self.holds(c, view)),
            Cond::Not(c) => !self.holds(c, view),
            Cond::Any(ds) => ds.iter().any(det),
            Cond::All(ds) => ds.iter().all(det),
            Cond::AtLeast(ds, required) => {
                let mut matched = 0u64;
                ds.iter().any(|i| {
                    if det(i) {
                        matched += 1;
                    }
                    matched >= *required
                })
            }
        }
    }
}

fn resolve(expr: &ConditionExpr, names: &[&String]) -> Cond {
    let position = |name: &str| names.iter().position(|n| n.as_str() == name);
    match expr {
        ConditionExpr::Identifier(name) => position(name).map_or(Cond::Missing, Cond::Detection),
        ConditionExpr::And(es) => Cond::And(es.iter().map(|e| resolve(e, names)).collect()),
        ConditionExpr::Or(es) => Cond::Or(es.iter().map(|e| resolve(e, names)).collect()),
        ConditionExpr::Not(e) => Cond::Not(Box::new(resolve(e, names))),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let selected: Vec<usize> = (0..names.len())
                .filter(|&i| pattern.matches_detection_name(names[i]))
                .collect();
            match quantifier {
                Quantifier::Any => Cond::Any(selected),
                Quantifier::All => Cond::All(selected),
                // `0 of …` is vacuously true: all of nothing.
                Quantifier::Count(0) => Cond::All(Vec::new()),
                Quantifier::Count(n) => Cond::AtLeast(selected, *n),
            }
        }
    }
}

fn detection(d: &Det, view: &View<'_>) -> bool {
    match d {
        Det::AllOf(items) => items.iter().all(|i| item(i, view)),
        Det::AnyOf(ds) => ds.iter().any(|d| detection(d, view)),
        Det::And(ds) => ds.iter().all(|d| detection(d, view)),
        Det::Keywords(m) => m.matches_keyword(view),
    }
}

fn item(i: &Item, view: &View<'_>) -> bool {
    if let Some(expected) = i.exists {
        return match &i.field {
            Some(f) => view.get_field(f).is_some_and(|v| !v.is_null()) == expected,
            None => !expected,
        };
    }
    match &i.field {
        Some(f) => match view.get_field_at(f) {
            Some((value @ EventValue::Str(_), at)) => text(&i.text, &value, at, view),
            Some((value, at)) => matcher(&i.matcher, &value, at, view),
            None => matches!(i.matcher, CompiledMatcher::Null),
        },
        None => i.matcher.matches_keyword(view),
    }
}

/// [`matcher`] on a string value, with the prepared substring searchers.
fn text(t: &Prepared, value: &EventValue<'_>, at: Option<usize>, view: &View<'_>) -> bool {
    let EventValue::Str(s) = value else {
        return false;
    };
    let fold = || -> Cow<'_, str> {
        match at.and_then(|i| view.folded(i)) {
            Some(f) => Cow::Borrowed(f),
            None => ascii_lowercase_cow(s),
        }
    };
    match t {
        Prepared::Contains(f) => f.find(fold().as_bytes()).is_some(),
        Prepared::AnyOf(ts) => ts.iter().any(|t| text(t, value, at, view)),
        Prepared::AllOf(ts) => ts.iter().all(|t| text(t, value, at, view)),
        Prepared::Not(inner) => !text(inner, value, at, view),
        Prepared::Group(..) => t.on_folded(&fold()),
        Prepared::Plain(m) => matcher(m, value, at, view),
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
