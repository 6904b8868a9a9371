//! The map stage: claims a batch of committed mutations (outbox rows, oldest first),
//! maps the whole batch through the live mapper set on one blocking thread, and stores
//! all of its envelopes, queue rows and dead letters in one transaction.

use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::stage::{Signals, Stage};
use super::{Counters, RelayContext, chrono_duration};
use crate::domain::task::now;
use crate::events::build_envelope;
use crate::instruments::{DEAD_LETTERS, ENVELOPES_BUILT, MAPPER_CHAIN_DURATION};
use crate::mapper::{MapError, MapFailure, MapperSet};
use crate::store::{MappedRow, Mapping, NewEnvelope, OutboxRow, StoreError};
use crate::telemetry::traces;

/// Why a mutation could not be mapped.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The stored mutation does not decode (it was written by another version, or
    /// damaged).
    #[error("stored mutation is unreadable: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// A mapper failed on it.
    #[error(transparent)]
    Mapper(#[from] MapError),
}

impl MappingError {
    /// The mapper at fault, if one is.
    pub fn mapper(&self) -> Option<&str> {
        match self {
            MappingError::Unreadable(_) => None,
            MappingError::Mapper(e) => Some(&e.mapper),
        }
    }
}

/// What mapping one outbox row came to.
#[derive(Debug)]
pub struct MapOutcome {
    /// The correlation id of the request that caused the mutation (empty when the
    /// mutation is unreadable).
    pub correlation_id: String,
    /// Its envelopes in publish order, or why there are none.
    pub result: Result<Vec<NewEnvelope>, MappingError>,
}

impl MapOutcome {
    /// The outcome as the store records it.
    pub(crate) fn into_mapping(self) -> (String, Mapping) {
        let mapping = match self.result {
            Ok(envelopes) => Mapping::Mapped(envelopes),
            Err(e) => Mapping::Failed {
                mapper: e.mapper().map(str::to_owned),
                reason: e.to_string(),
            },
        };
        (self.correlation_id, mapping)
    }
}

/// Maps one stored mutation with `set` and builds its envelopes. Synchronous and
/// CPU-bound (see [`crate::mapper`]'s calling convention).
///
/// With traces on, mapping runs in a `map mutation` span whose parent is the mutation's
/// stored trace context, with one span per mapper under it.
pub fn map_row(set: &MapperSet, row: &OutboxRow, source: &str) -> MapOutcome {
    let span = traces::span(|| {
        tracing::info_span!(
            "map mutation",
            mutation.id = %row.id,
            mutation.action = %row.action,
            task.id = %row.task_id,
            otel.status_code = tracing::field::Empty,
        )
    });
    if !span.is_none()
        && let Some(parent) = row.trace_context()
    {
        traces::set_parent(&span, parent);
    }
    let outcome = span.in_scope(|| map_decoded(set, row, source));
    if outcome.result.is_err() {
        span.record("otel.status_code", "error");
    }
    outcome
}

fn map_decoded(set: &MapperSet, row: &OutboxRow, source: &str) -> MapOutcome {
    let mutation = match row.decode() {
        Ok(m) => m,
        Err(e) => {
            return MapOutcome {
                correlation_id: String::new(),
                result: Err(e.into()),
            };
        }
    };
    let started = Instant::now();
    let mut result = set.map(&mutation);
    // The deadline is wall-clock (epoch) time: on a starved host a healthy call can
    // miss it. One more try tells a busy host from a mapper that hangs.
    if matches!(&result, Err(e) if matches!(e.kind, MapFailure::Deadline { .. })) {
        result = set.map(&mutation);
    }
    metrics::histogram!(MAPPER_CHAIN_DURATION).record(started.elapsed().as_secs_f64());
    let incoming = row.trace_context();
    let result = result.map_err(MappingError::from).map(|events| {
        events
            .iter()
            .zip(0..)
            .map(|(event, index)| {
                let envelope = build_envelope(&mutation, event, source, incoming);
                NewEnvelope {
                    id: envelope.id,
                    event_index: index,
                    mapper: event.mapper.clone(),
                    topic: event.topic.clone(),
                    event_type: event.event_type.clone(),
                    partition_key: event.partition_key_for(&mutation),
                    traceparent: envelope.traceparent.to_string(),
                    body: envelope.body.to_string(),
                }
            })
            .collect()
    });
    MapOutcome {
        correlation_id: mutation.correlation_id,
        result,
    }
}

