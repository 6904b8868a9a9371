//! The transactional outbox: one row per committed mutation, written by the same
//! transaction as the task change (see [`insert`]).

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, IntoArguments, Type};
use uuid::Uuid;

use super::{Db, StoreError, with_pool};
use crate::domain::Mutation;
use crate::trace::TraceParent;

/// An outbox row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub seq: i64,
    pub id: Uuid,
    pub task_id: Uuid,
    pub user_id: String,
    pub action: String,
    /// The [`Mutation`] as JSON.
    pub mutation: String,
    pub traceparent: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl OutboxRow {
    /// The mutation this row holds.
    pub fn decode(&self) -> Result<Mutation, serde_json::Error> {
        serde_json::from_str(&self.mutation)
    }

    /// The stored trace context of the mutation (see
    /// [`crate::domain::MutationContext::traceparent`]).
    pub fn trace_context(&self) -> Option<TraceParent> {
        self.traceparent.as_deref().and_then(TraceParent::parse)
    }
}

/// The start of every outbox insert: the columns an [`OutboxEntry`] fills, in its order.
macro_rules! insert_outbox {
    () => {
        "INSERT INTO outbox (id, task_id, user_id, action, mutation, traceparent, created_at) "
    };
}
pub(super) use insert_outbox;

/// The outbox row of one mutation, ready to insert.
#[derive(Debug, Clone)]
pub(super) struct OutboxEntry {
    pub(super) id: Uuid,
    pub(super) task_id: Uuid,
    pub(super) user_id: String,
    pub(super) action: &'static str,
    /// The [`Mutation`] as JSON.
    pub(super) mutation: String,
    pub(super) traceparent: Option<String>,
    pub(super) occurred_at: DateTime<Utc>,
}

impl OutboxEntry {
    /// The row of `mutation`, stored with the trace context `trace`.
    pub(super) fn new(
        mutation: &Mutation,
        trace: Option<TraceParent>,
    ) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: mutation.id,
            task_id: mutation.task.id,
            user_id: mutation.task.user_id.clone(),
            action: mutation.action.as_str(),
            mutation: serde_json::to_string(mutation)
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
            traceparent: trace.map(|t| t.to_string()),
            occurred_at: mutation.occurred_at,
        })
    }
}

/// Writes the outbox row `entry` inside the caller's transaction.
pub(super) async fn insert<'c, DB, E>(conn: E, entry: &OutboxEntry) -> Result<(), sqlx::Error>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(concat!(
        insert_outbox!(),
        "VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(entry.id)
    .bind(entry.task_id)
    .bind(entry.user_id.as_str())
    .bind(entry.action)
    .bind(entry.mutation.as_str())
    .bind(entry.traceparent.as_deref())
    .bind(entry.occurred_at)
    .execute(conn)
    .await?;
    Ok(())
}

impl Db {
    /// Outbox rows in commit order, optionally only those of one task.
    pub async fn outbox_rows(&self, task: Option<Uuid>) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = with_pool!(self, |pool| async {
            sqlx::query_as(
                "SELECT seq, id, task_id, user_id, action, mutation, traceparent, created_at \
                 FROM outbox WHERE ($1 IS NULL OR task_id = $1) ORDER BY seq",
            )
            .bind(task)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }
    /// The outbox row of mutation `id`.
    pub async fn outbox_row(&self, id: Uuid) -> Result<Option<OutboxRow>, StoreError> {
        with_pool!(self, |pool| async {
            let row = sqlx::query_as(
                "SELECT seq, id, task_id, user_id, action, mutation, traceparent, created_at \
                 FROM outbox WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(row)
        })
    }
}
