//! Governed configuration of UCES, the QCSS index and rewards: the record
//! `uces/config`, changed only by a proposal that admins of a majority of
//! the member organisations approve.
//!
//! The config carries the governing members (`orgs`), a subset of the
//! channel's organisations (which the peer tells the contract:
//! `channel_orgs`). The genesis config is a proposal too: `gov_init` by an
//! admin of a channel org proposes it (`genesis-<MSP>`), and it is applied
//! when admins of more than half of the *channel's* organisations have
//! approved it with `gov_approve` — no single organisation can set up UCES
//! alone by naming only itself (one that is the channel's only member
//! can). Every later change — including of `orgs` — goes through
//! `gov_propose` / `gov_approve`, applied when more than half of the
//! *current* `orgs` have approved. A proposal names the config version it
//! replaces (0 for a genesis), so a stale proposal cannot undo a newer
//! change, and the first genesis to be applied makes the others stale.

use qcss_chaincode_sdk::{Context, Error, Json};
use serde::{Deserialize, Serialize};

use crate::ids::{check_msp, check_sha256, check_text};
use crate::store::{Tx, key, load, save};

/// Most member organisations, validators and approvals.
pub const MAX_ORGS: usize = 32;
pub const MAX_VALIDATORS: usize = 64;
/// Base units per QCSS (10^-8).
pub const BASE_UNITS: u128 = 100_000_000;
/// The DApp reward pool: 100 000 000 QCSS in base units.
pub const DAPP_POOL: u128 = 100_000_000 * BASE_UNITS;
/// 18 months as 1.5 Julian years (547.875 days).
pub const DAPP_POOL_SECS: i64 = 47_336_400;
/// Fixed point of index terms and weights: 10 000 = 100.00 %.
pub const ONE: u64 = 10_000;
/// Most addresses in one page of an epoch's reward batch (hard cap on
/// `max_batch`; an epoch has any number of pages): freezing a page of 128
/// costs ≈ 4.3 M fuel of the 10 M budget, reading it back ≈ 3.5 M
/// (`tests/uces.rs` `reward_pages_fit_in_the_fuel_budget`).
pub const MAX_BATCH: u32 = 128;

/// A validator: one vote per identity (its MSP and the SHA-256 of its
/// certificate PEM, trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    pub msp: String,
    pub cert_sha256: String,
}

impl Validator {
    /// The id votes are recorded under: `{msp}:{cert_sha256}`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.msp, self.cert_sha256)
    }
}

/// Credit, penalty and bar rules for evaluation authors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Penalties {
    /// A new author's credit.
    pub credit_initial: u32,
    /// Credit never goes above this.
    pub credit_max: u32,
    /// Credit gained per valid evaluation.
    pub credit_gain: u32,
    /// Credit lost per rejected evaluation (never below 1).
    pub credit_penalty: u32,
    /// Rejections (since the last bar) that bar the author.
    pub bar_after: u32,
    /// How long a bar lasts (seconds).
    pub bar_secs: i64,
}

impl Default for Penalties {
    fn default() -> Self {
        Penalties {
            credit_initial: 100,
            credit_max: 200,
            credit_gain: 5,
            credit_penalty: 30,
            bar_after: 3,
            bar_secs: 30 * 86_400,
        }
    }
}

/// Index weights in basis points (sum 10 000) and term constants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexParams {
    pub w_producer: u64,
    pub w_raw_material: u64,
    pub w_process: u64,
    pub w_certification: u64,
    pub w_uces: u64,
    /// Producer credit lost per recall originating at the producer (bp).
    pub recall_penalty: u64,
    /// Producer credit lost per permit suspension in its history (bp).
    pub suspension_penalty: u64,
    /// Weight of the neutral (5 000) prior in the smoothed ratios.
    pub smoothing: u64,
    /// UCES prior: mean overall score in milli-points (1 000..=5 000).
    pub prior_mean: u64,
    /// UCES prior weight, in credit units (e.g. 5 authors of credit 100).
    pub prior_weight: u64,
    /// Index records keep this many past values (1..=64).
    pub history: u32,
}

impl Default for IndexParams {
    fn default() -> Self {
        IndexParams {
            w_producer: 2_500,
            w_raw_material: 1_500,
            w_process: 1_500,
            w_certification: 2_000,
            w_uces: 2_500,
            recall_penalty: 2_000,
            suspension_penalty: 1_000,
            smoothing: 1,
            prior_mean: 3_000,
            prior_weight: 500,
            history: 16,
        }
    }
}

