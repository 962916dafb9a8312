//! Start-up of the response engine for `riposte serve`: secrets, connectors, policy and
//! playbooks loaded from the `respond:` section of the configuration (every problem named
//! as `file:line:column` and start-up refused), the engine on the SQLite store, and the
//! tasks that feed it (case changes, the tick).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use riposte_connectors::edl::{EdlLists, ListFuture};
use riposte_respond::secrets::{OpenVault, SecretError, StaticSecrets};
use riposte_respond::{
    Connectors, Engine, Playbook, Policy, SecretKey, SecretSource, Templates, playbook,
};
use riposte_server::live::LiveCases;
use riposte_server::respond::{EngineHandle, Responder, follow_cases, start_ticker};
use riposte_server::slack::SlackApprovals;
use riposte_store::{SqliteStore, Store};

use crate::config::{Config, RespondConfig, yaml_files};

/// The store, as the list store of `kind: edl` connectors.
pub struct StoreLists<S: Store>(pub Arc<S>);

impl<S: Store> EdlLists for StoreLists<S> {
    fn add<'a>(&'a self, list: &'a str, value: &'a str, actor: &'a str) -> ListFuture<'a, bool> {
        Box::pin(async move {
            self.0
                .edl_add(list, value, actor)
                .await
                .map_err(|e| format!("list `{list}`: {e}"))
        })
    }

    fn remove<'a>(&'a self, list: &'a str, value: &'a str, actor: &'a str) -> ListFuture<'a, bool> {
        Box::pin(async move {
            self.0
                .edl_remove(list, value, actor)
                .await
                .map_err(|e| format!("list `{list}`: {e}"))
        })
    }

    fn entries<'a>(&'a self, list: &'a str) -> ListFuture<'a, Vec<String>> {
        Box::pin(async move {
            self.0
                .edl_entries(list)
                .await
                .map_err(|e| format!("list `{list}`: {e}"))
        })
    }
}

/// How often the engine looks at waiting runs, back-offs, approval deadlines and expiries.
pub const TICK: Duration = Duration::from_secs(1);

