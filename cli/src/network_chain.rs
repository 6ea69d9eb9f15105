//! The public chain `qcss network up` runs beside the consortium: a genesis
//! with 31 producers whose keys a few nodes hold between them (11/10/10 for
//! three), one TOML file per node under `DIR/chain/` (the same files run
//! the nodes on other hosts, docs/chain.md), short slots, and with `--demo`
//! a few token movements.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use prost::Message;
use qcss_anchor::Hash32;
use serde::{Deserialize, Serialize};

use crate::chain::{GenesisArgs, read_key, write_genesis};
use crate::network::{NetworkInfo, Pids, Progress, addr, exec_prefix, spawn, wait};
use crate::network_status::{Scrape, http_get};
use crate::wallet::submit;
use qcss_dpos::tx::TxKind;

/// One chain node of the local network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChainNodeInfo {
    /// Process name (`chain1`, …) and config file stem.
    pub name: String,
    /// Peer-to-peer address.
    pub p2p: String,
    /// JSON API address.
    pub api: String,
    /// Operations address (`/healthz`, `/metrics`).
    pub ops: String,
    /// How many of the producer keys it holds.
    pub producers: usize,
    /// The org whose host it runs on (for `--exec-prefix`).
    pub org: String,
}

/// The public chain of the local network (`chain` in network.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChainInfo {
    /// Chain id (hex).
    pub chain_id: String,
    /// Its nodes.
    pub nodes: Vec<ChainNodeInfo>,
    /// What the demo did, once it ran.
    #[serde(default)]
    pub demo: Option<ChainDemo>,
    /// The anchoring bridge, once set up.
    #[serde(default)]
    pub anchor: Option<AnchorInfo>,
    /// Unix ms of the chain's slot 0.
    #[serde(default)]
    pub genesis_time_ms: u64,
    /// Its consumer reward epoch, seconds (0: a chain made before the
    /// consortium could pay rewards on it).
    #[serde(default)]
    pub reward_epoch_secs: u64,
    /// Entries in one part of its reward batches (0: a chain made before
    /// this was recorded; the white paper's 10,000).
    #[serde(default)]
    pub reward_part_entries: u32,
}

/// What `network up` asks of the public chain it creates.
pub(crate) struct ChainShape {
    pub nodes: usize,
    pub slot_ms: u64,
    pub reward_epoch_secs: u64,
    pub reward_lock_slots: Option<u64>,
    pub withdraw_interval_slots: Option<u64>,
    pub reward_part_entries: Option<u32>,
}

/// The consortium's anchoring on the local public chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AnchorInfo {
    /// The channel's consortium id (hex).
    pub consortium_id: String,
    /// The bridge's configuration (relative to DIR).
    pub config: String,
}

/// The demo's token movements.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChainDemo {
    /// The consumer wallet it funded (key file, relative to DIR).
    pub consumer_key: String,
    /// Its address.
    pub consumer: String,
}

