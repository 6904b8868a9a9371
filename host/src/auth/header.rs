//! A token's header, read before anything in the token is trusted: the algorithm it
//! claims and the key it names. Refuses `none`, algorithms the host does not implement
//! and critical extensions (`crit`) with a reason, where the JWT library would only say
//! "malformed".

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use super::AuthError;

/// The longest encoded header read; real ones are well under 1 KiB.
const MAX_HEADER_CHARS: usize = 4096;

/// What a token's header says (not yet verified).
#[derive(Debug)]
pub(super) struct TokenHeader {
    pub(super) alg: Algorithm,
    /// The key id, when the token names its key.
    pub(super) kid: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// Reads the header of a compact JWT (`header.payload.signature`).
pub(super) fn peek(token: &str) -> Result<TokenHeader, AuthError> {
    let malformed = |what: &str| AuthError::Invalid(format!("malformed token: {what}"));
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a JWT has three dot-separated parts"));
    };
    if header.len() > MAX_HEADER_CHARS {
        return Err(malformed("the header is too large"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("the header is not base64url"))?;
    let raw: RawHeader = serde_json::from_slice(&bytes)
        .map_err(|_| malformed("the header is not a JSON object of strings"))?;
    if raw.crit.is_some() {
        return Err(AuthError::Invalid(
            "the token header lists critical extensions (`crit`) the host does not implement"
                .into(),
        ));
    }
    let alg = match raw.alg.as_deref() {
        None => return Err(malformed("the header has no algorithm (`alg`)")),
        Some(name) if name.eq_ignore_ascii_case("none") => {
            return Err(AuthError::AlgorithmNotAllowed(
                "`none` (an unsigned token) is never accepted".into(),
            ));
        }
        Some(name) => Algorithm::from_str(name).map_err(|_| {
            AuthError::AlgorithmNotAllowed(
                "the header names an algorithm the host does not implement".into(),
            )
        })?,
    };
    Ok(TokenHeader { alg, kid: raw.kid })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    #[test]
    fn reads_the_algorithm_and_the_key_id() {
        let h = peek(&token(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#)).unwrap();
        assert_eq!(h.alg, Algorithm::RS256);
        assert_eq!(h.kid.as_deref(), Some("k1"));
        assert!(peek(&token(r#"{"alg":"ES256"}"#)).unwrap().kid.is_none());
    }

    #[test]
    fn unsigned_and_unknown_algorithms_are_refused_by_name() {
        for alg in ["none", "None", "NONE"] {
            let e = peek(&token(&format!(r#"{{"alg":"{alg}"}}"#))).unwrap_err();
            assert!(e.to_string().contains("`none`"), "{e}");
        }
        let e = peek(&token(r#"{"alg":"ES512"}"#)).unwrap_err();
        assert!(matches!(e, AuthError::AlgorithmNotAllowed(_)), "{e}");
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "not-a-jwt".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            "!!!.e30.sig".to_owned(),
            token(r#"{"kid":"k1"}"#),
            token(r#"{"alg":7}"#),
            token(r#"{"alg":"RS256","crit":["exp"]}"#),
            format!("{}.e30.sig", "A".repeat(MAX_HEADER_CHARS + 1)),
        ] {
            assert!(
                matches!(peek(&bad), Err(AuthError::Invalid(_))),
                "{bad:.40}"
            );
        }
    }
}
