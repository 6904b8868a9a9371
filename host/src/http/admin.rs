//! `/admin`: the operator's surface (bearer `ADMIN_TOKEN`): mappers, dead letters
//! and recent envelopes. Disabled (404) when no admin token is configured.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::auth::Admin;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use crate::relay::ReplayError;
use crate::store::{EnvelopeFilter, EnvelopeState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/mappers", get(list_mappers))
        .route("/admin/mappers/reload", post(reload_mappers))
        .route("/admin/dead-letters", get(dead_letters))
        .route("/admin/dead-letters/{id}/replay", post(replay))
        .route("/admin/envelopes", get(envelopes))
}

/// The live mapper set, in call order.
async fn list_mappers(_: Admin, State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "mappers": state.mappers.list() }))
}

/// Loads `MAPPERS_DIR` again as one set; an invalid set is refused (422) and the
/// previous set stays live.
async fn reload_mappers(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.mappers.reload().await {
        Ok(report) => {
            tracing::info!(?report, "mappers reloaded through the admin API");
            Ok(Json(json!({ "reloaded": true, "report": report })))
        }
        Err(e) => {
            tracing::error!(error = %e, "mapper reload refused; the previous set stays live");
            Err(ApiError::invalid(
                "mappers",
                format!("reload refused, the previous set stays live: {e}"),
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Limit {
    limit: Option<i64>,
}

/// Query of `GET /admin/envelopes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeQuery {
    limit: Option<i64>,
    state: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    topic: Option<String>,
    task_id: Option<Uuid>,
}

fn limit(raw: Option<i64>) -> Result<i64, ApiError> {
    let n = raw.unwrap_or(50);
    if (1..=1000).contains(&n) {
        Ok(n)
    } else {
        Err(ApiError::param("limit", "must be between 1 and 1000"))
    }
}

/// Unresolved dead letters, oldest first.
async fn dead_letters(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<Limit>,
) -> Result<Json<Value>, ApiError> {
    let letters = state.db.dead_letters(limit(q.limit)?).await?;
    Ok(Json(json!({ "dead_letters": letters })))
}

/// Maps a dead letter's mutation again with the live mappers. Success stores its
/// envelopes (already published ones keep their ids) and resolves the letter; a
/// new failure is 422 with the reason and the letter stays.
async fn replay(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::param("id", format!("`{id}` is not a UUID")))?;
    let replayed = state.relay.replay(id).await.map_err(|e| match e {
        ReplayError::NotFound(_) => ApiError::NotFound(e.to_string()),
        ReplayError::AlreadyReplayed(_) => ApiError::Conflict(e.to_string()),
        ReplayError::MappingFailed { .. } => ApiError::invalid("mappers", e.to_string()),
        ReplayError::PublishingDisabled(_) => ApiError::Conflict(e.to_string()),
        ReplayError::Store(cause) => cause.into(),
    })?;
    Ok(Json(json!({
        "replayed": true,
        "resolved": replayed.resolved,
        "kind": replayed.kind,
        "mutation_id": replayed.mutation_id,
        "envelopes": replayed.envelopes,
    })))
}

/// Recent envelopes, newest first, with their state; filters: `state`
/// (`pending|published|skipped|dead`), `type`, `topic`, `task_id`.
async fn envelopes(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EnvelopeQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = EnvelopeFilter {
        state: q
            .state
            .as_deref()
            .map(|s| {
                EnvelopeState::parse(s).ok_or_else(|| {
                    ApiError::param("state", "must be pending, published, skipped or dead")
                })
            })
            .transpose()?,
        event_type: q.event_type,
        topic: q.topic,
        task_id: q.task_id,
        limit: limit(q.limit)?,
    };
    let records = state.db.recent_envelopes(&filter).await?;
    let items: Vec<Value> = records
        .into_iter()
        .map(|r| {
            let envelope: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            let mut item = serde_json::to_value(&r).unwrap_or(Value::Null);
            item["envelope"] = envelope;
            item
        })
        .collect();
    Ok(Json(json!({ "envelopes": items })))
}
