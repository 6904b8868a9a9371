//! The transactional outbox: one row per committed mutation, none for a failed one.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use pakaura_host::domain::{
    Action, Description, DueDate, Mutation, MutationContext, NewTask, Origin, TaskTitle,
};
use pakaura_host::store::{Db, PoolSettings, StoreError};
use pakaura_host::trace::TraceParent;
use pakaura_tests::{Backend, TestDatabase, mutations_of, on_both_databases, spawn_app};

async fn every_mutation_writes_one_outbox_row_with_the_mutation(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .post(app.url("/tasks"))
        .bearer_auth(pakaura_tests::token_for("alice"))
        .header("x-correlation-id", "req-123")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&json!({"title": "a", "due_date": "2026-03-01T09:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-correlation-id"], "req-123");
    let task: Value = response.json().await.unwrap();
    let id = task["id"].as_str().unwrap().to_owned();

    app.send(
        Method::PATCH,
        &format!("/tasks/{id}"),
        Some("alice"),
        Some(json!({"title": "b", "due_date": null})),
    )
    .await;
    app.send(
        Method::PATCH,
        &format!("/tasks/{id}"),
        Some("alice"),
        Some(json!({"title": "b"})),
    )
    .await;
    app.post_task("alice", &id, "complete").await;
    app.post_task("alice", &id, "complete").await;
    app.post_task("alice", &id, "uncomplete").await;
    app.send(Method::DELETE, &format!("/tasks/{id}"), Some("alice"), None)
        .await;

    let mutations = mutations_of(&app.db, &id).await;
    let actions: Vec<Action> = mutations.iter().map(|m| m.action).collect();
    assert_eq!(
        actions,
        [
            Action::Created,
            Action::Updated,
            Action::Completed,
            Action::Uncompleted,
            Action::Deleted
        ],
        "no-op changes write no row"
    );
    let created = &mutations[0];
    assert_eq!(created.correlation_id, "req-123");
    assert_eq!(created.origin, Origin::Rest);
    assert!(created.changes.is_empty());
    let mut snapshot = serde_json::to_value(&created.task).unwrap();
    assert_eq!(snapshot["user_id"], "alice");
    snapshot.as_object_mut().unwrap().remove("user_id");
    assert_eq!(
        snapshot, task,
        "the mutation holds the task as the API returned it"
    );

    let updated = &mutations[1];
    let changes: Vec<(&str, &str, &str)> = updated
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.old_value.as_str(), c.new_value.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("title", "\"a\"", "\"b\""),
            ("due_date", "\"2026-03-01T09:00:00.000Z\"", "null")
        ]
    );
    assert_eq!(updated.task.title, "b");
    let deleted = mutations.last().unwrap();
    assert_eq!(
        deleted.task.title, "b",
        "deleted carries the task as it was"
    );
    assert!(mutations.iter().all(|m| m.task.user_id == "alice"));
    let ids: std::collections::HashSet<Uuid> = mutations.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), mutations.len(), "mutation ids are unique");

    let rows = app
        .db
        .outbox_rows(Some(Uuid::parse_str(&id).unwrap()))
        .await
        .unwrap();
    assert_eq!(
        rows[0].traceparent.as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(rows[1].traceparent, None);
}

async fn clearing_completed_writes_a_deleted_row_per_task(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for title in ["a", "b"] {
        let id = app.create_task("alice", json!({"title": title})).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.post_task("alice", &id, "complete").await;
        ids.push(id);
    }
    app.send(Method::DELETE, "/tasks?completed=true", Some("alice"), None)
        .await;
    for id in &ids {
        let actions: Vec<Action> = mutations_of(&app.db, id)
            .await
            .iter()
            .map(|m| m.action)
            .collect();
        assert_eq!(
            actions,
            [Action::Created, Action::Completed, Action::Deleted]
        );
    }
}

