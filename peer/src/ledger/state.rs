//! World state: the current value, version and endorsement metadata of every
//! key, and the state hash that lets two peers compare their states.
//!
//! A key's version is the (block, tx) of the last VALID transaction that wrote
//! its value or its metadata. Metadata (e.g. a key-level endorsement policy)
//! lives in the same record as the value, so it is read with the value, kept
//! when only the value is rewritten, and removed when the key is deleted.

use std::ops::Deref;
use std::sync::RwLockReadGuard;

use ring::digest::{Context, SHA256};

use crate::ledger::error::LedgerError;
use crate::ledger::format::{self, StateRecord};
use crate::ledger::{Ledger, Tip, Trees};

/// Where a value was written: the block and the transaction's position in it
/// (Fabric's `kvrwset.Version`, whose `tx_num` is this `tx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Version {
    /// Block number.
    pub block: u64,
    /// Position of the transaction in the block.
    pub tx: u32,
}

/// A key's current value and the version that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedValue {
    /// The value (never empty: an empty write is a delete).
    pub value: Vec<u8>,
    /// Where it was last written (value or metadata).
    pub version: Version,
}

/// A consistent read-only view of the state: no block is applied while it is
/// held. Get one with [`Ledger::state_view`]; the endorser simulates a
/// proposal under one. Holding it delays the next commit. While holding it,
/// read through the view, not through the [`Ledger`]: calling
/// [`Ledger::commit`], [`Ledger::range`], [`Ledger::state_hash`] or
/// [`Ledger::verify`] from the same thread can deadlock.
pub struct StateView<'a> {
    ledger: &'a Ledger,
    tip: RwLockReadGuard<'a, Tip>,
}

impl StateView<'_> {
    /// Height of the ledger this view sees.
    pub fn height(&self) -> u64 {
        self.tip.height
    }

    /// Hash of the last block this view sees.
    pub fn last_block_hash(&self) -> Option<[u8; 32]> {
        self.tip.last_hash
    }

    /// See [`Ledger::get_state`].
    pub fn get_state(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>, LedgerError> {
        self.ledger
            .note_state_read(get_state(&self.ledger.trees()?, ns, key))
    }

    /// See [`Ledger::range`].
    pub fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>, LedgerError> {
        self.ledger
            .note_state_read(range(&self.ledger.trees()?, ns, start, end, limit))
    }

    /// See [`Ledger::key_metadata`].
    pub fn key_metadata(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        self.ledger
            .note_state_read(key_metadata(&self.ledger.trees()?, ns, key))
    }
}

