//! Durable storage in sled: every block, the irreversible chain by height,
//! the state at the last irreversible block (LIB), and which blocks are
//! still reversible. Reopening rebuilds the fork database from the LIB state
//! by re-applying the reversible blocks, so nothing above the LIB needs an
//! undo log and a node killed at any moment restarts consistent: each write
//! is one atomic sled batch.

use std::path::Path;
use std::sync::Arc;

use crate::block::Block;
use crate::codec::{self, CodecError};
use crate::hash::Hash32;
use crate::state::State;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled failed.
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode: the directory is damaged.
    #[error("stored {what} does not decode: {err}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Decoder error.
        err: CodecError,
    },
    /// The directory holds another chain.
    #[error("the store holds chain {found}, not {want}")]
    WrongChain {
        /// Expected.
        want: Hash32,
        /// Found.
        found: Hash32,
    },
}

const CHAIN: &[u8] = b"M/chain";
const LIB_STATE: &[u8] = b"M/lib";
const CONFIRMED: &[u8] = b"M/confirmed";
/// Local data is trusted more than network data, but a bound still applies.
const MAX_STATE_BYTES: usize = 1 << 34;

fn key(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    [prefix, rest].concat()
}

/// See the module doc.
#[derive(Debug, Clone)]
pub struct Store {
    tree: sled::Tree,
    _db: sled::Db,
    max_block_bytes: u32,
}

/// What a reopened store holds.
#[derive(Debug)]
pub struct Loaded {
    /// State at the LIB.
    pub lib_state: State,
    /// The LIB block (none at genesis).
    pub lib_block: Option<Block>,
    /// Reversible blocks, by height.
    pub pending: Vec<Block>,
    /// Highest height this node's key has confirmed.
    pub confirmed_height: u64,
}

impl Store {
    /// Opens (or creates) the store in `dir` for chain `chain_id`.
    pub fn open(dir: &Path, chain_id: Hash32, max_block_bytes: u32) -> Result<Self, StoreError> {
        let db = sled::open(dir)?;
        let tree = db.open_tree("dpos")?;
        match tree.get(CHAIN)? {
            Some(v) => {
                let found = codec::decode::<Hash32>(&v, 32)
                    .map_err(|err| StoreError::Corrupt { what: "chain id", err })?;
                if found != chain_id {
                    return Err(StoreError::WrongChain { want: chain_id, found });
                }
            }
            None => {
                tree.insert(CHAIN, codec::encode(&chain_id))?;
            }
        }
        Ok(Self {
            tree,
            _db: db,
            max_block_bytes,
        })
    }

    /// The stored chain, or `None` for a fresh store.
    pub fn load(&self) -> Result<Option<Loaded>, StoreError> {
        let Some(v) = self.tree.get(LIB_STATE)? else {
            return Ok(None);
        };
        let lib_state: State = codec::decode(&v, MAX_STATE_BYTES)
            .map_err(|err| StoreError::Corrupt { what: "LIB state", err })?;
        let lib_block = self.block(&lib_state.head_id)?;
        let mut pending = Vec::new();
        for kv in self.tree.scan_prefix(b"P/") {
            let (k, _) = kv?;
            let mut id = [0u8; 32];
            if k.len() == 34 {
                id.copy_from_slice(&k[2..]);
            }
            if let Some(b) = self.block(&Hash32(id))? {
                pending.push(b);
            }
        }
        pending.sort_by_key(|b| b.header.height);
        let confirmed_height = match self.tree.get(CONFIRMED)? {
            Some(v) => codec::decode(&v, 8).map_err(|err| StoreError::Corrupt {
                what: "confirmed height",
                err,
            })?,
            None => 0,
        };
        Ok(Some(Loaded {
            lib_state,
            lib_block,
            pending,
            confirmed_height,
        }))
    }

    /// Writes the genesis state as the LIB state.
    pub fn init(&self, genesis_state: &State) -> Result<(), StoreError> {
        self.tree.insert(LIB_STATE, codec::encode(genesis_state))?;
        self.tree.flush()?;
        Ok(())
    }

    /// A block by id.
    pub fn block(&self, id: &Hash32) -> Result<Option<Block>, StoreError> {
        match self.tree.get(key(b"B/", &id.0))? {
            Some(v) => Block::decode(&v, self.max_block_bytes)
                .map(Some)
                .map_err(|err| StoreError::Corrupt { what: "block", err }),
            None => Ok(None),
        }
    }

    /// The irreversible block at `height`.
    pub fn block_at(&self, height: u64) -> Result<Option<Block>, StoreError> {
        match self.tree.get(key(b"H/", &height.to_be_bytes()))? {
            Some(v) => {
                let id = codec::decode::<Hash32>(&v, 32)
                    .map_err(|err| StoreError::Corrupt { what: "height index", err })?;
                self.block(&id)
            }
            None => Ok(None),
        }
    }

    /// Records a new reversible block.
    pub fn put_block(&self, block: &Block) -> Result<(), StoreError> {
        let id = block.id();
        let mut batch = sled::Batch::default();
        batch.insert(key(b"B/", &id.0), block.encode());
        batch.insert(key(b"P/", &id.0), &[][..]);
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Records that `blocks` became irreversible with `lib_state` the state
    /// after the last of them, and forgets reversible blocks not in `keep`.
    /// One atomic batch, flushed.
    pub fn finalize(
        &self,
        lib_state: &State,
        blocks: &[Arc<Block>],
        keep: &dyn Fn(&Hash32) -> bool,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for b in blocks {
            let id = b.id();
            batch.insert(key(b"H/", &b.header.height.to_be_bytes()), codec::encode(&id));
            batch.remove(key(b"P/", &id.0));
        }
        let finals: std::collections::HashSet<Hash32> = blocks.iter().map(|b| b.id()).collect();
        for kv in self.tree.scan_prefix(b"P/") {
            let (k, _) = kv?;
            let mut id = [0u8; 32];
            if k.len() == 34 {
                id.copy_from_slice(&k[2..]);
            }
            let id = Hash32(id);
            if !finals.contains(&id) && !keep(&id) {
                batch.remove(k.clone());
                batch.remove(key(b"B/", &id.0));
            }
        }
        batch.insert(LIB_STATE, codec::encode(lib_state));
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Records the highest height this node's key confirmed (flushed before
    /// the confirmation is sent, so a restart never confirms a height twice).
    pub fn set_confirmed(&self, height: u64) -> Result<(), StoreError> {
        self.tree.insert(CONFIRMED, codec::encode(&height))?;
        self.tree.flush()?;
        Ok(())
    }
}
