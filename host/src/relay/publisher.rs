//! The Dapr publisher: single publishes (`POST /v1.0/publish/{pubsub}/{topic}`) and bulk
//! publishes (`POST /{version}/publish/bulk/{pubsub}/{topic}`) of structured-mode
//! CloudEvents, each answer classified as published, retry or refusal.

use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::config::DaprConfig;

/// The content type of a structured-mode CloudEvent.
const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// What one publish attempt of one envelope came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx (Dapr answers 204).
    Published(u16),
    /// A timeout, a refused connection, a 5xx, 408 or 429: try again later.
    Retry {
        status: Option<u16>,
        code: Option<String>,
        reason: String,
    },
    /// Any other 4xx: Dapr's configuration refuses it; retrying cannot help.
    Refused {
        status: u16,
        code: Option<String>,
        reason: String,
    },
}

/// One envelope of a bulk publish.
#[derive(Debug, Clone, Copy)]
pub struct BulkEntry<'a> {
    /// The envelope id, used as the entry id.
    pub id: &'a str,
    /// The CloudEvents JSON document.
    pub body: &'a str,
    /// The Kafka partition key.
    pub partition_key: &'a str,
}

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
    entry_id: &'a str,
    event: &'a RawValue,
    content_type: &'static str,
    metadata: WireMetadata<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireMetadata<'a> {
    partition_key: &'a str,
}

/// Sends envelopes to the sidecar over a keep-alive pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    client: reqwest::Client,
    base: String,
    pubsub: String,
    token: Option<String>,
    /// The API version segment of bulk publishes (`v1.0-alpha1` or `v1.0`).
    bulk_version: String,
}

impl Publisher {
    pub fn new(config: &DaprConfig) -> Result<Self, reqwest::Error> {
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
            .build()?;
        Ok(Self {
            client,
            base: format!("http://{}:{}", config.dapr_host, config.dapr_http_port),
            pubsub: config.dapr_pubsub_name.clone(),
            token: config
                .dapr_api_token
                .as_ref()
                .map(|t| t.expose().to_owned()),
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

    /// Publishes one envelope to `topic` with Kafka key `partition_key`; `traceparent`
    /// is also sent as the request's header so the sidecar's span joins the trace.
    pub async fn publish(
        &self,
        topic: &str,
        partition_key: &str,
        body: String,
        traceparent: Option<&str>,
    ) -> Outcome {
        let url = format!("{}/v1.0/publish/{}/{}", self.base, self.pubsub, topic);
        let mut request = self
            .post(url)
            .query(&[("metadata.partitionKey", partition_key)])
            .header(reqwest::header::CONTENT_TYPE, CLOUDEVENTS_JSON)
            .body(body);
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_failure(&e),
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Published(status.as_u16());
        }
        let text = response.text().await.unwrap_or_default();
        classify_error(status, &parse_error(&text), &text)
    }

    /// Publishes `entries` (at most one per task: Dapr does not order the entries of
    /// one request) to `topic` in one bulk request; one outcome per entry, in order.
    pub async fn publish_bulk(&self, topic: &str, entries: &[BulkEntry<'_>]) -> Vec<Outcome> {
        let mut wire = Vec::with_capacity(entries.len());
        for e in entries {
            let event: &RawValue = match serde_json::from_str(e.body) {
                Ok(event) => event,
                // Stored bodies are the host's own JSON; this cannot happen short of
                // corruption, and a corrupt envelope must not sink its neighbours.
                Err(err) => {
                    return entries
                        .iter()
                        .map(|x| Outcome::Refused {
                            status: 0,
                            code: None,
                            reason: if x.id == e.id {
                                format!("stored envelope is not JSON: {err}")
                            } else {
                                "not sent: another entry of its bulk request was corrupt".to_owned()
                            },
                        })
                        .collect();
                }
            };
            wire.push(WireEntry {
                entry_id: e.id,
                event,
                content_type: CLOUDEVENTS_JSON,
                metadata: WireMetadata {
                    partition_key: e.partition_key,
                },
            });
        }
        let url = format!(
            "{}/{}/publish/bulk/{}/{}",
            self.base, self.bulk_version, self.pubsub, topic
        );
        let response = match self.post(url).json(&wire).send().await {
            Ok(r) => r,
            Err(e) => {
                let failure = transport_failure(&e);
                return vec![failure; entries.len()];
            }
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let error = parse_error(&text);
        if !status.is_success() && error.failed_entries.is_empty() {
            let outcome = classify_error(status, &error, &text);
            return vec![outcome; entries.len()];
        }
        // 204, or a partial failure: the entries Dapr lists failed, the rest went.
        entries
            .iter()
            .map(
                |e| match error.failed_entries.iter().find(|f| f.entry_id == e.id) {
                    None if status.is_success() => Outcome::Published(status.as_u16()),
                    None => Outcome::Published(204),
                    Some(failed) => Outcome::Retry {
                        status: Some(status.as_u16()),
                        code: error.error_code.clone(),
                        reason: format!(
                            "HTTP {} {}: bulk entry failed: {}",
                            status.as_u16(),
                            error.error_code.as_deref().unwrap_or("(no errorCode)"),
                            failed.error.as_deref().unwrap_or("(no error)")
                        ),
                    },
                },
            )
            .collect()
    }

    /// Whether the sidecar is ready to reach its components (`/v1.0/healthz/outbound`).
    pub async fn sidecar_ready(&self) -> bool {
        self.client
            .get(format!("{}/v1.0/healthz/outbound", self.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
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
    Outcome::Retry {
        status: None,
        code: None,
        reason,
    }
}

fn parse_error(body: &str) -> DaprError {
    serde_json::from_str(body).unwrap_or_default()
}

/// A non-2xx answer: 408, 429 and 5xx are retried, any other 4xx refused.
fn classify_error(status: StatusCode, error: &DaprError, body: &str) -> Outcome {
    let reason = describe_error(status, error, body);
    let code = error.error_code.clone();
    if status.is_client_error()
        && status != StatusCode::REQUEST_TIMEOUT
        && status != StatusCode::TOO_MANY_REQUESTS
    {
        Outcome::Refused {
            status: status.as_u16(),
            code,
            reason,
        }
    } else {
        Outcome::Retry {
            status: Some(status.as_u16()),
            code,
            reason,
        }
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
            Outcome::Refused {
                status: 403,
                code: Some("ERR_PUBSUB_FORBIDDEN".into()),
                reason: "HTTP 403 ERR_PUBSUB_FORBIDDEN: topic reminders is not allowed for app id pakaura"
                    .into()
            }
        );
        assert_eq!(
            describe_error(StatusCode::BAD_GATEWAY, &parse_error("oops"), "oops"),
            "HTTP 502: oops"
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
                Outcome::Retry { .. }
            ));
        }
    }
}
