//! The peer's ledger: blocks, world state, key history and the tx index, in
//! one sled database under a directory.
//!
//! [`Ledger::commit`] is the only writer (besides the repairs in
//! `integrity.rs` and `rebuild.rs`, which restore what commit wrote). It takes a block the validator has
//! judged and the [`BlockUpdates`] it derived (one [`TxUpdate`] per envelope:
//! validation code and writes), checks the block's chaining, and writes
//! everything in one sled transaction followed by one fsync, so a process
//! killed at any moment reopens with either the whole block or none of it.
//! Reads: [`Ledger::get_state`], [`Ledger::range`], [`Ledger::key_metadata`]
//! (or the same under one snapshot through [`Ledger::state_view`]),
//! [`Ledger::block`], [`Ledger::tx`], [`Ledger::history`]. Integrity:
//! [`Ledger::state_hash`] and [`Ledger::verify`]; while running, every block
//! read is checked against the chain and damage is recorded and repaired
//! (`integrity.rs`). After a store I/O error (a full disk),
//! [`Ledger::reopen`] brings the store back without a restart.
//!
//! Files: `commit.rs` (the write path), `blocks.rs` (block checks and block
//! and tx queries), `integrity.rs` (damage on open, read and scrub;
//! repair), `state.rs`, `history.rs`, `verify.rs`, `format.rs` (the
//! on-disk layout, documented there), `bench.rs`, `testutil.rs` (synthetic
//! chains for tests and the benchmark).
//!
//! Not here: signature and policy checks (the validator's), block delivery,
//! parsing read-write sets (the validator hands over plain writes).

mod bench;
mod blocks;
mod commit;
mod error;
mod format;
mod history;
mod integrity;
mod mmr;
mod rebuild;
mod state;
pub mod testutil;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use prost::Message;
use qcss_proto::common::Block;
use qcss_proto::hash::block_header_hash;

pub use bench::{CommitBenchReport, bench_commit};
pub(crate) use blocks::filter_of;
pub use blocks::{TxHeader, TxLocation, tx_header};
pub use commit::{BlockUpdates, MetadataWrite, TxUpdate, Write};
pub use error::LedgerError;
pub use history::HistoryEntry;
pub use integrity::{Integrity, RECENT_ON_OPEN, ScrubReport};
pub use rebuild::WritesOf;
pub use state::{StateView, Version, VersionedValue};
pub use verify::{VerifyProblem, VerifyReport};

/// The chain's tip, kept in memory and in the `meta` tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tip {
    /// Number of committed blocks (the next block's number).
    pub(crate) height: u64,
    /// Header hash of block `height - 1`; `None` when empty.
    pub(crate) last_hash: Option<[u8; 32]>,
}

/// The sled trees (see `format.rs`).
#[derive(Debug, Clone)]
pub(crate) struct Trees {
    pub(crate) meta: sled::Tree,
    pub(crate) blocks: sled::Tree,
    pub(crate) state: sled::Tree,
    pub(crate) history: sled::Tree,
    pub(crate) txids: sled::Tree,
    pub(crate) filters: sled::Tree,
    pub(crate) mmr: sled::Tree,
}

/// The open sled database and its trees: swapped out whole when the store is
/// reopened after a sticky I/O error (see [`Ledger::reopen`]).
#[derive(Debug)]
struct Store {
    db: sled::Db,
    trees: Trees,
}

/// A peer's ledger for one channel. Cheap to share behind an `Arc`: every
/// method takes `&self`; commits are serialised internally.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    /// `None` only while [`Ledger::reopen`] runs or after it failed.
    store: RwLock<Option<Store>>,
    /// Why the store stopped accepting writes (sled's I/O errors are
    /// sticky: every later write fails the same way until it is reopened).
    failed: Mutex<Option<StoreFailure>>,
    /// Blocks and state found damaged, and the hook told about it.
    integrity: integrity::Tracker,
    /// Readers that need a consistent view hold the read side; commit holds
    /// the write side only while its sled transaction applies.
    tip: RwLock<Tip>,
    /// Serialises commits (checks, preparation, transaction and flush).
    commit_lock: Mutex<()>,
    /// The anchoring MMR's peaks once loaded (`mmr.rs`); serialises its appends.
    mmr: Mutex<Option<qcss_anchor::mmr::Peaks>>,
}

/// Which tree [`Ledger::tamper_raw`] writes to (tests only).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum RawTree {
    /// The `meta` tree.
    Meta,
    /// The `blocks` tree.
    Blocks,
    /// The `state` tree.
    State,
    /// The `history` tree.
    History,
    /// The `txids` tree.
    TxIds,
}

/// Why the store stopped accepting writes: what [`Ledger::store_failure`]
/// reports until [`Ledger::reopen`] succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFailure {
    /// The device is full (ENOSPC): retry once space was freed.
    pub disk_full: bool,
    /// The error, as text.
    pub message: String,
}

