//! The `_lifecycle` functions as the endorser runs them: natively, against
//! one consistent view of the committed state, recording reads and writes
//! exactly as a wasm contract's simulation would, so approvals and commits
//! are ordinary endorsed transactions. [`run`] is called by
//! `Endorser::endorse` for proposals to [`LIFECYCLE_NAMESPACE`].
//!
//! Rules (a violation refuses the proposal with
//! [`EndorseError::Lifecycle`], naming the problem):
//! - `InstallChaincode`, `QueryInstalledChaincodes`: the creator must be an
//!   admin of this peer's org; answered by this peer only, not endorsed;
//! - `ApproveChaincodeDefinitionForMyOrg`: the creator must be an admin of
//!   this peer's org; sequence = committed sequence + 1; writes this peer's
//!   org's approval;
//! - `CommitChaincodeDefinition`: sequence = committed + 1; reads every
//!   channel org's approval; the orgs whose approval is exactly this
//!   definition must satisfy the channel's lifecycle policy, and this peer's
//!   org must be one of them (Fabric's rule: so a commit valid under the
//!   lifecycle endorsement policy was endorsed only by approving orgs);
//! - the queries read and write nothing else.

use std::collections::BTreeMap;

use qcss_chaincode::{RangeRead, Read, Response, Simulation, Version as SimVersion, Write};
use qcss_network::Role;
use qcss_network::channel::Channel;
use qcss_network::msp::ValidatedIdentity;
use qcss_network::policy::SignerInfo;
use qcss_network::signing::sha256;

use crate::endorser::{EndorseError, Refusal};
use crate::ledger::{self, Ledger, LedgerError};
use crate::lifecycle::client::{Function, NameArg, Readiness};
use crate::lifecycle::definition::{DEFINITIONS_PREFIX, Definition, approval_key, definition_key};
use crate::lifecycle::{LIFECYCLE_NAMESPACE, Lifecycle, LifecycleError, definitions_end};

/// What a lifecycle function gave.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A simulation to endorse and sign (approve, commit, the queries).
    Endorse(Simulation),
    /// A peer-local answer: status 200 with this payload, no endorsement
    /// (install, query installed).
    Local(Vec<u8>),
}

/// One lifecycle proposal, checked by the endorser up to its creator.
pub(crate) struct Call<'a> {
    /// The proposal's tx id.
    pub(crate) tx_id: &'a str,
    /// The channel as the endorser sees it.
    pub(crate) channel: &'a Channel,
    /// This peer's org.
    pub(crate) peer_msp: &'a str,
    /// The proposal's creator, validated.
    pub(crate) creator: &'a ValidatedIdentity,
    /// `args[0]`.
    pub(crate) function: &'a str,
    /// `args[1..]`.
    pub(crate) args: &'a [Vec<u8>],
}

impl Call<'_> {
    fn refuse(&self, kind: Refusal, reason: impl Into<String>) -> EndorseError {
        EndorseError::Lifecycle {
            tx_id: self.tx_id.to_owned(),
            function: self.function.to_owned(),
            reason: reason.into(),
            kind,
        }
    }

    fn ledger_error(&self, source: LedgerError) -> EndorseError {
        EndorseError::Ledger {
            tx_id: self.tx_id.to_owned(),
            source: Box::new(source),
        }
    }

    /// The creator is an admin of this peer's org.
    fn require_peer_org_admin(&self) -> Result<(), EndorseError> {
        let c = self.creator;
        if c.msp_id.as_str() == self.peer_msp && c.role == Role::Admin {
            return Ok(());
        }
        Err(self.refuse(
            Refusal::PermissionDenied,
            format!(
                "only an admin of this peer's org {} may call it; the creator {} is {} of {}",
                self.peer_msp, c.cert.common_name, c.role, c.msp_id
            ),
        ))
    }

    /// `args` is exactly one argument.
    fn one_arg(&self) -> Result<&[u8], EndorseError> {
        match self.args {
            [arg] => Ok(arg),
            other => Err(self.refuse(
                Refusal::InvalidArgument,
                format!("expects exactly 1 argument, got {}", other.len()),
            )),
        }
    }

    /// `args` is empty.
    fn no_args(&self) -> Result<(), EndorseError> {
        if self.args.is_empty() {
            return Ok(());
        }
        Err(self.refuse(
            Refusal::InvalidArgument,
            format!("expects no arguments, got {}", self.args.len()),
        ))
    }

    /// The definition in `args[1]`, canonical (the channel's endorsement
    /// policy if none is given).
    fn definition_arg(&self) -> Result<Definition, EndorseError> {
        let bad = |e: String| self.refuse(Refusal::InvalidArgument, e);
        Definition::from_bytes(self.one_arg()?)
            .and_then(|d| d.canonical(&self.channel.config().policies.endorsement))
            .map_err(|e| bad(e.to_string()))
    }
}

