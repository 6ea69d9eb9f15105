//! Forwarding envelopes from a follower to the Raft leader, checked once.
//!
//! A client may broadcast to any orderer. A follower runs every one of
//! Broadcast's checks ([`crate::broadcast::check`]) and then forwards the
//! envelope's bytes on one `Forward.Envelopes` stream to the leader, which
//! orders them **without checking them again**: the stream is a consenter's
//! (admitted by its TLS certificate, like Raft traffic), and a Raft
//! cluster already trusts its consenters with far more than this — any of
//! them may lead and append whatever it likes. Before this, a forwarded
//! envelope's signature was checked by the follower and again by the leader,
//! and the leader, which also does Raft's work, was the cluster's bottleneck.
//!
//! What the leader still checks, because it depends on its own state: the
//! size, a tx id already ordered, that it leads with a quorum, and — through
//! the cutter — an envelope checked under another configuration sequence
//! than the one in force is checked again in full. Config updates are rare
//! and change who may do what, so the leader checks those itself.
//!
//! Every envelope is answered exactly once. When the stream to the leader
//! fails or the leader changes, everything still waiting is answered
//! SERVICE_UNAVAILABLE ("not acknowledged, retry"): it may or may not have
//! been ordered, and a retry of one that was is refused as a duplicate tx id.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use qcss_network::envelope;
use qcss_proto::common::{Envelope, Status as FabStatus};
use qcss_proto::orderer::BroadcastResponse;
use qcss_proto::qcss::raft::ForwardedEnvelope;
use qcss_proto::qcss::raft::forward_client::ForwardClient;
use qcss_proto::qcss::raft::forward_server::Forward;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::broadcast::{BroadcastStream, Checked, answer_in_order, check, order_here, resp};
use crate::cutter::Kind;
use crate::node::Shared;

/// Longest a forwarded envelope waits for the leader's answer. Normally the
/// answer, or the end of the stream when the leader changes or dies, comes
/// much sooner; this bounds the wait on a connection that silently hangs.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a forwarding stream checks that its target still leads.
const FORWARD_POLL: Duration = Duration::from_millis(200);

/// Envelopes one forwarding stream has outstanding at the leader, at most.
const FORWARD_WINDOW: usize = 4096;

/// Largest BroadcastResponse a forwarder decodes from the leader.
const FORWARD_RESPONSE_LIMIT: usize = 1024 * 1024;

type Forwarded = (ForwardedEnvelope, oneshot::Sender<BroadcastResponse>);

/// A `Forward` stream to the leader, shared by all envelopes this follower
/// forwards. Its task ends (and `tx` closes) when the stream fails or the
/// leader changes; every envelope still waiting is then answered
/// SERVICE_UNAVAILABLE, exactly once.
pub struct Forwarder {
    leader: u64,
    tx: mpsc::Sender<Forwarded>,
}

