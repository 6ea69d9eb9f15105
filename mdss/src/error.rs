//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use crate::{ChunkHash, FileId, OrgId};

/// What is wrong with a stored chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// The chunk is not on disk (or not at the source).
    Missing,
    /// The chunk is shorter than the manifest says.
    Truncated {
        /// Length the manifest gives.
        expected: u64,
        /// Length found.
        found: u64,
    },
    /// The chunk is longer than the manifest says.
    Extended {
        /// Length the manifest gives.
        expected: u64,
    },
    /// The chunk's bytes do not hash to its name.
    HashMismatch {
        /// What the bytes hash to.
        found: ChunkHash,
    },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("missing"),
            Self::Truncated { expected, found } => {
                write!(f, "truncated ({found} of {expected} bytes)")
            }
            Self::Extended { expected } => write!(f, "longer than its {expected} bytes"),
            Self::HashMismatch { found } => write!(f, "bytes hash to {found}"),
        }
    }
}

/// Everything MDSS can refuse or fail at. Each variant names the file,
/// chunk, org or path concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// This store's disk failed (the store's fault, not the caller's).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The uploader's reader failed.
    #[error("reading the upload: {0}")]
    Upload(#[source] io::Error),
    /// No manifest for this file here.
    #[error("file {0} is not in this store")]
    NotFound(FileId),
    /// A chunk of a file is damaged; nothing of it was served.
    #[error("chunk {index} ({hash}) of file {file} is {damage}")]
    ChunkDamaged {
        /// The file being read.
        file: FileId,
        /// The chunk's position in the file.
        index: u32,
        /// The chunk's name.
        hash: ChunkHash,
        /// What is wrong.
        damage: Damage,
    },
    /// A chunk asked of a [`ChunkSource`](crate::ChunkSource) is damaged or
    /// absent there, or what it returned does not hash to what was asked.
    #[error("chunk {hash} from the source is {damage}")]
    SourceChunk {
        /// The chunk asked for.
        hash: ChunkHash,
        /// What is wrong with it.
        damage: Damage,
    },
    /// The stored (or fetched) manifest of a file does not hash to its id.
    #[error("manifest of file {file} is damaged: it hashes to {found}")]
    ManifestDamaged {
        /// The file.
        file: FileId,
        /// What the manifest bytes hash to.
        found: FileId,
    },
    /// Manifest bytes are not a canonical manifest within the limits.
    #[error("invalid manifest: {0}")]
    ManifestInvalid(String),
    /// An upload is larger than the store's maximum file size.
    #[error("file too large: more than {limit} bytes")]
    TooLarge {
        /// The maximum file size.
        limit: u64,
    },
    /// An upload has more chunks than the store allows.
    #[error("file has more than {limit} chunks")]
    TooManyChunks {
        /// The maximum number of chunks.
        limit: u32,
    },
    /// An org's upload would take it over its quota. Nothing was kept.
    #[error("org {org} would exceed its quota of {quota} bytes ({used} used, adding {adding})")]
    QuotaExceeded {
        /// The org charged.
        org: OrgId,
        /// Its quota.
        quota: u64,
        /// Bytes it already holds.
        used: u64,
        /// Bytes read of the refused upload so far.
        adding: u64,
    },
    /// A range read past the end of a file.
    #[error("range {start}+{len} is beyond the end of file {file} ({size} bytes)")]
    RangeOutOfBounds {
        /// The file.
        file: FileId,
        /// Start of the range.
        start: u64,
        /// Length of the range.
        len: u64,
        /// The file's size.
        size: u64,
    },
    /// Not a valid org id.
    #[error("invalid org id {0:?}")]
    InvalidOrgId(String),
    /// Not a valid media type.
    #[error("invalid media type {0:?}")]
    InvalidMediaType(String),
    /// Not a 64-digit hex SHA-256.
    #[error("invalid hash {0:?}")]
    InvalidHash(String),
    /// The store's limits are inconsistent.
    #[error("invalid limits: {0}")]
    InvalidLimits(&'static str),
    /// An X25519 key that does not parse (64 hex digits expected).
    #[error("X25519 key: {0}")]
    InvalidKey(String),
    /// A confidential operation on a public file.
    #[error("file {0} is not confidential")]
    NotConfidential(FileId),
    /// The org is not among a confidential file's readers.
    #[error("org {org} is not a reader of file {file}")]
    NotAReader {
        /// The file.
        file: FileId,
        /// The org that asked.
        org: OrgId,
    },
    /// The org is listed, but its key does not unwrap the file key (wrong
    /// private key, or a tampered wrapped key).
    #[error("org {org} cannot unwrap the key of file {file}")]
    KeyUnwrap {
        /// The file.
        file: FileId,
        /// The org that asked.
        org: OrgId,
    },
    /// A chunk of a confidential file failed authentication.
    #[error("chunk {index} of file {file} does not decrypt")]
    Decrypt {
        /// The file.
        file: FileId,
        /// The chunk's position.
        index: u32,
    },
    /// A repair kept finding chunks removed under it (the file, or one
    /// sharing its chunks, was being deleted); try again.
    #[error("file {0} changed while it was repaired")]
    Contended(FileId),
    /// A confidential file's reader list is empty, too long or repeats an org.
    #[error("invalid readers: {0}")]
    InvalidReaders(String),
    /// A public key or the system random generator was refused by ring.
    #[error("crypto: {0}")]
    Crypto(&'static str),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
