//! The on-disk format: sled trees, key layouts and record encodings.
//!
//! One sled database in the ledger directory, six trees. All integers are
//! big-endian, so keys sort numerically.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `format` | format version, `u32` (currently 1) |
//! | `meta` | `height` | number of committed blocks, `u64` |
//! | `meta` | `last_hash` | header hash of block `height - 1`, 32 bytes |
//! | `meta` | `rebuilding` | present only while state, history and tx index are rebuilt from the blocks |
//! | `blocks` | block number, `u64` | `common.Block` protobuf as committed |
//! | `state` | `ns ‖ 0x00 ‖ key` | state record |
//! | `history` | `ns ‖ 0x00 ‖ len(key) u32 ‖ key ‖ block u64 ‖ tx u32` | history record |
//! | `txids` | tx id (UTF-8) | `block u64 ‖ position u32 ‖ code u8` |
//! | `filters` | block number, `u64` | the block's validation codes, one byte per transaction |
//!
//! **State record**: `flags u8` (bit 0: has metadata; other bits zero) ‖
//! `block u64` ‖ `tx u32` ‖ (if bit 0: `len u32` ‖ metadata) ‖ value (the
//! rest). A deleted key has no record. `ns ‖ 0x00 ‖ key` sorts by (ns, key)
//! because a namespace never contains 0x00 (commit refuses it), so a range
//! scan inside a namespace is a sled range scan.
//!
//! **History record**: `flags u8` (bit 0: delete; bit 1: has timestamp) ‖
//! (if bit 1: `seconds i64` ‖ `nanos i32`) ‖ `len u32` ‖ tx id ‖ value (the
//! rest; empty for a delete). The value is stored in history, so a history
//! query reads one tree and never decodes blocks (the ledger does not parse
//! read-write sets at all). The key is length-prefixed, unlike the
//! `ns\0key\0block\0tx` of the architecture brief, because Fabric composite
//! keys contain 0x00: with a plain separator the history of `"\0a"` would be a
//! prefix of the history of `"\0a\0b"`.
//!
//! **Blocks** are stored as the committer received them except that
//! `metadata[TRANSACTIONS_FILTER]` holds one validation-code byte per
//! transaction (the metadata list is extended to that slot if shorter). They
//! are re-encoded from the decoded `Block`, which keeps every signed byte (the
//! header is hashed field by field, envelopes and signatures are opaque bytes).
//!
//! **Filters** repeat each block's validation codes outside the block, so
//! that a damaged block can be re-fetched from the ordering service (whose
//! copy has no codes) and stored again exactly as committed. Ledgers written
//! before this tree existed have no entry for their older blocks: repairing
//! one takes the codes from the tx index instead (see `integrity.rs`). The
//! tree is not part of the format version: older builds ignore it.
//!
//! **Tx index**: the first occurrence of a tx id wins and is never
//! overwritten; later duplicates (necessarily invalid) stay in their block
//! only. Envelopes without a tx id (config blocks, unreadable envelopes) are
//! not indexed.

use qcss_proto::protos::TxValidationCode;

use crate::ledger::error::LedgerError;
use crate::ledger::{TxLocation, Version};

/// The format this build reads and writes.
pub(crate) const FORMAT: u32 = 1;

/// Tree names.
pub(crate) const META: &str = "meta";
pub(crate) const BLOCKS: &str = "blocks";
pub(crate) const STATE: &str = "state";
pub(crate) const HISTORY: &str = "history";
pub(crate) const TXIDS: &str = "txids";
pub(crate) const FILTERS: &str = "filters";
/// The anchoring MMR over block hashes (derived from `blocks`, rebuildable):
/// node `(level, index)` at key `level ‖ index_be` (9 bytes), 32-byte hash;
/// the leaf count at key `leaves` (u64 BE).
pub(crate) const MMR: &str = "anchor_mmr";

/// Keys of the `meta` tree.
pub(crate) const FORMAT_KEY: &[u8] = b"format";
pub(crate) const HEIGHT_KEY: &[u8] = b"height";
pub(crate) const LAST_HASH_KEY: &[u8] = b"last_hash";
/// Present while world state, history and tx index are being rebuilt from
/// the blocks: a ledger opened with it has unsound derived state.
pub(crate) const REBUILDING_KEY: &[u8] = b"rebuilding";

