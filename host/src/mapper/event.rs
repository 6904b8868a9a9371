//! [`MappedEvent`]: one validated event a mapper returned, ready to be wrapped in
//! a CloudEvents envelope (`crate::events::envelope`).

use serde::{Deserialize, Serialize};

use crate::domain::Mutation;

/// One event from one mapper, after output validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappedEvent {
    /// The mapper's name (from `describe`).
    pub mapper: String,
    /// The mapper's version (from `describe`).
    pub mapper_version: String,
    /// Position of the event in this mapper's output for the mutation; with the
    /// mutation id and mapper name it makes the envelope id.
    pub index: usize,
    /// An allowed topic the mapper declared.
    pub topic: String,
    /// The CloudEvents `type`.
    pub event_type: String,
    /// The CloudEvents `subject`, if any.
    pub subject: Option<String>,
    /// The payload, parsed.
    pub data: serde_json::Value,
    /// The CloudEvents `dataschema`, if any.
    pub data_schema: Option<String>,
    /// Extension attributes, in the mapper's order; names already validated.
    pub extensions: Vec<(String, String)>,
    /// The Kafka partition key the mapper chose, if any.
    pub partition_key: Option<String>,
}

impl MappedEvent {
    /// The partition key to publish with: the mapper's, else the task id, so one
    /// task's events stay in order.
    pub fn partition_key_for(&self, mutation: &Mutation) -> String {
        self.partition_key
            .clone()
            .unwrap_or_else(|| mutation.task.id.to_string())
    }
}
