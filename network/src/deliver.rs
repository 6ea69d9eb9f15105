//! One seek-and-follow loop for every stream of blocks: the orderer's
//! `Deliver`, the peer's `Deliver`/`DeliverFiltered`/`DeliverWithPrivateData`
//! and the Gateway's `ChaincodeEvents`. Each used to carry its own copy, and
//! the copies drifted (only the peer checked that a request is bound to the
//! caller's TLS certificate). Now [`admit`] decides who may read and
//! [`follow`] streams blocks from any [`BlockSource`]; the services only say
//! how a block becomes their response.

use prost::Message;
use qcss_proto::common::{Block, Envelope, HeaderType, Status as FabStatus};
use qcss_proto::orderer::seek_info::SeekBehavior;
use qcss_proto::orderer::seek_position::Type as Pos;
use qcss_proto::orderer::{SeekInfo, SeekPosition};
use tokio::sync::{mpsc, watch};
use tonic::Status;

use crate::channel::Channel;
use crate::envelope;
use crate::policy::SignerInfo;

/// Why a block below the height cannot be served right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Damaged or being repaired, or the store is reopening: the client
    /// should retry (or ask another node). Sent as gRPC `UNAVAILABLE`.
    Unavailable(String),
    /// Anything else. Sent as gRPC `INTERNAL`.
    Internal(String),
}

/// Where blocks come from: an orderer's chain, a peer's ledger.
pub trait BlockSource: Send + Sync {
    /// Number of blocks (the next block's number).
    fn height(&self) -> u64;
    /// Changes of the height.
    fn watch_height(&self) -> watch::Receiver<u64>;
    /// Block `n`, which is below the height.
    fn block(&self, n: u64) -> Result<Block, ReadError>;
}

/// A seek position against the current height (`default` when absent).
pub fn position(p: Option<&SeekPosition>, height: u64, default: u64) -> u64 {
    match p.and_then(|p| p.r#type.as_ref()) {
        Some(Pos::Oldest(_)) => 0,
        Some(Pos::Newest(_)) => height.saturating_sub(1),
        Some(Pos::Specified(s)) => s.number,
        Some(Pos::NextCommit(_)) => height,
        None => default,
    }
}

/// Checks a seek envelope: signed by a member of `channel` who satisfies its
/// Readers policy; of type `DELIVER_SEEK_INFO`; and, if it names a TLS
/// certificate hash (Fabric's `tls_cert_hash` binding), sent over a
/// connection authenticated by that certificate — so a captured request
/// cannot be replayed from elsewhere. `tls` is the SHA-256 of the caller's
/// TLS certificate. Returns the seek, or the status to answer.
pub fn admit(
    env: &Envelope,
    channel: &Channel,
    tls: Option<[u8; 32]>,
) -> Result<SeekInfo, FabStatus> {
    let verified = envelope::open(env, channel.id(), |id| channel.msp(id)).map_err(|e| {
        tracing::info!(error = %e, "deliver request refused");
        FabStatus::Forbidden
    })?;
    let bound = &verified.opened().channel_header.tls_cert_hash;
    if !bound.is_empty() && tls.is_none_or(|h| h.as_slice() != bound.as_slice()) {
        tracing::info!("deliver request bound to another TLS certificate refused");
        return Err(FabStatus::Forbidden);
    }
    if verified.header_type() != HeaderType::DeliverSeekInfo as i32 {
        return Err(FabStatus::BadRequest);
    }
    if !channel.readers_ok(&[SignerInfo::from(verified.creator())]) {
        return Err(FabStatus::Forbidden);
    }
    SeekInfo::decode(verified.opened().data.as_slice()).map_err(|_| FabStatus::BadRequest)
}

/// How [`follow`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Followed {
    /// Every block up to `stop` was sent.
    Done,
    /// The next block does not exist yet and the seek said `FAIL_IF_NOT_READY`.
    NotReady,
    /// The client went away (or the height watch closed).
    Gone,
    /// A block could not be read; the error was sent on the stream.
    ReadFailed,
}

/// The blocks a seek asks for: start, stop (inclusive) and whether to fail
/// rather than wait for a block not committed yet.
pub fn range(info: &SeekInfo, height: u64) -> Option<(u64, u64, bool)> {
    let start = position(info.start.as_ref(), height, 0);
    let stop = position(info.stop.as_ref(), height, u64::MAX);
    (start <= stop).then_some((
        start,
        stop,
        info.behavior == SeekBehavior::FailIfNotReady as i32,
    ))
}

