//! `qcss bench network`: end-to-end load against a running network.
//!
//! The target is either the local network `qcss network up` made (`--dir`,
//! read from `DIR/network.json`), or any Fabric-compatible Gateway described
//! by a connection file (`--connection FILE`, see [`Connection`] and
//! `bench/README.md`). Both become the same [`Target`], so the same load
//! runs against QCSS and against Fabric.
//!
//! Setup (not timed): per org a permit (applied, approved by a regulator
//! identity), a product, one batch per lane for `add_event` (a lane is one
//! transaction in flight: its batch is touched by nothing else, so lanes do
//! not conflict under MVCC), a batch with a unit-code key for scans, and
//! signed unit codes (`qcss_chaincode::unit_code`). Load: `--clients`
//! clients, each with its own Gateway connection (spread over the orgs'
//! peers) and `--inflight` lanes, each lane a closed loop of
//! endorse → sign → submit → commit status, choosing `add_event` 70%,
//! `register_batch` 10%, `scan` 20% (by a consumer identity); plus
//! `verify_code` queries (Evaluate) at `--query-rate`, open loop.
//!
//! Reported per client count: submitted, committed valid, invalid by code,
//! failed (refused before ordering) by reason, committed tx/s,
//! submit-to-commit latency percentiles, the block size distribution (read
//! back with qscc `GetBlockByNumber`), CPU seconds per process (from
//! `/proc/PID/stat` of the network's PIDs), and the crypto floor: the
//! ECDSA P-256 sign and verify rates of this machine on all cores
//! (`qcss_network::signing`, measured in the same run) against the
//! signature operations one transaction needs across every process, counted
//! for the actual topology (endorsements per transaction read from the
//! blocks, validating peers, orderers).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use crate::network::register_and_enroll;
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use prost::Message;
use qcss_chaincode::unit_code::{BatchKey, issue_codes};
use qcss_network::signing::{self, KeyKind, SigningKey};
use qcss_network::{MspId, SigningIdentity};
use qcss_peer::client::GatewayClient;
use qcss_proto::common::{Block, BlockchainInfo, Envelope, Payload};
use qcss_proto::protos::{ChaincodeActionPayload, Transaction, TxValidationCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

mod connect;
mod floor;
mod report;
mod workload;
use connect::*;
use floor::*;
use report::*;
use workload::*;

/// Resolver base of the benchmark's unit codes.
const BASE: &str = "https://q.example.com";

#[derive(Debug, Args)]
pub(crate) struct NetworkBenchArgs {
    /// The directory of a network started with `qcss network up`.
    #[arg(long, default_value = "qcss-net")]
    dir: PathBuf,
    /// Drive the Gateways described in this connection file instead of
    /// `--dir` (any Fabric-compatible Gateway; see bench/README.md).
    #[arg(long)]
    connection: Option<PathBuf>,
    /// Enroll the benchmark identities in `--dir`'s network, write a
    /// connection file for it, and exit (to drive it with `--connection`).
    #[arg(long)]
    write_connection: Option<PathBuf>,
    /// Concurrent clients, each with its own Gateway connection; a
    /// comma-separated list sweeps them (one point each) and draws a curve.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    clients: Vec<usize>,
    /// Transactions each client keeps in flight (each on its own batches).
    #[arg(long, default_value_t = 1)]
    inflight: usize,
    /// Batches each in-flight lane adds events to, in turn (1 makes a lane
    /// re-read its own last write at once, which lagging endorsers have not
    /// committed yet: their responses then differ).
    #[arg(long, default_value_t = 4)]
    batches_per_lane: usize,
    /// Timed seconds per point (ignored with --count).
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Timed transactions per point instead of a duration.
    #[arg(long)]
    count: Option<u64>,
    /// Untimed seconds of the same load before each point's timed part.
    #[arg(long, default_value_t = 5.0)]
    warmup: f64,
    /// Read-only `verify_code` queries per second (Evaluate), besides the load.
    #[arg(long, default_value_t = 20.0)]
    query_rate: f64,
    /// Percentages add_event,register_batch,scan.
    #[arg(long, value_delimiter = ',', default_value = "70,10,20")]
    mix: Vec<u32>,
    /// Seconds per crypto-floor measurement (sign, verify).
    #[arg(long, default_value_t = 2.0)]
    crypto_seconds: f64,
    /// Write the whole report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where the sweep's SVG plot goes (default: next to --json, or
    /// bench-network.svg) when more than one client count is given.
    #[arg(long)]
    svg: Option<PathBuf>,
}

// ---------------------------------------------------------------- connection

/// A connection file: what `--connection` reads. Relative paths are
/// relative to the file. See bench/README.md for an example for Fabric.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Connection {
    /// The channel.
    pub channel: String,
    /// The contract (must implement the traceability functions used here).
    #[serde(default = "default_chaincode")]
    pub chaincode: String,
    /// One Gateway per org (clients are spread over them).
    pub gateways: Vec<GatewayConn>,
    /// A regulator identity that approves the orgs' permits during setup
    /// (not needed if every org's permit is already active).
    #[serde(default)]
    pub regulator: Option<IdentityConn>,
    /// Peers validating every block (for the crypto floor); default: the
    /// number of gateways.
    #[serde(default)]
    pub validating_peers: Option<usize>,
    /// Orderer nodes (each signs every block); default 3.
    #[serde(default)]
    pub orderers: Option<usize>,
    /// Signature checks of one envelope by the ordering service (2 when the
    /// receiving orderer forwards to a leader that checks again); default 1.
    #[serde(default)]
    pub orderer_verifies: Option<usize>,
    /// A JSON map `name → PID` of the network's processes on this machine,
    /// for CPU accounting (`qcss network up` writes `pids.json`).
    #[serde(default)]
    pub pids: Option<PathBuf>,
}

