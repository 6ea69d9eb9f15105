//! `qcss bench validate`: how fast one peer validates and commits blocks
//! (issue 6's figures), from the library benches
//! [`qcss_peer::validator::bench_validate`] (orderer signature, per-transaction
//! signature and policy checks on all cores, MVCC in order, ledger commit
//! with its fsync) and [`qcss_peer::ledger::bench_commit`] (the ledger commit
//! alone). Blocks are built before the timed section; each transaction is a
//! client invocation endorsed by two of three orgs (three signatures).

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct ValidateBenchArgs {
    /// Transactions per block, comma-separated: one measurement each.
    #[arg(long, value_delimiter = ',', default_value = "100,500")]
    txs: Vec<usize>,
    /// Transactions per measurement (blocks = this / transactions per block).
    #[arg(long, default_value_t = 20_000)]
    total: usize,
    /// Check threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// The identities' key type: p256 or ed25519 (batch-verified).
    #[arg(long, default_value = "p256")]
    key_type: qcss_network::signing::KeyKind,
    /// Validate as a peer whose own endorsements (one of the three
    /// signatures) it recognises and does not verify again, as a running
    /// peer does.
    #[arg(long)]
    own: bool,
    /// Working directory for the ledgers (a fresh temporary one if absent;
    /// removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// One block size.
#[derive(Debug, serde::Serialize)]
pub(super) struct ValidatePoint {
    /// Validate + commit, as the committer runs it.
    pub validate: qcss_peer::validator::ValidateBenchReport,
    /// The ledger commit alone (same block size, one write per transaction).
    pub commit_only: qcss_peer::ledger::CommitBenchReport,
}

pub(super) fn run(a: ValidateBenchArgs) -> Result<()> {
    let base = match &a.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("qcss-bench-validate-{}", std::process::id())),
    };
    let mut points = Vec::new();
    for &txs in &a.txs {
        let txs = txs.max(1);
        let blocks = (a.total / txs).max(1) as u64;
        let vdir = base.join(format!("validate-{txs}"));
        let _ = std::fs::remove_dir_all(&vdir);
        let validate = qcss_peer::validator::bench_validate(
            &vdir,
            blocks,
            txs,
            qcss_peer::validator::ValidateBenchOptions {
                threads: a.threads,
                key_kind: a.key_type,
                own: a.own,
            },
        )
        .map_err(|e| anyhow!("validate benchmark ({txs} tx/block): {e}"))?;
        let cdir = base.join(format!("commit-{txs}"));
        let _ = std::fs::remove_dir_all(&cdir);
        let commit_only = qcss_peer::ledger::bench_commit(&cdir, blocks, txs, 1)
            .map_err(|e| anyhow!("commit benchmark ({txs} tx/block): {e}"))?;
        if !a.json {
            let v = &validate;
            println!(
                "{:>4} tx/block, {} blocks, {} threads: {:>7.1} blocks/s {:>8.0} tx/s validate+commit \
                 (validation alone {:.0} tx/s; ledger commit alone {:.0} tx/s)",
                v.txs_per_block,
                v.blocks,
                v.threads,
                v.blocks_per_sec,
                v.txs_per_sec,
                v.validate_txs_per_sec,
                commit_only.txs_per_sec
            );
            println!(
                "     wall time: parallel checks {:.0}% (signature checks, {} per tx: {:.2} CPU-s \
                 = {:.0}% of {} cores' time), in-order checks {:.0}%, orderer signature + commit {:.0}%",
                100.0 * v.check_secs / v.total_secs.max(1e-9),
                v.signatures_per_tx,
                v.signature_cpu_secs,
                100.0 * v.signature_cpu_secs / (v.total_secs * v.threads.max(1) as f64).max(1e-9),
                v.threads,
                100.0 * v.sequential_secs / v.total_secs.max(1e-9),
                100.0 * v.commit_secs / v.total_secs.max(1e-9),
            );
        }
        points.push(ValidatePoint {
            validate,
            commit_only,
        });
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "points": points }))?
        );
    }
    if a.dir.is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
    Ok(())
}
