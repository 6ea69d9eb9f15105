//! The page a unit's QR code opens: `/01/{GTIN}/10/{lot}/21/{serial}?8030=…`
//! (GS1 Digital Link). It evaluates the contract's `trace` of the code and
//! renders, in this order: a recall banner, the verdict (genuine, possible
//! counterfeit, forged), product, batch, permit, scans, timeline,
//! inspections, IoT alerts. Server-rendered, no script, phone-first, in
//! Chinese or English. Read-only: viewing it records no scan (recording one
//! is a transaction, the consumer app's choice: the contract's `scan`).

use serde_json::Value;

use crate::web::html::{Lang, esc, page, text, time};
use crate::web::http::{Request, Response};
use crate::web::query::{Answer, Verdict};
use crate::web::{Web, WebError};

/// A Digital Link path: a unit (`/01/g/10/l/21/s`) or a lot (`/01/g/10/l`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkTarget {
    Unit {
        gtin: String,
        lot: String,
        serial: String,
    },
    Lot {
        gtin: String,
        lot: String,
    },
}

impl LinkTarget {
    pub(crate) fn parse(path: &str) -> Option<LinkTarget> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let ok = |s: &str| !s.is_empty() && s.len() <= 64 && !s.contains(['?', '#']);
        match parts[..] {
            ["", "01", gtin, "10", lot, "21", serial] if ok(gtin) && ok(lot) && ok(serial) => {
                Some(LinkTarget::Unit {
                    gtin: gtin.into(),
                    lot: lot.into(),
                    serial: serial.into(),
                })
            }
            ["", "01", gtin, "10", lot] if ok(gtin) && ok(lot) => Some(LinkTarget::Lot {
                gtin: gtin.into(),
                lot: lot.into(),
            }),
            _ => None,
        }
    }
}

/// The unit code URI the contract checks: the configured base, the path,
/// and only the signature (`8030`); other parameters (`lang`) are ours.
pub(crate) fn code_uri(base: &str, path: &str, req: &Request) -> Option<String> {
    req.param("8030")
        .map(|sig| format!("{base}{}?8030={sig}", path.trim_end_matches('/')))
}

/// Answers the verify page.
pub(crate) async fn page_for(web: &Web, req: &Request, target: LinkTarget) -> Response {
    let lang = Lang::of(req);
    let switch = match req.param("8030") {
        Some(sig) => format!("{}?8030={sig}", req.path),
        None => req.path.clone(),
    };
    let (arg, is_code) = match &target {
        LinkTarget::Unit { .. } => match code_uri(&web.base, &req.path, req) {
            Some(uri) => (uri, true),
            None => {
                let body = verdict_banner(lang, Verdict::Malformed, "no signature (8030)");
                return Response::html(400, shell(web, lang, &switch, "-", &body));
            }
        },
        LinkTarget::Lot { gtin, lot } => (format!("{gtin}/{lot}"), false),
    };
    match web.querier.evaluate("trace", &arg).await {
        Ok(answer) => {
            let verdict = is_code.then(|| Verdict::of(&answer));
            let status = match (&answer, verdict) {
                (Answer::Json(_), _) => 200,
                (_, Some(Verdict::Forged | Verdict::Invalid)) => 200,
                (Answer::Refused(m), _) if m.contains("unknown") || m.contains("no code key") => {
                    404
                }
                _ => 400,
            };
            let (title, body) = render(lang, &answer, verdict);
            Response::html(status, shell(web, lang, &switch, &title, &body))
        }
        Err(e) => unavailable(web, lang, &switch, &e),
    }
}

fn unavailable(web: &Web, lang: Lang, switch: &str, e: &WebError) -> Response {
    tracing::warn!(error = %e, "verify page: query failed");
    let body = format!(
        "<div class=\"banner warn\" id=\"unavailable\"><h1>{}</h1><p>{}</p></div>",
        lang.pick("The ledger cannot be read right now", "暂时无法读取账本"),
        lang.pick("Please try again in a moment.", "请稍后再试。"),
    );
    Response::html(503, shell(web, lang, switch, "-", &body)).with_header("Retry-After", "5")
}