/// Reward epochs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardParams {
    /// Start of epoch 0 (Unix seconds); `gov_init` fills in now when 0.
    pub start: i64,
    pub epoch_secs: i64,
    /// Points per first scan of a unit by a consumer.
    pub scan_points: u64,
    /// Points per valid evaluation.
    pub eval_points: u64,
    /// Points one address can earn per epoch (anti-farming cap).
    pub max_points: u64,
    /// Base units per point when the budget is not exhausted.
    pub rate: u64,
    /// Addresses per page of an epoch's batch, one `rewards_epoch`
    /// transaction each (1..=[`MAX_BATCH`]).
    pub max_batch: u32,
}

impl Default for RewardParams {
    fn default() -> Self {
        RewardParams {
            start: 0,
            epoch_secs: 7 * 86_400,
            scan_points: 1,
            eval_points: 5,
            max_points: 100,
            rate: BASE_UNITS as u64,
            max_batch: MAX_BATCH,
        }
    }
}

/// `uces/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Set by the contract: 1 at genesis, +1 per applied proposal.
    #[serde(default)]
    pub version: u32,
    /// Member organisations whose admins govern this record.
    pub orgs: Vec<String>,
    pub validators: Vec<Validator>,
    /// How long validators may vote on an evaluation (seconds).
    pub vote_window_secs: i64,
    /// Evaluations one author may submit per UTC day.
    pub daily_limit: u32,
    #[serde(default)]
    pub penalties: Penalties,
    #[serde(default)]
    pub index: IndexParams,
    #[serde(default)]
    pub rewards: RewardParams,
}

impl Config {
    fn check(&self) -> Result<(), Error> {
        if self.orgs.is_empty() || self.orgs.len() > MAX_ORGS {
            return Err(Error::new(format!(
                "config: orgs must list 1 to {MAX_ORGS} organisations"
            )));
        }
        for (i, o) in self.orgs.iter().enumerate() {
            check_msp(o)?;
            if self.orgs[..i].contains(o) {
                return Err(Error::new(format!("config: org {o} is listed twice")));
            }
        }
        if self.validators.is_empty() || self.validators.len() > MAX_VALIDATORS {
            return Err(Error::new(format!(
                "config: validators must list 1 to {MAX_VALIDATORS} identities"
            )));
        }
        for (i, v) in self.validators.iter().enumerate() {
            check_msp(&v.msp)?;
            check_sha256("validator cert_sha256", &v.cert_sha256)?;
            if self.validators[..i].contains(v) {
                return Err(Error::new(format!(
                    "config: validator {} is listed twice",
                    v.id()
                )));
            }
        }
        range("vote_window_secs", self.vote_window_secs, 60, 30 * 86_400)?;
        range("daily_limit", self.daily_limit.into(), 1, 100)?;
        let p = &self.penalties;
        range("credit_max", p.credit_max.into(), 1, 10_000)?;
        range(
            "credit_initial",
            p.credit_initial.into(),
            1,
            p.credit_max.into(),
        )?;
        range("credit_gain", p.credit_gain.into(), 0, p.credit_max.into())?;
        range(
            "credit_penalty",
            p.credit_penalty.into(),
            0,
            p.credit_max.into(),
        )?;
        range("bar_after", p.bar_after.into(), 1, 100)?;
        range("bar_secs", p.bar_secs, 0, 3 * 365 * 86_400)?;
        let x = &self.index;
        let sum = x.w_producer + x.w_raw_material + x.w_process + x.w_certification + x.w_uces;
        if sum != ONE {
            return Err(Error::new(format!(
                "config: index weights must sum to {ONE} basis points, got {sum}"
            )));
        }
        range("recall_penalty", x.recall_penalty as i64, 0, ONE as i64)?;
        range(
            "suspension_penalty",
            x.suspension_penalty as i64,
            0,
            ONE as i64,
        )?;
        range("smoothing", x.smoothing as i64, 1, 1_000)?;
        range("prior_mean", x.prior_mean as i64, 1_000, 5_000)?;
        range("prior_weight", x.prior_weight as i64, 1, 1_000_000)?;
        range("history", x.history.into(), 1, 64)?;
        let r = &self.rewards;
        range("epoch_secs", r.epoch_secs, 60, 90 * 86_400)?;
        range("start", r.start, 0, i64::MAX / 2)?;
        range("scan_points", r.scan_points as i64, 0, 1_000)?;
        range("eval_points", r.eval_points as i64, 0, 1_000)?;
        range("max_points", r.max_points as i64, 1, 1_000_000)?;
        range("rate", r.rate as i64, 0, 1_000 * BASE_UNITS as i64)?;
        range("max_batch", r.max_batch.into(), 1, MAX_BATCH.into())?;
        Ok(())
    }
}

