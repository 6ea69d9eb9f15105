//! `_anchor`, the anchoring receipts on the consortium ledger
//! (docs/anchor.md "Receipts"). Once an anchor is irreversible on the public
//! QCSS chain the bridge records a receipt — seq, blocks covered, their MMR
//! root, the public block and transaction — under `receipts/{seq:020}`, so
//! the ledger itself says where its history is fixed.
//!
//! Run natively by every peer, like `qscc`, but endorsed: a peer signs a
//! receipt only if (1) the root is its own ledger's root over those blocks,
//! (2) it has itself seen that anchor irreversible on the public chain with
//! exactly those fields (`anchor_watch`), and (3) no receipt for the seq is
//! recorded yet. The namespace's policy, `MAJORITY Endorsement`, makes the
//! validators require that a majority of orgs' peers made those checks.
//!
//! | function | args | does |
//! |---|---|---|
//! | `RecordReceipt` | receipt JSON | checks and writes it (endorsed) |
//! | `GetReceipt` | seq | the receipt (peer-local answer), 404 if none |
//! | `ListReceipts` | – | the newest 100 receipts, oldest first |

use qcss_anchor::Hash32;
use qcss_chaincode::{Read, Response, Simulation, Write};
use qcss_proto::protos::{ProposalResponse, SignedProposal};
use serde::{Deserialize, Serialize};

use crate::endorser::{EndorseError, UnpackedProposal, failure_response};
use crate::lifecycle::ANCHOR_NAMESPACE;
use crate::node::Peer;

/// Largest receipt argument read.
const MAX_RECEIPT_BYTES: usize = 4096;
/// Receipts `ListReceipts` returns.
const LIST: usize = 100;
/// The namespace's "version" in the chaincode action.
const VERSION: &str = "1";

/// One receipt, as the bridge submits it and the ledger stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Anchor sequence number.
    pub seq: u64,
    /// Consortium blocks covered (`0 … mmr_size − 1`).
    pub mmr_size: u64,
    /// Their MMR root.
    pub mmr_root: Hash32,
    /// The public block carrying the anchor.
    pub public_height: u64,
    /// The public anchor transaction's id.
    pub public_tx_id: Hash32,
}

/// The state key of receipt `seq` (fixed width, so keys sort by seq).
fn receipt_key(seq: u64) -> String {
    format!("receipts/{seq:020}")
}

fn local(status: i32, message: String, payload: Vec<u8>) -> ProposalResponse {
    ProposalResponse {
        version: 1,
        response: Some(qcss_proto::protos::Response {
            status,
            message,
            payload,
        }),
        ..Default::default()
    }
}

