//! Chaincode packages: one file carrying a contract and what the lifecycle
//! needs to know about it (name, version, code hash, endorsement policy).
//!
//! File format (all of it covered by tests; deterministic: the same package
//! always gives the same bytes):
//!
//! | offset | size | content |
//! |---|---|---|
//! | 0 | 8 | magic `QCSSPKG` + format version byte `0x01` |
//! | 8 | 4 | `M`: metadata length, u32 big-endian |
//! | 12 | `M` | metadata, JSON: `{"name","version","endorsement_policy","code_hash","wasm_len"}` in that order |
//! | 12+`M` | `wasm_len` | the wasm module; nothing may follow |
//!
//! Parsing checks everything: magic and version, lengths (truncation and
//! trailing bytes), the metadata fields, the name and version syntax, and
//! that `code_hash` is the SHA-256 of the wasm. A [`ChaincodePackage`] can
//! only be obtained through these checks.

use serde::{Deserialize, Serialize};

use crate::CodeHash;

/// Magic bytes and format version.
pub const MAGIC: &[u8; 8] = b"QCSSPKG\x01";
const HEADER_LEN: usize = MAGIC.len() + 4;
/// Longest name or version accepted.
const MAX_LABEL: usize = 128;
/// Longest metadata accepted, bytes.
const MAX_METADATA: usize = 64 << 10;

/// A checked chaincode package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChaincodePackage {
    meta: Metadata,
    wasm: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: String,
    version: String,
    endorsement_policy: String,
    code_hash: CodeHash,
    wasm_len: u64,
}

/// Why a package could not be created or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// The file is larger than the caller's limit.
    #[error("package of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The file's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The file does not start with `QCSSPKG`.
    #[error("not a chaincode package (bad magic)")]
    BadMagic,
    /// The format version byte is not one this code reads.
    #[error("unsupported package format version {0}")]
    UnsupportedVersion(u8),
    /// The file ends before the lengths it declares.
    #[error("package truncated: {what} needs {needed} bytes, {available} available")]
    Truncated {
        /// The part that is cut short.
        what: &'static str,
        /// Bytes it needs.
        needed: u64,
        /// Bytes there are.
        available: u64,
    },
    /// Bytes follow the wasm module.
    #[error("{0} unexpected bytes after the wasm module")]
    TrailingBytes(u64),
    /// The metadata is not the expected JSON.
    #[error("package metadata: {0}")]
    Metadata(String),
    /// The name is not `[A-Za-z0-9]+([-_][A-Za-z0-9]+)*` (at most 128 bytes).
    #[error("invalid chaincode name {0:?}: use letters and digits, joined by single - or _")]
    InvalidName(String),
    /// The version is not `[A-Za-z0-9_.+-]+` (at most 128 bytes).
    #[error("invalid chaincode version {0:?}: use letters, digits and _ . + -")]
    InvalidVersion(String),
    /// The package carries no wasm.
    #[error("package has an empty wasm module")]
    EmptyWasm,
    /// The wasm does not hash to the declared (or expected) code hash.
    #[error("code hash mismatch: expected {expected}, the wasm hashes to {actual}")]
    HashMismatch {
        /// The declared or expected hash.
        expected: CodeHash,
        /// The wasm's actual hash.
        actual: CodeHash,
    },
}

