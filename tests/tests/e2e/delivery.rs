//! Delivery guarantees against a misbehaving sidecar: failures, timeouts and
//! outages lose nothing and keep envelope ids; refusals park dead letters; a
//! restarted host publishes what it left pending.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_tests::{Backend, on_both_databases, spawn_with, start};
use pakaura_tests::{
    Behaviour, DaprSink, Recorded, WAIT, dapr_options, pairs, refusing_reminders, sink_behaviour,
    task_id, types_of, wait_for_dead_letters,
};

async fn a_failing_sidecar_loses_nothing_and_keeps_ids(backend: Backend) {
    let sink = DaprSink::start(Behaviour {
        fail_next: 7,
        ..sink_behaviour()
    })
    .await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    for i in 0..3 {
        task_id(&app, "alice", json!({"title": format!("t{i}")})).await;
    }
    let published = sink.wait_for_published(6, WAIT).await;
    let failed: Vec<Recorded> = sink
        .requests()
        .into_iter()
        .filter(|r| r.status == 500)
        .collect();
    assert_eq!(failed.len(), 7);
    let published_ids: BTreeSet<&str> = published.iter().map(Recorded::id).collect();
    for f in &failed {
        assert!(
            published_ids.contains(f.id()),
            "a retried event keeps its id: {}",
            f.id()
        );
        let later = published.iter().find(|p| p.id() == f.id()).unwrap();
        assert_eq!(later.body, f.body, "the retry sends the same envelope");
    }
    assert_eq!(published.len(), 6, "each event accepted once");
}

async fn a_hanging_sidecar_is_timed_out_and_retried(backend: Backend) {
    let sink = DaprSink::start(Behaviour {
        hang_next: 2,
        hang_for: Duration::from_secs(1),
        ..sink_behaviour()
    })
    .await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let id = task_id(&app, "alice", json!({"title": "slow"})).await;
    sink.wait_for_published(2, WAIT).await;
    // The hung requests are accepted by the sidecar after the host gave up on them:
    // at-least-once means the same id may arrive twice, never a second id.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let published = sink.published();
    let ids: BTreeSet<&str> = published.iter().map(Recorded::id).collect();
    assert_eq!(
        ids.len(),
        2,
        "two events, whatever the duplicates: {published:#?}"
    );
    assert_eq!(types_of(&published, &id)[0].0, "task.created");
}

async fn a_sidecar_down_for_a_while_gets_everything_when_back(backend: Backend) {
    let mut sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    // Let the relay see the sidecar ready before it goes down.
    task_id(&app, "alice", json!({"title": "before"})).await;
    sink.wait_for_published(2, WAIT).await;
    sink.stop().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(task_id(&app, "alice", json!({"title": format!("t{i}")})).await);
    }
    let id = &ids[0];
    let response = app.post_task("alice", id, "complete").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "an outage changes no API response"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sink = sink.restart().await;
    let published = sink.wait_for_published(12, WAIT).await;
    let envelopes: Value = app
        .admin(Method::GET, "/admin/envelopes?state=published&limit=100")
        .await
        .json()
        .await
        .unwrap();
    let retried = envelopes["envelopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["attempts"].as_i64().unwrap() > 1)
        .count();
    assert!(retried > 0, "the outage made the relay retry: {envelopes}");
    for id in &ids {
        assert!(!types_of(&published, id).is_empty());
    }
}

async fn refused_events_are_parked_as_dead_letters(backend: Backend) {
    let (sink, app, id) = refusing_reminders(backend).await;
    let after = task_id(&app, "alice", json!({"title": "b"})).await;
    sink.wait_for_published(4, WAIT).await;
    let letters = wait_for_dead_letters(&app, 1).await;
    let letter = &letters[0];
    assert_eq!(letter["kind"], "publish");
    assert_eq!(letter["mapper"], "default");
    assert!(
        letter["reason"]
            .as_str()
            .unwrap()
            .contains("ERR_PUBSUB_FORBIDDEN"),
        "{letter}"
    );
    assert!(
        !types_of(&sink.published(), &after).is_empty(),
        "a refusal does not block other events"
    );
    assert_eq!(types_of(&sink.published(), &id).len(), 2);
    let dead: Value = app
        .admin(Method::GET, "/admin/envelopes?state=dead")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        dead["envelopes"][0]["envelope"]["type"],
        "reminder.scheduled"
    );
    assert_eq!(dead["envelopes"][0]["dapr_status"], 403);
}

async fn a_refused_event_is_published_when_replayed_after_the_fix(backend: Backend) {
    let (sink, app, id) = refusing_reminders(backend).await;
    let letters = wait_for_dead_letters(&app, 1).await;
    let refused = sink
        .requests()
        .into_iter()
        .find(|r| r.status == 403)
        .unwrap();

    sink.behave(|b| b.forbidden_topics.clear());
    let letter = letters[0]["id"].as_str().unwrap();
    let replay = app.replay(letter).await;
    assert_eq!(replay.status(), StatusCode::OK);
    let published = sink.wait_for_published(3, WAIT).await;
    let reminder = published.iter().find(|r| r.topic == "reminders").unwrap();
    assert_eq!(
        reminder.id(),
        refused.id(),
        "the replayed event keeps its id"
    );
    assert_eq!(reminder.body, refused.body);
    assert_eq!(types_of(&published, &id).len(), 3);
    assert_eq!(
        published.len(),
        3,
        "the already published events are not sent again"
    );
}

async fn an_unknown_pubsub_parks_every_event(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(
        backend,
        dapr_options(&sink).set("DAPR_PUBSUB_NAME", "no-such-pubsub"),
    )
    .await;
    task_id(&app, "alice", json!({"title": "a"})).await;
    let letters = wait_for_dead_letters(&app, 2).await;
    assert!(letters.iter().all(|l| {
        l["reason"]
            .as_str()
            .unwrap()
            .contains("ERR_PUBSUB_NOT_FOUND")
    }));
    assert!(sink.published().is_empty());
}

async fn a_restarted_host_publishes_pending_rows(backend: Backend) {
    let mut sink = DaprSink::start(sink_behaviour()).await;
    sink.stop().await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let id = task_id(&app, "alice", json!({"title": "survives restarts"})).await;
    let database = app.stop().await;
    let sink = sink.restart().await;
    let _app = start(database, dapr_options(&sink)).await;
    let published = sink.wait_for_published(2, WAIT).await;
    assert_eq!(
        types_of(&published, &id),
        pairs(&[
            ("task.created", "task-events"),
            ("sync.task", "task-updates")
        ])
    );
}

on_both_databases!(
    a_failing_sidecar_loses_nothing_and_keeps_ids,
    a_hanging_sidecar_is_timed_out_and_retried,
    a_sidecar_down_for_a_while_gets_everything_when_back,
    refused_events_are_parked_as_dead_letters,
    a_refused_event_is_published_when_replayed_after_the_fix,
    an_unknown_pubsub_parks_every_event,
    a_restarted_host_publishes_pending_rows,
);
