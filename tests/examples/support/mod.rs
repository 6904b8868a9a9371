//! What the load generators share: a fresh database per run and its removal, the Dapr
//! sidecar stand-in, a task creation.

#![allow(dead_code, reason = "each example uses its own part of this module")]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};

/// The administrative PostgreSQL URL (`PAKAURA_TEST_POSTGRES`, as the tests use).
pub(crate) fn postgres_admin_url() -> String {
    std::env::var("PAKAURA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh database: a SQLite file named `tag` in `dir`, or a new PostgreSQL database
/// (named `pakaura_load_…`, dropped by [`drop_database`]).
pub(crate) async fn database_url(kind: &str, dir: &Path, tag: &str) -> String {
    match kind {
        "sqlite" => format!("sqlite:{}", dir.join(format!("{tag}.db")).display()),
        "postgres" => {
            let admin = postgres_admin_url();
            let name = format!("pakaura_load_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::PgPool::connect(&admin).await.expect("postgres");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            format!("{base}/{name}")
        }
        other => panic!("--database must be sqlite or postgres, not {other}"),
    }
}

/// Removes a PostgreSQL database this run created (SQLite files go with the temp dir).
pub(crate) async fn drop_database(url: &str) {
    if let Some((_, name)) = url.rsplit_once('/')
        && name.starts_with("pakaura_load_")
        && let Ok(pool) = sqlx::PgPool::connect(&postgres_admin_url()).await
    {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
    }
}

/// `POST /tasks` once, asserting 201.
pub(crate) async fn create_task(client: &reqwest::Client, addr: SocketAddr, token: &str) {
    let response = client
        .post(format!("http://{addr}/tasks"))
        .bearer_auth(token)
        .json(&serde_json::json!({"title": "load test task"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
}

/// A Dapr sidecar stand-in on `addr` that accepts every publish (single and bulk) after
/// `latency` and counts the events; it runs until the process ends. Returns the address
/// it listens on (`addr` may have port 0).
pub(crate) async fn serve_sink(
    addr: SocketAddr,
    latency: Duration,
    count: Arc<AtomicUsize>,
) -> SocketAddr {
    let single = count.clone();
    let app = Router::new()
        .route(
            "/v1.0/publish/{pubsub}/{topic}",
            post(move || {
                let count = single.clone();
                async move {
                    tokio::time::sleep(latency).await;
                    count.fetch_add(1, Ordering::Relaxed);
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/{version}/publish/bulk/{pubsub}/{topic}",
            post(move |body: Bytes| {
                let count = count.clone();
                async move {
                    tokio::time::sleep(latency).await;
                    let entries: Vec<serde_json::Value> =
                        serde_json::from_slice(&body).expect("a bulk body is a JSON array");
                    count.fetch_add(entries.len(), Ordering::Relaxed);
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/v1.0/healthz/outbound",
            get(|| async { StatusCode::NO_CONTENT }),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("binding the sidecar stand-in to {addr}: {e}"));
    let bound = listener
        .local_addr()
        .expect("a bound listener has an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    bound
}
