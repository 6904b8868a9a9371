//! What the provider signs with: every algorithm, keys with and without `alg`, a
//! rotation, a withdrawal on the provider's schedule, the fetch rate limit, and HTTPS
//! behind a private CA.

use jsonwebtoken::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{accepted, eventually, mcp, no_claims, readiness, refused, rest};
use pakaura_tests::{
    Backend, JwksServer, SigningKey, TlsIdentity, claims_for, mutations_of, on_both_databases,
    spawn_with,
};

async fn tokens_from_the_provider_work_on_rest_and_mcp_beside_the_shared_secret(backend: Backend) {
    let rsa = SigningKey::generate("rsa-1", Algorithm::RS256);
    let ec = SigningKey::generate("ec-1", Algorithm::ES256);
    let idp = JwksServer::start(vec![rsa.jwk(), ec.jwk()]).await;
    let app = spawn_with(backend, idp.options()).await;

    let created = app
        .client
        .post(app.url("/tasks"))
        .bearer_auth(rsa.sign(&claims_for("alice", &no_claims())))
        .json(&json!({"title": "signed by the provider"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = mcp(
        &app,
        &ec.sign(&claims_for("alice", &no_claims())),
        "tools/call",
        json!({"name": "list_tasks", "arguments": {}}),
    )
    .await;
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(
        listed["result"]["structuredContent"]["items"][0]["id"],
        id.as_str()
    );
    // The shared secret's tokens keep working beside the provider's.
    let own = app.get_json("alice", "/tasks").await;
    assert_eq!(own["items"][0]["id"], id.as_str());
    let mutations = mutations_of(&app.db, &id).await;
    assert_eq!(mutations[0].task.user_id, "alice");
    assert_eq!(idp.requests(), 1, "fetched once, at start-up");
    let (status, ready) = readiness(&app).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["jwks"]["status"], "ok", "{ready}");
    assert_eq!(ready["jwks"]["keys"], 2, "{ready}");
    app.stop().await;
}

on_both_databases!(tokens_from_the_provider_work_on_rest_and_mcp_beside_the_shared_secret);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_supported_algorithm_verifies_with_or_without_alg_in_the_jwk() {
    use Algorithm::*;
    let keys: Vec<SigningKey> = [
        RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA,
    ]
    .into_iter()
    .map(|alg| SigningKey::generate(&format!("{alg:?}"), alg))
    .collect();
    // Every other key is published without `alg`: the host goes by its type and curve.
    let published = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            if i % 2 == 0 {
                k.jwk()
            } else {
                k.jwk_without_alg()
            }
        })
        .collect();
    let idp = JwksServer::start(published).await;
    let app = spawn_with(Backend::Sqlite, idp.options().without("JWT_SECRET")).await;
    for key in &keys {
        accepted(
            &app,
            &key.sign(&claims_for("alice", &no_claims())),
            key.kid(),
        )
        .await;
    }
    // An RSA key published without `alg` verifies any RSA algorithm ...
    let rs384 = &keys[1];
    let as_ps256 = rs384.sign_as(PS256, Some(rs384.kid()), &claims_for("alice", &no_claims()));
    accepted(&app, &as_ps256, "PS256 with an RSA key without alg").await;
    // ... one published with `alg` only that one.
    let rs256 = &keys[0];
    let as_ps256 = rs256.sign_as(PS256, Some(rs256.kid()), &claims_for("alice", &no_claims()));
    refused(
        &app,
        &as_ps256,
        "does not fit the key",
        "PS256 with an RS256 key",
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_added_by_a_rotation_is_fetched_when_a_token_names_it() {
    let old = SigningKey::generate("2026-01", Algorithm::RS256);
    let new = SigningKey::generate("2026-02", Algorithm::ES256);
    let idp = JwksServer::start(vec![old.jwk()]).await;
    let app = spawn_with(Backend::Sqlite, idp.options()).await;
    accepted(
        &app,
        &old.sign(&claims_for("alice", &no_claims())),
        "the old key",
    )
    .await;

    idp.publish(vec![old.jwk(), new.jwk()]);
    let token = new.sign(&claims_for("alice", &no_claims()));
    accepted(&app, &token, "the new key, without a restart").await;
    assert_eq!(
        idp.requests(),
        2,
        "start-up, then one fetch for the new kid"
    );
    accepted(
        &app,
        &old.sign(&claims_for("bob", &no_claims())),
        "the old key still",
    )
    .await;
    assert_eq!(idp.requests(), 2, "known keys cost no fetch");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_key_is_refused_after_the_refresh_cache_control_allows() {
    let old = SigningKey::generate("old", Algorithm::EdDSA);
    let new = SigningKey::generate("new", Algorithm::ES384);
    let idp = JwksServer::start(vec![old.jwk(), new.jwk()]).await;
    // The provider asks for a refresh every second; the host allows it (the default
    // floor, JWT_JWKS_REFRESH_MIN, is five minutes).
    idp.set_cache_control("public, max-age=1");
    let app = spawn_with(
        Backend::Sqlite,
        idp.options().set("JWT_JWKS_REFRESH_MIN", "1s"),
    )
    .await;
    let old_token = old.sign(&claims_for("alice", &no_claims()));
    accepted(&app, &old_token, "before the withdrawal").await;

    idp.publish(vec![new.jwk()]);
    eventually("the withdrawn key is refused", || async {
        rest(&app, &old_token).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    refused(&app, &old_token, "unknown `kid`", "the withdrawn key").await;
    accepted(
        &app,
        &new.sign(&claims_for("alice", &no_claims())),
        "the key that stays",
    )
    .await;
    assert!(idp.requests() >= 2, "refreshed on the provider's schedule");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_keys_costs_the_provider_one_fetch() {
    let known = SigningKey::generate("known", Algorithm::ES256);
    let stranger = SigningKey::generate("stranger", Algorithm::ES256);
    let idp = JwksServer::start(vec![known.jwk()]).await;
    let app = spawn_with(
        Backend::Sqlite,
        idp.options().set("JWT_JWKS_COOLDOWN", "1h"),
    )
    .await;
    assert_eq!(idp.requests(), 1);
    let claims = claims_for("mallory", &no_claims());
    let flood = (0..40).map(|i| {
        let token = stranger.sign_as(Algorithm::ES256, Some(&format!("made-up-{i}")), &claims);
        let app = &app;
        async move { rest(app, &token).await.status() }
    });
    for status in futures::future::join_all(flood).await {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    for i in 40..50 {
        let token = stranger.sign_as(Algorithm::ES256, Some(&format!("made-up-{i}")), &claims);
        refused(&app, &token, "unknown `kid`", "an unknown kid").await;
    }
    assert_eq!(idp.requests(), 2, "one fetch for the whole flood");
    accepted(&app, &known.sign(&claims), "the known key meanwhile").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_provider_behind_a_private_ca_is_trusted_through_the_ca_file() {
    let key = SigningKey::generate("k", Algorithm::ES256);
    let identity = TlsIdentity::generate();
    let idp = JwksServer::start_tls(vec![key.jwk()], &identity).await;
    assert!(idp.url().starts_with("https://"));
    let token = key.sign(&claims_for("alice", &no_claims()));

    // Mozilla's roots alone do not vouch for a private CA: the host starts, unready.
    let app = spawn_with(Backend::Sqlite, idp.options()).await;
    let (status, ready) = readiness(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert!(
        ready["jwks"]["error"].as_str().unwrap().contains("TLS"),
        "{ready}"
    );
    refused(
        &app,
        &token,
        "could not be fetched",
        "an untrusted provider",
    )
    .await;
    app.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &identity.ca_pem).unwrap();
    let app = spawn_with(
        Backend::Sqlite,
        idp.options()
            .set("JWT_JWKS_CA_FILE", ca_file.display().to_string()),
    )
    .await;
    accepted(&app, &token, "a provider trusted through JWT_JWKS_CA_FILE").await;
    let (status, ready) = readiness(&app).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    app.stop().await;
}
