//! The public QCSS chain: a DPoS node where token holders elect 31 producers
//! that sign one block per slot in a per-round shuffled order, with
//! Casper FFG finality votes (production-implied irreversibility without),
//! and the QCSS token (transfers, burns, votes, locked rewards), including
//! consumer rewards paid from the DApp reward pool in batches a consortium's
//! anchor-key quorum signs ([`rewards`]).
//!
//! A [`node::Node`] does no I/O besides its sled store: a caller drives it
//! through `submit_tx`, `produce_if_scheduled`, `on_block`, `on_confirmation`
//! — the deterministic simulator in [`sim`], or [`runner::ChainNode`] over
//! tokio and gRPC with TLS ([`p2p`]). The CLI and metrics exposition live in
//! the `qcss` binary; the JSON API (with light-client headers) is [`api`].
//!
//! Main types: [`params::Genesis`], [`tx::SignedTx`], [`state::State`] (pure
//! transaction rules), [`chain::apply_block`] (pure block rules),
//! [`fork::ForkDb`] (fork choice and irreversibility), [`node::Node`],
//! [`store::Store`] (sled). Start reading at [`chain::apply_block`], then
//! [`fork::ForkDb::insert`]; `dpos/README.md` records the design decisions.
#![warn(missing_docs)]
// Unwraps only in tests (clippy.toml allows them there): a node reports
// what went wrong instead of panicking.
#![deny(clippy::unwrap_used)]

pub mod address;
pub mod anchor_proof;
pub mod api;
pub mod block;
pub mod chain;
pub mod codec;
mod consortia;
pub mod explorer;
pub mod fork;
pub mod hash;
pub mod node;
pub mod p2p;
pub mod params;
pub mod rewards;
pub mod runner;
pub mod schedule;
pub mod sim;
pub mod state;
pub mod store;
pub mod tx;
mod tx_error;

#[cfg(test)]
mod anchor_tests;
#[cfg(test)]
mod chain_tests;
#[cfg(test)]
mod reward_tests;
#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod testkit;
