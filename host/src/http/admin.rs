//! `/admin`: the operator's surface, and the operator console's data: mappers, dead
//! letters, recent envelopes, the live event flow and the mapper playground. Every
//! route takes `Authorization: Bearer $ADMIN_TOKEN` or the console's session cookie
//! (see [`super::auth::Admin`]); all are disabled (404) when no admin token is
//! configured. Each is in the OpenAPI document (`openapi`), tag `admin`.

mod candidates;
mod flow;
mod health;
mod letters;
mod letters_bulk;
pub(super) mod model;
pub(super) mod openapi;
mod playground;
mod reload;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::auth::Admin;
use super::error::{ApiError, Problem};
use super::extract::{ApiPath, ApiQuery};
use crate::domain::text::control_character;
use crate::operator::search::IdDigits;
use crate::store::{EnvelopeFilter, EnvelopeState, IdPart, TextIdPart};
use model::{EnvelopeDetail, EnvelopeList, EnvelopeView, MapperList, Reloaded};

pub(super) fn router(state: &AppState) -> Router<AppState> {
    let upload_limit = state.console.config().upload_limit();
    Router::new()
        .route("/admin/mappers", get(list_mappers))
        .route("/admin/mappers/reload", post(reload_mappers))
        .route("/admin/mappers/reload/preview", post(reload::preview))
        .route("/admin/mappers/reloads", get(reload::history))
        .route("/admin/mappers/rollback", post(candidates::rollback))
        .route("/admin/mappers/releases", get(candidates::releases))
        .route(
            "/admin/candidates",
            post(candidates::upload)
                .layer(DefaultBodyLimit::max(upload_limit))
                .get(candidates::list),
        )
        .route(
            "/admin/candidates/{id}",
            get(candidates::get_one).delete(candidates::remove),
        )
        .route(
            "/admin/candidates/{id}/diff",
            post(candidates::start_diff)
                .get(candidates::diff)
                .delete(candidates::cancel_diff),
        )
        .route(
            "/admin/candidates/{id}/shadow",
            post(candidates::start_shadow),
        )
        .route("/admin/candidates/{id}/promote", post(candidates::promote))
        .route(
            "/admin/shadow",
            get(candidates::shadow).delete(candidates::stop_shadow),
        )
        .route("/admin/dead-letters", get(letters_bulk::dead_letters))
        .route("/admin/dead-letters/{id}", get(letters_bulk::letter))
        .route(
            "/admin/dead-letters/replay",
            post(letters_bulk::replay_many),
        )
        .route("/admin/dead-letters/skip", post(letters_bulk::skip_many))
        .route("/admin/dead-letters/{id}/replay", post(letters::replay))
        .route("/admin/dead-letters/{id}/skip", post(letters::skip))
        .route("/admin/holds", get(letters::holds))
        .route("/admin/holds/retry", post(letters::retry))
        .route("/admin/envelopes", get(envelopes))
        .route("/admin/envelopes/{id}", get(envelope))
        .route("/admin/flow/stream", get(flow::stream))
        .route("/admin/flow/history", get(flow::history))
        .route("/admin/health", get(health::health))
        .route(
            "/admin/playground/uploads",
            post(playground::upload)
                .layer(DefaultBodyLimit::max(upload_limit))
                .get(playground::uploads),
        )
        .route("/admin/playground/template", get(playground::template))
        .route("/admin/playground/run", post(playground::run))
}

/// The live mapper set, in call order, with each mapper's call statistics.
#[utoipa::path(get, path = "/admin/mappers", tag = "admin",
    responses((status = 200, body = MapperList)))]
async fn list_mappers(_: Admin, State(state): State<AppState>) -> Json<MapperList> {
    Json(MapperList {
        mappers: state.operator.mappers(),
    })
}

/// Query of `POST /admin/mappers/reload`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ReloadQuery {
    /// Let through schema changes that would break consumers (a new major version, an
    /// event type retired on purpose); the report lists them and the log records them.
    #[serde(default)]
    allow_breaking: bool,
}

/// Reloads the mapper set.
///
/// Loads `MAPPERS_DIR` again as one set; an invalid set is refused (422, naming the
/// file and the reason) and the previous set stays live. So is a set whose payload
/// schemas would break consumers of the live one (a property removed, a type narrowed,
/// a property newly required, an enum narrowed, an event type or topic removed; each
/// named with its JSON path), unless `allow_breaking=true`. The answer says what
/// changed; mappers it did not change keep their counters. Recorded in the reload
/// history.
#[utoipa::path(post, path = "/admin/mappers/reload", tag = "admin", params(ReloadQuery),
    responses((status = 200, body = Reloaded),
        (status = 400, description = "A malformed query (`allow_breaking` is `true` or `false`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new set was refused; the previous set stays live", body = Problem, content_type = "application/problem+json")))]
