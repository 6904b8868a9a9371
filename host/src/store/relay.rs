//! Relay state: claiming outbox rows and envelopes with leases (PostgreSQL `FOR
//! UPDATE SKIP LOCKED`, so replicas share the work) and recording outcomes. An
//! outcome is only recorded on a row still pending, so a relay whose lease ran
//! out never overwrites what another relay recorded.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Db, OutboxRow, StoreError, WritePool, with_pool};

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

/// Inside an open transaction `$tx`: stores the envelopes of outbox row `$row`
/// (ids already stored are kept as they are, so a re-run never duplicates) and
/// marks the row mapped. Evaluates to the number of outbox rows updated.
macro_rules! write_mapped {
    ($tx:ident, $row:expr, $correlation_id:expr, $envelopes:expr, $state:expr, $now:expr, $only_pending:expr) => {{
        let finished = ($state != EnvelopeState::Pending).then_some($now);
        for e in $envelopes {
            sqlx::query(
                "INSERT INTO envelopes (id, mutation_id, outbox_seq, event_index, task_id, user_id, mapper, \
                 topic, event_type, partition_key, body, traceparent, correlation_id, state, attempts, \
                 next_attempt_at, created_at, finished_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0, $15, $15, $16) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&e.id)
            .bind($row.id)
            .bind($row.seq)
            .bind(e.event_index)
            .bind($row.task_id)
            .bind(&$row.user_id)
            .bind(&e.mapper)
            .bind(&e.topic)
            .bind(&e.event_type)
            .bind(&e.partition_key)
            .bind(&e.body)
            .bind(&e.traceparent)
            .bind($correlation_id)
            .bind($state.as_str())
            .bind($now)
            .bind(finished)
            .execute(&mut *$tx)
            .await?;
        }
        let update = if $only_pending {
            sqlx::query(
                "UPDATE outbox SET state = 'mapped', processed_at = $1, locked_by = NULL, locked_until = NULL \
                 WHERE seq = $2 AND state = 'pending'",
            )
        } else {
            sqlx::query(
                "UPDATE outbox SET state = 'mapped', processed_at = $1, locked_by = NULL, locked_until = NULL \
                 WHERE seq = $2",
            )
        };
        update.bind($now).bind($row.seq).execute(&mut *$tx).await?.rows_affected()
    }};
}
pub(super) use write_mapped;

/// Inside an open transaction `$tx`: records a dead letter.
macro_rules! insert_dead_letter {
    ($tx:ident, $mutation_id:expr, $kind:literal, $mapper:expr, $envelope_id:expr, $reason:expr, $attempts:expr, $now:expr) => {
        sqlx::query(concat!(
            "INSERT INTO dead_letters (id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at) ",
            "VALUES ($1, $2, '", $kind, "', $3, $4, $5, $6, $7)"
        ))
        .bind(Uuid::new_v4())
        .bind($mutation_id)
        .bind($mapper)
        .bind($envelope_id)
        .bind($reason)
        .bind($attempts)
        .bind($now)
        .execute(&mut *$tx)
        .await?
    };
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
        let mut rows: Vec<OutboxRow> = with_pool!(self, |pool| async {
            sqlx::query_as(pool.claim_mutations_sql())
                .bind(me)
                .bind(until)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
    }

    /// Stores the envelopes of a mapped mutation and marks it mapped, unless the
    /// row is no longer pending (another relay already recorded it).
    pub async fn record_mapped(
        &self,
        row: &OutboxRow,
        correlation_id: &str,
        envelopes: &[NewEnvelope],
        state: EnvelopeState,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            if write_mapped!(tx, row, correlation_id, envelopes, state, now, true) == 1 {
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Parks a pending mutation whose mapping failed, with a dead letter.
    pub async fn record_mapping_failure(
        &self,
        row: &OutboxRow,
        mapper: Option<&str>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let parked = sqlx::query(
                "UPDATE outbox SET state = 'dead', processed_at = $1, locked_by = NULL, locked_until = NULL \
                 WHERE seq = $2 AND state = 'pending'",
            )
            .bind(now)
            .bind(row.seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if parked == 1 {
                insert_dead_letter!(
                    tx,
                    row.id,
                    "mapping",
                    mapper,
                    None::<String>,
                    reason,
                    1i32,
                    now
                );
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
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
        let rows = with_pool!(self, |pool| async {
            sqlx::query_as(pool.claim_envelopes_sql())
                .bind(me)
                .bind(until)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows)
    }

    /// Records Dapr's acceptance (whoever else touched the envelope meanwhile).
    pub async fn mark_published(
        &self,
        seq: i64,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| async {
            sqlx::query(
                "UPDATE envelopes SET state = 'published', attempts = attempts + 1, dapr_status = $1, \
                 finished_at = $2, last_error = NULL, locked_by = NULL, locked_until = NULL WHERE seq = $3",
            )
            .bind(i32::from(status))
            .bind(now)
            .bind(seq)
            .execute(pool)
            .await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Records a transient failure; the envelope stays pending until `retry_at`.
    /// Does nothing if the envelope is no longer pending.
    pub async fn mark_retry(
        &self,
        seq: i64,
        status: Option<u16>,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| async {
            sqlx::query(
                "UPDATE envelopes SET attempts = attempts + 1, dapr_status = $1, last_error = $2, \
                 next_attempt_at = $3, locked_by = NULL, locked_until = NULL WHERE seq = $4 AND state = 'pending'",
            )
            .bind(status.map(i32::from))
            .bind(error)
            .bind(retry_at)
            .bind(seq)
            .execute(pool)
            .await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Parks a pending envelope Dapr refused, with a dead letter naming the reason.
    pub async fn mark_refused(
        &self,
        envelope: &ClaimedEnvelope,
        status: u16,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| async {
            let mut tx = pool.begin_write().await?;
            let parked = sqlx::query(
                "UPDATE envelopes SET state = 'dead', attempts = attempts + 1, dapr_status = $1, last_error = $2, \
                 finished_at = $3, locked_by = NULL, locked_until = NULL WHERE seq = $4 AND state = 'pending'",
            )
            .bind(i32::from(status))
            .bind(reason)
            .bind(now)
            .bind(envelope.seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if parked == 1 {
                insert_dead_letter!(
                    tx,
                    envelope.mutation_id,
                    "publish",
                    &envelope.mapper,
                    &envelope.id,
                    reason,
                    envelope.attempts + 1,
                    now
                );
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }
}
