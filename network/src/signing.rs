//! ECDSA P-256 / SHA-256 signing and verification, as Fabric does it.
//!
//! Signatures are DER-encoded `ECDSA-Sig-Value`s and always *low-S*: `s` is at
//! most half the curve order. Fabric refuses high-S signatures (they are
//! malleable: `(r, n - s)` is also valid, which would let anyone change a
//! transaction's bytes without its key), so [`verify`] refuses them too and
//! [`SigningKey::sign`] normalises before returning.

use std::fmt;
use std::io::Write;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{
    self, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair,
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
    /// The private key is not a PKCS#8 ECDSA P-256 key.
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    /// The public key is not an uncompressed P-256 point.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// The signature is not a DER `ECDSA-Sig-Value`.
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

/// An ECDSA P-256 private key. Its `Debug` never prints the secret.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    rng: SystemRandom,
}

impl SigningKey {
    /// Generates a new random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| CryptoError::Rng)?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// Loads a PKCS#8 DER key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
            .map_err(|e| CryptoError::InvalidKey(e.to_string()))?;
        Ok(SigningKey {
            pair,
            pkcs8: der.to_vec(),
            rng,
        })
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

    /// The uncompressed public point (65 bytes, `0x04 ‖ x ‖ y`).
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// Signs SHA-256(`msg`) and returns a DER, low-S signature.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let sig = self
            .pair
            .sign(&self.rng, msg)
            .map_err(|_| CryptoError::Rng)?;
        to_low_s(sig.as_ref())
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

/// Verifies a DER signature over SHA-256(`msg`) by the uncompressed P-256
/// point `public_key`. High-S signatures are refused.
pub fn verify(public_key: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    if public_key.len() != 65 || public_key[0] != 0x04 {
        return Err(CryptoError::InvalidPublicKey);
    }
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

/// Encodes DER bytes as a PEM block with the given label.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use std::fmt::Write as _;
    let b64 = base64_encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        let _ = writeln!(out, "{}", String::from_utf8_lossy(chunk));
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
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
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(i.as_bytes()), o);
        }
    }
}
