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

fn rel(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

fn load_identity(msp: &str, cert: &Path, key: &Path) -> Result<Arc<SigningIdentity>> {
    let key_pem = String::from_utf8(read(key)?)?;
    let key = SigningKey::from_pem(&key_pem).map_err(|e| anyhow!("{}: {e}", key.display()))?;
    let id = SigningIdentity::new(MspId(msp.into()), read(cert)?, key)
        .map_err(|e| anyhow!("{}: {e}", cert.display()))?;
    Ok(Arc::new(id))
}

fn load_connection(path: &Path) -> Result<Target> {
    let c: Connection = serde_json::from_slice(&read(path)?)
        .with_context(|| format!("{} is not a connection file", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut gateways = Vec::new();
    for g in &c.gateways {
        let tls = match (&g.tls_cert, &g.tls_key) {
            (Some(c), Some(k)) => Some((read(&rel(base, c))?, read(&rel(base, k))?)),
            (None, None) => None,
            _ => bail!("{}: tls_cert and tls_key go together", g.endpoint),
        };
        let consumer = match &g.consumer {
            Some(i) => Some(load_identity(
                &i.msp_id,
                &rel(base, &i.cert),
                &rel(base, &i.key),
            )?),
            None => None,
        };
        gateways.push(Gw {
            endpoint: g.endpoint.clone(),
            server_name: g
                .server_name
                .clone()
                .unwrap_or_else(|| qcss_network::tls::server_name(&g.endpoint).to_owned()),
            roots: vec![read(&rel(base, &g.tls_root))?],
            tls,
            msp_id: g.msp_id.clone(),
            client: load_identity(&g.msp_id, &rel(base, &g.cert), &rel(base, &g.key))?,
            consumer,
        });
    }
    if gateways.is_empty() {
        bail!("{}: no gateways", path.display());
    }
    let regulator = match &c.regulator {
        Some(r) => Some((
            r.gateway.min(gateways.len() - 1),
            load_identity(&r.msp_id, &rel(base, &r.cert), &rel(base, &r.key))?,
        )),
        None => None,
    };
    let pids = match &c.pids {
        Some(p) => serde_json::from_slice(&read(&rel(base, p))?).unwrap_or_default(),
        None => BTreeMap::new(),
    };
    Ok(Target {
        source: format!("connection file {}", path.display()),
        channel: c.channel,
        chaincode: c.chaincode,
        validating_peers: c.validating_peers.unwrap_or(gateways.len()),
        orderers: c.orderers.unwrap_or(3),
        orderer_verifies: c.orderer_verifies.unwrap_or(1),
        gateways,
        regulator,
        pids,
    })
}

/// Registers and enrolls `who` (a client of `kind`) with the org's CA,
/// unless already enrolled.
fn ensure_identity(
    dir: &Path,
    info: &crate::network::NetworkInfo,
    org: &crate::network::OrgInfo,
    who: &str,
    kind: &str,
) -> Result<PathBuf> {
    let odir = dir.join("orgs").join(&org.name);
    let out = odir.join(who);
    if out.join("cert.pem").exists() {
        return Ok(out);
    }
    register_and_enroll(
        &odir,
        &org.ca,
        who,
        "client",
        kind,
        "localhost,127.0.0.1",
        info.key_type,
    )
    .with_context(|| {
        format!(
            "registering and enrolling {who} with {}'s CA (is the network up?)",
            org.name
        )
    })?;
    Ok(out)
}

/// The connection file for the local network in `dir`, enrolling the
/// benchmark's identities (`bench-client`: enterprise, `bench-consumer`:
/// consumer, in every org; `bench-regulator` if no org has a regulator).
fn local_connection(dir: &Path) -> Result<Connection> {
    let dir = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()?.join(dir)
    };
    let info: crate::network::NetworkInfo =
        serde_json::from_slice(&read(&dir.join("network.json")).with_context(|| {
            format!(
                "no network in {} (start one with `qcss network up --dir {}`)",
                dir.display(),
                dir.display()
            )
        })?)?;
    if !info.contract_deployed {
        bail!(
            "the traceability contract is not deployed on the network in {}",
            dir.display()
        );
    }
    let mut gateways = Vec::new();
    for o in &info.orgs {
        let client = ensure_identity(&dir, &info, o, "bench-client", "enterprise")?;
        let consumer = ensure_identity(&dir, &info, o, "bench-consumer", "consumer")?;
        gateways.push(GatewayConn {
            endpoint: o.peer.clone(),
            server_name: None,
            tls_root: dir.join("orgs").join(&o.name).join("ca/tls-ca-cert.pem"),
            tls_cert: Some(client.join("tls-cert.pem")),
            tls_key: Some(client.join("tls-key.pem")),
            msp_id: o.msp_id.clone(),
            cert: client.join("cert.pem"),
            key: client.join("key.pem"),
            consumer: Some(IdentityConn {
                msp_id: o.msp_id.clone(),
                cert: consumer.join("cert.pem"),
                key: consumer.join("key.pem"),
                gateway: gateways.len(),
            }),
        });
    }
    let regulator = info.orgs.iter().enumerate().find_map(|(i, o)| {
        o.identities
            .iter()
            .find(|(_, (_, kinds))| kinds.iter().any(|k| k == "regulator"))
            .map(|(name, _)| (i, dir.join("orgs").join(&o.name).join(name)))
    });
    let (rg, rdir) = match regulator {
        Some(r) => r,
        None => (
            0,
            ensure_identity(&dir, &info, &info.orgs[0], "bench-regulator", "regulator")?,
        ),
    };
    // Every peer's Gateway submits to the Raft leader once a follower has
    // told it where the leader is (docs/peer.md, `Submit`): the leader alone
    // checks the envelope, bar one forward per peer at the start.
    Ok(Connection {
        channel: info.channel.clone(),
        chaincode: crate::network::CONTRACT.into(),
        regulator: Some(IdentityConn {
            msp_id: info.orgs[rg].msp_id.clone(),
            cert: rdir.join("cert.pem"),
            key: rdir.join("key.pem"),
            gateway: rg,
        }),
        gateways,
        validating_peers: Some(info.orgs.len()),
        orderers: Some(info.orderers.len()),
        orderer_verifies: Some(1),
        pids: Some(dir.join("pids.json")),
    })
}

// ---------------------------------------------------------------- setup

/// One connection to `g`'s peer, and a Gateway client over it for each
/// of `ids`.
async fn connect(
    g: &Gw,
    ids: &[Arc<SigningIdentity>],
    channel: &str,
) -> Result<Vec<GatewayClient>> {
    let tls = qcss_network::tls::client_tls(
        &g.roots,
        g.tls.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
        &g.server_name,
    );
    let ch = qcss_network::tls::connect(&g.endpoint, tls)
        .await
        .map_err(|e| {
            anyhow!(
                "cannot connect to {}: {}",
                g.endpoint,
                qcss_network::tls::error_chain(&e)
            )
        })?;
    Ok(ids
        .iter()
        .map(|id| GatewayClient::new(ch.clone(), id.clone(), channel))
        .collect())
}

async fn submit_ok(g: &mut GatewayClient, cc: &str, f: &str, arg: &Value) -> Result<Vec<u8>> {
    let a = arg.to_string();
    let c = g
        .submit(cc, f, &[a.as_bytes()])
        .await
        .map_err(|e| anyhow!("{f}: {e}"))?;
    if c.code != TxValidationCode::Valid {
        bail!("{f}: transaction {} is {}", c.tx_id, c.code.as_str_name());
    }
    Ok(c.result)
}

/// The batch scans of one org read (never written during the load).
struct ScanBatch {
    gtin: String,
    lot: String,
    key: BatchKey,
}

/// One transaction in flight: a closed loop on its own batch.
struct Lane {
    index: usize,
    gw: usize,
    gtin: String,
    /// The lane's batches for add_event, used in turn: a batch is touched
    /// again only `batches.len()` transactions later, when every endorsing
    /// peer has committed the previous write (a lagging endorser would
    /// simulate on the old version and its response would differ).
    batches: Vec<String>,
    turn: usize,
    /// Serials this lane may scan: next, end (exclusive).
    next_serial: u64,
    end_serial: u64,
    codes: VecDeque<String>,
    registered: u64,
    rng: u64,
}

struct Setup {
    tag: String,
    scan: Vec<Arc<ScanBatch>>,
    lanes: Vec<Arc<Mutex<Lane>>>,
    /// Codes for verify_code queries (never scanned).
    query_codes: Vec<String>,
}

const SCAN_QUANTITY: u64 = 100_000_000;
const QUERY_SERIALS: u64 = 1000;

async fn setup(
    t: &Target,
    lanes: usize,
    inflight: usize,
    batches_per_lane: usize,
    codes_per_lane: usize,
) -> Result<Setup> {
    let started = Instant::now();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    // A run tag keeps lots unique across runs on the same ledger.
    let mut tag = String::new();
    let mut n = secs % 36u64.pow(5);
    for _ in 0..5 {
        tag.insert(
            0,
            char::from_digit((n % 36) as u32, 36)
                .unwrap_or('0')
                .to_ascii_uppercase(),
        );
        n /= 36;
    }
    let cc = t.chaincode.as_str();
    let mut ents = Vec::new();
    for g in &t.gateways {
        ents.extend(connect(g, std::slice::from_ref(&g.client), &t.channel).await?);
    }
    let now = secs as i64;
    // Permits: apply (if not usable) and approve.
    for (i, g) in t.gateways.iter().enumerate() {
        let mut c = ents[i].clone();
        let permit: Option<Value> = c
            .evaluate(cc, "get_permit", &[g.msp_id.as_bytes()])
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let usable = permit.as_ref().is_some_and(|p| {
            p["status"] == "active"
                && p["certificate"]["valid_until"].as_i64().unwrap_or(0) > now + 86_400
        });
        if usable {
            continue;
        }
        let pending = permit.as_ref().is_some_and(|p| !p["pending"].is_null());
        if !pending {
            submit_ok(
                &mut c,
                cc,
                "apply_permit",
                &json!({"certificate_sha256": hex::encode(signing::sha256(g.msp_id.as_bytes())),
                        "issuer": "bench", "scope": "benchmark", "valid_until": now + 365 * 86_400}),
            )
            .await?;
        }
        let (rg, reg) = t.regulator.as_ref().ok_or_else(|| {
            anyhow!(
                "{}'s permit is not active and the connection names no regulator to approve it",
                g.msp_id
            )
        })?;
        let mut r = connect(&t.gateways[*rg], std::slice::from_ref(reg), &t.channel)
            .await?
            .remove(0);
        submit_ok(
            &mut r,
            cc,
            "approve_permit",
            &json!({"msp": g.msp_id, "reason": "benchmark"}),
        )
        .await?;
    }
    // A product per org, and its scan batch with a code key.
    let mut products = Vec::new();
    let mut scan = Vec::new();
    for (i, g) in t.gateways.iter().enumerate() {
        let mut c = ents[i].clone();
        let gt = qcss_chaincode::unit_code::with_check_digit(&format!("06950000{:05}", i));
        match c.evaluate(cc, "get_product", &[gt.as_bytes()]).await {
            Ok(b) => {
                let p: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                if p["owner"] != g.msp_id.as_str() {
                    bail!(
                        "product {gt} exists and belongs to {}, not {}",
                        p["owner"],
                        g.msp_id
                    );
                }
            }
            Err(_) => {
                submit_ok(
                    &mut c,
                    cc,
                    "register_product",
                    &json!({"gtin": gt, "name": format!("bench product {i}"), "category": "beverage"}),
                )
                .await?;
            }
        }
        let (key, _) = BatchKey::generate().map_err(|e| anyhow!("{e}"))?;
        let lot = format!("{tag}S");
        submit_ok(
            &mut c,
            cc,
            "register_batch",
            &json!({"gtin": gt, "lot": lot, "quantity": SCAN_QUANTITY, "uom": "H87",
                    "production_date": "2026-06-01", "site": "bench line",
                    "code_key": key.public_key_b64url()}),
        )
        .await?;
        products.push(gt.clone());
        scan.push(Arc::new(ScanBatch { gtin: gt, lot, key }));
    }
    let query_codes = issue_codes(
        &scan[0].key,
        BASE,
        &scan[0].gtin,
        &scan[0].lot,
        1..=QUERY_SERIALS,
    )
    .map_err(|e| anyhow!("{e}"))?;
    // One batch per lane, registered concurrently (a few per gateway).
    let stride = (SCAN_QUANTITY - QUERY_SERIALS) / lanes.max(1) as u64;
    let mut handles = Vec::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(8 * t.gateways.len()));
    for l in 0..lanes {
        let gw = (l / inflight.max(1)) % t.gateways.len();
        let mut c = ents[gw].clone();
        let gt = products[gw].clone();
        let lot = format!("{tag}E{l}");
        let cc = cc.to_owned();
        let sem = sem.clone();
        let sb = scan[gw].clone();
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire().await;
            let mut batches = Vec::new();
            for b in 0..batches_per_lane.max(1) {
                let lot = format!("{lot}b{b}");
                submit_ok(
                    &mut c,
                    &cc,
                    "register_batch",
                    &json!({"gtin": gt, "lot": lot, "quantity": 1_000_000, "uom": "KGM",
                            "production_date": "2026-06-01", "site": "bench line"}),
                )
                .await?;
                batches.push(format!("{gt}/{lot}"));
            }
            let first = QUERY_SERIALS + 1 + l as u64 * stride;
            let n = codes_per_lane as u64;
            let codes = issue_codes(&sb.key, BASE, &sb.gtin, &sb.lot, first..=first + n - 1)
                .map_err(|e| anyhow!("{e}"))?;
            Ok::<_, anyhow::Error>(Lane {
                index: l,
                gw,
                batches,
                turn: 0,
                gtin: gt,
                next_serial: first + n,
                end_serial: first + stride,
                codes: codes.into(),
                registered: 0,
                rng: 0x9e37_79b9_7f4a_7c15 ^ (l as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9),
            })
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(Arc::new(Mutex::new(h.await??)));
    }
    println!(
        "setup: {} orgs' permits and products, {} lanes x {batches_per_lane} batches, {} scan batches, {} unit codes signed ({:.1} s)",
        t.gateways.len(),
        lanes,
        scan.len(),
        lanes * codes_per_lane + QUERY_SERIALS as usize,
        started.elapsed().as_secs_f64()
    );
    Ok(Setup {
        tag,
        scan,
        lanes: out,
        query_codes,
    })
}

// ---------------------------------------------------------------- load

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    AddEvent,
    RegisterBatch,
    Scan,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::AddEvent => "add_event",
            Op::RegisterBatch => "register_batch",
            Op::Scan => "scan",
        }
    }
}

