//! `qcss bench fabric-client`: load through Hyperledger Fabric's own Node
//! Gateway client (`tests/node/gateway-load.js`: `put` on the example
//! contract, many in flight from one client process, the way Fabric's own
//! figures are taken) against a `qcss network up` network, and the CPU the
//! network's processes spent per committed transaction.
//!
//! The client is single-threaded JavaScript and usually caps the rate long
//! before the servers do, so tx/s says little about the servers; CPU per
//! transaction, summed over the peers and orderers (read from
//! `/proc/PID/stat` before and after), is the figure to compare with
//! another ledger measured the same way (issue 20, goal 5).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use super::bench_network::{clock_ticks, cpu_ticks};
use crate::network::{Progress, abs, deploy_contract, read_info, read_pids};

#[derive(Debug, Args)]
pub(crate) struct FabricClientArgs {
    /// The network's directory (from `qcss network up`).
    #[arg(long, default_value = "qcss-net")]
    dir: PathBuf,
    /// Transactions: `put` on the example contract, each waited for until
    /// its commit status is known.
    #[arg(long, default_value_t = 12_000)]
    count: u64,
    /// Transactions in flight at once, from the one client process.
    #[arg(long, default_value_t = 200)]
    inflight: u32,
    /// The org (1-based) whose peer the client talks to and whose identity
    /// it uses.
    #[arg(long, default_value_t = 1)]
    org: usize,
    /// The identity: a directory under the org's (as `network up` enrolls).
    #[arg(long = "as", default_value = "user1")]
    identity: String,
    /// The directory holding gateway-load.js and its node_modules
    /// (`npm ci --prefix tests/node`).
    #[arg(long, default_value = "tests/node")]
    node_dir: PathBuf,
    /// The example contract, deployed as `example` if the network lacks it.
    #[arg(long, default_value = "chaincode/contracts/build/example.wasm")]
    example: PathBuf,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The network's processes and their CPU ticks so far.
fn snapshot(pids: &BTreeMap<String, u32>) -> BTreeMap<String, u64> {
    pids.iter()
        .filter_map(|(n, p)| cpu_ticks(*p).map(|t| (n.clone(), t)))
        .collect()
}

pub(crate) fn run(a: FabricClientArgs) -> Result<()> {
    let dir = abs(&a.dir)?;
    let mut info = read_info(&dir)?;
    let org = a
        .org
        .checked_sub(1)
        .and_then(|i| info.orgs.get(i))
        .with_context(|| format!("--org {}: the network has {} orgs", a.org, info.orgs.len()))?
        .clone();
    let node_dir = abs(&a.node_dir)?;
    let script = node_dir.join("gateway-load.js");
    if !script.exists() {
        bail!(
            "{} is missing (run from the repository's root, or give --node-dir)",
            script.display()
        );
    }
    if !node_dir
        .join("node_modules/@hyperledger/fabric-gateway")
        .exists()
    {
        bail!(
            "Fabric's Node client is not installed: run `npm ci --prefix {}`",
            node_dir.display()
        );
    }
    if !info.example_deployed {
        let p = Progress::new();
        deploy_contract(&dir, &info, "example", &abs(&a.example)?, &p)?;
        info.example_deployed = true;
        std::fs::write(dir.join("network.json"), serde_json::to_vec_pretty(&info)?)?;
    }
    let id = dir.join("orgs").join(&org.name).join(&a.identity);
    if !id.join("cert.pem").exists() {
        bail!("no identity {} in {}", a.identity, id.display());
    }
    let file = |name: &str| id.join(name).display().to_string();
    let pids = read_pids(&dir);
    let ticks = clock_ticks();
    println!(
        "qcss bench fabric-client: {} put transactions, {} in flight, Fabric's Node Gateway client as {} of {} on {}",
        a.count, a.inflight, a.identity, org.msp_id, org.peer
    );
    let before = snapshot(&pids);
    let started = Instant::now();
    let out = Command::new("node")
        .arg(&script)
        .envs([
            ("PEER_ENDPOINT", org.peer.clone()),
            ("TLS_ROOT_CERT", file("tls-ca.pem")),
            ("CERT", file("cert.pem")),
            ("KEY", file("key.pem")),
            ("TLS_CERT", file("tls-cert.pem")),
            ("TLS_KEY", file("tls-key.pem")),
            ("MSP_ID", org.msp_id.clone()),
            ("CHANNEL", info.channel.clone()),
            ("CHAINCODE", "example".into()),
            ("COUNT", a.count.to_string()),
            ("INFLIGHT", a.inflight.to_string()),
        ])
        .output()
        .context("running node (is Node.js installed?)")?;
    let wall = started.elapsed().as_secs_f64();
    let after = snapshot(&pids);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .with_context(|| {
            format!(
                "gateway-load.js printed no report ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })?;
    let ok = report["ok"].as_u64().unwrap_or(0);
    if ok == 0 {
        bail!(
            "no transaction committed: {}",
            report["firstError"].as_str().unwrap_or("no error reported")
        );
    }
    let mut cpu: BTreeMap<String, f64> = BTreeMap::new();
    for (name, t) in &after {
        if let Some(b) = before.get(name) {
            cpu.insert(name.clone(), t.saturating_sub(*b) as f64 / ticks);
        }
    }
    let is_server = |n: &str| n.starts_with("peer-") || n.starts_with("orderer");
    let server: f64 = cpu
        .iter()
        .filter(|(n, _)| is_server(n))
        .map(|(_, s)| s)
        .sum();
    let others: f64 = cpu
        .iter()
        .filter(|(n, _)| !is_server(n))
        .map(|(_, s)| s)
        .sum();
    let client = report["clientCpuSecs"].as_f64().unwrap_or(0.0);
    let per_tx_ms = |secs: f64| 1000.0 * secs / ok as f64;
    println!(
        "  {ok} committed, {} failed in {:.1} s: {:.0} tx/s; latency p50 {:.0} p99 {:.0} max {:.0} ms; key type {}",
        report["failed"].as_u64().unwrap_or(0),
        report["seconds"].as_f64().unwrap_or(wall),
        report["txPerSec"].as_f64().unwrap_or(0.0),
        report["latencyMs"]["p50"].as_f64().unwrap_or(0.0),
        report["latencyMs"]["p99"].as_f64().unwrap_or(0.0),
        report["latencyMs"]["max"].as_f64().unwrap_or(0.0),
        report["keyType"].as_str().unwrap_or("?")
    );
    println!(
        "  server CPU (peers and orderers) {server:.1} s = {:.2} ms per transaction; the client {client:.1} s = {:.2} ms; other processes (CAs, public chain) {others:.1} s",
        per_tx_ms(server),
        per_tx_ms(client)
    );
    let by_process: Vec<String> = cpu
        .iter()
        .filter(|(n, _)| is_server(n))
        .map(|(n, s)| format!("{n} {s:.1}"))
        .collect();
    println!("    {}", by_process.join(", "));
    if let Some(e) = report["firstError"].as_str() {
        println!("  first error: {e}");
    }
    if let Some(path) = &a.json {
        let full = json!({
            "client": report,
            "server_cpu_secs": server,
            "server_cpu_ms_per_tx": per_tx_ms(server),
            "client_cpu_ms_per_tx": per_tx_ms(client),
            "other_cpu_secs": others,
            "cpu_secs_by_process": cpu,
            "key_type": info.key_type.as_str(),
            "orgs": info.orgs.len(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&full)?)?;
        println!("report: {}", path.display());
    }
    if !out.status.success() {
        bail!("some transactions failed (see above)");
    }
    Ok(())
}
