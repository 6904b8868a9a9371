//! `/admin/playground`: run a loaded or uploaded mapper on a mutation, in the relay's
//! sandbox and limits, and see the envelopes it would yield or its refusal. Nothing
//! here writes to the outbox or publishes (see [`crate::operator::playground`]).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, body::Bytes};
use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::super::extract::{ApiJson, ApiQuery};
use crate::domain::task::{format_time, now};
use crate::domain::{Action, FieldChange, Mutation, Origin, Task};
use crate::http::AppState;
use crate::http::auth::Admin;
use crate::http::error::{ApiError, Problem};
use crate::mapper::{MapperListing, Violation};
use crate::operator::playground::{PlaygroundError, Target, UploadView};

/// Query of `POST /admin/playground/uploads`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct UploadQuery {
    /// The component's file name (its stem selects the settings `describe` sees, as
    /// in MAPPERS_DIR); default `upload.wasm`.
    pub(super) name: Option<String>,
}

/// A WebAssembly component's bytes (documentation only: the body is read as bytes).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub(crate) struct ComponentBytes(Vec<u8>);

/// `GET /admin/playground/uploads`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UploadList {
    /// Oldest first; at most four, each kept for 30 minutes.
    pub(crate) uploads: Vec<UploadView>,
}

fn playground_error(e: PlaygroundError) -> ApiError {
    match e {
        PlaygroundError::UnknownMapper(_) => ApiError::invalid("mapper", e.to_string()),
        PlaygroundError::UnknownUpload(_) => ApiError::invalid("upload", e.to_string()),
        PlaygroundError::Changed { .. } => ApiError::Conflict(e.to_string()),
        PlaygroundError::Load(_) => {
            ApiError::invalid("component", format!("the component was refused: {e}"))
        }
        PlaygroundError::Stage(_) => ApiError::Internal(e.into()),
    }
}

/// Uploads a mapper component to try in the playground.
///
/// The raw `.wasm` bytes are loaded like a mapper of `MAPPERS_DIR` (contract check,
/// `describe`, declared topics) but never written there nor added to the live set; the
/// upload is kept in memory for 30 minutes (four at most, the oldest forgotten first).
/// Compiling an interpreter-based component takes about 20 s the first time.
#[utoipa::path(post, path = "/admin/playground/uploads", tag = "admin", params(UploadQuery),
    request_body(content = ComponentBytes, content_type = "application/wasm", description = "The component's bytes (also accepted as application/octet-stream); at most CONSOLE_UPLOAD_LIMIT (default 32 MiB)"),
    responses((status = 201, body = UploadView),
        (status = 400, description = "A bad query parameter, or the body could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than CONSOLE_UPLOAD_LIMIT", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not sent as application/wasm or application/octet-stream", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The component was refused (field `component`), with the reason", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn upload(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<UploadView>), ApiError> {
    let bytes = component_body(&state, &headers, body)?;
    let name = q.name.unwrap_or_else(|| "upload.wasm".to_owned());
    let view = state
        .operator
        .playground()
        .upload(&name, bytes)
        .await
        .map_err(playground_error)?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The body of a component upload: sent as `application/wasm` (or
/// `application/octet-stream`) and within `CONSOLE_UPLOAD_LIMIT`.
pub(super) fn component_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !["application/wasm", "application/octet-stream"]
        .iter()
        .any(|t| essence.eq_ignore_ascii_case(t))
    {
        return Err(ApiError::UnsupportedMediaType(
            "expected the component's bytes with `Content-Type: application/wasm`".into(),
        ));
    }
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(state.console.config().upload_limit())
        } else {
            ApiError::bad_request(format!("the body could not be read: {}", e.body_text()))
        }
    })
}

/// The uploads the playground keeps, oldest first.
#[utoipa::path(get, path = "/admin/playground/uploads", tag = "admin",
    responses((status = 200, body = UploadList)))]
pub(super) async fn uploads(_: Admin, State(state): State<AppState>) -> Json<UploadList> {
    Json(UploadList {
        uploads: state.operator.playground().uploads_list(),
    })
}

/// Query of `GET /admin/playground/template`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct TemplateQuery {
    /// `created` (default), `updated`, `completed`, `uncompleted` or `deleted`.
    #[param(inline, value_type = Option<ActionParam>)]
    action: Option<String>,
}

// Documentation only: `template` reads `action` and names it when it is something else.
/// What happened to the task.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase", as = Action)]
#[allow(dead_code)]
pub(crate) enum ActionParam {
    Created,
    Updated,
    Completed,
    Uncompleted,
    Deleted,
}

