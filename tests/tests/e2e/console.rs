//! The operator console: its cookie session, CSRF defence and security headers
//! (`session`), the admin API it reads (`api`: OpenAPI, envelopes, dead letters, the
//! flow stream, the playground), and the page itself in a real headless browser
//! (`browser`; the Candidates page in `candidates`).

mod api;
mod browser;
mod candidates;
mod first_run;
mod flow;
mod health;
mod letters;
mod operators;
mod playground;
mod reload;
mod search;
mod session;
mod throttle;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};

use pakaura_tests::{ADMIN_TOKEN, TestApp};

/// The Content-Security-Policy every console response must carry, word for word.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// A browser script of `tests/console/` and what it needs from the machine: the Node.js
/// modules holding playwright-core and Debian's Chromium (`./scripts/test` installs both).
pub(crate) struct BrowserRun {
    node_modules: String,
    chromium: String,
}

fn tool(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

impl BrowserRun {
    /// The tools, or `None` after a loud SKIP line saying that `what` did not run.
    pub(crate) fn tools(what: &str) -> Option<Self> {
        let vars = ["PAKAURA_TOOLS_NODE_MODULES", "PAKAURA_CHROMIUM"];
        if let [Some(node_modules), Some(chromium)] = vars.map(tool) {
            return Some(Self {
                node_modules,
                chromium,
            });
        }
        let missing = vars
            .into_iter()
            .filter(|v| tool(v).is_none())
            .collect::<Vec<_>>()
            .join(" and ");
        eprintln!(
            "SKIP: {what} did not run: {missing} unset \
             (./scripts/test sets them; see scripts/lib/tools.sh)"
        );
        None
    }

    /// `node tests/console/SCRIPT` with the tools and `SCREENSHOT_DIR` (emptied: a stale
    /// failure.png would mislead) in its environment; the caller adds the rest.
    pub(crate) fn command(&self, script: &str, screenshots: &Path) -> tokio::process::Command {
        let _ = std::fs::remove_dir_all(screenshots);
        std::fs::create_dir_all(screenshots).unwrap();
        let mut command = tokio::process::Command::new("node");
        command
            .arg(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("console")
                    .join(script),
            )
            .env("SCREENSHOT_DIR", screenshots)
            .env("PAKAURA_TOOLS_NODE_MODULES", &self.node_modules)
            .env("PAKAURA_CHROMIUM", &self.chromium)
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        command
    }

    /// Runs `command` to its end within `timeout` and asserts it passed.
    pub(crate) async fn run(
        mut command: tokio::process::Command,
        timeout: Duration,
        screenshots: &Path,
    ) {
        let mut child = command.spawn().expect("node runs (is Node.js installed?)");
        let status = tokio::time::timeout(timeout, child.wait())
            .await
            .unwrap_or_else(|_| panic!("the browser test took longer than {timeout:?}"))
            .unwrap();
        assert!(
            status.success(),
            "the browser test failed ({status}); its output is above, screenshots in {}",
            screenshots.display()
        );
    }
}

/// The folder `target/NAME` for a browser test's screenshots.
pub(crate) fn screenshot_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .join(name)
}

/// A client that shows redirects instead of following them.
pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Posts the login form with `token`.
pub(crate) async fn post_login(app: &TestApp, token: &str) -> reqwest::Response {
    no_redirects()
        .post(app.url("/console/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap()
}

/// The `Set-Cookie` header of `response`.
pub(crate) fn set_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Logs in with the admin token; returns the session cookie's value.
pub(crate) async fn login(app: &TestApp) -> String {
    let response = post_login(app, ADMIN_TOKEN).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let header = set_cookie(&response);
    header
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("pakaura_console="))
        .expect("the session cookie")
        .to_owned()
}

/// The console page as the browser gets it with session `cookie`.
pub(crate) async fn page(app: &TestApp, cookie: &str) -> reqwest::Response {
    no_redirects()
        .get(app.url("/console"))
        .header(COOKIE, format!("pakaura_console={cookie}"))
        .send()
        .await
        .unwrap()
}

/// The CSRF token the console page carries for session `cookie`.
pub(crate) async fn csrf_token(app: &TestApp, cookie: &str) -> String {
    let html = page(app, cookie).await.text().await.unwrap();
    let start = html
        .find(r#"<meta name="csrf-token" content=""#)
        .expect("the CSRF meta tag")
        + r#"<meta name="csrf-token" content=""#.len();
    html[start..]
        .split('"')
        .next()
        .expect("the CSRF token")
        .to_owned()
}

/// An admin request made with session `cookie` (and `csrf`, when given).
pub(crate) fn with_session(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header(COOKIE, format!("pakaura_console={cookie}"));
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    request
}
