//! The Raft log and vote, in sled. `append` writes a whole batch of entries
//! and flushes once before reporting them durable (never one fsync per
//! envelope); votes are flushed before `save_vote` returns.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageIOError, Vote,
};

use super::types::{Entry, NodeId, StorageError, TypeConfig, decode, encode};

const VOTE: &[u8] = b"vote";
const PURGED: &[u8] = b"last_purged";
const COMMITTED: &[u8] = b"committed";

/// The log store: two sled trees of the node's database.
#[derive(Debug, Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
}

fn io_err(
    subject: ErrorSubject<NodeId>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError {
    StorageError::IO {
        source: StorageIOError::new(subject, verb, AnyError::new(&e)),
    }
}

fn read_logs(e: impl std::error::Error + 'static) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_logs(e: impl std::error::Error + 'static) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Write, e)
}

impl LogStore {
    /// Opens the log trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(LogStore {
            db: db.clone(),
            log: db.open_tree("raft_log")?,
            meta: db.open_tree("raft_meta")?,
        })
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        match self
            .meta
            .get(key)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e))?
        {
            Some(v) => {
                Ok(Some(decode(&v).map_err(|e| {
                    io_err(ErrorSubject::Store, ErrorVerb::Read, e)
                })?))
            }
            None => Ok(None),
        }
    }

    fn put_meta<T: serde::Serialize>(&self, key: &[u8], v: &T) -> Result<(), StorageError> {
        let b = encode(v).map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        self.meta
            .insert(key, b)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))?;
        Ok(())
    }

    /// fsyncs everything written so far. sled's `flush_async` was seen to
    /// never complete under load (the Raft core then stalled and every RPC
    /// timed out), so the blocking `flush` runs on the blocking pool instead.
    async fn flush(&self) -> Result<(), std::io::Error> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush().map(|_| ()))
            .await
            .map_err(std::io::Error::other)?
            .map_err(std::io::Error::other)
    }

    /// The id of the last entry in the log (or the last purged one), as
    /// `get_log_state` gives openraft: what pre-vote compares, as openraft's
    /// own vote does. `None` for an empty log or one that cannot be read.
    pub fn last_log_id(&self) -> Option<LogId<NodeId>> {
        match self.log.last() {
            Ok(Some((_, v))) => decode::<Entry>(&v).ok().map(|e| e.log_id),
            Ok(None) => self.get_meta(PURGED).ok().flatten(),
            Err(_) => None,
        }
    }

    /// Whether nothing was ever stored (a brand-new node).
    pub fn is_pristine(&self) -> bool {
        self.log.is_empty() && self.meta.is_empty()
    }

    /// Number of entries currently kept (compaction keeps this bounded).
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// Whether the log holds no entries.
    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        for kv in self.log.range(start.to_be_bytes()..) {
            let (k, v) = kv.map_err(read_logs)?;
            let idx = u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0xff; 8]));
            if !range.contains(&idx) {
                break;
            }
            out.push(decode(&v).map_err(read_logs)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId<NodeId>> = self.get_meta(PURGED)?;
        let last = match self.log.last().map_err(read_logs)? {
            Some((_, v)) => Some(decode::<Entry>(&v).map_err(read_logs)?.log_id),
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.put_meta(VOTE, vote)?;
        self.flush()
            .await
            .map_err(|e| io_err(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_meta(VOTE)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        // Not flushed on its own: it rides along with the next log flush, and
        // losing it only means re-applying a few entries after a crash.
        self.put_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self.get_meta::<Option<LogId<NodeId>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for e in entries {
            batch.insert(
                &e.log_id.index.to_be_bytes(),
                encode(&e).map_err(write_logs)?,
            );
        }
        self.log.apply_batch(batch).map_err(write_logs)?;
        // One fsync for the whole batch of entries, then report them durable.
        let res = self.flush().await;
        let failed = res.as_ref().err().map(|e| e.to_string());
        callback.log_io_completed(res);
        match failed {
            Some(m) => Err(write_logs(std::io::Error::other(m))),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for kv in self.log.range(log_id.index.to_be_bytes()..) {
            batch.remove(kv.map_err(read_logs)?.0);
        }
        self.log.apply_batch(batch).map_err(write_logs)?;
        self.flush().await.map_err(write_logs)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        self.put_meta(PURGED, &log_id)?;
        let mut batch = sled::Batch::default();
        for kv in self.log.range(..=log_id.index.to_be_bytes()) {
            batch.remove(kv.map_err(read_logs)?.0);
        }
        self.log.apply_batch(batch).map_err(write_logs)?;
        Ok(())
    }
}
