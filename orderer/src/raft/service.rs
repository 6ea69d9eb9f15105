//! The Raft gRPC service: hands consenters' messages to openraft. Every
//! call's TLS client certificate must be one of the consenters' TLS
//! certificates in the current channel configuration, with two bounded
//! exceptions that membership changes need:
//!
//! - a consenter the last config block removed is still admitted while it
//!   is a Raft member (a removed leader keeps leading until the membership
//!   without it commits);
//! - a joining node that was given a `join_block` admits that block's
//!   consenters until it has applied that configuration itself (its leader
//!   may be a consenter added after genesis).

use std::sync::Arc;

use openraft::error::RaftError;
use openraft::raft::VoteResponse;
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
        if !self.is_consenter(&channel, leaf.as_ref()) {
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

    fn is_consenter(&self, channel: &qcss_network::channel::Channel, leaf: &[u8]) -> bool {
        if channel.consenter_by_tls(leaf).is_some() {
            return true;
        }
        let still_member = |id: u64| {
            self.raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .get_node(&id)
                .is_some()
        };
        if let Some(prev) = self.shared.chain.previous_channel()
            && let Some(c) = prev.consenter_by_tls(leaf)
            && still_member(c.id)
        {
            return true;
        }
        match &self.shared.join {
            Some(join) if channel.config().sequence < join.config().sequence => {
                join.consenter_by_tls(leaf).is_some()
            }
            _ => false,
        }
    }
}

impl RaftService {
    /// Ends recovering once the log is applied to the index to catch up to.
    fn caught_up(&self) {
        let applied = self.raft.metrics().borrow().last_applied.map(|l| l.index);
        if self.shared.recovery.applied(applied) {
            tracing::info!(
                applied = applied.unwrap_or(0),
                "re-synced: this node holds the leader's committed log and votes again"
            );
        }
    }
}

/// Admits a Raft call from its TLS certificate before its message is
/// decoded: a non-consenter cannot make this node buffer anything.
#[derive(Clone)]
pub struct Admission(pub RaftService);

impl tonic::service::Interceptor for Admission {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        self.0.admit(&req)?;
        Ok(req)
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
        let rpc: openraft::raft::AppendEntriesRequest<super::types::TypeConfig> =
            decode(&req.into_inner().data).map_err(bad)?;
        let commit = rpc.leader_commit.map(|l| l.index);
        let r = self.raft.append_entries(rpc).await;
        // A leader this node accepts: no election while it keeps calling;
        // a recovering node catches up to the first such leader's commit
        // index (not a deposed leader's, which is refused).
        if matches!(&r, Ok(resp) if !matches!(resp, openraft::raft::AppendEntriesResponse::HigherVote(_)))
        {
            self.shared.leader_contact.touch();
            self.shared.recovery.leader_commit(commit);
        }
        self.caught_up();
        reply(&r)
    }

    async fn pre_vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.admit(&req)?;
        let rpc = decode(&req.into_inner().data).map_err(bad)?;
        if let Some(reason) = self.shared.recovery.refusal() {
            return reply(&super::prevote::PreVoteResponse {
                granted: false,
                reason,
            });
        }
        reply(&super::prevote::answer(
            &self.raft,
            &self.shared.leader_contact,
            self.shared.election_lease(),
            &rpc,
            self.shared.log_store.last_log_id(),
        ))
    }

    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.admit(&req)?;
        let rpc = decode(&req.into_inner().data).map_err(bad)?;
        if self.shared.recovery.refusal().is_some() {
            // Not granted; the vote it carries is this node's own, lower
            // than any candidate's, so the candidate is not made to step
            // down by the answer.
            let vote = self.raft.metrics().borrow().vote;
            let refused: Result<VoteResponse<u64>, RaftError<u64>> = Ok(VoteResponse {
                vote,
                vote_granted: false,
                last_log_id: self.shared.log_store.last_log_id(),
            });
            return reply(&refused);
        }
        reply(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.admit(&req)?;
        let rpc = decode(&req.into_inner().data).map_err(bad)?;
        let r = self.raft.install_snapshot(rpc).await;
        if r.is_ok() {
            self.shared.leader_contact.touch();
        }
        self.caught_up();
        reply(&r)
    }
}
