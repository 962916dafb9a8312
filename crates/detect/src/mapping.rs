//! Logsource mapping: which events a Sigma `logsource` covers and how Sigma's field names read
//! on them. It is data ([`BUILTIN`], `data/logsources.yml`), extended by the user's own file of
//! the same shape; this module only reads it and answers "which logsources does this event
//! belong to".

use std::collections::HashMap;

use serde::Deserialize;

use crate::DetectError;

/// The shipped mapping (Windows channels and Sysmon/Security categories, Okta, Entra sign-ins,
/// Zeek).
pub const BUILTIN: &str = include_str!("../data/logsources.yml");

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default)]
    services: Vec<ServiceSpec>,
    #[serde(default)]
    categories: Vec<CategorySpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceSpec {
    product: String,
    service: String,
    decoder: String,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    actions: Vec<String>,
    #[serde(default)]
    fields: HashMap<String, OneOrMany>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategorySpec {
    product: String,
    category: String,
    service: String,
    #[serde(default)]
    when: HashMap<String, Vec<Scalar>>,
    #[serde(default)]
    fields: HashMap<String, OneOrMany>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Int(i64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

/// Sigma field name → the event's field names to try, in order. (Looked up for every field a
/// rule reads on a renamed logsource: hashed with foldhash, not SipHash.)
pub type FieldRenames = foldhash::HashMap<String, Vec<String>>;

/// One service: where its events come from.
#[derive(Debug, Clone)]
pub struct Service {
    pub product: String,
    pub service: String,
    decoder: String,
    channels: Vec<String>,
    actions: Vec<String>,
    pub fields: FieldRenames,
}

/// One category: a subset of a service's events.
#[derive(Debug, Clone)]
pub struct Category {
    pub product: String,
    pub category: String,
    pub service: String,
    when: Vec<(String, Vec<String>)>,
    pub fields: FieldRenames,
}

/// The whole mapping, user entries first.
#[derive(Debug, Clone)]
pub struct Mapping {
    services: Vec<Service>,
    categories: Vec<Category>,
    /// Per service: the categories of its product and service, in mapping order (made by
    /// [`Mapping::index`]; classifying an event looks at these alone).
    of_service: Vec<Vec<usize>>,
}

/// The logsources one event belongs to: its service (product + service) and the categories
/// whose conditions it meets (indices into [`Mapping::categories`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSources {
    pub service: Option<usize>,
    pub categories: Vec<usize>,
}

impl Mapping {
    /// The shipped mapping alone.
    pub fn builtin() -> Mapping {
        // The shipped file is tested (`builtin_mapping_reads`); an error here is a build bug.
        match Mapping::from_yaml(BUILTIN, "builtin logsources.yml") {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    /// A mapping from YAML text alone; `name` names the text in errors.
    pub fn from_yaml(text: &str, name: &str) -> Result<Mapping, DetectError> {
        let file: MappingFile = yaml_serde::from_str(text).map_err(|e| DetectError::Mapping {
            file: name.to_string(),
            reason: e.to_string(),
        })?;
        let services = file
            .services
            .into_iter()
            .map(|s| Service {
                product: s.product,
                service: s.service,
                decoder: s.decoder,
                channels: s.channels,
                actions: s.actions,
                fields: renames(s.fields),
            })
            .collect();
        let categories = file
            .categories
            .into_iter()
            .map(|c| {
                let mut when: Vec<(String, Vec<String>)> = c
                    .when
                    .into_iter()
                    .map(|(k, v)| (k, v.iter().map(Scalar::text).collect()))
                    .collect();
                when.sort();
                Category {
                    product: c.product,
                    category: c.category,
                    service: c.service,
                    when,
                    fields: renames(c.fields),
                }
            })
            .collect();
        Ok(Mapping {
            services,
            categories,
            of_service: Vec::new(),
        }
        .index())
    }

    fn index(mut self) -> Mapping {
        self.of_service = self
            .services
            .iter()
            .map(|s| {
                (0..self.categories.len())
                    .filter(|&ci| {
                        let c = &self.categories[ci];
                        c.product == s.product && c.service == s.service
                    })
                    .collect()
            })
            .collect();
        self
    }

    /// The user's entries from `text` placed before this mapping's, so they win.
    pub fn extended(self, text: &str, name: &str) -> Result<Mapping, DetectError> {
        let mut user = Mapping::from_yaml(text, name)?;
        user.services.extend(self.services);
        user.categories.extend(self.categories);
        Ok(user.index())
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// Which logsources an event belongs to. `channel` is its Windows channel (if any),
    /// `action` its action as the decoder put it, `field` reads the event's Sigma fields
    /// (as text) for the categories' conditions.
    pub fn classify(
        &self,
        decoder: &str,
        channel: Option<&str>,
        action: &str,
        field: impl Fn(&str) -> Option<String>,
    ) -> EventSources {
        let service = self.services.iter().position(|s| {
            s.decoder == decoder
                && (s.channels.is_empty()
                    || channel
                        .is_some_and(|c| s.channels.iter().any(|x| x.eq_ignore_ascii_case(c))))
                && (s.actions.is_empty() || s.actions.iter().any(|a| a == action))
        });
        let mut categories = Vec::new();
        // Each field is read once however many categories ask for it (Sysmon's 30 all ask
        // for EventID).
        let mut read: Vec<(&str, Option<String>)> = Vec::new();
        if let Some(si) = service {
            for &ci in self.of_service.get(si).into_iter().flatten() {
                let c = &self.categories[ci];
                if c.when.iter().all(|(f, accepted)| {
                    let i = match read.iter().position(|(k, _)| *k == f.as_str()) {
                        Some(i) => i,
                        None => {
                            read.push((f.as_str(), field(f)));
                            read.len() - 1
                        }
                    };
                    read[i]
                        .1
                        .as_ref()
                        .is_some_and(|v| accepted.iter().any(|a| a == v))
                }) && !categories
                    .iter()
                    .any(|&k: &usize| self.categories[k].category == c.category)
                {
                    categories.push(ci);
                }
            }
        }
        EventSources {
            service,
            categories,
        }
    }

    /// Is a Sigma logsource's (product, category, service) ever produced by this mapping?
    pub fn covers(
        &self,
        product: Option<&str>,
        category: Option<&str>,
        service: Option<&str>,
    ) -> bool {
        let prod_ok = |p: &str| product.is_none_or(|x| x.eq_ignore_ascii_case(p));
        match category {
            Some(cat) => self.categories.iter().any(|c| {
                c.category.eq_ignore_ascii_case(cat)
                    && prod_ok(&c.product)
                    && service.is_none_or(|s| s.eq_ignore_ascii_case(&c.service))
            }),
            None => self.services.iter().any(|s| {
                prod_ok(&s.product) && service.is_none_or(|x| x.eq_ignore_ascii_case(&s.service))
            }),
        }
    }
}

fn renames(m: HashMap<String, OneOrMany>) -> FieldRenames {
    m.into_iter().map(|(k, v)| (k, v.into_vec())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_mapping_reads() {
        let m = Mapping::from_yaml(BUILTIN, "builtin").unwrap();
        assert!(m.services().len() > 40);
        assert!(
            m.categories()
                .iter()
                .any(|c| c.category == "process_creation")
        );
    }

    #[test]
    fn sysmon_12_create_key_is_registry_event_and_add() {
        let m = Mapping::builtin();
        let f = |name: &str| match name {
            "EventID" => Some("12".to_string()),
            "EventType" => Some("CreateKey".to_string()),
            _ => None,
        };
        let es = m.classify(
            "windows",
            Some("Microsoft-Windows-Sysmon/Operational"),
            "12",
            f,
        );
        let s = &m.services()[es.service.unwrap()];
        assert_eq!(s.service, "sysmon");
        let cats: Vec<&str> = es
            .categories
            .iter()
            .map(|&c| m.categories()[c].category.as_str())
            .collect();
        assert_eq!(cats, ["registry_event", "registry_add"]);
    }

    #[test]
    fn security_4688_is_process_creation_with_renames() {
        let m = Mapping::builtin();
        let es = m.classify("windows", Some("Security"), "4688", |n| {
            (n == "EventID").then(|| "4688".to_string())
        });
        assert_eq!(es.categories.len(), 1);
        let c = &m.categories()[es.categories[0]];
        assert_eq!(c.category, "process_creation");
        assert_eq!(c.fields["Image"], ["NewProcessName"]);
    }

    #[test]
    fn unknown_channel_has_no_service() {
        let m = Mapping::builtin();
        let es = m.classify("windows", Some("Nope/Operational"), "1", |_| {
            Some("1".into())
        });
        assert_eq!(es, EventSources::default());
    }

    #[test]
    fn user_entries_win_and_errors_name_the_file() {
        let m = Mapping::builtin()
            .extended(
                "services:\n  - {product: acme, service: vpn, decoder: generic}\n",
                "acme.yml",
            )
            .unwrap();
        assert_eq!(m.services()[0].product, "acme");
        let err = Mapping::from_yaml("services: [{product: 1}]", "bad.yml").unwrap_err();
        assert!(err.to_string().contains("bad.yml"), "{err}");
    }
}