impl Ledger {
    /// Opens the ledger in `dir`, creating it if the directory is empty or
    /// missing. After a crash the ledger reopens at the last block whose
    /// transaction reached the disk, with state, history and index to match.
    /// Fails if the directory holds something else, or if the recorded tip
    /// does not match the last stored block.
    pub fn open(dir: &Path) -> Result<Ledger, LedgerError> {
        let store = open_store(dir)?;
        check_format(&store.db, &store.trees)?;
        let tip = read_tip(&store.trees)?;
        let damaged = check_tip(&store.trees, &tip)?;
        tracing::debug!(path = %dir.display(), height = tip.height, "ledger opened");
        let ledger = Ledger {
            path: dir.to_path_buf(),
            store: RwLock::new(Some(store)),
            failed: Mutex::new(None),
            integrity: integrity::Tracker::default(),
            tip: RwLock::new(tip),
            commit_lock: Mutex::new(()),
            mmr: Mutex::new(None),
        };
        if let Some(reason) = damaged {
            ledger.mark_corrupt_block(tip.height - 1, &reason);
        }
        ledger.check_recent_blocks()?;
        ledger.check_rebuild_marker()?;
        Ok(ledger)
    }

    /// Closes the sled database and opens it again, re-reading the tip from
    /// disk: how a ledger whose store failed with an I/O error (a full disk)
    /// recovers without a restart, since sled's errors are sticky. Commits
    /// and state views wait while it runs. A block whose commit failed is
    /// there afterwards only if it reached the disk whole (sled recovers a
    /// transaction all or nothing). On failure the ledger has no store until
    /// a later call succeeds; every operation answers `Unavailable` meanwhile.
    pub fn reopen(&self) -> Result<(), LedgerError> {
        let _serial = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut tip = self.tip.write().unwrap_or_else(|e| e.into_inner());
        let mut slot = self.store.write().unwrap_or_else(|e| e.into_inner());
        // Dropping the old handles releases sled's file lock (open retries
        // while its flusher thread lets go).
        drop(slot.take());
        let store = open_store(&self.path)?;
        check_format(&store.db, &store.trees)?;
        let new_tip = read_tip(&store.trees)?;
        let damaged = check_tip(&store.trees, &new_tip)?;
        if new_tip != *tip {
            tracing::warn!(
                before = tip.height,
                after = new_tip.height,
                "ledger reopened at another height: the last commit did not reach the disk"
            );
        }
        *tip = new_tip;
        *slot = Some(store);
        // The MMR's peaks are reloaded from the reopened store when next used.
        *self.mmr.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = None;
        drop((slot, tip));
        if let Some(reason) = damaged {
            self.mark_corrupt_block(new_tip.height - 1, &reason);
        }
        tracing::info!(path = %self.path.display(), height = new_tip.height, "ledger store reopened");
        Ok(())
    }

    /// Why the store stopped accepting writes, until [`Ledger::reopen`]
    /// succeeds; `None` while it works.
    pub fn store_failure(&self) -> Option<StoreFailure> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records that a write failed in the store itself (not a refusal).
    pub(crate) fn note_store_failure(&self, e: &LedgerError) {
        let f = StoreFailure {
            disk_full: e.is_disk_full(),
            message: e.to_string(),
        };
        *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }

    /// The current trees (cheap handles), or `Unavailable` while the store
    /// is being reopened.
    pub(crate) fn trees(&self) -> Result<Trees, LedgerError> {
        self.store_guard()?
            .as_ref()
            .map(|s| s.trees.clone())
            .ok_or_else(|| self.unavailable())
    }

    fn db(&self) -> Result<sled::Db, LedgerError> {
        self.store_guard()?
            .as_ref()
            .map(|s| s.db.clone())
            .ok_or_else(|| self.unavailable())
    }

