//! The openraft type configuration of the ordering service.

use std::io::Cursor;

/// A Raft node id: the consenter id from the channel configuration.
pub type NodeId = u64;

/// What one Raft log entry carries: a batch of envelopes, in the order the
/// leader cut them. Every node turns a committed batch into the same block.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    /// Serialized `common::Envelope`s. `ByteBuf` so bincode copies each as one
    /// byte string instead of serialising it element by element (which was
    /// slow enough to make AppendEntries time out).
    pub envelopes: Vec<serde_bytes::ByteBuf>,
}

/// What applying a batch answered: the block it became (if any) and the
/// envelopes left out, with why (e.g. a tx id already ordered).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchOutcome {
    /// The block number, if a block was cut.
    pub block: Option<u64>,
    /// Envelopes not ordered.
    pub rejected: Vec<Rejected>,
    /// The new configuration sequence, if the block is a config block.
    pub config: Option<u64>,
}

/// An envelope that applying a batch left out, deterministically.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rejected {
    /// Its index in the batch.
    pub index: u32,
    /// The Broadcast status it is answered with (a `common::Status`).
    pub status: i32,
    /// Why.
    pub reason: String,
}

impl Rejected {
    /// Left out with `status`.
    pub fn new(index: usize, status: qcss_proto::common::Status, reason: String) -> Self {
        Rejected {
            index: index as u32,
            status: status as i32,
            reason,
        }
    }

    /// Left out as a bad request (malformed, duplicate tx id).
    pub fn bad(index: usize, reason: String) -> Self {
        Self::new(index, qcss_proto::common::Status::BadRequest, reason)
    }
}

openraft::declare_raft_types!(
    /// The ordering service's Raft types.
    pub TypeConfig:
        D = Batch,
        R = BatchOutcome,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

/// openraft's log entry for this configuration.
pub type Entry = openraft::Entry<TypeConfig>;
/// openraft's storage error for this configuration.
pub type StorageError = openraft::StorageError<NodeId>;
/// The Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// Encodes a value for storage or the wire.
pub fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, bincode::Error> {
    bincode::serialize(v)
}

/// Decodes a value from storage or the wire.
pub fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, bincode::Error> {
    // Bound allocations so a hostile length prefix cannot exhaust memory.
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(1 << 30)
        .deserialize(b)
}
