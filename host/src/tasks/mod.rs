//! The task service: the operations REST and MCP share. Each takes already validated input
//! (the surfaces parse their requests into [`NewTask`], [`TaskPatch`] and [`PageRequest`]),
//! calls the store (a task change and its outbox row commit in one transaction) and wakes
//! the relay. Nothing here waits on mapping or publishing.
//!
//! Failures are [`TaskError`]s; each surface translates them its own way (HTTP problem
//! documents, MCP tool errors).
//!
//! With traces on, each write runs in an `outbox write` span whose trace context is the
//! one stored with the outbox row (see [`crate::telemetry::traces`]).

use std::borrow::Cow;

use tracing::{Instrument, Span};
use uuid::Uuid;

use crate::domain::Task;
use crate::relay::Relay;
use crate::store::{Db, MutationContext, NewTask, Page, PageRequest, StoreError, TaskPatch};
use crate::telemetry::traces;

/// Why a task operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The caller has no task with this id (another user's task is not theirs to see).
    #[error("no task {0}")]
    NotFound(Uuid),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The task operations, over one database; cheap to clone.
#[derive(Debug, Clone)]
pub struct TaskService {
    db: Db,
    relay: Relay,
}

impl TaskService {
    /// The service over `db`, waking `relay` after every committed mutation.
    pub fn new(db: Db, relay: Relay) -> Self {
        Self { db, relay }
    }

    /// Creates a task for `user`.
    pub async fn create(
        &self,
        user: &str,
        new: NewTask,
        ctx: &MutationContext,
    ) -> Result<Task, TaskError> {
        let (span, ctx) = outbox_write("create", ctx);
        let task = self
            .db
            .create_task(user, new, &ctx)
            .instrument(span)
            .await?;
        self.relay.notify();
        Ok(task)
    }

    /// A page of `user`'s tasks.
    pub async fn list(&self, user: &str, page: &PageRequest) -> Result<Page, TaskError> {
        Ok(self.db.list_tasks(user, page).await?)
    }

    /// One of `user`'s tasks.
    pub async fn get(&self, user: &str, id: Uuid) -> Result<Task, TaskError> {
        self.db
            .get_task(user, id)
            .await?
            .ok_or(TaskError::NotFound(id))
    }

    /// Applies `patch`; a patch that changes nothing records no mutation.
    pub async fn update(
        &self,
        user: &str,
        id: Uuid,
        patch: TaskPatch,
        ctx: &MutationContext,
    ) -> Result<Task, TaskError> {
        let (span, ctx) = outbox_write("update", ctx);
        let task = self
            .db
            .update_task(user, id, patch, &ctx)
            .instrument(span)
            .await?;
        self.relay.notify();
        task.ok_or(TaskError::NotFound(id))
    }

    /// Marks a task complete or incomplete (a no-op when it already is).
    pub async fn set_completed(
        &self,
        user: &str,
        id: Uuid,
        completed: bool,
        ctx: &MutationContext,
    ) -> Result<Task, TaskError> {
        let (span, ctx) = outbox_write("set_completed", ctx);
        let task = self
            .db
            .set_completed(user, id, completed, &ctx)
            .instrument(span)
            .await?;
        self.relay.notify();
        task.ok_or(TaskError::NotFound(id))
    }

    /// Deletes a task.
    pub async fn delete(
        &self,
        user: &str,
        id: Uuid,
        ctx: &MutationContext,
    ) -> Result<(), TaskError> {
        let (span, ctx) = outbox_write("delete", ctx);
        if self.db.delete_task(user, id, &ctx).instrument(span).await? {
            self.relay.notify();
            Ok(())
        } else {
            Err(TaskError::NotFound(id))
        }
    }

    /// Deletes all of `user`'s completed tasks; returns how many went.
    pub async fn clear_completed(
        &self,
        user: &str,
        ctx: &MutationContext,
    ) -> Result<u64, TaskError> {
        let (span, ctx) = outbox_write("clear_completed", ctx);
        let deleted = self.db.clear_completed(user, &ctx).instrument(span).await?;
        if deleted > 0 {
            self.relay.notify();
        }
        Ok(deleted)
    }
}

/// The span of one write (a task change and its outbox rows, one transaction) and the
/// context to store with it: with traces on, the span's own trace context, so that the
/// relay's spans continue from the write; else `ctx` as it is.
fn outbox_write<'a>(
    operation: &'static str,
    ctx: &'a MutationContext,
) -> (Span, Cow<'a, MutationContext>) {
    let span = traces::span(|| {
        tracing::info_span!(
            "outbox write",
            task.operation = operation,
            correlation_id = %ctx.correlation_id,
        )
    });
    match traces::traceparent_of(&span) {
        Some(own) => {
            let traced = MutationContext {
                traceparent: Some(own),
                ..ctx.clone()
            };
            (span, Cow::Owned(traced))
        }
        None => (span, Cow::Borrowed(ctx)),
    }
}
