//! The relay's claims and batch writes on PostgreSQL: each statement binds arrays
//! (`UNNEST`), so a batch of any size costs a handful of round trips; leases and ready
//! times come from the database's clock (`now()`), so replicas whose clocks disagree
//! still agree on who holds what.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::{Query, QueryAs};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{
    DeliveriesStored, Delivery, DeliveryBatch, EnvelopeState, HeldTask, MappedRow, Mapping,
    MappingStored, PendingRow, Release, batch_of_tasks, held_back, insert_envelopes, millis,
    pending_by_key, pending_oldest,
};
use crate::domain::text::storable;
use crate::store::{MAX_STORED_REASON, OutboxRow, StoreError};

/// A relay transaction: its commit does not wait for the WAL flush (see the module
/// documentation of `store::relay` for why that is safe).
async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// A statement that binds a batch (arrays of seqs, tasks and tokens), run unprepared, so
/// PostgreSQL plans it for the batch it carries every time. A prepared statement may
/// switch to a generic plan after five runs, which sees its arrays as parameters of ten
/// elements: a join of a batch with the task queue could then become a nested loop that
/// compares every row against the whole array (unhashed), n² for a batch of n. With the
/// arrays' values in the plan, each `= ANY` over them is hashed and the planner knows
/// their lengths. It costs a parse and a plan per statement, and a round trip: a few
/// per batch, never per event. (See "Plans" in `relay/mod.rs` and BENCHMARKS.md.)
pub(super) fn per_batch(sql: &'static str) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(sql).persistent(false)
}

/// [`per_batch`], for a statement whose rows are read as `R`.
pub(super) fn per_batch_as<R>(sql: &'static str) -> QueryAs<'static, Postgres, R, PgArguments>
where
    R: for<'r> sqlx::FromRow<'r, PgRow>,
{
    sqlx::query_as(sql).persistent(false)
}

/// The statements that join a batch with the task queue table (`relay_tasks`): the relay
/// runs them with nested loops off ([`nested_loops`]), and the plan test plans them so.
#[cfg(test)]
pub(super) const JOINED_WITH_QUEUES: [&str; 4] =
    [LOCK_TASKS, RENEW_TASKS, RELEASE_LATER, RELEASE_DRAINED];

/// Turns nested loops on or off for the rest of the transaction: off for the statements
/// that join a batch with the task queue table (`relay_tasks`). That table is often
/// empty when autovacuum reads it, and its statistics then say so. The planner, believing
/// the batch's queue rows to be one, puts the unnested batch on the inner side of a
/// nested loop, which reads the whole batch again for every queue row: n² for n tasks
/// (under a backlog, with 65,000 queues held, one lock of a delivery batch's queues was
/// still running after 13 minutes). Without nested loops the join is a hash or merge
/// join, linear in the batch. The marks need them (a lookup of each envelope by key).
async fn nested_loops(
    tx: &mut Transaction<'static, Postgres>,
    on: bool,
) -> Result<(), sqlx::Error> {
    let sql = match on {
        true => "SET LOCAL enable_nestloop = on",
        false => "SET LOCAL enable_nestloop = off",
    };
    sqlx::query(sql).execute(&mut **tx).await?;
    Ok(())
}

/// `now() + $n milliseconds`, in SQL.
macro_rules! later {
    ($n:literal) => {
        concat!("now() + ", $n, " * interval '1 millisecond'")
    };
}

/// Runs a claim (`CLAIM_MUTATIONS`, `CLAIM_TASKS`: `$1` owner, `$2` lease, `$3` limit,
/// `$4` token).
async fn claim<R>(
    pool: &PgPool,
    sql: &'static str,
    owner: &str,
    token: i64,
    lease: Duration,
    limit: i64,
) -> Result<Vec<R>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as(sql)
        .bind(owner)
        .bind(millis(lease))
        .bind(limit)
        .bind(token)
        .fetch_all(pool)
        .await
}

pub(super) async fn claim_mutations(
    pool: &PgPool,
    owner: &str,
    token: i64,
    lease: Duration,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(claim(pool, CLAIM_MUTATIONS, owner, token, lease, limit).await?)
}

