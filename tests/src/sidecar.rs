//! Dapr sidecar stand-ins. [`DaprSink`] speaks the pub/sub publish contract (status
//! codes, JSON error bodies, headers, query metadata) and records every request; a small
//! control surface under `/test/` lets a test running in another process (the console's
//! browser test) refuse or accept a topic, take the broker out of reach and back, and
//! read what was published.
//! [`CountingSidecar`] accepts everything and only counts, for the benchmarks.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::app::{Options, TestApp, spawn_with};
use crate::database::Backend;
use tokio::sync::Notify;

/// One publish request as the sidecar saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub pubsub: String,
    pub topic: String,
    pub headers: HeaderMap,
    /// The Kafka key: `metadata.partitionKey` of a single publish, or the entry's
    /// `metadata.partitionKey` in a bulk one.
    pub partition_key: Option<String>,
    /// The CloudEvent (a bulk entry's `event`).
    pub body: Value,
    /// The status the sidecar answered for this event (a bulk entry that failed: 500).
    pub status: u16,
    /// For a bulk entry, which bulk request (counting from 1) carried it.
    pub bulk_request: Option<usize>,
    /// Which request carried it, single or bulk, answered or refused, counting from 1 in
    /// the order the sidecar answered them (the entries of one request share it).
    pub request: usize,
}

impl Recorded {
    pub fn id(&self) -> &str {
        self.body["id"].as_str().unwrap_or_default()
    }

    pub fn event_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }
}

/// How the sidecar answers.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer this many events with 500 `ERR_PUBSUB_PUBLISH_MESSAGE` first (in a bulk
    /// request, as `failedEntries`).
    pub fail_next: usize,
    /// Hold this many publishes for `hang_for` before answering 204.
    pub hang_next: usize,
    pub hang_for: Duration,
    /// Topics refused with 403 `ERR_PUBSUB_FORBIDDEN`.
    pub forbidden_topics: BTreeSet<String>,
    /// The only pub/sub component that exists (404 `ERR_PUBSUB_NOT_FOUND` otherwise).
    pub pubsub: String,
    /// When set, requests must carry this `dapr-api-token` (401 otherwise).
    pub api_token: Option<String>,
    /// How long every request takes to answer (unless it hangs).
    pub latency: Duration,
    /// Bulk requests received so far.
    pub bulk_requests: usize,
    /// A bulk request body over this many bytes is refused as a whole with 413, as
    /// Dapr's HTTP server refuses a body over its maximum request size
    /// (`--dapr-http-max-request-size`, 4 MiB by default).
    pub max_request_bytes: Option<usize>,
    /// A request carrying an event whose JSON contains this text is refused as a whole
    /// with 400 `ERR_PUBSUB_CLOUD_EVENTS_SER`, a bulk request with every entry in it (a
    /// poison event: what makes a request refused whole without `failedEntries`).
    pub poison: Option<String>,
    /// Its broker is out of reach: the outbound health check answers 500 and every
    /// event fails with 500 `ERR_PUBSUB_PUBLISH_MESSAGE` (as `fail_next`, for ever).
    pub down: bool,
}

#[derive(Default)]
struct Shared {
    behaviour: Mutex<Behaviour>,
    requests: Mutex<Vec<Recorded>>,
    /// Requests answered so far.
    answered: AtomicUsize,
    changed: Notify,
}

/// A running recording sidecar.
pub struct DaprSink {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<tokio::task::JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl DaprSink {
    pub async fn start(behaviour: Behaviour) -> Self {
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
                "/{version}/publish/bulk/{pubsub}/{topic}",
                post(publish_bulk),
            )
            .route("/v1.0/healthz/outbound", get(outbound_health))
            .route("/test/forbid", post(forbid))
            .route("/test/down", post(go_down))
            .route("/test/up", post(come_up))
            .route("/test/allow", post(allow))
            .route("/test/published", get(published))
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
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Listens again on the same port, keeping the recordings.
    pub async fn restart(mut self) -> Self {
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
    pub fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.shared.behaviour.lock().unwrap());
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The accepted (204) publishes so far, in arrival order.
    pub fn published(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.status == 204)
            .collect()
    }

