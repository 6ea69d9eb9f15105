//! Integrity of a running ledger: finding damaged blocks and state, and
//! repairing blocks.
//!
//! A block is damaged when its bytes do not decode, its header carries
//! another number, its data hash is not the Merkle root of its envelopes, it
//! has not one validation code per envelope, or its header hash is not what
//! the chain records for it: its successor's `previous_hash` (for the last
//! block, the last hash in `meta`). Damage is found
//! - on open: the last [`RECENT_ON_OPEN`] blocks and the tip;
//! - on read: every block read through [`Ledger::block_bytes`] /
//!   [`Ledger::block`] is checked, and a damaged one is never returned;
//! - by a scrub: [`Ledger::scrub_blocks`] and [`Ledger::scrub_state`], which
//!   the peer runs in the background at a bounded rate.
//!
//! Each damaged block is recorded once ([`Ledger::integrity`]) and reported to
//! the hook set with [`Ledger::on_corruption`]. [`Ledger::repair_block`]
//! stores a block fetched elsewhere (the ordering service) in place of a
//! damaged one, after checking that its header hash is the one the chain
//! records; repair runs from the highest damaged block down, so each block is
//! checked against a successor already known good. The validation codes come
//! from the `filters` tree (or, for blocks older than it, the tx index).
//!
//! Not detected: a flipped byte in a block's metadata outside the validation
//! codes (the orderer's signature), which no hash covers; the state hash has
//! no stored reference to compare with, so state damage is found only when a
//! record does not decode.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use prost::Message;
use qcss_proto::common::{Block, BlockHeader};
use qcss_proto::hash::{block_header_hash, merkle_root};
use sled::Transactional;
use sled::transaction::TransactionError;

use crate::ledger::blocks::{self, filter_of, tx_header};
use crate::ledger::error::LedgerError;
use crate::ledger::format::{self, StateRecord};
use crate::ledger::{Ledger, Tip, Trees};

/// Blocks below the tip checked when the ledger opens.
pub const RECENT_ON_OPEN: u64 = 32;

/// What the ledger knows to be damaged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Integrity {
    /// Damaged blocks and what is wrong with each.
    pub corrupt_blocks: BTreeMap<u64, String>,
    /// Why the state (or history, tx index) is damaged, if it is.
    pub state: Option<String>,
}

impl Integrity {
    /// Whether nothing is known to be damaged.
    pub fn is_ok(&self) -> bool {
        self.corrupt_blocks.is_empty() && self.state.is_none()
    }

    /// One line naming what is damaged (at most 10 block numbers).
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.corrupt_blocks.is_empty() {
            let n = self.corrupt_blocks.len();
            let list: Vec<String> = self
                .corrupt_blocks
                .iter()
                .take(10)
                .map(|(b, why)| format!("{b} ({why})"))
                .collect();
            let more = if n > 10 {
                format!(" and {} more", n - 10)
            } else {
                String::new()
            };
            parts.push(format!("{n} corrupt block(s): {}{more}", list.join(", ")));
        }
        if let Some(s) = &self.state {
            parts.push(format!("state corrupt: {s}"));
        }
        parts.join("; ")
    }
}

/// What one call of [`Ledger::scrub_blocks`] or [`Ledger::scrub_state`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// Where the next call should start (a block number, or the state key
    /// after which to continue); `None` when the pass is complete.
    pub next: Option<Vec<u8>>,
    /// Records checked.
    pub checked: u64,
    /// Bytes read (for rate limiting).
    pub bytes: u64,
    /// Damage found by this call that was not known before.
    pub new_damage: Vec<String>,
}

type Hook = Box<dyn Fn(Option<u64>, &str) + Send + Sync>;

/// The ledger's record of damage.
#[derive(Default)]
pub(crate) struct Tracker {
    damage: Mutex<Integrity>,
    hook: OnceLock<Hook>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("damage", &self.damage)
            .finish_non_exhaustive()
    }
}

/// The header of a block's stored bytes without decoding its data: the
/// ledger writes the header first (field 1).
fn header_only(bytes: &[u8]) -> Option<BlockHeader> {
    let (&tag, mut rest) = bytes.split_first()?;
    if tag != 0x0a {
        return None;
    }
    let len = usize::try_from(prost::encoding::decode_varint(&mut rest).ok()?).ok()?;
    BlockHeader::decode(rest.get(..len)?).ok()
}

