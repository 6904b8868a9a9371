//! Logging (JSON lines through `tracing`) and the process-wide metrics recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Installs the JSON log subscriber. `RUST_LOG` filters (default `info`).
/// Safe to call more than once (later calls do nothing), so tests may call it.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The Prometheus recorder, installed once per process (tests start many hosts in
/// one process; they share it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = crate::instruments::builder()
                .unwrap_or_else(|e| {
                    // Only an empty bucket list fails, and ours are constants.
                    tracing::error!(error = %e, "histogram buckets refused; exporting summaries");
                    PrometheusBuilder::new()
                })
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding program);
            // the handle then renders an empty page rather than failing start-up.
            if metrics::set_global_recorder(recorder).is_ok() {
                crate::instruments::describe();
            }
            handle
        })
        .clone()
}
