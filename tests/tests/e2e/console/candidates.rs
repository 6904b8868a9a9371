//! The Candidates page in a real headless browser (`tests/console/candidates.test.mjs`,
//! Debian's Chromium driven by Playwright, as in `browser`): a candidate that renames one
//! field ([`guests::RENAMED`]: `title` becomes `name` in `task.created`, its schema
//! included) is uploaded, diffed over the last hour of a few dozen tasks, shadowed while
//! more are created, promoted past its breaking change and rolled back, and what the page
//! shows is checked against the admin API. Skipped, loudly, when `PAKAURA_TOOLS_NODE_MODULES` or `PAKAURA_CHROMIUM` is
//! unset (`./scripts/test` sets both). Screenshots land in
//! `target/candidates-screenshots/<database>/`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use pakaura_tests::{ADMIN_TOKEN, Backend, TestApp, WAIT, guests, spawn_with, task_id, token_for};
use pakaura_tests::{DaprSink, dapr_options, sink_behaviour};

use super::{BrowserRun, screenshot_dir};

/// The browser's whole run, the candidate's first compile included.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

/// Tasks created before the browser starts; every third is completed too.
const TASKS: usize = 36;

/// The built-in default mapper's version, which the candidate describes too: the
/// `dataschema` URL the host gives each event names the version, so with the same one on
/// both sides the renamed field is the only difference.
const DEFAULT_VERSION: &str = "1.0.0";

/// The items of a list answer: `{key: [...]}`, as the other admin lists, or a bare array.
fn list_of<'a>(body: &'a Value, key: &str) -> &'a Vec<Value> {
    body.as_array()
        .or_else(|| body[key].as_array())
        .unwrap_or_else(|| panic!("a list of {key}: {body}"))
}

/// The live mapper of the default set (the test host runs the built-in one alone).
async fn live_mapper(app: &TestApp) -> Value {
    let body = app.admin_json("/admin/mappers").await;
    let mappers = body["mappers"].as_array().unwrap();
    assert_eq!(mappers.len(), 1, "{body}");
    mappers[0].clone()
}

/// Waits until the live mapper has mapped `mutations` mutations.
async fn wait_for_mapped(app: &TestApp, mutations: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let calls = live_mapper(app).await["stats"]["calls"].as_u64().unwrap();
        if calls >= mutations {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{calls} of {mutations} mutations mapped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_candidate_is_diffed_shadowed_promoted_and_rolled_back_in_the_browser(backend: Backend) {
    let Some(browser) = BrowserRun::tools("the Candidates page's browser test") else {
        return;
    };
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;

    let mut mutations = 0;
    for i in 0..TASKS {
        let id = task_id(&app, "alice", json!({"title": format!("history {i}")})).await;
        mutations += 1;
        if i % 3 == 0 {
            let response = app.post_task("alice", &id, "complete").await;
            assert_eq!(response.status(), StatusCode::OK);
            mutations += 1;
        }
    }
    wait_for_mapped(&app, mutations).await;
    let live = live_mapper(&app).await;
    assert_eq!(live["version"], DEFAULT_VERSION, "{live}");

    let screenshots =
        screenshot_dir("candidates-screenshots").join(format!("{backend:?}").to_lowercase());
    let mut command = browser.command("candidates.test.mjs", &screenshots);
    command
        .env("CONSOLE_URL", app.url(""))
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("USER_TOKEN", token_for("alice"))
        .env("CANDIDATE_WASM", guests::RENAMED)
        .env("CHANGED_TYPE", "task.created")
        .env("CHANGED_PATHS", "/data/title,/data/name")
        .env("MUTATIONS", mutations.to_string())
        .env("CHANGED", TASKS.to_string());
    BrowserRun::run(command, BROWSER_TIMEOUT, &screenshots).await;

    // What the page did, as the API records it: promoted from the live component to
    // the candidate, then rolled back to the live component.
    let candidates = app.admin_json("/admin/candidates").await;
    let candidate = &list_of(&candidates, "candidates")[0];
    let releases = app.admin_json("/admin/mappers/releases").await;
    let releases = list_of(&releases, "releases");
    assert_eq!(releases.len(), 2, "{releases:?}");
    let (rollback, promote) = (&releases[0], &releases[1]);
    assert_eq!(promote["action"], "promote");
    assert_eq!(promote["sha256"], candidate["sha256"]);
    assert_eq!(promote["previous_sha256"], live["sha256"]);
    assert_eq!(promote["by"], rollback["by"]);
    assert_eq!(rollback["action"], "rollback");
    assert_eq!(rollback["reverts"], promote["generation"]);
    assert_eq!(live_mapper(&app).await["sha256"], live["sha256"]);
    println!("candidates screenshots: {}", screenshots.display());
}

pakaura_tests::on_both_databases!(
    a_candidate_is_diffed_shadowed_promoted_and_rolled_back_in_the_browser
);
