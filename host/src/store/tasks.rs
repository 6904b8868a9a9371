//! Task queries. Every mutation commits the task change and its outbox row in one
//! transaction: a failed change leaves neither.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};

use super::outbox::{self, MutationContext, OutboxEntry};
use super::{Db, StoreError, WritePool, with_pool, with_writer};
use crate::domain::task::{format_time, now};
use crate::domain::{Action, FieldChange, Task};

/// One of `user`'s tasks, read with `sql` (the driver's locking read, see
/// [`WritePool::select_task_for_update`]) inside the caller's write transaction, so
/// it stays locked until the transaction ends; `None` if the user has no such task.
async fn lock_task<'c, DB, E>(
    conn: E,
    sql: &'static str,
    user: &str,
    id: Uuid,
) -> Result<Option<Task>, sqlx::Error>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'r> TaskRow: FromRow<'r, DB::Row>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    let row: Option<TaskRow> = sqlx::query_as(sql)
        .bind(id)
        .bind(user)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(Task::from))
}

/// A task as stored, with its insertion sequence (the pagination key).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct TaskRow {
    seq: i64,
    id: Uuid,
    user_id: String,
    title: String,
    description: Option<String>,
    completed: bool,
    due_date: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<TaskRow> for Task {
    fn from(r: TaskRow) -> Self {
        Task {
            id: r.id,
            user_id: r.user_id,
            title: r.title,
            description: r.description,
            completed: r.completed,
            due_date: r.due_date,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A validated new task.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub title: String,
    pub description: Option<String>,
    pub due_date: Option<DateTime<Utc>>,
}

/// A validated partial update: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub due_date: Option<Option<DateTime<Utc>>>,
}

/// Newest first (the default) or oldest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// Which page of a user's tasks to read.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub completed: Option<bool>,
    pub limit: u32,
    /// The opaque cursor of the previous page's last item.
    pub after: Option<i64>,
    pub order: ListOrder,
}

/// One page of tasks and the cursor for the next page, if there is one.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Task>,
    pub next: Option<i64>,
}

impl Db {
    /// Creates a task and its `created` mutation.
    pub async fn create_task(
        &self,
        user: &str,
        new: NewTask,
        ctx: &MutationContext,
    ) -> Result<Task, StoreError> {
        let at = now();
        let task = Task {
            id: Uuid::new_v4(),
            user_id: user.to_owned(),
            title: new.title,
            description: new.description,
            completed: false,
            due_date: new.due_date,
            created_at: at,
            updated_at: at,
        };
        match self {
            // One statement, so one round trip: the task and its outbox row commit
            // together (a statement is atomic).
            Db::Postgres(pool) => {
                let entry = OutboxEntry::new(Action::Created, &task, Vec::new(), ctx, at)?;
                sqlx::query(
                    "WITH task AS (INSERT INTO tasks (id, user_id, title, description, completed, due_date, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)) \
                     INSERT INTO outbox (id, task_id, user_id, action, mutation, traceparent, created_at) \
                     VALUES ($8, $1, $2, $9, $10, $11, $7)",
                )
                .bind(task.id)
                .bind(&task.user_id)
                .bind(&task.title)
                .bind(&task.description)
                .bind(task.completed)
                .bind(task.due_date)
                .bind(at)
                .bind(entry.id)
                .bind(entry.action)
                .bind(&entry.mutation)
                .bind(&entry.traceparent)
                .execute(pool)
                .await?;
            }
            Db::Sqlite(sqlite) => {
                let mut tx = sqlite.writer().begin_write().await?;
                sqlx::query(
                    "INSERT INTO tasks (id, user_id, title, description, completed, due_date, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(task.id)
                .bind(&task.user_id)
                .bind(&task.title)
                .bind(&task.description)
                .bind(task.completed)
                .bind(task.due_date)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                outbox::insert(&mut *tx, Action::Created, &task, Vec::new(), ctx, at).await?;
                tx.commit().await?;
            }
        }
        Ok(task)
    }

    /// One of `user`'s tasks.
    pub async fn get_task(&self, user: &str, id: Uuid) -> Result<Option<Task>, StoreError> {
        with_pool!(self, |pool| async {
            let row: Option<TaskRow> = sqlx::query_as(
                "SELECT seq, id, user_id, title, description, completed, due_date, created_at, updated_at \
                 FROM tasks WHERE id = $1 AND user_id = $2",
            )
            .bind(id)
            .bind(user)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(Task::from))
        })
    }

