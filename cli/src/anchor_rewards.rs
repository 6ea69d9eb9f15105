//! The bridge's upkeep steps beside anchoring. The reward step (docs/anchor.md,
//! "Consumer rewards"): after each anchoring round, pay the consortium's
//! next ended reward epoch on the public chain. And every minute
//! [`fold_index`]: fold the QCSS index records' old pending changes.
//!
//! 1. The chain says which of its reward epochs is next for this consortium
//!    (the one after the last paid; at first, the oldest it still accepts).
//!    An epoch is paid in parts; an epoch the chain holds open goes on
//!    at its next part.
//! 2. Each org's peer signs that part of the epoch's batch as its own
//!    ledger holds it (`/api/rewards/sign`). A peer answers 404 while the
//!    consortium epoch's batch is not complete: the bridge then asks the
//!    traceability contract to freeze it (`rewards_epoch`, one page a
//!    transaction, through the receipt Gateway), which it does only once
//!    the epoch has ended.
//! 3. With a quorum of signatures over one digest the bridge submits the
//!    part as a `RewardBatch`, waits until the chain counts it, and goes on
//!    with the next part until the epoch is paid.
//!
//! Like anchoring, nothing here matters for safety: the chain pays each of
//! its epochs once, only with a quorum of the registered keys, and each peer
//! signs only what its ledger committed. A bridge killed at any step starts
//! again from what the chain says.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use qcss_anchor::Hash32;
use qcss_dpos::address::{Address, Keypair};
use qcss_dpos::api::{ConsortiumView, StatusView};
use qcss_dpos::rewards::{RewardBatch, RewardEntry};
use qcss_dpos::state::Consortium;
use qcss_dpos::tx::TxKind;

use crate::anchor::{BridgeConfig, ReceiptGateway, registered_sig};
use crate::network_status::http;
use crate::wallet::{get_json, submit};

/// `/api/rewards/schedule`.
#[derive(Debug, Deserialize)]
struct Schedule {
    consortium_id: Hash32,
    first_chain_epoch: u64,
}

/// `/api/rewards/sign` (200).
#[derive(Debug, Deserialize)]
struct Signed {
    chain_id: Hash32,
    consortium_id: Hash32,
    contract_epoch: u64,
    chain_epoch: u64,
    part: u32,
    parts: u32,
    entries: Vec<(String, u64)>,
    digest: Hash32,
    key: String,
    sig: String,
}

/// What one peer said about a chain epoch.
enum Answer {
    Signed(Box<Signed>),
    /// The consortium epoch's batch is not complete on this peer.
    NotComputed(u64),
}

fn ask(peer: &str, chain_epoch: u64, part: u32) -> Result<Answer> {
    let (status, body) = http(
        peer,
        "GET",
        &format!("/api/rewards/sign?chain_epoch={chain_epoch}&part={part}"),
        None,
        (Duration::from_secs(2), Duration::from_secs(30)),
    )?;
    let v: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("{peer}: not JSON"))?;
    match status {
        200 => Ok(Answer::Signed(Box::new(
            serde_json::from_value(v).with_context(|| format!("{peer}: unexpected answer"))?,
        ))),
        404 if v["contract_epoch"].is_u64() => Ok(Answer::NotComputed(
            v["contract_epoch"].as_u64().unwrap_or(0),
        )),
        _ => bail!(
            "{peer}: {status} {:.300}",
            v["error"].as_str().unwrap_or("(no reason given)")
        ),
    }
}

/// Transactions of `rewards_epoch` one round submits at most (one page each).
const MAX_PAGES_PER_ROUND: u32 = 64;

