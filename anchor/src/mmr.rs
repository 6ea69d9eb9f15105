//! A Merkle mountain range (MMR): an append-only list of leaves whose root
//! commits to all of them, with proofs that a leaf is in it and that a later
//! root extends an earlier one.
//!
//! **Shape.** A node is named by its [`Pos`]: level `k` and index `j`; it
//! covers the leaves `[j·2^k, (j+1)·2^k)`. A range of `n` leaves is the
//! perfect trees of the binary digits of `n`, tallest first (its *peaks*).
//! Leaves are hashed by the caller ([`Hasher::leaf`]), inner nodes are
//! `H(0x01 ‖ left ‖ right)`, and the root bags the peaks right to left,
//! `H(0x02 ‖ peak ‖ acc)` — the construction of ckb's
//! merkle-mountain-range (cross-checked against it in the tests), with a
//! domain tag in front of every hash.
//!
//! **Why an MMR.** Appending touches O(log n) nodes and never changes an old
//! one, so every earlier root's peaks are nodes of every later range: a
//! consistency proof (old root → new root) is those peaks plus the few nodes
//! that combine them with the new leaves, at most about 2·log₂ n hashes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hash::{Hash32, hash_parts};

/// Most hashes any proof may carry: 64 levels of path plus 64 peaks for an
/// inclusion proof, and at most that for a consistency proof. Checked before
/// any hashing, so a hostile proof costs nothing.
pub const MAX_PROOF_HASHES: usize = 192;

/// A node's place: `level` 0 is a leaf; node `(k, j)` covers leaves
/// `[j·2^k, (j+1)·2^k)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pos {
    /// Height above the leaves.
    pub level: u8,
    /// Index among the nodes of that level.
    pub index: u64,
}

impl Pos {
    /// The first leaf this node covers.
    fn first_leaf(self) -> u64 {
        self.index << self.level
    }

    fn children(self) -> (Pos, Pos) {
        let level = self.level - 1;
        (
            Pos {
                level,
                index: self.index * 2,
            },
            Pos {
                level,
                index: self.index * 2 + 1,
            },
        )
    }

    /// Big-endian `level ‖ index`: sorts by level, then index (a store key).
    pub fn key(self) -> [u8; 9] {
        let mut k = [0u8; 9];
        k[0] = self.level;
        k[1..].copy_from_slice(&self.index.to_be_bytes());
        k
    }
}

/// The peaks of a range of `size` leaves, tallest (leftmost) first.
pub fn peak_positions(size: u64) -> Vec<Pos> {
    let mut out = Vec::with_capacity(size.count_ones() as usize);
    let mut start = 0u64;
    for level in (0..64u8).rev() {
        if size & (1u64 << level) != 0 {
            out.push(Pos {
                level,
                index: start >> level,
            });
            start += 1u64 << level;
        }
    }
    out
}

const LEAF: &[u8] = &[0x00];
const NODE: &[u8] = &[0x01];
const BAG: &[u8] = &[0x02];

/// The hash functions of one MMR, all under one domain tag.
#[derive(Clone, Copy, Debug)]
pub struct Hasher {
    domain: &'static [u8],
}

impl Hasher {
    /// An MMR hashing under `domain` (a constant; one per kind of MMR).
    pub const fn new(domain: &'static [u8]) -> Self {
        Self { domain }
    }

    /// A leaf: `H(0x00 ‖ parts…)`.
    pub fn leaf(&self, parts: &[&[u8]]) -> Hash32 {
        let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
        all.push(LEAF);
        all.extend_from_slice(parts);
        hash_parts(self.domain, &all)
    }

    /// An inner node: `H(0x01 ‖ left ‖ right)`.
    pub fn node(&self, left: &Hash32, right: &Hash32) -> Hash32 {
        hash_parts(self.domain, &[NODE, &left.0, &right.0])
    }

    /// The root over peaks given tallest first: bagged right to left as
    /// `H(0x02 ‖ peak ‖ acc)`; the empty range has `H("empty")`.
    pub fn bag(&self, peaks: &[Hash32]) -> Hash32 {
        let mut iter = peaks.iter().rev();
        let Some(&last) = iter.next() else {
            return self.empty_root();
        };
        iter.fold(last, |acc, p| hash_parts(self.domain, &[BAG, &p.0, &acc.0]))
    }

    /// The root of the empty range.
    pub fn empty_root(&self) -> Hash32 {
        hash_parts(self.domain, &[b"empty"])
    }
}

