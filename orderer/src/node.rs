//! Wiring one orderer node: identity, genesis, sled, Raft, the cutter, the
//! gRPC services behind our mTLS acceptor, and the operations endpoint.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use openraft::BasicNode;
use prost::Message;
use qcss_network::channel::{Channel, GRPC_BLOCK_LIMIT};
use qcss_network::tls::{ClientAuth, ServerTlsSettings, TlsAcceptorHandle, TlsPair, incoming};
use qcss_network::{MspId, SigningIdentity};
use qcss_proto::common::Block;
use qcss_proto::orderer::atomic_broadcast_server::AtomicBroadcastServer;
use qcss_proto::qcss::raft::forward_server::ForwardServer;
use qcss_proto::qcss::raft::raft_server::RaftServer;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::broadcast::BroadcastService;
use crate::chain::Chain;
use crate::config::OrdererConfig;
use crate::cutter::{self, Pending};
use crate::error::OrdererError;
use crate::forward::{ForwardService, Forwarder};
use crate::metrics::Metrics;
use crate::raft::log_store::LogStore;
use crate::raft::network::{Network, RaftNetworkConfig};
use crate::raft::service::RaftService;
use crate::raft::state_machine::StateMachine;
use crate::raft::types::Raft;

/// State shared by the services of one node.
pub struct Shared {
    /// This node's consenter id.
    pub node_id: u64,
    /// The chain (and the live channel configuration).
    pub chain: Arc<Chain>,
    /// The Raft handle.
    pub raft: Raft,
    /// Feeds the cutter (used only while this node leads).
    pub cutter: mpsc::Sender<Pending>,
    /// The stream to the current leader, when following.
    pub forwarder: tokio::sync::Mutex<Option<Forwarder>>,
    /// Metrics.
    pub metrics: Metrics,
    /// The channel as of the `join_block` a joining node was given: its
    /// consenters may send Raft traffic until this node has applied that
    /// configuration (see [`crate::raft::service`]).
    pub join: Option<Arc<Channel>>,
    tls: RaftNetworkConfig,
    /// When this node last accepted a leader's AppendEntries (pre-vote).
    pub leader_contact: Arc<crate::raft::prevote::LeaderContact>,
    /// The Raft log (a clone sharing its sled trees), for the last log id a
    /// pre-vote compares.
    pub log_store: LogStore,
    /// openraft's leader lease (the longest election timeout), ms: a voter
    /// refuses a pre-vote while it heard from a leader within it.
    lease_ms: u64,
    /// A leader that no quorum has acknowledged for longer than this stops
    /// accepting envelopes, ms: the lease plus the shortest election
    /// timeout, after which the followers may well have elected another.
    quorum_grace_ms: u64,
    /// The term in which this node was first seen leading, and when: a
    /// leader no quorum has acknowledged *yet* counts from then.
    leading_since: std::sync::Mutex<Option<(u64, std::time::Instant)>>,
    /// Whether this node lost its Raft state and may not vote yet.
    pub recovery: crate::recovery::Recovery,
}

