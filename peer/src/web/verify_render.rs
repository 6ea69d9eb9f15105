//! The verify page's body (`verify.rs` fetches, this renders): the recall
//! banner, the verdict with its reasons, the product, batch and permit
//! card, scans, the timeline of events, inspections and IoT alerts, each in
//! the reader's language, with organisations by display name, quantities in
//! words and times in a named zone.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::web::html::{Lang, date, esc, text, when};
use crate::web::query::{Answer, Verdict};
use crate::web::units;
use crate::web::verify::{EventAnchors, OrgNames, PublicFiles, event_tx, size_text};

/// Who the page speaks to, and what it knows besides the contract's answer.
struct Reader<'a> {
    lang: Lang,
    names: &'a OrgNames,
    /// Units of measure by batch id (the batch shown, its inputs).
    units: &'a BTreeMap<String, String>,
    /// Which events are anchored on the public chain.
    anchors: &'a EventAnchors,
    /// Which referenced files this peer serves.
    files: &'a PublicFiles,
    /// The zone of times that record none (scans, recall, inspections):
    /// the batch's first event's, so they read like its events.
    zone: Option<String>,
}

impl Reader<'_> {
    /// A link to the public file with content hash `sha256`, marked as
    /// matching the ledger, or `None` when this peer does not serve one.
    fn file_link(&self, sha256: &str, label: &str) -> Option<String> {
        let (media, size) = self.files.found.get(sha256)?;
        Some(format!(
            "<a href=\"/files/sha256/{}\">{}</a> <span class=\"tag VALID\" title=\"SHA-256 {}\">✓ {}</span> <span class=\"muted\">{} · {}</span>",
            esc(sha256),
            esc(label),
            esc(sha256),
            self.pick("hash verified", "哈希已验证"),
            esc(media),
            size_text(*size)
        ))
    }

    fn pick<'s>(&self, en: &'s str, zh: &'s str) -> &'s str {
        self.lang.pick(en, zh)
    }

    /// An organisation (an MSP id in the answer) by its display name.
    fn org(&self, msp: &Value) -> String {
        match msp.as_str() {
            Some(m) => self.names.name(self.lang, m),
            None => "-".into(),
        }
    }

    /// A time that records no zone of its own.
    fn at(&self, secs: &Value) -> String {
        when(self.lang, secs, self.zone.as_deref())
    }
}

/// The zone of the first timeline event that records a valid one.
fn home_zone(v: &Value) -> Option<String> {
    v["timeline"]
        .as_array()?
        .iter()
        .filter_map(|e| e["event_time_zone_offset"].as_str())
        .find(|o| qcss_network::clock::parse_offset(o).is_some())
        .map(str::to_owned)
}

/// "Scanned once before", "Scanned 3 times before"; "此前已扫描 3 次".
pub(crate) fn scanned_before(lang: Lang, n: u64) -> String {
    match (lang, n) {
        (Lang::En, 0) => "Not scanned before".into(),
        (Lang::En, 1) => "Scanned once before".into(),
        (Lang::En, 2) => "Scanned twice before".into(),
        (Lang::En, n) => format!("Scanned {n} times before"),
        (Lang::Zh, 0) => "此前未被扫描过".into(),
        (Lang::Zh, n) => format!("此前已扫描 {n} 次"),
    }
}

/// "1 file", "3 files"; "3 个附件".
pub(crate) fn files(lang: Lang, n: usize) -> String {
    match (lang, n) {
        (Lang::En, 1) => "1 file".into(),
        (Lang::En, n) => format!("{n} files"),
        (Lang::Zh, n) => format!("{n} 个附件"),
    }
}

