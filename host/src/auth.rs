//! Bearer JWTs (HS256, shared secret; `sub` is the user id) and the admin token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The shortest `JWT_SECRET` accepted: HS256 wants at least 256 bits of key.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a token was refused. The message is safe to return to the client.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the bearer token has expired")]
    Expired,
    #[error("the bearer token is invalid: {0}")]
    Invalid(String),
    #[error("the bearer token has no subject (`sub`)")]
    NoSubject,
    #[error(
        "the bearer token's subject (`sub`) must be at most {MAX_SUBJECT_BYTES} bytes without control characters"
    )]
    BadSubject,
    #[error("the bearer token is not valid yet (`nbf`)")]
    NotYetValid,
    #[error("the bearer token is for another audience (`aud`)")]
    WrongAudience,
}

/// The longest user id (`sub`) accepted, in bytes: it is stored with every task and
/// mutation and shown to mappers.
pub const MAX_SUBJECT_BYTES: usize = 255;

/// The claims the host reads and writes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default)]
    pub iat: u64,
    /// Not before, seconds since the Unix epoch (checked when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The audience (checked against `JWT_AUDIENCE` when that is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Signs and verifies user tokens with the shared secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    audience: Option<String>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys { .. }")
    }
}

impl JwtKeys {
    /// Keys for `secret`; an empty secret is refused. Tokens must carry `exp` and
    /// `sub`; `nbf` is honoured when present; with an `audience`, tokens must carry it
    /// in `aud`, without one `aud` is not checked.
    pub fn new(secret: &[u8], audience: Option<&str>) -> Result<Self, AuthError> {
        let invalid =
            |e: jsonwebtoken::errors::Error| AuthError::Invalid(format!("unusable secret: {e}"));
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.validate_nbf = true;
        match audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.set_required_spec_claims(&["exp", "sub", "aud"]);
            }
            None => {
                validation.validate_aud = false;
                validation.set_required_spec_claims(&["exp", "sub"]);
            }
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(secret).map_err(invalid)?,
            decoding: DecodingKey::from_secret(secret).map_err(invalid)?,
            validation,
            audience: audience.map(str::to_owned),
        })
    }

    /// A token for `user`, valid for `ttl` (for the configured audience, if any).
    pub fn issue(&self, user: &str, ttl: Duration) -> Result<String, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            sub: user.to_owned(),
            exp: now + ttl.as_secs(),
            iat: now,
            nbf: None,
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }

    /// The user id of a valid token.
    pub fn verify(&self, token: &str) -> Result<String, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidAudience => AuthError::WrongAudience,
                ErrorKind::InvalidSignature => {
                    AuthError::Invalid("signature does not verify".into())
                }
                ErrorKind::InvalidAlgorithm => AuthError::Invalid("only HS256 is accepted".into()),
                ErrorKind::MissingRequiredClaim(c) => {
                    AuthError::Invalid(format!("missing claim `{c}`"))
                }
                _ => AuthError::Invalid("malformed token".into()),
            })?;
        // The subject is the user id exactly as signed; a blank one is refused, and so is
        // one a database or a log could not hold safely.
        let sub = data.claims.sub;
        if sub.trim().is_empty() {
            return Err(AuthError::NoSubject);
        }
        if sub.len() > MAX_SUBJECT_BYTES || sub.chars().any(char::is_control) {
            return Err(AuthError::BadSubject);
        }
        Ok(sub)
    }
}

/// The operator's admin token (surrounding whitespace trimmed, as from a secret file
/// with a trailing newline), kept only as a digest and compared in constant time.
pub struct AdminToken([u8; 32]);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    pub fn new(token: &str) -> Self {
        Self(Sha256::digest(token.trim().as_bytes()).into())
    }

    /// Whether `candidate` is the admin token.
    pub fn matches(&self, candidate: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        digest
            .iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_carry_the_user() {
        let keys = JwtKeys::new(&[7u8; 32], None).unwrap();
        let token = keys.issue("alice", Duration::from_secs(60)).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), "alice");
    }

    #[test]
    fn tokens_signed_with_another_secret_are_refused() {
        let token = JwtKeys::new(&[1u8; 32], None)
            .unwrap()
            .issue("alice", Duration::from_secs(60))
            .unwrap();
        assert!(matches!(
            JwtKeys::new(&[2u8; 32], None).unwrap().verify(&token),
            Err(AuthError::Invalid(_))
        ));
    }

    /// A token with `claims`, signed with the tests' secret.
    fn token_with(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(&[7u8; 32]).unwrap(),
        )
        .unwrap()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn not_before_is_honoured() {
        let keys = JwtKeys::new(&[7u8; 32], None).unwrap();
        let later = token_with(
            &serde_json::json!({"sub": "alice", "exp": now() + 600, "nbf": now() + 300}),
        );
        assert!(matches!(keys.verify(&later), Err(AuthError::NotYetValid)));
        let now_valid =
            token_with(&serde_json::json!({"sub": "alice", "exp": now() + 600, "nbf": now() - 1}));
        assert_eq!(keys.verify(&now_valid).unwrap(), "alice");
    }

    #[test]
    fn the_audience_is_checked_only_when_configured() {
        let claims =
            |aud: &str| serde_json::json!({"sub": "alice", "exp": now() + 600, "aud": aud});
        let open = JwtKeys::new(&[7u8; 32], None).unwrap();
        assert!(open.verify(&token_with(&claims("anything"))).is_ok());
        let strict = JwtKeys::new(&[7u8; 32], Some("pakaura")).unwrap();
        assert!(strict.verify(&token_with(&claims("pakaura"))).is_ok());
        assert!(matches!(
            strict.verify(&token_with(&claims("other"))),
            Err(AuthError::WrongAudience)
        ));
        let none = token_with(&serde_json::json!({"sub": "alice", "exp": now() + 600}));
        assert!(
            strict.verify(&none).is_err(),
            "a token without aud is refused"
        );
        let issued = strict.issue("bob", Duration::from_secs(60)).unwrap();
        assert_eq!(
            strict.verify(&issued).unwrap(),
            "bob",
            "issued tokens carry the audience"
        );
    }

    #[test]
    fn subjects_a_database_cannot_hold_safely_are_refused() {
        let keys = JwtKeys::new(&[7u8; 32], None).unwrap();
        for sub in ["nul\0", "line\nbreak", &"x".repeat(MAX_SUBJECT_BYTES + 1)] {
            let t = token_with(&serde_json::json!({"sub": sub, "exp": now() + 600}));
            assert!(
                matches!(keys.verify(&t), Err(AuthError::BadSubject)),
                "{sub:?}"
            );
        }
    }

    #[test]
    fn admin_token_matches_only_itself() {
        let t = AdminToken::new("s3cret-admin-token");
        assert!(t.matches("s3cret-admin-token"));
        assert!(!t.matches("s3cret-admin-tokeN"));
        let from_file = AdminToken::new("s3cret-admin-token\n");
        assert!(
            from_file.matches("s3cret-admin-token"),
            "surrounding whitespace is trimmed"
        );
    }
}
