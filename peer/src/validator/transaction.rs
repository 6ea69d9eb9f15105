//! The checks of one transaction that need nothing but its own bytes, the
//! channel and the chaincode policies — decoding, creator and signature, tx
//! id, structure, endorsements and the chaincode policy — so they run on
//! every core at once (see `validate_block_with`).
//!
//! In Fabric's order (`ValidateTransaction`, then the dispatcher and VSCC):
//!
//! | check | code |
//! |---|---|
//! | envelope is empty | `NIL_ENVELOPE` |
//! | envelope or payload does not decode | `BAD_PAYLOAD` |
//! | no header; channel or signature header does not decode; epoch ≠ 0 | `BAD_COMMON_HEADER` |
//! | channel header names another channel | `TARGET_CHAIN_NOT_FOUND` |
//! | type is neither `ENDORSER_TRANSACTION` nor `CONFIG` | `UNKNOWN_TX_TYPE` |
//! | `CONFIG`: not alone in its block, or not a configuration of this channel with the next sequence (the current one in block 0) | `INVALID_CONFIG_TRANSACTION` |
//! | empty nonce or creator | `BAD_COMMON_HEADER` |
//! | creator unknown to the channel, refused by its MSP (chain, expiry, CRL, role), or signature wrong | `BAD_CREATOR_SIGNATURE` |
//! | tx id ≠ hex(SHA-256(nonce ‖ creator)) | `BAD_PROPOSAL_TXID` |
//! | `Transaction` does not decode, has ≠ 1 action, action header ≠ the envelope's signature header, `ChaincodeActionPayload` or `ProposalResponsePayload` do not decode, proposal hash does not match | `INVALID_ENDORSER_TRANSACTION` |
//! | *(duplicate tx id: checked in block order afterwards)* | `DUPLICATE_TXID` |
//! | `ChaincodeHeaderExtension` does not decode or names no chaincode | `BAD_HEADER_EXTENSION` |
//! | `ChaincodeAction` does not decode or names no chaincode | `BAD_RESPONSE_PAYLOAD` |
//! | action and header name different chaincodes | `INVALID_OTHER_REASON` |
//! | read-write set refused (see `rwset.rs`) | `BAD_RWSET` / `INVALID_WRITESET` |
//! | invoked or written chaincode not defined | `INVALID_CHAINCODE` |
//! | no endorsement, or valid endorsers do not satisfy a policy | `ENDORSEMENT_POLICY_FAILURE` |
//! | a write the provider's key rule forbids (e.g. a malformed `_lifecycle` write) | `INVALID_WRITESET` |
//! | a key rule's endorsement or creator policy not satisfied (e.g. an org's lifecycle approval not endorsed by its peer and made by its admin) | `ENDORSEMENT_POLICY_FAILURE` |
//!
//! `CONFIG` transactions are made by the ordering service (block 0 is one,
//! unsigned; later ones carry the admins' signed update): they are trusted
//! through the block's orderer signature, so their creator is not checked
//! and the admins' signatures are not re-checked here; valid ones change no
//! state. Applying a new configuration to the live `Channel` is the
//! committer's caller's job.

use std::time::{Duration, Instant};

use prost::Message;
use qcss_network::block::config_from_block;
use qcss_network::channel::Channel;
use qcss_network::envelope::compute_tx_id;
use qcss_network::policy::SignerInfo;
use qcss_network::signing;
use qcss_proto::common::{Block, ChannelHeader, Envelope, HeaderType, Payload, SignatureHeader};
use qcss_proto::msp::SerializedIdentity;
use qcss_proto::protos::{
    ChaincodeActionPayload, ChaincodeEndorsedAction, ProposalResponsePayload, Transaction,
    TxValidationCode as Code,
};

use crate::ledger::TxUpdate;
use crate::validator::OwnSignatures;
use crate::validator::endorsement::{self, Endorsed};
use crate::validator::policy::PolicyProvider;
use crate::validator::{Rejection, fail};

/// What the parallel checks found about one envelope.
#[derive(Debug)]
pub(crate) enum Checked {
    /// Refused before the duplicate check (decoding, header, creator,
    /// signature, tx id, structure).
    Early(Rejection),
    /// A well-formed configuration transaction.
    Config,
    /// An endorser transaction with a good creator and structure; whether
    /// its endorsements hold is in [`Endorsed::outcome`].
    Endorser(Box<Endorsed>),
}

/// One envelope after the parallel checks: its update (tx id and timestamp
/// read exactly as the ledger reads them; code not yet final) and findings.
#[derive(Debug)]
pub(crate) struct CheckedTx {
    pub(crate) update: TxUpdate,
    pub(crate) checked: Checked,
}

