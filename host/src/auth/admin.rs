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
