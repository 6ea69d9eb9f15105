//! The peer process: wires the ledger, the lifecycle, the endorser and the
//! validator to the network. Start at [`run`].
//!
//! - `committer.rs` pulls blocks from the orderers with `Deliver` (failing
//!   over to the next orderer when one dies or misbehaves), validates and
//!   commits them one by one, applies config blocks to the live channel and
//!   refreshes the lifecycle;
//! - `endorser_service.rs` is Fabric's `protos.Endorser/ProcessProposal`,
//!   called by the Gateways of other orgs' peers and by admin tools;
//! - `gateway.rs` is Fabric's `gateway.Gateway` (Evaluate, Endorse, Submit,
//!   CommitStatus, ChaincodeEvents);
//! - `deliver.rs` is Fabric's peer `protos.Deliver` (blocks and filtered
//!   blocks from the committed ledger);
//! - `txinfo.rs` reads what clients need from committed envelopes (events,
//!   tx ids, filtered transactions);
//! - `integrity.rs` keeps the ledger sound: repairs damaged blocks from the
//!   orderers, scrubs the ledger in the background, reopens the store after
//!   a full disk;
//! - `files.rs` is MDSS's `qcss.mdss.Files` (the peer's file store: put,
//!   get, stat, verify, repair from another org's peer);
//! - `metrics.rs` and the operations endpoint.
//!
//! Everything that waits for commits (CommitStatus, ChaincodeEvents,
//! Deliver) reads the ledger and waits on one `watch` of the height, so a
//! listener can start at any block and never misses one.

mod anchor_watch;
mod anchorscc;
mod committer;
mod config;
mod deliver;
mod endorser_service;
pub(crate) mod files;
mod files_keeper;
mod gateway;
mod identity_watch;
mod integrity;
mod metrics;
mod qscc;
mod txinfo;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use prost::Message;
use qcss_chaincode::{Limits, Runtime};
use qcss_network::block::{config_from_block, is_config_block};
use qcss_network::channel::{Channel, GRPC_BLOCK_LIMIT};
use qcss_network::tls::{ClientAuth, ServerTlsSettings, TlsAcceptorHandle, TlsPair, incoming};
use qcss_network::{MspId, SigningIdentity};
use qcss_proto::common::Block;
use qcss_proto::gateway::gateway_server::GatewayServer;
use qcss_proto::protos::deliver_server::DeliverServer;
use qcss_proto::protos::endorser_server::EndorserServer;
use qcss_proto::qcss::mdss::files_server::FilesServer;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::endorser::Endorser;
use crate::ledger::Ledger;
use crate::lifecycle::Lifecycle;
use crate::validator::commit_genesis;

pub use anchor_watch::{Anchored, ChainSchedule};
pub use anchorscc::Receipt as AnchorReceipt;
pub use config::{AnchorSettings, FilesSettings, GatewaySettings, LedgerSettings, PeerConfig};
pub use files::PeerFiles;
pub use metrics::Metrics;
pub use qscc::QSCC;
pub use txinfo::{chaincode_events, filtered_block};

/// Why the peer cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Bad or unreadable configuration, identity, genesis block.
    #[error("configuration: {0}")]
    Config(String),
    /// The ledger cannot be opened or written.
    #[error("ledger: {0}")]
    Ledger(String),
    /// Listening or TLS setup failed.
    #[error("network: {0}")]
    Network(String),
}

