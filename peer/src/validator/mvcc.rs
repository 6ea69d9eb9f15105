//! The checks that depend on earlier transactions of the same block, run in
//! block order: key-level (state-based) endorsement policies and MVCC.
//!
//! [`BlockState`] is committed state plus the writes of the transactions
//! already found VALID in this block, applied by the same rules as
//! `Ledger::commit` (value writes keep a key's metadata, a delete removes
//! it, a metadata write on a key without a value is ignored, value and
//! metadata writes both set the version to (block, position)). So a
//! transaction is judged against exactly the state the ledger will have
//! when it is applied.
//!
//! - **Key-level policies**: every key a transaction writes (value or
//!   metadata) whose current metadata holds a policy must have that policy
//!   satisfied by the transaction's endorsers → else
//!   `ENDORSEMENT_POLICY_FAILURE`. This is *in addition to* the chaincode
//!   policy (checked in `endorsement.rs`); Fabric instead lets a key-level
//!   policy replace the chaincode policy for that key.
//! - **Reads**: each read version must be the current version (`None`: the
//!   key must not exist) → else `MVCC_READ_CONFLICT`.
//! - **Range reads**: the range is re-scanned and must give the same keys
//!   with the same versions → else `PHANTOM_READ_CONFLICT`. A scan that did
//!   not run to its end (`itr_exhausted` false) is rechecked up to and
//!   including the last key it read, as Fabric does.
//!
//! Per namespace, reads are checked before range reads (Fabric's order).

use std::collections::{BTreeMap, HashSet};

use qcss_network::channel::Channel;
use qcss_network::policy::SignerInfo;
use qcss_proto::protos::TxValidationCode as Code;

use crate::ledger::{LedgerError, Version};
use crate::validator::Rejection;
use crate::validator::policy::decode_key_policy;
use crate::validator::rwset::{KeyRead, RangeRead, ReadWriteSet};
use crate::validator::state::CommittedState;

/// A key's metadata as far as this block knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Meta {
    /// Unchanged by this block: whatever is committed.
    Committed,
    /// Set (or removed, `None`) by this block.
    Set(Option<Vec<u8>>),
}

/// A key written by this block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    version: Version,
    meta: Meta,
}

/// Committed state plus this block's VALID writes so far.
pub(crate) struct BlockState<'s, S: CommittedState + ?Sized> {
    committed: &'s S,
    number: u64,
    /// `(ns, key)` → the record after this block's writes; `None` = deleted.
    overlay: BTreeMap<(String, String), Option<Record>>,
}

impl<'s, S: CommittedState + ?Sized> BlockState<'s, S> {
    /// The state before block `number`.
    pub(crate) fn new(committed: &'s S, number: u64) -> Self {
        BlockState {
            committed,
            number,
            overlay: BTreeMap::new(),
        }
    }

    /// Whether `tx_id` is committed already.
    pub(crate) fn is_committed(&self, tx_id: &str) -> Result<bool, LedgerError> {
        self.committed.is_committed(tx_id)
    }

    fn overlay(&self, ns: &str, key: &str) -> Option<&Option<Record>> {
        // Borrowed lookups on a tuple of Strings need owned keys; writes are
        // few per block, so this is cheap next to a signature.
        self.overlay.get(&(ns.to_owned(), key.to_owned()))
    }

    /// The current version of a key.
    fn version(&self, ns: &str, key: &str) -> Result<Option<Version>, LedgerError> {
        match self.overlay(ns, key) {
            Some(r) => Ok(r.as_ref().map(|r| r.version)),
            None => self.committed.version(ns, key),
        }
    }

    /// The current metadata (key-level policy) of a key.
    fn metadata(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        match self.overlay(ns, key) {
            Some(None) => Ok(None),
            Some(Some(Record {
                meta: Meta::Set(m), ..
            })) => Ok(m.clone()),
            Some(Some(Record {
                meta: Meta::Committed,
                ..
            }))
            | None => self.committed.key_metadata(ns, key),
        }
    }

    /// Key-level policies of every key `rwset` writes, against `endorsers`.
    pub(crate) fn check_key_policies(
        &self,
        channel: &Channel,
        rwset: &ReadWriteSet,
        endorsers: &[SignerInfo],
    ) -> Result<Result<(), Rejection>, LedgerError> {
        let keys = rwset
            .writes()
            .map(|w| (&w.ns, &w.key))
            .chain(rwset.metadata_writes().map(|m| (&m.ns, &m.key)));
        let mut checked = HashSet::new();
        for (ns, key) in keys {
            if !checked.insert((ns, key)) {
                continue;
            }
            let Some(bytes) = self.metadata(ns, key)? else {
                continue;
            };
            let ok = match decode_key_policy(&bytes) {
                Some(policy) => channel.evaluate(&policy, endorsers),
                None => false,
            };
            if !ok {
                return Ok(Err(Rejection::new(
                    Code::EndorsementPolicyFailure,
                    format!(
                        "{} valid endorsement(s) do not satisfy the key-level policy {:?} of {ns:?}/{key:?}",
                        endorsers.len(),
                        String::from_utf8_lossy(&bytes)
                    ),
                )));
            }
        }
        Ok(Ok(()))
    }

