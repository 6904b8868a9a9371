//! SQLite WAL checkpoints off the write path.
//!
//! In WAL mode every commit appends the pages it changed to the `-wal` file, and a
//! checkpoint copies them back into the database file. By default SQLite checkpoints inside
//! the commit that takes the WAL past 1,000 pages: that commit returns only after copying
//! them and syncing both files, and since it is the one writer connection's, every write
//! behind it (API creations included) waits too: 10-30 ms, several times a second under load.
//!
//! Here a connection of its own copies the WAL every [`PERIOD`] with `PASSIVE` checkpoints,
//! which take no lock a writer waits for: the writer keeps appending meanwhile.
//!
//! A passive checkpoint alone does not bound the WAL file. The WAL starts over from its
//! beginning only when a write transaction begins with every frame already copied, and under
//! steady writes the writer is always a few frames ahead of a checkpoint running beside it,
//! so the file would grow without end (measured on 2026-12-05: 40 MB in 8 s; BENCHMARKS.md).
//! So once the WAL holds [`RESTART_FRAMES`], the task repeats its passive checkpoint until a
//! pass finds little new to copy (each pass copies what was written during the last, so the
//! passes shrink quickly), and then runs one more through the writer connection itself: queued
//! like any write, it copies the last few frames and syncs little, and the writer's next
//! transaction starts the WAL over. A reader still reading an older snapshot at that moment
//! defers it to the next time.
//!
//! The writer's own automatic checkpoint stays on with the higher threshold
//! [`WRITER_BACKSTOP`]: it bounds the WAL should this task fall behind or stop.
//!
//! Durability is unchanged: a commit is in the WAL before it is answered either way
//! (`synchronous = NORMAL`), and checkpoints only move committed pages, syncing the WAL
//! before and the database file after.

use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tokio::sync::mpsc;

/// How often the WAL is copied back.
const PERIOD: Duration = Duration::from_millis(100);

/// WAL frames (pages, 4 KiB by default) from which the task lets the WAL start over:
/// 8 MiB.
const RESTART_FRAMES: i64 = 2_048;

/// How many more times the writer's checkpoint is tried when a reader kept it from copying
/// everything, and after how long.
const WRITER_RETRIES: usize = 3;
const WRITER_RETRY_AFTER: Duration = Duration::from_millis(5);

/// A pass that copied at most this many frames is the last passive one before the
/// writer's.
const SETTLED_FRAMES: i64 = 64;

/// Most passive passes in a row before the writer's.
const MAX_PASSES: usize = 4;

/// WAL frames past which the writer checkpoints in its own commit (SQLite's default is
/// 1,000): 40 MiB.
pub(super) const WRITER_BACKSTOP: i64 = 10_000;

/// WAL frames past which the WAL is reported as not starting over: twice the backstop.
const LONG_WAL_FRAMES: i64 = 2 * WRITER_BACKSTOP;

/// The checkpointing connection and its task; cheap to clone. The task ends at
/// [`Checkpoints::close`] or when the last handle is dropped.
#[derive(Clone, Debug)]
pub(super) struct Checkpoints {
    pool: SqlitePool,
    _alive: mpsc::Sender<()>,
}

impl Checkpoints {
    /// Opens the checkpointing connection on the database `opts` names (it must exist) and
    /// starts checkpointing every [`PERIOD`], letting the WAL start over through `writer`.
    pub(super) async fn start(
        opts: SqliteConnectOptions,
        writer: SqlitePool,
    ) -> Result<Self, sqlx::Error> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .connect_with(opts.create_if_missing(false))
            .await?;
        let (alive, gone) = mpsc::channel(1);
        tokio::spawn(run(pool.clone(), writer, gone));
        Ok(Self {
            pool,
            _alive: alive,
        })
    }

    /// Stops checkpointing and closes the connection (the writer, closed last, copies
    /// what is left, as SQLite's last connection does).
    pub(super) async fn close(&self) {
        self.pool.close().await;
    }
}

async fn run(own: SqlitePool, writer: SqlitePool, mut gone: mpsc::Receiver<()>) {
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut failing, mut long) = (false, false);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            None = gone.recv() => break,
        }
        match round(&own, &writer).await {
            Ok(frames) => {
                if failing {
                    failing = false;
                    tracing::info!("SQLite WAL checkpoints work again");
                }
                // Only a read that stays open keeps the WAL this long (checkpoints cannot
                // copy past what it still reads); said once until the WAL is short again.
                if frames > LONG_WAL_FRAMES && !long {
                    tracing::warn!(
                        wal_frames = frames,
                        "the SQLite WAL is not starting over: a long read transaction holds it"
                    );
                }
                long = frames > LONG_WAL_FRAMES;
            }
            Err(_) if own.is_closed() || writer.is_closed() => break,
            // Once per run of failures: the writer's own checkpoint bounds the WAL meanwhile.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "SQLite WAL checkpoint failed; retrying");
            }
            Err(_) => {}
        }
    }
    own.close().await;
}

