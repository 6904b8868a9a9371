//! A publish stage whose store of outcomes is stuck, on PostgreSQL: another session holds
//! a row lock on one task's envelopes while the sidecar holds that task's first publish,
//! so the transaction recording its outcome waits for the lock, and every outcome after it
//! waits behind that transaction, until the lock is let go.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};

use crate::{Behaviour, DaprSink, Options, TestApp, WAIT, sink_behaviour, task_id};

/// How long the sidecar holds the first publish: the lock is taken meanwhile.
const HELD_FOR: Duration = Duration::from_secs(2);
/// Past the second after which the host's writer takes a store as stalled.
const STALLED: Duration = Duration::from_millis(1_500);

/// Transactions of this database that wait for a row lock while marking envelopes.
const MARKS_WAITING: &str = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
     AND wait_event_type = 'Lock' AND query LIKE 'UPDATE envelopes%'";

/// A sidecar that holds the next publish for a while, and the options of a host publishing
/// to it (a publish timeout beyond that while; a database timeout beyond the test, so that
/// the stuck transaction waits instead of failing and being tried again).
pub async fn holding_sidecar() -> (DaprSink, Options) {
    let sink = DaprSink::start(Behaviour {
        hang_next: 1,
        hang_for: HELD_FOR,
        ..sink_behaviour()
    })
    .await;
    let options = crate::dapr_options(&sink)
        .set("DAPR_PUBLISH_TIMEOUT", "5s")
        .set("DATABASE_TIMEOUT", "1m");
    (sink, options)
}

/// The lock that keeps the store stuck; [`StuckStore::release`] lets it go.
pub struct StuckStore {
    locker: PgConnection,
    watcher: PgConnection,
}

impl StuckStore {
    /// On a host started with [`holding_sidecar`]'s options and before anything else was
    /// published: creates a task, locks its envelopes while its first publish is held, and
    /// returns once the transaction recording that publish's outcome has waited for the
    /// lock long enough to count as stalled.
    pub async fn hold(app: &TestApp, sink: &DaprSink) -> Self {
        assert!(
            app.database.url.starts_with("postgres"),
            "row locks from another session: PostgreSQL only"
        );
        let first = task_id(app, "alice", json!({"title": "its outcome waits"})).await;
        let mut locker = PgConnection::connect(&app.database.url).await.unwrap();
        let watcher = PgConnection::connect(&app.database.url).await.unwrap();
        locker.execute("BEGIN").await.unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let locked =
                sqlx::query("SELECT seq FROM envelopes WHERE task_id = $1::uuid FOR UPDATE")
                    .bind(&first)
                    .fetch_all(&mut locker)
                    .await
                    .unwrap();
            if locked.len() == 2 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {first} was never mapped"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            sink.requests().is_empty(),
            "the lock came after the first publish was answered: the store is not stuck"
        );
        let mut stuck = Self { locker, watcher };
        let deadline = tokio::time::Instant::now() + WAIT;
        while stuck.marks_waiting().await == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the publish outcome's transaction never waited for the lock"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(STALLED).await;
        stuck
    }

    /// Transactions marking envelopes that wait for a row lock now.
    pub async fn marks_waiting(&mut self) -> i64 {
        sqlx::query_scalar(MARKS_WAITING)
            .fetch_one(&mut self.watcher)
            .await
            .unwrap()
    }

    /// Lets the lock go: the stuck transaction goes on.
    pub async fn release(mut self) {
        self.locker.execute("ROLLBACK").await.unwrap();
    }
}

/// Creates `n` tasks for alice, 16 requests at a time.
pub async fn create_tasks(app: &TestApp, n: usize) {
    futures::stream::iter(0..n)
        .map(|i| task_id(app, "alice", json!({ "title": format!("task {i}") })))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}