impl ChaincodePackage {
    /// Packages `wasm` under `name` and `version` with its endorsement policy
    /// (a policy expression such as `OR('Org1MSP.peer','Org2MSP.peer')`,
    /// not parsed here; empty = the channel's default endorsement policy).
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        endorsement_policy: impl Into<String>,
        wasm: Vec<u8>,
    ) -> Result<Self, PackageError> {
        let meta = Metadata {
            name: name.into(),
            version: version.into(),
            endorsement_policy: endorsement_policy.into(),
            code_hash: CodeHash::of(&wasm),
            wasm_len: wasm.len() as u64,
        };
        check_meta(&meta)?;
        if wasm.is_empty() {
            return Err(PackageError::EmptyWasm);
        }
        Ok(Self { meta, wasm })
    }

    /// Parses and checks a package file of at most `max_bytes`.
    pub fn from_bytes(bytes: &[u8], max_bytes: u64) -> Result<Self, PackageError> {
        let size = bytes.len() as u64;
        if size > max_bytes {
            return Err(PackageError::TooLarge {
                size,
                max: max_bytes,
            });
        }
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len() - 1] != MAGIC[..MAGIC.len() - 1] {
            return Err(PackageError::BadMagic);
        }
        let version = bytes[MAGIC.len() - 1];
        if version != MAGIC[MAGIC.len() - 1] {
            return Err(PackageError::UnsupportedVersion(version));
        }
        let rest = &bytes[MAGIC.len()..];
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or(PackageError::Truncated {
                what: "metadata length",
                needed: 4,
                available: rest.len() as u64,
            })?;
        let meta_len = u32::from_be_bytes(*len) as usize;
        if meta_len > MAX_METADATA {
            return Err(PackageError::Metadata(format!(
                "{meta_len} bytes, over the {MAX_METADATA}-byte limit"
            )));
        }
        if rest.len() < meta_len {
            return Err(PackageError::Truncated {
                what: "metadata",
                needed: meta_len as u64,
                available: rest.len() as u64,
            });
        }
        let (meta_bytes, wasm) = rest.split_at(meta_len);
        let meta: Metadata = serde_json::from_slice(meta_bytes)
            .map_err(|e| PackageError::Metadata(e.to_string()))?;
        check_meta(&meta)?;
        let available = wasm.len() as u64;
        if available < meta.wasm_len {
            return Err(PackageError::Truncated {
                what: "wasm module",
                needed: meta.wasm_len,
                available,
            });
        }
        if available > meta.wasm_len {
            return Err(PackageError::TrailingBytes(available - meta.wasm_len));
        }
        if wasm.is_empty() {
            return Err(PackageError::EmptyWasm);
        }
        let actual = CodeHash::of(wasm);
        if actual != meta.code_hash {
            return Err(PackageError::HashMismatch {
                expected: meta.code_hash,
                actual,
            });
        }
        Ok(Self {
            meta,
            wasm: wasm.to_vec(),
        })
    }

    /// The package file.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing strings, a hash string and an integer cannot fail.
        let meta = serde_json::to_vec(&self.meta).unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER_LEN + meta.len() + self.wasm.len());
        out.extend_from_slice(MAGIC);
        // Metadata is bounded by MAX_LABEL-sized fields plus the policy.
        out.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(&self.wasm);
        out
    }

    /// Fails unless this package's code is `expected` (e.g. the code hash in
    /// the approved chaincode definition).
    pub fn verify(&self, expected: &CodeHash) -> Result<(), PackageError> {
        if self.meta.code_hash != *expected {
            return Err(PackageError::HashMismatch {
                expected: *expected,
                actual: self.meta.code_hash,
            });
        }
        Ok(())
    }

    /// The chaincode name.
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// The chaincode version.
    pub fn version(&self) -> &str {
        &self.meta.version
    }

    /// The declared endorsement policy (empty = the channel default).
    pub fn endorsement_policy(&self) -> &str {
        &self.meta.endorsement_policy
    }

    /// SHA-256 of the wasm.
    pub fn code_hash(&self) -> CodeHash {
        self.meta.code_hash
    }

    /// The wasm module.
    pub fn wasm(&self) -> &[u8] {
        &self.wasm
    }

    /// Consumes the package, returning the wasm module.
    pub fn into_wasm(self) -> Vec<u8> {
        self.wasm
    }
}

