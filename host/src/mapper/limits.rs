//! [`Limits`], the rules every mapper call runs under, and the per-store resource
//! limiter that enforces the memory cap.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::settings::MapperConfig;
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
        }
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

/// Most core instances, tables and memories one component instance may create.
/// A Rust `wasm32-wasip2` component uses a handful; the caps stop a pathological
/// component from exhausting host resources.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 16;
const MAX_MEMORIES: usize = 8;
/// Most elements in one table (16 tables of 16 Ki entries bound table memory to a
/// few MiB, outside the linear-memory cap).
const MAX_TABLE_ELEMENTS: usize = 1 << 14;

/// The error that ends a call whose memory growth was refused.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes reached (growing to {wanted} bytes was refused)")]
pub(crate) struct MemoryLimitHit {
    pub(crate) limit: u64,
    pub(crate) wanted: u64,
}

/// Enforces the memory cap of one store and remembers that it was hit, so a
/// refused growth is reported as [`super::MapFailure::MemoryLimit`] rather than as a
/// generic trap.
#[derive(Debug)]
pub(crate) struct SandboxLimiter {
    limit: u64,
    /// Bytes of linear memory the store's instances currently hold.
    used: u64,
    /// Set when a growth was refused.
    pub(crate) memory_refused: bool,
}

impl SandboxLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            used: 0,
            memory_refused: false,
        }
    }
}

impl wasmtime::ResourceLimiter for SandboxLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        let total = self.used.saturating_add(growth);
        if total > self.limit {
            self.memory_refused = true;
            return Err(MemoryLimitHit {
                limit: self.limit,
                wanted: total,
            }
            .into());
        }
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        self.used = total;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::ResourceLimiter;

    use super::*;

    #[test]
    fn growth_counts_across_memories_and_stops_at_the_limit() {
        let mut l = SandboxLimiter::new(100);
        assert!(l.memory_growing(0, 60, None).unwrap());
        assert!(l.memory_growing(0, 30, None).unwrap());
        let err = l.memory_growing(30, 50, None).unwrap_err();
        assert!(err.downcast_ref::<MemoryLimitHit>().is_some());
        assert!(l.memory_refused);
    }

    #[test]
    fn a_memory_maximum_is_respected_without_tripping_the_limit() {
        let mut l = SandboxLimiter::new(1000);
        assert!(!l.memory_growing(0, 20, Some(10)).unwrap());
        assert!(!l.memory_refused);
    }

    #[test]
    fn limits_follow_the_config() {
        let l = Limits::default();
        assert!(l.allows("reminders"));
        assert!(!l.allows("secrets"));
        assert_eq!(l.allowed_list(), "reminders, task-events, task-updates");
    }
}
