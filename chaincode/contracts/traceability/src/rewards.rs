//! Rewards, consortium side: consumers bind a public-chain address (an
//! Ed25519 key, signed by both the certificate and the key), their first
//! scan of each unit and their valid evaluations earn points in the epoch
//! they happen in, and `rewards_epoch` turns an ended epoch into a batch of
//! (address, amount) with a SHA-256 digest over a canonical encoding that
//! the public chain checks a quorum signature over. The DApp pool
//! (100 000 000 QCSS over 18 months) is split evenly over the epochs; when
//! the points of an epoch would cost more than its budget at the configured
//! rate, every amount shrinks in proportion. Formula and encoding:
//! README.md, "Rewards".

use qcss_chaincode_sdk::{Context, Error, Json, partial_key_range, split_composite_key};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::governance::{Config, DAPP_POOL, DAPP_POOL_SECS, config, require_config};
use crate::store::{Tx, key, load, save};
use crate::uces::{author_id, require_real_name};

/// Domain tag of the binding message.
pub const BINDING_TAG: &str = "qcss-reward-binding-v1";
/// Domain tag of the batch encoding (16 bytes with its NUL).
pub const BATCH_TAG: &[u8; 16] = b"QCSS-REWARDS-V1\0";

/// `reward_addr/{author}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Binding {
    pub address: String,
    pub bound_at: i64,
    pub tx_id: String,
}

/// `reward_act/{epoch:010}/{address}`: what an address earned points for,
/// stored compactly as the ASCII text `{scans} {evals}` (an epoch's batch
/// reads every row, so rows must be cheap to read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub scans: u64,
    pub evals: u64,
}

impl Activity {
    fn decode(key: &str, bytes: &[u8]) -> Result<Self, Error> {
        let bad = || Error::new(format!("malformed reward activity under {key:?}"));
        let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
        let (s, e) = text.split_once(' ').ok_or_else(bad)?;
        Ok(Activity {
            scans: s.parse().map_err(|_| bad())?,
            evals: e.parse().map_err(|_| bad())?,
        })
    }

    fn encode(&self) -> String {
        format!("{} {}", self.scans, self.evals)
    }
}

/// The message the address key signs: `qcss-reward-binding-v1\n{channel}\n{author id}\n{address}`.
pub fn binding_message(channel: &str, author: &str, address: &str) -> String {
    format!("{BINDING_TAG}\n{channel}\n{author}\n{address}")
}

