//! Dead letters: what could not be mapped or published, read by the operator, and
//! resolved by a replay (the envelope queued again, or the mutation mapped again).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::relay::{insert_envelope, queue_tasks, resolve_letter};
use super::{
    Db, DeadLetterKind, EnvelopeState, MAX_STORED_REASON, NewEnvelope, OutboxRow, StoreError,
    WritePool, with_pool, with_writer,
};
use crate::domain::text::storable;

/// A mutation that could not be mapped, or an envelope that could not be published.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: Uuid,
    pub mutation_id: Uuid,
    #[sqlx(try_from = "String")]
    pub kind: DeadLetterKind,
    /// The mapper at fault (mapping), or that produced the envelope (publish).
    pub mapper: Option<String>,
    /// The envelope that could not be published (publish letters).
    pub envelope_id: Option<String>,
    pub reason: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    /// When a replay resolved it.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// What a replay stored: the envelope ids queued again, or nothing because the letter
/// was resolved meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeued {
    Done(Vec<String>),
    AlreadyResolved,
}

const LETTER_COLUMNS: &str =
    "id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at, resolved_at";

/// A dead letter and the JSON of its mutation, if the outbox still holds it.
#[derive(sqlx::FromRow)]
struct LetterWithMutation {
    #[sqlx(flatten)]
    letter: DeadLetter,
    mutation: Option<String>,
}

impl Db {
    /// Unresolved dead letters, oldest first, each with its mutation's JSON (the
    /// outbox row's), when the outbox still holds it.
    pub async fn dead_letters_with_mutations(
        &self,
        limit: i64,
    ) -> Result<Vec<(DeadLetter, Option<String>)>, StoreError> {
        let rows: Vec<LetterWithMutation> = with_pool!(self, |pool| async {
            sqlx::query_as(
                "SELECT d.id, d.mutation_id, d.kind, d.mapper, d.envelope_id, d.reason, \
                 d.attempts, d.created_at, d.resolved_at, o.mutation FROM dead_letters d \
                 LEFT JOIN outbox o ON o.id = d.mutation_id WHERE d.resolved_at IS NULL \
                 ORDER BY d.created_at, d.id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|r| (r.letter, r.mutation)).collect())
    }

    /// Unresolved dead letters, oldest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        with_pool!(self, |pool| async {
            let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {LETTER_COLUMNS} FROM dead_letters WHERE resolved_at IS NULL \
                 ORDER BY created_at, id LIMIT $1"
            )))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows)
        })
    }

    /// One dead letter, resolved or not.
    pub async fn dead_letter(&self, id: Uuid) -> Result<Option<DeadLetter>, StoreError> {
        with_pool!(self, |pool| async {
            let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {LETTER_COLUMNS} FROM dead_letters WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(row)
        })
    }

    /// Records a replay that failed again.
    pub async fn replay_failed(&self, id: Uuid, reason: &str) -> Result<(), StoreError> {
        let reason = storable(reason, MAX_STORED_REASON);
        with_writer!(self, |pool| async {
            sqlx::query(
                "UPDATE dead_letters SET attempts = attempts + 1, reason = $1 WHERE id = $2",
            )
            .bind(&reason)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Resolves publish letter `letter` by queueing its envelope again, as it was.
    pub async fn requeue_envelope(
        &self,
        letter: &DeadLetter,
        now: DateTime<Utc>,
    ) -> Result<Requeued, StoreError> {
        let envelope = letter.envelope_id.clone().unwrap_or_default();
        with_writer!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            if !resolve_letter(&mut *tx, letter.id, now).await? {
                return Ok(Requeued::AlreadyResolved);
            }
            let task: Option<(Uuid,)> = sqlx::query_as(
                "UPDATE envelopes SET state = 'pending', finished_at = NULL, first_failed_at = NULL \
                 WHERE id = $1 AND state = 'dead' RETURNING task_id",
            )
            .bind(&envelope)
            .fetch_optional(&mut *tx)
            .await?;
            let requeued = match task {
                Some((task,)) => {
                    queue_tasks(&mut *tx, &[task], now).await?;
                    vec![envelope]
                }
                // Published since (a concurrent replay of the same envelope): nothing to do.
                None => Vec::new(),
            };
            tx.commit().await?;
            Ok(Requeued::Done(requeued))
        })
    }

    /// Resolves mapping letter `letter` with freshly mapped `envelopes` of `row`.
    pub async fn replay_mapping(
        &self,
        letter: &DeadLetter,
        row: &OutboxRow,
        correlation_id: &str,
        envelopes: &[NewEnvelope],
        state: EnvelopeState,
        now: DateTime<Utc>,
    ) -> Result<Requeued, StoreError> {
        with_writer!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            if !resolve_letter(&mut *tx, letter.id, now).await? {
                return Ok(Requeued::AlreadyResolved);
            }
            sqlx::query(
                "UPDATE outbox SET state = 'mapped', processed_at = $1 WHERE seq = $2 AND state = 'dead'",
            )
            .bind(now)
            .bind(row.seq)
            .execute(&mut *tx)
            .await?;
            for e in envelopes {
                insert_envelope(&mut *tx, row, correlation_id, e, state, now).await?;
            }
            if state == EnvelopeState::Pending && !envelopes.is_empty() {
                queue_tasks(&mut *tx, &[row.task_id], now).await?;
            }
            tx.commit().await?;
            Ok(Requeued::Done(
                envelopes.iter().map(|e| e.id.to_string()).collect(),
            ))
        })
    }
}
