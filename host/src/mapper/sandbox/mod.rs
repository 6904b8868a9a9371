//! The sandbox every mapper call runs in: what a component may import ([`linker`]: WASI p2
//! granting nothing, waits confined to the deadline, and the WIT `host` interface), and
//! the state of one call's `Store` ([`SandboxState`]) with its limits: memory cap,
//! epoch deadline, captured stdio, a bounded `host.log`, and `host.config` answered from
//! the operator's per-mapper settings.

mod clock;
mod limiter;
mod stdio;

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::Mapper;
use super::bindings::pakaura::events::{host, types};
use super::limits::Limits;
use super::settings::Settings;
use crate::domain::text::truncate;
use clock::{CallClock, ClockedState, confine_waits};
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
    stdout: CapturedOutput,
    stderr: CapturedOutput,
    clock: CallClock,
}

impl SandboxState {
    /// A fresh state: no preopens, no environment, no arguments, closed stdin,
    /// no sockets or name lookups, captured stdout/stderr, the call's clock.
    fn new(mapper: Arc<str>, settings: Arc<Settings>, limits: &Limits) -> Self {
        let stdout = CapturedOutput::default();
        let stderr = CapturedOutput::default();
        let clock = CallClock::start(limits.deadline);
        let wasi = WasiCtx::builder()
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
        limits: &Limits,
        deadline_ticks: u64,
    ) -> Store<Self> {
        let mut store = Store::new(engine, Self::new(mapper, settings, limits));
        store.limiter(|state| &mut state.limiter);
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
    fn config_reads_this_mappers_settings() {
        let settings = Arc::new(Settings::from([("mode".to_owned(), "ok".to_owned())]));
        let mut state = SandboxState::new("m".into(), settings, &Limits::default());
        assert_eq!(
            host::Host::config(&mut state, "mode".into()).as_deref(),
            Some("ok")
        );
        assert_eq!(host::Host::config(&mut state, "other".into()), None);
    }
}