/// State shared by the peer's services and its committer.
pub struct Peer {
    pub(crate) cfg: PeerConfig,
    /// This peer's org (its signing identity, which can be renewed, is the
    /// endorser's: [`Peer::signer`]).
    msp_id: MspId,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) endorser: Arc<Endorser>,
    pub(crate) lifecycle: Arc<Lifecycle>,
    channel: RwLock<Arc<Channel>>,
    /// The ledger height after each commit.
    pub(crate) height: watch::Sender<u64>,
    /// This peer's TLS pair: served, and presented when it calls orderers
    /// and other peers (the roots follow the channel configuration).
    /// Replaced when the files are renewed (`tls::watch_pair`).
    pub(crate) tls: RwLock<TlsPair>,
    pub(crate) metrics: Metrics,
    /// Which orderer the committer pulls from and how far the ordering
    /// service is known to be (for `/healthz`).
    pub(crate) pull: RwLock<PullStatus>,
    /// gRPC channels to other peers and to orderers, by address.
    connections: tokio::sync::Mutex<HashMap<String, tonic::transport::Channel>>,
    /// The orderer the Gateway submits to first: the Raft leader, as the
    /// last answer showed (a follower forwards, which costs the ordering
    /// service a hop and a second signature check).
    pub(crate) submit_first: std::sync::Mutex<Option<String>>,
    /// Wakes the repairer when damage is found.
    repair_wake: Arc<tokio::sync::Notify>,
    /// Anchoring on the public chain, as `anchor_watch` last read it.
    anchored: RwLock<Option<anchor_watch::Anchored>>,
    /// The public half of a proof over the newest irreversible anchor, as
    /// the chain served it (for `/api/anchor/proof`).
    anchor_proof: RwLock<Option<Arc<anchor_watch::PublicHalf>>>,
    /// Irreversible anchors seen on the public chain, by seq (bounded).
    anchors_seen: RwLock<std::collections::BTreeMap<u64, anchor_watch::SeenAnchor>>,
    /// This channel's consortium id (its name and genesis block hash).
    consortium_id: qcss_anchor::Hash32,
    /// What the file keeper's last complete round found.
    files_keeper: RwLock<files_keeper::KeeperStatus>,
}

/// The committer's view of the ordering service.
#[derive(Debug, Clone, Default)]
pub(crate) struct PullStatus {
    /// The orderer currently streaming blocks to this peer.
    pub(crate) orderer: Option<String>,
    /// The highest height any orderer reported.
    pub(crate) orderer_height: u64,
    /// The last error pulling blocks.
    pub(crate) last_error: Option<String>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("msp_id", &self.msp_id())
            .field("peer", &self.signer().cert.common_name)
            .field("height", &self.ledger.height())
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// This peer's org.
    pub(crate) fn msp_id(&self) -> &MspId {
        &self.msp_id
    }

    /// The identity this peer signs with now (renewed in place:
    /// `identity_watch.rs`).
    pub(crate) fn signer(&self) -> Arc<SigningIdentity> {
        self.endorser.signer()
    }

