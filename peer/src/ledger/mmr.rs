//! The anchoring Merkle mountain range over this ledger's block hashes
//! (`qcss_anchor::mmr`): leaf `n` is `block_leaf(n, header hash of block n)`.
//!
//! It is derived data, kept in its own tree (`anchor_mmr`, see `format.rs`)
//! beside the blocks rather than inside the commit transaction: the commit
//! path stays as it was, and [`Ledger::mmr_sync`] — called after every
//! commit and before every answer — appends the blocks committed since,
//! each leaf's nodes and the new leaf count in one atomic batch. A crash
//! between a commit and its append loses nothing: the next sync appends it.
//! The peer answers and signs only for sizes up to what it has indexed.

use qcss_anchor::Hash32;
use qcss_anchor::mmr::{ConsistencyProof, InclusionProof, NodeStore, Peaks, Pos, peak_positions};
use qcss_anchor::statement::{MMR, block_leaf};

use crate::ledger::error::LedgerError;
use crate::ledger::{Ledger, format};

const LEAVES_KEY: &[u8] = b"leaves";

/// Most blocks one sync appends before it lets the caller go on (it resumes
/// at the next call): bounds the time a request can spend catching up.
pub(super) const MAX_SYNC_BLOCKS: u64 = 10_000;

/// Reads nodes from the `anchor_mmr` tree.
struct TreeStore<'a>(&'a sled::Tree);

impl NodeStore for TreeStore<'_> {
    type Error = LedgerError;
    fn node(&self, pos: Pos) -> Result<Option<Hash32>, LedgerError> {
        let Some(v) = self
            .0
            .get(pos.key())
            .map_err(LedgerError::storage("read anchor MMR"))?
        else {
            return Ok(None);
        };
        let bytes: [u8; 32] = v
            .as_ref()
            .try_into()
            .map_err(|_| LedgerError::corrupt(format::MMR, &pos.key(), "a node is 32 bytes"))?;
        Ok(Some(Hash32(bytes)))
    }
}

impl Ledger {
    /// Appends the blocks committed since the last sync (at most
    /// [`MAX_SYNC_BLOCKS`]); returns the number of leaves now indexed.
    pub fn mmr_sync(&self) -> Result<u64, LedgerError> {
        let mut guard = self.mmr.lock().unwrap_or_else(|e| e.into_inner());
        let tree = self.trees()?.mmr;
        if guard.is_none() {
            *guard = Some(load_peaks(&tree)?);
        }
        let Some(peaks) = guard.as_mut() else {
            unreachable!("loaded above")
        };
        let tip = self.tip();
        let height = tip.height;
        if peaks.leaves > height {
            // Only a ledger rebuilt shorter could do this; start again.
            tracing::warn!(
                leaves = peaks.leaves,
                height,
                "anchor MMR is ahead of the ledger; rebuilding it"
            );
            tree.clear()
                .map_err(LedgerError::storage("clear anchor MMR"))?;
            *peaks = Peaks::default();
        }
        let end = height.min(peaks.leaves.saturating_add(MAX_SYNC_BLOCKS));
        while peaks.leaves < end {
            let n = peaks.leaves;
            // The newest block's hash is the tip's (what commit recorded):
            // after each commit this is the only leaf, and reading and
            // re-checking the whole block for it cost more than the append
            // (2 ms a block in a debug build). Older blocks (catching up)
            // are read and checked.
            let hash = match tip.last_hash {
                Some(h) if n + 1 == height => h,
                _ => match self.block_hash(n)? {
                    Some(h) => h,
                    None => break,
                },
            };
            let leaf = block_leaf(n, &Hash32(hash));
            let mut next = peaks.clone();
            let mut batch = sled::Batch::default();
            for (pos, hash) in next.append(&MMR, leaf) {
                batch.insert(&pos.key()[..], &hash.0[..]);
            }
            batch.insert(LEAVES_KEY, &next.leaves.to_be_bytes()[..]);
            tree.apply_batch(batch)
                .map_err(LedgerError::storage("append to anchor MMR"))?;
            *peaks = next;
        }
        Ok(peaks.leaves)
    }

