//! [`Ledger::verify`]: an offline re-check of a whole ledger, for
//! `qcss ledger verify`.
//!
//! What it proves, in four passes over the trees:
//! 1. blocks: stored under 0..height with no gap; each decodes, carries its
//!    own number, links to the previous header hash (block 0 to nothing), has
//!    the Merkle root of its envelopes as data hash and one filter byte per
//!    envelope; the tip recorded in `meta` is the last block;
//! 2. tx index: every tx id in the blocks is indexed at its first occurrence
//!    with that occurrence's code, later duplicates are not VALID, and the
//!    index has no other entries;
//! 3. history: every entry belongs to a VALID transaction, indexed under its
//!    tx id (when it has one), and each key's last entry agrees with the
//!    state (deleted ⇔ absent; same value; state version not older);
//! 4. state: every version points at a VALID transaction, every key has
//!    history, and the state hash is recomputed.
//!
//! What it cannot prove: that the state is what the blocks' read-write sets
//! imply (the ledger does not parse them), or the orderers' signatures (the
//! channel configuration lives elsewhere). Damage is reported as problems,
//! not errors; only an I/O failure is an error.

use std::collections::BTreeMap;

use prost::Message;
use qcss_proto::common::Block;
use qcss_proto::hash::{block_header_hash, merkle_root};
use qcss_proto::protos::TxValidationCode;

use crate::ledger::blocks::{filter_of, tx_header};
use crate::ledger::error::LedgerError;
use crate::ledger::format::{self, HistoryRecord, StateRecord};
use crate::ledger::state::StateHasher;
use crate::ledger::{Ledger, Tip, Version, read_tip};

/// Problems beyond this many are only counted.
const MAX_PROBLEMS: usize = 100;

/// The outcome of [`Ledger::verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Height recorded in the ledger.
    pub height: u64,
    /// Hash of the last block, as recorded.
    #[serde(serialize_with = "hex_opt")]
    pub last_block_hash: Option<[u8; 32]>,
    /// Transactions in all blocks.
    pub transactions: u64,
    /// Of which VALID.
    pub valid_transactions: u64,
    /// Entries in the tx index.
    pub tx_index_entries: u64,
    /// Entries in the history index.
    pub history_entries: u64,
    /// Keys in the state.
    pub state_keys: u64,
    /// The state hash recomputed from the state (as [`Ledger::state_hash`]).
    #[serde(serialize_with = "hex32")]
    pub state_hash: [u8; 32],
    /// What is wrong, the first 100 problems; empty when consistent.
    pub problems: Vec<VerifyProblem>,
    /// Problems found beyond those listed.
    pub problems_omitted: u64,
}

/// One inconsistency found by [`Ledger::verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyProblem {
    /// The block concerned, if one is.
    pub block: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty() && self.problems_omitted == 0
    }
}

fn hex32<S: serde::Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(h))
}

fn hex_opt<S: serde::Serializer>(h: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    match h {
        Some(h) => s.serialize_some(&hex::encode(h)),
        None => s.serialize_none(),
    }
}

impl Ledger {
    /// Re-checks the whole ledger (see the module documentation). Commits
    /// wait while it runs.
    pub fn verify(&self) -> Result<VerifyReport, LedgerError> {
        let view = self.state_view();
        let tip = Tip {
            height: view.height(),
            last_hash: view.last_block_hash(),
        };
        let mut v = Verifier {
            ledger: self,
            report: VerifyReport {
                height: tip.height,
                last_block_hash: tip.last_hash,
                transactions: 0,
                valid_transactions: 0,
                tx_index_entries: 0,
                history_entries: 0,
                state_keys: 0,
                state_hash: [0; 32],
                problems: Vec::new(),
                problems_omitted: 0,
            },
            filters: BTreeMap::new(),
            indexed: 0,
            live_keys: 0,
        };
        match read_tip(&self.trees()?) {
            Ok(stored) if stored != tip => {
                v.problem(None, "tip on disk differs from the tip in memory")
            }
            Ok(_) => {}
            Err(e) => v.problem(None, e.to_string()),
        }
        v.blocks(&tip)?;
        v.tx_index()?;
        v.history()?;
        v.state()?;
        drop(view);
        Ok(v.report)
    }
}

struct Verifier<'a> {
    ledger: &'a Ledger,
    report: VerifyReport,
    /// Validation codes of every block read.
    filters: BTreeMap<u64, Vec<u8>>,
    /// Tx-index entries accounted for by the blocks.
    indexed: u64,
    /// Keys whose last history entry is a write.
    live_keys: u64,
}