fn shell(web: &Web, lang: Lang, switch: &str, title: &str, body: &str) -> String {
    let peer = web.peer.signer.msp_id.as_str();
    let footer = match lang {
        Lang::En => format!(
            "Checked against the ledger of channel {} at block height {} by a peer of {}. \
Opening this page records nothing on the ledger.",
            esc(web.peer.channel().id()),
            web.peer.height(),
            esc(peer)
        ),
        Lang::Zh => format!(
            "已由 {} 的节点在通道 {} 区块高度 {} 上核验。打开本页不会在账本上留下任何记录。",
            esc(peer),
            esc(web.peer.channel().id()),
            web.peer.height()
        ),
    };
    let title = if title == "-" {
        lang.pick("Product verification", "产品验证").to_owned()
    } else {
        format!("{title} — {}", lang.pick("verification", "验证"))
    };
    page(lang, &title, switch, body, &footer, false, None)
}

/// The page body for a `trace` answer: (title, HTML).
pub(crate) fn render(lang: Lang, answer: &Answer, verdict: Option<Verdict>) -> (String, String) {
    let v = match answer {
        Answer::Json(v) => v,
        Answer::Refused(message) => {
            let verdict = verdict.unwrap_or(Verdict::of_refusal(message));
            return ("-".into(), verdict_banner(lang, verdict, message));
        }
    };
    let mut out = String::new();
    recall_banner(lang, &mut out, &v["recall"]);
    if let Some(verdict) = verdict {
        let detail = v["counterfeit_warning"].as_str().unwrap_or("");
        out.push_str(&verdict_banner(lang, verdict, detail));
    }
    product_card(lang, &mut out, v);
    scans_card(lang, &mut out, &v["unit"]);
    timeline_card(lang, &mut out, &v["timeline"]);
    inspections_card(lang, &mut out, &v["inspections"]);
    alerts_card(lang, &mut out, &v["alerts"]);
    (text(&v["product"]["name"]), out)
}

fn recall_banner(lang: Lang, out: &mut String, recall: &Value) {
    if recall.is_null() {
        return;
    }
    let by = if recall["by_regulator"].as_bool() == Some(true) {
        format!(
            "{} ({})",
            text(&recall["by"]),
            lang.pick("regulator", "监管部门")
        )
    } else {
        text(&recall["by"])
    };
    out.push_str(&format!(
        "<div class=\"banner recall\" id=\"recall\" role=\"alert\"><h1>{}</h1>\
<p>{}</p><p>{}: {}</p><p>{}: {} · {}: {}</p></div>",
        lang.pick(
            "RECALLED — do not sell or consume this product",
            "已召回 — 请勿销售或食用本产品"
        ),
        lang.pick(
            "This batch, or a batch it was made from, has been recalled.",
            "该批次或其原料批次已被召回。"
        ),
        lang.pick("Reason", "原因"),
        esc(&text(&recall["reason"])),
        lang.pick("Ordered by", "召回方"),
        esc(&by),
        lang.pick("on", "时间"),
        esc(&time(&recall["time"], None)),
    ));
}

fn verdict_banner(lang: Lang, verdict: Verdict, detail: &str) -> String {
    let (class, id, title, what) = match verdict {
        Verdict::Genuine => (
            "ok",
            "genuine",
            lang.pick("Genuine code", "正品码"),
            lang.pick(
                "Signed by the brand's batch key registered on the ledger.",
                "由品牌方在账本上登记的批次密钥签发。",
            ),
        ),
        Verdict::PossibleCounterfeit => (
            "fake",
            "counterfeit",
            lang.pick(
                "POSSIBLE COUNTERFEIT — this code looks copied",
                "疑似假冒 — 此码可能被复制",
            ),
            lang.pick(
                "The code is genuine, but it was already claimed, or scanned in another place, or too many times.",
                "此码签名有效，但已被认领、在其他地点被扫描或扫描次数过多。",
            ),
        ),
        Verdict::Forged => (
            "fake",
            "counterfeit",
            lang.pick(
                "FORGED CODE — not issued by the brand",
                "伪造码 — 并非品牌方签发",
            ),
            lang.pick(
                "Its signature is not valid. Do not trust this product.",
                "签名无效。请勿信任此产品。",
            ),
        ),
        Verdict::Invalid => (
            "fake",
            "counterfeit",
            lang.pick(
                "INVALID CODE — this serial was never part of the batch",
                "无效码 — 该序列号不属于此批次",
            ),
            lang.pick(
                "Treat the product as counterfeit.",
                "请将此产品视为假冒。",
            ),
        ),
        Verdict::Unknown => (
            "warn",
            "unknown",
            lang.pick("UNKNOWN PRODUCT", "未知产品"),
            lang.pick(
                "The ledger has no such batch, or no code key for it. Treat the product as suspect.",
                "账本上没有该批次或其密钥。请谨慎对待此产品。",
            ),
        ),
        Verdict::Malformed => (
            "warn",
            "malformed",
            lang.pick("NOT A QCSS CODE", "不是 QCSS 产品码"),
            lang.pick(
                "This link is not a valid unit code.",
                "此链接不是有效的产品码。",
            ),
        ),
    };
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!("<p class=\"muted\">{}</p>", esc(detail))
    };
    format!(
        "<div class=\"banner {class}\" id=\"{id}\" role=\"status\"><h1>{title}</h1><p>{what}</p>{detail}</div>"
    )
}

