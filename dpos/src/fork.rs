//! The fork database: every valid block above the last irreversible block
//! (LIB), with its post-state, plus producers' finality votes.
//!
//! Two finality rules, chosen by `Params::fast_confirmations`:
//!
//! - **Production-implied** (the default; BitShares/Steem): a branch's LIB is
//!   the highest block that ⌊2n/3⌋+1 producers of its schedule have built on
//!   (produced it or a descendant). Fork choice is EOSIO's order: the leaf
//!   whose branch has the highest LIB, then the greatest height, then the
//!   lowest id. Final ≈ 20 slots after production.
//! - **Finality votes** (Casper FFG with one checkpoint per block): each
//!   producer votes for its head with a link from the highest justified
//!   ancestor. A block is *justified* when ⌊2n/3⌋+1 producers of its
//!   schedule voted for one link into it; the source of a link is *finalized*
//!   when every block strictly between it and the link's target is justified
//!   (directly: the target is its child). Fork choice: the leaf whose branch
//!   holds the highest justified block, then height, then lowest id. Final
//!   about one slot after production. A node does not need to have seen the
//!   votes that justified a link's source: with at most ⌊(n−1)/3⌋ faulty
//!   producers every quorum holds an honest one, who votes only from a
//!   source it saw justified (a node syncing mid-chain could not have seen
//!   those votes, and would otherwise never finalize).
//!
//! The database's root *is* the local LIB: blocks that do not descend from
//! it are pruned and blocks at or below it are refused, so the node can never
//! revert below its LIB.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::address::{Address, Sig};
use crate::block::{Block, Certificate, Confirmation};
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
    /// With finality votes, when the new LIB was finalized by a quorum link
    /// to its child: that link's votes, which prove it offline.
    pub certificate: Option<Certificate>,
}

/// Most vote targets kept (blocks above the LIB, known or not yet).
const MAX_VOTE_TARGETS: usize = 4096;
/// Most not-yet-seen targets one producer's votes may hold.
const MAX_UNSEEN_PER_PRODUCER: usize = 64;
/// Most distinct sources kept per target (honest voters use one or two;
/// each producer may add at most two).
const MAX_SOURCES_PER_TARGET: usize = 128;

/// A justified target and the sources of its quorum links, (height, id).
type Linked = (Arc<Entry>, Vec<(u64, Hash32)>);

/// The votes for one target block, by source id.
#[derive(Debug)]
struct TargetVotes {
    /// The target's height, as the votes state it.
    height: u64,
    /// Source id → (source height, voter → signature).
    by_source: HashMap<Hash32, (u64, BTreeMap<Address, Sig>)>,
}

/// See the module doc.
#[derive(Debug)]
pub struct ForkDb {
    params: Params,
    root: Arc<Entry>,
    entries: HashMap<Hash32, Arc<Entry>>,
    votes: HashMap<Hash32, TargetVotes>,
    /// Blocks above the root that a quorum link justified (finality votes).
    justified: HashSet<Hash32>,
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
            votes: HashMap::new(),
            justified: HashSet::new(),
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

    /// Records a finality vote whose signature the caller verified. Returns
    /// the blocks that became irreversible. Votes for targets at or below the
    /// LIB, or with a source not below the target, are ignored; those for
    /// unknown blocks are kept (bounded) for later.
    pub fn confirm(&mut self, c: &Confirmation) -> Finalized {
        if !self.vote_useful(c) {
            return Finalized::default();
        }
        // Votes for blocks this node holds are always kept (the blocks bound
        // them); those for blocks not seen yet only up to a cap, so votes
        // for made-up blocks cannot fill the map and shut out real ones.
        let known = self.entries.contains_key(&c.block_id);
        if !known && !self.votes.contains_key(&c.block_id) && self.votes.len() >= MAX_VOTE_TARGETS {
            return Finalized::default();
        }
        // Nor can one producer fill that cap alone: an honest one votes
        // ahead of a block's arrival only for the few blocks in flight.
        if !known && self.unseen_targets_of(&c.producer) >= MAX_UNSEEN_PER_PRODUCER {
            return Finalized::default();
        }
        let target = self.votes.entry(c.block_id).or_insert_with(|| TargetVotes {
            height: c.height,
            by_source: HashMap::new(),
        });
        if !target.by_source.contains_key(&c.source_id) {
            // An honest producer links one source to a target; a second is
            // already evidence. So one producer cannot crowd out the others'
            // sources with made-up ones.
            let mine = target
                .by_source
                .values()
                .filter(|(_, v)| v.contains_key(&c.producer))
                .count();
            if mine >= 2 || target.by_source.len() >= MAX_SOURCES_PER_TARGET {
                return Finalized::default();
            }
        }
        let (_, voters) = target
            .by_source
            .entry(c.source_id)
            .or_insert_with(|| (c.source_height, BTreeMap::new()));
        voters.insert(c.producer, c.sig);
        // Justification, finality and fork choice by votes change only when
        // a link reaches its quorum (a block arriving re-runs them too), so
        // the other votes of a block cost no fork-choice pass.
        let completes = self.entries.get(&c.block_id).is_some_and(|t| {
            let sched = &t.state.schedule.producers;
            sched.binary_search(&c.producer).is_ok()
                && voters
                    .keys()
                    .filter(|a| sched.binary_search(a).is_ok())
                    .count()
                    == self.params.irreversible_threshold()
        });
        if completes {
            self.choose()
        } else {
            Finalized::default()
        }
    }

