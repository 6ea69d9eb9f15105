//! Fabric's `AtomicBroadcast` service: `Broadcast` orders envelopes,
//! `Deliver` streams blocks.
//!
//! Broadcast answers one status per envelope, in order. Each envelope is
//! checked ([`check`]: size, decoding, channel, creator's MSP and CRL,
//! signature, tx id, Writers policy, and for a `CONFIG_UPDATE` the update
//! itself — see [`crate::config_update`]), refused if its tx id is already
//! ordered, and then handed to the cutter when this node leads with a
//! quorum, or forwarded to the leader otherwise. SUCCESS is sent only after
//! the envelope's batch is committed and applied; SERVICE_UNAVAILABLE means
//! "not acknowledged, retry the same envelope" (a retry of one that was in
//! fact ordered is refused as a duplicate tx id, never ordered twice).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use qcss_network::channel::Channel;
use qcss_network::envelope::{self, EnvelopeError, compute_tx_id};
use qcss_network::policy::SignerInfo;
use qcss_proto::common::{Envelope, HeaderType, Status as FabStatus};
use qcss_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use qcss_proto::orderer::atomic_broadcast_server::AtomicBroadcast;
use qcss_proto::orderer::{BroadcastResponse, DeliverResponse};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::config_update::{ConfigUpdate, verify_update};
use crate::cutter::{CutError, Kind, Pending};
use crate::node::Shared;

/// The service.
#[derive(Clone)]
pub struct BroadcastService {
    shared: Arc<Shared>,
}

impl BroadcastService {
    /// Serves the node's chain.
    pub fn new(shared: Arc<Shared>) -> Self {
        BroadcastService { shared }
    }
}

fn resp(status: FabStatus, info: impl Into<String>) -> BroadcastResponse {
    BroadcastResponse {
        status: status as i32,
        info: info.into(),
    }
}

/// Checks an envelope and, if it passes, orders it. Returns the one status
/// Broadcast sends back for it.
pub async fn process(shared: &Arc<Shared>, env: Envelope) -> BroadcastResponse {
    let started = Instant::now();
    let r = process_inner(shared, env).await;
    let reason = match FabStatus::try_from(r.status).unwrap_or(FabStatus::Unknown) {
        FabStatus::Success => {
            shared
                .metrics
                .broadcast_latency
                .observe(started.elapsed().as_secs_f64());
            "SUCCESS"
        }
        other => other.as_str_name(),
    };
    shared.metrics.envelopes.with(&[reason]).inc();
    r
}

/// An envelope that passed [`check`].
#[derive(Debug, Clone)]
pub struct Checked {
    /// Its tx id.
    pub tx_id: String,
    /// Batched with others, or a config update cut alone.
    pub kind: Kind,
}

