//! Relay state: claiming outbox rows and envelopes with leases (PostgreSQL `FOR
//! UPDATE SKIP LOCKED`, so replicas share the work), recording outcomes, dead
//! letters and pruning.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Db, OutboxRow, StoreError, WritePool, on_pool};

/// The state of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeState {
    /// Waiting to be published (or to be retried).
    Pending,
    /// Dapr answered 2xx.
    Published,
    /// Built while Dapr was disabled; never sent.
    Skipped,
    /// Refused by Dapr (4xx); parked as a dead letter.
    Dead,
}

impl EnvelopeState {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvelopeState::Pending => "pending",
            EnvelopeState::Published => "published",
            EnvelopeState::Skipped => "skipped",
            EnvelopeState::Dead => "dead",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Published, Self::Skipped, Self::Dead]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// An envelope to store, built from one mapped event.
#[derive(Debug, Clone)]
pub struct NewEnvelope {
    pub id: String,
    pub event_index: i32,
    pub mapper: String,
    pub topic: String,
    pub event_type: String,
    pub partition_key: String,
    /// The CloudEvents JSON document.
    pub body: String,
    /// The envelope's W3C `traceparent`, also sent as the HTTP header so the
    /// sidecar's span joins the trace.
    pub traceparent: Option<String>,
}

/// An envelope claimed for publishing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedEnvelope {
    pub seq: i64,
    pub id: String,
    pub task_id: Uuid,
    pub user_id: String,
    pub mapper: String,
    pub topic: String,
    pub event_type: String,
    pub partition_key: String,
    pub body: String,
    pub traceparent: Option<String>,
    pub correlation_id: String,
    pub attempts: i32,
    pub mutation_id: Uuid,
}

/// An envelope as the admin API lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EnvelopeRecord {
    pub id: String,
    pub mutation_id: Uuid,
    pub task_id: Uuid,
    pub mapper: String,
    pub topic: String,
    pub event_type: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub dapr_status: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub body: String,
}

