//! Running the chaincode: the proposal's creator as the runtime's
//! [`Caller`], the [`Invocation`] (tx id and timestamp from the channel
//! header, never the clock), and [`LedgerState`], the ledger's consistent
//! [`ledger::StateView`] seen through the runtime's [`StateView`] trait.
//!
//! [`simulate`] separates the contract's failures (an answer: status 500)
//! from the peer's (an [`EndorseError`]).

use std::panic::{AssertUnwindSafe, catch_unwind};

use qcss_chaincode::{
    Caller, CodeHash, Invocation, InvokeError, Runtime, Simulation, StateError, StateView, Version,
    VersionedValue,
};
use qcss_network::msp::ValidatedIdentity;
use qcss_network::policy::Policy;

use crate::endorser::{EndorseError, UnpackedProposal};
use crate::ledger::{self, Ledger};

/// Rows fetched from the ledger per page of a range scan: the runtime stops
/// a scan after its limit (default 1000) or when fuel runs out, so the
/// adapter reads lazily, one page at a time.
const RANGE_PAGE: usize = 128;

/// What running the chaincode gave.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// It succeeded: endorse this.
    Simulated(Simulation),
    /// The contract failed (its error, panic, trap, fuel, memory, limits,
    /// unknown function, or an unusable key-level policy): answer status 500
    /// with this message.
    Failed(String),
}

/// The runtime's view of a proposal's creator.
pub fn caller(creator: &ValidatedIdentity) -> Caller {
    Caller {
        msp_id: creator.msp_id.to_string(),
        role: creator.role.as_str().to_owned(),
        attributes: creator.attributes().clone(),
        // The validated certificate re-encoded, so every peer hands the
        // contract the same canonical PEM whatever whitespace the client sent.
        cert_pem: creator.cert.to_pem(),
    }
}

/// The invocation `proposal` asks for, by `creator`.
pub(crate) fn invocation(
    proposal: &UnpackedProposal,
    creator: &ValidatedIdentity,
    channel: &qcss_network::channel::Channel,
) -> Invocation {
    let mut channel_orgs: Vec<String> = channel
        .config()
        .orgs
        .iter()
        .map(|o| o.msp.msp_id.clone())
        .collect();
    channel_orgs.sort();
    channel_orgs.dedup();
    Invocation {
        namespace: proposal.chaincode.clone(),
        function: proposal.function.clone(),
        args: proposal.args.clone(),
        tx_id: proposal.tx_id().to_owned(),
        channel: proposal.channel_id().to_owned(),
        channel_orgs,
        timestamp: proposal.timestamp,
        caller: caller(creator),
    }
}

/// Runs `inv` of module `code` against one consistent snapshot of the
/// ledger's committed state (commits wait until it ends).
pub(crate) fn simulate(
    runtime: &Runtime,
    code: &CodeHash,
    inv: &Invocation,
    ledger: &Ledger,
) -> Result<Outcome, EndorseError> {
    let peer_fault = |reason: String, source: Option<InvokeError>| EndorseError::Runtime {
        tx_id: inv.tx_id.clone(),
        chaincode: inv.namespace.clone(),
        reason,
        source: source.map(Box::new),
    };
    let view = ledger.state_view();
    let state = LedgerState {
        view: &view,
        ns: &inv.namespace,
    };
    // The runtime turns every trap into an error; this only guards the peer
    // against a bug in the runtime itself.
    let result = catch_unwind(AssertUnwindSafe(|| runtime.invoke(code, inv, &state)))
        .map_err(|_| peer_fault("the runtime panicked".into(), None))?;
    drop(view);
    match result {
        Ok(sim) => match bad_key_policy(&sim) {
            Some(problem) => Ok(Outcome::Failed(format!(
                "function {}: {problem}",
                inv.function
            ))),
            None => Ok(Outcome::Simulated(sim)),
        },
        Err(e) if e.is_contract_fault() => Ok(Outcome::Failed(failure_message(&e))),
        Err(e) => Err(peer_fault(e.to_string(), Some(e))),
    }
}

