//! `qcss anchor …`: the anchoring bridge between the consortium and the
//! public QCSS chain (docs/anchor.md).
//!
//! - `register`: registers the consortium's anchor keys on the public chain
//!   when every org's key file is at hand; `keyset propose|sign|submit`
//!   (`anchor_keys.rs`) registers and rotates them org by org.
//! - `start`: the bridge loop. Every `every_blocks` blocks or `every_secs`
//!   seconds (whichever first, nothing when idle) it asks each org's peer
//!   to sign the statement for the blocks committed so far, submits the
//!   anchor with a quorum of signatures, waits until it is irreversible and
//!   appends a receipt. The public chain is the only state that matters:
//!   the next seq, previous size and root are read from it on every round,
//!   so a bridge killed at any step resumes without a gap, and it cannot
//!   duplicate an anchor (the chain accepts each seq once).
//! - `checkpoint`, `prove`, `verify`, `audit`: `anchor_proof.rs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use qcss_anchor::Hash32;
use qcss_anchor::mmr::ConsistencyProof;
use qcss_anchor::statement::{MMR, Statement};
use qcss_dpos::address::{Keypair, Sig};
use qcss_dpos::api::{ConsortiumView, StatusView};
use qcss_dpos::tx::{AnchorTx, TxKind};

use crate::chain::read_key;
use crate::wallet::{get_json, submit};

/// `qcss anchor …`
#[derive(Debug, Subcommand)]
pub(crate) enum AnchorCommand {
    /// Register the consortium's anchor keys on the public chain, every key file at hand.
    Register(RegisterArgs),
    /// Register or rotate the anchor keys org by org: propose, sign, submit.
    #[command(subcommand)]
    Keyset(crate::anchor_keys::KeysetCommand),
    /// Run the bridge loop.
    Start(StartArgs),
    /// Write the public chain's producer set as a checkpoint file for offline verification.
    Checkpoint(crate::anchor_proof::CheckpointArgs),
    /// Write the self-contained anchoring proof of a consortium transaction.
    Prove(crate::anchor_proof::ProveArgs),
    /// Check a proof file offline against a public-chain checkpoint.
    Verify(crate::anchor_proof::VerifyArgs),
    /// Walk every anchor on the public chain, re-check each, and compare with a peer.
    Audit(crate::anchor_proof::AuditArgs),
}

/// `qcss anchor register`
#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// The consortium id (64 hex; `GET /api/anchor/status` on a peer gives it).
    #[arg(long)]
    pub consortium: String,
    /// Each org's anchor key file, in order (all of them sign).
    #[arg(long = "org-key", required = true)]
    pub org_keys: Vec<PathBuf>,
    /// Signatures an anchor needs; default: a majority of the keys.
    #[arg(long)]
    pub quorum: Option<u16>,
    /// The wallet key that pays the fee.
    #[arg(long)]
    pub payer: PathBuf,
    /// A public-chain node's API address (host:port).
    #[arg(long)]
    pub node: String,
}

/// `qcss anchor start`
#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// The bridge's TOML configuration (docs/anchor.md).
    #[arg(long)]
    pub config: PathBuf,
    /// Anchor once (or do nothing if nothing is new) and exit.
    #[arg(long)]
    pub once: bool,
}

/// The bridge's configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BridgeConfig {
    /// Each org's peer web address (host:port), whose `/api/anchor/sign` signs.
    pub peers: Vec<String>,
    /// Public-chain node APIs (host:port); the first that answers is used.
    pub chain_nodes: Vec<String>,
    /// Wallet key file that pays the anchor fees.
    pub key: PathBuf,
    /// Anchor after this many new blocks…
    #[serde(default = "default_every_blocks")]
    pub every_blocks: u64,
    /// …or this many seconds after the last anchor, whichever comes first.
    #[serde(default = "default_every_secs")]
    pub every_secs: u64,
    /// Receipts, one JSON object per line (appended; relative to the file).
    #[serde(default = "default_receipts")]
    pub receipts: PathBuf,
    /// Where receipts are also recorded on the consortium ledger (system
    /// chaincode `_anchor`); none: only in the file.
    #[serde(default)]
    pub gateway: Option<ReceiptGateway>,
}

