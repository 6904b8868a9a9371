//! Task rows. Every change commits the task row and its mutation's outbox row in one
//! transaction: a failed change leaves neither. What a change makes of a task is the
//! domain's ([`crate::domain::change`]); the store locks the row, hands it to the rule,
//! and persists the [`Mutation`] the rule returns.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};

use super::group_commit::NewTaskRows;
use super::outbox::{self, OutboxEntry};
use super::{Db, StoreError, WritePool, with_pool, with_writer};
use crate::domain::{Action, ListOrder, Mutation, Page, PageRequest, Task};
use crate::trace::TraceParent;

/// The columns of a task row, in [`TaskRow`]'s order: one list for every query.
macro_rules! task_columns {
    () => {
        "seq, id, user_id, title, description, completed, due_date, created_at, updated_at"
    };
}
pub(super) use task_columns;

/// The start of every task insert: the columns of a new task, in [`Task`]'s order.
macro_rules! insert_tasks {
    () => {
        "INSERT INTO tasks (id, user_id, title, description, completed, due_date, created_at, updated_at) "
    };
}
pub(super) use insert_tasks;

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

/// Inside the caller's transaction: writes `task`'s row as `action` leaves it (updated
/// or deleted).
async fn write_task<'c, DB, E>(conn: E, action: Action, task: &Task) -> Result<(), sqlx::Error>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
{
    let sql = match action {
        // Creations go through the group commit (`Db::insert_task`); no change creates.
        Action::Created => unreachable!("a change rule never creates a task"),
        Action::Updated | Action::Completed | Action::Uncompleted => {
            "UPDATE tasks SET user_id = $2, title = $3, description = $4, completed = $5, \
             due_date = $6, created_at = $7, updated_at = $8 WHERE id = $1"
        }
        Action::Deleted => {
            return sqlx::query("DELETE FROM tasks WHERE id = $1")
                .bind(task.id)
                .execute(conn)
                .await
                .map(drop);
        }
    };
    sqlx::query(sql)
        .bind(task.id)
        .bind(task.user_id.as_str())
        .bind(task.title.as_str())
        .bind(task.description.as_deref())
        .bind(task.completed)
        .bind(task.due_date)
        .bind(task.created_at)
        .bind(task.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

impl Db {
    /// Stores a new task and its `created` mutation (`trace`: the trace context to store
    /// with the outbox row).
    pub async fn insert_task(
        &self,
        mutation: &Mutation,
        trace: Option<TraceParent>,
    ) -> Result<(), StoreError> {
        let entry = OutboxEntry::new(mutation, trace)?;
        let rows = NewTaskRows {
            task: mutation.task.clone(),
            entry,
        };
        // Committed with the other creations waiting at the same time (see
        // `group_commit`).
        let creates = match self {
            Db::Postgres(pg) => &pg.creates,
            Db::Sqlite(sqlite) => &sqlite.creates,
        };
        creates.insert(rows).await?;
        Ok(())
    }

    /// One of `user`'s tasks.
    pub async fn get_task(&self, user: &str, id: Uuid) -> Result<Option<Task>, StoreError> {
        with_pool!(self, |pool| async {
            let row: Option<TaskRow> = sqlx::query_as(concat!(
                "SELECT ",
                task_columns!(),
                " FROM tasks WHERE id = $1 AND user_id = $2"
            ))
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
                ListOrder::NewestFirst => sqlx::query_as(concat!(
                    "SELECT ",
                    task_columns!(),
                    " FROM tasks WHERE user_id = $1 AND ($2 IS NULL OR completed = $2) \
                     AND ($3 IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4"
                )),
                ListOrder::OldestFirst => sqlx::query_as(concat!(
                    "SELECT ",
                    task_columns!(),
                    " FROM tasks WHERE user_id = $1 AND ($2 IS NULL OR completed = $2) \
                     AND ($3 IS NULL OR seq > $3) ORDER BY seq ASC LIMIT $4"
                )),
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

    /// Changes one of `user`'s tasks: locks it for the transaction, asks `change` what
    /// becomes of it, and stores the mutation `change` returns (the task row as the
    /// mutation leaves it, and its outbox row with `trace`). Returns the task as it was
    /// and the mutation (`None` when `change` changed nothing), or `None` when the user
    /// has no such task.
    pub async fn change_task(
        &self,
        user: &str,
        id: Uuid,
        trace: Option<TraceParent>,
        change: impl FnOnce(&Task) -> Option<Mutation>,
    ) -> Result<Option<(Task, Option<Mutation>)>, StoreError> {
        with_writer!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let Some(before) = lock_task(&mut *tx, pool.select_task_for_update(), user, id).await?
            else {
                return Ok(None);
            };
            let Some(mutation) = change(&before) else {
                return Ok(Some((before, None)));
            };
            let entry = OutboxEntry::new(&mutation, trace)?;
            write_task(&mut *tx, mutation.action, &mutation.task).await?;
            outbox::insert(&mut *tx, &entry).await?;
            tx.commit().await?;
            Ok(Some((before, Some(mutation))))
        })
    }

    /// Deletes all of `user`'s completed tasks, each with the mutation `deleted` makes
    /// of it (in insertion order), and returns how many went.
    pub async fn delete_completed(
        &self,
        user: &str,
        trace: Option<TraceParent>,
        deleted: impl Fn(Task) -> Mutation,
    ) -> Result<u64, StoreError> {
        with_writer!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let mut rows: Vec<TaskRow> = sqlx::query_as(concat!(
                "DELETE FROM tasks WHERE user_id = $1 AND completed = TRUE RETURNING ",
                task_columns!()
            ))
            .bind(user)
            .fetch_all(&mut *tx)
            .await?;
            rows.sort_by_key(|r| r.seq);
            let n = rows.len() as u64;
            for row in rows {
                let mutation = deleted(Task::from(row));
                outbox::insert(&mut *tx, &OutboxEntry::new(&mutation, trace)?).await?;
            }
            tx.commit().await?;
            Ok(n)
        })
    }
}