/// `$1` owner, `$2` lease (ms), `$3` limit, `$4` token. The claimed keys are collected
/// into an array first, as in [`CLAIM_TASKS`].
pub(super) const CLAIM_MUTATIONS: &str = concat!(
    "UPDATE outbox SET locked_by = $1, locked_until = ",
    later!("$2"),
    ", lock_token = $4 WHERE seq = ANY(ARRAY(SELECT seq FROM outbox WHERE ",
    pending_oldest!(""),
    " AND (locked_until IS NULL OR locked_until < now()) ORDER BY seq LIMIT $3 \
     FOR UPDATE SKIP LOCKED)) \
     RETURNING seq, id, task_id, user_id, action, mutation, traceparent, created_at"
);

pub(super) async fn renew_mutations(
    pool: &PgPool,
    seqs: &[i64],
    token: i64,
    lease: Duration,
) -> Result<usize, StoreError> {
    let renewed = per_batch(RENEW_MUTATIONS)
        .bind(seqs)
        .bind(token)
        .bind(millis(lease))
        .execute(pool)
        .await?
        .rows_affected();
    Ok(renewed as usize)
}

/// `$1` seqs, `$2` token, `$3` lease (ms).
pub(super) const RENEW_MUTATIONS: &str = concat!(
    "UPDATE outbox SET locked_until = ",
    later!("$3"),
    " WHERE seq = ANY($1) AND lock_token = $2 AND ",
    pending_by_key!("")
);

pub(super) async fn release_mutations(
    pool: &PgPool,
    seqs: &[i64],
    token: i64,
) -> Result<(), StoreError> {
    per_batch(RELEASE_MUTATIONS)
        .bind(seqs)
        .bind(token)
        .execute(pool)
        .await?;
    Ok(())
}

/// `$1` seqs, `$2` token.
pub(super) const RELEASE_MUTATIONS: &str = concat!(
    "UPDATE outbox SET locked_by = NULL, locked_until = NULL, lock_token = NULL \
     WHERE seq = ANY($1) AND lock_token = $2 AND ",
    pending_by_key!("")
);

