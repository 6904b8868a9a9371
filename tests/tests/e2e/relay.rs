//! The pipelined relay: bulk publishes, backlogs, retry limits, fenced leases, the
//! supervisor, and replays that never send an event twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pakaura_host::domain::task::now;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_host::store::{
    Db, Delivery, DeliveryBatch, DeliveryRecord, EnvelopeState, HeldTask, MappedRow, Mapping,
    NewEnvelope,
};
use pakaura_tests::{Backend, TestApp, TestDatabase, on_both_databases, spawn_with};
use pakaura_tests::{
    Behaviour, DaprSink, Recorded, WAIT, dapr_options, refusing_reminders, sink_behaviour, task_id,
    wait_for_dead_letters,
};

/// The event types the default mapper publishes for a task created with a due date and
/// then completed, in order.
const CREATED_THEN_COMPLETED: [&str; 6] = [
    "task.created",
    "sync.task",
    "reminder.scheduled",
    "task.completed",
    "sync.task",
    "reminder.cancelled",
];

/// Creates `n` tasks with a due date and completes each; returns their ids.
async fn tasks_created_then_completed(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = task_id(
            app,
            "alice",
            json!({"title": format!("t{i}"), "due_date": "2026-03-01T09:00:00Z"}),
        )
        .await;
        let done = app.post_task("alice", &id, "complete").await;
        assert_eq!(done.status(), StatusCode::OK);
        ids.push(id);
    }
    ids
}

/// The accepted events of `task`, first acceptance of each id only, in acceptance order.
fn accepted_types(published: &[Recorded], task: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    published
        .iter()
        .filter(|r| r.body["subject"] == task && seen.insert(r.id().to_owned()))
        .map(|r| r.event_type().to_owned())
        .collect()
}

fn assert_each_task_in_order(published: &[Recorded], tasks: &[String]) {
    for task in tasks {
        assert_eq!(
            accepted_types(published, task),
            CREATED_THEN_COMPLETED,
            "task {task} published out of order"
        );
    }
}

