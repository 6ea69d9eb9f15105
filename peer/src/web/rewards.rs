//! `/api/rewards/…`: this org's signature over a consumer reward batch, as
//! the public chain pays it (docs/anchor.md, "Consumer rewards"). The
//! anchoring bridge asks every org's peer and submits the batch once a
//! quorum signed the same digest.
//!
//! | path | answer |
//! | --- | --- |
//! | `schedule` | how consortium reward epochs map onto the chain's: `first_chain_epoch` k (consortium epoch E is the chain's E + k), or 409 with why they do not line up |
//! | `sign?chain_epoch=C` | the chain's batch for its epoch C (consortium epoch C − k), signed with this org's anchor key; 404 with `contract_epoch` while that epoch's batch is not committed |
//!
//! As with anchor statements, the peer signs nothing a caller hands it: the
//! batch is the one the traceability contract committed on this peer's
//! ledger (`rewards_get`), the chain id and the epoch schedule are what the
//! peer's own `[anchor] chain_api` says. Consortium epoch E is paid as the
//! chain's reward epoch E + k, where k is fixed by the two schedules (both
//! epochs the same length, the consortium's `rewards.start` on a chain
//! epoch boundary, k epochs after the chain's slot 0): every honest peer
//! computes the same k, so no consortium epoch can be signed for two chain
//! epochs, and the chain pays each of its epochs once.

use ed25519_dalek::Signer;
use serde_json::{Value, json};

use crate::node::ChainSchedule;
use crate::web::Web;
use crate::web::http::{Request, Response};
use crate::web::query::Answer;

/// Most entries in one signed part (the public chain's `max_entries`; the
/// contract's `max_batch` is far below it).
const MAX_ENTRIES: usize = 10_000;

/// Answers `/api/rewards/{what}`.
pub(crate) async fn route(web: &Web, what: &str, req: &Request) -> Response {
    let r = match what {
        "schedule" => schedule(web).await.map(|s| {
            Response::json(
                200,
                &json!({
                    "chain_id": s.chain.chain_id,
                    "consortium_id": web.peer.consortium_id(),
                    "first_chain_epoch": s.first_chain_epoch,
                    "start": s.start,
                    "epoch_secs": s.epoch_secs,
                }),
            )
        }),
        "sign" => sign(web, req).await,
        _ => Err(Response::json_error(
            404,
            "no such rewards API path (see docs/anchor.md)",
        )),
    };
    r.unwrap_or_else(|e| e)
}

/// The two schedules, lined up.
struct Schedule {
    chain: ChainSchedule,
    /// The chain's epoch that pays consortium epoch 0.
    first_chain_epoch: u64,
    start: i64,
    epoch_secs: i64,
}

/// `rewards_get {"epoch": e}` on this peer's ledger.
async fn rewards_get(web: &Web, e: u64) -> Result<std::sync::Arc<Value>, Response> {
    let answer = web
        .querier
        .evaluate("rewards_get", &json!({ "epoch": e }).to_string())
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "rewards_get failed");
            Response::json_error(503, "the ledger cannot be read right now")
                .with_header("Retry-After", "5")
        })?;
    match answer {
        Answer::Json(v) => Ok(v),
        Answer::Refused(m) => Err(Response::json_error(409, &m)),
    }
}

async fn schedule(web: &Web) -> Result<Schedule, Response> {
    let Some(chain) = web.peer.anchored().and_then(|a| a.chain) else {
        return Err(Response::json_error(
            503,
            "this peer has not read the public chain's status ([anchor] chain_api)",
        )
        .with_header("Retry-After", "5"));
    };
    let v = rewards_get(web, 0).await?;
    let start = v["start"].as_i64().unwrap_or(-1);
    let epoch_secs = v["epoch_secs"].as_i64().unwrap_or(0);
    let first_chain_epoch =
        chain_epoch(&chain, start, epoch_secs, 0).map_err(|m| Response::json_error(409, &m))?;
    Ok(Schedule {
        chain,
        first_chain_epoch,
        start,
        epoch_secs,
    })
}

/// The chain's reward epoch that pays consortium epoch `e`, or why the two
/// schedules do not line up.
pub(crate) fn chain_epoch(
    chain: &ChainSchedule,
    start: i64,
    epoch_secs: i64,
    e: u64,
) -> Result<u64, String> {
    if chain.reward_epoch_slots == 0 {
        return Err("the public chain has no consumer reward pool".into());
    }
    let chain_ms = chain.reward_epoch_slots.saturating_mul(chain.slot_ms);
    let ours_ms = u64::try_from(epoch_secs).unwrap_or(0).saturating_mul(1000);
    if chain_ms == 0 || ours_ms != chain_ms {
        return Err(format!(
            "the consortium's reward epochs are {epoch_secs} s, the public chain's {chain_ms} ms: \
             they must be equal (rewards.epoch_secs is fixed at the UCES genesis)"
        ));
    }
    let start_ms = u64::try_from(start).unwrap_or(0).saturating_mul(1000);
    let Some(since) = start_ms.checked_sub(chain.genesis_time_ms) else {
        return Err(format!(
            "the consortium's rewards.start ({start}) is before the public chain's slot 0 ({} ms)",
            chain.genesis_time_ms
        ));
    };
    if !since.is_multiple_of(chain_ms) {
        return Err(format!(
            "the consortium's rewards.start ({start}) is not on a reward epoch boundary of the \
             public chain (slot 0 at {} ms, epochs of {chain_ms} ms)",
            chain.genesis_time_ms
        ));
    }
    (since / chain_ms)
        .checked_add(e)
        .ok_or_else(|| "epoch out of range".into())
}