/// Writes the genesis, keys and node configurations under `DIR/chain`.
pub(crate) fn create(
    dir: &Path,
    info: &NetworkInfo,
    shape: &ChainShape,
    p: &Progress,
) -> Result<ChainInfo> {
    let (nodes, slot_ms) = (shape.nodes, shape.slot_ms);
    if !(1..=31).contains(&nodes) {
        bail!("--chain-nodes must be 0..=31");
    }
    let epoch_ms = shape.reward_epoch_secs.saturating_mul(1000);
    if shape.reward_epoch_secs < 60 || slot_ms == 0 || !epoch_ms.is_multiple_of(slot_ms) {
        bail!(
            "--reward-epoch-secs must be at least 60 and a whole number of {slot_ms} ms slots, not {}",
            shape.reward_epoch_secs
        );
    }
    // The channel's consortium id: this chain lets it pay consumer rewards
    // from the DApp pool (its anchor keys are registered once peers run).
    let block = qcss_proto::common::Block::decode(
        std::fs::read(dir.join("genesis.block"))
            .context("the channel's genesis block")?
            .as_slice(),
    )
    .context("the channel's genesis block does not decode")?;
    let header = block
        .header
        .as_ref()
        .ok_or_else(|| anyhow!("the channel's genesis block has no header"))?;
    let consortium = qcss_anchor::statement::consortium_id(
        &info.channel,
        &Hash32(qcss_proto::hash::block_header_hash(header)),
    );
    let home = dir.join("chain");
    if home.join("genesis.json").exists() {
        bail!(
            "{} holds a chain genesis that network.json does not list: remove {} to start a new chain",
            home.display(),
            home.display()
        );
    }
    let w = write_genesis(
        &GenesisArgs {
            out: home.clone(),
            name: "qcss-local".into(),
            slot_ms,
            epoch_rounds: 650,
            // Slot 0 a few seconds from now: the nodes are up by then.
            start_in: 3,
            reward_consortia: vec![consortium.to_hex()],
            reward_epoch_slots: Some(epoch_ms / slot_ms),
            reward_lock_slots: shape.reward_lock_slots,
            withdraw_interval_slots: shape.withdraw_interval_slots,
            reward_part_entries: shape.reward_part_entries,
            // Final about a slot after production (the default); anchor
            // proofs show it with a certificate of votes (dpos/README.md).
            finality_votes: true,
        },
        31,
    )?;
    let mut out = Vec::new();
    for i in 0..nodes {
        let org = &info.orgs[i % info.orgs.len()];
        out.push(ChainNodeInfo {
            name: format!("chain{}", i + 1),
            p2p: addr(&org.host)?,
            api: addr(&org.host)?,
            ops: addr(&org.host)?,
            producers: 0,
            org: org.name.clone(),
        });
    }
    // Each node's TLS identity made now (in its data directory, where
    // `chain start` would make it) so that every peer can be pinned.
    let mut pins = Vec::new();
    for n in &out {
        let data = home.join(&n.name);
        std::fs::create_dir_all(&data)?;
        let id = qcss_dpos::p2p::TlsIdentity::load_or_create(&data)
            .map_err(|e| anyhow::anyhow!("TLS identity of {}: {e}", n.name))?;
        pins.push(id.cert_sha256());
    }
    // Producer keys dealt round-robin: node k holds keys k, k+n, k+2n, …
    for (i, n) in out.clone().iter().enumerate() {
        let keys: Vec<String> = w
            .producer_keys
            .iter()
            .enumerate()
            .filter(|(j, _)| j % nodes == i)
            .map(|(_, k)| format!("\"{}\"", k.strip_prefix(&home).unwrap_or(k).display()))
            .collect();
        out[i].producers = keys.len();
        let peers: Vec<String> = out
            .iter()
            .zip(&pins)
            .filter(|(m, _)| m.name != n.name)
            .map(|(m, pin)| format!("{{ addr = \"{}\", cert_sha256 = \"{pin}\" }}", m.p2p))
            .collect();
        let toml = format!(
            "# A public-chain node (docs/chain.md). Paths are relative to this file.\n\
             genesis = \"genesis.json\"\n\
             data_dir = \"{name}\"\n\
             listen = \"{p2p}\"\n\
             api = \"{api}\"\n\
             ops = \"{ops}\"\n\
             # Peers over TLS, pinned to the certificates in their data directories.\n\
             peers = [{peers}]\n\
             producer_keys = [{keys}]\n\
             # [p2p] limits (max_links, max_links_per_ip, msgs_per_sec, msg_burst,\n\
             # bytes_per_sec, byte_burst, ban_secs): defaults in docs/chain.md.\n",
            name = n.name,
            p2p = n.p2p,
            api = n.api,
            ops = n.ops,
            peers = peers.join(", "),
            keys = keys.join(", "),
        );
        // Read back as `chain start` will: a format slip fails here, not
        // in three node logs.
        let cfg: crate::chain::NodeConfig = toml::from_str(&toml)?;
        for peer in &cfg.peers {
            peer.peer()?;
        }
        std::fs::write(home.join(format!("{}.toml", n.name)), toml)?;
    }
    p.step(&format!(
        "public chain {}: genesis and {} node configurations in chain/ (31 producers, {} ms slots)",
        &w.genesis.chain_id().to_hex()[..16],
        nodes,
        slot_ms
    ));
    Ok(ChainInfo {
        chain_id: w.genesis.chain_id().to_hex(),
        nodes: out,
        demo: None,
        anchor: None,
        genesis_time_ms: w.genesis.genesis_time_ms,
        reward_epoch_secs: shape.reward_epoch_secs,
        reward_part_entries: w.genesis.params.rewards.max_entries,
    })
}

/// Starts the chain nodes not running and waits until each is healthy.
pub(crate) fn start(
    dir: &Path,
    info: &NetworkInfo,
    chain: &ChainInfo,
    p: &Progress,
    pids: &mut Pids,
) -> Result<()> {
    for n in &chain.nodes {
        let cfg = format!("chain/{}.toml", n.name);
        let prefix = info
            .orgs
            .iter()
            .find(|o| o.name == n.org)
            .map(|o| exec_prefix(info.exec_prefix.as_deref(), o))
            .unwrap_or_default();
        spawn(
            dir,
            &n.name,
            &prefix,
            &["chain", "start", "--config", &cfg],
            pids,
        )?;
    }
    for n in &chain.nodes {
        // Healthy = producing, finality keeping up, peers connected; a
        // resumed chain first produces through the slots it slept.
        wait(dir, &n.name, Duration::from_secs(60), || {
            matches!(http_get(&n.ops, "/healthz"), Some((200, _)))
        })?;
    }
    p.step(&format!(
        "{} public-chain nodes up, producing and finalizing",
        chain.nodes.len()
    ));
    Ok(())
}

