//! Headless Chromium as a person's browser: the DOM after load, the text a
//! reader actually sees on a phone of a given width, phone-sized
//! screenshots (saved under `$CARGO_TARGET_DIR/web-screenshots/`).
//!
//! Needs Debian's `chromium` (`/usr/bin/chromium`, or `$CHROMIUM`);
//! `.ci/run` installs it. Without it a test fails, saying so.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The browser, or a clear failure.
pub fn chromium() -> PathBuf {
    let p = std::env::var("CHROMIUM")
        .map_or_else(|_| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        p.exists(),
        "headless Chromium is needed for the browser tests and {} does not exist: \
         install it with `apt-get install -y chromium` (.ci/run does) or set CHROMIUM",
        p.display()
    );
    p
}

/// Where screenshots go.
pub fn screenshots_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("web-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "qcss-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs headless Chromium with `args` then `url`; its stdout. Killed after 90 s.
pub fn browse(args: &[&str], url: &str) -> String {
    let profile = TempDir::new("chromium-profile");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromium");
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish {url} within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap_or_default()
}

/// The DOM after load, as a person's browser has it.
pub fn dom(url: &str) -> String {
    browse(&["--dump-dom"], url)
}

/// A `width`×`height` screenshot of `url` into `name` under
/// [`screenshots_dir`].
pub fn screenshot(url: &str, name: &str, width: u32, height: u32) -> PathBuf {
    let file = screenshots_dir().join(name);
    let _ = std::fs::remove_file(&file);
    browse(
        &[
            &format!("--screenshot={}", file.display()),
            &format!("--window-size={width},{height}"),
        ],
        url,
    );
    assert!(file.exists(), "chromium wrote no screenshot for {url}");
    file
}

/// What a reader sees of a page on a phone `width` CSS pixels wide.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The rendered text (`innerText`: what CSS hides is not in it).
    pub text: String,
    /// The layout viewport's width, in CSS pixels.
    pub width: u32,
    /// The page's width: more than `width` means it scrolls sideways.
    pub scroll_width: u32,
    /// The document's `lang`.
    pub lang: String,
}

/// Loads `url` and reads, through a content script that writes them into
/// the page for `--dump-dom`, its visible text and widths with the page
/// laid out `width` CSS pixels wide. (Headless windows are at least 500
/// pixels wide and the pages refuse to be framed, so the script narrows
/// the root element to the phone's width rather than the window; the pages
/// have no media queries or viewport units, so the layout is the phone's.)
pub fn visible_text(url: &str, width: u32) -> Seen {
    let ext = TempDir::new("chromium-ext");
    std::fs::write(
        ext.0.join("manifest.json"),
        r#"{"manifest_version": 3, "name": "qcss-visible-text", "version": "1",
 "content_scripts": [{"matches": ["<all_urls>"], "js": ["seen.js"], "run_at": "document_idle"}]}"#,
    )
    .expect("extension manifest");
    std::fs::write(
        ext.0.join("seen.js"),
        format!(
            r#"var e = document.documentElement, b = document.body;
e.style.width = '{width}px';
var seen = JSON.stringify({{text: b.innerText, width: Math.round(e.getBoundingClientRect().width),
  scroll_width: b.scrollWidth, lang: e.lang}});
var p = document.createElement('pre');
p.id = 'qcss-visible';
p.style.display = 'none';
p.textContent = seen;
b.appendChild(p);
"#
        ),
    )
    .expect("extension script");
    let dir = ext.0.display().to_string();
    let out = browse(
        &[
            "--dump-dom",
            &format!("--disable-extensions-except={dir}"),
            &format!("--load-extension={dir}"),
        ],
        url,
    );
    let start = out
        .find("<pre id=\"qcss-visible\"")
        .unwrap_or_else(|| panic!("the page's visible text was not read from {url}:\n{out}"));
    let body = &out[start..];
    let body = &body[body.find('>').expect("pre tag") + 1..];
    let body = &body[..body.find("</pre>").expect("closed pre")];
    let json = body
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let n = |k: &str| v[k].as_u64().unwrap_or(0) as u32;
    Seen {
        text: v["text"].as_str().unwrap_or_default().to_owned(),
        width: n("width"),
        scroll_width: n("scroll_width"),
        lang: v["lang"].as_str().unwrap_or_default().to_owned(),
    }
}
