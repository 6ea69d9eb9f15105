//! Files the CLI reads and writes whole (key-set proposals, reward batch
//! files, IoT channel files and proofs): reads bounded before anything is
//! parsed, and rewrites that never leave a half-written file.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

/// The file's bytes, refused if it is over `max` bytes (`why` is appended
/// to that error, e.g. ": not a key-set proposal").
pub(crate) fn read_bounded(p: &Path, max: u64, why: &str) -> Result<Vec<u8>> {
    let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut out = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut out)
        .with_context(|| format!("reading {}", p.display()))?;
    if out.len() as u64 > max {
        bail!("{} is over {max} bytes{why}", p.display());
    }
    Ok(out)
}

/// Writes `body` to `path`, which must not exist yet, and syncs it.
pub(crate) fn write_new(path: &Path, body: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("writing {} (it must not exist yet)", path.display()))?;
    f.write_all(body)?;
    f.sync_all()?;
    Ok(())
}

/// Replaces `path` with `body` atomically: a temporary file in the same
/// folder, synced, then renamed over it (removed again on failure).
pub(crate) fn replace(path: &Path, body: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} names no file", path.display()))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
