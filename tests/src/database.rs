//! Databases made for one test (or one benchmark run) and removed when it ends: a
//! SQLite file in a temporary folder, or a fresh PostgreSQL database created through
//! `PAKAURA_TEST_POSTGRES`.

use uuid::Uuid;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::str::FromStr for Backend {
    type Err = String;

    /// `sqlite` or `postgres` (a benchmark's `--database`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" => Ok(Backend::Postgres),
            other => Err(format!("must be sqlite or postgres, not {other}")),
        }
    }
}

/// The administrative PostgreSQL URL tests create their databases through.
pub fn postgres_admin_url() -> String {
    std::env::var("PAKAURA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database made for one test and removed when it ends.
pub struct TestDatabase {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// Removed with the folder.
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Postgres {
        name: String,
    },
    /// Owned by another handle.
    None,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite:{}", dir.path().join("pakaura.db").display());
                Self {
                    url,
                    cleanup: Cleanup::Dir(dir),
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("pakaura_test_{}", Uuid::new_v4().simple());
                let pool = sqlx::PgPool::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin} (set PAKAURA_TEST_POSTGRES): {e}")
                });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&pool)
                    .await
                    .expect("create test database");
                pool.close().await;
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                Self {
                    url: format!("{base}/{name}"),
                    cleanup: Cleanup::Postgres { name },
                }
            }
        }
    }
}

impl TestDatabase {
    /// Another handle on a database made by [`TestDatabase::create`]; it does not
    /// drop the database when it ends.
    pub fn existing(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            cleanup: Cleanup::None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Cleanup::Postgres { name } = &self.cleanup {
            // Best effort: a database left behind is only clutter on the test server.
            let _ = sql_from_drop(
                &postgres_admin_url(),
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// Runs `sql` (one statement or several) in the PostgreSQL database at `url`, with a
/// connection of its own.
pub async fn execute(url: &str, sql: &str) -> Result<(), String> {
    let pool = sqlx::PgPool::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await;
    pool.close().await;
    done.map(drop).map_err(|e| e.to_string())
}

/// [`execute`] from a `Drop`: dropping runs outside any async context we can rely on,
/// so on a thread with its own small runtime.
pub fn sql_from_drop(url: &str, sql: String) -> Result<(), String> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(execute(&url, &sql))
    })
    .join()
    .map_err(|_| "the thread running it panicked".to_owned())?
}

/// The one integer `sql` selects, read straight from the database at `url` (SQLite or
/// PostgreSQL) with a connection of its own: for drivers that check the database
/// itself rather than the host's API.
pub async fn count(url: &str, sql: &'static str) -> i64 {
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await;
        pool.close().await;
        n.expect(sql)
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        let n = sqlx::query_scalar(sql).fetch_one(&pool).await;
        pool.close().await;
        n.expect(sql)
    }
}
