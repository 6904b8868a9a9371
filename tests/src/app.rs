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

use crate::database::{Backend, TestDatabase};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests-only";

/// Settings a test may change before the host starts.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra `NAME=value` settings, as the environment would give them.
    pub env: Vec<(String, String)>,
    /// Default test settings to leave out.
    pub unset: Vec<String>,
}

impl Options {
    /// Sets `name` (replacing a value set before).
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.retain(|(set, _)| set != name);
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// Leaves a default test setting (e.g. `ADMIN_TOKEN`) unset.
    pub fn without(mut self, name: &str) -> Self {
        self.unset.push(name.to_owned());
        self
    }
}

/// A running host.
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: Db,
    pub relay: pakaura_host::relay::Relay,
    pub client: reqwest::Client,
    stop: StopHandle,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub database: TestDatabase,
}

/// Builds a `ServeConfig` from `NAME=value` pairs, the way the process would read
/// its environment (without touching the test process's real environment).
pub fn config_from(pairs: &[(String, String)]) -> ServeConfig {
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

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_with(backend, Options::default()).await
}

pub async fn spawn_with(backend: Backend, options: Options) -> TestApp {
    let database = TestDatabase::create(backend).await;
    start(database, options).await
}

/// Starts a host on an existing test database (e.g. to restart one).
pub async fn start(database: TestDatabase, options: Options) -> TestApp {
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
            env!("PAKAURA_TEST_MAPPER_CACHE").into(),
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
pub fn token_for(user: &str) -> String {
    pakaura_host::auth::JwtKeys::new(JWT_SECRET.as_bytes(), None)
        .unwrap()
        .issue(user, Duration::from_secs(600))
        .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request as `user` (None: no Authorization header).
    pub async fn send(
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
    pub async fn post_task(&self, user: &str, id: &str, verb: &str) -> Response {
        self.send(
            Method::POST,
            &format!("/tasks/{id}/{verb}"),
            Some(user),
            None,
        )
        .await
    }

    /// `GET path` as `user`, returning the JSON body.
    pub async fn get_json(&self, user: &str, path: &str) -> Value {
        self.send(Method::GET, path, Some(user), None)
            .await
            .json()
            .await
            .expect("a JSON body")
    }

    pub async fn create_task(&self, user: &str, body: Value) -> Value {
        let response = self
            .send(Method::POST, "/tasks", Some(user), Some(body))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// [`TestApp::create_task`], returning the new task's id.
    pub async fn create_task_id(&self, user: &str, body: Value) -> String {
        let task = self.create_task(user, body).await;
        task["id"]
            .as_str()
            .expect("a created task has an id")
            .to_owned()
    }

    /// `POST /admin/dead-letters/{id}/replay`.
    pub async fn replay(&self, letter: &str) -> Response {
        self.admin(
            Method::POST,
            &format!("/admin/dead-letters/{letter}/replay"),
        )
        .await
    }

    pub async fn admin(&self, method: Method, path: &str) -> Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("admin request sent")
    }

    /// `GET path` on the admin API, asserting 200; the JSON answer.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        let response = self.admin(Method::GET, path).await;
        assert_eq!(response.status(), reqwest::StatusCode::OK, "GET {path}");
        response.json().await.expect("a JSON answer")
    }

    /// Stops the host and returns its database for a restart.
    pub async fn stop(mut self) -> TestDatabase {
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

/// `POST /tasks` once on the host at `addr` with `token`, asserting 201 (the load
/// generators' request).
pub async fn create_load_task(client: &reqwest::Client, addr: SocketAddr, token: &str) {
    let response = client
        .post(format!("http://{addr}/tasks"))
        .bearer_auth(token)
        .json(&serde_json::json!({"title": "load test task"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
}
