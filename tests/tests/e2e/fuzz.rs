//! Fuzzing in the suite: schemathesis against the served OpenAPI document (every check,
//! the stateful phase included), and property tests that drive random mutations through
//! REST and MCP and require every accepted one to map and publish.

use std::process::Stdio;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::mcp::call;
use pakaura_tests::{Backend, TestApp, on_both_databases, spawn_with, token_for};
use pakaura_tests::{DaprSink, dapr_options, sink_behaviour};

/// The schemathesis executable of the test tools (`scripts/test` installs them).
fn schemathesis_bin() -> Option<std::path::PathBuf> {
    let venv = std::env::var_os("PAKAURA_TOOLS_VENV")?;
    let st = std::path::Path::new(&venv).join("bin/st");
    st.is_file().then_some(st)
}

/// Runs schemathesis against `app`'s document with every check and the stateful phase,
/// with `token` as bearer, on the operations `selection` picks.
async fn schemathesis(app: &TestApp, token: &str, selection: &[&str]) -> Result<(), String> {
    let Some(st) = schemathesis_bin() else {
        eprintln!(
            "SKIP: schemathesis: PAKAURA_TOOLS_VENV is not set \
             (run ./scripts/test, which installs schemathesis)"
        );
        return Ok(());
    };
    let report = tempfile::tempdir().unwrap();
    let st = tokio::process::Command::new(st)
        .current_dir(report.path())
        .args(["run", &app.url("/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        // Last, so that a selection may narrow the phases.
        .args(selection)
        .args(["--max-examples", "40", "--seed", "1", "--workers", "1"])
        .arg("--no-color")
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), st)
        .await
        .expect("schemathesis finished")
        .expect("schemathesis ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Success: no failure and no error (warnings, such as operations it could not
    // reach with data, are fine).
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

async fn schemathesis_finds_nothing_wrong_with_the_api(backend: Backend) {
    let app = spawn_with(backend, pakaura_tests::Options::default()).await;
    if let Err(report) = schemathesis(&app, &token_for("alice"), &["--include-tag", "tasks"]).await
    {
        panic!("schemathesis found problems in the task API:\n{report}");
    }
    // The admin API, but for the live stream (it never ends), the playground (a binary
    // upload, and a mutation the mapper contract validates: tested in
    // console::playground) and the candidates' upload (a binary body: tested in
    // candidates).
    let admin = [
        "--include-tag",
        "admin",
        "--exclude-path",
        "/admin/flow/stream",
        "--exclude-path-regex",
        "^/admin/(playground/(run|uploads)|candidates|candidates/\\{id\\}/diff)$",
    ];
    if let Err(report) = schemathesis(&app, pakaura_tests::ADMIN_TOKEN, &admin).await {
        panic!("schemathesis found problems in the admin API:\n{report}");
    }
    // A history diff's window: every check but the one that expects any schema-valid
    // body to be accepted, since `since` must come before `until` (which JSON Schema
    // cannot say) and the answer to a window the wrong way round is a 400 naming it.
    let window = [
        "--include-path-regex",
        "^/admin/candidates/\\{id\\}/diff$",
        "--exclude-checks",
        "positive_data_acceptance",
        // One operation links to no other: nothing stateful to run.
        "--phases",
        "examples,coverage,fuzzing",
    ];
    if let Err(report) = schemathesis(&app, pakaura_tests::ADMIN_TOKEN, &window).await {
        panic!("schemathesis found problems in the history diff API:\n{report}");
    }
}

/// One random mutation request.
#[derive(Debug, Clone)]
enum Op {
    Create {
        title: String,
        description: Option<String>,
        due_date: Option<String>,
        mcp: bool,
    },
    Rename {
        title: String,
        mcp: bool,
    },
}

/// Text from the whole of Unicode, control characters and all, short and long; mostly
/// text the API accepts, so that most requests get through to the relay.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9 éüß✓🦀\u{200b}\u{3000}]{1,30}",
        2 => "\\PC{1,40}",
        1 => ".{0,20}",
        1 => "[ \\t\\n\\u{0}\\u{1b}a-zé🦀]{0,12}",
        1 => proptest::collection::vec(any::<char>(), 490..=510)
            .prop_map(|c| c.into_iter().collect()),
    ]
}

/// Due dates around the edges of what is valid, and some that are not.
fn due_date() -> impl Strategy<Value = Option<String>> {
    let year = prop_oneof![
        Just(0u32),
        Just(1),
        Just(1970),
        Just(2026),
        Just(9998),
        Just(9999),
        0u32..=9999
    ];
    let offset = prop_oneof![
        Just("Z".to_owned()),
        Just("+23:59".to_owned()),
        Just("-23:59".to_owned()),
        Just("+01:00".to_owned()),
    ];
    prop_oneof![
        Just(None),
        (year, 1u32..=12, 1u32..=28, 0u32..=23, offset)
            .prop_map(|(y, m, d, h, o)| Some(format!("{y:04}-{m:02}-{d:02}T{h:02}:30:00.5{o}"))),
        ".{0,12}".prop_map(Some),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            text(),
            proptest::option::of(text()),
            due_date(),
            any::<bool>()
        )
            .prop_map(|(title, description, due_date, mcp)| Op::Create {
                title,
                description,
                due_date,
                mcp
            }),
        (text(), any::<bool>()).prop_map(|(title, mcp)| Op::Rename { title, mcp }),
    ]
}

