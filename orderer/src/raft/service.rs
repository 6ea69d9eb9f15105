//! The Raft gRPC service: hands consenters' messages to openraft. Every
//! call's TLS client certificate must be one of the consenters' TLS
//! certificates in the current channel configuration.

use std::sync::Arc;

use qcss_proto::qcss::raft::RaftMessage;
use qcss_proto::qcss::raft::raft_server::Raft as RaftRpc;
use tonic::{Request, Response, Status};

use super::types::{Raft, decode, encode};
use crate::node::Shared;

/// The service.
#[derive(Clone)]
pub struct RaftService {
    raft: Raft,
    shared: Arc<Shared>,
}

impl RaftService {
    /// Serves `raft`, admitting the consenters of `shared`'s channel.
    pub fn new(raft: Raft, shared: Arc<Shared>) -> Self {
        RaftService { raft, shared }
    }

    fn admit<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let certs = req.peer_certs().ok_or_else(|| {
            Status::unauthenticated("Raft traffic needs a TLS client certificate")
        })?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("empty TLS certificate chain"))?;
        let channel = self.shared.channel();
        if channel.consenter_by_tls(leaf.as_ref()).is_none() {
            let who = qcss_network::CertInfo::from_der(leaf.as_ref())
                .map(|c| c.common_name)
                .unwrap_or_default();
            tracing::warn!(caller = %who, "refused Raft traffic from a non-consenter");
            return Err(Status::permission_denied(format!(
                "{who:?} is not a consenter of channel {}",
                channel.id()
            )));
        }
        Ok(())
    }
}

fn bad(e: bincode::Error) -> Status {
    Status::invalid_argument(format!("undecodable Raft message: {e}"))
}

fn reply<T: serde::Serialize>(v: &T) -> Result<Response<RaftMessage>, Status> {
    Ok(Response::new(RaftMessage {
        data: encode(v).map_err(|e| Status::internal(e.to_string()))?,
    }))
}

#[tonic::async_trait]
impl RaftRpc for RaftService {
    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.admit(&req)?;
        let rpc = decode(&req.into_inner().data).map_err(bad)?;
        reply(&self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.admit(&req)?;
        let rpc = decode(&req.into_inner().data).map_err(bad)?;
        reply(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.admit(&req)?;
        let rpc = decode(&req.into_inner().data).map_err(bad)?;
        reply(&self.raft.install_snapshot(rpc).await)
    }
}
