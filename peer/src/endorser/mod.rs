//! The endorser: checks a signed proposal, runs its chaincode against the
//! committed state, and signs the result — Fabric's `ProcessProposal`.
//!
//! [`Endorser::endorse`] takes Fabric's `SignedProposal` and returns Fabric's
//! `ProposalResponse`. A proposal is refused with an [`EndorseError`] when it
//! is malformed, for another channel, signed by someone who may not propose,
//! a replay of a committed tx id, or for a chaincode this peer cannot run. A
//! chaincode that fails is not refused: it is answered with status 500, its
//! message and no endorsement. Never writes state, never uses the clock for
//! the contract, never panics on input.
//!
//! Files, in the order a proposal meets them: `proposal.rs` (decode, header
//! and creator checks, proposal hash), `definitions.rs` (committed chaincode
//! definitions), `simulate.rs` (caller, invocation, ledger state adapter,
//! runtime), `rwset.rs` (Fabric's read-write set), `sign.rs` (the response
//! and endorsement), `client.rs` (the inverse: building proposals and
//! assembling transactions), `error.rs`. Start at [`Endorser::endorse`].
//!
//! Decisions:
//! - who may propose: whoever satisfies the channel's Writers policy
//!   (Fabric's default ACL for `peer/Propose`), by default admins and
//!   clients of member orgs; peers and orderers are refused;
//! - the proposal hash is Fabric v2's: SHA-256(channel header ‖ signature
//!   header ‖ `ChaincodeProposalPayload` without transient map), see
//!   [`proposal_hash`]; the transient map is ignored;
//! - the endorser's own identity must be a valid *peer* of a member org
//!   (the validator counts only peers' endorsements);
//! - refusals name the problem (Fabric answers a generic "access denied");
//!   the gRPC layer maps them with [`EndorseError::refusal`];
//! - a key-level policy the validator would refuse (not a policy string)
//!   fails the invocation (status 500) instead of being endorsed;
//! - `ProposalResponse.interest` (Fabric's discovery hint) is not set: the
//!   QCSS Gateway picks endorsers from its configuration;
//! - proposals to chaincode `_lifecycle` are run natively by
//!   `lifecycle/functions.rs` (no wasm), after the same checks up to the
//!   duplicate tx id; install and installed-package queries need the
//!   [`Lifecycle`] given with [`Endorser::with_lifecycle`].

mod client;
mod definitions;
mod error;
mod proposal;
mod rwset;
mod sign;
mod simulate;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, PoisonError, RwLock};

use qcss_chaincode::{ChaincodePackage, CodeHash, InstallError, Runtime};
use qcss_network::channel::Channel;
use qcss_network::envelope::creator_bytes;
use qcss_network::{Role, SigningIdentity};
use qcss_proto::protos::{ProposalResponse, SignedProposal};

use crate::ledger::Ledger;
use crate::lifecycle::functions::{self, Answer};
use crate::lifecycle::{LIFECYCLE_NAMESPACE, LIFECYCLE_VERSION, Lifecycle};
use crate::validator::OwnSignatures;

pub use client::{
    AssembleError, ProposalOptions, assemble_transaction, build_proposal, build_proposal_with,
    prepare_transaction,
};
pub use definitions::{ChaincodeDefinition, ChaincodeDefinitions};
pub use error::{EndorseError, Refusal};
pub use proposal::{UnpackedProposal, proposal_channel, proposal_hash};
pub use rwset::{KEY_POLICY_ENTRY, kv_rwset, tx_rwset};
pub use sign::{STATUS_ERROR, chaincode_action, failure_response};
pub use simulate::{LedgerState, caller};

use simulate::{Outcome, invocation};

/// One peer's endorser for one channel. Share it behind an `Arc`: every
/// method takes `&self` and proposals may be endorsed from many threads at
/// once. `endorse` is CPU-bound and blocking: call it from a blocking task.
pub struct Endorser {
    /// The identity endorsements are signed with; replaced whole when the
    /// peer's certificate is renewed ([`Endorser::set_signer`]).
    signer: RwLock<Arc<Signer>>,
    runtime: Arc<Runtime>,
    definitions: Arc<ChaincodeDefinitions>,
    channel: RwLock<Arc<Channel>>,
    ledger: Arc<Ledger>,
    /// Code hashes of packages installed through [`Endorser::install`], by
    /// chaincode name (to explain a code hash mismatch).
    packages: RwLock<BTreeMap<String, BTreeSet<CodeHash>>>,
    /// The peer's lifecycle, if given: installs packages and knows them.
    lifecycle: Option<Arc<Lifecycle>>,
    /// Every endorsement signed, for the validator to recognise.
    own: Arc<OwnSignatures>,
}

