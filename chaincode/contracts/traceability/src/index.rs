//! The QCSS index per product (GTIN) and per enterprise (producer MSP), and
//! the UCES coefficient inside it: fixed point (10 000 = 100.00 %), integer
//! arithmetic only, a pure function of the record's inputs, so the same
//! events in any order give the same index.
//!
//! Each record (`qidx/gtin/{gtin}`, `qidx/enterprise/{msp}`) keeps its
//! inputs (counters), the records behind each term (sorted, bounded), the
//! terms with their weights and contributions, and a bounded history. An
//! enterprise's inputs are the sums of its products'. Weights and constants
//! come only from the governed config (`governance.rs`). Nothing is
//! maintained before the config's genesis (`gov_init`): events before it
//! do not count. Formulas: README.md, "QCSS index".
//!
//! **No hot keys.** An event never reads or rewrites a record: it writes a
//! delta row (`qidx_d/{kind}/{subject}/{time:012}/{tx_id}/{n}`, a blind
//! write), so concurrent events on one product or one enterprise never
//! conflict under MVCC, and endorsers at different heights compute the
//! same write set. A read (`index_get`, `index_explain`) folds the pending
//! deltas into the stored record in key order (time, then tx id: the same
//! on every peer whatever order the blocks came in) and computes the terms,
//! the index and one history point per delta. `index_fold` stores that
//! fold for deltas older than [`FOLD_AGE`] and deletes them (the anchoring
//! bridge calls it; `index_pending` says which records have such deltas).
//! Only old deltas are folded, so no event in flight can insert into the
//! range a fold read (its timestamp is within the channel's time window of
//! its block) and folds are never invalidated by events.

use std::collections::BTreeMap;

use qcss_chaincode_sdk::{Context, Error, Json, partial_key_range, split_composite_key};
use serde::{Deserialize, Serialize};

use crate::governance::{Config, ONE, config, require_config};
use crate::ids::{BatchId, check_gtin, check_msp};
use crate::model::{Batch, Permit};
use crate::store::{Tx, key, load, load_product, save};
use crate::uces::Evaluation;

/// Records named per term in an index record (the smallest ids; the count
/// is always complete).
pub const MAX_REFS: usize = 8;
/// Products an enterprise record lists (and a permit change recomputes).
/// With [`MAX_OUTPUTS`], bounds the records one call rewrites, so that
/// each hook stays well inside the fuel budget (`tests/uces.rs`).
pub const MAX_GTINS: usize = 8;
/// Output batches an inspection credits as raw material.
pub const MAX_OUTPUTS: usize = 4;
/// Deltas older than this (seconds before the folding transaction's time)
/// are folded into their record by `index_fold`. Must exceed twice the
/// channel's `tx_time_window_secs` (60 s by default) for folds never to be
/// invalidated by events in flight; a fold invalidated is only retried.
pub const FOLD_AGE: i64 = 300;
/// Pending deltas a read folds (bounded by fuel: ≈ 50 k each); a record
/// with more says so (`pending_more`) and shows the first ones folded.
pub const MAX_PENDING: u32 = 64;
/// Deltas one `index_fold` stores.
pub const MAX_FOLD: u32 = 64;
/// Records `index_pending` names at most.
pub const MAX_PENDING_RECORDS: usize = 32;
const NEUTRAL: u64 = ONE / 2;

/// The counters every term is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// Recalled batches (origin or downstream) of the product(s).
    pub recalls: u64,
    /// Inspections of upstream (input) batches: passed / failed.
    pub raw_pass: u64,
    pub raw_fail: u64,
    /// IoT readings recorded and quality alerts raised.
    pub readings: u64,
    pub alerts: u64,
    /// Lab inspections of the product's own batches: passed / failed.
    pub lab_pass: u64,
    pub lab_fail: u64,
    /// Valid evaluations, their summed weights (author credit) and
    /// Σ weight × overall score in milli-points.
    pub uces_n: u64,
    pub uces_w: u64,
    pub uces_ws: u64,
}

/// The records behind a term.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refs {
    pub count: u64,
    /// The [`MAX_REFS`] smallest record ids, sorted.
    pub ids: Vec<String>,
}

