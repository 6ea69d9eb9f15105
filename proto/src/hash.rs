//! Block hashing: Fabric's block-header hash, and QCSS's Merkle root over a
//! block's envelopes (which goes into `BlockHeader.data_hash`).
//!
//! The header hash is byte-for-byte Fabric's (`protoutil.BlockHeaderHash`):
//! SHA-256 over the DER encoding of
//! `SEQUENCE { INTEGER number, OCTET STRING previous_hash, OCTET STRING data_hash }`.
//! Block signatures in Fabric cover the same DER bytes
//! ([`block_header_bytes`]).
//!
//! The data hash is where QCSS differs from Fabric on purpose. Fabric hashes
//! the plain concatenation of the envelopes, so bytes can move from one
//! transaction to the next without changing the hash (CVE-2023-46132). QCSS
//! uses a binary Merkle tree with domain-separated leaves and inner nodes:
//!
//! - leaf = SHA-256(0x00 ‖ envelope bytes)
//! - node = SHA-256(0x01 ‖ left ‖ right)
//! - an odd node at the end of a level is promoted to the next level
//!   unchanged (never paired with a copy of itself, so no two different
//!   leaf lists share a root, unlike CVE-2012-2459)
//! - no leaves: SHA-256 of the empty string.
//!
//! It also yields inclusion proofs ([`merkle_proof`], [`verify_merkle_proof`]).

use ring::digest::{Context, SHA256, digest};

use crate::common::{BlockData, BlockHeader};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

fn sha256_parts(parts: &[&[u8]]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

// ---------------------------------------------------------------------------
// Block header (Fabric-compatible)
// ---------------------------------------------------------------------------

/// Appends a DER length (definite form, minimal: short form below 128,
/// otherwise 0x80 | byte count followed by the big-endian length).
fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (be.len() - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
}

/// Appends a DER INTEGER holding a non-negative `n`: minimal big-endian
/// two's complement, i.e. no redundant leading 0x00, but a 0x00 in front when
/// the top bit would otherwise read as a sign (128 → `02 02 00 80`). Zero is
/// `02 01 00`. This is what Go's `encoding/asn1` writes for a `*big.Int`.
fn der_uint(n: u64, out: &mut Vec<u8>) {
    let be = n.to_be_bytes();
    let skip = be.iter().take_while(|b| **b == 0).count().min(7);
    let body = &be[skip..];
    let pad = body[0] & 0x80 != 0;
    out.push(0x02);
    der_length(body.len() + usize::from(pad), out);
    if pad {
        out.push(0x00);
    }
    out.extend_from_slice(body);
}

/// Appends a DER OCTET STRING.
fn der_octet_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(0x04);
    der_length(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// The DER bytes Fabric hashes and signs for a block header
/// (`protoutil.BlockHeaderBytes`): `SEQUENCE { INTEGER number,
/// OCTET STRING previous_hash, OCTET STRING data_hash }`.
pub fn block_header_bytes(h: &BlockHeader) -> Vec<u8> {
    let mut body = Vec::with_capacity(16 + h.previous_hash.len() + h.data_hash.len());
    der_uint(h.number, &mut body);
    der_octet_string(&h.previous_hash, &mut body);
    der_octet_string(&h.data_hash, &mut body);
    let mut out = Vec::with_capacity(body.len() + 6);
    out.push(0x30);
    der_length(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

/// Fabric's block hash: SHA-256 of [`block_header_bytes`]. The next block's
/// `previous_hash` holds this value.
pub fn block_header_hash(h: &BlockHeader) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, &block_header_bytes(h)).as_ref());
    out
}

/// QCSS's `data_hash` for a block's data: the [`merkle_root`] of its
/// envelopes (not Fabric's hash of their concatenation).
pub fn block_data_hash(data: &BlockData) -> Hash {
    merkle_root(&data.data)
}

// ---------------------------------------------------------------------------
// Merkle tree (QCSS)
// ---------------------------------------------------------------------------

/// Hash of one leaf: SHA-256(0x00 ‖ bytes).
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    sha256_parts(&[&[LEAF_PREFIX], bytes])
}

/// Hash of an inner node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256_parts(&[&[NODE_PREFIX], left, right])
}