/// A signing identity with its `SerializedIdentity` bytes (the
/// endorsement's `endorser`), computed once.
struct Signer {
    identity: Arc<SigningIdentity>,
    bytes: Vec<u8>,
}

impl Signer {
    fn new(identity: Arc<SigningIdentity>) -> Arc<Self> {
        Arc::new(Signer {
            bytes: creator_bytes(&identity),
            identity,
        })
    }
}

impl std::fmt::Debug for Endorser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let signer = self.signer();
        f.debug_struct("Endorser")
            .field("peer", &signer.cert.common_name)
            .field("msp_id", &signer.msp_id)
            .field("channel", &self.channel().id())
            .finish_non_exhaustive()
    }
}

impl Endorser {
    /// An endorser signing as `signer` on `channel`, reading `ledger`'s
    /// committed state and running chaincode in `runtime`, with no chaincode
    /// defined yet. Refuses a signer that is not a valid peer of a member org
    /// of the channel.
    pub fn new(
        signer: SigningIdentity,
        channel: Arc<Channel>,
        ledger: Arc<Ledger>,
        runtime: Arc<Runtime>,
    ) -> Result<Self, EndorseError> {
        check_peer_identity(&signer, &channel)?;
        Ok(Endorser {
            signer: RwLock::new(Signer::new(Arc::new(signer))),
            runtime,
            definitions: Arc::new(ChaincodeDefinitions::new()),
            channel: RwLock::new(channel),
            ledger,
            packages: RwLock::new(BTreeMap::new()),
            lifecycle: None,
            own: Arc::new(OwnSignatures::new()),
        })
    }

    /// The endorsements this endorser signed, for
    /// [`crate::validator::ValidateOptions::own`].
    pub fn own_signatures(&self) -> Arc<OwnSignatures> {
        self.own.clone()
    }

    /// Uses `definitions` (shared with the lifecycle) instead of an own table.
    pub fn with_definitions(mut self, definitions: Arc<ChaincodeDefinitions>) -> Self {
        self.definitions = definitions;
        self
    }

    /// Uses `lifecycle`: its committed definitions (as
    /// [`Endorser::with_definitions`]), its package store for
    /// `_lifecycle` `InstallChaincode` and `QueryInstalledChaincodes`, and
    /// its installed packages to explain a code hash mismatch. The
    /// lifecycle must serve this endorser's ledger and runtime.
    pub fn with_lifecycle(mut self, lifecycle: Arc<Lifecycle>) -> Self {
        self.definitions = lifecycle.definitions();
        self.lifecycle = Some(lifecycle);
        self
    }

    /// The committed chaincode definitions this endorser consults.
    pub fn definitions(&self) -> &Arc<ChaincodeDefinitions> {
        &self.definitions
    }

    /// Records `definition` as committed on the channel (see
    /// [`ChaincodeDefinitions::define`]).
    pub fn define(&self, definition: ChaincodeDefinition) -> Option<ChaincodeDefinition> {
        self.definitions.define(definition)
    }

    /// Installs `package`'s module in the runtime and remembers its code
    /// hash under its name.
    pub fn install(&self, package: &ChaincodePackage) -> Result<CodeHash, InstallError> {
        let code = self.runtime.install(package.wasm())?;
        self.packages
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(package.name().to_owned())
            .or_default()
            .insert(code);
        Ok(code)
    }

