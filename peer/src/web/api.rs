//! The read-only JSON API under `/api/` (documented in `docs/web.md`):
//! blocks, a block, a transaction, a trace, a code's verdict, a batch's
//! graph, search. Errors are `{"error": "..."}` with 400, 404 or 503.

use serde_json::{Value, json};

use crate::web::chain;
use crate::web::graph;
use crate::web::http::{Request, Response, percent_encode};
use crate::web::query::{Answer, Verdict};
use crate::web::{Web, WebError};

/// Answers a request whose path starts with `/api/`.
pub(crate) async fn route(web: &Web, req: &Request) -> Response {
    let path = req.path.trim_end_matches('/');
    let rest = path.strip_prefix("/api/").unwrap_or("");
    let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
    match (head, tail) {
        ("blocks", "") => blocks(web, req),
        ("block", n) if !n.is_empty() => block(web, n),
        ("tx", id) if !id.is_empty() => tx(web, id),
        ("trace", id) if !id.is_empty() => trace(web, id).await,
        ("verify", "") => verify(web, req).await,
        ("graph", batch) if !batch.is_empty() => graph_of(web, batch).await,
        ("anchor", what) => crate::web::anchor::route(web, what, req),
        ("rewards", what) => crate::web::rewards::route(web, what, req).await,
        ("search", "") => match search(web, req.param("q").unwrap_or("")) {
            Some((kind, location)) => {
                Response::json(200, &json!({"kind": kind, "location": location}))
            }
            None => Response::json_error(404, "nothing on the ledger matches"),
        },
        _ => Response::json_error(404, "no such API path (see docs/web.md)"),
    }
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "web API failed");
    Response::json_error(503, "the ledger cannot be read right now").with_header("Retry-After", "5")
}

fn blocks(web: &Web, req: &Request) -> Response {
    let height = web.peer.height();
    let parse = |name: &str, default: u64| -> Result<u64, Response> {
        match req.param(name) {
            None | Some("") => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| Response::json_error(400, &format!("{name} must be a number"))),
        }
    };
    let from = match parse("from", height.saturating_sub(1)) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let limit = match parse("limit", 10) {
        Ok(v) => v.clamp(1, chain::MAX_BLOCKS),
        Err(r) => return r,
    };
    if height == 0 {
        return Response::json(200, &json!({"height": 0, "blocks": []}));
    }
    // Only applied blocks (the ledger may be one ahead for a moment).
    match chain::blocks(&web.peer.ledger, from.min(height - 1), limit) {
        Ok(b) => Response::json(200, &json!({"height": height, "blocks": b})),
        Err(e) => internal(e),
    }
}

/// A committed block by number, or `None` if beyond the height.
pub(crate) fn block_value(web: &Web, n: u64) -> Result<Option<Value>, WebError> {
    if n >= web.peer.height() {
        return Ok(None);
    }
    Ok(web
        .peer
        .ledger
        .block(n)
        .map_err(|e| WebError::Query(e.to_string()))?
        .map(|b| chain::block_json(&b)))
}

fn block(web: &Web, n: &str) -> Response {
    let Ok(n) = n.parse::<u64>() else {
        return Response::json_error(400, "a block number is a decimal number");
    };
    match block_value(web, n) {
        Ok(Some(b)) => Response::json(200, &b),
        Ok(None) => {
            Response::json_error(404, &format!("no block {n} (height {})", web.peer.height()))
        }
        Err(e) => internal(e),
    }
}

fn tx(web: &Web, id: &str) -> Response {
    match chain::tx_json(&web.peer.ledger, id) {
        Ok(Some(t)) if t["block"].as_u64().is_some_and(|b| b < web.peer.height()) => {
            Response::json(200, &t)
        }
        Ok(_) => Response::json_error(404, &format!("no transaction {id}")),
        Err(e) => internal(e),
    }
}

/// The HTTP status for a contract refusal.
fn refusal_status(message: &str) -> u16 {
    if message.contains("unknown") || message.contains("no code key") {
        404
    } else {
        400
    }
}

