//! The gRPC codec of every generated client and server: prost's, with a
//! bound on how many fields a message may carry, checked on the wire bytes
//! **before** anything is allocated.
//!
//! Why: protobuf amplifies. An empty repeated `string` costs 2 bytes on the
//! wire and ~24 bytes (plus an allocation) once decoded, so a message at the
//! size limit full of empty entries grew a peer's memory 13–26× its size
//! before any check of ours ran (issue 15). Counting the top-level fields
//! is a walk over the bytes with no allocation; a message over
//! [`MAX_FIELDS`] is refused with `INVALID_ARGUMENT`. Embedded messages on the
//! Fabric surface that requests carry (`SignedProposal`, `Envelope`) are
//! flat pairs of `bytes`; the nested layers that do hold repeated fields
//! (`ChaincodeInput.args`) are decoded by our own code, which bounds them
//! with [`check_nested_fields`] first.
//!
//! Decode errors become `INVALID_ARGUMENT` (prost's codec says `INTERNAL`,
//! which tells a client the server broke, not that its message was bad).

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// Most top-level fields (repeated entries and unknown fields included) a
/// gRPC message may carry. No message of the Fabric or QCSS surface comes
/// near it: repeated fields at the top level are lists of org names.
pub const MAX_FIELDS: usize = 4096;

/// prost's codec with [`MAX_FIELDS`] enforced before decoding.
#[derive(Debug, Clone)]
pub struct BoundedCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for BoundedCodec<T, U> {
    fn default() -> Self {
        BoundedCodec { _pd: PhantomData }
    }
}

impl<T, U> Codec for BoundedCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = BoundedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        BoundedDecoder {
            inner: ProstDecoder::default(),
        }
    }
}

/// The decoding half of [`BoundedCodec`].
#[derive(Debug, Clone)]
pub struct BoundedDecoder<U> {
    inner: ProstDecoder<U>,
}

impl<U: Message + Default> Decoder for BoundedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        use bytes::Buf;
        // tonic hands the whole message in one contiguous buffer.
        let bytes = buf.chunk();
        if bytes.len() == buf.remaining() {
            check_fields(bytes, MAX_FIELDS).map_err(|e| Status::invalid_argument(e.to_string()))?;
        }
        self.inner.decode(buf).map_err(|s| {
            if s.code() == tonic::Code::Internal {
                Status::invalid_argument(format!("undecodable message: {}", s.message()))
            } else {
                s
            }
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

/// Whether `status`, read from an incoming stream, says the client's message
/// was bad (undecodable, too many fields, over the size limit), as opposed
/// to the client going away. A streaming server answers such an error with
/// the status itself rather than ending the stream with OK.
pub fn is_bad_message(status: &Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
    )
}

/// The next message of a server's incoming stream, `None` once it ends. A
/// message that was bad ([`is_bad_message`]) is answered on `tx` with its
/// status before the stream ends; a client that went away is not.
pub async fn next_message<T, R>(
    input: &mut tonic::Streaming<T>,
    tx: &tokio::sync::mpsc::Sender<Result<R, Status>>,
) -> Option<T> {
    match input.message().await {
        Ok(m) => m,
        Err(status) => {
            if is_bad_message(&status) {
                let _ = tx.send(Err(status)).await;
            }
            None
        }
    }
}

/// Why a message was refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldsError {
    /// More fields than allowed.
    #[error("message carries more than {max} fields")]
    TooMany {
        /// The bound.
        max: usize,
    },
}

/// Counts the top-level fields of the protobuf message in `bytes`, stopping
/// with an error past `max`. Malformed bytes stop the count silently: the
/// decoder that runs next names what is wrong with them.
pub fn check_fields(bytes: &[u8], max: usize) -> Result<usize, FieldsError> {
    let mut n = 0;
    let mut fields = Fields { rest: bytes };
    while let Some(_field) = fields.next() {
        n += 1;
        if n > max {
            return Err(FieldsError::TooMany { max });
        }
    }
    Ok(n)
}

/// Counts the fields of the message nested at `path` (field numbers of
/// embedded messages, outermost first) in `bytes`, across every occurrence
/// of each level, stopping with an error past `max`. Use it before decoding
/// a message whose nested repeated fields would amplify (e.g. `[1, 3]` on a
/// `ChaincodeInvocationSpec` counts `ChaincodeInput`'s args).
pub fn check_nested_fields(bytes: &[u8], path: &[u32], max: usize) -> Result<usize, FieldsError> {
    let Some((first, rest)) = path.split_first() else {
        return check_fields(bytes, max);
    };
    let mut n = 0;
    let mut fields = Fields { rest: bytes };
    while let Some((number, value)) = fields.next() {
        if number == *first
            && let Some(inner) = value
        {
            n += check_nested_fields(inner, rest, max.saturating_sub(n))?;
            if n > max {
                return Err(FieldsError::TooMany { max });
            }
        }
    }
    Ok(n)
}

/// An iterator over the top-level fields of a message: (field number, the
/// bytes of a length-delimited value).
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    #[allow(clippy::type_complexity)]
    fn next(&mut self) -> Option<(u32, Option<&'a [u8]>)> {
        if self.rest.is_empty() {
            return None;
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).ok()?;
        let value = match key & 7 {
            0 => {
                self.varint()?;
                None
            }
            1 => {
                self.rest = self.rest.get(8..)?;
                None
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let (v, rest) = (self.rest.get(..len)?, self.rest.get(len..)?);
                self.rest = rest;
                Some(v)
            }
            // Group markers (proto2): counted, no payload of their own.
            3 | 4 => None,
            5 => {
                self.rest = self.rest.get(4..)?;
                None
            }
            _ => return None,
        };
        Some((number, value))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.rest.first()?;
            self.rest = &self.rest[1..];
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protos::{ChaincodeInput, ChaincodeInvocationSpec, ChaincodeSpec};

    #[test]
    fn counts_top_level_fields_and_refuses_past_the_bound() {
        let input = ChaincodeInput {
            args: vec![Vec::new(); 10],
            ..Default::default()
        };
        let bytes = input.encode_to_vec();
        assert_eq!(check_fields(&bytes, 100), Ok(10));
        assert_eq!(
            check_fields(&bytes, 9),
            Err(FieldsError::TooMany { max: 9 })
        );
    }

    #[test]
    fn counts_nested_args_of_an_invocation_spec() {
        let spec = ChaincodeInvocationSpec {
            chaincode_spec: Some(ChaincodeSpec {
                input: Some(ChaincodeInput {
                    args: vec![b"f".to_vec(); 50],
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        let bytes = spec.encode_to_vec();
        assert_eq!(check_nested_fields(&bytes, &[1, 3], 1000), Ok(50));
        assert!(check_nested_fields(&bytes, &[1, 3], 49).is_err());
        // A path that does not exist counts nothing.
        assert_eq!(check_nested_fields(&bytes, &[2, 3], 10), Ok(0));
    }

    #[test]
    fn malformed_bytes_stop_the_count_without_error() {
        assert_eq!(check_fields(&[0x0a, 0xff], 10), Ok(0));
        assert_eq!(check_fields(&[0xff; 11], 10), Ok(0));
    }
}