/// The demo: the marketing bucket funds a consumer wallet with 1,000 QCSS,
/// the consumer burns 5.
pub(crate) fn demo(dir: &Path, chain: &ChainInfo) -> Result<ChainDemo> {
    let node = &chain.nodes[0].api;
    let marketing = read_key(&dir.join("chain/keys/marketing.json"))?;
    let consumer_path = dir.join("chain/keys/consumer.json");
    let consumer = crate::chain::read_or_new_key(&consumer_path)?;
    submit(
        node,
        &marketing,
        TxKind::Transfer {
            to: consumer.address(),
            amount: 1_000 * qcss_dpos::params::COIN,
        },
        None,
        Some(&chain.chain_id),
        true,
    )?;
    submit(
        node,
        &consumer,
        TxKind::Burn {
            amount: 5 * qcss_dpos::params::COIN,
        },
        None,
        Some(&chain.chain_id),
        true,
    )?;
    Ok(ChainDemo {
        consumer_key: "chain/keys/consumer.json".into(),
        consumer: consumer.address().to_string(),
    })
}

/// Lines for `network status`; false if a node is down or unhealthy.
pub(crate) fn status(chain: &ChainInfo, running: impl Fn(&str) -> bool) -> bool {
    let mut healthy = true;
    for n in &chain.nodes {
        let h = http_get(&n.ops, "/healthz");
        let ok = running(&n.name) && matches!(h, Some((200, _)));
        healthy &= ok;
        let scrape = Scrape::of(&n.ops);
        let m = |name| scrape.as_ref().and_then(|s| s.get(name)).unwrap_or(0.0);
        println!(
            "{:<16} {}  {}  head {}  irreversible {}  peers {}  producers {}{}",
            n.name,
            if ok { "up  " } else { "DOWN" },
            n.api,
            m("qcss_chain_head_height"),
            m("qcss_chain_irreversible_height"),
            m("qcss_chain_peer_links"),
            n.producers,
            h.filter(|(s, _)| *s != 200)
                .map(|(_, b)| format!("  {b}"))
                .unwrap_or_default()
        );
    }
    if let Some(a) = &chain.anchor {
        // The bridge has no port: its process, and the chain's record of
        // the consortium's last anchor.
        let up = running("anchor");
        healthy &= up;
        let last = chain.nodes.first().and_then(|n| {
            crate::wallet::get_json::<qcss_dpos::api::ConsortiumView>(
                &n.api,
                &format!("/v1/consortium/{}", a.consortium_id),
            )
            .ok()
        });
        let what = match last.and_then(|v| v.consortium.last) {
            Some(l) => format!(
                "last anchor seq {}: consortium blocks 0…{} in public block {}",
                l.seq,
                l.mmr_size.saturating_sub(1),
                l.height
            ),
            None => "no anchor yet".into(),
        };
        println!(
            "{:<16} {}  consortium {}…  {what}",
            "anchor",
            if up { "up  " } else { "DOWN" },
            &a.consortium_id[..16.min(a.consortium_id.len())]
        );
    }
    healthy
}

/// Points each peer's `[anchor]` at the first chain node's API, so its verify
/// page and metrics show how far the ledger is anchored (takes effect when
/// the peer next starts).
pub(crate) fn link_peers(dir: &Path, info: &NetworkInfo, chain: &ChainInfo) -> Result<()> {
    let Some(api) = chain.nodes.first().map(|n| &n.api) else {
        return Ok(());
    };
    for o in &info.orgs {
        let path = dir.join(format!("peer-{}.toml", o.name));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // `[anchor]` is the file's last table (network up writes it so).
        if text
            .trim_end()
            .ends_with(&format!("key = \"orgs/{}/anchor-key.json\"", o.name))
            && !text.contains("chain_api")
        {
            std::fs::write(
                &path,
                format!("{}\nchain_api = \"{api}\"\n", text.trim_end()),
            )?;
        }
    }
    Ok(())
}

/// The bridge's cadence in a local network: every 10 blocks or 15 s.
const LOCAL_ANCHOR_EVERY: (u64, u64) = (10, 15);

