//! The JSON Schema (draft 2020-12) of the v2 payload, declared for each of its five event types
//! through `event-schemas`. The Python and JavaScript ports declare the same schemas
//! (`tests/tests/e2e/polyglot.rs` compares them).

use serde_json::{Value, json};

use super::{SCHEMA_VERSION, TASK_EVENTS, event_type};
use crate::types::{Action, EventSchema};

/// The schema of every v2 event type, in action order.
pub fn event_schemas() -> Vec<EventSchema> {
    [
        Action::Created,
        Action::Updated,
        Action::Completed,
        Action::Uncompleted,
        Action::Deleted,
    ]
    .into_iter()
    .map(|action| {
        EventSchema::new(
            event_type(action),
            TASK_EVENTS,
            &payload(event_type(action)),
        )
    })
    .collect()
}

fn payload(ty: &str) -> Value {
    let text = json!({"type": "string"});
    let nullable = json!({"type": ["string", "null"]});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": ty,
        "description": "A task changed: its whole state after the change, what changed, who and how.",
        "type": "object",
        "properties": {
            "schema_version": {"const": SCHEMA_VERSION},
            "task": {
                "type": "object",
                "properties": {
                    "id": text, "user_id": text, "title": text, "description": nullable,
                    "completed": {"type": "boolean"}, "due_date": nullable,
                    "created_at": text, "updated_at": text
                },
                "required": ["id", "user_id", "title", "description", "completed", "due_date", "created_at", "updated_at"]
            },
            "changes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": text, "old": {}, "new": {}},
                    "required": ["field", "old", "new"]
                }
            },
            "actor": text,
            "origin": {"enum": ["rest", "mcp", "system"]},
            "occurred_at": text
        },
        "required": ["schema_version", "task", "changes", "actor", "origin", "occurred_at"]
    })
}
