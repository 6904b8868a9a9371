//! The AsyncAPI document of the live set (`GET /asyncapi.json`, `pakaura asyncapi`): a
//! channel per topic, the declared event types as messages whose payload's `data` is the
//! published schema, Kafka bindings, the configured server; it follows a reload, and the
//! official parser (`@asyncapi/parser`, `tests/asyncapi/validate.mjs`) accepts it.
//!
//! The parser comes from `PAKAURA_TOOLS_NODE_MODULES` (`scripts/test` installs it); unset,
//! that step says SKIP.

use std::path::Path;
use std::process::Command;

use pakaura_host::cli::asyncapi::{AsyncApiArgs, execute};
use pakaura_host::mapper::MapperConfig;
use pakaura_tests::{Backend, Options, guests, on_both_databases, spawn_with};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::sandbox::bounded;

const SERVER: &str = "kafka.example.com:9092";

/// Runs the official parser on `document`; SKIP when it is not installed.
fn validate_with_the_official_parser(document: &Value) {
    let Some(modules) = std::env::var_os("PAKAURA_TOOLS_NODE_MODULES").filter(|m| !m.is_empty())
    else {
        eprintln!(
            "SKIP: PAKAURA_TOOLS_NODE_MODULES is not set: the AsyncAPI document is not run through @asyncapi/parser (scripts/test installs it)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("asyncapi.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("asyncapi/validate.mjs");
    let out = Command::new("node")
        .arg(script)
        .arg(&file)
        .env("PAKAURA_TOOLS_NODE_MODULES", modules)
        .output()
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the parser refused the document:\n{report}"
    );
    assert!(report.contains("channel task-events:"), "{report}");
}

fn messages_of<'a>(doc: &'a Value, channel: &str) -> Vec<&'a str> {
    doc["channels"][channel]["messages"]
        .as_object()
        .unwrap_or_else(|| panic!("no channel {channel} in {doc:#}"))
        .keys()
        .map(String::as_str)
        .collect()
}

async fn asyncapi_json(app: &pakaura_tests::TestApp) -> Value {
    let response = app.send(Method::GET, "/asyncapi.json", None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The live set's document: every topic, every declared type with its schema, and a
/// reload that adds a field shows it.
async fn the_asyncapi_document_describes_the_live_set(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guests::SHAPES_V1, dir.path().join("shapes.wasm")).unwrap();
    let app = spawn_with(
        backend,
        Options::default()
            .set("MAPPERS_DIR", dir.path().display().to_string())
            .set("ASYNCAPI_SERVER", SERVER),
    )
    .await;
    let doc = asyncapi_json(&app).await;
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["servers"]["kafka"]["host"], SERVER);
    assert_eq!(doc["servers"]["kafka"]["protocol"], "kafka");
    let channels: Vec<&str> = doc["channels"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(channels, ["reminders", "task-events", "task-updates"]);
    assert_eq!(
        messages_of(&doc, "reminders"),
        [
            "default.reminder.cancelled",
            "default.reminder.rescheduled",
            "default.reminder.scheduled"
        ]
    );
    assert!(messages_of(&doc, "task-events").contains(&"shapes.shape.changed"));
    assert_eq!(messages_of(&doc, "task-updates"), ["default.sync.task"]);

    // A message's payload is the envelope; its `data` is exactly the published schema.
    let message = &doc["components"]["messages"]["default.task.created"];
    assert_eq!(
        message["payload"]["properties"]["type"]["const"],
        "task.created"
    );
    assert_eq!(message["bindings"]["kafka"]["key"]["type"], "string");
    let served: Value = app
        .send(
            Method::GET,
            "/schemas/default/1.0.0/task.created",
            None,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(message["payload"]["properties"]["data"], served);
    assert_eq!(doc["operations"]["publish.task-events"]["action"], "send");
    validate_with_the_official_parser(&doc);

    // An additive change reloads, and the document shows the new field.
    let data = |doc: &Value| {
        doc["components"]["messages"]["shapes.shape.changed"]["payload"]["properties"]["data"]
            .clone()
    };
    assert!(data(&doc)["properties"].get("note").is_none());
    std::fs::copy(guests::SHAPES_V2, dir.path().join("shapes.wasm")).unwrap();
    let reload = app.admin(Method::POST, "/admin/mappers/reload").await;
    assert_eq!(reload.status(), StatusCode::OK);
    let doc = asyncapi_json(&app).await;
    assert_eq!(data(&doc)["properties"]["note"]["type"], "string");
    assert!(messages_of(&doc, "task-events").contains(&"shapes.shape.archived"));
}

on_both_databases!(the_asyncapi_document_describes_the_live_set);

/// `pakaura asyncapi` writes the same kind of document without a running host.
#[test]
fn pakaura_asyncapi_writes_the_document_of_the_configured_set() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("asyncapi.json");
    let args = AsyncApiArgs {
        output: Some(output.clone()),
        source: "pakaura/api".to_owned(),
        config: Box::new(MapperConfig {
            asyncapi_server: SERVER.to_owned(),
            ..MapperConfig::default()
        }),
    };
    bounded(move || execute(&args)).unwrap();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    assert_eq!(doc["servers"]["kafka"]["host"], SERVER);
    assert_eq!(messages_of(&doc, "task-updates"), ["default.sync.task"]);
    validate_with_the_official_parser(&doc);
}
