//! What every QCSS node and client shares about the consortium.
//!
//! - [`signing`]: ECDSA P-256 / SHA-256 keys and signatures, low-S as Fabric requires.
//! - [`identity`]: certificates as QCSS reads them — role (OU), attributes, key;
//!   serialized and signing identities.
//! - [`msp`]: an org's membership: chain, validity, key usage and CRL checks, cached.
//! - [`crl`]: who signed a CRL and its number (what a CRL-only config update checks).
//! - [`policy`]: signature and implicit-meta policies (`AND('Org1.peer', ...)`, `MAJORITY Admins`).
//! - [`tls`]: mutual TLS for tonic servers (with CRLs, hot-reloadable) and clients.
//! - [`store`]: the sled settings the peer's ledger and the orderer's store share.
//! - [`clock`]: calendar dates of ledger times (UTC or a fixed `±hh:mm` offset).
//! - [`grpc`], [`slots`], [`log_limit`]: what every server puts between
//!   strangers and its services (bounded status messages, connection caps
//!   that evict the oldest, rate-limited log lines).
//! - [`ports`]: ports for nodes about to start on this machine, below the
//!   kernel's ephemeral range (network up, benches, tests).
//!
//! This crate does no networking of its own beyond building TLS configurations,
//! and holds no ledger state. Start with [`msp::Msp::validate`] and [`tls::incoming`].
#![warn(missing_docs)]
// Unwraps only in tests (clippy.toml allows them there): a node reports
// what went wrong instead of panicking.
#![deny(clippy::unwrap_used)]

pub mod block;
pub mod certgen;
pub mod channel;
pub mod clock;
pub mod crl;
pub mod deliver;
pub mod envelope;
pub mod grpc;
pub mod identity;
pub mod identity_watch;
pub mod log_limit;
pub mod msp;
pub mod ops;
pub mod orderer_client;
pub mod policy;
pub mod ports;
pub mod role;
pub mod signing;
pub mod slots;
pub mod store;
pub mod tls;

pub use identity::{CertInfo, MspId, SerializedIdentity, SigningIdentity};
pub use role::Role;
