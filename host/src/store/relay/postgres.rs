//! The relay's batch writes on PostgreSQL: each statement binds arrays (`UNNEST`), so a
//! batch of any size costs a handful of round trips.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{
    DeliveriesStored, Delivery, DeliveryBatch, EnvelopeState, HeldTask, MappedRow, Mapping,
    MappingStored, PendingRow, Release,
};
use crate::domain::text::storable;
use crate::store::{MAX_STORED_REASON, StoreError};

/// A relay transaction: its commit does not wait for the WAL flush (see the module
/// documentation of `store::relay` for why that is safe).
async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

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
    let owned: Vec<(i64,)> = sqlx::query_as(
        "UPDATE outbox SET state = CASE WHEN seq = ANY($2) THEN 'dead' ELSE 'mapped' END, \
         processed_at = $3, locked_by = NULL, locked_until = NULL, lock_token = NULL \
         WHERE seq = ANY($1) AND state = 'pending' AND lock_token = $4 RETURNING seq",
    )
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
            Mapping::Failed { mapper, reason } => {
                stored.dead += 1;
                letters.mutation.push(m.row.id);
                letters.mapper.push(mapper.clone());
                letters
                    .reason
                    .push(storable(reason, MAX_STORED_REASON).into_owned());
            }
        }
    }
    let finished = (envelope_state != EnvelopeState::Pending).then_some(now);
    if !env.id.is_empty() {
        sqlx::query(
            "INSERT INTO envelopes (id, mutation_id, outbox_seq, event_index, task_id, user_id, mapper, \
             topic, event_type, partition_key, body, traceparent, correlation_id, state, attempts, \
             created_at, finished_at) \
             SELECT x.id, x.mutation_id, x.outbox_seq, x.event_index, x.task_id, x.user_id, x.mapper, \
             x.topic, x.event_type, x.partition_key, x.body, x.traceparent, x.correlation_id, $14, 0, $15, $16 \
             FROM UNNEST($1::text[], $2::uuid[], $3::int8[], $4::int4[], $5::uuid[], $6::text[], \
             $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]) \
             AS x(id, mutation_id, outbox_seq, event_index, task_id, user_id, mapper, topic, event_type, \
             partition_key, body, traceparent, correlation_id) \
             ON CONFLICT (id) DO NOTHING",
        )
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
            "INSERT INTO dead_letters (id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at) \
             SELECT gen_random_uuid(), x.mutation_id, 'mapping', x.mapper, NULL, x.reason, 1, $4 \
             FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS x(mutation_id, mapper, reason)",
        )
        .bind(&letters.mutation)
        .bind(&letters.mapper)
        .bind(&letters.reason)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    if envelope_state == EnvelopeState::Pending && !queued.is_empty() {
        // Sorted, so that concurrent transactions lock queue rows in one order.
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
    mutation: Vec<Uuid>,
    mapper: Vec<Option<String>>,
    reason: Vec<String>,
}

pub(super) async fn load_envelopes(
    pool: &PgPool,
    tasks: &[Uuid],
    per_task: i64,
) -> Result<Vec<PendingRow>, StoreError> {
    let rows = sqlx::query_as(
        "SELECT x.* FROM UNNEST($1::uuid[]) AS t(task_id) \
         CROSS JOIN LATERAL (SELECT min(o.seq) AS first FROM outbox o \
             WHERE o.task_id = t.task_id AND o.state = 'pending') u \
         CROSS JOIN LATERAL (SELECT e.seq, e.id, e.task_id, e.user_id, e.mapper, e.topic, e.event_type, \
             e.partition_key, e.body, e.traceparent, e.correlation_id, e.attempts, e.first_failed_at, \
             (SELECT o.traceparent FROM outbox o WHERE o.seq = e.outbox_seq) AS mutation_traceparent \
             FROM envelopes e WHERE e.task_id = t.task_id AND e.state = 'pending' \
             AND (u.first IS NULL OR e.outbox_seq < u.first) \
             ORDER BY e.outbox_seq, e.event_index LIMIT $2) x",
    )
    .bind(tasks)
    .bind(per_task)
    .fetch_all(pool)
    .await?;
    Ok(rows)
}

