//! A committed task mutation: the record the outbox stores and mappers receive.
//!
//! Its JSON form (snake_case keys) is the one `pakaura mapper run` reads and the
//! one the outbox table keeps, so it is part of the public surface.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{NewTask, Task};
use crate::trace::TraceParent;

/// What happened to a task (WIT `types.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Updated,
    Completed,
    Uncompleted,
    Deleted,
}

impl Action {
    /// The lower-case name used in JSON, logs and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Completed => "completed",
            Action::Uncompleted => "uncompleted",
            Action::Deleted => "deleted",
        }
    }
}

/// Which surface caused a mutation (WIT `types.origin`). The contract also has
/// `system`, reserved and never produced: a replay re-delivers the original mutation
/// with its original origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Rest,
    Mcp,
}

/// One field changed by an update; values are JSON texts (`"\"old\""`, `"null"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldChange {
    pub field: String,
    pub old_value: String,
    pub new_value: String,
}

impl FieldChange {
    /// A change of `field` from `old` to `new`, both serialised as JSON texts.
    pub fn new<T: Serialize>(field: &str, old: &T, new: &T) -> Self {
        Self {
            field: field.to_owned(),
            old_value: serde_json::to_string(old).expect("field values serialise"),
            new_value: serde_json::to_string(new).expect("field values serialise"),
        }
    }
}

/// One committed change to one task (WIT `types.mutation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mutation {
    /// Stable across retries and replays; envelope ids derive from it.
    pub id: Uuid,
    pub action: Action,
    /// The task after the change; for `deleted`, the task as it was.
    pub task: Task,
    /// Empty for `created` and `deleted`.
    #[serde(default)]
    pub changes: Vec<FieldChange>,
    pub origin: Origin,
    pub correlation_id: String,
    /// RFC 3339 UTC.
    pub occurred_at: chrono::DateTime<chrono::Utc>,
}

/// Who asked for a mutation: the surface, the request's correlation id and the trace
/// context the mutation continues.
#[derive(Debug, Clone)]
pub struct MutationContext {
    pub origin: Origin,
    pub correlation_id: String,
    /// The W3C trace context the mutation continues: the request's, when it carried a
    /// valid one; with traces on, that of the span writing the mutation. Stored beside
    /// the mutation, not in it (mappers never see it).
    pub traceparent: Option<TraceParent>,
}

impl Mutation {
    /// The `created` mutation of a new task of `user`'s, made now.
    pub fn created(user: &str, new: NewTask, ctx: &MutationContext) -> Self {
        let at = super::task::now();
        Self::new(
            Action::Created,
            Task::create(user, new, at),
            Vec::new(),
            ctx,
            at,
        )
    }

    /// A new mutation (with a new id) of `action` on `task` (after the change; for
    /// `deleted`, the task as it was), asked for in `ctx`, at `at`.
    pub fn new(
        action: Action,
        task: Task,
        changes: Vec<FieldChange>,
        ctx: &MutationContext,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            // Time-ordered, as task ids are (see `Task::create`).
            id: Uuid::now_v7(),
            action,
            task,
            changes,
            origin: ctx.origin,
            correlation_id: ctx.correlation_id.clone(),
            occurred_at: at,
        }
    }
}
