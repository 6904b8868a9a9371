//! One sandboxed call into a mapper: a fresh store and instance, the call, and the
//! classification of whatever went wrong into a [`MapFailure`].

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::pakaura::events::types as wit;
use super::bindings::{Mapper, MapperPre};
use super::error::MapFailure;
use super::limits::Limits;
use super::runtime::MapperRuntime;
use super::sandbox::{MemoryLimitHit, SandboxState, WaitPastDeadline, truncate};
use super::settings::Settings;

/// Longest guest-provided text kept in a failure (an `err` message, a trap's stderr).
const MAX_REASON: usize = 2 * 1024;

/// Everything one call needs besides its argument.
pub(crate) struct CallContext<'a> {
    pub(crate) runtime: &'a MapperRuntime,
    pub(crate) pre: &'a MapperPre<SandboxState>,
    /// The name the host log tags the call with.
    pub(crate) tag: Arc<str>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) limits: &'a Limits,
}

impl CallContext<'_> {
    /// Calls `describe`.
    pub(crate) fn describe(&self) -> Result<wit::MapperInfo, MapFailure> {
        self.run(|mapper, store| mapper.call_describe(store))
    }

    /// Calls `map-mutation`; an `err` from the mapper becomes [`MapFailure::Rejected`].
    pub(crate) fn map_mutation(&self, m: &wit::Mutation) -> Result<Vec<wit::Event>, MapFailure> {
        self.run(|mapper, store| mapper.call_map_mutation(store, m))?
            .map_err(|msg| MapFailure::Rejected(truncate(&msg, MAX_REASON).into_owned()))
    }

    fn run<R>(
        &self,
        call: impl FnOnce(&Mapper, &mut Store<SandboxState>) -> wasmtime::Result<R>,
    ) -> Result<R, MapFailure> {
        let mut store =
            self.runtime
                .new_store(self.tag.clone(), self.settings.clone(), self.limits);
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|mapper| call(&mapper, &mut store));
        let stderr = store.data().drain_stdio();
        result.map_err(|e| classify(&e, store.data(), self.limits, &stderr))
    }
}

/// Names a failed call: memory cap, deadline, or a trap with its reason and the
/// tail of the guest's stderr (where a Rust guest's panic message goes).
fn classify(
    e: &wasmtime::Error,
    state: &SandboxState,
    limits: &Limits,
    stderr: &str,
) -> MapFailure {
    if state.memory_refused() || e.downcast_ref::<MemoryLimitHit>().is_some() {
        return MapFailure::MemoryLimit {
            limit: limits.memory_bytes,
        };
    }
    let trap = e.downcast_ref::<wasmtime::Trap>();
    if trap == Some(&wasmtime::Trap::Interrupt) || e.downcast_ref::<WaitPastDeadline>().is_some() {
        return MapFailure::Deadline {
            limit: limits.deadline,
        };
    }
    let mut reason = match (trap, e.downcast_ref::<wasmtime_wasi::I32Exit>()) {
        (Some(trap), _) => trap.to_string(),
        (None, Some(exit)) => format!("the mapper exited with status {}", exit.0),
        (None, None) => e.to_string(),
    };
    if !stderr.is_empty() {
        // One line, so the reason fits a log field, a dead letter and a CLI error.
        let stderr: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        reason = format!("{reason}; stderr: {}", stderr.join(" | "));
    }
    MapFailure::Trap(truncate(&reason, MAX_REASON).into_owned())
}
