//! Fabric's `protos.Endorser/ProcessProposal`: what other orgs' Gateways
//! (and admin tools) call to have this peer endorse a proposal.
//!
//! As in Fabric, a refused proposal is answered with a `ProposalResponse`
//! of status 500 and the reason, not a gRPC error: callers read the reason
//! the same way whether the chaincode failed or the proposal was refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use qcss_proto::protos::endorser_server::Endorser;
use qcss_proto::protos::{ProposalResponse, SignedProposal};
use tonic::{Request, Response, Status};

use crate::endorser::EndorseError;
use crate::node::Peer;
use crate::node::qscc::{self, QSCC};

/// gRPC metadata a QCSS Gateway sets on `ProcessProposal`: its own ledger
/// height. The endorser waits (up to [`MIN_HEIGHT_WAIT_MS`]) until its
/// ledger is at least as high before simulating.
pub(crate) const MIN_HEIGHT_HEADER: &str = "qcss-min-height";

/// Longest an endorser waits for [`MIN_HEIGHT_HEADER`], ms.
const MIN_HEIGHT_WAIT_MS: u64 = 2_000;

/// The Endorser gRPC service of one peer.
pub(crate) struct EndorserService {
    peer: Arc<Peer>,
}

impl EndorserService {
    pub(crate) fn new(peer: Arc<Peer>) -> Self {
        EndorserService { peer }
    }
}

/// Endorses `signed` with `peer`'s endorser on a blocking thread. The
/// outer error is a crashed endorsement task (a bug), the inner one a
/// refused proposal.
pub(crate) async fn endorse_locally(
    peer: &Arc<Peer>,
    signed: SignedProposal,
) -> Result<Result<ProposalResponse, EndorseError>, Status> {
    run_locally(peer, signed, true).await
}

/// [`endorse_locally`] for the Gateway's `Evaluate`: a chaincode's answer
/// comes back unsigned (`Endorser::evaluate`).
pub(crate) async fn evaluate_locally(
    peer: &Arc<Peer>,
    signed: SignedProposal,
) -> Result<Result<ProposalResponse, EndorseError>, Status> {
    run_locally(peer, signed, false).await
}

async fn run_locally(
    peer: &Arc<Peer>,
    signed: SignedProposal,
    sign: bool,
) -> Result<Result<ProposalResponse, EndorseError>, Status> {
    if let Some(why) = peer.ledger_problem() {
        // Ledger queries (qscc) still answer: a damaged block is refused
        // by the ledger itself, with its number.
        let is_qscc =
            crate::endorser::UnpackedProposal::unpack(&signed).is_ok_and(|p| p.chaincode == QSCC);
        if !is_qscc {
            return Err(Status::unavailable(format!(
                "this peer does not endorse while its ledger is unsound: {why}"
            )));
        }
    }
    let p = peer.clone();
    let started = Instant::now();
    let r = tokio::task::spawn_blocking(move || {
        let r = if sign {
            p.endorser.endorse(&signed)
        } else {
            p.endorser.evaluate(&signed)
        };
        match r {
            // qscc is not a defined chaincode: the endorser has checked the
            // proposal's header and signature by then; answer it natively.
            Err(EndorseError::ChaincodeNotCommitted { chaincode, .. }) if chaincode == QSCC => {
                qscc::query(&p, &signed)
            }
            // So is `_anchor` (the anchoring receipts), which it endorses.
            Err(EndorseError::ChaincodeNotCommitted { chaincode, .. })
                if chaincode == crate::lifecycle::ANCHOR_NAMESPACE =>
            {
                crate::node::anchorscc::endorse(&p, &signed)
            }
            other => other,
        }
    })
    .await
    .map_err(|e| Status::internal(format!("endorsement task failed: {e}")));
    peer.metrics
        .endorse_seconds
        .observe(started.elapsed().as_secs_f64());
    r
}

#[tonic::async_trait]
impl Endorser for EndorserService {
    async fn process_proposal(
        &self,
        request: Request<SignedProposal>,
    ) -> Result<Response<ProposalResponse>, Status> {
        // A QCSS Gateway says how far its own ledger is: simulate no
        // earlier than that, or the endorsements differ (issue 15: the demo's
        // steps failed now and then when this peer had not yet committed the
        // block the client had just seen committed). Bounded wait; past it,
        // simulate anyway and let the Gateway compare.
        if let Some(h) = request
            .metadata()
            .get(MIN_HEIGHT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && self.peer.height() < h
        {
            self.peer
                .wait_height_above(h - 1, Duration::from_millis(MIN_HEIGHT_WAIT_MS))
                .await;
        }
        let signed = request.into_inner();
        match endorse_locally(&self.peer, signed).await {
            Ok(Ok(r)) => Ok(Response::new(r)),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "proposal refused");
                Ok(Response::new(e.to_response()))
            }
            Err(s) => Err(s),
        }
    }
}
