//! The map stage: outbox rows through the live mapper set into stored envelopes.

use std::time::Instant;

use chrono::Duration as ChronoDuration;

use super::RelayContext;
use crate::domain::task::now;
use crate::events::envelope;
use crate::mapper::{MapFailure, MapperSet};
use crate::store::{EnvelopeState, NewEnvelope, OutboxRow};

/// What mapping one outbox row came to.
#[derive(Debug)]
pub enum MapOutcome {
    /// The envelopes to store, in publish order, and the request's correlation id.
    Mapped {
        correlation_id: String,
        envelopes: Vec<NewEnvelope>,
    },
    /// The mutation cannot be mapped: the failing mapper (if one) and the reason.
    Failed {
        mapper: Option<String>,
        reason: String,
    },
}

/// Maps one stored mutation with `set` (on a blocking thread: mapping is CPU work
/// under a deadline) and builds its envelopes.
pub async fn map_row(set: std::sync::Arc<MapperSet>, row: &OutboxRow, source: &str) -> MapOutcome {
    let mutation = match row.decode() {
        Ok(m) => m,
        Err(e) => {
            return MapOutcome::Failed {
                mapper: None,
                reason: format!("stored mutation is unreadable: {e}"),
            };
        }
    };
    let started = Instant::now();
    let (mutation, result) = match tokio::task::spawn_blocking(move || {
        let mut result = set.map(&mutation);
        // The deadline is wall-clock (epoch) time: on a starved host a healthy call
        // can miss it. One more try tells a busy host from a mapper that hangs.
        if matches!(&result, Err(e) if matches!(e.kind, MapFailure::Deadline { .. })) {
            result = set.map(&mutation);
        }
        (mutation, result)
    })
    .await
    {
        Ok(done) => done,
        Err(e) => {
            return MapOutcome::Failed {
                mapper: None,
                reason: format!("mapping task failed: {e}"),
            };
        }
    };
    metrics::histogram!("mapper_chain_duration_seconds").record(started.elapsed().as_secs_f64());
    let events = match result {
        Ok(events) => events,
        Err(e) => {
            metrics::counter!("mapper_failures_total", "mapper" => e.mapper.clone(), "reason" => e.kind.code())
                .increment(1);
            return MapOutcome::Failed {
                mapper: Some(e.mapper.clone()),
                reason: e.to_string(),
            };
        }
    };
    let incoming = row.trace_context();
    let mut envelopes = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        let envelope = envelope::build_envelope(&mutation, event, source, incoming);
        let Ok(index) = i32::try_from(index) else {
            return MapOutcome::Failed {
                mapper: Some(event.mapper.clone()),
                reason: "too many events".into(),
            };
        };
        envelopes.push(NewEnvelope {
            id: envelope.id.to_string(),
            event_index: index,
            mapper: event.mapper.clone(),
            topic: event.topic.clone(),
            event_type: event.event_type.clone(),
            partition_key: event.partition_key_for(&mutation),
            traceparent: Some(envelope.traceparent.to_string()),
            body: envelope.body.to_string(),
        });
    }
    MapOutcome::Mapped {
        correlation_id: mutation.correlation_id,
        envelopes,
    }
}

/// Leases and maps one batch; returns how many rows it handled.
pub(super) async fn run(ctx: &RelayContext) -> usize {
    let started = now();
    let lease =
        ChronoDuration::from_std(ctx.config.relay_lease).unwrap_or(ChronoDuration::seconds(30));
    let rows = match ctx
        .db
        .claim_mutations(
            &ctx.id,
            started,
            started + lease,
            i64::from(ctx.config.relay_batch_size),
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "claiming outbox rows failed; will retry");
            return 0;
        }
    };
    let state = ctx.new_envelope_state();
    for row in &rows {
        let set = ctx.mappers.current();
        let outcome = map_row(set, row, &ctx.source).await;
        let stored = match outcome {
            MapOutcome::Mapped {
                correlation_id,
                envelopes,
            } => {
                for e in &envelopes {
                    if state == EnvelopeState::Skipped {
                        tracing::debug!(
                            event_type = %e.event_type, topic = %e.topic, task_id = %row.task_id,
                            user_id = %row.user_id, correlation_id = %correlation_id, envelope_id = %e.id,
                            "event not published: DAPR_ENABLED=false"
                        );
                    }
                }
                metrics::counter!("relay_envelopes_built_total").increment(envelopes.len() as u64);
                ctx.db
                    .record_mapped(row, &correlation_id, &envelopes, state, now())
                    .await
            }
            MapOutcome::Failed { mapper, reason } => {
                let correlation_id = row.decode().map(|m| m.correlation_id).unwrap_or_default();
                tracing::error!(
                    task_id = %row.task_id, user_id = %row.user_id, mutation_id = %row.id,
                    correlation_id = %correlation_id, action = %row.action,
                    mapper = mapper.as_deref().unwrap_or("-"), reason = %reason,
                    "mutation could not be mapped; parked as a dead letter"
                );
                metrics::counter!("dead_letters_total", "kind" => "mapping").increment(1);
                ctx.db
                    .record_mapping_failure(row, mapper.as_deref(), &reason, now())
                    .await
            }
        };
        if let Err(e) = stored {
            // The lease expires and the row is mapped again (same envelope ids).
            tracing::warn!(error = %e, mutation_id = %row.id, "storing mapping outcome failed; will retry");
        }
    }
    rows.len()
}
