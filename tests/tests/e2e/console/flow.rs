//! Flow that remembers: the host keeps the flow whether or not a console watches (a
//! console that connects, or reloads, starts with the last minutes and an hour of
//! points), and a watching console sees per-topic rates, the oldest pending envelope and
//! the tasks held longest.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_tests::{
    Backend, DaprSink, TestApp, dapr_options, sink_behaviour, spawn_with, task_id,
};

use super::api::next_snapshot;

async fn open(app: &TestApp) -> reqwest::Response {
    let response = app.admin(Method::GET, "/admin/flow/stream").await;
    assert_eq!(response.status(), StatusCode::OK);
    response
}

async fn the_flow_is_kept_by_the_host_and_shows_topics_and_holds(backend: Backend) {
    let mut behaviour = sink_behaviour();
    behaviour.forbidden_topics.insert("reminders".into());
    let sink = DaprSink::start(behaviour).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let held = task_id(
        &app,
        "alice",
        json!({"title": "a", "due_date": "2026-03-01T09:00:00Z"}),
    )
    .await;

    // Nobody watched yet, and the host has points already.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let history = loop {
        let h: Value = app
            .admin(Method::GET, "/admin/flow/history")
            .await
            .json()
            .await
            .unwrap();
        if !h["points"].as_array().unwrap().is_empty() {
            break h;
        }
        assert!(tokio::time::Instant::now() < deadline, "no point: {h}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(history["interval_seconds"], 30);
    let point = &history["points"][0];
    for field in [
        "at",
        "outbox_pending",
        "envelopes_pending",
        "lag_seconds",
        "held_tasks",
        "rates",
    ] {
        assert!(point.get(field).is_some(), "{field} in {point}");
    }

    // A console that connects starts with the snapshots taken before it came.
    let connected = chrono::Utc::now();
    let mut first = open(&app).await;
    let mut buffer = String::new();
    let earliest = next_snapshot(&mut first, &mut buffer).await;
    let at: chrono::DateTime<chrono::Utc> = earliest["at"].as_str().unwrap().parse().unwrap();
    assert!(at < connected, "history first: {earliest}");

    // While it watches: the topics, the held task, the oldest pending envelope.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let detail = loop {
        let s = next_snapshot(&mut first, &mut buffer).await;
        let d = &s["detail"];
        let topics = d["topics"].as_array().cloned().unwrap_or_default();
        let published = topics
            .iter()
            .any(|t| t["topic"] == "task-events" && t["published"].as_i64() >= Some(1));
        let parked = topics
            .iter()
            .any(|t| t["topic"] == "reminders" && t["parked"].as_i64() >= Some(1));
        if published && parked && !d["longest_holds"].as_array().unwrap().is_empty() {
            break d.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no detail: {s}");
    };
    assert_eq!(detail["window_seconds"], 60.0);
    assert_eq!(detail["longest_holds"][0]["task_id"], held.as_str());
    assert_eq!(detail["longest_holds"][0]["topic"], "reminders");
    assert!(
        detail["oldest_pending"].is_null(),
        "nothing else waits: {detail}"
    );
    let reminders = detail["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "reminders")
        .unwrap();
    assert!(reminders["parked_rate"].as_f64().unwrap() > 0.0);

    // A reload: the stream closes and opens again, and the history is still there.
    drop(first);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut again = open(&app).await;
    let mut buffer = String::new();
    let replayed = next_snapshot(&mut again, &mut buffer).await;
    let replayed_at: chrono::DateTime<chrono::Utc> =
        replayed["at"].as_str().unwrap().parse().unwrap();
    assert!(
        replayed_at <= at,
        "the same history after a reload: {replayed}"
    );
    drop(sink);
}

pakaura_tests::on_both_databases!(the_flow_is_kept_by_the_host_and_shows_topics_and_holds);
