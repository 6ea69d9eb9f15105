//! Real sockets on 127.0.0.1: nodes over gRPC + TLS, and peers that
//! misbehave.

use super::*;
use crate::node::{Clock, SystemClock};
use crate::params::Params;
use crate::testkit::Kit;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start_with(kit: &Kit, i: usize, peers: Vec<Peer>, limits: P2pLimits) -> ChainNode {
    let key = kit.producers.values().nth(i).cloned();
    let node = Node::in_memory(&kit.genesis, key, Arc::new(SystemClock)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = P2pConfig::ephemeral().unwrap();
    cfg.limits = limits;
    ChainNode::start(node, listener, peers, cfg).unwrap()
}

async fn start(kit: &Kit, i: usize, peers: Vec<SocketAddr>) -> ChainNode {
    let peers = peers.into_iter().map(Peer::from).collect();
    start_with(kit, i, peers, P2pLimits::default()).await
}

/// Polls every 50 ms until `cond` holds for the nodes' statuses;
/// fails after 30 s.
async fn wait_for(nodes: &[ChainNode], cond: impl Fn(&[NodeStatus]) -> bool) -> Vec<NodeStatus> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let st: Vec<NodeStatus> = nodes.iter().map(ChainNode::status).collect();
        if cond(&st) {
            return st;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {st:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `cond` holds; fails after `secs` seconds with `what`.
async fn eventually(secs: u64, what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn dropped(n: &ChainNode, reason: DropReason) -> u64 {
    n.dropped_links()
        .into_iter()
        .find(|(l, _)| *l == reason.label())
        .map(|(_, c)| c)
        .unwrap_or(0)
}

/// A raw link to `addr` (accepting any certificate): the frames it
/// receives, and a sender for the frames it sends.
async fn raw_link(
    addr: SocketAddr,
    max_encode: usize,
) -> Result<(Streaming<Frame>, mpsc::Sender<Frame>), String> {
    let ch = p2p::dial(addr, None).await.map_err(|e| e.to_string())?;
    let mut client = P2pClient::new(ch)
        .max_encoding_message_size(max_encode)
        .max_decoding_message_size(8 << 20);
    let (tx, rx) = mpsc::channel(4096);
    let inbound = client
        .link(ReceiverStream::new(rx))
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    Ok((inbound, tx))
}

/// Reads until the node ends the stream (Ok(None) or an error); fails if
/// it is still open after 5 s.
async fn closed_by_node(inbound: &mut Streaming<Frame>) -> Option<Status> {
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match inbound.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(s) => return Some(s),
            }
        }
    })
    .await;
    end.expect("the node did not close the link")
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
    // Nobody misbehaved.
    for n in nodes.iter().chain([&newcomer]) {
        for (reason, count) in n.dropped_links() {
            if reason != "tls_handshake" {
                assert_eq!(count, 0, "{reason}");
            }
        }
    }
    newcomer.stop().await;
    for n in nodes {
        n.stop().await;
    }
}

/// A plain-TCP client, garbage over TLS, a gRPC frame that is not a Wire
/// message and a gRPC message over the limit are all refused or dropped
/// (the last two refuse the IP for the ban time); the node keeps producing
/// and serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversize_and_plain_tcp_are_dropped_and_the_node_keeps_going() {
    // Genesis now: with the kit's genesis at 1970, a producer's first
    // block would account ~7·10⁹ missed slots.
    let mut params = Params::fast(1);
    params.slot_ms = 250;
    let mut kit = Kit::with(params);
    kit.genesis.genesis_time_ms = SystemClock.now_ms();
    let limits = P2pLimits {
        ban_secs: 1,
        ..P2pLimits::default()
    };
    let node = start_with(&kit, 0, vec![], limits).await;
    let addr = node.local_addr;

    // 1. Not TLS at all: the old transport's length-prefixed frame.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&[&5u32.to_be_bytes()[..], &[0xff; 5][..]].concat())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "plain TCP closed by the node");
    eventually(5, "handshake failure counted", || {
        dropped(&node, DropReason::TlsHandshake) >= 1
    })
    .await;

    // 2. TLS, then bytes that are not HTTP/2: the connection is closed.
    let cfg = p2p::client_config(None).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(p2p::TLS_NAME).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(&[0x5a; 4096]).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "garbage over TLS: connection closed by the node"
    );

    // 3. A well-formed gRPC frame that is not a Wire message.
    let (mut inbound, tx) = raw_link(addr, 1 << 20).await.unwrap();
    tx.send(Frame {
        data: vec![0xff; 5],
    })
    .await
    .unwrap();
    closed_by_node(&mut inbound).await;
    assert_eq!(dropped(&node, DropReason::Garbage), 1);
    // Refused for the ban time (1 s), then accepted again.
    assert!(raw_link(addr, 1 << 20).await.is_err(), "banned right after");
    assert!(dropped(&node, DropReason::Banned) >= 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // 4. A gRPC message over the limit: refused from its length prefix.
    let limit = node.with_node(|n| n.params().max_block_bytes as usize) + 1024;
    let (mut inbound, tx) = raw_link(addr, 8 << 20).await.unwrap();
    tx.send(Frame {
        data: vec![0; limit + p2p::GRPC_OVERHEAD + 1],
    })
    .await
    .unwrap();
    closed_by_node(&mut inbound).await;
    eventually(5, "oversize counted", || {
        dropped(&node, DropReason::Oversize) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Still producing, and a well-behaved link is served: the node's first
    // frame is its sync request, then it answers ours with blocks.
    let h = node.status().head_height;
    wait_for(std::slice::from_ref(&node), |st| st[0].head_height >= h + 2).await;
    let (mut inbound, tx) = raw_link(addr, 1 << 20).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), inbound.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let max = limit;
    assert!(matches!(
        codec::decode::<Wire>(&first.data, max),
        Ok(Wire::SyncRequest(_))
    ));
    tx.send(Frame {
        data: codec::encode(&Wire::SyncRequest(0)),
    })
    .await
    .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), inbound.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(
        codec::decode::<Wire>(&answer.data, max),
        Ok(Wire::Block(_))
    ));
    // The header endpoint answers too.
    let ch = p2p::dial(addr, None).await.unwrap();
    let headers = P2pClient::new(ch)
        .headers(HeadersRequest { from: 1, count: 2 })
        .await
        .unwrap()
        .into_inner()
        .headers;
    assert_eq!(headers.len(), 2);
    let first: crate::block::SignedHeader = codec::decode(&headers[0], 4096).unwrap();
    assert_eq!(first.header.height, 1);
    node.stop().await;
}

