//! Sandboxed calls into a mapper: an [`Instance`] (a store and an instantiated
//! component) and one call on it, with whatever went wrong classified into a
//! [`MapFailure`].
//!
//! A fresh instance's first call shares one deadline with its instantiation; a reused
//! instance gets a new deadline, a new `host.log` budget and empty stdio per call.

use std::sync::Arc;
use std::time::SystemTime;

use wasmtime::Store;

use super::bindings::pakaura::events::types as wit;
use super::bindings::{Mapper, MapperPre};
use super::error::MapFailure;
use super::limits::Limits;
use super::runtime::{InstanceSlot, MapperRuntime};
use super::sandbox::{LogBudget, MemoryLimitHit, SandboxState, WaitPastDeadline};
use super::schema::DeclaredSchema;
use super::settings::Settings;
use crate::domain::text::truncate;

/// The optional export that declares payload schemas (since `pakaura:events@1.1.0`).
pub(crate) const EVENT_SCHEMAS: &str = "event-schemas";

/// Longest guest-provided text kept in a failure (an `err` message, a trap's stderr).
const MAX_REASON: usize = 2 * 1024;

/// What a new instance needs.
pub(crate) struct CallContext<'a> {
    pub(crate) runtime: &'a MapperRuntime,
    pub(crate) pre: &'a MapperPre<SandboxState>,
    /// The name the host log tags the calls with.
    pub(crate) tag: Arc<str>,
    pub(crate) settings: Arc<Settings>,
    /// The mapper's `host.log` budget, shared by all its instances.
    pub(crate) log_budget: Arc<LogBudget>,
    pub(crate) limits: &'a Limits,
    /// What the guest's wall clock reads, when it is frozen (`mapper test`); `None`: the
    /// host's clock.
    pub(crate) wall_clock: Option<SystemTime>,
}

impl CallContext<'_> {
    /// A fresh sandbox for one instance of this mapper.
    fn new_store(&self) -> wasmtime::Store<SandboxState> {
        self.runtime.new_store(
            self.tag.clone(),
            self.settings.clone(),
            self.log_budget.clone(),
            self.limits,
            self.wall_clock,
        )
    }

    /// A new instance in a fresh sandbox; its deadline starts now and covers its first
    /// call too.
    pub(crate) fn instantiate(&self) -> Result<Instance, MapFailure> {
        let slot = self.runtime.instance_slot()?;
        let mut store = self.new_store();
        match self.pre.instantiate(&mut store) {
            Ok(mapper) => Ok(Instance {
                store,
                mapper,
                calls: 0,
                _slot: slot,
            }),
            Err(e) => {
                let stderr = store.data().drain_stdio();
                Err(classify(&e, store.data(), self.limits, &stderr))
            }
        }
    }

    /// Calls the optional export `event-schemas` (`pakaura:events@1.1.0`, world
    /// `typed-mapper`) on a fresh instance. Call it only for a component that exports it
    /// ([`super::inspect::exports_event_schemas`]).
    pub(crate) fn event_schemas(&self) -> Result<Vec<DeclaredSchema>, MapFailure> {
        let _slot = self.runtime.instance_slot()?;
        let mut store = self.new_store();
        let result = (|| {
            let instance = self.pre.instance_pre().instantiate(&mut store)?;
            let func = instance
                .get_typed_func::<(), (Vec<wit::EventSchema>,)>(&mut store, EVENT_SCHEMAS)?;
            let (schemas,) = func.call(&mut store, ())?;
            wasmtime::Result::Ok(schemas)
        })();
        let stderr = store.data().drain_stdio();
        let schemas = result.map_err(|e| classify(&e, store.data(), self.limits, &stderr))?;
        Ok(schemas
            .into_iter()
            .map(|s| DeclaredSchema {
                event_type: s.event_type,
                topic: s.topic,
                text: s.schema,
            })
            .collect())
    }

    /// Calls `describe` on a fresh instance.
    pub(crate) fn describe(&self) -> Result<wit::MapperInfo, MapFailure> {
        let mut instance = self.instantiate()?;
        instance.run(self.runtime, self.limits, |mapper, store| {
            mapper.call_describe(store)
        })
    }
}

/// An instantiated mapper and its store.
pub(crate) struct Instance {
    store: Store<SandboxState>,
    mapper: Mapper,
    /// Calls made on it so far.
    calls: u32,
    /// Dropped after the store (fields drop in order), freeing the pool slot.
    _slot: InstanceSlot,
}

impl Instance {
    /// Calls made on this instance so far.
    pub(crate) fn calls(&self) -> u32 {
        self.calls
    }

    /// Calls `map-mutation`; an `err` from the mapper becomes [`MapFailure::Rejected`].
    pub(crate) fn map_mutation(
        &mut self,
        runtime: &MapperRuntime,
        limits: &Limits,
        m: &wit::Mutation,
    ) -> Result<Vec<wit::Event>, MapFailure> {
        self.run(runtime, limits, |mapper, store| {
            mapper.call_map_mutation(store, m)
        })?
        .map_err(|msg| MapFailure::Rejected(truncate(&msg, MAX_REASON).into_owned()))
    }

    fn run<R>(
        &mut self,
        runtime: &MapperRuntime,
        limits: &Limits,
        call: impl FnOnce(&Mapper, &mut Store<SandboxState>) -> wasmtime::Result<R>,
    ) -> Result<R, MapFailure> {
        if self.calls > 0 {
            runtime.begin_call(&mut self.store, limits);
        }
        self.calls += 1;
        let result = call(&self.mapper, &mut self.store);
        let stderr = self.store.data().drain_stdio();
        result.map_err(|e| classify(&e, self.store.data(), limits, &stderr))
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
        // The root cause names what went wrong; the outer layers only say where.
        (None, None) => e.root_cause().to_string(),
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