fn row(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!("<dt>{label}</dt><dd>{}</dd>", esc(value)));
}

/// CBV steps (and QCSS's own) by name.
pub(crate) fn step_name(lang: Lang, step: &str) -> String {
    let zh = match step {
        "commissioning" => "投产登记",
        "harvesting" => "采收",
        "washing" => "清洗",
        "pressing" => "压榨",
        "blending" => "调配",
        "sterilising" => "杀菌",
        "filling" => "灌装",
        "bottling" => "装瓶",
        "labelling" => "贴标",
        "cooling" => "冷却",
        "packing" => "装箱",
        "unpacking" => "拆箱",
        "shipping" => "发货",
        "receiving" => "收货",
        "storing" => "仓储",
        "transporting" => "运输",
        "inspecting" => "检验",
        "sampling" => "抽样",
        "sensor_reporting" => "传感器记录",
        "holding" => "扣留",
        "retail_selling" => "零售",
        "decommissioning" => "注销",
        "destroying" => "销毁",
        "transforming" => "加工转化",
        _ => "",
    };
    match lang {
        Lang::Zh if !zh.is_empty() => zh.to_owned(),
        _ => step.replace('_', " "),
    }
}

fn disposition_name(lang: Lang, d: &str) -> String {
    let zh = match d {
        "active" => "有效",
        "in_progress" => "进行中",
        "in_transit" => "运输中",
        "conformant" => "合格",
        "non_conformant" => "不合格",
        "recalled" => "已召回",
        "retail_sold" => "已售出",
        "expired" => "已过期",
        "damaged" => "已损坏",
        "destroyed" => "已销毁",
        "stolen" => "被盗",
        _ => "",
    };
    match lang {
        Lang::Zh if !zh.is_empty() => zh.to_owned(),
        _ => d.replace('_', " "),
    }
}

