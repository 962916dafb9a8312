//! One logsource group's compiled rules, and which of them an event can possibly match.
//!
//! This replaces `rsigma-eval`'s `Engine` for detection (matching stays `rsigma-eval`'s:
//! every candidate is judged by [`rsigma_eval::evaluate_rule`]). The engine's own candidate
//! index builds a DFA Aho-Corasick automaton per field over every needle of the group and a
//! bloom index beside it, on every build, with no switch to choose otherwise: on SigmaHQ's
//! `process_creation` (1,629 rules) that build was most of a cold scan's time and ~120 MiB of
//! its peak memory. Here the automata are built with `aho-corasick`'s own choice of kind (a
//! contiguous NFA for the large sets), which builds in a fraction of the time and memory and
//! searches within a small factor of the DFA.
//!
//! Each rule is reduced to its *gates*: conditions an event must meet for the rule to match
//! (a field present, a field equal to a literal, a field containing a literal, a field equal
//! to an integer as the numeric matchers read it, some string of the event containing a
//! literal), at least one of which holds whenever the rule
//! matches. An event is checked against the gates of the fields it has, and only the rules
//! with a gate met are evaluated. A rule with no sound gate is evaluated on every event.
//! The reduction may only ever lose selectivity, never a match: when in doubt a rule is open.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};
use rsigma_eval::matcher::{CompiledMatcher, GroupMode, ascii_lowercase_cow};
use rsigma_eval::{
    CompiledDetection, CompiledDetectionItem, CompiledRule, EvaluationResult, Event, EventValue,
    evaluate_rule,
};
use rsigma_parser::{ArrayQuantifier, ConditionExpr, Quantifier};

use crate::eval::Judge;
use crate::rules::parallel_map;
use crate::view::View;

/// A condition an event must meet for some rule to match.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Gate {
    /// The field's value (or one of its array members), folded, equals this text.
    Equals(String, String),
    /// The field's value (or one of its array members), folded, contains this text.
    Contains(String, String),
    /// The field's value (or one of its array members), read as a number the way
    /// `rsigma-eval`'s numeric matchers read it, equals this integer (|n| ≥ 2, see
    /// [`number_gate`]).
    Number(String, i64),
    /// Some string value of the event, folded, contains this text.
    Keyword(String),
    /// The field is present.
    Present(String),
}

impl Gate {
    /// How many events a gate lets through, roughly (lower = fewer).
    fn looseness(&self) -> u8 {
        match self {
            // A long literal inside a path or command line is rarer than an exact value
            // (`ObjectType: File`, `LogonType: 3`), which many events of a kind share.
            Gate::Contains(_, t) if t.len() >= 8 => 0,
            Gate::Equals(..) => 1,
            Gate::Contains(_, t) if t.len() >= 6 => 1,
            Gate::Contains(..) | Gate::Number(..) => 2,
            Gate::Keyword(t) if t.len() >= 6 => 3,
            Gate::Keyword(_) => 4,
            Gate::Present(_) => 5,
        }
    }
}

/// `None`: no sound gate (the rule must be evaluated on every event). `Some(gates)`: at least
/// one of `gates` holds whenever the expression holds.
type Gates = Option<Vec<Gate>>;

/// Any of several expressions may hold: each must bring gates, and all of them count.
fn any_of(parts: impl IntoIterator<Item = Gates>) -> Gates {
    let mut all = Vec::new();
    for p in parts {
        all.extend(p?);
    }
    Some(all)
}

/// All of several expressions must hold: the gates of any one of them suffice; take the
/// tightest.
fn all_of(parts: impl IntoIterator<Item = Gates>) -> Gates {
    parts
        .into_iter()
        .flatten()
        .filter(|g| !g.is_empty())
        .min_by_key(|g| score(g))
}

fn score(g: &[Gate]) -> (u8, usize) {
    (
        g.iter().map(Gate::looseness).max().unwrap_or(u8::MAX),
        g.len(),
    )
}

fn rule_gates(rule: &CompiledRule) -> Gates {
    if rule.conditions.is_empty() {
        return None;
    }
    let mut gates = any_of(rule.conditions.iter().map(|c| condition_gates(c, rule)))?;
    gates.sort();
    gates.dedup();
    (!gates.is_empty()).then_some(gates)
}

/// A rule's gates in two slots: for the rule to match, one gate of the first must hold and,
/// when there is a second, one of the second too. The two come from two parts the rule's
/// single condition needs together (`selection_img and selection_cli`, or two items of one
/// selection), the tightest two; a rule with several conditions, or one part with gates,
/// has one slot. `(None, _)`: no sound gate.
fn rule_slots(rule: &CompiledRule) -> (Gates, Option<Vec<Gate>>) {
    let [condition] = rule.conditions.as_slice() else {
        return (rule_gates(rule), None);
    };
    let mut parts = Vec::new();
    conjuncts(condition, rule, &mut parts);
    let mut parts: Vec<Vec<Gate>> = parts
        .into_iter()
        .flatten()
        .filter(|g| !g.is_empty())
        .collect();
    parts.sort_by_key(|g| score(g));
    let mut parts = parts.into_iter().map(|mut g| {
        g.sort();
        g.dedup();
        g
    });
    match parts.next() {
        Some(first) => (Some(first), parts.next()),
        None => (rule_gates(rule), None),
    }
}

