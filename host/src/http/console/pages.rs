//! The console's pages: the login form, logout, the page itself and its embedded
//! assets. Every response carries a strict Content-Security-Policy (no inline script
//! or style, nothing from other origins) and framing, sniffing and referrer guards.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, ORIGIN, REFERRER_POLICY,
    SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::session;
use crate::http::AppState;
use crate::http::error::ApiError;

/// The policy of every console response.
pub(crate) const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("../../../console/index.html");
const LOGIN_HTML: &str = include_str!("../../../console/login.html");

/// The embedded assets: name, content type, content.
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../../console/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/console.js"),
    ),
    (
        "login.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/login.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../../console/icon.svg"),
    ),
];

/// The console's views, the only fragments a login returns to.
const VIEWS: [&str; 7] = [
    "mappers",
    "flow",
    "envelopes",
    "dead-letters",
    "held",
    "playground",
    "candidates",
];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/assets/{file}", get(asset))
        .route(
            "/console/{*rest}",
            any(|| async { ApiError::NotFound("no such console page".into()) }),
        )
        .layer(middleware::from_fn(harden))
}

/// Adds the security headers to every console response; HTML is never cached.
async fn harden(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (X_FRAME_OPTIONS, "DENY"),
        // Not `no-referrer`: with it browsers send `Origin: null` on form posts, which
        // the login's origin check must refuse. Nothing leaves the origin either way.
        (REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// 404 while the admin API is disabled.
fn enabled(state: &AppState) -> Result<&session::SessionKey, ApiError> {
    match (&state.admin_token, state.console.session_key()) {
        (Some(_), Some(key)) => Ok(key),
        _ => Err(ApiError::NotFound(
            "the console is disabled: set ADMIN_TOKEN to enable it".into(),
        )),
    }
}

/// The page, for a valid session; otherwise a redirect to the login form.
async fn index(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let key = enabled(&state)?;
    let session = session::cookie_value(&headers)
        .filter(|cookie| key.verify(cookie, session::unix_now()).is_ok());
    Ok(match session {
        Some(cookie) => {
            Html(INDEX_HTML.replace("{{csrf_token}}", &key.csrf_token(cookie))).into_response()
        }
        None => Redirect::to("/console/login").into_response(),
    })
}

/// The login form, with `error` above it when set (escaped).
fn login_form(error: Option<&str>) -> Html<String> {
    let error = error.map_or_else(String::new, |e| {
        format!(
            r#"<p class="error" role="alert" id="login-error">{}</p>"#,
            escape(e)
        )
    });
    // The error is tied to the field it is about, for screen readers.
    let token_state = if error.is_empty() {
        ""
    } else {
        r#" aria-invalid="true" aria-describedby="login-error""#
    };
    Html(
        LOGIN_HTML
            .replace("{{error}}", &error)
            .replace("{{token_state}}", token_state),
    )
}

async fn login_page(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    enabled(&state)?;
    Ok(login_form(None))
}

#[derive(Debug, Deserialize)]
struct Login {
    token: String,
    /// The view to open after logging in (the URL's fragment, copied by login.js).
    #[serde(default)]
    next: String,
}

/// Exchanges the admin token for a session cookie.
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Login>, FormRejection>,
) -> Result<Response, ApiError> {
    let key = enabled(&state)?;
    same_origin(&headers)?;
    let (token, next) = form
        .map(|Form(login)| (login.token, login.next))
        .unwrap_or_default();
    let admin = state.admin_token.as_deref();
    let Some(name) = admin.and_then(|tokens| tokens.who(token.trim())) else {
        let wait = state.console.login_throttle().refused();
        tracing::warn!(
            wait_ms = wait.as_millis() as u64,
            "console login refused: not an admin token"
        );
        tokio::time::sleep(wait).await;
        let page = login_form(Some("That is not an admin token."));
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    };
    let ttl = state.console.config().console_session_ttl.as_secs();
    let cookie = key.mint(name, session::unix_now() + ttl);
    state.console.login_throttle().accepted();
    tracing::info!(operator = name, "console login");
    // Back to the view asked for, if it is one (never a URL from the form).
    let target = match VIEWS.iter().find(|v| **v == next.trim()) {
        Some(view) => format!("/console#{view}"),
        None => "/console".to_owned(),
    };
    let mut response = Redirect::to(&target).into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        session::set_cookie(&cookie, ttl, session::wants_secure(&headers)),
    );
    Ok(response)
}

/// Ends the session in this browser (the cookie is stateless: a copy of it stays
/// valid until it expires; changing ADMIN_TOKEN ends every session).
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    enabled(&state)?;
    same_origin(&headers)?;
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        session::clear_cookie(session::wants_secure(&headers)),
    );
    Ok(response)
}

async fn asset(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    enabled(&state)?;
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::NotFound(format!("no console asset `{file}`")))?;
    Ok((
        [(CONTENT_TYPE, *content_type), (CACHE_CONTROL, "no-cache")],
        *body,
    )
        .into_response())
}

/// Refuses a form post another origin made: by `Sec-Fetch-Site` when the browser
/// sends it, else by `Origin` (which browsers send with every POST). A request with
/// neither (curl, scripts) has no ambient credentials to abuse and passes.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let refused = || {
        Err(ApiError::Forbidden(
            "a console form may only be posted from the console itself".into(),
        ))
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.to_str().unwrap_or_default() {
            "same-origin" | "none" => Ok(()),
            _ => refused(),
        };
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin = origin.to_str().unwrap_or_default();
    let same = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host));
    if same { Ok(()) } else { refused() }
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_have_their_placeholders_and_no_inline_code() {
        assert!(INDEX_HTML.contains("{{csrf_token}}"));
        assert!(LOGIN_HTML.contains("{{error}}"));
        for page in [INDEX_HTML, LOGIN_HTML] {
            assert!(!page.contains("<script>"), "no inline script");
            assert!(!page.contains("<style"), "no inline style");
            assert!(!page.contains("style="), "no style attributes");
            assert!(
                !page.contains("http://") && !page.contains("https://"),
                "nothing external"
            );
        }
    }

    #[test]
    fn errors_are_escaped() {
        assert_eq!(escape("<b>\"x\"&'"), "&lt;b&gt;&quot;x&quot;&amp;&#39;");
    }

    #[test]
    fn only_the_same_origin_may_post() {
        let headers = |origin: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
            h.insert(ORIGIN, HeaderValue::from_static(origin));
            h
        };
        assert!(same_origin(&headers("http://127.0.0.1:8080")).is_ok());
        assert!(same_origin(&headers("https://evil.example")).is_err());
        assert!(same_origin(&headers("null")).is_err());
        assert!(same_origin(&HeaderMap::new()).is_ok());
        let fetched = |site: &'static str| {
            let mut h = headers("null");
            h.insert("sec-fetch-site", HeaderValue::from_static(site));
            h
        };
        assert!(same_origin(&fetched("same-origin")).is_ok());
        assert!(same_origin(&fetched("same-site")).is_err());
        assert!(same_origin(&fetched("cross-site")).is_err());
    }
}
