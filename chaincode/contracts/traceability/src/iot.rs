//! IoT devices: bound to a batch (or its current shipment) by the
//! organisation that owns the device and handles the batch; the device then
//! submits readings (EPCIS sensor elements) in transactions it signs itself.
//! A reading outside the batch's limits raises a quality alert.

use qcss_chaincode_sdk::{Context, Error, Json};
use serde::Deserialize;

use crate::events::require_handler;
use crate::ids::{BatchId, check_text};
use crate::model::{Alert, Batch, DeviceBinding, SensorLimit, SensorReading};
use crate::store::{Tx, append_event, batch_key, key, load, load_batch, save, save_batch};

/// Most readings one transaction may carry.
pub const MAX_READINGS: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bind {
    /// The device's name within its organisation.
    device: String,
    /// The device's certificate (PEM), issued by the caller's CA.
    device_cert_pem: String,
    batch: String,
    /// `batch` (default) or `shipment`: the binding ends when the current shipment is received.
    scope: Option<String>,
    /// The device's Ed25519 public key (64 hex digits), provisioned at
    /// manufacture, with which it co-signs IoT state channels (`iot_open`).
    channel_key: Option<String>,
}

/// `bind_device`: the device's owner organisation, handling the batch,
/// binds one of its devices to it.
pub fn bind_device(ctx: &mut Context, b: Json<Bind>) -> Result<Json<DeviceBinding>, Error> {
    let tx = Tx::new(ctx)?;
    if tx.is("device") {
        return Err(Error::new("access denied: a device cannot bind devices"));
    }
    let b = b.0;
    check_text("device", &b.device, 128)?;
    check_text("device_cert_pem", &b.device_cert_pem, 8192)?;
    if !b.device_cert_pem.contains("BEGIN CERTIFICATE") {
        return Err(Error::new("device_cert_pem must be a PEM certificate"));
    }
    let channel_key = match b.channel_key {
        Some(k) => Some(
            k.parse::<qcss_iot::PublicKey>()
                .map_err(|e| Error::new(format!("channel_key: {e}")))?
                .to_string(),
        ),
        None => None,
    };
    let batch = load_batch(ctx, &BatchId::parse(&b.batch)?)?;
    require_handler(&batch, &tx)?;
    let shipment = match b.scope.as_deref().unwrap_or("batch") {
        "batch" => None,
        "shipment" => Some(
            batch
                .shipment
                .as_ref()
                .map(|s| s.id.clone())
                .ok_or_else(|| Error::new(format!("batch {} is not in transit", batch.id)))?,
        ),
        other => {
            return Err(Error::new(format!(
                "scope must be \"batch\" or \"shipment\", got {other:?}"
            )));
        }
    };
    let binding = DeviceBinding {
        msp: tx.msp().to_owned(),
        device: b.device,
        cert_pem: b.device_cert_pem.trim().to_owned(),
        batch: batch.id.clone(),
        shipment,
        bound_by: tx.msp().to_owned(),
        time: tx.now,
        channel_key,
    };
    save(
        ctx,
        &key("device", &[&binding.msp, &binding.device])?,
        &binding,
    )?;
    ctx.set_event("DeviceBound", &binding.device)?;
    Ok(Json(binding))
}