/// The parts that must all hold for `c` to hold, each with its gates (`None`: no sound gate).
fn conjuncts(c: &ConditionExpr, rule: &CompiledRule, out: &mut Vec<Gates>) {
    match c {
        ConditionExpr::And(parts) => parts.iter().for_each(|p| conjuncts(p, rule, out)),
        ConditionExpr::Identifier(name) => match rule.detections.get(name) {
            Some(d) => detection_conjuncts(d, out),
            None => out.push(None),
        },
        ConditionExpr::Selector {
            quantifier: Quantifier::All,
            pattern,
        } => {
            let selected: Vec<&CompiledDetection> = rule
                .detections
                .iter()
                .filter(|(n, _)| pattern.matches_detection_name(n))
                .map(|(_, d)| d)
                .collect();
            if selected.is_empty() {
                out.push(None);
            }
            selected
                .into_iter()
                .for_each(|d| detection_conjuncts(d, out));
        }
        other => out.push(condition_gates(other, rule)),
    }
}

fn detection_conjuncts(d: &CompiledDetection, out: &mut Vec<Gates>) {
    match d {
        CompiledDetection::AllOf(items) if !items.is_empty() => {
            items.iter().for_each(|i| out.push(item_gates(i)));
        }
        CompiledDetection::And(ds) if !ds.is_empty() => {
            ds.iter().for_each(|d| detection_conjuncts(d, out));
        }
        other => out.push(detection_gates(other)),
    }
}

fn condition_gates(c: &ConditionExpr, rule: &CompiledRule) -> Gates {
    match c {
        ConditionExpr::Identifier(name) => detection_gates(rule.detections.get(name)?),
        ConditionExpr::And(parts) => all_of(parts.iter().map(|p| condition_gates(p, rule))),
        ConditionExpr::Or(parts) => any_of(parts.iter().map(|p| condition_gates(p, rule))),
        // A negation holds on events that lack what it names.
        ConditionExpr::Not(_) => None,
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let selected = rule
                .detections
                .iter()
                .filter(|(n, _)| pattern.matches_detection_name(n))
                .map(|(_, d)| detection_gates(d));
            match quantifier {
                // Vacuously true when nothing is selected or nothing is required.
                Quantifier::Count(0) => None,
                Quantifier::All => {
                    let all: Vec<Gates> = selected.collect();
                    if all.is_empty() { None } else { all_of(all) }
                }
                Quantifier::Any | Quantifier::Count(_) => any_of(selected),
            }
        }
    }
}

fn detection_gates(d: &CompiledDetection) -> Gates {
    match d {
        CompiledDetection::AllOf(items) if !items.is_empty() => {
            all_of(items.iter().map(item_gates))
        }
        CompiledDetection::AnyOf(ds) if !ds.is_empty() => any_of(ds.iter().map(detection_gates)),
        CompiledDetection::And(ds) if !ds.is_empty() => all_of(ds.iter().map(detection_gates)),
        CompiledDetection::Keywords(m) => matcher_gates(m, None),
        // `any`/`all` over an array need one member at least, so the array is there.
        CompiledDetection::ArrayMatch {
            field,
            quantifier: ArrayQuantifier::Any | ArrayQuantifier::All,
            ..
        } => Some(vec![Gate::Present(field.clone())]),
        _ => None,
    }
}

fn item_gates(item: &CompiledDetectionItem) -> Gates {
    let Some(field) = item.field.as_deref() else {
        return matcher_gates(&item.matcher, None);
    };
    match item.exists {
        Some(false) => return None,
        Some(true) => return Some(vec![Gate::Present(field.to_string())]),
        None => {}
    }
    // `rsigma-eval` judges an item on an absent field false, except for the null matcher.
    if matches!(item.matcher, CompiledMatcher::Null) {
        return None;
    }
    match matcher_gates(&item.matcher, Some(field)) {
        Some(g) if !g.is_empty() => Some(g),
        _ => Some(vec![Gate::Present(field.to_string())]),
    }
}

/// The literal as the index compares it (folded), or `None` if it cannot be folded the way
/// the haystack will be.
fn folded(text: &str, case_insensitive: bool) -> Option<String> {
    if text.is_empty() {
        None
    } else if case_insensitive {
        // The compiler stores case-insensitive literals folded already.
        Some(text.to_string())
    } else if text.is_ascii() {
        Some(text.to_ascii_lowercase())
    } else {
        None
    }
}

