//! Plain Rust mirrors of the WIT records in `wit/events.wit` (`pakaura:events/types`), shared
//! by the mapper crates of this workspace (each re-exports this crate as its `types` module).
//!
//! A mapper's mapping logic works on these rather than on wit-bindgen's generated types so
//! that it compiles, and is tested and benchmarked, natively. On `wasm32` the [`component`]
//! module adds the one copy of the component glue every mapper shares: the bindings of the
//! `pakaura:events/mapper` world, the conversions to and from these types, the `host` imports
//! ([`component::log`], [`component::config`]) and [`export_mapper!`], which exports a
//! [`component::Mapper`] as the world.

#[cfg(target_arch = "wasm32")]
pub mod component;

/// What happened to the task (WIT `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The task was created.
    Created,
    /// One or more of title, description or due date changed.
    Updated,
    /// The task was marked complete.
    Completed,
    /// The task was marked incomplete again.
    Uncompleted,
    /// The task was deleted.
    Deleted,
}

impl Action {
    /// The action's lowercase name, as it appears in payloads (`"created"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Completed => "completed",
            Action::Uncompleted => "uncompleted",
            Action::Deleted => "deleted",
        }
    }
}

/// Which surface caused the mutation (WIT `origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The REST API.
    Rest,
    /// The MCP tool surface.
    Mcp,
    /// Reserved by the contract; the host never produces it (a replay keeps the
    /// original mutation's origin).
    System,
}

/// A task as stored by the host (WIT `task`). Timestamps are RFC 3339 UTC strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The task's UUID.
    pub id: String,
    /// The owner's user id.
    pub user_id: String,
    /// The title.
    pub title: String,
    /// The free-text description, if any.
    pub description: Option<String>,
    /// Whether the task is completed.
    pub completed: bool,
    /// The due date, if any.
    pub due_date: Option<String>,
    /// When the task was created.
    pub created_at: String,
    /// When the task last changed.
    pub updated_at: String,
}

/// One field changed by an `updated` mutation (WIT `field-change`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The field's snake_case name: `title`, `description` or `due_date`.
    pub field: String,
    /// The value before the change, as a JSON text (`"\"old\""`, `"null"`).
    pub old_value: String,
    /// The value after the change, as a JSON text.
    pub new_value: String,
}

/// One committed change to one task (WIT `mutation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    /// The mutation's UUID, stable across retries.
    pub id: String,
    /// What happened.
    pub action: Action,
    /// The task after the change; for `deleted`, the task as it was.
    pub task: Task,
    /// The fields that changed; empty for `created` and `deleted`.
    pub changes: Vec<FieldChange>,
    /// Which surface caused it.
    pub origin: Origin,
    /// The correlation id of the request that caused it.
    pub correlation_id: String,
    /// When the change was committed.
    pub occurred_at: String,
}

/// One event to publish (WIT `event`); the host wraps it in a CloudEvents envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The topic to publish to.
    pub topic: String,
    /// The CloudEvents `type`.
    pub event_type: String,
    /// The CloudEvents `subject`.
    pub subject: Option<String>,
    /// The payload, a JSON text.
    pub data: String,
    /// The CloudEvents `dataschema`.
    pub data_schema: Option<String>,
    /// Extra CloudEvents extension attributes.
    pub extensions: Vec<(String, String)>,
    /// The Kafka partition key; none lets the host use the task id.
    pub partition_key: Option<String>,
}

/// What the mapper says about itself at load (WIT `mapper-info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapperInfo {
    /// The mapper's name.
    pub name: String,
    /// The mapper's version.
    pub version: String,
    /// Every topic the mapper may publish to.
    pub topics: Vec<String>,
}

/// The JSON Schema of the `data` of one event type the mapper may emit (WIT `event-schema`,
/// since `pakaura:events@1.1.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSchema {
    /// The CloudEvents `type` it describes.
    pub event_type: String,
    /// The topic events of this type are published to.
    pub topic: String,
    /// A JSON Schema (draft 2020-12), as a JSON text.
    pub schema: String,
}

impl EventSchema {
    /// The schema of `event_type`, published to `topic`: `schema` (a JSON Schema object)
    /// as a JSON text.
    pub fn new(event_type: &str, topic: &str, schema: &serde_json::Value) -> Self {
        EventSchema {
            event_type: event_type.to_owned(),
            topic: topic.to_owned(),
            schema: schema.to_string(),
        }
    }
}
