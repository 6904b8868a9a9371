//! The CloudEvents 1.0 envelope (structured mode, `application/cloudevents+json`)
//! the host publishes for each [`MappedEvent`].
//!
//! Ids are deterministic: a UUIDv5 in the mutation id's namespace of
//! `"{mapper}:{index}"`, so a retried or replayed publish carries the same id and
//! consumers can de-duplicate. Every envelope carries `traceid` (the request's
//! correlation id) and a valid W3C `traceparent`: Dapr leaves both untouched when
//! `traceid` is present, so the host must supply a valid one itself.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::Mutation;
use crate::domain::task::format_time;
use crate::mapper::MappedEvent;
use crate::trace::TraceParent;

/// One built envelope: its id and trace context, and the CloudEvents document carrying them.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The CloudEvents `id`.
    pub id: Uuid,
    /// The CloudEvents `traceparent` extension, also sent as the publish request's header so
    /// the sidecar's span joins the trace.
    pub traceparent: TraceParent,
    /// The whole CloudEvents JSON document.
    pub body: Value,
}

/// The envelope id of event `index` of `mapper` for mutation `mutation_id`.
pub fn envelope_id(mutation_id: Uuid, mapper: &str, index: usize) -> Uuid {
    Uuid::new_v5(&mutation_id, format!("{mapper}:{index}").as_bytes())
}

/// Builds the envelope of `ev`, one of the events mapped from `mutation`.
///
/// `source` is the CloudEvents `source` (`EVENT_SOURCE`, default `pakaura/api`).
/// `incoming` is the W3C trace context of the request that caused the mutation, if it
/// carried a valid one: its trace id and flags are kept.
pub fn build_envelope(
    mutation: &Mutation,
    ev: &MappedEvent,
    source: &str,
    incoming: Option<TraceParent>,
) -> Envelope {
    let id = envelope_id(mutation.id, &ev.mapper, ev.index);
    let traceparent = envelope_trace(&mutation.correlation_id, id, incoming);
    let mut envelope = Map::new();
    // Extensions first, so no core or host attribute can be overwritten by one
    // (validation already refuses such names; this is a second line of defence).
    for (name, value) in &ev.extensions {
        envelope.insert(name.clone(), Value::String(value.clone()));
    }
    let core = json!({
        "specversion": "1.0",
        "id": id.to_string(),
        "source": source,
        "type": ev.event_type,
        "time": format_time(&mutation.occurred_at),
        "datacontenttype": "application/json",
        "data": ev.data,
        "traceid": mutation.correlation_id,
        "traceparent": traceparent.to_string(),
        "mappername": ev.mapper,
        "mapperversion": ev.mapper_version,
    });
    if let Value::Object(core) = core {
        envelope.extend(core);
    }
    if let Some(subject) = &ev.subject {
        envelope.insert("subject".into(), Value::String(subject.clone()));
    }
    if let Some(schema) = &ev.data_schema {
        envelope.insert("dataschema".into(), Value::String(schema.clone()));
    }
    Envelope {
        id,
        traceparent,
        body: Value::Object(envelope),
    }
}

/// The trace context of an envelope: the trace id of a valid incoming
/// context, else the correlation id's 32 hex digits when it is a UUID, else
/// the first 16 bytes of its SHA-256; the span id is the first 8 bytes of the
/// SHA-256 of the envelope id; flags from the incoming context, else sampled.
fn envelope_trace(
    correlation_id: &str,
    envelope_id: Uuid,
    incoming: Option<TraceParent>,
) -> TraceParent {
    let trace_id = match incoming {
        Some(tp) => tp.trace_id,
        None => match Uuid::parse_str(correlation_id) {
            Ok(u) if !u.is_nil() => *u.as_bytes(),
            _ => first_bytes(&Sha256::digest(correlation_id.as_bytes())),
        },
    };
    let mut span_id: [u8; 8] = first_bytes(&Sha256::digest(envelope_id.to_string().as_bytes()));
    if span_id == [0; 8] {
        span_id[7] = 1;
    }
    TraceParent {
        trace_id,
        span_id,
        flags: incoming.map_or(0x01, |tp| tp.flags),
    }
}

fn first_bytes<const N: usize>(digest: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&digest[..N]);
    out
}

#[cfg(test)]
mod tests;
