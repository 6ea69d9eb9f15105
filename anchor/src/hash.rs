//! The 32-byte digest and domain-separated SHA-256 that the public chain
//! and anchoring share.
//!
//! Every hash starts with a domain tag (its length byte, then the tag), so a
//! transaction id can never be read as a block id, a Merkle leaf as an inner
//! node, and so on.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A 32-byte SHA-256 digest (block ids, transaction ids, roots, seeds).
/// Hex in human-readable formats (JSON), the 32 bytes in the canonical
/// encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash32(pub [u8; 32]);

impl Serialize for Hash32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_newtype_struct("Hash32", &self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            let mut out = [0u8; 32];
            hex::decode_to_slice(&text, &mut out)
                .map_err(|e| serde::de::Error::custom(format!("a hash is 64 hex digits: {e}")))?;
            Ok(Self(out))
        } else {
            <[u8; 32]>::deserialize(d).map(Self)
        }
    }
}

impl Hash32 {
    /// The bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for Hash32 {
    type Err = hex::FromHexError;

    /// 64 hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Self(out))
    }
}

/// `SHA-256(len(domain) ‖ domain ‖ parts…)`.
pub fn hash_parts(domain: &[u8], parts: &[&[u8]]) -> Hash32 {
    let mut h = Sha256::new();
    // Domain tags are compile-time constants shorter than 256 bytes.
    h.update([domain.len() as u8]);
    h.update(domain);
    for p in parts {
        h.update(p);
    }
    Hash32(h.finalize().into())
}
