//! A candidate mapper that maps exactly as the built-in default does: the same catalogue,
//! name, version, topics and schemas, built as a component of its own (so its SHA-256
//! differs from the built-in's). A history diff of it must find nothing.

use default_catalogue::catalogue;
use default_catalogue::types::{Event, EventSchema, MapperInfo, Mutation};
use pakaura_mapper_types::component::Mapper;

struct Identical;

impl Mapper for Identical {
    fn describe() -> MapperInfo {
        default_catalogue::describe(None)
    }

    fn map_mutation(mutation: Mutation) -> Result<Vec<Event>, String> {
        catalogue::map_mutation(&mutation)
    }

    fn event_schemas() -> Vec<EventSchema> {
        catalogue::event_schemas()
    }
}

pakaura_mapper_types::export_mapper!(Identical);
