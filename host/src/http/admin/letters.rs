//! `/admin/dead-letters` and `/admin/holds`: what could not be mapped or published, the
//! tasks it holds, and resolving it (replay, skip, or every letter of one mapper).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use uuid::Uuid;

use super::model::{HoldList, ReplayOutcome, RetryOutcome, SkipOutcome};
use super::{Limit, limit};
use crate::domain::text::control_character;
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::relay::ReplayError;

/// The tasks held on a topic, the longest held first.
///
/// Each is held by an event that could not be mapped or published
/// (`RELAY_ON_POISON=hold`): its later events on that topic wait until the letter
/// holding it first is replayed or skipped.
#[utoipa::path(get, path = "/admin/holds", tag = "admin", params(Limit),
    responses((status = 200, body = HoldList),
        (status = 400, description = "A bad query parameter", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn holds(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<Limit>,
) -> Result<Json<HoldList>, ApiError> {
    let holds = state.operator.holds(limit(q.limit)?).await?;
    Ok(Json(HoldList { holds }))
}

pub(super) fn letter_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::param(
            "id",
            format!(
                "`{}` is not a UUID",
                raw.chars().take(64).collect::<String>()
            ),
        )
    })
}

pub(super) fn resolution_error(e: ReplayError) -> ApiError {
    match e {
        ReplayError::NotFound(_) => ApiError::NotFound(e.to_string()),
        ReplayError::AlreadyReplayed(_) => ApiError::Conflict(e.to_string()),
        ReplayError::MappingFailed { .. } => ApiError::invalid("mappers", e.to_string()),
        ReplayError::PublishingDisabled(_) => ApiError::Conflict(e.to_string()),
        ReplayError::Store(cause) => cause.into(),
    }
}

/// Replays a dead letter.
///
/// A refused publish is queued again as it was (same id, same body); a mutation that
/// could not be mapped is mapped again with the live mappers. Success resolves only
/// this letter and lifts its hold: the event goes out first, then the task's events
/// that waited behind it, in order. A new mapping failure is 422 with the reason and the
/// letter stays open.
#[utoipa::path(post, path = "/admin/dead-letters/{id}/replay", tag = "admin",
    params(("id" = Uuid, Path, description = "The dead letter's id")),
    responses((status = 200, body = ReplayOutcome),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter, or the admin API is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already replayed or skipped, or a refused publish while PUBLISHER=none", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Mapping failed again; the letter stays open with the new reason", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn replay(
    admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReplayOutcome>, ApiError> {
    let id = letter_id(&id)?;
    let replayed = state
        .operator
        .replay(id, admin.name())
        .await
        .map_err(resolution_error)?;
    Ok(Json(ReplayOutcome {
        replayed: true,
        outcome: replayed,
    }))
}

/// The body of `POST /admin/dead-letters/{id}/skip`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SkipRequest {
    /// Why the event is given up (recorded with the letter): 1 to 500 characters, not
    /// blank, no control character but line breaks.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    reason: String,
}

/// Skips a dead letter.
///
/// Gives its event up on purpose: nothing is published for it, its hold lifts and the
/// task's events that waited behind it go on. Who skipped it and why are recorded.
#[utoipa::path(post, path = "/admin/dead-letters/{id}/skip", tag = "admin",
    params(("id" = Uuid, Path, description = "The dead letter's id")), request_body = SkipRequest,
    responses((status = 200, body = SkipOutcome),
        (status = 400, description = "The id is not a UUID, or malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter, or the admin API is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already replayed or skipped", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason, or one too long or with control characters", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn skip(
    admin: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SkipRequest>,
) -> Result<Json<SkipOutcome>, ApiError> {
    let id = letter_id(&id)?;
    let reason = skip_reason(&body.reason)?;
    let skipped = state
        .operator
        .skip(id, admin.name(), reason)
        .await
        .map_err(resolution_error)?;
    Ok(Json(SkipOutcome {
        skipped: true,
        outcome: skipped,
    }))
}

/// A skip's reason, trimmed: 1 to 500 characters, no control character but line
/// breaks, else 422 naming `reason`.
pub(super) fn skip_reason(raw: &str) -> Result<&str, ApiError> {
    let reason = raw.trim();
    if reason.is_empty() || raw.chars().count() > 500 {
        return Err(ApiError::invalid("reason", "must be 1 to 500 characters"));
    }
    if control_character(raw, &['\n', '\r']).is_some() {
        return Err(ApiError::invalid(
            "reason",
            "must not contain control characters other than line breaks",
        ));
    }
    Ok(reason)
}

/// The body of `POST /admin/holds/retry`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RetryRequest {
    /// The mapper whose open dead letters to replay (a mapper's name, as `describe` gave
    /// it): 1 to 128 characters, not blank, no control character.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    mapper: String,
}

/// Replays every open dead letter of one mapper.
///
/// After a reload fixed a mapper: each of its open letters (mapping failures it caused,
/// and refused publishes of envelopes it produced), oldest first, is replayed as one
/// replay would; the holds they had lift. The answer lists the letters replayed and those
/// whose replay failed again (they stay open).
#[utoipa::path(post, path = "/admin/holds/retry", tag = "admin", request_body = RetryRequest,
    responses((status = 200, body = RetryOutcome),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No mapper name, or an unusable one", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn retry(
    admin: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RetryRequest>,
) -> Result<Json<RetryOutcome>, ApiError> {
    let mapper = body.mapper.trim();
    if mapper.is_empty()
        || body.mapper.chars().count() > 128
        || control_character(&body.mapper, &[]).is_some()
    {
        return Err(ApiError::invalid(
            "mapper",
            "must be a mapper's name: 1 to 128 characters, no control character",
        ));
    }
    let outcome = state
        .operator
        .retry_mapper(mapper, admin.name())
        .await
        .map_err(resolution_error)?;
    Ok(Json(RetryOutcome {
        mapper: mapper.to_owned(),
        outcome,
    }))
}