fn product_card(lang: Lang, out: &mut String, v: &Value) {
    let (p, b, permit) = (&v["product"], &v["batch"], &v["permit"]);
    out.push_str(&format!(
        "<section class=\"card\" id=\"product\"><h2>{}</h2><dl>",
        lang.pick("Product", "产品")
    ));
    row(out, lang.pick("Name", "名称"), &text(&p["name"]));
    row(out, "GTIN", &text(&p["gtin"]));
    row(out, lang.pick("Category", "类别"), &text(&p["category"]));
    row(out, lang.pick("Producer", "生产企业"), &text(&p["owner"]));
    if let Some(u) = v["unit"]["id"].as_str() {
        row(out, lang.pick("Unit", "单品"), u);
    }
    out.push_str("</dl></section>");

    out.push_str(&format!(
        "<section class=\"card\" id=\"batch\"><h2>{}</h2><dl>",
        lang.pick("Batch", "批次")
    ));
    row(out, lang.pick("Lot", "批号"), &text(&b["lot"]));
    row(
        out,
        lang.pick("Quantity", "数量"),
        &format!("{} {}", text(&b["quantity"]), text(&b["uom"])),
    );
    row(
        out,
        lang.pick("Produced", "生产日期"),
        &text(&b["production_date"]),
    );
    row(out, lang.pick("Site", "产地"), &text(&b["site"]));
    row(out, lang.pick("Held by", "持有方"), &text(&b["custodian"]));
    let conformance = match b["conformance"].as_str() {
        Some(c) => disposition_name(lang, c),
        None => lang.pick("not inspected", "未检验").to_owned(),
    };
    row(out, lang.pick("Quality", "质量"), &conformance);
    if let Some(d) = b["disposition"].as_str() {
        row(out, lang.pick("Status", "状态"), &disposition_name(lang, d));
    }
    out.push_str("</dl></section>");

    let status = text(&permit["status"]);
    let expired = permit["expired"].as_bool() == Some(true);
    let in_force = status == "active" && !expired;
    let status_text = match (lang, status.as_str()) {
        (Lang::Zh, "active") => "有效".to_owned(),
        (Lang::Zh, "suspended") => "已暂停".to_owned(),
        (Lang::Zh, "rejected") => "已驳回".to_owned(),
        (Lang::Zh, "applied") => "申请中".to_owned(),
        (Lang::Zh, "none") => "无".to_owned(),
        (_, s) => s.to_owned(),
    };
    out.push_str(&format!(
        "<section class=\"card\" id=\"permit\"><h2>{}</h2><p class=\"{}\">{} — {}{}</p>",
        lang.pick("On-chain permit", "上链许可"),
        if in_force { "pass" } else { "fail" },
        esc(&text(&permit["msp"])),
        esc(&status_text),
        if expired {
            lang.pick(" (EXPIRED)", "（已过期）")
        } else {
            ""
        },
    ));
    if !permit["valid_until"].is_null() {
        out.push_str(&format!(
            "<p class=\"muted\">{} {}</p>",
            lang.pick("Valid until", "有效期至"),
            esc(&time(&permit["valid_until"], None))
        ));
    }
    if !in_force {
        out.push_str(&format!(
            "<p class=\"fail\">{}</p>",
            lang.pick(
                "The producer's on-chain permit is not in force.",
                "生产企业的上链许可当前无效。"
            )
        ));
    }
    out.push_str("</section>");
}

fn scan_line(lang: Lang, s: &Value) -> String {
    format!(
        "{} · {} {}",
        time(&s["time"], None),
        lang.pick("in", "地点"),
        text(&s["location"])
    )
}

fn scans_card(lang: Lang, out: &mut String, unit: &Value) {
    if !unit.is_object() {
        return;
    }
    let n = unit["scans"].as_u64().unwrap_or(0);
    out.push_str(&format!(
        "<section class=\"card\" id=\"scans\"><h2>{}</h2><p id=\"scan-count\">{}</p><dl>",
        lang.pick("Scans", "扫码记录"),
        match lang {
            Lang::En => format!("Scanned {n} time(s) before"),
            Lang::Zh => format!("此前已被扫描 {n} 次"),
        }
    ));
    if unit["first_scan"].is_object() {
        row(
            out,
            lang.pick("First scan", "首次扫描"),
            &scan_line(lang, &unit["first_scan"]),
        );
    }
    if unit["last_scan"].is_object() {
        row(
            out,
            lang.pick("Last scan", "最近扫描"),
            &scan_line(lang, &unit["last_scan"]),
        );
    }
    if unit["claimed"].is_object() {
        row(
            out,
            lang.pick("Claimed (sold)", "已认领（售出）"),
            &scan_line(lang, &unit["claimed"]),
        );
    }
    out.push_str("</dl>");
    if let Some(ws) = unit["clone_warnings"].as_array().filter(|w| !w.is_empty()) {
        out.push_str("<ul class=\"fail\">");
        for w in ws {
            out.push_str(&format!("<li>{}</li>", esc(&text(w))));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
}

fn event_item(lang: Lang, e: &Value) -> String {
    let mut s = format!(
        "<li><strong>{}</strong> <span class=\"muted\">{}</span><br>",
        esc(&step_name(lang, e["biz_step"].as_str().unwrap_or("?"))),
        esc(&time(
            &e["event_time"],
            e["event_time_zone_offset"].as_str()
        )),
    );
    s.push_str(&format!(
        "{} <span class=\"actor\">{}</span>",
        lang.pick("by", "操作方"),
        esc(&text(&e["actor"]))
    ));
    let place: Vec<String> = [&e["read_point"], &e["biz_location"]]
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if !place.is_empty() {
        s.push_str(&format!(
            " · {} <span class=\"place\">{}</span>",
            lang.pick("at", "地点"),
            esc(&place.join(", "))
        ));
    }
    if e["source"].is_string() || e["destination"].is_string() {
        s.push_str(&format!(
            " · {} → {}",
            esc(e["source"].as_str().unwrap_or("?")),
            esc(e["destination"].as_str().unwrap_or("?"))
        ));
    }
    if let Some(d) = e["disposition"].as_str() {
        s.push_str(&format!(" · {}", esc(&disposition_name(lang, d))));
    }
    if let Some(inputs) = e["inputs"].as_array().filter(|a| !a.is_empty()) {
        let ins: Vec<String> = inputs
            .iter()
            .map(|q| format!("{} ×{}", text(&q["batch"]), text(&q["quantity"])))
            .collect();
        s.push_str(&format!(
            "<br><span class=\"muted\">{} {}</span>",
            lang.pick("made from", "原料"),
            esc(&ins.join(" + "))
        ));
    }
    if let Some(sensors) = e["sensors"].as_array().filter(|a| !a.is_empty()) {
        let rs: Vec<String> = sensors
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    text(&r["type"]),
                    text(&r["value"]),
                    text(&r["unit"])
                )
            })
            .collect();
        s.push_str(&format!(
            "<br><span class=\"muted\">{}</span>",
            esc(&rs.join(", "))
        ));
    }
    if let Some(n) = e["attachments"].as_array().map(Vec::len).filter(|n| *n > 0) {
        s.push_str(&format!(
            " <span class=\"tag\">{n} {}</span>",
            lang.pick("file(s)", "个附件")
        ));
    }
    s.push_str("</li>");
    s
}

