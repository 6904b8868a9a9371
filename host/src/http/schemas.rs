//! `GET /schemas/{mapper}/{version}/{event-type}`: the JSON Schema a mapper declares for the
//! `data` of one event type, at the URL the envelope's `dataschema` names; and
//! `GET /asyncapi.json`, the AsyncAPI 3.0 document of the live mapper set.
//!
//! A versioned URL names one schema for good, so it is served `immutable` with a strong ETag
//! (`If-None-Match` answers 304). No authentication: consumers fetch it as they fetch any
//! published schema, and it holds only what the mapper chose to declare.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::ApiError;

/// The media type of a JSON Schema document.
const SCHEMA_JSON: &str = "application/schema+json";
/// A versioned schema never changes: cache it for a year without revalidating.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/schemas/{mapper}/{version}/{event_type}", get(schema))
        .route("/asyncapi.json", get(asyncapi))
}

/// The AsyncAPI 3.0 document of the live mapper set (it changes with a reload, so it is
/// revalidated: `no-cache`).
async fn asyncapi(State(state): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        axum::Json(state.operator.asyncapi()),
    )
        .into_response()
}

/// One published schema, or a 404 problem document naming what is unknown.
async fn schema(
    State(state): State<AppState>,
    Path((mapper, version, event_type)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(schema) = state.operator.schema(&mapper, &version, &event_type) else {
        return Err(ApiError::NotFound(format!(
            "no schema for event type `{}` of mapper `{}` version `{}` (GET /admin/mappers lists the loaded mappers and their event types)",
            shown(&event_type),
            shown(&mapper),
            shown(&version)
        )));
    };
    let etag = HeaderValue::from_str(&schema.etag).map_err(|e| ApiError::Internal(e.into()))?;
    let cache = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
    ];
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == schema.etag
        });
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let body =
        serde_json::to_vec_pretty(&*schema.document).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        cache,
        [(header::CONTENT_TYPE, HeaderValue::from_static(SCHEMA_JSON))],
        body,
    )
        .into_response())
}

/// At most 100 characters of a path segment, escaped, for a message.
fn shown(segment: &str) -> String {
    segment
        .chars()
        .take(100)
        .collect::<String>()
        .escape_debug()
        .to_string()
}
