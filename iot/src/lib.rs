//! IoT state channels (white paper §3.8): a device and a gateway exchange
//! readings off the ledger, both sign the running [`State`] after every
//! update, and the ledger sees only the final state — or, in a dispute, the
//! latest state either side can show — while any single reading stays
//! provable against the settled root.
//!
//! - [`params`]: what a channel binds ([`ChannelParams`]: ledger, device and
//!   gateway keys, batch, [`Schema`] with limits, challenge window, nonce)
//!   and the [`ChannelId`] that commits to all of it.
//! - [`reading`] and [`state`]: the canonical, versioned byte encodings and
//!   the domain-separated messages each party signs.
//! - [`channel`]: [`Channel`], the running state plus the Merkle mountain
//!   range's peaks — all a device has to keep; the gateway runs the same
//!   code and checks every update against it.
//! - [`proof`]: one reading's inclusion proof against a settled root.
//! - [`wire`]: the bounded, length-prefixed device ⇄ gateway messages.
//! - `keys` (feature `keys`, on by default): Ed25519 signing and strict
//!   verification.
//!
//! No I/O and no clock: the CLI (`qcss iot`) runs the socket, and the
//! traceability contract (which compiles this crate for wasm32 without
//! `keys`, verifying with its host's Ed25519) runs the dispute rules.
//! Start at [`Channel::apply`]. The protocol is in `docs/iot.md`.
#![warn(missing_docs)]
// Unwraps only in tests (clippy.toml allows them there): a node reports
// what went wrong instead of panicking.
#![deny(clippy::unwrap_used)]

pub mod channel;
mod encode;
mod error;
#[cfg(feature = "keys")]
pub mod keys;
pub mod params;
pub mod proof;
pub mod reading;
pub mod state;
pub mod wire;

pub use channel::Channel;
pub use error::IotError;
pub use params::{ChannelId, ChannelParams, Measure, PublicKey, Schema};
pub use proof::ReadingProof;
pub use qcss_anchor::Hash32;
pub use reading::Reading;
pub use state::{Party, Signature, SignedState, State};

#[cfg(test)]
mod tests;