/// Sends blocks `start ..= stop` of `src` on `tx`, waiting for each to be
/// committed (unless `fail_if_not_ready`). `emit` turns a block into the
/// stream's item, or `None` to send nothing for it (e.g. a block without
/// the events asked for).
pub async fn follow<S, T>(
    src: &S,
    (start, stop, fail_if_not_ready): (u64, u64, bool),
    tx: &mpsc::Sender<Result<T, Status>>,
    mut emit: impl FnMut(u64, Block) -> Option<T>,
) -> Followed
where
    S: BlockSource + ?Sized,
{
    let mut heights = src.watch_height();
    let mut n = start;
    loop {
        while src.height() <= n {
            if fail_if_not_ready {
                return Followed::NotReady;
            }
            tokio::select! {
                r = heights.changed() => if r.is_err() { return Followed::Gone },
                _ = tx.closed() => return Followed::Gone,
            }
        }
        let block = match src.block(n) {
            Ok(b) => b,
            Err(e) => {
                let status = match e {
                    ReadError::Unavailable(m) => Status::unavailable(m),
                    ReadError::Internal(m) => Status::internal(format!("reading block {n}: {m}")),
                };
                let _ = tx.send(Err(status)).await;
                return Followed::ReadFailed;
            }
        };
        if let Some(item) = emit(n, block)
            && tx.send(Ok(item)).await.is_err()
        {
            return Followed::Gone;
        }
        if n >= stop {
            return Followed::Done;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Mem {
        blocks: Mutex<Vec<Block>>,
        height: watch::Sender<u64>,
        broken: Option<u64>,
    }

    impl BlockSource for Mem {
        fn height(&self) -> u64 {
            *self.height.borrow()
        }
        fn watch_height(&self) -> watch::Receiver<u64> {
            self.height.subscribe()
        }
        fn block(&self, n: u64) -> Result<Block, ReadError> {
            if Some(n) == self.broken {
                return Err(ReadError::Unavailable(format!("block {n} is damaged")));
            }
            Ok(self.blocks.lock().unwrap()[n as usize].clone())
        }
    }

    fn mem(n: u64, broken: Option<u64>) -> Mem {
        let blocks = (0..n)
            .map(|i| Block {
                header: Some(qcss_proto::common::BlockHeader {
                    number: i,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        Mem {
            blocks: Mutex::new(blocks),
            height: watch::channel(n).0,
            broken,
        }
    }

    #[tokio::test]
    async fn follows_waits_skips_and_reports() {
        let src = mem(5, None);
        let (tx, mut rx) = mpsc::channel(16);
        let r = follow(&src, (1, 3, false), &tx, |n, _| Some(n)).await;
        assert_eq!(r, Followed::Done);
        let got: Vec<u64> = (0..3).map(|_| rx.try_recv().unwrap().unwrap()).collect();
        assert_eq!(got, vec![1, 2, 3]);
        // Not ready: fails at once.
        assert_eq!(
            follow(&src, (5, 9, true), &tx, |n, _| Some(n)).await,
            Followed::NotReady
        );
        // Skipped blocks send nothing.
        assert_eq!(
            follow(&src, (0, 4, false), &tx, |n, _| (n % 2 == 0).then_some(n)).await,
            Followed::Done
        );
        let got: Vec<u64> = (0..3).map(|_| rx.try_recv().unwrap().unwrap()).collect();
        assert_eq!(got, vec![0, 2, 4]);
        // A damaged block: UNAVAILABLE on the stream, then the end.
        let broken = mem(5, Some(2));
        assert_eq!(
            follow(&broken, (0, 4, false), &tx, |n, _| Some(n)).await,
            Followed::ReadFailed
        );
        let _ = (rx.try_recv(), rx.try_recv());
        let e = rx.try_recv().unwrap().unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable);
        // Waiting for a block that comes later.
        let src = std::sync::Arc::new(mem(2, None));
        let s2 = src.clone();
        let waiter = tokio::spawn(async move {
            let (tx, mut rx) = mpsc::channel(4);
            let r = follow(&*s2, (2, 2, false), &tx, |n, _| Some(n)).await;
            (r, rx.try_recv().unwrap().unwrap())
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        src.blocks.lock().unwrap().push(Block::default());
        src.height.send_replace(3);
        assert_eq!(waiter.await.unwrap(), (Followed::Done, 2));
    }

    #[test]
    fn positions_and_ranges() {
        use qcss_proto::orderer::{SeekNewest, SeekOldest, SeekSpecified};
        let at = |t| Some(SeekPosition { r#type: Some(t) });
        assert_eq!(position(at(Pos::Oldest(SeekOldest {})).as_ref(), 10, 7), 0);
        assert_eq!(position(at(Pos::Newest(SeekNewest {})).as_ref(), 10, 7), 9);
        assert_eq!(
            position(
                at(Pos::Specified(SeekSpecified { number: 4 })).as_ref(),
                10,
                7
            ),
            4
        );
        assert_eq!(position(None, 10, 7), 7);
        let info = SeekInfo {
            start: at(Pos::Specified(SeekSpecified { number: 5 })),
            stop: at(Pos::Specified(SeekSpecified { number: 4 })),
            ..Default::default()
        };
        assert_eq!(range(&info, 10), None);
    }
}
