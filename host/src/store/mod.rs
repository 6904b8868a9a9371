//! Storage: tasks and the transactional outbox, on SQLite or PostgreSQL.
//!
//! Both back-ends run the same SQL text (numbered `$n` parameters work on both);
//! [`with_pool!`] (reads) and [`with_writer!`] (anything that writes) run one `async`
//! block against whichever pool is configured, so every query is written once and
//! type-checked against both drivers.

mod backlog;
mod checkpoint;
mod dead_letters;
mod delivery_health;
mod envelopes;
mod flow_detail;
mod group_commit;
mod history;
mod holds;
mod letter_search;
mod outbox;
mod prune;
mod queue_vacuum;
mod recent_outbox;
mod relay;
mod releases;
mod states;
mod tasks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::instruments::{SQLITE_WRITER_IDLE, STORE_DURATION};

pub use backlog::Backlog;
pub use dead_letters::{DeadLetter, Requeued};
pub use delivery_health::{DeliveryHealth, LastFailure};
pub use envelopes::{DeliveryAttempt, EnvelopeFilter, EnvelopeRecord, IdPart, TextIdPart};
pub use flow_detail::{OldestPending, TopicActivity};
pub use history::{HistoryRange, HistoryWindow, MAX_LAST};
pub use holds::{Hold, LetterHold};
pub use letter_search::{LetterFilter, LetterGroup, LetterPage};
pub use outbox::OutboxRow;
pub use queue_vacuum::QueueVacuum;
pub use recent_outbox::RecentMutation;
pub use relay::{
    DeliveriesStored, Delivery, DeliveryBatch, DeliveryRecord, HeldTask, Loaded, MappedRow,
    Mapping, MappingStored, NewEnvelope, PendingRow, Release,
};
pub use releases::{MapperRelease, NewMapperRelease, ReleasedComponent};
pub use states::{DeadLetterKind, EnvelopeState};

/// Longest reason or error text stored (dead letters, an envelope's last error).
pub const MAX_STORED_REASON: usize = 4 * 1024;

/// Awaits `$body`, an `async` block, with `$pool` bound to the configured pool; on
/// SQLite to the one [`SqliteDb`] method `$sqlite` returns (`reader` or `writer`).
/// Used through [`with_pool!`] and [`with_writer!`].
///
/// Why a macro and not a generic function: the same query code must be type-checked
/// once per driver (`SqlitePool`, `PgPool`); a generic function could only do that
/// with a dozen `for<'q> T: Encode<'q, DB> + Type<DB>` bounds repeated on every
/// query function. The body is an `async` block, so `?` and `return` leave the
/// block, never the function that uses the macro.
macro_rules! on_pool {
    ($db:expr, $sqlite:ident, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite(sqlite) => {
                let $pool = sqlite.$sqlite();
                $body.await
            }
            $crate::store::Db::Postgres($crate::store::PgDb { pool: $pool, .. }) => $body.await,
        }
    };
}
pub(crate) use on_pool;

/// Runs `$body`, an `async` block that only reads (on SQLite, on its readers).
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        $crate::store::on_pool!($db, reader, |$pool| $body)
    };
}
pub(crate) use with_pool;

/// Runs `$body`, an `async` block that writes (on SQLite, on its one writer).
macro_rules! with_writer {
    ($db:expr, |$pool:ident| $body:expr) => {
        $crate::store::on_pool!($db, writer, |$pool| $body)
    };
}
pub(crate) use with_writer;

/// Awaits `call`, the store call `name`, and records how long it took
/// (`pakaura_store_duration_seconds`).
async fn timed<T>(name: &'static str, call: impl Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let answer = call.await;
    metrics::histogram!(STORE_DURATION, "call" => name).record(started.elapsed());
    answer
}

/// A failure of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("DATABASE_URL: {0}")]
    Url(String),
}

impl StoreError {
    /// Whether the database is unavailable or overloaded (the same statement may work
    /// later), as opposed to refusing this statement or its data.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(e) => transient(e),
            StoreError::Migrate(_) | StoreError::Url(_) => false,
        }
    }
}

