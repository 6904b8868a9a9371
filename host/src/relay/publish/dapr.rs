//! The Dapr sidecar's pub/sub HTTP API: single publishes
//! (`POST /v1.0/publish/{pubsub}/{topic}`) and bulk publishes
//! (`POST /{version}/publish/bulk/{pubsub}/{topic}`) of structured-mode CloudEvents,
//! each answer classified as published (2xx), retry (a timeout, a refused connection,
//! a 5xx, 408 or 429) or refusal (any other 4xx: Dapr's configuration refuses it).
//! Readiness is `GET /v1.0/healthz/outbound`.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{BatchOutcome, Batching, Failure, Outcome, Outgoing, Publisher, PublisherError};
use crate::config::DaprConfig;

/// The content type of a structured-mode CloudEvent.
const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

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

/// Sends envelopes to the sidecar over a keep-alive pool.
#[derive(Debug, Clone)]
pub struct DaprPublisher {
    client: reqwest::Client,
    base: String,
    pubsub: String,
    token: Option<String>,
    timeout: Duration,
    /// `DAPR_BULK_PUBLISH`: the limits of one bulk request.
    bulk: Option<Batching>,
    /// The API version segment of bulk publishes (`v1.0-alpha1` or `v1.0`).
    bulk_version: String,
}

impl DaprPublisher {
    pub fn new(config: &DaprConfig) -> Result<Self, PublisherError> {
        let client = reqwest::Client::builder()
            .timeout(config.dapr_publish_timeout)
            .connect_timeout(config.dapr_publish_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            // The sidecar is local: never route envelopes and the API token through
            // an environment proxy, never follow a redirect elsewhere.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PublisherError {
                publisher: "dapr",
                message: e.to_string(),
            })?;
        Ok(Self {
            client,
            base: format!("http://{}:{}", config.dapr_host, config.dapr_http_port),
            pubsub: config.dapr_pubsub_name.clone(),
            token: config
                .dapr_api_token
                .as_ref()
                .map(|t| t.expose().to_owned()),
            timeout: config.dapr_publish_timeout,
            bulk: config.dapr_bulk_publish.then(|| Batching {
                max_entries: config.dapr_bulk_max_entries as usize,
                max_bytes: usize::try_from(config.dapr_bulk_max_bytes).unwrap_or(usize::MAX),
            }),
            bulk_version: config.dapr_bulk_api_version.clone(),
        })
    }

    fn post(&self, url: String) -> reqwest::RequestBuilder {
        let request = self.client.post(url);
        match &self.token {
            Some(token) => request.header("dapr-api-token", token),
            None => request,
        }
    }

    /// Publishes one envelope with its Kafka key as `metadata.partitionKey`; its
    /// `traceparent` is also sent as the request's header so the sidecar's span joins
    /// the trace.
    async fn publish_one(&self, event: Outgoing<'_>) -> Outcome {
        let url = format!("{}/v1.0/publish/{}/{}", self.base, self.pubsub, event.topic);
        let mut request = self
            .post(url)
            .query(&[("metadata.partitionKey", event.partition_key)])
            .header(reqwest::header::CONTENT_TYPE, CLOUDEVENTS_JSON)
            .body(event.body.get().to_owned());
        if let Some(traceparent) = event.traceparent {
            request = request.header("traceparent", traceparent.to_string());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_failure(&e),
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Published {
                status: Some(status.as_u16()),
            };
        }
        let text = response.text().await.unwrap_or_default();
        classify_error(status, &parse_error(&text), &text)
    }

    /// Publishes `events` (at most one per task: Dapr does not order the entries of
    /// one request) to `topic` in one bulk request, each entry keyed by its envelope id
    /// and carrying its own `metadata.partitionKey`; one outcome per event, in order.
    async fn publish_bulk(&self, topic: &str, events: &[Outgoing<'_>]) -> BatchOutcome {
        let wire: Vec<WireEntry<'_>> = events.iter().map(wire_entry).collect();
        let url = format!(
            "{}/{}/publish/bulk/{}/{}",
            self.base, self.bulk_version, self.pubsub, topic
        );
        let response = match self.post(url).json(&wire).send().await {
            Ok(r) => r,
            Err(e) => return BatchOutcome::Whole(transport_failure(&e)),
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
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
        self.client
            .get(format!("{}/v1.0/healthz/outbound", self.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
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

fn transport_failure(e: &reqwest::Error) -> Outcome {
    let reason = if e.is_timeout() {
        "publish timed out (DAPR_PUBLISH_TIMEOUT)".to_owned()
    } else if e.is_connect() {
        "Dapr sidecar unreachable (connection failed)".to_owned()
    } else {
        format!("publish failed: {e}")
    };
    Outcome::Retry(Failure {
        status: None,
        code: None,
        reason,
    })
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
            dapr_enabled: Some(true),
            dapr_http_port: 3500,
            dapr_host: "127.0.0.1".into(),
            dapr_pubsub_name: "pubsub-kafka".into(),
            dapr_publish_timeout: Duration::from_secs(2),
            dapr_bulk_publish: true,
            dapr_bulk_api_version: "v1.0".into(),
            dapr_bulk_max_entries: 100,
            dapr_bulk_max_bytes: 1 << 20,
            dapr_api_token: None,
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
