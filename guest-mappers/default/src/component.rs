//! The component glue: exports the catalogue as the `pakaura:events/typed-mapper` world through the
//! glue every mapper shares ([`pakaura_mapper_types::component`]).

use crate::{catalogue, types};

struct DefaultMapper;

impl types::component::Mapper for DefaultMapper {
    fn describe() -> types::MapperInfo {
        catalogue::describe()
    }

    fn map_mutation(mutation: types::Mutation) -> Result<Vec<types::Event>, String> {
        catalogue::map_mutation(&mutation)
    }

    fn event_schemas() -> Vec<types::EventSchema> {
        catalogue::event_schemas()
    }
}

pakaura_mapper_types::export_mapper!(DefaultMapper);