fn timeline_card(lang: Lang, out: &mut String, timeline: &Value) {
    let events = timeline.as_array().map(Vec::as_slice).unwrap_or(&[]);
    out.push_str(&format!(
        "<section class=\"card\" id=\"timeline\"><h2>{} ({})</h2>",
        lang.pick("History", "溯源时间线"),
        events.len()
    ));
    if events.is_empty() {
        out.push_str(&format!(
            "<p class=\"muted\">{}</p>",
            lang.pick("none", "无")
        ));
    } else {
        out.push_str("<ol class=\"timeline\">");
        for e in events {
            out.push_str(&event_item(lang, e));
        }
        out.push_str("</ol>");
    }
    out.push_str("</section>");
}

fn inspections_card(lang: Lang, out: &mut String, inspections: &Value) {
    let items = inspections.as_array().map(Vec::as_slice).unwrap_or(&[]);
    out.push_str(&format!(
        "<section class=\"card\" id=\"inspections\"><h2>{} ({})</h2>",
        lang.pick("Inspections", "检验报告"),
        items.len()
    ));
    if items.is_empty() {
        out.push_str(&format!(
            "<p class=\"muted\">{}</p>",
            lang.pick("none", "无")
        ));
    }
    for i in items {
        let pass = i["result"] == "pass";
        out.push_str(&format!(
            "<p><span class=\"{}\">{}</span> · {} {} · {} · {}</p>",
            if pass { "pass" } else { "fail" },
            if pass {
                lang.pick("PASS", "合格")
            } else {
                lang.pick("FAIL", "不合格")
            },
            lang.pick("lab", "检测机构"),
            esc(&text(&i["lab"])),
            esc(&text(&i["standard"])),
            esc(&time(&i["inspected_at"], None)),
        ));
        if let Some(ms) = i["measurements"].as_array().filter(|m| !m.is_empty()) {
            out.push_str("<table><tbody>");
            for m in ms {
                let bounds = match (m["min"].as_f64(), m["max"].as_f64()) {
                    (Some(lo), Some(hi)) => format!("{lo} – {hi}"),
                    (Some(lo), None) => format!("≥ {lo}"),
                    (None, Some(hi)) => format!("≤ {hi}"),
                    (None, None) => String::new(),
                };
                out.push_str(&format!(
                    "<tr><td>{}</td><td>{} {}</td><td class=\"muted\">{}</td></tr>",
                    esc(&text(&m["name"])),
                    esc(&text(&m["value"])),
                    esc(&text(&m["unit"])),
                    esc(&bounds)
                ));
            }
            out.push_str("</tbody></table>");
        }
        out.push_str(&format!(
            "<p class=\"muted mono\">{} {}</p>",
            lang.pick("report SHA-256", "报告 SHA-256"),
            esc(&text(&i["report_sha256"]))
        ));
    }
    out.push_str("</section>");
}

