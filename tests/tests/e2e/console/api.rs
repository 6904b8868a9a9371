//! The admin API the console reads: documented in OpenAPI, one envelope with its
//! delivery history and mutation, dead letters with their mutations, the live flow.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_tests::{Backend, TestApp, expect_problem, on_both_databases, spawn_app};
use pakaura_tests::{refusing_reminders, task_id, wait_for_dead_letters};

/// Waits until the admin API lists at least `n` envelopes of `task`.
pub(super) async fn envelopes_of(app: &TestApp, task: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body = app
            .admin_json(&format!("/admin/envelopes?task_id={task}"))
            .await;
        let list = body["envelopes"].as_array().cloned().unwrap_or_default();
        if list.len() >= n {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} envelopes of {task}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_openapi_document_lists_the_admin_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = &doc["paths"];
    assert!(paths["/tasks"]["post"].is_object(), "the task API stays");
    for (path, method) in [
        ("/admin/mappers", "get"),
        ("/admin/mappers/reload", "post"),
        ("/admin/dead-letters", "get"),
        ("/admin/dead-letters/{id}/replay", "post"),
        ("/admin/envelopes", "get"),
        ("/admin/envelopes/{id}", "get"),
        ("/admin/flow/stream", "get"),
        ("/admin/playground/uploads", "post"),
        ("/admin/playground/uploads", "get"),
        ("/admin/playground/template", "get"),
        ("/admin/playground/run", "post"),
    ] {
        let operation = &paths[path][method];
        assert!(operation.is_object(), "{method} {path} documented");
        assert_eq!(operation["tags"], json!(["admin"]), "{method} {path}");
        assert_eq!(
            operation["security"],
            json!([{"admin": []}, {"console": []}]),
            "{method} {path}"
        );
        for status in ["200", "401", "403", "404"] {
            let status =
                if path == "/admin/playground/uploads" && method == "post" && status == "200" {
                    "201"
                } else {
                    status
                };
            assert!(
                operation["responses"].get(status).is_some(),
                "{method} {path} documents {status}"
            );
        }
        assert!(
            operation["responses"]["401"]["content"]
                .get("application/problem+json")
                .is_some()
        );
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["admin"]["scheme"], "bearer");
    assert_eq!(schemes["console"]["in"], "cookie");
    assert_eq!(schemes["console"]["name"], "pakaura_console");
    assert!(schemes["bearer"].is_object(), "the task API's scheme stays");
    let stream = &paths["/admin/flow/stream"]["get"]["responses"]["200"]["content"];
    assert!(stream.get("text/event-stream").is_some(), "{stream}");
    let upload = &paths["/admin/playground/uploads"]["post"];
    assert!(
        upload["requestBody"]["content"]
            .get("application/wasm")
            .is_some()
    );
    for status in ["413", "415", "422"] {
        assert!(
            upload["responses"].get(status).is_some(),
            "upload documents {status}"
        );
    }
    let envelopes = paths["/admin/envelopes"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    for name in ["state", "type", "topic", "task_id", "limit"] {
        assert!(envelopes.iter().any(|p| p == name), "parameter {name}");
    }
    assert!(doc["components"]["schemas"]["FlowSnapshot"].is_object());
    assert!(doc["components"]["schemas"]["RunRequest"].is_object());
}

async fn one_envelope_shows_its_json_history_and_mutation(backend: Backend) {
    let app = spawn_app(backend).await;
    let task = task_id(&app, "alice", json!({"title": "look at me"})).await;
    let listed = envelopes_of(&app, &task, 2).await;
    let id = listed[0]["id"].as_str().unwrap();
    let detail = app.admin_json(&format!("/admin/envelopes/{id}")).await;
    assert_eq!(detail["id"], id);
    assert_eq!(
        detail["envelope"], listed[0]["envelope"],
        "the exact CloudEvent"
    );
    assert_eq!(detail["envelope"]["id"], id);
    for field in [
        "state",
        "attempts",
        "dapr_status",
        "error_code",
        "last_error",
        "first_failed_at",
        "finished_at",
    ] {
        assert!(detail.get(field).is_some(), "{field} in {detail}");
    }
    assert_eq!(detail["mutation"]["task"]["id"], task.as_str());
    assert_eq!(detail["mutation"]["id"], detail["mutation_id"]);

    let missing = app
        .admin(
            Method::GET,
            &format!("/admin/envelopes/{}", uuid::Uuid::new_v4()),
        )
        .await;
    expect_problem(missing, StatusCode::NOT_FOUND).await;
    let bad = app.admin(Method::GET, "/admin/envelopes/not-an-id").await;
    let problem = expect_problem(bad, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem["field"], "id");
}

async fn dead_letters_carry_their_mutation_and_delivery_history(backend: Backend) {
    let (_sink, app, task) = refusing_reminders(backend).await;
    let letters = wait_for_dead_letters(&app, 1).await;
    let letter = &letters[0];
    assert_eq!(letter["mutation"]["task"]["id"], task.as_str());
    assert_eq!(letter["mutation"]["action"], "created");
    let envelope = letter["envelope_id"].as_str().unwrap();
    let detail = app
        .admin_json(&format!("/admin/envelopes/{envelope}"))
        .await;
    assert_eq!(detail["state"], "dead");
    assert_eq!(detail["dapr_status"], 403);
    assert_eq!(detail["error_code"], "ERR_PUBSUB_FORBIDDEN");
    assert!(detail["finished_at"].is_string());
    assert_eq!(detail["envelope"]["type"], "reminder.scheduled");
}

/// Reads server-sent events from `response` until one named `snapshot` arrives.
pub(super) async fn next_snapshot(response: &mut reqwest::Response, buffer: &mut String) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if event.lines().any(|l| l == "event: snapshot") {
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                return serde_json::from_str(&data).expect("snapshot JSON");
            }
            continue;
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("a snapshot within 30 s")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

async fn the_flow_stream_pushes_snapshots_to_every_console(backend: Backend) {
    let app = spawn_app(backend).await;
    let open = || async {
        let response = app.admin(Method::GET, "/admin/flow/stream").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        response
    };
    let (mut first, mut second) = (open().await, open().await);
    let (mut a, mut b) = (String::new(), String::new());
    let snapshot = next_snapshot(&mut first, &mut a).await;
    for field in [
        "at",
        "outbox_pending",
        "envelopes_pending",
        "lag_seconds",
        "dead_letters_open",
        "relay_running",
        "relay",
        "rates",
    ] {
        assert!(snapshot.get(field).is_some(), "{field} in {snapshot}");
    }
    assert!(snapshot["relay"]["published"].is_u64());
    assert!(snapshot["rates"]["published"].is_number());
    next_snapshot(&mut second, &mut b).await;

    // Activity shows in a later snapshot, the same one for both consoles.
    task_id(&app, "alice", json!({"title": "flowing"})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let s = next_snapshot(&mut first, &mut a).await;
        if s["relay"]["mapped"].as_u64() >= Some(1) {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "mapping never showed"
        );
    };
    loop {
        let s = next_snapshot(&mut second, &mut b).await;
        if s["at"].as_str() >= seen["at"].as_str() {
            assert_eq!(s, seen, "every console gets the same snapshot");
            break;
        }
    }

    // Open streams end when the host stops, rather than holding its shutdown open.
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the host stops with consoles connected");
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while first.chunk().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(rest.is_ok(), "the stream ended");
}

on_both_databases!(
    the_openapi_document_lists_the_admin_api,
    one_envelope_shows_its_json_history_and_mutation,
    dead_letters_carry_their_mutation_and_delivery_history,
    the_flow_stream_pushes_snapshots_to_every_console,
);
