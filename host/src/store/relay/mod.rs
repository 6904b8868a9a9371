//! The relay's storage: claiming outbox rows and per-task publish queues under fenced
//! leases, and recording what mapping and publishing came to, in batches.
//!
//! Leases: a claim writes the relay's id, a random fencing token and an expiry on each
//! row it takes (PostgreSQL `FOR UPDATE SKIP LOCKED`, so replicas share the work). An
//! outcome is recorded only on rows still leased under the token that claimed them, so
//! a relay whose lease ran out never overwrites what another relay recorded. Lease
//! expiries and ready times are computed from the database's clock on PostgreSQL (the
//! replicas' clocks may disagree); SQLite has one process, whose clock is used.
//!
//! Holds (`relay_holds`): an event that could not be mapped or published may hold its
//! task on its topic; the task's envelopes on that topic after it are not loaded, and a
//! task queue whose only pending envelopes are held back is given up, until the hold is
//! resolved (a replay or a skip, `store/dead_letters.rs`), which queues the task again.
//!
//! Lock order: every transaction that locks `relay_tasks` rows locks them in `task_id`
//! order (claims skip locked rows and never wait), so two never deadlock.
//!
//! Claims cost what they return: pending outbox rows, pending envelopes and ready
//! queues each have an index over exactly those rows.
//!
//! Plans (PostgreSQL): each partial index over pending rows serves one kind of read,
//! and a statement names its kind in how it states "pending", because the planner may
//! use a partial index only for a statement whose conditions imply the index's. The
//! pending set is often empty when autovacuum takes statistics, so a pending index then
//! looks empty to the planner for as long as those statistics last: had a statement a
//! choice of indexes, a full read of a pending index would look free, and under a
//! backlog it reads every pending row once per row the statement wants.
//! - Per task (`task_id = …`): plain `state = 'pending'`; only the `*_pending_task`
//!   indexes serve it.
//! - Oldest first, counts: `pending_oldest!`, only the `*_pending_oldest` indexes.
//! - By key (`seq`): `pending_by_key!`, no partial index at all: the primary key.
//!
//! A batch of tasks joined with a table keyed by task also names the batch's tasks on
//! that table (`batch_of_tasks!`): the task queues, like the pending sets, are often
//! empty when statistics are taken. The delivery marks do not join the queues at all:
//! `lock_tasks` returns the tasks still held, and only their envelopes are marked.
//!
//! The same statistics make a batch joined with the queues look like one queue row, so
//! the planner would unnest the batch on the inner side of a nested loop and read it
//! whole once per queue row (n² for a batch of n). The four statements that join a batch
//! with the queues run with nested loops off (`postgres.rs`, `JOINED_WITH_QUEUES`).
//! Every statement that binds a batch runs unprepared (`per_batch`): it is planned for
//! the batch it carries, never with a generic plan that takes its arrays for ten
//! elements and compares rows against them unhashed.
//!
//! `relay/plans.rs` checks the plans with statistics from an empty pending set and
//! from a large one.
//!
//! Batches: PostgreSQL writes each batch with a few array-bound statements
//! (`postgres.rs`, one round trip each); SQLite with a few multi-row statements in one
//! transaction (`sqlite.rs`: each statement is a hand-off to sqlx's worker thread). Relay transactions on PostgreSQL commit with
//! `synchronous_commit = off`: everything they record can be redone safely after a
//! crash (deterministic envelope ids, outcomes guarded by state and token), so they need
//! not wait for the WAL flush.

mod postgres;
mod sqlite;

#[cfg(test)]
mod plans;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Database, Decode, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

use super::{Db, OutboxRow, PgDb, StoreError, timed, with_writer};

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
    /// It cannot be mapped: parked as a dead letter naming the mapper and the reason,
    /// holding the task on each of `hold` (the topics the mutation could have reached;
    /// none with `RELAY_ON_POISON=skip`).
    Failed {
        mapper: Option<String>,
        reason: String,
        hold: Vec<String>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// `RELAY_MAX_ATTEMPTS` / `RELAY_MAX_AGE`. With `hold`, its task is held on its
    /// topic: the task's later envelopes there wait until the letter is resolved.
    Parked {
        status: Option<u16>,
        code: Option<String>,
        reason: String,
        hold: bool,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Everything loaded was published or parked (or nothing was publishable): the
    /// queue row goes when the task has no publishable envelope left (none pending, or
    /// all held back by holds), else it is ready again after `else_after`.
    Drained { else_after: Duration },
    /// Ready again after a while: a retry's back-off, or at once.
    After(Duration),
}

/// One batch of publish outcomes, lease releases and renewals, stored in one
/// transaction.
#[derive(Debug, Clone, Default)]
pub struct DeliveryBatch {
    /// The relay that made the attempts (recorded in the delivery history).
    pub relay: String,
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
    /// Renewed tasks whose lease another relay now holds (under the token this relay
    /// had): drop them.
    pub lost: Vec<HeldTask>,
    /// Released tasks left queued and ready at once (a task drained of what was loaded
    /// that still has publishable envelopes, one given back unloaded): worth a claim.
    pub ready_again: usize,
}

/// The envelopes a claim loaded.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Per task, in publish order.
    pub envelopes: Vec<PendingRow>,
    /// Claimed tasks left out because the byte budget was spent: give them back ready.
    pub cut: Vec<Uuid>,
}