/// The page body for a `trace` answer: (title, HTML). A refusal is shown
/// by its verdict alone: the contract's (English) message is not.
// Every input a page is made of, each looked up by `page_for` (tests pass
// their own): a struct of them would only be unpacked again here.
#[allow(clippy::too_many_arguments)]
pub(crate) fn render(
    lang: Lang,
    names: &OrgNames,
    units: &BTreeMap<String, String>,
    anchors: &EventAnchors,
    files: &PublicFiles,
    answer: &Answer,
    verdict: Option<Verdict>,
    index_card: &str,
) -> (String, String) {
    let v = match answer {
        Answer::Json(v) => v,
        Answer::Refused(message) => {
            let verdict = verdict.unwrap_or(Verdict::of_refusal(message));
            return ("-".into(), verdict_banner(lang, verdict, &[]));
        }
    };
    let r = Reader {
        lang,
        names,
        units,
        anchors,
        files,
        zone: home_zone(v),
    };
    let mut out = String::new();
    recall_banner(&r, &mut out, &v["recall"]);
    if let Some(verdict) = verdict {
        out.push_str(&verdict_banner(
            lang,
            verdict,
            &clone_reasons(&r, &v["unit"]),
        ));
    }
    product_card(&r, &mut out, v);
    out.push_str(index_card);
    scans_card(&r, &mut out, &v["unit"]);
    evaluation_card(&r, &mut out, &v["evaluation"]);
    timeline_card(&r, &mut out, &v["timeline"]);
    inspections_card(&r, &mut out, &v["inspections"]);
    alerts_card(&r, &mut out, &v["alerts"]);
    (text(&v["product"]["name"]), out)
}

