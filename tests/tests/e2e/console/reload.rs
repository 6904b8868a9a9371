//! Reloading with a preview: what the set on disk changes and how it maps the recent
//! mutations, before anything goes live; a reload that keeps the counters of the
//! mappers it does not change; a history of reloads (admin API, console, refused).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_tests::{Backend, Options, TestApp, expect_problem, guests, spawn_with, task_id};

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn calls_of(app: &TestApp, mapper: &str) -> u64 {
    let body = json_of(app.admin(Method::GET, "/admin/mappers").await).await;
    body["mappers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == mapper)
        .map(|m| m["stats"]["calls"].as_u64().unwrap())
        .unwrap()
}

async fn a_reload_is_previewed_keeps_unchanged_counters_and_is_recorded(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_with(
        backend,
        Options::default().set("MAPPERS_DIR", dir.path().to_str().unwrap()),
    )
    .await;
    for i in 0..3 {
        task_id(&app, "alice", json!({"title": format!("t{i}")})).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while calls_of(&app, "default").await < 3 {
        assert!(tokio::time::Instant::now() < deadline, "three calls");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = calls_of(&app, "default").await;

    // Nothing changed on disk: the preview says so, and the dry run maps alike. The call
    // counter moves before the relay's transaction stores the envelopes the dry run
    // compares with, so the preview is asked again until their topics are there.
    let preview = loop {
        let preview = json_of(
            app.admin(Method::POST, "/admin/mappers/reload/preview")
                .await,
        )
        .await;
        if preview["dry_run"]["new_topics"] == json!([]) {
            break preview;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dry run still finds new topics: {preview}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(preview["files_differ"], false, "{preview}");
    assert_eq!(preview["changes"]["unchanged"], json!(["default"]));
    assert_eq!(preview["dry_run"]["mutations"], 3);
    assert_eq!(preview["dry_run"]["new_failures"], 0);
    assert_eq!(preview["dry_run"]["new_topics"], json!([]));

    // A new component on disk: previewed as added, not live yet.
    std::fs::copy(guests::MISBEHAVE, dir.path().join("10-misbehave.wasm")).unwrap();
    let preview = json_of(
        app.admin(Method::POST, "/admin/mappers/reload/preview?sample=2")
            .await,
    )
    .await;
    assert_eq!(preview["files_differ"], true);
    assert_eq!(
        preview["changes"]["added"][0]["name"], "misbehave",
        "{preview}"
    );
    assert_eq!(
        preview["changes"]["added"][0]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert_eq!(preview["dry_run"]["mutations"], 2);
    let live = json_of(app.admin(Method::GET, "/admin/mappers").await).await;
    assert_eq!(
        live["mappers"].as_array().unwrap().len(),
        1,
        "a preview changes nothing"
    );

    // The reload: the default mapper is unchanged and keeps its counters.
    let report = json_of(app.admin(Method::POST, "/admin/mappers/reload").await).await;
    assert_eq!(report["report"]["changes"]["added"][0]["name"], "misbehave");
    assert_eq!(report["report"]["changes"]["unchanged"], json!(["default"]));
    assert_eq!(calls_of(&app, "default").await, calls, "counters survive");
    assert_eq!(calls_of(&app, "misbehave").await, 0);

    // A set a reload would refuse: the preview says why, the reload too, and both
    // reloads are in the history, the newest first.
    std::fs::copy(guests::WRONG_VERSION, dir.path().join("30-bad.wasm")).unwrap();
    let refused = app
        .admin(Method::POST, "/admin/mappers/reload/preview")
        .await;
    let problem = expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("30-bad.wasm"),
        "{problem}"
    );
    let refused = app.admin(Method::POST, "/admin/mappers/reload").await;
    expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    let history = json_of(app.admin(Method::GET, "/admin/mappers/reloads").await).await;
    let reloads = history["reloads"].as_array().unwrap();
    assert_eq!(reloads.len(), 2, "{history}");
    assert_eq!(reloads[0]["outcome"], "refused");
    assert!(
        reloads[0]["summary"]
            .as_str()
            .unwrap()
            .contains("30-bad.wasm")
    );
    assert_eq!(reloads[1]["outcome"], "applied");
    assert_eq!(reloads[1]["source"], "admin");
    assert_eq!(reloads[1]["summary"], "added misbehave");

    let bad = app
        .admin(Method::POST, "/admin/mappers/reload/preview?sample=501")
        .await;
    let problem = expect_problem(bad, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem["field"], "sample");
}

pakaura_tests::on_both_databases!(a_reload_is_previewed_keeps_unchanged_counters_and_is_recorded);
