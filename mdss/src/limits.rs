//! What a store accepts: chunk size for uploads, maximum file size and
//! chunk count, manifest size, and quotas per org.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{MANIFEST_TAG, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use crate::{Error, OrgId};

/// Largest `max_manifest_bytes` a store may be configured with.
pub const MAX_MANIFEST_BYTES: usize = 64 << 20;

/// A store's limits. Every input is checked against them before it is
/// kept; manifests are checked for size before they are decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Bytes per chunk for new uploads (64 B to 64 MiB; default 1 MiB).
    pub chunk_size: u32,
    /// Largest file accepted, in stored bytes (default 4 GiB).
    pub max_file_size: u64,
    /// Most chunks a manifest may list (default 65 536).
    pub max_chunks: u32,
    /// Largest manifest accepted, checked before decoding (default 4 MiB).
    pub max_manifest_bytes: usize,
    /// Quota of an org not listed in `quotas`, in bytes; `None`: unlimited.
    pub default_quota: Option<u64>,
    /// Quotas per org, in bytes of the files it uploaded (a file is charged
    /// in full to each org that uploads it; replicas fetched by repair are
    /// not charged).
    pub quotas: BTreeMap<OrgId, u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            chunk_size: 1 << 20,
            max_file_size: 4 << 30,
            max_chunks: 65_536,
            max_manifest_bytes: 4 << 20,
            default_quota: None,
            quotas: BTreeMap::new(),
        }
    }
}

impl Limits {
    /// The quota of `org`, if it has one.
    pub fn quota(&self, org: &OrgId) -> Option<u64> {
        self.quotas.get(org).copied().or(self.default_quota)
    }

    /// Refuses inconsistent limits.
    pub fn check(&self) -> Result<(), Error> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunk_size) {
            return Err(Error::InvalidLimits("chunk_size must be 64 B to 64 MiB"));
        }
        if self.max_manifest_bytes < MANIFEST_TAG.len() + 64
            || self.max_manifest_bytes > MAX_MANIFEST_BYTES
        {
            return Err(Error::InvalidLimits(
                "max_manifest_bytes must be 85 B to 64 MiB",
            ));
        }
        if self.max_chunks == 0 {
            return Err(Error::InvalidLimits("max_chunks must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_from_json() {
        let l: Limits = serde_json::from_str(
            r#"{"chunk_size": 4096, "default_quota": 10, "quotas": {"Org1MSP": 1000}}"#,
        )
        .unwrap();
        assert_eq!(l.quota(&OrgId::new("Org1MSP").unwrap()), Some(1000));
        assert_eq!(l.quota(&OrgId::new("Org2MSP").unwrap()), Some(10));
        assert_eq!(l.max_chunks, Limits::default().max_chunks);
        assert!(l.check().is_ok());
        // Bad org ids and unknown fields are refused.
        assert!(serde_json::from_str::<Limits>(r#"{"quotas": {"../x": 1}}"#).is_err());
        assert!(serde_json::from_str::<Limits>(r#"{"chunksize": 1}"#).is_err());
    }
}