async fn trace(web: &Web, id: &str) -> Response {
    if id.contains('?') {
        return Response::json_error(400, "trace a code with /api/verify?code=");
    }
    match web.querier.evaluate("trace", id).await {
        Ok(Answer::Json(v)) => Response::json(200, &v),
        Ok(Answer::Refused(m)) => Response::json_error(refusal_status(&m), &m),
        Err(e) => internal(e),
    }
}

async fn verify(web: &Web, req: &Request) -> Response {
    let Some(code) = req.param("code").filter(|c| !c.is_empty()) else {
        return Response::json_error(400, "give the unit code URI as ?code=");
    };
    match web.querier.evaluate("trace", code).await {
        Ok(answer) => {
            let verdict = Verdict::of(&answer);
            let mut v = json!({"code": code, "verdict": verdict.as_str()});
            let status = match &answer {
                Answer::Json(t) => {
                    v["recalled"] = json!(!t["recall"].is_null());
                    v["counterfeit_warning"] = t["counterfeit_warning"].clone();
                    v["scans"] = t["unit"]["scans"].clone();
                    v["trace"] = (**t).clone();
                    200
                }
                Answer::Refused(m) => {
                    v["error"] = json!(m);
                    match verdict {
                        Verdict::Forged | Verdict::Invalid => 200,
                        Verdict::Unknown => 404,
                        _ => 400,
                    }
                }
            };
            Response::json(status, &v)
        }
        Err(e) => internal(e),
    }
}

/// The merged upstream and downstream graph of `batch`.
pub(crate) async fn graph_value(web: &Web, batch: &str) -> Result<Result<Value, String>, WebError> {
    let up = match web.querier.evaluate("trace_upstream", batch).await? {
        Answer::Json(v) => v,
        Answer::Refused(m) => return Ok(Err(m)),
    };
    let down = match web.querier.evaluate("trace_downstream", batch).await? {
        Answer::Json(v) => v,
        Answer::Refused(m) => return Ok(Err(m)),
    };
    Ok(Ok(graph::merge(batch, &up, &down)))
}

async fn graph_of(web: &Web, batch: &str) -> Response {
    match graph_value(web, batch).await {
        Ok(Ok(g)) => Response::json(200, &g),
        Ok(Err(m)) => Response::json_error(refusal_status(&m), &m),
        Err(e) => internal(e),
    }
}

fn is_lot_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// What a search finds: (kind, explorer location). Block numbers and tx
/// ids are checked against the ledger; batches and products are checked
/// by the page they lead to.
pub(crate) fn search(web: &Web, q: &str) -> Option<(&'static str, String)> {
    let q = q.trim();
    if let Some(i) = q.find("/01/")
        && q.contains("?8030=")
    {
        let path = &q[i..];
        let safe = path
            .chars()
            .all(|c| is_lot_char(c) || matches!(c, '/' | '?' | '=' | '~'));
        return safe.then(|| ("code", path.to_owned()));
    }
    if !q.is_empty() && q.bytes().all(|b| b.is_ascii_digit()) {
        if q.len() == 14 {
            return Some(("product", format!("/explorer/product/{q}")));
        }
        let n: u64 = q.parse().ok()?;
        return (n < web.peer.height()).then(|| ("block", format!("/explorer/block/{n}")));
    }
    if q.len() == 64 && q.bytes().all(|b| b.is_ascii_hexdigit()) {
        let q = q.to_ascii_lowercase();
        let found = web.peer.ledger.tx(&q).ok().flatten()?;
        return (found.block < web.peer.height()).then(|| ("tx", format!("/explorer/tx/{q}")));
    }
    let parts: Vec<&str> = q.split('/').collect();
    match parts[..] {
        [g, l] | [g, l, _]
            if g.len() == 14
                && g.bytes().all(|b| b.is_ascii_digit())
                && !l.is_empty()
                && l.chars().all(is_lot_char) =>
        {
            Some((
                "batch",
                format!("/explorer/batch/{g}/{}", percent_encode(l)),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_statuses() {
        assert_eq!(refusal_status("unknown batch 1/2"), 404);
        assert_eq!(refusal_status("batch 1/2 has no code key"), 404);
        assert_eq!(refusal_status("malformed unit code"), 400);
    }
}
