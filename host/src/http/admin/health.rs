//! `GET /admin/health`: the delivery's health in one read, as the console's header and
//! Flow page show it (they get the same document in every flow snapshot).

use axum::Json;
use axum::extract::State;

use crate::http::AppState;
use crate::http::auth::Admin;
use crate::operator::health::Health;

/// The delivery's health.
///
/// Whether the publisher (the Dapr sidecar) is ready and since when, whether this
/// replica's relay runs (or which stage stalled, and why it last restarted), the last
/// failed publish attempt with the publisher's status and code, the envelopes waiting
/// for a retry and when the next is due, and the holds keeping events waiting.
#[utoipa::path(get, path = "/admin/health", tag = "admin",
    responses((status = 200, body = Health)))]
pub(super) async fn health(_: Admin, State(state): State<AppState>) -> Json<Health> {
    Json(state.operator.health().await)
}
