//! The delivery's health as the console's header and Flow page show it
//! (`GET /admin/health`, the same document every flow snapshot carries): a sidecar
//! outage reads "not ready" with its time and the failing publishes' error, a refused
//! topic shows Dapr's code and the task it holds, and both clear when the cause does.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_tests::{
    Backend, DaprSink, TestApp, dapr_options, sink_behaviour, spawn_with, task_id,
};

async fn health(app: &TestApp) -> Value {
    let response = app.admin(Method::GET, "/admin/health").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Polls `/admin/health` until `probe` holds (30 s at most).
async fn health_until(app: &TestApp, what: &str, probe: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let h = health(app).await;
        if probe(&h) {
            return h;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {h}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn an_outage_shows_with_its_error_and_since_when(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    task_id(&app, "alice", json!({"title": "before"})).await;
    let before = health_until(&app, "a ready sidecar and a publish", |h| {
        h["publisher"]["status"] == "ready" && !h["delivery"]["last_published_at"].is_null()
    })
    .await;
    assert_eq!(before["publisher"]["system"], "dapr");
    assert_eq!(before["relay"]["status"], "running");
    assert_eq!(before["delivery"]["retrying"], 0);
    assert!(before["delivery"]["last_failure"].is_null(), "{before}");
    let stages: Vec<&str> = before["relay"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        stages.contains(&"publish") && stages.contains(&"map"),
        "{stages:?}"
    );

    // The broker goes out of reach: the sidecar says so and every publish fails.
    sink.behave(|b| b.down = true);
    let went_down = chrono::Utc::now();
    task_id(&app, "alice", json!({"title": "during"})).await;
    let during = health_until(&app, "the outage", |h| {
        h["publisher"]["status"] == "not_ready" && h["delivery"]["retrying"].as_i64() >= Some(1)
    })
    .await;
    let since: chrono::DateTime<chrono::Utc> = during["publisher"]["since"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        since >= went_down - chrono::Duration::seconds(1),
        "{during}"
    );
    let failure = &during["delivery"]["last_failure"];
    assert_eq!(failure["status"], 500, "{during}");
    assert_eq!(failure["code"], "ERR_PUBSUB_PUBLISH_MESSAGE");
    assert_eq!(failure["outcome"], "retry");
    assert!(
        failure["error"]
            .as_str()
            .unwrap()
            .contains("broker not available"),
        "{failure}"
    );
    assert!(failure["relay"].as_str().unwrap().starts_with("relay-"));

    // Back: ready again, nothing left to retry, the failure stays on record.
    sink.behave(|b| b.down = false);
    let after = health_until(&app, "the recovery", |h| {
        h["publisher"]["status"] == "ready" && h["delivery"]["retrying"] == 0
    })
    .await;
    let ready_since: chrono::DateTime<chrono::Utc> = after["publisher"]["since"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ready_since > since, "{after}");
    assert_eq!(
        after["delivery"]["last_failure"]["code"],
        "ERR_PUBSUB_PUBLISH_MESSAGE"
    );
    sink.wait_for_published(2, Duration::from_secs(30)).await;
}

async fn a_refused_topic_shows_its_code_and_the_held_task(backend: Backend) {
    let mut behaviour = sink_behaviour();
    behaviour.forbidden_topics.insert("reminders".into());
    let sink = DaprSink::start(behaviour).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    task_id(
        &app,
        "alice",
        json!({"title": "a", "due_date": "2026-03-01T09:00:00Z"}),
    )
    .await;
    let h = health_until(&app, "the refusal and its hold", |h| {
        h["holds"]["held_tasks"] == 1 && !h["delivery"]["last_failure"].is_null()
    })
    .await;
    let failure = &h["delivery"]["last_failure"];
    assert_eq!(failure["status"], 403, "{h}");
    assert_eq!(failure["code"], "ERR_PUBSUB_FORBIDDEN");
    assert_eq!(failure["outcome"], "parked");
    // A refusal is not an outage: the sidecar stays ready.
    assert_eq!(h["publisher"]["status"], "ready");
    assert_eq!(h["delivery"]["retrying"], 0);
    drop(sink);
}

pakaura_tests::on_both_databases!(
    an_outage_shows_with_its_error_and_since_when,
    a_refused_topic_shows_its_code_and_the_held_task,
);