/// Whether `e` says the database is unavailable or busy rather than that the statement
/// or its data is wrong.
fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLITE_BUSY (5) or SQLITE_LOCKED (6), extended codes included.
                return code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6));
            }
            // PostgreSQL: serialization failure, deadlock, lock timeout, query cancelled,
            // insufficient resources, operator intervention, connection exceptions.
            matches!(code.as_ref(), "40001" | "40P01" | "55P03" | "57014")
                || ["53", "57P", "08"]
                    .iter()
                    .any(|class| code.starts_with(class))
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

/// How a pool is sized and how long its statements wait.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// Longest wait for a connection, a lock (PostgreSQL `lock_timeout`) or SQLite's
    /// write lock (`busy_timeout`).
    pub timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The configured database.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(PgDb),
}

/// A SQLite database: one connection writes, a pool of others reads.
///
/// SQLite has one write lock per database file. Writers on separate connections
/// contend for it in SQLite's busy handler, which polls with sleeps growing to 100 ms
/// and serves nobody in order: with the relay writing steadily, an API write could
/// wait a second. With every write on one connection, writers wait in that pool's
/// queue, first come first served, and hand the lock over without sleeping; readers
/// never wait for writers (WAL). Readers are `query_only`, so a write sent to them by
/// mistake fails instead of contending. Task creations queue in front of the writer and
/// commit in groups ([`group_commit`]).
#[derive(Clone, Debug)]
pub struct SqliteDb {
    reader: SqlitePool,
    writer: SqlitePool,
    creates: group_commit::CreateQueue,
    /// WAL checkpoints on a connection of their own, not in the writer's commits.
    checkpoints: checkpoint::Checkpoints,
}

/// A PostgreSQL pool, and the queue in front of it that commits task creations in
/// groups ([`group_commit`]).
#[derive(Clone, Debug)]
pub struct PgDb {
    pool: PgPool,
    creates: group_commit::CreateQueue,
}

impl PgDb {
    /// The pool (task creations go through the store, which queues them).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn new(pool: PgPool, settings: &PoolSettings) -> Self {
        let creates = group_commit::CreateQueue::postgres(pool.clone(), settings.timeout);
        Self { pool, creates }
    }
}

impl SqliteDb {
    /// The read-only connections.
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// The one connection that writes.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }
}

