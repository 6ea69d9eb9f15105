//! The write path: [`Ledger::commit`] and what it takes ([`BlockUpdates`]).
//!
//! Commit runs in two steps. `prepare` checks the block and its updates and
//! builds one sled batch per tree without writing anything (commits are
//! serialised, so reading the current state outside the transaction is
//! safe). `apply` writes the block, the batches and the new tip in one sled
//! transaction across all five trees, then flushes (fsync) once. sled
//! recovers a transaction all or nothing, so a kill at any moment leaves
//! either the whole block or none of it.
//!
//! Rules applied here (beyond what the validator decided):
//! - only VALID transactions change state and history; every transaction is
//!   in the block and in its filter byte;
//! - the tx index keeps the first occurrence of a tx id; a VALID duplicate is
//!   refused (the validator must have marked it `DUPLICATE_TXID`);
//! - writes of one transaction apply in order, then its metadata writes; a
//!   later transaction sees the earlier ones of the same block;
//! - an empty value is a delete (Fabric's `IsKVWriteDelete`), an empty
//!   metadata value removes the metadata;
//! - a value write keeps the key's metadata, a delete removes it; a metadata
//!   write on a key that has no value after the transaction's writes is
//!   ignored (metadata exists only beside a value); a metadata write sets the
//!   key's version, as in Fabric.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use qcss_proto::common::Block;
use qcss_proto::protos::TxValidationCode;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::ledger::blocks::{self, tx_header};
use crate::ledger::error::LedgerError;
use crate::ledger::format::{self, HistoryRecord, StateRecord};
use crate::ledger::{Ledger, Tip, TxLocation, Version};

/// What the validator decided about each transaction of a block, in block
/// order: one [`TxUpdate`] per envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockUpdates {
    /// One per envelope, in block order.
    pub txs: Vec<TxUpdate>,
}

/// One transaction's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxUpdate {
    /// The tx id from the envelope's channel header (empty if it has none);
    /// commit refuses the block if it differs.
    pub tx_id: String,
    /// The validation code; only `Valid` transactions change state.
    pub code: TxValidationCode,
    /// The channel header's timestamp (seconds, nanos); must match it too.
    pub timestamp: Option<(i64, i32)>,
    /// Value writes, applied in order.
    pub writes: Vec<Write>,
    /// Metadata writes, applied after the value writes.
    pub metadata_writes: Vec<MetadataWrite>,
}

/// A write of a key's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Namespace (chaincode name): not empty, no 0x00.
    pub ns: String,
    /// Key: not empty (may contain 0x00, as composite keys do).
    pub key: String,
    /// The new value; `None` or empty deletes the key.
    pub value: Option<Vec<u8>>,
}

/// A write of a key's endorsement metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataWrite {
    /// Namespace.
    pub ns: String,
    /// Key.
    pub key: String,
    /// The new metadata; `None` or empty removes it.
    pub value: Option<Vec<u8>>,
}

impl TxUpdate {
    /// An update for `envelope` with `code` and no writes, its tx id and
    /// timestamp read from the envelope (empty and `None` if unreadable).
    pub fn for_envelope(envelope: &[u8], code: TxValidationCode) -> TxUpdate {
        let header = tx_header(envelope);
        TxUpdate {
            tx_id: header.as_ref().map(|h| h.tx_id.clone()).unwrap_or_default(),
            code,
            timestamp: header.and_then(|h| h.timestamp),
            writes: Vec::new(),
            metadata_writes: Vec::new(),
        }
    }
}

