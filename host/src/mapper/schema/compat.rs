//! The compatibility gate: would a consumer written against the old schemas of a mapper
//! still read what the new one emits? A pure function of the two sets of schemas (and
//! topics), with one rule per way a consumer breaks:
//!
//! | rule | example |
//! |---|---|
//! | an event type removed | `shape.removed` no longer declared |
//! | a topic removed | the mapper no longer declares `reminders` |
//! | an event type moved to another topic | `shape.changed`: `task-events` → `shapes` |
//! | a property removed (or renamed: removed + added) | `/title` |
//! | a type changed or narrowed | `/priority`: `integer` → `string`; `number` → `integer` |
//! | a property newly required | `/owner` |
//! | an enum narrowed, a `const` changed or added | `/status`: `done` removed |
//!
//! Additive changes pass: a new optional property, a widened type (`integer` → `number`, a
//! type added to a list), new enum values, a new event type or topic, a schema that no
//! longer restricts something. Paths are JSON Pointers into the event's `data`, with `*`
//! for "any item of this array" and `*` also for "any other property" (`additionalProperties`).
//! Only `type`, `enum`, `const`, `properties`, `required`, `items` and
//! `additionalProperties` (as a schema) are compared; other keywords (`$ref`, `allOf`,
//! `oneOf`, formats, bounds) are not, so a change there passes unseen.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

/// One change that would break a consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BreakingChange {
    /// The mapper.
    pub mapper: String,
    /// The event type, when the change is inside one (none for a removed topic).
    pub event_type: Option<String>,
    /// The JSON Pointer into the event's `data` (`""`: the whole payload or the type).
    pub path: String,
    /// What changed.
    pub change: String,
}

impl fmt::Display for BreakingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mapper `{}`", self.mapper)?;
        if let Some(t) = &self.event_type {
            write!(f, " {t}")?;
        }
        if !self.path.is_empty() {
            write!(f, " at {}", self.path)?;
        }
        write!(f, ": {}", self.change)
    }
}

/// What the gate compares of one mapper: its topics and its schemas by event type.
#[derive(Debug, Clone, Default)]
pub struct Declared<'a> {
    /// The declared topics.
    pub topics: Vec<&'a str>,
    /// `(event type, topic, schema)`, one per declared type.
    pub schemas: Vec<(&'a str, &'a str, &'a Value)>,
}

/// The changes from `old` to `new` (two versions of `mapper`) that would break a consumer
/// of `old`; empty when `new` is compatible.
pub fn breaking_changes(
    mapper: &str,
    old: &Declared<'_>,
    new: &Declared<'_>,
) -> Vec<BreakingChange> {
    let mut out = Vec::new();
    for topic in &old.topics {
        if !new.topics.contains(topic) {
            out.push(BreakingChange {
                mapper: mapper.to_owned(),
                event_type: None,
                path: String::new(),
                change: format!("topic `{topic}` removed"),
            });
        }
    }
    for (event_type, old_topic, old_schema) in &old.schemas {
        let mut report = |path: String, change: String| {
            out.push(BreakingChange {
                mapper: mapper.to_owned(),
                event_type: Some((*event_type).to_owned()),
                path,
                change,
            });
        };
        match new.schemas.iter().find(|(t, _, _)| t == event_type) {
            None => report(String::new(), "event type removed".to_owned()),
            Some((_, new_topic, new_schema)) => {
                if new_topic != old_topic {
                    report(
                        String::new(),
                        format!("moved from topic `{old_topic}` to `{new_topic}`"),
                    );
                }
                compare(old_schema, new_schema, "", &mut report);
            }
        }
    }
    out
}

