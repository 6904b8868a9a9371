//! A small OTLP/HTTP receiver: accepts `POST /v1/traces` in the JSON encoding
//! (`OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) and keeps every span it is sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

/// One received span, with the resource it came from.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub(crate) name: String,
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    /// Empty for a root span.
    pub(crate) parent_span_id: String,
    /// The OTLP span kind (2 server, 3 client, 4 producer).
    pub(crate) kind: u64,
    /// String, integer and boolean attributes, as text.
    pub(crate) attributes: HashMap<String, String>,
    /// The resource's attributes, as text.
    pub(crate) resource: HashMap<String, String>,
}

impl Span {
    pub(crate) fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// A running receiver.
pub(crate) struct OtlpReceiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
    server: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    pub(crate) async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OTLP receiver");
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(spans.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            spans,
            server,
        }
    }

    /// The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub(crate) fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn export(
    State(spans): State<Arc<Mutex<Vec<Span>>>>,
    body: axum::body::Bytes,
) -> (StatusCode, &'static str) {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON");
    };
    let mut received = Vec::new();
    for resource_spans in array(&request["resourceSpans"]) {
        let resource = attributes(&resource_spans["resource"]["attributes"]);
        for scope_spans in array(&resource_spans["scopeSpans"]) {
            for span in array(&scope_spans["spans"]) {
                received.push(Span {
                    name: text(&span["name"]),
                    trace_id: text(&span["traceId"]),
                    span_id: text(&span["spanId"]),
                    parent_span_id: text(&span["parentSpanId"]),
                    kind: span["kind"].as_u64().unwrap_or_default(),
                    attributes: attributes(&span["attributes"]),
                    resource: resource.clone(),
                });
            }
        }
    }
    spans.lock().unwrap().extend(received);
    (StatusCode::OK, "{}")
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// OTLP key-value lists as text: `{"key": k, "value": {"stringValue": v}}` and the
/// other scalar kinds (an `intValue` is a JSON string or number).
fn attributes(list: &Value) -> HashMap<String, String> {
    array(list)
        .iter()
        .filter_map(|kv| {
            let key = kv["key"].as_str()?.to_owned();
            let value = kv["value"].as_object()?.values().next()?;
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((key, value))
        })
        .collect()
}