/// Asks the traceability contract to freeze consortium epoch `e`'s batch,
/// page after page. `Ok(None)`: the epoch has not ended yet; else the
/// pages frozen so far and whether the batch is complete.
fn compute(g: &ReceiptGateway, e: u64) -> Result<Option<(u64, bool)>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut client = crate::peer::gateway_at(&g.peer, &g.identity, &g.channel).await?;
        let arg = serde_json::json!({ "epoch": e }).to_string();
        let mut progress = None;
        for _ in 0..MAX_PAGES_PER_ROUND {
            let c = match client
                .submit(crate::network::CONTRACT, "rewards_epoch", &[arg.as_bytes()])
                .await
            {
                Ok(c) => c,
                Err(err)
                    if err
                        .to_string()
                        .contains("its batch is computed after it ends") =>
                {
                    return Ok(None);
                }
                Err(err) => return Err(anyhow!("rewards_epoch {e}: {err}")),
            };
            if c.code != qcss_proto::protos::TxValidationCode::Valid {
                bail!(
                    "rewards_epoch {e}: transaction {} is {}",
                    c.tx_id,
                    c.code.as_str_name()
                );
            }
            let v: serde_json::Value = serde_json::from_slice(&c.result)
                .with_context(|| format!("rewards_epoch {e} did not answer JSON"))?;
            let done = v["complete"] == true;
            progress = Some((v["pages"].as_u64().unwrap_or(0), done));
            if done {
                break;
            }
        }
        Ok(progress)
    })
}

/// The chain's next reward epoch for a consortium that has paid `last`
/// (none: its first, the oldest the chain still accepts, and never before
/// the consortium's own first epoch).
pub(crate) fn next_chain_epoch(
    last: Option<u64>,
    head_slot: u64,
    epoch_slots: u64,
    first: u64,
) -> u64 {
    match last {
        Some(l) => l + 1,
        None => (head_slot / epoch_slots.max(1))
            .saturating_sub(2)
            .max(first),
    }
}

/// Asks every peer to sign `part` of the chain's `epoch`: the signatures,
/// and the consortium epoch of a peer that has no complete batch yet.
fn collect(cfg: &BridgeConfig, epoch: u64, part: u32) -> (Vec<Signed>, Option<u64>) {
    let mut signed: Vec<Signed> = Vec::new();
    let mut not_computed = None;
    for p in &cfg.peers {
        match ask(p, epoch, part) {
            Ok(Answer::Signed(s)) => signed.push(*s),
            Ok(Answer::NotComputed(e)) => not_computed = Some(e),
            Err(e) => {
                tracing::warn!(peer = %p, error = %format!("{e:#}"), "peer did not sign the reward batch")
            }
        }
    }
    (signed, not_computed)
}

/// Pays the next ended reward epoch (or the rest of the one the chain holds
/// open) if it can. `Ok(None)`: nothing to do (no rewards on this chain for
/// this consortium, or not yet due).
pub(crate) fn pay_next(
    cfg: &BridgeConfig,
    payer: &Keypair,
    node: &str,
    st: &StatusView,
) -> Result<Option<String>> {
    let Some(g) = &cfg.gateway else {
        return Ok(None);
    };
    if st.reward_epoch_slots == 0 || st.reward_consortia.is_empty() {
        return Ok(None);
    }
    let mut why = None;
    let sched: Schedule = cfg
        .peers
        .iter()
        .find_map(|p| {
            get_json(p, "/api/rewards/schedule")
                .map_err(|e| why = Some(format!("{p}: {e:#}")))
                .ok()
        })
        .ok_or_else(|| {
            anyhow!(
                "no peer gives the reward schedule ({})",
                why.unwrap_or_default()
            )
        })?;
    let cid = sched.consortium_id;
    if !st.reward_consortia.contains(&cid) {
        return Ok(None);
    }
    let view: ConsortiumView = get_json(node, &format!("/v1/consortium/{cid}"))
        .with_context(|| format!("consortium {cid} on the public chain"))?;
    let (epoch, mut part) = match &view.consortium.rewards.open {
        Some(o) => (o.epoch, o.next_part),
        None => {
            let epoch = next_chain_epoch(
                view.consortium.rewards.last_paid_epoch,
                st.head_slot,
                st.reward_epoch_slots,
                sched.first_chain_epoch,
            );
            // The chain pays an epoch only after its last slot.
            if st.head_slot < (epoch + 1).saturating_mul(st.reward_epoch_slots) {
                return Ok(None);
            }
            (epoch, 0)
        }
    };
    let (mut n, mut total, mut ids) = (0usize, 0u128, Vec::new());
    let mut contract_epoch = None;
    loop {
        let (signed, not_computed) = collect(cfg, epoch, part);
        // No peer has the batch: the contract freezes it (once the epoch
        // has ended). A peer merely behind the others is waited for, not
        // answered with another transaction.
        if signed.is_empty()
            && part == 0
            && let Some(e) = not_computed
        {
            return Ok(compute(g, e)?.map(|(pages, done)| {
                format!(
                    "consortium reward epoch {e}: {pages} pages frozen{}; the chain's epoch {epoch} is paid next round",
                    if done { ", complete" } else { " so far" }
                )
            }));
        }
        let p = pay_part(
            node,
            payer,
            st,
            &view.consortium,
            cid,
            (epoch, part),
            &signed,
        )?;
        n += p.entries;
        total += p.total;
        ids.push(p.tx_id);
        let parts = p.parts;
        contract_epoch = contract_epoch.or(signed.first().map(|s| s.contract_epoch));
        part += 1;
        if part >= parts {
            break;
        }
    }
    Ok(Some(format!(
        "paid consortium reward epoch {} as the chain's epoch {epoch}: {n} consumers, {total} base units, {} transaction(s) ending {}",
        contract_epoch.unwrap_or_default(),
        ids.len(),
        ids.last().map(String::as_str).unwrap_or("-")
    )))
}

