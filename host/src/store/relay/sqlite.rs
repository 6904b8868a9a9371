//! The relay's claims and batch writes on SQLite: in-process, so a batch is per-row
//! statements in one write transaction (no round trips to save), and the one process's
//! clock times the leases. Every write goes through the one writer connection, so the
//! transactions are serial and the lock order of `relay_tasks` cannot matter.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use super::after;
use super::{
    DeliveriesStored, Delivery, DeliveryBatch, EnvelopeState, HeldTask, MappedRow, Mapping,
    MappingStored, PendingRow, Release, held_back, insert_envelope, queue_tasks,
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

pub(super) async fn record_mappings(
    pool: &SqlitePool,
    token: i64,
    batch: &[MappedRow<'_>],
    envelope_state: EnvelopeState,
    now: DateTime<Utc>,
) -> Result<MappingStored, StoreError> {
    let mut stored = MappingStored::default();
    let mut queued = BTreeSet::new();
    let mut tx = pool.begin_write().await?;
    for m in batch {
        let state = match m.mapping {
            Mapping::Mapped(_) => "mapped",
            Mapping::Failed { .. } => "dead",
        };
        let owned = sqlx::query(
            "UPDATE outbox SET state = $1, processed_at = $2, locked_by = NULL, locked_until = NULL, \
             lock_token = NULL WHERE seq = $3 AND state = 'pending' AND lock_token = $4",
        )
        .bind(state)
        .bind(now)
        .bind(m.row.seq)
        .bind(token)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if owned != 1 {
            stored.lost += 1;
            continue;
        }
        match &m.mapping {
            Mapping::Mapped(envelopes) => {
                stored.mapped += 1;
                stored.envelopes += envelopes.len();
                for e in envelopes {
                    insert_envelope(&mut *tx, m.row, &m.correlation_id, e, envelope_state, now)
                        .await?;
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
                let letter = Uuid::new_v4();
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
    if envelope_state == EnvelopeState::Pending {
        let queued: Vec<Uuid> = queued.into_iter().collect();
        queue_tasks(&mut *tx, &queued, now).await?;
    }
    tx.commit().await?;
    Ok(stored)
}

pub(super) async fn load_envelopes(
    pool: &SqlitePool,
    tasks: &[Uuid],
    per_task: i64,
    budget: i64,
) -> Result<Vec<PendingRow>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut taken = Taken::new(budget);
    for task in tasks {
        let rows: Vec<PendingRow> = sqlx::query_as(concat!(
            "SELECT e.seq, e.id, e.task_id, e.user_id, e.mapper, e.topic, e.event_type, e.partition_key, \
             e.body, e.traceparent, e.correlation_id, e.attempts, e.first_failed_at, \
             (SELECT o.traceparent FROM outbox o WHERE o.seq = e.outbox_seq) AS mutation_traceparent \
             FROM envelopes e WHERE e.task_id = $1 AND e.state = 'pending' \
             AND e.outbox_seq < COALESCE((SELECT min(o.seq) FROM outbox o \
                 WHERE o.task_id = $1 AND o.state = 'pending'), 9223372036854775807) AND NOT ",
            held_back!(),
            " ORDER BY e.outbox_seq, e.event_index LIMIT $2"
        ))
        .bind(task)
        .bind(per_task)
        .fetch_all(&mut *conn)
        .await?;
        if !taken.take(rows) {
            break;
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
    for d in &batch.deliveries {
        match &d.delivery {
            Delivery::Published { status } => {
                sqlx::query(
                    "UPDATE envelopes SET state = 'published', attempts = attempts + 1, \
                     total_attempts = total_attempts + 1, delivery_status = $1, \
                     finished_at = $2, last_error = NULL, error_code = NULL, published_by = $5 \
                     WHERE seq = $3 AND state = 'pending' AND EXISTS (SELECT 1 FROM relay_tasks t \
                     WHERE t.task_id = envelopes.task_id AND t.lock_token = $4)",
                )
                .bind(status.map(i32::from))
                .bind(now)
                .bind(d.seq)
                .bind(d.task.token)
                .bind(&batch.relay)
                .execute(&mut *tx)
                .await?;
            }
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
    release(&mut tx, &batch.releases).await?;
    let until = after(crate::domain::task::now(), lease);
    for task in &batch.renew {
        let renewed = sqlx::query(
            "UPDATE relay_tasks SET locked_until = $1 WHERE task_id = $2 AND lock_token = $3",
        )
        .bind(until)
        .bind(task.task_id)
        .bind(task.token)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if renewed == 0 {
            stored.lost.push(*task);
        }
    }
    tx.commit().await?;
    Ok(stored)
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
    let letter = Uuid::new_v4();
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
/// check-then-delete safe without row locks).
async fn release(
    tx: &mut Transaction<'static, Sqlite>,
    releases: &[(HeldTask, Release)],
) -> Result<(), sqlx::Error> {
    let now = now();
    for (task, release) in releases {
        let wait = match release {
            Release::Drained { else_after } => {
                let gone = sqlx::query(concat!(
                    "DELETE FROM relay_tasks WHERE task_id = $1 AND lock_token = $2 \
                     AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.task_id = $1 AND e.state = 'pending' \
                     AND NOT ",
                    held_back!(),
                    ")"
                ))
                .bind(task.task_id)
                .bind(task.token)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if gone == 1 {
                    continue;
                }
                *else_after
            }
            Release::After(wait) => *wait,
        };
        sqlx::query(
            "UPDATE relay_tasks SET ready_at = $1, locked_by = NULL, lock_token = NULL, locked_until = NULL \
             WHERE task_id = $2 AND lock_token = $3",
        )
        .bind(after(now, wait))
        .bind(task.task_id)
        .bind(task.token)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
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
