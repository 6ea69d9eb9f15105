//! [`Ledger::rebuild_derived`]: world state, history and the tx index are
//! derived from the blocks (their VALID transactions' writes, in order), so
//! when their records are damaged they are rebuilt from the blocks.
//!
//! The ledger does not parse read-write sets: the caller hands in the
//! function that reads a transaction's writes ([`WritesOf`]; the peer uses
//! `validator::committed_writes`). The validation codes are the ones stored
//! in each block. A `rebuilding` marker in `meta` is set before the trees are
//! cleared and removed after the last block, so a rebuild cut short by a
//! crash shows as state damage when the ledger opens (and runs again).

use qcss_proto::protos::TxValidationCode;

use crate::ledger::blocks::filter_of;
use crate::ledger::error::LedgerError;
use crate::ledger::format;
use crate::ledger::{BlockUpdates, Ledger, MetadataWrite, Tip, TxUpdate, Write};

/// Reads the value and metadata writes of a VALID transaction's envelope
/// (nothing for a config transaction); `Err` says why it cannot.
pub type WritesOf = dyn Fn(&[u8]) -> Result<(Vec<Write>, Vec<MetadataWrite>), String> + Sync;

impl Ledger {
    /// Clears world state, history and the tx index and replays every
    /// block's VALID transactions into them, as [`Ledger::commit`] did.
    /// Refused while a block is damaged (repair it first). Commits and
    /// state views (endorsement, validation) wait while it runs, so nothing
    /// reads a half-built state; clears the recorded state damage when done.
    pub fn rebuild_derived(&self, writes_of: &WritesOf) -> Result<(), LedgerError> {
        let r = self.rebuild_derived_inner(writes_of);
        self.note_if_store_failure(r)
    }

    fn rebuild_derived_inner(&self, writes_of: &WritesOf) -> Result<(), LedgerError> {
        let _serial = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        let tip_guard = self.tip.write().unwrap_or_else(|e| e.into_inner());
        let tip = *tip_guard;
        let trees = self.trees()?;
        let storage = LedgerError::storage;
        trees
            .meta
            .insert(format::REBUILDING_KEY, &[1u8][..])
            .map_err(storage("mark rebuild"))?;
        self.db()?.flush().map_err(storage("flush"))?;
        for t in [&trees.state, &trees.history, &trees.txids] {
            t.clear().map_err(storage("clear derived trees"))?;
        }
        let mut last_hash = None;
        for n in 0..tip.height {
            let block = self
                .checked_block_at(n, &tip)?
                .map(|(_, b)| b)
                .ok_or_else(|| LedgerError::CorruptBlock {
                    number: n,
                    reason: "missing from the store".into(),
                })?;
            let envelopes = block.data.as_ref().map_or(&[][..], |d| d.data.as_slice());
            let filter = filter_of(&block);
            let mut updates = BlockUpdates::default();
            for (pos, env) in envelopes.iter().enumerate() {
                let code = filter
                    .get(pos)
                    .and_then(|b| format::code_from_byte(*b))
                    .ok_or_else(|| LedgerError::CorruptBlock {
                        number: n,
                        reason: format!("transaction {pos} has no known validation code"),
                    })?;
                let mut up = TxUpdate::for_envelope(env, code);
                if code == TxValidationCode::Valid {
                    let (w, m) = writes_of(env).map_err(|why| LedgerError::CorruptBlock {
                        number: n,
                        reason: format!("VALID transaction {pos}: {why}"),
                    })?;
                    up.writes = w;
                    up.metadata_writes = m;
                }
                updates.txs.push(up);
            }
            let p = self.prepare(
                &block,
                &updates,
                Tip {
                    height: n,
                    last_hash,
                },
            )?;
            self.apply_derived(&p)?;
            last_hash = Some(p.hash);
        }
        trees
            .meta
            .remove(format::REBUILDING_KEY)
            .map_err(storage("unmark rebuild"))?;
        self.db()?.flush().map_err(storage("flush"))?;
        drop(tip_guard);
        self.clear_state_damage();
        tracing::info!(
            blocks = tip.height,
            "world state, history and tx index rebuilt from the blocks"
        );
        Ok(())
    }