/// One part paid.
struct Paid {
    entries: usize,
    /// Base units.
    total: u128,
    tx_id: String,
    /// The parts its epoch is split into.
    parts: u32,
}

/// Submits `part` of the chain's `epoch` with the quorum of `signed` over
/// the digest most of them signed (keys and quorum from `c`, the
/// consortium as the chain holds it), and waits until the chain counts it.
fn pay_part(
    node: &str,
    payer: &Keypair,
    st: &StatusView,
    c: &Consortium,
    cid: Hash32,
    (epoch, part): (u64, u32),
    signed: &[Signed],
) -> Result<Paid> {
    // The batch the most peers signed (a peer with another history is
    // outvoted, whichever order the peers are listed in).
    let Some(first) = signed
        .iter()
        .max_by_key(|s| signed.iter().filter(|o| o.digest == s.digest).count())
    else {
        bail!("no peer signed part {part} of the chain's reward epoch {epoch}");
    };
    let entries: Vec<RewardEntry> = first
        .entries
        .iter()
        .map(|(a, amount)| {
            let mut raw = [0u8; 32];
            hex::decode_to_slice(a, &mut raw)
                .map_err(|_| anyhow!("a payout address is not hex"))?;
            Ok(RewardEntry {
                address: Address(raw),
                amount: *amount,
            })
        })
        .collect::<Result<_>>()?;
    let mut batch = RewardBatch {
        consortium_id: cid,
        epoch,
        part,
        parts: first.parts,
        entries,
        digest: Hash32::default(),
        sigs: Vec::new(),
    };
    batch.digest = batch.compute_digest(&st.chain_id);
    for s in signed {
        if (s.chain_id, s.consortium_id, s.chain_epoch, s.part, s.parts)
            != (st.chain_id, cid, epoch, part, batch.parts)
            || s.digest != batch.digest
        {
            tracing::error!(
                key = %s.key,
                digest = %s.digest,
                ours = %batch.digest,
                contract_epoch = s.contract_epoch,
                "a peer signed another reward batch for this epoch; its signature is not used"
            );
            continue;
        }
        let Some((index, sig)) = registered_sig(&c.keys, &s.key, &s.sig)? else {
            tracing::warn!(key = %s.key, "peer's anchor key is not registered");
            continue;
        };
        if !batch.sigs.iter().any(|(i, _)| *i == index) {
            batch.sigs.push((index, sig));
        }
    }
    let quorum = usize::from(c.quorum);
    if batch.sigs.len() < quorum {
        bail!(
            "the chain's reward epoch {epoch} part {part}: {} of {quorum} needed signatures",
            batch.sigs.len()
        );
    }
    batch.sigs.truncate(quorum);
    let (n, total, parts) = (batch.entries.len(), batch.total(), batch.parts);
    let out = submit(
        node,
        payer,
        TxKind::RewardBatch(Box::new(batch)),
        None,
        Some(&st.chain_id.to_hex()),
        true,
    )
    .with_context(|| {
        format!("submitting part {part} of the reward batch of the chain's epoch {epoch}")
    })?;
    // Wait until the chain counts it, so that the next round does not
    // submit it again while it waits in the mempool.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v: ConsortiumView = get_json(node, &format!("/v1/consortium/{cid}"))?;
        let r = &v.consortium.rewards;
        let counted = r.last_paid_epoch >= Some(epoch)
            || r.open
                .as_ref()
                .is_some_and(|o| o.epoch == epoch && o.next_part > part);
        if counted {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "reward batch {} (epoch {epoch} part {part}) not in a block after 2 minutes",
                out.id
            );
        }
        std::thread::sleep(Duration::from_millis((st.slot_ms / 2).clamp(100, 5_000)));
    }
    Ok(Paid {
        entries: n,
        total,
        tx_id: out.id.to_hex(),
        parts,
    })
}