impl Db {
    /// Leases up to `limit` pending mutations, oldest first, to `owner` under `token`
    /// for `lease`.
    pub async fn claim_mutations(
        &self,
        owner: &str,
        token: i64,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut rows = timed("claim_mutations", async {
            match self {
                Db::Postgres(PgDb { pool, .. }) => {
                    postgres::claim_mutations(pool, owner, token, lease, limit).await
                }
                Db::Sqlite(sqlite) => {
                    sqlite::claim_mutations(sqlite.writer(), owner, token, lease, limit).await
                }
            }
        })
        .await?;
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
    }

    /// Extends the lease of the mutations `seqs` still leased under `token` by `lease`
    /// from now; how many were.
    pub async fn renew_mutations(
        &self,
        seqs: &[i64],
        token: i64,
        lease: Duration,
    ) -> Result<usize, StoreError> {
        match self {
            Db::Postgres(PgDb { pool, .. }) => {
                postgres::renew_mutations(pool, seqs, token, lease).await
            }
            Db::Sqlite(sqlite) => {
                sqlite::renew_mutations(sqlite.writer(), seqs, token, lease).await
            }
        }
    }

    /// Gives the mutations `seqs` leased under `token` back, to be claimed again at once.
    pub async fn release_mutations(&self, seqs: &[i64], token: i64) -> Result<(), StoreError> {
        match self {
            Db::Postgres(PgDb { pool, .. }) => postgres::release_mutations(pool, seqs, token).await,
            Db::Sqlite(sqlite) => sqlite::release_mutations(sqlite.writer(), seqs, token).await,
        }
    }

    /// Gives back every lease `owner` holds, outbox rows and task queues alike, to be
    /// claimed again at once; returns how many. For a relay restarting after a panic or a
    /// stall: its failed run is gone, and what it held would otherwise wait out the lease
    /// (`RELAY_LEASE`). Only the owner may call this (a relay's id is its own, made at
    /// start); anything the failed run left running finds its token gone and records
    /// nothing.
    pub async fn release_owner(&self, owner: &str) -> Result<u64, StoreError> {
        // Queues are locked in `task_id` order, like every other transaction that locks
        // several (the module's lock order); SQLite has one writer.
        let tasks = match self {
            Db::Postgres(_) => {
                "UPDATE relay_tasks SET locked_by = NULL, locked_until = NULL, lock_token = NULL \
                 WHERE task_id IN (SELECT task_id FROM relay_tasks WHERE locked_by = $1 \
                 ORDER BY task_id FOR UPDATE)"
            }
            Db::Sqlite(_) => {
                "UPDATE relay_tasks SET locked_by = NULL, locked_until = NULL, lock_token = NULL \
                 WHERE locked_by = $1"
            }
        };
        with_writer!(self, |pool| async {
            let mutations = sqlx::query(
                "UPDATE outbox SET locked_by = NULL, locked_until = NULL, lock_token = NULL \
                 WHERE locked_by = $1 AND state = 'pending'",
            )
            .bind(owner)
            .execute(pool)
            .await?
            .rows_affected();
            let queues = sqlx::query(tasks)
                .bind(owner)
                .execute(pool)
                .await?
                .rows_affected();
            Ok::<_, sqlx::Error>(mutations + queues)
        })
        .map_err(StoreError::from)
    }

