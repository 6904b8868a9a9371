//! Pakaura's default mapper component: the event catalogue of the backend event publishing plan.
//!
//! # Layout
//!
//! - [`types`]: plain Rust mirrors of the WIT records (`wit/events.wit`), re-exported from
//!   the workspace's `pakaura-mapper-types` crate, which both mappers share.
//! - [`catalogue`]: the mapping itself, over those types; it builds and tests natively, and
//!   the host's benchmark links it to compare the component with native code.
//! - `component` (wasm32 only): the wit-bindgen glue that exports the catalogue as the
//!   `pakaura:events/mapper` world.

pub mod catalogue;
pub use pakaura_mapper_types as types;

#[cfg(target_arch = "wasm32")]
mod component;
