//! [`CommittedState`]: what the validator reads of the ledger — key
//! versions, range scans, key-level policies and the tx index — as a trait,
//! so tests can validate against the real sled ledger or a [`MemoryState`].
//!
//! Implementations: [`LedgerSnapshot`] (the ledger under one
//! [`StateView`], what `commit_block` uses), [`Ledger`] itself (no snapshot:
//! only when nothing commits meanwhile), and [`MemoryState`].

use std::collections::{BTreeMap, HashSet};

use crate::ledger::{Ledger, LedgerError, StateView, Version};

/// Read access to committed state and the tx index, as of one block height.
/// The validator never writes through it.
pub trait CommittedState {
    /// The version of `key` in namespace `ns`; `None` if it does not exist.
    fn version(&self, ns: &str, key: &str) -> Result<Option<Version>, LedgerError>;

    /// The keys of `ns` in `[start, end)` with their versions, in byte order,
    /// at most `limit` of them (`0` = no limit); `end == ""` means to the end
    /// of the namespace.
    fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, Version)>, LedgerError>;

    /// The metadata stored beside `key` (its key-level endorsement policy,
    /// see [`crate::validator::decode_key_policy`]); `None` if none.
    fn key_metadata(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, LedgerError>;

    /// Whether a transaction with this id was already committed (with any
    /// validation code: the ledger indexes the first occurrence).
    fn is_committed(&self, tx_id: &str) -> Result<bool, LedgerError>;
}

/// The ledger under one [`StateView`]: no block is applied while it lives.
/// Drop it before calling [`Ledger::commit`] (the view holds the lock commit
/// needs).
pub struct LedgerSnapshot<'a> {
    ledger: &'a Ledger,
    view: StateView<'a>,
}

impl<'a> LedgerSnapshot<'a> {
    /// Takes a snapshot of `ledger`.
    pub fn new(ledger: &'a Ledger) -> Self {
        LedgerSnapshot {
            ledger,
            view: ledger.state_view(),
        }
    }

    /// The height the snapshot sees (the number of the next block).
    pub fn height(&self) -> u64 {
        self.view.height()
    }
}

impl CommittedState for LedgerSnapshot<'_> {
    fn version(&self, ns: &str, key: &str) -> Result<Option<Version>, LedgerError> {
        Ok(self.view.get_state(ns, key)?.map(|v| v.version))
    }

    fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, Version)>, LedgerError> {
        Ok(self
            .view
            .range(ns, start, end, limit)?
            .into_iter()
            .map(|(k, v)| (k, v.version))
            .collect())
    }

    fn key_metadata(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        self.view.key_metadata(ns, key)
    }

    fn is_committed(&self, tx_id: &str) -> Result<bool, LedgerError> {
        // The tx index does not take the tip lock, so reading it under the
        // view cannot deadlock.
        Ok(self.ledger.tx(tx_id)?.is_some())
    }
}

impl CommittedState for Ledger {
    fn version(&self, ns: &str, key: &str) -> Result<Option<Version>, LedgerError> {
        Ok(self.get_state(ns, key)?.map(|v| v.version))
    }

    fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, Version)>, LedgerError> {
        Ok(Ledger::range(self, ns, start, end, limit)?
            .into_iter()
            .map(|(k, v)| (k, v.version))
            .collect())
    }

    fn key_metadata(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        Ledger::key_metadata(self, ns, key)
    }

    fn is_committed(&self, tx_id: &str) -> Result<bool, LedgerError> {
        Ok(self.tx(tx_id)?.is_some())
    }
}

/// Committed state in memory, for tests and tools: keys with versions and
/// metadata (values are not needed to validate), and committed tx ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    keys: BTreeMap<(String, String), MemoryRecord>,
    tx_ids: HashSet<String>,
}

/// A key of a [`MemoryState`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemoryRecord {
    version: Version,
    metadata: Option<Vec<u8>>,
}

impl MemoryState {
    /// Empty state.
    pub fn new() -> Self {
        MemoryState::default()
    }

    /// Sets `key` as written at `version` (keeping its metadata).
    pub fn put(&mut self, ns: &str, key: &str, version: Version) -> &mut Self {
        self.keys
            .entry((ns.to_owned(), key.to_owned()))
            .or_insert(MemoryRecord {
                version,
                metadata: None,
            })
            .version = version;
        self
    }

    /// Sets `key`'s metadata (the key must have been `put`; ignored
    /// otherwise, as the ledger does).
    pub fn set_metadata(&mut self, ns: &str, key: &str, metadata: Option<Vec<u8>>) -> &mut Self {
        if let Some(e) = self.keys.get_mut(&(ns.to_owned(), key.to_owned())) {
            e.metadata = metadata;
        }
        self
    }

    /// Removes `key`.
    pub fn delete(&mut self, ns: &str, key: &str) -> &mut Self {
        self.keys.remove(&(ns.to_owned(), key.to_owned()));
        self
    }

    /// Records `tx_id` as committed.
    pub fn add_tx(&mut self, tx_id: &str) -> &mut Self {
        self.tx_ids.insert(tx_id.to_owned());
        self
    }
}

impl CommittedState for MemoryState {
    fn version(&self, ns: &str, key: &str) -> Result<Option<Version>, LedgerError> {
        Ok(self
            .keys
            .get(&(ns.to_owned(), key.to_owned()))
            .map(|e| e.version))
    }

    fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, Version)>, LedgerError> {
        let limit = if limit == 0 { usize::MAX } else { limit };
        Ok(self
            .keys
            .range((ns.to_owned(), start.to_owned())..)
            .take_while(|((n, k), _)| n == ns && (end.is_empty() || k.as_str() < end))
            .take(limit)
            .map(|((_, k), r)| (k.clone(), r.version))
            .collect())
    }

    fn key_metadata(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self
            .keys
            .get(&(ns.to_owned(), key.to_owned()))
            .and_then(|e| e.metadata.clone()))
    }

    fn is_committed(&self, tx_id: &str) -> Result<bool, LedgerError> {
        Ok(self.tx_ids.contains(tx_id))
    }
}
