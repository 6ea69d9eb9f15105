//! The deterministic simulator: producer nodes in one process, one virtual
//! clock, and a seeded network of in-process queues with delay, drop,
//! partitions and offline nodes. The same seed replays the same run.
//! Scenarios (tests at the bottom and in `sim_tests.rs`) check heads, LIBs,
//! that no node ever reverts below its LIB and that all nodes agree on
//! every irreversible height.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use crate::address::{Address, Keypair};
use crate::block::{Block, Confirmation};
use crate::hash::Hash32;
use crate::node::{BlockOutcome, Node, VirtualClock};
use crate::params::{Allocation, COIN, Genesis, Params};
use crate::tx::{SignedTx, Tx, TxKind};

/// A deterministic PRNG (SplitMix64) for the simulator and property tests.
/// Never used by consensus (the shuffle has its own hash-based rule).
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What nodes send each other.
#[derive(Debug, Clone)]
pub enum Message {
    /// A new block.
    Block(Arc<Block>),
    /// A producer's confirmation.
    Confirm(Confirmation),
    /// A transaction to relay.
    Tx(SignedTx),
    /// "Send me your best chain above this height."
    SyncRequest(u64),
    /// Answer to a sync request.
    SyncResponse(Vec<Arc<Block>>),
}

/// How nodes reach each other; the simulator's queues implement it, a real
/// network transport will too.
pub trait Transport {
    /// Sends to one node.
    fn send(&mut self, from: usize, to: usize, msg: Message);
    /// Sends to every other node.
    fn broadcast(&mut self, from: usize, msg: Message);
}

/// The simulated network.
#[derive(Debug)]
pub struct SimNet {
    rng: SimRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    pending: HashMap<u64, (usize, usize, Message)>,
    n: usize,
    /// Delivery delay range, ms.
    pub delay_ms: (u64, u64),
    /// Percentage of messages dropped.
    pub drop_pct: u64,
    /// Partition group of each node; nodes in different groups can't talk.
    pub group: Vec<u8>,
    /// Offline nodes neither send nor receive.
    pub down: Vec<bool>,
    /// Messages sent (delivered or not).
    pub sent: u64,
}

impl SimNet {
    fn new(seed: u64, n: usize) -> Self {
        Self {
            rng: SimRng::new(seed),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            n,
            delay_ms: (20, 200),
            drop_pct: 0,
            group: vec![0; n],
            down: vec![false; n],
            sent: 0,
        }
    }

    fn reachable(&self, from: usize, to: usize) -> bool {
        !self.down[from] && !self.down[to] && self.group[from] == self.group[to]
    }

    fn pop_before(&mut self, t: u64) -> Option<(u64, usize, usize, Message)> {
        let Reverse((at, seq)) = *self.queue.peek()?;
        if at >= t {
            return None;
        }
        self.queue.pop();
        let (from, to, msg) = self.pending.remove(&seq)?;
        Some((at, from, to, msg))
    }
}

impl Transport for SimNet {
    fn send(&mut self, from: usize, to: usize, msg: Message) {
        self.sent += 1;
        if !self.reachable(from, to) || self.rng.below(100) < self.drop_pct {
            return;
        }
        let (lo, hi) = self.delay_ms;
        let at = self.now + lo + self.rng.below(hi - lo + 1);
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, (from, to, msg));
    }

    fn broadcast(&mut self, from: usize, msg: Message) {
        for to in 0..self.n {
            if to != from {
                self.send(from, to, msg.clone());
            }
        }
    }
}

/// The simulator.
pub struct Sim {
    /// Shared virtual clock.
    pub clock: VirtualClock,
    /// The genesis.
    pub genesis: Genesis,
    /// Nodes; node i holds key `Sim::key(i)`.
    pub nodes: Vec<Node>,
    /// The network.
    pub net: SimNet,
    /// Current slot.
    pub slot: u64,
    /// Nodes that sign two blocks for each of their slots.
    pub equivocators: Vec<bool>,
    /// Whether nodes send explicit confirmations (off: production-implied
    /// irreversibility only, the BitShares/Steem rule).
    pub confirmations: bool,
    /// Safety violations seen (must stay empty).
    pub violations: Vec<String>,
    /// Blocks refused as invalid (peers misbehaving).
    pub refused: u64,
    libs: Vec<(u64, Hash32)>,
    produced_at: HashMap<Hash32, u64>,
    /// Finality delays observed by node 0, ms from production to irreversible.
    pub finality_ms: Vec<u64>,
    nonces: BTreeMap<Address, u64>,
    /// (node, peer) sync requests in flight; cleared every slot.
    syncing: std::collections::HashSet<(usize, usize)>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("slot", &self.slot)
            .field("nodes", &self.nodes)
            .finish()
    }
}

impl Sim {
    /// Key of node `i`.
    pub fn key(i: usize) -> Keypair {
        Keypair::for_test("sim-node", i as u64)
    }

    /// Key of test account `i` (whales, voters).
    pub fn account(i: usize) -> Keypair {
        Keypair::for_test("sim-account", i as u64)
    }

