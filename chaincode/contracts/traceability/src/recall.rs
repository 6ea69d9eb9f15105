//! Recalls: the batch owner or a regulator recalls a batch, and every batch
//! made from it, at any depth downstream, is recalled with it. Containers
//! show the recall of any batch inside them (`container_contents`).

use qcss_chaincode_sdk::{Context, Error, Json};
use serde::Deserialize;

use crate::ids::{BatchId, check_text};
use crate::model::Recall;
use crate::store::{Tx, append_event, load_batch, save_batch};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecallArgs {
    batch: String,
    reason: String,
    /// The `holding` events' EPCIS `eventTimeZoneOffset`; `+00:00` when
    /// none is given.
    event_time_zone_offset: Option<String>,
}

/// `recall`: returns the ids of every batch recalled (the first is the one named).
pub fn recall(ctx: &mut Context, a: Json<RecallArgs>) -> Result<Json<Vec<String>>, Error> {
    let mut tx = Tx::new(ctx)?;
    let a = a.0;
    check_text("reason", &a.reason, 1024)?;
    let offset = crate::events::zone_offset(a.event_time_zone_offset)?;
    let origin = BatchId::parse(&a.batch)?;
    let first = load_batch(ctx, &origin)?;
    let by_regulator = tx.is("regulator");
    if first.owner != tx.msp() && !by_regulator {
        return Err(Error::new(format!(
            "access denied: only batch {}'s owner {} or a regulator may recall it",
            first.id, first.owner
        )));
    }
    if let Some(r) = &first.recall {
        return Err(Error::new(format!(
            "batch {} is already recalled ({})",
            first.id, r.reason
        )));
    }
    let recall = Recall {
        origin: first.id.clone(),
        reason: a.reason,
        by: tx.msp().to_owned(),
        by_regulator,
        time: tx.now,
        tx_id: tx.tx_id.clone(),
    };
    let mut recalled = Vec::new();
    let mut queue = vec![first.id.clone()];
    while let Some(id) = queue.pop() {
        if recalled.contains(&id) {
            continue;
        }
        let bid = BatchId::parse(&id)?;
        let mut batch = load_batch(ctx, &bid)?;
        if batch.recall.is_some() {
            // Already recalled (by an earlier recall): its downstream was too.
            continue;
        }
        batch.recall = Some(recall.clone());
        let mut event = tx.event("ObjectEvent", &bid, "holding");
        event.action = Some("OBSERVE".to_owned());
        event.disposition = Some("recalled".to_owned());
        event.event_time_zone_offset = offset.clone();
        event.data = serde_json::json!({
            "recall": { "origin": recall.origin, "reason": recall.reason }
        });
        append_event(ctx, &mut batch, &event)?;
        save_batch(ctx, &batch)?;
        queue.extend(batch.outputs.iter().rev().cloned());
        recalled.push(id);
    }
    crate::index::on_recall(ctx, &tx, &recalled)?;
    ctx.set_event("Recalled", &recalled)?;
    Ok(Json(recalled))
}
