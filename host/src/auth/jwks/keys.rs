//! A JWK set as the host uses it: the provider's signing keys, each with the algorithms
//! it may verify, taken from the key (`alg` when present, else its type and curve).
//!
//! Keys the host cannot or must not use are left out with a reason, never fatal to the
//! set: `use` other than `sig`, `key_ops` without `verify`, symmetric keys (`oct`, `HS*`:
//! a published key is public, so an HMAC under it proves nothing), encryption algorithms,
//! curves without an implementation (P-521), RSA moduli under 2048 bits, and an `alg` that
//! contradicts the key's type.

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;

/// The most keys a set may hold; providers publish a handful.
pub(crate) const MAX_KEYS: usize = 100;
/// The smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// One key the host may verify with.
pub(crate) struct VerifyingKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

impl VerifyingKey {
    /// Whether a token signed with `alg` may be verified with this key.
    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    /// The algorithms this key allows, for messages (`RS256, PS256`).
    pub(crate) fn algorithm_names(&self) -> String {
        let names: Vec<String> = self.algorithms.iter().map(|a| format!("{a:?}")).collect();
        names.join(", ")
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.key
    }
}

/// The usable keys of one fetched set.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

/// A key of the document left out of the set, and why (for the log).
#[derive(Debug)]
pub(crate) struct Skipped {
    pub(crate) kid: Option<String>,
    pub(crate) reason: String,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Parses a JWK set document (`{"keys": [...]}`). An unreadable document, too many
    /// keys or not one usable key is an error (the cached set then stays in use).
    pub(crate) fn parse(body: &[u8]) -> Result<(Self, Vec<Skipped>), String> {
        let raw: RawSet = serde_json::from_slice(body)
            .map_err(|e| format!("the response is not a JWK set ({{\"keys\": [...]}}): {e}"))?;
        if raw.keys.len() > MAX_KEYS {
            return Err(format!(
                "the JWK set holds {} keys; at most {MAX_KEYS} are read",
                raw.keys.len()
            ));
        }
        let mut set = KeySet::default();
        let mut skipped = Vec::new();
        for value in raw.keys {
            let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            match usable(value) {
                Ok(key)
                    if key.kid.is_some()
                        && set.find(key.kid.as_deref().unwrap_or("")).is_some() =>
                {
                    skipped.push(Skipped {
                        kid,
                        reason: "another key of the set has the same `kid`".into(),
                    });
                }
                Ok(key) => set.keys.push(key),
                Err(reason) => skipped.push(Skipped { kid, reason }),
            }
        }
        if set.keys.is_empty() {
            return Err(format!(
                "the JWK set holds no usable signing key ({} left out)",
                skipped.len()
            ));
        }
        Ok((set, skipped))
    }

    /// The key with this id.
    pub(crate) fn find(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    /// The keys that allow `alg` (for tokens that name no key).
    pub(crate) fn allowing(&self, alg: Algorithm) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter().filter(move |k| k.allows(alg))
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key (never fetched).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, sorted (for logging what a refresh changed).
    pub(crate) fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self
            .keys
            .iter()
            .map(|k| k.kid.clone().unwrap_or_else(|| "(no kid)".into()))
            .collect();
        kids.sort();
        kids
    }
}

/// The key a JWK describes, or why the host leaves it out.
fn usable(value: serde_json::Value) -> Result<VerifyingKey, String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("not a JWK: {e}"))?;
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Err("`use` is not `sig`".into()),
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("`key_ops` does not include `verify`".into());
    }
    let algorithms = algorithms(&jwk)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable key material: {e}"))?;
    if let AlgorithmParameters::RSA(_) = &jwk.algorithm
        && let jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, .. } = key.kind()
        && n.iter().skip_while(|b| **b == 0).count() < MIN_RSA_MODULUS_BYTES
    {
        return Err("the RSA modulus is shorter than 2048 bits".into());
    }
    Ok(VerifyingKey {
        kid: jwk.common.key_id,
        algorithms,
        key,
    })
}

/// The algorithms a key allows: its `alg` when it declares one that fits the key, else
/// every algorithm of its type (RSA: RS* and PS*) or its curve's one.
fn algorithms(jwk: &Jwk) -> Result<Vec<Algorithm>, String> {
    let declared = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::HS256 | KeyAlgorithm::HS384 | KeyAlgorithm::HS512) => {
            return Err("symmetric algorithms (HS*) are never taken from a JWK set".into());
        }
        Some(alg) => Some(Algorithm::try_from(alg).map_err(|_| {
            format!("`alg` {alg} is not a signature algorithm the host implements")
        })?),
    };
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa.algorithms().to_vec(),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err("EC keys must be on P-256 or P-384".into()),
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        AlgorithmParameters::OctetKeyPair(_) => return Err("OKP keys must be Ed25519".into()),
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric keys (`kty` oct) are never taken from a JWK set".into());
        }
        _ => return Err("unsupported key type (`kty`)".into()),
    };
    match declared {
        None => Ok(family),
        Some(alg) if family.contains(&alg) => Ok(vec![alg]),
        Some(alg) => Err(format!("`alg` {alg:?} does not fit the key's type")),
    }
}

#[cfg(test)]
mod tests;
