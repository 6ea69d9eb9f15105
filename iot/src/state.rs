//! [`State`]: what both parties sign after every update, its canonical
//! encoding, and the domain-separated digest each party signs.
//!
//! Encoding (version 1), little-endian:
//! `0x01 ‖ channel[32] ‖ seq u64 ‖ count u64 ‖ root[32] ‖ last_time i64 ‖
//! n u8 ‖ n × (min f64 ‖ max f64) ‖ final u8`, with `n = 0` exactly when
//! `count = 0`. Signed digest: `H("QCSS-IOT-STATE-v1/device", enc)` for the
//! device and `H("QCSS-IOT-STATE-v1/gateway", enc)` for the gateway (Raiden's
//! balance-proof pattern: the digest binds the message type and the
//! channel, and the channel id binds the ledger), so neither signature can
//! be replayed as the other's, as another message, or on another ledger.

use std::fmt;

use qcss_anchor::{Hash32, hash_parts};
use serde::{Deserialize, Serialize};

use crate::encode::{Reader, Writer};
use crate::params::{MAX_MEASURES, hex_newtype};
use crate::{ChannelId, ChannelParams, IotError, PublicKey};

const VERSION: u8 = 1;
/// Largest encoded state.
pub const MAX_STATE_BYTES: usize = 1 + 32 + 8 + 8 + 32 + 8 + 1 + 16 * MAX_MEASURES + 1;

/// Who signs a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    /// The sensor device.
    Device,
    /// The gateway (the carrier's or lab's system).
    Gateway,
}

impl Party {
    fn domain(self) -> &'static [u8] {
        match self {
            Self::Device => b"QCSS-IOT-STATE-v1/device",
            Self::Gateway => b"QCSS-IOT-STATE-v1/gateway",
        }
    }

    /// This party's key in `params`.
    pub fn key(self, params: &ChannelParams) -> PublicKey {
        match self {
            Self::Device => params.device_key,
            Self::Gateway => params.gateway_key,
        }
    }
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Device => "device",
            Self::Gateway => "gateway",
        })
    }
}

impl std::str::FromStr for Party {
    type Err = IotError;
    fn from_str(s: &str) -> Result<Self, IotError> {
        match s {
            "device" => Ok(Self::Device),
            "gateway" => Ok(Self::Gateway),
            _ => Err(IotError::Malformed {
                what: "party",
                reason: format!("{s:?} is neither \"device\" nor \"gateway\""),
            }),
        }
    }
}

/// An Ed25519 signature (64 bytes; hex in JSON).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
    fn from_bytes(b: [u8; 64]) -> Self {
        Self(b)
    }
}
hex_newtype!(Signature, 64, "signature");

/// The running state of a channel after an update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The channel.
    pub channel: ChannelId,
    /// The update's number: 0 for the empty opening state, +1 per update.
    pub seq: u64,
    /// Readings so far.
    pub count: u64,
    /// Root of the Merkle mountain range over all readings so far.
    pub root: Hash32,
    /// Time of the last reading (0 before the first).
    pub last_time: i64,
    /// Lowest value per measure so far (empty before the first reading).
    pub min: Vec<f64>,
    /// Highest value per measure so far (empty before the first reading).
    pub max: Vec<f64>,
    /// Set on the last state: no update may follow it.
    pub is_final: bool,
}

