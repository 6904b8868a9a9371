//! Resolving a dead letter. Each resolution resolves exactly its own letter, lifts the
//! holds it had and queues its task again, so the events that waited behind it follow:
//!
//! - a **replay** of a **publish** letter (the publisher refused the envelope, or it kept
//!   failing) queues that envelope again as it was: same id, same body, its attempts
//!   counted afresh; its siblings are untouched, so nothing already published is sent
//!   again, whatever was pruned since. It is the task's earliest pending envelope on its
//!   topic, so it goes out first, then the ones held behind it, in mutation order;
//! - a **replay** of a **mapping** letter maps its mutation again with the live mappers:
//!   the mutation produced no envelope before (mapping is all or nothing), so every
//!   envelope is new, and again they come before the events held behind them;
//! - a **skip** gives the event up on purpose (recorded with who and why): nothing is
//!   published for it and the events behind it go on.

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use super::RelayContext;
use super::map::map_rows;
use crate::domain::task::now;
use crate::store::{DeadLetter, DeadLetterKind, MappedRow, Mapping, Requeued, StoreError};

/// What a successful replay did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Replayed {
    /// The letter resolved by this replay (only this one).
    pub resolved: Uuid,
    /// What kind of letter it was.
    #[schema(value_type = String, example = "publish")]
    pub kind: DeadLetterKind,
    /// The mutation the letter belongs to.
    pub mutation_id: Uuid,
    /// The envelopes queued for publishing (or, with `PUBLISHER=none`, stored as
    /// skipped), in publish order.
    pub envelopes: Vec<String>,
}

/// What a skip did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Skipped {
    /// The letter resolved by this skip.
    pub resolved: Uuid,
    #[schema(value_type = String, example = "publish")]
    pub kind: DeadLetterKind,
    pub mutation_id: Uuid,
    /// The envelope given up (publish letters).
    pub envelope_id: Option<String>,
}

/// What retrying one mapper's letters did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Retried {
    /// The letters replayed, oldest first.
    pub replayed: Vec<Replayed>,
    /// The letters whose replay failed (they stay open), with why.
    pub failed: Vec<RetriedLetter>,
}

/// A letter whose replay failed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetriedLetter {
    pub id: Uuid,
    pub reason: String,
}

/// Why a resolution did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No dead letter has this id.
    #[error("no dead letter {0}")]
    NotFound(Uuid),
    /// The letter was already resolved (perhaps by a concurrent request).
    #[error("dead letter {0} was already replayed or skipped")]
    AlreadyReplayed(Uuid),
    /// A publish letter cannot be replayed while publishing is off.
    #[error(
        "dead letter {0} is a refused publish; replaying it needs a publisher (PUBLISHER=dapr)"
    )]
    PublishingDisabled(Uuid),
    /// Mapping failed again; the letter stays open with the new reason.
    #[error("replay failed again ({mapper}): {reason}")]
    MappingFailed { mapper: String, reason: String },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Most letters one retry of a mapper resolves.
const RETRY_LIMIT: i64 = 10_000;

/// An open letter `id`.
async fn open_letter(ctx: &RelayContext, id: Uuid) -> Result<DeadLetter, ReplayError> {
    let letter = ctx
        .db
        .dead_letter(id)
        .await?
        .ok_or(ReplayError::NotFound(id))?;
    if letter.resolved_at.is_some() {
        return Err(ReplayError::AlreadyReplayed(id));
    }
    Ok(letter)
}

/// Replays dead letter `id` for operator `by` (see the module documentation).
pub(super) async fn replay(
    ctx: &Arc<RelayContext>,
    id: Uuid,
    by: &str,
) -> Result<Replayed, ReplayError> {
    let letter = open_letter(ctx, id).await?;
    replay_letter(ctx, letter, by).await
}

async fn replay_letter(
    ctx: &Arc<RelayContext>,
    letter: DeadLetter,
    by: &str,
) -> Result<Replayed, ReplayError> {
    let id = letter.id;
    let requeued = match letter.kind {
        DeadLetterKind::Publish => {
            if ctx.publisher.is_none() {
                return Err(ReplayError::PublishingDisabled(id));
            }
            ctx.db.requeue_envelope(&letter, by, now()).await?
        }
        DeadLetterKind::Mapping => {
            let row = ctx
                .db
                .outbox_row(letter.mutation_id)
                .await?
                .ok_or(ReplayError::NotFound(id))?;
            let mut mapped = map_rows(ctx, vec![row], false).await;
            let outcome = mapped.outcomes.pop().expect("one outcome per row");
            match outcome.result {
                Ok(envelopes) => {
                    let remapped = MappedRow {
                        row: &mapped.rows[0],
                        correlation_id: outcome.correlation_id,
                        mapping: Mapping::Mapped(envelopes),
                    };
                    ctx.db
                        .replay_mapping(&letter, &remapped, ctx.envelope_state(), by, now())
                        .await?
                }
                Err(e) => {
                    let reason = e.to_string();
                    ctx.db.replay_failed(id, &reason).await?;
                    return Err(ReplayError::MappingFailed {
                        mapper: e.mapper().unwrap_or("host").to_owned(),
                        reason,
                    });
                }
            }
        }
    };
    let envelopes = match requeued {
        Requeued::Done(envelopes) => envelopes,
        Requeued::AlreadyResolved => return Err(ReplayError::AlreadyReplayed(id)),
    };
    tracing::info!(dead_letter = %id, mutation_id = %letter.mutation_id, kind = ?letter.kind, by, "dead letter replayed");
    Ok(Replayed {
        resolved: id,
        kind: letter.kind,
        mutation_id: letter.mutation_id,
        envelopes,
    })
}

/// Skips dead letter `id` for operator `by`, saying `reason`.
pub(super) async fn skip(
    ctx: &RelayContext,
    id: Uuid,
    by: &str,
    reason: &str,
) -> Result<Skipped, ReplayError> {
    let letter = open_letter(ctx, id).await?;
    let requeue = ctx.publisher.is_some();
    if !ctx
        .db
        .skip_letter(&letter, by, reason, requeue, now())
        .await?
    {
        return Err(ReplayError::AlreadyReplayed(id));
    }
    tracing::warn!(dead_letter = %id, mutation_id = %letter.mutation_id, kind = ?letter.kind, by, reason,
        "dead letter skipped: its event is given up");
    Ok(Skipped {
        resolved: id,
        kind: letter.kind,
        mutation_id: letter.mutation_id,
        envelope_id: letter.envelope_id,
    })
}

/// Replays every open letter of `mapper`, oldest first, for operator `by`.
pub(super) async fn retry_mapper(
    ctx: &Arc<RelayContext>,
    mapper: &str,
    by: &str,
) -> Result<Retried, ReplayError> {
    let letters = ctx.db.open_letters_of(mapper, RETRY_LIMIT).await?;
    let mut retried = Retried::default();
    for letter in letters {
        let id = letter.id;
        match replay_letter(ctx, letter, by).await {
            Ok(replayed) => retried.replayed.push(replayed),
            // Resolved meanwhile by someone else: nothing to report.
            Err(ReplayError::AlreadyReplayed(_)) => {}
            Err(ReplayError::Store(e)) => return Err(ReplayError::Store(e)),
            Err(e) => retried.failed.push(RetriedLetter {
                id,
                reason: e.to_string(),
            }),
        }
    }
    tracing::info!(
        mapper,
        by,
        replayed = retried.replayed.len(),
        failed = retried.failed.len(),
        "open dead letters of a mapper retried"
    );
    Ok(retried)
}