/// One term of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    pub name: String,
    /// Basis points of the index (the config's weight).
    pub weight: u64,
    /// 0..=10 000.
    pub value: u64,
    /// `weight × value / 10 000`, floored; the index is their sum.
    pub contribution: u64,
}

/// The producer's permit as the index read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermitFacts {
    pub status: String,
    pub usable: bool,
    pub suspensions: u64,
}

/// A past value (the record's `tx_id` names the latest transaction; the
/// history keeps no transaction ids, to keep the record small).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    pub time: i64,
    pub event: String,
    pub index: u64,
}

/// `qidx/{kind}/{subject}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRecord {
    /// `gtin` or `enterprise`.
    pub kind: String,
    pub subject: String,
    /// The product's owner (gtin) or the enterprise itself.
    pub producer: String,
    pub inputs: Inputs,
    pub refs: BTreeMap<String, Refs>,
    pub permit: PermitFacts,
    /// The UCES coefficient, milli-points 1 000..=5 000.
    pub coefficient: u64,
    pub terms: Vec<Term>,
    /// 0..=10 000.
    pub index: u64,
    pub config_version: u32,
    pub updated_at: i64,
    pub tx_id: String,
    pub history: Vec<Point>,
    /// An enterprise's products with an index (at most [`MAX_GTINS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gtins: Vec<String>,
}

fn record_key(kind: &str, subject: &str) -> Result<String, Error> {
    key("qidx", &[kind, subject])
}

/// `(ONE·good + NEUTRAL·k) / (total + k)`: a ratio pulled towards 50 % by
/// `k` neutral observations, so no data reads as neutral.
pub fn smoothed(good: u64, total: u64, k: u64) -> u64 {
    let num = ONE as u128 * good.min(total) as u128 + NEUTRAL as u128 * k as u128;
    (num / (total as u128 + k as u128)) as u64
}

/// The Bayesian UCES coefficient in milli-points:
/// `(prior_mean·prior_weight + Σ wᵢ·sᵢ) / (prior_weight + Σ wᵢ)`.
pub fn coefficient(cfg: &Config, i: &Inputs) -> u64 {
    let x = &cfg.index;
    let num = x.prior_mean as u128 * x.prior_weight as u128 + i.uces_ws as u128;
    (num / (x.prior_weight as u128 + i.uces_w as u128)) as u64
}

fn compute(cfg: &Config, r: &mut IndexRecord) {
    let x = &cfg.index;
    let i = &r.inputs;
    let penalty = (x.recall_penalty as u128 * i.recalls as u128
        + x.suspension_penalty as u128 * r.permit.suspensions as u128)
        .min(ONE as u128) as u64;
    let producer = if r.permit.usable { ONE - penalty } else { 0 };
    let raw = smoothed(i.raw_pass, i.raw_pass + i.raw_fail, x.smoothing);
    let process = smoothed(
        i.readings.saturating_sub(i.alerts),
        i.readings.max(i.alerts),
        x.smoothing,
    );
    let cert = smoothed(i.lab_pass, i.lab_pass + i.lab_fail, x.smoothing);
    r.coefficient = coefficient(cfg, i);
    let uces = (r.coefficient.clamp(1_000, 5_000) - 1_000) * ONE / 4_000;
    r.terms = [
        ("producer", x.w_producer, producer),
        ("raw_material", x.w_raw_material, raw),
        ("process", x.w_process, process),
        ("certification", x.w_certification, cert),
        ("uces", x.w_uces, uces),
    ]
    .into_iter()
    .map(|(name, weight, value)| Term {
        name: name.into(),
        weight,
        value,
        contribution: weight * value / ONE,
    })
    .collect();
    r.index = r.terms.iter().map(|t| t.contribution).sum();
    r.config_version = cfg.version;
}

fn permit_facts(ctx: &mut Context, msp: &str, now: i64) -> Result<PermitFacts, Error> {
    let p: Option<Permit> = load(ctx, &key("permit", &[msp])?)?;
    Ok(match p {
        None => PermitFacts {
            status: "none".into(),
            ..PermitFacts::default()
        },
        Some(p) => PermitFacts {
            usable: p.status == "active"
                && p.certificate.as_ref().is_some_and(|c| c.valid_until > now),
            suspensions: p.history.iter().filter(|h| h.action == "suspended").count() as u64,
            status: p.status,
        },
    })
}

