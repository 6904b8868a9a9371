//! The v2 event schema, as plain Rust: how a mapper evolves the catalogue without a host release.
//!
//! Compared with the default catalogue, every mutation yields exactly one event on
//! `task-events`; its type carries the schema version (`com.pakaura.task.created.v2`), its
//! payload is a full task snapshot plus the list of changes, it points at a published JSON
//! schema (`dataschema`) and it carries a `schemaversion` extension attribute.

use serde::Serialize;
use serde_json::Value;

use crate::types::{Action, Event, FieldChange, MapperInfo, Mutation, Origin};

mod schemas;
#[cfg(test)]
mod tests;

pub use schemas::event_schemas;

/// The only topic this mapper publishes to.
pub const TASK_EVENTS: &str = "task-events";
/// The schema version this mapper produces, in payloads and in the `schemaversion` extension.
pub const SCHEMA_VERSION: u32 = 2;

/// The operator's settings for this mapper, read through `host.config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the JSON schemas are published; `dataschema` is `{base}/task/{action}.v2.json`.
    pub schema_base_url: String,
}

impl Settings {
    /// The `host.config` key of [`Settings::schema_base_url`].
    pub const SCHEMA_BASE_URL_KEY: &str = "schema-base-url";
    /// The schema base URL used when the operator set none.
    pub const DEFAULT_SCHEMA_BASE_URL: &str = "https://schemas.pakaura.dev/events";

    /// Reads the settings through `config` (the component passes `host.config`), falling
    /// back to the defaults for keys that are not set.
    pub fn from_config(config: impl Fn(&str) -> Option<String>) -> Self {
        let base = config(Self::SCHEMA_BASE_URL_KEY)
            .unwrap_or_else(|| Self::DEFAULT_SCHEMA_BASE_URL.to_owned());
        Settings {
            schema_base_url: base.trim_end_matches('/').to_owned(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(|_| None)
    }
}

/// Names this mapper and declares its single topic.
pub fn describe() -> MapperInfo {
    MapperInfo {
        name: "v2".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        topics: vec![TASK_EVENTS.to_owned()],
    }
}

/// Maps one mutation to its single v2 event.
///
/// Fails only when a change's old or new value is not a JSON text.
pub fn map_mutation(mutation: &Mutation, settings: &Settings) -> Result<Vec<Event>, String> {
    let task = &mutation.task;
    let action = mutation.action.as_str();
    let payload = Payload {
        schema_version: SCHEMA_VERSION,
        task: TaskSnapshot {
            id: &task.id,
            user_id: &task.user_id,
            title: &task.title,
            description: task.description.as_deref(),
            completed: task.completed,
            due_date: task.due_date.as_deref(),
            created_at: &task.created_at,
            updated_at: &task.updated_at,
        },
        changes: parse_changes(&mutation.changes)?,
        actor: &task.user_id,
        origin: origin_name(mutation.origin),
        occurred_at: &mutation.occurred_at,
    };
    let data = serde_json::to_string(&payload)
        .map_err(|e| format!("cannot encode the v2 payload: {e}"))?;
    Ok(vec![Event {
        topic: TASK_EVENTS.to_owned(),
        event_type: event_type(mutation.action).to_owned(),
        subject: Some(task.id.clone()),
        data,
        data_schema: Some(format!(
            "{}/task/{action}.v2.json",
            settings.schema_base_url
        )),
        extensions: vec![("schemaversion".to_owned(), SCHEMA_VERSION.to_string())],
        partition_key: None,
    }])
}

fn event_type(action: Action) -> &'static str {
    match action {
        Action::Created => "com.pakaura.task.created.v2",
        Action::Updated => "com.pakaura.task.updated.v2",
        Action::Completed => "com.pakaura.task.completed.v2",
        Action::Uncompleted => "com.pakaura.task.uncompleted.v2",
        Action::Deleted => "com.pakaura.task.deleted.v2",
    }
}

fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::Rest => "rest",
        Origin::Mcp => "mcp",
        Origin::System => "system",
    }
}

fn parse_changes(changes: &[FieldChange]) -> Result<Vec<ChangePayload<'_>>, String> {
    changes
        .iter()
        .map(|change| {
            let field = change.field.as_str();
            let json = |which: &str, text: &str| {
                serde_json::from_str(text)
                    .map_err(|e| format!("field `{field}`: {which} value is not JSON: {e}"))
            };
            Ok(ChangePayload {
                field,
                old: json("old", &change.old_value)?,
                new: json("new", &change.new_value)?,
            })
        })
        .collect()
}

/// The v2 payload: `{"schema_version", "task", "changes", "actor", "origin", "occurred_at"}`.
#[derive(Serialize)]
struct Payload<'a> {
    schema_version: u32,
    task: TaskSnapshot<'a>,
    changes: Vec<ChangePayload<'a>>,
    actor: &'a str,
    origin: &'a str,
    occurred_at: &'a str,
}

/// The whole task after the change (for `deleted`, as it was).
#[derive(Serialize)]
struct TaskSnapshot<'a> {
    id: &'a str,
    user_id: &'a str,
    title: &'a str,
    description: Option<&'a str>,
    completed: bool,
    due_date: Option<&'a str>,
    created_at: &'a str,
    updated_at: &'a str,
}

/// One change, with its old and new values as JSON values rather than JSON texts.
#[derive(Serialize)]
struct ChangePayload<'a> {
    field: &'a str,
    old: Value,
    new: Value,
}
