//! The publish stage's trace spans (see [`crate::telemetry::traces`]): one producer span
//! per envelope publish, a child of the mutation's stored trace context, whose own
//! context is the trace context handed to the publisher with the event (for Dapr, the
//! `traceparent` header), so the trace continues through it. The envelope's body is
//! left as it was stored.

use tracing::Span;
use tracing::field::Empty;

use super::pending::Pending;
use crate::relay::publish::Outcome;
use crate::telemetry::traces;
use crate::trace::TraceParent;

/// The span of one publish attempt of `e` through `system` (`batch`: how many envelopes
/// its request carries); disabled while traces are off.
pub(super) fn publish(e: &Pending, system: &'static str, batch: usize) -> Span {
    let span = traces::span(|| {
        tracing::info_span!(
            "publish",
            otel.name = %format_args!("publish {}", e.topic),
            otel.kind = "producer",
            messaging.system = system,
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
    if let Some(parent) = e.parent.or(e.traceparent) {
        traces::set_parent(&span, parent);
    }
    span
}

/// The trace context a single publish carries: the publish span's with traces on, else
/// the envelope's own.
pub(super) fn carried(span: &Span, e: &Pending) -> Option<TraceParent> {
    traces::traceparent_of(span).or(e.traceparent)
}

/// Records what the attempt came to on its span.
pub(super) fn record(span: &Span, outcome: &Outcome) {
    if span.is_none() {
        return;
    }
    let (status, failure) = match outcome {
        Outcome::Published { status } => (*status, None),
        Outcome::Retry(f) => {
            let kind = if f.status.is_some() {
                "retry"
            } else {
                "transport"
            };
            (f.status, Some(f.code.as_deref().unwrap_or(kind)))
        }
        Outcome::Refused(f) => (f.status, Some(f.code.as_deref().unwrap_or("refused"))),
    };
    if let Some(status) = status {
        span.record("http.response.status_code", status);
    }
    if let Some(failure) = failure {
        span.record("error.type", failure);
        span.record("otel.status_code", "error");
    }
}
