//! What a channel binds, and the id that commits to it.
//!
//! `channel id = H("QCSS-IOT-CHANNEL-v1", enc(params))` where `enc` is
//! [`ChannelParams::encode`]: the ledger (consortium channel) name, the
//! device and its Ed25519 key, the gateway's identity and Ed25519 key, the
//! batch, the schema with its limits, the challenge window and a nonce. A
//! state names its channel id, so a state signed for one ledger, batch or
//! pair of parties means nothing on another.

use std::fmt;

use qcss_anchor::{Hash32, hash_parts};
use serde::{Deserialize, Serialize};

use crate::IotError;
use crate::encode::{Reader, Writer};

/// Most measures a schema (and so a reading) may have.
pub const MAX_MEASURES: usize = 8;
/// Longest name (ledger, device, gateway, batch) in bytes.
pub const MAX_NAME: usize = 256;
/// Longest measure type (e.g. `gs1:Temperature`) in bytes.
pub const MAX_KIND: usize = 128;
/// Longest unit (UN/ECE Rec 20, e.g. `CEL`) in bytes.
pub const MAX_UNIT: usize = 16;
/// Longest challenge window: 30 days.
pub const MAX_CHALLENGE_SECS: u64 = 30 * 24 * 3600;
/// Version byte of the parameters' encoding.
const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"QCSS-IOT-CHANNEL-v1";

/// An Ed25519 public key (32 bytes; hex in JSON).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PublicKey(pub [u8; 32]);

/// The encodings of edwards25519's eight small-order points, canonical and
/// not (y ≥ p, a sign bit on x = 0): a key among them "verifies" signatures
/// anyone can make under a cofactorless check that does not look at the
/// key's order (ring's, which the contract's host uses), while
/// `verify_strict` refuses them, so the ledger and the CLI would disagree.
/// Computed from the curve equation; `keys`-feature tests check each one
/// against ed25519-dalek's `is_weak`.
pub const SMALL_ORDER_KEYS: [[u8; 32]; 14] = [
    [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ],
    [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x80,
    ],
    [
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ],
    [
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x80,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x85,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0xfa,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff,
    ],
];

impl PublicKey {
    /// Whether this is a small-order point ([`SMALL_ORDER_KEYS`]).
    pub fn is_small_order(&self) -> bool {
        SMALL_ORDER_KEYS.contains(&self.0)
    }
}

/// A channel's id: the hash committing to its [`ChannelParams`] (hex in JSON).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ChannelId(pub Hash32);

macro_rules! hex_newtype {
    ($t:ty, $n:expr, $what:expr) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.bytes()))
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(&self.bytes()[..8]))
            }
        }
        impl std::str::FromStr for $t {
            type Err = IotError;
            fn from_str(s: &str) -> Result<Self, IotError> {
                let mut out = [0u8; $n];
                hex::decode_to_slice(s, &mut out).map_err(|e| IotError::Malformed {
                    what: $what,
                    reason: format!("not {} hex digits: {e}", 2 * $n),
                })?;
                Ok(Self::from_bytes(out))
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use hex_newtype;

impl PublicKey {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
    fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }
}
hex_newtype!(PublicKey, 32, "public key");

impl ChannelId {
    fn bytes(&self) -> &[u8] {
        &self.0.0
    }
    fn from_bytes(b: [u8; 32]) -> Self {
        Self(Hash32(b))
    }
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0.0
    }
}
hex_newtype!(ChannelId, 32, "channel id");

/// One measure of a reading and its limits (the same shape as a batch's
/// `SensorLimit` in the traceability contract).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// EPCIS sensor type, e.g. `gs1:Temperature`.
    #[serde(rename = "type")]
    pub kind: String,
    /// UN/ECE Rec 20 unit, e.g. `CEL`.
    pub unit: String,
    /// Lowest acceptable value, if any.
    #[serde(default)]
    pub min: Option<f64>,
    /// Highest acceptable value, if any.
    #[serde(default)]
    pub max: Option<f64>,
}

impl Measure {
    /// Whether `value` lies outside this measure's limits.
    pub fn violated_by(&self, value: f64) -> bool {
        self.min.is_some_and(|m| value < m) || self.max.is_some_and(|m| value > m)
    }
}

/// The readings' schema: 1 to [`MAX_MEASURES`] measures, in order; every
/// reading carries one value per measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Schema(pub Vec<Measure>);

impl Schema {
    /// Checks bounds: measure count, name lengths, finite limits, min ≤ max.
    pub fn check(&self) -> Result<(), IotError> {
        let n = self.0.len();
        if n == 0 || n > MAX_MEASURES {
            return Err(IotError::Params(format!(
                "a schema has 1 to {MAX_MEASURES} measures, this one {n}"
            )));
        }
        for (i, m) in self.0.iter().enumerate() {
            if m.kind.is_empty() || m.kind.len() > MAX_KIND {
                return Err(IotError::Params(format!(
                    "measure {i}'s type must be 1 to {MAX_KIND} bytes"
                )));
            }
            if m.unit.is_empty() || m.unit.len() > MAX_UNIT {
                return Err(IotError::Params(format!(
                    "measure {i} ({})'s unit must be 1 to {MAX_UNIT} bytes",
                    m.kind
                )));
            }
            if m.min.is_some_and(|v| !v.is_finite()) || m.max.is_some_and(|v| !v.is_finite()) {
                return Err(IotError::Params(format!(
                    "measure {}'s limits must be finite numbers",
                    m.kind
                )));
            }
            if let (Some(lo), Some(hi)) = (m.min, m.max)
                && lo > hi
            {
                return Err(IotError::Params(format!(
                    "measure {}'s min {lo} is above its max {hi}",
                    m.kind
                )));
            }
            if self.0[..i].iter().any(|o| o.kind == m.kind) {
                return Err(IotError::Params(format!(
                    "measure {} appears twice",
                    m.kind
                )));
            }
        }
        Ok(())
    }

