//! The publish stage: each task's oldest pending envelope to the sidecar.

use chrono::Duration as ChronoDuration;
use futures::StreamExt;

use super::publisher::{Outcome, Publisher};
use super::{RelayContext, backoff};
use crate::domain::task::now;
use crate::store::ClaimedEnvelope;

/// Leases and publishes one round of envelopes; returns how many it handled.
pub(super) async fn run(ctx: &RelayContext) -> usize {
    let Some(publisher) = &ctx.publisher else {
        return 0;
    };
    let started = now();
    let lease =
        ChronoDuration::from_std(ctx.config.relay_lease).unwrap_or(ChronoDuration::seconds(30));
    let claimed = match ctx
        .db
        .claim_envelopes(
            &ctx.id,
            started,
            started + lease,
            i64::from(ctx.config.relay_max_in_flight),
        )
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "claiming envelopes failed; will retry");
            return 0;
        }
    };
    let count = claimed.len();
    futures::stream::iter(claimed)
        .for_each_concurrent(
            ctx.config.relay_max_in_flight as usize,
            |envelope| async move {
                publish_one(ctx, publisher, envelope).await;
            },
        )
        .await;
    count
}

async fn publish_one(ctx: &RelayContext, publisher: &Publisher, e: ClaimedEnvelope) {
    let outcome = publisher
        .publish(
            &e.topic,
            &e.partition_key,
            e.body.clone(),
            e.traceparent.as_deref(),
        )
        .await;
    let stored = match &outcome {
        Outcome::Published(status) => {
            tracing::debug!(
                event_type = %e.event_type, topic = %e.topic, task_id = %e.task_id, user_id = %e.user_id,
                correlation_id = %e.correlation_id, dapr_status = status, envelope_id = %e.id, "event published"
            );
            metrics::counter!("relay_published_total", "topic" => e.topic.clone()).increment(1);
            ctx.db.mark_published(e.seq, *status, now()).await
        }
        Outcome::Retry { status, reason } => {
            let attempt = u32::try_from(e.attempts + 1).unwrap_or(u32::MAX);
            let delay = backoff::delay(
                attempt,
                ctx.config.relay_retry_base,
                ctx.config.relay_retry_max,
            );
            tracing::warn!(
                event_type = %e.event_type, topic = %e.topic, task_id = %e.task_id, user_id = %e.user_id,
                correlation_id = %e.correlation_id, dapr_status = status.map(i64::from), envelope_id = %e.id,
                attempt, retry_in_ms = delay.as_millis() as u64, reason = %reason, "publish failed; will retry"
            );
            metrics::counter!("relay_publish_retries_total", "topic" => e.topic.clone())
                .increment(1);
            let retry_at =
                now() + ChronoDuration::from_std(delay).unwrap_or(ChronoDuration::seconds(1));
            ctx.db.mark_retry(e.seq, *status, reason, retry_at).await
        }
        Outcome::Refused { status, reason } => {
            tracing::error!(
                event_type = %e.event_type, topic = %e.topic, task_id = %e.task_id, user_id = %e.user_id,
                correlation_id = %e.correlation_id, dapr_status = status, envelope_id = %e.id, reason = %reason,
                "Dapr refused the event (configuration error); parked as a dead letter"
            );
            metrics::counter!("dead_letters_total", "kind" => "publish").increment(1);
            ctx.db.mark_refused(&e, *status, reason, now()).await
        }
    };
    if let Err(err) = stored {
        // The lease expires and the envelope is published again under the same id.
        tracing::warn!(error = %err, envelope_id = %e.id, "recording publish outcome failed");
    }
}
