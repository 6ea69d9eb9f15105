//! Anchoring the consortium's history on the public QCSS chain: the pure
//! core that the peers, the public chain and the bridge share.
//!
//! - [`hash`]: the 32-byte digest type and domain-separated SHA-256 used by
//!   the public chain and by anchoring.
//! - [`mmr`]: a Merkle mountain range over the consortium's block hashes,
//!   with inclusion proofs (block → root) and consistency proofs (old root →
//!   new root: the consortium only appended).
//! - [`statement`]: the anchor statement a quorum of the consortium's orgs
//!   signs, and the consortium id that binds it to one channel.
//! - [`reward`]: the digest the same quorum signs for a consumer reward
//!   batch the public chain pays.
//!
//! No I/O here: peers keep the MMR's nodes in sled through [`mmr::NodeStore`],
//! the public chain checks statements in `qcss-dpos`, and the bridge loop
//! and proof files live in the CLI (`qcss anchor …`).
#![warn(missing_docs)]
// Unwraps only in tests (clippy.toml allows them there): a node reports
// what went wrong instead of panicking.
#![deny(clippy::unwrap_used)]

pub mod hash;
pub mod mmr;
pub mod reward;
pub mod statement;

pub use hash::{Hash32, hash_parts};
