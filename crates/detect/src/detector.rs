//! The loaded rule set and the routing of events to it.
//!
//! Rules are grouped by their logsource (product, category, service). An event is classified
//! once by the [`Mapping`] (its service and the categories it meets) and evaluated only
//! against the groups those cover, each group an `rsigma-eval` [`Engine`] with its own
//! candidate index; so a rule only ever sees the events its logsource covers, and a rule
//! fires at most once per event. A group's matchers are compiled the first time an event
//! needs them (or all up front with [`LoadOptions::lazy`] off), so a run pays only for the
//! logsources it sees.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use riposte_domain::{SeverityLabel, TechniqueId};
use rsigma_eval::Engine;
use rsigma_parser::{CorrelationRule, SigmaRule};
use serde_json::Value;

use crate::mapping::{FieldRenames, Mapping};
use crate::rules::{Refusal, RuleText, parallel_map, parse_all};
use crate::view::{View, windows_fields};

/// The custom attribute that carries a compiled rule's index in [`Detector::rules`].
const RULE_INDEX: &str = "riposte.rule";

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
    /// Logsource groups (one engine each).
    pub groups: usize,
}

struct Group {
    product: Option<String>,
    category: Option<String>,
    service: Option<String>,
    /// Parsed rules waiting to be compiled, with their indices in `Detector::rules`.
    pending: Mutex<Vec<(usize, SigmaRule)>>,
    engine: OnceLock<Engine>,
}

/// A loaded Sigma rule set with its logsource mapping.
pub struct Detector {
    mapping: Mapping,
    rules: Vec<RuleInfo>,
    correlations: Vec<(Arc<str>, CorrelationRule)>,
    groups: Vec<Group>,
    by_category: HashMap<String, Vec<usize>>,
    by_service: HashMap<String, Vec<usize>>,
    by_product: HashMap<String, Vec<usize>>,
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
        let parsed = parse_all(texts, opts.threads);
        let files: Vec<Arc<str>> = texts.iter().map(|t| Arc::from(t.name.as_str())).collect();
        let mut rules = Vec::with_capacity(parsed.rules.len());
        let mut group_of: HashMap<LogsourceKey, usize> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut unmapped = 0;
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
            rules.push(rule_info(files[file].clone(), &rule));
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
            groups,
            by_category,
            by_service,
            by_product,
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

    fn engine<'a>(&'a self, g: &'a Group) -> &'a Engine {
        g.engine.get_or_init(|| {
            let pending = match g.pending.lock() {
                Ok(mut p) => std::mem::take(&mut *p),
                Err(_) => Vec::new(),
            };
            let compiled = parallel_map(&pending, self.threads, |_, (index, rule)| {
                rsigma_eval::compile_rule(rule).map(|mut c| {
                    let mut attrs = (*c.custom_attributes).clone();
                    attrs.insert(RULE_INDEX.into(), Value::from(*index as u64));
                    c.custom_attributes = Arc::new(attrs);
                    c
                })
            });
            let mut ok = Vec::with_capacity(compiled.len());
            let mut refused = Vec::new();
            for ((index, _), c) in pending.iter().zip(compiled) {
                match c {
                    Ok(c) => ok.push(c),
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
            let mut engine = Engine::new();
            engine.extend_compiled_rules(ok);
            engine
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

    /// The correlation rules the texts held, with their files.
    pub fn correlations(&self) -> &[(Arc<str>, CorrelationRule)] {
        &self.correlations
    }

    /// The rules (indices into [`Detector::rules`]) that match one decoded event, in rule
    /// order. `decoder` is the riposte decoder that read it, `action` its action.
    pub fn matches(&self, decoder: &str, action: &str, original: &Value) -> Vec<usize> {
        let flat;
        let (value, channel) = if decoder == "windows" {
            match windows_fields(original) {
                Some(m) => {
                    flat = Value::Object(m);
                    let ch = flat.get("Channel").and_then(Value::as_str);
                    (&flat, ch)
                }
                None => return Vec::new(),
            }
        } else {
            (original, None)
        };
        let plain = View::new(value, None);
        let sources = self
            .mapping
            .classify(decoder, channel, action, |f| plain.text(f));
        let Some(si) = sources.service else {
            return self.eval_groups(&self.everywhere, value, None);
        };
        let service = &self.mapping.services()[si];
        let mut out = Vec::new();
        for &ci in &sources.categories {
            let cat = &self.mapping.categories()[ci];
            let renames = if cat.fields.is_empty() {
                &service.fields
            } else {
                &cat.fields
            };
            if let Some(gs) = self.by_category.get(&cat.category.to_ascii_lowercase()) {
                let gs: Vec<usize> = gs
                    .iter()
                    .copied()
                    .filter(|&gi| {
                        let g = &self.groups[gi];
                        same(&g.product, &cat.product) && same(&g.service, &cat.service)
                    })
                    .collect();
                out.extend(self.eval_groups(&gs, value, Some(renames)));
            }
        }
        let svc = |gs: Option<&Vec<usize>>| -> Vec<usize> {
            gs.map(|gs| {
                gs.iter()
                    .copied()
                    .filter(|&gi| same(&self.groups[gi].product, &service.product))
                    .collect()
            })
            .unwrap_or_default()
        };
        let gs = svc(self.by_service.get(&service.service.to_ascii_lowercase()));
        out.extend(self.eval_groups(&gs, value, Some(&service.fields)));
        if let Some(gs) = self.by_product.get(&service.product.to_ascii_lowercase()) {
            out.extend(self.eval_groups(gs, value, Some(&service.fields)));
        }
        out.extend(self.eval_groups(&self.everywhere, value, Some(&service.fields)));
        out.sort_unstable();
        out
    }

    fn eval_groups(
        &self,
        gs: &[usize],
        value: &Value,
        renames: Option<&FieldRenames>,
    ) -> Vec<usize> {
        let mut out = Vec::new();
        if gs.is_empty() {
            return out;
        }
        let view = View::new(value, renames);
        for &gi in gs {
            let engine = self.engine(&self.groups[gi]);
            for r in engine.evaluate(&view) {
                if let Some(i) = r
                    .header
                    .custom_attributes
                    .get(RULE_INDEX)
                    .and_then(Value::as_u64)
                {
                    out.push(i as usize);
                }
            }
        }
        out
    }
}

/// A group's dimension (lower-cased, `None` = any) against a mapping entry's value.
fn same(group: &Option<String>, entry: &str) -> bool {
    group
        .as_deref()
        .is_none_or(|g| g.eq_ignore_ascii_case(entry))
}

fn rule_info(file: Arc<str>, r: &SigmaRule) -> RuleInfo {
    let level = r.level.as_ref().map(|l| l.as_str().to_string());
    let severity = level
        .as_deref()
        .and_then(SeverityLabel::parse)
        .unwrap_or(SeverityLabel::Medium);
    let mut techniques = Vec::new();
    let mut tactics = Vec::new();
    for t in &r.tags {
        let lower = t.to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix("attack.") else {
            continue;
        };
        if let Some(id) = TechniqueId::parse(rest) {
            if !techniques.contains(&id) {
                techniques.push(id);
            }
        } else if rest
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_')
            && !rest.is_empty()
        {
            // `attack.g0016` (groups) and `attack.s0002` (software) hold digits; what is left
            // are tactic names.
            tactics.push(rest.replace('_', "-"));
        }
    }
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
    }
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
