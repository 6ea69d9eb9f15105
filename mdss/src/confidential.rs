//! Confidential files: encrypted before they are stored, the key wrapped
//! for each org allowed to read.
//!
//! - A fresh random 256-bit file key per file. Each chunk of
//!   `chunk_size − 16` plaintext bytes is sealed with AES-256-GCM (ring)
//!   into exactly `chunk_size` stored bytes; the nonce is the chunk index
//!   (`0u32 ‖ index:u64`, big-endian), never reused under one key; the AAD
//!   is `"qcss/mdss/chunk/v1"`. Chunk order, count and size are bound by the
//!   manifest, whose hash is the file id; chunk hashes are over ciphertext.
//! - For each reader org: an ephemeral X25519 key pair (ring), X25519 with
//!   the org's static public key, HKDF-SHA256 (salt `"qcss/mdss/wrap/v1"`,
//!   info `ephemeral_public ‖ org_public ‖ org_id`) to an AES-256-GCM
//!   wrapping key, which seals the file key (zero nonce: each wrapping key
//!   is used once; AAD = org id). 32 + 16 = 48 bytes per reader.
//! - Unwrapping uses the org's static X25519 secret with curve25519-dalek,
//!   because ring 0.17 has no static X25519 private keys.

use std::fmt;
use std::io::{self, Read};

use curve25519_dalek::montgomery::MontgomeryPoint;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

use crate::manifest::{Aead, Encryption, MAX_READERS, Manifest, Reader};
use crate::reader::FileReader;
use crate::{Error, FileId, OrgId};

/// Bytes an AES-256-GCM seal adds to each chunk.
pub const AEAD_TAG_LEN: usize = 16;
/// Bytes of a wrapped file key (32-byte key + tag).
pub const WRAPPED_KEY_LEN: usize = 32 + AEAD_TAG_LEN;
const CHUNK_AAD: &[u8] = b"qcss/mdss/chunk/v1";
const WRAP_SALT: &[u8] = b"qcss/mdss/wrap/v1";

/// An org's X25519 public key, to which file keys are wrapped.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrgPublicKey(pub [u8; 32]);

impl OrgPublicKey {
    /// The key from 64 hex digits (how the channel config publishes it).
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        parse_key_hex(s).map(Self)
    }

    /// The key as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

fn parse_key_hex(s: &str) -> Result<[u8; 32], Error> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(Error::InvalidKey(format!(
            "an X25519 key is 64 hex digits, not {} characters",
            s.len().min(1 << 20)
        )));
    }
    let bytes = hex::decode(s).map_err(|_| Error::InvalidKey("not hex".to_owned()))?;
    bytes
        .try_into()
        .map_err(|_| Error::InvalidKey("not 32 bytes".to_owned()))
}

impl fmt::Debug for OrgPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgPublicKey({})", hex::encode(self.0))
    }
}

/// An org's X25519 secret key, which unwraps file keys. `Debug` shows only
/// the public key.
#[derive(Clone)]
pub struct OrgSecretKey([u8; 32]);

impl OrgSecretKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, Error> {
        let mut b = [0u8; 32];
        SystemRandom::new()
            .fill(&mut b)
            .map_err(|_| Error::Crypto("system random generator failed"))?;
        Ok(Self(b))
    }

    /// A key from its 32 bytes (RFC 7748 scalar; clamped when used).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's 32 bytes, to be written to a 0600 key file.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The key from 64 hex digits (a key file `qcss files keygen` wrote).
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        parse_key_hex(s).map(Self)
    }

    /// The key as 64 hex digits, for a 0600 key file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The matching public key.
    pub fn public_key(&self) -> OrgPublicKey {
        OrgPublicKey(MontgomeryPoint::mul_base_clamped(self.0).to_bytes())
    }
}

impl fmt::Debug for OrgSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OrgSecretKey(public {})",
            hex::encode(self.public_key().0)
        )
    }
}

/// A random file key and the manifest's encryption section with that key
/// wrapped for each reader.
pub(crate) fn new_file_key(
    readers: &[(OrgId, OrgPublicKey)],
) -> Result<([u8; 32], Encryption), Error> {
    let mut sorted: Vec<&(OrgId, OrgPublicKey)> = readers.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted.dedup_by(|a, b| a.0 == b.0);
    if sorted.is_empty() || sorted.len() > MAX_READERS || sorted.len() != readers.len() {
        return Err(Error::InvalidReaders(format!(
            "{} readers given, {} distinct; 1 to {MAX_READERS} distinct orgs needed",
            readers.len(),
            sorted.len()
        )));
    }
    let rng = SystemRandom::new();
    let mut key = [0u8; 32];
    rng.fill(&mut key)
        .map_err(|_| Error::Crypto("system random generator failed"))?;
    let mut wrapped = Vec::with_capacity(sorted.len());
    for (org, public) in sorted {
        wrapped.push(wrap(&rng, &key, org, public)?);
    }
    Ok((
        key,
        Encryption {
            aead: Aead::Aes256Gcm,
            readers: wrapped,
        },
    ))
}