impl Write {
    /// Sets `key` to `value`.
    pub fn put(ns: impl Into<String>, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Write {
        Write {
            ns: ns.into(),
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// Deletes `key`.
    pub fn delete(ns: impl Into<String>, key: impl Into<String>) -> Write {
        Write {
            ns: ns.into(),
            key: key.into(),
            value: None,
        }
    }
}

/// A checked block, ready to be written.
pub(crate) struct Prepared {
    number: u64,
    pub(crate) hash: [u8; 32],
    block: sled::IVec,
    filter: Vec<u8>,
    state: sled::Batch,
    history: sled::Batch,
    txids: sled::Batch,
    txs: usize,
    valid: usize,
}

impl Ledger {
    /// Commits one validated block atomically: the block (with `updates`'
    /// codes in `metadata[TRANSACTIONS_FILTER]`), the writes of its VALID
    /// transactions, their history, the tx index entry of every transaction
    /// with a tx id, and the new height; then flushes to disk once.
    ///
    /// Refuses, changing nothing, a block whose number is not the height,
    /// whose previous hash is not the last block's hash (empty for block 0),
    /// whose data hash is not the Merkle root of its envelopes, or whose
    /// updates do not match its envelopes (count, tx ids, timestamps, VALID
    /// duplicates, unstorable keys). See the module documentation for how
    /// writes apply.
    pub fn commit(&self, block: &Block, updates: &BlockUpdates) -> Result<(), LedgerError> {
        let _serial = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = self.store_failure() {
            return Err(LedgerError::Unavailable {
                reason: format!(
                    "the store failed ({}) and must be reopened before the next commit",
                    f.message
                ),
            });
        }
        let started = Instant::now();
        let result = self
            .prepare(block, updates, self.tip())
            .and_then(|p| self.apply(&p, false).map(|()| p));
        let prepared = match result {
            Ok(p) => p,
            Err(e) => {
                if e.is_store_failure() {
                    self.note_store_failure(&e);
                }
                return Err(e);
            }
        };
        tracing::debug!(
            block = prepared.number,
            txs = prepared.txs,
            valid = prepared.valid,
            elapsed_us = started.elapsed().as_micros() as u64,
            "block committed"
        );
        Ok(())
    }

    pub(crate) fn prepare(
        &self,
        block: &Block,
        updates: &BlockUpdates,
        tip: Tip,
    ) -> Result<Prepared, LedgerError> {
        let (header, envelopes) = blocks::check_next(block, &tip)?;
        let number = header.number;
        if envelopes.len() != updates.txs.len() {
            return Err(LedgerError::UpdateCountMismatch {
                number,
                txs: envelopes.len(),
                updates: updates.txs.len(),
            });
        }
        if u32::try_from(envelopes.len()).is_err() {
            return Err(LedgerError::TooManyTransactions {
                number,
                txs: envelopes.len(),
            });
        }
        let mut b = BlockBuilder {
            ledger: self,
            trees: self.trees()?,
            number,
            overlay: BTreeMap::new(),
            history: sled::Batch::default(),
            txids: sled::Batch::default(),
            seen: HashMap::new(),
            valid: 0,
        };
        let mut filter = Vec::with_capacity(envelopes.len());
        for (i, (envelope, up)) in envelopes.iter().zip(&updates.txs).enumerate() {
            // Fits: the count was checked against u32 above.
            let position = i as u32;
            b.add_tx(position, envelope, up)?;
            filter.push(format::code_byte(up.code));
        }
        let mut state = sled::Batch::default();
        for (k, r) in b.overlay {
            match r {
                Some(r) => state.insert(k, r.encode()),
                None => state.remove(k),
            }
        }
        Ok(Prepared {
            number,
            hash: qcss_proto::hash::block_header_hash(header),
            block: blocks::committed_bytes(block, header, filter.clone()).into(),
            filter,
            state,
            history: b.history,
            txids: b.txids,
            txs: envelopes.len(),
            valid: b.valid,
        })
    }

    /// Writes the state, history and tx-index changes of a prepared block
    /// whose block is already stored (a rebuild), in one transaction; no
    /// flush (the rebuild flushes once at its end).
    pub(crate) fn apply_derived(&self, p: &Prepared) -> Result<(), LedgerError> {
        let t = &self.trees()?;
        (&t.state, &t.history, &t.txids)
            .transaction(|(state, history, txids)| {
                state.apply_batch(&p.state)?;
                history.apply_batch(&p.history)?;
                txids.apply_batch(&p.txids)?;
                Ok::<(), ConflictableTransactionError<LedgerError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(source) => LedgerError::Storage {
                    op: "rebuild transaction",
                    source,
                },
            })
    }

    /// Writes a prepared block in one transaction, then flushes. With
    /// `abort_midway` (tests only) the transaction is aborted after the block,
    /// state and history were staged, to show that nothing of it lands.
    pub(crate) fn apply(&self, p: &Prepared, abort_midway: bool) -> Result<(), LedgerError> {
        let t = &self.trees()?;
        let height = (p.number + 1).to_be_bytes();
        let mut tip = self.tip.write().unwrap_or_else(|e| e.into_inner());
        (
            &t.blocks, &t.state, &t.history, &t.txids, &t.meta, &t.filters,
        )
            .transaction(|(blocks, state, history, txids, meta, filters)| {
                blocks.insert(&p.number.to_be_bytes()[..], p.block.clone())?;
                filters.insert(&p.number.to_be_bytes()[..], p.filter.as_slice())?;
                state.apply_batch(&p.state)?;
                history.apply_batch(&p.history)?;
                if abort_midway {
                    return Err(ConflictableTransactionError::Abort(LedgerError::Storage {
                        op: "commit transaction (simulated crash)",
                        source: sled::Error::Unsupported("aborted midway on purpose".into()),
                    }));
                }
                txids.apply_batch(&p.txids)?;
                meta.insert(format::HEIGHT_KEY, &height[..])?;
                meta.insert(format::LAST_HASH_KEY, &p.hash[..])?;
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(source) => LedgerError::Storage {
                    op: "commit transaction",
                    source,
                },
            })?;
        *tip = Tip {
            height: p.number + 1,
            last_hash: Some(p.hash),
        };
        drop(tip);
        self.db()?.flush().map_err(LedgerError::storage("flush"))?;
        Ok(())
    }
}

/// Accumulates one block's changes.
struct BlockBuilder<'a> {
    ledger: &'a Ledger,
    trees: crate::ledger::Trees,
    number: u64,
    /// New state records by state key (`None` = deleted), so that later
    /// transactions of the block see earlier ones.
    overlay: BTreeMap<Vec<u8>, Option<StateRecord>>,
    history: sled::Batch,
    txids: sled::Batch,
    /// Tx ids of this block → first position.
    seen: HashMap<&'a str, u32>,
    valid: usize,
}

impl<'a> BlockBuilder<'a> {
    fn add_tx(
        &mut self,
        position: u32,
        envelope: &[u8],
        up: &'a TxUpdate,
    ) -> Result<(), LedgerError> {
        let number = self.number;
        let valid = up.code == TxValidationCode::Valid;
        let mismatch = |reason: String| LedgerError::TxHeaderMismatch {
            number,
            position,
            tx_id: up.tx_id.clone(),
            reason,
        };
        match tx_header(envelope) {
            Some(h) => {
                if h.tx_id != up.tx_id {
                    return Err(mismatch(format!("the envelope's tx id is {:?}", h.tx_id)));
                }
                if h.timestamp != up.timestamp {
                    return Err(mismatch(format!(
                        "timestamp {:?} differs from the envelope's {:?}",
                        up.timestamp, h.timestamp
                    )));
                }
            }
            None if valid => return Err(mismatch("VALID but the envelope is unreadable".into())),
            None if !up.tx_id.is_empty() || up.timestamp.is_some() => {
                return Err(mismatch(
                    "names a tx id or timestamp but the envelope is unreadable".into(),
                ));
            }
            None => {}
        }
        if !up.tx_id.is_empty() {
            self.index_tx(position, up, valid)?;
        }
        if !valid {
            return Ok(());
        }
        self.valid += 1;
        let version = Version {
            block: number,
            tx: position,
        };
        for w in &up.writes {
            self.check_key(position, up, &w.ns, &w.key)?;
            let k = format::state_key(&w.ns, &w.key);
            let value = w.value.clone().filter(|v| !v.is_empty());
            let is_delete = value.is_none();
            let record = match &value {
                Some(v) => Some(StateRecord {
                    version,
                    metadata: self.current(&k)?.and_then(|r| r.metadata),
                    value: v.clone(),
                }),
                None => None,
            };
            self.overlay.insert(k, record);
            let h = HistoryRecord {
                tx_id: up.tx_id.clone(),
                is_delete,
                timestamp: up.timestamp,
                value: value.unwrap_or_default(),
            };
            self.history
                .insert(format::history_key(&w.ns, &w.key, version), h.encode());
        }
        for m in &up.metadata_writes {
            self.check_key(position, up, &m.ns, &m.key)?;
            let k = format::state_key(&m.ns, &m.key);
            match self.current(&k)? {
                Some(mut r) => {
                    r.metadata = m.value.clone().filter(|v| !v.is_empty());
                    r.version = version;
                    self.overlay.insert(k, Some(r));
                }
                None => tracing::debug!(
                    block = number,
                    position,
                    ns = %m.ns,
                    "metadata write on a key without a value ignored"
                ),
            }
        }
        Ok(())
    }

    /// Adds the tx-index entry unless the tx id is already known.
    fn index_tx(
        &mut self,
        position: u32,
        up: &'a TxUpdate,
        valid: bool,
    ) -> Result<(), LedgerError> {
        let earlier = match self.seen.get(up.tx_id.as_str()) {
            Some(p) => Some((self.number, *p)),
            None => self.ledger.tx(&up.tx_id)?.map(|l| (l.block, l.position)),
        };
        match earlier {
            Some((first_block, first_position)) if valid => Err(LedgerError::DuplicateValidTx {
                number: self.number,
                position,
                tx_id: up.tx_id.clone(),
                first_block,
                first_position,
            }),
            // A later duplicate: the first occurrence keeps the index entry.
            Some(_) => Ok(()),
            None => {
                self.seen.insert(&up.tx_id, position);
                let loc = TxLocation {
                    block: self.number,
                    position,
                    code: up.code,
                };
                self.txids
                    .insert(up.tx_id.as_bytes(), &format::encode_tx_location(&loc)[..]);
                Ok(())
            }
        }
    }

    fn check_key(
        &self,
        position: u32,
        up: &TxUpdate,
        ns: &str,
        key: &str,
    ) -> Result<(), LedgerError> {
        let reason = format::namespace_problem(ns).or(key.is_empty().then_some("empty key"));
        match reason {
            Some(reason) => Err(LedgerError::InvalidWrite {
                number: self.number,
                position,
                tx_id: up.tx_id.clone(),
                ns: ns.to_owned(),
                key: key.to_owned(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// The record of state key `k` as of the transactions added so far.
    fn current(&self, k: &[u8]) -> Result<Option<StateRecord>, LedgerError> {
        if let Some(r) = self.overlay.get(k) {
            return Ok(r.clone());
        }
        let v = self
            .trees
            .state
            .get(k)
            .map_err(LedgerError::storage("read state"))?;
        v.map(|v| StateRecord::decode(k, &v)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::testutil::{ChainBuilder, TestTx};

    fn txs(n: u64) -> Vec<TestTx> {
        vec![
            TestTx::new(format!("t{n}a")).put("cc", "k", format!("{n}").as_bytes()),
            TestTx::new(format!("t{n}b"))
                .put("cc", &format!("k{n}"), b"x")
                .metadata("cc", "k", Some(b"m")),
        ]
    }

    /// A transaction aborted after the block, state and history were staged
    /// (the in-process stand-in for a crash mid-commit) leaves nothing, in
    /// memory or after reopening; the same block then commits normally.
    #[test]
    fn a_commit_interrupted_midway_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let mut chain = ChainBuilder::new();
        let (b, u) = chain.next(&txs(0));
        ledger.commit(&b, &u).unwrap();
        let before = (
            ledger.height(),
            ledger.last_block_hash(),
            ledger.state_hash().unwrap(),
        );

        let (b, u) = chain.next(&txs(1));
        let prepared = ledger.prepare(&b, &u, ledger.tip()).unwrap();
        assert!(ledger.apply(&prepared, true).is_err());
        let check = |l: &Ledger| {
            assert_eq!(
                (l.height(), l.last_block_hash(), l.state_hash().unwrap()),
                before
            );
            assert_eq!(l.block_bytes(1).unwrap(), None);
            assert_eq!(l.tx("t1a").unwrap(), None);
            assert_eq!(l.history("cc", "k").unwrap().len(), 1);
            assert!(l.verify().unwrap().is_consistent());
        };
        check(&ledger);
        drop(ledger);
        let ledger = Ledger::open(dir.path()).unwrap();
        check(&ledger);
        ledger.commit(&b, &u).unwrap();
        assert_eq!(ledger.height(), 2);
        assert_eq!(ledger.get_state("cc", "k").unwrap().unwrap().value, b"1");
    }

    /// Preparing a block reads but never writes.
    #[test]
    fn prepare_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let (b, u) = ChainBuilder::new().next(&txs(0));
        let p = ledger.prepare(&b, &u, ledger.tip()).unwrap();
        assert_eq!((p.txs, p.valid), (2, 2));
        assert_eq!(ledger.height(), 0);
        let trees = ledger.trees().unwrap();
        assert!(trees.state.is_empty() && trees.blocks.is_empty());
    }

    /// Dropping the ledger after any number of commits (no clean shutdown
    /// beyond what commit did) and reopening gives the same ledger.
    #[test]
    fn drop_and_reopen_after_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut chain = ChainBuilder::new();
        for n in 0..6 {
            let ledger = Ledger::open(dir.path()).unwrap();
            assert_eq!(ledger.height(), n);
            let (b, u) = chain.next(&txs(n));
            ledger.commit(&b, &u).unwrap();
            let hash = ledger.state_hash().unwrap();
            drop(ledger);
            let ledger = Ledger::open(dir.path()).unwrap();
            assert_eq!(ledger.state_hash().unwrap(), hash);
            assert!(ledger.verify().unwrap().is_consistent());
        }
    }

    #[test]
    fn committed_bytes_equal_prost_encoding() {
        let (mut b, _) = ChainBuilder::new().next(&txs(0));
        let header = b.header.clone().unwrap();
        let bytes = blocks::committed_bytes(&b, &header, vec![0, 11]);
        b.metadata.as_mut().unwrap().metadata[2] = vec![0, 11];
        assert_eq!(bytes, prost::Message::encode_to_vec(&b));
    }
}
