//! The test harness every test target and benchmark driver of this workspace imports:
//! the real host started on port 0 with its own database, stand-ins for what the host
//! talks to, and the assertions the tests share. The tests themselves live in
//! `tests/e2e/` (one binary), `tests/metrics/` and `tests/otel/` (a process each: the
//! metrics recorder and the tracer provider belong to the process), and the benchmark
//! drivers in `examples/`.
//!
//! # Layout
//!
//! - [`app`]: [`TestApp`], the running host, its settings ([`Options`]) and typed
//!   request helpers; bearer tokens for the test users.
//! - [`database`]: [`TestDatabase`], a SQLite file or a fresh PostgreSQL database made
//!   for one test and removed after it, on the [`Backend`] a test names.
//! - [`sidecar`]: [`DaprSink`], a recording Dapr sidecar that speaks the publish
//!   contract and can be told to fail, hang, refuse or go down; [`CountingSidecar`],
//!   a light stand-in for benchmarks.
//! - [`idp`]: a stand-in identity provider: signing keys made per run and a JWKS
//!   server ([`JwksServer`]) that can rotate, withdraw, go down and count requests.
//! - [`assert`]: what tests check again and again (problem documents, dead letters,
//!   the events of one task).
//! - [`kafka`]: a real Kafka-protocol broker per test, the Dapr stand-in that forwards to
//!   it, a real consumer, and what the consumer must have read (`tests/kafka/`).
//! - [`proxy`]: [`PausableProxy`], a TCP proxy that holds all traffic while paused (a
//!   database that stalls without closing a connection).
//! - [`pgcluster`]: [`PgCluster`], a private PostgreSQL cluster a test starts, kills
//!   (`pg_ctl stop -m immediate`) and starts again itself.
//! - [`stuck`]: [`StuckStore`], the publish stage's store of outcomes stuck behind a row
//!   lock on PostgreSQL while the host goes on.
//! - [`guests`]: the paths of the wasm components the tests load.
//! - [`on_both_databases!`]: runs a test once on SQLite and once on PostgreSQL.

pub mod app;
pub mod assert;
pub mod database;
pub mod idp;
pub mod kafka;
pub mod pgcluster;
pub mod proxy;
pub mod sidecar;
pub mod stuck;

pub mod guests {
    //! Absolute paths of the wasm components the tests load, built by `tests/build.rs`.
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

pub use app::{
    ADMIN_TOKEN, JWT_SECRET, Options, TestApp, config_from, spawn_app, spawn_with, start, token_for,
};
pub use assert::{expect_problem, mutations_of, pairs, types_of, wait_for_dead_letters};
pub use database::{Backend, TestDatabase};
pub use idp::{JwksServer, SigningKey, TlsIdentity, claims_for};
pub use pgcluster::PgCluster;
pub use proxy::PausableProxy;
pub use sidecar::{
    Behaviour, CountingSidecar, DaprSink, Recorded, WAIT, bulk_options, dapr_options,
    dapr_options_on, refusing_reminders, sink_behaviour, task_id,
};
pub use stuck::{StuckStore, create_tasks, holding_sidecar};

/// Runs each named `async fn name(backend: Backend)` once per database, as
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}
