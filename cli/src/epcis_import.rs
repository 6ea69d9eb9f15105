//! `qcss epcis import`: EPCIS 2.0 events mapped onto the traceability
//! contract's calls (or the reason one cannot be), then submitted in order.

use super::*;

/// What one EPCIS event becomes: a contract call, or a reason it cannot be one.
#[derive(Debug, PartialEq)]
pub(super) enum Mapped {
    Call(&'static str, Value),
    Skip(String),
}

pub(super) fn import(a: ImportArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("cannot read {}", a.file.display()))?;
    let doc: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", a.file.display()))?;
    let events = doc["epcisBody"]["eventList"]
        .as_array()
        .or_else(|| doc["eventList"].as_array())
        .ok_or_else(|| anyhow!("{}: no epcisBody.eventList", a.file.display()))?
        .clone();
    let (mut recorded, mut refused, mut skipped) = (0, 0, 0);
    runtime()?.block_on(async {
        let mut g = a.conn.gateway().await?;
        for (i, e) in events.iter().enumerate() {
            let mut what = format!("event {} ({}", i + 1, e["type"].as_str().unwrap_or("?"));
            if let Some(s) = e["bizStep"].as_str() {
                what = format!("{what} {}", short_vocab(s));
            }
            what.push(')');
            match map_event(e, a.batch.as_deref()) {
                Mapped::Skip(why) => {
                    skipped += 1;
                    println!("{what}: skipped: {why}");
                }
                Mapped::Call(f, arg) => {
                    let arg = arg.to_string();
                    match g.submit(&a.chaincode, f, &[arg.as_bytes()]).await {
                        Ok(c) if c.code == TxValidationCode::Valid => {
                            recorded += 1;
                            println!("{what}: recorded: {f} tx {} (block {})", c.tx_id, c.block);
                        }
                        Ok(c) => {
                            refused += 1;
                            println!(
                                "{what}: refused: {f} tx {} is invalid: {}",
                                c.tx_id,
                                c.code.as_str_name()
                            );
                        }
                        Err(err) => {
                            refused += 1;
                            println!("{what}: refused: {}", err.contract_message());
                        }
                    }
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    println!("{recorded} recorded, {refused} refused, {skipped} skipped");
    if refused > 0 {
        bail!("{refused} of {} event(s) refused", events.len());
    }
    Ok(())
}

pub(super) fn event_time(e: &Value) -> Result<Option<i64>, String> {
    match e["eventTime"].as_str() {
        None => Ok(None),
        Some(t) => parse_rfc3339(t)
            .map(Some)
            .ok_or_else(|| format!("eventTime {t:?} is not RFC 3339")),
    }
}

pub(super) fn id_of(v: &Value) -> Option<String> {
    v.get("id")
        .and_then(Value::as_str)
        .or_else(|| v.as_str())
        .map(str::to_owned)
}

pub(super) fn party(list: &Value, field: &str) -> Option<String> {
    list.as_array()?.iter().find_map(|p| {
        let v = p[field].as_str()?;
        Some(v.strip_prefix(MSP_PARTY).unwrap_or(v).to_owned())
    })
}

/// An EPCIS 2.0 event → the contract call that records it.
pub(super) fn map_event(e: &Value, retarget: Option<&str>) -> Mapped {
    let skip = |s: &str| Mapped::Skip(s.to_owned());
    let time = match event_time(e) {
        Ok(t) => t,
        Err(why) => return Mapped::Skip(why),
    };
    let step = e["bizStep"].as_str().map(short_vocab);
    match e["type"].as_str() {
        Some("ObjectEvent") => {
            let Some(step) = step else {
                return skip("an ObjectEvent needs a bizStep (add_event's biz_step)");
            };
            if e["action"] == "ADD" && step == "commissioning" {
                return skip(
                    "commissioning (ADD) is recorded by register_batch: register the batch instead",
                );
            }
            if e["sensorElementList"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
            {
                return skip("sensor readings are recorded by a bound device (submit_readings)");
            }
            let disposition = e["disposition"].as_str().map(short_vocab);
            if let Some(d) = disposition.as_deref()
                && matches!(d, "conformant" | "non_conformant" | "recalled")
            {
                return Mapped::Skip(format!(
                    "disposition {d} is set only by record_inspection or recall"
                ));
            }
            let mut objects: Vec<String> = Vec::new();
            for u in e["epcList"].as_array().into_iter().flatten() {
                objects.extend(u.as_str().and_then(ledger_id));
            }
            for q in e["quantityList"].as_array().into_iter().flatten() {
                objects.extend(q["epcClass"].as_str().and_then(ledger_id));
            }
            let n_given = e["epcList"].as_array().map_or(0, Vec::len)
                + e["quantityList"].as_array().map_or(0, Vec::len);
            if objects.len() != 1 || n_given != 1 {
                return skip(
                    "add_event records one object: exactly one GS1 Digital Link batch or unit in epcList/quantityList",
                );
            }
            let mut target = objects.remove(0);
            if let Some(b) = retarget {
                target = match target.splitn(3, '/').nth(2) {
                    Some(serial) => format!("{b}/{serial}"),
                    None => b.to_owned(),
                };
            }
            let mut arg = json!({"target": target, "biz_step": step});
            if let Some(d) = disposition {
                arg["disposition"] = json!(d);
            }
            if let Some(t) = time {
                arg["event_time"] = json!(t);
            }
            if let Some(o) = e["eventTimeZoneOffset"].as_str() {
                arg["event_time_zone_offset"] = json!(o);
            }
            if let Some(r) = place_of(&e["readPoint"]) {
                arg["read_point"] = json!(r);
            }
            if let Some(r) = place_of(&e["bizLocation"]) {
                arg["biz_location"] = json!(r);
            }
            if let Some(d) = party(&e["destinationList"], "destination") {
                arg["destination"] = json!(d);
            }
            if let Some(att) = e["qcss:attachments"].as_array() {
                arg["attachments"] = json!(att);
            } else if let Some(certs) = e["certificationInfo"].as_array() {
                let att: Vec<Value> = certs
                    .iter()
                    .filter_map(|c| c.as_str()?.strip_prefix(SHA256_URN))
                    .map(|h| json!({"sha256": h}))
                    .collect();
                if !att.is_empty() {
                    arg["attachments"] = json!(att);
                }
            }
            if let Some(d) = e.get("qcss:data").filter(|d| !d.is_null()) {
                arg["data"] = d.clone();
            }
            Mapped::Call("add_event", arg)
        }
        Some("TransformationEvent") => {
            let Some(tid) = e["transformationID"].as_str() else {
                return skip("transform needs a transformationID");
            };
            let tid = match tid.strip_prefix(TRANSFORMATION_ID) {
                Some(t) => percent_decode(t).unwrap_or_else(|| t.to_owned()),
                None => tid.to_owned(),
            };
            let mut inputs = Vec::new();
            for q in e["inputQuantityList"].as_array().into_iter().flatten() {
                let (Some(id), Some(n)) = (
                    q["epcClass"].as_str().and_then(ledger_id),
                    q["quantity"].as_u64(),
                ) else {
                    return skip(
                        "every input needs a GS1 Digital Link epcClass and an integer quantity",
                    );
                };
                inputs.push(json!({"batch": id, "quantity": n}));
            }
            if inputs.is_empty() || e["inputEPCList"].as_array().is_some_and(|l| !l.is_empty()) {
                return skip("transform consumes class-level inputs (inputQuantityList) only");
            }
            let outs = e["outputQuantityList"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let [out] = outs.as_slice() else {
                return skip("transform makes exactly one output batch (outputQuantityList)");
            };
            let (Some(id), Some(n)) = (
                out["epcClass"].as_str().and_then(ledger_id),
                out["quantity"].as_u64(),
            ) else {
                return skip(
                    "the output needs a GS1 Digital Link epcClass and an integer quantity",
                );
            };
            let Some((gtin, lot)) = id.split_once('/') else {
                return skip("the output is not a batch");
            };
            let extra = &e["qcss:output"];
            let date = extra["production_date"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    let t = time?;
                    let (y, m, d) = clock::civil_from_days(t.div_euclid(86_400));
                    Some(format!("{y:04}-{m:02}-{d:02}"))
                })
                .unwrap_or_else(|| "1970-01-01".to_owned());
            let site = extra["site"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| place_of(&e["bizLocation"]))
                .or_else(|| place_of(&e["readPoint"]))
                .unwrap_or_else(|| "unknown".to_owned());
            let mut arg = json!({
                "transformation_id": tid,
                "inputs": inputs,
                "output": {"gtin": gtin, "lot": lot, "quantity": n,
                           "uom": out["uom"].as_str().unwrap_or("H87"),
                           "production_date": date, "site": site},
            });
            if let Some(t) = time {
                arg["event_time"] = json!(t);
            }
            if let Some(o) = e["eventTimeZoneOffset"].as_str() {
                arg["event_time_zone_offset"] = json!(o);
            }
            if let Some(r) = place_of(&e["readPoint"]) {
                arg["location"] = json!(r);
            }
            Mapped::Call("transform", arg)
        }
        Some("AggregationEvent") => {
            let f = match e["action"].as_str() {
                Some("ADD") => "pack",
                Some("DELETE") => "unpack",
                _ => {
                    return skip(
                        "only ADD (pack) and DELETE (unpack) aggregations can be recorded",
                    );
                }
            };
            let Some(parent) = e["parentID"].as_str().and_then(ledger_id) else {
                return skip("parentID must be an SSCC");
            };
            let mut children = Vec::new();
            for c in e["childEPCs"].as_array().into_iter().flatten() {
                match c.as_str().and_then(ledger_id) {
                    Some(id) => children.push(id),
                    None => return Mapped::Skip(format!("child {c} is not a unit or an SSCC")),
                }
            }
            if e["childQuantityList"]
                .as_array()
                .is_some_and(|l| !l.is_empty())
            {
                return skip(
                    "class-level aggregation (childQuantityList) cannot be recorded: pack units",
                );
            }
            let mut arg = json!({"parent": parent, "children": children});
            if let Some(t) = time {
                arg["event_time"] = json!(t);
            }
            if let Some(r) = place_of(&e["readPoint"]) {
                arg["read_point"] = json!(r);
            }
            Mapped::Call(f, arg)
        }
        Some(other) => Mapped::Skip(format!("{other} has no counterpart in the contract")),
        None => skip("no event type"),
    }
}
