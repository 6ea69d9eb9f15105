//! A client for the ordering service (Broadcast and Deliver), used by the
//! CLI, the peer and tests. It lives here, not in `qcss-orderer`, so that
//! the peer does not compile openraft and the orderer's store to call it.

use std::time::Duration;

use crate::SigningIdentity;
use crate::block::{config_from_block, last_config_index};
use crate::channel::{ChannelConfig, GRPC_BLOCK_LIMIT};
use crate::envelope;
use prost::Message;
use qcss_proto::common::{Block, Envelope, HeaderType};
use qcss_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use qcss_proto::orderer::deliver_response::Type as DType;
use qcss_proto::orderer::seek_position::Type as Pos;
use qcss_proto::orderer::{
    BroadcastResponse, SeekInfo, SeekNewest, SeekOldest, SeekPosition, SeekSpecified,
};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// A connected orderer client.
#[derive(Debug, Clone)]
pub struct OrdererClient {
    inner: AtomicBroadcastClient<Channel>,
}

/// Where a Deliver range starts or stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    /// Block 0.
    Oldest,
    /// The newest block at the time of the request.
    Newest,
    /// A block number.
    Number(u64),
    /// Never stop (stream new blocks as they commit).
    Forever,
}

fn position(s: Seek) -> SeekPosition {
    let t = match s {
        Seek::Oldest => Pos::Oldest(SeekOldest {}),
        Seek::Newest => Pos::Newest(SeekNewest {}),
        Seek::Number(n) => Pos::Specified(SeekSpecified { number: n }),
        Seek::Forever => Pos::Specified(SeekSpecified { number: u64::MAX }),
    };
    SeekPosition { r#type: Some(t) }
}

/// A signed seek-info envelope for Deliver.
pub fn seek_envelope(
    signer: &SigningIdentity,
    channel_id: &str,
    start: Seek,
    stop: Seek,
    fail_if_not_ready: bool,
) -> Result<Envelope, String> {
    let info = SeekInfo {
        start: Some(position(start)),
        stop: Some(position(stop)),
        behavior: i32::from(fail_if_not_ready),
        ..Default::default()
    };
    envelope::build(
        signer,
        channel_id,
        HeaderType::DeliverSeekInfo,
        info.encode_to_vec(),
    )
    .map(|(e, _)| e)
    .map_err(|e| e.to_string())
}

impl OrdererClient {
    /// Connects over mTLS.
    pub async fn connect(
        addr: &str,
        tls_roots: &[Vec<u8>],
        tls_cert: &[u8],
        tls_key: &[u8],
    ) -> Result<Self, String> {
        let tls = crate::tls::client_tls_for_addr(tls_roots, Some((tls_cert, tls_key)), addr);
        let ch = crate::tls::connect(addr, tls)
            .await
            .map_err(|e| format!("cannot connect to orderer {addr}: {e}"))?;
        // Deliver answers blocks: at most the largest block any channel
        // can cut (a long-lived client may cross a limit-raising config).
        Ok(OrdererClient {
            inner: AtomicBroadcastClient::new(ch)
                .max_decoding_message_size(GRPC_BLOCK_LIMIT)
                .max_encoding_message_size(GRPC_BLOCK_LIMIT),
        })
    }

    /// A client over an already connected gRPC channel (e.g. one a peer
    /// keeps open and shares between its committer and its Gateway).
    pub fn from_channel(ch: Channel) -> Self {
        OrdererClient {
            inner: AtomicBroadcastClient::new(ch)
                .max_decoding_message_size(GRPC_BLOCK_LIMIT)
                .max_encoding_message_size(GRPC_BLOCK_LIMIT),
        }
    }

    /// Sends envelopes on one Broadcast stream; returns one response each, in order.
    pub async fn broadcast(
        &mut self,
        envs: Vec<Envelope>,
    ) -> Result<Vec<BroadcastResponse>, tonic::Status> {
        let n = envs.len();
        let mut stream = self
            .inner
            .broadcast(tokio_stream::iter(envs))
            .await?
            .into_inner();
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match stream.next().await {
                Some(r) => out.push(r?),
                None => break,
            }
        }
        Ok(out)
    }

    /// Sends envelopes on one Broadcast stream and returns the responses
    /// received, in order, and why the stream stopped early if it did (a
    /// transport error, the stream ending, or no response within `wait`):
    /// unlike [`OrdererClient::broadcast`], answers that arrived before a
    /// failure are kept.
    pub async fn broadcast_partial(
        &mut self,
        envs: Vec<Envelope>,
        wait: Duration,
    ) -> (Vec<BroadcastResponse>, Option<String>) {
        let n = envs.len();
        let mut stream = match self.inner.broadcast(tokio_stream::iter(envs)).await {
            Ok(s) => s.into_inner(),
            Err(e) => return (Vec::new(), Some(format!("broadcast refused: {e}"))),
        };
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match tokio::time::timeout(wait, stream.next()).await {
                Ok(Some(Ok(r))) => out.push(r),
                Ok(Some(Err(e))) => return (out, Some(format!("stream failed: {e}"))),
                Ok(None) => return (out, Some("stream ended early".into())),
                Err(_) => return (out, Some(format!("no response within {wait:?}"))),
            }
        }
        (out, None)
    }

    /// The blocks from `start` to `stop` (which must exist), collected.
    pub async fn blocks(
        &mut self,
        signer: &SigningIdentity,
        channel_id: &str,
        start: Seek,
        stop: Seek,
    ) -> Result<Vec<Block>, String> {
        let stream = self.deliver(signer, channel_id, start, stop).await?;
        tokio::pin!(stream);
        let mut out = Vec::new();
        while let Some(b) = stream.next().await {
            out.push(b?);
        }
        Ok(out)
    }

    /// The configuration in force: the newest block's LAST_CONFIG names the
    /// config block, which is fetched and read. Returns its number too.
    pub async fn current_config(
        &mut self,
        signer: &SigningIdentity,
        channel_id: &str,
    ) -> Result<(u64, ChannelConfig), String> {
        let newest = self
            .blocks(signer, channel_id, Seek::Newest, Seek::Newest)
            .await?;
        let newest = newest
            .first()
            .ok_or("the orderer returned no newest block")?;
        let n = last_config_index(newest).map_err(|e| e.to_string())?;
        let block = self
            .blocks(signer, channel_id, Seek::Number(n), Seek::Number(n))
            .await?;
        let block = block
            .first()
            .ok_or_else(|| format!("config block {n} not returned"))?;
        Ok((n, config_from_block(block).map_err(|e| e.to_string())?))
    }

    /// Opens a Broadcast stream fed by `envs`; responses come back in order.
    pub async fn broadcast_stream(
        &mut self,
        envs: impl tokio_stream::Stream<Item = Envelope> + Send + 'static,
    ) -> Result<tonic::Streaming<BroadcastResponse>, tonic::Status> {
        Ok(self.inner.broadcast(envs).await?.into_inner())
    }

    /// Streams blocks from `start` to `stop` (inclusive).
    pub async fn deliver(
        &mut self,
        signer: &SigningIdentity,
        channel_id: &str,
        start: Seek,
        stop: Seek,
    ) -> Result<impl tokio_stream::Stream<Item = Result<Block, String>> + use<>, String> {
        let env = seek_envelope(signer, channel_id, start, stop, false)?;
        let stream = self
            .inner
            .deliver(tokio_stream::iter(vec![env]))
            .await
            .map_err(|e| e.message().to_string())?
            .into_inner();
        Ok(stream.map_while(|r| match r {
            Ok(resp) => match resp.r#type {
                Some(DType::Block(b)) => Some(Ok(b)),
                Some(DType::Status(200)) => None,
                Some(DType::Status(s)) => Some(Err(format!("deliver ended with status {s}"))),
                None => Some(Err("empty deliver response".into())),
            },
            Err(e) => Some(Err(e.message().to_string())),
        }))
    }
}
