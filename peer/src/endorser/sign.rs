//! The endorser's answer: Fabric's `ProposalResponse`.
//!
//! Success (`endorsed_response`), as Fabric's `CreateProposalResponse`:
//! `ChaincodeAction{results: TxReadWriteSet bytes, events: ChaincodeEvent
//! bytes (empty if none), response, chaincode_id{name, version}}` inside
//! `ProposalResponsePayload{proposal_hash, extension}`, endorsed by
//! `Endorsement{endorser: SerializedIdentity bytes of this peer, signature
//! over payload ‖ endorser}`; `ProposalResponse{version 1, response,
//! payload, endorsement}`. Every byte of the payload is a function of the
//! proposal and the committed state only, so endorsers with the same state
//! produce byte-identical payloads (their signatures differ: ECDSA is
//! randomised).
//!
//! Failure (`failure_response`): `ProposalResponse{version 1,
//! response{500, message}}`, no payload and no endorsement, as Fabric answers
//! a chaincode that returns status ≥ 400.

use prost::Message;
use qcss_chaincode::Simulation;
use qcss_network::SigningIdentity;
use qcss_proto::protos::{
    ChaincodeAction, ChaincodeEvent, ChaincodeId, Endorsement, ProposalResponse,
    ProposalResponsePayload, Response,
};

use crate::endorser::rwset::tx_rwset;
use crate::endorser::{ChaincodeDefinition, EndorseError};
use crate::validator::OwnSignatures;

/// Fabric's `ProposalResponse.version`.
const RESPONSE_VERSION: i32 = 1;
/// Status of a failed invocation (Fabric's `shim.ERROR`).
pub const STATUS_ERROR: i32 = 500;

/// The `ChaincodeAction` of a successful simulation of `definition` for
/// transaction `tx_id`.
pub fn chaincode_action(
    definition: &ChaincodeDefinition,
    tx_id: &str,
    sim: &Simulation,
) -> ChaincodeAction {
    action(&definition.name, &definition.version, tx_id, sim)
}

/// The `ChaincodeAction` of a simulation of chaincode `name` at `version`.
fn action(name: &str, version: &str, tx_id: &str, sim: &Simulation) -> ChaincodeAction {
    let events = sim
        .event
        .as_ref()
        .map(|e| {
            ChaincodeEvent {
                chaincode_id: name.to_owned(),
                tx_id: tx_id.to_owned(),
                event_name: e.name.clone(),
                payload: e.payload.clone(),
            }
            .encode_to_vec()
        })
        .unwrap_or_default();
    ChaincodeAction {
        results: tx_rwset(name, sim).encode_to_vec(),
        events,
        response: Some(response(sim)),
        chaincode_id: Some(ChaincodeId {
            path: String::new(),
            name: name.to_owned(),
            version: version.to_owned(),
        }),
    }
}

fn response(sim: &Simulation) -> Response {
    Response {
        status: sim.response.status,
        message: sim.response.message.clone(),
        payload: sim.response.payload.clone(),
    }
}

/// The signed answer to a successful simulation of chaincode `name` at
/// `version`; the signature is remembered in `own`.
pub(crate) fn endorsed_response(
    (signer, own): (&SigningIdentity, &OwnSignatures),
    endorser: &[u8],
    proposal_hash: &[u8; 32],
    (name, version): (&str, &str),
    tx_id: &str,
    sim: &Simulation,
) -> Result<ProposalResponse, EndorseError> {
    let payload = ProposalResponsePayload {
        proposal_hash: proposal_hash.to_vec(),
        extension: action(name, version, tx_id, sim).encode_to_vec(),
    }
    .encode_to_vec();
    let mut signed = Vec::with_capacity(payload.len() + endorser.len());
    signed.extend_from_slice(&payload);
    signed.extend_from_slice(endorser);
    let signature = signer
        .sign(&signed)
        .map_err(|e| EndorseError::PeerIdentity {
            reason: format!("signing the proposal response of {tx_id:?} failed: {e}"),
        })?;
    own.remember(&signed, &signature);
    Ok(ProposalResponse {
        version: RESPONSE_VERSION,
        timestamp: None,
        response: Some(response(sim)),
        payload,
        endorsement: Some(Endorsement {
            endorser: endorser.to_vec(),
            signature,
        }),
        interest: None,
    })
}

/// The answer to an evaluation (the Gateway's `Evaluate`): the contract's
/// response only, neither signed nor remembered — it is never made into a
/// transaction, and the signature was a P-256 sign per query for nothing.
pub(crate) fn evaluated_response(sim: &Simulation) -> ProposalResponse {
    ProposalResponse {
        version: RESPONSE_VERSION,
        timestamp: None,
        response: Some(response(sim)),
        payload: Vec::new(),
        endorsement: None,
        interest: None,
    }
}

/// A peer-local answer (lifecycle install and installed-package queries):
/// status 200 with `payload` in the response, no proposal response payload
/// and no endorsement, so it cannot be made into a transaction.
pub(crate) fn local_response(payload: Vec<u8>) -> ProposalResponse {
    ProposalResponse {
        version: RESPONSE_VERSION,
        timestamp: None,
        response: Some(Response {
            status: 200,
            message: String::new(),
            payload,
        }),
        payload: Vec::new(),
        endorsement: None,
        interest: None,
    }
}

/// The answer to a failed invocation: status 500, `message`, no payload, no
/// endorsement.
pub fn failure_response(message: String) -> ProposalResponse {
    ProposalResponse {
        version: RESPONSE_VERSION,
        timestamp: None,
        response: Some(Response {
            status: STATUS_ERROR,
            message,
            payload: Vec::new(),
        }),
        payload: Vec::new(),
        endorsement: None,
        interest: None,
    }
}
