//! Operations surfaces: health, readiness, metrics, OpenAPI, correlation ids.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use pakaura_tests::{Backend, on_both_databases, spawn_app};

async fn health_and_readiness_report_ok(backend: Backend) {
    let app = spawn_app(backend).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert!(body["mappers"].as_u64().unwrap() >= 1);
}

async fn responses_echo_or_make_a_correlation_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-correlation-id", "abc-1")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-correlation-id"], "abc-1");
    let made = app.client.get(app.url("/healthz")).send().await.unwrap();
    let made = made.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    let hostile = app
        .client
        .get(app.url("/healthz"))
        .header("x-correlation-id", "a b{}")
        .send()
        .await
        .unwrap();
    assert_ne!(hostile.headers()["x-correlation-id"], "a b{}");
}

async fn the_openapi_document_describes_the_task_routes(backend: Backend) {
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
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/tasks", &["get", "post", "delete"][..]),
        ("/tasks/{id}", &["get", "patch", "delete"][..]),
        ("/tasks/{id}/complete", &["post"][..]),
        ("/tasks/{id}/uncomplete", &["post"][..]),
    ] {
        for method in methods {
            assert!(
                paths[path].get(*method).is_some(),
                "{method} {path} documented"
            );
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let create = &doc["paths"]["/tasks"]["post"]["responses"];
    for status in ["201", "400", "401", "413", "415", "422"] {
        assert!(
            create.get(status).is_some(),
            "POST /tasks documents {status}"
        );
    }
    assert!(
        create["422"]["content"]
            .get("application/problem+json")
            .is_some(),
        "errors are documented as problem+json: {create}"
    );
    let task = &doc["components"]["schemas"]["Task"]["properties"];
    for field in [
        "id",
        "title",
        "description",
        "completed",
        "due_date",
        "created_at",
        "updated_at",
    ] {
        assert!(task.get(field).is_some(), "Task.{field} documented");
    }
}

async fn metrics_count_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    app.send(Method::GET, "/tasks", Some("alice"), None).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "pakaura_http_requests_total{method=\"GET\",route=\"/tasks\",status=\"200\"}"
        ),
        "{text}"
    );
}

on_both_databases!(
    health_and_readiness_report_ok,
    responses_echo_or_make_a_correlation_id,
    the_openapi_document_describes_the_task_routes,
    metrics_count_requests,
);
