//! `qcss bench ...`: benchmarks that print figures and JSON. Never used as
//! pass/fail tests: the machine is shared and noisy.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Args, Subcommand};
use qcss_network::Role;
use qcss_network::certgen::{CertAuthority, SigningProfile, random_serial, rcgen_key};
use qcss_network::identity::certs_from_pem;
use qcss_network::msp::{Msp, MspConfig, unix_now};
use qcss_network::signing::{self, KeyKind, SigningKey};

// The benches' own files, beside this one (declared here so that main.rs
// needs no change).
#[path = "bench_chain.rs"]
mod bench_chain;
#[path = "bench_fabric_client.rs"]
mod bench_fabric_client;
#[path = "bench_network/mod.rs"]
mod bench_network;
#[path = "bench_peer.rs"]
mod bench_peer;
#[path = "bench_uces.rs"]
mod bench_uces;

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Signature, hash and identity-validation speed on one core: the crypto floor.
    Crypto(CryptoArgs),
    /// WebAssembly chaincode: cold and warm invocations/s, host-call overhead.
    Chaincode(ChaincodeArgs),
    /// A local three-node ordering cluster: envelopes/s and latency per client count.
    Orderer(crate::bench_orderer::OrdererBenchArgs),
    /// One peer: validate + commit blocks/s and tx/s, share of signature checks.
    Validate(bench_peer::ValidateBenchArgs),
    /// A running network (`qcss network up`, or a Fabric Gateway through a
    /// connection file): traceability load, throughput, latency, crypto floor.
    Network(Box<bench_network::NetworkBenchArgs>),
    /// The public chain: transfers applied/s, time to finality, sync speed.
    Chain(bench_chain::ChainBenchArgs),
    /// Fabric's own Node Gateway client driving a `network up` network:
    /// tx/s, and the servers' CPU per committed transaction.
    FabricClient(bench_fabric_client::FabricClientArgs),
    /// UCES on a running demo network: evaluations/s and votes/s through
    /// the Gateway, latency, and the index records' MVCC conflicts.
    Uces(bench_uces::UcesBenchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ChaincodeArgs {
    /// The contract to measure (must be the example contract or export the same functions).
    #[arg(long, default_value = "chaincode/contracts/build/example.wasm")]
    wasm: std::path::PathBuf,
    /// Total seconds (split over the five measurements).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CryptoArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Entries in the CRL used for identity validation.
    #[arg(long, default_value_t = 100)]
    crl_entries: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Crypto(a) => crypto(a),
        BenchCommand::Chaincode(a) => chaincode(a),
        BenchCommand::Orderer(a) => crate::bench_orderer::run(a),
        BenchCommand::Validate(a) => bench_peer::run(a),
        BenchCommand::Network(a) => bench_network::run(*a),
        BenchCommand::Chain(a) => bench_chain::run(a),
        BenchCommand::FabricClient(a) => bench_fabric_client::run(a),
        BenchCommand::Uces(a) => bench_uces::run(a),
    }
}

/// The figures of `qcss bench crypto`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct CryptoReport {
    /// ECDSA P-256 signatures per second (one core, low-S normalised).
    pub sign_per_sec: f64,
    /// ECDSA P-256 verifications per second (one core, includes key parse and low-S check).
    pub verify_per_sec: f64,
    /// Ed25519 signatures per second (one core).
    pub ed25519_sign_per_sec: f64,
    /// Ed25519 verifications per second (one core, one at a time).
    pub ed25519_verify_per_sec: f64,
    /// Ed25519 verifications per second (one core) in batches of 64, as a
    /// peer's validator checks a block's signatures.
    pub ed25519_batch_verify_per_sec: f64,
    /// SHA-256 throughput over 1 KiB messages, MB/s.
    pub sha256_mb_per_sec: f64,
    /// Identity validations per second without the cache (chain, validity, CRL).
    pub identity_validate_cold_per_sec: f64,
    /// Identity validations per second with the cache warm.
    pub identity_validate_cached_per_sec: f64,
    /// CRL entries the validation checked against.
    pub crl_entries: usize,
    /// Seconds per measurement.
    pub seconds_each: f64,
}

