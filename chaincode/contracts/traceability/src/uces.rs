//! UCES, the universal consensus evaluation system: a real-name consumer
//! who claimed a unit evaluates it once; the validators of the governed
//! config vote within the window; more than half of the validator set
//! approving makes it valid, half or more rejecting (or the window lapsing)
//! rejects it. A rejection costs the author credit and its reward; enough
//! rejections bar the author for a while. Valid evaluations feed the
//! product's UCES coefficient (`index.rs`) and the author's reward
//! (`rewards.rs`). Only hashes of text and photos are stored, and authors
//! appear only as salted hashes ([`author_id`]).

use qcss_chaincode_sdk::{Context, Error, Json};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::governance::{Config, require_config};
use crate::ids::{UnitId, check_sha256};
use crate::store::{Tx, key, load, load_unit, save};

/// The certificate attribute that says the consumer's real name was
/// verified by the platform: `real_name=verified`.
pub const REAL_NAME_ATTR: &str = "real_name";
pub const REAL_NAME_VERIFIED: &str = "verified";
/// Most photo hashes per evaluation.
pub const MAX_PHOTOS: usize = 9;
const DAY: i64 = 86_400;

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The caller's pseudonymous author id: hex SHA-256 of
/// `qcss-uces-author-v1\0{channel}\0{msp}\0{certificate PEM, trimmed}`.
/// Salted with the channel so ids do not link across ledgers; whoever holds
/// the certificate can recompute it, the public cannot.
pub fn author_id(ctx: &Context, tx: &Tx) -> Result<String, Error> {
    let mut h = Sha256::new();
    h.update(b"qcss-uces-author-v1\0");
    h.update(ctx.channel_id()?.as_bytes());
    h.update(b"\0");
    h.update(tx.msp().as_bytes());
    h.update(b"\0");
    h.update(tx.caller.cert_pem.trim().as_bytes());
    Ok(hex::encode(h.finalize()))
}

/// Scores 1..=5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scores {
    pub overall: u8,
    pub quality: u8,
    pub performance: u8,
    pub authenticity: u8,
}

/// A vote on an evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vote {
    pub validator: String,
    pub approve: bool,
    pub time: i64,
}

/// `uces_eval/{gtin}/{lot}/{serial}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    pub unit: String,
    pub gtin: String,
    /// The author's salted id ([`author_id`]).
    pub author: String,
    pub scores: Scores,
    pub text_sha256: Option<String>,
    pub photo_sha256: Vec<String>,
    pub submitted_at: i64,
    /// Votes are accepted while `now < deadline`.
    pub deadline: i64,
    /// The validator set when submitted (ids); majorities count against it.
    pub validators: Vec<String>,
    pub votes: Vec<Vote>,
    /// `pending`, `valid` or `rejected`.
    pub status: String,
    /// Why it was decided: `approved`, `rejected by vote`, `window lapsed`.
    pub reason: Option<String>,
    pub decided_at: Option<i64>,
    /// The author's credit used as its weight in the coefficient (valid only).
    pub weight: Option<u32>,
    /// A rejected evaluation earns nothing.
    pub reward_forfeited: bool,
    pub tx_id: String,
}

/// `uces_author/{author}`: credit and penalties.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Author {
    pub id: String,
    pub credit: u32,
    pub valid: u32,
    pub rejected: u32,
    /// Rejections since the last bar.
    pub strikes: u32,
    pub barred_until: Option<i64>,
}

pub fn load_author(ctx: &mut Context, cfg: &Config, id: &str) -> Result<Author, Error> {
    Ok(
        load(ctx, &key("uces_author", &[id])?)?.unwrap_or_else(|| Author {
            id: id.to_owned(),
            credit: cfg.penalties.credit_initial,
            ..Author::default()
        }),
    )
}

fn eval_key(unit: &UnitId) -> Result<String, Error> {
    key(
        "uces_eval",
        &[&unit.batch.gtin, &unit.batch.lot, &unit.serial.to_string()],
    )
}

