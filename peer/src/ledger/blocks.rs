//! Blocks and transactions: the chaining checks a block must pass before it
//! is committed, the bytes it is stored as, and the block and tx-index queries.

use prost::Message;
use qcss_proto::common::{
    Block, BlockHeader, BlockMetadata, BlockMetadataIndex, ChannelHeader, Envelope, Payload,
};
use qcss_proto::hash::merkle_root;
use qcss_proto::protos::TxValidationCode;

use crate::ledger::error::LedgerError;
use crate::ledger::format;
use crate::ledger::{Ledger, Tip};

/// Slot of the validation codes in `BlockMetadata.metadata`.
pub(crate) const FILTER_SLOT: usize = BlockMetadataIndex::TransactionsFilter as usize;

/// Where a transaction was committed, and its validation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TxLocation {
    /// Block number.
    pub block: u64,
    /// Position in the block.
    pub position: u32,
    /// The code it was committed with (`Valid` or why not).
    #[serde(serialize_with = "serialize_code")]
    pub code: TxValidationCode,
}

fn serialize_code<S: serde::Serializer>(c: &TxValidationCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.as_str_name())
}

/// What the ledger reads from an envelope's channel header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxHeader {
    /// `ChannelHeader.tx_id` (empty for config transactions).
    pub tx_id: String,
    /// `ChannelHeader.timestamp` as (seconds, nanos).
    pub timestamp: Option<(i64, i32)>,
    /// `ChannelHeader.type` (a `HeaderType` value).
    pub header_type: i32,
    /// `ChannelHeader.channel_id`.
    pub channel_id: String,
}

/// Reads the channel header of a marshaled `Envelope`; `None` if any layer
/// (envelope, payload, header, channel header) does not decode. The validator
/// fills [`crate::ledger::TxUpdate`]'s tx id and timestamp from this, and
/// commit checks them against it.
pub fn tx_header(envelope: &[u8]) -> Option<TxHeader> {
    let env = Envelope::decode(envelope).ok()?;
    let payload = Payload::decode(env.payload.as_slice()).ok()?;
    let ch = ChannelHeader::decode(payload.header?.channel_header.as_slice()).ok()?;
    Some(TxHeader {
        tx_id: ch.tx_id,
        timestamp: ch.timestamp.map(|t| (t.seconds, t.nanos)),
        header_type: ch.r#type,
        channel_id: ch.channel_id,
    })
}

/// Checks that `block` is the next block of the chain ending at `tip`:
/// number, previous-hash link, Merkle root. Returns its header and envelopes.
pub(crate) fn check_next<'b>(
    block: &'b Block,
    tip: &Tip,
) -> Result<(&'b BlockHeader, &'b [Vec<u8>]), LedgerError> {
    let header = block.header.as_ref().ok_or(LedgerError::MissingHeader {
        expected: tip.height,
    })?;
    let number = header.number;
    if number != tip.height {
        return Err(LedgerError::WrongNumber {
            number,
            expected: tip.height,
        });
    }
    let expected: &[u8] = match &tip.last_hash {
        Some(h) => h,
        None => &[],
    };
    if header.previous_hash != expected {
        return Err(LedgerError::BrokenLink {
            number,
            found: hex::encode(&header.previous_hash),
            expected: hex::encode(expected),
        });
    }
    let envelopes: &[Vec<u8>] = block.data.as_ref().map_or(&[], |d| d.data.as_slice());
    if merkle_root(envelopes).as_slice() != header.data_hash.as_slice() {
        return Err(LedgerError::DataHashMismatch {
            number,
            txs: envelopes.len(),
        });
    }
    Ok((header, envelopes))
}