    /// The channel as currently configured.
    pub fn channel(&self) -> Arc<Channel> {
        self.channel
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies a committed config block: the live channel, the endorser's.
    fn apply_config(&self, block: &Block) {
        let next = match config_from_block(block)
            .map_err(|e| e.to_string())
            .and_then(|c| Channel::new(c).map_err(|e| e.to_string()))
        {
            Ok(c) => Arc::new(c),
            Err(e) => {
                // The validator accepted it, so this cannot happen; keep the old one.
                tracing::error!(error = %e, "a committed config block does not configure a channel");
                return;
            }
        };
        if let Err(e) = self.endorser.set_channel(next.clone()) {
            tracing::error!(error = %e, "the new channel configuration no longer accepts this peer as an endorser");
        }
        tracing::info!(
            sequence = next.config().sequence,
            orgs = next.config().orgs.len(),
            "channel configuration updated"
        );
        *self.channel.write().unwrap_or_else(PoisonError::into_inner) = next;
    }

    /// Why the ledger cannot be trusted or written right now (damage found,
    /// the store failed); `None` when sound. The peer endorses nothing
    /// meanwhile.
    pub(crate) fn ledger_problem(&self) -> Option<String> {
        let integrity = self.ledger.integrity();
        if !integrity.is_ok() {
            return Some(format!("ledger integrity: {}", integrity.summary()));
        }
        self.ledger.store_failure().map(|f| {
            if f.disk_full {
                format!("disk full: {}", f.message)
            } else {
                format!("ledger store failed: {}", f.message)
            }
        })
    }

    /// The peers of org `msp_id`: `[gateway] endorsers` if it lists the
    /// org, else the channel configuration's `peer_endpoints`.
    pub(crate) fn peer_endpoints(&self, msp_id: &str) -> Vec<String> {
        if let Some(list) = self.cfg.gateway.endorsers.get(msp_id) {
            return list.clone();
        }
        self.channel()
            .config()
            .orgs
            .iter()
            .find(|o| o.msp.msp_id == msp_id)
            .map(|o| o.peer_endpoints.clone())
            .unwrap_or_default()
    }

    /// The orderers to pull from and submit to.
    pub(crate) fn orderers(&self) -> Vec<String> {
        if self.cfg.orderers.is_empty() {
            self.channel()
                .config()
                .consenters
                .iter()
                .map(|c| c.address.clone())
                .collect()
        } else {
            self.cfg.orderers.clone()
        }
    }

    /// The orderers in the order the Gateway submits to them: the known
    /// leader first, then the rest as configured.
    pub(crate) fn orderers_for_submit(&self) -> Vec<String> {
        let mut all = self.orderers();
        let first = self
            .submit_first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(i) = first.and_then(|f| all.iter().position(|a| *a == f)) {
            let leader = all.remove(i);
            all.insert(0, leader);
        }
        all
    }

    /// Remembers where to submit next, from an orderer's SUCCESS answer:
    /// `addr` itself, or the leader it forwarded to (if that is one of ours).
    pub(crate) fn note_submitted(&self, addr: &str, info: &str) {
        let leader = qcss_network::envelope::forwarded_to(info)
            .filter(|l| self.orderers().iter().any(|a| a == l))
            .unwrap_or(addr);
        *self
            .submit_first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(leader.to_owned());
    }

    /// A (cached) mTLS gRPC channel to `addr`, an orderer or a peer, trusting
    /// the TLS roots of the channel's orgs.
    pub(crate) async fn connect(&self, addr: &str) -> Result<tonic::transport::Channel, String> {
        if let Some(c) = self.connections.lock().await.get(addr) {
            return Ok(c.clone());
        }
        let (roots, _) = self.channel().tls_roots_and_crls();
        let pair = self.tls();
        let tls = qcss_network::tls::client_tls_for_addr(
            &roots,
            Some((pair.cert_pem.as_slice(), pair.key_pem.as_slice())),
            addr,
        );
        let ch = qcss_network::tls::connect_node(addr, tls)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        self.connections
            .lock()
            .await
            .insert(addr.to_owned(), ch.clone());
        Ok(ch)
    }

    /// The TLS pair in use.
    pub(crate) fn tls(&self) -> TlsPair {
        self.tls
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Forgets the cached channel to `addr` (after a failure), so the next
    /// call reconnects.
    pub(crate) async fn disconnect(&self, addr: &str) {
        self.connections.lock().await.remove(addr);
    }

    /// The height whose blocks are fully applied: committed to the ledger,
    /// and their config and lifecycle changes in effect. What clients are
    /// told (the ledger itself may be one block ahead for a moment).
    pub fn height(&self) -> u64 {
        *self.height.borrow()
    }

    /// Waits until the ledger height exceeds `height` or `timeout` passes;
    /// returns the height then.
    pub(crate) async fn wait_height_above(&self, height: u64, timeout: Duration) -> u64 {
        let mut rx = self.height.subscribe();
        let wait = rx.wait_for(|h| *h > height);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(h)) => *h,
            _ => self.height(),
        }
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, PeerError> {
    std::fs::read(path)
        .map_err(|e| PeerError::Config(format!("cannot read {}: {e}", path.display())))
}

/// Opens (or creates) the peer's ledger, lifecycle and endorser from `cfg`,
/// without starting any service: what `run` and offline tools share.
pub fn open(cfg: &PeerConfig) -> Result<Arc<Peer>, PeerError> {
    let load = || {
        SigningIdentity::load_dir(MspId(cfg.msp_id.clone()), &cfg.identity_dir)
            .map_err(|e| PeerError::Config(format!("identity {}: {e}", cfg.identity_dir.display())))
    };
    let signer = load()?;
    let msp_id = signer.msp_id.clone();
    let tls = TlsPair {
        cert_pem: read(&cfg.tls_cert)?,
        key_pem: read(&cfg.tls_key)?,
    };
    let genesis = Block::decode(read(&cfg.genesis_block)?.as_slice()).map_err(|e| {
        PeerError::Config(format!(
            "genesis block {}: {e}",
            cfg.genesis_block.display()
        ))
    })?;
    if !is_config_block(&genesis) {
        return Err(PeerError::Config(format!(
            "{} is not a config block",
            cfg.genesis_block.display()
        )));
    }
    let genesis_channel = config_from_block(&genesis)
        .map_err(|e| e.to_string())
        .and_then(|c| Channel::new(c).map_err(|e| e.to_string()))
        .map_err(|e| PeerError::Config(format!("genesis block: {e}")))?;
    // Anchoring names the channel by its name and genesis block hash.
    let consortium_id = qcss_anchor::statement::consortium_id(
        genesis_channel.id(),
        &qcss_anchor::Hash32(
            genesis
                .header
                .as_ref()
                .map_or([0; 32], qcss_proto::hash::block_header_hash),
        ),
    );

    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| PeerError::Config(format!("data dir {}: {e}", cfg.data_dir.display())))?;
    let ledger = Arc::new(
        Ledger::open(&cfg.data_dir.join("ledger")).map_err(|e| PeerError::Ledger(e.to_string()))?,
    );
    if ledger.height() == 0 {
        commit_genesis(&ledger, &genesis, &genesis_channel)
            .map_err(|e| PeerError::Ledger(format!("committing the genesis block: {e}")))?;
    }
    // The live configuration is the one in the last config block committed.
    let channel = Arc::new(current_channel(&ledger, genesis_channel)?);

    let runtime = Arc::new(Runtime::new(Limits::default()));
    let lifecycle = Arc::new(
        Lifecycle::open(
            &cfg.data_dir.join("chaincodes"),
            ledger.clone(),
            runtime.clone(),
        )
        .map_err(|e| PeerError::Ledger(format!("lifecycle: {e}")))?,
    );
    let endorser = Endorser::new(signer, channel.clone(), ledger.clone(), runtime)
        .map_err(|e| PeerError::Config(e.to_string()))?
        .with_lifecycle(lifecycle.clone());
    let registry = qcss_network::ops::Registry::new();
    let (height, _) = watch::channel(ledger.height());
    let metrics = Metrics::new(registry);
    let repair_wake = Arc::new(tokio::sync::Notify::new());
    integrity::watch(&ledger, &metrics, repair_wake.clone());
    Ok(Arc::new(Peer {
        cfg: cfg.clone(),
        msp_id,
        ledger,
        endorser: Arc::new(endorser),
        lifecycle,
        channel: RwLock::new(channel),
        height,
        tls: RwLock::new(tls),
        metrics,
        pull: RwLock::new(PullStatus::default()),
        connections: tokio::sync::Mutex::new(HashMap::new()),
        submit_first: std::sync::Mutex::new(None),
        repair_wake,
        anchored: RwLock::new(None),
        anchor_proof: RwLock::new(None),
        anchors_seen: RwLock::new(std::collections::BTreeMap::new()),
        files_keeper: RwLock::new(files_keeper::KeeperStatus::default()),
        consortium_id,
    }))
}

/// The channel configuration of the newest config block in `ledger`. A
/// damaged tip does not stop the peer: the newest readable block below it
/// names the config block (the damaged blocks are repaired once running).
fn current_channel(ledger: &Ledger, genesis: Channel) -> Result<Channel, PeerError> {
    let height = ledger.height();
    let mut newest = None;
    for n in (height.saturating_sub(crate::ledger::RECENT_ON_OPEN + 1)..height).rev() {
        match ledger.block(n) {
            Ok(Some(b)) => {
                newest = Some(b);
                break;
            }
            Ok(None) => break,
            Err(crate::ledger::LedgerError::CorruptBlock { .. }) => continue,
            Err(e) => return Err(PeerError::Ledger(e.to_string())),
        }
    }
    let Some(newest) = newest else {
        return Ok(genesis);
    };
    let last = qcss_network::block::last_config_index(&newest).unwrap_or(0);
    if last == 0 {
        return Ok(genesis);
    }
    let block = ledger
        .block(last)
        .map_err(|e| PeerError::Ledger(format!("last config block {last}: {e}")))?
        .ok_or_else(|| PeerError::Ledger(format!("last config block {last} is missing")))?;
    config_from_block(&block)
        .map_err(|e| e.to_string())
        .and_then(|c| Channel::new(c).map_err(|e| e.to_string()))
        .map_err(|e| PeerError::Ledger(format!("config block {last}: {e}")))
}

/// Starts the peer on the given listeners and runs until `shutdown`.
pub async fn run(
    cfg: PeerConfig,
    listener: TcpListener,
    ops: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), PeerError> {
    let peer = open(&cfg)?;
    let channel = peer.channel();
    let files = files::open_store(&cfg.files, &cfg.data_dir)?;
    {
        // Public files marked by an older build are hashed in the
        // background: a large store must not hold the peer's start.
        let files = files.clone();
        tokio::task::spawn_blocking(move || {
            let indexed = files.index_old_markers();
            if indexed > 0 {
                tracing::info!(files = indexed, "indexed public files by content hash");
            }
        });
    }
    let tls_settings =
        |pair: TlsPair, (roots, crls): (Vec<Vec<u8>>, Vec<Vec<u8>>)| ServerTlsSettings {
            cert_pem: pair.cert_pem,
            key_pem: pair.key_pem,
            client_roots_pem: roots,
            crls_pem: crls,
            client_auth: ClientAuth::Required,
        };
    let acceptor = TlsAcceptorHandle::new(&tls_settings(peer.tls(), channel.tls_roots_and_crls()))
        .map_err(|e| PeerError::Network(e.to_string()))?;

    let (stop_tx, stop_rx) = watch::channel(false);
    if let Some(w) = cfg.web.clone() {
        let web_listener = TcpListener::bind(&w.listen)
            .await
            .map_err(|e| PeerError::Network(format!("web listen {}: {e}", w.listen)))?;
        let web = crate::web::Web::new(peer.clone(), w, Some(files.clone()))
            .map_err(|e| PeerError::Config(e.to_string()))?;
        let mut rx = stop_rx.clone();
        tokio::spawn(crate::web::serve(web_listener, web, async move {
            let _ = rx.changed().await;
        }));
    }
    // Config blocks may bring new orgs' TLS roots or new CRLs.
    {
        let (peer, acceptor) = (peer.clone(), acceptor.clone());
        let mut heights = peer.height.subscribe();
        tokio::spawn(async move {
            let mut sequence = peer.channel().config().sequence;
            while heights.changed().await.is_ok() {
                let channel = peer.channel();
                if channel.config().sequence == sequence {
                    continue;
                }
                sequence = channel.config().sequence;
                match acceptor.reload(&tls_settings(peer.tls(), channel.tls_roots_and_crls())) {
                    Ok(()) => tracing::info!(sequence, "TLS roots and CRLs reloaded"),
                    Err(e) => tracing::error!(error = %e, "cannot reload TLS"),
                }
                // Outgoing connections are made anew with the new roots.
                peer.connections.lock().await.clear();
            }
        });
    }
    let committer = tokio::spawn(committer::run(peer.clone(), stop_rx.clone()));
    tokio::spawn(integrity::run_repair(
        peer.clone(),
        peer.repair_wake.clone(),
        stop_rx.clone(),
    ));
    tokio::spawn(integrity::run_scrub(peer.clone(), stop_rx.clone()));
    tokio::spawn(files_keeper::run(
        peer.clone(),
        files.clone(),
        cfg.files.clone(),
        stop_rx.clone(),
    ));
    // The anchoring MMR catches up with blocks committed before this build
    // indexed them (or lost with a cleared tree), off the async threads;
    // afterwards the committer appends each block as it commits.
    {
        let ledger = peer.ledger.clone();
        tokio::task::spawn_blocking(move || {
            let mut last = None;
            loop {
                match ledger.mmr_sync() {
                    Ok(n) if n >= ledger.height() || last == Some(n) => break,
                    Ok(n) => last = Some(n),
                    Err(e) => {
                        tracing::warn!(error = %e, "anchor MMR catch-up stopped; the committer resumes it");
                        break;
                    }
                }
            }
        });
    }
    if let Some(api) = cfg.anchor.as_ref().and_then(|a| a.chain_api.clone()) {
        tokio::spawn(anchor_watch::run(peer.clone(), api, stop_rx.clone()));
    }
    let mut certs = vec![("signing".to_owned(), peer.signer().cert.not_after)];
    if let Ok(tls) = qcss_network::identity::CertInfo::from_pem(&peer.tls().cert_pem) {
        certs.push(("tls".to_owned(), tls.not_after));
    }
    let expiry =
        qcss_network::ops::watch_cert_expiry(&peer.metrics.registry, certs, cfg.cert_warn_days);
    // A renewed signing certificate endorses from then on, no restart.
    identity_watch::watch(
        peer.clone(),
        cfg.identity_dir.clone(),
        Duration::from_secs(cfg.tls_reload_secs.max(1)),
        expiry.clone(),
    );
    // A renewed TLS pair (`qcss ca reenroll --tls-hosts`) is served on new
    // connections and used for new outgoing ones, without a restart.
    {
        let (peer, acceptor) = (peer.clone(), acceptor.clone());
        qcss_network::tls::watch_pair(
            cfg.tls_cert.clone(),
            cfg.tls_key.clone(),
            peer.tls(),
            Duration::from_secs(cfg.tls_reload_secs.max(1)),
            move |pair, leaf| {
                let settings = tls_settings(pair.clone(), peer.channel().tls_roots_and_crls());
                acceptor
                    .reload(&settings)
                    .map_err(|e| format!("cannot serve it: {e}"))?;
                *peer
                    .tls
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = pair;
                expiry.set("tls", leaf.not_after);
                // Outgoing channels are made anew with the new pair.
                let peer = peer.clone();
                tokio::spawn(async move { peer.connections.lock().await.clear() });
                Ok(())
            },
        );
    }
    if let Some(ops) = ops {
        let o = metrics::ops(&peer);
        let mut rx = stop_rx.clone();
        tokio::spawn(qcss_network::ops::serve(ops, o, async move {
            let _ = rx.changed().await;
        }));
    }
    let addr = listener
        .local_addr()
        .map_err(|e| PeerError::Network(e.to_string()))?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        msp_id = %peer.msp_id(),
        peer = %peer.signer().cert.common_name,
        channel = %channel.id(),
        %addr,
        ops = ?cfg.ops_listen,
        height = peer.ledger.height(),
        "qcss peer started"
    );
    let mut rx = stop_rx.clone();
    // The largest legitimate request is one envelope (a Submit) or one
    // proposal: decode no more than that (issue 15: 60 MiB requests grew a
    // peer by 2 GB). Responses (blocks) are bounded by the orderer.
    let limit = channel.config().batch.grpc_message_limit();
    let server = tonic::transport::Server::builder()
        .layer(tower::util::MapResponseLayer::new(
            qcss_network::grpc::trim_status_message::<tonic::body::Body>,
        ))
        .add_service(
            GatewayServer::new(gateway::GatewayService::new(peer.clone()))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(GRPC_BLOCK_LIMIT),
        )
        .add_service(
            EndorserServer::new(endorser_service::EndorserService::new(peer.clone()))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(GRPC_BLOCK_LIMIT),
        )
        .add_service(
            DeliverServer::new(deliver::DeliverService::new(peer.clone()))
                .max_decoding_message_size(limit)
                .max_encoding_message_size(GRPC_BLOCK_LIMIT),
        )
        .add_service(
            FilesServer::new(files::FilesService::new(peer.clone(), files))
                .max_decoding_message_size(files::MAX_REQUEST_BYTES)
                .max_encoding_message_size(files::MAX_RESPONSE_BYTES),
        )
        .serve_with_incoming_shutdown(incoming(listener, acceptor), async move {
            let _ = rx.changed().await;
        });
    let server = tokio::spawn(server);
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    // The committer finishes the block it is committing (commits are atomic
    // anyway) and stops.
    let _ = committer.await;
    let _ = server.await;
    Ok(())
}
