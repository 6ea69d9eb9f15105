//! The client side of endorsement, used by the Gateway, the CLI and tests:
//! [`build_proposal`] (Fabric's `CreateChaincodeProposal` + `SignProposal`)
//! and [`assemble_transaction`] (Fabric's `CreateSignedTx`), with
//! [`prepare_transaction`] for the Gateway, which returns the transaction
//! unsigned for the client to sign.

use std::collections::BTreeMap;

use prost::Message;
use qcss_chaincode::Timestamp;
use qcss_network::SigningIdentity;
use qcss_network::envelope::{compute_tx_id, creator_bytes, new_nonce};
use qcss_network::signing::CryptoError;
use qcss_proto::common::{ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader};
use qcss_proto::protos::{
    ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeHeaderExtension, ChaincodeId,
    ChaincodeInput, ChaincodeInvocationSpec, ChaincodeProposalPayload, ChaincodeSpec, Proposal,
    ProposalResponse, SignedProposal, Transaction, TransactionAction,
    chaincode_spec::Type as ChaincodeType,
};

use crate::endorser::proposal::payload_without_transient;

/// Optional parts of a proposal. The defaults are what a client wants: a
/// fresh nonce, the current time, no transient data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProposalOptions {
    /// Transient data (sent to the endorser, never hashed into the
    /// transaction; QCSS contracts cannot read it).
    pub transient: BTreeMap<String, Vec<u8>>,
    /// The nonce; `None` = 24 fresh random bytes.
    pub nonce: Option<Vec<u8>>,
    /// The timestamp; `None` = now.
    pub timestamp: Option<Timestamp>,
}

/// Why a transaction could not be assembled from endorsements.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssembleError {
    /// The proposal does not decode.
    #[error("malformed proposal: {what}: {reason}")]
    Malformed {
        /// The layer (`proposal`, `header`, `signature header`, ...).
        what: &'static str,
        /// The decode error.
        reason: String,
    },
    /// The signer is not the proposal's creator (the transaction must be
    /// signed by whoever signed the proposal).
    #[error("the signer ({signer}) is not the proposal's creator")]
    NotTheCreator {
        /// The signer's MSP id and certificate CN.
        signer: String,
    },
    /// No responses were given.
    #[error("no proposal responses to assemble")]
    NoResponses,
    /// A response is not a success (status outside 200..400).
    #[error("proposal response {index} was not successful: status {status}: {message}")]
    Failed {
        /// Its position in the list.
        index: usize,
        /// Its status.
        status: i32,
        /// Its message.
        message: String,
    },
    /// A successful response carries no endorsement.
    #[error("proposal response {index} carries no endorsement")]
    NotEndorsed {
        /// Its position in the list.
        index: usize,
    },
    /// A response's payload differs from the first one's: the endorsers
    /// computed different results (different state, or a faulty peer).
    #[error(
        "proposal response payloads differ: response {index} does not match response 0 (the endorsers computed different results)"
    )]
    PayloadMismatch {
        /// The position of the first response that differs.
        index: usize,
    },
    /// Signing failed.
    #[error("signing the transaction: {0}")]
    Sign(#[from] CryptoError),
}

/// A signed proposal by `signer` on `channel` to run `chaincode` with `args`
/// (`args[0]` is the function, Fabric's convention), with a fresh nonce and
/// the current time; returns it with its tx id.
pub fn build_proposal<A: AsRef<[u8]>>(
    signer: &SigningIdentity,
    channel: &str,
    chaincode: &str,
    args: &[A],
) -> Result<(SignedProposal, String), CryptoError> {
    build_proposal_with(
        signer,
        channel,
        chaincode,
        args,
        &ProposalOptions::default(),
    )
}