enum Outcome {
    Committed(TxValidationCode),
    Failed(String),
}

struct Rec {
    op: Op,
    start: Instant,
    end: Instant,
    outcome: Outcome,
}

fn next_rand(s: &mut u64) -> u64 {
    // xorshift64*
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    s.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// The next transaction of a lane: (op, function, argument).
fn next_tx(lane: &mut Lane, tag: &str, sb: &ScanBatch, mix: &[u32; 3]) -> (Op, Value) {
    let total = mix.iter().sum::<u32>().max(1) as u64;
    let r = (next_rand(&mut lane.rng) % total) as u32;
    let op = if r < mix[0] {
        Op::AddEvent
    } else if r < mix[0] + mix[1] {
        Op::RegisterBatch
    } else {
        Op::Scan
    };
    let arg = match op {
        Op::AddEvent => {
            lane.turn = (lane.turn + 1) % lane.batches.len().max(1);
            json!({"target": lane.batches[lane.turn], "biz_step": "storing", "read_point": "bench warehouse",
                   "data": {"temperature_c": 4, "humidity": 61}})
        }
        Op::RegisterBatch => {
            lane.registered += 1;
            let lot = format!("{tag}N{}x{}", lane.index, lane.registered);
            json!({"gtin": lane.gtin, "lot": lot, "quantity": 500, "uom": "KGM",
                   "production_date": "2026-06-02", "site": "bench line"})
        }
        Op::Scan => {
            let code = match lane.codes.pop_front() {
                Some(c) => c,
                None => {
                    // Ran out of pre-signed codes: sign the next one now.
                    let s = lane.next_serial.min(lane.end_serial.saturating_sub(1));
                    lane.next_serial += 1;
                    sb.key.sign(BASE, &sb.gtin, &sb.lot, s).to_uri()
                }
            };
            json!({"code": code, "location": "Hangzhou"})
        }
    };
    (op, arg)
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

/// Signs and verifies per second with keys of `kind` over all cores, each
/// thread running the project's `signing` code for `d`.
fn crypto_all_cores(d: Duration, kind: KeyKind) -> Result<(f64, f64, usize)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let run = |verify: bool| -> Result<f64> {
        let rates: Vec<Result<f64>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(move || -> Result<f64> {
                        let key = SigningKey::generate_kind(kind).map_err(|e| anyhow!("{e}"))?;
                        let msg = vec![0x5au8; 256];
                        let sig = key.sign(&msg).map_err(|e| anyhow!("{e}"))?;
                        let start = Instant::now();
                        let mut n = 0u64;
                        while start.elapsed() < d {
                            for _ in 0..8 {
                                if verify {
                                    std::hint::black_box(
                                        signing::verify(key.public_key(), &msg, &sig).is_ok(),
                                    );
                                } else {
                                    std::hint::black_box(key.sign(&msg).ok());
                                }
                            }
                            n += 8;
                        }
                        Ok(n as f64 / start.elapsed().as_secs_f64())
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("thread panicked"))))
                .collect()
        });
        rates.into_iter().sum()
    };
    Ok((run(false)?, run(true)?, threads))
}

