//! The store: open, put, get, stat, delete, and quotas.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::confidential::{
    self, AEAD_TAG_LEN, Opener, OrgPublicKey, OrgSecretKey, PlainReader, Sealer,
};
use crate::disk::{self, Layout, ReadFailure};
use crate::manifest::{Encryption, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use crate::reader::FileReader;
use crate::{ChunkHash, Error, FileId, Limits, Manifest, MediaType, OrgId};

/// A content-addressed file store in one directory (layout in the README). Cheap to clone; safe to share
/// between threads. One `Store` per directory: opening empties `tmp/`.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    layout: Layout,
    limits: Limits,
    /// Serialises commits and deletes (the slow part of an upload, reading
    /// and staging its chunks, runs outside it).
    state: Mutex<State>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Bytes charged to each org.
    usage: BTreeMap<OrgId, u64>,
}

/// What [`Store::stat`] reports about a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stat {
    /// The file.
    pub id: FileId,
    /// Stored bytes (ciphertext for a confidential file).
    pub size: u64,
    /// Bytes of content (plaintext for a confidential file).
    pub plain_size: u64,
    /// Bytes per chunk.
    pub chunk_size: u32,
    /// Number of chunks.
    pub chunks: u32,
    /// What the file is.
    pub media_type: MediaType,
    /// For a confidential file, the orgs that may read it.
    pub readers: Option<Vec<OrgId>>,
}

