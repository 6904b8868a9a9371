//! Replaying a dead letter. Each replay resolves exactly its own letter:
//!
//! - a **publish** letter (Dapr refused the envelope, or it kept failing) queues that
//!   envelope again as it was: same id, same body; its siblings are untouched, so
//!   nothing already published is sent again, whatever was pruned since;
//! - a **mapping** letter maps its mutation again with the live mappers: the mutation
//!   produced no envelope before (mapping is all or nothing), so every envelope is new.

use serde::Serialize;
use uuid::Uuid;

use super::RelayContext;
use super::map::map_rows;
use crate::domain::task::now;
use crate::store::{DeadLetterKind, Requeued, StoreError};

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
    /// The envelopes queued for publishing (or, with `DAPR_ENABLED=false`, stored as
    /// skipped), in publish order.
    pub envelopes: Vec<String>,
}

/// Why a replay did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No dead letter has this id.
    #[error("no dead letter {0}")]
    NotFound(Uuid),
    /// The letter was already replayed (perhaps by a concurrent request).
    #[error("dead letter {0} was already replayed")]
    AlreadyReplayed(Uuid),
    /// A publish letter cannot be replayed while publishing is off.
    #[error("dead letter {0} is a refused publish; replaying it needs DAPR_ENABLED=true")]
    PublishingDisabled(Uuid),
    /// Mapping failed again; the letter stays open with the new reason.
    #[error("replay failed again ({mapper}): {reason}")]
    MappingFailed { mapper: String, reason: String },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replays dead letter `id` (see the module documentation).
pub(super) async fn replay(ctx: &RelayContext, id: Uuid) -> Result<Replayed, ReplayError> {
    let letter = ctx
        .db
        .dead_letter(id)
        .await?
        .ok_or(ReplayError::NotFound(id))?;
    if letter.resolved_at.is_some() {
        return Err(ReplayError::AlreadyReplayed(id));
    }
    let requeued = match letter.kind {
        DeadLetterKind::Publish => {
            if ctx.publisher.is_none() {
                return Err(ReplayError::PublishingDisabled(id));
            }
            ctx.db.requeue_envelope(&letter, now()).await?
        }
        DeadLetterKind::Mapping => {
            let row = ctx
                .db
                .outbox_row(letter.mutation_id)
                .await?
                .ok_or(ReplayError::NotFound(id))?;
            let (rows, mut outcomes) = map_rows(ctx, vec![row]).await;
            let outcome = outcomes.pop().expect("one outcome per row");
            match outcome.result {
                Ok(envelopes) => {
                    ctx.db
                        .replay_mapping(
                            &letter,
                            &rows[0],
                            &outcome.correlation_id,
                            &envelopes,
                            ctx.envelope_state(),
                            now(),
                        )
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
    tracing::info!(dead_letter = %id, mutation_id = %letter.mutation_id, kind = ?letter.kind, "dead letter replayed");
    Ok(Replayed {
        resolved: id,
        kind: letter.kind,
        mutation_id: letter.mutation_id,
        envelopes,
    })
}
