//! The validator: checks endorsement policy and MVCC versions of a block;
//! no I/O of its own, never runs chaincode. Start at [`validate_block`].
//!
//! Input: a decoded block (its chaining is the ledger's to check), the live
//! [`Channel`] (MSPs, CRLs), a [`CommittedState`] (the ledger, or a
//! [`MemoryState`]) and a [`PolicyProvider`] (chaincode endorsement
//! policies, and rules for single keys such as `_lifecycle`'s; the node's
//! provider is the `Lifecycle`). Output: [`BlockUpdates`], one [`TxUpdate`]
//! per envelope with its Fabric `TxValidationCode` and, for VALID ones only,
//! its writes — ready for [`Ledger::commit`]. [`commit_block`] does both,
//! after checking the orderer's signature.
//!
//! Two phases. First, every check a transaction can pass or fail on its own
//! (decoding, creator, client signature, tx id, structure, endorsement
//! signatures, chaincode policy, the provider's key rules: `transaction.rs`,
//! `endorsement.rs`) runs in parallel on scoped threads. Then, in block
//! order, the checks that depend on earlier transactions (duplicate tx id,
//! key-level policies, MVCC: `mvcc.rs`) against committed state plus the
//! writes of the earlier VALID transactions. First failure wins; the order and the code of each
//! check are tabled in `transaction.rs`. Read-write sets: `rwset.rs`;
//! key-level policy encoding: `policy.rs`; reading a committed transaction's
//! writes back to rebuild state ([`committed_writes`]): `replay.rs`; test and
//! benchmark fixtures
//! (real Fabric-shaped transactions from in-process CAs): [`fixture`].

mod bench;
mod commit;
mod endorsement;
mod error;
pub mod fixture;
mod mvcc;
mod own;
mod policy;
mod replay;
mod rwset;
mod state;
mod transaction;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use qcss_network::channel::Channel;
use qcss_proto::common::Block;
use qcss_proto::protos::TxValidationCode;

pub use bench::{BenchError, ValidateBenchOptions, ValidateBenchReport, bench_validate};
pub use commit::{commit_block, commit_block_with, commit_genesis};
pub use error::ValidatorError;
pub use own::OwnSignatures;
pub use policy::{
    KEY_POLICY_ENTRY, KeyRule, KeyWrite, PolicyProvider, StaticPolicies, decode_key_policy,
    encode_key_policy,
};
pub use replay::committed_writes;
pub use state::{CommittedState, LedgerSnapshot, MemoryState};
pub use transaction::proposal_hash;

use crate::ledger::{BlockUpdates, LedgerError};
#[cfg(doc)]
use crate::ledger::{Ledger, TxUpdate};
use mvcc::BlockState;
use transaction::{Checked, CheckedTx, Checker, SigClock};

/// Envelopes a worker takes at a time from the shared queue.
const CHUNK: usize = 4;

/// Why a transaction is invalid: its code and, for the log, the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) code: TxValidationCode,
    pub(crate) reason: String,
}

impl Rejection {
    pub(crate) fn new(code: TxValidationCode, reason: impl Into<String>) -> Self {
        Rejection {
            code,
            reason: reason.into(),
        }
    }
}

/// `Err(Rejection::new(code, reason))`.
pub(crate) fn fail<T>(code: TxValidationCode, reason: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(code, reason))
}

/// How to validate.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidateOptions<'a> {
    /// Threads for the per-transaction checks; `0` = one per available core.
    /// Never more than the block has chunks of work.
    pub threads: usize,
    /// Endorsements this peer signed itself: their signatures are not
    /// verified again (the endorser's identity still is).
    pub own: Option<&'a OwnSignatures>,
}

/// A validated block: the updates for the ledger and how long each phase took.
#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    /// One update per envelope, in block order.
    pub updates: BlockUpdates,
    /// Timings.
    pub stats: ValidationStats,
}

/// Where validation spent its time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ValidationStats {
    /// Threads the per-transaction checks ran on.
    pub threads: usize,
    /// Wall time of the parallel per-transaction checks.
    pub check_time: Duration,
    /// Time spent validating identities with their MSPs and verifying
    /// signatures, summed over threads (so it may exceed `check_time`).
    pub signature_time: Duration,
    /// Wall time of the in-order checks (duplicates, key-level policies, MVCC).
    pub sequential_time: Duration,
    /// Transactions found VALID.
    pub valid: usize,
}

