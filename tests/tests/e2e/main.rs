//! End-to-end tests: the real host on port 0 with its own database (each test runs
//! on SQLite and on PostgreSQL), real mapper components and a recording Dapr sidecar.

mod auth;
mod candidates;
mod chaos;
mod console;
mod delivery;
mod edges;
mod fuzz;
mod golden;
mod idp;
pub(crate) mod mcp;
mod ops;
mod outbox;
mod pipeline;
mod polyglot;
mod relay;
mod replay;
mod sandbox;
mod schemas;
mod tasks;
mod vacuum;
