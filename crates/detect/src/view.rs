//! How a decoded event looks to a Sigma rule: the fields Sigma names, read with the logsource's
//! field renames.
//!
//! Windows events are flattened the way Sigma's Windows rules are written: the event data's
//! named values (`Image`, `CommandLine`, `TargetUserName`) beside the System element's
//! (`EventID`, `Channel`, `Computer`, `Provider_Name`, `Level`, …), from either shape the
//! `windows` decoder reads (EVTX rendering or Winlogbeat). Other products' events are read as
//! they are, with dotted paths into nested objects.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::hash_map::Entry;

use riposte_decode::windows::event_data;
use rsigma_eval::event::{Event, EventValue, JsonEvent};
use rsigma_eval::matcher::ascii_lowercase_cow;
use serde_json::{Map, Value};

use crate::mapping::FieldRenames;

/// A System element's attribute as Sigma names it (`Provider_Name`): the known names as
/// static text, anything else spelled out.
fn system_name(element: &str, attribute: &str) -> Cow<'static, str> {
    let known = match (element, attribute) {
        ("Provider", "Name") => "Provider_Name",
        ("Provider", "Guid") => "Provider_Guid",
        ("Provider", "EventSourceName") => "Provider_EventSourceName",
        ("Execution", "ProcessID") => "Execution_ProcessID",
        ("Execution", "ThreadID") => "Execution_ThreadID",
        ("Security", "UserID") => "Security_UserID",
        ("TimeCreated", "SystemTime") => "TimeCreated_SystemTime",
        ("Correlation", "ActivityID") => "Correlation_ActivityID",
        ("Correlation", "RelatedActivityID") => "Correlation_RelatedActivityID",
        _ => return Cow::Owned(format!("{element}_{attribute}")),
    };
    Cow::Borrowed(known)
}

/// The flat Sigma view of a Windows record, or `None` when it is not one.
pub fn windows_fields(original: &Value) -> Option<Flat<'_>> {
    let data = match event_data(original) {
        Some(Value::Object(d)) => Some(d),
        _ => None,
    };
    let data_len = data.map_or(0, Map::len);
    let mut out = Flat::with_capacity(data_len + 24);
    if let Some(sys) = original.get("Event").and_then(|e| e.get("System")) {
        let sys = sys.as_object()?;
        for (k, v) in sys {
            match (k.as_str(), v) {
                ("EventID", Value::Object(o)) => {
                    if let Some(t) = o.get("#text") {
                        out.insert(Cow::Borrowed("EventID"), t);
                    }
                }
                ("Provider", Value::Object(o)) => {
                    if let Some(Value::Object(a)) = o.get("#attributes") {
                        for (ak, av) in a {
                            out.insert(system_name("Provider", ak), av);
                        }
                    }
                }
                ("Provider_attributes", Value::Object(a)) => {
                    for (ak, av) in a {
                        out.insert(system_name("Provider", ak), av);
                    }
                }
                ("Execution" | "Security" | "TimeCreated" | "Correlation", Value::Object(o)) => {
                    if let Some(Value::Object(a)) = o.get("#attributes") {
                        for (ak, av) in a {
                            out.insert(system_name(k, ak), av);
                        }
                    }
                }
                (_, Value::Object(_)) => {}
                _ => {
                    out.insert(Cow::Borrowed(k.as_str()), v);
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
                out.insert(Cow::Borrowed(to), v);
            }
        }
        // Winlogbeat writes the event id as text; Sigma rules compare it as a number.
        if let Some(Value::String(s)) = w.get("event_id")
            && let Ok(n) = s.parse::<u64>()
        {
            out.insert_owned(Cow::Borrowed("EventID"), Value::from(n));
        }
    } else {
        return None;
    }
    if let Some(data) = data {
        for (k, v) in data {
            // The evtx crate renders an element's attributes beside its text; the names Sigma
            // uses are the element names.
            if k == "#attributes" || k.ends_with("_attributes") {
                continue;
            }
            // Some providers name their values with spaces (Defender's `Threat Name`); Sigma
            // writes them without (`ThreatName`). Both spellings resolve.
            if k.contains(' ') {
                out.insert(Cow::Owned(k.replace(' ', "")), v);
            }
            out.insert(Cow::Borrowed(k.as_str()), v);
        }
    }
    Some(out.finish())
}

