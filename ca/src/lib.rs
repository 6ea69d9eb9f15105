//! The QCSS certificate authority: one per org, issuing the X.509 identities
//! every other node checks.
//!
//! [`authority::Authority`] holds the rules — registration by registrars,
//! enrollment with a secret and a client-made CSR (the CA never sees private
//! keys), reenrollment, revocation and numbered CRLs — over a sled
//! [`store::Store`] where every change is one atomic transaction and is
//! audited. [`server`] exposes it over gRPC with TLS (client certificates
//! optional: newcomers have none; identity comes from signed requests), and
//! [`client::CaClient`] is what `qcss ca ...` and tests use.
//!
//! The CA holds two roots: one for signing identities (MSP) and one for TLS.
//! Start reading at [`authority::Authority::open`].
#![warn(missing_docs)]
// Unwraps only in tests (clippy.toml allows them there): a node reports
// what went wrong instead of panicking.
#![deny(clippy::unwrap_used)]

pub mod authority;
pub mod client;
pub mod config;
pub mod error;
pub mod secret;
pub mod server;
pub mod store;

pub use authority::Authority;
pub use config::CaConfig;
pub use error::CaError;
