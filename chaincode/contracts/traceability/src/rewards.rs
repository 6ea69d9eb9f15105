//! Rewards, consortium side: consumers bind a public-chain address (an
//! Ed25519 key, signed by both the certificate and the key), their first
//! scan of each unit and their valid evaluations earn points in the epoch
//! they happen in, and `rewards_epoch`, called once per page, freezes an
//! ended epoch's points page by page (`max_batch` addresses a transaction,
//! so an epoch of any size fits the fuel budget) and, after the last page,
//! its total and a SHA-256 digest chained over every page. `rewards_get`
//! then gives any run of pages as (address, amount): the entries each org's
//! peer signs for the public chain. The DApp pool
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
/// Domain tag of the batch digest chain (16 bytes with its NUL).
pub const BATCH_TAG: &[u8; 16] = b"QCSS-REWARDS-V2\0";
/// Lowercase hex digits ([`hex::encode`] costs four times as much fuel).
const HEX: &[u8; 16] = b"0123456789abcdef";

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

/// The number of epochs the pool lasts and each one's budget.
pub fn budget(cfg: &Config) -> (u64, u64) {
    let len = cfg.rewards.epoch_secs;
    let epochs = (DAPP_POOL_SECS + len - 1) / len;
    (epochs as u64, (DAPP_POOL / epochs as u128) as u64)
}

/// `reward_tally/{epoch:010}`: an epoch whose pages are being frozen.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Pages stored so far.
    pub pages: u32,
    /// Addresses with points > 0 so far.
    pub count: u64,
    /// Their points so far.
    pub points: u64,
    /// The largest page so far (entries).
    pub max_page: u32,
    /// The last address read (the next page starts after it).
    pub after: Option<String>,
    /// The digest chain so far (hex), see [`chain_start`] and [`chain_page`].
    pub chain: String,
}

/// `reward_batch/{epoch:010}`: an epoch whose every page is frozen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RewardBatch {
    pub epoch: u64,
    pub start: i64,
    pub end: i64,
    pub budget: u64,
    /// Base units per point when not shrunk.
    pub rate: u64,
    /// Σ points over every page.
    pub points: u64,
    /// Whether the amounts are shrunk to fit the budget.
    pub shrunk: bool,
    /// Addresses with points (some may get a zero amount when shrunk, and
    /// are left out of the entries).
    pub count: u64,
    /// Pages `reward_page/{epoch}/{0..pages}`.
    pub pages: u32,
    /// The largest page, entries (a part of the public chain's batch holds
    /// whole pages).
    pub max_page: u32,
    /// SHA-256 (hex) chained over every page (README.md, "Rewards").
    pub digest: String,
    pub config_version: u32,
}

