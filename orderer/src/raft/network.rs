//! The Raft network client: openraft calls this to reach another consenter
//! over gRPC with mutual TLS. Messages are openraft's serde types in bincode.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use qcss_proto::qcss::raft::RaftMessage;
use qcss_proto::qcss::raft::raft_client::RaftClient;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use qcss_network::tls::TlsPair;

use super::types::{NodeId, TypeConfig, decode, encode};

/// Largest Raft answer decoded: every answer (append, vote, pre-vote,
/// snapshot) is a vote, a log id or a flag, a few hundred bytes.
const RAFT_RESPONSE_LIMIT: usize = 1024 * 1024;

/// How a node reaches its peers: the TLS settings to present. Clones share
/// them; a change bumps a generation so that every Raft client rebuilds its
/// channel before its next call.
#[derive(Debug, Clone)]
pub struct RaftNetworkConfig {
    /// Consortium TLS roots (PEM), replaced when a config block changes
    /// them (a consenter of a newly added org is trusted from then on).
    tls_roots: Arc<RwLock<Vec<Vec<u8>>>>,
    /// This node's TLS pair, replaced when its files are renewed.
    pair: Arc<RwLock<TlsPair>>,
    generation: Arc<AtomicU64>,
}

/// Creates one client per target node.
#[derive(Debug, Clone)]
pub struct Network {
    cfg: RaftNetworkConfig,
}

impl Network {
    /// A factory with these TLS settings.
    pub fn new(cfg: RaftNetworkConfig) -> Self {
        Network { cfg }
    }
}

/// A client for one target node. Connects lazily, so a node that is down
/// only costs an error per call (reported as Unreachable so openraft backs off).
pub struct NodeClient {
    target: NodeId,
    addr: String,
    cfg: RaftNetworkConfig,
    /// `cfg`'s generation when `client` was built.
    generation: u64,
    client: Option<RaftClient<Channel>>,
    error: Option<String>,
}

impl RaftNetworkConfig {
    /// Settings with these roots and this pair.
    pub fn new(roots: Vec<Vec<u8>>, pair: TlsPair) -> Self {
        RaftNetworkConfig {
            tls_roots: Arc::new(RwLock::new(roots)),
            pair: Arc::new(RwLock::new(pair)),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// This node's TLS pair in force.
    pub fn pair(&self) -> TlsPair {
        self.pair
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces this node's TLS pair (renewed files).
    pub fn set_pair(&self, pair: TlsPair) {
        *self.pair.write().unwrap_or_else(PoisonError::into_inner) = pair;
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The TLS roots in force.
    pub fn roots(&self) -> Vec<Vec<u8>> {
        match self.tls_roots.read() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the TLS roots.
    pub fn set_roots(&self, roots: Vec<Vec<u8>>) {
        match self.tls_roots.write() {
            Ok(mut r) => *r = roots,
            Err(p) => *p.into_inner() = roots,
        }
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Client TLS towards `addr`: the roots and the pair in force.
    pub fn client_tls(&self, addr: &str) -> ClientTlsConfig {
        let pair = self.pair();
        qcss_network::tls::client_tls_for_addr(
            &self.roots(),
            Some((pair.cert_pem.as_slice(), pair.key_pem.as_slice())),
            addr,
        )
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = NodeClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> NodeClient {
        let mut c = NodeClient {
            target,
            addr: node.addr.clone(),
            cfg: self.cfg.clone(),
            generation: self.cfg.generation(),
            client: None,
            error: None,
        };
        c.build();
        c
    }
}

type Rpc<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl NodeClient {
    /// (Re)builds the lazy channel with the TLS settings in force.
    fn build(&mut self) {
        self.generation = self.cfg.generation();
        let built = Endpoint::from_shared(format!("https://{}", self.addr))
            .and_then(|e| e.tls_config(self.cfg.client_tls(&self.addr)))
            .map(|e| {
                e.connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(5))
                    .connect_lazy()
            });
        match built {
            Ok(ch) => {
                self.client = Some(
                    RaftClient::new(ch)
                        .max_decoding_message_size(RAFT_RESPONSE_LIMIT)
                        .max_encoding_message_size(usize::MAX),
                );
                self.error = None;
            }
            Err(e) => {
                self.client = None;
                self.error = Some(format!("node {} at {}: {e}", self.target, self.addr));
            }
        }
    }

    async fn call<Req, Resp, E>(&mut self, method: u8, req: &Req) -> Rpc<Resp, E>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        // New roots or a renewed pair: connect anew with them.
        if self.generation != self.cfg.generation() {
            self.build();
        }
        let Some(client) = self.client.as_mut() else {
            let msg = self.error.clone().unwrap_or_default();
            return Err(RPCError::Unreachable(Unreachable::new(
                &std::io::Error::other(msg),
            )));
        };
        let data = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let msg = RaftMessage { data };
        let resp = match method {
            0 => client.append_entries(msg).await,
            1 => client.vote(msg).await,
            _ => client.install_snapshot(msg).await,
        };
        let resp = match resp {
            Ok(r) => r.into_inner(),
            Err(status) if status.code() == tonic::Code::Unavailable => {
                return Err(RPCError::Unreachable(Unreachable::new(&status)));
            }
            Err(status) => return Err(RPCError::Network(NetworkError::new(&status))),
        };
        let result: Result<Resp, RaftError<NodeId, E>> =
            decode(&resp.data).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for NodeClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.call(0, &rpc).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call(2, &rpc).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.call(1, &rpc).await
    }
}
