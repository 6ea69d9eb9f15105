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
//! [`endorser`] checks a signed proposal (creator, signature, tx id, Writers
//! policy, chaincode committed and installed), runs the wasm chaincode
//! against a consistent [`ledger::StateView`] and signs Fabric's proposal
//! response; it also holds the client-side helpers (build a proposal,
//! assemble the endorsed transaction). [`validator`] checks every transaction
//! of a block (signatures in parallel across cores, then duplicates,
//! endorsement and key-level policies and MVCC in order) and its committer
//! verifies the orderer's block signature and calls [`ledger::Ledger::commit`].
//! Still to come: the peer node itself (Deliver pull from the orderers,
//! Fabric's `Gateway` and `Deliver` services, lifecycle). Start reading at
//! `ledger/mod.rs`, then `endorser/mod.rs` and `validator/mod.rs`.

pub mod endorser;
pub mod ledger;
pub mod validator;