/// Registers the orgs' anchor keys on the public chain (paid by a bridge
/// wallet the foundation bucket funds) and writes `anchor.toml`. `None` for
/// a network whose peers have no anchor keys (created before anchoring).
pub(crate) fn anchor_setup(
    dir: &Path,
    orgs: &[crate::network::OrgInfo],
    channel: &str,
    chain: &ChainInfo,
    p: &Progress,
) -> Result<Option<AnchorInfo>> {
    let key_files: Vec<std::path::PathBuf> = orgs
        .iter()
        .map(|o| dir.join(format!("orgs/{}/anchor-key.json", o.name)))
        .collect();
    if key_files.iter().any(|k| !k.exists()) || orgs.iter().any(|o| o.web.is_empty()) {
        p.step("peers have no anchor keys (a network from before anchoring): no anchoring bridge");
        return Ok(None);
    }
    // The consortium id, from the first peer (its web server is up).
    let mut status: Option<crate::anchor::PeerAnchorStatus> = None;
    wait(dir, "anchor setup", Duration::from_secs(30), || {
        status = crate::wallet::get_json(&orgs[0].web, "/api/anchor/status").ok();
        status.is_some()
    })?;
    let consortium = status
        .map(|s| s.consortium_id)
        .ok_or_else(|| anyhow::anyhow!("no anchor status"))?;
    let node = &chain.nodes[0].api;
    let bridge_path = dir.join("chain/keys/bridge.json");
    let bridge = crate::chain::read_or_new_key(&bridge_path)?;
    let registered =
        http_get(node, &format!("/v1/consortium/{consortium}")).is_some_and(|(s, _)| s == 200);
    if !registered {
        let foundation = read_key(&dir.join("chain/keys/foundation.json"))?;
        submit(
            node,
            &foundation,
            TxKind::Transfer {
                to: bridge.address(),
                amount: 100_000 * qcss_dpos::params::COIN,
            },
            None,
            Some(&chain.chain_id),
            true,
        )?;
        let keys = key_files
            .iter()
            .map(|k| read_key(k))
            .collect::<Result<Vec<_>>>()?;
        let quorum = qcss_anchor::statement::majority(keys.len());
        crate::anchor::register_keys(node, consortium, &keys, quorum, &bridge)?;
        p.step(&format!(
            "consortium {}… registered on the public chain: {} anchor keys, quorum {quorum}",
            &consortium.to_hex()[..16],
            keys.len()
        ));
    }
    let peers: Vec<String> = orgs.iter().map(|o| format!("\"{}\"", o.web)).collect();
    let nodes: Vec<String> = chain
        .nodes
        .iter()
        .map(|n| format!("\"{}\"", n.api))
        .collect();
    let toml = format!(
        "# The anchoring bridge (docs/anchor.md). Paths are relative to this file.\n\
         peers = [{}]\n\
         chain_nodes = [{}]\n\
         key = \"chain/keys/bridge.json\"\n\
         every_blocks = {}\n\
         every_secs = {}\n\
         receipts = \"anchor-receipts.jsonl\"\n\
         \n\
         # Receipts are also recorded on the ledger (system chaincode _anchor)\n\
         # through this Gateway, as this identity; and ended consumer reward\n\
         # epochs are computed there (rewards_epoch) before they are paid.\n\
         [gateway]\n\
         peer = \"{}\"\n\
         identity = \"orgs/{}/user1\"\n\
         channel = \"{}\"\n",
        peers.join(", "),
        nodes.join(", "),
        LOCAL_ANCHOR_EVERY.0,
        LOCAL_ANCHOR_EVERY.1,
        orgs[0].peer,
        orgs[0].name,
        channel,
    );
    std::fs::write(dir.join("anchor.toml"), toml)?;
    Ok(Some(AnchorInfo {
        consortium_id: consortium.to_hex(),
        config: "anchor.toml".into(),
    }))
}

/// Starts the bridge (process `anchor`) if it is not running.
pub(crate) fn anchor_start(
    dir: &Path,
    info: &NetworkInfo,
    p: &Progress,
    pids: &mut Pids,
) -> Result<()> {
    let prefix = exec_prefix(info.exec_prefix.as_deref(), &info.orgs[0]);
    spawn(
        dir,
        "anchor",
        &prefix,
        &["anchor", "start", "--config", "anchor.toml"],
        pids,
    )?;
    p.step(&format!(
        "anchoring bridge running: every {} blocks or {} s (anchor.toml, receipts in anchor-receipts.jsonl)",
        LOCAL_ANCHOR_EVERY.0, LOCAL_ANCHOR_EVERY.1
    ));
    Ok(())
}
