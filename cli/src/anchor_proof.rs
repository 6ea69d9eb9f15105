//! Anchoring proofs: `qcss anchor checkpoint | prove | verify | audit`.
//!
//! A proof file (`AnchorProof`, JSON, version 1) carries everything needed
//! to check offline that a consortium transaction is in the history the
//! consortium anchored on the public chain, step by step:
//!
//! 1. `consortium-tx`: the envelope is leaf `position` of the block's data
//!    Merkle tree (its root is the header's `data_hash`), and the envelope's
//!    channel header names the transaction id; the block hash is recomputed
//!    from the header (Fabric's DER header hash).
//! 2. `mmr`: the block's leaf is in the anchored MMR root (inclusion proof).
//! 3. `anchor-tx`: the public transaction is an anchor of this consortium
//!    carrying that root and size, signed by its sender, with signatures of
//!    a quorum of the registered keys (listed in the proof) over the statement.
//! 4. `public-block`: that transaction is in a public block (Merkle path to
//!    the header's `tx_root`) signed by a producer of the checkpoint's set.
//! 5. `irreversible`: headers linking on from that block, each signed by a
//!    producer of the set, until `threshold` distinct producers have built
//!    on it (BitShares' rule; the checkpoint gives set and threshold).
//!
//! What the proof does not show: that the transaction was *valid* (its
//! validation code is reported as the peer recorded it; validity is a
//! deterministic replay of the ledger), nor that the key set in the proof is
//! the consortium's — the public chain only accepts anchors signed by the
//! registered keys, so step 3 checks the keys the chain enforced; pin them
//! with `--keys` to check that too.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use prost::Message;
use serde::{Deserialize, Serialize};

use qcss_anchor::Hash32;
use qcss_anchor::mmr::InclusionProof;
use qcss_anchor::statement::{MMR, block_leaf};
use qcss_dpos::address::Address;
use qcss_dpos::anchor_proof::{AnchorPart, PublicHalf, PublicPart, anchor_in};
use qcss_dpos::api::{BlockView, ConsortiumView, StatusView};
use qcss_dpos::block::SignedHeader;
use qcss_dpos::hash::merkle_root_from_path;
use qcss_dpos::state::count_signers;
use qcss_dpos::tx::{AnchorTx, SignedTx, TxKind};
use qcss_proto::common::{BlockHeader, ChannelHeader, Envelope, Payload};

use crate::anchor::PeerAnchorStatus;
use crate::wallet::get_json;

/// Largest proof file read (headers of a few rounds plus one envelope).
const MAX_PROOF_BYTES: u64 = 8 * 1024 * 1024;
/// Largest public transaction decoded from a proof.
const MAX_PUBLIC_TX: u32 = 64 * 1024;
/// Most public headers a proof may carry after the anchor block.
const MAX_HEADERS: usize = 4_096;

/// The public chain as a verifier trusts it: chain id, producer set, threshold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// The public chain id.
    pub chain_id: Hash32,
    /// The schedule version the producers belong to.
    pub schedule_version: u64,
    /// The active producers.
    pub producers: Vec<Address>,
    /// Distinct producers that make a block irreversible.
    pub threshold: usize,
    /// Slot length, ms (for times).
    pub slot_ms: u64,
    /// Unix ms of slot 0, if known (from the genesis file).
    #[serde(default)]
    pub genesis_time_ms: Option<u64>,
}

/// The consortium part of a proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConsortiumPart {
    /// The consortium id.
    pub consortium_id: Hash32,
    /// The transaction id.
    pub tx_id: String,
    /// Its validation code as the peer recorded it.
    pub code: String,
    /// The envelope, hex.
    pub envelope: String,
    /// Its position in the block.
    pub position: usize,
    /// Envelopes in the block.
    pub tx_count: usize,
    /// Merkle path (hex siblings, bottom up) to the header's data hash.
    pub data_path: Vec<String>,
    /// The block header.
    pub header: HeaderPart,
}

/// A consortium block header.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HeaderPart {
    /// Block number.
    pub number: u64,
    /// Previous block's hash, hex.
    pub previous_hash: String,
    /// Merkle root of the envelopes, hex.
    pub data_hash: String,
}

