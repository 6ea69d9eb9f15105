//! MDSS, the off-ledger file store (white paper §3.4): inspection reports,
//! certificates, photos and videos kept beside the ledger, with only their
//! ids on it.
//!
//! A file is cut into fixed-size chunks, each stored under its SHA-256; its
//! id is the SHA-256 of a canonical, domain-separated [`Manifest`] (size,
//! chunk size, media type, encryption, chunk hashes). [`Store`] keeps files
//! in a directory (crash-safe writes, quotas, limits); every read checks
//! each chunk before serving it, and [`Store::repair`] re-fetches damaged
//! chunks from any [`ChunkSource`]. [`Replication`] says which orgs must
//! fetch a file. Confidential files are sealed with AES-256-GCM under a
//! per-file key wrapped for each reader org's X25519 key ([`confidential`]).
//!
//! No network here: the peer serves a store over gRPC and HTTP
//! (`peer/src/node/files.rs`, `docs/files.md`); ledger references come
//! later. Start at [`Store`].
#![warn(missing_docs)]
// Unwraps only in tests (clippy.toml allows them there): a node reports
// what went wrong instead of panicking.
#![deny(clippy::unwrap_used)]

pub mod confidential;
mod disk;
mod error;
mod id;
mod limits;
pub mod manifest;
mod reader;
mod repair;
pub mod replication;
mod store;

pub use confidential::{
    Opener, OrgPublicKey, OrgSecretKey, PlainReader, Sealer, seal, sealed_size,
};
pub use error::{Damage, Error, Result};
pub use id::{ChunkHash, FileId, MAX_MEDIA_TYPE_LEN, MAX_ORG_ID_LEN, MediaType, OrgId};
pub use limits::{Limits, MAX_MANIFEST_BYTES};
pub use manifest::{Encryption, Manifest};
pub use reader::FileReader;
pub use repair::{ChunkSource, DamagedChunk, RepairReport, VerifyReport};
pub use replication::{Plan, Replication};
pub use store::{Stat, Store};
