//! The task API's data shapes, shared by REST (utoipa schemas) and MCP (JSON
//! Schema for tool parameters), and their parsing into the validated input of the
//! task service.

use chrono::{DateTime, Utc};
use rmcp::schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::domain::task::rfc3339;
use crate::domain::{
    Description, DueDate, ListOrder, NewTask, Page, PageRequest, Task, TaskPatch, TaskTitle,
    ValidationError,
};
use crate::http::error::ApiError;

/// The largest page a list returns.
pub(crate) const MAX_PAGE: u32 = 100;
/// The page size when none is asked for.
const DEFAULT_PAGE: u32 = 20;

/// A task id from a path or tool argument: a UUID in its hyphenated form (400 naming
/// `id` otherwise).
pub(crate) fn parse_task_id(raw: &str) -> Result<Uuid, ApiError> {
    Some(raw)
        .filter(|r| r.len() == 36)
        .and_then(|r| Uuid::parse_str(r).ok())
        .ok_or_else(|| {
            ApiError::param(
                "id",
                format!(
                    "`{}` is not a UUID",
                    raw.chars().take(64).collect::<String>()
                ),
            )
        })
}

/// A page cursor: what `next_cursor` returned, 1 to 18 digits without a leading zero.
fn parse_cursor(raw: &str) -> Option<i64> {
    let digits = (1..=18).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_digit())
        && !raw.starts_with('0');
    digits.then(|| raw.parse().ok()).flatten()
}

fn parse_due_date(raw: Option<&str>) -> Result<Option<DueDate>, ValidationError> {
    raw.map(DueDate::parse).transpose()
}

fn parse_description(raw: Option<&str>) -> Result<Option<Description>, ValidationError> {
    Ok(raw.map(Description::parse).transpose()?.flatten())
}

/// The body of `POST /tasks`.
#[derive(Debug, Deserialize, utoipa::ToSchema, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
// The `pattern`s below say in the OpenAPI document what the parsers (`TaskTitle::parse`,
// `Description::parse`, `DueDate::parse`, `parse_cursor`) enforce: no control character
// (titles: none; descriptions: none but tab, LF, CR), a title not only white space, a due
// date in RFC 3339 with upper-case `T`/`Z` and years 0001 to 9998, a cursor of 1 to 18
// digits. Explicit classes, which ECMA-262 and Python regular expressions read alike.
pub struct CreateTask {
    /// At most 500 characters, no control character, not blank; stored trimmed.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub(crate) title: String,
    /// At most 10,000 characters, no control character but tab and line breaks; blank
    /// means none.
    #[serde(default)]
    #[schema(
        max_length = 10000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub(crate) description: Option<String>,
    /// RFC 3339 timestamp with upper-case `T` and `Z` (or an offset), years 0001 to
    /// 9998, e.g. `2026-03-01T09:00:00Z`; stored in UTC with milliseconds.
    #[serde(default)]
    #[schema(format = DateTime, pattern = r"^(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})$")]
    pub(crate) due_date: Option<String>,
}

impl CreateTask {
    /// The validated task to create.
    pub(crate) fn parse(self) -> Result<NewTask, ValidationError> {
        Ok(NewTask {
            title: TaskTitle::parse(&self.title)?,
            description: parse_description(self.description.as_deref())?,
            due_date: parse_due_date(self.due_date.as_deref())?,
        })
    }
}

/// The body of `PATCH /tasks/{id}`: at least one field; absent fields stay, `null`
/// clears the description or the due date.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateTask {
    /// As in `POST /tasks`; cannot be null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 500, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$")]
    pub(crate) title: Option<Option<String>>,
    /// As in `POST /tasks`; `null` clears the description.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 10000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
    pub(crate) description: Option<Option<String>>,
    /// As in `POST /tasks`; `null` clears the due date.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime, pattern = r"^(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})$")]
    pub(crate) due_date: Option<Option<String>>,
}

impl UpdateTask {
    /// The validated patch; at least one field must be given, and the title cannot be null.
    pub(crate) fn parse(self) -> Result<TaskPatch, ValidationError> {
        let patch = TaskPatch {
            title: match self.title {
                Some(Some(t)) => Some(TaskTitle::parse(&t)?),
                Some(None) => return Err(ValidationError::new("title", "cannot be null")),
                None => None,
            },
            description: self
                .description
                .map(|d| parse_description(d.as_deref()))
                .transpose()?,
            due_date: self
                .due_date
                .map(|d| parse_due_date(d.as_deref()))
                .transpose()?,
        };
        if patch.title.is_none() && patch.description.is_none() && patch.due_date.is_none() {
            return Err(ValidationError::new(
                "body",
                "give at least one of title, description, due_date",
            ));
        }
        Ok(patch)
    }
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
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = r"^[1-9][0-9]{0,17}$")]
    pub(crate) cursor: Option<String>,
    /// `newest` (default: most recently created first) or `oldest`.
    #[param(inline, value_type = Option<ListOrderParam>)]
    pub(crate) order: Option<String>,
}

impl ListParams {
    /// The page to read; a bad parameter is a 400 naming it.
    pub(crate) fn parse(self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::param(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        let order = match self.order.as_deref() {
            None | Some("newest") => ListOrder::NewestFirst,
            Some("oldest") => ListOrder::OldestFirst,
            Some(other) => {
                return Err(ApiError::param(
                    "order",
                    format!("must be `newest` or `oldest`, got `{other}`"),
                ));
            }
        };
        let after = self
            .cursor
            .as_deref()
            .map(|c| {
                parse_cursor(c).ok_or_else(|| {
                    ApiError::param("cursor", "is not a cursor returned by this API")
                })
            })
            .transpose()?;
        Ok(PageRequest {
            completed: self.completed,
            limit,
            after,
            order,
        })
    }
}

/// A page of tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskPage {
    pub(crate) items: Vec<TaskView>,
    /// Pass as `cursor` to read the next page; null on the last page.
    #[schema(pattern = r"^[1-9][0-9]{0,17}$")]
    pub(crate) next_cursor: Option<String>,
}

impl From<Page> for TaskPage {
    fn from(page: Page) -> Self {
        Self {
            items: page.items.into_iter().map(TaskView::from).collect(),
            next_cursor: page.next.map(|n| n.to_string()),
        }
    }
}

// Documentation only: `ListParams::parse` reads `order` and names the parameter when it
// is something else.
/// The order of a task list.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase", as = ListOrder)]
#[allow(dead_code)]
pub(crate) enum ListOrderParam {
    /// Most recently created first (the default).
    Newest,
    /// Oldest first.
    Oldest,
}

/// Query of `DELETE /tasks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearParams {
    /// Must be `true`: only completed tasks can be cleared in bulk.
    pub(crate) completed: bool,
}

// Written out rather than derived: the derive cannot say that the parameter is required
// and only `true` is valid.
impl utoipa::IntoParams for ClearParams {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        vec![
            ParameterBuilder::new()
                .name("completed")
                .parameter_in(ParameterIn::Query)
                .required(utoipa::openapi::Required::True)
                .description(Some(
                    "Must be `true`: only completed tasks can be cleared in bulk.",
                ))
                .schema(Some(only_true()))
                .build(),
        ]
    }
}

/// The schema of a boolean whose only valid value is `true`.
fn only_true() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Boolean)
        .enum_values(Some([true]))
        .build()
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