/// The message a client sees for a failed invocation: the contract's own
/// message for a contract error (as Fabric's `shim.Error` does), the
/// runtime's description (naming the function) otherwise.
fn failure_message(e: &InvokeError) -> String {
    match e {
        InvokeError::Contract { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// A key-level policy the validator would refuse (`INVALID_WRITESET`): not
/// UTF-8 or not a policy string. Refusing it here turns a certain invalid
/// transaction into an immediate, explained failure.
fn bad_key_policy(sim: &Simulation) -> Option<String> {
    sim.key_policy_writes.iter().find_map(|w| {
        let policy = w.policy.as_deref()?;
        let problem = match std::str::from_utf8(policy) {
            Err(_) => "it is not UTF-8".to_owned(),
            Ok(text) => Policy::parse(text).err()?.to_string(),
        };
        Some(format!(
            "the key-level endorsement policy set on key {:?} is not a valid policy: {problem}",
            w.key
        ))
    })
}

/// One namespace of a ledger snapshot as the runtime's [`StateView`]:
/// versions become `(block, tx)`, key metadata is the key-level policy.
pub struct LedgerState<'v, 'l> {
    view: &'v ledger::StateView<'l>,
    ns: &'v str,
}

impl<'v, 'l> LedgerState<'v, 'l> {
    /// Namespace `ns` of `view`.
    pub fn new(view: &'v ledger::StateView<'l>, ns: &'v str) -> Self {
        Self { view, ns }
    }
}

fn state_error(e: ledger::LedgerError) -> StateError {
    StateError::new(e.to_string())
}

fn versioned(v: ledger::VersionedValue) -> VersionedValue {
    VersionedValue {
        value: v.value,
        version: Version {
            block: v.version.block,
            tx: u64::from(v.version.tx),
        },
    }
}

impl StateView for LedgerState<'_, '_> {
    fn get(&self, key: &str) -> Result<Option<VersionedValue>, StateError> {
        self.view
            .get_state(self.ns, key)
            .map(|v| v.map(versioned))
            .map_err(state_error)
    }

    fn range(
        &self,
        start: &str,
        end: &str,
        visit: &mut dyn FnMut(String, VersionedValue) -> bool,
    ) -> Result<(), StateError> {
        let mut from = start.to_owned();
        loop {
            let page = self
                .view
                .range(self.ns, &from, end, RANGE_PAGE)
                .map_err(state_error)?;
            let full = page.len() == RANGE_PAGE;
            let mut last = None;
            for (key, value) in page {
                last = Some(key.clone());
                if !visit(key, versioned(value)) {
                    return Ok(());
                }
            }
            match last {
                // The next key after `k` in byte order is `k ‖ 0x00`.
                Some(mut k) if full => {
                    k.push('\0');
                    from = k;
                }
                _ => return Ok(()),
            }
        }
    }

    fn key_policy(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.view.key_metadata(self.ns, key).map_err(state_error)
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::testutil::{ChainBuilder, TestTx};

    use super::*;

    #[test]
    fn range_pages_through_more_rows_than_a_page() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let mut tx = TestTx::new("t0");
        let n = RANGE_PAGE * 2 + 5;
        for i in 0..n {
            tx = tx.put("cc", &format!("k{i:04}"), b"v");
        }
        tx = tx.put("other", "k0000", b"x");
        let (block, updates) = ChainBuilder::new().next(&[tx]);
        ledger.commit(&block, &updates).unwrap();

        let view = ledger.state_view();
        let state = LedgerState::new(&view, "cc");
        let mut keys = Vec::new();
        state
            .range("", "", &mut |k, v| {
                assert_eq!(v.version, Version { block: 0, tx: 0 });
                keys.push(k);
                true
            })
            .unwrap();
        assert_eq!(keys.len(), n);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));

        let mut seen = 0;
        state
            .range("k0100", "k0300", &mut |_, _| {
                seen += 1;
                seen < 150
            })
            .unwrap();
        assert_eq!(seen, 150);

        let mut bounded = Vec::new();
        state
            .range("k0127", "k0130", &mut |k, _| {
                bounded.push(k);
                true
            })
            .unwrap();
        assert_eq!(bounded, ["k0127", "k0128", "k0129"]);
        assert_eq!(state.get("k0001").unwrap().unwrap().value, b"v");
        assert_eq!(state.get("missing").unwrap(), None);
        assert_eq!(state.key_policy("k0001").unwrap(), None);
    }
}
