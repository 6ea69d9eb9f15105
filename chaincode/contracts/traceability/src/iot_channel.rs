//! IoT state channels (white paper §3.8; protocol in `docs/iot.md`): a
//! bound device and a gateway exchange readings off the ledger and co-sign
//! the running state; the ledger opens the channel, settles the final
//! state — or, in a dispute, the highest co-signed state shown before the
//! challenge deadline — records equivocation as a quality incident, and
//! raises the batch's quality alerts from the settled state's min/max and
//! from single readings proven against its root. The encodings, ids and
//! proofs are `qcss-iot`'s, the same code the device and gateway run.

use qcss_chaincode_sdk::{Context, Error, Json};
use qcss_iot::params::gateway_identity;
use qcss_iot::state::{Verifier, check_sig};
use qcss_iot::{
    ChannelId, ChannelParams, Party, PublicKey, ReadingProof, Schema, Signature, SignedState, State,
};
use serde::{Deserialize, Serialize};

use crate::events::require_handler;
use crate::ids::BatchId;
use crate::iot::raise_alert;
use crate::model::{DeviceBinding, SensorLimit, SensorReading};
use crate::store::{Tx, append_event, key, load, load_batch, save, save_batch};

/// A channel on the ledger (`iot_channel/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelRecord {
    pub id: ChannelId,
    pub params: ChannelParams,
    /// `open`, `closing` (a unilateral close waits for its deadline) or `settled`.
    pub status: String,
    /// The registered state: the one a close or challenge showed.
    pub state: Option<SignedState>,
    /// When a unilateral close's challenge window ends (transaction time).
    pub deadline: Option<i64>,
    pub opened_by: String,
    pub opened_at: i64,
    pub closed_at: Option<i64>,
    pub settled_at: Option<i64>,
    /// Alerts raised on the batch from this channel (their batch seqs).
    pub alerts: Vec<u32>,
    /// Equivocation incidents recorded against its parties.
    pub incidents: u32,
}

fn channel_key(id: &ChannelId) -> Result<String, Error> {
    key("iot_channel", &[&id.to_string()])
}

fn iot_err(e: qcss_iot::IotError) -> Error {
    Error::new(e.to_string())
}

fn parse_id(s: &str) -> Result<ChannelId, Error> {
    s.parse().map_err(iot_err)
}

fn load_channel(ctx: &mut Context, id: &ChannelId) -> Result<ChannelRecord, Error> {
    load(ctx, &channel_key(id)?)?.ok_or_else(|| {
        Error::new(format!(
            "unknown IoT channel {id} on this ledger (a state of another ledger or channel is refused)"
        ))
    })
}

/// Ed25519 through the host (ring's strict check), for `qcss-iot`.
struct HostVerifier<'a>(&'a Context);

