//! The mapper runtime: loads WebAssembly mapper components, runs them in a sandbox
//! and validates what they return.
//!
//! A mapper is a component implementing the WIT world `pakaura:events/mapper@1.x`
//! (`wit/events.wit`), optionally as `typed-mapper` (1.1.0), which adds the export
//! `event-schemas`. The host compiles each component once, asks it to `describe`
//! itself and for its payload schemas, and then calls `map-mutation` once per committed mutation in
//! a fresh, empty sandbox with a CPU deadline and a memory cap.
//!
//! # Layout
//!
//! - [`config`]: [`MapperConfig`], the operator's settings of the runtime;
//!   [`limits`](Limits) derived from it; [`settings`]: the per-mapper values a
//!   component reads with `host.config`.
//! - [`topic`]: [`TopicName`], a validated Kafka topic name.
//! - `bindings`: the one `bindgen!` of the WIT world.
//! - `runtime`: the engine, its epoch ticker and the linker.
//! - `sandbox`: what a call runs in: the linker's imports, the per-call store with its
//!   limiter, clock, captured stdio and the host side of the `host` interface.
//! - `builtin`: the embedded default mapper.
//! - `inspect`, `load`: checking a component against the contract and loading it.
//! - `call`, `convert`, `validate`, [`event`]: one sandboxed call, the domain/WIT
//!   conversion, the output rules and the [`MappedEvent`] they produce.
//! - [`set`], [`registry`]: the ordered set of loaded mappers and the
//!   hot-swappable registry that holds the current set.
//! - [`schema`]: the declared payload schemas, compiled ([`SchemaSet`]), checked under
//!   [`SchemaMode`] (`MAPPER_SCHEMAS`), and their published URL.
//! - [`asyncapi`]: the AsyncAPI 3.0 document of a set (channels = topics, messages = the
//!   declared event types and their schemas).
//! - [`error`]: [`LoadError`], [`MapError`] and their reasons.
//!
//! # Calling convention
//!
//! Mapping is synchronous and CPU-bound (at most one deadline per mapper). Call
//! [`MapperSet::map`] from a blocking thread (`tokio::task::spawn_blocking`), never
//! directly on an async worker thread: WASI host calls may enter the Tokio runtime.

pub mod asyncapi;
mod bindings;
mod builtin;
mod call;
pub mod config;
mod convert;
pub mod diff;
pub mod error;
pub mod event;
mod inspect;
mod limits;
mod load;
pub mod registry;
mod runtime;
mod sandbox;
pub mod schema;
pub mod set;
pub mod settings;
mod stats;
pub mod topic;
mod validate;

pub use builtin::{BUILTIN_DEFAULT, DEFAULT_MAPPER_WASM};
pub use config::MapperConfig;
pub use error::{LoadError, MapError, MapFailure, Refusal};
pub use event::MappedEvent;
pub use limits::Limits;
pub use load::{LoadedMapper, MapperListing, MapperSource, check_mapper_name};
pub use registry::{MapperRegistry, PublishedSchema, ReloadRecord, ReloadReport};
pub use runtime::{MapperRuntime, RuntimeOptions};
pub use schema::{SchemaMode, SchemaSet, Violation};
pub use set::MapperSet;
pub use settings::{Settings, SettingsError, SettingsTable};
pub use stats::CallStatsSnapshot;
pub use topic::TopicName;
