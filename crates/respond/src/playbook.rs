//! The playbook format (YAML) and its loader. `docs/playbooks.md` is the reference for
//! people; this module is the one that decides.
//!
//! Loading refuses a playbook with every problem found, each at file, line and column: YAML
//! errors at their position, template and expression errors at their position inside the
//! file (the template's own line and column added to where its text starts), unknown step
//! kinds, missing `goto` targets, duplicate step ids, unknown connectors or operations (when
//! a catalogue is given), `for_each` without a bound.
//!
//! A loaded [`Playbook`] is immutable and named by the SHA-256 of its text: a run keeps the
//! version it started with, and a changed file is a new version.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::connector::Connectors;
use crate::duration::HumanDuration;
use crate::error::{LoadError, LoadErrors};
use crate::template::{TemplateError, Templates};

/// Hard ceiling on `for_each.max_items`: one step never fans out wider than this.
pub const MAX_ITEMS_CEILING: u32 = 1_000;

/// What starts a playbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TriggerKind {
    #[serde(rename = "case.created")]
    CaseCreated,
    #[serde(rename = "case.updated")]
    CaseUpdated,
    #[serde(rename = "case.tier_changed")]
    CaseTierChanged,
    #[serde(rename = "alert.received")]
    AlertReceived,
    #[serde(rename = "schedule")]
    Schedule,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::CaseCreated => "case.created",
            TriggerKind::CaseUpdated => "case.updated",
            TriggerKind::CaseTierChanged => "case.tier_changed",
            TriggerKind::AlertReceived => "alert.received",
            TriggerKind::Schedule => "schedule",
        }
    }

    fn parse(s: &str) -> Option<TriggerKind> {
        Some(match s {
            "case.created" => TriggerKind::CaseCreated,
            "case.updated" => TriggerKind::CaseUpdated,
            "case.tier_changed" => TriggerKind::CaseTierChanged,
            "alert.received" => TriggerKind::AlertReceived,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub kind: TriggerKind,
    /// For `schedule`: how often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_secs: Option<u64>,
}

/// What a failed step does to its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The run ends, failed (the default).
    Stop,
    /// The run goes on with the next step.
    Continue,
    /// The run goes on at this step.
    Goto(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    pub backoff_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForEach {
    /// An expression giving a list.
    pub expr: String,
    pub max_items: u32,
    pub concurrency: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchArm {
    /// `None`: the `else` arm.
    pub condition: Option<String>,
    pub goto: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// A connector operation with templated parameters.
    Action {
        connector: String,
        operation: String,
        params: serde_json::Value,
        /// A written reason (templated), for `review` operations.
        reason: Option<String>,
    },
    /// Set case fields: `status`, `verdict`, `assignee`.
    Set {
        fields: BTreeMap<String, String>,
    },
    Tag {
        tags: Vec<String>,
    },
    Note {
        text: String,
    },
    Assign {
        to: String,
    },
    /// A message through a notifier connector (its `notify` operation).
    Notify {
        via: String,
        message: String,
    },
    /// Wait for people: the run goes on only once approved.
    Approval {
        message: Option<String>,
        quorum: Option<u32>,
        timeout_secs: Option<u64>,
    },
    /// Wait for a time, or until a condition holds (checked when the case changes and on
    /// every tick), at most `timeout`.
    Wait {
        until: Option<String>,
        timeout_secs: u64,
        /// `continue` (default for a plain wait) or fail when the time is up.
        fail_on_timeout: bool,
    },
    Branch {
        arms: Vec<BranchArm>,
    },
}

impl StepKind {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Action { .. } => "action",
            StepKind::Set { .. } => "set",
            StepKind::Tag { .. } => "tag",
            StepKind::Note { .. } => "note",
            StepKind::Assign { .. } => "assign",
            StepKind::Notify { .. } => "notify",
            StepKind::Approval { .. } => "approval",
            StepKind::Wait { .. } => "wait",
            StepKind::Branch { .. } => "branch",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub name: Option<String>,
    pub condition: Option<String>,
    pub kind: StepKind,
    pub for_each: Option<ForEach>,
    pub retry: Retry,
    pub timeout_secs: u64,
    pub on_failure: OnFailure,
    /// Revert the action by its inverse after this long unless someone confirms it.
    pub expires_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Playbook {
    pub id: String,
    pub name: String,
    /// The author's version when given, else the first 12 hex digits of the hash.
    pub version: String,
    /// SHA-256 of the file's text, hex: the immutable identity of this version.
    pub hash: String,
    pub file: String,
    pub on: Vec<Trigger>,
    pub condition: Option<String>,
    pub steps: Vec<Step>,
}

impl Playbook {
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    pub fn triggered_by(&self, kind: TriggerKind) -> bool {
        self.on.iter().any(|t| t.kind == kind)
    }
}

// ---- the YAML shape ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    id: String,
    name: String,
    #[serde(default)]
    version: Option<yaml_serde::Value>,
    #[serde(default)]
    description: Option<String>,
    on: OneOrMany<RawTrigger>,
    #[serde(default, rename = "if")]
    condition: Option<String>,
    steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawTrigger {
    Name(String),
    Schedule { schedule: HumanDuration },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "if")]
    condition: Option<String>,
    // One of these:
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    set: Option<BTreeMap<String, String>>,
    #[serde(default)]
    tag: Option<OneOrMany<String>>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    assign: Option<String>,
    #[serde(default)]
    notify: Option<RawNotify>,
    #[serde(default)]
    approval: Option<RawApproval>,
    #[serde(default)]
    wait: Option<RawWait>,
    #[serde(default)]
    branch: Option<Vec<RawArm>>,
    // Modifiers:
    #[serde(default)]
    params: Option<serde_json::Value>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    for_each: Option<RawForEach>,
    #[serde(default)]
    retry: Option<RawRetry>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
    #[serde(default)]
    on_failure: Option<String>,
    #[serde(default)]
    expires: Option<HumanDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    via: String,
    message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    quorum: Option<u32>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWait {
    #[serde(default, rename = "for")]
    duration: Option<HumanDuration>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
    #[serde(default)]
    on_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArm {
    #[serde(default, rename = "if")]
    condition: Option<String>,
    #[serde(default, rename = "else")]
    otherwise: Option<bool>,
    goto: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForEach {
    items: String,
    max_items: Option<u32>,
    #[serde(default)]
    concurrency: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    attempts: u32,
    #[serde(default)]
    backoff: Option<HumanDuration>,
}

const CASE_FIELDS: &[&str] = &["status", "verdict", "assignee"];

/// Finds where things are in the text, since the YAML parser keeps no positions past
/// parsing: a step by its `id:` line, a key or a template's text from there on.
struct Locator<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str) -> Locator<'a> {
        Locator {
            lines: text.lines().collect(),
        }
    }

    /// The line (1-based) of `- id: <step>` or `id: <step>`.
    fn step(&self, id: &str) -> usize {
        self.lines
            .iter()
            .position(|l| {
                let t = l.trim_start().trim_start_matches('-').trim_start();
                t.strip_prefix("id:")
                    .is_some_and(|rest| rest.trim().trim_matches(['"', '\'']) == id)
            })
            .map(|i| i + 1)
            .unwrap_or(0)
    }

    /// The first line at or after `from` containing `needle`: (line, column), 1-based.
    fn find(&self, from: usize, needle: &str) -> Option<(usize, usize)> {
        if needle.is_empty() {
            return None;
        }
        let start = from.saturating_sub(1);
        self.lines
            .iter()
            .enumerate()
            .skip(start)
            .find_map(|(i, l)| l.find(needle).map(|c| (i + 1, l[..c].chars().count() + 1)))
    }

    /// Where a template's text starts, searching from `from`, else the key's line.
    fn template(&self, from: usize, key: &str, source: &str) -> (usize, usize) {
        let first = source.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let first = first.trim();
        self.find(from, first)
            .or_else(|| self.find(from, &format!("{key}:")))
            .unwrap_or((from.max(1), 1))
    }

    /// A template error placed in the file: the template's own position added to where its
    /// text starts (a column only shifts on the template's first line).
    fn place(
        &self,
        file: &str,
        from: usize,
        key: &str,
        source: &str,
        e: &TemplateError,
    ) -> LoadError {
        let (line, column) = self.template(from, key, source);
        let (tl, tc) = e.position().unwrap_or((1, 1));
        // For a one-line template found on its line, the column is exact; for block
        // scalars the text starts on the line after the key, at its indentation.
        let first_line_of_text = source.lines().next().unwrap_or("").trim();
        let offset = if first_line_of_text.is_empty() { 1 } else { 0 };
        let (l, c) = if tl <= 1 + offset {
            (line, column + tc.saturating_sub(1))
        } else {
            let inner_line = line + tl - 1 - offset;
            let indent = self
                .lines
                .get(inner_line.saturating_sub(1))
                .map(|l| l.len() - l.trim_start().len())
                .unwrap_or(0);
            (inner_line, indent + tc)
        };
        LoadError::new(file, l, c, format!("`{key}`: {e}"))
    }
}

fn duration_secs(d: Option<HumanDuration>) -> Option<u64> {
    d.map(|d| d.0.as_secs())
}

/// Loads and checks a playbook. With `connectors`, `action` and `notify` steps must name
/// configured connectors and operations; without, only their form is checked (for
/// `riposte playbook check` without a configuration).
pub fn load(
    file: &str,
    text: &str,
    templates: &Templates,
    connectors: Option<&Connectors>,
) -> Result<Playbook, LoadErrors> {
    let raw: RawPlaybook =
        yaml_serde::from_str(text).map_err(|e| LoadErrors(vec![LoadError::yaml(file, &e)]))?;
    let loc = Locator::new(text);
    let mut errors: Vec<LoadError> = Vec::new();
    let top = |needle: &str| loc.find(1, needle).unwrap_or((0, 0));

    if raw.id.trim().is_empty() {
        let (l, c) = top("id:");
        errors.push(LoadError::new(file, l, c, "`id` must not be empty"));
    }
    let _ = raw.description;
    let mut on = Vec::new();
    for t in raw.on.into_vec() {
        match t {
            RawTrigger::Name(n) => match TriggerKind::parse(&n) {
                Some(kind) => on.push(Trigger {
                    kind,
                    every_secs: None,
                }),
                None => {
                    let (l, c) = top(&n);
                    errors.push(LoadError::new(
                        file,
                        l,
                        c,
                        format!(
                            "unknown trigger `{n}`: use case.created, case.updated, case.tier_changed, alert.received or schedule: <every>"
                        ),
                    ));
                }
            },
            RawTrigger::Schedule { schedule } => {
                if schedule.0 < Duration::from_secs(60) {
                    let (l, c) = top("schedule:");
                    errors.push(LoadError::new(file, l, c, "`schedule` must be at least 1m"));
                }
                on.push(Trigger {
                    kind: TriggerKind::Schedule,
                    every_secs: Some(schedule.0.as_secs()),
                });
            }
        }
    }
    if let Some(c) = &raw.condition
        && let Err(e) = templates.check_expression(c)
    {
        errors.push(loc.place(file, 1, "if", c, &e));
    }

    let ids: Vec<String> = raw.steps.iter().map(|s| s.id.clone()).collect();
    let mut seen = BTreeSet::new();
    for id in &ids {
        if !seen.insert(id.as_str()) {
            let line = loc
                .lines
                .iter()
                .enumerate()
                .filter(|(_, l)| {
                    let t = l.trim_start().trim_start_matches('-').trim_start();
                    t.strip_prefix("id:")
                        .is_some_and(|r| r.trim().trim_matches(['"', '\'']) == id)
                })
                .nth(1)
                .map(|(i, _)| i + 1)
                .unwrap_or(0);
            errors.push(LoadError::new(
                file,
                line,
                1,
                format!("step id `{id}` is used twice; step ids must be unique"),
            ));
        }
    }
    if raw.steps.is_empty() {
        let (l, c) = top("steps:");
        errors.push(LoadError::new(
            file,
            l,
            c,
            "a playbook needs at least one step",
        ));
    }
    let target_ok = |t: &str| t == "end" || ids.iter().any(|i| i == t);

    let mut steps = Vec::new();
    for s in raw.steps {
        let at = loc.step(&s.id);
        let err = |needle: &str, msg: String| {
            let (l, c) = loc.find(at, needle).unwrap_or((at, 1));
            LoadError::new(file, l, c, format!("step `{}`: {msg}", s.id))
        };
        let mut step_errors = Vec::new();
        let check_expr = |key: &str, src: &str, errs: &mut Vec<LoadError>| {
            if let Err(e) = templates.check_expression(src) {
                let mut le = loc.place(file, at, key, src, &e);
                le.message = format!("step `{}`: {}", s.id, le.message);
                errs.push(le);
            }
        };
        let check_tmpl = |key: &str, src: &str, errs: &mut Vec<LoadError>| {
            if let Err(e) = templates.check_template(src) {
                let mut le = loc.place(file, at, key, src, &e);
                le.message = format!("step `{}`: {}", s.id, le.message);
                errs.push(le);
            }
        };
        if let Some(c) = &s.condition {
            check_expr("if", c, &mut step_errors);
        }
        let kinds: Vec<&str> = [
            ("action", s.action.is_some()),
            ("set", s.set.is_some()),
            ("tag", s.tag.is_some()),
            ("note", s.note.is_some()),
            ("assign", s.assign.is_some()),
            ("notify", s.notify.is_some()),
            ("approval", s.approval.is_some()),
            ("wait", s.wait.is_some()),
            ("branch", s.branch.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, present)| present.then_some(k))
        .collect();
        if kinds.len() != 1 {
            let msg = if kinds.is_empty() {
                "says nothing to do: give one of action, set, tag, note, assign, notify, approval, wait, branch".to_string()
            } else {
                format!(
                    "does {} things ({}); a step does one thing, split it",
                    kinds.len(),
                    kinds.join(", ")
                )
            };
            step_errors.push(err("id:", msg));
            errors.extend(step_errors);
            continue;
        }
        if s.params.is_some() && s.action.is_none() {
            step_errors.push(err(
                "params:",
                "`params` belongs to an `action` step".into(),
            ));
        }
        if s.reason.is_some() && s.action.is_none() {
            step_errors.push(err(
                "reason:",
                "`reason` belongs to an `action` step".into(),
            ));
        }
        let kind = if let Some(action) = s.action {
            let (connector, operation) = match action.split_once('.') {
                Some((c, o)) if !c.is_empty() && !o.is_empty() => (c.to_string(), o.to_string()),
                _ => {
                    step_errors.push(err(
                        "action:",
                        format!("`action: {action}` must be `connector.operation`"),
                    ));
                    (String::new(), String::new())
                }
            };
            if let Some(cs) = connectors
                && !connector.is_empty()
            {
                match cs.get(&connector) {
                    None => step_errors.push(err(
                        "action:",
                        format!("no connector `{connector}` is configured"),
                    )),
                    Some(c) if c.operation(&operation).is_none() => {
                        let known: Vec<&str> =
                            c.operations().iter().map(|o| o.name.as_str()).collect();
                        step_errors.push(err(
                            "action:",
                            format!(
                                "connector `{connector}` has no operation `{operation}` (it has: {})",
                                known.join(", ")
                            ),
                        ))
                    }
                    Some(_) => {}
                }
            }
            let params = s
                .params
                .unwrap_or(serde_json::Value::Object(Default::default()));
            if let Err((src, e)) = templates.check_value(&params) {
                let mut le = loc.place(file, at, "params", &src, &e);
                le.message = format!("step `{}`: {}", s.id, le.message);
                step_errors.push(le);
            }
            if let Some(r) = &s.reason {
                check_tmpl("reason", r, &mut step_errors);
            }
            StepKind::Action {
                connector,
                operation,
                params,
                reason: s.reason,
            }
        } else if let Some(fields) = s.set {
            for (k, v) in &fields {
                if !CASE_FIELDS.contains(&k.as_str()) {
                    step_errors.push(err(
                        &format!("{k}:"),
                        format!(
                            "`set.{k}`: only {} can be set on a case",
                            CASE_FIELDS.join(", ")
                        ),
                    ));
                }
                check_tmpl(k, v, &mut step_errors);
            }
            StepKind::Set { fields }
        } else if let Some(tags) = s.tag {
            let tags = tags.into_vec();
            for t in &tags {
                check_tmpl("tag", t, &mut step_errors);
            }
            StepKind::Tag { tags }
        } else if let Some(text) = s.note {
            check_tmpl("note", &text, &mut step_errors);
            StepKind::Note { text }
        } else if let Some(to) = s.assign {
            check_tmpl("assign", &to, &mut step_errors);
            StepKind::Assign { to }
        } else if let Some(n) = s.notify {
            check_tmpl("message", &n.message, &mut step_errors);
            if let Some(cs) = connectors {
                match cs.get(&n.via) {
                    None => step_errors.push(err(
                        "via:",
                        format!("no notifier `{}` is configured", n.via),
                    )),
                    Some(c) if c.operation("notify").is_none() => step_errors.push(err(
                        "via:",
                        format!("connector `{}` has no `notify` operation", n.via),
                    )),
                    Some(_) => {}
                }
            }
            StepKind::Notify {
                via: n.via,
                message: n.message,
            }
        } else if let Some(a) = s.approval {
            if let Some(m) = &a.message {
                check_tmpl("message", m, &mut step_errors);
            }
            if a.quorum == Some(0) {
                step_errors.push(err("quorum:", "`quorum` must be at least 1".into()));
            }
            StepKind::Approval {
                message: a.message,
                quorum: a.quorum,
                timeout_secs: duration_secs(a.timeout),
            }
        } else if let Some(w) = s.wait {
            if let Some(u) = &w.until {
                check_expr("until", u, &mut step_errors);
            }
            let timeout = match (w.duration, w.timeout, &w.until) {
                (Some(d), None, None) => Some(d.0.as_secs()),
                (None, Some(t), Some(_)) => Some(t.0.as_secs()),
                (None, None, Some(_)) => {
                    step_errors.push(err(
                        "wait:",
                        "`wait.until` needs a `timeout`: a run never waits for ever".into(),
                    ));
                    None
                }
                _ => {
                    step_errors.push(err(
                        "wait:",
                        "give `wait.for: <duration>`, or `wait.until: <condition>` with `timeout`"
                            .into(),
                    ));
                    None
                }
            };
            let fail_on_timeout = match w.on_timeout.as_deref() {
                None | Some("continue") => false,
                Some("fail") => true,
                Some(other) => {
                    step_errors.push(err(
                        "on_timeout:",
                        format!("`on_timeout: {other}`: use `continue` or `fail`"),
                    ));
                    false
                }
            };
            StepKind::Wait {
                until: w.until,
                timeout_secs: timeout.unwrap_or(0),
                fail_on_timeout,
            }
        } else if let Some(raw_arms) = s.branch {
            let mut arms = Vec::new();
            let n = raw_arms.len();
            for (i, a) in raw_arms.into_iter().enumerate() {
                match (&a.condition, a.otherwise) {
                    (Some(c), None) => check_expr("if", c, &mut step_errors),
                    (None, Some(true)) if i + 1 == n => {}
                    (None, Some(true)) => {
                        step_errors.push(err("else:", "the `else` arm must be the last".into()))
                    }
                    _ => step_errors.push(err(
                        "branch:",
                        format!(
                            "branch arm {} needs `if: <condition>` or `else: true`",
                            i + 1
                        ),
                    )),
                }
                if !target_ok(&a.goto) {
                    step_errors.push(err(
                        &format!("goto: {}", a.goto),
                        format!("`goto: {}` names no step (use a step id or `end`)", a.goto),
                    ));
                }
                arms.push(BranchArm {
                    condition: a.condition,
                    goto: a.goto,
                });
            }
            StepKind::Branch { arms }
        } else {
            // kinds.len() == 1 above guarantees one branch matched.
            continue;
        };

        let for_each = match s.for_each {
            None => None,
            Some(fe) => {
                if !matches!(
                    kind,
                    StepKind::Action { .. }
                        | StepKind::Notify { .. }
                        | StepKind::Note { .. }
                        | StepKind::Tag { .. }
                ) {
                    step_errors.push(err(
                        "for_each:",
                        format!("`for_each` does not apply to a `{}` step", kind.name()),
                    ));
                }
                check_expr("items", &fe.items, &mut step_errors);
                let max_items = match fe.max_items {
                    None => {
                        step_errors.push(err(
                            "for_each:",
                            "`for_each` needs `max_items`: a step never fans out without a bound"
                                .into(),
                        ));
                        1
                    }
                    Some(0) => {
                        step_errors
                            .push(err("max_items:", "`max_items` must be at least 1".into()));
                        1
                    }
                    Some(n) if n > MAX_ITEMS_CEILING => {
                        step_errors.push(err(
                            "max_items:",
                            format!("`max_items` is at most {MAX_ITEMS_CEILING}"),
                        ));
                        MAX_ITEMS_CEILING
                    }
                    Some(n) => n,
                };
                let concurrency = fe.concurrency.unwrap_or(1);
                if concurrency == 0 {
                    step_errors.push(err(
                        "concurrency:",
                        "`concurrency` must be at least 1".into(),
                    ));
                }
                Some(ForEach {
                    expr: fe.items,
                    max_items,
                    concurrency: concurrency.clamp(1, max_items),
                })
            }
        };
        let retry = match s.retry {
            None => Retry {
                attempts: 1,
                backoff_secs: 0,
            },
            Some(r) => {
                if r.attempts == 0 || r.attempts > 20 {
                    step_errors.push(err(
                        "attempts:",
                        "`retry.attempts` must be between 1 and 20".into(),
                    ));
                }
                Retry {
                    attempts: r.attempts.clamp(1, 20),
                    backoff_secs: duration_secs(r.backoff).unwrap_or(5),
                }
            }
        };
        let on_failure = match s.on_failure.as_deref().map(str::trim) {
            None | Some("stop") => OnFailure::Stop,
            Some("continue") => OnFailure::Continue,
            Some(other) => match other.strip_prefix("goto ") {
                Some(t) if target_ok(t.trim()) => OnFailure::Goto(t.trim().to_string()),
                Some(t) => {
                    step_errors.push(err(
                        "on_failure:",
                        format!("`on_failure: goto {t}` names no step"),
                    ));
                    OnFailure::Stop
                }
                None => {
                    step_errors.push(err(
                        "on_failure:",
                        format!("`on_failure: {other}`: use stop, continue or goto <step id>"),
                    ));
                    OnFailure::Stop
                }
            },
        };
        if s.expires.is_some() && !matches!(kind, StepKind::Action { .. }) {
            step_errors.push(err(
                "expires:",
                "`expires` applies to an `action` step (it reverts the action)".into(),
            ));
        }
        if let (
            Some(_),
            StepKind::Action {
                connector,
                operation,
                ..
            },
        ) = (&s.expires, &kind)
            && let Some(cs) = connectors
            && let Some(spec) = cs.spec(connector, operation)
            && spec.inverse.is_none()
        {
            step_errors.push(err(
                "expires:",
                format!("`{connector}.{operation}` has no inverse, so it cannot expire"),
            ));
        }
        errors.extend(step_errors);
        steps.push(Step {
            id: s.id,
            name: s.name,
            condition: s.condition,
            kind,
            for_each,
            retry,
            timeout_secs: duration_secs(s.timeout).unwrap_or(30),
            on_failure,
            expires_secs: duration_secs(s.expires),
        });
    }

    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.line, e.column));
        return Err(LoadErrors(errors));
    }
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    let version = match raw.version {
        Some(yaml_serde::Value::String(s)) => s,
        Some(yaml_serde::Value::Number(n)) => n.to_string(),
        _ => hash[..12].to_string(),
    };
    Ok(Playbook {
        id: raw.id,
        name: raw.name,
        version,
        hash,
        file: file.to_string(),
        on,
        condition: raw.condition,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Playbook, LoadErrors> {
        load("pb.yaml", text, &Templates::default(), None)
    }

    const GOOD: &str = r#"id: contain-host
name: Contain a host on a high case
version: 2
on: [case.created, case.tier_changed]
if: case.tier in ["validated", "high"] and "domain-controller" not in case.asset_tags
steps:
  - id: note
    note: "Containment playbook started for {{ case.id }}"
  - id: isolate
    action: edr.isolate_host
    for_each:
      items: case.entities | selectattr("type", "eq", "host") | map(attribute="value") | list
      max_items: 5
      concurrency: 2
    params:
      host: "{{ item }}"
    retry: { attempts: 3, backoff: 10s }
    timeout: 20s
    expires: 4h
  - id: decide
    branch:
      - if: case.tier == "validated"
        goto: close
      - else: true
        goto: end
  - id: close
    set: { status: contained }
"#;

    #[test]
    fn a_good_playbook_loads() {
        let p = check(GOOD).unwrap();
        assert_eq!(p.version, "2");
        assert_eq!(p.steps.len(), 4);
        assert_eq!(p.steps[1].for_each.as_ref().unwrap().concurrency, 2);
        assert_eq!(p.steps[1].retry.attempts, 3);
        assert_eq!(p.steps[1].expires_secs, Some(4 * 3600));
        assert!(p.triggered_by(TriggerKind::CaseTierChanged));
        assert_eq!(p.hash.len(), 64);
    }

    fn one_error(text: &str) -> LoadError {
        let errs = check(text).unwrap_err();
        assert_eq!(errs.0.len(), 1, "{errs}");
        errs.0.into_iter().next().unwrap()
    }

    #[test]
    fn yaml_errors_have_positions() {
        let e =
            one_error("id: x\nname: y\non: case.created\nsteps:\n  - id: a\n    note: [unclosed\n");
        assert_eq!(e.file, "pb.yaml");
        assert!(e.line >= 6, "{e}");
        let e = one_error("id: x\nname: y\non: case.created\nsteps:\n  - id: a\n    nots: hi\n");
        assert_eq!((e.line, e.column), (6, 5), "{e}");
        assert!(e.message.contains("nots"), "{e}");
    }

    #[test]
    fn expression_errors_point_into_the_file() {
        let e = one_error(
            "id: x\nname: y\non: case.created\nif: case.tier == \nsteps:\n  - id: a\n    note: hi\n",
        );
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("`if`"), "{e}");
        let e = one_error(
            "id: x\nname: y\non: case.created\nsteps:\n  - id: a\n    note: ok\n  - id: b\n    note: \"host {{ case.id + }}\"\n",
        );
        assert_eq!(e.line, 8, "{e}");
        assert!(e.column > 11, "column inside the template: {e}");
        assert!(e.message.starts_with("step `b`"), "{e}");
        assert!(e.to_string().starts_with("pb.yaml:8:"), "{e}");
    }

    #[test]
    fn block_templates_point_at_the_inner_line() {
        let e = one_error(
            "id: x\nname: y\non: case.created\nsteps:\n  - id: a\n    note: |\n      line one {{ case.id }}\n      line two {{ case.id | }}\n",
        );
        assert_eq!(e.line, 8, "{e}");
    }

    #[test]
    fn structural_mistakes_are_named() {
        let e = one_error(
            "id: x\nname: y\non: case.created\nsteps:\n  - id: a\n    note: hi\n    tag: t\n",
        );
        assert!(e.message.contains("a step does one thing"), "{e}");
        assert_eq!(e.line, 5);
        let e = one_error(
            "id: x\nname: y\non: case.created\nsteps:\n  - id: a\n    branch:\n      - if: case.tier == 'high'\n        goto: nowhere\n",
        );
        assert!(e.message.contains("`goto: nowhere` names no step"), "{e}");
        assert_eq!(e.line, 8, "{e}");
        let e = one_error(
            "id: x\nname: y\non: case.created\nsteps:\n  - id: a\n    action: edr.isolate\n    for_each:\n      items: case.entities\n",
        );
        assert!(e.message.contains("max_items"), "{e}");
        let e = one_error("id: x\nname: y\non: case.sometimes\nsteps:\n  - id: a\n    note: hi\n");
        assert!(e.message.contains("unknown trigger"), "{e}");
        assert_eq!(e.line, 3);
        let e = one_error(
            "id: x\nname: y\non: case.created\nsteps:\n  - id: a\n    wait:\n      until: case.status == 'contained'\n",
        );
        assert!(e.message.contains("timeout"), "{e}");
        let e = one_error(
            "id: x\nname: y\non: case.created\nsteps:\n  - id: a\n    note: x\n  - id: a\n    note: y\n",
        );
        assert_eq!(e.line, 7, "{e}");
        let e = one_error(
            "id: x\nname: y\non: case.created\nsteps:\n  - id: a\n    set: { owner: bob }\n",
        );
        assert!(e.message.contains("only status"), "{e}");
        let e = one_error(
            "id: x\nname: y\non: case.created\nsteps:\n  - id: a\n    note: \"{{ cas.id }}\"\n",
        );
        assert!(e.message.contains("unknown name `cas`"), "{e}");
        assert_eq!((e.line, e.column), (6, 15), "{e}");
    }

    #[test]
    fn all_problems_are_reported_in_file_order() {
        let errs = check("id: x\nname: y\non: case.created\nsteps:\n  - id: a\n    note: \"{{ 1 + }}\"\n  - id: b\n    assign: \"{{ }}\"\n").unwrap_err();
        assert_eq!(errs.0.len(), 2, "{errs}");
        assert!(errs.0[0].line < errs.0[1].line);
    }
}
