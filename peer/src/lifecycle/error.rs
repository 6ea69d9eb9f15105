//! [`LifecycleError`]: why the lifecycle could not open, refresh, install a
//! package or decode an answer. A refused lifecycle *proposal* is an
//! [`crate::endorser::EndorseError::Lifecycle`] instead.

use std::path::PathBuf;

use qcss_chaincode::{InstallError, PackageError};

use crate::ledger::LedgerError;

/// Why a lifecycle operation failed. Each variant names the file, package
/// or answer concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// Reading or writing the package directory failed (the peer's fault).
    #[error("chaincode package store {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A package file in the store does not parse, or is not named after
    /// its code hash: the store was tampered with or damaged.
    #[error("chaincode package file {path} is damaged: {reason}")]
    DamagedPackage {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The bytes offered for install are not a valid package (the caller's
    /// fault).
    #[error("not a valid chaincode package: {0}")]
    Package(#[from] PackageError),
    /// The package's wasm module was refused by the runtime (the caller's
    /// fault: not a module the runtime can run).
    #[error("chaincode {name} {version}: the runtime refused its module: {source}")]
    Install {
        /// The package's chaincode name.
        name: String,
        /// Its version.
        version: String,
        /// The runtime's reason (boxed: it is large and rare).
        #[source]
        source: Box<InstallError>,
    },
    /// Reading the `_lifecycle` state failed (the peer's fault).
    #[error("reading the _lifecycle state: {0}")]
    Ledger(#[from] LedgerError),
    /// A lifecycle answer's payload does not decode (client side).
    #[error("cannot decode the {what} answer: {reason}")]
    Decode {
        /// The answer expected.
        what: &'static str,
        /// The JSON error.
        reason: String,
    },
}
