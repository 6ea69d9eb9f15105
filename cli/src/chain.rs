//! `qcss chain genesis|start|status` and `qcss wallet …`: the public QCSS
//! chain (crate `qcss-dpos`) from the command line.
//!
//! A node is configured by one TOML file (docs/chain.md): its genesis, data
//! directory, peer-to-peer, API and operations addresses, peers, and the
//! producer keys it signs with. The wallet talks to any node's JSON API
//! (`qcss_dpos::api`); keys are JSON files written mode 0600. Every rule
//! lives in `qcss-dpos`; this module reads files, parses arguments and
//! prints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use qcss_dpos::address::{Address, Keypair};
use qcss_dpos::api::{AccountView, HistoryEntry, StatusView};
use qcss_dpos::hash::Hash32;
use qcss_dpos::node::{Node, SystemClock};
use qcss_dpos::params::{COIN, Genesis, Params, TABLE_9};
use qcss_dpos::runner::ChainNode;
use qcss_dpos::tx::{Tx, TxKind};
use serde::{Deserialize, Serialize};

/// Where the wallet finds a node when neither `--node` nor a network
/// folder says: the first node `network up` starts.
const DEFAULT_NODE_ENV: &str = "QCSS_CHAIN_NODE";

#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Write a genesis file, its producer keys and the table-9 bucket keys.
    Genesis(GenesisArgs),
    /// Run a node (a producer if its configuration lists producer keys).
    Start {
        /// The node's TOML configuration (docs/chain.md).
        #[arg(long)]
        config: PathBuf,
    },
    /// Head, last irreversible block, this round's schedule, participation.
    Status(NodeArgs),
}

#[derive(Debug, Args)]
pub struct GenesisArgs {
    /// Folder to write `genesis.json`, `keys/producer-NN.json` and
    /// `keys/<bucket>.json` into (must not hold a genesis already).
    #[arg(long)]
    pub out: PathBuf,
    /// The chain's name (part of its id).
    #[arg(long, default_value = "qcss-local")]
    pub name: String,
    /// Slot length in ms (the white paper's 30,000 in production).
    #[arg(long, default_value_t = 30_000)]
    pub slot_ms: u64,
    /// Rounds between elections (650 ≈ 7 days at 30 s slots).
    #[arg(long, default_value_t = 650)]
    pub epoch_rounds: u64,
    /// Seconds from now to slot 0.
    #[arg(long, default_value_t = 10)]
    pub start_in: u64,
}

#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// A node's API address (host:port). Default: $QCSS_CHAIN_NODE, else
    /// the first chain node of the network in --dir.
    #[arg(long)]
    pub node: Option<String>,
    /// The network folder `qcss network up` wrote.
    #[arg(long, default_value = "qcss-net")]
    pub dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A key file: the account's address and its Ed25519 secret.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    address: Address,
    /// 32-byte secret, hex.
    secret: String,
}

/// Writes `key` to `path`, mode 0600, refusing to overwrite.
pub(crate) fn write_key(path: &Path, key: &Keypair) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let body = serde_json::to_vec_pretty(&KeyFile {
        address: key.address(),
        secret: hex::encode(key.secret()),
    })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing key {} (it must not exist yet)", path.display()))?;
    f.write_all(&body)?;
    Ok(())
}

/// Reads a key file and checks the secret gives the address it names.
pub(crate) fn read_key(path: &Path) -> Result<Keypair> {
    let bytes = std::fs::read(path).with_context(|| format!("reading key {}", path.display()))?;
    if bytes.len() > 4096 {
        bail!("{} is not a QCSS key file (too long)", path.display());
    }
    let f: KeyFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a QCSS key file", path.display()))?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(f.secret.trim(), &mut secret)
        .with_context(|| format!("{}: the secret must be 64 hex digits", path.display()))?;
    let key = Keypair::from_secret(secret);
    if key.address() != f.address {
        bail!(
            "{}: the secret belongs to {}, not to the address {} the file names",
            path.display(),
            key.address(),
            f.address
        );
    }
    Ok(key)
}

/// What `genesis` wrote.
pub(crate) struct Written {
    pub(crate) genesis: Genesis,
    pub(crate) producer_keys: Vec<PathBuf>,
    pub(crate) bucket_keys: Vec<(String, PathBuf)>,
}

