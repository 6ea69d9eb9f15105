//! `ChainNode`: runs a [`Node`] over tokio and gRPC over TLS
//! ([`crate::p2p`]). Every connection (dialled or accepted) carries one
//! link: a bidirectional `qcss.chain.P2p/Link` stream of frames, each the
//! canonical bincode of a [`Wire`] message. One core task owns the node: it
//! produces when scheduled (checking the clock every tenth of a slot),
//! applies what links deliver, floods blocks, confirmations and
//! transactions, and answers sync requests on the asking link (up to
//! [`crate::node::MAX_SYNC_BLOCKS`] blocks, and a full answer is followed at
//! once by the next request).
//!
//! Bounds: a gRPC message over the chain's largest block plus overhead is
//! refused from its length prefix; every frame is decoded with that limit;
//! each link has a token bucket on unsolicited messages and bytes; inbound
//! connections and links are capped in total and per IP. A link that sends
//! garbage, an oversize message, an invalid block or more than its bucket
//! is dropped, counted by reason ([`ChainNode::dropped_links`]) and its IP
//! refused for a while; the node keeps going. Peer discovery is not here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::block::{Block, Certificate, Confirmation};
use crate::codec;
use crate::node::{BlockOutcome, MAX_SYNC_BLOCKS, Node, Status as NodeStatus};
use crate::p2p::{
    self, Bucket, DialError, DropReason, Frame, HeadersReply, HeadersRequest, P2pClient, P2pLimits,
    P2pServer, Peer, Shared, TlsIdentity,
};
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
    /// The finality certificate of a block in the sync answer it follows
    /// (finality votes), so the asking node finalizes as it catches up.
    Certificate(Certificate),
}

/// Frames queued per link before new ones are dropped (a slow peer cannot
/// make the node buffer without bound).
const LINK_QUEUE: usize = 1024;

type LinkId = u64;

/// A link as the core sees it: its outgoing queue, a switch that closes
/// it, where it comes from, and its token bucket.
struct Link {
    out: mpsc::Sender<Arc<Vec<u8>>>,
    kill: Arc<tokio::sync::Notify>,
    remote: Option<SocketAddr>,
    bucket: Bucket,
}

enum Event {
    Up(LinkId, Link),
    Frame(LinkId, Vec<u8>),
    Down(LinkId),
    /// Something the local node accepted, to send to every peer.
    Relay(Box<Wire>),
}

/// How a node speaks to its peers: its TLS identity and its limits.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// The certificate and key this node shows (self-signed).
    pub identity: TlsIdentity,
    /// Caps and rates per peer.
    pub limits: P2pLimits,
}

impl P2pConfig {
    /// A fresh in-memory identity and default limits (tests, benchmarks).
    pub fn ephemeral() -> std::io::Result<Self> {
        Ok(Self {
            identity: TlsIdentity::generate()?,
            limits: P2pLimits::default(),
        })
    }
}

/// A running node; dropping the handle does not stop it, [`ChainNode::stop`] does.
#[derive(Debug)]
pub struct ChainNode {
    node: Arc<Mutex<Node>>,
    events: mpsc::Sender<Event>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<()>,
    peers: Arc<AtomicUsize>,
    shared: Arc<Shared>,
    cert_sha256: String,
    /// Address the node listens on.
    pub local_addr: SocketAddr,
}

/// Everything a link task needs.
#[derive(Clone)]
struct LinkCtx {
    events: mpsc::Sender<Event>,
    ids: Arc<AtomicU64>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    max_msg: usize,
}

