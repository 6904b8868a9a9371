use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::*;

/// An RSA public JWK with a modulus of `bytes` bytes (the bits need not be a real key:
/// parsing never multiplies).
fn rsa(kid: &str, bytes: usize) -> Value {
    let mut n = vec![0xc5u8; bytes];
    n[bytes - 1] = 0x01;
    json!({"kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"})
}

fn ec(kid: &str, crv: &str) -> Value {
    let coordinate = URL_SAFE_NO_PAD.encode([0x11u8; 32]);
    json!({"kty": "EC", "kid": kid, "crv": crv, "x": coordinate, "y": coordinate})
}

fn okp(kid: &str) -> Value {
    json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([0x22u8; 32])})
}

fn with(mut jwk: Value, field: &str, value: Value) -> Value {
    jwk[field] = value;
    jwk
}

fn parse(keys: &[Value]) -> Result<(KeySet, Vec<Skipped>), String> {
    KeySet::parse(json!({ "keys": keys }).to_string().as_bytes())
}

fn reason(skipped: &[Skipped], kid: &str) -> String {
    skipped
        .iter()
        .find(|s| s.kid.as_deref() == Some(kid))
        .map_or_else(|| format!("{kid} was not skipped"), |s| s.reason.clone())
}

#[test]
fn each_key_allows_the_algorithms_of_its_kind() {
    let (set, skipped) = parse(&[
        rsa("rsa", 256),
        with(rsa("rs384", 256), "alg", json!("RS384")),
        ec("p256", "P-256"),
        with(ec("p384", "P-384"), "alg", json!("ES384")),
        with(okp("ed"), "use", json!("sig")),
    ])
    .unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(set.len(), 5);
    let algs = |kid: &str| set.find(kid).unwrap().algorithm_names();
    assert_eq!(algs("rsa"), "RS256, RS384, RS512, PS256, PS384, PS512");
    assert_eq!(algs("rs384"), "RS384");
    assert_eq!(algs("p256"), "ES256");
    assert_eq!(algs("p384"), "ES384");
    assert_eq!(algs("ed"), "EdDSA");
    assert_eq!(set.allowing(Algorithm::PS256).count(), 1);
    assert_eq!(set.kids(), ["ed", "p256", "p384", "rs384", "rsa"]);
}

#[test]
fn keys_the_host_must_not_use_are_left_out_with_a_reason() {
    let secret = json!({"kty": "oct", "kid": "oct", "k": URL_SAFE_NO_PAD.encode([1u8; 32])});
    let (set, skipped) = parse(&[
        rsa("good", 256),
        with(rsa("enc", 256), "use", json!("enc")),
        with(rsa("wrap", 256), "key_ops", json!(["wrapKey"])),
        with(rsa("oaep", 256), "alg", json!("RSA-OAEP")),
        with(rsa("hs", 256), "alg", json!("HS256")),
        with(rsa("mismatch", 256), "alg", json!("ES256")),
        with(ec("p256-as-384", "P-256"), "alg", json!("ES384")),
        rsa("short", 128),
        ec("p521", "P-521"),
        secret,
        json!({"kty": "XYZ", "kid": "alien"}),
        rsa("good", 256),
    ])
    .unwrap();
    assert_eq!(set.kids(), ["good"]);
    for (kid, why) in [
        ("enc", "`use`"),
        ("wrap", "`key_ops`"),
        ("oaep", "not a signature algorithm"),
        ("hs", "symmetric"),
        ("mismatch", "does not fit"),
        ("p256-as-384", "does not fit"),
        ("short", "2048 bits"),
        ("p521", "P-256 or P-384"),
        ("oct", "symmetric"),
        ("alien", "`kty`"),
    ] {
        assert!(
            reason(&skipped, kid).contains(why),
            "{kid}: {}",
            reason(&skipped, kid)
        );
    }
    assert!(
        skipped.iter().any(|s| s.reason.contains("same `kid`")),
        "a second key with the same id is left out"
    );
}

#[test]
fn a_document_without_a_usable_key_is_refused() {
    for (body, why) in [
        ("not json".to_owned(), "not a JWK set"),
        (json!({"key": []}).to_string(), "not a JWK set"),
        (json!({"keys": []}).to_string(), "no usable signing key"),
        (
            json!({"keys": [with(rsa("enc", 256), "use", json!("enc"))]}).to_string(),
            "no usable signing key (1 left out)",
        ),
        (
            json!({"keys": vec![rsa("k", 256); MAX_KEYS + 1]}).to_string(),
            "at most",
        ),
    ] {
        let e = KeySet::parse(body.as_bytes()).err().unwrap();
        assert!(e.contains(why), "{e}");
    }
}
