//! The component glue: exports the mapping as the `pakaura:events/typed-mapper` world.
//!
//! Only this module sees wit-bindgen's generated types and calls the host: it reads the
//! `tenant` setting through `host.config`, delegates to the plain mapping in `lib.rs` and
//! logs one line per mutation through `host.log`.

use bindings::pakaura::events::host::{self, Level};
use bindings::pakaura::events::types::{Action, Event, EventSchema, MapperInfo, Mutation};

mod bindings {
    // `wit/events.wit` in this project: the contract, as the host's `pakaura mapper new`
    // wrote it. Never edit it; take the new file from the host when the contract changes.
    wit_bindgen::generate!({ path: "wit", world: "typed-mapper" });

    use super::Component;
    export!(Component with_types_in self);
}

struct Component;

impl bindings::Guest for Component {
    /// Called once, when the host loads the component.
    fn describe() -> MapperInfo {
        let (name, version, topics) = crate::describe();
        MapperInfo {
            name,
            version,
            topics,
        }
    }

    /// Called once per committed mutation; `Err` makes it a dead letter.
    fn map_mutation(mutation: Mutation) -> Result<Vec<Event>, String> {
        let action = match mutation.action {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Completed => "completed",
            Action::Uncompleted => "uncompleted",
            Action::Deleted => "deleted",
        };
        let input = crate::Input {
            task_id: &mutation.task.id,
            action,
            title: &mutation.task.title,
            changed: mutation.changes.iter().map(|c| c.field.as_str()).collect(),
            occurred_at: &mutation.occurred_at,
        };
        let tenant = host::config(crate::TENANT_KEY);
        let out = crate::map(&input, tenant.as_deref())?;
        host::log(
            Level::Debug,
            &format!("mutation {} ({action}) of task {}", mutation.id, mutation.task.id),
        );
        Ok(vec![Event {
            topic: crate::TOPIC.to_owned(),
            event_type: out.event_type,
            subject: Some(mutation.task.id.clone()),
            data: out.data,
            data_schema: None,
            extensions: vec![("tenant".to_owned(), out.tenant)],
            // None: the host uses the task id, so one task's events stay in order.
            partition_key: None,
        }])
    }

    /// Called once, when the host loads the component, after `describe`.
    fn event_schemas() -> Vec<EventSchema> {
        crate::event_schemas()
            .into_iter()
            .map(|(event_type, schema)| EventSchema {
                event_type,
                topic: crate::TOPIC.to_owned(),
                schema,
            })
            .collect()
    }
}
