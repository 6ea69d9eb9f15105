//! The QCSS index per product (GTIN) and per enterprise (producer MSP), and
//! the UCES coefficient inside it: fixed point (10 000 = 100.00 %), integer
//! arithmetic only, recomputed from stored sums on every event that moves
//! it, so the same events in any order give the same index.
//!
//! Each record (`qidx/gtin/{gtin}`, `qidx/enterprise/{msp}`) keeps its
//! inputs (counters), the records behind each term (sorted, bounded), the
//! terms with their weights and contributions, and a bounded history. An
//! enterprise's inputs are the sums of its products'. Weights and constants
//! come only from the governed config (`governance.rs`). Nothing is
//! maintained before the config's genesis (`gov_init`): events before it
//! do not count. Formulas: README.md, "QCSS index".

use std::collections::BTreeMap;

use qcss_chaincode_sdk::{Context, Error, Json};
use serde::{Deserialize, Serialize};

use crate::governance::{Config, ONE, config};
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

/// Recomputes and saves `r`; `permits` caches the producers' permits.
fn finish(
    ctx: &mut Context,
    tx: &Tx,
    cfg: &Config,
    r: &mut IndexRecord,
    event: &str,
    permits: &mut BTreeMap<String, PermitFacts>,
) -> Result<(), Error> {
    r.permit = match permits.get(&r.producer) {
        Some(p) => p.clone(),
        None => {
            let p = permit_facts(ctx, &r.producer, tx.now)?;
            permits.insert(r.producer.clone(), p.clone());
            p
        }
    };
    compute(cfg, r);
    r.updated_at = tx.now;
    r.tx_id = tx.tx_id.clone();
    r.history.push(Point {
        time: tx.now,
        event: event.to_owned(),
        index: r.index,
    });
    let keep = cfg.index.history as usize;
    if r.history.len() > keep {
        r.history.drain(..r.history.len() - keep);
    }
    save(ctx, &record_key(&r.kind, &r.subject)?, r)
}

fn load_record(
    ctx: &mut Context,
    kind: &str,
    subject: &str,
    producer: &str,
) -> Result<IndexRecord, Error> {
    Ok(
        load(ctx, &record_key(kind, subject)?)?.unwrap_or_else(|| IndexRecord {
            kind: kind.into(),
            subject: subject.into(),
            producer: producer.into(),
            ..IndexRecord::default()
        }),
    )
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

/// Adds `changes` to their products' inputs and to their owners'
/// enterprise inputs, then recomputes and saves each record touched, once.
fn apply(
    ctx: &mut Context,
    tx: &Tx,
    cfg: &Config,
    event: &str,
    changes: Vec<Change>,
) -> Result<(), Error> {
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let mut records: BTreeMap<(&'static str, String), IndexRecord> = BTreeMap::new();
    for c in &changes {
        let owner = match owners.get(&c.gtin) {
            Some(o) => o.clone(),
            None => {
                let o = load_product(ctx, &c.gtin)?.owner;
                owners.insert(c.gtin.clone(), o.clone());
                o
            }
        };
        for (kind, subject) in [("gtin", c.gtin.as_str()), ("enterprise", owner.as_str())] {
            let k = (kind, subject.to_owned());
            let r = match records.entry(k) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(load_record(ctx, kind, subject, &owner)?)
                }
            };
            r.inputs.add(&c.delta);
            add_refs(r, c.term, &c.ids);
            if kind == "enterprise"
                && let Err(at) = r.gtins.binary_search(&c.gtin)
            {
                // The smallest GTINs, whatever order they came in.
                r.gtins.insert(at, c.gtin.clone());
                r.gtins.truncate(MAX_GTINS);
            }
        }
    }
    let mut permits = BTreeMap::new();
    for (_, mut r) in records {
        finish(ctx, tx, cfg, &mut r, event, &mut permits)?;
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
    let Some(cfg) = config(ctx)? else {
        return Ok(());
    };
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
    apply(ctx, tx, &cfg, "inspection", changes)
}

/// A transformation made `output` from `inputs`: the inputs' inspections
/// so far count as the output product's raw material.
pub fn on_transform(
    ctx: &mut Context,
    tx: &Tx,
    output: &BatchId,
    inputs: &[BatchId],
) -> Result<(), Error> {
    let Some(cfg) = config(ctx)? else {
        return Ok(());
    };
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
    apply(ctx, tx, &cfg, "transformation", vec![change])
}

/// IoT readings and the alerts they raised on a batch of `gtin`.
pub fn on_readings(
    ctx: &mut Context,
    tx: &Tx,
    gtin: &str,
    readings: u64,
    alerts: &[String],
) -> Result<(), Error> {
    let Some(cfg) = config(ctx)? else {
        return Ok(());
    };
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
    apply(ctx, tx, &cfg, "readings", vec![change])
}

/// Recalled batches (the origin first, then downstream).
pub fn on_recall(ctx: &mut Context, tx: &Tx, batches: &[String]) -> Result<(), Error> {
    let Some(cfg) = config(ctx)? else {
        return Ok(());
    };
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
    apply(ctx, tx, &cfg, "recall", changes)
}

/// A valid evaluation of a unit of `eval.gtin`.
pub fn on_evaluation(
    ctx: &mut Context,
    tx: &Tx,
    cfg: &Config,
    eval: &Evaluation,
) -> Result<(), Error> {
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
    apply(ctx, tx, cfg, "evaluation", vec![change])
}

/// A permit change of `msp`: its enterprise record and (up to
/// [`MAX_GTINS`]) products are recomputed.
pub fn on_permit(ctx: &mut Context, tx: &Tx, msp: &str) -> Result<(), Error> {
    let Some(cfg) = config(ctx)? else {
        return Ok(());
    };
    let Some(mut ent) = load::<IndexRecord>(ctx, &record_key("enterprise", msp)?)? else {
        return Ok(());
    };
    let mut permits = BTreeMap::new();
    for gtin in ent.gtins.clone() {
        let mut r = load_record(ctx, "gtin", &gtin, msp)?;
        finish(ctx, tx, &cfg, &mut r, "permit", &mut permits)?;
    }
    finish(ctx, tx, &cfg, &mut ent, "permit", &mut permits)
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

fn read(ctx: &mut Context, arg: &str) -> Result<IndexRecord, Error> {
    let (kind, s) = subject(arg)?;
    load(ctx, &record_key(kind, s)?)?
        .ok_or_else(|| Error::new(format!("no QCSS index for {kind} {s} yet")))
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
}

/// `index_get GTIN|MSP`: the index, its terms and history (anyone).
pub fn index_get(ctx: &mut Context, arg: String) -> Result<Json<IndexSummary>, Error> {
    let r = read(ctx, &arg)?;
    Ok(Json(IndexSummary {
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
    read(ctx, &arg).map(Json)
}
