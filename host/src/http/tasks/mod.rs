//! `/tasks`: the task REST API. Handlers extract, parse the request into the task
//! service's validated input, call [`crate::tasks::TaskService`] and respond.

pub mod model;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::AppState;
use super::auth::AuthUser;
use super::context::RequestContext;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::domain::{Origin, Task};
use model::{
    ClearParams, Cleared, CreateTask, ListParams, TaskPage, TaskView, UpdateTask, parse_task_id,
};

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

/// `complete` and `uncomplete`.
async fn set_completed(
    state: &AppState,
    user: &str,
    ctx: &RequestContext,
    id: &str,
    completed: bool,
) -> Result<Json<TaskView>, ApiError> {
    let id = parse_task_id(id)?;
    let task = state
        .tasks
        .set_completed(user, id, completed, &ctx.mutation(Origin::Rest))
        .await?;
    Ok(view(task))
}

/// Creates a task.
#[utoipa::path(post, path = "/tasks", tag = "tasks", request_body = CreateTask,
    security(("bearer" = [])),
    responses((status = 201, description = "The task created", body = TaskView, links(("GetTask" = (operation_id = "read", parameters(("id" = "$response.body#/id")), description = "The task created")), ("UpdateTask" = (operation_id = "update", parameters(("id" = "$response.body#/id")))), ("DeleteTask" = (operation_id = "remove", parameters(("id" = "$response.body#/id")))), ("CompleteTask" = (operation_id = "complete", parameters(("id" = "$response.body#/id")))), ("UncompleteTask" = (operation_id = "uncomplete", parameters(("id" = "$response.body#/id"))))))))]
pub(super) async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ctx: RequestContext,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<Response, ApiError> {
    let new = body.parse()?;
    let task = state
        .tasks
        .create(&user, new, &ctx.mutation(Origin::Rest))
        .await?;
    Ok((StatusCode::CREATED, view(task)).into_response())
}

/// Lists the caller's tasks, newest first unless `order=oldest`.
#[utoipa::path(get, path = "/tasks", tag = "tasks", params(ListParams), security(("bearer" = [])),
    responses((status = 200, description = "A page of the caller's tasks", body = TaskPage)))]
pub(super) async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<TaskPage>, ApiError> {
    let page = state.tasks.list(&user, &params.parse()?).await?;
    Ok(Json(TaskPage::from(page)))
}

/// Reads one task.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks", params(("id" = Uuid, Path, description = "The task's id (hyphenated)")), security(("bearer" = [])),
    responses((status = 200, description = "The task", body = TaskView)))]
pub(super) async fn read(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskView>, ApiError> {
    Ok(view(state.tasks.get(&user, parse_task_id(&id)?).await?))
}

/// Changes title, description or due date; `null` clears description and due date.
#[utoipa::path(patch, path = "/tasks/{id}", tag = "tasks", params(("id" = Uuid, Path, description = "The task's id (hyphenated)")), request_body = UpdateTask,
    security(("bearer" = [])),
    responses((status = 200, description = "The task after the change", body = TaskView)))]
pub(super) async fn update(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ctx: RequestContext,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateTask>,
) -> Result<Json<TaskView>, ApiError> {
    let id = parse_task_id(&id)?;
    let patch = body.parse()?;
    let task = state
        .tasks
        .update(&user, id, patch, &ctx.mutation(Origin::Rest))
        .await?;
    Ok(view(task))
}

/// Deletes a task.
#[utoipa::path(delete, path = "/tasks/{id}", tag = "tasks", params(("id" = Uuid, Path, description = "The task's id (hyphenated)")), security(("bearer" = [])),
    responses((status = 204, description = "Deleted")))]
pub(super) async fn remove(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ctx: RequestContext,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_task_id(&id)?;
    state
        .tasks
        .delete(&user, id, &ctx.mutation(Origin::Rest))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Marks a task complete (a no-op when it already is).
#[utoipa::path(post, path = "/tasks/{id}/complete", tag = "tasks", params(("id" = Uuid, Path, description = "The task's id (hyphenated)")), security(("bearer" = [])),
    responses((status = 200, description = "The task, completed", body = TaskView)))]
pub(super) async fn complete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ctx: RequestContext,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskView>, ApiError> {
    set_completed(&state, &user, &ctx, &id, true).await
}

/// Marks a task incomplete (a no-op when it already is).
#[utoipa::path(post, path = "/tasks/{id}/uncomplete", tag = "tasks", params(("id" = Uuid, Path, description = "The task's id (hyphenated)")), security(("bearer" = [])),
    responses((status = 200, description = "The task, open again", body = TaskView)))]
pub(super) async fn uncomplete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ctx: RequestContext,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskView>, ApiError> {
    set_completed(&state, &user, &ctx, &id, false).await
}

/// Deletes all the caller's completed tasks (`completed=true` is required).
#[utoipa::path(delete, path = "/tasks", tag = "tasks", params(ClearParams), security(("bearer" = [])),
    responses((status = 200, description = "How many completed tasks were deleted", body = Cleared)))]
pub(super) async fn clear_completed(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ctx: RequestContext,
    ApiQuery(params): ApiQuery<ClearParams>,
) -> Result<Json<Cleared>, ApiError> {
    if !params.completed {
        return Err(ApiError::param(
            "completed",
            "bulk deletion needs `completed=true`: only completed tasks can be cleared",
        ));
    }
    let deleted = state
        .tasks
        .clear_completed(&user, &ctx.mutation(Origin::Rest))
        .await?;
    Ok(Json(Cleared { deleted }))
}
