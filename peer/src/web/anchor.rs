//! `/api/anchor/…`: what the anchoring bridge asks each org's peer
//! (`docs/anchor.md`).
//!
//! | path | answer |
//! | --- | --- |
//! | `status` | consortium id, blocks committed and indexed, this org's anchor key |
//! | `sign?seq=S&prev_size=P&size=N` | the statement this peer computes for blocks `0 … N−1` extending `P`, signed with its anchor key |
//! | `root?size=N` | the MMR root over blocks `0 … N−1` |
//! | `consistency?from=P&to=N` | the MMR consistency proof from `P` to `N` blocks |
//! | `inclusion?block=B&size=N` | block `B`'s header hash and its MMR inclusion proof in `N` blocks |
//! | `tx?id=TXID&size=N` | the transaction's envelope, its block's header, the envelope's Merkle path to the header's data hash, its validation code, and the block's MMR inclusion proof in `N` blocks |
//!
//! The peer never signs what a caller hands it: it computes the statement
//! (roots, last block hash, consortium id) from its own ledger and signs
//! that, so a caller can only learn what this ledger says. Every figure a
//! caller gives is bounded by the committed height before anything is read.

use ed25519_dalek::{Signer, SigningKey};
use qcss_anchor::Hash32;
use qcss_anchor::statement::Statement;
use qcss_proto::hash::block_header_hash;
use serde_json::json;

use crate::web::http::{Request, Response};
use crate::web::{Web, WebError};

/// Reads an anchor key file: JSON with a `secret` of 64 hex digits (as
/// `qcss wallet new` writes it; other fields are ignored here).
pub(crate) fn load_key(path: &std::path::Path) -> Result<SigningKey, WebError> {
    #[derive(serde::Deserialize)]
    struct KeyFile {
        secret: String,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| WebError::Config(format!("anchor key {}: {e}", path.display())))?;
    let f: KeyFile = serde_json::from_str(&text)
        .map_err(|e| WebError::Config(format!("anchor key {}: {e}", path.display())))?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(f.secret.trim(), &mut secret).map_err(|_| {
        WebError::Config(format!(
            "anchor key {}: the secret must be 64 hex digits",
            path.display()
        ))
    })?;
    Ok(SigningKey::from_bytes(&secret))
}

/// Answers `/api/anchor/{what}`.
pub(crate) fn route(web: &Web, what: &str, req: &Request) -> Response {
    let r = match what {
        "status" => status(web),
        "sign" => sign(web, req),
        "consistency" => consistency(web, req),
        "root" => root(web, req),
        "inclusion" => inclusion(web, req),
        "tx" => tx(web, req),
        "proof" => proof(web, req),
        _ => return Response::json_error(404, "no such anchor API path (see docs/anchor.md)"),
    };
    r.unwrap_or_else(|e| e)
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "anchor API failed");
    Response::json_error(503, "the ledger cannot be read right now").with_header("Retry-After", "5")
}

/// A required number parameter.
fn number(req: &Request, name: &str) -> Result<u64, Response> {
    req.param(name)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Response::json_error(400, &format!("{name} must be a number")))
}

fn status(web: &Web) -> Result<Response, Response> {
    let indexed = web.peer.ledger.mmr_leaves().map_err(unavailable)?;
    let root = web.peer.ledger.mmr_root(indexed).map_err(unavailable)?;
    Ok(Response::json(
        200,
        &json!({
            "channel": web.peer.channel().id(),
            "consortium_id": web.peer.consortium_id(),
            "height": web.peer.height(),
            "mmr_size": indexed,
            "mmr_root": root,
            "key": web.anchor_key.as_ref().map(|k| hex::encode(k.verifying_key().to_bytes())),
            "anchored": web.peer.anchored(),
        }),
    ))
}

/// The statement for `size` blocks extending `prev_size`, from this ledger.
fn statement(web: &Web, seq: u64, prev_size: u64, size: u64) -> Result<Statement, Response> {
    let l = &web.peer.ledger;
    if size == 0 || prev_size >= size {
        return Err(Response::json_error(400, "need 0 ≤ prev_size < size"));
    }
    let root = |n: u64| -> Result<Hash32, Response> {
        l.mmr_root(n).map_err(unavailable)?.ok_or_else(|| {
            Response::json_error(404, &format!("this peer has not committed {n} blocks"))
        })
    };
    let mmr_root = root(size)?;
    let prev_root = root(prev_size)?;
    let last = l
        .block_hash(size - 1)
        .map_err(unavailable)?
        .ok_or_else(|| Response::json_error(404, "the last block is not readable"))?;
    Ok(Statement {
        consortium_id: web.peer.consortium_id(),
        seq,
        mmr_size: size,
        mmr_root,
        last_block_hash: Hash32(last),
        prev_size,
        prev_root,
    })
}

fn sign(web: &Web, req: &Request) -> Result<Response, Response> {
    let Some(key) = web.anchor_key.as_ref() else {
        return Err(Response::json_error(
            404,
            "this peer has no anchor key ([anchor] key in its configuration)",
        ));
    };
    let st = statement(
        web,
        number(req, "seq")?,
        number(req, "prev_size")?,
        number(req, "size")?,
    )?;
    let digest = st.digest();
    let sig = key.sign(&digest.0);
    Ok(Response::json(
        200,
        &json!({
            "statement": st,
            "digest": digest,
            "key": hex::encode(key.verifying_key().to_bytes()),
            "sig": hex::encode(sig.to_bytes()),
        }),
    ))
}