/// `unbind_device`: the device's owner ends a binding.
pub fn unbind_device(ctx: &mut Context, device: String) -> Result<(), Error> {
    let tx = Tx::new(ctx)?;
    let k = key("device", &[tx.msp(), &device])?;
    if load::<DeviceBinding>(ctx, &k)?.is_none() {
        return Err(Error::new(format!(
            "device {device} of {} is not bound",
            tx.msp()
        )));
    }
    ctx.delete_state(&k)?;
    ctx.set_event("DeviceUnbound", &device)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readings {
    device: String,
    batch: String,
    readings: Vec<SensorReading>,
}

/// `submit_readings`: a bound device records readings; returns the alerts raised.
pub fn submit_readings(ctx: &mut Context, r: Json<Readings>) -> Result<Json<Vec<Alert>>, Error> {
    let mut tx = Tx::new(ctx)?;
    tx.require("device", "submit sensor readings")?;
    let r = r.0;
    let id = BatchId::parse(&r.batch)?;
    let not_bound = || {
        Error::new(format!(
            "access denied: device {} is not bound to batch {}",
            r.device, r.batch
        ))
    };
    let binding: DeviceBinding =
        load(ctx, &key("device", &[tx.msp(), &r.device])?)?.ok_or_else(not_bound)?;
    if binding.batch != id.id() || binding.cert_pem != tx.caller.cert_pem.trim() {
        return Err(not_bound());
    }
    if r.readings.is_empty() || r.readings.len() > MAX_READINGS {
        return Err(Error::new(format!(
            "send between 1 and {MAX_READINGS} readings"
        )));
    }
    let mut batch = load_batch(ctx, &id)?;
    if let Some(s) = &binding.shipment
        && batch.shipment.as_ref().map(|x| &x.id) != Some(s)
    {
        return Err(Error::new(format!(
            "access denied: device {}'s binding ended with shipment {s}",
            r.device
        )));
    }
    let mut alerts = Vec::new();
    for reading in &r.readings {
        check_text("reading type", &reading.kind, 128)?;
        check_text("reading unit", &reading.unit, 16)?;
        tx.event_time("reading time", Some(reading.time))?;
        let Some(limit) = batch.limits.iter().find(|l| l.kind == reading.kind) else {
            continue;
        };
        if limit.unit != reading.unit {
            return Err(Error::new(format!(
                "reading {} is in {}, but batch {}'s limit is in {}",
                reading.kind, reading.unit, batch.id, limit.unit
            )));
        }
        let low = limit.min.is_some_and(|m| reading.value < m);
        let high = limit.max.is_some_and(|m| reading.value > m);
        if low || high {
            alerts.push((reading.clone(), limit.clone()));
        }
    }
    let mut event = tx.event("ObjectEvent", &id, "sensor_reporting");
    event.action = Some("OBSERVE".to_owned());
    let raised_readings = r.readings.len() as u64;
    event.sensors = r.readings;
    event.data = serde_json::json!({ "device": format!("{}/{}", binding.msp, binding.device) });
    append_event(ctx, &mut batch, &event)?;
    let device = format!("{}/{}", binding.msp, binding.device);
    let mut raised = Vec::with_capacity(alerts.len());
    for (reading, limit) in alerts {
        raised.push(raise_alert(
            ctx,
            &mut tx,
            &mut batch,
            &device,
            reading,
            limit,
            serde_json::Value::Null,
        )?);
    }
    save_batch(ctx, &batch)?;
    let alert_ids: Vec<String> = raised
        .iter()
        .map(|a| format!("alert/{}/{}", a.batch, a.seq))
        .collect();
    crate::index::on_readings(ctx, &tx, &batch.gtin, raised_readings, &alert_ids)?;
    if raised.is_empty() {
        ctx.set_event("ReadingsRecorded", &batch.id)?;
    } else {
        ctx.set_event("QualityAlert", &raised)?;
    }
    Ok(Json(raised))
}

/// Records a quality alert for `reading` outside `limit` on `batch`: an
/// alert record, an EPCIS ObjectEvent with the `qualityAlert` on the
/// timeline (`extra` merged into its data), and the batch's alert count
/// (the caller saves the batch). On-ledger readings and settled IoT
/// channels raise the same alerts.
pub fn raise_alert(
    ctx: &mut Context,
    tx: &mut Tx,
    batch: &mut Batch,
    device: &str,
    reading: SensorReading,
    limit: SensorLimit,
    extra: serde_json::Value,
) -> Result<Alert, Error> {
    let id = BatchId::new(&batch.gtin, &batch.lot)?;
    let mut alert_event = tx.event("ObjectEvent", &id, "sensor_reporting");
    alert_event.action = Some("OBSERVE".to_owned());
    let mut data = serde_json::json!({
        "qualityAlert": {
            "type": reading.kind, "value": reading.value, "unit": reading.unit,
            "min": limit.min, "max": limit.max, "time": reading.time,
        },
        "device": device,
    });
    if let (Some(d), serde_json::Value::Object(more)) = (data.as_object_mut(), extra) {
        d.extend(more);
    }
    alert_event.data = data;
    let alert = Alert {
        batch: batch.id.clone(),
        seq: batch.alerts,
        device: device.to_owned(),
        reading,
        limit,
        event_id: alert_event.event_id.clone(),
        record_time: tx.now,
    };
    append_event(ctx, batch, &alert_event)?;
    save(ctx, &batch_key("alert", &id, Some(batch.alerts))?, &alert)?;
    batch.alerts += 1;
    Ok(alert)
}
