//! Signing and verification for identities, as Fabric does it: ECDSA P-256
//! with SHA-256 (the default, what Fabric 2.x clients speak) or Ed25519
//! (Fabric 3; several times cheaper to verify, and batch-verifiable).
//!
//! ECDSA signatures are DER-encoded `ECDSA-Sig-Value`s and always *low-S*:
//! `s` is at most half the curve order. Fabric refuses high-S signatures
//! (they are malleable: `(r, n - s)` is also valid, which would let anyone
//! change a transaction's bytes without its key), so [`verify`] refuses them
//! too and [`SigningKey::sign`] normalises before returning.
//!
//! Ed25519 signatures are the 64 raw bytes over the whole message (no
//! pre-hash, as Fabric's `hash.none`). They are checked by the rules of
//! ZIP 215 (`ed25519-zebra`): `s` must be canonical, and the check is the
//! cofactored equation, so a single check and a batch check ([`Ed25519Batch`])
//! give the same answer for every input — a validator may batch a block's
//! signatures without any peer deciding differently from one that did not.
//! Honest signatures verify under both these rules and Go's
//! `crypto/ed25519`.

use std::fmt;
use std::io::Write;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{
    self, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair,
};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

/// The order `n` of the P-256 group, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// `n / 2`, rounded down: the largest low-S value.
const P256_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Why a key could not be used or a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The private key is not a PKCS#8 ECDSA P-256 or Ed25519 key.
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    /// The public key is neither an uncompressed P-256 point nor an
    /// Ed25519 key.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// The signature is not a DER `ECDSA-Sig-Value` (P-256) or not 64
    /// bytes (Ed25519).
    #[error("malformed signature: {0}")]
    MalformedSignature(&'static str),
    /// The signature's `s` is above half the curve order (malleable form).
    #[error("signature is not in low-S form")]
    HighS,
    /// The signature does not match the message and key.
    #[error("signature verification failed")]
    BadSignature,
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Rng,
    /// Reading or writing a key file failed.
    #[error("key file {path}: {message}")]
    Io {
        /// The file concerned.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Which kind of key an identity signs with.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// ECDSA on NIST P-256 with SHA-256: the default, what every Fabric
    /// client speaks.
    #[default]
    P256,
    /// Ed25519 (RFC 8032): Fabric 3 and its Gateway clients; verifies
    /// several times faster and can be batch-verified.
    Ed25519,
}

impl KeyKind {
    /// The name used in flags and files: `p256` or `ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::P256 => "p256",
            KeyKind::Ed25519 => "ed25519",
        }
    }

    /// The kind of a public key as [`SigningKey::public_key`] and
    /// certificates give it: a 65-byte uncompressed P-256 point or a
    /// 32-byte Ed25519 key.
    pub fn of_public_key(public_key: &[u8]) -> Option<KeyKind> {
        match public_key {
            [0x04, rest @ ..] if rest.len() == 64 => Some(KeyKind::P256),
            k if k.len() == 32 => Some(KeyKind::Ed25519),
            _ => None,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "p256" | "p-256" | "ecdsa" | "ecdsa-p256" => Ok(KeyKind::P256),
            "ed25519" => Ok(KeyKind::Ed25519),
            _ => Err(format!("unknown key type {s:?}: expected p256 or ed25519")),
        }
    }
}

/// The DER of an RFC 8410 PKCS#8 v1 Ed25519 private key up to its 32-byte
/// seed: `SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING
/// { OCTET STRING seed } }`.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

enum Pair {
    P256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key, ECDSA P-256 or Ed25519. Its `Debug` never prints the secret.
pub struct SigningKey {
    pair: Pair,
    pkcs8: Vec<u8>,
    rng: SystemRandom,
}

impl SigningKey {
    /// Generates a new random ECDSA P-256 key.
    pub fn generate() -> Result<Self, CryptoError> {
        Self::generate_kind(KeyKind::P256)
    }