/// The peaks alone: enough to append and to compute the root, at most 64
/// hashes (what the public chain's state and a device carry).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peaks {
    /// Number of leaves.
    pub leaves: u64,
    /// Peaks, left (tallest) to right, with their levels.
    pub peaks: Vec<(u8, Hash32)>,
}

impl Peaks {
    /// Appends a leaf hash; returns every node it created (the leaf first,
    /// then each merged parent), for a store that keeps all nodes.
    pub fn append(&mut self, h: &Hasher, leaf: Hash32) -> Vec<(Pos, Hash32)> {
        let mut created = vec![(
            Pos {
                level: 0,
                index: self.leaves,
            },
            leaf,
        )];
        let mut node = (0u8, leaf);
        let mut index = self.leaves;
        while let Some(&(level, left)) = self.peaks.last() {
            if level != node.0 {
                break;
            }
            self.peaks.pop();
            index >>= 1;
            node = (level + 1, h.node(&left, &node.1));
            created.push((
                Pos {
                    level: level + 1,
                    index,
                },
                node.1,
            ));
        }
        self.peaks.push(node);
        self.leaves += 1;
        created
    }

    /// The root committing to every leaf so far.
    pub fn root(&self, h: &Hasher) -> Hash32 {
        let hashes: Vec<Hash32> = self.peaks.iter().map(|p| p.1).collect();
        h.bag(&hashes)
    }
}

/// Where a full MMR's nodes are kept (sled on a peer, a map in tests).
pub trait NodeStore {
    /// The store's error.
    type Error: std::fmt::Display;
    /// The node at `pos`, if it was ever written.
    fn node(&self, pos: Pos) -> Result<Option<Hash32>, Self::Error>;
}

/// An in-memory store (tests, the offline tools).
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    /// Every node, by position.
    pub nodes: BTreeMap<Pos, Hash32>,
    /// The peaks, for appending.
    pub peaks: Peaks,
}

impl MemStore {
    /// Appends a leaf hash, keeping every node.
    pub fn append(&mut self, h: &Hasher, leaf: Hash32) {
        for (pos, hash) in self.peaks.append(h, leaf) {
            self.nodes.insert(pos, hash);
        }
    }
}

impl NodeStore for MemStore {
    type Error = std::convert::Infallible;
    fn node(&self, pos: Pos) -> Result<Option<Hash32>, Self::Error> {
        Ok(self.nodes.get(&pos).copied())
    }
}

/// Why a proof could not be built or did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf is not in a range of that size.
    #[error("leaf {index} is not in a range of {size} leaves")]
    LeafOutOfRange {
        /// The leaf.
        index: u64,
        /// The range's size.
        size: u64,
    },
    /// The old range is larger than the new one.
    #[error("old size {old} is larger than new size {new}")]
    Shrinks {
        /// Old size.
        old: u64,
        /// New size.
        new: u64,
    },
    /// More hashes than [`MAX_PROOF_HASHES`], or a count that does not fit the sizes.
    #[error("proof has {got} hashes where {want} are needed")]
    WrongLength {
        /// Given.
        got: usize,
        /// Needed (or the limit).
        want: usize,
    },
    /// The proof does not lead to the root it claims.
    #[error("proof leads to root {got}, not {want}")]
    RootMismatch {
        /// The expected root.
        want: Hash32,
        /// What the proof computes.
        got: Hash32,
    },
    /// The old peaks do not bag to the old root.
    #[error("old peaks bag to {got}, not the old root {want}")]
    OldRootMismatch {
        /// The old root.
        want: Hash32,
        /// What the old peaks give.
        got: Hash32,
    },
    /// A node the proof needs is missing from the store (a store error).
    #[error("node {0:?} is missing from the store")]
    Missing(Pos),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
}

fn get<S: NodeStore>(store: &S, pos: Pos) -> Result<Hash32, ProofError> {
    store
        .node(pos)
        .map_err(|e| ProofError::Store(e.to_string()))?
        .ok_or(ProofError::Missing(pos))
}

/// The peak of a range of `size` leaves that holds leaf `index`, and its
/// place among the peaks.
fn peak_of(index: u64, size: u64) -> Result<(usize, Pos), ProofError> {
    if index >= size {
        return Err(ProofError::LeafOutOfRange { index, size });
    }
    peak_positions(size)
        .into_iter()
        .enumerate()
        .find(|(_, p)| p.first_leaf() <= index && index - p.first_leaf() < (1u64 << p.level))
        .ok_or(ProofError::LeafOutOfRange { index, size })
}

/// Proof that a leaf is in a range: the path to its peak, then the other peaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The leaf's index (a consortium block's number).
    pub leaf_index: u64,
    /// Leaves in the range.
    pub size: u64,
    /// Siblings from the leaf up to its peak, lowest first.
    pub path: Vec<Hash32>,
    /// The range's other peaks, tallest first.
    pub peaks: Vec<Hash32>,
}