async fn a_failed_mutation_leaves_neither_task_nor_outbox_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let kept = app.create_task("alice", json!({"title": "kept"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Break the outbox so the second statement of the transaction fails.
    exec(&app.db, "ALTER TABLE outbox RENAME TO outbox_broken").await;
    let response = app
        .send(
            Method::POST,
            "/tasks",
            Some("alice"),
            Some(json!({"title": "lost"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let problem: Value = response.json().await.unwrap();
    assert!(
        !problem["detail"].as_str().unwrap().contains("outbox"),
        "no internals leak: {problem}"
    );
    let response = app
        .send(
            Method::PATCH,
            &format!("/tasks/{kept}"),
            Some("alice"),
            Some(json!({"title": "changed"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    exec(&app.db, "ALTER TABLE outbox_broken RENAME TO outbox").await;

    let list: Value = app.get_json("alice", "/tasks").await;
    let titles: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["kept"],
        "the task insert and update rolled back with the outbox insert"
    );
    assert_eq!(app.db.outbox_rows(None).await.unwrap().len(), 1);
}

async fn exec(db: &Db, sql: &'static str) {
    match db {
        Db::Sqlite(sqlite) => sqlx::query(sql).execute(sqlite.writer()).await.map(|_| ()),
        Db::Postgres(pg) => sqlx::query(sql).execute(pg.pool()).await.map(|_| ()),
    }
    .unwrap();
}

/// A new task of `user`'s; an odd `n` gives it a description and a due date (so a batch
/// mixes values and NULLs in each column).
fn creation(user: &str, title: &str, n: usize) -> Mutation {
    let ctx = MutationContext {
        origin: Origin::Rest,
        correlation_id: format!("c-{title}"),
        traceparent: None,
    };
    let odd = n % 2 == 1;
    let new = NewTask {
        title: TaskTitle::parse(title).unwrap(),
        description: if odd {
            Description::parse(&format!("about {title}")).unwrap()
        } else {
            None
        },
        due_date: odd.then(|| DueDate::parse("2026-03-01T09:00:00Z").unwrap()),
    };
    Mutation::created(user, new, &ctx)
}

/// The trace context creation `i` is stored with: every third has one.
fn trace(i: usize) -> Option<TraceParent> {
    i.is_multiple_of(3)
        .then(|| TraceParent::parse(&format!("00-{:032x}-{:016x}-01", i + 1, i + 1)).unwrap())
}

/// Many creations at once go through the store's group commit (see
/// `host/src/store/group_commit.rs`): each is answered with its own outcome, a clash fails
/// alone, and every other task is stored with exactly its outbox row.
async fn creations_at_once_commit_together_and_a_clash_fails_alone(backend: Backend) {
    const CLASH: usize = 150;
    let database = TestDatabase::create(backend).await;
    let db = Db::connect_with(&database.url, &PoolSettings::default())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let first = creation("ann", "first", 0);
    db.insert_task(&first, None).await.unwrap();

    let mut batch: Vec<Mutation> = (0..300)
        .map(|i| creation("ann", &format!("t{i}"), i))
        .collect();
    batch[CLASH].task.id = first.task.id;
    batch[CLASH].task.title = "clash".into();
    let outcomes = futures::future::join_all(
        batch
            .iter()
            .enumerate()
            .map(|(i, m)| db.insert_task(m, trace(i))),
    )
    .await;
    for (i, outcome) in outcomes.iter().enumerate() {
        if i == CLASH {
            let Err(StoreError::Database(sqlx::Error::Database(e))) = outcome else {
                panic!("the clash should fail with the database's error: {outcome:?}");
            };
            assert!(e.is_unique_violation(), "{e}");
        } else {
            assert!(outcome.is_ok(), "creation {i}: {outcome:?}");
        }
    }

    let rows = db.outbox_rows(None).await.unwrap();
    let mut stored: Vec<(Uuid, Uuid)> = rows.iter().map(|r| (r.id, r.task_id)).collect();
    let mut want: Vec<(Uuid, Uuid)> = std::iter::once(&first)
        .chain(
            batch
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != CLASH)
                .map(|(_, m)| m),
        )
        .map(|m| (m.id, m.task.id))
        .collect();
    stored.sort_unstable();
    want.sort_unstable();
    assert_eq!(
        stored, want,
        "one outbox row per stored creation, none of the clash"
    );
    for row in &rows {
        let m = row.decode().unwrap();
        assert_eq!(row.id, m.id);
        let task = db.get_task("ann", m.task.id).await.unwrap().unwrap();
        assert_eq!(task, m.task, "the task row is the mutation's");
        let i = batch.iter().position(|b| b.id == m.id);
        assert_eq!(row.trace_context(), i.and_then(trace), "creation {i:?}");
    }

    // On PostgreSQL the rows a statement inserts share its transaction id: fewer
    // transactions than creations means they were committed in groups.
    if let Db::Postgres(pg) = &db {
        let (transactions,): (i64,) =
            sqlx::query_as("SELECT count(DISTINCT xmin::text) FROM outbox")
                .fetch_one(pg.pool())
                .await
                .unwrap();
        assert!(
            transactions < 300,
            "{transactions} transactions for 300 creations at once"
        );
    }
    db.close().await;
}

on_both_databases!(
    creations_at_once_commit_together_and_a_clash_fails_alone,
    every_mutation_writes_one_outbox_row_with_the_mutation,
    clearing_completed_writes_a_deleted_row_per_task,
    a_failed_mutation_leaves_neither_task_nor_outbox_row,
);
