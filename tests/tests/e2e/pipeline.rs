//! The event pipeline end to end: REST mutations → outbox → default mapper →
//! CloudEvents envelopes → the recording Dapr sidecar.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_host::store::EnvelopeFilter;
use pakaura_tests::{Backend, Options, on_both_databases, spawn_app, spawn_with};
use pakaura_tests::{
    Behaviour, DaprSink, Recorded, WAIT, dapr_options, pairs, sink_behaviour, task_id, types_of,
};

fn assert_valid_envelope(r: &Recorded) {
    let e = &r.body;
    assert_eq!(e["specversion"], "1.0");
    assert!(
        uuid::Uuid::parse_str(e["id"].as_str().unwrap()).is_ok(),
        "id: {e}"
    );
    assert_eq!(e["source"], "pakaura/api");
    assert_eq!(e["datacontenttype"], "application/json");
    assert!(
        e["data"].is_object(),
        "data is a JSON object, not a string: {e}"
    );
    assert!(chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).is_ok());
    let traceparent = e["traceparent"].as_str().unwrap();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(
        (parts[0], parts[1].len(), parts[2].len(), parts[3].len()),
        ("00", 32, 16, 2)
    );
    assert_eq!(r.headers["content-type"], "application/cloudevents+json");
    assert_eq!(r.headers["dapr-api-token"], "dapr-token-123");
    assert_eq!(r.pubsub, "pubsub-kafka");
    assert_eq!(
        r.partition_key.as_deref(),
        e["data"]["task_id"].as_str(),
        "the task id is the Kafka key"
    );
}

async fn every_route_publishes_exactly_the_catalogue(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;

    let response = app
        .client
        .post(app.url("/tasks"))
        .bearer_auth(pakaura_tests::token_for("alice"))
        .header("x-correlation-id", "corr-1")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&json!({"title": "water plants", "due_date": "2026-03-01T09:00:00Z"}))
        .send()
        .await
        .unwrap();
    let a = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let task = format!("/tasks/{a}");
    for body in [
        json!({"title": "water all plants"}),
        json!({"due_date": "2026-03-02T09:00:00Z"}),
        json!({"due_date": null}),
        json!({"due_date": "2026-03-03T09:00:00Z"}),
    ] {
        app.send(Method::PATCH, &task, Some("alice"), Some(body))
            .await;
    }
    app.post_task("alice", &a, "complete").await;
    app.post_task("alice", &a, "uncomplete").await;
    app.send(Method::DELETE, &format!("/tasks/{a}"), Some("alice"), None)
        .await;
    let b = task_id(&app, "alice", json!({"title": "no due date"})).await;
    app.post_task("alice", &b, "complete").await;
    app.send(Method::DELETE, "/tasks?completed=true", Some("alice"), None)
        .await;

    let published = sink.wait_for_published(29, WAIT).await;
    assert_eq!(
        types_of(&published, &a),
        pairs(&[
            ("task.created", "task-events"),
            ("sync.task", "task-updates"),
            ("reminder.scheduled", "reminders"),
            ("task.updated", "task-events"),
            ("sync.task", "task-updates"),
            ("task.updated", "task-events"),
            ("sync.task", "task-updates"),
            ("reminder.rescheduled", "reminders"),
            ("task.updated", "task-events"),
            ("sync.task", "task-updates"),
            ("reminder.cancelled", "reminders"),
            ("task.updated", "task-events"),
            ("sync.task", "task-updates"),
            ("reminder.scheduled", "reminders"),
            ("task.completed", "task-events"),
            ("sync.task", "task-updates"),
            ("reminder.cancelled", "reminders"),
            ("task.uncompleted", "task-events"),
            ("sync.task", "task-updates"),
            ("reminder.scheduled", "reminders"),
            ("task.deleted", "task-events"),
            ("sync.task", "task-updates"),
            ("reminder.cancelled", "reminders"),
        ])
    );
    assert_eq!(
        types_of(&published, &b),
        pairs(&[
            ("task.created", "task-events"),
            ("sync.task", "task-updates"),
            ("task.completed", "task-events"),
            ("sync.task", "task-updates"),
            ("task.deleted", "task-events"),
            ("sync.task", "task-updates"),
        ])
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.published().len(), 29, "nothing else is published");
    for r in sink.published() {
        assert_valid_envelope(&r);
    }

    let of_a: Vec<&Recorded> = published
        .iter()
        .filter(|r| r.body["subject"] == a.as_str())
        .collect();
    let created = of_a[0];
    let e = &created.body;
    assert_eq!(e["type"], "task.created");
    assert_eq!(e["subject"], a.as_str());
    assert_eq!(e["traceid"], "corr-1");
    assert!(
        e["traceparent"]
            .as_str()
            .unwrap()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    );
    assert_eq!(
        created.headers["traceparent"],
        e["traceparent"].as_str().unwrap()
    );
    assert_eq!(
        e["data"],
        json!({
            "task_id": a, "user_id": "alice", "action": "created", "title": "water plants", "completed": false,
            "due_date": "2026-03-01T09:00:00.000Z", "changes": null, "timestamp": e["time"],
        })
    );
    let updated = published
        .iter()
        .find(|r| r.event_type() == "task.updated")
        .unwrap();
    assert_eq!(
        updated.body["data"]["changes"],
        json!({"title": {"old": "water plants", "new": "water all plants"}})
    );
    let sync = &of_a[1].body;
    assert_eq!(
        sync["data"],
        json!({"task_id": a, "user_id": "alice", "action": "created", "timestamp": sync["time"]})
    );
    let reminder = &of_a[2].body;
    assert_eq!(
        reminder["data"],
        json!({"task_id": a, "user_id": "alice", "action": "scheduled", "title": "water plants",
               "due_date": "2026-03-01T09:00:00.000Z", "timestamp": reminder["time"]})
    );
    let ids: BTreeSet<&str> = published.iter().map(Recorded::id).collect();
    assert_eq!(ids.len(), published.len(), "every envelope has its own id");
}