/// Hashes one level into the next: pairs neighbours, promotes an odd last node.
fn next_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => node_hash(left, right),
            [single] => *single,
            _ => unreachable!("chunks(2) yields one or two items"),
        })
        .collect()
}

/// Merkle root of `leaves` (see the module documentation for the tree shape).
/// An empty list gives SHA-256 of the empty string.
pub fn merkle_root(leaves: &[impl AsRef<[u8]>]) -> Hash {
    if leaves.is_empty() {
        return sha256_parts(&[]);
    }
    let mut level: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// Inclusion proof of one leaf: the sibling hashes from the leaf level
/// upwards. Levels where the node had no sibling (it was promoted) contribute
/// nothing, so the shape is implied by the leaf index and the leaf count.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MerkleProof {
    /// Sibling hashes, bottom level first.
    pub siblings: Vec<Hash>,
}

/// Builds the inclusion proof of `leaves[index]`.
///
/// # Panics
/// If `index >= leaves.len()`.
pub fn merkle_proof(leaves: &[impl AsRef<[u8]>], index: usize) -> MerkleProof {
    assert!(
        index < leaves.len(),
        "merkle_proof: index {index} out of range for {} leaves",
        leaves.len()
    );
    let mut level: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    let mut idx = index;
    let mut siblings = Vec::new();
    while level.len() > 1 {
        let sibling = idx ^ 1;
        if sibling < level.len() {
            siblings.push(level[sibling]);
        }
        level = next_level(&level);
        idx /= 2;
    }
    MerkleProof { siblings }
}

