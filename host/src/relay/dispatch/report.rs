//! What a settled publish tells the operator: a log line at the level it deserves, the
//! `pakaura_publish_total` outcome, the dead-letter counter and this replica's relay
//! counters.

use super::pending::Pending;
use super::settle::Verdict;
use crate::instruments::{DEAD_LETTERS, PUBLISHES};
use crate::relay::{Counters, RelayContext};

/// Logs and counts `verdict` for envelope `e`.
pub(super) fn report(ctx: &RelayContext, e: &Pending, verdict: &Verdict) {
    let outcome = match verdict {
        Verdict::Published { status } => {
            Counters::add(&ctx.stats.published, 1);
            tracing::debug!(
                event_type = %e.event_type, topic = %e.topic, task_id = %e.task_id, user_id = %e.user_id,
                correlation_id = %e.correlation_id, status = status.map(i64::from), envelope_id = %e.id,
                "event published"
            );
            "published"
        }
        Verdict::Refused { failure, hold } => {
            Counters::add(&ctx.stats.parked, 1);
            metrics::counter!(DEAD_LETTERS, "kind" => "publish").increment(1);
            tracing::error!(
                event_type = %e.event_type, topic = %e.topic, task_id = %e.task_id, user_id = %e.user_id,
                correlation_id = %e.correlation_id, status = failure.status.map(i64::from),
                code = failure.code.as_deref(), envelope_id = %e.id, reason = %failure.reason, holds = hold,
                "the publisher refused the event (configuration error); parked as a dead letter"
            );
            "refused"
        }
        Verdict::Expired {
            failure,
            limit,
            hold,
        } => {
            Counters::add(&ctx.stats.parked, 1);
            metrics::counter!(DEAD_LETTERS, "kind" => "publish").increment(1);
            tracing::error!(
                event_type = %e.event_type, topic = %e.topic, task_id = %e.task_id, user_id = %e.user_id,
                correlation_id = %e.correlation_id, status = failure.status.map(i64::from),
                code = failure.code.as_deref(), envelope_id = %e.id, limit = %limit,
                reason = %failure.reason, holds = hold, "publish kept failing; parked as a dead letter"
            );
            "expired"
        }
        Verdict::Retry {
            failure,
            attempt,
            delay,
            ..
        } => {
            Counters::add(&ctx.stats.retried, 1);
            tracing::warn!(
                event_type = %e.event_type, topic = %e.topic, task_id = %e.task_id, user_id = %e.user_id,
                correlation_id = %e.correlation_id, status = failure.status.map(i64::from),
                code = failure.code.as_deref(), envelope_id = %e.id, attempt,
                retry_in_ms = delay.as_millis() as u64, reason = %failure.reason,
                "publish failed; will retry"
            );
            "retry"
        }
    };
    metrics::counter!(PUBLISHES, "topic" => e.topic.clone(), "outcome" => outcome).increment(1);
}
