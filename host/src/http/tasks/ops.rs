//! The task operations behind both surfaces, REST and MCP: validation, the store
//! call (the task change and its outbox row commit in one transaction) and waking
//! the relay. Nothing here waits on mapping or publishing.

use uuid::Uuid;

use super::model::{CreateTask, ListParams, TaskPage, TaskView, UpdateTask};
use crate::domain::task::parse_description;
use crate::domain::{DueDate, Task, TaskTitle};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::store::{ListOrder, MutationContext, NewTask, PageRequest, TaskPatch};

/// The largest page a list returns.
pub(crate) const MAX_PAGE: u32 = 100;
const DEFAULT_PAGE: u32 = 20;

fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no task {id}"))
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::param("id", format!("`{raw}` is not a UUID")))
}

/// Creates a task for `user`.
pub(crate) async fn create(
    state: &AppState,
    user: &str,
    ctx: &MutationContext,
    body: CreateTask,
) -> Result<Task, ApiError> {
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
    let task = state.db.create_task(user, new, ctx).await?;
    state.relay.notify();
    Ok(task)
}

/// A page of `user`'s tasks.
pub(crate) async fn list(
    state: &AppState,
    user: &str,
    params: ListParams,
) -> Result<TaskPage, ApiError> {
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
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::param("cursor", "is not a cursor returned by this API"))
        })
        .transpose()?;
    let request = PageRequest {
        completed: params.completed,
        limit,
        after,
        order,
    };
    let page = state.db.list_tasks(user, &request).await?;
    Ok(TaskPage {
        items: page.items.into_iter().map(TaskView::from).collect(),
        next_cursor: page.next.map(|n| n.to_string()),
    })
}

/// One of `user`'s tasks.
pub(crate) async fn read(state: &AppState, user: &str, id: &str) -> Result<Task, ApiError> {
    let id = parse_id(id)?;
    state
        .db
        .get_task(user, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// Changes title, description or due date (`null` clears the last two).
pub(crate) async fn update(
    state: &AppState,
    user: &str,
    ctx: &MutationContext,
    id: &str,
    body: UpdateTask,
) -> Result<Task, ApiError> {
    let id = parse_id(id)?;
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
    let task = state.db.update_task(user, id, patch, ctx).await?;
    state.relay.notify();
    task.ok_or_else(|| not_found(id))
}

/// Marks a task complete or incomplete (a no-op when it already is).
pub(crate) async fn set_completed(
    state: &AppState,
    user: &str,
    ctx: &MutationContext,
    id: &str,
    completed: bool,
) -> Result<Task, ApiError> {
    let id = parse_id(id)?;
    let task = state.db.set_completed(user, id, completed, ctx).await?;
    state.relay.notify();
    task.ok_or_else(|| not_found(id))
}

/// Deletes a task.
pub(crate) async fn delete(
    state: &AppState,
    user: &str,
    ctx: &MutationContext,
    id: &str,
) -> Result<(), ApiError> {
    let id = parse_id(id)?;
    if state.db.delete_task(user, id, ctx).await? {
        state.relay.notify();
        Ok(())
    } else {
        Err(not_found(id))
    }
}

/// Deletes all of `user`'s completed tasks; returns how many went.
pub(crate) async fn clear_completed(
    state: &AppState,
    user: &str,
    ctx: &MutationContext,
) -> Result<u64, ApiError> {
    let deleted = state.db.clear_completed(user, ctx).await?;
    if deleted > 0 {
        state.relay.notify();
    }
    Ok(deleted)
}