/// Signs and verifies per second on all cores, for both key types, and
/// which one the network's identities use.
#[derive(Debug, Clone, Copy)]
struct CryptoRates {
    kind: KeyKind,
    p256: (f64, f64),
    ed25519: (f64, f64),
}

impl CryptoRates {
    fn measure(d: Duration, kind: KeyKind) -> Result<(Self, usize)> {
        let (s1, v1, cores) = crypto_all_cores(d, KeyKind::P256)?;
        let (s2, v2, _) = crypto_all_cores(d, KeyKind::Ed25519)?;
        Ok((
            CryptoRates {
                kind,
                p256: (s1, v1),
                ed25519: (s2, v2),
            },
            cores,
        ))
    }

    fn of(&self, kind: KeyKind) -> (f64, f64) {
        match kind {
            KeyKind::P256 => self.p256,
            KeyKind::Ed25519 => self.ed25519,
        }
    }

    fn mean(&self, other: &Self) -> Self {
        let m = |a: (f64, f64), b: (f64, f64)| ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
        CryptoRates {
            kind: self.kind,
            p256: m(self.p256, other.p256),
            ed25519: m(self.ed25519, other.ed25519),
        }
    }

    fn describe(&self) -> String {
        format!(
            "ECDSA P-256 sign {:.0}/s, verify {:.0}/s; Ed25519 sign {:.0}/s, verify {:.0}/s",
            self.p256.0, self.p256.1, self.ed25519.0, self.ed25519.1
        )
    }
}

