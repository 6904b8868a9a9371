//! The Dapr sidecar's pub/sub HTTP API: single publishes
//! (`POST /v1.0/publish/{pubsub}/{topic}`) and bulk publishes
//! (`POST /{version}/publish/bulk/{pubsub}/{topic}`) of structured-mode CloudEvents,
//! each answer classified as published (2xx), retry (a timeout, a refused connection,
//! a 5xx, 408 or 429) or refusal (any other 4xx: Dapr's configuration refuses it).
//! Readiness is `GET /v1.0/healthz/outbound`.

use std::net::Ipv6Addr;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{BatchOutcome, Batching, Failure, Outcome, Outgoing, Publisher, PublisherError};
use crate::config::DaprConfig;

/// The content type of a structured-mode CloudEvent.
const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// The content type of a bulk publish's JSON array.
const APPLICATION_JSON: &str = "application/json";

/// The header carrying `DAPR_API_TOKEN`.
const DAPR_API_TOKEN: HeaderName = HeaderName::from_static("dapr-api-token");

/// The W3C trace context header.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The most of an answer's body read (Dapr's error bodies are small; a bulk answer lists
/// at most one failed entry per entry sent). Beyond it the body is not parsed.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// What a path segment keeps unescaped: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Dapr's error body: `{errorCode, message}`, and for bulk publishes `failedEntries`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DaprError {
    error_code: Option<String>,
    message: Option<String>,
    #[serde(default)]
    failed_entries: Vec<FailedEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailedEntry {
    entry_id: String,
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireEntry<'a> {
    entry_id: String,
    event: &'a RawValue,
    content_type: &'static str,
    metadata: WireMetadata<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireMetadata<'a> {
    partition_key: &'a str,
}

/// Why a request got no answer.
enum Transport {
    /// No answer (headers and body) within `DAPR_PUBLISH_TIMEOUT`.
    TimedOut,
    /// No connection to the sidecar.
    Connect,
    /// Anything else: the connection closed mid-answer, a malformed answer.
    Other(String),
}

/// Sends envelopes to the sidecar over a keep-alive pool of HTTP/1.1 connections.
///
/// Plain hyper rather than a general-purpose client: the sidecar is one local address,
/// every request goes to it, and nothing is followed, proxied or retried by the client.
/// So each publish is a request built from parts prepared once (the authority, the
/// escaped path of the pub/sub component, the token's header), with no URL parsed per
/// event. (The general-purpose client's own work around each request was about a tenth
/// of the host's CPU under load: BENCHMARKS.md.) Nothing is read from the environment: no
/// proxy ever sees the envelopes or the API token.
#[derive(Debug, Clone)]
pub struct DaprPublisher {
    client: Client<HttpConnector, Full<Bytes>>,
    /// `host:port` of the sidecar.
    authority: Authority,
    /// `/v1.0/publish/{pubsub}/`, the pub/sub component's name escaped.
    publish_path: String,
    /// `/{version}/publish/bulk/{pubsub}/`.
    bulk_path: String,
    /// `DAPR_API_TOKEN` as a header value marked sensitive.
    token: Option<HeaderValue>,
    timeout: Duration,
    /// `DAPR_BULK_PUBLISH`: the limits of one bulk request.
    bulk: Option<Batching>,
}

