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

/// The payload of the marker envelope that carries a batch's time: the
/// last envelope of a batch, with no signature and this payload followed by
/// the leader's clock in ms since the epoch (8 bytes, big-endian). A
/// client's envelope cannot be mistaken for it: clients' envelopes are
/// signed (Broadcast refuses them otherwise) and their payload is a
/// `common.Payload`. Stamping the time inside the entry (rather than
/// reading a clock when applying) is what makes every node build the same
/// block; a marker rather than a new field keeps Raft logs written before
/// block times existed readable.
const TIME_MARKER: &[u8] = b"qcss:batch-time\0";

impl Batch {
    /// A batch of `envelopes` stamped with the leader's time `now_ms`.
    pub fn stamped(envelopes: Vec<Vec<u8>>, now_ms: u64) -> Self {
        let mut payload = TIME_MARKER.to_vec();
        payload.extend_from_slice(&now_ms.to_be_bytes());
        let marker = prost::Message::encode_to_vec(&qcss_proto::common::Envelope {
            payload,
            signature: Vec::new(),
        });
        let mut envelopes: Vec<serde_bytes::ByteBuf> = envelopes
            .into_iter()
            .map(serde_bytes::ByteBuf::from)
            .collect();
        envelopes.push(serde_bytes::ByteBuf::from(marker));
        Batch { envelopes }
    }

    /// The envelopes of the batch without its time marker, and the time
    /// (None for a batch written before block times existed).
    pub fn split_time(&self) -> (&[serde_bytes::ByteBuf], Option<u64>) {
        let all = self.envelopes.as_slice();
        if let Some((last, rest)) = all.split_last()
            && let Ok(env) =
                <qcss_proto::common::Envelope as prost::Message>::decode(last.as_slice())
            && env.signature.is_empty()
            && let Some(t) = env.payload.strip_prefix(TIME_MARKER)
            && let Ok(t) = <[u8; 8]>::try_from(t)
        {
            return (rest, Some(u64::from_be_bytes(t)));
        }
        (all, None)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_batch_gives_back_its_envelopes_and_time() {
        let b = Batch::stamped(vec![b"one".to_vec(), b"two".to_vec()], 1_700_000_000_123);
        let (envs, t) = b.split_time();
        assert_eq!(t, Some(1_700_000_000_123));
        assert_eq!(envs.len(), 2);
        assert_eq!(envs[1].as_slice(), b"two");
        // A batch from before block times: all envelopes, no time.
        let old = Batch {
            envelopes: vec![serde_bytes::ByteBuf::from(b"one".to_vec())],
        };
        assert_eq!(old.split_time(), (old.envelopes.as_slice(), None));
    }
}