/// Validates `block` against `state`: the code of every transaction and the
/// writes of the valid ones, with one thread per core for the signature
/// checks. See [`validate_block_with`].
pub fn validate_block<S, P>(
    block: &Block,
    channel: &Channel,
    state: &S,
    policies: &P,
) -> Result<BlockUpdates, ValidatorError>
where
    S: CommittedState + ?Sized,
    P: PolicyProvider + ?Sized,
{
    validate_block_with(block, channel, state, policies, ValidateOptions::default())
        .map(|v| v.updates)
}

/// Validates `block` as the next block after `state`.
///
/// An invalid transaction is not an error: it gets its code and no writes,
/// and the rest of the block is still validated. Errors are reserved for a
/// block without a header, too many transactions to number, or `state`
/// failing to answer; then nothing is decided.
pub fn validate_block_with<S, P>(
    block: &Block,
    channel: &Channel,
    state: &S,
    policies: &P,
    options: ValidateOptions<'_>,
) -> Result<Validation, ValidatorError>
where
    S: CommittedState + ?Sized,
    P: PolicyProvider + ?Sized,
{
    let number = block
        .header
        .as_ref()
        .ok_or(ValidatorError::NoHeader)?
        .number;
    let envelopes: &[Vec<u8>] = block.data.as_ref().map_or(&[], |d| d.data.as_slice());
    if u32::try_from(envelopes.len()).is_err() {
        return Err(ValidatorError::TooManyTransactions {
            number,
            txs: envelopes.len(),
        });
    }
    let checker = Checker {
        channel,
        policies,
        block,
        time_ms: qcss_network::block::block_time_ms(block),
        own: options.own,
    };
    let started = Instant::now();
    let (checked, threads, signature_time) = check_all(&checker, envelopes, options.threads);
    let check_time = started.elapsed();

    let started = Instant::now();
    let state_err = |source: LedgerError| ValidatorError::State { number, source };
    let mut block_state = BlockState::new(state, number);
    let mut seen: HashSet<String> = HashSet::with_capacity(checked.len());
    let mut txs = Vec::with_capacity(checked.len());
    let mut valid = 0;
    for (position, item) in checked.into_iter().enumerate() {
        // Fits: the count was checked against u32 above.
        let position = position as u32;
        let CheckedTx {
            mut update,
            checked,
        } = item;
        let tx_id = std::mem::take(&mut update.tx_id);
        let duplicate = || -> Result<bool, LedgerError> {
            Ok(!tx_id.is_empty() && (seen.contains(&tx_id) || block_state.is_committed(&tx_id)?))
        };
        let outcome = in_order(&block_state, channel, &checked, duplicate).map_err(state_err)?;
        match outcome {
            Ok(rwset) => {
                update.code = TxValidationCode::Valid;
                valid += 1;
                if let Some(rwset) = rwset {
                    block_state.apply(position, rwset).map_err(state_err)?;
                    update.writes = rwset.writes().cloned().collect();
                    update.metadata_writes = rwset.metadata_writes().cloned().collect();
                }
            }
            Err(r) => {
                tracing::debug!(
                    block = number,
                    position,
                    tx_id = %tx_id,
                    code = r.code.as_str_name(),
                    reason = %r.reason,
                    "transaction invalid"
                );
                update.code = r.code;
            }
        }
        if !tx_id.is_empty() {
            seen.insert(tx_id.clone());
        }
        update.tx_id = tx_id;
        txs.push(update);
    }
    let stats = ValidationStats {
        threads,
        check_time,
        signature_time,
        sequential_time: started.elapsed(),
        valid,
    };
    tracing::debug!(
        block = number,
        txs = txs.len(),
        valid,
        threads,
        check_us = check_time.as_micros() as u64,
        sequential_us = stats.sequential_time.as_micros() as u64,
        "block validated"
    );
    Ok(Validation {
        updates: BlockUpdates { txs },
        stats,
    })
}