async fn bulk_publishes_retry_only_failed_entries_and_never_reorder_a_task(backend: Backend) {
    let sink = DaprSink::start(Behaviour {
        fail_next: 9,
        ..sink_behaviour()
    })
    .await;
    let app = spawn_with(
        backend,
        dapr_options(&sink)
            .set("DAPR_BULK_PUBLISH", "true")
            .set("DAPR_BULK_MAX_ENTRIES", "8"),
    )
    .await;
    let tasks = tasks_created_then_completed(&app, 12).await;
    let published = sink.wait_for_published(12 * 6, WAIT).await;
    let requests = sink.requests();

    // A lone ready event goes as a single publish; several go in bulk.
    let mut per_request: BTreeMap<usize, Vec<&Recorded>> = BTreeMap::new();
    for r in &requests {
        if let Some(request) = r.bulk_request {
            per_request.entry(request).or_default().push(r);
        }
    }
    assert!(
        per_request.values().any(|entries| entries.len() > 1),
        "some requests carried several entries"
    );
    for entries in per_request.values() {
        let tasks: BTreeSet<&str> = entries
            .iter()
            .map(|r| r.body["subject"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            tasks.len(),
            entries.len(),
            "at most one entry per task per request"
        );
        assert!(entries.len() <= 8, "DAPR_BULK_MAX_ENTRIES holds");
        assert!(
            entries.iter().all(|r| r.topic == entries[0].topic),
            "one topic per request"
        );
    }
    let failed: Vec<&Recorded> = requests.iter().filter(|r| r.status == 500).collect();
    assert_eq!(failed.len(), 9);
    for f in &failed {
        let retried: Vec<&Recorded> = requests
            .iter()
            .filter(|r| r.id() == f.id() && r.status == 204)
            .collect();
        assert_eq!(
            retried.len(),
            1,
            "a failed entry is retried, under its id, until accepted once"
        );
        assert_eq!(retried[0].body, f.body);
    }
    let accepted: BTreeSet<&str> = published.iter().map(Recorded::id).collect();
    assert_eq!(accepted.len(), 12 * 6);
    assert_eq!(
        published.len(),
        12 * 6,
        "an accepted entry is never sent again"
    );
    for r in &published {
        assert_eq!(
            r.partition_key.as_deref(),
            r.body["subject"].as_str(),
            "per-entry partition key"
        );
    }
    assert_each_task_in_order(&published, &tasks);
}

async fn a_backlog_built_during_an_outage_drains_completely_in_order(backend: Backend) {
    let mut sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    // Let the relay see the sidecar ready, then take it down.
    let first = task_id(&app, "alice", json!({"title": "before"})).await;
    sink.wait_for_published(2, WAIT).await;
    sink.stop().await;
    let tasks = tasks_created_then_completed(&app, 25).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sink = sink.restart().await;
    let published = sink
        .wait_for_published(2 + 25 * 6, Duration::from_secs(60))
        .await;
    assert_each_task_in_order(&published, &tasks);
    assert_eq!(
        accepted_types(&published, &first),
        ["task.created", "sync.task"]
    );
    let ids: BTreeSet<&str> = published.iter().map(Recorded::id).collect();
    assert_eq!(ids.len(), 2 + 25 * 6, "nothing lost");
}

async fn an_event_failing_past_relay_max_attempts_is_parked_and_its_task_goes_on(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    sink.behave(|b| b.fail_next = 3);
    let app = spawn_with(backend, dapr_options(&sink).set("RELAY_MAX_ATTEMPTS", "3")).await;
    let id = task_id(&app, "alice", json!({"title": "poison"})).await;
    let letters = wait_for_dead_letters(&app, 1).await;
    assert_eq!(letters[0]["kind"], "publish");
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("gave up after 3 attempts (RELAY_MAX_ATTEMPTS)"),
        "{reason}"
    );
    assert!(reason.contains("ERR_PUBSUB_PUBLISH_MESSAGE"), "{reason}");
    // The task's next event was not held behind the parked one.
    let published = sink.wait_for_published(1, WAIT).await;
    assert_eq!(accepted_types(&published, &id), ["sync.task"]);

    // Replaying the letter publishes the parked event, under its id.
    let replay = app.replay(letters[0]["id"].as_str().unwrap()).await;
    assert_eq!(replay.status(), StatusCode::OK);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["resolved"], letters[0]["id"]);
    assert_eq!(body["envelopes"], json!([letters[0]["envelope_id"]]));
    let published = sink.wait_for_published(2, WAIT).await;
    assert_eq!(
        accepted_types(&published, &id),
        ["sync.task", "task.created"]
    );
}

