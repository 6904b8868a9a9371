//! What the load generators share: a fresh database per run and its removal.

use std::net::SocketAddr;
use std::path::Path;

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
