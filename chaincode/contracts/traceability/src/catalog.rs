//! Products, batches and transformations (EPCIS TransformationEvent):
//! what permitted enterprises register, and how raw-material batches become
//! product batches without any quantity being consumed twice.

use qcss_chaincode_sdk::{Context, Error, Json};
use serde::Deserialize;
use serde_json::Value;

use crate::events::zone_offset;
use crate::ids::{BatchId, base64url_decode, check_date, check_gtin, check_text};
use crate::model::{Batch, Product, Quantity, SensorLimit};
use crate::store::{
    Tx, append_event, batch_key, key, load, load_batch, load_product, require_permit, save,
    save_batch,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    gtin: String,
    name: String,
    category: String,
    #[serde(default)]
    spec: Value,
}

/// `register_product`: a permitted enterprise registers a product (GTIN).
pub fn register_product(ctx: &mut Context, p: Json<NewProduct>) -> Result<Json<Product>, Error> {
    let tx = Tx::new(ctx)?;
    tx.require("enterprise", "register a product")?;
    require_permit(ctx, &tx)?;
    let p = p.0;
    check_gtin(&p.gtin)?;
    check_text("name", &p.name, 256)?;
    check_text("category", &p.category, 128)?;
    let k = key("product", &[&p.gtin])?;
    if let Some(existing) = load::<Product>(ctx, &k)? {
        return Err(Error::new(format!(
            "product {} is already registered by {}",
            p.gtin, existing.owner
        )));
    }
    let product = Product {
        gtin: p.gtin,
        name: p.name,
        category: p.category,
        owner: tx.msp().to_owned(),
        spec: p.spec,
        registered_at: tx.now,
    };
    save(ctx, &k, &product)?;
    ctx.set_event("ProductRegistered", &product.gtin)?;
    Ok(Json(product))
}

/// `get_product`: anyone.
pub fn get_product(ctx: &mut Context, gtin: String) -> Result<Json<Product>, Error> {
    load_product(ctx, &gtin).map(Json)
}

/// A batch to register (directly, or as a transformation's output).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBatch {
    gtin: String,
    lot: String,
    quantity: u64,
    uom: String,
    production_date: String,
    site: String,
    code_key: Option<String>,
    #[serde(default)]
    limits: Vec<SensorLimit>,
    /// The commissioning event's EPCIS `eventTimeZoneOffset` (the site's
    /// zone); `+00:00` when none is given.
    event_time_zone_offset: Option<String>,
}

/// `register_batch`: the product's owner, holding a permit, registers a lot.
pub fn register_batch(ctx: &mut Context, b: Json<NewBatch>) -> Result<Json<Batch>, Error> {
    let mut tx = Tx::new(ctx)?;
    let batch = create_batch(ctx, &mut tx, b.0, None, Vec::new())?;
    ctx.set_event("BatchRegistered", &batch.id)?;
    Ok(Json(batch))
}

fn create_batch(
    ctx: &mut Context,
    tx: &mut Tx,
    b: NewBatch,
    transformation: Option<&str>,
    inputs: Vec<Quantity>,
) -> Result<Batch, Error> {
    tx.require("enterprise", "register a batch")?;
    require_permit(ctx, tx)?;
    let id = BatchId::new(&b.gtin, &b.lot)?;
    let product = load_product(ctx, &b.gtin)?;
    if product.owner != tx.msp() {
        return Err(Error::new(format!(
            "access denied: product {} belongs to {}, not {}",
            b.gtin,
            product.owner,
            tx.msp()
        )));
    }
    if b.quantity == 0 {
        return Err(Error::new("quantity must be at least 1"));
    }
    check_text("uom", &b.uom, 8)?;
    check_date("production_date", &b.production_date)?;
    check_text("site", &b.site, 256)?;
    if let Some(k) = &b.code_key {
        check_code_key(k)?;
    }
    check_limits(&b.limits)?;
    let offset = zone_offset(b.event_time_zone_offset)?;
    let k = batch_key("batch", &id, None)?;
    if load::<Batch>(ctx, &k)?.is_some() {
        return Err(Error::new(format!(
            "batch {} is already registered",
            id.id()
        )));
    }
    let mut batch = Batch {
        id: id.id(),
        gtin: b.gtin,
        lot: b.lot,
        quantity: b.quantity,
        uom: b.uom,
        available: b.quantity,
        production_date: b.production_date,
        site: b.site.clone(),
        owner: tx.msp().to_owned(),
        custodian: tx.msp().to_owned(),
        shipment: None,
        code_key: b.code_key,
        limits: b.limits,
        inputs: inputs.clone(),
        outputs: Vec::new(),
        transformation_id: transformation.map(str::to_owned),
        conformance: None,
        disposition: None,
        recall: None,
        events: 0,
        inspections: 0,
        alerts: 0,
        created_at: tx.now,
    };
    let mut event = match transformation {
        Some(t) => {
            let mut e = tx.event("TransformationEvent", &id, "commissioning");
            e.transformation_id = Some(t.to_owned());
            e.inputs = inputs;
            e
        }
        None => {
            let mut e = tx.event("ObjectEvent", &id, "commissioning");
            e.action = Some("ADD".to_owned());
            e
        }
    };
    event.disposition = Some("active".to_owned());
    event.event_time_zone_offset = offset;
    event.biz_location = Some(b.site);
    append_event(ctx, &mut batch, &event)?;
    save(ctx, &k, &batch)?;
    Ok(batch)
}