/// `AnchorProof` v1.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AnchorProof {
    /// Format version (1).
    pub version: u32,
    /// Step 1.
    pub consortium: ConsortiumPart,
    /// Step 2.
    pub mmr: InclusionProof,
    /// Step 3.
    pub anchor: AnchorPart,
    /// Steps 4 and 5.
    pub public: PublicPart,
}

/// `qcss anchor checkpoint`
#[derive(Debug, Args)]
pub(crate) struct CheckpointArgs {
    /// A public-chain node's API address.
    #[arg(long)]
    pub node: String,
    /// The chain's genesis file, for times in verdicts (optional).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// Where to write it.
    #[arg(long)]
    pub out: PathBuf,
}

/// `qcss anchor prove`
#[derive(Debug, Args)]
pub(crate) struct ProveArgs {
    /// The consortium transaction id.
    pub tx_id: String,
    /// A peer's web address (host:port).
    #[arg(long)]
    pub peer: String,
    /// A public-chain node's API address.
    #[arg(long)]
    pub node: String,
    /// Where to write the proof.
    #[arg(long)]
    pub out: PathBuf,
}

/// `qcss anchor verify`
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The proof file.
    pub proof: PathBuf,
    /// The public chain checkpoint (`qcss anchor checkpoint`).
    #[arg(long)]
    pub public_checkpoint: PathBuf,
    /// The consortium's anchor keys, if you want them pinned (hex or addresses, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub keys: Vec<String>,
}

/// `qcss anchor audit`
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// The consortium id.
    #[arg(long)]
    pub consortium: String,
    /// A public-chain node's API address.
    #[arg(long)]
    pub node: String,
    /// A peer (web address) whose ledger to compare with the anchors.
    #[arg(long)]
    pub peer: Option<String>,
    /// Peers known to hold the anchored history (to name the first
    /// differing block); any peer whose roots match the anchors serves.
    #[arg(long, value_delimiter = ',')]
    pub reference: Vec<String>,
    /// Most anchors walked.
    #[arg(long, default_value_t = 100_000)]
    pub max: u64,
}

pub(crate) fn checkpoint(a: &CheckpointArgs) -> Result<()> {
    let st: StatusView = get_json(&a.node, "/v1/status")?;
    let genesis_time_ms = match &a.genesis {
        Some(p) => {
            let g: qcss_dpos::params::Genesis = serde_json::from_slice(
                &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("{}", p.display()))?;
            if g.chain_id() != st.chain_id {
                bail!("{} is the genesis of another chain", p.display());
            }
            Some(g.genesis_time_ms)
        }
        None => None,
    };
    let mut producers = st.round_order.clone();
    producers.sort();
    let cp = Checkpoint {
        chain_id: st.chain_id,
        schedule_version: st.schedule_version,
        producers,
        threshold: st.irreversible_threshold,
        slot_ms: st.slot_ms,
        genesis_time_ms,
    };
    std::fs::write(&a.out, serde_json::to_vec_pretty(&cp)?)?;
    println!(
        "checkpoint of chain {} (schedule {}, {} producers, threshold {}) written to {}",
        cp.chain_id,
        cp.schedule_version,
        cp.producers.len(),
        cp.threshold,
        a.out.display()
    );
    Ok(())
}

/// What the peer's `/api/anchor/tx` answers.
#[derive(Debug, Deserialize)]
struct PeerTx {
    code: String,
    envelope: String,
    position: usize,
    tx_count: usize,
    data_path: Vec<String>,
    header: HeaderPart,
    mmr: InclusionProof,
}