fn root(web: &Web, req: &Request) -> Result<Response, Response> {
    let size = number(req, "size")?;
    match web.peer.ledger.mmr_root(size).map_err(unavailable)? {
        // Block `size`, once committed, carries the same root in the
        // metadata the orderers signed: shown so anyone can compare.
        Some(r) => {
            let certified = web
                .peer
                .ledger
                .block(size)
                .map_err(unavailable)?
                .and_then(|b| qcss_network::block::block_mmr_root(&b))
                .map(hex::encode);
            Ok(Response::json(
                200,
                &json!({ "size": size, "root": r, "certified_in_block": certified }),
            ))
        }
        None => Err(Response::json_error(
            404,
            "need size ≤ the blocks this peer committed",
        )),
    }
}

fn consistency(web: &Web, req: &Request) -> Result<Response, Response> {
    let (from, to) = (number(req, "from")?, number(req, "to")?);
    match web
        .peer
        .ledger
        .mmr_consistency(from, to)
        .map_err(unavailable)?
    {
        Some(p) => Ok(Response::json(200, &json!(p))),
        None => Err(Response::json_error(
            404,
            "need from ≤ to ≤ the blocks this peer committed",
        )),
    }
}

fn inclusion(web: &Web, req: &Request) -> Result<Response, Response> {
    let (block, size) = (number(req, "block")?, number(req, "size")?);
    let l = &web.peer.ledger;
    let Some(proof) = l.mmr_inclusion(block, size).map_err(unavailable)? else {
        return Err(Response::json_error(
            404,
            "need block < size ≤ the blocks this peer committed",
        ));
    };
    let hash = l
        .block_hash(block)
        .map_err(unavailable)?
        .ok_or_else(|| Response::json_error(404, "the block is not readable"))?;
    Ok(Response::json(
        200,
        &json!({ "block_hash": hex::encode(hash), "proof": proof }),
    ))
}

/// Longest transaction id accepted (Fabric's are 64 hex digits).
const MAX_TX_ID: usize = 128;

fn tx(web: &Web, req: &Request) -> Result<Response, Response> {
    let id = tx_id_param(req)?;
    let size = number(req, "size")?;
    Ok(Response::json(200, &tx_part(web, id, size)?))
}

fn tx_id_param(req: &Request) -> Result<&str, Response> {
    let id = req.param("id").unwrap_or("");
    if id.is_empty() || id.len() > MAX_TX_ID {
        return Err(Response::json_error(400, "id must be a transaction id"));
    }
    Ok(id)
}

/// Transaction `id` in its block, and that block in the first `size`
/// blocks' MMR: the consortium steps of a proof.
fn tx_part(web: &Web, id: &str, size: u64) -> Result<serde_json::Value, Response> {
    let l = &web.peer.ledger;
    let Some(loc) = l.tx(id).map_err(unavailable)? else {
        return Err(Response::json_error(
            404,
            "no such transaction on this ledger",
        ));
    };
    let Some(mmr) = l.mmr_inclusion(loc.block, size).map_err(unavailable)? else {
        return Err(Response::json_error(
            404,
            "the transaction's block is not within size",
        ));
    };
    let block = l
        .block(loc.block)
        .map_err(unavailable)?
        .ok_or_else(|| Response::json_error(404, "the block is not readable"))?;
    let (Some(header), Some(data)) = (block.header.as_ref(), block.data.as_ref()) else {
        return Err(unavailable("block without header or data"));
    };
    let position = loc.position as usize;
    let Some(envelope) = data.data.get(position) else {
        return Err(unavailable("tx index points past the block's data"));
    };
    let path = qcss_proto::hash::merkle_proof(&data.data, position);
    Ok(json!({
        "tx_id": id,
        "code": loc.code.as_str_name(),
        "envelope": hex::encode(envelope),
        "position": position,
        "tx_count": data.data.len(),
        "data_path": path.siblings.iter().map(hex::encode).collect::<Vec<_>>(),
        "header": {
            "number": header.number,
            "previous_hash": hex::encode(&header.previous_hash),
            "data_hash": hex::encode(&header.data_hash),
        },
        "block_hash": hex::encode(block_header_hash(header)),
        "mmr": mmr,
    }))
}

/// `proof?id=TX`: the whole proof file of `qcss anchor prove` (format v1,
/// docs/anchor.md), offered as a download: this ledger's steps for the
/// transaction, and the public half of the newest irreversible anchor as
/// the public chain served it. `qcss anchor verify` checks every step, so
/// nothing here has to be trusted.
fn proof(web: &Web, req: &Request) -> Result<Response, Response> {
    let id = tx_id_param(req)?;
    let Some(half) = web.peer.anchor_proof_half() else {
        return Err(Response::json_error(
            409,
            "no irreversible anchor is known to this peer yet (it follows the public chain every few seconds)",
        ));
    };
    let mut tx = tx_part(web, id, half.mmr_size).map_err(|e| {
        if e.status == 404 {
            Response::json_error(
                409,
                &format!(
                    "the transaction is not in the blocks anchored so far (0–{}); the next anchor covers it",
                    half.mmr_size.saturating_sub(1)
                ),
            )
        } else {
            e
        }
    })?;
    let mmr = tx["mmr"].take();
    let body = json!({
        "version": 1,
        "consortium": {
            "consortium_id": web.peer.consortium_id(),
            "tx_id": id,
            "code": tx["code"],
            "envelope": tx["envelope"],
            "position": tx["position"],
            "tx_count": tx["tx_count"],
            "data_path": tx["data_path"],
            "header": tx["header"],
        },
        "mmr": mmr,
        "anchor": half.anchor,
        "public": half.public,
    });
    let name: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    Ok(Response::json(200, &body).with_header(
        "Content-Disposition",
        format!("attachment; filename=\"qcss-proof-{name}.json\""),
    ))
}
