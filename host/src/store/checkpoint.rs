//! SQLite WAL checkpoints off the write path.
//!
//! In WAL mode every commit appends the pages it changed to the `-wal` file, and a
//! checkpoint copies them back into the database file. By default SQLite checkpoints inside
//! the commit that takes the WAL past 1,000 pages: that commit returns only after copying
//! them and syncing both files, and since it is the one writer connection's, every write
//! behind it (API creations included) waits too, several times a second under load.
//!
//! Here a connection of its own copies the WAL every [`PERIOD`] with `PASSIVE` checkpoints,
//! which take no lock a writer waits for: the writer keeps appending meanwhile.
//!
//! A passive checkpoint alone does not bound the WAL file. The WAL starts over from its
//! beginning only when a write transaction begins with every frame already copied (and no
//! reader left on an older snapshot), and under steady writes the writer is always a few
//! frames ahead of a checkpoint running beside it, so the file would grow without end
//! (measured on 2026-12-05: 40 MB in 8 s; BENCHMARKS.md). So once the WAL holds
//! [`RESTART_FRAMES`], the task repeats its passive checkpoint until few frames are left
//! (each pass copies what was written during the last, so the passes shrink quickly), and then
//! runs one more through the writer connection: queued like any write, it copies the last few
//! frames, and the writer's next transaction starts the WAL over. A reader still on an older
//! snapshot keeps the last frames from being copied, or the WAL from starting over; the task
//! tries again a little later, and in the next round.
//!
//! SQLite syncs the database file only in the checkpoint that copies the last frame, so the
//! writer's also syncs what the passes copied. The task cannot sync the file itself: closing a
//! second descriptor on it would drop the POSIX locks SQLite holds on it in this process.
//!
//! The writer's own automatic checkpoint stays on with the higher threshold
//! [`WRITER_BACKSTOP`]: it bounds the WAL should this task fall behind or stop.
//!
//! What a commit survives is unchanged: it is in the WAL before it is answered
//! (`synchronous = NORMAL`), so a `kill -9` loses nothing, and checkpoints only move
//! committed pages. The WAL itself is synced when a checkpoint copies from it, so what a power
//! loss can take is now usually the last [`PERIOD`] or so of commits (by default, everything
//! since the last 1,000-page checkpoint), but more while a read transaction stays open.

use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;
use tokio::sync::mpsc;

/// How often the WAL is copied back.
const PERIOD: Duration = Duration::from_millis(100);

/// WAL frames (pages, 4 KiB by default) from which the task lets the WAL start over:
/// 4 MiB.
const RESTART_FRAMES: i64 = 1_024;

/// Frames left to copy below which the passive passes stop and the writer's checkpoint
/// follows.
const SETTLED_FRAMES: i64 = 64;

/// Most passive passes in a row before the writer's.
const MAX_PASSES: usize = 4;

/// How many more times the writer's checkpoint is tried when a reader kept it from copying
/// everything.
const WRITER_RETRIES: usize = 3;

/// The wait before each of those tries (readers here are short).
const WRITER_RETRY_AFTER: Duration = Duration::from_millis(5);

/// WAL frames past which the writer checkpoints in its own commit (SQLite's default is
/// 1,000): about 40 MB.
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
        let pool = super::one_sqlite_connection()
            .connect_with(opts.create_if_missing(false))
            .await?;
        let (alive, gone) = mpsc::channel(1);
        let task = Task {
            own: pool.clone(),
            writer,
        };
        tokio::spawn(task.run(gone));
        Ok(Self {
            pool,
            _alive: alive,
        })
    }

    /// Stops checkpointing and closes the connection (whichever connection closes last
    /// copies what is left and removes the WAL, as SQLite does).
    pub(super) async fn close(&self) {
        self.pool.close().await;
    }
}

/// What the checkpointing task works with.
struct Task {
    /// Its own connection.
    own: SqlitePool,
    /// The writer, for the checkpoint after which the WAL starts over.
    writer: SqlitePool,
}

impl Task {
    async fn run(self, mut gone: mpsc::Receiver<()>) {
        let mut ticks = tokio::time::interval(PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut failing, mut long) = (false, false);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                None = gone.recv() => break,
            }
            match self.round().await {
                Ok(frames) => {
                    if failing {
                        failing = false;
                        tracing::info!("SQLite WAL checkpoints work again");
                    }
                    // Only a read that stays open keeps the WAL this long (checkpoints cannot
                    // copy past what it still reads); said once until the WAL is short again.
                    // (A round that found another checkpoint running says nothing.)
                    if let Some(frames) = frames {
                        if frames > LONG_WAL_FRAMES && !long {
                            tracing::warn!(
                                wal_frames = frames,
                                "the SQLite WAL is not starting over: a long read transaction holds it"
                            );
                        }
                        long = frames > LONG_WAL_FRAMES;
                    }
                }
                Err(_) if self.own.is_closed() || self.writer.is_closed() => break,
                // Once per run of failures: the writer's own checkpoint bounds the WAL meanwhile.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "SQLite WAL checkpoint failed; retrying");
                }
                Err(_) => {}
            }
        }
        self.own.close().await;
    }

    /// One period's checkpoints: a passive one, and once the WAL is long, more until few
    /// frames are left, then one through the writer so that the WAL starts over. Returns
    /// the frames the WAL held, or `None` if another checkpoint was running.
    async fn round(&self) -> Result<Option<i64>, sqlx::Error> {
        let Some(mut last) = checkpoint(&self.own).await? else {
            return Ok(None);
        };
        if last.wal_frames < RESTART_FRAMES {
            return Ok(Some(last.wal_frames));
        }
        for _ in 1..MAX_PASSES {
            if last.left() <= SETTLED_FRAMES {
                break;
            }
            match checkpoint(&self.own).await? {
                Some(next) => last = next,
                None => return Ok(None),
            }
        }
        // A reader still on an older snapshot keeps the last frames from being copied.
        let mut done = checkpoint(&self.writer).await?;
        for _ in 0..WRITER_RETRIES {
            if done.is_none_or(|d| d.left() == 0) {
                break;
            }
            tokio::time::sleep(WRITER_RETRY_AFTER).await;
            done = checkpoint(&self.writer).await?;
        }
        Ok(done.map(|d| d.wal_frames))
    }
}