/// Builds the proof of `tx_id` from a peer and a public-chain node: the
/// node gives the public half over its newest irreversible anchor
/// (`/v1/consortium/{id}/proof`), the peer the transaction's block and its
/// inclusion in the blocks that anchor covers.
pub(crate) fn build_proof(peer: &str, node: &str, tx_id: &str) -> Result<AnchorProof> {
    let ps: PeerAnchorStatus = get_json(peer, "/api/anchor/status")?;
    let half: PublicHalf = get_json(node, &format!("/v1/consortium/{}/proof", ps.consortium_id))
        .context("the newest irreversible anchor on the public chain")?;
    let size = half.mmr_size;
    let tx: PeerTx = get_json(
        peer,
        &format!(
            "/api/anchor/tx?id={}&size={size}",
            crate::epcis::percent_encode(tx_id),
        ),
    )
    .with_context(|| {
        format!(
            "transaction {tx_id:.80} in the first {size} blocks (anchored and irreversible so far); the next anchor is due within the bridge's cadence"
        )
    })?;
    Ok(AnchorProof {
        version: 1,
        consortium: ConsortiumPart {
            consortium_id: ps.consortium_id,
            tx_id: tx_id.to_owned(),
            code: tx.code,
            envelope: tx.envelope,
            position: tx.position,
            tx_count: tx.tx_count,
            data_path: tx.data_path,
            header: tx.header,
        },
        mmr: tx.mmr,
        anchor: half.anchor,
        public: half.public,
    })
}

/// Public block `height`, the position in it of `consortium`'s anchor
/// `seq`, and that anchor; an error if the block does not hold it.
fn anchor_at(
    node: &str,
    height: u64,
    consortium: &Hash32,
    seq: u64,
) -> Result<(BlockView, usize, AnchorTx)> {
    let b: BlockView = get_json(node, &format!("/v1/block/{height}"))?;
    let Some((i, x)) = anchor_in(&b.block, consortium, seq) else {
        bail!("public block {height} should hold anchor seq {seq} and does not");
    };
    Ok((b, i, x))
}

pub(crate) fn prove(a: &ProveArgs) -> Result<()> {
    let proof = build_proof(&a.peer, &a.node, &a.tx_id)?;
    let bytes = serde_json::to_vec_pretty(&proof)?;
    std::fs::write(&a.out, &bytes).with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "proof of {} written to {} ({} bytes): consortium block {}, anchored in public block {}",
        a.tx_id,
        a.out.display(),
        bytes.len(),
        proof.consortium.header.number,
        proof.public.block.header.height
    );
    Ok(())
}

/// A verified proof's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Consortium block number.
    pub block: u64,
    /// The transaction's channel-header time (unix seconds), if present.
    pub tx_time: Option<i64>,
    /// Anchor seq.
    pub seq: u64,
    /// Blocks covered by the anchor.
    pub mmr_size: u64,
    /// Public block height and slot.
    pub public_height: u64,
    /// Its slot.
    pub public_slot: u64,
    /// The block at which it is irreversible.
    pub irreversible_height: u64,
    /// Its slot.
    pub irreversible_slot: u64,
    /// Shown irreversible by finality votes (a certificate), not by the
    /// blocks of distinct producers.
    pub by_votes: bool,
}

/// Why a proof failed: the step, and what broke.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("step {step} failed: {reason}")]
pub(crate) struct ProofFailure {
    /// `consortium-tx`, `mmr`, `anchor-tx`, `public-block` or `irreversible`.
    pub step: &'static str,
    /// What was wrong.
    pub reason: String,
}

fn fail(step: &'static str, reason: impl Into<String>) -> ProofFailure {
    ProofFailure {
        step,
        reason: reason.into(),
    }
}

fn hex32(step: &'static str, what: &str, text: &str) -> Result<[u8; 32], ProofFailure> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| fail(step, format!("{what} is not 32 bytes of hex")))?;
    Ok(out)
}

