//! Per-request context: the correlation id (taken from `X-Correlation-ID` or made
//! up) and the W3C trace context, echoed back and attached to every log line.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

use crate::domain::{MutationContext, Origin};
use crate::trace::TraceParent;

/// The correlation id header, read from requests and set on every response.
pub static CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// What the host knows about the request that is not its payload.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub correlation_id: String,
    /// The incoming `traceparent`, only when it is valid W3C trace context.
    pub traceparent: Option<TraceParent>,
}

impl RequestContext {
    /// The outbox context of a mutation made through `origin`.
    pub fn mutation(&self, origin: Origin) -> MutationContext {
        MutationContext {
            origin,
            correlation_id: self.correlation_id.clone(),
            traceparent: self.traceparent,
        }
    }
}

/// A client-supplied correlation id is kept when it is 1–128 characters of
/// `[A-Za-z0-9._:-]`; anything else is replaced, never trusted into logs.
fn acceptable_correlation_id(raw: &str) -> bool {
    (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Middleware: establishes the [`RequestContext`] and echoes the correlation id.
pub async fn establish(mut request: Request, next: Next) -> Response {
    // Read the headers in a block: a borrow of the (non-`Sync`) request must not
    // live across the `.await` below.
    let (correlation_id, traceparent) = {
        let header = |name: &HeaderName| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .map(str::to_owned)
        };
        let correlation_id = header(&CORRELATION_ID)
            .filter(|c| acceptable_correlation_id(c))
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        let traceparent = header(&TRACEPARENT).and_then(|t| TraceParent::parse(&t));
        (correlation_id, traceparent)
    };
    let echoed = HeaderValue::from_str(&correlation_id).ok();
    request.extensions_mut().insert(RequestContext {
        correlation_id,
        traceparent,
    });
    let mut response = next.run(request).await;
    if let Some(value) = echoed {
        response.headers_mut().insert(CORRELATION_ID.clone(), value);
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_else(|| RequestContext {
                correlation_id: Uuid::new_v4().to_string(),
                traceparent: None,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_correlation_ids_are_replaced() {
        assert!(acceptable_correlation_id("req-42"));
        assert!(!acceptable_correlation_id("a\nb"));
        assert!(!acceptable_correlation_id(&"x".repeat(129)));
    }
}