/// Signature operations per transaction, and the floor they imply.
fn floor(t: &Target, blocks: &BlockStats, rates: &CryptoRates, tps: f64) -> Floor {
    let (sign_rate, verify_rate) = rates.of(rates.kind);
    let (other_sign, other_verify) = rates.of(match rates.kind {
        KeyKind::P256 => KeyKind::Ed25519,
        KeyKind::Ed25519 => KeyKind::P256,
    });
    let e = if blocks.endorsements_per_tx > 0.0 {
        blocks.endorsements_per_tx
    } else {
        1.0
    };
    let p = t.validating_peers as f64;
    let b = blocks.mean_txs.max(1.0);
    let o = t.orderers as f64;
    let ov = t.orderer_verifies as f64;
    // Client: proposal, transaction, commit-status request. Endorsers: one
    // each. Orderers: each node signs each block.
    let signs = 3.0 + e + o / b;
    // Endorsers verify the proposal; the Gateway peer the commit-status
    // request; the orderer(s) the envelope; every peer the creator and each
    // endorsement, and each block's orderer signature.
    let verifies = e + 1.0 + ov + p * (1.0 + e) + p / b;
    let at = |sign_rate: f64, verify_rate: f64| {
        let per_tx_secs = signs / sign_rate + verifies / verify_rate;
        if per_tx_secs > 0.0 && per_tx_secs.is_finite() {
            1.0 / per_tx_secs
        } else {
            0.0
        }
    };
    let f = at(sign_rate, verify_rate);
    Floor {
        key_type: rates.kind.to_string(),
        other_key_type_floor_tx_per_sec: at(other_sign, other_verify),
        signs_per_tx: signs,
        verifies_per_tx: verifies,
        breakdown: format!(
            "signs: client 3 (proposal, transaction, commit-status request) + {e:.2} endorsers + {o} orderers per block / {b:.1} tx; \
             verifies: {e:.2} endorsers (proposal) + 1 Gateway (commit-status request) + {ov} orderer (envelope) \
             + {p} peers x (1 creator + {e:.2} endorsements) + {p} peers per block / {b:.1} tx"
        ),
        floor_tx_per_sec: f,
        fraction_of_floor: if f > 0.0 { tps / f } else { 0.0 },
    }
}

