//! Canarytokens (canarytokens.org and self-hosted): the body its generic webhook posts when a
//! token is triggered.
//!
//! Fields: `manage_url`, `memo` (the note the token's owner wrote), `channel` (`HTTP`, `DNS`,
//! `AWS API Key Token`, …), `time` (`2020-06-09 14:04:39`, UTC; some versions append
//! ` (UTC)`), `src_ip` (newer versions; older ones only in `additional_data`), `token` (the
//! token id, newer versions), and `additional_data` (`src_ip`, `useragent`, `referer`,
//! `location`, …). Without `token` the id is read from the `manage_url`'s `token=` parameter.
//!
//! A token has no legitimate use: every trigger is an alert, severity 90 (critical). Ids: the
//! product has none per trigger; content. ATT&CK: none stated by the product.

use riposte_domain::{Alert, Decoded, EntityKind, Role, Rule, Severity};
use serde_json::Value;

use crate::fields::{self, Entities, first_str, get, req_str, str_at};
use crate::{DecodeError, Decoder};

pub struct Canarytokens;

const PRODUCT: &str = "Canarytokens";

/// The token id: `token`, else the `token=` query parameter of `manage_url`.
pub fn token_id(r: &Value) -> Option<String> {
    if let Some(t) = str_at(r, "token").filter(|t| !t.is_empty()) {
        return Some(t.to_string());
    }
    let url = str_at(r, "manage_url")?;
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

impl Decoder for Canarytokens {
    fn name(&self) -> &'static str {
        "canarytokens"
    }

    fn recognises(&self, r: &Value) -> bool {
        get(r, "manage_url").is_some() && get(r, "memo").is_some() && get(r, "channel").is_some()
    }

    fn decode(&self, record: Value) -> Result<Vec<Decoded>, DecodeError> {
        fields::require_object(&record)?;
        let memo = req_str(&record, "memo")?.to_string();
        let channel = req_str(&record, "channel")?.to_string();
        let time_text = req_str(&record, "time")?.to_string();
        let cleaned = time_text.trim().trim_end_matches("(UTC)").trim_end();
        let time = riposte_domain::time::parse(cleaned)
            .map_err(|e| DecodeError::new("time", e.to_string()))?;
        let token = token_id(&record);
        let src = first_str(&record, &["src_ip", "additional_data.src_ip"]).map(str::to_string);
        let mut title = format!("Canarytoken triggered ({channel}): {memo}");
        if let Some(s) = &src {
            title.push_str(&format!(" from {s}"));
        }
        let mut e = Entities::new();
        e.add(EntityKind::Ip, Role::Source, src.as_deref()).add_at(
            EntityKind::Url,
            Role::Related,
            &record,
            "additional_data.referer",
        );
        let description =
            str_at(&record, "additional_data.useragent").map(|ua| format!("user agent: {ua}"));
        Ok(vec![Decoded::Alert(Alert {
            id: String::new(),
            decoder: self.name().into(),
            product: PRODUCT.into(),
            source_id: None,
            time,
            time_original: time_text,
            title,
            description,
            severity: Severity::from_score(90, "token triggered"),
            rule: Rule::new(token, Some(memo)),
            entities: e.into_vec(),
            techniques: Vec::new(),
            tactics: Vec::new(),
            original: record,
            origin: None,
        })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // No Canarytokens webhooks in ../shared/corpus: this is the documented shape of the
    // generic webhook body (the fields canarytokens.org posts, as its own and third-party
    // integrations consume them), with a made-up token.
    fn body() -> Value {
        json!({
            "manage_url": "https://canarytokens.org/manage?token=k2x9q8w7e6r5t4y3&auth=0a1b2c",
            "memo": "AWS key in the build server's ~/.aws/credentials",
            "additional_data": {
                "src_ip": "198.51.100.23",
                "useragent": "aws-cli/2.15.0",
                "referer": null,
                "location": null
            },
            "channel": "AWS API Key Token",
            "time": "2024-05-01 10:05:00 (UTC)"
        })
    }

    #[test]
    fn a_trigger_is_a_critical_alert_naming_the_token_and_source() {
        assert!(Canarytokens.recognises(&body()));
        let Ok(mut out) = Canarytokens.decode(body()) else {
            panic!("decodes")
        };
        let Decoded::Alert(a) = out.remove(0) else {
            panic!("expected an alert")
        };
        assert_eq!(
            a.title,
            "Canarytoken triggered (AWS API Key Token): AWS key in the build server's ~/.aws/credentials from 198.51.100.23"
        );
        assert_eq!(a.time.to_string(), "2024-05-01T10:05:00Z");
        assert_eq!(a.time_original, "2024-05-01 10:05:00 (UTC)");
        assert_eq!(a.severity.score, 90);
        assert_eq!(
            a.rule.as_ref().and_then(|r| r.id.as_deref()),
            Some("k2x9q8w7e6r5t4y3")
        );
        assert!(
            a.entities
                .iter()
                .any(|e| e.kind == EntityKind::Ip && e.value == "198.51.100.23")
        );
    }

    #[test]
    fn newer_bodies_carry_token_and_src_ip_at_the_top() {
        let mut v = body();
        v["token"] = json!("abc123");
        v["src_ip"] = json!("192.0.2.5");
        v["time"] = json!("2024-05-01 10:05:00");
        let Ok(mut out) = Canarytokens.decode(v) else {
            panic!("decodes")
        };
        let Decoded::Alert(a) = out.remove(0) else {
            panic!("expected an alert")
        };
        assert_eq!(a.rule.and_then(|r| r.id).as_deref(), Some("abc123"));
        assert!(a.entities.iter().any(|e| e.value == "192.0.2.5"));
    }

    #[test]
    fn bad_records_name_the_field() {
        let mut v = body();
        v["time"] = json!("soon");
        assert_eq!(Canarytokens.decode(v).unwrap_err().field, "time");
        let mut v = body();
        v.as_object_mut().unwrap().remove("memo");
        assert_eq!(Canarytokens.decode(v).unwrap_err().field, "memo");
    }
}