async fn a_replay_after_pruning_sends_nothing_twice(backend: Backend) {
    let (sink, app, id) = refusing_reminders(backend).await;
    sink.wait_for_published(2, WAIT).await;
    let letters = wait_for_dead_letters(&app, 1).await;
    // ENVELOPE_RETENTION passes: the published siblings are pruned.
    let later = chrono::Utc::now() + chrono::Duration::days(30);
    let pruned = app.db.prune_some(later, 1000).await.unwrap();
    assert!(pruned >= 2, "the published envelopes went: {pruned}");

    sink.behave(|b| b.forbidden_topics.clear());
    let replay = app.replay(letters[0]["id"].as_str().unwrap()).await;
    assert_eq!(replay.status(), StatusCode::OK);
    let published = sink.wait_for_published(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let published_now = sink.published();
    assert_eq!(published_now.len(), published.len(), "nothing more arrives");
    assert_eq!(
        accepted_types(&published_now, &id),
        ["task.created", "sync.task", "reminder.scheduled"]
    );
    assert_eq!(
        published_now.len(),
        3,
        "the pruned siblings are not sent again"
    );
    let twice = app.replay(letters[0]["id"].as_str().unwrap()).await;
    assert_eq!(twice.status(), StatusCode::CONFLICT);
}

async fn a_relay_killed_by_a_panic_comes_back(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let ready: Value = app
        .send(Method::GET, "/readyz", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["relay"], "running");
    app.relay.inject_panic();
    // The supervisor restarts it: new mutations are published again.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let metrics = app
            .send(Method::GET, "/metrics", None, None)
            .await
            .text()
            .await
            .unwrap();
        if metrics.contains("pakaura_relay_restarts_total") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the panic was not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let id = task_id(&app, "alice", json!({"title": "after the panic"})).await;
    let published = sink.wait_for_published(2, WAIT).await;
    assert_eq!(
        accepted_types(&published, &id),
        ["task.created", "sync.task"]
    );
    assert!(app.relay.is_running());
}

/// An outcome is recorded only under the lease that claimed the row: a relay whose lease
/// passed to another stores nothing. (The store directly, with no relay running.)
async fn outcomes_are_fenced_by_the_lease_token(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = Db::connect(&database.url).await.unwrap();
    db.migrate().await.unwrap();
    let task = pakaura_tests::assert::store_new_task(&db, "alice", "fenced")
        .await
        .unwrap();
    // Leases run on the database's clock: a short one, and waits past it.
    let lease = std::time::Duration::from_millis(400);
    let expire = || tokio::time::sleep(std::time::Duration::from_millis(600));

    // Relay A claims the mutation; its lease runs out; relay B claims it.
    let a = db.claim_mutations("relay-a", 1, lease, 10).await.unwrap();
    assert_eq!(a.len(), 1);
    assert!(
        db.claim_mutations("relay-b", 2, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    expire().await;
    let b = db.claim_mutations("relay-b", 2, lease, 10).await.unwrap();
    assert_eq!(b.len(), 1);
    let row = &a[0];
    let envelope = NewEnvelope {
        id: uuid::Uuid::new_v4(),
        event_index: 0,
        mapper: "m".into(),
        topic: "task-events".into(),
        event_type: "t".into(),
        partition_key: task.id.to_string(),
        body: "{}".into(),
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
    };
    let batch = [MappedRow {
        row,
        correlation_id: "c".into(),
        mapping: Mapping::Mapped(vec![envelope]),
    }];
    let stale = db
        .record_mappings(1, &batch, EnvelopeState::Pending, now())
        .await
        .unwrap();
    assert_eq!(
        (stale.lost, stale.mapped, stale.envelopes),
        (1, 0, 0),
        "A's outcome is refused"
    );
    let owner = db
        .record_mappings(2, &batch, EnvelopeState::Pending, now())
        .await
        .unwrap();
    assert_eq!(
        (owner.lost, owner.mapped, owner.envelopes),
        (0, 1, 1),
        "B's outcome is stored"
    );

    // The task's queue: relay C claims it, its lease runs out, relay D claims it.
    assert_eq!(
        db.claim_tasks("relay-c", 3, lease, 10).await.unwrap(),
        [task.id]
    );
    expire().await;
    assert_eq!(
        db.claim_tasks("relay-d", 4, lease, 10).await.unwrap(),
        [task.id]
    );
    let pending = db
        .load_envelopes(&[task.id], 16, usize::MAX)
        .await
        .unwrap()
        .envelopes;
    assert_eq!(pending.len(), 1);
    let published = |token| DeliveryBatch {
        relay: format!("relay-{token}"),
        deliveries: vec![DeliveryRecord {
            seq: pending[0].seq,
            task: HeldTask {
                task_id: task.id,
                token,
            },
            delivery: Delivery::Published { status: Some(204) },
        }],
        releases: Vec::new(),
        renew: vec![HeldTask {
            task_id: task.id,
            token,
        }],
    };
    let stale = db
        .record_deliveries(&published(3), now(), lease)
        .await
        .unwrap();
    let lost: Vec<_> = stale.lost.iter().map(|t| t.task_id).collect();
    assert_eq!(lost, [task.id], "C's lease is gone");
    let loaded = |db: &Db| {
        let db = db.clone();
        async move {
            db.load_envelopes(&[task.id], 16, usize::MAX)
                .await
                .unwrap()
                .envelopes
        }
    };
    assert_eq!(loaded(&db).await.len(), 1, "still pending");
    let owner = db
        .record_deliveries(&published(4), now(), lease)
        .await
        .unwrap();
    assert!(owner.lost.is_empty());
    assert!(loaded(&db).await.is_empty(), "published");
    db.close().await;
}

on_both_databases!(
    bulk_publishes_retry_only_failed_entries_and_never_reorder_a_task,
    a_backlog_built_during_an_outage_drains_completely_in_order,
    an_event_failing_past_relay_max_attempts_is_parked_and_its_task_goes_on,
    a_replay_after_pruning_sends_nothing_twice,
    a_relay_killed_by_a_panic_comes_back,
    outcomes_are_fenced_by_the_lease_token,
);
