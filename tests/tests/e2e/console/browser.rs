//! The console in a real headless browser: Debian's Chromium driven by Playwright
//! (`tests/console/console.test.mjs`) against the real host and the recording sidecar.
//! Skipped, loudly, when `PAKAURA_TOOLS_NODE_MODULES` or `PAKAURA_CHROMIUM` is unset
//! (`./scripts/test` sets both). Screenshots land in `target/console-screenshots/`.

use std::time::Duration;

use super::{BrowserRun, screenshot_dir};

use pakaura_tests::{ADMIN_TOKEN, Backend, spawn_with, token_for};
use pakaura_tests::{DaprSink, dapr_options, sink_behaviour};

/// The browser test's whole run, startup included.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let Some(browser) = BrowserRun::tools("the console's browser test") else {
        return;
    };
    let sink = DaprSink::start(sink_behaviour()).await;
    let app = spawn_with(Backend::Sqlite, dapr_options(&sink)).await;
    let screenshots = screenshot_dir("console-screenshots");
    let mut command = browser.command("console.test.mjs", &screenshots);
    command
        .env("CONSOLE_URL", app.url(""))
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("USER_TOKEN", token_for("alice"))
        .env("SINK_URL", format!("http://{}", sink.addr))
        .env("MISBEHAVE_WASM", pakaura_tests::guests::MISBEHAVE);
    BrowserRun::run(command, BROWSER_TIMEOUT, &screenshots).await;
    println!("console screenshots: {}", screenshots.display());
}
