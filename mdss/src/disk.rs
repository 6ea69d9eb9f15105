//! Where things are on disk, and the two disk primitives everything else
//! uses: an atomic, durable write and a verified chunk read.
//!
//! ```text
//! <root>/chunks/<hh>/<sha256 hex>      chunk bytes, <hh> = first two hex digits
//! <root>/manifests/<hh>/<file id hex>  canonical manifest bytes
//! <root>/owners/<org>/<file id hex>    8 bytes: the size charged to <org>
//! <root>/tmp/                          temp files and uploads being staged;
//!                                      emptied when the store opens
//! ```

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::manifest::MAX_CHUNK_SIZE;
use crate::{ChunkHash, Damage, Error, FileId, OrgId};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
    pub(crate) fn chunks(&self) -> PathBuf {
        self.root.join("chunks")
    }
    pub(crate) fn manifests(&self) -> PathBuf {
        self.root.join("manifests")
    }
    pub(crate) fn owners(&self) -> PathBuf {
        self.root.join("owners")
    }
    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub(crate) fn chunk(&self, hash: &ChunkHash) -> PathBuf {
        let h = hash.to_hex();
        self.chunks().join(&h[..2]).join(h)
    }
    pub(crate) fn manifest(&self, id: &FileId) -> PathBuf {
        let h = id.to_hex();
        self.manifests().join(&h[..2]).join(h)
    }
    pub(crate) fn owner(&self, org: &OrgId, id: &FileId) -> PathBuf {
        self.owners().join(org.as_str()).join(id.to_hex())
    }
    /// A fresh name under `tmp/` (unique per process and call).
    pub(crate) fn temp(&self, what: &str) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp()
            .join(format!("{what}-{}-{n}", std::process::id()))
    }
}

/// Fsyncs a directory, so a rename into it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("fsync directory", dir))
}

/// Writes `bytes` to a temp file, fsyncs it, renames it to `dest` and
/// fsyncs `dest`'s directory: after a crash `dest` is either absent or
/// whole.
pub(crate) fn write_atomic(layout: &Layout, dest: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = write_renamed(layout, dest, bytes)?;
    sync_dir(&dir)
}

/// [`write_atomic`] without the directory fsync, which the caller does
/// once per directory (given back) before anything depends on `dest`.
pub(crate) fn write_renamed(layout: &Layout, dest: &Path, bytes: &[u8]) -> Result<PathBuf, Error> {
    let dir = dest
        .parent()
        .ok_or_else(|| Error::io("write", dest)(std::io::ErrorKind::InvalidInput.into()))?;
    let tmp = layout.temp("write");
    let result = (|| {
        let mut f = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        f.write_all(bytes).map_err(Error::io("write", &tmp))?;
        f.sync_all().map_err(Error::io("fsync", &tmp))?;
        fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
        fs::rename(&tmp, dest).map_err(Error::io("rename into", dest))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| dir.to_path_buf())
}

/// Why a verified read gave no bytes.
pub(crate) enum ReadFailure {
    /// The chunk is absent or damaged.
    Damaged(Damage),
    /// The disk failed.
    Io(Error),
}

/// Reads the chunk at `path` and checks it against `hash` (and against
/// `expected_len`, if known) before returning any of it. Reads at most one
/// byte more than the chunk may have.
pub(crate) fn read_verified(
    path: &Path,
    hash: &ChunkHash,
    expected_len: Option<u64>,
) -> Result<Vec<u8>, ReadFailure> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReadFailure::Damaged(Damage::Missing));
        }
        Err(e) => return Err(ReadFailure::Io(Error::io("open", path)(e))),
    };
    let bound = expected_len.unwrap_or(u64::from(MAX_CHUNK_SIZE));
    let mut buf = Vec::with_capacity(usize::try_from(bound).unwrap_or(0).saturating_add(1));
    file.take(bound + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ReadFailure::Io(Error::io("read", path)(e)))?;
    let found = buf.len() as u64;
    if found > bound {
        return Err(ReadFailure::Damaged(Damage::Extended { expected: bound }));
    }
    if let Some(expected) = expected_len
        && found < expected
    {
        return Err(ReadFailure::Damaged(Damage::Truncated { expected, found }));
    }
    let actual = ChunkHash::of(&buf);
    if actual != *hash {
        return Err(ReadFailure::Damaged(Damage::HashMismatch { found: actual }));
    }
    Ok(buf)
}
