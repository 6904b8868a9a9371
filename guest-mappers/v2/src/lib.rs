//! An example Pakaura mapper that evolves the event schema: versioned CloudEvents types,
//! one topic, a full task snapshot in the payload, a published `dataschema` and a
//! `schemaversion` extension. Ship it next to (or instead of) the default mapper.
//!
//! # Layout
//!
//! - [`types`]: plain Rust mirrors of the WIT records (`wit/events.wit`), re-exported from
//!   the workspace's `pakaura-mapper-types` crate, which both mappers share.
//! - [`catalogue`]: the v2 mapping over those types, with its [`catalogue::Settings`];
//!   it builds and tests natively.
//! - `component` (wasm32 only): the wit-bindgen glue that reads the settings through
//!   `host.config`, logs through `host.log` and exports the `pakaura:events/mapper` world.

pub mod catalogue;
pub use pakaura_mapper_types as types;

#[cfg(target_arch = "wasm32")]
mod component;
