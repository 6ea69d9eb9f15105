//! `qcss`: the one QCSS binary.
//!
//! Each subcommand lives in its own module: [`ca`] (run a CA, register,
//! enroll, reenroll, revoke, CRLs), [`orderer`] and [`channel`] (run an
//! orderer; genesis blocks, config updates), [`peer`] (run a peer; `tx`,
//! `ledger`), [`chaincode`] (the lifecycle), [`network`] (a whole local
//! consortium: up, status, down; the demo in [`network_demo`]), [`trace`]
//! (`trace`, `codes`, `scan`, `recall`), [`chain`] and [`wallet`] (the public
//! chain's node and wallet) and [`bench`]. This crate parses
//! arguments, reads files and prints; the work is in the library crates
//! (`network` orchestrates processes, see its module comment).

// Unwraps only in tests (clippy.toml allows them there): a command says
// what went wrong instead of panicking.
#![deny(clippy::unwrap_used)]

mod anchor;
mod anchor_keys;
mod anchor_proof;
mod anchor_rewards;
mod bench;
mod bench_orderer;
mod ca;
mod chain;
mod chaincode;
mod channel;
mod epcis;
mod epcis_hash;
mod files;
mod files_sealed;
mod index;
mod iot;
mod network;
mod network_chain;
mod network_demo;
mod network_status;
mod orderer;
mod peer;
mod rewards;
mod trace;
mod trace_render;
mod uces;
mod wallet;
mod whole_file;

use clap::{Parser, Subcommand};

/// QCSS: a permissioned consortium ledger for product-quality traceability.
#[derive(Debug, Parser)]
#[command(name = "qcss", version, about)]
struct Cli {
    /// Log filter (tracing env-filter syntax), e.g. `info` or `qcss_ca=debug`.
    #[arg(long, global = true, env = "QCSS_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Certificate authority: run one, or talk to one.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// Ordering service node.
    #[command(subcommand)]
    Orderer(orderer::OrdererCommand),
    /// Channel configuration and genesis blocks.
    #[command(subcommand)]
    Channel(orderer::ChannelCommand),
    /// Benchmarks that print figures (and JSON).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// A whole local consortium: up, status, down.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Run a peer.
    #[command(subcommand)]
    Peer(peer::PeerCommand),
    /// Chaincode lifecycle: package, install, approve, commit, list.
    #[command(subcommand)]
    Chaincode(chaincode::ChaincodeCommand),
    /// Submit or evaluate transactions through a peer's Gateway.
    #[command(subcommand)]
    Tx(peer::TxCommand),
    /// Read a peer's ledger: info, blocks, transactions, key history; verify.
    #[command(subcommand)]
    Ledger(peer::LedgerCommand),
    /// Trace a unit code or batch: its verified history on the ledger.
    Trace(trace::TraceArgs),
    /// IoT state channels: simulate a device and a gateway, close, challenge,
    /// settle, prove and verify a reading (docs/iot.md).
    #[command(subcommand)]
    Iot(iot::IotCommand),
    /// Unit codes (one item, one code): keygen, issue and verify offline; register.
    #[command(subcommand)]
    Codes(trace::CodesCommand),
    /// Record a consumer's scan (or claim) of a unit code.
    Scan(trace::ScanArgs),
    /// Recall a batch and every batch made from it.
    Recall(trace::RecallArgs),
    /// The public QCSS chain: genesis, run a node, status.
    #[command(subcommand)]
    Chain(chain::ChainCommand),
    /// QCSS token wallet: keys, balances, transfers, votes, rewards.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// EPCIS 2.0: export a batch's events as JSON-LD; import a document's events.
    #[command(subcommand)]
    Epcis(epcis::EpcisCommand),
    /// Anchoring on the public chain: the bridge, proofs, offline verification, audit.
    #[command(subcommand)]
    Anchor(anchor::AnchorCommand),
    /// The QCSS index of a product (GTIN) or an enterprise: show, explain.
    #[command(subcommand)]
    Index(index::IndexCommand),
    /// UCES evaluations: evaluate a claimed unit, vote, finalize, show.
    #[command(subcommand)]
    Uces(uces::UcesCommand),
    /// Consumer rewards from the public chain's DApp reward pool: bind an address, sign and submit batches.
    #[command(subcommand)]
    Rewards(rewards::RewardsCommand),
    /// MDSS files on a peer: put, get, stat, verify, repair.
    #[command(subcommand)]
    Files(files::FilesCommand),
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Ca(c) => ca::run(c),
        Command::Orderer(o) => orderer::run(o),
        Command::Channel(c) => orderer::run_channel(c),
        Command::Bench(b) => bench::run(b),
        Command::Network(n) => network::run(n),
        Command::Peer(p) => peer::run(p),
        Command::Chaincode(c) => chaincode::run(c),
        Command::Tx(t) => peer::run_tx(t),
        Command::Ledger(l) => peer::run_ledger(l),
        Command::Trace(a) => trace::run_trace(a),
        Command::Iot(c) => iot::run(c),
        Command::Codes(c) => trace::run_codes(c),
        Command::Scan(a) => trace::run_scan(a),
        Command::Recall(a) => trace::run_recall(a),
        Command::Epcis(c) => epcis::run(c),
        Command::Chain(c) => chain::run(c),
        Command::Wallet(w) => wallet::run(w),
        Command::Anchor(a) => anchor::run(a),
        Command::Index(c) => index::run(c),
        Command::Uces(c) => uces::run(c),
        Command::Rewards(r) => rewards::run(r),
        Command::Files(f) => files::run(f),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Keeps glibc from returning freed memory to the kernel after every
/// chaincode call: wasmi allocates and zero-fills each instance's memory, and
/// with glibc's defaults those blocks are mmap'd and unmapped per call, which
/// made a warm invocation ~145 µs instead of ~16 µs (measured with perf;
/// see chaincode/README.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: mallopt only adjusts allocator thresholds; it is called once,
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
