//! The page a unit's QR code opens: `/01/{GTIN}/10/{lot}/21/{serial}?8030=…`
//! (GS1 Digital Link). It evaluates the contract's `trace` of the code and
//! renders, in this order: a recall banner, the verdict (genuine, possible
//! counterfeit, forged), product, batch, permit, scans, timeline,
//! inspections, IoT alerts. Server-rendered, no script, phone-first, in
//! Chinese or English, written for a consumer: organisations by their
//! display names from the channel configuration, quantities in words
//! (`units.rs`), every time in a named zone (an event's own, as EPCIS
//! records it), verdicts in the reader's language (never the contract's
//! English error text). Read-only: viewing it records no scan (recording one
//! is a transaction, the consumer app's choice: the contract's `scan`).

use std::collections::{BTreeMap, BTreeSet};

use qcss_network::channel::{ChannelConfig, DisplayName};
use serde_json::Value;

use crate::web::html::{Lang, date, esc, page, text, when};
use crate::web::http::{Request, Response};
use crate::web::query::{Answer, Verdict};
use crate::web::{Web, WebError, units};

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

/// At most this many transformation inputs are looked up (for their unit
/// of measure) per page.
const MAX_INPUT_LOOKUPS: usize = 4;

/// Answers the verify page.
pub(crate) async fn page_for(web: &Web, req: &Request, target: LinkTarget) -> Response {
    let lang = Lang::of(req);
    let names = OrgNames::of(web.peer.channel().config());
    let switch = match req.param("8030") {
        Some(sig) => format!("{}?8030={sig}", req.path),
        None => req.path.clone(),
    };
    let (arg, is_code) = match &target {
        LinkTarget::Unit { .. } => match code_uri(&web.base, &req.path, req) {
            Some(uri) => (uri, true),
            None => {
                let body = verdict_banner(lang, Verdict::Malformed, &[]);
                return Response::html(400, shell(web, &names, lang, &switch, "-", &body));
            }
        },
        LinkTarget::Lot { gtin, lot } => (format!("{gtin}/{lot}"), false),
    };
    match web.querier.evaluate("trace", &arg).await {
        Ok(answer) => {
            let verdict = is_code.then(|| Verdict::of(&answer));
            let status = match (&answer, verdict) {
                (Answer::Json(_), _) => 200,
                (Answer::Refused(m), v) => match v.unwrap_or_else(|| Verdict::of_refusal(m)) {
                    Verdict::Forged | Verdict::Invalid => 200,
                    Verdict::Unknown => 404,
                    _ => 400,
                },
            };
            let units = input_units(web, &answer).await;
            let anchors = EventAnchors::of(web, &answer);
            let index = index_card(web, lang, &answer).await;
            let files = PublicFiles::of(web, &answer).await;
            let (title, body) = render(
                lang, &names, &units, &anchors, &files, &answer, verdict, &index,
            );
            Response::html(status, shell(web, &names, lang, &switch, &title, &body))
        }
        Err(e) => unavailable(web, &names, lang, &switch, &e),
    }
}

/// The product's QCSS index card (nothing when the product has no index
/// yet, UCES is not configured, or the query fails: the trace is what the
/// page is for).
async fn index_card(web: &Web, lang: Lang, answer: &Answer) -> String {
    let Answer::Json(v) = answer else {
        return String::new();
    };
    let Some(gtin) = v["product"]["gtin"].as_str() else {
        return String::new();
    };
    match web.querier.evaluate("index_get", gtin).await {
        Ok(Answer::Json(i)) => crate::web::index_card::card(lang, &i),
        _ => String::new(),
    }
}

/// Most file hashes looked up per page.
const MAX_FILE_LOOKUPS: usize = 64;

/// The files the trace references by content hash (inspection reports,
/// event attachments) that this peer holds as public MDSS files: those are
/// linked (`/files/sha256/{hex}`) and marked as matching the ledger.
#[derive(Debug, Default)]
pub(crate) struct PublicFiles {
    /// SHA-256 (hex) → (media type, size).
    found: BTreeMap<String, (String, u64)>,
}

