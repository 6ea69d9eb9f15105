//! Fabric's `AtomicBroadcast` service: `Broadcast` orders envelopes,
//! `Deliver` streams blocks.
//!
//! Broadcast answers one status per envelope, in order. Each envelope is
//! checked (size, decoding, channel, creator's MSP and CRL, signature, tx id,
//! Writers policy, not already ordered) and then handed to the cutter when
//! this node leads, or forwarded to the leader otherwise. SUCCESS is sent
//! only after the envelope's batch is committed and applied.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use prost::Message;
use qcss_network::envelope::{self, EnvelopeError, compute_tx_id};
use qcss_network::policy::SignerInfo;
use qcss_proto::common::{Envelope, HeaderType, Status as FabStatus};
use qcss_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use qcss_proto::orderer::atomic_broadcast_server::AtomicBroadcast;
use qcss_proto::orderer::{BroadcastResponse, DeliverResponse};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::cutter::{CutError, Pending};
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

async fn process_inner(shared: &Arc<Shared>, env: Envelope) -> BroadcastResponse {
    let channel = shared.channel();
    let size = env.encoded_len();
    let max = channel.config().batch.absolute_max_bytes as usize;
    if size > max {
        return resp(
            FabStatus::RequestEntityTooLarge,
            format!("envelope of {size} bytes exceeds AbsoluteMaxBytes {max}"),
        );
    }
    let verified = match envelope::open(&env, channel.id(), |id| channel.msp(id)) {
        Ok(v) => v,
        Err(
            e @ (EnvelopeError::Malformed { .. }
            | EnvelopeError::Missing(_)
            | EnvelopeError::WrongChannel { .. }),
        ) => {
            return resp(FabStatus::BadRequest, e.to_string());
        }
        Err(e) => return resp(FabStatus::Forbidden, e.to_string()),
    };
    let o = verified.opened();
    let ty = o.channel_header.r#type;
    if ty != HeaderType::EndorserTransaction as i32 && ty != HeaderType::Message as i32 {
        return resp(
            FabStatus::BadRequest,
            format!(
                "header type {ty} is not accepted by Broadcast (ENDORSER_TRANSACTION or MESSAGE)"
            ),
        );
    }
    let expected = compute_tx_id(&o.signature_header.nonce, &o.signature_header.creator);
    if o.channel_header.tx_id != expected {
        return resp(
            FabStatus::BadRequest,
            format!(
                "tx id {:?} is not SHA-256(nonce ‖ creator)",
                o.channel_header.tx_id
            ),
        );
    }
    let signer = SignerInfo::from(verified.creator());
    if !channel.writers_ok(&[signer]) {
        return resp(
            FabStatus::Forbidden,
            format!(
                "creator {} ({}) does not satisfy the channel's Writers policy",
                verified.creator().cert.common_name,
                verified.creator().msp_id
            ),
        );
    }
    if shared.chain.has_tx(verified.tx_id()) {
        return resp(
            FabStatus::BadRequest,
            format!("duplicate tx id {}: already ordered", verified.tx_id()),
        );
    }
    let leader = shared.raft.metrics().borrow().current_leader;
    match leader {
        Some(l) if l == shared.node_id => order_here(shared, env).await,
        Some(l) => forward(shared, l, env).await,
        None => resp(
            FabStatus::ServiceUnavailable,
            "no Raft leader at the moment; retry",
        ),
    }
}

