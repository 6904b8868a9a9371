//! Guest waits: a mapper may only wait on the monotonic clock until its deadline.
//!
//! Epoch interruption stops a guest that computes past its deadline, but not one
//! blocked inside a host call. The only host calls a mapper's sandbox lets block
//! are waits on `wasi:clocks/monotonic-clock` pollables (there are no files,
//! sockets or stdin). So the host replaces `subscribe-duration` and
//! `subscribe-instant`: a wait that would end past the call's deadline traps at
//! once and is reported as a deadline failure; shorter waits behave normally.

use std::time::{Duration, Instant};

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::HostMonotonicClock;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use super::imports::SandboxState;

/// The monotonic-clock interface as `wasmtime-wasi` (pinned at =48.0.8) defines it
/// in the linker; `wasi:clocks@0.2.x` imports of any patch version resolve to it.
pub(crate) const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// The guest's monotonic clock: nanoseconds since the call's store was created.
pub(crate) struct SandboxClock {
    pub(crate) origin: Instant,
}

impl HostMonotonicClock for SandboxClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The error that ends a call whose wait would outlast its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the mapper asked to wait {}, past its deadline", humantime::format_duration(*.wait))]
pub(crate) struct WaitPastDeadline {
    pub(crate) wait: Duration,
}

/// A wait ending at `until` (`None`: ready at once).
struct Sleep {
    until: Option<tokio::time::Instant>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Sleep {
    async fn ready(&mut self) {
        if let Some(until) = self.until {
            tokio::time::sleep_until(until).await;
        }
    }
}

/// Replaces the two `subscribe-*` functions of the monotonic clock in `linker`.
pub(crate) fn confine_waits(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |mut store, (nanos,): (u64,)| {
        wait(store.data_mut(), Duration::from_nanos(nanos)).map(|r| (r,))
    })?;
    clock.func_wrap("subscribe-instant", |mut store, (when,): (u64,)| {
        let state = store.data_mut();
        let now = state.clock_now();
        wait(state, Duration::from_nanos(when.saturating_sub(now))).map(|r| (r,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

fn wait(state: &mut SandboxState, wait: Duration) -> wasmtime::Result<Resource<DynPollable>> {
    let now = Instant::now();
    let until = match now.checked_add(wait) {
        Some(until) if until <= state.call_deadline() => until,
        _ => return Err(WaitPastDeadline { wait }.into()),
    };
    let sleep = Sleep {
        until: (!wait.is_zero()).then(|| tokio::time::Instant::from_std(until)),
    };
    let table = state.table();
    let resource = table.push(sleep)?;
    subscribe(table, resource)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::mapper::limits::Limits;

    fn state() -> SandboxState {
        SandboxState::new("m".into(), Arc::default(), &Limits::default())
    }

    #[test]
    fn waits_within_the_deadline_are_allowed() {
        let mut s = state();
        assert!(wait(&mut s, Duration::ZERO).is_ok());
        assert!(wait(&mut s, Duration::from_millis(1)).is_ok());
    }

    #[test]
    fn a_wait_past_the_deadline_fails_at_once() {
        let mut s = state();
        let err = wait(&mut s, Duration::from_secs(3600)).unwrap_err();
        assert!(err.downcast_ref::<WaitPastDeadline>().is_some());
        assert!(wait(&mut s, Duration::from_nanos(u64::MAX)).is_err());
    }
}