    /// `nodes` nodes of which the first `params.n_producers` are the initial
    /// producers; every node and 4 accounts hold tokens.
    pub fn new(seed: u64, nodes: usize, params: Params) -> Self {
        let producers = (0..params.n_producers as usize)
            .map(|i| Self::key(i).address())
            .collect();
        let mut allocations: Vec<Allocation> = (0..nodes)
            .map(|i| Allocation {
                label: format!("node {i}"),
                address: Self::key(i).address(),
                amount: 1_000 * COIN,
            })
            .collect();
        for i in 0..4 {
            allocations.push(Allocation {
                label: format!("account {i}"),
                address: Self::account(i).address(),
                amount: 1_000_000 * COIN * (i as u64 + 1),
            });
        }
        let genesis = Genesis {
            name: format!("sim-{seed}"),
            genesis_time_ms: 1_000_000,
            params,
            allocations,
            initial_producers: producers,
        };
        let clock = VirtualClock::default();
        clock.set(genesis.genesis_time_ms);
        let nodes_v: Vec<Node> = (0..nodes)
            .map(|i| {
                // The sim genesis is valid by construction; a failure is a test bug.
                Node::in_memory(&genesis, Some(Self::key(i)), Arc::new(clock.clone()))
                    .unwrap_or_else(|e| panic!("sim genesis: {e}"))
            })
            .collect();
        let chain_id = genesis.chain_id();
        Self {
            clock,
            genesis,
            nodes: nodes_v,
            net: SimNet::new(seed, nodes),
            slot: 0,
            equivocators: vec![false; nodes],
            confirmations: true,
            violations: Vec::new(),
            refused: 0,
            libs: vec![(0, chain_id); nodes],
            produced_at: HashMap::new(),
            finality_ms: Vec::new(),
            nonces: BTreeMap::new(),
            syncing: std::collections::HashSet::new(),
        }
    }

    fn slot_start(&self, slot: u64) -> u64 {
        self.genesis.genesis_time_ms + slot * self.genesis.params.slot_ms
    }

    /// Runs `k` slots.
    pub fn run_slots(&mut self, k: u64) {
        for _ in 0..k {
            self.step_slot();
        }
    }

