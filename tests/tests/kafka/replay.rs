//! A refused publish, parked and replayed after the fix, as a Kafka consumer sees it.
//!
//! The sidecar refuses the `reminders` topic (403, as Dapr's publishing scopes do) while
//! each task's reminder is rescheduled and the task completed (a cancelled reminder); then
//! the topic is allowed again, the tasks are uncompleted (a new reminder), and the dead
//! letters are replayed. A consumer reads every event once, `task-events` and
//! `task-updates` in mutation order throughout.
//!
//! - With holds (`RELAY_ON_POISON=hold`, the default) the refused reminder holds its task
//!   on `reminders`: the cancelled and the new reminder wait behind it (one letter per
//!   task), and after the replay `reminders` too arrives in mutation order: nothing is
//!   `late` for the consumer recipe.
//! - With `RELAY_ON_POISON=skip` each refused reminder is parked (two letters per task)
//!   and the task's other events go on: the new reminder is published at once, the
//!   replayed ones arrive after it, and the recipe calls them `late` (older `time` than
//!   the newest it has).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use pakaura_tests::kafka::{ConsumedRecord, Expected, assert_delivered};
use pakaura_tests::{Backend, TestApp, on_both_databases, spawn_with};

use crate::{DRAIN, Stack, Step, change_tasks, events_of, read_everything};

/// Fewer tasks than elsewhere: each parks two letters, and each letter is replayed alone.
const TASKS: usize = 40;

/// Waits until the host lists `n` open dead letters; they, oldest first.
async fn dead_letters(app: &TestApp, n: usize, what: &str) -> Vec<Value> {
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
            assert_eq!(letters.len(), n, "{what}");
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

async fn a_held_reminder_and_the_ones_behind_it_reach_kafka_in_order_after_a_replay(
    backend: Backend,
) {
    refused_then_replayed(backend, true).await;
}

async fn a_skipped_over_reminder_replayed_reaches_kafka_late(backend: Backend) {
    refused_then_replayed(backend, false).await;
}

/// The scenario of the module documentation, holding or not.
async fn refused_then_replayed(backend: Backend, hold: bool) {
    let what = if hold { "hold" } else { "skip" };
    let Some(mut stack) =
        Stack::start(&format!("kafka replay after a refused publish ({what})")).await
    else {
        return;
    };
    let options = stack.sidecar.options().set("RELAY_ON_POISON", what);
    let app = spawn_with(backend, options).await;
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
    let letters = if hold {
        dead_letters(
            &app,
            TASKS,
            "one refused reminder per task; the next one waits",
        )
        .await
    } else {
        dead_letters(
            &app,
            2 * TASKS,
            "a rescheduled and a cancelled reminder per task",
        )
        .await
    };

    stack.sidecar.allow("reminders").await;
    for (i, task) in tasks.iter().enumerate() {
        Step::Uncomplete.apply(&app, i, task).await;
    }
    total += events_of(TASKS, |_| vec![Step::Uncomplete]);
    // Everything but the reminders behind the refusals goes at once: with holds, the
    // cancelled and the new reminder of each task wait; without, the new one goes too.
    let waiting = if hold { 3 * TASKS } else { 2 * TASKS };
    stack.consumer.wait_for_events(total - waiting, DRAIN).await;
    if hold {
        let holds: Value = app
            .admin(Method::GET, "/admin/holds?limit=1000")
            .await
            .json()
            .await
            .unwrap();
        let holds = holds["holds"].as_array().unwrap();
        assert_eq!(holds.len(), TASKS, "each task held on reminders");
        assert!(
            holds
                .iter()
                .all(|h| h["topic"] == "reminders" && h["waiting"] == 2)
        );
    }

    let mut replayed = Vec::new();
    for letter in &letters {
        let response = app.replay(letter["id"].as_str().unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        replayed.push(letter["envelope_id"].as_str().unwrap().to_owned());
    }
    let (records, requests) = read_everything(&app.db, &stack.sidecar, &mut stack.consumer).await;

    let mut expected = Expected::from_store(&app.db).await;
    assert_eq!(expected.len(), total);
    if !hold {
        expected.replayed_last(&replayed);
    }
    let delivered = assert_delivered(std::slice::from_ref(&records), &expected);
    println!("kafka replay ({what}): {delivered:?}, {requests:?}");
    let late: Vec<&ConsumedRecord> = records.iter().filter(|r| r.verdict == "late").collect();
    if hold {
        assert!(late.is_empty(), "held reminders arrive in order: {late:?}");
    } else {
        assert_eq!(
            late.len(),
            2 * TASKS,
            "every replayed reminder is late for the recipe"
        );
        assert!(late.iter().all(|r| r.topic == "reminders"));
    }
}

on_both_databases!(
    a_held_reminder_and_the_ones_behind_it_reach_kafka_in_order_after_a_replay,
    a_skipped_over_reminder_replayed_reaches_kafka_late,
);