/// Compares one schema position; `path` is the JSON Pointer of the data it describes.
fn compare(old: &Value, new: &Value, path: &str, report: &mut impl FnMut(String, String)) {
    let empty = Map::new();
    let old_map = old.as_object().unwrap_or(&empty);
    let Some(new_map) = new.as_object() else {
        if new == &Value::Bool(false) && old != &Value::Bool(false) {
            report(path.to_owned(), "no value is accepted any more".to_owned());
        }
        return;
    };
    if old == &Value::Bool(false) {
        return;
    }
    compare_types(old_map, new_map, path, report);
    compare_values(old_map, new_map, path, report);

    let old_props = properties(old_map);
    let new_props = properties(new_map);
    let added: Vec<&str> = new_props
        .iter()
        .filter(|(n, _)| !old_props.iter().any(|(o, _)| o == n))
        .map(|(n, _)| *n)
        .collect();
    for (name, old_sub) in &old_props {
        let sub = format!("{path}/{}", escape(name));
        match new_props.iter().find(|(n, _)| n == name) {
            Some((_, new_sub)) => compare(old_sub, new_sub, &sub, report),
            None if added.is_empty() => report(sub, "property removed".to_owned()),
            None => report(
                sub,
                format!("property removed (renamed? added: {})", added.join(", ")),
            ),
        }
    }
    let old_required = required(old_map);
    for name in required(new_map) {
        if !old_required.contains(name) {
            report(
                format!("{path}/{}", escape(name)),
                "property newly required".to_owned(),
            );
        }
    }
    if let (Some(old_items), Some(new_items)) = (old_map.get("items"), new_map.get("items")) {
        compare(old_items, new_items, &format!("{path}/*"), report);
    }
    if let (Some(old_extra), Some(new_extra)) = (
        old_map.get("additionalProperties"),
        new_map.get("additionalProperties"),
    ) && old_extra.is_object()
    {
        compare(old_extra, new_extra, &format!("{path}/*"), report);
    }
}

fn compare_types(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    path: &str,
    report: &mut impl FnMut(String, String),
) {
    let Some(new_types) = types(new) else {
        return;
    };
    let old_types = types(old);
    let accepted =
        |t: &str| new_types.contains(t) || (t == "integer" && new_types.contains("number"));
    let narrowed = match &old_types {
        None => true,
        Some(old_types) => old_types.iter().any(|t| !accepted(t)),
    };
    if narrowed {
        let shown = |types: &Option<BTreeSet<&str>>| match types {
            None => "any".to_owned(),
            Some(t) => t.iter().copied().collect::<Vec<_>>().join(" | "),
        };
        report(
            path.to_owned(),
            format!(
                "type changed or narrowed from {} to {}",
                shown(&old_types),
                shown(&Some(new_types))
            ),
        );
    }
}

fn compare_values(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    path: &str,
    report: &mut impl FnMut(String, String),
) {
    let allowed = |m: &Map<String, Value>| -> Option<Vec<Value>> {
        match (m.get("const"), m.get("enum")) {
            (Some(c), _) => Some(vec![c.clone()]),
            (None, Some(Value::Array(values))) => Some(values.clone()),
            _ => None,
        }
    };
    let Some(new_values) = allowed(new) else {
        return;
    };
    match allowed(old) {
        None => report(
            path.to_owned(),
            format!("values narrowed to {}", Value::Array(new_values)),
        ),
        Some(old_values) => {
            let removed: Vec<Value> = old_values
                .into_iter()
                .filter(|v| !new_values.contains(v))
                .collect();
            if !removed.is_empty() {
                report(
                    path.to_owned(),
                    format!("enum narrowed: {} no longer allowed", Value::Array(removed)),
                );
            }
        }
    }
}

/// The `type` keyword as a set; `None` when absent (any type).
fn types(m: &Map<String, Value>) -> Option<BTreeSet<&str>> {
    match m.get("type")? {
        Value::String(t) => Some([t.as_str()].into()),
        Value::Array(list) => Some(list.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

fn properties(m: &Map<String, Value>) -> Vec<(&str, &Value)> {
    m.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

fn required(m: &Map<String, Value>) -> BTreeSet<&str> {
    m.get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A property name as a JSON Pointer token.
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests;
