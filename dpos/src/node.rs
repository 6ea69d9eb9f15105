//! A node: the fork database, the mempool, an optional producer key, a
//! clock and optional sled storage, behind the calls a runner makes:
//! [`Node::submit_tx`], [`Node::produce_if_scheduled`], [`Node::on_block`],
//! [`Node::on_confirmation`], [`Node::status`]. No networking: the caller
//! sends what these return (blocks, confirmations, sync requests).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::address::{Address, Keypair};
use crate::block::{Block, Certificate, Confirmation};
use crate::chain::{BlockError, scheduled_producer};
use crate::fork::{Entry, Finalized, ForkDb, Inserted};
use crate::hash::Hash32;
use crate::params::{Genesis, GenesisError, Params};
use crate::state::{State, TxContext, TxError};
use crate::store::{End, Store, StoreError};
use crate::tx::{Equivocation, SignedTx, TxKind, VoteEquivocation};

/// Wall-clock time in ms since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Now.
    fn now_ms(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock the simulator moves by hand; clones share the time.
#[derive(Debug, Default, Clone)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    /// Sets the time.
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A node-level failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The genesis is invalid.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A received block is invalid: whoever sent it misbehaved.
    #[error("block refused: {0}")]
    Block(Box<BlockError>),
    /// A block we produced ourselves was refused: a bug, reported not hidden.
    #[error("own block refused: {0}")]
    OwnBlock(Box<BlockError>),
}

/// Why the mempool refused a transaction.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// The transaction itself is invalid.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// Another transaction with this sender and nonce is waiting.
    #[error("another transaction from {0:?} with nonce {1} is already waiting")]
    Conflict(Address, u64),
    /// The mempool is full.
    #[error("mempool full")]
    Full,
}

/// What happened to a received block.
#[derive(Debug, PartialEq, Eq)]
pub enum BlockOutcome {
    /// Added (possibly moving head and LIB); send the votes, if any, to peers.
    Added {
        /// This node's finality votes for its new head, one per producer
        /// key of the head's schedule it holds.
        votes: Vec<Confirmation>,
    },
    /// Already known.
    Duplicate,
    /// Parent unknown: kept aside; ask a peer for blocks above our LIB.
    Orphan {
        /// Our LIB height, to sync from.
        sync_from: u64,
    },
}

/// What happened to a received confirmation.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfirmOutcome {
    /// Valid and recorded (worth relaying).
    pub accepted: bool,
    /// This node's votes for a head the vote moved it to.
    pub votes: Vec<Confirmation>,
}

/// A snapshot for `qcss chain status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Head height.
    pub head_height: u64,
    /// Head slot.
    pub head_slot: u64,
    /// Head id.
    pub head_id: Hash32,
    /// Last irreversible height.
    pub lib_height: u64,
    /// Last irreversible id.
    pub lib_id: Hash32,
    /// Irreversible height implied by production alone.
    pub dpos_lib: u64,
    /// Active schedule version.
    pub schedule_version: u64,
    /// This round's order.
    pub round_order: Vec<Address>,
    /// (producer, produced all time, missed all time) for the active set.
    pub producers: Vec<(Address, u64, u64)>,
    /// Waiting transactions.
    pub mempool: usize,
}

const MAX_MEMPOOL: usize = 100_000;
const MAX_ORPHANS: usize = 1_024;
/// Most blocks returned for one sync request.
pub const MAX_SYNC_BLOCKS: usize = 512;

/// With finality votes, a certificate is kept at least every this many
/// blocks (under [`MAX_SYNC_BLOCKS`], so each full sync answer holds one).
pub const CERTIFICATE_EVERY: u64 = 256;

