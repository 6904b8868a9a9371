//! WAL checkpoints off the commit path, on SQLite.
//!
//! By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages: that
//! commit copies the WAL's pages into the database file and syncs it while every other write
//! (API creations, the relay's batches) waits for the one writer, which shows up as the
//! slowest requests. Here a task on a connection of its own runs a passive checkpoint every
//! [`EVERY`], which copies what no reader still needs and neither waits for nor blocks the
//! writer or the readers.
//!
//! A passive checkpoint from another connection seldom lets the WAL start over under steady
//! writes (the writer must begin just after a checkpoint that copied everything), so the
//! writer keeps a checkpoint of its own as a backstop, at [`WRITER_PAGES`] rather than 1,000:
//! run inside a commit, with the write lock held, it finishes and the next write starts the
//! WAL over, and it has little left to copy since the task copied most of it already. (A
//! `RESTART` or `TRUNCATE` checkpoint from the task instead was measured: it holds the write
//! lock while SQLite's busy handler waits out the readers, and the p99 went from ~25 ms to
//! ~140 ms under wrk.)
//!
//! With `synchronous = NORMAL` a commit reaches the WAL file without a sync; the sync comes
//! with the next checkpoint. So a commit survives the process being killed at once, and a
//! power loss can lose what was committed since the last checkpoint: at most about
//! [`EVERY`] of commits here, where the automatic checkpoint left it to the next 1,000 pages.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, SqlitePool};

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(500);

/// WAL pages at which the writer checkpoints in a commit (4,096 pages: 16 MB at the default
/// page size), should the task's checkpoints not have let the WAL start over.
const WRITER_PAGES: i64 = 4 * 1024;

/// WAL pages past which the WAL is said to be growing (a long read keeps it from starting
/// over).
const WARN_PAGES: i64 = 16 * WRITER_PAGES;

/// The writer's connection setting: its own checkpoints only as a backstop.
pub(super) fn writer_options(opts: SqliteConnectOptions) -> SqliteConnectOptions {
    opts.pragma("wal_autocheckpoint", WRITER_PAGES.to_string())
}

/// Keeps the checkpoint task going: it stops when the last clone is dropped, or when
/// `writer` is closed.
#[derive(Clone, Debug)]
pub(super) struct Checkpoints(#[allow(dead_code)] Arc<()>);

/// Starts checkpointing the database `opts` opens, for as long as the returned handle (or
/// a clone) lives and `writer` is open.
pub(super) fn start(opts: SqliteConnectOptions, writer: SqlitePool) -> Checkpoints {
    let alive = Arc::new(());
    let watched = Arc::downgrade(&alive);
    tokio::spawn(run(opts, writer, watched));
    Checkpoints(alive)
}

async fn run(opts: SqliteConnectOptions, writer: SqlitePool, alive: Weak<()>) {
    let mut conn = match SqliteConnection::connect_with(&opts).await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::error!(error = %e, "SQLite: no connection for WAL checkpoints; the WAL will grow until restart");
            return;
        }
    };
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        tick.tick().await;
        if alive.strong_count() == 0 || writer.is_closed() {
            break;
        }
        let done: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await;
        match done {
            Ok((_, log, _)) => {
                if log > WARN_PAGES && !warned {
                    tracing::warn!(
                        wal_pages = log,
                        "SQLite: the WAL keeps growing (a long read holds it?)"
                    );
                }
                warned = log > WARN_PAGES;
            }
            Err(e) if writer.is_closed() => {
                tracing::debug!(error = %e, "SQLite: checkpoint at shutdown");
            }
            Err(e) => tracing::warn!(error = %e, "SQLite: WAL checkpoint failed; trying again"),
        }
    }
    let _ = conn.close().await;
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::store::Db;

    /// In WAL mode only a checkpoint writes the database file itself; a few hundred pages of
    /// WAL are far below the writer's backstop, so the file grows only if the checkpointing
    /// task runs.
    #[tokio::test]
    async fn the_wal_is_checkpointed_by_its_own_task() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let db = Db::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let Db::Sqlite(sqlite) = &db else {
            unreachable!()
        };
        let (pages,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
            .fetch_one(sqlite.writer())
            .await
            .unwrap();
        assert_eq!(
            pages,
            super::WRITER_PAGES,
            "the writer checkpoints only as a backstop"
        );

        // Let the migrations' pages reach the file, then write more.
        tokio::time::sleep(2 * super::EVERY).await;
        let before = std::fs::metadata(&path).unwrap().len();
        let mut tx = sqlite.writer().begin().await.unwrap();
        for i in 0..2_000 {
            sqlx::query(
                "INSERT INTO outbox (id, task_id, user_id, action, mutation, created_at) \
                         VALUES ($1, $2, 'u', 'created', $3, '2026-01-01T00:00:00.000Z')",
            )
            .bind(uuid::Uuid::new_v4())
            .bind(uuid::Uuid::new_v4())
            .bind(format!("{{\"n\": {i}, \"pad\": \"{}\"}}", "x".repeat(200)))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::metadata(&path).unwrap().len() <= before {
            assert!(
                Instant::now() < deadline,
                "the WAL was never checkpointed into the file"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        db.close().await;
    }

    /// Under steady writes the task's passive checkpoints seldom let the WAL start over; the
    /// writer's backstop does. 80 MB and more go through the WAL back to back; its file stays
    /// near the backstop's 16 MB (it would hold all of it otherwise).
    #[tokio::test]
    async fn the_wal_stays_bounded_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let db = Db::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let Db::Sqlite(sqlite) = &db else {
            unreachable!()
        };
        let pad = "x".repeat(3_000);
        // A row of 3 KB and its index entries: two pages or more per commit.
        for n in 0..10_000 {
            sqlx::query(
                "INSERT INTO outbox (id, task_id, user_id, action, mutation, created_at) \
                         VALUES ($1, $2, 'u', 'created', $3, '2026-01-01T00:00:00.000Z')",
            )
            .bind(uuid::Uuid::new_v4())
            .bind(uuid::Uuid::new_v4())
            .bind(format!("{{\"n\": {n}, \"pad\": \"{pad}\"}}"))
            .execute(sqlite.writer())
            .await
            .unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("w.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(wal < 32 * 1024 * 1024, "the WAL grew to {wal} bytes");
        db.close().await;
    }
}
