//! Unit tests of the v2 schema: type names, data schema, extension and the exact payload.

use serde_json::{Value, json};

use super::*;
use crate::types::Task;

const TASK_ID: &str = "0b6e1c52-3c8f-4d55-9a61-5f2d4f1b2a10";
const AT: &str = "2026-02-09T14:30:00.000Z";

fn mutation(action: Action, changes: &[(&str, &str, &str)]) -> Mutation {
    Mutation {
        id: "7f0c2a9e-1d1b-4e8e-8f3a-2c4b6d8e0f12".to_owned(),
        action,
        task: Task {
            id: TASK_ID.to_owned(),
            user_id: "user-42".to_owned(),
            title: "Buy milk".to_owned(),
            description: Some("2 litres".to_owned()),
            completed: false,
            due_date: Some("2026-02-12T09:00:00.000Z".to_owned()),
            created_at: "2026-02-01T08:00:00.000Z".to_owned(),
            updated_at: AT.to_owned(),
        },
        changes: changes
            .iter()
            .map(|&(field, old, new)| FieldChange {
                field: field.to_owned(),
                old_value: old.to_owned(),
                new_value: new.to_owned(),
            })
            .collect(),
        origin: Origin::Mcp,
        correlation_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
        occurred_at: AT.to_owned(),
    }
}

fn map_one(mutation: &Mutation, settings: &Settings) -> Event {
    let mut events = map_mutation(mutation, settings).expect("the v2 mapper maps the mutation");
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

#[test]
fn describe_names_the_mapper_and_declares_only_task_events() {
    let info = describe();
    assert_eq!(info.name, "v2");
    assert_eq!(info.version, "2.0.0");
    assert_eq!(info.topics, ["task-events"]);
}

#[test]
fn every_action_yields_one_versioned_event_on_task_events() {
    let settings = Settings::default();
    for (action, event_type, schema) in [
        (Action::Created, "com.pakaura.task.created.v2", "created"),
        (Action::Updated, "com.pakaura.task.updated.v2", "updated"),
        (
            Action::Completed,
            "com.pakaura.task.completed.v2",
            "completed",
        ),
        (
            Action::Uncompleted,
            "com.pakaura.task.uncompleted.v2",
            "uncompleted",
        ),
        (Action::Deleted, "com.pakaura.task.deleted.v2", "deleted"),
    ] {
        let event = map_one(&mutation(action, &[]), &settings);
        assert_eq!(event.topic, "task-events");
        assert_eq!(event.event_type, event_type);
        assert_eq!(event.subject.as_deref(), Some(TASK_ID));
        assert_eq!(
            event.data_schema,
            Some(format!(
                "https://schemas.pakaura.dev/events/task/{schema}.v2.json"
            ))
        );
        assert_eq!(
            event.extensions,
            [("schemaversion".to_owned(), "2".to_owned())]
        );
        assert_eq!(event.partition_key, None);
    }
}

#[test]
fn the_payload_is_a_task_snapshot_with_the_list_of_changes() {
    let m = mutation(
        Action::Updated,
        &[
            ("title", r#""Buy bread""#, r#""Buy milk""#),
            ("due_date", "null", r#""2026-02-12T09:00:00.000Z""#),
        ],
    );
    let event = map_one(&m, &Settings::default());
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(
        data,
        json!({
            "schema_version": 2,
            "task": {
                "id": TASK_ID, "user_id": "user-42", "title": "Buy milk",
                "description": "2 litres", "completed": false,
                "due_date": "2026-02-12T09:00:00.000Z",
                "created_at": "2026-02-01T08:00:00.000Z", "updated_at": AT,
            },
            "changes": [
                {"field": "title", "old": "Buy bread", "new": "Buy milk"},
                {"field": "due_date", "old": null, "new": "2026-02-12T09:00:00.000Z"},
            ],
            "actor": "user-42",
            "origin": "mcp",
            "occurred_at": AT,
        })
    );
    assert!(
        event
            .data
            .starts_with(r#"{"schema_version":2,"task":{"id":"#),
        "{}",
        event.data
    );
}

#[test]
fn absent_optional_fields_are_null_and_no_changes_is_an_empty_list() {
    let mut m = mutation(Action::Created, &[]);
    m.task.description = None;
    m.task.due_date = None;
    m.origin = Origin::Rest;
    let data: Value = serde_json::from_str(&map_one(&m, &Settings::default()).data).unwrap();
    assert_eq!(data["task"]["description"], Value::Null);
    assert_eq!(data["task"]["due_date"], Value::Null);
    assert_eq!(data["changes"], json!([]));
    assert_eq!(data["origin"], "rest");
}

#[test]
fn the_schema_base_url_comes_from_config_without_a_trailing_slash() {
    let settings = Settings::from_config(|key| {
        (key == "schema-base-url").then(|| "https://schemas.example.com/v/".to_owned())
    });
    let event = map_one(&mutation(Action::Deleted, &[]), &settings);
    assert_eq!(
        event.data_schema.as_deref(),
        Some("https://schemas.example.com/v/task/deleted.v2.json")
    );
}

#[test]
fn a_change_that_is_not_json_is_refused_naming_the_field() {
    let err = map_mutation(
        &mutation(Action::Updated, &[("title", "nope", "null")]),
        &Settings::default(),
    )
    .unwrap_err();
    assert!(
        err.contains("`title`") && err.contains("old value"),
        "{err}"
    );
}
