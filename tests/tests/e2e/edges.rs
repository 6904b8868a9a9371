//! Nothing lost at the edges: text either database would refuse, instants outside
//! four-digit years, hostile mapper messages, a busy database, slow clients, odd tokens.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use pakaura_tests::{
    Backend, Options, TestDatabase, expect_problem, on_both_databases, spawn_app, spawn_with,
};
use pakaura_tests::{DaprSink, WAIT, dapr_options, sink_behaviour, task_id, wait_for_dead_letters};

/// Control characters the API refuses in a title (and, but for tab and line breaks, in
/// a description), with PostgreSQL's nemesis first.
const CONTROLS: [&str; 4] = ["\u{0}", "\u{1b}[31m", "\u{7f}", "\u{85}"];

async fn control_characters_are_refused_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = task_id(&app, "alice", json!({"title": "fine"})).await;
    for c in CONTROLS {
        for (method, path, field, body) in [
            (
                Method::POST,
                "/tasks".to_owned(),
                "title",
                json!({"title": format!("a{c}b")}),
            ),
            (
                Method::POST,
                "/tasks".to_owned(),
                "description",
                json!({"title": "t", "description": format!("a{c}b")}),
            ),
            (
                Method::PATCH,
                format!("/tasks/{id}"),
                "title",
                json!({"title": format!("a{c}b")}),
            ),
            (
                Method::PATCH,
                format!("/tasks/{id}"),
                "description",
                json!({"description": format!("a{c}b")}),
            ),
        ] {
            let response = app
                .send(method.clone(), &path, Some("alice"), Some(body))
                .await;
            let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(problem["field"], field, "{method} {path} {c:?}");
        }
    }
    // Tab and line breaks are fine in a description (not in a title).
    let ok = app
        .send(
            Method::POST,
            "/tasks",
            Some("alice"),
            Some(json!({"title": "t", "description": "two\nlines\r\n\ttabbed"})),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(
        body["description"], "two\nlines\r\n\ttabbed",
        "stored losslessly"
    );
    let newline_title = app
        .send(
            Method::POST,
            "/tasks",
            Some("alice"),
            Some(json!({"title": "a\nb"})),
        )
        .await;
    expect_problem(newline_title, StatusCode::UNPROCESSABLE_ENTITY).await;
}

async fn due_dates_outside_four_digit_years_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    for bad in [
        "9999-12-31T23:00:00-05:00",
        "0000-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59Z",
        "+10000-01-01T00:00:00Z",
        "2026-03-01t09:00:00z",
    ] {
        let response = app
            .send(
                Method::POST,
                "/tasks",
                Some("alice"),
                Some(json!({"title": "t", "due_date": bad})),
            )
            .await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["field"], "due_date", "{bad}");
    }
    // The extremes that are accepted read back as RFC 3339 and map like any other.
    for (sent, stored) in [
        ("0001-01-01T00:00:00+23:59", "0000-12-31T00:01:00.000Z"),
        ("9998-12-31T23:59:59-23:59", "9999-01-01T23:58:59.000Z"),
    ] {
        let task = app
            .create_task("alice", json!({"title": "far", "due_date": sent}))
            .await;
        assert_eq!(task["due_date"], stored);
        let id = task["id"].as_str().unwrap();
        let read = app.get_json("alice", &format!("/tasks/{id}")).await;
        assert_eq!(read["due_date"], stored);
    }
    // Every mutation above mapped: no dead letter.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let letters: Value = app
        .admin(Method::GET, "/admin/dead-letters")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(letters["dead_letters"], json!([]));
}

/// A mapper whose `err` (or trap) text carries a NUL and escape sequences: the mutation
/// ends as a dead letter with the text escaped, and the task's later mutations go on.
async fn hostile_mapper_text_ends_as_a_dead_letter_and_holds_nothing(backend: Backend) {
    for mode in ["hostile-err", "hostile-panic"] {
        let sink = DaprSink::start(sink_behaviour()).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            pakaura_tests::guests::MISBEHAVE,
            dir.path().join("50-misbehave.wasm"),
        )
        .unwrap();
        let settings = dir.path().join("settings.json");
        std::fs::write(&settings, json!({"misbehave": {"mode": mode}}).to_string()).unwrap();
        let app = spawn_with(
            backend,
            // The task's later events go on past the parked one (no hold): what is
            // tested here is the hostile text, stored safely.
            dapr_options(&sink)
                .set("RELAY_ON_POISON", "skip")
                .set("MAPPERS_DIR", dir.path().display().to_string())
                .set("MAPPER_SETTINGS_FILE", settings.display().to_string()),
        )
        .await;
        let id = task_id(&app, "alice", json!({"title": "hostile"})).await;
        let letters = wait_for_dead_letters(&app, 1).await;
        let reason = letters[0]["reason"].as_str().unwrap();
        assert!(
            !reason.contains('\u{0}') && !reason.contains('\u{1b}'),
            "{reason:?}"
        );
        assert!(
            reason.contains("\\u{0}") && reason.contains("\\u{1b}"),
            "{reason:?}"
        );
        assert_eq!(letters[0]["mapper"], "misbehave");
        // The task's next mutation is mapped and published.
        let renamed = app
            .send(
                Method::PATCH,
                &format!("/tasks/{id}"),
                Some("alice"),
                Some(json!({"title": "fine now"})),
            )
            .await;
        assert_eq!(renamed.status(), StatusCode::OK, "{mode}");
        let published = sink.wait_for_published(3, WAIT).await;
        let types: Vec<&str> = published.iter().map(|r| r.event_type()).collect();
        assert!(
            types.contains(&"task.updated") && types.contains(&"test.ok"),
            "{types:?}"
        );
    }
}

