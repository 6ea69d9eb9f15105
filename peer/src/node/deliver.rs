//! Fabric's peer `Deliver` service: committed blocks (with their validation
//! codes in `metadata[TRANSACTIONS_FILTER]`) or filtered blocks (tx ids,
//! codes, events without payloads), from a seek position, blocking for new
//! ones. The reader must satisfy the channel's Readers policy. Admission and
//! the loop are `qcss_network::deliver`'s, shared with the orderer and the
//! Gateway's chaincode events.

use std::pin::Pin;
use std::sync::Arc;

use qcss_network::deliver::{self, BlockSource, Followed, ReadError};
use qcss_proto::common::{Block, Envelope, Status as FabStatus};
use qcss_proto::protos::deliver_response::Type as DType;
use qcss_proto::protos::deliver_server::Deliver;
use qcss_proto::protos::{BlockAndPrivateData, DeliverResponse};
use tokio::sync::{mpsc, watch};
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

impl BlockSource for Peer {
    fn height(&self) -> u64 {
        Peer::height(self)
    }
    fn watch_height(&self) -> watch::Receiver<u64> {
        self.height.subscribe()
    }
    fn block(&self, n: u64) -> Result<Block, ReadError> {
        match self.ledger.block(n) {
            Ok(Some(b)) => Ok(b),
            // Never the damaged bytes; say which block and why.
            Err(e @ (LedgerError::CorruptBlock { .. } | LedgerError::Unavailable { .. })) => {
                Err(ReadError::Unavailable(format!(
                    "{e}; the peer is repairing it, try again or ask another peer"
                )))
            }
            Ok(None) => Err(ReadError::Internal("missing below the height".into())),
            Err(e) => Err(ReadError::Internal(e.to_string())),
        }
    }
}

async fn serve(
    peer: Arc<Peer>,
    mut input: Streaming<Envelope>,
    tls: Option<[u8; 32]>,
    tx: mpsc::Sender<Result<DeliverResponse, Status>>,
    kind: Kind,
) {
    while let Some(env) = qcss_proto::codec::next_message(&mut input, &tx).await {
        if !seek(&peer, &env, tls, &tx, kind).await {
            break;
        }
    }
}

/// Handles one seek; returns false when the stream is over.
async fn seek(
    peer: &Arc<Peer>,
    env: &Envelope,
    tls: Option<[u8; 32]>,
    tx: &mpsc::Sender<Result<DeliverResponse, Status>>,
    kind: Kind,
) -> bool {
    let channel = peer.channel();
    let info = match deliver::admit(env, &channel, tls) {
        Ok(i) => i,
        Err(s) => return tx.send(status(s)).await.is_ok(),
    };
    let Some(range) = deliver::range(&info, peer.height()) else {
        return tx.send(status(FabStatus::BadRequest)).await.is_ok();
    };
    let end = deliver::follow(&**peer, range, tx, |_, block| {
        let item = match kind {
            Kind::Full => DType::Block(block),
            Kind::Filtered => DType::FilteredBlock(filtered_block(&block, channel.id())),
            // QCSS has no private data collections: the map is always empty.
            Kind::WithPrivateData => DType::BlockAndPrivateData(BlockAndPrivateData {
                block: Some(block),
                private_data_map: Default::default(),
            }),
        };
        Some(DeliverResponse { r#type: Some(item) })
    })
    .await;
    match end {
        Followed::Done => tx.send(status(FabStatus::Success)).await.is_ok(),
        Followed::NotReady => tx.send(status(FabStatus::NotFound)).await.is_ok(),
        Followed::Gone | Followed::ReadFailed => false,
    }
}
