//! Reading a `SignedProposal`: [`UnpackedProposal::unpack`] decodes every
//! layer (Fabric's `UnpackProposal`) without trusting anything, and
//! [`UnpackedProposal::check_creator`] establishes who signed it (Fabric's
//! `Validate`, plus the `peer/Propose` ACL).
//!
//! Layers: `SignedProposal{proposal_bytes, signature}` → `Proposal{header,
//! payload}` → `Header{channel_header, signature_header}`; the channel
//! header's extension is a `ChaincodeHeaderExtension` naming the chaincode;
//! the payload is a `ChaincodeProposalPayload{input, TransientMap}` whose
//! input is a `ChaincodeInvocationSpec` → `ChaincodeSpec` → `ChaincodeInput`,
//! whose `args[0]` is the function and `args[1..]` its arguments.
//!
//! The transient map is ignored: QCSS has no private data and the runtime
//! offers contracts no transient API. It is never hashed, signed or put in
//! the transaction, exactly as in Fabric.

use std::sync::Arc;

use prost::Message;
use qcss_chaincode::Timestamp;
use qcss_network::channel::Channel;
use qcss_network::envelope::compute_tx_id;
use qcss_network::msp::ValidatedIdentity;
use qcss_network::policy::SignerInfo;
use qcss_network::signing;
use qcss_proto::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use qcss_proto::msp::SerializedIdentity;
use qcss_proto::protos::{
    ChaincodeHeaderExtension, ChaincodeInvocationSpec, ChaincodeProposalPayload, Proposal,
    SignedProposal,
};

use crate::endorser::EndorseError;

/// A decoded, not yet trusted proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct UnpackedProposal {
    /// The exact channel header bytes (hashed into the proposal hash).
    pub channel_header_bytes: Vec<u8>,
    /// The exact signature header bytes (hashed, and the transaction action's header).
    pub signature_header_bytes: Vec<u8>,
    /// The decoded channel header.
    pub channel_header: ChannelHeader,
    /// The decoded signature header.
    pub signature_header: SignatureHeader,
    /// The creator, decoded from the signature header.
    pub creator: SerializedIdentity,
    /// The chaincode named by the header extension.
    pub chaincode: String,
    /// `args[0]`: the transaction function.
    pub function: String,
    /// `args[1..]`: its arguments.
    pub args: Vec<Vec<u8>>,
    /// The channel header's timestamp: the contract's only notion of time.
    pub timestamp: Timestamp,
    /// `ChaincodeProposalPayload{input}` re-encoded without its transient
    /// map: what goes into the transaction and the proposal hash.
    pub payload_for_tx: Vec<u8>,
    /// Fabric's proposal hash (see [`proposal_hash`]).
    pub proposal_hash: [u8; 32],
}

/// Most arguments (function name included) a proposal may carry, and most
/// transient entries: checked on the wire before anything is decoded.
pub(super) const MAX_ARGS: usize = 1024;

impl UnpackedProposal {
    /// Decodes every layer of `signed`, checking only that each decodes and
    /// that the fields the endorser needs are present: a chaincode name, a
    /// nonce, a creator, a timestamp, a function name (`args[0]`, UTF-8).
    /// Checks nothing about trust: see [`UnpackedProposal::check_creator`].
    pub fn unpack(signed: &SignedProposal) -> Result<Self, EndorseError> {
        if signed.proposal_bytes.is_empty() {
            return Err(mal("proposal", "empty proposal bytes"));
        }
        let proposal =
            Proposal::decode(signed.proposal_bytes.as_slice()).map_err(|e| mal("proposal", e))?;
        let (header_bytes, payload_bytes) = (proposal.header, proposal.payload);
        if header_bytes.is_empty() {
            return Err(mal("proposal", "empty header"));
        }
        let header = Header::decode(header_bytes.as_slice()).map_err(|e| mal("header", e))?;
        let channel_header = ChannelHeader::decode(header.channel_header.as_slice())
            .map_err(|e| mal("channel header", e))?;
        let signature_header = SignatureHeader::decode(header.signature_header.as_slice())
            .map_err(|e| mal("signature header", e))?;
        let extension = ChaincodeHeaderExtension::decode(channel_header.extension.as_slice())
            .map_err(|e| mal("chaincode header extension", e))?;
        let chaincode = match extension.chaincode_id {
            Some(id) if !id.name.is_empty() => id.name,
            _ => return Err(mal("chaincode header extension", "names no chaincode")),
        };
        if signature_header.nonce.is_empty() {
            return Err(mal("signature header", "empty nonce"));
        }
        if signature_header.creator.is_empty() {
            return Err(mal("signature header", "empty creator"));
        }
        let creator = SerializedIdentity::decode(signature_header.creator.as_slice())
            .map_err(|e| mal("creator", e))?;
        if creator.mspid.is_empty() || creator.id_bytes.is_empty() {
            return Err(mal("creator", "empty MSP id or certificate"));
        }
        let timestamp = match channel_header.timestamp {
            Some(t) if (0..1_000_000_000).contains(&t.nanos) => Timestamp {
                seconds: t.seconds,
                nanos: t.nanos,
            },
            Some(t) => {
                return Err(mal(
                    "channel header",
                    format!("timestamp nanos {} out of range", t.nanos),
                ));
            }
            None => return Err(mal("channel header", "no timestamp")),
        };
        // Counted on the wire before decoding: 10 M empty args are 20 MB of
        // request but ~600 MB once decoded (issue 15).
        qcss_proto::codec::check_fields(&payload_bytes, MAX_ARGS)
            .map_err(|e| mal("chaincode proposal payload", e))?;
        let cpp = ChaincodeProposalPayload::decode(payload_bytes.as_slice())
            .map_err(|e| mal("chaincode proposal payload", e))?;
        qcss_proto::codec::check_nested_fields(&cpp.input, &[1, 3], MAX_ARGS)
            .map_err(|e| mal("chaincode input", format!("{e} (args and decorations)")))?;
        let cis = ChaincodeInvocationSpec::decode(cpp.input.as_slice())
            .map_err(|e| mal("chaincode invocation spec", e))?;
        let input = cis
            .chaincode_spec
            .ok_or_else(|| mal("chaincode invocation spec", "no chaincode spec"))?
            .input
            .ok_or_else(|| mal("chaincode spec", "no input"))?;
        let mut args = input.args.into_iter();
        let function = args
            .next()
            .ok_or_else(|| mal("args[0]", "no function name"))?;
        let function = String::from_utf8(function).map_err(|_| mal("args[0]", "not UTF-8"))?;
        if function.is_empty() {
            return Err(mal("args[0]", "empty function name"));
        }
        let payload_for_tx = payload_without_transient(cpp.input);
        let proposal_hash = proposal_hash(
            &header.channel_header,
            &header.signature_header,
            &payload_for_tx,
        );
        Ok(UnpackedProposal {
            channel_header_bytes: header.channel_header,
            signature_header_bytes: header.signature_header,
            channel_header,
            signature_header,
            creator,
            chaincode,
            function,
            args: args.collect(),
            timestamp,
            payload_for_tx,
            proposal_hash,
        })
    }

