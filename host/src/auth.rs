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
}

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
}

/// Signs and verifies user tokens with the shared secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys { .. }")
    }
}

impl JwtKeys {
    /// Keys for `secret`; an empty secret is refused.
    pub fn new(secret: &[u8]) -> Result<Self, AuthError> {
        let invalid =
            |e: jsonwebtoken::errors::Error| AuthError::Invalid(format!("unusable secret: {e}"));
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret).map_err(invalid)?,
            decoding: DecodingKey::from_secret(secret).map_err(invalid)?,
            validation,
        })
    }

    /// A token for `user`, valid for `ttl`.
    pub fn issue(&self, user: &str, ttl: Duration) -> Result<String, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            sub: user.to_owned(),
            exp: now + ttl.as_secs(),
            iat: now,
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
                ErrorKind::InvalidSignature => {
                    AuthError::Invalid("signature does not verify".into())
                }
                ErrorKind::InvalidAlgorithm => AuthError::Invalid("only HS256 is accepted".into()),
                ErrorKind::MissingRequiredClaim(c) => {
                    AuthError::Invalid(format!("missing claim `{c}`"))
                }
                _ => AuthError::Invalid("malformed token".into()),
            })?;
        // The subject is the user id exactly as signed; a blank one is refused.
        if data.claims.sub.trim().is_empty() {
            return Err(AuthError::NoSubject);
        }
        Ok(data.claims.sub)
    }
}

/// The operator's admin token, kept only as a digest and compared in constant time.
pub struct AdminToken([u8; 32]);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    pub fn new(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
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
        let keys = JwtKeys::new(&[7u8; 32]).unwrap();
        let token = keys.issue("alice", Duration::from_secs(60)).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), "alice");
    }

    #[test]
    fn tokens_signed_with_another_secret_are_refused() {
        let token = JwtKeys::new(&[1u8; 32])
            .unwrap()
            .issue("alice", Duration::from_secs(60))
            .unwrap();
        assert!(matches!(
            JwtKeys::new(&[2u8; 32]).unwrap().verify(&token),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn admin_token_matches_only_itself() {
        let t = AdminToken::new("s3cret-admin-token");
        assert!(t.matches("s3cret-admin-token"));
        assert!(!t.matches("s3cret-admin-tokeN"));
    }
}
