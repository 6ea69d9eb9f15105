//! [`EndorseError`]: why the endorser refused a proposal without running
//! it, or could not finish it; and [`Refusal`], the gRPC status family each
//! error belongs to.
//!
//! A chaincode that fails (contract error, panic, trap, fuel, memory,
//! unknown function) is *not* an `EndorseError`: it is an answer, a
//! `ProposalResponse` with status 500 and no endorsement.

use qcss_chaincode::{CodeHash, InvokeError};
use qcss_network::msp::MspError;
use qcss_network::signing::CryptoError;

use crate::ledger::LedgerError;

/// Why a proposal was refused before or instead of being endorsed. Every
/// variant names the proposal (tx id), chaincode, channel or identity
/// concerned; [`EndorseError::refusal`] says whose fault it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndorseError {
    /// A layer of the proposal does not decode, or a required field is
    /// missing or out of range (empty nonce, no timestamp, no function name,
    /// non-zero epoch, ...).
    #[error("malformed proposal: {what}: {reason}")]
    Malformed {
        /// The layer or field (`proposal`, `channel header`, `args[0]`, ...).
        what: &'static str,
        /// The decode error or what is wrong.
        reason: String,
    },
    /// The channel header's type is not `ENDORSER_TRANSACTION`.
    #[error(
        "proposal {tx_id:?} has header type {header_type}; only ENDORSER_TRANSACTION (3) is endorsed"
    )]
    WrongHeaderType {
        /// The proposal's tx id.
        tx_id: String,
        /// The type found.
        header_type: i32,
    },
    /// The proposal names another channel than the one this endorser serves.
    #[error("proposal {tx_id:?} is for channel {got:?}, but this endorser serves channel {want:?}")]
    WrongChannel {
        /// The proposal's tx id.
        tx_id: String,
        /// The channel the proposal names.
        got: String,
        /// This endorser's channel.
        want: String,
    },
    /// The proposal's timestamp is outside the channel's
    /// `tx_time_window_secs` of this endorser's clock (a back- or
    /// forward-dated proposal; or a badly set clock on either side).
    #[error("proposal {tx_id:?}: {reason}")]
    BadTimestamp {
        /// The proposal's tx id.
        tx_id: String,
        /// By how much, and the window.
        reason: String,
    },
    /// The tx id is not hex(SHA-256(nonce ‖ creator)), Fabric's rule.
    #[error("proposal tx id {got:?} does not match its nonce and creator (expected {expected:?})")]
    TxIdMismatch {
        /// The tx id in the channel header.
        got: String,
        /// hex(SHA-256(nonce ‖ creator)).
        expected: String,
    },
    /// The creator's MSP is not a member org of the channel.
    #[error("proposal {tx_id:?}: creator MSP {msp_id:?} is not a member of channel {channel:?}")]
    UnknownMsp {
        /// The proposal's tx id.
        tx_id: String,
        /// The MSP the creator claims.
        msp_id: String,
        /// This endorser's channel.
        channel: String,
    },
    /// The creator's certificate was refused by its org's MSP: it does not
    /// chain to the org's roots, is expired, revoked, unreadable or has no role.
    #[error("proposal {tx_id:?}: creator refused: {source}")]
    CreatorRefused {
        /// The proposal's tx id.
        tx_id: String,
        /// The MSP's reason.
        #[source]
        source: MspError,
    },
    /// The creator's signature over the proposal bytes does not verify (or is
    /// not in low-S form).
    #[error("proposal {tx_id:?}: creator {creator} signature over the proposal: {source}")]
    BadSignature {
        /// The proposal's tx id.
        tx_id: String,
        /// Who the creator is (`CN of MSP`).
        creator: String,
        /// The verification error.
        #[source]
        source: CryptoError,
    },
    /// The creator is valid but may not propose: it does not satisfy the
    /// channel's Writers policy (by default: admins and clients of member
    /// orgs; peers and orderers may not).
    #[error(
        "proposal {tx_id:?}: {creator} of {msp_id} has role {role}, which the channel's Writers policy ({policy}) does not allow to propose"
    )]
    AccessDenied {
        /// The proposal's tx id.
        tx_id: String,
        /// The creator's common name.
        creator: String,
        /// The creator's MSP.
        msp_id: String,
        /// The creator's role.
        role: qcss_network::Role,
        /// The Writers policy string of the channel.
        policy: String,
    },
    /// A transaction with this tx id is already committed (whatever its
    /// validation code): a replayed proposal.
    #[error("transaction {tx_id:?} is already committed (block {block}, position {position})")]
    DuplicateTxId {
        /// The tx id.
        tx_id: String,
        /// The block holding it.
        block: u64,
        /// Its position in that block.
        position: u32,
    },
    /// No definition of this chaincode is committed on the channel.
    #[error("chaincode {chaincode} is not committed on channel {channel}")]
    ChaincodeNotCommitted {
        /// The chaincode the proposal names.
        chaincode: String,
        /// This endorser's channel.
        channel: String,
    },
    /// The chaincode is committed, but no package with the definition's code
    /// hash is installed on this peer.
    #[error(
        "chaincode {chaincode} {version} (code hash {code_hash}) is committed on channel {channel} but not installed on this peer"
    )]
    ChaincodeNotInstalled {
        /// The chaincode.
        chaincode: String,
        /// The committed version.
        version: String,
        /// The committed code hash.
        code_hash: CodeHash,
        /// This endorser's channel.
        channel: String,
    },
    /// A package of this chaincode is installed, but its code hash is not the
    /// committed definition's.
    #[error(
        "chaincode {chaincode}: the installed package has code hash {installed}, but the definition committed on channel {channel} requires {defined}"
    )]
    CodeHashMismatch {
        /// The chaincode.
        chaincode: String,
        /// The code hash(es) installed under this name, comma-separated.
        installed: String,
        /// The code hash the committed definition requires.
        defined: CodeHash,
        /// This endorser's channel.
        channel: String,
    },
    /// Reading the ledger (tx index) failed: the peer's fault.
    #[error("proposal {tx_id:?}: reading the ledger failed: {source}")]
    Ledger {
        /// The proposal's tx id.
        tx_id: String,
        /// The ledger's error (boxed: it is large and rare).
        #[source]
        source: Box<LedgerError>,
    },
    /// The runtime failed for a reason that is not the contract's (state
    /// read failed, module vanished or could not be instantiated, or the
    /// runtime panicked): the peer's fault, so no response is given.
    #[error("proposal {tx_id:?}: chaincode {chaincode} could not be run: {reason}")]
    Runtime {
        /// The proposal's tx id.
        tx_id: String,
        /// The chaincode.
        chaincode: String,
        /// What failed.
        reason: String,
        /// The runtime's error, if it reported one (boxed: large and rare).
        #[source]
        source: Option<Box<InvokeError>>,
    },
    /// A `_lifecycle` function refused the proposal: a creator who is not an
    /// admin of this peer's org (install, approve), malformed arguments, a
    /// sequence that is not the next one, a definition not approved by
    /// enough orgs (commit), a definition not committed (query). `kind`
    /// says whose fault it is.
    #[error("proposal {tx_id:?}: _lifecycle {function} refused: {reason}")]
    Lifecycle {
        /// The proposal's tx id.
        tx_id: String,
        /// The lifecycle function called (`args[0]`).
        function: String,
        /// What is wrong, in words a client can act on.
        reason: String,
        /// The status family.
        kind: Refusal,
    },
    /// The peer's own identity is unusable for endorsing on this channel
    /// (not a valid peer of a member org), or signing failed.
    #[error("endorser identity: {reason}")]
    PeerIdentity {
        /// What is wrong.
        reason: String,
    },
}

