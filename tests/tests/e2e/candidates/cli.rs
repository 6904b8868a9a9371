//! `pakaura mapper diff CANDIDATE.wasm --database URL`: over a database a host wrote, the
//! exit status says identical (0), differences (1) or failures (2); the output names what
//! changed; `--json` is the report; the window options narrow it; a file that cannot be
//! used is one line on stderr and exit status 2.
//!
//! Each command line runs in a process of its own, as the binary would: this test binary
//! again, running only [`pakaura_command_line`], which parses the arguments with the
//! binary's own [`Cli`] and runs them with [`mapper::execute`], as `main` does.

use std::process::ExitCode;

use clap::Parser;
use pakaura_host::cli::{Cli, Command, mapper};
use pakaura_tests::{Backend, guests, on_both_databases, spawn_app};
use serde_json::Value;

use super::{FAILING_REASON, History, RENAMED_FROM, RENAMED_TO, create_many, work_on_tasks};

/// The child's `pakaura` arguments, as a JSON array.
const ARGS: &str = "PAKAURA_TEST_COMMAND_LINE";

/// What `pakaura ARGS` did.
#[derive(Debug)]
struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `pakaura args` in a process of its own, with none of the settings the command
/// reads from the environment but the compile cache.
async fn pakaura(args: &[&str]) -> Run {
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "candidates::cli::pakaura_command_line",
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ARGS, serde_json::to_string(args).unwrap())
        .env("MAPPER_CACHE_DIR", env!("PAKAURA_TEST_MAPPER_CACHE"));
    for setting in [
        "DATABASE_URL",
        "MAPPERS_DIR",
        "MAPPER_BUILTIN",
        "MAPPER_SETTINGS_FILE",
        "RUST_LOG",
    ] {
        child.env_remove(setting);
    }
    let out = child.output().await.expect("the test binary runs again");
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The test harness announces the one test (`running 1 test`, then `test NAME ... `)
    // before the command's own output.
    let stdout = match stdout.split_once("pakaura_command_line ... ") {
        Some((_, own)) => own.to_owned(),
        None => stdout,
    };
    Run {
        status: out.status.code(),
        stdout,
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Not a test of its own: the `pakaura` command line [`pakaura`] passes in `ARGS`, run as
/// the binary's `main` runs it, exiting with its status.
#[test]
#[ignore = "the command line of a CLI test, run in a child process"]
fn pakaura_command_line() {
    let Ok(args) = std::env::var(ARGS) else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(&args).unwrap();
    let cli = Cli::try_parse_from(std::iter::once("pakaura".to_owned()).chain(args))
        .unwrap_or_else(|e| e.exit());
    let Some(Command::Mapper { command, config }) = cli.command else {
        panic!("only `pakaura mapper` commands run here");
    };
    let code = mapper::execute(command, &config).unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    });
    let status = (0..=u8::MAX)
        .find(|n| ExitCode::from(*n) == code)
        .expect("an exit status");
    std::process::exit(i32::from(status));
}

/// `--json`'s report.
fn json_report(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("--json prints one JSON object: {e}\n{run:#?}"))
}

/// A database a host wrote: [`work_on_tasks`] over 12 tasks, then 3 more created (so the
/// last three mutations delete nothing), the host stopped; and what was done.
async fn written_history(backend: Backend) -> (pakaura_tests::TestDatabase, History) {
    let app = spawn_app(backend).await;
    let mut history = History::default();
    work_on_tasks(&app, 12, &mut history).await;
    create_many(&app, 3, &mut history).await;
    (app.stop().await, history)
}

/// 0 for an identical build, 1 for the renamed field (the output names both paths), 2 for
/// a candidate that fails (the output names why); `--json` is the report with its counts.
async fn mapper_diff_exits_0_identical_1_on_differences_2_on_failures(backend: Backend) {
    let (database, history) = written_history(backend).await;
    let url = database.url.as_str();

    let identical = pakaura(&["mapper", "diff", guests::IDENTICAL, "--database", url]).await;
    assert_eq!(identical.status, Some(0), "{identical:#?}");

    let renamed = pakaura(&["mapper", "diff", guests::RENAMED, "--database", url]).await;
    assert_eq!(renamed.status, Some(1), "{renamed:#?}");
    for path in [RENAMED_FROM, RENAMED_TO] {
        assert!(renamed.stdout.contains(path), "names {path}: {renamed:#?}");
    }

    let failing = pakaura(&["mapper", "diff", guests::FAILING, "--database", url]).await;
    assert_eq!(failing.status, Some(2), "{failing:#?}");
    assert!(failing.stdout.contains(FAILING_REASON), "{failing:#?}");

    let json = pakaura(&[
        "mapper",
        "diff",
        guests::RENAMED,
        "--database",
        url,
        "--json",
    ])
    .await;
    assert_eq!(json.status, Some(1), "{json:#?}");
    let report = json_report(&json);
    let created = history.count("created");
    assert_eq!(report["mutations"], history.len(), "{report:#}");
    assert_eq!(report["changed"], created, "{report:#}");
    assert_eq!(report["identical"], history.len() - created);
    assert_eq!(report["failed"], 0);
    assert_eq!(report["events"]["changed"], created);
    assert_eq!(report["events"]["added"], 0);
    assert_eq!(report["events"]["removed"], 0);
    assert_eq!(report["candidate"]["name"], "default");
    assert_eq!(report["cancelled"], false);

    let json = pakaura(&[
        "mapper",
        "diff",
        guests::FAILING,
        "--database",
        url,
        "--json",
    ])
    .await;
    assert_eq!(json.status, Some(2), "{json:#?}");
    let report = json_report(&json);
    assert_eq!(report["failed"], history.count("deleted"), "{report:#}");
    assert_eq!(report["failures"][0]["count"], history.count("deleted"));
}