fn default_chaincode() -> String {
    crate::network::CONTRACT.into()
}

/// One Gateway peer and the identities used through it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GatewayConn {
    /// `host:port` of the peer's Gateway.
    pub endpoint: String,
    /// The name to expect in the peer's TLS certificate (default: the host
    /// of `endpoint`), e.g. `peer0.org1.example.com` for Fabric's samples.
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM file of the TLS root(s) to trust.
    pub tls_root: PathBuf,
    /// The client's TLS certificate and key (PEM), for mutual TLS.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// See `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// The org's MSP id.
    pub msp_id: String,
    /// The org's `enterprise` client: registers the product and batches,
    /// adds events.
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM; Fabric's `keystore/*_sk` is one).
    pub key: PathBuf,
    /// A `consumer` identity for scans (default: another gateway's).
    #[serde(default)]
    pub consumer: Option<IdentityConn>,
}

/// A signing identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IdentityConn {
    /// Its MSP id.
    pub msp_id: String,
    /// Certificate (PEM).
    pub cert: PathBuf,
    /// Private key (PKCS#8 PEM).
    pub key: PathBuf,
    /// Index of the gateway its transactions go through (default 0).
    #[serde(default)]
    pub gateway: usize,
}

/// A resolved gateway.
struct Gw {
    endpoint: String,
    server_name: String,
    roots: Vec<Vec<u8>>,
    tls: Option<(Vec<u8>, Vec<u8>)>,
    msp_id: String,
    client: Arc<SigningIdentity>,
    consumer: Option<Arc<SigningIdentity>>,
}

/// Everything the load needs, from `--dir` or `--connection`.
struct Target {
    source: String,
    channel: String,
    chaincode: String,
    gateways: Vec<Gw>,
    regulator: Option<(usize, Arc<SigningIdentity>)>,
    validating_peers: usize,
    orderers: usize,
    orderer_verifies: usize,
    pids: BTreeMap<String, u32>,
}

struct PointCfg {
    clients: usize,
    inflight: usize,
    warmup: Duration,
    duration: Duration,
    count: Option<u64>,
    query_rate: f64,
    mix: [u32; 3],
}

