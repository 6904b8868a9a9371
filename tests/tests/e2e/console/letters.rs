//! Dead letters at scale: filtered, grouped and paged with a total; resolved as a
//! selection (ids, or all matching) with each letter's result; and a replay followed
//! honestly: refused again shows as refused, linked to the letter that replaced it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_tests::{
    Backend, DaprSink, TestApp, dapr_options, expect_problem, sink_behaviour, spawn_with, task_id,
    wait_for_dead_letters,
};

async fn get(app: &TestApp, path: &str) -> Value {
    let response = app.admin(Method::GET, path).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(pakaura_tests::ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Follows letter `id` until it is no longer `queued` (30 s at most).
async fn follow(app: &TestApp, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let f = get(app, &format!("/admin/dead-letters/{id}")).await;
        if f["status"] != "queued" {
            return f;
        }
        assert!(tokio::time::Instant::now() < deadline, "still queued: {f}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A host whose sidecar refuses `reminders`, with `n` tasks that each park a reminder.
async fn refused_reminders(backend: Backend, n: usize) -> (DaprSink, TestApp, Vec<String>) {
    let mut behaviour = sink_behaviour();
    behaviour.forbidden_topics.insert("reminders".into());
    let sink = DaprSink::start(behaviour).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let mut tasks = Vec::new();
    for i in 0..n {
        let body = json!({"title": format!("t{i}"), "due_date": "2026-03-01T09:00:00Z"});
        tasks.push(task_id(&app, "alice", body).await);
    }
    wait_for_dead_letters(&app, n).await;
    (sink, app, tasks)
}

async fn letters_are_filtered_grouped_and_paged_with_a_total(backend: Backend) {
    let (_sink, app, tasks) = refused_reminders(backend, 5).await;

    let all = get(&app, "/admin/dead-letters?order=newest&limit=2").await;
    assert_eq!(all["total"], 5, "{all}");
    assert_eq!(all["offset"], 0);
    let page: Vec<&Value> = all["dead_letters"].as_array().unwrap().iter().collect();
    assert_eq!(page.len(), 2);
    // Each card's facts: the event's type, topic and task.
    assert_eq!(page[0]["event_type"], "reminder.scheduled");
    assert_eq!(page[0]["topic"], "reminders");
    assert!(tasks.iter().any(|t| page[0]["task_id"] == t.as_str()));
    let groups = all["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "one cause: {groups:?}");
    assert_eq!(groups[0]["count"], 5);
    assert_eq!(groups[0]["kind"], "publish");
    assert_eq!(groups[0]["topic"], "reminders");
    assert!(
        groups[0]["reason"]
            .as_str()
            .unwrap()
            .contains("ERR_PUBSUB_FORBIDDEN")
    );

    // Newest first is oldest first reversed, and pages cut it without overlap.
    let ids = |body: &Value| -> Vec<String> {
        body["dead_letters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let newest = ids(&get(&app, "/admin/dead-letters?order=newest").await);
    let mut oldest = ids(&get(&app, "/admin/dead-letters").await);
    oldest.reverse();
    assert_eq!(newest, oldest, "oldest first by default");
    let mut paged = ids(&all);
    for offset in [2, 4] {
        let p = get(
            &app,
            &format!("/admin/dead-letters?order=newest&limit=2&offset={offset}"),
        )
        .await;
        assert_eq!(p["offset"], offset);
        paged.extend(ids(&p));
    }
    assert_eq!(paged, newest);

    let reason = urlencode(groups[0]["reason"].as_str().unwrap());
    for (query, total) in [
        ("topic=reminders&kind=publish".to_owned(), 5),
        (format!("reason={reason}"), 5),
        (format!("task_id={}", tasks[2]), 1),
        ("topic=task-events".to_owned(), 0),
        ("kind=mapping".to_owned(), 0),
        ("mapper=default".to_owned(), 5),
        ("since=2999-01-01T00:00:00Z".to_owned(), 0),
        ("until=2999-01-01T00:00:00Z".to_owned(), 5),
    ] {
        let found = get(&app, &format!("/admin/dead-letters?{query}")).await;
        assert_eq!(found["total"], total, "{query}: {found}");
        assert_eq!(
            found["dead_letters"].as_array().unwrap().len(),
            total as usize
        );
    }
    for (query, field) in [
        ("since=yesterday", "since"),
        ("order=sideways", "order"),
        ("kind=other", "kind"),
        ("offset=-1", "offset"),
    ] {
        let response = app
            .admin(Method::GET, &format!("/admin/dead-letters?{query}"))
            .await;
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }
}

async fn a_replay_refused_again_is_shown_as_refused_and_linked(backend: Backend) {
    let (sink, app, tasks) = refused_reminders(backend, 3).await;
    let letters = get(&app, "/admin/dead-letters").await;
    // The letter of each task, in the tasks' order.
    let ids: Vec<String> = tasks
        .iter()
        .map(|t| {
            letters["dead_letters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["task_id"] == t.as_str())
                .and_then(|l| l["id"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect();

    // Two replayed while the sidecar still refuses the topic.
    let response = post(
        &app,
        "/admin/dead-letters/replay",
        json!({"ids": &ids[..2]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let replayed: Value = response.json().await.unwrap();
    assert_eq!(
        replayed["replayed"].as_array().unwrap().len(),
        2,
        "{replayed}"
    );
    assert!(replayed["failed"].as_array().unwrap().is_empty());
    for id in &ids[..2] {
        let f = follow(&app, id).await;
        assert_eq!(f["status"], "refused_again", "{f}");
        assert_eq!(f["envelope_state"], "dead");
        assert_eq!(f["letter"]["resolution"], "replayed");
        assert_eq!(f["letter"]["resolved_by"], "admin");
        let new = &f["replaced_by"];
        assert_eq!(new["replaces"], id.as_str(), "the new letter links back");
        assert!(new["resolved_at"].is_null());
        assert!(
            new["reason"]
                .as_str()
                .unwrap()
                .contains("ERR_PUBSUB_FORBIDDEN")
        );
    }
    let open = get(&app, "/admin/dead-letters").await;
    assert_eq!(open["total"], 3, "two replaced, one untouched: {open}");

    // One skipped by a filter, with who and why.
    let response = post(
        &app,
        "/admin/dead-letters/skip",
        json!({"matching": {"task_id": tasks[2]}, "reason": "reminder no longer wanted"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let skipped: Value = response.json().await.unwrap();
    assert_eq!(skipped["skipped"].as_array().unwrap().len(), 1, "{skipped}");
    let f = get(&app, &format!("/admin/dead-letters/{}", ids[2])).await;
    assert_eq!(f["status"], "skipped");
    assert_eq!(f["letter"]["resolution_note"], "reminder no longer wanted");

    // Fixed: every matching letter replayed in one call, and this time published.
    sink.behave(|b| {
        b.forbidden_topics.clear();
    });
    let response = post(
        &app,
        "/admin/dead-letters/replay",
        json!({"matching": {"topic": "reminders"}}),
    )
    .await;
    let replayed: Value = response.json().await.unwrap();
    let done = replayed["replayed"].as_array().unwrap();
    assert_eq!(done.len(), 2, "{replayed}");
    for r in done {
        let f = follow(&app, r["resolved"].as_str().unwrap()).await;
        assert_eq!(f["status"], "published", "{f}");
    }
    assert_eq!(get(&app, "/admin/dead-letters").await["total"], 0);
    let reminders = sink
        .published()
        .into_iter()
        .filter(|r| r.topic == "reminders")
        .count();
    assert_eq!(reminders, 2, "the skipped one never went out");

    // A selection names its letters one way, and no more than 1000.
    for body in [
        json!({}),
        json!({"ids": []}),
        json!({"ids": [ids[0]], "matching": {}}),
        json!({"matching": {"kind": "other"}}),
    ] {
        let response = post(&app, "/admin/dead-letters/replay", body.clone()).await;
        expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let response = post(
        &app,
        "/admin/dead-letters/skip",
        json!({"ids": [ids[0]], "reason": "  "}),
    )
    .await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["field"], "reason");
    let response = app
        .admin(
            Method::GET,
            &format!("/admin/dead-letters/{}", uuid::Uuid::new_v4()),
        )
        .await;
    expect_problem(response, StatusCode::NOT_FOUND).await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pakaura_tests::on_both_databases!(
    letters_are_filtered_grouped_and_paged_with_a_total,
    a_replay_refused_again_is_shown_as_refused_and_linked,
);
