//! `riposte actions`: the response inbox from the command line. Talks to a running server
//! over HTTP with a token, so an approval is bound to the token's principal exactly as one
//! through the API is (never to a name typed here).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(clap::Args, Clone)]
pub struct Remote {
    /// The server's base URL.
    #[arg(long, env = "RIPOSTE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API token (an `approver` or `admin` one to answer).
    #[arg(long, env = "RIPOSTE_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Subcommand)]
pub enum ActionsCommand {
    /// Open actions: id, state, operation, case (one a line; `--json` for everything).
    List {
        #[command(flatten)]
        remote: Remote,
        /// Only this state, e.g. `awaiting_approval`.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one action as JSON.
    Show {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Approve an action waiting at its gate.
    Approve {
        id: String,
        /// Why; required for `review` operations.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Reject an action waiting at its gate.
    Reject {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run the inverse of a succeeded action.
    Undo {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Keep an expiring action: it will not revert itself.
    Confirm {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

async fn call(remote: &Remote, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    riposte_respond::http::install_tls_provider();
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1{path}", remote.url.trim_end_matches('/'));
    let req = match method {
        "POST" => client.post(&url).json(&body.unwrap_or_else(|| json!({}))),
        _ => client.get(&url),
    };
    let resp = req
        .bearer_auth(remote.token.trim())
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .with_context(|| format!("{method} {url}: reading the answer"))?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let msg = v["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or(v.to_string());
        bail!("{method} {url}: {status}: {msg}");
    }
    Ok(v)
}

fn print(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn run(command: ActionsCommand) -> Result<ExitCode> {
    match command {
        ActionsCommand::List {
            remote,
            state,
            json,
        } => {
            let path = match &state {
                Some(s) => format!("/actions?state={s}"),
                None => "/actions".to_string(),
            };
            let v = call(&remote, "GET", &path, None).await?;
            if json {
                print(&v)?;
            } else {
                for a in v["items"].as_array().into_iter().flatten() {
                    println!(
                        "{}\t{}\t{}.{}\t{}\t{}",
                        a["id"].as_str().unwrap_or("?"),
                        a["state"]["state"].as_str().unwrap_or("?"),
                        a["connector"].as_str().unwrap_or("?"),
                        a["operation"].as_str().unwrap_or("?"),
                        a["class"].as_str().unwrap_or("?"),
                        a["case_id"].as_str().unwrap_or("-"),
                    );
                }
            }
        }
        ActionsCommand::Show { id, remote } => {
            print(&call(&remote, "GET", &format!("/actions/{id}"), None).await?)?;
        }
        ActionsCommand::Approve { id, reason, remote } => {
            let v = call(
                &remote,
                "POST",
                &format!("/actions/{id}/approve"),
                Some(json!({ "reason": reason })),
            )
            .await?;
            println!("{id}: {}", v["status"]);
        }
        ActionsCommand::Reject { id, reason, remote } => {
            let v = call(
                &remote,
                "POST",
                &format!("/actions/{id}/reject"),
                Some(json!({ "reason": reason })),
            )
            .await?;
            println!("{id}: {}", v["status"]);
        }
        ActionsCommand::Undo { id, reason, remote } => {
            let v = call(
                &remote,
                "POST",
                &format!("/actions/{id}/undo"),
                Some(json!({ "reason": reason })),
            )
            .await?;
            println!(
                "{id}: inverse {} is {}",
                v["inverse"]["id"].as_str().unwrap_or("?"),
                v["inverse"]["state"]["state"].as_str().unwrap_or("?")
            );
        }
        ActionsCommand::Confirm { id, remote } => {
            call(&remote, "POST", &format!("/actions/{id}/confirm"), None).await?;
            println!("{id}: confirmed; it will not revert itself");
        }
    }
    Ok(ExitCode::SUCCESS)
}
