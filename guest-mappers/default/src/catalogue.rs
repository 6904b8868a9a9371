//! The event catalogue of the backend event publishing plan (see the README), as plain Rust.
//!
//! Every mutation yields, in this order: its task event on `task-events`, a `sync.task`
//! event on `task-updates`, and, when the due date calls for one, a reminder event on
//! `reminders`. The subject is the task id; no partition key, data schema or extension is set.

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::types::{Action, Event, FieldChange, MapperInfo, Mutation};

mod schemas;
#[cfg(test)]
mod tests;

pub use schemas::event_schemas;

/// The topic of task lifecycle events.
pub const TASK_EVENTS: &str = "task-events";
/// The topic of `sync.task` events, read by clients that mirror tasks.
pub const TASK_UPDATES: &str = "task-updates";
/// The topic of reminder events, read by the notification service.
pub const REMINDERS: &str = "reminders";

/// Names this mapper and declares the three topics of the catalogue.
pub fn describe() -> MapperInfo {
    MapperInfo {
        name: "default".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        topics: vec![
            TASK_EVENTS.to_owned(),
            TASK_UPDATES.to_owned(),
            REMINDERS.to_owned(),
        ],
    }
}

/// Maps one mutation to its events.
///
/// Fails only when an `updated` mutation carries a change whose old or new value is not a
/// JSON text, names a field twice, or sets a due date that is neither a string nor null.
pub fn map_mutation(mutation: &Mutation) -> Result<Vec<Event>, String> {
    let changes = match mutation.action {
        Action::Updated => Some(parse_changes(&mutation.changes)?),
        _ => None,
    };
    let reminder = reminder_for(mutation, changes.as_deref())?;

    let task = &mutation.task;
    let action = mutation.action.as_str();
    let mut events = Vec::with_capacity(3);
    events.push(event(
        mutation,
        TASK_EVENTS,
        task_event_type(mutation.action),
        &TaskPayload {
            task_id: &task.id,
            user_id: &task.user_id,
            action,
            title: &task.title,
            completed: task.completed,
            due_date: task.due_date.as_deref(),
            changes: changes.as_deref().map(ChangesPayload),
            timestamp: &mutation.occurred_at,
        },
    )?);
    events.push(event(
        mutation,
        TASK_UPDATES,
        "sync.task",
        &SyncPayload {
            task_id: &task.id,
            user_id: &task.user_id,
            action,
            timestamp: &mutation.occurred_at,
        },
    )?);
    if let Some((kind, due_date)) = reminder {
        events.push(event(
            mutation,
            REMINDERS,
            kind.event_type(),
            &ReminderPayload {
                task_id: &task.id,
                user_id: &task.user_id,
                action: kind.as_str(),
                title: &task.title,
                due_date,
                timestamp: &mutation.occurred_at,
            },
        )?);
    }
    Ok(events)
}

fn task_event_type(action: Action) -> &'static str {
    match action {
        Action::Created => "task.created",
        Action::Updated => "task.updated",
        Action::Completed => "task.completed",
        Action::Uncompleted => "task.uncompleted",
        Action::Deleted => "task.deleted",
    }
}

fn event(
    mutation: &Mutation,
    topic: &str,
    event_type: &str,
    payload: &impl Serialize,
) -> Result<Event, String> {
    let data = serde_json::to_string(payload)
        .map_err(|e| format!("cannot encode the {event_type} payload: {e}"))?;
    Ok(Event {
        topic: topic.to_owned(),
        event_type: event_type.to_owned(),
        subject: Some(mutation.task.id.clone()),
        data,
        data_schema: None,
        extensions: Vec::new(),
        partition_key: None,
    })
}

/// A field change whose old and new JSON texts have been parsed.
struct ParsedChange<'a> {
    field: &'a str,
    old: Value,
    new: Value,
}

