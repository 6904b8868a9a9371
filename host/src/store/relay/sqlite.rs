//! The relay's claims and batch writes on SQLite, in one write transaction each, timed
//! by the one process's clock. There are no network round trips to save, but every
//! statement is a hand-off to sqlx's SQLite worker thread and back (two context
//! switches), so the common paths write a whole batch in a few multi-row statements
//! (`VALUES` lists, at most [`ROWS_PER_STATEMENT`] rows each): the outbox rows a batch
//! maps, its envelopes and queue rows, the envelopes it published, the queues it gives
//! back, the leases it renews. Rarer outcomes (a failed or parked publish, a mapping
//! failure) stay per row. Every write goes through the one writer connection, so the
//! transactions are serial and the lock order of `relay_tasks` cannot matter.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;
use uuid::fmt::Hyphenated;

use super::after;
use super::{
    DeliveriesStored, Delivery, DeliveryBatch, DeliveryRecord, EnvelopeState, HeldTask, MappedRow,
    Mapping, MappingStored, NewEnvelope, PendingRow, Release, held_back, insert_envelopes,
};
use crate::domain::task::now;
use crate::domain::text::storable;
use crate::store::{MAX_STORED_REASON, OutboxRow, StoreError, WritePool};

pub(super) async fn claim_mutations(
    pool: &SqlitePool,
    owner: &str,
    token: i64,
    lease: Duration,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    let now = now();
    let rows = sqlx::query_as(
        "UPDATE outbox SET locked_by = $1, locked_until = $2, lock_token = $5 WHERE seq IN (\
         SELECT seq FROM outbox WHERE state = 'pending' AND (locked_until IS NULL OR locked_until < $3) \
         ORDER BY seq LIMIT $4) \
         RETURNING seq, id, task_id, user_id, action, mutation, traceparent, created_at",
    )
    .bind(owner)
    .bind(after(now, lease))
    .bind(now)
    .bind(limit)
    .bind(token)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

pub(super) async fn renew_mutations(
    pool: &SqlitePool,
    seqs: &[i64],
    token: i64,
    lease: Duration,
) -> Result<usize, StoreError> {
    let until = after(now(), lease);
    let mut tx = pool.begin_write().await?;
    let mut renewed = 0;
    for seq in seqs {
        renewed += sqlx::query(
            "UPDATE outbox SET locked_until = $1 WHERE seq = $2 AND lock_token = $3 AND state = 'pending'",
        )
        .bind(until)
        .bind(*seq)
        .bind(token)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(renewed as usize)
}

/// One write transaction for the whole list: a single hand-off to the writer.
pub(super) async fn release_mutations(
    pool: &SqlitePool,
    seqs: &[i64],
    token: i64,
) -> Result<(), StoreError> {
    let mut tx = pool.begin_write().await?;
    for seq in seqs {
        sqlx::query(
            "UPDATE outbox SET locked_by = NULL, locked_until = NULL, lock_token = NULL \
             WHERE seq = $1 AND lock_token = $2 AND state = 'pending'",
        )
        .bind(*seq)
        .bind(token)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn claim_tasks(
    pool: &SqlitePool,
    owner: &str,
    token: i64,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Uuid>, StoreError> {
    let now = now();
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "UPDATE relay_tasks SET locked_by = $1, locked_until = $2, lock_token = $5 WHERE task_id IN (\
         SELECT task_id FROM relay_tasks WHERE ready_at <= $3 \
         AND (locked_until IS NULL OR locked_until < $3) ORDER BY ready_at LIMIT $4) RETURNING task_id",
    )
    .bind(owner)
    .bind(after(now, lease))
    .bind(now)
    .bind(limit)
    .bind(token)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Most rows in one multi-row statement: SQLite binds at most 32,766 parameters, and an
/// envelope takes 16.
const ROWS_PER_STATEMENT: usize = 1_000;

pub(super) async fn record_mappings(
    pool: &SqlitePool,
    token: i64,
    batch: &[MappedRow<'_>],
    envelope_state: EnvelopeState,
    now: DateTime<Utc>,
) -> Result<MappingStored, StoreError> {
    let mut stored = MappingStored::default();
    let mut tx = pool.begin_write().await?;
    // The rows still leased under `token` are this batch's to record. (Every statement
    // here finds its rows through a key: `seq IN (…)`, `task_id IN (…)`.)
    let mut owned = std::collections::HashSet::new();
    for chunk in batch.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE outbox SET state = CASE WHEN seq IN (");
        let mut dead = q.separated(", ");
        dead.push("NULL");
        for m in chunk {
            if matches!(m.mapping, Mapping::Failed { .. }) {
                dead.push_bind(m.row.seq);
            }
        }
        q.push(") THEN 'dead' ELSE 'mapped' END, processed_at = ");
        q.push_bind(now);
        q.push(", locked_by = NULL, locked_until = NULL, lock_token = NULL WHERE seq IN (");
        let mut all = q.separated(", ");
        for m in chunk {
            all.push_bind(m.row.seq);
        }
        q.push(") AND state = 'pending' AND lock_token = ");
        q.push_bind(token);
        q.push(" RETURNING seq");
        let seqs: Vec<(i64,)> = q.build_query_as().fetch_all(&mut *tx).await?;
        owned.extend(seqs.into_iter().map(|(seq,)| seq));
    }
    let mut envelopes = Vec::new();
    let mut queued = BTreeSet::new();
    for m in batch {
        if !owned.contains(&m.row.seq) {
            stored.lost += 1;
            continue;
        }
        match &m.mapping {
            Mapping::Mapped(mapped) => {
                stored.mapped += 1;
                stored.envelopes += mapped.len();
                envelopes.extend(mapped.iter().map(|e| (m, e)));
                if !mapped.is_empty() {
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
                let letter = Uuid::now_v7();
                sqlx::query(
                    "INSERT INTO dead_letters (id, mutation_id, kind, mapper, envelope_id, reason, attempts, \
                     created_at, task_id) VALUES ($1, $2, 'mapping', $3, NULL, $4, 1, $5, $6)",
                )
                .bind(letter)
                .bind(m.row.id)
                .bind(mapper)
                .bind(storable(reason, MAX_STORED_REASON))
                .bind(now)
                .bind(m.row.task_id)
                .execute(&mut *tx)
                .await?;
                for topic in hold {
                    sqlx::query(
                        "INSERT INTO relay_holds (dead_letter_id, task_id, topic, outbox_seq, event_index, \
                         created_at) VALUES ($1, $2, $3, $4, -1, $5) ON CONFLICT DO NOTHING",
                    )
                    .bind(letter)
                    .bind(m.row.task_id)
                    .bind(topic)
                    .bind(m.row.seq)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
    }
    insert_envelopes(&mut tx, &envelopes, envelope_state, now).await?;
    if envelope_state == EnvelopeState::Pending {
        let queued: Vec<Uuid> = queued.into_iter().collect();
        queue_tasks(&mut tx, &queued, now).await?;
    }
    tx.commit().await?;
    Ok(stored)
}

/// Inserts the envelopes of mapped rows, in multi-row statements (an id already stored
/// is left as it is, like the per-row insert the other paths use), then the bodies of
/// those stored, under the `seq` each got.
async fn insert_envelopes(
    tx: &mut Transaction<'static, Sqlite>,
    envelopes: &[(&MappedRow<'_>, &NewEnvelope)],
    state: EnvelopeState,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let finished = (state != EnvelopeState::Pending).then_some(now);
    for chunk in envelopes.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(insert_envelopes!());
        q.push_values(chunk, |mut b, (m, e)| {
            b.push_bind(e.id.to_string())
                .push_bind(m.row.id)
                .push_bind(m.row.seq)
                .push_bind(e.event_index)
                .push_bind(m.row.task_id)
                .push_bind(m.row.user_id.as_str())
                .push_bind(e.mapper.as_str())
                .push_bind(e.topic.as_str())
                .push_bind(e.event_type.as_str())
                .push_bind(e.partition_key.as_str())
                .push_bind(e.traceparent.as_str())
                .push_bind(m.correlation_id.as_str())
                .push_bind(state.as_str())
                .push_bind(0_i32)
                .push_bind(now)
                .push_bind(finished);
        });
        q.push(" ON CONFLICT (id) DO NOTHING RETURNING seq, id");
        // SQLite returns the stored rows in no promised order: matched back by id.
        let stored: HashMap<Uuid, i64> = q
            .build_query_as::<(i64, Hyphenated)>()
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|(seq, id)| (id.into_uuid(), seq))
            .collect();
        if stored.is_empty() {
            continue;
        }
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO envelope_bodies (seq, body) ");
        q.push_values(
            chunk
                .iter()
                .filter_map(|(_, e)| Some((*stored.get(&e.id)?, e.body.as_str()))),
            |mut b, (seq, body)| {
                b.push_bind(seq).push_bind(body);
            },
        );
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Queues `tasks` for publishing (a task already queued keeps its place).
async fn queue_tasks(
    tx: &mut Transaction<'static, Sqlite>,
    tasks: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for chunk in tasks.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO relay_tasks (task_id, ready_at) ");
        q.push_values(chunk, |mut b, task| {
            b.push_bind(*task).push_bind(now);
        });
        q.push(" ON CONFLICT (task_id) DO UPDATE SET ready_at = relay_tasks.ready_at");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Tasks whose envelopes one statement loads: small enough that the byte budget, applied
/// between statements, still stops the reads soon after it is spent.
const LOAD_TASKS_PER_STATEMENT: usize = 64;

pub(super) async fn load_envelopes(
    pool: &SqlitePool,
    tasks: &[Uuid],
    per_task: i64,
    budget: i64,
) -> Result<Vec<PendingRow>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut taken = Taken::new(budget);
    // One statement per chunk of tasks rather than one per task: each statement is a
    // round trip to the connection's worker thread, which cost more than the reads.
    // The chunk's tasks come back in the order given (`r.ord`), each task's queue in
    // its order and cut at `per_task`.
    for chunk in tasks.chunks(LOAD_TASKS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("WITH r(task_id, ord) AS (");
        q.push_values(chunk.iter().zip(0_i64..), |mut b, (task, ord)| {
            b.push_bind(task).push_bind(ord);
        });
        // Each task's queue is cut inside the statement by its own `LIMIT` on the
        // `envelopes_pending_task` index, so a task with a long backlog costs its first
        // rows, not its whole queue (a window function would read it all).
        q.push(concat!(
            ") SELECT e.seq, e.id, e.task_id, e.user_id, e.mapper, e.topic, e.event_type, \
             e.partition_key, b.body, e.traceparent, e.correlation_id, e.attempts, e.first_failed_at, \
             (SELECT o.traceparent FROM outbox o WHERE o.seq = e.outbox_seq) AS mutation_traceparent \
             FROM r JOIN envelopes e ON e.seq IN (SELECT e.seq FROM envelopes e \
             WHERE e.task_id = r.task_id AND e.state = 'pending' \
             AND e.outbox_seq < COALESCE((SELECT min(o.seq) FROM outbox o \
                 WHERE o.task_id = r.task_id AND o.state = 'pending'), 9223372036854775807) AND NOT ",
            held_back!(),
            " ORDER BY e.outbox_seq, e.event_index LIMIT "
        ));
        q.push_bind(per_task);
        q.push(
            ") JOIN envelope_bodies b ON b.seq = e.seq ORDER BY r.ord, e.outbox_seq, e.event_index",
        );
        let rows: Vec<PendingRow> = q.build_query_as().fetch_all(&mut *conn).await?;
        // Budget per task, in the order given, as the relay keeps them.
        let mut queues = rows.into_iter().peekable();
        while let Some(first) = queues.next() {
            let task = first.task_id;
            let mut queue = vec![first];
            while let Some(next) = queues.next_if(|r| r.task_id == task) {
                queue.push(next);
            }
            if !taken.take(queue) {
                return Ok(taken.rows);
            }
        }
    }
    Ok(taken.rows)
}

/// Rows taken in order while their bodies stay within a budget (in process, a task's
/// rows are read whole anyway; the budget bounds what the relay keeps).
struct Taken {
    rows: Vec<PendingRow>,
    left: i64,
}

impl Taken {
    fn new(budget: i64) -> Self {
        Self {
            rows: Vec::new(),
            left: budget,
        }
    }

    /// Takes rows of one task's queue, in order, while the budget lasts (the very first
    /// row whatever its size); whether there is budget left for the next task.
    fn take(&mut self, queue: Vec<PendingRow>) -> bool {
        for row in queue {
            let bytes = i64::try_from(row.body.len()).unwrap_or(i64::MAX);
            if !self.rows.is_empty() && bytes > self.left {
                self.left = 0;
                return false;
            }
            self.left -= bytes;
            self.rows.push(row);
        }
        self.left > 0
    }
}

pub(super) async fn record_deliveries(
    pool: &SqlitePool,
    batch: &DeliveryBatch,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<DeliveriesStored, StoreError> {
    let mut stored = DeliveriesStored::default();
    let mut tx = pool.begin_write().await?;
    // Outcomes are stored in order; each run of publishes goes in one statement.
    let mut published: Vec<&DeliveryRecord> = Vec::new();
    for d in &batch.deliveries {
        if matches!(d.delivery, Delivery::Published { .. }) {
            published.push(d);
            continue;
        }
        mark_published(&mut tx, &std::mem::take(&mut published), &batch.relay, now).await?;
        match &d.delivery {
            // Gathered above.
            Delivery::Published { .. } => {}
            Delivery::Failed {
                status,
                code,
                error,
            } => {
                let error = storable(error, MAX_STORED_REASON);
                let code = code.as_deref().map(|c| storable(c, 128));
                let failed: Option<(String, i32)> = sqlx::query_as(
                    "UPDATE envelopes SET attempts = attempts + 1, total_attempts = total_attempts + 1, \
                     delivery_status = $1, last_error = $2, \
                     error_code = $3, first_failed_at = COALESCE(first_failed_at, $4) \
                     WHERE seq = $5 AND state = 'pending' AND EXISTS (SELECT 1 FROM relay_tasks t \
                     WHERE t.task_id = envelopes.task_id AND t.lock_token = $6) RETURNING id, total_attempts",
                )
                .bind(status.map(i32::from))
                .bind(&error)
                .bind(&code)
                .bind(now)
                .bind(d.seq)
                .bind(d.task.token)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((envelope, attempt)) = failed {
                    let attempt = Attempt {
                        envelope: &envelope,
                        attempt,
                        outcome: "retry",
                        status: *status,
                        code: code.as_deref(),
                        error: &error,
                    };
                    record_attempt(&mut tx, &attempt, &batch.relay, now).await?;
                }
            }
            Delivery::Parked {
                status,
                code,
                reason,
                hold,
            } => {
                let parked = Parked {
                    seq: d.seq,
                    task: d.task,
                    status: *status,
                    code: code.as_deref(),
                    reason,
                    hold: *hold,
                };
                if park(&mut tx, &parked, &batch.relay, now).await? {
                    stored.parked += 1;
                }
            }
        }
    }
    mark_published(&mut tx, &published, &batch.relay, now).await?;
    stored.ready_again = release(&mut tx, &batch.releases).await?;
    stored.lost = renew(&mut tx, &batch.renew, lease).await?;
    tx.commit().await?;
    Ok(stored)
}

/// Marks the envelopes of `published` published, in multi-row statements (one per status
/// the publisher answered with, as a rule one), each envelope only if its task is still
/// leased under the token the delivery carries.
///
/// The lease check is one uncorrelated subquery, the deliveries joined to their tasks by
/// key (`d` first: `CROSS JOIN` keeps SQLite from scanning `relay_tasks`), whose rows
/// SQLite indexes once; an `EXISTS` or a scalar subquery per envelope would scan the whole
/// `VALUES` list for each one (`d` has no index), and a statement of 512 outcomes cost
/// three to four times what its rows do (BENCHMARKS.md).
async fn mark_published(
    tx: &mut Transaction<'static, Sqlite>,
    published: &[&DeliveryRecord],
    relay: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut by_status: BTreeMap<Option<i32>, Vec<&DeliveryRecord>> = BTreeMap::new();
    for d in published {
        let status = match d.delivery {
            Delivery::Published { status } => status.map(i32::from),
            _ => None,
        };
        by_status.entry(status).or_default().push(d);
    }
    for (status, records) in &by_status {
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new("WITH d(seq, task_id, token) AS (");
            q.push_values(chunk, |mut b, d| {
                b.push_bind(d.seq)
                    .push_bind(d.task.task_id)
                    .push_bind(d.task.token);
            });
            q.push(
                ") UPDATE envelopes SET state = 'published', attempts = attempts + 1, \
                 total_attempts = total_attempts + 1, delivery_status = ",
            );
            q.push_bind(*status);
            q.push(", finished_at = ");
            q.push_bind(now);
            q.push(", last_error = NULL, error_code = NULL, published_by = ");
            q.push_bind(relay);
            q.push(
                " WHERE state = 'pending' AND (seq, task_id) IN (SELECT d.seq, d.task_id FROM d \
                 CROSS JOIN relay_tasks t ON t.task_id = d.task_id AND t.lock_token = d.token)",
            );
            q.build().execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// Extends the leases of `tasks` (each under its own token); returns those whose lease
/// another relay now holds.
async fn renew(
    tx: &mut Transaction<'static, Sqlite>,
    tasks: &[HeldTask],
    lease: Duration,
) -> Result<Vec<HeldTask>, sqlx::Error> {
    let until = after(now(), lease);
    let mut renewed = std::collections::HashSet::new();
    for chunk in tasks.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("WITH r(task_id, token) AS (");
        q.push_values(chunk, |mut b, t| {
            b.push_bind(t.task_id).push_bind(t.token);
        });
        q.push(") UPDATE relay_tasks SET locked_until = ");
        q.push_bind(until);
        q.push(
            " WHERE task_id IN (SELECT task_id FROM r) AND EXISTS (SELECT 1 FROM r \
             WHERE r.task_id = relay_tasks.task_id AND r.token = relay_tasks.lock_token) \
             RETURNING task_id",
        );
        let rows: Vec<(Uuid,)> = q.build_query_as().fetch_all(&mut **tx).await?;
        renewed.extend(rows.into_iter().map(|(task,)| task));
    }
    Ok(tasks
        .iter()
        .filter(|t| !renewed.contains(&t.task_id))
        .copied()
        .collect())
}

/// An envelope to park.
struct Parked<'a> {
    seq: i64,
    task: HeldTask,
    status: Option<u16>,
    code: Option<&'a str>,
    reason: &'a str,
    hold: bool,
}

/// A failed attempt, for the delivery history.
struct Attempt<'a> {
    envelope: &'a str,
    attempt: i32,
    outcome: &'static str,
    status: Option<u16>,
    code: Option<&'a str>,
    error: &'a str,
}

async fn record_attempt(
    tx: &mut Transaction<'static, Sqlite>,
    a: &Attempt<'_>,
    relay: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO delivery_attempts (envelope_id, attempt, at, outcome, status, code, error, relay) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.envelope)
    .bind(a.attempt)
    .bind(now)
    .bind(a.outcome)
    .bind(a.status.map(i32::from))
    .bind(a.code)
    .bind(a.error)
    .bind(relay)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Parks `p`'s envelope (if still leased under its task's token) as a dead letter,
/// holding its task on its topic when asked; whether it did.
async fn park(
    tx: &mut Transaction<'static, Sqlite>,
    p: &Parked<'_>,
    relay: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let reason = storable(p.reason, MAX_STORED_REASON);
    let code = p.code.map(|c| storable(c, 128));
    type Row = (
        Uuid,
        String,
        String,
        i32,
        Uuid,
        String,
        String,
        i64,
        i32,
        Option<Uuid>,
        i32,
    );
    let row: Option<Row> = sqlx::query_as(
        "UPDATE envelopes SET state = 'dead', attempts = attempts + 1, total_attempts = total_attempts + 1, \
         delivery_status = $1, last_error = $2, error_code = $3, finished_at = $4 \
         WHERE seq = $5 AND state = 'pending' AND EXISTS (SELECT 1 FROM relay_tasks t \
         WHERE t.task_id = envelopes.task_id AND t.lock_token = $6) \
         RETURNING mutation_id, mapper, id, attempts, task_id, topic, event_type, outbox_seq, event_index, \
         replayed_letter, total_attempts",
    )
    .bind(p.status.map(i32::from))
    .bind(&reason)
    .bind(&code)
    .bind(now)
    .bind(p.seq)
    .bind(p.task.token)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((
        mutation_id,
        mapper,
        envelope_id,
        attempts,
        task_id,
        topic,
        event_type,
        outbox_seq,
        event_index,
        replaces,
        total,
    )) = row
    else {
        return Ok(false);
    };
    let attempt = Attempt {
        envelope: &envelope_id,
        attempt: total,
        outcome: "parked",
        status: p.status,
        code: code.as_deref(),
        error: &reason,
    };
    record_attempt(tx, &attempt, relay, now).await?;
    let letter = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO dead_letters (id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at, \
         task_id, topic, event_type, replaces) VALUES ($1, $2, 'publish', $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(letter)
    .bind(mutation_id)
    .bind(mapper)
    .bind(&envelope_id)
    .bind(&reason)
    .bind(attempts)
    .bind(now)
    .bind(task_id)
    .bind(&topic)
    .bind(event_type)
    .bind(replaces)
    .execute(&mut **tx)
    .await?;
    if p.hold {
        sqlx::query(
            "INSERT INTO relay_holds (dead_letter_id, task_id, topic, outbox_seq, event_index, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(letter)
        .bind(task_id)
        .bind(&topic)
        .bind(outbox_seq)
        .bind(event_index)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(true)
}

/// Gives held tasks back (see the PostgreSQL version; SQLite's single writer makes the
/// check-then-delete safe without row locks). The drained queues with nothing left to
/// publish go in one statement; the others are made ready again after their wait.
/// Returns how many were made ready at once.
async fn release(
    tx: &mut Transaction<'static, Sqlite>,
    releases: &[(HeldTask, Release)],
) -> Result<usize, sqlx::Error> {
    let now = now();
    let drained: Vec<&HeldTask> = releases
        .iter()
        .filter(|(_, r)| matches!(r, Release::Drained { .. }))
        .map(|(t, _)| t)
        .collect();
    let mut gone = std::collections::HashSet::new();
    for chunk in drained.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("WITH r(task_id, token) AS (");
        q.push_values(chunk, |mut b, t| {
            b.push_bind(t.task_id).push_bind(t.token);
        });
        q.push(concat!(
            ") DELETE FROM relay_tasks WHERE task_id IN (SELECT task_id FROM r) \
             AND EXISTS (SELECT 1 FROM r \
             WHERE r.task_id = relay_tasks.task_id AND r.token = relay_tasks.lock_token) \
             AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.task_id = relay_tasks.task_id \
             AND e.state = 'pending' AND NOT ",
            held_back!(),
            ") RETURNING task_id"
        ));
        let rows: Vec<(Uuid,)> = q.build_query_as().fetch_all(&mut **tx).await?;
        gone.extend(rows.into_iter().map(|(task,)| task));
    }
    let mut ready_again = 0;
    for (task, release) in releases {
        let wait = match release {
            Release::Drained { .. } if gone.contains(&task.task_id) => continue,
            Release::Drained { else_after } => *else_after,
            Release::After(wait) => *wait,
        };
        let released = sqlx::query(
            "UPDATE relay_tasks SET ready_at = $1, locked_by = NULL, lock_token = NULL, locked_until = NULL \
             WHERE task_id = $2 AND lock_token = $3",
        )
        .bind(after(now, wait))
        .bind(task.task_id)
        .bind(task.token)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if released > 0 && wait.is_zero() {
            ready_again += 1;
        }
    }
    Ok(ready_again)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(task: u128, seq: i64) -> PendingRow {
        PendingRow {
            seq,
            id: String::new(),
            task_id: Uuid::from_u128(task),
            user_id: String::new(),
            mapper: String::new(),
            topic: String::new(),
            event_type: String::new(),
            partition_key: String::new(),
            body: String::new(),
            traceparent: None,
            mutation_traceparent: None,
            correlation_id: String::new(),
            attempts: 0,
            first_failed_at: None,
        }
    }

    #[test]
    fn the_budget_bounds_what_is_taken_and_the_first_row_always_goes() {
        let body = |seq| PendingRow {
            body: "x".repeat(10),
            ..row(1, seq)
        };
        let seqs = |t: &Taken| t.rows.iter().map(|r| r.seq).collect::<Vec<_>>();
        let mut plenty = Taken::new(1_000);
        assert!(plenty.take(vec![body(1), body(2)]));
        assert!(plenty.take(vec![body(3)]));
        assert_eq!(seqs(&plenty), [1, 2, 3]);
        let mut tight = Taken::new(25);
        assert!(tight.take(vec![body(1), body(2)]), "5 bytes left");
        assert!(!tight.take(vec![body(3)]), "the next row does not fit");
        assert_eq!(seqs(&tight), [1, 2]);
        let mut tiny = Taken::new(5);
        assert!(!tiny.take(vec![body(1), body(2)]));
        assert_eq!(seqs(&tiny), [1], "the first row always goes");
    }
}