/// The Gateway the bridge records ledger receipts through.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReceiptGateway {
    /// The peer's gRPC address.
    pub peer: String,
    /// An identity folder as `qcss network up` writes them (`msp_id`,
    /// `cert.pem`, `key.pem`, `tls-ca.pem`, `tls-cert.pem`, `tls-key.pem`);
    /// relative to the file.
    pub identity: PathBuf,
    /// The channel.
    pub channel: String,
}

fn default_every_blocks() -> u64 {
    600
}
fn default_every_secs() -> u64 {
    600
}
fn default_receipts() -> PathBuf {
    "anchor-receipts.jsonl".into()
}

impl BridgeConfig {
    /// Reads the file; relative paths resolve against its folder.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut c: BridgeConfig =
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut paths = vec![&mut c.key, &mut c.receipts];
        if let Some(g) = c.gateway.as_mut() {
            paths.push(&mut g.identity);
        }
        for p in paths {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if c.peers.is_empty() || c.chain_nodes.is_empty() {
            bail!(
                "{}: name at least one peer and one chain node",
                path.display()
            );
        }
        if c.every_blocks == 0 || c.every_secs == 0 {
            bail!(
                "{}: every_blocks and every_secs must be positive",
                path.display()
            );
        }
        Ok(c)
    }
}

/// One anchor, as the bridge records it once irreversible.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Receipt {
    /// Anchor seq.
    pub seq: u64,
    /// Consortium blocks covered.
    pub mmr_size: u64,
    /// Their root.
    pub mmr_root: Hash32,
    /// Public chain id.
    pub chain_id: Hash32,
    /// Public block height.
    pub public_height: u64,
    /// The anchor transaction's id.
    pub tx_id: Hash32,
    /// Unix ms when the bridge saw it irreversible.
    pub irreversible_at_ms: u64,
}

/// Runs `qcss anchor …`.
pub(crate) fn run(cmd: AnchorCommand) -> Result<()> {
    match cmd {
        AnchorCommand::Register(a) => register(&a),
        AnchorCommand::Keyset(c) => crate::anchor_keys::run(c),
        AnchorCommand::Start(a) => {
            let cfg = BridgeConfig::load(&a.config)?;
            let mut bridge = Bridge::new(cfg)?;
            if a.once {
                let (_, out) = bridge.round(true)?;
                println!("{out}");
                // Rewards are a step of their own: anchoring succeeded.
                match bridge.rewards_round() {
                    Ok(Some(paid)) => println!("{paid}"),
                    Ok(None) => {}
                    Err(e) => eprintln!("rewards: {e:#}"),
                }
                return Ok(());
            }
            bridge.run_forever()
        }
        AnchorCommand::Checkpoint(a) => crate::anchor_proof::checkpoint(&a),
        AnchorCommand::Prove(a) => crate::anchor_proof::prove(&a),
        AnchorCommand::Verify(a) => crate::anchor_proof::verify_cmd(&a),
        AnchorCommand::Audit(a) => crate::anchor_proof::audit(&a),
    }
}

/// Registers `keys` (each signs: proof of possession) with `quorum`: a
/// registration proposal signed by every key at once
/// ([`crate::anchor_keys`]).
pub(crate) fn register_keys(
    node: &str,
    consortium: Hash32,
    keys: &[Keypair],
    quorum: u16,
    payer: &Keypair,
) -> Result<()> {
    crate::anchor_keys::register_all(node, consortium, keys, quorum, payer)
}

