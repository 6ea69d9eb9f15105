//! The block cutter, run on every node but fed only while it leads: it
//! gathers validated envelopes and proposes them to Raft as one batch when
//! MaxMessageCount or PreferredMaxBytes is reached or BatchTimeout expires
//! (read from the live channel, so a config block changes them at once).
//! Each envelope's sender is answered exactly once, only after its batch is
//! committed by Raft and applied — an acknowledged envelope is never lost —
//! or with "unavailable, retry" when this node stops leading (or loses its
//! quorum) before that: the envelope may or may not end up ordered, and a
//! retry of one that was is refused as a duplicate tx id.
//!
//! A config update is cut alone: everything gathered before it is proposed
//! first, the cutter waits until every batch in flight and then the config
//! batch are committed, and envelopes validated against an older
//! configuration are checked again before they are proposed (Fabric's
//! re-validation on a config sequence change).

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use qcss_proto::common::{Envelope, Status};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::node::Shared;
use crate::raft::types::{Batch, BatchOutcome};

/// Why an envelope was not ordered after it was accepted for cutting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CutError {
    /// Raft could not commit it (leadership lost, shutting down); retry.
    Unavailable(String),
    /// Refused deterministically when applied (e.g. duplicate tx id), or on
    /// re-validation after a config change: the Broadcast status and why.
    Refused(Status, String),
}

/// What kind of envelope is waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A transaction or message: batched with others.
    Normal,
    /// A `CONFIG_UPDATE`: cut alone.
    Config,
}

/// An envelope waiting for its batch.
#[derive(Debug)]
pub struct Pending {
    /// Serialized envelope.
    pub envelope: Vec<u8>,
    /// What it is.
    pub kind: Kind,
    /// The configuration sequence it was validated against.
    pub config_seq: u64,
    /// Where to send the outcome: the block number, or why not.
    pub reply: oneshot::Sender<Result<u64, CutError>>,
}

/// Batches proposed but not yet committed, at most.
const IN_FLIGHT: u32 = 16;

/// How often a waiting batch checks that this node still leads.
const LEADERSHIP_POLL: Duration = Duration::from_millis(200);

/// Runs the cutter until the sender side is dropped.
pub async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Pending>) {
    let inflight = Arc::new(Semaphore::new(IN_FLIGHT as usize));
    let mut pending: Vec<Pending> = Vec::new();
    let mut bytes = 0usize;
    let mut deadline: Option<Instant> = None;
    loop {
        let batch_cfg = shared.channel().config().batch.clone();
        let timeout = Duration::from_millis(batch_cfg.batch_timeout_ms);
        let sleep_until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            msg = rx.recv() => {
                let Some(p) = msg else { break };
                if p.kind == Kind::Config {
                    cut(&shared, &inflight, std::mem::take(&mut pending)).await;
                    bytes = 0;
                    deadline = None;
                    cut_config(&shared, &inflight, p).await;
                    continue;
                }
                let len = p.envelope.len();
                if !pending.is_empty() && bytes + len > batch_cfg.preferred_max_bytes as usize {
                    cut(&shared, &inflight, std::mem::take(&mut pending)).await;
                    bytes = 0;
                    deadline = None;
                }
                if pending.is_empty() {
                    deadline = Some(Instant::now() + timeout);
                }
                bytes += len;
                pending.push(p);
                if pending.len() >= batch_cfg.max_message_count as usize
                    || bytes >= batch_cfg.preferred_max_bytes as usize
                {
                    cut(&shared, &inflight, std::mem::take(&mut pending)).await;
                    bytes = 0;
                    deadline = None;
                }
            }
            _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => {
                cut(&shared, &inflight, std::mem::take(&mut pending)).await;
                bytes = 0;
                deadline = None;
            }
        }
    }
}

