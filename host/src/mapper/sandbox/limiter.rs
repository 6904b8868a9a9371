//! The per-store resource limiter: enforces the memory cap and bounds instances,
//! tables and memories.

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
/// refused growth is reported as [`crate::mapper::MapFailure::MemoryLimit`] rather than as a
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
}