/// A Windows record's Sigma fields: names to values, borrowed from the record (no copies), in
/// the order first seen, each name once; a later insert of a name replaces its value (event
/// data over System). Names are found through a hash index, built as the record is read (no
/// sort: a record has a few dozen names and rules look them up hundreds of times).
#[derive(Debug, Default)]
pub struct Flat<'a> {
    entries: Vec<(Cow<'a, str>, Cow<'a, Value>)>,
    index: foldhash::HashMap<Cow<'a, str>, u32>,
    /// Each entry's text folded as Sigma's case-insensitive matchers fold it, made the first
    /// time a rule asks (`None`: the text is folded already), so hundreds of rules reading
    /// `Image` fold it once.
    folded: Vec<OnceCell<Option<Box<str>>>>,
    /// Every string value of the record folded into one text ([`fold_values`]), made the
    /// first time a group with keywords asks.
    all_folded: OnceCell<Vec<u8>>,
}

impl<'a> Flat<'a> {
    fn with_capacity(n: usize) -> Flat<'a> {
        Flat {
            entries: Vec::with_capacity(n),
            index: foldhash::HashMap::with_capacity_and_hasher(n, Default::default()),
            folded: Vec::new(),
            all_folded: OnceCell::new(),
        }
    }

    fn insert(&mut self, k: Cow<'a, str>, v: &'a Value) {
        self.put(k, Cow::Borrowed(v));
    }

    fn insert_owned(&mut self, k: Cow<'a, str>, v: Value) {
        self.put(k, Cow::Owned(v));
    }

    fn put(&mut self, k: Cow<'a, str>, v: Cow<'a, Value>) {
        // One hash and one probe per name (a borrowed name's clone is a pointer copy).
        match self.index.entry(k.clone()) {
            Entry::Occupied(o) => {
                if let Some(e) = self.entries.get_mut(*o.get() as usize) {
                    e.1 = v;
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(self.entries.len() as u32);
                self.entries.push((k, v));
            }
        }
    }

    fn finish(mut self) -> Flat<'a> {
        self.folded = (0..self.entries.len()).map(|_| OnceCell::new()).collect();
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).map(|i| self.entries[i].1.as_ref())
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).map(|&i| i as usize)
    }

    /// Entry `i`'s string value folded (see `folded`), or `None` if it is not a string.
    fn folded(&self, i: usize) -> Option<&str> {
        let Some(Value::String(s)) = self.entries.get(i).map(|(_, v)| v.as_ref()) else {
            return None;
        };
        let cell = self.folded.get(i)?;
        let f = cell.get_or_init(|| match ascii_lowercase_cow(s) {
            Cow::Borrowed(_) => None,
            Cow::Owned(o) => Some(o.into_boxed_str()),
        });
        Some(f.as_deref().unwrap_or(s))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_ref())
    }

    fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|(_, v)| v.as_ref())
    }

    /// The fields as one JSON object, sorted by name (copies; for output, not for matching).
    pub fn to_map(&self) -> Map<String, Value> {
        let mut sorted: Vec<&(Cow<'a, str>, Cow<'a, Value>)> = self.entries.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        sorted
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.as_ref().clone()))
            .collect()
    }
}

/// An event's fields as Sigma reads them: a Windows record flattened, anything else as is.
pub enum Fields<'a> {
    Json(&'a Value),
    Flat(Flat<'a>),
}

impl Fields<'_> {
    /// A field's text value, for the logsource conditions.
    pub fn channel(&self) -> Option<&str> {
        match self {
            Fields::Flat(f) => f.get("Channel").and_then(Value::as_str),
            Fields::Json(_) => None,
        }
    }
}

const MAX_DEPTH: usize = 64;

fn any_str(v: &Value, pred: &dyn Fn(&str) -> bool, depth: usize) -> bool {
    match v {
        Value::String(s) => pred(s),
        Value::Array(a) if depth > 0 => a.iter().any(|x| any_str(x, pred, depth - 1)),
        Value::Object(o) if depth > 0 => o.values().any(|x| any_str(x, pred, depth - 1)),
        _ => false,
    }
}

fn visit_str<'v>(v: &'v Value, visit: &mut dyn FnMut(&str), depth: usize) {
    match v {
        Value::String(s) => visit(s),
        Value::Array(a) if depth > 0 => a.iter().for_each(|x| visit_str(x, visit, depth - 1)),
        Value::Object(o) if depth > 0 => o.values().for_each(|x| visit_str(x, visit, depth - 1)),
        _ => {}
    }
}

fn collect_str<'v>(v: &'v Value, out: &mut Vec<Cow<'v, str>>, depth: usize) {
    match v {
        Value::String(s) => out.push(Cow::Borrowed(s.as_str())),
        Value::Array(a) if depth > 0 => a.iter().for_each(|x| collect_str(x, out, depth - 1)),
        Value::Object(o) if depth > 0 => o.values().for_each(|x| collect_str(x, out, depth - 1)),
        _ => {}
    }
}