fn add_refs(r: &mut IndexRecord, term: &str, ids: &[String]) {
    let refs = r.refs.entry(term.to_owned()).or_default();
    for id in ids {
        refs.count += 1;
        if let Err(at) = refs.ids.binary_search(id) {
            refs.ids.insert(at, id.clone());
        }
    }
    refs.ids.truncate(MAX_REFS);
}

/// One event's change to one record, as its delta row holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Delta {
    /// The event (`inspection`, `evaluation`, …).
    event: String,
    /// The term its records belong to (empty: none, e.g. a permit change).
    term: String,
    gtin: String,
    ids: Vec<String>,
    inputs: Inputs,
    tx_id: String,
    time: i64,
}

impl Delta {
    /// Compact text, one field a line (a read folds many deltas; JSON would
    /// cost several times the fuel): event, term, gtin, time, tx id, the
    /// ten input counters space-separated, then one record id a line.
    fn encode(&self) -> String {
        let i = &self.inputs;
        let mut out = format!(
            "{}\n{}\n{}\n{}\n{}\n{} {} {} {} {} {} {} {} {} {}",
            self.event,
            self.term,
            self.gtin,
            self.time,
            self.tx_id,
            i.recalls,
            i.raw_pass,
            i.raw_fail,
            i.readings,
            i.alerts,
            i.lab_pass,
            i.lab_fail,
            i.uces_n,
            i.uces_w,
            i.uces_ws
        );
        for id in &self.ids {
            out.push('\n');
            // Record ids are ledger keys' parts, never multi-line.
            out.push_str(&id.replace('\n', " "));
        }
        out
    }

    fn decode(key: &str, bytes: &[u8]) -> Result<Self, Error> {
        let bad = || Error::new(format!("malformed index delta under {key:?}"));
        let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
        let mut lines = text.split('\n');
        let mut next = || lines.next().ok_or_else(bad);
        let (event, term, gtin) = (next()?.to_owned(), next()?.to_owned(), next()?.to_owned());
        let time: i64 = next()?.parse().map_err(|_| bad())?;
        let tx_id = next()?.to_owned();
        let mut n = [0u64; 10];
        let mut counters = next()?.split(' ');
        for v in &mut n {
            *v = counters
                .next()
                .and_then(|c| c.parse().ok())
                .ok_or_else(bad)?;
        }
        let ids = lines.map(str::to_owned).collect();
        Ok(Delta {
            event,
            term,
            gtin,
            ids,
            inputs: Inputs {
                recalls: n[0],
                raw_pass: n[1],
                raw_fail: n[2],
                readings: n[3],
                alerts: n[4],
                lab_pass: n[5],
                lab_fail: n[6],
                uces_n: n[7],
                uces_w: n[8],
                uces_ws: n[9],
            },
            tx_id,
            time,
        })
    }
}

fn put_delta(
    ctx: &mut Context,
    kind: &str,
    subject: &str,
    d: &Delta,
    seq: usize,
) -> Result<(), Error> {
    ctx.put_state_bytes(&delta_key(kind, subject, d, seq)?, d.encode().as_bytes())
}

fn delta_key(kind: &str, subject: &str, d: &Delta, seq: usize) -> Result<String, Error> {
    key(
        "qidx_d",
        &[
            kind,
            subject,
            &format!("{:012}", d.time.max(0)),
            &d.tx_id,
            &format!("{seq:03}"),
        ],
    )
}

/// Adds `gtin` (if any) to an enterprise's product list: the
/// [`MAX_GTINS`] smallest, whatever order they came in.
fn add_gtin(gtins: &mut Vec<String>, gtin: &str) {
    if !gtin.is_empty()
        && let Err(at) = gtins.binary_search_by(|g| g.as_str().cmp(gtin))
    {
        gtins.insert(at, gtin.to_owned());
        gtins.truncate(MAX_GTINS);
    }
}

/// Folds deltas into `r` in order, recomputing it (permit as `permit`
/// says) after each of the last `history` ones: the history keeps only
/// their points, so the terms of earlier ones need not be computed.
fn fold_all<'d>(
    cfg: &Config,
    r: &mut IndexRecord,
    deltas: impl ExactSizeIterator<Item = &'d Delta>,
    permit: &PermitFacts,
) {
    let skip = deltas.len().saturating_sub(cfg.index.history as usize);
    for (n, d) in deltas.enumerate() {
        fold_one(cfg, r, d, permit, n >= skip);
    }
}