    /// Generates a new random key of `kind`.
    pub fn generate_kind(kind: KeyKind) -> Result<Self, CryptoError> {
        let rng = SystemRandom::new();
        match kind {
            KeyKind::P256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(|_| CryptoError::Rng)?;
                Self::from_pkcs8_der(doc.as_ref())
            }
            KeyKind::Ed25519 => {
                // RFC 8410's PKCS#8 v1 form, written by hand: ring's own v2
                // document tags the public key in a way OpenSSL (and so
                // Node, which Fabric's Gateway client runs on) refuses.
                let mut seed = [0u8; 32];
                ring::rand::SecureRandom::fill(&rng, &mut seed).map_err(|_| CryptoError::Rng)?;
                let mut der = ED25519_PKCS8_V1_PREFIX.to_vec();
                der.extend_from_slice(&seed);
                Self::from_pkcs8_der(&der)
            }
        }
    }

    /// Loads a PKCS#8 DER key: ECDSA P-256, or Ed25519 in PKCS#8 v1 (what
    /// OpenSSL and Node write) or v2.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let rng = SystemRandom::new();
        let pair = match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng) {
            Ok(p) => Pair::P256(p),
            Err(ecdsa) => match Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                Ok(p) => Pair::Ed25519(p),
                Err(_) => {
                    return Err(CryptoError::InvalidKey(format!(
                        "neither ECDSA P-256 ({ecdsa}) nor Ed25519"
                    )));
                }
            },
        };
        Ok(SigningKey {
            pair,
            pkcs8: der.to_vec(),
            rng,
        })
    }

    /// Which kind of key this is.
    pub fn kind(&self) -> KeyKind {
        match self.pair {
            Pair::P256(_) => KeyKind::P256,
            Pair::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// Loads a `-----BEGIN PRIVATE KEY-----` PEM key.
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| CryptoError::InvalidKey(format!("not a PKCS#8 PEM key: {e}")))?;
        Self::from_pkcs8_der(der.secret_pkcs8_der())
    }

    /// Reads a PEM key file.
    pub fn read_pem_file(path: &Path) -> Result<Self, CryptoError> {
        let text = std::fs::read_to_string(path).map_err(|e| CryptoError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_pem(&text)
    }

    /// The PKCS#8 DER encoding (secret: handle with care).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The PKCS#8 PEM encoding (secret: handle with care).
    pub fn to_pem(&self) -> String {
        pem_encode("PRIVATE KEY", &self.pkcs8)
    }

    /// Writes the key as PEM to `path`, created with mode 0600 so that only
    /// the owner can read it.
    pub fn write_pem_file(&self, path: &Path) -> Result<(), CryptoError> {
        write_private_file(path, self.to_pem().as_bytes()).map_err(|e| CryptoError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The public key: the uncompressed P-256 point (65 bytes,
    /// `0x04 ‖ x ‖ y`) or the Ed25519 key (32 bytes).
    pub fn public_key(&self) -> &[u8] {
        match &self.pair {
            Pair::P256(p) => p.public_key().as_ref(),
            Pair::Ed25519(p) => p.public_key().as_ref(),
        }
    }

    /// Signs `msg`: P-256 signs SHA-256(`msg`) and returns a DER, low-S
    /// signature; Ed25519 signs `msg` itself and returns 64 bytes.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.pair {
            Pair::P256(p) => {
                let sig = p.sign(&self.rng, msg).map_err(|_| CryptoError::Rng)?;
                to_low_s(sig.as_ref())
            }
            Pair::Ed25519(p) => Ok(p.sign(msg).as_ref().to_vec()),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey {{ public: {}, private: <redacted> }}",
            hex::encode(self.public_key())
        )
    }
}

/// Verifies `sig` over `msg` by `public_key`, of either kind (see
/// [`KeyKind::of_public_key`]): a DER signature over SHA-256(`msg`) by a
/// P-256 point, high-S refused; or a 64-byte Ed25519 signature, checked by
/// ZIP 215's rules.
pub fn verify(public_key: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    match KeyKind::of_public_key(public_key) {
        Some(KeyKind::P256) => verify_p256(public_key, msg, sig),
        Some(KeyKind::Ed25519) => {
            let (key, sig) = ed25519_parts(public_key, sig)?;
            key.verify(&sig, msg).map_err(|_| CryptoError::BadSignature)
        }
        None => Err(CryptoError::InvalidPublicKey),
    }
}

/// Decompressed Ed25519 keys, by their bytes: decompressing costs 6.5 µs
/// of a 45 µs verify (one core, release), and a channel's signers are few.
/// Bounded: emptied when full.
static ED25519_KEYS: std::sync::LazyLock<
    std::sync::RwLock<std::collections::HashMap<[u8; 32], ed25519_zebra::VerificationKey>>,
> = std::sync::LazyLock::new(Default::default);

/// Keys [`ED25519_KEYS`] holds at most.
const ED25519_KEYS_MAX: usize = 4096;

/// The decompressed key of `bytes`; `None` if they are not a curve point.
fn ed25519_key(bytes: [u8; 32]) -> Option<ed25519_zebra::VerificationKey> {
    let cached = ED25519_KEYS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&bytes)
        .copied();
    if cached.is_some() {
        return cached;
    }
    let key = ed25519_zebra::VerificationKey::try_from(bytes).ok()?;
    let mut keys = ED25519_KEYS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if keys.len() >= ED25519_KEYS_MAX {
        keys.clear();
    }
    keys.insert(bytes, key);
    Some(key)
}

