//! The records the contract keeps in world state (JSON values), one type
//! per object kind. Key layout: `store.rs`; meaning: README.md.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An organisation's on-chain permit (上链许可) and its whole history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Permit {
    pub msp: String,
    /// `applied` (first application pending), `active`, `rejected`, `suspended`.
    pub status: String,
    /// The approved certificate (none before the first approval).
    pub certificate: Option<Certificate>,
    /// An application awaiting a regulator (first one or a renewal).
    pub pending: Option<Certificate>,
    pub history: Vec<PermitChange>,
}

/// A quality certificate (ISO 9001, HACCP, …): the document stays off-chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub certificate_sha256: String,
    pub issuer: String,
    pub scope: String,
    /// Expiry, seconds since the Unix epoch.
    pub valid_until: i64,
}

/// One change of a permit, kept forever.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PermitChange {
    pub action: String,
    pub by: String,
    pub time: i64,
    pub tx_id: String,
    pub reason: Option<String>,
    pub certificate_sha256: Option<String>,
}

/// An inspection lab accredited by a regulator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lab {
    pub msp: String,
    pub name: String,
    pub scope: String,
    pub active: bool,
    pub accredited_by: String,
    pub time: i64,
    /// The key-level endorsement policy on `lab_seal/{msp}`.
    pub endorsement_policy: String,
}

/// A product (SKU).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Product {
    pub gtin: String,
    pub name: String,
    pub category: String,
    pub owner: String,
    pub spec: Value,
    pub registered_at: i64,
}

/// A batch (lot) and its live status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    pub id: String,
    pub gtin: String,
    pub lot: String,
    pub quantity: u64,
    /// Unit of measure (UN/ECE Rec 20, e.g. `KGM`, `LTR`, `H87` = piece).
    pub uom: String,
    /// What transformations have not consumed yet.
    pub available: u64,
    pub production_date: String,
    pub site: String,
    pub owner: String,
    pub custodian: String,
    pub shipment: Option<Shipment>,
    /// Ed25519 public key (base64url) that signs this batch's unit codes.
    pub code_key: Option<String>,
    pub limits: Vec<SensorLimit>,
    pub inputs: Vec<Quantity>,
    pub outputs: Vec<String>,
    pub transformation_id: Option<String>,
    /// `conformant` / `non_conformant` once inspected.
    pub conformance: Option<String>,
    /// The disposition of the latest event.
    pub disposition: Option<String>,
    pub recall: Option<Recall>,
    pub events: u32,
    pub inspections: u32,
    pub alerts: u32,
    pub created_at: i64,
}

impl Batch {
    pub fn consumed(&self) -> bool {
        self.available == 0 && !self.outputs.is_empty()
    }
}

/// A batch on its way from one organisation to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    /// The shipping transaction's id.
    pub id: String,
    pub from: String,
    pub to: String,
    pub carrier: Option<String>,
    pub shipped_at: i64,
}

/// A quantity of a batch (transformation input).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantity {
    pub batch: String,
    pub quantity: u64,
}

/// Process limits for one sensor type on a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorLimit {
    /// EPCIS sensor type, e.g. `gs1:Temperature`.
    #[serde(rename = "type")]
    pub kind: String,
    /// UN/ECE Rec 20 unit, e.g. `CEL`.
    pub unit: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Why and by whom a batch was recalled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recall {
    /// The batch the recall was ordered for (this one, or an upstream one).
    pub origin: String,
    pub reason: String,
    pub by: String,
    pub by_regulator: bool,
    pub time: i64,
    pub tx_id: String,
}

/// An EPCIS event in a batch's timeline (ObjectEvent, TransformationEvent,
/// AggregationEvent), with CBV vocabulary.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    /// `ObjectEvent`, `TransformationEvent`, `AggregationEvent`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `ADD`, `OBSERVE`, `DELETE` (none for transformations).
    pub action: Option<String>,
    pub batch: String,
    pub serial: Option<u64>,
    pub biz_step: String,
    pub disposition: Option<String>,
    pub actor: String,
    pub event_time: i64,
    pub event_time_zone_offset: String,
    pub record_time: i64,
    pub read_point: Option<String>,
    pub biz_location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sensors: Vec<SensorReading>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub attachments: Vec<Attachment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transformation_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub inputs: Vec<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub children: Vec<String>,
    #[serde(skip_serializing_if = "Value::is_null", default)]
    pub data: Value,
}

/// A file kept off-chain (MDSS), named by its SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub sha256: String,
    pub name: Option<String>,
    pub media_type: Option<String>,
}

/// One EPCIS sensor element.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorReading {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: f64,
    pub unit: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
}

/// A lab's inspection of a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inspection {
    pub batch: String,
    pub seq: u32,
    pub lab: String,
    pub result: String,
    pub measurements: Vec<Measurement>,
    pub standard: String,
    pub report_sha256: String,
    pub sample_id: Option<String>,
    pub inspected_at: i64,
    pub record_time: i64,
    pub tx_id: String,
}

/// A measured value with its unit and limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Measurement {
    pub fn within_limits(&self) -> bool {
        self.min.is_none_or(|m| self.value >= m) && self.max.is_none_or(|m| self.value <= m)
    }
}

/// A reading outside a batch's limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    pub batch: String,
    pub seq: u32,
    pub device: String,
    pub reading: SensorReading,
    pub limit: SensorLimit,
    pub event_id: String,
    pub record_time: i64,
}

/// An IoT device bound to a batch (or to its current shipment).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceBinding {
    pub msp: String,
    pub device: String,
    pub cert_pem: String,
    pub batch: String,
    /// Set when bound to the batch's current shipment only.
    pub shipment: Option<String>,
    pub bound_by: String,
    pub time: i64,
    /// The device's Ed25519 key for IoT state channels (hex), if provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_key: Option<String>,
}

/// A case or pallet (SSCC) and what is packed in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub sscc: String,
    pub owner: String,
    pub children: Vec<String>,
    pub parent: Option<String>,
    /// Number of aggregation events (`aggregation/{sscc}/{seq}`).
    pub events: u32,
}

/// What the ledger knows about one unit; absent until the unit is packed,
/// scanned or claimed (issuing codes writes nothing).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Unit {
    pub id: String,
    pub parent: Option<String>,
    pub scans: u32,
    pub first_scan: Option<Scan>,
    pub last_scan: Option<Scan>,
    pub claimed: Option<Scan>,
    /// Who claimed it, as a salted author id (`uces::author_id`): the
    /// consumer who may evaluate it. Never a name or certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// Why the code is suspected to be cloned (empty if not).
    pub clone_warnings: Vec<String>,
}

/// One scan or claim of a unit code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scan {
    pub time: i64,
    pub location: String,
    pub msp: String,
    pub tx_id: String,
}