/// Checks that `leaf_bytes` is leaf number `index` of a tree of `leaf_count`
/// leaves whose root is `root`.
///
/// The root does not commit to the leaf count, so `leaf_count` must come from
/// a trusted source (e.g. the length of the block's data). With a wrong count
/// a genuine proof can still pass (the 3-leaf proof of leaf 0 also passes for
/// 4 leaves), but no leaf bytes that are not in the tree can be proven.
pub fn verify_merkle_proof(
    root: &Hash,
    leaf_bytes: &[u8],
    index: usize,
    leaf_count: usize,
    proof: &MerkleProof,
) -> bool {
    if index >= leaf_count {
        return false;
    }
    let mut hash = leaf_hash(leaf_bytes);
    let mut idx = index;
    let mut width = leaf_count;
    let mut siblings = proof.siblings.iter();
    while width > 1 {
        if idx % 2 == 1 {
            let Some(left) = siblings.next() else {
                return false;
            };
            hash = node_hash(left, &hash);
        } else if idx + 1 < width {
            let Some(right) = siblings.next() else {
                return false;
            };
            hash = node_hash(&hash, right);
        }
        // else: last node of an odd level, promoted unchanged.
        idx /= 2;
        width = width.div_ceil(2);
    }
    siblings.next().is_none() && hash == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn int(n: u64) -> String {
        let mut out = Vec::new();
        der_uint(n, &mut out);
        hex(&out)
    }

    #[test]
    fn der_integers_are_minimal_twos_complement() {
        // tag 02, length, big-endian value; a 00 in front when the top bit is set.
        assert_eq!(int(0), "020100");
        assert_eq!(int(1), "020101");
        assert_eq!(int(127), "02017f");
        assert_eq!(int(128), "02020080");
        assert_eq!(int(255), "020200ff");
        assert_eq!(int(256), "02020100");
        assert_eq!(int(32767), "02027fff");
        assert_eq!(int(32768), "0203008000");
        assert_eq!(int(0x0100_0000_0000_0000), "02080100000000000000");
        assert_eq!(int(i64::MAX as u64), "02087fffffffffffffff");
        assert_eq!(int(u64::MAX), "020900ffffffffffffffff");
    }

    #[test]
    fn der_lengths() {
        let len = |n: usize| {
            let mut out = Vec::new();
            der_length(n, &mut out);
            hex(&out)
        };
        assert_eq!(len(0), "00");
        assert_eq!(len(127), "7f");
        assert_eq!(len(128), "8180");
        assert_eq!(len(255), "81ff");
        assert_eq!(len(256), "820100");
        assert_eq!(len(65536), "83010000");
    }

    #[test]
    fn header_bytes_small() {
        // Fabric's TestGoodBlockHeaderBytes header: number 1, "foo", "bar".
        // 30 0d | 02 01 01 | 04 03 'f' 'o' 'o' | 04 03 'b' 'a' 'r'  (body 3+5+5 = 13)
        let h = BlockHeader {
            number: 1,
            previous_hash: b"foo".to_vec(),
            data_hash: b"bar".to_vec(),
        };
        assert_eq!(
            hex(&block_header_bytes(&h)),
            "300d0201010403666f6f0403626172"
        );
        // Bytes and hash cross-checked with OpenSSL's independent DER encoder:
        //   printf 'asn1=SEQUENCE:h\n[h]\nn=INTEGER:1\np=FORMAT:ASCII,OCTETSTRING:foo\n'\
        //          'd=FORMAT:ASCII,OCTETSTRING:bar\n' > h.cnf
        //   openssl asn1parse -genconf h.cnf -noout -out h.der && sha256sum h.der
        assert_eq!(
            hex(&block_header_hash(&h)),
            "e93c1382cc0ad21a64ae3286fd3ec883e2da582a793eb7b255954370b90a6b5b"
        );
    }

    #[test]
    fn header_hash_realistic() {
        // number u64::MAX, previous_hash = SHA-256("prev"), data_hash = SHA-256("data");
        // expected bytes and hash from `openssl asn1parse -genconf` as above with
        // n=INTEGER:18446744073709551615 and FORMAT:HEX octet strings.
        let prev = sha256_parts(&[b"prev"]);
        let data = sha256_parts(&[b"data"]);
        let h = BlockHeader {
            number: u64::MAX,
            previous_hash: prev.to_vec(),
            data_hash: data.to_vec(),
        };
        assert_eq!(
            hex(&block_header_bytes(&h)),
            "304f020900ffffffffffffffff\
             042084fd9bac333ad79154348296204fa7f8c537a96e08983e5f73b3f5aca8e8edf7\
             04203a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"
        );
        assert_eq!(
            hex(&block_header_hash(&h)),
            "0ea1396492d3c3b29b33f35142116c674bf3295afd9fa5d38f618a2ec6ca601e"
        );
    }

    #[test]
    fn header_bytes_genesis_and_empty_fields() {
        // Block 0 with no previous hash and no data hash (Go encodes a nil
        // []byte as an empty OCTET STRING): 30 07 | 02 01 00 | 04 00 | 04 00
        let h = BlockHeader::default();
        assert_eq!(hex(&block_header_bytes(&h)), "300702010004000400");
    }

    #[test]
    fn header_bytes_max_number_and_long_lengths() {
        // u64::MAX needs the 00 sign byte; a 200-byte previous hash needs the
        // long length form (81 c8); the sequence body is 11 + 203 + 34 = 248
        // bytes (81 f8). Same bytes from `openssl asn1parse -genconf`.
        let h = BlockHeader {
            number: u64::MAX,
            previous_hash: vec![0xaa; 200],
            data_hash: vec![0xbb; 32],
        };
        let bytes = block_header_bytes(&h);
        let mut expected = String::from("3081f8");
        expected += "020900ffffffffffffffff";
        expected += "0481c8";
        expected += &"aa".repeat(200);
        expected += "0420";
        expected += &"bb".repeat(32);
        assert_eq!(hex(&bytes), expected);

        // 4 + 34 + 266 = 304-byte body: length 82 01 30 (checked with openssl).
        let h = BlockHeader {
            number: 256,
            previous_hash: vec![1; 32],
            data_hash: vec![2; 262],
        };
        let bytes = block_header_bytes(&h);
        assert_eq!(hex(&bytes[..12]), "308201300202010004200101");
        assert_eq!(bytes.len(), 4 + 0x130);
    }

    #[test]
    fn merkle_empty_and_single() {
        let none: [&[u8]; 0] = [];
        assert_eq!(
            hex(&merkle_root(&none)),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(merkle_root(&[b"tx"]), leaf_hash(b"tx"));
        assert_ne!(merkle_root(&[b"tx"]), sha256_parts(&[b"tx"]));
    }

    #[test]
    fn merkle_shape() {
        let l: Vec<Hash> = [b"a", b"b", b"c", b"d", b"e"]
            .iter()
            .map(|x| leaf_hash(*x))
            .collect();
        // 3 leaves: (a b) c  -> c promoted.
        assert_eq!(
            merkle_root(&[b"a", b"b", b"c"]),
            node_hash(&node_hash(&l[0], &l[1]), &l[2])
        );
        // 5 leaves: ((a b)(c d)) e
        assert_eq!(
            merkle_root(&[b"a", b"b", b"c", b"d", b"e"]),
            node_hash(
                &node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3])),
                &l[4]
            )
        );
    }

    #[test]
    fn moving_a_byte_between_transactions_changes_the_root() {
        // Fabric's concatenation hash is the same for both blocks; ours is not.
        let a = merkle_root(&[b"abc".as_slice(), b"def".as_slice()]);
        let b = merkle_root(&[b"ab".as_slice(), b"cdef".as_slice()]);
        assert_ne!(a, b);
        let joined = |v: &[&[u8]]| sha256_parts(v);
        assert_eq!(joined(&[b"abc", b"def"]), joined(&[b"ab", b"cdef"]));
    }

    #[test]
    fn duplicating_the_last_leaf_changes_the_root() {
        // With duplicate-last-node trees (Bitcoin) [a b c] and [a b c c] collide.
        assert_ne!(
            merkle_root(&[b"a", b"b", b"c"]),
            merkle_root(&[b"a", b"b", b"c", b"c"])
        );
        // A leaf that looks like an inner node cannot stand in for it.
        let ab = [node_hash(&leaf_hash(b"a"), &leaf_hash(b"b")).to_vec()];
        assert_ne!(merkle_root(&ab), merkle_root(&[b"a", b"b"]));
    }

    #[test]
    fn proofs_verify_for_every_index_and_fail_when_wrong() {
        for n in 1..=9usize {
            let leaves: Vec<Vec<u8>> = (0..n)
                .map(|i| format!("envelope-{i}").into_bytes())
                .collect();
            let root = merkle_root(&leaves);
            for i in 0..n {
                let proof = merkle_proof(&leaves, i);
                assert!(
                    verify_merkle_proof(&root, &leaves[i], i, n, &proof),
                    "n={n} i={i}"
                );
                // Wrong leaf bytes.
                assert!(
                    !verify_merkle_proof(&root, b"forged", i, n, &proof),
                    "n={n} i={i}"
                );
                // Right bytes, wrong index (when another index exists).
                for j in 0..n {
                    if j != i {
                        assert!(
                            !verify_merkle_proof(&root, &leaves[i], j, n, &proof),
                            "n={n} i={i} j={j}"
                        );
                    }
                }
                // Index out of range, wrong root. (A wrong leaf count may
                // still verify, see verify_merkle_proof's documentation.)
                assert!(!verify_merkle_proof(&root, &leaves[i], n, n, &proof));
                let mut bad_root = root;
                bad_root[0] ^= 1;
                assert!(!verify_merkle_proof(&bad_root, &leaves[i], i, n, &proof));
                // Tampered or truncated proof.
                if let Some(first) = proof.siblings.first() {
                    let mut p = proof.clone();
                    p.siblings[0] = {
                        let mut s = *first;
                        s[31] ^= 0x80;
                        s
                    };
                    assert!(!verify_merkle_proof(&root, &leaves[i], i, n, &p));
                    let mut p = proof.clone();
                    p.siblings.pop();
                    assert!(!verify_merkle_proof(&root, &leaves[i], i, n, &p));
                }
                let mut p = proof.clone();
                p.siblings.push([0; 32]);
                assert!(!verify_merkle_proof(&root, &leaves[i], i, n, &p));
            }
        }
    }

    #[test]
    fn leaf_count_is_not_committed() {
        // Documented limitation: the proof of leaf 0 of [a b c] is [h(b), h(c)],
        // which a verifier told "4 leaves" also accepts.
        let leaves = [b"a", b"b", b"c"];
        let root = merkle_root(&leaves);
        let proof = merkle_proof(&leaves, 0);
        assert!(verify_merkle_proof(&root, b"a", 0, 3, &proof));
        assert!(verify_merkle_proof(&root, b"a", 0, 4, &proof));
    }

    #[test]
    fn block_data_hash_is_the_merkle_root() {
        let data = BlockData {
            data: vec![b"one".to_vec(), b"two".to_vec()],
        };
        assert_eq!(block_data_hash(&data), merkle_root(&data.data));
    }
}
