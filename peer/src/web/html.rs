//! HTML building blocks shared by the pages: escaping, the page shell with
//! its inline, phone-first CSS, the language (Chinese or English), times.

use crate::web::http::Request;

/// The language of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Zh,
}

impl Lang {
    /// `?lang=zh|en` first, else the first language of `Accept-Language`
    /// that is Chinese or English, else English.
    pub(crate) fn of(req: &Request) -> Lang {
        match req.param("lang") {
            Some("zh") => return Lang::Zh,
            Some("en") => return Lang::En,
            _ => {}
        }
        let accept = req.header("accept-language").unwrap_or("");
        let mut best = (0.0f32, Lang::En);
        for part in accept.split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = if tag.starts_with("zh") {
                Lang::Zh
            } else if tag.starts_with("en") {
                Lang::En
            } else {
                continue;
            };
            if q > best.0 {
                best = (q, lang);
            }
        }
        best.1
    }

    /// The English or the Chinese text.
    pub(crate) fn pick<'a>(self, en: &'a str, zh: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
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

/// A JSON value as display text (`-` for null).
pub(crate) fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 -apple-system,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",system-ui,sans-serif;color:#1d2430;background:#f3f5f7}
header{background:#14532d;color:#fff;padding:10px 16px;display:flex;justify-content:space-between;align-items:center;gap:8px;flex-wrap:wrap}
header a{color:#fff}
header .brand{font-weight:700;text-decoration:none}
main{max-width:760px;margin:0 auto;padding:12px}
main.wide{max-width:1100px}
.card{background:#fff;border-radius:10px;padding:12px 14px;margin:0 0 12px;box-shadow:0 1px 2px rgba(0,0,0,.08);overflow-wrap:anywhere}
.card h2{font-size:1.05em;margin:0 0 8px}
.banner{border-radius:10px;padding:14px;margin:0 0 12px;font-weight:600;overflow-wrap:anywhere}
.banner h1{font-size:1.25em;margin:0 0 6px}
.banner p{margin:4px 0;font-weight:400}
.banner .muted{color:inherit;opacity:.85}
.recall{background:#b91c1c;color:#fff}
.fake{background:#7c2d12;color:#fff}
.warn{background:#fef3c7;color:#78350f;border:2px solid #d97706}
.ok{background:#dcfce7;color:#14532d;border:2px solid #16a34a}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:0}
dt{color:#5b6573}
dd{margin:0}
ol.timeline{list-style:none;padding:0;margin:0;border-left:3px solid #16a34a}
ol.timeline li{position:relative;padding:0 0 12px 14px}
ol.timeline li:before{content:"";position:absolute;left:-8px;top:6px;width:13px;height:13px;border-radius:50%;background:#16a34a}
.muted{color:#5b6573;font-size:.9em}
.pass{color:#15803d;font-weight:700}
.fail{color:#b91c1c;font-weight:700}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{text-align:left;padding:5px 6px;border-bottom:1px solid #e5e7eb;vertical-align:top}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88em;overflow-wrap:anywhere}
.photo{max-width:100%;max-height:240px;border-radius:6px}
figure{margin:8px 0}
.tag{display:inline-block;border-radius:6px;padding:0 6px;font-size:.85em;background:#e5e7eb}
.tag.VALID{background:#dcfce7;color:#14532d}
.tag.bad{background:#fee2e2;color:#991b1b}
form.search{display:flex;gap:6px}
form.search input{flex:1;min-width:0;padding:8px;border:1px solid #cbd5e1;border-radius:8px;font-size:1em}
form.search button{padding:8px 12px;border:0;border-radius:8px;background:#14532d;color:#fff;font-size:1em}
.graph{overflow-x:auto}
footer{max-width:760px;margin:0 auto;padding:0 12px 24px;color:#5b6573;font-size:.85em}
"#;

/// A whole page: `title`, the header with the language switch (`switch`
/// is this page's URL with `lang=` to append), `body`, a footer.
pub(crate) fn page(
    lang: Lang,
    title: &str,
    switch: &str,
    body: &str,
    footer: &str,
    wide: bool,
    script: Option<&str>,
) -> String {
    let sep = if switch.contains('?') { '&' } else { '?' };
    let other = match lang {
        Lang::En => format!(
            "<a href=\"{}{sep}lang=zh\" lang=\"zh-CN\">中文</a>",
            esc(switch)
        ),
        Lang::Zh => format!(
            "<a href=\"{}{sep}lang=en\" lang=\"en\">English</a>",
            esc(switch)
        ),
    };
    let script = script
        .map(|s| format!("<script src=\"{s}\" defer></script>"))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{CSS}</style>{script}</head><body>\
<header><a class=\"brand\" href=\"/explorer\">{brand}</a><nav>{other}</nav></header>\
<main{class}>{body}</main><footer>{footer}</footer></body></html>\n",
        code = lang.code(),
        title = esc(title),
        brand = lang.pick("QCSS quality chain", "QCSS 品质链"),
        class = if wide { " class=\"wide\"" } else { "" },
    )
}

/// Unix seconds as `YYYY-MM-DD hh:mm` in the zone `offset` (`±hh:mm`), or UTC.
pub(crate) fn time(secs: &serde_json::Value, offset: Option<&str>) -> String {
    let Some(t) = secs.as_i64() else {
        return "-".into();
    };
    let l = qcss_network::clock::local_time(t, offset);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} {}",
        l.year, l.month, l.day, l.hour, l.minute, l.zone
    )
}

/// A zone offset as people read it: `UTC+8`, `UTC+5:30`, `UTC-3`, `UTC`
/// (also for none, `Z` or a malformed one).
pub(crate) fn zone_name(offset: Option<&str>) -> String {
    let secs = offset
        .and_then(qcss_network::clock::parse_offset)
        .unwrap_or(0);
    if secs == 0 {
        return "UTC".into();
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let (h, m) = (secs.abs() / 3600, secs.abs() / 60 % 60);
    if m == 0 {
        format!("UTC{sign}{h}")
    } else {
        format!("UTC{sign}{h}:{m:02}")
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn day(lang: Lang, y: i64, m: u32, d: u32) -> String {
    match lang {
        Lang::En => format!(
            "{d} {} {y}",
            MONTHS.get(m.wrapping_sub(1) as usize).unwrap_or(&"?")
        ),
        Lang::Zh => format!("{y}年{m}月{d}日"),
    }
}

/// Unix seconds as a consumer reads them, in the zone `offset` (`±hh:mm`,
/// else UTC), which is named: `1 Jun 2026, 08:00 UTC+8`,
/// `2026年6月1日 08:00（UTC+8）`; `-` when `secs` is not a number.
pub(crate) fn when(lang: Lang, secs: &serde_json::Value, offset: Option<&str>) -> String {
    let Some(t) = secs.as_i64() else {
        return "-".into();
    };
    let valid = offset.filter(|o| qcss_network::clock::parse_offset(o).is_some());
    let l = qcss_network::clock::local_time(t, valid);
    let zone = zone_name(valid);
    let d = day(lang, l.year, l.month, l.day);
    match lang {
        Lang::En => format!("{d}, {:02}:{:02} {zone}", l.hour, l.minute),
        Lang::Zh => format!("{d} {:02}:{:02}（{zone}）", l.hour, l.minute),
    }
}

/// A calendar date `YYYY-MM-DD` as a consumer reads it (`1 Jun 2026`,
/// `2026年6月1日`); anything else as given.
pub(crate) fn date(lang: Lang, ymd: &str) -> String {
    let mut it = ymd.splitn(3, '-');
    let parsed = (|| {
        let (y, m, d) = (it.next()?, it.next()?, it.next()?);
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return None;
        }
        let (y, m, d) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
        ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
    })();
    match parsed {
        Some((y, m, d)) => day(lang, y, m, d),
        None => ymd.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::http::parse_head;

    #[test]
    fn language_from_parameter_then_accept_language() {
        let req = |h: &str| parse_head(h.as_bytes()).unwrap();
        assert_eq!(Lang::of(&req("GET /?lang=zh HTTP/1.1")), Lang::Zh);
        assert_eq!(
            Lang::of(&req("GET /?lang=en HTTP/1.1\r\nAccept-Language: zh-CN")),
            Lang::En
        );
        assert_eq!(
            Lang::of(&req(
                "GET / HTTP/1.1\r\nAccept-Language: zh-CN,zh;q=0.9,en;q=0.8"
            )),
            Lang::Zh
        );
        assert_eq!(
            Lang::of(&req(
                "GET / HTTP/1.1\r\nAccept-Language: fr, en;q=0.5, zh;q=0.4"
            )),
            Lang::En
        );
        assert_eq!(Lang::of(&req("GET / HTTP/1.1")), Lang::En);
    }

    #[test]
    fn escaping_and_times() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(time(&serde_json::json!(0), None), "1970-01-01 00:00 UTC");
        assert_eq!(
            time(&serde_json::json!(1_764_000_000), Some("+08:00")),
            "2025-11-25 00:00 +08:00"
        );
        assert_eq!(time(&serde_json::Value::Null, None), "-");
    }

    #[test]
    fn consumer_times_name_their_zone() {
        use serde_json::json;
        // 2026-06-01 00:30 UTC.
        let t = json!(1_780_273_800);
        assert_eq!(
            when(Lang::En, &t, Some("+08:00")),
            "1 Jun 2026, 08:30 UTC+8"
        );
        assert_eq!(
            when(Lang::Zh, &t, Some("+08:00")),
            "2026年6月1日 08:30（UTC+8）"
        );
        assert_eq!(when(Lang::En, &t, None), "1 Jun 2026, 00:30 UTC");
        assert_eq!(when(Lang::En, &t, Some("+00:00")), "1 Jun 2026, 00:30 UTC");
        assert_eq!(
            when(Lang::En, &t, Some("-03:00")),
            "31 May 2026, 21:30 UTC-3"
        );
        assert_eq!(
            when(Lang::En, &t, Some("+05:30")),
            "1 Jun 2026, 06:00 UTC+5:30"
        );
        assert_eq!(
            when(Lang::En, &t, Some("+99:00")),
            "1 Jun 2026, 00:30 UTC",
            "a malformed offset is UTC, and says so"
        );
        assert_eq!(when(Lang::Zh, &json!("x"), Some("+08:00")), "-");
        assert_eq!(date(Lang::En, "2026-06-01"), "1 Jun 2026");
        assert_eq!(date(Lang::Zh, "2026-12-31"), "2026年12月31日");
        assert_eq!(date(Lang::En, "2026-13-01"), "2026-13-01");
        assert_eq!(date(Lang::En, "June"), "June");
    }
}
