//! The task service: the operations REST and MCP share. Each takes already validated input
//! (the surfaces parse their requests into [`NewTask`], [`TaskPatch`] and [`PageRequest`]),
//! applies the domain's rule for it ([`crate::domain::change`]) to the task the store
//! locked, has the store persist the resulting [`Mutation`] (the task row and its outbox
//! row commit in one transaction) and wakes the relay. Nothing here waits on mapping or
//! publishing.
//!
//! Failures are [`TaskError`]s; each surface translates them its own way (HTTP problem
//! documents, MCP tool errors).
//!
//! With traces on, each write runs in an `outbox write` span whose trace context is the
//! one stored with the outbox row (see [`crate::telemetry::traces`]).

use std::borrow::Cow;

use tracing::{Instrument, Span};
use uuid::Uuid;

use crate::domain::task::now;
use crate::domain::{
    Action, Mutation, MutationContext, NewTask, Page, PageRequest, Task, TaskPatch,
};
use crate::relay::Relay;
use crate::store::{Db, StoreError};
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
        let mutation = Mutation::created(user, new, &ctx);
        self.db
            .insert_task(&mutation, ctx.traceparent)
            .instrument(span)
            .await?;
        self.relay.notify();
        Ok(mutation.task)
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
        self.change("update", user, id, ctx, |before, ctx, at| {
            let changed = before.apply(patch, at)?;
            Some(Mutation::new(
                Action::Updated,
                changed.task,
                changed.changes,
                ctx,
                at,
            ))
        })
        .await
    }

    /// Marks a task complete or incomplete (a no-op when it already is).
    pub async fn set_completed(
        &self,
        user: &str,
        id: Uuid,
        completed: bool,
        ctx: &MutationContext,
    ) -> Result<Task, TaskError> {
        let action = if completed {
            Action::Completed
        } else {
            Action::Uncompleted
        };
        self.change("set_completed", user, id, ctx, |before, ctx, at| {
            let after = before.with_completed(completed, at)?;
            Some(Mutation::new(action, after, Vec::new(), ctx, at))
        })
        .await
    }

    /// Deletes a task.
    pub async fn delete(
        &self,
        user: &str,
        id: Uuid,
        ctx: &MutationContext,
    ) -> Result<(), TaskError> {
        self.change("delete", user, id, ctx, |before, ctx, at| {
            Some(Mutation::new(
                Action::Deleted,
                before.clone(),
                Vec::new(),
                ctx,
                at,
            ))
        })
        .await
        .map(drop)
    }

    /// Deletes all of `user`'s completed tasks; returns how many went.
    pub async fn clear_completed(
        &self,
        user: &str,
        ctx: &MutationContext,
    ) -> Result<u64, TaskError> {
        let (span, ctx) = outbox_write("clear_completed", ctx);
        let at = now();
        let deleted = self
            .db
            .delete_completed(user, ctx.traceparent, |task| {
                Mutation::new(Action::Deleted, task, Vec::new(), &ctx, at)
            })
            .instrument(span)
            .await?;
        if deleted > 0 {
            self.relay.notify();
        }
        Ok(deleted)
    }

    /// Runs `rule` on one of `user`'s tasks, locked by the store, and stores the mutation
    /// it makes (none: the task stays as it is). Returns the task as the change leaves it
    /// (for a deletion, as it was).
    async fn change(
        &self,
        operation: &'static str,
        user: &str,
        id: Uuid,
        ctx: &MutationContext,
        rule: impl FnOnce(&Task, &MutationContext, chrono::DateTime<chrono::Utc>) -> Option<Mutation>,
    ) -> Result<Task, TaskError> {
        let (span, ctx) = outbox_write(operation, ctx);
        let changed = self
            .db
            .change_task(user, id, ctx.traceparent, |before| {
                rule(before, &ctx, now())
            })
            .instrument(span)
            .await?;
        let (before, mutation) = changed.ok_or(TaskError::NotFound(id))?;
        Ok(match mutation {
            Some(mutation) => {
                self.relay.notify();
                mutation.task
            }
            None => before,
        })
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
