//! A recording Dapr sidecar: speaks the pub/sub publish contract (status codes,
//! JSON error bodies, headers, query metadata) and records every request.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp};
use tokio::sync::Notify;

/// One publish request as the sidecar saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) pubsub: String,
    pub(crate) topic: String,
    pub(crate) query: HashMap<String, String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
    /// The status the sidecar answered.
    pub(crate) status: u16,
}

impl Recorded {
    pub(crate) fn id(&self) -> &str {
        self.body["id"].as_str().unwrap_or_default()
    }

    pub(crate) fn event_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }
}

/// How the sidecar answers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Behaviour {
    /// Answer this many publishes with 500 `ERR_PUBSUB_PUBLISH_MESSAGE` first.
    pub(crate) fail_next: usize,
    /// Hold this many publishes for `hang_for` before answering 204.
    pub(crate) hang_next: usize,
    pub(crate) hang_for: Duration,
    /// Topics refused with 403 `ERR_PUBSUB_FORBIDDEN`.
    pub(crate) forbidden_topics: BTreeSet<String>,
    /// The only pub/sub component that exists (404 `ERR_PUBSUB_NOT_FOUND` otherwise).
    pub(crate) pubsub: String,
    /// When set, requests must carry this `dapr-api-token` (401 otherwise).
    pub(crate) api_token: Option<String>,
}

#[derive(Default)]
struct Shared {
    behaviour: Mutex<Behaviour>,
    requests: Mutex<Vec<Recorded>>,
    changed: Notify,
}

/// A running recording sidecar.
pub(crate) struct DaprSink {
    pub(crate) addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<tokio::task::JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl DaprSink {
    pub(crate) async fn start(behaviour: Behaviour) -> Self {
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            ..Default::default()
        });
        Self::serve(shared, "127.0.0.1:0".parse().unwrap()).await
    }

    async fn serve(shared: Arc<Shared>, addr: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind sink");
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/v1.0/publish/{pubsub}/{topic}", post(publish))
            .route(
                "/v1.0/healthz/outbound",
                get(|| async { StatusCode::NO_CONTENT }),
            )
            .with_state(shared.clone());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            shared,
            server: Some(server),
            shutdown: Some(shutdown),
        }
    }

    /// Goes down: stops listening and closes its connections, so publishes fail
    /// with a refused connection until [`DaprSink::restart`].
    pub(crate) async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Listens again on the same port, keeping the recordings.
    pub(crate) async fn restart(mut self) -> Self {
        self.stop().await;
        let mut tries = 0;
        loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => {
                    drop(l);
                    break;
                }
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("rebind sink port: {e}"),
            }
        }
        Self::serve(self.shared.clone(), self.addr).await
    }

    /// Changes how the sidecar answers from now on.
    pub(crate) fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.shared.behaviour.lock().unwrap());
    }

    /// Every request so far, in arrival order.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The accepted (204) publishes so far, in arrival order.
    pub(crate) fn published(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.status == 204)
            .collect()
    }

    /// Waits until `n` distinct envelope ids were accepted (panics after `within`).
    pub(crate) async fn wait_for_published(&self, n: usize, within: Duration) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.changed.notified();
            let published = self.published();
            let distinct: BTreeSet<String> = published.iter().map(|r| r.id().to_owned()).collect();
            if distinct.len() >= n {
                return published;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {n} published envelopes, got {}: {:#?}",
                    distinct.len(),
                    self.requests().len()
                );
            }
        }
    }
}

impl Drop for DaprSink {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

fn dapr_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({"errorCode": code, "message": message}).to_string(),
    )
        .into_response()
}

async fn publish(
    State(shared): State<Arc<Shared>>,
    Path((pubsub, topic)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (response, status, hang) = {
        let mut b = shared.behaviour.lock().unwrap();
        let token_ok = b
            .api_token
            .as_deref()
            .is_none_or(|t| headers.get("dapr-api-token").and_then(|v| v.to_str().ok()) == Some(t));
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !token_ok {
            let r = (
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid api token"}).to_string(),
            )
                .into_response();
            (Some(r), 401, None)
        } else if pubsub != b.pubsub {
            let r = dapr_error(
                StatusCode::NOT_FOUND,
                "ERR_PUBSUB_NOT_FOUND",
                &format!("pubsub {pubsub} not found"),
            );
            (Some(r), 404, None)
        } else if content_type != "application/cloudevents+json" {
            let r = dapr_error(
                StatusCode::BAD_REQUEST,
                "ERR_PUBSUB_CLOUD_EVENTS_SER",
                &format!("unexpected content type {content_type}"),
            );
            (Some(r), 400, None)
        } else if b.forbidden_topics.contains(&topic) {
            let r = dapr_error(
                StatusCode::FORBIDDEN,
                "ERR_PUBSUB_FORBIDDEN",
                &format!("topic {topic} is not allowed for app id pakaura"),
            );
            (Some(r), 403, None)
        } else if b.fail_next > 0 {
            b.fail_next -= 1;
            let r = dapr_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_PUBSUB_PUBLISH_MESSAGE",
                &format!(
                    "error when publish to topic {topic} in pubsub {pubsub}: kafka: broker not available"
                ),
            );
            (Some(r), 500, None)
        } else if b.hang_next > 0 {
            b.hang_next -= 1;
            (None, 204, Some(b.hang_for))
        } else {
            (None, 204, None)
        }
    };
    if let Some(hang) = hang {
        tokio::time::sleep(hang).await;
    }
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.requests.lock().unwrap().push(Recorded {
        pubsub,
        topic,
        query,
        headers,
        body: parsed,
        status,
    });
    shared.changed.notify_waiters();
    response.unwrap_or_else(|| StatusCode::NO_CONTENT.into_response())
}

// Pointing a host at the sink, and reading what it recorded.

pub(crate) const WAIT: Duration = Duration::from_secs(30);

pub(crate) fn sink_behaviour() -> Behaviour {
    Behaviour {
        pubsub: "pubsub-kafka".into(),
        api_token: Some("dapr-token-123".into()),
        ..Default::default()
    }
}

/// Settings that point the host at `sink`, with fast relay timings for tests.
pub(crate) fn dapr_options(sink: &DaprSink) -> Options {
    Options::default()
        .set("DAPR_ENABLED", "true")
        .set("DAPR_HTTP_PORT", sink.addr.port().to_string())
        .set("DAPR_API_TOKEN", "dapr-token-123")
        .set("DAPR_PUBLISH_TIMEOUT", "300ms")
        .set("RELAY_POLL_INTERVAL", "50ms")
        .set("RELAY_RETRY_BASE", "20ms")
        .set("RELAY_RETRY_MAX", "200ms")
}

pub(crate) async fn task_id(app: &TestApp, user: &str, body: Value) -> String {
    app.create_task(user, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The accepted publishes of one task, as (type, topic), in publish order.
pub(crate) fn types_of(published: &[Recorded], task: &str) -> Vec<(String, String)> {
    published
        .iter()
        .filter(|r| r.body["subject"] == task)
        .map(|r| (r.event_type().to_owned(), r.topic.clone()))
        .collect()
}

pub(crate) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Waits until the admin API lists at least `n` open dead letters.
pub(crate) async fn wait_for_dead_letters(app: &TestApp, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let body: Value = app
            .admin(Method::GET, "/admin/dead-letters")
            .await
            .json()
            .await
            .unwrap();
        let letters = body["dead_letters"].as_array().cloned().unwrap_or_default();
        if letters.len() >= n {
            return letters;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} dead letters, got {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