impl Shared {
    /// The leader lease, within which this node refuses pre-votes.
    pub fn election_lease(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.lease_ms)
    }

    /// The current channel.
    pub fn channel(&self) -> Arc<Channel> {
        self.chain.channel()
    }

    /// Whether this node may order now: it is the Raft leader and a quorum
    /// acknowledged it recently. openraft 0.9 keeps a leader that is cut
    /// off from the others in office until it hears a higher term; without
    /// this check it would accept envelopes it can never commit.
    pub fn leading(&self) -> Result<(), String> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let since = if m.current_leader == Some(self.node_id) {
            let mut l = self
                .leading_since
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (term, at) = match *l {
                Some((t, at)) if t == m.current_term => (t, at),
                _ => (m.current_term, std::time::Instant::now()),
            };
            *l = Some((term, at));
            Some(at.elapsed().as_millis() as u64)
        } else {
            None
        };
        leadership(
            self.node_id,
            m.current_leader,
            m.millis_since_quorum_ack,
            since,
            self.quorum_grace_ms,
        )
    }

    /// Opens an mTLS channel to another orderer, with HTTP/2 keep-alives so
    /// a peer that silently disappears is noticed within seconds.
    pub async fn connect(&self, addr: &str) -> Result<tonic::transport::Channel, String> {
        qcss_network::tls::connect_node(addr, self.tls.client_tls(addr)).await
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, OrdererError> {
    std::fs::read(path)
        .map_err(|e| OrdererError::Config(format!("cannot read {}: {e}", path.display())))
}

/// [`Shared::leading`]'s rule: `me` leads, and a quorum acknowledged it
/// within `grace_ms` — or, if none has yet (openraft reports no
/// acknowledgement until a quorum answers: a leader restarted from its
/// saved vote, say, while cut off), it has led for less than `grace_ms`
/// (`led_ms`, since this node first saw itself leading in this term).
fn leadership(
    me: u64,
    leader: Option<u64>,
    quorum_ack_ms: Option<u64>,
    led_ms: Option<u64>,
    grace_ms: u64,
) -> Result<(), String> {
    if leader != Some(me) {
        return Err(format!(
            "this node is not the Raft leader (leader: {leader:?})"
        ));
    }
    match (quorum_ack_ms, led_ms) {
        (Some(ms), _) if ms > grace_ms => Err(format!(
            "this node leads but no quorum has acknowledged it for {ms} ms"
        )),
        (None, Some(ms)) if ms > grace_ms => Err(format!(
            "this node has led for {ms} ms and no quorum has acknowledged it yet"
        )),
        _ => Ok(()),
    }
}

/// Checks that this node's signing identity and `node_id` agree with the
/// channel: with the consenter it is in the configuration in force or, for
/// a node not yet added there, in the join block. A node that is neither
/// (not yet added, or removed) starts anyway and takes no part until a
/// config block makes it a consenter.
fn check_identity(
    cfg: &OrdererConfig,
    signer: &SigningIdentity,
    channel: &Channel,
    join: Option<&Channel>,
) -> Result<(), OrdererError> {
    let mine = channel
        .consenter_by_identity(&signer.cert.der)
        .or_else(|| join.and_then(|j| j.consenter_by_identity(&signer.cert.der)));
    match mine {
        Some(me) if me.id != cfg.node_id => Err(OrdererError::Config(format!(
            "node_id {} but the channel lists this identity as consenter {}",
            cfg.node_id, me.id
        ))),
        Some(_) => Ok(()),
        None if channel
            .config()
            .consenters
            .iter()
            .any(|c| c.id == cfg.node_id) =>
        {
            Err(OrdererError::Config(format!(
                "consenter {} of the channel has another signing certificate than this node's",
                cfg.node_id
            )))
        }
        None => {
            tracing::warn!(
                node_id = cfg.node_id,
                "this node is not a consenter of the channel configuration it has applied: \
                 it takes part once a config block adds it"
            );
            Ok(())
        }
    }
}

/// Whether consenter `id` is in the genesis block's configuration.
fn blk_genesis_consenter(genesis: &Block, id: u64) -> bool {
    qcss_network::block::config_from_block(genesis)
        .map(|c| c.consenters.iter().any(|c| c.id == id))
        .unwrap_or(false)
}

/// Starts the node on the given listeners and runs until `shutdown`.
pub async fn run(
    cfg: OrdererConfig,
    listener: TcpListener,
    ops: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), OrdererError> {
    let signer =
        SigningIdentity::load_dir(MspId(cfg.msp_id.clone()), &cfg.identity_dir).map_err(|e| {
            OrdererError::Config(format!("identity {}: {e}", cfg.identity_dir.display()))
        })?;
    let signer = Arc::new(signer);
    let tls_pair = TlsPair {
        cert_pem: read(&cfg.tls_cert)?,
        key_pem: read(&cfg.tls_key)?,
    };
    let genesis = Block::decode(read(&cfg.genesis_block)?.as_slice()).map_err(|e| {
        OrdererError::Config(format!(
            "genesis block {}: {e}",
            cfg.genesis_block.display()
        ))
    })?;

    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| OrdererError::Config(format!("data dir {}: {e}", cfg.data_dir.display())))?;
    let store_dir = cfg.data_dir.join("store");
    let open = || {
        qcss_network::store::open_store(
            &qcss_network::store::sled_config(&store_dir).mode(sled::Mode::HighThroughput),
            &store_dir,
        )
    };
    let db = match open() {
        Ok(db) => db,
        // A corrupted store is kept beside and the node starts empty: it
        // re-syncs from the others, voting again only once it has caught
        // up (crate::recovery).
        Err(e) if e.to_string().contains("corrupted") => {
            let aside = crate::recovery::move_aside(&store_dir)
                .map_err(|m| OrdererError::Store(format!("{e}; moving it aside failed: {m}")))?;
            tracing::error!(
                error = %e,
                moved_to = %aside.display(),
                "the store is corrupted: moved aside; starting empty to re-sync from the other nodes"
            );
            open().map_err(|e| {
                OrdererError::Store(format!("cannot open {}: {e}", cfg.data_dir.display()))
            })?
        }
        Err(e) => {
            return Err(OrdererError::Store(format!(
                "cannot open {}: {e}",
                cfg.data_dir.display()
            )));
        }
    };
    let chain = Arc::new(Chain::open(&db, &genesis, signer.clone())?);
    let channel = chain.channel();
    let join = match &cfg.join_block {
        Some(path) => {
            let block = Block::decode(read(path)?.as_slice())
                .map_err(|e| OrdererError::Config(format!("join block {}: {e}", path.display())))?;
            let config = qcss_network::block::config_from_block(&block)
                .map_err(|e| OrdererError::Config(format!("join block {}: {e}", path.display())))?;
            if config.channel_id != channel.id() {
                return Err(OrdererError::Config(format!(
                    "join block is for channel {}, not {}",
                    config.channel_id,
                    channel.id()
                )));
            }
            Some(Arc::new(Channel::new(config).map_err(|e| {
                OrdererError::Config(format!("join block {}: {e}", path.display()))
            })?))
        }
        None => None,
    };
    check_identity(&cfg, &signer, &channel, join.as_deref())?;
    let (roots, crls) = channel.tls_roots_and_crls();
    let tls = RaftNetworkConfig::new(roots.clone(), tls_pair.clone());

    let log_store = LogStore::open(&db)?;
    let pristine = log_store.is_pristine();
    // Empty, but this data directory ran Raft before: its state was lost.
    let marker = cfg.data_dir.join(crate::recovery::MEMBER_MARKER);
    let recovering = pristine && marker.exists();
    if recovering {
        tracing::warn!(
            "this node lost its Raft state (empty store, {} present): re-syncing from the \
             other nodes; it does not vote until it has caught up",
            marker.display()
        );
    }
    let registry = qcss_network::ops::Registry::new();
    let metrics = Metrics::new(registry.clone());
    let sm = StateMachine::new(chain.clone(), metrics.clone());
    let r = &cfg.raft;
    let raft_config = openraft::Config {
        cluster_name: channel.id().to_string(),
        heartbeat_interval: r.heartbeat_ms,
        election_timeout_min: r.election_timeout_min_ms,
        election_timeout_max: r.election_timeout_max_ms,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(r.snapshot_every),
        max_in_snapshot_log_to_keep: r.keep_logs,
        max_payload_entries: RAFT_MAX_PAYLOAD_ENTRIES,
        // A snapshot is the whole chain, sent in chunks; the last chunk's
        // call returns only once the follower has installed it (written every
        // block), which takes far longer than openraft's 200 ms default
        // allows: with a 9 MB snapshot that default made transfers time out
        // and start over (catch-up took 5 s instead of 3 s in our test).
        install_snapshot_timeout: 10_000.max(r.heartbeat_ms),
        snapshot_max_chunk_size: 1024 * 1024,
        // Elections are called by our pre-vote (crate::raft::prevote).
        enable_elect: !r.pre_vote,
        ..Default::default()
    }
    .validate()
    .map_err(|e| OrdererError::Config(format!("raft: {e}")))?;
    let raft = Raft::new(
        cfg.node_id,
        Arc::new(raft_config),
        Network::new(tls.clone()),
        log_store.clone(),
        sm,
    )
    .await
    .map_err(|e| OrdererError::Raft(e.to_string()))?;
    // Only the consenters of the genesis block bootstrap the cluster; a node
    // added later starts empty and is brought in by the leader (learner,
    // then voter: see `crate::membership`).
    let genesis_member = blk_genesis_consenter(&genesis, cfg.node_id);
    // A recovering node's cluster exists: the leader brings it back.
    if pristine && genesis_member && !recovering {
        let members: BTreeMap<u64, BasicNode> = channel
            .config()
            .consenters
            .iter()
            .map(|c| {
                (
                    c.id,
                    BasicNode {
                        addr: c.address.clone(),
                    },
                )
            })
            .collect();
        // Every node of a new cluster initialises with the same membership;
        // openraft accepts that, and a node that already has state skips it.
        if let Err(e) = raft.initialize(members).await {
            tracing::info!(error = %e, "raft already initialised");
        }
    } else if pristine {
        tracing::info!(
            node_id = cfg.node_id,
            "not a consenter of the genesis block: waiting for the leader to add this node"
        );
    }

    let (cut_tx, cut_rx) = mpsc::channel(8192);
    let shared = Arc::new(Shared {
        node_id: cfg.node_id,
        chain: chain.clone(),
        raft: raft.clone(),
        cutter: cut_tx,
        forwarder: tokio::sync::Mutex::new(None),
        metrics,
        join,
        tls: tls.clone(),
        leader_contact: Arc::default(),
        log_store: log_store.clone(),
        lease_ms: r.election_timeout_max_ms,
        quorum_grace_ms: r.election_timeout_max_ms + r.election_timeout_min_ms,
        leading_since: std::sync::Mutex::new(None),
        recovery: crate::recovery::Recovery::new(recovering),
    });
    std::fs::write(
        &marker,
        b"this data directory runs Raft; see orderer/src/recovery.rs\n",
    )
    .map_err(|e| OrdererError::Store(format!("cannot write {}: {e}", marker.display())))?;
    if r.pre_vote {
        tokio::spawn(crate::raft::prevote::run(
            raft.clone(),
            cfg.node_id,
            shared.leader_contact.clone(),
            log_store,
            tls.clone(),
            (r.election_timeout_min_ms, r.election_timeout_max_ms),
            std::time::Duration::from_millis(r.heartbeat_ms),
        ));
    }
    crate::ops::register(&shared, &registry);
    let mut certs = vec![("signing".to_owned(), signer.cert.not_after)];
    if let Ok(tls) = qcss_network::CertInfo::from_pem(&tls_pair.cert_pem) {
        certs.push(("tls".to_owned(), tls.not_after));
    }
    let expiry = qcss_network::ops::watch_cert_expiry(&registry, certs, cfg.cert_warn_days);
    tokio::spawn(cutter::run(shared.clone(), cut_rx));

    let tls_settings = |pair: TlsPair, roots: Vec<Vec<u8>>, crls: Vec<Vec<u8>>| ServerTlsSettings {
        cert_pem: pair.cert_pem,
        key_pem: pair.key_pem,
        client_roots_pem: roots,
        crls_pem: crls,
        client_auth: ClientAuth::Required,
    };
    let acceptor = TlsAcceptorHandle::new(&tls_settings(tls_pair.clone(), roots, crls))
        .map_err(|e| OrdererError::Network(e.to_string()))?;
    // A renewed signing identity (`qcss ca reenroll`) signs blocks from the
    // first block after a config block names it for this consenter (peers
    // check block signatures against the configuration), without a restart.
    {
        let (c, current) = (chain.clone(), chain.clone());
        let node_id = cfg.node_id;
        qcss_network::identity_watch::watch(
            cfg.identity_dir.clone(),
            MspId(cfg.msp_id.clone()),
            std::time::Duration::from_secs(cfg.tls_reload_secs.max(1)),
            move || current.signer().cert_pem.clone(),
            move |identity| {
                if c.renew_signer(identity) {
                    Ok(qcss_network::identity_watch::Renewal::InUse)
                } else {
                    Ok(qcss_network::identity_watch::Renewal::Waiting(format!(
                        "the channel configuration does not name it for consenter {node_id}; \
                         blocks are signed with it from the one after a config block that \
                         makes it consenter {node_id}'s identity_cert_pem"
                    )))
                }
            },
        );
    }
    // A renewed TLS pair (`qcss ca reenroll --tls-hosts`) is served on new
    // connections and presented on the next call to every consenter, without
    // a restart.
    {
        let (a, c, raft_tls) = (acceptor.clone(), chain.clone(), tls.clone());
        let node_id = cfg.node_id;
        qcss_network::tls::watch_pair(
            cfg.tls_cert.clone(),
            cfg.tls_key.clone(),
            tls_pair,
            std::time::Duration::from_secs(cfg.tls_reload_secs.max(1)),
            move |pair, leaf| {
                // The other consenters admit Raft traffic by the certificate
                // the channel configuration names for this node (and, until
                // the next change, the one it named before): switch when it
                // names the new one, not earlier.
                let channel = c.channel();
                let named = channel
                    .config()
                    .consenters
                    .iter()
                    .find(|k| k.id == node_id)
                    .and_then(|k| qcss_network::CertInfo::from_pem(k.tls_cert_pem.as_bytes()).ok())
                    .is_some_and(|k| k.der == leaf.der);
                if !named {
                    return Err(format!(
                        "the channel configuration does not name it for consenter {node_id} yet: \
                         update the consenter's tls_cert_pem (qcss channel update), then it is \
                         used at the next reread"
                    ));
                }
                let (roots, crls) = channel.tls_roots_and_crls();
                a.reload(&tls_settings(pair.clone(), roots, crls))
                    .map_err(|e| format!("cannot serve it: {e}"))?;
                raft_tls.set_pair(pair);
                expiry.set("tls", leaf.not_after);
                Ok(())
            },
        );
    }
    // A config block (or an installed snapshot) may bring new orgs' TLS
    // roots or new CRLs: the next handshake uses them.
    let mut config_rx = chain.watch_config();
    let (a, c, raft_tls) = (acceptor.clone(), chain.clone(), tls);
    tokio::spawn(async move {
        while config_rx.changed().await.is_ok() {
            let channel = c.channel();
            let (roots, crls) = channel.tls_roots_and_crls();
            raft_tls.set_roots(roots.clone());
            match a.reload(&tls_settings(raft_tls.pair(), roots, crls)) {
                Ok(()) => tracing::info!(
                    sequence = channel.config().sequence,
                    "TLS roots and CRLs reloaded from the channel config"
                ),
                Err(e) => tracing::error!(error = %e, "cannot reload TLS from the channel config"),
            }
        }
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(crate::membership::run(shared.clone(), stop_rx.clone()));
    if let Some(ops) = ops {
        let o = crate::ops::ops(&shared, registry.clone());
        let mut rx = stop_rx.clone();
        tokio::spawn(qcss_network::ops::serve(ops, o, async move {
            let _ = rx.changed().await;
        }));
    }
    let addr = listener
        .local_addr()
        .map_err(|e| OrdererError::Network(e.to_string()))?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        node_id = cfg.node_id,
        channel = %shared.channel().id(),
        %addr,
        height = chain.height(),
        "qcss orderer started"
    );
    let mut rx = stop_rx.clone();
    // Decode limits come from the channel (issue 15: a member's 1 GiB
    // envelope used to be buffered whole before AbsoluteMaxBytes refused it).
    // A later config block raising AbsoluteMaxBytes takes effect here at the
    // next restart (logged); Raft's limit uses the ceiling so replication
    // never stalls on it, and its callers are admitted before decoding.
    let client_limit = channel.config().batch.grpc_message_limit();
    warn_on_limit_change(&chain, client_limit);
    let raft_service = RaftService::new(raft.clone(), shared.clone());
    let server = tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(
            qcss_network::grpc::trim_status_message::<tonic::body::Body>,
        ))
        .add_service(
            AtomicBroadcastServer::new(BroadcastService::new(shared.clone()))
                .max_decoding_message_size(client_limit)
                .max_encoding_message_size(GRPC_BLOCK_LIMIT),
        )
        .add_service(tonic::service::interceptor::InterceptedService::new(
            RaftServer::new(raft_service.clone())
                .max_decoding_message_size(raft_message_limit(RAFT_MAX_PAYLOAD_ENTRIES))
                .max_encoding_message_size(GRPC_BLOCK_LIMIT),
            crate::raft::service::Admission(raft_service.clone()),
        ))
        // Followers' checked envelopes: consenters only, admitted before
        // decoding; one envelope a message, so the clients' limit.
        .add_service(tonic::service::interceptor::InterceptedService::new(
            ForwardServer::new(ForwardService::new(shared.clone()))
                .max_decoding_message_size(client_limit)
                .max_encoding_message_size(GRPC_BLOCK_LIMIT),
            crate::raft::service::Admission(raft_service),
        ))
        .serve_with_incoming_shutdown(incoming(listener, acceptor), async move {
            let _ = rx.changed().await;
        });
    let server = tokio::spawn(server);
    // A Raft core that quit (storage corruption, a fatal error) leaves a
    // node that answers nothing useful: stop, and say why, so that its
    // supervisor restarts it and its operators see it (issue 15).
    let outcome = tokio::select! {
        () = shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
        fatal = core_stopped(raft.clone()) => {
            tracing::error!(error = %fatal, "the Raft core stopped; the orderer exits");
            Err(OrdererError::Raft(format!("the Raft core stopped: {fatal}")))
        }
    };
    let _ = stop_tx.send(true);
    // Bounded: open Deliver and Broadcast streams must not keep a node
    // whose core stopped from exiting.
    let grace = std::time::Duration::from_secs(5);
    let _ = tokio::time::timeout(grace, raft.shutdown()).await;
    let abort = server.abort_handle();
    if tokio::time::timeout(grace, server).await.is_err() {
        abort.abort();
    }
    // After a fatal storage error the store is not to be trusted with more
    // writes; everything acknowledged was fsync'd when it was appended.
    outcome?;
    db.flush().map_err(|e| OrdererError::Store(e.to_string()))?;
    Ok(())
}