    /// Stores a batch of mapping outcomes in one transaction: envelopes (in state
    /// `envelope_state`) and queue rows for mapped mutations, dead letters (and their
    /// holds) for failed ones; each row only if still leased under `token`.
    pub async fn record_mappings(
        &self,
        token: i64,
        batch: &[MappedRow<'_>],
        envelope_state: EnvelopeState,
        now: DateTime<Utc>,
    ) -> Result<MappingStored, StoreError> {
        timed("record_mappings", async {
            match self {
                Db::Postgres(PgDb { pool, .. }) => {
                    postgres::record_mappings(pool, token, batch, envelope_state, now).await
                }
                Db::Sqlite(sqlite) => {
                    sqlite::record_mappings(sqlite.writer(), token, batch, envelope_state, now)
                        .await
                }
            }
        })
        .await
    }

    /// Leases up to `limit` ready task queues (oldest ready first) to `owner` under
    /// `token` for `lease`.
    pub async fn claim_tasks(
        &self,
        owner: &str,
        token: i64,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        timed("claim_tasks", async {
            match self {
                Db::Postgres(PgDb { pool, .. }) => {
                    postgres::claim_tasks(pool, owner, token, lease, limit).await
                }
                Db::Sqlite(sqlite) => {
                    sqlite::claim_tasks(sqlite.writer(), owner, token, lease, limit).await
                }
            }
        })
        .await
    }

    /// The publishable envelopes of `tasks`, at most `per_task` each, in publish order
    /// per task: pending ones of mutations that come before the task's first mutation
    /// still unmapped (whose envelopes must go first), and not held back by a hold.
    /// Within `budget` bytes of bodies, taken round-robin (every task's first envelope,
    /// then every task's second, ...); a task left without any is `cut`.
    pub async fn load_envelopes(
        &self,
        tasks: &[Uuid],
        per_task: i64,
        budget: usize,
    ) -> Result<Loaded, StoreError> {
        let budget = i64::try_from(budget).unwrap_or(i64::MAX);
        let envelopes = timed("load_envelopes", async {
            match self {
                Db::Postgres(PgDb { pool, .. }) => {
                    postgres::load_envelopes(pool, tasks, per_task, budget).await
                }
                Db::Sqlite(sqlite) => {
                    sqlite::load_envelopes(sqlite.reader(), tasks, per_task, budget).await
                }
            }
        })
        .await?;
        let loaded: std::collections::HashSet<Uuid> = envelopes.iter().map(|e| e.task_id).collect();
        Ok(Loaded {
            cut: Vec::new(),
            envelopes,
        }
        .with_cut(tasks, &loaded))
    }

    /// Stores publish outcomes, releases and renewals (extending leases by `lease`) in
    /// one transaction; each only under the lease token it was claimed with.
    pub async fn record_deliveries(
        &self,
        batch: &DeliveryBatch,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<DeliveriesStored, StoreError> {
        timed("record_deliveries", async {
            match self {
                Db::Postgres(PgDb { pool, .. }) => {
                    postgres::record_deliveries(pool, batch, now, lease).await
                }
                Db::Sqlite(sqlite) => {
                    sqlite::record_deliveries(sqlite.writer(), batch, now, lease).await
                }
            }
        })
        .await
    }
}

impl Loaded {
    /// Marks the tasks of `claimed` that got no envelope while others did as cut by the
    /// budget. (When none got any, nothing was publishable: not a cut.)
    fn with_cut(mut self, claimed: &[Uuid], loaded: &std::collections::HashSet<Uuid>) -> Self {
        if !loaded.is_empty() {
            self.cut = claimed
                .iter()
                .filter(|t| !loaded.contains(t))
                .copied()
                .collect();
        }
        self
    }
}

/// The head of every insert of envelopes: the columns a new envelope sets, in the order
/// each insert gives them (one row here, arrays on PostgreSQL, `VALUES` lists on SQLite).
/// The body is not among them: it goes to `envelope_bodies` under the `seq` the insert
/// returns, and only for the envelopes the insert stored (an id already stored keeps its
/// row and its body).
macro_rules! insert_envelopes {
    () => {
        "INSERT INTO envelopes (id, mutation_id, outbox_seq, event_index, task_id, user_id, \
         mapper, topic, event_type, partition_key, traceparent, correlation_id, state, \
         attempts, created_at, finished_at) "
    };
}
pub(crate) use insert_envelopes;

/// SQL: envelope `e` waits behind a hold of its task on its topic (a hold at an earlier
/// place in the task's order).
macro_rules! held_back {
    () => {
        "EXISTS (SELECT 1 FROM relay_holds h WHERE h.task_id = e.task_id AND h.topic = e.topic \
         AND (h.outbox_seq < e.outbox_seq OR (h.outbox_seq = e.outbox_seq AND h.event_index < e.event_index)))"
    };
}
pub(crate) use held_back;

/// SQL: row `$t` (an alias and its dot, or `""`) is pending, for reads in `seq` order
/// and counts. `seq > 0` is always true; it is the condition that only the
/// `*_pending_oldest` indexes add to `state = 'pending'`, so only such reads use them.
macro_rules! pending_oldest {
    ($t:literal) => {
        concat!($t, "state = 'pending' AND ", $t, "seq > 0")
    };
}
pub(crate) use pending_oldest;

/// SQL (PostgreSQL): row `$t` (an alias and its dot, or `""`), found by its key, is
/// still pending. Equality under the `"C"` collation is the same test as
/// `state = 'pending'` (text equality is byte equality under any deterministic
/// collation), but it implies no partial index's condition, so the planner finds the
/// rows through the primary key whatever its statistics say about the pending set.
macro_rules! pending_by_key {
    ($t:literal) => {
        concat!($t, "state = 'pending' COLLATE \"C\"")
    };
}
pub(crate) use pending_by_key;

/// SQL: queue row `t` belongs to one of the tasks in parameter `$1`, the batch. A
/// statement that joins a batch (`UNNEST` of its tasks) with `relay_tasks` states it as
/// well, so that whatever order the planner joins in, it reads only the batch's queue
/// rows: with statistics that call the table empty, it may otherwise read the whole
/// table first and join the batch to it. Only where the batch is read once: in a lookup
/// run for each row (a correlated subquery, the inner side of a join) every run walks
/// the whole array, n² for a batch of n.
macro_rules! batch_of_tasks {
    () => {
        "t.task_id = ANY($1::uuid[])"
    };
}
pub(crate) use batch_of_tasks;

/// `t` plus `d` (configuration bounds every duration, so this never saturates in
/// practice).
pub(super) fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The milliseconds of `d`, for SQL arithmetic on the database's clock.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Inside the caller's transaction: stores envelope `e` of mutation `row` in `state`,
/// and its body (an envelope already stored is kept as it is, so a re-run never
/// duplicates). The conflict is left unnamed: SQLite keeps the id unique, PostgreSQL
/// what the id is made of (mutation, mapper, event index; its id index is a hash).
pub(super) async fn insert_envelope<DB, C>(
    conn: &mut C,
    row: &OutboxRow,
    correlation_id: &str,
    e: &NewEnvelope,
    state: EnvelopeState,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'e> &'e mut C: Executor<'e, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    let finished = (state != EnvelopeState::Pending).then_some(now);
    let stored: Option<(i64,)> = sqlx::query_as(concat!(
        insert_envelopes!(),
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $15) \
         ON CONFLICT DO NOTHING RETURNING seq"
    ))
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
    .bind(e.traceparent.as_str())
    .bind(correlation_id)
    .bind(state.as_str())
    .bind(now)
    .bind(finished)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((seq,)) = stored {
        sqlx::query("INSERT INTO envelope_bodies (seq, body) VALUES ($1, $2)")
            .bind(seq)
            .bind(e.body.as_str())
            .execute(&mut *conn)
            .await?;
    }
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

/// How a dead letter was resolved, and by whom.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolution<'a> {
    /// `replayed` or `skipped`.
    pub(crate) how: &'static str,
    /// The operator (the admin token's name).
    pub(crate) by: &'a str,
    /// Why, when the operator said (a skip's reason).
    pub(crate) note: Option<&'a str>,
}

/// Inside the caller's transaction: marks dead letter `id` resolved as `resolution` unless
/// it already is, and lifts the holds it had; whether this call resolved it.
pub(super) async fn resolve_letter<DB, C>(
    conn: &mut C,
    id: Uuid,
    resolution: Resolution<'_>,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error>
where
    DB: Database,
    for<'e> &'e mut C: Executor<'e, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Uuid: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
{
    let resolved: Option<(Uuid,)> = sqlx::query_as(
        "UPDATE dead_letters SET resolved_at = $1, attempts = attempts + 1, resolution = $3, \
         resolved_by = $4, resolution_note = $5 WHERE id = $2 AND resolved_at IS NULL RETURNING id",
    )
    .bind(now)
    .bind(id)
    .bind(resolution.how)
    .bind(resolution.by)
    .bind(resolution.note)
    .fetch_optional(&mut *conn)
    .await?;
    if resolved.is_none() {
        return Ok(false);
    }
    sqlx::query("DELETE FROM relay_holds WHERE dead_letter_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}