/// Generates producer and bucket keys under `out/keys` and writes
/// `out/genesis.json`: table 9's split over the eight bucket accounts.
pub(crate) fn write_genesis(a: &GenesisArgs, producers: u32) -> Result<Written> {
    let path = a.out.join("genesis.json");
    if path.exists() {
        bail!(
            "{} exists: a chain's genesis is written once",
            path.display()
        );
    }
    if a.slot_ms < 200 {
        bail!("--slot-ms must be at least 200");
    }
    let new_key = || Keypair::generate().map_err(|_| anyhow!("the system random source failed"));
    let mut producer_keys = Vec::new();
    let mut initial = Vec::new();
    for i in 1..=producers {
        let k = new_key()?;
        let p = a.out.join("keys").join(format!("producer-{i:02}.json"));
        write_key(&p, &k)?;
        initial.push(k.address());
        producer_keys.push(p);
    }
    let mut buckets = Vec::new();
    let mut bucket_keys = Vec::new();
    for (label, _) in TABLE_9 {
        let k = new_key()?;
        let p = a.out.join("keys").join(format!("{label}.json"));
        write_key(&p, &k)?;
        buckets.push(k.address());
        bucket_keys.push((label.to_string(), p));
    }
    let params = Params {
        slot_ms: a.slot_ms,
        epoch_rounds: a.epoch_rounds,
        ..Params::white_paper()
    };
    let now = now_ms();
    // Slot 0 on a whole second, `start_in` from now.
    let start = (now / 1000 + a.start_in) * 1000;
    let buckets: [Address; 8] = buckets
        .try_into()
        .map_err(|_| anyhow!("table 9 has eight buckets"))?;
    let genesis = Genesis::white_paper(&a.name, start, params, buckets, initial);
    genesis.check().map_err(|e| anyhow!("{e}"))?;
    std::fs::write(&path, serde_json::to_vec_pretty(&genesis)?)?;
    Ok(Written {
        genesis,
        producer_keys,
        bucket_keys,
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A node's configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The genesis file (relative paths are relative to this file).
    pub genesis: PathBuf,
    /// Where the node keeps its chain (sled).
    pub data_dir: PathBuf,
    /// Peer-to-peer address to listen on.
    pub listen: String,
    /// JSON API address (wallets, explorers, light clients).
    pub api: String,
    /// Operations address: `/healthz`, `/metrics`.
    pub ops: String,
    /// Other nodes' peer-to-peer addresses, dialled and redialled.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Producer key files this node signs with (none: a full node).
    #[serde(default)]
    pub producer_keys: Vec<PathBuf>,
}

pub fn run(cmd: ChainCommand) -> Result<()> {
    match cmd {
        ChainCommand::Genesis(a) => {
            let w = write_genesis(&a, 31)?;
            println!(
                "chain {} ({}): genesis {}, slot 0 at {} ms since 1970",
                w.genesis.name,
                w.genesis.chain_id(),
                a.out.join("genesis.json").display(),
                w.genesis.genesis_time_ms
            );
            println!(
                "{} producer keys and {} table-9 bucket keys in {} (mode 0600; keep them secret)",
                w.producer_keys.len(),
                w.bucket_keys.len(),
                a.out.join("keys").display()
            );
            Ok(())
        }
        ChainCommand::Start { config } => start(&config),
        ChainCommand::Status(a) => status(&a),
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Reads a genesis file (bounded) and checks it.
pub(crate) fn read_genesis(path: &Path) -> Result<Genesis> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading genesis {}", path.display()))?;
    if bytes.len() > 16 * 1024 * 1024 {
        bail!("{}: a genesis file over 16 MiB is refused", path.display());
    }
    let g: Genesis = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a genesis file", path.display()))?;
    g.check().map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(g)
}

fn start(config: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let cfg: NodeConfig = toml::from_str(&text)
        .with_context(|| format!("{} is not a chain node configuration", config.display()))?;
    let base = config.parent().unwrap_or(Path::new("."));
    let genesis = read_genesis(&resolve(base, &cfg.genesis))?;
    let mut keys = Vec::new();
    for k in &cfg.producer_keys {
        let key = read_key(&resolve(base, k))?;
        if !genesis.initial_producers.contains(&key.address()) {
            // Not fatal: it may be elected later.
            tracing::warn!(
                "{} is not an initial producer; it produces once elected",
                key.address()
            );
        }
        keys.push(key);
    }
    let peers: Vec<SocketAddr> = cfg
        .peers
        .iter()
        .map(|p| p.parse().with_context(|| format!("peer address {p:?}")))
        .collect::<Result<_>>()?;
    let data = resolve(base, &cfg.data_dir);
    std::fs::create_dir_all(&data)?;
    let mut keys = keys.into_iter();
    let mut node = Node::open(&data, &genesis, keys.next(), Arc::new(SystemClock))
        .map_err(|e| anyhow!("opening the chain in {}: {e}", data.display()))?;
    for k in keys {
        node.add_producer_key(k);
    }
    let producers = node.producer_addresses().len();
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&cfg.listen)
            .await
            .with_context(|| format!("listening on {}", cfg.listen))?;
        let api = tokio::net::TcpListener::bind(&cfg.api)
            .await
            .with_context(|| format!("API on {}", cfg.api))?;
        let ops = tokio::net::TcpListener::bind(&cfg.ops)
            .await
            .with_context(|| format!("operations on {}", cfg.ops))?;
        let chain = Arc::new(ChainNode::start(node, listener, peers.clone())?);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        tokio::spawn(refresh(chain.clone(), snapshot.clone(), stop_rx.clone()));
        let registry = metrics(&snapshot)?;
        let expect_peers = !peers.is_empty();
        let health_snap = snapshot.clone();
        let ops_cfg = qcss_network::ops::Ops::new(registry)
            .with_health_check(move || health(&lock(&health_snap), expect_peers));
        let mut rx = stop_rx.clone();
        tokio::spawn(qcss_network::ops::serve(ops, ops_cfg, async move {
            let _ = rx.changed().await;
        }));
        let mut rx = stop_rx.clone();
        let router = qcss_dpos::api::router(chain.clone(), genesis.name.clone());
        let api_task = tokio::spawn(async move {
            axum::serve(api, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.changed().await;
                })
                .await
        });
        tracing::info!(
            chain_id = %genesis.chain_id(),
            producers,
            listen = %cfg.listen,
            api = %cfg.api,
            ops = %cfg.ops,
            "chain node started"
        );
        // Tests and supervisors wait for this line on stdout.
        println!(
            "chain node ready: chain {} p2p {} api {} ops {} producers {producers}",
            genesis.chain_id(),
            cfg.listen,
            cfg.api,
            cfg.ops
        );
        crate::ca::shutdown_signal().await;
        tracing::info!("stopping");
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(3), api_task).await;
        if let Ok(chain) = Arc::try_unwrap(chain) {
            let _ = tokio::time::timeout(Duration::from_secs(3), chain.stop()).await;
        }
        Ok::<_, anyhow::Error>(())
    });
    rt.shutdown_timeout(Duration::from_secs(3));
    result
}

