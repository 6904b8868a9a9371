//! Tokens that do not fit are refused with the reason: algorithm confusion, `none`,
//! an algorithm the key does not allow, issuer, audience, expiry, another key under a
//! known id, a symmetric token without a shared secret; and the user claim.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{accepted, no_claims, refused};
use pakaura_tests::{
    Backend, JwksServer, SigningKey, claims_for, mutations_of, spawn_with, token_for,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_do_not_fit_are_refused_with_the_reason() {
    let rsa = SigningKey::generate("rsa-1", Algorithm::RS256);
    let unpublished = SigningKey::generate("rsa-1", Algorithm::RS256);
    let idp = JwksServer::start(vec![rsa.jwk()]).await;
    let issuer = "https://idp.example.com/realms/acme";
    let app = spawn_with(
        Backend::Sqlite,
        idp.options()
            .set("JWT_ISSUER", issuer)
            .set("JWT_AUDIENCE", "pakaura"),
    )
    .await;
    let fits = json!({"iss": issuer, "aud": "pakaura"});
    accepted(
        &app,
        &rsa.sign(&claims_for("alice", &fits)),
        "a token that fits",
    )
    .await;
    let array = json!({"iss": issuer, "aud": ["account", "pakaura"]});
    accepted(
        &app,
        &rsa.sign(&claims_for("alice", &array)),
        "aud as an array",
    )
    .await;

    let claims = claims_for("alice", &fits);
    // HS256 "signed" with the provider's public key as the secret, naming that key.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let confused = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(rsa.jwk().to_string().as_bytes()).unwrap(),
    )
    .unwrap();
    // {"alg":"none","kid":"rsa-1"}, the claims, no signature.
    let payload = rsa.sign(&claims).split('.').nth(1).unwrap().to_owned();
    let unsigned = format!("eyJhbGciOiJub25lIiwia2lkIjoicnNhLTEifQ.{payload}.");
    let expired = {
        let mut c = claims.clone();
        c["exp"] = json!(c["iat"].as_u64().unwrap() - 3600);
        c
    };
    let cases = [
        (
            confused,
            "not allowed for the identity provider's keys",
            "HS256 with the public key",
        ),
        (unsigned, "`none`", "alg none"),
        (
            rsa.sign_as(Algorithm::PS256, Some("rsa-1"), &claims),
            "does not fit the key",
            "PS256 with an RS256 key",
        ),
        (
            rsa.sign(&claims_for(
                "alice",
                &json!({"iss": "https://evil.example.com", "aud": "pakaura"}),
            )),
            "another issuer",
            "wrong issuer",
        ),
        (
            rsa.sign(&claims_for("alice", &json!({"aud": "pakaura"}))),
            "missing claim `iss`",
            "no issuer",
        ),
        (
            rsa.sign(&claims_for(
                "alice",
                &json!({"iss": issuer, "aud": ["account", "billing"]}),
            )),
            "another audience",
            "wrong audience",
        ),
        (rsa.sign(&expired), "expired", "expired"),
        (
            unpublished.sign(&claims),
            "signature does not verify",
            "another key, same kid",
        ),
    ];
    for (token, why, case) in &cases {
        refused(&app, token, why, case).await;
    }
    app.stop().await;

    // Without JWT_SECRET, no symmetric token is accepted at all.
    let app = spawn_with(Backend::Sqlite, idp.options().without("JWT_SECRET")).await;
    refused(
        &app,
        &token_for("alice"),
        "no shared secret",
        "HS256 without a secret",
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_id_comes_from_the_configured_claim() {
    let key = SigningKey::generate("k", Algorithm::ES256);
    let idp = JwksServer::start(vec![key.jwk()]).await;
    let app = spawn_with(
        Backend::Sqlite,
        idp.options().set("JWT_USER_CLAIM", "preferred_username"),
    )
    .await;
    let token = key.sign(&claims_for(
        "5f0c-opaque-id",
        &json!({"preferred_username": "alice"}),
    ));
    let created = app
        .client
        .post(app.url("/tasks"))
        .bearer_auth(&token)
        .json(&json!({"title": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(mutations_of(&app.db, &id).await[0].task.user_id, "alice");
    let without = key.sign(&claims_for("5f0c-opaque-id", &no_claims()));
    refused(
        &app,
        &without,
        "claim `preferred_username`",
        "no such claim",
    )
    .await;
    app.stop().await;
}
