//! How a decoded event looks to a Sigma rule: the fields Sigma names, read with the logsource's
//! field renames.
//!
//! Windows events are flattened the way Sigma's Windows rules are written: the event data's
//! named values (`Image`, `CommandLine`, `TargetUserName`) beside the System element's
//! (`EventID`, `Channel`, `Computer`, `Provider_Name`, `Level`, …), from either shape the
//! `windows` decoder reads (EVTX rendering or Winlogbeat). Other products' events are read as
//! they are, with dotted paths into nested objects.

use std::borrow::Cow;

use riposte_decode::windows::event_data;
use rsigma_eval::event::{Event, EventValue, JsonEvent};
use serde_json::{Map, Value};

use crate::mapping::FieldRenames;

/// The flat Sigma view of a Windows record, or `None` when it is not one.
pub fn windows_fields(original: &Value) -> Option<Map<String, Value>> {
    let data_len = match event_data(original) {
        Some(Value::Object(d)) => d.len(),
        _ => 0,
    };
    let mut out = Map::with_capacity(data_len + 24);
    if let Some(sys) = original.get("Event").and_then(|e| e.get("System")) {
        let sys = sys.as_object()?;
        for (k, v) in sys {
            match (k.as_str(), v) {
                ("EventID", Value::Object(o)) => {
                    if let Some(t) = o.get("#text") {
                        out.insert("EventID".into(), t.clone());
                    }
                }
                ("Provider", Value::Object(o)) => {
                    if let Some(Value::Object(a)) = o.get("#attributes") {
                        for (ak, av) in a {
                            out.insert(format!("Provider_{ak}"), av.clone());
                        }
                    }
                }
                ("Provider_attributes", Value::Object(a)) => {
                    for (ak, av) in a {
                        out.insert(format!("Provider_{ak}"), av.clone());
                    }
                }
                ("Execution" | "Security" | "TimeCreated" | "Correlation", Value::Object(o)) => {
                    if let Some(Value::Object(a)) = o.get("#attributes") {
                        for (ak, av) in a {
                            out.insert(format!("{k}_{ak}"), av.clone());
                        }
                    }
                }
                (_, Value::Object(_)) => {}
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    } else if let Some(w) = original.get("winlog").and_then(Value::as_object) {
        for (from, to) in [
            ("event_id", "EventID"),
            ("channel", "Channel"),
            ("computer_name", "Computer"),
            ("provider_name", "Provider_Name"),
            ("record_id", "EventRecordID"),
            ("task", "Task"),
            ("opcode", "Opcode"),
        ] {
            if let Some(v) = w.get(from) {
                out.insert(to.into(), v.clone());
            }
        }
        // Winlogbeat writes the event id as text; Sigma rules compare it as a number.
        if let Some(Value::String(s)) = out.get("EventID")
            && let Ok(n) = s.parse::<u64>()
        {
            out.insert("EventID".into(), Value::from(n));
        }
    } else {
        return None;
    }
    if let Some(Value::Object(data)) = event_data(original) {
        for (k, v) in data {
            // The evtx crate renders an element's attributes beside its text; the names Sigma
            // uses are the element names.
            if k == "#attributes" || k.ends_with("_attributes") {
                continue;
            }
            // Some providers name their values with spaces (Defender's `Threat Name`); Sigma
            // writes them without (`ThreatName`). Both spellings resolve.
            if k.contains(' ') {
                out.insert(k.replace(' ', ""), v.clone());
            }
            out.insert(k.clone(), v.clone());
        }
    }
    Some(out)
}

/// An event as one Sigma rule group sees it.
pub struct View<'a> {
    json: JsonEvent<'a>,
    renames: Option<&'a FieldRenames>,
}

impl<'a> View<'a> {
    pub fn new(value: &'a Value, renames: Option<&'a FieldRenames>) -> View<'a> {
        View {
            json: JsonEvent::borrow(value),
            renames: renames.filter(|r| !r.is_empty()),
        }
    }

    /// A field as text (numbers in decimal), for logsource conditions and entities.
    pub fn text(&self, name: &str) -> Option<String> {
        match self.get_field(name)? {
            EventValue::Str(s) => Some(s.into_owned()),
            EventValue::Int(i) => Some(i.to_string()),
            EventValue::Float(f) => Some(f.to_string()),
            EventValue::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

impl Event for View<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        if let Some(targets) = self.renames.and_then(|r| r.get(path)) {
            for t in targets {
                if let Some(v) = self.json.get_field(t) {
                    return Some(v);
                }
            }
        }
        self.json.get_field(path)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.json.any_string_value(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.json.all_string_values()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.json.visit_string_values(visit)
    }

    fn to_json(&self) -> Value {
        self.json.to_json()
    }

    fn field_keys(&self) -> Vec<Cow<'_, str>> {
        self.json.field_keys()
    }

    // With renames the event's own keys do not say which Sigma names resolve, so the
    // candidate index must probe every field it knows (the trait's default: shape unknown).
    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        match self.renames {
            Some(_) => None,
            None => self.json.top_level_keys(),
        }
    }

    fn visit_top_level_keys(&self, visit: &mut dyn FnMut(&str)) -> bool {
        match self.renames {
            Some(_) => false,
            None => self.json.visit_top_level_keys(visit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evtx_shape_flattens_system_and_data() {
        let v = json!({"Event": {"System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
            "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Computer": "ws-1", "Execution": {"#attributes": {"ProcessID": 4}}},
            "EventData": {"Image": "C:\\x.exe", "CommandLine": "x", "Threat Name": "t"}}});
        let f = windows_fields(&v).unwrap();
        assert_eq!(f["EventID"], 1);
        assert_eq!(f["Provider_Name"], "Microsoft-Windows-Sysmon");
        assert_eq!(f["Image"], "C:\\x.exe");
        assert_eq!(f["Computer"], "ws-1");
        assert_eq!(f["Execution_ProcessID"], 4);
        assert_eq!(f["ThreatName"], "t");
        assert_eq!(f["Threat Name"], "t");
    }

    #[test]
    fn classic_event_id_with_qualifiers_and_winlogbeat() {
        let v = json!({"Event": {"System": {"EventID": {"#text": 7045, "#attributes": {"Qualifiers": 16384}}}}});
        assert_eq!(windows_fields(&v).unwrap()["EventID"], 7045);
        let w = json!({"winlog": {"event_id": "4625", "channel": "Security",
            "event_data": {"TargetUserName": "bob"}}});
        let f = windows_fields(&w).unwrap();
        assert_eq!(f["EventID"], 4625);
        assert_eq!(f["TargetUserName"], "bob");
        assert!(windows_fields(&json!({"a": 1})).is_none());
    }

    #[test]
    fn renames_read_the_mapped_field_first() {
        let v = json!({"NewProcessName": "C:\\a.exe", "Image": "ignored?"});
        let mut r = FieldRenames::new();
        r.insert("Image".into(), vec!["NewProcessName".into()]);
        let view = View::new(&v, Some(&r));
        assert_eq!(view.text("Image").as_deref(), Some("C:\\a.exe"));
        assert!(view.top_level_keys().is_none());
        let plain = View::new(&v, None);
        assert_eq!(plain.text("Image").as_deref(), Some("ignored?"));
    }
}
