//! A candidate mapper: the built-in default's name, topics, event types and events, except
//! that `task.created` carries the task's title as `name` instead of `title` (its payload
//! schema says so too: a breaking change the compatibility gate reports). Every other event,
//! `reminder.scheduled` of the same mutation included, is the default's own.
//!
//! Its version is the default's, so the `dataschema` the host gives each event (a URL naming
//! the mapper's version) stays the same and the rename is the only difference; `host.config`
//! `version` sets another.

use default_catalogue::types::{Event, EventSchema, MapperInfo, Mutation};
use default_catalogue::{catalogue, rename_in_schema, rename_property};
use pakaura_mapper_types::component::{Mapper, config};

/// The one event type whose data changes.
pub const EVENT_TYPE: &str = "task.created";
/// The property renamed.
pub const FROM: &str = "title";
/// Its new name.
pub const TO: &str = "name";

struct Renamed;

impl Mapper for Renamed {
    fn describe() -> MapperInfo {
        default_catalogue::describe(config("version"))
    }

    fn map_mutation(mutation: Mutation) -> Result<Vec<Event>, String> {
        let mut events = catalogue::map_mutation(&mutation)?;
        for event in events.iter_mut().filter(|e| e.event_type == EVENT_TYPE) {
            rename_property(event, FROM, TO)?;
        }
        Ok(events)
    }

    fn event_schemas() -> Vec<EventSchema> {
        let mut schemas = catalogue::event_schemas();
        for schema in schemas.iter_mut().filter(|s| s.event_type == EVENT_TYPE) {
            rename_in_schema(schema, FROM, TO).expect("the catalogue's schemas are JSON");
        }
        schemas
    }
}

pakaura_mapper_types::export_mapper!(Renamed);
