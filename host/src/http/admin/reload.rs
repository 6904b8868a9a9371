//! `POST /admin/mappers/reload/preview` (what a reload would change, and a dry run)
//! and `GET /admin/mappers/reloads` (the reload history).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::ApiQuery;
use crate::mapper::ReloadRecord;
use crate::operator::reload::{DRY_RUN_MAX, PreviewError, ReloadPreview};

/// Query of `POST /admin/mappers/reload/preview`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct PreviewQuery {
    /// How many of the most recent mutations the dry run maps, 0 to 500 (default 50).
    #[param(minimum = 0, maximum = 500)]
    sample: Option<i64>,
}

/// Previews a reload.
///
/// Loads the set in `MAPPERS_DIR` apart (the live set stays), says what it changes
/// (added, removed, changed, unchanged mappers) and runs both sets over the most recent
/// mutations: new failures (a topic outside `ALLOWED_TOPICS` included), topics gained
/// and lost. A set a reload would refuse is 422 with the reason.
#[utoipa::path(post, path = "/admin/mappers/reload/preview", tag = "admin", params(PreviewQuery),
    responses((status = 200, body = ReloadPreview),
        (status = 400, description = "A bad query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The set on disk would be refused; the reason", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn preview(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Json<ReloadPreview>, ApiError> {
    let sample = q.sample.unwrap_or(50);
    if !(0..=DRY_RUN_MAX).contains(&sample) {
        return Err(ApiError::param("sample", "must be between 0 and 500"));
    }
    match state.operator.preview_reload(sample).await {
        Ok(preview) => Ok(Json(preview)),
        Err(PreviewError::Refused(e)) => Err(ApiError::invalid(
            "mappers",
            format!("a reload would refuse this set, the live one would stay: {e}"),
        )),
        Err(PreviewError::Store(e)) => Err(e.into()),
    }
}

/// `GET /admin/mappers/reloads`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct ReloadHistory {
    /// This process's reloads (at most 50), the newest first.
    reloads: Vec<ReloadRecord>,
}

/// The reload history.
///
/// Every reload this process made or refused, from the console, the admin API or
/// SIGHUP, with what it changed or why it was refused.
#[utoipa::path(get, path = "/admin/mappers/reloads", tag = "admin",
    responses((status = 200, body = ReloadHistory)))]
pub(super) async fn history(_: Admin, State(state): State<AppState>) -> Json<ReloadHistory> {
    Json(ReloadHistory {
        reloads: state.operator.reload_history(),
    })
}
