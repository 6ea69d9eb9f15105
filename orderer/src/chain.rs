//! The orderer's chain: blocks, the index of ordered tx ids, and the state
//! Raft's state machine persists with them — all in one sled database, every
//! applied batch one transaction.
//!
//! Design (documented in ARCHITECTURE.md): the leader cuts *batches*; Raft
//! replicates the batch; every node turns each committed batch into the
//! block deterministically (number = height, previous hash = last block's
//! hash, data = the batch minus envelopes whose tx id is already ordered).
//! Header and data are therefore byte-identical on every node. Each node
//! signs the header it built (SIGNATURES metadata); the Raft term and index
//! ride in the same metadata and are identical everywhere too.

use std::sync::Arc;

use prost::Message;
use qcss_network::SigningIdentity;
use qcss_network::block::{self as blk, block_hash, new_block, orderer_metadata, sign_block};
use qcss_network::channel::ChannelConfig;
use qcss_network::envelope;
use qcss_proto::common::{Block, Envelope};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use tokio::sync::watch;

use crate::error::OrdererError;
use crate::raft::types::{Batch, BatchOutcome, NodeId};

const HEIGHT: &[u8] = b"height";
const LAST_HASH: &[u8] = b"last_hash";
const LAST_APPLIED: &[u8] = b"last_applied";
const MEMBERSHIP: &[u8] = b"membership";
const CONFIG: &[u8] = b"config";
const LAST_CONFIG_BLOCK: &[u8] = b"last_config_block";
/// The last snapshot built or installed (bincode of `SnapshotFile`).
pub const SNAPSHOT: &[u8] = b"snapshot";

/// The chain store.
#[derive(Debug)]
pub struct Chain {
    db: sled::Db,
    blocks: sled::Tree,
    txids: sled::Tree,
    meta: sled::Tree,
    signer: Arc<SigningIdentity>,
    height_tx: watch::Sender<u64>,
}

/// Everything a snapshot carries: the chain and the applied state.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SnapshotData {
    /// Block bytes, from block 0.
    pub blocks: Vec<serde_bytes::ByteBuf>,
    /// Raw `sm_meta` entries (height, last hash, last applied, membership, config).
    pub meta: Vec<(serde_bytes::ByteBuf, serde_bytes::ByteBuf)>,
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
        let txids = db.open_tree("txids")?;
        let meta = db.open_tree("sm_meta")?;
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
        Ok(Chain {
            db: db.clone(),
            blocks,
            txids,
            meta,
            signer,
            height_tx,
        })
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

    /// Whether a tx id is already in a block.
    pub fn has_tx(&self, tx_id: &str) -> bool {
        !tx_id.is_empty() && self.txids.contains_key(tx_id.as_bytes()).unwrap_or(false)
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
        let mut accepted = Vec::with_capacity(batch.envelopes.len());
        let mut tx_ids = Vec::with_capacity(batch.envelopes.len());
        let mut seen = std::collections::HashSet::new();
        let mut rejected = Vec::new();
        for (i, raw) in batch.envelopes.iter().enumerate() {
            let tx_id = match Envelope::decode(raw.as_slice())
                .map_err(|e| e.to_string())
                .and_then(|env| envelope::decode(&env).map_err(|e| e.to_string()))
            {
                Ok(o) => o.channel_header.tx_id,
                Err(e) => {
                    rejected.push((i as u32, format!("malformed envelope: {e}")));
                    continue;
                }
            };
            if !tx_id.is_empty() && (self.has_tx(&tx_id) || !seen.insert(tx_id.clone())) {
                rejected.push((i as u32, format!("duplicate tx id {tx_id}")));
                continue;
            }
            accepted.push(raw.to_vec());
            tx_ids.push(tx_id);
        }
        if accepted.is_empty() {
            self.meta.insert(LAST_APPLIED, last_applied)?;
            return Ok(BatchOutcome {
                block: None,
                rejected,
            });
        }
        let last_config = u64_of(self.meta.get(LAST_CONFIG_BLOCK)?);
        let mut block = new_block(height, &prev, accepted);
        sign_block(
            &mut block,
            &self.signer,
            orderer_metadata(last_config, term, index),
        )
        .map_err(|e| OrdererError::Store(format!("signing block {height}: {e}")))?;
        let bytes = block.encode_to_vec();
        let hash = block_hash(&block);
        (&self.blocks, &self.txids, &self.meta)
            .transaction(|(b, t, m)| {
                b.insert(&height.to_be_bytes(), bytes.as_slice())?;
                for id in tx_ids.iter().filter(|id| !id.is_empty()) {
                    t.insert(id.as_bytes(), &height.to_be_bytes())?;
                }
                m.insert(HEIGHT, &(height + 1).to_be_bytes())?;
                m.insert(LAST_HASH, &hash)?;
                m.insert(LAST_APPLIED, last_applied)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| OrdererError::Store(format!("storing block {height}: {e:?}")))?;
        Ok(BatchOutcome {
            block: Some(height),
            rejected,
        })
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
        let keys: [&[u8]; 6] = [
            HEIGHT,
            LAST_HASH,
            LAST_APPLIED,
            MEMBERSHIP,
            CONFIG,
            LAST_CONFIG_BLOCK,
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
        let mut blocks = Vec::with_capacity(height as usize);
        for n in 0..height {
            blocks.push(serde_bytes::ByteBuf::from(
                self.block_bytes(n)?
                    .ok_or_else(|| OrdererError::Store(format!("block {n} missing")))?,
            ));
        }
        Ok(SnapshotData { blocks, meta })
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
        let mut txs: Vec<(Vec<u8>, u64)> = Vec::new();
        for (n, raw) in data.blocks.iter().enumerate() {
            let block = Block::decode(raw.as_slice())
                .map_err(|e| OrdererError::Store(format!("snapshot block {n}: {e}")))?;
            for env in block.data.map(|d| d.data).unwrap_or_default() {
                if let Ok(o) = Envelope::decode(env.as_slice())
                    .map_err(|e| e.to_string())
                    .and_then(|e| envelope::decode(&e).map_err(|e| e.to_string()))
                    && !o.channel_header.tx_id.is_empty()
                {
                    txs.push((o.channel_header.tx_id.into_bytes(), n as u64));
                }
            }
        }
        (&self.blocks, &self.txids, &self.meta)
            .transaction(|(b, t, m)| {
                // sled transactions cannot clear a tree; the snapshot always
                // covers every block we have (it is newer), so overwrite and
                // remove what lies beyond it.
                for (n, raw) in data.blocks.iter().enumerate() {
                    b.insert(&(n as u64).to_be_bytes(), raw.as_slice())?;
                }
                for (id, n) in &txs {
                    t.insert(id.as_slice(), &n.to_be_bytes())?;
                }
                for (k, v) in &data.meta {
                    m.insert(k.as_slice(), v.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| OrdererError::Store(format!("installing snapshot: {e:?}")))?;
        // Blocks beyond the snapshot (from a log that was truncated) go.
        let n = data.blocks.len() as u64;
        for kv in self.blocks.range(n.to_be_bytes()..) {
            self.blocks.remove(kv?.0)?;
        }
        self.db.flush()?;
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

    /// The signer (this node's identity).
    pub fn signer(&self) -> &SigningIdentity {
        &self.signer
    }
}

/// Node id type re-export for callers.
pub type ConsenterId = NodeId;