async fn order_here(shared: &Arc<Shared>, env: Envelope) -> BroadcastResponse {
    let (tx, rx) = oneshot::channel();
    let p = Pending {
        envelope: env.encode_to_vec(),
        reply: tx,
    };
    if shared.cutter.send(p).await.is_err() {
        return resp(FabStatus::ServiceUnavailable, "orderer is shutting down");
    }
    match rx.await {
        Ok(Ok(block)) => resp(FabStatus::Success, format!("ordered in block {block}")),
        Ok(Err(CutError::Rejected(why))) => resp(FabStatus::BadRequest, why),
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

type Forwarded = (Envelope, oneshot::Sender<BroadcastResponse>);

/// A Broadcast stream to the leader, shared by all envelopes this follower forwards.
pub struct Forwarder {
    leader: u64,
    tx: mpsc::Sender<Forwarded>,
}

async fn forward(shared: &Arc<Shared>, leader: u64, env: Envelope) -> BroadcastResponse {
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
                Err(e) => {
                    return resp(
                        FabStatus::ServiceUnavailable,
                        format!("cannot reach leader {leader}: {e}"),
                    );
                }
            },
        }
    };
    let (rtx, rrx) = oneshot::channel();
    if tx.send((env, rtx)).await.is_err() {
        return resp(
            FabStatus::ServiceUnavailable,
            format!("lost the stream to leader {leader}; retry"),
        );
    }
    rrx.await.unwrap_or_else(|_| {
        resp(
            FabStatus::ServiceUnavailable,
            format!("lost the stream to leader {leader}; retry"),
        )
    })
}

async fn start_forwarder(shared: &Arc<Shared>, leader: u64) -> Result<Forwarder, String> {
    let addr = shared
        .channel()
        .config()
        .consenters
        .iter()
        .find(|c| c.id == leader)
        .map(|c| c.address.clone())
        .ok_or_else(|| format!("leader {leader} is not a consenter"))?;
    let ch = shared.connect(&addr).await?;
    let mut client = AtomicBroadcastClient::new(ch)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let (etx, erx) = mpsc::channel::<Envelope>(1024);
    let waiting: Arc<Mutex<VecDeque<oneshot::Sender<BroadcastResponse>>>> = Arc::default();
    let mut responses = client
        .broadcast(ReceiverStream::new(erx))
        .await
        .map_err(|e| e.message().to_string())?
        .into_inner();
    let (ftx, mut frx) = mpsc::channel::<Forwarded>(1024);
    let w = waiting.clone();
    tokio::spawn(async move {
        while let Some((env, reply)) = frx.recv().await {
            // Queue the reply before sending, so responses match in order.
            w.lock().await.push_back(reply);
            if etx.send(env).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        loop {
            match responses.next().await {
                Some(Ok(r)) => {
                    if let Some(reply) = waiting.lock().await.pop_front() {
                        let _ = reply.send(r);
                    }
                }
                Some(Err(e)) => {
                    tracing::info!(leader, error = %e, "forwarding stream failed");
                    break;
                }
                None => break,
            }
        }
        // Everything still waiting gets an honest "retry": it may or may not
        // have been ordered, but it was never acknowledged.
        for reply in waiting.lock().await.drain(..) {
            let _ = reply.send(resp(
                FabStatus::ServiceUnavailable,
                format!("lost the stream to leader {leader}; retry"),
            ));
        }
    });
    Ok(Forwarder { leader, tx: ftx })
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
        let (order_q, mut order_rx) = mpsc::channel::<oneshot::Receiver<BroadcastResponse>>(4096);
        let (out_tx, out_rx) = mpsc::channel(4096);
        tokio::spawn(async move {
            while let Some(item) = input.next().await {
                let env = match item {
                    Ok(e) => e,
                    Err(status) => {
                        tracing::debug!(error = %status, "broadcast stream ended with an error");
                        break;
                    }
                };
                let (tx, rx) = oneshot::channel();
                if order_q.send(rx).await.is_err() {
                    break;
                }
                let s = shared.clone();
                tokio::spawn(async move {
                    let _ = tx.send(process(&s, env).await);
                });
            }
        });
        tokio::spawn(async move {
            while let Some(rx) = order_rx.recv().await {
                let r = rx.await.unwrap_or_else(|_| {
                    resp(FabStatus::InternalServerError, "envelope processing failed")
                });
                if out_tx.send(Ok(r)).await.is_err() {
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
        let input = req.into_inner();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(crate::deliver::serve(self.shared.clone(), input, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