/// Checks every step of `p` against `cp` (and `pinned` keys, if any).
pub(crate) fn verify_proof(
    p: &AnchorProof,
    cp: &Checkpoint,
    pinned: &[Address],
) -> Result<Verdict, ProofFailure> {
    if p.version != 1 {
        return Err(fail(
            "format",
            format!("version {} (this tool reads 1)", p.version),
        ));
    }
    // 1. The transaction in its consortium block.
    const S1: &str = "consortium-tx";
    let c = &p.consortium;
    let envelope = hex::decode(&c.envelope).map_err(|_| fail(S1, "envelope is not hex"))?;
    let header = BlockHeader {
        number: c.header.number,
        previous_hash: hex::decode(&c.header.previous_hash)
            .map_err(|_| fail(S1, "previous_hash is not hex"))?,
        data_hash: hex32(S1, "data_hash", &c.header.data_hash)?.to_vec(),
    };
    let siblings = c
        .data_path
        .iter()
        .map(|s| hex32(S1, "a data path hash", s))
        .collect::<Result<Vec<_>, _>>()?;
    if siblings.len() > 64 {
        return Err(fail(S1, "data path longer than 64"));
    }
    let data_root: [u8; 32] = hex32(S1, "data_hash", &c.header.data_hash)?;
    if !qcss_proto::hash::verify_merkle_proof(
        &data_root,
        &envelope,
        c.position,
        c.tx_count,
        &qcss_proto::hash::MerkleProof { siblings },
    ) {
        return Err(fail(S1, "the envelope is not in the block's data hash"));
    }
    let ch = Envelope::decode(envelope.as_slice())
        .ok()
        .and_then(|e| Payload::decode(e.payload.as_slice()).ok())
        .and_then(|p| p.header)
        .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())
        .ok_or_else(|| fail(S1, "the envelope has no channel header"))?;
    if ch.tx_id != c.tx_id {
        return Err(fail(
            S1,
            format!(
                "the envelope is transaction {:.80}, not {:.80}",
                ch.tx_id, c.tx_id
            ),
        ));
    }
    let block_hash = Hash32(qcss_proto::hash::block_header_hash(&header));
    // 3 first (it gives the anchored root), then 2.
    const S3: &str = "anchor-tx";
    let tx_bytes = hex::decode(&p.anchor.tx).map_err(|_| fail(S3, "tx is not hex"))?;
    let stx = SignedTx::decode(&tx_bytes, MAX_PUBLIC_TX).map_err(|e| fail(S3, e.to_string()))?;
    if !stx.signature_ok() {
        return Err(fail(S3, "the sender's signature does not verify"));
    }
    if stx.tx.chain_id != cp.chain_id {
        return Err(fail(S3, "the anchor is for another public chain"));
    }
    let TxKind::Anchor(anchor) = &stx.tx.kind else {
        return Err(fail(S3, "the public transaction is not an anchor"));
    };
    let st = &anchor.statement;
    if st.consortium_id != c.consortium_id {
        return Err(fail(S3, "the anchor is for another consortium"));
    }
    if !pinned.is_empty() && pinned != p.anchor.keys.as_slice() {
        return Err(fail(S3, "the proof's keys are not the pinned keys"));
    }
    let got = count_signers(&p.anchor.keys, &st.digest(), &anchor.sigs);
    if got < usize::from(p.anchor.quorum) || usize::from(p.anchor.quorum) * 2 <= p.anchor.keys.len()
    {
        return Err(fail(
            S3,
            format!(
                "{got} valid signatures, quorum {} of {}",
                p.anchor.quorum,
                p.anchor.keys.len()
            ),
        ));
    }
    // 2. The block in the anchored MMR.
    const S2: &str = "mmr";
    if p.mmr.leaf_index != c.header.number || p.mmr.size != st.mmr_size {
        return Err(fail(S2, "the inclusion proof is for another block or size"));
    }
    p.mmr
        .verify(
            &MMR,
            &block_leaf(c.header.number, &block_hash),
            &st.mmr_root,
        )
        .map_err(|e| fail(S2, e.to_string()))?;
    // 4. The anchor in its public block.
    const S4: &str = "public-block";
    let b = &p.public.block;
    if b.header.chain_id != cp.chain_id {
        return Err(fail(S4, "the block is from another chain"));
    }
    if merkle_root_from_path(&stx.id(), &p.public.tx_path) != Some(b.header.tx_root) {
        return Err(fail(
            S4,
            "the anchor transaction is not in the block's tx_root",
        ));
    }
    let in_set = |h: &SignedHeader| {
        h.header.schedule_version == cp.schedule_version
            && cp.producers.binary_search(&h.header.producer).is_ok()
            && h.signature_ok()
    };
    if !in_set(b) {
        return Err(fail(
            S4,
            "the block is not signed by a producer of the checkpoint's set",
        ));
    }
    // 5. Irreversibility.
    const S5: &str = "irreversible";
    if p.public.headers.len() > MAX_HEADERS {
        return Err(fail(S5, "too many headers"));
    }
    let mut seen: std::collections::BTreeSet<Address> = [b.header.producer].into();
    let mut prev = b.header.id();
    let mut height = b.header.height;
    let mut last = b;
    for h in &p.public.headers {
        if h.header.prev_id != prev || h.header.height != height + 1 {
            return Err(fail(
                S5,
                format!("header {} does not follow {height}", h.header.height),
            ));
        }
        if !in_set(h) {
            return Err(fail(
                S5,
                format!(
                    "header {} is not signed by a producer of the set",
                    h.header.height
                ),
            ));
        }
        seen.insert(h.header.producer);
        prev = h.header.id();
        height = h.header.height;
        last = h;
    }
    // The block whose signing showed it irreversible: the last header, or
    // the certificate's target.
    let final_at = p
        .public
        .certificate
        .as_ref()
        .map_or(&last.header, |c| &c.target.header);
    match &p.public.certificate {
        // Irreversible by finality votes: a quorum link from the last block
        // to its child.
        Some(c) => c
            .verify(
                (last.header.height, &last.header.id()),
                &cp.producers,
                cp.schedule_version,
                cp.threshold,
            )
            .map_err(|e| fail(S5, e))?,
        // Irreversible by production: distinct producers built on it.
        None if seen.len() < cp.threshold => {
            return Err(fail(
                S5,
                format!(
                    "{} distinct producers built on the block; {} needed",
                    seen.len(),
                    cp.threshold
                ),
            ));
        }
        None => {}
    }
    Ok(Verdict {
        block: c.header.number,
        tx_time: ch.timestamp.map(|t| t.seconds),
        seq: st.seq,
        mmr_size: st.mmr_size,
        public_height: b.header.height,
        public_slot: b.header.slot,
        irreversible_height: final_at.height,
        irreversible_slot: final_at.slot,
        by_votes: p.public.certificate.is_some(),
    })
}

