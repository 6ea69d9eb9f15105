//! The fork database: every valid block above the last irreversible block
//! (LIB), with its post-state, plus producer confirmations.
//!
//! Fork choice is EOSIO's order: the leaf whose branch has the highest LIB,
//! then the greatest height, then the lowest id. A branch's LIB is the
//! highest block that ⌊2n/3⌋+1 producers of its schedule have built on
//! (produced it or a descendant) or explicitly confirmed (it or a
//! descendant). The database's root *is* the local LIB: blocks that do not
//! descend from it are pruned and blocks at or below it are refused, so the
//! node can never revert below its LIB.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::address::Address;
use crate::block::{Block, Confirmation};
use crate::chain::{BlockError, apply_block};
use crate::hash::Hash32;
use crate::params::Params;
use crate::state::State;

/// A block with the state after it (the root may have no block: genesis).
#[derive(Debug)]
pub struct Entry {
    /// The block; `None` only for a genesis root.
    pub block: Option<Arc<Block>>,
    /// The state after the block.
    pub state: Arc<State>,
}

impl Entry {
    /// The block id (the genesis id for the genesis root).
    pub fn id(&self) -> Hash32 {
        self.state.head_id
    }

    /// The height.
    pub fn height(&self) -> u64 {
        self.state.height
    }

    fn prev(&self) -> Option<Hash32> {
        self.block.as_ref().map(|b| b.header.prev_id)
    }
}

/// What inserting a block did.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Already known.
    Duplicate,
    /// Added; the head and LIB may have moved (see [`ForkDb::head`]).
    Added,
}

/// Blocks that became irreversible, oldest first (the new LIB is the last).
#[derive(Debug, Default)]
pub struct Finalized {
    /// The blocks.
    pub blocks: Vec<Arc<Block>>,
}

/// Most confirmations kept for blocks not (yet) known.
const MAX_EARLY_CONFIRMS: usize = 4096;

/// See the module doc.
#[derive(Debug)]
pub struct ForkDb {
    params: Params,
    root: Arc<Entry>,
    entries: HashMap<Hash32, Arc<Entry>>,
    confirms: HashMap<Hash32, BTreeSet<Address>>,
    head: Arc<Entry>,
}

impl ForkDb {
    /// A database whose root (LIB) is `root`.
    pub fn new(params: Params, root: Entry) -> Self {
        let root = Arc::new(root);
        Self {
            params,
            head: root.clone(),
            root,
            entries: HashMap::new(),
            confirms: HashMap::new(),
        }
    }

    /// The best head.
    pub fn head(&self) -> &Arc<Entry> {
        &self.head
    }

    /// The local last irreversible block.
    pub fn lib(&self) -> &Arc<Entry> {
        &self.root
    }

    /// Looks up a block at or above the LIB.
    pub fn get(&self, id: &Hash32) -> Option<&Arc<Entry>> {
        if *id == self.root.id() {
            return Some(&self.root);
        }
        self.entries.get(id)
    }

    /// Number of blocks above the LIB.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no block is above the LIB.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The blocks from just above the LIB to the head, oldest first.
    pub fn head_branch(&self) -> Vec<Arc<Block>> {
        let mut out = Vec::new();
        let mut cur = self.head.clone();
        while cur.id() != self.root.id() {
            let Some(b) = cur.block.clone() else { break };
            let Some(parent) = self.get(&b.header.prev_id).cloned() else {
                break;
            };
            out.push(b);
            cur = parent;
        }
        out.reverse();
        out
    }

    /// Validates `block` against its parent's state and adds it. Returns the
    /// blocks that became irreversible as a result.
    pub fn insert(&mut self, block: Arc<Block>) -> Result<(Inserted, Finalized), BlockError> {
        let id = block.id();
        if self.get(&id).is_some() {
            return Ok((Inserted::Duplicate, Finalized::default()));
        }
        if block.header.height <= self.root.height() {
            return Err(BlockError::BelowIrreversible {
                id,
                height: block.header.height,
                lib: self.root.height(),
            });
        }
        let parent = self
            .get(&block.header.prev_id)
            .ok_or(BlockError::Unlinkable {
                id,
                prev: block.header.prev_id,
            })?;
        let state = apply_block(&parent.state, &block, &self.params)?;
        self.entries.insert(
            id,
            Arc::new(Entry {
                block: Some(block),
                state: Arc::new(state),
            }),
        );
        let fin = self.choose();
        Ok((Inserted::Added, fin))
    }

