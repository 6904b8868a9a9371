//! Request authentication: the user's bearer JWT and the operator's admin token
//! (as a bearer token, or as the console's session cookie derived from it).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;

/// The authenticated user (the token's `sub`).
#[derive(Debug, Clone)]
pub struct AuthUser(pub String);

/// An authenticated operator, for `/admin` routes: `Authorization: Bearer
/// $ADMIN_TOKEN`, or the console's session cookie (with its CSRF token on requests
/// that change something). A request with an `Authorization` header is judged by it
/// alone. Its name is what the host records of who resolved a dead letter.
#[derive(Debug, Clone)]
pub struct Admin {
    name: String,
}

impl Admin {
    /// Who the operator is: the name of the token used (`admin` for `ADMIN_TOKEN`, a
    /// name of `ADMIN_TOKENS`), directly or to open the console session.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::Unauthorized("missing `Authorization: Bearer <token>` header".into())
        })?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not valid text".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::Unauthorized(
            "the Authorization header must be `Bearer <token>`".into(),
        )),
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let user = state.auth.authenticate(token).await.map_err(|e| {
            tracing::debug!(reason = %e, "bearer token refused");
            ApiError::Unauthorized(e.to_string())
        })?;
        tracing::Span::current().record("user_id", user.as_str());
        Ok(AuthUser(user))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.admin_token.as_deref() else {
            return Err(ApiError::NotFound(
                "the admin API is disabled: set ADMIN_TOKEN to enable it".into(),
            ));
        };
        if !parts.headers.contains_key(AUTHORIZATION)
            && let Some(cookie) = super::console::session::cookie_value(&parts.headers)
        {
            let name = state
                .console
                .authorize(cookie, &parts.method, &parts.headers)?;
            if !expected.knows(&name) {
                return Err(ApiError::Unauthorized(
                    "the console session's operator is no longer configured".into(),
                ));
            }
            return Ok(Admin { name });
        }
        let token = bearer(parts)?;
        if let Some(name) = expected.who(token) {
            Ok(Admin {
                name: name.to_owned(),
            })
        } else {
            Err(ApiError::Forbidden(
                "the bearer token is not the admin token".into(),
            ))
        }
    }
}
