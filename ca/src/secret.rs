//! Enrollment secrets: generated with the system RNG, stored only as a
//! salted PBKDF2-HMAC-SHA256 hash, compared in constant time.

use std::num::NonZeroU32;

use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::CaError;

/// PBKDF2 iterations: slow enough to make offline guessing of a stolen
/// store expensive, fast enough for an enrollment (tens of ms).
const ITERATIONS: u32 = 100_000;

/// A stored secret hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretHash {
    /// Random salt, hex.
    pub salt: String,
    /// PBKDF2 output, hex.
    pub hash: String,
    /// Iterations used.
    pub iterations: u32,
}

/// A new random secret: 24 characters from an unambiguous alphabet.
pub fn generate() -> Result<String, CaError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 24];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CaError::Setup("random number generator failed".into()))?;
    // 256 is not a multiple of 56, so reject-sample to stay uniform.
    let mut out = String::new();
    let mut pool = bytes.to_vec();
    while out.len() < 24 {
        for b in pool.drain(..) {
            if usize::from(b) < 224 && out.len() < 24 {
                out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
            }
        }
        if out.len() < 24 {
            let mut more = [0u8; 8];
            SystemRandom::new()
                .fill(&mut more)
                .map_err(|_| CaError::Setup("random number generator failed".into()))?;
            pool.extend_from_slice(&more);
        }
    }
    Ok(out)
}

/// Hashes a secret with a fresh salt.
pub fn hash(secret: &str) -> Result<SecretHash, CaError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| CaError::Setup("random number generator failed".into()))?;
    let mut out = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(ITERATIONS),
        &salt,
        secret.as_bytes(),
        &mut out,
    );
    Ok(SecretHash {
        salt: hex::encode(salt),
        hash: hex::encode(out),
        iterations: ITERATIONS,
    })
}

/// Checks a secret against a stored hash in constant time.
pub fn verify(secret: &str, stored: &SecretHash) -> bool {
    let (Ok(salt), Ok(expected)) = (hex::decode(&stored.salt), hex::decode(&stored.hash)) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(stored.iterations),
        &salt,
        secret.as_bytes(),
        &expected,
    )
    .is_ok()
}

fn iterations(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_secret() {
        let s = generate().unwrap();
        assert_eq!(s.len(), 24);
        let h = hash(&s).unwrap();
        assert!(verify(&s, &h));
        assert!(!verify("wrong", &h));
        assert!(!h.hash.contains(&s));
        // Same secret, different salt, different hash.
        assert_ne!(hash(&s).unwrap().hash, h.hash);
    }
}
