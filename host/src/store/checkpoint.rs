//! WAL checkpoints off the commit path, on SQLite.
//!
//! By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages: that
//! commit copies the WAL's pages into the database file and syncs it while every other write
//! (API creations, the relay's batches) waits for the one writer, which shows up as the
//! slowest requests. Here the writer never checkpoints (`wal_autocheckpoint = 0`); a task on a
//! connection of its own runs a passive checkpoint every [`EVERY`], which copies what no
//! reader still needs and neither waits for nor blocks the writer or the readers. Durability
//! is unchanged: a commit is durable once in the WAL (see the README), checkpointed or not.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, SqlitePool};

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(500);

/// WAL pages past which a checkpoint that keeps falling short is worth a warning (64k pages:
/// about 256 MB at the default page size).
const WARN_PAGES: i64 = 64 * 1024;

/// The writer's connection setting that leaves checkpoints to [`start`].
pub(super) fn writer_options(opts: SqliteConnectOptions) -> SqliteConnectOptions {
    opts.pragma("wal_autocheckpoint", "0")
}

/// Starts checkpointing the database `opts` opens until `writer` is closed.
pub(super) fn start(opts: SqliteConnectOptions, writer: SqlitePool) {
    tokio::spawn(async move {
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
        while !writer.is_closed() {
            tick.tick().await;
            let done: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&mut conn)
                .await;
            match done {
                Ok((_, log, checkpointed)) => {
                    let behind = log - checkpointed;
                    if behind > WARN_PAGES && !warned {
                        tracing::warn!(
                            wal_pages = log,
                            checkpointed,
                            "SQLite: the WAL is not being checkpointed (a long read holds it?)"
                        );
                    }
                    warned = behind > WARN_PAGES;
                }
                Err(e) if writer.is_closed() => {
                    tracing::debug!(error = %e, "SQLite: checkpoint at shutdown");
                }
                Err(e) => tracing::warn!(error = %e, "SQLite: WAL checkpoint failed; trying again"),
            }
        }
        let _ = conn.close().await;
    });
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::store::Db;

    /// In WAL mode only a checkpoint writes the database file itself; the writer never
    /// checkpoints, and a few hundred pages of WAL are far below the automatic threshold, so
    /// the file grows only if the checkpointing task runs.
    #[tokio::test]
    async fn the_wal_is_checkpointed_by_its_own_task_and_never_by_the_writer() {
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
        assert_eq!(pages, 0, "the writer leaves checkpoints to the task");

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
}
