//! The CloudEvents 1.0 envelope (structured mode, `application/cloudevents+json`)
//! the host publishes for each [`MappedEvent`].
//!
//! Ids are deterministic: a UUIDv5 in the mutation id's namespace of
//! `"{mapper}:{index}"`, so a retried or replayed publish carries the same id and
//! consumers can de-duplicate. Every envelope carries `traceid` (the request's
//! correlation id) and a valid W3C `traceparent`: Dapr leaves both untouched when
//! `traceid` is present, so the host must supply a valid one itself.

use serde::{Serialize, Serializer};
use serde_json::Value;
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
    /// The whole CloudEvents JSON document, as published: attributes in name order, `data`
    /// as the host parsed it from the mapper's text.
    pub body: String,
}

impl Envelope {
    /// The document as a JSON tree (for display and tests; the relay stores `body`).
    pub fn document(&self) -> Value {
        serde_json::from_str(&self.body).expect("the host writes valid JSON")
    }
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
    let id_text = id.to_string();
    let time = format_time(&mutation.occurred_at);
    let traceparent_text = traceparent.to_string();
    let mut attributes: Vec<(&str, Attribute<'_>)> =
        Vec::with_capacity(HOST_ATTRIBUTES + ev.extensions.len());
    attributes.extend([
        ("specversion", Attribute::Text("1.0")),
        ("id", Attribute::Text(&id_text)),
        ("source", Attribute::Text(source)),
        ("type", Attribute::Text(&ev.event_type)),
        ("time", Attribute::Text(&time)),
        ("datacontenttype", Attribute::Text("application/json")),
        ("data", Attribute::Json(&ev.data)),
        ("traceid", Attribute::Text(&mutation.correlation_id)),
        ("traceparent", Attribute::Text(&traceparent_text)),
        ("mappername", Attribute::Text(&ev.mapper)),
        ("mapperversion", Attribute::Text(&ev.mapper_version)),
    ]);
    if let Some(subject) = &ev.subject {
        attributes.push(("subject", Attribute::Text(subject)));
    }
    if let Some(schema) = &ev.data_schema {
        attributes.push(("dataschema", Attribute::Text(schema)));
    }
    // Extensions after the host's attributes, the last of a name first: the stable sort
    // keeps the first of equal names, so no core or host attribute can be overwritten by
    // one, and of two extensions of one name the later wins, as in a JSON map (validation
    // already refuses both; this is a second line of defence).
    attributes.extend(
        ev.extensions
            .iter()
            .rev()
            .map(|(name, value)| (name.as_str(), Attribute::Text(value))),
    );
    attributes.sort_by(|a, b| a.0.cmp(b.0));
    attributes.dedup_by(|later, first| later.0 == first.0);
    let body = serde_json::to_string(&Document(&attributes))
        .expect("strings and a JSON value always serialise");
    Envelope {
        id,
        traceparent,
        body,
    }
}

/// The most attributes the host writes: eleven on every envelope, and subject and
/// dataschema when the event has them.
const HOST_ATTRIBUTES: usize = 13;

/// One attribute's value: text, or `data`'s JSON.
enum Attribute<'a> {
    Text(&'a str),
    Json(&'a Value),
}

impl Serialize for Attribute<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Attribute::Text(text) => serializer.serialize_str(text),
            Attribute::Json(value) => value.serialize(serializer),
        }
    }
}

/// The document: its attributes, in the order given (sorted by name, as a JSON map
/// of the document's text would be).
struct Document<'a>(&'a [(&'a str, Attribute<'a>)]);

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, value)| (name, value)))
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
