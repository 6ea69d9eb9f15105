//! Lifecycle events (EPCIS ObjectEvent) on a batch or unit, with CBV
//! business steps and dispositions, and custody: only the organisation
//! holding a batch (or carrying it) records events, and a `shipping` →
//! `receiving` pair hands custody on.

use qcss_chaincode_sdk::{Context, Error, Json};
use serde::Deserialize;
use serde_json::Value;

use crate::ids::{Target, check_msp, check_sha256};
use crate::model::{Attachment, Batch, Event, Shipment};
use crate::store::{Tx, append_event, load_batch, require_live, save_batch};

/// CBV 2.0 business steps.
pub const CBV_BIZ_STEPS: &[&str] = &[
    "accepting",
    "arriving",
    "assembling",
    "collecting",
    "commissioning",
    "consigning",
    "creating_class_instance",
    "cycle_counting",
    "decommissioning",
    "departing",
    "destroying",
    "disassembling",
    "dispensing",
    "encoding",
    "entering_exiting",
    "holding",
    "inspecting",
    "installing",
    "killing",
    "loading",
    "other",
    "packing",
    "picking",
    "receiving",
    "removing",
    "repackaging",
    "repairing",
    "replacing",
    "reserving",
    "retail_selling",
    "sampling",
    "sensor_reporting",
    "shipping",
    "staging_outbound",
    "stock_taking",
    "stocking",
    "storing",
    "transporting",
    "unloading",
    "unpacking",
    "void_shipping",
];

/// QCSS business steps (exported to EPCIS as `https://qcss.dev/voc/bizstep/<step>`).
pub const QCSS_BIZ_STEPS: &[&str] = &[
    "harvesting",
    "washing",
    "pressing",
    "blending",
    "sterilising",
    "filling",
    "bottling",
    "labelling",
    "cooling",
];

/// CBV 2.0 dispositions.
pub const CBV_DISPOSITIONS: &[&str] = &[
    "active",
    "available",
    "completeness_verified",
    "completeness_inferred",
    "conformant",
    "container_closed",
    "container_open",
    "damaged",
    "destroyed",
    "dispensed",
    "disposed",
    "encoded",
    "expired",
    "in_progress",
    "in_transit",
    "inactive",
    "mismatch_instance",
    "mismatch_class",
    "mismatch_quantity",
    "needs_replacement",
    "no_pedigree_match",
    "non_conformant",
    "non_sellable_other",
    "partially_dispensed",
    "recalled",
    "reserved",
    "retail_sold",
    "returned",
    "sellable_accessible",
    "sellable_not_accessible",
    "stolen",
    "unavailable",
    "unknown",
];

/// Dispositions only the contract sets (by `record_inspection` and `recall`).
const RESERVED_DISPOSITIONS: &[&str] = &["conformant", "non_conformant", "recalled"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// A batch id `{gtin}/{lot}` or unit id `{gtin}/{lot}/{serial}`.
    target: String,
    biz_step: String,
    disposition: Option<String>,
    event_time: Option<i64>,
    event_time_zone_offset: Option<String>,
    read_point: Option<String>,
    biz_location: Option<String>,
    /// `shipping`: the consignee organisation (required).
    destination: Option<String>,
    /// `shipping`: the carrier organisation, which may record events in transit.
    carrier: Option<String>,
    #[serde(default)]
    attachments: Vec<Attachment>,
    #[serde(default)]
    data: Value,
}

