//! Chaos, on PostgreSQL: a drain through a sidecar that fails entries, hangs and refuses
//! a poison event whole; a database that stalls (a paused TCP proxy) for longer than a
//! lease, and for longer than the stall timeout; leases run out under a relay still
//! holding its tasks; PostgreSQL killed in the middle of a drain and started again; the
//! store of publish outcomes stuck behind a row lock while tasks keep coming. Each
//! ends with the same proof (`assert_drained`): every envelope published, except a poison
//! event and what waits behind it on its topic; the sidecar accepted every published id
//! and no other; each task's events reached each topic in mutation order by first
//! acceptance; a duplicate is only a re-send of the same id with the same body; no request
//! refused for its size or for carrying an entry twice; no dead letter or hold but the
//! poison event's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_host::store::{Db, EnvelopeFilter, EnvelopeRecord, EnvelopeState};
use pakaura_tests::kafka::Expected;
use pakaura_tests::pgcluster::pg_bindir;
use pakaura_tests::{
    Backend, Behaviour, DaprSink, Options, PausableProxy, PgCluster, Recorded, StuckStore, TestApp,
    TestDatabase, WAIT, bulk_options, create_tasks, holding_sidecar, sink_behaviour, spawn_with,
    start,
};

/// Tasks in a backlog, each created, renamed once and completed.
const TASKS: usize = 48;
/// The text that makes the sidecar refuse an event (and every request carrying it).
const POISON: &str = "poison-pill";
/// The longest a drain may take once its faults are over.
const DRAIN: Duration = Duration::from_secs(45);

/// How many events `tasks` tasks of a backlog yield, each renamed `renames` times: created
/// (every third with a due date: task.created, sync.task, reminder.scheduled), each rename
/// (task.updated, sync.task), completed (task.completed, sync.task and, with a due date,
/// reminder.cancelled).
fn events_of(tasks: usize, renames: usize) -> usize {
    (0..tasks)
        .map(|i| {
            let reminder = usize::from(i.is_multiple_of(3));
            2 * (2 + reminder) + 2 * renames
        })
        .sum()
}

/// Creates task `i` titled `title`, renames it `renames` times and completes it; returns
/// its id.
async fn change_task(app: &TestApp, i: usize, title: &str, renames: usize) -> String {
    let mut create = json!({ "title": title });
    if i.is_multiple_of(3) {
        create["due_date"] = json!("2026-03-01T09:00:00Z");
    }
    let id = app.create_task("alice", create).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for r in 0..renames {
        let rename = app
            .send(
                Method::PATCH,
                &format!("/tasks/{id}"),
                Some("alice"),
                Some(json!({ "title": format!("{title}, renamed {r}") })),
            )
            .await;
        assert_eq!(rename.status(), StatusCode::OK, "rename {r} of task {i}");
    }
    let done = app.post_task("alice", &id, "complete").await;
    assert_eq!(done.status(), StatusCode::OK, "completion of task {i}");
    id
}

/// Builds a backlog of `tasks` tasks (see [`events_of`]), eight at a time; task `poison`
/// (if any) is titled with [`POISON`]. Returns the ids, in task order.
async fn backlog(
    app: &TestApp,
    tasks: usize,
    renames: usize,
    poison: Option<usize>,
) -> Vec<String> {
    futures::stream::iter(0..tasks)
        .map(|i| async move {
            let title = if Some(i) == poison {
                POISON.to_owned()
            } else {
                format!("chaos task {i}")
            };
            change_task(app, i, &title, renames).await
        })
        .buffered(8)
        .collect()
        .await
}

/// Bulk publishing, small requests and few of them at once, so that a drain of a backlog
/// lasts long enough to be interrupted.
fn slow_bulk_options(sink: &DaprSink) -> Options {
    bulk_options(sink, 4).set("RELAY_MAX_IN_FLIGHT", "2")
}

/// Every envelope the host stored.
async fn envelopes(db: &Db) -> Result<Vec<EnvelopeRecord>, pakaura_host::store::StoreError> {
    db.recent_envelopes(&EnvelopeFilter {
        limit: 1_000_000,
        ..Default::default()
    })
    .await
}