/// The id and title of a task, as the API answered.
type Known = (String, String);

/// The id and title in an answer's task.
fn known(task: &Value) -> Option<Known> {
    Some((
        task["id"].as_str()?.to_owned(),
        task["title"].as_str()?.to_owned(),
    ))
}

/// Applies `op` (renaming the task `last`, if one was created); returns whether it
/// recorded a mutation (a rename to the title the task has already, after normalisation,
/// is accepted and changes nothing), and the task it created or renamed. A refusal must be
/// a 4xx naming a field.
async fn apply(app: &TestApp, op: Op, last: Option<&Known>) -> (bool, Option<Known>) {
    match op {
        Op::Create {
            title,
            description,
            due_date,
            mcp,
        } => {
            let body = json!({"title": title, "description": description, "due_date": due_date});
            if mcp {
                let result = call(app, "fuzzer", "add_task", body).await;
                let content = &result["structuredContent"];
                if result["isError"] == true {
                    assert!(
                        content["status"]
                            .as_u64()
                            .is_some_and(|s| (400..500).contains(&s)),
                        "{result}"
                    );
                    return (false, None);
                }
                (true, known(content))
            } else {
                let response = app
                    .send(Method::POST, "/tasks", Some("fuzzer"), Some(body))
                    .await;
                let status = response.status();
                let body: Value = response.json().await.unwrap();
                if status == StatusCode::CREATED {
                    (true, known(&body))
                } else {
                    assert!(status.is_client_error(), "{status} {body}");
                    assert!(body["field"].is_string(), "{body}");
                    (false, None)
                }
            }
        }
        Op::Rename { title, mcp } => {
            let Some((id, before)) = last else {
                return (false, None);
            };
            if mcp {
                let result = call(
                    app,
                    "fuzzer",
                    "update_task",
                    json!({"id": id, "title": title}),
                )
                .await;
                if result["isError"] == true {
                    return (false, None);
                }
                let after = known(&result["structuredContent"]);
                (after.as_ref().is_some_and(|(_, t)| t != before), after)
            } else {
                let response = app
                    .send(
                        Method::PATCH,
                        &format!("/tasks/{id}"),
                        Some("fuzzer"),
                        Some(json!({"title": title})),
                    )
                    .await;
                let status = response.status();
                assert!(
                    status == StatusCode::OK || status.is_client_error(),
                    "{status}"
                );
                if status != StatusCode::OK {
                    return (false, None);
                }
                let after = known(&response.json::<Value>().await.unwrap());
                (after.as_ref().is_some_and(|(_, t)| t != before), after)
            }
        }
    }
}

async fn every_accepted_random_mutation_maps_and_publishes(backend: Backend) {
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let ops = proptest::collection::vec(op(), 96);
    let tree = ops.new_tree(&mut runner).unwrap();
    let ops = proptest::strategy::ValueTree::current(&tree);
    let mut accepted = 0;
    let mut last: Option<Known> = None;
    for op in ops {
        let (mutated, task) = apply(&app, op, last.as_ref()).await;
        accepted += usize::from(mutated);
        if task.is_some() {
            last = task;
        }
    }
    assert!(
        accepted > 10,
        "the generators make mostly valid requests too: {accepted}"
    );
    // Everything accepted is mapped (no dead letter) and published.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let backlog = app.db.backlog(chrono::Utc::now()).await.unwrap();
        assert_eq!(
            backlog.dead_letters_open, 0,
            "an accepted mutation did not map"
        );
        if backlog.outbox_pending == 0 && backlog.envelopes_pending == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{backlog:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = app.db.outbox_rows(None).await.unwrap();
    assert_eq!(rows.len(), accepted, "one mutation per accepted request");
    for row in &rows {
        row.decode().expect("every stored mutation reads back");
    }
    assert!(
        sink.published().len() >= 2 * accepted,
        "each mutation published its events"
    );
}

on_both_databases!(
    schemathesis_finds_nothing_wrong_with_the_api,
    every_accepted_random_mutation_maps_and_publishes,
);
