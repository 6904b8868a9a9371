//! The task API's data shapes, shared by REST (utoipa schemas) and MCP (JSON
//! Schema for tool parameters).

use chrono::{DateTime, Utc};
use rmcp::schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::domain::Task;
use crate::domain::task::rfc3339;

/// The body of `POST /tasks`.
#[derive(Debug, Deserialize, utoipa::ToSchema, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// Trimmed; 1–500 characters.
    pub(crate) title: String,
    /// At most 10,000 characters; blank means none.
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// RFC 3339 timestamp, e.g. `2026-03-01T09:00:00Z`.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub(crate) due_date: Option<String>,
}

/// The body of `PATCH /tasks/{id}`: absent fields stay, `null` clears.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    /// Trimmed; 1–500 characters; cannot be null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub(crate) title: Option<Option<String>>,
    /// `null` clears the description.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub(crate) description: Option<Option<String>>,
    /// RFC 3339 timestamp; `null` clears the due date.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(crate) due_date: Option<Option<String>>,
}

/// Distinguishes a field given as `null` (`Some(None)`) from one left out (`None`).
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Query of `GET /tasks`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only completed (`true`) or open (`false`) tasks.
    pub(crate) completed: Option<bool>,
    /// Page size, 1–100 (default 20).
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
    /// `newest` (default: most recently created first) or `oldest`.
    pub(crate) order: Option<String>,
}

/// A page of tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskPage {
    pub(crate) items: Vec<TaskView>,
    /// Pass as `cursor` to read the next page; null on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// Query of `DELETE /tasks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClearParams {
    /// Must be `true`: only completed tasks can be cleared in bulk.
    pub(crate) completed: Option<bool>,
}

/// The result of clearing completed tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cleared {
    /// How many tasks were deleted.
    pub(crate) deleted: u64,
}

/// A task as the API shows it (its owner is implied by the token).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Task)]
pub struct TaskView {
    pub(crate) id: Uuid,
    pub(crate) title: String,
    pub(crate) description: Option<String>,
    pub(crate) completed: bool,
    /// RFC 3339 UTC, or null.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(crate) due_date: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) created_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub(crate) updated_at: DateTime<Utc>,
}

impl From<Task> for TaskView {
    fn from(t: Task) -> Self {
        Self {
            id: t.id,
            title: t.title,
            description: t.description,
            completed: t.completed,
            due_date: t.due_date,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}
