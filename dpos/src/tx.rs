//! Transactions: what an account asks the chain to do, signed over a
//! domain-separated id that commits to the chain id, so a transaction is
//! valid on one chain only; the nonce makes it valid once, the expiry slot
//! bounds it in time.

use serde::{Deserialize, Serialize};

use crate::address::{Address, Keypair, Sig, verify};
use crate::block::SignedHeader;
use crate::codec::{self, CodecError};
use crate::hash::{Hash32, domain, hash_parts};
use crate::params::Params;
pub use crate::rewards::{RewardBatch, RewardEntry};
use qcss_anchor::mmr::ConsistencyProof;
use qcss_anchor::statement::Statement;

/// The unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// The chain this transaction is for (no replay across chains).
    pub chain_id: Hash32,
    /// The paying and signing account.
    pub sender: Address,
    /// Must equal the sender's next nonce (no replay on one chain).
    pub nonce: u64,
    /// Fee in base units, at least `Params::min_fee`; paid to the producer, locked.
    pub fee: u64,
    /// Last slot in which the transaction may be included.
    pub expiry_slot: u64,
    /// What to do.
    pub kind: TxKind,
}

/// The kinds of transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxKind {
    /// Move liquid tokens; to the black hole they are burned.
    Transfer {
        /// Recipient.
        to: Address,
        /// Base units.
        amount: u64,
    },
    /// Destroy liquid tokens.
    Burn {
        /// Base units.
        amount: u64,
    },
    /// Replace the sender's approval vote: up to `max_votes` registered
    /// producers, each weighted by the sender's whole liquid balance at the
    /// election. An empty list withdraws the vote.
    Vote {
        /// Approved producers, distinct.
        producers: Vec<Address>,
    },
    /// Stand for election with the sender's key as block-signing key.
    RegisterProducer {
        /// Where the producer publishes who it is.
        url: String,
    },
    /// Stop standing for election (takes effect at the next election).
    UnregisterProducer,
    /// Move every matured locked reward into the liquid balance.
    WithdrawRewards,
    /// Proof that a producer signed two headers for one slot.
    Evidence(Box<Equivocation>),
    /// Register a consortium's anchor keys (signed by every new key, proof
    /// of possession) or rotate them (signed by a quorum of the current keys).
    RegisterConsortium(Box<KeySet>),
    /// A consortium's anchor: its history's MMR root, extending the last one.
    Anchor(Box<AnchorTx>),
    /// One part of a consortium's reward epoch, paid from the reward pool
    /// into locks (signed by the consortium's anchor-key quorum).
    RewardBatch(Box<RewardBatch>),
    /// Proof that a producer broke a finality-vote rule: two votes for one
    /// target height, or one vote surrounding another (Casper FFG).
    VoteEvidence(Box<VoteEquivocation>),
}

impl TxKind {
    /// The largest encoding a signed transaction of this kind may have:
    /// `rewards.max_tx_bytes` for a reward batch, `max_tx_bytes` otherwise.
    pub fn byte_limit(&self, p: &Params) -> u32 {
        match self {
            TxKind::RewardBatch(_) => p.rewards.max_tx_bytes.max(p.max_tx_bytes),
            _ => p.max_tx_bytes,
        }
    }
}

/// Two different headers signed by one producer for one slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equivocation {
    /// The first header.
    pub a: SignedHeader,
    /// The second header, same producer and slot, different id.
    pub b: SignedHeader,
}

/// Two finality votes by one producer that no honest producer casts:
/// different links with the same target height (a double vote), or one
/// link strictly surrounding the other (source lower and target higher).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteEquivocation {
    /// The first vote.
    pub a: crate::block::Confirmation,
    /// The second vote, same producer.
    pub b: crate::block::Confirmation,
}

impl VoteEquivocation {
    /// Which rule the two votes break, if any (signatures not checked).
    pub fn broken_rule(&self) -> Option<&'static str> {
        let (a, b) = (&self.a, &self.b);
        if a == b {
            return None;
        }
        let link =
            |v: &crate::block::Confirmation| (v.source_height, v.source_id, v.height, v.block_id);
        if a.height == b.height && link(a) != link(b) {
            return Some("double vote");
        }
        let surrounds = |x: &crate::block::Confirmation, y: &crate::block::Confirmation| {
            x.source_height < y.source_height && y.height < x.height
        };
        (surrounds(a, b) || surrounds(b, a)).then_some("surround vote")
    }
}