fn wrap(
    rng: &SystemRandom,
    file_key: &[u8; 32],
    org: &OrgId,
    recipient: &OrgPublicKey,
) -> Result<Reader, Error> {
    let eph = EphemeralPrivateKey::generate(&X25519, rng)
        .map_err(|_| Error::Crypto("generating an ephemeral X25519 key"))?;
    let eph_pub: [u8; 32] = eph
        .compute_public_key()
        .ok()
        .and_then(|p| p.as_ref().try_into().ok())
        .ok_or(Error::Crypto("computing an ephemeral X25519 public key"))?;
    let peer = UnparsedPublicKey::new(&X25519, recipient.0);
    let key = agreement::agree_ephemeral(eph, &peer, |shared| {
        wrapping_key(shared, &eph_pub, &recipient.0, org)
    })
    .map_err(|_| Error::Crypto("X25519 with the reader's public key"))??;
    let mut out = file_key.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key([0; 12]),
        Aad::from(org.as_str().as_bytes()),
        &mut out,
    )
    .map_err(|_| Error::Crypto("sealing the file key"))?;
    let wrapped_key = out
        .try_into()
        .map_err(|_| Error::Crypto("wrapped key length"))?;
    Ok(Reader {
        org: org.clone(),
        ephemeral_public: eph_pub,
        wrapped_key,
    })
}

fn wrapping_key(
    shared: &[u8],
    eph_pub: &[u8; 32],
    org_pub: &[u8; 32],
    org: &OrgId,
) -> Result<LessSafeKey, Error> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, WRAP_SALT).extract(shared);
    let info = [
        eph_pub.as_slice(),
        org_pub.as_slice(),
        org.as_str().as_bytes(),
    ];
    let okm = prk
        .expand(&info, &aead::AES_256_GCM)
        .map_err(|_| Error::Crypto("HKDF expand"))?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

/// The file key wrapped in `reader`, if `secret` is that org's key.
pub(crate) fn unwrap_key(reader: &Reader, secret: &OrgSecretKey) -> Option<[u8; 32]> {
    let shared = MontgomeryPoint(reader.ephemeral_public)
        .mul_clamped(secret.0)
        .to_bytes();
    if shared == [0; 32] {
        return None; // a low-order ephemeral key: refuse, as ring does
    }
    let key = wrapping_key(
        &shared,
        &reader.ephemeral_public,
        &secret.public_key().0,
        &reader.org,
    )
    .ok()?;
    let mut buf = reader.wrapped_key;
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(reader.org.as_str().as_bytes()),
            &mut buf,
        )
        .ok()?;
    plain.try_into().ok()
}

fn chunk_key(file_key: &[u8; 32]) -> Result<LessSafeKey, Error> {
    UnboundKey::new(&aead::AES_256_GCM, file_key)
        .map(LessSafeKey::new)
        .map_err(|_| Error::Crypto("file key"))
}

fn chunk_nonce(index: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Seals `plain` for `readers` as a client does before a file leaves it:
/// a fresh file key wrapped for each reader (the manifest's encryption
/// section) and the stream of sealed chunks, each exactly `chunk_size`
/// bytes but the last. Uploading both (`Store::put_sealed`, or the peer's
/// `Put` with `PutMeta.encryption`) stores what
/// [`Store::put_confidential`](crate::Store::put_confidential) would: the
/// plaintext and the file key never reach the store.
pub fn seal<R: Read>(
    plain: R,
    readers: &[(OrgId, OrgPublicKey)],
    chunk_size: u32,
) -> Result<(Encryption, Sealer<R>), Error> {
    let (file_key, encryption) = new_file_key(readers)?;
    Ok((encryption, Sealer::new(plain, &file_key, chunk_size)?))
}

/// Stored bytes of `plain_size` bytes sealed in chunks of `chunk_size`:
/// one tag per chunk of `chunk_size − 16` plaintext bytes. `None` if
/// `chunk_size` cannot hold a tag and a byte.
pub fn sealed_size(plain_size: u64, chunk_size: u32) -> Option<u64> {
    let per = u64::from(chunk_size).checked_sub(AEAD_TAG_LEN as u64 + 1)? + 1;
    let chunks = plain_size.div_ceil(per);
    plain_size.checked_add(chunks * AEAD_TAG_LEN as u64)
}

/// Opens the chunks of one confidential file for one reader org: what a
/// client holding its org's secret key uses after fetching the ciphertext
/// (the store's [`PlainReader`] uses it too). It checks nothing but the
/// AEAD: verify each chunk against the manifest's hash first.
pub struct Opener {
    file: FileId,
    key: LessSafeKey,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Opener({})", self.file)
    }
}

impl Opener {
    /// Unwraps the file key of `manifest` (whose id is `file`) with `org`'s
    /// secret: [`Error::NotConfidential`], [`Error::NotAReader`] or
    /// [`Error::KeyUnwrap`] if that cannot be done.
    pub fn new(
        file: FileId,
        manifest: &Manifest,
        org: &OrgId,
        secret: &OrgSecretKey,
    ) -> Result<Self, Error> {
        let Some(enc) = &manifest.encryption else {
            return Err(Error::NotConfidential(file));
        };
        let reader = enc.reader(org).ok_or_else(|| Error::NotAReader {
            file,
            org: org.clone(),
        })?;
        let file_key = unwrap_key(reader, secret).ok_or_else(|| Error::KeyUnwrap {
            file,
            org: org.clone(),
        })?;
        Ok(Self {
            file,
            key: chunk_key(&file_key)?,
        })
    }

