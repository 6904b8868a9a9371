//! What the tests check again and again: problem documents, dead letters, the events
//! of one task, the mutations the outbox holds.

use std::time::Duration;

use pakaura_host::store::Db;
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

use crate::app::TestApp;
use crate::sidecar::{Recorded, WAIT};

/// The mutations the outbox holds for one task, in commit order.
pub async fn mutations_of(db: &Db, task: &str) -> Vec<pakaura_host::domain::Mutation> {
    db.outbox_rows(Some(uuid::Uuid::parse_str(task).unwrap()))
        .await
        .unwrap()
        .iter()
        .map(|row| row.decode().unwrap())
        .collect()
}

/// Asserts a problem+json response with `status`, returning the problem document.
pub async fn expect_problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], status.as_u16());
    problem
}

/// The accepted publishes of one task, as (type, topic), in publish order.
pub fn types_of(published: &[Recorded], task: &str) -> Vec<(String, String)> {
    published
        .iter()
        .filter(|r| r.body["subject"] == task)
        .map(|r| (r.event_type().to_owned(), r.topic.clone()))
        .collect()
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Waits until the admin API lists at least `n` open dead letters.
pub async fn wait_for_dead_letters(app: &TestApp, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let body: Value = app
            .admin(Method::GET, "/admin/dead-letters")
            .await
            .json()
            .await
            .unwrap();
        let letters = body["dead_letters"].as_array().cloned().unwrap_or_default();
        if letters.len() >= n {
            return letters;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} dead letters, got {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a task for `user` straight through the store (no host running), with its
/// `created` mutation, as the task service would.
pub async fn store_new_task(
    db: &Db,
    user: &str,
    title: &str,
) -> Result<pakaura_host::domain::Task, pakaura_host::store::StoreError> {
    use pakaura_host::domain::{Mutation, MutationContext, NewTask, Origin, TaskTitle};
    let ctx = MutationContext {
        origin: Origin::Rest,
        correlation_id: "test".into(),
        traceparent: None,
    };
    let new = NewTask {
        title: TaskTitle::parse(title).expect("a valid title"),
        description: None,
        due_date: None,
    };
    let mutation = Mutation::created(user, new, &ctx);
    db.insert_task(&mutation, None).await?;
    Ok(mutation.task)
}
