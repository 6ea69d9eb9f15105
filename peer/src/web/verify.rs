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

use crate::web::html::{Lang, esc, page};
use crate::web::http::{Request, Response};
use crate::web::query::{Answer, Verdict};
use crate::web::verify_render::{render, verdict_banner};
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
/// event attachments, the producer's permit certificate, the photos of the
/// unit's valid consumer evaluation) that this peer
/// holds as public MDSS files: those are linked (`/files/sha256/{hex}`) and
/// marked as matching the ledger.
#[derive(Debug, Default)]
pub(crate) struct PublicFiles {
    /// SHA-256 (hex) → (media type, size).
    pub(super) found: BTreeMap<String, (String, u64)>,
}

impl PublicFiles {
    async fn of(web: &Web, answer: &Answer) -> Self {
        let (Some(files), Answer::Json(v)) = (web.files.clone(), answer) else {
            return Self::default();
        };
        let mut wanted = BTreeSet::new();
        if let Some(h) = v["permit"]["certificate"]["sha256"].as_str() {
            wanted.insert(h.to_owned());
        }
        for i in v["inspections"].as_array().into_iter().flatten() {
            if let Some(h) = i["report_sha256"].as_str() {
                wanted.insert(h.to_owned());
            }
        }
        for p in v["evaluation"]["photo_sha256"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(h) = p.as_str() {
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
pub(super) fn size_text(n: u64) -> String {
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
    pub(super) fn state(&self, e: &Value) -> Option<bool> {
        let covered = self.covered?;
        let block = self.blocks.get(event_tx(e)?)?;
        Some(*block < covered)
    }
}

/// The transaction an event was recorded in.
pub(super) fn event_tx(e: &Value) -> Option<&str> {
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
    let peer = names.name(lang, web.peer.msp_id().as_str());
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::web::verify_render::*;

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

    /// The page body for trace answer `v`, with `files` served here.
    fn with_files(lang: Lang, v: &Value, files: &PublicFiles) -> String {
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
    }

    #[test]
    fn files_this_peer_serves_are_linked_and_marked_as_matching_the_ledger() {
        let sha = "ab".repeat(32);
        let mut v = report();
        v["inspections"][0]["report_sha256"] = serde_json::json!(sha);
        v["timeline"][1]["attachments"] =
            serde_json::json!([{"sha256": sha, "name": "UHT <log>"}, {"sha256": "cd".repeat(32)}]);
        let render_with = |lang, files: &PublicFiles| with_files(lang, &v, files);
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

    /// The producer's permit certificate (its document's hash is on the
    /// ledger): linked when this peer serves it, else its hash shown.
    #[test]
    fn the_permit_certificate_is_linked_or_its_hash_shown() {
        let sha = "ef".repeat(32);
        let mut v = report();
        v["permit"]["certificate"] =
            serde_json::json!({"sha256": sha, "issuer": "CQC <cn>", "scope": "HACCP"});
        let render_with = |lang, files: &PublicFiles| with_files(lang, &v, files);
        let html = render_with(Lang::En, &PublicFiles::with(&sha, "application/pdf", 2048));
        let permit = &html[html.find("id=\"permit\"").unwrap()..];
        assert!(
            permit.contains(&format!(
                "<a href=\"/files/sha256/{sha}\">CQC &lt;cn&gt; · HACCP</a>"
            )),
            "{permit}"
        );
        assert!(permit.contains("✓ hash verified"), "{permit}");
        let zh = render_with(Lang::Zh, &PublicFiles::default());
        let permit = &zh[zh.find("id=\"permit\"").unwrap()..];
        assert!(permit.contains("资质证书"), "{permit}");
        assert!(permit.contains(&format!("SHA-256 {sha}")), "{permit}");
        assert!(!permit.contains("/files/sha256/"), "{permit}");
    }

    /// The unit's consumer evaluation: status and scores; its photos shown
    /// (as images, marked hash verified) when this peer serves them, else
    /// their hashes; none while it is pending.
    #[test]
    fn a_valid_evaluation_shows_its_photos() {
        let (jpeg, pdf, absent) = ("11".repeat(32), "22".repeat(32), "33".repeat(32));
        let mut v = report();
        v["evaluation"] = serde_json::json!({
            "unit": "g/B/3", "gtin": "g", "status": "valid", "submitted_at": 1_780_273_800,
            "decided_at": 1_780_283_800, "approvals": 3, "rejections": 1,
            "scores": {"overall": 4, "quality": 5, "performance": 3, "authenticity": 5},
            "photo_sha256": [jpeg, pdf, absent],
        });
        let mut files = PublicFiles::with(&jpeg, "image/jpeg", 80_000);
        files
            .found
            .insert(pdf.clone(), ("application/pdf".into(), 10));
        let html = with_files(Lang::En, &v, &files);
        let card = &html[html.find("id=\"evaluation\"").unwrap()..];
        let card = &card[..card.find("</section>").unwrap()];
        assert!(
            card.contains("✓ approved by validators</span> (3 for, 1 against)"),
            "{card}"
        );
        assert!(
            card.contains("<dt>Overall</dt><dd>★★★★☆ 4/5</dd>"),
            "{card}"
        );
        assert!(
            card.contains(&format!(
                "<img class=\"photo\" src=\"/files/sha256/{jpeg}\" alt=\"photo 1\""
            )),
            "{card}"
        );
        assert_eq!(card.matches("✓ hash verified").count(), 2, "{card}");
        assert!(
            !card.contains(&format!("src=\"/files/sha256/{pdf}\"")),
            "not an image: {card}"
        );
        assert!(
            card.contains(&format!("photo 3 SHA-256 {absent}")),
            "{card}"
        );
        let zh = with_files(Lang::Zh, &v, &files);
        assert!(
            zh.contains("消费者评价") && zh.contains("已通过验证人审核"),
            "{zh}"
        );
        // Pending: no photos (the contract sends none), the status says so.
        v["evaluation"]["status"] = "pending".into();
        v["evaluation"]["photo_sha256"] = serde_json::json!([]);
        let html = with_files(Lang::En, &v, &files);
        assert!(
            html.contains("awaiting validators") && !html.contains("<img"),
            "{html}"
        );
        // No evaluation: no card.
        let html = with_files(Lang::En, &report(), &files);
        assert!(!html.contains("id=\"evaluation\""), "{html}");
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