/// Every check Broadcast makes on an envelope against `channel` that does
/// not depend on the chain (the duplicate tx id check does): size, layers,
/// channel, creator (MSP, CRL), signature, type, tx id, Writers policy and,
/// for a config update, the update against the configuration in force.
pub fn check(channel: &Channel, env: &Envelope) -> Result<Checked, BroadcastResponse> {
    let size = env.encoded_len();
    let max = channel.config().batch.absolute_max_bytes as usize;
    if size > max {
        return Err(resp(
            FabStatus::RequestEntityTooLarge,
            format!("envelope of {size} bytes exceeds AbsoluteMaxBytes {max}"),
        ));
    }
    let verified = match envelope::open(env, channel.id(), |id| channel.msp(id)) {
        Ok(v) => v,
        Err(
            e @ (EnvelopeError::Malformed { .. }
            | EnvelopeError::Missing(_)
            | EnvelopeError::WrongChannel { .. }),
        ) => {
            return Err(resp(FabStatus::BadRequest, e.to_string()));
        }
        Err(e) => return Err(resp(FabStatus::Forbidden, e.to_string())),
    };
    let o = verified.opened();
    let ty = o.channel_header.r#type;
    let kind = if ty == HeaderType::EndorserTransaction as i32 || ty == HeaderType::Message as i32 {
        Kind::Normal
    } else if ty == HeaderType::ConfigUpdate as i32 {
        Kind::Config
    } else {
        return Err(resp(
            FabStatus::BadRequest,
            format!(
                "header type {ty} is not accepted by Broadcast \
                 (ENDORSER_TRANSACTION, MESSAGE or CONFIG_UPDATE)"
            ),
        ));
    };
    let expected = compute_tx_id(&o.signature_header.nonce, &o.signature_header.creator);
    if o.channel_header.tx_id != expected {
        return Err(resp(
            FabStatus::BadRequest,
            format!(
                "tx id {:?} is not SHA-256(nonce ‖ creator)",
                o.channel_header.tx_id
            ),
        ));
    }
    let signer = SignerInfo::from(verified.creator());
    if !channel.writers_ok(&[signer]) {
        return Err(resp(
            FabStatus::Forbidden,
            format!(
                "creator {} ({}) does not satisfy the channel's Writers policy",
                verified.creator().cert.common_name,
                verified.creator().msp_id
            ),
        ));
    }
    if kind == Kind::Config {
        let checked = ConfigUpdate::from_json(&o.data)
            .and_then(|u| verify_update(channel, &u, qcss_network::msp::unix_now()));
        if let Err(e) = checked {
            return Err(resp(e.status(), e.to_string()));
        }
    }
    Ok(Checked {
        tx_id: verified.tx_id().to_string(),
        kind,
    })
}

async fn process_inner(shared: &Arc<Shared>, env: Envelope) -> BroadcastResponse {
    let channel = shared.channel();
    let checked = match check(&channel, &env) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if shared.chain.has_tx(&checked.tx_id) {
        return resp(
            FabStatus::BadRequest,
            format!("duplicate tx id {}: already ordered", checked.tx_id),
        );
    }
    let leader = shared.raft.metrics().borrow().current_leader;
    match leader {
        Some(l) if l == shared.node_id => match shared.leading() {
            Ok(()) => order_here(shared, env, checked.kind, channel.config().sequence).await,
            Err(why) => resp(
                FabStatus::ServiceUnavailable,
                format!("not ordered, retry: {why}"),
            ),
        },
        Some(l) => forward(shared, l, env).await,
        None => resp(
            FabStatus::ServiceUnavailable,
            "no Raft leader at the moment; retry",
        ),
    }
}

async fn order_here(
    shared: &Arc<Shared>,
    env: Envelope,
    kind: Kind,
    config_seq: u64,
) -> BroadcastResponse {
    let (tx, rx) = oneshot::channel();
    let p = Pending {
        envelope: env.encode_to_vec(),
        kind,
        config_seq,
        reply: tx,
    };
    if shared.cutter.send(p).await.is_err() {
        return resp(FabStatus::ServiceUnavailable, "orderer is shutting down");
    }
    match rx.await {
        Ok(Ok(block)) => resp(FabStatus::Success, format!("ordered in block {block}")),
        Ok(Err(CutError::Refused(status, why))) => resp(status, why),
        Ok(Err(CutError::Unavailable(why))) => resp(
            FabStatus::ServiceUnavailable,
            format!("not ordered, retry: {why}"),
        ),
        Err(_) => resp(
            FabStatus::ServiceUnavailable,
            "not ordered, retry: cutter stopped",
        ),
    }
}

/// Longest a forwarded envelope waits for the leader's answer. Normally the
/// answer, or the end of the stream when the leader changes or dies, comes
/// much sooner; this bounds the wait on a connection that silently hangs.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a forwarding stream checks that its target still leads.
const FORWARD_POLL: Duration = Duration::from_millis(200);

/// Envelopes one forwarding stream has outstanding at the leader, at most.
const FORWARD_WINDOW: usize = 4096;

type Forwarded = (Envelope, oneshot::Sender<BroadcastResponse>);

