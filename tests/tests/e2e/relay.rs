//! The pipelined relay: bulk publishes, backlogs, retry limits, fenced leases, the
//! supervisor, and replays that never send an event twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pakaura_host::domain::task::now;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_host::store::{
    Db, Delivery, DeliveryBatch, DeliveryRecord, EnvelopeState, HeldTask, MappedRow, Mapping,
    NewEnvelope, Release,
};
use pakaura_tests::{Backend, Options, TestApp, TestDatabase, on_both_databases, spawn_with};
use pakaura_tests::{
    Behaviour, DaprSink, Recorded, WAIT, bulk_options, dapr_options, refusing_reminders,
    sink_behaviour, task_id, wait_for_dead_letters,
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
    let app = spawn_with(backend, bulk_options(&sink, 8)).await;
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
    let pruned = app.db.prune_some(later, later, 1000).await.unwrap();
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
    // The supervisor restarts it: new mutations are published again. (This relay's own
    // count: the metric is shared by every host in the test process.)
    wait_for_restart(&app, 1).await;
    let id = task_id(&app, "alice", json!({"title": "after the panic"})).await;
    let published = sink.wait_for_published(2, WAIT).await;
    assert_eq!(
        accepted_types(&published, &id),
        ["task.created", "sync.task"]
    );
    assert!(app.relay.is_running());
}

