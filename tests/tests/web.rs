//! The peer's web pages on a running network (`qcss network up --demo`):
//! the JSON API (status codes, content, 404s, what is never exposed, 429
//! under a burst), the verify page of a good, a recalled, a forged and a
//! cloned code and the explorer in headless Chromium (what a person sees,
//! phone-sized screenshots saved under `target/web-screenshots/`), and the
//! verify page's server-side latency at 500 requests/s, printed (measured
//! in-process on the same ledger after the network is down; no timing is
//! asserted).
//!
//! Needs Debian's `chromium` (`/usr/bin/chromium`, or `$CHROMIUM`);
//! `.ci/run` installs it. Without it the test fails, saying so. The
//! consumer page's wording in both languages at a phone's width is
//! `consumer_page.rs`.

/// A phone-sized (390×844) screenshot of `url` into `name`.
fn screenshot(url: &str, name: &str) {
    qcss_tests::browser::screenshot(url, name, 390, 844);
}

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use qcss_tests::browser::{chromium, dom, screenshots_dir};
use qcss_tests::{NetworkDown, demo_codes, qcss_ok};
use serde_json::Value;

fn contract() -> String {
    qcss_tests::peers::traceability_wasm().display().to_string()
}

/// One plain HTTP GET: (status, headers lowercased, body).
fn get(addr: &str, path: &str) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the web port");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read response");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn get_json(addr: &str, path: &str) -> (u16, Value) {
    let (status, _, body) = get(addr, path);
    let v =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
    (status, v)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The verify page path (+ query) of a code.
fn page_of(code: &str) -> String {
    code[code.find("/01/").expect("a Digital Link code")..].to_owned()
}

#[test]
fn verify_page_explorer_and_api_on_a_demo_network() {
    chromium(); // fail first, and clearly, without a browser
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path();
    let _down = NetworkDown(dir);
    let c = contract();
    let out = qcss_ok(
        dir,
        &["network", "up", "--dir", "net", "--demo", "--contract", &c],
    );
    let codes = demo_codes(&out);
    assert_eq!(codes.len(), 3, "three codes:\n{out}");
    let (good, recalled, forged) = (&codes[0], &codes[1], &codes[2]);
    assert!(
        out.contains("/explorer"),
        "the summary prints the explorer:\n{out}"
    );
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
    let juice = good.split("/01/").nth(1).unwrap()[..14].to_owned();
    let loquat = format!("{}1", &juice[..12]);
    let loquat = format!(
        "{loquat}{}",
        qcss_chaincode::unit_code::gs1_check_digit(&loquat)
    );

    // ---------------------------------------------------------------- API
    let (s, blocks) = get_json(&web, "/api/blocks");
    assert_eq!(s, 200, "{blocks}");
    let height = blocks["height"].as_u64().unwrap();
    assert!(height > 10, "{blocks}");
    let list = blocks["blocks"].as_array().unwrap();
    assert_eq!(list.len(), 10);
    assert_eq!(list[0]["number"].as_u64(), Some(height - 1), "newest first");
    assert_eq!(list[0]["hash"].as_str().unwrap().len(), 64);
    assert_eq!(
        list[0]["codes"]["VALID"].as_u64(),
        list[0]["tx_count"].as_u64()
    );
    let (s, b0) = get_json(&web, "/api/block/0");
    assert_eq!((s, b0["number"].as_u64()), (200, Some(0)));
    assert_eq!(b0["transactions"][0]["type"], "CONFIG");
    assert_eq!(
        get_json(&web, &format!("/api/block/{}", height + 100)).0,
        404
    );
    assert_eq!(get_json(&web, "/api/block/x").0, 400);
    assert_eq!(get_json(&web, "/api/blocks?from=abc").0, 400);
    let (_, page2) = get_json(&web, "/api/blocks?from=3&limit=2");
    let nums: Vec<u64> = page2["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["number"].as_u64().unwrap())
        .collect();
    assert_eq!(nums, [3, 2]);

    // The recall's transaction: creator, endorsers, keys.
    let tx_id = list
        .iter()
        .flat_map(|b| b["transactions"].as_array().unwrap().clone())
        .find(|t| t["function"] == "recall")
        .expect("the recall is among the latest transactions")["tx_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, tx) = get_json(&web, &format!("/api/tx/{tx_id}"));
    assert_eq!(s, 200, "{tx}");
    assert_eq!(tx["code"], "VALID");
    assert_eq!(tx["creator"]["msp"], "RegulatorMSP");
    assert_eq!(tx["creator"]["role"], "client");
    assert!(
        tx["creator"]["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "regulator"),
        "{tx}"
    );
    assert!(
        tx["creator"].get("name").is_none(),
        "a client's name is not shown: {tx}"
    );
    assert!(
        tx["endorsers"].as_array().unwrap().len() >= 3,
        "MAJORITY of 4 orgs: {tx}"
    );
    let writes: Vec<String> = tx["rwset"][0]["writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["key"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        writes
            .iter()
            .any(|k| k == &format!("batch/{juice}/LJ2026B")),
        "{writes:?}"
    );
    let raw = get(&web, &format!("/api/tx/{tx_id}")).2;
    for secret in ["PRIVATE KEY", "BEGIN CERTIFICATE", "\"value\"", "sediment"] {
        assert!(
            !raw.contains(secret),
            "the tx detail exposes {secret}: {raw}"
        );
    }
    assert_eq!(
        get_json(&web, &format!("/api/tx/{}", "0".repeat(64))).0,
        404
    );

    let (s, v) = get_json(&web, &format!("/api/verify?code={}", enc(good)));
    assert_eq!(
        (s, v["verdict"].as_str(), v["recalled"].as_bool()),
        (200, Some("genuine"), Some(false)),
        "{v}"
    );
    assert_eq!(v["scans"], 1, "the demo's consumer scanned it once");
    let (s, v) = get_json(&web, &format!("/api/verify?code={}", enc(recalled)));
    assert_eq!((s, v["recalled"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = get_json(&web, &format!("/api/verify?code={}", enc(forged)));
    assert_eq!((s, v["verdict"].as_str()), (200, Some("forged")), "{v}");
    assert_eq!(
        get_json(&web, "/api/verify?code=nonsense").1["verdict"],
        "malformed"
    );
    assert_eq!(get_json(&web, "/api/verify").0, 400);

    let (s, t) = get_json(&web, &format!("/api/trace/{juice}/LJ2026A"));
    assert_eq!(
        (s, t["product"]["name"].as_str()),
        (200, Some("Loquat juice 330 ml")),
        "{t}"
    );
    assert_eq!(get_json(&web, &format!("/api/trace/{juice}/NOPE")).0, 404);
    let (s, g) = get_json(&web, &format!("/api/graph/{loquat}/H1"));
    assert_eq!(s, 200, "{g}");
    let ids: Vec<&str> = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(g["edges"].as_array().unwrap().len(), 2, "{g}");
    assert_eq!(get_json(&web, &format!("/api/graph/{juice}/NOPE")).0, 404);
    assert_eq!(
        get_json(&web, &format!("/api/search?q={juice}/LJ2026A")).1["kind"],
        "batch"
    );
    assert_eq!(
        get_json(&web, &format!("/api/search?q={tx_id}")).1["kind"],
        "tx"
    );
    assert_eq!(get_json(&web, "/api/search?q=3").1["kind"], "block");
    assert_eq!(get_json(&web, "/api/search?q=zzz").0, 404);
    assert_eq!(
        get_json(&web, "/api/history/traceability/x").0,
        404,
        "no key history"
    );
    assert_eq!(get_json(&web, "/api/nothing").0, 404);

    // ------------------------------------------------------------ browser
    let shots = screenshots_dir();
    let good_url = format!("{base}{}", page_of(good));
    let html = dom(&format!("{good_url}&lang=en"));
    assert!(
        html.contains("id=\"genuine\"") && html.contains("Genuine code"),
        "{html}"
    );
    assert!(
        !html.contains("id=\"recall\"") && !html.contains("id=\"counterfeit\""),
        "{html}"
    );
    for seen in [
        "Loquat juice 330 ml",
        "Suzhou Dongshan Loquat Co.",
        "LJ2026A",
        "sterilising",
        "filling",
        "shipping",
        "receiving",
        "Hangzhou DC",
        "PASS",
        "GB 7101-2022",
        "total_sugar",
        "Scanned once before",
        "active",
    ] {
        assert!(
            html.contains(seen),
            "the good code's page lacks {seen:?}:\n{html}"
        );
    }
    // The lab's report, an MDSS file the ledger records by SHA-256: linked
    // and marked as matching, and what the link serves hashes to it.
    assert!(html.contains("hash verified"), "{html}");
    let report_sha = t["inspections"][0]["report_sha256"]
        .as_str()
        .expect("report hash");
    assert!(
        html.contains(&format!("href=\"/files/sha256/{report_sha}\"")),
        "{html}"
    );
    let (s, report) = qcss_tests::http_get(&web, &format!("/files/sha256/{report_sha}")).unwrap();
    assert_eq!(s, 200);
    assert!(report.contains("Inspection report"), "{report}");
    assert_eq!(
        hex::encode(qcss_network::signing::sha256(report.as_bytes())),
        report_sha
    );
    screenshot(&format!("{good_url}&lang=en"), "good.png");
    let zh = dom(&format!("{good_url}&lang=zh"));
    for seen in ["正品码", "杀菌", "检验报告", "此前已扫描 1 次"] {
        assert!(zh.contains(seen), "the Chinese page lacks {seen:?}:\n{zh}");
    }
    screenshot(&format!("{good_url}&lang=zh"), "good-zh.png");

    let recalled_url = format!("{base}{}&lang=en", page_of(recalled));
    let html = dom(&recalled_url);
    let banner = html
        .find("id=\"recall\"")
        .unwrap_or_else(|| panic!("no recall banner:\n{html}"));
    assert!(
        html.contains("RECALLED — do not sell or consume this product"),
        "{html}"
    );
    assert!(
        html.contains("sediment found in retained samples"),
        "{html}"
    );
    assert!(
        banner < html.find("id=\"product\"").unwrap(),
        "the recall comes first"
    );
    screenshot(&recalled_url, "recalled.png");

    let forged_url = format!("{base}{}&lang=en", page_of(forged));
    let html = dom(&forged_url);
    assert!(
        html.contains("FORGED CODE — not issued by the brand"),
        "{html}"
    );
    assert!(!html.contains("Genuine code"), "{html}");
    screenshot(&forged_url, "forged.png");

    // A clone: the good code scanned again, far from its first scan.
    let conn_dir = dir
        .join("net/orgs/logistics/consumer1")
        .display()
        .to_string();
    qcss_ok(
        dir,
        &[
            "scan",
            good,
            "--location",
            "Shenzhen",
            "--peer",
            logistics["peer"].as_str().unwrap(),
            "--identity",
            &conn_dir,
            "--channel",
            "qcss",
        ],
    );
    let html = dom(&format!("{good_url}&lang=en"));
    assert!(
        html.contains("POSSIBLE COUNTERFEIT — this code looks copied"),
        "{html}"
    );
    assert!(html.contains("Scanned twice before"), "{html}");
    assert!(
        html.contains("Shenzhen"),
        "the warning names the place:\n{html}"
    );
    screenshot(&format!("{good_url}&lang=en"), "cloned.png");

    let html = dom(&format!("{base}/explorer?lang=en"));
    assert!(
        html.contains("Latest blocks") && html.contains("Latest transactions"),
        "{html}"
    );
    assert!(
        html.contains(&format!("/explorer/tx/{tx_id}")),
        "the recall is listed:\n{html}"
    );
    assert!(html.contains("traceability.scan"), "{html}");
    screenshot(&format!("{base}/explorer?lang=en"), "explorer.png");
    let html = dom(&format!(
        "{base}/explorer/search?q={juice}%2FLJ2026B&lang=en"
    ));
    assert!(
        html.contains("<svg") && html.contains("RECALLED"),
        "batch page with its graph:\n{html}"
    );
    assert!(
        html.contains(&format!("{loquat}/H1")),
        "made from the harvest lot:\n{html}"
    );
    screenshot(
        &format!("{base}/explorer/batch/{loquat}/H1?lang=en"),
        "graph.png",
    );
    let html = dom(&format!("{base}/explorer/tx/{tx_id}?lang=en"));
    assert!(
        html.contains("Endorsed by") && html.contains("RegulatorMSP"),
        "{html}"
    );
    assert!(html.contains(&format!("batch/{juice}/LJ2026B")), "{html}");
    println!("web screenshots: {}", shots.display());

    // ------------------------------------------------------- slowloris
    // 300 connections that never finish their request head (more than the
    // 256 the server holds at once, and far more than one address's 32):
    // a consumer's request is still answered, because a new connection
    // evicts the oldest slow one instead of waiting behind it; the evicted
    // ones are closed without an answer (they would get a 408 after the
    // 5 s head timeout if they had kept their slot).
    let slow: Vec<std::net::TcpStream> = (0..300)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&web).expect("connect");
            s.write_all(b"GET /api/blocks HTTP/1.1\r\nHost: x\r\n")
                .expect("partial head");
            s
        })
        .collect();
    let (s, _, _) = get(&web, "/api/blocks?limit=1");
    assert_eq!(s, 200, "answered while 300 slow connections are open");
    let mut first = &slow[0];
    first.set_read_timeout(Some(Duration::from_secs(15))).ok();
    let mut buf = Vec::new();
    let _ = first.read_to_end(&mut buf);
    assert!(
        buf.is_empty(),
        "the oldest slow connection was evicted, not kept until its timeout: {}",
        String::from_utf8_lossy(&buf)
    );
    drop(slow);

    // ------------------------------------------------------- rate limit
    std::thread::sleep(Duration::from_secs(4)); // refill the bucket
    let mut limited = None;
    for _ in 0..200 {
        let (s, head, _) = get(&web, "/api/blocks?limit=1");
        if s == 429 {
            limited = Some(head);
            break;
        }
        assert_eq!(s, 200);
    }
    let head = limited.expect("a burst of 200 requests is rate-limited");
    assert!(head.contains("retry-after: "), "{head}");

    // ------------------------------------------------------- measurement
    qcss_ok(dir, &["network", "down", "--dir", "net"]);
    measure(&dir.join("net/peer-logistics.toml"), &page_of(good));
}

/// The verify page at 500 requests/s for 10 s against the stopped peer's
/// ledger, served in-process (no rate limit), cached and uncached; prints
/// the server-side p50/p99/max and the client-side p99.
fn measure(config: &Path, page: &str) {
    let cfg = qcss_peer::node::PeerConfig::load(config).expect("peer config");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let peer = qcss_peer::node::open(&cfg).expect("open the peer offline");
        for cache in [1024usize, 0] {
            let mut settings = cfg.web.clone().expect("[web]");
            settings.listen = "127.0.0.1:0".into();
            settings.rate_limit_per_sec = 0;
            settings.cache_entries = cache;
            let web = qcss_peer::web::Web::new(peer.clone(), settings, None).expect("web");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(qcss_peer::web::serve(listener, web.clone(), async {
                let _ = stopped.await;
            }));
            let (rate, secs) = (500u64, 10u64);
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            let mut clients = tokio::task::JoinSet::new();
            let started = Instant::now();
            for _ in 0..rate * secs {
                tick.tick().await;
                let page = page.to_owned();
                clients.spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let t = Instant::now();
                    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
                    s.write_all(format!("GET {page}&lang=en HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.ok()?;
                    let mut buf = Vec::new();
                    s.read_to_end(&mut buf).await.ok()?;
                    buf.starts_with(b"HTTP/1.1 200").then(|| t.elapsed())
                });
            }
            let mut client = Vec::new();
            let mut failed = 0;
            while let Some(r) = clients.join_next().await {
                match r {
                    Ok(Some(d)) => client.push(d),
                    _ => failed += 1,
                }
            }
            let wall = started.elapsed();
            let server_side = web.timings().samples(qcss_peer::web::RequestKind::Verify);
            let q = |s: &[Duration], x: f64| qcss_peer::web::quantile(s, x).as_secs_f64() * 1000.0;
            println!(
                "verify page, cache {}: {} requests in {:.1} s ({:.0}/s offered {rate}/s), {failed} failed; \
                 server-side p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; client-side p99 {:.2} ms",
                if cache > 0 { "on" } else { "off" },
                server_side.len(),
                wall.as_secs_f64(),
                client.len() as f64 / wall.as_secs_f64(),
                q(&server_side, 0.5),
                q(&server_side, 0.99),
                q(&server_side, 1.0),
                q(&client, 0.99),
            );
            let _ = stop.send(());
            let _ = server.await;
        }
    });
}
