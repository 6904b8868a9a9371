//! Console sessions: a stateless cookie derived from the admin token, and the CSRF
//! token that goes with it.
//!
//! The cookie value is `v1.<expiry>.<nonce>.<mac>`: the expiry in seconds since the
//! Unix epoch, 64 random bits in hex (so every login is its own session, with its own
//! CSRF token) and `HMAC-SHA256(key, "v1.<expiry>.<nonce>")` in hex, where the key is
//! `HMAC-SHA256(SHA-256(ADMIN_TOKEN), "pakaura console session v1")`. Nothing is stored:
//! every replica sharing the admin token accepts the cookie, and changing the token
//! ends every session. The token itself never leaves the login request.
//!
//! State-changing requests made with the cookie must also carry `X-CSRF-Token`, a
//! second MAC of the cookie value that the console page receives in its HTML; a page
//! of another origin can neither read it nor set the header without a CORS grant,
//! which the host never gives. `SameSite=Strict` keeps the cookie off cross-site
//! requests in the first place.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::header::{COOKIE, HOST};
use axum::http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "pakaura_console";
/// The request header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The key sessions are signed with, derived from the admin token.
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// Why a session cookie was refused; the message is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the console session cookie is malformed")]
    Malformed,
    #[error("the console session cookie does not verify (was ADMIN_TOKEN changed?)")]
    BadSignature,
    #[error("the console session has expired; log in again")]
    Expired,
}

impl SessionKey {
    /// The key of sessions opened with any of the operators' tokens (see
    /// [`crate::auth::AdminTokens::session_secret`]).
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Self(hmac_sha256(secret, b"pakaura console session v2"))
    }

    /// A new session's cookie value for operator `name` (a-z, 0-9, - and _), valid
    /// until `expires_at` (seconds since the Unix epoch).
    pub fn mint(&self, name: &str, expires_at: u64) -> String {
        let nonce: u64 = rand::random();
        let payload = format!("v2.{name}.{expires_at}.{nonce:016x}");
        let mac = hex::encode(hmac_sha256(&self.0, payload.as_bytes()));
        format!("{payload}.{mac}")
    }

    /// Checks a cookie value at `now`; returns the operator's name and the expiry.
    pub fn verify(&self, value: &str, now: u64) -> Result<(String, u64), SessionError> {
        let (payload, mac) = value.rsplit_once('.').ok_or(SessionError::Malformed)?;
        let mut parts = payload
            .strip_prefix("v2.")
            .ok_or(SessionError::Malformed)?
            .split('.');
        let (Some(name), Some(expiry), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SessionError::Malformed);
        };
        let name_ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        let nonce_ok = nonce.len() == 16 && nonce.bytes().all(|b| b.is_ascii_hexdigit());
        let expires_at: u64 = expiry.parse().map_err(|_| SessionError::Malformed)?;
        if !name_ok || !nonce_ok {
            return Err(SessionError::Malformed);
        }
        let mac = hex::decode(mac).map_err(|_| SessionError::Malformed)?;
        if !constant_time_eq(&mac, &hmac_sha256(&self.0, payload.as_bytes())) {
            return Err(SessionError::BadSignature);
        }
        if expires_at <= now {
            return Err(SessionError::Expired);
        }
        Ok((name.to_owned(), expires_at))
    }

    /// The CSRF token that goes with session cookie `value`.
    pub fn csrf_token(&self, value: &str) -> String {
        hex::encode(hmac_sha256(&self.0, format!("csrf.{value}").as_bytes()))
    }

    /// Whether `candidate` is the CSRF token of session cookie `value`.
    pub fn csrf_matches(&self, value: &str, candidate: &str) -> bool {
        constant_time_eq(candidate.as_bytes(), self.csrf_token(value).as_bytes())
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The session cookie's value in `headers`, if the request carries one.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
}

/// Whether the cookie should say `Secure`: always, except for plain HTTP to a
/// loopback host (`localhost`, `127.0.0.0/8`, `[::1]`), where browsers would refuse to
/// send it back and nothing crosses a network. A proxy's `X-Forwarded-Proto: https`
/// always means `Secure`.
pub fn wants_secure(headers: &HeaderMap) -> bool {
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    forwarded_https || !is_loopback(host)
}

/// Whether `host` (a `Host` header: name or address, optional port) is loopback.
fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The `Set-Cookie` value opening a session with `value` for `max_age` seconds.
pub fn set_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are ASCII")
}

/// The `Set-Cookie` value ending the session.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    set_cookie("", 0, secure)
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn sessions_verify_until_they_expire_and_only_under_their_key() {
        let key = SessionKey::from_secret(&[7; 32]);
        let cookie = key.mint("alice", 2_000);
        assert_eq!(key.verify(&cookie, 1_999), Ok(("alice".to_owned(), 2_000)));
        assert_eq!(key.verify(&cookie, 2_000), Err(SessionError::Expired));
        let other = SessionKey::from_secret(&[8; 32]);
        assert_eq!(other.verify(&cookie, 0), Err(SessionError::BadSignature));
        let forged = cookie.replace("v2.alice.2000.", "v2.alice.9999.");
        assert_eq!(key.verify(&forged, 0), Err(SessionError::BadSignature));
        let renamed = cookie.replace("v2.alice.", "v2.admin.");
        assert_eq!(key.verify(&renamed, 0), Err(SessionError::BadSignature));
        assert_ne!(key.mint("alice", 2_000), cookie, "every session is its own");
        assert_eq!(key.verify("v2.a.x.00", 0), Err(SessionError::Malformed));
        assert_eq!(
            key.verify("v1.5.0000000000000000.00", 0),
            Err(SessionError::Malformed)
        );
        assert_eq!(key.verify("garbage", 0), Err(SessionError::Malformed));
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let key = SessionKey::from_secret(&[7; 32]);
        let (a, b) = (key.mint("admin", 10), key.mint("admin", 11));
        assert!(key.csrf_matches(&a, &key.csrf_token(&a)));
        assert!(!key.csrf_matches(&a, &key.csrf_token(&b)));
        assert!(!key.csrf_matches(&a, ""));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; pakaura_console=v1.5.ab; b=2"),
        );
        assert_eq!(cookie_value(&headers), Some("v1.5.ab"));
    }

    #[test]
    fn only_plain_http_to_loopback_goes_without_secure() {
        let with_host = |host: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(HOST, HeaderValue::from_static(host));
            h
        };
        assert!(!wants_secure(&with_host("127.0.0.1:8080")));
        assert!(!wants_secure(&with_host("localhost:8080")));
        assert!(!wants_secure(&with_host("[::1]:8080")));
        assert!(wants_secure(&with_host("console.example.com")));
        assert!(wants_secure(&with_host("10.0.0.5:8080")));
        let mut proxied = with_host("127.0.0.1:8080");
        proxied.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(wants_secure(&proxied));
    }
}