    fn step_slot(&mut self) {
        self.slot += 1;
        self.syncing.clear();
        let t0 = self.slot_start(self.slot);
        self.deliver_until(t0);
        self.set_time(t0);
        for i in 0..self.nodes.len() {
            if self.net.down[i] {
                continue;
            }
            match self.nodes[i].produce_if_scheduled() {
                Ok(Some(block)) => {
                    self.produced_at.insert(block.id(), t0);
                    if self.equivocators[i] {
                        self.equivocate(i, &block);
                    } else {
                        self.net.broadcast(i, Message::Block(block));
                    }
                    let votes = self.nodes[i].take_votes();
                    if self.confirmations {
                        for v in votes {
                            self.net.broadcast(i, Message::Confirm(v));
                        }
                        for v in self.nodes[i].justification() {
                            self.net.broadcast(i, Message::Confirm(v));
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => self
                    .violations
                    .push(format!("node {i} failed to produce: {e}")),
            }
            self.check_lib(i);
        }
        let end = self.slot_start(self.slot + 1);
        self.deliver_until(end);
    }

    /// Sends `block` to the lower half of the nodes and a conflicting
    /// sibling (same slot, one more transaction) to the upper half.
    fn equivocate(&mut self, i: usize, block: &Arc<Block>) {
        let key = Self::key(i);
        let tx = self.tx(
            &key,
            TxKind::Transfer {
                to: key.address(),
                amount: 1,
            },
        );
        let mut txs = block.txs.clone();
        txs.push(tx);
        let h = &block.header;
        let twin = Arc::new(Block::build(
            &key,
            h.chain_id,
            h.height,
            h.slot,
            h.prev_id,
            h.schedule_version,
            h.block_mmr_root,
            txs,
        ));
        let n = self.nodes.len();
        for to in 0..n {
            if to == i {
                continue;
            }
            let b = if to < n / 2 {
                block.clone()
            } else {
                twin.clone()
            };
            self.net.send(i, to, Message::Block(b));
        }
    }

    fn set_time(&mut self, t: u64) {
        self.clock.set(t);
        self.net.now = t;
    }

    fn deliver_until(&mut self, t: u64) {
        while let Some((at, from, to, msg)) = self.net.pop_before(t) {
            self.set_time(at);
            if !self.net.reachable(from, to) {
                continue;
            }
            self.handle(from, to, msg);
            self.check_lib(to);
        }
    }

    fn handle(&mut self, from: usize, to: usize, msg: Message) {
        match msg {
            Message::Block(b) => self.take_block(from, to, b, false),
            Message::Confirm(c) => match self.nodes[to].on_confirmation(&c) {
                Ok(o) => {
                    if self.confirmations {
                        for mine in o.votes {
                            self.net.broadcast(to, Message::Confirm(mine));
                        }
                    }
                }
                Err(e) => self.violations.push(format!("node {to}: {e}")),
            },
            Message::Tx(tx) => {
                // Relayed transactions may be stale; refusing them is fine.
                let _ = self.nodes[to].submit_tx(tx);
            }
            Message::SyncRequest(h) => match self.nodes[to].blocks_after(h) {
                Ok(blocks) => self.net.send(to, from, Message::SyncResponse(blocks)),
                Err(e) => self.violations.push(format!("node {to}: {e}")),
            },
            Message::SyncResponse(blocks) => {
                self.syncing.remove(&(to, from));
                for b in blocks {
                    self.take_block(from, to, b, true);
                }
            }
        }
    }

    /// Applies a block at `to`. An orphan from gossip asks its sender for
    /// the chain above our LIB, once per (node, peer) until the answer comes
    /// or the slot ends; an orphan inside a sync answer asks nothing (the
    /// peer is on a branch that does not reach our LIB — asking again would
    /// multiply answers without end).
    fn take_block(&mut self, from: usize, to: usize, b: Arc<Block>, via_sync: bool) {
        match self.nodes[to].on_block(b) {
            Ok(BlockOutcome::Added { votes }) => {
                if self.confirmations {
                    for c in votes {
                        self.net.broadcast(to, Message::Confirm(c));
                    }
                }
            }
            Ok(BlockOutcome::Orphan { sync_from }) => {
                if !via_sync && self.syncing.insert((to, from)) {
                    self.net.send(to, from, Message::SyncRequest(sync_from));
                }
            }
            Ok(BlockOutcome::Duplicate) => {}
            Err(_) => self.refused += 1,
        }
    }

    /// Records LIB moves: a LIB never goes down, and the block at the old
    /// LIB height is still the old LIB; node 0's moves feed `finality_ms`.
    fn check_lib(&mut self, i: usize) {
        let lib = self.nodes[i].fork().lib();
        let st = (lib.height(), lib.id());
        let (old_h, old_id) = self.libs[i];
        if st.0 < old_h {
            self.violations
                .push(format!("node {i} LIB went down {old_h} -> {}", st.0));
            return;
        }
        if st.0 == old_h {
            if st.1 != old_id {
                self.violations
                    .push(format!("node {i} LIB at {old_h} changed"));
            }
            return;
        }
        match self.nodes[i].irreversible_id(old_h) {
            Ok(Some(id)) if id == old_id => {}
            other => self.violations.push(format!(
                "node {i} reverted below its LIB {old_h}: now {other:?}"
            )),
        }
        if i == 0 {
            let now = self.clock_now();
            for h in old_h + 1..=st.0 {
                if let Ok(Some(id)) = self.nodes[0].irreversible_id(h)
                    && let Some(t) = self.produced_at.get(&id)
                {
                    self.finality_ms.push(now - t);
                }
            }
        }
        self.libs[i] = st;
    }

    fn clock_now(&self) -> u64 {
        self.net.now
    }

    /// Signs a transaction from `key` with the next nonce the simulator
    /// tracks for it, expiring in 100 slots.
    pub fn tx(&mut self, key: &Keypair, kind: TxKind) -> SignedTx {
        let nonce = self.nonces.entry(key.address()).or_insert(0);
        let tx = Tx {
            chain_id: self.genesis.chain_id(),
            sender: key.address(),
            nonce: *nonce,
            fee: self.genesis.params.min_fee,
            expiry_slot: self.slot + 100,
            kind,
        };
        *nonce += 1;
        tx.sign(key)
    }

    /// Gives a transaction to every online node.
    pub fn submit(&mut self, tx: SignedTx) {
        for i in 0..self.nodes.len() {
            if !self.net.down[i] {
                let _ = self.nodes[i].submit_tx(tx.clone());
            }
        }
    }

    /// Takes nodes offline or back online.
    pub fn set_down(&mut self, nodes: impl IntoIterator<Item = usize>, down: bool) {
        for i in nodes {
            self.net.down[i] = down;
        }
    }

    /// (blocks, mean ms, max ms) from production to irreversible at node 0.
    pub fn finality(&self) -> (usize, u64, u64) {
        let n = self.finality_ms.len();
        let sum: u64 = self.finality_ms.iter().sum();
        let max = self.finality_ms.iter().copied().max().unwrap_or(0);
        (n, sum / (n.max(1) as u64), max)
    }

    /// Whether all nodes agree on every height up to the lowest LIB, and
    /// that height.
    pub fn agreement(&self) -> Result<u64, String> {
        let min_lib = self
            .nodes
            .iter()
            .map(|n| n.status().lib_height)
            .min()
            .unwrap_or(0);
        for h in 1..=min_lib {
            let ids: Vec<_> = self
                .nodes
                .iter()
                .map(|n| n.irreversible_id(h).ok().flatten())
                .collect();
            if ids.iter().any(|x| *x != ids[0] || x.is_none()) {
                return Err(format!("nodes disagree at irreversible height {h}"));
            }
        }
        Ok(min_lib)
    }
}
