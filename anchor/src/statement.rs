//! The anchor statement: "the consortium's blocks 0 … n−1 have MMR root R,
//! which extends the previous anchor's root". A quorum of the consortium's
//! orgs signs its [`Statement::digest`] (Ed25519, each org's peer only after
//! checking R against its own ledger) and the public chain refuses it unless
//! it is the next in sequence, extends the previous root and reaches the
//! registered quorum.

use serde::{Deserialize, Serialize};

use crate::hash::{Hash32, hash_parts};
use crate::mmr::Hasher;

/// Domain tags, one per kind of hash.
pub mod domain {
    /// The MMR over consortium block hashes.
    pub const MMR: &[u8] = b"QCSS-ANCHOR-MMR-v1";
    /// What the consortium's orgs sign.
    pub const STATEMENT: &[u8] = b"QCSS-ANCHOR-v1";
    /// A consortium id.
    pub const CONSORTIUM: &[u8] = b"QCSS-CONSORTIUM-v1";
    /// A registration or rotation of the consortium's anchor keys.
    pub const KEYS: &[u8] = b"QCSS-ANCHOR-KEYS-v1";
}

/// The MMR of consortium block hashes.
pub const MMR: Hasher = Hasher::new(domain::MMR);

/// Most anchor keys a consortium registers (one per org): a registration
/// of 31 keys with 31 signatures is about 3 KB, inside the public chain's
/// 4 KB transaction limit.
pub const MAX_KEYS: usize = 31;

/// The leaf of consortium block `number` with header hash `block_hash`:
/// `H(0x00 ‖ number_be ‖ hash)`, so a proof names the height it proves.
pub fn block_leaf(number: u64, block_hash: &Hash32) -> Hash32 {
    MMR.leaf(&[&number.to_be_bytes(), &block_hash.0])
}

/// The id of a consortium channel: its name and its genesis (config) block's
/// header hash, so two channels, or a channel re-created under the same
/// name, never share an id.
pub fn consortium_id(channel: &str, genesis_block_hash: &Hash32) -> Hash32 {
    hash_parts(
        domain::CONSORTIUM,
        &[
            &(channel.len() as u64).to_be_bytes(),
            channel.as_bytes(),
            &genesis_block_hash.0,
        ],
    )
}

/// What the quorum signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The consortium channel ([`consortium_id`]).
    pub consortium_id: Hash32,
    /// Anchor sequence number: 0 for the first, then each previous + 1.
    pub seq: u64,
    /// Blocks covered: numbers 0 … `mmr_size` − 1.
    pub mmr_size: u64,
    /// MMR root over those blocks' leaves.
    pub mmr_root: Hash32,
    /// Header hash of the last block covered (number `mmr_size` − 1).
    pub last_block_hash: Hash32,
    /// The previous anchor's `mmr_size` (0 for the first).
    pub prev_size: u64,
    /// The previous anchor's root (the empty root for the first).
    pub prev_root: Hash32,
}

impl Statement {
    /// The number of the last block covered.
    pub fn height(&self) -> u64 {
        self.mmr_size.saturating_sub(1)
    }

    /// Domain-separated hash of every field, fixed-width big-endian: what
    /// each org signs.
    pub fn digest(&self) -> Hash32 {
        hash_parts(
            domain::STATEMENT,
            &[
                &self.consortium_id.0,
                &self.seq.to_be_bytes(),
                &self.mmr_size.to_be_bytes(),
                &self.mmr_root.0,
                &self.last_block_hash.0,
                &self.prev_size.to_be_bytes(),
                &self.prev_root.0,
            ],
        )
    }
}

/// What a key registration or rotation is signed over: the consortium, the
/// new key set's version (so an old rotation cannot be replayed), the keys in
/// order and the quorum.
pub fn keys_digest(consortium_id: &Hash32, version: u64, keys: &[[u8; 32]], quorum: u16) -> Hash32 {
    let count = (keys.len() as u64).to_be_bytes();
    let version = version.to_be_bytes();
    let quorum = quorum.to_be_bytes();
    let mut parts: Vec<&[u8]> = vec![&consortium_id.0, &version, &quorum, &count];
    for k in keys {
        parts.push(k);
    }
    hash_parts(domain::KEYS, &parts)
}

/// The smallest quorum that is a strict majority of `n` keys.
pub fn majority(n: usize) -> u16 {
    (n / 2 + 1) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Statement {
        Statement {
            consortium_id: consortium_id("qcss", &Hash32([7; 32])),
            seq: 3,
            mmr_size: 42,
            mmr_root: Hash32([1; 32]),
            last_block_hash: Hash32([2; 32]),
            prev_size: 30,
            prev_root: Hash32([3; 32]),
        }
    }

    #[test]
    fn golden_statement_digest_and_ids() {
        // Pinned so that a change of encoding is a decision, not an accident;
        // the values were computed independently with Python's hashlib.
        assert_eq!(
            consortium_id("qcss", &Hash32([7; 32])).to_hex(),
            "f4a97e3d811ba8a83c0a01eb951f2a854d3dc7ab74d22b1c8f81be80ac831d58"
        );
        assert_eq!(
            sample().digest().to_hex(),
            "f97bd59bf7f8ba0068cef5dcb4e95678e7458a9c0ad00db2f2c1392495cd7e7b"
        );
        assert_eq!(
            block_leaf(5, &Hash32([9; 32])).to_hex(),
            "97e1608f0b607ce60dc0c866a8b3a270de3949909d4adb919d555324998b7f77"
        );
    }

    #[test]
    fn digest_commits_to_every_field() {
        let base = sample().digest();
        let mut all = std::collections::BTreeSet::new();
        all.insert(base);
        for f in 0..7 {
            let mut s = sample();
            match f {
                0 => s.consortium_id.0[0] ^= 1,
                1 => s.seq += 1,
                2 => s.mmr_size += 1,
                3 => s.mmr_root.0[0] ^= 1,
                4 => s.last_block_hash.0[0] ^= 1,
                5 => s.prev_size += 1,
                _ => s.prev_root.0[0] ^= 1,
            }
            assert!(all.insert(s.digest()), "field {f} is not committed to");
        }
        assert_ne!(
            consortium_id("qcss", &Hash32([7; 32])),
            consortium_id("qcsS", &Hash32([7; 32]))
        );
        assert_ne!(
            keys_digest(&base, 0, &[[1; 32]], 1),
            keys_digest(&base, 1, &[[1; 32]], 1)
        );
        assert_eq!(majority(4), 3);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(1), 1);
    }
}
