//! The provider down: cached keys keep working, unknown ones are refused with 401 and
//! `/readyz` says why; a host that never reached it starts unready and recovers.

use jsonwebtoken::Algorithm;
use reqwest::StatusCode;

use super::{accepted, eventually, no_claims, readiness, refused, rest};
use pakaura_tests::{Backend, JwksServer, SigningKey, claims_for, spawn_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_provider_down_cached_keys_work_and_unknown_ones_are_refused() {
    let cached = SigningKey::generate("cached", Algorithm::RS256);
    let later = SigningKey::generate("later", Algorithm::RS256);
    let idp = JwksServer::start(vec![cached.jwk()]).await;
    let app = spawn_with(
        Backend::Sqlite,
        idp.options().set("JWT_JWKS_COOLDOWN", "1s"),
    )
    .await;
    idp.set_up(false);
    idp.publish(vec![cached.jwk(), later.jwk()]);
    accepted(
        &app,
        &cached.sign(&claims_for("alice", &no_claims())),
        "a cached key",
    )
    .await;
    let token = later.sign(&claims_for("alice", &no_claims()));
    refused(
        &app,
        &token,
        "could not be fetched",
        "an unknown key, provider down",
    )
    .await;
    let (status, ready) = readiness(&app).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "cached keys keep the host ready: {ready}"
    );
    assert_eq!(ready["jwks"]["status"], "stale", "{ready}");
    assert!(ready["jwks"]["failing_since"].is_string(), "{ready}");
    assert!(
        ready["jwks"]["error"].as_str().unwrap().contains("503"),
        "{ready}"
    );

    idp.set_up(true);
    eventually(
        "the new key is accepted once the provider is back",
        || async { rest(&app, &token).await.status() == StatusCode::OK },
    )
    .await;
    let (_, ready) = readiness(&app).await;
    assert_eq!(ready["jwks"]["status"], "ok", "{ready}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_reached_the_provider_is_not_ready_until_it_does() {
    let key = SigningKey::generate("k", Algorithm::EdDSA);
    let idp = JwksServer::start(vec![key.jwk()]).await;
    idp.set_up(false);
    // JWT_JWKS_REFRESH_MIN also caps the retry back-off, so the host notices soon.
    let app = spawn_with(
        Backend::Sqlite,
        idp.options().set("JWT_JWKS_REFRESH_MIN", "1s"),
    )
    .await;
    let (status, ready) = readiness(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["jwks"]["status"], "unavailable", "{ready}");
    assert!(
        ready["jwks"]["detail"]
            .as_str()
            .unwrap()
            .contains("never been fetched"),
        "{ready}"
    );
    let token = key.sign(&claims_for("alice", &no_claims()));
    refused(&app, &token, "could not be fetched", "no keys yet").await;
    let own = app.get_json("alice", "/tasks").await;
    assert!(
        own["items"].is_array(),
        "the shared secret works meanwhile: {own}"
    );

    idp.set_up(true);
    eventually("ready once the provider answers", || async {
        readiness(&app).await.0 == StatusCode::OK
    })
    .await;
    accepted(&app, &token, "the provider's token").await;
    app.stop().await;
}