/// Runs `call` against `ledger`'s committed state; `lifecycle` serves the
/// peer-local functions (refused without one).
pub(crate) fn run(
    call: &Call<'_>,
    ledger: &Ledger,
    lifecycle: Option<&Lifecycle>,
) -> Result<Answer, EndorseError> {
    let function: Function = call
        .function
        .parse()
        .map_err(|e: String| call.refuse(Refusal::InvalidArgument, e))?;
    match function {
        Function::InstallChaincode => install(call, lifecycle),
        Function::QueryInstalledChaincodes => query_installed(call, lifecycle),
        _ => {
            let view = ledger.state_view();
            let mut state = Recorder::new(&view);
            let payload = match function {
                Function::ApproveChaincodeDefinitionForMyOrg => approve(call, &mut state)?,
                Function::CheckCommitReadiness => readiness(call, &mut state)?,
                Function::CommitChaincodeDefinition => commit(call, &mut state)?,
                Function::QueryChaincodeDefinition => query_definition(call, &mut state)?,
                _ => query_definitions(call, &mut state)?,
            };
            Ok(Answer::Endorse(state.finish(payload)))
        }
    }
}

fn store<'l>(
    call: &Call<'_>,
    lifecycle: Option<&'l Lifecycle>,
) -> Result<&'l Lifecycle, EndorseError> {
    lifecycle.ok_or_else(|| {
        call.refuse(
            Refusal::FailedPrecondition,
            "this peer has no chaincode package store (its endorser was built without a lifecycle)",
        )
    })
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Plain data (strings, integers, maps with string keys): cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn install(call: &Call<'_>, lifecycle: Option<&Lifecycle>) -> Result<Answer, EndorseError> {
    call.require_peer_org_admin()?;
    let lifecycle = store(call, lifecycle)?;
    let package = call.one_arg()?;
    match lifecycle.install(package) {
        Ok(installed) => Ok(Answer::Local(json(&installed))),
        Err(e @ (LifecycleError::Package(_) | LifecycleError::Install { .. })) => {
            Err(call.refuse(Refusal::InvalidArgument, e.to_string()))
        }
        Err(e) => Err(call.refuse(Refusal::Internal, e.to_string())),
    }
}

fn query_installed(call: &Call<'_>, lifecycle: Option<&Lifecycle>) -> Result<Answer, EndorseError> {
    call.require_peer_org_admin()?;
    let lifecycle = store(call, lifecycle)?;
    call.no_args()?;
    Ok(Answer::Local(json(&lifecycle.installed())))
}

fn approve(call: &Call<'_>, state: &mut Recorder<'_, '_>) -> Result<Vec<u8>, EndorseError> {
    call.require_peer_org_admin()?;
    let def = call.definition_arg()?;
    check_sequence(call, state, &def)?;
    state.put(
        approval_key(&def.name, def.sequence, call.peer_msp),
        def.to_bytes(),
    );
    Ok(def.to_bytes())
}

fn readiness(call: &Call<'_>, state: &mut Recorder<'_, '_>) -> Result<Vec<u8>, EndorseError> {
    let def = call.definition_arg()?;
    check_sequence(call, state, &def)?;
    let approvals = approvals(call, state, &def)?;
    let ready = lifecycle_satisfied(call.channel, &approvals);
    Ok(json(&Readiness {
        definition: def,
        approvals,
        ready,
    }))
}

