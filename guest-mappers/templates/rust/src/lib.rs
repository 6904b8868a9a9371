//! The `{{name}}` Pakaura mapper: one `com.example.task.<action>` event on `task-events` per
//! task mutation, tagged with the operator's `tenant` setting.
//!
//! The mapping is plain Rust (this file), unit-tested natively with `cargo test`;
//! `component.rs` (wasm32 only) is the wit-bindgen glue that exports the
//! `pakaura:events/typed-mapper` world from `wit/events.wit`. [`event_schemas`] declares the
//! JSON Schema of every event type it emits: the host validates each event's `data` against
//! it, publishes it, and refuses a reload whose schemas would break a consumer.

#[cfg(target_arch = "wasm32")]
mod component;

/// The topic this mapper publishes to; `describe` declares it.
pub const TOPIC: &str = "task-events";
/// The `host.config` key of the tenant, and its value when the operator set none.
pub const TENANT_KEY: &str = "tenant";
pub const DEFAULT_TENANT: &str = "default";

/// The mapper's name, version and topics.
pub fn describe() -> (String, String, Vec<String>) {
    (
        "{{name}}".to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
        vec![TOPIC.to_owned()],
    )
}

/// The actions, as they appear in event types and payloads.
pub const ACTIONS: [&str; 5] = ["created", "updated", "completed", "uncompleted", "deleted"];

/// `(event type, JSON Schema as a JSON text)` of every event type [`map`] may emit (all
/// on [`TOPIC`]). Adding a
/// property is compatible; removing or renaming one, narrowing a type or requiring a new
/// property is refused on reload (see the host's README, "Payload schemas").
pub fn event_schemas() -> Vec<(String, String)> {
    ACTIONS
        .iter()
        .map(|action| {
            let schema = serde_json::json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": format!("com.example.task.{action}"),
                "type": "object",
                "properties": {
                    "task_id": {"type": "string"},
                    "action": {"const": action},
                    "title": {"type": "string"},
                    "changed": {"type": "array", "items": {"type": "string"}},
                    "at": {"type": "string", "format": "date-time"}
                },
                "required": ["task_id", "action", "title", "changed", "at"]
            });
            (format!("com.example.task.{action}"), schema.to_string())
        })
        .collect()
}

/// What the mapping needs from a mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input<'a> {
    pub task_id: &'a str,
    /// `created`, `updated`, `completed`, `uncompleted` or `deleted`.
    pub action: &'a str,
    pub title: &'a str,
    /// The snake_case names of the changed fields (empty unless `updated`).
    pub changed: Vec<&'a str>,
    pub occurred_at: &'a str,
}

/// The one event this mapper emits for a mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub event_type: String,
    pub data: String,
    pub tenant: String,
}

/// Maps one mutation. `tenant` is the `tenant` setting, if the operator set one.
///
/// Refuses (the mutation becomes a dead letter, replayable once the setting is fixed) when
/// `tenant` is set but is not 1 to 63 characters of `a-z`, `0-9` and `-`.
pub fn map(input: &Input<'_>, tenant: Option<&str>) -> Result<Output, String> {
    let tenant = tenant.unwrap_or(DEFAULT_TENANT);
    let valid = (1..=63).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(format!(
            "setting `{TENANT_KEY}` must be 1 to 63 characters of a-z, 0-9 and `-`, got {tenant:?}"
        ));
    }
    let data = serde_json::json!({
        "task_id": input.task_id,
        "action": input.action,
        "title": input.title,
        "changed": input.changed,
        "at": input.occurred_at,
    });
    Ok(Output {
        event_type: format!("com.example.task.{}", input.action),
        data: data.to_string(),
        tenant: tenant.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Input<'static> {
        Input {
            task_id: "0b6e1c52-3c8f-4d55-9a61-5f2d4f1b2a10",
            action: "updated",
            title: "Buy milk",
            changed: vec!["title"],
            occurred_at: "2026-02-09T14:30:00.000Z",
        }
    }

    #[test]
    fn describes_itself() {
        let (name, version, topics) = describe();
        assert_eq!(name, "{{name}}");
        assert_eq!(version, "0.1.0");
        assert_eq!(topics, [TOPIC]);
    }

    #[test]
    fn maps_a_mutation_to_one_event_tagged_with_the_tenant() {
        let out = map(&input(), Some("acme")).unwrap();
        assert_eq!(out.event_type, "com.example.task.updated");
        assert_eq!(out.tenant, "acme");
        let data: serde_json::Value = serde_json::from_str(&out.data).unwrap();
        assert_eq!(data["task_id"], "0b6e1c52-3c8f-4d55-9a61-5f2d4f1b2a10");
        assert_eq!(data["changed"], serde_json::json!(["title"]));
    }

    #[test]
    fn every_event_it_emits_has_a_declared_schema() {
        let schemas = event_schemas();
        for action in ACTIONS {
            let out = map(&Input { action, ..input() }, None).unwrap();
            let (_, schema) = schemas
                .iter()
                .find(|(ty, _)| *ty == out.event_type)
                .expect("a schema for every event type");
            let schema: serde_json::Value = serde_json::from_str(schema).unwrap();
            let data: serde_json::Value = serde_json::from_str(&out.data).unwrap();
            for key in schema["required"].as_array().unwrap() {
                assert!(data.get(key.as_str().unwrap()).is_some(), "{key} in {data}");
            }
        }
    }

    #[test]
    fn the_tenant_defaults_when_unset() {
        assert_eq!(map(&input(), None).unwrap().tenant, DEFAULT_TENANT);
    }

    #[test]
    fn an_invalid_tenant_setting_is_refused() {
        let err = map(&input(), Some("Acme Corp")).unwrap_err();
        assert!(err.contains("setting `tenant`"), "{err}");
    }
}
