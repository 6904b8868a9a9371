//! The console from the first command: a local run (no JWT_SECRET, no identity
//! provider, so a demo token is made) without ADMIN_TOKEN gets an admin token made for
//! the process, and the console answers to it; a configured host without ADMIN_TOKEN
//! keeps the console off.

use reqwest::StatusCode;

use pakaura_host::startup::Application;
use pakaura_tests::{Backend, TestDatabase, config_from, on_both_databases};

async fn a_local_run_serves_the_console_with_a_token_made_for_it(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let pairs = vec![
        ("DATABASE_URL".to_owned(), database.url.clone()),
        ("BIND_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "MAPPER_CACHE_DIR".to_owned(),
            env!("PAKAURA_TEST_MAPPER_CACHE").to_owned(),
        ),
    ];
    let (app, demo) = Application::build(config_from(&pairs)).await.unwrap();
    let demo = demo.expect("a local run has demo credentials");
    let admin = demo
        .admin_token
        .expect("and an admin token for the console");
    assert_eq!(admin.len(), 32, "128 random bits, hex");
    let addr = app.addr();
    let stop = app.stop_handle();
    let server = tokio::spawn(app.run_until_stopped());
    let url = |path: &str| format!("http://{addr}{path}");
    let client = super::no_redirects();

    assert_eq!(
        client
            .get(url("/console/login"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let login = client
        .post(url("/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        login.status(),
        StatusCode::SEE_OTHER,
        "the made token opens a session"
    );
    let mappers = client
        .get(url("/admin/mappers"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(mappers.status(), StatusCode::OK);
    stop.stop();
    server.await.unwrap().unwrap();

    // Configured (a JWT secret) without ADMIN_TOKEN: no console, no admin API.
    let mut configured = pairs.clone();
    configured.push((
        "JWT_SECRET".to_owned(),
        pakaura_tests::JWT_SECRET.to_owned(),
    ));
    let (app, demo) = Application::build(config_from(&configured)).await.unwrap();
    assert!(demo.is_none());
    let addr = app.addr();
    let stop = app.stop_handle();
    let server = tokio::spawn(app.run_until_stopped());
    let response = client
        .get(format!("http://{addr}/console/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    stop.stop();
    server.await.unwrap().unwrap();
}

on_both_databases!(a_local_run_serves_the_console_with_a_token_made_for_it);