/// Why a code looks copied, in the reader's language: one line per kind of
/// the contract's clone warnings (their first word — `already` claimed,
/// `first` scanned elsewhere, `scanned` too often — is the kind), told
/// from the unit's own scan records, never from the warning's text.
fn clone_reasons(r: &Reader, unit: &Value) -> Vec<String> {
    let warnings = unit["clone_warnings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut out: Vec<String> = Vec::new();
    for w in warnings.iter().filter_map(Value::as_str) {
        let reason = match w.split_whitespace().next() {
            Some("already") => {
                let c = &unit["claimed"];
                match r.lang {
                    Lang::En => format!(
                        "Already claimed as sold on {} in {}.",
                        r.at(&c["time"]),
                        text(&c["location"])
                    ),
                    Lang::Zh => format!(
                        "已于 {} 在{}被认领（售出）。",
                        r.at(&c["time"]),
                        text(&c["location"])
                    ),
                }
            }
            Some("first") => {
                let first = text(&unit["first_scan"]["location"]);
                let last = text(&unit["last_scan"]["location"]);
                match (r.lang, first == last) {
                    (Lang::En, false) => format!("First scanned in {first}, then in {last}."),
                    (Lang::Zh, false) => format!("首次在{first}扫描，之后在{last}扫描。"),
                    (Lang::En, true) => {
                        format!("Scanned in more than one place, first in {first}.")
                    }
                    (Lang::Zh, true) => format!("曾在多个地点被扫描，首次在{first}。"),
                }
            }
            Some("scanned") => {
                let n = unit["scans"].as_u64().unwrap_or(0);
                match r.lang {
                    Lang::En => format!("Scanned {n} times: more often than one product is."),
                    Lang::Zh => format!("已扫描 {n} 次，超出单件商品的正常次数。"),
                }
            }
            _ => r
                .pick("Other signs of copying.", "存在其他复制迹象。")
                .to_owned(),
        };
        if !out.contains(&reason) {
            out.push(reason);
        }
    }
    out
}

fn recall_banner(r: &Reader, out: &mut String, recall: &Value) {
    if recall.is_null() {
        return;
    }
    let by = if recall["by_regulator"].as_bool() == Some(true) {
        format!(
            "{} ({})",
            r.org(&recall["by"]),
            r.pick("regulator", "监管部门")
        )
    } else {
        r.org(&recall["by"])
    };
    out.push_str(&format!(
        "<div class=\"banner recall\" id=\"recall\" role=\"alert\"><h1>{}</h1>\
<p>{}</p><p>{}: {}</p><p>{}: {} · {}: {}</p></div>",
        r.pick(
            "RECALLED — do not sell or consume this product",
            "已召回 — 请勿销售或食用本产品"
        ),
        r.pick(
            "This batch, or a batch it was made from, has been recalled.",
            "该批次或其原料批次已被召回。"
        ),
        r.pick("Reason", "原因"),
        esc(&text(&recall["reason"])),
        r.pick("Ordered by", "召回方"),
        esc(&by),
        r.pick("on", "时间"),
        esc(&r.at(&recall["time"])),
    ));
}

/// The verdict banner, keyed on the verdict alone (its code is stable;
/// the contract's wording is not shown); `reasons` are listed under it.
pub(super) fn verdict_banner(lang: Lang, verdict: Verdict, reasons: &[String]) -> String {
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
                "Its signature is not valid: the code was made up or altered. Do not trust this product.",
                "签名无效：此码系伪造或被篡改。请勿信任此产品。",
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
    let reasons = if reasons.is_empty() {
        String::new()
    } else {
        let items: String = reasons
            .iter()
            .map(|x| format!("<li>{}</li>", esc(x)))
            .collect();
        format!("<ul class=\"reasons\">{items}</ul>")
    };
    format!(
        "<div class=\"banner {class}\" id=\"{id}\" data-verdict=\"{}\" role=\"status\"><h1>{title}</h1><p>{what}</p>{reasons}</div>",
        verdict.as_str()
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

/// A batch quantity in its unit: `24 pieces`, `600 kg`; the number alone
/// when the unit is not known.
fn amount(r: &Reader, n: &Value, uom: Option<&str>) -> String {
    match (n.as_u64(), uom) {
        (Some(n), Some(u)) => units::quantity(r.lang, n, u),
        _ => text(n),
    }
}

fn product_card(r: &Reader, out: &mut String, v: &Value) {
    let (p, b, permit) = (&v["product"], &v["batch"], &v["permit"]);
    out.push_str(&format!(
        "<section class=\"card\" id=\"product\"><h2>{}</h2><dl>",
        r.pick("Product", "产品")
    ));
    row(out, r.pick("Name", "名称"), &text(&p["name"]));
    row(out, "GTIN", &text(&p["gtin"]));
    row(out, r.pick("Category", "类别"), &text(&p["category"]));
    row(out, r.pick("Producer", "生产企业"), &r.org(&p["owner"]));
    if let Some(u) = v["unit"]["id"].as_str() {
        row(out, r.pick("Unit", "单品"), u);
    }
    out.push_str("</dl></section>");

    out.push_str(&format!(
        "<section class=\"card\" id=\"batch\"><h2>{}</h2><dl>",
        r.pick("Batch", "批次")
    ));
    row(out, r.pick("Lot", "批号"), &text(&b["lot"]));
    row(
        out,
        r.pick("Quantity", "数量"),
        &amount(r, &b["quantity"], b["uom"].as_str()),
    );
    let produced = b["production_date"]
        .as_str()
        .map_or_else(|| "-".to_owned(), |d| date(r.lang, d));
    row(out, r.pick("Produced", "生产日期"), &produced);
    row(out, r.pick("Site", "产地"), &text(&b["site"]));
    row(out, r.pick("Held by", "持有方"), &r.org(&b["custodian"]));
    let conformance = match b["conformance"].as_str() {
        Some(c) => disposition_name(r.lang, c),
        None => r.pick("not inspected", "未检验").to_owned(),
    };
    row(out, r.pick("Quality", "质量"), &conformance);
    if let Some(d) = b["disposition"].as_str() {
        row(out, r.pick("Status", "状态"), &disposition_name(r.lang, d));
    }
    out.push_str("</dl></section>");

    let status = text(&permit["status"]);
    let expired = permit["expired"].as_bool() == Some(true);
    let in_force = status == "active" && !expired;
    let status_text = match (r.lang, status.as_str()) {
        (Lang::Zh, "active") => "有效".to_owned(),
        (Lang::Zh, "suspended") => "已暂停".to_owned(),
        (Lang::Zh, "rejected") => "已驳回".to_owned(),
        (Lang::Zh, "applied") => "申请中".to_owned(),
        (Lang::Zh, "none") => "无".to_owned(),
        (_, s) => s.to_owned(),
    };
    out.push_str(&format!(
        "<section class=\"card\" id=\"permit\"><h2>{}</h2><p class=\"{}\">{} — {}{}</p>",
        r.pick("On-chain permit", "上链许可"),
        if in_force { "pass" } else { "fail" },
        esc(&r.org(&permit["msp"])),
        esc(&status_text),
        if expired {
            r.pick(" (EXPIRED)", "（已过期）")
        } else {
            ""
        },
    ));
    if !permit["valid_until"].is_null() {
        out.push_str(&format!(
            "<p class=\"muted\">{} {}</p>",
            r.pick("Valid until", "有效期至"),
            esc(&r.at(&permit["valid_until"]))
        ));
    }
    // The approved certificate (ISO 9001, HACCP, …): linked when this peer
    // serves the document, else its hash, which the ledger holds.
    let cert = &permit["certificate"];
    if let Some(sha) = cert["sha256"].as_str() {
        let label = format!("{} · {}", text(&cert["issuer"]), text(&cert["scope"]));
        let shown = r.file_link(sha, &label).unwrap_or_else(|| {
            format!(
                "{} <span class=\"muted mono\">SHA-256 {}</span>",
                esc(&label),
                esc(sha)
            )
        });
        out.push_str(&format!(
            "<p>{}: {shown}</p>",
            r.pick("Certificate", "资质证书")
        ));
    }
    if !in_force {
        out.push_str(&format!(
            "<p class=\"fail\">{}</p>",
            r.pick(
                "The producer's on-chain permit is not in force.",
                "生产企业的上链许可当前无效。"
            )
        ));
    }
    out.push_str("</section>");
}

fn scan_line(r: &Reader, s: &Value) -> String {
    match r.lang {
        Lang::En => format!("{} in {}", r.at(&s["time"]), text(&s["location"])),
        Lang::Zh => format!("{} · {}", r.at(&s["time"]), text(&s["location"])),
    }
}

fn scans_card(r: &Reader, out: &mut String, unit: &Value) {
    if !unit.is_object() {
        return;
    }
    let n = unit["scans"].as_u64().unwrap_or(0);
    out.push_str(&format!(
        "<section class=\"card\" id=\"scans\"><h2>{}</h2><p id=\"scan-count\">{}</p><dl>",
        r.pick("Scans", "扫码记录"),
        esc(&scanned_before(r.lang, n))
    ));
    if unit["first_scan"].is_object() {
        row(
            out,
            r.pick("First scan", "首次扫描"),
            &scan_line(r, &unit["first_scan"]),
        );
    }
    if unit["last_scan"].is_object() && n > 1 {
        row(
            out,
            r.pick("Last scan", "最近扫描"),
            &scan_line(r, &unit["last_scan"]),
        );
    }
    if unit["claimed"].is_object() {
        row(
            out,
            r.pick("Claimed (sold)", "已认领（售出）"),
            &scan_line(r, &unit["claimed"]),
        );
    }
    out.push_str("</dl></section>");
}

/// The unit's consumer evaluation (UCES), as anyone may see it: its
/// status, scores and — once validators made it valid — its photos, each
/// shown and marked "hash verified" when this peer serves it as a public
/// file, else shown as its hash.
fn evaluation_card(r: &Reader, out: &mut String, e: &Value) {
    if !e.is_object() {
        return;
    }
    let (yes, no) = (
        e["approvals"].as_u64().unwrap_or(0),
        e["rejections"].as_u64().unwrap_or(0),
    );
    let status = match (e["status"].as_str(), r.lang) {
        (Some("valid"), Lang::En) => format!(
            "<span class=\"tag VALID\">✓ approved by validators</span> ({yes} for, {no} against)"
        ),
        (Some("valid"), Lang::Zh) => {
            format!("<span class=\"tag VALID\">✓ 已通过验证人审核</span>（赞成 {yes}，反对 {no}）")
        }
        (Some("rejected"), Lang::En) => format!(
            "<span class=\"tag bad\">rejected by validators</span> ({yes} for, {no} against)"
        ),
        (Some("rejected"), Lang::Zh) => {
            format!("<span class=\"tag bad\">未通过验证人审核</span>（赞成 {yes}，反对 {no}）")
        }
        (_, Lang::En) => "<span class=\"tag\">awaiting validators</span>".to_owned(),
        (_, Lang::Zh) => "<span class=\"tag\">等待验证人审核</span>".to_owned(),
    };
    out.push_str(&format!(
        "<section class=\"card\" id=\"evaluation\"><h2>{}</h2><p>{status} <span class=\"muted when\">{}</span></p><dl>",
        r.pick("Consumer evaluation", "消费者评价"),
        esc(&r.at(&e["submitted_at"])),
    ));
    for (field, en, zh) in [
        ("overall", "Overall", "总体"),
        ("quality", "Quality", "品质"),
        ("performance", "Performance", "性能"),
        ("authenticity", "Authenticity", "真实性"),
    ] {
        if let Some(n) = e["scores"][field].as_u64().filter(|n| (1..=5).contains(n)) {
            let stars = format!("{}{}", "★".repeat(n as usize), "☆".repeat(5 - n as usize));
            row(out, r.pick(en, zh), &format!("{stars} {n}/5"));
        }
    }
    out.push_str("</dl>");
    let photos = e["photo_sha256"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for (i, p) in photos.iter().enumerate() {
        let sha = text(p);
        let label = match r.lang {
            Lang::En => format!("photo {}", i + 1),
            Lang::Zh => format!("照片 {}", i + 1),
        };
        let image = r
            .files
            .found
            .get(&sha)
            .is_some_and(|(media, _)| media.starts_with("image/"));
        match r.file_link(&sha, &label) {
            Some(link) if image => out.push_str(&format!(
                "<figure><a href=\"/files/sha256/{sha}\"><img class=\"photo\" src=\"/files/sha256/{sha}\" alt=\"{}\" loading=\"lazy\"></a><figcaption>{link}</figcaption></figure>",
                esc(&label),
                sha = esc(&sha),
            )),
            Some(link) => out.push_str(&format!("<p>{link}</p>")),
            None => out.push_str(&format!(
                "<p class=\"muted mono\">{} SHA-256 {}</p>",
                esc(&label),
                esc(&sha)
            )),
        }
    }
    out.push_str("</section>");
}

fn event_item(r: &Reader, e: &Value) -> String {
    let mut s = format!(
        "<li><strong>{}</strong> <span class=\"muted when\">{}</span><br>",
        esc(&step_name(r.lang, e["biz_step"].as_str().unwrap_or("?"))),
        esc(&when(
            r.lang,
            &e["event_time"],
            e["event_time_zone_offset"].as_str()
        )),
    );
    s.push_str(&format!(
        "{} <span class=\"actor\">{}</span>",
        r.pick("by", "操作方"),
        esc(&r.org(&e["actor"]))
    ));
    let place: Vec<String> = [&e["read_point"], &e["biz_location"]]
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if !place.is_empty() {
        s.push_str(&format!(
            " · {} <span class=\"place\">{}</span>",
            r.pick("at", "地点"),
            esc(&place.join(", "))
        ));
    }
    if e["source"].is_string() || e["destination"].is_string() {
        s.push_str(&format!(
            " · {} → {}",
            esc(&r.org(&e["source"])),
            esc(&r.org(&e["destination"]))
        ));
    }
    if let Some(d) = e["disposition"].as_str() {
        s.push_str(&format!(" · {}", esc(&disposition_name(r.lang, d))));
    }
    if let Some(inputs) = e["inputs"].as_array().filter(|a| !a.is_empty()) {
        let ins: Vec<String> = inputs
            .iter()
            .map(|q| {
                let batch = text(&q["batch"]);
                let uom = r.units.get(&batch).map(String::as_str);
                let n = amount(r, &q["quantity"], uom);
                match (r.lang, uom) {
                    (Lang::En, Some(_)) => format!("{n} of {batch}"),
                    (Lang::Zh, Some(_)) => format!("{batch} {n}"),
                    (_, None) => format!("{batch} ×{n}"),
                }
            })
            .collect();
        s.push_str(&format!(
            "<br><span class=\"muted\">{} {}</span>",
            r.pick("made from", "原料："),
            esc(&ins.join(" + "))
        ));
    }
    if let Some(sensors) = e["sensors"].as_array().filter(|a| !a.is_empty()) {
        let rs: Vec<String> = sensors
            .iter()
            .map(|x| {
                format!(
                    "{} {}",
                    text(&x["type"]),
                    units::measure(r.lang, &text(&x["value"]), &text(&x["unit"]))
                )
            })
            .collect();
        s.push_str(&format!(
            "<br><span class=\"muted\">{}</span>",
            esc(&rs.join(", "))
        ));
    }
    if let Some(n) = e["attachments"].as_array().map(Vec::len).filter(|n| *n > 0) {
        s.push_str(&format!(" <span class=\"tag\">{}</span>", files(r.lang, n)));
        for a in e["attachments"].as_array().into_iter().flatten() {
            let sha = text(&a["sha256"]);
            let name = a["name"].as_str().unwrap_or(r.pick("attachment", "附件"));
            if let Some(link) = r.file_link(&sha, name) {
                s.push_str(&format!("<br>{link}"));
            }
        }
    }
    match (r.anchors.state(e), event_tx(e)) {
        (Some(true), Some(tx)) => s.push_str(&format!(
            " <span class=\"tag anchored\">{} · <a href=\"/api/anchor/proof?id={}\" download>{}</a></span>",
            r.pick("anchored on the public chain", "已锚定在公链"),
            crate::web::http::percent_encode(tx),
            r.pick("proof", "证明文件"),
        )),
        (Some(false), _) => s.push_str(&format!(
            " <span class=\"tag muted not-anchored\">{}</span>",
            r.pick("not yet anchored", "尚未锚定")
        )),
        _ => {}
    }
    s.push_str("</li>");
    s
}

fn timeline_card(r: &Reader, out: &mut String, timeline: &Value) {
    let events = timeline.as_array().map(Vec::as_slice).unwrap_or(&[]);
    out.push_str(&format!(
        "<section class=\"card\" id=\"timeline\"><h2>{} ({})</h2>",
        r.pick("History", "溯源时间线"),
        events.len()
    ));
    if events.is_empty() {
        out.push_str(&format!("<p class=\"muted\">{}</p>", r.pick("none", "无")));
    } else {
        out.push_str("<ol class=\"timeline\">");
        for e in events {
            out.push_str(&event_item(r, e));
        }
        out.push_str("</ol>");
    }
    out.push_str("</section>");
}

fn inspections_card(r: &Reader, out: &mut String, inspections: &Value) {
    let items = inspections.as_array().map(Vec::as_slice).unwrap_or(&[]);
    out.push_str(&format!(
        "<section class=\"card\" id=\"inspections\"><h2>{} ({})</h2>",
        r.pick("Inspections", "检验报告"),
        items.len()
    ));
    if items.is_empty() {
        out.push_str(&format!("<p class=\"muted\">{}</p>", r.pick("none", "无")));
    }
    for i in items {
        let pass = i["result"] == "pass";
        out.push_str(&format!(
            "<p><span class=\"{}\">{}</span> · {} {} · {} · {}</p>",
            if pass { "pass" } else { "fail" },
            if pass {
                r.pick("PASS", "合格")
            } else {
                r.pick("FAIL", "不合格")
            },
            r.pick("lab", "检测机构"),
            esc(&r.org(&i["lab"])),
            esc(&text(&i["standard"])),
            esc(&r.at(&i["inspected_at"])),
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
                    "<tr><td>{}</td><td>{}</td><td class=\"muted\">{}</td></tr>",
                    esc(&text(&m["name"])),
                    esc(&units::measure(
                        r.lang,
                        &text(&m["value"]),
                        &text(&m["unit"])
                    )),
                    esc(&bounds)
                ));
            }
            out.push_str("</tbody></table>");
        }
        let sha = text(&i["report_sha256"]);
        match r.file_link(&sha, r.pick("inspection report", "检验报告")) {
            Some(link) => out.push_str(&format!("<p>{link}</p>")),
            None => out.push_str(&format!(
                "<p class=\"muted mono\">{} {}</p>",
                r.pick("report SHA-256", "报告 SHA-256"),
                esc(&sha)
            )),
        }
    }
    out.push_str("</section>");
}

fn alerts_card(r: &Reader, out: &mut String, alerts: &Value) {
    let items = alerts.as_array().map(Vec::as_slice).unwrap_or(&[]);
    out.push_str(&format!(
        "<section class=\"card\" id=\"alerts\"><h2>{} ({})</h2>",
        r.pick("IoT alerts", "物联网告警"),
        items.len()
    ));
    if items.is_empty() {
        out.push_str(&format!(
            "<p class=\"muted\">{}</p>",
            r.pick(
                "No sensor reading outside its limits.",
                "没有超出限值的传感器读数。"
            )
        ));
    }
    for a in items {
        let (x, l) = (&a["reading"], &a["limit"]);
        let bound = |b: &Value| b.as_f64().map_or("-".into(), |v| v.to_string());
        out.push_str(&format!(
            "<p class=\"fail\">{} {} · {} {} · {} [{} – {}] · {}</p>",
            esc(&text(&x["type"])),
            esc(&units::measure(
                r.lang,
                &text(&x["value"]),
                &text(&x["unit"])
            )),
            r.pick("device", "设备"),
            esc(&text(&a["device"])),
            r.pick("limits", "限值"),
            esc(&bound(&l["min"])),
            esc(&bound(&l["max"])),
            esc(&r.at(&x["time"])),
        ));
    }
    out.push_str("</section>");
}