/// What one point measured.
#[derive(Debug, Serialize)]
pub(super) struct Point {
    /// Clients (Gateway connections).
    pub clients: usize,
    /// Transactions in flight at most (clients × inflight).
    pub in_flight: usize,
    /// Timed seconds (first timed submission to last completion).
    pub seconds: f64,
    /// Transactions submitted in the timed window.
    pub submitted: u64,
    /// Of which committed VALID.
    pub committed_valid: u64,
    /// Committed with another validation code, by code.
    pub invalid_by_code: BTreeMap<String, u64>,
    /// Refused before commit (endorsement, submit, commit status), by reason.
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Failures during the warm-up (not counted above).
    pub warmup_failed: u64,
    /// Committed VALID per second.
    pub committed_tx_per_sec: f64,
    /// Submit-to-commit latency of committed transactions, ms.
    pub latency_ms: Percentiles,
    /// Per function: submitted, valid, p50 and p99 ms.
    pub by_function: BTreeMap<String, Value>,
    /// Blocks committed in the window and their sizes (transactions).
    pub blocks: BlockStats,
    /// verify_code queries: answered, failed, latency.
    pub queries: Value,
    /// CPU seconds per process during the window, and share of one core.
    pub cpu: BTreeMap<String, Value>,
    /// CPU seconds of all processes together, and as a share of all cores.
    pub cpu_total_secs: f64,
    /// The crypto floor for this point's measured topology.
    pub floor: Floor,
}

/// Latency percentiles, ms.
#[derive(Debug, Default, Serialize, Clone)]
pub(super) struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th.
    pub p95: f64,
    /// 99th.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

fn percentiles(v: &mut [f64]) -> Percentiles {
    if v.is_empty() {
        return Percentiles::default();
    }
    v.sort_by(f64::total_cmp);
    let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    Percentiles {
        p50: p(0.50),
        p95: p(0.95),
        p99: p(0.99),
        max: v[v.len() - 1],
        mean: v.iter().sum::<f64>() / v.len() as f64,
    }
}

/// Blocks committed during a point.
#[derive(Debug, Default, Serialize)]
pub(super) struct BlockStats {
    /// Block numbers read: first..=last.
    pub first: u64,
    /// Last block read.
    pub last: u64,
    /// Blocks.
    pub count: u64,
    /// Transactions per block: mean.
    pub mean_txs: f64,
    /// Percentiles of transactions per block.
    pub p50_txs: u64,
    /// 90th percentile.
    pub p90_txs: u64,
    /// Largest.
    pub max_txs: u64,
    /// Histogram: upper bound of bucket → blocks.
    pub histogram: BTreeMap<String, u64>,
    /// Endorsements per endorser transaction, mean.
    pub endorsements_per_tx: f64,
}

/// The crypto floor: tx/s if this machine's cores did nothing but the
/// signature work of each transaction.
#[derive(Debug, Default, Serialize, Clone)]
pub(super) struct Floor {
    /// The identities' key type (`p256` or `ed25519`): the client's, as
    /// `network up --key-type` gives every identity the same.
    pub key_type: String,
    /// Signatures per transaction across all processes.
    pub signs_per_tx: f64,
    /// Verifications per transaction across all processes.
    pub verifies_per_tx: f64,
    /// How they are counted.
    pub breakdown: String,
    /// The floor, tx/s, at the rates of `key_type`.
    pub floor_tx_per_sec: f64,
    /// Committed tx/s as a fraction of the floor.
    pub fraction_of_floor: f64,
    /// The same counts at the other key type's rates: the floor this
    /// machine would have with the other kind of identities.
    pub other_key_type_floor_tx_per_sec: f64,
}

/// CPU time (user + system) of process `pid` so far, in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is 3rd overall; utime 14th, stime 15th.
    let u: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some(u + st)
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 if unknown).
pub(crate) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn cpu_snapshot(pids: &BTreeMap<String, u32>) -> BTreeMap<String, u64> {
    let mut m: BTreeMap<String, u64> = pids
        .iter()
        .filter_map(|(n, p)| cpu_ticks(*p).map(|t| (n.clone(), t)))
        .collect();
    if let Some(t) = cpu_ticks(std::process::id()) {
        m.insert("bench-clients (this process)".into(), t);
    }
    m
}

async fn chain_height(c: &mut GatewayClient, channel: &str) -> Result<u64> {
    let b = c
        .evaluate("qscc", "GetChainInfo", &[channel.as_bytes()])
        .await
        .map_err(|e| anyhow!("qscc GetChainInfo: {e}"))?;
    Ok(BlockchainInfo::decode(b.as_slice())?.height)
}

