//! The OpenAPI 3.1 document, generated from the handlers' annotations.
//!
//! The problem responses every route of a surface shares are added by a modifier
//! rather than repeated on each handler: the task API's here ([`TaskResponses`]), the
//! admin API's in `admin/openapi.rs`; both through [`add_problem`].

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, KnownFormat, ObjectBuilder, Ref, RefOr, ResponseBuilder,
    SchemaFormat, Type,
};
use utoipa::{Modify, OpenApi};

use super::AppState;
use super::error::Problem;
use super::tasks;

#[derive(OpenApi)]
#[openapi(
    info(title = "Pakaura task API", description = "Tasks, with every mutation published as CloudEvents through Dapr."),
    paths(tasks::create, tasks::list, tasks::read, tasks::update, tasks::remove, tasks::complete,
        tasks::uncomplete, tasks::clear_completed),
    components(schemas(tasks::model::TaskView, Problem, tasks::model::CreateTask, tasks::model::UpdateTask, tasks::model::TaskPage, tasks::model::Cleared)),
    modifiers(&BearerAuth, &TaskResponses),
    tags((name = "tasks", description = "The caller's tasks (bearer JWT; the user id is its `sub`, or the claim JWT_USER_CLAIM names)"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The problem responses of the task API: every operation may answer 400, 401 and
/// 503 (with `Retry-After`); one on a task (`{id}`) 404; one with a body 413, 415 and
/// 422.
struct TaskResponses;

const MALFORMED: &str = "Malformed JSON, or a bad query or path parameter (`field` names it)";
const UNAUTHORIZED: &str = "No bearer token, or one that does not verify";
const NOT_FOUND: &str = "The caller has no task with this id";
const TOO_LARGE: &str = "The body is larger than 64 KiB";
const NOT_JSON: &str = "The body is not `application/json`";
const INVALID: &str = "A field is invalid (`field` names it)";
const BUSY: &str = "The database is busy; retry after `Retry-After` seconds";

impl Modify for TaskResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let on_a_task = path.contains("{id}");
            for operation in operations(item) {
                let with_body = operation.request_body.is_some();
                add_problem(operation, "400", MALFORMED);
                add_problem(operation, "401", UNAUTHORIZED);
                if on_a_task {
                    add_problem(operation, "404", NOT_FOUND);
                }
                if with_body {
                    add_problem(operation, "413", TOO_LARGE);
                    add_problem(operation, "415", NOT_JSON);
                    add_problem(operation, "422", INVALID);
                }
                add_problem(operation, "503", BUSY);
            }
        }
    }
}

/// Every operation of a path.
pub(super) fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// Adds a problem+json response with `status` and `description` to `operation`, unless
/// it documents that status itself. A 503 also documents its `Retry-After` header.
pub(super) fn add_problem(operation: &mut Operation, status: &str, description: &str) {
    let responses = &mut operation.responses.responses;
    if responses.contains_key(status) {
        return;
    }
    let problem = ContentBuilder::new()
        .schema(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/problem+json", problem);
    if status == "503" {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                        .minimum(Some(0)),
                ))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    responses.insert(status.to_owned(), RefOr::T(response.build()));
}

/// The document, built once per call (it is small and rarely fetched): the task API's,
/// with the admin API's merged in.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(super::admin::openapi::AdminDoc::openapi())
}

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}