/// Gates of one matcher on `field` (`None`: anywhere in the event, as keywords match).
fn matcher_gates(m: &CompiledMatcher, field: Option<&str>) -> Gates {
    let contains = |t: &str, ci: bool| -> Gates {
        let t = folded(t, ci)?;
        Some(vec![match field {
            Some(f) => Gate::Contains(f.to_string(), t),
            None => Gate::Keyword(t),
        }])
    };
    match m {
        CompiledMatcher::Exact {
            value,
            case_insensitive,
        } => {
            let t = folded(value, *case_insensitive)?;
            Some(vec![match field {
                Some(f) => Gate::Equals(f.to_string(), t),
                None => Gate::Keyword(t),
            }])
        }
        CompiledMatcher::Contains {
            value,
            case_insensitive,
        }
        | CompiledMatcher::StartsWith {
            value,
            case_insensitive,
        }
        | CompiledMatcher::EndsWith {
            value,
            case_insensitive,
        } => contains(value, *case_insensitive),
        CompiledMatcher::AhoCorasickSet {
            needles,
            case_insensitive,
            ..
        } => any_of(needles.iter().map(|n| contains(n, *case_insensitive))),
        CompiledMatcher::AnyOf(cs) => any_of(cs.iter().map(|c| matcher_gates(c, field))),
        CompiledMatcher::AllOf(cs) => all_of(cs.iter().map(|c| matcher_gates(c, field))),
        CompiledMatcher::CaseInsensitiveGroup { children, mode } => {
            let parts = children.iter().map(|c| matcher_gates(c, field));
            match mode {
                GroupMode::Any => any_of(parts),
                GroupMode::All => all_of(parts),
            }
        }
        CompiledMatcher::NumericEq(n) => {
            Some(vec![Gate::Number(field?.to_string(), number_gate(*n)?)])
        }
        CompiledMatcher::Regex(re) => regex_gates(re.as_str(), field),
        // Several regexes of one item, merged by `rsigma-eval`'s optimiser.
        CompiledMatcher::RegexSetMatch { set, mode } => {
            let parts = set.patterns().iter().map(|p| regex_gates(p, field));
            match mode {
                GroupMode::Any => any_of(parts),
                GroupMode::All => all_of(parts),
            }
        }
        // Other numeric comparisons, CIDRs, expansions, time parts, negations, field
        // references: no literal is sure to appear as written; the item's presence gate is
        // what is left.
        _ => None,
    }
}

/// Gates of a regex (Sigma's `|re`, and wildcard values, which `rsigma-eval` compiles to
/// regexes): every match starts with one of the prefixes `regex-syntax` extracts, so a text
/// it matches contains one of them. The prefixes are compared with the folded haystack, so
/// each is folded char by char as the haystack is (`to_lowercase`: ASCII capitals, and the
/// Kelvin sign, become ASCII; `ſ`, which `(?i)s` matches, stays itself and is kept as a
/// needle of its own). `None` when the set is infinite, holds the empty prefix, or a prefix
/// has a capital sigma (whose lowercase depends on what follows it).
fn regex_gates(pattern: &str, field: Option<&str>) -> Gates {
    // A case-insensitive regex's prefixes multiply (`(?i)net use` has 96 spellings, and
    // Unicode adds `ſ` for every `s` and the Kelvin sign for every `k`) until the extractor
    // gives up, slowly. Taken case-sensitively and lowercased they say the same of the folded
    // haystack, except for those two characters, which `Needles::mark_folded` reads as `s`
    // and `k` as well. Field values only (keywords search the folded text as is).
    let needles = match (pattern.strip_prefix("(?i)"), field) {
        (Some(rest), Some(_)) => prefixes(rest, true)?,
        _ => prefixes(pattern, false)?,
    };
    let mut gates: Vec<Gate> = needles
        .into_iter()
        .map(|text| match field {
            Some(f) => Gate::Contains(f.to_string(), text),
            None => Gate::Keyword(text),
        })
        .collect();
    gates.sort();
    gates.dedup();
    (!gates.is_empty()).then_some(gates)
}

/// The lowercased prefixes of every match of `pattern` (`ascii`: only if they are ASCII).
fn prefixes(pattern: &str, ascii: bool) -> Option<Vec<String>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let seq = regex_syntax::hir::literal::Extractor::new().extract(&hir);
    let mut out = Vec::new();
    for lit in seq.literals()? {
        let text = std::str::from_utf8(lit.as_bytes()).ok()?;
        if text.is_empty() || text.contains('Σ') || (ascii && !text.is_ascii()) {
            return None;
        }
        out.push(text.to_lowercase());
    }
    Some(out)
}

/// `NumericEq(n)` as an index key. `rsigma-eval` matches a value `v` when `|v − n| < ε`
/// (`f64::EPSILON`); for an integral `n` with `2 ≤ |n| < 2⁵³` the doubles around `n` are at
/// least `2ε` apart, so that holds only for `v == n` exactly, and an exact integer key is
/// sound. Smaller or fractional `n` get no gate.
fn number_gate(n: f64) -> Option<i64> {
    const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    (n.fract() == 0.0 && n.abs() >= 2.0 && n.abs() < LIMIT).then_some(n as i64)
}

/// The integer keys a value can meet a [`Gate::Number`] by: each number the numeric matchers
/// read from it (integers, floats, text parsed as a float, array members) that is integral and
/// within `number_gate`'s range.
fn each_number(v: &EventValue<'_>, f: &mut dyn FnMut(i64)) {
    let mut key = |x: f64| {
        if let Some(k) = number_gate(x) {
            f(k);
        }
    };
    match v {
        EventValue::Int(i) => key(*i as f64),
        EventValue::Float(x) => key(*x),
        EventValue::Str(s) => {
            if let Ok(x) = s.parse::<f64>() {
                key(x);
            }
        }
        EventValue::Array(items) => items.iter().for_each(|i| each_number(i, f)),
        _ => {}
    }
}

