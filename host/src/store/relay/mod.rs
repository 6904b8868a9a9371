//! The relay's storage: claiming outbox rows and per-task publish queues under fenced
//! leases, and recording what mapping and publishing came to, in batches.
//!
//! Leases: a claim writes the relay's id, a random fencing token and an expiry on each
//! row it takes (PostgreSQL `FOR UPDATE SKIP LOCKED`, so replicas share the work). An
//! outcome is recorded only on rows still leased under the token that claimed them, so
//! a relay whose lease ran out never overwrites what another relay recorded.
//!
//! Claims cost what they return: pending outbox rows, pending envelopes and ready
//! queues each have an index over exactly those rows.
//!
//! Batches: PostgreSQL writes each batch with a few array-bound statements
//! (`postgres.rs`, one round trip each); SQLite, in-process, runs per-row statements in
//! one transaction (`sqlite.rs`). Relay transactions on PostgreSQL commit with
//! `synchronous_commit = off`: everything they record can be redone safely after a
//! crash (deterministic envelope ids, outcomes guarded by state and token), so they need
//! not wait for the WAL flush.

mod postgres;
mod sqlite;

use chrono::{DateTime, Utc};
use sqlx::{Database, Decode, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

use super::{Db, OutboxRow, StoreError, WritePool, with_writer};

use super::states::EnvelopeState;

/// An envelope to store, built from one mapped event.
#[derive(Debug, Clone)]
pub struct NewEnvelope {
    pub id: Uuid,
    pub event_index: i32,
    pub mapper: String,
    pub topic: String,
    pub event_type: String,
    pub partition_key: String,
    /// The CloudEvents JSON document.
    pub body: String,
    /// The envelope's W3C `traceparent`, also sent as the publish request's header.
    pub traceparent: String,
}

/// What mapping one claimed mutation came to.
#[derive(Debug, Clone)]
pub enum Mapping {
    /// Its envelopes, in publish order (none is fine).
    Mapped(Vec<NewEnvelope>),
    /// It cannot be mapped: parked as a dead letter naming the mapper and the reason.
    Failed {
        mapper: Option<String>,
        reason: String,
    },
}

/// The mapped outcome of one claimed outbox row.
#[derive(Debug, Clone)]
pub struct MappedRow<'a> {
    pub row: &'a OutboxRow,
    pub correlation_id: String,
    pub mapping: Mapping,
}

/// What a batch of mapping outcomes came to once stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MappingStored {
    /// Rows stored as mapped.
    pub mapped: usize,
    /// Rows parked as dead letters.
    pub dead: usize,
    /// Envelopes stored.
    pub envelopes: usize,
    /// Rows not stored: their lease had passed to another relay.
    pub lost: usize,
}

/// A pending envelope loaded for publishing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingRow {
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
    /// The stored trace context of the envelope's mutation (its outbox row's), the
    /// parent of the publish span; `None` when the row carries none or is gone.
    pub mutation_traceparent: Option<String>,
    pub correlation_id: String,
    pub attempts: i32,
    pub first_failed_at: Option<DateTime<Utc>>,
}

/// A task queue the relay holds, under the token of the claim that took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeldTask {
    pub task_id: Uuid,
    pub token: i64,
}

/// What one publish attempt of one envelope came to (`status` and `code`: the
/// publisher's own status and error code, e.g. Dapr's HTTP status and `errorCode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The publisher accepted it.
    Published { status: Option<u16> },
    /// It failed and will be retried; the task waits until its retry time.
    Failed {
        status: Option<u16>,
        code: Option<String>,
        error: String,
    },
    /// It is parked as a dead letter: the publisher refused it, or it kept failing past
    /// `RELAY_MAX_ATTEMPTS` / `RELAY_MAX_AGE`.
    Parked {
        status: Option<u16>,
        code: Option<String>,
        reason: String,
    },
}

/// The outcome of one envelope's publish, for the task that holds it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub seq: i64,
    pub task: HeldTask,
    pub delivery: Delivery,
}

/// What happens to a held task when it is given back.
#[derive(Debug, Clone, Copy)]
pub enum Release {
    /// Everything loaded was published or parked (or nothing was publishable): the
    /// queue row goes when the task has no pending envelope left, else it is ready
    /// again at `else_at`.
    Drained { else_at: DateTime<Utc> },
    /// Not before `at`: a retry's back-off, or an earlier mutation still being mapped.
    ReadyAt(DateTime<Utc>),
}

/// One batch of publish outcomes, lease releases and renewals, stored in one
/// transaction.
#[derive(Debug, Clone, Default)]
pub struct DeliveryBatch {
    pub deliveries: Vec<DeliveryRecord>,
    pub releases: Vec<(HeldTask, Release)>,
    /// Tasks still held whose leases are extended.
    pub renew: Vec<HeldTask>,
}

/// What storing a [`DeliveryBatch`] came to.
#[derive(Debug, Clone, Default)]
pub struct DeliveriesStored {
    /// Dead letters created.
    pub parked: usize,
    /// Renewed tasks whose lease another relay now holds: drop them.
    pub lost: Vec<Uuid>,
}

