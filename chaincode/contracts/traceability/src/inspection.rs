//! Inspections by accredited labs, endorsed by the lab's own peer.
//!
//! A regulator accredits a lab organisation (`accredit_lab`), which creates
//! the key `lab_seal/{msp}` with the key-level endorsement policy
//! `OR('{msp}.peer')`. Every `record_inspection` writes that key (a blind
//! write: no read, so a lab's inspections do not conflict with each other),
//! so the validator marks the transaction invalid unless a peer of the lab's
//! organisation endorsed it. The inspection record itself gets the same
//! policy. README.md, "Endorsement", explains why not a chaincode policy.

use qcss_chaincode_sdk::{Context, Error, Json};
use serde::{Deserialize, Serialize};

use crate::ids::{BatchId, check_msp, check_sha256, check_text};
use crate::model::{Inspection, Lab, Measurement};
use crate::store::{Tx, append_event, batch_key, key, load, load_batch, save, save_batch};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLab {
    msp: String,
    name: String,
    scope: String,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

/// The policy a lab's peer must satisfy.
pub fn lab_policy(msp: &str) -> String {
    format!("OR('{msp}.peer')")
}

#[derive(Serialize)]
struct Seal<'a> {
    lab: &'a str,
    last_tx: &'a str,
    time: i64,
}

/// `accredit_lab`: a regulator accredits (or with `active: false`
/// withdraws) an inspection lab organisation.
pub fn accredit_lab(ctx: &mut Context, l: Json<NewLab>) -> Result<Json<Lab>, Error> {
    let tx = Tx::new(ctx)?;
    tx.require("regulator", "accredit a lab")?;
    let l = l.0;
    check_msp(&l.msp)?;
    check_text("name", &l.name, 256)?;
    check_text("scope", &l.scope, 1024)?;
    let lab = Lab {
        endorsement_policy: lab_policy(&l.msp),
        msp: l.msp,
        name: l.name,
        scope: l.scope,
        active: l.active,
        accredited_by: tx.msp().to_owned(),
        time: tx.now,
    };
    save(ctx, &key("lab", &[&lab.msp])?, &lab)?;
    let seal = key("lab_seal", &[&lab.msp])?;
    if ctx.get_key_policy(&seal)?.is_none() {
        save(
            ctx,
            &seal,
            &Seal {
                lab: &lab.msp,
                last_tx: &tx.tx_id,
                time: tx.now,
            },
        )?;
        ctx.set_key_policy(&seal, lab.endorsement_policy.as_bytes())?;
    }
    ctx.set_event("LabAccredited", &lab.msp)?;
    Ok(Json(lab))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInspection {
    batch: String,
    /// `pass` or `fail`.
    result: String,
    measurements: Vec<Measurement>,
    standard: String,
    report_sha256: String,
    sample_id: Option<String>,
    inspected_at: Option<i64>,
    /// The inspecting event's EPCIS `eventTimeZoneOffset` (the lab's
    /// zone); `+00:00` when none is given.
    event_time_zone_offset: Option<String>,
}

/// `record_inspection`: a lab identity of an accredited lab records a
/// result; a `fail` marks the batch non-conformant.
pub fn record_inspection(
    ctx: &mut Context,
    i: Json<NewInspection>,
) -> Result<Json<Inspection>, Error> {
    let mut tx = Tx::new(ctx)?;
    tx.require("lab", "record an inspection")?;
    let i = i.0;
    let lab: Lab = load(ctx, &key("lab", &[tx.msp()])?)?.ok_or_else(|| {
        Error::new(format!(
            "access denied: organisation {} is not an accredited lab",
            tx.msp()
        ))
    })?;
    if !lab.active {
        return Err(Error::new(format!(
            "access denied: lab {}'s accreditation is withdrawn",
            lab.msp
        )));
    }
    let pass = match i.result.as_str() {
        "pass" => true,
        "fail" => false,
        other => {
            return Err(Error::new(format!(
                "result must be \"pass\" or \"fail\", got {other:?}"
            )));
        }
    };
    if i.measurements.is_empty() {
        return Err(Error::new("an inspection needs at least one measurement"));
    }
    for m in &i.measurements {
        check_text("measurement name", &m.name, 128)?;
        check_text("measurement unit", &m.unit, 16)?;
        if pass && !m.within_limits() {
            return Err(Error::new(format!(
                "measurement {} = {} {} is outside its limits, but the result is pass",
                m.name, m.value, m.unit
            )));
        }
    }
    check_text("standard", &i.standard, 256)?;
    check_sha256("report_sha256", &i.report_sha256)?;
    let inspected_at = tx.event_time("inspected_at", i.inspected_at)?;
    let offset = crate::events::zone_offset(i.event_time_zone_offset)?;
    let id = BatchId::parse(&i.batch)?;
    let mut batch = load_batch(ctx, &id)?;
    let record = Inspection {
        batch: batch.id.clone(),
        seq: batch.inspections,
        lab: lab.msp.clone(),
        result: i.result,
        measurements: i.measurements,
        standard: i.standard,
        report_sha256: i.report_sha256,
        sample_id: i.sample_id,
        inspected_at,
        record_time: tx.now,
        tx_id: tx.tx_id.clone(),
    };
    let ikey = batch_key("inspection", &id, Some(batch.inspections))?;
    save(ctx, &ikey, &record)?;
    ctx.set_key_policy(&ikey, lab.endorsement_policy.as_bytes())?;
    // The lab's seal: its key-level policy makes the lab's peer a required endorser.
    save(
        ctx,
        &key("lab_seal", &[&lab.msp])?,
        &Seal {
            lab: &lab.msp,
            last_tx: &tx.tx_id,
            time: tx.now,
        },
    )?;
    batch.inspections += 1;
    let verdict = if pass { "conformant" } else { "non_conformant" };
    if batch.conformance.as_deref() != Some("non_conformant") {
        batch.conformance = Some(verdict.to_owned());
    }
    let mut event = tx.event("ObjectEvent", &id, "inspecting");
    event.action = Some("OBSERVE".to_owned());
    event.disposition = Some(verdict.to_owned());
    event.event_time = inspected_at;
    event.event_time_zone_offset = offset;
    event.data = serde_json::json!({
        "bizTransaction": { "type": "testres", "id": format!("{}:{}", batch.id, record.seq) },
        "standard": record.standard,
        "report_sha256": record.report_sha256,
    });
    append_event(ctx, &mut batch, &event)?;
    save_batch(ctx, &batch)?;
    let ref_id = format!("inspection/{}/{}", record.batch, record.seq);
    crate::index::on_inspection(ctx, &tx, &batch, pass, &ref_id)?;
    ctx.set_event("InspectionRecorded", &record.batch)?;
    Ok(Json(record))
}
