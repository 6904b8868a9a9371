//! The guest's clock: [`CallClock`] (the call's origin and deadline) and the waits a
//! mapper may make on it.
//!
//! Epoch interruption stops a guest that computes past its deadline, but not one
//! blocked inside a host call. The only host calls a mapper's sandbox lets block
//! are waits on `wasi:clocks/monotonic-clock` pollables (there are no files,
//! sockets or stdin). So the host replaces `subscribe-duration` and
//! `subscribe-instant` ([`confine_waits`]): a wait that would end past the call's
//! deadline traps at once and is reported as a deadline failure; shorter waits
//! behave normally.

use std::time::{Duration, Instant};

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// The monotonic-clock interface as `wasmtime-wasi` (pinned at =48.0.8) defines it
/// in the linker; `wasi:clocks@0.2.x` imports of any patch version resolve to it.
pub(crate) const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// A wall clock that always reads one instant, for `pakaura mapper test`: the guest
/// sees the mutation's `occurred_at` as the time, so fixtures stay stable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrozenWallClock {
    /// Since the Unix epoch.
    since_epoch: Duration,
}

impl FrozenWallClock {
    /// A clock reading `at` (the epoch itself for an instant before it).
    pub(crate) fn at(at: std::time::SystemTime) -> Self {
        Self {
            since_epoch: at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default(),
        }
    }
}

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        self.since_epoch
    }
}

/// One call's clock: the guest's monotonic clock counts from `origin`, and no wait may
/// end after `deadline`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallClock {
    origin: Instant,
    deadline: Instant,
}

impl CallClock {
    /// A clock starting now, for a call that may last `budget`.
    pub(crate) fn start(budget: Duration) -> Self {
        let origin = Instant::now();
        Self {
            origin,
            deadline: origin + budget,
        }
    }

    /// The guest's reading: nanoseconds since the call started.
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A pollable ready after `wait`, or an error if that is past the deadline.
    fn wait(
        &self,
        table: &mut ResourceTable,
        wait: Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let until = match Instant::now().checked_add(wait) {
            Some(until) if until <= self.deadline => until,
            _ => return Err(WaitPastDeadline { wait }.into()),
        };
        let sleep = Sleep {
            until: (!wait.is_zero()).then(|| tokio::time::Instant::from_std(until)),
        };
        let resource = table.push(sleep)?;
        subscribe(table, resource)
    }
}

impl HostMonotonicClock for CallClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.now_nanos()
    }
}

/// What a store's data gives the replaced clock functions.
pub(crate) trait ClockedState: Send + 'static {
    /// The call's clock and its resource table.
    fn clock_and_table(&mut self) -> (&CallClock, &mut ResourceTable);
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
pub(crate) fn confine_waits<T: ClockedState>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |mut store, (nanos,): (u64,)| {
        let (clock, table) = store.data_mut().clock_and_table();
        clock.wait(table, Duration::from_nanos(nanos)).map(|r| (r,))
    })?;
    clock.func_wrap("subscribe-instant", |mut store, (when,): (u64,)| {
        let (clock, table) = store.data_mut().clock_and_table();
        let wait = Duration::from_nanos(when.saturating_sub(clock.now_nanos()));
        clock.wait(table, wait).map(|r| (r,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_within_the_deadline_are_allowed() {
        let clock = CallClock::start(Duration::from_millis(100));
        let mut table = ResourceTable::new();
        assert!(clock.wait(&mut table, Duration::ZERO).is_ok());
        assert!(clock.wait(&mut table, Duration::from_millis(1)).is_ok());
    }

    #[test]
    fn a_wait_past_the_deadline_fails_at_once() {
        let clock = CallClock::start(Duration::from_millis(100));
        let mut table = ResourceTable::new();
        let err = clock
            .wait(&mut table, Duration::from_secs(3600))
            .unwrap_err();
        assert!(err.downcast_ref::<WaitPastDeadline>().is_some());
        assert!(
            clock
                .wait(&mut table, Duration::from_nanos(u64::MAX))
                .is_err()
        );
    }

    #[test]
    fn the_clock_counts_from_the_call_start() {
        let clock = CallClock::start(Duration::from_secs(1));
        let a = clock.now_nanos();
        std::thread::sleep(Duration::from_millis(2));
        assert!(clock.now_nanos() >= a + 2_000_000);
    }
}