/// A sample mutation of one action, in the outbox's JSON form, to edit and run.
#[utoipa::path(get, path = "/admin/playground/template", tag = "admin", params(TemplateQuery),
    responses((status = 200, description = "A mutation (the JSON mappers receive)", body = Object),
        (status = 400, description = "An unknown action", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn template(
    _: Admin,
    ApiQuery(q): ApiQuery<TemplateQuery>,
) -> Result<Json<Mutation>, ApiError> {
    let action = match q.action.as_deref().unwrap_or("created") {
        "created" => Action::Created,
        "updated" => Action::Updated,
        "completed" => Action::Completed,
        "uncompleted" => Action::Uncompleted,
        "deleted" => Action::Deleted,
        _ => {
            return Err(ApiError::param(
                "action",
                "must be created, updated, completed, uncompleted or deleted",
            ));
        }
    };
    Ok(Json(sample(action)))
}

/// A plausible mutation of `action` on a made-up task.
fn sample(action: Action) -> Mutation {
    let now = now();
    let due = Some(now + Duration::days(1));
    let task = Task {
        id: Uuid::new_v4(),
        user_id: "playground".to_owned(),
        title: "Water the plants".to_owned(),
        description: Some("A sample task from the console's playground".to_owned()),
        completed: action == Action::Completed,
        due_date: due,
        created_at: now - Duration::hours(1),
        updated_at: now,
    };
    let changes = if action == Action::Updated {
        let text = |d: &Option<chrono::DateTime<chrono::Utc>>| d.as_ref().map(format_time);
        vec![
            FieldChange::new("title", &"Water plants", &task.title.as_str()),
            FieldChange::new("due_date", &text(&None), &text(&due)),
        ]
    } else {
        Vec::new()
    };
    Mutation {
        id: Uuid::new_v4(),
        action,
        task,
        changes,
        origin: Origin::Rest,
        correlation_id: Uuid::new_v4().to_string(),
        occurred_at: now,
    }
}

/// Body of `POST /admin/playground/run`: a mapper (`mapper` or `upload`) and a mutation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunRequest {
    /// The name of a loaded mapper (see `GET /admin/mappers`); give this or `upload`.
    mapper: Option<String>,
    /// The id of an upload (`POST /admin/playground/uploads`); give this or `mapper`.
    upload: Option<Uuid>,
    /// The mutation, in the outbox's JSON form (what `pakaura mapper run --mutation`
    /// reads; `GET /admin/envelopes/{id}` and the template give one).
    #[schema(value_type = Object)]
    mutation: Value,
    /// Settings the mapper reads with `host.config`, over the configured ones (as
    /// `pakaura mapper run --config key=value`).
    #[serde(default)]
    config: BTreeMap<String, String>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RunEnd {
    /// The mapper returned events (perhaps none); `envelopes` holds them.
    Events,
    /// The mapper failed; `refusal` says how. The relay would park the mutation.
    Refused,
}

/// Why the mapper failed, as the relay would record it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MapperRefusal {
    /// The failing mapper.
    pub(crate) mapper: String,
    /// trap, deadline, memory_limit, rejected, invalid_output, too_many_events,
    /// event_too_large or schema_violation.
    pub(crate) kind: &'static str,
    /// The reason a dead letter would carry.
    pub(crate) message: String,
}

/// `POST /admin/playground/run`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RunResult {
    /// The mapper as loaded for the run (with the run's settings).
    pub(crate) mapper: MapperListing,
    pub(crate) outcome: RunEnd,
    /// The CloudEvents envelopes the relay would publish, exactly (ids included).
    pub(crate) envelopes: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refusal: Option<MapperRefusal>,
    /// The events whose `data` breaks the schema their mapper declared for their type,
    /// whatever `MAPPER_SCHEMAS` says (under `enforce` the relay would hold the mutation;
    /// under `warn` it would publish and count them).
    pub(crate) violations: Vec<Violation>,
    /// The call's duration, output validation included, in microseconds.
    pub(crate) took_micros: u64,
}

/// Runs a mapper on a mutation, storing and publishing nothing.
///
/// The mapper runs in the relay's sandbox and limits, with the live settings (plus
/// `config`); the answer is the envelopes it would yield, built exactly as the relay
/// builds them, or its refusal.
#[utoipa::path(post, path = "/admin/playground/run", tag = "admin", request_body = RunRequest,
    responses((status = 200, body = RunResult),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The mapper's file changed on disk since the live set was loaded", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No such mapper or upload, an invalid mutation, or a component refused with these settings", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn run(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RunRequest>,
) -> Result<Json<RunResult>, ApiError> {
    let target = match (body.mapper, body.upload) {
        (Some(name), None) => Target::Live(name),
        (None, Some(id)) => Target::Upload(id),
        _ => {
            return Err(ApiError::invalid(
                "mapper",
                "give either `mapper` (a loaded mapper's name) or `upload` (an upload's id)",
            ));
        }
    };
    let mutation: Mutation = serde_json::from_value(body.mutation)
        .map_err(|e| ApiError::invalid("mutation", format!("not a valid mutation: {e}")))?;
    let outcome = state
        .operator
        .playground()
        .run(target, body.config, mutation)
        .await
        .map_err(playground_error)?;
    let took_micros = u64::try_from(outcome.took.as_micros()).unwrap_or(u64::MAX);
    Ok(Json(match outcome.result {
        Ok(envelopes) => RunResult {
            mapper: outcome.mapper,
            outcome: RunEnd::Events,
            envelopes,
            refusal: None,
            violations: outcome.violations,
            took_micros,
        },
        Err(e) => RunResult {
            mapper: outcome.mapper,
            outcome: RunEnd::Refused,
            envelopes: Vec::new(),
            refusal: Some(MapperRefusal {
                kind: e.kind.code(),
                message: e.to_string(),
                mapper: e.mapper,
            }),
            violations: outcome.violations,
            took_micros,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_valid_mutations_of_their_action() {
        for action in [
            Action::Created,
            Action::Updated,
            Action::Completed,
            Action::Uncompleted,
            Action::Deleted,
        ] {
            let m = sample(action);
            let json = serde_json::to_value(&m).unwrap();
            let back: Mutation = serde_json::from_value(json).unwrap();
            assert_eq!(back, m);
            assert_eq!(m.changes.is_empty(), action != Action::Updated);
        }
    }
}
