//! Policy: which operations run alone, which wait for one click, which need a full review.
//!
//! Every connector operation declares a [`Class`]. The policy file can *raise* an operation's
//! class (never lower it: a lowering entry is refused at load against the catalogue, and the
//! effective class is always the maximum), demand a minimum case tier before `auto` runs,
//! require four eyes (approver ≠ requester) and a quorum of distinct approvers, and bound how
//! long an approval may wait: an unanswered approval is *denied* when it times out.
//! Irreversible operations are at least `approve`, whatever they declare.
//!
//! [`ApprovalState`] is the one place where answers are judged; it is plain data so the run
//! store keeps it with the action and an answer is applied exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use riposte_domain::{ConfidenceTier, Timestamp};
use serde::{Deserialize, Serialize};

use crate::connector::OperationSpec;
use crate::duration::{HumanDuration, add};
use crate::error::LoadError;

/// How much human attention an operation needs before it runs. Ordered: `Auto < Approve <
/// Review`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Runs alone: enrichment, tagging, notes, look-ups.
    Auto,
    /// One click by an approver: isolate a host, disable an account, block an address.
    Approve,
    /// Full review with a written reason: delete data, change a public firewall rule.
    Review,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Auto => "auto",
            Class::Approve => "approve",
            Class::Review => "review",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    /// `connector.operation` (or `connector.*`) → class.
    #[serde(default)]
    raise: BTreeMap<String, Class>,
    #[serde(default)]
    min_tier_for_auto: Option<ConfidenceTier>,
    #[serde(default)]
    four_eyes: bool,
    #[serde(default)]
    quorum: Option<u32>,
    /// `connector.operation` → approvers needed.
    #[serde(default)]
    quorum_for: BTreeMap<String, u32>,
    #[serde(default)]
    approval_timeout: Option<HumanDuration>,
}

/// The loaded policy. [`Policy::default`] is the most permissive one the design allows:
/// declared classes, no minimum tier, one approver, four eyes off, approvals wait 24 h.
#[derive(Debug, Clone)]
pub struct Policy {
    raise: BTreeMap<String, Class>,
    pub min_tier_for_auto: Option<ConfidenceTier>,
    pub four_eyes: bool,
    pub quorum: u32,
    quorum_for: BTreeMap<String, u32>,
    pub approval_timeout: Duration,
    /// Where each `raise` entry sits in the file, for refusals against the catalogue.
    lines: BTreeMap<String, usize>,
    file: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            raise: BTreeMap::new(),
            min_tier_for_auto: None,
            four_eyes: false,
            quorum: 1,
            quorum_for: BTreeMap::new(),
            approval_timeout: Duration::from_secs(24 * 3600),
            lines: BTreeMap::new(),
            file: String::new(),
        }
    }
}

/// What stands between a step and its call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "gate", rename_all = "snake_case")]
pub enum Gate {
    /// Nothing: it runs now.
    Open,
    /// It waits for approval (or, for `auto` below the minimum tier, for the tier to rise).
    Approval(ApprovalRule),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRule {
    pub class: Class,
    pub quorum: u32,
    pub four_eyes: bool,
    pub reason_required: bool,
    pub timeout_secs: u64,
    /// Set when an `auto` operation waits because the case is below this tier; reaching the
    /// tier opens the gate without a click.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_tier: Option<ConfidenceTier>,
}

impl Policy {
    pub fn load(file: &str, text: &str) -> Result<Policy, LoadError> {
        let raw: RawPolicy = yaml_serde::from_str(text).map_err(|e| LoadError::yaml(file, &e))?;
        let line_of = |key: &str| {
            text.lines()
                .position(|l| {
                    let t = l.trim_start().trim_start_matches(['"', '\'']);
                    t.starts_with(key)
                })
                .map(|i| i + 1)
                .unwrap_or(0)
        };
        let quorum = raw.quorum.unwrap_or(1);
        if quorum == 0 {
            return Err(LoadError::new(
                file,
                line_of("quorum:"),
                1,
                "`quorum` must be at least 1",
            ));
        }
        for (op, n) in &raw.quorum_for {
            if *n == 0 {
                return Err(LoadError::new(
                    file,
                    line_of(op),
                    1,
                    format!("`quorum_for.{op}` must be at least 1"),
                ));
            }
        }
        let lines = raw.raise.keys().map(|k| (k.clone(), line_of(k))).collect();
        Ok(Policy {
            raise: raw.raise,
            min_tier_for_auto: raw.min_tier_for_auto,
            four_eyes: raw.four_eyes,
            quorum,
            quorum_for: raw.quorum_for,
            approval_timeout: raw
                .approval_timeout
                .map(|d| d.0)
                .unwrap_or(Duration::from_secs(24 * 3600)),
            lines,
            file: file.to_string(),
        })
    }