impl InclusionProof {
    /// Builds the proof of leaf `index` in the first `size` leaves of `store`.
    pub fn build<S: NodeStore>(store: &S, index: u64, size: u64) -> Result<Self, ProofError> {
        let (at, peak) = peak_of(index, size)?;
        let mut path = Vec::with_capacity(peak.level as usize);
        for level in 0..peak.level {
            let sibling = Pos {
                level,
                index: (index >> level) ^ 1,
            };
            path.push(get(store, sibling)?);
        }
        let mut peaks = Vec::new();
        for (i, p) in peak_positions(size).into_iter().enumerate() {
            if i != at {
                peaks.push(get(store, p)?);
            }
        }
        Ok(Self {
            leaf_index: index,
            size,
            path,
            peaks,
        })
    }

    /// The root this proof computes for `leaf`, or why it is malformed.
    pub fn root_for(&self, h: &Hasher, leaf: &Hash32) -> Result<Hash32, ProofError> {
        let (at, peak) = peak_of(self.leaf_index, self.size)?;
        let n_peaks = self.size.count_ones() as usize;
        if self.path.len() != peak.level as usize {
            return Err(ProofError::WrongLength {
                got: self.path.len(),
                want: peak.level as usize,
            });
        }
        if self.peaks.len() + 1 != n_peaks {
            return Err(ProofError::WrongLength {
                got: self.peaks.len(),
                want: n_peaks - 1,
            });
        }
        let mut acc = *leaf;
        for (level, sibling) in self.path.iter().enumerate() {
            acc = if (self.leaf_index >> level) & 1 == 1 {
                h.node(sibling, &acc)
            } else {
                h.node(&acc, sibling)
            };
        }
        let mut peaks = self.peaks.clone();
        peaks.insert(at, acc);
        Ok(h.bag(&peaks))
    }

    /// Checks that `leaf` is leaf `leaf_index` of the range with root `root`.
    pub fn verify(&self, h: &Hasher, leaf: &Hash32, root: &Hash32) -> Result<(), ProofError> {
        let got = self.root_for(h, leaf)?;
        if got != *root {
            return Err(ProofError::RootMismatch { want: *root, got });
        }
        Ok(())
    }
}

/// Proof that the range of `new_size` leaves extends the range of
/// `old_size` leaves: the old peaks, then the nodes that combine them with
/// the new leaves into the new peaks, in the order [`ConsistencyProof::verify`]
/// consumes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// Leaves in the old range.
    pub old_size: u64,
    /// Leaves in the new range.
    pub new_size: u64,
    /// The old range's peaks, tallest first.
    pub old_peaks: Vec<Hash32>,
    /// Nodes over new leaves only, in the verifier's order.
    pub nodes: Vec<Hash32>,
}

/// Walks the new peak at `pos` down to the old peaks: a node made only of
/// new leaves is taken whole from `opaque`, an old peak from `known`, and a
/// node that mixes both is computed from its children. Old peaks partition
/// the old leaves into aligned blocks, tallest first, so a node that is not
/// an old peak and holds an old leaf always contains whole old peaks.
fn walk(
    pos: Pos,
    old_size: u64,
    known: &BTreeMap<Pos, Hash32>,
    opaque: &mut dyn FnMut(Pos) -> Result<Hash32, ProofError>,
    h: &Hasher,
) -> Result<Hash32, ProofError> {
    if let Some(k) = known.get(&pos) {
        return Ok(*k);
    }
    if pos.first_leaf() >= old_size {
        return opaque(pos);
    }
    if pos.level == 0 {
        // Unreachable for well-formed sizes; refuse rather than guess.
        return Err(ProofError::Missing(pos));
    }
    let (l, r) = pos.children();
    let left = walk(l, old_size, known, opaque, h)?;
    let right = walk(r, old_size, known, opaque, h)?;
    Ok(h.node(&left, &right))
}

impl ConsistencyProof {
    /// Builds the proof from the first `old_size` to the first `new_size`
    /// leaves of `store`.
    pub fn build<S: NodeStore>(
        store: &S,
        h: &Hasher,
        old_size: u64,
        new_size: u64,
    ) -> Result<Self, ProofError> {
        if old_size > new_size {
            return Err(ProofError::Shrinks {
                old: old_size,
                new: new_size,
            });
        }
        let mut known = BTreeMap::new();
        let mut old_peaks = Vec::new();
        for p in peak_positions(old_size) {
            let hash = get(store, p)?;
            known.insert(p, hash);
            old_peaks.push(hash);
        }
        let mut nodes = Vec::new();
        let mut take = |p: Pos| -> Result<Hash32, ProofError> {
            let hash = get(store, p)?;
            nodes.push(hash);
            Ok(hash)
        };
        for p in peak_positions(new_size) {
            walk(p, old_size, &known, &mut take, h)?;
        }
        Ok(Self {
            old_size,
            new_size,
            old_peaks,
            nodes,
        })
    }

