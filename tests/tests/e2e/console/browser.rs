//! The console in a real headless browser: Debian's Chromium driven by Playwright
//! (`tests/console/console.test.mjs`) against the real host and the recording sidecar.
//! Skipped, loudly, when `PAKAURA_TOOLS_NODE_MODULES` or `PAKAURA_CHROMIUM` is unset
//! (`./scripts/test` sets both). Screenshots land in `target/console-screenshots/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use pakaura_tests::{ADMIN_TOKEN, Backend, spawn_with, token_for};
use pakaura_tests::{DaprSink, dapr_options, sink_behaviour};

/// The browser test's whole run, startup included.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(240);

fn tool(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let (Some(node_modules), Some(chromium)) =
        (tool("PAKAURA_TOOLS_NODE_MODULES"), tool("PAKAURA_CHROMIUM"))
    else {
        let missing = ["PAKAURA_TOOLS_NODE_MODULES", "PAKAURA_CHROMIUM"]
            .into_iter()
            .filter(|v| tool(v).is_none())
            .collect::<Vec<_>>()
            .join(" and ");
        eprintln!(
            "SKIP: the console's browser test did not run: {missing} unset \
             (./scripts/test sets them; see scripts/lib/tools.sh)"
        );
        return;
    };
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(Backend::Sqlite, dapr_options(&sink)).await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .join("console-screenshots");
    // Only this run's screenshots (a stale failure.png would mislead).
    let _ = std::fs::remove_dir_all(&screenshots);
    std::fs::create_dir_all(&screenshots).unwrap();

    let mut command = tokio::process::Command::new("node");
    command
        .arg(root.join("console/console.test.mjs"))
        .env("CONSOLE_URL", app.url(""))
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("USER_TOKEN", token_for("alice"))
        .env("SINK_URL", format!("http://{}", sink.addr))
        .env("SCREENSHOT_DIR", &screenshots)
        .env("MISBEHAVE_WASM", pakaura_tests::guests::MISBEHAVE)
        .env("PAKAURA_TOOLS_NODE_MODULES", node_modules)
        .env("PAKAURA_CHROMIUM", chromium)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("node runs (is Node.js installed?)");
    let status = tokio::time::timeout(BROWSER_TIMEOUT, child.wait())
        .await
        .unwrap_or_else(|_| panic!("the browser test took longer than {BROWSER_TIMEOUT:?}"))
        .unwrap();
    assert!(
        status.success(),
        "the browser test failed ({status}); its output is above, screenshots in {}",
        screenshots.display()
    );
    println!("console screenshots: {}", screenshots.display());
}
