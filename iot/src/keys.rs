//! Ed25519 for the parties off the ledger: signing a state's digest and
//! verifying strictly (`verify_strict`, the one rule everywhere).

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::{Party, PublicKey, Signature, State};

/// A party's signing key.
pub struct Key(SigningKey);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.public())
    }
}

impl Key {
    /// The key from its 32 secret bytes.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&secret))
    }

    /// Its public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `state` as `party`.
    pub fn sign(&self, state: &State, party: Party) -> Signature {
        Signature(self.0.sign(&state.digest(party).0).to_bytes())
    }
}

/// Whether `sig` is `key`'s signature of `msg` (strict: canonical `s`, no
/// small-order key).
pub fn verify(key: &PublicKey, msg: &[u8], sig: &Signature) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(&key.0) else {
        return false;
    };
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig.0))
        .is_ok()
}