    /// Targets not yet seen that `producer` voted for.
    fn unseen_targets_of(&self, producer: &Address) -> usize {
        self.votes
            .iter()
            .filter(|(id, tv)| {
                !self.entries.contains_key(id)
                    && tv.by_source.values().any(|(_, v)| v.contains_key(producer))
            })
            .count()
    }

    /// Whether recording `c` could change anything (target above the LIB,
    /// source below the target, not already counted): lets the caller skip
    /// verifying it.
    pub fn confirmation_useful(&self, c: &Confirmation) -> bool {
        self.vote_useful(c)
    }

    fn vote_useful(&self, c: &Confirmation) -> bool {
        c.height > self.root.height()
            && c.source_height < c.height
            && !self
                .votes
                .get(&c.block_id)
                .and_then(|t| t.by_source.get(&c.source_id))
                .is_some_and(|(_, v)| v.contains_key(&c.producer))
    }

    /// Producers that voted for `id` (from any source).
    pub fn confirmations(&self, id: &Hash32) -> usize {
        self.votes.get(id).map_or(0, |t| {
            t.by_source
                .values()
                .flat_map(|(_, v)| v.keys())
                .collect::<BTreeSet<_>>()
                .len()
        })
    }

    /// The votes of a quorum link into the highest justified block on the
    /// head's branch above the LIB (empty if there is none): what a producer
    /// sends with each block, so a node that lost some votes (drops, a
    /// partition) still learns what the others justified — votes are not
    /// kept in blocks, and nodes whose justified blocks differ split their
    /// votes between sources and stall.
    pub fn justification(&self) -> Vec<Confirmation> {
        let j = self.branch_justified(&self.head, false);
        if j.id() == self.root.id() {
            return Vec::new();
        }
        let Some(tv) = self.votes.get(&j.id()) else {
            return Vec::new();
        };
        let Some((source, (h, voters))) = tv
            .by_source
            .iter()
            .filter(|(id, (h, _))| self.links(&j, *h, id))
            .max_by_key(|(id, (_, v))| (v.len(), **id))
        else {
            return Vec::new();
        };
        voters
            .iter()
            .map(|(producer, sig)| Confirmation {
                chain_id: self.root.state.chain_id,
                block_id: j.id(),
                height: j.height(),
                source_id: *source,
                source_height: *h,
                producer: *producer,
                sig: *sig,
            })
            .collect()
    }

    /// Whether `id` is justified: the root, or a block above it that a
    /// quorum link reached (finality votes only).
    pub fn is_justified(&self, id: &Hash32) -> bool {
        *id == self.root.id() || self.justified.contains(id)
    }

    /// The highest justified block on the branch ending at `leaf`, `leaf`
    /// itself excluded when `strict` (the source a producer votes from).
    pub fn branch_justified(&self, leaf: &Arc<Entry>, strict: bool) -> Arc<Entry> {
        let mut cur = leaf.clone();
        if strict && cur.id() != self.root.id() {
            cur = match self.parent(&cur) {
                Some(p) => p.clone(),
                None => return self.root.clone(),
            };
        }
        while !self.is_justified(&cur.id()) {
            cur = match self.parent(&cur) {
                Some(p) => p.clone(),
                None => return self.root.clone(),
            };
        }
        cur
    }

    /// `entry`'s parent, if kept (the root and blocks above it are).
    fn parent(&self, entry: &Entry) -> Option<&Arc<Entry>> {
        entry.prev().and_then(|p| self.get(&p))
    }

    /// Whether `entry` is `id` (at `height`) or descends from it. Blocks at
    /// or below the LIB are not kept, so for those this answers false.
    pub fn descends(&self, entry: &Arc<Entry>, id: &Hash32, height: u64) -> bool {
        let mut cur = entry.clone();
        while cur.height() > height {
            match self.parent(&cur) {
                Some(p) => cur = p.clone(),
                None => return false,
            }
        }
        cur.height() == height && cur.id() == *id
    }

