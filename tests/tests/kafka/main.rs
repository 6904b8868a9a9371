//! Kafka end to end: the real host publishes through the Dapr sidecar stand-in that forwards
//! to a real Kafka-protocol broker (Tansu, one per test), and a real Kafka consumer
//! (librdkafka) reads the topics back. Each test checks what a consumer sees against what
//! the host built (`pakaura_tests::kafka::assert_delivered`): every event once after
//! de-duplication by id, keyed by its task, in mutation order per topic. Skipped, loudly,
//! without `PAKAURA_TANSU` and `PAKAURA_TOOLS_VENV` (`./scripts/test` sets both).

mod delivery;
mod outage;
mod replay;

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_host::store::Db;
use pakaura_tests::TestApp;
use pakaura_tests::kafka::{
    Broker, ConsumedRecord, KafkaConsumer, KafkaSidecar, KafkaTools, Requests,
};

/// Tasks each scenario changes (each gets 4 to 6 mutations and 12 to 18 events).
const TASKS: usize = 120;
/// Tasks changed at the same time (each task's own changes are made one after another).
const CONCURRENCY: usize = 8;
/// The longest a scenario waits for the consumer to read everything.
const DRAIN: Duration = Duration::from_secs(120);

/// The broker, the stand-in forwarding to it and a consumer reading it, for one test.
struct Stack {
    tools: KafkaTools,
    broker: Broker,
    sidecar: KafkaSidecar,
    consumer: KafkaConsumer,
}

impl Stack {
    /// Everything started, or `None` (after a SKIP line) without the tools.
    async fn start(test: &str) -> Option<Self> {
        let tools = KafkaTools::from_env(test)?;
        let broker = Broker::start(&tools).await;
        let sidecar = KafkaSidecar::start(&tools, &broker).await;
        let consumer = KafkaConsumer::start(&tools, &broker).await;
        Some(Self {
            tools,
            broker,
            sidecar,
            consumer,
        })
    }
}

/// Waits until the host published everything it holds (nothing pending in its outbox or
/// envelopes), pauses the stand-in, and lets `consumer` read up to the last record the
/// broker acknowledged since the last pause; stops it. What it read, and the requests the
/// stand-in served.
async fn read_everything(
    db: &Db,
    sidecar: &KafkaSidecar,
    consumer: &mut KafkaConsumer,
) -> (Vec<ConsumedRecord>, Requests) {
    let deadline = tokio::time::Instant::now() + DRAIN;
    loop {
        let backlog = db.backlog(chrono::Utc::now()).await.expect("the backlog");
        if backlog.outbox_pending == 0 && backlog.envelopes_pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay did not drain within {DRAIN:?}: {backlog:?}; the sidecar said {:?}",
            sidecar.log().iter().rev().take(5).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let paused = sidecar.pause().await;
    consumer
        .wait_for_offsets(&paused.acked, Duration::from_secs(30))
        .await;
    (consumer.stop().await, paused.requests)
}

/// One change the tests make to a task, in the order they make them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Create,
    Rename,
    Reschedule,
    Complete,
    Uncomplete,
    Delete,
}

impl Step {
    /// The steps of task `i`: every task is created with a due date, renamed, rescheduled and
    /// completed; every other one is then uncompleted, every third deleted.
    fn of(i: usize) -> Vec<Step> {
        let mut steps = vec![Step::Create, Step::Rename, Step::Reschedule, Step::Complete];
        if i.is_multiple_of(2) {
            steps.push(Step::Uncomplete);
        }
        if i.is_multiple_of(3) {
            steps.push(Step::Delete);
        }
        steps
    }

    /// The `task-events` type it yields.
    fn task_event(self) -> &'static str {
        match self {
            Step::Create => "task.created",
            Step::Rename | Step::Reschedule => "task.updated",
            Step::Complete => "task.completed",
            Step::Uncomplete => "task.uncompleted",
            Step::Delete => "task.deleted",
        }
    }

    /// How many events it yields: the task event, `sync.task`, and a reminder event unless
    /// the due date is untouched (a rename).
    fn events(self) -> usize {
        if self == Step::Rename { 2 } else { 3 }
    }

    /// Makes the change on `app`.
    async fn apply(self, app: &TestApp, i: usize, id: &str) -> Option<String> {
        let path = format!("/tasks/{id}");
        let (method, path, body): (Method, String, Option<Value>) = match self {
            Step::Create => (
                Method::POST,
                "/tasks".into(),
                Some(json!({"title": format!("task {i}"), "due_date": "2026-03-01T09:00:00Z"})),
            ),
            Step::Rename => (
                Method::PATCH,
                path,
                Some(json!({"title": format!("task {i}, renamed")})),
            ),
            Step::Reschedule => (
                Method::PATCH,
                path,
                Some(json!({"due_date": "2026-03-02T09:00:00Z"})),
            ),
            Step::Complete => (Method::POST, format!("{path}/complete"), None),
            Step::Uncomplete => (Method::POST, format!("{path}/uncomplete"), None),
            Step::Delete => (Method::DELETE, path, None),
        };
        let response = app.send(method, &path, Some("alice"), body).await;
        assert!(
            response.status().is_success(),
            "{self:?} of task {i}: {}",
            response.status()
        );
        if response.status() == StatusCode::CREATED {
            let task: Value = response.json().await.unwrap();
            return Some(task["id"].as_str().unwrap().to_owned());
        }
        None
    }
}

/// Makes `steps(i)` on tasks 0..`tasks`, [`CONCURRENCY`] tasks at a time, step `s` of task
/// `i` on `apps[(i + s) % apps.len()]`; the task ids, in order.
async fn change_tasks(
    apps: &[&TestApp],
    tasks: usize,
    steps: fn(usize) -> Vec<Step>,
) -> Vec<String> {
    let mut ids: Vec<(usize, String)> = futures::stream::iter(0..tasks)
        .map(|i| async move {
            let mut id = String::new();
            for (s, step) in steps(i).into_iter().enumerate() {
                let app = apps[(i + s) % apps.len()];
                if let Some(created) = step.apply(app, i, &id).await {
                    id = created;
                }
            }
            (i, id)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    ids.sort();
    ids.into_iter().map(|(_, id)| id).collect()
}

/// How many events `steps` yields for tasks 0..`tasks`.
fn events_of(tasks: usize, steps: fn(usize) -> Vec<Step>) -> usize {
    (0..tasks).flat_map(steps).map(Step::events).sum()
}

/// Asserts that the store's record of each task's `task-events` matches what the test did,
/// so the order the checks expect is the order the changes were made.
fn assert_store_matches_steps(
    expected: &pakaura_tests::kafka::Expected,
    tasks: &[String],
    steps: fn(usize) -> Vec<Step>,
) {
    for (i, task) in tasks.iter().enumerate() {
        let made: Vec<&str> = steps(i).into_iter().map(Step::task_event).collect();
        assert_eq!(expected.types("task-events", task), made, "task {i}");
    }
}
