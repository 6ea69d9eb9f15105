//! Endorsements this peer signed itself, remembered so that validating the
//! block that carries one need not verify that signature again: the peer
//! made it, over exactly those bytes (issue 20's first lead; a peer of a
//! two-org network endorses every transaction, so this saves one of its
//! three signature checks per transaction).
//!
//! What is remembered is SHA-256 of the signature and the signed bytes
//! (the proposal response payload and the endorser's serialized identity),
//! so a hit means "this exact signature over this exact message came out of
//! our signer". The endorser's identity is still validated by its MSP
//! (expiry, revocation) as for any other endorsement; only the
//! cryptographic check is skipped. Bounded: the oldest entries go first,
//! and a miss just means the signature is verified as usual.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use qcss_network::signing::sha256;

/// Entries kept at most (~64 bytes each with the queue): several minutes
/// of endorsements at the benchmark's rates.
const CAPACITY: usize = 1 << 17;

/// Signatures this peer produced, by hash of signature and message.
#[derive(Debug, Default)]
pub struct OwnSignatures {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

fn key(signed: &[u8], signature: &[u8]) -> [u8; 32] {
    // Length-prefixed, so no (signed, signature) split collides with another.
    let mut buf = Vec::with_capacity(4 + signature.len() + signed.len());
    buf.extend_from_slice(&(signature.len() as u32).to_be_bytes());
    buf.extend_from_slice(signature);
    buf.extend_from_slice(signed);
    sha256(&buf)
}

impl OwnSignatures {
    /// An empty memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers that this peer signed `signed` with `signature`.
    pub fn remember(&self, signed: &[u8], signature: &[u8]) {
        let k = key(signed, signature);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.order.len() >= CAPACITY
            && let Some(old) = inner.order.pop_front()
        {
            inner.set.remove(&old);
        }
        if inner.set.insert(k) {
            inner.order.push_back(k);
        }
    }

    /// Whether this peer made `signature` over `signed`; forgets it (a
    /// signature is validated once, in the one block that carries it).
    pub fn take(&self, signed: &[u8], signature: &[u8]) -> bool {
        let k = key(signed, signature);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.set.remove(&k)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set
            .len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_signature_over_the_exact_bytes_is_known() {
        let own = OwnSignatures::new();
        own.remember(b"message", b"sig");
        assert!(!own.take(b"message", b"other sig"));
        assert!(!own.take(b"other message", b"sig"));
        // The split between message and signature matters.
        assert!(!own.take(b"gmessage", b"si"));
        assert!(own.take(b"message", b"sig"));
        assert!(!own.take(b"message", b"sig"), "taken once");
    }

    #[test]
    fn bounded_oldest_first() {
        let own = OwnSignatures::new();
        for i in 0..CAPACITY + 10 {
            own.remember(&i.to_be_bytes(), b"s");
        }
        assert_eq!(own.len(), CAPACITY);
        assert!(!own.take(&0usize.to_be_bytes(), b"s"));
        assert!(own.take(&(CAPACITY + 9).to_be_bytes(), b"s"));
    }
}