impl Verifier for HostVerifier<'_> {
    fn verify(&self, key: &PublicKey, msg: &[u8], sig: &Signature) -> bool {
        self.0.verify_ed25519(&key.0, msg, &sig.0).unwrap_or(false)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Open {
    /// The bound device, `{msp}/{name}`, with a registered `channel_key`.
    device: String,
    batch: String,
    /// The gateway's Ed25519 key for this channel (hex).
    gateway_key: PublicKey,
    schema: Schema,
    challenge_secs: u64,
    nonce: u64,
    /// The id the client computed; refused if the ledger computes another
    /// (another ledger, channel or parameters).
    channel: Option<String>,
}

/// `iot_open`: the gateway (the caller) opens a channel with a bound device
/// for a batch; returns the channel record with its id.
pub fn iot_open(ctx: &mut Context, o: Json<Open>) -> Result<Json<ChannelRecord>, Error> {
    let tx = Tx::new(ctx)?;
    let o = o.0;
    let (dev_msp, dev_name) = o
        .device
        .split_once('/')
        .ok_or_else(|| Error::new("device must be {msp}/{name}"))?;
    let binding: DeviceBinding = load(ctx, &key("device", &[dev_msp, dev_name])?)?
        .ok_or_else(|| Error::new(format!("device {} is not bound", o.device)))?;
    let batch = load_batch(ctx, &BatchId::parse(&o.batch)?)?;
    if binding.batch != batch.id {
        return Err(Error::new(format!(
            "device {} is bound to batch {}, not {}",
            o.device, binding.batch, batch.id
        )));
    }
    let device_key: PublicKey = binding
        .channel_key
        .as_deref()
        .ok_or_else(|| {
            Error::new(format!(
                "device {} has no registered channel_key (bind it with one)",
                o.device
            ))
        })?
        .parse()
        .map_err(iot_err)?;
    if tx.msp() != binding.msp {
        require_handler(&batch, &tx)?;
    }
    no_looser_than_batch(&o.schema, &batch)?;
    let params = ChannelParams {
        ledger: ctx.channel_id()?,
        device: o.device.clone(),
        device_key,
        gateway: gateway_identity(tx.msp(), &tx.caller.cert_pem),
        gateway_key: o.gateway_key,
        batch: batch.id.clone(),
        schema: o.schema,
        challenge_secs: o.challenge_secs,
        nonce: o.nonce,
    };
    params.check().map_err(iot_err)?;
    let id = params.id();
    if let Some(claimed) = &o.channel
        && parse_id(claimed)? != id
    {
        return Err(Error::new(format!(
            "channel id {claimed} does not match the parameters on ledger {}: the ledger computes {id}",
            params.ledger
        )));
    }
    let k = channel_key(&id)?;
    if load::<serde_json::Value>(ctx, &k)?.is_some() {
        return Err(Error::new(format!(
            "IoT channel {id} is already open: choose another nonce"
        )));
    }
    let rec = ChannelRecord {
        id,
        params,
        status: "open".into(),
        state: None,
        deadline: None,
        opened_by: tx.msp().to_owned(),
        opened_at: tx.now,
        closed_at: None,
        settled_at: None,
        alerts: Vec::new(),
        incidents: 0,
    };
    save(ctx, &k, &rec)?;
    ctx.set_event("IotChannelOpened", &id.to_string())?;
    Ok(Json(rec))
}

/// A measure the batch has limits for must be in the same unit and no
/// looser than them (the opener picks the schema: without this a channel
/// could carry the batch's readings and never raise its alerts).
fn no_looser_than_batch(schema: &Schema, batch: &crate::model::Batch) -> Result<(), Error> {
    for l in &batch.limits {
        let Some(m) = schema.0.iter().find(|m| m.kind == l.kind) else {
            continue;
        };
        if m.unit != l.unit {
            return Err(Error::new(format!(
                "schema measure {} is in {}, but batch {}'s limit is in {}",
                l.kind, m.unit, batch.id, l.unit
            )));
        }
        let loose_min = l.min.is_some_and(|b| !m.min.is_some_and(|x| x >= b));
        let loose_max = l.max.is_some_and(|b| !m.max.is_some_and(|x| x <= b));
        if loose_min || loose_max {
            return Err(Error::new(format!(
                "schema measure {} allows {:?}…{:?}, looser than batch {}'s limits {:?}…{:?}: a channel's limits are the batch's or stricter",
                l.kind, m.min, m.max, batch.id, l.min, l.max
            )));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    channel: String,
    state: SignedState,
}

fn checked(ctx: &Context, rec: &ChannelRecord, s: &SignedState) -> Result<(), Error> {
    s.check(&rec.params, &HostVerifier(ctx)).map_err(iot_err)
}

/// `iot_close`: closes an open channel with a state both parties signed.
/// A final state settles at once (cooperative close); any other starts the
/// challenge window (unilateral close). Anyone may submit it.
pub fn iot_close(ctx: &mut Context, c: Json<Submit>) -> Result<Json<ChannelRecord>, Error> {
    let mut tx = Tx::new(ctx)?;
    let id = parse_id(&c.0.channel)?;
    let mut rec = load_channel(ctx, &id)?;
    if rec.status != "open" {
        return Err(Error::new(format!(
            "IoT channel {id} is {}, not open: use iot_challenge or iot_settle",
            rec.status
        )));
    }
    checked(ctx, &rec, &c.0.state)?;
    let final_state = c.0.state.state.is_final;
    rec.state = Some(c.0.state);
    rec.closed_at = Some(tx.now);
    if final_state {
        settle(ctx, &mut tx, &mut rec)?;
    } else {
        rec.status = "closing".into();
        rec.deadline = Some(tx.now.saturating_add(rec.params.challenge_secs as i64));
        save(ctx, &channel_key(&id)?, &rec)?;
        ctx.set_event("IotChannelClosing", &id.to_string())?;
    }
    Ok(Json(rec))
}

/// `iot_challenge`: during a unilateral close's window, replaces the
/// registered state with one of higher seq both parties signed (a final one
/// settles at once). Anyone may submit it.
pub fn iot_challenge(ctx: &mut Context, c: Json<Submit>) -> Result<Json<ChannelRecord>, Error> {
    let mut tx = Tx::new(ctx)?;
    let id = parse_id(&c.0.channel)?;
    let mut rec = load_channel(ctx, &id)?;
    let deadline = match (rec.status.as_str(), rec.deadline) {
        ("closing", Some(d)) => d,
        (status, _) => {
            return Err(Error::new(format!(
                "IoT channel {id} is {status}: only a closing channel can be challenged"
            )));
        }
    };
    if tx.now >= deadline {
        return Err(Error::new(format!(
            "the challenge window of IoT channel {id} ended at {deadline} (transaction time {}): settle it",
            tx.now
        )));
    }
    checked(ctx, &rec, &c.0.state)?;
    let registered = rec.state.as_ref().map_or(0, |s| s.state.seq);
    if c.0.state.state.seq <= registered {
        return Err(Error::new(format!(
            "state seq {} does not replace the registered seq {registered} of IoT channel {id}",
            c.0.state.state.seq
        )));
    }
    let final_state = c.0.state.state.is_final;
    rec.state = Some(c.0.state);
    if final_state {
        settle(ctx, &mut tx, &mut rec)?;
    } else {
        save(ctx, &channel_key(&id)?, &rec)?;
        ctx.set_event("IotChannelChallenged", &id.to_string())?;
    }
    Ok(Json(rec))
}

/// `iot_settle CHANNEL`: after a unilateral close's deadline, settles the
/// registered state. Anyone may call it.
pub fn iot_settle(ctx: &mut Context, channel: String) -> Result<Json<ChannelRecord>, Error> {
    let mut tx = Tx::new(ctx)?;
    let id = parse_id(&channel)?;
    let mut rec = load_channel(ctx, &id)?;
    let deadline = match (rec.status.as_str(), rec.deadline) {
        ("closing", Some(d)) => d,
        (status, _) => {
            return Err(Error::new(format!(
                "IoT channel {id} is {status}: only a closing channel is settled after its window"
            )));
        }
    };
    if tx.now < deadline {
        return Err(Error::new(format!(
            "IoT channel {id}'s challenge window runs until {deadline} (transaction time {})",
            tx.now
        )));
    }
    settle(ctx, &mut tx, &mut rec)?;
    Ok(Json(rec))
}

/// Settles the registered state: a settlement event on the batch's
/// timeline, and an alert per measure whose min or max left its limits.
fn settle(ctx: &mut Context, tx: &mut Tx, rec: &mut ChannelRecord) -> Result<(), Error> {
    let Some(signed) = rec.state.clone() else {
        return Err(Error::new(format!("IoT channel {} has no state", rec.id)));
    };
    let s = &signed.state;
    let bid = BatchId::parse(&rec.params.batch)?;
    let mut batch = load_batch(ctx, &bid)?;
    let mut event = tx.event("ObjectEvent", &bid, "sensor_reporting");
    event.action = Some("OBSERVE".to_owned());
    event.data = serde_json::json!({
        "iotChannel": {
            "id": rec.id, "seq": s.seq, "readings": s.count, "root": s.root,
            "lastTime": s.last_time, "final": s.is_final,
        },
        "device": rec.params.device,
    });
    append_event(ctx, &mut batch, &event)?;
    for (i, value) in s.violations(&rec.params) {
        let m = &rec.params.schema.0[i];
        let seq = batch.alerts;
        raise_alert(
            ctx,
            tx,
            &mut batch,
            &rec.params.device,
            SensorReading {
                kind: m.kind.clone(),
                value,
                unit: m.unit.clone(),
                time: s.last_time,
            },
            limit(m),
            serde_json::json!({ "iotChannel": rec.id, "summary": true }),
        )?;
        rec.alerts.push(seq);
    }
    save_batch(ctx, &batch)?;
    let alert_ids: Vec<String> = rec
        .alerts
        .iter()
        .map(|seq| format!("alert/{}/{seq}", batch.id))
        .collect();
    crate::index::on_readings(ctx, tx, &batch.gtin, s.count, &alert_ids)?;
    rec.status = "settled".into();
    rec.settled_at = Some(tx.now);
    save(ctx, &channel_key(&rec.id)?, rec)?;
    ctx.set_event("IotChannelSettled", &rec.id.to_string())
}

fn limit(m: &qcss_iot::Measure) -> SensorLimit {
    SensorLimit {
        kind: m.kind.clone(),
        unit: m.unit.clone(),
        min: m.min,
        max: m.max,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenReading {
    channel: String,
    proof: ReadingProof,
}

/// `iot_alert`: raises the batch's alert for one reading of a settled
/// channel outside the schema's limits, proven against the settled root.
pub fn iot_alert(ctx: &mut Context, a: Json<ProvenReading>) -> Result<Json<ChannelRecord>, Error> {
    let mut tx = Tx::new(ctx)?;
    let id = parse_id(&a.0.channel)?;
    let mut rec = load_channel(ctx, &id)?;
    let Some(signed) = rec.state.clone().filter(|_| rec.status == "settled") else {
        return Err(Error::new(format!(
            "IoT channel {id} is {}: readings are proven against a settled state",
            rec.status
        )));
    };
    let proof = a.0.proof;
    proof.reading.check(&rec.params.schema).map_err(iot_err)?;
    proof.verify(&signed.state).map_err(iot_err)?;
    let seq = proof.reading.seq;
    let violations = proof.reading.violations(&rec.params.schema);
    if violations.is_empty() {
        return Err(Error::new(format!(
            "reading {seq} of IoT channel {id} is within the schema's limits"
        )));
    }
    let done = key("iot_alert", &[&id.to_string(), &format!("{seq:020}")])?;
    if load::<serde_json::Value>(ctx, &done)?.is_some() {
        return Err(Error::new(format!(
            "reading {seq} of IoT channel {id} has already raised its alert"
        )));
    }
    let mut batch = load_batch(ctx, &BatchId::parse(&rec.params.batch)?)?;
    let mut raised = Vec::new();
    for (i, value) in violations {
        let m = &rec.params.schema.0[i];
        raised.push(batch.alerts);
        raise_alert(
            ctx,
            &mut tx,
            &mut batch,
            &rec.params.device,
            SensorReading {
                kind: m.kind.clone(),
                value,
                unit: m.unit.clone(),
                time: proof.reading.time,
            },
            limit(m),
            serde_json::json!({ "iotChannel": id, "reading": seq }),
        )?;
    }
    save_batch(ctx, &batch)?;
    let alert_ids: Vec<String> = raised
        .iter()
        .map(|seq| format!("alert/{}/{seq}", batch.id))
        .collect();
    crate::index::on_readings(ctx, &tx, &batch.gtin, 0, &alert_ids)?;
    save(ctx, &done, &raised)?;
    rec.alerts.extend(raised);
    save(ctx, &channel_key(&id)?, &rec)?;
    ctx.set_event("QualityAlert", &id.to_string())?;
    Ok(Json(rec))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneSigned {
    /// Hex of the state's canonical encoding.
    state: String,
    sig: Signature,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    channel: String,
    party: Party,
    a: OneSigned,
    b: OneSigned,
}

/// An equivocation on the ledger (`iot_incident/{channel}/{party}/{seq}`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Incident {
    pub channel: ChannelId,
    pub party: Party,
    /// The device (`{msp}/{name}`) or gateway (`{msp}:{cert hash}`).
    pub against: String,
    pub seq: u64,
    pub a: String,
    pub b: String,
    pub reported_by: String,
    pub record_time: i64,
    pub event_id: String,
}

fn decode_state(hex_state: &str) -> Result<State, Error> {
    if hex_state.len() > 2 * qcss_iot::state::MAX_STATE_BYTES {
        return Err(Error::new("state is longer than any state"));
    }
    let bytes = hex::decode(hex_state).map_err(|e| Error::new(format!("state is not hex: {e}")))?;
    State::decode(&bytes).map_err(iot_err)
}

/// `iot_evidence`: two different states with the same seq, both signed by
/// one party, are recorded as a quality incident against that device or
/// gateway (on the batch's timeline too). Anyone may submit it.
pub fn iot_evidence(ctx: &mut Context, e: Json<Evidence>) -> Result<Json<Incident>, Error> {
    let mut tx = Tx::new(ctx)?;
    let e = e.0;
    let id = parse_id(&e.channel)?;
    let mut rec = load_channel(ctx, &id)?;
    let (a, b) = (decode_state(&e.a.state)?, decode_state(&e.b.state)?);
    for s in [&a, &b] {
        if s.channel != id {
            return Err(Error::new(format!(
                "a state of channel {} is no evidence about channel {id}",
                s.channel
            )));
        }
    }
    if a.seq != b.seq {
        return Err(Error::new(format!(
            "states seq {} and {} are not an equivocation: their seqs differ",
            a.seq, b.seq
        )));
    }
    if a == b {
        return Err(Error::new("the two states are the same state"));
    }
    let v = HostVerifier(ctx);
    check_sig(&a, &rec.params, e.party, &e.a.sig, &v).map_err(iot_err)?;
    check_sig(&b, &rec.params, e.party, &e.b.sig, &v).map_err(iot_err)?;
    let k = key(
        "iot_incident",
        &[
            &id.to_string(),
            &e.party.to_string(),
            &format!("{:020}", a.seq),
        ],
    )?;
    if load::<serde_json::Value>(ctx, &k)?.is_some() {
        return Err(Error::new(format!(
            "the {}'s equivocation at seq {} of IoT channel {id} is already recorded",
            e.party, a.seq
        )));
    }
    let against = match e.party {
        Party::Device => rec.params.device.clone(),
        Party::Gateway => rec.params.gateway.clone(),
    };
    let bid = BatchId::parse(&rec.params.batch)?;
    let mut batch = load_batch(ctx, &bid)?;
    let mut event = tx.event("ObjectEvent", &bid, "sensor_reporting");
    event.action = Some("OBSERVE".to_owned());
    event.data = serde_json::json!({
        "qualityIncident": {
            "kind": "iotEquivocation", "iotChannel": id, "party": e.party,
            "against": against, "seq": a.seq,
        },
    });
    append_event(ctx, &mut batch, &event)?;
    save_batch(ctx, &batch)?;
    let incident = Incident {
        channel: id,
        party: e.party,
        against,
        seq: a.seq,
        a: e.a.state,
        b: e.b.state,
        reported_by: tx.msp().to_owned(),
        record_time: tx.now,
        event_id: event.event_id,
    };
    save(ctx, &k, &incident)?;
    rec.incidents += 1;
    save(ctx, &channel_key(&id)?, &rec)?;
    ctx.set_event("QualityIncident", &id.to_string())?;
    Ok(Json(incident))
}

/// `iot_get_channel CHANNEL`: the channel's record.
pub fn iot_get_channel(ctx: &mut Context, channel: String) -> Result<Json<ChannelRecord>, Error> {
    let id = parse_id(&channel)?;
    load_channel(ctx, &id).map(Json)
}