/// What health and metrics read, refreshed four times a second so a scrape
/// never waits on the node's lock.
#[derive(Default, Clone)]
struct Snapshot {
    taken: bool,
    head_height: u64,
    head_slot: u64,
    lib_height: u64,
    clock_slot: u64,
    round_slots: u64,
    peer_links: usize,
    mempool: usize,
    schedule_version: u64,
    producers: Vec<(String, u64, u64)>,
}

fn lock(s: &Arc<Mutex<Snapshot>>) -> Snapshot {
    match s.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

async fn refresh(
    chain: Arc<ChainNode>,
    snap: Arc<Mutex<Snapshot>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let links = chain.peer_links();
        let s = chain.with_node(|n| {
            let st = n.status();
            Snapshot {
                taken: true,
                head_height: st.head_height,
                head_slot: st.head_slot,
                lib_height: st.lib_height,
                clock_slot: n.clock_slot(),
                round_slots: n.params().round_slots(),
                peer_links: links,
                mempool: st.mempool,
                schedule_version: st.schedule_version,
                producers: st
                    .producers
                    .iter()
                    .map(|(a, p, m)| (a.to_string(), *p, *m))
                    .collect(),
            }
        });
        if let Ok(mut g) = snap.lock() {
            *g = s;
        }
    }
}