impl DaprPublisher {
    pub fn new(config: &DaprConfig) -> Result<Self, PublisherError> {
        let refuse = |message: String| PublisherError {
            publisher: "dapr",
            message,
        };
        let host = &config.dapr_host;
        let authority = match host.parse::<Ipv6Addr>() {
            Ok(v6) => format!("[{v6}]:{}", config.dapr_http_port),
            Err(_) => format!("{host}:{}", config.dapr_http_port),
        };
        let authority = Authority::try_from(authority.as_str()).map_err(|e| {
            refuse(format!(
                "DAPR_HOST `{host}` is not a host name or address: {e}"
            ))
        })?;
        let token = config
            .dapr_api_token
            .as_ref()
            .map(|t| {
                let mut value = HeaderValue::from_str(t.expose()).map_err(|_| {
                    refuse("DAPR_API_TOKEN holds characters a header cannot carry".to_owned())
                })?;
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.dapr_publish_timeout));
        connector.set_nodelay(true);
        // A sidecar URL is always http: the sidecar is on the pod's loopback.
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build(connector);
        let pubsub = utf8_percent_encode(&config.dapr_pubsub_name, SEGMENT);
        let version = utf8_percent_encode(&config.dapr_bulk_api_version, SEGMENT);
        Ok(Self {
            client,
            authority,
            publish_path: format!("/v1.0/publish/{pubsub}/"),
            bulk_path: format!("/{version}/publish/bulk/{pubsub}/"),
            token,
            timeout: config.dapr_publish_timeout,
            bulk: config.dapr_bulk_publish.then(|| Batching {
                max_entries: config.dapr_bulk_max_entries as usize,
                max_bytes: usize::try_from(config.dapr_bulk_max_bytes).unwrap_or(usize::MAX),
            }),
        })
    }

