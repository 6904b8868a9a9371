//! A mapper built against `pakaura:events@2.0.0`, another major version of the contract
//! (see `wit/events.wit` beside this crate). The host must refuse it at load, naming the file.
//!
//! It calls both host functions so that the component really imports
//! `pakaura:events/host@2.0.0` (wit-component drops imports a module never uses).

use bindings::pakaura::events::host;
use bindings::pakaura::events::types::{Event, MapperInfo, Mutation};

// wit-bindgen's generated ABI glue needs `unsafe` and declares `pub` items in this private
// module; both lints are relaxed here and nowhere else.
#[allow(unsafe_code, unreachable_pub)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "mapper" });

    use super::WrongVersion;
    export!(WrongVersion with_types_in self);
}

struct WrongVersion;

impl bindings::Guest for WrongVersion {
    fn describe() -> MapperInfo {
        host::log(
            host::Level::Info,
            "wrong-version loaded; it should not have been",
        );
        MapperInfo {
            name: host::config("name").unwrap_or_else(|| "wrong-version".to_owned()),
            version: "2.0.0".to_owned(),
            topics: vec!["task-events".to_owned()],
        }
    }

    fn map_mutation(_mutation: Mutation) -> Result<Vec<Event>, String> {
        Ok(Vec::new())
    }
}