fn range(field: &str, v: i64, lo: i64, hi: i64) -> Result<(), Error> {
    if v < lo || v > hi {
        return Err(Error::new(format!(
            "config: {field} must be in {lo}..={hi}, got {v}"
        )));
    }
    Ok(())
}

fn config_key() -> Result<String, Error> {
    key("uces", &["config"])
}

/// The governed config, if genesis happened.
pub fn config(ctx: &mut Context) -> Result<Option<Config>, Error> {
    load(ctx, &config_key()?)
}

/// The governed config, or an error saying genesis is missing.
pub fn require_config(ctx: &mut Context) -> Result<Config, Error> {
    config(ctx)?.ok_or_else(|| {
        Error::new("UCES is not configured on this channel: an org admin must call gov_init first")
    })
}

/// A pending or decided change of the config (`uces/proposal/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proposal {
    pub id: String,
    /// The config version this proposal replaces.
    pub base_version: u32,
    pub config: Config,
    pub proposer: String,
    /// Organisations whose admins approved (the proposer's included).
    pub approvals: Vec<String>,
    /// `pending`, `applied` or `stale` (another change was applied first).
    pub status: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

fn require_admin(tx: &Tx, orgs: &[String], doing: &str) -> Result<(), Error> {
    if tx.caller.role != "admin" {
        return Err(Error::new(format!(
            "access denied: only an org admin (role admin) may {doing}, caller has role {:?}",
            tx.caller.role
        )));
    }
    if !orgs.iter().any(|o| o == tx.msp()) {
        return Err(Error::new(format!(
            "access denied: organisation {} is not a member listed in the UCES config",
            tx.msp()
        )));
    }
    Ok(())
}

/// The channel's organisations, as the endorsing peer lists them.
fn channel_orgs(ctx: &mut Context) -> Result<Vec<String>, Error> {
    let orgs = ctx.channel_orgs()?;
    if orgs.is_empty() {
        return Err(Error::new(
            "the peer did not say which organisations the channel has (it predates channel_orgs); \
             UCES governance needs them",
        ));
    }
    Ok(orgs)
}

/// Refuses a config listing an organisation that is not on the channel.
fn require_on_channel(c: &Config, channel: &[String]) -> Result<(), Error> {
    match c.orgs.iter().find(|o| !channel.contains(o)) {
        Some(o) => Err(Error::new(format!(
            "config: organisation {o} is not a member of this channel"
        ))),
        None => Ok(()),
    }
}

/// The id of `msp`'s genesis proposal.
fn genesis_id(msp: &str) -> String {
    format!("genesis-{msp}")
}

