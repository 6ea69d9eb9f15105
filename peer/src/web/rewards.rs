//! `/api/rewards/…`: this org's signature over a consumer reward batch, as
//! the public chain pays it (docs/anchor.md, "Consumer rewards"). The
//! anchoring bridge asks every org's peer and submits the batch once a
//! quorum signed the same digest.
//!
//! | path | answer |
//! | --- | --- |
//! | `schedule` | how consortium reward epochs map onto the chain's: `first_chain_epoch` k (consortium epoch E is the chain's E + k), or 409 with why they do not line up |
//! | `sign?chain_epoch=C&part=P` | part P (default 0) of the chain's batch for its epoch C (consortium epoch C − k), signed with this org's anchor key, with `parts`; 404 with `contract_epoch` while that epoch's batch is not complete on this ledger |
//!
//! A part of the chain's batch is a run of whole pages of the contract's
//! batch: as many as fit the chain's `max_entries` at the epoch's largest
//! page, so every peer splits an epoch the same way from what its ledger
//! committed and the chain's parameters.
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

/// `rewards_get {"epoch": e, "page"?}` on this peer's ledger.
async fn rewards_get(
    web: &Web,
    e: u64,
    page: Option<u32>,
) -> Result<std::sync::Arc<Value>, Response> {
    let args = json!({ "epoch": e, "page": page }).to_string();
    let answer = web
        .querier
        .evaluate("rewards_get", &args)
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
    let v = rewards_get(web, 0, None).await?;
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

/// How an epoch of `pages` pages (the largest `max_page` entries) splits
/// into parts of the chain's batch: `(pages per part, parts)`, or why it
/// does not fit the chain's `max_entries` × `max_parts`.
pub(crate) fn split(
    pages: u32,
    max_page: u32,
    max_entries: u32,
    max_parts: u32,
) -> Result<(u32, u32), String> {
    if max_entries == 0 || max_parts == 0 {
        return Err("the public chain does not say how large a reward batch part may be".into());
    }
    let per_part = max_entries / max_page.max(1);
    if per_part == 0 {
        return Err(format!(
            "a page of {max_page} entries is larger than the public chain's parts of {max_entries}"
        ));
    }
    let parts = pages.div_ceil(per_part).max(1);
    if parts > max_parts {
        return Err(format!(
            "{pages} pages of up to {max_page} entries need {parts} parts; the public chain \
             takes at most {max_parts} parts of {max_entries} entries an epoch"
        ));
    }
    Ok((per_part, parts))
}

/// Appends entries `[[address, amount], …]` as the chain's: 32-byte
/// address, amount > 0, strictly ascending (also after what `out` holds).
fn entries(list: &Value, out: &mut Vec<([u8; 32], u64)>) -> Result<(), String> {
    let list = list.as_array().ok_or("the batch has no entries")?;
    let mut last = out.last().map(|e| e.0);
    for (i, p) in list.iter().enumerate() {
        let mut a = [0u8; 32];
        hex::decode_to_slice(p[0].as_str().unwrap_or(""), &mut a)
            .map_err(|_| format!("entry {i}: the address is not 64 hex digits"))?;
        let amount = p[1]
            .as_u64()
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("entry {i}: the amount is not a positive integer"))?;
        if last.is_some_and(|l| l >= a) {
            return Err(format!("entry {i}: addresses are not strictly ascending"));
        }
        last = Some(a);
        out.push((a, amount));
    }
    Ok(())
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
    let part: u32 = match req.param("part") {
        None => 0,
        Some(p) => p
            .parse()
            .map_err(|_| Response::json_error(400, "part must be a number"))?,
    };
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
    let v = rewards_get(web, e, None).await?;
    let batch = &v["batch"];
    if batch.is_null() {
        return Err(Response::json(
            404,
            &json!({
                "error": format!(
                    "consortium reward epoch {e} (the chain's {c}) has no complete batch yet \
                     ({} pages frozen): rewards_epoch freezes it page by page once the epoch ended",
                    v["tally"]["pages"].as_u64().unwrap_or(0)
                ),
                "contract_epoch": e,
            }),
        ));
    }
    let num = |f: &str| u32::try_from(batch[f].as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
    let (pages, max_page) = (num("pages"), num("max_page"));
    let (per_part, parts) = split(
        pages,
        max_page,
        s.chain.reward_max_entries,
        s.chain.reward_max_parts,
    )
    .map_err(|m| Response::json_error(409, &m))?;
    if part >= parts {
        return Err(Response::json_error(
            400,
            &format!("part {part} of an epoch in {parts} parts"),
        ));
    }
    // This part's pages (parts are runs of pages in address order, so each
    // starts after the one before, as the chain requires).
    let first = part * per_part;
    let mut list: Vec<([u8; 32], u64)> = Vec::new();
    for page in first..(first + per_part).min(pages) {
        let got = rewards_get(web, e, Some(page)).await?;
        entries(&got["entries"], &mut list).map_err(|m| Response::json_error(409, &m))?;
    }
    if list.len() > s.chain.reward_max_entries as usize {
        return Err(Response::json_error(
            409,
            &format!(
                "part {part} has {} entries; the chain takes {}",
                list.len(),
                s.chain.reward_max_entries
            ),
        ));
    }
    let cid = web.peer.consortium_id();
    let digest = qcss_anchor::reward::reward_digest(&s.chain.chain_id, &cid, c, part, parts, &list);
    let sig = key.sign(&digest.0);
    Ok(Response::json(
        200,
        &json!({
            "chain_id": s.chain.chain_id,
            "consortium_id": cid,
            "contract_epoch": e,
            "chain_epoch": c,
            "part": part,
            "parts": parts,
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
            reward_max_entries: 10,
            reward_max_parts: 16,
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
    fn epochs_split_into_whole_pages_per_part() {
        // 10,000-entry parts, pages of 128: 78 pages a part.
        assert_eq!(split(782, 128, 10_000, 16), Ok((78, 11)));
        assert_eq!(split(0, 0, 10_000, 16), Ok((10_000, 1)));
        assert_eq!(split(3, 5, 10, 16), Ok((2, 2)));
        assert!(split(3, 5, 10, 1).unwrap_err().contains("at most 1 parts"));
        assert!(split(1, 128, 100, 16).unwrap_err().contains("larger than"));
        assert!(split(1, 1, 0, 0).is_err());
    }

    #[test]
    fn entries_must_be_sorted_positive_and_well_formed() {
        let mut out = Vec::new();
        let ok = json!([["01".repeat(32), 5], ["02".repeat(32), 1]]);
        entries(&ok, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        // A next read must go on after the last.
        let again = json!([["02".repeat(32), 5]]);
        assert!(entries(&again, &mut out).unwrap_err().contains("ascending"));
        let unsorted = json!([["02".repeat(32), 5], ["01".repeat(32), 1]]);
        assert!(
            entries(&unsorted, &mut Vec::new())
                .unwrap_err()
                .contains("ascending")
        );
        let zero = json!([["01".repeat(32), 0]]);
        assert!(
            entries(&zero, &mut Vec::new())
                .unwrap_err()
                .contains("positive")
        );
        let bad = json!([["zz", 1]]);
        assert!(
            entries(&bad, &mut Vec::new())
                .unwrap_err()
                .contains("64 hex")
        );
    }
}