/// Fails unless the caller is a consumer whose real name is verified.
pub fn require_real_name(tx: &Tx, doing: &str) -> Result<(), Error> {
    tx.require("consumer", doing)?;
    if tx.caller.attr(REAL_NAME_ATTR) != Some(REAL_NAME_VERIFIED) {
        return Err(Error::new(format!(
            "access denied: only a real-name consumer (certificate attribute {REAL_NAME_ATTR}={REAL_NAME_VERIFIED}) may {doing}"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvaluation {
    unit: String,
    scores: Scores,
    text_sha256: Option<String>,
    #[serde(default)]
    photo_sha256: Vec<String>,
}

/// `uces_evaluate`: the consumer who claimed a unit evaluates it, once.
pub fn uces_evaluate(ctx: &mut Context, e: Json<NewEvaluation>) -> Result<Json<Evaluation>, Error> {
    let tx = Tx::new(ctx)?;
    require_real_name(&tx, "evaluate a unit")?;
    let cfg = require_config(ctx)?;
    let e = e.0;
    let unit_id = UnitId::parse(&e.unit)?;
    for (name, s) in [
        ("overall", e.scores.overall),
        ("quality", e.scores.quality),
        ("performance", e.scores.performance),
        ("authenticity", e.scores.authenticity),
    ] {
        if !(1..=5).contains(&s) {
            return Err(Error::new(format!("score {name} must be 1 to 5, got {s}")));
        }
    }
    if let Some(t) = &e.text_sha256 {
        check_sha256("text_sha256", t)?;
    }
    if e.photo_sha256.len() > MAX_PHOTOS {
        return Err(Error::new(format!(
            "at most {MAX_PHOTOS} photo hashes, got {}",
            e.photo_sha256.len()
        )));
    }
    for p in &e.photo_sha256 {
        check_sha256("photo_sha256", p)?;
    }
    let author = author_id(ctx, &tx)?;
    let unit = load_unit(ctx, &unit_id)?;
    if unit.claimed_by.as_deref() != Some(author.as_str()) {
        return Err(Error::new(format!(
            "access denied: you have not claimed unit {}: only the consumer who claimed a unit may evaluate it",
            unit_id.id()
        )));
    }
    let k = eval_key(&unit_id)?;
    if load::<Evaluation>(ctx, &k)?.is_some() {
        return Err(Error::new(format!(
            "unit {} is already evaluated: one evaluation per unit",
            unit_id.id()
        )));
    }
    let a = load_author(ctx, &cfg, &author)?;
    if let Some(until) = a.barred_until
        && until > tx.now
    {
        return Err(Error::new(format!(
            "access denied: this author is barred from evaluating until {until} after {} rejected evaluations",
            a.rejected
        )));
    }
    let day = tx.now.div_euclid(DAY);
    let dk = key("uces_daily", &[&author, &day.to_string()])?;
    let today: u32 = load(ctx, &dk)?.unwrap_or(0);
    if today >= cfg.daily_limit {
        return Err(Error::new(format!(
            "daily evaluation limit reached: {} of {} today (UTC day {day})",
            today, cfg.daily_limit
        )));
    }
    save(ctx, &dk, &(today + 1))?;
    let eval = Evaluation {
        unit: unit_id.id(),
        gtin: unit_id.batch.gtin.clone(),
        author,
        scores: e.scores,
        text_sha256: e.text_sha256,
        photo_sha256: e.photo_sha256,
        submitted_at: tx.now,
        deadline: tx.now + cfg.vote_window_secs,
        validators: cfg.validators.iter().map(|v| v.id()).collect(),
        votes: Vec::new(),
        status: "pending".into(),
        reason: None,
        decided_at: None,
        weight: None,
        reward_forfeited: false,
        tx_id: tx.tx_id.clone(),
    };
    save(ctx, &k, &eval)?;
    ctx.set_event("EvaluationSubmitted", &eval.unit)?;
    Ok(Json(eval))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVote {
    unit: String,
    approve: bool,
}

fn load_eval(ctx: &mut Context, unit: &str) -> Result<(String, Evaluation), Error> {
    let k = eval_key(&UnitId::parse(unit)?)?;
    let e = load(ctx, &k)?.ok_or_else(|| Error::new(format!("unit {unit} has no evaluation")))?;
    Ok((k, e))
}

/// `uces_vote`: a validator (of the set the evaluation was submitted under)
/// approves or rejects, once, within the window.
pub fn uces_vote(ctx: &mut Context, v: Json<NewVote>) -> Result<Json<Evaluation>, Error> {
    let mut tx = Tx::new(ctx)?;
    let cfg = require_config(ctx)?;
    let (k, mut eval) = load_eval(ctx, &v.0.unit)?;
    let fp = sha256_hex(tx.caller.cert_pem.trim().as_bytes());
    let me = format!("{}:{fp}", tx.msp());
    if !eval.validators.contains(&me) {
        return Err(Error::new(format!(
            "access denied: {me} is not a validator of evaluation {}",
            eval.unit
        )));
    }
    if eval.status != "pending" {
        return Err(Error::new(format!(
            "evaluation {} is already {}",
            eval.unit, eval.status
        )));
    }
    if tx.now >= eval.deadline {
        return Err(Error::new(format!(
            "the voting window of evaluation {} closed at {} (now {}): call uces_finalize",
            eval.unit, eval.deadline, tx.now
        )));
    }
    if eval.votes.iter().any(|x| x.validator == me) {
        return Err(Error::new(format!(
            "validator {me} already voted on evaluation {}",
            eval.unit
        )));
    }
    eval.votes.push(Vote {
        validator: me,
        approve: v.0.approve,
        time: tx.now,
    });
    let n = eval.validators.len();
    let yes = eval.votes.iter().filter(|x| x.approve).count();
    let no = eval.votes.len() - yes;
    if yes * 2 > n {
        decide(ctx, &mut tx, &cfg, &mut eval, true, "approved")?;
    } else if no * 2 >= n {
        decide(ctx, &mut tx, &cfg, &mut eval, false, "rejected by vote")?;
    } else {
        ctx.set_event("EvaluationVoted", &eval.unit)?;
    }
    save(ctx, &k, &eval)?;
    Ok(Json(eval))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finalize {
    unit: String,
}

/// `uces_finalize`: anyone, after the window: a still pending evaluation is
/// rejected (it did not win a majority in time).
pub fn uces_finalize(ctx: &mut Context, f: Json<Finalize>) -> Result<Json<Evaluation>, Error> {
    let mut tx = Tx::new(ctx)?;
    let cfg = require_config(ctx)?;
    let (k, mut eval) = load_eval(ctx, &f.0.unit)?;
    if eval.status != "pending" {
        return Err(Error::new(format!(
            "evaluation {} is already {}",
            eval.unit, eval.status
        )));
    }
    if tx.now < eval.deadline {
        return Err(Error::new(format!(
            "the voting window of evaluation {} is open until {} (now {})",
            eval.unit, eval.deadline, tx.now
        )));
    }
    decide(ctx, &mut tx, &cfg, &mut eval, false, "window lapsed")?;
    save(ctx, &k, &eval)?;
    Ok(Json(eval))
}

fn decide(
    ctx: &mut Context,
    tx: &mut Tx,
    cfg: &Config,
    eval: &mut Evaluation,
    valid: bool,
    reason: &str,
) -> Result<(), Error> {
    let mut a = load_author(ctx, cfg, &eval.author)?;
    let p = &cfg.penalties;
    eval.decided_at = Some(tx.now);
    eval.reason = Some(reason.to_owned());
    if valid {
        eval.status = "valid".into();
        eval.weight = Some(a.credit);
        a.valid += 1;
        crate::index::on_evaluation(ctx, tx, eval)?;
        crate::rewards::note_evaluation(ctx, tx, cfg, &eval.author)?;
        a.credit = (a.credit + p.credit_gain).min(p.credit_max);
        ctx.set_event("EvaluationValid", &eval.unit)?;
    } else {
        eval.status = "rejected".into();
        eval.reward_forfeited = true;
        a.rejected += 1;
        a.strikes += 1;
        a.credit = a.credit.saturating_sub(p.credit_penalty).max(1);
        if a.strikes >= p.bar_after {
            a.strikes = 0;
            a.barred_until = Some(tx.now + p.bar_secs);
        }
        ctx.set_event("EvaluationRejected", &eval.unit)?;
    }
    save(ctx, &key("uces_author", &[&eval.author])?, &a)
}

/// What the public sees of an evaluation: no author, no hashes, no voters.
#[derive(Serialize)]
pub struct PublicEvaluation {
    pub unit: String,
    pub gtin: String,
    pub scores: Scores,
    pub status: String,
    pub submitted_at: i64,
    pub decided_at: Option<i64>,
    pub approvals: usize,
    pub rejections: usize,
    /// The photos' SHA-256, once the validators made the evaluation valid
    /// (a consumer's page shows vetted photos only); empty before that and
    /// for a rejected one.
    pub photo_sha256: Vec<String>,
}

impl PublicEvaluation {
    /// What anyone may see of `eval`: no author, text hash or voters.
    pub fn of(eval: Evaluation) -> Self {
        let yes = eval.votes.iter().filter(|v| v.approve).count();
        let valid = eval.status == "valid";
        PublicEvaluation {
            unit: eval.unit,
            gtin: eval.gtin,
            scores: eval.scores,
            submitted_at: eval.submitted_at,
            decided_at: eval.decided_at,
            approvals: yes,
            rejections: eval.votes.len() - yes,
            photo_sha256: if valid { eval.photo_sha256 } else { Vec::new() },
            status: eval.status,
        }
    }
}

/// The public view of `unit`'s evaluation, if it has one (for `trace`).
pub fn public_evaluation(
    ctx: &mut Context,
    unit: &UnitId,
) -> Result<Option<PublicEvaluation>, Error> {
    Ok(load::<Evaluation>(ctx, &eval_key(unit)?)?.map(PublicEvaluation::of))
}

/// `uces_get UNIT`: the whole record for its author, regulators, auditors
/// and its validators; the public view for anyone else.
pub fn uces_get(ctx: &mut Context, unit: String) -> Result<Json<serde_json::Value>, Error> {
    let tx = Tx::new(ctx)?;
    let (_, eval) = load_eval(ctx, &unit)?;
    let fp = sha256_hex(tx.caller.cert_pem.trim().as_bytes());
    let privileged = tx.is("regulator")
        || tx.is("auditor")
        || eval.validators.contains(&format!("{}:{fp}", tx.msp()))
        || author_id(ctx, &tx)? == eval.author;
    if privileged {
        return Ok(Json(serde_json::to_value(eval)?));
    }
    Ok(Json(serde_json::to_value(PublicEvaluation::of(eval))?))
}

/// `uces_me`: the caller's author id, credit and bar (a real-name consumer).
pub fn uces_me(ctx: &mut Context, _unused: String) -> Result<Json<Author>, Error> {
    let tx = Tx::new(ctx)?;
    require_real_name(&tx, "read an author record")?;
    let cfg = require_config(ctx)?;
    let id = author_id(ctx, &tx)?;
    load_author(ctx, &cfg, &id).map(Json)
}