async fn read_blocks(
    c: &mut GatewayClient,
    channel: &str,
    from: u64,
    to: u64,
) -> Result<BlockStats> {
    let mut sizes = Vec::new();
    let (mut endorsements, mut etxs) = (0u64, 0u64);
    // At most 3000 blocks: enough for the distribution.
    let to = to.min(from + 3000);
    for n in from..to {
        let b = c
            .evaluate(
                "qscc",
                "GetBlockByNumber",
                &[channel.as_bytes(), n.to_string().as_bytes()],
            )
            .await
            .map_err(|e| anyhow!("qscc GetBlockByNumber {n}: {e}"))?;
        let block = Block::decode(b.as_slice())?;
        let data = block.data.map(|d| d.data).unwrap_or_default();
        sizes.push(data.len() as u64);
        for raw in &data {
            let Ok(env) = Envelope::decode(raw.as_slice()) else {
                continue;
            };
            let Ok(p) = Payload::decode(env.payload.as_slice()) else {
                continue;
            };
            let Ok(tx) = Transaction::decode(p.data.as_slice()) else {
                continue;
            };
            let Some(action) = tx.actions.first() else {
                continue;
            };
            if let Ok(cap) = ChaincodeActionPayload::decode(action.payload.as_slice())
                && let Some(a) = cap.action
            {
                endorsements += a.endorsements.len() as u64;
                etxs += 1;
            }
        }
    }
    let mut s = BlockStats {
        first: from,
        last: to.saturating_sub(1),
        count: sizes.len() as u64,
        ..Default::default()
    };
    if sizes.is_empty() {
        return Ok(s);
    }
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    s.mean_txs = sizes.iter().sum::<u64>() as f64 / sizes.len() as f64;
    s.p50_txs = sorted[sorted.len() / 2];
    s.p90_txs = sorted[(sorted.len() * 9 / 10).min(sorted.len() - 1)];
    s.max_txs = sorted[sorted.len() - 1];
    for b in [1u64, 10, 50, 100, 250, 500, u64::MAX] {
        let lo = match b {
            1 => 0,
            10 => 1,
            50 => 10,
            100 => 50,
            250 => 100,
            500 => 250,
            _ => 500,
        };
        let n = sizes.iter().filter(|&&x| x > lo && x <= b).count() as u64;
        let name = if b == u64::MAX {
            ">500".to_owned()
        } else if lo == 0 {
            "1".to_owned()
        } else {
            format!("{}-{b}", lo + 1)
        };
        s.histogram.insert(name, n);
    }
    s.endorsements_per_tx = if etxs > 0 {
        endorsements as f64 / etxs as f64
    } else {
        0.0
    };
    Ok(s)
}

