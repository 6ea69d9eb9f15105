//! `qcss chain genesis|start|status`: the public QCSS chain (crate
//! `qcss-dpos`) from the command line, and the key files it and the wallet
//! ([`crate::wallet`]) share.
//!
//! A node is configured by one TOML file (docs/chain.md): its genesis, data
//! directory, peer-to-peer, API and operations addresses, peers, and the
//! producer keys it signs with; it serves the JSON API of `qcss_dpos::api`,
//! `/healthz` and `/metrics`. Keys are JSON files written mode 0600. Every
//! rule lives in `qcss-dpos`; this module reads files, parses arguments and
//! prints.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::wallet::{get_json, node_addr, qcss};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use qcss_dpos::address::{Address, Keypair};
use qcss_dpos::api::StatusView;
use qcss_dpos::node::{Node, SystemClock};
use qcss_dpos::p2p::{self, P2pLimits, Peer, TlsIdentity};
use qcss_dpos::params::{Genesis, Params, TABLE_9};
use qcss_dpos::runner::{ChainNode, P2pConfig};
use serde::{Deserialize, Serialize};

#[derive(Debug, Subcommand)]
pub(crate) enum ChainCommand {
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
pub(crate) struct GenesisArgs {
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
    /// A consortium id (64 hex) allowed to pay consumer rewards from the
    /// DApp reward pool; repeat for several. None: nobody can pay yet.
    #[arg(long = "reward-consortium")]
    pub reward_consortia: Vec<String>,
    /// Reward epoch length in slots (default: one day of slots).
    #[arg(long)]
    pub reward_epoch_slots: Option<u64>,
    /// Slots a reward stays locked (default: the white paper's 7 days of
    /// 30 s slots, 20,160). Shorter only to try rewards out on a test chain.
    #[arg(long)]
    pub reward_lock_slots: Option<u64>,
    /// Least slots between two withdrawals of matured rewards (default:
    /// 30 days of 30 s slots, 86,400).
    #[arg(long)]
    pub withdraw_interval_slots: Option<u64>,
    /// Entries in one part of a reward batch (default: the white paper's
    /// 10,000; an epoch is paid in up to 16 parts). Smaller only to try
    /// epochs paid in several parts out on a test chain.
    #[arg(long)]
    pub reward_part_entries: Option<u32>,
    /// Producers cast finality votes (Casper FFG, dpos/README.md): a block
    /// is final about one slot after it is produced instead of ≈ 20.
    /// `--finality-votes=false` makes a chain whose blocks are final only
    /// once 21 producers built on them (BitShares' rule).
    #[arg(
        long,
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub finality_votes: bool,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct NodeArgs {
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

/// A fresh key from the system's random source.
pub(crate) fn new_key() -> Result<Keypair> {
    Keypair::generate().map_err(|_| anyhow!("the system random source failed"))
}

/// The key in `path`, or a fresh one written there (mode 0600) if the file
/// does not hold one yet.
pub(crate) fn read_or_new_key(path: &Path) -> Result<Keypair> {
    if let Ok(k) = read_key(path) {
        return Ok(k);
    }
    let k = new_key()?;
    write_key(path, &k)?;
    Ok(k)
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
    if a.reward_consortia.len() > 64 {
        bail!("at most 64 --reward-consortium");
    }
    let mut rewards = qcss_dpos::params::RewardParams::white_paper();
    for c in &a.reward_consortia {
        rewards.consortia.push(
            c.trim()
                .parse()
                .map_err(|_| anyhow!("--reward-consortium must be 64 hex digits, not {c:.80?}"))?,
        );
    }
    // 18 months and a day in this chain's slots (the white paper's numbers
    // assume 30 s slots).
    rewards.period_slots = (3 * 365 * 86_400_000 / 2) / a.slot_ms;
    rewards.epoch_slots = a.reward_epoch_slots.unwrap_or(86_400_000 / a.slot_ms);
    if let Some(n) = a.reward_part_entries {
        if n == 0 || n > rewards.max_entries {
            bail!(
                "--reward-part-entries must be 1 … {} (what fits a reward transaction)",
                rewards.max_entries
            );
        }
        rewards.max_entries = n;
    }
    if rewards.epoch_slots == 0 || rewards.epoch_slots > rewards.period_slots {
        bail!(
            "--reward-epoch-slots must be 1 … the 18 months' {} slots",
            rewards.period_slots
        );
    }
    let wp = Params::white_paper();
    let params = Params {
        slot_ms: a.slot_ms,
        epoch_rounds: a.epoch_rounds,
        rewards,
        reward_lock_slots: a.reward_lock_slots.unwrap_or(wp.reward_lock_slots),
        withdraw_interval_slots: a
            .withdraw_interval_slots
            .unwrap_or(wp.withdraw_interval_slots),
        fast_confirmations: a.finality_votes,
        ..wp
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

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A node's configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeConfig {
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
    /// Other nodes' peer-to-peer addresses, dialled and redialled over TLS:
    /// `"host:port"`, or `{ addr = "host:port", cert_sha256 = "…" }` to
    /// accept only the certificate with that SHA-256.
    #[serde(default)]
    pub peers: Vec<PeerEntry>,
    /// Producer key files this node signs with (none: a full node).
    #[serde(default)]
    pub producer_keys: Vec<PathBuf>,
    /// Limits on peers (`[p2p]`; every key optional, defaults in docs/chain.md).
    #[serde(default)]
    pub p2p: P2pLimits,
}

/// One entry of `peers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum PeerEntry {
    /// `"host:port"`: any certificate (identity comes from block signatures).
    Addr(String),
    /// `{ addr = "host:port", cert_sha256 = "64 hex digits" }`.
    Pinned(PinnedPeer),
}

/// A peer pinned to its TLS certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PinnedPeer {
    /// `host:port`.
    pub addr: String,
    /// SHA-256 of the peer's certificate (`qcss chain start` prints it).
    pub cert_sha256: String,
}

impl PeerEntry {
    /// The peer to dial, its address checked for a port and its pin for
    /// 64 hex digits.
    pub(crate) fn peer(&self) -> Result<Peer> {
        let (addr, pin) = match self {
            PeerEntry::Addr(a) => (a, None),
            PeerEntry::Pinned(p) => (&p.addr, Some(&p.cert_sha256)),
        };
        match addr.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => bail!("peer address {addr:?} must be host:port"),
        }
        let cert_sha256 = pin
            .map(|p| p2p::parse_pin(p).map_err(|e| anyhow!("peer {addr}: {e}")))
            .transpose()?;
        Ok(Peer {
            addr: addr.clone(),
            cert_sha256,
        })
    }
}

pub(crate) fn run(cmd: ChainCommand) -> Result<()> {
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
    let peers: Vec<Peer> = cfg
        .peers
        .iter()
        .map(PeerEntry::peer)
        .collect::<Result<_>>()
        .with_context(|| format!("{}: peers", config.display()))?;
    let data = resolve(base, &cfg.data_dir);
    std::fs::create_dir_all(&data)?;
    let identity = TlsIdentity::load_or_create(&data)
        .map_err(|e| anyhow!("the node's TLS identity in {}: {e}", data.display()))?;
    let cert_sha256 = identity.cert_sha256();
    let p2p = P2pConfig {
        identity,
        limits: cfg.p2p.clone(),
    };
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
        let expect_peers = !peers.is_empty();
        let chain = Arc::new(
            ChainNode::start(node, listener, peers, p2p)
                .map_err(|e| anyhow!("{}: {e}", config.display()))?,
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let snapshot = Arc::new(Mutex::new(Snapshot::default()));
        let registry = metrics(&snapshot)?;
        let drops = registry.counter_vec(
            "qcss_chain_p2p_dropped_links_total",
            "Peer links dropped and connections refused, by reason (garbage, oversize, invalid_block, rate_limited, over_limit, banned, tls_handshake, pin_mismatch).",
            &["reason"],
        )?;
        tokio::spawn(refresh(
            chain.clone(),
            snapshot.clone(),
            drops,
            stop_rx.clone(),
        ));
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
            cert_sha256 = %cert_sha256,
            api = %cfg.api,
            ops = %cfg.ops,
            "chain node started"
        );
        // Tests and supervisors wait for this line on stdout.
        println!(
            "chain node ready: chain {} p2p {} (TLS cert sha256 {cert_sha256}) api {} ops {} producers {producers}",
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
    finality_votes: bool,
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
    drops: qcss_network::ops::CounterVec,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut drops_seen = std::collections::HashMap::new();
    for (reason, _) in chain.dropped_links() {
        // Every reason shows from the first scrape, at 0.
        drops.with(&[reason]).inc_by(0);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let links = chain.peer_links();
        // The node counts since start; the counter moves by the difference.
        for (reason, count) in chain.dropped_links() {
            let seen = drops_seen.entry(reason).or_insert(0);
            if count > *seen {
                drops.with(&[reason]).inc_by(count - *seen);
                *seen = count;
            }
        }
        let s = chain.with_node(|n| {
            let st = n.status();
            Snapshot {
                taken: true,
                head_height: st.head_height,
                head_slot: st.head_slot,
                lib_height: st.lib_height,
                clock_slot: n.clock_slot(),
                round_slots: n.params().round_slots(),
                finality_votes: n.params().fast_confirmations,
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
    // With votes a block is final about a slot after it is made, so a lag
    // of a round already means the votes stopped; without, a block waits
    // for 21 producers to build on it (≈ 20 blocks) and the window is two.
    let (fin_window, who) = if s.finality_votes {
        (s.round_slots.max(1), "voting")
    } else {
        (window, "building")
    };
    let finality = if s.head_height > s.lib_height + fin_window {
        Err(format!(
            "last irreversible block {} is {} blocks behind the head: fewer than 2/3 of producers are {who}",
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

/// `qcss chain status`: a node's view of the chain.
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
        "slot {} ms, {} producers, {} to finalize ({}); schedule v{}; mempool {}; peer links {}; minted {}, burned {}",
        st.slot_ms,
        st.n_producers,
        st.irreversible_threshold,
        if st.finality_votes {
            "finality votes"
        } else {
            "by building on a block"
        },
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn peers_are_addresses_or_pinned_tables_and_mistakes_say_why() {
        let base = "genesis = \"g.json\"\ndata_dir = \"d\"\nlisten = \"127.0.0.1:1\"\napi = \"127.0.0.1:2\"\nops = \"127.0.0.1:3\"\n";
        let pin = "ab".repeat(32);
        let text = format!(
            "{base}peers = [\"10.0.0.6:7100\", {{ addr = \"node7:7100\", cert_sha256 = \"{pin}\" }}]\n[p2p]\nmax_links_per_ip = 2\n"
        );
        let cfg: NodeConfig = toml::from_str(&text).unwrap();
        let peers: Vec<Peer> = cfg.peers.iter().map(|p| p.peer().unwrap()).collect();
        assert_eq!(peers[0].cert_sha256, None);
        assert_eq!(peers[1].addr, "node7:7100");
        assert_eq!(peers[1].cert_sha256, Some([0xab; 32]));
        assert_eq!(cfg.p2p.max_links_per_ip, 2);
        assert_eq!(cfg.p2p.max_links, P2pLimits::default().max_links);
        let short = format!("{base}peers = [{{ addr = \"a:1\", cert_sha256 = \"ab\" }}]\n");
        let cfg: NodeConfig = toml::from_str(&short).unwrap();
        let e = cfg.peers[0].peer().unwrap_err().to_string();
        assert!(e.contains("64 hex digits"), "{e}");
        let no_port = format!("{base}peers = [\"10.0.0.6\"]\n");
        let cfg: NodeConfig = toml::from_str(&no_port).unwrap();
        let e = cfg.peers[0].peer().unwrap_err().to_string();
        assert!(e.contains("host:port"), "{e}");
        let unknown = format!("{base}[p2p]\nmax_linkz = 1\n");
        let e = toml::from_str::<NodeConfig>(&unknown)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_linkz"), "{e}");
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
                .any(|(c, r)| c == "chain.finality" && r.contains("building"))
        );
        // With finality votes a lag of a round (here 40 blocks) is already
        // a stall; without, it is within the two rounds production needs.
        let lagging = Snapshot {
            lib_height: 60,
            ..ok.clone()
        };
        assert!(health(&lagging, true).is_ok());
        let votes_stalled = Snapshot {
            finality_votes: true,
            ..lagging
        };
        assert!(
            health(&votes_stalled, true)
                .failed_checks()
                .any(|(c, r)| c == "chain.finality" && r.contains("voting"))
        );
        let alone = Snapshot {
            peer_links: 0,
            ..ok.clone()
        };
        assert!(!health(&alone, true).is_ok());
        assert!(health(&alone, false).is_ok());
    }
}
