//! Promote and roll back: the renamed candidate goes live in one step (past the
//! compatibility gate only with `allow_breaking`), a rollback brings back exactly the
//! envelopes of before, both are recorded; a restarted host and a second host on the same
//! database run what was released.

use std::collections::BTreeMap;
use std::time::Duration;

use pakaura_tests::{
    Backend, DaprSink, Options, TestApp, TestDatabase, dapr_options, expect_problem, guests,
    on_both_databases, sink_behaviour, spawn_with, start, task_id,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{
    DUE, RENAMED_TYPE, admin, admin_json, candidates, drained, envelopes_of, id_of, live_default,
    releases, upload,
};

/// Promotes `candidate`, letting its breaking schema change through; the release.
async fn promote(app: &TestApp, candidate: &Value) -> Value {
    let path = format!(
        "/admin/candidates/{}/promote?allow_breaking=true",
        id_of(candidate)
    );
    admin_json(app, Method::POST, &path, None, StatusCode::OK).await
}

/// Rolls back the latest promotion; the release.
async fn rollback(app: &TestApp) -> Value {
    admin_json(
        app,
        Method::POST,
        "/admin/mappers/rollback",
        None,
        StatusCode::OK,
    )
    .await
}

/// Creates a task (the same title and due date every time) and waits until its envelopes
/// are published; them.
async fn envelopes_of_a_new_task(app: &TestApp, sink: &DaprSink) -> Vec<Value> {
    let task = task_id(
        app,
        "alice",
        json!({"title": "water plants", "due_date": DUE}),
    )
    .await;
    drained(app).await;
    let envelopes = envelopes_of(sink, &task);
    assert_eq!(envelopes.len(), 3, "{envelopes:#?}");
    envelopes
}

/// The `task.created` envelope among `envelopes`.
fn created(envelopes: &[Value]) -> &Value {
    envelopes
        .iter()
        .find(|e| e["type"] == RENAMED_TYPE)
        .expect("a task.created envelope")
}

/// The [`shape`] of each envelope, by type.
fn shapes(envelopes: &[Value]) -> BTreeMap<String, Value> {
    envelopes
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_owned(), shape(e)))
        .collect()
}

/// An envelope with what differs from one task to another taken out: its id, time,
/// subject, trace and the task id and timestamp in its data.
fn shape(envelope: &Value) -> Value {
    let mut shape = envelope.clone();
    let map = shape.as_object_mut().unwrap();
    for per_task in ["id", "time", "subject", "traceid", "traceparent"] {
        map.remove(per_task);
    }
    let data = map["data"].as_object_mut().unwrap();
    data.remove("task_id");
    data.remove("timestamp");
    shape
}

/// Promote, then roll back: the envelopes after the rollback are those of before the
/// promotion, and each step is recorded with the digests it went from and to.
async fn promote_then_rollback_returns_the_exact_previous_envelopes(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let nothing = admin(&app, Method::POST, "/admin/mappers/rollback", None).await;
    expect_problem(nothing, StatusCode::CONFLICT).await;
    assert_eq!(releases(&app).await, Vec::<Value>::new());

    let first = envelopes_of_a_new_task(&app, &sink).await;
    let builtin = live_default(&app).await;
    let candidate = upload(&app, guests::RENAMED).await;

    // Without allow_breaking, the gate refuses: `title` is gone from task.created.
    let path = format!("/admin/candidates/{}/promote", id_of(&candidate));
    for query in ["", "?allow_breaking=false"] {
        let refused = admin(&app, Method::POST, &format!("{path}{query}"), None).await;
        let problem = expect_problem(refused, StatusCode::CONFLICT).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("task.created") && detail.contains("/title"),
            "{problem}"
        );
    }
    assert_eq!(live_default(&app).await["sha256"], builtin["sha256"]);

    let promoted = promote(&app, &candidate).await;
    assert_eq!(promoted["action"], "promote", "{promoted}");
    assert_eq!(promoted["mapper"], "default");
    assert_eq!(promoted["version"], candidate["version"]);
    assert_eq!(promoted["sha256"], candidate["sha256"]);
    assert_eq!(promoted["previous_version"], builtin["version"]);
    assert_eq!(promoted["previous_sha256"], builtin["sha256"]);
    assert_eq!(promoted["reverts"], Value::Null);
    assert!(!promoted["by"].as_str().unwrap().is_empty());
    let live = live_default(&app).await;
    assert_eq!(live["sha256"], candidate["sha256"], "{live}");

    let second = envelopes_of_a_new_task(&app, &sink).await;
    let data = &created(&second)["data"];
    assert_eq!(data["name"], "water plants", "{data}");
    assert!(data.get("title").is_none(), "{data}");
    let before = shapes(&first);
    let mut changed = shapes(&second);
    assert_ne!(changed[RENAMED_TYPE], before[RENAMED_TYPE]);
    changed.insert(RENAMED_TYPE.to_owned(), before[RENAMED_TYPE].clone());
    assert_eq!(changed, before, "only task.created changes");

    let rolled = rollback(&app).await;
    assert_eq!(rolled["action"], "rollback", "{rolled}");
    assert_eq!(rolled["mapper"], "default");
    assert_eq!(rolled["reverts"], promoted["generation"]);
    assert_eq!(rolled["previous_sha256"], candidate["sha256"]);
    assert_eq!(rolled["previous_version"], candidate["version"]);
    assert!(
        rolled["sha256"].is_null() || rolled["sha256"] == builtin["sha256"],
        "back to the built-in: {rolled}"
    );
    assert!(rolled["generation"].as_i64() > promoted["generation"].as_i64());
    assert_eq!(live_default(&app).await["sha256"], builtin["sha256"]);

    let third = envelopes_of_a_new_task(&app, &sink).await;
    assert_eq!(
        shapes(&third),
        before,
        "the envelopes of before the promotion"
    );

    let releases = releases(&app).await;
    let listed: Vec<(&Value, &Value)> = releases
        .iter()
        .map(|r| (&r["generation"], &r["action"]))
        .collect();
    assert_eq!(
        listed,
        [
            (&rolled["generation"], &json!("rollback")),
            (&promoted["generation"], &json!("promote")),
        ],
        "newest first: {releases:#?}"
    );
    assert_eq!(releases[1]["sha256"], candidate["sha256"]);
    assert_eq!(releases[0]["previous_sha256"], candidate["sha256"]);

    // The one promotion is undone: nothing is left to roll back.
    let nothing = admin(&app, Method::POST, "/admin/mappers/rollback", None).await;
    expect_problem(nothing, StatusCode::CONFLICT).await;
}

