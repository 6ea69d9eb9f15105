//! The consumer page (the verify page a unit's QR code opens) as a
//! consumer reads it on a 412-pixel phone, in Chinese and in English, on a
//! `qcss network up --demo` network, through headless Chromium: the text
//! the browser renders (not the HTML) names organisations by the display
//! names of the channel configuration, quantities in words, every time in
//! the zone its event recorded (China Standard Time in the demo, checked
//! against the event's time and offset from the JSON API), the forged
//! verdict in the reader's language without the contract's English text,
//! and scan counts as "once", "twice", "3 times", "3 次". Screenshots are
//! saved under `web-screenshots/` (`consumer-*.png`).
//!
//! Needs Debian's `chromium` (see `qcss_tests::browser`).

use qcss_network::clock::local_time;
use qcss_tests::browser::{Seen, chromium, screenshot, visible_text};
use qcss_tests::{NetworkDown, demo_codes, qcss_ok};
use serde_json::Value;

/// The phone: a common Android width (CSS pixels).
const WIDTH: u32 = 412;

fn contract() -> String {
    qcss_tests::peers::traceability_wasm().display().to_string()
}

/// What a reader sees at [`WIDTH`]; the page must fit it.
fn see(url: &str) -> Seen {
    let seen = visible_text(url, WIDTH);
    assert_eq!(seen.width, WIDTH, "{url} was not laid out at {WIDTH} px");
    assert!(
        seen.scroll_width <= WIDTH,
        "{url} scrolls sideways at {WIDTH} px ({} px wide):\n{}",
        seen.scroll_width,
        seen.text
    );
    seen
}

fn has(seen: &Seen, what: &[&str]) {
    for w in what {
        assert!(
            seen.text.contains(w),
            "the page does not show {w:?}:\n{}",
            seen.text
        );
    }
}

fn lacks(seen: &Seen, what: &[&str]) {
    for w in what {
        assert!(
            !seen.text.contains(w),
            "the page shows {w:?}:\n{}",
            seen.text
        );
    }
}

/// Every time on the page is in China Standard Time: each "UTC" is "UTC+8".
fn all_times_cst(seen: &Seen) {
    let utc = seen.text.matches("UTC").count();
    assert!(utc > 0, "no time shown:\n{}", seen.text);
    assert_eq!(
        utc,
        seen.text.matches("UTC+8").count(),
        "a time not in the events' zone:\n{}",
        seen.text
    );
}

