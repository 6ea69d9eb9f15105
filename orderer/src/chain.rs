//! The orderer's chain: blocks and the state Raft's state machine persists
//! with them — all in one sled database, every applied batch one
//! transaction — and, in memory, the tx ids that could still be ordered
//! again ([`crate::recent`]).
//!
//! Design (documented in ARCHITECTURE.md): the leader cuts *batches*; Raft
//! replicates the batch; every node turns each committed batch into the
//! block deterministically (number = height, previous hash = last block's
//! hash, data = the batch minus envelopes dated outside the time window of
//! the batch's reference time or whose tx id is already ordered).
//! Header and data are therefore byte-identical on every node. Each node
//! signs the header it built (SIGNATURES metadata); the Raft term and index
//! ride in the same metadata and are identical everywhere too.
//!
//! A batch of one `CONFIG_UPDATE` envelope is checked against the
//! configuration in force ([`crate::config_update::verify_update`]); if it
//! passes it becomes a config block (one deterministic CONFIG envelope), the
//! stored CONFIG and LAST_CONFIG_BLOCK change in the same transaction, and
//! [`Chain::channel`] switches to the new configuration; if not, nothing is
//! written but `last_applied`, identically on every node.

use std::sync::{Arc, Mutex, RwLock};

use prost::Message;
use qcss_anchor::Hash32;
use qcss_anchor::mmr::Peaks;
use qcss_anchor::statement::{MMR, block_leaf};
use qcss_network::SigningIdentity;
use qcss_network::block::{
    self as blk, block_hash, config_envelope, new_block, orderer_metadata, sign_block,
};
use qcss_network::channel::{Channel, ChannelConfig};
use qcss_network::envelope;
use qcss_proto::common::{Block, ChannelHeader, Envelope, HeaderType, Payload};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use tokio::sync::watch;

use crate::config_update::{ConfigUpdate, envelope_time, verify_update};
use crate::error::OrdererError;
use crate::raft::types::{Batch, BatchOutcome, NodeId, Rejected};
use crate::recent::RecentTxIds;

/// Where a batch sits in the Raft log, and the time its leader stamped.
#[derive(Debug, Clone, Copy)]
struct RaftPos {
    term: u64,
    index: u64,
    time_ms: Option<u64>,
}

const HEIGHT: &[u8] = b"height";
const LAST_HASH: &[u8] = b"last_hash";
const LAST_APPLIED: &[u8] = b"last_applied";
const MEMBERSHIP: &[u8] = b"membership";
const CONFIG: &[u8] = b"config";
const LAST_CONFIG_BLOCK: &[u8] = b"last_config_block";
/// The reference time of the last applied batch, ms: the leader's stamp,
/// but never earlier than the one before (a new leader's clock may be
/// behind), so the time window only moves forward ([`crate::recent`]).
const BATCH_TIME: &[u8] = b"batch_time";
/// The anchoring MMR's peaks over blocks `0..height` ([`encode_peaks`]),
/// written with each block. Derived data: missing or stale (a data dir from
/// before roots were carried, or a snapshot just installed) it is rebuilt
/// from the blocks at the next apply.
const MMR_PEAKS: &[u8] = b"mmr_peaks";
/// The last snapshot built or installed (bincode of `SnapshotFile`).
pub const SNAPSHOT: &[u8] = b"snapshot";
/// The current snapshot as a reference: its Raft metadata, the chain state
/// it covers and its height (blocks `0..height` are read from the chain when
/// a follower needs it; they never change). Replaces [`SNAPSHOT`].
pub const SNAPSHOT_REF: &[u8] = b"snapshot-ref";

/// The chain store.
#[derive(Debug)]
pub struct Chain {
    db: sled::Db,
    blocks: sled::Tree,
    meta: sled::Tree,
    /// Tx ids ordered with a timestamp still inside the time window.
    recent: Mutex<RecentTxIds>,
    /// The identity blocks are signed with, and a renewed one waiting for
    /// the channel configuration to name it ([`Chain::renew_signer`]).
    signer: Mutex<Signers>,
    height_tx: watch::Sender<u64>,
    /// The live form of the stored CONFIG, swapped when a config block is
    /// applied or a snapshot installed.
    channel: RwLock<Arc<Channel>>,
    /// The configuration before the last switch (since this process
    /// started): its consenters stay admitted to Raft while they are still
    /// Raft members, so a removed leader can finish handing over.
    previous: RwLock<Option<Arc<Channel>>>,
    config_tx: watch::Sender<u64>,
}