async fn per_task_order_holds_with_many_concurrent_tasks(backend: Backend) {
    per_task_order(backend, None).await;
}

/// Map batches of two rows: one task's mutations are spread over many batches.
async fn per_task_order_holds_across_small_map_batches(backend: Backend) {
    per_task_order(backend, Some("2")).await;
}

/// Twelve tasks changed concurrently, five mutations each, a few publishes failing: each
/// task's events reach the sidecar in mutation order. `batch_size`: `RELAY_BATCH_SIZE`.
async fn per_task_order(backend: Backend, batch_size: Option<&str>) {
    let sink = DaprSink::start(Behaviour {
        fail_next: 5,
        ..sink_behaviour()
    })
    .await;
    let mut options = dapr_options(&sink);
    if let Some(size) = batch_size {
        options = options.set("RELAY_BATCH_SIZE", size);
    }
    let app = spawn_with(backend, options).await;
    let app = std::sync::Arc::new(app);
    let mut handles = Vec::new();
    for t in 0..12 {
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            let id = task_id(&app, "alice", json!({"title": format!("task {t}")})).await;
            for n in 0..3 {
                app.send(
                    Method::PATCH,
                    &format!("/tasks/{id}"),
                    Some("alice"),
                    Some(json!({"title": format!("v{n}")})),
                )
                .await;
            }
            app.post_task("alice", &id, "complete").await;
            (id, t)
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap());
    }
    let published = sink
        .wait_for_published(12 * 10, Duration::from_secs(60))
        .await;
    for (id, t) in &ids {
        let titles: Vec<String> = published
            .iter()
            .filter(|r| r.body["subject"] == id.as_str() && r.topic == "task-events")
            .map(|r| {
                format!(
                    "{}:{}",
                    r.event_type(),
                    r.body["data"]["title"].as_str().unwrap_or_default()
                )
            })
            .collect();
        let expected = [
            format!("task.created:task {t}"),
            "task.updated:v0".to_owned(),
            "task.updated:v1".to_owned(),
            "task.updated:v2".to_owned(),
            "task.completed:v2".to_owned(),
        ];
        assert_eq!(titles, expected, "task {id} events in mutation order");
    }
}

