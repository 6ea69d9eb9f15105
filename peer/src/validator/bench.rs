//! [`bench_validate`]: how fast a peer validates and commits blocks, for
//! `qcss bench`.
//!
//! Blocks are built outside the timed section from a three-org fixture
//! network: every transaction is a client's invocation of chaincode `bench`
//! under `AND('Org1MSP.peer', 'Org2MSP.peer')`, endorsed by both peers,
//! reading one absent key and writing it (100-byte value), so each costs
//! three signature checks and one MVCC read, and all are VALID. The timed
//! section is [`commit_block_with`] exactly as the committer runs it: orderer
//! signature, parallel checks, in-order checks, ledger commit with fsync.

use std::path::Path;
use std::time::{Duration, Instant};

use prost::Message;
use qcss_network::policy::Policy;
use qcss_network::signing::KeyKind;
use qcss_proto::common::{Envelope, Payload};
use qcss_proto::protos::{ChaincodeActionPayload, Transaction};

use crate::ledger::{Ledger, LedgerError};
use crate::validator::fixture::{FixtureError, Network, RwSet};
use crate::validator::{
    OwnSignatures, StaticPolicies, ValidateOptions, ValidatorError, commit_block_with,
    commit_genesis,
};

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Building the fixture network or transactions failed.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    /// Validation or commit failed.
    #[error(transparent)]
    Validator(#[from] ValidatorError),
    /// The benchmark's policy does not parse (a bug in the benchmark).
    #[error(transparent)]
    Policy(#[from] qcss_network::policy::PolicyError),
    /// Opening the ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A benchmark transaction was not VALID (a bug in the benchmark).
    #[error("block {number}: only {valid} of {txs} transactions were valid")]
    NotAllValid {
        /// The block.
        number: u64,
        /// Valid transactions.
        valid: usize,
        /// Transactions.
        txs: usize,
    },
}

/// What [`bench_validate`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ValidateBenchReport {
    /// Blocks validated and committed (after the genesis block).
    pub blocks: u64,
    /// Transactions per block.
    pub txs_per_block: usize,
    /// Signatures checked per transaction (client + endorsers).
    pub signatures_per_tx: usize,
    /// Threads the per-transaction checks ran on.
    pub threads: usize,
    /// Wall time of the whole timed section, seconds.
    pub total_secs: f64,
    /// Of which: the parallel per-transaction checks (decode, identities,
    /// signatures, chaincode policy), seconds.
    pub check_secs: f64,
    /// Of which: the in-order checks (duplicates, key-level policies, MVCC).
    pub sequential_secs: f64,
    /// Of which: the rest — orderer signature and data hash checks, and the
    /// ledger commit with its fsync — seconds.
    pub commit_secs: f64,
    /// Time inside identity validation and signature verification, summed
    /// over threads, seconds (exceeds `check_secs` when threads overlap).
    pub signature_cpu_secs: f64,
    /// `check_secs / total_secs`: the share of wall time the parallel
    /// signature checks take.
    pub signature_share: f64,
    /// Blocks per second, validate + commit.
    pub blocks_per_sec: f64,
    /// Transactions per second, validate + commit.
    pub txs_per_sec: f64,
    /// Transactions per second of validation alone (no commit).
    pub validate_txs_per_sec: f64,
    /// Ledger height afterwards.
    pub height: u64,
}

/// How [`bench_validate`] runs besides the sizes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidateBenchOptions {
    /// Check threads (`0` = one per core).
    pub threads: usize,
    /// The identities' key type.
    pub key_kind: KeyKind,
    /// Validate as Org1's peer that signed its own endorsements: those are
    /// recognised ([`OwnSignatures`]) and not verified again.
    pub own: bool,
}

/// Org1's endorsement in `envelope`: the bytes it signed and its signature.
fn first_endorsement(envelope: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let env = Envelope::decode(envelope).ok()?;
    let payload = Payload::decode(env.payload.as_slice()).ok()?;
    let tx = Transaction::decode(payload.data.as_slice()).ok()?;
    let cap = ChaincodeActionPayload::decode(tx.actions.first()?.payload.as_slice()).ok()?;
    let action = cap.action?;
    let e = action.endorsements.first()?;
    let mut signed = action.proposal_response_payload.clone();
    signed.extend_from_slice(&e.endorser);
    Some((signed, e.signature.clone()))
}