fn register(a: &RegisterArgs) -> Result<()> {
    let consortium: Hash32 = a
        .consortium
        .trim()
        .parse()
        .map_err(|_| anyhow!("--consortium must be 64 hex digits"))?;
    let keys = a
        .org_keys
        .iter()
        .map(|p| read_key(p))
        .collect::<Result<Vec<_>>>()?;
    let quorum = a
        .quorum
        .unwrap_or_else(|| qcss_anchor::statement::majority(keys.len()));
    register_keys(&a.node, consortium, &keys, quorum, &read_key(&a.payer)?)?;
    println!(
        "consortium {consortium} registered: {} keys, quorum {quorum}",
        keys.len()
    );
    Ok(())
}

/// A peer's signature (key and signature in hex, as the peers' `/api/anchor/sign`
/// and `/api/rewards/sign` answer) as the chain takes it: the key's index
/// among the registered `keys`, and the signature. `None`: the key is not
/// registered.
pub(crate) fn registered_sig(
    keys: &[qcss_dpos::address::Address],
    key: &str,
    sig: &str,
) -> Result<Option<(u16, Sig)>> {
    let Some(index) = keys.iter().position(|k| hex::encode(k.0) == key) else {
        return Ok(None);
    };
    let mut raw = [0u8; 64];
    hex::decode_to_slice(sig, &mut raw).map_err(|_| anyhow!("bad signature hex"))?;
    Ok(Some((index as u16, Sig(raw))))
}

/// What one peer's `/api/anchor/status` says.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PeerAnchorStatus {
    pub(crate) consortium_id: Hash32,
    pub(crate) mmr_size: u64,
}

/// What one peer's `/api/anchor/sign` answers.
#[derive(Debug, Clone, Deserialize)]
struct PeerSignature {
    statement: Statement,
    key: String,
    sig: String,
}

/// The bridge's state between rounds (nothing that matters for safety:
/// the chain holds that).
pub(crate) struct Bridge {
    cfg: BridgeConfig,
    key: Keypair,
    /// When the last anchor was submitted (or the bridge started).
    last_anchor: Instant,
    /// The newest seq whose receipt is known to be on the ledger.
    recorded: Option<u64>,
    /// The last reward step's failure, logged once until it changes.
    reward_error: Option<String>,
    /// When the reward step last ran.
    reward_checked: Instant,
    /// When the index records were last folded.
    index_folded: Instant,
}

/// How often the bridge folds the QCSS index records' old pending changes
/// (the contract folds only changes older than 5 minutes).
const INDEX_FOLD_EVERY: Duration = Duration::from_secs(60);

/// How often the reward step looks for an epoch to pay (epochs are a day
/// long in production, a minute at the shortest).
const REWARD_CHECK_EVERY: Duration = Duration::from_secs(5);

impl Bridge {
    pub(crate) fn new(cfg: BridgeConfig) -> Result<Self> {
        let key = read_key(&cfg.key)?;
        Ok(Self {
            cfg,
            key,
            last_anchor: Instant::now(),
            recorded: None,
            reward_error: None,
            reward_checked: Instant::now()
                .checked_sub(REWARD_CHECK_EVERY)
                .unwrap_or_else(Instant::now),
            index_folded: Instant::now(),
        })
    }

