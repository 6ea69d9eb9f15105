//! The device ⇄ gateway messages. Each is a frame `len u32 ‖ kind u8 ‖
//! body` (little-endian; `len` counts kind and body); a reader checks `len`
//! against [`MAX_FRAME`] before reading the body.
//!
//! - `0x01` **Update** (device → gateway): `state ‖ device_sig[64] ‖
//!   n u32 ‖ n × reading` — the readings and the state they lead to, signed
//!   by the device.
//! - `0x02` **Ack** (gateway → device): `seq u64 ‖ gateway_sig[64]` — the
//!   gateway checked the update and counter-signed that state.
//! - `0x03` **Refuse** (gateway → device): a UTF-8 reason (≤ 1 KiB); the
//!   gateway keeps its last co-signed state.

use crate::encode::{Reader, Writer};
use crate::reading::MAX_READING_BYTES;
use crate::state::MAX_STATE_BYTES;
use crate::{IotError, Reading, Signature, State};

/// Most readings one update may carry.
pub const MAX_UPDATE_READINGS: usize = 1024;
/// Longest refusal reason.
pub const MAX_REASON: usize = 1024;
/// Largest frame (kind + body) a reader accepts.
pub const MAX_FRAME: usize = 1 + MAX_STATE_BYTES + 64 + 4 + MAX_UPDATE_READINGS * MAX_READING_BYTES;

/// One message on the device ⇄ gateway connection.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// Readings and the device-signed state they lead to.
    Update {
        /// The proposed state.
        state: State,
        /// The device's signature on it.
        device_sig: Signature,
        /// The readings, numbered on from the previous state's count.
        readings: Vec<Reading>,
    },
    /// The gateway's counter-signature on state `seq`.
    Ack {
        /// The state's seq.
        seq: u64,
        /// The gateway's signature.
        gateway_sig: Signature,
    },
    /// The gateway refused the update.
    Refuse(String),
}

impl Message {
    /// The whole frame, length prefix included.
    pub fn frame(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.u32(0);
        match self {
            Self::Update {
                state,
                device_sig,
                readings,
            } => {
                w.u8(1);
                state.write(&mut w);
                w.bytes(&device_sig.0);
                // An update is built with at most MAX_UPDATE_READINGS readings.
                w.u32(readings.len() as u32);
                for r in readings {
                    r.write(&mut w);
                }
            }
            Self::Ack { seq, gateway_sig } => {
                w.u8(2);
                w.u64(*seq);
                w.bytes(&gateway_sig.0);
            }
            Self::Refuse(reason) => {
                w.u8(3);
                let mut end = reason.len().min(MAX_REASON);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                w.str(&reason[..end]);
            }
        }
        let len = (w.0.len() - 4) as u32;
        w.0[..4].copy_from_slice(&len.to_le_bytes());
        w.0
    }

    /// The body length a frame's 4-byte prefix announces, if acceptable.
    pub fn frame_len(prefix: [u8; 4]) -> Result<usize, IotError> {
        let len = u32::from_le_bytes(prefix) as usize;
        if len == 0 || len > MAX_FRAME {
            return Err(IotError::TooLarge {
                what: "a frame",
                got: len as u64,
                limit: MAX_FRAME as u64,
            });
        }
        Ok(len)
    }

    /// Decodes a frame's body (kind and payload, without the prefix).
    pub fn decode(body: &[u8]) -> Result<Self, IotError> {
        if body.len() > MAX_FRAME {
            return Err(IotError::TooLarge {
                what: "a frame",
                got: body.len() as u64,
                limit: MAX_FRAME as u64,
            });
        }
        let mut r = Reader::new("message", body);
        let msg = match r.u8()? {
            1 => {
                let state = State::read(&mut r)?;
                let device_sig = Signature(r.sig()?);
                let n = r.u32()? as usize;
                if n > MAX_UPDATE_READINGS {
                    return Err(IotError::TooLarge {
                        what: "an update's reading count",
                        got: n as u64,
                        limit: MAX_UPDATE_READINGS as u64,
                    });
                }
                let mut readings = Vec::with_capacity(n);
                for _ in 0..n {
                    readings.push(Reading::read(&mut r)?);
                }
                Self::Update {
                    state,
                    device_sig,
                    readings,
                }
            }
            2 => Self::Ack {
                seq: r.u64()?,
                gateway_sig: Signature(r.sig()?),
            },
            3 => Self::Refuse(r.str(MAX_REASON)?),
            k => return Err(r.err(format!("unknown message kind {k}"))),
        };
        r.finish()?;
        Ok(msg)
    }
}