/// The in-order verdict on one transaction: its parallel findings, then the
/// duplicate check, then key-level policies and MVCC against `state`. `Ok`
/// holds the read-write set to apply (`None` for a config transaction).
fn in_order<'c, S: CommittedState + ?Sized>(
    state: &BlockState<'_, S>,
    channel: &Channel,
    checked: &'c Checked,
    duplicate: impl FnOnce() -> Result<bool, LedgerError>,
) -> Result<Result<Option<&'c rwset::ReadWriteSet>, Rejection>, LedgerError> {
    let endorsed = match checked {
        Checked::Early(r) => return Ok(Err(r.clone())),
        _ if duplicate()? => {
            return Ok(Err(Rejection::new(
                TxValidationCode::DuplicateTxid,
                "tx id already committed or earlier in this block",
            )));
        }
        Checked::Config => return Ok(Ok(None)),
        Checked::Endorser(e) => e,
    };
    if let Err(r) = &endorsed.outcome {
        return Ok(Err(r.clone()));
    }
    if let Err(r) = state.check_key_policies(channel, &endorsed.rwset, &endorsed.endorsers)? {
        return Ok(Err(r));
    }
    Ok(state
        .check_reads(&endorsed.rwset)?
        .map(|()| Some(&endorsed.rwset)))
}

/// Runs the per-transaction checks on up to `threads` threads (the caller's
/// included). Returns the results in block order, the threads used and the
/// summed signature time.
fn check_all<P: PolicyProvider + ?Sized>(
    checker: &Checker<'_, P>,
    envelopes: &[Vec<u8>],
    threads: usize,
) -> (Vec<CheckedTx>, usize, Duration) {
    let cores = match threads {
        // Asked once: the standard library reads the cgroup files each time.
        0 => {
            static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
            *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        }
        n => n,
    };
    let threads = cores.min(envelopes.len().div_ceil(CHUNK)).max(1);
    let next = AtomicUsize::new(0);
    let work = || {
        let mut clock = SigClock::batching();
        let mut out = Vec::new();
        let mut queued = Vec::new();
        loop {
            let start = next.fetch_add(CHUNK, Ordering::Relaxed);
            if start >= envelopes.len() {
                break;
            }
            let end = (start + CHUNK).min(envelopes.len());
            for (i, env) in envelopes[start..end].iter().enumerate() {
                clock.queued = false;
                out.push((start + i, checker.check(env, &mut clock)));
                if clock.queued {
                    queued.push(out.len() - 1);
                }
            }
        }
        // The Ed25519 signatures this worker accepted provisionally, checked
        // at once; if any is bad, the transactions that queued one are
        // checked again one signature at a time, which finds it and gives
        // each its code exactly as if nothing had been batched.
        if let Some(batch) = clock.batch.take() {
            let started = Instant::now();
            let all_good = batch.verify().is_ok();
            clock.spent += started.elapsed();
            if !all_good {
                let mut eager = SigClock::default();
                for k in queued {
                    let i = out[k].0;
                    out[k] = (i, checker.check(&envelopes[i], &mut eager));
                }
                clock.spent += eager.spent;
            }
        }
        (out, clock.spent)
    };
    let parts: Vec<(Vec<(usize, CheckedTx)>, Duration)> = if threads == 1 {
        vec![work()]
    } else {
        std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
            let mut parts = vec![work()];
            for h in helpers {
                // A panic in a check is a bug: re-raise it on this thread.
                parts.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
            }
            parts
        })
    };
    let mut signature_time = Duration::ZERO;
    let mut slots: Vec<Option<CheckedTx>> = (0..envelopes.len()).map(|_| None).collect();
    for (items, spent) in parts {
        signature_time += spent;
        for (i, item) in items {
            slots[i] = Some(item);
        }
    }
    // Every index below len was taken by exactly one worker; a missing one
    // cannot happen, but is re-checked rather than unwrapped.
    let checked = slots
        .into_iter()
        .zip(envelopes)
        .map(|(slot, env)| slot.unwrap_or_else(|| checker.check(env, &mut SigClock::default())))
        .collect();
    (checked, threads, signature_time)
}