/// Removes an upload's staging directory however the upload ends.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`. Temp files left by a
    /// crash are removed; usage per org is read from the owner records.
    pub fn open(dir: impl AsRef<Path>, limits: Limits) -> Result<Self, Error> {
        limits.check()?;
        let layout = Layout::new(dir.as_ref());
        for d in [layout.chunks(), layout.manifests(), layout.owners()] {
            fs::create_dir_all(&d).map_err(Error::io("create directory", &d))?;
        }
        let tmp = layout.tmp();
        match fs::remove_dir_all(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("clean", &tmp)(e)),
        }
        fs::create_dir_all(&tmp).map_err(Error::io("create directory", &tmp))?;
        let usage = read_usage(&layout)?;
        Ok(Self {
            inner: Arc::new(Inner {
                layout,
                limits,
                state: Mutex::new(State { usage }),
            }),
        })
    }

    /// The store's limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Bytes charged to `org`.
    pub fn usage(&self, org: &OrgId) -> u64 {
        self.lock().usage.get(org).copied().unwrap_or(0)
    }

    /// Stores a public file read from `reader`, charged to `owner`, and
    /// returns its id. Streams: one chunk is in memory at a time. Refused
    /// (with nothing kept) if it exceeds the limits or the owner's quota.
    pub fn put(
        &self,
        owner: &OrgId,
        reader: impl Read,
        media_type: &MediaType,
    ) -> Result<FileId, Error> {
        self.put_inner(
            owner,
            reader,
            media_type,
            None,
            self.inner.limits.chunk_size,
        )
    }

    /// Encrypts `reader` under a fresh random key (AES-256-GCM, one seal
    /// per chunk, nonce = chunk index), wraps that key for each of
    /// `readers`, and stores the ciphertext as [`put`](Self::put) does.
    pub fn put_confidential(
        &self,
        owner: &OrgId,
        reader: impl Read,
        media_type: &MediaType,
        readers: &[(OrgId, OrgPublicKey)],
    ) -> Result<FileId, Error> {
        let (file_key, encryption) = confidential::new_file_key(readers)?;
        let chunk_size = self.inner.limits.chunk_size;
        let sealer = Sealer::new(reader, &file_key, chunk_size)?;
        self.put_inner(owner, sealer, media_type, Some(encryption), chunk_size)
    }

    /// Stores a confidential file its uploader sealed ([`seal`](crate::confidential::seal)):
    /// `sealed` is the ciphertext in chunks of `chunk_size`, `encryption` the
    /// manifest's section with the wrapped keys. The store cannot check the
    /// ciphertext (it has no key); it checks the chunk size and that every
    /// chunk can hold a tag, and stores and serves the file as
    /// [`put_confidential`](Self::put_confidential)'s.
    pub fn put_sealed(
        &self,
        owner: &OrgId,
        sealed: impl Read,
        media_type: &MediaType,
        encryption: Encryption,
        chunk_size: u32,
    ) -> Result<FileId, Error> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(Error::ManifestInvalid(format!(
                "chunk size {chunk_size} is outside {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE}"
            )));
        }
        self.put_inner(owner, sealed, media_type, Some(encryption), chunk_size)
    }

    fn put_inner(
        &self,
        owner: &OrgId,
        mut reader: impl Read,
        media_type: &MediaType,
        encryption: Option<Encryption>,
        chunk_size: u32,
    ) -> Result<FileId, Error> {
        let layout = &self.inner.layout;
        let limits = &self.inner.limits;
        let quota = limits.quota(owner);
        let used = self.usage(owner);
        let staging = Staging(layout.temp("put"));
        fs::create_dir(&staging.0).map_err(Error::io("create directory", &staging.0))?;

        let mut chunks: Vec<ChunkHash> = Vec::new();
        let mut size: u64 = 0;
        let mut buf = vec![0u8; chunk_size as usize];
        loop {
            let n = fill(&mut reader, &mut buf).map_err(Error::Upload)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > limits.max_file_size {
                return Err(Error::TooLarge {
                    limit: limits.max_file_size,
                });
            }
            if chunks.len() >= limits.max_chunks as usize {
                return Err(Error::TooManyChunks {
                    limit: limits.max_chunks,
                });
            }
            // Stop streaming once the file alone exceeds the quota; whether
            // it fits beside what the org holds is decided at commit (a
            // file it already holds is not charged again).
            if let Some(quota) = quota
                && size > quota
            {
                return Err(Error::QuotaExceeded {
                    org: owner.clone(),
                    quota,
                    used,
                    adding: size,
                });
            }
            let chunk = &buf[..n];
            let path = staging.0.join(chunks.len().to_string());
            let mut f = File::create(&path).map_err(Error::io("create", &path))?;
            f.write_all(chunk).map_err(Error::io("write", &path))?;
            f.sync_all().map_err(Error::io("fsync", &path))?;
            chunks.push(ChunkHash::of(chunk));
            if n < buf.len() {
                break;
            }
        }
        let manifest = Manifest {
            size,
            chunk_size,
            media_type: media_type.clone(),
            encryption,
            chunks,
        };
        // A sealed upload's last chunk must hold its tag (ours always do;
        // a client's might not), or the manifest would not decode.
        let n = manifest.chunks.len() as u32;
        if manifest.encryption.is_some()
            && n > 0
            && manifest.chunk_len(n - 1) <= AEAD_TAG_LEN as u64
        {
            return Err(Error::ManifestInvalid(
                "the last sealed chunk is too short to hold its tag".to_owned(),
            ));
        }
        let bytes = manifest.encode();
        if bytes.len() > limits.max_manifest_bytes {
            return Err(Error::ManifestInvalid(format!(
                "{} bytes, more than the limit of {}",
                bytes.len(),
                limits.max_manifest_bytes
            )));
        }
        let id = FileId::of_manifest(&bytes);
        self.commit(owner, &staging.0, &manifest, &bytes, id)?;
        Ok(id)
    }

    /// Moves an upload's staged chunks into place, then writes its manifest
    /// and owner record, under the state lock. Order matters for crash
    /// safety: a manifest is never on disk before its chunks.
    fn commit(
        &self,
        owner: &OrgId,
        staging: &Path,
        manifest: &Manifest,
        bytes: &[u8],
        id: FileId,
    ) -> Result<(), Error> {
        let layout = &self.inner.layout;
        let mut state = self.lock();
        let owner_path = layout.owner(owner, &id);
        let charged = !owner_path.exists();
        let used = state.usage.get(owner).copied().unwrap_or(0);
        if charged
            && let Some(quota) = self.inner.limits.quota(owner)
            && used.saturating_add(manifest.size) > quota
        {
            return Err(Error::QuotaExceeded {
                org: owner.clone(),
                quota,
                used,
                adding: manifest.size,
            });
        }
        let mut dirs = BTreeSet::new();
        for (i, hash) in manifest.chunks.iter().enumerate() {
            let dest = layout.chunk(hash);
            let len = Some(manifest.chunk_len(i as u32));
            if disk::read_verified(&dest, hash, len).is_ok() {
                continue;
            }
            let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
            if !dirs.contains(&dir) {
                fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
            }
            let staged = staging.join(i.to_string());
            fs::rename(&staged, &dest).map_err(Error::io("rename into", &dest))?;
            dirs.insert(dir);
        }
        for dir in &dirs {
            disk::sync_dir(dir)?;
        }
        // Written unless a good copy is there (a damaged one is replaced).
        if self.manifest_bytes(&id).is_err() {
            disk::write_atomic(layout, &layout.manifest(&id), bytes)?;
        }
        if charged {
            disk::write_atomic(layout, &owner_path, &manifest.size.to_be_bytes())?;
            *state.usage.entry(owner.clone()).or_insert(0) += manifest.size;
        }
        Ok(())
    }

    /// Whether this store has the file's manifest (its chunks may still be
    /// damaged: [`verify`](Self::verify) reads them all).
    pub fn has(&self, id: &FileId) -> bool {
        self.inner.layout.manifest(id).exists()
    }

    /// The file's manifest, checked against its id and the limits.
    pub fn manifest(&self, id: &FileId) -> Result<Manifest, Error> {
        let bytes = self.manifest_bytes(id)?;
        Manifest::decode(&bytes, &self.inner.limits)
    }

    /// The file's canonical manifest bytes, checked to hash to `id`.
    pub fn manifest_bytes(&self, id: &FileId) -> Result<Vec<u8>, Error> {
        let path = self.inner.layout.manifest(id);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound(*id)),
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        let max = self.inner.limits.max_manifest_bytes;
        let mut bytes = Vec::new();
        file.take(max as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(Error::io("read", &path))?;
        let found = FileId::of_manifest(&bytes);
        if found != *id {
            return Err(Error::ManifestDamaged { file: *id, found });
        }
        Ok(bytes)
    }

    /// What the file is.
    pub fn stat(&self, id: &FileId) -> Result<Stat, Error> {
        let m = self.manifest(id)?;
        Ok(Stat {
            id: *id,
            size: m.size,
            plain_size: m.plain_size(),
            chunk_size: m.chunk_size,
            chunks: m.chunks.len() as u32,
            readers: m
                .encryption
                .as_ref()
                .map(|e| e.readers.iter().map(|r| r.org.clone()).collect()),
            media_type: m.media_type,
        })
    }

    /// A reader of the whole file (ciphertext for a confidential file).
    /// Each chunk is verified before any of its bytes is returned; a
    /// damaged chunk makes `read` fail with an `io::Error` wrapping
    /// [`Error::ChunkDamaged`].
    pub fn get(&self, id: &FileId) -> Result<FileReader, Error> {
        let m = self.manifest(id)?;
        let size = m.size;
        Ok(FileReader::new(self.inner.layout.clone(), *id, m, 0, size))
    }

    /// A reader of `len` bytes from `start`, verified as [`get`](Self::get).
    pub fn get_range(&self, id: &FileId, start: u64, len: u64) -> Result<FileReader, Error> {
        let m = self.manifest(id)?;
        if start.checked_add(len).is_none_or(|end| end > m.size) {
            return Err(Error::RangeOutOfBounds {
                file: *id,
                start,
                len,
                size: m.size,
            });
        }
        Ok(FileReader::new(
            self.inner.layout.clone(),
            *id,
            m,
            start,
            len,
        ))
    }

    /// A reader of a confidential file's plaintext, for `org` holding
    /// `key`. Refused if `org` is not a reader or `key` is not its key.
    pub fn open_confidential(
        &self,
        id: &FileId,
        org: &OrgId,
        key: &OrgSecretKey,
    ) -> Result<PlainReader, Error> {
        let m = self.manifest(id)?;
        let opener = Opener::new(*id, &m, org, key)?;
        let size = m.size;
        let inner = FileReader::new(self.inner.layout.clone(), *id, m, 0, size);
        Ok(PlainReader::new(inner, opener))
    }

    /// The ids of every file whose manifest is here.
    pub fn list(&self) -> Result<Vec<FileId>, Error> {
        let mut out = Vec::new();
        let root = self.inner.layout.manifests();
        for fan in read_dir(&root)? {
            for entry in read_dir(&fan)? {
                if let Some(id) = entry
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.parse::<FileId>().ok())
                {
                    out.push(id);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes a file: its manifest, its owner records (crediting their
    /// orgs), and the chunks no other manifest here uses. Scans every
    /// manifest, so it costs O(files).
    pub fn delete(&self, id: &FileId) -> Result<(), Error> {
        let layout = &self.inner.layout;
        let mut state = self.lock();
        let mpath = layout.manifest(id);
        if !mpath.exists() {
            return Err(Error::NotFound(*id));
        }
        // A damaged manifest still goes; its chunks are left (orphans).
        let mine: HashSet<ChunkHash> = self
            .manifest(id)
            .map(|m| m.chunks.into_iter().collect())
            .unwrap_or_default();
        fs::remove_file(&mpath).map_err(Error::io("remove", &mpath))?;
        for org_dir in read_dir(&layout.owners())? {
            let Some(org) = org_dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| OrgId::new(n).ok())
            else {
                continue;
            };
            let record = layout.owner(&org, id);
            if let Ok(size) = read_owner_record(&record) {
                fs::remove_file(&record).map_err(Error::io("remove", &record))?;
                if let Some(u) = state.usage.get_mut(&org) {
                    *u = u.saturating_sub(size);
                }
            }
        }
        let mut unused = mine;
        for other in self.list()? {
            if unused.is_empty() {
                break;
            }
            if let Ok(m) = self.manifest(&other) {
                for c in &m.chunks {
                    unused.remove(c);
                }
            }
        }
        for hash in unused {
            let p = layout.chunk(&hash);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &p)(e)),
            }
        }
        drop(state);
        Ok(())
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.inner.layout
    }

    /// Reads one chunk by hash, verified (used by [`ChunkSource`](crate::ChunkSource)).
    pub(crate) fn chunk_verified(
        &self,
        hash: &ChunkHash,
        len: Option<u64>,
    ) -> Result<Vec<u8>, ReadFailure> {
        disk::read_verified(&self.inner.layout.chunk(hash), hash, len)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves usage counters, which are
        // still meaningful; recover them.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Reads until `buf` is full or the reader ends; returns bytes read.
pub(crate) fn fill(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        out.push(entry.map_err(Error::io("list", dir))?.path());
    }
    Ok(out)
}

fn read_owner_record(path: &Path) -> Result<u64, Error> {
    let bytes = fs::read(path).map_err(Error::io("read", path))?;
    let arr: [u8; 8] = bytes.try_into().map_err(|_| {
        Error::io("read owner record", path)(std::io::ErrorKind::InvalidData.into())
    })?;
    Ok(u64::from_be_bytes(arr))
}

fn read_usage(layout: &Layout) -> Result<BTreeMap<OrgId, u64>, Error> {
    let mut usage = BTreeMap::new();
    for org_dir in read_dir(&layout.owners())? {
        let Some(org) = org_dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| OrgId::new(n).ok())
        else {
            continue;
        };
        let mut total: u64 = 0;
        for record in read_dir(&org_dir)? {
            total = total.saturating_add(read_owner_record(&record)?);
        }
        usage.insert(org, total);
    }
    Ok(usage)
}
