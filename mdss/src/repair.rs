//! Checking a file's chunks, and repairing them from another copy.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::disk::{self, ReadFailure};
use crate::{ChunkHash, Damage, Error, FileId, Manifest, Store};

/// Fetch rounds before [`Store::repair`] gives up on a file that keeps
/// losing chunks to concurrent deletes.
const REPAIR_ATTEMPTS: usize = 3;

/// Somewhere chunks and manifests can be fetched from: another store on
/// this machine, or (later) another org's peer over gRPC. The repairer
/// checks everything it returns, so a source need not be trusted.
pub trait ChunkSource {
    /// The canonical manifest bytes of `id`.
    fn manifest_bytes(&self, id: &FileId) -> Result<Vec<u8>, Error>;
    /// The bytes of the chunk named `hash`, read for a repair of `file`
    /// (which tells a remote source whose copy to repair if its own chunk
    /// turns out damaged).
    fn chunk(&self, file: &FileId, hash: &ChunkHash) -> Result<Vec<u8>, Error>;
}

/// A store serves only chunks it has verified.
impl ChunkSource for Store {
    fn manifest_bytes(&self, id: &FileId) -> Result<Vec<u8>, Error> {
        // The inherent method (same name, same answer).
        Store::manifest_bytes(self, id)
    }

    fn chunk(&self, _file: &FileId, hash: &ChunkHash) -> Result<Vec<u8>, Error> {
        self.served_chunk(hash)
    }
}

impl Store {
    /// The chunk named `hash`, verified, as this store serves it to another
    /// (a damaged copy is [`Error::SourceChunk`], never returned).
    pub fn served_chunk(&self, hash: &ChunkHash) -> Result<Vec<u8>, Error> {
        match self.chunk_verified(hash, None) {
            Ok(b) => Ok(b),
            Err(ReadFailure::Damaged(damage)) => Err(Error::SourceChunk {
                hash: *hash,
                damage,
            }),
            Err(ReadFailure::Io(e)) => Err(e),
        }
    }
}

/// One damaged chunk found by [`Store::verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DamagedChunk {
    /// Its position in the file.
    pub index: u32,
    /// Its name.
    pub hash: ChunkHash,
    /// What is wrong.
    #[serde(skip)]
    pub damage: Damage,
}

/// What [`Store::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The file.
    pub id: FileId,
    /// Chunks checked.
    pub chunks: u32,
    /// Chunks missing or damaged.
    pub damaged: Vec<DamagedChunk>,
}

impl VerifyReport {
    /// Whether every chunk is whole.
    pub fn is_intact(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// What [`Store::repair`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RepairReport {
    /// Chunks checked.
    pub chunks: u32,
    /// Chunks fetched and written.
    pub fetched: u32,
    /// Bytes fetched and written.
    pub bytes_fetched: u64,
    /// Whether the manifest itself was fetched.
    pub manifest_fetched: bool,
}

impl Store {
    /// Reads every chunk of a file and reports the damaged ones. Fails only
    /// if the manifest is missing or damaged, or the disk fails.
    pub fn verify(&self, id: &FileId) -> Result<VerifyReport, Error> {
        let whole = self.verify_paced(id, &mut |_| true)?;
        // A pace that never stops lets every chunk be read.
        Ok(whole.unwrap_or(VerifyReport {
            id: *id,
            chunks: 0,
            damaged: Vec::new(),
        }))
    }

    /// [`Store::verify`], calling `pace` with each chunk's length after
    /// reading it: a scrub sleeps there to hold a byte rate, and returns
    /// false to stop (then `None`: the file was not read to its end).
    pub fn verify_paced(
        &self,
        id: &FileId,
        pace: &mut dyn FnMut(u64) -> bool,
    ) -> Result<Option<VerifyReport>, Error> {
        let m = self.manifest(id)?;
        let mut damaged = Vec::new();
        for (i, hash) in m.chunks.iter().enumerate() {
            let index = i as u32;
            let len = m.chunk_len(index);
            match self.chunk_verified(hash, Some(len)) {
                Ok(_) => {}
                Err(ReadFailure::Damaged(damage)) => damaged.push(DamagedChunk {
                    index,
                    hash: *hash,
                    damage,
                }),
                Err(ReadFailure::Io(e)) => return Err(e),
            }
            if !pace(len) {
                return Ok(None);
            }
        }
        Ok(Some(VerifyReport {
            id: *id,
            chunks: m.chunks.len() as u32,
            damaged,
        }))
    }

