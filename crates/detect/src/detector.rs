//! The loaded rule set and the routing of events to it.
//!
//! Rules are grouped by their logsource (product, category, service). An event is classified
//! once by the [`Mapping`] (its service and the categories it meets) and evaluated only
//! against the groups those cover, each group a [`RuleGroup`] (the group's rules compiled by
//! `rsigma-eval`, behind riposte's own candidate index); so a rule only ever sees the events
//! its logsource covers, and a rule fires at most once per event. A group's matchers are compiled the first time an event
//! needs them (or all up front with [`LoadOptions::lazy`] off), so a run pays only for the
//! logsources it sees.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use riposte_domain::{SeverityLabel, TechniqueId};
use rsigma_eval::EvaluationResult;
use rsigma_parser::{CorrelationRule, SigmaRule};
use serde_json::Value;

use crate::cache::RuleCache;
use crate::index::RuleGroup;
use crate::mapping::{FieldRenames, Mapping};
use crate::rules::{Refusal, RuleText, parallel_map, parse_all, parse_all_cached};
use crate::view::{Fields, View, windows_fields};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Threads for parsing and compiling.
    pub threads: usize,
    /// Compile a logsource's rules when the first event of it arrives, not at load.
    pub lazy: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            lazy: true,
        }
    }
}

/// What one loaded detection rule says about itself (what its alerts carry).
#[derive(Debug, Clone)]
pub struct RuleInfo {
    /// The file it came from, as the caller named it.
    pub file: Arc<str>,
    pub id: Option<String>,
    pub title: String,
    pub description: Option<String>,
    /// Sigma's level as written (`high`), if any.
    pub level: Option<String>,
    pub severity: SeverityLabel,
    pub techniques: Vec<TechniqueId>,
    /// ATT&CK tactics from the `attack.<tactic>` tags (`credential-access`).
    pub tactics: Vec<String>,
    pub tags: Vec<String>,
    /// Used only by correlations (`generate: false`): matches feed them and raise no alert.
    pub correlation_only: bool,
}

/// Counts for `riposte rules check` and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuleStats {
    pub files: usize,
    /// Detection rules parsed.
    pub rules: usize,
    /// Correlation rules parsed.
    pub correlations: usize,
    /// Documents or files refused (parse or compile), each in [`Detector::refusals`].
    pub refused: usize,
    /// Of `rules`, those refused at compile (so far, when compiling lazily).
    pub failed_compile: usize,
    /// Loaded rules whose logsource no mapping entry produces: they can never fire until the
    /// mapping covers them.
    pub unmapped: usize,
    /// Logsource groups (one compiled rule group each).
    pub groups: usize,
}

struct Group {
    product: Option<String>,
    category: Option<String>,
    service: Option<String>,
    /// Parsed rules waiting to be compiled, with their indices in `Detector::rules`.
    pending: Mutex<Vec<(usize, SigmaRule)>>,
    engine: OnceLock<RuleGroup>,
}

/// A loaded Sigma rule set with its logsource mapping.
pub struct Detector {
    mapping: Mapping,
    rules: Vec<RuleInfo>,
    correlations: Vec<(Arc<str>, CorrelationRule)>,
    /// The detection rules correlations name, kept parsed for the correlation engine.
    correlated: Vec<(usize, SigmaRule)>,
    /// The groups holding a rule of `correlated`.
    fed_groups: HashSet<usize>,
    groups: Vec<Group>,
    /// Per mapping category: the groups of that category (their product and service, where
    /// named, the category's), judged with the category's renames.
    category_groups: Vec<Vec<usize>>,
    /// Per mapping service: the groups of that service (no category), then those of its
    /// product alone; judged with the service's renames.
    service_groups: Vec<Vec<usize>>,
    /// Groups with no logsource: every event.
    everywhere: Vec<usize>,
    refusals: Mutex<Vec<Refusal>>,
    failed_compile: AtomicUsize,
    stats: RuleStats,
    threads: usize,
}

/// A rule's (product, category, service), normalised.
type LogsourceKey = (Option<String>, Option<String>, Option<String>);

