//! The AsyncAPI 3.0 document of a mapper set: what consumers may read from each topic.
//!
//! One channel per topic a mapper declares a schema on, one message per (mapper, event
//! type) with the CloudEvents envelope (structured mode: the attributes and `data`) as its
//! payload and the declared schema as `data`, one `send` operation per channel, a Kafka
//! binding per channel and message (the record key is the task id unless the mapper gives a
//! partition key), and the Kafka server from `ASYNCAPI_SERVER`. Mappers that declare no
//! schemas are named in the description: their events are published but not described.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::set::MapperSet;

/// The AsyncAPI version the document follows.
pub const ASYNCAPI_VERSION: &str = "3.0.0";
/// The Kafka bindings' version.
const KAFKA_BINDING: &str = "0.5.0";

/// What the document says beyond the set itself.
#[derive(Debug, Clone)]
pub struct AsyncApiSettings<'a> {
    /// The Kafka bootstrap server consumers connect to (`ASYNCAPI_SERVER`).
    pub server: &'a str,
    /// The envelopes' CloudEvents `source` (`EVENT_SOURCE`).
    pub source: &'a str,
}

/// The AsyncAPI 3.0 document of `set`.
pub fn document(set: &MapperSet, settings: &AsyncApiSettings<'_>) -> Value {
    let mut channels: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut messages = Map::new();
    let mut undescribed = Vec::new();
    let mut versions = Vec::new();
    for mapper in set.iter() {
        versions.push(format!("{}@{}", mapper.name(), mapper.version()));
        if mapper.schemas().is_empty() {
            undescribed.push(mapper.name().to_owned());
            continue;
        }
        for (event_type, schema) in mapper.schemas().iter() {
            let key = component_key(&format!("{}.{event_type}", mapper.name()));
            // The URL its events carry as `dataschema`, built at load.
            let url = mapper
                .schema_url(event_type)
                .expect("every declared schema has its URL");
            messages.insert(
                key.clone(),
                json!({
                    "name": event_type,
                    "title": event_type,
                    "summary": format!("`{event_type}` from the mapper `{}` {}", mapper.name(), mapper.version()),
                    "contentType": "application/cloudevents+json",
                    "correlationId": {"location": "$message.payload#/traceid"},
                    "payload": envelope(event_type, settings.source, url, &schema.document),
                    "bindings": {"kafka": {
                        "key": {"type": "string", "description": "The task id (the mapper's partition key when it gives one): one task's events stay in order."},
                        "bindingVersion": KAFKA_BINDING
                    }}
                }),
            );
            channels.entry(schema.topic.clone()).or_default().insert(
                key.clone(),
                json!({"$ref": format!("#/components/messages/{key}")}),
            );
        }
    }
    let mut channel_docs = Map::new();
    let mut operations = Map::new();
    for (topic, channel_messages) in channels {
        let key = component_key(&topic);
        let refs: Vec<Value> = channel_messages
            .keys()
            .map(|m| json!({"$ref": format!("#/channels/{key}/messages/{m}")}))
            .collect();
        channel_docs.insert(
            key.clone(),
            json!({
                "address": topic,
                "title": topic,
                "messages": channel_messages,
                "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING}}
            }),
        );
        operations.insert(
            component_key(&format!("publish.{topic}")),
            json!({
                "action": "send",
                "title": format!("The host publishes to {topic}"),
                "channel": {"$ref": format!("#/channels/{key}")},
                "messages": refs
            }),
        );
    }
    let mut description = "The events the Pakaura host publishes, by topic: CloudEvents 1.0 envelopes in structured mode whose `data` follows the schema its mapper declares (also served at each envelope's `dataschema`).".to_owned();
    if !undescribed.is_empty() {
        description.push_str(&format!(
            " Mappers that declare no schemas (their events are published but not described here): {}.",
            undescribed.join(", ")
        ));
    }
    json!({
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Pakaura task events",
            "version": versions.join(", "),
            "description": description
        },
        "defaultContentType": "application/cloudevents+json",
        "servers": {"kafka": {
            "host": settings.server,
            "protocol": "kafka",
            "description": "The Kafka cluster behind the Dapr pub/sub component (ASYNCAPI_SERVER)."
        }},
        "channels": channel_docs,
        "operations": operations,
        "components": {"messages": messages}
    })
}

/// The CloudEvents envelope of one event type, `data` following `data`.
fn envelope(event_type: &str, source: &str, url: &str, data: &Value) -> Value {
    let text = json!({"type": "string"});
    json!({
        "type": "object",
        "description": "A CloudEvents 1.0 envelope (structured mode) as the host builds it; the mapper may add extension attributes.",
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "description": "Deterministic per mutation and event: a retried publish carries the same id (de-duplicate on it)."},
            "source": {"type": "string", "examples": [source]},
            "type": {"const": event_type},
            "subject": text,
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"type": "string", "format": "uri", "examples": [url]},
            "traceid": text,
            "traceparent": text,
            "mappername": text,
            "mapperversion": text,
            "data": data
        },
        "required": ["specversion", "id", "source", "type", "time", "datacontenttype", "data"]
    })
}

/// A component key AsyncAPI accepts (`^[A-Za-z0-9._-]+$`): other characters become `_`.
fn component_key(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
