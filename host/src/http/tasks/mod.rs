//! `/tasks`: the task REST API. Handlers only extract and respond; [`ops`] holds
//! the operations MCP shares. Every mutation is recorded in the outbox by the
//! store, in the same transaction; nothing waits on mapping or publishing.

pub mod model;
pub(crate) mod ops;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::AppState;
use super::auth::AuthUser;
use super::context::RequestContext;
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::domain::{Origin, Task};
use model::{ClearParams, Cleared, CreateTask, ListParams, TaskPage, TaskView, UpdateTask};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/tasks", post(create).get(list).delete(clear_completed))
        .route("/tasks/{id}", get(read).patch(update).delete(remove))
        .route("/tasks/{id}/complete", post(complete))
        .route("/tasks/{id}/uncomplete", post(uncomplete))
}

fn view(task: Task) -> Json<TaskView> {
    Json(TaskView::from(task))
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
    let task = ops::create(&state, &user, &ctx.mutation(Origin::Rest), body).await?;
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
    ops::list(&state, &user, params).await.map(Json)
}

/// Reads one task.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = TaskView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn read(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskView>, ApiError> {
    ops::read(&state, &user, &id).await.map(view)
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
    ops::update(&state, &user, &ctx.mutation(Origin::Rest), &id, body)
        .await
        .map(view)
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
    ops::delete(&state, &user, &ctx.mutation(Origin::Rest), &id).await?;
    Ok(StatusCode::NO_CONTENT)
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
    ops::set_completed(&state, &user, &ctx.mutation(Origin::Rest), &id, true)
        .await
        .map(view)
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
    ops::set_completed(&state, &user, &ctx.mutation(Origin::Rest), &id, false)
        .await
        .map(view)
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
    let deleted = ops::clear_completed(&state, &user, &ctx.mutation(Origin::Rest)).await?;
    Ok(Json(Cleared { deleted }))
}
