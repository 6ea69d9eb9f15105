//! The QCSS peer: keeps a channel's ledger and, later, endorses, validates and
//! serves clients.
//!
//! Built so far: [`ledger`], the peer's store in sled — blocks as committed
//! (with their validation codes), versioned world state with per-key
//! endorsement metadata, the history of every key, and the tx-id index — where
//! one block's commit is one atomic sled transaction followed by one fsync.
//! The ledger checks a block's chaining (number, previous hash, Merkle root)
//! but not its signatures or transactions: deciding which transactions are
//! valid is the validator's job, and the ledger only records that decision.
//!
//! Still to come, standing on [`ledger::Ledger`]: the endorser (runs wasm
//! chaincode against [`ledger::StateView`]), the validator and committer
//! (build [`ledger::BlockUpdates`] and call [`ledger::Ledger::commit`]), and
//! Fabric's `Gateway` and `Deliver` services. Start reading at
//! `ledger/mod.rs`, then `ledger/format.rs` for the on-disk layout.

pub mod endorser;
pub mod ledger;
pub mod validator;
