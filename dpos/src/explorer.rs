//! The public chain's explorer: server-rendered HTML pages on the node's API
//! port, for token holders who want to look without a wallet.
//!
//! | path | page |
//! | --- | --- |
//! | `GET /explorer` | head and finality, this round's order, the active producers with their record, candidates ranked by the votes that count now, the newest blocks |
//! | `GET /explorer/block/{height}` | one block: header fields and its transactions |
//! | `GET /explorer/account/{address}` | balance, locked rewards with unlock slots, votes, producer record, recent transactions |
//! | `GET /explorer/search?q=…` | a height or an address, redirected to its page |
//!
//! Everything shown comes from the node's head state and its blocks; every
//! value is HTML-escaped; inputs are bounded as in the JSON API (`api.rs`).
//! No script, no external resource: the pages work with JavaScript off.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::address::Address;
use crate::block::Block;
use crate::params::COIN;
use crate::runner::ChainNode;
use crate::tx::{SignedTx, TxKind};

/// Newest blocks on the front page.
const RECENT_BLOCKS: u64 = 20;
/// Candidates listed on the front page.
const CANDIDATES: usize = 100;
/// Blocks an account page looks back for its transactions.
const ACCOUNT_BLOCKS: u64 = 500;
/// Transactions an account page lists.
const ACCOUNT_TXS: usize = 50;

/// The explorer's routes (merged into the API's router).
pub fn router(node: Arc<ChainNode>) -> axum::Router {
    axum::Router::new()
        .route("/explorer", get(index))
        .route("/explorer/block/{height}", get(block))
        .route("/explorer/account/{address}", get(account))
        .route("/explorer/search", get(search))
        .with_state(node)
}

type Node = State<Arc<ChainNode>>;

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Base units as QCSS with 8 decimals.
fn qcss(units: u64) -> String {
    format!("{}.{:08}", units / COIN, units % COIN)
}

fn qcss128(units: u128) -> String {
    let coin = u128::from(COIN);
    format!("{}.{:08}", units / coin, units % coin)
}

fn addr_link(a: &Address) -> String {
    let s = a.to_string();
    format!(
        "<a class=\"mono\" href=\"/explorer/account/{}\">{}</a>",
        esc(&s),
        esc(&short(&s))
    )
}

fn short(s: &str) -> String {
    if s.len() > 20 {
        format!("{}…{}", &s[..12], &s[s.len() - 6..])
    } else {
        s.to_owned()
    }
}

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · QCSS public chain</title><style>{STYLE}</style></head><body>\
         <header><a href=\"/explorer\">QCSS public chain</a>\
         <form action=\"/explorer/search\"><input name=\"q\" maxlength=\"100\" \
         placeholder=\"height or qcss1… address\" aria-label=\"search\"></form></header>\
         <main><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    let mut r = page("Not found", &format!("<p>{}</p>", esc(what)));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24}\
header{display:flex;gap:1em;align-items:center;justify-content:space-between;\
padding:.6em 1em;background:#0f3d2e;color:#fff}header a{color:#fff;font-weight:600;\
text-decoration:none}input{padding:.3em .5em;width:16em;max-width:50vw}\
main{padding:0 1em 2em;max-width:70em}table{border-collapse:collapse;margin:.5em 0 1.5em}\
td,th{padding:.25em .7em;border-bottom:1px solid #dde;text-align:left;vertical-align:top}\
.mono{font-family:ui-monospace,monospace;font-size:.92em}.num{text-align:right}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dt{color:#57606a}\
dd{margin:0;overflow-wrap:anywhere}";

/// What a transaction does, in a few words (its sender is shown beside).
fn describe(tx: &SignedTx) -> String {
    match &tx.tx.kind {
        TxKind::Transfer { to, amount } => {
            format!("transfer {} QCSS to {}", qcss(*amount), addr_link(to))
        }
        TxKind::Burn { amount } => format!("burn {} QCSS", qcss(*amount)),
        TxKind::Vote { producers } => format!("vote for {} producers", producers.len()),
        TxKind::RegisterProducer { .. } => "register as producer".into(),
        TxKind::UnregisterProducer => "unregister as producer".into(),
        TxKind::WithdrawRewards => "withdraw unlocked rewards".into(),
        TxKind::Evidence(_) => "equivocation evidence".into(),
        TxKind::VoteEvidence(_) => "vote equivocation evidence".into(),
        TxKind::RegisterConsortium(_) => "register or rotate a consortium's anchor keys".into(),
        TxKind::Anchor(a) => format!(
            "anchor seq {} of consortium <span class=\"mono\">{}</span> ({} blocks)",
            a.statement.seq,
            esc(&short(&a.statement.consortium_id.to_string())),
            a.statement.mmr_size
        ),
        TxKind::RewardBatch(r) => format!(
            "consumer rewards of consortium <span class=\"mono\">{}</span>: epoch {}, part {} of {}, {} accounts, {} QCSS",
            esc(&short(&r.consortium_id.to_string())),
            r.epoch,
            r.part + 1,
            r.parts,
            r.entries.len(),
            qcss128(r.entries.iter().map(|e| u128::from(e.amount)).sum())
        ),
    }
}