/// Folds delta `d` into `r`; with `point`, recomputes it (permit as
/// `permit` says) and adds the history point.
fn fold_one(cfg: &Config, r: &mut IndexRecord, d: &Delta, permit: &PermitFacts, point: bool) {
    r.inputs.add(&d.inputs);
    if !d.term.is_empty() {
        add_refs(r, &d.term, &d.ids);
    }
    if r.kind == "enterprise" {
        add_gtin(&mut r.gtins, &d.gtin);
    }
    r.updated_at = d.time;
    r.tx_id = d.tx_id.clone();
    if !point {
        return;
    }
    r.permit = permit.clone();
    compute(cfg, r);
    r.history.push(Point {
        time: d.time,
        event: d.event.clone(),
        index: r.index,
    });
    let keep = cfg.index.history as usize;
    if r.history.len() > keep {
        r.history.drain(..r.history.len() - keep);
    }
}

/// Deltas of `(kind, subject)` in key order, older than `before` when given;
/// at most `limit`, and whether there are more.
fn pending(
    ctx: &mut Context,
    kind: &str,
    subject: &str,
    before: Option<i64>,
    limit: u32,
) -> Result<(Vec<(String, Delta)>, bool), Error> {
    let (from, mut to) = partial_key_range("qidx_d", &[kind, subject])?;
    if let Some(t) = before {
        to = key("qidx_d", &[kind, subject, &format!("{:012}", t.max(0))])?;
    }
    let page = ctx.range_bytes(&from, &to, limit + 1)?;
    let more = page.more || page.rows.len() > limit as usize;
    let mut out = Vec::with_capacity(page.rows.len().min(limit as usize));
    for (k, bytes) in page.rows.into_iter().take(limit as usize) {
        let d = Delta::decode(&k, &bytes)?;
        out.push((k, d));
    }
    Ok((out, more))
}

/// What one event adds to one product's inputs.
struct Change {
    gtin: String,
    term: &'static str,
    ids: Vec<String>,
    delta: Inputs,
}

impl Inputs {
    fn add(&mut self, d: &Inputs) {
        self.recalls += d.recalls;
        self.raw_pass += d.raw_pass;
        self.raw_fail += d.raw_fail;
        self.readings += d.readings;
        self.alerts += d.alerts;
        self.lab_pass += d.lab_pass;
        self.lab_fail += d.lab_fail;
        self.uces_n += d.uces_n;
        self.uces_w += d.uces_w;
        self.uces_ws += d.uces_ws;
    }
}

/// Writes each change as a delta row of its product's record and of its
/// owner's enterprise record (blind writes: no record is read).
fn apply(ctx: &mut Context, tx: &Tx, event: &str, changes: Vec<Change>) -> Result<(), Error> {
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let mut seq = 0;
    for c in changes {
        let owner = match owners.get(&c.gtin) {
            Some(o) => o.clone(),
            None => {
                let o = load_product(ctx, &c.gtin)?.owner;
                owners.insert(c.gtin.clone(), o.clone());
                o
            }
        };
        let d = Delta {
            event: event.to_owned(),
            term: c.term.to_owned(),
            gtin: c.gtin.clone(),
            ids: c.ids,
            inputs: c.delta,
            tx_id: tx.tx_id.clone(),
            time: tx.now,
        };
        for (kind, subject) in [("gtin", c.gtin.as_str()), ("enterprise", owner.as_str())] {
            put_delta(ctx, kind, subject, &d, seq)?;
            seq += 1;
        }
    }
    Ok(())
}

/// Per-lot inspection counts (`qidx_lot/{gtin}/{lot}`), for transformations
/// that use the lot later.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LotCounts {
    pass: u64,
    fail: u64,
    ids: Vec<String>,
}

fn counts(pass: bool) -> (u64, u64) {
    if pass { (1, 0) } else { (0, 1) }
}

