//! Synthetic chains for tests and benchmarks: envelopes whose channel header
//! carries a tx id and timestamp, blocks with the right number, previous hash
//! and Merkle root, and the [`BlockUpdates`] that go with them.
//!
//! The envelopes are not signed and carry no real transaction: the ledger
//! never looks past the channel header. Tests of the validator need real
//! transactions and should build them elsewhere.

use prost::Message;
use qcss_proto::common::{
    Block, BlockData, BlockHeader, BlockMetadata, ChannelHeader, Envelope, Header, HeaderType,
    Payload,
};
use qcss_proto::hash::{block_data_hash, block_header_hash};
use qcss_proto::protos::TxValidationCode;

use crate::ledger::{BlockUpdates, Ledger, MetadataWrite, TxUpdate, Write};

/// Channel id written into test envelopes.
pub const TEST_CHANNEL: &str = "qcss-test";

/// Metadata slots of a fresh block (Fabric's five).
const METADATA_SLOTS: usize = 5;

/// A transaction of a test block: its envelope's header fields, the code the
/// "validator" gave it, and its writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestTx {
    /// Tx id in the channel header.
    pub tx_id: String,
    /// Timestamp in the channel header.
    pub timestamp: Option<(i64, i32)>,
    /// Validation code.
    pub code: TxValidationCode,
    /// Value writes.
    pub writes: Vec<Write>,
    /// Metadata writes.
    pub metadata_writes: Vec<MetadataWrite>,
    /// If set, the envelope is these bytes instead (e.g. not protobuf).
    pub raw_envelope: Option<Vec<u8>>,
}

impl TestTx {
    /// A VALID transaction `tx_id` at 2023-11-14T22:13:20Z, writing nothing.
    pub fn new(tx_id: impl Into<String>) -> TestTx {
        TestTx {
            tx_id: tx_id.into(),
            timestamp: Some((1_700_000_000, 0)),
            code: TxValidationCode::Valid,
            writes: Vec::new(),
            metadata_writes: Vec::new(),
            raw_envelope: None,
        }
    }

    /// A transaction whose envelope is `bytes` (unreadable if they are not an
    /// envelope): no tx id, no timestamp, code `BAD_PAYLOAD`.
    pub fn unreadable(bytes: Vec<u8>) -> TestTx {
        TestTx {
            tx_id: String::new(),
            timestamp: None,
            code: TxValidationCode::BadPayload,
            writes: Vec::new(),
            metadata_writes: Vec::new(),
            raw_envelope: Some(bytes),
        }
    }

    /// Sets the timestamp.
    pub fn at(mut self, seconds: i64, nanos: i32) -> TestTx {
        self.timestamp = Some((seconds, nanos));
        self
    }

    /// Sets the validation code.
    pub fn code(mut self, code: TxValidationCode) -> TestTx {
        self.code = code;
        self
    }

    /// Adds a value write.
    pub fn put(mut self, ns: &str, key: &str, value: &[u8]) -> TestTx {
        self.writes.push(Write::put(ns, key, value));
        self
    }

    /// Adds a delete.
    pub fn delete(mut self, ns: &str, key: &str) -> TestTx {
        self.writes.push(Write::delete(ns, key));
        self
    }

    /// Adds a metadata write (`None` removes the metadata).
    pub fn metadata(mut self, ns: &str, key: &str, value: Option<&[u8]>) -> TestTx {
        self.metadata_writes.push(MetadataWrite {
            ns: ns.into(),
            key: key.into(),
            value: value.map(<[u8]>::to_vec),
        });
        self
    }

    /// The marshaled envelope: a `Payload` whose channel header carries the
    /// tx id and timestamp, and whose data lists the writes (so that
    /// envelopes differ and have a realistic size).
    pub fn envelope(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw_envelope {
            return raw.clone();
        }
        let mut body = Vec::new();
        for w in &self.writes {
            body.extend_from_slice(w.ns.as_bytes());
            body.push(0);
            body.extend_from_slice(w.key.as_bytes());
            body.push(0);
            body.extend_from_slice(w.value.as_deref().unwrap_or_default());
        }
        envelope(&self.tx_id, self.timestamp, body)
    }

    /// The update the validator would hand to commit.
    pub fn update(&self) -> TxUpdate {
        let readable = self.raw_envelope.is_none();
        TxUpdate {
            tx_id: if readable {
                self.tx_id.clone()
            } else {
                String::new()
            },
            code: self.code,
            timestamp: self.timestamp.filter(|_| readable),
            writes: self.writes.clone(),
            metadata_writes: self.metadata_writes.clone(),
        }
    }
}

/// A marshaled endorser-transaction envelope on [`TEST_CHANNEL`] with this
/// tx id and timestamp and `data` as payload data. Unsigned.
pub fn envelope(tx_id: &str, timestamp: Option<(i64, i32)>, data: Vec<u8>) -> Vec<u8> {
    let ch = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        version: 0,
        timestamp: timestamp.map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
        channel_id: TEST_CHANNEL.into(),
        tx_id: tx_id.into(),
        ..Default::default()
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec(),
            signature_header: Vec::new(),
        }),
        data,
    };
    Envelope {
        payload: payload.encode_to_vec(),
        signature: Vec::new(),
    }
    .encode_to_vec()
}

/// Block `number` after `previous_hash` holding `txs`, with the updates a
/// validator would produce for it.
pub fn block(number: u64, previous_hash: &[u8], txs: &[TestTx]) -> (Block, BlockUpdates) {
    let data = BlockData {
        data: txs.iter().map(TestTx::envelope).collect(),
    };
    let block = Block {
        header: Some(BlockHeader {
            number,
            previous_hash: previous_hash.to_vec(),
            data_hash: block_data_hash(&data).to_vec(),
        }),
        data: Some(data),
        metadata: Some(BlockMetadata {
            metadata: vec![Vec::new(); METADATA_SLOTS],
        }),
    };
    let updates = BlockUpdates {
        txs: txs.iter().map(TestTx::update).collect(),
    };
    (block, updates)
}

/// Builds consecutive blocks.
#[derive(Debug, Clone, Default)]
pub struct ChainBuilder {
    number: u64,
    previous_hash: Vec<u8>,
}

impl ChainBuilder {
    /// A chain starting at block 0.
    pub fn new() -> ChainBuilder {
        ChainBuilder::default()
    }

    /// A chain continuing `ledger`'s.
    pub fn following(ledger: &Ledger) -> ChainBuilder {
        ChainBuilder {
            number: ledger.height(),
            previous_hash: ledger
                .last_block_hash()
                .map(|h| h.to_vec())
                .unwrap_or_default(),
        }
    }

    /// Number of the next block.
    pub fn next_number(&self) -> u64 {
        self.number
    }

    /// The next block, holding `txs`.
    pub fn next(&mut self, txs: &[TestTx]) -> (Block, BlockUpdates) {
        let (block, updates) = block(self.number, &self.previous_hash, txs);
        if let Some(h) = &block.header {
            self.previous_hash = block_header_hash(h).to_vec();
        }
        self.number += 1;
        (block, updates)
    }
}