    /// Chunk `index`'s plaintext from its stored bytes, or
    /// [`Error::Decrypt`] if they do not authenticate.
    pub fn open(&self, index: u32, mut sealed: Vec<u8>) -> Result<Vec<u8>, Error> {
        let n = self
            .key
            .open_in_place(
                chunk_nonce(u64::from(index)),
                Aad::from(CHUNK_AAD),
                &mut sealed,
            )
            .map_err(|_| Error::Decrypt {
                file: self.file,
                index,
            })?
            .len();
        sealed.truncate(n);
        Ok(sealed)
    }
}

/// Turns a plaintext reader into the stream of sealed chunks, each exactly
/// `chunk_size` bytes (the last may be shorter), so the store's chunking
/// lines up with the seals. Made by [`seal`].
pub struct Sealer<R> {
    inner: R,
    key: LessSafeKey,
    plain_len: usize,
    index: u64,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<R> fmt::Debug for Sealer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealer(chunk {})", self.index)
    }
}

impl<R: Read> Sealer<R> {
    pub(crate) fn new(inner: R, file_key: &[u8; 32], chunk_size: u32) -> Result<Self, Error> {
        let plain_len = (chunk_size as usize)
            .checked_sub(AEAD_TAG_LEN)
            .filter(|&n| n > 0)
            .ok_or(Error::InvalidLimits("chunk size too small for a seal"))?;
        Ok(Self {
            inner,
            key: chunk_key(file_key)?,
            plain_len,
            index: 0,
            buf: Vec::new(),
            pos: 0,
            done: false,
        })
    }
}

impl<R: Read> Read for Sealer<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.buf.clear();
            self.buf.resize(self.plain_len, 0);
            let n = crate::store::fill(&mut self.inner, &mut self.buf)?;
            if n < self.plain_len {
                self.done = true;
            }
            if n == 0 {
                self.buf.clear();
                return Ok(0);
            }
            self.buf.truncate(n);
            self.key
                .seal_in_place_append_tag(
                    chunk_nonce(self.index),
                    Aad::from(CHUNK_AAD),
                    &mut self.buf,
                )
                .map_err(|_| io::Error::other("sealing a chunk"))?;
            self.index += 1;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Streams a confidential file's plaintext: each chunk is verified against
/// its hash, then opened; a failure makes `read` fail with an `io::Error`
/// wrapping [`Error::ChunkDamaged`] or [`Error::Decrypt`].
pub struct PlainReader {
    inner: FileReader,
    opener: Opener,
    buf: Vec<u8>,
    pos: usize,
}

impl fmt::Debug for PlainReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainReader({})", self.inner.id())
    }
}

impl PlainReader {
    pub(crate) fn new(inner: FileReader, opener: Opener) -> Self {
        Self {
            inner,
            opener,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for PlainReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.buf.len() {
            let Some((index, bytes)) = self.inner.read_chunk().map_err(io::Error::other)? else {
                return Ok(0);
            };
            self.buf = self.opener.open(index, bytes).map_err(io::Error::other)?;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7748 §6.1: Alice's and Bob's keys, so the dalek side is X25519.
    #[test]
    fn rfc7748_vector() {
        let alice = OrgSecretKey::from_bytes(
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        assert_eq!(
            hex::encode(alice.public_key().0),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        let bob_pub: [u8; 32] =
            hex::decode("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
                .unwrap()
                .try_into()
                .unwrap();
        assert_eq!(
            hex::encode(MontgomeryPoint(bob_pub).mul_clamped(alice.0).to_bytes()),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        );
    }

    #[test]
    fn wrap_unwrap() {
        let lab = OrgSecretKey::generate().unwrap();
        let other = OrgSecretKey::generate().unwrap();
        let org = OrgId::new("Lab").unwrap();
        let (key, enc) = new_file_key(&[(org.clone(), lab.public_key())]).unwrap();
        let r = enc.reader(&org).unwrap();
        assert_eq!(unwrap_key(r, &lab), Some(key));
        assert_eq!(unwrap_key(r, &other), None);
        // A wrapped key moved to another org's name does not open.
        let mut moved = r.clone();
        moved.org = OrgId::new("Lab2").unwrap();
        assert_eq!(unwrap_key(&moved, &lab), None);
        assert!(format!("{lab:?}").contains("public"));
    }

    #[test]
    fn readers_must_be_distinct_and_present() {
        let k = OrgSecretKey::generate().unwrap().public_key();
        let a = OrgId::new("A").unwrap();
        assert!(new_file_key(&[]).is_err());
        assert!(new_file_key(&[(a.clone(), k), (a, k)]).is_err());
    }
}
