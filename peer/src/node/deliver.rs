//! Fabric's peer `Deliver` service: committed blocks (with their validation
//! codes in `metadata[TRANSACTIONS_FILTER]`) or filtered blocks (tx ids,
//! codes, events without payloads), from a seek position, blocking for new
//! ones. The reader must satisfy the channel's Readers policy.

use std::pin::Pin;
use std::sync::Arc;

use prost::Message;
use qcss_network::envelope;
use qcss_network::policy::SignerInfo;
use qcss_proto::common::{Envelope, HeaderType, Status as FabStatus};
use qcss_proto::orderer::seek_info::SeekBehavior;
use qcss_proto::orderer::seek_position::Type as Pos;
use qcss_proto::orderer::{SeekInfo, SeekPosition};
use qcss_proto::protos::deliver_response::Type as DType;
use qcss_proto::protos::deliver_server::Deliver;
use qcss_proto::protos::{BlockAndPrivateData, DeliverResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::ledger::LedgerError;
use crate::node::{Peer, filtered_block};

/// Which kind of blocks a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Full,
    Filtered,
    WithPrivateData,
}

pub(crate) struct DeliverService {
    peer: Arc<Peer>,
}

impl DeliverService {
    pub(crate) fn new(peer: Arc<Peer>) -> Self {
        DeliverService { peer }
    }

    fn start(&self, request: Request<Streaming<Envelope>>, kind: Kind) -> Stream {
        // SHA-256 of the caller's TLS certificate: a seek request that names
        // one (Fabric's `tls_cert_hash` binding) must come over that TLS
        // connection, so a captured request cannot be replayed elsewhere.
        let tls = qcss_network::tls::peer_certificate(&request).map(|c| c.id);
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(serve(
            self.peer.clone(),
            request.into_inner(),
            tls,
            tx,
            kind,
        ));
        Box::pin(ReceiverStream::new(rx))
    }
}

type Stream = Pin<Box<dyn tokio_stream::Stream<Item = Result<DeliverResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Deliver for DeliverService {
    type DeliverStream = Stream;
    type DeliverFilteredStream = Stream;
    type DeliverWithPrivateDataStream = Stream;

    async fn deliver(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Stream>, Status> {
        Ok(Response::new(self.start(request, Kind::Full)))
    }

    async fn deliver_filtered(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Stream>, Status> {
        Ok(Response::new(self.start(request, Kind::Filtered)))
    }

    async fn deliver_with_private_data(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Stream>, Status> {
        Ok(Response::new(self.start(request, Kind::WithPrivateData)))
    }
}

fn status(s: FabStatus) -> Result<DeliverResponse, Status> {
    Ok(DeliverResponse {
        r#type: Some(DType::Status(s as i32)),
    })
}

async fn serve(
    peer: Arc<Peer>,
    mut input: Streaming<Envelope>,
    tls: Option<[u8; 32]>,
    tx: mpsc::Sender<Result<DeliverResponse, Status>>,
    kind: Kind,
) {
    while let Some(env) = qcss_proto::codec::next_message(&mut input, &tx).await {
        if !seek(&peer, env, tls, &tx, kind).await {
            break;
        }
    }
}

/// Resolves a seek position against the current height.
fn position(p: Option<&SeekPosition>, height: u64, default: u64) -> u64 {
    match p.and_then(|p| p.r#type.as_ref()) {
        Some(Pos::Oldest(_)) => 0,
        Some(Pos::Newest(_)) => height.saturating_sub(1),
        Some(Pos::Specified(s)) => s.number,
        Some(Pos::NextCommit(_)) => height,
        None => default,
    }
}

/// Handles one seek; returns false when the client went away.
async fn seek(
    peer: &Arc<Peer>,
    env: Envelope,
    tls: Option<[u8; 32]>,
    tx: &mpsc::Sender<Result<DeliverResponse, Status>>,
    kind: Kind,
) -> bool {
    let channel = peer.channel();
    let verified = match envelope::open(&env, channel.id(), |id| channel.msp(id)) {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(error = %e, "deliver request refused");
            return tx.send(status(FabStatus::Forbidden)).await.is_ok();
        }
    };
    let bound = &verified.opened().channel_header.tls_cert_hash;
    if !bound.is_empty() && tls.is_none_or(|h| h.as_slice() != bound.as_slice()) {
        tracing::info!("deliver request bound to another TLS certificate refused");
        return tx.send(status(FabStatus::Forbidden)).await.is_ok();
    }
    if verified.header_type() != HeaderType::DeliverSeekInfo as i32 {
        return tx.send(status(FabStatus::BadRequest)).await.is_ok();
    }
    if !channel.readers_ok(&[SignerInfo::from(verified.creator())]) {
        return tx.send(status(FabStatus::Forbidden)).await.is_ok();
    }
    let Ok(info) = SeekInfo::decode(verified.opened().data.as_slice()) else {
        return tx.send(status(FabStatus::BadRequest)).await.is_ok();
    };
    let mut height_rx = peer.height.subscribe();
    let height = peer.height();
    let start = position(info.start.as_ref(), height, 0);
    let stop = position(info.stop.as_ref(), height, u64::MAX);
    if start > stop {
        return tx.send(status(FabStatus::BadRequest)).await.is_ok();
    }
    let fail_if_not_ready = info.behavior == SeekBehavior::FailIfNotReady as i32;
    let mut n = start;
    while n <= stop {
        while peer.height() <= n {
            if fail_if_not_ready {
                return tx.send(status(FabStatus::NotFound)).await.is_ok();
            }
            tokio::select! {
                r = height_rx.changed() => if r.is_err() { return false },
                _ = tx.closed() => return false,
            }
        }
        let block = match peer.ledger.block(n) {
            Ok(Some(b)) => b,
            Err(e @ (LedgerError::CorruptBlock { .. } | LedgerError::Unavailable { .. })) => {
                // Never the damaged bytes; say which block and why.
                let _ = tx
                    .send(Err(Status::unavailable(format!(
                        "{e}; the peer is repairing it, try again or ask another peer"
                    ))))
                    .await;
                return false;
            }
            _ => {
                return tx
                    .send(status(FabStatus::InternalServerError))
                    .await
                    .is_ok();
            }
        };
        let item = match kind {
            Kind::Full => DType::Block(block),
            Kind::Filtered => DType::FilteredBlock(filtered_block(&block, channel.id())),
            // QCSS has no private data collections: the map is always empty.
            Kind::WithPrivateData => DType::BlockAndPrivateData(BlockAndPrivateData {
                block: Some(block),
                private_data_map: Default::default(),
            }),
        };
        if tx
            .send(Ok(DeliverResponse { r#type: Some(item) }))
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