/// What a configuration's `respond:` section loads to.
pub struct Loaded {
    pub approval_notifiers: Vec<String>,
    /// The Slack approvals route, when `respond: slack:` is set.
    pub slack: Option<Arc<SlackApprovals>>,
    pub policy: Policy,
    pub connectors: Connectors,
    pub playbooks: Vec<Playbook>,
    pub templates: Arc<Templates>,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The secrets connectors name: the vault in the data directory opened with the key. With
/// no key configured and no vault, an empty source (connectors without auth still work; one
/// that names a secret fails its calls with the secret's name).
fn secrets(rc: &RespondConfig, config: &Config, data_dir: &Path) -> Result<Arc<dyn SecretSource>> {
    let vault = crate::secret_cmd::load_vault(data_dir)?;
    let key_file = rc.secret_key_file.as_ref().map(|p| config.resolve(p));
    match SecretKey::load(key_file.as_deref()) {
        Ok(key) => Ok(Arc::new(OpenVault { vault, key })),
        Err(SecretError::NoKey) if vault.names().next().is_none() => {
            Ok(Arc::new(StaticSecrets::default()))
        }
        Err(e) => Err(anyhow::anyhow!("respond: secrets: {e}")),
    }
}

/// Loads everything; all problems are reported together.
pub fn load(rc: &RespondConfig, config: &Config, data_dir: &Path) -> Result<Loaded> {
    let templates = Arc::new(Templates::default());
    let secrets = secrets(rc, config, data_dir)?;
    let mut errors: Vec<String> = Vec::new();
    let mut connectors = Connectors::new();
    if let Some(dir) = &rc.connectors {
        for f in yaml_files(&config.resolve(dir), "respond: connectors folder")? {
            let text = read(&f)?;
            match riposte_connectors::load(
                &f.display().to_string(),
                &text,
                templates.clone(),
                secrets.clone(),
            ) {
                Ok(c) => connectors.add(c),
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    let policy = match &rc.policy {
        None => Policy::default(),
        Some(p) => {
            let p = config.resolve(p);
            match Policy::load(&p.display().to_string(), &read(&p)?) {
                Ok(policy) => policy,
                Err(e) => {
                    errors.push(e.to_string());
                    Policy::default()
                }
            }
        }
    };
    for n in &rc.approvals.notify {
        match connectors.get(n) {
            None => errors.push(format!(
                "respond: approvals: notify: no connector is named `{n}`"
            )),
            Some(c) if c.operation("request_approval").is_none() && c.operation("notify").is_none() => {
                errors.push(format!(
                    "respond: approvals: notify: connector `{n}` has neither `request_approval` nor `notify`"
                ))
            }
            Some(_) => {}
        }
    }
    let slack = match &rc.slack {
        None => None,
        Some(sc) => match secrets.secret(&sc.signing_secret) {
            Ok(s) => Some(Arc::new(SlackApprovals::new(s, sc.users.clone()))),
            Err(e) => {
                errors.push(format!("respond: slack: signing_secret: {e}"));
                None
            }
        },
    };
    if let Err(es) = policy.check_against(connectors.catalogue()) {
        errors.extend(es.iter().map(ToString::to_string));
    }
    let mut playbooks = Vec::new();
    if let Some(dir) = &rc.playbooks {
        for f in yaml_files(&config.resolve(dir), "respond: playbooks folder")? {
            let text = read(&f)?;
            match playbook::load(
                &f.display().to_string(),
                &text,
                &templates,
                Some(&connectors),
            ) {
                Ok(p) => playbooks.push(p),
                Err(es) => errors.extend(es.0.iter().map(ToString::to_string)),
            }
        }
    }
    let mut seen = std::collections::BTreeMap::new();
    for p in &playbooks {
        if let Some(other) = seen.insert(p.id.clone(), p.file.clone()) {
            errors.push(format!(
                "{}: playbook id `{}` is also the id of {other}; ids must be unique",
                p.file, p.id
            ));
        }
    }
    if !errors.is_empty() {
        bail!(
            "the response configuration was refused:\n  {}",
            errors.join("\n  ")
        );
    }
    Ok(Loaded {
        approval_notifiers: rc.approvals.notify.clone(),
        slack,
        policy,
        connectors,
        playbooks,
        templates,
    })
}

/// Loads the `respond:` section, if there is one; call before anything else is started, so
/// a refusal leaves nothing behind.
pub fn load_configured(config: &Config, data_dir: &Path) -> Result<Option<Loaded>> {
    match &config.respond {
        None => Ok(None),
        Some(rc) => {
            riposte_respond::http::install_tls_provider();
            load(rc, config, data_dir).map(Some)
        }
    }
}

/// Activates the playbooks and starts the tasks that feed the engine.
pub async fn start(
    loaded: Loaded,
    store: Arc<SqliteStore>,
    cases: Option<&LiveCases>,
) -> Result<Arc<dyn Responder>> {
    let mut triggers = Vec::new();
    let engine = Arc::new(
        Engine::new(
            store.clone(),
            loaded.policy,
            loaded.connectors,
            loaded.templates,
        )
        .with_approval_notifiers(loaded.approval_notifiers),
    );
    let count = loaded.playbooks.len();
    for p in loaded.playbooks {
        triggers.extend(p.on.iter().map(|t| t.kind));
        let id = p.id.clone();
        engine
            .activate(p)
            .await
            .with_context(|| format!("activating playbook `{id}`"))?;
    }
    if let Some(live) = cases {
        follow_cases(engine.clone(), store, live.subscribe());
    }
    start_ticker(engine.clone(), TICK);
    tracing::info!(playbooks = count, "response engine started");
    Ok(Arc::new(EngineHandle { engine, triggers }))
}
