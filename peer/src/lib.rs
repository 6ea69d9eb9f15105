//! The QCSS peer: keeps a channel's ledger, endorses, validates and commits,
//! and serves clients through Fabric's Gateway.
//!
//! [`ledger`], the peer's store in sled — blocks as committed
//! (with their validation codes), versioned world state with per-key
//! endorsement metadata, the history of every key, and the tx-id index — where
//! one block's commit is one atomic sled transaction followed by one fsync.
//! The ledger checks a block's chaining (number, previous hash, Merkle root)
//! but not its signatures or transactions: deciding which transactions are
//! valid is the validator's job, and the ledger only records that decision.
//! It checks every block it reads against the chain, records damage, and
//! takes a repaired block or rebuilds its derived state when the node asks
//! (`node/integrity.rs` fetches and schedules; issue 15).
//!
//! [`endorser`] checks a signed proposal (creator, signature, tx id, Writers
//! policy, chaincode committed and installed), runs the wasm chaincode
//! against a consistent [`ledger::StateView`] and signs Fabric's proposal
//! response; it also holds the client-side helpers (build a proposal,
//! assemble the endorsed transaction). [`validator`] checks every transaction
//! of a block (signatures in parallel across cores, then duplicates,
//! endorsement and key-level policies and MVCC in order) and its committer
//! verifies the orderer's block signature and calls [`ledger::Ledger::commit`].
//!
//! [`lifecycle`] is Fabric's `_lifecycle`, run natively by the endorser:
//! an org admin installs a package on their peer (stored on disk, reloaded
//! at start), each org approves a chaincode definition (name, version,
//! sequence, code hash, endorsement policy) and, once the approving orgs
//! satisfy the channel's lifecycle policy (MAJORITY by default), anyone
//! commits it — approvals and commits being ordinary transactions, whose
//! `_lifecycle` writes the validator checks per key (an org's approval needs
//! that org's peer and admin; a definition, the lifecycle policy). After
//! each block, [`lifecycle::Lifecycle::refresh`] updates the definitions
//! the endorser runs and the policies the validator applies.
//!
//! [`node`] is the peer process: it pulls blocks from the orderers, commits
//! them, and serves Fabric's `Gateway`, `Endorser` and `Deliver` services
//! and the `qscc` queries over mTLS; [`client`] is the Gateway's client
//! side; [`web`] serves, when configured, the consumer verification page,
//! the ledger explorer and a read-only JSON API over HTTP(S). Start reading
//! at `ledger/mod.rs`, then `endorser/mod.rs`, `validator/mod.rs` and
//! `node/mod.rs`.
#![warn(missing_docs)]
// Unwraps only in tests (clippy.toml allows them there): a node reports
// what went wrong instead of panicking.
#![deny(clippy::unwrap_used)]

pub mod client;
pub mod endorser;
pub mod ledger;
pub mod lifecycle;
pub mod node;
pub mod validator;
pub mod web;
