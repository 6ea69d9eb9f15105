//! The Raft network client: openraft calls this to reach another consenter
//! over gRPC with mutual TLS. Messages are openraft's serde types in bincode.

use std::sync::{Arc, RwLock};
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

use super::types::{NodeId, TypeConfig, decode, encode};

/// Largest Raft answer decoded: every answer (append, vote, pre-vote,
/// snapshot) is a vote, a log id or a flag, a few hundred bytes.
const RAFT_RESPONSE_LIMIT: usize = 1024 * 1024;

/// How a node reaches its peers: the TLS settings to present.
#[derive(Debug, Clone)]
pub struct RaftNetworkConfig {
    /// Consortium TLS roots (PEM), replaced when a config block changes
    /// them (a consenter of a newly added org is trusted from then on).
    pub tls_roots: Arc<RwLock<Vec<Vec<u8>>>>,
    /// This node's TLS certificate and key (PEM).
    pub tls_cert: Vec<u8>,
    /// This node's TLS key (PEM).
    pub tls_key: Vec<u8>,
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
    client: Option<RaftClient<Channel>>,
    error: Option<String>,
}

impl RaftNetworkConfig {
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
    }
}

fn tls_for(cfg: &RaftNetworkConfig, addr: &str) -> ClientTlsConfig {
    qcss_network::tls::client_tls_for_addr(
        &cfg.roots(),
        Some((cfg.tls_cert.as_slice(), cfg.tls_key.as_slice())),
        addr,
    )
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = NodeClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> NodeClient {
        let built = Endpoint::from_shared(format!("https://{}", node.addr))
            .and_then(|e| e.tls_config(tls_for(&self.cfg, &node.addr)))
            .map(|e| {
                e.connect_timeout(Duration::from_secs(2))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(5))
                    .connect_lazy()
            });
        match built {
            Ok(ch) => NodeClient {
                target,
                client: Some(
                    RaftClient::new(ch)
                        .max_decoding_message_size(RAFT_RESPONSE_LIMIT)
                        .max_encoding_message_size(usize::MAX),
                ),
                error: None,
            },
            Err(e) => NodeClient {
                target,
                client: None,
                error: Some(format!("node {target} at {}: {e}", node.addr)),
            },
        }
    }
}

type Rpc<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl NodeClient {
    async fn call<Req, Resp, E>(&mut self, method: u8, req: &Req) -> Rpc<Resp, E>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
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
