//! World-state access: the key layout, typed loads and saves, who the
//! caller is, the transaction's facts, and appending to a batch timeline.
//!
//! Keys are Fabric composite keys (`\0type\0attr…\0`):
//!
//! | key | value |
//! |---|---|
//! | `permit/{msp}` | [`Permit`] |
//! | `lab/{msp}`, `lab_seal/{msp}` | [`Lab`], the lab's endorsement seal |
//! | `product/{gtin}` | [`Product`] |
//! | `batch/{gtin}/{lot}` | [`Batch`] |
//! | `event/{gtin}/{lot}/{seq:08}` | [`Event`] |
//! | `inspection/{gtin}/{lot}/{seq:08}` | [`Inspection`] |
//! | `alert/{gtin}/{lot}/{seq:08}` | [`Alert`] |
//! | `transformation/{id}` | the TransformationEvent [`Event`] |
//! | `container/{sscc}` | [`Container`] |
//! | `aggregation/{sscc}/{seq:08}` | its AggregationEvents ([`Event`]) |
//! | `unit/{gtin}/{lot}/{serial}` | [`Unit`] |
//! | `device/{msp}/{name}` | [`DeviceBinding`] |
//!
//! UCES keeps its own keys (README.md, "Key layout"): `uces/config` and
//! `uces_proposal/…` (`governance.rs`), `uces_eval/…`, `uces_author/…`,
//! `uces_daily/…` (`uces.rs`), `qidx/…`, `qidx_lot/…` (`index.rs`),
//! `reward_addr/…`, `reward_owner/…`, `uces_seen/…`, `reward_act/…`,
//! `reward_batch/…` (`rewards.rs`).

use qcss_chaincode_sdk::{Caller, Context, Error, create_composite_key};
use serde::{Serialize, de::DeserializeOwned};

use crate::ids::{BatchId, UnitId};
use crate::model::{Batch, Event, Permit, Product, Unit};

/// Seconds an event or reading may lie in the future of its transaction.
pub const CLOCK_SKEW: i64 = 300;

pub fn key(kind: &str, attrs: &[&str]) -> Result<String, Error> {
    create_composite_key(kind, attrs)
}

pub fn batch_key(kind: &str, batch: &BatchId, seq: Option<u32>) -> Result<String, Error> {
    match seq {
        Some(seq) => key(kind, &[&batch.gtin, &batch.lot, &format!("{seq:08}")]),
        None => key(kind, &[&batch.gtin, &batch.lot]),
    }
}

pub fn unit_key(unit: &UnitId) -> Result<String, Error> {
    key(
        "unit",
        &[&unit.batch.gtin, &unit.batch.lot, &unit.serial.to_string()],
    )
}

pub fn load<T: DeserializeOwned>(ctx: &mut Context, key: &str) -> Result<Option<T>, Error> {
    ctx.get_state(key)
}

pub fn save<T: Serialize>(ctx: &mut Context, key: &str, value: &T) -> Result<(), Error> {
    ctx.put_state(key, value)
}

pub fn load_batch(ctx: &mut Context, id: &BatchId) -> Result<Batch, Error> {
    load(ctx, &batch_key("batch", id, None)?)?
        .ok_or_else(|| Error::new(format!("unknown batch {}", id.id())))
}

pub fn save_batch(ctx: &mut Context, batch: &Batch) -> Result<(), Error> {
    let id = BatchId::new(&batch.gtin, &batch.lot)?;
    save(ctx, &batch_key("batch", &id, None)?, batch)
}

pub fn load_product(ctx: &mut Context, gtin: &str) -> Result<Product, Error> {
    load(ctx, &key("product", &[gtin])?)?
        .ok_or_else(|| Error::new(format!("unknown product {gtin}")))
}

pub fn load_unit(ctx: &mut Context, unit: &UnitId) -> Result<Unit, Error> {
    Ok(load(ctx, &unit_key(unit)?)?.unwrap_or_else(|| Unit {
        id: unit.id(),
        ..Unit::default()
    }))
}

/// The transaction's facts: caller, time, id.
pub struct Tx {
    pub caller: Caller,
    pub now: i64,
    pub tx_id: String,
    events: u32,
}

