//! The publish stage's trace spans (see [`crate::telemetry::traces`]): one producer span
//! per envelope publish, a child of the mutation's stored trace context, whose own
//! context is the `traceparent` header sent to the sidecar, so the trace continues
//! through Dapr. The envelope's body is left as it was stored.

use tracing::Span;
use tracing::field::Empty;

use super::publisher::Outcome;
use crate::store::PendingEnvelope;
use crate::telemetry::traces;
use crate::trace::TraceParent;

/// The span of one publish attempt of `e` (`batch`: how many envelopes its request
/// carries); disabled while traces are off.
pub(super) fn publish(e: &PendingEnvelope, batch: usize) -> Span {
    let span = traces::span(|| {
        tracing::info_span!(
            "publish",
            otel.name = %format_args!("publish {}", e.topic),
            otel.kind = "producer",
            messaging.system = "dapr",
            messaging.operation.type = "send",
            messaging.destination.name = %e.topic,
            messaging.message.id = %e.id,
            messaging.batch.message_count = batch,
            event.type = %e.event_type,
            publish.attempt = e.attempts + 1,
            correlation_id = %e.correlation_id,
            http.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        )
    });
    if span.is_none() {
        return span;
    }
    // The mutation's context; an envelope whose outbox row is gone continues its own.
    let parent = e
        .mutation_traceparent
        .as_deref()
        .or(e.traceparent.as_deref())
        .and_then(TraceParent::parse);
    if let Some(parent) = parent {
        traces::set_parent(&span, parent);
    }
    span
}

/// The `traceparent` header of a single publish: the publish span's context with traces
/// on, else the envelope's own.
pub(super) fn header(span: &Span, e: &PendingEnvelope) -> Option<String> {
    traces::traceparent_of(span)
        .map(|own| own.to_string())
        .or_else(|| e.traceparent.clone())
}

/// Records what the attempt came to on its span.
pub(super) fn record(span: &Span, outcome: &Outcome) {
    if span.is_none() {
        return;
    }
    let (status, failure) = match outcome {
        Outcome::Published(status) => (Some(*status), None),
        Outcome::Retry { status, code, .. } => {
            let kind = if status.is_some() {
                "retry"
            } else {
                "transport"
            };
            (*status, Some(code.as_deref().unwrap_or(kind)))
        }
        Outcome::Refused { status, code, .. } => {
            (Some(*status), Some(code.as_deref().unwrap_or("refused")))
        }
    };
    if let Some(status) = status {
        span.record("http.response.status_code", status);
    }
    if let Some(failure) = failure {
        span.record("error.type", failure);
        span.record("otel.status_code", "error");
    }
}
