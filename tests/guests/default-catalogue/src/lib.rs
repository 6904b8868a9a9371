//! The default mapper's event catalogue for the candidate guests (`renamed`, `identical`,
//! `failing`): `guest-mappers/default/src/catalogue.rs` compiled from its own source, so a
//! candidate maps exactly as the built-in default does today, whatever the catalogue becomes.
//!
//! The default mapper's crate cannot be a dependency: on `wasm32` it exports the mapper world
//! itself, and a guest linking it would export the world twice. Its catalogue module is plain
//! Rust over [`types`] and is included here with `#[path]` instead.
//!
//! Also here: [`rename_property`] and [`rename_in_schema`], which the `renamed` guest applies
//! to one event type's payload and schema.

pub use pakaura_mapper_types as types;

#[path = "../../../../guest-mappers/default/src"]
#[allow(dead_code, unreachable_pub)]
mod shipped {
    pub mod catalogue;
}

pub use shipped::catalogue;

use serde_json::{Map, Value};
use types::{Event, EventSchema};

/// The default mapper's manifest. The catalogue's `describe` takes the version from
/// `CARGO_PKG_VERSION`, which compiled here is this crate's own: the default's is read from
/// its manifest instead.
const DEFAULT_MANIFEST: &str = include_str!("../../../../guest-mappers/default/Cargo.toml");

/// The built-in default mapper's version (its package version).
pub fn default_version() -> &'static str {
    DEFAULT_MANIFEST
        .lines()
        .find_map(|line| line.strip_prefix("version = \"")?.strip_suffix('"'))
        .expect("guest-mappers/default/Cargo.toml names its version")
}

/// The default mapper's name, version and topics, with `version` when given.
pub fn describe(version: Option<String>) -> types::MapperInfo {
    let mut info = catalogue::describe();
    info.version = version.unwrap_or_else(|| default_version().to_owned());
    info
}

/// Renames the top-level property `from` of `event`'s data to `to`, keeping its value.
/// Data without `from` is left as it is.
pub fn rename_property(event: &mut Event, from: &str, to: &str) -> Result<(), String> {
    let mut data: Map<String, Value> = serde_json::from_str(&event.data)
        .map_err(|e| format!("{} data is not a JSON object: {e}", event.event_type))?;
    if let Some(value) = data.remove(from) {
        data.insert(to.to_owned(), value);
        event.data = Value::Object(data).to_string();
    }
    Ok(())
}

/// Renames the property `from` to `to` in `schema` (an object schema): under `properties`
/// and in `required`.
pub fn rename_in_schema(schema: &mut EventSchema, from: &str, to: &str) -> Result<(), String> {
    let mut root: Value = serde_json::from_str(&schema.schema)
        .map_err(|e| format!("the {} schema is not JSON: {e}", schema.event_type))?;
    if let Some(properties) = root.get_mut("properties").and_then(Value::as_object_mut)
        && let Some(property) = properties.remove(from)
    {
        properties.insert(to.to_owned(), property);
    }
    if let Some(required) = root.get_mut("required").and_then(Value::as_array_mut) {
        for name in required.iter_mut().filter(|name| *name == from) {
            *name = Value::from(to);
        }
    }
    schema.schema = root.to_string();
    Ok(())
}
