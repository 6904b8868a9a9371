//! The component glue: exports the v2 mapping as the `pakaura:events/typed-mapper` world through the
//! glue every mapper shares ([`pakaura_mapper_types::component`]). It reads the settings
//! through `host.config`, delegates to [`crate::catalogue`] and logs one debug line per
//! mapping through `host.log`.

use crate::{catalogue, types};
use types::component::{Level, Mapper, config, log};

struct V2Mapper;

impl Mapper for V2Mapper {
    fn describe() -> types::MapperInfo {
        catalogue::describe()
    }

    fn map_mutation(mutation: types::Mutation) -> Result<Vec<types::Event>, String> {
        let settings = catalogue::Settings::from_config(|key| config(key));
        let result = catalogue::map_mutation(&mutation, &settings);
        let outcome = match &result {
            Ok(events) => format!("{} event(s)", events.len()),
            Err(reason) => format!("refused: {reason}"),
        };
        log(
            Level::Debug,
            &format!(
                "mutation {} ({}) of task {}: {outcome}",
                mutation.id,
                mutation.action.as_str(),
                mutation.task.id
            ),
        );
        result
    }

    fn event_schemas() -> Vec<types::EventSchema> {
        catalogue::event_schemas()
    }
}

pakaura_mapper_types::export_mapper!(V2Mapper);
