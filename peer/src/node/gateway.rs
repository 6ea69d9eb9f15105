//! Fabric's `gateway.Gateway` service: what integrators call.
//!
//! - `Evaluate` runs the proposal on this peer (or a peer of the one org the
//!   client targets) and returns the chaincode's response; nothing is
//!   ordered.
//! - `Endorse` endorses on this peer first (a failing chaincode stops there,
//!   with its message), then on peers of further orgs, chosen in channel
//!   order until the chaincode's endorsement policy is satisfied (or exactly
//!   the orgs the client names); an unreachable org is replaced by the next
//!   one that still satisfies the policy. Returns the transaction for the
//!   client to sign.
//! - `Submit` sends the signed transaction to the orderers, trying the next
//!   one when an orderer is down or has no leader.
//! - `CommitStatus` waits until the transaction is committed on this peer
//!   and answers its validation code and block.
//! - `ChaincodeEvents` streams a chaincode's events block by block from a
//!   position, resumable after a transaction id.
//!
//! Endorsing peers of other orgs come from `[gateway.endorsers]` in the
//! peer's configuration, else from the channel configuration's
//! `peer_endpoints` of each org (see docs/peer.md).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use qcss_network::orderer_client::OrdererClient;
use qcss_network::policy::{Policy, SignerInfo};
use qcss_network::{Role, signing};
use qcss_proto::common::{Envelope, Status as FabStatus};
use qcss_proto::gateway::gateway_server::Gateway;
use qcss_proto::gateway::{
    ChaincodeEventsRequest, ChaincodeEventsResponse, CommitStatusRequest, CommitStatusResponse,
    EndorseRequest, EndorseResponse, ErrorDetail, EvaluateRequest, EvaluateResponse,
    SignedChaincodeEventsRequest, SignedCommitStatusRequest, SubmitRequest, SubmitResponse,
};
use qcss_proto::kvrwset::KvrwSet;
use qcss_proto::msp::SerializedIdentity;
use qcss_proto::protos::endorser_client::EndorserClient;
use qcss_proto::protos::{
    ChaincodeAction, ProposalResponse, ProposalResponsePayload, SignedProposal,
};
use qcss_proto::rwset::TxReadWriteSet;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::endorser::{
    AssembleError, EndorseError, Refusal, UnpackedProposal, prepare_transaction,
};
use crate::node::endorser_service::{MIN_HEIGHT_HEADER, endorse_locally, evaluate_locally};
use crate::node::{Peer, chaincode_events};
use crate::validator::{KeyRule, KeyWrite, PolicyProvider, decode_key_policy};

pub(crate) struct GatewayService {
    peer: Arc<Peer>,
}

impl GatewayService {
    pub(crate) fn new(peer: Arc<Peer>) -> Self {
        GatewayService { peer }
    }

    fn count(&self, method: &str, ok: bool) {
        self.peer
            .metrics
            .gateway_calls
            .with(&[method, if ok { "ok" } else { "error" }])
            .inc();
    }
}

/// A refused proposal as a gRPC status of the matching family.
fn refused(e: &EndorseError) -> Status {
    let msg = e.to_string();
    match e.refusal() {
        Refusal::InvalidArgument => Status::invalid_argument(msg),
        Refusal::PermissionDenied => Status::permission_denied(msg),
        Refusal::NotFound => Status::not_found(msg),
        Refusal::AlreadyExists => Status::already_exists(msg),
        Refusal::FailedPrecondition => Status::failed_precondition(msg),
        _ => Status::internal(msg),
    }
}