fn tx_rows(out: &mut String, height: Option<u64>, txs: &[(u64, &SignedTx)]) {
    out.push_str("<table><tr><th>id</th>");
    if height.is_none() {
        out.push_str("<th>block</th>");
    }
    out.push_str("<th>from</th><th>what</th><th class=\"num\">fee</th></tr>");
    for (h, t) in txs {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td>",
            esc(&short(&t.id().to_string()))
        );
        if height.is_none() {
            let _ = write!(out, "<td><a href=\"/explorer/block/{h}\">{h}</a></td>");
        }
        let _ = write!(
            out,
            "<td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            addr_link(&t.tx.sender),
            describe(t),
            qcss(t.tx.fee)
        );
    }
    out.push_str("</table>");
}

async fn index(State(node): Node) -> Response {
    let n2 = node.clone();
    let made = tokio::task::spawn_blocking(move || {
        n2.with_node(|n| {
            let st = n.status();
            let p = n.params();
            let s = n.head_state();
            let mut out = String::new();
            let _ = write!(
                out,
                "<dl><dt>head</dt><dd><a href=\"/explorer/block/{h}\">{h}</a> (slot {}, id <span class=\"mono\">{}</span>)</dd>\
                 <dt>irreversible</dt><dd><a href=\"/explorer/block/{l}\">{l}</a> ({} blocks behind the head; {})</dd>\
                 <dt>clock slot</dt><dd>{} ({} ms slots)</dd>\
                 <dt>schedule</dt><dd>version {}, {} producers</dd>\
                 <dt>supply</dt><dd>{} QCSS at genesis, {} minted, {} burned</dd>\
                 <dt>mempool</dt><dd>{} transactions</dd></dl>",
                st.head_slot,
                esc(&short(&st.head_id.to_string())),
                st.head_height - st.lib_height,
                if p.fast_confirmations {
                    format!(
                        "final once {} producers voted for it and its child",
                        p.irreversible_threshold()
                    )
                } else {
                    format!(
                        "final once {} producers built on it",
                        p.irreversible_threshold()
                    )
                },
                n.clock_slot(),
                p.slot_ms,
                st.schedule_version,
                st.producers.len(),
                qcss(s.genesis_supply),
                qcss(s.minted),
                qcss(s.burned),
                st.mempool,
                h = st.head_height,
                l = st.lib_height,
            );
            out.push_str("<h2>Active producers</h2><table><tr><th>#</th><th>producer</th><th class=\"num\">blocks</th><th class=\"num\">missed slots</th><th>in this round</th></tr>");
            for (i, (a, produced, missed)) in st.producers.iter().enumerate() {
                let pos = st
                    .round_order
                    .iter()
                    .position(|x| x == a)
                    .map_or("-".to_owned(), |p| format!("slot {}", p + 1));
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td class=\"num\">{produced}</td><td class=\"num\">{missed}</td><td>{pos}</td></tr>",
                    i + 1,
                    addr_link(a)
                );
            }
            out.push_str("</table>");
            // The votes that would count at an election now (the same
            // tally as `schedule::elect`: liquid balance, unexpired votes).
            let mut tally: BTreeMap<Address, u128> = BTreeMap::new();
            for acct in s
                .accounts
                .values()
                .filter(|a| s.slot.saturating_sub(a.vote_slot) <= p.vote_expiry_slots)
            {
                for v in &acct.votes {
                    *tally.entry(*v).or_default() += u128::from(acct.balance);
                }
            }
            let mut ranked: Vec<(u128, &Address, &crate::state::Producer)> = s
                .producers
                .iter()
                .filter(|(_, p)| p.registered)
                .map(|(a, pr)| (tally.get(a).copied().unwrap_or(0), a, pr))
                .collect();
            ranked.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(y.1)));
            let _ = write!(
                out,
                "<h2>Candidates by votes</h2><p>{} registered; votes are weighted by the voter's liquid balance and count for {} slots after they are cast.</p>\
                 <table><tr><th>#</th><th>candidate</th><th class=\"num\">votes (QCSS)</th><th>url</th><th>record</th></tr>",
                ranked.len(),
                p.vote_expiry_slots
            );
            for (i, (votes, a, pr)) in ranked.iter().take(CANDIDATES).enumerate() {
                let record = if pr.equivocated {
                    "equivocated: never elected again".to_owned()
                } else {
                    format!(
                        "missed {} of {} slots this epoch",
                        pr.missed_epoch, pr.owned_epoch
                    )
                };
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                    i + 1,
                    addr_link(a),
                    qcss128(*votes),
                    esc(&pr.url),
                    esc(&record)
                );
            }
            out.push_str("</table><h2>Newest blocks</h2><table><tr><th>height</th><th>slot</th><th>producer</th><th class=\"num\">transactions</th><th>id</th></tr>");
            let from = st.head_height.saturating_sub(RECENT_BLOCKS - 1).max(1);
            for h in (from..=st.head_height).rev() {
                let Ok(Some(b)) = n.block_at(h) else { continue };
                let _ = write!(
                    out,
                    "<tr><td><a href=\"/explorer/block/{h}\">{h}</a></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"mono\">{}</td></tr>",
                    b.header.slot,
                    addr_link(&b.header.producer),
                    b.txs.len(),
                    esc(&short(&b.id().to_string()))
                );
            }
            out.push_str("</table>");
            out
        })
    })
    .await;
    match made {
        Ok(body) => page("Public chain", &body),
        Err(e) => not_found(&format!("the page could not be made: {e}")),
    }
}