    /// Checks that `old_root` (of `old_size` leaves) is extended by
    /// `new_root` (of `new_size` leaves).
    pub fn verify(
        &self,
        h: &Hasher,
        old_root: &Hash32,
        new_root: &Hash32,
    ) -> Result<(), ProofError> {
        if self.old_size > self.new_size {
            return Err(ProofError::Shrinks {
                old: self.old_size,
                new: self.new_size,
            });
        }
        if self.old_peaks.len() + self.nodes.len() > MAX_PROOF_HASHES {
            return Err(ProofError::WrongLength {
                got: self.old_peaks.len() + self.nodes.len(),
                want: MAX_PROOF_HASHES,
            });
        }
        let positions = peak_positions(self.old_size);
        if positions.len() != self.old_peaks.len() {
            return Err(ProofError::WrongLength {
                got: self.old_peaks.len(),
                want: positions.len(),
            });
        }
        let got = h.bag(&self.old_peaks);
        if got != *old_root {
            return Err(ProofError::OldRootMismatch {
                want: *old_root,
                got,
            });
        }
        let known: BTreeMap<Pos, Hash32> = positions
            .into_iter()
            .zip(self.old_peaks.iter().copied())
            .collect();
        let mut next = self.nodes.iter();
        let mut take = |_: Pos| -> Result<Hash32, ProofError> {
            next.next().copied().ok_or(ProofError::WrongLength {
                got: self.nodes.len(),
                want: self.nodes.len() + 1,
            })
        };
        let mut new_peaks = Vec::new();
        for p in peak_positions(self.new_size) {
            new_peaks.push(walk(p, self.old_size, &known, &mut take, h)?);
        }
        let left = next.count();
        if left != 0 {
            return Err(ProofError::WrongLength {
                got: self.nodes.len(),
                want: self.nodes.len() - left,
            });
        }
        let got = h.bag(&new_peaks);
        if got != *new_root {
            return Err(ProofError::RootMismatch {
                want: *new_root,
                got,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ckb_merkle_mountain_range as ckb;

    const H: Hasher = Hasher::new(b"QCSS-TEST-MMR");

    fn leaf(i: u64) -> Hash32 {
        H.leaf(&[&i.to_be_bytes()])
    }

    fn build(n: u64) -> MemStore {
        let mut s = MemStore::default();
        for i in 0..n {
            s.append(&H, leaf(i));
        }
        s
    }

    /// ckb's MMR with our hashes: merge is our inner node; ckb bags the
    /// peaks as `merge_peaks(right, left)`, ours as `H(0x02 ‖ left ‖ right)`.
    struct OurMerge;
    impl ckb::Merge for OurMerge {
        type Item = Hash32;
        fn merge(l: &Hash32, r: &Hash32) -> ckb::Result<Hash32> {
            Ok(H.node(l, r))
        }
        fn merge_peaks(right: &Hash32, left: &Hash32) -> ckb::Result<Hash32> {
            Ok(hash_parts(b"QCSS-TEST-MMR", &[BAG, &left.0, &right.0]))
        }
    }

    #[test]
    fn roots_and_inclusion_proofs_match_ckb_merkle_mountain_range() {
        let store = ckb::util::MemStore::default();
        let mut theirs = ckb::util::MemMMR::<Hash32, OurMerge>::new(0, &store);
        let mut ours = MemStore::default();
        let mut positions = Vec::new();
        for i in 0..300u64 {
            positions.push(theirs.push(leaf(i)).unwrap());
            ours.append(&H, leaf(i));
            let root = theirs.get_root().unwrap();
            assert_eq!(ours.peaks.root(&H), root, "root after {} leaves", i + 1);
            // Our proof of a few leaves verifies against ckb's root.
            for j in [0, i / 2, i] {
                let p = InclusionProof::build(&ours, j, i + 1).unwrap();
                p.verify(&H, &leaf(j), &root).unwrap();
            }
            // ckb's proof of the last leaf verifies against our root.
            let theirs_proof = theirs.gen_proof(vec![positions[i as usize]]).unwrap();
            assert!(
                theirs_proof
                    .verify(ours.peaks.root(&H), vec![(positions[i as usize], leaf(i))])
                    .unwrap()
            );
        }
    }

    #[test]
    fn golden_vectors() {
        // Pinned so that a change of encoding is a decision, not an accident;
        // the values were computed independently with Python's hashlib.
        let s = build(7);
        assert_eq!(
            s.peaks.root(&H).to_hex(),
            "5c06e097fb943893668d3f34aabc00a46f446396d5e38242198c76a30f1f931f"
        );
        assert_eq!(
            H.empty_root().to_hex(),
            "094b5fb21df59e5bf946710337513719185eccef4b69776d7e4dbf7d02850a5d"
        );
    }

    #[test]
    fn every_consistency_proof_verifies_and_tampering_fails() {
        let store = build(70);
        let roots: Vec<Hash32> = (0..=70u64)
            .map(|n| {
                let mut p = Peaks::default();
                for i in 0..n {
                    p.append(&H, leaf(i));
                }
                p.root(&H)
            })
            .collect();
        for old in 0..=70u64 {
            for new in old..=70u64 {
                let p = ConsistencyProof::build(&store, &H, old, new).unwrap();
                p.verify(&H, &roots[old as usize], &roots[new as usize])
                    .unwrap_or_else(|e| panic!("{old}->{new}: {e}"));
                assert!(p.old_peaks.len() + p.nodes.len() <= 2 * 7 + 2);
                if new > old {
                    // The wrong new root, a flipped node, a missing node all fail.
                    assert!(
                        p.verify(&H, &roots[old as usize], &roots[new as usize - 1])
                            .is_err()
                    );
                    let mut bad = p.clone();
                    if let Some(n) = bad.nodes.first_mut() {
                        n.0[0] ^= 1;
                        assert!(
                            bad.verify(&H, &roots[old as usize], &roots[new as usize])
                                .is_err()
                        );
                    }
                    let mut short = p.clone();
                    short.nodes.pop();
                    assert!(
                        short
                            .verify(&H, &roots[old as usize], &roots[new as usize])
                            .is_err()
                    );
                }
                if old > 0 && new > old {
                    let mut bad = p.clone();
                    bad.old_peaks[0].0[31] ^= 1;
                    assert!(matches!(
                        bad.verify(&H, &roots[old as usize], &roots[new as usize]),
                        Err(ProofError::OldRootMismatch { .. })
                    ));
                }
            }
        }
    }

    #[test]
    fn a_rewritten_leaf_breaks_consistency() {
        let honest = build(20);
        let mut forked = MemStore::default();
        for i in 0..20u64 {
            forked.append(&H, if i == 5 { leaf(1000) } else { leaf(i) });
        }
        let old_root = {
            let mut p = Peaks::default();
            for i in 0..12u64 {
                p.append(&H, leaf(i));
            }
            p.root(&H)
        };
        // The fork can build a proof over its own nodes, but not from the honest old root.
        let p = ConsistencyProof::build(&forked, &H, 12, 20).unwrap();
        assert!(p.verify(&H, &old_root, &forked.peaks.root(&H)).is_err());
        let ok = ConsistencyProof::build(&honest, &H, 12, 20).unwrap();
        ok.verify(&H, &old_root, &honest.peaks.root(&H)).unwrap();
    }

    #[test]
    fn hostile_proofs_are_refused_cheaply() {
        let store = build(10);
        let root = store.peaks.root(&H);
        let mut p = InclusionProof::build(&store, 3, 10).unwrap();
        p.path.push(Hash32::default());
        assert!(matches!(
            p.verify(&H, &leaf(3), &root),
            Err(ProofError::WrongLength { .. })
        ));
        let p = InclusionProof {
            leaf_index: 10,
            size: 10,
            path: vec![],
            peaks: vec![],
        };
        assert!(matches!(
            p.verify(&H, &leaf(3), &root),
            Err(ProofError::LeafOutOfRange { .. })
        ));
        let huge = ConsistencyProof {
            old_size: 0,
            new_size: u64::MAX,
            old_peaks: vec![],
            nodes: vec![Hash32::default(); MAX_PROOF_HASHES + 1],
        };
        assert!(matches!(
            huge.verify(&H, &H.empty_root(), &root),
            Err(ProofError::WrongLength { .. })
        ));
        // A proof for u64::MAX leaves with too few nodes fails on length, not by looping.
        let big = ConsistencyProof {
            old_size: 0,
            new_size: u64::MAX,
            old_peaks: vec![],
            nodes: vec![Hash32::default(); 3],
        };
        assert!(big.verify(&H, &H.empty_root(), &root).is_err());
    }
}