const STATE_HAS_METADATA: u8 = 0x01;
const HISTORY_DELETE: u8 = 0x01;
const HISTORY_HAS_TIMESTAMP: u8 = 0x02;

/// Bytes read from the front of a record, with a `Corrupt` error naming the
/// tree and key when the record is too short.
struct Reader<'a> {
    tree: &'static str,
    key: &'a [u8],
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(tree: &'static str, key: &'a [u8], bytes: &'a [u8]) -> Self {
        Reader {
            tree,
            key,
            rest: bytes,
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], LedgerError> {
        if self.rest.len() < n {
            return Err(LedgerError::corrupt(
                self.tree,
                self.key,
                format!("record too short for {what}"),
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], LedgerError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, LedgerError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, LedgerError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, LedgerError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    fn len_prefixed(&mut self, what: &str) -> Result<&'a [u8], LedgerError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }

    fn corrupt(&self, reason: impl Into<String>) -> LedgerError {
        LedgerError::corrupt(self.tree, self.key, reason)
    }
}

fn push_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    // Keys, tx ids and metadata are far below 4 GiB: sled cannot hold more.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

// ---------------------------------------------------------------------------
// meta
// ---------------------------------------------------------------------------

/// Decodes an 8-byte big-endian integer from the `meta` tree.
pub(crate) fn decode_u64(tree: &'static str, key: &[u8], v: &[u8]) -> Result<u64, LedgerError> {
    Reader::new(tree, key, v).u64("u64")
}

/// Decodes the `format` entry.
pub(crate) fn decode_format(v: &[u8]) -> Result<u32, LedgerError> {
    Reader::new(META, FORMAT_KEY, v).u32("format")
}

/// Decodes a 32-byte hash.
pub(crate) fn decode_hash(
    tree: &'static str,
    key: &[u8],
    v: &[u8],
) -> Result<[u8; 32], LedgerError> {
    <[u8; 32]>::try_from(v)
        .map_err(|_| LedgerError::corrupt(tree, key, format!("hash of {} bytes", v.len())))
}

// ---------------------------------------------------------------------------
// state
// ---------------------------------------------------------------------------

/// Why a namespace cannot be stored, if it cannot.
pub(crate) fn namespace_problem(ns: &str) -> Option<&'static str> {
    if ns.is_empty() {
        Some("empty namespace")
    } else if ns.as_bytes().contains(&0) {
        Some("namespace contains 0x00")
    } else {
        None
    }
}

/// `ns ‖ 0x00 ‖ key`.
pub(crate) fn state_key(ns: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + 1 + key.len());
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The first key after every `ns ‖ 0x00 ‖ …`: `ns ‖ 0x01`.
pub(crate) fn state_namespace_end(ns: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + 1);
    k.extend_from_slice(ns.as_bytes());
    k.push(1);
    k
}

/// Splits a state key into (ns, key).
pub(crate) fn parse_state_key(k: &[u8]) -> Result<(String, String), LedgerError> {
    let sep = k
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| LedgerError::corrupt(STATE, k, "key has no namespace separator"))?;
    let ns = std::str::from_utf8(&k[..sep])
        .map_err(|_| LedgerError::corrupt(STATE, k, "namespace is not UTF-8"))?;
    let key = std::str::from_utf8(&k[sep + 1..])
        .map_err(|_| LedgerError::corrupt(STATE, k, "key is not UTF-8"))?;
    Ok((ns.to_owned(), key.to_owned()))
}

/// A decoded state record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StateRecord {
    pub(crate) version: Version,
    pub(crate) metadata: Option<Vec<u8>>,
    pub(crate) value: Vec<u8>,
}

impl StateRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let meta_len = self.metadata.as_ref().map_or(0, |m| 4 + m.len());
        let mut out = Vec::with_capacity(13 + meta_len + self.value.len());
        let flags = if self.metadata.is_some() {
            STATE_HAS_METADATA
        } else {
            0
        };
        out.push(flags);
        out.extend_from_slice(&self.version.block.to_be_bytes());
        out.extend_from_slice(&self.version.tx.to_be_bytes());
        if let Some(m) = &self.metadata {
            push_len_prefixed(&mut out, m);
        }
        out.extend_from_slice(&self.value);
        out
    }

    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<StateRecord, LedgerError> {
        let mut r = Reader::new(STATE, key, bytes);
        let flags = r.u8("flags")?;
        if flags & !STATE_HAS_METADATA != 0 {
            return Err(r.corrupt(format!("unknown state flags {flags:#04x}")));
        }
        let version = Version {
            block: r.u64("version block")?,
            tx: r.u32("version tx")?,
        };
        let metadata = if flags & STATE_HAS_METADATA != 0 {
            Some(r.len_prefixed("metadata")?.to_vec())
        } else {
            None
        };
        Ok(StateRecord {
            version,
            metadata,
            value: r.rest.to_vec(),
        })
    }
}

