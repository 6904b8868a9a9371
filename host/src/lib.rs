//! Pakaura event host: a task (to-do) REST API whose every mutation is recorded in a
//! transactional outbox, mapped to events by sandboxed WebAssembly components and
//! published as CloudEvents through the Dapr sidecar.
//!
//! # Layout
//!
//! - [`domain`]: tasks, mutations and their validated parts.
//! - [`tasks`]: the task service, the operations REST and MCP share.
//! - [`operator`]: the operator's service, what the admin API and the console do.
//! - [`store`]: SQLite/PostgreSQL storage of tasks and the outbox.
//! - [`http`]: the REST API, MCP, operations and admin surfaces.
//! - [`auth`]: bearer JWTs (a shared secret, an identity provider's JWKS) and the admin token.
//! - [`mapper`]: the WebAssembly mapper runtime (wasmtime, WIT `pakaura:events`).
//! - [`events`]: CloudEvents envelopes; [`trace`]: W3C trace context.
//! - [`candidate`]: candidate mappers: history diffs, shadow runs, promotion and rollback.
//! - [`relay`]: the outbox relay and the publishers behind its seam (Dapr).
//! - [`instruments`]: the exported metrics, their help texts and buckets.
//! - [`config`], [`startup`], [`telemetry`], [`cli`]: process plumbing.

pub mod auth;
pub mod candidate;
pub mod cli;
pub mod config;
pub mod domain;
pub mod events;
pub mod http;
pub mod instruments;
pub mod mapper;
pub mod operator;
pub mod relay;
pub mod startup;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod trace;