/// `--last`, `--task`, `--since` and `--until` narrow the diff to their mutations, and the
/// exit status follows what is in the window.
async fn mapper_diff_compares_only_its_window(backend: Backend) {
    let (database, history) = written_history(backend).await;
    let url = database.url.as_str();

    let last = pakaura(&[
        "mapper",
        "diff",
        guests::RENAMED,
        "--database",
        url,
        "--last",
        "3",
        "--json",
    ])
    .await;
    assert_eq!(last.status, Some(1), "{last:#?}");
    let report = json_report(&last);
    assert_eq!(report["mutations"], 3, "{report:#}");
    assert_eq!(report["window"]["last"], 3);
    // The last three mutations delete nothing: the failing candidate fails on none.
    let last = pakaura(&[
        "mapper",
        "diff",
        guests::FAILING,
        "--database",
        url,
        "--last",
        "3",
    ])
    .await;
    assert_eq!(last.status, Some(0), "{last:#?}");

    // Task 5 is deleted; task 0 is not.
    let tasks = history.tasks();
    for (task, status) in [(tasks[5], 2), (tasks[0], 0)] {
        let run = pakaura(&[
            "mapper",
            "diff",
            guests::FAILING,
            "--database",
            url,
            "--task",
            task,
            "--json",
        ])
        .await;
        assert_eq!(run.status, Some(status), "{run:#?}");
        let report = json_report(&run);
        assert_eq!(report["mutations"], history.of_task(task), "{report:#}");
    }

    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let empty = pakaura(&[
        "mapper",
        "diff",
        guests::RENAMED,
        "--database",
        url,
        "--since",
        &future,
        "--json",
    ])
    .await;
    assert_eq!(empty.status, Some(0), "nothing to differ: {empty:#?}");
    assert_eq!(json_report(&empty)["mutations"], 0);
    let all = pakaura(&[
        "mapper",
        "diff",
        guests::RENAMED,
        "--database",
        url,
        "--until",
        &future,
        "--json",
    ])
    .await;
    assert_eq!(json_report(&all)["mutations"], history.len());
}

on_both_databases!(
    mapper_diff_exits_0_identical_1_on_differences_2_on_failures,
    mapper_diff_compares_only_its_window,
);

/// Asserts exit status 2 and one line on stderr that contains each of `names`.
fn one_line_error(run: &Run, names: &[&str]) {
    assert_eq!(run.status, Some(2), "{run:#?}");
    let stderr = run.stderr.trim();
    assert_eq!(stderr.lines().count(), 1, "one line: {run:#?}");
    for name in names {
        assert!(stderr.contains(name), "names {name}: {run:#?}");
    }
    assert!(run.stdout.trim().is_empty(), "{run:#?}");
}

/// A candidate that is missing or not a mapper, a database that is not there, a window that
/// holds nothing: exit status 2 and one line on stderr saying which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapper_diff_names_what_it_cannot_use_on_one_line() {
    let (database, _) = written_history(Backend::Sqlite).await;
    let url = database.url.as_str();
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("missing.wasm");
    let missing = missing.to_str().unwrap();
    let run = pakaura(&["mapper", "diff", missing, "--database", url]).await;
    one_line_error(&run, &["missing.wasm"]);

    let run = pakaura(&["mapper", "diff", guests::WRONG_WORLD, "--database", url]).await;
    one_line_error(&run, &["wrong_world.wasm"]);

    let nowhere = format!("sqlite:{}", dir.path().join("nowhere.db").display());
    let run = pakaura(&["mapper", "diff", guests::IDENTICAL, "--database", &nowhere]).await;
    one_line_error(&run, &["nowhere.db"]);

    let closed = "postgres://postgres@127.0.0.1:1/pakaura";
    let run = pakaura(&["mapper", "diff", guests::IDENTICAL, "--database", closed]).await;
    one_line_error(&run, &["--database"]);

    let (since, until) = ("2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z");
    let run = pakaura(&[
        "mapper",
        "diff",
        guests::IDENTICAL,
        "--database",
        url,
        "--since",
        since,
        "--until",
        until,
    ])
    .await;
    one_line_error(&run, &["since", "until"]);
}