impl Ledger {
    /// A view of the state that no commit changes while it is held.
    pub fn state_view(&self) -> StateView<'_> {
        StateView {
            ledger: self,
            tip: self.tip.read().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// The current value and version of `key` in namespace `ns` (a chaincode
    /// name), or `None` if it was never written or was deleted.
    pub fn get_state(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>, LedgerError> {
        self.note_state_read(get_state(&self.trees()?, ns, key))
    }

    /// The keys of `ns` in `[start, end)`, in key (byte) order, at most
    /// `limit` of them (`0` = no limit). `end == ""` means to the end of the
    /// namespace. Consistent: no block is applied during the scan.
    pub fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>, LedgerError> {
        self.state_view().range(ns, start, end, limit)
    }

    /// The endorsement metadata stored beside `key` (for state-based
    /// endorsement), as the validator wrote it; `None` if the key or its
    /// metadata does not exist.
    pub fn key_metadata(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        self.note_state_read(key_metadata(&self.trees()?, ns, key))
    }

    /// SHA-256 over every (namespace, key, version, metadata, value) in key
    /// order, with every field length-prefixed and a domain tag in front (the
    /// exact bytes are documented on `StateHasher` in `state.rs`). Two
    /// ledgers have equal state hashes exactly when they hold the same state.
    /// Reads the whole state.
    pub fn state_hash(&self) -> Result<[u8; 32], LedgerError> {
        let _view = self.state_view();
        let mut hasher = StateHasher::new();
        for item in self.trees()?.state.iter() {
            let (k, v) = item.map_err(LedgerError::storage("scan state"))?;
            let (ns, key) = format::parse_state_key(&k)?;
            hasher.add(&ns, &key, &StateRecord::decode(&k, &v)?);
        }
        Ok(hasher.finish())
    }
}

/// The running state hash: `SHA-256("qcss.ledger.state.v1" ‖ entry…)` with
/// entry = `len ns ‖ len key ‖ block u64 ‖ tx u32 ‖ (0x00 | 0x01 ‖ len
/// metadata) ‖ len value`, where `len x` is `x`'s length as `u32` BE then
/// `x`. Fed in key order. Independent of the record encoding on disk.
pub(crate) struct StateHasher {
    ctx: Context,
}

impl StateHasher {
    pub(crate) fn new() -> Self {
        let mut ctx = Context::new(&SHA256);
        ctx.update(b"qcss.ledger.state.v1");
        StateHasher { ctx }
    }

    fn len_prefixed(&mut self, bytes: &[u8]) {
        // Namespaces, keys, metadata and values are far below 4 GiB.
        self.ctx.update(&(bytes.len() as u32).to_be_bytes());
        self.ctx.update(bytes);
    }

    pub(crate) fn add(&mut self, ns: &str, key: &str, record: &StateRecord) {
        self.len_prefixed(ns.as_bytes());
        self.len_prefixed(key.as_bytes());
        self.ctx.update(&record.version.block.to_be_bytes());
        self.ctx.update(&record.version.tx.to_be_bytes());
        match &record.metadata {
            None => self.ctx.update(&[0]),
            Some(m) => {
                self.ctx.update(&[1]);
                self.len_prefixed(m);
            }
        }
        self.len_prefixed(&record.value);
    }

    pub(crate) fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.ctx.finish().as_ref());
        out
    }
}

fn check_namespace(ns: &str) -> Result<(), LedgerError> {
    match format::namespace_problem(ns) {
        Some(reason) => Err(LedgerError::InvalidNamespace {
            ns: ns.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The decoded record of `(ns, key)`, if any.
pub(crate) fn record(
    trees: &Trees,
    ns: &str,
    key: &str,
) -> Result<Option<StateRecord>, LedgerError> {
    check_namespace(ns)?;
    let k = format::state_key(ns, key);
    let v = trees
        .state
        .get(&k)
        .map_err(LedgerError::storage("read state"))?;
    v.map(|v| StateRecord::decode(&k, v.deref())).transpose()
}

fn get_state(trees: &Trees, ns: &str, key: &str) -> Result<Option<VersionedValue>, LedgerError> {
    Ok(record(trees, ns, key)?.map(|r| VersionedValue {
        value: r.value,
        version: r.version,
    }))
}

fn key_metadata(trees: &Trees, ns: &str, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
    Ok(record(trees, ns, key)?.and_then(|r| r.metadata))
}

fn range(
    trees: &Trees,
    ns: &str,
    start: &str,
    end: &str,
    limit: usize,
) -> Result<Vec<(String, VersionedValue)>, LedgerError> {
    check_namespace(ns)?;
    let lo = format::state_key(ns, start);
    let hi = if end.is_empty() {
        format::state_namespace_end(ns)
    } else {
        format::state_key(ns, end)
    };
    if lo >= hi {
        return Ok(Vec::new());
    }
    let limit = if limit == 0 { usize::MAX } else { limit };
    let mut out = Vec::new();
    for item in trees.state.range(lo..hi).take(limit) {
        let (k, v) = item.map_err(LedgerError::storage("scan state"))?;
        let (_, key) = format::parse_state_key(&k)?;
        let r = StateRecord::decode(&k, &v)?;
        out.push((
            key,
            VersionedValue {
                value: r.value,
                version: r.version,
            },
        ));
    }
    Ok(out)
}
