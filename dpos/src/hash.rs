//! SHA-256 with domain separation, the transaction Merkle tree and the
//! Merkle mountain range of block ids.
//!
//! Every hash the chain commits to starts with a domain tag (its length byte,
//! then the tag), so a transaction id can never be read as a block id, a
//! Merkle leaf as an inner node, and so on.

use qcss_anchor::mmr::{Hasher, Peaks};
use serde::{Deserialize, Serialize};

pub use qcss_anchor::hash::{Hash32, hash_parts};

/// Domain tags. Each is used for exactly one kind of hash.
pub mod domain {
    /// Chain id: hash of the canonical genesis.
    pub const CHAIN: &[u8] = b"QCSS-DPOS-CHAIN-v1";
    /// Transaction id: hash of the canonical unsigned transaction.
    pub const TX: &[u8] = b"QCSS-DPOS-TX-v1";
    /// Block id: hash of the canonical header.
    pub const HEADER: &[u8] = b"QCSS-DPOS-HDR-v1";
    /// A producer's finality vote (source → target link).
    pub const CONFIRM: &[u8] = b"QCSS-DPOS-VOTE-v2";
    /// Seed of a round's shuffle.
    pub const ROUND: &[u8] = b"QCSS-ROUND";
    /// Transaction Merkle tree.
    pub const TX_MERKLE: &[u8] = b"QCSS-DPOS-TXMERKLE-v1";
    /// Merkle mountain range of block ids.
    pub const BLOCK_MMR: &[u8] = b"QCSS-DPOS-MMR-v1";
}

const LEAF: &[u8] = &[0x00];
const NODE: &[u8] = &[0x01];

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

/// The path proving `ids[index]` under [`merkle_root`]: sibling hashes from
/// the leaf up, each with `true` when the sibling is on the left.
pub fn merkle_path(ids: &[Hash32], index: usize) -> Option<Vec<(bool, Hash32)>> {
    if index >= ids.len() {
        return None;
    }
    let mut path = Vec::new();
    let (mut lo, mut hi, mut i) = (0usize, ids.len(), index);
    // Walk down from the root, remembering the other side at each split.
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if i < k {
            path.push((false, subtree(&ids[lo + k..hi])));
            hi = lo + k;
        } else {
            path.push((true, subtree(&ids[lo..lo + k])));
            lo += k;
            i -= k;
        }
    }
    path.reverse();
    Some(path)
}

/// The root that `path` gives for transaction id `id` (compare it with a
/// header's `tx_root`). At most 64 steps are read.
pub fn merkle_root_from_path(id: &Hash32, path: &[(bool, Hash32)]) -> Option<Hash32> {
    if path.len() > 64 {
        return None;
    }
    let mut acc = hash_parts(domain::TX_MERKLE, &[LEAF, &id.0]);
    for (left, sibling) in path {
        acc = if *left {
            hash_parts(domain::TX_MERKLE, &[NODE, &sibling.0, &acc.0])
        } else {
            hash_parts(domain::TX_MERKLE, &[NODE, &acc.0, &sibling.0])
        };
    }
    Some(acc)
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The Merkle mountain range of block ids: leaf `i` is the id of the block
/// at height `i` (the genesis id at 0), leaves `H(0x00 ‖ id)`. Only the
/// peaks are kept, so the state carries at most 64 hashes. The construction
/// is `qcss_anchor::mmr`'s (shared with anchoring) under this chain's domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mmr(pub Peaks);

const BLOCK_MMR: Hasher = Hasher::new(domain::BLOCK_MMR);

impl Mmr {
    /// Appends a block id.
    pub fn append(&mut self, id: &Hash32) {
        self.0.append(&BLOCK_MMR, BLOCK_MMR.leaf(&[&id.0]));
    }

    /// The root committing to every id appended so far.
    pub fn root(&self) -> Hash32 {
        self.0.root(&BLOCK_MMR)
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
    fn merkle_paths_prove_every_leaf_and_only_it() {
        for n in 1..40u8 {
            let ids: Vec<Hash32> = (0..n).map(h).collect();
            let root = merkle_root(&ids);
            for i in 0..n as usize {
                let p = merkle_path(&ids, i).unwrap();
                assert_eq!(merkle_root_from_path(&ids[i], &p), Some(root), "{n} {i}");
                assert_ne!(merkle_root_from_path(&h(200), &p), Some(root));
            }
            assert!(merkle_path(&ids, n as usize).is_none());
        }
    }

    #[test]
    fn mmr_peaks_follow_binary_count() {
        let mut m = Mmr::default();
        let mut roots = std::collections::BTreeSet::new();
        for i in 0..11u8 {
            m.append(&h(i));
            assert_eq!(m.0.peaks.len() as u32, m.0.leaves.count_ones());
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
