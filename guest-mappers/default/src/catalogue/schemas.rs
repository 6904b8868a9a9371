//! The JSON Schemas (draft 2020-12) of the `data` of every event type the catalogue emits,
//! declared to the host through `event-schemas` (see the README's "Payload schemas").
//!
//! Each schema lists every property the payload carries as required and leaves
//! `additionalProperties` open, so adding a property later is a compatible change.

use serde_json::{Value, json};

use super::{REMINDERS, TASK_EVENTS, TASK_UPDATES};
use crate::types::EventSchema;

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The task event types, with the `action` each carries.
const TASK_TYPES: [(&str, &str); 5] = [
    ("task.created", "created"),
    ("task.updated", "updated"),
    ("task.completed", "completed"),
    ("task.uncompleted", "uncompleted"),
    ("task.deleted", "deleted"),
];

/// The reminder event types, with the `action` each carries.
const REMINDER_TYPES: [(&str, &str); 3] = [
    ("reminder.scheduled", "scheduled"),
    ("reminder.rescheduled", "rescheduled"),
    ("reminder.cancelled", "cancelled"),
];

/// The schema of every event type of the catalogue, in a stable order.
pub fn event_schemas() -> Vec<EventSchema> {
    let mut schemas: Vec<EventSchema> = TASK_TYPES
        .iter()
        .map(|(ty, action)| EventSchema::new(ty, TASK_EVENTS, &task(ty, action)))
        .collect();
    schemas.push(EventSchema::new("sync.task", TASK_UPDATES, &sync()));
    schemas.extend(
        REMINDER_TYPES
            .iter()
            .map(|(ty, action)| EventSchema::new(ty, REMINDERS, &reminder(ty, action))),
    );
    schemas
}

fn id() -> Value {
    json!({"type": "string", "minLength": 1})
}

fn timestamp() -> Value {
    json!({"type": "string", "format": "date-time", "description": "RFC 3339 UTC"})
}

fn task(ty: &str, action: &str) -> Value {
    json!({
        "$schema": DRAFT,
        "title": ty,
        "description": "A task changed (the default mapper's task events).",
        "type": "object",
        "properties": {
            "task_id": id(),
            "user_id": id(),
            "action": {"const": action},
            "title": {"type": "string"},
            "completed": {"type": "boolean"},
            "due_date": {"type": ["string", "null"], "format": "date-time"},
            "changes": {
                "description": "For task.updated: each changed field's old and new value; null otherwise.",
                "type": ["object", "null"],
                "additionalProperties": {
                    "type": "object",
                    "properties": {"old": {}, "new": {}},
                    "required": ["old", "new"]
                }
            },
            "timestamp": timestamp()
        },
        "required": ["task_id", "user_id", "action", "title", "completed", "due_date", "changes", "timestamp"]
    })
}

fn sync() -> Value {
    json!({
        "$schema": DRAFT,
        "title": "sync.task",
        "description": "A task changed; sent to task-updates for clients to sync.",
        "type": "object",
        "properties": {
            "task_id": id(),
            "user_id": id(),
            "action": {"enum": ["created", "updated", "completed", "uncompleted", "deleted"]},
            "timestamp": timestamp()
        },
        "required": ["task_id", "user_id", "action", "timestamp"]
    })
}

fn reminder(ty: &str, action: &str) -> Value {
    json!({
        "$schema": DRAFT,
        "title": ty,
        "description": "A task's reminder changed.",
        "type": "object",
        "properties": {
            "task_id": id(),
            "user_id": id(),
            "action": {"const": action},
            "title": {"type": "string"},
            "due_date": {"type": "string", "format": "date-time"},
            "timestamp": timestamp()
        },
        "required": ["task_id", "user_id", "action", "title", "due_date", "timestamp"]
    })
}
