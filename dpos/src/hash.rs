//! SHA-256 with domain separation, the transaction Merkle tree and the
//! Merkle mountain range of block ids.
//!
//! Every hash the chain commits to starts with a domain tag (its length byte,
//! then the tag), so a transaction id can never be read as a block id, a
//! Merkle leaf as an inner node, and so on.

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

/// Domain tags. Each is used for exactly one kind of hash.
pub mod domain {
    /// Chain id: hash of the canonical genesis.
    pub const CHAIN: &[u8] = b"QCSS-DPOS-CHAIN-v1";
    /// Transaction id: hash of the canonical unsigned transaction.
    pub const TX: &[u8] = b"QCSS-DPOS-TX-v1";
    /// Block id: hash of the canonical header.
    pub const HEADER: &[u8] = b"QCSS-DPOS-HDR-v1";
    /// Producer confirmation of a block.
    pub const CONFIRM: &[u8] = b"QCSS-DPOS-CONFIRM-v1";
    /// Seed of a round's shuffle.
    pub const ROUND: &[u8] = b"QCSS-ROUND";
    /// Transaction Merkle tree.
    pub const TX_MERKLE: &[u8] = b"QCSS-DPOS-TXMERKLE-v1";
    /// Merkle mountain range of block ids.
    pub const BLOCK_MMR: &[u8] = b"QCSS-DPOS-MMR-v1";
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

const LEAF: &[u8] = &[0x00];
const NODE: &[u8] = &[0x01];
const BAG: &[u8] = &[0x02];

/// Merkle root of transaction ids, RFC 6962 shape: leaves `H(0x00 ‖ id)`,
/// inner nodes `H(0x01 ‖ left ‖ right)`, split at the largest power of two
/// below the count (no duplicated last leaf, so no CVE-2012-2459 ambiguity).
/// The empty tree's root is `H("empty")` under the same domain.
pub fn merkle_root(ids: &[Hash32]) -> Hash32 {
    if ids.is_empty() {
        return hash_parts(domain::TX_MERKLE, &[b"empty"]);
    }
    subtree(ids)
}

fn subtree(ids: &[Hash32]) -> Hash32 {
    if ids.len() == 1 {
        return hash_parts(domain::TX_MERKLE, &[LEAF, &ids[0].0]);
    }
    let k = split_point(ids.len());
    let (l, r) = ids.split_at(k);
    hash_parts(domain::TX_MERKLE, &[NODE, &subtree(l).0, &subtree(r).0])
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// An append-only Merkle mountain range over block ids: leaf `i` is the id of
/// the block at height `i` (the genesis id at 0). Only the peaks are kept, so
/// the state carries at most 64 hashes. Leaves are `H(0x00 ‖ id)`, inner nodes
/// `H(0x01 ‖ left ‖ right)`, and the root bags the peaks right to left with
/// `H(0x02 ‖ peak ‖ acc)` (the ckb / OpenTimestamps construction).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mmr {
    /// Number of leaves.
    pub leaves: u64,
    /// Peaks, left (tallest) to right, with their heights.
    pub peaks: Vec<(u8, Hash32)>,
}

impl Mmr {
    /// Appends a leaf.
    pub fn append(&mut self, id: &Hash32) {
        let mut node = (0u8, hash_parts(domain::BLOCK_MMR, &[LEAF, &id.0]));
        while let Some(&(h, left)) = self.peaks.last() {
            if h != node.0 {
                break;
            }
            self.peaks.pop();
            node = (
                h + 1,
                hash_parts(domain::BLOCK_MMR, &[NODE, &left.0, &node.1.0]),
            );
        }
        self.peaks.push(node);
        self.leaves += 1;
    }

    /// The root committing to every leaf appended so far.
    pub fn root(&self) -> Hash32 {
        let mut iter = self.peaks.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else {
            return hash_parts(domain::BLOCK_MMR, &[b"empty"]);
        };
        for (_, p) in iter {
            acc = hash_parts(domain::BLOCK_MMR, &[BAG, &p.0, &acc.0]);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u8) -> Hash32 {
        Hash32([i; 32])
    }

    #[test]
    fn merkle_root_depends_on_order_and_count() {
        let a = merkle_root(&[h(1), h(2), h(3)]);
        assert_ne!(a, merkle_root(&[h(2), h(1), h(3)]));
        assert_ne!(a, merkle_root(&[h(1), h(2), h(3), h(3)]));
        assert_ne!(merkle_root(&[]), merkle_root(&[h(0)]));
        // A single leaf is not the leaf itself (domain-separated).
        assert_ne!(merkle_root(&[h(1)]), h(1));
    }

    #[test]
    fn mmr_peaks_follow_binary_count() {
        let mut m = Mmr::default();
        let mut roots = std::collections::BTreeSet::new();
        for i in 0..11u8 {
            m.append(&h(i));
            assert_eq!(m.peaks.len() as u32, m.leaves.count_ones());
            assert!(roots.insert(m.root()), "roots must all differ");
        }
        // 2 leaves: the root is the single inner node over the two leaves.
        let mut two = Mmr::default();
        two.append(&h(0));
        two.append(&h(1));
        let l0 = hash_parts(domain::BLOCK_MMR, &[LEAF, &h(0).0]);
        let l1 = hash_parts(domain::BLOCK_MMR, &[LEAF, &h(1).0]);
        assert_eq!(
            two.root(),
            hash_parts(domain::BLOCK_MMR, &[NODE, &l0.0, &l1.0])
        );
    }
}
