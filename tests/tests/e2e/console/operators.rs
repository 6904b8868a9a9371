//! Named admin tokens (`ADMIN_TOKENS=name:token,...`, beside `ADMIN_TOKEN`, named
//! `admin`): every replay, skip and reload is recorded with the operator's name, over
//! the admin API and in a console session opened with that operator's token.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_tests::{
    Backend, DaprSink, dapr_options, on_both_databases, sink_behaviour, spawn_with, task_id,
    wait_for_dead_letters,
};

use super::{csrf_token, post_login, with_session};

const ALICE: &str = "alice-ops-token-0123456789";
const BOB: &str = "bob-ops-token-0123456789";

async fn replays_skips_and_reloads_are_recorded_with_the_operator(backend: Backend) {
    let mut behaviour = sink_behaviour();
    behaviour.forbidden_topics.insert("reminders".into());
    let sink = DaprSink::start(behaviour).await;
    let app = spawn_with(
        backend,
        dapr_options(&sink).set("ADMIN_TOKENS", format!("alice:{ALICE}, bob:{BOB}")),
    )
    .await;
    for title in ["a", "b"] {
        let body = json!({"title": title, "due_date": "2026-03-01T09:00:00Z"});
        task_id(&app, "carol", body).await;
    }
    let letters = wait_for_dead_letters(&app, 2).await;
    let (first, second) = (
        letters[0]["id"].as_str().unwrap(),
        letters[1]["id"].as_str().unwrap(),
    );

    // Alice replays over the admin API with her token.
    let response = app
        .client
        .post(app.url(&format!("/admin/dead-letters/{first}/replay")))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let followed: Value = app
        .admin(Method::GET, &format!("/admin/dead-letters/{first}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(followed["letter"]["resolved_by"], "alice");

    // Bob skips in a console session opened with his token.
    let login = post_login(&app, BOB).await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = super::set_cookie(&login)
        .split(';')
        .next()
        .and_then(|p| p.strip_prefix("pakaura_console="))
        .unwrap()
        .to_owned();
    assert!(!cookie.contains(BOB), "the cookie holds no token");
    let csrf = csrf_token(&app, &cookie).await;
    let response = with_session(
        &app,
        Method::POST,
        &format!("/admin/dead-letters/{second}/skip"),
        &cookie,
        Some(&csrf),
    )
    .json(&json!({"reason": "not needed"}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let followed: Value = app
        .admin(Method::GET, &format!("/admin/dead-letters/{second}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(followed["letter"]["resolved_by"], "bob");

    // Alice reloads; the history says so. ADMIN_TOKEN is still `admin`.
    let response = app
        .client
        .post(app.url("/admin/mappers/reload"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let history: Value = app
        .admin(Method::GET, "/admin/mappers/reloads")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["reloads"][0]["source"], "alice");
    let response = app
        .client
        .get(app.url("/admin/mappers"))
        .bearer_auth("nobody-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

fn unusable_named_tokens_are_refused_without_echoing_them() {
    for bad in [
        "alice",
        "Alice:alice-token-0123456789",
        "a:short",
        "admin:x-token-0123456789",
    ] {
        let config = pakaura_tests::config_from(&[
            ("DATABASE_URL".to_owned(), "sqlite::memory:".to_owned()),
            (
                "ADMIN_TOKEN".to_owned(),
                "the-single-admin-token".to_owned(),
            ),
            ("ADMIN_TOKENS".to_owned(), bad.to_owned()),
        ]);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("ADMIN_TOKENS"), "{err}");
        assert!(!err.contains("0123456789"), "never the token: {err}");
    }
}

#[test]
fn unusable_named_tokens_are_refused() {
    unusable_named_tokens_are_refused_without_echoing_them();
}

on_both_databases!(replays_skips_and_reloads_are_recorded_with_the_operator);