async fn run_point(
    t: &Arc<Target>,
    s: &Setup,
    cfg: &PointCfg,
    rates: &CryptoRates,
) -> Result<Point> {
    let lanes_n = cfg.clients * cfg.inflight;
    if lanes_n > s.lanes.len() {
        bail!(
            "setup made {} lanes, the point needs {lanes_n}",
            s.lanes.len()
        );
    }
    // Each client: its own connection to its org's peer; its lanes share it.
    let mut clients = Vec::new();
    for c in 0..cfg.clients {
        let gw = c % t.gateways.len();
        let g = &t.gateways[gw];
        let consumer = g
            .consumer
            .clone()
            .or_else(|| t.gateways.iter().find_map(|x| x.consumer.clone()));
        let mut ids = vec![g.client.clone()];
        ids.extend(consumer);
        let mut cs = connect(g, &ids, &t.channel).await?.into_iter();
        let ent = cs.next().ok_or_else(|| anyhow!("no client"))?;
        clients.push((ent, cs.next()));
    }
    if cfg.mix[2] > 0 && clients.iter().any(|c| c.1.is_none()) {
        bail!(
            "scans need a consumer identity: add one to the connection file (gateways[].consumer)"
        );
    }
    let mut admin = clients[0].0.clone();
    let launch = Instant::now();
    let t_start = launch + cfg.warmup;
    let t_end = t_start + cfg.duration;
    let remaining = Arc::new(AtomicI64::new(cfg.count.map_or(i64::MAX, |c| c as i64)));
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for l in 0..lanes_n {
        let lane = s.lanes[l].clone();
        let (mut ent, cons) = clients[l / cfg.inflight].clone();
        let mut cons = cons.unwrap_or_else(|| ent.clone());
        let sb = s.scan[lane.lock().await.gw].clone();
        let tag = s.tag.clone();
        let cc = t.chaincode.clone();
        let remaining = remaining.clone();
        let (mix, count_mode) = (cfg.mix, cfg.count.is_some());
        tasks.push(tokio::spawn(async move {
            let mut recs = Vec::new();
            let mut warm_failed = 0u64;
            loop {
                let now = Instant::now();
                let timed = now >= t_start;
                if timed {
                    if count_mode {
                        if remaining.fetch_sub(1, Ordering::Relaxed) <= 0 {
                            break;
                        }
                    } else if now >= t_end {
                        break;
                    }
                }
                let (op, arg) = {
                    let mut ln = lane.lock().await;
                    next_tx(&mut ln, &tag, &sb, &mix)
                };
                let a = arg.to_string();
                let start = Instant::now();
                let client = if op == Op::Scan { &mut cons } else { &mut ent };
                let r = client.submit(&cc, op.name(), &[a.as_bytes()]).await;
                let end = Instant::now();
                let outcome = match r {
                    Ok(c) => Outcome::Committed(c.code),
                    Err(e) => Outcome::Failed(e.to_string()),
                };
                if timed {
                    recs.push(Rec {
                        op,
                        start,
                        end,
                        outcome,
                    });
                } else if let Outcome::Failed(e) = &outcome {
                    // A failing warm-up is worth knowing about, but is not fatal.
                    warm_failed += 1;
                    if warm_failed == 1 {
                        tracing::warn!("warm-up {}: {e}", op.name());
                    }
                }
            }
            (recs, warm_failed)
        }));
    }
    // Queries: open loop at query_rate over the clients, from t_start.
    let query_task = {
        let qclients: Vec<GatewayClient> = clients.iter().map(|c| c.0.clone()).collect();
        let codes = s.query_codes.clone();
        let done = done.clone();
        let cc = t.chaincode.clone();
        let rate = cfg.query_rate;
        tokio::spawn(async move {
            let mut lat: Vec<f64> = Vec::new();
            let mut failed = 0u64;
            if rate <= 0.0 {
                return (lat, failed);
            }
            tokio::time::sleep_until(t_start.into()).await;
            let start = tokio::time::Instant::now();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<f64>>();
            let mut i = 0usize;
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
                let mut c = qclients[i % qclients.len()].clone();
                let code = codes[i % codes.len()].clone();
                let tx = tx.clone();
                let cc = cc.clone();
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    let r = c.evaluate(&cc, "verify_code", &[code.as_bytes()]).await;
                    let _ = tx.send(r.ok().map(|_| t0.elapsed().as_secs_f64() * 1000.0));
                });
                i += 1;
            }
            drop(tx);
            while let Some(r) = rx.recv().await {
                match r {
                    Some(l) => lat.push(l),
                    None => failed += 1,
                }
            }
            (lat, failed)
        })
    };
    // At the start of the timed window: chain height and CPU counters.
    tokio::time::sleep_until(t_start.into()).await;
    let h0 = chain_height(&mut admin, &t.channel).await?;
    let cpu0 = cpu_snapshot(&t.pids);
    let cpu_t0 = Instant::now();
    let mut recs = Vec::new();
    let mut warmup_failed = 0;
    for task in tasks {
        let (r, w) = task.await?;
        recs.extend(r);
        warmup_failed += w;
    }
    let cpu1 = cpu_snapshot(&t.pids);
    let cpu_secs_wall = cpu_t0.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let (mut qlat, qfailed) = query_task.await?;
    let h1 = chain_height(&mut admin, &t.channel).await?;
    let blocks = read_blocks(&mut admin, &t.channel, h0, h1).await?;

    let first = recs.iter().map(|r| r.start).min().unwrap_or(t_start);
    let last = recs.iter().map(|r| r.end).max().unwrap_or(first);
    let seconds = last.duration_since(first).as_secs_f64().max(1e-9);
    let mut lat = Vec::new();
    let mut invalid: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed: BTreeMap<String, u64> = BTreeMap::new();
    let mut valid = 0u64;
    let mut per_fn: BTreeMap<Op, (u64, u64, Vec<f64>)> = BTreeMap::new();
    for r in &recs {
        let e = per_fn.entry(r.op).or_default();
        e.0 += 1;
        let ms = r.end.duration_since(r.start).as_secs_f64() * 1000.0;
        match &r.outcome {
            Outcome::Committed(TxValidationCode::Valid) => {
                valid += 1;
                e.1 += 1;
                e.2.push(ms);
                lat.push(ms);
            }
            Outcome::Committed(code) => {
                *invalid.entry(code.as_str_name().to_owned()).or_default() += 1;
                lat.push(ms);
            }
            Outcome::Failed(m) => *failed.entry(classify(m)).or_default() += 1,
        }
    }
    let tps = valid as f64 / seconds;
    let by_function = per_fn
        .into_iter()
        .map(|(op, (n, v, mut l))| {
            let p = percentiles(&mut l);
            (
                op.name().to_owned(),
                json!({"submitted": n, "valid": v, "p50_ms": p.p50, "p99_ms": p.p99}),
            )
        })
        .collect();
    let tick = clock_ticks();
    let mut cpu = BTreeMap::new();
    let mut cpu_total = 0.0;
    for (name, t1) in &cpu1 {
        if let Some(t0) = cpu0.get(name) {
            let secs = t1.saturating_sub(*t0) as f64 / tick;
            cpu_total += secs;
            cpu.insert(
                name.clone(),
                json!({"cpu_secs": secs, "cores": secs / cpu_secs_wall.max(1e-9)}),
            );
        }
    }
    let qp = percentiles(&mut qlat);
    let fl = floor(t, &blocks, rates, tps);
    Ok(Point {
        clients: cfg.clients,
        in_flight: lanes_n,
        seconds,
        submitted: recs.len() as u64,
        committed_valid: valid,
        invalid_by_code: invalid,
        failed_by_reason: failed,
        warmup_failed,
        committed_tx_per_sec: tps,
        latency_ms: percentiles(&mut lat),
        by_function,
        blocks,
        queries: json!({"rate": cfg.query_rate, "answered": qlat.len(), "failed": qfailed,
                        "p50_ms": qp.p50, "p99_ms": qp.p99, "max_ms": qp.max}),
        cpu,
        cpu_total_secs: cpu_total,
        floor: fl,
    })
}

