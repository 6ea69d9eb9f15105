//! Endorsements and the chaincode-level policy (Fabric's dispatcher and
//! built-in VSCC): which chaincode was invoked, what it read and wrote, who
//! endorsed it, and whether those endorsers satisfy the endorsement policy
//! of the invoked chaincode and of every namespace written.
//!
//! An endorsement counts when its endorser is a `SerializedIdentity` of a
//! channel org that its MSP accepts (chain, expiry, CRL) **in role peer**,
//! and its signature over `proposal_response_payload ‖ endorser` verifies.
//! Endorsements that do not count are dropped, not fatal (as Fabric's
//! `SignatureSetToValidIdentities` does): the transaction fails only if the
//! ones that remain do not satisfy the policy. Each identity counts once.
//!
//! Requiring role peer is stricter than Fabric, where only the policy's
//! principals decide: in QCSS an endorsement is a peer's act, so a client's
//! signature never counts even under an `'Org.member'` principal.
//!
//! "Responses identical" holds by construction: a `ChaincodeEndorsedAction`
//! carries one `proposal_response_payload` that every endorsement signs, so
//! endorsers that computed different results cannot both verify.
//!
//! Then every write (value or metadata) is put to the provider's
//! [`PolicyProvider::key_rule`]: a forbidden write is `INVALID_WRITESET`, a
//! required endorsement or creator policy not met is
//! `ENDORSEMENT_POLICY_FAILURE`. These rules depend only on the transaction
//! (the `_lifecycle` namespace's, say), unlike key-level policies, which
//! depend on state changed by earlier transactions of the block and are
//! checked later, in block order (`mvcc.rs`).

use std::collections::HashSet;

use prost::Message;
use qcss_network::Role;
use qcss_network::policy::SignerInfo;
use qcss_proto::common::ChannelHeader;
use qcss_proto::msp::SerializedIdentity;
use qcss_proto::protos::{
    ChaincodeAction, ChaincodeEndorsedAction, ChaincodeHeaderExtension, Endorsement,
    ProposalResponsePayload, TxValidationCode as Code,
};

use crate::validator::policy::{KeyRule, KeyWrite, PolicyProvider};
use crate::validator::rwset::ReadWriteSet;
use crate::validator::transaction::{Checker, SigClock};
use crate::validator::{Rejection, fail};

/// An endorser transaction after the parallel checks.
#[derive(Debug)]
pub(crate) struct Endorsed {
    /// `Err` if a check after the duplicate check failed.
    pub(crate) outcome: Result<(), Rejection>,
    /// The endorsers that count (valid peers with good signatures), once each.
    pub(crate) endorsers: Vec<SignerInfo>,
    /// The read-write set (empty if it could not be read).
    pub(crate) rwset: ReadWriteSet,
}

/// Runs the dispatcher and VSCC checks on one endorsed action.
pub(crate) fn check<P: PolicyProvider + ?Sized>(
    checker: &Checker<'_, P>,
    ch: &ChannelHeader,
    creator: &SignerInfo,
    action: &ChaincodeEndorsedAction,
    prp: &ProposalResponsePayload,
    clock: &mut SigClock,
) -> Endorsed {
    let mut out = Endorsed {
        outcome: Ok(()),
        endorsers: Vec::new(),
        rwset: ReadWriteSet::default(),
    };
    out.outcome = check_into(checker, ch, action, prp, clock, &mut out)
        .and_then(|()| check_key_rules(checker, creator, &out));
    out
}

/// The provider's rules for every key the transaction writes.
fn check_key_rules<P: PolicyProvider + ?Sized>(
    checker: &Checker<'_, P>,
    creator: &SignerInfo,
    out: &Endorsed,
) -> Result<(), Rejection> {
    let values = out.rwset.writes().map(|w| {
        let write = match w.value.as_deref() {
            Some(v) if !v.is_empty() => KeyWrite::Put(v),
            _ => KeyWrite::Delete,
        };
        (&w.ns, &w.key, write)
    });
    let metadata = out
        .rwset
        .metadata_writes()
        .map(|m| (&m.ns, &m.key, KeyWrite::Metadata));
    for (ns, key, write) in values.chain(metadata) {
        match checker.policies.key_rule(checker.channel, ns, key, write) {
            KeyRule::None => {}
            KeyRule::Forbidden(why) => {
                return fail(
                    Code::InvalidWriteset,
                    format!("write to {ns:?}/{key:?}: {why}"),
                );
            }
            KeyRule::Require {
                endorsement,
                creator: creator_policy,
            } => {
                if !checker.channel.evaluate(&endorsement, &out.endorsers) {
                    return fail(
                        Code::EndorsementPolicyFailure,
                        format!(
                            "{} valid endorsement(s) do not satisfy the policy {endorsement} required to write {ns:?}/{key:?}",
                            out.endorsers.len()
                        ),
                    );
                }
                if let Some(p) = creator_policy
                    && !checker.channel.evaluate(&p, std::slice::from_ref(creator))
                {
                    return fail(
                        Code::EndorsementPolicyFailure,
                        format!(
                            "the creator ({} {}) does not satisfy the policy {p} required to write {ns:?}/{key:?}",
                            creator.msp_id, creator.role
                        ),
                    );
                }
            }
        }
    }
    Ok(())
}