/// A Broadcast stream to the leader, shared by all envelopes this follower
/// forwards. Its task ends (and `tx` closes) when the stream fails or the
/// leader changes; every envelope still waiting is then answered
/// SERVICE_UNAVAILABLE, exactly once.
pub struct Forwarder {
    leader: u64,
    tx: mpsc::Sender<Forwarded>,
}

async fn forward(shared: &Arc<Shared>, leader: u64, env: Envelope) -> BroadcastResponse {
    shared.metrics.forwarded.inc();
    let unavailable = |why: String| resp(FabStatus::ServiceUnavailable, why);
    let tx = {
        let mut slot = shared.forwarder.lock().await;
        let reuse = slot
            .as_ref()
            .filter(|f| f.leader == leader && !f.tx.is_closed())
            .map(|f| f.tx.clone());
        match reuse {
            Some(tx) => tx,
            None => match start_forwarder(shared, leader).await {
                Ok(f) => {
                    let tx = f.tx.clone();
                    *slot = Some(f);
                    tx
                }
                Err(e) => return unavailable(format!("cannot reach leader {leader}: {e}; retry")),
            },
        }
    };
    let (rtx, rrx) = oneshot::channel();
    if tx.send((env, rtx)).await.is_err() {
        return unavailable(format!("lost the stream to leader {leader}; retry"));
    }
    match tokio::time::timeout(FORWARD_TIMEOUT, rrx).await {
        // Tell the client where the leader is: the QCSS Gateway submits
        // there next, saving this hop and this node's signature check.
        Ok(Ok(mut r)) if r.status == FabStatus::Success as i32 => {
            if let Some(addr) = consenter_address(shared, leader) {
                r.info.push_str(&envelope::forwarded_note(leader, &addr));
            }
            r
        }
        Ok(Ok(r)) => r,
        Ok(Err(_)) => unavailable(format!("lost the stream to leader {leader}; retry")),
        Err(_) => unavailable(format!(
            "leader {leader} did not answer within {FORWARD_TIMEOUT:?}; retry"
        )),
    }
}

/// The address of consenter `id` in the current channel configuration.
fn consenter_address(shared: &Shared, id: u64) -> Option<String> {
    shared
        .channel()
        .config()
        .consenters
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.address.clone())
}

/// Largest BroadcastResponse a forwarder decodes from the leader.
const FORWARD_RESPONSE_LIMIT: usize = 1024 * 1024;

async fn start_forwarder(shared: &Arc<Shared>, leader: u64) -> Result<Forwarder, String> {
    let addr = consenter_address(shared, leader)
        .ok_or_else(|| format!("leader {leader} is not a consenter"))?;
    let ch = shared.connect(&addr).await?;
    // The leader answers BroadcastResponses (a status and a trimmed reason).
    let mut client = AtomicBroadcastClient::new(ch)
        .max_decoding_message_size(FORWARD_RESPONSE_LIMIT)
        .max_encoding_message_size(usize::MAX);
    let (etx, erx) = mpsc::channel::<Envelope>(FORWARD_WINDOW);
    let responses = client
        .broadcast(ReceiverStream::new(erx))
        .await
        .map_err(|e| e.message().to_string())?
        .into_inner();
    let (ftx, frx) = mpsc::channel::<Forwarded>(1024);
    tokio::spawn(run_forwarder(shared.clone(), leader, frx, etx, responses));
    Ok(Forwarder { leader, tx: ftx })
}