impl Verifier<'_> {
    fn problem(&mut self, block: Option<u64>, message: impl Into<String>) {
        if self.report.problems.len() < MAX_PROBLEMS {
            self.report.problems.push(VerifyProblem {
                block,
                message: message.into(),
            });
        } else {
            self.report.problems_omitted += 1;
        }
    }

    fn is_valid_tx(&self, v: Version) -> bool {
        self.filters
            .get(&v.block)
            .and_then(|f| f.get(v.tx as usize))
            .copied()
            == Some(format::code_byte(TxValidationCode::Valid))
    }

    fn blocks(&mut self, tip: &Tip) -> Result<(), LedgerError> {
        let mut expected = 0u64;
        // Hash the next block must link to; `None` after a block that could
        // not be read (the link is then not checked).
        let mut link: Option<Vec<u8>> = Some(Vec::new());
        let mut last_hash = None;
        for item in self.ledger.trees()?.blocks.iter() {
            let (k, bytes) = item.map_err(LedgerError::storage("scan blocks"))?;
            let number = match format::decode_block_key(&k) {
                Ok(n) => n,
                Err(e) => {
                    self.problem(None, e.to_string());
                    continue;
                }
            };
            if number != expected {
                self.problem(
                    Some(number),
                    format!("found where block {expected} was expected (a gap)"),
                );
                link = None;
            }
            expected = number.wrapping_add(1);
            last_hash = None;
            let block = match Block::decode(bytes.as_ref()) {
                Ok(b) => b,
                Err(e) => {
                    self.problem(Some(number), format!("does not decode: {e}"));
                    link = None;
                    continue;
                }
            };
            let Some(header) = &block.header else {
                self.problem(Some(number), "has no header");
                link = None;
                continue;
            };
            if header.number != number {
                self.problem(Some(number), format!("header says block {}", header.number));
            }
            if let Some(l) = &link
                && header.previous_hash != *l
            {
                self.problem(
                    Some(number),
                    "previous hash does not link to the block before",
                );
            }
            let envelopes = block.data.as_ref().map_or(&[][..], |d| d.data.as_slice());
            if merkle_root(envelopes).as_slice() != header.data_hash.as_slice() {
                self.problem(
                    Some(number),
                    "data hash is not the Merkle root of its envelopes",
                );
            }
            let filter = filter_of(&block).to_vec();
            if filter.len() != envelopes.len() {
                self.problem(
                    Some(number),
                    format!(
                        "{} validation codes for {} transactions",
                        filter.len(),
                        envelopes.len()
                    ),
                );
            }
            for (pos, env) in envelopes.iter().enumerate() {
                self.transaction(number, pos as u32, env, filter.get(pos).copied())?;
            }
            self.filters.insert(number, filter);
            let hash = block_header_hash(header);
            link = Some(hash.to_vec());
            last_hash = Some(hash);
        }
        if expected != tip.height {
            self.problem(
                None,
                format!(
                    "blocks end before {expected} but the height is {}",
                    tip.height
                ),
            );
        }
        if last_hash != tip.last_hash {
            self.problem(
                None,
                "last stored block's hash is not the recorded last hash",
            );
        }
        Ok(())
    }

    fn transaction(
        &mut self,
        number: u64,
        pos: u32,
        env: &[u8],
        code: Option<u8>,
    ) -> Result<(), LedgerError> {
        self.report.transactions += 1;
        let valid = code == Some(format::code_byte(TxValidationCode::Valid));
        if valid {
            self.report.valid_transactions += 1;
        }
        let tx_id = match tx_header(env) {
            Some(h) => h.tx_id,
            None if valid => {
                self.problem(
                    Some(number),
                    format!("transaction {pos} is VALID but unreadable"),
                );
                return Ok(());
            }
            None => return Ok(()),
        };
        if tx_id.is_empty() {
            return Ok(());
        }
        match self.ledger.tx(&tx_id) {
            Err(e) => self.problem(Some(number), e.to_string()),
            Ok(None) => self.problem(
                Some(number),
                format!("tx {tx_id} (position {pos}) is not indexed"),
            ),
            Ok(Some(loc)) if (loc.block, loc.position) == (number, pos) => {
                self.indexed += 1;
                if Some(format::code_byte(loc.code)) != code {
                    self.problem(
                        Some(number),
                        format!("tx {tx_id}: index code differs from the block's"),
                    );
                }
            }
            Ok(Some(loc)) if (loc.block, loc.position) < (number, pos) => {
                if valid {
                    self.problem(
                        Some(number),
                        format!("tx {tx_id} (position {pos}) is a VALID duplicate"),
                    );
                }
            }
            Ok(Some(loc)) => self.problem(
                Some(number),
                format!(
                    "tx {tx_id} (position {pos}) is indexed at later block {} position {}",
                    loc.block, loc.position
                ),
            ),
        }
        Ok(())
    }

    fn tx_index(&mut self) -> Result<(), LedgerError> {
        for item in self.ledger.trees()?.txids.iter() {
            let (k, v) = item.map_err(LedgerError::storage("scan tx index"))?;
            self.report.tx_index_entries += 1;
            if let Err(e) = format::decode_tx_location(&k, &v) {
                self.problem(None, e.to_string());
            }
        }
        if self.report.tx_index_entries != self.indexed {
            self.problem(
                None,
                format!(
                    "tx index has {} entries but the blocks account for {}",
                    self.report.tx_index_entries, self.indexed
                ),
            );
        }
        Ok(())
    }

    fn history(&mut self) -> Result<(), LedgerError> {
        let mut last: Option<(String, String, Version, HistoryRecord)> = None;
        for item in self.ledger.trees()?.history.iter() {
            let (k, v) = item.map_err(LedgerError::storage("scan history"))?;
            let parsed = format::parse_history_key(&k)
                .and_then(|(ns, key, ver)| Ok((ns, key, ver, HistoryRecord::decode(&k, &v)?)));
            let (ns, key, version, record) = match parsed {
                Ok(p) => p,
                Err(e) => {
                    self.problem(None, e.to_string());
                    continue;
                }
            };
            self.report.history_entries += 1;
            let block = Some(version.block);
            if !self.is_valid_tx(version) {
                self.problem(
                    block,
                    format!(
                        "history of {ns}/{key:?} at tx {} which is not VALID",
                        version.tx
                    ),
                );
            }
            match self.ledger.tx(&record.tx_id) {
                // A transaction without a tx id (e.g. config) is not indexed.
                _ if record.tx_id.is_empty() => {}
                Ok(Some(loc)) if (loc.block, loc.position) == (version.block, version.tx) => {}
                Ok(_) => self.problem(
                    block,
                    format!(
                        "history of {ns}/{key:?}: tx id {} is not indexed there",
                        record.tx_id
                    ),
                ),
                Err(e) => self.problem(block, e.to_string()),
            }
            if let Some(prev) = last.take()
                && (prev.0 != ns || prev.1 != key)
            {
                self.end_of_key(prev)?;
            }
            last = Some((ns, key, version, record));
        }
        if let Some(prev) = last {
            self.end_of_key(prev)?;
        }
        Ok(())
    }

    /// Compares a key's last history entry with its state.
    fn end_of_key(
        &mut self,
        (ns, key, version, last): (String, String, Version, HistoryRecord),
    ) -> Result<(), LedgerError> {
        let block = Some(version.block);
        let state = match crate::ledger::state::record(&self.ledger.trees()?, &ns, &key) {
            Ok(s) => s,
            Err(LedgerError::Storage { op, source }) => {
                return Err(LedgerError::Storage { op, source });
            }
            Err(e) => {
                self.problem(block, e.to_string());
                return Ok(());
            }
        };
        match (last.is_delete, state) {
            (true, None) => {}
            (true, Some(_)) => self.problem(
                block,
                format!("{ns}/{key:?} was deleted but is in the state"),
            ),
            (false, None) => self.problem(
                block,
                format!("{ns}/{key:?} was written but is not in the state"),
            ),
            (false, Some(s)) => {
                self.live_keys += 1;
                if s.value != last.value {
                    self.problem(
                        block,
                        format!("{ns}/{key:?}: state value differs from its last write"),
                    );
                }
                if s.version < version {
                    self.problem(
                        block,
                        format!("{ns}/{key:?}: state version is older than its last write"),
                    );
                }
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<(), LedgerError> {
        let mut hasher = StateHasher::new();
        for item in self.ledger.trees()?.state.iter() {
            let (k, v) = item.map_err(LedgerError::storage("scan state"))?;
            let parsed = format::parse_state_key(&k)
                .and_then(|(ns, key)| Ok((ns, key, StateRecord::decode(&k, &v)?)));
            let (ns, key, record) = match parsed {
                Ok(p) => p,
                Err(e) => {
                    self.problem(None, e.to_string());
                    continue;
                }
            };
            self.report.state_keys += 1;
            if !self.is_valid_tx(record.version) {
                self.problem(
                    Some(record.version.block),
                    format!(
                        "{ns}/{key:?}: version tx {} is not a VALID transaction",
                        record.version.tx
                    ),
                );
            }
            hasher.add(&ns, &key, &record);
        }
        self.report.state_hash = hasher.finish();
        if self.report.state_keys != self.live_keys {
            self.problem(
                None,
                format!(
                    "state has {} keys but history accounts for {}",
                    self.report.state_keys, self.live_keys
                ),
            );
        }
        Ok(())
    }
}