async fn block(State(node): Node, Path(height): Path<String>) -> Response {
    let Ok(height) = height.parse::<u64>() else {
        return not_found("a block is named by its height (a number)");
    };
    let n2 = node.clone();
    let got = tokio::task::spawn_blocking(move || {
        n2.with_node(|n| (n.block_at(height), n.status().lib_height))
    })
    .await;
    let (b, lib) = match got {
        Ok((Ok(Some(b)), lib)) => (b, lib),
        Ok((Ok(None), _)) => return not_found(&format!("no block at height {height}")),
        Ok((Err(e), _)) => return not_found(&format!("block {height}: {e}")),
        Err(e) => return not_found(&e.to_string()),
    };
    page(&format!("Block {height}"), &block_body(&b, lib))
}

fn block_body(b: &Block, lib: u64) -> String {
    let h = &b.header;
    let mut out = String::new();
    let fin = if h.height <= lib {
        "irreversible"
    } else {
        "not yet irreversible"
    };
    let _ = write!(
        out,
        "<dl><dt>id</dt><dd class=\"mono\">{}</dd><dt>status</dt><dd>{fin}</dd>\
         <dt>slot</dt><dd>{}</dd><dt>producer</dt><dd>{}</dd>\
         <dt>previous</dt><dd class=\"mono\">{}</dd><dt>schedule version</dt><dd>{}</dd>\
         <dt>transaction root</dt><dd class=\"mono\">{}</dd>\
         <dt>block MMR root</dt><dd class=\"mono\">{}</dd></dl>",
        esc(&b.id().to_string()),
        h.slot,
        addr_link(&h.producer),
        esc(&h.prev_id.to_string()),
        h.schedule_version,
        esc(&h.tx_root.to_string()),
        esc(&h.block_mmr_root.to_string()),
    );
    if h.height > 1 {
        let _ = write!(
            out,
            "<p><a href=\"/explorer/block/{}\">← block {}</a></p>",
            h.height - 1,
            h.height - 1
        );
    }
    let _ = write!(out, "<h2>{} transactions</h2>", b.txs.len());
    let txs: Vec<(u64, &SignedTx)> = b.txs.iter().map(|t| (h.height, t)).collect();
    tx_rows(&mut out, Some(h.height), &txs);
    out
}

