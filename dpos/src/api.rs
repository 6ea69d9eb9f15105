//! The node's public JSON API, what wallets, explorers and light clients
//! call (plain HTTP; put a TLS proxy in front of it for the internet):
//!
//! | method and path | answer |
//! | --- | --- |
//! | `GET /v1/status` | chain id and parameters, head, LIB, clock slot, this round's order, participation |
//! | `GET /v1/account/{address}` | balance, nonce, locked rewards (with unlock times, matured, next withdrawal), votes, producer record |
//! | `GET /v1/account/{address}/history?blocks=N` | the address's transactions in the last N blocks (N ≤ 2,000) |
//! | `GET /v1/block/{height}` | a block on this node's best chain |
//! | `GET /v1/headers?from=H&count=N` | signed headers from H, N ≤ 512 (light clients) |
//! | `GET /v1/consortium/{id}` | an anchoring consortium: its keys, quorum, key version, last anchor and reward progress (last paid epoch) |
//! | `POST /v1/tx` | body: hex of a signed transaction's canonical bytes; answers its id |
//!
//! The same port serves the HTML explorer under `/explorer` (`explorer.rs`).
//!
//! Every input is bounded before it is parsed (path segments, query numbers,
//! the body limit from the largest transaction limit, then each kind's own);
//! errors are `{"error": "…"}` with a 4xx status and never echo more than a
//! bounded piece of the input.

use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::address::Address;
use crate::block::{Block, SignedHeader};
use crate::hash::Hash32;
use crate::node::MAX_SYNC_BLOCKS;
use crate::runner::ChainNode;
use crate::state::{Account, Consortium, Producer};
use crate::tx::SignedTx;

/// Most blocks `history` looks back.
pub const MAX_HISTORY_BLOCKS: u64 = 2_000;
/// Most transactions one `history` answer lists.
pub const MAX_HISTORY_TXS: usize = 500;

/// `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    /// The chain id (hex).
    pub chain_id: Hash32,
    /// The genesis name.
    pub name: String,
    /// Slot length, ms.
    pub slot_ms: u64,
    /// Producers per round.
    pub n_producers: u32,
    /// Producers needed for irreversibility.
    pub irreversible_threshold: usize,
    /// Irreversibility by finality votes (`irreversible_threshold` voters
    /// of a block→child link); `false`: by that many producers building on
    /// a block.
    #[serde(default)]
    pub finality_votes: bool,
    /// Minimum fee, base units.
    pub min_fee: u64,
    /// Furthest expiry a transaction may ask for, in slots.
    pub max_expiry_slots: u64,
    /// The slot of this node's clock.
    pub clock_slot: u64,
    /// Head height.
    pub head_height: u64,
    /// Head slot.
    pub head_slot: u64,
    /// Head id.
    pub head_id: Hash32,
    /// Last irreversible height.
    pub lib_height: u64,
    /// Last irreversible id.
    pub lib_id: Hash32,
    /// Active schedule version.
    pub schedule_version: u64,
    /// This round's order (slot order).
    pub round_order: Vec<Address>,
    /// Active producers' participation.
    pub producers: Vec<ProducerView>,
    /// Waiting transactions.
    pub mempool: usize,
    /// Open peer links.
    pub peer_links: usize,
    /// Producers whose keys this node holds.
    pub local_producers: Vec<Address>,
    /// Total burned, base units.
    pub burned: u64,
    /// Total minted as rewards, base units.
    pub minted: u64,
    /// Unix ms of slot 0 (a slot's time is this + slot × slot_ms).
    pub genesis_time_ms: u64,
    /// What the DApp reward pool still holds, base units.
    pub reward_pool: u64,
    /// Most the pool pays per reward epoch, all consortia together.
    pub reward_epoch_budget: u64,
    /// Reward epoch length, slots.
    pub reward_epoch_slots: u64,
    /// Entries in one reward batch part.
    #[serde(default)]
    pub reward_max_entries: u32,
    /// Parts one reward epoch may be split into.
    #[serde(default)]
    pub reward_max_parts: u32,
    /// Consortia allowed to pay consumer rewards from the pool.
    #[serde(default)]
    pub reward_consortia: Vec<Hash32>,
}

/// One active producer in [`StatusView`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProducerView {
    /// Its account.
    pub address: Address,
    /// Blocks produced, all time.
    pub produced: u64,
    /// Slots missed, all time.
    pub missed: u64,
}

