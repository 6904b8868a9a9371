//! Published schemas: an envelope's `dataschema` is the URL of the schema its `data`
//! follows, under `SCHEMA_BASE_URL`; the host serves it with caching headers, and unknown
//! ones as 404 problem documents.

use pakaura_tests::{
    Backend, DaprSink, WAIT, dapr_options, expect_problem, on_both_databases, sink_behaviour,
    spawn_with, task_id,
};
use reqwest::{Method, StatusCode, header};
use serde_json::json;

/// A gateway in front of the host: the base of every `dataschema`.
const GATEWAY: &str = "https://events.example.com/api";

/// Every envelope on the wire points at its schema; the host serves that schema; the
/// envelope's data validates against it and a broken copy does not.
async fn an_envelopes_dataschema_serves_the_schema_its_data_follows(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink).set("SCHEMA_BASE_URL", GATEWAY)).await;
    task_id(
        &app,
        "alice",
        json!({"title": "publish schemas", "due_date": "2026-03-01T09:00:00Z"}),
    )
    .await;
    let published = sink.wait_for_published(3, WAIT).await;
    let client = reqwest::Client::new();
    for envelope in &published {
        let url = envelope.body["dataschema"].as_str().expect("a dataschema");
        let path = url.strip_prefix(GATEWAY).expect("under SCHEMA_BASE_URL");
        assert_eq!(
            path,
            format!("/schemas/default/1.0.0/{}", envelope.event_type())
        );
        let response = app.send(Method::GET, path, None, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers[header::CONTENT_TYPE], "application/schema+json");
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        let etag = headers[header::ETAG].to_str().unwrap().to_owned();
        let schema: serde_json::Value = response.json().await.unwrap();
        let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
        let data = &envelope.body["data"];
        assert!(validator.is_valid(data), "{path}: {data}");
        let mut broken = data.clone();
        broken["task_id"] = json!(42);
        assert!(!validator.is_valid(&broken), "{path}");

        let again = client
            .get(app.url(path))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag.as_str());
    }

    for (path, named) in [
        ("/schemas/default/1.0.0/task.renamed", "task.renamed"),
        ("/schemas/default/9.9.9/task.created", "9.9.9"),
        ("/schemas/nobody/1.0.0/task.created", "nobody"),
    ] {
        let problem = expect_problem(
            app.send(Method::GET, path, None, None).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(named), "{detail}");
    }
}

on_both_databases!(an_envelopes_dataschema_serves_the_schema_its_data_follows);