    /// Records a confirmation whose signature the caller verified. Returns
    /// the blocks that became irreversible. Confirmations at or below the LIB
    /// are ignored; those for unknown blocks are kept (bounded) for later.
    pub fn confirm(&mut self, c: &Confirmation) -> Finalized {
        if c.height <= self.root.height() {
            return Finalized::default();
        }
        if !self.entries.contains_key(&c.block_id) && self.confirms.len() >= MAX_EARLY_CONFIRMS {
            return Finalized::default();
        }
        if !self
            .confirms
            .entry(c.block_id)
            .or_default()
            .insert(c.producer)
        {
            return Finalized::default();
        }
        if self.entries.contains_key(&c.block_id) {
            self.choose()
        } else {
            Finalized::default()
        }
    }

    /// Whether recording `c` could change anything (not at or below the
    /// LIB, not already counted): lets the caller skip verifying it.
    pub fn confirmation_useful(&self, c: &Confirmation) -> bool {
        c.height > self.root.height()
            && !self
                .confirms
                .get(&c.block_id)
                .is_some_and(|s| s.contains(&c.producer))
    }

    /// Producers that explicitly confirmed `id`.
    pub fn confirmations(&self, id: &Hash32) -> usize {
        self.confirms.get(id).map_or(0, BTreeSet::len)
    }

    /// Whether `entry` is `id` (at `height`) or descends from it. Blocks at
    /// or below the LIB are not kept, so for those this answers false.
    pub fn descends(&self, entry: &Arc<Entry>, id: &Hash32, height: u64) -> bool {
        let mut cur = entry.clone();
        while cur.height() > height {
            match cur.prev().and_then(|p| self.get(&p)) {
                Some(p) => cur = p.clone(),
                None => return false,
            }
        }
        cur.height() == height && cur.id() == *id
    }

    /// The LIB of the branch ending at `leaf`.
    pub fn branch_lib(&self, leaf: &Arc<Entry>) -> Arc<Entry> {
        let threshold = self.params.irreversible_threshold();
        let mut seen: BTreeSet<Address> = BTreeSet::new();
        let mut cur = leaf.clone();
        loop {
            if cur.id() == self.root.id() {
                return cur;
            }
            if let Some(b) = &cur.block {
                seen.insert(b.header.producer);
            }
            if let Some(cs) = self.confirms.get(&cur.id()) {
                seen.extend(cs.iter().copied());
            }
            let sched = &cur.state.schedule.producers;
            let count = seen
                .iter()
                .filter(|a| sched.binary_search(a).is_ok())
                .count();
            if count >= threshold {
                return cur;
            }
            match cur.prev().and_then(|p| self.get(&p)) {
                Some(p) => cur = p.clone(),
                // Every entry descends from the root (pruning keeps it so).
                None => return self.root.clone(),
            }
        }
    }

    /// Re-runs fork choice; advances the LIB (and prunes) if the chosen
    /// branch's LIB is higher.
    fn choose(&mut self) -> Finalized {
        let parents: HashSet<Hash32> = self.entries.values().filter_map(|e| e.prev()).collect();
        type Candidate = (u64, u64, std::cmp::Reverse<Hash32>, Arc<Entry>, Arc<Entry>);
        let mut best: Option<Candidate> = None;
        for leaf in self.entries.values().filter(|e| !parents.contains(&e.id())) {
            let lib = self.branch_lib(leaf);
            let key = (lib.height(), leaf.height(), std::cmp::Reverse(leaf.id()));
            if best.as_ref().is_none_or(|b| key > (b.0, b.1, b.2)) {
                best = Some((key.0, key.1, key.2, leaf.clone(), lib));
            }
        }
        let Some((_, _, _, head, lib)) = best else {
            self.head = self.root.clone();
            return Finalized::default();
        };
        self.head = head;
        if lib.height() > self.root.height() {
            self.advance_root(lib)
        } else {
            Finalized::default()
        }
    }

    fn advance_root(&mut self, new_root: Arc<Entry>) -> Finalized {
        // The newly irreversible blocks: new root back to the old root.
        let mut blocks = Vec::new();
        let mut cur = new_root.clone();
        while cur.id() != self.root.id() {
            let Some(b) = cur.block.clone() else { break };
            let Some(p) = self.get(&b.header.prev_id).cloned() else {
                break;
            };
            blocks.push(b);
            cur = p;
        }
        blocks.reverse();
        // Keep only strict descendants of the new root.
        let mut sorted: Vec<Arc<Entry>> = self.entries.values().cloned().collect();
        sorted.sort_by_key(|e| e.height());
        let mut keep: HashSet<Hash32> = HashSet::new();
        keep.insert(new_root.id());
        let mut kept = HashMap::new();
        for e in sorted {
            if e.height() > new_root.height() && e.prev().is_some_and(|p| keep.contains(&p)) {
                keep.insert(e.id());
                kept.insert(e.id(), e);
            }
        }
        self.entries = kept;
        self.confirms
            .retain(|id, _| keep.contains(id) && *id != new_root.id());
        self.root = new_root;
        Finalized { blocks }
    }
}
