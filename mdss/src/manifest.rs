//! The manifest: what a file is made of, and the bytes its id hashes.
//!
//! # Encoding (version 1)
//!
//! All integers are unsigned big-endian, fixed width. `‖` is concatenation.
//!
//! ```text
//! manifest   = TAG ‖ size:u64 ‖ chunk_size:u32 ‖ mt_len:u8 ‖ media_type
//!              ‖ encryption ‖ n:u32 ‖ chunk_hash[0] ‖ … ‖ chunk_hash[n-1]
//! TAG        = "qcss/mdss/manifest/v1" (21 ASCII bytes, no terminator)
//! encryption = 0x00                                   (public file)
//!            | 0x01 ‖ aead:u8 ‖ r:u16 ‖ reader[0] ‖ … ‖ reader[r-1]
//! aead       = 0x01 (AES-256-GCM)
//! reader     = org_len:u8 ‖ org ‖ ephemeral_public:[32] ‖ wrapped_key:[48]
//! ```
//!
//! `size` is the number of stored bytes (ciphertext for a confidential
//! file); every chunk but the last is exactly `chunk_size` bytes, the last
//! is 1 to `chunk_size` bytes, and `n = ceil(size / chunk_size)` (an empty
//! file has no chunks). Readers are sorted by org id, without duplicates.
//! Decoding is strict (no trailing bytes, every rule above checked), so a
//! file has exactly one manifest encoding and one id:
//! `FileId = SHA-256(manifest)`. The tag separates manifest hashes from
//! every other SHA-256 in QCSS.

use crate::confidential::{AEAD_TAG_LEN, WRAPPED_KEY_LEN};
use crate::{ChunkHash, Error, FileId, Limits, MediaType, OrgId};

/// Domain tag that starts every version-1 manifest.
pub const MANIFEST_TAG: &[u8] = b"qcss/mdss/manifest/v1";
/// Smallest chunk size any manifest may declare.
pub const MIN_CHUNK_SIZE: u32 = 64;
/// Largest chunk size any manifest may declare (a chunk is held in memory
/// while it is verified).
pub const MAX_CHUNK_SIZE: u32 = 64 << 20;
/// Most readers a confidential file may list.
pub const MAX_READERS: usize = 256;

/// The AEAD a confidential file's chunks are sealed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Aead {
    /// AES-256-GCM (ring), 16-byte tag per chunk.
    Aes256Gcm,
}

impl Aead {
    fn code(self) -> u8 {
        match self {
            Self::Aes256Gcm => 1,
        }
    }
}

/// One org allowed to read a confidential file: the file key wrapped for
/// its X25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reader {
    /// The org.
    pub org: OrgId,
    /// The sender's ephemeral X25519 public key for this org.
    pub ephemeral_public: [u8; 32],
    /// The file key sealed under the key derived for this org.
    pub wrapped_key: [u8; WRAPPED_KEY_LEN],
}

/// How a confidential file is encrypted and who may read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encryption {
    /// The chunks' AEAD.
    pub aead: Aead,
    /// The readers, sorted by org id, without duplicates.
    pub readers: Vec<Reader>,
}

impl Encryption {
    /// This section as the manifest encodes it (from its `0x01` flag on):
    /// how a client that sealed a file itself hands it to a peer
    /// (`PutMeta.encryption`, `docs/files.md`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.readers.len() * (1 + 64 + 32 + 48));
        self.encode_into(&mut out);
        out
    }

    /// Decodes [`to_bytes`](Self::to_bytes) strictly (readers sorted, 1 to
    /// [`MAX_READERS`], no trailing bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Cursor { bytes, pos: 0 };
        if r.u8()? != 1 {
            return Err(Error::ManifestInvalid(
                "an encryption section starts with 0x01".to_owned(),
            ));
        }
        let e = Self::decode_body(&mut r)?;
        if r.remaining() != 0 {
            return Err(Error::ManifestInvalid(
                "trailing bytes after the encryption section".to_owned(),
            ));
        }
        Ok(e)
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(1);
        out.push(self.aead.code());
        // Lengths are bounded by the newtypes and MAX_READERS.
        out.extend_from_slice(&(self.readers.len() as u16).to_be_bytes());
        for r in &self.readers {
            out.push(r.org.as_str().len() as u8);
            out.extend_from_slice(r.org.as_str().as_bytes());
            out.extend_from_slice(&r.ephemeral_public);
            out.extend_from_slice(&r.wrapped_key);
        }
    }

    /// The section after its `0x01` flag.
    fn decode_body(r: &mut Cursor<'_>) -> Result<Self, Error> {
        let bad = |why: &str| Error::ManifestInvalid(why.to_owned());
        let aead = match r.u8()? {
            1 => Aead::Aes256Gcm,
            _ => return Err(bad("unknown AEAD")),
        };
        let count = usize::from(r.u16()?);
        if count == 0 || count > MAX_READERS {
            return Err(bad("reader count out of range"));
        }
        let mut readers: Vec<Reader> = Vec::with_capacity(count);
        for _ in 0..count {
            let org_len = usize::from(r.u8()?);
            let org = std::str::from_utf8(r.take(org_len)?).map_err(|_| bad("org id not UTF-8"))?;
            let org = OrgId::new(org)?;
            if readers.last().is_some_and(|last| last.org >= org) {
                return Err(bad("readers not sorted or repeated"));
            }
            readers.push(Reader {
                org,
                ephemeral_public: r.array()?,
                wrapped_key: r.array()?,
            });
        }
        Ok(Encryption { aead, readers })
    }

    /// The entry for `org`, if it is a reader.
    pub fn reader(&self, org: &OrgId) -> Option<&Reader> {
        self.readers
            .binary_search_by(|r| r.org.cmp(org))
            .ok()
            .and_then(|i| self.readers.get(i))
    }
}