/// Answers an `_anchor` proposal (after the endorser's checks of the
/// header, timestamp, creator and tx id, which it repeats cheaply).
pub(crate) fn endorse(
    peer: &Peer,
    signed: &SignedProposal,
) -> Result<ProposalResponse, EndorseError> {
    let channel = peer.channel();
    let p = UnpackedProposal::unpack(signed)?;
    p.check_header(&channel)?;
    p.check_creator(signed, &channel)?;
    let state = peer.ledger.state_view();
    let get = |key: &str| {
        state
            .get_state(ANCHOR_NAMESPACE, key)
            .map_err(|e| EndorseError::Ledger {
                tx_id: p.tx_id().to_owned(),
                source: Box::new(e),
            })
    };
    match p.function.as_str() {
        "RecordReceipt" => {
            let r = match parse(&p) {
                Ok(r) => r,
                Err(why) => return Ok(failure_response(why)),
            };
            if let Err(why) = check(peer, &r) {
                return Ok(failure_response(why));
            }
            let key = receipt_key(r.seq);
            if get(&key)?.is_some() {
                return Ok(failure_response(format!(
                    "the receipt of anchor seq {} is already recorded",
                    r.seq
                )));
            }
            let value = serde_json::to_vec(&r).unwrap_or_default();
            let sim = Simulation {
                response: Response {
                    status: 200,
                    message: String::new(),
                    payload: value.clone(),
                },
                reads: vec![Read {
                    key: key.clone(),
                    version: None,
                }],
                range_reads: Vec::new(),
                writes: vec![Write {
                    key,
                    value: Some(value),
                }],
                key_policy_writes: Vec::new(),
                event: None,
                fuel_used: 0,
            };
            peer.endorser
                .sign_native(&p, (ANCHOR_NAMESPACE, VERSION), &sim)
        }
        "GetReceipt" => {
            let Some(seq) = p
                .args
                .first()
                .and_then(|a| std::str::from_utf8(a).ok())
                .and_then(|s| s.parse::<u64>().ok())
            else {
                return Ok(local(400, "GetReceipt needs a seq".into(), Vec::new()));
            };
            Ok(match get(&receipt_key(seq))? {
                Some(v) => local(200, String::new(), v.value),
                None => local(404, format!("no receipt for anchor seq {seq}"), Vec::new()),
            })
        }
        "ListReceipts" => {
            let rows = state
                .range(ANCHOR_NAMESPACE, "receipts/", "receipts0", 0)
                .map_err(|e| EndorseError::Ledger {
                    tx_id: p.tx_id().to_owned(),
                    source: Box::new(e),
                })?;
            let skip = rows.len().saturating_sub(LIST);
            let list: Vec<serde_json::Value> = rows
                .into_iter()
                .skip(skip)
                .filter_map(|(_, v)| serde_json::from_slice(&v.value).ok())
                .collect();
            Ok(local(
                200,
                String::new(),
                serde_json::to_vec(&list).unwrap_or_default(),
            ))
        }
        other => Ok(failure_response(format!(
            "_anchor has no function {:.64?} (RecordReceipt, GetReceipt, ListReceipts)",
            other
        ))),
    }
}

fn parse(p: &UnpackedProposal) -> Result<Receipt, String> {
    let [arg] = p.args.as_slice() else {
        return Err("RecordReceipt takes one argument, the receipt JSON".into());
    };
    if arg.len() > MAX_RECEIPT_BYTES {
        return Err(format!(
            "a receipt is at most {MAX_RECEIPT_BYTES} bytes, got {}",
            arg.len()
        ));
    }
    serde_json::from_slice(arg).map_err(|e| format!("receipt: {e}"))
}

/// The receipt against this peer's ledger and what it saw on the chain.
fn check(peer: &Peer, r: &Receipt) -> Result<(), String> {
    let ours = peer
        .ledger
        .mmr_root(r.mmr_size)
        .map_err(|e| format!("this peer cannot read its anchoring MMR: {e}"))?
        .ok_or_else(|| {
            format!(
                "this peer has not indexed {} blocks yet; try again shortly",
                r.mmr_size
            )
        })?;
    if ours != r.mmr_root {
        return Err(format!(
            "this ledger's MMR root over blocks 0…{} is {ours}, the receipt says {}",
            r.mmr_size.saturating_sub(1),
            r.mmr_root
        ));
    }
    let Some(seen) = peer.anchor_seen(r.seq) else {
        return Err(format!(
            "this peer has not seen anchor seq {} irreversible on the public chain (it reads the chain every few seconds; try again shortly)",
            r.seq
        ));
    };
    let mismatch = |what: &str, chain: String, receipt: String| {
        Err(format!(
            "anchor seq {}: the public chain says {what} {chain}, the receipt says {receipt}",
            r.seq
        ))
    };
    if seen.mmr_size != r.mmr_size {
        return mismatch("size", seen.mmr_size.to_string(), r.mmr_size.to_string());
    }
    if seen.mmr_root != r.mmr_root {
        return mismatch("root", seen.mmr_root.to_hex(), r.mmr_root.to_hex());
    }
    if seen.height != r.public_height {
        return mismatch(
            "public block",
            seen.height.to_string(),
            r.public_height.to_string(),
        );
    }
    if seen.tx_id != r.public_tx_id {
        return mismatch("transaction", seen.tx_id.to_hex(), r.public_tx_id.to_hex());
    }
    Ok(())
}
