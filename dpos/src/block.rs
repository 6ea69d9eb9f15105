//! Blocks and producer confirmations. A block id is the domain-separated
//! hash of the canonical header; the producer signs the id. A header commits
//! to its transactions (Merkle root) and to every earlier block (MMR root of
//! all previous block ids), so a light client can prove an old block from a
//! recent header.

use serde::{Deserialize, Serialize};

use crate::address::{Address, Keypair, Sig, verify};
use crate::codec::{self, CodecError};
use crate::hash::{Hash32, domain, hash_parts, merkle_root};
use crate::tx::SignedTx;

/// The canonical block header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Chain id (hash of the genesis).
    pub chain_id: Hash32,
    /// Height: parent's height + 1 (the genesis is height 0).
    pub height: u64,
    /// Slot: time is implied as `genesis_time + slot × slot_ms`.
    pub slot: u64,
    /// Parent block id (the genesis id for height 1).
    pub prev_id: Hash32,
    /// Producer (its account key signs the block).
    pub producer: Address,
    /// Version of the active schedule this block was produced under.
    pub schedule_version: u64,
    /// Merkle root of the transaction ids.
    pub tx_root: Hash32,
    /// MMR root over the ids of blocks 0 … height−1.
    pub block_mmr_root: Hash32,
}

impl Header {
    /// The block id.
    pub fn id(&self) -> Hash32 {
        hash_parts(domain::HEADER, &[&codec::encode(self)])
    }
}

/// A header with its producer's signature: what equivocation evidence and
/// light clients carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHeader {
    /// The header.
    pub header: Header,
    /// Ed25519 over the block id.
    pub sig: Sig,
}

impl SignedHeader {
    /// Whether the producer's signature holds.
    pub fn signature_ok(&self) -> bool {
        verify(&self.header.producer, &self.header.id(), &self.sig)
    }
}

/// A full block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Header.
    pub header: Header,
    /// Producer's Ed25519 signature over the block id.
    pub sig: Sig,
    /// Transactions, applied in order.
    pub txs: Vec<SignedTx>,
}

impl Block {
    /// Builds and signs a block; the transaction root is computed here.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        key: &Keypair,
        chain_id: Hash32,
        height: u64,
        slot: u64,
        prev_id: Hash32,
        schedule_version: u64,
        block_mmr_root: Hash32,
        txs: Vec<SignedTx>,
    ) -> Self {
        let ids: Vec<Hash32> = txs.iter().map(SignedTx::id).collect();
        let header = Header {
            chain_id,
            height,
            slot,
            prev_id,
            producer: key.address(),
            schedule_version,
            tx_root: merkle_root(&ids),
            block_mmr_root,
        };
        let sig = key.sign(&header.id());
        Self { header, sig, txs }
    }

    /// The block id.
    pub fn id(&self) -> Hash32 {
        self.header.id()
    }

    /// The signed header alone.
    pub fn signed_header(&self) -> SignedHeader {
        SignedHeader {
            header: self.header.clone(),
            sig: self.sig,
        }
    }

    /// Whether the producer's signature holds.
    pub fn signature_ok(&self) -> bool {
        verify(&self.header.producer, &self.id(), &self.sig)
    }

    /// Whether `tx_root` matches the transactions.
    pub fn tx_root_ok(&self) -> bool {
        let ids: Vec<Hash32> = self.txs.iter().map(SignedTx::id).collect();
        merkle_root(&ids) == self.header.tx_root
    }

    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes network bytes; anything over `max_block_bytes` is refused unread.
    pub fn decode(bytes: &[u8], max_block_bytes: u32) -> Result<Self, CodecError> {
        codec::decode(bytes, max_block_bytes as usize)
    }
}

/// A producer's finality vote (with `Params::fast_confirmations`): a Casper
/// FFG link from `source`, the highest block the producer saw justified on
/// its branch, to `block_id`, its head. An honest producer votes only for its
/// own head, never twice for one target height, with target heights strictly
/// increasing and source heights never decreasing (so no vote of its own
/// surrounds another). See `fork.rs` for what links justify and finalize.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// Chain id.
    pub chain_id: Hash32,
    /// The target: the voter's head.
    pub block_id: Hash32,
    /// Its height.
    pub height: u64,
    /// The source: a justified ancestor of the target.
    pub source_id: Hash32,
    /// Its height (below `height`).
    pub source_height: u64,
    /// The voting producer.
    pub producer: Address,
    /// Ed25519 over [`Confirmation::digest`].
    pub sig: Sig,
}

impl Confirmation {
    /// What the producer signs: the chain and both ends of the link.
    pub fn digest(
        chain_id: &Hash32,
        (source_height, source_id): (u64, &Hash32),
        (height, block_id): (u64, &Hash32),
    ) -> Hash32 {
        hash_parts(
            domain::CONFIRM,
            &[
                &chain_id.0,
                &source_height.to_be_bytes(),
                &source_id.0,
                &height.to_be_bytes(),
                &block_id.0,
            ],
        )
    }