/// What a checkpoint reports: the frames in the WAL and how many of them are now in the
/// database file.
#[derive(Debug, Clone, Copy)]
struct Checkpointed {
    wal_frames: i64,
    copied_frames: i64,
}

impl Checkpointed {
    /// Frames not yet copied.
    fn left(self) -> i64 {
        self.wal_frames - self.copied_frames
    }
}

/// One `PASSIVE` checkpoint on `pool`'s connection; `None` if another connection's
/// checkpoint was running (SQLite then reports busy and copies nothing).
async fn checkpoint(pool: &SqlitePool) -> Result<Option<Checkpointed>, sqlx::Error> {
    let (busy, wal_frames, copied_frames): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await?;
    Ok((busy == 0).then_some(Checkpointed {
        wal_frames,
        copied_frames,
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use sqlx::SqlitePool;
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    use super::{Checkpointed, RESTART_FRAMES, Task, WRITER_BACKSTOP, checkpoint};
    use crate::store::Db;

    fn len(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    /// Commits ten pages (rows of 4,000 bytes take a page each).
    async fn fill(writer: &SqlitePool) {
        sqlx::query(
            "INSERT INTO filler (b) SELECT zeroblob(4000) FROM \
             (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) \
             SELECT i FROM n)",
        )
        .execute(writer)
        .await
        .unwrap();
    }

    /// A passive checkpoint on `pool`, tried again while another runs (the writer's own,
    /// should a slow machine let the steady writes reach its threshold).
    async fn passive(pool: &SqlitePool) -> Checkpointed {
        loop {
            if let Some(done) = checkpoint(pool).await.unwrap() {
                return done;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
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
            fill(writer).await;
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

        // Closing closes the checkpointing connection too: the last to close removes the WAL.
        assert!(wal.exists());
        db.close().await;
        assert!(!wal.exists(), "the WAL is left after close");
    }

    /// A writer, a checkpointing connection and a reader on a fresh database, as the store
    /// opens them, with the task's state (nothing runs it: the tests call its rounds).
    async fn connections(dir: &tempfile::TempDir) -> (Task, SqlitePool) {
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("w.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let one = |opts: SqliteConnectOptions| {
            SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
        };
        let writer = one(opts
            .clone()
            .pragma("wal_autocheckpoint", WRITER_BACKSTOP.to_string()))
        .await
        .unwrap();
        sqlx::query("CREATE TABLE filler (b BLOB NOT NULL)")
            .execute(&writer)
            .await
            .unwrap();
        let own = one(opts.clone()).await.unwrap();
        let reader = one(opts).await.unwrap();
        (Task { own, writer }, reader)
    }

    /// Under back-to-back writes a passive checkpoint beside the writer never catches up
    /// with it, so the WAL would not start over; a round ends with a checkpoint through the
    /// writer, after which its next transaction starts the WAL over. (The writes stop once
    /// the round is done, so the frame count after it tells whether the WAL started over.)
    #[tokio::test]
    async fn a_round_lets_the_wal_start_over_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (task, _) = connections(&dir).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        for _ in 0..3 {
            let stop = Arc::new(AtomicBool::new(false));
            let writes = tokio::spawn({
                let (writer, stop) = (task.writer.clone(), stop.clone());
                async move {
                    while !stop.load(Ordering::Relaxed) {
                        fill(&writer).await;
                    }
                }
            });
            let mut before = passive(&task.own).await;
            while before.wal_frames < RESTART_FRAMES {
                assert!(Instant::now() < deadline, "the writes stopped");
                tokio::time::sleep(Duration::from_millis(10)).await;
                before = passive(&task.own).await;
            }
            task.round().await.unwrap();
            stop.store(true, Ordering::Relaxed);
            writes.await.unwrap();
            // The writer's next transaction starts the WAL over.
            fill(&task.writer).await;
            let after = passive(&task.own).await;
            assert!(
                after.wal_frames < before.wal_frames,
                "the WAL did not start over: {} frames before the round, {} after",
                before.wal_frames,
                after.wal_frames
            );
        }
    }

    /// A reader on an older snapshot keeps the WAL from starting over while its transaction
    /// is open (the round gives up after its retries, without an error); the first round
    /// after it ends lets the WAL start over.
    #[tokio::test]
    async fn a_reader_on_an_older_snapshot_defers_the_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (task, reader) = connections(&dir).await;
        fill(&task.writer).await;
        let mut read = reader.begin().await.unwrap();
        let _: (i64,) = sqlx::query_as("SELECT count(*) FROM filler")
            .fetch_one(&mut *read)
            .await
            .unwrap();
        while passive(&task.own).await.wal_frames < RESTART_FRAMES {
            fill(&task.writer).await;
        }
        let held = task.round().await.unwrap().expect("a round");
        fill(&task.writer).await;
        assert!(
            passive(&task.own).await.wal_frames > held,
            "the WAL started over under an open read"
        );

        read.rollback().await.unwrap();
        task.round().await.unwrap();
        fill(&task.writer).await;
        let after = passive(&task.own).await;
        assert!(
            after.wal_frames < held,
            "the WAL did not start over once the read ended: {} frames, {held} before",
            after.wal_frames
        );
    }
}