/// See the module doc.
pub struct Node {
    params: Params,
    genesis_time_ms: u64,
    chain_id: Hash32,
    /// Producer keys this node signs with (a local network gives one node
    /// several of the 31; production gives each producer its own node).
    keys: Vec<Keypair>,
    clock: Arc<dyn Clock>,
    fork: ForkDb,
    store: Option<Store>,
    /// Irreversible blocks kept in memory when there is no store.
    finalized: Vec<Arc<Block>>,
    /// Finality certificates kept in memory when there is no store.
    certificates: BTreeMap<u64, Certificate>,
    /// A block holding an anchor became irreversible without a certificate
    /// of its own: keep the next one.
    certificate_wanted: bool,
    /// Source height of the last certificate kept.
    certificate_kept: u64,
    /// The newest certificate seen (kept or not).
    latest_certificate: Option<Certificate>,
    mempool: BTreeMap<(Address, u64), SignedTx>,
    orphans: HashMap<Hash32, Vec<Arc<Block>>>,
    orphan_count: usize,
    /// This node's last finality vote, (source height, target height):
    /// the next goes to a higher target from a source at least as high, so
    /// none of its votes is a double vote or surrounds another (persisted
    /// before sending).
    voted: (u64, u64),
    /// The vote this node cast for the block it just produced, for the
    /// caller to send with it ([`Node::take_votes`]).
    own_votes: Vec<Confirmation>,
    produced_slot: u64,
    /// Recent headers by (producer, slot), to catch equivocation.
    seen_headers: BTreeMap<(u64, Address), crate::block::SignedHeader>,
    evidence: Vec<Equivocation>,
    /// Each producer's latest verified vote, to catch a double or surround
    /// vote against it (bounded by the producers of the head's schedules).
    last_votes: BTreeMap<Address, Confirmation>,
    vote_evidence: Vec<VoteEquivocation>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("keys", &self.keys)
            .field("head", &self.fork.head().height())
            .field("lib", &self.fork.lib().height())
            .finish()
    }
}