/// This node's signing identities: the one in use, and a renewed one the
/// configuration does not name yet.
#[derive(Debug)]
struct Signers {
    current: Arc<SigningIdentity>,
    renewed: Option<Arc<SigningIdentity>>,
}

/// Everything a snapshot carries: the chain and the applied state.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SnapshotData {
    /// Block bytes, from block 0.
    pub blocks: Vec<serde_bytes::ByteBuf>,
    /// Raw `sm_meta` entries (height, last hash, last applied, membership, config).
    pub meta: Vec<(serde_bytes::ByteBuf, serde_bytes::ByteBuf)>,
}

/// `leaves (8, BE) ‖ (level (1) ‖ hash (32))*`: at most 64 peaks.
fn encode_peaks(p: &Peaks) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 33 * p.peaks.len());
    out.extend_from_slice(&p.leaves.to_be_bytes());
    for (level, h) in &p.peaks {
        out.push(*level);
        out.extend_from_slice(&h.0);
    }
    out
}

/// The inverse of [`encode_peaks`]; `None` if malformed (then rebuilt).
fn decode_peaks(b: &[u8]) -> Option<Peaks> {
    let leaves = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
    let rest = &b[8..];
    if !rest.len().is_multiple_of(33) || rest.len() / 33 > 64 {
        return None;
    }
    let peaks = rest
        .chunks_exact(33)
        .map(|c| (c[0], Hash32(c[1..].try_into().unwrap_or([0; 32]))))
        .collect::<Vec<_>>();
    // The peaks of `leaves` leaves are exactly its set bits, tallest first.
    let levels: Vec<u8> = (0..64u8).rev().filter(|l| leaves >> l & 1 == 1).collect();
    (peaks.iter().map(|p| p.0).collect::<Vec<_>>() == levels).then_some(Peaks { leaves, peaks })
}

