//! What the admin API reads and does: recent envelopes (one with its delivery
//! history), dead letters (with their mutations) and their replay.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::relay::{insert_envelope, queue_tasks, resolve_letter};
use super::{
    Db, DeadLetterKind, EnvelopeState, MAX_STORED_REASON, NewEnvelope, OutboxRow, StoreError,
    WritePool, with_pool, with_writer,
};
use crate::domain::text::storable;

/// An envelope as the admin API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct EnvelopeRecord {
    /// The CloudEvents id.
    pub id: String,
    pub mutation_id: Uuid,
    pub task_id: Uuid,
    /// The mapper that produced it.
    pub mapper: String,
    pub topic: String,
    pub event_type: String,
    #[sqlx(try_from = "String")]
    pub state: EnvelopeState,
    /// Publish attempts made.
    pub attempts: i32,
    /// The last failure, if the last attempt failed.
    pub last_error: Option<String>,
    /// The publisher's error code of the last failure (Dapr's `errorCode`).
    pub error_code: Option<String>,
    /// The publisher's status of the last attempt (for Dapr, the HTTP status).
    pub delivery_status: Option<i32>,
    /// When it was mapped.
    pub created_at: DateTime<Utc>,
    /// When publishing first failed, if it did.
    pub first_failed_at: Option<DateTime<Utc>>,
    /// When it was published, skipped or parked.
    pub finished_at: Option<DateTime<Utc>>,
    /// The CloudEvents JSON document (shown parsed, as `envelope`).
    #[serde(skip)]
    pub body: String,
}

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

/// Which envelopes to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct EnvelopeFilter {
    pub state: Option<EnvelopeState>,
    pub event_type: Option<String>,
    pub topic: Option<String>,
    pub task_id: Option<Uuid>,
    pub limit: i64,
}

/// What a replay stored: the envelope ids queued again, or nothing because the letter
/// was resolved meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeued {
    Done(Vec<String>),
    AlreadyResolved,
}

/// The relay's backlog, for the gauges.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    pub outbox_pending: i64,
    pub envelopes_pending: i64,
    /// Age of the oldest pending mutation or envelope (zero when none waits).
    pub lag: std::time::Duration,
    pub dead_letters_open: i64,
}

const LETTER_COLUMNS: &str =
    "id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at, resolved_at";

const ENVELOPE_COLUMNS: &str = "id, mutation_id, task_id, mapper, topic, event_type, state, \
     attempts, last_error, error_code, delivery_status, created_at, first_failed_at, finished_at, body";

/// A dead letter and the JSON of its mutation, if the outbox still holds it.
#[derive(sqlx::FromRow)]
struct LetterWithMutation {
    #[sqlx(flatten)]
    letter: DeadLetter,
    mutation: Option<String>,
}

impl Db {
    /// The most recent envelopes matching `filter`, newest first.
    pub async fn recent_envelopes(
        &self,
        filter: &EnvelopeFilter,
    ) -> Result<Vec<EnvelopeRecord>, StoreError> {
        let state = filter.state.map(EnvelopeState::as_str);
        with_pool!(self, |pool| async {
            let rows = sqlx::query_as(
                "SELECT id, mutation_id, task_id, mapper, topic, event_type, state, attempts, last_error, \
                 error_code, delivery_status, created_at, first_failed_at, finished_at, body FROM envelopes \
                 WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR event_type = $2) \
                 AND ($3 IS NULL OR topic = $3) AND ($4 IS NULL OR task_id = $4) \
                 ORDER BY seq DESC LIMIT $5",
            )
            .bind(state)
            .bind(filter.event_type.as_deref())
            .bind(filter.topic.as_deref())
            .bind(filter.task_id)
            .bind(filter.limit)
            .fetch_all(pool)
            .await?;
            Ok(rows)
        })
    }

    /// Envelope `id` (its CloudEvents id), whatever its state.
    pub async fn envelope(&self, id: &str) -> Result<Option<EnvelopeRecord>, StoreError> {
        with_pool!(self, |pool| async {
            let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ENVELOPE_COLUMNS} FROM envelopes WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(row)
        })
    }

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

    /// Deletes up to `limit` each of finished envelopes, mapped mutations without
    /// envelopes, and resolved dead letters, older than `before`; returns how many rows
    /// went.
    pub async fn prune_some(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, StoreError> {
        let statements = [
            "DELETE FROM envelopes WHERE seq IN (SELECT seq FROM envelopes \
             WHERE state IN ('published', 'skipped') AND finished_at < $1 LIMIT $2)",
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE state = 'mapped' \
             AND processed_at < $1 AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.mutation_id = outbox.id) \
             LIMIT $2)",
            "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE resolved_at < $1 LIMIT $2)",
        ];
        let mut total = 0;
        for sql in statements {
            total += with_writer!(self, |pool| async {
                let mut tx = pool.begin_write().await?;
                let n = sqlx::query(sql)
                    .bind(before)
                    .bind(limit)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok::<_, StoreError>(n)
            })?;
        }
        Ok(total)
    }

    /// The relay's backlog at `now`.
    pub async fn backlog(&self, now: DateTime<Utc>) -> Result<Backlog, StoreError> {
        let (
            outbox_pending,
            envelopes_pending,
            oldest_mutation,
            oldest_envelope,
            dead_letters_open,
        ): (i64, i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>, i64) =
            with_pool!(self, |pool| async {
                let row = sqlx::query_as(
                    "SELECT (SELECT count(*) FROM outbox WHERE state = 'pending'), \
                 (SELECT count(*) FROM envelopes WHERE state = 'pending'), \
                 (SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1), \
                 (SELECT created_at FROM envelopes WHERE state = 'pending' ORDER BY seq LIMIT 1), \
                 (SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL)",
                )
                .fetch_one(pool)
                .await?;
                Ok::<_, StoreError>(row)
            })?;
        let oldest = [oldest_mutation, oldest_envelope]
            .into_iter()
            .flatten()
            .min();
        Ok(Backlog {
            outbox_pending,
            envelopes_pending,
            lag: oldest
                .and_then(|t| (now - t).to_std().ok())
                .unwrap_or_default(),
            dead_letters_open,
        })
    }
}