fn hex32(field: &str, s: &str) -> Result<Vec<u8>, Error> {
    let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match hex::decode(s) {
        Ok(b) if ok => Ok(b),
        _ => Err(Error::new(format!(
            "{field} must be 64 lowercase hex digits (a 32-byte Ed25519 public key), got {s:?}"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bind {
    address: String,
    /// Ed25519 signature (128 hex digits) by `address` over [`binding_message`].
    signature: String,
}

/// `bind_reward_address`: a real-name consumer binds (or re-binds) its
/// public-chain address.
pub fn bind_reward_address(ctx: &mut Context, b: Json<Bind>) -> Result<Json<Binding>, Error> {
    let tx = Tx::new(ctx)?;
    require_real_name(&tx, "bind a reward address")?;
    let b = b.0;
    let key_bytes = hex32("address", &b.address)?;
    let sig = match hex::decode(&b.signature) {
        Ok(s) if s.len() == 64 && b.signature.len() == 128 => s,
        _ => {
            return Err(Error::new(
                "signature must be 128 hex digits (64-byte Ed25519)",
            ));
        }
    };
    let author = author_id(ctx, &tx)?;
    let msg = binding_message(&ctx.channel_id()?, &author, &b.address);
    if !ctx.verify_ed25519(&key_bytes, msg.as_bytes(), &sig)? {
        return Err(Error::new(format!(
            "the address key's signature over the binding message is not valid ({BINDING_TAG}, this channel, your author id {author}, the address)"
        )));
    }
    let owner_key = key("reward_owner", &[&b.address])?;
    if let Some(other) = load::<String>(ctx, &owner_key)?
        && other != author
    {
        return Err(Error::new(format!(
            "address {} is already bound to another identity",
            b.address
        )));
    }
    let k = key("reward_addr", &[&author])?;
    if let Some(old) = load::<Binding>(ctx, &k)?
        && old.address != b.address
    {
        ctx.delete_state(&key("reward_owner", &[&old.address])?)?;
    }
    let binding = Binding {
        address: b.address,
        bound_at: tx.now,
        tx_id: tx.tx_id.clone(),
    };
    save(ctx, &k, &binding)?;
    save(ctx, &owner_key, &author)?;
    ctx.set_event("RewardAddressBound", &binding.address)?;
    Ok(Json(binding))
}

fn epoch_of(cfg: &Config, now: i64) -> Option<u64> {
    let r = &cfg.rewards;
    (now >= r.start).then(|| ((now - r.start) / r.epoch_secs) as u64)
}

fn credit(
    ctx: &mut Context,
    tx: &Tx,
    cfg: &Config,
    author: &str,
    scans: u64,
    evals: u64,
) -> Result<(), Error> {
    let Some(epoch) = epoch_of(cfg, tx.now) else {
        return Ok(());
    };
    let Some(b) = load::<Binding>(ctx, &key("reward_addr", &[author])?)? else {
        return Ok(());
    };
    let k = key("reward_act", &[&format!("{epoch:010}"), &b.address])?;
    let mut a = match ctx.get_state_bytes(&k)? {
        Some(bytes) => Activity::decode(&k, &bytes)?,
        None => Activity::default(),
    };
    a.scans += scans;
    a.evals += evals;
    ctx.put_state_bytes(&k, a.encode().as_bytes())
}

/// A consumer's scan or claim of `unit`: its first one earns scan points
/// (if the consumer has bound an address and UCES is configured).
pub fn note_scan(ctx: &mut Context, tx: &Tx, unit: &str) -> Result<(), Error> {
    let Some(cfg) = config(ctx)? else {
        return Ok(());
    };
    let author = author_id(ctx, tx)?;
    if load::<Binding>(ctx, &key("reward_addr", &[&author])?)?.is_none() {
        return Ok(());
    }
    let seen = key("uces_seen", &[&author, unit])?;
    if load::<i64>(ctx, &seen)?.is_some() {
        return Ok(());
    }
    save(ctx, &seen, &tx.now)?;
    credit(ctx, tx, &cfg, &author, 1, 0)
}

/// A valid evaluation earns its author evaluation points.
pub fn note_evaluation(
    ctx: &mut Context,
    tx: &Tx,
    cfg: &Config,
    author: &str,
) -> Result<(), Error> {
    credit(ctx, tx, cfg, author, 0, 1)
}

/// One payout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payout {
    pub address: String,
    pub points: u64,
    /// Base units (10^-8 QCSS).
    pub amount: u64,
}

/// `reward_batch/{epoch:010}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RewardBatch {
    pub epoch: u64,
    pub start: i64,
    pub end: i64,
    pub budget: u64,
    pub points: u64,
    /// Whether the amounts were shrunk to fit the budget.
    pub shrunk: bool,
    pub total: u64,
    pub payouts: Vec<Payout>,
    /// SHA-256 (hex) of the canonical encoding ([`encode`]).
    pub digest: String,
    pub config_version: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochArgs {
    epoch: u64,
}

/// The number of epochs the pool lasts and each one's budget.
pub fn budget(cfg: &Config) -> (u64, u64) {
    let len = cfg.rewards.epoch_secs;
    let epochs = (DAPP_POOL_SECS + len - 1) / len;
    (epochs as u64, (DAPP_POOL / epochs as u128) as u64)
}

/// The canonical encoding the digest is over (README.md, "Rewards").
pub fn encode(channel: &str, b: &RewardBatch) -> Vec<u8> {
    let mut out = Vec::with_capacity(80 + channel.len() + 40 * b.payouts.len());
    out.extend_from_slice(BATCH_TAG);
    out.extend_from_slice(&(channel.len() as u16).to_be_bytes());
    out.extend_from_slice(channel.as_bytes());
    out.extend_from_slice(&b.epoch.to_be_bytes());
    out.extend_from_slice(&b.start.to_be_bytes());
    out.extend_from_slice(&b.end.to_be_bytes());
    out.extend_from_slice(&b.budget.to_be_bytes());
    out.extend_from_slice(&b.total.to_be_bytes());
    out.extend_from_slice(&(b.payouts.len() as u32).to_be_bytes());
    for p in &b.payouts {
        // Addresses were checked as 64 lowercase hex digits when bound.
        let mut raw = [0u8; 32];
        if hex::decode_to_slice(&p.address, &mut raw).is_err() {
            raw = [0; 32];
        }
        out.extend_from_slice(&raw);
        out.extend_from_slice(&p.amount.to_be_bytes());
    }
    out
}

/// `rewards_epoch {"epoch"}`: anyone, once the epoch has ended: computes,
/// stores and returns its batch (JSON [`RewardBatch`]); later calls return
/// the stored bytes as they are.
pub fn rewards_epoch(ctx: &mut Context, a: Json<EpochArgs>) -> Result<Vec<u8>, Error> {
    let tx = Tx::new(ctx)?;
    let cfg = require_config(ctx)?;
    let e = a.0.epoch;
    let (epochs, budget) = budget(&cfg);
    if e >= epochs {
        return Err(Error::new(format!(
            "epoch {e} is beyond the DApp pool's 18 months ({epochs} epochs of {} s)",
            cfg.rewards.epoch_secs
        )));
    }
    let start = cfg.rewards.start + e as i64 * cfg.rewards.epoch_secs;
    let end = start + cfg.rewards.epoch_secs;
    if tx.now < end {
        return Err(Error::new(format!(
            "epoch {e} ends at {end} (now {}): its batch is computed after it ends",
            tx.now
        )));
    }
    let bk = key("reward_batch", &[&format!("{e:010}")])?;
    if let Some(done) = ctx.get_state_bytes(&bk)? {
        return Ok(done);
    }
    let max = cfg.rewards.max_batch;
    let (from, to) = partial_key_range("reward_act", &[&format!("{e:010}")])?;
    let page = ctx.range_bytes(&from, &to, max + 1)?;
    if page.rows.len() > max as usize || page.more {
        return Err(Error::new(format!(
            "epoch {e} has more than max_batch = {max} rewarded addresses: raise max_batch by governance (at most {})",
            crate::governance::MAX_BATCH
        )));
    }
    let r = &cfg.rewards;
    let mut payouts = Vec::with_capacity(page.rows.len());
    for (k, bytes) in &page.rows {
        let a = Activity::decode(k, bytes)?;
        let (_, mut attrs) = split_composite_key(k)?;
        let address = attrs
            .pop()
            .filter(|_| attrs.len() == 1)
            .ok_or_else(|| Error::new(format!("malformed reward activity key {k:?}")))?;
        let points = (a.scans.saturating_mul(r.scan_points))
            .saturating_add(a.evals.saturating_mul(r.eval_points))
            .min(r.max_points);
        if points > 0 {
            payouts.push(Payout {
                address,
                points,
                amount: 0,
            });
        }
    }
    payouts.sort_by(|x, y| x.address.cmp(&y.address));
    let points: u64 = payouts.iter().map(|p| p.points).sum();
    let shrunk = points as u128 * r.rate as u128 > budget as u128;
    for p in &mut payouts {
        p.amount = if shrunk {
            (p.points as u128 * budget as u128 / points as u128) as u64
        } else {
            p.points * r.rate
        };
    }
    payouts.retain(|p| p.amount > 0);
    let mut batch = RewardBatch {
        epoch: e,
        start,
        end,
        budget,
        points,
        shrunk,
        total: payouts.iter().map(|p| p.amount).sum(),
        payouts,
        digest: String::new(),
        config_version: cfg.version,
    };
    let enc = encode(&ctx.channel_id()?, &batch);
    batch.digest = hex::encode(Sha256::digest(&enc));
    let json = serde_json::to_vec(&batch)?;
    ctx.put_state_bytes(&bk, &json)?;
    ctx.set_event("RewardBatch", &(&batch.epoch, &batch.digest))?;
    Ok(json)
}

/// `rewards_get {"epoch"}`: read-only, for the anchoring bridge and the
/// peers that sign batches for the public chain: the reward epoch schedule
/// and epoch E's committed batch (`null` until `rewards_epoch` stored it).
pub fn rewards_get(
    ctx: &mut Context,
    a: Json<EpochArgs>,
) -> Result<Json<serde_json::Value>, Error> {
    let cfg = require_config(ctx)?;
    let e = a.0.epoch;
    let batch = match ctx.get_state_bytes(&key("reward_batch", &[&format!("{e:010}")])?)? {
        Some(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)?,
        None => serde_json::Value::Null,
    };
    Ok(Json(serde_json::json!({
        "epoch": e,
        "start": cfg.rewards.start,
        "epoch_secs": cfg.rewards.epoch_secs,
        "batch": batch,
    })))
}