// ---------------------------------------------------------------------------
// history
// ---------------------------------------------------------------------------

/// `ns ‖ 0x00 ‖ len(key) ‖ key`: the prefix of every history entry of a key.
pub(crate) fn history_prefix(ns: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ns.len() + 5 + key.len() + 12);
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    push_len_prefixed(&mut k, key.as_bytes());
    k
}

/// The history key of `(ns, key)` written at `version`.
pub(crate) fn history_key(ns: &str, key: &str, version: Version) -> Vec<u8> {
    let mut k = history_prefix(ns, key);
    k.extend_from_slice(&version.block.to_be_bytes());
    k.extend_from_slice(&version.tx.to_be_bytes());
    k
}

/// Splits a history key into (ns, key, version).
pub(crate) fn parse_history_key(k: &[u8]) -> Result<(String, String, Version), LedgerError> {
    let sep = k
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| LedgerError::corrupt(HISTORY, k, "key has no namespace separator"))?;
    let ns = std::str::from_utf8(&k[..sep])
        .map_err(|_| LedgerError::corrupt(HISTORY, k, "namespace is not UTF-8"))?;
    let mut r = Reader::new(HISTORY, k, &k[sep + 1..]);
    let key = std::str::from_utf8(r.len_prefixed("key")?)
        .map_err(|_| LedgerError::corrupt(HISTORY, k, "key is not UTF-8"))?;
    let version = Version {
        block: r.u64("block")?,
        tx: r.u32("tx")?,
    };
    if !r.rest.is_empty() {
        return Err(r.corrupt("trailing bytes after the version"));
    }
    Ok((ns.to_owned(), key.to_owned(), version))
}

/// A decoded history record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistoryRecord {
    pub(crate) tx_id: String,
    pub(crate) is_delete: bool,
    pub(crate) timestamp: Option<(i64, i32)>,
    pub(crate) value: Vec<u8>,
}

impl HistoryRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 12 + 4 + self.tx_id.len() + self.value.len());
        let mut flags = 0;
        if self.is_delete {
            flags |= HISTORY_DELETE;
        }
        if self.timestamp.is_some() {
            flags |= HISTORY_HAS_TIMESTAMP;
        }
        out.push(flags);
        if let Some((secs, nanos)) = self.timestamp {
            out.extend_from_slice(&secs.to_be_bytes());
            out.extend_from_slice(&nanos.to_be_bytes());
        }
        push_len_prefixed(&mut out, self.tx_id.as_bytes());
        out.extend_from_slice(&self.value);
        out
    }

    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<HistoryRecord, LedgerError> {
        let mut r = Reader::new(HISTORY, key, bytes);
        let flags = r.u8("flags")?;
        if flags & !(HISTORY_DELETE | HISTORY_HAS_TIMESTAMP) != 0 {
            return Err(r.corrupt(format!("unknown history flags {flags:#04x}")));
        }
        let timestamp = if flags & HISTORY_HAS_TIMESTAMP != 0 {
            let secs = i64::from_be_bytes(r.array("timestamp seconds")?);
            let nanos = i32::from_be_bytes(r.array("timestamp nanos")?);
            Some((secs, nanos))
        } else {
            None
        };
        let tx_id = std::str::from_utf8(r.len_prefixed("tx id")?)
            .map_err(|_| r.corrupt("tx id is not UTF-8"))?
            .to_owned();
        let is_delete = flags & HISTORY_DELETE != 0;
        if is_delete && !r.rest.is_empty() {
            return Err(r.corrupt("a delete carries a value"));
        }
        Ok(HistoryRecord {
            tx_id,
            is_delete,
            timestamp,
            value: r.rest.to_vec(),
        })
    }
}

// ---------------------------------------------------------------------------
// tx index and blocks
// ---------------------------------------------------------------------------

/// The validation-code byte of the TRANSACTIONS_FILTER (every Fabric code
/// fits in a byte: 0..=25, 254, 255).
pub(crate) fn code_byte(code: TxValidationCode) -> u8 {
    code as i32 as u8
}

