//! Searching envelopes as an operator does: an id's last eight characters, as the
//! console shows them, or its first ones (task, envelope, mutation), a correlation or
//! user id, a type prefix, a time range, with a
//! total and pages; a bad filter is a 400 naming the field in words, never a parser's.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_tests::{Backend, TestApp, expect_problem, on_both_databases, spawn_app, token_for};

use super::api::envelopes_of;

async fn search(app: &TestApp, query: &str) -> Value {
    let response = app
        .admin(Method::GET, &format!("/admin/envelopes?{query}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

fn count(body: &Value) -> usize {
    body["envelopes"].as_array().unwrap().len()
}

async fn envelopes_are_found_by_part_of_an_id_and_paged_with_a_total(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app
        .client
        .post(app.url("/tasks"))
        .bearer_auth(token_for("alice"))
        .header("x-correlation-id", "incident-42")
        .json(&json!({"title": "traced", "due_date": "2026-03-01T09:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let task = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..3 {
        app.create_task("bob", json!({"title": format!("other {i}")}))
            .await;
    }
    // A task with a due date: task.created, reminder.scheduled and sync.task; one
    // without: task.created and sync.task.
    let mine = envelopes_of(&app, &task, 3).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while search(&app, "").await["total"].as_i64() < Some(9) {
        assert!(tokio::time::Instant::now() < deadline, "nine envelopes");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let envelope = mine[0]["id"].as_str().unwrap();
    let mutation = mine[0]["mutation_id"].as_str().unwrap();

    // The last eight characters, as the console's tables show them.
    let end = |id: &str, n: usize| id[id.len() - n..].to_owned();
    let by_task = search(&app, &format!("task_id={}", end(&task, 8))).await;
    assert_eq!(by_task["total"], 3, "{by_task}");
    assert_eq!(count(&by_task), 3);
    assert_eq!(
        search(&app, &format!("task_id={}", task.to_uppercase())).await["total"],
        3
    );
    let by_id = search(&app, &format!("id={}", end(envelope, 8))).await;
    assert_eq!(by_id["envelopes"][0]["id"], envelope, "{by_id}");
    assert_eq!(by_id["total"], 1, "{by_id}");
    // A longer end, dashed as in the id or not.
    let mutation_end = end(mutation, 17);
    assert_eq!(
        search(&app, &format!("mutation_id={mutation_end}")).await["total"],
        3
    );
    assert_eq!(
        search(
            &app,
            &format!("mutation_id={}", mutation_end.replace('-', ""))
        )
        .await["total"],
        3
    );
    assert_eq!(
        search(&app, &format!("id={}", end(envelope, 21).to_uppercase())).await["total"],
        1
    );
    // The first characters, too: ids are time-ordered, so their start finds what was
    // made at a time. Eight digits are the id's minute; 24 take in its millisecond and
    // the counter that orders ids made in the same one.
    assert_eq!(
        search(&app, &format!("mutation_id={}", &mutation[..28])).await["total"],
        3
    );
    let by_start = search(&app, &format!("task_id={}", &task[..8])).await;
    assert!(
        (3..=9).contains(&by_start["total"].as_i64().unwrap()),
        "{by_start}"
    );
    assert_eq!(
        search(&app, &format!("id={}", &envelope[..13])).await["total"],
        1,
        "envelope ids are not time-ordered: their start tells them apart"
    );
    // Digits that end no id, and digits in the middle of one, match nothing.
    assert_eq!(
        search(&app, &format!("task_id={}", &task[9..23])).await["total"],
        0
    );
    assert_eq!(search(&app, "correlation_id=incident-42").await["total"], 3);
    assert_eq!(search(&app, "user_id=bob").await["total"], 6);
    let reminders = search(&app, "type_prefix=reminder.").await;
    assert_eq!(reminders["total"], 1, "{reminders}");
    assert_eq!(
        reminders["envelopes"][0]["event_type"],
        "reminder.scheduled"
    );
    assert_eq!(search(&app, "type_prefix=task.").await["total"], 4);
    assert_eq!(
        search(&app, "type=task.").await["total"],
        0,
        "type stays exact"
    );
    assert_eq!(search(&app, "since=2999-01-01T00:00:00Z").await["total"], 0);
    assert_eq!(search(&app, "until=2999-01-01T00:00:00Z").await["total"], 9);

    // Pages: a total and an offset, no row twice.
    let first = search(&app, "limit=4").await;
    let second = search(&app, "limit=4&offset=4").await;
    let third = search(&app, "limit=4&offset=8").await;
    assert_eq!(
        (first["total"].as_i64(), third["offset"].as_i64()),
        (Some(9), Some(8))
    );
    let mut ids: Vec<&str> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["envelopes"].as_array().unwrap())
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 9);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 9, "no envelope on two pages");

    for (query, field, words) in [
        ("task_id=0a1b2c", "task_id", "at least 8"),
        ("task_id=not-a-task-id", "task_id", "not a hex digit"),
        ("id=zzzzzzzzzz", "id", "not a hex digit"),
        ("mutation_id=1234", "mutation_id", "at least 8"),
        (
            "mutation_id=0a1b2c3d-----------------------------",
            "mutation_id",
            "36 characters",
        ),
        ("since=last%20week", "since", "RFC 3339"),
        ("offset=-2", "offset", "between"),
        ("type_prefix=%00", "type_prefix", "control characters"),
    ] {
        let response = app
            .admin(Method::GET, &format!("/admin/envelopes?{query}"))
            .await;
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["field"], field, "{query}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{query}: {detail}");
        assert!(!detail.contains("UUID parsing failed"), "{detail}");
    }
}

on_both_databases!(envelopes_are_found_by_part_of_an_id_and_paged_with_a_total);