fn ed25519_parts(
    public_key: &[u8],
    sig: &[u8],
) -> Result<(ed25519_zebra::VerificationKey, ed25519_zebra::Signature), CryptoError> {
    let key = <[u8; 32]>::try_from(public_key)
        .ok()
        .and_then(ed25519_key)
        .ok_or(CryptoError::InvalidPublicKey)?;
    let sig = <[u8; 64]>::try_from(sig)
        .map_err(|_| CryptoError::MalformedSignature("an Ed25519 signature is 64 bytes"))?;
    Ok((key, ed25519_zebra::Signature::from_bytes(&sig)))
}

/// Ed25519 signatures gathered to be checked together: about twice as fast
/// per signature as one by one. [`Ed25519Batch::verify`] answers for the
/// whole batch; when it says no, check each with [`verify`] to find which.
/// Under ZIP 215 a batch passes exactly when every signature in it would
/// pass alone (but for a 2^-128 chance), so batching changes no verdict.
#[derive(Default)]
pub struct Ed25519Batch {
    inner: ed25519_zebra::batch::Verifier,
    len: usize,
}

impl Ed25519Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one signature. Fails at once, without adding it, if the key or
    /// the signature has the wrong length. The key is not decompressed here:
    /// the batch decompresses each distinct key once when it verifies, and a
    /// key that is not a curve point fails the batch (and then [`verify`]).
    pub fn queue(&mut self, public_key: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        let key = <[u8; 32]>::try_from(public_key).map_err(|_| CryptoError::InvalidPublicKey)?;
        let sig = <[u8; 64]>::try_from(sig)
            .map_err(|_| CryptoError::MalformedSignature("an Ed25519 signature is 64 bytes"))?;
        self.inner.queue((
            ed25519_zebra::VerificationKeyBytes::from(key),
            ed25519_zebra::Signature::from_bytes(&sig),
            msg,
        ));
        self.len += 1;
        Ok(())
    }

    /// Signatures queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks every queued signature at once; `Ok` if all are valid. An
    /// empty batch passes.
    pub fn verify(self) -> Result<(), CryptoError> {
        if self.len == 0 {
            return Ok(());
        }
        self.inner
            .verify(rand_core::OsRng)
            .map_err(|_| CryptoError::BadSignature)
    }
}

impl fmt::Debug for Ed25519Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519Batch {{ len: {} }}", self.len)
    }
}

