//! Fabric's `Deliver` on the orderer: a signed seek-info envelope from a
//! reader that satisfies the channel's Readers policy (and, if it names one,
//! over the TLS connection of the certificate it is bound to) selects a
//! range of blocks; they are streamed as they exist and, for an open range,
//! as they are committed. The admission and the loop are
//! `qcss_network::deliver`'s, shared with the peer.

use std::sync::Arc;

use qcss_network::deliver::{self, BlockSource, Followed, ReadError};
use qcss_proto::common::{Block, Envelope, Status as FabStatus};
use qcss_proto::orderer::DeliverResponse;
use qcss_proto::orderer::deliver_response::Type as DType;
use tokio::sync::{mpsc, watch};
use tonic::{Status, Streaming};

use crate::chain::Chain;
use crate::node::Shared;

fn status(s: FabStatus) -> Result<DeliverResponse, Status> {
    Ok(DeliverResponse {
        r#type: Some(DType::Status(s as i32)),
    })
}

impl BlockSource for Chain {
    fn height(&self) -> u64 {
        Chain::height(self)
    }
    fn watch_height(&self) -> watch::Receiver<u64> {
        Chain::watch_height(self)
    }
    fn block(&self, n: u64) -> Result<Block, ReadError> {
        match Chain::block(self, n) {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(ReadError::Internal("missing below the height".into())),
            Err(e) => Err(ReadError::Internal(e.to_string())),
        }
    }
}

/// Serves one Deliver stream: each seek envelope in turn. `tls` is the
/// SHA-256 of the caller's TLS certificate.
pub async fn serve(
    shared: Arc<Shared>,
    mut input: Streaming<Envelope>,
    tls: Option<[u8; 32]>,
    tx: mpsc::Sender<Result<DeliverResponse, Status>>,
) {
    while let Some(env) = qcss_proto::codec::next_message(&mut input, &tx).await {
        if !seek(&shared, &env, tls, &tx).await {
            break;
        }
    }
}

/// Handles one seek; returns false when the stream is over.
async fn seek(
    shared: &Arc<Shared>,
    env: &Envelope,
    tls: Option<[u8; 32]>,
    tx: &mpsc::Sender<Result<DeliverResponse, Status>>,
) -> bool {
    let info = match deliver::admit(env, &shared.channel(), tls) {
        Ok(i) => i,
        Err(s) => return tx.send(status(s)).await.is_ok(),
    };
    let Some(range) = deliver::range(&info, shared.chain.height()) else {
        return tx.send(status(FabStatus::BadRequest)).await.is_ok();
    };
    let end = deliver::follow(&*shared.chain, range, tx, |_, block| {
        Some(DeliverResponse {
            r#type: Some(DType::Block(block)),
        })
    })
    .await;
    match end {
        Followed::Done => tx.send(status(FabStatus::Success)).await.is_ok(),
        Followed::NotReady => tx.send(status(FabStatus::NotFound)).await.is_ok(),
        Followed::Gone | Followed::ReadFailed => false,
    }
}