    /// The channel as currently configured.
    pub fn channel(&self) -> Arc<Channel> {
        self.channel
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Switches to a new configuration of the channel (after a config
    /// block). Refused, keeping the old one, if it is another channel or no
    /// longer accepts this peer's identity.
    pub fn set_channel(&self, channel: Arc<Channel>) -> Result<(), EndorseError> {
        let current = self.channel();
        if channel.id() != current.id() {
            return Err(EndorseError::PeerIdentity {
                reason: format!(
                    "this endorser serves channel {:?}, not {:?}",
                    current.id(),
                    channel.id()
                ),
            });
        }
        check_peer_identity(&self.signer(), &channel)?;
        *self.channel.write().unwrap_or_else(PoisonError::into_inner) = channel;
        Ok(())
    }

    /// This peer's identity.
    pub fn signer(&self) -> Arc<SigningIdentity> {
        self.current().identity.clone()
    }

    fn current(&self) -> Arc<Signer> {
        self.signer
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Signs from now on as `signer` (a renewed certificate of this peer):
    /// refused, keeping the current identity, unless it is of the same org
    /// and a valid peer of it on the channel as configured now.
    /// Endorsements already in flight finish with the identity they began
    /// with.
    pub fn set_signer(&self, signer: Arc<SigningIdentity>) -> Result<(), EndorseError> {
        let current = self.signer();
        if signer.msp_id != current.msp_id {
            return Err(EndorseError::PeerIdentity {
                reason: format!(
                    "a new identity of {} cannot replace this peer's of {}",
                    signer.msp_id, current.msp_id
                ),
            });
        }
        check_peer_identity(&signer, &self.channel())?;
        *self.signer.write().unwrap_or_else(PoisonError::into_inner) = Signer::new(signer);
        Ok(())
    }

    /// Endorses `signed`: decodes and checks it, runs the chaincode against
    /// one snapshot of the committed state, and signs the result.
    ///
    /// In order (Fabric's): decode every layer; header type
    /// `ENDORSER_TRANSACTION`, this channel, epoch 0, tx id = hex(SHA-256(nonce
    /// ‖ creator)); creator accepted by its org's MSP (chain, expiry, CRL,
    /// role); signature; Writers policy; tx id not yet committed; for
    /// `_lifecycle`, its function's own rules (see `lifecycle/functions.rs`);
    /// otherwise chaincode committed and installed with the definition's
    /// code hash; run.
    pub fn endorse(&self, signed: &SignedProposal) -> Result<ProposalResponse, EndorseError> {
        self.run(signed, true)
    }

    /// [`Endorser::endorse`] for a query (the Gateway's `Evaluate`): every
    /// check the same, but a chaincode's answer comes back unsigned
    /// ([`sign::evaluated_response`]).
    pub fn evaluate(&self, signed: &SignedProposal) -> Result<ProposalResponse, EndorseError> {
        self.run(signed, false)
    }

    fn run(&self, signed: &SignedProposal, sign: bool) -> Result<ProposalResponse, EndorseError> {
        let channel = self.channel();
        let proposal = UnpackedProposal::unpack(signed)?;
        proposal.check_header(&channel)?;
        // The contract's "now" is this timestamp: accept it only within the
        // channel's window of our own clock (the orderer and the validators
        // hold it to the same window of the block time).
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        channel
            .config()
            .batch
            .check_tx_time(proposal.timestamp.seconds, now_ms)
            .map_err(|reason| EndorseError::BadTimestamp {
                tx_id: proposal.tx_id().to_owned(),
                reason,
            })?;
        let creator = proposal.check_creator(signed, &channel)?;
        let tx_id = proposal.tx_id();
        match self.ledger.tx(tx_id) {
            Ok(None) => {}
            Ok(Some(at)) => {
                return Err(EndorseError::DuplicateTxId {
                    tx_id: tx_id.to_owned(),
                    block: at.block,
                    position: at.position,
                });
            }
            Err(source) => {
                return Err(EndorseError::Ledger {
                    tx_id: tx_id.to_owned(),
                    source: Box::new(source),
                });
            }
        }
        if proposal.chaincode == LIFECYCLE_NAMESPACE {
            return self.endorse_lifecycle(&proposal, &creator, &channel);
        }
        let definition = self.runnable(&proposal.chaincode, channel.id())?;
        let inv = invocation(&proposal, &creator, &channel);
        match simulate::simulate(&self.runtime, &definition.code_hash, &inv, &self.ledger)? {
            Outcome::Simulated(sim) if !sign => Ok(sign::evaluated_response(&sim)),
            Outcome::Simulated(sim) => {
                let signer = self.current();
                sign::endorsed_response(
                    (&signer.identity, &self.own),
                    &signer.bytes,
                    &proposal.proposal_hash,
                    (&definition.name, &definition.version),
                    tx_id,
                    &sim,
                )
            }
            Outcome::Failed(message) => {
                tracing::debug!(
                    tx_id,
                    chaincode = %proposal.chaincode,
                    function = %proposal.function,
                    %message,
                    "chaincode failed; not endorsed"
                );
                Ok(failure_response(message))
            }
        }
    }

    /// Signs the result of a system chaincode `name` at `version` that the
    /// peer ran natively (the anchoring receipts, `node/anchorscc.rs`).
    pub(crate) fn sign_native(
        &self,
        proposal: &UnpackedProposal,
        name_version: (&str, &str),
        sim: &qcss_chaincode::Simulation,
    ) -> Result<ProposalResponse, EndorseError> {
        let signer = self.current();
        sign::endorsed_response(
            (&signer.identity, &self.own),
            &signer.bytes,
            &proposal.proposal_hash,
            name_version,
            proposal.tx_id(),
            sim,
        )
    }

    /// Runs a `_lifecycle` function natively and signs (or, for peer-local
    /// functions, just answers) the result.
    fn endorse_lifecycle(
        &self,
        proposal: &UnpackedProposal,
        creator: &qcss_network::msp::ValidatedIdentity,
        channel: &Channel,
    ) -> Result<ProposalResponse, EndorseError> {
        let signer = self.current();
        let call = functions::Call {
            tx_id: proposal.tx_id(),
            channel,
            peer_msp: signer.identity.msp_id.as_str(),
            creator,
            function: &proposal.function,
            args: &proposal.args,
        };
        match functions::run(&call, &self.ledger, self.lifecycle.as_deref())? {
            Answer::Endorse(sim) => sign::endorsed_response(
                (&signer.identity, &self.own),
                &signer.bytes,
                &proposal.proposal_hash,
                (LIFECYCLE_NAMESPACE, LIFECYCLE_VERSION),
                proposal.tx_id(),
                &sim,
            ),
            Answer::Local(payload) => Ok(sign::local_response(payload)),
        }
    }

    /// The committed definition of `chaincode`, if its code is installed.
    fn runnable(
        &self,
        chaincode: &str,
        channel: &str,
    ) -> Result<ChaincodeDefinition, EndorseError> {
        let definition =
            self.definitions
                .get(chaincode)
                .ok_or_else(|| EndorseError::ChaincodeNotCommitted {
                    chaincode: chaincode.to_owned(),
                    channel: channel.to_owned(),
                })?;
        if self.runtime.is_installed(&definition.code_hash) {
            return Ok(definition);
        }
        let mut hashes: BTreeSet<CodeHash> = self
            .packages
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(chaincode)
            .cloned()
            .unwrap_or_default();
        if let Some(lifecycle) = &self.lifecycle {
            hashes.extend(lifecycle.installed_hashes(chaincode));
        }
        match hashes {
            hashes if !hashes.is_empty() => Err(EndorseError::CodeHashMismatch {
                chaincode: chaincode.to_owned(),
                installed: hashes
                    .iter()
                    .map(CodeHash::to_hex)
                    .collect::<Vec<_>>()
                    .join(", "),
                defined: definition.code_hash,
                channel: channel.to_owned(),
            }),
            _ => Err(EndorseError::ChaincodeNotInstalled {
                chaincode: chaincode.to_owned(),
                version: definition.version,
                code_hash: definition.code_hash,
                channel: channel.to_owned(),
            }),
        }
    }
}

/// `signer` is accepted by its org's MSP on `channel`, in role peer.
fn check_peer_identity(signer: &SigningIdentity, channel: &Channel) -> Result<(), EndorseError> {
    let bad = |reason: String| Err(EndorseError::PeerIdentity { reason });
    let Some(msp) = channel.msp(signer.msp_id.as_str()) else {
        return bad(format!(
            "MSP {} is not a member of channel {:?}",
            signer.msp_id,
            channel.id()
        ));
    };
    match msp.validate(&signer.cert.der) {
        Ok(v) if v.role == Role::Peer => Ok(()),
        Ok(v) => bad(format!(
            "{} of {} has role {}; only peers endorse",
            signer.cert.common_name, signer.msp_id, v.role
        )),
        Err(e) => bad(format!("refused by its MSP: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endorser_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Endorser>();
    }
}
