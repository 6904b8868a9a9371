//! Bearer authentication of users, which REST and MCP share ([`Authenticator`]), and the
//! operator's admin token.
//!
//! A user token is a JWT verified with one of two key sources; both may be configured at
//! once:
//!
//! - `JWT_SECRET`: HS256 with a shared secret, for local runs and tests ([`JwtKeys`] also
//!   issues such tokens);
//! - `JWT_JWKS_URL`: an identity provider's public keys (RS256/384/512, PS256/384/512,
//!   ES256, ES384, EdDSA), fetched, cached and refreshed by [`Jwks`].
//!
//! The token's header only picks a key. The algorithms a key accepts come from the key
//! itself (the JWK's `alg`, else its type and curve), never from the token alone: an HS256
//! token is checked against `JWT_SECRET` only, and a JWKS key never verifies a symmetric
//! signature. The claims are then judged by one [`ClaimPolicy`] (issuer, audience, clock
//! leeway, the user claim) whichever key signed them.
//!
//! Layout: `header` (reading a header before trusting it), `policy` (the claim checks),
//! `secret` (HS256), `jwks/` (the provider's keys), `config` (the `JWT_*` settings),
//! `admin` (the admin token).

mod admin;
pub mod config;
mod header;
pub mod jwks;
mod policy;
mod secret;

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde_json::{Map, Value};

pub use admin::{AdminToken, AdminTokens, AdminTokensError};
pub use config::JwtConfig;
use header::TokenHeader;
pub use jwks::{Jwks, JwksStatus};
pub use policy::{ClaimPolicy, MAX_SUBJECT_BYTES};
pub use secret::{JwtKeys, MIN_SECRET_BYTES};

/// Why a token was refused. The message is safe to return to the client: it names what
/// was wrong and never echoes the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the bearer token has expired (`exp`)")]
    Expired,
    #[error("the bearer token is not valid yet (`nbf`)")]
    NotYetValid,
    #[error("the bearer token is for another audience (`aud`)")]
    WrongAudience,
    #[error("the bearer token is from another issuer (`iss`)")]
    WrongIssuer,
    #[error("the bearer token's algorithm is not allowed: {0}")]
    AlgorithmNotAllowed(String),
    #[error(
        "the bearer token is signed with a key the identity provider does not publish (unknown `kid`)"
    )]
    UnknownKey,
    #[error(
        "the bearer token cannot be verified: the identity provider's keys could not be fetched"
    )]
    KeysUnavailable,
    #[error("the bearer token has no user id (claim `{0}`)")]
    NoSubject(String),
    #[error(
        "the bearer token's user id (claim `{0}`) must be a string of at most {MAX_SUBJECT_BYTES} bytes without control characters"
    )]
    BadSubject(String),
    #[error("the bearer token is invalid: {0}")]
    Invalid(String),
}

/// Verifies user tokens for REST and MCP alike; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    secret: Option<JwtKeys>,
    jwks: Option<Jwks>,
    policy: ClaimPolicy,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("secret", &self.inner.secret.is_some())
            .field("jwks", &self.inner.jwks.is_some())
            .field("policy", &self.inner.policy)
            .finish()
    }
}

