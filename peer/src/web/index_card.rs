//! The verify page's QCSS index card: the product's index, its UCES
//! coefficient with the number of valid evaluations behind it, one bar per
//! term (its value, and the share of the index it contributes) and the
//! index's recent trend, drawn as inline SVG (no script, no external
//! resource, readable with CSS off). The figures are the contract's
//! `index_get` answer, as `qcss index show` prints them.

use std::fmt::Write;

use serde_json::Value;

use crate::web::html::{Lang, esc};

/// Width of a term's full bar, and of the trend, in SVG user units.
const BAR: u64 = 160;
const TREND_W: u64 = 240;
const TREND_H: u64 = 48;
/// Points of history drawn (the contract keeps at most 64).
const MAX_POINTS: usize = 64;

/// 10,000 = 100.00 %.
fn pct(bp: u64) -> String {
    format!("{}.{:02} %", bp / 100, bp % 100)
}

fn term_name(lang: Lang, name: &str) -> String {
    let (en, zh) = match name {
        "producer" => ("Producer credit", "生产者信用"),
        "raw_material" => ("Raw materials", "原料"),
        "process" => ("Process health", "过程健康"),
        "certification" => ("Inspections and certifications", "检验与认证"),
        "uces" => ("Consumer evaluations (UCES)", "消费者评价（UCES）"),
        other => return esc(other),
    };
    lang.pick(en, zh).to_owned()
}