/// Validates and commits `blocks` blocks of `txs_per_block` transactions
/// into a new ledger in `dir` (which must be empty or absent), and reports
/// throughput.
pub fn bench_validate(
    dir: &Path,
    blocks: u64,
    txs_per_block: usize,
    opts: ValidateBenchOptions,
) -> Result<ValidateBenchReport, BenchError> {
    let network =
        Network::with_key_kind("bench", &["Org1MSP", "Org2MSP", "Org3MSP"], opts.key_kind)?;
    let own = OwnSignatures::new();
    let channel = network.channel()?;
    let policy = Policy::parse("AND('Org1MSP.peer', 'Org2MSP.peer')")?;
    let policies = StaticPolicies::new().with("bench", policy);
    let ledger = Ledger::open(dir)?;
    commit_genesis(&ledger, &network.genesis(), &channel)?;
    let (peer1, peer2) = (network.peer("Org1MSP")?, network.peer("Org2MSP")?);
    let value = vec![0x5a; 100];

    let mut built = Vec::with_capacity(blocks as usize);
    let mut previous = ledger
        .last_block_hash()
        .map(|h| h.to_vec())
        .unwrap_or_default();
    for b in 0..blocks {
        let number = ledger.height() + b;
        let mut envelopes = Vec::with_capacity(txs_per_block);
        for t in 0..txs_per_block {
            let key = format!("key-{number}-{t}");
            let rwset = RwSet::new()
                .read("bench", &key, None)
                .write("bench", &key, &value);
            let tx = network
                .tx("Org1MSP", "bench")?
                .rwset(rwset)
                .endorsed_by(peer1)
                .endorsed_by(peer2)
                .build()?;
            if opts.own
                && let Some((signed, sig)) = first_endorsement(&tx.envelope)
            {
                own.remember(&signed, &sig);
            }
            envelopes.push(tx.envelope);
        }
        let block = network.block(number, &previous, envelopes)?;
        previous = qcss_network::block::block_hash(&block).to_vec();
        built.push(block);
    }

    let options = ValidateOptions {
        threads: opts.threads,
        own: opts.own.then_some(&own),
    };
    let (mut total, mut check, mut sequential, mut signature) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    let mut used_threads = 0;
    for block in &built {
        let started = Instant::now();
        let v = commit_block_with(&ledger, block, &channel, &policies, options)?;
        total += started.elapsed();
        check += v.stats.check_time;
        sequential += v.stats.sequential_time;
        signature += v.stats.signature_time;
        used_threads = used_threads.max(v.stats.threads);
        if v.stats.valid != txs_per_block {
            return Err(BenchError::NotAllValid {
                number: block.header.as_ref().map_or(0, |h| h.number),
                valid: v.stats.valid,
                txs: txs_per_block,
            });
        }
    }
    let secs = total.as_secs_f64();
    let txs = (blocks * txs_per_block as u64) as f64;
    let rate = |n: f64, s: f64| if s > 0.0 { n / s } else { 0.0 };
    let validate_secs = check.as_secs_f64() + sequential.as_secs_f64();
    Ok(ValidateBenchReport {
        blocks,
        txs_per_block,
        signatures_per_tx: 3,
        threads: used_threads,
        total_secs: secs,
        check_secs: check.as_secs_f64(),
        sequential_secs: sequential.as_secs_f64(),
        commit_secs: (secs - validate_secs).max(0.0),
        signature_cpu_secs: signature.as_secs_f64(),
        signature_share: rate(check.as_secs_f64(), secs),
        blocks_per_sec: rate(blocks as f64, secs),
        txs_per_sec: rate(txs, secs),
        validate_txs_per_sec: rate(txs, validate_secs),
        height: ledger.height(),
    })
}