    /// The tx id from the channel header.
    pub fn tx_id(&self) -> &str {
        &self.channel_header.tx_id
    }

    /// The channel the proposal names.
    pub fn channel_id(&self) -> &str {
        &self.channel_header.channel_id
    }

    /// The checks of the channel header against `channel`, in Fabric's
    /// order: header type `ENDORSER_TRANSACTION`, channel, epoch 0, and tx id
    /// = hex(SHA-256(nonce ‖ creator)).
    pub fn check_header(&self, channel: &Channel) -> Result<(), EndorseError> {
        let ch = &self.channel_header;
        if ch.r#type != HeaderType::EndorserTransaction as i32 {
            return Err(EndorseError::WrongHeaderType {
                tx_id: ch.tx_id.clone(),
                header_type: ch.r#type,
            });
        }
        if ch.channel_id != channel.id() {
            return Err(EndorseError::WrongChannel {
                tx_id: ch.tx_id.clone(),
                got: ch.channel_id.clone(),
                want: channel.id().to_owned(),
            });
        }
        if ch.epoch != 0 {
            return Err(EndorseError::malformed(
                "channel header",
                format!("epoch {} is not 0", ch.epoch),
            ));
        }
        let expected = compute_tx_id(&self.signature_header.nonce, &self.signature_header.creator);
        if ch.tx_id != expected {
            return Err(EndorseError::TxIdMismatch {
                got: ch.tx_id.clone(),
                expected,
            });
        }
        Ok(())
    }

    /// Establishes the creator: a member org's MSP accepts its certificate
    /// (chain, validity, CRL, role), its signature over `proposal_bytes`
    /// verifies (low-S), and it satisfies the channel's Writers policy
    /// (Fabric's default ACL for `peer/Propose`).
    pub fn check_creator(
        &self,
        signed: &SignedProposal,
        channel: &Channel,
    ) -> Result<Arc<ValidatedIdentity>, EndorseError> {
        let tx_id = self.tx_id().to_owned();
        let msp_id = &self.creator.mspid;
        let msp = channel
            .msp(msp_id)
            .ok_or_else(|| EndorseError::UnknownMsp {
                tx_id: tx_id.clone(),
                msp_id: msp_id.clone(),
                channel: channel.id().to_owned(),
            })?;
        let creator = msp
            .validate_serialized(msp_id, &self.creator.id_bytes)
            .map_err(|source| EndorseError::CreatorRefused {
                tx_id: tx_id.clone(),
                source,
            })?;
        signing::verify(
            &creator.cert.public_key,
            &signed.proposal_bytes,
            &signed.signature,
        )
        .map_err(|source| EndorseError::BadSignature {
            tx_id: tx_id.clone(),
            creator: format!("{} of {}", creator.cert.common_name, creator.msp_id),
            source,
        })?;
        if !channel.writers_ok(&[SignerInfo::from(&*creator)]) {
            return Err(EndorseError::AccessDenied {
                tx_id,
                creator: creator.cert.common_name.clone(),
                msp_id: creator.msp_id.to_string(),
                role: creator.role,
                policy: channel.config().policies.writers.clone(),
            });
        }
        Ok(creator)
    }
}

/// The channel a signed proposal names, decoding only as far as needed: for
/// routing a proposal to the endorser of its channel.
pub fn proposal_channel(signed: &SignedProposal) -> Result<String, EndorseError> {
    let proposal =
        Proposal::decode(signed.proposal_bytes.as_slice()).map_err(|e| mal("proposal", e))?;
    let header = Header::decode(proposal.header.as_slice()).map_err(|e| mal("header", e))?;
    let ch = ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|e| mal("channel header", e))?;
    Ok(ch.channel_id)
}

fn mal(what: &'static str, reason: impl ToString) -> EndorseError {
    EndorseError::malformed(what, reason)
}

/// `ChaincodeProposalPayload{input}` with no transient map, encoded: the
/// part of the proposal payload that goes to the ledger.
pub(crate) fn payload_without_transient(input: Vec<u8>) -> Vec<u8> {
    ChaincodeProposalPayload {
        input,
        transient_map: Default::default(),
    }
    .encode_to_vec()
}

/// Fabric's proposal hash: the validator's, so endorser and validator
/// cannot disagree on it.
pub use crate::validator::proposal_hash;
