//! Tokens from an identity provider (`JWT_JWKS_URL`): the host against a JWKS server the
//! test runs (`pakaura_tests::idp`), over REST and MCP alike.
//!
//! One test runs on both databases (`keys::tokens_from_the_provider_work_...`): it follows
//! a provider's token into a stored task and its mutation. The rest judge tokens, which
//! happens before any query, so they run on SQLite alone; what they measure (fetches,
//! refusals, readiness) does not depend on the database.
//!
//! Layout: `keys` (what the provider signs with: algorithms, rotation, withdrawal, the
//! fetch rate limit, HTTPS), `claims` (tokens that do not fit: algorithm confusion,
//! `none`, issuer, audience, expiry, the user claim), `outages` (the provider down, or
//! never reached).

mod claims;
mod keys;
mod outages;

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use pakaura_tests::{TestApp, WAIT, expect_problem};

/// `GET /tasks` with `token`.
pub(super) async fn rest(app: &TestApp, token: &str) -> Response {
    app.client
        .get(app.url("/tasks"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent")
}

/// An MCP call of `method` with `token`.
pub(super) async fn mcp(app: &TestApp, token: &str, method: &str, params: Value) -> Response {
    app.client
        .post(app.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .expect("request sent")
}

/// Asserts that REST and MCP both accept `token`.
pub(super) async fn accepted(app: &TestApp, token: &str, case: &str) {
    let response = rest(app, token).await;
    let status = response.status();
    assert_eq!(
        status,
        StatusCode::OK,
        "{case}: REST {}",
        response.text().await.unwrap()
    );
    let response = mcp(app, token, "tools/list", json!({})).await;
    assert_eq!(response.status(), StatusCode::OK, "{case}: MCP");
}

/// Asserts that REST and MCP both refuse `token` with 401, naming `why`, and that the
/// problem document does not echo the token.
pub(super) async fn refused(app: &TestApp, token: &str, why: &str, case: &str) {
    for (surface, response) in [
        ("REST", rest(app, token).await),
        ("MCP", mcp(app, token, "tools/list", json!({})).await),
    ] {
        let problem = expect_problem(response, StatusCode::UNAUTHORIZED).await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(why), "{case} ({surface}): {problem}");
        let signature = token.rsplit('.').next().unwrap_or(token);
        assert!(
            !problem.to_string().contains(token)
                && (signature.is_empty() || !problem.to_string().contains(signature)),
            "{case} ({surface}) echoes the token: {problem}"
        );
    }
}

pub(super) async fn readiness(app: &TestApp) -> (StatusCode, Value) {
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Polls `check` until it holds, panicking after [`WAIT`].
pub(super) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) fn no_claims() -> Value {
    json!({})
}