/// Whether `envelope` is the poison task's on `task-events` (refused, or held behind it).
fn held_by_poison(envelope: &EnvelopeRecord, poison: Option<&str>) -> bool {
    poison == Some(envelope.task_id.to_string().as_str()) && envelope.topic == "task-events"
}

/// Waits until all `total` envelopes are stored and each is published, but for the
/// poison task's on `task-events`. Store errors (a database down) are waited out.
async fn wait_for_drain(db: &Db, total: usize, poison: Option<&str>) {
    let deadline = tokio::time::Instant::now() + DRAIN;
    let mut last = String::from("no answer from the database");
    loop {
        if let Ok(all) = envelopes(db).await {
            let done = all.len() == total
                && all
                    .iter()
                    .all(|e| e.state == EnvelopeState::Published || held_by_poison(e, poison))
                && (poison.is_none() || all.iter().any(|e| e.state == EnvelopeState::Dead));
            if done {
                return;
            }
            let mut states: BTreeMap<&str, usize> = BTreeMap::new();
            for e in &all {
                *states.entry(e.state.as_str()).or_default() += 1;
            }
            last = format!("{} of {total} envelopes stored: {states:?}", all.len());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the drain did not finish: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the sidecar accepted at least `n` distinct ids, and returns how many.
async fn wait_for_accepted(sink: &DaprSink, n: usize) -> usize {
    let published = sink.wait_for_published(n, DRAIN).await;
    published
        .iter()
        .map(Recorded::id)
        .collect::<BTreeSet<_>>()
        .len()
}

/// What the sidecar saw, for the test's output.
#[derive(Debug)]
#[expect(dead_code, reason = "read through Debug, in the test's output")]
struct Seen {
    requests: usize,
    accepted: usize,
    duplicates: usize,
    failed_entries: usize,
    refused_requests: usize,
}

/// The proof every test ends with (see the module's documentation). `poison` is the task
/// whose `task.created` the sidecar refuses, if any.
async fn assert_drained(app: &TestApp, sink: &DaprSink, poison: Option<&str>) -> Seen {
    let db = &app.db;
    let expected = Expected::from_store(db).await;
    let all = envelopes(db).await.expect("envelopes");

    // Every envelope published, but the poison event (dead) and the events behind it on
    // its topic (held, pending).
    for e in &all {
        let want = if !held_by_poison(e, poison) {
            EnvelopeState::Published
        } else if e.event_type == "task.created" {
            EnvelopeState::Dead
        } else {
            EnvelopeState::Pending
        };
        assert_eq!(
            e.state, want,
            "{} {} of task {}",
            e.event_type, e.id, e.task_id
        );
    }
    let published: BTreeSet<&str> = all
        .iter()
        .filter(|e| e.state == EnvelopeState::Published)
        .map(|e| e.id.as_str())
        .collect();

    // The sidecar accepted exactly the published ids; whatever it saw of an id (accepted,
    // failed or refused) carried the body the host stored.
    let requests = sink.requests();
    let accepted: BTreeSet<&str> = requests
        .iter()
        .filter(|r| r.status == 204)
        .map(Recorded::id)
        .collect();
    assert_eq!(
        accepted.len(),
        published.len(),
        "accepted ids: {}, published envelopes: {}",
        accepted.len(),
        published.len()
    );
    assert_eq!(
        accepted, published,
        "the sidecar accepted every published id, no other"
    );
    for r in &requests {
        let body = expected
            .envelopes
            .get(r.id())
            .unwrap_or_else(|| panic!("the sidecar saw an id the host never built: {r:?}"));
        assert_eq!(&r.body, body, "a re-send carries the same body");
        assert_eq!(
            r.partition_key.as_deref(),
            body["subject"].as_str(),
            "keyed by its task"
        );
    }

    // Per task and topic, in mutation order by first acceptance (up to the held event).
    let mut first = BTreeSet::new();
    let mut order: HashMap<(String, String), Vec<String>> = HashMap::new();
    for r in requests.iter().filter(|r| r.status == 204) {
        if first.insert(r.id()) {
            let task = r.body["subject"].as_str().unwrap_or_default().to_owned();
            order
                .entry((r.topic.clone(), task))
                .or_default()
                .push(r.id().to_owned());
        }
    }
    for ((topic, task), ids) in &expected.order {
        let want: Vec<&String> = ids
            .iter()
            .take_while(|id| published.contains(id.as_str()))
            .collect();
        let got: Vec<&String> = order
            .get(&(topic.clone(), task.clone()))
            .map(|ids| ids.iter().collect())
            .unwrap_or_default();
        assert_eq!(got, want, "task {task} on {topic}: out of order or missing");
    }

    // No request too large, none carrying an entry twice; a request refused whole is one
    // that carried the poison event.
    let mut per_request: BTreeMap<usize, Vec<&Recorded>> = BTreeMap::new();
    for r in &requests {
        per_request.entry(r.request).or_default().push(r);
    }
    let mut refused_requests = 0;
    for entries in per_request.values() {
        let status = entries[0].status;
        assert_ne!(
            status, 413,
            "a request went over the byte bound: {entries:#?}"
        );
        let ids: BTreeSet<&str> = entries.iter().map(|r| r.id()).collect();
        assert_eq!(
            ids.len(),
            entries.len(),
            "an entry twice in a request: {entries:#?}"
        );
        let tasks: BTreeSet<Option<&str>> =
            entries.iter().map(|r| r.body["subject"].as_str()).collect();
        assert_eq!(
            tasks.len(),
            entries.len(),
            "a task twice in a request: {entries:#?}"
        );
        if status != 204 && status != 500 {
            refused_requests += 1;
            assert_eq!(status, 400, "only the poison is refused: {entries:#?}");
            assert!(
                entries.iter().any(|r| r.body.to_string().contains(POISON)),
                "a request refused without the poison event: {entries:#?}"
            );
        }
    }

    // No dead letter or hold but the poison event's.
    let letters: Value = app
        .admin(Method::GET, "/admin/dead-letters")
        .await
        .json()
        .await
        .unwrap();
    let letters = letters["dead_letters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let holds = db.holds(100).await.expect("holds");
    match poison {
        Some(poison) => {
            assert_eq!(
                letters.len(),
                1,
                "only the poison event is parked: {letters:#?}"
            );
            assert_eq!(letters[0]["task_id"], poison, "{:#}", letters[0]);
            assert_eq!(letters[0]["event_type"], "task.created");
            assert_eq!(holds.len(), 1, "only the poison task is held: {holds:#?}");
            assert_eq!(holds[0].task_id.to_string(), poison);
            assert_eq!(holds[0].topic, "task-events");
            assert_eq!(
                holds[0].waiting, 2,
                "its update and completion wait: {holds:#?}"
            );
        }
        None => {
            assert!(letters.is_empty(), "nothing parked: {letters:#?}");
            assert!(holds.is_empty(), "nothing held: {holds:#?}");
        }
    }

    let accepted_records = requests.iter().filter(|r| r.status == 204).count();
    Seen {
        requests: per_request.len(),
        accepted: accepted.len(),
        duplicates: accepted_records - accepted.len(),
        failed_entries: requests.iter().filter(|r| r.status == 500).count(),
        refused_requests,
    }
}

/// A backlog built while the sidecar was down, drained in bulk through a sidecar that
/// fails entries (500 in `failedEntries`), hangs past the publish timeout (the host gives
/// up and sends the same ids again), refuses whole every request carrying a poison
/// event (400) and refuses with 413 a request over the byte bound, which equals the host's
/// `DAPR_BULK_MAX_BYTES`: no 413 happens, and only the poison event is parked, holding
/// only its own task on its topic.
async fn a_mixed_fault_drain_publishes_everything_once_in_order(backend: Backend) {
    const FAILURES: usize = 40;
    const HANGS: usize = 3;
    let mut sink = DaprSink::start(Behaviour {
        poison: Some(POISON.into()),
        max_request_bytes: Some(4096),
        ..sink_behaviour()
    })
    .await;
    let app = spawn_with(
        backend,
        bulk_options(&sink, 16).set("DAPR_BULK_MAX_BYTES", "4KiB"),
    )
    .await;
    sink.stop().await;
    let tasks = backlog(&app, TASKS, 1, Some(7)).await;
    let poison = tasks[7].as_str();
    let total = events_of(TASKS, 1);
    sink.behave(|b| {
        b.fail_next = FAILURES;
        b.hang_next = HANGS;
        b.hang_for = Duration::from_secs(1);
    });
    let sink = sink.restart().await;
    // A third of the way, more of the same.
    let at = wait_for_accepted(&sink, total / 3).await;
    assert!(
        at < total,
        "the faults must come in the middle of the drain"
    );
    sink.behave(|b| {
        b.fail_next += FAILURES;
        b.hang_next += HANGS;
    });
    wait_for_drain(&app.db, total, Some(poison)).await;
    // The hung requests' late answers are recorded too.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut left = (0, 0);
    sink.behave(|b| left = (b.fail_next, b.hang_next));
    assert_eq!(left, (0, 0), "every fault was injected");
    let seen = assert_drained(&app, &sink, Some(poison)).await;
    // A failure drawn by a request that then hung is not recorded: the host gave up on
    // the request and closed it, and the stand-in's handler went with it.
    assert!(
        seen.failed_entries > 0 && seen.failed_entries <= 2 * FAILURES,
        "entries failed: {seen:?}"
    );
    assert!(
        seen.refused_requests >= 1,
        "the poison was refused: {seen:?}"
    );
    assert_eq!(
        seen.accepted,
        total - 3,
        "all but the poison task's three on task-events"
    );
    println!("chaos, mixed faults: {seen:?}");
}

/// The host reaches PostgreSQL through a proxy that is paused (traffic held, connections
/// open) in the middle of a bulk drain, twice. First for longer than the lease (6 s, paused
/// 9 s) while a replica connected directly drains beside it: the replica takes over the
/// tasks whose leases ran out, and what the stalled host then stores under its old leases
/// is refused. Then, on a second backlog and without the replica, for longer than
/// `RELAY_STALL_TIMEOUT` (10 s): the watchdog reports the stalled stage on `/readyz` and
/// the relay is restarted. Nothing is refused for carrying an entry twice, nothing parked,
/// everything published once, in order.
async fn a_database_stalled_past_the_lease_and_the_stall_timeout_loses_nothing(backend: Backend) {
    // Fewer tasks than a relay holds at once (2 requests of 4 entries in flight, twice
    // that held), each with a long queue: a relay keeps claiming while it holds them.
    const TASKS: usize = 12;
    const RENAMES: usize = 10;
    let database = TestDatabase::create(backend).await;
    let (proxy, url) = PausableProxy::for_postgres(&database.url).await;
    let mut sink = DaprSink::start(Behaviour {
        latency: Duration::from_millis(100),
        ..sink_behaviour()
    })
    .await;
    let options = slow_bulk_options(&sink)
        .set("RELAY_LEASE", "6s")
        .set("RELAY_STALL_TIMEOUT", "10s");
    let app = start(TestDatabase::existing(&url), options.clone()).await;
    let replica = start(TestDatabase::existing(&database.url), options).await;
    let per_backlog = events_of(TASKS, RENAMES);

    // A stall past the lease, the replica beside.
    sink.stop().await;
    backlog(&app, TASKS, RENAMES, None).await;
    let sink = sink.restart().await;
    let paused_at = wait_for_accepted(&sink, per_backlog / 4).await;
    assert!(
        paused_at < per_backlog / 2,
        "the stall must come in the middle of the drain: {paused_at}"
    );
    proxy.pause();
    tokio::time::sleep(Duration::from_secs(9)).await;
    let resumed_at = wait_for_accepted(&sink, 0).await;
    proxy.resume();
    assert!(
        resumed_at > paused_at,
        "the replica went on meanwhile: {paused_at} then {resumed_at}"
    );
    wait_for_drain(&app.db, per_backlog, None).await;
    let replica = replica.stop().await;
    drop(replica);

    // A stall past RELAY_STALL_TIMEOUT, the host alone.
    let mut sink = sink;
    sink.stop().await;
    backlog(&app, TASKS, RENAMES, None).await;
    let total = 2 * per_backlog;
    let sink = sink.restart().await;
    let at = wait_for_accepted(&sink, per_backlog + per_backlog / 4).await;
    assert!(
        at < total,
        "the long stall must come in the middle of the drain: {at}"
    );
    let restarts = app.relay.restarts().0;
    proxy.pause();
    // What /readyz says meanwhile (it answers once its database check gives up).
    let watcher = {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(8))
            .build()
            .unwrap();
        let url = app.url("/readyz");
        tokio::spawn(async move {
            let mut relay = Vec::new();
            let end = tokio::time::Instant::now() + Duration::from_secs(13);
            while tokio::time::Instant::now() < end {
                if let Ok(response) = client.get(&url).send().await
                    && let Ok(body) = response.json::<Value>().await
                {
                    relay.push(body["relay"].as_str().unwrap_or_default().to_owned());
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            relay
        })
    };
    let mut stalled = None;
    let end = tokio::time::Instant::now() + Duration::from_secs(13);
    while tokio::time::Instant::now() < end {
        stalled = stalled.or(app.relay.stalled_stage());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.resume();
    let readyz = watcher.await.unwrap();
    wait_for_drain(&app.db, total, None).await;
    let seen = assert_drained(&app, &sink, None).await;
    assert_eq!(seen.accepted, total);
    let reported = readyz.iter().any(|r| r.starts_with("stalled: "));
    assert!(
        stalled.is_some() && (reported || app.relay.restarts().0 > restarts),
        "the watchdog found a stage stalled ({stalled:?}) and /readyz said so ({readyz:?}) \
         or the relay was restarted ({} restarts)",
        app.relay.restarts().0
    );
    println!(
        "chaos, database stalls: {seen:?}; the replica published {} while the host was \
         stalled; stalled stage {stalled:?}, /readyz {readyz:?}, {} relay restarts, {} \
         connections through the proxy",
        resumed_at - paused_at,
        app.relay.restarts().0,
        proxy.connections()
    );
    drop(app);
    drop(database);
}

/// A relay whose leases ran out in the database while it still held the tasks (renewals
/// that came too late: a stall, a failover) claims them again during a bulk drain: it keeps
/// holding each task once, so no request carries a task or an entry twice (which Dapr
/// refuses whole, "entryId is duplicated"), nothing is parked, and everything goes out
/// once, in order. The test makes the leases run out itself, in the database, again and
/// again, which a stall does only when the claim beats the renewals to the database.
async fn leases_run_out_under_a_relay_still_holding_its_tasks_and_nothing_is_parked(
    backend: Backend,
) {
    const TASKS: usize = 12;
    const RENAMES: usize = 10;
    let mut sink = DaprSink::start(Behaviour {
        latency: Duration::from_millis(100),
        ..sink_behaviour()
    })
    .await;
    let app = spawn_with(backend, slow_bulk_options(&sink)).await;
    sink.stop().await;
    backlog(&app, TASKS, RENAMES, None).await;
    let total = events_of(TASKS, RENAMES);
    let sink = sink.restart().await;
    let Db::Postgres(pg) = &app.db else {
        panic!("a PostgreSQL test");
    };
    let mut expired = 0;
    let deadline = tokio::time::Instant::now() + DRAIN;
    while wait_for_accepted(&sink, 0).await < total * 3 / 4 {
        assert!(tokio::time::Instant::now() < deadline, "the drain stopped");
        expired += sqlx::query(
            "UPDATE relay_tasks SET locked_until = now() - interval '1 second' \
             WHERE locked_by IS NOT NULL AND locked_until > now()",
        )
        .execute(pg.pool())
        .await
        .expect("expire the leases")
        .rows_affected();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(expired > 0, "no lease was held during the drain");
    wait_for_drain(&app.db, total, None).await;
    let seen = assert_drained(&app, &sink, None).await;
    assert_eq!(seen.accepted, total);
    println!("chaos, leases run out under the relay: {seen:?}; {expired} leases expired");
}

/// PostgreSQL itself killed (`pg_ctl stop -m immediate`, a private cluster this test
/// starts for itself) in the middle of a bulk drain, and started again a few seconds
/// later: the host rides it out and publishes everything once, in order.
async fn postgres_killed_and_restarted_during_a_drain_loses_and_reorders_nothing(
    _backend: Backend,
) {
    if pg_bindir().is_none() {
        println!(
            "SKIP: postgres_killed_and_restarted_during_a_drain: no PostgreSQL server programs \
             (initdb, pg_ctl, postgres) under /usr/lib/postgresql/*/bin; set PAKAURA_PG_BINDIR"
        );
        return;
    }
    let cluster = PgCluster::start()
        .await
        .unwrap_or_else(|e| panic!("a private PostgreSQL cluster: {e}"));
    let mut sink = DaprSink::start(Behaviour {
        latency: Duration::from_millis(100),
        ..sink_behaviour()
    })
    .await;
    let app = start(
        TestDatabase::existing(&cluster.url()),
        slow_bulk_options(&sink),
    )
    .await;
    sink.stop().await;
    backlog(&app, TASKS, 1, None).await;
    let total = events_of(TASKS, 1);
    let sink = sink.restart().await;

    let at = wait_for_accepted(&sink, total / 3).await;
    assert!(
        at < total,
        "the kill must come in the middle of the drain: {at}"
    );
    cluster.kill().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = sink.published().len();
    cluster.start_again().await;

    wait_for_drain(&app.db, total, None).await;
    let seen = assert_drained(&app, &sink, None).await;
    assert_eq!(seen.accepted, total);
    println!(
        "chaos, PostgreSQL killed: {seen:?}; accepted {at} before the kill, {during} records \
         when it came back"
    );
    drop(app);
    drop(cluster);
}

/// The store of publish outcomes stuck behind a row lock ([`StuckStore`]) while tasks
/// keep coming. Without a bound, publishing would run on with nothing recorded (each event
/// to go out again after a crash) and the next transaction would carry all of it. Once the
/// store has stalled (a second), the stage stops taking work as soon as a batch's worth of
/// outcomes (512) waits, well short of the backlog; when the lock goes, everything drains
/// once, in order.
async fn a_store_stuck_behind_a_lock_pauses_publishing_and_loses_nothing(backend: Backend) {
    /// Tasks created while the store is stuck: 2 events and at least one release each.
    const TASKS: usize = 2_500;
    let (sink, options) = holding_sidecar().await;
    let app = spawn_with(backend, options).await;
    let mut stuck = StuckStore::hold(&app, &sink).await;

    // Tasks keep coming; publishing stops short of them and stays stopped.
    create_tasks(&app, TASKS).await;
    let mut seen = sink.requests().len();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now_seen = sink.requests().len();
        if now_seen == seen {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "publishing never stopped: {now_seen} requests"
        );
        seen = now_seen;
    }
    assert!(
        seen < TASKS,
        "{seen} of {} events published with nothing recorded: publishing ran ahead of the store",
        2 * TASKS + 2
    );
    assert!(seen > 0, "nothing published while the store was stuck");
    println!(
        "published while the store was stuck: {seen} of {} events",
        2 * TASKS + 2
    );
    assert!(
        stuck.marks_waiting().await >= 1,
        "still stuck: the pause is the bound's, not the store catching up"
    );

    stuck.release().await;
    let total = 2 * TASKS + 2;
    wait_for_accepted(&sink, total).await;
    wait_for_drain(&app.db, total, None).await;
    let seen = assert_drained(&app, &sink, None).await;
    println!("{seen:?}");
}

/// PostgreSQL only: the faults are a server's (stalls, leases shared by replicas, a kill).
mod postgres {
    use pakaura_tests::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_mixed_fault_drain_publishes_everything_once_in_order() {
        super::a_mixed_fault_drain_publishes_everything_once_in_order(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_stalled_past_the_lease_and_the_stall_timeout_loses_nothing() {
        super::a_database_stalled_past_the_lease_and_the_stall_timeout_loses_nothing(
            Backend::Postgres,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leases_run_out_under_a_relay_still_holding_its_tasks_and_nothing_is_parked() {
        super::leases_run_out_under_a_relay_still_holding_its_tasks_and_nothing_is_parked(
            Backend::Postgres,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_stuck_behind_a_lock_pauses_publishing_and_loses_nothing() {
        super::a_store_stuck_behind_a_lock_pauses_publishing_and_loses_nothing(Backend::Postgres)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_killed_and_restarted_during_a_drain_loses_and_reorders_nothing() {
        super::postgres_killed_and_restarted_during_a_drain_loses_and_reorders_nothing(
            Backend::Postgres,
        )
        .await;
    }
}