/// Checks stored block `number` against the chain (see the module
/// documentation); `Err` says what is wrong.
fn check_stored(trees: &Trees, tip: &Tip, number: u64, bytes: &[u8]) -> Result<Block, String> {
    let block = Block::decode(bytes).map_err(|e| format!("does not decode: {e}"))?;
    let header = block.header.as_ref().ok_or("has no header")?;
    if header.number != number {
        return Err(format!("its header says block {}", header.number));
    }
    let envelopes = block.data.as_ref().map_or(&[][..], |d| d.data.as_slice());
    if merkle_root(envelopes).as_slice() != header.data_hash.as_slice() {
        return Err(format!(
            "its data hash is not the Merkle root of its {} envelopes",
            envelopes.len()
        ));
    }
    if filter_of(&block).len() != envelopes.len() {
        return Err(format!(
            "{} validation codes for {} transactions",
            filter_of(&block).len(),
            envelopes.len()
        ));
    }
    if let Some(expected) = recorded_hash(trees, tip, number)
        && block_header_hash(header).as_slice() != expected.as_slice()
    {
        return Err(if number + 1 == tip.height {
            "its header hash is not the recorded last hash".into()
        } else {
            format!(
                "its header hash is not block {}'s previous hash",
                number + 1
            )
        });
    }
    Ok(block)
}

/// The header hash the chain records for block `number`: the last hash for
/// the tip, else the successor's previous hash (`None` when the successor's
/// header cannot be read: the link is then not checked).
fn recorded_hash(trees: &Trees, tip: &Tip, number: u64) -> Option<Vec<u8>> {
    if number + 1 == tip.height {
        return tip.last_hash.map(|h| h.to_vec());
    }
    let next = trees.blocks.get((number + 1).to_be_bytes()).ok()??;
    header_only(&next).map(|h| h.previous_hash)
}