    /// A page of `user`'s tasks, keyed on insertion order.
    pub async fn list_tasks(&self, user: &str, req: &PageRequest) -> Result<Page, StoreError> {
        let fetch = i64::from(req.limit) + 1;
        let completed = req.completed;
        let after = req.after;
        let mut rows: Vec<TaskRow> = with_pool!(self, |pool| async {
            let query = match req.order {
                ListOrder::NewestFirst => sqlx::query_as(
                    "SELECT seq, id, user_id, title, description, completed, due_date, created_at, updated_at \
                     FROM tasks WHERE user_id = $1 AND ($2 IS NULL OR completed = $2) \
                     AND ($3 IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4",
                ),
                ListOrder::OldestFirst => sqlx::query_as(
                    "SELECT seq, id, user_id, title, description, completed, due_date, created_at, updated_at \
                     FROM tasks WHERE user_id = $1 AND ($2 IS NULL OR completed = $2) \
                     AND ($3 IS NULL OR seq > $3) ORDER BY seq ASC LIMIT $4",
                ),
            };
            query
                .bind(user)
                .bind(completed)
                .bind(after)
                .bind(fetch)
                .fetch_all(pool)
                .await
        })?;
        let next = if rows.len() > req.limit as usize {
            rows.truncate(req.limit as usize);
            rows.last().map(|r| r.seq)
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(Task::from).collect(),
            next,
        })
    }

    /// Applies `patch`; records an `updated` mutation when something really changed.
    pub async fn update_task(
        &self,
        user: &str,
        id: Uuid,
        patch: TaskPatch,
        ctx: &MutationContext,
    ) -> Result<Option<Task>, StoreError> {
        with_writer!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let Some(before) = lock_task(&mut *tx, pool.select_task_for_update(), user, id).await?
            else {
                return Ok(None);
            };
            let (after, changes) = apply_patch(&before, patch);
            if changes.is_empty() {
                return Ok(Some(before));
            }
            sqlx::query(
                "UPDATE tasks SET title = $1, description = $2, due_date = $3, updated_at = $4 WHERE id = $5",
            )
            .bind(&after.title)
            .bind(&after.description)
            .bind(after.due_date)
            .bind(after.updated_at)
            .bind(after.id)
            .execute(&mut *tx)
            .await?;
            outbox::insert(
                &mut *tx,
                Action::Updated,
                &after,
                changes,
                ctx,
                after.updated_at,
            )
            .await?;
            tx.commit().await?;
            Ok(Some(after))
        })
    }

    /// Marks a task complete or incomplete; a no-op (and no mutation) when it already is.
    pub async fn set_completed(
        &self,
        user: &str,
        id: Uuid,
        completed: bool,
        ctx: &MutationContext,
    ) -> Result<Option<Task>, StoreError> {
        with_writer!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let Some(mut task) =
                lock_task(&mut *tx, pool.select_task_for_update(), user, id).await?
            else {
                return Ok(None);
            };
            if task.completed == completed {
                return Ok(Some(task));
            }
            task.completed = completed;
            task.updated_at = now();
            sqlx::query("UPDATE tasks SET completed = $1, updated_at = $2 WHERE id = $3")
                .bind(task.completed)
                .bind(task.updated_at)
                .bind(task.id)
                .execute(&mut *tx)
                .await?;
            let action = if completed {
                Action::Completed
            } else {
                Action::Uncompleted
            };
            outbox::insert(&mut *tx, action, &task, Vec::new(), ctx, task.updated_at).await?;
            tx.commit().await?;
            Ok(Some(task))
        })
    }

    /// Deletes a task, recording a `deleted` mutation with the task as it was.
    pub async fn delete_task(
        &self,
        user: &str,
        id: Uuid,
        ctx: &MutationContext,
    ) -> Result<bool, StoreError> {
        with_writer!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let Some(task) = lock_task(&mut *tx, pool.select_task_for_update(), user, id).await?
            else {
                return Ok(false);
            };
            sqlx::query("DELETE FROM tasks WHERE id = $1")
                .bind(task.id)
                .execute(&mut *tx)
                .await?;
            outbox::insert(&mut *tx, Action::Deleted, &task, Vec::new(), ctx, now()).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Deletes all of `user`'s completed tasks, one `deleted` mutation each, and
    /// returns how many went.
    pub async fn clear_completed(
        &self,
        user: &str,
        ctx: &MutationContext,
    ) -> Result<u64, StoreError> {
        with_writer!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let mut rows: Vec<TaskRow> = sqlx::query_as(
                "DELETE FROM tasks WHERE user_id = $1 AND completed = TRUE \
                 RETURNING seq, id, user_id, title, description, completed, due_date, created_at, updated_at",
            )
            .bind(user)
            .fetch_all(&mut *tx)
            .await?;
            rows.sort_by_key(|r| r.seq);
            let at = now();
            for row in &rows {
                outbox::insert(
                    &mut *tx,
                    Action::Deleted,
                    &Task::from(row.clone()),
                    Vec::new(),
                    ctx,
                    at,
                )
                .await?;
            }
            tx.commit().await?;
            Ok(rows.len() as u64)
        })
    }
}

/// The task after `patch`, and the field changes it makes (empty when none).
fn apply_patch(before: &Task, patch: TaskPatch) -> (Task, Vec<FieldChange>) {
    let mut after = before.clone();
    let mut changes = Vec::new();
    if let Some(title) = patch.title
        && title != before.title
    {
        changes.push(FieldChange::new("title", &before.title, &title));
        after.title = title;
    }
    if let Some(description) = patch.description
        && description != before.description
    {
        changes.push(FieldChange::new(
            "description",
            &before.description,
            &description,
        ));
        after.description = description;
    }
    if let Some(due_date) = patch.due_date
        && due_date != before.due_date
    {
        let text = |d: &Option<DateTime<Utc>>| d.as_ref().map(format_time);
        changes.push(FieldChange::new(
            "due_date",
            &text(&before.due_date),
            &text(&due_date),
        ));
        after.due_date = due_date;
    }
    if !changes.is_empty() {
        after.updated_at = now();
    }
    (after, changes)
}
