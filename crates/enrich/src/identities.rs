//! Identities: who a user is — aliases, privileged flag, groups, department.
//!
//! Loaded from CSV (header row; columns `user` (required), `aliases`, `privileged`, `groups`,
//! `department`; lists separated by `;`, `|` or `,` in a quoted cell) or YAML (a list of
//! mappings with the same keys). The user and every alias are canonicalised as user entities
//! by the pipeline's canonicaliser, so `CORP\alice`, `alice@corp.example` and `alice` find the
//! same identity exactly when the pipeline would fold them. An alias that looks like an e-mail
//! address is also indexed as one, so e-mail entities find their owner.
//!
//! A name claimed by two identities is refused: an alert must not be attributed by file order.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::path::Path;

use riposte_domain::{Canonicaliser, Entity, EntityKind, ShortKey, Timestamp};
use serde::Deserialize;

use crate::assets::{OneOrMany, is_csv};
use crate::error::{line_of, read_text};
use crate::tabular::{self, parse_bool, split_list};
use crate::{Context, LoadError, Source};

/// One person or service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Canonical user name.
    pub user: String,
    /// Canonical aliases (without the user itself).
    pub aliases: Vec<String>,
    pub privileged: bool,
    pub groups: Vec<String>,
    pub department: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityEntry {
    user: String,
    #[serde(default)]
    aliases: OneOrMany,
    #[serde(default)]
    privileged: bool,
    #[serde(default)]
    groups: OneOrMany,
    #[serde(default)]
    department: Option<String>,
}

/// All identities, indexed by every canonical name they go by.
#[derive(Debug, Clone, Default)]
pub struct IdentityDirectory {
    identities: Vec<Identity>,
    /// Short names held in the slot itself: the look-up compares without a pointer to chase.
    by_name: HashMap<ShortKey, u32, RandomState>,
    origin: Vec<String>,
}

impl IdentityDirectory {
    pub fn len(&self) -> usize {
        self.identities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// The identity known by this canonical user name or e-mail address.
    pub fn get(&self, canonical: &str) -> Option<&Identity> {
        let &i = self.by_name.get(canonical.as_bytes())?;
        self.identities.get(i as usize)
    }

    pub(crate) fn load_file(
        &mut self,
        file: &Path,
        canon: &Canonicaliser,
    ) -> Result<(), LoadError> {
        let text = read_text(file)?;
        if is_csv(file) {
            tabular::for_each_row(file, &text, &["user"], |line, row| {
                let list = |col: &str| -> Vec<String> {
                    row.get(col)
                        .map(|c| split_list(c).map(str::to_string).collect())
                        .unwrap_or_default()
                };
                let privileged = match row.get("privileged") {
                    Some(v) => parse_bool(v)
                        .ok_or_else(|| format!("column `privileged`: `{v}` is not yes/no"))?,
                    None => false,
                };
                self.add(
                    canon,
                    row.get("user").unwrap_or(""),
                    &list("aliases"),
                    privileged,
                    list("groups"),
                    row.get("department").map(str::to_string),
                    format!("line {line}"),
                )
            })
        } else {
            let entries: Vec<IdentityEntry> = if text.trim().is_empty() {
                Vec::new()
            } else {
                yaml_serde::from_str(&text).map_err(|e| LoadError::yaml(file, &e))?
            };
            for (i, e) in entries.into_iter().enumerate() {
                let line = line_of(&text, &e.user);
                self.add(
                    canon,
                    &e.user,
                    &e.aliases.into_vec(),
                    e.privileged,
                    e.groups.into_vec(),
                    e.department,
                    format!("entry {}", i + 1),
                )
                .map_err(|reason| LoadError {
                    file: file.to_path_buf(),
                    line,
                    column: None,
                    reason: format!("entry {}: {reason}", i + 1),
                })?;
            }
            Ok(())
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        canon: &Canonicaliser,
        user: &str,
        aliases: &[String],
        privileged: bool,
        groups: Vec<String>,
        department: Option<String>,
        place: String,
    ) -> Result<(), String> {
        let n = u32::try_from(self.identities.len()).map_err(|_| "too many identities")?;
        let user_c = canon
            .canonical(EntityKind::User, user)
            .ok_or_else(|| format!("user `{user}` is empty"))?;
        let mut names = vec![user_c.clone()];
        let mut canon_aliases = Vec::new();
        for a in std::iter::once(&user.to_string()).chain(aliases) {
            let c = canon
                .canonical(EntityKind::User, a)
                .ok_or_else(|| format!("alias `{a}` is empty"))?;
            if c != user_c && !canon_aliases.contains(&c) {
                canon_aliases.push(c.clone());
            }
            names.push(c);
            if a.contains('@')
                && let Some(email) = canon.canonical(EntityKind::Email, a)
            {
                names.push(email);
            }
        }
        names.sort();
        names.dedup();
        for name in &names {
            if let Some(&other) = self.by_name.get(name.as_bytes())
                && other != n
            {
                return Err(format!(
                    "`{name}` already names the identity of {}",
                    self.origin[other as usize]
                ));
            }
        }
        for name in names {
            self.by_name.insert(ShortKey::new(&name), n);
        }
        self.identities.push(Identity {
            user: user_c,
            aliases: canon_aliases,
            privileged,
            groups: groups.into_iter().map(|g| g.trim().to_string()).collect(),
            department: department.filter(|d| !d.trim().is_empty()),
        });
        self.origin.push(place);
        Ok(())
    }
}

impl Source for IdentityDirectory {
    fn name(&self) -> &str {
        "identities"
    }

    fn enrich<'s>(&'s self, entity: &Entity, _at: Timestamp, out: &mut Vec<Context<'s>>) {
        if matches!(entity.kind, EntityKind::User | EntityKind::Email)
            && let Some(id) = self.get(&entity.value)
        {
            out.push(Context::Identity(id));
        }
    }
}