    /// Refuses `raise` entries that would lower a declared class (the effective class would
    /// ignore them anyway; saying so at load stops a false sense of control).
    pub fn check_against<'a>(
        &self,
        catalogue: impl IntoIterator<Item = (&'a str, &'a OperationSpec)>,
    ) -> Result<(), Vec<LoadError>> {
        let mut errors = Vec::new();
        for (connector, op) in catalogue {
            let name = format!("{connector}.{}", op.name);
            let floor = op.floor_class();
            for key in [name.clone(), format!("{connector}.*")] {
                if let Some(c) = self.raise.get(&key)
                    && *c < floor
                {
                    errors.push(LoadError::new(
                        &self.file,
                        self.lines.get(&key).copied().unwrap_or(0),
                        1,
                        format!(
                            "`{key}: {}` would lower `{name}` from `{}`; a policy can only raise a class",
                            c.as_str(),
                            floor.as_str()
                        ),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The class an operation runs under: the highest of what it declares, what its
    /// irreversibility demands, and what the policy raises it to.
    pub fn class_of(&self, connector: &str, op: &OperationSpec) -> Class {
        let mut c = op.floor_class();
        for key in [format!("{connector}.{}", op.name), format!("{connector}.*")] {
            if let Some(r) = self.raise.get(&key) {
                c = c.max(*r);
            }
        }
        c
    }

    fn quorum_of(&self, connector: &str, op: &str) -> u32 {
        self.quorum_for
            .get(&format!("{connector}.{op}"))
            .copied()
            .unwrap_or(self.quorum)
            .max(1)
    }

    /// The gate for an operation of `class` on a case of `tier`.
    pub fn gate(
        &self,
        connector: &str,
        op: &str,
        class: Class,
        tier: Option<ConfidenceTier>,
    ) -> Gate {
        let rule = |class, until_tier| ApprovalRule {
            class,
            quorum: self.quorum_of(connector, op),
            four_eyes: self.four_eyes,
            reason_required: class == Class::Review,
            timeout_secs: self.approval_timeout.as_secs(),
            until_tier,
        };
        match class {
            Class::Auto => match (self.min_tier_for_auto, tier) {
                (Some(min), Some(t)) if t < min => Gate::Approval(rule(Class::Auto, Some(min))),
                (Some(min), None) => Gate::Approval(rule(Class::Auto, Some(min))),
                _ => Gate::Open,
            },
            c => Gate::Approval(rule(c, None)),
        }
    }

    /// The gate of an explicit approval step in a playbook.
    pub fn gate_for_step(&self, quorum: Option<u32>, timeout: Option<Duration>) -> ApprovalRule {
        ApprovalRule {
            class: Class::Approve,
            quorum: quorum.unwrap_or(self.quorum).max(self.quorum).max(1),
            four_eyes: self.four_eyes,
            reason_required: false,
            timeout_secs: timeout
                .unwrap_or(self.approval_timeout)
                .min(self.approval_timeout)
                .as_secs(),
            until_tier: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Rejected,
    /// Nobody answered in time.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub principal: String,
    pub approve: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: Timestamp,
}

/// One approval in progress or decided. Stored with its action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalState {
    pub rule: ApprovalRule,
    /// Who asked: a person, or `playbook:<id>` when a playbook did.
    pub requested_by: String,
    pub requested_at: Timestamp,
    pub deadline: Timestamp,
    pub votes: Vec<Vote>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("it was already answered ({0:?})")]
    AlreadyDecided(Decision),
    #[error("the approval timed out at {deadline} and was denied")]
    Expired { deadline: Timestamp },
    #[error("four eyes: `{principal}` requested it and cannot approve it too")]
    SelfApproval { principal: String },
    #[error("`{principal}` has already answered")]
    AlreadyVoted { principal: String },
    #[error("a `review` operation needs a written reason")]
    ReasonRequired,
    #[error("there is no approval waiting on this action")]
    NotWaiting,
}

/// Where an approval stands after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStatus {
    Pending { approvals: u32, needed: u32 },
    Decided(Decision),
}

impl ApprovalState {
    pub fn new(rule: ApprovalRule, requested_by: &str, now: Timestamp) -> ApprovalState {
        let deadline = add(now, Duration::from_secs(rule.timeout_secs));
        ApprovalState {
            rule,
            requested_by: requested_by.to_string(),
            requested_at: now,
            deadline,
            votes: Vec::new(),
            decision: None,
        }
    }

    fn approvals(&self) -> u32 {
        self.votes.iter().filter(|v| v.approve).count() as u32
    }

    /// Judges one answer. A rejection decides at once; approvals count until the quorum of
    /// distinct principals is met.
    pub fn answer(
        &mut self,
        principal: &str,
        approve: bool,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<ApprovalStatus, ApprovalError> {
        if let Some(d) = self.decision {
            return Err(ApprovalError::AlreadyDecided(d));
        }
        if now >= self.deadline {
            self.decision = Some(Decision::Expired);
            return Err(ApprovalError::Expired {
                deadline: self.deadline,
            });
        }
        if approve && self.rule.four_eyes && principal == self.requested_by {
            return Err(ApprovalError::SelfApproval {
                principal: principal.to_string(),
            });
        }
        if self.votes.iter().any(|v| v.principal == principal) {
            return Err(ApprovalError::AlreadyVoted {
                principal: principal.to_string(),
            });
        }
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if approve && self.rule.reason_required && reason.is_none() {
            return Err(ApprovalError::ReasonRequired);
        }
        self.votes.push(Vote {
            principal: principal.to_string(),
            approve,
            reason: reason.map(str::to_string),
            at: now,
        });
        if !approve {
            self.decision = Some(Decision::Rejected);
            return Ok(ApprovalStatus::Decided(Decision::Rejected));
        }
        let have = self.approvals();
        if have >= self.rule.quorum {
            self.decision = Some(Decision::Approved);
            Ok(ApprovalStatus::Decided(Decision::Approved))
        } else {
            Ok(ApprovalStatus::Pending {
                approvals: have,
                needed: self.rule.quorum,
            })
        }
    }

    /// Denies an unanswered approval whose time is up; true when it did.
    pub fn expire(&mut self, now: Timestamp) -> bool {
        if self.decision.is_none() && now >= self.deadline {
            self.decision = Some(Decision::Expired);
            true
        } else {
            false
        }
    }

    /// Opens an `auto` gate that waited for the case tier, when the tier is reached.
    pub fn tier_reached(&mut self, tier: ConfidenceTier) -> bool {
        match self.rule.until_tier {
            Some(min) if self.decision.is_none() && tier >= min => {
                self.decision = Some(Decision::Approved);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str, class: Class, irreversible: bool) -> OperationSpec {
        OperationSpec {
            name: name.into(),
            class,
            inverse: None,
            irreversible,
            idempotent: false,
        }
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn raise_never_lower() {
        let p = Policy::load(
            "policy.yaml",
            "raise:\n  edr.isolate_host: review\n  edr.lookup: approve\n  fw.block_ip: auto\n",
        )
        .unwrap();
        let iso = op("isolate_host", Class::Approve, false);
        let look = op("lookup", Class::Auto, false);
        let block = op("block_ip", Class::Approve, false);
        assert_eq!(p.class_of("edr", &iso), Class::Review);
        assert_eq!(p.class_of("edr", &look), Class::Approve);
        // The lowering entry is ignored by the effective class…
        assert_eq!(p.class_of("fw", &block), Class::Approve);
        // …and refused against the catalogue, at its line.
        let errs = p
            .check_against([("edr", &iso), ("edr", &look), ("fw", &block)])
            .unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 4);
        assert!(errs[0].message.contains("only raise"), "{}", errs[0]);
    }

    #[test]
    fn irreversible_is_at_least_approve() {
        let p = Policy::default();
        assert_eq!(
            p.class_of("idp", &op("revoke_sessions", Class::Auto, true)),
            Class::Approve
        );
    }

    #[test]
    fn min_tier_makes_auto_wait_until_the_tier_rises() {
        let p = Policy::load("p.yaml", "min_tier_for_auto: high\n").unwrap();
        assert_eq!(
            p.gate(
                "edr",
                "lookup",
                Class::Auto,
                Some(ConfidenceTier::Validated)
            ),
            Gate::Open
        );
        let Gate::Approval(rule) =
            p.gate("edr", "lookup", Class::Auto, Some(ConfidenceTier::Medium))
        else {
            panic!("auto below the minimum tier must wait")
        };
        assert_eq!(rule.until_tier, Some(ConfidenceTier::High));
        let mut a = ApprovalState::new(rule, "playbook:x", t(0));
        assert!(!a.tier_reached(ConfidenceTier::Medium));
        assert!(a.tier_reached(ConfidenceTier::High));
        assert_eq!(a.decision, Some(Decision::Approved));
    }

    #[test]
    fn review_needs_a_written_reason() {
        let p = Policy::default();
        let Gate::Approval(rule) = p.gate("fw", "public_rule", Class::Review, None) else {
            panic!()
        };
        let mut a = ApprovalState::new(rule, "playbook:x", t(0));
        assert_eq!(
            a.answer("carol", true, None, t(1)),
            Err(ApprovalError::ReasonRequired)
        );
        assert_eq!(
            a.answer("carol", true, Some("   "), t(1)),
            Err(ApprovalError::ReasonRequired)
        );
        assert_eq!(
            a.answer("carol", true, Some("confirmed C2 with the owner"), t(1)),
            Ok(ApprovalStatus::Decided(Decision::Approved))
        );
    }

    #[test]
    fn four_eyes_refuses_self_approval_and_quorum_counts_distinct_people() {
        let p = Policy::load(
            "p.yaml",
            "four_eyes: true\nquorum_for:\n  edr.isolate_host: 2\n",
        )
        .unwrap();
        let Gate::Approval(rule) = p.gate("edr", "isolate_host", Class::Approve, None) else {
            panic!()
        };
        assert_eq!(rule.quorum, 2);
        let mut a = ApprovalState::new(rule, "alice", t(0));
        assert_eq!(
            a.answer("alice", true, None, t(1)),
            Err(ApprovalError::SelfApproval {
                principal: "alice".into()
            })
        );
        assert_eq!(
            a.answer("bob", true, None, t(2)),
            Ok(ApprovalStatus::Pending {
                approvals: 1,
                needed: 2
            })
        );
        assert_eq!(
            a.answer("bob", true, None, t(3)),
            Err(ApprovalError::AlreadyVoted {
                principal: "bob".into()
            })
        );
        assert_eq!(
            a.answer("carol", true, None, t(4)),
            Ok(ApprovalStatus::Decided(Decision::Approved))
        );
        assert_eq!(
            a.answer("dave", false, None, t(5)),
            Err(ApprovalError::AlreadyDecided(Decision::Approved))
        );
    }

    #[test]
    fn timeout_denies() {
        let p = Policy::load("p.yaml", "approval_timeout: 1h\n").unwrap();
        let Gate::Approval(rule) = p.gate("edr", "isolate_host", Class::Approve, None) else {
            panic!()
        };
        let mut a = ApprovalState::new(rule, "playbook:x", t(0));
        assert!(!a.expire(t(3599)));
        assert!(a.expire(t(3600)));
        assert_eq!(a.decision, Some(Decision::Expired));
        assert_eq!(
            a.answer("bob", true, None, t(3601)),
            Err(ApprovalError::AlreadyDecided(Decision::Expired))
        );
        // Answering late also finds it denied, even before anyone called expire.
        let Gate::Approval(rule) = p.gate("edr", "isolate_host", Class::Approve, None) else {
            panic!()
        };
        let mut b = ApprovalState::new(rule, "playbook:x", t(0));
        assert!(matches!(
            b.answer("bob", true, None, t(7200)),
            Err(ApprovalError::Expired { .. })
        ));
        assert_eq!(b.decision, Some(Decision::Expired));
    }

    #[test]
    fn a_rejection_decides() {
        let mut a = ApprovalState::new(
            Policy::default().gate_for_step(Some(3), None),
            "playbook:x",
            t(0),
        );
        assert_eq!(
            a.answer("bob", false, Some("server is prod"), t(1)),
            Ok(ApprovalStatus::Decided(Decision::Rejected))
        );
    }

    #[test]
    fn bad_policy_files_name_the_line() {
        let e = Policy::load("p.yaml", "raise:\n  edr.x: sometimes\n").unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("p.yaml", 2), "{e}");
        let e = Policy::load("p.yaml", "four_eye: true\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(e.message.contains("four_eye"), "{e}");
    }
}