pub(super) fn run(a: NetworkBenchArgs) -> Result<()> {
    if let Some(out) = &a.write_connection {
        let c = local_connection(&a.dir)?;
        std::fs::write(out, serde_json::to_vec_pretty(&c)?)?;
        println!(
            "wrote {} (Gateways of {} orgs, benchmark identities enrolled)",
            out.display(),
            c.gateways.len()
        );
        return Ok(());
    }
    let target = match &a.connection {
        Some(p) => load_connection(p)?,
        None => {
            let c = local_connection(&a.dir)?;
            let path =
                std::env::temp_dir().join(format!("qcss-bench-conn-{}.json", std::process::id()));
            std::fs::write(&path, serde_json::to_vec_pretty(&c)?)?;
            let mut t = load_connection(&path)?;
            let _ = std::fs::remove_file(&path);
            t.source = format!("network in {}", a.dir.display());
            t
        }
    };
    let target = Arc::new(target);
    let mix: [u32; 3] = match a.mix.as_slice() {
        [x, y, z] => [*x, *y, *z],
        _ => bail!("--mix takes three percentages: add_event,register_batch,scan"),
    };
    let max_clients = a.clients.iter().copied().max().unwrap_or(1).max(1);
    let inflight = a.inflight.max(1);
    let lanes = max_clients * inflight;
    // Pre-signed codes per lane: enough for a point at ~3,000 tx/s.
    let expected = a.count.map_or(3000.0 * (a.duration + a.warmup), |c| {
        c as f64 * 1.2 + 3000.0 * a.warmup
    }) * mix[2] as f64
        / mix.iter().sum::<u32>().max(1) as f64;
    let codes_per_lane =
        ((expected * a.clients.len() as f64 / lanes as f64) as usize + 16).min(20_000);

    println!("qcss bench network: {}", target.source);
    println!(
        "  {} gateways ({}), channel {}, chaincode {}",
        target.gateways.len(),
        target
            .gateways
            .iter()
            .map(|g| format!("{} {}", g.msp_id, g.endpoint))
            .collect::<Vec<_>>()
            .join(", "),
        target.channel,
        target.chaincode
    );
    let kind = target
        .gateways
        .first()
        .map_or(KeyKind::P256, |g| g.client.key().kind());
    let crypto_d = Duration::from_secs_f64(a.crypto_seconds.max(0.1));
    let (rates1, cores) = CryptoRates::measure(crypto_d, kind)?;
    println!(
        "crypto on all {cores} cores (network idle): {}; the identities are {kind}",
        rates1.describe()
    );
    let rt = tokio::runtime::Runtime::new()?;
    let mut points = rt.block_on(async {
        let s = setup(&target, lanes, inflight, a.batches_per_lane, codes_per_lane).await?;
        let mut points = Vec::new();
        for &c in &a.clients {
            let cfg = PointCfg {
                clients: c.max(1),
                inflight,
                warmup: Duration::from_secs_f64(a.warmup.max(0.0)),
                duration: Duration::from_secs_f64(a.duration.max(0.1)),
                count: a.count,
                query_rate: a.query_rate,
                mix,
            };
            let p = run_point(&target, &s, &cfg, &rates1).await?;
            print_point(&p, cores);
            points.push(p);
        }
        Ok::<_, anyhow::Error>(points)
    })?;
    // Again after the load, so the floor reflects the machine as shared
    // during the whole run; the floor uses the mean of both.
    let (rates2, _) = CryptoRates::measure(crypto_d, kind)?;
    println!(
        "crypto on all {cores} cores after the load: {}; the floor uses the mean",
        rates2.describe()
    );
    let rates = rates1.mean(&rates2);
    for p in &mut points {
        p.floor = floor(&target, &p.blocks, &rates, p.committed_tx_per_sec);
        println!(
            "clients {:>3}: crypto floor {:.0} tx/s with {} identities ({:.2} signs + {:.2} verifies per tx; {:.0} tx/s with the other kind); committed {:.0} tx/s = {:.0}% of it",
            p.clients,
            p.floor.floor_tx_per_sec,
            p.floor.key_type,
            p.floor.signs_per_tx,
            p.floor.verifies_per_tx,
            p.floor.other_key_type_floor_tx_per_sec,
            p.committed_tx_per_sec,
            100.0 * p.floor.fraction_of_floor
        );
    }
    if points.len() > 1 {
        println!();
        println!("clients  in-flight   tx/s    p50 ms   p99 ms   max ms   % of floor");
        for p in &points {
            println!(
                "{:>7} {:>10} {:>7.0} {:>9.0} {:>8.0} {:>8.0} {:>10.0}%",
                p.clients,
                p.in_flight,
                p.committed_tx_per_sec,
                p.latency_ms.p50,
                p.latency_ms.p99,
                p.latency_ms.max,
                100.0 * p.floor.fraction_of_floor
            );
        }
        let path = a.svg.clone().unwrap_or_else(|| match &a.json {
            Some(j) => j.with_extension("svg"),
            None => PathBuf::from("bench-network.svg"),
        });
        let title = format!(
            "qcss bench network: {} orgs, {} cores, mix {}/{}/{}",
            target.gateways.len(),
            cores,
            mix[0],
            mix[1],
            mix[2]
        );
        std::fs::write(&path, svg(&points, &title))?;
        println!("plot: {}", path.display());
    }
    if let Some(path) = &a.json {
        let report = json!({
            "target": target.source,
            "channel": target.channel,
            "chaincode": target.chaincode,
            "gateways": target.gateways.iter().map(|g| json!({"msp_id": g.msp_id, "endpoint": g.endpoint})).collect::<Vec<_>>(),
            "validating_peers": target.validating_peers,
            "orderers": target.orderers,
            "orderer_verifies": target.orderer_verifies,
            "mix": {"add_event": mix[0], "register_batch": mix[1], "scan": mix[2]},
            "inflight_per_client": inflight,
            "warmup_secs": a.warmup,
            "duration_secs": a.count.map_or(json!(a.duration), |_| Value::Null),
            "count": a.count,
            "query_rate": a.query_rate,
            "machine": machine(),
            "crypto": {"cores": cores, "key_type": kind.as_str(),
                       "sign_per_sec_all_cores": rates.of(kind).0, "verify_per_sec_all_cores": rates.of(kind).1,
                       "p256": {"before": {"sign": rates1.p256.0, "verify": rates1.p256.1},
                                "after": {"sign": rates2.p256.0, "verify": rates2.p256.1}},
                       "ed25519": {"before": {"sign": rates1.ed25519.0, "verify": rates1.ed25519.1},
                                   "after": {"sign": rates2.ed25519.0, "verify": rates2.ed25519.1}},
                       "seconds_each": a.crypto_seconds},
            "points": points,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
        println!("report: {}", path.display());
    }
    Ok(())
}

/// CPU model, cores and load average, for the report.
fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "loadavg": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    })
}
