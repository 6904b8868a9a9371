//! The publisher seam: how the relay hands events to the outside world, in neutral
//! words. The relay knows a [`Publisher`] (publish one event, publish a batch of one
//! topic's events, readiness), an [`Outgoing`] event and the [`Outcome`] of each
//! attempt (published, retry later, refused), with the publisher's own status and
//! error code carried along for the record. Everything a transport needs to know — URLs,
//! headers, wire formats, how its answers are classified — lives in that transport's
//! file: [`dapr`] (the Dapr sidecar's pub/sub HTTP API).
//!
//! Adding a way to publish: a file here implementing [`Publisher`], a variant of
//! [`PublisherKind`] and a line in [`build`], and its settings in `config.rs`.

mod dapr;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::config::DaprConfig;
pub use crate::config::PublisherKind;
use crate::trace::TraceParent;
pub use dapr::DaprPublisher;

/// The publisher configured by `kind`, or `None` when nothing is published.
pub fn build(
    kind: PublisherKind,
    dapr: &DaprConfig,
) -> Result<Option<Arc<dyn Publisher>>, PublisherError> {
    Ok(match kind {
        PublisherKind::Dapr => Some(Arc::new(DaprPublisher::new(dapr)?)),
        PublisherKind::None => None,
    })
}

/// A publisher that could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("setting up the {publisher} publisher: {message}")]
pub struct PublisherError {
    pub publisher: &'static str,
    pub message: String,
}

/// One event to publish.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The envelope id (the CloudEvents `id`), stable across retries.
    pub id: Uuid,
    pub topic: &'a str,
    /// The key that keeps one task's events in order (the Kafka record key).
    pub partition_key: &'a str,
    /// The CloudEvents JSON document, sent as stored.
    pub body: &'a RawValue,
    /// The trace context the publish continues (a transport that can carry it per
    /// event sends it along, so the broker's side joins the trace).
    pub traceparent: Option<TraceParent>,
}

/// What one publish attempt of one event came to. `status` and `code` are the
/// publisher's own (for Dapr: the HTTP status and Dapr's `errorCode`), kept for the
/// record and the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted.
    Published { status: Option<u16> },
    /// Not accepted this time (a timeout, the transport unreachable, the other side
    /// busy or failing): try again later, under the same id.
    Retry(Failure),
    /// Refused: the other side's configuration will not take this event, so retrying
    /// cannot help.
    Refused(Failure),
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: Option<u16>,
    pub code: Option<String>,
    /// One line, for logs, the dead letter and the operator.
    pub reason: String,
}

/// How many events a batch may carry, when a publisher publishes batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    pub max_entries: usize,
    /// Most bytes of one request, as sent ([`Publisher::batch_bytes`]).
    pub max_bytes: usize,
}

/// What one batch request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// An answer per event, in order.
    PerEvent(Vec<Outcome>),
    /// One answer for the request as a whole: no event got an answer of its own. (The
    /// relay splits a batch refused as a whole until each event has its own answer, so
    /// an innocent event is never parked for its neighbours.)
    Whole(Outcome),
}

/// A way to publish events. Implementations are cheap to share (`Arc<dyn Publisher>`)
/// and safe to call concurrently.
pub trait Publisher: Send + Sync + fmt::Debug {
    /// The system's name in logs and span attributes (`messaging.system`).
    fn system(&self) -> &'static str;

    /// The longest one publish may take: leases leave room for it.
    fn timeout(&self) -> Duration;

    /// How events of one topic may share a request; `None`: one event per request.
    fn batching(&self) -> Option<Batching>;

    /// Publishes one event.
    fn publish<'a>(&'a self, event: Outgoing<'a>) -> BoxFuture<'a, Outcome>;

    /// Publishes `events`, all of `topic` and at most one per partition key (the other
    /// side need not keep the order of one request's events), in one request.
    fn publish_batch<'a>(
        &'a self,
        topic: &'a str,
        events: &'a [Outgoing<'a>],
    ) -> BoxFuture<'a, BatchOutcome>;

    /// The bytes a batch request of `events` takes on the wire (bodies, each entry's
    /// own fields and the request's framing), to keep requests within
    /// [`Batching::max_bytes`]. The default counts the bodies and a separator each.
    fn batch_bytes(&self, events: &[Outgoing<'_>]) -> usize {
        events.iter().map(|e| e.body.get().len() + 1).sum::<usize>() + 1
    }

    /// Whether the other side is ready to take events.
    fn ready(&self) -> BoxFuture<'_, bool>;

    /// What readiness waits for, for the log line shown while it is not ready.
    fn readiness_check(&self) -> &'static str;
}
