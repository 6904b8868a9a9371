//! Candidate mappers end to end (issue 21): a component uploaded through the admin API,
//! diffed over the stored mutation history, shadowed beside the live set, promoted and
//! rolled back, on one host, after a restart and across two hosts; and `pakaura mapper
//! diff` over a database a host wrote.
//!
//! The candidates are built on the default mapper's own catalogue (`tests/guests/`), so they
//! differ from the built-in default in exactly one known way: [`guests::RENAMED`] calls
//! `title` `name` in `task.created`, [`guests::IDENTICAL`] does not differ, and
//! [`guests::FAILING`] fails on every `deleted` mutation. All three have the default's name
//! and version, so the `dataschema` the host gives their events (a URL naming the version)
//! is the live one's.
//!
//! - `diff`: history diffs through the admin API (what they find, their window, cancelling).
//! - `shadow`: shadow runs, and a failing candidate that must leave no trace.
//! - `release`: promote, roll back, restart, a second host.
//! - `cli`: `pakaura mapper diff`.

mod cli;
mod diff;
mod release;
mod shadow;

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use pakaura_host::store::Backlog;
use pakaura_tests::{ADMIN_TOKEN, DaprSink, TestApp, task_id};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

/// The event type whose data [`guests::RENAMED`] changes, and the change: `title` → `name`.
const RENAMED_TYPE: &str = "task.created";
const RENAMED_FROM: &str = "/data/title";
const RENAMED_TO: &str = "/data/name";

/// The reason [`guests::FAILING`] gives for every `deleted` mutation.
const FAILING_REASON: &str = "this candidate cannot map deleted tasks";

/// A due date for tasks that have one.
const DUE: &str = "2026-03-01T09:00:00Z";

/// How long a history diff, a drain or a replica's sync may take at most.
const SLOW: Duration = Duration::from_secs(120);

/// `method path` on the admin API with `body` as JSON.
async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("admin request sent")
}