/// An automaton over needles, with the rules each needle gates.
struct Needles {
    automaton: AhoCorasick,
    rules: Vec<Vec<u32>>,
    /// The needles ASCII-lowercased in a leftmost, case-sensitive automaton: unlike the
    /// overlapping, case-insensitive one it can use the SIMD (packed) prefilter. Asked first
    /// whether any needle occurs at all in an event's folded text ([`Needles::mark_values`]).
    any: Option<AhoCorasick>,
}

thread_local! {
    /// An event's string values, folded, for the keywords' quick reject (reused across events).
    static FOLDED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Needles {
    /// `quick_reject`: also build [`Needles::any`] (for needles searched over a whole event's
    /// values: keywords).
    fn build(map: &HashMap<String, Vec<u32>>, quick_reject: bool) -> Result<Needles, Vec<u32>> {
        let mut entries: Vec<(String, Vec<u32>)> =
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let any = if quick_reject {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostFirst)
                .build(entries.iter().map(|(n, _)| n.to_ascii_lowercase()))
                .ok()
        } else {
            None
        };
        let built = AhoCorasick::builder()
            // Overlapping search needs the standard semantics: a needle inside another
            // still gates its own rules.
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            // No prefilter: the haystacks are short field values full of the needles' first
            // bytes (`\`, `.`, `-`), where a prefilter hands back to the automaton at nearly
            // every byte; measured (callgrind, the stream bench): the field automata's search
            // 14.0 k → 5.1 k instructions per event with it off.
            .prefilter(false)
            .build(entries.iter().map(|(n, _)| n.as_bytes()));
        match built {
            Ok(automaton) => Ok(Needles {
                automaton,
                rules: entries.into_iter().map(|(_, r)| r).collect(),
                any,
            }),
            Err(_) => Err(entries.into_iter().flat_map(|(_, r)| r).collect()),
        }
    }

    /// [`Needles::mark`] over every string value of the event. The quick reject first folds
    /// the values as `mark` does (ASCII lowercase; other text `to_lowercase`, which leaves no
    /// ASCII capital) into one text and asks whether any lowercased needle occurs in it: a
    /// needle `mark` finds (ASCII case-insensitively) is found there too, so a miss means
    /// `mark` would mark nothing. Only on a hit does the overlapping search run.
    fn mark_values(&self, view: &View<'_>, set: &mut Candidates) {
        if let Some(any) = &self.any {
            let hit = FOLDED.with(|cell| match cell.try_borrow_mut() {
                Ok(mut scratch) => view.with_folded_values(&mut scratch, |t| any.is_match(t)),
                // Not reentrant; should it be borrowed, skip the reject (exact either way).
                Err(_) => true,
            });
            if !hit {
                return;
            }
        }
        view.visit_string_values(&mut |s| self.mark(s, set));
    }

    /// [`Needles::mark`] on text folded already (no ASCII capital; as `mark` folds).
    fn mark_folded(&self, folded: &str, set: &mut Candidates) {
        for m in self.automaton.find_overlapping_iter(folded) {
            if let Some(rs) = self.rules.get(m.pattern().as_usize()) {
                set.add_all(rs);
            }
        }
        // `ſ` is what a case-insensitive regex's `s` also matches, and lowercasing keeps it
        // (the Kelvin sign, `k`'s other spelling, lowercases to `k`): read as `s` too, so a
        // needle taken from such a regex ([`regex_gates`]) is found.
        if !folded.is_ascii() && folded.contains('ſ') {
            let plain = folded.replace('ſ', "s");
            for m in self.automaton.find_overlapping_iter(&plain) {
                if let Some(rs) = self.rules.get(m.pattern().as_usize()) {
                    set.add_all(rs);
                }
            }
        }
    }

    fn mark(&self, haystack: &str, set: &mut Candidates) {
        // The automaton folds ASCII; other text is folded first, as the matchers fold it.
        if haystack.is_ascii() {
            for m in self.automaton.find_overlapping_iter(haystack) {
                if let Some(rs) = self.rules.get(m.pattern().as_usize()) {
                    set.add_all(rs);
                }
            }
        } else {
            self.mark_folded(&haystack.to_lowercase(), set);
        }
    }
}

/// What the index knows of one field.
struct FieldGates {
    name: String,
    present: Vec<u32>,
    equals: foldhash::HashMap<String, Vec<u32>>,
    numbers: foldhash::HashMap<i64, Vec<u32>>,
    contains: Option<Needles>,
}

/// A gate's entry in the index: a rule position and its slot (see [`rule_slots`]), as
/// `position << 1 | slot`.
fn entry(pos: u32, slot: u32) -> u32 {
    pos << 1 | slot
}

/// Rule positions in a group as two bit sets, one per slot: a rule is a candidate when its
/// bit is set in both (rules with one slot start with the second set).
struct Candidates {
    bits: [Vec<u64>; 2],
}

impl Candidates {
    #[cfg(test)]
    fn new(n: usize) -> Candidates {
        Candidates {
            bits: [vec![0; n.div_ceil(64)], vec![0; n.div_ceil(64)]],
        }
    }

    /// Starting with `single` (the rules with one slot) in the second set.
    fn with_single(single: &[u64]) -> Candidates {
        Candidates {
            bits: [vec![0; single.len()], single.to_vec()],
        }
    }

