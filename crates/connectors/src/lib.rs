//! riposte's built-in connectors: the products a SOC already contains threats with, opens
//! tickets in and reaches analysts through, each one module with the same shape behind
//! [`riposte_respond::Connector`].
//!
//! Every connector definition is a YAML file in the `respond: connectors` folder with a
//! `name` (what playbooks call it: `action: falcon.contain_host`) and a `kind` (which module
//! reads the rest). [`load`] picks the module; `kind: http` (the default) and
//! `kind: webhook` are the generic connectors of `riposte-respond`.
//!
//! What this crate deliberately is not: an engine. Connectors make one attempt and classify
//! its failure; retries, back-off, policy and the record of every call belong to
//! `riposte-respond`'s engine.

use std::sync::Arc;

use riposte_respond::http::HttpConnector;
pub mod api;
pub mod common;
pub mod netaddr;
pub mod ticket;

// One module per product, in the order of docs/connectors.md.
pub mod cloudflare;
pub mod crowdstrike;
pub mod defender;
pub mod edl;
pub mod entra;
pub mod jira;
pub mod ldap;
pub mod okta;
pub mod opnsense;
pub mod pagerduty;
pub mod panos;
pub mod sentinelone;
pub mod servicenow;
pub mod slack;
pub mod smtp;
pub mod teams;
pub mod thehive;

use riposte_respond::{Connector, LoadError, SecretSource, Templates};
use serde::Deserialize;

/// Every `kind` a connector definition may name.
pub const KINDS: &[&str] = &[
    "http",
    "webhook",
    crowdstrike::KIND,
    slack::KIND,
    defender::KIND,
    sentinelone::KIND,
    okta::KIND,
    entra::KIND,
    jira::KIND,
    servicenow::KIND,
    thehive::KIND,
    pagerduty::KIND,
    teams::KIND,
    panos::KIND,
    opnsense::KIND,
    cloudflare::KIND,
    edl::KIND,
    ldap::KIND,
    smtp::KIND,
];

#[derive(Deserialize)]
struct KindOnly {
    #[serde(default)]
    kind: Option<String>,
}

/// Loads one connector definition; `file` is only used to position errors.
pub fn load(
    file: &str,
    text: &str,
    templates: Arc<Templates>,
    secrets: Arc<dyn SecretSource>,
) -> Result<Arc<dyn Connector>, LoadError> {
    let head: KindOnly = yaml_serde::from_str(text).map_err(|e| LoadError::yaml(file, &e))?;
    match head.kind.as_deref() {
        None | Some("http") | Some("webhook") => Ok(Arc::new(HttpConnector::load(
            file, text, templates, secrets,
        )?)),
        Some(crowdstrike::KIND) => Ok(Arc::new(crowdstrike::load(file, text, secrets)?)),
        Some(slack::KIND) => Ok(Arc::new(slack::load(file, text, secrets)?)),
        Some(defender::KIND) => Ok(Arc::new(defender::load(file, text, secrets)?)),
        Some(sentinelone::KIND) => Ok(Arc::new(sentinelone::load(file, text, secrets)?)),
        Some(okta::KIND) => Ok(Arc::new(okta::load(file, text, secrets)?)),
        Some(entra::KIND) => Ok(Arc::new(entra::load(file, text, secrets)?)),
        Some(jira::KIND) => Ok(Arc::new(jira::load(file, text, secrets)?)),
        Some(servicenow::KIND) => Ok(Arc::new(servicenow::load(file, text, secrets)?)),
        Some(thehive::KIND) => Ok(Arc::new(thehive::load(file, text, secrets)?)),
        Some(pagerduty::KIND) => Ok(Arc::new(pagerduty::load(file, text, secrets)?)),
        Some(teams::KIND) => Ok(Arc::new(teams::load(file, text, secrets)?)),
        Some(panos::KIND) => Ok(Arc::new(panos::load(file, text, secrets)?)),
        Some(opnsense::KIND) => Ok(Arc::new(opnsense::load(file, text, secrets)?)),
        Some(cloudflare::KIND) => Ok(Arc::new(cloudflare::load(file, text, secrets)?)),
        Some(edl::KIND) => Ok(Arc::new(edl::load(file, text, Arc::new(edl::Bound))?)),
        Some(ldap::KIND) => Ok(Arc::new(ldap::load(file, text, secrets)?)),
        Some(smtp::KIND) => Ok(Arc::new(smtp::load(file, text, secrets)?)),
        Some(other) => Err(LoadError::new(
            file,
            common::line_of(text, "kind:"),
            1,
            format!(
                "unknown connector kind `{other}`: use one of {}",
                KINDS.join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riposte_respond::secrets::StaticSecrets;

    #[test]
    fn an_unknown_kind_is_refused_with_its_line_and_the_known_kinds() {
        let text = "name: x\nkind: carrier-pigeon\n";
        let e = load(
            "c.yaml",
            text,
            Arc::new(Templates::default()),
            Arc::new(StaticSecrets::default()),
        )
        .err()
        .expect("refused");
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("carrier-pigeon"), "{e}");
        assert!(e.message.contains("webhook"), "{e}");
    }

    #[test]
    fn http_is_the_default_kind() {
        let text = "name: edr\nbase_url: http://127.0.0.1:9\noperations:\n  ping: {class: auto, method: GET, path: /ping}\n";
        let c = load(
            "c.yaml",
            text,
            Arc::new(Templates::default()),
            Arc::new(StaticSecrets::default()),
        )
        .expect("loads");
        assert_eq!(c.name(), "edr");
        assert!(c.operation("ping").is_some());
    }
}