/// `GET /v1/account/{address}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountView {
    /// The account.
    pub address: Address,
    /// Its state at the head (all zero if it never appeared).
    pub account: Account,
    /// Its producer record, if it registered.
    pub producer: Option<Producer>,
    /// The head slot the answer was read at.
    pub head_slot: u64,
    /// Its locked rewards (block rewards, fees, consumer rewards) with
    /// their unlock times, oldest first.
    #[serde(default)]
    pub locks: Vec<LockView>,
    /// Locked amounts matured at the head slot: what `WithdrawRewards`
    /// would move now (if the 30-day rule allows), base units.
    #[serde(default)]
    pub matured: u64,
    /// Locked amounts not yet matured, base units.
    #[serde(default)]
    pub still_locked: u64,
    /// First slot a withdrawal is allowed (None: any time).
    #[serde(default)]
    pub next_withdraw_slot: Option<u64>,
}

impl AccountView {
    /// `address` as the state `s` has it (with `params` and the genesis
    /// time for unlock times and the withdrawal rule).
    pub fn at(
        s: &crate::state::State,
        address: Address,
        params: &crate::params::Params,
        genesis_time_ms: u64,
    ) -> Self {
        let account = s.accounts.get(&address).cloned().unwrap_or_default();
        let locks: Vec<LockView> = account
            .locked
            .iter()
            .map(|l| LockView {
                amount: l.amount,
                unlock_slot: l.unlock_slot,
                unlock_time_ms: genesis_time_ms
                    .saturating_add(l.unlock_slot.saturating_mul(params.slot_ms)),
                matured: l.unlock_slot <= s.slot,
            })
            .collect();
        // Every holding is ≤ the supply, which fits u64.
        let sum = |m: bool| {
            locks
                .iter()
                .filter(|l| l.matured == m)
                .fold(0u64, |a, l| a.saturating_add(l.amount))
        };
        AccountView {
            address,
            producer: s.producers.get(&address).cloned(),
            head_slot: s.slot,
            matured: sum(true),
            still_locked: sum(false),
            next_withdraw_slot: account
                .last_withdraw_slot
                .map(|w| w.saturating_add(params.withdraw_interval_slots)),
            locks,
            account,
        }
    }
}

/// One locked amount in an [`AccountView`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockView {
    /// Base units.
    pub amount: u64,
    /// First slot it can be withdrawn in.
    pub unlock_slot: u64,
    /// That slot's start, Unix ms (the chain's clock: genesis + slot × slot_ms).
    pub unlock_time_ms: u64,
    /// Whether it has matured at the head slot.
    pub matured: bool,
}

/// One transaction in a history answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Block height.
    pub height: u64,
    /// Block slot.
    pub slot: u64,
    /// Transaction id.
    pub id: Hash32,
    /// The transaction.
    pub tx: SignedTx,
}

/// The API over a running node.
pub fn router(node: Arc<ChainNode>, genesis_name: String) -> axum::Router {
    let limit = node.with_node(|n| {
        let p = n.params();
        p.max_tx_bytes.max(p.rewards.max_tx_bytes) as usize
    }) * 2
        + 64;
    axum::Router::new()
        .route("/v1/status", get(status))
        .route("/v1/account/{address}", get(account))
        .route("/v1/account/{address}/history", get(history))
        .route("/v1/block/{height}", get(block))
        .route("/v1/headers", get(headers))
        .route("/v1/consortium/{id}", get(consortium))
        .route("/v1/consortium/{id}/proof", get(consortium_proof))
        .route("/v1/evidence", get(evidence))
        .route("/v1/tx", post(submit))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Arc::new(Api {
            node: node.clone(),
            name: genesis_name,
        }))
        .merge(crate::explorer::router(node))
}

struct Api {
    node: Arc<ChainNode>,
    name: String,
}

type Shared = State<Arc<Api>>;

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    let mut msg = msg.to_string();
    if msg.len() > 512 {
        let mut cut = 512;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
        msg.push('…');
    }
    (status, Json(json!({ "error": msg }))).into_response()
}

/// Parses a path's address; the error is the message for a 400.
fn parse_address(text: &str) -> Result<Address, String> {
    if text.len() > 100 {
        return Err(format!("an address is 63 characters, got {}", text.len()));
    }
    text.parse().map_err(|e| format!("address: {e}"))
}

/// One equivocation proof: who, which rule, and the transaction kind that
/// submits it (codec bytes, hex) for any funded account to sign.
#[derive(Debug, Serialize, Deserialize)]
pub struct EvidenceView {
    /// The producer it convicts.
    pub producer: Address,
    /// "two headers for one slot", "double vote" or "surround vote".
    pub rule: String,
    /// `codec::encode(&TxKind)`, hex.
    pub kind_hex: String,
}

