//! Names: the hashes that address chunks and files, the org ids that own
//! and read them, and media types.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;

macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Lower-case hex, as in file names and on the command line.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                let mut out = [0u8; 32];
                if s.len() != 64 {
                    return Err(Error::InvalidHash(s.chars().take(80).collect()));
                }
                hex::decode_to_slice(s, &mut out)
                    .map_err(|_| Error::InvalidHash(s.chars().take(80).collect()))?;
                Ok(Self(out))
            }
        }
    };
}

hash_newtype!(
    /// SHA-256 of one stored chunk's bytes (ciphertext for a confidential
    /// file): the chunk's name on disk.
    ChunkHash
);
hash_newtype!(
    /// A file's id: SHA-256 of its canonical manifest (see
    /// [`Manifest::encode`](crate::Manifest::encode)). This is what the
    /// ledger records.
    FileId
);

impl ChunkHash {
    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
}

impl FileId {
    /// The id of a file whose canonical manifest is `manifest_bytes`.
    pub fn of_manifest(manifest_bytes: &[u8]) -> Self {
        Self(Sha256::digest(manifest_bytes).into())
    }
}

/// Longest org id accepted (Fabric MSP ids are short).
pub const MAX_ORG_ID_LEN: usize = 64;

/// An org's id (its MSP id). Also a directory name in the store, so it is
/// restricted to `[A-Za-z0-9._-]`, 1 to 64 bytes, not starting with a dot.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgId(String);

impl OrgId {
    /// Parses an org id.
    pub fn new(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= MAX_ORG_ID_LEN
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidOrgId(s.chars().take(80).collect()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for OrgId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::new(&s)
    }
}

impl From<OrgId> for String {
    fn from(o: OrgId) -> Self {
        o.0
    }
}

/// Longest media type accepted.
pub const MAX_MEDIA_TYPE_LEN: usize = 127;

/// A media type such as `application/pdf` or `video/mp4`: `type/subtype`,
/// lower-case, RFC 6838 restricted-name characters, no parameters, at most
/// 127 bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MediaType(String);

impl MediaType {
    /// Parses a media type.
    pub fn new(s: &str) -> Result<Self, Error> {
        fn name_ok(n: &str) -> bool {
            !n.is_empty()
                && n.as_bytes()[0].is_ascii_alphanumeric()
                && n.bytes().all(|b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || matches!(
                            b,
                            b'!' | b'#' | b'$' | b'&' | b'-' | b'^' | b'_' | b'.' | b'+'
                        )
                })
        }
        let ok = s.len() <= MAX_MEDIA_TYPE_LEN
            && matches!(s.split_once('/'), Some((t, sub)) if name_ok(t) && name_ok(sub));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidMediaType(s.chars().take(80).collect()))
        }
    }

    /// The media type as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for MediaType {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::new(&s)
    }
}

impl From<MediaType> for String {
    fn from(m: MediaType) -> Self {
        m.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_ids() {
        for ok in ["Org1MSP", "lab-2", "a.b_c"] {
            assert!(OrgId::new(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in ["", ".hidden", "..", "a/b", "a b", "é", long.as_str()] {
            assert!(OrgId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn media_types() {
        for ok in [
            "application/pdf",
            "video/mp4",
            "image/svg+xml",
            "application/vnd.qcss.report",
        ] {
            assert!(MediaType::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "pdf",
            "Video/MP4",
            "text/plain; charset=utf-8",
            "/x",
            "x/",
            "a/b/c",
        ] {
            assert!(MediaType::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hashes_round_trip_hex() {
        let h = ChunkHash::of(b"abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(h.to_hex().parse::<ChunkHash>().ok(), Some(h));
        assert!("zz".parse::<FileId>().is_err());
    }
}
