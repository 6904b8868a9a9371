//! Dead letters at scale: `GET /admin/dead-letters` with filters, order, paging, a
//! total and groups; `GET /admin/dead-letters/{id}` (a letter and what became of its
//! event after a replay); `POST /admin/dead-letters/replay` and
//! `POST /admin/dead-letters/skip` (a selection: ids, or every letter a filter matches).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::letters::{letter_id, resolution_error, skip_reason};
use super::model::DeadLetterView;
use super::text_param;
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::operator::letters::{BULK_LIMIT, BulkReplayed, BulkSkipped, LetterFollow, Selection};
use crate::store::{DeadLetterKind, LetterFilter, LetterGroup, LetterPage};

/// Query of `GET /admin/dead-letters`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct LetterQuery {
    /// How many, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// How many matching letters to pass over first (paging; default 0).
    #[param(minimum = 0, maximum = 1000000)]
    offset: Option<i64>,
    /// `oldest` first (the default) or `newest` first.
    #[param(inline, value_type = Option<LetterOrder>)]
    order: Option<String>,
    /// Only `mapping` or `publish` letters.
    #[param(inline, value_type = Option<LetterKind>)]
    kind: Option<String>,
    /// Only the letters of this mapper.
    #[param(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    mapper: Option<String>,
    /// Only the letters of envelopes on this topic.
    #[param(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    topic: Option<String>,
    /// Only letters with exactly this reason (as a group shows it).
    #[param(
        max_length = 4096,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    reason: Option<String>,
    /// Only the letters of this task.
    task_id: Option<Uuid>,
    /// Only letters parked at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Only letters parked before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
}

/// The order of a listing.
#[derive(Debug, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only described in the OpenAPI document
enum LetterOrder {
    Oldest,
    Newest,
}

/// A dead letter's kind.
#[derive(Debug, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only described in the OpenAPI document
enum LetterKind {
    Mapping,
    Publish,
}

/// The filter of a selection: the same fields as the list's query, all optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Matching {
    #[schema(inline, value_type = Option<LetterKind>)]
    kind: Option<String>,
    #[schema(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    mapper: Option<String>,
    #[schema(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    topic: Option<String>,
    #[schema(
        max_length = 4096,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    reason: Option<String>,
    task_id: Option<Uuid>,
    #[schema(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
}

pub(super) fn time_param(
    field: &'static str,
    raw: Option<String>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|t| {
        DateTime::parse_from_rfc3339(t.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::param(
                    field,
                    "must be a time in RFC 3339 form, e.g. 2026-03-01T09:00:00Z",
                )
            })
    })
    .transpose()
}

fn filter_of(m: Matching) -> Result<LetterFilter, ApiError> {
    let kind = match m.kind.as_deref() {
        None => None,
        Some("mapping") => Some(DeadLetterKind::Mapping),
        Some("publish") => Some(DeadLetterKind::Publish),
        Some(_) => return Err(ApiError::param("kind", "must be mapping or publish")),
    };
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let filter = LetterFilter {
        kind,
        mapper: text_param("mapper", nonempty(m.mapper))?,
        topic: text_param("topic", nonempty(m.topic))?,
        reason: reason_param(nonempty(m.reason))?,
        task_id: m.task_id,
        since: time_param("since", m.since)?,
        until: time_param("until", m.until)?,
    };
    Ok(filter)
}

/// A reason to match exactly: reasons are long (up to 4 KiB) and may hold line breaks.
fn reason_param(raw: Option<String>) -> Result<Option<String>, ApiError> {
    match raw {
        Some(r) if r.chars().count() > 4096 => {
            Err(ApiError::param("reason", "must be at most 4096 characters"))
        }
        Some(r) if crate::domain::text::control_character(&r, &['\n', '\r', '\t']).is_some() => {
            Err(ApiError::param(
                "reason",
                "must not contain control characters",
            ))
        }
        other => Ok(other),
    }
}

/// `GET /admin/dead-letters`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeadLetterList {
    /// This page of the matching open letters, in the order asked.
    pub(crate) dead_letters: Vec<DeadLetterView>,
    /// Open letters matching the filters, on every page.
    pub(crate) total: i64,
    /// How many matching letters came before this page.
    pub(crate) offset: i64,
    /// The matching letters grouped by kind, mapper, topic and reason, the largest group
    /// first (at most 20 groups).
    pub(crate) groups: Vec<LetterGroup>,
}