/// Moves envelopes onto the stream to `leader` and its answers back, in
/// order, until the stream ends, the leader changes, or nothing is left to
/// do; then answers everything still waiting with "retry".
async fn run_forwarder(
    shared: Arc<Shared>,
    leader: u64,
    mut frx: mpsc::Receiver<Forwarded>,
    etx: mpsc::Sender<Envelope>,
    mut responses: Streaming<BroadcastResponse>,
) {
    let mut waiting: VecDeque<oneshot::Sender<BroadcastResponse>> = VecDeque::new();
    let mut poll = tokio::time::interval(FORWARD_POLL);
    let mut input_open = true;
    let why = loop {
        tokio::select! {
            f = frx.recv(), if input_open && waiting.len() < FORWARD_WINDOW => match f {
                Some((env, reply)) => {
                    // The stream answers in order: queue the reply first.
                    waiting.push_back(reply);
                    // Never blocks: at most FORWARD_WINDOW are outstanding.
                    if etx.try_send(env).is_err() {
                        break "the stream to the leader closed".to_string();
                    }
                }
                None if waiting.is_empty() => break String::new(),
                None => input_open = false,
            },
            r = responses.next() => match r {
                Some(Ok(r)) => {
                    if let Some(reply) = waiting.pop_front() {
                        let _ = reply.send(r);
                    }
                    if !input_open && waiting.is_empty() {
                        break String::new();
                    }
                }
                Some(Err(e)) => break format!("the stream to the leader failed: {}", e.message()),
                None => break "the leader ended the stream".to_string(),
            },
            _ = poll.tick() => {
                let now = shared.raft.metrics().borrow().current_leader;
                if now != Some(leader) {
                    break format!("leadership moved from {leader} to {now:?}");
                }
            }
        }
    };
    if !why.is_empty() {
        tracing::info!(leader, reason = %why, waiting = waiting.len(), "forwarding stream closed");
    }
    // Nothing more enters; everything not answered gets an honest "retry":
    // it may or may not have been ordered, but it was never acknowledged.
    frx.close();
    while let Ok((_, reply)) = frx.try_recv() {
        waiting.push_back(reply);
    }
    for reply in waiting {
        let _ = reply.send(resp(
            FabStatus::ServiceUnavailable,
            format!("not acknowledged by leader {leader} ({why}); retry"),
        ));
    }
}

type BroadcastStream = Pin<Box<dyn Stream<Item = Result<BroadcastResponse, Status>> + Send>>;
type DeliverStream = Pin<Box<dyn Stream<Item = Result<DeliverResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AtomicBroadcast for BroadcastService {
    type BroadcastStream = BroadcastStream;
    type DeliverStream = DeliverStream;

    async fn broadcast(
        &self,
        req: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        let mut input = req.into_inner();
        let shared = self.shared.clone();
        // Envelopes are processed concurrently but answered in order: the
        // order of receivers in `order_q` is the order of envelopes.
        // A message that does not decode ends the stream with its status
        // (INVALID_ARGUMENT), after the answers to the envelopes before it.
        let (order_q, mut order_rx) =
            mpsc::channel::<oneshot::Receiver<Result<BroadcastResponse, Status>>>(4096);
        let (out_tx, out_rx) = mpsc::channel(4096);
        tokio::spawn(async move {
            while let Some(item) = input.next().await {
                let (tx, rx) = oneshot::channel();
                let env = match item {
                    Ok(e) => e,
                    Err(status) => {
                        tracing::debug!(error = %status, "broadcast stream ended with an error");
                        if qcss_proto::codec::is_bad_message(&status) {
                            let _ = tx.send(Err(status));
                            let _ = order_q.send(rx).await;
                        }
                        break;
                    }
                };
                if order_q.send(rx).await.is_err() {
                    break;
                }
                let s = shared.clone();
                tokio::spawn(async move {
                    let _ = tx.send(Ok(process(&s, env).await));
                });
            }
        });
        tokio::spawn(async move {
            while let Some(rx) = order_rx.recv().await {
                let r = rx.await.unwrap_or_else(|_| {
                    Ok(resp(
                        FabStatus::InternalServerError,
                        "envelope processing failed",
                    ))
                });
                let last = r.is_err();
                if out_tx.send(r).await.is_err() || last {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn deliver(
        &self,
        req: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        // Bound requests (`tls_cert_hash`) must come over their certificate's connection.
        let tls = qcss_network::tls::peer_certificate(&req).map(|c| c.id);
        let input = req.into_inner();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(crate::deliver::serve(self.shared.clone(), input, tls, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
