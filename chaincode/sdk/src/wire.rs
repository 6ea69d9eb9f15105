//! Decoding of the byte layouts the host hands to a contract (ABI.md,
//! "Encodings"): a *list* is a little-endian `u32` count followed by that
//! many items, each a little-endian `u32` length and the bytes.

use crate::Error;

/// Splits an encoded list into its items.
pub(crate) fn decode_list(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut rest = bytes;
    let count = take_u32(&mut rest)?;
    // Each item needs at least its 4-byte length: bound the allocation by
    // what the input can actually hold.
    let mut items = Vec::with_capacity((count as usize).min(rest.len() / 4));
    for _ in 0..count {
        let len = take_u32(&mut rest)? as usize;
        if rest.len() < len {
            return Err(malformed());
        }
        let (item, tail) = rest.split_at(len);
        items.push(item.to_vec());
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(malformed());
    }
    Ok(items)
}

/// Encodes items as a list (the inverse of [`decode_list`]; the runtime
/// has its own encoder, this one tests the decoder).
#[cfg(test)]
fn encode_list<I, B>(items: I) -> Vec<u8>
where
    I: ExactSizeIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let mut out = Vec::new();
    out.extend_from_slice(&len_u32(items.len()).to_le_bytes());
    for item in items {
        let item = item.as_ref();
        out.extend_from_slice(&len_u32(item.len()).to_le_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// `(key, value)` rows of a range scan.
pub(crate) type Rows = Vec<(String, Vec<u8>)>;

/// A range-scan result: one flag byte (1 = more rows exist past the limit),
/// then a list of alternating keys and values.
pub(crate) fn decode_range(bytes: &[u8]) -> Result<(Rows, bool), Error> {
    let (&flag, list) = bytes.split_first().ok_or_else(malformed)?;
    let more = match flag {
        0 => false,
        1 => true,
        _ => return Err(malformed()),
    };
    let items = decode_list(list)?;
    if items.len() % 2 != 0 {
        return Err(malformed());
    }
    let mut rows = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(key), Some(value)) = (it.next(), it.next()) {
        rows.push((String::from_utf8(key)?, value));
    }
    Ok((rows, more))
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, Error> {
    let Some((head, tail)) = rest.split_first_chunk::<4>() else {
        return Err(malformed());
    };
    *rest = tail;
    Ok(u32::from_le_bytes(*head))
}

#[cfg(test)]
fn len_u32(len: usize) -> u32 {
    // Lengths come from wasm32 memory (at most 4 GiB) or from tests.
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn malformed() -> Error {
    Error::new("malformed data from the host (ABI mismatch between SDK and runtime?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_round_trip() {
        let items: Vec<&[u8]> = vec![b"put", b"", b"\x00\xff"];
        let bytes = encode_list(items.iter());
        assert_eq!(
            decode_list(&bytes).unwrap(),
            vec![b"put".to_vec(), vec![], vec![0, 255]]
        );
        assert_eq!(
            decode_list(&encode_list(Vec::<&[u8]>::new().iter()))
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn list_rejects_truncated_and_trailing_bytes() {
        let bytes = encode_list([b"abc"].iter());
        assert!(decode_list(&bytes[..bytes.len() - 1]).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_list(&long).is_err());
        assert!(decode_list(&[1, 0]).is_err());
        // A huge count with no items must not allocate or succeed.
        assert!(decode_list(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn range_decoding() {
        let mut bytes = vec![1];
        bytes.extend(encode_list([&b"a"[..], b"1", b"b", b"2"].iter()));
        let (rows, more) = decode_range(&bytes).unwrap();
        assert!(more);
        assert_eq!(
            rows,
            vec![("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]
        );

        let mut odd = vec![0];
        odd.extend(encode_list([&b"a"[..]].iter()));
        assert!(decode_range(&odd).is_err());
        assert!(decode_range(&[]).is_err());
        assert!(decode_range(&[2, 0, 0, 0, 0]).is_err());
    }
}
