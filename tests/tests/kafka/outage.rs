//! The broker killed in the middle of a drain and started again: the stand-in answers 500
//! (as Dapr does when its producer fails), the relay retries, and Kafka ends up with every
//! event, each task's in order.
//!
//! The broker keeps its records in memory (the only storage this Tansu build has besides
//! S3), so a restart forgets them. What a consumer read before the kill is the proof for
//! those records; so, before killing the broker, the stand-in is paused (it waits for the
//! publishes in flight, then answers 500 without producing) and the consumer reads up to
//! the last offset the broker acknowledged. Nothing acknowledged is then unread, and what
//! the relay publishes afterwards goes to the broker's next life, read by a second
//! consumer from its start. The two reads together must hold every event once after
//! de-duplication, and each task's events in mutation order: a record acknowledged just
//! before the pause but whose 204 the relay never saw is published again, a duplicate.

use std::collections::BTreeSet;
use std::time::Duration;

use pakaura_tests::kafka::{ConsumedRecord, Expected, KafkaConsumer, assert_delivered};
use pakaura_tests::{Backend, on_both_databases, spawn_with};

use crate::{
    DRAIN, Stack, Step, TASKS, assert_store_matches_steps, change_tasks, events_of, read_everything,
};

fn distinct(records: &[ConsumedRecord]) -> BTreeSet<String> {
    records.iter().map(ConsumedRecord::id).collect()
}

async fn the_broker_killed_and_restarted_during_a_drain_loses_and_reorders_nothing(
    backend: Backend,
) {
    let Some(mut stack) = Stack::start("kafka broker restart").await else {
        return;
    };
    let app = spawn_with(backend, stack.sidecar.options()).await;
    // A backlog: every change is committed while the sidecar refuses to publish.
    stack.sidecar.pause().await;
    let tasks = change_tasks(&[&app], TASKS, Step::of).await;
    let total = events_of(TASKS, Step::of);

    // The drain starts; a third of the way through, the broker goes.
    stack.sidecar.resume().await;
    stack.consumer.wait_for_events(total / 3, DRAIN).await;
    let paused = stack.sidecar.pause().await;
    stack
        .consumer
        .wait_for_offsets(&paused.acked, Duration::from_secs(30))
        .await;
    let before = stack.consumer.stop().await;
    assert!(
        distinct(&before).len() < total,
        "the broker must go down in the middle of the drain"
    );
    stack.broker.kill().await;

    // The stand-in publishes again, to a broker that is not there: real producer failures.
    let failures_before = stack.sidecar.log().len();
    stack.sidecar.resume().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !stack.sidecar.log()[failures_before..]
        .iter()
        .any(|line| line.contains("ERR_PUBSUB_PUBLISH_MESSAGE") && !line.contains("paused"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no publish failed while the broker was down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The broker's next life, read from its start.
    stack.broker.restart().await;
    let mut after = KafkaConsumer::start(&stack.tools, &stack.broker).await;
    let (after, requests) = read_everything(&app.db, &stack.sidecar, &mut after).await;
    let expected = Expected::from_store(&app.db).await;
    assert_eq!(expected.len(), total);
    assert_store_matches_steps(&expected, &tasks, Step::of);
    let delivered = assert_delivered(&[before, after], &expected);
    println!("kafka broker restart: {delivered:?}, {requests:?}");
}

on_both_databases!(the_broker_killed_and_restarted_during_a_drain_loses_and_reorders_nothing);
