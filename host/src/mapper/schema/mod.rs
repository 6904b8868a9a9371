//! Payload schemas: the JSON Schema (draft 2020-12) a mapper declares for the `data` of
//! each event type it emits (`event-schemas`, `pakaura:events@1.1.0`), compiled once at
//! load into a [`SchemaSet`], checked against each event under [`SchemaMode`], and
//! compared between two versions of a mapper by [`compat`] (the reload gate).
//!
//! Schemas come from the component only: a `$ref` to anything outside the schema itself
//! is refused at load (the [`NoRetrieval`] retriever), so the host never fetches a URL a
//! mapper names.

pub mod compat;
mod url;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde::Serialize;
use serde_json::Value;

pub use url::schema_url;

/// The draft every declared schema is read as; a schema naming another draft in
/// `$schema` is refused.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Most schemas one mapper may declare.
const MAX_SCHEMAS: usize = 256;
/// Largest schema text, in bytes.
const MAX_SCHEMA_BYTES: usize = 256 << 10;

/// What the host does with an event whose `data` breaks its type's schema
/// (`MAPPER_SCHEMAS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaMode {
    /// Schemas are not checked (still published and compared on reload).
    Off,
    /// A violation is logged and counted (`pakaura_mapper_schema_violations_total`); the
    /// event is published.
    #[default]
    Warn,
    /// A violation fails the mapping: the mutation is held like any mapping failure,
    /// with the failing JSON path in the reason.
    Enforce,
}

impl fmt::Display for SchemaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::Warn => "warn",
            Self::Enforce => "enforce",
        })
    }
}

impl FromStr for SchemaMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "warn" => Ok(Self::Warn),
            "enforce" => Ok(Self::Enforce),
            other => Err(format!("expected off, warn or enforce, got `{other}`")),
        }
    }
}

/// One schema as a mapper declares it (WIT `event-schema`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredSchema {
    /// The CloudEvents type it describes.
    pub event_type: String,
    /// The topic events of that type go to.
    pub topic: String,
    /// The JSON Schema, as a JSON text.
    pub text: String,
}

impl DeclaredSchema {
    /// `event_type` on `topic` with the schema `text`.
    pub fn new(event_type: &str, topic: &str, text: &str) -> Self {
        Self {
            event_type: event_type.to_owned(),
            topic: topic.to_owned(),
            text: text.to_owned(),
        }
    }
}

/// One declared schema, compiled.
pub struct EventSchema {
    /// The topic events of its type go to.
    pub topic: String,
    /// The schema as declared, parsed (what `/schemas/...` serves and `compat` compares).
    pub document: Arc<Value>,
    /// A strong ETag of the schema: the SHA-256 of its canonical JSON text.
    pub etag: String,
    validator: Validator,
}

impl fmt::Debug for EventSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSchema")
            .field("etag", &self.etag)
            .finish_non_exhaustive()
    }
}

/// The schemas one mapper declared, by event type; empty when it declares none (a
/// component without `event-schemas`, e.g. one built against 1.0.0).
#[derive(Debug, Default)]
pub struct SchemaSet {
    by_type: BTreeMap<String, EventSchema>,
}

/// One event whose `data` breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Violation {
    /// The event's index in the mapper's output.
    pub index: usize,
    /// Its CloudEvents type.
    pub event_type: String,
    /// The JSON Pointer of the failing value in `data` (`""` for the whole payload).
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(
            f,
            "event {} ({}) breaks its schema at {path}: {}",
            self.index, self.event_type, self.message
        )
    }
}

/// Why a mapper's declared schemas were refused at load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// More schemas than the host accepts.
    #[error("declares {0} schemas; at most {MAX_SCHEMAS} are allowed")]
    TooMany(usize),
    /// The same event type twice.
    #[error("declares the schema of `{0}` twice")]
    Duplicate(String),
    /// A schema's topic is not one the mapper declared.
    #[error("declares `{event_type}` on topic `{topic}`, which `describe` does not declare")]
    UnknownTopic {
        /// The event type.
        event_type: String,
        /// The topic it names.
        topic: String,
    },
    /// An empty or overlong event type.
    #[error("declares a schema for an invalid event type: {0}")]
    BadType(String),
    /// The schema text is too large.
    #[error(
        "the schema of `{event_type}` is {bytes} bytes; at most {MAX_SCHEMA_BYTES} are allowed"
    )]
    TooLarge {
        /// The event type.
        event_type: String,
        /// Its size.
        bytes: usize,
    },
    /// The schema is not JSON, not an object or boolean, names another draft, or does not
    /// compile (an invalid keyword value, a `$ref` outside the schema).
    #[error("the schema of `{event_type}` is invalid: {reason}")]
    Invalid {
        /// The event type.
        event_type: String,
        /// Why.
        reason: String,
    },
}