impl Ledger {
    /// What is known to be damaged.
    pub fn integrity(&self) -> Integrity {
        self.integrity
            .damage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the function told about each newly found damage: the block
    /// number (`None` for state) and what is wrong. Called from the thread
    /// that found it; keep it short. Only the first call has an effect.
    pub fn on_corruption(&self, hook: impl Fn(Option<u64>, &str) + Send + Sync + 'static) {
        let _ = self.integrity.hook.set(Box::new(hook));
        // Damage found on open, before there was a hook.
        for (n, why) in self.integrity().corrupt_blocks {
            self.tell(Some(n), &why);
        }
        if let Some(why) = self.integrity().state {
            self.tell(None, &why);
        }
    }

    fn tell(&self, block: Option<u64>, why: &str) {
        if let Some(h) = self.integrity.hook.get() {
            h(block, why);
        }
    }

    /// Records block `number` as damaged; `true` if it was not known.
    pub(crate) fn mark_corrupt_block(&self, number: u64, why: &str) -> bool {
        let new = self
            .integrity
            .damage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .corrupt_blocks
            .insert(number, why.to_owned())
            .is_none();
        if new {
            self.tell(Some(number), why);
        }
        new
    }

    /// Records the state as damaged; `true` if it was not known.
    pub(crate) fn mark_state_corrupt(&self, why: &str) -> bool {
        let mut d = self
            .integrity
            .damage
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let new = d.state.is_none();
        if new {
            d.state = Some(why.to_owned());
        }
        drop(d);
        if new {
            self.tell(None, why);
        }
        new
    }

    /// Passes `r` through, recording a `Corrupt` error as state damage.
    pub(crate) fn note_state_read<T>(&self, r: Result<T, LedgerError>) -> Result<T, LedgerError> {
        if let Err(e @ LedgerError::Corrupt { .. }) = &r {
            self.mark_state_corrupt(&e.to_string());
        }
        r
    }

    /// Block `number` read and checked: `None` past the tip, an error if it
    /// is known or found damaged (never its bytes).
    pub(crate) fn checked_block(
        &self,
        number: u64,
    ) -> Result<Option<(Vec<u8>, Block)>, LedgerError> {
        self.checked_block_at(number, &self.tip())
    }

    /// [`Ledger::checked_block`] against `tip` (for callers holding the tip
    /// lock).
    pub(crate) fn checked_block_at(
        &self,
        number: u64,
        tip: &Tip,
    ) -> Result<Option<(Vec<u8>, Block)>, LedgerError> {
        if let Some(why) = self.integrity().corrupt_blocks.get(&number) {
            return Err(LedgerError::CorruptBlock {
                number,
                reason: why.clone(),
            });
        }
        let trees = self.trees()?;
        let bytes = trees
            .blocks
            .get(number.to_be_bytes())
            .map_err(LedgerError::storage("read block"))?;
        let result = match bytes {
            None if number >= tip.height => return Ok(None),
            None => Err("missing from the store".to_owned()),
            Some(b) => check_stored(&trees, tip, number, &b).map(|block| (b.to_vec(), block)),
        };
        match result {
            Ok(r) => Ok(Some(r)),
            Err(reason) => {
                self.mark_corrupt_block(number, &reason);
                Err(LedgerError::CorruptBlock { number, reason })
            }
        }
    }

    /// Checks the tip and the blocks just below it (called on open).
    pub(crate) fn check_recent_blocks(&self) -> Result<(), LedgerError> {
        let height = self.height();
        for n in height.saturating_sub(RECENT_ON_OPEN)..height {
            match self.checked_block(n) {
                Ok(_) | Err(LedgerError::CorruptBlock { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Checks up to `max` blocks from `from` on (see the module
    /// documentation). Damaged blocks are recorded; the report lists those
    /// not known before.
    pub fn scrub_blocks(&self, from: u64, max: u64) -> Result<ScrubReport, LedgerError> {
        let height = self.height();
        let end = from.saturating_add(max).min(height);
        let known = self.integrity().corrupt_blocks;
        let mut report = ScrubReport::default();
        for n in from..end {
            report.checked += 1;
            if known.contains_key(&n) {
                continue;
            }
            match self.checked_block(n) {
                Ok(Some((bytes, _))) => report.bytes += bytes.len() as u64,
                Ok(None) => break,
                Err(LedgerError::CorruptBlock { number, reason }) => {
                    report.new_damage.push(format!("block {number}: {reason}"));
                }
                Err(e) => return Err(e),
            }
        }
        report.next = (end < height).then(|| end.to_be_bytes().to_vec());
        Ok(report)
    }

    /// Decodes up to `max` records of the state, history and tx index after
    /// `after` (a position from a previous report; `None` to start), the way
    /// [`Ledger::state_hash`] and queries read them. A record that does not
    /// decode marks the state damaged.
    pub fn scrub_state(&self, after: Option<&[u8]>, max: u64) -> Result<ScrubReport, LedgerError> {
        // Position: tree tag byte ‖ last key checked.
        let trees = self.trees()?;
        let (mut tree_ix, mut start) = match after {
            Some([t, rest @ ..]) => (*t, Some(rest.to_vec())),
            _ => (0, None),
        };
        let mut report = ScrubReport::default();
        while tree_ix < 3 {
            let tree = match tree_ix {
                0 => &trees.state,
                1 => &trees.history,
                _ => &trees.txids,
            };
            let iter = match &start {
                Some(k) => tree.range::<&[u8], _>((
                    std::ops::Bound::Excluded(k.as_slice()),
                    std::ops::Bound::Unbounded,
                )),
                None => tree.iter(),
            };
            for item in iter {
                let (k, v) = item.map_err(LedgerError::storage("scrub state"))?;
                report.checked += 1;
                report.bytes += (k.len() + v.len()) as u64;
                let decoded = match tree_ix {
                    0 => format::parse_state_key(&k)
                        .and_then(|_| StateRecord::decode(&k, &v))
                        .map(drop),
                    1 => format::parse_history_key(&k)
                        .and_then(|_| format::HistoryRecord::decode(&k, &v))
                        .map(drop),
                    _ => format::decode_tx_location(&k, &v).map(drop),
                };
                if let Err(e) = decoded
                    && self.mark_state_corrupt(&e.to_string())
                {
                    report.new_damage.push(e.to_string());
                }
                if report.checked >= max {
                    let mut next = vec![tree_ix];
                    next.extend_from_slice(&k);
                    report.next = Some(next);
                    return Ok(report);
                }
            }
            tree_ix += 1;
            start = None;
        }
        Ok(report)
    }

    /// Stores `block`, fetched elsewhere, in place of damaged block
    /// `number`: refused unless it carries that number, its header hash is what the chain records
    /// (the successor's previous hash, which must itself be readable, or the
    /// recorded last hash) and its data hash is its envelopes' Merkle root.
    /// The validation codes are this ledger's own (from the `filters` tree,
    /// or the tx index for blocks older than it). Repair blocks from the
    /// highest down. A block that is not damaged is left as it is.
    pub fn repair_block(&self, number: u64, block: &Block) -> Result<(), LedgerError> {
        let r = self.repair_block_inner(number, block);
        self.note_if_store_failure(r)
    }

    /// Passes `r` through, recording a failure of the store itself (so that
    /// the peer reopens it, as after a failed commit).
    pub(crate) fn note_if_store_failure<T>(
        &self,
        r: Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        if let Err(e) = &r
            && e.is_store_failure()
        {
            self.note_store_failure(e);
        }
        r
    }

    fn repair_block_inner(&self, number: u64, block: &Block) -> Result<(), LedgerError> {
        let _serial = self.commit_lock.lock().unwrap_or_else(|e| e.into_inner());
        let refused = |reason: String| LedgerError::RepairRefused { number, reason };
        let header = block
            .header
            .as_ref()
            .ok_or_else(|| refused("the block offered has no header".into()))?;
        if header.number != number {
            return Err(refused(format!(
                "the block offered is block {}",
                header.number
            )));
        }
        let tip = self.tip();
        if number >= tip.height {
            return Err(refused(format!("the ledger height is {}", tip.height)));
        }
        // Forget the old verdict and look again: it may have been repaired,
        // or a damaged successor may have made it look damaged.
        self.forget_block_damage(number);
        match self.checked_block(number) {
            Ok(_) => return Ok(()),
            Err(LedgerError::CorruptBlock { .. }) => {}
            Err(e) => return Err(e),
        }
        let trees = self.trees()?;
        let expected = if number + 1 == tip.height {
            tip.last_hash.map(|h| h.to_vec())
        } else {
            match self.checked_block(number + 1) {
                Ok(Some((_, next))) => next.header.map(|h| h.previous_hash),
                _ => None,
            }
        }
        .ok_or_else(|| refused(format!("block {} must be repaired first", number + 1)))?;
        if block_header_hash(header).as_slice() != expected.as_slice() {
            return Err(refused(
                "its header hash is not the one the chain records".into(),
            ));
        }
        let envelopes = block.data.as_ref().map_or(&[][..], |d| d.data.as_slice());
        if merkle_root(envelopes).as_slice() != header.data_hash.as_slice() {
            return Err(refused(
                "its data hash is not the Merkle root of its envelopes".into(),
            ));
        }
        let filter = self.codes_for(&trees, number, envelopes)?;
        let bytes = blocks::committed_bytes(block, header, filter.clone());
        let key = number.to_be_bytes();
        (&trees.blocks, &trees.filters)
            .transaction(|(b, f)| {
                b.insert(&key[..], bytes.as_slice())?;
                f.insert(&key[..], filter.as_slice())?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(()) => LedgerError::Unavailable {
                    reason: "repair transaction aborted".into(),
                },
                TransactionError::Storage(source) => LedgerError::Storage {
                    op: "repair transaction",
                    source,
                },
            })?;
        self.db()?.flush().map_err(LedgerError::storage("flush"))?;
        self.forget_block_damage(number);
        match self.checked_block(number) {
            Ok(_) => Ok(()),
            Err(e) => Err(refused(format!("still damaged after rewriting: {e}"))),
        }
    }

    pub(crate) fn clear_state_damage(&self) {
        self.integrity
            .damage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .state = None;
    }

    fn forget_block_damage(&self, number: u64) {
        self.integrity
            .damage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .corrupt_blocks
            .remove(&number);
    }

    /// The validation codes block `number` was committed with.
    fn codes_for(
        &self,
        trees: &Trees,
        number: u64,
        envelopes: &[Vec<u8>],
    ) -> Result<Vec<u8>, LedgerError> {
        let key = number.to_be_bytes();
        let stored = trees
            .filters
            .get(key)
            .map_err(LedgerError::storage("read filters"))?;
        let mut codes = stored
            .filter(|f| f.len() == envelopes.len())
            .map(|f| f.to_vec());
        for (pos, env) in envelopes.iter().enumerate() {
            let indexed = match tx_header(env) {
                Some(h) if !h.tx_id.is_empty() => self
                    .tx(&h.tx_id)?
                    .filter(|l| (l.block, l.position as usize) == (number, pos)),
                _ => None,
            };
            match (&mut codes, indexed) {
                // The index is the second copy: it wins where it applies.
                (Some(c), Some(l)) => c[pos] = format::code_byte(l.code),
                (Some(_), None) => {}
                (None, Some(_)) => {}
                (None, None) => {
                    return Err(LedgerError::RepairRefused {
                        number,
                        reason: format!(
                            "the validation code of transaction {pos} is not recoverable \
                             (no filters entry, not in the tx index)"
                        ),
                    });
                }
            }
        }
        match codes {
            Some(c) => Ok(c),
            None => envelopes
                .iter()
                .enumerate()
                .map(|(pos, env)| {
                    let id = tx_header(env).map(|h| h.tx_id).unwrap_or_default();
                    match self.tx(&id)? {
                        Some(l) => Ok(format::code_byte(l.code)),
                        None => Err(LedgerError::RepairRefused {
                            number,
                            reason: format!("transaction {pos} vanished from the tx index"),
                        }),
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use qcss_proto::protos::TxValidationCode;

    use super::*;
    use crate::ledger::RawTree;
    use crate::ledger::testutil::{ChainBuilder, TestTx};

    /// A ledger with `n` blocks of two transactions each, and its blocks as
    /// the ordering service would deliver them (no validation codes).
    fn chain(dir: &std::path::Path, n: u64) -> (Ledger, Vec<Block>) {
        let ledger = Ledger::open(dir).unwrap();
        let mut c = ChainBuilder::new();
        let mut delivered = Vec::new();
        for b in 0..n {
            let (block, updates) = c.next(&[
                TestTx::new(format!("tx{b}a")),
                TestTx::new(format!("tx{b}b")),
            ]);
            ledger.commit(&block, &updates).unwrap();
            delivered.push(block);
        }
        (ledger, delivered)
    }

    fn damage(ledger: &Ledger, n: u64) {
        ledger
            .tamper_raw(RawTree::Blocks, &n.to_be_bytes(), Some(b"\xff\x00garbage"))
            .unwrap();
    }

    #[test]
    fn a_damaged_block_is_never_served_and_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = chain(dir.path(), 5);
        let told = Arc::new(AtomicUsize::new(0));
        let t = told.clone();
        ledger.on_corruption(move |b, _| {
            assert_eq!(b, Some(2));
            t.fetch_add(1, Ordering::SeqCst);
        });
        damage(&ledger, 2);
        for _ in 0..3 {
            let e = ledger.block_bytes(2).unwrap_err();
            assert!(
                matches!(e, LedgerError::CorruptBlock { number: 2, .. }),
                "{e}"
            );
            assert!(ledger.block(2).is_err());
        }
        assert_eq!(told.load(Ordering::SeqCst), 1);
        assert!(ledger.integrity().summary().contains("2 (does not decode"));
        assert!(ledger.block(1).unwrap().is_some());
        assert!(ledger.block(5).unwrap().is_none());
    }

    #[test]
    fn a_block_that_decodes_but_does_not_chain_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, delivered) = chain(dir.path(), 4);
        // Block 1's envelopes with block 0's header: decodes, wrong number.
        let mut forged = delivered[1].clone();
        forged.header = delivered[0].header.clone();
        let bytes = blocks::committed_bytes(&forged, forged.header.as_ref().unwrap(), vec![0, 0]);
        ledger
            .tamper_raw(RawTree::Blocks, &1u64.to_be_bytes(), Some(&bytes))
            .unwrap();
        assert!(ledger.block(1).is_err());
        // A changed envelope: the data hash no longer matches.
        let mut changed = delivered[2].clone();
        changed.data.as_mut().unwrap().data[0].push(1);
        let h = changed.header.clone().unwrap();
        let bytes = blocks::committed_bytes(&changed, &h, vec![0, 0]);
        ledger
            .tamper_raw(RawTree::Blocks, &2u64.to_be_bytes(), Some(&bytes))
            .unwrap();
        let e = ledger.block(2).unwrap_err().to_string();
        assert!(e.contains("Merkle root"), "{e}");
        assert_eq!(
            ledger
                .integrity()
                .corrupt_blocks
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
    }

    #[test]
    fn open_finds_a_damaged_tip_and_scrub_finds_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = chain(dir.path(), 40);
        damage(&ledger, 39);
        damage(&ledger, 3);
        drop(ledger);
        let ledger = Ledger::open(dir.path()).unwrap();
        // Block 3 is below the blocks checked on open.
        assert_eq!(
            ledger
                .integrity()
                .corrupt_blocks
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            vec![39]
        );
        let mut from = 0;
        let mut found = Vec::new();
        loop {
            let r = ledger.scrub_blocks(from, 7).unwrap();
            found.extend(r.new_damage);
            match r.next {
                Some(n) => from = u64::from_be_bytes(n.try_into().unwrap()),
                None => break,
            }
        }
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("block 3:"));
        assert_eq!(ledger.integrity().corrupt_blocks.len(), 2);
    }

    #[test]
    fn repair_restores_the_committed_bytes_from_the_top_down() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, delivered) = chain(dir.path(), 6);
        let original: Vec<_> = (0..6)
            .map(|n| ledger.block_bytes(n).unwrap().unwrap())
            .collect();
        let state = ledger.state_hash().unwrap();
        damage(&ledger, 5);
        damage(&ledger, 4);
        assert!(ledger.scrub_blocks(0, 100).unwrap().new_damage.len() == 2);
        // 4 cannot be checked before 5 is good.
        let e = ledger
            .repair_block(4, &delivered[4])
            .unwrap_err()
            .to_string();
        assert!(e.contains("block 5 must be repaired first"), "{e}");
        // The wrong block is refused.
        assert!(ledger.repair_block(5, &delivered[4]).is_err());
        let e = ledger.repair_block(5, &{
            let mut b = delivered[3].clone();
            b.header.as_mut().unwrap().number = 5;
            b
        });
        assert!(e.is_err());
        ledger.repair_block(5, &delivered[5]).unwrap();
        ledger.repair_block(4, &delivered[4]).unwrap();
        assert!(ledger.integrity().is_ok());
        for n in 0..6 {
            assert_eq!(
                ledger.block_bytes(n).unwrap().unwrap(),
                original[n as usize]
            );
        }
        assert_eq!(ledger.state_hash().unwrap(), state);
        assert!(ledger.verify().unwrap().is_consistent());
    }

    #[test]
    fn repair_without_a_filters_entry_takes_codes_from_the_tx_index() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, delivered) = chain(dir.path(), 3);
        let original = ledger.block_bytes(1).unwrap().unwrap();
        let trees = ledger.trees().unwrap();
        trees.filters.remove(1u64.to_be_bytes()).unwrap();
        damage(&ledger, 1);
        ledger.repair_block(1, &delivered[1]).unwrap();
        assert_eq!(ledger.block_bytes(1).unwrap().unwrap(), original);
        assert_eq!(
            filter_of(&ledger.block(1).unwrap().unwrap()),
            [format::code_byte(TxValidationCode::Valid); 2]
        );
    }

    #[test]
    fn reopen_keeps_the_ledger_and_commits_continue() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let mut c = ChainBuilder::new();
        for i in 0..3 {
            let (b, u) = c.next(&[TestTx::new(format!("t{i}")).put("cc", "k", b"v")]);
            ledger.commit(&b, &u).unwrap();
        }
        let (hash, state) = (ledger.last_block_hash(), ledger.state_hash().unwrap());
        // A failed store refuses commits until it is reopened.
        ledger.note_store_failure(&LedgerError::Storage {
            op: "flush",
            source: sled::Error::Io(std::io::Error::from_raw_os_error(28)),
        });
        let f = ledger.store_failure().unwrap();
        assert!(f.disk_full, "{f:?}");
        let (b, u) = c.next(&[TestTx::new("t3")]);
        let e = ledger.commit(&b, &u).unwrap_err();
        assert!(matches!(e, LedgerError::Unavailable { .. }), "{e}");
        ledger.reopen().unwrap();
        assert!(ledger.store_failure().is_none());
        assert_eq!(ledger.height(), 3);
        assert_eq!(ledger.last_block_hash(), hash);
        assert_eq!(ledger.state_hash().unwrap(), state);
        ledger.commit(&b, &u).unwrap();
        assert_eq!(ledger.height(), 4);
        assert!(ledger.verify().unwrap().is_consistent());
    }

    #[test]
    fn scrub_state_finds_an_undecodable_record() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let mut c = ChainBuilder::new();
        let (b, u) = c.next(&[TestTx::new("t").put("cc", "k", b"v")]);
        ledger.commit(&b, &u).unwrap();
        assert!(ledger.scrub_state(None, 100).unwrap().new_damage.is_empty());
        ledger
            .tamper_raw(RawTree::State, &format::state_key("cc", "k"), Some(&[9]))
            .unwrap();
        let r = ledger.scrub_state(None, 100).unwrap();
        assert_eq!(r.new_damage.len(), 1, "{r:?}");
        assert!(ledger.integrity().state.is_some());
        // A second pass reports nothing new.
        assert!(ledger.scrub_state(None, 1).unwrap().next.is_some());
        assert!(ledger.scrub_state(None, 100).unwrap().new_damage.is_empty());
    }
}
