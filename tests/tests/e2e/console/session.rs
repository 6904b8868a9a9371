//! The console's session: logging in with the admin token, a stateless cookie that
//! any replica sharing the token accepts, CSRF on changes, security headers.

use pakaura_host::auth::AdminTokens;
use pakaura_host::http::console::session::SessionKey;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION};
use reqwest::{Method, StatusCode};

use super::{CSP, csrf_token, login, no_redirects, page, post_login, set_cookie, with_session};
use pakaura_tests::{
    ADMIN_TOKEN, Backend, Options, expect_problem, on_both_databases, spawn_app, spawn_with,
};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn logging_in_with_the_admin_token_opens_a_cookie_session(backend: Backend) {
    let app = spawn_app(backend).await;

    let refused = post_login(&app, "not-the-admin-token-at-all").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get("set-cookie").is_none());
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("That is not an admin token")
    );

    let accepted = post_login(&app, ADMIN_TOKEN).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert_eq!(accepted.headers()[LOCATION], "/console");
    let cookie = set_cookie(&accepted);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP to a loopback host is the documented exception: {cookie}"
    );
    assert!(!cookie.contains(ADMIN_TOKEN), "the cookie is not the token");
    let value = login(&app).await;

    let mappers = with_session(&app, Method::GET, "/admin/mappers", &value, None)
        .send()
        .await
        .unwrap();
    assert_eq!(
        mappers.status(),
        StatusCode::OK,
        "the cookie opens the admin API"
    );
    let html = page(&app, &value).await;
    assert_eq!(html.status(), StatusCode::OK);
    assert!(html.text().await.unwrap().contains("Pakaura console"));

    // Behind a TLS-terminating proxy, the cookie is Secure.
    let proxied = no_redirects()
        .post(app.url("/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .body(format!("token={ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert!(set_cookie(&proxied).contains("; Secure"));

    let logout = no_redirects()
        .post(app.url("/console/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(logout.headers()[LOCATION], "/console/login");
    let cleared = set_cookie(&logout);
    assert!(
        cleared.starts_with("pakaura_console=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

async fn sessions_are_stateless_signed_and_expire(backend: Backend) {
    let app = spawn_app(backend).await;
    // Another replica sharing only the admin token accepts a session opened here.
    let other = spawn_app(backend).await;
    let value = login(&app).await;
    let elsewhere = with_session(&other, Method::GET, "/admin/mappers", &value, None)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::OK);

    let key_of = |token: &str| {
        let tokens = AdminTokens::new(Some(token), None).unwrap().unwrap();
        SessionKey::from_secret(tokens.session_secret())
    };
    let expired = key_of(ADMIN_TOKEN).mint("admin", now() - 1);
    let foreign = key_of("a-different-admin-token").mint("admin", now() + 600);
    let tampered = value.replacen("v2.", "v2.9", 1);
    for (cookie, why) in [
        (expired.as_str(), "expired"),
        (foreign.as_str(), "signed under another token"),
        (tampered.as_str(), "tampered with"),
        ("v1.garbage", "malformed"),
    ] {
        let response = with_session(&app, Method::GET, "/admin/mappers", cookie, None)
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::UNAUTHORIZED).await;
        let page = page(&app, cookie).await;
        assert_eq!(page.status(), StatusCode::SEE_OTHER, "{why}: back to login");
    }
    // A session of a host with another admin token is refused there.
    let rotated = spawn_with(
        backend,
        Options::default()
            .without("ADMIN_TOKEN")
            .set("ADMIN_TOKEN", "a-rotated-admin-token-value"),
    )
    .await;
    let response = with_session(&rotated, Method::GET, "/admin/mappers", &value, None)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

async fn state_changing_console_requests_need_the_csrf_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let cookie = login(&app).await;
    let csrf = csrf_token(&app, &cookie).await;
    assert_eq!(csrf.len(), 64);
    let other_session = login(&app).await;
    let foreign_csrf = csrf_token(&app, &other_session).await;

    for (token, why) in [
        (None, "without the header"),
        (Some("0000"), "with a made-up token"),
        (Some(foreign_csrf.as_str()), "with another session's token"),
    ] {
        let refused = with_session(&app, Method::POST, "/admin/mappers/reload", &cookie, token)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(refused, StatusCode::FORBIDDEN).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("x-csrf-token"),
            "{why}: {problem}"
        );
    }
    let accepted = with_session(
        &app,
        Method::POST,
        "/admin/mappers/reload",
        &cookie,
        Some(&csrf),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
    // The bearer token needs no CSRF token: it is never sent by a browser on its own.
    let bearer = app.admin(Method::POST, "/admin/mappers/reload").await;
    assert_eq!(bearer.status(), StatusCode::OK);
    // A form posted to the login from another origin is refused.
    let cross = no_redirects()
        .post(app.url("/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://attacker.example")
        .body(format!("token={ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    expect_problem(cross, StatusCode::FORBIDDEN).await;
}

async fn console_responses_carry_a_strict_content_security_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    let cookie = login(&app).await;
    let client = no_redirects();
    let mut responses = vec![
        (
            "login page",
            client.get(app.url("/console/login")).send().await.unwrap(),
        ),
        (
            "redirect",
            client.get(app.url("/console")).send().await.unwrap(),
        ),
        ("page", page(&app, &cookie).await),
        (
            "refused login",
            post_login(&app, "wrong-wrong-wrong-wrong").await,
        ),
        (
            "unknown page",
            client.get(app.url("/console/nope")).send().await.unwrap(),
        ),
    ];
    for (asset, content_type) in [
        ("console.css", "text/css"),
        ("console.js", "text/javascript"),
        ("login.js", "text/javascript"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let response = client
            .get(app.url(&format!("/console/assets/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type)
        );
        responses.push((asset, response));
    }
    for (what, response) in responses {
        let headers = response.headers();
        assert_eq!(headers[CONTENT_SECURITY_POLICY], CSP, "{what}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(headers["x-frame-options"], "DENY", "{what}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{what}");
        if what.ends_with("page") && response.status() == StatusCode::OK {
            let html = response.text().await.unwrap();
            assert!(
                !html.contains("<script>") && !html.contains("style="),
                "{what}"
            );
        }
    }

    let disabled = spawn_with(backend, Options::default().without("ADMIN_TOKEN")).await;
    let response = client
        .get(disabled.url("/console/login"))
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::NOT_FOUND).await;
}

async fn without_a_session_the_console_shows_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = no_redirects();
    let redirect = client.get(app.url("/console")).send().await.unwrap();
    assert_eq!(redirect.status(), StatusCode::SEE_OTHER);
    assert_eq!(redirect.headers()[LOCATION], "/console/login");
    for path in [
        "/admin/mappers",
        "/admin/envelopes",
        "/admin/dead-letters",
        "/admin/flow/stream",
        "/admin/playground/uploads",
        "/admin/playground/template",
    ] {
        let response = client.get(app.url(path)).send().await.unwrap();
        expect_problem(response, StatusCode::UNAUTHORIZED).await;
    }
    let run = client
        .post(app.url("/admin/playground/run"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(run, StatusCode::UNAUTHORIZED).await;
}

on_both_databases!(
    logging_in_with_the_admin_token_opens_a_cookie_session,
    sessions_are_stateless_signed_and_expire,
    state_changing_console_requests_need_the_csrf_token,
    console_responses_carry_a_strict_content_security_policy,
    without_a_session_the_console_shows_nothing,
);