    /// Signs a vote for the link `source` → `target`, each `(height, id)`.
    pub fn sign(
        key: &Keypair,
        chain_id: Hash32,
        source: (u64, Hash32),
        target: (u64, Hash32),
    ) -> Self {
        let sig = key.sign(&Self::digest(
            &chain_id,
            (source.0, &source.1),
            (target.0, &target.1),
        ));
        Self {
            chain_id,
            block_id: target.1,
            height: target.0,
            source_id: source.1,
            source_height: source.0,
            producer: key.address(),
            sig,
        }
    }

    /// Whether the signature holds.
    pub fn signature_ok(&self) -> bool {
        verify(
            &self.producer,
            &Self::digest(
                &self.chain_id,
                (self.source_height, &self.source_id),
                (self.height, &self.block_id),
            ),
            &self.sig,
        )
    }
}

/// Most votes a certificate carries (one per producer of a schedule).
pub const MAX_CERTIFICATE_VOTES: usize = 64;

/// A finality certificate: the votes of a quorum link from a block (the
/// *source*) to its child (the *target*, carried signed), which makes the
/// source and everything below it irreversible (fork.rs). Nodes keep one for
/// each block holding an anchor, so an anchor proof shows finality with one
/// header and 21 votes instead of the headers of 21 distinct producers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The source's child, signed by its producer.
    pub target: SignedHeader,
    /// Voters of the link and their signatures, ascending by address.
    pub votes: Vec<(Address, Sig)>,
}

impl Certificate {
    /// The source's height (the target's parent).
    pub fn source_height(&self) -> u64 {
        self.target.header.height.saturating_sub(1)
    }

    /// The certificate's votes, each as the vote its producer sent (the
    /// target's id computed once).
    pub fn confirmations(&self) -> impl Iterator<Item = Confirmation> + '_ {
        let t = &self.target.header;
        let block_id = t.id();
        self.votes.iter().map(move |(producer, sig)| Confirmation {
            chain_id: t.chain_id,
            block_id,
            height: t.height,
            source_id: t.prev_id,
            source_height: self.source_height(),
            producer: *producer,
            sig: *sig,
        })
    }

    /// Checks that the certificate finalizes `source` (height, id) for a
    /// schedule of `producers` (sorted) at `schedule_version`, needing
    /// `threshold` of them: the target follows the source, is signed by a
    /// producer of the schedule, and `threshold` distinct producers of it
    /// signed the link. The error says which part failed.
    pub fn verify(
        &self,
        source: (u64, &Hash32),
        producers: &[Address],
        schedule_version: u64,
        threshold: usize,
    ) -> Result<(), String> {
        let t = &self.target.header;
        if t.prev_id != *source.1 || t.height != source.0.saturating_add(1) {
            return Err(format!(
                "the certificate's target (height {}) is not the child of block {}",
                t.height, source.0
            ));
        }
        if t.schedule_version != schedule_version
            || producers.binary_search(&t.producer).is_err()
            || !self.target.signature_ok()
        {
            return Err("the certificate's target is not signed by a producer of the set".into());
        }
        if self.votes.len() > MAX_CERTIFICATE_VOTES {
            return Err(format!(
                "{} votes; at most {MAX_CERTIFICATE_VOTES}",
                self.votes.len()
            ));
        }
        if !self.votes.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err("the certificate's voters are not distinct and ascending".into());
        }
        let digest = Confirmation::digest(&t.chain_id, source, (t.height, &t.id()));
        let valid = self
            .votes
            .iter()
            .filter(|(a, s)| producers.binary_search(a).is_ok() && verify(a, &digest, s))
            .count();
        if valid < threshold {
            return Err(format!(
                "{valid} producers of the set voted to finalize block {}; {threshold} needed",
                source.0
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden vector: the id of a fixed header. If this changes, every
    /// existing chain's block ids change: a hard fork.
    #[test]
    fn golden_block_id() {
        let header = Header {
            chain_id: Hash32([1; 32]),
            height: 7,
            slot: 9,
            prev_id: Hash32([2; 32]),
            producer: Address([3; 32]),
            schedule_version: 1,
            tx_root: merkle_root(&[]),
            block_mmr_root: Hash32([4; 32]),
        };
        assert_eq!(codec::encode(&header).len(), 32 * 5 + 8 * 3);
        assert_eq!(
            header.id().to_hex(),
            "7ab0b77beaa815e3b4ef5263b165341e0aef3071de3e14f7ab7e710a7d16582e"
        );
    }

    #[test]
    fn block_signature_and_roots() {
        let k = Keypair::for_test("blk", 0);
        let b = Block::build(
            &k,
            Hash32([1; 32]),
            1,
            1,
            Hash32([0; 32]),
            0,
            Hash32([5; 32]),
            vec![],
        );
        assert!(b.signature_ok() && b.tx_root_ok());
        let mut forged = b.clone();
        forged.header.slot = 2;
        assert!(!forged.signature_ok());
        let c = Confirmation::sign(&k, Hash32([1; 32]), (0, Hash32([0; 32])), (1, b.id()));
        assert!(c.signature_ok());
        let mut moved = c.clone();
        moved.height = 2;
        assert!(!moved.signature_ok());
        let mut resourced = c.clone();
        resourced.source_height = 1;
        assert!(!resourced.signature_ok());
        assert_eq!(Block::decode(&b.encode(), 1 << 20), Ok(b));
    }
}