impl Node {
    /// A node without storage.
    pub fn in_memory(
        genesis: &Genesis,
        key: Option<Keypair>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, NodeError> {
        let state = State::genesis(genesis)?;
        Ok(Self::from_parts(genesis, key, clock, state, None, None))
    }

    /// A node storing its chain in `dir`; reopening resumes where it stopped.
    pub fn open(
        dir: &Path,
        genesis: &Genesis,
        key: Option<Keypair>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, NodeError> {
        Self::open_checkpointing(dir, genesis, key, clock, crate::store::CHECKPOINT_EVERY)
    }

    /// [`Node::open`], writing a state checkpoint every `every` irreversible
    /// blocks (see [`crate::store`]).
    pub fn open_checkpointing(
        dir: &Path,
        genesis: &Genesis,
        key: Option<Keypair>,
        clock: Arc<dyn Clock>,
        every: u64,
    ) -> Result<Self, NodeError> {
        let gstate = State::genesis(genesis)?;
        let store = Store::open(dir, gstate.chain_id, genesis.params.max_block_bytes)?
            .with_checkpoint_every(every);
        let Some(loaded) = store.load(&genesis.params)? else {
            store.init(&gstate)?;
            return Ok(Self::from_parts(
                genesis,
                key,
                clock,
                gstate,
                None,
                Some(store),
            ));
        };
        let mut node = Self::from_parts(
            genesis,
            key,
            clock,
            loaded.lib_state,
            loaded.lib_block.map(Arc::new),
            Some(store),
        );
        node.voted = loaded.voted;
        (node.latest_certificate, node.certificate_kept) = loaded.certificates;
        // Re-apply every reversible block first, then record what they
        // finalized (if killed between storing a block and recording that):
        // recording earlier would forget the blocks not yet re-applied.
        let mut finalized = Finalized::default();
        for b in loaded.pending {
            // A stored block that no longer applies was on a pruned fork.
            if let Ok((_, fin)) = node.fork.insert(Arc::new(b)) {
                finalized.blocks.extend(fin.blocks);
            }
        }
        if !finalized.blocks.is_empty() {
            node.persist_final(finalized)?;
        }
        node.produced_slot = node.fork.head().state.slot;
        Ok(node)
    }

    fn from_parts(
        genesis: &Genesis,
        key: Option<Keypair>,
        clock: Arc<dyn Clock>,
        root_state: State,
        root_block: Option<Arc<Block>>,
        store: Option<Store>,
    ) -> Self {
        let chain_id = root_state.chain_id;
        let root = Entry {
            block: root_block,
            state: Arc::new(root_state),
        };
        Self {
            params: genesis.params.clone(),
            genesis_time_ms: genesis.genesis_time_ms,
            chain_id,
            keys: key.into_iter().collect(),
            clock,
            fork: ForkDb::new(genesis.params.clone(), root),
            store,
            finalized: Vec::new(),
            certificates: BTreeMap::new(),
            certificate_wanted: false,
            certificate_kept: 0,
            latest_certificate: None,
            mempool: BTreeMap::new(),
            orphans: HashMap::new(),
            orphan_count: 0,
            voted: (0, 0),
            own_votes: Vec::new(),
            last_votes: BTreeMap::new(),
            vote_evidence: Vec::new(),
            produced_slot: 0,
            seen_headers: BTreeMap::new(),
            evidence: Vec::new(),
        }
    }

    /// The consensus parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Unix time in ms of slot 0.
    pub fn genesis_time_ms(&self) -> u64 {
        self.genesis_time_ms
    }

    /// The chain id.
    pub fn chain_id(&self) -> Hash32 {
        self.chain_id
    }

    /// This node's (first) producer address, if it has a key.
    pub fn address(&self) -> Option<Address> {
        self.keys.first().map(Keypair::address)
    }

    /// Every producer address this node signs for.
    pub fn producer_addresses(&self) -> Vec<Address> {
        self.keys.iter().map(Keypair::address).collect()
    }

    /// Adds a producer key (ignored if the node already holds it). With
    /// several keys the node produces in each key's slots and casts a
    /// finality vote with each of its keys in the head's schedule.
    pub fn add_producer_key(&mut self, key: Keypair) {
        if !self.keys.iter().any(|k| k.address() == key.address()) {
            self.keys.push(key);
        }
    }

    /// The fork database (read only).
    pub fn fork(&self) -> &ForkDb {
        &self.fork
    }

    /// State at the head.
    pub fn head_state(&self) -> &Arc<State> {
        &self.fork.head().state
    }

    /// The slot at `now_ms` (0 before genesis).
    pub fn slot_at(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.genesis_time_ms) / self.params.slot_ms
    }

    /// Checks a transaction against the head state and queues it.
    pub fn submit_tx(&mut self, stx: SignedTx) -> Result<Hash32, SubmitError> {
        let max = stx.tx.kind.byte_limit(&self.params);
        let bytes = stx.encode().len();
        if bytes > max as usize {
            return Err(TxError::TooLarge { bytes, max }.into());
        }
        let head = self.fork.head().state.clone();
        let next_slot = self.slot_at(self.clock.now_ms()).max(head.slot) + 1;
        // Dry-run against a copy of the sender's view: nonce may be ahead of
        // the head by the transactions already queued.
        let queued = self
            .mempool
            .range((stx.tx.sender, 0)..=(stx.tx.sender, u64::MAX))
            .count() as u64;
        if stx.tx.nonce > head.nonce(&stx.tx.sender) + queued {
            return Err(TxError::NonceGap {
                sender: stx.tx.sender,
                want: head.nonce(&stx.tx.sender) + queued,
                got: stx.tx.nonce,
            }
            .into());
        }
        if stx.tx.nonce == head.nonce(&stx.tx.sender) {
            head.check_tx(
                &stx,
                TxContext {
                    params: &self.params,
                    slot: next_slot,
                    height: head.height + 1,
                },
            )?;
        } else {
            if stx.tx.sender.is_black_hole() {
                return Err(TxError::FromBlackHole.into());
            }
            if stx.tx.chain_id != self.chain_id {
                return Err(TxError::WrongChain {
                    want: self.chain_id,
                    got: stx.tx.chain_id,
                }
                .into());
            }
            if !stx.signature_ok() {
                return Err(TxError::BadSignature(stx.id()).into());
            }
            if stx.tx.nonce < head.nonce(&stx.tx.sender) {
                return Err(TxError::Replayed {
                    sender: stx.tx.sender,
                    want: head.nonce(&stx.tx.sender),
                    got: stx.tx.nonce,
                }
                .into());
            }
        }
        let k = (stx.tx.sender, stx.tx.nonce);
        if let Some(old) = self.mempool.get(&k) {
            if *old == stx {
                return Ok(stx.id());
            }
            return Err(SubmitError::Conflict(k.0, k.1));
        }
        if self.mempool.len() >= MAX_MEMPOOL {
            return Err(SubmitError::Full);
        }
        let id = stx.id();
        self.mempool.insert(k, stx);
        Ok(id)
    }

    /// Whether exactly this transaction is already waiting in the mempool
    /// (a relay must not send it on again, or two nodes would echo it forever).
    pub fn has_tx(&self, stx: &SignedTx) -> bool {
        self.mempool
            .get(&(stx.tx.sender, stx.tx.nonce))
            .is_some_and(|t| t == stx)
    }

    /// If this node's key owns the current slot on its head's branch and has
    /// not produced in it, builds, signs and adopts a block.
    pub fn produce_if_scheduled(&mut self) -> Result<Option<Arc<Block>>, NodeError> {
        if self.keys.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now_ms();
        if now < self.genesis_time_ms {
            return Ok(None);
        }
        let slot = self.slot_at(now);
        let head = self.fork.head().clone();
        if slot <= head.state.slot || slot <= self.produced_slot {
            return Ok(None);
        }
        let (producer, version) = scheduled_producer(&head.state, slot, &self.params);
        let Some(key) = self.keys.iter().find(|k| k.address() == producer).cloned() else {
            return Ok(None);
        };
        let txs = self.pick_txs(&head.state, slot);
        let block = Arc::new(Block::build(
            &key,
            self.chain_id,
            head.height() + 1,
            slot,
            head.id(),
            version,
            head.state.mmr.root(),
            txs,
        ));
        self.produced_slot = slot;
        let (_, fin) = self
            .fork
            .insert(block.clone())
            .map_err(|e| NodeError::OwnBlock(Box::new(e)))?;
        self.persist(&block, fin)?;
        self.own_votes = self.after_head_change();
        Ok(Some(block))
    }

    fn pick_txs(&self, head: &State, slot: u64) -> Vec<SignedTx> {
        let mut scratch = head.clone();
        let ctx = TxContext {
            params: &self.params,
            slot,
            height: head.height + 1,
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let budget = self.params.max_block_bytes as usize / 2;
        for stx in self.mempool.values() {
            if out.len() >= self.params.max_txs_per_block as usize || bytes >= budget {
                break;
            }
            if scratch.apply_tx(stx, ctx).is_ok() {
                bytes += stx.encode().len();
                out.push(stx.clone());
            }
        }
        out
    }

    /// The quorum votes justifying the highest justified block on this
    /// node's branch (fast confirmations; fork.rs `justification`): send
    /// them with each block this node produces.
    pub fn justification(&self) -> Vec<Confirmation> {
        if !self.params.fast_confirmations {
            return Vec::new();
        }
        self.fork.justification()
    }

    /// The finality votes this node cast for the block it last produced
    /// (fast confirmations), once: send them with the block, or the
    /// producer's votes are missing from every quorum.
    pub fn take_votes(&mut self) -> Vec<Confirmation> {
        std::mem::take(&mut self.own_votes)
    }

    /// Takes a block from a peer (or the runner). `Err` means the block is
    /// invalid and the peer that sent it misbehaved.
    pub fn on_block(&mut self, block: Arc<Block>) -> Result<BlockOutcome, NodeError> {
        let now_slot = self.slot_at(self.clock.now_ms() + self.params.max_clock_skew_ms);
        if block.header.slot > now_slot {
            return Err(NodeError::Block(Box::new(BlockError::FromFuture {
                id: block.id(),
                slot: block.header.slot,
                now_slot,
            })));
        }
        self.watch_equivocation(&block);
        match self.fork.insert(block.clone()) {
            Ok((Inserted::Duplicate, _)) => Ok(BlockOutcome::Duplicate),
            Ok((Inserted::Added, fin)) => {
                self.persist(&block, fin)?;
                self.adopt_orphans(block.id())?;
                let votes = self.after_head_change();
                Ok(BlockOutcome::Added { votes })
            }
            Err(BlockError::Unlinkable { prev, .. }) => {
                if self.orphan_count >= MAX_ORPHANS {
                    // Stale forks nobody completes would fill the pool for
                    // good; start over (sync refetches what is needed).
                    self.orphans.clear();
                    self.orphan_count = 0;
                }
                self.orphans.entry(prev).or_default().push(block);
                self.orphan_count += 1;
                Ok(BlockOutcome::Orphan {
                    sync_from: self.fork.lib().height(),
                })
            }
            Err(e) => Err(NodeError::Block(Box::new(e))),
        }
    }

    /// Keeps the signed header of each (slot, producer) for the last few
    /// rounds; a second, different one with a valid signature is evidence.
    fn watch_equivocation(&mut self, block: &Block) {
        let k = (block.header.slot, block.header.producer);
        let sh = block.signed_header();
        match self.seen_headers.get(&k) {
            Some(a) if a.header != sh.header => {
                // One proof per producer is enough, and a cheater signing
                // many variants must not grow this list without bound.
                let known = self.evidence.iter().any(|e| e.a.header.producer == k.1);
                if !known && self.evidence.len() < 64 && sh.signature_ok() && a.signature_ok() {
                    self.evidence.push(Equivocation {
                        a: a.clone(),
                        b: sh,
                    });
                }
            }
            Some(_) => {}
            None => {
                if sh.signature_ok() {
                    self.seen_headers.insert(k, sh);
                }
            }
        }
        let keep_from = self
            .fork
            .head()
            .state
            .slot
            .saturating_sub(4 * self.params.round_slots());
        while self
            .seen_headers
            .first_key_value()
            .is_some_and(|(k, _)| k.0 < keep_from)
        {
            self.seen_headers.pop_first();
        }
    }

    /// Compares a verified vote with its producer's previous one: a double
    /// or surround vote is evidence (one per producer, at most 64 kept).
    fn watch_vote(&mut self, c: &Confirmation) {
        if let Some(prev) = self.last_votes.get(&c.producer) {
            let ev = VoteEquivocation {
                a: prev.clone(),
                b: c.clone(),
            };
            let known = self
                .vote_evidence
                .iter()
                .any(|e| e.a.producer == c.producer);
            if ev.broken_rule().is_some() && !known && self.vote_evidence.len() < 64 {
                self.vote_evidence.push(ev);
            }
            if prev.height >= c.height {
                return;
            }
        }
        // Only producers of a schedule get here (checked by the caller).
        self.last_votes.insert(c.producer, c.clone());
    }

    /// Every equivocation proof this node holds (at most 64 of each kind,
    /// one per producer), as the transaction kind that submits it: what
    /// `GET /v1/evidence` serves and `qcss wallet evidence` submits.
    pub fn evidence(&self) -> Vec<crate::tx::TxKind> {
        use crate::tx::TxKind;
        let headers = self
            .evidence
            .iter()
            .map(|e| TxKind::Evidence(Box::new(e.clone())));
        let votes = self
            .vote_evidence
            .iter()
            .map(|e| TxKind::VoteEvidence(Box::new(e.clone())));
        headers.chain(votes).collect()
    }

    /// Equivocation proofs this node has seen since the last call; anyone
    /// may submit them in an `Evidence` transaction.
    pub fn take_evidence(&mut self) -> Vec<Equivocation> {
        std::mem::take(&mut self.evidence)
    }

    /// The id of the irreversible block at `height` (≤ the LIB), if kept.
    pub fn irreversible_id(&self, height: u64) -> Result<Option<Hash32>, NodeError> {
        let lib = self.fork.lib();
        if height == lib.height() {
            return Ok(Some(lib.id()));
        }
        if height > lib.height() {
            return Ok(None);
        }
        if height == 0 {
            return Ok(Some(self.chain_id));
        }
        Ok(match &self.store {
            Some(store) => store.block_at(height)?.map(|b| b.id()),
            None => usize::try_from(height - 1)
                .ok()
                .and_then(|i| self.finalized.get(i))
                .map(|b| b.id()),
        })
    }

    fn adopt_orphans(&mut self, parent: Hash32) -> Result<(), NodeError> {
        let mut ready = vec![parent];
        while let Some(p) = ready.pop() {
            for b in self.orphans.remove(&p).unwrap_or_default() {
                self.orphan_count = self.orphan_count.saturating_sub(1);
                if let Ok((Inserted::Added, fin)) = self.fork.insert(b.clone()) {
                    self.persist(&b, fin)?;
                    ready.push(b.id());
                }
            }
        }
        Ok(())
    }

    /// Takes a producer's confirmation. `accepted` is false if it was
    /// refused (bad signature, other chain, not a producer of the head's
    /// schedule) or changed nothing; if it moved this node to another head,
    /// `votes` are this node's votes for that head, to send on.
    pub fn on_confirmation(&mut self, c: &Confirmation) -> Result<ConfirmOutcome, NodeError> {
        let refused = ConfirmOutcome {
            accepted: false,
            votes: Vec::new(),
        };
        if !self.params.fast_confirmations
            || c.chain_id != self.chain_id
            || !self.fork.confirmation_useful(c)
        {
            return Ok(refused);
        }
        let head = self.fork.head().state.clone();
        let known = head.schedule.producers.binary_search(&c.producer).is_ok()
            || head
                .pending
                .as_ref()
                .is_some_and(|p| p.schedule.producers.contains(&c.producer));
        if !known || !c.signature_ok() {
            return Ok(refused);
        }
        self.watch_vote(c);
        let before = self.fork.head().id();
        let fin = self.fork.confirm(c);
        if !fin.blocks.is_empty() {
            self.persist_final(fin)?;
        }
        let votes = if self.fork.head().id() != before {
            self.after_head_change()
        } else {
            Vec::new()
        };
        Ok(ConfirmOutcome {
            accepted: true,
            votes,
        })
    }

    /// After the head may have moved: prune the mempool and, if this node
    /// holds producer keys of the head's schedule, vote for the head with
    /// each of them from its highest justified ancestor (fork.rs) — only to
    /// a higher target than before, from a source no lower than before
    /// (Casper FFG's two rules; the keys vote alike, so one record serves).
    fn after_head_change(&mut self) -> Vec<Confirmation> {
        let head = self.fork.head().clone();
        let state = &head.state;
        self.mempool
            .retain(|(a, n), tx| *n >= state.nonce(a) && tx.tx.expiry_slot > state.slot);
        if !self.params.fast_confirmations || head.height() <= self.voted.1 {
            return Vec::new();
        }
        // A node catching up (a sync, after a partition) does not vote on
        // blocks more than a round old: a vote there helps no one, and a
        // producer whose data directory was wiped (no `M/voted`) could
        // otherwise cast, on old blocks, a vote surrounding one it sent
        // before the wipe — evidence against itself.
        if self.clock_slot().saturating_sub(state.slot) > self.params.round_slots() {
            return Vec::new();
        }
        let keys: Vec<Keypair> = self
            .keys
            .iter()
            .filter(|k| state.schedule.producers.binary_search(&k.address()).is_ok())
            .cloned()
            .collect();
        if keys.is_empty() {
            return Vec::new();
        }
        let source = self.fork.branch_justified(&head, true);
        if source.height() < self.voted.0 {
            // After a restart this node may not yet have seen its last
            // source justified again; others' votes will show it.
            return Vec::new();
        }
        let voted = (source.height(), head.height());
        if let Some(store) = &self.store {
            // Never send a vote that a restart could contradict.
            if store.set_voted(voted).is_err() {
                return Vec::new();
            }
        }
        self.voted = voted;
        let votes: Vec<Confirmation> = keys
            .iter()
            .map(|key| {
                Confirmation::sign(
                    key,
                    self.chain_id,
                    (source.height(), source.id()),
                    (head.height(), head.id()),
                )
            })
            .collect();
        for c in &votes {
            let fin = self.fork.confirm(c);
            if !fin.blocks.is_empty() {
                // A failed write here surfaces on the next persist.
                let _ = self.persist_final(fin);
            }
        }
        votes
    }

    fn persist(&mut self, block: &Arc<Block>, fin: Finalized) -> Result<(), NodeError> {
        if let Some(store) = &self.store {
            store.put_block(block)?;
        }
        if !fin.blocks.is_empty() {
            self.persist_final(fin)?;
        }
        Ok(())
    }

    fn persist_final(&mut self, fin: Finalized) -> Result<(), NodeError> {
        // Keep a finality certificate for each block holding an anchor (or
        // the next one after it, when that block was finalized by a link
        // that skipped blocks and so has none): anchor proofs show it.
        self.certificate_wanted |= fin
            .blocks
            .iter()
            .any(|b| b.txs.iter().any(|t| matches!(t.tx.kind, TxKind::Anchor(_))));
        // And one every CERTIFICATE_EVERY blocks, so that a sync answer can
        // carry one and a node syncing finalizes as it goes.
        let fresh = fin.certificate.is_some();
        if fin.certificate.is_some() {
            self.latest_certificate = fin.certificate;
        }
        let keep = self.latest_certificate.as_ref().filter(|c| {
            fresh
                && (self.certificate_wanted
                    || c.source_height() >= self.certificate_kept + CERTIFICATE_EVERY)
        });
        let kept = keep.map(Certificate::source_height);
        match &self.store {
            Some(store) => {
                if let Some(c) = keep {
                    store.put_certificate(c)?;
                }
                if let Some(c) = self.latest_certificate.as_ref().filter(|_| fresh) {
                    store.set_latest_certificate(c)?;
                }
                let fork = &self.fork;
                store.finalize(&fork.lib().state, &fin.blocks, &|id| fork.get(id).is_some())?;
            }
            None => {
                self.finalized.extend(fin.blocks);
                if let Some(c) = keep {
                    self.certificates.insert(c.source_height(), c.clone());
                }
            }
        }
        if let Some(h) = kept {
            self.certificate_wanted = false;
            self.certificate_kept = h;
        }
        Ok(())
    }

    /// The certificate with the highest source height in `from ..= to`
    /// (the latest this node saw, or one it kept): what a sync answer over
    /// those heights carries, so the asking node can finalize them.
    pub fn sync_certificate(&self, from: u64, to: u64) -> Result<Option<Certificate>, NodeError> {
        if let Some(c) = &self.latest_certificate
            && (from..=to).contains(&c.source_height())
        {
            return Ok(Some(c.clone()));
        }
        self.kept_certificate(from, to, End::Highest)
    }

    /// Counts a certificate's votes as if each had arrived on its own (a
    /// sync answer carries one; see [`Node::sync_certificate`]). Returns
    /// this node's own votes if its head moved; votes are not relayed.
    pub fn on_certificate(&mut self, c: &Certificate) -> Result<Vec<Confirmation>, NodeError> {
        let mut votes = Vec::new();
        if c.votes.len() > crate::block::MAX_CERTIFICATE_VOTES {
            return Ok(votes);
        }
        for vote in c.confirmations() {
            votes.extend(self.on_confirmation(&vote)?.votes);
        }
        Ok(votes)
    }

    /// The finality certificate kept with the lowest source height in
    /// `from ..= to` (see [`crate::block::Certificate`]).
    pub fn certificate_in(&self, from: u64, to: u64) -> Result<Option<Certificate>, NodeError> {
        self.kept_certificate(from, to, End::Lowest)
    }

    fn kept_certificate(
        &self,
        from: u64,
        to: u64,
        end: End,
    ) -> Result<Option<Certificate>, NodeError> {
        if from > to {
            return Ok(None);
        }
        Ok(match &self.store {
            Some(store) => store.certificate_in(from, to, end)?,
            None => {
                let mut range = self.certificates.range(from..=to);
                match end {
                    End::Lowest => range.next(),
                    End::Highest => range.next_back(),
                }
                .map(|(_, c)| c.clone())
            }
        })
    }

    /// Blocks above `height` on this node's best chain, oldest first, at most
    /// [`MAX_SYNC_BLOCKS`]: what a peer asks for to catch up.
    pub fn blocks_after(&self, height: u64) -> Result<Vec<Arc<Block>>, NodeError> {
        let mut out = Vec::new();
        let lib = self.fork.lib().height();
        // Saturating: `height` comes from a peer, and u64::MAX + 1 panicked
        // the node's core task in debug builds (and served the whole chain
        // from height 1 in release).
        let mut h = height.saturating_add(1);
        while h <= lib && out.len() < MAX_SYNC_BLOCKS {
            let b = match &self.store {
                Some(store) => store.block_at(h)?.map(Arc::new),
                None => usize::try_from(h - 1)
                    .ok()
                    .and_then(|i| self.finalized.get(i).cloned()),
            };
            match b {
                Some(b) => out.push(b),
                None => break,
            }
            h += 1;
        }
        for b in self.fork.head_branch() {
            if out.len() >= MAX_SYNC_BLOCKS {
                break;
            }
            if b.header.height > height {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// The block at `height` on this node's best chain (irreversible or on
    /// the head's branch), if there is one.
    pub fn block_at(&self, height: u64) -> Result<Option<Arc<Block>>, NodeError> {
        if height == 0 {
            return Ok(None);
        }
        if height <= self.fork.lib().height() {
            return Ok(match &self.store {
                Some(store) => store.block_at(height)?.map(Arc::new),
                None => usize::try_from(height - 1)
                    .ok()
                    .and_then(|i| self.finalized.get(i).cloned()),
            });
        }
        Ok(self
            .fork
            .head_branch()
            .into_iter()
            .find(|b| b.header.height == height))
    }

    /// The slot the local clock is in now.
    pub fn clock_slot(&self) -> u64 {
        self.slot_at(self.clock.now_ms())
    }

    /// Head, LIB, schedule and participation.
    pub fn status(&self) -> Status {
        let head = self.fork.head();
        let lib = self.fork.lib();
        let s = &head.state;
        Status {
            head_height: head.height(),
            head_slot: s.slot,
            head_id: head.id(),
            lib_height: lib.height(),
            lib_id: lib.id(),
            dpos_lib: s.dpos_lib,
            schedule_version: s.schedule.version,
            round_order: s.order.clone(),
            producers: s
                .schedule
                .producers
                .iter()
                .map(|a| {
                    let p = s.producers.get(a).cloned().unwrap_or_default();
                    (*a, p.produced_total, p.missed_total)
                })
                .collect(),
            mempool: self.mempool.len(),
        }
    }
}