impl ChainNode {
    /// Starts serving gRPC over TLS on `listener` and dialling `peers`
    /// (redialled every second while down).
    pub fn start(
        node: Node,
        listener: TcpListener,
        peers: Vec<Peer>,
        config: P2pConfig,
    ) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let max_frame = node_limit(&node);
        config
            .limits
            .check(max_frame + p2p::GRPC_OVERHEAD)
            .map_err(std::io::Error::other)?;
        let slot_ms = node_slot_ms(&node);
        let node = Arc::new(Mutex::new(node));
        let (stop, stop_rx) = watch::channel(false);
        let (ev_tx, ev_rx) = mpsc::channel::<Event>(4096);
        let shared = Shared::new(config.limits.clone());
        let ctx = LinkCtx {
            events: ev_tx.clone(),
            ids: Arc::new(AtomicU64::new(0)),
            shared: shared.clone(),
            stop: stop_rx.clone(),
            max_msg: max_frame + p2p::GRPC_OVERHEAD,
        };
        let mut tasks = Vec::new();
        let (conn_tx, conn_rx) = mpsc::channel(64);
        tasks.push(tokio::spawn(p2p::accept_loop(
            listener,
            config.identity.clone(),
            shared.clone(),
            conn_tx,
            stop_rx.clone(),
        )));
        let service = P2pServer::new(Service {
            ctx: ctx.clone(),
            node: node.clone(),
        })
        .max_decoding_message_size(ctx.max_msg)
        .max_encoding_message_size(ctx.max_msg);
        let mut server_stop = stop_rx.clone();
        let server = tokio::spawn(async move {
            let r = tonic::transport::Server::builder()
                .max_concurrent_streams(Some(p2p::MAX_STREAMS_PER_CONNECTION))
                .http2_keepalive_interval(Some(Duration::from_secs(10)))
                .http2_keepalive_timeout(Some(Duration::from_secs(20)))
                .add_service(service)
                .serve_with_incoming_shutdown(ReceiverStream::new(conn_rx), async move {
                    let _ = server_stop.changed().await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "p2p server stopped");
            }
        });
        for peer in peers {
            tasks.push(tokio::spawn(dial_loop(peer, ctx.clone())));
        }
        let peers = Arc::new(AtomicUsize::new(0));
        tasks.push(tokio::spawn(core(
            node.clone(),
            ev_rx,
            stop_rx,
            slot_ms,
            max_frame,
            peers.clone(),
            shared.clone(),
        )));
        Ok(Self {
            node,
            events: ev_tx,
            stop,
            tasks,
            server,
            peers,
            shared,
            cert_sha256: config.identity.cert_sha256(),
            local_addr,
        })
    }

    /// Head, LIB, schedule and participation.
    pub fn status(&self) -> NodeStatus {
        match self.node.lock() {
            Ok(n) => n.status(),
            Err(poisoned) => poisoned.into_inner().status(),
        }
    }

    /// Links open now (dialled and accepted; two nodes that dial each other
    /// count twice).
    pub fn peer_links(&self) -> usize {
        self.peers.load(Ordering::Relaxed)
    }

    /// Links dropped and connections refused since start, by reason
    /// ([`DropReason::label`]).
    pub fn dropped_links(&self) -> Vec<(&'static str, u64)> {
        self.shared.drops.snapshot()
    }

    /// Hex SHA-256 of this node's TLS certificate (what peers pin).
    pub fn cert_sha256(&self) -> &str {
        &self.cert_sha256
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

    /// Stops every task and waits for them (the gRPC server at most 2 s:
    /// a peer that keeps its connection open does not hold the stop).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let abort = self.server.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), self.server)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

fn node_limit(node: &Node) -> usize {
    node.params().max_block_bytes as usize + 1024
}

fn node_slot_ms(node: &Node) -> u64 {
    node.params().slot_ms
}

/// Dials `peer` (resolving its name each time), runs the link while it
/// lasts, and dials again a second later, until the node stops.
async fn dial_loop(peer: Peer, ctx: LinkCtx) {
    let mut stop = ctx.stop.clone();
    let mut failures = 0u32;
    loop {
        match dial_once(&peer, &ctx).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                // Say it once, then every minute while it lasts.
                if failures == 1 || failures.is_multiple_of(60) {
                    tracing::warn!(peer = %peer.addr, error = %e, failures, "p2p dial failed");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn dial_once(peer: &Peer, ctx: &LinkCtx) -> Result<(), String> {
    let addr = tokio::net::lookup_host(&peer.addr)
        .await
        .map_err(|e| format!("resolving {}: {e}", peer.addr))?
        .next()
        .ok_or_else(|| format!("{} resolves to no address", peer.addr))?;
    if ctx.shared.bans.is_banned(addr.ip()) {
        return Err(format!("{addr} is refused for a while after misbehaving"));
    }
    let channel = match p2p::dial(addr, peer.cert_sha256).await {
        Ok(c) => c,
        Err(DialError::Pin) => {
            ctx.shared.drops.inc(DropReason::PinMismatch);
            return Err(DialError::Pin.to_string());
        }
        Err(e) => return Err(e.to_string()),
    };
    let mut client = P2pClient::new(channel)
        .max_decoding_message_size(ctx.max_msg)
        .max_encoding_message_size(ctx.max_msg);
    let (out_tx, out_rx) = mpsc::channel::<Arc<Vec<u8>>>(LINK_QUEUE);
    let outbound = ReceiverStream::new(out_rx).map(|b| Frame {
        data: b.as_ref().clone(),
    });
    let inbound = client
        .link(outbound)
        .await
        .map_err(|s| format!("{addr} refused the link: {}", s.message()))?
        .into_inner();
    run_link(ctx.clone(), Some(addr), inbound, out_tx, None).await;
    Ok(())
}

/// Reads one link until it ends, is killed or the node stops; announces it
/// to the core first and its end last.
async fn run_link(
    ctx: LinkCtx,
    remote: Option<SocketAddr>,
    mut inbound: Streaming<Frame>,
    out: mpsc::Sender<Arc<Vec<u8>>>,
    slot: Option<p2p::Slot>,
) {
    let id = ctx.ids.fetch_add(1, Ordering::SeqCst);
    let kill = Arc::new(tokio::sync::Notify::new());
    let link = Link {
        out,
        kill: kill.clone(),
        remote,
        bucket: Bucket::full(&ctx.shared.limits),
    };
    if ctx.events.send(Event::Up(id, link)).await.is_err() {
        return;
    }
    let mut stop = ctx.stop.clone();
    loop {
        let msg = tokio::select! {
            m = inbound.message() => m,
            _ = stop.changed() => break,
            _ = kill.notified() => break,
        };
        match msg {
            Ok(Some(f)) => {
                if ctx.events.send(Event::Frame(id, f.data)).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(s) => {
                // tonic refuses a message over the limit from its length
                // prefix with OUT_OF_RANGE; anything else is the transport.
                if s.code() == tonic::Code::OutOfRange {
                    ctx.shared.dropped(DropReason::Oversize, remote);
                }
                break;
            }
        }
    }
    drop(slot);
    let _ = ctx.events.send(Event::Down(id)).await;
}

/// The gRPC service: accepted links and header requests.
struct Service {
    ctx: LinkCtx,
    node: Arc<Mutex<Node>>,
}

type FrameStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<Frame, Status>> + Send>>;

#[tonic::async_trait]
impl p2p::P2p for Service {
    type LinkStream = FrameStream;

    async fn link(&self, req: Request<Streaming<Frame>>) -> Result<Response<FrameStream>, Status> {
        let remote = req.remote_addr();
        let Some(ip) = remote.map(|a| a.ip()) else {
            return Err(Status::failed_precondition("no remote address"));
        };
        let Some(slot) = self.ctx.shared.links.take(ip) else {
            self.ctx.shared.drops.inc(DropReason::OverLimit);
            return Err(Status::resource_exhausted(
                "too many links from this address or in total",
            ));
        };
        let (out_tx, out_rx) = mpsc::channel::<Arc<Vec<u8>>>(LINK_QUEUE);
        tokio::spawn(run_link(
            self.ctx.clone(),
            remote,
            req.into_inner(),
            out_tx,
            Some(slot),
        ));
        let out = ReceiverStream::new(out_rx).map(|b| {
            Ok(Frame {
                data: b.as_ref().clone(),
            })
        });
        Ok(Response::new(Box::pin(out)))
    }

    async fn headers(
        &self,
        req: Request<HeadersRequest>,
    ) -> Result<Response<HeadersReply>, Status> {
        let HeadersRequest { from, count } = req.into_inner();
        if count == 0 || count as usize > MAX_SYNC_BLOCKS {
            return Err(Status::invalid_argument(format!(
                "count must be 1..={MAX_SYNC_BLOCKS}"
            )));
        }
        let node = self.node.clone();
        let from = from.max(1);
        let got = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>, String> {
            let mut out = Vec::new();
            for h in from..from.saturating_add(u64::from(count)) {
                match lock(&node).block_at(h) {
                    Ok(Some(b)) => out.push(codec::encode(&b.signed_header())),
                    Ok(None) => break,
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(out)
        })
        .await;
        match got {
            Ok(Ok(headers)) => Ok(Response::new(HeadersReply { headers })),
            Ok(Err(e)) => Err(Status::internal(e)),
            Err(e) => Err(Status::internal(e.to_string())),
        }
    }
}

async fn core(
    node: Arc<Mutex<Node>>,
    mut events: mpsc::Receiver<Event>,
    mut stop: watch::Receiver<bool>,
    slot_ms: u64,
    max_frame: usize,
    peers: Arc<AtomicUsize>,
    shared: Arc<Shared>,
) {
    let mut links: HashMap<LinkId, Link> = HashMap::new();
    // At most one sync request per link and slot: a peer on a branch that
    // does not reach our LIB answers with orphans, and asking again for each
    // would multiply the traffic without end.
    let mut last_sync: HashMap<LinkId, tokio::time::Instant> = HashMap::new();
    // Blocks still to come of the last sync request to each link. A full
    // answer (MAX_SYNC_BLOCKS) means the peer has more: ask again at once,
    // or a node far behind would fetch only one answer per slot (and none
    // from a peer that is not producing). These blocks were asked for, so
    // they are not charged to the link's bucket.
    let mut awaiting: HashMap<LinkId, usize> = HashMap::new();
    let sync_gap = Duration::from_millis(slot_ms.max(1));
    // Closing a misbehaving peer: count it, refuse its IP for a while,
    // forget it and end its reader.
    let drop_link = |links: &mut HashMap<LinkId, Link>, id: LinkId, why: DropReason| {
        if let Some(l) = links.remove(&id) {
            tracing::info!(peer = ?l.remote, reason = why.label(), "p2p link dropped");
            shared.dropped(why, l.remote);
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
                    out.extend(n.take_votes().into_iter().map(|v| (None, Wire::Confirm(v))));
                    out.extend(n.justification().into_iter().map(|v| (None, Wire::Confirm(v))));
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
                    let solicited = awaiting.get(&id).is_some_and(|n| *n > 0);
                    // Unsolicited traffic pays before it is decoded.
                    let charged = !solicited;
                    let within = match links.get_mut(&id) {
                        None => continue, // dropped already; its reader is ending
                        Some(l) => !charged || l.bucket.take(&shared.limits, bytes.len()),
                    };
                    if !within {
                        drop_link(&mut links, id, DropReason::RateLimited);
                        continue;
                    }
                    match codec::decode::<Wire>(&bytes, max_frame) {
                        Ok(msg) => {
                            let is_block = matches!(msg, Wire::Block(_));
                            // Only blocks answer a sync request: anything
                            // else on a link we are syncing from pays now.
                            if solicited && !is_block
                                && let Some(l) = links.get_mut(&id)
                                && !l.bucket.take(&shared.limits, bytes.len())
                            {
                                drop_link(&mut links, id, DropReason::RateLimited);
                                continue;
                            }
                            if !handle(&node, id, msg, !solicited, &mut out) {
                                drop_link(&mut links, id, DropReason::InvalidBlock);
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
                        Err(_) => drop_link(&mut links, id, DropReason::Garbage),
                    }
                }
            }
        }
        peers.store(links.len(), Ordering::Relaxed);
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
                awaiting.insert(id, MAX_SYNC_BLOCKS);
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

/// Applies one message; returns false if the sender misbehaved. A new
/// block is relayed to every peer unless `relay` is false (blocks of a sync
/// answer: old news, and relaying them would flood the peers of a node
/// catching up, and the very peer answering, with the whole chain).
fn handle(
    node: &Arc<Mutex<Node>>,
    from: LinkId,
    msg: Wire,
    relay: bool,
    out: &mut Vec<(Option<LinkId>, Wire)>,
) -> bool {
    let mut n = lock(node);
    match msg {
        Wire::Block(b) => {
            let b = Arc::new(b);
            match n.on_block(b.clone()) {
                Ok(BlockOutcome::Added { votes }) => {
                    if relay {
                        out.push((None, Wire::Block((*b).clone())));
                    }
                    out.extend(votes.into_iter().map(|c| (None, Wire::Confirm(c))));
                }
                Ok(BlockOutcome::Orphan { sync_from }) => {
                    out.push((Some(from), Wire::SyncRequest(sync_from)))
                }
                Ok(BlockOutcome::Duplicate) => {}
                Err(crate::node::NodeError::Block(e)) => {
                    // A block from the future may just be clock skew, and one
                    // at or below our LIB a relay that crossed our LIB's move
                    // (honest nodes did that in the loopback test); anything
                    // else is the peer's fault.
                    use crate::chain::BlockError::{BelowIrreversible, FromFuture};
                    if !matches!(*e, FromFuture { .. } | BelowIrreversible { .. }) {
                        tracing::info!(error = %e, "invalid block from a peer");
                        return false;
                    }
                }
                Err(_) => {}
            }
        }
        Wire::Confirm(c) => {
            if let Ok(o) = n.on_confirmation(&c) {
                if o.accepted {
                    out.push((None, Wire::Confirm(c)));
                }
                out.extend(o.votes.into_iter().map(|c| (None, Wire::Confirm(c))));
            }
        }
        Wire::Tx(tx) => {
            if !n.has_tx(&tx) && n.submit_tx(tx.clone()).is_ok() {
                out.push((None, Wire::Tx(tx)));
            }
        }
        Wire::SyncRequest(h) => {
            if let Ok(blocks) = n.blocks_after(h) {
                // The certificate of the highest block it can finalize, its
                // target among the blocks sent (or already the asker's).
                let last = blocks.last().map(|b| b.header.height);
                for b in blocks {
                    out.push((Some(from), Wire::Block((*b).clone())));
                }
                if let Some(last) = last
                    && let Ok(Some(c)) = n.sync_certificate(h.saturating_add(1), last - 1)
                {
                    out.push((Some(from), Wire::Certificate(c)));
                }
            }
        }
        Wire::Certificate(c) => {
            if let Ok(votes) = n.on_certificate(&c) {
                out.extend(votes.into_iter().map(|c| (None, Wire::Confirm(c))));
            }
        }
    }
    true
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
