//! Storage: tasks and the transactional outbox, on SQLite or PostgreSQL.
//!
//! Both back-ends run the same SQL text (numbered `$n` parameters work on both);
//! [`with_pool!`] runs one `async` block against whichever pool is configured, so
//! every query is written once and type-checked against both drivers.

mod admin;
mod outbox;
mod relay;
mod tasks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use outbox::{MutationContext, OutboxRow};
pub use relay::{ClaimedEnvelope, DeadLetter, EnvelopeRecord, EnvelopeState, NewEnvelope};
pub use tasks::{ListOrder, NewTask, Page, PageRequest, TaskPatch};

/// Awaits `$body`, an `async` block, with `$pool` bound to the configured pool.
///
/// Why a macro and not a generic function: the same query code must be type-checked
/// once per driver (`SqlitePool`, `PgPool`); a generic function could only do that
/// with a dozen `for<'q> T: Encode<'q, DB> + Type<DB>` bounds repeated on every
/// query function. The body is an `async` block, so `?` and `return` leave the
/// block, never the function that uses the macro.
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body.await,
            $crate::store::Db::Postgres($pool) => $body.await,
        }
    };
}
pub(crate) use with_pool;

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

/// The configured database.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Connects to `url` (`sqlite:` or `postgres://`) with a pool for the API,
    /// creating a SQLite file if needed.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_sized(url, 16).await
    }

    /// Connects with at most `max_connections` (the relay has its own small pool,
    /// so its bookkeeping never makes API requests wait for a connection).
    pub async fn connect_sized(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts =
                PgConnectOptions::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(opts)
                .await?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Url(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.min(8))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Db::Sqlite(pool))
        } else {
            Err(StoreError::Url(format!(
                "unsupported scheme in {:?}: use sqlite:PATH or postgres://…",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }

    /// Applies the embedded migrations for this driver.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
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

    /// Closes every connection (at shutdown).
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close());
    }
}

/// Starting a transaction that will write, per driver.
pub(crate) trait WritePool {
    type Db: sqlx::Database;

    /// Begins a transaction that holds the write lock from its first statement
    /// (SQLite `BEGIN IMMEDIATE`, so concurrent writers wait instead of failing).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;

    /// Reads one user's task and locks it until the transaction ends.
    fn select_task_for_update(&self) -> &'static str;

    /// Leases pending outbox rows: binds `me`, `until`, `now`, `limit`.
    fn claim_mutations_sql(&self) -> &'static str;

    /// Leases publishable envelopes: binds `me`, `until`, `now`, `limit`.
    fn claim_envelopes_sql(&self) -> &'static str;
}

/// The SQL of [`WritePool::claim_mutations_sql`], with `$LOCK` for the row-lock clause.
macro_rules! claim_mutations_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox SET locked_by = $1, locked_until = $2 WHERE seq IN (",
            "SELECT seq FROM outbox WHERE state = 'pending' AND (locked_until IS NULL OR locked_until < $3) ",
            "ORDER BY seq LIMIT $4 ", $lock, ") ",
            "RETURNING seq, id, task_id, user_id, action, mutation, traceparent, created_at"
        )
    };
}

/// The SQL of [`WritePool::claim_envelopes_sql`]: only each task's head envelope,
/// and only when no earlier mutation of the task is still unmapped.
macro_rules! claim_envelopes_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE envelopes SET locked_by = $1, locked_until = $2 WHERE seq IN (",
            "SELECT e.seq FROM envelopes e WHERE e.state = 'pending' AND e.next_attempt_at <= $3 ",
            "AND (e.locked_until IS NULL OR e.locked_until < $3) ",
            "AND NOT EXISTS (SELECT 1 FROM envelopes p WHERE p.task_id = e.task_id AND p.state = 'pending' ",
            "AND (p.outbox_seq < e.outbox_seq OR (p.outbox_seq = e.outbox_seq AND p.event_index < e.event_index))) ",
            "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.task_id = e.task_id AND o.state = 'pending' ",
            "AND o.seq < e.outbox_seq) ",
            "ORDER BY e.outbox_seq, e.event_index LIMIT $4 ", $lock, ") ",
            "RETURNING seq, id, task_id, user_id, mapper, topic, event_type, partition_key, body, traceparent, ",
            "correlation_id, attempts, mutation_id"
        )
    };
}

impl WritePool for SqlitePool {
    type Db = sqlx::Sqlite;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }

    fn select_task_for_update(&self) -> &'static str {
        "SELECT seq, id, user_id, title, description, completed, due_date, created_at, updated_at \
         FROM tasks WHERE id = $1 AND user_id = $2"
    }

    // One relay per SQLite database: `BEGIN IMMEDIATE`-style serialisation suffices.
    fn claim_mutations_sql(&self) -> &'static str {
        claim_mutations_sql!("")
    }

    fn claim_envelopes_sql(&self) -> &'static str {
        claim_envelopes_sql!("")
    }
}

impl WritePool for PgPool {
    type Db = sqlx::Postgres;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }

    fn select_task_for_update(&self) -> &'static str {
        "SELECT seq, id, user_id, title, description, completed, due_date, created_at, updated_at \
         FROM tasks WHERE id = $1 AND user_id = $2 FOR UPDATE"
    }

    fn claim_mutations_sql(&self) -> &'static str {
        claim_mutations_sql!("FOR UPDATE SKIP LOCKED")
    }

    fn claim_envelopes_sql(&self) -> &'static str {
        claim_envelopes_sql!("FOR UPDATE OF e SKIP LOCKED")
    }
}