    /// The production-implied LIB of the branch ending at `leaf`.
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
            let sched = &cur.state.schedule.producers;
            let count = seen
                .iter()
                .filter(|a| sched.binary_search(a).is_ok())
                .count();
            if count >= threshold {
                return cur;
            }
            match self.parent(&cur) {
                Some(p) => cur = p.clone(),
                // Every entry descends from the root (pruning keeps it so).
                None => return self.root.clone(),
            }
        }
    }

    /// Re-runs fork choice; advances the LIB (and prunes) if the chosen
    /// branch's LIB is higher.
    fn choose(&mut self) -> Finalized {
        if self.params.fast_confirmations {
            return self.choose_by_votes();
        }
        let Some(head) = self.best_leaf(|leaf| self.branch_lib(leaf).height()) else {
            self.head = self.root.clone();
            return Finalized::default();
        };
        let lib = self.branch_lib(&head);
        self.head = head;
        if lib.height() > self.root.height() {
            self.advance_root(lib)
        } else {
            Finalized::default()
        }
    }

    /// The leaf that fork choice prefers: highest `first` (the branch's LIB
    /// or highest justified height), then greatest height, then lowest id.
    fn best_leaf(&self, first: impl Fn(&Arc<Entry>) -> u64) -> Option<Arc<Entry>> {
        let parents: HashSet<Hash32> = self.entries.values().filter_map(|e| e.prev()).collect();
        self.entries
            .values()
            .filter(|e| !parents.contains(&e.id()))
            .max_by_key(|leaf| (first(leaf), leaf.height(), std::cmp::Reverse(leaf.id())))
            .cloned()
    }

    /// Whether `source` (height, id) is an acceptable source for a link into
    /// `target`: at or below the root (its ancestry is no longer kept; see
    /// the module doc), or a kept block that `target` descends from.
    fn links(&self, target: &Arc<Entry>, source_height: u64, source: &Hash32) -> bool {
        source_height <= self.root.height() || self.descends(target, source, source_height)
    }

    /// The sources of quorum links into `target`: (height, id).
    fn quorum_sources(&self, target: &Arc<Entry>) -> Vec<(u64, Hash32)> {
        let Some(tv) = self.votes.get(&target.id()) else {
            return Vec::new();
        };
        let threshold = self.params.irreversible_threshold();
        let sched = &target.state.schedule.producers;
        tv.by_source
            .iter()
            .filter(|(_, (_, voters))| {
                voters
                    .keys()
                    .filter(|a| sched.binary_search(a).is_ok())
                    .count()
                    >= threshold
            })
            .filter(|(id, (h, _))| self.links(target, *h, id))
            .map(|(id, (h, _))| (*h, *id))
            .collect()
    }

    /// Fork choice and finality by votes (module doc).
    fn choose_by_votes(&mut self) -> Finalized {
        let targets: Vec<Arc<Entry>> = self
            .votes
            .keys()
            .filter_map(|id| self.entries.get(id).cloned())
            .collect();
        let links: Vec<Linked> = targets
            .into_iter()
            .map(|t| {
                let s = self.quorum_sources(&t);
                (t, s)
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        self.justified = links.iter().map(|(t, _)| t.id()).collect();
        // The highest source whose link skips only justified blocks, with
        // the link's target.
        let mut finalized: Option<(Arc<Entry>, Arc<Entry>)> = None;
        for (target, sources) in &links {
            for (h, id) in sources {
                if *h <= self.root.height()
                    || finalized.as_ref().is_some_and(|(f, t)| {
                        f.height() > *h || (f.height() == *h && t.height() <= target.height())
                    })
                {
                    continue;
                }
                let Some(source) = self.get(id).cloned() else {
                    continue;
                };
                let mut between_justified = true;
                let mut cur = target.clone();
                while let Some(p) = self.parent(&cur).cloned() {
                    if p.height() <= *h {
                        break;
                    }
                    if !self.justified.contains(&p.id()) {
                        between_justified = false;
                        break;
                    }
                    cur = p;
                }
                if between_justified {
                    finalized = Some((source, target.clone()));
                }
            }
        }
        let fin = match finalized {
            Some((source, target)) => {
                let certificate = self.certificate(&source, &target);
                let mut fin = self.advance_root(source);
                fin.certificate = certificate;
                fin
            }
            None => Finalized::default(),
        };
        self.head = self
            .best_leaf(|leaf| self.branch_justified(leaf, false).height())
            .unwrap_or_else(|| self.root.clone());
        fin
    }

    /// The certificate of the quorum link `source` → `target` when the
    /// target is the source's child (a skipping link's proof would need the
    /// blocks between justified too, which a verifier cannot see).
    fn certificate(&self, source: &Arc<Entry>, target: &Arc<Entry>) -> Option<Certificate> {
        let block = target.block.as_ref()?;
        if block.header.prev_id != source.id() {
            return None;
        }
        let (_, voters) = self.votes.get(&target.id())?.by_source.get(&source.id())?;
        let sched = &target.state.schedule.producers;
        Some(Certificate {
            target: block.signed_header(),
            votes: voters
                .iter()
                .filter(|(a, _)| sched.binary_search(a).is_ok())
                .map(|(a, s)| (*a, *s))
                .collect(),
        })
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
        // Votes for blocks not yet known may be for blocks still to come
        // above the new root: keep those.
        let root_height = new_root.height();
        let entries = &self.entries;
        self.votes
            .retain(|id, tv| entries.contains_key(id) || tv.height > root_height);
        self.justified.retain(|id| entries.contains_key(id));
        self.root = new_root;
        Finalized {
            blocks,
            certificate: None,
        }
    }
}
