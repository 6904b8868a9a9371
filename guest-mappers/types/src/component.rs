//! The component side of the contract, shared by every Rust mapper of this workspace: the one
//! `wit_bindgen::generate!` of the `pakaura:events/typed-mapper` world (the `mapper` world plus
//! the export that declares each event type's schema), the conversions between its
//! generated records and the plain types of this crate, the `host` imports, and
//! [`export_mapper!`](crate::export_mapper), which exports a [`Mapper`] as the world.
//!
//! Only compiled for `wasm32` targets: natively, mappers are plain Rust over [`crate`]'s types.

use crate::{Action, Event, EventSchema, FieldChange, MapperInfo, Mutation, Origin, Task};

/// wit-bindgen's generated bindings. Its ABI glue needs `unsafe` and declares `pub` items the
/// crate does not re-export; both lints are relaxed here and nowhere else.
#[doc(hidden)]
#[allow(unsafe_code, unreachable_pub, missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "typed-mapper",
        // The export macro is used from the mapper crates, which name this module by path.
        pub_export_macro: true,
        export_macro_name: "__export_mapper_world",
        default_bindings_module: "pakaura_mapper_types::component::bindings",
    });
}

use bindings::pakaura::events::{host as wit_host, types as wit};

/// A mapper written over the plain types of this crate. [`export_mapper!`](crate::export_mapper)
/// turns an implementation into the component's exports.
pub trait Mapper {
    /// Names the mapper and declares its topics (WIT `describe`).
    fn describe() -> MapperInfo;

    /// Maps one mutation to its events, or refuses it with a reason (WIT `map-mutation`).
    fn map_mutation(mutation: Mutation) -> Result<Vec<Event>, String>;

    /// The JSON Schema of every event type the mapper may emit (WIT `event-schemas`). The
    /// default declares none: the host then validates nothing and publishes no schema.
    fn event_schemas() -> Vec<EventSchema> {
        Vec::new()
    }
}

/// Exports `$mapper` (a type implementing [`Mapper`]) as the `pakaura:events/typed-mapper` world.
///
/// Use it once, in the mapper crate's wasm-only module: `pakaura_mapper_types::export_mapper!(MyMapper);`
#[macro_export]
macro_rules! export_mapper {
    ($mapper:ty) => {
        const _: () = {
            struct __PakauraMapperExport;

            impl $crate::component::bindings::Guest for __PakauraMapperExport {
                fn describe() -> $crate::component::bindings::pakaura::events::types::MapperInfo {
                    $crate::component::to_wit_info(<$mapper as $crate::component::Mapper>::describe())
                }

                fn map_mutation(
                    mutation: $crate::component::bindings::pakaura::events::types::Mutation,
                ) -> Result<::std::vec::Vec<$crate::component::bindings::pakaura::events::types::Event>, ::std::string::String>
                {
                    let events = <$mapper as $crate::component::Mapper>::map_mutation(mutation.into())?;
                    Ok(events.into_iter().map(::std::convert::Into::into).collect())
                }

                fn event_schemas() -> ::std::vec::Vec<$crate::component::bindings::pakaura::events::types::EventSchema> {
                    <$mapper as $crate::component::Mapper>::event_schemas()
                        .into_iter()
                        .map(::std::convert::Into::into)
                        .collect()
                }
            }

            $crate::component::bindings::__export_mapper_world!(__PakauraMapperExport with_types_in $crate::component::bindings);
        };
    };
}

/// A level of the host's log (WIT `host.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Finest detail.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

/// Writes a line to the host's structured log, tagged with the mapper's name (WIT `host.log`).
pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => wit_host::Level::Trace,
        Level::Debug => wit_host::Level::Debug,
        Level::Info => wit_host::Level::Info,
        Level::Warn => wit_host::Level::Warn,
        Level::Error => wit_host::Level::Error,
    };
    wit_host::log(level, message);
}

/// A setting the operator configured for this mapper, if any (WIT `host.config`).
pub fn config(key: &str) -> Option<String> {
    wit_host::config(key)
}

#[doc(hidden)]
pub fn to_wit_info(info: MapperInfo) -> wit::MapperInfo {
    wit::MapperInfo {
        name: info.name,
        version: info.version,
        topics: info.topics,
    }
}

impl From<wit::Mutation> for Mutation {
    fn from(m: wit::Mutation) -> Self {
        Mutation {
            id: m.id,
            action: match m.action {
                wit::Action::Created => Action::Created,
                wit::Action::Updated => Action::Updated,
                wit::Action::Completed => Action::Completed,
                wit::Action::Uncompleted => Action::Uncompleted,
                wit::Action::Deleted => Action::Deleted,
            },
            task: Task {
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
                .map(|c| FieldChange {
                    field: c.field,
                    old_value: c.old_value,
                    new_value: c.new_value,
                })
                .collect(),
            origin: match m.origin {
                wit::Origin::Rest => Origin::Rest,
                wit::Origin::Mcp => Origin::Mcp,
                wit::Origin::System => Origin::System,
            },
            correlation_id: m.correlation_id,
            occurred_at: m.occurred_at,
        }
    }
}

impl From<EventSchema> for wit::EventSchema {
    fn from(s: EventSchema) -> Self {
        wit::EventSchema {
            event_type: s.event_type,
            topic: s.topic,
            schema: s.schema,
        }
    }
}

impl From<Event> for wit::Event {
    fn from(e: Event) -> Self {
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