fn parse_changes(changes: &[FieldChange]) -> Result<Vec<ParsedChange<'_>>, String> {
    let mut parsed: Vec<ParsedChange<'_>> = Vec::with_capacity(changes.len());
    for change in changes {
        let field = change.field.as_str();
        if parsed.iter().any(|p| p.field == field) {
            return Err(format!("field `{field}` is changed twice"));
        }
        let json = |which: &str, text: &str| {
            serde_json::from_str(text)
                .map_err(|e| format!("field `{field}`: {which} value is not JSON: {e}"))
        };
        parsed.push(ParsedChange {
            field,
            old: json("old", &change.old_value)?,
            new: json("new", &change.new_value)?,
        });
    }
    Ok(parsed)
}

/// The reminder events of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReminderKind {
    Scheduled,
    Rescheduled,
    Cancelled,
}

impl ReminderKind {
    fn as_str(self) -> &'static str {
        match self {
            ReminderKind::Scheduled => "scheduled",
            ReminderKind::Rescheduled => "rescheduled",
            ReminderKind::Cancelled => "cancelled",
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            ReminderKind::Scheduled => "reminder.scheduled",
            ReminderKind::Rescheduled => "reminder.rescheduled",
            ReminderKind::Cancelled => "reminder.cancelled",
        }
    }
}

/// Which reminder event the mutation calls for, with the due date it concerns: the new one
/// when scheduling or rescheduling, the one being cancelled when cancelling.
fn reminder_for<'a>(
    mutation: &'a Mutation,
    changes: Option<&'a [ParsedChange<'a>]>,
) -> Result<Option<(ReminderKind, &'a str)>, String> {
    let due_date = mutation.task.due_date.as_deref();
    let reminder = match mutation.action {
        Action::Created | Action::Uncompleted => due_date.map(|d| (ReminderKind::Scheduled, d)),
        Action::Completed | Action::Deleted => due_date.map(|d| (ReminderKind::Cancelled, d)),
        Action::Updated => {
            let Some(change) = changes
                .unwrap_or_default()
                .iter()
                .find(|c| c.field == "due_date")
            else {
                return Ok(None);
            };
            match (due_date_value(&change.old)?, due_date_value(&change.new)?) {
                (None, Some(new)) => Some((ReminderKind::Scheduled, new)),
                (Some(old), Some(new)) if old != new => Some((ReminderKind::Rescheduled, new)),
                (Some(old), None) => Some((ReminderKind::Cancelled, old)),
                _ => None,
            }
        }
    };
    Ok(reminder)
}

fn due_date_value(value: &Value) -> Result<Option<&str>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(date) => Ok(Some(date)),
        other => Err(format!(
            "field `due_date`: expected a string or null, got {other}"
        )),
    }
}

/// Payload of `task.*` events.
#[derive(Serialize)]
struct TaskPayload<'a> {
    task_id: &'a str,
    user_id: &'a str,
    action: &'a str,
    title: &'a str,
    completed: bool,
    due_date: Option<&'a str>,
    changes: Option<ChangesPayload<'a>>,
    timestamp: &'a str,
}

/// `{field: {"old": ..., "new": ...}}`, in the order the host listed the changes.
struct ChangesPayload<'a>(&'a [ParsedChange<'a>]);

impl Serialize for ChangesPayload<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct OldNew<'a> {
            old: &'a Value,
            new: &'a Value,
        }
        serializer.collect_map(self.0.iter().map(|c| {
            let old_new = OldNew {
                old: &c.old,
                new: &c.new,
            };
            (c.field, old_new)
        }))
    }
}

/// Payload of `sync.task` events.
#[derive(Serialize)]
struct SyncPayload<'a> {
    task_id: &'a str,
    user_id: &'a str,
    action: &'a str,
    timestamp: &'a str,
}

/// Payload of `reminder.*` events.
#[derive(Serialize)]
struct ReminderPayload<'a> {
    task_id: &'a str,
    user_id: &'a str,
    action: &'a str,
    title: &'a str,
    due_date: &'a str,
    timestamp: &'a str,
}
