//! The operator's admin token (`ADMIN_TOKEN`), kept only as a digest.

use sha2::{Digest, Sha256};

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
        self.matches_digest(&Sha256::digest(candidate.as_bytes()).into())
    }

    /// Whether `digest` (a candidate's SHA-256) is this token's, in constant time.
    fn matches_digest(&self, digest: &[u8; 32]) -> bool {
        digest
            .iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// The operators' admin tokens: `ADMIN_TOKEN` (named `admin`) and the named ones of
/// `ADMIN_TOKENS` (`name:token,...`), each kept only as a digest. Whoever uses one is
/// known by its name: the host records it with every replay, skip and reload.
#[derive(Debug)]
pub struct AdminTokens {
    tokens: Vec<(String, AdminToken)>,
    /// Derived from every token: the console's session key (changing any token ends
    /// every console session).
    session_secret: [u8; 32],
}

/// Why `ADMIN_TOKENS` was refused (the tokens are never part of the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AdminTokensError(String);

impl AdminTokens {
    /// The tokens of `ADMIN_TOKEN` (`single`) and `ADMIN_TOKENS` (`named`); `None` when
    /// neither is set (the admin API is off).
    pub fn new(
        single: Option<&str>,
        named: Option<&str>,
    ) -> Result<Option<Self>, AdminTokensError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(token) = single {
            pairs.push(("admin".to_owned(), token.trim().to_owned()));
        }
        for entry in named.unwrap_or_default().split(',').map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            let (name, token) = entry
                .split_once(':')
                .ok_or_else(|| AdminTokensError("each entry must be name:token".to_owned()))?;
            let name = name.trim();
            if name.is_empty()
                || name.len() > 32
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(AdminTokensError(format!(
                    "`{}` is not a usable name: 1 to 32 of a-z, 0-9, - and _",
                    name.chars().take(40).collect::<String>()
                )));
            }
            if token.trim().len() < 16 {
                return Err(AdminTokensError(format!(
                    "the token of `{name}` must be at least 16 characters"
                )));
            }
            if pairs.iter().any(|(n, _)| n == name) {
                return Err(AdminTokensError(format!(
                    "`{name}` is named twice (ADMIN_TOKEN is `admin`)"
                )));
            }
            pairs.push((name.to_owned(), token.trim().to_owned()));
        }
        if pairs.is_empty() {
            return Ok(None);
        }
        let mut all = Sha256::new();
        for (name, token) in &pairs {
            all.update(name.as_bytes());
            all.update([0]);
            all.update(Sha256::digest(token.as_bytes()));
        }
        Ok(Some(Self {
            session_secret: all.finalize().into(),
            tokens: pairs
                .into_iter()
                .map(|(name, token)| (name, AdminToken::new(&token)))
                .collect(),
        }))
    }

    /// The name of the operator whose token `candidate` is, if any. Every token is
    /// compared, so the time taken does not say which one matched.
    pub fn who(&self, candidate: &str) -> Option<&str> {
        // Hashed once, compared with each.
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        let mut found = None;
        for (name, token) in &self.tokens {
            if token.matches_digest(&digest) {
                found = Some(name.as_str());
            }
        }
        found
    }

    /// Whether `name` is one of the operators.
    pub fn knows(&self, name: &str) -> bool {
        self.tokens.iter().any(|(n, _)| n == name)
    }

    /// The secret the console's session key is derived from.
    pub fn session_secret(&self) -> &[u8; 32] {
        &self.session_secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_tokens_say_who_and_admin_token_is_admin() {
        let tokens = AdminTokens::new(
            Some("the-single-admin-token"),
            Some("alice:alice-token-0123456789, bob:bob-token-0123456789"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(tokens.who("the-single-admin-token"), Some("admin"));
        assert_eq!(tokens.who("alice-token-0123456789"), Some("alice"));
        assert_eq!(tokens.who("bob-token-0123456789"), Some("bob"));
        assert_eq!(tokens.who("nobody-token-0123456789"), None);
        assert!(AdminTokens::new(None, None).unwrap().is_none());
        for bad in [
            "alice",
            "Alice:alice-token-0123456789",
            "a:short",
            "admin:x-token-0123456789",
        ] {
            let err = AdminTokens::new(Some("the-single-admin-token"), Some(bad)).unwrap_err();
            assert!(
                !err.to_string().contains("0123456789"),
                "never the token: {err}"
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