/// `gov_init`: an admin of a channel org that the config lists proposes
/// the genesis config (`genesis-<MSP>`, replacing that org's own pending
/// one). Applied at once when that org alone is more than half of the
/// channel, otherwise when enough other orgs' admins approve it.
pub fn gov_init(ctx: &mut Context, c: Json<Config>) -> Result<Json<Proposal>, Error> {
    let tx = Tx::new(ctx)?;
    let mut c = c.0;
    if config(ctx)?.is_some() {
        return Err(Error::new(
            "UCES is already configured: change it with gov_propose and gov_approve",
        ));
    }
    let channel = channel_orgs(ctx)?;
    // The caller's org among the config's, and those all on the channel.
    require_admin(&tx, &c.orgs, "propose the genesis UCES config")?;
    require_on_channel(&c, &channel)?;
    c.version = 1;
    if c.rewards.start == 0 {
        c.rewards.start = tx.now;
    }
    c.check()?;
    let mut proposal = Proposal {
        id: genesis_id(tx.msp()),
        base_version: 0,
        config: c,
        proposer: tx.msp().to_owned(),
        approvals: vec![tx.msp().to_owned()],
        status: "pending".into(),
        created_at: tx.now,
        decided_at: None,
    };
    apply_if_majority(ctx, &tx, &channel, &mut proposal)?;
    save(ctx, &proposal_key(&proposal.id)?, &proposal)?;
    Ok(Json(proposal))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Propose {
    id: String,
    config: Config,
}

fn proposal_key(id: &str) -> Result<String, Error> {
    key("uces_proposal", &[id])
}

/// `gov_propose`: an admin of a member org proposes a whole new config.
pub fn gov_propose(ctx: &mut Context, p: Json<Propose>) -> Result<Json<Proposal>, Error> {
    let tx = Tx::new(ctx)?;
    let p = p.0;
    let current = require_config(ctx)?;
    require_admin(&tx, &current.orgs, "propose a UCES config change")?;
    check_text("id", &p.id, 64)?;
    check_msp(&p.id).map_err(|_| Error::new("proposal id must be A-Z a-z 0-9 . _ -"))?;
    if p.id.starts_with("genesis-") {
        return Err(Error::new(
            "proposal ids starting with genesis- are gov_init's",
        ));
    }
    let channel = channel_orgs(ctx)?;
    require_on_channel(&p.config, &channel)?;
    let mut config = p.config;
    config.version = current.version + 1;
    if config.rewards.start == 0 {
        config.rewards.start = current.rewards.start;
    }
    // Epochs already credited must keep their windows.
    if (config.rewards.start, config.rewards.epoch_secs)
        != (current.rewards.start, current.rewards.epoch_secs)
    {
        return Err(Error::new(
            "config: the reward epoch schedule (rewards.start, rewards.epoch_secs) is fixed at genesis",
        ));
    }
    config.check()?;
    let k = proposal_key(&p.id)?;
    if load::<Proposal>(ctx, &k)?.is_some() {
        return Err(Error::new(format!("proposal {} already exists", p.id)));
    }
    let mut proposal = Proposal {
        id: p.id,
        base_version: current.version,
        config,
        proposer: tx.msp().to_owned(),
        approvals: vec![tx.msp().to_owned()],
        status: "pending".into(),
        created_at: tx.now,
        decided_at: None,
    };
    apply_if_majority(ctx, &tx, &current.orgs, &mut proposal)?;
    save(ctx, &k, &proposal)?;
    Ok(Json(proposal))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approve {
    id: String,
}

/// `gov_approve`: an admin of another member org approves; the proposal is
/// applied as soon as more than half of the member orgs approved (for a
/// genesis proposal: of the channel's orgs).
pub fn gov_approve(ctx: &mut Context, a: Json<Approve>) -> Result<Json<Proposal>, Error> {
    let tx = Tx::new(ctx)?;
    let k = proposal_key(&a.0.id)?;
    let mut proposal: Proposal =
        load(ctx, &k)?.ok_or_else(|| Error::new(format!("unknown proposal {}", a.0.id)))?;
    // Who governs: before genesis the channel's orgs, after it the config's.
    let (version, members) = match config(ctx)? {
        Some(c) => (c.version, c.orgs),
        None => (0, channel_orgs(ctx)?),
    };
    require_admin(&tx, &members, "approve a UCES config change")?;
    if proposal.status != "pending" {
        return Err(Error::new(format!(
            "proposal {} is {}, not pending",
            proposal.id, proposal.status
        )));
    }
    if proposal.base_version != version {
        proposal.status = "stale".into();
        proposal.decided_at = Some(tx.now);
        save(ctx, &k, &proposal)?;
        return Ok(Json(proposal));
    }
    if proposal.approvals.iter().any(|o| o == tx.msp()) {
        return Err(Error::new(format!(
            "organisation {} already approved proposal {}",
            tx.msp(),
            proposal.id
        )));
    }
    proposal.approvals.push(tx.msp().to_owned());
    apply_if_majority(ctx, &tx, &members, &mut proposal)?;
    save(ctx, &k, &proposal)?;
    Ok(Json(proposal))
}

/// Applies `p` when more than half of `members` approved it.
fn apply_if_majority(
    ctx: &mut Context,
    tx: &Tx,
    members: &[String],
    p: &mut Proposal,
) -> Result<(), Error> {
    let approved = p.approvals.iter().filter(|o| members.contains(o)).count();
    if approved * 2 > members.len() {
        p.status = "applied".into();
        p.decided_at = Some(tx.now);
        save(ctx, &config_key()?, &p.config)?;
        ctx.set_event("UcesConfigChanged", &p.config.version)?;
    } else {
        ctx.set_event("UcesProposal", &p.id)?;
    }
    Ok(())
}

/// `gov_get`: `""` reads the config, a proposal id reads that proposal.
pub fn gov_get(ctx: &mut Context, id: String) -> Result<Json<serde_json::Value>, Error> {
    if id.is_empty() {
        let c = require_config(ctx)?;
        return Ok(Json(serde_json::to_value(c)?));
    }
    if id.len() > 64 {
        return Err(Error::new("proposal id is longer than 64 bytes"));
    }
    let p: Proposal = load(ctx, &proposal_key(&id)?)?
        .ok_or_else(|| Error::new(format!("unknown proposal {id}")))?;
    Ok(Json(serde_json::to_value(p)?))
}