    /// MVCC: reads and range reads of `rwset` against the current state.
    pub(crate) fn check_reads(
        &self,
        rwset: &ReadWriteSet,
    ) -> Result<Result<(), Rejection>, LedgerError> {
        for ns in &rwset.namespaces {
            for r in &ns.reads {
                if !self.read_is_current(&ns.ns, r)? {
                    return Ok(Err(Rejection::new(
                        Code::MvccReadConflict,
                        format!("{:?}/{:?} changed since it was read", ns.ns, r.key),
                    )));
                }
            }
            for rr in &ns.range_reads {
                if !self.range_is_current(&ns.ns, rr)? {
                    return Ok(Err(Rejection::new(
                        Code::PhantomReadConflict,
                        format!(
                            "range [{:?}, {:?}) of {:?} changed since it was scanned",
                            rr.start, rr.end, ns.ns
                        ),
                    )));
                }
            }
        }
        Ok(Ok(()))
    }

    fn read_is_current(&self, ns: &str, r: &KeyRead) -> Result<bool, LedgerError> {
        Ok(match (r.version, self.version(ns, &r.key)?) {
            (None, None) => true,
            (Some(read), Some(now)) => read.is(now),
            _ => false,
        })
    }

    fn range_is_current(&self, ns: &str, rr: &RangeRead) -> Result<bool, LedgerError> {
        // The exclusive upper bound to re-scan: the range's end, or just past
        // the last key read if the scan stopped early ("" = no bound).
        let end = if rr.itr_exhausted {
            rr.end.clone()
        } else {
            let Some(last) = rr.reads.last() else {
                // Stopped before reading anything: nothing was observed.
                return Ok(true);
            };
            let past_last = format!("{}\0", last.key);
            if !rr.end.is_empty() && rr.end < past_last {
                rr.end.clone()
            } else {
                past_last
            }
        };
        let now = self.scan(ns, &rr.start, &end, rr.reads.len() + 1)?;
        Ok(now.len() == rr.reads.len()
            && now
                .iter()
                .zip(&rr.reads)
                .all(|((k, v), r)| *k == r.key && r.version.is_some_and(|rv| rv.is(*v))))
    }

    /// The first `want` keys of `ns` in `[start, end)` (`end` "" = no bound)
    /// with their versions, as of committed state plus this block's writes.
    fn scan(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        want: usize,
    ) -> Result<Vec<(String, Version)>, LedgerError> {
        let in_range = |k: &str| k >= start && (end.is_empty() || k < end);
        let changes: Vec<(&String, &Option<Record>)> = self
            .overlay
            .range((ns.to_owned(), start.to_owned())..)
            .take_while(|((n, k), _)| n == ns && in_range(k))
            .map(|((_, k), r)| (k, r))
            .collect();
        // Each change hides at most one committed key, so `want + changes`
        // committed keys always cover the first `want` merged ones.
        let limit = want + changes.len();
        let committed = self.committed.range(ns, start, end, limit)?;
        let truncated_after = (committed.len() >= limit)
            .then(|| committed.last().map(|(k, _)| k.clone()))
            .flatten();
        let mut merged: BTreeMap<String, Version> = committed.into_iter().collect();
        for (k, r) in changes {
            match r {
                Some(r) => merged.insert(k.clone(), r.version),
                None => merged.remove(k),
            };
        }
        Ok(merged
            .into_iter()
            .filter(|(k, _)| truncated_after.as_ref().is_none_or(|last| k <= last))
            .take(want)
            .collect())
    }

