//! [`Reading`]: one sample of every measure of the schema, and its leaf in
//! the channel's Merkle mountain range.
//!
//! Encoding (version 1): `0x01 ‖ seq u64 ‖ time i64 ‖ n u8 ‖ n × f64`, all
//! little-endian, values as IEEE-754 bits and always finite. The leaf is
//! `H("QCSS-IOT-READINGS-v1", 0x00 ‖ channel id ‖ enc(reading))`, so a
//! reading proven in one channel proves nothing in another.

use qcss_anchor::Hash32;
use qcss_anchor::mmr::Hasher;
use serde::{Deserialize, Serialize};

use crate::encode::{Reader, Writer};
use crate::params::MAX_MEASURES;
use crate::{ChannelId, IotError, Schema};

/// The readings' Merkle mountain range hashes under this domain.
pub const MMR: Hasher = Hasher::new(b"QCSS-IOT-READINGS-v1");
const VERSION: u8 = 1;
/// Largest encoded reading.
pub const MAX_READING_BYTES: usize = 18 + 8 * MAX_MEASURES;

/// One reading: its number in the channel (0, 1, 2, …), when it was taken
/// (seconds since the Unix epoch, by the device's clock), and one value per
/// schema measure, in schema order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reading {
    /// Its number in the channel: the count of readings before it.
    pub seq: u64,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// One finite value per measure.
    pub values: Vec<f64>,
}

impl Reading {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(18 + 8 * self.values.len());
        self.write(&mut w);
        w.0
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u8(VERSION);
        w.u64(self.seq);
        w.i64(self.time);
        // Bounded by `check` before any reading is signed or sent.
        w.u8(self.values.len().min(u8::MAX as usize) as u8);
        for v in &self.values {
            w.f64(*v);
        }
    }

    /// Decodes one reading (exactly these bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self, IotError> {
        if bytes.len() > MAX_READING_BYTES {
            return Err(IotError::TooLarge {
                what: "an encoded reading",
                got: bytes.len() as u64,
                limit: MAX_READING_BYTES as u64,
            });
        }
        let mut r = Reader::new("reading", bytes);
        let out = Self::read(&mut r)?;
        r.finish()?;
        Ok(out)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, IotError> {
        let v = r.u8()?;
        if v != VERSION {
            return Err(r.err(format!("version {v}, this code reads {VERSION}")));
        }
        let seq = r.u64()?;
        let time = r.i64()?;
        let n = r.u8()? as usize;
        if n == 0 || n > MAX_MEASURES {
            return Err(r.err(format!("{n} values; 1 to {MAX_MEASURES} allowed")));
        }
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            values.push(r.f64()?);
        }
        Ok(Self { seq, time, values })
    }

    /// Checks the reading fits `schema`: one finite value per measure.
    pub fn check(&self, schema: &Schema) -> Result<(), IotError> {
        if self.values.len() != schema.len() {
            return Err(IotError::BadReading {
                seq: self.seq,
                reason: format!(
                    "{} values for a schema of {} measures",
                    self.values.len(),
                    schema.len()
                ),
            });
        }
        if self.values.iter().any(|v| !v.is_finite()) {
            return Err(IotError::BadReading {
                seq: self.seq,
                reason: "a value is not a finite number".into(),
            });
        }
        Ok(())
    }

    /// This reading's leaf in channel `channel`'s range.
    pub fn leaf(&self, channel: &ChannelId) -> Hash32 {
        MMR.leaf(&[channel.as_bytes(), &self.encode()])
    }

    /// The measures (index, value) outside `schema`'s limits.
    pub fn violations(&self, schema: &Schema) -> Vec<(usize, f64)> {
        self.values
            .iter()
            .zip(&schema.0)
            .enumerate()
            .filter(|(_, (v, m))| m.violated_by(**v))
            .map(|(i, (v, _))| (i, *v))
            .collect()
    }
}