fn check_into<P: PolicyProvider + ?Sized>(
    checker: &Checker<'_, P>,
    ch: &ChannelHeader,
    action: &ChaincodeEndorsedAction,
    prp: &ProposalResponsePayload,
    clock: &mut SigClock,
    out: &mut Endorsed,
) -> Result<(), Rejection> {
    let ext = ChaincodeHeaderExtension::decode(ch.extension.as_slice())
        .map_err(|e| Rejection::new(Code::BadHeaderExtension, format!("header extension: {e}")))?;
    let invoked = match ext.chaincode_id {
        Some(id) if !id.name.is_empty() => id.name,
        _ => {
            return fail(
                Code::BadHeaderExtension,
                "header extension names no chaincode",
            );
        }
    };
    let cc_action = ChaincodeAction::decode(prp.extension.as_slice())
        .map_err(|e| Rejection::new(Code::BadResponsePayload, format!("chaincode action: {e}")))?;
    match &cc_action.chaincode_id {
        Some(id) if !id.name.is_empty() => {
            if id.name != invoked {
                return fail(
                    Code::InvalidOtherReason,
                    format!(
                        "proposal invokes {invoked:?} but the response is from {:?}",
                        id.name
                    ),
                );
            }
        }
        _ => {
            return fail(
                Code::BadResponsePayload,
                "chaincode action names no chaincode",
            );
        }
    }
    out.rwset = ReadWriteSet::decode(&cc_action.results)?;

    // The invoked chaincode's policy, then each other namespace written.
    let mut namespaces = vec![invoked.as_str()];
    for ns in &out.rwset.namespaces {
        if ns.writes_anything() && !namespaces.contains(&ns.ns.as_str()) {
            namespaces.push(&ns.ns);
        }
    }
    let mut policies = Vec::with_capacity(namespaces.len());
    for ns in namespaces {
        match checker.policies.chaincode_policy(ns) {
            Some(p) => policies.push((ns, p)),
            None => {
                return fail(
                    Code::InvalidChaincode,
                    format!("chaincode {ns:?} is not defined on this channel"),
                );
            }
        }
    }
    if action.endorsements.is_empty() {
        return fail(Code::EndorsementPolicyFailure, "no endorsements");
    }
    out.endorsers = endorsers(
        checker,
        &action.proposal_response_payload,
        &action.endorsements,
        clock,
    );
    for (ns, policy) in policies {
        if !checker.channel.evaluate(&policy, &out.endorsers) {
            return fail(
                Code::EndorsementPolicyFailure,
                format!(
                    "{} valid endorsement(s) do not satisfy the policy {policy} of {ns:?}",
                    out.endorsers.len()
                ),
            );
        }
    }
    Ok(())
}

/// The endorsers that count, once each, in the order they appear.
fn endorsers<P: PolicyProvider + ?Sized>(
    checker: &Checker<'_, P>,
    prp: &[u8],
    endorsements: &[Endorsement],
    clock: &mut SigClock,
) -> Vec<SignerInfo> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(endorsements.len());
    for (i, e) in endorsements.iter().enumerate() {
        match endorser(checker, prp, e, &seen, clock) {
            Ok(Some(signer)) => {
                seen.insert(signer.id);
                out.push(signer);
            }
            Ok(None) => {}
            Err(why) => tracing::debug!(endorsement = i, %why, "endorsement does not count"),
        }
    }
    out
}

/// The signer of one endorsement; `Ok(None)` if that identity already
/// counted (its signature is then not verified again).
fn endorser<P: PolicyProvider + ?Sized>(
    checker: &Checker<'_, P>,
    prp: &[u8],
    e: &Endorsement,
    seen: &HashSet<[u8; 32]>,
    clock: &mut SigClock,
) -> Result<Option<SignerInfo>, String> {
    let id = SerializedIdentity::decode(e.endorser.as_slice())
        .map_err(|err| format!("endorser identity: {err}"))?;
    let msp = checker
        .channel
        .msp(&id.mspid)
        .ok_or_else(|| format!("endorser MSP {:?} is not a channel member", id.mspid))?;
    let v = clock.time(|| {
        msp.validate_serialized(&id.mspid, &id.id_bytes)
            .map_err(|err| format!("endorser refused: {err}"))
    })?;
    if v.role != Role::Peer {
        return Err(format!(
            "endorser {} of {} has role {}, not peer",
            v.cert.common_name, v.msp_id, v.role
        ));
    }
    if seen.contains(&v.cert.id) {
        return Ok(None);
    }
    let mut signed = Vec::with_capacity(prp.len() + e.endorser.len());
    signed.extend_from_slice(prp);
    signed.extend_from_slice(&e.endorser);
    if checker
        .own
        .is_some_and(|own| own.take(&signed, &e.signature))
    {
        return Ok(Some(SignerInfo::from(&*v)));
    }
    clock
        .verify(&v.cert.public_key, &signed, &e.signature)
        .map_err(|err| {
            format!(
                "endorsement by {} of {}: {err}",
                v.cert.common_name, v.msp_id
            )
        })?;
    Ok(Some(SignerInfo::from(&*v)))
}
