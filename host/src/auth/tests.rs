//! The verifier against tokens made here: HS256 with the shared secret, and EdDSA with a
//! key set the provider would publish (the algorithm-specific cases run end to end in
//! `tests/tests/e2e/idp.rs`, against a JWKS server).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::policy::DEFAULT_LEEWAY;
use super::*;

const SECRET: &[u8] = &[7u8; 32];

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn with_secret(policy: ClaimPolicy) -> Authenticator {
    Authenticator::new(Some(JwtKeys::new(SECRET, None).unwrap()), None, policy)
}

/// A token with `claims`, signed with the tests' secret.
fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap()
}

/// An Ed25519 key from a fixed seed, as a PKCS#8 document (RFC 8410).
fn ed25519(seed: u8) -> EncodingKey {
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend([seed; 32]);
    EncodingKey::from_ed_der(&der)
}

/// The public JWK of `key` with id `kid`.
fn public_jwk(key: &EncodingKey, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(key, Algorithm::EdDSA).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).unwrap()
}

fn signed(key: &EncodingKey, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// `token` with its header replaced by `header` (JSON).
fn with_header(token: &str, header: &str) -> String {
    use base64::Engine;
    let (_, rest) = token.split_once('.').unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header);
    format!("{header}.{rest}")
}

fn alice() -> Value {
    json!({"sub": "alice", "exp": now() + 600})
}

#[test]
fn issued_tokens_verify_and_carry_the_user() {
    let keys = JwtKeys::new(SECRET, Some("pakaura"))
        .unwrap()
        .with_issuer(Some("https://idp.example.com"))
        .with_user_claim("email");
    let token = keys.issue("alice", Duration::from_secs(60)).unwrap();
    let policy = ClaimPolicy::new(
        Some("https://idp.example.com"),
        Some("pakaura"),
        Duration::from_secs(5),
        "email",
    );
    assert_eq!(with_secret(policy).verify(&token).unwrap(), "alice");
}

#[test]
fn tokens_signed_with_another_secret_are_refused() {
    let token = JwtKeys::new(&[1u8; 32], None)
        .unwrap()
        .issue("alice", Duration::from_secs(60))
        .unwrap();
    let e = with_secret(ClaimPolicy::default())
        .verify(&token)
        .unwrap_err();
    assert!(e.to_string().contains("signature does not verify"), "{e}");
}

#[test]
fn time_claims_are_checked_with_the_leeway() {
    let auth = with_secret(ClaimPolicy::default());
    let later = hs256(&json!({"sub": "alice", "exp": now() + 600, "nbf": now() + 300}));
    assert!(matches!(auth.verify(&later), Err(AuthError::NotYetValid)));
    let now_valid = hs256(&json!({"sub": "alice", "exp": now() + 600, "nbf": now() - 1}));
    assert_eq!(auth.verify(&now_valid).unwrap(), "alice");
    let just_expired = hs256(&json!({"sub": "alice", "exp": now() - 10}));
    assert_eq!(auth.verify(&just_expired).unwrap(), "alice", "within 30s");
    let strict = with_secret(ClaimPolicy::new(None, None, Duration::ZERO, "sub"));
    assert!(matches!(
        strict.verify(&just_expired),
        Err(AuthError::Expired)
    ));
    let no_exp = hs256(&json!({"sub": "alice"}));
    assert!(
        auth.verify(&no_exp)
            .unwrap_err()
            .to_string()
            .contains("`exp`")
    );
    let bad_iat = hs256(&json!({"sub": "alice", "exp": now() + 600, "iat": "yesterday"}));
    assert!(
        auth.verify(&bad_iat)
            .unwrap_err()
            .to_string()
            .contains("`iat`")
    );
}

#[test]
fn the_audience_may_be_a_string_or_an_array() {
    let claims = |aud: Value| json!({"sub": "alice", "exp": now() + 600, "aud": aud});
    let open = with_secret(ClaimPolicy::default());
    assert!(open.verify(&hs256(&claims(json!("anything")))).is_ok());
    assert!(open.verify(&hs256(&claims(json!(["a", "b"])))).is_ok());
    let strict = with_secret(ClaimPolicy::new(
        None,
        Some("pakaura"),
        DEFAULT_LEEWAY,
        "sub",
    ));
    for aud in [json!("pakaura"), json!(["account", "pakaura"])] {
        assert_eq!(strict.verify(&hs256(&claims(aud))).unwrap(), "alice");
    }
    for aud in [json!("other"), json!(["account", "other"]), json!([])] {
        let e = strict.verify(&hs256(&claims(aud.clone()))).unwrap_err();
        assert!(matches!(e, AuthError::WrongAudience), "{aud}: {e}");
    }
    let e = strict.verify(&hs256(&alice())).unwrap_err();
    assert!(e.to_string().contains("`aud`"), "a token without aud: {e}");
}

#[test]
fn the_issuer_is_checked_when_configured() {
    let policy = ClaimPolicy::new(Some("https://idp.example.com"), None, DEFAULT_LEEWAY, "sub");
    let auth = with_secret(policy);
    let from = |iss: &str| hs256(&json!({"sub": "alice", "exp": now() + 600, "iss": iss}));
    assert!(auth.verify(&from("https://idp.example.com")).is_ok());
    assert!(matches!(
        auth.verify(&from("https://evil.example.com")),
        Err(AuthError::WrongIssuer)
    ));
    assert!(
        auth.verify(&hs256(&alice()))
            .unwrap_err()
            .to_string()
            .contains("`iss`")
    );
}