/// Text that only reaches the database through the relay (a Dapr error body) is made
/// safe too: a sidecar refusing with a NUL in its message parks a readable letter.
async fn a_sidecar_error_body_with_a_nul_is_stored_safely(backend: Backend) {
    let mut behaviour = sink_behaviour();
    behaviour.pubsub = "other\u{0}name".into();
    let sink = DaprSink::start(behaviour).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    task_id(&app, "alice", json!({"title": "t"})).await;
    let letters = wait_for_dead_letters(&app, 2).await;
    for letter in letters {
        let reason = letter["reason"].as_str().unwrap();
        assert!(reason.contains("ERR_PUBSUB_NOT_FOUND"), "{reason}");
        assert!(!reason.contains('\u{0}'));
    }
}

async fn tokens_with_unusable_subjects_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let now = chrono::Utc::now().timestamp();
    for sub in ["nul\u{0}user", &"u".repeat(256)] {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({"sub": sub, "exp": now + 600}),
            &jsonwebtoken::EncodingKey::from_secret(pakaura_tests::JWT_SECRET.as_bytes()).unwrap(),
        )
        .unwrap();
        let response = app
            .client
            .get(app.url("/tasks"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, StatusCode::UNAUTHORIZED).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("sub"),
            "{problem}"
        );
    }
}

/// A client that never finishes its request headers is cut off after
/// `HTTP_HEADER_TIMEOUT`; the server keeps serving others.
async fn slow_request_headers_are_cut_off(backend: Backend) {
    let app = spawn_with(
        backend,
        Options::default().set("HTTP_HEADER_TIMEOUT", "300ms"),
    )
    .await;
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection");
    let healthy = app.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(healthy.status(), StatusCode::OK);
}

on_both_databases!(
    control_characters_are_refused_naming_the_field,
    due_dates_outside_four_digit_years_are_refused,
    hostile_mapper_text_ends_as_a_dead_letter_and_holds_nothing,
    a_sidecar_error_body_with_a_nul_is_stored_safely,
    tokens_with_unusable_subjects_are_refused,
    slow_request_headers_are_cut_off,
);

/// A database another process holds locked answers 503 with `Retry-After`, not 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_database_answers_503() {
    let app = spawn_with(
        Backend::Sqlite,
        Options::default().set("DATABASE_TIMEOUT", "200ms"),
    )
    .await;
    let path = app.database.url.trim_start_matches("sqlite:").to_owned();
    let mut locker = {
        use sqlx::ConnectOptions;
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap()
    };
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();
    let response = app
        .send(
            Method::POST,
            "/tasks",
            Some("alice"),
            Some(json!({"title": "blocked"})),
        )
        .await;
    assert_eq!(response.headers()["retry-after"], "1");
    expect_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let after = app
        .send(
            Method::POST,
            "/tasks",
            Some("alice"),
            Some(json!({"title": "free again"})),
        )
        .await;
    assert_eq!(after.status(), StatusCode::CREATED);
}

/// On SQLite the process writes through one connection: the readers refuse writes, and
/// the relay's handle shares the API's writer, so a write waits its turn there (in
/// order) instead of in SQLite's busy handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_go_through_one_connection() {
    use pakaura_host::store::{Db, PoolSettings};

    let database = TestDatabase::create(Backend::Sqlite).await;
    let api = Db::connect(&database.url).await.unwrap();
    api.migrate().await.unwrap();
    let relay = api
        .companion(&PoolSettings {
            max_connections: 2,
            ..PoolSettings::default()
        })
        .await
        .unwrap();
    let (Db::Sqlite(api_sqlite), Db::Sqlite(relay_sqlite)) = (&api, &relay) else {
        panic!("a SQLite URL gives SQLite handles");
    };

    let refused = sqlx::query("CREATE TABLE forbidden (a INTEGER)")
        .execute(api_sqlite.reader())
        .await
        .expect_err("a reader refuses writes");
    assert!(refused.to_string().contains("readonly"), "{refused}");

    let held = api_sqlite.writer().begin().await.unwrap();
    // (Not `num_idle()`: sqlx counts a connection coming back to the pool after it is
    // handed out again, so the count can briefly read as usize::MAX.)
    assert!(
        relay_sqlite.writer().try_acquire().is_none(),
        "the relay's writer is the API's, and the API holds it"
    );
    let waiting = tokio::spawn(async move {
        pakaura_tests::assert::store_new_task(&relay, "alice", "after the held write").await
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "a write went past the held writer");
    held.rollback().await.unwrap();
    let task = waiting
        .await
        .unwrap()
        .expect("the write goes through once the writer is free");
    assert_eq!(
        api.get_task("alice", task.id)
            .await
            .unwrap()
            .map(|t| t.title),
        Some("after the held write".to_owned())
    );
}