fn get_json(addr: &str, path: &str) -> Value {
    let (status, body) = qcss_tests::http_get(addr, path).expect("GET");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

#[test]
fn the_consumer_page_speaks_chinese_and_english_on_a_phone() {
    chromium(); // fail first, and clearly, without a browser
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path();
    let _down = NetworkDown(dir);
    let out = qcss_ok(
        dir,
        &[
            "network",
            "up",
            "--dir",
            "net",
            "--demo",
            "--contract",
            &contract(),
        ],
    );
    let codes = demo_codes(&out);
    assert_eq!(codes.len(), 3, "three codes:\n{out}");
    let (good, recalled, forged) = (&codes[0], &codes[1], &codes[2]);
    let info: Value =
        serde_json::from_slice(&std::fs::read(dir.join("net/network.json")).unwrap()).unwrap();
    let logistics = info["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "logistics")
        .expect("logistics org")
        .clone();
    let web = logistics["web"].as_str().expect("web address").to_owned();
    let base = format!("http://{web}");
    let page = |code: &str, lang: &str| {
        format!("{base}{}&lang={lang}", &code[code.find("/01/").unwrap()..])
    };

    // The display names are in the channel configuration.
    let channel: Value =
        serde_json::from_slice(&std::fs::read(dir.join("net/channel.json")).unwrap()).unwrap();
    let producer = channel["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["msp"]["msp_id"] == "ProducerMSP")
        .expect("the producer org")["display_name"]
        .clone();
    assert_eq!(producer["zh"], "苏州东山枇杷有限公司", "{producer}");

    // The events recorded their zone; the page shows each in it.
    let juice = &good[good.find("/01/").unwrap() + 4..][..14];
    let trace = get_json(&web, &format!("/api/trace/{juice}/LJ2026A"));
    let timeline = trace["timeline"].as_array().expect("timeline");
    assert!(timeline.len() >= 5, "{trace}");
    for e in timeline {
        assert_eq!(e["event_time_zone_offset"], "+08:00", "{e}");
    }
    let filling = timeline
        .iter()
        .find(|e| e["biz_step"] == "filling")
        .expect("the filling event");
    let t = local_time(filling["event_time"].as_i64().unwrap(), Some("+08:00"));
    let clock = format!("{:02}:{:02}", t.hour, t.minute);

    // ------------------------------------------------------------ English
    let en = see(&page(good, "en"));
    assert_eq!(en.lang, "en");
    has(
        &en,
        &[
            "Genuine code",
            "Suzhou Dongshan Loquat Co.",
            "Hangzhou Cold Chain Logistics",
            "Zhejiang Food Inspection Centre",
            "24 pieces",
            "600 kg of",
            "Scanned once before",
            &format!("{clock} UTC+8"),
            &format!("{} {}", t.day, MONTHS[t.month as usize - 1]),
        ],
    );
    lacks(
        &en,
        &[
            "ProducerMSP",
            "LogisticsMSP",
            "LabMSP",
            "H87",
            "KGM",
            "+00:00",
            "time(s)",
        ],
    );
    all_times_cst(&en);
    screenshot(&page(good, "en"), "consumer-good-en.png", WIDTH, 915);

    // ------------------------------------------------------------ Chinese
    let zh = see(&page(good, "zh"));
    assert_eq!(zh.lang, "zh-CN");
    has(
        &zh,
        &[
            "正品码",
            "苏州东山枇杷有限公司",
            "杭州冷链物流有限公司",
            "浙江省食品检验中心",
            "24 件",
            "600 千克",
            "此前已扫描 1 次",
            &format!("{}年{}月{}日 {clock}（UTC+8）", t.year, t.month, t.day),
        ],
    );
    lacks(
        &zh,
        &[
            "ProducerMSP",
            "LogisticsMSP",
            "H87",
            "KGM",
            "+00:00",
            "Genuine",
            "pieces",
        ],
    );
    all_times_cst(&zh);
    screenshot(&page(good, "zh"), "consumer-good-zh.png", WIDTH, 915);

    // ------------------------------------------------------------- forged
    // The contract says "counterfeit code: the signature is not valid for batch …".
    let contract_text = "not valid for batch";
    let f_en = see(&page(forged, "en"));
    has(
        &f_en,
        &["FORGED CODE — not issued by the brand", "Do not trust"],
    );
    lacks(&f_en, &[contract_text, "counterfeit code:", "Genuine code"]);
    let f_zh = see(&page(forged, "zh"));
    has(&f_zh, &["伪造码 — 并非品牌方签发", "签名无效"]);
    lacks(&f_zh, &[contract_text, "counterfeit code", "FORGED"]);
    screenshot(&page(forged, "zh"), "consumer-forged-zh.png", WIDTH, 915);

    // ------------------------------------------------------------ recalled
    let r_zh = see(&page(recalled, "zh"));
    has(&r_zh, &["已召回", "市场监督管理局", "原因"]);
    lacks(&r_zh, &["RegulatorMSP"]);
    all_times_cst(&r_zh);

    // ---------------------------------------------------- scans, plurals
    let scan = |place: &str| {
        qcss_ok(
            dir,
            &[
                "scan",
                good,
                "--location",
                place,
                "--dir",
                "net",
                "--org",
                "logistics",
                "--as",
                "consumer1",
            ],
        )
    };
    scan("Shenzhen");
    let en = see(&page(good, "en"));
    has(
        &en,
        &[
            "POSSIBLE COUNTERFEIT",
            "Scanned twice before",
            "First scanned in Hangzhou, then in Shenzhen.",
        ],
    );
    lacks(&en, &["now scanned in", "possible counterfeit:"]);
    scan("Shenzhen");
    let en = see(&page(good, "en"));
    has(&en, &["Scanned 3 times before"]);
    let zh = see(&page(good, "zh"));
    has(
        &zh,
        &[
            "疑似假冒",
            "此前已扫描 3 次",
            "首次在Hangzhou扫描，之后在Shenzhen扫描。",
        ],
    );
    lacks(&zh, &["first scanned", "now scanned"]);
    screenshot(&page(good, "zh"), "consumer-cloned-zh.png", WIDTH, 915);
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
