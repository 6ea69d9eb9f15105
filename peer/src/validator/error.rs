//! [`ValidatorError`]: why a block could not be validated or committed at
//! all. An invalid *transaction* is never an error: it is a
//! [`TxValidationCode`](qcss_proto::protos::TxValidationCode) in the
//! [`BlockUpdates`](crate::ledger::BlockUpdates).

use qcss_network::block::BlockError;

use crate::ledger::LedgerError;

/// Why validating or committing a block failed as a whole. Nothing was
/// committed when this is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidatorError {
    /// Reading committed state, key metadata or the tx index failed (the
    /// peer's store is at fault, not the block).
    #[error("validating block {number}: reading committed state failed: {source}")]
    State {
        /// The block being validated.
        number: u64,
        /// What the ledger reported.
        #[source]
        source: LedgerError,
    },
    /// The block has no header, so it has no number to version writes with
    /// (the orderer or the caller is at fault).
    #[error("block refused: it has no header")]
    NoHeader,
    /// The block carries more transactions than a version can number (2³²).
    #[error("block {number} refused: {txs} transactions is more than a version can number")]
    TooManyTransactions {
        /// The block number.
        number: u64,
        /// How many envelopes it carries.
        txs: usize,
    },
    /// `commit_block`: the block is not signed by a consenter of the channel,
    /// the signature is wrong, or its data is not what the signed header
    /// hashes (whoever delivered the block is at fault).
    #[error("block {number} refused: {source}")]
    BlockRefused {
        /// The block number (0 if the block has no header).
        number: u64,
        /// What the block check reported.
        #[source]
        source: BlockError,
    },
    /// `commit_block`: the orderers certify, in the block's signed metadata,
    /// an anchoring MMR root over the earlier blocks that is not the one this
    /// peer's ledger gives: the ordering service's history and this ledger's
    /// differ, so the block is not committed.
    #[error(
        "block {number} refused: the orderers certify MMR root {certified} over blocks 0…{number}−1, this ledger's is {ours}"
    )]
    MmrRootMismatch {
        /// The block number.
        number: u64,
        /// The root in the block's metadata, hex.
        certified: String,
        /// This ledger's root over the same blocks, hex.
        ours: String,
    },
    /// `commit_block`: the block is not the ledger's next block, so it cannot
    /// be validated against the current state.
    #[error("block {number} refused: the ledger expects block {height}")]
    NotNext {
        /// The block number.
        number: u64,
        /// The ledger height (the only number it accepts).
        height: u64,
    },
    /// `commit_genesis`: the block is not the channel's genesis block.
    #[error("block {number} refused as genesis: {reason}")]
    NotGenesis {
        /// The block number.
        number: u64,
        /// What is wrong.
        reason: String,
    },
    /// The ledger refused the validated block (chaining, data hash) or
    /// failed to write it.
    #[error("committing block {number} failed: {source}")]
    Commit {
        /// The block number.
        number: u64,
        /// What the ledger reported.
        #[source]
        source: LedgerError,
    },
}