/// An inspection of `batch` (already counted in `batch.inspections`).
pub fn on_inspection(
    ctx: &mut Context,
    tx: &Tx,
    batch: &Batch,
    pass: bool,
    id: &str,
) -> Result<(), Error> {
    if config(ctx)?.is_none() {
        return Ok(());
    }
    let (p, f) = counts(pass);
    let lk = key("qidx_lot", &[&batch.gtin, &batch.lot])?;
    let mut lot: LotCounts = load(ctx, &lk)?.unwrap_or_default();
    lot.pass += p;
    lot.fail += f;
    if lot.ids.len() < MAX_REFS {
        lot.ids.push(id.to_owned());
    }
    save(ctx, &lk, &lot)?;
    let mut changes = vec![Change {
        gtin: batch.gtin.clone(),
        term: "certification",
        ids: vec![id.to_owned()],
        delta: Inputs {
            lab_pass: p,
            lab_fail: f,
            ..Inputs::default()
        },
    }];
    // Batches already made from this one: their products get the result.
    for out in batch.outputs.iter().take(MAX_OUTPUTS) {
        changes.push(Change {
            gtin: BatchId::parse(out)?.gtin,
            term: "raw_material",
            ids: vec![id.to_owned()],
            delta: Inputs {
                raw_pass: p,
                raw_fail: f,
                ..Inputs::default()
            },
        });
    }
    apply(ctx, tx, "inspection", changes)
}

/// A transformation made `output` from `inputs`: the inputs' inspections
/// so far count as the output product's raw material.
pub fn on_transform(
    ctx: &mut Context,
    tx: &Tx,
    output: &BatchId,
    inputs: &[BatchId],
) -> Result<(), Error> {
    if config(ctx)?.is_none() {
        return Ok(());
    }
    let mut delta = Inputs::default();
    let mut ids = Vec::new();
    for input in inputs {
        let lot: Option<LotCounts> = load(ctx, &key("qidx_lot", &[&input.gtin, &input.lot])?)?;
        if let Some(lot) = lot {
            delta.raw_pass += lot.pass;
            delta.raw_fail += lot.fail;
            ids.extend(lot.ids);
        }
    }
    if delta.raw_pass + delta.raw_fail == 0 {
        return Ok(());
    }
    let change = Change {
        gtin: output.gtin.clone(),
        term: "raw_material",
        ids,
        delta,
    };
    apply(ctx, tx, "transformation", vec![change])
}

/// IoT readings and the alerts they raised on a batch of `gtin`.
pub fn on_readings(
    ctx: &mut Context,
    tx: &Tx,
    gtin: &str,
    readings: u64,
    alerts: &[String],
) -> Result<(), Error> {
    if config(ctx)?.is_none() {
        return Ok(());
    }
    let change = Change {
        gtin: gtin.to_owned(),
        term: "process",
        ids: alerts.to_vec(),
        delta: Inputs {
            readings,
            alerts: alerts.len() as u64,
            ..Inputs::default()
        },
    };
    apply(ctx, tx, "readings", vec![change])
}

/// Recalled batches (the origin first, then downstream).
pub fn on_recall(ctx: &mut Context, tx: &Tx, batches: &[String]) -> Result<(), Error> {
    if config(ctx)?.is_none() {
        return Ok(());
    }
    let mut by_gtin: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for b in batches {
        let id = BatchId::parse(b)?;
        by_gtin.entry(id.gtin).or_default().push(b.clone());
    }
    let changes = by_gtin
        .into_iter()
        .map(|(gtin, ids)| Change {
            gtin,
            term: "producer",
            delta: Inputs {
                recalls: ids.len() as u64,
                ..Inputs::default()
            },
            ids,
        })
        .collect();
    apply(ctx, tx, "recall", changes)
}

/// A valid evaluation of a unit of `eval.gtin`.
pub fn on_evaluation(ctx: &mut Context, tx: &Tx, eval: &Evaluation) -> Result<(), Error> {
    let w = u64::from(eval.weight.unwrap_or(0));
    let s = u64::from(eval.scores.overall) * 1_000;
    let change = Change {
        gtin: eval.gtin.clone(),
        term: "uces",
        ids: vec![format!("uces_eval/{}", eval.unit)],
        delta: Inputs {
            uces_n: 1,
            uces_w: w,
            uces_ws: w * s,
            ..Inputs::default()
        },
    };
    apply(ctx, tx, "evaluation", vec![change])
}