/// One period's checkpoints: a passive one, and once the WAL is long, more until they
/// settle and a last one through the writer so that the WAL starts over.
/// Returns the frames the WAL held.
async fn round(own: &SqlitePool, writer: &SqlitePool) -> Result<i64, sqlx::Error> {
    let mut last = checkpoint(own).await?;
    if last.wal_frames < RESTART_FRAMES {
        return Ok(last.wal_frames);
    }
    for _ in 1..MAX_PASSES {
        let next = checkpoint(own).await?;
        let copied = next.copied_since(last);
        last = next;
        if copied <= SETTLED_FRAMES {
            break;
        }
    }
    // A reader still on an older snapshot keeps the last frames from being copied (and the
    // WAL from starting over); readers are short, so try again a little later.
    let mut done = checkpoint(writer).await?;
    for _ in 0..WRITER_RETRIES {
        if done.copied_frames >= done.wal_frames {
            break;
        }
        tokio::time::sleep(WRITER_RETRY_AFTER).await;
        done = checkpoint(writer).await?;
    }
    Ok(done.wal_frames)
}

/// What a checkpoint reports: the frames in the WAL and how many of them are now in the
/// database file.
#[derive(Debug, Clone, Copy)]
struct Checkpointed {
    wal_frames: i64,
    copied_frames: i64,
}

impl Checkpointed {
    /// Frames this checkpoint copied that `before` had not (the WAL may have started over
    /// in between).
    fn copied_since(self, before: Checkpointed) -> i64 {
        if self.wal_frames < before.wal_frames {
            self.copied_frames
        } else {
            self.copied_frames - before.copied_frames
        }
    }
}

/// One `PASSIVE` checkpoint on `pool`'s connection.
async fn checkpoint(pool: &SqlitePool) -> Result<Checkpointed, sqlx::Error> {
    // (busy, frames in the WAL, frames copied); busy is always 0 in PASSIVE mode.
    let (_, wal_frames, copied_frames): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await?;
    Ok(Checkpointed {
        wal_frames,
        copied_frames,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use sqlx::SqlitePool;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    use super::{RESTART_FRAMES, WRITER_BACKSTOP, checkpoint, round};
    use crate::store::Db;

    fn len(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    #[tokio::test]
    async fn commits_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let wal = dir.path().join("c.db-wal");
        let db = Db::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        let Db::Sqlite(sqlite) = &db else {
            unreachable!("a sqlite: URL")
        };
        let writer = sqlite.writer();
        let (threshold,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
            .fetch_one(writer)
            .await
            .unwrap();
        assert_eq!(threshold, WRITER_BACKSTOP);

        // About 500 pages in 50 commits: half SQLite's default threshold and a twentieth
        // of the writer's, so only the checkpointing connection copies them.
        sqlx::query("CREATE TABLE filler (b BLOB NOT NULL)")
            .execute(writer)
            .await
            .unwrap();
        let before = len(&path);
        for _ in 0..50 {
            sqlx::query(
                "INSERT INTO filler (b) SELECT zeroblob(4000) FROM \
                 (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) \
                 SELECT i FROM n)",
            )
            .execute(writer)
            .await
            .unwrap();
        }
        let copied = before + 500 * 4000;
        let deadline = Instant::now() + Duration::from_secs(10);
        while len(&path) < copied && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            len(&path) >= copied,
            "the database file is {} bytes, the WAL {}: the commits were not checkpointed",
            len(&path),
            len(&wal)
        );

        // Closing closes the checkpointing connection too: the writer, last, removes the WAL.
        assert!(wal.exists());
        db.close().await;
        assert!(!wal.exists(), "the WAL is left after close");
    }

    async fn one_connection(opts: &SqliteConnectOptions) -> SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .unwrap()
    }

    /// Under back-to-back writes a passive checkpoint beside the writer never catches up
    /// with it, so the WAL would not start over; a round ends with a checkpoint through the
    /// writer, after which its next transaction starts the WAL over.
    #[tokio::test]
    async fn a_round_lets_the_wal_start_over_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("w.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("wal_autocheckpoint", WRITER_BACKSTOP.to_string());
        let writer = one_connection(&opts).await;
        let own = one_connection(&opts).await;
        sqlx::query("CREATE TABLE filler (b BLOB NOT NULL)")
            .execute(&writer)
            .await
            .unwrap();
        // Ten pages a commit, back to back, until the test ends.
        let fill = |writer: SqlitePool| async move {
            sqlx::query(
                "INSERT INTO filler (b) SELECT zeroblob(4000) FROM \
                 (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) \
                 SELECT i FROM n)",
            )
            .execute(&writer)
            .await
            .unwrap();
        };
        let writes = tokio::spawn({
            let writer = writer.clone();
            async move {
                loop {
                    fill(writer.clone()).await;
                }
            }
        });
        for _ in 0..3 {
            let mut before = checkpoint(&own).await.unwrap();
            while before.wal_frames < RESTART_FRAMES {
                tokio::time::sleep(Duration::from_millis(10)).await;
                before = checkpoint(&own).await.unwrap();
            }
            round(&own, &writer).await.unwrap();
            // The writer's next transaction starts the WAL over.
            fill(writer.clone()).await;
            let after = checkpoint(&own).await.unwrap();
            assert!(
                after.wal_frames < before.wal_frames,
                "the WAL did not start over: {} frames before the round, {} after",
                before.wal_frames,
                after.wal_frames
            );
        }
        writes.abort();
    }
}