/// What a file is made of. Built by the store on upload; decoded (with
/// limits) from bytes whose hash is the file id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Stored bytes (ciphertext for a confidential file).
    pub size: u64,
    /// Bytes per chunk (the last may be shorter).
    pub chunk_size: u32,
    /// What the file is.
    pub media_type: MediaType,
    /// Present for a confidential file.
    pub encryption: Option<Encryption>,
    /// The chunks' hashes, in order.
    pub chunks: Vec<ChunkHash>,
}

impl Manifest {
    /// The canonical encoding (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let readers = self.encryption.as_ref().map_or(0, |e| e.readers.len());
        let mut out = Vec::with_capacity(
            MANIFEST_TAG.len() + 64 + readers * (1 + 64 + 32 + 48) + self.chunks.len() * 32,
        );
        out.extend_from_slice(MANIFEST_TAG);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.chunk_size.to_be_bytes());
        // Lengths below are bounded by the newtypes and by `decode`'s
        // limits; `as` cannot truncate for a manifest this crate built.
        out.push(self.media_type.as_str().len() as u8);
        out.extend_from_slice(self.media_type.as_str().as_bytes());
        match &self.encryption {
            None => out.push(0),
            Some(e) => e.encode_into(&mut out),
        }
        out.extend_from_slice(&(self.chunks.len() as u32).to_be_bytes());
        for c in &self.chunks {
            out.extend_from_slice(&c.0);
        }
        out
    }

    /// The file id: SHA-256 of [`encode`](Self::encode).
    pub fn id(&self) -> FileId {
        FileId::of_manifest(&self.encode())
    }

    /// Decodes a manifest, refusing anything not canonical or beyond
    /// `limits` (its length is checked before any byte is read).
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, Error> {
        let bad = |why: &str| Error::ManifestInvalid(why.to_owned());
        if bytes.len() > limits.max_manifest_bytes {
            return Err(Error::ManifestInvalid(format!(
                "{} bytes, more than the limit of {}",
                bytes.len(),
                limits.max_manifest_bytes
            )));
        }
        let mut r = Cursor { bytes, pos: 0 };
        if r.take(MANIFEST_TAG.len())? != MANIFEST_TAG {
            return Err(bad("wrong domain tag"));
        }
        let size = r.u64()?;
        let chunk_size = r.u32()?;
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(bad("chunk size out of range"));
        }
        if size > limits.max_file_size {
            return Err(Error::TooLarge {
                limit: limits.max_file_size,
            });
        }
        let mt_len = usize::from(r.u8()?);
        let mt = std::str::from_utf8(r.take(mt_len)?).map_err(|_| bad("media type not UTF-8"))?;
        let media_type = MediaType::new(mt)?;
        let encryption = match r.u8()? {
            0 => None,
            1 => Some(Encryption::decode_body(&mut r)?),
            _ => return Err(bad("unknown encryption flag")),
        };
        let n = r.u32()?;
        if n > limits.max_chunks {
            return Err(Error::TooManyChunks {
                limit: limits.max_chunks,
            });
        }
        if u64::from(n) != size.div_ceil(u64::from(chunk_size)) {
            return Err(bad("chunk count does not match size"));
        }
        if encryption.is_some() && n > 0 {
            let last = size - u64::from(n - 1) * u64::from(chunk_size);
            if chunk_size as usize <= AEAD_TAG_LEN || last <= AEAD_TAG_LEN as u64 {
                return Err(bad("confidential chunk too short for its tag"));
            }
        }
        // n is bounded by max_chunks and by the remaining bytes.
        if r.remaining() != n as usize * 32 {
            return Err(bad("chunk list length does not match count"));
        }
        let mut chunks = Vec::with_capacity(n as usize);
        for _ in 0..n {
            chunks.push(ChunkHash(r.array()?));
        }
        Ok(Self {
            size,
            chunk_size,
            media_type,
            encryption,
            chunks,
        })
    }

    /// The stored length of chunk `index` (0 if out of range).
    pub fn chunk_len(&self, index: u32) -> u64 {
        let n = self.chunks.len() as u64;
        let i = u64::from(index);
        if i >= n {
            0
        } else if i + 1 < n {
            u64::from(self.chunk_size)
        } else {
            self.size - i * u64::from(self.chunk_size)
        }
    }

    /// The plaintext size: `size` for a public file, less one AEAD tag per
    /// chunk for a confidential one.
    pub fn plain_size(&self) -> u64 {
        match self.encryption {
            None => self.size,
            Some(_) => self.size - self.chunks.len() as u64 * AEAD_TAG_LEN as u64,
        }
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| Error::ManifestInvalid("truncated".to_owned()))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(size: u64, chunk_size: u32, chunks: Vec<ChunkHash>) -> Manifest {
        Manifest {
            size,
            chunk_size,
            media_type: MediaType::new("application/pdf").unwrap(),
            encryption: None,
            chunks,
        }
    }

    /// Golden vector: a 100-byte public PDF in 64-byte chunks. If this
    /// changes, every file id on every ledger changes: don't. The id was
    /// computed independently with Python's hashlib (see README).
    #[test]
    fn golden_vector() {
        let m = public(
            100,
            64,
            vec![ChunkHash::of(&[0xaa; 64]), ChunkHash::of(&[0xbb; 36])],
        );
        let bytes = m.encode();
        let expected = [
            hex::encode(MANIFEST_TAG),
            "0000000000000064".into(), // size 100
            "00000040".into(),         // chunk size 64
            "0f".into(),               // media type length 15
            hex::encode("application/pdf"),
            "00".into(),       // public
            "00000002".into(), // two chunks
            ChunkHash::of(&[0xaa; 64]).to_hex(),
            ChunkHash::of(&[0xbb; 36]).to_hex(),
        ]
        .concat();
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(
            m.id().to_hex(),
            "762509b18577705ac75db38f212f09ac46b1a634ad787409e4ef1d4980fb936a",
            "file id of the golden manifest"
        );
        assert_eq!(Manifest::decode(&bytes, &Limits::default()).unwrap(), m);
    }

    #[test]
    fn confidential_round_trip() {
        let mut m = public(100, 64, vec![ChunkHash::of(b"a"), ChunkHash::of(b"b")]);
        m.encryption = Some(Encryption {
            aead: Aead::Aes256Gcm,
            readers: vec![
                Reader {
                    org: OrgId::new("Lab").unwrap(),
                    ephemeral_public: [1; 32],
                    wrapped_key: [2; 48],
                },
                Reader {
                    org: OrgId::new("Org1").unwrap(),
                    ephemeral_public: [3; 32],
                    wrapped_key: [4; 48],
                },
            ],
        });
        let bytes = m.encode();
        assert_eq!(Manifest::decode(&bytes, &Limits::default()).unwrap(), m);
        // Readers out of order are not canonical.
        let mut swapped = m.clone();
        if let Some(e) = swapped.encryption.as_mut() {
            e.readers.reverse();
        }
        assert!(Manifest::decode(&swapped.encode(), &Limits::default()).is_err());
    }

    #[test]
    fn garbage_and_non_canonical_refused() {
        let limits = Limits::default();
        let good = public(100, 64, vec![ChunkHash::of(b"a"), ChunkHash::of(b"b")]).encode();
        assert!(Manifest::decode(b"", &limits).is_err());
        assert!(Manifest::decode(b"garbage garbage garbage garbage", &limits).is_err());
        // Every truncation and a trailing byte are refused.
        for cut in 0..good.len() {
            assert!(
                Manifest::decode(&good[..cut], &limits).is_err(),
                "cut {cut}"
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert!(Manifest::decode(&long, &limits).is_err());
        // Chunk count must match the size.
        assert!(
            Manifest::decode(
                &public(200, 64, vec![ChunkHash::of(b"a")]).encode(),
                &limits
            )
            .is_err()
        );
        // Chunk size below the minimum.
        assert!(
            Manifest::decode(&public(10, 8, vec![ChunkHash::of(b"a")]).encode(), &limits).is_err()
        );
        // Oversize manifest refused before decoding.
        let small = Limits {
            max_manifest_bytes: 32,
            ..Limits::default()
        };
        assert!(matches!(
            Manifest::decode(&good, &small),
            Err(Error::ManifestInvalid(_))
        ));
        // A huge declared chunk count is refused without allocating it.
        let mut huge = public(0, 64, vec![]).encode();
        let n = huge.len() - 4;
        huge[n..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Manifest::decode(&huge, &limits).is_err());
    }

    #[test]
    fn chunk_lengths() {
        let m = public(100, 64, vec![ChunkHash::of(b"a"), ChunkHash::of(b"b")]);
        assert_eq!(m.chunk_len(0), 64);
        assert_eq!(m.chunk_len(1), 36);
        assert_eq!(m.chunk_len(2), 0);
    }
}
