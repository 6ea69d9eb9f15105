//! Raft (openraft 0.9) for the ordering service: what is replicated, how
//! it is stored, and how nodes talk.
//!
//! - [`types`]: the openraft type configuration; a log entry carries a
//!   [`types::Batch`] of envelopes the leader cut.
//! - [`log_store`]: the Raft log and vote in sled, flushed once per appended
//!   batch of entries.
//! - [`state_machine`]: applies committed batches by building, signing and
//!   storing blocks (see `crate::chain`); snapshots.
//! - [`network`]: the tonic client other nodes are reached with;
//!   [`service`]: the server side, which admits only consenters.
//! - [`prevote`]: elections only after a majority says it would vote, so a
//!   node back from a pause cannot depose a healthy leader.

// openraft's trait signatures fix the error type (`StorageError`, ~224 bytes);
// boxing it in our helpers would only add conversions at every call.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod network;
pub mod prevote;
pub mod service;
pub mod state_machine;
pub mod types;

#[cfg(test)]
mod suite_tests;
