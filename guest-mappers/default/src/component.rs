//! The component glue: exports the catalogue as the `pakaura:events/mapper` world through the
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
}

pakaura_mapper_types::export_mapper!(DefaultMapper);