    /// `http://{sidecar}{path_and_query}`.
    fn uri(&self, path_and_query: String) -> Result<Uri, String> {
        let path_and_query = PathAndQuery::try_from(path_and_query)
            .map_err(|e| format!("cannot build the publish URL: {e}"))?;
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| format!("cannot build the publish URL: {e}"))
    }

    /// `…/v1.0/publish/{pubsub}/{topic}?metadata.partitionKey={key}`, each part escaped.
    fn publish_uri(&self, topic: &str, partition_key: &str) -> Result<Uri, String> {
        let mut path = String::with_capacity(
            self.publish_path.len() + topic.len() + 24 + 3 * partition_key.len(),
        );
        path.push_str(&self.publish_path);
        path.extend(utf8_percent_encode(topic, SEGMENT));
        path.push_str("?metadata.partitionKey=");
        path.extend(form_urlencoded::byte_serialize(partition_key.as_bytes()));
        self.uri(path)
    }

    /// A request to the sidecar, with the API token when one is set.
    fn request(
        &self,
        method: Method,
        uri: Uri,
        content_type: Option<HeaderValue>,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        if let Some(content_type) = content_type {
            headers.insert(CONTENT_TYPE, content_type);
        }
        if let Some(token) = &self.token {
            headers.insert(DAPR_API_TOKEN, token.clone());
        }
        request
    }

    /// Sends `request` and reads its answer: the status and the body (at most
    /// [`MAX_ANSWER_BYTES`], else empty), all within `DAPR_PUBLISH_TIMEOUT`.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), Transport> {
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    Transport::Connect
                } else {
                    Transport::Other(describe_transport(&e))
                }
            })?;
            let status = response.status();
            let body = match Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
            {
                Ok(body) => body.to_bytes(),
                // Too long to be Dapr's: classified by its status alone.
                Err(e) if e.is::<http_body_util::LengthLimitError>() => Bytes::new(),
                Err(e) => return Err(Transport::Other(format!("reading the answer: {e}"))),
            };
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(Transport::TimedOut))
    }

    /// Publishes one envelope with its Kafka key as `metadata.partitionKey`; its
    /// `traceparent` is also sent as the request's header so the sidecar's span joins
    /// the trace.
    async fn publish_one(&self, event: Outgoing<'_>) -> Outcome {
        let uri = match self.publish_uri(event.topic, event.partition_key) {
            Ok(uri) => uri,
            Err(reason) => return transport_failure(Transport::Other(reason)),
        };
        let body = Bytes::copy_from_slice(event.body.get().as_bytes());
        let mut request = self.request(
            Method::POST,
            uri,
            Some(HeaderValue::from_static(CLOUDEVENTS_JSON)),
            body,
        );
        if let Some(traceparent) = event.traceparent {
            let value =
                HeaderValue::try_from(traceparent.to_string()).expect("a traceparent is ASCII");
            request.headers_mut().insert(TRACEPARENT, value);
        }
        let (status, body) = match self.exchange(request).await {
            Ok(answer) => answer,
            Err(e) => return transport_failure(e),
        };
        if status.is_success() {
            return Outcome::Published {
                status: Some(status.as_u16()),
            };
        }
        let text = String::from_utf8_lossy(&body);
        classify_error(status, &parse_error(&text), &text)
    }

    /// Publishes `events` (at most one per task: Dapr does not order the entries of
    /// one request) to `topic` in one bulk request, each entry keyed by its envelope id
    /// and carrying its own `metadata.partitionKey`; one outcome per event, in order.
    async fn publish_bulk(&self, topic: &str, events: &[Outgoing<'_>]) -> BatchOutcome {
        let wire: Vec<WireEntry<'_>> = events.iter().map(wire_entry).collect();
        let body = match serde_json::to_vec(&wire) {
            Ok(body) => Bytes::from(body),
            Err(e) => {
                return BatchOutcome::Whole(transport_failure(Transport::Other(format!(
                    "cannot write the bulk request: {e}"
                ))));
            }
        };
        let path = format!("{}{}", self.bulk_path, utf8_percent_encode(topic, SEGMENT));
        let uri = match self.uri(path) {
            Ok(uri) => uri,
            Err(reason) => return BatchOutcome::Whole(transport_failure(Transport::Other(reason))),
        };
        let request = self.request(
            Method::POST,
            uri,
            Some(HeaderValue::from_static(APPLICATION_JSON)),
            body,
        );
        let (status, body) = match self.exchange(request).await {
            Ok(answer) => answer,
            Err(e) => return BatchOutcome::Whole(transport_failure(e)),
        };
        let text = String::from_utf8_lossy(&body);
        let error = parse_error(&text);
        if !status.is_success() && error.failed_entries.is_empty() {
            // 400 (a malformed request, a duplicated entryId), 413 (too large), 403, 404:
            // the request as a whole, not any one entry.
            return BatchOutcome::Whole(classify_error(status, &error, &text));
        }
        // 204, or a partial failure: the entries Dapr lists failed, the rest went.
        let outcomes = wire
            .iter()
            .map(|e| {
                match error
                    .failed_entries
                    .iter()
                    .find(|f| f.entry_id == e.entry_id)
                {
                    None if status.is_success() => Outcome::Published {
                        status: Some(status.as_u16()),
                    },
                    None => Outcome::Published { status: Some(204) },
                    Some(failed) => Outcome::Retry(Failure {
                        status: Some(status.as_u16()),
                        code: error.error_code.clone(),
                        reason: format!(
                            "HTTP {} {}: bulk entry failed: {}",
                            status.as_u16(),
                            error.error_code.as_deref().unwrap_or("(no errorCode)"),
                            failed.error.as_deref().unwrap_or("(no error)")
                        ),
                    }),
                }
            })
            .collect();
        BatchOutcome::PerEvent(outcomes)
    }

    /// Whether the sidecar is ready to reach its components (`/v1.0/healthz/outbound`).
    async fn sidecar_ready(&self) -> bool {
        let Ok(uri) = self.uri("/v1.0/healthz/outbound".to_owned()) else {
            return false;
        };
        let request = self.request(Method::GET, uri, None, Bytes::new());
        self.exchange(request)
            .await
            .is_ok_and(|(status, _)| status.is_success())
    }
}

impl Publisher for DaprPublisher {
    fn system(&self) -> &'static str {
        "dapr"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn batching(&self) -> Option<Batching> {
        self.bulk
    }

    fn publish<'a>(&'a self, event: Outgoing<'a>) -> BoxFuture<'a, Outcome> {
        self.publish_one(event).boxed()
    }

