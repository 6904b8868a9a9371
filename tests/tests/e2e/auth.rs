//! Bearer authentication: missing, malformed, expired and foreign tokens are 401.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::json;

use pakaura_tests::{Backend, expect_problem, on_both_databases, spawn_app};

fn signed(secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn requests_without_a_valid_token_are_unauthorized(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = pakaura_tests::JWT_SECRET;
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("not bearer", Some("Basic YWxpY2U6cHc=".into())),
        ("garbage", Some("Bearer not.a.jwt".into())),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                signed(secret, &json!({"sub": "alice", "exp": now() - 600}))
            )),
        ),
        (
            "no exp",
            Some(format!(
                "Bearer {}",
                signed(secret, &json!({"sub": "alice"}))
            )),
        ),
        (
            "empty sub",
            Some(format!(
                "Bearer {}",
                signed(secret, &json!({"sub": " ", "exp": now() + 600}))
            )),
        ),
        (
            "other secret",
            Some(format!(
                "Bearer {}",
                signed(
                    "another-secret-another-secret-012345",
                    &json!({"sub": "alice", "exp": now() + 600})
                )
            )),
        ),
    ];
    for (case, header) in cases {
        let mut request = app.client.get(app.url("/tasks"));
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{case}");
        let problem = expect_problem(response, StatusCode::UNAUTHORIZED).await;
        assert!(
            problem["detail"].as_str().unwrap().len() > 10,
            "{case}: {problem}"
        );
    }
}

on_both_databases!(requests_without_a_valid_token_are_unauthorized,);