    /// Waits until `n` distinct envelope ids were accepted (panics after `within`).
    pub async fn wait_for_published(&self, n: usize, within: Duration) -> Vec<Recorded> {
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

/// The refusal Dapr answers a whole request with, if any: a wrong token (401), an
/// unknown pub/sub (404), a forbidden topic (403), a wrong content type (400).
fn refusal(
    b: &Behaviour,
    headers: &HeaderMap,
    pubsub: &str,
    topic: &str,
    content_type: &str,
) -> Option<(u16, Response)> {
    let token_ok = b
        .api_token
        .as_deref()
        .is_none_or(|t| headers.get("dapr-api-token").and_then(|v| v.to_str().ok()) == Some(t));
    let sent_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !token_ok {
        let r = (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid api token"}).to_string(),
        )
            .into_response();
        Some((401, r))
    } else if pubsub != b.pubsub {
        let r = dapr_error(
            StatusCode::NOT_FOUND,
            "ERR_PUBSUB_NOT_FOUND",
            &format!("pubsub {pubsub} not found"),
        );
        Some((404, r))
    } else if sent_type != content_type {
        let r = dapr_error(
            StatusCode::BAD_REQUEST,
            "ERR_PUBSUB_CLOUD_EVENTS_SER",
            &format!("unexpected content type {sent_type}"),
        );
        Some((400, r))
    } else if b.forbidden_topics.contains(topic) {
        let r = dapr_error(
            StatusCode::FORBIDDEN,
            "ERR_PUBSUB_FORBIDDEN",
            &format!("topic {topic} is not allowed for app id pakaura"),
        );
        Some((403, r))
    } else {
        None
    }
}

/// 413 for a bulk request over `max_request_bytes`.
fn too_large(b: &Behaviour, bytes: usize) -> Option<(u16, Response)> {
    let limit = b.max_request_bytes?;
    (bytes > limit).then(|| {
        let r = (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body of {bytes} bytes exceeds the limit of {limit} bytes"),
        )
            .into_response();
        (413, r)
    })
}

/// 400 for a bulk request that carries an entry id twice: Dapr's bulk publish handler
/// checks each entry id is unique in the request (dapr/pkg/api/http, `onBulkPublish`).
fn duplicated(entries: &[BulkEntry]) -> Option<(u16, Response)> {
    let mut seen = BTreeSet::new();
    let twice = entries.iter().find(|e| !seen.insert(e.entry_id.as_str()))?;
    let r = dapr_error(
        StatusCode::BAD_REQUEST,
        "ERR_PUBSUB_EVENTS_SER",
        &format!("error: entryId is duplicated: {}", twice.entry_id),
    );
    Some((400, r))
}

/// 400 for a request carrying an event that contains the `poison` text.
fn poisoned(b: &Behaviour, events: &[&[u8]]) -> Option<(u16, Response)> {
    let poison = b.poison.as_deref()?.as_bytes();
    events
        .iter()
        .any(|e| e.windows(poison.len()).any(|w| w == poison))
        .then(|| {
            let r = dapr_error(
                StatusCode::BAD_REQUEST,
                "ERR_PUBSUB_CLOUD_EVENTS_SER",
                "error when serializing the cloud event: invalid event",
            );
            (400, r)
        })
}

/// Whether the next event fails (500), consuming one of `fail_next`.
fn fails(b: &mut Behaviour) -> bool {
    if b.down {
        true
    } else if b.fail_next > 0 {
        b.fail_next -= 1;
        true
    } else {
        false
    }
}

/// How long to hold the next request: the latency, or a hang.
fn hold(b: &mut Behaviour) -> Duration {
    if b.hang_next > 0 {
        b.hang_next -= 1;
        b.hang_for
    } else {
        b.latency
    }
}

impl Shared {
    /// Records the events of one request, numbering it.
    fn record(&self, mut recorded: Vec<Recorded>) {
        let request = self.answered.fetch_add(1, Ordering::Relaxed) + 1;
        for r in &mut recorded {
            r.request = request;
        }
        self.requests.lock().unwrap().extend(recorded);
        self.changed.notify_waiters();
    }
}

async fn publish(
    State(shared): State<Arc<Shared>>,
    Path((pubsub, topic)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (refused, failed, held) = {
        let mut b = shared.behaviour.lock().unwrap();
        match refusal(
            &b,
            &headers,
            &pubsub,
            &topic,
            "application/cloudevents+json",
        )
        .or_else(|| poisoned(&b, &[body.as_ref()]))
        {
            Some(refused) => (Some(refused), false, Duration::ZERO),
            None => (None, fails(&mut b), hold(&mut b)),
        }
    };
    if !held.is_zero() {
        tokio::time::sleep(held).await;
    }
    let (status, response) = match refused {
        Some((status, response)) => (status, response),
        None if failed => (
            500,
            dapr_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_PUBSUB_PUBLISH_MESSAGE",
                &format!(
                    "error when publish to topic {topic} in pubsub {pubsub}: kafka: broker not available"
                ),
            ),
        ),
        None => (204, StatusCode::NO_CONTENT.into_response()),
    };
    shared.record(vec![Recorded {
        partition_key: query.get("metadata.partitionKey").cloned(),
        pubsub,
        topic,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
        bulk_request: None,
        request: 0,
    }]);
    response
}

/// `GET /v1.0/healthz/outbound`: 204, or 500 while [`Behaviour::down`].
async fn outbound_health(State(shared): State<Arc<Shared>>) -> StatusCode {
    if shared.behaviour.lock().unwrap().down {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

/// `POST /test/down`: the broker goes out of reach (see [`Behaviour::down`]).
async fn go_down(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.behaviour.lock().unwrap().down = true;
    StatusCode::NO_CONTENT
}

/// `POST /test/up`: the broker is back.
async fn come_up(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.behaviour.lock().unwrap().down = false;
    StatusCode::NO_CONTENT
}

/// `POST /test/forbid?topic=T`: refuse topic T with 403 from now on.
async fn forbid(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> StatusCode {
    let Some(topic) = query.get("topic") else {
        return StatusCode::BAD_REQUEST;
    };
    let mut b = shared.behaviour.lock().unwrap();
    b.forbidden_topics.insert(topic.clone());
    StatusCode::NO_CONTENT
}

/// `POST /test/allow?topic=T`: accept topic T again.
async fn allow(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> StatusCode {
    let Some(topic) = query.get("topic") else {
        return StatusCode::BAD_REQUEST;
    };
    shared
        .behaviour
        .lock()
        .unwrap()
        .forbidden_topics
        .remove(topic);
    StatusCode::NO_CONTENT
}

/// `GET /test/published`: the accepted events so far, as `{id, type, topic, subject}`.
async fn published(State(shared): State<Arc<Shared>>) -> axum::Json<Value> {
    let requests = shared.requests.lock().unwrap();
    let accepted: Vec<Value> = requests
        .iter()
        .filter(|r| r.status == 204)
        .map(|r| {
            json!({
                "id": r.id(),
                "type": r.event_type(),
                "topic": r.topic,
                "subject": r.body["subject"],
            })
        })
        .collect();
    axum::Json(Value::Array(accepted))
}

/// One entry of a bulk publish request, as Dapr reads it.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BulkEntry {
    entry_id: String,
    event: Value,
    content_type: String,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

/// `POST /{v1.0-alpha1|v1.0}/publish/bulk/{pubsub}/{topic}`: 204 when every entry was
/// published, 500 listing `failedEntries` when some were not.
async fn publish_bulk(
    State(shared): State<Arc<Shared>>,
    Path((version, pubsub, topic)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if version != "v1.0-alpha1" && version != "v1.0" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let entries: Vec<BulkEntry> = match serde_json::from_slice(&body) {
        Ok(entries) => entries,
        Err(e) => {
            return dapr_error(
                StatusCode::BAD_REQUEST,
                "ERR_PUBSUB_EVENTS_SER",
                &format!("error when unmarshaling the request for topic {topic}: {e}"),
            );
        }
    };
    let (refused, failed, held, request) = {
        let mut b = shared.behaviour.lock().unwrap();
        let events: Vec<Vec<u8>> = entries
            .iter()
            .map(|e| serde_json::to_vec(&e.event).unwrap_or_default())
            .collect();
        let events: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
        let refused = refusal(&b, &headers, &pubsub, &topic, "application/json")
            .or_else(|| too_large(&b, body.len()))
            .or_else(|| duplicated(&entries))
            .or_else(|| poisoned(&b, &events));
        match refused {
            Some(refused) => (Some(refused), Vec::new(), Duration::ZERO, 0),
            None => {
                let failed: Vec<bool> = entries.iter().map(|_| fails(&mut b)).collect();
                b.bulk_requests += 1;
                (None, failed, hold(&mut b), b.bulk_requests)
            }
        }
    };
    if !held.is_zero() {
        tokio::time::sleep(held).await;
    }
    let record = |status_of: &dyn Fn(usize) -> u16| {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| Recorded {
                pubsub: pubsub.clone(),
                topic: topic.clone(),
                headers: headers.clone(),
                partition_key: e.metadata.get("partitionKey").cloned(),
                body: if e.content_type == "application/cloudevents+json" {
                    e.event.clone()
                } else {
                    Value::Null
                },
                status: status_of(i),
                bulk_request: Some(request),
                request: 0,
            })
            .collect::<Vec<_>>()
    };
    if let Some((status, response)) = refused {
        shared.record(record(&|_| status));
        return response;
    }
    shared.record(record(&|i| if failed[i] { 500 } else { 204 }));
    let failed_entries: Vec<Value> = entries
        .iter()
        .zip(&failed)
        .filter(|(_, failed)| **failed)
        .map(|(e, _)| json!({"entryId": e.entry_id, "error": "kafka: broker not available"}))
        .collect();
    if failed_entries.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "application/json")],
            json!({"failedEntries": failed_entries, "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE"})
                .to_string(),
        )
            .into_response()
    }
}

// Pointing a host at the sink, and reading what it recorded.

pub const WAIT: Duration = Duration::from_secs(30);

pub fn sink_behaviour() -> Behaviour {
    Behaviour {
        pubsub: "pubsub-kafka".into(),
        api_token: Some("dapr-token-123".into()),
        ..Default::default()
    }
}

/// Settings that point the host at `sink`, with fast relay timings for tests.
pub fn dapr_options(sink: &DaprSink) -> Options {
    dapr_options_on(sink.addr.port())
}

/// Settings that point the host at a sidecar on 127.0.0.1:`port`, with fast relay timings
/// for tests.
pub fn dapr_options_on(port: u16) -> Options {
    Options::default()
        .set("DAPR_ENABLED", "true")
        .set("DAPR_HTTP_PORT", port.to_string())
        .set("DAPR_API_TOKEN", "dapr-token-123")
        .set("DAPR_PUBLISH_TIMEOUT", "300ms")
        .set("RELAY_POLL_INTERVAL", "50ms")
        .set("RELAY_RETRY_BASE", "20ms")
        .set("RELAY_RETRY_MAX", "200ms")
}

/// [`dapr_options`] with bulk publishing on, at most `max_entries` events per request.
pub fn bulk_options(sink: &DaprSink, max_entries: u32) -> Options {
    dapr_options(sink)
        .set("DAPR_BULK_PUBLISH", "true")
        .set("DAPR_BULK_MAX_ENTRIES", max_entries.to_string())
}

pub async fn task_id(app: &TestApp, user: &str, body: Value) -> String {
    app.create_task(user, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A host whose sidecar refuses the `reminders` topic (403), and a task with a
/// due date created on it.
pub async fn refusing_reminders(backend: Backend) -> (DaprSink, TestApp, String) {
    let mut behaviour = sink_behaviour();
    behaviour.forbidden_topics.insert("reminders".into());
    let sink = DaprSink::start(behaviour).await;
    let app = spawn_with(backend, dapr_options(&sink)).await;
    let id = task_id(
        &app,
        "alice",
        json!({"title": "a", "due_date": "2026-03-01T09:00:00Z"}),
    )
    .await;
    (sink, app, id)
}

/// A Dapr sidecar stand-in for benchmarks: accepts every publish (single and bulk)
/// after a fixed latency, counts the events and notes how long after its mutation each
/// arrived (the CloudEvent's `time`, millisecond precision), so that it costs the machine
/// as little as possible. It runs until the process ends.
#[derive(Debug, Clone)]
pub struct CountingSidecar {
    pub addr: SocketAddr,
    published: Arc<AtomicUsize>,
    lags: Arc<Mutex<Vec<u32>>>,
}

/// The one envelope field the counting stand-in reads.
#[derive(serde::Deserialize)]
struct Timed {
    time: chrono::DateTime<chrono::Utc>,
}

/// One entry of a bulk publish, as far as the counting stand-in reads it.
#[derive(serde::Deserialize)]
struct TimedEntry {
    event: Option<Timed>,
}

/// Milliseconds from `event`'s `time` to now (0 when the clock says earlier).
fn lag_ms(event: &Timed) -> u32 {
    let ms = (chrono::Utc::now() - event.time).num_milliseconds().max(0);
    u32::try_from(ms).unwrap_or(u32::MAX)
}

impl CountingSidecar {
    /// Listens on `addr` (port 0 picks one) and answers each request after `latency`.
    pub async fn serve(addr: SocketAddr, latency: Duration) -> Self {
        let published = Arc::new(AtomicUsize::new(0));
        let lags = Arc::new(Mutex::new(Vec::new()));
        let (single, bulk) = (
            (published.clone(), lags.clone()),
            (published.clone(), lags.clone()),
        );
        let app = Router::new()
            .route(
                "/v1.0/publish/{pubsub}/{topic}",
                post(move |body: Bytes| {
                    let (count, lags) = single.clone();
                    async move {
                        if !latency.is_zero() {
                            tokio::time::sleep(latency).await;
                        }
                        if let Ok(event) = serde_json::from_slice::<Timed>(&body) {
                            lags.lock().unwrap().push(lag_ms(&event));
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                        StatusCode::NO_CONTENT
                    }
                }),
            )
            .route(
                "/{version}/publish/bulk/{pubsub}/{topic}",
                post(move |body: Bytes| {
                    let (count, lags) = bulk.clone();
                    async move {
                        if !latency.is_zero() {
                            tokio::time::sleep(latency).await;
                        }
                        let entries: Vec<TimedEntry> =
                            serde_json::from_slice(&body).expect("a bulk body is a JSON array");
                        lags.lock()
                            .unwrap()
                            .extend(entries.iter().filter_map(|e| e.event.as_ref()).map(lag_ms));
                        count.fetch_add(entries.len(), Ordering::Relaxed);
                        StatusCode::NO_CONTENT
                    }
                }),
            )
            .route(
                "/v1.0/healthz/outbound",
                get(|| async { StatusCode::NO_CONTENT }),
            );
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("binding the sidecar stand-in to {addr}: {e}"));
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            published,
            lags,
        }
    }

    /// How long after its mutation each event accepted since the last call arrived, in
    /// milliseconds, in arrival order.
    pub fn take_lags(&self) -> Vec<u32> {
        std::mem::take(&mut *self.lags.lock().unwrap())
    }

    /// Events accepted so far.
    pub fn published(&self) -> usize {
        self.published.load(Ordering::Relaxed)
    }
}
