//! The canonical encoding: bincode 1.3 with fixed-width big-endian integers,
//! a byte limit enforced before and during decoding, and no trailing bytes.
//! Every signed or hashed structure goes through [`encode`]; every byte
//! string from the network goes through [`decode`].

use bincode::Options;
use serde::{Serialize, de::DeserializeOwned};

/// A refused or malformed encoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum CodecError {
    /// The input is longer than the limit for its kind; nothing was decoded.
    #[error("{len} bytes exceed the limit of {limit}")]
    Oversize {
        /// Bytes given.
        len: usize,
        /// Limit for this kind of message.
        limit: usize,
    },
    /// The bytes are not a canonical encoding of the expected type.
    #[error("malformed encoding: {0}")]
    Malformed(String),
}

fn options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_big_endian()
        .with_limit(limit)
        .reject_trailing_bytes()
}

/// Canonical bytes of `value`.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // bincode fails only on a size limit (u64::MAX here) or a custom
    // `Serialize` error; our types use derived impls, so this cannot fail.
    options(u64::MAX).serialize(value).unwrap_or_default()
}

/// Decodes `bytes`, refusing anything longer than `limit` before decoding.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::Oversize {
            len: bytes.len(),
            limit,
        });
    }
    options(limit as u64)
        .deserialize(bytes)
        .map_err(|e| CodecError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_is_refused_before_decoding_and_trailing_bytes_too() {
        let bytes = encode(&(7u64, vec![1u8, 2, 3]));
        assert_eq!(bytes.len(), 8 + 8 + 3);
        assert_eq!(
            decode::<(u64, Vec<u8>)>(&bytes, 10),
            Err(CodecError::Oversize { len: 19, limit: 10 })
        );
        assert_eq!(decode::<(u64, Vec<u8>)>(&bytes, 19), Ok((7, vec![1, 2, 3])));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode::<(u64, Vec<u8>)>(&longer, 100),
            Err(CodecError::Malformed(_))
        ));
        // A length prefix claiming 2^40 elements is refused, not allocated.
        let mut huge = 7u64.to_be_bytes().to_vec();
        huge.extend((1u64 << 40).to_be_bytes());
        assert!(matches!(
            decode::<(u64, Vec<u8>)>(&huge, 100),
            Err(CodecError::Malformed(_))
        ));
    }
}
