//! [`Limits`], the rules every mapper call runs under (enforced by the sandbox and
//! by output validation).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::config::MapperConfig;
use super::schema::SchemaMode;
use super::topic::TopicName;

/// The sandbox limits and output rules applied to every mapper.
#[derive(Debug, Clone)]
pub struct Limits {
    /// CPU deadline of one call (`describe` or `map-mutation`, instantiation included).
    pub deadline: Duration,
    /// Memory cap of one instance: the sum of all its linear memories, in bytes.
    pub memory_bytes: u64,
    /// Most events one mapper may return for one mutation.
    pub max_events: usize,
    /// Largest `data` text of one event, in bytes.
    pub max_event_bytes: usize,
    /// Topics any mapper may declare and publish to.
    pub allowed_topics: Arc<BTreeSet<TopicName>>,
    /// Calls one instance may serve (0 and 1: a fresh instance per call).
    pub instance_reuse: u32,
    /// What a schema violation does (`MAPPER_SCHEMAS`).
    pub schemas: SchemaMode,
    /// The base of the published schemas' URLs (`SCHEMA_BASE_URL`, no trailing `/`).
    pub schema_base_url: Arc<str>,
}

impl Limits {
    /// The limits configured by `config`.
    pub fn from_config(config: &MapperConfig) -> Self {
        Self {
            deadline: config.mapper_deadline,
            memory_bytes: config.mapper_memory_limit,
            max_events: config.mapper_max_events as usize,
            max_event_bytes: usize::try_from(config.mapper_max_event_bytes).unwrap_or(usize::MAX),
            allowed_topics: Arc::new(config.allowed_topics.iter().cloned().collect()),
            instance_reuse: config.mapper_instance_reuse,
            schemas: config.mapper_schemas,
            schema_base_url: config.schema_base_url.as_str().into(),
        }
    }

    /// Most bytes a guest may hand the host in one crossing (a log line, a setting's key,
    /// the events it returns): wasmtime's hostcall fuel, so a guest cannot make the host
    /// allocate unbounded memory on its behalf. Room for the largest output the caps
    /// allow, twice over, plus 1 MiB, so the caps (with their typed failures) are what
    /// a large but well-formed output meets first.
    pub fn hostcall_fuel(&self) -> usize {
        self.max_events
            .saturating_mul(self.max_event_bytes)
            .saturating_mul(2)
            .saturating_add(1 << 20)
    }

    /// Whether `topic` is one of the allowed topics.
    pub fn allows(&self, topic: &str) -> bool {
        self.allowed_topics.iter().any(|t| t.as_str() == topic)
    }

    /// The allowed topics as one comma-separated line, for messages.
    pub fn allowed_list(&self) -> String {
        let names: Vec<&str> = self.allowed_topics.iter().map(TopicName::as_str).collect();
        names.join(", ")
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::from_config(&MapperConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_config() {
        let l = Limits::default();
        assert!(l.allows("reminders"));
        assert!(!l.allows("secrets"));
        assert_eq!(l.allowed_list(), "reminders, task-events, task-updates");
    }
}