/// The bytes a block is stored as: `block` with `filter` in
/// `metadata[TRANSACTIONS_FILTER]`. Encoded field by field, exactly as
/// `Block::encode` would, without cloning the block's data.
pub(crate) fn committed_bytes(block: &Block, header: &BlockHeader, filter: Vec<u8>) -> Vec<u8> {
    let mut metadata = block.metadata.clone().unwrap_or_default();
    if metadata.metadata.len() <= FILTER_SLOT {
        metadata.metadata.resize(FILTER_SLOT + 1, Vec::new());
    }
    metadata.metadata[FILTER_SLOT] = filter;
    let mut out = Vec::with_capacity(block.encoded_len() + metadata.encoded_len() + 16);
    prost::encoding::message::encode(1, header, &mut out);
    if let Some(data) = &block.data {
        prost::encoding::message::encode(2, data, &mut out);
    }
    prost::encoding::message::encode::<BlockMetadata>(3, &metadata, &mut out);
    out
}

/// The validation codes of a committed block.
pub(crate) fn filter_of(block: &Block) -> &[u8] {
    block
        .metadata
        .as_ref()
        .and_then(|m| m.metadata.get(FILTER_SLOT))
        .map_or(&[], Vec::as_slice)
}

impl Ledger {
    /// Block `number` exactly as stored (the bytes Deliver sends), checked
    /// against the chain first: a damaged block is answered
    /// [`LedgerError::CorruptBlock`], never with its bytes (see
    /// `integrity.rs`). `None` past the tip.
    pub fn block_bytes(&self, number: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.checked_block(number)?.map(|(bytes, _)| bytes))
    }

    /// Header hash of block `number` (Fabric's), the block checked as
    /// [`Ledger::block_bytes`]; `None` past the tip.
    pub fn block_hash(&self, number: u64) -> Result<Option<[u8; 32]>, LedgerError> {
        let Some(block) = self.block(number)? else {
            return Ok(None);
        };
        let header = block
            .header
            .as_ref()
            .ok_or_else(|| LedgerError::CorruptBlock {
                number,
                reason: "no header".into(),
            })?;
        Ok(Some(qcss_proto::hash::block_header_hash(header)))
    }

    /// Block `number`, decoded, with its validation codes in
    /// `metadata[TRANSACTIONS_FILTER]`; checked as [`Ledger::block_bytes`].
    pub fn block(&self, number: u64) -> Result<Option<Block>, LedgerError> {
        Ok(self.checked_block(number)?.map(|(_, block)| block))
    }

    /// Where transaction `tx_id` was committed (its first occurrence) and its
    /// validation code.
    pub fn tx(&self, tx_id: &str) -> Result<Option<TxLocation>, LedgerError> {
        let v = self
            .trees()?
            .txids
            .get(tx_id.as_bytes())
            .map_err(LedgerError::storage("read tx index"))?;
        v.map(|v| format::decode_tx_location(tx_id.as_bytes(), &v))
            .transpose()
    }

    /// The block holding transaction `tx_id`.
    pub fn block_by_tx_id(&self, tx_id: &str) -> Result<Option<Block>, LedgerError> {
        match self.tx(tx_id)? {
            Some(loc) => self.block(loc.block),
            None => Ok(None),
        }
    }

    /// Transaction `tx_id`'s envelope bytes and location (Fabric's
    /// `GetTransactionByID` answer: the envelope and its validation code).
    pub fn tx_envelope(&self, tx_id: &str) -> Result<Option<(Vec<u8>, TxLocation)>, LedgerError> {
        let Some(loc) = self.tx(tx_id)? else {
            return Ok(None);
        };
        let missing = |what: &str| {
            LedgerError::corrupt(
                format::TXIDS,
                tx_id.as_bytes(),
                format!(
                    "indexed at block {} position {}: {what}",
                    loc.block, loc.position
                ),
            )
        };
        let mut block = self
            .block(loc.block)?
            .ok_or_else(|| missing("no such block"))?;
        let data = block.data.take().unwrap_or_default().data;
        let env = data
            .into_iter()
            .nth(loc.position as usize)
            .ok_or_else(|| missing("no such position"))?;
        Ok(Some((env, loc)))
    }
}