/// The card, or nothing when the answer has no index.
pub(crate) fn card(lang: Lang, v: &Value) -> String {
    let Some(index) = v["index"].as_u64() else {
        return String::new();
    };
    let index = index.min(10_000);
    let mut out = format!(
        "<section class=\"card\" id=\"qcss-index\"><h2>{}</h2><p><strong id=\"index-value\">{}</strong>",
        lang.pick("QCSS index", "QCSS 指数"),
        pct(index)
    );
    if let Some(c) = v["coefficient"].as_u64() {
        let n = v["evaluations"].as_u64().unwrap_or(0);
        let c = c.min(5_000);
        let _ = write!(
            out,
            " · <span id=\"uces\">{}</span>",
            match lang {
                Lang::En => format!(
                    "UCES coefficient {}.{:02} / 5 from {n} valid evaluation{}",
                    c / 1000,
                    c % 1000 / 10,
                    if n == 1 { "" } else { "s" }
                ),
                Lang::Zh => format!(
                    "UCES 系数 {}.{:02} / 5（{n} 条有效评价）",
                    c / 1000,
                    c % 1000 / 10
                ),
            }
        );
    }
    out.push_str("</p>");
    // Terms: a bar per term, its length the term's value, with the points
    // of the index it contributes.
    let terms: Vec<&Value> = v["terms"]
        .as_array()
        .into_iter()
        .flatten()
        .take(8)
        .collect();
    if !terms.is_empty() {
        let h = 22 * terms.len() as u64;
        let _ = write!(
            out,
            "<svg class=\"terms\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {} {h}\" width=\"100%\" style=\"max-width:420px\">",
            lang.pick("What the index is made of", "指数的构成"),
            BAR + 260
        );
        for (i, t) in terms.iter().enumerate() {
            let value = t["value"].as_u64().unwrap_or(0).min(10_000);
            let contribution = t["contribution"].as_u64().unwrap_or(0).min(10_000);
            let weight = t["weight"].as_u64().unwrap_or(0).min(10_000);
            let y = 22 * i as u64;
            let _ = write!(
                out,
                "<g class=\"term\" data-term=\"{name}\"><title>{label}: {v} × {w} = {c}</title>\
                 <text x=\"0\" y=\"{ty}\" font-size=\"11\">{label}</text>\
                 <rect x=\"170\" y=\"{ry}\" width=\"{BAR}\" height=\"10\" fill=\"#eee\"/>\
                 <rect x=\"170\" y=\"{ry}\" width=\"{len}\" height=\"10\" fill=\"#2b7a4b\"/>\
                 <text x=\"{tx}\" y=\"{ty}\" font-size=\"11\">+{c}</text></g>",
                name = esc(t["name"].as_str().unwrap_or("")),
                label = term_name(lang, t["name"].as_str().unwrap_or("")),
                v = pct(value),
                w = pct(weight),
                c = pct(contribution),
                ty = y + 14,
                ry = y + 5,
                len = BAR * value / 10_000,
                tx = 170 + BAR + 8,
            );
        }
        out.push_str("</svg>");
    }
    // Trend: the index after each of the last events that moved it.
    let points: Vec<u64> = v["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["index"].as_u64())
        .map(|x| x.min(10_000))
        .collect();
    let points = &points[points.len().saturating_sub(MAX_POINTS)..];
    if points.len() >= 2 {
        let step = TREND_W as f64 / (points.len() - 1) as f64;
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let y = TREND_H as f64 - (*x as f64 / 10_000.0) * TREND_H as f64;
                format!("{:.1},{:.1}", i as f64 * step, y)
            })
            .collect();
        let _ = write!(
            out,
            "<p>{}</p><svg class=\"trend\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {TREND_W} {TREND_H}\" width=\"{TREND_W}\" height=\"{TREND_H}\">\
             <polyline fill=\"none\" stroke=\"#2b7a4b\" stroke-width=\"2\" points=\"{}\"/></svg>",
            match lang {
                Lang::En => format!(
                    "Trend over the last {} changes: {} → {}",
                    points.len(),
                    pct(points[0]),
                    pct(points[points.len() - 1])
                ),
                Lang::Zh => format!(
                    "最近 {} 次变化的趋势：{} → {}",
                    points.len(),
                    pct(points[0]),
                    pct(points[points.len() - 1])
                ),
            },
            lang.pick("Index trend", "指数趋势"),
            path.join(" ")
        );
    }
    out.push_str("</section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index() -> Value {
        json!({
            "kind": "gtin", "subject": "06901234560022", "index": 8125,
            "coefficient": 4210, "evaluations": 3,
            "terms": [
                {"name": "producer", "weight": 3000, "value": 10000, "contribution": 3000},
                {"name": "uces", "weight": 2000, "value": 8025, "contribution": 1605},
                {"name": "<script>", "weight": 0, "value": 99999, "contribution": 0}
            ],
            "history": [{"time": 1, "event": "batch", "index": 5000},
                        {"time": 2, "event": "inspection", "index": 7000},
                        {"time": 3, "event": "evaluation", "index": 8125}]
        })
    }

    #[test]
    fn the_card_shows_the_index_the_coefficient_each_term_and_the_trend() {
        let html = card(Lang::En, &index());
        assert!(html.contains("id=\"qcss-index\""), "{html}");
        assert!(html.contains(">81.25 %<"), "{html}");
        assert!(
            html.contains("UCES coefficient 4.21 / 5 from 3 valid evaluations"),
            "{html}"
        );
        assert!(html.contains("Producer credit"), "{html}");
        assert!(html.contains("+16.05 %"), "{html}");
        // A full bar for a value of 100 %, bounded for anything above.
        assert_eq!(
            html.matches(&format!("width=\"{BAR}\" height=\"10\" fill=\"#2b7a4b\""))
                .count(),
            2
        );
        assert!(!html.contains("<script>"), "names are escaped: {html}");
        assert!(html.contains("50.00 % → 81.25 %"), "{html}");
        assert!(html.contains("<polyline"), "{html}");
        let zh = card(Lang::Zh, &index());
        assert!(
            zh.contains("QCSS 指数") && zh.contains("3 条有效评价"),
            "{zh}"
        );
    }

    #[test]
    fn no_index_no_card_and_one_point_no_trend() {
        assert_eq!(card(Lang::En, &json!({"error": "none"})), "");
        let mut v = index();
        v["history"] = json!([{"time": 1, "event": "batch", "index": 5000}]);
        v["evaluations"] = json!(1);
        let html = card(Lang::En, &v);
        assert!(!html.contains("<polyline"), "{html}");
        assert!(html.contains("from 1 valid evaluation<"), "{html}");
    }
}