/// Folds per record and round at most (64 changes each).
const MAX_FOLDS_PER_RECORD: usize = 16;
/// Pages of `index_pending` read per round (32 records each at most).
const MAX_PENDING_PAGES: usize = 32;

/// Folds the QCSS index records that have old pending deltas
/// (`index_pending`, then `index_fold` each; traceability README, "QCSS
/// index"): keeps every read of an index within one fold of its records.
/// `Ok(None)`: nothing to fold (or no Gateway configured).
pub(crate) fn fold_index(cfg: &BridgeConfig) -> Result<Option<String>> {
    let Some(g) = &cfg.gateway else {
        return Ok(None);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut client = crate::peer::gateway_at(&g.peer, &g.identity, &g.channel).await?;
        let cc = crate::network::CONTRACT;
        // Every record with old changes, page by page.
        let mut subjects: Vec<String> = Vec::new();
        let mut after = String::new();
        for _ in 0..MAX_PENDING_PAGES {
            let v: serde_json::Value = match client
                .evaluate(cc, "index_pending", &[after.as_bytes()])
                .await
            {
                Ok(b) => serde_json::from_slice(&b).context("index_pending did not answer JSON")?,
                // A contract without index upkeep, or UCES not configured.
                Err(e)
                    if e.to_string().contains("index_pending")
                        || e.to_string().contains("not configured") =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(anyhow!("index_pending: {e}")),
            };
            subjects.extend(
                v["records"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_owned)),
            );
            match v["next"].as_str() {
                Some(n) => after = n.to_owned(),
                None => break,
            }
        }
        if subjects.is_empty() {
            return Ok(None);
        }
        let mut folded = 0u64;
        for s in &subjects {
            // A fold stores at most 64 changes: go on while more are old enough.
            for _ in 0..MAX_FOLDS_PER_RECORD {
                let c = client
                    .submit(cc, "index_fold", &[s.as_bytes()])
                    .await
                    .map_err(|e| anyhow!("index_fold {s}: {e}"))?;
                // Invalid (e.g. another bridge folded it first): next time.
                if c.code != qcss_proto::protos::TxValidationCode::Valid {
                    break;
                }
                let v: serde_json::Value = serde_json::from_slice(&c.result).unwrap_or_default();
                folded += v["folded"].as_u64().unwrap_or(0);
                if v["more"] != true {
                    break;
                }
            }
        }
        Ok(Some(format!(
            "folded {folded} pending changes into {} QCSS index records",
            subjects.len()
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::next_chain_epoch;

    #[test]
    fn the_next_epoch_follows_the_last_paid_or_starts_at_the_oldest_accepted() {
        assert_eq!(next_chain_epoch(Some(4), 10_000, 60, 0), 5);
        // First payment at slot 600 (epoch 10): the chain takes 8 or 9.
        assert_eq!(next_chain_epoch(None, 600, 60, 0), 8);
        // …but never before the consortium's own first epoch.
        assert_eq!(next_chain_epoch(None, 600, 60, 9), 9);
        assert_eq!(next_chain_epoch(None, 30, 60, 0), 0);
    }
}