/// How a logsource dimension compares: Sigma values are case-insensitive.
fn norm(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|v| v.trim().to_ascii_lowercase())
}

impl Detector {
    /// Parses and (unless lazy) compiles every text; nothing here fails as a whole, every
    /// unusable document is in [`Detector::refusals`].
    pub fn load(texts: &[RuleText], mapping: Mapping, opts: &LoadOptions) -> Detector {
        Detector::from_parsed(texts, parse_all(texts, opts.threads), mapping, opts)
    }

    /// [`Detector::load`], taking parsed rules from `cache` where it holds a text and adding
    /// those parsed afresh to it (the caller keeps its bytes: [`RuleCache::to_bytes`]).
    pub fn load_cached(
        texts: &[RuleText],
        mapping: Mapping,
        opts: &LoadOptions,
        cache: &RuleCache,
    ) -> Detector {
        let parsed = parse_all_cached(texts, opts.threads, Some(cache));
        Detector::from_parsed(texts, parsed, mapping, opts)
    }

    fn from_parsed(
        texts: &[RuleText],
        parsed: crate::rules::Parsed,
        mapping: Mapping,
        opts: &LoadOptions,
    ) -> Detector {
        let files: Vec<Arc<str>> = texts.iter().map(|t| Arc::from(t.name.as_str())).collect();
        let mut rules = Vec::with_capacity(parsed.rules.len());
        let mut group_of: HashMap<LogsourceKey, usize> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut unmapped = 0;
        // Rules named by correlations (by id or name), and those named only by correlations
        // that do not generate their base rules' alerts.
        let mut referenced: HashMap<&str, bool> = HashMap::new();
        for (_, c) in &parsed.correlations {
            for r in &c.rules {
                let only = referenced.entry(r.as_str()).or_insert(true);
                *only &= !c.generate;
            }
        }
        let mut correlated = Vec::new();
        let mut fed_groups = HashSet::new();
        for (file, rule) in parsed.rules {
            let ls = &rule.logsource;
            let key = (norm(&ls.product), norm(&ls.category), norm(&ls.service));
            let anywhere = key.0.is_none() && key.1.is_none() && key.2.is_none();
            if !anywhere && !mapping.covers(key.0.as_deref(), key.1.as_deref(), key.2.as_deref()) {
                unmapped += 1;
            }
            let gi = *group_of.entry(key.clone()).or_insert_with(|| {
                groups.push(Group {
                    product: key.0.clone(),
                    category: key.1.clone(),
                    service: key.2.clone(),
                    pending: Mutex::new(Vec::new()),
                    engine: OnceLock::new(),
                });
                groups.len() - 1
            });
            let index = rules.len();
            let mut info = rule_info(files[file].clone(), &rule);
            let named = [rule.id.as_deref(), rule.name.as_deref()]
                .into_iter()
                .flatten()
                .filter_map(|k| referenced.get(k).copied())
                .collect::<Vec<bool>>();
            if !named.is_empty() {
                info.correlation_only = named.iter().all(|only| *only);
                correlated.push((index, rule.clone()));
                fed_groups.insert(gi);
            }
            rules.push(info);
            if let Ok(mut p) = groups[gi].pending.lock() {
                p.push((index, rule));
            }
        }
        let mut by_category: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_service: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_product: HashMap<String, Vec<usize>> = HashMap::new();
        let mut everywhere = Vec::new();
        for (gi, g) in groups.iter().enumerate() {
            match (&g.category, &g.service, &g.product) {
                (Some(c), _, _) => by_category.entry(c.clone()).or_default().push(gi),
                (None, Some(s), _) => by_service.entry(s.clone()).or_default().push(gi),
                (None, None, Some(p)) => by_product.entry(p.clone()).or_default().push(gi),
                (None, None, None) => everywhere.push(gi),
            }
        }
        // Routes, resolved once: an event's classification picks them by position.
        let category_groups = mapping
            .categories()
            .iter()
            .map(|cat| {
                by_category
                    .get(&cat.category.to_ascii_lowercase())
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|&gi| {
                        let g = &groups[gi];
                        same(&g.product, &cat.product) && same(&g.service, &cat.service)
                    })
                    .collect()
            })
            .collect();
        let service_groups = mapping
            .services()
            .iter()
            .map(|service| {
                let own = by_service
                    .get(&service.service.to_ascii_lowercase())
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|&gi| same(&groups[gi].product, &service.product));
                let product = by_product
                    .get(&service.product.to_ascii_lowercase())
                    .into_iter()
                    .flatten()
                    .copied();
                own.chain(product).collect()
            })
            .collect();
        let stats = RuleStats {
            files: texts.len(),
            rules: rules.len(),
            correlations: parsed.correlations.len(),
            refused: parsed.refusals.len(),
            failed_compile: 0,
            unmapped,
            groups: groups.len(),
        };
        let d = Detector {
            mapping,
            rules,
            correlations: parsed
                .correlations
                .into_iter()
                .map(|(f, c)| (files[f].clone(), c))
                .collect(),
            correlated,
            fed_groups,
            groups,
            category_groups,
            service_groups,
            everywhere,
            refusals: Mutex::new(parsed.refusals),
            failed_compile: AtomicUsize::new(0),
            stats,
            threads: opts.threads.max(1),
        };
        if !opts.lazy {
            d.compile_all();
        }
        d
    }

    /// Compiles every group now (for `rules check`, and servers that want load-time errors).
    pub fn compile_all(&self) {
        // Groups one after the other, each compiled on all threads: the groups are very
        // uneven (process_creation holds ~40 % of SigmaHQ's rules).
        for g in &self.groups {
            self.engine(g);
        }
    }

    fn engine<'a>(&'a self, g: &'a Group) -> &'a RuleGroup {
        g.engine.get_or_init(|| {
            let pending = match g.pending.lock() {
                Ok(mut p) => std::mem::take(&mut *p),
                Err(_) => Vec::new(),
            };
            let compiled = parallel_map(&pending, self.threads, |_, (_, rule)| {
                rsigma_eval::compile_rule(rule).map(|mut c| {
                    // A correlation finds its base rules' matches by id; a rule known only by
                    // its name is found by that.
                    if c.id.is_none() {
                        c.id = rule.name.clone();
                    }
                    c
                })
            });
            // The parsed rules are not needed once compiled.
            let indices: Vec<usize> = pending.iter().map(|(i, _)| *i).collect();
            drop(pending);
            let mut ok = Vec::with_capacity(compiled.len());
            let mut refused = Vec::new();
            for (index, c) in indices.iter().zip(compiled) {
                match c {
                    Ok(c) => ok.push((*index, c)),
                    Err(e) => {
                        let info = &self.rules[*index];
                        refused.push(Refusal {
                            file: info.file.to_string(),
                            rule: Some(info.title.clone()),
                            reason: e.to_string(),
                        });
                    }
                }
            }
            self.failed_compile
                .fetch_add(refused.len(), Ordering::Relaxed);
            if !refused.is_empty()
                && let Ok(mut r) = self.refusals.lock()
            {
                r.extend(refused);
            }
            RuleGroup::new(ok, self.threads)
        })
    }

    /// Every document refused so far: at parse, and at compile for the groups compiled.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.refusals.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn stats(&self) -> RuleStats {
        let mut s = self.stats.clone();
        s.refused = self.refusals.lock().map(|r| r.len()).unwrap_or(s.refused);
        s.failed_compile = self.failed_compile.load(Ordering::Relaxed);
        s
    }

    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The detection rules correlations name, with their indices in [`Detector::rules`].
    pub fn correlated_rules(&self) -> &[(usize, SigmaRule)] {
        &self.correlated
    }

    /// The correlation rules the texts held, with their files.
    pub fn correlations(&self) -> &[(Arc<str>, CorrelationRule)] {
        &self.correlations
    }

    /// The rules (indices into [`Detector::rules`]) that match one decoded event, in rule
    /// order. `decoder` is the riposte decoder that read it, `action` its action.
    pub fn matches(&self, decoder: &str, action: &str, original: &Value) -> Vec<usize> {
        sorted_ids(&self.evaluate(decoder, action, original, false, false))
    }

    /// Whether an event matches a rule some correlation uses (so the correlation stage needs
    /// it); evaluates only those rules' groups.
    pub fn feeds_correlations(&self, decoder: &str, action: &str, original: &Value) -> bool {
        !self.correlated.is_empty()
            && self
                .evaluate(decoder, action, original, true, false)
                .results
                .iter()
                .any(|(i, _)| self.correlated.iter().any(|(c, _)| c == i))
    }

    /// `fed_only`: evaluate only the groups that hold a rule some correlation uses;
    /// `with_results`: `rsigma-eval`'s result for each match (the correlation engine's input).
    pub(crate) fn evaluate<'v>(
        &self,
        decoder: &str,
        action: &str,
        original: &'v Value,
        fed_only: bool,
        with_results: bool,
    ) -> Evaluated<'v> {
        let pass = Pass {
            fed_only,
            with_results,
            #[cfg(test)]
            reference: false,
        };
        self.evaluate_as(decoder, action, original, pass)
    }

    /// The rules of the groups an event is routed to, each judged by `rsigma-eval` alone
    /// (no candidate index, no [`crate::eval`]): what [`Detector::matches`] must agree with.
    #[cfg(test)]
    pub(crate) fn matches_by_rsigma(
        &self,
        decoder: &str,
        action: &str,
        original: &Value,
    ) -> Vec<usize> {
        let pass = Pass {
            fed_only: false,
            with_results: false,
            reference: true,
        };
        sorted_ids(&self.evaluate_as(decoder, action, original, pass))
    }

    fn evaluate_as<'v>(
        &self,
        decoder: &str,
        action: &str,
        original: &'v Value,
        pass: Pass,
    ) -> Evaluated<'v> {
        let fields = if decoder == "windows" {
            match windows_fields(original) {
                Some(f) => Fields::Flat(f),
                None => {
                    return Evaluated {
                        results: Vec::new(),
                        fields: Fields::Json(original),
                        service: None,
                    };
                }
            }
        } else {
            Fields::Json(original)
        };
        let channel = fields.channel();
        let plain = View::new(&fields, None);
        let sources = self
            .mapping
            .classify(decoder, channel, action, |f| plain.text(f));
        let mut results = Vec::new();
        let Some(si) = sources.service else {
            self.eval_groups(&self.everywhere, &fields, None, pass, &mut results);
            return Evaluated {
                results,
                fields,
                service: None,
            };
        };
        let service = &self.mapping.services()[si];
        for &ci in &sources.categories {
            let cat = &self.mapping.categories()[ci];
            let renames = category_renames(&cat.fields, &service.fields);
            if let Some(gs) = self.category_groups.get(ci) {
                self.eval_groups(gs, &fields, Some(renames), pass, &mut results);
            }
        }
        if let Some(gs) = self.service_groups.get(si) {
            self.eval_groups(gs, &fields, Some(&service.fields), pass, &mut results);
        }
        self.eval_groups(
            &self.everywhere,
            &fields,
            Some(&service.fields),
            pass,
            &mut results,
        );
        Evaluated {
            results,
            fields,
            service: Some(si),
        }
    }

    /// Per gate kind, the candidates an event's groups judge (tests only; see
    /// `RuleGroup::candidate_sources`).
    #[cfg(test)]
    pub(crate) fn candidate_sources(
        &self,
        decoder: &str,
        action: &str,
        original: &Value,
    ) -> [Vec<usize>; 6] {
        let mut out: [Vec<usize>; 6] = Default::default();
        let Some(f) = windows_fields(original) else {
            return out;
        };
        let fields = Fields::Flat(f);
        let plain = View::new(&fields, None);
        let sources = self
            .mapping
            .classify(decoder, fields.channel(), action, |f| plain.text(f));
        let Some(si) = sources.service else {
            return out;
        };
        let service = &self.mapping.services()[si];
        let mut routed: Vec<(usize, &FieldRenames)> = Vec::new();
        for &ci in &sources.categories {
            let cat = &self.mapping.categories()[ci];
            let renames = category_renames(&cat.fields, &service.fields);
            for &gi in self.category_groups.get(ci).into_iter().flatten() {
                routed.push((gi, renames));
            }
        }
        for &gi in self
            .service_groups
            .get(si)
            .into_iter()
            .flatten()
            .chain(&self.everywhere)
        {
            routed.push((gi, &service.fields));
        }
        for (gi, renames) in routed {
            let view = View::new(&fields, Some(renames));
            let got = self.engine(&self.groups[gi]).candidate_sources(&view);
            for (o, g) in out.iter_mut().zip(got) {
                o.extend(g);
            }
        }
        out
    }

    fn eval_groups(
        &self,
        gs: &[usize],
        fields: &Fields<'_>,
        renames: Option<&FieldRenames>,
        pass: Pass,
        out: &mut Vec<(usize, Option<EvaluationResult>)>,
    ) {
        if gs.is_empty() {
            return;
        }
        let view = View::new(fields, renames);
        for &gi in gs {
            if pass.fed_only && !self.fed_groups.contains(&gi) {
                continue;
            }
            let group = self.engine(&self.groups[gi]);
            #[cfg(test)]
            if pass.reference {
                let mut ids = Vec::new();
                group.evaluate_by_rsigma(&view, &mut ids);
                out.extend(ids.into_iter().map(|i| (i, None)));
                continue;
            }
            group.evaluate(&view, pass.with_results, out);
        }
    }
}