/// A consortium's anchor key set, as registered or rotated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySet {
    /// The consortium (`qcss_anchor::statement::consortium_id`).
    pub consortium_id: Hash32,
    /// One Ed25519 key per org, at most `qcss_anchor::statement::MAX_KEYS`, distinct.
    pub keys: Vec<Address>,
    /// Signatures an anchor needs, 1 … `keys.len()`.
    pub quorum: u16,
    /// Over `keys_digest(consortium, version, keys, quorum)` where version
    /// is 0 for a registration and the current version + 1 for a rotation:
    /// by every new key when registering, by a quorum of the current keys
    /// when rotating. `(index into the signing set, signature)`.
    pub sigs: Vec<(u16, Sig)>,
}

/// An anchor as submitted: the statement, the proof that it extends the
/// previous anchor, and the quorum's signatures over the statement's digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorTx {
    /// What the consortium's orgs signed.
    pub statement: Statement,
    /// From the previous anchor's (size, root) to this one's.
    pub consistency: ConsistencyProof,
    /// `(index into the registered keys, signature over statement.digest())`.
    pub sigs: Vec<(u16, Sig)>,
    /// Public height of the previous anchor's block (0 for the first), so the
    /// anchors form a list a client can walk back; the chain checks it.
    pub prev_anchor_height: u64,
}

impl Tx {
    /// Domain-separated hash of the canonical encoding; what is signed.
    pub fn id(&self) -> Hash32 {
        hash_parts(domain::TX, &[&codec::encode(self)])
    }

    /// Signs with `key` (which should be the sender's).
    pub fn sign(self, key: &Keypair) -> SignedTx {
        let sig = key.sign(&self.id());
        SignedTx { tx: self, sig }
    }
}

/// A transaction with its sender's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    /// The transaction.
    pub tx: Tx,
    /// Ed25519 over `tx.id()`.
    pub sig: Sig,
}

impl SignedTx {
    /// The transaction id.
    pub fn id(&self) -> Hash32 {
        self.tx.id()
    }

    /// Whether the sender's signature holds (`verify_strict`).
    pub fn signature_ok(&self) -> bool {
        verify(&self.tx.sender, &self.tx.id(), &self.sig)
    }

    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes network bytes; anything over `max_tx_bytes` is refused unread.
    pub fn decode(bytes: &[u8], max_tx_bytes: u32) -> Result<Self, CodecError> {
        codec::decode(bytes, max_tx_bytes as usize)
    }

    /// Decodes network bytes under the chain's limits: nothing over the
    /// largest kind's limit is read, and the decoded transaction must be
    /// within its own kind's limit ([`TxKind::byte_limit`]).
    pub fn decode_for(bytes: &[u8], p: &Params) -> Result<Self, CodecError> {
        let outer = p.max_tx_bytes.max(p.rewards.max_tx_bytes);
        let stx: Self = codec::decode(bytes, outer as usize)?;
        let limit = stx.tx.kind.byte_limit(p) as usize;
        if bytes.len() > limit {
            return Err(CodecError::Oversize {
                len: bytes.len(),
                limit,
            });
        }
        Ok(stx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_commits_to_every_field_and_signature_binds_sender() {
        let k = Keypair::for_test("tx", 0);
        let tx = Tx {
            chain_id: Hash32([1; 32]),
            sender: k.address(),
            nonce: 0,
            fee: 10,
            expiry_slot: 100,
            kind: TxKind::Transfer {
                to: Keypair::for_test("tx", 1).address(),
                amount: 5,
            },
        };
        let mut other_chain = tx.clone();
        other_chain.chain_id = Hash32([2; 32]);
        assert_ne!(tx.id(), other_chain.id());
        let signed = tx.clone().sign(&k);
        assert!(signed.signature_ok());
        let bytes = signed.encode();
        assert_eq!(SignedTx::decode(&bytes, 4096), Ok(signed.clone()));
        assert!(matches!(
            SignedTx::decode(&bytes, 50),
            Err(CodecError::Oversize { .. })
        ));
        let forged = SignedTx {
            tx: other_chain,
            sig: signed.sig,
        };
        assert!(!forged.signature_ok());
        let wrong_signer = tx.sign(&Keypair::for_test("tx", 1));
        assert!(!wrong_signer.signature_ok());
    }
}