fn read_json<T: serde::de::DeserializeOwned>(p: &std::path::Path) -> Result<T> {
    use std::io::Read;
    let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut buf = Vec::new();
    f.take(MAX_PROOF_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_PROOF_BYTES {
        bail!("{} is over {MAX_PROOF_BYTES} bytes", p.display());
    }
    serde_json::from_slice(&buf)
        .with_context(|| format!("{} is not a valid file of its kind", p.display()))
}

fn time_of(cp: &Checkpoint, slot: u64) -> String {
    match cp.genesis_time_ms {
        Some(g) => crate::epcis::rfc3339(((g + slot * cp.slot_ms) / 1000) as i64, "Z"),
        None => format!("slot {slot}"),
    }
}

pub(crate) fn verify_cmd(a: &VerifyArgs) -> Result<()> {
    let started = Instant::now();
    let proof: AnchorProof = read_json(&a.proof)?;
    let cp: Checkpoint = read_json(&a.public_checkpoint)?;
    let pinned = a
        .keys
        .iter()
        .map(|k| {
            k.parse::<Address>()
                .or_else(|_| {
                    let mut b = [0u8; 32];
                    hex::decode_to_slice(k, &mut b).map(|()| Address(b))
                })
                .map_err(|_| anyhow!("--keys: {k:.80} is neither an address nor 64 hex digits"))
        })
        .collect::<Result<Vec<_>>>()?;
    match verify_proof(&proof, &cp, &pinned) {
        Ok(v) => {
            println!(
                "VALID: transaction {} ({}) is in consortium block {}{}, anchored as seq {} (blocks 0…{}) in public block {} at {}, irreversible at block {} ({}) by {}; checked in {} ms",
                proof.consortium.tx_id,
                proof.consortium.code,
                v.block,
                v.tx_time
                    .map(|t| format!(" (written {})", crate::epcis::rfc3339(t, "Z")))
                    .unwrap_or_default(),
                v.seq,
                v.mmr_size - 1,
                v.public_height,
                time_of(&cp, v.public_slot),
                v.irreversible_height,
                time_of(&cp, v.irreversible_slot),
                if v.by_votes {
                    "finality votes"
                } else {
                    "the blocks of distinct producers"
                },
                started.elapsed().as_millis()
            );
            Ok(())
        }
        Err(e) => Err(anyhow!("INVALID: {e}")),
    }
}

/// One anchor found by walking the chain.
struct Walked {
    seq: u64,
    size: u64,
    root: Hash32,
    height: u64,
}

pub(crate) fn audit(a: &AuditArgs) -> Result<()> {
    let consortium: Hash32 = a
        .consortium
        .trim()
        .parse()
        .map_err(|_| anyhow!("--consortium must be 64 hex digits"))?;
    let view: ConsortiumView = get_json(&a.node, &format!("/v1/consortium/{consortium}"))?;
    let Some(last) = view.consortium.last.clone() else {
        println!("consortium {consortium}: no anchors yet");
        return Ok(());
    };
    // Walk back through prev_anchor_height, re-checking every anchor.
    let mut walked: Vec<Walked> = Vec::new();
    let mut height = last.height;
    let mut want_seq = last.seq;
    let mut later: Option<qcss_anchor::statement::Statement> = None;
    loop {
        let (_, _, x) = anchor_at(&a.node, height, &consortium, want_seq)?;
        x.consistency
            .verify(&MMR, &x.statement.prev_root, &x.statement.mmr_root)
            .map_err(|e| anyhow!("anchor seq {want_seq}: consistency proof fails: {e}"))?;
        // Each anchor names the one before it as its previous (size, root).
        if let Some(later) = &later
            && (later.prev_size != x.statement.mmr_size || later.prev_root != x.statement.mmr_root)
        {
            bail!(
                "anchor seq {} does not extend anchor seq {want_seq}",
                want_seq + 1
            );
        }
        if want_seq == 0
            && (x.statement.prev_size != 0 || x.statement.prev_root != MMR.empty_root())
        {
            bail!("anchor seq 0 does not start from the empty history");
        }
        later = Some(x.statement.clone());
        walked.push(Walked {
            seq: x.statement.seq,
            size: x.statement.mmr_size,
            root: x.statement.mmr_root,
            height,
        });
        if want_seq == 0 || walked.len() as u64 >= a.max {
            break;
        }
        want_seq -= 1;
        height = x.prev_anchor_height;
    }
    walked.reverse();
    println!(
        "consortium {consortium}: {} anchors (seq {}…{}), every consistency proof holds; {} blocks anchored",
        walked.len(),
        walked.first().map_or(0, |w| w.seq),
        last.seq,
        last.mmr_size
    );
    let Some(peer) = &a.peer else {
        return Ok(());
    };
    // Compare the peer's roots at every anchored size.
    let root_at = |p: &str, size: u64| -> Result<Hash32> {
        #[derive(Deserialize)]
        struct R {
            root: Hash32,
        }
        Ok(get_json::<R>(p, &format!("/api/anchor/root?size={size}"))?.root)
    };
    let mut prev_size = 0;
    for w in &walked {
        let mine = root_at(peer, w.size)?;
        if mine == w.root {
            prev_size = w.size;
            continue;
        }
        // The first differing block lies in [prev_size, w.size). With a
        // reference peer that matches the anchor, binary search the prefix
        // roots (once two histories differ, every longer prefix differs).
        let reference = a
            .reference
            .iter()
            .find(|r| root_at(r, w.size).ok() == Some(w.root));
        let Some(reference) = reference else {
            bail!(
                "DIFFERS: the peer's history differs from anchor seq {} (public block {}) in blocks {}…{}; give --reference PEER to name the block",
                w.seq,
                w.height,
                prev_size,
                w.size - 1
            );
        };
        let (mut lo, mut hi) = (prev_size, w.size); // prefix lo agrees, prefix hi differs
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if root_at(peer, mid)? == root_at(reference, mid)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        bail!(
            "DIFFERS: block {} is the first whose hash differs from what was anchored (anchor seq {}, public block {})",
            hi - 1,
            w.seq,
            w.height
        );
    }
    println!("the peer's ledger matches every anchor");
    Ok(())
}