impl PublicFiles {
    async fn of(web: &Web, answer: &Answer) -> Self {
        let (Some(files), Answer::Json(v)) = (web.files.clone(), answer) else {
            return Self::default();
        };
        let mut wanted = BTreeSet::new();
        for i in v["inspections"].as_array().into_iter().flatten() {
            if let Some(h) = i["report_sha256"].as_str() {
                wanted.insert(h.to_owned());
            }
        }
        for e in v["timeline"].as_array().into_iter().flatten() {
            for a in e["attachments"].as_array().into_iter().flatten() {
                if let Some(h) = a["sha256"].as_str() {
                    wanted.insert(h.to_owned());
                }
            }
        }
        let wanted: Vec<String> = wanted.into_iter().take(MAX_FILE_LOOKUPS).collect();
        let found = tokio::task::spawn_blocking(move || {
            let mut found = BTreeMap::new();
            for h in wanted {
                if let Some(id) = files.public_by_sha256(&h)
                    && let Ok(st) = files.store.stat(&id)
                {
                    found.insert(h, (st.media_type.as_str().to_owned(), st.size));
                }
            }
            found
        })
        .await
        .unwrap_or_default();
        Self { found }
    }

    /// A file entry, for tests.
    #[cfg(test)]
    pub(crate) fn with(sha256: &str, media_type: &str, size: u64) -> Self {
        Self {
            found: BTreeMap::from([(sha256.to_owned(), (media_type.to_owned(), size))]),
        }
    }
}

/// "1.2 MB", "830 KB", "12 B".
fn size_text(n: u64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{} KB", n / 1_000),
        n => format!("{n} B"),
    }
}

/// Most timeline events whose anchoring is looked up per page.
const MAX_ANCHOR_LOOKUPS: usize = 200;

/// Which of the shown events' transactions are in blocks covered by the
/// newest irreversible anchor (each event's id is `{tx_id}:{n}`).
#[derive(Debug, Default)]
pub(crate) struct EventAnchors {
    /// Blocks covered (`0 … covered − 1`); `None` when the peer does not
    /// follow the public chain (then nothing is said per event).
    covered: Option<u64>,
    /// Block of each looked-up transaction.
    blocks: BTreeMap<String, u64>,
}

