//! The admin API's part of the OpenAPI document (tag `admin`), merged into the task
//! API's document by [`crate::http::openapi`].
//!
//! Every admin operation accepts either security scheme: `admin` (`Authorization:
//! Bearer $ADMIN_TOKEN`) or `console` (the console's session cookie, with the
//! `X-CSRF-Token` header on requests that change something). The responses every admin
//! route shares (401, 403, 404) are added to each operation here rather than repeated
//! on every handler.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use super::candidates;
use super::flow as flow_routes;
use super::letters;
use super::letters_bulk;
use super::playground as playground_routes;
use super::reload as reload_routes;
use crate::http::console::session::COOKIE_NAME;
use crate::http::openapi::{add_problem, operations};

#[derive(OpenApi)]
#[openapi(
    paths(super::list_mappers, super::reload_mappers, reload_routes::preview, reload_routes::history, letters_bulk::dead_letters, letters_bulk::letter,
        letters_bulk::replay_many, letters_bulk::skip_many, letters::replay,
        letters::skip, letters::holds, letters::retry, super::envelopes, super::envelope, flow_routes::stream, flow_routes::history, super::health::health, playground_routes::upload,
        playground_routes::uploads, playground_routes::template, playground_routes::run,
        candidates::upload, candidates::list, candidates::get_one, candidates::remove,
        candidates::start_diff, candidates::diff, candidates::cancel_diff,
        candidates::start_shadow, candidates::shadow, candidates::stop_shadow,
        candidates::promote, candidates::rollback, candidates::releases),
    modifiers(&AdminSecurity),
    tags((name = "admin", description = "The operator's surface and the console's data (bearer `ADMIN_TOKEN` or the console session; 404 when `ADMIN_TOKEN` is unset)"))
)]
pub(crate) struct AdminDoc;

struct AdminSecurity;

/// The responses every admin operation may give, whatever it does.
const SHARED: [(&str, &str); 3] = [
    (
        "401",
        "No credentials, or ones that do not verify (a bad or expired console session)",
    ),
    (
        "403",
        "A bearer token that is not the admin token, or a console request that changes something without the session's X-CSRF-Token",
    ),
    ("404", "The admin API is disabled (no ADMIN_TOKEN)"),
];

impl Modify for AdminSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The host's ADMIN_TOKEN"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "console",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                COOKIE_NAME,
                "The console's session cookie (POST /console/login with the admin token); \
                 state-changing requests also need the X-CSRF-Token header the console page carries",
            ))),
        );
        for item in openapi.paths.paths.values_mut() {
            operations(item).for_each(secure);
        }
    }
}

fn secure(operation: &mut Operation) {
    operation.security = Some(vec![
        SecurityRequirement::new("admin", Vec::<String>::new()),
        SecurityRequirement::new("console", Vec::<String>::new()),
    ]);
    for (status, description) in SHARED {
        add_problem(operation, status, description);
    }
}