    fn add_all(&mut self, rs: &[u32]) {
        for &r in rs {
            let (pos, slot) = ((r >> 1) as usize, (r & 1) as usize);
            if let Some(w) = self.bits[slot].get_mut(pos / 64) {
                *w |= 1 << (pos % 64);
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.bits[0]
            .iter()
            .zip(&self.bits[1])
            .enumerate()
            .flat_map(|(wi, (&a, &b))| {
                let mut w = a & b;
                std::iter::from_fn(move || {
                    if w == 0 {
                        return None;
                    }
                    let b = w.trailing_zeros() as usize;
                    w &= w - 1;
                    Some(wi * 64 + b)
                })
            })
    }

    /// Positions with a bit in either set (what some gate let through; tests only).
    #[cfg(test)]
    fn any(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.bits[0].len() * 64).filter(|&p| {
            self.bits
                .iter()
                .any(|b| b.get(p / 64).is_some_and(|w| w & (1 << (p % 64)) != 0))
        })
    }
}

/// A logsource group's compiled rules with their gates.
pub(crate) struct RuleGroup {
    rules: Vec<CompiledRule>,
    /// Per rule: judged by [`crate::eval`] (`None`: by `rsigma_eval::evaluate_rule`).
    judges: Vec<Option<Judge>>,
    /// Each rule's index in `Detector::rules`.
    ids: Vec<usize>,
    fields: Vec<FieldGates>,
    /// An event's top-level key → the fields in `fields` it can supply.
    by_key: foldhash::HashMap<String, Vec<u32>>,
    keywords: Option<Needles>,
    /// Entries ([`entry`]) whose slot holds on every event: rules with no sound gate, and
    /// those whose automaton could not be built.
    always: Vec<u32>,
    /// The rules with one slot, as a bit set (the second set's start).
    single: Vec<u64>,
}

impl RuleGroup {
    /// `threads`: for building the automata.
    pub(crate) fn new(compiled: Vec<(usize, CompiledRule)>, threads: usize) -> RuleGroup {
        let (ids, rules): (Vec<usize>, Vec<CompiledRule>) = compiled.into_iter().unzip();
        let mut g = RuleGroup {
            rules: Vec::new(),
            judges: rules.iter().map(Judge::new).collect(),
            ids,
            fields: Vec::new(),
            by_key: Default::default(),
            keywords: None,
            always: Vec::new(),
            single: vec![0; rules.len().div_ceil(64)],
        };
        let mut field_of: HashMap<String, usize> = HashMap::new();
        let mut contains: Vec<HashMap<String, Vec<u32>>> = Vec::new();
        let mut keywords: HashMap<String, Vec<u32>> = HashMap::new();
        for (pos, rule) in rules.iter().enumerate() {
            let (first, second) = rule_slots(rule);
            if second.is_none()
                && let Some(w) = g.single.get_mut(pos / 64)
            {
                *w |= 1 << (pos % 64);
            }
            let pos = pos as u32;
            let Some(first) = first else {
                g.always.push(entry(pos, 0));
                continue;
            };
            let slots = std::iter::once((0, first)).chain(second.map(|s| (1, s)));
            for (slot, gate) in slots.flat_map(|(slot, gs)| gs.into_iter().map(move |g| (slot, g)))
            {
                let e = entry(pos, slot);
                let (field, gate) = match gate {
                    Gate::Keyword(t) => {
                        keywords.entry(t).or_default().push(e);
                        continue;
                    }
                    Gate::Present(f) => (f, None),
                    Gate::Number(f, n) => (f, Some(Err(n))),
                    Gate::Equals(f, t) => (f, Some(Ok((true, t)))),
                    Gate::Contains(f, t) => (f, Some(Ok((false, t)))),
                };
                let fi = match field_of.get(&field) {
                    Some(&fi) => fi,
                    None => {
                        let fi = g.fields.len();
                        for key in event_keys(&field) {
                            g.by_key.entry(key).or_default().push(fi as u32);
                        }
                        field_of.insert(field.clone(), fi);
                        g.fields.push(FieldGates {
                            name: field,
                            present: Vec::new(),
                            equals: Default::default(),
                            numbers: Default::default(),
                            contains: None,
                        });
                        contains.push(HashMap::new());
                        fi
                    }
                };
                match gate {
                    None => g.fields[fi].present.push(e),
                    Some(Err(n)) => g.fields[fi].numbers.entry(n).or_default().push(e),
                    Some(Ok((true, t))) => g.fields[fi].equals.entry(t).or_default().push(e),
                    Some(Ok((false, t))) => contains[fi].entry(t).or_default().push(e),
                }
            }
        }
        // The automata (a field's `contains` needles; `None`: the keywords), built on all
        // threads, the largest first: building them was half of compiling a large group.
        type Job = (Option<usize>, HashMap<String, Vec<u32>>);
        let mut jobs: Vec<Job> = contains
            .into_iter()
            .enumerate()
            .filter(|(_, m)| !m.is_empty())
            .map(|(fi, m)| (Some(fi), m))
            .collect();
        if !keywords.is_empty() {
            jobs.push((None, keywords));
        }
        jobs.sort_by_key(|(_, m)| std::cmp::Reverse(m.len()));
        let built = parallel_map(&jobs, threads, |_, (fi, map)| {
            Needles::build(map, fi.is_none())
        });
        for ((fi, _), b) in jobs.iter().zip(built) {
            match (fi, b) {
                (Some(fi), Ok(n)) => g.fields[*fi].contains = Some(n),
                (None, Ok(n)) => g.keywords = Some(n),
                // An automaton that cannot be built gates nothing: its rules are open.
                (_, Err(rs)) => g.always.extend(rs),
            }
        }
        g.always.sort_unstable();
        g.always.dedup();
        g.rules = rules;
        g
    }

