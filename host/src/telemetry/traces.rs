//! OpenTelemetry traces: `tracing` spans exported over OTLP/HTTP, off unless
//! `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
//!
//! The SDK reads the standard `OTEL_*` variables itself (headers, timeout, sampler,
//! batch settings, resource attributes); the service name defaults to `pakaura`, the
//! protocol to `http/protobuf` (or `http/json`), and the endpoint must be `http://`.
//! Spans go through a batch processor, flushed by [`shutdown`].
//!
//! One trace follows a mutation: the request span (a child of the caller's
//! `traceparent`), the outbox write, whose context is stored with the outbox row, then
//! in the relay the mapping of that row and each publish, both children of the stored
//! context. The spans only the trace needs are made through [`span`], which costs
//! nothing while traces are off.

use std::sync::OnceLock;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::trace::TraceParent;

/// The service name when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES`
/// names one.
const DEFAULT_SERVICE_NAME: &str = "pakaura";
/// The instrumentation scope of the host's spans.
const SCOPE: &str = "pakaura";

/// The tracer provider, once traces are on.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Why traces could not be turned on.
#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    /// The protocol asked for is not built in.
    #[error("{name} `{value}` is not supported: use http/protobuf or http/json")]
    Protocol { name: &'static str, value: String },
    /// The endpoint asks for TLS, which is not built in.
    #[error(
        "{name} is an https:// URL: the OTLP exporter has no TLS; use a plain http:// collector"
    )]
    Tls { name: &'static str },
    /// The SDK refused the exporter's configuration.
    #[error("setting up the OTLP trace exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The OTLP protocol: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
/// `OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf` (the SDK itself would pick
/// `http/json` whenever that encoding is built in).
fn protocol() -> Result<Protocol, TracesError> {
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        let Some(value) = setting(name) else {
            continue;
        };
        return match value.as_str() {
            "http/protobuf" => Ok(Protocol::HttpBinary),
            "http/json" => Ok(Protocol::HttpJson),
            _ => Err(TracesError::Protocol { name, value }),
        };
    }
    Ok(Protocol::HttpBinary)
}

/// The endpoint variables, the signal's own first.
const ENDPOINTS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// A variable's value, trimmed, when set and not blank.
fn setting(name: &str) -> Option<String> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Whether the environment asks for traces: an OTLP endpoint is set and the SDK is not
/// disabled (`OTEL_SDK_DISABLED=true`).
fn wanted() -> bool {
    let disabled = setting("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && ENDPOINTS.iter().any(|name| setting(name).is_some())
}

/// Refuses an `https://` endpoint up front (the signal's own, else the general one):
/// the exporter's HTTP client has no TLS, and every export would fail.
fn check_endpoint() -> Result<(), TracesError> {
    let Some((name, url)) = ENDPOINTS
        .into_iter()
        .find_map(|name| setting(name).map(|url| (name, url)))
    else {
        return Ok(());
    };
    if url.to_ascii_lowercase().starts_with("https://") {
        return Err(TracesError::Tls { name });
    }
    Ok(())
}

/// The layer exporting spans, when the environment asks for traces (see
/// the module documentation); `None` otherwise. Call once per process.
pub(super) fn layer<S>() -> Result<Option<impl Layer<S>>, TracesError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    if !wanted() || PROVIDER.get().is_some() {
        return Ok(None);
    }
    check_endpoint()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol()?)
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build();
    let tracer = provider.tracer(SCOPE);
    if PROVIDER.set(provider).is_err() {
        return Ok(None);
    }
    Ok(Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            // Keep spans lean: the code location stays; threads, the target (the
            // location's module says it) and busy/idle timings go.
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false),
    ))
}

/// The resource: what the SDK detects (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`),
/// with the service called `pakaura` when neither names it.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let mut builder = Resource::builder();
    if !named {
        builder = builder.with_service_name(DEFAULT_SERVICE_NAME);
    }
    if detected
        .get(&opentelemetry::Key::from_static_str("service.version"))
        .is_none()
    {
        builder =
            builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    }
    builder.build()
}

/// Whether traces are on in this process.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// `make()` when traces are on, else a disabled span: for spans that only a trace
/// needs, so they cost nothing while traces are off.
pub fn span(make: impl FnOnce() -> Span) -> Span {
    if enabled() { make() } else { Span::none() }
}

/// Makes the remote span `parent` the parent of `span`. Only before `span` is entered
/// or its context read ([`traceparent_of`]); later, the span keeps the parent it has.
pub fn set_parent(span: &Span, parent: TraceParent) {
    if !enabled() || span.is_none() {
        return;
    }
    let context = SpanContext::new(
        TraceId::from_bytes(parent.trace_id),
        SpanId::from_bytes(parent.span_id),
        TraceFlags::new(parent.flags),
        true,
        TraceState::default(),
    );
    let _ = span.set_parent(Context::new().with_remote_span_context(context));
}

/// The W3C trace context of `span`, when traces are on and it has a valid one. Reading
/// it starts the OpenTelemetry span, so its parent must be set before.
pub fn traceparent_of(span: &Span) -> Option<TraceParent> {
    if !enabled() || span.is_none() {
        return None;
    }
    let context = span.context();
    let span_ref = context.span();
    let sc = span_ref.span_context();
    sc.is_valid().then(|| TraceParent {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8(),
    })
}

/// Exports the spans still buffered and stops the exporter; at the end of the process.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        tracing::warn!(error = %e, "flushing the last spans failed");
    }
}
