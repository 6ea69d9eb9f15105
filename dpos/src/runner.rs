//! `ChainNode`: runs a [`Node`] over tokio and plain TCP. Every connection
//! (dialled or accepted) is a link carrying length-prefixed frames of
//! [`Wire`] messages; a frame longer than the limit closes the link before
//! its body is read, and a peer that sends an undecodable frame or an
//! invalid block is dropped. One core task owns the node: it produces when
//! scheduled (checking the clock every tenth of a slot), applies what links
//! deliver, floods blocks, confirmations and transactions, and answers sync
//! requests on the asking link. TLS, peer discovery and metrics are not here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::block::{Block, Confirmation};
use crate::codec;
use crate::node::{BlockOutcome, Node, Status};
use crate::tx::SignedTx;

/// What nodes send over a link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Wire {
    /// A block (new, or one of a sync answer).
    Block(Block),
    /// A producer's confirmation.
    Confirm(Confirmation),
    /// A transaction to relay.
    Tx(SignedTx),
    /// "Send me your best chain above this height."
    SyncRequest(u64),
}

/// Frames queued per link before new ones are dropped (a slow peer cannot
/// make the node buffer without bound).
const LINK_QUEUE: usize = 1024;

type LinkId = u64;

/// A link as the core sees it: its outgoing queue and a switch that closes it.
struct Link {
    out: mpsc::Sender<Arc<Vec<u8>>>,
    kill: Arc<tokio::sync::Notify>,
}

enum Event {
    Up(LinkId, Link),
    Frame(LinkId, Vec<u8>),
    Down(LinkId),
    /// Something the local node accepted, to send to every peer.
    Relay(Box<Wire>),
}

/// A running node; dropping the handle does not stop it, [`ChainNode::stop`] does.
#[derive(Debug)]
pub struct ChainNode {
    node: Arc<Mutex<Node>>,
    events: mpsc::Sender<Event>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    peers: Arc<std::sync::atomic::AtomicUsize>,
    /// Address the node listens on.
    pub local_addr: SocketAddr,
}

