//! Dead letters: what could not be mapped or published, read by the operator, and
//! resolved by a replay (the envelope queued again, or the mutation mapped again) or a
//! skip (given up, on purpose). Resolving a letter lifts the holds it had and queues its
//! task again, so the events that waited behind it go out, in order.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::relay::{Resolution, insert_envelope, queue_tasks, resolve_letter};
use super::{
    Db, DeadLetterKind, EnvelopeState, MAX_STORED_REASON, MappedRow, Mapping, NewEnvelope,
    StoreError, WritePool, with_pool, with_writer,
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
    /// When a replay or a skip resolved it.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The task whose change it is.
    pub task_id: Option<Uuid>,
    /// The topic of the envelope (publish letters).
    pub topic: Option<String>,
    /// The CloudEvents type of the envelope (publish letters).
    pub event_type: Option<String>,
    /// How it was resolved: `replayed` or `skipped`.
    pub resolution: Option<String>,
    /// Who resolved it (the admin token's name).
    pub resolved_by: Option<String>,
    /// Why, when the operator said (a skip's reason).
    pub resolution_note: Option<String>,
    /// The letter this one replaced: its replay was refused again.
    pub replaces: Option<Uuid>,
}

/// What a replay stored: the envelope ids queued again, or nothing because the letter
/// was resolved meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeued {
    Done(Vec<String>),
    AlreadyResolved,
}

/// The columns of a [`DeadLetter`], each prefixed with `d.`.
macro_rules! letter_columns {
    () => {
        "d.id, d.mutation_id, d.kind, d.mapper, d.envelope_id, d.reason, d.attempts, d.created_at, \
         d.resolved_at, d.task_id, d.topic, d.event_type, d.resolution, d.resolved_by, \
         d.resolution_note, d.replaces"
    };
}
pub(super) use letter_columns;

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
            sqlx::query_as(concat!(
                "SELECT ",
                letter_columns!(),
                ", o.mutation FROM dead_letters d \
                 LEFT JOIN outbox o ON o.id = d.mutation_id WHERE d.resolved_at IS NULL \
                 ORDER BY d.created_at, d.id LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|r| (r.letter, r.mutation)).collect())
    }

    /// Unresolved dead letters, oldest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        with_pool!(self, |pool| async {
            let rows = sqlx::query_as(concat!(
                "SELECT ",
                letter_columns!(),
                " FROM dead_letters d WHERE d.resolved_at IS NULL ORDER BY d.created_at, d.id LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows)
        })
    }

    /// The unresolved dead letters of `mapper` (the mapper at fault, or that produced the
    /// envelope), oldest first.
    pub async fn open_letters_of(
        &self,
        mapper: &str,
        limit: i64,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        with_pool!(self, |pool| async {
            let rows = sqlx::query_as(concat!(
                "SELECT ",
                letter_columns!(),
                " FROM dead_letters d WHERE d.resolved_at IS NULL AND d.mapper = $1 \
                 ORDER BY d.created_at, d.id LIMIT $2"
            ))
            .bind(mapper)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows)
        })
    }

    /// The dead letters of envelope `id` (a publish parked, replayed, parked again...),
    /// oldest first.
    pub async fn letters_of_envelope(&self, id: &str) -> Result<Vec<DeadLetter>, StoreError> {
        with_pool!(self, |pool| async {
            let rows = sqlx::query_as(concat!(
                "SELECT ",
                letter_columns!(),
                " FROM dead_letters d WHERE d.envelope_id = $1 ORDER BY d.created_at, d.id"
            ))
            .bind(id)
            .fetch_all(pool)
            .await?;
            Ok(rows)
        })
    }

    /// One dead letter, resolved or not.
    pub async fn dead_letter(&self, id: Uuid) -> Result<Option<DeadLetter>, StoreError> {
        with_pool!(self, |pool| async {
            let row = sqlx::query_as(concat!(
                "SELECT ",
                letter_columns!(),
                " FROM dead_letters d WHERE d.id = $1"
            ))
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

    /// Resolves publish letter `letter` by queueing its envelope again, as it was (same
    /// id, same body), its attempts counted afresh (the lifetime count stays); the task is
    /// queued again (with `requeue`), its held events behind the envelope.
    pub async fn requeue_envelope(
        &self,
        letter: &DeadLetter,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Requeued, StoreError> {
        let envelope = letter.envelope_id.clone().unwrap_or_default();
        let resolution = Resolution {
            how: "replayed",
            by,
            note: None,
        };
        with_writer!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            if !resolve_letter(&mut *tx, letter.id, resolution, now).await? {
                return Ok(Requeued::AlreadyResolved);
            }
            let task: Option<(Uuid,)> = sqlx::query_as(
                "UPDATE envelopes SET state = 'pending', finished_at = NULL, first_failed_at = NULL, \
                 attempts = 0, replayed_letter = $2 WHERE id = $1 AND state = 'dead' RETURNING task_id",
            )
            .bind(&envelope)
            .bind(letter.id)
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

    /// Resolves mapping letter `letter` with the envelopes its mutation was mapped to
    /// again (`remapped`); with publishing on (`state` pending) the task is queued again,
    /// its held events behind the new envelopes.
    pub async fn replay_mapping(
        &self,
        letter: &DeadLetter,
        remapped: &MappedRow<'_>,
        state: EnvelopeState,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Requeued, StoreError> {
        let (row, correlation_id) = (remapped.row, remapped.correlation_id.as_str());
        let envelopes: &[NewEnvelope] = match &remapped.mapping {
            Mapping::Mapped(envelopes) => envelopes,
            Mapping::Failed { .. } => &[],
        };
        let resolution = Resolution {
            how: "replayed",
            by,
            note: None,
        };
        with_writer!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            if !resolve_letter(&mut *tx, letter.id, resolution, now).await? {
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
            if state == EnvelopeState::Pending {
                queue_tasks(&mut *tx, &[row.task_id], now).await?;
            }
            tx.commit().await?;
            Ok(Requeued::Done(
                envelopes.iter().map(|e| e.id.to_string()).collect(),
            ))
        })
    }

    /// Resolves `letter` by skipping it: its event is never published (a publish letter's
    /// envelope stays dead, a mapping letter's mutation unmapped), its holds lift and, with
    /// `requeue` (publishing on), the task's events that waited behind it go on. `by` and
    /// `reason` are recorded.
    pub async fn skip_letter(
        &self,
        letter: &DeadLetter,
        by: &str,
        reason: &str,
        requeue: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let note = storable(reason, MAX_STORED_REASON);
        let resolution = Resolution {
            how: "skipped",
            by,
            note: Some(&note),
        };
        with_writer!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            if !resolve_letter(&mut *tx, letter.id, resolution, now).await? {
                return Ok(false);
            }
            if requeue && let Some(task) = letter.task_id {
                queue_tasks(&mut *tx, &[task], now).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}