/// Healthy when the head keeps up with the clock (producing or synced),
/// finality keeps up with the head, and (if peers are configured) at least
/// one peer is connected.
fn health(s: &Snapshot, expect_peers: bool) -> qcss_network::ops::Health {
    use qcss_network::ops::Health;
    if !s.taken {
        return Health::new().check("chain", Err("starting".into()));
    }
    let window = 2 * s.round_slots.max(1);
    let head = if s.clock_slot > s.head_slot + window {
        Err(format!(
            "head at slot {} is {} slots behind the clock (slot {}): not producing or not synced",
            s.head_slot,
            s.clock_slot - s.head_slot,
            s.clock_slot
        ))
    } else {
        Ok(())
    };
    let finality = if s.head_height > s.lib_height + window {
        Err(format!(
            "last irreversible block {} is {} blocks behind the head: fewer than 2/3 of producers are building",
            s.lib_height,
            s.head_height - s.lib_height
        ))
    } else {
        Ok(())
    };
    let peers = if expect_peers && s.peer_links == 0 {
        Err("no peer connected".into())
    } else {
        Ok(())
    };
    Health::new()
        .check("chain.head", head)
        .check("chain.finality", finality)
        .check("chain.peers", peers)
}

fn metrics(snap: &Arc<Mutex<Snapshot>>) -> Result<qcss_network::ops::Registry> {
    let r = qcss_network::ops::Registry::new();
    let gauge = |name: &str, help: &str, f: fn(&Snapshot) -> f64| {
        let s = snap.clone();
        r.gauge_fn(name, help, move || f(&lock(&s)))
    };
    gauge("qcss_chain_head_height", "Height of the head block.", |s| {
        s.head_height as f64
    })?;
    gauge("qcss_chain_head_slot", "Slot of the head block.", |s| {
        s.head_slot as f64
    })?;
    gauge(
        "qcss_chain_clock_slot",
        "The slot the node's clock is in.",
        |s| s.clock_slot as f64,
    )?;
    gauge(
        "qcss_chain_irreversible_height",
        "Height of the last irreversible block.",
        |s| s.lib_height as f64,
    )?;
    gauge(
        "qcss_chain_irreversible_lag_blocks",
        "Blocks between the head and the last irreversible block.",
        |s| s.head_height.saturating_sub(s.lib_height) as f64,
    )?;
    gauge("qcss_chain_peer_links", "Open peer-to-peer links.", |s| {
        s.peer_links as f64
    })?;
    gauge(
        "qcss_chain_mempool_transactions",
        "Transactions waiting for a block.",
        |s| s.mempool as f64,
    )?;
    gauge(
        "qcss_chain_schedule_version",
        "Version of the active producer schedule.",
        |s| s.schedule_version as f64,
    )?;
    // Produced and missed counts are the chain's own record (they only grow
    // along one branch; a fork switch may lower them, so they are gauges).
    let s = snap.clone();
    r.gauge_vec_fn(
        "qcss_chain_producer_blocks",
        "Blocks produced by each active producer, as recorded on the head's branch.",
        &["producer"],
        move || {
            lock(&s)
                .producers
                .iter()
                .map(|(a, p, _)| (vec![a.clone()], *p as f64))
                .collect()
        },
    )?;
    let s = snap.clone();
    r.gauge_vec_fn(
        "qcss_chain_producer_missed_slots",
        "Slots each active producer missed, as recorded on the head's branch.",
        &["producer"],
        move || {
            lock(&s)
                .producers
                .iter()
                .map(|(a, _, m)| (vec![a.clone()], *m as f64))
                .collect()
        },
    )?;
    Ok(r)
}

// ---------------------------------------------------------------------------
// Client side: status and wallet
// ---------------------------------------------------------------------------