impl ChainNode {
    /// Starts serving `listener` and dialling `peers` (redialled every
    /// second while down).
    pub fn start(
        node: Node,
        listener: TcpListener,
        peers: Vec<SocketAddr>,
    ) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let max_frame = node_limit(&node);
        let slot_ms = node_slot_ms(&node);
        let node = Arc::new(Mutex::new(node));
        let (stop, stop_rx) = watch::channel(false);
        let (ev_tx, ev_rx) = mpsc::channel::<Event>(4096);
        let ids = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = Vec::new();
        {
            let (ev_tx, ids, mut stop_rx) = (ev_tx.clone(), ids.clone(), stop_rx.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        r = listener.accept() => if let Ok((s, _)) = r {
                            spawn_link(s, ids.fetch_add(1, std::sync::atomic::Ordering::SeqCst), max_frame, ev_tx.clone(), stop_rx.clone());
                        },
                        _ = stop_rx.changed() => return,
                    }
                }
            }));
        }
        for peer in peers {
            let (ev_tx, ids, mut stop_rx) = (ev_tx.clone(), ids.clone(), stop_rx.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    if let Ok(s) = TcpStream::connect(peer).await {
                        let id = ids.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let done = spawn_link(s, id, max_frame, ev_tx.clone(), stop_rx.clone());
                        let _ = done.await;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop_rx.changed() => return,
                    }
                }
            }));
        }
        let peers = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        tasks.push(tokio::spawn(core(
            node.clone(),
            ev_rx,
            stop_rx,
            slot_ms,
            max_frame,
            peers.clone(),
        )));
        Ok(Self {
            node,
            events: ev_tx,
            stop,
            tasks,
            peers,
            local_addr,
        })
    }

    /// Head, LIB, schedule and participation.
    pub fn status(&self) -> Status {
        match self.node.lock() {
            Ok(n) => n.status(),
            Err(poisoned) => poisoned.into_inner().status(),
        }
    }

    /// Links open now (dialled and accepted; two nodes that dial each other
    /// count twice).
    pub fn peer_links(&self) -> usize {
        self.peers.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` on the node (to submit a transaction, read state, …).
    pub fn with_node<R>(&self, f: impl FnOnce(&mut Node) -> R) -> R {
        match self.node.lock() {
            Ok(mut n) => f(&mut n),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Checks a transaction, queues it and sends it to every peer.
    pub async fn submit_tx(
        &self,
        tx: SignedTx,
    ) -> Result<crate::hash::Hash32, crate::node::SubmitError> {
        let id = self.with_node(|n| n.submit_tx(tx.clone()))?;
        // The core task is gone only after stop(); then nobody relays anyway.
        let _ = self.events.send(Event::Relay(Box::new(Wire::Tx(tx)))).await;
        Ok(id)
    }

    /// Stops every task and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn node_limit(node: &Node) -> usize {
    node.params().max_block_bytes as usize + 1024
}

fn node_slot_ms(node: &Node) -> u64 {
    node.params().slot_ms
}

/// Spawns the reader and writer of one link; the returned handle ends when
/// the link is closed.
fn spawn_link(
    stream: TcpStream,
    id: LinkId,
    max_frame: usize,
    events: mpsc::Sender<Event>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::channel::<Arc<Vec<u8>>>(LINK_QUEUE);
    let kill = Arc::new(tokio::sync::Notify::new());
    let link = Link {
        out: out_tx,
        kill: kill.clone(),
    };
    tokio::spawn(async move {
        if events.send(Event::Up(id, link)).await.is_err() {
            return;
        }
        let writer = tokio::spawn(async move {
            while let Some(frame) = out_rx.recv().await {
                let len = (frame.len() as u32).to_be_bytes();
                if wr.write_all(&len).await.is_err() || wr.write_all(&frame).await.is_err() {
                    return;
                }
            }
        });
        loop {
            let mut len = [0u8; 4];
            let read = tokio::select! {
                r = rd.read_exact(&mut len) => r,
                _ = stop.changed() => break,
                _ = kill.notified() => break,
            };
            if read.is_err() {
                break;
            }
            let n = u32::from_be_bytes(len) as usize;
            if n > max_frame {
                break; // oversize: drop the peer before reading the body
            }
            let mut buf = vec![0u8; n];
            if rd.read_exact(&mut buf).await.is_err() {
                break;
            }
            if events.send(Event::Frame(id, buf)).await.is_err() {
                break;
            }
        }
        writer.abort();
        let _ = events.send(Event::Down(id)).await;
    })
}

async fn core(
    node: Arc<Mutex<Node>>,
    mut events: mpsc::Receiver<Event>,
    mut stop: watch::Receiver<bool>,
    slot_ms: u64,
    max_frame: usize,
    peers: Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut links: HashMap<LinkId, Link> = HashMap::new();
    // At most one sync request per link and slot: a peer on a branch that
    // does not reach our LIB answers with orphans, and asking again for each
    // would multiply the traffic without end.
    let mut last_sync: HashMap<LinkId, tokio::time::Instant> = HashMap::new();
    // Blocks still to come of the last sync request to each link. A full
    // answer (MAX_SYNC_BLOCKS) means the peer has more: ask again at once,
    // or a node far behind would fetch only one answer per slot (and none
    // from a peer that is not producing).
    let mut awaiting: HashMap<LinkId, usize> = HashMap::new();
    let sync_gap = Duration::from_millis(slot_ms.max(1));
    // Closing a misbehaving peer: forget it and end its reader.
    let drop_link = |links: &mut HashMap<LinkId, Link>, id: LinkId| {
        if let Some(l) = links.remove(&id) {
            l.kill.notify_one();
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis((slot_ms / 10).max(1)));
    loop {
        let mut out: Vec<(Option<LinkId>, Wire)> = Vec::new();
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {
                let mut n = lock(&node);
                if let Ok(Some(b)) = n.produce_if_scheduled() {
                    out.push((None, Wire::Block((*b).clone())));
                }
            }
            ev = events.recv() => match ev {
                None => return,
                Some(Event::Up(id, link)) => {
                    links.insert(id, link);
                    // Ask a new peer for anything above our LIB.
                    let lib = lock(&node).status().lib_height;
                    out.push((Some(id), Wire::SyncRequest(lib)));
                }
                Some(Event::Relay(msg)) => out.push((None, *msg)),
                Some(Event::Down(id)) => {
                    links.remove(&id);
                    last_sync.remove(&id);
                    awaiting.remove(&id);
                }
                Some(Event::Frame(id, bytes)) => {
                    match codec::decode::<Wire>(&bytes, max_frame) {
                        Ok(msg) => {
                            let is_block = matches!(msg, Wire::Block(_));
                            if !handle(&node, id, msg, &mut out) {
                                drop_link(&mut links, id);
                            } else if is_block && let Some(left) = awaiting.get_mut(&id) {
                                *left = left.saturating_sub(1);
                                if *left == 0 {
                                    awaiting.remove(&id);
                                    let head = lock(&node).status().head_height;
                                    // Bypasses the per-slot limit below: it
                                    // follows a full answer, not an orphan.
                                    last_sync.remove(&id);
                                    out.push((Some(id), Wire::SyncRequest(head)));
                                }
                            }
                        }
                        Err(_) => drop_link(&mut links, id),
                    }
                }
            }
        }
        peers.store(links.len(), std::sync::atomic::Ordering::Relaxed);
        for (to, msg) in out {
            if let (Some(id), Wire::SyncRequest(_)) = (to, &msg) {
                let now = tokio::time::Instant::now();
                if last_sync
                    .get(&id)
                    .is_some_and(|t| now.duration_since(*t) < sync_gap)
                {
                    continue;
                }
                last_sync.insert(id, now);
                awaiting.insert(id, crate::node::MAX_SYNC_BLOCKS);
            }
            let frame = Arc::new(codec::encode(&msg));
            match to {
                Some(id) => {
                    if let Some(l) = links.get(&id) {
                        let _ = l.out.try_send(frame);
                    }
                }
                None => {
                    for l in links.values() {
                        let _ = l.out.try_send(frame.clone());
                    }
                }
            }
        }
    }
}

fn lock(node: &Arc<Mutex<Node>>) -> std::sync::MutexGuard<'_, Node> {
    match node.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Applies one message; returns false if the sender misbehaved.
fn handle(
    node: &Arc<Mutex<Node>>,
    from: LinkId,
    msg: Wire,
    out: &mut Vec<(Option<LinkId>, Wire)>,
) -> bool {
    let mut n = lock(node);
    match msg {
        Wire::Block(b) => {
            let b = Arc::new(b);
            match n.on_block(b.clone()) {
                Ok(BlockOutcome::Added { confirmation }) => {
                    out.push((None, Wire::Block((*b).clone())));
                    if let Some(c) = confirmation {
                        out.push((None, Wire::Confirm(c)));
                    }
                }
                Ok(BlockOutcome::Orphan { sync_from }) => {
                    out.push((Some(from), Wire::SyncRequest(sync_from)))
                }
                Ok(BlockOutcome::Duplicate) => {}
                Err(crate::node::NodeError::Block(e)) => {
                    // A block from the future may just be clock skew; anything
                    // else is the peer's fault.
                    return matches!(*e, crate::chain::BlockError::FromFuture { .. });
                }
                Err(_) => {}
            }
        }
        Wire::Confirm(c) => {
            if let Ok(o) = n.on_confirmation(&c) {
                if o.accepted {
                    out.push((None, Wire::Confirm(c)));
                }
                if let Some(mine) = o.confirmation {
                    out.push((None, Wire::Confirm(mine)));
                }
            }
        }
        Wire::Tx(tx) => {
            if !n.has_tx(&tx) && n.submit_tx(tx.clone()).is_ok() {
                out.push((None, Wire::Tx(tx)));
            }
        }
        Wire::SyncRequest(h) => {
            if let Ok(blocks) = n.blocks_after(h) {
                for b in blocks {
                    out.push((Some(from), Wire::Block((*b).clone())));
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Clock, SystemClock};
    use crate::params::Params;
    use crate::testkit::Kit;

    async fn start(kit: &Kit, i: usize, peers: Vec<SocketAddr>) -> ChainNode {
        let key = kit.producers.values().nth(i).cloned();
        let node = Node::in_memory(&kit.genesis, key, Arc::new(SystemClock)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        ChainNode::start(node, listener, peers).unwrap()
    }

    /// Polls every 50 ms until `cond` holds for the nodes' statuses;
    /// fails after 30 s.
    async fn wait_for(nodes: &[ChainNode], cond: impl Fn(&[Status]) -> bool) -> Vec<Status> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let st: Vec<Status> = nodes.iter().map(ChainNode::status).collect();
            if cond(&st) {
                return st;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out: {st:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Four producers on 127.0.0.1 with 250 ms slots: they agree and finalize;
    /// with one stopped the other three (the threshold) go on; a node started
    /// from scratch syncs the chain from its peers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn loopback_nodes_agree_survive_a_stop_and_sync_a_newcomer() {
        let mut params = Params::fast(4);
        params.slot_ms = 250;
        let mut kit = Kit::with(params);
        kit.genesis.genesis_time_ms = SystemClock.now_ms() + 300;
        let mut nodes: Vec<ChainNode> = Vec::new();
        for i in 0..4 {
            let peers = nodes.iter().map(|n| n.local_addr).collect();
            nodes.push(start(&kit, i, peers).await);
        }
        // Poll with generous deadlines: the machine may be busy with other
        // tests; the assertions are about outcomes, not speed.
        let st = wait_for(&nodes, |st| st.iter().all(|s| s.lib_height >= 10)).await;
        let min_lib = st.iter().map(|s| s.lib_height).min().unwrap();
        assert!(
            st[0].head_height <= min_lib + 8,
            "finality keeps up: {st:?}"
        );
        let at = |n: &ChainNode, h| n.with_node(|n| n.irreversible_id(h).unwrap());
        for n in &nodes[1..] {
            assert_eq!(at(n, min_lib), at(&nodes[0], min_lib));
        }

        // A transaction given to one node reaches the producers and a block.
        let user = &kit.users[0];
        let burn = kit.tx(user, 0, crate::tx::TxKind::Burn { amount: 7 });
        let mut burn = burn.tx;
        burn.expiry_slot = nodes[0].status().head_slot + 100;
        nodes[0].submit_tx(burn.sign(user)).await.unwrap();
        wait_for(&nodes, |_| {
            nodes
                .iter()
                .all(|n| n.with_node(|n| n.head_state().burned == 7))
        })
        .await;

        let gone = nodes.pop().unwrap();
        let addr = gone.local_addr;
        gone.stop().await;
        let lib_before = nodes[0].status().lib_height;
        // 3 of 4 (the threshold) still finalize.
        let st = wait_for(&nodes, |st| st[0].lib_height >= lib_before + 6).await;
        let lib_after = st[0].lib_height;

        // A fresh node (no key) syncs everything from its peers.
        let peers = nodes.iter().map(|n| n.local_addr).chain([addr]).collect();
        let mut fresh_kit = Kit::with(kit.params.clone());
        fresh_kit.genesis = kit.genesis.clone();
        fresh_kit.producers.clear();
        let newcomer = start(&fresh_kit, 0, peers).await;
        wait_for(std::slice::from_ref(&newcomer), |st| {
            st[0].lib_height >= lib_after
        })
        .await;
        assert_eq!(at(&newcomer, lib_after), at(&nodes[0], lib_after));
        newcomer.stop().await;
        for n in nodes {
            n.stop().await;
        }
    }

    /// Garbage and oversize frames close the link; the node keeps serving.
    #[tokio::test]
    async fn garbage_and_oversize_frames_drop_the_peer() {
        // Genesis now: with the kit's genesis at 1970, a producer's first
        // block would account ~7·10⁹ missed slots (it spun for minutes when
        // the node's tick came before the test's last request on a busy machine).
        let mut kit = Kit::new();
        kit.genesis.genesis_time_ms = SystemClock.now_ms();
        let node = start(&kit, 0, vec![]).await;
        for frame in [
            [&5u32.to_be_bytes()[..], &[0xff; 5][..]].concat(),
            u32::MAX.to_be_bytes().to_vec(),
        ] {
            let mut s = TcpStream::connect(node.local_addr).await.unwrap();
            s.write_all(&frame).await.unwrap();
            // The node first sends its sync request, then closes the link.
            let mut buf = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
            assert!(
                matches!(read, Ok(Ok(_))),
                "link closed by the node: {read:?}"
            );
        }
        // Still serving: a well-formed request gets an answer.
        let mut s = TcpStream::connect(node.local_addr).await.unwrap();
        let req = codec::encode(&Wire::SyncRequest(0));
        s.write_all(&(req.len() as u32).to_be_bytes())
            .await
            .unwrap();
        s.write_all(&req).await.unwrap();
        let mut len = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len))
            .await
            .unwrap()
            .unwrap();
        node.stop().await;
    }
}