/// `get_batch`: anyone.
pub fn get_batch(ctx: &mut Context, id: String) -> Result<Json<Batch>, Error> {
    load_batch(ctx, &BatchId::parse(&id)?).map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeKey {
    batch: String,
    public_key: String,
}

/// `set_code_key`: the batch owner registers the Ed25519 key of its unit
/// codes, once (codes already printed must stay verifiable).
pub fn set_code_key(ctx: &mut Context, a: Json<CodeKey>) -> Result<Json<Batch>, Error> {
    let tx = Tx::new(ctx)?;
    let mut batch = load_batch(ctx, &BatchId::parse(&a.0.batch)?)?;
    require_owner(&batch, &tx, "register its code key")?;
    check_code_key(&a.0.public_key)?;
    if batch.code_key.is_some() {
        return Err(Error::new(format!(
            "batch {} already has a code key: codes signed with it stay valid",
            batch.id
        )));
    }
    batch.code_key = Some(a.0.public_key);
    save_batch(ctx, &batch)?;
    ctx.set_event("CodeKeyRegistered", &batch.id)?;
    Ok(Json(batch))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    batch: String,
    limits: Vec<SensorLimit>,
}

/// `set_limits`: the batch owner sets the process limits readings are checked against.
pub fn set_limits(ctx: &mut Context, a: Json<Limits>) -> Result<Json<Batch>, Error> {
    let tx = Tx::new(ctx)?;
    let mut batch = load_batch(ctx, &BatchId::parse(&a.0.batch)?)?;
    require_owner(&batch, &tx, "set its limits")?;
    check_limits(&a.0.limits)?;
    batch.limits = a.0.limits;
    save_batch(ctx, &batch)?;
    ctx.set_event("LimitsSet", &batch.id)?;
    Ok(Json(batch))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transformation {
    transformation_id: String,
    inputs: Vec<Quantity>,
    output: NewBatch,
    event_time: Option<i64>,
    /// The events' EPCIS `eventTimeZoneOffset`; `+00:00` when none is given
    /// (the output's commissioning event takes it too unless the output
    /// names its own).
    event_time_zone_offset: Option<String>,
    location: Option<String>,
}

/// `transform`: consumes quantities of input batches the caller holds and
/// registers the output batch (EPCIS TransformationEvent).
pub fn transform(ctx: &mut Context, t: Json<Transformation>) -> Result<Json<Batch>, Error> {
    let mut tx = Tx::new(ctx)?;
    let t = t.0;
    check_text("transformation_id", &t.transformation_id, 128)?;
    if t.inputs.is_empty() {
        return Err(Error::new("a transformation needs at least one input"));
    }
    let tkey = key("transformation", &[&t.transformation_id])?;
    if load::<Value>(ctx, &tkey)?.is_some() {
        return Err(Error::new(format!(
            "transformation {} is already recorded",
            t.transformation_id
        )));
    }
    let event_time = tx.event_time("event_time", t.event_time)?;
    let offset = zone_offset(t.event_time_zone_offset.clone())?;
    let output_id = BatchId::new(&t.output.gtin, &t.output.lot)?.id();
    let mut inputs = Vec::with_capacity(t.inputs.len());
    for (i, q) in t.inputs.iter().enumerate() {
        let id = BatchId::parse(&q.batch)?;
        if t.inputs[..i].iter().any(|p| p.batch == q.batch) {
            return Err(Error::new(format!(
                "input batch {} is listed twice",
                q.batch
            )));
        }
        if q.batch == output_id {
            return Err(Error::new("a batch cannot be an input of itself"));
        }
        let b = load_batch(ctx, &id)?;
        if b.custodian != tx.msp() {
            return Err(Error::new(format!(
                "access denied: batch {} is held by {}, not {}",
                b.id,
                b.custodian,
                tx.msp()
            )));
        }
        if let Some(r) = &b.recall {
            return Err(Error::new(format!(
                "batch {} is recalled ({})",
                b.id, r.reason
            )));
        }
        if b.conformance.as_deref() == Some("non_conformant") {
            return Err(Error::new(format!(
                "batch {} failed an inspection (non_conformant) and cannot be used",
                b.id
            )));
        }
        if b.shipment.is_some() {
            return Err(Error::new(format!("batch {} is in transit", b.id)));
        }
        if q.quantity == 0 {
            return Err(Error::new(format!(
                "input {}: quantity must be at least 1",
                b.id
            )));
        }
        if q.quantity > b.available {
            return Err(Error::new(format!(
                "batch {} has only {} {} left, cannot consume {}",
                b.id, b.available, b.uom, q.quantity
            )));
        }
        inputs.push((id, b));
    }
    let location = t.location.clone();
    let mut out = t.output;
    if out.event_time_zone_offset.is_none() {
        out.event_time_zone_offset = Some(offset.clone());
    }
    let mut output = create_batch(
        ctx,
        &mut tx,
        out,
        Some(&t.transformation_id),
        t.inputs.clone(),
    )?;
    for ((id, mut b), q) in inputs.into_iter().zip(&t.inputs) {
        b.available -= q.quantity;
        b.outputs.push(output.id.clone());
        let mut e = tx.event("TransformationEvent", &id, "commissioning");
        e.transformation_id = Some(t.transformation_id.clone());
        e.inputs = vec![q.clone()];
        e.children = vec![output.id.clone()];
        e.event_time = event_time;
        e.event_time_zone_offset = offset.clone();
        e.read_point = location.clone();
        append_event(ctx, &mut b, &e)?;
        save_batch(ctx, &b)?;
    }
    let mut record = tx.event(
        "TransformationEvent",
        &BatchId::parse(&output.id)?,
        "commissioning",
    );
    record.transformation_id = Some(t.transformation_id.clone());
    record.inputs = t.inputs;
    record.children = vec![output.id.clone()];
    record.event_time = event_time;
    record.event_time_zone_offset = offset;
    record.read_point = location;
    save(ctx, &tkey, &record)?;
    output.transformation_id = Some(t.transformation_id);
    save_batch(ctx, &output)?;
    let input_ids = record
        .inputs
        .iter()
        .map(|q| BatchId::parse(&q.batch))
        .collect::<Result<Vec<_>, _>>()?;
    crate::index::on_transform(ctx, &tx, &BatchId::parse(&output.id)?, &input_ids)?;
    ctx.set_event("Transformed", &output.id)?;
    Ok(Json(output))
}

pub fn require_owner(batch: &Batch, tx: &Tx, doing: &str) -> Result<(), Error> {
    if batch.owner == tx.msp() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "access denied: only batch {}'s owner {} may {doing}",
            batch.id, batch.owner
        )))
    }
}

fn check_code_key(k: &str) -> Result<(), Error> {
    match base64url_decode(k) {
        Some(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(Error::new(format!(
            "code key {k:?} must be an Ed25519 public key: 32 bytes, base64url without padding"
        ))),
    }
}

fn check_limits(limits: &[SensorLimit]) -> Result<(), Error> {
    for l in limits {
        check_text("limit type", &l.kind, 128)?;
        check_text("limit unit", &l.unit, 16)?;
        if l.min.is_none() && l.max.is_none() {
            return Err(Error::new(format!("limit {} needs a min or a max", l.kind)));
        }
        if let (Some(lo), Some(hi)) = (l.min, l.max)
            && lo > hi
        {
            return Err(Error::new(format!(
                "limit {}: min {lo} is above max {hi}",
                l.kind
            )));
        }
    }
    Ok(())
}