/// Entries one AppendEntries carries at most (openraft's `max_payload_entries`).
/// Entries are whole batches (up to MaxMessageCount envelopes each): keep
/// one AppendEntries small enough to finish within a heartbeat.
const RAFT_MAX_PAYLOAD_ENTRIES: u64 = 8;

/// The Raft service's decode limit: `entries` batches, each at most the
/// largest block any channel can cut ([`GRPC_BLOCK_LIMIT`]: a raised
/// AbsoluteMaxBytes must never stall replication).
///
/// [`GRPC_BLOCK_LIMIT`]: qcss_network::channel::GRPC_BLOCK_LIMIT
fn raft_message_limit(entries: u64) -> usize {
    entries as usize * qcss_network::channel::GRPC_BLOCK_LIMIT
}

/// Logs, on every config block that raises AbsoluteMaxBytes past what the
/// running gRPC server was built with, that a restart applies it.
fn warn_on_limit_change(chain: &Arc<Chain>, limit: usize) {
    let mut rx = chain.watch_config();
    let chain = chain.clone();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let wanted = chain.channel().config().batch.grpc_message_limit();
            if wanted > limit {
                tracing::warn!(
                    limit,
                    wanted,
                    "AbsoluteMaxBytes was raised: Broadcast and Deliver keep their \
                     decode limit until this orderer restarts"
                );
            }
        }
    });
}

/// Resolves with the fatal error once `raft`'s core has stopped running
/// (never while it runs).
async fn core_stopped(raft: Raft) -> String {
    let mut m = raft.metrics();
    loop {
        if let Err(fatal) = &m.borrow().running_state {
            return fatal.to_string();
        }
        if m.changed().await.is_err() {
            return "the Raft core dropped its metrics".to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::leadership;

    #[test]
    fn a_leader_without_a_recent_quorum_does_not_order() {
        let grace = 3_000;
        assert!(leadership(1, Some(1), Some(100), Some(60_000), grace).is_ok());
        assert!(leadership(1, Some(2), Some(100), None, grace).is_err());
        assert!(leadership(1, None, None, None, grace).is_err());
        let e = leadership(1, Some(1), Some(5_000), Some(60_000), grace).unwrap_err();
        assert!(e.contains("for 5000 ms"), "{e}");
        // No acknowledgement yet: fine while it is new, not past the grace
        // (a leader restarted from its saved vote while cut off).
        assert!(leadership(1, Some(1), None, Some(500), grace).is_ok());
        let e = leadership(1, Some(1), None, Some(4_000), grace).unwrap_err();
        assert!(e.contains("no quorum has acknowledged it yet"), "{e}");
    }
}