/// Between two values in [`fold_values`]'s text: never in UTF-8, so no needle spans two
/// values.
const VALUE_SEPARATOR: u8 = 0xFF;

/// Appends `s` folded as the keyword and `contains` matchers fold text (ASCII lowercase; other
/// text `to_lowercase`, which leaves no ASCII capital), then [`VALUE_SEPARATOR`].
fn fold_value(s: &str, out: &mut Vec<u8>) {
    if s.is_ascii() {
        let start = out.len();
        out.extend_from_slice(s.as_bytes());
        if let Some(tail) = out.get_mut(start..) {
            tail.make_ascii_lowercase();
        }
    } else {
        out.extend_from_slice(s.to_lowercase().as_bytes());
    }
    out.push(VALUE_SEPARATOR);
}

/// An event as one Sigma rule group sees it.
pub struct View<'a> {
    json: Option<JsonEvent<'a>>,
    flat: Option<&'a Flat<'a>>,
    renames: Option<&'a FieldRenames>,
}

impl<'a> View<'a> {
    pub fn new(fields: &'a Fields<'a>, renames: Option<&'a FieldRenames>) -> View<'a> {
        let (json, flat) = match fields {
            Fields::Json(v) => (Some(JsonEvent::borrow(v)), None),
            Fields::Flat(f) => (None, Some(f)),
        };
        View {
            json,
            flat,
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

    /// How many keys [`View::visit_probe_keys`] visits (at most; `usize::MAX` when the event
    /// cannot tell cheaply).
    pub(crate) fn key_count(&self) -> usize {
        let own = match (&self.json, self.flat) {
            (None, Some(f)) => f.entries.len(),
            _ => return usize::MAX,
        };
        own + self.renames.map_or(0, |r| r.len())
    }

    /// Visits every key a field look-up can start from: the event's own top-level keys and
    /// the Sigma names the renames resolve. `false` when the event cannot list its keys.
    pub(crate) fn visit_probe_keys(&self, visit: &mut dyn FnMut(&str)) -> bool {
        let own = match (&self.json, self.flat) {
            (Some(j), _) => j.visit_top_level_keys(visit),
            (None, Some(f)) => {
                f.keys().for_each(&mut *visit);
                true
            }
            (None, None) => false,
        };
        if let Some(r) = self.renames {
            r.keys().for_each(|k| visit(k));
        }
        own
    }

    /// A field's value and, when it is a whole entry of a flattened record, the entry's
    /// position (for [`View::folded`]).
    pub(crate) fn get_field_at(&self, path: &str) -> Option<(EventValue<'_>, Option<usize>)> {
        if let Some(targets) = self.renames.and_then(|r| r.get(path)) {
            for t in targets {
                if let Some(v) = self.lookup_at(t) {
                    return Some(v);
                }
            }
        }
        self.lookup_at(path)
    }

    /// `f` of every string value of the event folded into one text, each value followed by
    /// [`VALUE_SEPARATOR`]: made once per flattened record however many groups ask, into
    /// `scratch` for other events.
    pub(crate) fn with_folded_values<R>(
        &self,
        scratch: &mut Vec<u8>,
        f: impl FnOnce(&[u8]) -> R,
    ) -> R {
        if let Some(flat) = self.flat {
            let text = flat.all_folded.get_or_init(|| {
                let mut out = Vec::with_capacity(2048);
                flat.values()
                    .for_each(|v| visit_str(v, &mut |s| fold_value(s, &mut out), MAX_DEPTH));
                out
            });
            return f(text);
        }
        scratch.clear();
        self.visit_string_values(&mut |s| fold_value(s, scratch));
        f(scratch)
    }

    /// The folded text of the flattened entry at `at` (from [`View::get_field_at`]).
    pub(crate) fn folded(&self, at: usize) -> Option<&str> {
        self.flat?.folded(at)
    }

    fn lookup(&self, path: &str) -> Option<EventValue<'_>> {
        self.lookup_at(path).map(|(v, _)| v)
    }

    fn lookup_at(&self, path: &str) -> Option<(EventValue<'_>, Option<usize>)> {
        if let Some(j) = &self.json {
            return j.get_field(path).map(|v| (v, None));
        }
        let f = self.flat?;
        if let Some(i) = f.position(path) {
            return Some((EventValue::from(f.entries[i].1.as_ref()), Some(i)));
        }
        // `Field.sub.key` into a structured value.
        let (first, rest) = path.split_once('.')?;
        let mut v = f.get(first)?;
        for seg in rest.split('.') {
            v = v.get(seg)?;
        }
        Some((EventValue::from(v), None))
    }
}

impl Event for View<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        if let Some(targets) = self.renames.and_then(|r| r.get(path)) {
            for t in targets {
                if let Some(v) = self.lookup(t) {
                    return Some(v);
                }
            }
        }
        self.lookup(path)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        match (&self.json, self.flat) {
            (Some(j), _) => j.any_string_value(pred),
            (None, Some(f)) => f.values().any(|v| any_str(v, pred, MAX_DEPTH)),
            (None, None) => false,
        }
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        match (&self.json, self.flat) {
            (Some(j), _) => j.all_string_values(),
            (None, Some(f)) => {
                let mut out = Vec::new();
                f.values().for_each(|v| collect_str(v, &mut out, MAX_DEPTH));
                out
            }
            (None, None) => Vec::new(),
        }
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        match (&self.json, self.flat) {
            (Some(j), _) => j.visit_string_values(visit),
            (None, Some(f)) => f.values().for_each(|v| visit_str(v, visit, MAX_DEPTH)),
            (None, None) => {}
        }
    }