fn classify(e: &str) -> String {
    // Keep the kind and the first words of the reason; drop ids and numbers.
    let cleaned: String = e
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    cleaned.chars().take(120).collect()
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

fn print_point(p: &Point, cores: usize) {
    println!(
        "clients {:>3} (in flight {:>3}): {:>7.1} tx/s committed VALID   latency p50 {:.0} p95 {:.0} p99 {:.0} max {:.0} ms",
        p.clients,
        p.in_flight,
        p.committed_tx_per_sec,
        p.latency_ms.p50,
        p.latency_ms.p95,
        p.latency_ms.p99,
        p.latency_ms.max
    );
    println!(
        "  submitted {} in {:.1} s, valid {}, invalid {:?}, failed {} (warm-up: {} failed)",
        p.submitted,
        p.seconds,
        p.committed_valid,
        p.invalid_by_code,
        p.failed_by_reason.values().sum::<u64>(),
        p.warmup_failed
    );
    for (reason, n) in &p.failed_by_reason {
        println!("    {n} x {reason}");
    }
    for (f, v) in &p.by_function {
        println!(
            "  {f:<15} submitted {:>6} valid {:>6}  p50 {:>6.0} ms  p99 {:>6.0} ms",
            v["submitted"],
            v["valid"],
            v["p50_ms"].as_f64().unwrap_or(0.0),
            v["p99_ms"].as_f64().unwrap_or(0.0)
        );
    }
    println!(
        "  verify_code queries: {} answered ({} failed), p50 {:.0} ms, p99 {:.0} ms",
        p.queries["answered"],
        p.queries["failed"],
        p.queries["p50_ms"].as_f64().unwrap_or(0.0),
        p.queries["p99_ms"].as_f64().unwrap_or(0.0)
    );
    let b = &p.blocks;
    println!(
        "  blocks {}..={}: {} blocks, tx/block mean {:.1} p50 {} p90 {} max {}; histogram {:?}; endorsements/tx {:.2}",
        b.first,
        b.last,
        b.count,
        b.mean_txs,
        b.p50_txs,
        b.p90_txs,
        b.max_txs,
        b.histogram,
        b.endorsements_per_tx
    );
    let mut cpu: Vec<(&String, f64)> = p
        .cpu
        .iter()
        .map(|(n, v)| (n, v["cpu_secs"].as_f64().unwrap_or(0.0)))
        .collect();
    cpu.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!(
        "  CPU seconds (window {:.1} s, {} cores = {:.1} CPU-s available): total {:.1} = {:.0}%",
        p.seconds,
        cores,
        p.seconds * cores as f64,
        p.cpu_total_secs,
        100.0 * p.cpu_total_secs / (p.seconds * cores as f64).max(1e-9)
    );
    println!(
        "    {}",
        cpu.iter()
            .filter(|(_, s)| *s >= 0.05)
            .map(|(n, s)| format!("{n} {s:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  crypto floor (rates before the load) {:.0} tx/s ({:.2} signs + {:.2} verifies per tx) -> {:.0}% of it",
        p.floor.floor_tx_per_sec,
        p.floor.signs_per_tx,
        p.floor.verifies_per_tx,
        100.0 * p.floor.fraction_of_floor
    );
}

/// A hand-written SVG: committed tx/s and p50/p99 latency against clients.
fn svg(points: &[Point], title: &str) -> String {
    let (w, h) = (720.0, 420.0);
    let (l, r, top, bot) = (70.0, 70.0, 40.0, 60.0);
    let pw = w - l - r;
    let ph = h - top - bot;
    let n = points.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            l + pw / 2.0
        } else {
            l + pw * i as f64 / (n - 1) as f64
        }
    };
    let nice = |v: f64| {
        let v = v.max(1e-9);
        let m = 10f64.powf(v.log10().floor());
        [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|k| k * m)
            .find(|c| *c >= v)
            .unwrap_or(10.0 * m)
    };
    let tmax = nice(
        points
            .iter()
            .map(|p| p.committed_tx_per_sec)
            .fold(0.0, f64::max)
            * 1.1,
    );
    let lmax = nice(points.iter().map(|p| p.latency_ms.p99).fold(0.0, f64::max) * 1.1);
    let yt = |v: f64| top + ph * (1.0 - v / tmax);
    let yl = |v: f64| top + ph * (1.0 - v / lmax);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        w / 2.0,
        title.replace('&', "&amp;").replace('<', "&lt;")
    );
    for k in 0..=5 {
        let f = k as f64 / 5.0;
        let y = top + ph * (1.0 - f);
        s += &format!(
            "<line x1=\"{l}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#1f77b4\">{:.0}</text>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d62728\">{:.0}</text>\n",
            l + pw,
            l - 6.0,
            y + 4.0,
            tmax * f,
            l + pw + 6.0,
            y + 4.0,
            lmax * f
        );
    }
    for (i, p) in points.iter().enumerate() {
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            x(i),
            top + ph + 18.0,
            p.clients
        );
    }
    s += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">clients</text>\n\
         <text x=\"16\" y=\"{:.1}\" fill=\"#1f77b4\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">committed tx/s</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d62728\" transform=\"rotate(90 {:.1} {:.1})\" text-anchor=\"middle\">latency ms (p50 dashed, p99 solid)</text>\n\
         <rect x=\"{l}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#444\"/>\n",
        l + pw / 2.0,
        h - 20.0,
        top + ph / 2.0,
        top + ph / 2.0,
        w - 16.0,
        top + ph / 2.0,
        w - 16.0,
        top + ph / 2.0
    );
    let line = |ys: Vec<f64>, color: &str, dash: &str| {
        let pts: Vec<String> = ys
            .iter()
            .enumerate()
            .map(|(i, y)| format!("{:.1},{:.1}", x(i), y))
            .collect();
        let mut out = format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" {dash}/>\n",
            pts.join(" ")
        );
        for (i, y) in ys.iter().enumerate() {
            out += &format!(
                "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{color}\"/>\n",
                x(i)
            );
        }
        out
    };
    s += &line(
        points.iter().map(|p| yt(p.committed_tx_per_sec)).collect(),
        "#1f77b4",
        "",
    );
    s += &line(
        points.iter().map(|p| yl(p.latency_ms.p99)).collect(),
        "#d62728",
        "",
    );
    s += &line(
        points.iter().map(|p| yl(p.latency_ms.p50)).collect(),
        "#d62728",
        "stroke-dasharray=\"5,4\"",
    );
    if let Some(f) = points.first().map(|p| p.floor.floor_tx_per_sec)
        && f > 0.0
        && f <= tmax
    {
        s += &format!(
            "<line x1=\"{l}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#1f77b4\" stroke-dasharray=\"2,3\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#1f77b4\">crypto floor {f:.0} tx/s</text>\n",
            l + pw,
            l + 6.0,
            yt(f) - 4.0,
            y = yt(f)
        );
    }
    s += "</svg>\n";
    s
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
