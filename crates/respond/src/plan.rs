//! The dry run behind `riposte playbook test`: walks a playbook over a case the way the
//! engine would, and says what each step would do — parameters rendered, class, which gate
//! would stop it — without calling anything or changing anything.
//!
//! Approvals and waits are reported and then assumed passed, so the whole playbook is
//! shown; results of calls are unknown, so templates that read `steps.<id>` see
//! `{"dry_run": true}`.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::connector::Connectors;
use crate::playbook::{OnFailure, Playbook, StepKind};
use crate::policy::{Gate, Policy};
use crate::run::TriggerEvent;
use crate::template::Templates;

/// One line of the dry run per thing that would happen.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Whether the playbook would start for this event.
    pub starts: bool,
    pub lines: Vec<String>,
    /// Gates that would stop the run for a person (approvals, reviews, tier waits).
    pub gates: usize,
    /// Steps that would fail.
    pub failures: usize,
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        let cut: String = s.chars().take(300).collect();
        format!("{cut}…")
    } else {
        s
    }
}

fn duration(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 && s > 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Plans `pb` for `ev`. Without `connectors`, operation classes are unknown and reported so.
pub fn plan(
    pb: &Playbook,
    ev: &TriggerEvent,
    templates: &Templates,
    policy: &Policy,
    connectors: Option<&Connectors>,
) -> Plan {
    let mut p = Plan {
        starts: false,
        lines: Vec::new(),
        gates: 0,
        failures: 0,
    };
    let mut ctx = json!({
        "case": ev.case.clone().unwrap_or(Value::Null),
        "alert": ev.alert.clone().unwrap_or(Value::Null),
        "trigger": {"kind": ev.kind.as_str(), "event_id": ev.event_id},
        "playbook": {"id": pb.id, "name": pb.name, "version": pb.version},
        "run": {"id": "dry-run", "requested_by": ev.requested_by.clone().unwrap_or_else(|| format!("playbook:{}", pb.id))},
        "steps": {},
        "now": ev.at,
    });
    p.lines.push(format!(
        "playbook `{}` version {} ({}) on {}",
        pb.id,
        pb.version,
        &pb.hash[..12],
        ev.kind.as_str()
    ));
    if !pb.triggered_by(ev.kind) {
        p.lines.push(format!(
            "  does not start: it is not triggered by {}",
            ev.kind.as_str()
        ));
        return p;
    }
    if let Some(c) = &pb.condition {
        match templates.truthy(c, &ctx) {
            Ok(true) => p.lines.push(format!("  if `{c}`: true, it starts")),
            Ok(false) => {
                p.lines
                    .push(format!("  if `{c}`: false, it does not start"));
                return p;
            }
            Err(e) => {
                p.lines
                    .push(format!("  if `{c}`: fails ({e}), so it does not start"));
                p.failures += 1;
                return p;
            }
        }
    }
    p.starts = true;
    let tier = ev
        .case
        .as_ref()
        .and_then(|c| c.get("tier"))
        .and_then(|t| serde_json::from_value(t.clone()).ok());
    let mut pointer = 0;
    let mut budget = pb.steps.len() * 4 + 16;
    let mut n = 0;
    while pointer < pb.steps.len() {
        if budget == 0 {
            p.lines
                .push("  stops: the branches loop (the engine would fail the run)".into());
            p.failures += 1;
            break;
        }
        budget -= 1;
        n += 1;
        let step = &pb.steps[pointer];
        let head = format!("  {n}. {} ({})", step.id, step.kind.name());
        let mut next = pointer + 1;
        let mut failed: Option<String> = None;
        let mut out = String::new();
        let skip = match &step.condition {
            None => false,
            Some(c) => match templates.truthy(c, &ctx) {
                Ok(b) => !b,
                Err(e) => {
                    failed = Some(format!("its `if` fails: {e}"));
                    false
                }
            },
        };
        if skip {
            p.lines.push(format!("{head}: skipped, its `if` is false"));
            pointer = next;
            continue;
        }
        let items: Vec<Value> = match &step.for_each {
            None => vec![Value::Null],
            Some(fe) => match templates.eval(&fe.expr, &ctx) {
                Ok(Value::Array(a)) if a.len() <= fe.max_items as usize => a,
                Ok(Value::Array(a)) => {
                    failed = Some(format!(
                        "`for_each` gives {} items, over its bound of {}",
                        a.len(),
                        fe.max_items
                    ));
                    Vec::new()
                }
                Ok(Value::Null) => Vec::new(),
                Ok(other) => {
                    failed = Some(format!("`for_each` gives {other} instead of a list"));
                    Vec::new()
                }
                Err(e) => {
                    failed = Some(format!("`for_each` fails: {e}"));
                    Vec::new()
                }
            },
        };
        if failed.is_none() {
            if let Some(fe) = &step.for_each {
                let _ = write!(
                    out,
                    "{head}: for each of {} item(s), {} at a time:",
                    items.len(),
                    fe.concurrency
                );
            } else {
                out.push_str(&head);
                out.push(':');
            }
            match &step.kind {
                StepKind::Branch { arms } => {
                    let mut taken = None;
                    for arm in arms {
                        let take = match &arm.condition {
                            None => Ok(true),
                            Some(c) => templates.truthy(c, &ctx),
                        };
                        match take {
                            Ok(true) => {
                                taken = Some(arm);
                                break;
                            }
                            Ok(false) => {}
                            Err(e) => {
                                failed = Some(format!("a branch condition fails: {e}"));
                                break;
                            }
                        }
                    }
                    match taken {
                        Some(arm) => {
                            let _ = write!(
                                out,
                                " goes to `{}`{}",
                                arm.goto,
                                arm.condition
                                    .as_ref()
                                    .map(|c| format!(" (`{c}` holds)"))
                                    .unwrap_or_else(|| " (else)".into())
                            );
                            next = pb.step_index(&arm.goto).unwrap_or(pb.steps.len());
                        }
                        None => out.push_str(" no arm holds, goes on"),
                    }
                }
                StepKind::Wait {
                    until,
                    timeout_secs,
                    ..
                } => match until {
                    Some(c) => {
                        let now = templates.truthy(c, &ctx).unwrap_or(false);
                        let _ = write!(
                            out,
                            " waits until `{c}` (now {now}), at most {}; the dry run goes on",
                            duration(*timeout_secs)
                        );
                    }
                    None => {
                        let _ = write!(
                            out,
                            " waits {}; the dry run goes on",
                            duration(*timeout_secs)
                        );
                    }
                },
                StepKind::Approval {
                    message,
                    quorum,
                    timeout_secs,
                } => {
                    let rule = policy
                        .gate_for_step(*quorum, timeout_secs.map(std::time::Duration::from_secs));
                    let msg = message
                        .as_ref()
                        .map(|m| {
                            templates
                                .render(m, &ctx)
                                .unwrap_or_else(|e| format!("<{e}>"))
                        })
                        .unwrap_or_default();
                    p.gates += 1;
                    let _ = write!(
                        out,
                        " GATE: stops for approval ({} approver(s){}, denied after {}) \"{msg}\"; the dry run assumes approved",
                        rule.quorum,
                        if rule.four_eyes { ", four eyes" } else { "" },
                        duration(rule.timeout_secs)
                    );
                }
                StepKind::Set { fields } => {
                    for (k, v) in fields {
                        let _ = write!(
                            out,
                            " set {k} = {:?}",
                            templates
                                .render(v, &ctx)
                                .unwrap_or_else(|e| format!("<{e}>"))
                        );
                    }
                }
                StepKind::Tag { tags } => {
                    for item in &items {
                        let mut ictx = ctx.clone();
                        ictx["item"] = item.clone();
                        let rendered: Vec<String> = tags
                            .iter()
                            .map(|t| {
                                templates
                                    .render(t, &ictx)
                                    .unwrap_or_else(|e| format!("<{e}>"))
                            })
                            .collect();
                        let _ = write!(out, " tag {rendered:?}");
                    }
                }
                StepKind::Note { text } => {
                    for item in &items {
                        let mut ictx = ctx.clone();
                        ictx["item"] = item.clone();
                        match templates.render(text, &ictx) {
                            Ok(t) => {
                                let _ = write!(out, " note {t:?}");
                            }
                            Err(e) => failed = Some(e.to_string()),
                        }
                    }
                }
                StepKind::Assign { to } => {
                    let _ = write!(
                        out,
                        " assign to {:?}",
                        templates
                            .render(to, &ctx)
                            .unwrap_or_else(|e| format!("<{e}>"))
                    );
                }
                StepKind::Action { .. } | StepKind::Notify { .. } => {
                    let (conn, op) = match &step.kind {
                        StepKind::Action {
                            connector,
                            operation,
                            ..
                        } => (connector.as_str(), operation.as_str()),
                        StepKind::Notify { via, .. } => (via.as_str(), "notify"),
                        _ => ("", ""),
                    };
                    let spec = connectors.and_then(|c| c.spec(conn, op));
                    let class = spec.map(|s| policy.class_of(conn, s));
                    let _ = write!(
                        out,
                        " {conn}.{op}, class {}",
                        class
                            .map(|c| c.as_str())
                            .unwrap_or("unknown (no connector definitions given)")
                    );
                    for (i, item) in items.iter().enumerate() {
                        let mut ictx = ctx.clone();
                        ictx["item"] = item.clone();
                        let params = match &step.kind {
                            StepKind::Action { params, .. } => {
                                templates.render_value(params, &ictx)
                            }
                            StepKind::Notify { message, .. } => templates
                                .render(message, &ictx)
                                .map(|m| json!({"message": m})),
                            _ => Ok(Value::Null),
                        };
                        match params {
                            Ok(v) => {
                                let _ = write!(out, "\n       [{i}] would call with {}", short(&v));
                            }
                            Err(e) => {
                                failed = Some(format!("item {i}: {e}"));
                                break;
                            }
                        }
                        if let Some(c) = class {
                            match policy.gate(conn, op, c, tier) {
                                Gate::Open => out.push_str(", no gate: runs at once"),
                                Gate::Approval(rule) => {
                                    p.gates += 1;
                                    let why = match rule.until_tier {
                                        Some(t) => format!(
                                            "waits for the case to reach tier {t:?} or an approval"
                                        ),
                                        None if rule.reason_required => {
                                            "stops for a full review with a written reason".into()
                                        }
                                        None => "stops for approval".into(),
                                    };
                                    let _ = write!(
                                        out,
                                        "\n       GATE: {why} ({} approver(s){}, denied after {})",
                                        rule.quorum,
                                        if rule.four_eyes { ", four eyes" } else { "" },
                                        duration(rule.timeout_secs)
                                    );
                                }
                            }
                        }
                    }
                    if let Some(secs) = step.expires_secs {
                        let _ = write!(
                            out,
                            "\n       reverts itself after {} unless confirmed",
                            duration(secs)
                        );
                    }
                    ctx["steps"][step.id.as_str()] = if step.for_each.is_some() {
                        json!({"dry_run": true, "items": vec![json!({"dry_run": true}); items.len()]})
                    } else {
                        json!({"dry_run": true, "fields": {}})
                    };
                }
            }
        }
        match failed {
            Some(e) => {
                p.failures += 1;
                let then = match &step.on_failure {
                    OnFailure::Stop => {
                        next = pb.steps.len();
                        "the run stops".to_string()
                    }
                    OnFailure::Continue => "the run goes on".to_string(),
                    OnFailure::Goto(t) => {
                        next = pb.step_index(t).unwrap_or(pb.steps.len());
                        format!("the run goes to `{t}`")
                    }
                };
                p.lines.push(format!("{head}: FAILS: {e}; {then}"));
            }
            None => p.lines.push(out),
        }
        pointer = next;
    }
    p.lines.push(format!(
        "  end: {} gate(s) would stop for people, {} step(s) would fail; nothing was called",
        p.gates, p.failures
    ));
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook;
    use crate::playbook::TriggerKind;

    #[test]
    fn a_dry_run_renders_and_names_the_gates() {
        let t = Templates::default();
        let pb = playbook::load(
            "p.yaml",
            r#"id: p
name: p
on: case.created
if: case.tier == "high"
steps:
  - id: ask
    approval: { message: "isolate {{ case.id }}?" }
  - id: note
    note: "on {{ case.entities[0].value }}"
  - id: decide
    branch:
      - if: case.risk > 90
        goto: end
      - else: true
        goto: close
  - id: skipped
    note: never
  - id: close
    set: { status: contained }
"#,
            &t,
            None,
        )
        .unwrap();
        let ev = TriggerEvent {
            kind: TriggerKind::CaseCreated,
            event_id: "e".into(),
            case: Some(
                json!({"id": "c-1", "tier": "high", "risk": 70, "entities": [{"value": "WS-1"}]}),
            ),
            alert: None,
            at: riposte_domain::Timestamp::UNIX_EPOCH,
            requested_by: None,
        };
        let plan = plan(&pb, &ev, &t, &Policy::default(), None);
        let text = plan.lines.join("\n");
        assert!(plan.starts);
        assert_eq!(plan.gates, 1, "{text}");
        assert!(text.contains("\"isolate c-1?\""), "{text}");
        assert!(text.contains("note \"on WS-1\""), "{text}");
        assert!(text.contains("goes to `close` (else)"), "{text}");
        assert!(!text.contains("skipped (note)"), "{text}");
        assert!(text.contains("set status = \"contained\""), "{text}");
    }
}
