//! Output validation: every event a mapper returns is checked before the
//! host builds an envelope around it. A broken rule fails the whole mutation for
//! that mapper with a message naming the event index and the rule.

use std::collections::BTreeSet;

use super::bindings::pakaura::events::types as wit;
use super::error::MapFailure;
use super::event::MappedEvent;
use super::limits::Limits;
use super::topic::TopicName;

/// Longest `event-type`, in bytes.
const MAX_TYPE: usize = 256;
/// Longest `subject` and `partition-key`, in bytes.
const MAX_SUBJECT: usize = 1024;
/// Longest `data-schema`, in bytes.
const MAX_SCHEMA: usize = 2048;
/// Most extensions on one event.
const MAX_EXTENSIONS: usize = 32;
/// Longest extension value, in bytes.
const MAX_EXTENSION_VALUE: usize = 4096;

/// CloudEvents core attributes an extension may not shadow.
const CORE_ATTRIBUTES: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];
/// Attributes the host or Dapr set, which an extension may not shadow either.
const HOST_ATTRIBUTES: [&str; 7] = [
    "traceid",
    "traceparent",
    "tracestate",
    "mappername",
    "mapperversion",
    "topic",
    "pubsubname",
];

/// What a mapper is, for validating its output.
pub(crate) struct Producer<'a> {
    pub(crate) name: &'a str,
    pub(crate) version: &'a str,
    pub(crate) topics: &'a BTreeSet<TopicName>,
}

/// Validates `events` and turns them into [`MappedEvent`]s.
pub(crate) fn validate(
    producer: &Producer<'_>,
    limits: &Limits,
    events: Vec<wit::Event>,
) -> Result<Vec<MappedEvent>, MapFailure> {
    if events.len() > limits.max_events {
        return Err(MapFailure::TooManyEvents {
            count: events.len(),
            max: limits.max_events,
        });
    }
    events
        .into_iter()
        .enumerate()
        .map(|(index, ev)| one(producer, limits, index, ev))
        .collect()
}

fn one(
    producer: &Producer<'_>,
    limits: &Limits,
    index: usize,
    ev: wit::Event,
) -> Result<MappedEvent, MapFailure> {
    let invalid = |rule: String| MapFailure::InvalidOutput(format!("event {index}: {rule}"));
    if ev.data.len() > limits.max_event_bytes {
        return Err(MapFailure::EventTooLarge {
            index,
            bytes: ev.data.len(),
            max: limits.max_event_bytes,
        });
    }
    check_topic(producer, limits, &ev.topic).map_err(invalid)?;
    check_text("event-type", &ev.event_type, MAX_TYPE).map_err(invalid)?;
    for (field, value, max) in [
        ("subject", &ev.subject, MAX_SUBJECT),
        ("data-schema", &ev.data_schema, MAX_SCHEMA),
        ("partition-key", &ev.partition_key, MAX_SUBJECT),
    ] {
        if let Some(value) = value {
            check_text(field, value, max).map_err(invalid)?;
        }
    }
    if ev
        .data_schema
        .as_deref()
        .is_some_and(|s| s.contains(char::is_whitespace))
    {
        return Err(invalid(
            "data-schema must be a URI without spaces".to_owned(),
        ));
    }
    check_extensions(&ev.extensions).map_err(invalid)?;
    let data = serde_json::from_str(&ev.data)
        .map_err(|e| invalid(format!("data is not valid JSON ({e})")))?;
    Ok(MappedEvent {
        mapper: producer.name.to_owned(),
        mapper_version: producer.version.to_owned(),
        index,
        topic: ev.topic,
        event_type: ev.event_type,
        subject: ev.subject,
        data,
        data_schema: ev.data_schema,
        extensions: ev.extensions,
        partition_key: ev.partition_key,
    })
}

fn check_topic(producer: &Producer<'_>, limits: &Limits, topic: &str) -> Result<(), String> {
    if !limits.allows(topic) {
        return Err(format!(
            "topic `{}` is not in ALLOWED_TOPICS ({})",
            shorten(topic),
            limits.allowed_list()
        ));
    }
    if !producer.topics.iter().any(|t| t.as_str() == topic) {
        let declared: Vec<&str> = producer.topics.iter().map(TopicName::as_str).collect();
        return Err(format!(
            "topic `{}` was not declared by the mapper (declared: {})",
            shorten(topic),
            declared.join(", ")
        ));
    }
    Ok(())
}

/// Non-empty, printable (no control characters), at most `max` bytes.
pub(crate) fn check_text(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if value.len() > max {
        return Err(format!(
            "{field} is {} bytes; at most {max} are allowed",
            value.len()
        ));
    }
    if has_control(value) {
        return Err(format!(
            "{field} `{}` contains control characters",
            shorten(value).escape_debug()
        ));
    }
    Ok(())
}

fn check_extensions(extensions: &[(String, String)]) -> Result<(), String> {
    if extensions.len() > MAX_EXTENSIONS {
        return Err(format!(
            "{} extensions; at most {MAX_EXTENSIONS} are allowed",
            extensions.len()
        ));
    }
    let mut seen = BTreeSet::new();
    for (name, value) in extensions {
        let valid = (1..=20).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(format!(
                "extension name `{}` must be 1 to 20 characters of a-z and 0-9",
                shorten(name).escape_debug()
            ));
        }
        if CORE_ATTRIBUTES.contains(&name.as_str()) {
            return Err(format!(
                "extension `{name}` would shadow the CloudEvents attribute `{name}`"
            ));
        }
        if HOST_ATTRIBUTES.contains(&name.as_str()) {
            return Err(format!(
                "extension `{name}` would shadow the host-set attribute `{name}`"
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(format!("extension `{name}` is given twice"));
        }
        if value.len() > MAX_EXTENSION_VALUE || has_control(value) {
            return Err(format!(
                "extension `{name}` value must be printable and at most {MAX_EXTENSION_VALUE} bytes"
            ));
        }
    }
    Ok(())
}

/// Whether `text` holds a control character (Unicode category Cc): on ASCII text, a byte
/// test.
fn has_control(text: &str) -> bool {
    if text.is_ascii() {
        text.bytes().any(|b| b.is_ascii_control())
    } else {
        text.chars().any(char::is_control)
    }
}

/// At most 100 characters of guest text, for messages.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