/// A host started again on the same database runs the promoted mapper from the start, and
/// after a rollback (made by the restarted host) the built-in again.
async fn a_restarted_host_comes_up_with_the_released_mapper(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let builtin = live_default(&app).await;
    let candidate = upload(&app, guests::RENAMED).await;
    promote(&app, &candidate).await;
    let database = app.stop().await;

    let app = start(database, dapr_options(&sink)).await;
    let live = live_default(&app).await;
    assert_eq!(live["sha256"], candidate["sha256"], "{live}");
    assert_eq!(live["version"], candidate["version"]);
    let envelopes = envelopes_of_a_new_task(&app, &sink).await;
    assert_eq!(created(&envelopes)["data"]["name"], "water plants");
    // The restarted host has no candidates of its own, yet rolls the release back.
    assert_eq!(candidates(&app).await, Vec::<Value>::new());
    rollback(&app).await;
    assert_eq!(live_default(&app).await["sha256"], builtin["sha256"]);
    let database = app.stop().await;

    let app = start(database, dapr_options(&sink)).await;
    assert_eq!(live_default(&app).await["sha256"], builtin["sha256"]);
    let envelopes = envelopes_of_a_new_task(&app, &sink).await;
    assert_eq!(created(&envelopes)["data"]["title"], "water plants");
}

on_both_databases!(
    promote_then_rollback_returns_the_exact_previous_envelopes,
    a_restarted_host_comes_up_with_the_released_mapper,
);

/// Waits until `app` runs the `default` mapper with `sha256`.
async fn runs(app: &TestApp, sha256: &Value, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let live = live_default(app).await;
        if live["sha256"] == *sha256 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second host still runs {live} after {within:?}, not {sha256}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// PostgreSQL only (replicas share one database): a promotion and a rollback made on one
/// host reach another host on the same database within `MAPPER_SYNC_INTERVAL` (1s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_reaches_another_host_on_the_same_postgres_database() {
    let sink = DaprSink::start(sink_behaviour()).await;
    let options: Options = dapr_options(&sink).set("MAPPER_SYNC_INTERVAL", "1s");
    let database = TestDatabase::create(Backend::Postgres).await;
    let url = database.url.clone();
    let first = start(database, options.clone()).await;
    let second = start(TestDatabase::existing(&url), options).await;
    let builtin = live_default(&second).await;

    let candidate = upload(&first, guests::RENAMED).await;
    let promoted = promote(&first, &candidate).await;
    runs(&second, &candidate["sha256"], Duration::from_secs(10)).await;
    let releases = releases(&second).await;
    assert_eq!(releases[0]["generation"], promoted["generation"]);
    let task = task_id(&second, "alice", json!({"title": "on the second host"})).await;
    drained(&second).await;
    let envelopes = envelopes_of(&sink, &task);
    assert_eq!(created(&envelopes)["data"]["name"], "on the second host");

    rollback(&first).await;
    runs(&second, &builtin["sha256"], Duration::from_secs(10)).await;
}