/// Maps `rows` with the live set on one blocking thread.
pub(super) async fn map_rows(
    ctx: &RelayContext,
    rows: Vec<OutboxRow>,
) -> (Vec<OutboxRow>, Vec<MapOutcome>) {
    let set: Arc<MapperSet> = ctx.mappers.current();
    let source = ctx.source.clone();
    let mapped = tokio::task::spawn_blocking(move || {
        let outcomes = rows.iter().map(|row| map_row(&set, row, &source)).collect();
        (rows, outcomes)
    })
    .await;
    match mapped {
        Ok(mapped) => mapped,
        // A panic while mapping is a host bug: let the supervisor restart the relay.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The map stage: claims, maps and stores batches until stopped; wakes the publish
/// stage whenever envelopes were stored.
pub(super) struct MapStage;

impl Stage for MapStage {
    fn run(self: Box<Self>, ctx: Arc<RelayContext>, signals: Signals) -> BoxFuture<'static, ()> {
        run(ctx, signals).boxed()
    }
}

async fn run(ctx: Arc<RelayContext>, signals: Signals) {
    let Signals { wakes, mut stop } = signals;
    loop {
        if *stop.borrow() {
            return;
        }
        ctx.check_injected_panic();
        match map_batch(&ctx).await {
            Ok(0) => {
                tokio::select! {
                    () = wakes.mutations.notified() => {}
                    () = tokio::time::sleep(ctx.config.relay_poll_interval) => {}
                    _ = stop.changed() => {}
                }
            }
            Ok(_) => wakes.envelopes.notify_one(),
            Err(e) => {
                tracing::warn!(error = %e, "mapping a batch failed; will retry");
                tokio::select! {
                    () = tokio::time::sleep(ctx.config.relay_poll_interval) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

/// Claims, maps and stores one batch; returns how many rows it claimed.
async fn map_batch(ctx: &RelayContext) -> Result<usize, StoreError> {
    let token: i64 = rand::random();
    let started = now();
    let rows = ctx
        .db
        .claim_mutations(
            &ctx.id,
            token,
            started,
            started + chrono_duration(ctx.config.relay_lease),
            i64::from(ctx.config.relay_batch_size),
        )
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (rows, outcomes) = map_rows(ctx, rows).await;
    let batch: Vec<MappedRow<'_>> = rows
        .iter()
        .zip(outcomes)
        .map(|(row, outcome)| {
            log_outcome(ctx, row, &outcome);
            let (correlation_id, mapping) = outcome.into_mapping();
            MappedRow {
                row,
                correlation_id,
                mapping,
            }
        })
        .collect();
    store(ctx, token, &batch).await?;
    Ok(rows.len())
}

fn log_outcome(ctx: &RelayContext, row: &OutboxRow, outcome: &MapOutcome) {
    match &outcome.result {
        Ok(envelopes) => {
            Counters::add(&ctx.stats.mapped, 1);
            metrics::counter!(ENVELOPES_BUILT).increment(envelopes.len() as u64);
            if ctx.publisher.is_none() {
                for e in envelopes {
                    tracing::debug!(
                        event_type = %e.event_type, topic = %e.topic, task_id = %row.task_id,
                        user_id = %row.user_id, correlation_id = %outcome.correlation_id, envelope_id = %e.id,
                        "event not published: PUBLISHER=none"
                    );
                }
            }
        }
        Err(e) => {
            Counters::add(&ctx.stats.mapping_failed, 1);
            tracing::error!(
                task_id = %row.task_id, user_id = %row.user_id, mutation_id = %row.id,
                correlation_id = %outcome.correlation_id, action = %row.action,
                mapper = e.mapper().unwrap_or("-"), reason = %e,
                "mutation could not be mapped; parked as a dead letter"
            );
            metrics::counter!(DEAD_LETTERS, "kind" => "mapping").increment(1);
        }
    }
}

/// Stores a mapped batch. When the batch cannot be stored for a reason other than the
/// database being unavailable, each row is stored alone, and a row whose outcome still
/// cannot be stored becomes a dead letter saying why: it is never retried for ever.
async fn store(ctx: &RelayContext, token: i64, batch: &[MappedRow<'_>]) -> Result<(), StoreError> {
    let state = ctx.envelope_state();
    let error = match ctx.db.record_mappings(token, batch, state, now()).await {
        Ok(stored) => return report(&stored),
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => e,
    };
    tracing::warn!(error = %error, rows = batch.len(), "storing a mapped batch failed; storing its rows one by one");
    for row in batch {
        let alone = std::slice::from_ref(row);
        match ctx.db.record_mappings(token, alone, state, now()).await {
            Ok(stored) => report(&stored)?,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                tracing::error!(
                    mutation_id = %row.row.id, error = %e,
                    "a mapping outcome cannot be stored; parked as a dead letter"
                );
                let parked = MappedRow {
                    row: row.row,
                    correlation_id: row.correlation_id.clone(),
                    mapping: Mapping::Failed {
                        mapper: None,
                        reason: format!("its mapping outcome could not be stored: {e}"),
                    },
                };
                let stored = ctx
                    .db
                    .record_mappings(token, std::slice::from_ref(&parked), state, now())
                    .await?;
                report(&stored)?;
            }
        }
    }
    Ok(())
}

fn report(stored: &crate::store::MappingStored) -> Result<(), StoreError> {
    if stored.lost > 0 {
        tracing::warn!(
            rows = stored.lost,
            "mapped rows whose lease passed to another relay were not stored"
        );
    }
    Ok(())
}