/// Checks again, against the configuration now in force, the envelopes that
/// were validated against an older one; answers those that fail.
fn revalidate(shared: &Arc<Shared>, batch: Vec<Pending>) -> Vec<Pending> {
    let channel = shared.channel();
    let seq = channel.config().sequence;
    if batch.iter().all(|p| p.config_seq == seq) {
        return batch;
    }
    let mut keep = Vec::with_capacity(batch.len());
    for mut p in batch {
        if p.config_seq == seq {
            keep.push(p);
            continue;
        }
        let checked = Envelope::decode(p.envelope.as_slice())
            .map_err(|e| (Status::BadRequest, format!("malformed envelope: {e}")))
            .and_then(|env| {
                crate::broadcast::check(&channel, &env).map_err(|r| {
                    (
                        Status::try_from(r.status).unwrap_or(Status::BadRequest),
                        format!("refused under channel config {seq}: {}", r.info),
                    )
                })
            });
        match checked {
            Ok(_) => {
                p.config_seq = seq;
                keep.push(p);
            }
            Err((status, why)) => {
                let _ = p.reply.send(Err(CutError::Refused(status, why)));
            }
        }
    }
    keep
}

async fn cut(shared: &Arc<Shared>, inflight: &Arc<Semaphore>, batch: Vec<Pending>) {
    if batch.is_empty() {
        return;
    }
    // Bound the batches in flight; waiting here applies back-pressure to senders.
    let Ok(permit) = inflight.clone().acquire_owned().await else {
        return;
    };
    let batch = revalidate(shared, batch);
    if batch.is_empty() {
        return;
    }
    shared.metrics.batches_cut.inc();
    let shared = shared.clone();
    tokio::spawn(async move {
        let (envelopes, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.envelope, p.reply)).unzip();
        let result = commit(&shared, envelopes).await;
        drop(permit);
        answer(result, replies);
    });
}

/// Proposes a config update alone, once everything before it is committed,
/// and waits for it (nothing else is cut meanwhile).
async fn cut_config(shared: &Arc<Shared>, inflight: &Arc<Semaphore>, p: Pending) {
    let Ok(all) = inflight.acquire_many(IN_FLIGHT).await else {
        return;
    };
    shared.metrics.batches_cut.inc();
    let result = commit(shared, vec![p.envelope]).await;
    drop(all);
    answer(result, vec![p.reply]);
}

/// Proposes a batch and waits until it is applied, or until this node stops
/// leading (its batch may then still be committed by the next leader, or
/// not: the senders are told to retry).
async fn commit(shared: &Arc<Shared>, envelopes: Vec<Vec<u8>>) -> Result<BatchOutcome, String> {
    // The leader's clock, stamped into the entry: every node builds the
    // same block time from it (see `Batch::stamped`).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let batch = Batch::stamped(envelopes, now_ms);
    tokio::select! {
        r = shared.raft.client_write(batch) => r.map(|resp| resp.data).map_err(|e| e.to_string()),
        why = lost_leadership(shared) => Err(why),
    }
}

/// Resolves (with why) once this node no longer leads with a quorum.
async fn lost_leadership(shared: &Arc<Shared>) -> String {
    loop {
        tokio::time::sleep(LEADERSHIP_POLL).await;
        if let Err(why) = shared.leading() {
            return why;
        }
    }
}

/// Sends each envelope's one answer.
fn answer(
    result: Result<BatchOutcome, String>,
    replies: Vec<oneshot::Sender<Result<u64, CutError>>>,
) {
    match result {
        Ok(outcome) => {
            let mut rejected: std::collections::HashMap<u32, (i32, String)> = outcome
                .rejected
                .into_iter()
                .map(|r| (r.index, (r.status, r.reason)))
                .collect();
            for (i, reply) in replies.into_iter().enumerate() {
                let r = match (rejected.remove(&(i as u32)), outcome.block) {
                    (Some((status, why)), _) => Err(CutError::Refused(
                        Status::try_from(status).unwrap_or(Status::BadRequest),
                        why,
                    )),
                    (None, Some(b)) => Ok(b),
                    (None, None) => Err(CutError::Refused(
                        Status::BadRequest,
                        "no block was cut".into(),
                    )),
                };
                let _ = reply.send(r);
            }
        }
        Err(msg) => {
            tracing::info!(error = %msg, "batch not committed");
            for reply in replies {
                let _ = reply.send(Err(CutError::Unavailable(msg.clone())));
            }
        }
    }
}