fn check_meta(meta: &Metadata) -> Result<(), PackageError> {
    let name_ok = meta.name.len() <= MAX_LABEL
        && !meta.name.is_empty()
        && meta
            .name
            .split(['-', '_'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !name_ok {
        return Err(PackageError::InvalidName(meta.name.clone()));
    }
    let version_ok = meta.version.len() <= MAX_LABEL
        && !meta.version.is_empty()
        && meta
            .version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b));
    if !version_ok {
        return Err(PackageError::InvalidVersion(meta.version.clone()));
    }
    if meta.endorsement_policy.len() > MAX_METADATA / 2 {
        return Err(PackageError::Metadata("endorsement policy too long".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 1 << 20;

    fn pkg() -> ChaincodePackage {
        ChaincodePackage::new(
            "asset-transfer_v2",
            "1.0.0+build.7",
            "OR('Org1MSP.peer','Org2MSP.peer')",
            b"\0asm\x01\0\0\0".to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn round_trip_is_exact_and_deterministic() {
        let p = pkg();
        let bytes = p.to_bytes();
        assert_eq!(bytes, pkg().to_bytes());
        assert_eq!(&bytes[..8], MAGIC);
        let back = ChaincodePackage::from_bytes(&bytes, MAX).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.name(), "asset-transfer_v2");
        assert_eq!(back.version(), "1.0.0+build.7");
        assert_eq!(
            back.endorsement_policy(),
            "OR('Org1MSP.peer','Org2MSP.peer')"
        );
        assert_eq!(back.code_hash(), CodeHash::of(b"\0asm\x01\0\0\0"));
        assert_eq!(back.wasm(), b"\0asm\x01\0\0\0");
        let meta_len = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let meta: serde_json::Value = serde_json::from_slice(&bytes[12..12 + meta_len]).unwrap();
        assert_eq!(meta["code_hash"], p.code_hash().to_hex());
        assert_eq!(meta["wasm_len"], 8);
    }

    #[test]
    fn verify_checks_the_expected_hash() {
        let p = pkg();
        p.verify(&p.code_hash()).unwrap();
        let other = CodeHash::of(b"other");
        assert_eq!(
            p.verify(&other),
            Err(PackageError::HashMismatch {
                expected: other,
                actual: p.code_hash()
            })
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = pkg().to_bytes();
        for cut in 0..bytes.len() {
            let err = ChaincodePackage::from_bytes(&bytes[..cut], MAX).unwrap_err();
            assert!(
                matches!(
                    err,
                    PackageError::BadMagic
                        | PackageError::Truncated { .. }
                        | PackageError::Metadata(_)
                ),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn tampering_is_refused() {
        let bytes = pkg().to_bytes();
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(
            ChaincodePackage::from_bytes(&bad, MAX),
            Err(PackageError::BadMagic)
        );
        let mut bad = bytes.clone();
        bad[7] = 2;
        assert_eq!(
            ChaincodePackage::from_bytes(&bad, MAX),
            Err(PackageError::UnsupportedVersion(2))
        );
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(
            ChaincodePackage::from_bytes(&bad, MAX),
            Err(PackageError::HashMismatch { .. })
        ));
        let mut bad = bytes.clone();
        bad.push(0);
        assert_eq!(
            ChaincodePackage::from_bytes(&bad, MAX),
            Err(PackageError::TrailingBytes(1))
        );
        assert_eq!(
            ChaincodePackage::from_bytes(&bytes, 10),
            Err(PackageError::TooLarge {
                size: bytes.len() as u64,
                max: 10
            })
        );
        let mut bad = bytes[..12].to_vec();
        bad[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            ChaincodePackage::from_bytes(&bad, MAX),
            Err(PackageError::Metadata(_))
        ));
    }

    #[test]
    fn metadata_is_strict() {
        let forge = |meta: &str| {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&(meta.len() as u32).to_be_bytes());
            b.extend_from_slice(meta.as_bytes());
            b.extend_from_slice(b"\0asm");
            ChaincodePackage::from_bytes(&b, MAX)
        };
        let hash = CodeHash::of(b"\0asm");
        let ok = format!(
            r#"{{"name":"kv","version":"1","endorsement_policy":"","code_hash":"{hash}","wasm_len":4}}"#
        );
        forge(&ok).unwrap();
        let extra = ok.replace("\"wasm_len\":4", "\"wasm_len\":4,\"x\":1");
        assert!(matches!(forge(&extra), Err(PackageError::Metadata(_))));
        let bad_name = ok.replace("\"kv\"", "\"../kv\"");
        assert_eq!(
            forge(&bad_name),
            Err(PackageError::InvalidName("../kv".into()))
        );
        assert!(matches!(forge("not json"), Err(PackageError::Metadata(_))));
    }

    #[test]
    fn names_and_versions() {
        for good in ["kv", "a-b_c", "A1"] {
            assert!(
                ChaincodePackage::new(good, "1", "", vec![1]).is_ok(),
                "{good}"
            );
        }
        for bad in ["", "-a", "a-", "a--b", "a b", "é", &"a".repeat(129)] {
            assert!(
                matches!(
                    ChaincodePackage::new(bad, "1", "", vec![1]),
                    Err(PackageError::InvalidName(_))
                ),
                "{bad}"
            );
        }
        for bad in ["", "1 0", "1/0"] {
            assert!(
                matches!(
                    ChaincodePackage::new("kv", bad, "", vec![1]),
                    Err(PackageError::InvalidVersion(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            ChaincodePackage::new("kv", "1", "", vec![]),
            Err(PackageError::EmptyWasm)
        );
    }
}