/// `add_event`: records an ObjectEvent; returns the event.
pub fn add_event(ctx: &mut Context, e: Json<NewEvent>) -> Result<Json<Event>, Error> {
    let mut tx = Tx::new(ctx)?;
    let e = e.0;
    let target = Target::parse(&e.target)?;
    let step = e.biz_step.as_str();
    if !CBV_BIZ_STEPS.contains(&step) && !QCSS_BIZ_STEPS.contains(&step) {
        return Err(Error::new(format!(
            "unknown business step {step:?}: use a CBV 2.0 bizStep or a QCSS step ({})",
            QCSS_BIZ_STEPS.join(", ")
        )));
    }
    if let Some(d) = &e.disposition {
        if !CBV_DISPOSITIONS.contains(&d.as_str()) {
            return Err(Error::new(format!("unknown CBV disposition {d:?}")));
        }
        if RESERVED_DISPOSITIONS.contains(&d.as_str()) {
            return Err(Error::new(format!(
                "disposition {d:?} is set by record_inspection or recall, not add_event"
            )));
        }
    }
    for a in &e.attachments {
        check_sha256("attachment sha256", &a.sha256)?;
    }
    let offset = zone_offset(e.event_time_zone_offset)?;
    let event_time = tx.event_time("event_time", e.event_time)?;
    let mut batch = load_batch(ctx, target.batch())?;
    if let Some(serial) = target.serial()
        && serial > batch.quantity
    {
        return Err(beyond_quantity(serial, &batch));
    }
    if !(step == "destroying" && batch.recall.is_some()) {
        require_live(&batch)?;
    }
    let mut event = tx.event("ObjectEvent", target.batch(), step);
    event.action = Some(
        match step {
            "commissioning" => "ADD",
            "decommissioning" | "destroying" => "DELETE",
            _ => "OBSERVE",
        }
        .to_owned(),
    );
    event.serial = target.serial();
    event.disposition = e.disposition;
    event.event_time = event_time;
    event.event_time_zone_offset = offset;
    event.read_point = e.read_point;
    event.biz_location = e.biz_location;
    event.attachments = e.attachments;
    event.data = e.data;
    match step {
        "shipping" => {
            require_holder(&batch, &tx)?;
            if batch.shipment.is_some() {
                return Err(Error::new(format!(
                    "batch {} is already in transit",
                    batch.id
                )));
            }
            let to = e
                .destination
                .ok_or_else(|| Error::new("a shipping event needs a destination organisation"))?;
            check_msp(&to)?;
            if to == batch.custodian {
                return Err(Error::new(
                    "a shipment's destination must be another organisation",
                ));
            }
            if let Some(c) = &e.carrier {
                check_msp(c)?;
            }
            batch.shipment = Some(Shipment {
                id: tx.tx_id.clone(),
                from: batch.custodian.clone(),
                to: to.clone(),
                carrier: e.carrier,
                shipped_at: event_time,
            });
            event.source = Some(batch.custodian.clone());
            event.destination = Some(to);
            event.disposition.get_or_insert_with(|| "in_transit".into());
        }
        "receiving" => {
            match &batch.shipment {
                Some(s) if s.to == tx.msp() => {}
                Some(s) => {
                    return Err(Error::new(format!(
                        "access denied: batch {} is shipped to {}, not {}",
                        batch.id,
                        s.to,
                        tx.msp()
                    )));
                }
                None => {
                    return Err(Error::new(format!(
                        "batch {} is not in transit: nothing to receive",
                        batch.id
                    )));
                }
            }
            let s = batch.shipment.take();
            event.source = s.map(|s| s.from);
            event.destination = Some(tx.msp().to_owned());
            // CBV: goods received are back in progress at the receiver.
            event
                .disposition
                .get_or_insert_with(|| "in_progress".into());
            batch.custodian = tx.msp().to_owned();
        }
        _ => require_handler(&batch, &tx)?,
    }
    append_event(ctx, &mut batch, &event)?;
    save_batch(ctx, &batch)?;
    ctx.set_event("EventAdded", &event.event_id)?;
    Ok(Json(event))
}

/// Fails unless the caller's organisation holds the batch.
pub fn require_holder(batch: &Batch, tx: &Tx) -> Result<(), Error> {
    if batch.custodian == tx.msp() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "access denied: batch {} is held by {}; {} does not hold it",
            batch.id,
            batch.custodian,
            tx.msp()
        )))
    }
}

/// Fails unless the caller's organisation holds the batch or, while it is
/// in transit, carries it.
pub fn require_handler(batch: &Batch, tx: &Tx) -> Result<(), Error> {
    let carrier = batch.shipment.as_ref().and_then(|s| s.carrier.as_deref());
    if batch.custodian == tx.msp() || carrier == Some(tx.msp()) {
        Ok(())
    } else {
        Err(Error::new(format!(
            "access denied: batch {} is held by {}; {} neither holds nor carries it",
            batch.id,
            batch.custodian,
            tx.msp()
        )))
    }
}

pub fn beyond_quantity(serial: u64, batch: &Batch) -> Error {
    Error::new(format!(
        "serial {serial} is beyond batch {}'s quantity {}",
        batch.id, batch.quantity
    ))
}

/// A client-given EPCIS `eventTimeZoneOffset` (`±hh:mm`, hours ≤ 23,
/// minutes ≤ 59), checked; `+00:00` when none is given.
pub fn zone_offset(offset: Option<String>) -> Result<String, Error> {
    let offset = offset.unwrap_or_else(|| "+00:00".into());
    let b = offset.as_bytes();
    let ok = b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[3] == b':'
        && [1, 2, 4, 5].iter().all(|&i| b[i].is_ascii_digit())
        && &offset[1..3] <= "23"
        && &offset[4..6] <= "59";
    if ok {
        Ok(offset)
    } else {
        Err(Error::new(format!(
            "event_time_zone_offset {offset:?} must be ±hh:mm"
        )))
    }
}