/// A peer pinned to the wrong certificate is never linked; pinned to the
/// right one it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_peer_with_the_wrong_certificate_is_refused() {
    let mut kit = Kit::new();
    kit.genesis.genesis_time_ms = SystemClock.now_ms();
    let a = start(&kit, 0, vec![]).await;
    let pin = |hex: &str| Peer {
        addr: a.local_addr.to_string(),
        cert_sha256: Some(p2p::parse_pin(hex).unwrap()),
    };
    let mut fresh = Kit::with(kit.params.clone());
    fresh.genesis = kit.genesis.clone();
    fresh.producers.clear();
    let wrong = start_with(&fresh, 0, vec![pin(&"00".repeat(32))], P2pLimits::default()).await;
    let right = start_with(&fresh, 0, vec![pin(a.cert_sha256())], P2pLimits::default()).await;
    eventually(10, "the right pin links", || right.peer_links() == 1).await;
    eventually(10, "the wrong pin is counted", || {
        dropped(&wrong, DropReason::PinMismatch) >= 2
    })
    .await;
    assert_eq!(wrong.peer_links(), 0);
    assert_eq!(a.peer_links(), 1, "only the rightly pinned peer");
    for n in [wrong, right, a] {
        n.stop().await;
    }
}

/// A link flooding messages beyond its bucket is dropped (and its IP
/// refused) while another peer keeps syncing from the same node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_link_is_dropped_while_other_peers_keep_syncing() {
    let mut params = Params::fast(1);
    params.slot_ms = 250;
    let mut kit = Kit::with(params);
    kit.genesis.genesis_time_ms = SystemClock.now_ms();
    let limits = P2pLimits {
        msgs_per_sec: 20,
        msg_burst: 50,
        ban_secs: 30,
        ..P2pLimits::default()
    };
    let a = start_with(&kit, 0, vec![], limits).await;
    let mut fresh = Kit::with(kit.params.clone());
    fresh.genesis = kit.genesis.clone();
    fresh.producers.clear();
    let b = start(&fresh, 0, vec![a.local_addr]).await;
    eventually(10, "b linked", || b.peer_links() == 1).await;

    let (mut inbound, tx) = raw_link(a.local_addr, 1 << 20).await.unwrap();
    let flood = codec::encode(&Wire::SyncRequest(u64::MAX));
    // Sends until the node closes the link (at most 10,000 frames).
    let sender = tokio::spawn(async move {
        for _ in 0..10_000 {
            if tx
                .send(Frame {
                    data: flood.clone(),
                })
                .await
                .is_err()
            {
                return;
            }
        }
    });
    closed_by_node(&mut inbound).await;
    sender.abort();
    eventually(5, "rate limit counted", || {
        dropped(&a, DropReason::RateLimited) == 1
    })
    .await;
    // The flooder's address is refused now…
    assert!(raw_link(a.local_addr, 1 << 20).await.is_err());
    // …while b keeps its link and keeps up with a.
    let target = a.status().head_height + 8;
    let nodes = [a, b];
    wait_for(&nodes, |st| st[1].lib_height >= target).await;
    assert_eq!(nodes[1].peer_links(), 1);
    assert_eq!(
        dropped(&nodes[0], DropReason::RateLimited),
        1,
        "only the flooder"
    );
    let [a, b] = nodes;
    b.stop().await;
    a.stop().await;
}