/// The family of an [`EndorseError`], for the gRPC layer: each maps to one
/// gRPC status code (named on each variant). Fabric's own endorser answers
/// most of these with a `ProposalResponse` of status 500 instead; the Gateway
/// may do the same with [`EndorseError::to_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The proposal is malformed or inconsistent (`INVALID_ARGUMENT`).
    InvalidArgument,
    /// The creator is not allowed: unknown org, refused certificate, bad
    /// signature, role not allowed (`PERMISSION_DENIED`).
    PermissionDenied,
    /// The chaincode is not committed on the channel (`NOT_FOUND`).
    NotFound,
    /// The tx id is already committed (`ALREADY_EXISTS`).
    AlreadyExists,
    /// The chaincode is committed but this peer cannot run it: not
    /// installed, or a different code hash installed (`FAILED_PRECONDITION`).
    FailedPrecondition,
    /// The peer failed: ledger, runtime or its own identity (`INTERNAL`).
    Internal,
}

impl EndorseError {
    /// Whose fault this is, as a gRPC status family.
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::Malformed { .. }
            | Self::WrongHeaderType { .. }
            | Self::WrongChannel { .. }
            | Self::BadTimestamp { .. }
            | Self::TxIdMismatch { .. } => Refusal::InvalidArgument,
            Self::UnknownMsp { .. }
            | Self::CreatorRefused { .. }
            | Self::BadSignature { .. }
            | Self::AccessDenied { .. } => Refusal::PermissionDenied,
            Self::ChaincodeNotCommitted { .. } => Refusal::NotFound,
            Self::DuplicateTxId { .. } => Refusal::AlreadyExists,
            Self::ChaincodeNotInstalled { .. } | Self::CodeHashMismatch { .. } => {
                Refusal::FailedPrecondition
            }
            Self::Ledger { .. } | Self::Runtime { .. } | Self::PeerIdentity { .. } => {
                Refusal::Internal
            }
            Self::Lifecycle { kind, .. } => *kind,
        }
    }

    /// This error as Fabric's endorser would answer it: a `ProposalResponse`
    /// with status 500, the message, and no payload or endorsement.
    pub fn to_response(&self) -> qcss_proto::protos::ProposalResponse {
        crate::endorser::sign::failure_response(self.to_string())
    }

    pub(crate) fn malformed(what: &'static str, reason: impl ToString) -> Self {
        Self::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}
