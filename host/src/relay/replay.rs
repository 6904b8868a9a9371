//! Replaying a dead letter: its mutation mapped again with the live mappers, its
//! envelopes stored (ids already published are kept) and the letter resolved.

use serde::Serialize;
use uuid::Uuid;

use super::RelayContext;
use super::map::{MapOutcome, map_row};
use crate::domain::task::now;
use crate::store::StoreError;

/// What a successful replay stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Replayed {
    /// The mutation mapped again.
    pub mutation_id: Uuid,
    /// The ids of its envelopes, in publish order.
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
    /// Mapping failed again; the letter stays open with the new reason.
    #[error("replay failed again ({mapper}): {reason}")]
    MappingFailed { mapper: String, reason: String },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replays dead letter `id` (see the module documentation).
pub(super) async fn replay(ctx: &RelayContext, id: Uuid) -> Result<Replayed, ReplayError> {
    let (letter, row) = ctx
        .db
        .dead_letter(id)
        .await?
        .ok_or(ReplayError::NotFound(id))?;
    if letter.resolved_at.is_some() {
        return Err(ReplayError::AlreadyReplayed(id));
    }
    match map_row(ctx.mappers.current(), &row, &ctx.source).await {
        MapOutcome::Mapped {
            correlation_id,
            envelopes,
        } => {
            let replayed = ctx
                .db
                .replay_succeeded(
                    &letter,
                    &row,
                    &correlation_id,
                    &envelopes,
                    ctx.new_envelope_state(),
                    now(),
                )
                .await?;
            if !replayed {
                return Err(ReplayError::AlreadyReplayed(id));
            }
            tracing::info!(dead_letter = %id, mutation_id = %row.id, "dead letter replayed");
            Ok(Replayed {
                mutation_id: row.id,
                envelopes: envelopes.into_iter().map(|e| e.id).collect(),
            })
        }
        MapOutcome::Failed { mapper, reason } => {
            ctx.db.replay_failed(id, &reason).await?;
            Err(ReplayError::MappingFailed {
                mapper: mapper.unwrap_or_else(|| "host".to_owned()),
                reason,
            })
        }
    }
}