/// Finality votes on, four producers on 127.0.0.1: a peer that relays a
/// producer's vote breaking FFG's rules (here a surround of that producer's
/// honest vote, then a double vote) leaves evidence on the node — what
/// `GET /v1/evidence` serves — and that evidence, submitted as a
/// transaction, marks the producer never electable again on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_vote_equivocation_becomes_evidence_the_chain_acts_on() {
    let mut params = Params::fast(4);
    params.slot_ms = 250;
    params.fast_confirmations = true;
    let mut kit = Kit::with(params);
    kit.genesis.genesis_time_ms = SystemClock.now_ms() + 300;
    let mut nodes: Vec<ChainNode> = Vec::new();
    for i in 0..4 {
        let peers = nodes.iter().map(|n| n.local_addr).collect();
        nodes.push(start(&kit, i, peers).await);
    }
    let st = wait_for(&nodes, |s| s.iter().all(|s| s.lib_height >= 3)).await;
    assert!(
        st[0].head_height - st[0].lib_height <= 3,
        "votes finalize: {st:?}"
    );
    // Producer 1's key signs what an honest producer never would: a link
    // from genesis to a height far above the head (surrounding its honest
    // votes), then another link to that same height.
    let cheat = kit.producers.values().nth(1).unwrap().clone();
    let chain_id = kit.state().chain_id;
    let genesis = (0, kit.state().head_id);
    let far = st[0].head_height + 1_000;
    let (_inbound, tx) = raw_link(nodes[0].local_addr, 1 << 20).await.unwrap();
    for id in [[7u8; 32], [8u8; 32]] {
        let v = Confirmation::sign(&cheat, chain_id, genesis, (far, crate::hash::Hash32(id)));
        tx.send(Frame {
            data: crate::codec::encode(&Wire::Confirm(v)),
        })
        .await
        .unwrap();
    }
    eventually(10, "evidence on node 0", || {
        nodes[0].with_node(|n| !n.evidence().is_empty())
    })
    .await;
    let kind = nodes[0].with_node(|n| n.evidence()).remove(0);
    let crate::tx::TxKind::VoteEvidence(ev) = &kind else {
        panic!("vote evidence expected: {kind:?}");
    };
    assert_eq!(ev.a.producer, cheat.address());
    assert!(ev.broken_rule().is_some());
    let user = &kit.users[0];
    let now = nodes[0].with_node(|n| n.clock_slot());
    let stx = crate::tx::Tx {
        chain_id,
        sender: user.address(),
        nonce: 0,
        fee: kit.params.min_fee,
        expiry_slot: now + 100,
        kind,
    }
    .sign(user);
    nodes[0].with_node(|n| n.submit_tx(stx)).unwrap();
    eventually(15, "every node records the equivocation", || {
        nodes.iter().all(|n| {
            n.with_node(|n| {
                n.head_state()
                    .producers
                    .get(&cheat.address())
                    .is_some_and(|p| p.equivocated)
            })
        })
    })
    .await;
    for n in nodes {
        n.stop().await;
    }
}

/// Finality votes on: a node syncing from a peer whose producers have all
/// stopped (so no vote will ever arrive) still finalizes what it fetched,
/// from the finality certificates the sync answers carry (one kept every
/// `CERTIFICATE_EVERY` blocks, and the newest, across a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_syncing_a_stopped_voting_chain_finalizes_from_certificates() {
    let mut params = Params::fast(4);
    params.fast_confirmations = true;
    let mut kit = Kit::with(params.clone());
    let blocks = 700;
    let t0 = SystemClock.now_ms() - (blocks + 2) * params.slot_ms;
    kit.genesis.genesis_time_ms = t0;
    let dir = tempfile::tempdir().unwrap();
    let clock = crate::node::VirtualClock::default();
    {
        let mut keys = kit.producers.values().cloned();
        let mut node = Node::open(
            dir.path(),
            &kit.genesis,
            keys.next(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        for k in keys {
            node.add_producer_key(k);
        }
        for slot in 1..=blocks {
            clock.set(t0 + slot * params.slot_ms);
            node.produce_if_scheduled().unwrap();
        }
    }
    // Reopened without keys: it serves the chain and never votes.
    let source = Node::open(dir.path(), &kit.genesis, None, Arc::new(SystemClock)).unwrap();
    let lib = source.status().lib_height;
    assert!(
        lib + 2 >= blocks,
        "its own votes finalized the chain: {lib}"
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server =
        ChainNode::start(source, listener, vec![], P2pConfig::ephemeral().unwrap()).unwrap();
    let mut fresh = Kit::with(params.clone());
    fresh.genesis = kit.genesis.clone();
    fresh.producers.clear();
    let nodes = [start(&fresh, 0, vec![server.local_addr]).await];
    let st = wait_for(&nodes, |st| st[0].lib_height >= lib).await;
    assert_eq!(st[0].lib_height, lib);
    let [client] = nodes;
    client.stop().await;
    server.stop().await;
}