impl Db {
    /// Connects to `url` (`sqlite:` or `postgres://`) with the default pool,
    /// creating a SQLite file if needed.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, &PoolSettings::default()).await
    }

    /// Connects to `url` with `settings`: the size of the pool and how long a
    /// statement may wait for a lock or a connection before the store answers busy
    /// ([`StoreError::is_transient`]). Connections are not pinged on every acquire: a
    /// broken one fails its statement, which is retried or answered with 503, and the
    /// pool replaces it.
    ///
    /// On PostgreSQL a session left idle inside a transaction for a minute is ended by
    /// the server (`idle_in_transaction_session_timeout`). Every transaction here runs
    /// its statements back to back, so only an abandoned one gets there: a future
    /// dropped while its `BEGIN` was in flight returns its connection to the pool inside
    /// a transaction the pool does not know of, and whatever runs on it next would hold
    /// its row locks, uncommitted, until the connection is used again.
    pub async fn connect_with(url: &str, settings: &PoolSettings) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let lock_timeout = format!("{}ms", settings.timeout.as_millis());
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Url(e.to_string()))?
                .options([
                    ("lock_timeout", lock_timeout.as_str()),
                    ("idle_in_transaction_session_timeout", "60s"),
                ]);
            let pool = postgres_pool(opts, settings).await?;
            Ok(Db::Postgres(PgDb::new(pool, settings)))
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Url(e.to_string()))?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(settings.timeout)
                .foreign_keys(true);
            // The writer first: it creates the file and switches it to WAL. Its own
            // checkpoints are only a backstop (see `checkpoint`).
            let writer = one_sqlite_connection()
                .acquire_timeout(settings.timeout)
                .before_acquire(|_, taken| {
                    metrics::histogram!(SQLITE_WRITER_IDLE).record(taken.idle_for);
                    Box::pin(std::future::ready(Ok(true)))
                })
                .connect_with(opts.clone().create_if_missing(true).pragma(
                    "wal_autocheckpoint",
                    checkpoint::WRITER_BACKSTOP.to_string(),
                ))
                .await?;
            let checkpoints = checkpoint::Checkpoints::start(opts.clone(), writer.clone()).await?;
            let reader = sqlite_readers(opts, settings).await?;
            let creates = group_commit::CreateQueue::sqlite(writer.clone(), settings.timeout);
            Ok(Db::Sqlite(SqliteDb {
                reader,
                writer,
                creates,
                checkpoints,
            }))
        } else {
            Err(StoreError::Url(format!(
                "unsupported scheme in {:?}: use sqlite:PATH or postgres://…",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }

    /// Another handle on the same database with its own connections sized by
    /// `settings` (the relay's, so its bookkeeping never makes API requests wait for
    /// a connection). On SQLite only the readers are new: the process keeps one
    /// writer, shared by both handles.
    pub async fn companion(&self, settings: &PoolSettings) -> Result<Self, StoreError> {
        match self {
            // Creations keep going through this handle's queue.
            Db::Postgres(pg) => Ok(Db::Postgres(PgDb {
                pool: postgres_pool((*pg.pool.connect_options()).clone(), settings).await?,
                creates: pg.creates.clone(),
            })),
            Db::Sqlite(sqlite) => Ok(Db::Sqlite(SqliteDb {
                reader: sqlite_readers((*sqlite.reader.connect_options()).clone(), settings)
                    .await?,
                writer: sqlite.writer.clone(),
                creates: sqlite.creates.clone(),
                checkpoints: sqlite.checkpoints.clone(),
            })),
        }
    }

    /// Applies the embedded migrations for this driver.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(sqlite) => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&sqlite.writer)
                    .await?;
            }
            Db::Postgres(PgDb { pool, .. }) => {
                sqlx::migrate!("./migrations/postgres").run(pool).await?;
            }
        }
        Ok(())
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| async {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }

    /// The driver's name, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Whether two writes can run side by side: on PostgreSQL each has its own
    /// connection; SQLite has one writer, and a second write only queues behind it.
    pub fn writes_in_parallel(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Closes every connection (at shutdown).
    pub async fn close(&self) {
        match self {
            Db::Sqlite(sqlite) => {
                sqlite.checkpoints.close().await;
                sqlite.reader.close().await;
                sqlite.writer.close().await;
            }
            Db::Postgres(PgDb { pool, .. }) => pool.close().await,
        }
    }
}

async fn postgres_pool(
    opts: PgConnectOptions,
    settings: &PoolSettings,
) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.timeout)
        .test_before_acquire(false)
        .connect_with(opts)
        .await
}

/// A pool of one SQLite connection kept open for the process's life (the writer, the
/// checkpointer).
fn one_sqlite_connection() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
}

async fn sqlite_readers(
    opts: SqliteConnectOptions,
    settings: &PoolSettings,
) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(settings.max_connections.min(8))
        .acquire_timeout(settings.timeout)
        .test_before_acquire(false)
        .connect_with(opts.create_if_missing(false).pragma("query_only", "ON"))
        .await
}

/// Starting a transaction that will write, per driver.
pub(crate) trait WritePool {
    type Db: sqlx::Database;

    /// Begins a transaction that holds the write lock from its first statement
    /// (SQLite `BEGIN IMMEDIATE`, so concurrent writers wait instead of failing).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;

    /// Reads one user's task and locks it until the transaction ends.
    fn select_task_for_update(&self) -> &'static str;
}

impl WritePool for SqlitePool {
    type Db = sqlx::Sqlite;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }

    fn select_task_for_update(&self) -> &'static str {
        concat!(
            "SELECT ",
            tasks::task_columns!(),
            " FROM tasks WHERE id = $1 AND user_id = $2"
        )
    }
}

impl WritePool for PgPool {
    type Db = sqlx::Postgres;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }

    fn select_task_for_update(&self) -> &'static str {
        concat!(
            "SELECT ",
            tasks::task_columns!(),
            " FROM tasks WHERE id = $1 AND user_id = $2 FOR UPDATE"
        )
    }
}