/// Waits until the supervisor restarted `app`'s relay `n` times.
async fn wait_for_restart(app: &TestApp, n: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.relay.restarts().0 < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay was not restarted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A relay that panics while it holds a task (a publish in flight that the sidecar
/// holds) takes the task back when it restarts, instead of leaving it leased to the
/// failed run: the event goes out as soon as the sidecar takes it, not a lease later.
async fn a_restarted_relay_takes_back_what_its_failed_run_held(backend: Backend) {
    const HANGS: usize = 1_000;
    let mut behaviour = sink_behaviour();
    behaviour.hang_next = HANGS;
    behaviour.hang_for = Duration::from_secs(600);
    let sink = DaprSink::start(behaviour).await;
    // A lease far longer than the wait: only a take-back gets the event out in time.
    let options = dapr_options(&sink)
        .set("DAPR_PUBLISH_TIMEOUT", "60s")
        .set("RELAY_LEASE", "10m");
    let app = spawn_with(backend, options).await;
    let id = task_id(&app, "alice", json!({"title": "held through a panic"})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut left = HANGS;
        sink.behave(|b| left = b.hang_next);
        if left < HANGS {
            break; // a publish of the task is in flight, held by the sidecar
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no publish was tried"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.relay.inject_panic();
    wait_for_restart(&app, 1).await;
    sink.behave(|b| b.hang_next = 0);
    let published = sink.wait_for_published(2, WAIT).await;
    assert_eq!(
        accepted_types(&published, &id),
        ["task.created", "sync.task"]
    );
}

/// Starts a host whose sidecar is down, creates one task per title, waits until every
/// event is mapped and stored, then brings the sidecar back; returns the host, the sidecar
/// and the ids in order. The publish stage has not seen the sidecar ready before, so it
/// claims the whole backlog at once and fills its bulk requests. (A sidecar taken down
/// after the relay saw it ready would give the first tasks retry times with jitter, and
/// they would come back in requests of their own.)
async fn backlog_of(
    backend: Backend,
    mut sink: DaprSink,
    options: Options,
    titles: &[String],
) -> (TestApp, DaprSink, Vec<String>) {
    sink.stop().await;
    let app = spawn_with(backend, options).await;
    let mut ids = Vec::new();
    for title in titles {
        ids.push(task_id(&app, "alice", json!({"title": title})).await);
    }
    let events = i64::try_from(titles.len() * 2).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let backlog = app
            .db
            .backlog(chrono::Utc::now())
            .await
            .expect("the backlog");
        if backlog.outbox_pending == 0 && backlog.envelopes_pending == events {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every event is stored: {backlog:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (app, sink.restart().await, ids)
}

/// A bulk request refused as a whole (400 without `failedEntries`) is split until each
/// event has its own answer: only the events refused on their own are parked (holding
/// their own task); their neighbours in the refused request are all published.
async fn a_bulk_request_refused_whole_parks_only_the_event_refused_alone(backend: Backend) {
    let sink = DaprSink::start(Behaviour {
        poison: Some("poison-pill".into()),
        ..sink_behaviour()
    })
    .await;
    let options = bulk_options(&sink, 8);
    let mut titles: Vec<String> = (0..12).map(|i| format!("innocent {i}")).collect();
    titles[5] = "poison-pill".into();
    let (app, sink, ids) = backlog_of(backend, sink, options, &titles).await;
    let poison = ids[5].clone();

    // 11 innocent tasks, two events each, and the poison task's sync.task (which does
    // not carry the title); only its task.created is refused.
    let published = sink.wait_for_published(23, WAIT).await;
    wait_for_dead_letters(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let letters = wait_for_dead_letters(&app, 1).await;
    assert_eq!(letters.len(), 1, "nothing else parked: {letters:#?}");
    assert_eq!(letters[0]["task_id"], poison.as_str(), "{:#}", letters[0]);
    assert_eq!(letters[0]["event_type"], "task.created");
    for id in ids.iter().filter(|id| **id != poison) {
        assert_eq!(
            accepted_types(&published, id),
            ["task.created", "sync.task"]
        );
    }
    assert_eq!(accepted_types(&published, &poison), ["sync.task"]);
    // The refusal did hit innocent neighbours first: the split is what saved them.
    let requests = sink.requests();
    let refused_with_neighbours = requests.iter().any(|r| {
        r.status == 400 && r.bulk_request.is_some() && r.body["subject"] != poison.as_str()
    });
    assert!(
        refused_with_neighbours,
        "no bulk request carried the poison event with others"
    );
}

/// The bulk byte bound measures the request as sent (each entry's id, metadata and
/// content type, not just the events): with the sidecar's request limit equal to
/// DAPR_BULK_MAX_BYTES, no request is ever too large and nothing is parked.
async fn bulk_requests_stay_within_the_byte_bound_as_sent(backend: Backend) {
    let sink = DaprSink::start(Behaviour {
        max_request_bytes: Some(4096),
        ..sink_behaviour()
    })
    .await;
    let options = bulk_options(&sink, 100).set("DAPR_BULK_MAX_BYTES", "4KiB");
    // Titles of varied length, so that requests end at different fills.
    let titles: Vec<String> = (0..30)
        .map(|i| format!("sized {i} {}", "x".repeat(i * 7)))
        .collect();
    let (app, sink, ids) = backlog_of(backend, sink, options, &titles).await;
    let published = sink.wait_for_published(60, WAIT).await;
    for id in &ids {
        assert_eq!(
            accepted_types(&published, id),
            ["task.created", "sync.task"]
        );
    }
    let requests = sink.requests();
    assert!(
        requests.iter().all(|r| r.status != 413),
        "a request went over the byte bound"
    );
    let bulk: BTreeSet<usize> = requests.iter().filter_map(|r| r.bulk_request).collect();
    assert!(
        bulk.len() < 60,
        "events went in shared requests ({} requests)",
        bulk.len()
    );
    let letters: Value = app
        .admin(Method::GET, "/admin/dead-letters")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(letters["dead_letters"], json!([]), "{letters:#}");
}

/// A replayed publish letter gets `RELAY_MAX_ATTEMPTS` tries afresh (its lifetime count
/// stays on the record): one failure after the replay does not park it again.
async fn a_replayed_letter_gets_its_attempts_afresh(backend: Backend) {
    let sink = DaprSink::start(Behaviour {
        // Both events of the task fail twice: each is parked after its two attempts.
        fail_next: 4,
        ..sink_behaviour()
    })
    .await;
    let app = spawn_with(backend, dapr_options(&sink).set("RELAY_MAX_ATTEMPTS", "2")).await;
    let id = task_id(&app, "alice", json!({"title": "flaky"})).await;
    let letters = wait_for_dead_letters(&app, 2).await;
    let created = letters
        .iter()
        .find(|l| l["event_type"] == "task.created")
        .unwrap_or_else(|| panic!("no letter for task.created: {letters:#?}"));
    let envelope = created["envelope_id"].as_str().unwrap().to_owned();

    // One more failure, then success: within the two fresh attempts.
    sink.behave(|b| b.fail_next = 1);
    let replay = app.replay(created["id"].as_str().unwrap()).await;
    assert_eq!(replay.status(), StatusCode::OK);
    let published = sink.wait_for_published(1, WAIT).await;
    assert_eq!(accepted_types(&published, &id), ["task.created"]);
    // The sidecar answered; the relay records it a moment later.
    let deadline = tokio::time::Instant::now() + WAIT;
    let detail = loop {
        let detail = app
            .admin_json(&format!("/admin/envelopes/{envelope}"))
            .await;
        if detail["state"] == "published" {
            break detail;
        }
        assert!(tokio::time::Instant::now() < deadline, "{detail:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        detail["attempts_history"].as_array().map(Vec::len),
        Some(3),
        "two failures before the letter, one after the replay: {detail:#}"
    );
    let open = wait_for_dead_letters(&app, 1).await;
    assert_eq!(open.len(), 1, "only the other event's letter is open");
}

/// Event `event_index` of a mutation of `task`, as the map stage would store it (for the
/// tests that drive the store directly).
fn new_envelope(task: uuid::Uuid, event_index: i32) -> NewEnvelope {
    NewEnvelope {
        id: uuid::Uuid::new_v4(),
        event_index,
        mapper: "m".into(),
        topic: "task-events".into(),
        event_type: "t".into(),
        partition_key: task.to_string(),
        body: "{}".into(),
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
    }
}

/// The last migration before envelope bodies moved to a table of their own.
const BEFORE_BODIES_MOVED: i64 = 11;

/// Stores a mapped mutation with one pending envelope (`body` in the envelope's row) and
/// its publish queue row, as the host did before the bodies moved.
macro_rules! store_an_envelope_the_old_way {
    ($pool:expr, $ids:expr, $body:expr) => {{
        let (mutation, task, envelope) = $ids;
        let at = chrono::Utc::now();
        sqlx::query(
            "INSERT INTO outbox (id, task_id, user_id, action, mutation, created_at, state, processed_at) \
             VALUES ($1, $2, 'alice', 'created', '{}', $3, 'mapped', $3)",
        )
        .bind(mutation)
        .bind(task)
        .bind(at)
        .execute(&$pool)
        .await
        .unwrap();
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM outbox WHERE id = $1")
            .bind(mutation)
            .fetch_one(&$pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO envelopes (id, mutation_id, outbox_seq, event_index, task_id, user_id, \
             mapper, topic, event_type, partition_key, body, traceparent, correlation_id, state, \
             attempts, created_at) VALUES ($1, $2, $3, 0, $4, 'alice', 'default', 'task-events', \
             'task.created', $5, $6, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', \
             'moved-1', 'pending', 0, $7)",
        )
        .bind(envelope)
        .bind(mutation)
        .bind(seq)
        .bind(task)
        .bind(task.to_string())
        .bind($body)
        .bind(at)
        .execute(&$pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO relay_tasks (task_id, ready_at) VALUES ($1, $2)")
            .bind(task)
            .bind(at)
            .execute(&$pool)
            .await
            .unwrap();
        $pool.close().await;
    }};
}

/// A database from before envelope bodies moved to `envelope_bodies` keeps every body:
/// after the host migrates it, a pending envelope stored the old way is published with
/// exactly the body it was stored with, and the console shows that body.
async fn envelopes_stored_before_the_bodies_moved_keep_their_bodies(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let (mutation, task) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let envelope = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "specversion": "1.0",
        "id": envelope,
        "source": "/pakaura/tasks",
        "type": "task.created",
        "subject": task.to_string(),
        "time": "2026-12-01T09:00:00Z",
        "datacontenttype": "application/json",
        "data": {"title": "stored before the move", "note": "ü ✓"},
    });
    let ids = (mutation, task, envelope.as_str());
    match backend {
        Backend::Sqlite => {
            let options: sqlx::sqlite::SqliteConnectOptions =
                database.url.parse().expect("a SQLite URL");
            let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
                .await
                .unwrap();
            sqlx::migrate!("../host/migrations/sqlite")
                .run_to(BEFORE_BODIES_MOVED, &pool)
                .await
                .unwrap();
            store_an_envelope_the_old_way!(pool, ids, body.to_string());
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
            sqlx::migrate!("../host/migrations/postgres")
                .run_to(BEFORE_BODIES_MOVED, &pool)
                .await
                .unwrap();
            store_an_envelope_the_old_way!(pool, ids, body.to_string());
        }
    }

    let sink = DaprSink::start(sink_behaviour()).await;
    let app = pakaura_tests::start(database, dapr_options(&sink)).await;
    let published = sink.wait_for_published(1, WAIT).await;
    assert_eq!(published.len(), 1, "{published:#?}");
    assert_eq!(published[0].body, body);
    let detail = app
        .admin_json(&format!("/admin/envelopes/{envelope}"))
        .await;
    assert_eq!(detail["envelope"], body, "{detail:#}");
    let bodies =
        pakaura_tests::database::count(&app.database.url, "SELECT COUNT(*) FROM envelope_bodies")
            .await;
    assert_eq!(bodies, 1);
}

/// A fresh database of `backend`, migrated, and the store on it (for the tests that
/// drive the store directly, with no relay running).
async fn migrated_store(backend: Backend) -> (TestDatabase, Db) {
    let database = TestDatabase::create(backend).await;
    let db = Db::connect(&database.url).await.unwrap();
    db.migrate().await.unwrap();
    (database, db)
}

/// An outcome is recorded only under the lease that claimed the row: a relay whose lease
/// passed to another stores nothing. (The store directly, with no relay running.)
async fn outcomes_are_fenced_by_the_lease_token(backend: Backend) {
    let (_database, db) = migrated_store(backend).await;
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
    let batch = [MappedRow {
        row,
        correlation_id: "c".into(),
        mapping: Mapping::Mapped(vec![new_envelope(task.id, 0)]),
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

/// Mutations given back (the map stage found the host too busy to map them) are claimable
/// again at once, but only the ones the releasing token still holds.
/// (The store directly, with no relay running.)
async fn released_mutations_are_claimable_at_once_under_their_token_only(backend: Backend) {
    let (_database, db) = migrated_store(backend).await;
    for title in ["one", "two", "three"] {
        pakaura_tests::assert::store_new_task(&db, "alice", title)
            .await
            .unwrap();
    }
    let lease = std::time::Duration::from_secs(60);
    let claimed = db.claim_mutations("relay-a", 1, lease, 10).await.unwrap();
    let seqs: Vec<i64> = claimed.iter().map(|r| r.seq).collect();
    assert_eq!(seqs.len(), 3);

    db.release_mutations(&seqs, 9).await.unwrap();
    assert!(
        db.claim_mutations("relay-b", 2, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "a release under another token gives nothing back"
    );
    db.release_mutations(&seqs[..2], 1).await.unwrap();
    let again = db.claim_mutations("relay-b", 2, lease, 10).await.unwrap();
    assert_eq!(
        again.iter().map(|r| r.seq).collect::<Vec<_>>(),
        seqs[..2],
        "the two released, oldest first, and not the one still held"
    );
    assert_eq!(
        db.renew_mutations(&seqs, 1, lease).await.unwrap(),
        1,
        "the first token holds only the row it kept"
    );
    db.close().await;
}

/// One delivery batch of many tasks records each envelope's own publisher status, and
/// only under the lease that holds its task: the envelopes a stale token reports stay
/// pending, whatever their neighbours in the batch. (The store directly, with no relay
/// running; 600 envelopes, one multi-row statement on SQLite.)
async fn a_batch_of_deliveries_records_each_status_under_its_own_lease(backend: Backend) {
    let (_database, db) = migrated_store(backend).await;
    const TASKS: usize = 300;
    for i in 0..TASKS {
        pakaura_tests::assert::store_new_task(&db, "alice", &format!("task {i}"))
            .await
            .unwrap();
    }
    let lease = std::time::Duration::from_secs(60);
    let claimed = db
        .claim_mutations("relay-a", 1, lease, TASKS as i64)
        .await
        .unwrap();
    assert_eq!(claimed.len(), TASKS);
    let batch: Vec<MappedRow<'_>> = claimed
        .iter()
        .map(|row| MappedRow {
            row,
            correlation_id: "c".into(),
            mapping: Mapping::Mapped(vec![
                new_envelope(row.task_id, 0),
                new_envelope(row.task_id, 1),
            ]),
        })
        .collect();
    let stored = db
        .record_mappings(1, &batch, EnvelopeState::Pending, now())
        .await
        .unwrap();
    assert_eq!(stored.envelopes, 2 * TASKS);

    // Half the task queues under token 3, the other half under token 4.
    let first = db
        .claim_tasks("relay-c", 3, lease, (TASKS / 2) as i64)
        .await
        .unwrap();
    let second = db
        .claim_tasks("relay-d", 4, lease, (TASKS / 2) as i64)
        .await
        .unwrap();
    assert_eq!((first.len(), second.len()), (TASKS / 2, TASKS / 2));
    let mut tasks = first.clone();
    tasks.extend(&second);
    let pending = db
        .load_envelopes(&tasks, 16, usize::MAX)
        .await
        .unwrap()
        .envelopes;
    assert_eq!(pending.len(), 2 * TASKS);

    // Relay C reports every envelope under a token of its own: its tasks' under 3, the
    // others' under 3 too (a token live on other tasks) or 5 (one that holds nothing).
    // Each gets a status of its own.
    let status = |i: usize| (i % 4 != 3).then(|| 200 + (i % 4) as u16);
    let deliveries: Vec<DeliveryRecord> = pending
        .iter()
        .enumerate()
        .map(|(i, e)| DeliveryRecord {
            seq: e.seq,
            task: HeldTask {
                task_id: e.task_id,
                token: if first.contains(&e.task_id) || i % 2 == 0 {
                    3
                } else {
                    5
                },
            },
            delivery: Delivery::Published { status: status(i) },
        })
        .collect();
    db.record_deliveries(
        &DeliveryBatch {
            relay: "relay-c".into(),
            deliveries,
            releases: Vec::new(),
            renew: Vec::new(),
        },
        now(),
        lease,
    )
    .await
    .unwrap();

    for (i, e) in pending.iter().enumerate() {
        let record = db.envelope(&e.id).await.unwrap().unwrap();
        if first.contains(&e.task_id) {
            assert_eq!(record.state, EnvelopeState::Published, "envelope {i}");
            assert_eq!(
                record.delivery_status,
                status(i).map(i32::from),
                "envelope {i} keeps its own status"
            );
            assert_eq!(record.published_by.as_deref(), Some("relay-c"));
            assert_eq!(record.attempts, 1);
        } else {
            assert_eq!(
                record.state,
                EnvelopeState::Pending,
                "envelope {i}: stale token"
            );
            assert_eq!(record.delivery_status, None);
            assert_eq!(record.attempts, 0);
        }
    }
    db.close().await;
}

/// An outcome store counts the tasks it gave back ready at once, which the publish stage
/// claims again for: a drained task with envelopes the claim did not load counts; one with
/// nothing left (its queue row goes), one given back for later and one under a stale token
/// do not. (The store directly, with no relay running.)
async fn a_store_counts_the_tasks_it_gives_back_ready(backend: Backend) {
    let (_database, db) = migrated_store(backend).await;
    let mut tasks = Vec::new();
    for title in ["more left", "drained", "later", "stale"] {
        let task = pakaura_tests::assert::store_new_task(&db, "alice", title)
            .await
            .unwrap();
        tasks.push(task.id);
    }
    let lease = std::time::Duration::from_secs(60);
    let claimed = db.claim_mutations("relay-a", 1, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), tasks.len());
    // The first task has two envelopes, the others one.
    let batch: Vec<MappedRow<'_>> = claimed
        .iter()
        .map(|row| MappedRow {
            row,
            correlation_id: "c".into(),
            mapping: Mapping::Mapped(if row.task_id == tasks[0] {
                vec![new_envelope(row.task_id, 0), new_envelope(row.task_id, 1)]
            } else {
                vec![new_envelope(row.task_id, 0)]
            }),
        })
        .collect();
    db.record_mappings(1, &batch, EnvelopeState::Pending, now())
        .await
        .unwrap();
    let mut held = db.claim_tasks("relay-c", 3, lease, 10).await.unwrap();
    held.sort();
    let mut expected = tasks.clone();
    expected.sort();
    assert_eq!(held, expected);
    // One envelope of each task loaded and published.
    let loaded = db
        .load_envelopes(&tasks, 1, usize::MAX)
        .await
        .unwrap()
        .envelopes;
    assert_eq!(loaded.len(), tasks.len());
    let task = |task_id, token| HeldTask { task_id, token };
    let drained = Release::Drained {
        else_after: std::time::Duration::ZERO,
    };
    let stored = db
        .record_deliveries(
            &DeliveryBatch {
                relay: "relay-c".into(),
                deliveries: loaded
                    .iter()
                    .map(|e| DeliveryRecord {
                        seq: e.seq,
                        task: task(e.task_id, 3),
                        delivery: Delivery::Published { status: Some(204) },
                    })
                    .collect(),
                releases: vec![
                    (task(tasks[0], 3), drained),
                    (task(tasks[1], 3), drained),
                    (
                        task(tasks[2], 3),
                        Release::After(std::time::Duration::from_secs(60)),
                    ),
                    (task(tasks[3], 9), drained),
                ],
                renew: Vec::new(),
            },
            now(),
            lease,
        )
        .await
        .unwrap();
    assert_eq!(stored.ready_again, 1, "only the task with more to publish");
    // It is the one a claim finds now: the drained queue is gone, the later one waits,
    // the stale release changed nothing (its task stays leased to relay C).
    assert_eq!(
        db.claim_tasks("relay-d", 4, lease, 10).await.unwrap(),
        [tasks[0]]
    );
    db.close().await;
}

on_both_databases!(
    bulk_publishes_retry_only_failed_entries_and_never_reorder_a_task,
    a_backlog_built_during_an_outage_drains_completely_in_order,
    an_event_failing_past_relay_max_attempts_is_parked_and_its_task_goes_on,
    a_replay_after_pruning_sends_nothing_twice,
    a_relay_killed_by_a_panic_comes_back,
    a_restarted_relay_takes_back_what_its_failed_run_held,
    a_bulk_request_refused_whole_parks_only_the_event_refused_alone,
    envelopes_stored_before_the_bodies_moved_keep_their_bodies,
    bulk_requests_stay_within_the_byte_bound_as_sent,
    a_replayed_letter_gets_its_attempts_afresh,
    outcomes_are_fenced_by_the_lease_token,
    released_mutations_are_claimable_at_once_under_their_token_only,
    a_batch_of_deliveries_records_each_status_under_its_own_lease,
    a_store_counts_the_tasks_it_gives_back_ready,
);
