//! `shapes` 1.0.0: the first version of an evolving event, for the compatibility gate's
//! tests. `shape.changed` carries `task_id`, `title`, `status` (`open` or `done`) and an
//! integer `priority`; `shape.removed` carries `task_id`.

#[path = "../../shapes-common/component.rs"]
mod component;

const VERSION: &str = "1.0.0";

const SCHEMAS: &[(&str, &str)] = &[
    (
        "shape.changed",
        r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "task_id": {"type": "string"},
    "title": {"type": "string"},
    "status": {"enum": ["open", "done"]},
    "priority": {"type": "integer"}
  },
  "required": ["task_id", "title"]
}"#,
    ),
    (
        "shape.removed",
        r#"{"type": "object", "properties": {"task_id": {"type": "string"}}, "required": ["task_id"]}"#,
    ),
];

fn data(task_id: &str, title: &str, _user: &str) -> String {
    format!(r#"{{"task_id":{task_id},"title":{title},"status":"open","priority":1}}"#)
}