impl Db {
    /// Leases up to `limit` pending mutations, oldest first, to `owner` under `token`
    /// until `until`.
    pub async fn claim_mutations(
        &self,
        owner: &str,
        token: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut rows: Vec<OutboxRow> = with_writer!(self, |pool| async {
            sqlx::query_as(pool.claim_mutations_sql())
                .bind(owner)
                .bind(until)
                .bind(now)
                .bind(limit)
                .bind(token)
                .fetch_all(pool)
                .await
        })?;
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
    }

    /// Stores a batch of mapping outcomes in one transaction: envelopes (in state
    /// `envelope_state`) and queue rows for mapped mutations, dead letters for failed
    /// ones; each row only if still leased under `token`.
    pub async fn record_mappings(
        &self,
        token: i64,
        batch: &[MappedRow<'_>],
        envelope_state: EnvelopeState,
        now: DateTime<Utc>,
    ) -> Result<MappingStored, StoreError> {
        match self {
            Db::Postgres(pool) => {
                postgres::record_mappings(pool, token, batch, envelope_state, now).await
            }
            Db::Sqlite(sqlite) => {
                sqlite::record_mappings(sqlite.writer(), token, batch, envelope_state, now).await
            }
        }
    }

    /// Leases up to `limit` ready task queues (oldest ready first) to `owner` under
    /// `token` until `until`.
    pub async fn claim_tasks(
        &self,
        owner: &str,
        token: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        let rows: Vec<(Uuid,)> = with_writer!(self, |pool| async {
            sqlx::query_as(pool.claim_tasks_sql())
                .bind(owner)
                .bind(until)
                .bind(now)
                .bind(limit)
                .bind(token)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The publishable envelopes of `tasks`, at most `per_task` each, in publish order
    /// per task: pending ones of mutations that come before the task's first mutation
    /// still unmapped (whose envelopes must go first).
    pub async fn load_envelopes(
        &self,
        tasks: &[Uuid],
        per_task: i64,
    ) -> Result<Vec<PendingRow>, StoreError> {
        match self {
            Db::Postgres(pool) => postgres::load_envelopes(pool, tasks, per_task).await,
            Db::Sqlite(sqlite) => sqlite::load_envelopes(sqlite.reader(), tasks, per_task).await,
        }
    }

    /// Stores publish outcomes, releases and renewals in one transaction; each only
    /// under the lease token it was claimed with.
    pub async fn record_deliveries(
        &self,
        batch: &DeliveryBatch,
        now: DateTime<Utc>,
        renew_until: DateTime<Utc>,
    ) -> Result<DeliveriesStored, StoreError> {
        match self {
            Db::Postgres(pool) => postgres::record_deliveries(pool, batch, now, renew_until).await,
            Db::Sqlite(sqlite) => {
                sqlite::record_deliveries(sqlite.writer(), batch, now, renew_until).await
            }
        }
    }
}

/// Inside the caller's transaction: stores envelope `e` of mutation `row` in `state`
/// (an id already stored is kept as it is, so a re-run never duplicates).
pub(super) async fn insert_envelope<'c, DB, E>(
    conn: E,
    row: &OutboxRow,
    correlation_id: &str,
    e: &NewEnvelope,
    state: EnvelopeState,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
{
    let finished = (state != EnvelopeState::Pending).then_some(now);
    sqlx::query(
        "INSERT INTO envelopes (id, mutation_id, outbox_seq, event_index, task_id, user_id, mapper, \
         topic, event_type, partition_key, body, traceparent, correlation_id, state, attempts, \
         created_at, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0, $15, $16) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id.to_string())
    .bind(row.id)
    .bind(row.seq)
    .bind(e.event_index)
    .bind(row.task_id)
    .bind(row.user_id.as_str())
    .bind(e.mapper.as_str())
    .bind(e.topic.as_str())
    .bind(e.event_type.as_str())
    .bind(e.partition_key.as_str())
    .bind(e.body.as_str())
    .bind(e.traceparent.as_str())
    .bind(correlation_id)
    .bind(state.as_str())
    .bind(now)
    .bind(finished)
    .execute(conn)
    .await?;
    Ok(())
}

/// Inside the caller's transaction: makes sure each of `tasks` has a publish queue row
/// (new ones ready at `now`; an existing one keeps its time), locking the rows.
pub(super) async fn queue_tasks<DB, C>(
    conn: &mut C,
    tasks: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'e> &'e mut C: Executor<'e, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    for task in tasks {
        sqlx::query(
            "INSERT INTO relay_tasks (task_id, ready_at) VALUES ($1, $2) \
             ON CONFLICT (task_id) DO UPDATE SET ready_at = relay_tasks.ready_at",
        )
        .bind(*task)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Inside the caller's transaction: marks dead letter `id` resolved unless it already
/// is; whether this call resolved it.
pub(super) async fn resolve_letter<'c, DB, E>(
    conn: E,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error>
where
    DB: Database,
    E: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Uuid: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
{
    let resolved: Option<(Uuid,)> = sqlx::query_as(
        "UPDATE dead_letters SET resolved_at = $1, attempts = attempts + 1 \
         WHERE id = $2 AND resolved_at IS NULL RETURNING id",
    )
    .bind(now)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(resolved.is_some())
}