/// What the checks need besides the envelope.
pub(crate) struct Checker<'a, P: PolicyProvider + ?Sized> {
    pub(crate) channel: &'a Channel,
    pub(crate) policies: &'a P,
    /// The block (a config transaction must be alone in it).
    pub(crate) block: &'a Block,
    /// The time its ordering leader stamped on it, ms since the epoch
    /// ([`qcss_network::block::block_time_ms`]); None for older blocks.
    pub(crate) time_ms: Option<u64>,
    /// Endorsements this peer signed itself (not verified again).
    pub(crate) own: Option<&'a OwnSignatures>,
}

/// Where a worker's signature checks go, and the time they took.
///
/// Eager (the reference): every signature is verified when met. Batching:
/// Ed25519 signatures are queued and provisionally accepted, and the worker
/// checks the whole queue at the end of its share (`check_all` in `mod.rs`);
/// if that batch fails, every transaction that queued a signature is
/// checked again eagerly, so the verdicts are exactly the eager ones.
#[derive(Debug, Default)]
pub(crate) struct SigClock {
    /// Time spent validating identities and verifying signatures.
    pub(crate) spent: Duration,
    /// The queue, when batching.
    pub(crate) batch: Option<signing::Ed25519Batch>,
    /// Whether the transaction being checked queued a signature.
    pub(crate) queued: bool,
}

impl SigClock {
    /// Batches Ed25519 signatures.
    pub(crate) fn batching() -> Self {
        SigClock {
            batch: Some(signing::Ed25519Batch::new()),
            ..Self::default()
        }
    }

    pub(crate) fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.spent += started.elapsed();
        out
    }

    /// Verifies `sig` now, or queues it if this clock batches and the key
    /// is Ed25519 (a key or signature of the wrong length is refused at once).
    pub(crate) fn verify(
        &mut self,
        public_key: &[u8],
        msg: &[u8],
        sig: &[u8],
    ) -> Result<(), signing::CryptoError> {
        let started = Instant::now();
        let out = match &mut self.batch {
            Some(batch)
                if signing::KeyKind::of_public_key(public_key)
                    == Some(signing::KeyKind::Ed25519) =>
            {
                let queued = batch.queue(public_key, msg, sig);
                self.queued |= queued.is_ok();
                queued
            }
            _ => signing::verify(public_key, msg, sig),
        };
        self.spent += started.elapsed();
        out
    }
}