/// `GET /v1/evidence`: the equivocation proofs this node holds (bounded by
/// the node: one per producer and kind, at most 64 of each).
async fn evidence(State(api): Shared) -> Response {
    use crate::tx::TxKind;
    let kinds = api.node.with_node(|n| n.evidence());
    let views: Vec<EvidenceView> = kinds
        .into_iter()
        .filter_map(|k| {
            let (producer, rule) = match &k {
                TxKind::Evidence(e) => (e.a.header.producer, "two headers for one slot"),
                TxKind::VoteEvidence(e) => (e.a.producer, e.broken_rule()?),
                _ => return None,
            };
            Some(EvidenceView {
                producer,
                rule: rule.to_owned(),
                kind_hex: hex::encode(crate::codec::encode(&k)),
            })
        })
        .collect();
    Json(views).into_response()
}

async fn status(State(api): Shared) -> Response {
    let links = api.node.peer_links();
    let view = api.node.with_node(|n| {
        let st = n.status();
        let p = n.params();
        let head = n.head_state();
        StatusView {
            chain_id: n.chain_id(),
            name: api.name.clone(),
            slot_ms: p.slot_ms,
            n_producers: p.n_producers,
            irreversible_threshold: p.irreversible_threshold(),
            finality_votes: p.fast_confirmations,
            min_fee: p.min_fee,
            max_expiry_slots: p.max_expiry_slots,
            clock_slot: n.clock_slot(),
            head_height: st.head_height,
            head_slot: st.head_slot,
            head_id: st.head_id,
            lib_height: st.lib_height,
            lib_id: st.lib_id,
            schedule_version: st.schedule_version,
            round_order: st.round_order,
            producers: st
                .producers
                .into_iter()
                .map(|(address, produced, missed)| ProducerView {
                    address,
                    produced,
                    missed,
                })
                .collect(),
            mempool: st.mempool,
            peer_links: links,
            local_producers: n.producer_addresses(),
            burned: head.burned,
            minted: head.minted,
            genesis_time_ms: n.genesis_time_ms(),
            reward_pool: head.balance(&crate::rewards::REWARD_POOL),
            reward_epoch_budget: p.rewards.epoch_budget(),
            reward_epoch_slots: p.rewards.epoch_slots,
            reward_max_entries: p.rewards.max_entries,
            reward_max_parts: p.rewards.max_parts,
            reward_consortia: p.rewards.consortia.clone(),
        }
    });
    Json(view).into_response()
}

async fn account(State(api): Shared, Path(address): Path<String>) -> Response {
    let address = match parse_address(&address) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let view = api
        .node
        .with_node(|n| AccountView::at(n.head_state(), address, n.params(), n.genesis_time_ms()));
    Json(view).into_response()
}

#[derive(Deserialize)]
struct HistoryQuery {
    blocks: Option<u64>,
}