fn commit(call: &Call<'_>, state: &mut Recorder<'_, '_>) -> Result<Vec<u8>, EndorseError> {
    let def = call.definition_arg()?;
    check_sequence(call, state, &def)?;
    let approvals = approvals(call, state, &def)?;
    let approving: Vec<&str> = approvals
        .iter()
        .filter(|(_, ok)| **ok)
        .map(|(org, _)| org.as_str())
        .collect();
    if !lifecycle_satisfied(call.channel, &approvals) {
        let missing: Vec<&str> = approvals
            .iter()
            .filter(|(_, ok)| !**ok)
            .map(|(org, _)| org.as_str())
            .collect();
        return Err(call.refuse(
            Refusal::FailedPrecondition,
            format!(
                "definition {def} is approved by {} of {} orgs ({}); the channel's lifecycle policy {} is not satisfied (not approved by: {})",
                approving.len(),
                approvals.len(),
                list(&approving),
                call.channel.config().policies.lifecycle,
                list(&missing)
            ),
        ));
    }
    if !approving.contains(&call.peer_msp) {
        return Err(call.refuse(
            Refusal::FailedPrecondition,
            format!(
                "this peer's org {} has not approved definition {def}; send the commit to peers of the approving orgs ({})",
                call.peer_msp,
                list(&approving)
            ),
        ));
    }
    state.put(definition_key(&def.name), def.to_bytes());
    Ok(def.to_bytes())
}

fn query_definition(
    call: &Call<'_>,
    state: &mut Recorder<'_, '_>,
) -> Result<Vec<u8>, EndorseError> {
    let arg: NameArg = serde_json::from_slice(call.one_arg()?).map_err(|e| {
        call.refuse(
            Refusal::InvalidArgument,
            format!("expects {{\"name\": …}}: {e}"),
        )
    })?;
    match committed(call, state, &arg.name)? {
        Some(def) => Ok(def.to_bytes()),
        None => Err(call.refuse(
            Refusal::NotFound,
            format!(
                "chaincode {} is not committed on channel {}",
                arg.name,
                call.channel.id()
            ),
        )),
    }
}

fn query_definitions(
    call: &Call<'_>,
    state: &mut Recorder<'_, '_>,
) -> Result<Vec<u8>, EndorseError> {
    call.no_args()?;
    let rows = state
        .range(DEFINITIONS_PREFIX, &definitions_end())
        .map_err(|e| call.ledger_error(e))?;
    let mut defs = Vec::with_capacity(rows.len());
    for (key, value) in rows {
        defs.push(stored_definition(call, &key, &value)?);
    }
    Ok(json(&defs))
}

/// The committed definition of `name`, read through `state`.
fn committed(
    call: &Call<'_>,
    state: &mut Recorder<'_, '_>,
    name: &str,
) -> Result<Option<Definition>, EndorseError> {
    let key = definition_key(name);
    match state.get(&key).map_err(|e| call.ledger_error(e))? {
        Some(bytes) => stored_definition(call, &key, &bytes).map(Some),
        None => Ok(None),
    }
}

/// A definition the validator let into the state (so it decodes; if not,
/// the state is damaged: the peer's fault).
fn stored_definition(call: &Call<'_>, key: &str, bytes: &[u8]) -> Result<Definition, EndorseError> {
    Definition::from_bytes(bytes).map_err(|e| {
        call.refuse(
            Refusal::Internal,
            format!("committed _lifecycle key {key:?} does not decode: {e}"),
        )
    })
}

/// `def.sequence` is the committed sequence of its chaincode + 1.
fn check_sequence(
    call: &Call<'_>,
    state: &mut Recorder<'_, '_>,
    def: &Definition,
) -> Result<(), EndorseError> {
    let current = committed(call, state, &def.name)?;
    let next = current.as_ref().map_or(1, |d| d.sequence + 1);
    if def.sequence == next {
        return Ok(());
    }
    let now = match &current {
        Some(d) => format!("is committed at sequence {}", d.sequence),
        None => "is not committed yet".to_owned(),
    };
    Err(call.refuse(
        Refusal::FailedPrecondition,
        format!(
            "sequence {} is not the next one: chaincode {} {now}, so the next definition must have sequence {next}",
            def.sequence, def.name
        ),
    ))
}

/// Each channel org and whether its approval for `def`'s name and sequence
/// is exactly `def`.
fn approvals(
    call: &Call<'_>,
    state: &mut Recorder<'_, '_>,
    def: &Definition,
) -> Result<BTreeMap<String, bool>, EndorseError> {
    let mut out = BTreeMap::new();
    for org in call.channel.org_ids() {
        let key = approval_key(&def.name, def.sequence, org);
        let approved = state
            .get(&key)
            .map_err(|e| call.ledger_error(e))?
            .is_some_and(|bytes| Definition::from_bytes(&bytes).as_ref() == Ok(def));
        out.insert(org.clone(), approved);
    }
    Ok(out)
}

