//! The ledger explorer under `/explorer`: the latest blocks and
//! transactions (refreshed every 2 s by `explorer.js` from `/api/blocks`,
//! complete without it), a block, a transaction, a batch with its
//! transformation graph, a product with its batches, and search.

use serde_json::Value;

use crate::web::api;
use crate::web::chain;
use crate::web::graph;
use crate::web::html::{Lang, esc, page, text, time};
use crate::web::http::{Request, Response, percent_encode};
use crate::web::query::Answer;
use crate::web::verify_render::step_name;
use crate::web::{Web, WebError};

/// The script that keeps the front page live.
pub(crate) const SCRIPT: &str = include_str!("explorer.js");

/// Answers a request whose path is `/explorer` or below it.
pub(crate) async fn route(web: &Web, req: &Request) -> Response {
    let lang = Lang::of(req);
    let path = req.path.trim_end_matches('/');
    let rest = path.strip_prefix("/explorer").unwrap_or("");
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let r = match (head, tail) {
        ("", "") => index(web, lang),
        ("block", n) => block_page(web, lang, n),
        ("tx", id) => tx_page(web, lang, id),
        ("batch", id) if !id.is_empty() => batch_page(web, lang, id).await,
        ("product", gtin) if !gtin.is_empty() => product_page(web, lang, gtin).await,
        ("search", "") => {
            let q = req.param("q").unwrap_or("");
            match api::search(web, q) {
                Some((_, location)) => return Response::redirect(&location),
                None => Ok((
                    404,
                    lang.pick("Not found", "未找到").to_owned(),
                    format!(
                        "{}<div class=\"card\" id=\"not-found\"><p>{} <code>{}</code></p></div>",
                        search_form(lang, q),
                        lang.pick("Nothing on the ledger matches", "账本上没有匹配的记录："),
                        esc(q)
                    ),
                )),
            }
        }
        _ => Ok((
            404,
            lang.pick("Not found", "未找到").to_owned(),
            format!(
                "<div class=\"card\" id=\"not-found\"><p>{}</p></div>",
                lang.pick("No such page.", "没有这个页面。")
            ),
        )),
    };
    let (status, title, body) = match r {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(error = %e, "explorer page failed");
            (
                503,
                lang.pick("Unavailable", "暂不可用").to_owned(),
                format!(
                    "<div class=\"banner warn\">{}</div>",
                    lang.pick("The ledger cannot be read right now.", "暂时无法读取账本。")
                ),
            )
        }
    };
    let footer = format!(
        "{} {} · {} {} · {}",
        lang.pick("channel", "通道"),
        esc(web.peer.channel().id()),
        lang.pick("height", "高度"),
        web.peer.height(),
        esc(web.peer.msp_id().as_str()),
    );
    let script = (head.is_empty()).then_some("/explorer.js");
    let html = page(lang, &title, &req.path, &body, &footer, true, script);
    Response::html(status, html)
}

type Page = Result<(u16, String, String), WebError>;

fn search_form(lang: Lang, q: &str) -> String {
    format!(
        "<form class=\"search card\" action=\"/explorer/search\" method=\"get\" role=\"search\">\
<input name=\"q\" value=\"{}\" placeholder=\"{}\" aria-label=\"search\"><button>{}</button></form>",
        esc(q),
        lang.pick(
            "block number, tx id, batch GTIN/LOT, GTIN or unit code",
            "区块号、交易 ID、批次 GTIN/批号、GTIN 或产品码"
        ),
        lang.pick("Search", "搜索")
    )
}

