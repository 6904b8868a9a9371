//! `/tasks`: the task REST API. Every mutation is recorded in the outbox by the
//! store, in the same transaction; handlers never wait on mapping or publishing.

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use super::AppState;
use super::auth::AuthUser;
use super::context::RequestContext;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::domain::task::{parse_description, rfc3339};
use crate::domain::{DueDate, Origin, Task, TaskTitle};
use crate::store::{ListOrder, NewTask, PageRequest, TaskPatch};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};

/// The largest page `GET /tasks` returns.
pub const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 20;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/tasks", post(create).get(list).delete(clear_completed))
        .route("/tasks/{id}", get(read).patch(update).delete(remove))
        .route("/tasks/{id}/complete", post(complete))
        .route("/tasks/{id}/uncomplete", post(uncomplete))
}

/// The body of `POST /tasks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// Trimmed; 1–500 characters.
    title: String,
    /// At most 10,000 characters; blank means none.
    #[serde(default)]
    description: Option<String>,
    /// RFC 3339 timestamp, e.g. `2026-03-01T09:00:00Z`.
    #[serde(default)]
    #[schema(format = DateTime)]
    due_date: Option<String>,
}

/// The body of `PATCH /tasks/{id}`: absent fields stay, `null` clears.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    /// Trimmed; 1–500 characters; cannot be null.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    title: Option<Option<String>>,
    /// `null` clears the description.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    /// RFC 3339 timestamp; `null` clears the due date.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    due_date: Option<Option<String>>,
}

/// Distinguishes a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Query of `GET /tasks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only completed (`true`) or open (`false`) tasks.
    completed: Option<bool>,
    /// Page size, 1–100 (default 20).
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `newest` (default: most recently created first) or `oldest`.
    order: Option<String>,
}

/// A page of tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskPage {
    items: Vec<TaskView>,
    /// Pass as `cursor` to read the next page; null on the last page.
    next_cursor: Option<String>,
}

/// Query of `DELETE /tasks`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClearParams {
    /// Must be `true`: only completed tasks can be cleared in bulk.
    completed: Option<bool>,
}

/// The result of clearing completed tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cleared {
    /// How many tasks were deleted.
    deleted: u64,
}

/// A task as the API shows it (its owner is implied by the token).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Task)]
pub struct TaskView {
    id: Uuid,
    title: String,
    description: Option<String>,
    completed: bool,
    /// RFC 3339 UTC, or null.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    due_date: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: DateTime<Utc>,
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

fn view(task: Task) -> Json<TaskView> {
    Json(TaskView::from(task))
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no task {id}"))
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::param("id", format!("`{raw}` is not a UUID")))
}

/// Creates a task.
#[utoipa::path(post, path = "/tasks", tag = "tasks", request_body = CreateTask,
    security(("bearer" = [])),
    responses((status = 201, body = TaskView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ctx: RequestContext,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<Response, ApiError> {
    let new = NewTask {
        title: TaskTitle::parse(&body.title)?.into_inner(),
        description: parse_description(body.description.as_deref())?,
        due_date: body
            .due_date
            .as_deref()
            .map(DueDate::parse)
            .transpose()?
            .map(DueDate::into_inner),
    };
    let task = state
        .db
        .create_task(&user, new, &ctx.mutation(Origin::Rest))
        .await?;
    state.relay.notify();
    Ok((StatusCode::CREATED, view(task)).into_response())
}

/// Lists the caller's tasks, newest first unless `order=oldest`.
#[utoipa::path(get, path = "/tasks", tag = "tasks", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = TaskPage), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<TaskPage>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::param(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    let order = match params.order.as_deref() {
        None | Some("newest") => ListOrder::NewestFirst,
        Some("oldest") => ListOrder::OldestFirst,
        Some(other) => {
            return Err(ApiError::param(
                "order",
                format!("must be `newest` or `oldest`, got `{other}`"),
            ));
        }
    };
    let after = params
        .cursor
        .as_deref()
        .map(|c| c.parse::<i64>().ok().filter(|n| *n > 0))
        .map(|c| c.ok_or_else(|| ApiError::param("cursor", "is not a cursor returned by this API")))
        .transpose()?;
    let page = state
        .db
        .list_tasks(
            &user,
            &PageRequest {
                completed: params.completed,
                limit,
                after,
                order,
            },
        )
        .await?;
    Ok(Json(TaskPage {
        items: page.items.into_iter().map(TaskView::from).collect(),
        next_cursor: page.next.map(|n| n.to_string()),
    }))
}