async fn account(State(node): Node, Path(address): Path<String>) -> Response {
    if address.len() > 100 {
        return not_found("an address is 63 characters");
    }
    let Ok(a) = address.parse::<Address>() else {
        return not_found("not a QCSS address (qcss1…, with its checksum)");
    };
    let n2 = node.clone();
    let made = tokio::task::spawn_blocking(move || {
        let head_part = n2.with_node(|n| {
            let s = n.head_state();
            let acct = s.accounts.get(&a).cloned().unwrap_or_default();
            let mut out = String::new();
            let _ = write!(
                out,
                "<dl><dt>address</dt><dd class=\"mono\">{}</dd>\
                 <dt>balance</dt><dd>{} QCSS</dd><dt>locked rewards</dt><dd>{} QCSS</dd>\
                 <dt>next nonce</dt><dd>{}</dd></dl>",
                esc(&a.to_string()),
                qcss(acct.balance),
                qcss128(acct.locked_total()),
                acct.nonce
            );
            if !acct.locked.is_empty() {
                out.push_str("<h2>Locked rewards</h2><table><tr><th class=\"num\">QCSS</th><th>unlocks at slot</th><th>now</th></tr>");
                for l in &acct.locked {
                    let now = if l.unlock_slot <= s.slot {
                        "unlocked"
                    } else {
                        "locked"
                    };
                    let _ = write!(
                        out,
                        "<tr><td class=\"num\">{}</td><td>{}</td><td>{now}</td></tr>",
                        qcss(l.amount),
                        l.unlock_slot
                    );
                }
                out.push_str("</table>");
            }
            if !acct.votes.is_empty() {
                let _ = write!(
                    out,
                    "<h2>Votes</h2><p>cast at slot {}: {}</p>",
                    acct.vote_slot,
                    acct.votes
                        .iter()
                        .map(addr_link)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if let Some(p) = s.producers.get(&a) {
                let _ = write!(
                    out,
                    "<h2>Producer</h2><dl><dt>standing</dt><dd>{}</dd><dt>url</dt><dd>{}</dd>\
                     <dt>blocks</dt><dd>{}</dd><dt>missed slots</dt><dd>{} all time, {} of {} this epoch</dd>\
                     <dt>equivocation</dt><dd>{}</dd></dl>",
                    if p.registered { "registered" } else { "not registered" },
                    esc(&p.url),
                    p.produced_total,
                    p.missed_total,
                    p.missed_epoch,
                    p.owned_epoch,
                    if p.equivocated { "recorded" } else { "none" }
                );
            }
            (out, s.height)
        });
        // Its recent transactions (bounded like the API's history), the
        // node locked one block read at a time.
        let (mut out, head) = head_part;
        let mut txs: Vec<(u64, SignedTx)> = Vec::new();
        let mut h = head;
        while h > 0 && head - h < ACCOUNT_BLOCKS && txs.len() < ACCOUNT_TXS {
            let Ok(Some(b)) = n2.with_node(|n| n.block_at(h)) else {
                break;
            };
            for t in b.txs.iter().rev() {
                let to_it = matches!(&t.tx.kind, TxKind::Transfer { to, .. } if *to == a);
                if (t.tx.sender == a || to_it) && txs.len() < ACCOUNT_TXS {
                    txs.push((h, t.clone()));
                }
            }
            h -= 1;
        }
        let _ = write!(
                out,
                "<h2>Transactions</h2><p>in the last {ACCOUNT_BLOCKS} blocks (at most {ACCOUNT_TXS})</p>"
            );
        let refs: Vec<(u64, &SignedTx)> = txs.iter().map(|(h, t)| (*h, t)).collect();
        tx_rows(&mut out, None, &refs);
        out
    })
    .await;
    match made {
        Ok(body) => page("Account", &body),
        Err(e) => not_found(&e.to_string()),
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

async fn search(Query(q): Query<SearchQuery>) -> Response {
    let q = q.q.unwrap_or_default();
    let q = q.trim();
    if q.len() > 100 {
        return not_found("nothing is named by a text that long");
    }
    if let Ok(h) = q.parse::<u64>() {
        return Redirect::to(&format!("/explorer/block/{h}")).into_response();
    }
    if let Ok(a) = q.parse::<Address>() {
        return Redirect::to(&format!("/explorer/account/{a}")).into_response();
    }
    not_found("search for a block height or a qcss1… address")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_amounts_have_eight_decimals() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(qcss(COIN + 5), "1.00000005");
        assert_eq!(qcss128(u128::from(u64::MAX) * 2), "368934881474.19103230");
        assert_eq!(short("0123456789abcdefghijklmnop"), "0123456789ab…klmnop");
    }
}