fn code_tags(codes: &Value) -> String {
    codes
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(code, n)| {
                    let class = if code == "VALID" { "VALID" } else { "bad" };
                    format!("<span class=\"tag {class}\">{} ×{n}</span> ", esc(code))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn code_tag(code: &str) -> String {
    let class = if code == "VALID" { "VALID" } else { "bad" };
    format!("<span class=\"tag {class}\">{}</span>", esc(code))
}

fn short(s: &str) -> String {
    s.chars().take(16).collect()
}

fn block_row(b: &Value) -> String {
    let n = b["number"].as_u64().unwrap_or(0);
    format!(
        "<tr data-number=\"{n}\"><td><a href=\"/explorer/block/{n}\">{n}</a></td><td class=\"mono\">{}</td>\
<td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&short(b["hash"].as_str().unwrap_or(""))),
        b["tx_count"].as_u64().unwrap_or(0),
        code_tags(&b["codes"]),
        esc(&time(&b["time"], None)),
    )
}

fn tx_row(block: u64, t: &Value) -> String {
    let id = t["tx_id"].as_str().unwrap_or("");
    let what = match (t["chaincode"].as_str(), t["function"].as_str()) {
        (Some(c), Some(f)) => format!("{c}.{f}"),
        (Some(c), None) => c.to_owned(),
        _ => text(&t["type"]),
    };
    let link = if id.is_empty() {
        "-".to_owned()
    } else {
        format!(
            "<a class=\"mono\" href=\"/explorer/tx/{}\">{}</a>",
            esc(id),
            esc(&short(id))
        )
    };
    format!(
        "<tr><td>{link}</td><td><a href=\"/explorer/block/{block}\">{block}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&what),
        esc(&text(&t["creator_msp"])),
        code_tag(t["code"].as_str().unwrap_or("")),
    )
}

fn index(web: &Web, lang: Lang) -> Page {
    let height = web.peer.height();
    let blocks = chain::blocks(&web.peer.ledger, height.saturating_sub(1), 10)
        .map_err(|e| WebError::Query(e.to_string()))?;
    let mut body = search_form(lang, "");
    body.push_str(&format!(
        "<section class=\"card\"><h2>{} <span id=\"height\" data-height=\"{height}\">{height}</span></h2>\
<table><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody id=\"blocks\">",
        lang.pick("Latest blocks · height", "最新区块 · 高度"),
        lang.pick("hash", "哈希"),
        lang.pick("txs", "交易数"),
        lang.pick("validation", "验证结果"),
        lang.pick("time", "时间"),
    ));
    for b in &blocks {
        body.push_str(&block_row(b));
    }
    body.push_str(&format!(
        "</tbody></table></section><section class=\"card\"><h2>{}</h2>\
<table><thead><tr><th>tx</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody id=\"txs\">",
        lang.pick("Latest transactions", "最新交易"),
        lang.pick("block", "区块"),
        lang.pick("call", "调用"),
        lang.pick("creator org", "发起组织"),
        lang.pick("validation", "验证结果"),
    ));
    let mut shown = 0;
    'outer: for b in &blocks {
        let n = b["number"].as_u64().unwrap_or(0);
        for t in b["transactions"].as_array().into_iter().flatten().rev() {
            body.push_str(&tx_row(n, t));
            shown += 1;
            if shown == 20 {
                break 'outer;
            }
        }
    }
    body.push_str("</tbody></table></section>");
    Ok((
        200,
        lang.pick("QCSS ledger explorer", "QCSS 账本浏览器")
            .to_owned(),
        body,
    ))
}

fn block_page(web: &Web, lang: Lang, n: &str) -> Page {
    let not_found = || {
        Ok((
            404,
            lang.pick("Not found", "未找到").to_owned(),
            format!(
                "<div class=\"card\" id=\"not-found\"><p>{} {}</p></div>",
                lang.pick("No block", "没有区块"),
                esc(n)
            ),
        ))
    };
    let Ok(number) = n.parse::<u64>() else {
        return not_found();
    };
    let Some(b) = api::block_value(web, number)? else {
        return not_found();
    };
    let mut body = format!(
        "<section class=\"card\" id=\"block\"><h2>{} {number}</h2><dl>\
<dt>{}</dt><dd class=\"mono\">{}</dd><dt>{}</dt><dd class=\"mono\">{}</dd><dt>{}</dt><dd class=\"mono\">{}</dd>\
<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl></section>",
        lang.pick("Block", "区块"),
        lang.pick("hash", "哈希"),
        esc(&text(&b["hash"])),
        lang.pick("previous", "前一区块"),
        esc(&text(&b["previous_hash"])),
        lang.pick("data hash", "数据哈希"),
        esc(&text(&b["data_hash"])),
        lang.pick("transactions", "交易数"),
        b["tx_count"],
        lang.pick("validation", "验证结果"),
        code_tags(&b["codes"]),
        lang.pick("time", "时间"),
        esc(&time(&b["time"], None)),
    );
    body.push_str(&format!(
        "<section class=\"card\"><table><thead><tr><th>tx</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        lang.pick("block", "区块"),
        lang.pick("call", "调用"),
        lang.pick("creator org", "发起组织"),
        lang.pick("validation", "验证结果"),
    ));
    for t in b["transactions"].as_array().into_iter().flatten() {
        body.push_str(&tx_row(number, t));
    }
    body.push_str("</tbody></table></section>");
    Ok((
        200,
        format!("{} {number}", lang.pick("Block", "区块")),
        body,
    ))
}

fn who(v: &Value) -> String {
    let kinds: Vec<String> = v["kinds"]
        .as_array()
        .map(|k| k.iter().map(text).collect())
        .unwrap_or_default();
    let mut s = format!("{} · {}", text(&v["msp"]), text(&v["role"]));
    if let Some(n) = v["name"].as_str() {
        s = format!("{n} ({s})");
    }
    if !kinds.is_empty() {
        s.push_str(&format!(" [{}]", kinds.join(", ")));
    }
    s
}

fn tx_page(web: &Web, lang: Lang, id: &str) -> Page {
    let t = chain::tx_json(&web.peer.ledger, id).map_err(|e| WebError::Query(e.to_string()))?;
    let Some(t) = t.filter(|t| t["block"].as_u64().is_some_and(|b| b < web.peer.height())) else {
        return Ok((
            404,
            lang.pick("Not found", "未找到").to_owned(),
            format!(
                "<div class=\"card\" id=\"not-found\"><p>{} <code>{}</code></p></div>",
                lang.pick("No transaction", "没有交易"),
                esc(id)
            ),
        ));
    };
    let block = t["block"].as_u64().unwrap_or(0);
    let mut body = format!(
        "<section class=\"card\" id=\"tx\"><h2>{}</h2><dl>\
<dt>id</dt><dd class=\"mono\">{}</dd>\
<dt>{}</dt><dd><a href=\"/explorer/block/{block}\">{block}</a> #{}</dd>\
<dt>{}</dt><dd id=\"code\">{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>\
<dt>{}</dt><dd id=\"creator\">{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl></section>",
        lang.pick("Transaction", "交易"),
        esc(&text(&t["tx_id"])),
        lang.pick("block", "区块"),
        t["position"],
        lang.pick("validation", "验证结果"),
        code_tag(t["code"].as_str().unwrap_or("")),
        lang.pick("type", "类型"),
        esc(&text(&t["type"])),
        lang.pick("time", "时间"),
        esc(&time(&t["time"], None)),
        lang.pick("creator", "发起方"),
        esc(&t.get("creator").map(who).unwrap_or_default()),
        lang.pick("call", "调用"),
        esc(&format!(
            "{}.{}",
            text(&t["chaincode"]),
            text(&t["function"])
        )),
        lang.pick("event", "事件"),
        esc(&text(&t["event"])),
    );
    body.push_str(&format!(
        "<section class=\"card\" id=\"endorsers\"><h2>{}</h2><ul>",
        lang.pick("Endorsed by", "背书节点")
    ));
    for e in t["endorsers"].as_array().into_iter().flatten() {
        body.push_str(&format!("<li>{}</li>", esc(&who(e))));
    }
    body.push_str("</ul></section>");
    for ns in t["rwset"].as_array().into_iter().flatten() {
        body.push_str(&format!(
            "<section class=\"card rwset\"><h2>{} <code>{}</code></h2>",
            lang.pick("Read-write set of", "读写集："),
            esc(&text(&ns["namespace"]))
        ));
        let list = |title: &str, items: Vec<String>| -> String {
            if items.is_empty() {
                return String::new();
            }
            let lis: String = items
                .iter()
                .map(|k| format!("<li><code>{}</code></li>", esc(k)))
                .collect();
            format!("<h3>{title} ({})</h3><ul>{lis}</ul>", items.len())
        };
        let keys = |name: &str, f: &dyn Fn(&Value) -> String| -> Vec<String> {
            ns[name].as_array().into_iter().flatten().map(f).collect()
        };
        body.push_str(&list(
            lang.pick("reads", "读"),
            keys("reads", &|r| {
                format!("{} @ {}", text(&r["key"]), text(&r["version"]))
            }),
        ));
        body.push_str(&list(
            lang.pick("range reads", "范围读"),
            keys("range_reads", &|r| {
                format!("[{}, {})", text(&r["start"]), text(&r["end"]))
            }),
        ));
        body.push_str(&list(
            lang.pick("writes", "写"),
            keys("writes", &|w| {
                if w["delete"].as_bool() == Some(true) {
                    format!("{} (delete)", text(&w["key"]))
                } else {
                    text(&w["key"])
                }
            }),
        ));
        body.push_str(&list(
            lang.pick("key policy writes", "键策略写入"),
            keys("metadata_writes", &text),
        ));
        body.push_str("</section>");
    }
    Ok((200, format!("tx {}", short(id)), body))
}

async fn batch_page(web: &Web, lang: Lang, id: &str) -> Page {
    let trace = web.querier.evaluate("trace", id).await?;
    let v = match trace {
        Answer::Json(v) => v,
        Answer::Refused(m) => {
            return Ok((
                if m.contains("unknown") { 404 } else { 400 },
                lang.pick("Not found", "未找到").to_owned(),
                format!(
                    "<div class=\"card\" id=\"not-found\"><p>{}</p></div>",
                    esc(&m)
                ),
            ));
        }
    };
    let mut body = String::new();
    if !v["recall"].is_null() {
        body.push_str(&format!(
            "<div class=\"banner recall\" id=\"recall\"><h1>{}</h1><p>{}</p></div>",
            lang.pick("RECALLED", "已召回"),
            esc(&text(&v["recall"]["reason"]))
        ));
    }
    let b = &v["batch"];
    body.push_str(&format!(
        "<section class=\"card\" id=\"batch\"><h2>{} {}</h2><dl>\
<dt>{}</dt><dd><a href=\"/explorer/product/{}\">{}</a></dd><dt>{}</dt><dd>{} {} ({} {})</dd>\
<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{} / {}</dd><dt>{}</dt><dd>{}</dd></dl></section>",
        lang.pick("Batch", "批次"),
        esc(&text(&b["id"])),
        lang.pick("product", "产品"),
        esc(&text(&v["product"]["gtin"])),
        esc(&text(&v["product"]["name"])),
        lang.pick("quantity", "数量"),
        esc(&text(&b["quantity"])),
        esc(&text(&b["uom"])),
        esc(&text(&b["available"])),
        lang.pick("available", "可用"),
        lang.pick("produced", "生产"),
        esc(&format!(
            "{} · {}",
            text(&b["production_date"]),
            text(&b["site"])
        )),
        lang.pick("owner / holder", "所有方 / 持有方"),
        esc(&text(&b["owner"])),
        esc(&text(&b["custodian"])),
        lang.pick("quality", "质量"),
        esc(b["conformance"].as_str().unwrap_or("-")),
    ));
    let batch_id = b["id"].as_str().unwrap_or(id).to_owned();
    match api::graph_value(web, &batch_id).await? {
        Ok(g) => body.push_str(&format!(
            "<section class=\"card\"><h2>{}</h2><div class=\"graph\">{}</div>\
<p class=\"muted\">{}</p></section>",
            lang.pick("Made from and used in", "原料与去向"),
            graph::svg(&g),
            lang.pick(
                "Inputs on the left, products made from them on the right; numbers are quantities used.",
                "左侧为原料批次，右侧为其制成的产品；数字为使用数量。"
            ),
        )),
        Err(m) => body.push_str(&format!("<p class=\"muted\">{}</p>", esc(&m))),
    }
    body.push_str(&format!(
        "<section class=\"card\" id=\"timeline\"><h2>{}</h2><table><tbody>",
        lang.pick("Events", "事件")
    ));
    for e in v["timeline"].as_array().into_iter().flatten() {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&time(
                &e["event_time"],
                e["event_time_zone_offset"].as_str()
            )),
            esc(&step_name(lang, e["biz_step"].as_str().unwrap_or("?"))),
            esc(&text(&e["actor"])),
            esc(&[&e["read_point"], &e["biz_location"]]
                .iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")),
        ));
    }
    body.push_str("</tbody></table></section>");
    body.push_str(&format!(
        "<p class=\"muted\">{}: {} · {}: {}</p>",
        lang.pick("inspections", "检验"),
        v["inspections"].as_array().map_or(0, Vec::len),
        lang.pick("IoT alerts", "物联网告警"),
        v["alerts"].as_array().map_or(0, Vec::len),
    ));
    Ok((
        200,
        format!("{} {}", lang.pick("Batch", "批次"), batch_id),
        body,
    ))
}