    fn run_forever(&mut self) -> Result<()> {
        tracing::info!(
            peers = self.cfg.peers.len(),
            every_blocks = self.cfg.every_blocks,
            every_secs = self.cfg.every_secs,
            "anchoring bridge started"
        );
        loop {
            match self.round(false) {
                Ok((true, msg)) => tracing::info!("{msg}"),
                Ok((false, msg)) => tracing::debug!("{msg}"),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "anchor round failed; retrying")
                }
            }
            if self.index_folded.elapsed() >= INDEX_FOLD_EVERY {
                self.index_folded = Instant::now();
                match crate::anchor_rewards::fold_index(&self.cfg) {
                    Ok(Some(msg)) => tracing::info!("{msg}"),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "index fold failed; retrying")
                    }
                }
            }
            let due = self.reward_checked.elapsed() >= REWARD_CHECK_EVERY;
            match if due { self.rewards_round() } else { Ok(None) } {
                Ok(Some(msg)) => {
                    self.reward_error = None;
                    tracing::info!("{msg}")
                }
                Ok(None) => {}
                Err(e) => {
                    // Said once per reason: before UCES is configured every
                    // round would say the same.
                    let e = format!("{e:#}");
                    if self.reward_error.as_ref() != Some(&e) {
                        tracing::warn!(error = %e, "reward round failed; retrying");
                        self.reward_error = Some(e);
                    }
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// The reward step ([`crate::anchor_rewards`]).
    pub(crate) fn rewards_round(&mut self) -> Result<Option<String>> {
        self.reward_checked = Instant::now();
        let (node, st) = self.chain()?;
        crate::anchor_rewards::pay_next(&self.cfg, &self.key, &node, &st)
    }

    /// The first chain node that answers, with its status.
    fn chain(&self) -> Result<(String, StatusView)> {
        let mut last = None;
        for n in &self.cfg.chain_nodes {
            match get_json::<StatusView>(n, "/v1/status") {
                Ok(s) => return Ok((n.clone(), s)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("no chain node configured")))
    }

    /// One round: anchor if due (always when `force`), then wait until the
    /// anchor is irreversible. Returns whether it anchored, and what
    /// happened, for the log.
    pub(crate) fn round(&mut self, force: bool) -> Result<(bool, String)> {
        let statuses: Vec<(String, PeerAnchorStatus)> = self
            .cfg
            .peers
            .iter()
            .filter_map(|p| match get_json::<PeerAnchorStatus>(p, "/api/anchor/status") {
                Ok(s) => Some((p.clone(), s)),
                Err(e) => {
                    tracing::warn!(peer = %p, error = %format!("{e:#}"), "peer does not answer");
                    None
                }
            })
            .collect();
        let Some((_, first)) = statuses.first() else {
            bail!("no peer answers /api/anchor/status");
        };
        let consortium = first.consortium_id;
        if let Some((p, s)) = statuses.iter().find(|(_, s)| s.consortium_id != consortium) {
            bail!(
                "peer {p} is on consortium {}, others on {consortium}: configure peers of one channel",
                s.consortium_id
            );
        }
        let (node, st) = self.chain()?;
        let view: ConsortiumView = get_json(&node, &format!("/v1/consortium/{consortium}"))
            .with_context(|| format!("consortium {consortium} on the public chain"))?;
        let c = &view.consortium;
        // The newest irreversible anchor's receipt on the ledger (also after
        // a crash between irreversibility and the receipt). Best-effort: the
        // peers endorse it only once they have seen the anchor irreversible
        // themselves, so a refusal is retried at the next round.
        if let (Some(g), Some(l)) = (&self.cfg.gateway, &c.last)
            && l.height <= st.lib_height
            && self.recorded != Some(l.seq)
        {
            match record_receipt(g, l) {
                Ok(said) => {
                    self.recorded = Some(l.seq);
                    tracing::info!("{said}");
                }
                Err(e) => tracing::warn!(
                    seq = l.seq,
                    error = %format!("{e:#}"),
                    "receipt not recorded on the ledger yet; retrying next round"
                ),
            }
        }
        let quorum = usize::from(c.quorum);
        let (seq, prev_size, prev_root, prev_height) = match &c.last {
            None => (0, 0, MMR.empty_root(), 0),
            Some(l) => (l.seq + 1, l.mmr_size, l.mmr_root, l.height),
        };
        // The largest size a quorum of peers has indexed.
        let mut sizes: Vec<u64> = statuses.iter().map(|(_, s)| s.mmr_size).collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&size) = sizes.get(quorum.saturating_sub(1)) else {
            bail!(
                "only {} of the {quorum} peers a quorum needs answer",
                sizes.len()
            );
        };
        if size <= prev_size {
            return Ok((
                false,
                format!(
                    "nothing new: {prev_size} blocks anchored (seq {})",
                    seq as i64 - 1
                ),
            ));
        }
        // A receipt is a block too: anchoring blocks that hold nothing but
        // receipts would make the next receipt, and so on forever.
        if self.cfg.gateway.is_some()
            && size - prev_size <= RECEIPT_ONLY_SCAN
            && only_receipts(&statuses[0].0, prev_size, size)
        {
            return Ok((
                false,
                format!(
                    "nothing new: {prev_size} blocks anchored (seq {}), then only anchor receipts",
                    seq as i64 - 1
                ),
            ));
        }
        let due = size - prev_size >= self.cfg.every_blocks
            || self.last_anchor.elapsed() >= Duration::from_secs(self.cfg.every_secs);
        if !force && !due {
            return Ok((
                false,
                format!(
                    "{} new blocks; next anchor at {} new or {} s",
                    size - prev_size,
                    self.cfg.every_blocks,
                    self.cfg
                        .every_secs
                        .saturating_sub(self.last_anchor.elapsed().as_secs())
                ),
            ));
        }
        // Signatures: each peer computes the statement from its own ledger.
        let mut agreed: Option<Statement> = None;
        let mut sigs: Vec<(u16, Sig)> = Vec::new();
        for (p, _) in &statuses {
            let path = format!("/api/anchor/sign?seq={seq}&prev_size={prev_size}&size={size}");
            let s: PeerSignature = match get_json(p, &path) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(peer = %p, error = %format!("{e:#}"), "peer did not sign");
                    continue;
                }
            };
            let statement = agreed.get_or_insert_with(|| s.statement.clone());
            if s.statement != *statement {
                tracing::error!(
                    peer = %p,
                    root = %s.statement.mmr_root,
                    others = %statement.mmr_root,
                    size,
                    "peer computes another history for these blocks; its signature is not used"
                );
                continue;
            }
            let Some(sig) = registered_sig(&c.keys, &s.key, &s.sig).with_context(|| p.clone())?
            else {
                tracing::warn!(peer = %p, key = %s.key, "peer's anchor key is not registered");
                continue;
            };
            sigs.push(sig);
        }
        let Some(statement) = agreed else {
            bail!("no peer signed");
        };
        if statement.prev_root != prev_root {
            bail!(
                "the peers' history at {prev_size} blocks has root {}, the public chain anchored {prev_root}: the consortium's history was rewritten",
                statement.prev_root
            );
        }
        if sigs.len() < quorum {
            bail!("{} of {} needed signatures", sigs.len(), quorum);
        }
        failpoint("after-sign");
        let consistency: ConsistencyProof = statuses
            .iter()
            .find_map(|(p, _)| {
                get_json(
                    p,
                    &format!("/api/anchor/consistency?from={prev_size}&to={size}"),
                )
                .ok()
            })
            .ok_or_else(|| anyhow!("no peer gave the consistency proof"))?;
        consistency
            .verify(&MMR, &prev_root, &statement.mmr_root)
            .context("the peers' consistency proof does not hold")?;
        let tx = AnchorTx {
            statement: statement.clone(),
            consistency,
            sigs,
            prev_anchor_height: prev_height,
        };
        let submitted = submit(
            &node,
            &self.key,
            TxKind::Anchor(Box::new(tx)),
            None,
            Some(&st.chain_id.to_hex()),
            true,
        )?;
        self.last_anchor = Instant::now();
        failpoint("after-submit");
        let height = self.wait_irreversible(consortium, seq, submitted.id)?;
        let receipt = Receipt {
            seq,
            mmr_size: size,
            mmr_root: statement.mmr_root,
            chain_id: st.chain_id,
            public_height: height,
            tx_id: submitted.id,
            irreversible_at_ms: crate::chain::now_ms(),
        };
        append_receipt(&self.cfg.receipts, &receipt)?;
        failpoint("after-receipt");
        Ok((
            true,
            format!(
                "anchored seq {seq}: consortium blocks 0…{} (root {}) in public block {height}, irreversible",
                size - 1,
                statement.mmr_root
            ),
        ))
    }

    /// Waits until anchor `seq` is in an irreversible block; fails (and the
    /// next round resubmits) if it was orphaned or never landed.
    fn wait_irreversible(&self, consortium: Hash32, seq: u64, tx_id: Hash32) -> Result<u64> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let (node, st) = self.chain()?;
            let view: ConsortiumView = get_json(&node, &format!("/v1/consortium/{consortium}"))?;
            match view.consortium.last {
                Some(l) if l.seq == seq && l.tx_id == tx_id => {
                    if st.lib_height >= l.height {
                        return Ok(l.height);
                    }
                }
                Some(l) if l.seq >= seq => {
                    bail!(
                        "anchor seq {seq} landed from another transaction ({}); not ours",
                        l.tx_id
                    )
                }
                _ => bail!(
                    "anchor seq {seq} is no longer on the best chain (orphaned); resubmitting"
                ),
            }
            if Instant::now() > deadline {
                bail!("anchor seq {seq} not irreversible after 10 minutes");
            }
            std::thread::sleep(Duration::from_millis((st.slot_ms / 2).clamp(100, 5_000)));
        }
    }
}

