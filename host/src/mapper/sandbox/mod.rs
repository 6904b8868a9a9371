//! The state of one sandboxed call (`Store` data) and the host side of the WIT
//! `host` interface: `log` into the host's `tracing` log and `config` from the
//! operator's per-mapper settings.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::pakaura::events::{host, types};
use super::clock::SandboxClock;
use super::limits::{Limits, SandboxLimiter};
use super::settings::Settings;
use super::stdio::CapturedOutput;

/// Longest log message kept, in bytes; longer ones are cut with a marker.
const MAX_LOG_MESSAGE: usize = 4 * 1024;
/// Most `host.log` lines one call may write; later ones are dropped.
const MAX_LOG_LINES: usize = 256;

/// Everything one call's `Store` holds: a WASI context that grants nothing, the
/// resource limiter, the mapper's name and settings, captured stdio.
pub(crate) struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: SandboxLimiter,
    /// The mapper's name (or, during `describe`, the file being loaded).
    mapper: Arc<str>,
    settings: Arc<Settings>,
    log_lines: usize,
    pub(crate) stdout: CapturedOutput,
    pub(crate) stderr: CapturedOutput,
    /// Zero of the guest's monotonic clock.
    clock_origin: Instant,
    /// When the call's CPU deadline ends; guest waits may not outlast it.
    call_deadline: Instant,
}

impl SandboxState {
    /// A fresh state: no preopens, no environment, no arguments, closed stdin,
    /// no sockets or name lookups, captured stdout/stderr.
    pub(crate) fn new(mapper: Arc<str>, settings: Arc<Settings>, limits: &Limits) -> Self {
        let stdout = CapturedOutput::default();
        let stderr = CapturedOutput::default();
        let clock_origin = Instant::now();
        let wasi = WasiCtx::builder()
            .monotonic_clock(SandboxClock {
                origin: clock_origin,
            })
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
            clock_origin,
            call_deadline: clock_origin + limits.deadline,
        }
    }

    /// The guest's monotonic clock reading, in nanoseconds.
    pub(crate) fn clock_now(&self) -> u64 {
        u64::try_from(self.clock_origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// When this call's deadline ends.
    pub(crate) fn call_deadline(&self) -> Instant {
        self.call_deadline
    }

    /// The call's resource table.
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
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

/// `text` cut to at most `max` bytes on a character boundary, with a marker when cut.
pub(crate) fn truncate(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let end = (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("ééé", 3);
        assert!(cut.starts_with("é…"), "{cut}");
        assert!(cut.contains("4 bytes cut"));
    }

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
