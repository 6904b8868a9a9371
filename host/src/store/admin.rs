//! What the admin API reads and does: recent envelopes, dead letters and their
//! replay, and pruning of finished rows.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::relay::write_mapped;
use super::{
    Db, DeadLetter, EnvelopeRecord, EnvelopeState, NewEnvelope, OutboxRow, StoreError, WritePool,
    with_pool,
};

impl Db {
    /// Deletes finished envelopes, mapped mutations and resolved dead letters older
    /// than `before`; returns how many rows went.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let n = with_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let a = sqlx::query(
                "DELETE FROM envelopes WHERE state IN ('published', 'skipped') AND finished_at < $1",
            )
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let b = sqlx::query(
                "DELETE FROM outbox WHERE state = 'mapped' AND processed_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.mutation_id = outbox.id)",
            )
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let c = sqlx::query("DELETE FROM dead_letters WHERE resolved_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok::<_, sqlx::Error>(a + b + c)
        })?;
        Ok(n)
    }

    /// The most recent envelopes, newest first, optionally in one state.
    pub async fn recent_envelopes(
        &self,
        state: Option<EnvelopeState>,
        limit: i64,
    ) -> Result<Vec<EnvelopeRecord>, StoreError> {
        let state = state.map(EnvelopeState::as_str);
        let rows = with_pool!(self, |pool| async {
            sqlx::query_as(
                "SELECT id, mutation_id, task_id, mapper, topic, event_type, state, attempts, last_error, \
                 dapr_status, created_at, finished_at, body FROM envelopes \
                 WHERE ($1 IS NULL OR state = $1) ORDER BY seq DESC LIMIT $2",
            )
            .bind(state)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// Unresolved dead letters, oldest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = with_pool!(self, |pool| async {
            sqlx::query_as(
                "SELECT id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at, resolved_at \
                 FROM dead_letters WHERE resolved_at IS NULL ORDER BY created_at, id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// One dead letter and the outbox row of its mutation.
    pub async fn dead_letter(
        &self,
        id: Uuid,
    ) -> Result<Option<(DeadLetter, OutboxRow)>, StoreError> {
        let letter: Option<DeadLetter> = with_pool!(self, |pool| async {
            sqlx::query_as(
                "SELECT id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at, resolved_at \
                 FROM dead_letters WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        let Some(letter) = letter else {
            return Ok(None);
        };
        let row: Option<OutboxRow> = with_pool!(self, |pool| async {
            sqlx::query_as(
                "SELECT seq, id, task_id, user_id, action, mutation, traceparent, created_at \
                 FROM outbox WHERE id = $1",
            )
            .bind(letter.mutation_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(|row| (letter, row)))
    }

    /// Records a replay that failed again.
    pub async fn replay_failed(&self, id: Uuid, reason: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| async {
            sqlx::query(
                "UPDATE dead_letters SET attempts = attempts + 1, reason = $1 WHERE id = $2",
            )
            .bind(reason)
            .bind(id)
            .execute(pool)
            .await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Resolves a dead letter with freshly mapped envelopes, in one transaction:
    /// its parked envelopes are replaced, envelopes already published keep their
    /// row (same ids), the mutation is marked mapped. Returns false when the letter
    /// was already resolved (by a concurrent replay).
    pub async fn replay_succeeded(
        &self,
        letter: &DeadLetter,
        row: &OutboxRow,
        correlation_id: &str,
        envelopes: &[NewEnvelope],
        state: EnvelopeState,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let resolved = sqlx::query(
                "UPDATE dead_letters SET resolved_at = $1, attempts = attempts + 1 \
                 WHERE id = $2 AND resolved_at IS NULL",
            )
            .bind(now)
            .bind(letter.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if resolved != 1 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM envelopes WHERE mutation_id = $1 AND state = 'dead'")
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
            write_mapped!(tx, row, correlation_id, envelopes, state, now, false);
            tx.commit().await?;
            Ok(true)
        })
    }
}