impl SchemaSet {
    /// Compiles `declared`, refusing the first that is not a usable draft 2020-12 schema
    /// or names a topic not in `topics` (the mapper's declared topics).
    pub fn compile(declared: Vec<DeclaredSchema>, topics: &[&str]) -> Result<Self, SchemaError> {
        if declared.len() > MAX_SCHEMAS {
            return Err(SchemaError::TooMany(declared.len()));
        }
        let mut by_type = BTreeMap::new();
        for DeclaredSchema {
            event_type,
            topic,
            text,
        } in declared
        {
            super::validate::check_text("event-type", &event_type, 256)
                .map_err(SchemaError::BadType)?;
            if text.len() > MAX_SCHEMA_BYTES {
                return Err(SchemaError::TooLarge {
                    event_type,
                    bytes: text.len(),
                });
            }
            if !topics.contains(&topic.as_str()) {
                return Err(SchemaError::UnknownTopic { event_type, topic });
            }
            let schema = compile_one(topic, &text).map_err(|reason| SchemaError::Invalid {
                event_type: event_type.clone(),
                reason,
            })?;
            if by_type.insert(event_type.clone(), schema).is_some() {
                return Err(SchemaError::Duplicate(event_type));
            }
        }
        Ok(Self { by_type })
    }

    /// Whether the mapper declared no schema at all.
    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty()
    }

    /// The schema of `event_type`, if declared.
    pub fn get(&self, event_type: &str) -> Option<&EventSchema> {
        self.by_type.get(event_type)
    }

    /// Every declared schema, by event type.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &EventSchema)> {
        self.by_type.iter().map(|(t, s)| (t.as_str(), s))
    }

    /// Checks event `index` of type `event_type` on `topic` with payload `data`. A mapper
    /// that declares schemas must declare one for every type it emits, on the topic it
    /// emits it to; one that declares none is not checked.
    pub fn check(
        &self,
        index: usize,
        event_type: &str,
        topic: &str,
        data: &Value,
    ) -> Option<Violation> {
        if self.is_empty() {
            return None;
        }
        let violation = |path: String, message: String| Violation {
            index,
            event_type: event_type.to_owned(),
            path,
            message,
        };
        let Some(schema) = self.by_type.get(event_type) else {
            return Some(violation(
                String::new(),
                "the mapper declares no schema for this event type".to_owned(),
            ));
        };
        if schema.topic != topic {
            return Some(violation(
                String::new(),
                format!(
                    "published to `{topic}`; its schema declares topic `{}`",
                    schema.topic
                ),
            ));
        }
        // `is_valid` stops at the first failure and builds no error: the common case,
        // valid data, costs only the walk. The first error is enough: it names the path
        // a fix starts from.
        if schema.validator.is_valid(data) {
            return None;
        }
        let error = schema.validator.iter_errors(data).next()?;
        Some(violation(
            error.instance_path().to_string(),
            shorten(&error.to_string()),
        ))
    }
}

fn compile_one(topic: String, text: &str) -> Result<EventSchema, String> {
    let document: Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON ({e})"))?;
    match &document {
        Value::Object(map) => {
            if let Some(draft) = map.get("$schema") {
                let named = draft.as_str().unwrap_or_default().trim_end_matches('#');
                if named != DRAFT_2020_12 {
                    return Err(format!(
                        "`$schema` is {draft}; only draft 2020-12 ({DRAFT_2020_12}) is supported"
                    ));
                }
            }
        }
        Value::Bool(_) => {}
        _ => return Err("a schema must be a JSON object or a boolean".to_owned()),
    }
    let validator = jsonschema::options()
        .with_draft(Draft::Draft202012)
        .with_retriever(NoRetrieval)
        .build(&document)
        .map_err(|e| shorten(&e.to_string()))?;
    let etag = {
        use sha2::{Digest, Sha256};
        format!(
            "\"{}\"",
            hex::encode(Sha256::digest(document.to_string().as_bytes()))
        )
    };
    Ok(EventSchema {
        topic,
        document: Arc::new(document),
        etag,
        validator,
    })
}

/// The host's only `$ref` retriever: it retrieves nothing, so a schema that points outside
/// itself is refused at load rather than fetched from the network or the file system.
struct NoRetrieval;

impl Retrieve for NoRetrieval {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "`$ref` to `{}` is outside the schema; the host never fetches schemas (inline it under `$defs`)",
            uri.as_str()
        )
        .into())
    }
}

/// At most 300 characters of a message that quotes the payload.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
