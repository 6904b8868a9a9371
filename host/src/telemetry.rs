//! Logging (JSON lines through `tracing`), OpenTelemetry traces ([`traces`]) and the
//! process-wide metrics recorder.

pub mod traces;

use std::sync::{Once, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the JSON log subscriber, with the OpenTelemetry layer when the environment
/// asks for traces (see [`traces`]). `RUST_LOG` filters both (default `info`).
/// Safe to call more than once (later calls do nothing), so tests may call it.
pub fn init_logging() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let logs = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_target(true)
            .with_writer(std::io::stderr);
        let (otel, failed) = match traces::layer() {
            Ok(layer) => (layer, None),
            Err(e) => (None, Some(e)),
        };
        // One global filter for logs and spans alike: per-layer filters keep per-thread
        // state that a bare `enabled!` check (sqlx makes them) can leave stale, and the
        // trace layer then misses spans now and then.
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(logs)
            .with(otel)
            .try_init();
        if let Some(e) = failed {
            tracing::error!(error = %e, "traces are off: the OTLP exporter could not be set up");
        }
    });
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
