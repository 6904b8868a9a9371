//! The component glue the three `shapes` guests share (each includes it with `#[path]`): the
//! `typed-mapper` world, one `shape.changed` event on `task-events` per mutation whose data
//! is the crate's `data(...)` (or the text of config `data`, to break the schema on
//! purpose), and the crate's `SCHEMAS` as `event-schemas` (config `schema` replaces the
//! first one's text, to declare an unusable schema on purpose). `describe`: name `shapes`
//! (config `name` overrides), version the crate's `VERSION`.

// wit-bindgen's generated ABI glue needs `unsafe` and declares `pub` items in this private
// module; both lints are relaxed here and nowhere else.
#[allow(unsafe_code, unreachable_pub)]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "typed-mapper" });

    use super::Shapes;
    export!(Shapes with_types_in self);
}

use bindings::pakaura::events::host::config;
use bindings::pakaura::events::types::{Event, EventSchema, MapperInfo, Mutation};

struct Shapes;

impl bindings::Guest for Shapes {
    fn describe() -> MapperInfo {
        MapperInfo {
            name: config("name").unwrap_or_else(|| "shapes".to_owned()),
            version: crate::VERSION.to_owned(),
            topics: vec!["task-events".to_owned()],
        }
    }

    fn map_mutation(mutation: Mutation) -> Result<Vec<Event>, String> {
        let data = config("data").unwrap_or_else(|| {
            crate::data(
                &json_string(&mutation.task.id),
                &json_string(&mutation.task.title),
                &json_string(&mutation.task.user_id),
            )
        });
        Ok(vec![Event {
            topic: "task-events".to_owned(),
            event_type: "shape.changed".to_owned(),
            subject: Some(mutation.task.id),
            data,
            data_schema: None,
            extensions: Vec::new(),
            partition_key: None,
        }])
    }

    fn event_schemas() -> Vec<EventSchema> {
        let first = config("schema");
        crate::SCHEMAS
            .iter()
            .enumerate()
            .map(|(i, (event_type, schema))| EventSchema {
                event_type: (*event_type).to_owned(),
                topic: "task-events".to_owned(),
                schema: match (i, &first) {
                    (0, Some(text)) => text.clone(),
                    _ => (*schema).to_owned(),
                },
            })
            .collect()
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
