//! Mapper failures become dead letters; replay after a fix publishes them. Reload
//! through the admin API swaps sets atomically. Several relays share PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pakaura_tests::{Backend, Options, TestDatabase, on_both_databases, spawn_with, start};
use pakaura_tests::{
    DaprSink, Recorded, WAIT, dapr_options, sink_behaviour, wait_for_dead_letters,
};

/// A mapper folder holding the misbehaving guest, and its settings file.
struct MapperDir {
    dir: tempfile::TempDir,
}

impl MapperDir {
    fn with_misbehave(mode: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mappers")).unwrap();
        std::fs::copy(
            pakaura_tests::guests::MISBEHAVE,
            dir.path().join("mappers/50-misbehave.wasm"),
        )
        .unwrap();
        let this = Self { dir };
        this.set_mode(mode);
        this
    }

    fn set_mode(&self, mode: &str) {
        let settings = json!({"misbehave": {"mode": mode}});
        std::fs::write(self.settings(), settings.to_string()).unwrap();
    }

    fn folder(&self) -> &Path {
        self.dir.path()
    }

    fn settings(&self) -> std::path::PathBuf {
        self.folder().join("settings.json")
    }

    fn options(&self, base: Options) -> Options {
        base.set(
            "MAPPERS_DIR",
            self.folder().join("mappers").display().to_string(),
        )
        .set(
            "MAPPER_SETTINGS_FILE",
            self.settings().display().to_string(),
        )
    }
}

async fn a_mapper_trap_parks_a_dead_letter_and_replay_after_a_fix_publishes_it(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let mappers = MapperDir::with_misbehave("panic");
    let app = spawn_with(backend, mappers.options(dapr_options(&sink))).await;

    let id = app.create_task("alice", json!({"title": "trapped"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let letters = wait_for_dead_letters(&app, 1).await;
    let letter = &letters[0];
    assert_eq!(letter["kind"], "mapping");
    assert_eq!(letter["mapper"], "misbehave");
    assert!(
        letter["reason"].as_str().unwrap().contains("trapped"),
        "{letter}"
    );

    // The host keeps serving and other mappers' work is not half-published.
    let other = app.send(Method::GET, "/tasks", Some("alice"), None).await;
    assert_eq!(other.status(), StatusCode::OK);
    assert!(
        sink.published().is_empty(),
        "a failed mutation publishes nothing"
    );

    // Replaying before the fix fails again and keeps the letter.
    let letter_id = letter["id"].as_str().unwrap();
    let again = app.replay(letter_id).await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);

    mappers.set_mode("ok");
    let reload = app.admin(Method::POST, "/admin/mappers/reload").await;
    assert_eq!(reload.status(), StatusCode::OK);
    let replay = app.replay(letter_id).await;
    assert_eq!(replay.status(), StatusCode::OK);

    let published = sink.wait_for_published(3, WAIT).await;
    let types: BTreeSet<&str> = published.iter().map(Recorded::event_type).collect();
    assert_eq!(
        types,
        BTreeSet::from(["task.created", "sync.task", "test.ok"])
    );
    assert!(
        published
            .iter()
            .all(|r| r.body["subject"] == id.as_str() || r.body["data"]["task_id"] == id.as_str())
    );
    let open: Value = app
        .admin(Method::GET, "/admin/dead-letters")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["dead_letters"], json!([]));
    let twice = app.replay(letter_id).await;
    assert_eq!(twice.status(), StatusCode::CONFLICT);
}

/// `GET /admin/mappers`, and the names it lists in order.
async fn mapper_names(app: &pakaura_tests::TestApp) -> (Value, Vec<String>) {
    let listed: Value = app
        .admin(Method::GET, "/admin/mappers")
        .await
        .json()
        .await
        .unwrap();
    let names = listed["mappers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    (listed, names)
}

async fn reloading_swaps_valid_sets_and_refuses_invalid_ones(backend: Backend) {
    let mappers = MapperDir::with_misbehave("ok");
    let app = spawn_with(backend, mappers.options(Options::default())).await;
    let (_, names) = mapper_names(&app).await;
    assert_eq!(names, ["default", "misbehave"]);

    // A valid swap: add the v2 mapper.
    let folder = mappers.folder().join("mappers");
    std::fs::copy(pakaura_tests::guests::V2, folder.join("60-v2.wasm")).unwrap();
    let reload = app.admin(Method::POST, "/admin/mappers/reload").await;
    assert_eq!(reload.status(), StatusCode::OK);
    let (listed, names) = mapper_names(&app).await;
    assert_eq!(names, ["default", "misbehave", "v2"]);
    assert_eq!(listed["mappers"][2]["version"], "2.0.0");
    assert_eq!(listed["mappers"][2]["sha256"].as_str().unwrap().len(), 64);

    // An invalid component refuses the whole new set; the old one stays live.
    std::fs::write(folder.join("70-broken.wasm"), b"\0asm not really").unwrap();
    let refused = app.admin(Method::POST, "/admin/mappers/reload").await;
    let problem = pakaura_tests::expect_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("70-broken.wasm"),
        "{problem}"
    );
    let listed: Value = app
        .admin(Method::GET, "/admin/mappers")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["mappers"].as_array().unwrap().len(),
        3,
        "the previous set stays live"
    );
    app.create_task("alice", json!({"title": "still mapped"}))
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let body: Value = app
            .admin(Method::GET, "/admin/envelopes")
            .await
            .json()
            .await
            .unwrap();
        let types: BTreeSet<String> = body["envelopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap().to_owned())
            .collect();
        if types.contains("com.pakaura.task.created.v2") && types.contains("test.ok") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{types:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both_databases!(
    a_mapper_trap_parks_a_dead_letter_and_replay_after_a_fix_publishes_it,
    reloading_swaps_valid_sets_and_refuses_invalid_ones,
);

/// Two hosts (two relays) on one PostgreSQL database publish every event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_relays_on_one_postgres_database_publish_each_event_once() {
    let sink = DaprSink::start(sink_behaviour()).await;
    let database = TestDatabase::create(Backend::Postgres).await;
    let url = database.url.clone();
    let first = start(database, dapr_options(&sink)).await;
    let second = start(TestDatabase::existing(&url), dapr_options(&sink)).await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let app = if i % 2 == 0 { &first } else { &second };
        let id = app
            .create_task_id("alice", json!({"title": format!("t{i}")}))
            .await;
        app.post_task("alice", &id, "complete").await;
        tasks.push(id);
    }
    sink.wait_for_published(30 * 4, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let published = sink.published();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &published {
        *counts.entry(r.id()).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "published more than once: {twice:?}");
    assert_eq!(published.len(), 120);
    for id in &tasks {
        let order: Vec<&str> = published
            .iter()
            .filter(|r| r.body["subject"] == id.as_str() && r.topic == "task-events")
            .map(Recorded::event_type)
            .collect();
        assert_eq!(order, ["task.created", "task.completed"]);
    }
}