/// Reads one task.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = TaskView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn read(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskView>, ApiError> {
    let id = parse_id(&id)?;
    state
        .db
        .get_task(&user, id)
        .await?
        .map(view)
        .ok_or_else(|| not_found(id))
}

/// Changes title, description or due date; `null` clears description and due date.
#[utoipa::path(patch, path = "/tasks/{id}", tag = "tasks", params(("id" = Uuid, Path)), request_body = UpdateTask,
    security(("bearer" = [])),
    responses((status = 200, body = TaskView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn update(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ctx: RequestContext,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateTask>,
) -> Result<Json<TaskView>, ApiError> {
    let id = parse_id(&id)?;
    let patch = TaskPatch {
        title: match body.title {
            Some(Some(t)) => Some(TaskTitle::parse(&t)?.into_inner()),
            Some(None) => return Err(ApiError::invalid("title", "title: cannot be null")),
            None => None,
        },
        description: body
            .description
            .map(|d| parse_description(d.as_deref()))
            .transpose()?,
        due_date: body
            .due_date
            .map(|d| {
                d.as_deref()
                    .map(DueDate::parse)
                    .transpose()
                    .map(|d| d.map(DueDate::into_inner))
            })
            .transpose()?,
    };
    if patch.title.is_none() && patch.description.is_none() && patch.due_date.is_none() {
        return Err(ApiError::invalid(
            "body",
            "give at least one of title, description, due_date",
        ));
    }
    let task = state
        .db
        .update_task(&user, id, patch, &ctx.mutation(Origin::Rest))
        .await?;
    state.relay.notify();
    task.map(view).ok_or_else(|| not_found(id))
}

/// Deletes a task.
#[utoipa::path(delete, path = "/tasks/{id}", tag = "tasks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn remove(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ctx: RequestContext,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    if state
        .db
        .delete_task(&user, id, &ctx.mutation(Origin::Rest))
        .await?
    {
        state.relay.notify();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(id))
    }
}

async fn set_completed(
    state: AppState,
    user: String,
    ctx: RequestContext,
    id: String,
    completed: bool,
) -> Result<Json<TaskView>, ApiError> {
    let id = parse_id(&id)?;
    let task = state
        .db
        .set_completed(&user, id, completed, &ctx.mutation(Origin::Rest))
        .await?;
    state.relay.notify();
    task.map(view).ok_or_else(|| not_found(id))
}

/// Marks a task complete (a no-op when it already is).
#[utoipa::path(post, path = "/tasks/{id}/complete", tag = "tasks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = TaskView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn complete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ctx: RequestContext,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskView>, ApiError> {
    set_completed(state, user, ctx, id, true).await
}

/// Marks a task incomplete (a no-op when it already is).
#[utoipa::path(post, path = "/tasks/{id}/uncomplete", tag = "tasks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = TaskView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn uncomplete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ctx: RequestContext,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskView>, ApiError> {
    set_completed(state, user, ctx, id, false).await
}

/// Deletes all the caller's completed tasks (`completed=true` is required).
#[utoipa::path(delete, path = "/tasks", tag = "tasks", params(ClearParams), security(("bearer" = [])),
    responses((status = 200, body = Cleared), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn clear_completed(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ctx: RequestContext,
    ApiQuery(params): ApiQuery<ClearParams>,
) -> Result<Json<Cleared>, ApiError> {
    if params.completed != Some(true) {
        return Err(ApiError::param(
            "completed",
            "bulk deletion needs `completed=true`: only completed tasks can be cleared",
        ));
    }
    let deleted = state
        .db
        .clear_completed(&user, &ctx.mutation(Origin::Rest))
        .await?;
    if deleted > 0 {
        state.relay.notify();
    }
    Ok(Json(Cleared { deleted }))
}