/// Runs `f` repeatedly for about `d`; returns operations per second.
fn rate(d: Duration, mut f: impl FnMut()) -> f64 {
    // Warm up so caches and branch predictors settle.
    for _ in 0..10 {
        f();
    }
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < d {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn crypto(a: CryptoArgs) -> Result<()> {
    let d = Duration::from_secs_f64(a.seconds.max(0.05));
    let key = SigningKey::generate()?;
    let msg = vec![0x5au8; 256];
    let sig = key.sign(&msg)?;
    let sign_per_sec = rate(d, || {
        std::hint::black_box(key.sign(std::hint::black_box(&msg)).ok());
    });
    let verify_per_sec = rate(d, || {
        std::hint::black_box(signing::verify(key.public_key(), &msg, &sig).is_ok());
    });
    let ed = SigningKey::generate_kind(KeyKind::Ed25519)?;
    let ed_sig = ed.sign(&msg)?;
    let ed25519_sign_per_sec = rate(d, || {
        std::hint::black_box(ed.sign(std::hint::black_box(&msg)).ok());
    });
    let ed25519_verify_per_sec = rate(d, || {
        std::hint::black_box(signing::verify(ed.public_key(), &msg, &ed_sig).is_ok());
    });
    const BATCH: usize = 64;
    let ed25519_batch_verify_per_sec = BATCH as f64
        * rate(d, || {
            let mut b = signing::Ed25519Batch::new();
            for _ in 0..BATCH {
                // Queued: the key is well-formed and the signature 64 bytes.
                let _ = b.queue(ed.public_key(), &msg, &ed_sig);
            }
            std::hint::black_box(b.verify().is_ok());
        });
    let kib = vec![0xa5u8; 1024];
    let sha_rate = rate(d, || {
        std::hint::black_box(signing::sha256(std::hint::black_box(&kib)));
    });

    // A realistic MSP: a root, a CRL with `crl_entries` other serials, and a client.
    let ca = CertAuthority::new_root("ca.bench", "Bench", 365)?;
    let user = SigningKey::generate()?;
    let profile = SigningProfile {
        name: "bench-client".into(),
        org: "Bench".into(),
        role: Role::Client,
        attributes: BTreeMap::from([("enterprise".to_string(), "true".to_string())]),
    };
    let pem = ca.issue_signing(&profile, &rcgen_key(&user)?, &random_serial()?, 30)?;
    let der = certs_from_pem(pem.as_bytes())?.remove(0);
    let mut revoked = Vec::new();
    for _ in 0..a.crl_entries {
        revoked.push((random_serial()?, unix_now(), 1u8));
    }
    let msp = Msp::new(MspConfig {
        msp_id: "BenchMSP".into(),
        root_certs: vec![ca.cert_pem().to_string()],
        crls: vec![ca.crl(1, &revoked, 7)?],
        ..Default::default()
    })?;
    let now = unix_now();
    msp.validate_at(&der, now)?;
    let cold = rate(d, || {
        std::hint::black_box(msp.validate_at(&der, now).is_ok());
    });
    let cached = rate(d, || {
        std::hint::black_box(msp.validate(&der).is_ok());
    });
    let r = CryptoReport {
        sign_per_sec,
        verify_per_sec,
        ed25519_sign_per_sec,
        ed25519_verify_per_sec,
        ed25519_batch_verify_per_sec,
        sha256_mb_per_sec: sha_rate * 1024.0 / 1e6,
        identity_validate_cold_per_sec: cold,
        identity_validate_cached_per_sec: cached,
        crl_entries: a.crl_entries,
        seconds_each: d.as_secs_f64(),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("qcss bench crypto (one core, {:.1} s each)", r.seconds_each);
        println!(
            "  ECDSA P-256 sign          {:>12.0} /s  ({:.1} µs)",
            r.sign_per_sec,
            1e6 / r.sign_per_sec
        );
        println!(
            "  ECDSA P-256 verify        {:>12.0} /s  ({:.1} µs)",
            r.verify_per_sec,
            1e6 / r.verify_per_sec
        );
        println!(
            "  Ed25519 sign              {:>12.0} /s  ({:.1} µs)",
            r.ed25519_sign_per_sec,
            1e6 / r.ed25519_sign_per_sec
        );
        println!(
            "  Ed25519 verify            {:>12.0} /s  ({:.1} µs)",
            r.ed25519_verify_per_sec,
            1e6 / r.ed25519_verify_per_sec
        );
        println!(
            "  Ed25519 verify, batch of 64{:>11.0} /s  ({:.1} µs)",
            r.ed25519_batch_verify_per_sec,
            1e6 / r.ed25519_batch_verify_per_sec
        );
        println!(
            "  SHA-256 (1 KiB messages)  {:>12.1} MB/s",
            r.sha256_mb_per_sec
        );
        println!(
            "  identity validation cold  {:>12.0} /s  (chain + CRL of {} entries)",
            r.identity_validate_cold_per_sec, r.crl_entries
        );
        println!(
            "  identity validation cached{:>12.0} /s",
            r.identity_validate_cached_per_sec
        );
    }
    Ok(())
}

fn chaincode(a: ChaincodeArgs) -> Result<()> {
    use anyhow::Context;
    let wasm = std::fs::read(&a.wasm).with_context(|| {
        format!(
            "{} (build it with chaincode/build-contracts.sh)",
            a.wasm.display()
        )
    })?;
    let r = qcss_chaincode::bench::run(&wasm, Duration::from_secs_f64(a.seconds.max(0.1)))?;
    let v = serde_json::to_value(&r)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "qcss bench chaincode ({}, {} bytes, one core)",
        a.wasm.display(),
        r.module_bytes
    );
    for (name, rate) in [
        ("cold (new runtime + install + first put)", &r.cold),
        ("warm put", &r.warm_put),
        ("warm get", &r.warm_get),
        ("warm noop (per-call overhead)", &r.warm_noop),
        ("warm touch (many host calls)", &r.warm_touch),
    ] {
        println!(
            "  {name:<42} {:>10.0} /s  {:>9.1} µs/call",
            rate.per_sec, rate.us_per_call
        );
    }
    let _ = v;
    Ok(())
}