/// `org: failure; org: failure`.
fn joined(errors: &[(String, String)]) -> String {
    errors
        .iter()
        .map(|(msp, m)| format!("{msp}: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The chaincode's response inside a proposal response, if not a success.
fn failure(r: &ProposalResponse) -> Option<String> {
    let resp = r.response.as_ref()?;
    (!(200..400).contains(&resp.status))
        .then(|| format!("status {}: {}", resp.status, resp.message))
}

/// `google.rpc.Status`, the shape of gRPC's `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// How one Broadcast attempt failed.
enum Attempt {
    /// The orderer refused the transaction itself: final.
    Refused(Status),
    /// Down, unreachable or without a leader: try another.
    Unavailable(String),
}

/// One write of a simulated transaction.
enum Written {
    Put(Vec<u8>),
    Delete,
    Metadata,
}

/// The keys a successful proposal response writes: (namespace, key, write).
fn written_keys(r: &ProposalResponse) -> Option<Vec<(String, String, Written)>> {
    let prp = ProposalResponsePayload::decode(r.payload.as_slice()).ok()?;
    let action = ChaincodeAction::decode(prp.extension.as_slice()).ok()?;
    let rwset = TxReadWriteSet::decode(action.results.as_slice()).ok()?;
    let mut out = Vec::new();
    for ns in rwset.ns_rwset {
        let Ok(kv) = KvrwSet::decode(ns.rwset.as_slice()) else {
            continue;
        };
        for w in kv.writes {
            let what = if w.is_delete {
                Written::Delete
            } else {
                Written::Put(w.value)
            };
            out.push((ns.namespace.clone(), w.key, what));
        }
        for m in kv.metadata_writes {
            out.push((ns.namespace.clone(), m.key, Written::Metadata));
        }
    }
    Some(out)
}

/// A peer of org `msp_id` signing, for planning which orgs satisfy a policy.
fn hypothetical_peer(msp_id: &str) -> SignerInfo {
    SignerInfo::new(signing::sha256(msp_id.as_bytes()), msp_id, Role::Peer)
}

impl GatewayService {
    /// The endorsing peers of `msp_id`.
    fn endpoints(&self, msp_id: &str) -> Vec<String> {
        self.peer.peer_endpoints(msp_id)
    }

    /// Endorsement by a peer of `msp_id` (this one if it is ours).
    async fn endorse_by(
        &self,
        msp_id: &str,
        signed: &SignedProposal,
    ) -> Result<ProposalResponse, String> {
        if msp_id == self.peer.msp_id().as_str() {
            return match endorse_locally(&self.peer, signed.clone())
                .await
                .map_err(|s| s.message().to_owned())?
            {
                Ok(r) => Ok(r),
                Err(e) => Err(e.to_string()),
            };
        }
        let endpoints = self.endpoints(msp_id);
        if endpoints.is_empty() {
            return Err(format!("no endorsing peer is configured for {msp_id}"));
        }
        let timeout = Duration::from_millis(self.peer.cfg.gateway.endorse_timeout_ms);
        let mut errors = Vec::new();
        for addr in endpoints {
            let attempt = async {
                let ch = self.peer.connect(&addr).await?;
                let mut req = tonic::Request::new(signed.clone());
                if let Ok(v) = self.peer.height().to_string().parse() {
                    req.metadata_mut().insert(MIN_HEIGHT_HEADER, v);
                }
                EndorserClient::new(ch)
                    .process_proposal(req)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|s| format!("{}: {}", s.code(), s.message()))
            };
            match tokio::time::timeout(timeout, attempt).await {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) => {
                    self.peer.disconnect(&addr).await;
                    errors.push(format!("{addr}: {e}"));
                }
                Err(_) => {
                    self.peer.disconnect(&addr).await;
                    errors.push(format!("{addr}: no answer within {timeout:?}"));
                }
            }
        }
        Err(errors.join("; "))
    }

    /// The policies the validator will require of this transaction's
    /// endorsers, as far as this peer's simulation shows: the chaincode's,
    /// the key-level policy of every key it writes, and the rules the
    /// policy provider sets for particular keys (the lifecycle's: an org's
    /// approval by that org's peer, a definition by a majority).
    fn required_policies(&self, chaincode: &str, local: Option<&ProposalResponse>) -> Vec<Policy> {
        let mut out: Vec<Policy> = self
            .peer
            .lifecycle
            .chaincode_policy(chaincode)
            .into_iter()
            .collect();
        let Some(rwset) = local.and_then(written_keys) else {
            return out;
        };
        let channel = self.peer.channel();
        let state = self.peer.ledger.state_view();
        for (ns, key, value) in rwset {
            let write = match &value {
                Written::Put(v) => KeyWrite::Put(v),
                Written::Delete => KeyWrite::Delete,
                Written::Metadata => KeyWrite::Metadata,
            };
            if let KeyRule::Require { endorsement, .. } =
                self.peer.lifecycle.key_rule(&channel, &ns, &key, write)
            {
                out.push(endorsement);
            }
            if let Ok(Some(meta)) = state.key_metadata(&ns, &key)
                && let Some(p) = decode_key_policy(&meta)
            {
                out.push(p);
            }
        }
        out
    }

    /// Orgs to add to `have` (in channel order, from `candidates`) until
    /// every one of `policies` would be satisfied by their peers; all
    /// candidates if no subset is enough (the caller then reports what
    /// failed).
    fn plan(&self, policies: &[Policy], have: &[String], candidates: &[String]) -> Vec<String> {
        let channel = self.peer.channel();
        let mut signers: Vec<SignerInfo> = have.iter().map(|m| hypothetical_peer(m)).collect();
        let mut chosen = Vec::new();
        for c in candidates {
            if policies.iter().all(|p| channel.evaluate(p, &signers)) {
                break;
            }
            signers.push(hypothetical_peer(c));
            chosen.push(c.clone());
        }
        chosen
    }
}

type EventStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<ChaincodeEventsResponse, Status>> + Send>>;

impl GatewayService {
    /// Checks a signed request (CommitStatus, ChaincodeEvents): the identity
    /// is a valid member of the channel, the signature is its, and it may
    /// read the channel.
    fn check_signed(
        &self,
        identity: &[u8],
        request: &[u8],
        signature: &[u8],
    ) -> Result<(), Status> {
        let channel = self.peer.channel();
        let id = SerializedIdentity::decode(identity)
            .map_err(|e| Status::invalid_argument(format!("identity does not decode: {e}")))?;
        let msp = channel.msp(&id.mspid).ok_or_else(|| {
            Status::permission_denied(format!(
                "{} is not a member of channel {}",
                id.mspid,
                channel.id()
            ))
        })?;
        let v = msp
            .validate_serialized(&id.mspid, &id.id_bytes)
            .map_err(|e| Status::permission_denied(format!("identity refused: {e}")))?;
        signing::verify(&v.cert.public_key, request, signature)
            .map_err(|e| Status::permission_denied(format!("request signature: {e}")))?;
        if !channel.readers_ok(&[SignerInfo::from(&*v)]) {
            return Err(Status::permission_denied(format!(
                "{} {} may not read channel {}",
                id.mspid,
                v.cert.common_name,
                channel.id()
            )));
        }
        Ok(())
    }

    /// Fabric's per-endorser error detail: which node failed, and how.
    fn detail(&self, msp_id: &str, message: &str) -> ErrorDetail {
        let address = if msp_id == self.peer.msp_id().as_str() {
            self.peer.cfg.listen.clone()
        } else {
            self.endpoints(msp_id).join(",")
        };
        ErrorDetail {
            address,
            msp_id: msp_id.to_owned(),
            message: message.to_owned(),
        }
    }

    /// `ABORTED` with Fabric's error details (`google.rpc.Status.details`
    /// holding `gateway.ErrorDetail`s), which Fabric's SDKs surface as the
    /// error's `details`.
    fn aborted(&self, message: String, details: Vec<ErrorDetail>) -> Status {
        let status = RpcStatus {
            code: tonic::Code::Aborted as i32,
            message: message.clone(),
            details: details
                .into_iter()
                .map(|d| prost_types::Any {
                    type_url: "type.googleapis.com/gateway.ErrorDetail".into(),
                    value: d.encode_to_vec(),
                })
                .collect(),
        };
        Status::with_details(tonic::Code::Aborted, message, status.encode_to_vec().into())
    }

    fn check_channel(&self, channel_id: &str) -> Result<(), Status> {
        let channel = self.peer.channel();
        if channel_id != channel.id() {
            return Err(Status::not_found(format!(
                "this peer serves channel {:?}, not {:?}",
                channel.id(),
                channel_id
            )));
        }
        Ok(())
    }

    async fn submit_inner(&self, req: SubmitRequest) -> Result<SubmitResponse, Status> {
        self.check_channel(&req.channel_id)?;
        let env = req
            .prepared_transaction
            .ok_or_else(|| Status::invalid_argument("SubmitRequest has no prepared_transaction"))?;
        if env.signature.is_empty() {
            return Err(Status::invalid_argument(
                "the prepared transaction is not signed: \
                 sign its payload with the proposal's creator",
            ));
        }
        let timeout = Duration::from_millis(self.peer.cfg.gateway.broadcast_timeout_ms);
        // While the ordering service elects a leader every orderer answers
        // SERVICE_UNAVAILABLE: go round them again until the deadline.
        let deadline = tokio::time::Instant::now() + timeout;
        let pause = Duration::from_millis(200);
        loop {
            let mut errors = Vec::new();
            for addr in self.peer.orderers_for_submit() {
                match self.broadcast_once(&addr, &env, timeout).await {
                    Ok(info) => {
                        self.peer.note_submitted(&addr, &info);
                        return Ok(SubmitResponse {});
                    }
                    Err(Attempt::Refused(s)) => return Err(s),
                    Err(Attempt::Unavailable(e)) => errors.push(format!("{addr}: {e}")),
                }
            }
            if tokio::time::Instant::now() + pause >= deadline {
                return Err(Status::unavailable(format!(
                    "no orderer accepted the transaction: {}",
                    errors.join("; ")
                )));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Sends `env` to the orderer at `addr`; on SUCCESS, its `info`.
    async fn broadcast_once(
        &self,
        addr: &str,
        env: &Envelope,
        timeout: Duration,
    ) -> Result<String, Attempt> {
        let attempt = async {
            let ch = self.peer.connect(addr).await?;
            OrdererClient::from_channel(ch)
                .broadcast(vec![env.clone()])
                .await
                .map_err(|s| format!("{}: {}", s.code(), s.message()))
        };
        let responses = match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(rs)) => rs,
            Ok(Err(e)) => {
                self.peer.disconnect(addr).await;
                return Err(Attempt::Unavailable(e));
            }
            Err(_) => {
                self.peer.disconnect(addr).await;
                return Err(Attempt::Unavailable(format!(
                    "no answer within {timeout:?}"
                )));
            }
        };
        match responses.first() {
            Some(b) if b.status == FabStatus::Success as i32 => Ok(b.info.clone()),
            // No leader, or this orderer lost it: another may do.
            Some(b) if b.status == FabStatus::ServiceUnavailable as i32 => {
                Err(Attempt::Unavailable(b.info.clone()))
            }
            Some(b) => {
                let s = FabStatus::try_from(b.status)
                    .map_or(b.status.to_string(), |s| s.as_str_name().to_owned());
                Err(Attempt::Refused(Status::aborted(format!(
                    "the orderer refused the transaction: {s}: {}",
                    b.info
                ))))
            }
            None => Err(Attempt::Unavailable("no answer".into())),
        }
    }

    async fn endorse_inner(&self, req: EndorseRequest) -> Result<EndorseResponse, Status> {
        self.check_channel(&req.channel_id)?;
        let signed = req.proposed_transaction.ok_or_else(|| {
            Status::invalid_argument("EndorseRequest has no proposed_transaction")
        })?;
        let unpacked = UnpackedProposal::unpack(&signed).map_err(|e| refused(&e))?;
        let own = self.peer.msp_id().as_str().to_owned();
        let orgs = self.peer.channel().org_ids().to_vec();

        // This peer first: a chaincode error ends it here, with its message.
        let mut responses = Vec::new();
        let mut asked: Vec<String> = Vec::new();
        // (org, what went wrong): kept apart, so the details need no parsing.
        let mut errors: Vec<(String, String)> = Vec::new();
        let targets: Vec<String> = if req.endorsing_organizations.is_empty() {
            vec![own.clone()]
        } else {
            req.endorsing_organizations.clone()
        };
        if targets.contains(&own) {
            let r = match endorse_locally(&self.peer, signed.clone()).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(refused(&e)),
                Err(s) => return Err(s),
            };
            if let Some(f) = failure(&r) {
                let msg = format!("chaincode {} failed on {own}: {f}", unpacked.chaincode);
                return Err(self.aborted(msg, vec![self.detail(&own, &f)]));
            }
            responses.push(r);
            asked.push(own.clone());
        }
        let remote_round = |batch: Vec<String>| {
            let signed = signed.clone();
            async move {
                let calls = batch.iter().map(|m| self.endorse_by(m, &signed));
                let results = futures_util::future::join_all(calls).await;
                batch.into_iter().zip(results).collect::<Vec<_>>()
            }
        };
        if !req.endorsing_organizations.is_empty() {
            let remote: Vec<String> = targets.into_iter().filter(|m| *m != own).collect();
            for (msp, r) in remote_round(remote).await {
                match r {
                    Ok(r) if failure(&r).is_none() => responses.push(r),
                    Ok(r) => errors.push((msp, failure(&r).unwrap_or_default())),
                    Err(e) => errors.push((msp, e.to_string())),
                }
            }
            if !errors.is_empty() {
                let details = errors.iter().map(|(msp, m)| self.detail(msp, m)).collect();
                let msg = format!("endorsement failed: {}", joined(&errors));
                return Err(self.aborted(msg, details));
            }
        } else {
            let policies = self.required_policies(&unpacked.chaincode, responses.first());
            let mut endorsed: Vec<String> = asked.clone();
            let channel = self.peer.channel();
            let satisfied = |endorsed: &[String]| {
                let signers: Vec<SignerInfo> =
                    endorsed.iter().map(|m| hypothetical_peer(m)).collect();
                policies.iter().all(|p| channel.evaluate(p, &signers))
            };
            while !satisfied(&endorsed) {
                let candidates: Vec<String> = orgs
                    .iter()
                    .filter(|m| !asked.contains(m))
                    .cloned()
                    .collect();
                let batch = self.plan(&policies, &endorsed, &candidates);
                if batch.is_empty() {
                    let names: Vec<String> = policies.iter().map(ToString::to_string).collect();
                    return Err(Status::unavailable(format!(
                        "cannot satisfy the endorsement policies of this transaction ({}) with the orgs that endorsed it ({}); failures: {}",
                        names.join(" and "),
                        endorsed.join(", "),
                        if errors.is_empty() {
                            "none".into()
                        } else {
                            joined(&errors)
                        }
                    )));
                }
                asked.extend(batch.iter().cloned());
                for (msp, r) in remote_round(batch).await {
                    match r {
                        Ok(r) => match failure(&r) {
                            None => {
                                responses.push(r);
                                endorsed.push(msp);
                            }
                            Some(f) => errors.push((msp, f)),
                        },
                        Err(e) => errors.push((msp, e.to_string())),
                    }
                }
            }
        }
        let prepared = match prepare_transaction(&signed, &responses) {
            Ok(p) => p,
            // An endorser that had not committed what this peer had (a hint
            // it did not honour, or a block that arrived meanwhile): ask the
            // remote orgs once more, now that they have had time to catch up.
            Err(AssembleError::PayloadMismatch { .. }) if responses.len() > 1 => {
                tracing::info!(
                    tx_id = unpacked.tx_id(),
                    "endorsements differ; asking the remote endorsers once more"
                );
                self.reendorse(&signed, &unpacked, &own, responses).await?
            }
            Err(e) => {
                return Err(Status::aborted(format!(
                    "cannot assemble the transaction: {e}"
                )));
            }
        };
        Ok(EndorseResponse {
            prepared_transaction: Some(prepared),
        })
    }
}

impl GatewayService {
    /// The retry of [`Self::endorse_inner`] after the endorsements differed:
    /// keeps this peer's response, asks each remote org that endorsed again
    /// (after a short pause), and assembles once more.
    async fn reendorse(
        &self,
        signed: &SignedProposal,
        unpacked: &UnpackedProposal,
        own: &str,
        responses: Vec<ProposalResponse>,
    ) -> Result<Envelope, Status> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut again = Vec::with_capacity(responses.len());
        for r in responses {
            let msp = r
                .endorsement
                .as_ref()
                .and_then(|e| SerializedIdentity::decode(e.endorser.as_slice()).ok())
                .map(|id| id.mspid)
                .unwrap_or_default();
            if msp == own || msp.is_empty() {
                again.push(r);
                continue;
            }
            match self.endorse_by(&msp, signed).await {
                Ok(r) if failure(&r).is_none() => again.push(r),
                Ok(r) => {
                    let f = failure(&r).unwrap_or_default();
                    return Err(self.aborted(
                        format!("chaincode {} failed on {msp}: {f}", unpacked.chaincode),
                        vec![self.detail(&msp, &f)],
                    ));
                }
                Err(e) => return Err(Status::unavailable(format!("{msp}: {e}"))),
            }
        }
        prepare_transaction(signed, &again)
            .map_err(|e| Status::aborted(format!("cannot assemble the transaction: {e}")))
    }
}

