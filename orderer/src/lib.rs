//! The QCSS ordering service: Raft (openraft) over sled, Fabric's
//! `AtomicBroadcast` (Broadcast and Deliver), block cutting.
//!
//! An envelope's path: [`broadcast`] checks it (size, signature, creator's
//! MSP and CRL, Writers policy, tx id) on whichever node received it (a
//! follower then [`forward`]s its bytes to the leader, which does not check
//! them again) → the leader's [`cutter`] gathers a
//! batch → Raft replicates the batch ([`raft`]) → every node applies it in
//! [`chain`], building the identical block → the sender gets SUCCESS →
//! [`deliver`] streams the block to readers. A `CONFIG_UPDATE` envelope
//! takes the same path, alone in its batch, and becomes a config block that
//! switches the channel to a new configuration ([`config_update`]); when it
//! changes the consenter set, the leader moves Raft membership to match
//! ([`membership`]).
//!
//! Deliberately not here: decoding transactions beyond their headers (the
//! orderer never looks into proposals or read-write sets), and any ledger
//! state other than blocks and the tx ids still inside the time window.
//! Start reading at [`node::run`].
#![warn(missing_docs)]
// Unwraps only in tests (clippy.toml allows them there): a node reports
// what went wrong instead of panicking.
#![deny(clippy::unwrap_used)]

pub mod broadcast;
pub mod chain;
pub mod config;
pub mod config_update;
pub mod crl_update;
pub mod cutter;
pub mod deliver;
pub mod error;
#[cfg(test)]
mod fixtures;
pub mod forward;
pub mod membership;
pub mod metrics;
pub mod node;
pub mod ops;
pub mod raft;
pub mod recent;
pub mod recovery;

pub use config::OrdererConfig;
pub use error::OrdererError;