async fn with_dapr_off_nothing_is_sent_and_envelopes_are_inspectable(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(
        backend,
        Options::default().set("DAPR_HTTP_PORT", sink.addr.port().to_string()),
    )
    .await;
    let id = task_id(
        &app,
        "alice",
        json!({"title": "local only", "due_date": "2026-03-01T09:00:00Z"}),
    )
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let envelopes = loop {
        let body: Value = app
            .admin(Method::GET, "/admin/envelopes?limit=10")
            .await
            .json()
            .await
            .unwrap();
        let list = body["envelopes"].as_array().cloned().unwrap();
        if list.len() == 3 {
            break list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "envelopes: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(envelopes.iter().all(|e| e["state"] == "skipped"));
    let types: BTreeSet<&str> = envelopes
        .iter()
        .map(|e| e["envelope"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        BTreeSet::from(["task.created", "sync.task", "reminder.scheduled"])
    );
    assert!(
        envelopes
            .iter()
            .all(|e| e["envelope"]["subject"] == id.as_str())
    );
    assert!(sink.requests().is_empty(), "nothing reaches the sidecar");
}

async fn finished_rows_are_pruned_after_the_retention(backend: Backend) {
    let app = spawn_app(backend).await;
    task_id(&app, "alice", json!({"title": "short-lived"})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let recent = EnvelopeFilter {
        limit: 10,
        ..EnvelopeFilter::default()
    };
    while app.db.recent_envelopes(&recent).await.unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bodies = || {
        pakaura_tests::database::count(&app.database.url, "SELECT COUNT(*) FROM envelope_bodies")
    };
    assert_eq!(bodies().await, 2);
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    assert_eq!(
        app.db.prune_some(past, past, 1000).await.unwrap(),
        0,
        "nothing is older than the retention"
    );
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    assert_eq!(
        app.db.prune_some(future, past, 1000).await.unwrap(),
        2,
        "the two envelopes; MUTATION_HISTORY keeps their mutation"
    );
    assert!(app.db.recent_envelopes(&recent).await.unwrap().is_empty());
    assert_eq!(bodies().await, 0, "the bodies went with their envelopes");
    assert_eq!(app.db.outbox_rows(None).await.unwrap().len(), 1);
    assert_eq!(
        app.db.prune_some(future, future, 1000).await.unwrap(),
        1,
        "the mutation, past MUTATION_HISTORY"
    );
    assert!(app.db.outbox_rows(None).await.unwrap().is_empty());
}

async fn the_admin_api_is_off_without_an_admin_token(backend: Backend) {
    let app = spawn_with(backend, Options::default().without("ADMIN_TOKEN")).await;
    let response = app.admin(Method::GET, "/admin/mappers").await;
    pakaura_tests::expect_problem(response, StatusCode::NOT_FOUND).await;
}

async fn admin_routes_need_the_admin_token(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/admin/mappers", "/admin/dead-letters", "/admin/envelopes"] {
        let none = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{path}");
        let user = app
            .client
            .get(app.url(path))
            .bearer_auth(pakaura_tests::token_for("alice"))
            .send()
            .await
            .unwrap();
        assert_eq!(user.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            app.admin(Method::GET, path).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
}

on_both_databases!(
    every_route_publishes_exactly_the_catalogue,
    per_task_order_holds_with_many_concurrent_tasks,
    per_task_order_holds_across_small_map_batches,
    with_dapr_off_nothing_is_sent_and_envelopes_are_inspectable,
    admin_routes_need_the_admin_token,
    the_admin_api_is_off_without_an_admin_token,
    finished_rows_are_pruned_after_the_retention,
);