/// A mutation that could not be mapped, or an event Dapr refused.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: Uuid,
    pub mutation_id: Uuid,
    /// `mapping` or `publish`.
    pub kind: String,
    pub mapper: Option<String>,
    pub envelope_id: Option<String>,
    pub reason: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl Db {
    /// Leases up to `limit` pending mutations to relay `me` until `until`.
    pub async fn claim_mutations(
        &self,
        me: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut rows: Vec<OutboxRow> = on_pool!(self, |pool| {
            sqlx::query_as(pool.claim_mutations_sql())
                .bind(me)
                .bind(until)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
    }

    /// Stores the envelopes of a mapped mutation (existing ids are kept as they
    /// are, so a re-run never duplicates) and marks the mutation mapped.
    pub async fn record_mapped(
        &self,
        row: &OutboxRow,
        correlation_id: &str,
        envelopes: &[NewEnvelope],
        state: EnvelopeState,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let finished = (state != EnvelopeState::Pending).then_some(now);
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            for e in envelopes {
                sqlx::query(
                    "INSERT INTO envelopes (id, mutation_id, outbox_seq, event_index, task_id, user_id, mapper, \
                     topic, event_type, partition_key, body, traceparent, correlation_id, state, attempts, \
                     next_attempt_at, created_at, finished_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0, $15, $15, $16) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&e.id)
                .bind(row.id)
                .bind(row.seq)
                .bind(e.event_index)
                .bind(row.task_id)
                .bind(&row.user_id)
                .bind(&e.mapper)
                .bind(&e.topic)
                .bind(&e.event_type)
                .bind(&e.partition_key)
                .bind(&e.body)
                .bind(&e.traceparent)
                .bind(correlation_id)
                .bind(state.as_str())
                .bind(now)
                .bind(finished)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE outbox SET state = 'mapped', processed_at = $1, locked_by = NULL, locked_until = NULL \
                 WHERE seq = $2",
            )
            .bind(now)
            .bind(row.seq)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Parks a mutation whose mapping failed.
    pub async fn record_mapping_failure(
        &self,
        row: &OutboxRow,
        mapper: Option<&str>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::new_v4();
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO dead_letters (id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at) \
                 VALUES ($1, $2, 'mapping', $3, NULL, $4, 1, $5)",
            )
            .bind(id)
            .bind(row.id)
            .bind(mapper)
            .bind(reason)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE outbox SET state = 'dead', processed_at = $1, locked_by = NULL, locked_until = NULL \
                 WHERE seq = $2",
            )
            .bind(now)
            .bind(row.seq)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(id)
    }

    /// Leases up to `limit` publishable envelopes: for each task only the oldest
    /// unpublished one, and only once every earlier mutation of that task is mapped.
    pub async fn claim_envelopes(
        &self,
        me: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedEnvelope>, StoreError> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as(pool.claim_envelopes_sql())
                .bind(me)
                .bind(until)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Records Dapr's acceptance.
    pub async fn mark_published(
        &self,
        seq: i64,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE envelopes SET state = 'published', attempts = attempts + 1, dapr_status = $1, \
                 finished_at = $2, last_error = NULL, locked_by = NULL, locked_until = NULL WHERE seq = $3",
            )
            .bind(i32::from(status))
            .bind(now)
            .bind(seq)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records a transient failure; the envelope stays pending until `retry_at`.
    pub async fn mark_retry(
        &self,
        seq: i64,
        status: Option<u16>,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE envelopes SET attempts = attempts + 1, dapr_status = $1, last_error = $2, \
                 next_attempt_at = $3, locked_by = NULL, locked_until = NULL WHERE seq = $4",
            )
            .bind(status.map(i32::from))
            .bind(error)
            .bind(retry_at)
            .bind(seq)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Parks an envelope Dapr refused, with a dead letter naming the reason.
    pub async fn mark_refused(
        &self,
        envelope: &ClaimedEnvelope,
        status: u16,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE envelopes SET state = 'dead', attempts = attempts + 1, dapr_status = $1, last_error = $2, \
                 finished_at = $3, locked_by = NULL, locked_until = NULL WHERE seq = $4",
            )
            .bind(i32::from(status))
            .bind(reason)
            .bind(now)
            .bind(envelope.seq)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO dead_letters (id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at) \
                 VALUES ($1, $2, 'publish', $3, $4, $5, $6, $7)",
            )
            .bind(Uuid::new_v4())
            .bind(envelope.mutation_id)
            .bind(&envelope.mapper)
            .bind(&envelope.id)
            .bind(reason)
            .bind(envelope.attempts + 1)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes finished envelopes, mapped mutations and resolved dead letters older
    /// than `before`; returns how many rows went.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let n = on_pool!(self, |pool| {
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
            a + b + c
        });
        Ok(n)
    }

    /// The most recent envelopes, newest first, optionally in one state.
    pub async fn recent_envelopes(
        &self,
        state: Option<EnvelopeState>,
        limit: i64,
    ) -> Result<Vec<EnvelopeRecord>, StoreError> {
        let state = state.map(EnvelopeState::as_str);
        let rows = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, mutation_id, task_id, mapper, topic, event_type, state, attempts, last_error, \
                 dapr_status, created_at, finished_at, body FROM envelopes \
                 WHERE ($1 IS NULL OR state = $1) ORDER BY seq DESC LIMIT $2",
            )
            .bind(state)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Unresolved dead letters, oldest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at, resolved_at \
                 FROM dead_letters WHERE resolved_at IS NULL ORDER BY created_at, id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// One dead letter and the outbox row of its mutation.
    pub async fn dead_letter(
        &self,
        id: Uuid,
    ) -> Result<Option<(DeadLetter, OutboxRow)>, StoreError> {
        let letter: Option<DeadLetter> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at, resolved_at \
                 FROM dead_letters WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        let Some(letter) = letter else {
            return Ok(None);
        };
        let row: Option<OutboxRow> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, id, task_id, user_id, action, mutation, traceparent, created_at \
                 FROM outbox WHERE id = $1",
            )
            .bind(letter.mutation_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|row| (letter, row)))
    }

    /// Records a replay that failed again.
    pub async fn replay_failed(&self, id: Uuid, reason: &str) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE dead_letters SET attempts = attempts + 1, reason = $1 WHERE id = $2",
            )
            .bind(reason)
            .bind(id)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Replaces a dead letter's parked envelopes with freshly mapped ones and
    /// resolves it. Envelopes already published keep their row (same ids).
    pub async fn replay_succeeded(
        &self,
        letter: &DeadLetter,
        row: &OutboxRow,
        correlation_id: &str,
        envelopes: &[NewEnvelope],
        state: EnvelopeState,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM envelopes WHERE mutation_id = $1 AND state = 'dead'")
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE dead_letters SET resolved_at = $1, attempts = attempts + 1 WHERE id = $2",
            )
            .bind(now)
            .bind(letter.id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        self.record_mapped(row, correlation_id, envelopes, state, now)
            .await
    }
}
