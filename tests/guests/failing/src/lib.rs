//! A candidate mapper that maps as the built-in default does (same name, version, topics,
//! schemas and events) except that it returns an error, [`REASON`], for every `deleted`
//! mutation: a history diff or shadow run of it must report those failures, and nothing it
//! does may reach the outbox, the dead letters or the sidecar.

use default_catalogue::catalogue;
use default_catalogue::types::{Action, Event, EventSchema, MapperInfo, Mutation};
use pakaura_mapper_types::component::Mapper;

/// The error every `deleted` mutation gets.
pub const REASON: &str = "this candidate cannot map deleted tasks";

struct Failing;

impl Mapper for Failing {
    fn describe() -> MapperInfo {
        default_catalogue::describe(None)
    }

    fn map_mutation(mutation: Mutation) -> Result<Vec<Event>, String> {
        if mutation.action == Action::Deleted {
            return Err(REASON.to_owned());
        }
        catalogue::map_mutation(&mutation)
    }

    fn event_schemas() -> Vec<EventSchema> {
        catalogue::event_schemas()
    }
}

pakaura_mapper_types::export_mapper!(Failing);
