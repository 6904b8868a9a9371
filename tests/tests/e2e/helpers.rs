//! Starting the real host for a test: its own database (SQLite file or a fresh
//! PostgreSQL database), port 0, typed request helpers. Logs only with `TEST_LOG=1`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use pakaura_host::config::ServeConfig;
use pakaura_host::startup::{Application, StopHandle};
use pakaura_host::store::Db;
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use uuid::Uuid;

pub(crate) const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub(crate) const ADMIN_TOKEN: &str = "admin-token-for-tests-only";

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn name(backend: Backend)` once per database, as
/// `sqlite::name` and `postgres::name`.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            )*
        }
    };
}
pub(crate) use on_both_databases;

/// The administrative PostgreSQL URL tests create their databases through.
fn postgres_admin_url() -> String {
    std::env::var("PAKAURA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database made for one test and removed when it ends.
pub(crate) struct TestDatabase {
    pub(crate) url: String,
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
    pub(crate) async fn create(backend: Backend) -> Self {
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
    pub(crate) fn existing(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            cleanup: Cleanup::None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Cleanup::Postgres { name } = &self.cleanup {
            let name = name.clone();
            // Dropping runs outside any async context we can rely on: use a thread
            // with its own small runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let pool = sqlx::PgPool::connect(&postgres_admin_url()).await.ok()?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await
                    .ok()?;
                    pool.close().await;
                    Some(())
                })
            })
            .join();
        }
    }
}

/// Settings a test may change before the host starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// Extra `NAME=value` settings, as the environment would give them.
    pub(crate) env: Vec<(String, String)>,
    /// Default test settings to leave out.
    pub(crate) unset: Vec<String>,
}

impl Options {
    pub(crate) fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// Leaves a default test setting (e.g. `ADMIN_TOKEN`) unset.
    pub(crate) fn without(mut self, name: &str) -> Self {
        self.unset.push(name.to_owned());
        self
    }
}

/// A running host.
pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    pub(crate) db: Db,
    pub(crate) relay: pakaura_host::relay::Relay,
    pub(crate) client: reqwest::Client,
    stop: StopHandle,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub(crate) database: TestDatabase,
}

/// Builds a `ServeConfig` from `NAME=value` pairs, the way the process would read
/// its environment (without touching the test process's real environment).
pub(crate) fn config_from(pairs: &[(String, String)]) -> ServeConfig {
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        config: ServeConfig,
    }
    let mut argv = vec!["pakaura".to_owned()];
    for (name, value) in pairs {
        argv.push(format!(
            "--{}={value}",
            name.to_lowercase().replace('_', "-")
        ));
    }
    Args::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("test config: {e}"))
        .config
}

pub(crate) async fn spawn_app(backend: Backend) -> TestApp {
    spawn_with(backend, Options::default()).await
}

pub(crate) async fn spawn_with(backend: Backend, options: Options) -> TestApp {
    let database = TestDatabase::create(backend).await;
    start(database, options).await
}

/// Starts a host on an existing test database (e.g. to restart one).
pub(crate) async fn start(database: TestDatabase, options: Options) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        pakaura_host::telemetry::init_logging();
    }
    let mut pairs: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), database.url.clone()),
        ("BIND_ADDR".into(), "127.0.0.1:0".into()),
        ("JWT_SECRET".into(), JWT_SECRET.into()),
        ("ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
        // One compile cache for the whole test run, never the user's own.
        (
            "MAPPER_CACHE_DIR".into(),
            concat!(env!("CARGO_TARGET_TMPDIR"), "/mapper-cache").into(),
        ),
    ];
    pairs.retain(|(name, _)| !options.unset.contains(name));
    pairs.extend(options.env);
    let (app, demo) = Application::build(config_from(&pairs))
        .await
        .expect("build app");
    assert!(demo.is_none());
    let addr = app.addr();
    let db = app.db().clone();
    let relay = app.relay().clone();
    let stop = app.stop_handle();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        addr,
        db,
        relay,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        stop,
        server: Some(server),
        database,
    }
}

/// A bearer token for `user`, signed with the test secret.
pub(crate) fn token_for(user: &str) -> String {
    pakaura_host::auth::JwtKeys::new(JWT_SECRET.as_bytes(), None)
        .unwrap()
        .issue(user, Duration::from_secs(600))
        .unwrap()
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request as `user` (None: no Authorization header).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(user) = user {
            request = request.bearer_auth(token_for(user));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    /// `POST /tasks/{id}/{verb}` as `user` (`complete` or `uncomplete`).
    pub(crate) async fn post_task(&self, user: &str, id: &str, verb: &str) -> Response {
        self.send(
            Method::POST,
            &format!("/tasks/{id}/{verb}"),
            Some(user),
            None,
        )
        .await
    }

    /// `GET path` as `user`, returning the JSON body.
    pub(crate) async fn get_json(&self, user: &str, path: &str) -> Value {
        self.send(Method::GET, path, Some(user), None)
            .await
            .json()
            .await
            .expect("a JSON body")
    }

    pub(crate) async fn create_task(&self, user: &str, body: Value) -> Value {
        let response = self
            .send(Method::POST, "/tasks", Some(user), Some(body))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// `POST /admin/dead-letters/{id}/replay`.
    pub(crate) async fn replay(&self, letter: &str) -> Response {
        self.admin(
            Method::POST,
            &format!("/admin/dead-letters/{letter}/replay"),
        )
        .await
    }

    pub(crate) async fn admin(&self, method: Method, path: &str) -> Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("admin request sent")
    }

    /// Stops the host and returns its database for a restart.
    pub(crate) async fn stop(mut self) -> TestDatabase {
        self.stop.stop();
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        self.db.close().await;
        self.database
    }
}

/// The mutations the outbox holds for one task, in commit order.
pub(crate) async fn mutations_of(db: &Db, task: &str) -> Vec<pakaura_host::domain::Mutation> {
    db.outbox_rows(Some(uuid::Uuid::parse_str(task).unwrap()))
        .await
        .unwrap()
        .iter()
        .map(|row| row.decode().unwrap())
        .collect()
}

/// Asserts a problem+json response with `status`, returning the problem document.
pub(crate) async fn expect_problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], status.as_u16());
    problem
}