    /// Rules evaluated on every event (no sound gate).
    #[cfg(test)]
    pub(crate) fn open_rules(&self) -> usize {
        self.always.iter().filter(|e| *e & 1 == 0).count()
    }

    /// The rules of this group that match, as (index in `Detector::rules`, `rsigma-eval`'s
    /// result if `with_results`), in rule order.
    pub(crate) fn evaluate(
        &self,
        view: &View<'_>,
        with_results: bool,
        out: &mut Vec<(usize, Option<EvaluationResult>)>,
    ) {
        if self.rules.is_empty() {
            return;
        }
        let set = self.candidates(view);
        for pos in set.iter() {
            let (Some(rule), Some(&id)) = (self.rules.get(pos), self.ids.get(pos)) else {
                continue;
            };
            if let Some(Some(judge)) = self.judges.get(pos) {
                if judge.matches(view) {
                    out.push((
                        id,
                        if with_results {
                            evaluate_rule(rule, view)
                        } else {
                            None
                        },
                    ));
                }
            } else if let Some(r) = evaluate_rule(rule, view) {
                out.push((id, with_results.then_some(r)));
            }
        }
    }

    /// The rules the gates let through for one event: those with a gate met in each slot.
    fn candidates(&self, view: &View<'_>) -> Candidates {
        let mut set = Candidates::with_single(&self.single);
        set.add_all(&self.always);
        // A group that reads fewer fields than the event has looks each of them up; a larger
        // one goes through the event's keys.
        let complete = self.fields.len() > view.key_count()
            && view.visit_probe_keys(&mut |key| {
                if let Some(fs) = self.by_key.get(key) {
                    for &fi in fs {
                        self.probe(&self.fields[fi as usize], view, &mut set);
                    }
                }
            });
        if !complete {
            for f in &self.fields {
                self.probe(f, view, &mut set);
            }
        }
        if let Some(k) = &self.keywords {
            k.mark_values(view, &mut set);
        }
        set
    }

    /// Every rule of the group judged by `rsigma_eval::evaluate_rule` alone, no index: what
    /// [`RuleGroup::evaluate`] must agree with (the tests' cross-check).
    #[cfg(test)]
    pub(crate) fn evaluate_by_rsigma(&self, view: &View<'_>, out: &mut Vec<usize>) {
        for (rule, &id) in self.rules.iter().zip(&self.ids) {
            if evaluate_rule(rule, view).is_some() {
                out.push(id);
            }
        }
    }

    /// Which gates make the candidates of one event (tests only): per kind (always, present,
    /// equals, contains, keyword), the rules (indices in `Detector::rules`) they let through in
    /// either slot; then the candidates judged (a gate met in each slot).
    #[cfg(test)]
    pub(crate) fn candidate_sources(&self, view: &View<'_>) -> [Vec<usize>; 6] {
        let n = self.rules.len();
        let mut sets: [Candidates; 5] = std::array::from_fn(|_| Candidates::new(n));
        sets[0].add_all(&self.always);
        for f in &self.fields {
            let Some(value) = view.get_field(&f.name) else {
                continue;
            };
            sets[1].add_all(&f.present);
            each_number(&value, &mut |n| {
                if let Some(rs) = f.numbers.get(&n) {
                    sets[2].add_all(rs);
                }
            });
            each_text(&value, &mut |text| {
                if let Some(rs) = f.equals.get(ascii_lowercase_cow(text).as_ref()) {
                    sets[2].add_all(rs);
                }
                if let Some(nd) = &f.contains {
                    nd.mark(text, &mut sets[3]);
                }
            });
        }
        if let Some(k) = &self.keywords {
            k.mark_values(view, &mut sets[4]);
        }
        let ids = |it: &mut dyn Iterator<Item = usize>| -> Vec<usize> {
            it.filter_map(|p| self.ids.get(p).copied()).collect()
        };
        let judged = ids(&mut self.candidates(view).iter());
        let [a, b, c, d, e] = sets.map(|s| ids(&mut s.any()));
        [a, b, c, d, e, judged]
    }