impl Tx {
    pub fn new(ctx: &mut Context) -> Result<Self, Error> {
        Ok(Tx {
            caller: ctx.caller()?.clone(),
            now: ctx.tx_timestamp()?.seconds,
            tx_id: ctx.tx_id()?,
            events: 0,
        })
    }

    pub fn msp(&self) -> &str {
        &self.caller.msp_id
    }

    /// Whether the certificate carries the QCSS kind `kind` (`kind=true`).
    pub fn is(&self, kind: &str) -> bool {
        self.caller.attr(kind) == Some("true")
    }

    /// Fails unless the caller holds kind `kind`; `doing` says what for.
    pub fn require(&self, kind: &str, doing: &str) -> Result<(), Error> {
        if self.is(kind) {
            Ok(())
        } else {
            let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            Err(Error::new(format!(
                "access denied: only {article} {kind} identity (certificate attribute {kind}=true) may {doing}"
            )))
        }
    }

    /// A fresh event id: `{tx_id}:{n}`, unique on the channel.
    pub fn next_event_id(&mut self) -> String {
        self.events += 1;
        format!("{}:{}", self.tx_id, self.events)
    }

    /// An event skeleton with the actor and times filled in.
    pub fn event(&mut self, kind: &str, batch: &BatchId, biz_step: &str) -> Event {
        Event {
            event_id: self.next_event_id(),
            kind: kind.to_owned(),
            batch: batch.id(),
            biz_step: biz_step.to_owned(),
            actor: self.caller.msp_id.clone(),
            event_time: self.now,
            event_time_zone_offset: "+00:00".to_owned(),
            record_time: self.now,
            ..Event::default()
        }
    }

    /// Checks a client-supplied event time: not after the transaction
    /// (beyond [`CLOCK_SKEW`]); `None` means now.
    pub fn event_time(&self, field: &str, time: Option<i64>) -> Result<i64, Error> {
        match time {
            Some(t) if t > self.now + CLOCK_SKEW => Err(Error::new(format!(
                "{field} {t} is in the future of the transaction time {}",
                self.now
            ))),
            Some(t) => Ok(t),
            None => Ok(self.now),
        }
    }
}

/// Fails unless `msp` holds an active permit whose certificate has not
/// expired at `now`.
pub fn require_permit(ctx: &mut Context, tx: &Tx) -> Result<(), Error> {
    let msp = tx.msp().to_owned();
    let permit: Option<Permit> = load(ctx, &key("permit", &[&msp])?)?;
    let Some(permit) = permit else {
        return Err(Error::new(format!(
            "organisation {msp} has no on-chain permit: apply with apply_permit and wait for a regulator's approval"
        )));
    };
    if permit.status != "active" {
        let reason = permit
            .history
            .last()
            .and_then(|c| c.reason.clone())
            .map(|r| format!(" (reason: {r})"))
            .unwrap_or_default();
        return Err(Error::new(format!(
            "organisation {msp}'s on-chain permit is {}{reason}",
            permit.status
        )));
    }
    match permit.certificate {
        Some(c) if c.valid_until > tx.now => Ok(()),
        Some(c) => Err(Error::new(format!(
            "organisation {msp}'s on-chain permit expired at {} (certificate {}): apply again with a renewed certificate",
            c.valid_until, c.certificate_sha256
        ))),
        None => Err(Error::new(format!(
            "organisation {msp}'s on-chain permit has no approved certificate"
        ))),
    }
}

/// Appends `event` to `batch`'s timeline (the caller saves the batch).
pub fn append_event(ctx: &mut Context, batch: &mut Batch, event: &Event) -> Result<(), Error> {
    let id = BatchId::new(&batch.gtin, &batch.lot)?;
    save(ctx, &batch_key("event", &id, Some(batch.events))?, event)?;
    batch.events += 1;
    if event.disposition.is_some() {
        batch.disposition = event.disposition.clone();
    }
    Ok(())
}

/// Fails if the batch can take no more events: recalled or fully consumed.
pub fn require_live(batch: &Batch) -> Result<(), Error> {
    if let Some(r) = &batch.recall {
        return Err(Error::new(format!(
            "batch {} is recalled ({}): no further events",
            batch.id, r.reason
        )));
    }
    if batch.consumed() {
        return Err(Error::new(format!(
            "batch {} is fully consumed by transformations: no further events",
            batch.id
        )));
    }
    Ok(())
}