pub(super) async fn record_deliveries(
    pool: &PgPool,
    batch: &DeliveryBatch,
    now: DateTime<Utc>,
    renew_until: DateTime<Utc>,
) -> Result<DeliveriesStored, StoreError> {
    let mut published = (Vec::new(), Vec::new(), Vec::new());
    let mut failed = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut parked = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for d in &batch.deliveries {
        match &d.delivery {
            Delivery::Published { status } => {
                published.0.push(d.seq);
                published.1.push(status.map(i32::from));
                published.2.push(d.task.token);
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
                failed.4.push(d.task.token);
            }
            Delivery::Parked {
                status,
                code,
                reason,
            } => {
                parked.0.push(d.seq);
                parked.1.push(status.map(i32::from));
                parked
                    .2
                    .push(storable(reason, MAX_STORED_REASON).into_owned());
                parked
                    .3
                    .push(code.as_deref().map(|c| storable(c, 128).into_owned()));
                parked.4.push(d.task.token);
            }
        }
    }
    let mut stored = DeliveriesStored::default();
    let mut tx = begin(pool).await?;
    if !published.0.is_empty() {
        sqlx::query(
            "UPDATE envelopes e SET state = 'published', attempts = e.attempts + 1, delivery_status = o.status, \
             finished_at = $4, last_error = NULL, error_code = NULL \
             FROM UNNEST($1::int8[], $2::int4[], $3::int8[]) AS o(seq, status, token), relay_tasks t \
             WHERE e.seq = o.seq AND e.state = 'pending' AND t.task_id = e.task_id AND t.lock_token = o.token",
        )
        .bind(&published.0)
        .bind(&published.1)
        .bind(&published.2)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    if !failed.0.is_empty() {
        sqlx::query(
            "UPDATE envelopes e SET attempts = e.attempts + 1, delivery_status = o.status, last_error = o.error, \
             error_code = o.code, first_failed_at = COALESCE(e.first_failed_at, $6) \
             FROM UNNEST($1::int8[], $2::int4[], $3::text[], $4::text[], $5::int8[]) \
                 AS o(seq, status, error, code, token), relay_tasks t \
             WHERE e.seq = o.seq AND e.state = 'pending' AND t.task_id = e.task_id AND t.lock_token = o.token",
        )
        .bind(&failed.0)
        .bind(&failed.1)
        .bind(&failed.2)
        .bind(&failed.3)
        .bind(&failed.4)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    if !parked.0.is_empty() {
        stored.parked = sqlx::query(
            "WITH parked AS (UPDATE envelopes e SET state = 'dead', attempts = e.attempts + 1, \
                 delivery_status = o.status, last_error = o.reason, error_code = o.code, finished_at = $6 \
                 FROM UNNEST($1::int8[], $2::int4[], $3::text[], $4::text[], $5::int8[]) \
                     AS o(seq, status, reason, code, token), relay_tasks t \
                 WHERE e.seq = o.seq AND e.state = 'pending' AND t.task_id = e.task_id AND t.lock_token = o.token \
                 RETURNING e.mutation_id, e.mapper, e.id, o.reason, e.attempts) \
             INSERT INTO dead_letters (id, mutation_id, kind, mapper, envelope_id, reason, attempts, created_at) \
             SELECT gen_random_uuid(), mutation_id, 'publish', mapper, id, reason, attempts, $6 FROM parked",
        )
        .bind(&parked.0)
        .bind(&parked.1)
        .bind(&parked.2)
        .bind(&parked.3)
        .bind(&parked.4)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected() as usize;
    }
    release(&mut tx, &batch.releases).await?;
    if !batch.renew.is_empty() {
        let (tasks, tokens) = columns(batch.renew.iter().copied());
        let renewed: Vec<(Uuid,)> = sqlx::query_as(
            "UPDATE relay_tasks t SET locked_until = $3 FROM UNNEST($1::uuid[], $2::int8[]) AS o(task_id, token) \
             WHERE t.task_id = o.task_id AND t.lock_token = o.token RETURNING t.task_id",
        )
        .bind(&tasks)
        .bind(&tokens)
        .bind(renew_until)
        .fetch_all(&mut *tx)
        .await?;
        let renewed: HashSet<Uuid> = renewed.into_iter().map(|(id,)| id).collect();
        stored.lost = tasks.into_iter().filter(|t| !renewed.contains(t)).collect();
    }
    tx.commit().await?;
    Ok(stored)
}

/// Gives held tasks back: a drained one's queue row goes when it has no pending
/// envelope left (checked after locking the row, so an envelope mapped meanwhile is
/// seen), else it is ready at once; the others are ready at their time.
async fn release(
    tx: &mut Transaction<'static, Postgres>,
    releases: &[(HeldTask, Release)],
) -> Result<(), sqlx::Error> {
    let mut drained: Vec<(HeldTask, DateTime<Utc>)> = Vec::new();
    let mut later = (Vec::new(), Vec::new(), Vec::new());
    for (task, release) in releases {
        match release {
            Release::Drained { else_at } => drained.push((*task, *else_at)),
            Release::ReadyAt(at) => {
                later.0.push(task.task_id);
                later.1.push(task.token);
                later.2.push(*at);
            }
        }
    }
    if !drained.is_empty() {
        drained.sort_by_key(|(t, _)| t.task_id);
        let (tasks, tokens) = columns(drained.iter().map(|(t, _)| *t));
        // Lock first: each later statement of this transaction sees what a mapping
        // transaction that held one of these rows committed.
        sqlx::query(
            "SELECT t.task_id FROM relay_tasks t JOIN UNNEST($1::uuid[], $2::int8[]) AS o(task_id, token) \
             ON t.task_id = o.task_id AND t.lock_token = o.token ORDER BY t.task_id FOR UPDATE OF t",
        )
        .bind(&tasks)
        .bind(&tokens)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "DELETE FROM relay_tasks t USING UNNEST($1::uuid[], $2::int8[]) AS o(task_id, token) \
             WHERE t.task_id = o.task_id AND t.lock_token = o.token \
             AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.task_id = t.task_id AND e.state = 'pending')",
        )
        .bind(&tasks)
        .bind(&tokens)
        .execute(&mut **tx)
        .await?;
        later.0.extend(tasks);
        later.1.extend(tokens);
        later.2.extend(drained.iter().map(|(_, at)| *at));
    }
    if !later.0.is_empty() {
        sqlx::query(
            "UPDATE relay_tasks t SET ready_at = o.at, locked_by = NULL, lock_token = NULL, locked_until = NULL \
             FROM UNNEST($1::uuid[], $2::int8[], $3::timestamptz[]) AS o(task_id, token, at) \
             WHERE t.task_id = o.task_id AND t.lock_token = o.token",
        )
        .bind(&later.0)
        .bind(&later.1)
        .bind(&later.2)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn columns(tasks: impl Iterator<Item = HeldTask>) -> (Vec<Uuid>, Vec<i64>) {
    tasks.map(|t| (t.task_id, t.token)).unzip()
}
