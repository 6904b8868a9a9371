//! The sandbox every mapper call runs in: what a component may import ([`linker`]: WASI p2
//! granting nothing, waits confined to the deadline, and the WIT `host` interface), and
//! the state of one call's `Store` ([`SandboxState`]) with its limits: memory cap,
//! epoch deadline, captured stdio, a bounded `host.log`, and `host.config` answered from
//! the operator's per-mapper settings.

mod clock;
mod limiter;
mod stdio;

use std::sync::Arc;
use std::time::SystemTime;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::Mapper;
use super::bindings::pakaura::events::{host, types};
use super::limits::Limits;
use super::settings::Settings;
use crate::domain::text::truncate;
use clock::{CallClock, ClockedState, FrozenWallClock, confine_waits};
use limiter::SandboxLimiter;
use stdio::CapturedOutput;

#[cfg(test)]
pub(crate) use clock::MONOTONIC_CLOCK;
pub(crate) use clock::WaitPastDeadline;
pub(crate) use limiter::MemoryLimitHit;

/// Longest log message kept, in bytes; longer ones are cut with a marker.
const MAX_LOG_MESSAGE: usize = 4 * 1024;
/// Most `host.log` lines one call may write; later ones are dropped.
const MAX_LOG_LINES: usize = 256;
/// `host.log` lines one mapper may write over time, across calls and instances: a burst
/// of [`LOG_BURST`], then [`LOG_LINES_PER_SECOND`]; lines past that are dropped and
/// counted.
const LOG_BURST: f64 = 1_000.0;
const LOG_LINES_PER_SECOND: f64 = 100.0;

/// The `host.log` budget one mapper shares across its calls (a token bucket).
#[derive(Debug)]
pub(crate) struct LogBudget {
    state: std::sync::Mutex<(f64, std::time::Instant)>,
    dropped: std::sync::atomic::AtomicU64,
}

impl Default for LogBudget {
    fn default() -> Self {
        Self {
            state: std::sync::Mutex::new((LOG_BURST, std::time::Instant::now())),
            dropped: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl LogBudget {
    /// Takes one line from the budget; false (and the line counted as dropped) when
    /// the mapper has logged too much lately.
    fn take(&self) -> bool {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, refilled) = &mut *state;
        let now = std::time::Instant::now();
        *tokens = (*tokens + now.duration_since(*refilled).as_secs_f64() * LOG_LINES_PER_SECOND)
            .min(LOG_BURST);
        *refilled = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            false
        }
    }

    /// Lines dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The linker every mapper is instantiated with: WASI p2 (whose context grants nothing,
/// see [`SandboxState::new`]), monotonic-clock waits confined to the call's deadline, and
/// the `host` interface.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<SandboxState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    confine_waits(&mut linker)?;
    Mapper::add_to_linker::<SandboxState, HasSelf<SandboxState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Everything one call's `Store` holds: a WASI context that grants nothing, the
/// resource limiter, the mapper's name and settings, captured stdio.
pub(crate) struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: SandboxLimiter,
    /// The mapper's name (or, during `describe`, the file being loaded).
    mapper: Arc<str>,
    settings: Arc<Settings>,
    log_lines: usize,
    log_budget: Arc<LogBudget>,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
    clock: CallClock,
}

impl SandboxState {
    /// A fresh state: no preopens, no environment, no arguments, closed stdin,
    /// no sockets or name lookups, captured stdout/stderr, the call's clock.
    fn new(
        mapper: Arc<str>,
        settings: Arc<Settings>,
        log_budget: Arc<LogBudget>,
        limits: &Limits,
        wall_clock: Option<SystemTime>,
    ) -> Self {
        let stdout = CapturedOutput::default();
        let stderr = CapturedOutput::default();
        let clock = CallClock::start(limits.deadline);
        let mut builder = WasiCtx::builder();
        if let Some(at) = wall_clock {
            builder.wall_clock(FrozenWallClock::at(at));
        }
        let wasi = builder
            .monotonic_clock(clock)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: SandboxLimiter::new(limits.memory_bytes),
            mapper,
            settings,
            log_lines: 0,
            log_budget,
            stdout,
            stderr,
            clock,
        }
    }