    fn store_guard(&self) -> Result<RwLockReadGuard<'_, Option<Store>>, LedgerError> {
        Ok(self.store.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn unavailable(&self) -> LedgerError {
        LedgerError::Unavailable {
            reason: match self.store_failure() {
                Some(f) => format!("the store failed ({}) and is not reopened yet", f.message),
                None => "the store is being reopened".into(),
            },
        }
    }

    /// The ledger directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of committed blocks, which is the number of the next block.
    pub fn height(&self) -> u64 {
        self.tip().height
    }

    /// Header hash of the last committed block (`None` before block 0).
    pub fn last_block_hash(&self) -> Option<[u8; 32]> {
        self.tip().last_hash
    }

    pub(crate) fn tip(&self) -> Tip {
        *self.tip.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes (or, with `None`, removes) one raw entry, bypassing every check:
    /// for tests that damage a ledger on purpose. Never call it elsewhere.
    #[doc(hidden)]
    pub fn tamper_raw(
        &self,
        tree: RawTree,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), LedgerError> {
        let trees = self.trees()?;
        let t = match tree {
            RawTree::Meta => &trees.meta,
            RawTree::Blocks => &trees.blocks,
            RawTree::State => &trees.state,
            RawTree::History => &trees.history,
            RawTree::TxIds => &trees.txids,
        };
        match value {
            Some(v) => t.insert(key, v).map(drop),
            None => t.remove(key).map(drop),
        }
        .map_err(LedgerError::storage("tamper"))?;
        self.db()?.flush().map_err(LedgerError::storage("flush"))?;
        Ok(())
    }
}

/// Opens the sled database in `dir` and its trees.
fn open_store(dir: &Path) -> Result<Store, LedgerError> {
    // sled holds an exclusive file lock until its background flusher has
    // stopped, which can outlive the handle by a moment (a peer restarted
    // at once, a tool opening the ledger right after, a reopen): retry for a
    // while before reporting the directory as in use.
    let mut attempts = 0;
    let db = loop {
        match qcss_network::store::open_store(&qcss_network::store::sled_config(dir), dir) {
            Ok(db) => break db,
            Err(sled::Error::Io(e))
                if attempts < 40 && e.to_string().contains("could not acquire lock") =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(source) => {
                return Err(LedgerError::Open {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    };
    let tree = |name: &'static str| {
        db.open_tree(name)
            .map_err(LedgerError::storage("open tree"))
    };
    let trees = Trees {
        meta: tree(format::META)?,
        blocks: tree(format::BLOCKS)?,
        state: tree(format::STATE)?,
        history: tree(format::HISTORY)?,
        txids: tree(format::TXIDS)?,
        filters: tree(format::FILTERS)?,
        mmr: tree(format::MMR)?,
    };
    Ok(Store { db, trees })
}

/// Writes the format version into a new ledger, or checks an existing one.
fn check_format(db: &sled::Db, trees: &Trees) -> Result<(), LedgerError> {
    let stored = trees
        .meta
        .get(format::FORMAT_KEY)
        .map_err(LedgerError::storage("read format"))?;
    match stored {
        Some(v) => {
            let found = format::decode_format(&v)?;
            if found != format::FORMAT {
                return Err(LedgerError::UnsupportedFormat {
                    found,
                    supported: format::FORMAT,
                });
            }
        }
        None => {
            let empty = trees.meta.is_empty()
                && trees.blocks.is_empty()
                && trees.state.is_empty()
                && trees.history.is_empty()
                && trees.txids.is_empty()
                && trees.filters.is_empty();
            if !empty {
                return Err(LedgerError::corrupt(
                    format::META,
                    format::FORMAT_KEY,
                    "ledger has data but no format version",
                ));
            }
            trees
                .meta
                .insert(format::FORMAT_KEY, &format::FORMAT.to_be_bytes())
                .map_err(LedgerError::storage("write format"))?;
            db.flush().map_err(LedgerError::storage("flush"))?;
        }
    }
    Ok(())
}

/// Reads the tip recorded in `meta`.
pub(crate) fn read_tip(trees: &Trees) -> Result<Tip, LedgerError> {
    let get = |k: &[u8]| trees.meta.get(k).map_err(LedgerError::storage("read meta"));
    let height = match get(format::HEIGHT_KEY)? {
        Some(v) => format::decode_u64(format::META, format::HEIGHT_KEY, &v)?,
        None => 0,
    };
    let last_hash = match get(format::LAST_HASH_KEY)? {
        Some(v) => Some(format::decode_hash(
            format::META,
            format::LAST_HASH_KEY,
            &v,
        )?),
        None => None,
    };
    if (height == 0) != last_hash.is_none() {
        return Err(LedgerError::corrupt(
            format::META,
            format::HEIGHT_KEY,
            format!("height {height} disagrees with the presence of a last hash"),
        ));
    }
    Ok(Tip { height, last_hash })
}

/// Checks that the last stored block is the tip's (cheap: one block read).
/// Returns why the tip block is damaged (it is then repaired like any other
/// damaged block: its hash is recorded in `meta`); an error when `meta` and
/// the blocks disagree on the height.
fn check_tip(trees: &Trees, tip: &Tip) -> Result<Option<String>, LedgerError> {
    let last = trees
        .blocks
        .last()
        .map_err(LedgerError::storage("read blocks"))?;
    match (last, tip.last_hash) {
        (None, None) => Ok(None),
        (Some((k, v)), Some(hash)) => {
            let number = format::decode_block_key(&k)?;
            if number + 1 != tip.height {
                return Err(LedgerError::corrupt(
                    format::BLOCKS,
                    &k,
                    format!("last block is {number} but the height is {}", tip.height),
                ));
            }
            let block = match Block::decode(v.as_ref()) {
                Ok(b) => b,
                Err(e) => return Ok(Some(format!("does not decode: {e}"))),
            };
            let Some(header) = block.header else {
                return Ok(Some("has no header".into()));
            };
            if block_header_hash(&header) != hash {
                return Ok(Some(
                    "its header hash differs from the recorded last hash".into(),
                ));
            }
            Ok(None)
        }
        (Some((k, _)), None) => Err(LedgerError::corrupt(
            format::BLOCKS,
            &k,
            "blocks stored but the height is 0",
        )),
        (None, Some(_)) => Err(LedgerError::corrupt(
            format::META,
            format::HEIGHT_KEY,
            format!("height {} but no blocks stored", tip.height),
        )),
    }
}
