//! [`bench_commit`]: how fast the ledger commits blocks, for `qcss bench`.
//!
//! Builds synthetic blocks (see `testutil.rs`) outside the timed section and
//! times only [`Ledger::commit`], fsync included. Every transaction is VALID
//! and writes `writes_per_tx` keys of one namespace, drawn round-robin from
//! [`BENCH_KEYSPACE`] keys, with [`BENCH_VALUE_BYTES`]-byte values, so state
//! updates, history and the tx index all grow as in a real load.

use std::path::Path;
use std::time::{Duration, Instant};

use prost::Message;

use crate::ledger::testutil::{ChainBuilder, TestTx};
use crate::ledger::{Ledger, LedgerError};

/// Distinct keys the benchmark writes.
pub(super) const BENCH_KEYSPACE: u64 = 100_000;
/// Size of each value written.
pub(super) const BENCH_VALUE_BYTES: usize = 100;

/// What [`bench_commit`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CommitBenchReport {
    /// Blocks committed.
    pub blocks: u64,
    /// Transactions per block.
    pub txs_per_block: usize,
    /// Writes per transaction.
    pub writes_per_tx: usize,
    /// Bytes per value.
    pub value_bytes: usize,
    /// Average encoded block size.
    pub avg_block_bytes: u64,
    /// Time spent in `commit`, seconds.
    pub commit_secs: f64,
    /// Blocks per second of commit time.
    pub blocks_per_sec: f64,
    /// Transactions per second of commit time.
    pub txs_per_sec: f64,
    /// Ledger height afterwards.
    pub height: u64,
}

/// Commits `blocks` synthetic blocks of `txs_per_block` transactions with
/// `writes_per_tx` writes each to the ledger in `dir` (created, or continued
/// if it exists) and reports commit throughput.
pub fn bench_commit(
    dir: &Path,
    blocks: u64,
    txs_per_block: usize,
    writes_per_tx: usize,
) -> Result<CommitBenchReport, LedgerError> {
    let ledger = Ledger::open(dir)?;
    let mut chain = ChainBuilder::following(&ledger);
    let value = vec![0x5a; BENCH_VALUE_BYTES];
    let mut spent = Duration::ZERO;
    let mut bytes = 0u64;
    let mut key_counter = 0u64;
    for _ in 0..blocks {
        let number = chain.next_number();
        let txs: Vec<TestTx> = (0..txs_per_block)
            .map(|t| {
                let mut tx = TestTx::new(format!("bench-{number}-{t}"));
                for _ in 0..writes_per_tx {
                    let key = format!("key{:08}", key_counter % BENCH_KEYSPACE);
                    key_counter += 1;
                    tx = tx.put("bench", &key, &value);
                }
                tx
            })
            .collect();
        let (block, updates) = chain.next(&txs);
        bytes += block.encoded_len() as u64;
        let started = Instant::now();
        ledger.commit(&block, &updates)?;
        spent += started.elapsed();
    }
    let secs = spent.as_secs_f64();
    let rate = |n: f64| if secs > 0.0 { n / secs } else { 0.0 };
    Ok(CommitBenchReport {
        blocks,
        txs_per_block,
        writes_per_tx,
        value_bytes: BENCH_VALUE_BYTES,
        avg_block_bytes: bytes.checked_div(blocks).unwrap_or(0),
        commit_secs: secs,
        blocks_per_sec: rate(blocks as f64),
        txs_per_sec: rate((blocks * txs_per_block as u64) as f64),
        height: ledger.height(),
    })
}
