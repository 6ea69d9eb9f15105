//! [`StateView`]: how the runtime reads the ledger. The peer implements it
//! over its committed world state (one namespace, one snapshot); the runtime
//! never writes through it: writes come back in the
//! [`Simulation`](crate::Simulation).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Simulation, simulation::Version};

/// A committed value and the version (block, tx) that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionedValue {
    /// The value bytes.
    pub value: Vec<u8>,
    /// The transaction that wrote it.
    pub version: Version,
}

/// The state view failed (I/O, corruption…): the peer's fault, not the contract's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StateError {
    /// What went wrong, from the peer.
    pub message: String,
}

impl StateError {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Read access to one namespace of committed state, as of one snapshot.
/// All calls during one invocation must see the same snapshot.
pub trait StateView {
    /// The committed value of `key`, if any.
    fn get(&self, key: &str) -> Result<Option<VersionedValue>, StateError>;

    /// Visits committed keys `start <= key < end` in ascending byte order
    /// (`end == ""` means no upper bound), calling `visit` for each until it
    /// returns `false`. The runtime stops after `limit + 1` rows or when the
    /// contract's fuel runs out, so implementations should iterate lazily.
    fn range(
        &self,
        start: &str,
        end: &str,
        visit: &mut dyn FnMut(String, VersionedValue) -> bool,
    ) -> Result<(), StateError>;

    /// The key-level endorsement policy of `key`, if one is set.
    fn key_policy(&self, key: &str) -> Result<Option<Vec<u8>>, StateError>;
}

/// An in-memory [`StateView`] for tests, benchmarks and tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    values: BTreeMap<String, VersionedValue>,
    policies: BTreeMap<String, Vec<u8>>,
}

impl MemoryState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` at `version`.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>, version: Version) {
        self.values.insert(
            key.into(),
            VersionedValue {
                value: value.into(),
                version,
            },
        );
    }

    /// Sets (or with `None` removes) `key`'s key-level endorsement policy.
    pub fn set_key_policy(&mut self, key: impl Into<String>, policy: Option<Vec<u8>>) {
        let key = key.into();
        match policy {
            Some(p) => self.policies.insert(key, p),
            None => self.policies.remove(&key),
        };
    }

    /// Commits a simulation's writes and key-policy writes at `version`
    /// (no MVCC check: that is the validator's job).
    pub fn apply(&mut self, sim: &Simulation, version: Version) {
        for w in &sim.writes {
            match &w.value {
                Some(v) => self.insert(w.key.clone(), v.clone(), version),
                None => {
                    self.values.remove(&w.key);
                }
            }
        }
        for w in &sim.key_policy_writes {
            self.set_key_policy(w.key.clone(), w.policy.clone());
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// `true` if there are no keys.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl StateView for MemoryState {
    fn get(&self, key: &str) -> Result<Option<VersionedValue>, StateError> {
        Ok(self.values.get(key).cloned())
    }

    fn range(
        &self,
        start: &str,
        end: &str,
        visit: &mut dyn FnMut(String, VersionedValue) -> bool,
    ) -> Result<(), StateError> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let upper = if end.is_empty() {
            Unbounded
        } else {
            Excluded(end)
        };
        if !end.is_empty() && end <= start {
            return Ok(());
        }
        for (k, v) in self.values.range::<str, _>((Included(start), upper)) {
            if !visit(k.clone(), v.clone()) {
                break;
            }
        }
        Ok(())
    }

    fn key_policy(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.policies.get(key).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(block: u64) -> Version {
        Version { block, tx: 0 }
    }

    #[test]
    fn memory_state_range_is_half_open_and_stoppable() {
        let mut s = MemoryState::new();
        for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
            s.insert(*k, *k, v(i as u64));
        }
        let collect = |start: &str, end: &str, max: usize| {
            let mut keys = Vec::new();
            s.range(start, end, &mut |k, _| {
                keys.push(k);
                keys.len() < max
            })
            .unwrap();
            keys
        };
        assert_eq!(collect("b", "d", 10), ["b", "c"]);
        assert_eq!(collect("b", "", 10), ["b", "c", "d"]);
        assert_eq!(collect("", "", 2), ["a", "b"]);
        assert!(collect("c", "b", 10).is_empty());
    }
}
