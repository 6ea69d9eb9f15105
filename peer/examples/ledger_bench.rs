//! Commit throughput of the ledger, until the CLI's `qcss bench` wires
//! `bench_commit` in.
//!
//! `cargo run -p qcss-peer --example ledger_bench -- [BLOCKS] [TXS_PER_BLOCK] [WRITES_PER_TX]`
//! (defaults 200, 100, 2). Prints the report as JSON. Uses a fresh temporary
//! directory under `$TMPDIR`.

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("arguments are numbers"))
        .collect();
    let arg = |i: usize, default: u64| args.get(i).copied().unwrap_or(default);
    let dir = tempfile::tempdir().expect("temporary directory");
    let report = qcss_peer::ledger::bench_commit(
        dir.path(),
        arg(0, 200),
        arg(1, 100) as usize,
        arg(2, 2) as usize,
    )
    .expect("benchmark runs");
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("report serialises")
    );
}
