//! The claims every user token must satisfy, whichever key signed it: `exp` (required),
//! `nbf` (when present), `iss` (`JWT_ISSUER`, when set), `aud` (`JWT_AUDIENCE`, when set;
//! a string or an array), all with a clock leeway (`JWT_LEEWAY`), and the user id, read
//! from `sub` or the claim `JWT_USER_CLAIM` names.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::AuthError;

/// The longest user id accepted, in bytes: it is stored with every task and mutation and
/// shown to mappers.
pub const MAX_SUBJECT_BYTES: usize = 255;

/// The default clock leeway: enough for ordinary skew between the provider's clock and
/// ours, small enough that an expired token is not honoured for long.
pub(super) const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// What the claims of a user token must say.
#[derive(Debug, Clone)]
pub struct ClaimPolicy {
    issuer: Option<String>,
    audience: Option<String>,
    leeway: Duration,
    user_claim: String,
}

impl Default for ClaimPolicy {
    /// No issuer or audience check, the default leeway, the user id in `sub`.
    fn default() -> Self {
        Self::new(None, None, DEFAULT_LEEWAY, "sub")
    }
}

impl ClaimPolicy {
    pub fn new(
        issuer: Option<&str>,
        audience: Option<&str>,
        leeway: Duration,
        user_claim: &str,
    ) -> Self {
        Self {
            issuer: issuer.map(str::to_owned),
            audience: audience.map(str::to_owned),
            leeway,
            user_claim: user_claim.to_owned(),
        }
    }

    /// The issuer tokens must carry, if any.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The audience tokens must carry, if any.
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The claim holding the user id.
    pub fn user_claim(&self) -> &str {
        &self.user_claim
    }

    /// The library's checks for a token signed with `alg` (the signature, `exp`, `nbf`,
    /// `iss`, `aud`).
    pub(super) fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Without JWT_AUDIENCE any `aud` (or none) is accepted.
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// The user id of verified `claims`: the user claim exactly as signed. A blank one is
    /// refused, and so is one a database or a log could not hold safely.
    pub(super) fn user(&self, claims: &Map<String, Value>) -> Result<String, AuthError> {
        if claims.get("iat").is_some_and(|iat| !iat.is_number()) {
            return Err(AuthError::Invalid("claim `iat` is malformed".into()));
        }
        let claim = &self.user_claim;
        let user = match claims.get(claim) {
            None | Some(Value::Null) => return Err(AuthError::NoSubject(claim.clone())),
            Some(Value::String(user)) => user,
            Some(_) => return Err(AuthError::BadSubject(claim.clone())),
        };
        if user.trim().is_empty() {
            return Err(AuthError::NoSubject(claim.clone()));
        }
        if user.len() > MAX_SUBJECT_BYTES || user.chars().any(char::is_control) {
            return Err(AuthError::BadSubject(claim.clone()));
        }
        Ok(user.clone())
    }
}