/// Open dead letters: filtered, paged, grouped.
///
/// Each with its hold and its mutation; `total` counts every match and `groups` says
/// what went wrong how often. Oldest first unless `order=newest`.
#[utoipa::path(get, path = "/admin/dead-letters", tag = "admin", params(LetterQuery),
    responses((status = 200, body = DeadLetterList),
        (status = 400, description = "A bad query parameter, named in `field`", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn dead_letters(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LetterQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let newest_first = match q.order.as_deref() {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(_) => return Err(ApiError::param("order", "must be oldest or newest")),
    };
    let offset = q.offset.unwrap_or(0);
    if !(0..=1_000_000).contains(&offset) {
        return Err(ApiError::param("offset", "must be between 0 and 1000000"));
    }
    let page = LetterPage {
        newest_first,
        limit: super::limit(q.limit)?,
        offset,
    };
    let filter = filter_of(Matching {
        kind: q.kind,
        mapper: q.mapper,
        topic: q.topic,
        reason: q.reason,
        task_id: q.task_id,
        since: q.since,
        until: q.until,
    })?;
    let found = state.operator.search_letters(&filter, page).await?;
    Ok(Json(DeadLetterList {
        dead_letters: found
            .letters
            .into_iter()
            .map(|l| DeadLetterView {
                letter: l.letter,
                hold: l.hold,
                mutation: l.mutation,
            })
            .collect(),
        total: found.total,
        offset,
        groups: found.groups,
    }))
}

/// One dead letter and what became of its event.
///
/// Open, skipped, or replayed and then: still `queued`, `published`, or
/// `refused_again` with the new letter that replaced it.
#[utoipa::path(get, path = "/admin/dead-letters/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "The dead letter's id")),
    responses((status = 200, body = LetterFollow),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter, or the admin API is disabled", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn letter(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<LetterFollow>, ApiError> {
    let id = letter_id(&id)?;
    state
        .operator
        .follow_letter(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no dead letter {id}")))
}

/// Which letters a bulk call resolves: `ids`, or every open letter `matching` matches.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(super) enum BulkReplayRequest {
    /// These letters.
    Ids(ByIds),
    /// Every open letter matching a filter (at most 1000, oldest first).
    Matching(ByFilter),
}

/// Letters named by id.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ByIds {
    /// 1 to 1000 letters.
    #[schema(min_items = 1, max_items = 1000)]
    ids: Vec<Uuid>,
}

/// Letters matching a filter.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ByFilter {
    matching: Matching,
}

/// The body of `POST /admin/dead-letters/skip`: `ids` or `matching`, and why.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(super) enum BulkSkipRequest {
    Ids(SkipByIds),
    Matching(SkipByFilter),
}

/// Letters named by id, and why they are skipped.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SkipByIds {
    #[schema(min_items = 1, max_items = 1000)]
    ids: Vec<Uuid>,
    /// Why these events are given up (recorded with each letter): 1 to 500 characters,
    /// not blank, no control character but line breaks.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    reason: String,
}

/// Letters matching a filter, and why they are skipped.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SkipByFilter {
    matching: Matching,
    /// As for `ids`.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    reason: String,
}

fn by_ids(ids: Vec<Uuid>) -> Result<Selection, ApiError> {
    if ids.is_empty() || ids.len() as i64 > BULK_LIMIT {
        return Err(ApiError::invalid("ids", "must list 1 to 1000 letters"));
    }
    Ok(Selection::Ids(ids))
}

fn by_filter(m: Matching) -> Result<Selection, ApiError> {
    Ok(Selection::Matching(filter_of(m).map_err(|e| {
        ApiError::invalid("matching", e.to_string())
    })?))
}

/// Replays a selection of dead letters.
///
/// Each as `POST /admin/dead-letters/{id}/replay` would, oldest first; one failing does
/// not stop the others. The answer lists each letter's result. A replayed publish is
/// queued, not yet published: follow it with `GET /admin/dead-letters/{id}`.
#[utoipa::path(post, path = "/admin/dead-letters/replay", tag = "admin", request_body = BulkReplayRequest,
    responses((status = 200, body = BulkReplayed),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not one of the two forms, too many ids, or a bad filter", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn replay_many(
    admin: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BulkReplayRequest>,
) -> Result<Json<BulkReplayed>, ApiError> {
    let selection = match body {
        BulkReplayRequest::Ids(b) => by_ids(b.ids)?,
        BulkReplayRequest::Matching(b) => by_filter(b.matching)?,
    };
    let out = state
        .operator
        .replay_many(selection, admin.name())
        .await
        .map_err(resolution_error)?;
    Ok(Json(out))
}

/// Skips a selection of dead letters.
///
/// Each as `POST /admin/dead-letters/{id}/skip` would, with the same reason; who
/// skipped and why are recorded with each.
#[utoipa::path(post, path = "/admin/dead-letters/skip", tag = "admin", request_body = BulkSkipRequest,
    responses((status = 200, body = BulkSkipped),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No usable reason, neither or both of ids and matching, too many ids, or a bad filter", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn skip_many(
    admin: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BulkSkipRequest>,
) -> Result<Json<BulkSkipped>, ApiError> {
    let (selection, reason) = match body {
        BulkSkipRequest::Ids(b) => (by_ids(b.ids)?, b.reason),
        BulkSkipRequest::Matching(b) => (by_filter(b.matching)?, b.reason),
    };
    let reason = skip_reason(&reason)?;
    let out = state
        .operator
        .skip_many(selection, admin.name(), reason)
        .await
        .map_err(resolution_error)?;
    Ok(Json(out))
}
