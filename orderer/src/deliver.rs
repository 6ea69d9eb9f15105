//! Fabric's `Deliver` on the orderer: a signed seek-info envelope from a
//! reader that satisfies the channel's Readers policy selects a range of
//! blocks; they are streamed as they exist and, for an open range, as they
//! are committed.

use std::sync::Arc;

use prost::Message;
use qcss_network::envelope;
use qcss_network::policy::SignerInfo;
use qcss_proto::common::{Block, Envelope, HeaderType, Status as FabStatus};
use qcss_proto::orderer::deliver_response::Type as DType;
use qcss_proto::orderer::seek_info::SeekBehavior;
use qcss_proto::orderer::seek_position::Type as Pos;
use qcss_proto::orderer::{DeliverResponse, SeekInfo, SeekPosition};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use crate::node::Shared;

fn status(s: FabStatus) -> Result<DeliverResponse, Status> {
    Ok(DeliverResponse {
        r#type: Some(DType::Status(s as i32)),
    })
}

/// Serves one Deliver stream: each seek envelope in turn.
pub async fn serve(
    shared: Arc<Shared>,
    mut input: Streaming<Envelope>,
    tx: mpsc::Sender<Result<DeliverResponse, Status>>,
) {
    while let Some(env) = qcss_proto::codec::next_message(&mut input, &tx).await {
        if !seek(&shared, env, &tx).await {
            break;
        }
    }
}

/// Resolves a seek position against the current height.
fn position(p: &Option<SeekPosition>, height: u64, default: u64) -> u64 {
    match p.as_ref().and_then(|p| p.r#type.as_ref()) {
        Some(Pos::Oldest(_)) => 0,
        Some(Pos::Newest(_)) => height.saturating_sub(1),
        Some(Pos::Specified(s)) => s.number,
        Some(Pos::NextCommit(_)) => height,
        None => default,
    }
}

/// Handles one seek; returns false when the client went away.
async fn seek(
    shared: &Arc<Shared>,
    env: Envelope,
    tx: &mpsc::Sender<Result<DeliverResponse, Status>>,
) -> bool {
    let channel = shared.channel();
    let verified = match envelope::open(&env, channel.id(), |id| channel.msp(id)) {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(error = %e, "deliver request refused");
            return tx.send(status(FabStatus::Forbidden)).await.is_ok();
        }
    };
    if verified.header_type() != HeaderType::DeliverSeekInfo as i32 {
        return tx.send(status(FabStatus::BadRequest)).await.is_ok();
    }
    if !channel.readers_ok(&[SignerInfo::from(verified.creator())]) {
        return tx.send(status(FabStatus::Forbidden)).await.is_ok();
    }
    let Ok(info) = SeekInfo::decode(verified.opened().data.as_slice()) else {
        return tx.send(status(FabStatus::BadRequest)).await.is_ok();
    };
    let mut height_rx = shared.chain.watch_height();
    let height = shared.chain.height();
    let start = position(&info.start, height, 0);
    let stop = position(&info.stop, height, u64::MAX);
    if start > stop {
        return tx.send(status(FabStatus::BadRequest)).await.is_ok();
    }
    let fail_if_not_ready = info.behavior == SeekBehavior::FailIfNotReady as i32;
    let mut n = start;
    while n <= stop {
        while shared.chain.height() <= n {
            if fail_if_not_ready {
                return tx.send(status(FabStatus::NotFound)).await.is_ok();
            }
            tokio::select! {
                r = height_rx.changed() => if r.is_err() { return false },
                _ = tx.closed() => return false,
            }
        }
        let block = match shared.chain.block_bytes(n) {
            Ok(Some(b)) => b,
            _ => {
                return tx
                    .send(status(FabStatus::InternalServerError))
                    .await
                    .is_ok();
            }
        };
        let Ok(block) = Block::decode(block.as_slice()) else {
            return tx
                .send(status(FabStatus::InternalServerError))
                .await
                .is_ok();
        };
        if tx
            .send(Ok(DeliverResponse {
                r#type: Some(DType::Block(block)),
            }))
            .await
            .is_err()
        {
            return false;
        }
        if n == u64::MAX {
            break;
        }
        n += 1;
    }
    tx.send(status(FabStatus::Success)).await.is_ok()
}
