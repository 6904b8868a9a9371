//! Unit tests of the catalogue: every action with and without a due date, every reminder
//! transition, and the exact JSON of every payload.

use serde_json::{Value, json};

use super::*;
use crate::types::{Origin, Task};

const TASK_ID: &str = "0b6e1c52-3c8f-4d55-9a61-5f2d4f1b2a10";
const USER_ID: &str = "user-42";
const AT: &str = "2026-02-09T14:30:00.000Z";
const DUE: &str = "2026-02-12T09:00:00.000Z";
const LATER: &str = "2026-02-13T09:00:00.000Z";

fn mutation(action: Action, due_date: Option<&str>, changes: &[(&str, &str, &str)]) -> Mutation {
    Mutation {
        id: "7f0c2a9e-1d1b-4e8e-8f3a-2c4b6d8e0f12".to_owned(),
        action,
        task: Task {
            id: TASK_ID.to_owned(),
            user_id: USER_ID.to_owned(),
            title: "Buy milk".to_owned(),
            description: None,
            completed: action == Action::Completed,
            due_date: due_date.map(str::to_owned),
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
        origin: Origin::Rest,
        correlation_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
        occurred_at: AT.to_owned(),
    }
}

/// Maps the mutation and checks what every catalogue event has in common.
fn map(mutation: &Mutation) -> Vec<Event> {
    let events = map_mutation(mutation).expect("the catalogue maps the mutation");
    for event in &events {
        assert_eq!(event.subject.as_deref(), Some(TASK_ID), "{event:?}");
        assert_eq!(event.data_schema, None, "{event:?}");
        assert!(event.extensions.is_empty(), "{event:?}");
        assert_eq!(event.partition_key, None, "{event:?}");
    }
    events
}

/// The (event type, topic) pairs, in order.
fn kinds(events: &[Event]) -> Vec<(&str, &str)> {
    events
        .iter()
        .map(|e| (e.event_type.as_str(), e.topic.as_str()))
        .collect()
}

fn data(event: &Event) -> Value {
    serde_json::from_str(&event.data).expect("the payload is JSON")
}

fn sync_payload(action: &str) -> Value {
    json!({"task_id": TASK_ID, "user_id": USER_ID, "action": action, "timestamp": AT})
}

fn reminder_payload(action: &str, due_date: &str) -> Value {
    json!({
        "task_id": TASK_ID, "user_id": USER_ID, "action": action, "title": "Buy milk",
        "due_date": due_date, "timestamp": AT,
    })
}

#[test]
fn describe_names_the_mapper_and_declares_the_three_topics() {
    let info = describe();
    assert_eq!(info.name, "default");
    assert_eq!(info.version, "1.0.0");
    assert_eq!(info.topics, ["task-events", "task-updates", "reminders"]);
}

#[test]
fn created_without_due_date_yields_task_created_and_sync() {
    let events = map(&mutation(Action::Created, None, &[]));
    assert_eq!(
        kinds(&events),
        [
            ("task.created", "task-events"),
            ("sync.task", "task-updates")
        ]
    );
    assert_eq!(
        events[0].data,
        format!(
            r#"{{"task_id":"{TASK_ID}","user_id":"{USER_ID}","action":"created","title":"Buy milk","completed":false,"due_date":null,"changes":null,"timestamp":"{AT}"}}"#
        )
    );
    assert_eq!(
        events[1].data,
        format!(
            r#"{{"task_id":"{TASK_ID}","user_id":"{USER_ID}","action":"created","timestamp":"{AT}"}}"#
        )
    );
}

#[test]
fn created_with_due_date_also_schedules_a_reminder() {
    let events = map(&mutation(Action::Created, Some(DUE), &[]));
    assert_eq!(
        kinds(&events),
        [
            ("task.created", "task-events"),
            ("sync.task", "task-updates"),
            ("reminder.scheduled", "reminders"),
        ]
    );
    assert_eq!(data(&events[0])["due_date"], DUE);
    assert_eq!(data(&events[1]), sync_payload("created"));
    assert_eq!(
        events[2].data,
        format!(
            r#"{{"task_id":"{TASK_ID}","user_id":"{USER_ID}","action":"scheduled","title":"Buy milk","due_date":"{DUE}","timestamp":"{AT}"}}"#
        )
    );
}

#[test]
fn updated_carries_the_changes_object_in_the_order_given() {
    let events = map(&mutation(
        Action::Updated,
        None,
        &[
            ("title", r#""Buy bread""#, r#""Buy milk""#),
            ("description", "null", r#""2 litres""#),
        ],
    ));
    assert_eq!(
        kinds(&events),
        [
            ("task.updated", "task-events"),
            ("sync.task", "task-updates")
        ]
    );
    assert_eq!(
        data(&events[0]),
        json!({
            "task_id": TASK_ID, "user_id": USER_ID, "action": "updated", "title": "Buy milk",
            "completed": false, "due_date": null,
            "changes": {
                "title": {"old": "Buy bread", "new": "Buy milk"},
                "description": {"old": null, "new": "2 litres"},
            },
            "timestamp": AT,
        })
    );
    assert!(events[0].data.contains(
        r#""changes":{"title":{"old":"Buy bread","new":"Buy milk"},"description":{"old":null,"new":"2 litres"}}"#
    ));
    assert_eq!(data(&events[1]), sync_payload("updated"));
}

#[test]
fn updated_with_no_changes_has_an_empty_changes_object() {
    let events = map(&mutation(Action::Updated, None, &[]));
    assert_eq!(data(&events[0])["changes"], json!({}));
}

#[test]
fn updated_setting_a_due_date_schedules_a_reminder() {
    let events = map(&mutation(
        Action::Updated,
        Some(DUE),
        &[("due_date", "null", &format!("\"{DUE}\""))],
    ));
    assert_eq!(kinds(&events)[2], ("reminder.scheduled", "reminders"));
    assert_eq!(data(&events[2]), reminder_payload("scheduled", DUE));
    assert_eq!(
        data(&events[0])["changes"],
        json!({"due_date": {"old": null, "new": DUE}})
    );
}

#[test]
fn updated_changing_the_due_date_reschedules_the_reminder() {
    let change = ("due_date", &*format!("\"{DUE}\""), &*format!("\"{LATER}\""));
    let events = map(&mutation(Action::Updated, Some(LATER), &[change]));
    assert_eq!(events.len(), 3);
    assert_eq!(kinds(&events)[2], ("reminder.rescheduled", "reminders"));
    assert_eq!(data(&events[2]), reminder_payload("rescheduled", LATER));
}

#[test]
fn updated_removing_the_due_date_cancels_the_reminder_for_the_old_date() {
    let events = map(&mutation(
        Action::Updated,
        None,
        &[("due_date", &format!("\"{DUE}\""), "null")],
    ));
    assert_eq!(events.len(), 3);
    assert_eq!(kinds(&events)[2], ("reminder.cancelled", "reminders"));
    assert_eq!(data(&events[2]), reminder_payload("cancelled", DUE));
}

#[test]
fn updated_without_a_due_date_transition_has_no_reminder() {
    let due = format!("\"{DUE}\"");
    for changes in [
        vec![("title", r#""a""#, r#""b""#)],
        vec![("due_date", due.as_str(), due.as_str())],
        vec![("due_date", "null", "null")],
    ] {
        let events = map(&mutation(Action::Updated, Some(DUE), &changes));
        assert_eq!(
            kinds(&events),
            [
                ("task.updated", "task-events"),
                ("sync.task", "task-updates")
            ],
            "{changes:?}"
        );
    }
}

#[test]
fn completed_cancels_the_reminder_only_when_there_is_a_due_date() {
    let events = map(&mutation(Action::Completed, None, &[]));
    assert_eq!(
        kinds(&events),
        [
            ("task.completed", "task-events"),
            ("sync.task", "task-updates")
        ]
    );
    let events = map(&mutation(Action::Completed, Some(DUE), &[]));
    assert_eq!(
        kinds(&events),
        [
            ("task.completed", "task-events"),
            ("sync.task", "task-updates"),
            ("reminder.cancelled", "reminders"),
        ]
    );
    assert_eq!(
        data(&events[0]),
        json!({
            "task_id": TASK_ID, "user_id": USER_ID, "action": "completed", "title": "Buy milk",
            "completed": true, "due_date": DUE, "changes": null, "timestamp": AT,
        })
    );
    assert_eq!(data(&events[1]), sync_payload("completed"));
    assert_eq!(data(&events[2]), reminder_payload("cancelled", DUE));
}

#[test]
fn completed_ignores_the_changes_it_carries() {
    let events = map(&mutation(
        Action::Completed,
        None,
        &[("completed", "false", "true")],
    ));
    assert_eq!(data(&events[0])["changes"], Value::Null);
}

#[test]
fn uncompleted_schedules_the_reminder_again_only_when_there_is_a_due_date() {
    let events = map(&mutation(Action::Uncompleted, None, &[]));
    assert_eq!(
        kinds(&events),
        [
            ("task.uncompleted", "task-events"),
            ("sync.task", "task-updates")
        ]
    );
    let events = map(&mutation(Action::Uncompleted, Some(DUE), &[]));
    assert_eq!(
        kinds(&events),
        [
            ("task.uncompleted", "task-events"),
            ("sync.task", "task-updates"),
            ("reminder.scheduled", "reminders"),
        ]
    );
    assert_eq!(data(&events[0])["action"], "uncompleted");
    assert_eq!(data(&events[0])["completed"], false);
    assert_eq!(data(&events[1]), sync_payload("uncompleted"));
    assert_eq!(data(&events[2]), reminder_payload("scheduled", DUE));
}

#[test]
fn deleted_cancels_the_reminder_only_when_it_had_a_due_date() {
    let events = map(&mutation(Action::Deleted, None, &[]));
    assert_eq!(
        kinds(&events),
        [
            ("task.deleted", "task-events"),
            ("sync.task", "task-updates")
        ]
    );
    let events = map(&mutation(Action::Deleted, Some(DUE), &[]));
    assert_eq!(
        kinds(&events),
        [
            ("task.deleted", "task-events"),
            ("sync.task", "task-updates"),
            ("reminder.cancelled", "reminders"),
        ]
    );
    assert_eq!(
        data(&events[0]),
        json!({
            "task_id": TASK_ID, "user_id": USER_ID, "action": "deleted", "title": "Buy milk",
            "completed": false, "due_date": DUE, "changes": null, "timestamp": AT,
        })
    );
    assert_eq!(data(&events[1]), sync_payload("deleted"));
    assert_eq!(data(&events[2]), reminder_payload("cancelled", DUE));
}

#[test]
fn a_change_that_is_not_json_is_refused_naming_the_field() {
    let err = map_mutation(&mutation(
        Action::Updated,
        None,
        &[("title", "Buy bread", r#""b""#)],
    ))
    .unwrap_err();
    assert!(
        err.contains("`title`") && err.contains("old value"),
        "{err}"
    );
    let err = map_mutation(&mutation(
        Action::Updated,
        None,
        &[("description", "null", "{")],
    ))
    .unwrap_err();
    assert!(
        err.contains("`description`") && err.contains("new value"),
        "{err}"
    );
}

#[test]
fn a_due_date_that_is_not_a_string_is_refused() {
    let err = map_mutation(&mutation(
        Action::Updated,
        None,
        &[("due_date", "null", "42")],
    ))
    .unwrap_err();
    assert!(err.contains("`due_date`"), "{err}");
}

#[test]
fn a_field_changed_twice_is_refused() {
    let changes = [("title", r#""a""#, r#""b""#), ("title", r#""b""#, r#""c""#)];
    let err = map_mutation(&mutation(Action::Updated, None, &changes)).unwrap_err();
    assert!(err.contains("`title`"), "{err}");
}

#[test]
fn payload_strings_are_escaped() {
    let mut m = mutation(Action::Created, None, &[]);
    m.task.title = "say \"hi\"\n".to_owned();
    let events = map(&m);
    assert_eq!(data(&events[0])["title"], "say \"hi\"\n");
}
