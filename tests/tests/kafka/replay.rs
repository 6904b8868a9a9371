//! A refused publish, parked and replayed after the fix, as a Kafka consumer sees it.
//!
//! What is true today: the sidecar refuses the `reminders` topic (403, as Dapr's publishing
//! scopes do), so each task's rescheduled and cancelled reminders are parked as dead
//! letters while its other events go on; the topic is allowed again, the tasks are
//! uncompleted (a new reminder, published at once), and then the letters are replayed.
//! A consumer reads every event once; `task-events` and `task-updates` in mutation order;
//! on `reminders` the replayed events come after the newer reminder, and the consumer
//! recipe calls them `late` (older `time` than the newest it has).
//!
//! With holds (a refused event holds its task's later events on that topic until it is
//! replayed or skipped), the new reminder waits behind the replayed ones: `reminders` is in
//! mutation order too, nothing is `late`, and the wait for the new reminder before the
//! replay below must go (expect it to be held instead).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use pakaura_tests::kafka::{ConsumedRecord, Expected, assert_delivered};
use pakaura_tests::{Backend, TestApp, on_both_databases, spawn_with};

use crate::{DRAIN, Stack, Step, change_tasks, events_of, read_everything};

/// Fewer tasks than elsewhere: each parks two letters, and each letter is replayed alone.
const TASKS: usize = 40;

/// Waits until the host lists `n` open dead letters; they, oldest first.
async fn dead_letters(app: &TestApp, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + DRAIN;
    loop {
        let body: Value = app
            .admin(Method::GET, "/admin/dead-letters?limit=1000")
            .await
            .json()
            .await
            .unwrap();
        let letters = body["dead_letters"].as_array().cloned().unwrap_or_default();
        if letters.len() >= n {
            assert_eq!(
                letters.len(),
                n,
                "a rescheduled and a cancelled reminder per task"
            );
            return letters;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} dead letters, not {n}",
            letters.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn created(_: usize) -> Vec<Step> {
    vec![Step::Create]
}

fn rescheduled_and_completed(_: usize) -> Vec<Step> {
    vec![Step::Reschedule, Step::Complete]
}

async fn a_replayed_refusal_reaches_kafka_once_after_the_tasks_newer_events(backend: Backend) {
    let Some(mut stack) = Stack::start("kafka replay after a refused publish").await else {
        return;
    };
    let app = spawn_with(backend, stack.sidecar.options()).await;
    let tasks = change_tasks(&[&app], TASKS, created).await;
    let mut total = events_of(TASKS, created);
    stack.consumer.wait_for_events(total, DRAIN).await;

    stack.sidecar.forbid("reminders").await;
    for (i, task) in tasks.iter().enumerate() {
        for step in rescheduled_and_completed(i) {
            step.apply(&app, i, task).await;
        }
    }
    total += events_of(TASKS, rescheduled_and_completed);
    let letters = dead_letters(&app, 2 * TASKS).await;

    stack.sidecar.allow("reminders").await;
    for (i, task) in tasks.iter().enumerate() {
        Step::Uncomplete.apply(&app, i, task).await;
    }
    total += events_of(TASKS, |_| vec![Step::Uncomplete]);
    // Today the new reminders go at once, ahead of the parked ones (see the module header).
    stack
        .consumer
        .wait_for_events(total - 2 * TASKS, DRAIN)
        .await;

    let mut replayed = Vec::new();
    for letter in &letters {
        let response = app.replay(letter["id"].as_str().unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        replayed.push(letter["envelope_id"].as_str().unwrap().to_owned());
    }
    let (records, requests) = read_everything(&app.db, &stack.sidecar, &mut stack.consumer).await;

    let mut expected = Expected::from_store(&app.db).await;
    assert_eq!(expected.len(), total);
    expected.replayed_last(&replayed);
    let delivered = assert_delivered(std::slice::from_ref(&records), &expected);
    println!("kafka replay: {delivered:?}, {requests:?}");
    let late: Vec<&ConsumedRecord> = records.iter().filter(|r| r.verdict == "late").collect();
    assert_eq!(
        late.len(),
        2 * TASKS,
        "every replayed reminder is late for the recipe"
    );
    assert!(late.iter().all(|r| r.topic == "reminders"));
}

on_both_databases!(a_replayed_refusal_reaches_kafka_once_after_the_tasks_newer_events);
