//! The QCSS chaincode runtime: runs WebAssembly contracts with wasmi for the
//! peer's endorser, deterministically and within limits.
//!
//! [`Runtime::install`] validates a module against the contract ABI
//! (`chaincode/ABI.md`) and caches it by [`CodeHash`]; [`Runtime::invoke`]
//! runs one transaction function against a [`StateView`] in a fresh store
//! (fuel and memory capped, see [`Limits`]) and returns a [`Simulation`]:
//! the response, the read-write set and the event. Failures are
//! [`InstallError`]s and [`InvokeError`]s, never panics.
//!
//! Deliberately absent: it never writes state, checks policies or signs
//! (the peer does), depends on no other QCSS crate (the peer maps its
//! identities into [`Caller`]), and offers contracts no clock, randomness
//! or I/O. [`package`] is the package file, [`bench`] the benchmark,
//! [`unit_code`] issues and checks unit codes offline (no ledger).
//! Start at `runtime.rs`; the host functions are all in `host.rs`.
#![warn(missing_docs)]
// Unwraps only in tests (clippy.toml allows them there): a node reports
// what went wrong instead of panicking.
#![deny(clippy::unwrap_used)]

pub mod bench;
mod code_hash;
mod error;
mod host;
mod invocation;
mod limits;
pub mod package;
mod runtime;
mod simulation;
mod state;
mod tx_context;
pub mod unit_code;

pub use code_hash::{CodeHash, ParseCodeHashError};
pub use error::{InstallError, InvokeError};
pub use invocation::{Caller, Invocation, Timestamp};
pub use limits::{Limit, Limits};
pub use package::{ChaincodePackage, PackageError};
pub use runtime::{FUNCTION_PREFIX, Runtime};
pub use simulation::{
    Event, KeyPolicyWrite, RangeRead, Read, Response, Simulation, Version, Write,
};
pub use state::{MemoryState, StateError, StateView, VersionedValue};