/// [`admin`], asserting `status`; the JSON body.
async fn admin_json(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
) -> Value {
    let response = admin(app, method.clone(), path, body).await;
    let got = response.status();
    let text = response.text().await.expect("a body");
    assert_eq!(got, status, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
}

/// Uploads the component at `path` as a candidate (201); the candidate.
async fn upload(app: &TestApp, path: &str) -> Value {
    let file = Path::new(path).file_name().unwrap().to_str().unwrap();
    let response = upload_bytes(app, file, std::fs::read(path).expect("the guest is built")).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "upload {file}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// `POST /admin/candidates?name=NAME` with `bytes`.
async fn upload_bytes(app: &TestApp, file: &str, bytes: Vec<u8>) -> Response {
    app.client
        .post(app.url(&format!("/admin/candidates?name={file}")))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .expect("upload sent")
}

/// `GET /admin/candidates`: this host's candidates, the oldest first.
async fn candidates(app: &TestApp) -> Vec<Value> {
    let list = admin_json(app, Method::GET, "/admin/candidates", None, StatusCode::OK).await;
    list["candidates"]
        .as_array()
        .unwrap_or_else(|| panic!("a list of candidates: {list}"))
        .clone()
}

/// `GET /admin/mappers/releases`: the releases, the newest first.
async fn releases(app: &TestApp) -> Vec<Value> {
    let list = admin_json(
        app,
        Method::GET,
        "/admin/mappers/releases",
        None,
        StatusCode::OK,
    )
    .await;
    list["releases"]
        .as_array()
        .unwrap_or_else(|| panic!("a list of releases: {list}"))
        .clone()
}

/// A candidate's id, for paths.
fn id_of(candidate: &Value) -> &str {
    candidate["id"].as_str().expect("a candidate has an id")
}

/// Starts a history diff of `candidate` over `window` (202) and waits for it to end; the
/// job with its report.
async fn diff(app: &TestApp, candidate: &Value, window: Value) -> Value {
    let path = format!("/admin/candidates/{}/diff", id_of(candidate));
    let started = admin_json(app, Method::POST, &path, Some(window), StatusCode::ACCEPTED).await;
    assert!(
        ["running", "done"].contains(&started["state"].as_str().unwrap()),
        "{started}"
    );
    finished_diff(app, candidate).await
}

/// Waits until the latest diff of `candidate` is no longer running; the job.
async fn finished_diff(app: &TestApp, candidate: &Value) -> Value {
    let path = format!("/admin/candidates/{}/diff", id_of(candidate));
    let deadline = tokio::time::Instant::now() + SLOW;
    loop {
        let job = admin_json(app, Method::GET, &path, None, StatusCode::OK).await;
        if job["state"] != "running" {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the diff still runs: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The report of a diff that ran to its end.
fn report_of(job: &Value) -> &Value {
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["done"], job["total"], "{job}");
    let report = &job["report"];
    assert_eq!(report["cancelled"], false, "{job}");
    assert_eq!(report["mutations"], job["done"], "{job}");
    report
}

/// The live `default` mapper as `GET /admin/mappers` lists it.
async fn live_default(app: &TestApp) -> Value {
    let list = admin_json(app, Method::GET, "/admin/mappers", None, StatusCode::OK).await;
    list["mappers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "default")
        .cloned()
        .unwrap_or_else(|| panic!("no default mapper in {list}"))
}

/// Waits until the relay has mapped every mutation and published every envelope.
async fn drained(app: &TestApp) -> Backlog {
    let deadline = tokio::time::Instant::now() + SLOW;
    loop {
        let backlog = app.db.backlog(chrono::Utc::now()).await.unwrap();
        if backlog.outbox_pending == 0 && backlog.envelopes_pending == 0 {
            return backlog;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay did not drain: {backlog:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The envelopes the sink accepted for `task`, in publish order.
fn envelopes_of(sink: &DaprSink, task: &str) -> Vec<Value> {
    sink.published()
        .into_iter()
        .filter(|r| r.body["subject"] == task)
        .map(|r| r.body)
        .collect()
}

/// What a test did to its tasks: each mutation's task and action, in the order made.
#[derive(Debug, Default)]
struct History {
    mutations: Vec<(String, &'static str)>,
}

impl History {
    fn len(&self) -> u64 {
        self.mutations.len() as u64
    }

    /// Mutations with `action`.
    fn count(&self, action: &str) -> u64 {
        self.mutations.iter().filter(|(_, a)| *a == action).count() as u64
    }

    /// Mutations of `task`.
    fn of_task(&self, task: &str) -> u64 {
        self.mutations.iter().filter(|(t, _)| t == task).count() as u64
    }

    /// The tasks, in the order they were created.
    fn tasks(&self) -> Vec<&str> {
        self.mutations
            .iter()
            .filter(|(_, a)| *a == "created")
            .map(|(t, _)| t.as_str())
            .collect()
    }

    fn push(&mut self, task: &str, action: &'static str) {
        self.mutations.push((task.to_owned(), action));
    }
}

/// Creates `tasks` tasks for alice and works on each in turn, so that the history holds
/// every action and, from 9 tasks on, every event type of the catalogue: even tasks have a
/// due date; task `i` is retitled when `i % 3 == 0`, given a new due date when `i % 4 == 1`
/// (it had none: scheduled) or `i % 8 == 0` (rescheduled), loses it when `i % 4 == 2`, is
/// completed when `i % 5 == 0` (and reopened when `i % 10 == 0`), and deleted when
/// `i % 6 == 5`.
async fn work_on_tasks(app: &TestApp, tasks: usize, history: &mut History) {
    for i in 0..tasks {
        let mut body = json!({"title": format!("task {i}")});
        if i % 2 == 0 {
            body["due_date"] = json!(DUE);
        }
        let id = task_id(app, "alice", body).await;
        history.push(&id, "created");
        let path = format!("/tasks/{id}");
        let patches = [
            (i % 3 == 0, json!({"title": format!("task {i}, retitled")})),
            (
                i % 4 == 1 || i % 8 == 0,
                json!({"due_date": "2026-04-01T09:00:00Z"}),
            ),
            (i % 4 == 2, json!({"due_date": null})),
        ];
        for (_, patch) in patches.into_iter().filter(|(when, _)| *when) {
            let response = app
                .send(Method::PATCH, &path, Some("alice"), Some(patch))
                .await;
            assert_eq!(response.status(), StatusCode::OK);
            history.push(&id, "updated");
        }
        if i % 5 == 0 {
            assert_eq!(
                app.post_task("alice", &id, "complete").await.status(),
                StatusCode::OK
            );
            history.push(&id, "completed");
            if i % 10 == 0 {
                assert_eq!(
                    app.post_task("alice", &id, "uncomplete").await.status(),
                    StatusCode::OK
                );
                history.push(&id, "uncompleted");
            }
        }
        if i % 6 == 5 {
            let response = app.send(Method::DELETE, &path, Some("alice"), None).await;
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
            history.push(&id, "deleted");
        }
    }
}

/// Creates `n` tasks for bob, 32 requests at a time.
async fn create_many(app: &TestApp, n: usize, history: &mut History) {
    let ids: Vec<String> = futures::stream::iter(0..n)
        .map(|i| task_id(app, "bob", json!({"title": format!("bulk {i}")})))
        .buffer_unordered(32)
        .collect()
        .await;
    for id in ids {
        history.push(&id, "created");
    }
}

/// The changes of the one event of `sample` that [`guests::RENAMED`] changes, asserting
/// that every other event of it is the same.
fn renamed_changes(sample: &Value) -> Vec<(String, String)> {
    let events = sample["events"].as_array().unwrap();
    let changed: Vec<&Value> = events.iter().filter(|e| e["result"] != "same").collect();
    assert_eq!(changed.len(), 1, "one event changes: {sample:#}");
    let event = changed[0];
    assert_eq!(event["result"], "changed", "{sample:#}");
    assert_eq!(event["event_type"], RENAMED_TYPE, "{sample:#}");
    assert_eq!(event["topic"], "task-events", "{sample:#}");
    assert_eq!(
        event["live"]["data"]["title"], event["candidate"]["data"]["name"],
        "{sample:#}"
    );
    let mut changes: Vec<(String, String)> = event["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_owned(),
                c["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    changes.sort();
    changes
}

/// The rename, as [`renamed_changes`] lists it.
fn the_rename() -> Vec<(String, String)> {
    vec![
        (RENAMED_TO.to_owned(), "added".to_owned()),
        (RENAMED_FROM.to_owned(), "removed".to_owned()),
    ]
}

/// `by_type`'s counts of `event_type` (of mapper `default`): same, changed, added, removed.
fn type_counts(tally: &Value, event_type: &str) -> [u64; 4] {
    let row = tally["by_type"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["event_type"] == event_type)
        .unwrap_or_else(|| panic!("no {event_type} in {}", tally["by_type"]));
    assert_eq!(row["mapper"], "default");
    ["same", "changed", "added", "removed"].map(|k| row[k].as_u64().unwrap())
}