fn alerts_card(lang: Lang, out: &mut String, alerts: &Value) {
    let items = alerts.as_array().map(Vec::as_slice).unwrap_or(&[]);
    out.push_str(&format!(
        "<section class=\"card\" id=\"alerts\"><h2>{} ({})</h2>",
        lang.pick("IoT alerts", "物联网告警"),
        items.len()
    ));
    if items.is_empty() {
        out.push_str(&format!(
            "<p class=\"muted\">{}</p>",
            lang.pick(
                "No sensor reading outside its limits.",
                "没有超出限值的传感器读数。"
            )
        ));
    }
    for a in items {
        let (r, l) = (&a["reading"], &a["limit"]);
        out.push_str(&format!(
            "<p class=\"fail\">{} {} {} · {} {} · {} [{} – {}] · {}</p>",
            esc(&text(&r["type"])),
            esc(&text(&r["value"])),
            esc(&text(&r["unit"])),
            lang.pick("device", "设备"),
            esc(&text(&a["device"])),
            lang.pick("limits", "限值"),
            esc(&l["min"].as_f64().map_or("-".into(), |x| x.to_string())),
            esc(&l["max"].as_f64().map_or("-".into(), |x| x.to_string())),
            esc(&time(&r["time"], None)),
        ));
    }
    out.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn digital_link_paths() {
        assert_eq!(
            LinkTarget::parse("/01/06901234560022/10/LJ2026A/21/5"),
            Some(LinkTarget::Unit {
                gtin: "06901234560022".into(),
                lot: "LJ2026A".into(),
                serial: "5".into()
            })
        );
        assert_eq!(
            LinkTarget::parse("/01/06901234560022/10/LJ2026A"),
            Some(LinkTarget::Lot {
                gtin: "06901234560022".into(),
                lot: "LJ2026A".into()
            })
        );
        assert_eq!(LinkTarget::parse("/01/x/21/5"), None);
        assert_eq!(LinkTarget::parse("/explorer"), None);
    }

    fn report() -> Value {
        serde_json::json!({
            "recall": {"origin": "g/B", "reason": "sediment <found>", "by": "RegulatorMSP", "by_regulator": true, "time": 0, "tx_id": "t"},
            "counterfeit_warning": null,
            "target": "g/B/3",
            "product": {"name": "Loquat juice 330 ml", "gtin": "g", "category": "beverage", "owner": "ProducerMSP"},
            "batch": {"lot": "B", "quantity": 24, "uom": "H87", "custodian": "ProducerMSP"},
            "permit": {"msp": "ProducerMSP", "status": "active", "valid_until": 4_000_000_000i64, "expired": false},
            "unit": {"id": "g/B/3", "scans": 2, "first_scan": {"time": 0, "location": "Hangzhou", "msp": "X", "tx_id": "t"}, "clone_warnings": []},
            "timeline": [{"biz_step": "sterilising", "actor": "ProducerMSP", "event_time": 0, "read_point": "line 1"}],
            "inspections": [{"result": "pass", "lab": "LabMSP", "standard": "GB 7101", "measurements": []}],
            "alerts": []
        })
    }

    #[test]
    fn recall_comes_first_and_text_is_escaped() {
        let (title, html) = render(
            Lang::En,
            &Answer::Json(Arc::new(report())),
            Some(Verdict::Genuine),
        );
        assert_eq!(title, "Loquat juice 330 ml");
        let recall = html.find("id=\"recall\"").unwrap();
        assert!(recall < html.find("id=\"genuine\"").unwrap());
        assert!(html.contains("sediment &lt;found&gt;"));
        assert!(html.contains("Scanned 2 time(s) before"));
        assert!(html.contains("sterilising") && html.contains("line 1"));
        let (_, zh) = render(Lang::Zh, &Answer::Json(Arc::new(report())), None);
        assert!(zh.contains("已召回") && zh.contains("杀菌"), "{zh}");
        assert!(!zh.contains("id=\"genuine\""), "no verdict for a lot");
    }

    #[test]
    fn refusals_render_their_verdict() {
        let (_, html) = render(
            Lang::En,
            &Answer::Refused("counterfeit code: the signature is not valid for batch g/B".into()),
            Some(Verdict::Forged),
        );
        assert!(html.contains("FORGED CODE"), "{html}");
        assert!(html.contains("id=\"counterfeit\""));
    }
}
