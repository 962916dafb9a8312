//! Sigma rule files for `riposte rules check` and `riposte replay --rules`: the reading (the
//! detection crate does no I/O) and the report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use riposte_detect::{Detector, LoadOptions, Mapping, RuleCache, RuleText};

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Load Sigma rules and report what loads and what is refused, with the reason.
    ///
    /// Exits non-zero when a path is missing or unreadable, or when no rule loads at all;
    /// with `--strict`, also when any rule is refused. A refused rule is otherwise reported,
    /// counted and skipped, as `replay` and the server do.
    Check {
        /// Rule files or folders (walked for `.yml`/`.yaml`).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Extra logsource mapping (YAML, same shape as the shipped one); its entries win.
        #[arg(long)]
        logsources: Option<PathBuf>,
        /// Exit non-zero when any rule is refused.
        #[arg(long)]
        strict: bool,
    },
}

/// Every `.yml`/`.yaml` file under the paths (folders in name order), read.
pub fn read_rule_texts(paths: &[PathBuf]) -> Result<Vec<RuleText>> {
    let mut files = Vec::new();
    for p in paths {
        walk(p, &mut files)?;
    }
    let read = |p: &PathBuf| -> Result<RuleText> {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read rule file {}", p.display()))?;
        Ok(RuleText {
            name: p.display().to_string(),
            text,
        })
    };
    // Thousands of small files: the reads (mostly system calls) are spread over the cores.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let part = files.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = files
            .chunks(part)
            .map(|chunk| s.spawn(move || chunk.iter().map(read).collect::<Result<Vec<_>>>()))
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for p in parts {
            match p.join() {
                Ok(texts) => out.extend(texts?),
                Err(e) => std::panic::resume_unwind(e),
            }
        }
        Ok(out)
    })
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(p).with_context(|| format!("rules path {}", p.display()))?;
    if meta.is_dir() {
        let entries = riposte_ingest::replay::list_dir(p)
            .with_context(|| format!("rules folder {}", p.display()))?;
        for e in entries {
            if e.is_dir() || e.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                walk(&e, out)?;
            }
        }
    } else {
        out.push(p.to_path_buf());
    }
    Ok(())
}

/// The shipped logsource mapping, extended by the user's file.
pub fn mapping(extra: Option<&Path>) -> Result<Mapping> {
    let m = Mapping::builtin();
    match extra {
        None => Ok(m),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read logsource mapping {}", p.display()))?;
            Ok(m.extended(&text, &p.display().to_string())?)
        }
    }
}

/// Reads and loads rules, compiling lazily (per logsource seen) or all at once; with
/// `defaults`, riposte's shipped correlations (password spray, brute force, spray then
/// success) come too. With `cache`, rule texts parsed before (same hash) are taken from that
/// file, and it is rewritten when any text was parsed afresh; a missing, stale or damaged
/// cache only costs the parse, and a cache that cannot be written is a warning.
pub fn load(
    paths: &[PathBuf],
    logsources: Option<&Path>,
    lazy: bool,
    defaults: bool,
    cache: Option<&Path>,
) -> Result<Detector> {
    let mut texts = read_rule_texts(paths)?;
    if defaults {
        texts.extend(
            riposte_detect::correlate::DEFAULTS
                .iter()
                .map(|(name, text)| RuleText {
                    name: name.to_string(),
                    text: text.to_string(),
                }),
        );
    }
    let mapping = mapping(logsources)?;
    let opts = LoadOptions {
        lazy,
        ..LoadOptions::default()
    };
    let Some(path) = cache else {
        return Ok(Detector::load(&texts, mapping, &opts));
    };
    let c = match std::fs::read(path) {
        Ok(bytes) => RuleCache::from_bytes(&bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RuleCache::new(),
        Err(e) => {
            eprintln!(
                "warning: rule cache {} cannot be read ({e}); parsing every rule",
                path.display()
            );
            RuleCache::new()
        }
    };
    let detector = Detector::load_cached(&texts, mapping, &opts, &c);
    if c.misses() > 0 {
        // Written beside and renamed, so a reader never sees half a cache.
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, c.to_bytes()).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            eprintln!(
                "warning: rule cache {} cannot be written ({e}); the next start parses again",
                path.display()
            );
        }
    }
    Ok(detector)
}

/// One line of counts, on stderr.
pub fn report_loaded(d: &Detector) {
    let s = d.stats();
    eprintln!(
        "rules: {} files, {} detection rules, {} correlation rules, {} refused, {} with a logsource no mapping covers",
        s.files, s.rules, s.correlations, s.refused, s.unmapped
    );
}

/// Every refusal, on stderr.
pub fn report_refusals(d: &Detector) {
    for r in d.refusals() {
        eprintln!("  refused {r}");
    }
}

pub fn run(command: RulesCommand) -> Result<ExitCode> {
    match command {
        RulesCommand::Check {
            paths,
            logsources,
            strict,
        } => {
            let d = load(&paths, logsources.as_deref(), false, false, None)?;
            let s = d.stats();
            println!(
                "{} files: {} detection rules loaded, {} correlation rules, {} refused, {} with a logsource no mapping covers",
                s.files,
                s.rules - s.failed_compile,
                s.correlations,
                s.refused,
                s.unmapped
            );
            for r in d.refusals() {
                println!("refused {r}");
            }
            if s.rules - s.failed_compile + s.correlations == 0 {
                bail!("no Sigma rule loaded from {} files", s.files);
            }
            if strict && s.refused > 0 {
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
