//! The block cutter, run on every node but fed only while it leads: it
//! gathers validated envelopes and proposes them to Raft as one batch when
//! MaxMessageCount or PreferredMaxBytes is reached or BatchTimeout expires.
//! Each envelope's sender is answered only after its batch is committed by
//! Raft and applied — an acknowledged envelope is never lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::node::Shared;
use crate::raft::types::Batch;

/// Why an envelope was not ordered after it was accepted for cutting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CutError {
    /// Raft could not commit it (leadership lost, shutting down); retry.
    Unavailable(String),
    /// Applying refused it deterministically (e.g. duplicate tx id).
    Rejected(String),
}

/// An envelope waiting for its batch.
#[derive(Debug)]
pub struct Pending {
    /// Serialized envelope.
    pub envelope: Vec<u8>,
    /// Where to send the outcome: the block number, or why not.
    pub reply: oneshot::Sender<Result<u64, CutError>>,
}

/// Batches proposed but not yet committed, at most.
const IN_FLIGHT: usize = 16;

/// Runs the cutter until the sender side is dropped.
pub async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Pending>) {
    let inflight = Arc::new(Semaphore::new(IN_FLIGHT));
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

async fn cut(shared: &Arc<Shared>, inflight: &Arc<Semaphore>, batch: Vec<Pending>) {
    if batch.is_empty() {
        return;
    }
    // Bound the batches in flight; waiting here applies back-pressure to senders.
    let Ok(permit) = inflight.clone().acquire_owned().await else {
        return;
    };
    let raft = shared.raft.clone();
    shared.metrics.batches_cut.inc();
    tokio::spawn(async move {
        let (envelopes, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.envelope, p.reply)).unzip();
        let envelopes = envelopes
            .into_iter()
            .map(serde_bytes::ByteBuf::from)
            .collect();
        let result = raft.client_write(Batch { envelopes }).await;
        drop(permit);
        match result {
            Ok(resp) => {
                let outcome = resp.data;
                for (i, reply) in replies.into_iter().enumerate() {
                    let rejected = outcome.rejected.iter().find(|(j, _)| *j as usize == i);
                    let r = match (rejected, outcome.block) {
                        (Some((_, why)), _) => Err(CutError::Rejected(why.clone())),
                        (None, Some(b)) => Ok(b),
                        (None, None) => Err(CutError::Rejected("no block was cut".into())),
                    };
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::info!(error = %msg, "batch not committed");
                for reply in replies {
                    let _ = reply.send(Err(CutError::Unavailable(msg.clone())));
                }
            }
        }
    });
}