    fn publish_batch<'a>(
        &'a self,
        topic: &'a str,
        events: &'a [Outgoing<'a>],
    ) -> BoxFuture<'a, BatchOutcome> {
        self.publish_bulk(topic, events).boxed()
    }

    /// Exactly the JSON array `publish_bulk` sends: each entry's `entryId`, `event`,
    /// `contentType` and `metadata` (its partition key escaped as JSON), commas and
    /// brackets. Counted without copying the bodies: an entry is measured with an empty
    /// event, then the body's own length added.
    fn batch_bytes(&self, events: &[Outgoing<'_>]) -> usize {
        let empty: &RawValue =
            serde_json::from_str("{}").expect("an empty object is a JSON document");
        let entries: usize = events
            .iter()
            .map(|e| {
                let frame = WireEntry {
                    event: empty,
                    ..wire_entry(e)
                };
                let framed = serde_json::to_vec(&frame).map_or(0, |v| v.len());
                framed - 2 + e.body.get().len()
            })
            .sum();
        entries + events.len().saturating_sub(1) + 2
    }

    fn ready(&self) -> BoxFuture<'_, bool> {
        self.sidecar_ready().boxed()
    }

    fn readiness_check(&self) -> &'static str {
        "the Dapr sidecar (GET /v1.0/healthz/outbound)"
    }
}

/// The bulk entry of `e`: keyed by its envelope id, with its own partition key.
fn wire_entry<'a>(e: &Outgoing<'a>) -> WireEntry<'a> {
    WireEntry {
        entry_id: e.id.to_string(),
        event: e.body,
        content_type: CLOUDEVENTS_JSON,
        metadata: WireMetadata {
            partition_key: e.partition_key,
        },
    }
}

fn transport_failure(e: Transport) -> Outcome {
    let reason = match e {
        Transport::TimedOut => "publish timed out (DAPR_PUBLISH_TIMEOUT)".to_owned(),
        Transport::Connect => "Dapr sidecar unreachable (connection failed)".to_owned(),
        Transport::Other(reason) => format!("publish failed: {reason}"),
    };
    Outcome::Retry(Failure {
        status: None,
        code: None,
        reason,
    })
}

