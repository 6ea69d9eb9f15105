//! Key history: every value a VALID transaction wrote to a key, oldest first,
//! with its tx id, the transaction's timestamp and whether it was a delete.
//!
//! Each entry keeps the value it wrote (see `format.rs`), so a history query
//! is one prefix scan and never decodes blocks. Metadata-only writes are not
//! history (as in Fabric's history database).

use crate::ledger::error::LedgerError;
use crate::ledger::format::{self, HistoryRecord};
use crate::ledger::{Ledger, Version};

/// One write to a key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    /// Block of the writing transaction.
    pub block: u64,
    /// Position of the transaction in its block.
    pub tx: u32,
    /// The transaction's id.
    pub tx_id: String,
    /// The value written; `None` for a delete.
    pub value: Option<Vec<u8>>,
    /// The transaction's timestamp from its channel header: (seconds since
    /// the Unix epoch, nanoseconds), if it had one.
    pub timestamp: Option<(i64, i32)>,
    /// Whether the transaction deleted the key.
    pub is_delete: bool,
}

impl HistoryEntry {
    /// The entry's (block, tx).
    pub fn version(&self) -> Version {
        Version {
            block: self.block,
            tx: self.tx,
        }
    }

    pub(crate) fn from_record(version: Version, r: HistoryRecord) -> HistoryEntry {
        HistoryEntry {
            block: version.block,
            tx: version.tx,
            tx_id: r.tx_id,
            value: (!r.is_delete).then_some(r.value),
            timestamp: r.timestamp,
            is_delete: r.is_delete,
        }
    }
}

impl Ledger {
    /// Every committed write to `key` of `ns`, oldest first.
    pub fn history(&self, ns: &str, key: &str) -> Result<Vec<HistoryEntry>, LedgerError> {
        if let Some(reason) = format::namespace_problem(ns) {
            return Err(LedgerError::InvalidNamespace {
                ns: ns.to_owned(),
                reason,
            });
        }
        let prefix = format::history_prefix(ns, key);
        let mut out = Vec::new();
        for item in self.trees()?.history.scan_prefix(&prefix) {
            let (k, v) = item.map_err(LedgerError::storage("scan history"))?;
            let (_, _, version) = format::parse_history_key(&k)?;
            out.push(HistoryEntry::from_record(
                version,
                HistoryRecord::decode(&k, &v)?,
            ));
        }
        Ok(out)
    }
}