/// A permit change of `msp`: a point in the history of its enterprise
/// record and of (up to [`MAX_GTINS`]) its products (reads compute every
/// term with the permit as it is at the time of the read).
pub fn on_permit(ctx: &mut Context, tx: &Tx, msp: &str) -> Result<(), Error> {
    if config(ctx)?.is_none() {
        return Ok(());
    }
    // Its products: those of the stored record and of pending deltas (a
    // permit change is rare; reading the pending range here only risks
    // this transaction, never the events'.)
    let stored: Option<IndexRecord> = load(ctx, &record_key("enterprise", msp)?)?;
    let (deltas, _) = pending(ctx, "enterprise", msp, None, MAX_PENDING)?;
    if stored.is_none() && deltas.is_empty() {
        return Ok(());
    }
    let mut gtins: Vec<String> = stored.map(|r| r.gtins).unwrap_or_default();
    for (_, d) in &deltas {
        add_gtin(&mut gtins, &d.gtin);
    }
    let d = Delta {
        event: "permit".into(),
        tx_id: tx.tx_id.clone(),
        time: tx.now,
        ..Delta::default()
    };
    let mut seq = 0;
    for gtin in &gtins {
        put_delta(ctx, "gtin", gtin, &d, seq)?;
        seq += 1;
    }
    put_delta(ctx, "enterprise", msp, &d, seq)
}

fn subject(arg: &str) -> Result<(&'static str, &str), Error> {
    if check_gtin(arg).is_ok() {
        Ok(("gtin", arg))
    } else if check_msp(arg).is_ok() && !arg.bytes().all(|b| b.is_ascii_digit()) {
        Ok(("enterprise", arg))
    } else {
        Err(Error::new(format!(
            "{arg:?} is neither a GTIN-14 nor an enterprise MSP id"
        )))
    }
}

/// `stored`, or a new empty record of `(kind, s)` (a product's producer is
/// its owner, an enterprise's itself).
fn stored_or_new(
    ctx: &mut Context,
    kind: &str,
    s: &str,
    stored: Option<IndexRecord>,
) -> Result<IndexRecord, Error> {
    if let Some(r) = stored {
        return Ok(r);
    }
    let producer = if kind == "gtin" {
        load_product(ctx, s)?.owner
    } else {
        s.to_owned()
    };
    Ok(IndexRecord {
        kind: kind.into(),
        subject: s.into(),
        producer,
        ..IndexRecord::default()
    })
}

/// The record as of now: the stored one with every pending delta folded
/// in (at most [`MAX_PENDING`]); how many were folded, and whether more wait.
fn read(ctx: &mut Context, arg: &str) -> Result<(IndexRecord, u64, bool), Error> {
    let (kind, s) = subject(arg)?;
    let stored: Option<IndexRecord> = load(ctx, &record_key(kind, s)?)?;
    let (deltas, more) = pending(ctx, kind, s, None, MAX_PENDING)?;
    if stored.is_none() && deltas.is_empty() {
        return Err(Error::new(format!("no QCSS index for {kind} {s} yet")));
    }
    let mut r = stored_or_new(ctx, kind, s, stored)?;
    let now = Tx::new(ctx)?.now;
    let cfg = require_config(ctx)?;
    let permit = permit_facts(ctx, &r.producer, now)?;
    fold_all(&cfg, &mut r, deltas.iter().map(|(_, d)| d), &permit);
    // The permit as it is now, also when nothing is pending.
    if r.permit != permit || r.config_version != cfg.version {
        r.permit = permit;
        compute(&cfg, &mut r);
    }
    Ok((r, deltas.len() as u64, more))
}