/// Most new blocks the bridge reads to tell whether they are only receipts
/// (one receipt per anchor: a handful at most).
const RECEIPT_ONLY_SCAN: u64 = 8;

/// Whether blocks `from … to − 1` at `peer` hold only `_anchor`
/// transactions (false when a block cannot be read: then anchor them).
fn only_receipts(peer: &str, from: u64, to: u64) -> bool {
    (from..to).all(|n| {
        get_json::<serde_json::Value>(peer, &format!("/api/block/{n}")).is_ok_and(|b| {
            b["transactions"].as_array().is_some_and(|txs| {
                !txs.is_empty()
                    && txs.iter().all(|t| {
                        t["chaincode"].as_str() == Some(qcss_peer::lifecycle::ANCHOR_NAMESPACE)
                    })
            })
        })
    })
}

/// Records anchor `l`'s receipt on the consortium ledger through `g`,
/// unless it is there already.
fn record_receipt(g: &ReceiptGateway, l: &qcss_dpos::state::AnchorRecord) -> Result<String> {
    let receipt = qcss_peer::node::AnchorReceipt {
        seq: l.seq,
        mmr_size: l.mmr_size,
        mmr_root: l.mmr_root,
        public_height: l.height,
        public_tx_id: l.tx_id,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut client = crate::peer::gateway_at(&g.peer, &g.identity, &g.channel).await?;
        let ns = qcss_peer::lifecycle::ANCHOR_NAMESPACE;
        let seq = l.seq.to_string();
        match client.evaluate(ns, "GetReceipt", &[seq.as_bytes()]).await {
            Ok(_) => return Ok(format!("receipt of anchor seq {} is on the ledger", l.seq)),
            Err(e) if e.to_string().contains("no receipt for anchor seq") => {}
            Err(e) => bail!("reading the ledger's receipt: {e}"),
        }
        let arg = serde_json::to_vec(&receipt)?;
        let c = client
            .submit(ns, "RecordReceipt", &[&arg])
            .await
            .map_err(|e| anyhow!("RecordReceipt: {e}"))?;
        if c.code != qcss_proto::protos::TxValidationCode::Valid {
            bail!(
                "receipt transaction {} is {}",
                c.tx_id,
                c.code.as_str_name()
            );
        }
        Ok(format!(
            "receipt of anchor seq {} recorded on the ledger in block {} (tx {})",
            l.seq, c.block, c.tx_id
        ))
    })
}

/// `QCSS_ANCHOR_FAILPOINT=after-sign|after-submit|after-receipt` makes the
/// bridge exit at that step, as a crash would (the crash-safety test kills
/// it at each step this way; nothing else reads the variable).
fn failpoint(step: &str) {
    if std::env::var("QCSS_ANCHOR_FAILPOINT").is_ok_and(|v| v == step) {
        eprintln!("failpoint {step}: exiting");
        std::process::exit(86);
    }
}

fn append_receipt(path: &Path, r: &Receipt) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{}", serde_json::to_string(r)?)?;
    f.sync_data()?;
    Ok(())
}