async fn history(
    State(api): Shared,
    Path(address): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let address = match parse_address(&address) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let blocks = q.blocks.unwrap_or(500);
    if blocks == 0 || blocks > MAX_HISTORY_BLOCKS {
        return error(
            StatusCode::BAD_REQUEST,
            format!("blocks must be 1..={MAX_HISTORY_BLOCKS}"),
        );
    }
    let node = api.node.clone();
    // Reading up to 2,000 blocks from sled is blocking work.
    let found = tokio::task::spawn_blocking(move || {
        let head = node.status().head_height;
        let mut out = Vec::new();
        let mut h = head;
        while h > 0 && head - h < blocks && out.len() < MAX_HISTORY_TXS {
            let b = node.with_node(|n| n.block_at(h));
            match b {
                Ok(Some(b)) => {
                    for tx in b.txs.iter().rev() {
                        if tx.tx.sender == address || touches(tx, &address) {
                            out.push(HistoryEntry {
                                height: h,
                                slot: b.header.slot,
                                id: tx.id(),
                                tx: tx.clone(),
                            });
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(e.to_string()),
            }
            h -= 1;
        }
        out.truncate(MAX_HISTORY_TXS);
        Ok(out)
    })
    .await;
    match found {
        Ok(Ok(list)) => Json(list).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// Whether `tx` names `a` other than as its sender.
fn touches(tx: &SignedTx, a: &Address) -> bool {
    match &tx.tx.kind {
        crate::tx::TxKind::Transfer { to, .. } => to == a,
        crate::tx::TxKind::Vote { producers } => producers.contains(a),
        crate::tx::TxKind::RewardBatch(b) => {
            b.entries.binary_search_by(|e| e.address.cmp(a)).is_ok()
        }
        _ => false,
    }
}

async fn block(State(api): Shared, Path(height): Path<String>) -> Response {
    let Ok(height) = height.parse::<u64>() else {
        return error(StatusCode::BAD_REQUEST, "height must be a number");
    };
    let node = api.node.clone();
    let b = tokio::task::spawn_blocking(move || node.with_node(|n| n.block_at(height))).await;
    match b {
        Ok(Ok(Some(b))) => Json(BlockView::from(&*b)).into_response(),
        Ok(Ok(None)) => error(
            StatusCode::NOT_FOUND,
            format!("no block at height {height}"),
        ),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// A block as the API shows it: its id beside its content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockView {
    /// Block id.
    pub id: Hash32,
    /// The block.
    pub block: Block,
}

impl From<&Block> for BlockView {
    fn from(b: &Block) -> Self {
        Self {
            id: b.id(),
            block: b.clone(),
        }
    }
}

#[derive(Deserialize)]
struct HeadersQuery {
    from: u64,
    count: Option<usize>,
}

async fn headers(State(api): Shared, Query(q): Query<HeadersQuery>) -> Response {
    let count = q.count.unwrap_or(MAX_SYNC_BLOCKS);
    if count == 0 || count > MAX_SYNC_BLOCKS {
        return error(
            StatusCode::BAD_REQUEST,
            format!("count must be 1..={MAX_SYNC_BLOCKS}"),
        );
    }
    let node = api.node.clone();
    let from = q.from.max(1);
    let got = tokio::task::spawn_blocking(move || -> Result<Vec<SignedHeader>, String> {
        let mut out = Vec::new();
        for h in from..from.saturating_add(count as u64) {
            match node.with_node(|n| n.block_at(h)) {
                Ok(Some(b)) => out.push(b.signed_header()),
                Ok(None) => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(out)
    })
    .await;
    match got {
        Ok(Ok(list)) => Json(list).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn consortium(State(api): Shared, Path(id): Path<String>) -> Response {
    if id.len() != 64 {
        return error(StatusCode::BAD_REQUEST, "a consortium id is 64 hex digits");
    }
    let Ok(id) = id.parse::<Hash32>() else {
        return error(StatusCode::BAD_REQUEST, "a consortium id is 64 hex digits");
    };
    let found = api.node.with_node(|n| {
        let s = n.head_state();
        s.consortia.get(&id).cloned().map(|c| (c, s.height))
    });
    match found {
        Some((consortium, head_height)) => Json(ConsortiumView {
            id,
            consortium,
            head_height,
        })
        .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("consortium {id} is not registered"),
        ),
    }
}

/// `GET /v1/consortium/{id}/proof`: the public half of a proof over the
/// newest irreversible anchor ([`crate::anchor_proof::PublicHalf`]); 404
/// for an unknown consortium, 409 while no anchor is irreversible yet.
async fn consortium_proof(State(api): Shared, Path(id): Path<String>) -> Response {
    let Some(id) = (id.len() == 64)
        .then(|| id.parse::<Hash32>().ok())
        .flatten()
    else {
        return error(StatusCode::BAD_REQUEST, "a consortium id is 64 hex digits");
    };
    let node = api.node.clone();
    let made = tokio::task::spawn_blocking(move || {
        // Irreversibility is shown by a kept finality certificate (votes)
        // or by the headers of 21 distinct producers built on the anchor's
        // block (production-implied), whichever the anchor has.
        let (consortium, lib, production_lib, threshold) = node.with_node(|n| {
            (
                n.head_state().consortia.get(&id).cloned(),
                n.status().lib_height,
                n.head_state().dpos_lib,
                n.params().irreversible_threshold(),
            )
        });
        let Some(c) = consortium else {
            return Err((
                StatusCode::NOT_FOUND,
                format!("consortium {id} is not registered"),
            ));
        };
        let chain = crate::anchor_proof::ChainView {
            lib,
            production_lib,
            threshold,
            block_at: |h| {
                node.with_node(|n| n.block_at(h))
                    .map(|b| b.map(|b| (*b).clone()))
            },
            certificate_in: |from, to| node.with_node(|n| n.certificate_in(from, to)),
        };
        crate::anchor_proof::public_half(&id, &c, chain).map_err(|e| (StatusCode::CONFLICT, e))
    })
    .await;
    match made {
        Ok(Ok(half)) => Json(half).into_response(),
        Ok(Err((status, e))) => error(status, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `GET /v1/consortium/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsortiumView {
    /// The consortium id.
    pub id: Hash32,
    /// Keys, quorum, last anchor (at the head).
    pub consortium: Consortium,
    /// The head height the answer was read at.
    pub head_height: u64,
}

async fn submit(State(api): Shared, body: String) -> Response {
    let params = api.node.with_node(|n| n.params().clone());
    let text = body.trim();
    let bytes = match hex::decode(text) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be the hex of a signed transaction: {e}"),
            );
        }
    };
    let stx = match SignedTx::decode_for(&bytes, &params) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("transaction: {e}")),
    };
    match api.node.submit_tx(stx).await {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(crate::node::SubmitError::Full) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "mempool full; retry later")
        }
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
    }
}