    /// A store for one call of `mapper`: a fresh state, the memory cap and the epoch
    /// deadline of `limits` (`deadline_ticks` epoch ticks).
    pub(crate) fn store(
        engine: &Engine,
        mapper: Arc<str>,
        settings: Arc<Settings>,
        log_budget: Arc<LogBudget>,
        limits: &Limits,
        deadline_ticks: u64,
        wall_clock: Option<SystemTime>,
    ) -> Store<Self> {
        let state = Self::new(mapper, settings, log_budget, limits, wall_clock);
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_hostcall_fuel(limits.hostcall_fuel());
        store.set_epoch_deadline(deadline_ticks);
        store.epoch_deadline_trap();
        store
    }

    /// Starts another call on a reused instance: its clock's deadline counts from now
    /// and its `host.log` budget is full again.
    pub(crate) fn begin_call(&mut self, limits: &Limits) {
        self.clock = CallClock::start(limits.deadline);
        self.log_lines = 0;
    }

    /// Whether a memory growth was refused during the call.
    pub(crate) fn memory_refused(&self) -> bool {
        self.limiter.memory_refused
    }

    /// Writes what the guest printed to the host log (debug) and returns the tail
    /// of its stderr, which holds a Rust guest's panic message.
    pub(crate) fn drain_stdio(&self) -> String {
        let (out, out_dropped) = self.stdout.take();
        let (err, err_dropped) = self.stderr.take();
        for (stream, text, dropped) in
            [("stdout", &out, out_dropped), ("stderr", &err, err_dropped)]
        {
            if !text.is_empty() {
                tracing::debug!(mapper = %self.mapper, stream, dropped_bytes = dropped, "{text}");
            }
        }
        let tail_start = err.len().saturating_sub(512);
        let tail_start = (tail_start..err.len())
            .find(|&i| err.is_char_boundary(i))
            .unwrap_or(err.len());
        err[tail_start..].trim().to_owned()
    }
}

impl ClockedState for SandboxState {
    fn clock_and_table(&mut self) -> (&CallClock, &mut ResourceTable) {
        (&self.clock, &mut self.table)
    }
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for SandboxState {}

impl host::Host for SandboxState {
    fn log(&mut self, level: host::Level, message: String) {
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(mapper = %self.mapper, "mapper wrote more than {MAX_LOG_LINES} log lines in one call; dropping the rest");
            }
            return;
        }
        if !self.log_budget.take() {
            return;
        }
        let message = truncate(&message, MAX_LOG_MESSAGE);
        let mapper = &*self.mapper;
        match level {
            host::Level::Trace => tracing::trace!(mapper, "{message}"),
            host::Level::Debug => tracing::debug!(mapper, "{message}"),
            host::Level::Info => tracing::info!(mapper, "{message}"),
            host::Level::Warn => tracing::warn!(mapper, "{message}"),
            host::Level::Error => tracing::error!(mapper, "{message}"),
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.settings.get(&key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_budget_drops_lines_past_its_burst() {
        let budget = LogBudget::default();
        let taken = (0..LOG_BURST as usize + 50)
            .filter(|_| budget.take())
            .count();
        assert!(
            taken >= LOG_BURST as usize && taken < LOG_BURST as usize + 50,
            "{taken}"
        );
        assert!(budget.dropped() > 0);
    }

    #[test]
    fn config_reads_this_mappers_settings() {
        let settings = Arc::new(Settings::from([("mode".to_owned(), "ok".to_owned())]));
        let mut state = SandboxState::new(
            "m".into(),
            settings,
            Arc::default(),
            &Limits::default(),
            None,
        );
        assert_eq!(
            host::Host::config(&mut state, "mode".into()).as_deref(),
            Some("ok")
        );
        assert_eq!(host::Host::config(&mut state, "other".into()), None);
    }
}