impl EventAnchors {
    fn of(web: &Web, answer: &Answer) -> Self {
        let Some(a) = web.peer.anchored() else {
            return Self::default();
        };
        let mut blocks = BTreeMap::new();
        if let Answer::Json(v) = answer {
            let events = v["timeline"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            for e in events.iter().take(MAX_ANCHOR_LOOKUPS) {
                if let Some(tx) = event_tx(e)
                    && let Ok(Some(loc)) = web.peer.ledger.tx(tx)
                {
                    blocks.insert(tx.to_owned(), loc.block);
                }
            }
        }
        Self {
            covered: Some(a.irreversible.map_or(0, |i| i.1)),
            blocks,
        }
    }

    /// `Some(true)`: anchored and irreversible; `Some(false)`: not yet;
    /// `None`: unknown (not following the chain, or not looked up).
    fn state(&self, e: &Value) -> Option<bool> {
        let covered = self.covered?;
        let block = self.blocks.get(event_tx(e)?)?;
        Some(*block < covered)
    }
}

/// The transaction an event was recorded in.
fn event_tx(e: &Value) -> Option<&str> {
    e["event_id"].as_str()?.rsplit_once(':').map(|(tx, _)| tx)
}

/// The unit of measure of the batch shown and of the batches its
/// transformations name as inputs (at most [`MAX_INPUT_LOOKUPS`] looked
/// up); a batch that cannot be read is left out.
async fn input_units(web: &Web, answer: &Answer) -> BTreeMap<String, String> {
    let mut units = BTreeMap::new();
    let Answer::Json(v) = answer else {
        return units;
    };
    if let (Some(id), Some(uom)) = (v["batch"]["id"].as_str(), v["batch"]["uom"].as_str()) {
        units.insert(id.to_owned(), uom.to_owned());
    }
    let inputs: BTreeSet<&str> = v["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["inputs"].as_array().into_iter().flatten())
        .filter_map(|q| q["batch"].as_str())
        .filter(|b| !units.contains_key(*b))
        .take(MAX_INPUT_LOOKUPS)
        .collect();
    for id in inputs {
        if let Ok(Answer::Json(b)) = web.querier.evaluate("get_batch", id).await
            && let Some(uom) = b["uom"].as_str()
        {
            units.insert(id.to_owned(), uom.to_owned());
        }
    }
    units
}

fn unavailable(web: &Web, names: &OrgNames, lang: Lang, switch: &str, e: &WebError) -> Response {
    tracing::warn!(error = %e, "verify page: query failed");
    let body = format!(
        "<div class=\"banner warn\" id=\"unavailable\"><h1>{}</h1><p>{}</p></div>",
        lang.pick("The ledger cannot be read right now", "暂时无法读取账本"),
        lang.pick("Please try again in a moment.", "请稍后再试。"),
    );
    Response::html(503, shell(web, names, lang, switch, "-", &body)).with_header("Retry-After", "5")
}

fn shell(web: &Web, names: &OrgNames, lang: Lang, switch: &str, title: &str, body: &str) -> String {
    let peer = names.name(lang, web.peer.signer.msp_id.as_str());
    let mut footer = match lang {
        Lang::En => format!(
            "Checked against the ledger of channel {} at block height {} by a peer of {}. \
Opening this page records nothing on the ledger.",
            esc(web.peer.channel().id()),
            web.peer.height(),
            esc(&peer)
        ),
        Lang::Zh => format!(
            "已由{}的节点在通道 {} 区块高度 {} 上核验。打开本页不会在账本上留下任何记录。",
            esc(&peer),
            esc(web.peer.channel().id()),
            web.peer.height()
        ),
    };
    footer.push(' ');
    footer.push_str(&anchoring_sentence(web, lang));
    let title = if title == "-" {
        lang.pick("Product verification", "产品验证").to_owned()
    } else {
        format!("{title} — {}", lang.pick("verification", "验证"))
    };
    page(lang, &title, switch, body, &footer, false, None)
}

/// One sentence on how far the ledger is fixed on the public QCSS chain
/// (empty when the peer does not follow the chain).
fn anchoring_sentence(web: &Web, lang: Lang) -> String {
    let Some(a) = web.peer.anchored() else {
        return String::new();
    };
    let due = match (a.next_due_secs, lang) {
        (Some(s), Lang::En) => format!(" The next anchor is due in about {s} s."),
        (Some(s), Lang::Zh) => format!("下一次锚定预计约 {s} 秒后。"),
        (None, _) => String::new(),
    };
    match (a.irreversible, lang) {
        (Some((seq, size, public)), Lang::En) => format!(
            "<span id=\"anchored\">Blocks 0–{} of this ledger are anchored on the public QCSS chain \
(anchor {seq}, public block {public}, irreversible): the history shown cannot be rewritten unnoticed. \
Blocks after that are covered by the next anchor.{due}</span>",
            size.saturating_sub(1)
        ),
        (Some((seq, size, public)), Lang::Zh) => format!(
            "<span id=\"anchored\">本账本第 0–{} 号区块已锚定在 QCSS 公链（锚定 {seq}，公链区块 {public}，不可逆），\
所示历史无法被悄然改写；其后的区块将由下一次锚定覆盖。{due}</span>",
            size.saturating_sub(1)
        ),
        (None, Lang::En) => {
            format!("<span id=\"anchored\">Not yet anchored on the public QCSS chain.{due}</span>")
        }
        (None, Lang::Zh) => format!("<span id=\"anchored\">尚未锚定在 QCSS 公链。{due}</span>"),
    }
}

/// Organisations' display names, from the channel configuration.
#[derive(Debug, Default)]
pub(crate) struct OrgNames(BTreeMap<String, DisplayName>);

impl OrgNames {
    pub(crate) fn of(config: &ChannelConfig) -> Self {
        OrgNames(
            config
                .orgs
                .iter()
                .filter_map(|o| Some((o.msp.msp_id.clone(), o.display_name.clone()?)))
                .collect(),
        )
    }

    /// `msp`'s name in `lang`, else in the other language, else the MSP id.
    pub(crate) fn name(&self, lang: Lang, msp: &str) -> String {
        self.0
            .get(msp)
            .and_then(|n| n.pick(lang == Lang::Zh))
            .unwrap_or(msp)
            .to_owned()
    }
}

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
fn verdict_banner(lang: Lang, verdict: Verdict, reasons: &[String]) -> String {
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
            "recall": {"origin": "g/B", "reason": "sediment <found>", "by": "RegulatorMSP", "by_regulator": true, "time": 1_780_273_800, "tx_id": "t"},
            "counterfeit_warning": null,
            "target": "g/B/3",
            "product": {"name": "Loquat juice 330 ml", "gtin": "g", "category": "beverage", "owner": "ProducerMSP"},
            "batch": {"id": "g/B", "lot": "B", "quantity": 24, "uom": "H87", "custodian": "ProducerMSP", "production_date": "2026-06-01"},
            "permit": {"msp": "ProducerMSP", "status": "active", "valid_until": 4_000_000_000i64, "expired": false},
            "unit": {"id": "g/B/3", "scans": 2, "first_scan": {"time": 1_780_273_800, "location": "Hangzhou", "msp": "X", "tx_id": "t"}, "clone_warnings": []},
            "timeline": [
                {"biz_step": "commissioning", "actor": "ProducerMSP", "event_time": 1_780_273_800,
                 "event_time_zone_offset": "+08:00", "inputs": [{"batch": "h/H1", "quantity": 600}]},
                {"biz_step": "sterilising", "actor": "ProducerMSP", "event_time": 1_780_273_800,
                 "event_time_zone_offset": "-03:00", "read_point": "line 1",
                 "attachments": [{"sha256": "a"}]},
                {"biz_step": "shipping", "actor": "ProducerMSP", "source": "ProducerMSP",
                 "destination": "NamelessMSP", "event_time": 0, "event_time_zone_offset": "+00:00"}
            ],
            "inspections": [{"result": "pass", "lab": "LabMSP", "standard": "GB 7101", "inspected_at": 1_780_273_800,
                             "measurements": [{"name": "sugar", "value": 9.8, "unit": "g/100ml"}]}],
            "alerts": []
        })
    }

    fn names() -> OrgNames {
        let both = |en: &str, zh: &str| DisplayName {
            en: Some(en.into()),
            zh: Some(zh.into()),
        };
        OrgNames(BTreeMap::from([
            ("ProducerMSP".into(), both("Loquat Co.", "枇杷公司")),
            ("RegulatorMSP".into(), both("Market Bureau", "市场监管局")),
            (
                "LabMSP".into(),
                DisplayName {
                    en: None,
                    zh: Some("食品检验中心".into()),
                },
            ),
        ]))
    }

    fn page(lang: Lang, v: Value, verdict: Option<Verdict>) -> (String, String) {
        let units = BTreeMap::from([
            ("h/H1".to_owned(), "KGM".to_owned()),
            ("g/B".to_owned(), "H87".to_owned()),
        ]);
        render(
            lang,
            &names(),
            &units,
            &EventAnchors::default(),
            &PublicFiles::default(),
            &Answer::Json(Arc::new(v)),
            verdict,
            "",
        )
    }

    #[test]
    fn files_this_peer_serves_are_linked_and_marked_as_matching_the_ledger() {
        let sha = "ab".repeat(32);
        let mut v = report();
        v["inspections"][0]["report_sha256"] = serde_json::json!(sha);
        v["timeline"][1]["attachments"] =
            serde_json::json!([{"sha256": sha, "name": "UHT <log>"}, {"sha256": "cd".repeat(32)}]);
        let render_with = |lang, files: &PublicFiles| {
            render(
                lang,
                &names(),
                &BTreeMap::new(),
                &EventAnchors::default(),
                files,
                &Answer::Json(Arc::new(v.clone())),
                None,
                "",
            )
            .1
        };
        let files = PublicFiles::with(&sha, "application/pdf", 1_234_567);
        let html = render_with(Lang::En, &files);
        let link = format!("<a href=\"/files/sha256/{sha}\">");
        assert_eq!(
            html.matches(&link).count(),
            2,
            "report and one attachment: {html}"
        );
        assert!(html.contains(">inspection report</a>"), "{html}");
        assert!(html.contains(">UHT &lt;log&gt;</a>"), "escaped: {html}");
        assert_eq!(html.matches("✓ hash verified").count(), 2, "{html}");
        assert!(html.contains("application/pdf · 1.2 MB"), "{html}");
        let zh = render_with(Lang::Zh, &files);
        assert!(zh.contains("✓ 哈希已验证"), "{zh}");
        // Not served here: the hash only, no claim.
        let html = render_with(Lang::En, &PublicFiles::default());
        assert!(
            !html.contains("/files/sha256/") && !html.contains("hash verified"),
            "{html}"
        );
        assert!(html.contains(&format!("report SHA-256 {sha}")), "{html}");
    }

    #[test]
    fn recall_comes_first_and_text_is_escaped() {
        let (title, html) = page(Lang::En, report(), Some(Verdict::Genuine));
        assert_eq!(title, "Loquat juice 330 ml");
        let recall = html.find("id=\"recall\"").unwrap();
        assert!(recall < html.find("id=\"genuine\"").unwrap());
        assert!(html.contains("sediment &lt;found&gt;"));
        assert!(html.contains("Scanned twice before"), "{html}");
        assert!(html.contains("sterilising") && html.contains("line 1"));
        let (_, zh) = page(Lang::Zh, report(), None);
        assert!(zh.contains("已召回") && zh.contains("杀菌"), "{zh}");
        assert!(zh.contains("此前已扫描 2 次"), "{zh}");
        assert!(!zh.contains("id=\"genuine\""), "no verdict for a lot");
    }

    #[test]
    fn organisations_by_name_with_fallbacks() {
        let (_, en) = page(Lang::En, report(), Some(Verdict::Genuine));
        assert!(en.contains("<dd>Loquat Co.</dd>"), "{en}");
        assert!(en.contains("Market Bureau (regulator)"), "{en}");
        assert!(!en.contains("ProducerMSP"), "{en}");
        // No English name: the Chinese one; no name at all: the MSP id.
        assert!(en.contains("食品检验中心"), "{en}");
        assert!(en.contains("Loquat Co. → NamelessMSP"), "{en}");
        let (_, zh) = page(Lang::Zh, report(), Some(Verdict::Genuine));
        assert!(
            zh.contains("<dd>枇杷公司</dd>") && zh.contains("市场监管局"),
            "{zh}"
        );
        assert!(!zh.contains("ProducerMSP"), "{zh}");
    }

    #[test]
    fn quantities_dates_and_zones_read_naturally() {
        let (_, en) = page(Lang::En, report(), Some(Verdict::Genuine));
        assert!(en.contains("<dd>24 pieces</dd>"), "{en}");
        assert!(en.contains("made from 600 kg of h/H1"), "{en}");
        assert!(en.contains("<dd>1 Jun 2026</dd>"), "{en}");
        // Each event in its own zone.
        assert!(en.contains("1 Jun 2026, 08:30 UTC+8"), "{en}");
        assert!(en.contains("31 May 2026, 21:30 UTC-3"), "{en}");
        assert!(en.contains("1 Jan 1970, 00:00 UTC"), "{en}");
        // Times without a zone (recall, scans, inspections) in the batch's.
        assert!(en.contains("on: 1 Jun 2026, 08:30 UTC+8"), "{en}");
        assert!(en.contains("1 Jun 2026, 08:30 UTC+8 in Hangzhou"), "{en}");
        assert!(en.contains("9.8 g/100ml") && en.contains("1 file"), "{en}");
        let (_, zh) = page(Lang::Zh, report(), Some(Verdict::Genuine));
        assert!(zh.contains("<dd>24 件</dd>"), "{zh}");
        assert!(zh.contains("h/H1 600 千克"), "{zh}");
        assert!(zh.contains("2026年6月1日 08:30（UTC+8）"), "{zh}");
        assert!(!zh.contains("+00:00") && !zh.contains("H87"), "{zh}");
        assert!(zh.contains("1 个附件"), "{zh}");
    }

    #[test]
    fn scan_counts_and_file_counts_are_plural_aware() {
        assert_eq!(scanned_before(Lang::En, 0), "Not scanned before");
        assert_eq!(scanned_before(Lang::En, 1), "Scanned once before");
        assert_eq!(scanned_before(Lang::En, 2), "Scanned twice before");
        assert_eq!(scanned_before(Lang::En, 3), "Scanned 3 times before");
        assert_eq!(scanned_before(Lang::Zh, 0), "此前未被扫描过");
        assert_eq!(scanned_before(Lang::Zh, 3), "此前已扫描 3 次");
        assert_eq!(files(Lang::En, 1), "1 file");
        assert_eq!(files(Lang::En, 2), "2 files");
        assert_eq!(files(Lang::Zh, 2), "2 个附件");
    }

    #[test]
    fn clone_reasons_are_told_in_the_readers_language() {
        let mut v = report();
        v["unit"]["scans"] = serde_json::json!(7);
        v["unit"]["last_scan"] = serde_json::json!({"time": 1_780_280_000, "location": "Shenzhen"});
        v["unit"]["clone_warnings"] = serde_json::json!([
            "first scanned in Hangzhou, now scanned in Shenzhen",
            "scanned 7 times",
            "<script>new kind</script>"
        ]);
        let (_, en) = page(Lang::En, v.clone(), Some(Verdict::PossibleCounterfeit));
        assert!(
            en.contains("First scanned in Hangzhou, then in Shenzhen."),
            "{en}"
        );
        assert!(en.contains("Scanned 7 times: more often"), "{en}");
        assert!(en.contains("Other signs of copying."), "{en}");
        assert!(
            !en.contains("now scanned in") && !en.contains("script"),
            "{en}"
        );
        let (_, zh) = page(Lang::Zh, v, Some(Verdict::PossibleCounterfeit));
        assert!(
            zh.contains("首次在Hangzhou扫描，之后在Shenzhen扫描。"),
            "{zh}"
        );
        assert!(zh.contains("已扫描 7 次"), "{zh}");
    }

    /// Issue 19: each event says whether its transaction is in the blocks
    /// the newest irreversible anchor covers, with the proof download for
    /// those that are; nothing is said when the peer does not follow the
    /// public chain.
    #[test]
    fn events_say_whether_they_are_anchored_with_a_proof_link() {
        let mut v = report();
        let ids = ["aa11:1", "bb22:1", "cc33:2"];
        for (e, id) in v["timeline"].as_array_mut().unwrap().iter_mut().zip(ids) {
            e["event_id"] = serde_json::json!(id);
        }
        let anchors = EventAnchors {
            covered: Some(10),
            blocks: BTreeMap::from([("aa11".to_owned(), 3), ("bb22".to_owned(), 10)]),
        };
        let (_, html) = render(
            Lang::En,
            &names(),
            &BTreeMap::new(),
            &anchors,
            &PublicFiles::default(),
            &Answer::Json(Arc::new(v.clone())),
            None,
            "",
        );
        assert_eq!(html.matches("class=\"tag anchored\"").count(), 1, "{html}");
        assert!(
            html.contains("href=\"/api/anchor/proof?id=aa11\" download"),
            "{html}"
        );
        assert_eq!(html.matches("not-anchored").count(), 1, "{html}");
        let (_, html) = render(
            Lang::En,
            &names(),
            &BTreeMap::new(),
            &EventAnchors::default(),
            &PublicFiles::default(),
            &Answer::Json(Arc::new(v)),
            None,
            "",
        );
        assert!(!html.contains("anchored"), "{html}");
    }

    #[test]
    fn refusals_render_their_verdict_not_the_contracts_text() {
        let forged =
            Answer::Refused("counterfeit code: the signature is not valid for batch g/B".into());
        for lang in [Lang::En, Lang::Zh] {
            let (_, html) = render(
                lang,
                &names(),
                &BTreeMap::new(),
                &EventAnchors::default(),
                &PublicFiles::default(),
                &forged,
                Some(Verdict::Forged),
                "",
            );
            assert!(html.contains("id=\"counterfeit\""), "{html}");
            assert!(html.contains("data-verdict=\"forged\""), "{html}");
            assert!(!html.contains("signature is not valid for batch"), "{html}");
            assert!(html.contains(lang.pick("FORGED CODE", "伪造码")), "{html}");
        }
        let (_, html) = render(
            Lang::Zh,
            &names(),
            &BTreeMap::new(),
            &EventAnchors::default(),
            &PublicFiles::default(),
            &Answer::Refused("x".repeat(10_000)),
            Some(Verdict::Malformed),
            "",
        );
        assert!(
            html.contains("不是 QCSS 产品码") && !html.contains("xxx"),
            "{html}"
        );
    }
}
