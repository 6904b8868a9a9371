//! Payload schemas: what mappers declare (`event-schemas`, `pakaura:events@1.1.0`), what
//! the host does with an event that breaks its schema under each `MAPPER_SCHEMAS` mode, and
//! the envelope's `dataschema`. Runtime-level tests load real components directly; the
//! `sqlite::`/`postgres::` ones drive the real host.

mod asyncapi;
mod gate;
mod published;

use std::collections::BTreeMap;
use std::process::ExitCode;

use pakaura_host::cli::mapper::{MapperCommand, execute};
use pakaura_host::mapper::{
    Limits, LoadError, LoadedMapper, MapFailure, MapperConfig, MapperSource, Refusal, SchemaMode,
};
use pakaura_tests::{
    Backend, DaprSink, WAIT, dapr_options, guests, on_both_databases, sink_behaviour, task_id,
    wait_for_dead_letters,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::sandbox::{bounded, load_with, mutation, runtime};

fn limits(schemas: SchemaMode) -> Limits {
    Limits {
        schemas,
        ..Limits::default()
    }
}

/// A payload that breaks `shapes` 1.0.0's schema at `/task_id` (a number, not a string).
const BAD_DATA: &str = r#"{"task_id": 7, "title": "x"}"#;

#[test]
fn the_shipped_mappers_declare_a_schema_for_every_event_type_they_emit() {
    let default = bounded(|| {
        LoadedMapper::load(
            runtime(),
            MapperSource::BuiltinDefault,
            &limits(SchemaMode::Enforce),
            &Default::default(),
            &Default::default(),
        )
    })
    .unwrap();
    let types: Vec<&str> = default.schemas().iter().map(|(t, _)| t).collect();
    assert_eq!(
        types,
        [
            "reminder.cancelled",
            "reminder.rescheduled",
            "reminder.scheduled",
            "sync.task",
            "task.completed",
            "task.created",
            "task.deleted",
            "task.uncompleted",
            "task.updated",
        ]
    );
    let v2 = load_with(guests::V2, &[], limits(SchemaMode::Enforce)).unwrap();
    assert_eq!(v2.schemas().iter().count(), 5);
    // Under enforce, every event of both validates (the golden tests cover every action).
    let (default, v2) = bounded(move || {
        let events = default.map(&mutation()).expect("valid under enforce");
        let v2_events = v2.map(&mutation()).expect("valid under enforce");
        (events, v2_events)
    });
    assert_eq!(default.len(), 2);
    assert_eq!(
        default[0].data_schema.as_deref(),
        Some("http://127.0.0.1:8080/schemas/default/1.0.0/task.created")
    );
    // A mapper's own `data-schema` wins over the published URL.
    assert_eq!(
        v2[0].data_schema.as_deref(),
        Some("https://schemas.pakaura.dev/events/task/created.v2.json")
    );
}

#[test]
fn a_component_built_against_1_0_0_declares_nothing_and_is_not_checked() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/contract-1.0.0/default-mapper.wasm"
    );
    let old = load_with(path, &[], limits(SchemaMode::Enforce)).expect("it still loads");
    assert!(old.schemas().is_empty());
    let events = bounded(move || old.map(&mutation())).expect("nothing to enforce");
    assert!(events.iter().all(|e| e.data_schema.is_none()));
}

#[test]
fn under_enforce_a_violation_fails_the_mapping_naming_the_json_path() {
    let mapper = load_with(
        guests::SHAPES_V1,
        &[("data", BAD_DATA)],
        limits(SchemaMode::Enforce),
    )
    .unwrap();
    let err = bounded(move || mapper.map(&mutation())).unwrap_err();
    let MapFailure::SchemaViolation(violation) = &err.kind else {
        panic!("expected a schema violation, got {err}");
    };
    assert_eq!(violation.path, "/task_id");
    assert_eq!(violation.event_type, "shape.changed");
    assert_eq!(err.kind.code(), "schema_violation");
    let reason = err.to_string();
    assert!(
        reason.starts_with(
            "mapper `shapes` returned event 0 (shape.changed) breaks its schema at /task_id:"
        ),
        "{reason}"
    );
}

#[test]
fn under_warn_and_off_the_event_goes_through_and_violations_stay_visible() {
    for mode in [SchemaMode::Warn, SchemaMode::Off] {
        let mapper = load_with(guests::SHAPES_V1, &[("data", BAD_DATA)], limits(mode)).unwrap();
        let (events, violations) = bounded(move || {
            let events = mapper.map(&mutation()).expect("published anyway");
            let violations = mapper.violations(&events);
            (events, violations)
        });
        assert_eq!(events.len(), 1, "{mode}");
        assert_eq!(violations.len(), 1, "{mode}");
        assert_eq!(violations[0].path, "/task_id");
    }
    let valid = load_with(guests::SHAPES_V1, &[], limits(SchemaMode::Enforce)).unwrap();
    let events = bounded(move || valid.map(&mutation())).expect("its own data is valid");
    assert_eq!(
        events[0].data_schema.as_deref(),
        Some("http://127.0.0.1:8080/schemas/shapes/1.0.0/shape.changed")
    );
}

