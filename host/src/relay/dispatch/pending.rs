//! An envelope loaded for publishing, decoded once: its id a UUID, its trace contexts
//! parsed, its body the JSON document to send as it was stored.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::relay::publish::Outgoing;
use crate::store::PendingRow;
use crate::trace::TraceParent;

/// A pending envelope, ready to publish.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    /// Its place in the envelopes table (outcomes are recorded by it).
    pub(super) seq: i64,
    /// The CloudEvents `id`.
    pub(super) id: Uuid,
    pub(super) task_id: Uuid,
    pub(super) user_id: String,
    pub(super) topic: String,
    pub(super) event_type: String,
    pub(super) partition_key: String,
    /// The CloudEvents JSON document (shared: requests in flight hold it too).
    pub(super) body: Arc<RawValue>,
    /// The envelope's own `traceparent`.
    pub(super) traceparent: Option<TraceParent>,
    /// The stored trace context of its mutation, the parent of the publish span.
    pub(super) parent: Option<TraceParent>,
    pub(super) correlation_id: String,
    /// Publish attempts made so far.
    pub(super) attempts: i32,
    /// When publishing it first failed, if it did.
    pub(super) first_failed_at: Option<DateTime<Utc>>,
}

/// A stored envelope that cannot be sent: it is parked saying why, never retried.
#[derive(Debug, Clone)]
pub(super) struct Corrupt {
    pub(super) seq: i64,
    pub(super) task_id: Uuid,
    pub(super) topic: String,
    pub(super) reason: String,
}

impl Pending {
    /// Decodes a loaded row. Stored bodies and ids are the host's own; a row that does
    /// not decode was damaged, and must not sink its task's other envelopes.
    pub(super) fn decode(row: PendingRow) -> Result<Self, Corrupt> {
        let PendingRow {
            seq,
            id,
            task_id,
            user_id,
            topic,
            event_type,
            partition_key,
            body,
            traceparent,
            mutation_traceparent,
            correlation_id,
            attempts,
            first_failed_at,
            ..
        } = row;
        let corrupt = |reason: String| Corrupt {
            seq,
            task_id,
            topic: topic.clone(),
            reason,
        };
        let id = Uuid::parse_str(&id)
            .map_err(|e| corrupt(format!("stored envelope id is not a UUID: {e}")))?;
        let body: Box<RawValue> = RawValue::from_string(body)
            .map_err(|e| corrupt(format!("stored envelope is not JSON: {e}")))?;
        let trace = |raw: Option<String>| raw.as_deref().and_then(TraceParent::parse);
        Ok(Self {
            seq,
            id,
            task_id,
            user_id,
            topic,
            event_type,
            partition_key,
            body: Arc::from(body),
            traceparent: trace(traceparent),
            parent: trace(mutation_traceparent),
            correlation_id,
            attempts,
            first_failed_at,
        })
    }

    /// The bytes of its body.
    pub(super) fn size(&self) -> usize {
        self.body.get().len()
    }

    /// The event as the publisher takes it, continuing `traceparent`.
    pub(super) fn outgoing(&self, traceparent: Option<TraceParent>) -> Outgoing<'_> {
        Outgoing {
            id: self.id,
            topic: &self.topic,
            partition_key: &self.partition_key,
            body: &self.body,
            traceparent,
        }
    }
}
