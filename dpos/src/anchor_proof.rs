//! The public half of a consortium anchor proof (`qcss anchor prove`,
//! docs/anchor.md "Proofs anyone can check"): the newest *irreversible*
//! anchor of a consortium — its transaction with the quorum's signatures,
//! that transaction's Merkle path in its public block, and what shows that
//! block irreversible: the headers built on it until enough distinct
//! producers did, or (finality votes) the headers up to a block with a kept
//! finality certificate and that certificate.
//!
//! Served by the node (`GET /v1/consortium/{id}/proof`) so that the CLI and
//! the consortium's peers (which cache it for the verify page's proof
//! download) assemble the same proof file from one source; it is checked by
//! whoever verifies the proof, never trusted for being served.

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::block::{Block, Certificate, SignedHeader};
use crate::hash::{Hash32, merkle_path};
use crate::state::Consortium;
use crate::tx::{AnchorTx, SignedTx, TxKind};

/// Most headers a proof carries after the anchor's block (far more than a
/// healthy chain needs: irreversibility is 21 distinct producers of 31).
pub const MAX_HEADERS: usize = 4_096;

/// The anchor step of a proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnchorPart {
    /// The public anchor transaction's canonical bytes, hex.
    pub tx: String,
    /// The consortium's registered keys when the proof was made.
    pub keys: Vec<Address>,
    /// Their quorum.
    pub quorum: u16,
}

/// The public-chain steps of a proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicPart {
    /// The block carrying the anchor.
    pub block: SignedHeader,
    /// Merkle path of the anchor transaction to the block's `tx_root`.
    pub tx_path: Vec<(bool, Hash32)>,
    /// Headers after it: up to irreversibility by production (the headers
    /// of `threshold` distinct producers), or with `certificate`, up to the
    /// certificate's source.
    pub headers: Vec<SignedHeader>,
    /// A finality certificate (finality votes) for the last of `headers`
    /// (the anchor's block when there are none): irreversibility by votes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
}

/// `GET /v1/consortium/{id}/proof`: the public half of a proof for any
/// consortium transaction in the anchored blocks `0 … mmr_size − 1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicHalf {
    /// The anchor's sequence number.
    pub seq: u64,
    /// Consortium blocks it covers.
    pub mmr_size: u64,
    /// The public height of its block.
    pub height: u64,
    /// The anchor step.
    pub anchor: AnchorPart,
    /// The public steps.
    pub public: PublicPart,
}

/// Public block `height`'s anchor `seq` of `consortium`: its position and
/// the anchor; `None` if the block does not hold it.
pub fn anchor_in(block: &Block, consortium: &Hash32, seq: u64) -> Option<(usize, AnchorTx)> {
    block
        .txs
        .iter()
        .enumerate()
        .find_map(|(i, t)| match &t.tx.kind {
            TxKind::Anchor(x)
                if x.statement.consortium_id == *consortium && x.statement.seq == seq =>
            {
                Some((i, (**x).clone()))
            }
            _ => None,
        })
}

/// What [`public_half`] reads of a chain.
pub struct ChainView<B, C> {
    /// The node's last irreversible height.
    pub lib: u64,
    /// The height irreversible by production alone (`State::dpos_lib`).
    pub production_lib: u64,
    /// Distinct producers that make a block irreversible.
    pub threshold: usize,
    /// The block at a height.
    pub block_at: B,
    /// The kept finality certificate with the lowest source height in a
    /// range ([`crate::node::Node::certificate_in`]).
    pub certificate_in: C,
}

/// Builds the public half for `consortium` (as registered, `id`): for the
/// newest anchor at or below the chain's LIB that can be shown irreversible
/// — by a kept finality certificate at or above its block, or by the
/// headers of `threshold` distinct producers once production made it
/// irreversible. The error says why no proof can be made yet.
pub fn public_half<E: std::fmt::Display, B, C>(
    id: &Hash32,
    consortium: &Consortium,
    chain: ChainView<B, C>,
) -> Result<PublicHalf, String>
where
    B: Fn(u64) -> Result<Option<Block>, E>,
    C: Fn(u64, u64) -> Result<Option<Certificate>, E>,
{
    let ChainView {
        lib,
        production_lib,
        threshold,
        block_at,
        certificate_in,
    } = chain;
    let read = |h: u64| -> Result<Block, String> {
        block_at(h)
            .map_err(|e| format!("reading public block {h}: {e}"))?
            .ok_or_else(|| format!("public block {h} is not on this node"))
    };
    // The nearest certificate at or above `h` within the headers a proof
    // may carry.
    let certificate_for = |h: u64| -> Result<Option<Certificate>, String> {
        let to = lib.min(h.saturating_add(MAX_HEADERS as u64));
        certificate_in(h, to).map_err(|e| format!("reading finality certificates: {e}"))
    };
    let Some(last) = &consortium.last else {
        return Err("the consortium has not anchored yet".into());
    };
    // The newest irreversible anchor: walk back from the last one.
    let (mut height, mut seq) = (last.height, last.seq);
    let (block, index, anchor, certificate) = loop {
        let b = read(height)?;
        let Some((i, x)) = anchor_in(&b, id, seq) else {
            return Err(format!(
                "public block {height} should hold anchor seq {seq} and does not"
            ));
        };
        let certificate = if height <= lib {
            certificate_for(height)?
        } else {
            None
        };
        if certificate.is_some() || height <= lib.min(production_lib) {
            // The proof carries the consortium's keys as they are now: an
            // anchor signed before a key rotation would not verify with them.
            let digest = x.statement.digest();
            if crate::state::count_signers(&consortium.keys, &digest, &x.sigs)
                < usize::from(consortium.quorum)
            {
                return Err(format!(
                    "the newest irreversible anchor (seq {seq}) was signed by the key set before the rotation to key version {}; prove again once an anchor signed by the new keys is irreversible",
                    consortium.key_version
                ));
            }
            break (b, i, x, certificate);
        }
        if seq == 0 {
            return Err(format!(
                "no anchor is irreversible yet (the first is in public block {height}, irreversible: {lib}); try again shortly"
            ));
        }
        (height, seq) = (x.prev_anchor_height, seq - 1);
    };
    let ids: Vec<Hash32> = block.txs.iter().map(SignedTx::id).collect();
    let tx_path = merkle_path(&ids, index).ok_or("no Merkle path for the anchor")?;
    let mut headers = Vec::new();
    let mut next = block.header.height + 1;
    // Headers up to the certificate's source, or until `threshold`
    // distinct producers built on the block.
    let mut seen: std::collections::BTreeSet<Address> = [block.header.producer].into();
    let enough = |seen: &std::collections::BTreeSet<Address>, next: u64| match &certificate {
        Some(c) => next > c.source_height(),
        None => seen.len() >= threshold,
    };
    while !enough(&seen, next) {
        if headers.len() >= MAX_HEADERS {
            return Err(format!(
                "more than {MAX_HEADERS} headers without irreversibility"
            ));
        }
        let b = read(next)?;
        seen.insert(b.header.producer);
        headers.push(b.signed_header());
        next += 1;
    }
    Ok(PublicHalf {
        seq,
        mmr_size: anchor.statement.mmr_size,
        height,
        anchor: AnchorPart {
            tx: hex::encode(block.txs[index].encode()),
            keys: consortium.keys.clone(),
            quorum: consortium.quorum,
        },
        public: PublicPart {
            block: block.signed_header(),
            tx_path,
            headers,
            certificate,
        },
    })
}
