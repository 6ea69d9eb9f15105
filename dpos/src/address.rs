//! Accounts: an account is an Ed25519 public key, shown as a bech32m address
//! (`qcss1…`) whose checksum catches typos; and signing keys with
//! `verify_strict`, the single verification rule used by consensus.

use std::fmt;
use std::str::FromStr;

use bech32::{Bech32m, Hrp};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Human-readable part of every address.
pub const HRP: &str = "qcss";

/// An account: the 32 bytes of an Ed25519 public key. Serialized as its
/// `qcss1…` text in human-readable formats (genesis and API JSON), as the
/// 32 bytes in the canonical encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 32]);

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_newtype_struct("Address", &self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(d).map(Self)
        }
    }
}

/// The black-hole address: all zero bytes. Tokens sent there are burned. It
/// decodes to a point of order 4, a weak key that `verify_strict` always
/// refuses, and the state machine refuses any transaction from it before
/// looking at the signature, so nothing can ever spend from it.
pub const BLACK_HOLE: Address = Address([0u8; 32]);

/// An address that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// Not bech32m, or the checksum does not match (a typo).
    #[error("bad address checksum or encoding: {0}")]
    Checksum(String),
    /// Valid bech32m, but for another prefix than `qcss`.
    #[error("address prefix is {0:?}, expected \"qcss\"")]
    WrongPrefix(String),
    /// Valid bech32m with the right prefix but not 32 bytes.
    #[error("address holds {0} bytes, expected 32")]
    WrongLength(usize),
}

impl Address {
    /// Whether this is the black-hole address.
    pub fn is_black_hole(&self) -> bool {
        *self == BLACK_HOLE
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The HRP is a valid constant and 32 bytes are far below bech32m's
        // length limit, so encoding cannot fail.
        let hrp = Hrp::parse_unchecked(HRP);
        match bech32::encode::<Bech32m>(hrp, &self.0) {
            Ok(s) => f.write_str(&s),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &hex::encode(self.0)[..10])
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let checked = bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(s)
            .map_err(|e| AddressError::Checksum(e.to_string()))?;
        if checked.hrp().as_str() != HRP {
            return Err(AddressError::WrongPrefix(checked.hrp().to_string()));
        }
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| AddressError::WrongLength(bytes.len()))?;
        Ok(Self(arr))
    }
}

/// A signing key (an account's or a producer's).
#[derive(Clone)]
pub struct Keypair(SigningKey);

impl Keypair {
    /// A key from 32 secret bytes (tests and the simulator derive them from a seed).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&secret))
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, ring::error::Unspecified> {
        use ring::rand::SecureRandom;
        let mut secret = [0u8; 32];
        ring::rand::SystemRandom::new().fill(&mut secret)?;
        Ok(Self::from_secret(secret))
    }

    /// A deterministic key for tests and the simulator: secret = SHA-256(tag ‖ i).
    pub fn for_test(tag: &str, i: u64) -> Self {
        let h = crate::hash::hash_parts(b"QCSS-TEST-KEY", &[tag.as_bytes(), &i.to_be_bytes()]);
        Self::from_secret(h.0)
    }

    /// The 32 secret bytes (for writing a key file).
    pub fn secret(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// This key's account address.
    pub fn address(&self) -> Address {
        Address(self.0.verifying_key().to_bytes())
    }

    /// Signs a 32-byte digest (a transaction id, block id or confirmation digest).
    pub fn sign(&self, digest: &crate::hash::Hash32) -> Sig {
        Sig(self.0.sign(&digest.0).to_bytes())
    }

    /// Signs a message longer than a digest whose own text names what it is
    /// (e.g. the consortium's reward binding, `qcss-reward-binding-v1\n…`):
    /// never 32 bytes, so it cannot stand for a signed digest.
    pub fn sign_message(&self, message: &[u8]) -> Option<Sig> {
        (message.len() > 32).then(|| Sig(self.0.sign(message).to_bytes()))
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.address())
    }
}

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sig(#[serde(with = "sig_bytes")] pub [u8; 64]);

impl fmt::Debug for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sig({})", &hex::encode(self.0)[..16])
    }
}

mod sig_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.serialize_str(&hex::encode(v));
        }
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let v: Vec<u8> = if d.is_human_readable() {
            let text = String::deserialize(d)?;
            hex::decode(&text).map_err(serde::de::Error::custom)?
        } else {
            serde_bytes_vec(d)?
        };
        v.as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::invalid_length(v.len(), &"64 bytes"))
    }

    fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        // bincode encodes bytes as a length-prefixed sequence of u8.
        Vec::<u8>::deserialize(d)
    }
}

/// `verify_strict` of `sig` by `signer` over `digest`. Refuses weak (small
/// order) keys, non-canonical points and scalars: the one rule every node
/// applies, so nodes can never disagree about a signature.
pub fn verify(signer: &Address, digest: &crate::hash::Hash32, sig: &Sig) -> bool {
    let Some(vk) = verifying_key(signer) else {
        return false;
    };
    vk.verify_strict(&digest.0, &Signature::from_bytes(&sig.0))
        .is_ok()
}

/// Keys decompressed so far on this thread. Decompression is a third of a
/// verification and the same few hundred keys (producers, active accounts)
/// sign almost everything; the cache only skips recomputing a pure function.
const KEY_CACHE: usize = 4096;

thread_local! {
    static KEYS: std::cell::RefCell<std::collections::HashMap<[u8; 32], VerifyingKey>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn verifying_key(a: &Address) -> Option<VerifyingKey> {
    if let Some(vk) = KEYS.with(|k| k.borrow().get(&a.0).copied()) {
        return Some(vk);
    }
    let vk = VerifyingKey::from_bytes(&a.0).ok()?;
    KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if k.len() >= KEY_CACHE {
            k.clear();
        }
        k.insert(a.0, vk);
    });
    Some(vk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash32;

    #[test]
    fn address_text_round_trips_and_catches_typos() {
        let a = Keypair::for_test("addr", 1).address();
        let s = a.to_string();
        assert!(s.starts_with("qcss1"), "{s}");
        assert_eq!(s.parse::<Address>(), Ok(a));
        // Flip one character: the checksum catches it.
        let mut chars: Vec<char> = s.chars().collect();
        let i = 10;
        chars[i] = if chars[i] == 'q' { 'p' } else { 'q' };
        let typo: String = chars.into_iter().collect();
        assert!(matches!(
            typo.parse::<Address>(),
            Err(AddressError::Checksum(_))
        ));
        // Same bytes under another prefix.
        let other = bech32::encode::<Bech32m>(Hrp::parse_unchecked("btc"), &a.0).unwrap();
        assert!(matches!(
            other.parse::<Address>(),
            Err(AddressError::WrongPrefix(_))
        ));
        let short = bech32::encode::<Bech32m>(Hrp::parse_unchecked(HRP), &[1, 2, 3]).unwrap();
        assert_eq!(short.parse::<Address>(), Err(AddressError::WrongLength(3)));
    }

    #[test]
    fn signatures_verify_strictly_and_black_hole_never_verifies() {
        let k = Keypair::for_test("sig", 1);
        let d = Hash32([9; 32]);
        let sig = k.sign(&d);
        assert!(verify(&k.address(), &d, &sig));
        assert!(!verify(&k.address(), &Hash32([8; 32]), &sig));
        assert!(!verify(&Keypair::for_test("sig", 2).address(), &d, &sig));
        // The all-zero key is a small-order point: refused for any signature.
        assert!(!verify(&BLACK_HOLE, &d, &sig));
        assert!(!verify(&BLACK_HOLE, &d, &Sig([0; 64])));
    }
}