    /// Applies the writes of the VALID transaction at `position`, by the
    /// ledger's rules: value writes in order, then metadata writes.
    pub(crate) fn apply(&mut self, position: u32, rwset: &ReadWriteSet) -> Result<(), LedgerError> {
        let version = Version {
            block: self.number,
            tx: position,
        };
        for w in rwset.writes() {
            let k = (w.ns.clone(), w.key.clone());
            let record = match w.value.as_deref() {
                Some(v) if !v.is_empty() => {
                    let meta = match self.overlay.get(&k) {
                        Some(Some(r)) => r.meta.clone(),
                        Some(None) => Meta::Set(None),
                        None => Meta::Committed,
                    };
                    Some(Record { version, meta })
                }
                _ => None,
            };
            self.overlay.insert(k, record);
        }
        for m in rwset.metadata_writes() {
            if self.version(&m.ns, &m.key)?.is_none() {
                continue; // metadata exists only beside a value
            }
            let meta = Meta::Set(m.value.clone().filter(|v| !v.is_empty()));
            self.overlay.insert(
                (m.ns.clone(), m.key.clone()),
                Some(Record { version, meta }),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{MetadataWrite, Write};
    use crate::validator::rwset::{NsReadWriteSet, ReadVersion};
    use crate::validator::state::MemoryState;

    fn v(block: u64, tx: u32) -> Version {
        Version { block, tx }
    }

    fn rw(writes: Vec<Write>, metadata_writes: Vec<MetadataWrite>) -> ReadWriteSet {
        ReadWriteSet {
            namespaces: vec![NsReadWriteSet {
                ns: "cc".into(),
                writes,
                metadata_writes,
                ..Default::default()
            }],
        }
    }

    fn md(key: &str, value: Option<&[u8]>) -> MetadataWrite {
        MetadataWrite {
            ns: "cc".into(),
            key: key.into(),
            value: value.map(<[u8]>::to_vec),
        }
    }

    /// The overlay follows the ledger's rules for metadata.
    #[test]
    fn overlay_keeps_and_drops_metadata_like_the_ledger() {
        let mut committed = MemoryState::new();
        committed
            .put("cc", "a", v(1, 0))
            .set_metadata("cc", "a", Some(b"A".to_vec()))
            .put("cc", "b", v(1, 1))
            .set_metadata("cc", "b", Some(b"B".to_vec()));
        let mut s = BlockState::new(&committed, 5);
        s.apply(
            0,
            &rw(
                vec![
                    Write::put("cc", "a", b"x"),
                    Write::delete("cc", "b"),
                    Write::put("cc", "b", b"again"),
                ],
                vec![md("nokey", Some(b"N")), md("c", Some(b"C"))],
            ),
        )
        .unwrap();
        assert_eq!(s.metadata("cc", "a").unwrap(), Some(b"A".to_vec()));
        assert_eq!(s.version("cc", "a").unwrap(), Some(v(5, 0)));
        assert_eq!(s.metadata("cc", "b").unwrap(), None);
        assert_eq!(s.version("cc", "nokey").unwrap(), None);
        assert_eq!(s.metadata("cc", "nokey").unwrap(), None);
        s.apply(
            1,
            &rw(vec![Write::put("cc", "c", b"1")], vec![md("c", Some(b"C"))]),
        )
        .unwrap();
        assert_eq!(s.metadata("cc", "c").unwrap(), Some(b"C".to_vec()));
        s.apply(2, &rw(vec![], vec![md("a", None)])).unwrap();
        assert_eq!(s.metadata("cc", "a").unwrap(), None);
        assert_eq!(s.version("cc", "a").unwrap(), Some(v(5, 2)));
    }

    #[test]
    fn scans_merge_committed_state_and_block_writes() {
        let mut committed = MemoryState::new();
        for (i, k) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            committed.put("cc", k, v(1, i as u32));
        }
        committed.put("other", "a", v(1, 9));
        let mut s = BlockState::new(&committed, 2);
        s.apply(
            0,
            &rw(
                vec![
                    Write::delete("cc", "a"),
                    Write::delete("cc", "b"),
                    Write::put("cc", "bb", b"1"),
                ],
                vec![],
            ),
        )
        .unwrap();
        let keys = |start, end, want| -> Vec<String> {
            s.scan("cc", start, end, want)
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(keys("", "", 10), ["bb", "c", "d", "e"]);
        assert_eq!(keys("", "", 2), ["bb", "c"]);
        assert_eq!(keys("b", "d", 10), ["bb", "c"]);
        assert_eq!(keys("c", "c\0", 10), ["c"]);
        assert_eq!(
            s.scan("cc", "", "", 1).unwrap(),
            vec![("bb".into(), v(2, 0))]
        );
    }

    #[test]
    fn stopped_scans_are_rechecked_up_to_their_last_key() {
        let mut committed = MemoryState::new();
        committed.put("cc", "a", v(1, 0)).put("cc", "c", v(1, 1));
        let s = BlockState::new(&committed, 2);
        let read = |k: &str, tx| KeyRead {
            key: k.into(),
            version: Some(ReadVersion { block: 1, tx }),
        };
        let rr = |exhausted, reads| RangeRead {
            start: "a".into(),
            end: "z".into(),
            itr_exhausted: exhausted,
            reads,
        };
        // Saw only "a" and stopped: "c" beyond it is not a phantom.
        assert!(
            s.range_is_current("cc", &rr(false, vec![read("a", 0)]))
                .unwrap()
        );
        // Claimed to have seen everything: "c" is a phantom.
        assert!(
            !s.range_is_current("cc", &rr(true, vec![read("a", 0)]))
                .unwrap()
        );
        assert!(
            s.range_is_current("cc", &rr(true, vec![read("a", 0), read("c", 1)]))
                .unwrap()
        );
        // Same keys, other version.
        assert!(
            !s.range_is_current("cc", &rr(true, vec![read("a", 0), read("c", 0)]))
                .unwrap()
        );
        assert!(s.range_is_current("cc", &rr(false, vec![])).unwrap());
    }
}