/// The matching rules of an evaluation, in rule order.
fn sorted_ids(ev: &Evaluated<'_>) -> Vec<usize> {
    let mut out: Vec<usize> = ev.results.iter().map(|(i, _)| *i).collect();
    out.sort_unstable();
    out
}

/// What one evaluation of an event asks for.
#[derive(Clone, Copy)]
struct Pass {
    fed_only: bool,
    with_results: bool,
    /// Judge every rule of the routed groups by `rsigma-eval` alone (tests only).
    #[cfg(test)]
    reference: bool,
}

/// One event's evaluation: the results, its flattened Windows fields (if it is one) and its
/// service in the mapping.
pub(crate) struct Evaluated<'v> {
    /// Each matching rule's index in [`Detector::rules`] with `rsigma-eval`'s result, if
    /// asked for.
    pub results: Vec<(usize, Option<EvaluationResult>)>,
    pub fields: Fields<'v>,
    pub service: Option<usize>,
}

/// A group's dimension (lower-cased, `None` = any) against a mapping entry's value.
fn same(group: &Option<String>, entry: &str) -> bool {
    group
        .as_deref()
        .is_none_or(|g| g.eq_ignore_ascii_case(entry))
}

/// ATT&CK techniques (`attack.t1059.001`) and tactics (`attack.credential-access`) from Sigma
/// tags; groups (`attack.g0016`) and software (`attack.s0002`) are neither.
pub(crate) fn attack_tags(tags: &[String]) -> (Vec<TechniqueId>, Vec<String>) {
    let mut techniques = Vec::new();
    let mut tactics = Vec::new();
    for t in tags {
        let lower = t.to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix("attack.") else {
            continue;
        };
        if let Some(id) = TechniqueId::parse(rest) {
            if !techniques.contains(&id) {
                techniques.push(id);
            }
        } else if !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_')
        {
            tactics.push(rest.replace('_', "-"));
        }
    }
    (techniques, tactics)
}

fn rule_info(file: Arc<str>, r: &SigmaRule) -> RuleInfo {
    let level = r.level.as_ref().map(|l| l.as_str().to_string());
    let severity = level
        .as_deref()
        .and_then(SeverityLabel::parse)
        .unwrap_or(SeverityLabel::Medium);
    let (techniques, tactics) = attack_tags(&r.tags);
    RuleInfo {
        file,
        id: r.id.clone(),
        title: r.title.clone(),
        description: r.description.clone(),
        level,
        severity,
        techniques,
        tactics,
        tags: r.tags.clone(),
        correlation_only: false,
    }
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The field renames a category's rules see: its own, or its service's when it has none.
fn category_renames<'a>(category: &'a FieldRenames, service: &'a FieldRenames) -> &'a FieldRenames {
    if category.is_empty() {
        service
    } else {
        category
    }
}
