//! Health: liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::AppState;
use crate::auth::JwksStatus;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

/// Ready when the database answers, the relay runs and, with `JWT_JWKS_URL`, the identity
/// provider's keys have been fetched at least once. A mapper set is always loaded
/// (start-up fails without one, a refused reload keeps the previous one); its size is
/// reported for information.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let readiness = state.operator.readiness().await;
    let jwks = state.auth.jwks().map(|jwks| jwks.status());
    let keys_fetched = jwks.as_ref().is_none_or(|s| s.last_success.is_some());
    let ready = readiness.ready() && keys_fetched;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "database": readiness.database,
        "relay": readiness.relay,
        "mappers": readiness.mappers,
    });
    if let Some(jwks) = &jwks {
        body["jwks"] = jwks_detail(jwks);
    }
    (status, Json(body))
}

/// The identity provider's key set as `/readyz` shows it: `ok`; `stale` (the last fetch
/// failed, the cached keys stay in use: still ready); or `unavailable` (never fetched: not
/// ready, since no token the provider signs can be verified yet).
fn jwks_detail(jwks: &JwksStatus) -> Value {
    let (status, detail) = match (jwks.last_success, jwks.failing_since) {
        (None, _) => (
            "unavailable",
            "the JWK set has never been fetched; retrying in the background",
        ),
        (Some(_), Some(_)) => (
            "stale",
            "the last refresh failed; the cached keys stay in use while it is retried",
        ),
        (Some(_), None) => ("ok", "the JWK set is fresh"),
    };
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
    };
    json!({
        "status": status,
        "detail": detail,
        "keys": jwks.keys,
        "last_success": time(jwks.last_success),
        "failing_since": time(jwks.failing_since),
        "error": jwks.last_error,
    })
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
