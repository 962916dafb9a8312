//! `riposte secret`: the sealed secrets connectors use (API tokens, webhook URLs).
//!
//! They live in `<data dir>/secrets.json`, each sealed with XChaCha20-Poly1305 under a key
//! from `RIPOSTE_SECRET_KEY` or `--key-file` that is never written beside them. Values are
//! read from standard input, never from the command line (where `ps` and shell history
//! would keep them), and are never printed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use riposte_respond::{Secret, SecretKey, SecretVault};

use crate::DataDir;

#[derive(clap::Args, Clone)]
pub struct KeyArgs {
    /// Key file (32 bytes or 64 hex characters); `RIPOSTE_SECRET_KEY` wins when set.
    #[arg(long, env = "RIPOSTE_SECRET_KEY_FILE")]
    key_file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum SecretCommand {
    /// Make a new key: written to --out (mode 0600), or printed as hex.
    Keygen {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Seal a secret; its value is read from standard input (one trailing newline dropped).
    Set {
        name: String,
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// List secret names (values are never shown).
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Remove a secret.
    Remove {
        name: String,
        #[command(flatten)]
        data: DataDir,
    },
}

pub fn vault_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets.json")
}

pub fn load_vault(data_dir: &Path) -> Result<SecretVault> {
    let p = vault_path(data_dir);
    match std::fs::read_to_string(&p) {
        Ok(text) => SecretVault::from_json(&text)
            .with_context(|| format!("{}: not a riposte secrets file", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SecretVault::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn run(command: SecretCommand) -> Result<ExitCode> {
    match command {
        SecretCommand::Keygen { out } => {
            let key = SecretKey::generate()?;
            match out {
                Some(p) => {
                    if p.exists() {
                        bail!("{} exists; refusing to replace a key", p.display());
                    }
                    write_private(&p, format!("{}\n", key.to_hex()).as_bytes())?;
                    eprintln!("key written to {}", p.display());
                }
                None => println!("{}", key.to_hex()),
            }
        }
        SecretCommand::Set { name, data, key } => {
            if name.is_empty() || name.chars().any(|c| c.is_whitespace()) {
                bail!("a secret name is non-empty and has no spaces");
            }
            let key = SecretKey::load(key.key_file.as_deref())?;
            let mut vault = load_vault(&data.data_dir)?;
            // One key for the whole file: refuse to mix in a value sealed with another.
            if let Some(existing) = vault.names().next().map(str::to_string) {
                vault.get(&key, &existing).map_err(|_| {
                    anyhow::anyhow!(
                        "this key does not open the secrets already in {}; use the same key",
                        vault_path(&data.data_dir).display()
                    )
                })?;
            }
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("reading the value from standard input")?;
            if value.ends_with('\n') {
                value.pop();
                if value.ends_with('\r') {
                    value.pop();
                }
            }
            if value.is_empty() {
                bail!("no value on standard input");
            }
            vault.put(&key, &name, &Secret::new(value))?;
            write_private(&vault_path(&data.data_dir), vault.to_json().as_bytes())?;
            eprintln!("secret `{name}` sealed");
        }
        SecretCommand::List { data } => {
            for n in load_vault(&data.data_dir)?.names() {
                println!("{n}");
            }
        }
        SecretCommand::Remove { name, data } => {
            let mut vault = load_vault(&data.data_dir)?;
            if !vault.remove(&name) {
                eprintln!("no secret `{name}`");
                return Ok(ExitCode::from(1));
            }
            write_private(&vault_path(&data.data_dir), vault.to_json().as_bytes())?;
            eprintln!("secret `{name}` removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}
