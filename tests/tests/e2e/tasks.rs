//! The task REST API: every route, pagination, user isolation and validation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_tests::{Backend, expect_problem, on_both_databases, spawn_app};

async fn creating_a_task_returns_it_with_defaults(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = app
        .create_task(
            "alice",
            json!({"title": "  buy milk  ", "due_date": "2026-03-01T10:00:00+01:00"}),
        )
        .await;
    assert_eq!(task["title"], "buy milk");
    assert_eq!(task["description"], Value::Null);
    assert_eq!(task["completed"], false);
    assert_eq!(task["due_date"], "2026-03-01T09:00:00.000Z");
    assert_eq!(task["created_at"], task["updated_at"]);
    assert!(uuid::Uuid::parse_str(task["id"].as_str().unwrap()).is_ok());
    assert_eq!(
        task.as_object().unwrap().len(),
        7,
        "exactly the documented fields: {task}"
    );

    let id = task["id"].as_str().unwrap();
    let fetched: Value = app.get_json("alice", &format!("/tasks/{id}")).await;
    assert_eq!(fetched, task);
}

async fn updating_changes_only_given_fields_and_null_clears(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = app
        .create_task(
            "alice",
            json!({"title": "a", "description": "d", "due_date": "2026-03-01T09:00:00Z"}),
        )
        .await;
    let id = task["id"].as_str().unwrap();
    let response = app
        .send(
            Method::PATCH,
            &format!("/tasks/{id}"),
            Some("alice"),
            Some(json!({"title": "b", "due_date": null})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["title"], "b");
    assert_eq!(updated["description"], "d");
    assert_eq!(updated["due_date"], Value::Null);
    assert_eq!(updated["created_at"], task["created_at"]);

    let cleared: Value = app
        .send(
            Method::PATCH,
            &format!("/tasks/{id}"),
            Some("alice"),
            Some(json!({"description": null})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["description"], Value::Null);
}

async fn completing_and_uncompleting_toggle_the_flag(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.create_task("alice", json!({"title": "a"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done: Value = app
        .post_task("alice", &id, "complete")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["completed"], true);
    let again = app.post_task("alice", &id, "complete").await;
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "completing twice is idempotent"
    );
    let open: Value = app
        .post_task("alice", &id, "uncomplete")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["completed"], false);
}

async fn deleting_removes_the_task(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.create_task("alice", json!({"title": "a"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .send(Method::DELETE, &format!("/tasks/{id}"), Some("alice"), None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let gone = app
        .send(Method::GET, &format!("/tasks/{id}"), Some("alice"), None)
        .await;
    expect_problem(gone, StatusCode::NOT_FOUND).await;
    let twice = app
        .send(Method::DELETE, &format!("/tasks/{id}"), Some("alice"), None)
        .await;
    expect_problem(twice, StatusCode::NOT_FOUND).await;
}

async fn clearing_completed_deletes_only_completed_tasks_of_the_caller(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut done = Vec::new();
    for i in 0..3 {
        let id = app
            .create_task_id("alice", json!({"title": format!("t{i}")}))
            .await;
        if i < 2 {
            app.post_task("alice", &id, "complete").await;
            done.push(id);
        }
    }
    let bob = app.create_task("bob", json!({"title": "bob's"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post_task("bob", &bob, "complete").await;

    let refused = app
        .send(Method::DELETE, "/tasks", Some("alice"), None)
        .await;
    let problem = expect_problem(refused, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem["field"], "completed");

    let response = app
        .send(Method::DELETE, "/tasks?completed=true", Some("alice"), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"deleted": 2})
    );
    let left: Value = app.get_json("alice", "/tasks").await;
    assert_eq!(left["items"].as_array().unwrap().len(), 1);
    let bobs = app
        .send(Method::GET, &format!("/tasks/{bob}"), Some("bob"), None)
        .await;
    assert_eq!(
        bobs.status(),
        StatusCode::OK,
        "another user's completed task stays"
    );
}

async fn listing_pages_through_tasks_in_both_orders(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.create_task("alice", json!({"title": format!("t{i}")}))
                .await["id"]
                .clone(),
        );
    }
    app.create_task("bob", json!({"title": "not alice's"}))
        .await;

    let mut seen = Vec::new();
    let mut path = "/tasks?limit=2".to_owned();
    loop {
        let page: Value = app
            .send(Method::GET, &path, Some("alice"), None)
            .await
            .json()
            .await
            .unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/tasks?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<Value> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let oldest: Value = app.get_json("alice", "/tasks?order=oldest&limit=100").await;
    let oldest: Vec<Value> = oldest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(oldest, ids);
}

async fn listing_filters_on_completion(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.create_task("alice", json!({"title": "a"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_task("alice", json!({"title": "b"})).await;
    app.post_task("alice", &a, "complete").await;
    let done: Value = app.get_json("alice", "/tasks?completed=true").await;
    assert_eq!(done["items"].as_array().unwrap().len(), 1);
    assert_eq!(done["items"][0]["id"], a.as_str());
    let open: Value = app.get_json("alice", "/tasks?completed=false").await;
    assert_eq!(open["items"].as_array().unwrap().len(), 1);
    assert_eq!(open["items"][0]["title"], "b");
}

async fn bad_list_parameters_name_the_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("cursor=zzz", "cursor"),
        ("order=sideways", "order"),
        ("completed=maybe", "completed"),
        ("colour=red", "colour"),
    ] {
        let response = app
            .send(Method::GET, &format!("/tasks?{query}"), Some("alice"), None)
            .await;
        let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }
}

async fn users_never_see_or_change_each_others_tasks(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.create_task("alice", json!({"title": "private"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path, body) in [
        (Method::GET, format!("/tasks/{id}"), None),
        (
            Method::PATCH,
            format!("/tasks/{id}"),
            Some(json!({"title": "mine now"})),
        ),
        (Method::DELETE, format!("/tasks/{id}"), None),
        (Method::POST, format!("/tasks/{id}/complete"), None),
        (Method::POST, format!("/tasks/{id}/uncomplete"), None),
    ] {
        let response = app.send(method.clone(), &path, Some("mallory"), body).await;
        expect_problem(response, StatusCode::NOT_FOUND).await;
    }
    let list: Value = app.get_json("mallory", "/tasks").await;
    assert_eq!(list["items"], json!([]));
    let still: Value = app.get_json("alice", &format!("/tasks/{id}")).await;
    assert_eq!(still["title"], "private");
    assert_eq!(still["completed"], false);
}

async fn invalid_bodies_are_refused_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (
            json!({"title": "   "}),
            "title",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"title": "x".repeat(501)}),
            "title",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({}), "title", StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"title": 7}),
            "title",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"title": "a", "priority": 1}),
            "priority",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"title": "a", "due_date": "next tuesday"}),
            "due_date",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, field, status) in cases {
        let response = app
            .send(Method::POST, "/tasks", Some("alice"), Some(body.clone()))
            .await;
        let problem = expect_problem(response, status).await;
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let id = app.create_task("alice", json!({"title": "a"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (body, field) in [
        (json!({"title": null}), "title"),
        (json!({}), "body"),
        (json!({"done": true}), "done"),
    ] {
        let response = app
            .send(
                Method::PATCH,
                &format!("/tasks/{id}"),
                Some("alice"),
                Some(body.clone()),
            )
            .await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
}

async fn malformed_requests_get_clear_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = pakaura_tests::token_for("alice");
    let raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/tasks"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    expect_problem(
        raw("{\"title\": ", "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_problem(
        raw("{\"title\": \"a\"}", "text/plain").await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;

    let huge = format!(
        "{{\"title\": \"a\", \"description\": \"{}\"}}",
        "x".repeat(100 * 1024)
    );
    let response = app
        .client
        .post(app.url("/tasks"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    let bad_id = app
        .send(Method::GET, "/tasks/not-a-uuid", Some("alice"), None)
        .await;
    let problem = expect_problem(bad_id, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem["field"], "id");
    expect_problem(
        app.send(Method::GET, "/nowhere", Some("alice"), None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(
        app.send(Method::PUT, "/tasks", Some("alice"), None).await,
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
}

on_both_databases!(
    creating_a_task_returns_it_with_defaults,
    updating_changes_only_given_fields_and_null_clears,
    completing_and_uncompleting_toggle_the_flag,
    deleting_removes_the_task,
    clearing_completed_deletes_only_completed_tasks_of_the_caller,
    listing_pages_through_tasks_in_both_orders,
    listing_filters_on_completion,
    bad_list_parameters_name_the_parameter,
    users_never_see_or_change_each_others_tasks,
    invalid_bodies_are_refused_naming_the_field,
    malformed_requests_get_clear_problems,
);
