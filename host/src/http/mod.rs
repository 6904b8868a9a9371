//! The HTTP surface: one typed state, one router per resource.
//!
//! Layout: `tasks` (REST API), `mcp` (the same operations as MCP tools), `health`
//! (liveness, readiness, metrics), `admin` (mappers, dead letters, envelopes, the
//! event flow, the mapper playground), `schemas` (the mappers' published payload
//! schemas), `console` (the operator console's pages and its
//! session cookie), `openapi` (the generated document); `auth`, `context`, `error` and
//! `extract` are shared plumbing. Handlers extract, call one service and respond: the
//! task operations live in [`crate::tasks`], the operator's in [`crate::operator`].

pub mod admin;
pub mod auth;
pub mod console;
pub mod context;
pub mod error;
pub mod extract;
mod health;
mod mcp;
mod openapi;
mod schemas;
mod serve;
pub mod tasks;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::{Instrument, Span};

use crate::auth::{AdminTokens, Authenticator};
use crate::instruments::{HTTP_DURATION, HTTP_REQUESTS};
use crate::operator::Operator;
use crate::tasks::TaskService;
use crate::telemetry::traces;
use crate::trace::TraceParent;
use context::RequestContext;
use error::ApiError;
pub use serve::serve;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The task operations (REST and MCP).
    pub tasks: TaskService,
    /// The operator's operations (admin API, console, readiness).
    pub operator: Operator,
    /// Verifies user tokens (REST and MCP).
    pub auth: Authenticator,
    /// `None` disables the admin API.
    pub admin_token: Option<Arc<AdminTokens>>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// The operator console's sessions.
    pub console: console::Console,
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(tasks::router())
        .merge(health::router())
        .merge(admin::router(&state))
        .merge(console::router())
        .merge(openapi::router())
        .merge(schemas::router())
        .merge(mcp::router(state.clone()))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(observe))
        .layer(middleware::from_fn(context::establish))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .with_state(state)
}

/// Runs the request inside a span carrying its correlation id (see [`request_span`]),
/// logs its outcome and records HTTP metrics.
async fn observe(request: Request, next: Next) -> Response {
    let (correlation_id, traceparent) = request
        .extensions()
        .get::<RequestContext>()
        .map(|c| (c.correlation_id.clone(), c.traceparent))
        .unwrap_or_default();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let span = request_span(&method, &route, &correlation_id, traceparent);
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if response.status().is_server_error() {
        span.record("otel.status_code", "error");
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(elapsed.as_secs_f64());
    response
}

/// The span of one request. With traces on, it is a server span continuing the caller's
/// `traceparent` and carries its trace id into the log lines.
fn request_span(
    method: &Method,
    route: &str,
    correlation_id: &str,
    traceparent: Option<TraceParent>,
) -> Span {
    if !traces::enabled() {
        return tracing::info_span!(
            "request",
            method = %method,
            route = %route,
            correlation_id = %correlation_id,
            user_id = tracing::field::Empty,
        );
    }
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        method = %method,
        route = %route,
        correlation_id = %correlation_id,
        user_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(parent) = traceparent {
        traces::set_parent(&span, parent);
    }
    if let Some(own) = traces::traceparent_of(&span) {
        span.record("trace_id", hex::encode(own.trace_id));
    }
    span
}