/// Forwards `env`, which passed [`check`] as `checked` under configuration
/// sequence `config_seq`, to `leader`, and returns the leader's answer.
pub async fn forward(
    shared: &Arc<Shared>,
    leader: u64,
    env: &Envelope,
    checked: Checked,
    config_seq: u64,
) -> BroadcastResponse {
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
    let item = ForwardedEnvelope {
        envelope: env.encode_to_vec(),
        tx_id: checked.tx_id,
        config_seq,
        config_update: checked.kind == Kind::Config,
    };
    let (rtx, rrx) = oneshot::channel();
    if tx.send((item, rtx)).await.is_err() {
        return unavailable(format!("lost the stream to leader {leader}; retry"));
    }
    match tokio::time::timeout(FORWARD_TIMEOUT, rrx).await {
        // Tell the client where the leader is: the QCSS Gateway submits
        // there next, saving this hop.
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

/// Why this follower should not wait on `leader` now: it has heard no
/// AppendEntries from any leader for longer than the election lease (it is
/// probably cut off; the others may have elected another). Envelopes are
/// then answered SERVICE_UNAVAILABLE at once instead of waiting for the
/// stream to the old leader to time out (about 5 s, found by the nemesis
/// test).
pub fn leader_silent(shared: &Shared, leader: u64) -> Option<String> {
    let quiet = shared.leader_contact.elapsed();
    (quiet > shared.election_lease()).then(|| {
        format!(
            "no word from leader {leader} for {} ms: this node may be cut off",
            quiet.as_millis()
        )
    })
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

async fn start_forwarder(shared: &Arc<Shared>, leader: u64) -> Result<Forwarder, String> {
    let addr = consenter_address(shared, leader)
        .ok_or_else(|| format!("leader {leader} is not a consenter"))?;
    let ch = shared.connect(&addr).await?;
    // The leader answers BroadcastResponses (a status and a trimmed reason).
    let mut client = ForwardClient::new(ch)
        .max_decoding_message_size(FORWARD_RESPONSE_LIMIT)
        .max_encoding_message_size(qcss_network::channel::GRPC_BLOCK_LIMIT);
    let (etx, erx) = mpsc::channel::<ForwardedEnvelope>(FORWARD_WINDOW);
    let responses = client
        .envelopes(ReceiverStream::new(erx))
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
    etx: mpsc::Sender<ForwardedEnvelope>,
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
                if let Some(why) = leader_silent(&shared, leader) {
                    break why;
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

/// The leader's side: orders what followers forward. Mounted behind the
/// Raft service's admission (consenters only), see [`crate::node`].
#[derive(Clone)]
pub struct ForwardService {
    shared: Arc<Shared>,
}

impl ForwardService {
    /// Serves the node's chain.
    pub fn new(shared: Arc<Shared>) -> Self {
        ForwardService { shared }
    }
}

/// Orders one envelope a follower checked; the one answer for it.
pub async fn order_forwarded(shared: &Arc<Shared>, f: ForwardedEnvelope) -> BroadcastResponse {
    shared.metrics.forwarded_in.inc();
    let channel = shared.channel();
    let max = channel.config().batch.absolute_max_bytes as usize;
    if f.envelope.len() > max {
        return resp(
            FabStatus::RequestEntityTooLarge,
            format!(
                "envelope of {} bytes exceeds AbsoluteMaxBytes {max}",
                f.envelope.len()
            ),
        );
    }
    let (kind, tx_id, config_seq) = if f.config_update {
        let env = match Envelope::decode(f.envelope.as_slice()) {
            Ok(e) => e,
            Err(e) => return resp(FabStatus::BadRequest, format!("malformed envelope: {e}")),
        };
        match check(&channel, &env) {
            Ok(c) => (c.kind, c.tx_id, channel.config().sequence),
            Err(r) => return r,
        }
    } else {
        (Kind::Normal, f.tx_id, f.config_seq)
    };
    if shared.chain.has_tx(&tx_id) {
        return resp(
            FabStatus::BadRequest,
            format!("duplicate tx id {tx_id}: already ordered"),
        );
    }
    // Never forwarded on: a leader that stopped leading says so, and the
    // follower's client retries (no loops between two confused nodes).
    let leader = shared.raft.metrics().borrow().current_leader;
    if leader != Some(shared.node_id) {
        return resp(
            FabStatus::ServiceUnavailable,
            format!(
                "not ordered, retry: node {} does not lead (leader {leader:?})",
                shared.node_id
            ),
        );
    }
    if let Err(why) = shared.leading() {
        return resp(
            FabStatus::ServiceUnavailable,
            format!("not ordered, retry: {why}"),
        );
    }
    order_here(shared, f.envelope, kind, config_seq).await
}

#[tonic::async_trait]
impl Forward for ForwardService {
    type EnvelopesStream = BroadcastStream;

    async fn envelopes(
        &self,
        req: Request<Streaming<ForwardedEnvelope>>,
    ) -> Result<Response<Self::EnvelopesStream>, Status> {
        let shared = self.shared.clone();
        Ok(Response::new(answer_in_order(req.into_inner(), move |f| {
            let s = shared.clone();
            async move { order_forwarded(&s, f).await }
        })))
    }
}
