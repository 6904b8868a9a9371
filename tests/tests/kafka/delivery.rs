//! The plain paths to Kafka: single publishes, bulk publishes, and two replicas sharing one
//! PostgreSQL database: a consumer reads every event once, keyed by its task, in order.

use pakaura_tests::kafka::{Expected, assert_delivered};
use pakaura_tests::{Backend, TestDatabase, on_both_databases, spawn_with, start};

use crate::{
    Stack, Step, TASKS, assert_store_matches_steps, change_tasks, events_of, read_everything,
};

/// Runs the scenario on one host with `extra` settings, and checks what Kafka holds.
async fn one_host_delivers(backend: Backend, test: &str, bulk: bool) {
    let Some(mut stack) = Stack::start(test).await else {
        return;
    };
    let mut options = stack.sidecar.options();
    if bulk {
        options = options
            .set("DAPR_BULK_PUBLISH", "true")
            .set("DAPR_BULK_MAX_ENTRIES", "50");
    }
    let app = spawn_with(backend, options).await;
    let tasks = change_tasks(&[&app], TASKS, Step::of).await;
    let (records, requests) = read_everything(&app.db, &stack.sidecar, &mut stack.consumer).await;
    let expected = Expected::from_store(&app.db).await;
    assert_eq!(
        expected.len(),
        events_of(TASKS, Step::of),
        "an event per change and topic"
    );
    assert_store_matches_steps(&expected, &tasks, Step::of);
    let delivered = assert_delivered(&[records], &expected);
    println!("{test}: {delivered:?}, {requests:?}");
    if bulk {
        assert!(
            requests.entries > requests.bulk,
            "some bulk requests carried several events"
        );
    } else {
        assert_eq!(requests.bulk, 0);
    }
}

async fn single_publishes_reach_kafka_once_keyed_and_in_order(backend: Backend) {
    one_host_delivers(backend, "kafka single publishes", false).await;
}

/// Bulk requests carry several tasks' events at once, each entry with its own key: each
/// must become its own record, in its own task's partition.
async fn bulk_publishes_reach_kafka_once_keyed_and_in_order(backend: Backend) {
    one_host_delivers(backend, "kafka bulk publishes", true).await;
}

on_both_databases!(
    single_publishes_reach_kafka_once_keyed_and_in_order,
    bulk_publishes_reach_kafka_once_keyed_and_in_order,
);

/// Two hosts (two relays) on one PostgreSQL database, each task changed through both in
/// turn: Kafka still gets each event once (after de-duplication) and each task's events in
/// order, whichever relay published them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_reach_kafka_once_keyed_and_in_order() {
    let Some(mut stack) = Stack::start("kafka two replicas").await else {
        return;
    };
    let database = TestDatabase::create(Backend::Postgres).await;
    let url = database.url.clone();
    let first = start(database, stack.sidecar.options()).await;
    let second = start(TestDatabase::existing(&url), stack.sidecar.options()).await;
    let tasks = change_tasks(&[&first, &second], TASKS, Step::of).await;
    let (records, requests) = read_everything(&first.db, &stack.sidecar, &mut stack.consumer).await;
    let expected = Expected::from_store(&first.db).await;
    assert_eq!(expected.len(), events_of(TASKS, Step::of));
    assert_store_matches_steps(&expected, &tasks, Step::of);
    let delivered = assert_delivered(&[records], &expected);
    println!("kafka two replicas: {delivered:?}, {requests:?}");
}
