//! Reading a file back: every chunk is verified before any of it is served.

use std::io::{self, Read};

use crate::disk::{self, Layout, ReadFailure};
use crate::{Error, FileId, Manifest};

/// Streams a file, or a range of it, from a [`Store`](crate::Store). Each
/// chunk is read whole, checked against its hash and length, and only then
/// served; a damaged chunk makes [`Read::read`] fail with an `io::Error`
/// whose inner error is [`Error::ChunkDamaged`] (see [`Self::read_chunk`]
/// for the typed path).
#[derive(Debug)]
pub struct FileReader {
    layout: Layout,
    id: FileId,
    manifest: Manifest,
    /// Next chunk to load.
    next: u32,
    /// Bytes to skip at the start of the next chunk loaded (range reads).
    skip: u64,
    /// Bytes still to serve after `buf[pos..]`.
    remaining: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl FileReader {
    pub(crate) fn new(
        layout: Layout,
        id: FileId,
        manifest: Manifest,
        start: u64,
        len: u64,
    ) -> Self {
        let cs = u64::from(manifest.chunk_size);
        Self {
            layout,
            id,
            // start < size ≤ max_chunks * chunk_size, so the index fits u32.
            next: u32::try_from(start / cs).unwrap_or(u32::MAX),
            skip: start % cs,
            remaining: len,
            manifest,
            buf: Vec::new(),
            pos: 0,
        }
    }

    /// The file being read.
    pub fn id(&self) -> FileId {
        self.id
    }

    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Loads, verifies and returns the next chunk's bytes within the range
    /// (index and bytes), or `None` at the end. Bytes already buffered by
    /// [`Read::read`] are not returned again.
    pub fn read_chunk(&mut self) -> Result<Option<(u32, Vec<u8>)>, Error> {
        if self.pos < self.buf.len() {
            let rest = self.buf.split_off(self.pos);
            self.pos = 0;
            self.buf.clear();
            return Ok(Some((self.next.saturating_sub(1), rest)));
        }
        if self.remaining == 0 {
            return Ok(None);
        }
        let index = self.next;
        let hash = *self
            .manifest
            .chunks
            .get(index as usize)
            .ok_or_else(|| Error::ManifestInvalid("range past the last chunk".into()))?;
        let len = self.manifest.chunk_len(index);
        let path = self.layout.chunk(&hash);
        let mut bytes = match disk::read_verified(&path, &hash, Some(len)) {
            Ok(b) => b,
            Err(ReadFailure::Damaged(damage)) => {
                return Err(Error::ChunkDamaged {
                    file: self.id,
                    index,
                    hash,
                    damage,
                });
            }
            Err(ReadFailure::Io(e)) => return Err(e),
        };
        self.next += 1;
        // skip < chunk_size and remaining ≤ what is left of the file, so
        // both fit the chunk.
        let skip = usize::try_from(self.skip)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        self.skip = 0;
        bytes.drain(..skip);
        let take = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        bytes.truncate(take);
        self.remaining -= take as u64;
        Ok(Some((index, bytes)))
    }
}

impl Read for FileReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.buf.len() {
            match self.read_chunk().map_err(io::Error::other)? {
                None => return Ok(0),
                Some((_, bytes)) => {
                    self.buf = bytes;
                    self.pos = 0;
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
