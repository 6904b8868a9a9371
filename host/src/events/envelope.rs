//! The CloudEvents 1.0 envelope (structured mode, `application/cloudevents+json`)
//! the host publishes for each [`MappedEvent`].
//!
//! Ids are deterministic: a UUIDv5 in the mutation id's namespace of
//! `"{mapper}:{index}"`, so a retried or replayed publish carries the same id and
//! consumers can de-duplicate. Every envelope carries `traceid` (the request's
//! correlation id) and a valid W3C `traceparent`: Dapr leaves both untouched when
//! `traceid` is present, so the host must supply a valid one itself.

use std::fmt;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::Mutation;
use crate::domain::task::format_time;
use crate::mapper::MappedEvent;

/// The envelope id of event `index` of `mapper` for mutation `mutation_id`.
pub fn envelope_id(mutation_id: Uuid, mapper: &str, index: usize) -> Uuid {
    Uuid::new_v5(&mutation_id, format!("{mapper}:{index}").as_bytes())
}

/// Builds the envelope of `ev`, one of the events mapped from `mutation`.
///
/// `source` is the CloudEvents `source` (`EVENT_SOURCE`, default `pakaura/api`).
/// `incoming_traceparent` is the W3C trace context of the request that caused the
/// mutation, if any: its trace id and flags are kept when it is valid.
pub fn build_envelope(
    mutation: &Mutation,
    ev: &MappedEvent,
    source: &str,
    incoming_traceparent: Option<&str>,
) -> Value {
    let id = envelope_id(mutation.id, &ev.mapper, ev.index);
    let traceparent = TraceParent::for_envelope(&mutation.correlation_id, id, incoming_traceparent);
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
    Value::Object(envelope)
}

/// A W3C trace context (`traceparent` header value, version 00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// 16 bytes, never all zero.
    pub trace_id: [u8; 16],
    /// 8 bytes, never all zero.
    pub span_id: [u8; 8],
    /// Trace flags (01 = sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Parses a `traceparent` value; `None` unless it is valid W3C trace context.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let mut parts = raw.split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // Version 00 has exactly four fields; later versions may append more.
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        hex_lower::<1>(version)?;
        let trace_id = hex_lower::<16>(trace).filter(|t| t.iter().any(|&b| b != 0))?;
        let span_id = hex_lower::<8>(span).filter(|s| s.iter().any(|&b| b != 0))?;
        let [flags] = hex_lower::<1>(flags)?;
        Some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The trace context of an envelope: the trace id of a valid incoming
    /// context, else the correlation id's 32 hex digits when it is a UUID, else
    /// the first 16 bytes of its SHA-256; the span id is the first 8 bytes of the
    /// SHA-256 of the envelope id; flags from the incoming context, else sampled.
    pub fn for_envelope(correlation_id: &str, envelope_id: Uuid, incoming: Option<&str>) -> Self {
        let incoming = incoming.and_then(Self::parse);
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
        Self {
            trace_id,
            span_id,
            flags: incoming.map_or(0x01, |tp| tp.flags),
        }
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            self.flags
        )
    }
}

/// `N` bytes from exactly `2N` lower-case hex digits.
fn hex_lower<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

fn first_bytes<const N: usize>(digest: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&digest[..N]);
    out
}

#[cfg(test)]
mod tests;