fn u64_of(v: Option<sled::IVec>) -> u64 {
    v.and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

impl Chain {
    /// Opens the chain in `db`; on first open writes `genesis` as block 0.
    pub fn open(
        db: &sled::Db,
        genesis: &Block,
        signer: Arc<SigningIdentity>,
    ) -> Result<Self, OrdererError> {
        let blocks = db.open_tree("blocks")?;
        let meta = db.open_tree("sm_meta")?;
        // The index of every tx id ever ordered, before the in-memory set
        // replaced it; the set is rebuilt from the blocks below.
        if db.drop_tree("txids")? {
            tracing::info!("dropped the old tx-id index (replaced by the time-window set)");
        }
        if blocks.is_empty() {
            let config = blk::config_from_block(genesis)
                .map_err(|e| OrdererError::Config(format!("genesis block: {e}")))?;
            (&blocks, &meta)
                .transaction(|(b, m)| {
                    b.insert(&0u64.to_be_bytes(), genesis.encode_to_vec())?;
                    m.insert(HEIGHT, &1u64.to_be_bytes())?;
                    m.insert(LAST_HASH, &block_hash(genesis))?;
                    m.insert(CONFIG, config.to_json())?;
                    m.insert(LAST_CONFIG_BLOCK, &0u64.to_be_bytes())?;
                    Ok::<_, ConflictableTransactionError<()>>(())
                })
                .map_err(|e| OrdererError::Store(format!("writing genesis: {e:?}")))?;
            db.flush()?;
        } else {
            let ours = blocks.get(0u64.to_be_bytes())?.unwrap_or_default();
            if ours.as_ref() != genesis.encode_to_vec().as_slice() {
                return Err(OrdererError::Config(
                    "the genesis block differs from the one this data dir was created with".into(),
                ));
            }
        }
        let height = u64_of(meta.get(HEIGHT)?);
        let (height_tx, _) = watch::channel(height);
        let channel = Self::load_channel(&meta)?;
        let (config_tx, _) = watch::channel(channel.config().sequence);
        let chain = Chain {
            db: db.clone(),
            blocks,
            meta,
            recent: Mutex::new(RecentTxIds::default()),
            signer: Mutex::new(Signers {
                current: signer,
                renewed: None,
            }),
            height_tx,
            channel: RwLock::new(Arc::new(channel)),
            previous: RwLock::new(None),
            config_tx,
        };
        chain.rebuild_recent()?;
        Ok(chain)
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, RecentTxIds> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reference time of the last applied batch (ms): as stored, or for
    /// a store from before it was kept, the last block's time (0 if none).
    fn batch_time(&self) -> Result<u64, OrdererError> {
        if let Some(t) = self.meta.get(BATCH_TIME)? {
            return Ok(u64_of(Some(t)));
        }
        let h = self.height();
        Ok(match h.checked_sub(1) {
            Some(last) => self
                .block(last)?
                .and_then(|b| blk::block_time_ms(&b))
                .unwrap_or(0),
            None => 0,
        })
    }

    /// Rebuilds the set of recent tx ids from the blocks: every tx id with
    /// a timestamp at or after `T − w`. Such a tx sits in a block stamped
    /// at or after `T − 2w`; blocks are read back from the tip until one is
    /// older than `T − 3w` (slack for blocks cut before block times were
    /// kept monotonic). A chain that has never had a stamped batch (T = 0)
    /// is read whole; otherwise reading stops at the first block without a
    /// time (cut by a version before block times: older than the window).
    fn rebuild_recent(&self) -> Result<(), OrdererError> {
        let t_ms = self.batch_time()?;
        let w = self.channel().config().batch.tx_time_window_secs as i64;
        let t = (t_ms / 1000) as i64;
        let mut blocks = Vec::new();
        let mut n = self.height();
        while n > 1 {
            n -= 1;
            let Some(block) = self.block(n)? else { break };
            match blk::block_time_ms(&block) {
                Some(bt) if ((bt / 1000) as i64) < t - 3 * w => break,
                None if t_ms > 0 => break,
                _ => {}
            }
            let txs: Vec<(String, i64)> = block
                .data
                .map(|d| d.data)
                .unwrap_or_default()
                .iter()
                .filter_map(|env| channel_header(env).ok())
                .map(|ch| (ch.tx_id, ch.timestamp.map_or(0, |ts| ts.seconds)))
                .filter(|(id, ts)| !id.is_empty() && *ts >= t - w)
                .collect();
            blocks.push(txs);
        }
        let mut recent = RecentTxIds::default();
        for txs in blocks.iter().rev() {
            recent.add_block(txs.iter().map(|(id, ts)| (id.as_str(), *ts)));
        }
        tracing::debug!(
            tx_ids = recent.len(),
            "recent tx ids rebuilt from the blocks"
        );
        *self.recent() = recent;
        Ok(())
    }

    fn load_channel(meta: &sled::Tree) -> Result<Channel, OrdererError> {
        let raw = meta
            .get(CONFIG)?
            .ok_or_else(|| OrdererError::Store("no channel config stored".into()))?;
        let config =
            ChannelConfig::from_json(&raw).map_err(|e| OrdererError::Store(e.to_string()))?;
        Channel::new(config).map_err(|e| OrdererError::Store(format!("stored config: {e}")))
    }

    /// The live channel (configuration in force at the current height).
    pub fn channel(&self) -> Arc<Channel> {
        match self.channel.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The configuration in force before the last switch, if this process
    /// saw one.
    pub fn previous_channel(&self) -> Option<Arc<Channel>> {
        match self.previous.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_channel(&self, channel: Channel) {
        let seq = channel.config().sequence;
        let old = match self.channel.write() {
            Ok(mut c) => std::mem::replace(&mut *c, Arc::new(channel)),
            Err(p) => std::mem::replace(&mut *p.into_inner(), Arc::new(channel)),
        };
        match self.previous.write() {
            Ok(mut p) => *p = Some(old),
            Err(p) => *p.into_inner() = Some(old),
        }
        self.config_tx.send_replace(seq);
    }

    /// Subscribes to configuration changes (the new sequence).
    pub fn watch_config(&self) -> watch::Receiver<u64> {
        self.config_tx.subscribe()
    }

    /// The number of the last config block.
    pub fn last_config_block(&self) -> u64 {
        u64_of(self.meta.get(LAST_CONFIG_BLOCK).ok().flatten())
    }

    /// The Raft log index the last config block was applied at (0 for the
    /// genesis block), read from its orderer metadata.
    pub fn last_config_raft_index(&self) -> u64 {
        let n = self.last_config_block();
        if n == 0 {
            return 0;
        }
        self.block(n)
            .ok()
            .flatten()
            .and_then(|b| blk::block_signatures(&b).ok())
            .and_then(|md| {
                qcss_proto::common::OrdererBlockMetadata::decode(md.value.as_slice()).ok()
            })
            .and_then(|obm| obm.consenter_metadata.get(8..16)?.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0)
    }

    /// Number of blocks (the next block number).
    pub fn height(&self) -> u64 {
        u64_of(self.meta.get(HEIGHT).ok().flatten())
    }

    /// Subscribes to height changes (Deliver waits on this).
    pub fn watch_height(&self) -> watch::Receiver<u64> {
        self.height_tx.subscribe()
    }

    /// A block's bytes as stored.
    pub fn block_bytes(&self, number: u64) -> Result<Option<Vec<u8>>, OrdererError> {
        Ok(self.blocks.get(number.to_be_bytes())?.map(|v| v.to_vec()))
    }

    /// A decoded block.
    pub fn block(&self, number: u64) -> Result<Option<Block>, OrdererError> {
        match self.block_bytes(number)? {
            Some(b) => Ok(Some(Block::decode(b.as_slice()).map_err(|e| {
                OrdererError::Store(format!("block {number} does not decode: {e}"))
            })?)),
            None => Ok(None),
        }
    }

    /// Whether a tx id is already in a block, as far as it matters: every
    /// tx id ordered with a timestamp inside the time window answers true;
    /// an older one may answer false, and the window refuses its copies
    /// ([`crate::recent`]).
    pub fn has_tx(&self, tx_id: &str) -> bool {
        self.recent().contains(tx_id)
    }

    /// Forgets tx ids no copy of which can pass the window at `time_ms`.
    fn prune_recent(&self, time_ms: Option<u64>) {
        if let Some(t) = time_ms {
            let w = self.channel().config().batch.tx_time_window_secs;
            self.recent().prune(t, w);
        }
    }

    /// The current channel configuration.
    pub fn config(&self) -> Result<ChannelConfig, OrdererError> {
        let raw = self
            .meta
            .get(CONFIG)?
            .ok_or_else(|| OrdererError::Store("no channel config stored".into()))?;
        ChannelConfig::from_json(&raw).map_err(|e| OrdererError::Store(e.to_string()))
    }

    /// The last applied Raft log id and membership, raw (bincode), as stored.
    pub fn applied_raw(&self) -> Result<(Option<sled::IVec>, Option<sled::IVec>), OrdererError> {
        Ok((self.meta.get(LAST_APPLIED)?, self.meta.get(MEMBERSHIP)?))
    }

    /// Records a membership or blank entry as applied.
    pub fn set_applied(
        &self,
        last_applied: &[u8],
        membership: Option<&[u8]>,
    ) -> Result<(), OrdererError> {
        let mut b = sled::Batch::default();
        b.insert(LAST_APPLIED, last_applied);
        if let Some(m) = membership {
            b.insert(MEMBERSHIP, m);
        }
        self.meta.apply_batch(b)?;
        Ok(())
    }

    /// Applies a committed batch at Raft position (term, index): drops
    /// envelopes whose tx id is already ordered (or repeated in the batch),
    /// builds and signs the block, and stores block, tx ids, height, hash
    /// and `last_applied` in one transaction.
    pub fn apply_batch(
        &self,
        batch: &Batch,
        term: u64,
        index: u64,
        last_applied: &[u8],
    ) -> Result<BatchOutcome, OrdererError> {
        let height = self.height();
        let prev = self
            .meta
            .get(LAST_HASH)?
            .map(|v| v.to_vec())
            .unwrap_or_default();
        let (envelopes, stamped) = batch.split_time();
        // Never earlier than the batch before (see BATCH_TIME).
        let time_ms = match stamped {
            Some(t) => Some(t.max(self.batch_time()?)),
            None => None,
        };
        let raft = RaftPos {
            term,
            index,
            time_ms,
        };
        if let [only] = envelopes
            && channel_header(only).is_ok_and(|ch| ch.r#type == HeaderType::ConfigUpdate as i32)
        {
            return self.apply_config(only, height, &prev, raft, last_applied);
        }
        let window = self.channel().config().batch.clone();
        let mut accepted = Vec::with_capacity(batch.envelopes.len());
        let mut tx_ids = Vec::with_capacity(batch.envelopes.len());
        let mut seen = std::collections::HashSet::new();
        let mut rejected = Vec::new();
        for (i, raw) in envelopes.iter().enumerate() {
            let ch = match channel_header(raw) {
                Ok(ch) => ch,
                Err(e) => {
                    rejected.push(Rejected::bad(i, format!("malformed envelope: {e}")));
                    continue;
                }
            };
            if ch.r#type == HeaderType::ConfigUpdate as i32
                || ch.r#type == HeaderType::Config as i32
            {
                rejected.push(Rejected::bad(
                    i,
                    "a config update must be alone in its batch".into(),
                ));
                continue;
            }
            // An envelope dated outside the window of the batch's time is
            // left out (issue 15: back-dated transactions defeated permits).
            // This is also what lets the duplicate check below forget old tx
            // ids (crate::recent), so it holds for every type.
            let secs = ch.timestamp.as_ref().map_or(0, |t| t.seconds);
            if let Some(now) = time_ms
                && let Err(why) = window.check_tx_time(secs, now)
            {
                rejected.push(Rejected::bad(i, why));
                continue;
            }
            let tx_id = ch.tx_id;
            if !tx_id.is_empty() && (self.has_tx(&tx_id) || !seen.insert(tx_id.clone())) {
                rejected.push(Rejected::bad(i, format!("duplicate tx id {tx_id}")));
                continue;
            }
            accepted.push(raw.to_vec());
            tx_ids.push((tx_id, secs));
        }
        let time_bytes = time_ms.map(u64::to_be_bytes);
        if accepted.is_empty() {
            let mut b = sled::Batch::default();
            b.insert(LAST_APPLIED, last_applied);
            if let Some(t) = &time_bytes {
                b.insert(BATCH_TIME, t);
            }
            self.meta.apply_batch(b)?;
            self.prune_recent(time_ms);
            return Ok(BatchOutcome {
                block: None,
                rejected,
                config: None,
            });
        }
        let last_config = u64_of(self.meta.get(LAST_CONFIG_BLOCK)?);
        let mut peaks = self.mmr_peaks(height)?;
        let mut block = new_block(height, &prev, accepted);
        let signer = self.block_signer(&self.channel());
        sign_block(
            &mut block,
            &signer,
            orderer_metadata(
                last_config,
                raft.term,
                raft.index,
                raft.time_ms,
                Some(&peaks.root(&MMR).0),
            ),
        )
        .map_err(|e| OrdererError::Store(format!("signing block {height}: {e}")))?;
        let bytes = block.encode_to_vec();
        let hash = block_hash(&block);
        peaks.append(&MMR, block_leaf(height, &Hash32(hash)));
        let peaks = encode_peaks(&peaks);
        (&self.blocks, &self.meta)
            .transaction(|(b, m)| {
                b.insert(&height.to_be_bytes(), bytes.as_slice())?;
                m.insert(HEIGHT, &(height + 1).to_be_bytes())?;
                m.insert(LAST_HASH, &hash)?;
                m.insert(MMR_PEAKS, peaks.as_slice())?;
                m.insert(LAST_APPLIED, last_applied)?;
                if let Some(t) = &time_bytes {
                    m.insert(BATCH_TIME, t)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| OrdererError::Store(format!("storing block {height}: {e:?}")))?;
        // Only once the block is stored: the set never runs ahead of it.
        self.recent()
            .add_block(tx_ids.iter().map(|(id, ts)| (id.as_str(), *ts)));
        self.prune_recent(time_ms);
        Ok(BatchOutcome {
            block: Some(height),
            rejected,
            config: None,
        })
    }

    /// Applies a batch holding one `CONFIG_UPDATE` envelope: checks it
    /// against the configuration in force and, if it passes, writes the
    /// config block and switches to the new configuration.
    fn apply_config(
        &self,
        raw: &[u8],
        height: u64,
        prev: &[u8],
        raft: RaftPos,
        last_applied: &[u8],
    ) -> Result<BatchOutcome, OrdererError> {
        let time_bytes = raft.time_ms.map(u64::to_be_bytes);
        let refuse = |r: Rejected| -> Result<BatchOutcome, OrdererError> {
            tracing::info!(reason = %r.reason, "config update refused at apply");
            let mut b = sled::Batch::default();
            b.insert(LAST_APPLIED, last_applied);
            if let Some(t) = &time_bytes {
                b.insert(BATCH_TIME, t);
            }
            self.meta.apply_batch(b)?;
            Ok(BatchOutcome {
                block: None,
                rejected: vec![r],
                config: None,
            })
        };
        let opened = match Envelope::decode(raw)
            .map_err(|e| e.to_string())
            .and_then(|env| envelope::decode(&env).map_err(|e| e.to_string()))
        {
            Ok(o) => o,
            Err(e) => return refuse(Rejected::bad(0, format!("malformed envelope: {e}"))),
        };
        let tx_id = opened.channel_header.tx_id.clone();
        let tx_secs = opened
            .channel_header
            .timestamp
            .as_ref()
            .map_or(0, |t| t.seconds);
        if self.has_tx(&tx_id) {
            return refuse(Rejected::bad(0, format!("duplicate tx id {tx_id}")));
        }
        let update = match ConfigUpdate::from_json(&opened.data) {
            Ok(u) => u,
            Err(e) => return refuse(Rejected::new(0, e.status(), e.to_string())),
        };
        let channel = match verify_update(&self.channel(), &update, envelope_time(&opened)) {
            Ok(c) => c,
            Err(e) => return refuse(Rejected::new(0, e.status(), e.to_string())),
        };
        let config = channel.config().clone();
        let env = config_envelope(&config, raw, &tx_id);
        let mut peaks = self.mmr_peaks(height)?;
        let mut block = new_block(height, prev, vec![env.encode_to_vec()]);
        // Signed as the configuration before it says: a renewed identity
        // it names is used from the next block on.
        let signer = self.block_signer(&self.channel());
        sign_block(
            &mut block,
            &signer,
            orderer_metadata(
                height,
                raft.term,
                raft.index,
                raft.time_ms,
                Some(&peaks.root(&MMR).0),
            ),
        )
        .map_err(|e| OrdererError::Store(format!("signing block {height}: {e}")))?;
        let bytes = block.encode_to_vec();
        let hash = block_hash(&block);
        peaks.append(&MMR, block_leaf(height, &Hash32(hash)));
        let peaks = encode_peaks(&peaks);
        let config_json = config.to_json();
        (&self.blocks, &self.meta)
            .transaction(|(b, m)| {
                b.insert(&height.to_be_bytes(), bytes.as_slice())?;
                if let Some(t) = &time_bytes {
                    m.insert(BATCH_TIME, t)?;
                }
                m.insert(HEIGHT, &(height + 1).to_be_bytes())?;
                m.insert(LAST_HASH, &hash)?;
                m.insert(LAST_APPLIED, last_applied)?;
                m.insert(CONFIG, config_json.as_slice())?;
                m.insert(LAST_CONFIG_BLOCK, &height.to_be_bytes())?;
                m.insert(MMR_PEAKS, peaks.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| OrdererError::Store(format!("storing config block {height}: {e:?}")))?;
        tracing::info!(
            block = height,
            sequence = config.sequence,
            "channel configuration updated"
        );
        let widened =
            config.batch.tx_time_window_secs > self.channel().config().batch.tx_time_window_secs;
        self.set_channel(channel);
        self.recent().add_block([(tx_id.as_str(), tx_secs)]);
        if widened {
            // Tx ids forgotten under the narrower window may pass the wider
            // one: read them back from the blocks.
            self.rebuild_recent()?;
        } else {
            self.prune_recent(raft.time_ms);
        }
        Ok(BatchOutcome {
            block: Some(height),
            rejected: Vec::new(),
            config: Some(config.sequence),
        })
    }

    /// The anchoring MMR's peaks over blocks `0..height`: as stored, or
    /// rebuilt from the blocks when the stored ones are missing or stale.
    fn mmr_peaks(&self, height: u64) -> Result<Peaks, OrdererError> {
        if let Some(p) = self.meta.get(MMR_PEAKS)?.and_then(|v| decode_peaks(&v))
            && p.leaves == height
        {
            return Ok(p);
        }
        let mut peaks = Peaks::default();
        for n in 0..height {
            let block = self
                .block(n)?
                .ok_or_else(|| OrdererError::Store(format!("block {n} missing")))?;
            peaks.append(&MMR, block_leaf(n, &Hash32(block_hash(&block))));
        }
        tracing::info!(blocks = height, "anchoring MMR rebuilt from the blocks");
        Ok(peaks)
    }

    /// The anchoring MMR root over blocks `0..height` as this orderer
    /// computes it (what the next block's metadata will certify).
    pub fn mmr_root(&self) -> Result<[u8; 32], OrdererError> {
        Ok(self.mmr_peaks(self.height())?.root(&MMR).0)
    }

    /// Tells Deliver streams about new blocks.
    pub fn notify(&self) {
        let h = self.height();
        self.height_tx.send_replace(h);
    }

    /// Serialises the whole chain and applied state for a Raft snapshot.
    /// The state is read in one transaction, then exactly the blocks it
    /// counts, so a batch applied meanwhile cannot tear the snapshot.
    pub fn snapshot_data(&self) -> Result<SnapshotData, OrdererError> {
        let (meta, height) = self.snapshot_state()?;
        Ok(SnapshotData {
            blocks: self.snapshot_blocks(height)?,
            meta,
        })
    }

    /// The state a snapshot taken now covers (the `sm_meta` entries, read
    /// atomically) and its height — without the blocks.
    #[allow(clippy::type_complexity)]
    pub fn snapshot_state(
        &self,
    ) -> Result<(Vec<(serde_bytes::ByteBuf, serde_bytes::ByteBuf)>, u64), OrdererError> {
        let keys: [&[u8]; 7] = [
            HEIGHT,
            LAST_HASH,
            LAST_APPLIED,
            MEMBERSHIP,
            CONFIG,
            LAST_CONFIG_BLOCK,
            BATCH_TIME,
        ];
        let meta: Vec<(serde_bytes::ByteBuf, serde_bytes::ByteBuf)> = self
            .meta
            .transaction(|m| {
                let mut out = Vec::new();
                for k in keys {
                    if let Some(v) = m.get(k)? {
                        out.push((
                            serde_bytes::ByteBuf::from(k.to_vec()),
                            serde_bytes::ByteBuf::from(v.to_vec()),
                        ));
                    }
                }
                Ok::<_, ConflictableTransactionError<()>>(out)
            })
            .map_err(|e| OrdererError::Store(format!("reading state for snapshot: {e:?}")))?;
        let height = meta
            .iter()
            .find(|(k, _)| k.as_slice() == HEIGHT)
            .and_then(|(_, v)| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        Ok((meta, height))
    }

    /// Blocks `0..height`, as bytes.
    pub fn snapshot_blocks(&self, height: u64) -> Result<Vec<serde_bytes::ByteBuf>, OrdererError> {
        let mut blocks = Vec::with_capacity(height as usize);
        for n in 0..height {
            blocks.push(serde_bytes::ByteBuf::from(
                self.block_bytes(n)?
                    .ok_or_else(|| OrdererError::Store(format!("block {n} missing")))?,
            ));
        }
        Ok(blocks)
    }

    /// The (last applied, membership) stored in a snapshot's state, raw.
    pub fn snapshot_applied(data: &SnapshotData) -> (Option<&[u8]>, Option<&[u8]>) {
        let get = |key: &[u8]| {
            data.meta
                .iter()
                .find(|(k, _)| k.as_slice() == key)
                .map(|(_, v)| v.as_slice())
        };
        (get(LAST_APPLIED), get(MEMBERSHIP))
    }

    /// Replaces the chain with a snapshot's, atomically.
    pub fn install(&self, data: &SnapshotData) -> Result<(), OrdererError> {
        for (n, raw) in data.blocks.iter().enumerate() {
            Block::decode(raw.as_slice())
                .map_err(|e| OrdererError::Store(format!("snapshot block {n}: {e}")))?;
        }
        let config = data
            .meta
            .iter()
            .find(|(k, _)| k.as_slice() == CONFIG)
            .ok_or_else(|| OrdererError::Store("snapshot holds no channel config".into()))?;
        let config = ChannelConfig::from_json(&config.1)
            .map_err(|e| OrdererError::Store(format!("snapshot config: {e}")))?;
        let channel = Channel::new(config)
            .map_err(|e| OrdererError::Store(format!("snapshot config: {e}")))?;
        (&self.blocks, &self.meta)
            .transaction(|(b, m)| {
                // sled transactions cannot clear a tree; the snapshot always
                // covers every block we have (it is newer), so overwrite and
                // remove what lies beyond it.
                for (n, raw) in data.blocks.iter().enumerate() {
                    b.insert(&(n as u64).to_be_bytes(), raw.as_slice())?;
                }
                // A snapshot from before batch times were kept: derived
                // from its last block instead of left at ours.
                m.remove(BATCH_TIME)?;
                for (k, v) in &data.meta {
                    m.insert(k.as_slice(), v.as_slice())?;
                }
                // Rebuilt from the new blocks at the next apply.
                m.remove(MMR_PEAKS)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| OrdererError::Store(format!("installing snapshot: {e:?}")))?;
        // Blocks beyond the snapshot go. (openraft installs a snapshot only
        // beyond what this node has applied, so there are none unless the
        // store was tampered with.)
        let n = data.blocks.len() as u64;
        let beyond: Vec<sled::IVec> = self
            .blocks
            .range(n.to_be_bytes()..)
            .map(|kv| kv.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        for k in beyond {
            self.blocks.remove(&k)?;
        }
        self.db.flush()?;
        self.set_channel(channel);
        self.rebuild_recent()?;
        self.notify();
        Ok(())
    }

    /// Stores a snapshot blob.
    pub fn put_snapshot(&self, blob: &[u8]) -> Result<(), OrdererError> {
        self.meta.insert(SNAPSHOT, blob)?;
        Ok(())
    }

    /// The stored snapshot blob.
    pub fn get_snapshot(&self) -> Result<Option<Vec<u8>>, OrdererError> {
        Ok(self.meta.get(SNAPSHOT)?.map(|v| v.to_vec()))
    }

    /// Stores the current snapshot's reference (and drops a whole-chain
    /// snapshot blob left by an earlier version).
    pub fn put_snapshot_ref(&self, blob: &[u8]) -> Result<(), OrdererError> {
        self.meta.insert(SNAPSHOT_REF, blob)?;
        self.meta.remove(SNAPSHOT)?;
        Ok(())
    }

    /// The stored snapshot reference.
    pub fn get_snapshot_ref(&self) -> Result<Option<Vec<u8>>, OrdererError> {
        Ok(self.meta.get(SNAPSHOT_REF)?.map(|v| v.to_vec()))
    }

    /// The identity this node signs blocks with now.
    pub fn signer(&self) -> Arc<SigningIdentity> {
        self.signers().current.clone()
    }

    fn signers(&self) -> std::sync::MutexGuard<'_, Signers> {
        self.signer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds `renewed` (this node's renewed signing identity) until the
    /// channel configuration names it instead of the one in use: the first
    /// block after the config block that does so is signed with it (the
    /// config block itself still with the old one, as the configuration
    /// before it names). Returns whether it is in use already.
    pub fn renew_signer(&self, renewed: Arc<SigningIdentity>) -> bool {
        self.signers().renewed = Some(renewed.clone());
        self.block_signer(&self.channel()).cert_pem == renewed.cert_pem
    }

    /// The identity to sign the next block with under `channel` (the
    /// configuration before that block): the renewed one once `channel`
    /// names it and no longer names the one in use.
    fn block_signer(&self, channel: &Channel) -> Arc<SigningIdentity> {
        let mut s = self.signers();
        if let Some(r) = &s.renewed
            && channel.consenter_by_identity(&r.cert.der).is_some()
            && channel.consenter_by_identity(&s.current.cert.der).is_none()
        {
            tracing::info!(
                serial = %r.cert.serial_hex,
                not_after = r.cert.not_after,
                "signing certificate renewed: the channel configuration names it; signing blocks with it"
            );
            s.current = r.clone();
            s.renewed = None;
        }
        s.current.clone()
    }
}

/// The channel header of a serialized envelope (without requiring a
/// creator: config envelopes have none).
fn channel_header(raw: &[u8]) -> Result<ChannelHeader, String> {
    let env = Envelope::decode(raw).map_err(|e| format!("envelope: {e}"))?;
    let payload = Payload::decode(env.payload.as_slice()).map_err(|e| format!("payload: {e}"))?;
    let header = payload.header.ok_or("payload has no header")?;
    ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|e| format!("channel header: {e}"))
}

/// Node id type re-export for callers.
pub type ConsenterId = NodeId;

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
