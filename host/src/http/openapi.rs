//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
    modifiers(&BearerAuth),
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

/// The document, built once per call (it is small and rarely fetched): the task API's,
/// with the admin API's merged in.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().merge_from(super::admin::openapi::AdminDoc::openapi())
}

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}
