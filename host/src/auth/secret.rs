//! The shared secret (`JWT_SECRET`, HS256): it verifies local tokens and issues them (the
//! demo token, `pakaura token`, the tests).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Map, Value};

use super::AuthError;

/// The shortest `JWT_SECRET` accepted: HS256 wants at least 256 bits of key.
pub const MIN_SECRET_BYTES: usize = 32;

/// Signs and verifies user tokens with the shared secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    audience: Option<String>,
    issuer: Option<String>,
    user_claim: Option<String>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys { .. }")
    }
}

impl JwtKeys {
    /// Keys for `secret` (an empty one is refused); issued tokens carry `audience` in
    /// `aud` when given.
    pub fn new(secret: &[u8], audience: Option<&str>) -> Result<Self, AuthError> {
        let invalid =
            |e: jsonwebtoken::errors::Error| AuthError::Invalid(format!("unusable secret: {e}"));
        Ok(Self {
            encoding: EncodingKey::from_secret(secret).map_err(invalid)?,
            decoding: DecodingKey::from_secret(secret).map_err(invalid)?,
            audience: audience.map(str::to_owned),
            issuer: None,
            user_claim: None,
        })
    }

    /// Issued tokens also carry `issuer` in `iss` (the server's `JWT_ISSUER`).
    #[must_use]
    pub fn with_issuer(mut self, issuer: Option<&str>) -> Self {
        self.issuer = issuer.map(str::to_owned);
        self
    }

    /// Issued tokens also carry the user id in `claim` (the server's `JWT_USER_CLAIM`),
    /// besides `sub`.
    #[must_use]
    pub fn with_user_claim(mut self, claim: &str) -> Self {
        self.user_claim = (claim != "sub").then(|| claim.to_owned());
        self
    }

    pub(super) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    /// A token for `user`, valid for `ttl`.
    pub fn issue(&self, user: &str, ttl: Duration) -> Result<String, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut claims = Map::new();
        claims.insert("sub".into(), user.into());
        claims.insert("exp".into(), (now + ttl.as_secs()).into());
        claims.insert("iat".into(), now.into());
        for (name, value) in [
            ("aud", &self.audience),
            ("iss", &self.issuer),
            (
                self.user_claim.as_deref().unwrap_or("sub"),
                &Some(user.to_owned()),
            ),
        ] {
            if let Some(value) = value {
                claims.insert(name.to_owned(), Value::String(value.clone()));
            }
        }
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }
}