impl<P: PolicyProvider + ?Sized> Checker<'_, P> {
    /// Checks one envelope.
    pub(crate) fn check(&self, envelope: &[u8], clock: &mut SigClock) -> CheckedTx {
        let update = TxUpdate::for_envelope(envelope, Code::NotValidated);
        let checked = match self.check_inner(envelope, clock) {
            Ok(c) => c,
            Err(r) => Checked::Early(r),
        };
        CheckedTx { update, checked }
    }

    fn check_inner(&self, bytes: &[u8], clock: &mut SigClock) -> Result<Checked, Rejection> {
        if bytes.is_empty() {
            return fail(Code::NilEnvelope, "empty envelope");
        }
        let env = Envelope::decode(bytes)
            .map_err(|e| Rejection::new(Code::BadPayload, format!("envelope: {e}")))?;
        let payload = Payload::decode(env.payload.as_slice())
            .map_err(|e| Rejection::new(Code::BadPayload, format!("payload: {e}")))?;
        let header = payload
            .header
            .as_ref()
            .ok_or_else(|| Rejection::new(Code::BadCommonHeader, "payload has no header"))?;
        let ch = ChannelHeader::decode(header.channel_header.as_slice())
            .map_err(|e| Rejection::new(Code::BadCommonHeader, format!("channel header: {e}")))?;
        let sh = SignatureHeader::decode(header.signature_header.as_slice())
            .map_err(|e| Rejection::new(Code::BadCommonHeader, format!("signature header: {e}")))?;
        if ch.epoch != 0 {
            return fail(
                Code::BadCommonHeader,
                format!("epoch {} is not 0", ch.epoch),
            );
        }
        if ch.channel_id != self.channel.id() {
            return fail(
                Code::TargetChainNotFound,
                format!(
                    "for channel {:?}, not {:?}",
                    ch.channel_id,
                    self.channel.id()
                ),
            );
        }
        match HeaderType::try_from(ch.r#type) {
            Ok(HeaderType::EndorserTransaction) => {}
            Ok(HeaderType::Config) => return self.check_config(),
            _ => return fail(Code::UnknownTxType, format!("header type {}", ch.r#type)),
        }
        if sh.nonce.is_empty() || sh.creator.is_empty() {
            return fail(Code::BadCommonHeader, "empty nonce or creator");
        }
        // The transaction's time, which contracts read as "now", must be
        // within the channel's window of the block's orderer-stamped time.
        if let Some(block_ms) = self.time_ms {
            let secs = ch.timestamp.as_ref().map_or(0, |t| t.seconds);
            self.channel
                .config()
                .batch
                .check_tx_time(secs, block_ms)
                .map_err(|why| Rejection::new(Code::BadCommonHeader, why))?;
        }
        let creator = self.check_creator(&sh.creator, &env.payload, &env.signature, clock)?;
        if compute_tx_id(&sh.nonce, &sh.creator) != ch.tx_id {
            return fail(
                Code::BadProposalTxid,
                format!("tx id {:?} is not SHA-256(nonce ‖ creator)", ch.tx_id),
            );
        }
        let (action, prp) = endorsed_action(
            &payload.data,
            &header.channel_header,
            &header.signature_header,
        )?;
        Ok(Checked::Endorser(Box::new(endorsement::check(
            self, &ch, &creator, &action, &prp, clock,
        ))))
    }

    /// The creator is a valid member of a channel org and signed the
    /// payload; returns who it is.
    fn check_creator(
        &self,
        creator: &[u8],
        payload: &[u8],
        signature: &[u8],
        clock: &mut SigClock,
    ) -> Result<SignerInfo, Rejection> {
        let bad = |why: String| Rejection::new(Code::BadCreatorSignature, why);
        let id = SerializedIdentity::decode(creator).map_err(|e| bad(format!("creator: {e}")))?;
        let msp = self.channel.msp(&id.mspid).ok_or_else(|| {
            bad(format!(
                "creator MSP {:?} is not a channel member",
                id.mspid
            ))
        })?;
        let v = clock.time(|| {
            msp.validate_serialized(&id.mspid, &id.id_bytes)
                .map_err(|e| bad(format!("creator refused: {e}")))
        })?;
        clock
            .verify(&v.cert.public_key, payload, signature)
            .map_err(|e| bad(format!("creator signature: {e}")))?;
        Ok(SignerInfo::from(&*v))
    }

    /// A config block's one CONFIG envelope: its configuration (read as
    /// `qcss_network::block::config_from_block` reads it) is this channel's —
    /// the current one in block 0, the next sequence in later blocks.
    fn check_config(&self) -> Result<Checked, Rejection> {
        let bad = |why: String| Rejection::new(Code::InvalidConfigTransaction, why);
        if self.block.data.as_ref().map_or(0, |d| d.data.len()) != 1 {
            return Err(bad("a config transaction must be alone in its block".into()));
        }
        let config = config_from_block(self.block).map_err(|e| bad(e.to_string()))?;
        let current = self.channel.config();
        if config.channel_id != current.channel_id {
            return Err(bad(format!("configures channel {:?}", config.channel_id)));
        }
        let number = self.block.header.as_ref().map_or(0, |h| h.number);
        let expected = if number == 0 {
            current.sequence
        } else {
            current.sequence + 1
        };
        if config.sequence != expected {
            return Err(bad(format!(
                "configuration sequence {} where {expected} was expected",
                config.sequence
            )));
        }
        Ok(Checked::Config)
    }
}

/// Fabric's `validateEndorserTransaction`: exactly one action, whose header
/// is the envelope's signature header, whose proposal response payload
/// carries the hash of the proposal this transaction was made from.
pub(crate) fn endorsed_action(
    data: &[u8],
    channel_header: &[u8],
    signature_header: &[u8],
) -> Result<(ChaincodeEndorsedAction, ProposalResponsePayload), Rejection> {
    let bad = |why: String| Rejection::new(Code::InvalidEndorserTransaction, why);
    let tx = Transaction::decode(data).map_err(|e| bad(format!("transaction: {e}")))?;
    // Fabric has accepted exactly one action per transaction since v1.
    let [action] = tx.actions.as_slice() else {
        return Err(bad(format!(
            "{} actions; exactly one is supported",
            tx.actions.len()
        )));
    };
    if action.header != signature_header {
        return Err(bad(
            "the action's signature header differs from the envelope's".into(),
        ));
    }
    let cap = ChaincodeActionPayload::decode(action.payload.as_slice())
        .map_err(|e| bad(format!("chaincode action payload: {e}")))?;
    let endorsed = cap
        .action
        .ok_or_else(|| bad("chaincode action payload has no action".into()))?;
    let prp = ProposalResponsePayload::decode(endorsed.proposal_response_payload.as_slice())
        .map_err(|e| bad(format!("proposal response payload: {e}")))?;
    let hash = proposal_hash(
        channel_header,
        signature_header,
        &cap.chaincode_proposal_payload,
    );
    if prp.proposal_hash != hash {
        return Err(bad(
            "proposal hash does not match the transaction's header and proposal payload".into(),
        ));
    }
    Ok((endorsed, prp))
}

/// Fabric's proposal hash, as its endorser computes it (`UnpackProposal`)
/// and its validator checks it (`GetProposalHash2`): SHA-256(channel header
/// bytes ‖ signature header bytes ‖ `ChaincodeProposalPayload` bytes without
/// the transient map). `GetProposalHash1` gives the same value. Used by both
/// the endorser and the validator.
pub fn proposal_hash(
    channel_header: &[u8],
    signature_header: &[u8],
    chaincode_proposal_payload: &[u8],
) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(channel_header);
    ctx.update(signature_header);
    ctx.update(chaincode_proposal_payload);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}
