//! The Dapr publisher: `POST /v1.0/publish/{pubsub}/{topic}` with a structured-mode
//! CloudEvents body, classifying each answer as success, retry or refusal.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::config::DaprConfig;

/// What one publish attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx (Dapr answers 204).
    Published(u16),
    /// A timeout, a refused connection or a 5xx: try again later.
    Retry { status: Option<u16>, reason: String },
    /// A 4xx: Dapr's configuration refuses it; retrying cannot help.
    Refused { status: u16, reason: String },
}

/// Dapr's error body, `{errorCode, message}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DaprError {
    error_code: Option<String>,
    message: Option<String>,
}

/// Sends envelopes to the sidecar over a keep-alive pool.
#[derive(Debug, Clone)]
pub struct Publisher {
    client: reqwest::Client,
    base: String,
    pubsub: String,
    token: Option<String>,
}

impl Publisher {
    pub fn new(config: &DaprConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.dapr_publish_timeout)
            .connect_timeout(config.dapr_publish_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
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
        })
    }

    /// Publishes one envelope to `topic` with Kafka key `partition_key`.
    pub async fn publish(
        &self,
        topic: &str,
        partition_key: &str,
        body: String,
        traceparent: Option<&str>,
    ) -> Outcome {
        let url = format!("{}/v1.0/publish/{}/{}", self.base, self.pubsub, topic);
        let mut request = self
            .client
            .post(url)
            .query(&[("metadata.partitionKey", partition_key)])
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/cloudevents+json",
            )
            .body(body);
        if let Some(token) = &self.token {
            request = request.header("dapr-api-token", token);
        }
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Outcome::Retry {
                    status: None,
                    reason: "publish timed out (DAPR_PUBLISH_TIMEOUT)".into(),
                };
            }
            Err(e) if e.is_connect() => {
                return Outcome::Retry {
                    status: None,
                    reason: "Dapr sidecar unreachable (connection failed)".into(),
                };
            }
            Err(e) => {
                return Outcome::Retry {
                    status: None,
                    reason: format!("publish failed: {e}"),
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Published(status.as_u16());
        }
        let text = response.text().await.unwrap_or_default();
        let reason = describe_error(status, &text);
        if status.is_client_error()
            && status != StatusCode::REQUEST_TIMEOUT
            && status != StatusCode::TOO_MANY_REQUESTS
        {
            Outcome::Refused {
                status: status.as_u16(),
                reason,
            }
        } else {
            Outcome::Retry {
                status: Some(status.as_u16()),
                reason,
            }
        }
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

/// "HTTP 403 ERR_PUBSUB_FORBIDDEN: topic … is not allowed" from Dapr's error body.
fn describe_error(status: StatusCode, body: &str) -> String {
    match serde_json::from_str::<DaprError>(body) {
        Ok(DaprError {
            error_code,
            message,
        }) => format!(
            "HTTP {} {}: {}",
            status.as_u16(),
            error_code.as_deref().unwrap_or("(no errorCode)"),
            message.as_deref().unwrap_or("(no message)")
        ),
        Err(_) => {
            let snippet: String = body.chars().take(200).collect();
            format!("HTTP {}: {}", status.as_u16(), snippet.trim())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dapr_error_bodies_are_summarised() {
        let text = describe_error(
            StatusCode::FORBIDDEN,
            r#"{"errorCode":"ERR_PUBSUB_FORBIDDEN","message":"topic reminders is not allowed for app id pakaura"}"#,
        );
        assert_eq!(
            text,
            "HTTP 403 ERR_PUBSUB_FORBIDDEN: topic reminders is not allowed for app id pakaura"
        );
        assert_eq!(
            describe_error(StatusCode::BAD_GATEWAY, "oops"),
            "HTTP 502: oops"
        );
    }
}
