//! [`LedgerError`]: everything the ledger can refuse or fail at.
//!
//! Three families: the store itself failed (`Open`, `Storage`); what is on
//! disk is damaged (`Corrupt`, `UnsupportedFormat`); or a caller handed in a
//! block or updates that the ledger refuses (every other variant). A refused
//! block changes nothing. An invalid *transaction* is not an error: it is a
//! validation code in [`crate::ledger::TxUpdate::code`].

use std::path::PathBuf;

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The sled database in `path` could not be opened: unreadable files,
    /// missing permissions, or another process (or handle) holds it.
    #[error("cannot open ledger at {}: {source}", path.display())]
    Open {
        /// The ledger directory.
        path: PathBuf,
        /// What sled reported.
        #[source]
        source: sled::Error,
    },
    /// A read, write, transaction or flush of the store failed (I/O). After a
    /// failed flush the block is visible but may not be durable: stop the
    /// peer and reopen.
    #[error("ledger storage failed during {op}: {source}")]
    Storage {
        /// The operation that failed (e.g. `"commit transaction"`).
        op: &'static str,
        /// What sled reported.
        #[source]
        source: sled::Error,
    },
    /// Stored data does not decode, or contradicts other stored data: the
    /// ledger directory is damaged (or was written by something else).
    #[error("ledger data corrupt in tree `{tree}` at key {key}: {reason}")]
    Corrupt {
        /// The sled tree (`meta`, `blocks`, `state`, `history`, `txids`).
        tree: &'static str,
        /// The key concerned, hex.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Block `number` is damaged on disk: its bytes do not decode, or do
    /// not hash to what the chain records (its successor's previous hash,
    /// its own data hash, or the recorded last hash). It is never served;
    /// the peer re-fetches it from the ordering service.
    #[error("block {number} is corrupt on disk: {reason}")]
    CorruptBlock {
        /// The block number.
        number: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The store cannot be used right now: it failed with an I/O error
    /// (sled's errors are sticky) and has not been reopened yet, or a
    /// reopen is under way.
    #[error("ledger unavailable: {reason}")]
    Unavailable {
        /// Why, including the store's error.
        reason: String,
    },
    /// A block offered to repair a damaged one is not that block: its
    /// header hash, number or data hash does not match the chain.
    #[error("block {number} cannot be repaired with the block offered: {reason}")]
    RepairRefused {
        /// The block number.
        number: u64,
        /// What does not match.
        reason: String,
    },
    /// The directory holds a ledger in an on-disk format this build does not
    /// read (see `format.rs`).
    #[error("ledger format {found} is not supported (this build reads format {supported})")]
    UnsupportedFormat {
        /// The format recorded in the ledger.
        found: u32,
        /// The format this build reads and writes.
        supported: u32,
    },
    /// The block has no header, so it has no number, link or data hash.
    #[error("block refused: it has no header (the ledger expects block {expected})")]
    MissingHeader {
        /// The block number the ledger expected (its height).
        expected: u64,
    },
    /// The block's number is not the ledger's height (a gap or a repeat).
    #[error("block {number} refused: the ledger expects block {expected}")]
    WrongNumber {
        /// The number in the block header.
        number: u64,
        /// The ledger height, i.e. the only number it accepts.
        expected: u64,
    },
    /// `previous_hash` is not the header hash of the last committed block
    /// (for block 0: not empty).
    #[error("block {number} refused: previous hash {found} does not link to {expected}")]
    BrokenLink {
        /// The block number.
        number: u64,
        /// The block's `previous_hash`, hex.
        found: String,
        /// The hash of the last committed block, hex (empty for block 0).
        expected: String,
    },
    /// `data_hash` is not the Merkle root of the block's envelopes.
    #[error("block {number} refused: data hash is not the Merkle root of its {txs} transactions")]
    DataHashMismatch {
        /// The block number.
        number: u64,
        /// How many envelopes the block carries.
        txs: usize,
    },
    /// The block carries more transactions than a position can number (2³²).
    #[error("block {number} refused: {txs} transactions is more than the ledger can index")]
    TooManyTransactions {
        /// The block number.
        number: u64,
        /// How many envelopes the block carries.
        txs: usize,
    },
    /// There is not exactly one [`crate::ledger::TxUpdate`] per envelope.
    #[error("block {number} refused: {txs} transactions but {updates} updates")]
    UpdateCountMismatch {
        /// The block number.
        number: u64,
        /// How many envelopes the block carries.
        txs: usize,
        /// How many updates were given.
        updates: usize,
    },
    /// A transaction's update does not describe its envelope: the tx id or
    /// timestamp differs from the envelope's channel header, or the envelope
    /// has no readable channel header but the update is VALID or names a tx id.
    #[error("block {number} refused: update for transaction {position} ({tx_id:?}): {reason}")]
    TxHeaderMismatch {
        /// The block number.
        number: u64,
        /// The transaction's position in the block.
        position: u32,
        /// The tx id the update names.
        tx_id: String,
        /// What differs.
        reason: String,
    },
    /// A transaction marked VALID reuses a tx id already committed (or earlier
    /// in the same block). The validator must mark it `DUPLICATE_TXID`.
    #[error(
        "block {number} refused: transaction {position} ({tx_id}) is VALID but its tx id was \
         committed at block {first_block} position {first_position}"
    )]
    DuplicateValidTx {
        /// The block number.
        number: u64,
        /// The duplicate's position in the block.
        position: u32,
        /// The tx id.
        tx_id: String,
        /// Block of the first occurrence.
        first_block: u64,
        /// Position of the first occurrence.
        first_position: u32,
    },
    /// A VALID transaction writes a key the ledger cannot store: empty
    /// namespace, namespace containing 0x00, or empty key.
    #[error(
        "block {number} refused: transaction {position} ({tx_id}) writes {ns:?}/{key:?}: {reason}"
    )]
    InvalidWrite {
        /// The block number.
        number: u64,
        /// The transaction's position.
        position: u32,
        /// The tx id.
        tx_id: String,
        /// The namespace written.
        ns: String,
        /// The key written.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A query named a namespace that cannot exist (empty or containing 0x00).
    #[error("invalid namespace {ns:?}: {reason}")]
    InvalidNamespace {
        /// The namespace asked for.
        ns: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl LedgerError {
    /// A `Storage` error for `op`.
    pub(crate) fn storage(op: &'static str) -> impl FnOnce(sled::Error) -> LedgerError {
        move |source| LedgerError::Storage { op, source }
    }

    /// Whether this is a failure of the store itself (I/O), as opposed to
    /// a refusal or damaged data: after one, the store must be reopened.
    pub fn is_store_failure(&self) -> bool {
        matches!(
            self,
            LedgerError::Storage {
                source: sled::Error::Io(_) | sled::Error::ReportableBug(_),
                ..
            }
        )
    }

    /// Whether the store failed because the device is full (ENOSPC).
    pub fn is_disk_full(&self) -> bool {
        match self {
            LedgerError::Storage {
                source: sled::Error::Io(e),
                ..
            }
            | LedgerError::Open {
                source: sled::Error::Io(e),
                ..
            } => {
                e.kind() == std::io::ErrorKind::StorageFull
                    || e.raw_os_error() == Some(28)
                    || e.to_string().contains("No space left")
            }
            _ => false,
        }
    }

    /// A `Corrupt` error at `key` of `tree`.
    pub(crate) fn corrupt(
        tree: &'static str,
        key: &[u8],
        reason: impl Into<String>,
    ) -> LedgerError {
        LedgerError::Corrupt {
            tree,
            key: hex::encode(key),
            reason: reason.into(),
        }
    }
}