impl Authenticator {
    /// An authenticator with the shared secret, the provider's keys, or both.
    pub fn new(secret: Option<JwtKeys>, jwks: Option<Jwks>, policy: ClaimPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                secret,
                jwks,
                policy,
            }),
        }
    }

    /// The provider's key set, when `JWT_JWKS_URL` is configured.
    pub fn jwks(&self) -> Option<&Jwks> {
        self.inner.jwks.as_ref()
    }

    /// The user id of a valid token, checked against the keys held now (never waits).
    pub fn verify(&self, token: &str) -> Result<String, AuthError> {
        let header = header::peek(token)?;
        let claims = if header.alg.family() == AlgorithmFamily::Hmac {
            self.verify_with_secret(token, &header)?
        } else {
            self.verify_with_jwks(token, &header)?
        };
        self.inner.policy.user(&claims)
    }

    /// [`Self::verify`], except that a token naming a key the cached set lacks makes the
    /// key set refresh once (rate-limited, shared by concurrent requests; see
    /// [`Jwks::refresh_for_unknown_key`]) before it is judged again.
    pub async fn authenticate(&self, token: &str) -> Result<String, AuthError> {
        match (self.verify(token), &self.inner.jwks) {
            (Err(AuthError::UnknownKey), Some(jwks)) => {
                jwks.refresh_for_unknown_key().await;
                match self.verify(token) {
                    Err(AuthError::UnknownKey) if jwks.is_failing() => {
                        Err(AuthError::KeysUnavailable)
                    }
                    other => other,
                }
            }
            (outcome, _) => outcome,
        }
    }

    fn verify_with_secret(
        &self,
        token: &str,
        header: &TokenHeader,
    ) -> Result<Map<String, Value>, AuthError> {
        // A symmetric token naming one of the provider's keys is the classic confusion
        // attack (the public key used as an HMAC secret): say so rather than "bad signature".
        if let (Some(kid), Some(jwks)) = (&header.kid, &self.inner.jwks)
            && jwks.keys().find(kid).is_some()
        {
            return Err(AuthError::AlgorithmNotAllowed(format!(
                "{:?} is not allowed for the identity provider's keys",
                header.alg
            )));
        }
        let Some(secret) = &self.inner.secret else {
            return Err(AuthError::AlgorithmNotAllowed(format!(
                "{:?} is not accepted: no shared secret is configured",
                header.alg
            )));
        };
        if header.alg != Algorithm::HS256 {
            return Err(AuthError::AlgorithmNotAllowed(format!(
                "{:?} is not accepted: the shared secret signs HS256 only",
                header.alg
            )));
        }
        decode(token, secret.decoding(), &self.inner.policy, header.alg)
    }

    fn verify_with_jwks(
        &self,
        token: &str,
        header: &TokenHeader,
    ) -> Result<Map<String, Value>, AuthError> {
        let Some(jwks) = &self.inner.jwks else {
            return Err(AuthError::AlgorithmNotAllowed(format!(
                "{:?} is not accepted: no identity provider (JWT_JWKS_URL) is configured",
                header.alg
            )));
        };
        let keys = jwks.keys();
        if let Some(kid) = &header.kid {
            let key = keys.find(kid).ok_or(AuthError::UnknownKey)?;
            if !key.allows(header.alg) {
                return Err(AuthError::AlgorithmNotAllowed(format!(
                    "{:?} does not fit the key the token names (it allows {})",
                    header.alg,
                    key.algorithm_names()
                )));
            }
            return decode(token, key.decoding(), &self.inner.policy, header.alg);
        }
        // No `kid`: every key that allows the algorithm may have signed it. The first whose
        // signature verifies decides (its claims may still be refused).
        let mut outcome = Err(AuthError::UnknownKey);
        for key in keys.allowing(header.alg) {
            outcome = decode(token, key.decoding(), &self.inner.policy, header.alg);
            if !matches!(&outcome, Err(AuthError::Invalid(m)) if m == BAD_SIGNATURE) {
                break;
            }
        }
        outcome
    }
}

const BAD_SIGNATURE: &str = "the signature does not verify";

/// Checks the signature with `key` and the claims with `policy`.
fn decode(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    policy: &ClaimPolicy,
    alg: Algorithm,
) -> Result<Map<String, Value>, AuthError> {
    jsonwebtoken::decode::<Map<String, Value>>(token, key, &policy.validation(alg))
        .map(|data| data.claims)
        .map_err(|e| refused(&e))
}

/// The client-facing reason for a `jsonwebtoken` refusal.
fn refused(e: &jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidSignature => AuthError::Invalid(BAD_SIGNATURE.into()),
        ErrorKind::InvalidAlgorithm => {
            AuthError::AlgorithmNotAllowed("it does not fit the key".into())
        }
        ErrorKind::MissingRequiredClaim(c) => AuthError::Invalid(format!("missing claim `{c}`")),
        ErrorKind::InvalidClaimFormat(c) => AuthError::Invalid(format!("claim `{c}` is malformed")),
        ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidKeyFormat => {
            AuthError::Invalid("the key the token names cannot verify it".into())
        }
        _ => AuthError::Invalid("malformed token".into()),
    }
}

#[cfg(test)]
mod tests;