    /// Blocks indexed so far (no appending: readers never wait for a
    /// catch-up; the committer and the start-up catch-up append).
    pub fn mmr_leaves(&self) -> Result<u64, LedgerError> {
        let mut guard = self.mmr.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(load_peaks(&self.trees()?.mmr)?);
        }
        Ok(guard.as_ref().map_or(0, |p| p.leaves))
    }

    /// The MMR root over blocks `0 … size − 1`; `None` if fewer blocks are
    /// indexed.
    pub fn mmr_root(&self, size: u64) -> Result<Option<Hash32>, LedgerError> {
        if size > self.mmr_leaves()? {
            return Ok(None);
        }
        let tree = self.trees()?.mmr;
        let store = TreeStore(&tree);
        let mut peaks = Vec::new();
        for p in peak_positions(size) {
            peaks.push(store.node(p)?.ok_or_else(|| missing(p))?);
        }
        Ok(Some(MMR.bag(&peaks)))
    }

    /// Proof that block `number` is in the first `size` blocks' MMR.
    pub fn mmr_inclusion(
        &self,
        number: u64,
        size: u64,
    ) -> Result<Option<InclusionProof>, LedgerError> {
        if size > self.mmr_leaves()? || number >= size {
            return Ok(None);
        }
        let tree = self.trees()?.mmr;
        InclusionProof::build(&TreeStore(&tree), number, size)
            .map(Some)
            .map_err(|e| proof_error(&e))
    }

    /// Proof that the first `new` blocks' MMR extends the first `old`'s.
    pub fn mmr_consistency(
        &self,
        old: u64,
        new: u64,
    ) -> Result<Option<ConsistencyProof>, LedgerError> {
        if new > self.mmr_leaves()? || old > new {
            return Ok(None);
        }
        let tree = self.trees()?.mmr;
        ConsistencyProof::build(&TreeStore(&tree), &MMR, old, new)
            .map(Some)
            .map_err(|e| proof_error(&e))
    }
}

fn missing(p: Pos) -> LedgerError {
    LedgerError::corrupt(
        format::MMR,
        &p.key(),
        "a node of an indexed range is missing",
    )
}

fn proof_error(e: &qcss_anchor::mmr::ProofError) -> LedgerError {
    LedgerError::corrupt(format::MMR, b"", e.to_string())
}

/// The leaf count and peaks as stored.
fn load_peaks(tree: &sled::Tree) -> Result<Peaks, LedgerError> {
    let leaves = match tree
        .get(LEAVES_KEY)
        .map_err(LedgerError::storage("read anchor MMR"))?
    {
        None => 0,
        Some(v) => u64::from_be_bytes(v.as_ref().try_into().map_err(|_| {
            LedgerError::corrupt(format::MMR, LEAVES_KEY, "the leaf count is 8 bytes")
        })?),
    };
    let store = TreeStore(tree);
    let mut peaks = Vec::new();
    for p in peak_positions(leaves) {
        peaks.push((p.level, store.node(p)?.ok_or_else(|| missing(p))?));
    }
    Ok(Peaks { leaves, peaks })
}

#[cfg(test)]
mod tests {
    use qcss_anchor::mmr::MemStore;
    use qcss_proto::hash::block_header_hash;

    use super::*;
    use crate::ledger::testutil::{ChainBuilder, TestTx};

    fn commit(ledger: &Ledger, n: u64) {
        let mut c = ChainBuilder::following(ledger);
        for i in 0..n {
            let (b, u) = c.next(&[TestTx::new(format!("tx-{}-{i}", c.next_number()))]);
            ledger.commit(&b, &u).unwrap();
        }
    }

    #[test]
    fn mmr_follows_the_chain_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        commit(&ledger, 12);
        assert_eq!(ledger.mmr_sync().unwrap(), 12);
        // The same MMR computed independently from the blocks.
        let mut mem = MemStore::default();
        for n in 0..12 {
            let b = ledger.block(n).unwrap().unwrap();
            mem.append(
                &MMR,
                block_leaf(n, &Hash32(block_header_hash(b.header.as_ref().unwrap()))),
            );
        }
        assert_eq!(ledger.mmr_root(12).unwrap(), Some(mem.peaks.root(&MMR)));
        assert_eq!(ledger.mmr_root(13).unwrap(), None);
        assert_eq!(ledger.mmr_leaves().unwrap(), 12);
        let p = ledger.mmr_inclusion(4, 12).unwrap().unwrap();
        let b4 = ledger.block(4).unwrap().unwrap();
        p.verify(
            &MMR,
            &block_leaf(4, &Hash32(block_header_hash(b4.header.as_ref().unwrap()))),
            &mem.peaks.root(&MMR),
        )
        .unwrap();
        let old = ledger.mmr_root(5).unwrap().unwrap();
        let c = ledger.mmr_consistency(5, 12).unwrap().unwrap();
        c.verify(&MMR, &old, &mem.peaks.root(&MMR)).unwrap();
        drop(ledger);
        // Reopened: the peaks load from disk and appending goes on.
        let ledger = Ledger::open(dir.path()).unwrap();
        commit(&ledger, 3);
        assert_eq!(ledger.mmr_sync().unwrap(), 15);
        let c = ledger.mmr_consistency(12, 15).unwrap().unwrap();
        c.verify(
            &MMR,
            &mem.peaks.root(&MMR),
            &ledger.mmr_root(15).unwrap().unwrap(),
        )
        .unwrap();
    }
}
