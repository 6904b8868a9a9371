//! Extractors whose rejections are problem documents naming what was wrong.

use axum::extract::FromRequest;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;

use super::error::ApiError;

/// `axum::Json`, rejecting with a problem document.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query`, rejecting with a problem document.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path`, rejecting with a problem document.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let text = rejection.body_text();
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(super::MAX_BODY_BYTES),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(
                "expected a body with `Content-Type: application/json`".to_owned(),
            ),
            _ => match rejection {
                JsonRejection::JsonDataError(_) => {
                    let (field, message) = split_serde_message(&text);
                    ApiError::invalid(field, message)
                }
                _ => ApiError::bad_request(format!("malformed JSON body: {}", strip_prefix(&text))),
            },
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        let (field, message) = split_serde_message(&rejection.body_text());
        ApiError::param(field, message)
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::param(
            "id",
            format!(
                "invalid path parameter: {}",
                strip_prefix(&rejection.body_text())
            ),
        )
    }
}

/// Drops axum's "Failed to deserialize …: " preamble.
fn strip_prefix(text: &str) -> &str {
    text.split_once(": ").map_or(text, |(_, rest)| rest)
}

/// Splits a serde message (with `serde_path_to_error`'s `path: ` prefix) into the
/// field it names and the message. Unknown fields name themselves.
fn split_serde_message(text: &str) -> (String, String) {
    let body = strip_prefix(text);
    if let Some(start) = body.find("unknown field `") {
        let rest = &body[start + "unknown field `".len()..];
        if let Some(end) = rest.find('`') {
            return (rest[..end].to_owned(), body[start..].to_owned());
        }
    }
    if let Some(start) = body.find("missing field `") {
        let rest = &body[start + "missing field `".len()..];
        if let Some(end) = rest.find('`') {
            return (rest[..end].to_owned(), body[start..].to_owned());
        }
    }
    match body.split_once(": ") {
        Some((path, message)) if !path.contains(' ') && path != "." => {
            (path.to_owned(), message.to_owned())
        }
        _ => ("body".to_owned(), body.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::split_serde_message;

    #[test]
    fn serde_messages_name_their_field() {
        let (f, _) = split_serde_message(
            "Failed to deserialize the JSON body into the target type: title: invalid type: integer `1`, expected a string at line 1 column 10",
        );
        assert_eq!(f, "title");
        let (f, m) = split_serde_message(
            "Failed to deserialize the JSON body into the target type: unknown field `colour`, expected one of `title`",
        );
        assert_eq!(f, "colour");
        assert!(m.starts_with("unknown field"));
        let (f, _) = split_serde_message(
            "Failed to deserialize query string: limit: invalid digit found in string",
        );
        assert_eq!(f, "limit");
    }
}