/// The code of a filter byte, if it is a known one.
pub(crate) fn code_from_byte(b: u8) -> Option<TxValidationCode> {
    TxValidationCode::try_from(i32::from(b)).ok()
}

pub(crate) fn encode_tx_location(loc: &TxLocation) -> [u8; 13] {
    let mut out = [0u8; 13];
    out[..8].copy_from_slice(&loc.block.to_be_bytes());
    out[8..12].copy_from_slice(&loc.position.to_be_bytes());
    out[12] = code_byte(loc.code);
    out
}

pub(crate) fn decode_tx_location(key: &[u8], bytes: &[u8]) -> Result<TxLocation, LedgerError> {
    let mut r = Reader::new(TXIDS, key, bytes);
    let block = r.u64("block")?;
    let position = r.u32("position")?;
    let byte = r.u8("code")?;
    if !r.rest.is_empty() {
        return Err(r.corrupt("trailing bytes"));
    }
    let code = code_from_byte(byte).ok_or_else(|| r.corrupt(format!("unknown code {byte}")))?;
    Ok(TxLocation {
        block,
        position,
        code,
    })
}

/// Block number from a `blocks` key.
pub(crate) fn decode_block_key(k: &[u8]) -> Result<u64, LedgerError> {
    <[u8; 8]>::try_from(k)
        .map(u64::from_be_bytes)
        .map_err(|_| LedgerError::corrupt(BLOCKS, k, "block key is not 8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_record_round_trips_with_and_without_metadata() {
        for metadata in [None, Some(vec![]), Some(b"policy".to_vec())] {
            let r = StateRecord {
                version: Version { block: 7, tx: 3 },
                metadata,
                value: b"value\0with zero".to_vec(),
            };
            assert_eq!(StateRecord::decode(b"k", &r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn history_record_round_trips() {
        let put = HistoryRecord {
            tx_id: "ab".into(),
            is_delete: false,
            timestamp: Some((-5, 999)),
            value: b"v".to_vec(),
        };
        let del = HistoryRecord {
            tx_id: "cd".into(),
            is_delete: true,
            timestamp: None,
            value: vec![],
        };
        for r in [put, del] {
            assert_eq!(HistoryRecord::decode(b"k", &r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn keys_parse_back_including_zero_bytes_in_keys() {
        let (ns, key) = parse_state_key(&state_key("cc", "\0Asset\0a1\0")).unwrap();
        assert_eq!((ns.as_str(), key.as_str()), ("cc", "\0Asset\0a1\0"));
        let v = Version { block: 9, tx: 1 };
        let (ns, key, got) = parse_history_key(&history_key("cc", "\0a\0", v)).unwrap();
        assert_eq!((ns.as_str(), key.as_str(), got), ("cc", "\0a\0", v));
    }

    #[test]
    fn history_of_a_key_is_not_a_prefix_of_another_keys_history() {
        let a = history_prefix("cc", "\0a");
        let b = history_key("cc", "\0a\0b", Version { block: 0, tx: 0 });
        assert!(!b.starts_with(&a));
    }

    #[test]
    fn truncated_or_unknown_records_are_corrupt_not_panics() {
        let good = StateRecord {
            version: Version { block: 1, tx: 2 },
            metadata: Some(b"m".to_vec()),
            value: b"v".to_vec(),
        }
        .encode();
        for cut in 0..14 {
            assert!(matches!(
                StateRecord::decode(b"k", &good[..cut]),
                Err(LedgerError::Corrupt { .. })
            ));
        }
        assert!(StateRecord::decode(b"k", &[0x80; 20]).is_err());
        assert!(HistoryRecord::decode(b"k", &[0x01, 0, 0, 0, 0, b'x']).is_err());
        assert!(decode_tx_location(b"t", &[0; 12]).is_err());
        assert!(decode_tx_location(b"t", &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100]).is_err());
        assert!(parse_history_key(b"cc\0\0\0\0\x09abc").is_err());
        assert!(decode_block_key(b"123").is_err());
    }

    #[test]
    fn every_validation_code_fits_a_filter_byte() {
        for v in (0..=25).chain([254, 255]) {
            let code = TxValidationCode::try_from(v).unwrap();
            assert_eq!(code_from_byte(code_byte(code)), Some(code));
        }
    }
}
