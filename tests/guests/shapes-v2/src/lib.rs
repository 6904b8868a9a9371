//! `shapes` 1.1.0: an additive change of `shapes-v1`, which every consumer of 1.0.0 can
//! still read: an optional `note`, `status` may also be `archived`, `priority` any number,
//! and a new event type `shape.archived`.

#[path = "../../shapes-common/component.rs"]
mod component;

const VERSION: &str = "1.1.0";

const SCHEMAS: &[(&str, &str)] = &[
    (
        "shape.changed",
        r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "task_id": {"type": "string"},
    "title": {"type": "string"},
    "status": {"enum": ["open", "done", "archived"]},
    "priority": {"type": "number"},
    "note": {"type": "string"}
  },
  "required": ["task_id", "title"]
}"#,
    ),
    (
        "shape.removed",
        r#"{"type": "object", "properties": {"task_id": {"type": "string"}}, "required": ["task_id"]}"#,
    ),
    (
        "shape.archived",
        r#"{"type": "object", "properties": {"task_id": {"type": "string"}}, "required": ["task_id"]}"#,
    ),
];

fn data(task_id: &str, title: &str, _user: &str) -> String {
    format!(
        r#"{{"task_id":{task_id},"title":{title},"status":"open","priority":1,"note":"added in 1.1.0"}}"#
    )
}