fn verify_p256(public_key: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    let (_, s) = parse_der_signature(sig)?;
    if is_high_s(&s) {
        return Err(CryptoError::HighS);
    }
    signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key)
        .verify(msg, sig)
        .map_err(|_| CryptoError::BadSignature)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Writes `bytes` to `path` with mode 0600 (owner read/write only), replacing
/// any existing file. Used for private keys and secrets.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    // An existing file keeps its old mode through open(); force 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(bytes)?;
    f.sync_all()
}

/// Encodes DER bytes as a PEM block with the given label (64-column
/// base64, `\n` line ends, as OpenSSL writes them).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Parses a DER `SEQUENCE { INTEGER r, INTEGER s }` into 32-byte big-endian r and s.
fn parse_der_signature(sig: &[u8]) -> Result<([u8; 32], [u8; 32]), CryptoError> {
    let rest = match sig {
        [0x30, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest,
        _ => {
            return Err(CryptoError::MalformedSignature(
                "expected a short DER SEQUENCE",
            ));
        }
    };
    let (r, rest) = parse_der_uint(rest)?;
    let (s, rest) = parse_der_uint(rest)?;
    if !rest.is_empty() {
        return Err(CryptoError::MalformedSignature("trailing bytes"));
    }
    Ok((r, s))
}

fn parse_der_uint(input: &[u8]) -> Result<([u8; 32], &[u8]), CryptoError> {
    let (len, rest) = match input {
        [0x02, len, rest @ ..] if usize::from(*len) <= rest.len() && *len > 0 => {
            (usize::from(*len), rest)
        }
        _ => return Err(CryptoError::MalformedSignature("expected a DER INTEGER")),
    };
    let (mut int, rest) = rest.split_at(len);
    if int[0] & 0x80 != 0 {
        return Err(CryptoError::MalformedSignature("negative INTEGER"));
    }
    if int.len() > 1 && int[0] == 0 {
        if int[1] & 0x80 == 0 {
            return Err(CryptoError::MalformedSignature("non-minimal INTEGER"));
        }
        int = &int[1..];
    }
    if int.len() > 32 {
        return Err(CryptoError::MalformedSignature(
            "INTEGER longer than 32 bytes",
        ));
    }
    let mut out = [0u8; 32];
    out[32 - int.len()..].copy_from_slice(int);
    Ok((out, rest))
}

fn encode_der_uint(v: &[u8; 32], out: &mut Vec<u8>) {
    let start = v.iter().position(|&b| b != 0).unwrap_or(31);
    let body = &v[start..];
    let pad = body[0] & 0x80 != 0;
    out.push(0x02);
    // At most 33 bytes, so the length fits in one byte.
    out.push((body.len() + usize::from(pad)) as u8);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(body);
}

fn is_high_s(s: &[u8; 32]) -> bool {
    s > &P256_HALF_ORDER
}

/// Rewrites a DER signature into low-S form (s → n − s when s > n/2).
fn to_low_s(sig: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (r, mut s) = parse_der_signature(sig)?;
    if !is_high_s(&s) {
        return Ok(sig.to_vec());
    }
    s = sub_be(&P256_ORDER, &s);
    let mut body = Vec::with_capacity(72);
    encode_der_uint(&r, &mut body);
    encode_der_uint(&s, &mut body);
    let mut out = Vec::with_capacity(body.len() + 2);
    out.push(0x30);
    out.push(body.len() as u8);
    out.extend_from_slice(&body);
    Ok(out)
}

/// `a - b` for big-endian 256-bit numbers with `a >= b`.
fn sub_be(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = if d < 0 {
            d += 256;
            1
        } else {
            0
        };
        out[i] = d as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn high_s_twin(sig: &[u8]) -> Vec<u8> {
        let (r, s) = parse_der_signature(sig).unwrap();
        let s2 = sub_be(&P256_ORDER, &s);
        let mut body = Vec::new();
        encode_der_uint(&r, &mut body);
        encode_der_uint(&s2, &mut body);
        let mut out = vec![0x30, body.len() as u8];
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn sign_verify_round_trip_always_low_s() {
        let key = SigningKey::generate().unwrap();
        for i in 0..200u32 {
            let msg = i.to_be_bytes();
            let sig = key.sign(&msg).unwrap();
            let (_, s) = parse_der_signature(&sig).unwrap();
            assert!(!is_high_s(&s));
            verify(key.public_key(), &msg, &sig).unwrap();
        }
    }

    #[test]
    fn high_s_twin_is_refused_even_though_mathematically_valid() {
        let key = SigningKey::generate().unwrap();
        let sig = key.sign(b"payload").unwrap();
        let twin = high_s_twin(&sig);
        assert_eq!(
            verify(key.public_key(), b"payload", &twin),
            Err(CryptoError::HighS)
        );
        // ring alone accepts the twin: the refusal is ours.
        signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key())
            .verify(b"payload", &twin)
            .unwrap();
        // And normalising the twin gives back a valid low-S signature.
        let back = to_low_s(&twin).unwrap();
        verify(key.public_key(), b"payload", &back).unwrap();
    }

    #[test]
    fn wrong_message_key_or_garbage_fail() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let sig = key.sign(b"a").unwrap();
        assert_eq!(
            verify(key.public_key(), b"b", &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            verify(other.public_key(), b"a", &sig),
            Err(CryptoError::BadSignature)
        );
        assert!(matches!(
            verify(key.public_key(), b"a", &[0x30, 0x02, 0x02, 0x00]),
            Err(CryptoError::MalformedSignature(_))
        ));
        assert_eq!(
            verify(&[1, 2, 3], b"a", &sig),
            Err(CryptoError::InvalidPublicKey)
        );
    }

    #[test]
    fn pem_round_trip_and_file_mode() {
        let key = SigningKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        key.write_pem_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = SigningKey::read_pem_file(&path).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert!(!format!("{key:?}").contains(&hex::encode(key.pkcs8_der())));
    }

    #[test]
    fn ed25519_keys_sign_whole_messages_and_verify() {
        let key = SigningKey::generate_kind(KeyKind::Ed25519).unwrap();
        assert_eq!(key.kind(), KeyKind::Ed25519);
        assert_eq!(key.public_key().len(), 32);
        // Stored as RFC 8410's v1 document, which OpenSSL and Node read.
        assert_eq!(key.pkcs8_der().len(), 48);
        assert_eq!(key.pkcs8_der()[..16], ED25519_PKCS8_V1_PREFIX);
        assert_eq!(
            KeyKind::of_public_key(key.public_key()),
            Some(KeyKind::Ed25519)
        );
        let sig = key.sign(b"payload").unwrap();
        assert_eq!(sig.len(), 64);
        verify(key.public_key(), b"payload", &sig).unwrap();
        // RFC 8032: the signature is over the message itself, so ring's
        // plain Ed25519 check (and Go's, and Node's) accepts it too.
        signature::UnparsedPublicKey::new(&signature::ED25519, key.public_key())
            .verify(b"payload", &sig)
            .unwrap();
        assert_eq!(
            verify(key.public_key(), b"other", &sig),
            Err(CryptoError::BadSignature)
        );
        assert!(matches!(
            verify(key.public_key(), b"payload", &sig[..63]),
            Err(CryptoError::MalformedSignature(_))
        ));
        // A P-256 signature under an Ed25519 key, and the reverse, fail.
        let p256 = SigningKey::generate().unwrap();
        let ecdsa_sig = p256.sign(b"payload").unwrap();
        assert!(verify(key.public_key(), b"payload", &ecdsa_sig).is_err());
        assert!(verify(p256.public_key(), b"payload", &sig).is_err());
        // Non-canonical s (s + L) is refused: no malleable twin.
        let mut twin = sig.clone();
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(twin[32 + i]) + u16::from(l[i]) + carry;
            twin[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert!(verify(key.public_key(), b"payload", &twin).is_err());
    }

    #[test]
    fn a_decompressed_ed25519_key_is_kept_and_gives_the_same_verdicts() {
        let key = SigningKey::generate_kind(KeyKind::Ed25519).unwrap();
        let bytes: [u8; 32] = key.public_key().try_into().unwrap();
        let sig = key.sign(b"m").unwrap();
        verify(key.public_key(), b"m", &sig).unwrap();
        assert!(ED25519_KEYS.read().unwrap().contains_key(&bytes));
        // From the cache: the same answers.
        verify(key.public_key(), b"m", &sig).unwrap();
        assert_eq!(
            verify(key.public_key(), b"n", &sig),
            Err(CryptoError::BadSignature)
        );
        assert!(ED25519_KEYS.read().unwrap().len() <= ED25519_KEYS_MAX);
    }

    #[test]
    fn ed25519_pkcs8_v1_as_openssl_writes_it_loads() {
        // `openssl genpkey -algorithm ed25519` (RFC 8410 example key).
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
        let key = SigningKey::from_pem(pem).unwrap();
        assert_eq!(key.kind(), KeyKind::Ed25519);
        assert_eq!(
            hex::encode(key.public_key()),
            "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
        );
        let back = SigningKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert!(
            SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
    }

    #[test]
    fn a_batch_passes_exactly_when_every_signature_does() {
        let keys: Vec<SigningKey> = (0..5)
            .map(|_| SigningKey::generate_kind(KeyKind::Ed25519).unwrap())
            .collect();
        let msgs: Vec<Vec<u8>> = (0..20u32).map(|i| i.to_be_bytes().repeat(50)).collect();
        let sigs: Vec<Vec<u8>> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| keys[i % 5].sign(m).unwrap())
            .collect();
        let batch = |bad: Option<usize>| {
            let mut b = Ed25519Batch::new();
            for (i, m) in msgs.iter().enumerate() {
                let mut sig = sigs[i].clone();
                if bad == Some(i) {
                    sig[5] ^= 1;
                }
                b.queue(keys[i % 5].public_key(), m, &sig).unwrap();
            }
            assert_eq!(b.len(), 20);
            b.verify()
        };
        batch(None).unwrap();
        for bad in [0, 7, 19] {
            assert_eq!(batch(Some(bad)), Err(CryptoError::BadSignature));
        }
        assert!(Ed25519Batch::new().verify().is_ok());
        let mut b = Ed25519Batch::new();
        assert!(b.queue(&[0u8; 31], b"m", &sigs[0]).is_err());
        assert!(b.queue(keys[0].public_key(), b"m", &sigs[0][..10]).is_err());
        assert!(b.is_empty());
        // A key that is not a curve point fails the batch, as alone.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        b.queue(&not_a_point, b"m", &sigs[0]).unwrap();
        assert!(b.verify().is_err());
        assert!(verify(&not_a_point, b"m", &sigs[0]).is_err());
    }

    #[test]
    fn key_kind_names() {
        assert_eq!("ed25519".parse::<KeyKind>(), Ok(KeyKind::Ed25519));
        assert_eq!("P256".parse::<KeyKind>(), Ok(KeyKind::P256));
        assert!("rsa".parse::<KeyKind>().is_err());
        assert_eq!(KeyKind::default(), KeyKind::P256);
        assert_eq!(KeyKind::of_public_key(&[4; 64]), None);
    }

    #[test]
    fn pem_is_openssl_shaped() {
        assert_eq!(
            pem_encode("X", b"foobar"),
            "-----BEGIN X-----\nZm9vYmFy\n-----END X-----\n"
        );
        let der: Vec<u8> = (0..=255u8).collect();
        let text = pem_encode("PRIVATE KEY", &der);
        assert!(!text.contains('\r'));
        assert!(text.lines().all(|l| l.len() <= 64), "{text}");
        assert_eq!(pem::parse(&text).unwrap().contents(), der.as_slice());
    }
}