    fn probe(&self, f: &FieldGates, view: &View<'_>, set: &mut Candidates) {
        let Some((value, at)) = view.get_field_at(&f.name) else {
            return;
        };
        set.add_all(&f.present);
        if !f.numbers.is_empty() {
            each_number(&value, &mut |n| {
                if let Some(rs) = f.numbers.get(&n) {
                    set.add_all(rs);
                }
            });
        }
        if f.equals.is_empty() && f.contains.is_none() {
            return;
        }
        // A whole string entry of a flattened record: its folded text is made once per
        // event and shared with every group and every rule that reads it.
        if let (EventValue::Str(_), Some(folded)) = (&value, at.and_then(|i| view.folded(i))) {
            if !f.equals.is_empty()
                && let Some(rs) = f.equals.get(folded)
            {
                set.add_all(rs);
            }
            if let Some(n) = &f.contains {
                n.mark_folded(folded, set);
            }
            return;
        }
        each_text(&value, &mut |text| {
            if !f.equals.is_empty()
                && let Some(rs) = f.equals.get(ascii_lowercase_cow(text).as_ref())
            {
                set.add_all(rs);
            }
            if let Some(n) = &f.contains {
                n.mark(text, set);
            }
        });
    }
}

/// The event keys that can supply a Sigma field name: the name itself (a flat key, dots and
/// all) and, for a path, its first segment.
fn event_keys(field: &str) -> Vec<String> {
    let unescaped = field.replace("\\[", "[").replace("\\]", "]");
    let mut keys = vec![unescaped];
    let cut = field
        .char_indices()
        .find(|&(i, c)| (c == '.' || c == '[') && !field[..i].ends_with('\\'))
        .map(|(i, _)| i);
    if let Some(i) = cut.filter(|&i| i > 0) {
        keys.push(field[..i].to_string());
    }
    keys.dedup();
    keys
}

/// Every text form the matchers compare a value by: strings as they are, numbers and booleans
/// as written, arrays member by member.
fn each_text(v: &EventValue<'_>, f: &mut dyn FnMut(&str)) {
    match v {
        EventValue::Str(s) => f(s),
        EventValue::Int(i) => f(&i.to_string()),
        EventValue::Float(x) => f(&x.to_string()),
        EventValue::Bool(b) => f(if *b { "true" } else { "false" }),
        EventValue::Array(items) => items.iter().for_each(|i| each_text(i, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Fields;
    use serde_json::json;

    fn group(yamls: &[&str]) -> RuleGroup {
        let compiled = yamls
            .iter()
            .enumerate()
            .map(|(i, y)| {
                let c = rsigma_parser::parse_sigma_yaml(y).expect("parses");
                (i, rsigma_eval::compile_rule(&c.rules[0]).expect("compiles"))
            })
            .collect();
        RuleGroup::new(compiled, 1)
    }

    /// Every rule of the group judged by `rsigma-eval` alone (no index).
    fn hits_by_rsigma(g: &RuleGroup, v: &serde_json::Value) -> Vec<usize> {
        let fields = Fields::Json(v);
        let view = View::new(&fields, None);
        let mut out = Vec::new();
        g.evaluate_by_rsigma(&view, &mut out);
        out
    }

    fn hits(g: &RuleGroup, v: &serde_json::Value) -> Vec<usize> {
        let fields = Fields::Json(v);
        let view = View::new(&fields, None);
        let mut out = Vec::new();
        g.evaluate(&view, false, &mut out);
        out.into_iter().map(|(i, _)| i).collect()
    }

    const CONTAINS: &str = "title: c\nlogsource: {product: windows}\ndetection:\n  sel: {CommandLine|contains: WhoAmI}\n  condition: sel\n";
    const EQUALS: &str = "title: e\nlogsource: {product: windows}\ndetection:\n  sel: {Image: 'C:\\x.exe'}\n  condition: sel\n";
    const NOT: &str = "title: n\nlogsource: {product: windows}\ndetection:\n  sel: {User: bob}\n  condition: not sel\n";
    const REGEX: &str = "title: r\nlogsource: {product: windows}\ndetection:\n  sel: {CommandLine|re: 'a.c'}\n  condition: sel\n";
    const KEYWORD: &str = "title: k\nlogsource: {product: windows}\ndetection:\n  kw: [vssadmin delete]\n  condition: kw\n";
    const NUMBER: &str = "title: i\nlogsource: {product: windows}\ndetection:\n  sel: {EventID: 4688}\n  condition: sel\n";

    #[test]
    fn gates_select_and_rules_decide() {
        let g = group(&[CONTAINS, EQUALS, NOT, REGEX, KEYWORD, NUMBER]);
        // Only the negation is open.
        assert_eq!(g.open_rules(), 1);
        assert_eq!(hits(&g, &json!({"CommandLine": "cmd /c WHOAMI"})), [0, 2]);
        assert_eq!(hits(&g, &json!({"Image": "c:\\X.EXE", "User": "bob"})), [1]);
        assert_eq!(hits(&g, &json!({"CommandLine": "abc"})), [2, 3]);
        assert_eq!(
            hits(&g, &json!({"x": {"y": "VSSADMIN DELETE shadows"}})),
            [2, 4]
        );
        assert_eq!(hits(&g, &json!({"EventID": 4688})), [2, 5]);
        assert_eq!(hits(&g, &json!({"EventID": "4688"})), [2, 5]);
        assert!(hits(&g, &json!({"User": "bob"})).is_empty());
    }

    #[test]
    fn number_gates_read_values_as_the_numeric_matchers_do() {
        let g = group(&[
            "title: n\nlogsource: {product: windows}\ndetection:\n  sel: {EventID: 4634}\n  condition: sel\n",
            "title: one\nlogsource: {product: windows}\ndetection:\n  sel: {EventID: 1}\n  condition: sel\n",
            "title: mixed\nlogsource: {product: windows}\ndetection:\n  sel: {EventID: [1, 4688]}\n  condition: sel\n",
            "title: frac\nlogsource: {product: windows}\ndetection:\n  sel: {Level: 2.5}\n  condition: sel\n",
        ]);
        // Numbers below 2 and fractions keep the presence gate.
        assert_eq!(g.open_rules(), 0);
        for v in [
            json!(4634),
            json!("4634"),
            json!(4634.0),
            json!("4634.0"),
            json!("4.634e3"),
            json!([7, 4634]),
        ] {
            assert_eq!(hits(&g, &json!({"EventID": v})), [0], "{v}");
        }
        assert!(hits(&g, &json!({"EventID": 4635})).is_empty());
        assert!(hits(&g, &json!({"EventID": " 4634"})).is_empty());
        assert_eq!(hits(&g, &json!({"EventID": 1})), [1, 2]);
        assert_eq!(hits(&g, &json!({"EventID": "1.0"})), [1, 2]);
        assert_eq!(hits(&g, &json!({"EventID": 4688})), [2]);
        assert_eq!(hits(&g, &json!({"Level": "2.5"})), [3]);
        assert_eq!(number_gate(1.0), None);
        assert_eq!(number_gate(-2.0), Some(-2));
        assert_eq!(number_gate(9_007_199_254_740_992.0), None);
    }

    #[test]
    fn non_ascii_haystacks_fold_like_the_matchers() {
        let g = group(&[
            "title: u\nlogsource: {product: windows}\ndetection:\n  sel: {CommandLine|contains: 'ÄRZTE'}\n  condition: sel\n",
        ]);
        assert_eq!(hits(&g, &json!({"CommandLine": "x ärzte y"})), [0]);
        assert_eq!(hits(&g, &json!({"CommandLine": "x ÄRZTE y"})), [0]);
    }

    #[test]
    fn keyword_quick_reject_keeps_hits_and_drops_misses() {
        let g = group(&[
            KEYWORD,
            "title: u\nlogsource: {product: windows}\ndetection:\n  kw: ['ÄRZTE', 'MiMiKaTz']\n  condition: kw\n",
        ]);
        assert!(g.keywords.as_ref().is_some_and(|k| k.any.is_some()));
        let cases = [
            (json!({"a": "x VssAdmin DELETE y"}), vec![0]),
            (
                json!({"a": 1, "b": ["z", {"c": "vssadmin delete"}]}),
                vec![0],
            ),
            (json!({"a": "MIMIKATZ.exe"}), vec![1]),
            (
                json!({"a": "größe ärzte", "b": "vssadmin delete"}),
                vec![0, 1],
            ),
            (json!({"a": "Größe ÄRZTE"}), vec![1]),
            // Misses: no needle, a needle split across two values, non-ASCII lookalikes.
            (json!({"a": "vssadmin", "b": "delete"}), vec![]),
            (json!({"a": "vssadmin", "b": " delete"}), vec![]),
            (json!({"a": "arzte mimikåtz", "n": 5}), vec![]),
            (json!({}), vec![]),
        ];
        for (v, want) in cases {
            assert_eq!(hits(&g, &v), want, "{v}");
            assert_eq!(hits_by_rsigma(&g, &v), want, "rsigma: {v}");
            let fields = Fields::Json(&v);
            let view = View::new(&fields, None);
            assert_eq!(g.candidate_sources(&view)[4], want, "keyword gate: {v}");
        }
    }

    #[test]
    fn regex_gates_keep_every_match() {
        // Wildcards and `|re`, case-insensitive: gated by their prefixes, and still matched
        // when written with the other spellings Unicode case folding allows (`ſ` for `s`, the
        // Kelvin sign for `k`).
        let g = group(&[
            "title: a\nlogsource: {category: process_creation}\ndetection:\n  sel:\n    CommandLine: 'net use * /user:*'\n  condition: sel",
            "title: b\nlogsource: {category: process_creation}\ndetection:\n  sel:\n    CommandLine|re: '(?i)mimikatz.*kerberos'\n  condition: sel",
        ]);
        assert_eq!(g.open_rules(), 0);
        let cases: [(&str, &[usize]); 5] = [
            ("NET USE x /user:y", &[0]),
            ("net u\u{17F}e x /user:y", &[0]),
            ("MIMIKATZ then \u{212A}erberos", &[1]),
            ("mimikatz then Kerberos", &[1]),
            ("net view", &[]),
        ];
        for (cl, want) in cases {
            let v = json!({"CommandLine": cl});
            assert_eq!(hits(&g, &v), want, "{cl}");
            // The same answer as `rsigma-eval` judging every rule.
            assert_eq!(hits_by_rsigma(&g, &v), want, "{cl}");
        }
    }

    #[test]
    fn renamed_fields_are_probed() {
        let g = group(&[EQUALS]);
        let v = json!({"NewProcessName": "C:\\x.exe"});
        let mut r = crate::mapping::FieldRenames::default();
        r.insert("Image".into(), vec!["NewProcessName".into()]);
        let fields = Fields::Json(&v);
        let view = View::new(&fields, Some(&r));
        let mut out = Vec::new();
        g.evaluate(&view, false, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn dotted_paths_have_their_root_as_key() {
        assert_eq!(event_keys("a.b"), ["a.b", "a"]);
        assert_eq!(event_keys("Image"), ["Image"]);
        assert_eq!(event_keys("args[0]"), ["args[0]", "args"]);
    }
}
