//! `/admin/candidates`, `/admin/shadow` and `/admin/mappers/{rollback,releases}`: prove a
//! candidate mapper against history and live traffic, then promote it or roll back.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use uuid::Uuid;

use super::super::AppState;
use super::super::auth::Admin;
use super::super::error::{ApiError, Problem};
use super::super::extract::{ApiJson, ApiPath, ApiQuery};
use super::ReloadQuery;
use super::playground::{ComponentBytes, UploadQuery, component_body};
use crate::candidate::releases::ReleaseError;
use crate::candidate::shadow::ShadowStatus;
use crate::operator::candidates::{CandidateError, CandidateView, DiffJob};
use crate::operator::playground::file_stem;
use crate::store::{HistoryWindow, MapperRelease};

/// `GET /admin/candidates`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CandidateList {
    pub(crate) candidates: Vec<CandidateView>,
}

/// `GET /admin/mappers/releases`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ReleaseList {
    /// The newest first.
    pub(crate) releases: Vec<MapperRelease>,
}

impl From<CandidateError> for ApiError {
    fn from(e: CandidateError) -> Self {
        match e {
            CandidateError::NotFound(_) | CandidateError::NoDiff(_) | CandidateError::NoShadow => {
                ApiError::NotFound(e.to_string())
            }
            CandidateError::Refused(_) | CandidateError::Release(ReleaseError::Refused(_)) => {
                ApiError::invalid("component", e.to_string())
            }
            CandidateError::DiffRunning(_)
            | CandidateError::Release(
                ReleaseError::Conflict
                | ReleaseError::NothingToRollBack
                | ReleaseError::Breaking(_),
            ) => ApiError::Conflict(e.to_string()),
            CandidateError::BadWindow(detail) => ApiError::param("window", detail),
            CandidateError::Release(ReleaseError::Store(e)) | CandidateError::Store(e) => e.into(),
            CandidateError::Thread(_) | CandidateError::ShadowDir { .. } => {
                ApiError::Internal(anyhow::anyhow!(e))
            }
        }
    }
}

fn candidate_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::param("id", format!("`{raw}` is not a UUID")))
}