/// Whether the orgs marked `true` satisfy `channel`'s lifecycle policy. An
/// org's approval stands for the org in every role (one stand-in signer per
/// role), so the policy may be written with any principals.
pub(crate) fn lifecycle_satisfied(channel: &Channel, approvals: &BTreeMap<String, bool>) -> bool {
    let signers: Vec<SignerInfo> = approvals
        .iter()
        .filter(|(_, ok)| **ok)
        .flat_map(|(org, _)| {
            Role::ALL.iter().map(move |role| {
                let id = sha256(format!("_lifecycle approval\0{org}\0{role}").as_bytes());
                SignerInfo::new(id, org.clone(), *role)
            })
        })
        .collect();
    channel.lifecycle_ok(&signers)
}

fn list(orgs: &[&str]) -> String {
    if orgs.is_empty() {
        "none".to_owned()
    } else {
        orgs.join(", ")
    }
}

/// The `_lifecycle` namespace of one state view, recording what is read
/// (with versions) and written, in the shape of a wasm [`Simulation`].
struct Recorder<'v, 'l> {
    view: &'v ledger::StateView<'l>,
    reads: BTreeMap<String, Option<SimVersion>>,
    range_reads: Vec<RangeRead>,
    writes: BTreeMap<String, Vec<u8>>,
}

fn sim_version(v: ledger::Version) -> SimVersion {
    SimVersion {
        block: v.block,
        tx: u64::from(v.tx),
    }
}

impl<'v, 'l> Recorder<'v, 'l> {
    fn new(view: &'v ledger::StateView<'l>) -> Self {
        Recorder {
            view,
            reads: BTreeMap::new(),
            range_reads: Vec::new(),
            writes: BTreeMap::new(),
        }
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        let found = self.view.get_state(LIFECYCLE_NAMESPACE, key)?;
        self.reads
            .entry(key.to_owned())
            .or_insert(found.as_ref().map(|v| sim_version(v.version)));
        Ok(found.map(|v| v.value))
    }

    /// Every key in `[start, end)`, recorded as one exhausted range read.
    fn range(&mut self, start: &str, end: &str) -> Result<Vec<(String, Vec<u8>)>, LedgerError> {
        let rows = self.view.range(LIFECYCLE_NAMESPACE, start, end, 0)?;
        self.range_reads.push(RangeRead {
            start: start.to_owned(),
            end: end.to_owned(),
            itr_exhausted: true,
            reads: rows
                .iter()
                .map(|(k, v)| Read {
                    key: k.clone(),
                    version: Some(sim_version(v.version)),
                })
                .collect(),
        });
        Ok(rows.into_iter().map(|(k, v)| (k, v.value)).collect())
    }

    fn put(&mut self, key: String, value: Vec<u8>) {
        self.writes.insert(key, value);
    }

    fn finish(self, payload: Vec<u8>) -> Simulation {
        Simulation {
            response: Response {
                status: 200,
                message: String::new(),
                payload,
            },
            reads: self
                .reads
                .into_iter()
                .map(|(key, version)| Read { key, version })
                .collect(),
            range_reads: self.range_reads,
            writes: self
                .writes
                .into_iter()
                .map(|(key, value)| Write {
                    key,
                    value: Some(value),
                })
                .collect(),
            key_policy_writes: Vec::new(),
            event: None,
            fuel_used: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validator::fixture::Network;

    #[test]
    fn approvals_count_per_org_against_the_lifecycle_policy() {
        let net = Network::new("lc", &["Org1MSP", "Org2MSP", "Org3MSP"]).unwrap();
        let ch = net.channel().unwrap();
        let approvals = |oks: [bool; 3]| -> BTreeMap<String, bool> {
            ["Org1MSP", "Org2MSP", "Org3MSP"]
                .iter()
                .zip(oks)
                .map(|(o, ok)| (o.to_string(), ok))
                .collect()
        };
        assert!(!lifecycle_satisfied(&ch, &approvals([true, false, false])));
        assert!(lifecycle_satisfied(&ch, &approvals([true, false, true])));
        assert!(lifecycle_satisfied(&ch, &approvals([true, true, true])));
        assert!(!lifecycle_satisfied(&ch, &approvals([false, false, false])));
    }
}
