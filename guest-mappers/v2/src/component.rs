//! The component glue: exports the v2 mapping as the `pakaura:events/mapper` world.
//!
//! Only this module sees wit-bindgen's generated types and calls the host: it reads the
//! settings through `host.config`, converts the mutation, delegates to [`crate::catalogue`]
//! and logs one debug line per mapping through `host.log`.

use crate::{catalogue, types};
use bindings::pakaura::events::host;
use bindings::pakaura::events::types as wit;

// wit-bindgen's generated ABI glue needs `unsafe` and declares `pub` items in this private
// module; both lints are relaxed here and nowhere else.
#[allow(unsafe_code, unreachable_pub)]
mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "mapper" });

    use super::Component;
    export!(Component with_types_in self);
}

struct Component;

impl bindings::Guest for Component {
    fn describe() -> wit::MapperInfo {
        let info = catalogue::describe();
        wit::MapperInfo {
            name: info.name,
            version: info.version,
            topics: info.topics,
        }
    }

    fn map_mutation(mutation: wit::Mutation) -> Result<Vec<wit::Event>, String> {
        let settings = catalogue::Settings::from_config(host::config);
        let mutation = types::Mutation::from(mutation);
        let result = catalogue::map_mutation(&mutation, &settings);
        let outcome = match &result {
            Ok(events) => format!("{} event(s)", events.len()),
            Err(reason) => format!("refused: {reason}"),
        };
        host::log(
            host::Level::Debug,
            &format!(
                "mutation {} ({}) of task {}: {outcome}",
                mutation.id,
                mutation.action.as_str(),
                mutation.task.id
            ),
        );
        Ok(result?.into_iter().map(Into::into).collect())
    }
}

impl From<wit::Mutation> for types::Mutation {
    fn from(m: wit::Mutation) -> Self {
        types::Mutation {
            id: m.id,
            action: match m.action {
                wit::Action::Created => types::Action::Created,
                wit::Action::Updated => types::Action::Updated,
                wit::Action::Completed => types::Action::Completed,
                wit::Action::Uncompleted => types::Action::Uncompleted,
                wit::Action::Deleted => types::Action::Deleted,
            },
            task: types::Task {
                id: m.task.id,
                user_id: m.task.user_id,
                title: m.task.title,
                description: m.task.description,
                completed: m.task.completed,
                due_date: m.task.due_date,
                created_at: m.task.created_at,
                updated_at: m.task.updated_at,
            },
            changes: m
                .changes
                .into_iter()
                .map(|c| types::FieldChange {
                    field: c.field,
                    old_value: c.old_value,
                    new_value: c.new_value,
                })
                .collect(),
            origin: match m.origin {
                wit::Origin::Rest => types::Origin::Rest,
                wit::Origin::Mcp => types::Origin::Mcp,
                wit::Origin::System => types::Origin::System,
            },
            correlation_id: m.correlation_id,
            occurred_at: m.occurred_at,
        }
    }
}

impl From<types::Event> for wit::Event {
    fn from(e: types::Event) -> Self {
        wit::Event {
            topic: e.topic,
            event_type: e.event_type,
            subject: e.subject,
            data: e.data,
            data_schema: e.data_schema,
            extensions: e.extensions,
            partition_key: e.partition_key,
        }
    }
}