#[test]
fn an_unusable_schema_refuses_the_component_and_nothing_is_fetched() {
    let refused =
        |schema: &str| match load_with(guests::SHAPES_V1, &[("schema", schema)], Limits::default())
        {
            Err(LoadError::Refused { reason, .. }) => reason,
            Err(other) => panic!("expected a refusal, got {other}"),
            Ok(_) => panic!("{schema} was accepted"),
        };
    let reason = refused(r#"{"type": "strange"}"#);
    assert!(matches!(reason, Refusal::Schemas(_)), "{reason}");
    assert!(reason.to_string().contains("shape.changed"), "{reason}");
    let reason = refused("{not json");
    assert!(reason.to_string().contains("not valid JSON"), "{reason}");
    // A remote `$ref` is refused at load, not fetched: the sandbox stays closed.
    let reason = refused(r#"{"$ref": "http://127.0.0.1:9/schema.json"}"#);
    assert!(reason.to_string().contains("never fetches"), "{reason}");
}

/// `shapes` 1.0.0 in a mappers folder, named `name` (metrics are process-wide: a name of
/// its own per test keeps its series its own), emitting [`BAD_DATA`], with
/// `MAPPER_SCHEMAS=mode`.
fn shapes_options(
    sink: &DaprSink,
    dir: &tempfile::TempDir,
    name: &str,
    mode: &str,
) -> pakaura_tests::Options {
    std::fs::copy(guests::SHAPES_V1, dir.path().join("shapes.wasm")).unwrap();
    let settings = dir.path().join("settings.json");
    let by_mapper: BTreeMap<&str, Value> =
        [("shapes", json!({"data": BAD_DATA, "name": name}))].into();
    std::fs::write(&settings, json!(by_mapper).to_string()).unwrap();
    dapr_options(sink)
        .set("RELAY_ON_POISON", "skip")
        .set("MAPPER_BUILTIN", "false")
        .set("MAPPERS_DIR", dir.path().display().to_string())
        .set("MAPPER_SETTINGS_FILE", settings.display().to_string())
        .set("MAPPER_SCHEMAS", mode)
}

/// Under `enforce`, the mutation whose event breaks its schema becomes a dead letter whose
/// reason names the JSON path; nothing is published for it.
async fn under_enforce_the_mutation_is_held_with_the_failing_path(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let dir = tempfile::tempdir().unwrap();
    let options = shapes_options(&sink, &dir, "shapes", "enforce");
    let app = pakaura_tests::spawn_with(backend, options).await;
    task_id(&app, "alice", json!({"title": "enforced"})).await;
    let letters = wait_for_dead_letters(&app, 1).await;
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(reason.contains("breaks its schema at /task_id"), "{reason}");
    assert_eq!(letters[0]["mapper"], "shapes");
    assert!(sink.published().is_empty());
}

/// Under `warn` (the default), the event is published and the violation counted.
async fn under_warn_the_event_is_published_and_counted(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let dir = tempfile::tempdir().unwrap();
    let name = format!("shapes-warned-{backend:?}").to_lowercase();
    let options = shapes_options(&sink, &dir, &name, "warn");
    let app = pakaura_tests::spawn_with(backend, options).await;
    task_id(&app, "alice", json!({"title": "warned"})).await;
    let published = sink.wait_for_published(1, WAIT).await;
    assert_eq!(published[0].body["data"]["task_id"], 7);
    let metrics = app
        .send(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("pakaura_mapper_schema_violations_total{")
                && l.contains(&format!(r#"mapper="{name}""#))
        })
        .unwrap_or_else(|| panic!("no violation counter of {name} in\n{metrics}"));
    assert!(
        line.contains(&format!(r#"mapper="{name}""#))
            && line.contains(r#"event_type="shape.changed""#)
            && line.contains(r#"mode="warn""#)
            && line.ends_with(" 1"),
        "{line}"
    );
}

on_both_databases!(
    under_enforce_the_mutation_is_held_with_the_failing_path,
    under_warn_the_event_is_published_and_counted,
);

/// `pakaura mapper run` and `mapper test` check every event against its declared schema
/// whatever `MAPPER_SCHEMAS` says: a violation makes `run` exit 1 and fails its fixture in
/// `test` (and is never blessed); valid output passes.
#[test]
fn the_mapper_tool_shows_violations_whatever_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mutation_file = dir.path().join("created.json");
    std::fs::write(&mutation_file, serde_json::to_string(&mutation()).unwrap()).unwrap();
    let run = |config: Vec<(String, String)>| {
        let cmd = MapperCommand::Run {
            file: guests::SHAPES_V1.to_owned(),
            mutation: mutation_file.display().to_string(),
            config,
            source: "pakaura/api".to_owned(),
            traceparent: None,
        };
        bounded(move || execute(cmd, &MapperConfig::default()).unwrap())
    };
    assert_eq!(run(vec![]), ExitCode::SUCCESS);
    assert_eq!(
        run(vec![("data".to_owned(), BAD_DATA.to_owned())]),
        ExitCode::FAILURE
    );

    let fixtures = dir.path().join("fixtures");
    std::fs::create_dir(&fixtures).unwrap();
    std::fs::copy(&mutation_file, fixtures.join("valid.json")).unwrap();
    let test = |bless: bool| {
        let cmd = MapperCommand::Test {
            file: guests::SHAPES_V1.to_owned(),
            dir: fixtures.clone(),
            bless,
            source: "pakaura/api".to_owned(),
        };
        bounded(move || execute(cmd, &MapperConfig::default()).unwrap())
    };
    assert_eq!(test(true), ExitCode::SUCCESS);
    assert_eq!(test(false), ExitCode::SUCCESS);
    std::fs::copy(&mutation_file, fixtures.join("invalid.json")).unwrap();
    std::fs::write(
        fixtures.join("invalid.settings"),
        format!("data={BAD_DATA}\n"),
    )
    .unwrap();
    assert_eq!(test(true), ExitCode::FAILURE);
    assert!(
        !fixtures.join("invalid.expected.json").exists(),
        "a violation is never blessed"
    );
}