    /// Makes this store's copy of `id` whole again from `from`: fetches the
    /// manifest if it is missing or damaged here, and every chunk missing
    /// or damaged here, checking each against its hash and length before
    /// writing it (atomically). A replica fetched this way is not charged
    /// to any org's quota.
    pub fn repair(&self, id: &FileId, from: &dyn ChunkSource) -> Result<RepairReport, Error> {
        let (manifest, fetched_manifest) = match self.manifest(id) {
            Ok(m) => (m, None),
            Err(Error::NotFound(_) | Error::ManifestDamaged { .. } | Error::ManifestInvalid(_)) => {
                let bytes = from.manifest_bytes(id)?;
                let found = FileId::of_manifest(&bytes);
                if found != *id {
                    return Err(Error::ManifestDamaged { file: *id, found });
                }
                (Manifest::decode(&bytes, self.limits())?, Some(bytes))
            }
            Err(e) => return Err(e),
        };
        let mut report = RepairReport {
            chunks: manifest.chunks.len() as u32,
            ..RepairReport::default()
        };
        // Fetching runs without the store's lock (a source may be slow); a
        // delete that removed a shared chunk meanwhile is caught by the
        // check under the lock, and the fetch is redone.
        for _ in 0..REPAIR_ATTEMPTS {
            self.fetch_missing(&manifest, from, &mut report)?;
            let _state = self.lock();
            let layout = self.layout();
            let whole = manifest.chunks.iter().enumerate().all(|(i, hash)| {
                std::fs::metadata(layout.chunk(hash))
                    .is_ok_and(|m| m.len() == manifest.chunk_len(i as u32))
            });
            if !whole {
                continue;
            }
            if let Some(bytes) = &fetched_manifest {
                disk::write_atomic(layout, &layout.manifest(id), bytes)?;
                report.manifest_fetched = true;
            }
            return Ok(report);
        }
        Err(Error::Contended(*id))
    }

    /// Fetches every chunk of `manifest` missing or damaged here, checks
    /// it, writes it, and fsyncs the directories written to.
    fn fetch_missing(
        &self,
        manifest: &Manifest,
        from: &dyn ChunkSource,
        report: &mut RepairReport,
    ) -> Result<(), Error> {
        let layout = self.layout();
        let mut dirs = BTreeSet::new();
        let file = manifest.id();
        for (i, hash) in manifest.chunks.iter().enumerate() {
            let len = manifest.chunk_len(i as u32);
            match self.chunk_verified(hash, Some(len)) {
                Ok(_) => continue,
                Err(ReadFailure::Io(e)) => return Err(e),
                Err(ReadFailure::Damaged(_)) => {}
            }
            let bytes = from.chunk(&file, hash)?;
            let found = ChunkHash::of(&bytes);
            if found != *hash {
                return Err(Error::SourceChunk {
                    hash: *hash,
                    damage: Damage::HashMismatch { found },
                });
            }
            if bytes.len() as u64 != len {
                // Unreachable unless SHA-256 collides; checked anyway.
                return Err(Error::SourceChunk {
                    hash: *hash,
                    damage: Damage::Truncated {
                        expected: len,
                        found: bytes.len() as u64,
                    },
                });
            }
            dirs.insert(disk::write_renamed(layout, &layout.chunk(hash), &bytes)?);
            report.fetched += 1;
            report.bytes_fetched += len;
        }
        // Chunks are durable before the manifest that names them.
        for dir in &dirs {
            disk::sync_dir(dir)?;
        }
        Ok(())
    }
}
