//! The `JWT_*` settings beyond the shared secret and the audience (which `ServeConfig`
//! holds): the identity provider's JWKS, the issuer, the clock leeway and the user claim.

use std::path::PathBuf;
use std::time::Duration;

use super::jwks::{JwksSettings, JwksUrl};

fn jwks_url(raw: &str) -> Result<JwksUrl, String> {
    JwksUrl::parse(raw)
}

fn between(raw: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(raw.trim())
        .map_err(|e| format!("{e} (use e.g. 500ms, 30s, 5m)"))?;
    if d < min || d > max {
        return Err(format!(
            "must be between {} and {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

fn leeway(raw: &str) -> Result<Duration, String> {
    between(raw, Duration::ZERO, Duration::from_secs(300))
}

fn fetch_timeout(raw: &str) -> Result<Duration, String> {
    between(raw, Duration::from_millis(100), Duration::from_secs(60))
}

fn refresh_period(raw: &str) -> Result<Duration, String> {
    between(raw, Duration::from_secs(1), Duration::from_secs(7 * 86_400))
}

fn cooldown(raw: &str) -> Result<Duration, String> {
    between(raw, Duration::from_secs(1), Duration::from_secs(3600))
}

/// How user tokens from an identity provider are checked.
#[derive(Debug, Clone, clap::Args)]
pub struct JwtConfig {
    /// The identity provider's JWK set URL (https://; http:// only for a loopback host).
    /// Tokens signed with its keys (RS*, PS*, ES256, ES384, EdDSA) are accepted.
    #[arg(long, env = "JWT_JWKS_URL", value_parser = jwks_url)]
    pub jwt_jwks_url: Option<JwksUrl>,

    /// PEM file of CA certificates to trust for JWT_JWKS_URL besides the built-in
    /// Mozilla roots (a provider behind a private CA).
    #[arg(long, env = "JWT_JWKS_CA_FILE")]
    pub jwt_jwks_ca_file: Option<PathBuf>,

    /// Longest one fetch of the JWK set may take (100ms to 1m); a request waiting for
    /// an unknown key's refresh waits at most this long.
    #[arg(long, env = "JWT_JWKS_TIMEOUT", default_value = "5s", value_parser = fetch_timeout)]
    pub jwt_jwks_timeout: Duration,

    /// Shortest wait between periodic refreshes: a provider's shorter Cache-Control
    /// max-age (or no-cache) is raised to it (1s to 7d).
    #[arg(long, env = "JWT_JWKS_REFRESH_MIN", default_value = "5m", value_parser = refresh_period)]
    pub jwt_jwks_refresh_min: Duration,

    /// Longest wait between periodic refreshes, and the wait when the provider sends no
    /// max-age: a key the provider withdraws is trusted at most this long (1s to 7d).
    #[arg(long, env = "JWT_JWKS_REFRESH_MAX", default_value = "1h", value_parser = refresh_period)]
    pub jwt_jwks_refresh_max: Duration,

    /// Least time between two refreshes caused by tokens naming an unknown key (1s to 1h).
    #[arg(long, env = "JWT_JWKS_COOLDOWN", default_value = "30s", value_parser = cooldown)]
    pub jwt_jwks_cooldown: Duration,

    /// The issuer (`iss`) every user token must carry. Unset: `iss` is not checked.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Clock skew allowed when checking `exp` and `nbf` (0s to 5m).
    #[arg(long, env = "JWT_LEEWAY", default_value = "30s", value_parser = leeway)]
    pub jwt_leeway: Duration,

    /// The claim holding the user id (a string).
    #[arg(long, env = "JWT_USER_CLAIM", default_value = "sub")]
    pub jwt_user_claim: String,
}

impl Default for JwtConfig {
    /// The documented defaults, as if no flag or variable were set.
    fn default() -> Self {
        Self {
            jwt_jwks_url: None,
            jwt_jwks_ca_file: None,
            jwt_jwks_timeout: Duration::from_secs(5),
            jwt_jwks_refresh_min: Duration::from_secs(300),
            jwt_jwks_refresh_max: Duration::from_secs(3600),
            jwt_jwks_cooldown: Duration::from_secs(30),
            jwt_issuer: None,
            jwt_leeway: super::policy::DEFAULT_LEEWAY,
            jwt_user_claim: "sub".into(),
        }
    }
}

impl JwtConfig {
    /// The JWKS settings, when `JWT_JWKS_URL` is set.
    pub fn jwks(&self) -> Option<JwksSettings> {
        self.jwt_jwks_url.clone().map(|url| JwksSettings {
            url,
            ca_file: self.jwt_jwks_ca_file.clone(),
            timeout: self.jwt_jwks_timeout,
            refresh_min: self.jwt_jwks_refresh_min,
            refresh_max: self.jwt_jwks_refresh_max,
            cooldown: self.jwt_jwks_cooldown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_bounded() {
        assert!(leeway("0s").is_ok());
        assert!(leeway("10m").is_err());
        assert!(cooldown("0s").is_err());
        assert!(jwks_url("http://idp.example.com/certs").is_err());
    }
}
