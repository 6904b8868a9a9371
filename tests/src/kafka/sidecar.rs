//! The forwarding Dapr sidecar stand-in (`scripts/kafka/sidecar.py`) for one test, and its
//! test controls.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{Broker, KafkaTools};
use crate::app::Options;
use crate::sidecar::dapr_options_on;

const API_TOKEN: &str = "dapr-token-123";
/// How long the stand-in waits for the broker to acknowledge a record before answering 500;
/// below the host's publish timeout set in [`KafkaSidecar::options`].
const DELIVERY_TIMEOUT: &str = "1";

/// Next offsets of the records the broker acknowledged: topic -> partition -> offset.
pub type Offsets = BTreeMap<String, BTreeMap<String, i64>>;

/// What a pause answers.
#[derive(Debug, Clone, Deserialize)]
pub struct Paused {
    /// The records the broker acknowledged since the previous pause.
    pub acked: Offsets,
    /// The publish requests served so far.
    pub requests: Requests,
}

/// Publish requests the stand-in served (refused ones not counted).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Requests {
    pub single: usize,
    pub bulk: usize,
    /// Entries of the bulk requests.
    pub entries: usize,
}

/// A running stand-in (killed when dropped).
pub struct KafkaSidecar {
    pub addr: SocketAddr,
    _child: Child,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<String>>>,
}

impl KafkaSidecar {
    /// Starts the stand-in on a free port, forwarding to `broker`.
    pub async fn start(tools: &KafkaTools, broker: &Broker) -> Self {
        let mut child = Command::new(&tools.python)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(KafkaTools::script("sidecar.py"))
            .args(["--port", "0", "--api-token", API_TOKEN, "--test-controls"])
            .args(["--delivery-timeout", DELIVERY_TIMEOUT])
            .arg("--metadata")
            .arg(format!("brokers={}", broker.bootstrap()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the sidecar stand-in starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let lines = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("{line}");
                }
                lines.lock().unwrap().push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
            .await
            .ok()
            .and_then(|line| line.ok().flatten())
            .unwrap_or_else(|| panic!("the stand-in did not start: {:?}", log.lock().unwrap()));
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line of the stand-in: {first}"));
        Self {
            addr,
            _child: child,
            client: reqwest::Client::new(),
            log,
        }
    }

    /// Host settings pointing at the stand-in, with the test relay timings; the publish
    /// timeout leaves the stand-in time to answer what the broker said.
    pub fn options(&self) -> Options {
        dapr_options_on(self.addr.port()).set("DAPR_PUBLISH_TIMEOUT", "3s")
    }

    /// What the stand-in logged (its failed publishes) so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    async fn control(&self, path: &str) -> reqwest::Response {
        let response = self
            .client
            .post(format!("http://{}/test/{path}", self.addr))
            .send()
            .await
            .expect("a test control request");
        assert!(
            response.status().is_success(),
            "POST /test/{path}: {}",
            response.status()
        );
        response
    }

    /// Refuses `topic` with 403 `ERR_PUBSUB_FORBIDDEN` from now on (Dapr's publishing scopes).
    pub async fn forbid(&self, topic: &str) {
        self.control(&format!("forbid?topic={topic}")).await;
    }

    /// Accepts `topic` again.
    pub async fn allow(&self, topic: &str) {
        self.control(&format!("allow?topic={topic}")).await;
    }

    /// Waits until the publishes in flight are answered, then answers every publish 500
    /// without producing, until [`KafkaSidecar::resume`].
    pub async fn pause(&self) -> Paused {
        self.control("pause")
            .await
            .json()
            .await
            .expect("offsets as JSON")
    }

    pub async fn resume(&self) {
        self.control("resume").await;
    }
}