/// hyper's error with its causes ("client error (SendRequest): connection closed
/// before message completed").
fn describe_transport(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn parse_error(body: &str) -> DaprError {
    serde_json::from_str(body).unwrap_or_default()
}

/// A non-2xx answer: 408, 429 and 5xx are retried, any other 4xx refused.
fn classify_error(status: StatusCode, error: &DaprError, body: &str) -> Outcome {
    let failure = Failure {
        status: Some(status.as_u16()),
        code: error.error_code.clone(),
        reason: describe_error(status, error, body),
    };
    if status.is_client_error()
        && status != StatusCode::REQUEST_TIMEOUT
        && status != StatusCode::TOO_MANY_REQUESTS
    {
        Outcome::Refused(failure)
    } else {
        Outcome::Retry(failure)
    }
}

/// "HTTP 403 ERR_PUBSUB_FORBIDDEN: topic … is not allowed" from Dapr's error body.
fn describe_error(status: StatusCode, error: &DaprError, body: &str) -> String {
    if error.error_code.is_some() || error.message.is_some() {
        format!(
            "HTTP {} {}: {}",
            status.as_u16(),
            error.error_code.as_deref().unwrap_or("(no errorCode)"),
            error.message.as_deref().unwrap_or("(no message)")
        )
    } else {
        let snippet: String = body.chars().take(200).collect();
        format!("HTTP {}: {}", status.as_u16(), snippet.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dapr_error_bodies_are_summarised() {
        let body = r#"{"errorCode":"ERR_PUBSUB_FORBIDDEN","message":"topic reminders is not allowed for app id pakaura"}"#;
        let outcome = classify_error(StatusCode::FORBIDDEN, &parse_error(body), body);
        assert_eq!(
            outcome,
            Outcome::Refused(Failure {
                status: Some(403),
                code: Some("ERR_PUBSUB_FORBIDDEN".into()),
                reason: "HTTP 403 ERR_PUBSUB_FORBIDDEN: topic reminders is not allowed for app id pakaura"
                    .into()
            })
        );
        assert_eq!(
            describe_error(StatusCode::BAD_GATEWAY, &parse_error("oops"), "oops"),
            "HTTP 502: oops"
        );
    }

    #[test]
    fn the_batch_size_is_the_serialized_request() {
        let config = DaprConfig {
            dapr_bulk_publish: true,
            dapr_bulk_api_version: "v1.0".into(),
            ..config("127.0.0.1", "pubsub-kafka")
        };
        let publisher = DaprPublisher::new(&config).unwrap();
        let bodies = [r#"{"id":"a","data":{"x":1}}"#, r#"{"id":"b"}"#];
        let raws: Vec<Box<RawValue>> = bodies
            .iter()
            .map(|b| RawValue::from_string((*b).to_owned()).unwrap())
            .collect();
        let keys = ["task-1", "quote\"d"];
        let events: Vec<Outgoing<'_>> = raws
            .iter()
            .zip(keys)
            .map(|(body, key)| Outgoing {
                id: uuid::Uuid::new_v4(),
                topic: "task-events",
                partition_key: key,
                body,
                traceparent: None,
            })
            .collect();
        let sent = serde_json::to_vec(&events.iter().map(wire_entry).collect::<Vec<_>>())
            .unwrap()
            .len();
        assert_eq!(publisher.batch_bytes(&events), sent);
    }

    fn config(host: &str, pubsub: &str) -> DaprConfig {
        DaprConfig {
            dapr_enabled: Some(true),
            dapr_http_port: 3500,
            dapr_host: host.into(),
            dapr_pubsub_name: pubsub.into(),
            dapr_publish_timeout: Duration::from_secs(2),
            dapr_bulk_publish: false,
            dapr_bulk_api_version: "v1.0-alpha1".into(),
            dapr_bulk_max_entries: 100,
            dapr_bulk_max_bytes: 1 << 20,
            dapr_api_token: None,
        }
    }

    #[test]
    fn the_sidecar_urls_escape_what_they_carry() {
        let publisher = DaprPublisher::new(&config("127.0.0.1", "pubsub-kafka")).unwrap();
        assert_eq!(
            publisher
                .publish_uri("task-events", "5f0e2c4a-0b7e-4e59-9a40-3d6f1b0c9e11")
                .unwrap()
                .to_string(),
            "http://127.0.0.1:3500/v1.0/publish/pubsub-kafka/task-events?metadata.partitionKey=5f0e2c4a-0b7e-4e59-9a40-3d6f1b0c9e11"
        );
        let odd = DaprPublisher::new(&config("::1", "pub sub/ü")).unwrap();
        assert_eq!(
            odd.publish_uri("task.events_v2", "a b&c=d/é")
                .unwrap()
                .to_string(),
            "http://[::1]:3500/v1.0/publish/pub%20sub%2F%C3%BC/task.events_v2?metadata.partitionKey=a+b%26c%3Dd%2F%C3%A9"
        );
        assert_eq!(
            odd.uri(format!("{}task-events", odd.bulk_path))
                .unwrap()
                .to_string(),
            "http://[::1]:3500/v1.0-alpha1/publish/bulk/pub%20sub%2F%C3%BC/task-events"
        );
    }

    #[test]
    fn a_sidecar_host_that_is_no_host_is_refused_by_name() {
        let e = DaprPublisher::new(&config("side car", "pubsub-kafka")).unwrap_err();
        assert!(
            e.to_string()
                .contains("DAPR_HOST `side car` is not a host name or address"),
            "{e}"
        );
    }

    #[test]
    fn throttling_and_server_errors_are_retried() {
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::REQUEST_TIMEOUT,
            StatusCode::BAD_GATEWAY,
        ] {
            assert!(matches!(
                classify_error(status, &DaprError::default(), ""),
                Outcome::Retry(_)
            ));
        }
    }
}
