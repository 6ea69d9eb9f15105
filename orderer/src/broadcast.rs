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

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use prost::Message;
use qcss_network::channel::Channel;
use qcss_network::envelope::{self, EnvelopeError, compute_tx_id};
use qcss_network::policy::SignerInfo;
use qcss_proto::common::{Envelope, HeaderType, Status as FabStatus};
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

pub(crate) fn resp(status: FabStatus, info: impl Into<String>) -> BroadcastResponse {
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
    let seq = channel.config().sequence;
    match leader {
        Some(l) if l == shared.node_id => match shared.leading() {
            Ok(()) => order_here(shared, env.encode_to_vec(), checked.kind, seq).await,
            Err(why) => resp(
                FabStatus::ServiceUnavailable,
                format!("not ordered, retry: {why}"),
            ),
        },
        Some(l) => match crate::forward::leader_silent(shared, l) {
            // Cut off from the leader: answer now rather than hold the
            // envelope until the stream to it times out.
            Some(why) => resp(FabStatus::ServiceUnavailable, format!("{why}; retry")),
            None => crate::forward::forward(shared, l, &env, checked, seq).await,
        },
        None => resp(
            FabStatus::ServiceUnavailable,
            "no Raft leader at the moment; retry",
        ),
    }
}

/// Hands a checked envelope's bytes to the cutter (this node leads) and
/// waits for its batch.
pub(crate) async fn order_here(
    shared: &Arc<Shared>,
    envelope: Vec<u8>,
    kind: Kind,
    config_seq: u64,
) -> BroadcastResponse {
    let (tx, rx) = oneshot::channel();
    let p = Pending {
        envelope,
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

/// A stream of answers, one per envelope, in order.
pub(crate) type BroadcastStream =
    Pin<Box<dyn Stream<Item = Result<BroadcastResponse, Status>> + Send>>;
type DeliverStream = Pin<Box<dyn Stream<Item = Result<DeliverResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AtomicBroadcast for BroadcastService {
    type BroadcastStream = BroadcastStream;
    type DeliverStream = DeliverStream;

    async fn broadcast(
        &self,
        req: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        let shared = self.shared.clone();
        Ok(Response::new(answer_in_order(
            req.into_inner(),
            move |env| {
                let s = shared.clone();
                async move { process(&s, env).await }
            },
        )))
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

/// Runs `process` on each message of `input` concurrently and answers them
/// in order. A message that does not decode ends the stream with its status
/// (INVALID_ARGUMENT), after the answers to the messages before it.
pub(crate) fn answer_in_order<T, F, Fut>(mut input: Streaming<T>, process: F) -> BroadcastStream
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + 'static,
    Fut: Future<Output = BroadcastResponse> + Send + 'static,
{
    // The order of receivers in `order_q` is the order of messages.
    let (order_q, mut order_rx) =
        mpsc::channel::<oneshot::Receiver<Result<BroadcastResponse, Status>>>(4096);
    let (out_tx, out_rx) = mpsc::channel(4096);
    tokio::spawn(async move {
        while let Some(item) = input.next().await {
            let (tx, rx) = oneshot::channel();
            let msg = match item {
                Ok(m) => m,
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
            let work = process(msg);
            tokio::spawn(async move {
                let _ = tx.send(Ok(work.await));
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
    Box::pin(ReceiverStream::new(out_rx))
}