async fn product_page(web: &Web, lang: Lang, gtin: &str) -> Page {
    let p = match web.querier.evaluate("get_product", gtin).await? {
        Answer::Json(v) => v,
        Answer::Refused(m) => {
            return Ok((
                if m.contains("unknown") { 404 } else { 400 },
                lang.pick("Not found", "未找到").to_owned(),
                format!(
                    "<div class=\"card\" id=\"not-found\"><p>{}</p></div>",
                    esc(&m)
                ),
            ));
        }
    };
    // The product's batches, straight from the state (every batch is
    // readable by anyone through `get_batch`).
    let start = format!("\0batch\0{gtin}\0");
    let end = format!("\0batch\0{gtin}\u{1}");
    let rows = web
        .peer
        .ledger
        .range(&web.settings.chaincode, &start, &end, 500)
        .map_err(|e| WebError::Query(e.to_string()))?;
    let mut body = format!(
        "<section class=\"card\" id=\"product\"><h2>{}</h2><dl><dt>GTIN</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>\
<dt>{}</dt><dd>{}</dd></dl></section><section class=\"card\"><h2>{} ({})</h2><ul>",
        esc(&text(&p["name"])),
        esc(gtin),
        lang.pick("category", "类别"),
        esc(&text(&p["category"])),
        lang.pick("producer", "生产企业"),
        esc(&text(&p["owner"])),
        lang.pick("Batches", "批次"),
        rows.len(),
    );
    for (key, value) in &rows {
        let b: Value = serde_json::from_slice(&value.value).unwrap_or_default();
        let id = chain::readable_key(key)
            .strip_prefix("batch/")
            .unwrap_or_default()
            .to_owned();
        let lot = id.split('/').nth(1).unwrap_or_default();
        body.push_str(&format!(
            "<li><a href=\"/explorer/batch/{}/{}\">{}</a> · {} {} · {}{}</li>",
            esc(gtin),
            percent_encode(lot),
            esc(&id),
            esc(&text(&b["quantity"])),
            esc(&text(&b["uom"])),
            esc(&text(&b["production_date"])),
            if b["recall"].is_null() {
                ""
            } else {
                " · RECALLED"
            },
        ));
    }
    body.push_str("</ul></section>");
    Ok((200, text(&p["name"]), body))
}