pub(super) async fn claim_tasks(
    pool: &PgPool,
    owner: &str,
    token: i64,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Uuid>, StoreError> {
    let rows: Vec<(Uuid,)> = claim(pool, CLAIM_TASKS, owner, token, lease, limit).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// `$1` owner, `$2` lease (ms), `$3` limit, `$4` token. The claimed keys are collected
/// into an array first (`= ANY(ARRAY(...))`, computed once), so the update finds each
/// row by its key: joined to the claim as a subquery (`IN (...)`), the update could
/// read the whole queue once the statistics call it empty, and run the claim again for
/// every row it reads.
pub(super) const CLAIM_TASKS: &str = concat!(
    "UPDATE relay_tasks SET locked_by = $1, locked_until = ",
    later!("$2"),
    ", lock_token = $4 WHERE task_id = ANY(ARRAY(SELECT task_id FROM relay_tasks \
     WHERE ready_at <= now() AND (locked_until IS NULL OR locked_until < now()) \
     ORDER BY ready_at LIMIT $3 FOR UPDATE SKIP LOCKED)) RETURNING task_id"
);

pub(super) async fn record_mappings(
    pool: &PgPool,
    token: i64,
    batch: &[MappedRow<'_>],
    envelope_state: EnvelopeState,
    now: DateTime<Utc>,
) -> Result<MappingStored, StoreError> {
    let all: Vec<i64> = batch.iter().map(|m| m.row.seq).collect();
    let dead: Vec<i64> = batch
        .iter()
        .filter(|m| matches!(m.mapping, Mapping::Failed { .. }))
        .map(|m| m.row.seq)
        .collect();
    let mut tx = begin(pool).await?;
    let owned: Vec<(i64,)> = per_batch_as(MAPPED_MARK)
        .bind(&all)
        .bind(&dead)
        .bind(now)
        .bind(token)
        .fetch_all(&mut *tx)
        .await?;
    let owned: HashSet<i64> = owned.into_iter().map(|(seq,)| seq).collect();

    let mut stored = MappingStored {
        lost: batch.len() - owned.len(),
        ..MappingStored::default()
    };
    let mut env = EnvelopeColumns::default();
    let mut letters = LetterColumns::default();
    let mut holds = HoldColumns::default();
    let mut queued = BTreeSet::new();
    for m in batch.iter().filter(|m| owned.contains(&m.row.seq)) {
        match &m.mapping {
            Mapping::Mapped(envelopes) => {
                stored.mapped += 1;
                stored.envelopes += envelopes.len();
                for e in envelopes {
                    env.push(m, e);
                }
                if !envelopes.is_empty() {
                    queued.insert(m.row.task_id);
                }
            }
            Mapping::Failed {
                mapper,
                reason,
                hold,
            } => {
                stored.dead += 1;
                // Time-ordered: letters parked at the same instant list in parking order
                // (`ORDER BY created_at, id`).
                let id = Uuid::now_v7();
                letters.id.push(id);
                letters.mutation.push(m.row.id);
                letters.task.push(m.row.task_id);
                letters.mapper.push(mapper.clone());
                letters
                    .reason
                    .push(storable(reason, MAX_STORED_REASON).into_owned());
                for topic in hold {
                    holds.letter.push(id);
                    holds.task.push(m.row.task_id);
                    holds.topic.push(topic.clone());
                    holds.outbox_seq.push(m.row.seq);
                }
            }
        }
    }
    let finished = (envelope_state != EnvelopeState::Pending).then_some(now);
    if !env.id.is_empty() {
        // One statement: the envelopes, then the bodies of those it stored, under the
        // `seq` each got.
        sqlx::query(concat!(
            "WITH x AS (SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::int8[], $4::int4[], \
             $5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
             $12::text[], $13::text[]) AS x(id, mutation_id, outbox_seq, event_index, task_id, user_id, \
             mapper, topic, event_type, partition_key, body, traceparent, correlation_id)), \
             stored AS (",
            insert_envelopes!(),
            "SELECT x.id, x.mutation_id, x.outbox_seq, x.event_index, x.task_id, x.user_id, x.mapper, \
             x.topic, x.event_type, x.partition_key, x.traceparent, x.correlation_id, $14, 0, $15, $16 \
             FROM x ON CONFLICT (mutation_id, mapper, event_index) DO NOTHING RETURNING seq, id) \
             INSERT INTO envelope_bodies (seq, body) SELECT stored.seq, x.body FROM stored JOIN x ON x.id = stored.id"
        ))
        .bind(&env.id)
        .bind(&env.mutation_id)
        .bind(&env.outbox_seq)
        .bind(&env.event_index)
        .bind(&env.task_id)
        .bind(&env.user_id)
        .bind(&env.mapper)
        .bind(&env.topic)
        .bind(&env.event_type)
        .bind(&env.partition_key)
        .bind(&env.body)
        .bind(&env.traceparent)
        .bind(&env.correlation_id)
        .bind(envelope_state.as_str())
        .bind(now)
        .bind(finished)
        .execute(&mut *tx)
        .await?;
    }
    if !letters.mutation.is_empty() {
        sqlx::query(
            "INSERT INTO dead_letters (id, mutation_id, kind, mapper, envelope_id, reason, attempts, \
             created_at, task_id) \
             SELECT x.id, x.mutation_id, 'mapping', x.mapper, NULL, x.reason, 1, $6, x.task_id \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::uuid[]) \
             AS x(id, mutation_id, mapper, reason, task_id)",
        )
        .bind(&letters.id)
        .bind(&letters.mutation)
        .bind(&letters.mapper)
        .bind(&letters.reason)
        .bind(&letters.task)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    if !holds.letter.is_empty() {
        sqlx::query(
            "INSERT INTO relay_holds (dead_letter_id, task_id, topic, outbox_seq, event_index, created_at) \
             SELECT x.letter, x.task_id, x.topic, x.outbox_seq, -1, $5 \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int8[]) \
             AS x(letter, task_id, topic, outbox_seq) ON CONFLICT DO NOTHING",
        )
        .bind(&holds.letter)
        .bind(&holds.task)
        .bind(&holds.topic)
        .bind(&holds.outbox_seq)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    if envelope_state == EnvelopeState::Pending && !queued.is_empty() {
        // Sorted (a BTreeSet), so that concurrent transactions lock queue rows in one
        // order.
        let tasks: Vec<Uuid> = queued.into_iter().collect();
        sqlx::query(
            "INSERT INTO relay_tasks (task_id, ready_at) SELECT x.task_id, $2 FROM UNNEST($1::uuid[]) AS x(task_id) \
             ON CONFLICT (task_id) DO UPDATE SET ready_at = relay_tasks.ready_at",
        )
        .bind(&tasks)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(stored)
}

/// The outcome of mapping, on the outbox rows still leased under the token: `$1` seqs,
/// `$2` those that failed, `$3` now, `$4` token.
pub(super) const MAPPED_MARK: &str = concat!(
    "UPDATE outbox SET state = CASE WHEN seq = ANY($2) THEN 'dead' ELSE 'mapped' END, \
     processed_at = $3, locked_by = NULL, locked_until = NULL, lock_token = NULL \
     WHERE seq = ANY($1) AND ",
    pending_by_key!(""),
    " AND lock_token = $4 RETURNING seq"
);

/// The envelope columns of a multi-row insert.
#[derive(Default)]
struct EnvelopeColumns {
    id: Vec<String>,
    mutation_id: Vec<Uuid>,
    outbox_seq: Vec<i64>,
    event_index: Vec<i32>,
    task_id: Vec<Uuid>,
    user_id: Vec<String>,
    mapper: Vec<String>,
    topic: Vec<String>,
    event_type: Vec<String>,
    partition_key: Vec<String>,
    body: Vec<String>,
    traceparent: Vec<String>,
    correlation_id: Vec<String>,
}

impl EnvelopeColumns {
    fn push(&mut self, m: &MappedRow<'_>, e: &super::NewEnvelope) {
        self.id.push(e.id.to_string());
        self.mutation_id.push(m.row.id);
        self.outbox_seq.push(m.row.seq);
        self.event_index.push(e.event_index);
        self.task_id.push(m.row.task_id);
        self.user_id.push(m.row.user_id.clone());
        self.mapper.push(e.mapper.clone());
        self.topic.push(e.topic.clone());
        self.event_type.push(e.event_type.clone());
        self.partition_key.push(e.partition_key.clone());
        self.body.push(e.body.clone());
        self.traceparent.push(e.traceparent.clone());
        self.correlation_id.push(m.correlation_id.clone());
    }
}

/// The dead-letter columns of a multi-row insert.
#[derive(Default)]
struct LetterColumns {
    id: Vec<Uuid>,
    mutation: Vec<Uuid>,
    task: Vec<Uuid>,
    mapper: Vec<Option<String>>,
    reason: Vec<String>,
}

/// The hold columns of a multi-row insert.
#[derive(Default)]
struct HoldColumns {
    letter: Vec<Uuid>,
    task: Vec<Uuid>,
    topic: Vec<String>,
    outbox_seq: Vec<i64>,
}

pub(super) async fn load_envelopes(
    pool: &PgPool,
    tasks: &[Uuid],
    per_task: i64,
    budget: i64,
) -> Result<Vec<PendingRow>, StoreError> {
    // Round-robin within the budget: the running total of body bytes over (place in the
    // task's queue, the task's place in the claim); the first row always goes.
    let rows = per_batch_as(LOAD_ENVELOPES)
        .bind(tasks)
        .bind(per_task)
        .bind(budget)
        .fetch_all(pool)
        .await?;
    Ok(rows)
}

/// `$1` tasks in claim order, `$2` envelopes per task, `$3` budget of body bytes.
pub(super) const LOAD_ENVELOPES: &str = concat!(
    "SELECT seq, id, task_id, user_id, mapper, topic, event_type, partition_key, body, traceparent, \
     correlation_id, attempts, first_failed_at, mutation_traceparent FROM ( \
       SELECT x.*, sum(x.bytes) OVER (ORDER BY x.rank, t.ord ROWS UNBOUNDED PRECEDING) AS running \
       FROM UNNEST($1::uuid[]) WITH ORDINALITY AS t(task_id, ord) \
       CROSS JOIN LATERAL (SELECT min(o.seq) AS first FROM outbox o \
           WHERE o.task_id = t.task_id AND o.state = 'pending') u \
       CROSS JOIN LATERAL (SELECT e.seq, e.id, e.task_id, e.user_id, e.mapper, e.topic, e.event_type, \
           e.partition_key, b.body, e.traceparent, e.correlation_id, e.attempts, e.first_failed_at, \
           (SELECT o.traceparent FROM outbox o WHERE o.seq = e.outbox_seq) AS mutation_traceparent, \
           octet_length(b.body) AS bytes, \
           row_number() OVER (ORDER BY e.outbox_seq, e.event_index) AS rank \
           FROM envelopes e JOIN envelope_bodies b ON b.seq = e.seq \
           WHERE e.task_id = t.task_id AND e.state = 'pending' \
           AND (u.first IS NULL OR e.outbox_seq < u.first) AND NOT ",
    held_back!(),
    "  ORDER BY e.outbox_seq, e.event_index LIMIT $2) x \
     ) y WHERE running <= $3 OR running = bytes ORDER BY task_id, rank"
);

/// Locks the queue rows of `tasks` held under their tokens, in `task_id` order (the one
/// lock order of `relay_tasks`), and returns those still held: locked, they stay so
/// until the transaction ends, which fences every outcome it records. Run with nested
/// loops off ([`nested_loops`]).
async fn lock_tasks(
    tx: &mut Transaction<'static, Postgres>,
    tasks: &mut [HeldTask],
) -> Result<HashSet<HeldTask>, sqlx::Error> {
    if tasks.is_empty() {
        return Ok(HashSet::new());
    }
    tasks.sort_by_key(|t| t.task_id);
    let (ids, tokens) = columns(tasks.iter().copied());
    let held: Vec<(Uuid, i64)> = per_batch_as(LOCK_TASKS)
        .bind(&ids)
        .bind(&tokens)
        .fetch_all(&mut **tx)
        .await?;
    Ok(held
        .into_iter()
        .map(|(task_id, token)| HeldTask { task_id, token })
        .collect())
}

/// `$1` tasks, `$2` tokens.
pub(super) const LOCK_TASKS: &str = concat!(
    "SELECT t.task_id, t.lock_token FROM relay_tasks t JOIN UNNEST($1::uuid[], $2::int8[]) AS o(task_id, token) \
     ON t.task_id = o.task_id AND t.lock_token = o.token WHERE ",
    batch_of_tasks!(),
    " ORDER BY t.task_id FOR UPDATE OF t"
);

pub(super) async fn record_deliveries(
    pool: &PgPool,
    batch: &DeliveryBatch,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<DeliveriesStored, StoreError> {
    let mut tx = begin(pool).await?;
    // Every task this batch touches, locked first and in one order. An outcome is
    // recorded only for an envelope whose task is still held under the token it was
    // loaded with.
    let mut touched: Vec<HeldTask> = batch
        .deliveries
        .iter()
        .map(|d| d.task)
        .chain(batch.releases.iter().map(|(t, _)| *t))
        .chain(batch.renew.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // The lock, the releases and the renewals join the batch with the queues: nested
    // loops off for them, on for the marks between, which look each envelope up by key.
    if !touched.is_empty() {
        nested_loops(&mut tx, false).await?;
    }
    let held = lock_tasks(&mut tx, &mut touched).await?;
    let mut published = (Vec::new(), Vec::new());
    let mut failed = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut parked = ParkedColumns::default();
    for d in batch.deliveries.iter().filter(|d| held.contains(&d.task)) {
        match &d.delivery {
            Delivery::Published { status } => {
                published.0.push(d.seq);
                published.1.push(status.map(i32::from));
            }
            Delivery::Failed {
                status,
                code,
                error,
            } => {
                failed.0.push(d.seq);
                failed.1.push(status.map(i32::from));
                failed
                    .2
                    .push(storable(error, MAX_STORED_REASON).into_owned());
                failed
                    .3
                    .push(code.as_deref().map(|c| storable(c, 128).into_owned()));
            }
            Delivery::Parked {
                status,
                code,
                reason,
                hold,
            } => {
                parked.seq.push(d.seq);
                parked.status.push(status.map(i32::from));
                parked
                    .reason
                    .push(storable(reason, MAX_STORED_REASON).into_owned());
                parked
                    .code
                    .push(code.as_deref().map(|c| storable(c, 128).into_owned()));
                parked.hold.push(*hold);
                parked.letter.push(Uuid::now_v7());
            }
        }
    }
    let mut stored = DeliveriesStored::default();
    let marks = !published.0.is_empty() || !failed.0.is_empty() || !parked.seq.is_empty();
    if marks {
        nested_loops(&mut tx, true).await?;
    }
    if !published.0.is_empty() {
        per_batch(PUBLISHED_MARK)
            .bind(&published.0)
            .bind(&published.1)
            .bind(now)
            .bind(&batch.relay)
            .execute(&mut *tx)
            .await?;
    }
    if !failed.0.is_empty() {
        per_batch(FAILED_MARK)
            .bind(&failed.0)
            .bind(&failed.1)
            .bind(&failed.2)
            .bind(&failed.3)
            .bind(now)
            .bind(&batch.relay)
            .execute(&mut *tx)
            .await?;
    }
    if !parked.seq.is_empty() {
        let rows: Vec<(Uuid,)> = per_batch_as(PARKED_MARK)
            .bind(&parked.seq)
            .bind(&parked.status)
            .bind(&parked.reason)
            .bind(&parked.code)
            .bind(now)
            .bind(&parked.hold)
            .bind(&parked.letter)
            .bind(&batch.relay)
            .fetch_all(&mut *tx)
            .await?;
        stored.parked = rows.len();
    }
    if marks && (!batch.releases.is_empty() || !batch.renew.is_empty()) {
        nested_loops(&mut tx, false).await?;
    }
    stored.ready_again = release(&mut tx, &batch.releases).await?;
    if !batch.renew.is_empty() {
        let (tasks, tokens) = columns(batch.renew.iter().copied());
        let renewed: Vec<(Uuid,)> = per_batch_as(RENEW_TASKS)
            .bind(&tasks)
            .bind(&tokens)
            .bind(millis(lease))
            .fetch_all(&mut *tx)
            .await?;
        let renewed: HashSet<Uuid> = renewed.into_iter().map(|(id,)| id).collect();
        stored.lost = batch
            .renew
            .iter()
            .filter(|t| !renewed.contains(&t.task_id))
            .copied()
            .collect();
    }
    tx.commit().await?;
    Ok(stored)
}

/// `$1` tasks, `$2` tokens, `$3` lease (ms).
pub(super) const RENEW_TASKS: &str = concat!(
    "UPDATE relay_tasks t SET locked_until = ",
    later!("$3"),
    " FROM UNNEST($1::uuid[], $2::int8[]) AS o(task_id, token) \
     WHERE t.task_id = o.task_id AND t.lock_token = o.token AND ",
    batch_of_tasks!(),
    " RETURNING t.task_id"
);

/// The rows of a delivery batch that a mark updates: the envelopes of `o` still pending
/// (`o` holds only envelopes of tasks `lock_tasks` found still held).
macro_rules! marked_envelopes {
    () => {
        concat!("WHERE e.seq = o.seq AND ", pending_by_key!("e."))
    };
}

/// `$1` seqs, `$2` statuses, `$3` now, `$4` relay.
pub(super) const PUBLISHED_MARK: &str = concat!(
    "UPDATE envelopes e SET state = 'published', attempts = e.attempts + 1, \
     total_attempts = e.total_attempts + 1, delivery_status = o.status, \
     finished_at = $3, last_error = NULL, error_code = NULL, published_by = $4 \
     FROM UNNEST($1::int8[], $2::int4[]) AS o(seq, status) ",
    marked_envelopes!()
);

/// `$1` seqs, `$2` statuses, `$3` errors, `$4` codes, `$5` now, `$6` relay.
pub(super) const FAILED_MARK: &str = concat!(
    "WITH failed AS (UPDATE envelopes e SET attempts = e.attempts + 1, \
         total_attempts = e.total_attempts + 1, delivery_status = o.status, last_error = o.error, \
         error_code = o.code, first_failed_at = COALESCE(e.first_failed_at, $5) \
         FROM UNNEST($1::int8[], $2::int4[], $3::text[], $4::text[]) AS o(seq, status, error, code) ",
    marked_envelopes!(),
    " RETURNING e.id, e.total_attempts, o.status, o.code, o.error) \
     INSERT INTO delivery_attempts (envelope_id, attempt, at, outcome, status, code, error, relay) \
     SELECT id, total_attempts, $5, 'retry', status, code, error, $6 FROM failed"
);

/// `$1` seqs, `$2` statuses, `$3` reasons, `$4` codes, `$5` now, `$6` whether each holds
/// its task, `$7` the letters' ids, `$8` relay.
pub(super) const PARKED_MARK: &str = concat!(
    "WITH parked AS (UPDATE envelopes e SET state = 'dead', attempts = e.attempts + 1, \
         total_attempts = e.total_attempts + 1, delivery_status = o.status, \
         last_error = o.reason, error_code = o.code, finished_at = $5 \
         FROM UNNEST($1::int8[], $2::int4[], $3::text[], $4::text[], $6::bool[], $7::uuid[]) \
             AS o(seq, status, reason, code, hold, letter) ",
    marked_envelopes!(),
    " RETURNING e.mutation_id, e.mapper, e.id, o.reason, e.attempts, e.task_id, e.topic, \
             e.event_type, e.outbox_seq, e.event_index, e.replayed_letter, o.hold, o.letter, \
             e.total_attempts, o.status, o.code), \
     holds AS (INSERT INTO relay_holds (dead_letter_id, task_id, topic, outbox_seq, event_index, created_at) \
         SELECT letter, task_id, topic, outbox_seq, event_index, $5 FROM parked WHERE hold \
         ON CONFLICT DO NOTHING), \
     attempts AS (INSERT INTO delivery_attempts (envelope_id, attempt, at, outcome, status, code, error, relay) \
         SELECT id, total_attempts, $5, 'parked', status, code, reason, $8 FROM parked) \
     INSERT INTO dead_letters (id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at, \
         task_id, topic, event_type, replaces) \
     SELECT letter, mutation_id, 'publish', mapper, id, reason, attempts, $5, task_id, topic, \
         event_type, replayed_letter FROM parked RETURNING id"
);

/// The parked columns of a multi-row update.
#[derive(Default)]
struct ParkedColumns {
    seq: Vec<i64>,
    status: Vec<Option<i32>>,
    reason: Vec<String>,
    code: Vec<Option<String>>,
    hold: Vec<bool>,
    letter: Vec<Uuid>,
}

/// Gives held tasks back (their rows already locked): a drained one's queue row goes
/// when it has no publishable envelope left (none pending, or all held back by holds),
/// else it is ready again after its delay; the others are ready after theirs.
/// Returns how many released tasks were left queued and ready at once.
async fn release(
    tx: &mut Transaction<'static, Postgres>,
    releases: &[(HeldTask, Release)],
) -> Result<usize, sqlx::Error> {
    let mut drained = (Vec::new(), Vec::new());
    let mut later = (Vec::new(), Vec::new(), Vec::new());
    for (task, release) in releases {
        let after = match release {
            Release::Drained { else_after } => {
                drained.0.push(task.task_id);
                drained.1.push(task.token);
                else_after
            }
            Release::After(after) => after,
        };
        later.0.push(task.task_id);
        later.1.push(task.token);
        later.2.push(millis(*after));
    }
    if !drained.0.is_empty() {
        per_batch(RELEASE_DRAINED)
            .bind(&drained.0)
            .bind(&drained.1)
            .execute(&mut **tx)
            .await?;
    }
    if later.0.is_empty() {
        return Ok(0);
    }
    let waits: Vec<(i64,)> = per_batch_as(RELEASE_LATER)
        .bind(&later.0)
        .bind(&later.1)
        .bind(&later.2)
        .fetch_all(&mut **tx)
        .await?;
    Ok(waits.iter().filter(|(ms,)| *ms == 0).count())
}

/// `$1` tasks, `$2` tokens, `$3` each one's delay (ms).
pub(super) const RELEASE_LATER: &str = concat!(
    "UPDATE relay_tasks t SET ready_at = ",
    later!("o.after_ms"),
    ", locked_by = NULL, lock_token = NULL, locked_until = NULL \
     FROM UNNEST($1::uuid[], $2::int8[], $3::int8[]) AS o(task_id, token, after_ms) \
     WHERE t.task_id = o.task_id AND t.lock_token = o.token AND ",
    batch_of_tasks!(),
    " RETURNING o.after_ms"
);

/// The queue rows of drained tasks (`$1` tasks, `$2` tokens) that have no publishable
/// envelope left. `OFFSET 0` keeps the check a subquery run for each of those rows,
/// which can only look up that task's envelopes: as a join, with statistics that call
/// the pending set empty, the planner reads all of it for every task. (Naming the
/// batch's tasks in the check instead, `task_id = ANY($1)`, made each lookup walk the
/// whole array: a release of thousands of tasks ran for minutes.)
pub(super) const RELEASE_DRAINED: &str = concat!(
    "DELETE FROM relay_tasks t USING UNNEST($1::uuid[], $2::int8[]) AS o(task_id, token) \
     WHERE t.task_id = o.task_id AND t.lock_token = o.token AND ",
    batch_of_tasks!(),
    " AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.task_id = t.task_id \
     AND e.state = 'pending' AND NOT ",
    held_back!(),
    " OFFSET 0)"
);

fn columns(tasks: impl Iterator<Item = HeldTask>) -> (Vec<Uuid>, Vec<i64>) {
    tasks.map(|t| (t.task_id, t.token)).unzip()
}