/// [`build_proposal`] with explicit transient data, nonce or timestamp.
pub fn build_proposal_with<A: AsRef<[u8]>>(
    signer: &SigningIdentity,
    channel: &str,
    chaincode: &str,
    args: &[A],
    options: &ProposalOptions,
) -> Result<(SignedProposal, String), CryptoError> {
    let nonce = match &options.nonce {
        Some(n) => n.clone(),
        None => new_nonce()?,
    };
    let timestamp = options.timestamp.unwrap_or_else(now);
    let creator = creator_bytes(signer);
    let tx_id = compute_tx_id(&nonce, &creator);
    let chaincode_id = ChaincodeId {
        path: String::new(),
        name: chaincode.to_owned(),
        version: String::new(),
    };
    let channel_header = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        version: 0,
        timestamp: Some(prost_types::Timestamp {
            seconds: timestamp.seconds,
            nanos: timestamp.nanos,
        }),
        channel_id: channel.to_owned(),
        tx_id: tx_id.clone(),
        epoch: 0,
        extension: ChaincodeHeaderExtension {
            chaincode_id: Some(chaincode_id.clone()),
        }
        .encode_to_vec(),
        tls_cert_hash: Vec::new(),
    };
    let header = Header {
        channel_header: channel_header.encode_to_vec(),
        signature_header: SignatureHeader { creator, nonce }.encode_to_vec(),
    };
    let input = ChaincodeInvocationSpec {
        chaincode_spec: Some(ChaincodeSpec {
            r#type: ChaincodeType::Undefined as i32,
            chaincode_id: Some(chaincode_id),
            input: Some(ChaincodeInput {
                args: args.iter().map(|a| a.as_ref().to_vec()).collect(),
                decorations: Default::default(),
                is_init: false,
            }),
            timeout: 0,
        }),
    }
    .encode_to_vec();
    let payload = ChaincodeProposalPayload {
        input,
        transient_map: options
            .transient
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let proposal_bytes = Proposal {
        header: header.encode_to_vec(),
        payload: payload.encode_to_vec(),
        extension: Vec::new(),
    }
    .encode_to_vec();
    let signature = signer.sign(&proposal_bytes)?;
    Ok((
        SignedProposal {
            proposal_bytes,
            signature,
        },
        tx_id,
    ))
}

fn now() -> Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
        // Always below 10^9.
        nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
    }
}

/// The transaction made of `proposal` and its endorsed `responses`, as an
/// envelope whose signature is left empty for the creator to fill in
/// (signing exactly `payload`): what the Gateway's `Endorse` returns.
///
/// Checks, as Fabric's `CreateSignedTx`: at least one response, every
/// response a success (status 200..400) with an endorsement, and every
/// payload byte-identical to the first. Endorsements are kept in order.
pub fn prepare_transaction(
    proposal: &SignedProposal,
    responses: &[ProposalResponse],
) -> Result<Envelope, AssembleError> {
    let (header, cpp) = decode_proposal(proposal)?;
    let first = responses.first().ok_or(AssembleError::NoResponses)?;
    let mut endorsements = Vec::with_capacity(responses.len());
    for (index, r) in responses.iter().enumerate() {
        let (status, message) = r
            .response
            .as_ref()
            .map(|r| (r.status, r.message.clone()))
            .unwrap_or((0, "no response".into()));
        if !(200..400).contains(&status) {
            return Err(AssembleError::Failed {
                index,
                status,
                message,
            });
        }
        if r.payload != first.payload {
            return Err(AssembleError::PayloadMismatch { index });
        }
        let endorsement = r
            .endorsement
            .clone()
            .ok_or(AssembleError::NotEndorsed { index })?;
        endorsements.push(endorsement);
    }
    let action_payload = ChaincodeActionPayload {
        chaincode_proposal_payload: payload_without_transient(cpp.input),
        action: Some(ChaincodeEndorsedAction {
            proposal_response_payload: first.payload.clone(),
            endorsements,
        }),
    };
    let transaction = Transaction {
        actions: vec![TransactionAction {
            header: header.signature_header.clone(),
            payload: action_payload.encode_to_vec(),
        }],
    };
    let payload = Payload {
        header: Some(header),
        data: transaction.encode_to_vec(),
    };
    Ok(Envelope {
        payload: payload.encode_to_vec(),
        signature: Vec::new(),
    })
}

/// [`prepare_transaction`], signed by `signer`, who must be the proposal's
/// creator: the envelope to send to the ordering service.
pub fn assemble_transaction(
    proposal: &SignedProposal,
    responses: &[ProposalResponse],
    signer: &SigningIdentity,
) -> Result<Envelope, AssembleError> {
    let (header, _) = decode_proposal(proposal)?;
    let signature_header = SignatureHeader::decode(header.signature_header.as_slice())
        .map_err(|e| malformed("signature header", e))?;
    if signature_header.creator != creator_bytes(signer) {
        return Err(AssembleError::NotTheCreator {
            signer: format!("{} {}", signer.msp_id, signer.cert.common_name),
        });
    }
    let mut envelope = prepare_transaction(proposal, responses)?;
    envelope.signature = signer.sign(&envelope.payload)?;
    Ok(envelope)
}

fn malformed(what: &'static str, e: impl ToString) -> AssembleError {
    AssembleError::Malformed {
        what,
        reason: e.to_string(),
    }
}

fn decode_proposal(
    signed: &SignedProposal,
) -> Result<(Header, ChaincodeProposalPayload), AssembleError> {
    let proposal =
        Proposal::decode(signed.proposal_bytes.as_slice()).map_err(|e| malformed("proposal", e))?;
    let header = Header::decode(proposal.header.as_slice()).map_err(|e| malformed("header", e))?;
    let cpp = ChaincodeProposalPayload::decode(proposal.payload.as_slice())
        .map_err(|e| malformed("chaincode proposal payload", e))?;
    Ok((header, cpp))
}