/// `index_fold GTIN|MSP` (anyone): stores the record with its deltas older
/// than [`FOLD_AGE`] folded in (at most [`MAX_FOLD`]) and deletes them.
pub fn index_fold(ctx: &mut Context, arg: String) -> Result<Json<serde_json::Value>, Error> {
    let tx = Tx::new(ctx)?;
    let cfg = require_config(ctx)?;
    let (kind, s) = subject(&arg)?;
    let (deltas, more) = pending(ctx, kind, s, Some(tx.now - FOLD_AGE), MAX_FOLD)?;
    if !deltas.is_empty() {
        let stored = load(ctx, &record_key(kind, s)?)?;
        let mut r = stored_or_new(ctx, kind, s, stored)?;
        // The permit as it was at each delta's time would need its
        // history; the fold uses the permit now (reads do the same).
        let permit = permit_facts(ctx, &r.producer, tx.now)?;
        fold_all(&cfg, &mut r, deltas.iter().map(|(_, d)| d), &permit);
        for (k, _) in &deltas {
            ctx.delete_state(k)?;
        }
        save(ctx, &record_key(kind, s)?, &r)?;
    }
    Ok(Json(serde_json::json!({
        "kind": kind,
        "subject": s,
        "folded": deltas.len(),
        "more": more,
    })))
}

/// `index_pending ""` or `index_pending "{kind}/{subject}"` (anyone): up to
/// [`MAX_PENDING_RECORDS`] records (GTINs and MSP ids) that have deltas old
/// enough for `index_fold`, looking from the start or after the record
/// named, and where to look next: `{"records": […], "next": "kind/subject"
/// | null}` (null: the end was reached).
pub fn index_pending(ctx: &mut Context, after: String) -> Result<Json<serde_json::Value>, Error> {
    let tx = Tx::new(ctx)?;
    let cutoff = format!("{:012}", (tx.now - FOLD_AGE).max(0));
    let (mut cursor, end) = partial_key_range("qidx_d", &[])?;
    if let Some((kind, subject)) = after.split_once('/') {
        cursor = partial_key_range("qidx_d", &[kind, subject])?.1;
    } else if !after.is_empty() {
        return Err(Error::new(
            "index_pending takes \"\" or \"{kind}/{subject}\"",
        ));
    }
    let mut out = Vec::new();
    let mut next = None;
    // One row per record: its oldest delta; then skip past the record.
    for _ in 0..MAX_PENDING_RECORDS * 2 {
        let page = ctx.range_bytes(&cursor, &end, 1)?;
        let Some((k, _)) = page.rows.into_iter().next() else {
            next = None;
            break;
        };
        let (_, attrs) = split_composite_key(&k)?;
        let [kind, subject, time, ..] = attrs.as_slice() else {
            return Err(Error::new(format!("malformed index delta key {k:?}")));
        };
        if *time < cutoff {
            out.push(subject.clone());
        }
        cursor = partial_key_range("qidx_d", &[kind, subject])?.1;
        next = Some(format!("{kind}/{subject}"));
        if out.len() >= MAX_PENDING_RECORDS {
            break;
        }
    }
    Ok(Json(serde_json::json!({"records": out, "next": next})))
}

/// What `index_get` shows.
#[derive(Serialize)]
pub struct IndexSummary {
    pub kind: String,
    pub subject: String,
    pub index: u64,
    pub coefficient: u64,
    /// Valid evaluations behind the coefficient.
    pub evaluations: u64,
    pub terms: Vec<Term>,
    pub config_version: u32,
    pub updated_at: i64,
    pub history: Vec<Point>,
    /// Events folded in at this read (not yet stored by `index_fold`).
    pub pending: u64,
    /// More events wait than one read folds: the figures lag until
    /// `index_fold` catches up.
    pub pending_more: bool,
}

/// `index_get GTIN|MSP`: the index, its terms and history (anyone).
pub fn index_get(ctx: &mut Context, arg: String) -> Result<Json<IndexSummary>, Error> {
    let (r, pending, pending_more) = read(ctx, &arg)?;
    Ok(Json(IndexSummary {
        pending,
        pending_more,
        kind: r.kind,
        subject: r.subject,
        index: r.index,
        coefficient: r.coefficient,
        evaluations: r.inputs.uces_n,
        terms: r.terms,
        config_version: r.config_version,
        updated_at: r.updated_at,
        history: r.history,
    }))
}

/// `index_explain GTIN|MSP`: the whole record — inputs, permit facts, the
/// records behind each term, terms with weights and contributions (anyone).
pub fn index_explain(ctx: &mut Context, arg: String) -> Result<Json<IndexRecord>, Error> {
    read(ctx, &arg).map(|(r, _, _)| Json(r))
}
