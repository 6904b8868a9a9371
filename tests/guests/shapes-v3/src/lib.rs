//! `shapes` 2.0.0: a breaking change of `shapes-v1`: `title` removed, `priority` a string,
//! `status` no longer `done`, a new required `owner`, and `shape.removed` gone.

#[path = "../../shapes-common/component.rs"]
mod component;

const VERSION: &str = "2.0.0";

const SCHEMAS: &[(&str, &str)] = &[(
    "shape.changed",
    r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "task_id": {"type": "string"},
    "status": {"enum": ["open"]},
    "priority": {"type": "string"},
    "owner": {"type": "string"}
  },
  "required": ["task_id", "owner"]
}"#,
)];

fn data(task_id: &str, _title: &str, user: &str) -> String {
    format!(r#"{{"task_id":{task_id},"status":"open","priority":"high","owner":{user}}}"#)
}