    /// Number of measures.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the schema has no measures (never, once checked).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Everything a channel binds; its hash is the [`ChannelId`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelParams {
    /// The consortium channel (ledger) the channel settles on.
    pub ledger: String,
    /// The registered device, `{msp}/{name}`.
    pub device: String,
    /// The device's registered Ed25519 key.
    pub device_key: PublicKey,
    /// The gateway's identity on the ledger, `{msp}:{sha256 of its certificate}`.
    pub gateway: String,
    /// The gateway's Ed25519 key for this channel.
    pub gateway_key: PublicKey,
    /// The batch (`{gtin}/{lot}`) or shipment the readings are about.
    pub batch: String,
    /// The readings' measures and limits.
    pub schema: Schema,
    /// Seconds a unilateral close waits for a newer state.
    pub challenge_secs: u64,
    /// Distinguishes channels with otherwise equal parameters.
    pub nonce: u64,
}

impl ChannelParams {
    /// Checks every bound ([`Schema::check`], name lengths, the window).
    pub fn check(&self) -> Result<(), IotError> {
        for (what, v) in [
            ("ledger", &self.ledger),
            ("device", &self.device),
            ("gateway", &self.gateway),
            ("batch", &self.batch),
        ] {
            if v.is_empty() || v.len() > MAX_NAME {
                return Err(IotError::Params(format!(
                    "{what} must be 1 to {MAX_NAME} bytes"
                )));
            }
        }
        if self.challenge_secs == 0 || self.challenge_secs > MAX_CHALLENGE_SECS {
            return Err(IotError::Params(format!(
                "the challenge window must be 1 to {MAX_CHALLENGE_SECS} seconds, not {}",
                self.challenge_secs
            )));
        }
        for (what, k) in [("device", &self.device_key), ("gateway", &self.gateway_key)] {
            if k.is_small_order() {
                return Err(IotError::Params(format!(
                    "the {what} key {k} is a small-order point: anyone could sign for it"
                )));
            }
        }
        if self.device_key == self.gateway_key {
            return Err(IotError::Params(
                "the device and the gateway must have different keys".into(),
            ));
        }
        self.schema.check()
    }

    /// The canonical encoding (version byte first).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        w.u8(VERSION);
        w.str(&self.ledger);
        w.str(&self.device);
        w.bytes(&self.device_key.0);
        w.str(&self.gateway);
        w.bytes(&self.gateway_key.0);
        w.str(&self.batch);
        // Checked: at most MAX_MEASURES.
        w.u8(self.schema.0.len() as u8);
        for m in &self.schema.0 {
            w.str(&m.kind);
            w.str(&m.unit);
            w.opt_f64(m.min);
            w.opt_f64(m.max);
        }
        w.u64(self.challenge_secs);
        w.u64(self.nonce);
        w.0
    }

    /// Decodes and checks [`ChannelParams::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, IotError> {
        let mut r = Reader::new("channel parameters", bytes);
        let v = r.u8()?;
        if v != VERSION {
            return Err(r.err(format!("version {v}, this code reads {VERSION}")));
        }
        let ledger = r.str(MAX_NAME)?;
        let device = r.str(MAX_NAME)?;
        let device_key = PublicKey(r.hash()?);
        let gateway = r.str(MAX_NAME)?;
        let gateway_key = PublicKey(r.hash()?);
        let batch = r.str(MAX_NAME)?;
        let n = r.u8()? as usize;
        if n > MAX_MEASURES {
            return Err(r.err(format!("{n} measures, over {MAX_MEASURES}")));
        }
        let mut measures = Vec::with_capacity(n);
        for _ in 0..n {
            measures.push(Measure {
                kind: r.str(MAX_KIND)?,
                unit: r.str(MAX_UNIT)?,
                min: r.opt_f64()?,
                max: r.opt_f64()?,
            });
        }
        let p = Self {
            ledger,
            device,
            device_key,
            gateway,
            gateway_key,
            batch,
            schema: Schema(measures),
            challenge_secs: r.u64()?,
            nonce: r.u64()?,
        };
        r.finish()?;
        p.check()?;
        Ok(p)
    }

    /// The channel id: `H("QCSS-IOT-CHANNEL-v1", enc(self))`.
    pub fn id(&self) -> ChannelId {
        ChannelId(hash_parts(DOMAIN, &[&self.encode()]))
    }
}

/// A gateway identity string from its MSP and certificate:
/// `{msp}:{hex SHA-256 of the PEM text, trimmed}` (what the contract derives
/// from the caller of `iot_open`).
pub fn gateway_identity(msp: &str, cert_pem: &str) -> String {
    let h = hash_parts(b"QCSS-IOT-GATEWAY-CERT-v1", &[cert_pem.trim().as_bytes()]);
    format!("{msp}:{h}")
}