impl RewardBatch {
    /// An address's amount (README.md, "Rewards"), 0 when shrunk to nothing.
    pub fn amount(&self, points: u64) -> u64 {
        if self.shrunk {
            (points as u128 * self.budget as u128 / self.points.max(1) as u128) as u64
        } else {
            points.saturating_mul(self.rate)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochArgs {
    epoch: u64,
}

fn epoch_key(kind: &str, e: u64) -> Result<String, Error> {
    key(kind, &[&format!("{e:010}")])
}

fn page_key(e: u64, page: u32) -> Result<String, Error> {
    key("reward_page", &[&format!("{e:010}"), &format!("{page:06}")])
}

/// SHA-256(tag ‖ u16 len(channel) ‖ channel ‖ u64 epoch).
fn chain_start(channel: &str, e: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(BATCH_TAG);
    h.update((channel.len() as u16).to_be_bytes());
    h.update(channel.as_bytes());
    h.update(e.to_be_bytes());
    h.finalize().into()
}

/// SHA-256(previous ‖ u32 count ‖ count × (address 32 bytes ‖ u64 points)).
fn chain_page(prev: &[u8; 32], page: &[([u8; 32], u64)]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update((page.len() as u32).to_be_bytes());
    for (a, p) in page {
        h.update(a);
        h.update(p.to_be_bytes());
    }
    h.finalize().into()
}

/// SHA-256(last ‖ i64 start ‖ i64 end ‖ u64 budget ‖ u64 rate ‖ u64 points
/// ‖ u64 count ‖ u32 pages).
fn chain_end(last: &[u8; 32], b: &RewardBatch) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(last);
    h.update(b.start.to_be_bytes());
    h.update(b.end.to_be_bytes());
    h.update(b.budget.to_be_bytes());
    h.update(b.rate.to_be_bytes());
    h.update(b.points.to_be_bytes());
    h.update(b.count.to_be_bytes());
    h.update(b.pages.to_be_bytes());
    h.finalize().into()
}

fn unhex32(what: &str, s: &str) -> Result<[u8; 32], Error> {
    let mut raw = [0u8; 32];
    hex::decode_to_slice(s, &mut raw)
        .map_err(|_| Error::new(format!("malformed {what} {s:?} in reward records")))?;
    Ok(raw)
}

/// A page record: `{address} {points}` lines, sorted by address.
fn decode_page(k: &str, bytes: &[u8]) -> Result<Vec<([u8; 32], u64)>, Error> {
    let bad = || Error::new(format!("malformed reward page under {k:?}"));
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
    text.lines()
        .map(|l| {
            let (a, p) = l.split_once(' ').ok_or_else(bad)?;
            Ok((unhex32("address", a)?, p.parse().map_err(|_| bad())?))
        })
        .collect()
}

/// `rewards_epoch {"epoch"}`: anyone, once the epoch has ended. Each call
/// freezes the next page: up to `max_batch` addresses with their points,
/// in address order, stored as `reward_page/{E}/{n}`; the call that reads
/// the last one stores the epoch's `reward_batch/{E}` (total points, whether
/// the amounts shrink, the digest). Returns `{"epoch", "complete", "pages",
/// "count", "batch"}`; once complete, calls return the stored batch and
/// write nothing.
pub fn rewards_epoch(
    ctx: &mut Context,
    a: Json<EpochArgs>,
) -> Result<Json<serde_json::Value>, Error> {
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
    let bk = epoch_key("reward_batch", e)?;
    if let Some(done) = load::<RewardBatch>(ctx, &bk)? {
        return Ok(Json(progress(e, true, done.pages, done.count, Some(&done))));
    }
    let tk = epoch_key("reward_tally", e)?;
    let channel = ctx.channel_id()?;
    let mut t = match load::<Tally>(ctx, &tk)? {
        Some(t) => t,
        None => Tally {
            chain: hex::encode(chain_start(&channel, e)),
            ..Tally::default()
        },
    };
    let (mut from, to) = partial_key_range("reward_act", &[&format!("{e:010}")])?;
    if let Some(after) = &t.after {
        from = partial_key_range("reward_act", &[&format!("{e:010}"), after])?.1;
    }
    let r = &cfg.rewards;
    let rows = ctx.range_bytes(&from, &to, r.max_batch)?;
    let mut entries: Vec<([u8; 32], u64)> = Vec::with_capacity(rows.rows.len());
    let mut text = String::with_capacity(80 * rows.rows.len());
    for (k, bytes) in &rows.rows {
        let a = Activity::decode(k, bytes)?;
        let (_, mut attrs) = split_composite_key(k)?;
        let address = attrs
            .pop()
            .filter(|_| attrs.len() == 1)
            .ok_or_else(|| Error::new(format!("malformed reward activity key {k:?}")))?;
        t.after = Some(address.clone());
        let points = (a.scans.saturating_mul(r.scan_points))
            .saturating_add(a.evals.saturating_mul(r.eval_points))
            .min(r.max_points);
        if points > 0 {
            entries.push((unhex32("address", &address)?, points));
            text.push_str(&address);
            text.push(' ');
            text.push_str(&points.to_string());
            text.push('\n');
        }
    }
    if !entries.is_empty() {
        ctx.put_state_bytes(&page_key(e, t.pages)?, text.as_bytes())?;
        let prev = unhex32("digest chain", &t.chain)?;
        t.chain = hex::encode(chain_page(&prev, &entries));
        t.pages += 1;
        t.count += entries.len() as u64;
        t.points = t.points.saturating_add(entries.iter().map(|p| p.1).sum());
        t.max_page = t.max_page.max(entries.len() as u32);
    }
    if rows.more {
        save(ctx, &tk, &t)?;
        return Ok(Json(progress(e, false, t.pages, t.count, None)));
    }
    let mut batch = RewardBatch {
        epoch: e,
        start,
        end,
        budget,
        rate: r.rate,
        points: t.points,
        shrunk: t.points as u128 * r.rate as u128 > budget as u128,
        count: t.count,
        pages: t.pages,
        max_page: t.max_page,
        digest: String::new(),
        config_version: cfg.version,
    };
    batch.digest = hex::encode(chain_end(&unhex32("digest chain", &t.chain)?, &batch));
    save(ctx, &bk, &batch)?;
    ctx.delete_state(&tk)?;
    ctx.set_event("RewardBatch", &(&batch.epoch, &batch.digest))?;
    Ok(Json(progress(
        e,
        true,
        batch.pages,
        batch.count,
        Some(&batch),
    )))
}

fn progress(
    e: u64,
    complete: bool,
    pages: u32,
    count: u64,
    batch: Option<&RewardBatch>,
) -> serde_json::Value {
    serde_json::json!({
        "epoch": e,
        "complete": complete,
        "pages": pages,
        "count": count,
        "batch": batch,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    epoch: u64,
    /// A page whose entries to give.
    #[serde(default)]
    page: Option<u32>,
}

/// `rewards_get {"epoch", "page"?}`: read-only, for the anchoring bridge
/// and the peers that sign batches for the public chain: the reward epoch
/// schedule, epoch E's batch (`null` until its last page is frozen; `tally`
/// shows the pages frozen so far) and, with `page` once the batch is
/// complete, that page's entries `[[address, amount], …]` in address order,
/// zero amounts left out. One page a call: a page of 128 entries costs
/// ≈ 3.2 M fuel (`tests/uces.rs`).
pub fn rewards_get(ctx: &mut Context, a: Json<GetArgs>) -> Result<Json<serde_json::Value>, Error> {
    let cfg = require_config(ctx)?;
    let GetArgs { epoch: e, page } = a.0;
    let batch = load::<RewardBatch>(ctx, &epoch_key("reward_batch", e)?)?;
    let mut entries = Vec::new();
    if let (Some(b), Some(n)) = (&batch, page) {
        if n >= b.pages {
            return Err(Error::new(format!(
                "epoch {e} has {} pages; there is no page {n}",
                b.pages
            )));
        }
        let k = page_key(e, n)?;
        let bytes = ctx
            .get_state_bytes(&k)?
            .ok_or_else(|| Error::new(format!("reward page {n} of epoch {e} is missing")))?;
        for (address, points) in decode_page(&k, &bytes)? {
            let amount = b.amount(points);
            if amount > 0 {
                let mut h = String::with_capacity(64);
                for byte in address {
                    h.push(HEX[usize::from(byte >> 4)] as char);
                    h.push(HEX[usize::from(byte & 15)] as char);
                }
                entries.push(serde_json::json!([h, amount]));
            }
        }
    }
    let tally = match batch {
        Some(_) => None,
        None => load::<Tally>(ctx, &epoch_key("reward_tally", e)?)?,
    };
    Ok(Json(serde_json::json!({
        "epoch": e,
        "start": cfg.rewards.start,
        "epoch_secs": cfg.rewards.epoch_secs,
        "batch": batch,
        "tally": tally.map(|t| serde_json::json!({"pages": t.pages, "count": t.count})),
        "entries": entries,
    })))
}