impl State {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(MAX_STATE_BYTES);
        self.write(&mut w);
        w.0
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u8(VERSION);
        w.bytes(self.channel.as_bytes());
        w.u64(self.seq);
        w.u64(self.count);
        w.bytes(&self.root.0);
        w.i64(self.last_time);
        // min and max have the same length, at most MAX_MEASURES (built by `Channel`).
        w.u8(self.min.len().min(MAX_MEASURES) as u8);
        for (lo, hi) in self.min.iter().zip(&self.max) {
            w.f64(*lo);
            w.f64(*hi);
        }
        w.u8(u8::from(self.is_final));
    }

    /// Decodes exactly one state.
    pub fn decode(bytes: &[u8]) -> Result<Self, IotError> {
        if bytes.len() > MAX_STATE_BYTES {
            return Err(IotError::TooLarge {
                what: "an encoded state",
                got: bytes.len() as u64,
                limit: MAX_STATE_BYTES as u64,
            });
        }
        let mut r = Reader::new("state", bytes);
        let s = Self::read(&mut r)?;
        r.finish()?;
        Ok(s)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, IotError> {
        let v = r.u8()?;
        if v != VERSION {
            return Err(r.err(format!("version {v}, this code reads {VERSION}")));
        }
        let channel = ChannelId(Hash32(r.hash()?));
        let seq = r.u64()?;
        let count = r.u64()?;
        let root = Hash32(r.hash()?);
        let last_time = r.i64()?;
        let n = r.u8()? as usize;
        if n > MAX_MEASURES {
            return Err(r.err(format!("{n} measures, over {MAX_MEASURES}")));
        }
        if (n == 0) != (count == 0) {
            return Err(r.err("min/max are present exactly when there are readings"));
        }
        let (mut min, mut max) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let lo = r.f64()?;
            let hi = r.f64()?;
            if lo > hi {
                return Err(r.err(format!("min {lo} above max {hi}")));
            }
            min.push(lo);
            max.push(hi);
        }
        let is_final = r.bool()?;
        if count > seq.saturating_mul(crate::wire::MAX_UPDATE_READINGS as u64) {
            return Err(r.err(format!(
                "{count} readings cannot fit in {seq} updates of at most {}",
                crate::wire::MAX_UPDATE_READINGS
            )));
        }
        Ok(Self {
            channel,
            seq,
            count,
            root,
            last_time,
            min,
            max,
            is_final,
        })
    }

    /// The opening state of `channel`: seq 0, no readings.
    pub fn open(channel: ChannelId) -> Self {
        Self {
            channel,
            seq: 0,
            count: 0,
            root: crate::reading::MMR.empty_root(),
            last_time: 0,
            min: Vec::new(),
            max: Vec::new(),
            is_final: false,
        }
    }

    /// The digest `party` signs.
    pub fn digest(&self, party: Party) -> Hash32 {
        hash_parts(party.domain(), &[&self.encode()])
    }

    /// Measures (index, min or max) whose range so far leaves `params`' limits.
    pub fn violations(&self, params: &ChannelParams) -> Vec<(usize, f64)> {
        let mut out = Vec::new();
        for (i, m) in params.schema.0.iter().enumerate() {
            let (Some(lo), Some(hi)) = (self.min.get(i), self.max.get(i)) else {
                continue;
            };
            if m.min.is_some_and(|l| *lo < l) {
                out.push((i, *lo));
            }
            if m.max.is_some_and(|h| *hi > h) {
                out.push((i, *hi));
            }
        }
        out
    }
}

/// A state with both parties' signatures: what the ledger accepts.
/// In JSON, `state` is the hex of its canonical encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedState {
    /// The state.
    pub state: State,
    /// The device's signature over [`State::digest`]`(Device)`.
    pub device_sig: Signature,
    /// The gateway's signature over [`State::digest`]`(Gateway)`.
    pub gateway_sig: Signature,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedStateJson {
    state: String,
    device_sig: Signature,
    gateway_sig: Signature,
}

impl Serialize for SignedState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SignedStateJson {
            state: hex::encode(self.state.encode()),
            device_sig: self.device_sig,
            gateway_sig: self.gateway_sig,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SignedState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = SignedStateJson::deserialize(d)?;
        if j.state.len() > 2 * MAX_STATE_BYTES {
            return Err(serde::de::Error::custom(format!(
                "state is {} hex digits, over {}",
                j.state.len(),
                2 * MAX_STATE_BYTES
            )));
        }
        let bytes = hex::decode(&j.state)
            .map_err(|e| serde::de::Error::custom(format!("state is not hex: {e}")))?;
        let state = State::decode(&bytes).map_err(serde::de::Error::custom)?;
        Ok(Self {
            state,
            device_sig: j.device_sig,
            gateway_sig: j.gateway_sig,
        })
    }
}

/// Checks an Ed25519 signature: `(key, 32-byte message, signature) → valid`.
/// The CLI passes `keys::verify`; the contract its host's `verify_ed25519`.
pub trait Verifier {
    /// Whether `sig` is `key`'s signature of `msg`.
    fn verify(&self, key: &PublicKey, msg: &[u8], sig: &Signature) -> bool;
}

impl<F: Fn(&PublicKey, &[u8], &Signature) -> bool> Verifier for F {
    fn verify(&self, key: &PublicKey, msg: &[u8], sig: &Signature) -> bool {
        self(key, msg, sig)
    }
}

impl SignedState {
    /// Checks the state names `params`' channel and both signatures verify.
    pub fn check(&self, params: &ChannelParams, v: &impl Verifier) -> Result<(), IotError> {
        let id = params.id();
        if self.state.channel != id {
            return Err(IotError::WrongChannel {
                what: "state",
                want: id,
                got: self.state.channel,
            });
        }
        check_sig(&self.state, params, Party::Device, &self.device_sig, v)?;
        check_sig(&self.state, params, Party::Gateway, &self.gateway_sig, v)?;
        if !self.state.min.is_empty() && self.state.min.len() != params.schema.len() {
            return Err(IotError::Malformed {
                what: "state",
                reason: format!(
                    "min/max for {} measures, the schema has {}",
                    self.state.min.len(),
                    params.schema.len()
                ),
            });
        }
        Ok(())
    }
}

/// Checks `party`'s signature on `state` under its key in `params`.
pub fn check_sig(
    state: &State,
    params: &ChannelParams,
    party: Party,
    sig: &Signature,
    v: &impl Verifier,
) -> Result<(), IotError> {
    if v.verify(&party.key(params), &state.digest(party).0, sig) {
        Ok(())
    } else {
        Err(IotError::BadSignature {
            party,
            seq: state.seq,
        })
    }
}