/// Largest API answer read (a status with 31 producers is ~10 KiB; a
/// history of 500 transactions well under 1 MiB).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// One HTTP/1.1 request to a node's API: (status, body).
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let a: SocketAddr = addr
        .parse()
        .with_context(|| format!("node address {addr:?} is not host:port"))?;
    let mut s = std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2))
        .with_context(|| format!("no chain node answers at {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = Vec::new();
    s.take(MAX_ANSWER as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > MAX_ANSWER {
        bail!("{addr}: answer over {MAX_ANSWER} bytes");
    }
    let text = String::from_utf8(buf).context("answer is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("{addr}: not an HTTP answer"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("{addr}: not an HTTP answer"))?;
    Ok((status, body.to_owned()))
}

/// GETs JSON; a non-200 answer becomes its `error` text.
pub(crate) fn get_json<T: serde::de::DeserializeOwned>(addr: &str, path: &str) -> Result<T> {
    let (status, body) = http(addr, "GET", path, None)?;
    if status != 200 {
        bail!("{}", api_error(status, &body));
    }
    serde_json::from_str(&body).with_context(|| format!("{addr}{path}: unexpected answer"))
}

fn api_error(status: u16, body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("HTTP {status}"))
}

/// The node to talk to: `--node`, `$QCSS_CHAIN_NODE`, or the network's first.
pub(crate) fn node_addr(a: &NodeArgs) -> Result<String> {
    if let Some(n) = &a.node {
        return Ok(n.clone());
    }
    if let Ok(n) = std::env::var(DEFAULT_NODE_ENV) {
        return Ok(n);
    }
    let info = crate::network::read_info(&a.dir).with_context(|| {
        format!(
            "no --node given, ${DEFAULT_NODE_ENV} unset, and no network in {}",
            a.dir.display()
        )
    })?;
    info.chain
        .and_then(|c| c.nodes.first().map(|n| n.api.clone()))
        .ok_or_else(|| anyhow!("the network in {} runs no public chain", a.dir.display()))
}

/// Base units as QCSS with 8 decimals.
pub(crate) fn qcss(units: u64) -> String {
    format!("{}.{:08} QCSS", units / COIN, units % COIN)
}

/// Parses "12", "12.5" or "0.00000001" QCSS into base units, exactly.
pub(crate) fn parse_amount(text: &str) -> Result<u64> {
    let t = text.trim().trim_end_matches("QCSS").trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let bad = || anyhow!("amount {t:?}: write QCSS with at most 8 decimals, e.g. 12.5");
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 8
        || whole.len() > 12
    {
        return Err(bad());
    }
    let w: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let f: u64 = format!("{frac:0<8}").parse().map_err(|_| bad())?;
    let units = w
        .checked_mul(COIN)
        .and_then(|x| x.checked_add(f))
        .ok_or_else(bad)?;
    if units == 0 {
        bail!("amount must be positive");
    }
    Ok(units)
}

fn status(a: &NodeArgs) -> Result<()> {
    let addr = node_addr(a)?;
    let st: StatusView = get_json(&addr, "/v1/status")?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(());
    }
    print_status(&addr, &st);
    Ok(())
}

fn print_status(addr: &str, st: &StatusView) {
    println!("chain {} ({})  node {addr}", st.name, st.chain_id);
    println!(
        "head {} (slot {}, {})  irreversible {} ({} behind)  clock slot {}",
        st.head_height,
        st.head_slot,
        &st.head_id.to_hex()[..16],
        st.lib_height,
        st.head_height.saturating_sub(st.lib_height),
        st.clock_slot
    );
    println!(
        "slot {} ms, {} producers, {} to finalize; schedule v{}; mempool {}; peer links {}; minted {}, burned {}",
        st.slot_ms,
        st.n_producers,
        st.irreversible_threshold,
        st.schedule_version,
        st.mempool,
        st.peer_links,
        qcss(st.minted),
        qcss(st.burned)
    );
    let total_prod: u64 = st.producers.iter().map(|p| p.produced).sum();
    let total_miss: u64 = st.producers.iter().map(|p| p.missed).sum();
    let part = if total_prod + total_miss == 0 {
        100.0
    } else {
        100.0 * total_prod as f64 / (total_prod + total_miss) as f64
    };
    println!("participation {part:.1}% ({total_prod} produced, {total_miss} missed)");
    println!("this round, in slot order (produced / missed):");
    for (i, a) in st.round_order.iter().enumerate() {
        let p = st.producers.iter().find(|p| p.address == *a);
        let here = if st.local_producers.contains(a) {
            "  (this node)"
        } else {
            ""
        };
        println!(
            "  {:>2}. {a}  {:>5} / {:<5}{here}",
            i + 1,
            p.map_or(0, |p| p.produced),
            p.map_or(0, |p| p.missed)
        );
    }
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Create a key file (mode 0600) and print its address.
    New {
        /// Where to write the key.
        #[arg(long)]
        key: PathBuf,
    },
    /// Print a key file's address.
    Address {
        /// The key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// An account's balance, locked rewards and votes.
    Balance {
        /// The account (qcss1…); or give --key.
        address: Option<String>,
        /// A key file whose account to show.
        #[arg(long)]
        key: Option<PathBuf>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Send QCSS to an address (to the black hole: burned).
    Transfer {
        /// Recipient (qcss1…).
        to: String,
        /// Amount in QCSS, e.g. 12.5.
        amount: String,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Destroy QCSS.
    Burn {
        /// Amount in QCSS.
        amount: String,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Approve up to 31 producers (replaces the previous vote; none: withdraw it).
    Vote {
        /// Producer addresses.
        producers: Vec<String>,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Stand for election as a producer.
    RegisterProducer {
        /// Where the producer says who it is.
        #[arg(long)]
        url: String,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Move matured rewards to the liquid balance (once per 30 days).
    Withdraw {
        #[command(flatten)]
        tx: TxArgs,
    },
    /// The account's transactions in recent blocks.
    History {
        /// The account (qcss1…); or give --key.
        address: Option<String>,
        /// A key file whose account to show.
        #[arg(long)]
        key: Option<PathBuf>,
        /// How many recent blocks to search (at most 2,000).
        #[arg(long, default_value_t = 500)]
        blocks: u64,
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(Debug, Args)]
pub struct TxArgs {
    /// The sender's key file.
    #[arg(long)]
    pub key: PathBuf,
    /// Fee in QCSS (default: the chain's minimum).
    #[arg(long)]
    pub fee: Option<String>,
    /// The chain id this transaction is meant for; refused if the node is
    /// on another chain.
    #[arg(long)]
    pub chain_id: Option<String>,
    /// Return once the node accepted it, without waiting for a block.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub node: NodeArgs,
}

pub fn run_wallet(cmd: WalletCommand) -> Result<()> {
    match cmd {
        WalletCommand::New { key } => {
            let k = Keypair::generate().map_err(|_| anyhow!("the system random source failed"))?;
            write_key(&key, &k)?;
            println!("{}", k.address());
            Ok(())
        }
        WalletCommand::Address { key } => {
            println!("{}", read_key(&key)?.address());
            Ok(())
        }
        WalletCommand::Balance { address, key, node } => {
            let who = account_of(address.as_deref(), key.as_deref())?;
            let addr = node_addr(&node)?;
            let v: AccountView = get_json(&addr, &format!("/v1/account/{who}"))?;
            if node.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            println!("{who}");
            println!("  liquid   {}", qcss(v.account.balance));
            let matured: u64 = v
                .account
                .locked
                .iter()
                .filter(|l| l.unlock_slot <= v.head_slot)
                .map(|l| l.amount)
                .sum();
            let locked = v.account.locked_total();
            println!(
                "  locked   {} ({} matured, withdrawable once per 30 days)",
                qcss(u64::try_from(locked).unwrap_or(u64::MAX)),
                qcss(matured)
            );
            println!("  nonce    {}", v.account.nonce);
            if !v.account.votes.is_empty() {
                println!("  votes for {} producers", v.account.votes.len());
            }
            if let Some(p) = v.producer {
                println!(
                    "  producer: produced {}, missed {}",
                    p.produced_total, p.missed_total
                );
            }
            Ok(())
        }
        WalletCommand::Transfer { to, amount, tx } => {
            let to: Address = to.trim().parse().map_err(|e| anyhow!("recipient: {e}"))?;
            let amount = parse_amount(&amount)?;
            send(&tx, TxKind::Transfer { to, amount })
        }
        WalletCommand::Burn { amount, tx } => {
            let amount = parse_amount(&amount)?;
            send(&tx, TxKind::Burn { amount })
        }
        WalletCommand::Vote { producers, tx } => {
            if producers.len() > 64 {
                bail!("a vote names at most 31 producers, got {}", producers.len());
            }
            let producers = producers
                .iter()
                .map(|p| {
                    p.trim()
                        .parse()
                        .map_err(|e| anyhow!("producer {p:.70}: {e}"))
                })
                .collect::<Result<Vec<Address>>>()?;
            send(&tx, TxKind::Vote { producers })
        }
        WalletCommand::RegisterProducer { url, tx } => send(&tx, TxKind::RegisterProducer { url }),
        WalletCommand::Withdraw { tx } => send(&tx, TxKind::WithdrawRewards),
        WalletCommand::History {
            address,
            key,
            blocks,
            node,
        } => {
            let who = account_of(address.as_deref(), key.as_deref())?;
            let addr = node_addr(&node)?;
            let list: Vec<HistoryEntry> =
                get_json(&addr, &format!("/v1/account/{who}/history?blocks={blocks}"))?;
            if node.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            if list.is_empty() {
                println!("no transactions of {who} in the last {blocks} blocks");
            }
            for e in list {
                println!(
                    "block {:>7}  {}  {}",
                    e.height,
                    &e.id.to_hex()[..16],
                    describe(&e.tx.tx, &who)
                );
            }
            Ok(())
        }
    }
}

fn account_of(address: Option<&str>, key: Option<&Path>) -> Result<Address> {
    match (address, key) {
        (Some(a), None) => a.trim().parse().map_err(|e| anyhow!("address: {e}")),
        (None, Some(k)) => Ok(read_key(k)?.address()),
        _ => bail!("give an address or --key, one of them"),
    }
}

fn describe(tx: &Tx, me: &Address) -> String {
    let dir = |from: &Address| if from == me { "sent" } else { "received" };
    match &tx.kind {
        TxKind::Transfer { to, amount } if to.is_black_hole() => {
            format!("burned {} (sent to the black hole)", qcss(*amount))
        }
        TxKind::Transfer { to, amount } if tx.sender == *me => {
            format!("{} {} to {to}", dir(&tx.sender), qcss(*amount))
        }
        TxKind::Transfer { amount, .. } => format!("received {} from {}", qcss(*amount), tx.sender),
        TxKind::Burn { amount } => format!("burned {}", qcss(*amount)),
        TxKind::Vote { producers } if tx.sender == *me => {
            format!("voted for {} producers", producers.len())
        }
        TxKind::Vote { .. } => format!("approved by {}", tx.sender),
        TxKind::RegisterProducer { url } => format!("registered as producer ({url:.60})"),
        TxKind::UnregisterProducer => "unregistered as producer".into(),
        TxKind::WithdrawRewards => "withdrew matured rewards".into(),
        TxKind::Evidence(_) => "submitted equivocation evidence".into(),
        TxKind::Anchor(_) => "anchor".into(),
    }
}

/// Builds, signs and submits a transaction, then (unless `--no-wait`)
/// waits until a block includes it or it expires.
pub(crate) fn send(a: &TxArgs, kind: TxKind) -> Result<()> {
    let key = read_key(&a.key)?;
    let addr = node_addr(&a.node)?;
    let out = submit(
        &addr,
        &key,
        kind,
        a.fee.as_deref(),
        a.chain_id.as_deref(),
        !a.no_wait,
    )?;
    if a.node.json {
        println!(
            "{}",
            serde_json::json!({ "id": out.id, "included": out.included, "height": out.height })
        );
    } else {
        match (out.included, out.height) {
            (true, Some(h)) => println!("transaction {} included at height {h}", out.id),
            (true, None) => println!("transaction {} included", out.id),
            _ => println!("transaction {} accepted by {addr}", out.id),
        }
    }
    Ok(())
}

pub(crate) struct Submitted {
    pub(crate) id: Hash32,
    /// A block on the node's best chain holds it.
    pub(crate) included: bool,
    /// That block's height, if found among the last 50.
    pub(crate) height: Option<u64>,
}

/// Submits `kind` from `key` through the node at `addr`.
pub(crate) fn submit(
    addr: &str,
    key: &Keypair,
    kind: TxKind,
    fee: Option<&str>,
    want_chain: Option<&str>,
    wait: bool,
) -> Result<Submitted> {
    let st: StatusView = get_json(addr, "/v1/status")?;
    if let Some(want) = want_chain
        && want.trim() != st.chain_id.to_hex()
    {
        bail!(
            "wrong chain: the node at {addr} is on chain {}, not {want:.64}",
            st.chain_id
        );
    }
    let me = key.address();
    let acct: AccountView = get_json(addr, &format!("/v1/account/{me}"))?;
    let fee = match fee {
        Some(f) => parse_amount(f)?,
        None => st.min_fee,
    };
    let now = st.clock_slot.max(st.head_slot);
    // Two minutes of slots (at least ten), within the chain's limit.
    let ttl = (120_000 / st.slot_ms.max(1))
        .max(10)
        .min(st.max_expiry_slots);
    let tx = Tx {
        chain_id: st.chain_id,
        sender: me,
        nonce: acct.account.nonce,
        fee,
        expiry_slot: now + ttl,
        kind,
    };
    let (nonce, expiry) = (tx.nonce, tx.expiry_slot);
    let signed = tx.sign(key);
    let id = signed.id();
    let (status, body) = http(addr, "POST", "/v1/tx", Some(&hex::encode(signed.encode())))?;
    if status != 200 {
        bail!("refused by {addr}: {}", api_error(status, &body));
    }
    if !wait {
        return Ok(Submitted {
            id,
            included: false,
            height: None,
        });
    }
    let deadline = std::time::Instant::now()
        + Duration::from_millis((ttl + 2).saturating_mul(st.slot_ms).min(600_000));
    loop {
        let v: AccountView = get_json(addr, &format!("/v1/account/{me}"))?;
        if v.account.nonce > nonce {
            // Find the block: search back from the head.
            let list: Vec<HistoryEntry> =
                get_json(addr, &format!("/v1/account/{me}/history?blocks=50"))?;
            let height = list.iter().find(|e| e.id == id).map(|e| e.height);
            return Ok(Submitted {
                id,
                included: true,
                height,
            });
        }
        if v.head_slot > expiry {
            bail!("transaction {id} expired at slot {expiry} without being included");
        }
        if std::time::Instant::now() > deadline {
            bail!("transaction {id} not included after waiting; check `qcss chain status`");
        }
        std::thread::sleep(Duration::from_millis((st.slot_ms / 4).clamp(50, 2_000)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly_and_refuse_what_is_not_an_amount() {
        assert_eq!(parse_amount("12.5").unwrap(), 1_250_000_000);
        assert_eq!(parse_amount("0.00000001").unwrap(), 1);
        assert_eq!(parse_amount("3 QCSS").unwrap(), 300_000_000);
        assert_eq!(parse_amount(".5").unwrap(), 50_000_000);
        for bad in [
            "",
            ".",
            "1.000000001",
            "-1",
            "1e3",
            "0",
            "0.0",
            "abc",
            "1.2.3",
            "99999999999999",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad:?}");
        }
        assert_eq!(qcss(1_250_000_001), "12.50000001 QCSS");
    }

    #[test]
    fn key_files_are_private_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        let k = Keypair::generate().unwrap();
        write_key(&p, &k).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_key(&p).unwrap().address(), k.address());
        assert!(write_key(&p, &k).is_err(), "never overwrites a key");
        // A file whose secret does not match its address is refused.
        let other = Keypair::generate().unwrap();
        let forged =
            serde_json::json!({ "address": other.address(), "secret": hex::encode(k.secret()) });
        let q = dir.path().join("bad.json");
        std::fs::write(&q, forged.to_string()).unwrap();
        let e = read_key(&q).unwrap_err().to_string();
        assert!(e.contains("belongs to"), "{e}");
    }

    #[test]
    fn health_names_what_is_wrong() {
        let ok = Snapshot {
            taken: true,
            head_height: 100,
            head_slot: 120,
            lib_height: 80,
            clock_slot: 121,
            round_slots: 31,
            peer_links: 2,
            ..Snapshot::default()
        };
        assert!(health(&ok, true).is_ok());
        let behind = Snapshot {
            clock_slot: 400,
            ..ok.clone()
        };
        let h = health(&behind, true);
        assert!(
            h.failed_checks()
                .any(|(c, r)| c == "chain.head" && r.contains("behind the clock"))
        );
        let stalled = Snapshot {
            lib_height: 10,
            ..ok.clone()
        };
        assert!(
            health(&stalled, true)
                .failed_checks()
                .any(|(c, _)| c == "chain.finality")
        );
        let alone = Snapshot {
            peer_links: 0,
            ..ok.clone()
        };
        assert!(!health(&alone, true).is_ok());
        assert!(health(&alone, false).is_ok());
    }
}