    /// Records state damage if a rebuild was cut short (on open).
    pub(crate) fn check_rebuild_marker(&self) -> Result<(), LedgerError> {
        let marked = self
            .trees()?
            .meta
            .contains_key(format::REBUILDING_KEY)
            .map_err(LedgerError::storage("read meta"))?;
        if marked {
            self.mark_state_corrupt("a rebuild of world state, history and tx index was cut short");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RawTree;
    use crate::ledger::testutil::{ChainBuilder, TestTx};

    #[test]
    fn rebuild_gives_back_the_same_state_history_and_index() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let mut c = ChainBuilder::new();
        // The writes of every transaction, by envelope, as a parser would read them.
        let mut by_env = std::collections::HashMap::new();
        let blocks = [
            vec![
                TestTx::new("a").put("cc", "k1", b"1"),
                TestTx::new("b").put("cc", "k2", b"2"),
            ],
            vec![
                TestTx::new("c").delete("cc", "k1"),
                TestTx::new("a").code(TxValidationCode::DuplicateTxid),
                TestTx::new("d")
                    .put("cc", "k2", b"3")
                    .metadata("cc", "k2", Some(b"policy")),
            ],
            vec![
                TestTx::new("e")
                    .code(TxValidationCode::MvccReadConflict)
                    .put("cc", "k3", b"x"),
            ],
        ];
        for txs in &blocks {
            for t in txs {
                let u = t.update();
                by_env.insert(t.envelope(), (u.writes.clone(), u.metadata_writes.clone()));
            }
            let (b, u) = c.next(txs);
            ledger.commit(&b, &u).unwrap();
        }
        let state = ledger.state_hash().unwrap();
        let history = ledger.history("cc", "k2").unwrap();
        let loc = ledger.tx("a").unwrap();
        ledger
            .tamper_raw(RawTree::State, &format::state_key("cc", "k2"), Some(&[7]))
            .unwrap();
        ledger.tamper_raw(RawTree::TxIds, b"d", None).unwrap();
        assert!(ledger.get_state("cc", "k2").is_err());
        assert!(ledger.integrity().state.is_some());
        let writes_of = move |env: &[u8]| {
            by_env
                .get(env)
                .cloned()
                .ok_or_else(|| "unknown envelope".to_owned())
        };
        ledger.rebuild_derived(&writes_of).unwrap();
        assert!(ledger.integrity().is_ok());
        assert_eq!(ledger.state_hash().unwrap(), state);
        assert_eq!(ledger.history("cc", "k2").unwrap(), history);
        assert_eq!(ledger.tx("a").unwrap(), loc);
        assert!(ledger.tx("d").unwrap().is_some());
        assert!(ledger.verify().unwrap().is_consistent());
    }

    #[test]
    fn a_rebuild_cut_short_is_damage_on_open_and_a_damaged_block_stops_it() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let mut c = ChainBuilder::new();
        for i in 0..3 {
            let (b, u) = c.next(&[TestTx::new(format!("t{i}"))]);
            ledger.commit(&b, &u).unwrap();
        }
        ledger
            .tamper_raw(RawTree::Blocks, &1u64.to_be_bytes(), Some(b"\xff"))
            .unwrap();
        let none = |_: &[u8]| Ok((Vec::new(), Vec::new()));
        let e = ledger.rebuild_derived(&none).unwrap_err();
        assert!(
            matches!(e, LedgerError::CorruptBlock { number: 1, .. }),
            "{e}"
        );
        drop(ledger);
        let ledger = Ledger::open(dir.path()).unwrap();
        let why = ledger.integrity().state.unwrap();
        assert!(why.contains("cut short"), "{why}");
    }
}