/// The batch's payouts as the chain's entries: 32-byte address, amount.
fn entries(batch: &Value) -> Result<Vec<([u8; 32], u64)>, String> {
    let payouts = batch["payouts"]
        .as_array()
        .ok_or("the stored batch has no payouts")?;
    if payouts.len() > MAX_ENTRIES {
        return Err(format!(
            "{} payouts; a signed part holds at most {MAX_ENTRIES}",
            payouts.len()
        ));
    }
    let mut out: Vec<([u8; 32], u64)> = Vec::with_capacity(payouts.len());
    for (i, p) in payouts.iter().enumerate() {
        let mut a = [0u8; 32];
        hex::decode_to_slice(p["address"].as_str().unwrap_or(""), &mut a)
            .map_err(|_| format!("payout {i}: the address is not 64 hex digits"))?;
        let amount = p["amount"]
            .as_u64()
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("payout {i}: the amount is not a positive integer"))?;
        if out.last().is_some_and(|l| l.0 >= a) {
            return Err(format!("payout {i}: addresses are not strictly ascending"));
        }
        out.push((a, amount));
    }
    Ok(out)
}

async fn sign(web: &Web, req: &Request) -> Result<Response, Response> {
    let Some(key) = web.anchor_key.as_ref() else {
        return Err(Response::json_error(
            404,
            "this peer has no anchor key ([anchor] key in its configuration)",
        ));
    };
    let c: u64 = req
        .param("chain_epoch")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Response::json_error(400, "chain_epoch must be a number"))?;
    let s = schedule(web).await?;
    let Some(e) = c.checked_sub(s.first_chain_epoch) else {
        return Err(Response::json_error(
            409,
            &format!(
                "the chain's reward epoch {c} is before the consortium's first, {}",
                s.first_chain_epoch
            ),
        ));
    };
    let v = rewards_get(web, e).await?;
    let batch = &v["batch"];
    if batch.is_null() {
        return Err(Response::json(
            404,
            &json!({
                "error": format!(
                    "consortium reward epoch {e} (the chain's {c}) has no committed batch yet: \
                     rewards_epoch computes it once the epoch ended"
                ),
                "contract_epoch": e,
            }),
        ));
    }
    let list = entries(batch).map_err(|m| Response::json_error(409, &m))?;
    let cid = web.peer.consortium_id();
    let digest = qcss_anchor::reward::reward_digest(&s.chain.chain_id, &cid, c, 0, 1, &list);
    let sig = key.sign(&digest.0);
    Ok(Response::json(
        200,
        &json!({
            "chain_id": s.chain.chain_id,
            "consortium_id": cid,
            "contract_epoch": e,
            "chain_epoch": c,
            "part": 0,
            "parts": 1,
            "entries": list.iter().map(|(a, n)| json!([hex::encode(a), n])).collect::<Vec<_>>(),
            "contract_digest": batch["digest"],
            "digest": digest,
            "key": hex::encode(key.verifying_key().to_bytes()),
            "sig": hex::encode(sig.to_bytes()),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> ChainSchedule {
        ChainSchedule {
            chain_id: qcss_anchor::Hash32([1; 32]),
            genesis_time_ms: 1_000_000,
            slot_ms: 1_000,
            reward_epoch_slots: 60,
        }
    }

    #[test]
    fn consortium_epochs_map_onto_the_chains_when_they_line_up() {
        // Start at slot 0: epoch E is the chain's E.
        assert_eq!(chain_epoch(&chain(), 1_000, 60, 0), Ok(0));
        assert_eq!(chain_epoch(&chain(), 1_000, 60, 7), Ok(7));
        // Three chain epochs later: E + 3.
        assert_eq!(chain_epoch(&chain(), 1_180, 60, 2), Ok(5));
    }

    #[test]
    fn schedules_that_do_not_line_up_are_refused_with_the_reason() {
        let e = chain_epoch(&chain(), 1_000, 120, 0).unwrap_err();
        assert!(e.contains("must be equal"), "{e}");
        let e = chain_epoch(&chain(), 1_030, 60, 0).unwrap_err();
        assert!(e.contains("not on a reward epoch boundary"), "{e}");
        let e = chain_epoch(&chain(), 999, 60, 0).unwrap_err();
        assert!(e.contains("before the public chain's slot 0"), "{e}");
        let none = ChainSchedule {
            reward_epoch_slots: 0,
            ..chain()
        };
        assert!(chain_epoch(&none, 1_000, 60, 0).is_err());
    }

    #[test]
    fn payouts_must_be_sorted_positive_and_well_formed() {
        let ok = json!({"payouts": [
            {"address": "01".repeat(32), "amount": 5},
            {"address": "02".repeat(32), "amount": 1},
        ]});
        assert_eq!(entries(&ok).unwrap().len(), 2);
        let unsorted = json!({"payouts": [
            {"address": "02".repeat(32), "amount": 5},
            {"address": "01".repeat(32), "amount": 1},
        ]});
        assert!(entries(&unsorted).unwrap_err().contains("ascending"));
        let zero = json!({"payouts": [{"address": "01".repeat(32), "amount": 0}]});
        assert!(entries(&zero).unwrap_err().contains("positive"));
        let bad = json!({"payouts": [{"address": "zz", "amount": 1}]});
        assert!(entries(&bad).unwrap_err().contains("64 hex"));
    }
}
