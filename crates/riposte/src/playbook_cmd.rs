//! `riposte playbook check|test`: load playbooks as the server would and report, or dry-run
//! one over a case without calling anything.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Subcommand;
use riposte_respond::connector::Connectors;
use riposte_respond::secrets::StaticSecrets;
use riposte_respond::{Policy, Templates, TriggerEvent, TriggerKind, playbook};

#[derive(Subcommand)]
pub enum PlaybookCommand {
    /// Load playbooks and report every problem as file:line:column.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Connector definitions (YAML) the playbooks call; without them, operations are
        /// checked for form only.
        #[arg(long = "connector")]
        connectors: Vec<PathBuf>,
        /// Policy file, checked against the connectors.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Dry run: print each step the playbook would take over a case, with its parameters
    /// rendered and the gates that would stop it. Calls nothing.
    Test {
        file: PathBuf,
        /// The case document (JSON), as `GET /api/v1/cases/{id}` returns it.
        #[arg(long)]
        case: PathBuf,
        /// An alert document (JSON), for `alert.received` playbooks.
        #[arg(long)]
        alert: Option<PathBuf>,
        /// The trigger to simulate; default: the playbook's first.
        #[arg(long)]
        on: Option<String>,
        #[arg(long = "connector")]
        connectors: Vec<PathBuf>,
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Who asks, for four-eyes rules (default: the playbook itself).
        #[arg(long)]
        by: Option<String>,
    },
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Loads connector definitions. Secrets are not needed to load or to plan: none is opened.
fn load_connectors(
    files: &[PathBuf],
    templates: &Arc<Templates>,
) -> std::result::Result<Option<Connectors>, Vec<String>> {
    if files.is_empty() {
        return Ok(None);
    }
    let mut cs = Connectors::new();
    let mut errors = Vec::new();
    for f in files {
        let name = f.display().to_string();
        match read(f) {
            Err(e) => errors.push(format!("{e:#}")),
            Ok(text) => match riposte_connectors::load(
                &name,
                &text,
                templates.clone(),
                Arc::new(StaticSecrets::default()),
            ) {
                Ok(c) => cs.add(c),
                Err(e) => errors.push(e.to_string()),
            },
        }
    }
    if errors.is_empty() {
        Ok(Some(cs))
    } else {
        Err(errors)
    }
}

fn load_policy(path: Option<&Path>) -> Result<Policy, Vec<String>> {
    match path {
        None => Ok(Policy::default()),
        Some(p) => {
            let text = read(p).map_err(|e| vec![format!("{e:#}")])?;
            Policy::load(&p.display().to_string(), &text).map_err(|e| vec![e.to_string()])
        }
    }
}

pub fn run(command: PlaybookCommand) -> Result<ExitCode> {
    let templates = Arc::new(Templates::default());
    match command {
        PlaybookCommand::Check {
            files,
            connectors,
            policy,
        } => {
            let mut errors: Vec<String> = Vec::new();
            let cs = load_connectors(&connectors, &templates).unwrap_or_else(|e| {
                errors.extend(e);
                None
            });
            match load_policy(policy.as_deref()) {
                Ok(p) => {
                    if let Some(cs) = &cs
                        && let Err(es) = p.check_against(cs.catalogue())
                    {
                        errors.extend(es.iter().map(ToString::to_string));
                    }
                }
                Err(e) => errors.extend(e),
            }
            let mut ok = 0;
            for f in &files {
                let name = f.display().to_string();
                let text = match read(f) {
                    Ok(t) => t,
                    Err(e) => {
                        errors.push(format!("{e:#}"));
                        continue;
                    }
                };
                match playbook::load(&name, &text, &templates, cs.as_ref()) {
                    Ok(p) => {
                        ok += 1;
                        println!(
                            "{name}: ok: `{}` version {}, {} step(s), on {}",
                            p.id,
                            p.version,
                            p.steps.len(),
                            p.on.iter()
                                .map(|t| t.kind.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                    Err(es) => errors.extend(es.0.iter().map(ToString::to_string)),
                }
            }
            for e in &errors {
                eprintln!("{e}");
            }
            if errors.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "{} problem(s); {ok} of {} playbook(s) loaded",
                    errors.len(),
                    files.len()
                );
                Ok(ExitCode::from(1))
            }
        }
        PlaybookCommand::Test {
            file,
            case,
            alert,
            on,
            connectors,
            policy,
            by,
        } => {
            let mut problems = Vec::new();
            let cs = load_connectors(&connectors, &templates).unwrap_or_else(|e| {
                problems.extend(e);
                None
            });
            let policy = load_policy(policy.as_deref()).unwrap_or_else(|e| {
                problems.extend(e);
                Policy::default()
            });
            let name = file.display().to_string();
            match playbook::load(&name, &read(&file)?, &templates, cs.as_ref()) {
                Err(es) => problems.extend(es.0.iter().map(ToString::to_string)),
                Ok(pb) => {
                    if !problems.is_empty() {
                        for p in &problems {
                            eprintln!("{p}");
                        }
                        return Ok(ExitCode::from(1));
                    }
                    let case: serde_json::Value = serde_json::from_str(&read(&case)?)
                        .with_context(|| format!("{}: not JSON", case.display()))?;
                    let alert = match alert {
                        Some(a) => Some(
                            serde_json::from_str(&read(&a)?)
                                .with_context(|| format!("{}: not JSON", a.display()))?,
                        ),
                        None => None,
                    };
                    let kind = match on {
                        Some(k) => serde_json::from_value::<TriggerKind>(serde_json::json!(k))
                            .map_err(|_| anyhow::anyhow!("unknown trigger `{k}`: use case.created, case.updated, case.tier_changed, alert.received or schedule"))?,
                        None => pb.on.first().map(|t| t.kind).unwrap_or(TriggerKind::CaseCreated),
                    };
                    let ev = TriggerEvent {
                        kind,
                        event_id: "dry-run".into(),
                        case: Some(case),
                        alert,
                        at: riposte_domain::Timestamp::now(),
                        requested_by: by,
                    };
                    let plan =
                        riposte_respond::plan::plan(&pb, &ev, &templates, &policy, cs.as_ref());
                    for l in &plan.lines {
                        println!("{l}");
                    }
                    return Ok(if plan.failures > 0 {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    });
                }
            }
            for p in &problems {
                eprintln!("{p}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