    fn to_json(&self) -> Value {
        match (&self.json, self.flat) {
            (Some(j), _) => j.to_json(),
            (None, Some(f)) => Value::Object(f.to_map()),
            (None, None) => Value::Null,
        }
    }

    fn field_keys(&self) -> Vec<Cow<'_, str>> {
        match (&self.json, self.flat) {
            (Some(j), _) => j.field_keys(),
            (None, Some(f)) => f.keys().map(Cow::Borrowed).collect(),
            (None, None) => Vec::new(),
        }
    }

    // With renames the event's own keys do not say which Sigma names resolve, so the
    // candidate index must probe every field it knows (the trait's default: shape unknown).
    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        if self.renames.is_some() {
            return None;
        }
        match (&self.json, self.flat) {
            (Some(j), _) => j.top_level_keys(),
            (None, Some(f)) => Some(f.keys().map(Cow::Borrowed).collect()),
            (None, None) => None,
        }
    }

    fn visit_top_level_keys(&self, visit: &mut dyn FnMut(&str)) -> bool {
        if self.renames.is_some() {
            return false;
        }
        match (&self.json, self.flat) {
            (Some(j), _) => j.visit_top_level_keys(visit),
            (None, Some(f)) => {
                f.keys().for_each(visit);
                true
            }
            (None, None) => false,
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
        let f = windows_fields(&v).unwrap().to_map();
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
        assert_eq!(windows_fields(&v).unwrap().to_map()["EventID"], 7045);
        let w = json!({"winlog": {"event_id": "4625", "channel": "Security",
            "event_data": {"TargetUserName": "bob"}}});
        let f = windows_fields(&w).unwrap().to_map();
        assert_eq!(f["EventID"], 4625);
        assert_eq!(f["TargetUserName"], "bob");
        assert!(windows_fields(&json!({"a": 1})).is_none());
    }

    #[test]
    fn flat_keeps_the_last_insert_and_reads_nested_values() {
        let v = json!({"Event": {"System": {"EventID": 1, "Computer": "sys"},
            "EventData": {"Computer": "data", "Obj": {"a": {"b": "deep"}}}}});
        let f = windows_fields(&v).unwrap();
        assert_eq!(f.get("Computer").unwrap(), "data");
        let fields = Fields::Flat(f);
        let view = View::new(&fields, None);
        assert_eq!(view.text("Obj.a.b").as_deref(), Some("deep"));
        assert!(view.any_string_value(&|s| s == "deep"));
        assert!(
            view.top_level_keys()
                .unwrap()
                .iter()
                .any(|k| k == "EventID")
        );
    }

    #[test]
    fn renames_read_the_mapped_field_first() {
        let v = json!({"NewProcessName": "C:\\a.exe", "Image": "ignored?"});
        let mut r = FieldRenames::default();
        r.insert("Image".into(), vec!["NewProcessName".into()]);
        let fields = Fields::Json(&v);
        let view = View::new(&fields, Some(&r));
        assert_eq!(view.text("Image").as_deref(), Some("C:\\a.exe"));
        assert!(view.top_level_keys().is_none());
        let plain = View::new(&fields, None);
        assert_eq!(plain.text("Image").as_deref(), Some("ignored?"));
    }
}