#[tonic::async_trait]
impl Gateway for GatewayService {
    async fn endorse(
        &self,
        request: Request<EndorseRequest>,
    ) -> Result<Response<EndorseResponse>, Status> {
        let r = self.endorse_inner(request.into_inner()).await;
        self.count("endorse", r.is_ok());
        r.map(Response::new)
    }

    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let r = self.submit_inner(request.into_inner()).await;
        self.count("submit", r.is_ok());
        r.map(Response::new)
    }

    async fn commit_status(
        &self,
        request: Request<SignedCommitStatusRequest>,
    ) -> Result<Response<CommitStatusResponse>, Status> {
        let signed = request.into_inner();
        let r = async {
            let req = CommitStatusRequest::decode(signed.request.as_slice())
                .map_err(|e| Status::invalid_argument(format!("CommitStatusRequest: {e}")))?;
            self.check_channel(&req.channel_id)?;
            self.check_signed(&req.identity, &signed.request, &signed.signature)?;
            let deadline = tokio::time::Instant::now()
                + Duration::from_millis(self.peer.cfg.gateway.commit_status_timeout_ms);
            loop {
                let height = self.peer.height();
                match self.peer.ledger.tx(&req.transaction_id) {
                    Ok(Some(at)) if at.block < height => {
                        return Ok(CommitStatusResponse {
                            result: at.code as i32,
                            block_number: at.block,
                        });
                    }
                    Ok(_) => {}
                    Err(e) => return Err(Status::internal(e.to_string())),
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(Status::deadline_exceeded(format!(
                        "transaction {} not committed within the wait (height {height})",
                        req.transaction_id
                    )));
                }
                self.peer.wait_height_above(height, left).await;
            }
        }
        .await;
        self.count("commit_status", r.is_ok());
        r.map(Response::new)
    }

    async fn evaluate(
        &self,
        request: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        let req = request.into_inner();
        let r = async {
            self.check_channel(&req.channel_id)?;
            let signed = req.proposed_transaction.ok_or_else(|| {
                Status::invalid_argument("EvaluateRequest has no proposed_transaction")
            })?;
            let own = self.peer.msp_id().as_str().to_owned();
            let org =
                if req.target_organizations.is_empty() || req.target_organizations.contains(&own) {
                    own
                } else {
                    req.target_organizations[0].clone()
                };
            let r = if org == self.peer.msp_id().as_str() {
                match evaluate_locally(&self.peer, signed).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => return Err(refused(&e)),
                    Err(s) => return Err(s),
                }
            } else {
                self.endorse_by(&org, &signed)
                    .await
                    .map_err(|e| Status::unavailable(format!("evaluate on {org}: {e}")))?
            };
            if let Some(f) = failure(&r) {
                let msg = format!("evaluation failed on {org}: {f}");
                return Err(self.aborted(msg, vec![self.detail(&org, &f)]));
            }
            Ok(EvaluateResponse { result: r.response })
        }
        .await;
        self.count("evaluate", r.is_ok());
        r.map(Response::new)
    }

    type ChaincodeEventsStream = EventStream;

    async fn chaincode_events(
        &self,
        request: Request<SignedChaincodeEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let signed = request.into_inner();
        let req = ChaincodeEventsRequest::decode(signed.request.as_slice())
            .map_err(|e| Status::invalid_argument(format!("ChaincodeEventsRequest: {e}")))?;
        self.check_channel(&req.channel_id)?;
        self.check_signed(&req.identity, &signed.request, &signed.signature)?;
        self.count("chaincode_events", true);
        let height = self.peer.height();
        let start = qcss_network::deliver::position(req.start_position.as_ref(), height, height);
        let (tx, rx) = mpsc::channel(16);
        let peer = self.peer.clone();
        tokio::spawn(async move {
            let after = (!req.after_transaction_id.is_empty()).then_some(req.after_transaction_id);
            qcss_network::deliver::follow(&*peer, (start, u64::MAX, false), &tx, |n, block| {
                let skip = if n == start { after.as_deref() } else { None };
                let events = chaincode_events(&block, &req.chaincode_id, skip);
                (!events.is_empty()).then_some(ChaincodeEventsResponse {
                    events,
                    block_number: n,
                })
            })
            .await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