async fn reload_mappers(
    admin: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ReloadQuery>,
) -> Result<Json<Reloaded>, ApiError> {
    match state
        .operator
        .reload(admin.name(), query.allow_breaking)
        .await
    {
        Ok(report) => {
            tracing::info!(?report, "mappers reloaded through the admin API");
            Ok(Json(Reloaded {
                reloaded: true,
                report,
            }))
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

/// Query of `GET /admin/holds`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct Limit {
    /// How many, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Query of `GET /admin/envelopes`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct EnvelopeQuery {
    /// How many, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// How many matching envelopes to pass over first (paging; default 0).
    #[param(minimum = 0, maximum = 1000000)]
    offset: Option<i64>,
    /// Only envelopes in this state: `pending`, `published`, `skipped` or `dead`.
    #[param(inline, value_type = Option<EnvelopeState>)]
    state: Option<String>,
    /// Only this CloudEvents `type` (printable, at most 256 bytes).
    #[serde(rename = "type")]
    #[param(
        rename = "type",
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"
    )]
    event_type: Option<String>,
    /// Only CloudEvents types starting with this (e.g. `task.`).
    #[param(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    type_prefix: Option<String>,
    /// Only this topic (printable, at most 256 bytes).
    #[param(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    topic: Option<String>,
    /// Only the envelopes of this task: its id, or its first or last 8 or more hex digits (the console shows the last 8).
    #[param(value_type = Option<String>, min_length = 8, max_length = 36, pattern = r"^-*([0-9a-fA-F]-*){8,32}$")]
    task_id: Option<String>,
    /// Only this envelope: its id, or its first or last 8 or more hex digits (the console shows the last 8).
    #[param(value_type = Option<String>, min_length = 8, max_length = 36, pattern = r"^-*([0-9a-fA-F]-*){8,32}$")]
    id: Option<String>,
    /// Only the envelopes of this mutation: its id, or its first or last 8 or more hex digits (the console shows the last 8).
    #[param(value_type = Option<String>, min_length = 8, max_length = 36, pattern = r"^-*([0-9a-fA-F]-*){8,32}$")]
    mutation_id: Option<String>,
    /// Only the envelopes of this correlation id (exact).
    #[param(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    correlation_id: Option<String>,
    /// Only the envelopes of this user (exact).
    #[param(max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    user_id: Option<String>,
    /// Only envelopes mapped at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Only envelopes mapped before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
}

/// A text query parameter `field`: printable (no control character, NUL included) and
/// at most 256 bytes, else 400 naming the field.
pub(super) fn text_param(
    field: &'static str,
    raw: Option<String>,
) -> Result<Option<String>, ApiError> {
    match raw {
        Some(text) if text.len() > 256 => Err(ApiError::param(field, "must be at most 256 bytes")),
        Some(text) if control_character(&text, &[]).is_some() => Err(ApiError::param(
            field,
            "must not contain control characters",
        )),
        other => Ok(other),
    }
}

pub(super) fn limit(raw: Option<i64>) -> Result<i64, ApiError> {
    let n = raw.unwrap_or(50);
    if (1..=1000).contains(&n) {
        Ok(n)
    } else {
        Err(ApiError::param("limit", "must be between 1 and 1000"))
    }
}

/// Recent envelopes, newest first, with their state and delivery history.
///
/// Ids (task, envelope, mutation) match by their first or their last 8 or more hex
/// digits; `total` counts every match, `offset` pages.
#[utoipa::path(get, path = "/admin/envelopes", tag = "admin", params(EnvelopeQuery),
    responses((status = 200, body = EnvelopeList),
        (status = 400, description = "A bad query parameter", body = Problem, content_type = "application/problem+json")))]
async fn envelopes(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EnvelopeQuery>,
) -> Result<Json<EnvelopeList>, ApiError> {
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let digits = |field: &'static str, raw: Option<String>| {
        raw.map(|r| IdDigits::parse(&r).map_err(|e| ApiError::param(field, e)))
            .transpose()
    };
    let part = |d: &IdDigits| IdPart {
        range: d.range(),
        end: d.whole().is_none().then(|| d.digits().to_owned()),
    };
    let task = digits("task_id", q.task_id)?;
    let mutation = digits("mutation_id", q.mutation_id)?;
    let id = digits("id", q.id)?;
    let offset = q.offset.unwrap_or(0);
    if !(0..=1_000_000).contains(&offset) {
        return Err(ApiError::param("offset", "must be between 0 and 1000000"));
    }
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
        event_type: text_param("type", nonempty(q.event_type))?,
        type_prefix: text_param("type_prefix", nonempty(q.type_prefix))?,
        topic: text_param("topic", nonempty(q.topic))?,
        task_id: task.as_ref().and_then(IdDigits::whole),
        task_part: task.as_ref().filter(|t| t.whole().is_none()).map(part),
        mutation_part: mutation.as_ref().map(part),
        id_part: id.as_ref().map(|d| TextIdPart {
            start: d.text(),
            end: d.end_text(),
        }),
        correlation_id: text_param("correlation_id", nonempty(q.correlation_id))?,
        user_id: text_param("user_id", nonempty(q.user_id))?,
        since: letters_bulk::time_param("since", q.since)?,
        until: letters_bulk::time_param("until", q.until)?,
        limit: limit(q.limit)?,
        offset,
    };
    let (records, total) = state.operator.envelopes(&filter).await?;
    let envelopes = records.into_iter().map(EnvelopeView::of).collect();
    Ok(Json(EnvelopeList {
        envelopes,
        total,
        offset,
    }))
}

/// One envelope, with its delivery history and mutation.
///
/// Its exact CloudEvents JSON, its delivery history and the mutation it was mapped
/// from (while the outbox keeps it).
#[utoipa::path(get, path = "/admin/envelopes/{id}", tag = "admin",
    params(("id" = Uuid, Path, description = "The envelope's CloudEvents id")),
    responses((status = 200, body = EnvelopeDetail),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such envelope (or pruned after ENVELOPE_RETENTION), or the admin API is disabled", body = Problem, content_type = "application/problem+json")))]
async fn envelope(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EnvelopeDetail>, ApiError> {
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::param("id", format!("`{id}` is not a UUID")))?;
    let found = state
        .operator
        .envelope(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no envelope {id}")))?;
    Ok(Json(EnvelopeDetail {
        view: EnvelopeView::of(found.record),
        attempts_history: found.attempts,
        dead_letters: found.dead_letters,
        mutation: found.mutation,
    }))
}