#[test]
fn the_user_comes_from_the_configured_claim() {
    let auth = with_secret(ClaimPolicy::new(None, None, DEFAULT_LEEWAY, "email"));
    let token = hs256(&json!({"sub": "f3a1", "email": "alice@example.com", "exp": now() + 600}));
    assert_eq!(auth.verify(&token).unwrap(), "alice@example.com");
    let e = auth.verify(&hs256(&alice())).unwrap_err();
    assert!(matches!(&e, AuthError::NoSubject(c) if c == "email"), "{e}");
    let number = hs256(&json!({"email": 7, "exp": now() + 600}));
    assert!(matches!(
        auth.verify(&number),
        Err(AuthError::BadSubject(_))
    ));
}

#[test]
fn subjects_a_database_cannot_hold_safely_are_refused() {
    let auth = with_secret(ClaimPolicy::default());
    let blank = hs256(&json!({"sub": " ", "exp": now() + 600}));
    assert!(matches!(auth.verify(&blank), Err(AuthError::NoSubject(_))));
    for sub in ["nul\0", "line\nbreak", &"x".repeat(MAX_SUBJECT_BYTES + 1)] {
        let t = hs256(&json!({"sub": sub, "exp": now() + 600}));
        assert!(
            matches!(auth.verify(&t), Err(AuthError::BadSubject(_))),
            "{sub:?}"
        );
    }
}

#[test]
fn provider_keys_verify_their_tokens_by_kid_or_by_trying() {
    let (k1, k2) = (ed25519(1), ed25519(2));
    let jwks = Jwks::holding(&json!({"keys": [public_jwk(&k1, "k1"), public_jwk(&k2, "k2")]}));
    let auth = Authenticator::new(None, Some(jwks), ClaimPolicy::default());
    let claims = alice();
    assert_eq!(
        auth.verify(&signed(&k2, Algorithm::EdDSA, Some("k2"), &claims))
            .unwrap(),
        "alice"
    );
    assert_eq!(
        auth.verify(&signed(&k2, Algorithm::EdDSA, None, &claims))
            .unwrap(),
        "alice"
    );
    let e = auth
        .verify(&signed(&k2, Algorithm::EdDSA, Some("k1"), &claims))
        .unwrap_err();
    assert!(e.to_string().contains("signature does not verify"), "{e}");
    let e = auth
        .verify(&signed(&ed25519(3), Algorithm::EdDSA, Some("k3"), &claims))
        .unwrap_err();
    assert!(matches!(e, AuthError::UnknownKey), "{e}");
    let e = auth
        .verify(&signed(&ed25519(3), Algorithm::EdDSA, None, &claims))
        .unwrap_err();
    assert!(e.to_string().contains("signature does not verify"), "{e}");
    let expired = json!({"sub": "alice", "exp": now() - 600});
    let e = auth
        .verify(&signed(&k1, Algorithm::EdDSA, None, &expired))
        .unwrap_err();
    assert!(
        matches!(e, AuthError::Expired),
        "the key that verifies decides: {e}"
    );
}

#[test]
fn the_algorithm_comes_from_the_key_not_the_token() {
    let k1 = ed25519(1);
    let jwk = public_jwk(&k1, "k1");
    let public =
        jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap()).unwrap();
    let public_bytes = public.try_get_as_bytes().unwrap().to_vec();
    let jwks = Jwks::holding(&json!({"keys": [jwk]}));
    let both = Authenticator::new(
        Some(JwtKeys::new(SECRET, None).unwrap()),
        Some(jwks.clone()),
        ClaimPolicy::default(),
    );
    // HS256 with the published key as the secret, naming that key.
    let confused = signed(
        &EncodingKey::from_secret(&public_bytes).unwrap(),
        Algorithm::HS256,
        Some("k1"),
        &alice(),
    );
    let e = both.verify(&confused).unwrap_err();
    assert!(matches!(e, AuthError::AlgorithmNotAllowed(_)), "{e}");
    // ES256 claimed for an Ed25519 key (the signature is never reached).
    let forged = with_header(
        &signed(&k1, Algorithm::EdDSA, Some("k1"), &alice()),
        r#"{"alg":"ES256","kid":"k1"}"#,
    );
    let e = both.verify(&forged).unwrap_err();
    assert!(e.to_string().contains("does not fit the key"), "{e}");
    // Without a shared secret, HS256 is not accepted at all.
    let provider_only = Authenticator::new(None, Some(jwks), ClaimPolicy::default());
    let e = provider_only.verify(&hs256(&alice())).unwrap_err();
    assert!(matches!(e, AuthError::AlgorithmNotAllowed(_)), "{e}");
    // And without a provider, asymmetric tokens are not.
    let secret_only = with_secret(ClaimPolicy::default());
    let e = secret_only
        .verify(&signed(&k1, Algorithm::EdDSA, Some("k1"), &alice()))
        .unwrap_err();
    assert!(matches!(e, AuthError::AlgorithmNotAllowed(_)), "{e}");
}