/// Uploads a candidate mapper.
///
/// The `.wasm` bytes are loaded as a reload would load them (contract check,
/// `describe`, topics, payload schemas) with the live set's limits and settings, and
/// kept in this replica's memory (eight at most, the oldest not shadowing forgotten
/// first). Nothing changes in the live set until it is promoted.
#[utoipa::path(post, path = "/admin/candidates", tag = "admin", params(UploadQuery),
    request_body(content = ComponentBytes, content_type = "application/wasm", description = "The component's bytes (also accepted as application/octet-stream); at most CONSOLE_UPLOAD_LIMIT (default 32 MiB)"),
    responses((status = 201, body = CandidateView),
        (status = 400, description = "A bad query parameter, or the body could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than CONSOLE_UPLOAD_LIMIT", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not sent as application/wasm or application/octet-stream", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The component was refused (field `component`), with the reason", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn upload(
    admin: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CandidateView>), ApiError> {
    let bytes = component_body(&state, &headers, body)?;
    let file = format!(
        "{}.wasm",
        file_stem(q.name.as_deref().unwrap_or("candidate.wasm"))
    );
    let view = state
        .operator
        .upload_candidate(&file, bytes.to_vec(), admin.name())
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// This replica's candidates, the oldest first.
#[utoipa::path(get, path = "/admin/candidates", tag = "admin",
    responses((status = 200, body = CandidateList)))]
pub(super) async fn list(_: Admin, State(state): State<AppState>) -> Json<CandidateList> {
    Json(CandidateList {
        candidates: state.operator.candidates(),
    })
}

/// One candidate.
#[utoipa::path(get, path = "/admin/candidates/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "The candidate's id")),
    responses((status = 200, body = CandidateView),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_one(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CandidateView>, ApiError> {
    Ok(Json(state.operator.candidate(candidate_id(&id)?)?))
}

/// Forgets a candidate: cancels its history diff and stops its shadow run.
#[utoipa::path(delete, path = "/admin/candidates/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "The candidate's id")),
    responses((status = 204, description = "Forgotten"),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn remove(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.operator.remove_candidate(candidate_id(&id)?)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a history diff of a candidate.
///
/// Maps the stored mutations of the window (all bounds optional and intersecting: a
/// time range, one task, the last N) with the live set and with the live set holding
/// the candidate, in the same sandbox, and compares them event by event and field by
/// field. Nothing is stored or published. Poll `GET` for progress and the report.
#[utoipa::path(post, path = "/admin/candidates/{id}/diff", tag = "admin",
    params(("id" = Uuid, Path, description = "The candidate's id")),
    request_body(content = HistoryWindow, content_type = "application/json"),
    responses((status = 202, body = DiffJob),
        (status = 400, description = "The id is not a UUID, or a bad window (`since` not before `until`, `last` out of range, an unknown field)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A history diff of this candidate is running", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is not a window (a field of the wrong type)", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn start_diff(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(window): ApiJson<HistoryWindow>,
) -> Result<(StatusCode, Json<DiffJob>), ApiError> {
    let job = state.operator.start_diff(candidate_id(&id)?, window)?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// The latest history diff of a candidate: its progress, and its report once done.
#[utoipa::path(get, path = "/admin/candidates/{id}/diff", tag = "admin",
    params(("id" = Uuid, Path, description = "The candidate's id")),
    responses((status = 200, body = DiffJob),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn diff(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DiffJob>, ApiError> {
    Ok(Json(state.operator.diff(candidate_id(&id)?)?))
}

/// Cancels the running history diff of a candidate (its report covers what it did).
#[utoipa::path(delete, path = "/admin/candidates/{id}/diff", tag = "admin",
    params(("id" = Uuid, Path, description = "The candidate's id")),
    responses((status = 200, body = DiffJob),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn cancel_diff(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DiffJob>, ApiError> {
    Ok(Json(state.operator.cancel_diff(candidate_id(&id)?)?))
}

/// Shadows a candidate on this replica.
///
/// Every mutation this replica's relay maps is also mapped by the live set with the
/// candidate in place, on a thread of its own, and compared; nothing it makes is
/// published. Publishing never waits for it: when it is behind or over its CPU budget
/// it drops mutations (counted). One shadow run at a time: another one stops.
#[utoipa::path(post, path = "/admin/candidates/{id}/shadow", tag = "admin",
    params(("id" = Uuid, Path, description = "The candidate's id")),
    responses((status = 200, body = ShadowStatus),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn start_shadow(
    admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ShadowStatus>, ApiError> {
    Ok(Json(
        state
            .operator
            .start_shadow(candidate_id(&id)?, admin.name())?,
    ))
}

/// The latest shadow run (running or stopped): what it compared and its latest
/// divergent samples.
#[utoipa::path(get, path = "/admin/shadow", tag = "admin",
    responses((status = 200, body = ShadowStatus)))]
pub(super) async fn shadow(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<ShadowStatus>, ApiError> {
    Ok(Json(state.operator.shadow_status()?))
}

/// Stops the shadow run.
#[utoipa::path(delete, path = "/admin/shadow", tag = "admin",
    responses((status = 200, body = ShadowStatus)))]
pub(super) async fn stop_shadow(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<ShadowStatus>, ApiError> {
    Ok(Json(state.operator.stop_shadow()?))
}

/// Promotes a candidate into the live set, on every replica.
///
/// All or nothing, like a reload; refused (409, each break named) when its payload
/// schemas or topics would break consumers of the live set, unless `allow_breaking`.
/// Recorded in the database with who asked and the digests before and after; every
/// replica applies it within `MAPPER_SYNC_INTERVAL`, and a replica that starts later
/// applies it at start.
#[utoipa::path(post, path = "/admin/candidates/{id}/promote", tag = "admin",
    params(("id" = Uuid, Path, description = "The candidate's id"), ReloadQuery),
    responses((status = 200, body = MapperRelease),
        (status = 400, description = "The id is not a UUID, or a malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused: it would break consumers (without `allow_breaking`), or another promotion or rollback happened at the same time", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A component the releases hold no longer loads here (field `component`), with the reason", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn promote(
    admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ReloadQuery>,
) -> Result<Json<MapperRelease>, ApiError> {
    let release = state
        .operator
        .promote(candidate_id(&id)?, admin.name(), query.allow_breaking)
        .await?;
    Ok(Json(release))
}

/// Rolls back the latest promotion not rolled back yet, on every replica: its mapper
/// name runs what it ran before (an earlier promotion, or the mapper directory's).
#[utoipa::path(post, path = "/admin/mappers/rollback", tag = "admin",
    responses((status = 200, body = MapperRelease),
        (status = 409, description = "Nothing to roll back, or another promotion or rollback happened at the same time", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A component the releases hold no longer loads here (field `component`), with the reason", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn rollback(
    admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<MapperRelease>, ApiError> {
    Ok(Json(state.operator.rollback(admin.name()).await?))
}

/// The latest promotions and rollbacks (every replica's), the newest first.
#[utoipa::path(get, path = "/admin/mappers/releases", tag = "admin",
    responses((status = 200, body = ReleaseList)))]
pub(super) async fn releases(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<ReleaseList>, ApiError> {
    Ok(Json(ReleaseList {
        releases: state.operator.releases().await?,
    }))
}
