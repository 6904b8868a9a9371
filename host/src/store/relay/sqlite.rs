//! The relay's batch writes on SQLite: in-process, so a batch is per-row statements in
//! one write transaction (no round trips to save).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use super::{
    DeliveriesStored, Delivery, DeliveryBatch, EnvelopeState, HeldTask, MappedRow, Mapping,
    MappingStored, PendingRow, Release, insert_envelope, queue_tasks,
};
use crate::domain::text::storable;
use crate::store::{MAX_STORED_REASON, StoreError, WritePool};

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
            Mapping::Failed { mapper, reason } => {
                stored.dead += 1;
                sqlx::query(
                    "INSERT INTO dead_letters (id, mutation_id, kind, mapper, envelope_id, reason, attempts, \
                     created_at) VALUES ($1, $2, 'mapping', $3, NULL, $4, 1, $5)",
                )
                .bind(Uuid::new_v4())
                .bind(m.row.id)
                .bind(mapper)
                .bind(storable(reason, MAX_STORED_REASON))
                .bind(now)
                .execute(&mut *tx)
                .await?;
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
) -> Result<Vec<PendingRow>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut all = Vec::new();
    for task in tasks {
        let rows: Vec<PendingRow> = sqlx::query_as(
            "SELECT e.seq, e.id, e.task_id, e.user_id, e.mapper, e.topic, e.event_type, e.partition_key, \
             e.body, e.traceparent, e.correlation_id, e.attempts, e.first_failed_at, \
             (SELECT o.traceparent FROM outbox o WHERE o.seq = e.outbox_seq) AS mutation_traceparent \
             FROM envelopes e WHERE e.task_id = $1 AND e.state = 'pending' \
             AND e.outbox_seq < COALESCE((SELECT min(o.seq) FROM outbox o \
                 WHERE o.task_id = $1 AND o.state = 'pending'), 9223372036854775807) \
             ORDER BY e.outbox_seq, e.event_index LIMIT $2",
        )
        .bind(task)
        .bind(per_task)
        .fetch_all(&mut *conn)
        .await?;
        all.extend(rows);
    }
    Ok(all)
}

pub(super) async fn record_deliveries(
    pool: &SqlitePool,
    batch: &DeliveryBatch,
    now: DateTime<Utc>,
    renew_until: DateTime<Utc>,
) -> Result<DeliveriesStored, StoreError> {
    let mut stored = DeliveriesStored::default();
    let mut tx = pool.begin_write().await?;
    for d in &batch.deliveries {
        match &d.delivery {
            Delivery::Published { status } => {
                sqlx::query(
                    "UPDATE envelopes SET state = 'published', attempts = attempts + 1, delivery_status = $1, \
                     finished_at = $2, last_error = NULL, error_code = NULL \
                     WHERE seq = $3 AND state = 'pending' AND EXISTS (SELECT 1 FROM relay_tasks t \
                     WHERE t.task_id = envelopes.task_id AND t.lock_token = $4)",
                )
                .bind(status.map(i32::from))
                .bind(now)
                .bind(d.seq)
                .bind(d.task.token)
                .execute(&mut *tx)
                .await?;
            }
            Delivery::Failed {
                status,
                code,
                error,
            } => {
                sqlx::query(
                    "UPDATE envelopes SET attempts = attempts + 1, delivery_status = $1, last_error = $2, \
                     error_code = $3, first_failed_at = COALESCE(first_failed_at, $4) \
                     WHERE seq = $5 AND state = 'pending' AND EXISTS (SELECT 1 FROM relay_tasks t \
                     WHERE t.task_id = envelopes.task_id AND t.lock_token = $6)",
                )
                .bind(status.map(i32::from))
                .bind(storable(error, MAX_STORED_REASON))
                .bind(code.as_deref().map(|c| storable(c, 128)))
                .bind(now)
                .bind(d.seq)
                .bind(d.task.token)
                .execute(&mut *tx)
                .await?;
            }
            Delivery::Parked {
                status,
                code,
                reason,
            } => {
                let reason = storable(reason, MAX_STORED_REASON);
                let row: Option<(Uuid, String, String, i32)> =
                    sqlx::query_as(
                        "UPDATE envelopes SET state = 'dead', attempts = attempts + 1, delivery_status = $1, \
                         last_error = $2, error_code = $3, finished_at = $4 \
                         WHERE seq = $5 AND state = 'pending' AND EXISTS (SELECT 1 FROM relay_tasks t \
                         WHERE t.task_id = envelopes.task_id AND t.lock_token = $6) \
                         RETURNING mutation_id, mapper, id, attempts",
                    )
                    .bind(status.map(i32::from))
                    .bind(&reason)
                    .bind(code.as_deref().map(|c| storable(c, 128)))
                    .bind(now)
                    .bind(d.seq)
                    .bind(d.task.token)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some((mutation_id, mapper, envelope_id, attempts)) = row {
                    sqlx::query(
                        "INSERT INTO dead_letters (id, mutation_id, kind, mapper, envelope_id, reason, \
                         attempts, created_at) VALUES ($1, $2, 'publish', $3, $4, $5, $6, $7)",
                    )
                    .bind(Uuid::new_v4())
                    .bind(mutation_id)
                    .bind(mapper)
                    .bind(envelope_id)
                    .bind(&reason)
                    .bind(attempts)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    stored.parked += 1;
                }
            }
        }
    }
    release(&mut tx, &batch.releases).await?;
    for task in &batch.renew {
        let renewed = sqlx::query(
            "UPDATE relay_tasks SET locked_until = $1 WHERE task_id = $2 AND lock_token = $3",
        )
        .bind(renew_until)
        .bind(task.task_id)
        .bind(task.token)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if renewed == 0 {
            stored.lost.push(task.task_id);
        }
    }
    tx.commit().await?;
    Ok(stored)
}

/// Gives held tasks back (see the PostgreSQL version; SQLite's single writer makes the
/// check-then-delete safe without row locks).
async fn release(
    tx: &mut Transaction<'static, Sqlite>,
    releases: &[(HeldTask, Release)],
) -> Result<(), sqlx::Error> {
    for (task, release) in releases {
        let at = match release {
            Release::Drained { else_at } => {
                let gone = sqlx::query(
                    "DELETE FROM relay_tasks WHERE task_id = $1 AND lock_token = $2 \
                     AND NOT EXISTS (SELECT 1 FROM envelopes e WHERE e.task_id = $1 AND e.state = 'pending')",
                )
                .bind(task.task_id)
                .bind(task.token)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if gone == 1 {
                    continue;
                }
                *else_at
            }
            Release::ReadyAt(at) => *at,
        };
        sqlx::query(
            "UPDATE relay_tasks SET ready_at = $1, locked_by = NULL, lock_token = NULL, locked_until = NULL \
             WHERE task_id = $2 AND lock_token = $3",
        )
        .bind(at)
        .bind(task.task_id)
        .bind(task.token)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
