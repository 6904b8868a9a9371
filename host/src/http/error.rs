//! The HTTP error type: every failure leaves as `application/problem+json` (RFC 9457).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::ValidationError;
use crate::store::StoreError;
use crate::tasks::TaskError;

/// A request that failed; each variant names its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a field is invalid.
    #[error("{detail}")]
    BadRequest {
        detail: String,
        field: Option<String>,
    },
    /// 422: well-formed JSON whose content is invalid; names the field.
    #[error("{detail}")]
    Invalid { detail: String, field: String },
    /// 401: no bearer token, or one that does not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a valid credential that does not grant this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such route or resource (also another user's task).
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 413: the body is larger than the configured cap.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: the body is not `application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 503: the database is busy or unreachable; answered with `Retry-After`. Logged
    /// at warn level with the cause; the body stays generic.
    #[error("the service is busy; retry after {RETRY_AFTER_SECONDS} second(s)")]
    Unavailable(StoreError),
    /// 500: anything unexpected. Logged with the cause; the body stays generic.
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 naming the query or path parameter `field`.
    pub fn param(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            detail: detail.into(),
            field: Some(field.into()),
        }
    }

    /// A 422 naming the body field `field`.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::Invalid {
            detail: detail.into(),
            field: field.into(),
        }
    }

    /// A 400 about the request as a whole.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            detail: detail.into(),
            field: None,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::invalid(e.field, e.to_string())
    }
}

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::NotFound(_) => ApiError::NotFound(e.to_string()),
            TaskError::Store(cause) => cause.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            ApiError::Unavailable(e)
        } else {
            ApiError::Internal(e.into())
        }
    }
}

/// How long a client is asked to wait after a 503.
const RETRY_AFTER_SECONDS: u64 = 1;

/// The RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status and title say what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field at fault, when there is one (JSON field name or query parameter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// The problem document of this error. Internal errors get a generic detail;
    /// their cause is logged by [`IntoResponse`], never sent.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            ApiError::Internal(_) => {
                "an internal error occurred; the correlation id identifies it in the logs"
                    .to_owned()
            }
            other => other.to_string(),
        };
        let field = match self {
            ApiError::BadRequest { field, .. } => field.clone(),
            ApiError::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        };
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            field,
        }
    }

    /// [`ApiError::problem`] as JSON (for surfaces other than HTTP responses, e.g. MCP tools).
    pub fn problem_json(&self) -> serde_json::Value {
        serde_json::to_value(self.problem()).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Logged here, inside the request span, so the correlation id is attached.
        match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed");
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "request refused: the database is busy");
            }
            _ => {}
        }
        let problem = self.problem();
        let status = self.status();
        let mut response = (status, Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}
